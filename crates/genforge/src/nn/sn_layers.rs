//! BigGAN-PyTorch's spectrally normalized layers (`layers.py`: `SN`, `SNConv2d`, `SNLinear`,
//! `SNEmbedding`), field for field, so its checkpoints load by key: each layer keeps its left
//! singular vector estimate `u0 [1, out]` and the last singular value `sv0 [1]` as buffers.
//!
//! Every forward pass, in training or not, runs one power iteration from `u0`:
//! `v = normalize(u0 W)`, `u = normalize(v W^T)`, and divides W by `sigma = v W^T u^T`
//! (`= ||W v||`); only training stores `u` into `u0` and `sigma` into `sv0`. This differs from
//! PyTorch's `nn.utils.spectral_norm` ([`super::SpectralNorm`]), which at evaluation reuses the
//! stored vectors without iterating. `normalize(x) = x / max(||x||, eps)` with the layer's
//! `eps` (BigGAN-PyTorch's `SN_eps`).

use burn::module::{Flag, Module, Param, RunningState};
use burn::tensor::{Device, Int, Tensor, TensorData};

use super::fused_linear::{WeightLayout, linear};
use super::gemm_conv::conv2d_routed;
use super::init;
use crate::rng::Rng;

fn normalize(x: Tensor<2>, eps: f64) -> Tensor<2> {
    let norm = x.clone().square().sum().sqrt().clamp_min(eps); // [1]
    x / norm.reshape([1, 1])
}

/// `sigma(W)` of a `[out, fan_in]` matrix by one power iteration from `u0`; in training (the
/// layer's flag and an autodiff device) `u0` and `sv0` take the new values. The gradient flows
/// through `W` only.
pub fn sigma(
    w: Tensor<2>,
    u0: &RunningState<Tensor<2>>,
    sv0: &RunningState<Tensor<1>>,
    eps: f64,
    training: &Param<Flag>,
) -> Tensor<1> {
    let device = w.device();
    let u = u0.value_sync().to_device(&device).detach(); // [1, out]
    let wd = w.clone().detach();
    let v = normalize(u.matmul(wd.clone()), eps); // [1, fan_in]
    let u = normalize(v.clone().matmul(wd.transpose()), eps); // [1, out]
    let s = v
        .matmul(w.transpose())
        .matmul(u.clone().transpose())
        .reshape([1]); // [1]
    if training.is_enabled() && device.is_autodiff() {
        u0.update(u);
        sv0.update(s.clone().detach());
    }
    s
}

/// BigGAN-PyTorch's buffers at construction: `u0 ~ N(0, 1)` (not normalized), `sv0 = 1`.
fn buffers(
    out: usize,
    rng: &mut Rng,
    device: &Device,
) -> (RunningState<Tensor<2>>, RunningState<Tensor<1>>) {
    let u0 = TensorData::new(rng.normal_vec(out, 0.0, 1.0), [1, out]);
    (
        RunningState::new(Tensor::from_data(u0, device)),
        RunningState::new(Tensor::ones([1], device)),
    )
}

/// `SNConv2d` (stride 1, as every BigGAN conv).
#[derive(Module, Debug)]
pub struct SnConv2d {
    /// `[out, in, k, k]`
    pub weight: Param<Tensor<4>>,
    pub bias: Option<Param<Tensor<1>>>,
    pub u0: RunningState<Tensor<2>>,
    pub sv0: RunningState<Tensor<1>>,
    /// Training behaviour (off after `valid()`, as burn's batch norm).
    pub training: Param<Flag>,
    pub padding: usize,
    pub eps: f64,
}

