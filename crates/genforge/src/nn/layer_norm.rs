//! LayerNorm over the last axis, and ViTGAN's Self-Modulated LayerNorm (SLN), where the affine
//! parameters come from the latent `w` instead of being learned constants:
//! `SLN(h, w) = gamma(w) * LN(h) + beta(w)`.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::equalized::{EqualizedLinear, EqualizedOpts};
use crate::cpu::elementwise::{FusedActivations, LAYER_NORM_EPS};
use crate::cpu::settings::fused_on;
use crate::rng::Rng;
use burn::backend::{DType, Dispatch};

pub const EPS: f64 = LAYER_NORM_EPS;

/// `(x - mean) / sqrt(var + eps)` over the last axis (biased variance, as PyTorch): one
/// operation each way on the CPU backend (`nn::activation`), burn's composition elsewhere.
pub fn layer_norm<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if fused_on(&x.device()) && x.dtype() == DType::F32 {
        return Tensor::from_dispatch(<Dispatch as FusedActivations>::layer_norm_fused(
            x.into_dispatch(),
        ));
    }
    layer_norm_composed(x)
}

/// [`layer_norm`] as burn's tensor operations.
pub fn layer_norm_composed<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let (var, mean) = x.clone().var_mean_bias(D - 1);
    (x - mean) / (var + EPS).sqrt()
}

/// LayerNorm with a learned per-feature scale and shift (ViTGAN's discriminator).
#[derive(Module, Debug)]
pub struct LayerNorm {
    pub gamma: Param<Tensor<1>>,
    pub beta: Param<Tensor<1>>,
}

impl LayerNorm {
    pub fn new(d: usize, device: &Device) -> Self {
        LayerNorm {
            gamma: Param::from_tensor(Tensor::ones([d], device)),
            beta: Param::from_tensor(Tensor::zeros([d], device)),
        }
    }

    /// `[b, n, d] -> [b, n, d]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        layer_norm(x) * self.gamma.val().unsqueeze::<3>() + self.beta.val().unsqueeze::<3>()
    }
}

#[derive(Module, Debug)]
pub struct SelfModulatedLayerNorm {
    /// `w -> gamma`, bias starting at 1 so SLN starts as a plain LayerNorm plus a small
    /// `w`-dependent modulation.
    pub gamma: EqualizedLinear,
    /// `w -> beta`, bias starting at 0.
    pub beta: EqualizedLinear,
}

impl SelfModulatedLayerNorm {
    pub fn new(d: usize, w_dim: usize, rng: &mut Rng, device: &Device) -> Self {
        let with_bias = |b| EqualizedOpts {
            bias_init: Some(b),
            ..Default::default()
        };
        SelfModulatedLayerNorm {
            gamma: EqualizedLinear::new([w_dim, d], with_bias(1.0), rng, device),
            beta: EqualizedLinear::new([w_dim, d], with_bias(0.0), rng, device),
        }
    }

    /// `h: [b, n, d]`, `w: [b, w_dim]` -> `[b, n, d]`
    pub fn forward(&self, h: Tensor<3>, w: Tensor<2>) -> Tensor<3> {
        let gamma = self.gamma.forward(w.clone()).unsqueeze_dim::<3>(1); // [b, 1, d]
        let beta = self.beta.forward(w).unsqueeze_dim::<3>(1); // [b, 1, d]
        layer_norm(h) * gamma + beta
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn sln_with_unit_gamma_and_zero_beta_is_layer_norm() {
        let device = Device::flex();
        let mut rng = Rng::new(5);
        let (b, n, d) = (2, 3, 8);
        let hv = rng.normal_vec(b * n * d, 1.5, 2.0);
        let h = Tensor::<3>::from_data(TensorData::new(hv.clone(), [b, n, d]), &device);
        // An SLN whose gamma(w) = 1 and beta(w) = 0 for every w: zero weights, biases 1 and 0.
        let mut sln = SelfModulatedLayerNorm::new(d, 4, &mut rng, &device);
        sln.gamma.weight = Param::from_tensor(Tensor::zeros([d, 4], &device));
        sln.beta.weight = Param::from_tensor(Tensor::zeros([d, 4], &device));
        let w = Tensor::<2>::from_data(
            TensorData::new(rng.normal_vec(b * 4, 0.0, 1.0), [b, 4]),
            &device,
        );
        let y = sln.forward(h, w).into_data().try_to_vec::<f32>().unwrap();
        // LayerNorm by hand, per row.
        for r in 0..b * n {
            let row = &hv[r * d..(r + 1) * d];
            let mean = row.iter().map(|v| *v as f64).sum::<f64>() / d as f64;
            let var = row.iter().map(|v| (*v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
            for i in 0..d {
                let want = (row[i] as f64 - mean) / (var + EPS).sqrt();
                assert!(
                    (want - y[r * d + i] as f64).abs() < 1e-4,
                    "{want} {}",
                    y[r * d + i]
                );
            }
        }
    }

    #[test]
    fn sln_depends_on_w() {
        let device = Device::flex();
        let mut rng = Rng::new(6);
        let sln = SelfModulatedLayerNorm::new(8, 4, &mut rng, &device);
        let h = Tensor::<3>::from_data(
            TensorData::new(rng.normal_vec(24, 0.0, 1.0), [1, 3, 8]),
            &device,
        );
        let w1 = Tensor::<2>::from_data(
            TensorData::new(rng.normal_vec(4, 0.0, 1.0), [1, 4]),
            &device,
        );
        let w2 = Tensor::<2>::from_data(
            TensorData::new(rng.normal_vec(4, 0.0, 1.0), [1, 4]),
            &device,
        );
        let d = (sln.forward(h.clone(), w1) - sln.forward(h, w2))
            .abs()
            .sum()
            .into_scalar::<f32>();
        assert!(d > 1e-3);
    }
}
