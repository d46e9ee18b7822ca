//! The adaptive part of ADA (Karras et al. 2020, "Training Generative Adversarial Networks with
//! Limited Data", section 3; NVlabs' `training_loop.py`): D's overfitting is measured by
//! `r_t = E[sign(D(x_real))]` over the last `ada_interval` steps, and the augmentation
//! probability p moves towards keeping `r_t` at the target, fast enough to go from 0 to 1 in
//! `ada_kimg` thousand images: `p += sign(r_t - target) * batch * interval / (ada_kimg * 1000)`,
//! clamped below at 0 (as NVlabs; the pipeline treats p > 1 as 1).

use serde::{Deserialize, Serialize};

/// p, and the real logits' signs gathered since p last moved (kept in checkpoints, so a resumed
/// run updates p exactly as a straight one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AdaState {
    pub p: f64,
    pub sign_sum: f64,
    pub count: u64,
}

/// numpy's `sign`: 0 at 0.
fn sign(v: f64) -> f64 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        0.0
    }
}

impl AdaState {
    pub fn starting_at(p: f64) -> Self {
        AdaState {
            p,
            ..Default::default()
        }
    }

    /// Gather one D step's real logits.
    pub fn observe(&mut self, real_logits: &[f32]) {
        self.sign_sum += real_logits.iter().map(|&v| sign(v as f64)).sum::<f64>();
        self.count += real_logits.len() as u64;
    }

    /// At the end of every `interval`-th step: move p by the heuristic and start gathering
    /// again. Returns `r_t` when p moved.
    pub fn update(&mut self, target: f64, batch: usize, interval: u64, kimg: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rt = self.sign_sum / self.count as f64;
        let step = (batch as u64 * interval) as f64 / (kimg * 1000.0);
        self.p = (self.p + sign(rt - target) * step).max(0.0);
        (self.sign_sum, self.count) = (0.0, 0);
        Some(rt)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a synthetic sequence: while D is overconfident (r_t above the target) p climbs by
    /// `batch * interval / (kimg * 1000)` per update, then falls back when r_t drops, and never
    /// goes below 0.
    #[test]
    fn p_follows_the_sign_of_rt_minus_target() {
        let mut s = AdaState::default();
        let (batch, interval, kimg) = (32, 4, 0.5); // p steps of 32 * 4 / 500 = 0.256
        let step = 0.256;
        // 3 of 4 logits positive: r_t = 0.5 < 0.6, p stays at 0.
        s.observe(&[1.0, 2.0, -1.0, 3.0]);
        s.observe(&[1.0, -2.0, 1.0, 3.0]);
        assert_eq!(s.update(0.6, batch, interval, kimg), Some(0.5));
        assert_eq!(s.p, 0.0);
        // All positive: r_t = 1, p climbs one step per update.
        for k in 1..=3 {
            s.observe(&[1.0; 8]);
            assert_eq!(s.update(0.6, batch, interval, kimg), Some(1.0));
            assert!((s.p - step * k as f64).abs() < 1e-12, "{}", s.p);
        }
        // Zeros count as 0: r_t = 5 / 10, below the target, and p falls a step.
        s.observe(&[1.0, 1.0, 1.0, 0.0, 0.5, -0.0, 2.0, -1.0, 1.0, 0.0]);
        assert!((s.update(0.6, batch, interval, kimg).unwrap() - 0.5).abs() < 1e-12);
        assert!((s.p - 2.0 * step).abs() < 1e-12);
        // Nothing gathered: nothing moves.
        assert_eq!(s.update(0.6, batch, interval, kimg), None);
        assert!((s.p - 2.0 * step).abs() < 1e-12);
        // D unsure: p falls, and stops at 0.
        for _ in 0..5 {
            s.observe(&[-1.0; 4]);
            s.update(0.6, batch, interval, kimg);
        }
        assert_eq!(s.p, 0.0);
    }
}
