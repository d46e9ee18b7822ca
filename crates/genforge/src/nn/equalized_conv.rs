//! Equalized-learning-rate convolution (Karras et al., Progressive GAN section 4.1; StyleGAN):
//! the kernel is stored at unit scale and multiplied at run time by `gain / sqrt(fan_in)`
//! (`fan_in = in * k * k`), so every layer learns at the same relative speed under Adam.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::gemm_conv::conv2d_routed;
use super::init;
use crate::rng::Rng;

#[derive(Module, Debug)]
pub struct EqualizedConv2d {
    /// `[out, in, k, k]`, drawn from `N(0, 1)`.
    pub weight: Param<Tensor<4>>,
    /// `[out]`, or `None` when the layer's bias is applied later (StyleGAN adds it after noise).
    pub bias: Option<Param<Tensor<1>>>,
    /// `gain / sqrt(in * k * k)`.
    pub weight_gain: f64,
}

impl EqualizedConv2d {
    /// A `k x k` convolution, stride 1, `k / 2` zero padding; `gain` is `sqrt(2)` before a leaky
    /// ReLU and 1 before a linear output.
    pub fn new(
        [cin, cout]: [usize; 2],
        k: usize,
        gain: f64,
        bias: bool,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        EqualizedConv2d {
            weight: init::normal([cout, cin, k, k], 0.0, 1.0, rng, device),
            bias: bias.then(|| init::zeros([cout], device)),
            weight_gain: gain / ((cin * k * k) as f64).sqrt(),
        }
    }

    /// `[b, in, h, w] -> [b, out, h, w]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let k = self.weight.dims()[2];
        conv2d_routed(
            x,
            self.weight.val() * self.weight_gain,
            self.bias.as_ref().map(|b| b.val()),
            1,
            k / 2,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn equals_an_explicit_convolution_with_the_scaled_kernel() {
        let device = Device::flex();
        let mut rng = Rng::new(3);
        let mut layer = EqualizedConv2d::new([2, 3], 3, 2f64.sqrt(), true, &mut rng, &device);
        layer.bias = Some(init::normal([3], 0.0, 1.0, &mut rng, &device));
        let xv = rng.normal_vec(2 * 4 * 5, 0.0, 1.0);
        let x = Tensor::<4>::from_data(TensorData::new(xv.clone(), [1, 2, 4, 5]), &device);
        let y = layer.forward(x).into_data().try_to_vec::<f32>().unwrap();
        let w = layer.weight.val().into_data().try_to_vec::<f32>().unwrap();
        let b = layer
            .bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let gain = 2f64.sqrt() / 18f64.sqrt();
        for o in 0..3 {
            for i in 0..4 {
                for j in 0..5 {
                    let mut acc = b[o] as f64;
                    for c in 0..2 {
                        for di in 0..3 {
                            for dj in 0..3 {
                                let (si, sj) = (i as i64 + di as i64 - 1, j as i64 + dj as i64 - 1);
                                if (0..4).contains(&si) && (0..5).contains(&sj) {
                                    acc += gain
                                        * w[((o * 2 + c) * 3 + di) * 3 + dj] as f64
                                        * xv[(c * 4 + si as usize) * 5 + sj as usize] as f64;
                                }
                            }
                        }
                    }
                    let got = y[(o * 4 + i) * 5 + j] as f64;
                    assert!((acc - got).abs() < 1e-4, "{acc} {got}");
                }
            }
        }
    }
}
