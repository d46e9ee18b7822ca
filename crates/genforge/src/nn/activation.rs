//! The element-wise operations the models call: on the CPU backend each is one kernel of
//! `cpu::elementwise`, elsewhere (or with `GENFORGE_FUSED=0`) burn's composition, which is also
//! the reference the tests hold the kernels to.

use burn::backend::{DType, Dispatch};
use burn::tensor::Tensor;

use crate::cpu::elementwise::FusedActivations;
use crate::cpu::settings::fused_on;

/// backend, burn's `add` elsewhere; for residual connections.
pub fn add<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> Tensor<D> {
    if fused_on(&a.device()) && a.dtype() == DType::F32 && a.dims() == b.dims() {
        return Tensor::from_dispatch(<Dispatch as FusedActivations>::add_fused(
            a.into_dispatch(),
            b.into_dispatch(),
        ));
    }
    a + b
}

/// The slopes (`1` or the negative-side slope) of every ReLU and leaky ReLU a pass evaluated, and
/// the slopes (`1` inside, `0` outside) and clipped values of every [`clamp`], in call order, so
/// later passes can reuse them: with them held fixed a piecewise-linear network is
/// affine in its input, and a central difference of it along a direction is exactly its
/// Jacobian-vector product, with the parameter gradient PyTorch's double backward gives (it
/// takes the activations' derivatives as constants). Without them a shifted pass that crosses a
/// kink adds an O(1) term to that gradient for every unit it flips, however small the shift:
/// the regularizers' surrogates (`train::regularizers`) were dominated by such terms.
pub struct FrozenSlopes {
    slopes: Vec<Frozen>,
}

/// One activation's local affine map `x -> slope * x + offset`, flattened (offset: none for the
/// ReLUs, the clipped value where a clamp clipped).
#[derive(Clone)]
struct Frozen {
    slope: Tensor<1>,
    offset: Option<Tensor<1>>,
}

enum Tape {
    Record(Vec<Frozen>),
    Replay(Vec<Frozen>, usize),
}

thread_local! {
    static TAPE: std::cell::RefCell<Option<Tape>> = const { std::cell::RefCell::new(None) };
}

impl FrozenSlopes {
    /// Run `f`, recording the slope of every activation it evaluates on this thread.
    pub fn record<R>(f: impl FnOnce() -> R) -> (R, Self) {
        let previous = TAPE.with(|t| t.replace(Some(Tape::Record(Vec::new()))));
        let out = f();
        let tape = TAPE.with(|t| t.replace(previous));
        let Some(Tape::Record(slopes)) = tape else {
            unreachable!("the tape is only replaced here")
        };
        (out, FrozenSlopes { slopes })
    }

    /// Run `f` with every activation it evaluates replaced by a product with the recorded slope
    /// of the same call; `f` must evaluate the recorded pass's activations in the same order and
    /// shapes (the same network on an input of the same shape).
    pub fn replay<R>(&self, f: impl FnOnce() -> R) -> R {
        let previous = TAPE.with(|t| t.replace(Some(Tape::Replay(self.slopes.clone(), 0))));
        let out = f();
        let tape = TAPE.with(|t| t.replace(previous));
        let Some(Tape::Replay(_, used)) = tape else {
            unreachable!("the tape is only replaced here")
        };
        assert_eq!(
            used,
            self.slopes.len(),
            "a replayed pass evaluated {used} of the {} recorded activations",
            self.slopes.len()
        );
        out
    }

    /// How many activations were recorded.
    pub fn len(&self) -> usize {
        self.slopes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slopes.is_empty()
    }
}

/// `Some(slope * x + offset)` while a replay is running (the next recorded map), after recording
/// `local(x)`, the map at `x`, while a recording is; `None` (compute the activation) otherwise.
fn taped<const D: usize>(
    x: &Tensor<D>,
    local: impl FnOnce(Tensor<D>) -> (Tensor<D>, Option<Tensor<D>>),
) -> Option<Tensor<D>> {
    TAPE.with(|t| {
        let mut tape = t.borrow_mut();
        let tape = tape.as_mut()?;
        let n = x.dims().iter().product::<usize>();
        match tape {
            Tape::Record(slopes) => {
                let (slope, offset) = local(x.clone().detach());
                slopes.push(Frozen {
                    slope: slope.reshape([n]),
                    offset: offset.map(|o| o.reshape([n])),
                });
                None
            }
            Tape::Replay(slopes, next) => {
                let f = slopes.get(*next).unwrap_or_else(|| {
                    panic!(
                        "a replayed pass evaluated more activations than the {} recorded",
                        slopes.len()
                    )
                });
                assert_eq!(
                    f.slope.dims()[0],
                    n,
                    "activation {next} replayed on a different shape"
                );
                *next += 1;
                let y = x.clone() * f.slope.clone().reshape(x.dims());
                Some(match &f.offset {
                    Some(o) => y + o.clone().reshape(x.dims()),
                    None => y,
                })
            }
        }
    })
}

