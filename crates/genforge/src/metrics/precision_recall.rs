//! Improved precision and recall (Kynkäänniemi et al. 2019, "Improved Precision and Recall
//! Metric for Assessing Generative Models"): each set's manifold is the union of balls around
//! its samples whose radius is the distance to the k-th nearest neighbour (k = 3) in the same
//! set. Precision is the fraction of generated samples inside the real manifold, recall the
//! fraction of real samples inside the generated one.

use super::{Features, squared_distances};

/// Squared distance from each sample to its k-th nearest other sample.
fn kth_radii(f: &Features, k: usize) -> Vec<f32> {
    assert!(
        f.n > k,
        "precision/recall with k = {k} needs more than {k} samples"
    );
    let mut out = Vec::with_capacity(f.n);
    squared_distances(f, f, |_, row| {
        let mut row = row.to_vec();
        // Index k: the sample itself (distance 0) is the 0th.
        row.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
        out.push(row[k]);
    });
    out
}

/// Fraction of `query` samples within some ball of `manifold`.
fn coverage(manifold: &Features, radii: &[f32], query: &Features) -> f64 {
    let mut inside = 0usize;
    squared_distances(query, manifold, |_, row| {
        if row.iter().zip(radii).any(|(d, r)| d <= r) {
            inside += 1;
        }
    });
    inside as f64 / query.n as f64
}

/// (precision, recall) with `k` nearest neighbours.
pub fn precision_recall(real: &Features, fake: &Features, k: usize) -> (f64, f64) {
    let real_radii = kth_radii(real, k);
    let fake_radii = kth_radii(fake, k);
    (
        coverage(real, &real_radii, fake),
        coverage(fake, &fake_radii, real),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn a_set_against_itself_is_one_one() {
        let mut rng = Rng::new(5);
        let f = Features::new(200, 6, rng.normal_vec(1200, 0.0, 1.0));
        assert_eq!(precision_recall(&f, &f, 3), (1.0, 1.0));
    }

    #[test]
    fn a_collapsed_generator_has_precision_but_no_recall() {
        let mut rng = Rng::new(6);
        let real = Features::new(300, 2, rng.normal_vec(600, 0.0, 1.0));
        // Every generated sample near the origin: inside the real manifold, covering little.
        let fake = Features::new(300, 2, rng.normal_vec(600, 0.0, 0.01));
        let (p, r) = precision_recall(&real, &fake, 3);
        assert!(p > 0.99, "precision {p}");
        assert!(r < 0.2, "recall {r}");
    }

    #[test]
    fn radii_are_the_third_neighbour() {
        // Points on a line at 0, 1, 3, 6, 10: the 3rd nearest of 0 is 6 (d² 36), of 3 is 6
        // (neighbours 1, 6, 0 at 2, 3, 3 -> d² 9).
        let f = Features::new(5, 1, vec![0.0, 1.0, 3.0, 6.0, 10.0]);
        let r = kth_radii(&f, 3);
        assert_eq!(r[0], 36.0);
        assert_eq!(r[2], 9.0);
    }
}
