//! One adversarial iteration (a D step on real + fake, then a G step), the models, optimizers
//! and latent generator it needs, and their checkpoint form.

use std::path::Path;

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::store::ModuleRecord;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::{ema, losses};
use crate::config::{LossKind, TrainConfig};
use crate::models::{Discriminator, Family, Generator};
use crate::nn::diff_augment::{Policy, diff_augment};
use crate::rng::Rng;
use crate::{Error, Result};

/// Loss values of one iteration (means over the batch).
#[derive(Clone, Copy, Debug, Serialize)]
pub struct StepStats {
    pub d_loss: f64,
    pub g_loss: f64,
    /// Mean D logit on real images and on the fakes of the D step.
    pub d_real: f64,
    pub d_fake: f64,
}

/// Scalar state saved beside the weights in every checkpoint.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TrainerState {
    pub step: u64,
    pub images_seen: u64,
    /// Latent generator, so a resumed run draws the same `z` a straight run would.
    pub rng: Rng,
}

impl TrainerState {
    /// Step 0 with the run's random stream `label` forked from `seed`.
    pub fn new(seed: u64, label: u64) -> Self {
        TrainerState {
            step: 0,
            images_seen: 0,
            rng: Rng::new(seed).fork(label),
        }
    }
}

/// Accumulated seconds per phase of a train step.
#[derive(Default, Debug, Clone)]
pub struct PhaseTimes {
    pub seconds: Vec<(&'static str, f64)>,
    last: Option<std::time::Instant>,
}

impl PhaseTimes {
    fn mark(&mut self, name: &'static str, device: &Device) {
        let _ = device.sync();
        let now = std::time::Instant::now();
        if name == "start" {
            self.last = Some(now);
            return;
        }
        if let Some(last) = self.last {
            let dt = (now - last).as_secs_f64();
            match self.seconds.iter_mut().find(|(n, _)| *n == name) {
                Some(entry) => entry.1 += dt,
                None => self.seconds.push((name, dt)),
            }
        }
        self.last = Some(now);
    }
}

pub struct GanTrainer {
    pub cfg: TrainConfig,
    pub g: Generator,
    pub d: Discriminator,
    /// Weight average of `g` on the plain device (`train.ema_decay > 0`).
    pub g_ema: Option<Generator>,
    /// DiffAugment policy for D's inputs (ViTGAN).
    augment: Policy,
    g_opt: ModuleOptimizer,
    d_opt: ModuleOptimizer,
    pub state: TrainerState,
    device: Device,
}

const FILES: [&str; 5] = [
    "generator.bpk",
    "discriminator.bpk",
    "g_optim.bpk",
    "d_optim.bpk",
    "state.json",
];
/// Written beside [`FILES`] when the run keeps a generator average.
pub const EMA_FILE: &str = "generator_ema.bpk";

impl GanTrainer {
    /// Fresh models from `cfg.train.seed` on `device` (autodiff is enabled here).
    pub fn new(cfg: TrainConfig, device: &Device) -> Self {
        let device = device.clone().autodiff();
        let mut init = Rng::new(cfg.train.seed).fork(0x1417);
        let g = Generator::new(&cfg.model, &mut init, &device);
        let d = Discriminator::new(&cfg.model, &mut init, &device);
        let rng = Rng::new(cfg.train.seed).fork(0x2a7e);
        let g_ema = (cfg.train.ema_decay > 0.0).then(|| g.valid());
        let augment = match cfg.model.family {
            Family::Vitgan => Policy::parse(&cfg.model.diffaugment).unwrap_or_default(),
            _ => Policy::default(),
        };
        GanTrainer {
            g_opt: adam(&cfg),
            d_opt: adam(&cfg),
            cfg,
            g,
            d,
            g_ema,
            augment,
            state: TrainerState {
                step: 0,
                images_seen: 0,
                rng,
            },
            device,
        }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    fn latents(&mut self, batch: usize) -> Tensor<2> {
        let z = self.cfg.model.z_dim;
        Tensor::from_data(
            TensorData::new(self.state.rng.normal_vec(batch * z, 0.0, 1.0), [batch, z]),
            &self.device,
        )
    }

    fn d_loss(&self, real: Tensor<1>, fake: Tensor<1>) -> Tensor<1> {
        match self.cfg.train.loss {
            LossKind::Bce => losses::d_bce_loss(real, fake),
            LossKind::Hinge => losses::d_hinge_loss(real, fake),
        }
    }

    fn g_loss(&self, fake: Tensor<1>) -> Tensor<1> {
        match self.cfg.train.loss {
            LossKind::Bce => losses::g_nonsaturating_loss(fake),
            LossKind::Hinge => losses::g_hinge_loss(fake),
        }
    }

    /// One D step then one G step on `real` (`[b, c, h, w]` in [-1, 1]). A non-finite loss is an
    /// error and leaves the models as they were before the offending update.
    pub fn train_step(&mut self, real: Tensor<4>) -> Result<StepStats> {
        self.train_step_timed(real, None)
    }

    /// [`train_step`](Self::train_step), recording where the time goes when `phases` is given
    /// (the device is synchronised at each phase boundary, so only benchmarks ask for it).
    pub fn train_step_timed(
        &mut self,
        real: Tensor<4>,
        mut phases: Option<&mut PhaseTimes>,
    ) -> Result<StepStats> {
        let b = real.dims()[0];
        let device = self.device.clone();
        let mut mark = |name: &'static str| {
            if let Some(p) = phases.as_deref_mut() {
                p.mark(name, &device);
            }
        };
        mark("start");
        let real = real.to_device(&self.device);
        let step = self.state.step + 1;

        // D step: fakes are detached so only D receives gradients.
        let z = self.latents(b);
        let fake = match &self.g {
            // No BatchNorm: the fakes can come from G without autodiff bookkeeping.
            Generator::Vit(_) => {
                let g = self.g.valid();
                let plain = g.device();
                g.forward(z.to_device(&plain)).to_device(&self.device)
            }
            // DCGAN/SAGAN need G's training-mode BatchNorm here, as the seed.
            Generator::Conv(_) => self.g.forward(z).detach(),
        }; // [b, c, h, w]
        let (d_real, d_fake, d_loss) = if self.cfg.model.family == Family::Vitgan {
            self.vitgan_d_logits(real, fake)
        } else {
            let d_real = self.d.forward(real); // [b]
            let d_fake = self.d.forward(fake); // [b]
            let loss = self.d_loss(d_real.clone(), d_fake.clone());
            (d_real, d_fake, loss)
        };
        mark("d_forward");
        let d_loss_v = d_loss.clone().into_scalar::<f32>() as f64;
        check_finite("d_loss", d_loss_v, step)?;
        let grads = GradientsParams::from_grads(d_loss.backward(), &self.d);
        mark("d_backward");
        self.d = self.d_opt.step(self.cfg.train.d_lr, self.d.clone(), grads);
        mark("d_adam");

        // G step through the updated D.
        let z = self.latents(b);
        let fake = self.g.forward(z);
        let fake = if self.augment.is_identity() {
            fake
        } else {
            diff_augment(fake, self.augment, &mut self.state.rng)
        };
        let g_loss = self.g_loss(self.d.forward(fake));
        mark("g_forward");
        let g_loss_v = g_loss.clone().into_scalar::<f32>() as f64;
        check_finite("g_loss", g_loss_v, step)?;
        let grads = GradientsParams::from_grads(g_loss.backward(), &self.g);
        mark("g_backward");
        self.g = self.g_opt.step(self.cfg.train.g_lr, self.g.clone(), grads);
        if let Some(avg) = self.g_ema.take() {
            let beta = ema::decay_at(self.cfg.train.ema_decay, step);
            self.g_ema = Some(ema::update(avg, &self.g, beta));
        }
        mark("g_adam");

        self.state.step = step;
        self.state.images_seen += b as u64;
        Ok(StepStats {
            d_loss: d_loss_v,
            g_loss: g_loss_v,
            d_real: d_real.mean().into_scalar::<f32>() as f64,
            d_fake: d_fake.mean().into_scalar::<f32>() as f64,
        })
    }

