//! Dense layers, `y = scale x W + b`: on the CPU backend one operation each way
//! (`cpu::dense`), elsewhere (or with `GENFORGE_FUSED=0`) burn's `matmul` and add, the
//! reference the tests hold the kernel to.

use burn::backend::{DType, Dispatch};
use burn::tensor::Tensor;

use crate::cpu::dense::FusedLinear;
pub use crate::cpu::dense::WeightLayout;
use crate::cpu::settings::fused_on;

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
    use crate::rng::Rng;
    use crate::testing::{self, values};

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
