//! Run configuration: presets are TOML files deserialized into [`TrainConfig`]; `--set key=value`
//! overrides any key. Unknown keys are errors that list the valid ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::data::DataConfig;
pub use crate::models::LossKind;
use crate::models::{Kind, ModelConfig};
use crate::{Error, Result};

/// Everything a run needs; saved resolved as `config.toml` in the run directory.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Preset name; names the run directory.
    pub name: String,
    pub description: String,
    pub model: ModelConfig,
    pub data: DataConfig,
    pub train: TrainingConfig,
    pub sample: SampleConfig,
}

/// `[sample]`: how `genforge sample` and `genforge eval` draw from the finished run when the
/// command line does not say. Training's grids and metrics always draw untruncated, as NVlabs'
/// training metrics do, so curves compare across presets and with the PyTorch references.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SampleConfig {
    /// StyleGAN: truncation psi, `w_avg + psi (w - w_avg)` (1: none).
    pub psi: f64,
    /// PixelCNN prior: softmax temperature of its samples (1: the model's distribution).
    pub temperature: f64,
    /// BigGAN: batch norm by standing statistics averaged over this many passes of a training
    /// batch (BigGAN-PyTorch's `--use_standing_stats`, 16 passes there); 0: the stored running
    /// statistics.
    pub standing_stats: usize,
    /// The variance of the latents drawn at sampling, N(0, z_var I) (BigGAN-PyTorch's `--z_var`):
    /// above 1 trades precision for recall, below 1 recall for precision (the truncation trick
    /// of generators without one; BigGAN's untruncated latents, DCGAN, SAGAN, ViTGAN with
    /// latent tokens).
    pub z_var: f64,
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig {
            psi: 1.0,
            temperature: 1.0,
            standing_stats: 0,
            z_var: 1.0,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrainingConfig {
    /// Total number of iterations (one D step and one G step each).
    pub steps: u64,
    pub batch: usize,
    pub loss: LossKind,
    pub g_lr: f64,
    pub d_lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub adam_eps: f64,
    /// Seeds weight init, batch order and latents.
    pub seed: u64,
    /// Steps between `stats.jsonl` lines.
    pub log_every: u64,
    /// Steps between fixed-latent sample grids (0: only at the end).
    pub sample_every: u64,
    /// Steps between checkpoints (0: only at the end).
    pub checkpoint_every: u64,
    /// How many checkpoints to keep.
    pub keep_checkpoints: usize,
    /// Images in each sample grid.
    pub grid_size: usize,
    /// bCR weight on real images, when DiffAugment is on (ViTGAN: 10).
    pub bcr_real: f64,
    /// bCR weight on generated images, when DiffAugment is on (ViTGAN: 10).
    pub bcr_fake: f64,
    /// Decay of the generator's weight average used for samples (ViTGAN: 0.995; 0 = off).
    pub ema_decay: f64,
    /// R1 weight gamma (StyleGAN: 10 at 1024x1024; 0 = off).
    pub r1_gamma: f64,
    /// Run R1 every this many steps, weighted by the interval (lazy regularization; 1 = every
    /// step, in the same D update as the adversarial loss).
    pub r1_interval: u64,
    /// StyleGAN: probability of style mixing regularization in each batch (the paper's 0.9).
    pub style_mixing: f64,
    /// StyleGAN2: weight of path length regularization (NVlabs' `pl_weight`, 2; 0 = off).
    pub pl_weight: f64,
    /// StyleGAN2: run it every this many steps, weighted by the interval (lazy, 4).
    pub pl_interval: u64,
    /// StyleGAN2: its batch is `batch / pl_batch_shrink` (2).
    pub pl_batch_shrink: usize,
    /// StyleGAN2: decay of the running mean path length `a` (0.01).
    pub pl_decay: f64,
    /// Adam learning rate of single-network families (VQ-VAE-2, PixelCNN).
    pub lr: f64,
    /// Fraction of the data held out (the last images or code maps) for held-out metrics.
    pub holdout: f64,
    /// Held-out images or code maps evaluated at each sample step (0: all).
    pub eval_limit: usize,
    /// GANs: steps between FID/KID evaluations logged to `stats.jsonl`, keeping the checkpoint
    /// with the lowest FID as `checkpoints/best` (0: off).
    pub eval_every: u64,
    /// Generated (and real) images per evaluation during training.
    pub eval_n: usize,
    /// Discriminator steps per generator step (BigGAN: 2 at ImageNet, 4 in BigGAN-PyTorch's
    /// CIFAR script). Each D step takes its own batch; G steps on every `d_steps`-th.
    pub d_steps: u64,
    /// Weight beta of BigGAN's orthogonal regularization on G (the paper: 1e-4; 0 = off).
    pub ortho_beta: f64,
    /// Feature network of evaluations during training (see `genforge eval --features`).
    pub eval_features: String,
    /// WGAN-GP: weight lambda of the gradient penalty `(||grad D(x_hat)|| - 1)^2` (10).
    pub gp_lambda: f64,
    /// WGAN-GP: weight of Progressive GAN's drift term `D(x)^2` on reals (0.001).
    pub wgan_drift: f64,
    /// Progressive growing (Progressive GAN; StyleGAN): start at `start_resolution` and add a
    /// resolution at a time on the schedule below.
    pub progressive: bool,
    /// Resolution training starts at (4).
    pub start_resolution: usize,
    /// Thousands of images each resolution is trained for before the next fades in (600).
    pub stabilise_kimg: f64,
    /// Thousands of images a new resolution takes to fade in (600).
    pub transition_kimg: f64,
    /// Batch size per resolution while growing (`{ 4 = 128, 64 = 32 }`); others use
    /// `train.batch`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub batch_by_resolution: BTreeMap<String, usize>,
    /// What D's inputs (reals and fakes) go through: `diffaugment` (the family's
    /// `model.diffaugment` policy; none when it is empty), `ada` (StyleGAN2-ADA's pipeline at an
    /// adaptive probability p), `fixed` (the same pipeline at p = `train.ada_p`) or `none`.
    pub augment: AugmentKind,
    /// ADA: the transforms (`bgc`: blit, geometric, colour; or `bg`, `blit`, `geom`, `color`).
    pub ada_pipeline: String,
    /// ADA: the target of `r_t = E[sign(D(real))]` (0.6).
    pub ada_target: f64,
    /// ADA: thousands of images over which p can move from 0 to 1 (500).
    pub ada_kimg: f64,
    /// ADA: steps between updates of p (4).
    pub ada_interval: u64,
    /// ADA: the initial p, and the p of `augment = "fixed"` (NVlabs' `--p`; 0).
    pub ada_p: f64,
}

/// `train.augment`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum AugmentKind {
    /// The family's `model.diffaugment` policy (DiffAugment, Zhao et al. 2020).
    #[default]
    DiffAugment,
    /// Adaptive discriminator augmentation (Karras et al. 2020).
    Ada,
    /// ADA's pipeline at a fixed p.
    Fixed,
    None,
}

