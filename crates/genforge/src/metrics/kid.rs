//! Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs"): the squared
//! MMD with the cubic polynomial kernel `k(x, y) = (x·y / d + 1)³`, estimated on random subsets
//! as torch-fidelity does (100 subsets of 1000 by default, smaller when there are fewer
//! samples), reported as mean and standard deviation over the subsets. The per-subset estimate
//! is torch-fidelity's: the within-set sums leave out the diagonal, the cross term does not.

use super::{Features, gram};
use crate::rng::Rng;

#[derive(Clone, Copy, Debug)]
pub struct KidOptions {
    pub subsets: usize,
    pub subset_size: usize,
    pub seed: u64,
}

impl Default for KidOptions {
    fn default() -> Self {
        KidOptions {
            subsets: 100,
            subset_size: 1000,
            seed: 0,
        }
    }
}

/// MMD² of one pair of equally sized sets from their kernel matrices.
pub fn mmd2(k_xx: &[f64], k_yy: &[f64], k_xy: &[f64], m: usize) -> f64 {
    let off_diag = |k: &[f64]| k.iter().sum::<f64>() - (0..m).map(|i| k[i * m + i]).sum::<f64>();
    let mf = m as f64;
    (off_diag(k_xx) + off_diag(k_yy)) / (mf * (mf - 1.0))
        - 2.0 * k_xy.iter().sum::<f64>() / (mf * mf)
}

fn cubic_kernel(a: &Features, b: &Features) -> Vec<f64> {
    let d = a.d as f64;
    gram(a, b)
        .into_iter()
        .map(|v| (v as f64 / d + 1.0).powi(3))
        .collect()
}

/// Mean and standard deviation of the subset estimates. When one subset holds both whole sets,
/// every subset is the same estimate (it does not see the order), so it is computed once and
/// there is no spread to report: the std is `None`.
pub fn kid(real: &Features, fake: &Features, opts: KidOptions) -> (f64, Option<f64>) {
    let m = opts.subset_size.min(real.n).min(fake.n);
    assert!(m >= 2, "KID needs at least two samples per set");
    let estimate = |x: &Features, y: &Features| {
        mmd2(
            &cubic_kernel(x, x),
            &cubic_kernel(y, y),
            &cubic_kernel(x, y),
            m,
        )
    };
    if m == real.n && m == fake.n {
        return (estimate(real, fake), None);
    }
    let mut rng = Rng::new(opts.seed).fork(0x41D);
    let mut scores = Vec::with_capacity(opts.subsets);
    for _ in 0..opts.subsets {
        let x = real.select(&rng.choose(real.n, m));
        let y = fake.select(&rng.choose(fake.n, m));
        scores.push(estimate(&x, &y));
    }
    let (mean, std) = super::mean_std(&scores);
    (mean, Some(std))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explicit(x: &Features, y: &Features) -> f64 {
        let k = |a: &[f32], b: &[f32]| {
            let dot: f64 = a.iter().zip(b).map(|(p, q)| *p as f64 * *q as f64).sum();
            (dot / a.len() as f64 + 1.0).powi(3)
        };
        let m = x.n as f64;
        let mut xx = 0.0;
        let mut yy = 0.0;
        let mut xy = 0.0;
        for i in 0..x.n {
            for j in 0..x.n {
                if i != j {
                    xx += k(x.row(i), x.row(j));
                    yy += k(y.row(i), y.row(j));
                }
                xy += k(x.row(i), y.row(j));
            }
        }
        xx / (m * (m - 1.0)) + yy / (m * (m - 1.0)) - 2.0 * xy / (m * m)
    }

    #[test]
    fn one_full_subset_equals_the_explicit_double_sum() {
        let mut rng = Rng::new(3);
        let x = Features::new(40, 8, rng.normal_vec(320, 0.0, 1.0));
        let y = Features::new(40, 8, rng.normal_vec(320, 0.5, 1.2));
        // A subset of all 40 is a permutation, which the estimate does not see.
        let opts = KidOptions {
            subsets: 3,
            subset_size: 40,
            seed: 9,
        };
        let (mean, std) = kid(&x, &y, opts);
        let want = explicit(&x, &y);
        assert!(
            (mean - want).abs() < 1e-5 * want.abs().max(1.0),
            "{mean} vs {want}"
        );
        assert_eq!(std, None, "one subset of both whole sets has no spread");
        assert!(want > 0.05, "the shifted set is far: {want}");
    }

    #[test]
    fn same_distribution_is_near_zero() {
        let mut rng = Rng::new(4);
        let x = Features::new(600, 8, rng.normal_vec(4800, 0.0, 1.0));
        let y = Features::new(600, 8, rng.normal_vec(4800, 0.0, 1.0));
        let (mean, _) = kid(
            &x,
            &y,
            KidOptions {
                subsets: 10,
                subset_size: 300,
                seed: 0,
            },
        );
        assert!(mean.abs() < 0.01, "{mean}");
    }
}
