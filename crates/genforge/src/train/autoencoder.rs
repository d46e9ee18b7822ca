//! Stage 1 of VQ-VAE-2: the autoencoder trained on `MSE(x, x~) + commitment`, with the codebooks
//! following their EMA updates after each optimizer step.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};

use super::optim::{adam, check_finite};
use super::stage::{Stage, describe_images, save_reals};
use crate::Result;
use crate::config::TrainConfig;
use crate::data::{self, Dataset};
use crate::models::vqvae2::VqVae2;
use crate::rng::Rng;
use crate::run::TrainerState;
use crate::run::checkpoint::{
    files, load_module, load_optim, load_state, require_files, save_module, save_optim, save_state,
};
use crate::sample::grid;

const FILES: [&str; 3] = [files::VQVAE2, files::OPTIM, files::STATE];

/// Peak signal-to-noise ratio of a mean squared error for images in [-1, 1] (peak-to-peak 2;
/// the same number as for [0, 1] images with a 4x smaller MSE).
pub fn psnr(mse: f64) -> f64 {
    10.0 * (4.0 / mse.max(1e-12)).log10()
}

pub struct AutoencoderTrainer {
    pub cfg: TrainConfig,
    pub model: VqVae2,
    opt: ModuleOptimizer,
    pub state: TrainerState,
    device: Device,
    train: Dataset,
    held: Option<Dataset>,
    data_path: PathBuf,
}

impl AutoencoderTrainer {
    pub fn build(cfg: TrainConfig, resume: Option<&Path>, device: &Device) -> Result<Self> {
        let data_path = cfg.resolve_data_path();
        let (channels, resolution) = cfg.model.image_shape().expect("an image family");
        let all = data::load(&cfg.data, &data_path, channels, resolution)?;
        let (train, held) = all.split_holdout(cfg.train.holdout);
        let mut t = Self::new(cfg, train, held, data_path, device);
        if let Some(dir) = resume {
            require_files(dir, &FILES)?;
            t.model = load_module(t.model, &dir.join(FILES[0]))?;
            t.opt = load_optim(adam(&t.cfg), &dir.join(FILES[1]))?;
            t.state = load_state(dir)?;
        }
        Ok(t)
    }

    pub fn new(
        cfg: TrainConfig,
        train: Dataset,
        held: Option<Dataset>,
        data_path: PathBuf,
        device: &Device,
    ) -> Self {
        let device = device.clone().autodiff();
        let model = VqVae2::new(
            cfg.model.as_vqvae2().expect("a vqvae2 config"),
            &mut Rng::new(cfg.train.seed).fork(0x7a7e),
            &device,
        );
        AutoencoderTrainer {
            opt: adam(&cfg),
            state: TrainerState::new(cfg.train.seed, 0xc0de),
            cfg,
            model,
            device,
            train,
            held,
            data_path,
        }
    }

    /// One step on `x` (`[b, c, h, w]` in [-1, 1]).
    pub fn train_step(&mut self, x: Tensor<4>) -> Result<Vec<(&'static str, f64)>> {
        let b = x.dims()[0];
        let step = self.state.step + 1;
        let x = x.to_device(&self.device);
        let (recon, enc) = self.model.forward(x.clone());
        let mse = (recon - x).square().mean(); // [1]
        let commitment = enc.commitment();
        let loss = mse.clone() + commitment.clone();
        let loss_v = loss.clone().into_scalar::<f32>() as f64;
        check_finite("loss", loss_v, step)?;
        let mse_v = mse.into_scalar::<f32>() as f64;
        let commit_v = commitment.into_scalar::<f32>() as f64;
        let grads = GradientsParams::from_grads(loss.backward(), &self.model);
        let mut model = self.opt.step(self.cfg.train.lr, self.model.clone(), grads);
        // The codebooks follow the batch's assignments (the optimizer never touches them).
        let (qt, top) = model
            .quantize_t
            .update(enc.top.flat, enc.top.indices, &mut self.state.rng);
        let (qb, bottom) =
            model
                .quantize_b
                .update(enc.bottom.flat, enc.bottom.indices, &mut self.state.rng);
        model.quantize_t = qt;
        model.quantize_b = qb;
        self.model = model;
        self.state.step = step;
        self.state.images_seen += b as u64;
        Ok(vec![
            ("loss", loss_v),
            ("mse", mse_v),
            ("psnr", psnr(mse_v)),
            ("commitment", commit_v),
            ("usage_top", top.usage),
            ("usage_bottom", bottom.usage),
            ("perplexity_top", top.perplexity),
            ("perplexity_bottom", bottom.perplexity),
            ("restarted_top", top.restarted as f64),
            ("restarted_bottom", bottom.restarted as f64),
        ])
    }

    /// Mean reconstruction MSE over `dataset` (at most `limit` images; 0: all), inference mode.
    pub fn eval_mse(model: &VqVae2, dataset: &Dataset, limit: usize, batch: usize) -> f64 {
        let n = if limit == 0 {
            dataset.len()
        } else {
            limit.min(dataset.len())
        };
        let device = model.device();
        let mut sum = 0.0;
        for start in (0..n).step_by(batch.max(1)) {
            let idx: Vec<usize> = (start..(start + batch).min(n)).collect();
            let x = dataset.tensor(&idx, &device);
            let (recon, _) = model.forward(x.clone());
            sum += (recon - x).square().mean().into_scalar::<f32>() as f64 * idx.len() as f64;
        }
        sum / n.max(1) as f64
    }
}

impl Stage for AutoencoderTrainer {
    fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    fn train_items(&self) -> usize {
        self.train.len()
    }

    fn step(&mut self, batch: &[usize]) -> Result<Vec<(&'static str, f64)>> {
        let x = self.train.tensor(batch, &self.device);
        self.train_step(x)
    }

    fn state(&self) -> &TrainerState {
        &self.state
    }

    fn save(&self, dir: &Path) -> Result<()> {
        save_module(self.model.valid(), &dir.join(FILES[0]))?;
        save_optim(&self.opt, &dir.join(FILES[1]))?;
        save_state(&self.state, dir)
    }

    /// Originals above reconstructions of fixed images (held-out ones when there are), and the
    /// held-out MSE and PSNR.
    fn snapshot(&mut self, run_dir: &Path, step: u64) -> Result<Vec<(&'static str, f64)>> {
        let model = self.model.valid();
        let source = self.held.as_ref().unwrap_or(&self.train);
        let n = self.cfg.train.grid_size.clamp(1, 16).min(source.len());
        let idx: Vec<usize> = (0..n).collect();
        let x = source.tensor(&idx, &model.device());
        let (recon, _) = model.forward(x.clone());
        let path = run_dir.join("samples").join(format!("step-{step:07}.png"));
        grid::save_png(
            &grid::make_grid(Tensor::cat(vec![x, recon], 0), Some(n)),
            &path,
        )?;
        Ok(match &self.held {
            Some(held) => {
                let mse = Self::eval_mse(&model, held, self.cfg.train.eval_limit, 64);
                vec![("heldout_mse", mse), ("heldout_psnr", psnr(mse))]
            }
            None => Vec::new(),
        })
    }

    fn describe(&self) -> String {
        let held = self.held.as_ref().map_or(0, |h| h.len());
        format!(
            "{} ({held} held out)",
            describe_images(&self.cfg, &self.train, &self.data_path)
        )
    }

    fn begin(&self, run_dir: &Path) -> Result<()> {
        save_reals(&self.train, self.cfg.train.grid_size, run_dir)
    }
}