impl Default for TrainingConfig {
    fn default() -> Self {
        TrainingConfig {
            steps: 1000,
            batch: 64,
            loss: LossKind::Bce,
            g_lr: 2e-4,
            d_lr: 2e-4,
            beta1: 0.0,
            beta2: 0.9,
            adam_eps: 1e-8,
            seed: 0,
            log_every: 10,
            sample_every: 100,
            checkpoint_every: 250,
            keep_checkpoints: 3,
            grid_size: 64,
            bcr_real: 10.0,
            bcr_fake: 10.0,
            ema_decay: 0.0,
            r1_gamma: 0.0,
            r1_interval: 1,
            style_mixing: 0.9,
            pl_weight: 0.0,
            pl_interval: 4,
            pl_batch_shrink: 2,
            pl_decay: 0.01,
            lr: 3e-4,
            holdout: 0.0,
            eval_limit: 0,
            eval_every: 0,
            eval_n: 1000,
            eval_features: "auto".into(),
            d_steps: 1,
            ortho_beta: 0.0,
            gp_lambda: 10.0,
            wgan_drift: 0.001,
            progressive: false,
            start_resolution: 4,
            stabilise_kimg: 600.0,
            transition_kimg: 600.0,
            batch_by_resolution: BTreeMap::new(),
            augment: AugmentKind::DiffAugment,
            ada_pipeline: "bgc".into(),
            ada_target: 0.6,
            ada_kimg: 500.0,
            ada_interval: 4,
            ada_p: 0.0,
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            name: "custom".into(),
            description: String::new(),
            model: ModelConfig::default(),
            data: DataConfig::default(),
            train: TrainingConfig::default(),
            sample: SampleConfig::default(),
        }
    }
}

/// Edit distance (insertions, deletions, substitutions) between two strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = (diag + usize::from(ca != cb)).min(row[j] + 1).min(up + 1);
            diag = up;
        }
    }
    row[b.len()]
}

/// `"; did you mean 'x'?"` for the closest of `names` to `given` when it is a likely typo
/// (at most a third of the name's characters differ), else nothing.
pub(crate) fn did_you_mean(given: &str, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| (edit_distance(given, n), *n))
        .min()
        .filter(|(d, n)| *d > 0 && *d <= n.chars().count().max(3) / 3)
        .map(|(_, n)| format!("; did you mean '{n}'?"))
        .unwrap_or_default()
}

/// The one map-valued key (`train.batch_by_resolution`).
const BATCH_BY_RESOLUTION: &str = "train.batch_by_resolution";

