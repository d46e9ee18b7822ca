//! Stage 2 of VQ-VAE-2: the top and bottom Gated PixelCNN priors, trained together on the code
//! maps `genforge encode` wrote, each with its own Adam and cross-entropy loss. The top prior
//! models the top codes (optionally given the class); the bottom prior models the bottom codes
//! given the top codes (and the class).

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Int, Tensor};

use super::optim::{adam, check_finite};
use super::stage::Stage;
use crate::config::TrainConfig;
use crate::data::codes::CodeMaps;
use crate::models::ModelConfig;
use crate::models::pixelcnn::{GatedPixelCnn, cross_entropy};
use crate::rng::Rng;
use crate::run::TrainerState;
use crate::run::checkpoint::{
    files, load_module, load_optim, load_state, require_files, save_module, save_optim, save_state,
};
use crate::{Error, Result, sample};

const FILES: [&str; 5] = [
    files::PRIOR_TOP,
    files::PRIOR_BOTTOM,
    files::OPTIM_TOP,
    files::OPTIM_BOTTOM,
    files::STATE,
];

/// Class labels of a batch when the priors are class-conditional.
fn labels_if(cfg: &TrainConfig, labels: Tensor<1, Int>) -> Option<Tensor<1, Int>> {
    pixelcnn_cfg(cfg).class_conditional.then_some(labels)
}

fn pixelcnn_cfg(cfg: &TrainConfig) -> &crate::models::pixelcnn::PixelcnnConfig {
    cfg.model.as_pixelcnn().expect("a pixelcnn config")
}

pub struct PriorTrainer {
    pub cfg: TrainConfig,
    pub top: GatedPixelCnn,
    pub bottom: GatedPixelCnn,
    top_opt: ModuleOptimizer,
    bottom_opt: ModuleOptimizer,
    pub state: TrainerState,
    device: Device,
    codes: CodeMaps,
    /// Maps `0..n_train` are trained on, the rest are held out.
    n_train: usize,
    codes_path: PathBuf,
}

/// Cross-entropy of both priors on a batch: (top, bottom) in nats per code, `[1]` each.
pub fn prior_losses(
    cfg: &TrainConfig,
    top: &GatedPixelCnn,
    bottom: &GatedPixelCnn,
    codes: (Tensor<3, Int>, Tensor<3, Int>, Tensor<1, Int>),
) -> (Tensor<1>, Tensor<1>) {
    let (t, b, labels) = codes;
    let [_, ht, wt] = t.dims();
    let [_, hb, wb] = b.dims();
    let cond_t = top.condition(None, labels_if(cfg, labels.clone()), [ht, wt]);
    let top_loss = cross_entropy(top.forward(t.clone(), cond_t.as_ref()), t.clone());
    let cond_b = bottom.condition(Some(t), labels_if(cfg, labels), [hb, wb]);
    let bottom_loss = cross_entropy(bottom.forward(b.clone(), cond_b.as_ref()), b);
    (top_loss, bottom_loss)
}

impl PriorTrainer {
    pub fn build(mut cfg: TrainConfig, resume: Option<&Path>, device: &Device) -> Result<Self> {
        let codes_path = cfg.resolve_data_path();
        let codes = CodeMaps::read(&codes_path)?;
        let m = &codes.manifest;
        let factor = m.bottom[0] / m.top[0].max(1);
        if m.top[0] * factor != m.bottom[0]
            || m.top[1] * factor != m.bottom[1]
            || !factor.is_power_of_two()
        {
            return Err(Error::data(
                &codes_path,
                format!(
                    "top maps {:?} and bottom maps {:?} differ by no power-of-two factor",
                    m.top, m.bottom
                ),
            ));
        }
        let pc = pixelcnn_cfg(&cfg).clone();
        if pc.class_conditional && !m.labels {
            return Err(Error::data(
                &codes_path,
                "has no labels, so model.class_conditional must be false",
            ));
        }
        if pc.class_conditional
            && let Some(&max) = codes.labels.iter().max()
            && max as usize >= pc.num_classes
        {
            return Err(Error::Config(format!(
                "the code maps have labels up to {max}, but model.num_classes is {}; set \
                 model.num_classes={}",
                pc.num_classes,
                max + 1
            )));
        }
        // The sizes come from the code maps; the run's config records them.
        if let ModelConfig::Pixelcnn(p) = &mut cfg.model {
            p.codebook_size = m.codebook_size;
            p.top_stride = factor;
        }
        let held = (codes.len() as f64 * cfg.train.holdout).round() as usize;
        let n_train = codes.len() - held;
        let device = device.clone().autodiff();
        let (top, bottom) =
            pixelcnn_cfg(&cfg).init(&mut Rng::new(cfg.train.seed).fork(0x9c0d), &device);
        let mut t = PriorTrainer {
            top_opt: adam(&cfg),
            bottom_opt: adam(&cfg),
            state: TrainerState::new(cfg.train.seed, 0x9c0e),
            cfg,
            top,
            bottom,
            device,
            codes,
            n_train,
            codes_path,
        };
        if let Some(dir) = resume {
            require_files(dir, &FILES)?;
            t.top = load_module(t.top, &dir.join(FILES[0]))?;
            t.bottom = load_module(t.bottom, &dir.join(FILES[1]))?;
            t.top_opt = load_optim(adam(&t.cfg), &dir.join(FILES[2]))?;
            t.bottom_opt = load_optim(adam(&t.cfg), &dir.join(FILES[3]))?;
            t.state = load_state(dir)?;
        }
        Ok(t)
    }

