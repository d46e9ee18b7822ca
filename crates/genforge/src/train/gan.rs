//! One adversarial iteration as loss phases (stylegan2-ada's `loss.py`): D main, D regularizer,
//! G main, each an optimizer step of its own network on its own interval. The phase bodies are
//! built from the pure functions of [`losses`] and [`regularizers`]; DiffAugment and bCR are
//! ordinary D-main terms, R1 a D-regularizer (joined to D main when it runs every step).

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};
use serde::Serialize;

use super::ada::AdaState;
use super::optim::{adam, check_finite};
use super::{ema, losses, regularizers};
use crate::Result;
use crate::config::AugmentKind;
use crate::config::{LossKind, TrainConfig};
use crate::models::growth::Growth;
use crate::models::{Discriminator, Generator, Labels};
use crate::nn::augment::{Pipeline, Transforms};
use crate::nn::diff_augment::{Policy, diff_augment};
use crate::rng::Rng;
use crate::run::TrainerState;
use crate::run::checkpoint::{
    files, load_module, load_optim, load_state, require_files, save_module, save_optim, save_state,
};

/// Loss values of one iteration (means over the batch).
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct StepStats {
    pub d_loss: f64,
    pub g_loss: f64,
    /// Mean D logit on real images and on the fakes of the D step.
    pub d_real: f64,
    pub d_fake: f64,
    /// D's accuracy by the sign of its logits: the fraction of reals above 0 and fakes below,
    /// over both (0.5 is chance; near 1 an overconfident D, the usual prelude to collapse).
    pub d_acc: f64,
    /// `mean ||grad_x D(x)||^2` on reals, on steps where R1 ran.
    pub r1: Option<f64>,
    /// WGAN-GP: `mean (||grad_x D(x_hat)|| - 1)^2` on the interpolates.
    pub gp: Option<f64>,
    /// StyleGAN2: the mean path length `L` on steps where path length regularization ran.
    pub pl: Option<f64>,
    /// ADA: the augmentation probability p after this step.
    pub ada_p: Option<f64>,
    /// ADA: `r_t = E[sign(D(real))]` over the interval, on steps where p moved.
    pub ada_rt: Option<f64>,
}

/// What D's inputs go through (`train.augment`).
#[derive(Clone, Copy, Debug)]
enum Augment {
    None,
    Diff(Policy),
    Ada(Pipeline),
}

/// The phases of an iteration, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The adversarial D loss (with DiffAugment and bCR when configured), and R1 when it runs
    /// every step.
    DMain,
    /// Lazy R1 (every `train.r1_interval` steps, weighted by the interval).
    DReg,
    /// The adversarial G loss; then the G weight average and StyleGAN's `w_avg` follow.
    GMain,
    /// StyleGAN2's lazy path length regularization (every `train.pl_interval` steps, weighted
    /// by the interval).
    GReg,
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
    /// DiffAugment or ADA for D's inputs.
    augment: Augment,
    g_opt: ModuleOptimizer,
    d_opt: ModuleOptimizer,
    pub state: TrainerState,
    /// The progressive-growing schedule, when the run grows.
    growth: Option<Growth>,
    device: Device,
}

const FILES: [&str; 5] = [
    files::GENERATOR,
    files::DISCRIMINATOR,
    files::G_OPTIM,
    files::D_OPTIM,
    files::STATE,
];

