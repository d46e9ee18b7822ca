//! Inception Score (Salimans et al. 2016, "Improved Techniques for Training GANs"):
//! `exp(E_x KL(p(y|x) || p(y)))` over 10 consecutive splits, mean and standard deviation. Split
//! `i` holds samples `i n / splits .. (i + 1) n / splits` as in torch-fidelity (every sample
//! counts); torch-fidelity also shuffles first, which changes nothing for i.i.d. samples and is
//! left out here.

/// `probs`: `n` rows of `classes` class probabilities.
pub fn inception_score(probs: &[f32], n: usize, classes: usize, splits: usize) -> (f64, f64) {
    assert_eq!(probs.len(), n * classes);
    assert!(n >= splits, "fewer samples ({n}) than splits ({splits})");
    let scores: Vec<f64> = (0..splits)
        .map(|s| {
            let (lo, hi) = (s * n / splits, (s + 1) * n / splits);
            let per = hi - lo;
            let part = &probs[lo * classes..hi * classes];
            let mut marginal = vec![0.0f64; classes];
            for row in part.chunks(classes) {
                for (m, p) in marginal.iter_mut().zip(row) {
                    *m += *p as f64 / per as f64;
                }
            }
            let kl: f64 = part
                .chunks(classes)
                .map(|row| {
                    row.iter()
                        .zip(&marginal)
                        .filter(|(p, _)| **p > 0.0)
                        .map(|(p, m)| *p as f64 * ((*p as f64).ln() - m.ln()))
                        .sum::<f64>()
                })
                .sum::<f64>()
                / per as f64;
            kl.exp()
        })
        .collect();
    super::mean_std(&scores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hot_predictions_score_the_class_count_and_uniform_ones_score_one() {
        let (n, c) = (1000, 10);
        let one_hot: Vec<f32> = (0..n * c)
            .map(|i| if i % c == (i / c) % c { 1.0 } else { 0.0 })
            .collect();
        let (is, std) = inception_score(&one_hot, n, c, 10);
        assert!((is - 10.0).abs() < 1e-9 && std < 1e-9, "{is} {std}");
        let uniform = vec![0.1f32; n * c];
        let (is, _) = inception_score(&uniform, n, c, 10);
        assert!((is - 1.0).abs() < 1e-6);
    }

    #[test]
    fn matches_a_hand_computed_split() {
        // Two samples, two classes: p = (0.8, 0.2), (0.4, 0.6); marginal (0.6, 0.4).
        let p = [0.8f32, 0.2, 0.4, 0.6];
        let kl = |a: f64, b: f64| a * (a / 0.6).ln() + b * (b / 0.4).ln();
        let want = ((kl(0.8, 0.2) + kl(0.4, 0.6)) / 2.0).exp();
        let (is, _) = inception_score(&p, 2, 2, 1);
        assert!((is - want).abs() < 1e-6, "{is} vs {want}");
    }
}