    /// ViTGAN's D pass: one batch of `[T(real), T(fake), real, fake]` (`T` = DiffAugment; the
    /// plain half only when bCR is on) and the seed's loss; returns the augmented real and fake
    /// logits and the loss.
    fn vitgan_d_logits(
        &mut self,
        real: Tensor<4>,
        fake: Tensor<4>,
    ) -> (Tensor<1>, Tensor<1>, Tensor<1>) {
        let b = real.dims()[0];
        let real_aug = diff_augment(real.clone(), self.augment, &mut self.state.rng);
        let fake_aug = diff_augment(fake.clone(), self.augment, &mut self.state.rng);
        let t = &self.cfg.train;
        // The plain copies only feed bCR; without it D sees the augmented batch alone.
        let bcr = t.bcr_real > 0.0 || t.bcr_fake > 0.0;
        let mut batch = vec![real_aug, fake_aug];
        if bcr {
            batch.extend([real, fake]);
        }
        let logits = self.d.forward(Tensor::cat(batch, 0)); // [4b] or [2b]
        let part = |i: usize| logits.clone().narrow(0, i * b, b);
        let (ra, fa) = (part(0), part(1));
        let plain = if bcr {
            [part(2), part(3)]
        } else {
            [ra.clone(), fa.clone()]
        };
        let loss = losses::d_vitgan_loss([ra.clone(), fa.clone()], plain, t.bcr_real, t.bcr_fake);
        (ra, fa, loss)
    }

