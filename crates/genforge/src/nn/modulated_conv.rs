//! Weight modulation and demodulation (StyleGAN2, "Analyzing and Improving the Image Quality of
//! StyleGAN", Karras et al. 2020, section 2.2), the replacement for AdaIN's instance norm that
//! removes StyleGAN's blob ("droplet") artifacts.
//!
//! The style `s = A(w)` scales the kernel's input channels, `w'_oik = s_i w_oik`, and
//! demodulation rescales each output channel to unit expected variance,
//! `w''_oik = w'_oik / sqrt(sum_ik w'_oik^2 + eps)`. Per sample this is a different kernel; as
//! StyleGAN2-ADA's unfused path does, it is computed as `conv(x * s, w) * d` with one shared
//! kernel, which is the same linear map and keeps the batch-wide convolution.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::channel_affine::channel_affine;
use super::equalized::{EqualizedLinear, EqualizedOpts};
use crate::rng::Rng;

/// The demodulation epsilon (StyleGAN2's 1e-8).
const EPS: f64 = 1e-8;

/// The style affine `A` of one modulated convolution: `w -> s`, one scale per input channel.
#[derive(Module, Debug)]
pub struct Modulation {
    /// `w_dim -> in`, bias initialised to 1 so every style starts as the identity.
    pub affine: EqualizedLinear,
}

impl Modulation {
    pub fn new(w_dim: usize, in_channels: usize, rng: &mut Rng, device: &Device) -> Self {
        let opts = EqualizedOpts {
            bias_init: Some(1.0),
            ..Default::default()
        };
        Modulation {
            affine: EqualizedLinear::new([w_dim, in_channels], opts, rng, device),
        }
    }

    /// `[b, w_dim] -> [b, in]`
    pub fn styles(&self, w: Tensor<2>) -> Tensor<2> {
        self.affine.forward(w)
    }
}

/// `x * s` over channels: `[b, c, h, w]`, `[b, c]`.
pub fn modulate(x: Tensor<4>, s: Tensor<2>) -> Tensor<4> {
    channel_affine(x, Some(s), None)
}

/// Demodulation coefficients `d_bo = 1 / sqrt(sum_ik (s_bi w_oik)^2 + eps)`: styles `[b, in]`,
/// the effective kernel `[out, in, k, k]` -> `[b, out]`.
pub fn demodulation(s: Tensor<2>, weight: Tensor<4>) -> Tensor<2> {
    let [o, i, _, _] = weight.dims();
    let w2 = weight.square().sum_dim(3).sum_dim(2).reshape([o, i]); // [out, in]
    (s.square().matmul(w2.transpose()) + EPS).sqrt().recip() // [b, out]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::values;
    use burn::tensor::TensorData;

    /// Per sample, `conv(x * s, w) * d` equals a convolution with that sample's own modulated
    /// and demodulated kernel, built element by element.
    #[test]
    fn shared_kernel_form_equals_per_sample_kernels() {
        let device = Device::flex();
        let mut rng = Rng::new(5);
        let (b, ci, co, k, side) = (3, 4, 5, 3, 6);
        let wv = rng.normal_vec(co * ci * k * k, 0.0, 0.7);
        let sv = rng.normal_vec(b * ci, 1.0, 0.5);
        let xv = rng.normal_vec(b * ci * side * side, 0.0, 1.0);
        let weight = Tensor::<4>::from_data(TensorData::new(wv.clone(), [co, ci, k, k]), &device);
        let s = Tensor::<2>::from_data(TensorData::new(sv.clone(), [b, ci]), &device);
        let x = Tensor::<4>::from_data(TensorData::new(xv.clone(), [b, ci, side, side]), &device);
        let conv = |x: Tensor<4>, w: Tensor<4>| {
            burn::tensor::module::conv2d(
                x,
                w,
                None,
                burn::tensor::ops::ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
            )
        };
        let d = demodulation(s.clone(), weight.clone());
        let got = modulate(conv(modulate(x, s), weight), d);
        let got = values(got);
        for n in 0..b {
            // This sample's kernel w''_oik.
            let mut wk = vec![0f32; co * ci * k * k];
            for o in 0..co {
                let mut norm = 0f64;
                for i in 0..ci {
                    for t in 0..k * k {
                        let v = sv[n * ci + i] * wv[(o * ci + i) * k * k + t];
                        norm += (v as f64).powi(2);
                    }
                }
                let inv = 1.0 / (norm + EPS).sqrt();
                for i in 0..ci {
                    for t in 0..k * k {
                        let at = (o * ci + i) * k * k + t;
                        wk[at] = (sv[n * ci + i] as f64 * wv[at] as f64 * inv) as f32;
                    }
                }
            }
            let xn = Tensor::<4>::from_data(
                TensorData::new(
                    xv[n * ci * side * side..(n + 1) * ci * side * side].to_vec(),
                    [1, ci, side, side],
                ),
                &device,
            );
            let want = values(conv(
                xn,
                Tensor::from_data(TensorData::new(wk, [co, ci, k, k]), &device),
            ));
            let per = co * side * side;
            for (a, w) in got[n * per..(n + 1) * per].iter().zip(&want) {
                assert!((a - w).abs() < 1e-4, "{a} {w}");
            }
        }
    }

    /// Demodulated output channels have unit variance for unit-variance i.i.d. inputs, whatever
    /// the style's scale: the property that lets it replace instance norm.
    #[test]
    fn demodulation_restores_unit_variance() {
        let device = Device::flex();
        let mut rng = Rng::new(6);
        let (b, ci, co, side) = (2, 16, 4, 32);
        let weight = crate::nn::init::normal([co, ci, 3, 3], 0.0, 1.0, &mut rng, &device).val();
        let s = Tensor::<2>::from_data(
            TensorData::new(rng.normal_vec(b * ci, 0.0, 3.0), [b, ci]),
            &device,
        );
        let x = Tensor::<4>::from_data(
            TensorData::new(
                rng.normal_vec(b * ci * side * side, 0.0, 1.0),
                [b, ci, side, side],
            ),
            &device,
        );
        let y = burn::tensor::module::conv2d(
            modulate(x, s.clone()),
            weight.clone(),
            None,
            burn::tensor::ops::ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        );
        let y = values(modulate(y, demodulation(s, weight)));
        let var = y.iter().map(|v| v * v).sum::<f32>() / y.len() as f32;
        assert!((var - 1.0).abs() < 0.08, "variance {var}");
    }
}
