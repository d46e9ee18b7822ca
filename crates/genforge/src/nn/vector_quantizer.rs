//! The EMA vector quantizer of VQ-VAE (van den Oord et al. 2017) as the VQ-VAE-2 article implements it: a
//! `(K, D)` codebook, the nearest code by L2 distance, a straight-through gradient, the commitment
//! loss `beta * ||z_e - sg[e]||^2`, and codebook updates by exponential moving averages instead
//! of gradients:
//!
//! ```text
//! N_i := N_i * gamma + n_i * (1 - gamma)
//! m_i := m_i * gamma + sum_j z_e(x)_{i,j} * (1 - gamma)
//! e_i := m_i / N~_i,   N~_i = (N_i + eps) / (n + K eps) * n,   n = sum_i N_i   (Laplace smoothing)
//! ```
//!
//! with `N` starting at 0 and `m` at the initial codebook. Beyond the VQ-VAE-2 article, codes unused for
//! `dead_code_steps` consecutive updates are restarted from random encoder outputs of the batch.
//!
//! The EMA statistics are module state (saved in checkpoints, never touched by the optimizer);
//! the update itself runs on the host, where it is exact and cheap next to the network.

use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::rng::Rng;

#[derive(Module, Debug)]
pub struct EmaVectorQuantizer {
    /// Codebook `e`, `[K, D]`.
    pub embed: Param<Tensor<2>>,
    /// EMA cluster sizes `N`, `[K]`.
    pub cluster_size: Param<Tensor<1>>,
    /// EMA sums of the assigned encoder outputs `m`, `[K, D]`.
    pub embed_avg: Param<Tensor<2>>,
    /// Consecutive updates in which each code was not chosen, `[K]`.
    pub unused_steps: Param<Tensor<1>>,
    /// EMA decay `gamma` (seed: 0.99).
    pub decay: f64,
    /// Laplace smoothing `eps` (seed: 1e-5).
    pub epsilon: f64,
    /// Commitment weight `beta` (seed: 0.25).
    pub commitment: f64,
    /// Restart codes unused for this many updates (0: never).
    pub dead_code_steps: usize,
}

/// What [`EmaVectorQuantizer::quantize`] returns.
pub struct Quantized {
    /// Straight-through codes `z_e + sg[e - z_e]`, `[b, D, h, w]`: the values of `e`, the
    /// gradient of `z_e`.
    pub codes: Tensor<4>,
    /// Chosen code per position, `[b, h, w]`.
    pub indices: Tensor<3, Int>,
    /// Commitment loss `beta * mean((z_e - sg[e])^2)`, `[1]`.
    pub loss: Tensor<1>,
    /// The encoder outputs as rows, detached, `[b*h*w, D]` (input of the EMA update).
    pub flat: Tensor<2>,
}

/// Codebook use in one update (logged per step).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CodebookStats {
    /// Fraction of the K codes chosen at least once in the batch.
    pub usage: f64,
    /// `exp(entropy)` of the batch's code histogram (K when uniform, 1 when collapsed).
    pub perplexity: f64,
    /// Codes restarted from encoder outputs in this update.
    pub restarted: usize,
}

/// The quantizer's state on the host, where [`ema_update`] runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Codebook {
    pub k: usize,
    pub d: usize,
    pub embed: Vec<f32>,
    pub cluster_size: Vec<f32>,
    pub embed_avg: Vec<f32>,
    pub unused_steps: Vec<f32>,
}

fn fixed<const D: usize>(t: Tensor<D>) -> Param<Tensor<D>> {
    Param::from_tensor(t).set_require_grad(false)
}

fn host<const D: usize>(p: &Param<Tensor<D>>) -> Vec<f32> {
    p.val()
        .into_data()
        .convert::<f32>()
        .try_into_vec()
        .expect("f32 data")
}

impl EmaVectorQuantizer {
    /// `K` codes of size `D` drawn from N(0, 1) (the VQ-VAE-2 article's initializer), `N = 0`, `m = e`.
    pub fn new(
        [k, d]: [usize; 2],
        decay: f64,
        epsilon: f64,
        commitment: f64,
        dead_code_steps: usize,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let init = rng.normal_vec(k * d, 0.0, 1.0);
        let embed = Tensor::<2>::from_data(TensorData::new(init, [k, d]), device);
        EmaVectorQuantizer {
            embed: fixed(embed.clone()),
            cluster_size: fixed(Tensor::zeros([k], device)),
            embed_avg: fixed(embed),
            unused_steps: fixed(Tensor::zeros([k], device)),
            decay,
            epsilon,
            commitment,
            dead_code_steps,
        }
    }

    pub fn codebook_size(&self) -> usize {
        self.embed.dims()[0]
    }

    pub fn code_dim(&self) -> usize {
        self.embed.dims()[1]
    }