/// Presets shipped in `configs/`, embedded so the binary works from any directory.
pub const PRESETS: &[(&str, &str)] = &[
    (
        "dcgan-mnist",
        include_str!("../../../configs/dcgan-mnist.toml"),
    ),
    (
        "sagan-mnist",
        include_str!("../../../configs/sagan-mnist.toml"),
    ),
    (
        "dcgan-tiny",
        include_str!("../../../configs/dcgan-tiny.toml"),
    ),
    (
        "sagan-tiny",
        include_str!("../../../configs/sagan-tiny.toml"),
    ),
    (
        "vitgan-mnist",
        include_str!("../../../configs/vitgan-mnist.toml"),
    ),
    (
        "vitgan-mnist-stylegan2d",
        include_str!("../../../configs/vitgan-mnist-stylegan2d.toml"),
    ),
    (
        "vitgan-cifar10",
        include_str!("../../../configs/vitgan-cifar10.toml"),
    ),
    (
        "vitgan-tiny",
        include_str!("../../../configs/vitgan-tiny.toml"),
    ),
    (
        "vqvae2-mnist",
        include_str!("../../../configs/vqvae2-mnist.toml"),
    ),
    (
        "vqvae2-shapes",
        include_str!("../../../configs/vqvae2-shapes.toml"),
    ),
    (
        "vqvae2-tiny",
        include_str!("../../../configs/vqvae2-tiny.toml"),
    ),
    (
        "pixelcnn-mnist",
        include_str!("../../../configs/pixelcnn-mnist.toml"),
    ),
    (
        "pixelcnn-tiny",
        include_str!("../../../configs/pixelcnn-tiny.toml"),
    ),
    (
        "stylegan-mnist",
        include_str!("../../../configs/stylegan-mnist.toml"),
    ),
    (
        "stylegan-emoji",
        include_str!("../../../configs/stylegan-emoji.toml"),
    ),
    (
        "stylegan-ffhq",
        include_str!("../../../configs/stylegan-ffhq.toml"),
    ),
    (
        "stylegan-tiny",
        include_str!("../../../configs/stylegan-tiny.toml"),
    ),
    (
        "biggan-mnist",
        include_str!("../../../configs/biggan-mnist.toml"),
    ),
    (
        "biggan-emoji",
        include_str!("../../../configs/biggan-emoji.toml"),
    ),
    (
        "biggan-cifar10",
        include_str!("../../../configs/biggan-cifar10.toml"),
    ),
    (
        "biggan-imagenet128",
        include_str!("../../../configs/biggan-imagenet128.toml"),
    ),
    (
        "biggan-tfhub128",
        include_str!("../../../configs/biggan-tfhub128.toml"),
    ),
    (
        "biggan-tiny",
        include_str!("../../../configs/biggan-tiny.toml"),
    ),
    (
        "stylegan2-mnist",
        include_str!("../../../configs/stylegan2-mnist.toml"),
    ),
    (
        "stylegan2-ffhq1024",
        include_str!("../../../configs/stylegan2-ffhq1024.toml"),
    ),
    (
        "stylegan2-tiny",
        include_str!("../../../configs/stylegan2-tiny.toml"),
    ),
    (
        "pggan-mnist",
        include_str!("../../../configs/pggan-mnist.toml"),
    ),
    (
        "pggan-emoji",
        include_str!("../../../configs/pggan-emoji.toml"),
    ),
    (
        "pggan-celebahq",
        include_str!("../../../configs/pggan-celebahq.toml"),
    ),
    (
        "pggan-tiny",
        include_str!("../../../configs/pggan-tiny.toml"),
    ),
];

impl TrainConfig {
    /// The progressive-growing schedule of the run; `None` when it does not grow.
    pub fn growth(&self) -> Option<crate::models::growth::Growth> {
        let t = &self.train;
        let (_, resolution) = self.model.image_shape()?;
        t.progressive.then(|| {
            crate::models::growth::Growth::new(
                t.start_resolution,
                resolution,
                t.stabilise_kimg,
                t.transition_kimg,
            )
        })
    }

