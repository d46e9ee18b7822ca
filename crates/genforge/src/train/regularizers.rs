//! Gradient penalties with first-order autodiff.
//!
//! R1 (Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?") is
//! `(gamma / 2) E[||grad_x D(x)||^2]` on real images. Its parameter gradient is
//! `gamma E[H_{theta,x} g]` with `g = grad_x D(x)`, a mixed Hessian-vector product, which burn
//! cannot get by differentiating a gradient. A central difference of D along the fixed direction
//! `g` has the same parameter gradient up to O(eps^2):
//!
//! ```text
//! F(X) = sum_i D(x_i),  G = grad_X F(X)
//! L_s = gamma / (2 b eps) (F(X + eps G) - F(X - eps G))
//! grad_theta L_s = (gamma / b) grad_theta (G . grad_X F(X)) + O(eps^2) = grad_theta R1
//! ```
//!
//! `eps = step / rms_i ||g_i||`, so a typical sample moves the same small distance whatever the
//! gradient scale. `L_s` is only a surrogate: its value is about twice R1, which is logged from
//! `G`.
//!
//! The shifted passes reuse the slopes D's (leaky) ReLUs took at `X` ([`FrozenSlopes`]): a
//! piecewise-linear D is then affine along `G`, the difference is exact, and the parameter
//! gradient is the one PyTorch's double backward gives. Letting the shifted passes cross kinks
//! instead adds an O(1) term per flipped unit (the activation's derivative jumps), and on the
//! 32x32 StyleGAN D those terms swamped R1: PyTorch's own training of the same network with
//! that surrogate collapsed to one digit as genforge's did, and with the exact gradient did not.

use burn::tensor::Tensor;

use crate::nn::activation::FrozenSlopes;

/// Distance each real image is moved along its gradient direction (images are in [-1, 1]).
pub const FD_STEP: f64 = 1e-2;

/// `grad_x sum_i D(x_i)`, `[b, c, h, w]`, detached. `x` must be on an autodiff device.
pub fn input_gradient<const D: usize>(
    d: impl Fn(Tensor<D>) -> Tensor<1>,
    x: Tensor<D>,
) -> Tensor<D> {
    let x = x.detach().require_grad();
    gradient_at(d(x.clone()), &x)
}

/// [`input_gradient`] and the slopes of D's activations at `x`, which the surrogates hold fixed
/// in their shifted passes.
fn input_gradient_and_slopes<const D: usize>(
    d: impl Fn(Tensor<D>) -> Tensor<1>,
    x: Tensor<D>,
) -> (Tensor<D>, FrozenSlopes) {
    let x = x.detach().require_grad();
    let (out, slopes) = FrozenSlopes::record(|| d(x.clone()));
    (gradient_at(out, &x), slopes)
}

/// `grad_x sum(out)`, detached; `x` is the tracked input `out` was computed from.
fn gradient_at<const D: usize>(out: Tensor<1>, x: &Tensor<D>) -> Tensor<D> {
    let grads = out.sum().backward();
    let g = x.grad(&grads).expect("D's output depends on its input");
    Tensor::from_inner(g).detach()
}

/// Squared gradient norm per sample, `[b]`.
pub fn squared_norms<const D: usize>(g: Tensor<D>) -> Tensor<1> {
    let b = g.dims()[0];
    g.square().reshape([b as i32, -1]).sum_dim(1).reshape([b])
}

/// `(F(X + eps V) - F(X - eps V)) / (2 eps)` with `F(X) = sum_i D(x_i)`: the derivative of D
/// along the fixed direction `v` (`[b, c, h, w]`), whose parameter gradient is
/// `grad_theta (V . grad_X F(X))`. `eps = FD_STEP / rms_i ||v_i||`, so the typical sample moves
/// `FD_STEP`. D is evaluated on the two shifted batches separately, each the size of the
/// original, so batch-coupled layers (minibatch standard deviation) see the same grouping as in
/// the gradient: the whole batch is one point and `V` one direction.
fn directional_derivative<const D: usize>(
    d: impl Fn(Tensor<D>) -> Tensor<1>,
    x: Tensor<D>,
    v: Tensor<D>,
    mean_sq_norm: f64,
    slopes: &FrozenSlopes,
) -> Tensor<1> {
    let eps = FD_STEP / mean_sq_norm.sqrt().max(1e-12);
    let step = v * eps;
    let plus = slopes.replay(|| d(x.clone() + step.clone())).sum();
    let minus = slopes.replay(|| d(x - step)).sum();
    (plus - minus) / (2.0 * eps)
}