/// The slope of a (leaky) ReLU at `x`: 1 where `x >= 0`, else `slope`.
fn relu_slope<const D: usize>(x: Tensor<D>, slope: f64) -> (Tensor<D>, Option<Tensor<D>>) {
    let positive = x.greater_equal_elem(0.0).float();
    (positive * (1.0 - slope) + slope, None)
}

/// `x` clipped to `[-limit, limit]` (NVlabs' `conv_clamp`), a kink like the ReLUs' for
/// [`FrozenSlopes`]: slope 1 inside (the bounds included, as PyTorch's `clamp` backward), 0 and
/// the bound outside.
pub fn clamp<const D: usize>(x: Tensor<D>, limit: f64) -> Tensor<D> {
    let local = |x: Tensor<D>| {
        let inside = x.clone().abs().lower_equal_elem(limit).float();
        let offset = x.clamp(-limit, limit) * (inside.clone().neg() + 1.0);
        (inside, Some(offset))
    };
    if let Some(y) = taped(&x, local) {
        return y;
    }
    x.clamp(-limit, limit)
}

/// ReLU with a one-pass backward from its output, each way in parallel on the CPU backend (burn-flex
/// runs its element-wise operations on one thread), burn's `relu` elsewhere.
pub fn relu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if let Some(y) = taped(&x, |x| relu_slope(x, 0.0)) {
        return y;
    }
    if fused_on(&x.device()) && x.dtype() == DType::F32 {
        return Tensor::from_dispatch(<Dispatch as FusedActivations>::relu_fused(
            x.into_dispatch(),
        ));
    }
    burn::tensor::activation::relu(x)
}

/// LeakyReLU, `x` where `x >= 0` and `slope * x` elsewhere (`slope > 0`), with a one-pass backward
/// on the CPU backend and burn's `leaky_relu` elsewhere.
pub fn leaky_relu<const D: usize>(x: Tensor<D>, slope: f64) -> Tensor<D> {
    if let Some(y) = taped(&x, |x| relu_slope(x, slope)) {
        return y;
    }
    if slope > 0.0 && fused_on(&x.device()) && x.dtype() == DType::F32 {
        Tensor::from_dispatch(<Dispatch as FusedActivations>::leaky_relu_fused(
            x.into_dispatch(),
            slope as f32,
        ))
    } else {
        burn::tensor::activation::leaky_relu(x, slope)
    }
}

/// Softmax along `dim`; over the last axis on the CPU backend one autodiff operation (burn-flex's
/// fused forward, a one-pass backward `y * (g - sum(g * y))`) instead of burn's composition.
pub fn softmax<const D: usize>(x: Tensor<D>, dim: usize) -> Tensor<D> {
    if dim + 1 == D && fused_on(&x.device()) && x.dtype() == DType::F32 {
        Tensor::from_dispatch(<Dispatch as FusedActivations>::softmax_last(
            x.into_dispatch(),
        ))
    } else {
        burn::tensor::activation::softmax(x, dim)
    }
}

/// The PixelCNN gate `tanh(a) * sigmoid(b)` of the halves `[a | b]` of the last axis
/// (`[.., 2c] -> [.., c]`): one operation each way on the CPU backend, burn's composition
/// elsewhere.
pub fn gated_tanh<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if fused_on(&x.device()) && x.dtype() == DType::F32 {
        return Tensor::from_dispatch(<Dispatch as FusedActivations>::gated_tanh(
            x.into_dispatch(),
        ));
    }
    gated_tanh_composed(x)
}

