//! Layers burn lacks, named as in the papers.

pub mod conv;
pub mod init;
pub mod self_attention;
pub mod spectral_norm;

pub use conv::{Conv2d, ConvTranspose2d};
pub use self_attention::SelfAttention;
pub use spectral_norm::SpectralNorm;
