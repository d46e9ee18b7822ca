//! Batch normalization in training mode (Ioffe & Szegedy 2015), with an optional per-sample
//! affine map (BigGAN's class-conditional batch norm): on the CPU backend one fused operation
//! each way (`cpu::norm`), elsewhere and in inference burn's `BatchNorm` layer, the reference the
//! tests hold the kernel to.

use burn::backend::{DType, Dispatch};
use burn::module::RunningState;
use burn::nn::BatchNorm;
use burn::tensor::Tensor;

use crate::cpu::norm::FusedBatchNorm;
use crate::cpu::settings::fused_on;

/// `bn` on `x [b, c, h, w]`, its output then scaled and shifted per sample and channel by `affine`
/// (`[b, c]` each) when given: the class-conditional batch norm of BigGAN. In training (an
/// autodiff device and the layer's training flag, as burn's layer decides) the batch statistics
/// normalize and update the running ones with the layer's momentum; on the CPU backend as one
/// fused operation, elsewhere through burn's layer.
pub fn forward(bn: &BatchNorm, x: Tensor<4>, affine: Option<(Tensor<2>, Tensor<2>)>) -> Tensor<4> {
    let training = x.device().is_autodiff() && bn.training.is_enabled();
    if !(training && fused_on(&x.device()) && x.dtype() == DType::F32) {
        let y = bn.forward(x);
        return match affine {
            Some((scale, shift)) => {
                let [b, c] = scale.dims();
                y * scale.reshape([b, c, 1, 1]) + shift.reshape([b, c, 1, 1])
            }
            None => y,
        };
    }
    let [b, c, _, _] = x.dims();
    let gamma = bn.gamma.val().unsqueeze::<2>().expand([b, c]);
    let beta = bn.beta.val().unsqueeze::<2>().expand([b, c]);
    // (x̂ gamma + beta) s + t = x̂ (gamma s) + (beta s + t)
    let (scale, shift) = match affine {
        Some((s, t)) => (gamma * s.clone(), beta * s + t),
        None => (gamma, beta),
    };
    let (y, mean, var) = fused_train(x, scale, shift, bn.epsilon);
    let m = bn.momentum;
    update_running(&bn.running_mean, mean, m);
    update_running(&bn.running_var, var, m);
    y
}

/// The CPU kernel's training-mode batch norm: the output and the batch's per-channel mean and
/// biased variance (`[c]` each, detached).
fn fused_train(
    x: Tensor<4>,
    scale: Tensor<2>,
    shift: Tensor<2>,
    eps: f64,
) -> (Tensor<4>, Tensor<1>, Tensor<1>) {
    let c = x.dims()[1];
    let (y, stats) = <Dispatch as FusedBatchNorm>::bn_train(
        x.into_dispatch(),
        scale.into_dispatch(),
        shift.into_dispatch(),
        eps,
    );
    let stats = Tensor::<2>::from_dispatch(stats).detach();
    let [mean, var] = [0, 1].map(|i| stats.clone().slice([i..i + 1, 0..c]).reshape([c]));
    (Tensor::from_dispatch(y), mean, var)
}

/// `running <- (1 - momentum) running + momentum batch`.
fn update_running(running: &RunningState<Tensor<1>>, batch: Tensor<1>, momentum: f64) {
    let old = running.value_sync().to_device(&batch.device());
    running.update((old.mul_scalar(1.0 - momentum) + batch.mul_scalar(momentum)).detach());
}