/// `sin(x)`: one vectorised operation each way on the CPU backend (a polynomial within 2e-7
/// instead of libm's scalar `sinf`, a one-pass `g cos(x)` backward), burn's `sin` elsewhere.
pub fn sin<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if fused_on(&x.device()) && x.dtype() == DType::F32 {
        return Tensor::from_dispatch(<Dispatch as FusedActivations>::sin_fused(x.into_dispatch()));
    }
    x.sin()
}

/// GELU with the exact normal CDF, `x Phi(x)`: one operation each way on the CPU backend (a
/// rational `erf` within 1.2e-7 instead of libm's scalar `erff`, a one-pass backward), burn's
/// `gelu` elsewhere.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if fused_on(&x.device()) && x.dtype() == DType::F32 {
        return Tensor::from_dispatch(<Dispatch as FusedActivations>::gelu_fused(
            x.into_dispatch(),
        ));
    }
    burn::tensor::activation::gelu(x)
}

/// Cross-entropy of each row of `logits` (`[n, k]`) against its class in `labels` (`[n]`), in
/// nats: one operation each way on the CPU backend (no `[n, k]` log-probabilities kept, a
/// one-pass `softmax - onehot` backward), burn's `log_softmax` and `gather` elsewhere.
pub fn cross_entropy_rows(logits: Tensor<2>, labels: Tensor<1, burn::tensor::Int>) -> Tensor<1> {
    if fused_on(&logits.device()) && logits.dtype() == DType::F32 {
        return Tensor::from_dispatch(<Dispatch as FusedActivations>::cross_entropy_rows(
            logits.into_dispatch(),
            labels.into_dispatch(),
        ));
    }
    cross_entropy_rows_composed(logits, labels)
}

/// [`cross_entropy_rows`] from burn operations.
pub fn cross_entropy_rows_composed(
    logits: Tensor<2>,
    labels: Tensor<1, burn::tensor::Int>,
) -> Tensor<1> {
    let n = logits.dims()[0];
    let logp = burn::tensor::activation::log_softmax(logits, 1); // [n, k]
    -logp.gather(1, labels.reshape([n, 1])).reshape([n])
}

