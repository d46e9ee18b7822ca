//! Pixelwise feature vector normalization (Karras et al., "Progressive Growing of GANs for
//! Improved Quality, Stability, and Variation", section 4.2): after each convolution of the
//! generator, the feature vector of every pixel is scaled to unit mean square,
//! `b = a / sqrt(mean_c(a^2) + 1e-8)`, so signal magnitudes cannot escalate between G and D.

use burn::tensor::Tensor;

/// The paper's epsilon.
pub const EPSILON: f64 = 1e-8;

/// `[b, c, h, w] -> [b, c, h, w]`, normalised over `c` at every pixel.
pub fn pixel_norm(x: Tensor<4>) -> Tensor<4> {
    let ms = x.clone().square().mean_dim(1); // [b, 1, h, w]
    x / (ms + EPSILON).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn every_pixel_has_unit_mean_square_and_keeps_its_direction() {
        let device = Device::flex();
        let (b, c, h, w) = (2, 5, 3, 4);
        let v = crate::rng::Rng::new(8).normal_vec(b * c * h * w, 0.0, 3.0);
        let x = Tensor::<4>::from_data(TensorData::new(v.clone(), [b, c, h, w]), &device);
        let y = pixel_norm(x).into_data().try_to_vec::<f32>().unwrap();
        for n in 0..b {
            for p in 0..h * w {
                let at = |k: usize| n * c * h * w + k * h * w + p;
                let ms: f64 = (0..c).map(|k| (y[at(k)] as f64).powi(2)).sum::<f64>() / c as f64;
                assert!((ms - 1.0).abs() < 1e-5, "pixel ({n}, {p}): {ms}");
                // y = x / s with one positive s per pixel.
                let s = v[at(0)] / y[at(0)];
                assert!(s > 0.0);
                for k in 0..c {
                    assert!((v[at(k)] / s - y[at(k)]).abs() < 1e-5);
                }
            }
        }
    }
}
