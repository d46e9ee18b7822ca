//! `y = x W + b` as one operation on the CPU backend.
//!
//! burn's composition is a matrix product, then a broadcast add; its backward materialises
//! `W^T` and `x^T` before two more products and reduces `dy` for the bias. On burn-flex every
//! product's output is also allocated zeroed and then copied once more to align it. Here the
//! forward writes the bias rows and accumulates the product onto them (or writes the product
//! alone, into memory that is never zeroed), and the backward runs both products on strided views
//! of `x`, `W` and `dy`, computing only the gradients the graph needs.
//!
//! Dense layers of every family go through [`linear`]; off the CPU backend (or with
//! `GENFORGE_FUSED=0`) it is burn's composition.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, DType, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::activation::{contiguous_f32, fused_on};
use super::parallel::{empty, tensor};

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
        for (node, grad) in [(node_x, dx), (node_w, dw), (node_b, db)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
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
        let prep = LinearBackward.prepare::<C>([x.node(), w.node(), bias.node()]);
        let (x, w, bias) = (
            x.into_primitive(),
            w.into_primitive(),
            bias.into_primitive(),
        );
        match prep.compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let y = B::dense(x.clone(), w.clone(), bias, layout, scale);
                prep.finish((x, w, layout, scale), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::dense(x, w, bias, layout, scale)),
        }
    }

    fn dense_backward(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        layout: WeightLayout,
        scale: f32,
        needs: Needs,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        // Only reached if a second derivative were taken; burn has none.
        let inner = |t: FloatTensor<Self>| t.into_primitive();
        let constant = <Self as burn::backend::AutodiffBackend>::from_inner;
        let (dx, dw, db) = B::dense_backward(inner(x), inner(w), inner(dy), layout, scale, needs);
        (constant(dx), constant(dw), constant(db))
    }
}

/// `x [m, k]` times `w` stored as `layout` says, plus `bias [n]` when given: one fused operation
/// on the CPU backend, burn's `matmul` and add elsewhere.
pub fn linear(
    x: Tensor<2>,
    w: Tensor<2>,
    layout: WeightLayout,
    bias: Option<Tensor<1>>,
) -> Tensor<2> {
    scaled_linear(x, w, 1.0, layout, bias)
}

/// [`linear`] with the weight times a constant `scale` (equalized learning rate's runtime
/// gain), folded into the products rather than applied to the weight every pass.
pub fn scaled_linear(
    x: Tensor<2>,
    w: Tensor<2>,
    scale: f64,
    layout: WeightLayout,
    bias: Option<Tensor<1>>,
) -> Tensor<2> {
    let device = x.device();
    if !(fused_on(&device) && x.dtype() == DType::F32) {
        let w = if scale == 1.0 { w } else { w * scale };
        let y = match layout {
            WeightLayout::InOut => x.matmul(w),
            WeightLayout::OutIn => x.matmul(w.transpose()),
        };
        return match bias {
            Some(b) => y + b.unsqueeze::<2>(),
            None => y,
        };
    }
    let bias = bias.unwrap_or_else(|| Tensor::zeros([0], &device));
    Tensor::from_dispatch(<Dispatch as FusedLinear>::dense(
        x.into_dispatch(),
        w.into_dispatch(),
        bias.into_dispatch(),
        layout,
        scale as f32,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::testing::{self, values};
    use crate::rng::Rng;

    fn randn<const D: usize>(rng: &mut Rng, shape: [usize; D]) -> Tensor<D> {
        testing::randn(rng, shape, 0.0, 1.0)
    }

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }

    /// Output and the gradients in `x`, `w` and the bias equal burn's `matmul` + add (of the
    /// weight times a scale), for both weight layouts, with and without a bias, from a transposed
    /// (non-contiguous) input, and at sizes on both sides of the threaded products; a weight that
    /// is a constant gets none.
    #[test]
    fn matches_burn_matmul_and_its_gradients() {
        const SCALE: f64 = 0.37;
        let mut rng = Rng::new(21);
        for (m, k, n) in [(5, 3, 4), (1, 7, 1), (200, 70, 33)] {
            for layout in [WeightLayout::InOut, WeightLayout::OutIn] {
                for with_bias in [true, false] {
                    let what = format!("{m}x{k}x{n} {layout:?} bias {with_bias}");
                    let xt = randn(&mut rng, [k, m]);
                    let w = match layout {
                        WeightLayout::InOut => randn(&mut rng, [k, n]),
                        WeightLayout::OutIn => randn(&mut rng, [n, k]),
                    };
                    let b = randn(&mut rng, [n]);
                    let up = randn(&mut rng, [m, n]);
                    let run = |fused: bool| {
                        let (xt, w, b) = (
                            xt.clone().require_grad(),
                            w.clone().require_grad(),
                            b.clone().require_grad(),
                        );
                        let x = xt.clone().transpose(); // [m, k], strided
                        let bias = with_bias.then(|| b.clone());
                        let y = if fused {
                            scaled_linear(x, w.clone(), SCALE, layout, bias)
                        } else {
                            let ws = w.clone() * SCALE;
                            let y = match layout {
                                WeightLayout::InOut => x.matmul(ws),
                                WeightLayout::OutIn => x.matmul(ws.transpose()),
                            };
                            bias.map_or(y.clone(), |b| y + b.unsqueeze())
                        };
                        let grads = (y.clone() * up.clone()).sum().backward();
                        (
                            values(y),
                            values(xt.grad(&grads).unwrap()),
                            values(w.grad(&grads).unwrap()),
                            b.grad(&grads).map(values),
                        )
                    };
                    let (ours, theirs) = (run(true), run(false));
                    close(&ours.0, &theirs.0, &format!("y {what}"));
                    close(&ours.1, &theirs.1, &format!("dx {what}"));
                    close(&ours.2, &theirs.2, &format!("dw {what}"));
                    assert_eq!(ours.3.is_some(), with_bias, "{what}");
                    if let (Some(a), Some(b)) = (ours.3, theirs.3) {
                        close(&a, &b, &format!("db {what}"));
                    }
                }
            }
        }
        // A constant weight: only the input's gradient is asked for and computed.
        let x = randn(&mut rng, [3, 4]).require_grad();
        let w = randn(&mut rng, [4, 2]);
        let grads = linear(x.clone(), w.clone(), WeightLayout::InOut, None)
            .sum()
            .backward();
        assert!(w.grad(&grads).is_none());
        let expected = values(w.sum_dim(1).reshape([1, 4]).repeat_dim(0, 3));
        close(
            &values(x.grad(&grads).unwrap()),
            &expected,
            "dx, constant w",
        );
    }
}