    /// A preset name (see [`PRESETS`]) or a path to a TOML file, with `key=value` overrides.
    pub fn load(preset_or_file: &str, overrides: &[String]) -> Result<Self> {
        let (text, origin) = match PRESETS.iter().find(|(n, _)| *n == preset_or_file) {
            Some((_, text)) => (text.to_string(), format!("preset {preset_or_file}")),
            None => {
                let path = Path::new(preset_or_file);
                if !path.exists() {
                    let names: Vec<_> = PRESETS.iter().map(|(n, _)| *n).collect();
                    return Err(Error::Config(format!(
                        "'{preset_or_file}' is neither a preset nor an existing TOML file{}. \
                         Presets: {}",
                        did_you_mean(preset_or_file, &names),
                        names.join(", ")
                    )));
                }
                let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
                (text, path.display().to_string())
            }
        };
        let mut cfg = Self::from_toml(&text, &origin)?;
        if cfg.name == "custom"
            && !PRESETS.iter().any(|(n, _)| *n == preset_or_file)
            && let Some(stem) = Path::new(preset_or_file).file_stem()
        {
            cfg.name = stem.to_string_lossy().into_owned();
        }
        cfg.apply_overrides(overrides)?;
        Ok(cfg)
    }

    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let cfg: TrainConfig =
            toml::from_str(text).map_err(|e| Error::Config(format!("{origin}: {e}")))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn load_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_toml(&text, &path.display().to_string())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serializes")
    }

    /// Every settable key with its current value, flattened as `section.key`.
    pub fn flat_keys(&self) -> BTreeMap<String, toml::Value> {
        let value = toml::Value::try_from(self).expect("config serializes");
        let mut out = BTreeMap::new();
        flatten("", &value, &mut out);
        out
    }

    /// Apply `key=value` overrides; the value is parsed as TOML (`0.5`, `[7, 8]`, `true`) or
    /// taken as a string.
    pub fn apply_overrides(&mut self, overrides: &[String]) -> Result<()> {
        if overrides.is_empty() {
            return Ok(());
        }
        let valid = self.flat_keys();
        let mut root = toml::Value::try_from(&*self).expect("config serializes");
        for item in overrides {
            let (key, raw) = item.split_once('=').ok_or_else(|| {
                Error::Config(format!(
                    "--set '{item}': expected key=value, e.g. train.steps=500"
                ))
            })?;
            let key = key.trim();
            // A map key is settable whole or per entry, also while it is empty.
            let map_key = key == BATCH_BY_RESOLUTION
                || key
                    .strip_prefix(BATCH_BY_RESOLUTION)
                    .is_some_and(|r| r.starts_with('.'));
            if !valid.contains_key(key) && !map_key {
                let keys: Vec<_> = valid.keys().map(String::as_str).collect();
                return Err(Error::Config(format!(
                    "unknown key '{key}'{}. Valid keys: {}",
                    did_you_mean(key, &keys),
                    keys.join(", ")
                )));
            }
            let mut value = parse_value(raw.trim());
            if let Some(current) = valid.get(key) {
                if current.is_str() && !value.is_str() {
                    // `data.path=2024` is a path, not a number; a quoted string stays unquoted.
                    value = toml::Value::String(raw.trim().to_string());
                }
                check_type(key, raw.trim(), current, &value)?;
            }
            let mut node = &mut root;
            let parts: Vec<&str> = key.split('.').collect();
            for p in &parts[..parts.len() - 1] {
                node = node
                    .as_table_mut()
                    .expect("parent is a table")
                    .entry(*p)
                    .or_insert_with(|| toml::Value::Table(Default::default()));
            }
            node.as_table_mut()
                .expect("parent is a table")
                .insert(parts[parts.len() - 1].to_string(), value);
        }
        let cfg: TrainConfig = root
            .try_into()
            .map_err(|e| Error::Config(format!("--set: {}", e.to_string().replace('\n', " "))))?;
        cfg.validate()?;
        *self = cfg;
        Ok(())
    }

    /// Checks that would otherwise surface as a panic deep inside a model.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        let t = &self.train;
        if t.batch == 0 {
            return Err(Error::Config("train.batch must be at least 1".into()));
        }
        for (k, v) in [
            ("train.g_lr", t.g_lr),
            ("train.d_lr", t.d_lr),
            ("train.lr", t.lr),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return Err(Error::Config(format!(
                    "{k} must be a positive number, got {v}"
                )));
            }
        }
        for (k, v) in [("train.beta1", t.beta1), ("train.beta2", t.beta2)] {
            if !(0.0..1.0).contains(&v) {
                return Err(Error::Config(format!("{k} must be in [0, 1), got {v}")));
            }
        }
        if !(0.0..1.0).contains(&t.ema_decay) {
            return Err(Error::Config(format!(
                "train.ema_decay must be in [0, 1), got {}",
                t.ema_decay
            )));
        }
        if t.d_steps == 0 {
            return Err(Error::Config("train.d_steps must be at least 1".into()));
        }
        self.validate_augment()?;
        if t.ortho_beta != 0.0 && self.model.as_biggan().is_none() {
            return Err(Error::Config(format!(
                "train.ortho_beta is BigGAN's orthogonal regularization; model.family = \"{}\" does not use it; set it to 0",
                self.model.family()
            )));
        }
        if !(t.ortho_beta >= 0.0 && t.ortho_beta.is_finite()) {
            return Err(Error::Config(format!(
                "train.ortho_beta must be a non-negative number, got {}",
                t.ortho_beta
            )));
        }
        if t.eval_every > 0 && t.eval_n < 10 {
            return Err(Error::Config(format!(
                "train.eval_n must be at least 10 when train.eval_every is set, got {}",
                t.eval_n
            )));
        }
        if !(0.0..0.5).contains(&t.holdout) {
            return Err(Error::Config(format!(
                "train.holdout must be in [0, 0.5), got {}",
                t.holdout
            )));
        }
        let kind = self.model.kind();
        let codes = self.data.format == crate::data::DataFormat::Codes;
        if codes != (kind == Kind::Prior) {
            return Err(Error::Config(
                "data.format = \"codes\" (code maps from `genforge encode`) goes with \
                 model.family = \"pixelcnn\", and only with it"
                    .into(),
            ));
        }
        if t.ema_decay > 0.0 && (kind != Kind::Gan || !self.model.supports_ema()) {
            return Err(Error::Config(format!(
                "train.ema_decay is not supported for model.family = \"{}\" (DCGAN and SAGAN \
                 generators carry BatchNorm statistics an average of weights would not follow); \
                 set it to 0",
                self.model.family()
            )));
        }
        for (k, v) in [
            ("train.bcr_real", t.bcr_real),
            ("train.bcr_fake", t.bcr_fake),
            ("train.r1_gamma", t.r1_gamma),
            ("train.pl_weight", t.pl_weight),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(Error::Config(format!("{k} must be >= 0, got {v}")));
            }
        }
        if t.r1_interval == 0 {
            return Err(Error::Config("train.r1_interval must be at least 1".into()));
        }
        if t.pl_interval == 0 || t.pl_batch_shrink == 0 || !(0.0..=1.0).contains(&t.pl_decay) {
            return Err(Error::Config(
                "train.pl_interval and train.pl_batch_shrink must be at least 1 and \
                 train.pl_decay in [0, 1]"
                    .into(),
            ));
        }
        if t.pl_weight > 0.0 && self.model.as_stylegan2().is_none() {
            return Err(Error::Config(format!(
                "train.pl_weight: path length regularization is StyleGAN2's; this is a {} run",
                self.model.family()
            )));
        }
        if !(0.0..=1.0).contains(&t.style_mixing) {
            return Err(Error::Config(format!(
                "train.style_mixing must be a probability in [0, 1], got {}",
                t.style_mixing
            )));
        }
        self.model.check_loss(t.loss)?;
        self.validate_growth()?;
        for (k, v) in [
            ("train.gp_lambda", t.gp_lambda),
            ("train.wgan_drift", t.wgan_drift),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(Error::Config(format!("{k} must be >= 0, got {v}")));
            }
        }
        if t.log_every == 0 {
            return Err(Error::Config("train.log_every must be at least 1".into()));
        }
        if t.grid_size == 0 {
            return Err(Error::Config("train.grid_size must be at least 1".into()));
        }
        if t.keep_checkpoints == 0 {
            return Err(Error::Config(
                "train.keep_checkpoints must be at least 1".into(),
            ));
        }
        self.validate_sample()
    }

    fn validate_sample(&self) -> Result<()> {
        let s = &self.sample;
        let style = self.model.as_stylegan().is_some() || self.model.as_stylegan2().is_some();
        if s.psi != 1.0 {
            if !style {
                return Err(Error::Config(format!(
                    "sample.psi is StyleGAN's truncation; model.family = \"{}\" has none; set \
                     it to 1",
                    self.model.family()
                )));
            }
            crate::sample::stylegan::check_psi(s.psi).map_err(|e| match e {
                Error::Config(m) => Error::Config(format!("sample.{m}")),
                e => e,
            })?;
        }
        if s.temperature != 1.0 && self.model.as_pixelcnn().is_none() {
            return Err(Error::Config(format!(
                "sample.temperature is a PixelCNN prior's; model.family = \"{}\" has none; set \
                 it to 1",
                self.model.family()
            )));
        }
        if !(s.temperature > 0.0 && s.temperature.is_finite()) {
            return Err(Error::Config(format!(
                "sample.temperature must be a positive number, got {}",
                s.temperature
            )));
        }
        if !(s.z_var > 0.0 && s.z_var.is_finite()) {
            return Err(Error::Config(format!(
                "sample.z_var must be a positive number, got {}",
                s.z_var
            )));
        }
        if let Some(why) = self.model.z_var_unused().filter(|_| s.z_var != 1.0) {
            return Err(Error::Config(format!(
                "sample.z_var = {} has no effect on model.family = \"{}\": {why}; set it to 1",
                s.z_var,
                self.model.family()
            )));
        }
        if s.standing_stats > 0 && self.model.as_biggan().is_none() {
            return Err(Error::Config(format!(
                "sample.standing_stats is BigGAN's; model.family = \"{}\" has no class-conditional \
                 batch norm; set it to 0",
                self.model.family()
            )));
        }
        Ok(())
    }

    /// The progressive-growing keys, when `train.progressive` is on.
    fn validate_augment(&self) -> Result<()> {
        let t = &self.train;
        if !matches!(t.augment, AugmentKind::Ada | AugmentKind::Fixed) {
            return Ok(());
        }
        crate::nn::augment::Pipeline::named(&t.ada_pipeline)?;
        if !self.model.diffaugment().is_identity() {
            return Err(Error::Config(
                "train.augment = \"ada\" (or \"fixed\") replaces DiffAugment: set \
                 model.diffaugment = \"\""
                    .into(),
            ));
        }
        if !(0.0..=1.0).contains(&t.ada_target) {
            return Err(Error::Config(format!(
                "train.ada_target must be in [0, 1], got {}",
                t.ada_target
            )));
        }
        if t.ada_kimg.is_nan() || t.ada_kimg <= 0.0 || t.ada_interval == 0 {
            return Err(Error::Config(
                "train.ada_kimg and train.ada_interval must be positive".into(),
            ));
        }
        if !(0.0..=1.0).contains(&t.ada_p) {
            return Err(Error::Config(format!(
                "train.ada_p must be in [0, 1], got {}",
                t.ada_p
            )));
        }
        Ok(())
    }

    fn validate_growth(&self) -> Result<()> {
        let t = &self.train;
        if !t.progressive {
            return Ok(());
        }
        if !self.model.supports_growth() {
            return Err(Error::Config(format!(
                "train.progressive: model.family = \"{}\" does not grow; progressive growing is \
                 for pggan and stylegan",
                self.model.family()
            )));
        }
        let (_, res) = self
            .model
            .image_shape()
            .expect("a growing family makes images");
        let side_ok = |r: usize| r.is_power_of_two() && (4..=res).contains(&r);
        if !side_ok(t.start_resolution) {
            return Err(Error::Config(format!(
                "train.start_resolution must be a power of two from 4 to model.resolution ({res}), \
                 got {}",
                t.start_resolution
            )));
        }
        let phase = t.stabilise_kimg + t.transition_kimg;
        if !(t.stabilise_kimg >= 0.0
            && t.transition_kimg >= 0.0
            && phase > 0.0
            && phase.is_finite())
        {
            return Err(Error::Config(format!(
                "train.stabilise_kimg and train.transition_kimg must be >= 0 and not both 0, got {} \
                 and {}",
                t.stabilise_kimg, t.transition_kimg
            )));
        }
        for (k, b) in &t.batch_by_resolution {
            if !k.parse::<usize>().is_ok_and(side_ok) || *b == 0 {
                return Err(Error::Config(format!(
                    "train.batch_by_resolution: '{k} = {b}' must map a power-of-two resolution \
                     from 4 to {res} to a batch of at least 1"
                )));
            }
        }
        Ok(())
    }

    /// Batch size at resolution `r` (`train.batch_by_resolution`, else `train.batch`).
    pub fn batch_at(&self, r: usize) -> usize {
        self.train
            .batch_by_resolution
            .get(&r.to_string())
            .copied()
            .unwrap_or(self.train.batch)
    }

    /// Model keys whose values differ between two configs (resume refuses these).
    pub fn model_differences(&self, other: &TrainConfig) -> Vec<String> {
        let a = self.flat_keys();
        let b = other.flat_keys();
        a.iter()
            .filter(|(k, _)| k.starts_with("model."))
            .filter(|(k, v)| b.get(*k) != Some(v))
            .map(|(k, v)| {
                let old = b.get(k).map(|v| v.to_string()).unwrap_or_default();
                format!("{k} ({old} -> {v})")
            })
            .collect()
    }

    /// The data path resolved against the repository root for the shipped data, when relative
    /// paths do not exist from the working directory.
    pub fn resolve_data_path(&self) -> PathBuf {
        resolve_shipped(&self.data.path)
    }
}

