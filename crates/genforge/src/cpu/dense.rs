//! `y = x W + b` as one operation on the CPU backend.
//!
//! burn's composition is a matrix product, then a broadcast add; its backward materialises
//! `W^T` and `x^T` before two more products and reduces `dy` for the bias. On burn-flex every
//! product's output is also allocated zeroed and then copied once more to align it. Here the
//! forward writes the bias rows and accumulates the product onto them (or writes the product
//! alone, into memory that is never zeroed), and the backward runs both products on strided views
//! of `x`, `W` and `dy`, computing only the gradients the graph needs.
//!
//! Dense layers of every family go through `nn::fused_linear::linear`; off the CPU backend (or with
//! `GENFORGE_FUSED=0`) it is burn's composition.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, TensorMetadata, backend_extension};
use rayon::prelude::*;

use super::autodiff::{constant, record, register_grads};
use super::parallel::{contiguous_f32, empty, tensor};

/// How the weight matrix is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightLayout {
    /// `[in, out]`: `y = x W`.
    InOut,
    /// `[out, in]`, PyTorch's `nn.Linear`: `y = x W^T`.
    OutIn,
}

/// Which gradients the graph asks for: the input, the weight, the bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needs {
    pub x: bool,
    pub w: bool,
    pub b: bool,
}

#[backend_extension(Flex, Autodiff)]
pub trait FusedLinear: Backend {
    /// `scale x W + bias`: `x [m, k]`, `w` (`[k, n]` or `[n, k]` by `layout`), `bias [n]` or
    /// `[0]` for none -> `[m, n]`.
    fn dense(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        layout: WeightLayout,
        scale: f32,
    ) -> FloatTensor<Self>;

    /// The gradients of `linear` in `x`, `w` and the bias given `dy`; those not in `needs` come
    /// back empty (`[0]`).
    fn dense_backward(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        layout: WeightLayout,
        scale: f32,
        needs: Needs,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// A strided operand: element `(i, j)` at `i * rs + j * cs`.
type Strided<'a> = (&'a [f32], usize, usize);

/// `[m, n]` row-major `= scale lhs [m, k] . rhs [k, n]`, added to `init` rows when given (each
/// row a copy of `init`), else into memory that is only ever written.
fn product(
    (m, n, k): (usize, usize, usize),
    lhs: Strided,
    rhs: Strided,
    scale: f32,
    init: &[f32],
) -> Vec<f32> {
    let len = m * n;
    let mut out: Vec<f32> = Vec::with_capacity(len);
    let read_dst = !init.is_empty();
    if read_dst {
        for _ in 0..m {
            out.extend_from_slice(init);
        }
    }
    if len == 0 {
        return out;
    }
    if k == 0 {
        out.resize(len, 0.0);
        return out;
    }
    let reach = |(s, rs, cs): Strided, r: usize, c: usize| {
        assert!(r == 0 || c == 0 || s.len() > (r - 1) * rs + (c - 1) * cs)
    };
    reach(lhs, m, k);
    reach(rhs, k, n);
    let parallelism = if m * n * k >= 64 * 64 * 64 {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: `out` has capacity `m * n` and is row-major `[m, n]`; gemm reads it only with
    // `read_dst` (when every element was written above) and writes each element once, so all `m * n`
    // are initialised before `set_len`. The operands reach no further than checked above.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            read_dst,
            lhs.0.as_ptr(),
            lhs.2 as isize,
            lhs.1 as isize,
            rhs.0.as_ptr(),
            rhs.2 as isize,
            rhs.1 as isize,
            1.0,
            scale,
            false,
            false,
            false,
            parallelism,
        );
        out.set_len(len);
    }
    out
}

/// Column sums of `dy [m, n]`, in row blocks summed in parallel.
fn column_sums(dy: &[f32], n: usize) -> Vec<f32> {
    const ROWS: usize = 256;
    dy.par_chunks(ROWS * n)
        .map(|block| {
            let mut s = vec![0.0f32; n];
            for row in block.chunks_exact(n) {
                s.iter_mut().zip(row).for_each(|(s, v)| *s += v);
            }
            s
        })
        .reduce(
            || vec![0.0f32; n],
            |mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                a
            },
        )
}

