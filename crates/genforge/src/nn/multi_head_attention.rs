//! Multi-head self-attention over tokens `[b, n, d]`, in two forms:
//! - dot product (the ViT/ViTGAN generator): `softmax(q k^T / sqrt(d_h)) v`;
//! - L2 distance with tied query/key projection (Kim et al. 2021, "The Lipschitz constant of
//!   self-attention", used by ViTGAN's discriminator): `softmax(-||q_i - q_j||^2 / sqrt(d_h)) v`,
//!   which is Lipschitz where the dot product is not.

use crate::nn::activation::softmax;
use burn::module::Module;
use burn::tensor::{Device, Tensor};

use super::equalized::{EqualizedLinear, EqualizedOpts};
use crate::rng::Rng;

#[derive(Module, Debug)]
pub struct MultiHeadAttention {
    /// `d -> 3d` (q, k, v) or, tied, `d -> 2d` (q = k, v).
    pub qkv: EqualizedLinear,
    pub out: EqualizedLinear,
    pub heads: usize,
    pub l2: bool,
}

/// Attention output and the attention weights `[b, heads, n (query), n (key)]`.
pub struct Attended {
    pub out: Tensor<3>,
    pub weights: Tensor<4>,
}

/// `-||q_i - k_j||^2 / sqrt(d_h)` for `q: [b, h, n, d_h]`, `k: [b, h, m, d_h]` -> `[b, h, n, m]`,
/// expanded as `2 q.k - |q|^2 - |k|^2` so it is two matmuls rather than an `n x m x d_h` tensor.
pub fn l2_logits(q: Tensor<4>, k: Tensor<4>) -> Tensor<4> {
    let dh = q.dims()[3] as f64;
    let qq = q.clone().square().sum_dim(3); // [b, h, n, 1]
    let kk = k.clone().square().sum_dim(3).swap_dims(2, 3); // [b, h, 1, m]
    let qk = q.matmul(k.swap_dims(2, 3)); // [b, h, n, m]
    (qk * 2.0 - qq - kk) / dh.sqrt()
}

impl MultiHeadAttention {
    pub fn new(
        d: usize,
        heads: usize,
        l2: bool,
        isn: bool,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        assert!(
            d.is_multiple_of(heads),
            "hidden size {d} is not divisible by {heads} heads"
        );
        let opts = EqualizedOpts {
            isn,
            ..Default::default()
        };
        let parts = if l2 { 2 } else { 3 };
        // ISN is attached after any rescaling, so sigma(W_init) is measured once, on the final init.
        let plain = EqualizedOpts { isn: false, ..opts };
        let mut qkv = EqualizedLinear::new([d, parts * d], plain, rng, device);
        if l2 {
            // With unit-scale q, ||q_i - q_j||^2 / sqrt(d_h) ~ 2 sqrt(d_h) >> 1, so every token
            // would attend only to itself (its own distance is 0) and the class token would
            // never read the patches; ISN then holds that scale for all of training. Start q at
            // the scale where the mean logit gap is 1: per-component std (2 sqrt(d_h))^-1/2.
            let dh = (d / heads) as f64;
            qkv = qkv.scale_rows(0..d, (2.0 * dh.sqrt()).powf(-0.5));
        }
        if isn {
            qkv = qkv.with_isn();
        }
        MultiHeadAttention {
            qkv,
            out: EqualizedLinear::new([d, d], opts, rng, device),
            heads,
            l2,
        }
    }

    /// `[b, n, d] -> [b, n, d]`, with the attention weights.
    pub fn forward(&self, x: Tensor<3>) -> Attended {
        let [b, n, d] = x.dims();
        let (h, dh) = (self.heads, d / self.heads);
        let parts = if self.l2 { 2 } else { 3 };
        let qkv = self
            .qkv
            .forward(x) // [b, n, parts * d]
            .reshape([b, n, parts, h, dh])
            .permute([2, 0, 3, 1, 4]); // [parts, b, h, n, dh]
        let part = |i: usize| qkv.clone().narrow(0, i, 1).reshape([b, h, n, dh]);
        let q = part(0);
        let (logits, v) = if self.l2 {
            (l2_logits(q.clone(), q), part(1))
        } else {
            let k = part(1);
            (q.matmul(k.swap_dims(2, 3)) / (dh as f64).sqrt(), part(2))
        };
        let weights = softmax(logits, 3); // [b, h, n, n]
        let o = weights
            .clone()
            .matmul(v) // [b, h, n, dh]
            .swap_dims(1, 2)
            .reshape([b, n, d]);
        Attended {
            out: self.out.forward(o),
            weights,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn l2_logits_equal_the_pairwise_distance_formula() {
        let device = Device::flex();
        let mut rng = Rng::new(7);
        let (b, h, n, dh) = (2, 3, 5, 4);
        let qv = rng.normal_vec(b * h * n * dh, 0.0, 1.0);
        let q = Tensor::<4>::from_data(TensorData::new(qv.clone(), [b, h, n, dh]), &device);
        let got = l2_logits(q.clone(), q)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        for bh in 0..b * h {
            for i in 0..n {
                for j in 0..n {
                    let dist2: f64 = (0..dh)
                        .map(|c| {
                            let a = qv[(bh * n + i) * dh + c] as f64;
                            let bb = qv[(bh * n + j) * dh + c] as f64;
                            (a - bb).powi(2)
                        })
                        .sum();
                    let want = -dist2 / (dh as f64).sqrt();
                    let g = got[(bh * n + i) * n + j] as f64;
                    assert!((want - g).abs() < 1e-4, "{want} vs {g}");
                }
            }
        }
    }

    #[test]
    fn l2_attention_at_init_spreads_over_other_tokens() {
        // Unit-variance tokens (as after LayerNorm), ViTGAN-sized heads: each token's weight on
        // itself must leave most of the mass to the others, or the class token reads nothing.
        let device = Device::flex();
        let mut rng = Rng::new(15);
        let (n, d) = (65, 384);
        let att = MultiHeadAttention::new(d, 4, true, true, &mut rng, &device);
        let x = Tensor::<3>::from_data(
            TensorData::new(rng.normal_vec(n * d, 0.0, 1.0), [1, n, d]),
            &device,
        );
        let w = att
            .forward(x)
            .weights
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let mut self_weight = 0.0;
        for h in 0..4 {
            for i in 0..n {
                self_weight += w[(h * n + i) * n + i] as f64;
            }
        }
        let mean = self_weight / (4 * n) as f64;
        assert!(mean < 0.2, "mean self-attention weight {mean}");
    }

    #[test]
    fn tied_l2_attention_rows_are_distributions_peaked_on_self() {
        let device = Device::flex();
        let mut rng = Rng::new(8);
        let att = MultiHeadAttention::new(8, 2, true, false, &mut rng, &device);
        let x = Tensor::<3>::from_data(
            TensorData::new(rng.normal_vec(2 * 6 * 8, 0.0, 3.0), [2, 6, 8]),
            &device,
        );
        let a = att.forward(x);
        assert_eq!(a.out.dims(), [2, 6, 8]);
        assert_eq!(a.weights.dims(), [2, 2, 6, 6]);
        let w = a.weights.into_data().try_to_vec::<f32>().unwrap();
        for row in w.chunks(6).enumerate() {
            let (r, row) = row;
            let s: f32 = row.iter().sum();
            assert!((s - 1.0).abs() < 1e-5);
            // With q = k, the distance to itself is 0, the row's largest logit.
            let i = r % 6;
            assert!(row.iter().all(|v| *v <= row[i] + 1e-6));
        }
    }
}
