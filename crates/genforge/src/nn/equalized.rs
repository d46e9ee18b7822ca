//! Equalized learning rate (Karras et al., StyleGAN2's `FullyConnectedLayer`): weights are stored
//! at unit scale and multiplied at run time by `lr_multiplier / sqrt(fan_in)`, so Adam's
//! per-parameter step is the same relative size for every layer. `lr_multiplier = 0.01` slows
//! a layer down (ViTGAN's mapping network).

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};

use super::fused_linear::{WeightLayout, linear, scaled_linear};
use super::init;
use super::spectral_norm::ImprovedSpectralNorm;
use crate::rng::Rng;

#[derive(Module, Debug)]
pub struct EqualizedLinear {
    /// `[out, in]`, drawn from `N(0, 1 / lr_multiplier^2)`.
    pub weight: Param<Tensor<2>>,
    pub bias: Option<Param<Tensor<1>>>,
    /// `gain * lr_multiplier / sqrt(in)`.
    pub weight_gain: f64,
    /// `lr_multiplier`.
    pub bias_gain: f64,
    /// ViTGAN's discriminator normalizes every layer with ISN.
    pub isn: Option<ImprovedSpectralNorm>,
}

/// Options of an [`EqualizedLinear`] beyond its size.
#[derive(Clone, Copy, Debug)]
pub struct EqualizedOpts {
    pub lr_multiplier: f64,
    /// He gain folded into the run-time scale (`sqrt(2)` before a leaky ReLU in Progressive
    /// GAN; 1 elsewhere).
    pub gain: f64,
    /// `None`: no bias; `Some(v)`: a bias starting at `v`.
    pub bias_init: Option<f64>,
    pub isn: bool,
}

impl Default for EqualizedOpts {
    fn default() -> Self {
        EqualizedOpts {
            lr_multiplier: 1.0,
            gain: 1.0,
            bias_init: Some(0.0),
            isn: false,
        }
    }
}

impl EqualizedLinear {
    pub fn new(
        [fan_in, fan_out]: [usize; 2],
        opts: EqualizedOpts,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let weight = init::normal(
            [fan_out, fan_in],
            0.0,
            1.0 / opts.lr_multiplier,
            rng,
            device,
        );
        let weight_gain = opts.gain * opts.lr_multiplier / (fan_in as f64).sqrt();
        let bias = opts.bias_init.map(|b| {
            // Stored so that `bias * lr_multiplier` starts at `b`.
            Param::from_tensor(Tensor::full([fan_out], b / opts.lr_multiplier, device))
        });
        let layer = EqualizedLinear {
            weight,
            bias,
            weight_gain,
            bias_gain: opts.lr_multiplier,
            isn: None,
        };
        if opts.isn { layer.with_isn() } else { layer }
    }

    /// Put the layer under ISN, measuring `sigma(W_init)` on its current weights.
    pub fn with_isn(mut self) -> Self {
        let w = self.weight.val() * self.weight_gain;
        self.isn = Some(ImprovedSpectralNorm::new(&w, &w.device()));
        self
    }

    /// Multiply the initial weights of output rows `rows` by `factor`, for a sub-projection that
    /// should start at a smaller scale. Call before [`with_isn`](Self::with_isn).
    pub fn scale_rows(mut self, rows: std::ops::Range<usize>, factor: f64) -> Self {
        let w = self.weight.val();
        let fan_out = w.dims()[0];
        let device = w.device();
        let mut mask = vec![1.0f32; fan_out];
        mask[rows].iter_mut().for_each(|m| *m = factor as f32);
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [fan_out, 1]), &device);
        debug_assert!(self.isn.is_none(), "scale_rows after with_isn");
        self.weight = Param::from_tensor((w * mask).detach());
        self
    }

    /// The `[out, in]` matrix the forward pass uses: scaled, then ISN-normalized if enabled.
    pub fn effective_weight(&self) -> Tensor<2> {
        let w = self.weight.val() * self.weight_gain;
        match &self.isn {
            Some(isn) => isn.normalize(w),
            None => w,
        }
    }

    /// `[..., in] -> [..., out]`
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let dims = x.dims();
        let fan_in = dims[D - 1];
        let rows = dims.iter().product::<usize>() / fan_in;
        let fan_out = self.weight.dims()[0];
        let bias = self.bias.as_ref().map(|b| b.val() * self.bias_gain);
        let x = x.reshape([rows, fan_in]);
        let y = match &self.isn {
            Some(_) => linear(x, self.effective_weight(), WeightLayout::OutIn, bias),
            // The gain goes into the product rather than over the weight each pass.
            None => scaled_linear(
                x,
                self.weight.val(),
                self.weight_gain,
                WeightLayout::OutIn,
                bias,
            ),
        }; // [rows, out]
        let mut out = dims;
        out[D - 1] = fan_out;
        y.reshape(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_a_plain_linear_with_scaled_weights() {
        let device = Device::flex();
        let mut rng = Rng::new(4);
        let opts = EqualizedOpts {
            lr_multiplier: 0.01,
            gain: 1.0,
            bias_init: Some(0.5),
            isn: false,
        };
        let layer = EqualizedLinear::new([6, 3], opts, &mut rng, &device);
        let x_v = rng.normal_vec(2 * 4 * 6, 0.0, 1.0);
        let x = Tensor::<3>::from_data(TensorData::new(x_v.clone(), [2, 4, 6]), &device);
        let y = layer.forward(x).into_data().try_to_vec::<f32>().unwrap();
        // y = x (w_stored * 0.01 / sqrt(6))^T + b_stored * 0.01, by explicit loops.
        let w = layer.weight.val().into_data().try_to_vec::<f32>().unwrap();
        let b = layer
            .bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let gain = 0.01 / 6f64.sqrt();
        for r in 0..8 {
            for o in 0..3 {
                let mut acc = b[o] as f64 * 0.01;
                for i in 0..6 {
                    acc += x_v[r * 6 + i] as f64 * w[o * 6 + i] as f64 * gain;
                }
                assert!(
                    (acc - y[r * 3 + o] as f64).abs() < 1e-5,
                    "{acc} {}",
                    y[r * 3 + o]
                );
            }
        }
        // The bias starts at bias_init, and the stored weights at unit-scale / lr_multiplier.
        assert!((b[0] as f64 * 0.01 - 0.5).abs() < 1e-6);
        let std = (w.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / 18.0).sqrt();
        assert!(std > 30.0 && std < 300.0, "stored std {std}");
    }
}
