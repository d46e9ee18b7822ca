//! Spectral normalization (Miyato et al. 2018): `W_SN = W / sigma(W)`, with `sigma` estimated by
//! one power iteration per training forward pass from a persistent vector `u` (as PyTorch's
//! `nn.utils.spectral_norm`). `u` is module state, so checkpoints save it and resume is exact.
//!
//! [`ImprovedSpectralNorm`] is ViTGAN's ISN: `W_ISN = sigma(W_init) * W / sigma(W)`, which keeps
//! each layer's Lipschitz scale at its initial value instead of forcing it to 1.

use burn::module::{Module, RunningState};
use burn::tensor::{Device, Tensor, TensorData};

use crate::rng::Rng;

#[derive(Module, Debug)]
pub struct SpectralNorm {
    /// Left singular vector estimate, length = rows of the weight matrix.
    pub u: RunningState<Tensor<1>>,
    /// Which weight axis forms the rows: 0 for Conv2d, 1 for ConvTranspose2d (PyTorch's choice).
    pub dim: usize,
    pub eps: f64,
}

fn normalize<const D: usize>(x: Tensor<D>, eps: f64) -> Tensor<D> {
    let norm = x.clone().square().sum().sqrt().clamp_min(eps);
    x / norm.unsqueeze()
}

impl SpectralNorm {
    pub fn new(rows: usize, dim: usize, rng: &mut Rng, device: &Device) -> Self {
        let u = Tensor::<1>::from_data(
            TensorData::new(rng.normal_vec(rows, 0.0, 1.0), [rows]),
            device,
        );
        SpectralNorm {
            u: RunningState::new(normalize(u, 1e-12)),
            dim,
            eps: 1e-12,
        }
    }

    /// The weight as a `[rows, rest]` matrix.
    pub fn matrix(&self, weight: Tensor<4>) -> Tensor<2> {
        let w = if self.dim == 0 {
            weight
        } else {
            weight.swap_dims(0, self.dim)
        };
        let [r, a, b, c] = w.dims();
        w.reshape([r, a * b * c])
    }

    /// `sigma(W)` from `u`; on an autodiff device `u` first takes one power-iteration step.
    pub fn sigma(&self, weight: Tensor<4>) -> Tensor<1> {
        self.sigma_matrix(self.matrix(weight))
    }

    /// [`sigma`](Self::sigma) of a `[rows, cols]` matrix (linear layers).
    pub fn sigma_matrix(&self, w: Tensor<2>) -> Tensor<1> {
        let rows = w.dims()[0];
        let device = w.device();
        let mut u = self
            .u
            .value_sync()
            .to_device(&device)
            .detach()
            .reshape([1, rows]); // [1, rows]
        let wd = w.clone().detach();
        let v = normalize(u.clone().matmul(wd.clone()), self.eps); // [1, cols] = normalize(W^T u)
        if device.is_autodiff() {
            u = normalize(v.clone().matmul(wd.transpose()), self.eps); // [1, rows] = normalize(W v)
            self.u.update(u.clone().reshape([rows]).detach());
        }
        // sigma = u^T W v (gradient flows through W only)
        u.detach()
            .matmul(w)
            .matmul(v.detach().transpose())
            .reshape([1])
    }

    /// `W / sigma(W)`.
    pub fn normalize_weight(&self, weight: Tensor<4>) -> Tensor<4> {
        let sigma = self.sigma(weight.clone());
        weight / sigma.reshape([1, 1, 1, 1])
    }
}

/// Largest singular value of a row-major `[rows, cols]` matrix and its left singular vector, by
/// `iters` power iterations in f64 on the host (deterministic, independent of the backend).
pub fn power_iteration(w: &[f32], rows: usize, cols: usize, iters: usize) -> (f64, Vec<f64>) {
    let mut u = vec![1.0 / (rows as f64).sqrt(); rows];
    let mut sigma = 0.0;
    for _ in 0..iters {
        let mut v: Vec<f64> = vec![0.0; cols];
        for (r, ur) in u.iter().enumerate() {
            for (c, vc) in v.iter_mut().enumerate() {
                *vc += w[r * cols + c] as f64 * ur;
            }
        }
        let nv = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        v.iter_mut().for_each(|x| *x /= nv);
        let wv: Vec<f64> = (0..rows)
            .map(|r| (0..cols).map(|c| w[r * cols + c] as f64 * v[c]).sum())
            .collect();
        sigma = wv.iter().map(|x| x * x).sum::<f64>().sqrt();
        u = wv.iter().map(|x| x / sigma.max(1e-12)).collect();
    }
    (sigma, u)
}

/// ViTGAN's Improved Spectral Normalization of a `[rows, cols]` weight matrix.
#[derive(Module, Debug)]
pub struct ImprovedSpectralNorm {
    pub sn: SpectralNorm,
    /// `sigma(W_init)`, measured once when the layer is built and saved with the weights.
    pub sigma_init: RunningState<Tensor<1>>,
}

impl ImprovedSpectralNorm {
    /// Measures `sigma(W_init)` of the initial matrix (converged power iteration) and starts `u`
    /// at its singular vector, so the first training step already sees the right scale.
    pub fn new(w_init: &Tensor<2>, device: &Device) -> Self {
        let [rows, cols] = w_init.dims();
        let w = w_init
            .clone()
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32 weights");
        let (sigma, u) = power_iteration(&w, rows, cols, 100);
        let u = u.iter().map(|&x| x as f32).collect::<Vec<_>>();
        ImprovedSpectralNorm {
            sn: SpectralNorm {
                u: RunningState::new(Tensor::from_data(TensorData::new(u, [rows]), device)),
                dim: 0,
                eps: 1e-12,
            },
            sigma_init: RunningState::new(Tensor::from_data(
                TensorData::new(vec![sigma as f32], [1]),
                device,
            )),
        }
    }