    /// Held-out cross-entropy of both priors in nats per code (at most `limit` maps; 0: all).
    pub fn eval(&self, limit: usize) -> Option<(f64, f64)> {
        let held = self.codes.len() - self.n_train;
        if held == 0 {
            return None;
        }
        let n = if limit == 0 { held } else { limit.min(held) };
        let (top, bottom) = (self.top.valid(), self.bottom.valid());
        let device = self.top.embed.device().inner();
        let (mut st, mut sb) = (0.0, 0.0);
        let batch = self.cfg.train.batch.max(1);
        for start in (0..n).step_by(batch) {
            let idx: Vec<usize> = (start..(start + batch).min(n))
                .map(|i| self.n_train + i)
                .collect();
            let (lt, lb) = prior_losses(&self.cfg, &top, &bottom, self.codes.batch(&idx, &device));
            st += lt.into_scalar::<f32>() as f64 * idx.len() as f64;
            sb += lb.into_scalar::<f32>() as f64 * idx.len() as f64;
        }
        Some((st / n as f64, sb / n as f64))
    }
}

/// Which prior.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Top,
    Bottom,
}

impl PriorTrainer {
    /// One optimizer step of one prior on the code maps `batch`; returns its loss in nats.
    /// (Does not advance the step counter: a training step is both levels.)
    pub fn train_level(&mut self, level: Level, batch: &[usize]) -> Result<f64> {
        let step = self.state.step + 1;
        let lr = self.cfg.train.lr;
        let (t, b, labels) = self.codes.batch(batch, &self.device);
        let labels = labels_if(&self.cfg, labels);
        let loss = match level {
            Level::Top => {
                let [_, h, w] = t.dims();
                let cond = self.top.condition(None, labels, [h, w]);
                cross_entropy(self.top.forward(t.clone(), cond.as_ref()), t)
            }
            Level::Bottom => {
                let [_, h, w] = b.dims();
                let cond = self.bottom.condition(Some(t), labels, [h, w]);
                cross_entropy(self.bottom.forward(b.clone(), cond.as_ref()), b)
            }
        };
        let v = loss.clone().into_scalar::<f32>() as f64;
        check_finite(&format!("{level:?} prior loss").to_lowercase(), v, step)?;
        match level {
            Level::Top => {
                let grads = GradientsParams::from_grads(loss.backward(), &self.top);
                self.top = self.top_opt.step(lr, self.top.clone(), grads);
            }
            Level::Bottom => {
                let grads = GradientsParams::from_grads(loss.backward(), &self.bottom);
                self.bottom = self.bottom_opt.step(lr, self.bottom.clone(), grads);
            }
        }
        Ok(v)
    }

    pub fn device(&self) -> &Device {
        &self.device
    }
}

impl Stage for PriorTrainer {
    fn config(&self) -> &TrainConfig {
        &self.cfg
    }

    fn train_items(&self) -> usize {
        self.n_train
    }

    fn step(&mut self, batch: &[usize]) -> Result<Vec<(&'static str, f64)>> {
        let vt = self.train_level(Level::Top, batch)?;
        let vb = self.train_level(Level::Bottom, batch)?;
        self.state.step += 1;
        self.state.images_seen += batch.len() as u64;
        Ok(vec![
            ("top_nats", vt),
            ("bottom_nats", vb),
            ("top_bits", vt / std::f64::consts::LN_2),
            ("bottom_bits", vb / std::f64::consts::LN_2),
        ])
    }

    fn state(&self) -> &TrainerState {
        &self.state
    }

    fn save(&self, dir: &Path) -> Result<()> {
        save_module(self.top.valid(), &dir.join(FILES[0]))?;
        save_module(self.bottom.valid(), &dir.join(FILES[1]))?;
        save_optim(&self.top_opt, &dir.join(FILES[2]))?;
        save_optim(&self.bottom_opt, &dir.join(FILES[3]))?;
        save_state(&self.state, dir)
    }

    /// Held-out bits per code, and a grid from the full sampler through the VQ-VAE-2 the code
    /// maps came from (when that run is still where `encode` found it).
    fn snapshot(&mut self, run_dir: &Path, step: u64) -> Result<Vec<(&'static str, f64)>> {
        let vq_run = PathBuf::from(&self.codes.manifest.vqvae_run);
        if vq_run.join(crate::run::CONFIG_FILE).is_file() {
            let device = self.device.clone().inner();
            let (vq_cfg, vq, _) = sample::vq::load_vqvae(&vq_run, None, &device)?;
            let opts = sample::vq::SampleOptions {
                label_offset: 0,
                n: self.cfg.train.grid_size.clamp(1, 64),
                temperature: 1.0,
                seed: self.cfg.train.seed,
                label: None,
            };
            let (top, bottom) = (self.top.valid(), self.bottom.valid());
            let (images, _) = sample::vq::sample(&vq, &vq_cfg, &self.cfg, &top, &bottom, &opts)?;
            let path = run_dir.join("samples").join(format!("step-{step:07}.png"));
            sample::grid::save_png(&sample::grid::make_grid(images, None), &path)?;
        }
        let ln2 = std::f64::consts::LN_2;
        Ok(match self.eval(self.cfg.train.eval_limit) {
            Some((t, b)) => vec![
                ("heldout_top_nats", t),
                ("heldout_bottom_nats", b),
                ("heldout_top_bits", t / ln2),
                ("heldout_bottom_bits", b / ln2),
            ],
            None => Vec::new(),
        })
    }

    fn describe(&self) -> String {
        let m = &self.codes.manifest;
        format!(
            "{}: {} code maps ({} held out) of top {}x{} and bottom {}x{} over {} codes from {}",
            self.cfg.name,
            self.n_train,
            self.codes.len() - self.n_train,
            m.top[0],
            m.top[1],
            m.bottom[0],
            m.bottom[1],
            m.codebook_size,
            self.codes_path.display()
        )
    }
}
