//! The optimizer every stage uses and the divergence check on its losses.

use burn::optim::{AdamConfig, ModuleOptimizer};

use crate::config::TrainConfig;
use crate::{Error, Result};

/// Adam with the config's betas and epsilon.
pub fn adam(cfg: &TrainConfig) -> ModuleOptimizer {
    AdamConfig::new()
        .with_beta_1(cfg.train.beta1 as f32)
        .with_beta_2(cfg.train.beta2 as f32)
        .with_epsilon(cfg.train.adam_eps as f32)
        .init()
}

/// An error when a loss is not finite; the training loop adds what the run's checkpoints allow.
pub fn check_finite(name: &str, v: f64, step: u64) -> Result<()> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(Error::Diverged(format!(
            "{name} is {v} at step {step}: training diverged"
        )))
    }
}