impl GanTrainer {
    /// Fresh models from `cfg.train.seed` on `device` (autodiff is enabled here).
    pub fn new(cfg: TrainConfig, device: &Device) -> Self {
        let device = device.clone().autodiff();
        let mut init = Rng::new(cfg.train.seed).fork(0x1417);
        let (g, d) = cfg
            .model
            .init_gan(cfg.train.progressive, &mut init, &device)
            .expect("GanTrainer is built for adversarial families only");
        let g_ema = (cfg.train.ema_decay > 0.0).then(|| g.valid());
        GanTrainer {
            growth: cfg.growth(),
            g_opt: adam(&cfg),
            d_opt: adam(&cfg),
            augment: match cfg.train.augment {
                AugmentKind::DiffAugment if !cfg.model.diffaugment().is_identity() => {
                    Augment::Diff(cfg.model.diffaugment())
                }
                AugmentKind::Ada | AugmentKind::Fixed => Augment::Ada(
                    Pipeline::named(&cfg.train.ada_pipeline).expect("checked by validate"),
                ),
                _ => Augment::None,
            },
            state: TrainerState::new(cfg.train.seed, 0x2a7e),
            cfg,
            g,
            d,
            g_ema,
            device,
        }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Put G, D and the G average at a level of the growing networks.
    fn set_level(&mut self, level: crate::models::pggan::Level) {
        self.g.set_level(level);
        self.d.set_level(level);
        if let Some(avg) = &mut self.g_ema {
            avg.set_level(level);
        }
    }

    /// The growth level of the last step (`None` when the run does not grow).
    pub fn level(&self) -> Option<crate::models::pggan::Level> {
        let growth = self.growth.as_ref()?;
        Some(match self.state.lod {
            Some(lod) => growth.level_of(lod),
            None => growth.level(self.state.images_seen),
        })
    }

    /// The growth level the next step trains at (`None` when the run does not grow).
    pub fn next_level(&self) -> Option<crate::models::pggan::Level> {
        Some(self.growth.as_ref()?.level(self.state.images_seen))
    }

    fn latents(&mut self, batch: usize) -> Tensor<2> {
        let z = self.cfg.model.z_dim().expect("adversarial family");
        Tensor::from_data(
            TensorData::new(self.state.rng.normal_vec(batch * z, 0.0, 1.0), [batch, z]),
            &self.device,
        )
    }

    /// Phases of iteration `step` (1-based), in order.
    pub fn phases(&self, step: u64) -> Vec<Phase> {
        let t = &self.cfg.train;
        let mut p = vec![Phase::DMain];
        if t.r1_gamma > 0.0 && t.r1_interval > 1 && step.is_multiple_of(t.r1_interval) {
            p.push(Phase::DReg);
        }
        if step.is_multiple_of(t.d_steps.max(1)) {
            p.push(Phase::GMain);
            if t.pl_weight > 0.0 && step.is_multiple_of(t.pl_interval) {
                p.push(Phase::GReg);
            }
        }
        p
    }

    /// One iteration on `real` (`[b, c, h, w]` in [-1, 1]) with labels `c`. A non-finite loss is
    /// an error and leaves the models as they were before the offending update.
    pub fn train_step(&mut self, real: Tensor<4>, c: Labels) -> Result<StepStats> {
        self.train_step_timed(real, c, None)
    }

    /// [`train_step`](Self::train_step), recording where the time goes when `phases` is given
    /// (the device is synchronised at each phase boundary, so only benchmarks ask for it).
    pub fn train_step_timed(
        &mut self,
        real: Tensor<4>,
        c: Labels,
        mut times: Option<&mut PhaseTimes>,
    ) -> Result<StepStats> {
        let step = self.state.step + 1;
        let mut real = real.to_device(&self.device);
        let b = real.dims()[0];
        if let Some(growth) = &self.growth {
            let lod = growth.lod(self.state.images_seen);
            if Growth::resets_optimizers(self.state.lod, lod) {
                // The paper starts each fade-in and each stable phase with fresh Adam moments.
                self.g_opt = adam(&self.cfg);
                self.d_opt = adam(&self.cfg);
            }
            self.state.lod = Some(lod);
            let level = growth.level_of(lod);
            self.set_level(level);
            real = crate::models::pggan::fade_reals(real, level);
        }
        let mut stats = StepStats::default();
        if let Some(t) = times.as_deref_mut() {
            t.mark("start", &self.device);
        }
        for phase in self.phases(step) {
            self.phase_timed(
                phase,
                real.clone(),
                c.clone(),
                &mut stats,
                times.as_deref_mut(),
            )?;
        }
        if let Augment::Ada(_) = self.augment {
            let t = &self.cfg.train;
            let adaptive = t.augment == AugmentKind::Ada;
            let ada = self.state.ada.get_or_insert(AdaState::starting_at(t.ada_p));
            if adaptive && step.is_multiple_of(t.ada_interval) {
                stats.ada_rt = ada.update(t.ada_target, b, t.ada_interval, t.ada_kimg);
            }
            stats.ada_p = Some(self.ada_p());
        }
        self.state.step = step;
        self.state.images_seen += b as u64;
        Ok(stats)
    }

    /// ADA's current probability: `train.ada_p` when fixed, else the heuristic's (from
    /// `train.ada_p`).
    fn ada_p(&self) -> f64 {
        let t = &self.cfg.train;
        let p = match (t.augment, self.state.ada) {
            (AugmentKind::Ada, Some(a)) => a.p,
            _ => t.ada_p,
        };
        p.min(1.0)
    }

    /// ADA transforms for a batch shaped like `x`, drawn at the current p.
    fn ada_transforms(&mut self, pipe: &Pipeline, x: &Tensor<4>) -> Transforms {
        let [b, c, h, w] = x.dims();
        let p = self.ada_p();
        pipe.sample(b, [c, h, w], p, &mut self.state.rng)
    }

    /// `x` as D sees it: through DiffAugment or ADA (fresh draws), or as it is.
    fn augmented(&mut self, x: Tensor<4>) -> Tensor<4> {
        match self.augment {
            Augment::None => x,
            Augment::Diff(policy) => diff_augment(x, policy, &mut self.state.rng),
            Augment::Ada(pipe) => {
                let t = self.ada_transforms(&pipe, &x);
                t.apply(x)
            }
        }
    }

    /// Run one phase of the current iteration, filling its numbers into `stats`.
    pub fn run_phase(
        &mut self,
        phase: Phase,
        real: Tensor<4>,
        c: Labels,
        stats: &mut StepStats,
    ) -> Result<()> {
        self.phase_timed(phase, real, c, stats, None)
    }

    /// [`run_phase`](Self::run_phase), marking forward, backward and optimizer time in `times`.
    fn phase_timed(
        &mut self,
        phase: Phase,
        real: Tensor<4>,
        c: Labels,
        stats: &mut StepStats,
        mut times: Option<&mut PhaseTimes>,
    ) -> Result<()> {
        let device = self.device.clone();
        let mut mark = |name: &'static str| {
            if let Some(t) = times.as_deref_mut() {
                t.mark(name, &device);
            }
        };
        let step = self.state.step + 1;
        match phase {
            Phase::DMain => {
                let t = &self.cfg.train;
                let r1_now = t.r1_gamma > 0.0 && t.r1_interval <= 1;
                let (d_real, d_fake, mut loss, gp) = self.d_main_loss(real.clone(), c.clone());
                let (d_real, d_fake) = (values(&d_real), values(&d_fake));
                if let Augment::Ada(_) = self.augment {
                    // r_t gathers the signs of D's logits on the augmented reals.
                    let start = AdaState::starting_at(self.cfg.train.ada_p);
                    self.state.ada.get_or_insert(start).observe(&d_real);
                }
                stats.d_real = mean_of(&d_real);
                stats.d_fake = mean_of(&d_fake);
                stats.d_acc = sign_accuracy(&d_real, &d_fake);
                stats.gp = gp;
                if let Some(gp) = gp {
                    check_finite("gp", gp, step)?;
                }
                stats.d_loss = scalar(&loss);
                if r1_now {
                    let (reg, r1) = self.r1(real, c, self.cfg.train.r1_gamma);
                    stats.r1 = Some(r1);
                    check_finite("r1", r1, step)?;
                    loss = loss + reg;
                }
                check_finite("d_loss", stats.d_loss, step)?;
                mark("d_forward");
                let grads = GradientsParams::from_grads(loss.backward(), &self.d);
                mark("d_backward");
                self.d = self.d_opt.step(self.cfg.train.d_lr, self.d.clone(), grads);
                mark("d_adam");
            }
            Phase::DReg => {
                let t = &self.cfg.train;
                let gamma = t.r1_gamma * t.r1_interval as f64;
                let (reg, r1) = self.r1(real, c, gamma);
                stats.r1 = Some(r1);
                check_finite("r1", r1, step)?;
                mark("r1_forward");
                let grads = GradientsParams::from_grads(reg.backward(), &self.d);
                mark("r1_backward");
                self.d = self.d_opt.step(self.cfg.train.d_lr, self.d.clone(), grads);
                mark("d_adam");
            }
            Phase::GMain => {
                let b = real.dims()[0];
                let z = self.latents(b);
                let mixing = self.cfg.train.style_mixing;
                let (fake, w_mean) =
                    self.g
                        .forward_train(z, c.clone(), mixing, &mut self.state.rng);
                let fake = self.augmented(fake);
                // D's parameters are untracked here: the G step needs gradients through D, not
                // D's own (their backward pass was half of D's work in this step).
                let d = self.d.clone().no_grad();
                let mut loss = self.g_loss(d.forward(fake, c));
                stats.g_loss = scalar(&loss);
                if let Some(penalty) = self.g.penalty(self.cfg.train.ortho_beta) {
                    loss = loss + penalty;
                }
                check_finite("g_loss", stats.g_loss, step)?;
                mark("g_forward");
                let grads = GradientsParams::from_grads(loss.backward(), &self.g);
                mark("g_backward");
                self.g = self.g_opt.step(self.cfg.train.g_lr, self.g.clone(), grads);
                if let Some(m) = w_mean {
                    self.g = self.g.clone().track_w_avg(m, &self.cfg.model);
                }
                if let Some(avg) = self.g_ema.take() {
                    let g_step = step / self.cfg.train.d_steps.max(1);
                    let beta = ema::decay_at(self.cfg.train.ema_decay, g_step);
                    // Running states (batch-norm statistics, spectral-norm vectors) are averaged
                    // with the weights, as BigGAN-PyTorch's `ema` averages its state dict.
                    // The average keeps the level `set_level` gave it this step.
                    // `valid()` folds this step's pending running-state updates into G first,
                    // so the average reads G's current statistics, not those of a pass ago.
                    let avg = ema::update(avg, &self.g.valid(), beta);
                    self.g_ema = Some(self.g.copy_buffers_into(avg));
                }
                mark("g_adam");
            }
            Phase::GReg => {
                let (reg, pl) = self.path_length(real.dims()[0], c)?;
                stats.pl = Some(pl);
                check_finite("pl", pl, step)?;
                mark("pl_forward");
                let grads = GradientsParams::from_grads(reg.backward(), &self.g);
                mark("pl_backward");
                self.g = self.g_opt.step(self.cfg.train.g_lr, self.g.clone(), grads);
                mark("g_adam");
            }
        }
        Ok(())
    }