    /// Nearest code of every position of `z` (`[b, D, h, w]`).
    pub fn quantize(&self, z: Tensor<4>) -> Quantized {
        let [b, d, h, w] = z.dims();
        let flat = z.clone().permute([0, 2, 3, 1]).reshape([b * h * w, d]); // [N, D]
        let e = self.embed.val().detach(); // [K, D]
        // ||z||^2 - 2 z.e + ||e||^2; ||z||^2 is the same for every code, so it drops out.
        let dist = e.clone().square().sum_dim(1).reshape([1, -1])
            - flat.clone().detach().matmul(e.clone().transpose()) * 2.0; // [N, K]
        let idx = dist.argmin(1).reshape([b * h * w]); // [N]
        let q = e.select(0, idx.clone()); // [N, D]
        let q = q.reshape([b, h, w, d]).permute([0, 3, 1, 2]); // [b, D, h, w]
        let loss = (q.clone() - z.clone()).square().mean() * self.commitment;
        let codes = z.clone() + (q - z).detach();
        Quantized {
            codes,
            indices: idx.reshape([b, h, w]),
            loss,
            flat: flat.detach(),
        }
    }

    /// Codes of the given indices, `[b, h, w] -> [b, D, h, w]`.
    pub fn indices_to_codes(&self, indices: Tensor<3, Int>) -> Tensor<4> {
        let [b, h, w] = indices.dims();
        let d = self.code_dim();
        self.embed
            .val()
            .detach()
            .select(0, indices.reshape([b * h * w]))
            .reshape([b, h, w, d])
            .permute([0, 3, 1, 2])
    }

    pub fn to_host(&self) -> Codebook {
        let [k, d] = self.embed.dims();
        Codebook {
            k,
            d,
            embed: host(&self.embed),
            cluster_size: host(&self.cluster_size),
            embed_avg: host(&self.embed_avg),
            unused_steps: host(&self.unused_steps),
        }
    }

    /// This quantizer with its state replaced by `cb` (same parameter ids).
    pub fn with_host(self, cb: &Codebook) -> Self {
        let device = self.embed.device();
        let t2 = |v: &Vec<f32>| {
            Tensor::<2>::from_data(TensorData::new(v.clone(), [cb.k, cb.d]), &device)
        };
        let t1 = |v: &Vec<f32>| Tensor::<1>::from_data(TensorData::new(v.clone(), [cb.k]), &device);
        EmaVectorQuantizer {
            embed: self.embed.map(|_| t2(&cb.embed)),
            cluster_size: self.cluster_size.map(|_| t1(&cb.cluster_size)),
            embed_avg: self.embed_avg.map(|_| t2(&cb.embed_avg)),
            unused_steps: self.unused_steps.map(|_| t1(&cb.unused_steps)),
            ..self
        }
    }

    /// One EMA update from a training batch: `flat` and `indices` as [`quantize`] returned them.
    pub fn update(
        self,
        flat: Tensor<2>,
        indices: Tensor<3, Int>,
        rng: &mut Rng,
    ) -> (Self, CodebookStats) {
        let rows: Vec<f32> = flat
            .into_data()
            .convert::<f32>()
            .try_into_vec()
            .expect("f32");
        let idx: Vec<usize> = indices
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .expect("int")
            .into_iter()
            .map(|i| i as usize)
            .collect();
        let mut cb = self.to_host();
        let stats = ema_update(
            &mut cb,
            &rows,
            &idx,
            self.decay as f32,
            self.epsilon as f32,
            self.dead_code_steps,
            rng,
        );
        (self.with_host(&cb), stats)
    }
}

