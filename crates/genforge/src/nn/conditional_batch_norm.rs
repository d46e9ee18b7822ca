//! Class-conditional batch norm (de Vries et al. 2017; BigGAN's `ccbn`, field for field as
//! BigGAN-PyTorch's `layers.ccbn`): batch normalization without its own affine parameters over
//! the `stored_mean`/`stored_var` buffers, then a per-sample gain `1 + W_g e` and bias `W_b e`
//! from the conditioning vector `e` (BigGAN: the shared class embedding, concatenated with the
//! block's chunk of z). The two maps are spectral-normed linear layers without bias.

use burn::module::{Flag, Module, Param, RunningState};
use burn::tensor::{Device, Tensor};

use super::batch_norm::forward_stored;
use super::sn_layers::SnLinear;
use crate::rng::Rng;

#[derive(Module, Debug)]
pub struct ConditionalBatchNorm {
    /// `e -> gain - 1`, `[channels, cond]`.
    pub gain: SnLinear,
    /// `e -> bias`.
    pub bias: SnLinear,
    pub stored_mean: RunningState<Tensor<1>>,
    pub stored_var: RunningState<Tensor<1>>,
    /// Training behaviour (off after `valid()`, as burn's batch norm).
    pub training: Param<Flag>,
    /// BigGAN-PyTorch's `BN_eps`.
    pub eps: f64,
    pub momentum: f64,
}

impl ConditionalBatchNorm {
    /// `bn_eps` for the normalization, `sn_eps` for the maps' spectral norm.
    pub fn new(
        channels: usize,
        cond_dim: usize,
        bn_eps: f64,
        sn_eps: f64,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        ConditionalBatchNorm {
            gain: SnLinear::new([cond_dim, channels], false, sn_eps, rng, device),
            bias: SnLinear::new([cond_dim, channels], false, sn_eps, rng, device),
            stored_mean: RunningState::new(Tensor::zeros([channels], device)),
            stored_var: RunningState::new(Tensor::ones([channels], device)),
            training: Param::from_bool(true),
            eps: bn_eps,
            momentum: 0.1,
        }
    }

    /// `x`: `[b, c, h, w]`, `e`: `[b, cond]` -> `[b, c, h, w]`.
    pub fn forward(&self, x: Tensor<4>, e: Tensor<2>) -> Tensor<4> {
        let gain = self.gain.forward(e.clone()) + 1.0; // [b, c]
        let bias = self.bias.forward(e);
        forward_stored(
            x,
            self.training.is_enabled(),
            &self.stored_mean,
            &self.stored_var,
            self.eps,
            self.momentum,
            (gain, bias),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    /// `x_hat (1 + W_g e / sigma_g) + W_b e / sigma_b`, with `x_hat` from the batch (training,
    /// biased variance) or from the buffers (evaluation), and the buffers moved towards the batch
    /// mean and unbiased variance in training.
    #[test]
    fn gain_bias_and_buffers_follow_the_formula() {
        let (b, c, hw, k) = (3, 2, 4, 3);
        let xv = Rng::new(3).normal_vec(b * c * hw, 0.0, 1.5);
        let ev = Rng::new(4).normal_vec(b * k, 0.0, 1.0);
        let ad = Device::flex().autodiff();
        let mut base = ConditionalBatchNorm::new(c, k, 1e-5, 1e-6, &mut Rng::new(2), &ad);
        base.stored_mean = RunningState::new(Tensor::from_data(
            TensorData::new(vec![0.3f32, -0.2], [c]),
            &ad,
        ));
        base.stored_var = RunningState::new(Tensor::from_data(
            TensorData::new(vec![0.8f32, 1.7], [c]),
            &ad,
        ));
        // Converge the maps' power iterations so sigma no longer moves between passes.
        for _ in 0..300 {
            base.gain.effective_weight();
            base.bias.effective_weight();
        }
        let wg: Vec<f32> = base
            .gain
            .effective_weight()
            .into_data()
            .try_to_vec()
            .unwrap();
        let wb: Vec<f32> = base
            .bias
            .effective_weight()
            .into_data()
            .try_to_vec()
            .unwrap();
        for (cbn, device) in [(base.clone(), ad.clone()), (base.valid(), Device::flex())] {
            let training = device.is_autodiff();
            let x = Tensor::<4>::from_data(TensorData::new(xv.clone(), [b, c, 2, 2]), &device);
            let e = Tensor::<2>::from_data(TensorData::new(ev.clone(), [b, k]), &device);
            let out: Vec<f32> = cbn.forward(x, e).into_data().try_to_vec().unwrap();
            let means: Vec<f32> = cbn
                .stored_mean
                .value_sync()
                .into_data()
                .try_to_vec()
                .unwrap();
            let vars: Vec<f32> = cbn
                .stored_var
                .value_sync()
                .into_data()
                .try_to_vec()
                .unwrap();
            for ch in 0..c {
                let vals: Vec<f64> = (0..b)
                    .flat_map(|i| (0..hw).map(move |p| (i * c + ch) * hw + p))
                    .map(|idx| xv[idx] as f64)
                    .collect();
                let n = vals.len() as f64;
                let mean = vals.iter().sum::<f64>() / n;
                let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
                let (m0, v0) = ([0.3, -0.2][ch], [0.8, 1.7][ch]);
                let (mu, sd) = if training {
                    (mean, (var + 1e-5f64).sqrt())
                } else {
                    (m0, (v0 + 1e-5f64).sqrt())
                };
                for i in 0..b {
                    let dot = |w: &[f32]| {
                        (0..k)
                            .map(|j| w[ch * k + j] as f64 * ev[i * k + j] as f64)
                            .sum::<f64>()
                    };
                    for p in 0..hw {
                        let idx = (i * c + ch) * hw + p;
                        let xhat = (xv[idx] as f64 - mu) / sd;
                        let want = xhat * (1.0 + dot(&wg)) + dot(&wb);
                        assert!(
                            (out[idx] as f64 - want).abs() < 1e-4,
                            "{} vs {want}",
                            out[idx]
                        );
                    }
                }
                let (want_m, want_v) = if training {
                    (0.9 * m0 + 0.1 * mean, 0.9 * v0 + 0.1 * var * n / (n - 1.0))
                } else {
                    (m0, v0)
                };
                assert!((means[ch] as f64 - want_m).abs() < 1e-5, "mean {ch}");
                assert!((vars[ch] as f64 - want_v).abs() < 1e-5, "var {ch}");
            }
        }
    }
}
