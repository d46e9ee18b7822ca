//! `y[b, c, ...] = x[b, c, ...] * scale[b, c] + shift[b, c]`, the scale and the shift each per
//! sample and channel or per channel only (shared by the batch), as one operation on the CPU
//! backend: a convolution's bias, StyleGAN2's modulation and demodulation.
//!
//! As burn operations each is a broadcast product or sum, which burn-flex runs on one thread, and
//! its backward reduces a full-size product over three axes in turn. Here the planes run in
//! parallel both ways, and the backward reads `dy` and `x` once for the sums
//! `dshift[b, c] = sum_i dy`, `dscale[b, c] = sum_i dy x` (then over the batch for shared ones).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, DType, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::activation::{contiguous_f32, fused_on, lane_sum};
use super::batch_norm::{affine_planes, plane_dims, sums_dy};
use super::parallel::{empty, owned_values, tensor};

#[backend_extension(Flex, Autodiff)]
pub trait ChannelAffine: Backend {
    /// `x [b, c, ...]`; `scale`, `shift` `[b, c]`, `[1, c]`, or `[0]` for none (1 and 0).
    fn channel_affine(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The gradients in `x`, `scale` and `shift` (each of its own shape; `[0]` where none was
    /// given or `needs` leaves it out).
    fn channel_affine_backward(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift_rows: usize,
        dy: FloatTensor<Self>,
        needs: [bool; 3],
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// A `[rows, c]` (or empty) parameter as one value per plane of `b * c`, `none` where empty.
fn per_plane(v: &[f32], (b, c): (usize, usize), none: f32) -> Vec<f32> {
    match v.len() {
        0 => vec![none; b * c],
        n if n == c => v.repeat(b),
        _ => v.to_vec(),
    }
}

/// Per-plane sums `[b * c]` as a parameter of `rows` (`b` or 1) rows.
fn to_rows(per_plane: Vec<f32>, (b, c): (usize, usize), rows: usize) -> FlexTensor {
    if rows == b {
        return tensor(per_plane, [b, c]);
    }
    let mut shared = vec![0.0f32; c];
    for row in per_plane.chunks(c) {
        shared.iter_mut().zip(row).for_each(|(s, v)| *s += v);
    }
    tensor(shared, [1, c])
}

/// `t * a[plane] + d[plane]` over the planes of `t` (`n` values each), in place when `t` owns
/// its contiguous data, else into a new tensor.
fn affine_into(t: FlexTensor, n: usize, a: &[f32], d: &[f32]) -> FlexTensor {
    let (shape, len) = (t.shape(), a.len() * n);
    let mut t = t;
    if let Some(buf) = owned_values(&mut t, len) {
        if n > 0 {
            buf.par_chunks_mut(n).enumerate().for_each(|(p, v)| {
                let (a, d) = (a[p], d[p]);
                v.iter_mut().for_each(|v| *v = *v * a + d);
            });
        }
        return t;
    }
    let dims = (1, a.len(), n);
    tensor(affine_planes(&contiguous_f32(&t), None, dims, a, d), shape)
}

impl ChannelAffine for Flex {
    fn channel_affine(x: FlexTensor, scale: FlexTensor, shift: FlexTensor) -> FlexTensor {
        let (b, c, n) = plane_dims(&x);
        let (a, d) = (
            per_plane(&contiguous_f32(&scale), (b, c), 1.0),
            per_plane(&contiguous_f32(&shift), (b, c), 0.0),
        );
        affine_into(x, n, &a, &d)
    }

    fn channel_affine_backward(
        x: FlexTensor,
        scale: FlexTensor,
        shift_rows: usize,
        dy: FlexTensor,
        [need_x, need_scale, need_shift]: [bool; 3],
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (b, c, n) = plane_dims(&dy);
        let scales = contiguous_f32(&scale).into_owned();
        let want_scale = need_scale && !scales.is_empty();
        // Per plane: sum dy, and sum dy x when the scale's gradient is asked for.
        let sums: Vec<(f32, f32)> = if want_scale || need_shift {
            let dys = contiguous_f32(&dy);
            let xs = if want_scale {
                contiguous_f32(&x)
            } else {
                std::borrow::Cow::Borrowed(&[][..])
            };
            (0..b * c)
                .into_par_iter()
                .map(|p| {
                    let dy = &dys[p * n..][..n];
                    if want_scale {
                        sums_dy(dy, &xs[p * n..][..n])
                    } else {
                        (lane_sum(dy, |v| v), 0.0)
                    }
                })
                .collect()
        } else {
            Vec::new()
        };
        let dscale = if want_scale {
            let rows = scales.len() / c;
            to_rows(sums.iter().map(|s| s.1).collect(), (b, c), rows)
        } else {
            empty()
        };
        let dshift = if need_shift {
            to_rows(sums.iter().map(|s| s.0).collect(), (b, c), shift_rows)
        } else {
            empty()
        };
        // dx = dy * scale: `dy` itself without a scale.
        let dx = match (need_x, scales.is_empty()) {
            (false, _) => empty(),
            (true, true) => dy,
            (true, false) => {
                let a = per_plane(&scales, (b, c), 1.0);
                affine_into(dy, n, &a, &vec![0.0; b * c])
            }
        };
        (dx, dscale, dshift)
    }
}

#[derive(Debug)]
struct ChannelAffineBackward;

impl<B: Backend + ChannelAffine> Backward<B, 3> for ChannelAffineBackward {
    /// The input (kept only when the scale is tracked), the scale and the shift's rows.
    type State = (Option<FloatTensor<B>>, FloatTensor<B>, usize);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_scale, node_shift] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x, scale, shift_rows) = ops.state;
        // Without a tracked scale the input is not read: the scale stands in for it.
        let x = x.unwrap_or_else(|| scale.clone());
        let needs = [&node_x, &node_scale, &node_shift].map(|n| n.is_some());
        let (dx, dscale, dshift) = B::channel_affine_backward(x, scale, shift_rows, dy, needs);
        for (node, grad) in [(node_x, dx), (node_scale, dscale), (node_shift, dshift)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: Backend + ChannelAffine, C: CheckpointStrategy> ChannelAffine for Autodiff<B, C> {
    fn channel_affine(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let scale_tracked = scale.is_tracked();
        let prep = ChannelAffineBackward.prepare::<C>([x.node(), scale.node(), shift.node()]);
        let (x, scale, shift) = (
            x.into_primitive(),
            scale.into_primitive(),
            shift.into_primitive(),
        );
        match prep.compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let shift_rows = shift.shape()[0];
                // The input is kept only for the scale's gradient; otherwise the operation may
                // run in place on it.
                let saved = scale_tracked.then(|| x.clone());
                let y = B::channel_affine(x, scale.clone(), shift);
                prep.finish((saved, scale, shift_rows), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::channel_affine(x, scale, shift)),
        }
    }

    fn channel_affine_backward(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift_rows: usize,
        dy: FloatTensor<Self>,
        needs: [bool; 3],
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        // Only reached if a second derivative were taken; burn has none.
        let inner = |t: FloatTensor<Self>| t.into_primitive();
        let constant = <Self as burn::backend::AutodiffBackend>::from_inner;
        let (dx, ds, dt) =
            B::channel_affine_backward(inner(x), inner(scale), shift_rows, inner(dy), needs);
        (constant(dx), constant(ds), constant(dt))
    }
}

/// `x [b, c, h, w] * scale + shift`, each `[b, c]` (per sample) or `[1, c]` (shared) when given:
/// one parallel operation each way on the CPU backend, burn's broadcast ops elsewhere.
pub fn channel_affine(
    x: Tensor<4>,
    scale: Option<Tensor<2>>,
    shift: Option<Tensor<2>>,
) -> Tensor<4> {
    let device = x.device();
    if !(fused_on(&device) && x.dtype() == DType::F32) {
        let [_, c, _, _] = x.dims();
        let per = |t: Tensor<2>| {
            let rows = t.dims()[0];
            t.reshape([rows, c, 1, 1])
        };
        let y = match scale {
            Some(s) => x * per(s),
            None => x,
        };
        return match shift {
            Some(t) => y + per(t),
            None => y,
        };
    }
    let empty = || Tensor::<2>::zeros([0, 0], &device);
    let (scale, shift) = (scale.unwrap_or_else(empty), shift.unwrap_or_else(empty));
    Tensor::from_dispatch(<Dispatch as ChannelAffine>::channel_affine(
        x.into_dispatch(),
        scale.into_dispatch(),
        shift.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::testing::{self, values};
    use crate::rng::Rng;

    fn randn<const D: usize>(rng: &mut Rng, shape: [usize; D]) -> Tensor<D> {
        testing::randn(rng, shape, 0.3, 1.0)
    }

    /// Values and gradients equal burn's broadcast product and sum for every combination of
    /// per-sample, shared and absent scale and shift, with the gradient of a shared parameter
    /// summed over the batch.
    #[test]
    fn matches_burn_broadcast_ops_and_their_gradients() {
        let mut rng = Rng::new(31);
        let (b, c, h, w) = (3, 4, 5, 2);
        let rows = |r: usize, rng: &mut Rng| (r > 0).then(|| randn(rng, [r, c]));
        for (scale_rows, shift_rows) in [(3, 1), (1, 3), (0, 1), (3, 0), (1, 1), (3, 3), (0, 0)] {
            let x = randn(&mut rng, [b, c, h, w]);
            let up = randn(&mut rng, [b, c, h, w]);
            let (s, t) = (rows(scale_rows, &mut rng), rows(shift_rows, &mut rng));
            let run = |fused: bool| {
                let x = x.clone().require_grad();
                let s = s.clone().map(|s| s.require_grad());
                let t = t.clone().map(|t| t.require_grad());
                // A fresh input, owned by the operation alone: without a tracked scale it runs
                // in place on it.
                let input = x.clone() * 2.0;
                let y = if fused {
                    channel_affine(input, s.clone(), t.clone())
                } else {
                    let mut y = input;
                    if let Some(s) = &s {
                        y = y * s.clone().reshape([scale_rows, c, 1, 1]);
                    }
                    if let Some(t) = &t {
                        y = y + t.clone().reshape([shift_rows, c, 1, 1]);
                    }
                    y
                };
                let grads = (y.clone() * up.clone()).sum().backward();
                let grad =
                    |p: &Option<Tensor<2>>| p.as_ref().map(|p| values(p.grad(&grads).unwrap()));
                (
                    values(y),
                    values(x.grad(&grads).unwrap()),
                    grad(&s),
                    grad(&t),
                )
            };
            let (ours, theirs) = (run(true), run(false));
            let what = format!("scale rows {scale_rows}, shift rows {shift_rows}");
            let close = |a: &[f32], b: &[f32], part: &str| {
                assert_eq!(a.len(), b.len(), "{part} {what}");
                for (x, y) in a.iter().zip(b) {
                    assert!(
                        (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                        "{part} {what}: {x} vs {y}"
                    );
                }
            };
            close(&ours.0, &theirs.0, "y");
            close(&ours.1, &theirs.1, "dx");
            for (part, a, b) in [
                ("dscale", &ours.2, &theirs.2),
                ("dshift", &ours.3, &theirs.3),
            ] {
                assert_eq!(a.is_some(), b.is_some(), "{part} {what}");
                if let (Some(a), Some(b)) = (a, b) {
                    close(a, b, part);
                }
            }
        }
    }
}
