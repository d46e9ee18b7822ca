//! The low-pass filter StyleGAN puts after each upsampling and before each downsampling
//! ("Making Convolutional Networks Shift-Invariant Again", Zhang 2019): the binomial kernel
//! `[1, 2, 1]` in each direction, normalised to sum 1, zero padding, applied per channel.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::ops::ConvOptions;
use burn::tensor::ops::{AvgPoolOptions, InterpolateMode, InterpolateOptions};
use burn::tensor::{Tensor, TensorData};

use super::parallel::filled;

/// The separable 1-D taps, normalised.
pub const TAPS: [f32; 3] = [0.25, 0.5, 0.25];

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
    static SLICES: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *SLICES.get_or_init(|| std::env::var("GENFORGE_BLUR").as_deref() == Ok("slices")) {
        return blur_slices(x);
    }
    if crate::nn::cpu_conv::supports(&x) {
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

#[backend_extension(Flex, Autodiff)]
pub trait BlurOps: Backend {
    /// [`blur`] on `[b, c, h, w]`.
    fn blur3x3(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Nearest 2x upsampling times `scale`, `[b, c, h, w] -> [b, c, 2h, 2w]`.
    fn up2x(x: FloatTensor<Self>, scale: f32) -> FloatTensor<Self>;
    /// The sum of each 2x2 block times `scale`, `[b, c, h, w] -> [b, c, h/2, w/2]` (`scale`
    /// 1/4: average pooling; 1: the adjoint of `up2x`).
    fn down2x(x: FloatTensor<Self>, scale: f32) -> FloatTensor<Self>;
}

/// `f(input plane, output plane)` over the `b * c` planes of `x`, in parallel.
fn per_plane(
    x: &FlexTensor,
    out_hw: [usize; 2],
    f: impl Fn(&[f32], &mut [f32]) + Sync,
) -> FlexTensor {
    let s = x.shape();
    let (b, c, h, w) = (s[0], s[1], s[2], s[3]);
    let x = x.to_contiguous();
    let x = x.as_slice::<f32>().expect("2x resampling takes f32");
    let [oh, ow] = out_hw;
    let out = if h * w > 0 {
        filled(b * c * oh * ow, oh * ow, |p, o| {
            f(&x[p * h * w..][..h * w], o)
        })
    } else {
        vec![0f32; b * c * oh * ow]
    };
    FlexTensor::from_data(TensorData::new(out, [b, c, oh, ow]))
}

impl BlurOps for Flex {
    fn up2x(x: FloatTensor<Self>, scale: f32) -> FloatTensor<Self> {
        let s = x.shape();
        let (h, w) = (s[2], s[3]);
        per_plane(&x, [2 * h, 2 * w], |x, o| {
            for (y, row) in x.chunks(w).enumerate() {
                let (top, bottom) = o[4 * y * w..4 * (y + 1) * w].split_at_mut(2 * w);
                for (i, v) in row.iter().enumerate() {
                    let v = v * scale;
                    top[2 * i] = v;
                    top[2 * i + 1] = v;
                }
                bottom.copy_from_slice(top);
            }
        })
    }

    fn down2x(x: FloatTensor<Self>, scale: f32) -> FloatTensor<Self> {
        let s = x.shape();
        let (h, w) = (s[2], s[3]);
        let (oh, ow) = (h / 2, w / 2);
        per_plane(&x, [oh, ow], |x, o| {
            for (y, row) in o.chunks_mut(ow).enumerate() {
                let (a, b) = (&x[2 * y * w..], &x[(2 * y + 1) * w..]);
                for (i, v) in row.iter_mut().enumerate() {
                    *v = (a[2 * i] + a[2 * i + 1] + b[2 * i] + b[2 * i + 1]) * scale;
                }
            }
        })
    }

    fn blur3x3(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let s = x.shape();
        let (h, w) = (s[2], s[3]);
        // Separably, per plane: each row's vertical pass, then its horizontal pass in place.
        let [a, m] = [TAPS[0], TAPS[1]];
        per_plane(&x, [h, w], |x, o| {
            for (y, out) in o.chunks_mut(w).enumerate() {
                let row = |dy: isize| {
                    let r = y as isize + dy;
                    (0..h as isize)
                        .contains(&r)
                        .then(|| &x[r as usize * w..][..w])
                };
                let mid = &x[y * w..][..w];
                match (row(-1), row(1)) {
                    (Some(up), Some(down)) => {
                        for (((o, &u), &c), &d) in out.iter_mut().zip(up).zip(mid).zip(down) {
                            *o = m * c + a * (u + d);
                        }
                    }
                    (Some(e), None) | (None, Some(e)) => {
                        for ((o, &e), &c) in out.iter_mut().zip(e).zip(mid) {
                            *o = m * c + a * e;
                        }
                    }
                    (None, None) => out.iter_mut().zip(mid).for_each(|(o, &c)| *o = m * c),
                }
                // `prev` keeps the column just overwritten.
                let mut prev = 0.0;
                for i in 0..w {
                    let c = out[i];
                    let next = if i + 1 < w { out[i + 1] } else { 0.0 };
                    out[i] = m * c + a * (prev + next);
                    prev = c;
                }
            }
        })
    }
}

#[derive(Debug)]
struct BlurBackward;

impl<B: Backend + BlurOps> Backward<B, 1> for BlurBackward {
    type State = ();

    fn backward(self, ops: Ops<(), 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        unary::<B, _>(ops.parents, ops.node, grads, |g| B::blur3x3(g));
    }
}

/// Nearest 2x upsampling and 2x2 block sums are each other's adjoints: the gradient of
/// `up2x(x, s)` is `down2x(g, s)` and that of `down2x(x, s)` is `up2x(g, s)`.
#[derive(Debug)]
struct ResampleBackward;

impl<B: Backend + BlurOps> Backward<B, 1> for ResampleBackward {
    /// Whether the forward was `up2x`, and its scale.
    type State = (bool, f32);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (up, scale) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |g| {
            if up {
                B::down2x(g, scale)
            } else {
                B::up2x(g, scale)
            }
        });
    }
}

/// `up2x` (`up`) or `down2x` on the inner backend, recorded for the backward pass.
fn resample<B: Backend + BlurOps, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    up: bool,
    scale: f32,
) -> FloatTensor<Autodiff<B, C>> {
    let run = |x| {
        if up {
            B::up2x(x, scale)
        } else {
            B::down2x(x, scale)
        }
    };
    match ResampleBackward
        .prepare::<C>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((up, scale), run(x.into_primitive())),
        OpsKind::UnTracked(prep) => prep.finish(run(x.into_primitive())),
    }
}

impl<B: Backend + BlurOps, C: CheckpointStrategy> BlurOps for Autodiff<B, C> {
    fn blur3x3(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let prep = BlurBackward.prepare::<C>([x.node()]).compute_bound();
        prep.stateless(B::blur3x3(x.into_primitive()))
    }

    fn up2x(x: FloatTensor<Self>, scale: f32) -> FloatTensor<Self> {
        resample::<B, C>(x, true, scale)
    }

    fn down2x(x: FloatTensor<Self>, scale: f32) -> FloatTensor<Self> {
        resample::<B, C>(x, false, scale)
    }
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
    if crate::nn::activation::fused_on(&x.device()) && x.dtype() == burn::backend::DType::F32 {
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
    if crate::nn::activation::fused_on(&x.device())
        && x.dtype() == burn::backend::DType::F32
        && h % 2 == 0
        && w % 2 == 0
    {
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
    use crate::nn::testing::values;
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