    /// StyleGAN2's path length regularization on `batch / pl_batch_shrink` fresh latents (with
    /// style mixing, as NVlabs' `run_G`), weighted by `pl_weight * pl_interval`; and the mean
    /// path length.
    fn path_length(&mut self, batch: usize, c: Labels) -> Result<(Tensor<1>, f64)> {
        let t = &self.cfg.train;
        let (weight, decay, mixing) = (
            t.pl_weight * t.pl_interval as f64,
            t.pl_decay,
            t.style_mixing,
        );
        let b = (batch / t.pl_batch_shrink).max(1);
        let (channels, res) = self.cfg.model.image_shape().expect("an image family");
        let img_dims = [b, channels, res, res];
        let z = self.latents(b);
        let Generator::Style2(g) = &self.g else {
            unreachable!("the config check allows pl_weight for StyleGAN2 only")
        };
        let classes = g.one_hot(c.map(|l| l.narrow(0, 0, b)))?;
        let (ws, _) = g.train_ws(z, classes, mixing, &mut self.state.rng);
        let k = ws.len();
        let ws = Tensor::stack::<3>(ws, 1); // [b, k, w_dim]
        let noise = g.random_noise(b, &mut self.state.rng);
        let n = img_dims.iter().product::<usize>();
        let y = Tensor::<4>::from_data(
            TensorData::new(self.state.rng.normal_vec(n, 0.0, 1.0), img_dims),
            &self.device,
        ) / img_dims[2] as f64; // N(0, 1) / sqrt(h w)
        let g_const = g.clone().no_grad();
        let f = |g: &crate::models::stylegan2::Generator, ws: Tensor<3>| {
            let [_, _, wd] = ws.dims();
            let list: Vec<Tensor<2>> = (0..k)
                .map(|i| ws.clone().narrow(1, i, 1).reshape([b, wd]))
                .collect();
            let img = g.synthesis(&list, crate::models::stylegan::Noise::Fixed(noise.clone()));
            (img * y.clone())
                .reshape([b as i32, -1])
                .sum_dim(1)
                .reshape([b])
        };
        let mut pl_mean = self.state.pl_mean.unwrap_or(0.0);
        let (loss, length, _) = regularizers::path_length_surrogate(
            |w| f(g, w),
            |w| f(&g_const, w),
            ws,
            &mut pl_mean,
            decay,
            weight,
        );
        self.state.pl_mean = Some(pl_mean);
        Ok((loss, length))
    }

