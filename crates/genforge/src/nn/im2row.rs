//! Channels-last im2col ("im2row") as one CPU operation, for the Gated PixelCNN's masked
//! convolutions.
//!
//! The PixelCNN runs each masked convolution as one dense product over the unmasked taps of a
//! channels-last map `[b, h, w, c]`: output pixel `(y, x)` gathers the taps `(dy, dx)` of a
//! `rows x cols` window whose top-left corner sits `top` rows above and `left` columns left of it,
//! zero outside the map, into `[b, h, w, rows * cols * c]` (tap `dy * cols + dx`). As burn
//! operations that is a zero pad, one slice per tap and a concatenation, and the backward pass
//! splits, zero-fills and adds them again. On the CPU backend it is one pass each way here: the
//! gather forward and its adjoint, a scatter-add, backward (each is the other's gradient).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, DType, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::ops::PadMode;
use burn::tensor::{Tensor, TensorData};
use rayon::prelude::*;

/// The tap window of one masked convolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub rows: usize,
    pub cols: usize,
    /// How far above and left of the output pixel the window starts.
    pub top: usize,
    pub left: usize,
}

impl Window {
    pub fn taps(self) -> usize {
        self.rows * self.cols
    }

    /// The source pixel of tap `(dy, dx)` for output `(y, x)`, if inside an `h x w` map.
    fn source(
        self,
        (y, x): (usize, usize),
        (dy, dx): (usize, usize),
        (h, w): (usize, usize),
    ) -> Option<usize> {
        let (sy, sx) = (
            (y + dy).checked_sub(self.top)?,
            (x + dx).checked_sub(self.left)?,
        );
        (sy < h && sx < w).then_some(sy * w + sx)
    }
}

#[backend_extension(Flex, Autodiff)]
pub trait Im2Row: Backend {
    /// `[b, h, w, c]` -> `[b, h, w, taps * c]`.
    fn im2row(x: FloatTensor<Self>, window: Window) -> FloatTensor<Self>;
    /// The adjoint: `[b, h, w, taps * c]` -> `[b, h, w, c]`, each tap added back to its source.
    fn row2im(rows: FloatTensor<Self>, window: Window) -> FloatTensor<Self>;
}

impl Im2Row for Flex {
    fn im2row(x: FloatTensor<Self>, win: Window) -> FloatTensor<Self> {
        let s = x.shape();
        let (b, h, w, c) = (s[0], s[1], s[2], s[3]);
        let x = x.to_contiguous();
        let x = x.as_slice::<f32>().expect("im2row takes f32");
        let t = win.taps();
        let len = b * h * w * t * c;
        // Every element is written below, a tap's source or zero: no zeroing first.
        let mut out: Vec<f32> = Vec::with_capacity(len);
        if len > 0 {
            out.spare_capacity_mut()[..len]
                .par_chunks_mut(h * w * t * c)
                .zip(x.par_chunks(h * w * c))
                .for_each(|(out, x)| {
                    for (p, out) in out.chunks_mut(t * c).enumerate() {
                        let at = (p / w, p % w);
                        for dy in 0..win.rows {
                            for dx in 0..win.cols {
                                let tap = dy * win.cols + dx;
                                let dst = &mut out[tap * c..(tap + 1) * c];
                                match win.source(at, (dy, dx), (h, w)) {
                                    Some(src) => {
                                        let src = &x[src * c..(src + 1) * c];
                                        dst.iter_mut().zip(src).for_each(|(d, v)| {
                                            d.write(*v);
                                        });
                                    }
                                    None => dst.iter_mut().for_each(|d| {
                                        d.write(0.0);
                                    }),
                                }
                            }
                        }
                    }
                });
        }
        // SAFETY: the loop above wrote all `len` elements.
        unsafe { out.set_len(len) };
        FlexTensor::from_data(TensorData::new(out, [b, h, w, t * c]))
    }

    fn row2im(rows: FloatTensor<Self>, win: Window) -> FloatTensor<Self> {
        let s = rows.shape();
        let t = win.taps();
        let (b, h, w, c) = (s[0], s[1], s[2], s[3] / t);
        let rows = rows.to_contiguous();
        let rows = rows.as_slice::<f32>().expect("row2im takes f32");
        let mut out = vec![0f32; b * h * w * c];
        if c > 0 && h * w > 0 {
            out.par_chunks_mut(h * w * c)
                .zip(rows.par_chunks(h * w * t * c))
                .for_each(|(out, rows)| {
                    for (p, row) in rows.chunks(t * c).enumerate() {
                        let at = (p / w, p % w);
                        for dy in 0..win.rows {
                            for dx in 0..win.cols {
                                if let Some(src) = win.source(at, (dy, dx), (h, w)) {
                                    let tap = dy * win.cols + dx;
                                    let dst = &mut out[src * c..(src + 1) * c];
                                    for (d, v) in dst.iter_mut().zip(&row[tap * c..(tap + 1) * c]) {
                                        *d += v;
                                    }
                                }
                            }
                        }
                    }
                });
        }
        FlexTensor::from_data(TensorData::new(out, [b, h, w, c]))
    }
}

#[derive(Debug)]
struct Im2RowBackward;

