//! Spectral normalization (Miyato et al. 2018): `W_SN = W / sigma(W)`, with `sigma` estimated by
//! one power iteration per training forward pass from a persistent vector `u` (as PyTorch's
//! `nn.utils.spectral_norm`). `u` is module state, so checkpoints save it and resume is exact.

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
    fn matrix(&self, weight: Tensor<4>) -> Tensor<2> {
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
        let w = self.matrix(weight); // [rows, cols]
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
