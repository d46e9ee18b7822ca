//! Model families. DCGAN and SAGAN share seed 001's convolutional backbone ([`dcgan`]); SAGAN
//! ([`sagan`]) adds spectral normalization and self-attention to it, exactly as the seed does.

pub mod dcgan;
pub mod sagan;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};
pub use dcgan::{Discriminator, Generator};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Dcgan,
    Sagan,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub family: Family,
    /// Latent size (seed: 20).
    pub z_dim: usize,
    /// Base channel width (the seed's `image_size` argument, 64): G's last hidden layer and D's
    /// first layer have this many channels, doubling towards 4x4.
    pub width: usize,
    /// Image channels: 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Output side, a power of two from 32 to 128.
    pub resolution: usize,
    /// SAGAN: resolutions of G's hidden layers followed by self-attention (seed: 16 and 32).
    pub g_attention: Vec<usize>,
    /// SAGAN: resolutions of D's layers followed by self-attention (seed: 8 and 4).
    pub d_attention: Vec<usize>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            family: Family::Dcgan,
            z_dim: 20,
            width: 64,
            channels: 1,
            resolution: 64,
            g_attention: vec![16, 32],
            d_attention: vec![8, 4],
        }
    }
}

impl ModelConfig {
    pub fn validate(&self) -> Result<()> {
        if ![32, 64, 128].contains(&self.resolution) {
            return Err(Error::Config(format!(
                "model.resolution must be 32, 64 or 128, got {}",
                self.resolution
            )));
        }
        if ![1, 3].contains(&self.channels) {
            return Err(Error::Config(format!(
                "model.channels must be 1 or 3, got {}",
                self.channels
            )));
        }
        if self.z_dim == 0 || self.width == 0 {
            return Err(Error::Config(
                "model.z_dim and model.width must be positive".into(),
            ));
        }
        if self.family == Family::Sagan {
            let g_res = dcgan::generator_resolutions(self.resolution);
            for r in &self.g_attention {
                if !g_res.contains(r) {
                    return Err(Error::Config(format!(
                        "model.g_attention: {r} is not a generator hidden resolution ({g_res:?})"
                    )));
                }
            }
            let d_res = dcgan::discriminator_resolutions(self.resolution);
            for r in &self.d_attention {
                if !d_res.contains(r) {
                    return Err(Error::Config(format!(
                        "model.d_attention: {r} is not a discriminator layer resolution ({d_res:?})"
                    )));
                }
            }
        }
        Ok(())
    }
}
