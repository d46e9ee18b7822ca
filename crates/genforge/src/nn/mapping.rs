//! The mapping network `f: Z -> W` of StyleGAN (Karras et al. 2019), as StyleGAN2's code writes
//! it: `z` normalised to unit second moment (StyleGAN's pixel norm of the latent), then
//! equalized fully connected layers with leaky ReLU 0.2 and a slow learning rate. ViTGAN uses the
//! same network for its `w`.

use crate::nn::activation::leaky_relu;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::equalized::{EqualizedLinear, EqualizedOpts};
use crate::rng::Rng;

/// Learning-rate multiplier of the mapping network (StyleGAN; ViTGAN keeps it).
pub const MAPPING_LR_MULTIPLIER: f64 = 0.01;

/// StyleGAN2's `normalize_2nd_moment`: `z / sqrt(mean(z^2) + 1e-8)` per sample.
pub fn normalize_2nd_moment(z: Tensor<2>) -> Tensor<2> {
    let ms = z.clone().square().mean_dim(1); // [b, 1]
    z / (ms + 1e-8).sqrt()
}

/// Gain after each leaky ReLU of the mapping network (StyleGAN2's `bias_act` default for lrelu),
/// which keeps `w` at unit scale through the 8 layers instead of shrinking it ~14x.
pub const LRELU_GAIN: f64 = std::f64::consts::SQRT_2;

/// `z -> w`: an MLP of equalized linear layers with leaky ReLU 0.2, `lr_multiplier = 0.01`.
#[derive(Module, Debug)]
pub struct MappingNetwork {
    pub layers: Vec<EqualizedLinear>,
}

impl MappingNetwork {
    pub fn new(z_dim: usize, w_dim: usize, n: usize, rng: &mut Rng, device: &Device) -> Self {
        let opts = EqualizedOpts {
            lr_multiplier: MAPPING_LR_MULTIPLIER,
            ..Default::default()
        };
        let layers = (0..n)
            .map(|i| {
                EqualizedLinear::new(
                    [if i == 0 { z_dim } else { w_dim }, w_dim],
                    opts,
                    rng,
                    device,
                )
            })
            .collect();
        MappingNetwork { layers }
    }

    /// `[b, z_dim] -> [b, w_dim]`
    pub fn forward(&self, z: Tensor<2>) -> Tensor<2> {
        let mut x = normalize_2nd_moment(z);
        for layer in &self.layers {
            x = leaky_relu(layer.forward(x), 0.2) * LRELU_GAIN;
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_network_uses_the_slow_learning_rate() {
        let device = Device::flex();
        let mut rng = Rng::new(14);
        let m = MappingNetwork::new(8, 16, 3, &mut rng, &device);
        for l in &m.layers {
            assert!((l.bias_gain - MAPPING_LR_MULTIPLIER).abs() < 1e-12);
            let fan_in = l.weight.dims()[1] as f64;
            assert!((l.weight_gain - MAPPING_LR_MULTIPLIER / fan_in.sqrt()).abs() < 1e-12);
        }
    }
}