/// The R1 surrogate loss (backpropagate it for the R1 parameter gradient) and the logged
/// `mean ||grad_x D(x)||^2`. `d` evaluates the discriminator on a batch, `d_const` the same
/// discriminator with its parameters untracked (the input gradient needs no parameter
/// gradients, so its backward pass skips them); `real` is `[b, c, h, w]`.
pub fn r1_surrogate(
    d: impl Fn(Tensor<4>) -> Tensor<1>,
    d_const: impl Fn(Tensor<4>) -> Tensor<1>,
    real: Tensor<4>,
    gamma: f64,
) -> (Tensor<1>, f64) {
    let b = real.dims()[0];
    let (g, slopes) = input_gradient_and_slopes(d_const, real.clone()); // [b, c, h, w]
    let r1 = squared_norms(g.clone()).mean().into_scalar::<f32>() as f64;
    let loss = directional_derivative(&d, real, g, r1, &slopes) * (gamma / b as f64);
    (loss, r1)
}

/// The WGAN-GP penalty (Gulrajani et al. 2017, "Improved Training of Wasserstein GANs";
/// Progressive GAN's `D_wgangp`): `lambda mean_i (||g_i|| - 1)^2` with `g = grad_x D(x_hat)` at
/// `x_hat = lerp(real, fake, u)`, `u ~ U(0, 1)` per sample. Its parameter gradient is
/// `(lambda / b) grad_theta (V . G)` with the fixed direction `v_i = 2 (||g_i|| - 1) g_i /
/// ||g_i||` (the penalty's derivative in `g_i`), which [`directional_derivative`] gives with
/// first-order autodiff. `d` and `d_const` as in [`r1_surrogate`]. Returns the surrogate loss
/// and the logged penalty `mean (||g_i|| - 1)^2`.
pub fn gradient_penalty_surrogate(
    d: impl Fn(Tensor<4>) -> Tensor<1>,
    d_const: impl Fn(Tensor<4>) -> Tensor<1>,
    x_hat: Tensor<4>,
    lambda: f64,
) -> (Tensor<1>, f64) {
    let b = x_hat.dims()[0];
    let (g, slopes) = input_gradient_and_slopes(d_const, x_hat.clone()); // [b, c, h, w]
    let norms = squared_norms(g.clone()).sqrt(); // [b]
    let penalty = (norms.clone() - 1.0).square().mean().into_scalar::<f32>() as f64;
    let scale = (norms.clone() - 1.0) * 2.0 / norms.clamp_min(1e-12); // [b]
    let v = g * scale.reshape([b, 1, 1, 1]); // [b, c, h, w]
    let v_sq = squared_norms(v.clone()).mean().into_scalar::<f32>() as f64;
    let loss = directional_derivative(&d, x_hat, v, v_sq, &slopes) * (lambda / b as f64);
    (loss, penalty)
}

