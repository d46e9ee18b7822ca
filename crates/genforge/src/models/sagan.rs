//! SAGAN (Zhang et al. 2019) as the DCGAN/SAGAN article builds it: the DCGAN backbone of [`super::dcgan`] with
//! spectral normalization on every conv except the output layers, Self-Attention after G's
//! layer3/layer4 (16x16, 32x32) and D's layer3/layer4 (8x8, 4x4), the hinge loss and TTUR
//! (G 1e-4, D 4e-4, Adam betas 0.0/0.9). Select it with `model.family = "sagan"`.

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use super::dcgan::{self, Backbone};
use crate::{Error, Result};

/// `model.*` keys of `family = "sagan"`: DCGAN's, plus where self-attention sits.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SaganConfig {
    pub z_dim: usize,
    pub width: usize,
    pub channels: usize,
    pub resolution: usize,
    /// Resolutions of G's hidden layers followed by self-attention (the article: 16 and 32).
    pub g_attention: Vec<usize>,
    /// Resolutions of D's layers followed by self-attention (the article: 8 and 4).
    pub d_attention: Vec<usize>,
}

impl Default for SaganConfig {
    fn default() -> Self {
        let d = dcgan::DcganConfig::default();
        SaganConfig {
            z_dim: d.z_dim,
            width: d.width,
            channels: d.channels,
            resolution: d.resolution,
            g_attention: vec![16, 32],
            d_attention: vec![8, 4],
        }
    }
}

impl SaganConfig {
    pub fn validate(&self) -> Result<()> {
        self.base().validate()?;
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
        Ok(())
    }

    fn base(&self) -> dcgan::DcganConfig {
        dcgan::DcganConfig {
            z_dim: self.z_dim,
            width: self.width,
            channels: self.channels,
            resolution: self.resolution,
        }
    }

    pub fn backbone(&self) -> Backbone {
        Backbone {
            spectral_norm: true,
            g_attention: self.g_attention.clone(),
            d_attention: self.d_attention.clone(),
            ..self.base().backbone()
        }
    }
}

/// The DCGAN/SAGAN article's attention figure panel: the map of the centre position of a square
/// `[n, n]` attention matrix (`n = side^2`), as a `[side, side]` image.
/// Seed: `am1[i].view(16, 16, 16, 16)[7][7]`.
pub fn centre_attention(map: Tensor<2>) -> Tensor<2> {
    let n = map.dims()[0];
    let side = (n as f64).sqrt() as usize;
    assert_eq!(side * side, n, "attention map over a non-square grid");
    let centre = (side / 2 - 1) * side + (side / 2 - 1);
    map.slice([centre..centre + 1, 0..n]).reshape([side, side])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn centre_is_row_7_7_of_a_16x16_grid() {
        let device = Device::flex();
        let v: Vec<f32> = (0..256 * 256).map(|i| i as f32).collect();
        let map = Tensor::<2>::from_data(TensorData::new(v, [256, 256]), &device);
        let c = centre_attention(map)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(c.len(), 256);
        assert_eq!(c[0], ((7 * 16 + 7) * 256) as f32);
    }
}
