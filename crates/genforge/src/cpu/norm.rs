//! Batch normalization in training mode (Ioffe & Szegedy 2015) as one fused operation on the CPU
//! backend, with a per-sample affine map so that class-conditional batch norm is the same
//! operation:
//!
//! ```text
//! y[b, c, i] = (x[b, c, i] - mean_c) / sqrt(var_c + eps) * scale[b, c] + shift[b, c]
//! ```
//!
//! with the biased batch variance, as burn's `batch_norm_train`. burn's own composition transposes
//! the activation twice and makes about six passes forward and twelve backward; here the forward
//! is two reading passes (mean, then variance) and one writing pass, the backward one reading pass
//! (`sum dy` and `sum dy x` per sample and channel) and one writing pass:
//!
//! ```text
//! dshift[b, c] = sum_i dy        dscale[b, c] = sum_i dy xhat
//! dx = rstd (scale dy - mean_(b,i)(scale dy) - xhat mean_(b,i)(scale dy xhat))
//! ```
//!
//! `nn::batch_norm::forward` applies a `burn::nn::BatchNorm` this way (updating its running
//! statistics as burn's layer does) and falls back to the layer itself off the CPU backend or in
//! inference.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, TensorMetadata, backend_extension};
use rayon::prelude::*;

use super::autodiff::{constant, record, register_grads};
use super::elementwise::lane_sum;
use super::parallel::{contiguous_f32, filled, tensor};

#[backend_extension(Flex, Autodiff)]
pub trait FusedBatchNorm: Backend {
    /// `x [b, c, ...]`, `scale`, `shift` `[b, c]` -> (`y`, the batch statistics `[2, c]`: mean
    /// and biased variance per channel).
    fn bn_train(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);

