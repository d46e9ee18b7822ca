//! Fréchet distance between Gaussians fitted to two feature sets (FID, Heusel et al. 2017,
//! "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash Equilibrium"):
//!
//! ```text
//! d² = ||mu1 - mu2||² + tr(S1) + tr(S2) - 2 tr((S1 S2)^½)
//! ```
//!
//! All in f64, as pytorch-fid. pytorch-fid takes `scipy.linalg.sqrtm(S1 S2)`, a Schur iteration
//! on a non-symmetric product that can turn complex or fail to converge; here the trace comes
//! from the symmetric form `tr((S1 S2)^½) = tr((A S2 A)^½)` with `A = S1^½`, two symmetric
//! eigendecompositions whose eigenvalues are clamped at zero, which is the same number for
//! covariance matrices and never breaks down.

use nalgebra::{DMatrix, DVector};

use super::Features;

/// Mean and covariance (unbiased, `n - 1`, as `numpy.cov`) of a feature set.
#[derive(Clone, Debug, PartialEq)]
pub struct GaussianStats {
    pub mu: DVector<f64>,
    pub sigma: DMatrix<f64>,
    pub n: usize,
}

impl GaussianStats {
    pub fn of(f: &Features) -> Self {
        let (n, d) = (f.n, f.d);
        let x = DMatrix::<f64>::from_fn(n, d, |i, j| f.row(i)[j] as f64);
        let mu = DVector::from_fn(d, |j, _| x.column(j).sum() / n as f64);
        let mut centred = x;
        for j in 0..d {
            let m = mu[j];
            centred.column_mut(j).add_scalar_mut(-m);
        }
        let denom = (n.max(2) - 1) as f64;
        let sigma = centred.tr_mul(&centred) / denom;
        GaussianStats { mu, sigma, n }
    }
}

/// Symmetric positive semi-definite square root through the eigendecomposition, negative
/// eigenvalues (round-off) clamped to zero.
pub fn sqrt_psd(s: &DMatrix<f64>) -> DMatrix<f64> {
    let eig = s.clone().symmetric_eigen();
    let roots = eig.eigenvalues.map(|l| l.max(0.0).sqrt());
    let v = &eig.eigenvectors;
    v * DMatrix::from_diagonal(&roots) * v.transpose()
}

/// `tr((S1 S2)^½)` through the symmetric form.
pub fn trace_sqrt_product(s1: &DMatrix<f64>, s2: &DMatrix<f64>) -> f64 {
    let a = sqrt_psd(s1);
    let m = &a * s2 * &a;
    let m = (&m + m.transpose()) * 0.5;
    m.symmetric_eigenvalues()
        .iter()
        .map(|l| l.max(0.0).sqrt())
        .sum()
}

pub fn frechet_distance(a: &GaussianStats, b: &GaussianStats) -> f64 {
    let diff = &a.mu - &b.mu;
    diff.dot(&diff) + a.sigma.trace() + b.sigma.trace()
        - 2.0 * trace_sqrt_product(&a.sigma, &b.sigma)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn gaussian(mu: &[f64], diag: &[f64]) -> GaussianStats {
        GaussianStats {
            mu: DVector::from_column_slice(mu),
            sigma: DMatrix::from_diagonal(&DVector::from_column_slice(diag)),
            n: 0,
        }
    }

    #[test]
    fn identical_sets_are_at_distance_zero() {
        let mut rng = Rng::new(1);
        let f = Features::new(500, 16, rng.normal_vec(500 * 16, 0.3, 2.0));
        let s = GaussianStats::of(&f);
        assert!(frechet_distance(&s, &s).abs() < 1e-9);
    }

    #[test]
    fn diagonal_gaussians_match_the_closed_form() {
        // Commuting covariances: d² = |dmu|² + sum (sqrt(a) - sqrt(b))².
        let a = gaussian(&[0.0, 1.0, 2.0], &[1.0, 4.0, 9.0]);
        let b = gaussian(&[1.0, 1.0, 0.0], &[4.0, 1.0, 0.25]);
        let expected = (1.0 + 0.0 + 4.0)
            + (1.0f64 - 2.0).powi(2)
            + (2.0f64 - 1.0).powi(2)
            + (3.0f64 - 0.5).powi(2);
        assert!((frechet_distance(&a, &b) - expected).abs() < 1e-12);
    }

    #[test]
    fn rotated_covariances_match_the_2x2_closed_form() {
        // For 2x2 PSD M, tr(M^½) = sqrt(tr M + 2 sqrt(det M)); here M = S1 S2 is not symmetric.
        let s1 = DMatrix::<f64>::from_row_slice(2, 2, &[2.0, 0.6, 0.6, 1.0]);
        let s2 = DMatrix::<f64>::from_row_slice(2, 2, &[1.0, -0.3, -0.3, 0.5]);
        let m = &s1 * &s2;
        let expected = (m.trace() + 2.0 * m.determinant().sqrt()).sqrt();
        assert!((trace_sqrt_product(&s1, &s2) - expected).abs() < 1e-12);
    }

    #[test]
    fn covariance_is_numpy_cov() {
        let f = Features::new(3, 2, vec![1.0, 2.0, 3.0, 6.0, 5.0, 4.0]);
        let s = GaussianStats::of(&f);
        assert_eq!(s.mu.as_slice(), &[3.0, 4.0]);
        // x: 1,3,5 (var 4); y: 2,6,4 (var 4); cov = ((-2)(-2)+0*2+2*0)/2 = 2.
        assert_eq!(s.sigma.as_slice(), &[4.0, 2.0, 2.0, 4.0]);
    }
}
