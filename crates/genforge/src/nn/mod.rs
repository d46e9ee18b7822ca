//! Layers burn lacks, named as in the papers, and the operations the models call.
//!
//! Operations with a CPU kernel (`activation`, `fused_linear`, `batch_norm`, `channel_affine`,
//! `blur`, `im2row`, `gemm_conv`) pick per call between the kernel in [`crate::cpu`] and burn's
//! composition of the same operation, which runs on every other device and is the reference their
//! tests compare the kernels with.

pub mod activation;
pub mod adain;
pub mod augment;
pub mod batch_norm;
pub mod blur;
pub mod channel_affine;
pub mod conditional_batch_norm;
pub mod conv;
pub mod diff_augment;
pub mod equalized;
pub mod equalized_conv;
pub mod fused_linear;
pub mod gemm_conv;
pub mod im2row;
pub mod init;
pub mod layer_norm;
pub mod linear;
pub mod mapping;
pub mod masked_conv;
pub mod minibatch_stddev;
pub mod modulated_conv;
pub mod multi_head_attention;
pub mod noise;
pub mod pixel_norm;
pub mod pooled_attention;
pub mod self_attention;
pub mod siren;
pub mod sn_layers;
pub mod spectral_norm;
pub mod upfirdn2d;
pub mod vector_quantizer;

pub use conv::{Conv2d, ConvTranspose2d};
pub use self_attention::SelfAttention;
pub use spectral_norm::SpectralNorm;
