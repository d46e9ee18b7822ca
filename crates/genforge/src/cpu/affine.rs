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
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, TensorMetadata, backend_extension};
use rayon::prelude::*;

use super::autodiff::{constant, record, register_grads};
use super::elementwise::lane_sum;
use super::norm::{affine_planes, plane_dims, sums_dy};
use super::parallel::{contiguous_f32, empty, owned_values, tensor};

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
        let ids = [node_x, node_scale, node_shift].map(|n| n.map(|n| n.id));
        register_grads::<B, 3>(grads, ids, [dx, dscale, dshift]);
    }
}

impl<B: Backend + ChannelAffine, C: CheckpointStrategy> ChannelAffine for Autodiff<B, C> {
    fn channel_affine(
        x: FloatTensor<Self>,
        scale: FloatTensor<Self>,
        shift: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let scale_tracked = scale.is_tracked();
        record::<B, C, _, 3>(
            ChannelAffineBackward,
            [x, scale, shift],
            |[x, scale, shift], tracked| {
                if !tracked {
                    return (B::channel_affine(x, scale, shift), None);
                }
                let shift_rows = shift.shape()[0];
                // The input is kept only for the scale's gradient; otherwise the operation may run
                // in place on it.
                let saved = scale_tracked.then(|| x.clone());
                let y = B::channel_affine(x, scale.clone(), shift);
                (y, Some((saved, scale, shift_rows)))
            },
        )
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
        let constant = constant::<B, C>;
        let (dx, ds, dt) =
            B::channel_affine_backward(inner(x), inner(scale), shift_rows, inner(dy), needs);
        (constant(dx), constant(ds), constant(dt))
    }
}