    /// Images from the generator in inference mode: the weight average when the run keeps one,
    /// else G with BatchNorm running statistics and spectral norm without update.
    pub fn generate(&self, z: Tensor<2>) -> Tensor<4> {
        let g = match &self.g_ema {
            Some(avg) => avg.clone(),
            None => self.g.valid(),
        };
        let device = g.device();
        g.forward(z.to_device(&device))
    }

    /// Write every file of a checkpoint into `dir` (which must exist). Atomicity is the caller's:
    /// see [`crate::run::checkpoint`].
    pub fn save(&self, dir: &Path) -> Result<()> {
        // `valid()` folds pending running-state updates (BatchNorm statistics, spectral-norm `u`)
        // into the snapshot; a plain record would save them one update stale.
        save_module(self.g.valid(), &dir.join(FILES[0]))?;
        save_module(self.d.valid(), &dir.join(FILES[1]))?;
        save_optim(&self.g_opt, &dir.join(FILES[2]))?;
        save_optim(&self.d_opt, &dir.join(FILES[3]))?;
        if let Some(avg) = &self.g_ema {
            save_module(avg.clone(), &dir.join(EMA_FILE))?;
        }
        save_state(&self.state, &dir.join(FILES[4]))
    }

    /// Rebuild a trainer from a checkpoint directory written by [`save`](Self::save).
    pub fn load(cfg: TrainConfig, dir: &Path, device: &Device) -> Result<Self> {
        require_files(dir, &FILES)?;
        let mut t = GanTrainer::new(cfg, device);
        t.g = load_module(t.g, &dir.join(FILES[0]))?;
        t.d = load_module(t.d, &dir.join(FILES[1]))?;
        if let Some(avg) = t.g_ema.take() {
            require_files(dir, &[EMA_FILE])?;
            t.g_ema = Some(load_module(avg, &dir.join(EMA_FILE))?);
        }
        t.g_opt = load_optim(adam(&t.cfg), &dir.join(FILES[2]))?;
        t.d_opt = load_optim(adam(&t.cfg), &dir.join(FILES[3]))?;
        t.state = load_state(&dir.join(FILES[4]))?;
        Ok(t)
    }
}

/// An error naming the first of `files` missing from the checkpoint `dir`.
pub fn require_files(dir: &Path, files: &[&str]) -> Result<()> {
    for f in files {
        if !dir.join(f).is_file() {
            return Err(Error::run(
                dir,
                format!("checkpoint is incomplete: {f} is missing"),
            ));
        }
    }
    Ok(())
}

pub fn save_module<M: Module>(module: M, path: &Path) -> Result<()> {
    module
        .into_record()
        .save(path)
        .map_err(|e| Error::run(path, e.to_string()))
}

pub fn save_optim(opt: &ModuleOptimizer, path: &Path) -> Result<()> {
    opt.save(path).map_err(|e| Error::run(path, e.to_string()))
}

pub fn load_optim(opt: ModuleOptimizer, path: &Path) -> Result<ModuleOptimizer> {
    opt.load(path)
        .map_err(|e| Error::run(path, format!("unreadable optimizer state: {e}")))
}

pub fn save_state(state: &TrainerState, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(state).expect("state serializes");
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

pub fn load_state(path: &Path) -> Result<TrainerState> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::run(path, format!("corrupt state: {e}")))
}

/// Adam with the config's betas and epsilon.
pub fn adam(cfg: &TrainConfig) -> ModuleOptimizer {
    AdamConfig::new()
        .with_beta_1(cfg.train.beta1 as f32)
        .with_beta_2(cfg.train.beta2 as f32)
        .with_epsilon(cfg.train.adam_eps as f32)
        .init()
}

/// Load a `.bpk` record into a freshly built module, turning panics-to-be into errors.
pub fn load_module<M: Module>(module: M, path: &Path) -> Result<M> {
    let record = ModuleRecord::load(path)
        .map_err(|e| Error::run(path, format!("unreadable weights: {e}")))?;
    module.try_load_record(record).map_err(|e| {
        Error::run(
            path,
            format!("weights do not fit the configured model: {e}"),
        )
    })
}

pub fn check_finite(name: &str, v: f64, step: u64) -> Result<()> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(Error::Diverged(format!(
            "{name} is {v} at step {step}: training diverged. The last good checkpoint is kept; \
             resume from it with a lower learning rate (--set train.g_lr=... train.d_lr=... for GANs, \
             train.lr=... otherwise)"
        )))
    }
}
