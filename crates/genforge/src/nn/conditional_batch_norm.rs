//! Class-conditional batch norm (de Vries et al. 2017; BigGAN's `ccbn`): batch normalization
//! without its own affine parameters, then a per-sample gain `1 + W_g e` and bias `W_b e` from
//! the conditioning vector `e` (BigGAN: the shared class embedding, concatenated with the
//! block's chunk of z). The two maps are spectral-normed linear layers without bias, as
//! BigGAN-PyTorch's shared-embedding generator has them.

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::{Device, Tensor};

use super::linear::Linear;
use crate::rng::Rng;

#[derive(Module, Debug)]
pub struct ConditionalBatchNorm {
    /// Normalization only: its gamma is 1 and beta 0, not trained.
    pub bn: BatchNorm,
    /// `e -> gain - 1`, `[cond, channels]`.
    pub gain: Linear,
    /// `e -> bias`.
    pub bias: Linear,
}

impl ConditionalBatchNorm {
    pub fn new(
        channels: usize,
        cond_dim: usize,
        spectral_norm: bool,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let mut bn = BatchNormConfig::new(channels)
            .with_epsilon(1e-5)
            .init(device);
        bn.gamma = bn.gamma.set_require_grad(false);
        bn.beta = bn.beta.set_require_grad(false);
        ConditionalBatchNorm {
            bn,
            gain: Linear::new([cond_dim, channels], false, spectral_norm, rng, device),
            bias: Linear::new([cond_dim, channels], false, spectral_norm, rng, device),
        }
    }

    /// `x`: `[b, c, h, w]`, `e`: `[b, cond]` -> `[b, c, h, w]`.
    pub fn forward(&self, x: Tensor<4>, e: Tensor<2>) -> Tensor<4> {
        let [b, c, _, _] = x.dims();
        let gain = self.gain.forward(e.clone()) + 1.0; // [b, c]
        let bias = self.bias.forward(e);
        debug_assert_eq!(gain.dims(), [b, c]);
        super::batch_norm::forward(&self.bn, x, Some((gain, bias)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::tensor::{Distribution, TensorData};

    #[test]
    fn a_zero_embedding_map_is_plain_batch_norm() {
        let device = Device::flex().autodiff();
        let plain = BatchNormConfig::new(3).with_epsilon(1e-5).init(&device);
        let x = Tensor::<4>::random([4, 3, 5, 5], Distribution::Normal(0.5, 2.0), &device);
        let e = Tensor::<2>::random([4, 5], Distribution::Default, &device);
        let want = plain.forward(x.clone()).into_data();
        // Zero maps (no spectral norm: sigma of a zero matrix is 0), any embedding.
        let mut cbn = ConditionalBatchNorm::new(3, 5, false, &mut Rng::new(1), &device);
        for l in [&mut cbn.gain, &mut cbn.bias] {
            l.weight = Param::from_tensor(Tensor::zeros([3, 5], &device));
        }
        let tol = burn::tensor::Tolerance::absolute(1e-6);
        cbn.forward(x.clone(), e)
            .into_data()
            .assert_approx_eq::<f32>(&want, tol);
        // Spectral-normed maps and a zero embedding.
        let cbn = ConditionalBatchNorm::new(3, 5, true, &mut Rng::new(1), &device);
        let zero = Tensor::<2>::zeros([4, 5], &device);
        cbn.forward(x, zero)
            .into_data()
            .assert_approx_eq::<f32>(&want, tol);
    }

    #[test]
    fn gain_and_bias_follow_the_formula() {
        // Training mode: x_hat = (x - mean_c) / sqrt(var_c + eps), then x_hat (1 + W_g e) + W_b e.
        let device = Device::flex().autodiff();
        let cbn = ConditionalBatchNorm::new(2, 3, false, &mut Rng::new(2), &device);
        let (b, c, hw) = (3, 2, 4);
        let xv = Rng::new(3).normal_vec(b * c * hw, 0.0, 1.5);
        let ev = Rng::new(4).normal_vec(b * 3, 0.0, 1.0);
        let x = Tensor::<4>::from_data(TensorData::new(xv.clone(), [b, c, 2, 2]), &device);
        let e = Tensor::<2>::from_data(TensorData::new(ev.clone(), [b, 3]), &device);
        let out = cbn.forward(x, e).into_data().try_to_vec::<f32>().unwrap();
        let wg = cbn
            .gain
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let wb = cbn
            .bias
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for ch in 0..c {
            let vals: Vec<f64> = (0..b)
                .flat_map(|i| (0..hw).map(move |p| (i, p)))
                .map(|(i, p)| xv[(i * c + ch) * hw + p] as f64)
                .collect();
            let mean = vals.iter().sum::<f64>() / vals.len() as f64;
            let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / vals.len() as f64;
            for i in 0..b {
                let dot = |w: &[f32]| {
                    (0..3)
                        .map(|k| w[ch * 3 + k] as f64 * ev[i * 3 + k] as f64)
                        .sum::<f64>()
                };
                for p in 0..hw {
                    let idx = (i * c + ch) * hw + p;
                    let xhat = (xv[idx] as f64 - mean) / (var + 1e-5).sqrt();
                    let want = xhat * (1.0 + dot(&wg)) + dot(&wb);
                    assert!(
                        (out[idx] as f64 - want).abs() < 1e-4,
                        "{} vs {want}",
                        out[idx]
                    );
                }
            }
        }
    }
}