/// A data path as given when it exists (relative paths from the working directory); the
/// datasets shipped in `data/` from the copy embedded in the binary otherwise.
pub fn resolve_shipped(path: &str) -> PathBuf {
    let p = PathBuf::from(path);
    if p.is_absolute() || p.exists() {
        return p;
    }
    match crate::data::shipped::embedded(path) {
        Some(Ok(copy)) => copy,
        Some(Err(e)) => {
            tracing::warn!("could not write the shipped copy of {path}: {e}");
            p
        }
        None => p,
    }
}

/// An override must have its key's type (an integer stands for a float), so the error names the
/// key rather than the config table serde failed in.
fn check_type(key: &str, raw: &str, current: &toml::Value, value: &toml::Value) -> Result<()> {
    use toml::Value as V;
    let fits = match (current, value) {
        (V::Float(_), V::Integer(_)) => true,
        (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
    };
    if fits {
        return Ok(());
    }
    let want = match current {
        V::Boolean(_) => "true or false",
        V::Integer(_) => "an integer",
        V::Float(_) => "a number",
        V::String(_) => "a string",
        V::Array(_) => "a list such as [1, 2]",
        V::Datetime(_) => "a date",
        V::Table(_) => "a table",
    };
    Err(Error::Config(format!(
        "--set {key}={raw}: expected {want} (it is {current} now)"
    )))
}

fn parse_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn flatten(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, toml::Value>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Typos get the nearest name; names far from every valid one get none.
    #[test]
    fn ada_settings_are_checked() {
        let err = |set: &[&str]| {
            let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
            TrainConfig::load("stylegan2-mnist", &set)
                .unwrap_err()
                .to_string()
        };
        assert!(err(&["train.augment=ada"]).contains("model.diffaugment"));
        let ada = ["train.augment=ada", "model.diffaugment="];
        assert!(TrainConfig::load("stylegan2-mnist", &ada.map(String::from)).is_ok());
        assert!(err(&[ada[0], ada[1], "train.ada_pipeline=bgcfnc"]).contains("bgc"));
        assert!(err(&[ada[0], ada[1], "train.ada_target=1.5"]).contains("ada_target"));
        assert!(err(&["train.augment=fixed", ada[1], "train.ada_p=2"]).contains("ada_p"));
    }

    #[test]
    fn sample_settings_belong_to_their_family() {
        let err = |preset: &str, set: &str| {
            TrainConfig::load(preset, &[set.to_string()])
                .unwrap_err()
                .to_string()
        };
        let ok = |preset: &str, set: &str| TrainConfig::load(preset, &[set.to_string()]).unwrap();
        assert_eq!(ok("stylegan-mnist", "sample.psi=0.7").sample.psi, 0.7);
        assert_eq!(
            ok("pixelcnn-mnist", "sample.temperature=0.9")
                .sample
                .temperature,
            0.9
        );
        assert!(err("dcgan-mnist", "sample.psi=0.7").contains("sample.psi"));
        assert_eq!(
            ok("biggan-mnist", "sample.standing_stats=4")
                .sample
                .standing_stats,
            4
        );
        assert!(err("dcgan-mnist", "sample.standing_stats=4").contains("standing_stats"));
        assert_eq!(ok("biggan-mnist", "sample.z_var=1.5").sample.z_var, 1.5);
        assert!(err("biggan-mnist", "sample.z_var=0").contains("positive"));
        assert!(err("stylegan-mnist", "sample.z_var=1.5").contains("sample.psi"));
        // z_var where G takes z as drawn; an error where G normalizes z away.
        assert_eq!(ok("dcgan-mnist", "sample.z_var=0.5").sample.z_var, 0.5);
        assert_eq!(ok("vitgan-mnist", "sample.z_var=0.5").sample.z_var, 0.5);
        let no_tokens = ["model.latent_tokens=false", "sample.z_var=0.5"].map(String::from);
        let e = TrainConfig::load("vitgan-mnist", &no_tokens).unwrap_err();
        assert!(e.to_string().contains("latent_tokens"), "{e}");
        assert!(err("pggan-mnist", "sample.z_var=0.5").contains("normalizes z"));
        assert!(err("vqvae2-mnist", "sample.z_var=0.5").contains("no z"));
        assert!(err("stylegan2-mnist", "sample.psi=9").contains("sample.psi must be in"));
        assert!(err("stylegan2-mnist", "sample.temperature=0.9").contains("PixelCNN"));
        assert!(err("pixelcnn-mnist", "sample.temperature=0").contains("positive"));
        // A run saved before `[sample]` existed loads with the defaults.
        let old = TrainConfig::load("stylegan-mnist", &[]).unwrap().to_toml();
        let old = old.split("[sample]").next().unwrap();
        assert_eq!(TrainConfig::from_toml(old, "old").unwrap().sample.psi, 1.0);
    }

    #[test]
    fn typos_get_did_you_mean() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        let err = TrainConfig::load("dcgan-tinyy", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean 'dcgan-tiny'?"), "{err}");
        let err = TrainConfig::load("dcgan-tiny", &["train.bach=3".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean 'train.batch'?"), "{err}");
        assert!(err.contains("Valid keys: "), "{err}");
        let err = TrainConfig::load("no-such-thing", &[])
            .unwrap_err()
            .to_string();
        assert!(!err.contains("did you mean"), "{err}");
    }

    #[test]
    fn presets_parse_and_validate() {
        for (name, text) in PRESETS {
            let cfg = TrainConfig::from_toml(text, name).unwrap();
            assert_eq!(&cfg.name, name);
        }
    }

    #[test]
    fn set_overrides_nested_keys_and_rejects_unknown_ones() {
        let mut cfg = TrainConfig::load("dcgan-mnist", &[]).unwrap();
        cfg.apply_overrides(&["train.steps=7".into(), "data.classes=[1, 2]".into()])
            .unwrap();
        assert_eq!(cfg.train.steps, 7);
        assert_eq!(cfg.data.classes, vec![1, 2]);
        let err = cfg.apply_overrides(&["train.stepz=3".into()]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("train.stepz") && msg.contains("train.steps"),
            "{msg}"
        );
        // The batch-per-resolution map is settable whole or per entry, even when empty.
        let mut grow = TrainConfig::load("pggan-tiny", &[]).unwrap();
        grow.apply_overrides(&[
            "train.batch_by_resolution={ 4 = 16 }".into(),
            "train.batch_by_resolution.16=2".into(),
        ])
        .unwrap();
        assert_eq!(
            (grow.batch_at(4), grow.batch_at(16), grow.batch_at(8)),
            (16, 2, 8)
        );
        let err = grow
            .apply_overrides(&["train.batch_by_resolution.5=2".into()])
            .unwrap_err();
        assert!(err.to_string().contains("'5 = 2'"), "{err}");
        let err = cfg.apply_overrides(&["train.batch=0".into()]).unwrap_err();
        assert!(err.to_string().contains("train.batch"));
    }

    #[test]
    fn each_family_takes_only_the_losses_its_papers_train_with() {
        let ok = |preset: &str, loss: &str| {
            TrainConfig::load(preset, &[format!("train.loss={loss}")])
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert!(ok("stylegan-tiny", "bce").is_ok());
        assert!(ok("stylegan-tiny", "wgan-gp").is_ok());
        let err = ok("stylegan-tiny", "hinge").unwrap_err();
        assert!(
            err.contains("train.loss") && err.contains("wgan-gp"),
            "{err}"
        );
        let err = ok("vitgan-tiny", "wgan-gp").unwrap_err();
        assert!(err.contains("train.loss"), "{err}");
    }

    /// A value of the wrong type is one line naming the key and the type it takes; an integer
    /// stands for a float, and a string key takes any text.
    #[test]
    fn set_with_a_wrong_type_names_the_key_and_the_type() {
        let err = |set: &str| {
            TrainConfig::load("vitgan-tiny", &[set.to_string()])
                .unwrap_err()
                .to_string()
        };
        let e = err("model.latent_tokens=yes");
        assert!(
            e.contains("model.latent_tokens=yes") && e.contains("true or false"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
        assert!(err("train.steps=1.5").contains("an integer"));
        assert!(err("train.g_lr=fast").contains("a number"));
        let cfg = TrainConfig::load(
            "vitgan-tiny",
            &["train.g_lr=1".into(), "data.path=2024".into()],
        )
        .unwrap();
        assert_eq!((cfg.train.g_lr, cfg.data.path.as_str()), (1.0, "2024"));
        let cfg = TrainConfig::load("vitgan-tiny", &["data.path=\"my data\"".into()]).unwrap();
        assert_eq!(cfg.data.path, "my data");
    }

    #[test]
    fn unknown_key_in_file_is_an_error() {
        let err = TrainConfig::from_toml("[train]\nbogus = 1\n", "x.toml").unwrap_err();
        assert!(err.to_string().contains("bogus"), "{err}");
    }

    #[test]
    fn model_differences_name_the_keys() {
        let a = TrainConfig::load("dcgan-mnist", &[]).unwrap();
        let mut b = a.clone();
        if let ModelConfig::Dcgan(m) = &mut b.model {
            m.z_dim = 32;
        }
        b.train.steps = 5;
        let d = a.model_differences(&b);
        assert_eq!(d.len(), 1);
        assert!(d[0].starts_with("model.z_dim"), "{d:?}");
    }
}

#[cfg(test)]
mod family_config_tests {
    use super::*;

    #[test]
    fn a_saved_config_holds_only_its_familys_keys() {
        let dcgan = TrainConfig::load("dcgan-mnist", &[]).unwrap().to_toml();
        assert!(dcgan.contains("family = \"dcgan\""), "{dcgan}");
        for other in ["codebook_size", "g_attention", "patch", "w_dim"] {
            assert!(
                !dcgan.contains(other),
                "{other} in a DCGAN config:\n{dcgan}"
            );
        }
        let style = TrainConfig::load("stylegan-mnist", &[]).unwrap();
        let keys = style.flat_keys();
        assert!(keys.contains_key("model.w_dim") && !keys.contains_key("model.width"));
        // A key of another family is refused with the family's own keys listed.
        let err = TrainConfig::from_toml("[model]\nfamily = \"dcgan\"\ncodebook_size = 4\n", "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("codebook_size"), "{err}");
    }
}