/// `(m, k, n)` of `x [m, k]` times a weight in `layout`.
fn sizes(x: &FlexTensor, w: &FlexTensor, layout: WeightLayout) -> (usize, usize, usize) {
    let (xs, ws) = (x.shape(), w.shape());
    let n = match layout {
        WeightLayout::InOut => ws[1],
        WeightLayout::OutIn => ws[0],
    };
    (xs[0], xs[1], n)
}

impl FusedLinear for Flex {
    fn dense(
        x: FlexTensor,
        w: FlexTensor,
        bias: FlexTensor,
        layout: WeightLayout,
        scale: f32,
    ) -> FlexTensor {
        let (m, k, n) = sizes(&x, &w, layout);
        let (xs, ws, bs) = (
            contiguous_f32(&x),
            contiguous_f32(&w),
            contiguous_f32(&bias),
        );
        let w_kn = match layout {
            WeightLayout::InOut => (&ws[..], n, 1),
            WeightLayout::OutIn => (&ws[..], 1, k),
        };
        tensor(product((m, n, k), (&xs, k, 1), w_kn, scale, &bs), [m, n])
    }

    fn dense_backward(
        x: FlexTensor,
        w: FlexTensor,
        dy: FlexTensor,
        layout: WeightLayout,
        scale: f32,
        needs: Needs,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (m, k, n) = sizes(&x, &w, layout);
        let (xs, ws, dys) = (contiguous_f32(&x), contiguous_f32(&w), contiguous_f32(&dy));
        // dx [m, k] = dy [m, n] . W^T [n, k]
        let dx = if needs.x {
            let wt = match layout {
                WeightLayout::InOut => (&ws[..], 1, n),
                WeightLayout::OutIn => (&ws[..], k, 1),
            };
            tensor(product((m, k, n), (&dys, n, 1), wt, scale, &[]), [m, k])
        } else {
            empty()
        };
        // dW: x^T [k, m] . dy [m, n] for [in, out], dy^T [n, m] . x [m, k] for [out, in].
        let dw = if needs.w {
            match layout {
                WeightLayout::InOut => tensor(
                    product((k, n, m), (&xs, 1, k), (&dys, n, 1), scale, &[]),
                    [k, n],
                ),
                WeightLayout::OutIn => tensor(
                    product((n, k, m), (&dys, 1, n), (&xs, k, 1), scale, &[]),
                    [n, k],
                ),
            }
        } else {
            empty()
        };
        let db = if needs.b {
            tensor(column_sums(&dys, n), [n])
        } else {
            empty()
        };
        (dx, dw, db)
    }
}

#[derive(Debug)]
struct LinearBackward;

impl<B: Backend + FusedLinear> Backward<B, 3> for LinearBackward {
    /// The input, the weight, its layout and the scale.
    type State = (FloatTensor<B>, FloatTensor<B>, WeightLayout, f32);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let dy = grads.consume::<B>(&ops.node);
        let (x, w, layout, scale) = ops.state;
        let needs = Needs {
            x: node_x.is_some(),
            w: node_w.is_some(),
            b: node_b.is_some(),
        };
        let (dx, dw, db) = B::dense_backward(x, w, dy, layout, scale, needs);
        let ids = [node_x, node_w, node_b].map(|n| n.map(|n| n.id));
        register_grads::<B, 3>(grads, ids, [dx, dw, db]);
    }
}

impl<B: Backend + FusedLinear, C: CheckpointStrategy> FusedLinear for Autodiff<B, C> {
    fn dense(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        layout: WeightLayout,
        scale: f32,
    ) -> FloatTensor<Self> {
        record::<B, C, _, 3>(LinearBackward, [x, w, bias], |[x, w, bias], tracked| {
            if tracked {
                let y = B::dense(x.clone(), w.clone(), bias, layout, scale);
                (y, Some((x, w, layout, scale)))
            } else {
                (B::dense(x, w, bias, layout, scale), None)
            }
        })
    }

    fn dense_backward(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        layout: WeightLayout,
        scale: f32,
        needs: Needs,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        // Only reached if a second derivative were taken; burn has none. Each gradient is
        // returned untracked.
        let (x, w, dy) = (x.into_primitive(), w.into_primitive(), dy.into_primitive());
        let (dx, dw, db) = B::dense_backward(x, w, dy, layout, scale, needs);
        let constant = constant::<B, C>;
        (constant(dx), constant(dw), constant(db))
    }
}