/// The VQ-VAE-2 article's EMA update of `cb` from encoder outputs `rows` (`[N, D]` row-major) assigned to
/// `indices`, then the dead-code restart.
pub fn ema_update(
    cb: &mut Codebook,
    rows: &[f32],
    indices: &[usize],
    decay: f32,
    eps: f32,
    dead_code_steps: usize,
    rng: &mut Rng,
) -> CodebookStats {
    let (k, d) = (cb.k, cb.d);
    assert_eq!(rows.len(), indices.len() * d);
    // n_i and sum_j z_e(x)_{i,j} of this batch.
    let mut counts = vec![0f32; k];
    let mut sums = vec![0f32; k * d];
    for (j, &i) in indices.iter().enumerate() {
        counts[i] += 1.0;
        for (s, z) in sums[i * d..(i + 1) * d]
            .iter_mut()
            .zip(&rows[j * d..(j + 1) * d])
        {
            *s += z;
        }
    }
    for (size, count) in cb.cluster_size.iter_mut().zip(&counts) {
        *size = *size * decay + count * (1.0 - decay);
    }
    for (m, s) in cb.embed_avg.iter_mut().zip(&sums) {
        *m = *m * decay + s * (1.0 - decay);
    }
    let n: f32 = cb.cluster_size.iter().sum();
    for i in 0..k {
        let smoothed = (cb.cluster_size[i] + eps) / (n + k as f32 * eps) * n;
        for c in 0..d {
            cb.embed[i * d + c] = cb.embed_avg[i * d + c] / smoothed;
        }
    }

    let total = indices.len() as f64;
    let used = counts.iter().filter(|&&c| c > 0.0).count();
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0.0)
        .map(|&c| {
            let p = c as f64 / total;
            -p * p.ln()
        })
        .sum();

    let mut restarted = 0;
    for (i, &count) in counts.iter().enumerate() {
        cb.unused_steps[i] = if count > 0.0 {
            0.0
        } else {
            cb.unused_steps[i] + 1.0
        };
        if dead_code_steps > 0
            && cb.unused_steps[i] >= dead_code_steps as f32
            && !indices.is_empty()
        {
            // A dead code becomes a random encoder output of this batch, with the weight of one
            // assignment, so it sits where the data is and its average stays finite.
            let j = rng.below(indices.len());
            let z = &rows[j * d..(j + 1) * d];
            cb.embed[i * d..(i + 1) * d].copy_from_slice(z);
            cb.embed_avg[i * d..(i + 1) * d].copy_from_slice(z);
            cb.cluster_size[i] = 1.0;
            cb.unused_steps[i] = 0.0;
            restarted += 1;
        }
    }
    CodebookStats {
        usage: used as f64 / k as f64,
        perplexity: entropy.exp(),
        restarted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn vq(k: usize, d: usize, dead: usize, device: &Device) -> EmaVectorQuantizer {
        EmaVectorQuantizer::new([k, d], 0.99, 1e-5, 0.25, dead, &mut Rng::new(3), device)
    }

    #[test]
    fn ema_update_follows_the_seed_formulas() {
        // Hand-made batch: K = 3 codes of D = 2, four encoder outputs.
        let mut cb = Codebook {
            k: 3,
            d: 2,
            embed: vec![1.0, 0.0, 0.0, 1.0, -1.0, -1.0],
            cluster_size: vec![2.0, 0.5, 0.0],
            embed_avg: vec![2.0, 0.0, 0.0, 0.5, -1.0, -1.0],
            unused_steps: vec![0.0; 3],
        };
        let rows = [0.9, 0.1, 1.1, -0.1, 0.2, 0.8, 3.0, 3.0];
        let idx = [0, 0, 1, 1];
        let (g, eps) = (0.99f32, 1e-5f32);
        ema_update(&mut cb, &rows, &idx, g, eps, 0, &mut Rng::new(0));
        // N_i := N_i g + n_i (1 - g)
        let n_new = [2.0 * g + 2.0 * (1.0 - g), 0.5 * g + 2.0 * (1.0 - g), 0.0];
        // m_i := m_i g + sum_j z_j (1 - g)
        let m_new = [
            2.0 * g + 2.0 * (1.0 - g),
            0.0 * g + 0.0 * (1.0 - g),
            0.0 * g + 3.2 * (1.0 - g),
            0.5 * g + 3.8 * (1.0 - g),
            -g,
            -g,
        ];
        let n: f32 = n_new.iter().sum();
        for i in 0..3 {
            assert!((cb.cluster_size[i] - n_new[i]).abs() < 1e-6);
            let smoothed = (n_new[i] + eps) / (n + 3.0 * eps) * n;
            for c in 0..2 {
                assert!((cb.embed_avg[i * 2 + c] - m_new[i * 2 + c]).abs() < 1e-6);
                let want = m_new[i * 2 + c] / smoothed;
                let got = cb.embed[i * 2 + c];
                assert!(
                    (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                    "{i} {c}: {got} vs {want}"
                );
            }
        }
        // The unused code's vector is divided by ~eps: it moves far away, as in the VQ-VAE-2 article.
        assert!(cb.embed[4].abs() > 1e4);
    }

    #[test]
    fn dead_code_restart_reseeds_exactly_the_unused_codes() {
        let mut cb = Codebook {
            k: 4,
            d: 2,
            embed: vec![0.0, 0.0, 1.0, 1.0, 5.0, 5.0, 9.0, 9.0],
            cluster_size: vec![1.0; 4],
            embed_avg: vec![0.0, 0.0, 1.0, 1.0, 5.0, 5.0, 9.0, 9.0],
            unused_steps: vec![0.0, 2.0, 1.0, 0.0],
        };
        let rows = [0.1, 0.1, 0.2, 0.2, 8.0, 8.0];
        let idx = [0, 0, 3];
        let before = cb.clone();
        let stats = ema_update(&mut cb, &rows, &idx, 0.99, 1e-5, 3, &mut Rng::new(1));
        // Code 1 was unused for its 3rd update: restarted onto one of the batch's rows. Code 2
        // reaches 2 unused updates: kept. Codes 0 and 3 were used.
        assert_eq!(stats.restarted, 1);
        let z1 = &cb.embed[2..4];
        assert!(rows.chunks(2).any(|r| r == z1), "{z1:?}");
        assert_eq!(cb.embed_avg[2..4], *z1);
        assert_eq!(cb.cluster_size[1], 1.0);
        assert_eq!(cb.unused_steps, vec![0.0, 0.0, 2.0, 0.0]);
        assert!((cb.embed[4] - before.embed[4]).abs() < 1e-3);
        assert!((cb.cluster_size[2] - 0.99).abs() < 1e-6);
        assert_eq!(stats.usage, 0.5);
        let p = [2.0f64 / 3.0, 1.0 / 3.0];
        let ppl = (-p.iter().map(|p| p * p.ln()).sum::<f64>()).exp();
        assert!((stats.perplexity - ppl).abs() < 1e-9);
    }

    #[test]
    fn quantize_picks_the_nearest_code_and_indices_to_codes_inverts_it() {
        let device = Device::flex();
        let q = vq(16, 4, 0, &device);
        let z = Tensor::<4>::random([2, 4, 3, 5], Distribution::Normal(0.0, 1.0), &device);
        let out = q.quantize(z.clone());
        assert_eq!(out.indices.dims(), [2, 3, 5]);
        // Brute force nearest code on the host.
        let cb = q.to_host();
        let rows: Vec<f32> = out.flat.clone().into_data().try_into_vec().unwrap();
        let idx: Vec<i64> = out
            .indices
            .clone()
            .into_data()
            .convert::<i64>()
            .try_into_vec()
            .unwrap();
        for (j, &got) in idx.iter().enumerate() {
            let dist = |i: usize| -> f32 {
                (0..4)
                    .map(|c| (rows[j * 4 + c] - cb.embed[i * 4 + c]).powi(2))
                    .sum()
            };
            let best = (0..16)
                .min_by(|&a, &b| dist(a).total_cmp(&dist(b)))
                .unwrap();
            assert_eq!(got as usize, best);
        }
        let back = q.indices_to_codes(out.indices.clone());
        let diff: f32 = (back.clone() - out.codes.clone()).abs().max().into_scalar();
        assert!(diff < 1e-5, "{diff}");
        // Codes of the codes are the codes.
        let again = q.quantize(back);
        let same: Vec<i64> = again
            .indices
            .into_data()
            .convert::<i64>()
            .try_into_vec()
            .unwrap();
        assert_eq!(same, idx);
    }

    #[test]
    fn straight_through_passes_the_gradient_unchanged() {
        let device = Device::flex().autodiff();
        let q = vq(8, 3, 0, &device);
        let z = Tensor::<4>::random([2, 3, 2, 2], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        let weights = Tensor::<4>::random([2, 3, 2, 2], Distribution::Normal(0.0, 1.0), &device);
        let out = q.quantize(z.clone());
        // d/dz of sum(w * codes) is w when the gradient passes straight through.
        let grads = (out.codes * weights.clone()).sum().backward();
        let g = z.grad(&grads).unwrap();
        let diff: f32 = (g - weights.inner()).abs().max().into_scalar();
        assert!(diff < 1e-6, "{diff}");
        // The commitment loss reaches z (not the codebook): d/dz beta*mean((z-e)^2).
        let out = q.quantize(z.clone());
        let codes = out.codes.clone().inner();
        let grads = out.loss.backward();
        let g = z.grad(&grads).unwrap();
        let want = (z.clone().inner() - codes) * (2.0 * 0.25 / 24.0);
        let diff: f32 = (g - want).abs().max().into_scalar();
        assert!(diff < 1e-6, "{diff}");
        assert!(q.embed.val().grad(&grads).is_none());
    }

    #[test]
    fn module_update_matches_the_host_update_and_keeps_shapes() {
        let device = Device::flex();
        let q = vq(8, 3, 2, &device);
        let z = Tensor::<4>::random([2, 3, 4, 4], Distribution::Normal(0.0, 1.0), &device);
        let out = q.quantize(z);
        let mut cb = q.to_host();
        let rows: Vec<f32> = out.flat.clone().into_data().try_into_vec().unwrap();
        let idx: Vec<usize> = out
            .indices
            .clone()
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .unwrap()
            .into_iter()
            .map(|i| i as usize)
            .collect();
        let want = ema_update(&mut cb, &rows, &idx, 0.99, 1e-5, 2, &mut Rng::new(9));
        let (q2, got) = q.update(out.flat, out.indices, &mut Rng::new(9));
        assert_eq!(got, want);
        assert_eq!(q2.to_host(), cb);
    }
}