    /// The gradients of `bn_train` in `x`, `scale` and `shift` given `dy` and its statistics.
    fn bn_train_backward(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// `(sum dy, sum dy x)` of two slices in 16 lanes.
#[inline(always)]
pub(crate) fn sums_dy(dy: &[f32], x: &[f32]) -> (f32, f32) {
    let (mut a, mut b) = ([0.0f32; 16], [0.0f32; 16]);
    let (cd, cx) = (dy.chunks_exact(16), x.chunks_exact(16));
    let (mut ta, mut tb) = (0.0, 0.0);
    for (d, x) in cd.remainder().iter().zip(cx.remainder()) {
        ta += d;
        tb += d * x;
    }
    for (d, x) in cd.zip(cx) {
        for i in 0..16 {
            a[i] += d[i];
            b[i] += d[i] * x[i];
        }
    }
    (a.iter().sum::<f32>() + ta, b.iter().sum::<f32>() + tb)
}

/// `[b, c, n]` sizes of a tensor `[b, c, ...]`.
pub(crate) fn plane_dims(t: &FlexTensor) -> (usize, usize, usize) {
    let s = t.shape();
    let (b, c) = (s[0], s[1]);
    (b, c, s.num_elements() / (b * c).max(1))
}

/// Per-channel mean and biased variance of `x [b, c, n]`, in f64 across planes.
fn statistics(x: &[f32], (b, c, n): (usize, usize, usize)) -> (Vec<f32>, Vec<f32>) {
    let count = (b * n) as f64;
    (0..c)
        .into_par_iter()
        .map(|ci| {
            let plane = |bi: usize| &x[(bi * c + ci) * n..][..n];
            let mean = (0..b)
                .map(|bi| lane_sum(plane(bi), |v| v) as f64)
                .sum::<f64>()
                / count;
            let mean = mean as f32;
            let var = (0..b)
                .map(|bi| lane_sum(plane(bi), |v| (v - mean) * (v - mean)) as f64)
                .sum::<f64>()
                / count;
            (mean, var as f32)
        })
        .unzip()
}

/// `out[b, c, i] = x[b, c, i] * a[b, c] + d[b, c]` (and `+ e[c] * z[b, c, i]` when `z` is given),
/// in parallel over planes.
pub(crate) fn affine_planes(
    x: &[f32],
    z: Option<(&[f32], &[f32])>,
    (b, c, n): (usize, usize, usize),
    a: &[f32],
    d: &[f32],
) -> Vec<f32> {
    if n == 0 {
        return Vec::new();
    }
    filled(b * c * n, n, |p, o| {
        let (a, d) = (a[p], d[p]);
        let x = &x[p * n..][..n];
        match z {
            None => o.iter_mut().zip(x).for_each(|(o, x)| *o = x * a + d),
            Some((z, e)) => {
                let (z, e) = (&z[p * n..][..n], e[p % c]);
                for ((o, x), z) in o.iter_mut().zip(x).zip(z) {
                    *o = x * a + z * e + d;
                }
            }
        }
    })
}

impl FusedBatchNorm for Flex {
    fn bn_train(
        x: FlexTensor,
        scale: FlexTensor,
        shift: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor) {
        let shape = x.shape();
        let dims @ (b, c, _) = plane_dims(&x);
        let (xs, scale, shift) = (
            contiguous_f32(&x),
            contiguous_f32(&scale),
            contiguous_f32(&shift),
        );
        let (mean, var) = statistics(&xs, dims);
        // y = x a + d with a = rstd scale, d = shift - mean a.
        let (mut a, mut d) = (vec![0.0f32; b * c], vec![0.0f32; b * c]);
        for p in 0..b * c {
            let ci = p % c;
            let rstd = 1.0 / (var[ci] as f64 + epsilon).sqrt();
            a[p] = (rstd * scale[p] as f64) as f32;
            d[p] = (shift[p] as f64 - mean[ci] as f64 * rstd * scale[p] as f64) as f32;
        }
        let y = affine_planes(&xs, None, dims, &a, &d);
        let stats = [mean, var].concat();
        (tensor(y, shape), tensor(stats, [2, c]))
    }

    fn bn_train_backward(
        x: FlexTensor,
        scale: FlexTensor,
        stats: FlexTensor,
        dy: FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let shape = x.shape();
        let dims @ (b, c, n) = plane_dims(&x);
        let (xs, scale, stats, dys) = (
            contiguous_f32(&x),
            contiguous_f32(&scale),
            contiguous_f32(&stats),
            contiguous_f32(&dy),
        );
        let (mean, var) = stats.split_at(c);
        let rstd: Vec<f64> = var
            .iter()
            .map(|&v| 1.0 / (v as f64 + epsilon).sqrt())
            .collect();
        // Per plane: sum dy and sum dy x.
        let sums: Vec<(f32, f32)> = (0..b * c)
            .into_par_iter()
            .map(|p| sums_dy(&dys[p * n..][..n], &xs[p * n..][..n]))
            .collect();
        // dshift = sum dy, dscale = sum dy xhat = rstd (sum dy x - mean sum dy).
        let dshift: Vec<f32> = sums.iter().map(|s| s.0).collect();
        let dscale: Vec<f32> = sums
            .iter()
            .enumerate()
            .map(|(p, &(s1, sx))| {
                let ci = p % c;
                (rstd[ci] * (sx as f64 - mean[ci] as f64 * s1 as f64)) as f32
            })
            .collect();
        // m1 = mean over (b, i) of scale dy, m2 = mean over (b, i) of scale dy xhat; then
        // dx = rstd scale dy + q x + r with q = -rstd^2 m2, r = rstd (rstd m2 mean - m1).
        let count = (b * n) as f64;
        let (mut q, mut r) = (vec![0.0f32; c], vec![0.0f32; c]);
        for ci in 0..c {
            let (mut m1, mut m2) = (0.0f64, 0.0f64);
            for bi in 0..b {
                let p = bi * c + ci;
                m1 += scale[p] as f64 * dshift[p] as f64;
                m2 += scale[p] as f64 * dscale[p] as f64;
            }
            let (m1, m2, s) = (m1 / count, m2 / count, rstd[ci]);
            q[ci] = (-s * s * m2) as f32;
            r[ci] = (s * (s * m2 * mean[ci] as f64 - m1)) as f32;
        }
        let a: Vec<f32> = (0..b * c)
            .map(|p| (rstd[p % c] * scale[p] as f64) as f32)
            .collect();
        let d: Vec<f32> = (0..b * c).map(|p| r[p % c]).collect();
        // dx[b, c, i] = dy a[b, c] + x q[c] + r[c]
        let dx = affine_planes(&dys, Some((&xs, &q)), dims, &a, &d);
        (
            tensor(dx, shape),
            tensor(dscale, [b, c]),
            tensor(dshift, [b, c]),
        )
    }
}

#[derive(Debug)]
struct BatchNormBackward;

impl<B: Backend + FusedBatchNorm> Backward<B, 3> for BatchNormBackward {
    /// The input, the scale, the batch statistics and epsilon.
    type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>, f64);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_scale, node_shift] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x, scale, stats, epsilon) = ops.state;
        let (dx, dscale, dshift) = B::bn_train_backward(x, scale, stats, dy, epsilon);
        let ids = [node_x, node_scale, node_shift].map(|n| n.map(|n| n.id));
        register_grads::<B, 3>(grads, ids, [dx, dscale, dshift]);
    }
}

impl<B: Backend + FusedBatchNorm, C: CheckpointStrategy> FusedBatchNorm for Autodiff<B, C> {
    fn bn_train(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let mut stats = None;
        let y = record::<B, C, _, 3>(
            BatchNormBackward,
            [x, scale, shift],
            |[x, scale, shift], tracked| {
                if tracked {
                    let (y, s) = B::bn_train(x.clone(), scale.clone(), shift, epsilon);
                    stats = Some(s.clone());
                    (y, Some((x, scale, s, epsilon)))
                } else {
                    let (y, s) = B::bn_train(x, scale, shift, epsilon);
                    stats = Some(s);
                    (y, None)
                }
            },
        );
        (y, constant::<B, C>(stats.expect("bn_train ran")))
    }

    fn bn_train_backward(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        stats: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        epsilon: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        // Only reached if a second derivative were taken; burn has none.
        let inner = |t: FloatTensor<Self>| t.into_primitive();
        let constant = constant::<B, C>;
        let (dx, ds, dt) =
            B::bn_train_backward(inner(x), inner(scale), inner(stats), inner(dy), epsilon);
        (constant(dx), constant(ds), constant(dt))
    }
}
