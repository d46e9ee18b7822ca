//! genforge: train, sample and evaluate generative image models on burn.
//!
//! Layout follows the papers: [`nn`] holds layers burn lacks (spectral normalization,
//! self-attention), [`models`] one module per family, [`train`] losses and the adversarial loop,
//! [`data`] dataset readers, [`run`] run directories and checkpoints, [`sample`] grids and figures,
//! [`metrics`] FID/KID/IS/PR. [`cpu`] holds the CPU kernels behind `nn`'s operations.

pub mod bench;
pub mod config;
pub mod cpu;
pub mod data;
pub mod device;
pub mod error;
pub mod import;
pub mod metrics;
pub mod models;
pub mod nn;
pub mod report;
pub mod rng;
pub mod run;
pub mod sample;
pub mod train;

pub use error::{Error, Result};

/// Helpers shared by the unit tests.
#[cfg(test)]
pub(crate) mod testing;

/// Re-exported so callers build tensors and devices without naming burn themselves.
pub use burn;