    /// D's main loss: returns (mean real logit, mean fake logit, loss, WGAN-GP penalty). Fakes
    /// are detached so only D receives gradients; with DiffAugment D sees augmented copies, and
    /// bCR compares its logits on them with those on the plain images. WGAN-GP's penalty is on
    /// plain images (no family combines it with DiffAugment).
    /// D's logits on the reals and fakes (`[b]` each, as D saw them), the loss and the logged
    /// gradient penalty.
    fn d_main_loss(
        &mut self,
        real: Tensor<4>,
        c: Labels,
    ) -> (Tensor<1>, Tensor<1>, Tensor<1>, Option<f64>) {
        let b = real.dims()[0];
        let z = self.latents(b);
        let mixing = self.cfg.train.style_mixing;
        let fake = if self.cfg.model.has_batchnorm() {
            // G's training-mode BatchNorm belongs to the D step, as in the DCGAN article.
            self.g
                .forward_train(z, c.clone(), mixing, &mut self.state.rng)
                .0
                .detach()
        } else {
            // Without BatchNorm the fakes can come from G without autodiff bookkeeping.
            let g = self.g.valid();
            let plain = g.device();
            let (img, _) =
                g.forward_train(z.to_device(&plain), c.clone(), mixing, &mut self.state.rng);
            img.to_device(&self.device)
        }; // [b, c, h, w]
        let t = &self.cfg.train;
        let (bcr_real, bcr_fake) = (t.bcr_real, t.bcr_fake);
        let wgan_gp = t.loss == LossKind::WganGp && t.gp_lambda > 0.0;
        let weight = self.cfg.model.d_adversarial_weight();
        let mut gp = None;
        if let Augment::None = self.augment {
            let d_real = self.d.forward(real.clone(), c.clone()); // [b]
            let d_fake = self.d.forward(fake.clone(), c.clone()); // [b]
            let mut loss = self.d_loss(d_real.clone(), d_fake.clone()) * weight;
            if wgan_gp {
                let (penalty, value) = self.gradient_penalty(real, fake, c);
                gp = Some(value);
                loss = loss + penalty;
            }
            return (d_real, d_fake, loss, gp);
        }
        let real_aug = self.augmented(real.clone());
        let fake_aug = self.augmented(fake.clone());
        // Reals and fakes go through D as separate batches, as without augmentation: a D with
        // minibatch standard deviation must not see them in one batch, or its groups mix the
        // two and hide a collapsed G. The plain copies only feed bCR.
        let ra = self.d.forward(real_aug, c.clone()); // [b]
        let fa = self.d.forward(fake_aug, c.clone()); // [b]
        let mut loss = self.d_loss(ra.clone(), fa.clone()) * weight;
        let diff = matches!(self.augment, Augment::Diff(_));
        if diff && (bcr_real > 0.0 || bcr_fake > 0.0) {
            loss = loss
                + losses::bcr(ra.clone(), self.d.forward(real, c.clone())) * bcr_real
                + losses::bcr(fa.clone(), self.d.forward(fake, c)) * bcr_fake;
        }
        (ra, fa, loss, gp)
    }