/// [`gated_tanh`] from burn operations.
pub fn gated_tanh_composed<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let c = x.dims()[D - 1] / 2;
    burn::tensor::activation::tanh(x.clone().narrow(D - 1, 0, c))
        * burn::tensor::activation::sigmoid(x.narrow(D - 1, c, c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::settings::is_cpu;
    use crate::rng::Rng;
    use crate::testing::values;
    use burn::tensor::{Device, TensorData};

    /// A replayed pass multiplies by the slopes the recorded pass saw, call by call: on a
    /// different input it is the linear map of the recorded point, not the activation.
    #[test]
    fn frozen_slopes_replay_the_recorded_activations_as_linear_maps() {
        let device = Device::flex();
        let x = Tensor::<2>::from_data(
            TensorData::new(vec![-1.0f32, 2.0, 0.5, -3.0], [2, 2]),
            &device,
        );
        let y = Tensor::<2>::from_data(
            TensorData::new(vec![4.0f32, -1.0, -2.0, 5.0], [2, 2]),
            &device,
        );
        let net = |t: Tensor<2>| relu(leaky_relu(t, 0.2) * 2.0 - 1.0);
        let (recorded, slopes) = FrozenSlopes::record(|| net(x.clone()));
        assert_eq!(slopes.len(), 2);
        // The recorded pass itself is the plain network.
        assert_eq!(values(recorded), values(net(x.clone())));
        // Leaky slopes at x: [0.2, 1, 1, 0.2]; relu's at x: [0, 1, 1, 0] (its inputs there are
        // [-1.4, 3, 0, -2.2], and 0 counts as >= 0). Replayed on y: relu's slopes times
        // 2 * (leaky slopes * y) - 1.
        let replayed = values(slopes.replay(|| net(y.clone())));
        let want = [0.0, -3.0, -5.0, 0.0]; // 2 * (1 * -1) - 1, 2 * (1 * -2) - 1
        assert_eq!(replayed, want);
        // Outside a recording or replay the activations are themselves again.
        assert_eq!(
            values(net(y.clone())),
            values(relu(leaky_relu(y, 0.2) * 2.0 - 1.0))
        );
    }

    /// A replayed clamp is the identity where the recorded pass was inside the bounds and the
    /// recorded bound where it was clipped, whatever the new input.
    #[test]
    fn frozen_clamp_replays_its_recorded_bounds() {
        let device = Device::flex();
        let x =
            Tensor::<1>::from_data(TensorData::new(vec![-3.0f32, -2.0, 0.5, 2.5], [4]), &device);
        let y = Tensor::<1>::from_data(TensorData::new(vec![7.0f32, 1.0, -9.0, 0.0], [4]), &device);
        let (recorded, frozen) = FrozenSlopes::record(|| clamp(x.clone(), 2.0));
        assert_eq!(values(recorded), [-2.0, -2.0, 0.5, 2.0]);
        // Replayed at the recorded input it is the recorded pass.
        assert_eq!(
            values(frozen.replay(|| clamp(x.clone(), 2.0))),
            [-2.0, -2.0, 0.5, 2.0]
        );
        assert_eq!(
            values(frozen.replay(|| clamp(y.clone(), 2.0))),
            [-2.0, 1.0, -9.0, 2.0]
        );
        assert_eq!(values(clamp(y, 2.0)), [2.0, 1.0, -2.0, 0.0]);
    }

    #[test]
    #[should_panic(expected = "replayed pass evaluated 1 of the 2 recorded activations")]
    fn a_replay_must_evaluate_every_recorded_activation() {
        let device = Device::flex();
        let x = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, -1.0], [2]), &device);
        let (_, slopes) = FrozenSlopes::record(|| relu(relu(x.clone())));
        slopes.replay(|| relu(x.clone()));
    }

    /// Forward values and the input gradient equal burn's composed `leaky_relu`, including at
    /// zero and for a gradient that is not all ones.
    #[test]
    fn matches_burn_leaky_relu_forward_and_backward() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(3);
        let mut v = rng.normal_vec(2 * 3 * 5 * 7, 0.0, 1.0);
        v[0] = 0.0;
        v[1] = -0.0;
        let w = rng.normal_vec(v.len(), 0.0, 1.0);
        let weights = Tensor::<4>::from_data(TensorData::new(w, [2, 3, 5, 7]), &device);
        let run = |fused: bool| {
            let x = Tensor::<4>::from_data(TensorData::new(v.clone(), [2, 3, 5, 7]), &device)
                .require_grad();
            let y = if fused {
                leaky_relu(x.clone(), 0.2)
            } else {
                burn::tensor::activation::leaky_relu(x.clone(), 0.2)
            };
            let grads = (y.clone() * weights.clone()).sum().backward();
            let gx = values(x.grad(&grads).unwrap());
            (values(y), gx)
        };
        assert!(is_cpu(&device) && is_cpu(&Device::flex()));
        let (y_fused, g_fused) = run(true);
        let (y_ref, g_ref) = run(false);
        assert_eq!(y_fused, y_ref);
        assert_eq!(g_fused, g_ref);
        // And against the formula, so both cannot be wrong the same way.
        for ((&x, &g), &wt) in v
            .iter()
            .zip(&g_fused)
            .zip(weights.to_data().as_slice::<f32>().unwrap())
        {
            let expected = if x >= 0.0 { wt } else { 0.2 * wt };
            assert_eq!(g, expected, "x = {x}");
        }
    }

    /// The parallel sum equals burn's, bit for bit, with the upstream gradient for both terms,
    /// whether it runs in place (a fresh first term) or into a new buffer (a shared one, which
    /// must stay unchanged).
    #[test]
    fn add_matches_burn_and_leaves_shared_terms_alone() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(9);
        let n = 2 * 4096 + 3;
        let tensor = |rng: &mut Rng| {
            Tensor::<1>::from_data(TensorData::new(rng.normal_vec(n, 0.0, 1.0), [n]), &device)
        };
        let (a0, b0, up) = (tensor(&mut rng), tensor(&mut rng), tensor(&mut rng));
        for fresh in [true, false] {
            let (a, b) = (a0.clone().require_grad(), b0.clone().require_grad());
            let y = if fresh {
                add(a.clone() * 1.0, b.clone())
            } else {
                add(a.clone(), b.clone())
            };
            let grads = (y.clone() * up.clone()).sum().backward();
            let want = values(a0.clone() + b0.clone());
            assert_eq!(values(y), want, "fresh {fresh}");
            assert_eq!(values(a.grad(&grads).unwrap()), values(up.clone()));
            assert_eq!(values(b.grad(&grads).unwrap()), values(up.clone()));
            assert_eq!(
                values(a.clone()),
                values(a0.clone()),
                "the first term is unchanged"
            );
        }
    }

    /// ReLU: values and input gradient equal burn's, bit for bit, including at zero, at -0.0 and
    /// at NaN (kept forward, its gradient passed through as burn does); over more than one
    /// parallel block.
    #[test]
    fn relu_matches_burn_forward_and_backward() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(8);
        let n = 3 * 4096 + 5;
        let mut v = rng.normal_vec(n, 0.0, 1.0);
        v[0] = 0.0;
        v[1] = -0.0;
        v[2] = f32::NAN;
        let up = Tensor::<1>::from_data(TensorData::new(rng.normal_vec(n, 0.0, 1.0), [n]), &device);
        let run = |fused: bool| {
            let x = Tensor::<1>::from_data(TensorData::new(v.clone(), [n]), &device).require_grad();
            let y = if fused {
                relu(x.clone())
            } else {
                burn::tensor::activation::relu(x.clone())
            };
            let grads = (y.clone() * up.clone()).sum().backward();
            let bits = |t: Tensor<1>| values(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            (bits(y), bits(x.grad(&grads).unwrap()))
        };
        let (ours, theirs) = (run(true), run(false));
        assert_eq!(ours.0, theirs.0);
        assert_eq!(ours.1, theirs.1);
        assert!(f32::from_bits(ours.0[2]).is_nan());
    }

    /// Softmax over the last axis: values and input gradient equal burn's composition, and each
    /// row sums to one.
    #[test]
    fn softmax_matches_burn_forward_and_backward() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(8);
        let shape = [2, 3, 5, 70];
        let v = rng.normal_vec(shape.iter().product(), 0.0, 3.0);
        let up = rng.normal_vec(v.len(), 0.0, 1.0);
        let up = Tensor::<4>::from_data(TensorData::new(up, shape), &device);
        let run = |fused: bool| {
            let x =
                Tensor::<4>::from_data(TensorData::new(v.clone(), shape), &device).require_grad();
            let y = if fused {
                softmax(x.clone(), 3)
            } else {
                burn::tensor::activation::softmax(x.clone(), 3)
            };
            let grads = (y.clone() * up.clone()).sum().backward();
            (values(y), values(x.grad(&grads).unwrap()))
        };
        let ((y, g), (y0, g0)) = (run(true), run(false));
        for (a, b) in y.iter().zip(&y0).chain(g.iter().zip(&g0)) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        for row in y.chunks(70) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }

    /// The gate: values and input gradient equal burn's composition, over a range that
    /// saturates both halves.
    #[test]
    fn gated_tanh_matches_burn_forward_and_backward() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(9);
        let shape = [3, 4, 5, 2 * 130];
        let v = rng.normal_vec(shape.iter().product(), 0.0, 4.0);
        let up_shape = [3, 4, 5, 130];
        let up = rng.normal_vec(up_shape.iter().product(), 0.0, 1.0);
        let up = Tensor::<4>::from_data(TensorData::new(up, up_shape), &device);
        let run = |fused: bool| {
            let x =
                Tensor::<4>::from_data(TensorData::new(v.clone(), shape), &device).require_grad();
            let y = if fused {
                gated_tanh(x.clone())
            } else {
                gated_tanh_composed(x.clone())
            };
            let grads = (y.clone() * up.clone()).sum().backward();
            (values(y), values(x.grad(&grads).unwrap()))
        };
        let ((y, g), (y0, g0)) = (run(true), run(false));
        assert_eq!(y.len(), up_shape.iter().product::<usize>());
        for (a, b) in y.iter().zip(&y0).chain(g.iter().zip(&g0)) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    /// Cross-entropy rows: values and logits gradient equal burn's `log_softmax` + `gather`,
    /// with large logits (no overflow) and an uneven upstream gradient.
    #[test]
    fn cross_entropy_matches_burn_forward_and_backward() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(10);
        let (n, k) = (150, 37);
        let mut v = rng.normal_vec(n * k, 0.0, 3.0);
        v[5] = 80.0;
        let labels: Vec<i64> = (0..n).map(|i| ((i * 7) % k) as i64).collect();
        let up = Tensor::<1>::from_data(TensorData::new(rng.normal_vec(n, 1.0, 1.0), [n]), &device);
        let run = |fused: bool| {
            let x =
                Tensor::<2>::from_data(TensorData::new(v.clone(), [n, k]), &device).require_grad();
            let l = Tensor::<1, burn::tensor::Int>::from_data(
                TensorData::new(labels.clone(), [n]),
                &device,
            );
            let y = if fused {
                cross_entropy_rows(x.clone(), l)
            } else {
                cross_entropy_rows_composed(x.clone(), l)
            };
            let grads = (y.clone() * up.clone()).sum().backward();
            (values(y), values(x.grad(&grads).unwrap()))
        };
        let ((y, g), (y0, g0)) = (run(true), run(false));
        assert_eq!(y.len(), n);
        for (a, b) in y.iter().zip(&y0).chain(g.iter().zip(&g0)) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    /// The fused `sin` (values and gradient) against burn's `sin`, arguments past the fast range
    /// included.
    #[test]
    fn sin_matches_burn() {
        let mut rng = Rng::new(12);
        let mut v = rng.normal_vec(3 * 17 * 90, 0.0, 40.0);
        v[5] = 3.0e4;
        v[4100] = -1.0e6;
        matches_burn(v, [3, 17, 90], sin, |x| x.sin(), 1e-6, &mut rng);
    }

    /// LayerNorm's normalization against burn's composition, rows of 384 (ViTGAN's width) and of
    /// 37, values with a large common offset.
    #[test]
    fn layer_norm_matches_burn() {
        let mut rng = Rng::new(13);
        for (shape, offset) in [([2, 5, 384], 0.0f32), ([3, 4, 37], 50.0)] {
            let v: Vec<f32> = rng
                .normal_vec(shape.iter().product(), 0.0, 2.0)
                .into_iter()
                .map(|v| v + offset)
                .collect();
            let composed = super::super::layer_norm::layer_norm_composed::<3>;
            matches_burn(
                v,
                shape,
                super::super::layer_norm::layer_norm,
                composed,
                2e-5,
                &mut rng,
            );
        }
    }

    /// Values and input gradients (under a random upstream gradient) of `ours` and `burn`'s
    /// version on `v`, equal within `tol` relative.
    fn matches_burn(
        v: Vec<f32>,
        shape: [usize; 3],
        ours: fn(Tensor<3>) -> Tensor<3>,
        burn: fn(Tensor<3>) -> Tensor<3>,
        tol: f32,
        rng: &mut Rng,
    ) {
        let device = Device::flex().autodiff();
        let up = rng.normal_vec(v.len(), 0.0, 1.0);
        let up = Tensor::<3>::from_data(TensorData::new(up, shape), &device);
        let run = |f: fn(Tensor<3>) -> Tensor<3>| {
            let x =
                Tensor::<3>::from_data(TensorData::new(v.clone(), shape), &device).require_grad();
            let y = f(x.clone());
            let grads = (y.clone() * up.clone()).sum().backward();
            (values(y), values(x.grad(&grads).unwrap()))
        };
        let ((y, g), (y0, g0)) = (run(ours), run(burn));
        for (i, (a, b)) in y.iter().zip(&y0).chain(g.iter().zip(&g0)).enumerate() {
            assert!(
                (a - b).abs() < tol * (1.0 + b.abs()),
                "[{i}] {a} vs burn {b}"
            );
        }
    }

    /// GELU: values and input gradient equal burn's `gelu` (libm's erf) over a range that covers
    /// both tails.
    #[test]
    fn gelu_matches_burn_forward_and_backward() {
        let mut rng = Rng::new(11);
        let v = rng.normal_vec(4 * 33 * 70, 0.0, 3.0);
        let burn_gelu = burn::tensor::activation::gelu::<3>;
        matches_burn(v, [4, 33, 70], gelu, burn_gelu, 2e-6, &mut rng);
    }

    /// Without autodiff the fused path is the plain forward.
    #[test]
    fn inference_forward_is_leaky_relu() {
        let device = Device::flex();
        let x = Tensor::<2>::from_floats([[-2.0, -0.5, 0.0, 1.5]], &device);
        let y = leaky_relu(x, 0.2).into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(y, vec![-0.4, -0.1, 0.0, 1.5]);
    }
}
