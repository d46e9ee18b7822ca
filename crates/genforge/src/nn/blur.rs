//! The low-pass filter StyleGAN puts after each upsampling and before each downsampling
//! ("Making Convolutional Networks Shift-Invariant Again", Zhang 2019): the binomial kernel
//! `[1, 2, 1]` in each direction, normalised to sum 1, zero padding, applied per channel.

use burn::backend::{DType, Dispatch};
use burn::tensor::ops::ConvOptions;
use burn::tensor::ops::{AvgPoolOptions, InterpolateMode, InterpolateOptions};
use burn::tensor::{Tensor, TensorData};

use crate::cpu::resample::BlurOps;
pub use crate::cpu::resample::TAPS;
use crate::cpu::settings::{fused_on, settings};

/// The 3x3 kernel `outer(TAPS, TAPS)` (sums to 1).
pub fn kernel() -> [[f32; 3]; 3] {
    let mut k = [[0.0; 3]; 3];
    for (i, row) in k.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = TAPS[i] * TAPS[j];
        }
    }
    k
}

/// `[b, c, h, w] -> [b, c, h, w]`, zero padding. On the CPU the two separable passes per plane,
/// planes in parallel, as one autodiff operation: the kernel is symmetric, so the blur is its own
/// adjoint and the backward blurs the gradient. Elsewhere a depthwise convolution with the 3x3
/// kernel. `GENFORGE_BLUR=slices` takes
/// [`blur_slices`] instead.
pub fn blur(x: Tensor<4>) -> Tensor<4> {
    if settings().blur_slices {
        return blur_slices(x);
    }
    if crate::cpu::conv::supports(&x) {
        return Tensor::from_dispatch(<Dispatch as BlurOps>::blur3x3(x.into_dispatch()));
    }
    let [_, c, _, _] = x.dims();
    let weight = Tensor::<4>::from_data(depthwise_weight(c), &x.device());
    burn::tensor::module::conv2d(x, weight, None, depthwise_options(c))
}

/// The 3x3 kernel for each of `c` channels, `[c, 1, 3, 3]`.
fn depthwise_weight(c: usize) -> TensorData {
    let taps: Vec<f32> = kernel().iter().flatten().copied().collect();
    TensorData::new(taps.repeat(c), [c, 1, 3, 3])
}

fn depthwise_options(c: usize) -> ConvOptions<2> {
    ConvOptions::new([1, 1], [1, 1], [1, 1], c)
}

/// [`blur`] as the vertical pass then the horizontal pass over shifted slices of a zero-padded
/// copy.
pub fn blur_slices(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let p = x.pad([(1, 1), (0, 0)], burn::tensor::ops::PadMode::Constant(0.0)); // [b, c, h+2, w]
    let v = p.clone().slice([0..b, 0..c, 0..h, 0..w]) * TAPS[0]
        + p.clone().slice([0..b, 0..c, 1..h + 1, 0..w]) * TAPS[1]
        + p.slice([0..b, 0..c, 2..h + 2, 0..w]) * TAPS[2];
    let p = v.pad([(0, 0), (1, 1)], burn::tensor::ops::PadMode::Constant(0.0)); // [b, c, h, w+2]
    p.clone().slice([0..b, 0..c, 0..h, 0..w]) * TAPS[0]
        + p.clone().slice([0..b, 0..c, 0..h, 1..w + 1]) * TAPS[1]
        + p.slice([0..b, 0..c, 0..h, 2..w + 2]) * TAPS[2]
}

/// Nearest-neighbour 2x upsampling, `[b, c, h, w] -> [b, c, 2h, 2w]`: on the CPU one pass each
/// way (the backward sums 2x2 blocks), elsewhere burn's nearest interpolation.
pub fn upsample2x(x: Tensor<4>) -> Tensor<4> {
    if fused_on(&x.device()) && x.dtype() == DType::F32 {
        return Tensor::from_dispatch(<Dispatch as BlurOps>::up2x(x.into_dispatch(), 1.0));
    }
    let [_, _, h, w] = x.dims();
    let options =
        InterpolateOptions::new(InterpolateMode::Nearest).with_output_size([2 * h, 2 * w]);
    burn::tensor::module::interpolate(x, options)
}

/// 2x2 box downsampling (average pooling), `[b, c, h, w] -> [b, c, h/2, w/2]`: on the CPU one
/// pass each way (burn-flex's average-pooling backward is a general 3-D kernel, 4% of a StyleGAN
/// step), elsewhere burn's `avg_pool2d`.
pub fn downsample2x(x: Tensor<4>) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    if fused_on(&x.device()) && x.dtype() == DType::F32 && h % 2 == 0 && w % 2 == 0 {
        return Tensor::from_dispatch(<Dispatch as BlurOps>::down2x(x.into_dispatch(), 0.25));
    }
    let options = AvgPoolOptions::new([2, 2]).with_stride([2, 2]);
    burn::tensor::module::avg_pool2d(x, options)
}