    /// The R1 surrogate on `real` with weight `gamma`, and the logged R1 value (on the plain
    /// images with DiffAugment: the penalty is on the data).
    fn r1(&mut self, real: Tensor<4>, c: Labels, gamma: f64) -> (Tensor<1>, f64) {
        // With ADA the penalty is on D's augmented view of the reals, as NVlabs' `loss.py`
        // takes it: one draw, the same at every point the surrogate evaluates.
        let aug = match self.augment {
            Augment::Ada(pipe) => Some(self.ada_transforms(&pipe, &real)),
            _ => None,
        };
        let b = real.dims()[0].max(1);
        let view = |x: Tensor<4>| match &aug {
            Some(t) => t.repeated(x.dims()[0] / b).apply(x),
            None => x,
        };
        let (d, d_const) = (&self.d, self.d.clone().no_grad());
        let labels = |x: &Tensor<4>| {
            let n = x.dims()[0] / b;
            c.clone().map(|l| Tensor::cat(vec![l; n.max(1)], 0))
        };
        regularizers::r1_surrogate(
            |x| d.forward(view(x.clone()), labels(&x)),
            |x| d_const.forward(view(x.clone()), labels(&x)),
            real.clone(),
            gamma,
        )
    }

    /// WGAN-GP's penalty at `lerp(real, fake, u)`, `u ~ U(0, 1)` per sample, weighted by
    /// `train.gp_lambda`; and the logged penalty.
    fn gradient_penalty(
        &mut self,
        real: Tensor<4>,
        fake: Tensor<4>,
        c: Labels,
    ) -> (Tensor<1>, f64) {
        let b = real.dims()[0];
        let u: Vec<f32> = (0..b).map(|_| self.state.rng.uniform() as f32).collect();
        let u = Tensor::<4>::from_data(TensorData::new(u, [b, 1, 1, 1]), &self.device);
        let x_hat = real.clone() + (fake - real) * u; // [b, c, h, w]
        let (d, d_const) = (&self.d, self.d.clone().no_grad());
        regularizers::gradient_penalty_surrogate(
            |x| d.forward(x, c.clone()),
            |x| d_const.forward(x, c.clone()),
            x_hat,
            self.cfg.train.gp_lambda,
        )
    }

