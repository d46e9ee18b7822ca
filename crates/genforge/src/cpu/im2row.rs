//! Channels-last im2col ("im2row") as one CPU operation, for the Gated PixelCNN's masked
//! convolutions (`nn::im2row` calls it on the CPU backend).
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
use burn::backend::autodiff::ops::{Backward, Ops, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, TensorMetadata, backend_extension};
use burn::tensor::TensorData;
use rayon::prelude::*;

use super::autodiff::record;

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

fn record_im2row<B: Backend + Im2Row, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    window: Window,
    adjoint: bool,
) -> FloatTensor<Autodiff<B, C>> {
    record::<B, C, _, 1>(Im2RowBackward, [x], |[x], _| {
        let y = if adjoint {
            B::row2im(x, window)
        } else {
            B::im2row(x, window)
        };
        (y, Some((window, adjoint)))
    })
}

impl<B: Backend + Im2Row, C: CheckpointStrategy> Im2Row for Autodiff<B, C> {
    fn im2row(x: FloatTensor<Self>, window: Window) -> FloatTensor<Self> {
        record_im2row::<B, C>(x, window, false)
    }

    fn row2im(rows: FloatTensor<Self>, window: Window) -> FloatTensor<Self> {
        record_im2row::<B, C>(rows, window, true)
    }
}
