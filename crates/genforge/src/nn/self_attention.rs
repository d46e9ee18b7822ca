//! The Self-Attention layer of SAGAN (Zhang et al. 2019) exactly as the DCGAN/SAGAN article writes it:
//! 1x1 convs project to query/key (C/8) and value (C); `S = q^T k`; the softmax normalises over
//! the query axis (PyTorch `Softmax(dim=-2)`); `o = v beta^T`; `y = x + gamma o` with `gamma`
//! starting at 0. The attention map `beta[b, j, i]` (rows sum to 1) is returned for figures.

use crate::nn::activation::softmax;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::{Conv2d, init};
use crate::rng::Rng;

#[derive(Module, Debug)]
pub struct SelfAttention {
    pub query: Conv2d,
    pub key: Conv2d,
    pub value: Conv2d,
    pub gamma: Param<Tensor<1>>,
}

impl SelfAttention {
    pub fn new(channels: usize, rng: &mut Rng, device: &Device) -> Self {
        let inner = (channels / 8).max(1);
        SelfAttention {
            query: Conv2d::new([channels, inner], 1, 1, 0, false, rng, device),
            key: Conv2d::new([channels, inner], 1, 1, 0, false, rng, device),
            value: Conv2d::new([channels, channels], 1, 1, 0, false, rng, device),
            gamma: init::zeros([1], device),
        }
    }

    /// `[b, c, h, w] -> ([b, c, h, w], attention map [b, n, n])` with `n = h * w`.
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<3>) {
        let [b, c, h, w] = x.dims();
        let n = h * w;
        let q = self.query.forward(x.clone()); // [b, c', h, w]
        let cq = q.dims()[1];
        let q = q.reshape([b, cq, n]); // [b, c', n(i)]
        let k = self
            .key
            .forward(x.clone())
            .reshape([b, cq, n])
            .swap_dims(1, 2); // [b, n(j), c']
        // s_t[j][i] = k_j . q_i = s_ij, so the DCGAN/SAGAN article's softmax over i is a last-axis softmax here.
        let beta = softmax(k.matmul(q), 2); // [b, n(j), n(i)], rows sum to 1
        let v = self.value.forward(x.clone()).reshape([b, c, n]); // [b, c, n(i)]
        // o_j = sum_i beta_ji v_i, computed as beta v^T so the big matrix is never transposed.
        let o = beta.clone().matmul(v.swap_dims(1, 2)); // [b, n(j), c]
        let o = o.swap_dims(1, 2).reshape([b, c, h, w]);
        let out = x + o * self.gamma.val().reshape([1, 1, 1, 1]);
        (out, beta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn gamma_zero_is_identity_and_rows_sum_to_one() {
        let device = Device::flex();
        let mut rng = Rng::new(0);
        let sa = SelfAttention::new(16, &mut rng, &device);
        let x = Tensor::<4>::from_data(
            TensorData::new(rng.normal_vec(2 * 16 * 4 * 4, 0.0, 1.0), [2, 16, 4, 4]),
            &device,
        );
        let (y, beta) = sa.forward(x.clone());
        y.into_data()
            .assert_approx_eq::<f32>(&x.into_data(), burn::tensor::Tolerance::default());
        assert_eq!(beta.dims(), [2, 16, 16]);
        let rows = beta
            .clone()
            .sum_dim(2)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert!(rows.iter().all(|r| (r - 1.0).abs() < 1e-5), "{rows:?}");
        // Columns do not sum to one in general: the softmax runs over the query axis only.
        let cols = beta.sum_dim(1).into_data().try_to_vec::<f32>().unwrap();
        assert!(cols.iter().any(|c| (c - 1.0).abs() > 1e-3));
    }

    #[test]
    fn output_matches_an_explicit_loop() {
        let device = Device::flex();
        let mut rng = Rng::new(3);
        let mut sa = SelfAttention::new(8, &mut rng, &device);
        sa.gamma = Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![0.7f32], [1]),
            &device,
        ));
        let (c, n) = (8, 6);
        let xv = rng.normal_vec(c * n, 0.0, 1.0);
        let x = Tensor::<4>::from_data(TensorData::new(xv.clone(), [1, c, 2, 3]), &device);
        let (y, _) = sa.forward(x.clone());
        let y = y.into_data().try_to_vec::<f32>().unwrap();
        let proj = |conv: &Conv2d| {
            conv.forward(x.clone())
                .into_data()
                .try_to_vec::<f32>()
                .unwrap()
        };
        let (q, k, v) = (proj(&sa.query), proj(&sa.key), proj(&sa.value));
        // s[i][j] = sum_c q[c][i] k[c][j]; beta[j][i] = softmax over i of s[i][j].
        for j in 0..n {
            let s: Vec<f64> = (0..n)
                .map(|i| {
                    (0..1)
                        .map(|cc| q[cc * n + i] as f64 * k[cc * n + j] as f64)
                        .sum()
                })
                .collect();
            let m = s.iter().cloned().fold(f64::MIN, f64::max);
            let z: f64 = s.iter().map(|v| (v - m).exp()).sum();
            for ch in 0..c {
                let o: f64 = (0..n)
                    .map(|i| v[ch * n + i] as f64 * (s[i] - m).exp() / z)
                    .sum();
                let want = xv[ch * n + j] as f64 + 0.7 * o;
                assert!(
                    (y[ch * n + j] as f64 - want).abs() < 1e-4,
                    "{} vs {want}",
                    y[ch * n + j]
                );
            }
        }
    }
}
