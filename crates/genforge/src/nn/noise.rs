//! StyleGAN's per-pixel noise input (Karras et al. 2019, section 3.2): one noise image
//! `[b, 1, h, w]` of N(0, 1) values per layer, broadcast over channels and scaled by a learned
//! per-channel factor that starts at 0.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};

use super::init;
use crate::rng::Rng;

#[derive(Module, Debug)]
pub struct NoiseInjection {
    /// `[c]`, the learned per-channel scaling factors (B in the paper's figure 1).
    pub strength: Param<Tensor<1>>,
}

impl NoiseInjection {
    pub fn new(channels: usize, device: &Device) -> Self {
        NoiseInjection {
            strength: init::zeros([channels], device),
        }
    }

    /// `x + strength * noise`: `[b, c, h, w]`, `[b, 1, h, w]` -> `[b, c, h, w]`.
    pub fn forward(&self, x: Tensor<4>, noise: Tensor<4>) -> Tensor<4> {
        let c = self.strength.dims()[0];
        x + noise * self.strength.val().reshape([1, c, 1, 1])
    }
}

/// One `[b, 1, h, w]` noise image from the host generator (so resume replays it exactly).
pub fn noise_image(b: usize, side: usize, rng: &mut Rng, device: &Device) -> Tensor<4> {
    Tensor::from_data(
        TensorData::new(
            rng.normal_vec(b * side * side, 0.0, 1.0),
            [b, 1, side, side],
        ),
        device,
    )
}
