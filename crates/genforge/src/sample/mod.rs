//! Sampling from a run: fixed-seed latents, image grids, GIFs, attention figures, and the
//! VQ-VAE-2 tools ([`vq`]).

pub mod attention;
pub mod gif;
pub mod grid;
pub mod vq;

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};

use crate::config::TrainConfig;
use crate::models::{Discriminator, Generator};
use crate::rng::Rng;
use crate::run::{self, checkpoint};
use crate::train::gan::{EMA_FILE, load_module};
use crate::{Error, Result};

/// `n` standard-normal latents from `seed` (the same seed gives the same grid in every run).
pub fn latents(n: usize, z_dim: usize, seed: u64, device: &Device) -> Tensor<2> {
    let mut rng = Rng::new(seed).fork(0x5A3D);
    Tensor::from_data(
        TensorData::new(rng.normal_vec(n * z_dim, 0.0, 1.0), [n, z_dim]),
        device,
    )
}

/// A run's config and its generator from `checkpoint` (default: the latest), for inference:
/// the weight average when the run keeps one (ViTGAN), else the trained weights.
pub fn load_generator(
    run_dir: &Path,
    checkpoint: Option<&Path>,
    device: &Device,
) -> Result<(TrainConfig, Generator, PathBuf)> {
    let (cfg, ckpt) = resolve(run_dir, checkpoint)?;
    let mut init = Rng::new(0);
    let g = Generator::new(&cfg.model, &mut init, device);
    let file = if ckpt.join(EMA_FILE).is_file() {
        EMA_FILE
    } else {
        "generator.bpk"
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
    let d = Discriminator::new(&cfg.model, &mut Rng::new(0), device);
    load_module(d, &ckpt.join("discriminator.bpk"))
}

/// The config of `run_dir` and the checkpoint to read (default: the latest).
pub(crate) fn resolve(run_dir: &Path, checkpoint: Option<&Path>) -> Result<(TrainConfig, PathBuf)> {
    let cfg_path = run_dir.join(run::CONFIG_FILE);
    if !cfg_path.is_file() {
        return Err(Error::run(
            run_dir,
            "is not a genforge run directory (no config.toml)",
        ));
    }
    let cfg = TrainConfig::load_file(&cfg_path)?;
    let ckpt = match checkpoint {
        Some(c) => c.to_path_buf(),
        None => checkpoint::latest(run_dir)?.1,
    };
    Ok((cfg, ckpt))
}