impl<B: Backend + Im2Row> Backward<B, 1> for Im2RowBackward {
    /// The window, and whether the recorded operation was the adjoint.
    type State = (Window, bool);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (window, adjoint) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |g| {
            if adjoint {
                B::im2row(g, window)
            } else {
                B::row2im(g, window)
            }
        });
    }
}

fn record<B: Backend + Im2Row, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    window: Window,
    adjoint: bool,
) -> FloatTensor<Autodiff<B, C>> {
    let run = |x| {
        if adjoint {
            B::row2im(x, window)
        } else {
            B::im2row(x, window)
        }
    };
    match Im2RowBackward
        .prepare::<C>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((window, adjoint), run(x.into_primitive())),
        OpsKind::UnTracked(prep) => prep.finish(run(x.into_primitive())),
    }
}

impl<B: Backend + Im2Row, C: CheckpointStrategy> Im2Row for Autodiff<B, C> {
    fn im2row(x: FloatTensor<Self>, window: Window) -> FloatTensor<Self> {
        record::<B, C>(x, window, false)
    }

    fn row2im(rows: FloatTensor<Self>, window: Window) -> FloatTensor<Self> {
        record::<B, C>(rows, window, true)
    }
}

/// The taps of `window` around every pixel of `x` (`[b, h, w, c]` -> `[b, h, w, taps * c]`):
/// one operation on the CPU backend, burn's pad, slices and concatenation elsewhere (or with
/// `GENFORGE_FUSED=0`).
pub fn im2row(x: Tensor<4>, window: Window) -> Tensor<4> {
    if super::activation::fused_on(&x.device()) && x.dtype() == DType::F32 {
        return Tensor::from_dispatch(<Dispatch as Im2Row>::im2row(x.into_dispatch(), window));
    }
    im2row_composed(x, window)
}

/// [`im2row`] from burn operations.
pub fn im2row_composed(x: Tensor<4>, win: Window) -> Tensor<4> {
    let [_, h, w, _] = x.dims();
    // Enough zeros that every window fits: `top` above, `left` left, the rest right.
    let right = (win.cols - 1).saturating_sub(win.left);
    let bottom = (win.rows - 1).saturating_sub(win.top);
    let padded = x.pad(
        [(0, 0), (win.top, bottom), (win.left, right), (0, 0)],
        PadMode::Constant(0.0),
    );
    let views: Vec<Tensor<4>> = (0..win.rows)
        .flat_map(|dy| (0..win.cols).map(move |dx| (dy, dx)))
        .map(|(dy, dx)| padded.clone().narrow(1, dy, h).narrow(2, dx, w))
        .collect();
    Tensor::cat(views, 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::testing::values;
    use crate::rng::Rng;
    use burn::tensor::Device;

    /// Values and the input gradient equal the composed form for the PixelCNN's windows
    /// (vertical 7x7 type A, vertical and horizontal 3x3 type B) and an odd map.
    #[test]
    fn matches_the_composed_taps_forward_and_backward() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(21);
        let windows = [
            Window {
                rows: 3,
                cols: 7,
                top: 3,
                left: 3,
            },
            Window {
                rows: 2,
                cols: 3,
                top: 1,
                left: 1,
            },
            Window {
                rows: 1,
                cols: 2,
                top: 0,
                left: 1,
            },
            Window {
                rows: 2,
                cols: 2,
                top: 0,
                left: 0,
            },
        ];
        for win in windows {
            let shape = [2, 5, 6, 3];
            let v = rng.normal_vec(shape.iter().product(), 0.0, 1.0);
            let up_shape = [2, 5, 6, 3 * win.taps()];
            let up = rng.normal_vec(up_shape.iter().product(), 0.0, 1.0);
            let up = Tensor::<4>::from_data(TensorData::new(up, up_shape), &device);
            let run = |fused: bool| {
                let x = Tensor::<4>::from_data(TensorData::new(v.clone(), shape), &device)
                    .require_grad();
                let y = if fused {
                    im2row(x.clone(), win)
                } else {
                    im2row_composed(x.clone(), win)
                };
                let grads = (y.clone() * up.clone()).sum().backward();
                (values(y), values(x.grad(&grads).unwrap()))
            };
            assert_eq!(run(true), run(false), "{win:?}");
        }
    }

    /// A hand-checked case: the 2-tap horizontal window of a 1x3 row `[1, 2, 3]` is
    /// `[(0, 1), (1, 2), (2, 3)]`, and the adjoint of all-ones counts each pixel's uses.
    #[test]
    fn a_row_by_hand() {
        let device = Device::flex();
        let win = Window {
            rows: 1,
            cols: 2,
            top: 0,
            left: 1,
        };
        let x = Tensor::<4>::from_floats([[[[1.0], [2.0], [3.0]]]], &device);
        assert_eq!(values(im2row(x, win)), vec![0.0, 1.0, 1.0, 2.0, 2.0, 3.0]);
        let ones = Tensor::<4>::ones([1, 1, 3, 2], &device);
        let back = Tensor::from_dispatch(<Dispatch as Im2Row>::row2im(ones.into_dispatch(), win));
        assert_eq!(values::<4>(back), vec![2.0, 2.0, 1.0]);
    }
}