impl SnConv2d {
    /// Weight N(0, 0.02) (BigGAN-PyTorch's `N02`), bias PyTorch's default uniform
    /// `+-1/sqrt(fan_in)`; `kernel` 3 pads by 1, 1 by 0.
    pub fn new(
        [cin, cout]: [usize; 2],
        kernel: usize,
        bias: bool,
        eps: f64,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let weight = init::normal([cout, cin, kernel, kernel], 0.0, 0.02, rng, device);
        let bound = 1.0 / ((cin * kernel * kernel) as f64).sqrt();
        let bias = bias.then(|| init::uniform([cout], bound, rng, device));
        let (u0, sv0) = buffers(cout, rng, device);
        SnConv2d {
            weight,
            bias,
            u0,
            sv0,
            training: Param::from_bool(true),
            padding: kernel / 2,
            eps,
        }
    }

    /// `W / sigma(W)`.
    pub fn effective_weight(&self) -> Tensor<4> {
        let w = self.weight.val();
        let [o, i, kh, kw] = w.dims();
        let s = sigma(
            w.clone().reshape([o, i * kh * kw]),
            &self.u0,
            &self.sv0,
            self.eps,
            &self.training,
        );
        w / s.reshape([1, 1, 1, 1])
    }

    /// `[b, in, h, w] -> [b, out, h, w]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let bias = self.bias.as_ref().map(|b| b.val());
        conv2d_routed(x, self.effective_weight(), bias, 1, self.padding)
    }
}

/// `SNLinear`.
#[derive(Module, Debug)]
pub struct SnLinear {
    /// `[out, in]`
    pub weight: Param<Tensor<2>>,
    pub bias: Option<Param<Tensor<1>>>,
    pub u0: RunningState<Tensor<2>>,
    pub sv0: RunningState<Tensor<1>>,
    pub training: Param<Flag>,
    pub eps: f64,
}

impl SnLinear {
    /// Weight N(0, 0.02), bias PyTorch's default uniform `+-1/sqrt(in)`.
    pub fn new(
        [cin, cout]: [usize; 2],
        bias: bool,
        eps: f64,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let weight = init::normal([cout, cin], 0.0, 0.02, rng, device);
        let bias = bias.then(|| init::uniform([cout], 1.0 / (cin as f64).sqrt(), rng, device));
        let (u0, sv0) = buffers(cout, rng, device);
        SnLinear {
            weight,
            bias,
            u0,
            sv0,
            training: Param::from_bool(true),
            eps,
        }
    }

    pub fn effective_weight(&self) -> Tensor<2> {
        let w = self.weight.val();
        let s = sigma(w.clone(), &self.u0, &self.sv0, self.eps, &self.training);
        w / s.reshape([1, 1])
    }

    /// `[b, in] -> [b, out]`
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let bias = self.bias.as_ref().map(|b| b.val());
        linear(x, self.effective_weight(), WeightLayout::OutIn, bias)
    }
}

/// `SNEmbedding`: the table `[num_embeddings, dim]` normalized as a matrix with one row per
/// embedding (BigGAN-PyTorch's choice, "for convenience sake").
#[derive(Module, Debug)]
pub struct SnEmbedding {
    pub weight: Param<Tensor<2>>,
    pub u0: RunningState<Tensor<2>>,
    pub sv0: RunningState<Tensor<1>>,
    pub training: Param<Flag>,
    pub eps: f64,
}

impl SnEmbedding {
    pub fn new([n, dim]: [usize; 2], eps: f64, rng: &mut Rng, device: &Device) -> Self {
        let weight = init::normal([n, dim], 0.0, 0.02, rng, device);
        let (u0, sv0) = buffers(n, rng, device);
        SnEmbedding {
            weight,
            u0,
            sv0,
            training: Param::from_bool(true),
            eps,
        }
    }

    /// The normalized table `W / sigma(W)`.
    pub fn table(&self) -> Tensor<2> {
        let w = self.weight.val();
        let s = sigma(w.clone(), &self.u0, &self.sv0, self.eps, &self.training);
        w / s.reshape([1, 1])
    }