/// Batch norm of `x [b, c, h, w]` with its statistics in buffers and no affine of its own (
/// BigGAN-PyTorch's `F.batch_norm(x, stored_mean, stored_var, ...)`), then scaled and shifted per
/// sample and channel by `affine` (`[b, c]` each). Training (`training` and an autodiff device,
/// as burn's `BatchNorm` decides) normalizes by the batch's mean and biased variance and moves
/// the buffers by `momentum` towards the mean and the unbiased variance, as PyTorch does;
/// evaluation normalizes by the buffers.
pub fn forward_stored(
    x: Tensor<4>,
    training: bool,
    stored_mean: &RunningState<Tensor<1>>,
    stored_var: &RunningState<Tensor<1>>,
    eps: f64,
    momentum: f64,
    (scale, shift): (Tensor<2>, Tensor<2>),
) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let device = x.device();
    let (scale4, shift4) = (
        scale.clone().reshape([b, c, 1, 1]),
        shift.clone().reshape([b, c, 1, 1]),
    );
    if !(training && device.is_autodiff()) {
        let mean = stored_mean.value().to_device(&device).reshape([1, c, 1, 1]);
        let var = stored_var.value().to_device(&device).reshape([1, c, 1, 1]);
        return (x - mean) / (var + eps).sqrt() * scale4 + shift4;
    }
    let (y, mean, var) = if fused_on(&device) && x.dtype() == DType::F32 {
        fused_train(x, scale, shift, eps)
    } else {
        let mean = x.clone().mean_dim(0).mean_dim(2).mean_dim(3); // [1, c, 1, 1]
        let centred = x - mean.clone();
        let var = centred.clone().square().mean_dim(0).mean_dim(2).mean_dim(3);
        let y = centred / (var.clone() + eps).sqrt() * scale4 + shift4;
        (y, mean.detach().reshape([c]), var.detach().reshape([c]))
    };
    let n = (b * h * w) as f64;
    update_running(stored_mean, mean, momentum);
    update_running(stored_var, var.mul_scalar(n / (n - 1.0).max(1.0)), momentum);
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::testing::{randn, values};
    use burn::module::Param;
    use burn::nn::BatchNormConfig;
    use burn::tensor::Device;

    fn close(a: Vec<f32>, b: Vec<f32>, what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: sizes");
        let scale = b.iter().map(|v| v.abs()).fold(1e-3f32, f32::max);
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= 2e-5 * scale + 1e-6,
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }

    /// The fused operation against burn's composition (its `BatchNorm` layer, then the affine
    /// map by broadcasting): outputs, running statistics after two steps, and the gradients in
    /// `x`, gamma, beta and the per-sample map, for plain and conditional use and odd sizes.
    #[test]
    fn matches_burn_batch_norm_and_its_gradients() {
        let mut rng = Rng::new(11);
        let cases = [(4, 3, 5, 5, false), (3, 5, 4, 7, true), (3, 2, 1, 1, false)];
        for (b, c, h, w, conditional) in cases {
            let device = Device::flex().autodiff();
            let (gamma, beta) = (
                randn(&mut rng, [c], 1.0, 0.3),
                randn(&mut rng, [c], 0.0, 0.3),
            );
            let x = randn(&mut rng, [b, c, h, w], 0.7, 2.0);
            let up = randn(&mut rng, [b, c, h, w], 0.0, 1.0);
            let s = randn(&mut rng, [b, c], 1.0, 0.5);
            let t = randn(&mut rng, [b, c], 0.0, 0.5);
            let what = format!("b{b} c{c} {h}x{w} conditional {conditional}");
            let run = |fused: bool| {
                // A fresh layer per run: running statistics start from burn's defaults.
                let mut bn = BatchNormConfig::new(c).init(&device);
                bn.gamma = Param::from_tensor(gamma.clone());
                bn.beta = Param::from_tensor(beta.clone());
                let (x, s, t) = (
                    x.clone().require_grad(),
                    s.clone().require_grad(),
                    t.clone().require_grad(),
                );
                let affine = conditional.then(|| (s.clone(), t.clone()));
                let y = if fused {
                    forward(&bn, x.clone(), affine.clone());
                    forward(&bn, x.clone(), affine)
                } else {
                    let plain = |x: Tensor<4>| {
                        let y = bn.forward(x);
                        match &affine {
                            Some((s, t)) => {
                                y * s.clone().reshape([b, c, 1, 1])
                                    + t.clone().reshape([b, c, 1, 1])
                            }
                            None => y,
                        }
                    };
                    plain(x.clone());
                    plain(x.clone())
                };
                let grads = (y.clone() * up.clone()).sum().backward();
                let mut out = vec![
                    values(y.inner()),
                    values(x.grad(&grads).unwrap()),
                    values(bn.gamma.grad(&grads).unwrap()),
                    values(bn.beta.grad(&grads).unwrap()),
                    values(bn.running_mean.value()),
                    values(bn.running_var.value()),
                ];
                if conditional {
                    out.push(values(s.grad(&grads).unwrap()));
                    out.push(values(t.grad(&grads).unwrap()));
                }
                out
            };
            let names = [
                "y",
                "dx",
                "dgamma",
                "dbeta",
                "running mean",
                "running var",
                "ds",
                "dt",
            ];
            for ((ours, burn), name) in run(true).into_iter().zip(run(false)).zip(names) {
                close(ours, burn, &format!("{what}: {name}"));
            }
        }
    }
}
