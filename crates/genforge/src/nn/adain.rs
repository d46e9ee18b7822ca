//! Adaptive instance normalization as StyleGAN applies it (Karras et al. 2019, eq. 1; Huang and
//! Belongie 2017): each feature map is normalised over its pixels, then scaled and shifted by a
//! style `y = (y_s, y_b)`, a learned affine map of `w` (A in the paper's figure 1). As in the
//! official code the scale is `1 + y_s`, so a zero style leaves the normalised map unchanged.

use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::equalized::{EqualizedLinear, EqualizedOpts};
use crate::rng::Rng;

/// `(x - mean_hw(x)) / sqrt(var_hw(x) + 1e-8)` per sample and channel, `[b, c, h, w]`.
pub fn instance_norm(x: Tensor<4>) -> Tensor<4> {
    let x = x.clone() - x.mean_dims(&[2, 3]);
    let var = x.clone().square().mean_dims(&[2, 3]);
    x / (var + 1e-8).sqrt()
}

#[derive(Module, Debug)]
pub struct AdaIn {
    /// `w -> (y_s, y_b)`, `[b, w_dim] -> [b, 2c]`, equalized with gain 1.
    pub affine: EqualizedLinear,
}

impl AdaIn {
    pub fn new(w_dim: usize, channels: usize, rng: &mut Rng, device: &Device) -> Self {
        AdaIn {
            affine: EqualizedLinear::new(
                [w_dim, 2 * channels],
                EqualizedOpts::default(),
                rng,
                device,
            ),
        }
    }

    /// `[b, c, h, w]`, `w` `[b, w_dim]` -> `instance_norm(x) * (1 + y_s) + y_b`.
    pub fn forward(&self, x: Tensor<4>, w: Tensor<2>) -> Tensor<4> {
        let [b, c, _, _] = x.dims();
        let style = self.affine.forward(w).reshape([b, 2, c, 1, 1]); // [b, 2, c, 1, 1]
        let scale = style.clone().narrow(1, 0, 1).reshape([b, c, 1, 1]);
        let shift = style.narrow(1, 1, 1).reshape([b, c, 1, 1]);
        instance_norm(x) * (scale + 1.0) + shift
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn data(x: Tensor<4>) -> Vec<f32> {
        x.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn instance_norm_gives_zero_mean_unit_variance_per_map() {
        let device = Device::flex();
        let mut rng = Rng::new(1);
        let v = rng.normal_vec(2 * 3 * 16, 2.0, 5.0);
        let y = data(instance_norm(Tensor::from_data(
            TensorData::new(v, [2, 3, 4, 4]),
            &device,
        )));
        for m in y.chunks(16) {
            let mean = m.iter().sum::<f32>() / 16.0;
            let var = m.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 16.0;
            assert!(
                mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4,
                "{mean} {var}"
            );
        }
    }

    #[test]
    fn adain_matches_its_formula() {
        let device = Device::flex();
        let mut rng = Rng::new(2);
        let (b, c, wd) = (2, 3, 5);
        let mut layer = AdaIn::new(wd, c, &mut rng, &device);
        layer.affine.bias = Some(crate::nn::init::normal(
            [2 * c],
            0.0,
            1.0,
            &mut rng,
            &device,
        ));
        let xv = rng.normal_vec(b * c * 9, 1.0, 3.0);
        let wv = rng.normal_vec(b * wd, 0.0, 1.0);
        let x = Tensor::<4>::from_data(TensorData::new(xv.clone(), [b, c, 3, 3]), &device);
        let w = Tensor::<2>::from_data(TensorData::new(wv, [b, wd]), &device);
        let style = layer
            .affine
            .forward(w.clone())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let y = data(layer.forward(x, w));
        for s in 0..b {
            for ch in 0..c {
                let m = &xv[(s * c + ch) * 9..(s * c + ch + 1) * 9];
                let mean = m.iter().sum::<f32>() / 9.0;
                let std = (m.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 9.0 + 1e-8).sqrt();
                let (ys, yb) = (style[s * 2 * c + ch], style[s * 2 * c + c + ch]);
                for (k, v) in m.iter().enumerate() {
                    let want = (v - mean) / std * (1.0 + ys) + yb;
                    let got = y[(s * c + ch) * 9 + k];
                    assert!((want - got).abs() < 1e-4, "{want} {got}");
                }
            }
        }
    }
}