    /// `[b] -> [b, dim]`
    pub fn forward(&self, y: Tensor<1, Int>) -> Tensor<2> {
        self.table().select(0, y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::spectral_norm::power_iteration;

    fn host(t: Tensor<2>) -> Vec<f64> {
        let v = t.into_data().try_to_vec::<f32>().unwrap();
        v.into_iter().map(f64::from).collect()
    }

    /// One power iteration by hand in f64: `v = normalize(u W)`, `u' = normalize(W v)`,
    /// `sigma = ||W v||`.
    fn by_hand(w: &[f64], u: &[f64], rows: usize, cols: usize) -> (f64, Vec<f64>) {
        let mut v: Vec<f64> = (0..cols)
            .map(|c| (0..rows).map(|r| u[r] * w[r * cols + c]).sum())
            .collect();
        let nv = v.iter().map(|x| x * x).sum::<f64>().sqrt();
        v.iter_mut().for_each(|x| *x /= nv);
        let wv: Vec<f64> = (0..rows)
            .map(|r| (0..cols).map(|c| w[r * cols + c] * v[c]).sum())
            .collect();
        let s = wv.iter().map(|x| x * x).sum::<f64>().sqrt();
        (s, wv.iter().map(|x| x / s).collect())
    }

    #[test]
    fn evaluation_iterates_without_storing_and_training_stores() {
        // A u0 far from the singular vector: evaluation must still divide by ||W v|| of one
        // fresh iteration (not u0^T W v), and leave u0 and sv0 as they were.
        let (rows, cols) = (5, 7);
        let mut rng = Rng::new(4);
        for device in [Device::flex(), Device::flex().autodiff()] {
            let lin = SnLinear::new([cols, rows], false, 1e-6, &mut rng, &device);
            let w = host(lin.weight.val());
            let u = host(lin.u0.value());
            let (want_sigma, want_u) = by_hand(&w, &u, rows, cols);
            let got = host(lin.effective_weight());
            for (g, w) in got.iter().zip(&w) {
                assert!(
                    (g - w / want_sigma).abs() < 1e-5,
                    "{g} vs {}",
                    w / want_sigma
                );
            }
            let u_after = host(lin.u0.value_sync());
            let sv_after = lin.sv0.value_sync().into_scalar::<f32>();
            if device.is_autodiff() {
                for (a, b) in u_after.iter().zip(&want_u) {
                    assert!((a - b).abs() < 1e-5, "{u_after:?} vs {want_u:?}");
                }
                assert!((sv_after as f64 - want_sigma).abs() < 1e-4 * want_sigma);
            } else {
                assert_eq!(u_after, u);
                assert_eq!(sv_after, 1.0);
            }
        }
    }

    #[test]
    fn a_valid_copy_on_the_training_device_does_not_store() {
        // Samples drawn from a weight average on the training device must leave its buffers
        // alone: `valid()` turns the training flag off.
        let device = Device::flex().autodiff();
        let lin = SnLinear::new([4, 3], true, 1e-6, &mut Rng::new(6), &device).valid();
        let before = host(lin.u0.value_sync());
        lin.effective_weight();
        assert_eq!(host(lin.u0.value_sync()), before);
        assert_eq!(lin.sv0.value_sync().into_scalar::<f32>(), 1.0);
    }

    #[test]
    fn repeated_training_passes_converge_to_the_top_singular_value() {
        let device = Device::flex().autodiff();
        let conv = SnConv2d::new([3, 4], 3, true, 1e-6, &mut Rng::new(5), &device);
        for _ in 0..200 {
            conv.effective_weight();
        }
        let w = conv.weight.val().reshape([4, 27]);
        let flat: Vec<f32> = w.into_data().try_to_vec().unwrap();
        let (sigma, _) = power_iteration(&flat, 4, 27, 500);
        let sv = conv.sv0.value_sync().into_scalar::<f32>() as f64;
        assert!((sv - sigma).abs() < 1e-4 * sigma, "{sv} vs {sigma}");
    }
}