/// StyleGAN2's path length regularization (Karras et al. 2020, section 3.2; NVlabs'
/// `StyleGAN2Loss`, `Gpl`): with `y ~ N(0, I) / sqrt(h w)`, `g_i = grad_{w_i} (G(w_i) . y)` over
/// the `k` ws of sample `i`, the length `L_i = sqrt(mean_k ||g_ik||^2)` and the penalty
/// `weight * mean_i (L_i - a)^2`, `a` the running mean of `L`. As for R1, the parameter gradient
/// `(weight / b) grad_theta (V . G)` with `v_i = 2 (L_i - a) g_i / (k L_i)` comes from a central
/// difference of `F(W) = sum_i G(w_i) . y_i` along `V`, through the mapping network as well
/// (`ws` is tracked). `f` evaluates `F` per sample (`[b, k, w_dim] -> [b]`) with G's parameters
/// tracked, `f_const` untracked. `pl_mean` (`a`) moves toward this batch's mean length by
/// `decay` first, as NVlabs' does. Returns the surrogate loss, the mean `L` and the penalty
/// `mean (L_i - a)^2`.
pub fn path_length_surrogate(
    f: impl Fn(Tensor<3>) -> Tensor<1>,
    f_const: impl Fn(Tensor<3>) -> Tensor<1>,
    ws: Tensor<3>,
    pl_mean: &mut f64,
    decay: f64,
    weight: f64,
) -> (Tensor<1>, f64, f64) {
    let [b, k, _] = ws.dims();
    let (g, slopes) = input_gradient_and_slopes(f_const, ws.clone()); // [b, k, w_dim]
    let lengths = (squared_norms(g.clone()) / k as f64).sqrt(); // [b]
    let mean_length = lengths.clone().mean().into_scalar::<f32>() as f64;
    *pl_mean += (mean_length - *pl_mean) * decay;
    let pl_mean = *pl_mean;
    let penalty = (lengths.clone() - pl_mean)
        .square()
        .mean()
        .into_scalar::<f32>() as f64;
    let scale = (lengths.clone() - pl_mean) * (2.0 / k as f64) / lengths.clamp_min(1e-12); // [b]
    let v = g * scale.reshape([b, 1, 1]); // [b, k, w_dim]
    let v_sq = squared_norms(v.clone()).mean().into_scalar::<f32>() as f64;
    let loss = directional_derivative(&f, ws, v, v_sq, &slopes) * (weight / b as f64);
    (loss, mean_length, penalty)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::stylegan::{Discriminator, StyleganConfig};
    use crate::rng::Rng;
    use burn::module::Module;
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, TensorData};

    fn tensor4(v: Vec<f32>, shape: [usize; 4], device: &Device) -> Tensor<4> {
        Tensor::from_data(TensorData::new(v, shape), device)
    }

    /// The test discriminator `D(x) = sum_j a_j x_j^3 / 3 + sum_j x_j` on `b` samples of `n`
    /// features, whose input gradient `g_ij = a_j x_ij^2 + 1` has a closed form: runs
    /// `surrogate` on it and returns `a`, `x`, the surrogate's gradient in `a` and its logged
    /// value.
    fn on_cubic_d(
        seed: u64,
        [b, n]: [usize; 2],
        surrogate: impl FnOnce(
            &dyn Fn(Tensor<4>) -> Tensor<1>,
            &dyn Fn(Tensor<4>) -> Tensor<1>,
            Tensor<4>,
        ) -> (Tensor<1>, f64),
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>, f64) {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(seed);
        let av = rng.normal_vec(n, 0.0, 0.7);
        let xv = rng.normal_vec(b * n, 0.0, 0.8);
        let a = Tensor::<1>::from_data(TensorData::new(av.clone(), [n]), &device).require_grad();
        let at = |a: Tensor<1>| {
            move |x: Tensor<4>| {
                let bb = x.dims()[0];
                let x = x.reshape([bb, n]);
                (x.clone().powi_scalar(3) * a.clone().unsqueeze::<2>() / 3.0 + x)
                    .sum_dim(1)
                    .reshape([bb])
            }
        };
        let (d, d_const) = (at(a.clone()), at(a.clone().detach()));
        let x = tensor4(xv.clone(), [b, n, 1, 1], &device);
        let (loss, logged) = surrogate(&d, &d_const, x);
        let grad = a.grad(&loss.backward()).unwrap();
        (
            av,
            xv,
            grad.into_data().try_to_vec::<f32>().unwrap(),
            logged,
        )
    }

    fn assert_close(got: f32, want: f64, what: &str) {
        let got = got as f64;
        assert!(
            (got - want).abs() < 2e-3 * (1.0 + want.abs()),
            "{what}: surrogate {got}, exact {want}"
        );
    }

    #[test]
    fn surrogate_gradient_equals_the_analytic_r1_gradient() {
        // R1 = (gamma/2) mean_i sum_j g_ij^2, so dR1/da_j = gamma mean_i g_ij x_ij^2.
        let (b, n, gamma) = (3, 8, 10.0);
        let (av, xv, grad, r1) = on_cubic_d(7, [b, n], |d, dc, x| r1_surrogate(d, dc, x, gamma));
        let g = |i: usize, j: usize| av[j] as f64 * (xv[i * n + j] as f64).powi(2) + 1.0;
        let mut r1_exact = 0.0;
        for (j, got) in grad.iter().enumerate() {
            let mut want = 0.0;
            for i in 0..b {
                want += gamma * g(i, j) * (xv[i * n + j] as f64).powi(2) / b as f64;
                r1_exact += g(i, j).powi(2) / b as f64;
            }
            assert_close(*got, want, &format!("a_{j}"));
        }
        assert!((r1 - r1_exact).abs() < 1e-3 * r1_exact, "{r1} {r1_exact}");
    }

    #[test]
    fn gradient_penalty_surrogate_has_the_analytic_parameter_gradient() {
        // P = (lambda / b) sum_i (||g_i|| - 1)^2, so
        // dP/da_j = (lambda / b) sum_i 2 (||g_i|| - 1) / ||g_i|| g_ij x_ij^2.
        let (b, n, lambda) = (4, 6, 10.0);
        let (av, xv, grad, penalty) = on_cubic_d(11, [b, n], |d, dc, x| {
            gradient_penalty_surrogate(d, dc, x, lambda)
        });
        let g = |i: usize, j: usize| av[j] as f64 * (xv[i * n + j] as f64).powi(2) + 1.0;
        let norm = |i: usize| (0..n).map(|j| g(i, j).powi(2)).sum::<f64>().sqrt();
        let exact: f64 = (0..b).map(|i| (norm(i) - 1.0).powi(2)).sum::<f64>() / b as f64;
        assert!((penalty - exact).abs() < 1e-4 * exact, "{penalty} {exact}");
        for (j, got) in grad.iter().enumerate() {
            let want: f64 = (0..b)
                .map(|i| 2.0 * (norm(i) - 1.0) / norm(i) * g(i, j) * (xv[i * n + j] as f64).powi(2))
                .sum::<f64>()
                * lambda
                / b as f64;
            assert_close(*got, want, &format!("a_{j}"));
        }
    }

    #[test]
    fn surrogate_gradient_matches_finite_differences_of_r1_on_a_discriminator() {
        // The directional derivative of R1 along the surrogate's own gradient, measured by
        // evaluating R1 (exact first-order input gradients) at theta +- h * u, must equal
        // <grad L_s, u>. A wrong sign, factor or direction in the surrogate breaks it.
        let device = Device::flex().autodiff();
        let cfg = StyleganConfig {
            channels: 1,
            resolution: 8,
            channel_base: 16,
            channel_max: 8,
            ..StyleganConfig::default()
        };
        let d = Discriminator::new(&cfg, &mut Rng::new(3), &device);
        let mut rng = Rng::new(4);
        let x = tensor4(rng.normal_vec(4 * 64, 0.0, 0.5), [4, 1, 8, 8], &device);
        let gamma = 1.0;
        // The input gradient on an untracked copy, as training does; `d` keeps its gradients.
        let d_const = d.clone().no_grad();
        let (loss, _) = r1_surrogate(|t| d.forward(t), |t| d_const.forward(t), x.clone(), gamma);
        let grads = GradientsParams::from_grads(loss.backward(), &d);
        // u = the surrogate's gradient, unit-normalised; <grad, u> = ||grad||.
        let mut collected: Vec<(burn::module::ParamId, Vec<f32>)> = Vec::new();
        struct Grab<'a>(
            &'a GradientsParams,
            &'a mut Vec<(burn::module::ParamId, Vec<f32>)>,
        );
        impl burn::module::ModuleVisitor for Grab<'_> {
            fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<D>>) {
                if let Some(g) = self.0.get::<D>(p.id) {
                    self.1
                        .push((p.id, g.into_data().try_to_vec::<f32>().unwrap()));
                }
            }
        }
        d.visit(&mut Grab(&grads, &mut collected));
        let norm = collected
            .iter()
            .flat_map(|(_, v)| v.iter())
            .map(|v| (*v as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(norm > 0.0);
        let shifted = |h: f64| {
            struct Shift<'a>(&'a [(burn::module::ParamId, Vec<f32>)], f64);
            impl burn::module::ModuleMapper for Shift<'_> {
                fn map_float<const D: usize>(
                    &mut self,
                    p: burn::module::Param<Tensor<D>>,
                ) -> burn::module::Param<Tensor<D>> {
                    let id = p.id;
                    let h = self.1;
                    match self.0.iter().find(|(i, _)| *i == id) {
                        Some((_, g)) => p.map(|t| {
                            let dims = t.dims();
                            let dev = t.device();
                            let u = Tensor::<D>::from_data(TensorData::new(g.clone(), dims), &dev);
                            t + u * h
                        }),
                        None => p,
                    }
                }
            }
            let moved = d.clone().map(&mut Shift(&collected, h / norm));
            let g = input_gradient(|t| moved.forward(t), x.clone());
            gamma / 2.0 * squared_norms(g).mean().into_scalar::<f32>() as f64
        };
        // R1 jumps wherever a unit's pre-activation changes sign as theta moves (its slope in x
        // jumps), so the step must be small enough that none does: at 1e-3 one does here and
        // the quotient is 20% off; at 1e-4 none.
        let h = 1e-4;
        let fd = (shifted(h) - shifted(-h)) / (2.0 * h);
        assert!(
            (fd - norm).abs() < 0.06 * norm,
            "finite difference of R1 {fd}, surrogate gradient along it {norm}"
        );
    }

    /// Path length regularization on `G(w) = a w^3 / 3 + w` (elementwise) with two ws per
    /// sample: `g_ikj = y_ikj (a_j w_ikj^2 + 1)` in closed form, so the surrogate's gradient in
    /// `a` can be compared with the exact one, and `a`'s update with NVlabs' lerp.
    #[test]
    fn path_length_surrogate_has_the_exact_parameter_gradient() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(21);
        let (b, k, n) = (3, 2, 5);
        let av = rng.normal_vec(n, 0.0, 0.7);
        let wv = rng.normal_vec(b * k * n, 0.0, 0.8);
        let yv = rng.normal_vec(b * k * n, 0.0, 1.0);
        let a = Tensor::<1>::from_data(TensorData::new(av.clone(), [n]), &device).require_grad();
        let y = Tensor::<3>::from_data(TensorData::new(yv.clone(), [b, k, n]), &device);
        let at = |a: Tensor<1>| {
            let y = y.clone();
            move |w: Tensor<3>| {
                let g = w.clone().powi_scalar(3) * a.clone().reshape([1, 1, n]) / 3.0 + w;
                (g * y.clone()).reshape([b, k * n]).sum_dim(1).reshape([b])
            }
        };
        let ws = Tensor::<3>::from_data(TensorData::new(wv.clone(), [b, k, n]), &device);
        let (mut pl_mean, decay, weight) = (0.3, 0.5, 2.0);
        let (loss, length, penalty) = path_length_surrogate(
            at(a.clone()),
            at(a.clone().detach()),
            ws,
            &mut pl_mean,
            decay,
            weight,
        );
        let grad = a
            .grad(&loss.backward())
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        // Exact: L_i, the updated mean, the penalty and its gradient in a.
        let g = |i: usize, kk: usize, j: usize| {
            let at = (i * k + kk) * n + j;
            yv[at] as f64 * (av[j] as f64 * (wv[at] as f64).powi(2) + 1.0)
        };
        let lengths: Vec<f64> = (0..b)
            .map(|i| {
                let sq: f64 = (0..k)
                    .flat_map(|kk| (0..n).map(move |j| (kk, j)))
                    .map(|(kk, j)| g(i, kk, j).powi(2))
                    .sum();
                (sq / k as f64).sqrt()
            })
            .collect();
        let mean = lengths.iter().sum::<f64>() / b as f64;
        let a0 = 0.3 + (mean - 0.3) * decay;
        assert!((pl_mean - a0).abs() < 1e-6 && (length - mean).abs() < 1e-5);
        let want_penalty = lengths.iter().map(|l| (l - a0).powi(2)).sum::<f64>() / b as f64;
        assert!(
            (penalty - want_penalty).abs() < 1e-5,
            "{penalty} {want_penalty}"
        );
        for (j, got) in grad.iter().enumerate() {
            let mut d = 0.0;
            for (i, l) in lengths.iter().enumerate() {
                let dl: f64 = (0..k)
                    .map(|kk| {
                        let at = (i * k + kk) * n + j;
                        g(i, kk, j) * yv[at] as f64 * (wv[at] as f64).powi(2)
                    })
                    .sum::<f64>()
                    / (k as f64 * l);
                d += 2.0 * (l - a0) * dl;
            }
            assert_close(*got, weight * d / b as f64, &format!("d/da_{j}"));
        }
    }
}
