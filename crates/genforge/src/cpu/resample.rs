//! Resampling kernels on the CPU backend: StyleGAN's 3x3 binomial blur as two separable passes
//! per plane, nearest 2x upsampling and 2x2 block sums (average pooling), each one autodiff
//! operation with its adjoint as the backward (the blur is symmetric, so its own adjoint; up and
//! down are each other's). The layers call them through `nn::blur`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, TensorMetadata, backend_extension};
use burn::tensor::TensorData;

use super::autodiff::record;
use super::parallel::filled;

/// The separable 1-D taps, normalised.
pub const TAPS: [f32; 3] = [0.25, 0.5, 0.25];

#[backend_extension(Flex, Autodiff)]
pub trait BlurOps: Backend {
    /// The 3x3 binomial blur `outer(TAPS, TAPS)` on `[b, c, h, w]`, zero padding.
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
    record::<B, C, _, 1>(ResampleBackward, [x], |[x], _| {
        let y = if up {
            B::up2x(x, scale)
        } else {
            B::down2x(x, scale)
        };
        (y, Some((up, scale)))
    })
}

impl<B: Backend + BlurOps, C: CheckpointStrategy> BlurOps for Autodiff<B, C> {
    fn blur3x3(x: FloatTensor<Self>) -> FloatTensor<Self> {
        record::<B, C, _, 1>(BlurBackward, [x], |[x], _| (B::blur3x3(x), Some(())))
    }

    fn up2x(x: FloatTensor<Self>, scale: f32) -> FloatTensor<Self> {
        resample::<B, C>(x, true, scale)
    }

    fn down2x(x: FloatTensor<Self>, scale: f32) -> FloatTensor<Self> {
        resample::<B, C>(x, false, scale)
    }
}