/// [`upsample2x`] and [`downsample2x`] by reshapes, repeats and means (the reference the tests
/// compare the pooling kernels with).
pub fn upsample2x_reshape(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h, 1, w, 1])
        .repeat_dim(3, 2)
        .repeat_dim(5, 2)
        .reshape([b, c, 2 * h, 2 * w])
}

pub fn downsample2x_reshape(x: Tensor<4>) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h / 2, 2, w / 2, 2])
        .mean_dim(5)
        .mean_dim(3)
        .reshape([b, c, h / 2, w / 2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::values;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn kernel_sums_to_one_and_is_separable() {
        let k = kernel();
        let sum: f32 = k.iter().flatten().sum();
        assert!((sum - 1.0).abs() < 1e-7);
        // Rank one: every 2x2 minor vanishes, and the row sums are the taps.
        for i in 0..2 {
            for j in 0..2 {
                let minor = k[i][j] * k[i + 1][j + 1] - k[i][j + 1] * k[i + 1][j];
                assert!(minor.abs() < 1e-9);
            }
        }
        for (i, row) in k.iter().enumerate() {
            assert!((row.iter().sum::<f32>() - TAPS[i]).abs() < 1e-7);
        }
    }

    /// Value and input gradient of `f` and `g` on `shape` agree.
    fn same_value_and_gradient(
        f: fn(Tensor<4>) -> Tensor<4>,
        g: fn(Tensor<4>) -> Tensor<4>,
        shape: [usize; 4],
    ) {
        let device = Device::flex().autodiff();
        let mut rng = crate::rng::Rng::new(4);
        let v = rng.normal_vec(shape.iter().product(), 0.0, 1.0);
        let run = |f: fn(Tensor<4>) -> Tensor<4>| {
            let x =
                Tensor::<4>::from_data(TensorData::new(v.clone(), shape), &device).require_grad();
            let y = f(x.clone());
            // A position-dependent upstream gradient, so a transposed or shifted map shows.
            let n = y.shape().num_elements();
            let up: Vec<f32> = (0..n).map(|i| ((i * 37) % 17) as f32 - 8.0).collect();
            let up = Tensor::<4>::from_data(TensorData::new(up, y.dims()), &device);
            let grads = (y.clone() * up).sum().backward();
            let gx = values(x.grad(&grads).unwrap());
            (values(y), gx)
        };
        let ((y, gx), (y0, gx0)) = (run(f), run(g));
        assert_eq!(y.len(), y0.len());
        for (a, b) in y.iter().zip(&y0).chain(gx.iter().zip(&gx0)) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    /// The depthwise convolution and the two separable passes agree; so do the pooling kernels
    /// and the reshape forms of the 2x resampling.
    #[test]
    fn fast_forms_match_their_references() {
        same_value_and_gradient(blur, blur_slices, [2, 3, 6, 5]);
        // Planes of one row or one column: the edge cases of the separable passes.
        same_value_and_gradient(blur, blur_slices, [2, 2, 1, 4]);
        same_value_and_gradient(blur, blur_slices, [1, 2, 3, 1]);
        same_value_and_gradient(upsample2x, upsample2x_reshape, [2, 3, 4, 5]);
        same_value_and_gradient(downsample2x, downsample2x_reshape, [2, 3, 8, 6]);
    }

    #[test]
    fn blur_equals_the_3x3_kernel_with_zero_padding() {
        let device = Device::flex();
        let (h, w) = (4, 5);
        let v: Vec<f32> = (0..2 * h * w)
            .map(|i| ((i * 7) % 11) as f32 - 5.0)
            .collect();
        let x = Tensor::<4>::from_data(TensorData::new(v.clone(), [1, 2, h, w]), &device);
        let y = blur(x).into_data().try_to_vec::<f32>().unwrap();
        let k = kernel();
        for c in 0..2 {
            for i in 0..h {
                for j in 0..w {
                    let mut acc = 0.0;
                    for (di, row) in k.iter().enumerate() {
                        for (dj, kv) in row.iter().enumerate() {
                            let (si, sj) = (i as i64 + di as i64 - 1, j as i64 + dj as i64 - 1);
                            if (0..h as i64).contains(&si) && (0..w as i64).contains(&sj) {
                                acc += kv * v[(c * h + si as usize) * w + sj as usize];
                            }
                        }
                    }
                    let got = y[(c * h + i) * w + j];
                    assert!((acc - got).abs() < 1e-5, "{acc} {got}");
                }
            }
        }
    }

    #[test]
    fn up_and_down_sampling_invert_each_other() {
        let device = Device::flex();
        let v: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let x = Tensor::<4>::from_data(TensorData::new(v.clone(), [1, 1, 3, 4]), &device);
        let up = upsample2x(x.clone());
        assert_eq!(up.dims(), [1, 1, 6, 8]);
        let u = up.clone().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(u[0..8], [0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
        assert_eq!(u[8..16], u[0..8]);
        let back = downsample2x(up).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(back, v);
    }
}