    fn d_loss(&self, real: Tensor<1>, fake: Tensor<1>) -> Tensor<1> {
        match self.cfg.train.loss {
            LossKind::Bce => losses::d_bce_loss(real, fake),
            LossKind::Hinge => losses::d_hinge_loss(real, fake),
            LossKind::WganGp => losses::d_wgan_loss(real, fake, self.cfg.train.wgan_drift),
        }
    }

    fn g_loss(&self, fake: Tensor<1>) -> Tensor<1> {
        match self.cfg.train.loss {
            LossKind::Bce => losses::g_nonsaturating_loss(fake),
            LossKind::Hinge | LossKind::WganGp => losses::g_hinge_loss(fake),
        }
    }

    /// The generator used for samples: the weight average when the run keeps one, else G with
    /// BatchNorm running statistics and spectral norm without update.
    pub fn sampling_generator(&self) -> Generator {
        match &self.g_ema {
            Some(avg) => avg.clone(),
            None => self.g.valid(),
        }
    }

    /// Images from [`sampling_generator`](Self::sampling_generator).
    pub fn generate(&self, z: Tensor<2>, c: Labels) -> Tensor<4> {
        let g = self.sampling_generator();
        let device = g.device();
        g.forward(z.to_device(&device), c.map(|l| l.to_device(&device)))
    }

    /// Write every file of a checkpoint into `dir` (which must exist). Atomicity is the caller's:
    /// see [`crate::run::checkpoint`].
    pub fn save(&self, dir: &std::path::Path) -> Result<()> {
        // `valid()` folds pending running-state updates (BatchNorm statistics, spectral-norm `u`)
        // into the snapshot; a plain record would save them one update stale.
        save_module(self.g.valid(), &dir.join(files::GENERATOR))?;
        save_module(self.d.valid(), &dir.join(files::DISCRIMINATOR))?;
        save_optim(&self.g_opt, &dir.join(files::G_OPTIM))?;
        save_optim(&self.d_opt, &dir.join(files::D_OPTIM))?;
        if let Some(avg) = &self.g_ema {
            save_module(avg.clone(), &dir.join(files::GENERATOR_EMA))?;
        }
        save_state(&self.state, dir)
    }

    /// Rebuild a trainer from a checkpoint directory written by [`save`](Self::save).
    pub fn load(cfg: TrainConfig, dir: &std::path::Path, device: &Device) -> Result<Self> {
        require_files(dir, &FILES)?;
        let mut t = GanTrainer::new(cfg, device);
        t.g = load_module(t.g, &dir.join(files::GENERATOR))?;
        t.d = load_module(t.d, &dir.join(files::DISCRIMINATOR))?;
        if let Some(avg) = t.g_ema.take() {
            require_files(dir, &[files::GENERATOR_EMA])?;
            t.g_ema = Some(load_module(avg, &dir.join(files::GENERATOR_EMA))?);
        }
        t.g_opt = load_optim(adam(&t.cfg), &dir.join(files::G_OPTIM))?;
        t.d_opt = load_optim(adam(&t.cfg), &dir.join(files::D_OPTIM))?;
        t.state = load_state(dir)?;
        Ok(t)
    }
}

fn scalar(t: &Tensor<1>) -> f64 {
    t.clone().into_scalar::<f32>() as f64
}

fn values(t: &Tensor<1>) -> Vec<f32> {
    t.clone()
        .into_data()
        .convert::<f32>()
        .try_to_vec()
        .expect("f32 logits")
}

fn mean_of(v: &[f32]) -> f64 {
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64
}

/// The fraction of `real` logits above 0 and `fake` logits below 0, over both.
pub fn sign_accuracy(real: &[f32], fake: &[f32]) -> f64 {
    let right =
        real.iter().filter(|&&x| x > 0.0).count() + fake.iter().filter(|&&x| x < 0.0).count();
    right as f64 / (real.len() + fake.len()).max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::sign_accuracy;

    #[test]
    fn sign_accuracy_counts_reals_above_and_fakes_below_zero() {
        // Reals: 2 of 3 right; fakes: 1 of 1 right (0 is wrong on either side).
        assert_eq!(sign_accuracy(&[1.0, 0.0, 2.0], &[-0.5]), 0.75);
        assert_eq!(sign_accuracy(&[-1.0], &[0.0]), 0.0);
    }
}
