//! Sampling from a run: fixed-seed latents, image grids, GIFs, attention figures, and the
//! VQ-VAE-2 tools ([`vq`]).

pub mod attention;
pub mod gif;
pub mod grid;
pub mod stylegan;
pub mod vq;

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};

use crate::config::TrainConfig;
use crate::models::{Discriminator, Generator};
use crate::rng::Rng;
use crate::run::checkpoint::{files, load_module};
use crate::run::{self};
use crate::{Error, Result};

/// `n` standard-normal latents from `seed` (the same seed gives the same grid in every run).
pub fn latents(n: usize, z_dim: usize, seed: u64, device: &Device) -> Tensor<2> {
    let mut rng = Rng::new(seed).fork(0x5A3D);
    Tensor::from_data(
        TensorData::new(rng.normal_vec(n * z_dim, 0.0, 1.0), [n, z_dim]),
        device,
    )
}

/// Build G and D of a run's config for loading; an error when the run is not adversarial.
fn gan_modules(
    cfg: &TrainConfig,
    run_dir: &Path,
    device: &Device,
) -> Result<(Generator, Discriminator)> {
    cfg.model.init_gan(&mut Rng::new(0), device).ok_or_else(|| {
        Error::run(
            run_dir,
            format!(
                "is a {} run, which has no generator to sample from; use the commands for its \
                 family (see genforge --help)",
                cfg.model.family()
            ),
        )
    })
}

/// A run's config and its generator from `checkpoint` (default: the latest), for inference:
/// the weight average when the run keeps one, else the trained weights.
pub fn load_generator(
    run_dir: &Path,
    checkpoint: Option<&Path>,
    device: &Device,
) -> Result<(TrainConfig, Generator, PathBuf)> {
    let (cfg, ckpt) = run::resolve(run_dir, checkpoint)?;
    let (g, _) = gan_modules(&cfg, run_dir, device)?;
    let file = if ckpt.join(files::GENERATOR_EMA).is_file() {
        files::GENERATOR_EMA
    } else {
        files::GENERATOR
    };
    let g = load_module(g, &ckpt.join(file))?;
    Ok((cfg, g, ckpt))
}

/// The discriminator of a run's checkpoint (attention figures of D).
pub fn load_discriminator(
    cfg: &TrainConfig,
    ckpt: &Path,
    device: &Device,
) -> Result<Discriminator> {
    let (_, d) = gan_modules(cfg, ckpt, device)?;
    load_module(d, &ckpt.join(files::DISCRIMINATOR))
}