    /// `sigma(W_init) * W / sigma(W)` (one power-iteration step on `u` when training).
    pub fn normalize(&self, w: Tensor<2>) -> Tensor<2> {
        let sigma = self.sn.sigma_matrix(w.clone());
        let target = self.sigma_init.value_sync().to_device(&w.device());
        w * (target / sigma).reshape([1, 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Largest singular value by a long power iteration on W^T W in f64, independent of the layer.
    fn sigma_reference(w: &[f32], rows: usize, cols: usize) -> f64 {
        let mut v = vec![1.0f64; cols];
        let mut s = 0.0;
        for _ in 0..2000 {
            let wv: Vec<f64> = (0..rows)
                .map(|r| (0..cols).map(|c| w[r * cols + c] as f64 * v[c]).sum())
                .collect();
            let wtwv: Vec<f64> = (0..cols)
                .map(|c| (0..rows).map(|r| w[r * cols + c] as f64 * wv[r]).sum())
                .collect();
            let n = wtwv.iter().map(|x| x * x).sum::<f64>().sqrt();
            v = wtwv.iter().map(|x| x / n).collect();
            s = n.sqrt();
        }
        s
    }

    #[test]
    fn converges_to_the_largest_singular_value_and_normalizes_it_to_one() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(0);
        let shape = [6, 3, 2, 2];
        let w: Vec<f32> = rng.normal_vec(72, 0.0, 0.3);
        let weight = Tensor::<4>::from_data(TensorData::new(w.clone(), shape), &device);
        let sn = SpectralNorm::new(6, 0, &mut rng, &device);
        let mut sigma = 0.0;
        for _ in 0..200 {
            sigma = sn.sigma(weight.clone()).into_scalar::<f32>() as f64;
        }
        let reference = sigma_reference(&w, 6, 12);
        assert!(
            (sigma - reference).abs() / reference < 1e-4,
            "{sigma} vs {reference}"
        );
        let wn = sn
            .normalize_weight(weight)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let after = sigma_reference(&wn, 6, 12);
        assert!((after - 1.0).abs() < 1e-3, "normalized sigma {after}");
    }

    #[test]
    fn transpose_layout_uses_axis_one() {
        // ConvTranspose weight [in, out, k, k]: rows are the output channels (axis 1).
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(1);
        let w = rng.normal_vec(4 * 5 * 3 * 3, 0.0, 1.0);
        let weight = Tensor::<4>::from_data(TensorData::new(w.clone(), [4, 5, 3, 3]), &device);
        let sn = SpectralNorm::new(5, 1, &mut rng, &device);
        let mut sigma = 0.0;
        for _ in 0..300 {
            sigma = sn.sigma(weight.clone()).into_scalar::<f32>() as f64;
        }
        // The [out=5, in*k*k=36] matrix, built by hand.
        let mut m = vec![0.0f32; 5 * 36];
        for i in 0..4 {
            for o in 0..5 {
                for kk in 0..9 {
                    m[o * 36 + i * 9 + kk] = w[i * 45 + o * 9 + kk];
                }
            }
        }
        let reference = sigma_reference(&m, 5, 36);
        assert!(
            (sigma - reference).abs() / reference < 1e-3,
            "{sigma} vs {reference}"
        );
        assert_eq!(sn.u.value().dims(), [5]);
    }

    #[test]
    fn isn_keeps_the_largest_singular_value_at_its_initial_value() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(3);
        let (rows, cols) = (12, 20);
        let w0 = rng.normal_vec(rows * cols, 0.0, 0.5);
        let t0 = Tensor::<2>::from_data(TensorData::new(w0.clone(), [rows, cols]), &device);
        let isn = ImprovedSpectralNorm::new(&t0, &device);
        let sigma0 = sigma_reference(&w0, rows, cols);
        let stored = isn.sigma_init.value().into_scalar::<f32>() as f64;
        assert!(
            (stored - sigma0).abs() / sigma0 < 1e-5,
            "{stored} vs {sigma0}"
        );
        // "Training" moves W to a different matrix with a different spectrum; after a few
        // power-iteration steps the normalized weight's top singular value is sigma(W_init).
        let w1: Vec<f32> = w0
            .iter()
            .zip(rng.normal_vec(rows * cols, 0.0, 1.0))
            .map(|(a, b)| 3.0 * a + b)
            .collect();
        let t1 = Tensor::<2>::from_data(TensorData::new(w1.clone(), [rows, cols]), &device);
        assert!((sigma_reference(&w1, rows, cols) - sigma0).abs() > 1.0);
        let mut wn = Vec::new();
        for _ in 0..100 {
            wn = isn
                .normalize(t1.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
        }
        let after = sigma_reference(&wn, rows, cols);
        assert!(
            (after - sigma0).abs() / sigma0 < 1e-3,
            "{after} vs {sigma0}"
        );
    }

    #[test]
    fn inference_does_not_move_u() {
        let device = Device::flex();
        let mut rng = Rng::new(2);
        let weight = Tensor::<4>::from_data(
            TensorData::new(rng.normal_vec(8, 0.0, 1.0), [2, 1, 2, 2]),
            &device,
        );
        let sn = SpectralNorm::new(2, 0, &mut rng, &device);
        let before = sn.u.value().into_data();
        sn.sigma(weight);
        assert_eq!(sn.u.value().into_data(), before);
    }
}
