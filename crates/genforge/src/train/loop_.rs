//! The training run: resolves the run directory, feeds batches, logs `stats.jsonl`, writes
//! fixed-latent sample grids and checkpoints, and resumes exactly from the latest checkpoint.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use burn::tensor::Device;
use serde_json::json;

use super::GanTrainer;
use super::autoencoder::AutoencoderTrainer;
use super::prior::PriorTrainer;
pub use super::stage::Stage;
use super::stage::{describe_images, save_reals};
use crate::config::TrainConfig;
use crate::data::{BatchSampler, Dataset};
use crate::metrics::eval::{EvalOptions, Scores, generated_features, real_features, score};
use crate::metrics::features::{Extraction, FeatureNet};
use crate::metrics::{self, Metric};
use crate::models::Kind;
use crate::run::{self, StatsWriter, TrainerState, checkpoint};
use crate::sample::{self, grid};
use crate::{Error, Result, data};

/// What the caller shows the user while training runs.
pub trait Progress {
    fn start(&mut self, run_dir: &Path, done: u64, total: u64);
    /// `values`: the step's logged numbers, most important first.
    fn step(&mut self, step: u64, values: &[(&'static str, f64)], items_per_s: f64);
    fn message(&mut self, msg: &str);
    /// Something the user should act on or know went wrong, training goes on.
    fn warn(&mut self, msg: &str) {
        self.message(&format!("warning: {msg}"));
    }
    fn finish(&mut self);
}

/// A [`Progress`] that prints nothing (tests, benchmarks).
pub struct Silent;
impl Progress for Silent {
    fn start(&mut self, _: &Path, _: u64, _: u64) {}
    fn step(&mut self, _: u64, _: &[(&'static str, f64)], _: f64) {}
    fn message(&mut self, _: &str) {}
    fn finish(&mut self) {}
}

pub enum RunSource {
    /// A new run from a config, in `run_dir` or the next `runs_root/NNNNN-name`.
    New {
        config: Box<TrainConfig>,
        run_dir: Option<PathBuf>,
        runs_root: PathBuf,
    },
    /// Continue the run in this directory from its latest checkpoint, with `key=value`
    /// overrides of training keys (model keys must match the run's).
    Resume {
        run_dir: PathBuf,
        overrides: Vec<String>,
    },
    /// A new run, in `run_dir` or the next `runs_root/NNNNN-name`, that continues another run
    /// from one of its checkpoints (`RUN/checkpoints/step-N` or `best`) with `key=value`
    /// overrides of training keys. It starts with the other run's history up to that step; the
    /// other run is only read.
    Branch {
        checkpoint: PathBuf,
        run_dir: Option<PathBuf>,
        runs_root: PathBuf,
        overrides: Vec<String>,
    },
}

pub struct TrainOptions {
    pub source: RunSource,
    /// Total steps to reach (overrides `train.steps`).
    pub steps: Option<u64>,
    pub device: Device,
    /// Set to a signal number (SIGINT, SIGTERM) to stop after the current step: a checkpoint is
    /// written and training returns [`Error::Interrupted`].
    pub stop: Option<Arc<AtomicUsize>>,
}

/// The stage of `config.model`'s family, fresh or from the checkpoint `resume`.
pub fn build_stage(
    config: TrainConfig,
    resume: Option<&Path>,
    device: &Device,
) -> Result<Box<dyn Stage>> {
    Ok(match config.model.kind() {
        Kind::Gan => Box::new(GanStage::build(config, resume, device)?),
        Kind::Autoencoder => Box::new(AutoencoderTrainer::build(config, resume, device)?),
        Kind::Prior => Box::new(PriorTrainer::build(config, resume, device)?),
    })
}

/// The stage of a run resumed from its newest loadable checkpoint: a checkpoint whose files are
/// missing, truncated or corrupt is reported through `progress` and the one before it is tried.
fn resume_stage(
    config: TrainConfig,
    run_dir: &Path,
    device: &Device,
    progress: &mut dyn Progress,
) -> Result<(Box<dyn Stage>, u64)> {
    let (stage, dir) = checkpoint::load_newest_with(
        run_dir,
        None,
        |dir| build_stage(config.clone(), Some(dir), device),
        |msg| progress.warn(msg),
    )?;
    let step = checkpoint::step_of(&dir).expect("a step directory");
    Ok((stage, step))
}

/// Train until the configured number of steps; returns the run directory.
pub fn train(opts: TrainOptions, progress: &mut dyn Progress) -> Result<PathBuf> {
    if opts.steps == Some(0) {
        return Err(Error::Config("--steps must be at least 1".into()));
    }
    // Resolve the config and read the data before touching the run directory, so a bad key, a
    // missing dataset or a batch larger than the data leaves nothing behind. A resumed run is
    // locked before its checkpoints are read; a new one once its directory is known.
    let mut lock = None;
    let mut branch_from = None;
    let (config, resume_from) = match &opts.source {
        RunSource::New { config, .. } => ((**config).clone(), None),
        RunSource::Resume { run_dir, overrides } => {
            let saved = run::open(run_dir)?;
            lock = Some(run::lock::lock(run_dir)?);
            checkpoint::clean_up(run_dir)?;
            (
                continued_config(&saved, overrides, run_dir)?,
                Some(run_dir.clone()),
            )
        }
        RunSource::Branch {
            checkpoint,
            overrides,
            ..
        } => {
            let source = branch_source(checkpoint)?;
            let saved = run::open(&source)?;
            let config = continued_config(&saved, overrides, &source)?;
            branch_from = Some(source);
            (config, None)
        }
    };
    let mut config = config;
    if let Some(s) = opts.steps {
        config.train.steps = s;
    }
    check_eval_features(&config)?;
    // A run stopped before its first checkpoint starts again from step 0 with its saved config.
    let (mut stage, resumed_at) = match (&resume_from, &opts.source) {
        (Some(dir), _) if !checkpoint::list(dir)?.is_empty() => {
            let (stage, step) = resume_stage(config, dir, &opts.device, progress)?;
            (stage, Some(step))
        }
        (_, RunSource::Branch { checkpoint, .. }) => {
            let stage = build_stage(config, Some(checkpoint), &opts.device)?;
            let step = stage.state().step;
            (stage, Some(step))
        }
        _ => (build_stage(config, None, &opts.device)?, None),
    };
    let cfg = stage.config().clone();
    let t = &cfg.train;
    let items = stage.train_items();
    check_batches(&cfg, items)?;
    let mut sampler: Option<(usize, BatchSampler)> = None;

    let run_dir = match opts.source {
        RunSource::New {
            run_dir, runs_root, ..
        } => {
            let (dir, held) = new_run_dir(run_dir, &runs_root, &cfg)?;
            lock = Some(held);
            dir
        }
        RunSource::Resume { run_dir, .. } => {
            match resumed_at {
                Some(step) => {
                    progress.message(&format!("resuming {} from step {step}", run_dir.display()))
                }
                None => progress.message(&format!(
                    "{} has no checkpoint yet: starting it from step 0 with its saved config",
                    run_dir.display()
                )),
            }
            run::write_atomic(&run_dir.join(run::CONFIG_FILE), cfg.to_toml().as_bytes())?;
            run_dir
        }
        RunSource::Branch {
            checkpoint,
            run_dir,
            runs_root,
            ..
        } => {
            let (dir, held) = new_run_dir(run_dir, &runs_root, &cfg)?;
            lock = Some(held);
            let step = stage.state().step;
            let source = branch_from.expect("set for a branch above");
            run::copy_history(&source, &dir, step)?;
            checkpoint::save(&dir, step, t.keep_checkpoints, |d| {
                checkpoint::copy_files(&checkpoint, d)
            })?;
            progress.message(&format!(
                "{} continues {} from step {step}",
                dir.display(),
                source.display()
            ));
            dir
        }
    };
    let _lock = lock.expect("every run directory is locked above");
    progress.message(&stage.describe());

    let start = stage.state().step;
    run::record_environment(&run_dir, start, &format!("{:?}", opts.device))?;
    if start == 0 {
        stage.begin(&run_dir)?;
    }
    if start >= t.steps {
        progress.message(&format!(
            "the run is already at step {start}; pass a larger --steps to continue"
        ));
    }
    let mut stats_out = StatsWriter::open(&run_dir, start)?;
    progress.start(&run_dir, start, t.steps);
    let mut window = Instant::now();
    let mut window_steps = 0u64;
    let mut last_ckpt = start;
    while stage.state().step < t.steps {
        let step0 = stage.state().step;
        let batch = stage.batch_size(step0);
        if sampler.as_ref().is_none_or(|(b, _)| *b != batch) {
            sampler = Some((batch, BatchSampler::with_len(items, t.seed, batch)?));
        }
        let (_, sampler_now) = sampler.as_mut().expect("set above");
        let values = stage
            .step(sampler_now.indices(step0))
            .map_err(|e| diverged_advice(e, &run_dir))?;
        let step = stage.state().step;
        window_steps += 1;
        let elapsed = window.elapsed().as_secs_f64();
        let sec_per_step = elapsed / window_steps as f64;
        let items_per_s = batch as f64 / sec_per_step;
        progress.step(step, &values, items_per_s);
        if step % t.log_every == 0 || step == t.steps {
            let mut line = json!({
                "step": step,
                "images_seen": stage.state().images_seen,
            });
            for (k, v) in &values {
                line[*k] = json!(v);
            }
            line["sec_per_step"] = json!(sec_per_step);
            line["img_per_s"] = json!(items_per_s);
            stats_out.write(&line)?;
            window = Instant::now();
            window_steps = 0;
        }
        if (t.sample_every > 0 && step % t.sample_every == 0) || step == t.steps {
            let values = stage.snapshot(&run_dir, step)?;
            if !values.is_empty() {
                let mut line = json!({ "step": step });
                let mut msg = format!("step {step}:");
                for (k, v) in &values {
                    line[*k] = json!(v);
                    msg.push_str(&format!(" {k} {v:.4}"));
                }
                stats_out.write(&line)?;
                progress.message(&msg);
            }
        }
        let stop = opts.stop.as_ref().map_or(0, |s| s.load(Ordering::SeqCst));
        if (t.checkpoint_every > 0 && step % t.checkpoint_every == 0)
            || step == t.steps
            || stop != 0
        {
            checkpoint::save(&run_dir, step, t.keep_checkpoints, |d| stage.save(d))
                .map_err(|e| diverged_advice(e, &run_dir))?;
            last_ckpt = step;
        }
        if stop != 0 {
            progress.finish();
            return Err(Error::Interrupted {
                signal: stop as i32,
                step,
                run_dir,
            });
        }
        if t.eval_every > 0 && (step % t.eval_every == 0 || step == t.steps) {
            evaluate(&mut *stage, &run_dir, step, &mut stats_out, progress)?;
        }
    }
    if last_ckpt != stage.state().step {
        checkpoint::save(&run_dir, stage.state().step, t.keep_checkpoints, |d| {
            stage.save(d)
        })
        .map_err(|e| diverged_advice(e, &run_dir))?;
    }
    progress.finish();
    Ok(run_dir)
}

/// The config of a run continued with `overrides` of its saved config `saved`: training keys
/// may change, the networks may not.
fn continued_config(saved: &TrainConfig, overrides: &[String], dir: &Path) -> Result<TrainConfig> {
    let mut config = saved.clone();
    config.apply_overrides(overrides)?;
    if config.train.progressive != saved.train.progressive {
        return Err(Error::Config(format!(
            "cannot continue {} with train.progressive changed: a growing run's networks have \
             layers a fixed-size run's lack. Start a new run instead",
            dir.display()
        )));
    }
    let diff = config.model_differences(saved);
    if !diff.is_empty() {
        return Err(Error::Config(format!(
            "cannot continue {} with a changed model: {}. Start a new run instead",
            dir.display(),
            diff.join(", ")
        )));
    }
    Ok(config)
}

/// The run directory holding `checkpoint`, which must be `RUN/checkpoints/step-N` or
/// `RUN/checkpoints/best`.
fn branch_source(checkpoint: &Path) -> Result<PathBuf> {
    let parent = checkpoint.parent();
    let named = checkpoint::step_of(checkpoint).is_some()
        || checkpoint
            .file_name()
            .is_some_and(|n| n == checkpoint::BEST);
    match parent {
        Some(p) if named && p.file_name().is_some_and(|n| n == "checkpoints") => {
            if !checkpoint.is_dir() {
                return Err(Error::run(
                    checkpoint,
                    "does not exist; list the run's checkpoints directory for the ones it keeps",
                ));
            }
            Ok(p.parent()
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf))
        }
        _ => Err(Error::run(
            checkpoint,
            "is not a checkpoint: give RUN/checkpoints/step-NNNNNNN or RUN/checkpoints/best",
        )),
    }
}

/// The directory of a new run, locked and holding its config: `run_dir` when given, else the next
/// free `runs_root/NNNNN-name` (a number another process takes meanwhile is skipped).
fn new_run_dir(
    run_dir: Option<PathBuf>,
    runs_root: &Path,
    cfg: &TrainConfig,
) -> Result<(PathBuf, run::lock::RunLock)> {
    if let Some(dir) = run_dir {
        let held = run::lock::lock(&dir)?;
        run::create(&dir, &cfg.to_toml())?;
        return Ok((dir, held));
    }
    for _ in 0..100 {
        let dir = run::next_run_dir(runs_root, &cfg.name)?;
        let Some(held) = run::lock::try_lock(&dir)? else {
            continue;
        };
        if dir.join(run::CONFIG_FILE).exists() {
            continue;
        }
        run::create(&dir, &cfg.to_toml())?;
        return Ok((dir, held));
    }
    Err(Error::run(
        runs_root,
        "no free run directory after 100 tries; give one with --run-dir",
    ))
}

/// Every batch size the schedule uses fits the training items (an epoch holds a whole batch).
fn check_batches(cfg: &TrainConfig, items: usize) -> Result<()> {
    let t = &cfg.train;
    let largest = t
        .batch_by_resolution
        .values()
        .chain([&t.batch])
        .max()
        .copied()
        .unwrap_or(t.batch);
    if items < largest {
        return Err(Error::Config(format!(
            "the training data ({}) has {items} items, fewer than the batch of {largest}; lower \
             --batch (or train.batch_by_resolution) or use more data",
            cfg.resolve_data_path().display()
        )));
    }
    Ok(())
}

/// With `train.eval_every` and the Inception features, the weight file must be found before
/// hours of training reach the first evaluation.
fn check_eval_features(cfg: &TrainConfig) -> Result<()> {
    let t = &cfg.train;
    if t.eval_every > 0 && cfg.model.kind() == Kind::Gan && t.eval_features == "inception" {
        crate::metrics::inception::weights_path()?;
    }
    Ok(())
}

/// A divergence error with what is true of the run's checkpoints: the last one stays the latest
/// (resume from it), or there is none (resume starts from step 0 with the saved config).
fn diverged_advice(e: Error, run_dir: &Path) -> Error {
    let Error::Diverged(msg) = e else {
        return e;
    };
    let lower = "with a lower learning rate (--set train.g_lr=... train.d_lr=... for GANs, \
                 train.lr=... otherwise)";
    let resume = format!("genforge train --resume {}", run_dir.display());
    let advice = match checkpoint::list(run_dir).ok().and_then(|mut l| l.pop()) {
        Some((step, _)) => format!(
            "The last checkpoint, step {step}, holds finite weights and stays the latest: `{resume} \
             --set ...` continues from it {lower}"
        ),
        None => format!(
            "No checkpoint was written before it: `{resume} --set ...` starts the run again from \
             step 0 {lower}"
        ),
    };
    Error::Diverged(format!("{msg}. {advice}"))
}

/// FID/KID at `step` into `stats.jsonl`; a new lowest FID replaces `checkpoints/best`.
fn evaluate(
    stage: &mut dyn Stage,
    run_dir: &Path,
    step: u64,
    stats_out: &mut StatsWriter,
    progress: &mut dyn Progress,
) -> Result<()> {
    let t = stage.config().train.clone();
    let Some(s) = stage.evaluate(t.eval_n, &t.eval_features)? else {
        return Ok(());
    };
    let fid = s.fid.expect("FID is always evaluated");
    let kid = s.kid.expect("KID is always evaluated");
    let (p, r) = (s.precision.expect("PR too"), s.recall.expect("PR too"));
    stats_out
        .write(&json!({ "step": step, "fid": fid, "kid": kid, "precision": p, "recall": r }))?;
    let best = checkpoint::best_fid(run_dir);
    let improved = best.is_none_or(|b| fid < b);
    if improved {
        checkpoint::save_best(run_dir, step, fid, |d| stage.save(d))?;
    }
    progress.message(&format!(
        "step {step}: FID {fid:.3}, KID {kid:.5}, precision {p:.3}, recall {r:.3} ({} {} \
         features){}",
        t.eval_n,
        t.eval_features,
        if improved { ", new best" } else { "" }
    ));
    Ok(())
}

/// The adversarial families: a [`GanTrainer`] and its images.
pub struct GanStage {
    trainer: GanTrainer,
    dataset: Dataset,
    data_path: PathBuf,
    /// Feature network and real features of evaluations during training, built on first use.
    eval: Option<(FeatureNet, Extraction)>,
}

impl GanStage {
    pub fn build(config: TrainConfig, resume: Option<&Path>, device: &Device) -> Result<Self> {
        let data_path = config.resolve_data_path();
        let (channels, resolution) = config.model.image_shape().expect("an image family");
        let dataset = data::load(&config.data, &data_path, channels, resolution)?;
        if let Some(classes) = config.model.num_classes() {
            check_labels(&dataset, classes, &data_path)?;
        }
        let trainer = match resume {
            Some(ckpt) => GanTrainer::load(config, ckpt, device)?,
            None => GanTrainer::new(config, device),
        };
        Ok(GanStage {
            trainer,
            dataset,
            data_path,
            eval: None,
        })
    }
}

impl Stage for GanStage {
    fn config(&self) -> &TrainConfig {
        &self.trainer.cfg
    }

    fn train_items(&self) -> usize {
        self.dataset.len()
    }

    /// A growing run's batch follows the resolution (`train.batch_by_resolution`).
    fn batch_size(&self, _step: u64) -> usize {
        match self.trainer.next_level() {
            Some(level) => self.trainer.cfg.batch_at(level.resolution()),
            None => self.trainer.cfg.train.batch,
        }
    }

    fn step(&mut self, batch: &[usize]) -> Result<Vec<(&'static str, f64)>> {
        let device = self.trainer.device().clone();
        let real = self.dataset.tensor(batch, &device);
        let labels = self
            .trainer
            .cfg
            .model
            .is_conditional()
            .then(|| self.dataset.labels_tensor(batch, &device));
        let s = self.trainer.train_step(real, labels)?;
        let mut values = vec![("d_loss", s.d_loss)];
        // With several D steps per G step, G's loss exists on G's steps only.
        let step = self.trainer.state.step;
        if self
            .trainer
            .phases(step)
            .contains(&super::gan::Phase::GMain)
        {
            values.push(("g_loss", s.g_loss));
        }
        values.extend([
            ("d_real", s.d_real),
            ("d_fake", s.d_fake),
            ("d_acc", s.d_acc),
        ]);
        if let Some(r1) = s.r1 {
            values.push(("r1", r1));
        }
        if let Some(pl) = s.pl {
            values.push(("pl", pl));
        }
        if let Some(gp) = s.gp {
            values.push(("gp", gp));
        }
        if let Some(p) = s.ada_p {
            values.push(("ada_p", p));
        }
        if let Some(rt) = s.ada_rt {
            values.push(("ada_rt", rt));
        }
        if let Some(level) = self.trainer.level() {
            // First, so the progress line shows where the growth is.
            values.splice(
                0..0,
                [
                    ("resolution", level.resolution() as f64),
                    ("alpha", level.alpha),
                ],
            );
        }
        Ok(values)
    }

    fn state(&self) -> &TrainerState {
        &self.trainer.state
    }

    fn save(&self, dir: &Path) -> Result<()> {
        self.trainer.save(dir)
    }

    fn snapshot(&mut self, run_dir: &Path, step: u64) -> Result<Vec<(&'static str, f64)>> {
        let cfg = &self.trainer.cfg;
        let z = sample::latents(
            cfg.train.grid_size,
            cfg.model.z_dim().expect("an adversarial family"),
            cfg.train.seed,
            self.trainer.device(),
        );
        let images = self.trainer.generate(z, None);
        let path = run_dir.join("samples").join(format!("step-{step:07}.png"));
        grid::save_png(&grid::make_grid(images, None), &path)?;
        Ok(Vec::new())
    }

    fn evaluate(&mut self, n: usize, features: &str) -> Result<Option<Scores>> {
        let device = Device::flex();
        if self.eval.is_none() {
            let spec = crate::metrics::features::resolve(features, &self.trainer.cfg.data);
            let net = FeatureNet::load(&spec, &device)?;
            let cache = metrics::cache::default_dir();
            let reals = crate::data::originals(&self.dataset, &self.trainer.cfg.data);
            let real = real_features(&net, &reals, n, 100, cache.as_deref(), &device, |_| {})?;
            self.eval = Some((net, real));
        }
        let (net, real) = self.eval.as_ref().expect("built above");
        let cfg = &self.trainer.cfg;
        let z_dim = cfg.model.z_dim().expect("an adversarial family");
        // The same latents at every evaluation, apart from the training streams.
        let fake = generated_features(
            net,
            n,
            100,
            |start, len| {
                let z =
                    sample::latents(len, z_dim, cfg.train.seed ^ 0xE7A1 ^ start as u64, &device);
                Ok(self.trainer.generate(z, None).to_device(&device))
            },
            |_| {},
        )?;
        let opts = EvalOptions {
            n,
            // Precision and recall beside FID: a collapsing G shows as falling recall first.
            metrics: vec![Metric::Fid, Metric::Kid, Metric::Pr],
            ..EvalOptions::default()
        };
        Ok(Some(score(real, &fake, &opts)))
    }

    fn describe(&self) -> String {
        describe_images(&self.trainer.cfg, &self.dataset, &self.data_path)
    }

    fn begin(&self, run_dir: &Path) -> Result<()> {
        save_reals(&self.dataset, self.trainer.cfg.train.grid_size, run_dir)
    }
}

/// A class-conditional family needs a label below `model.num_classes` on every image.
fn check_labels(dataset: &Dataset, classes: usize, path: &Path) -> Result<()> {
    for i in 0..dataset.len() {
        let l = dataset.label(i);
        if l == u32::MAX {
            return Err(Error::data(
                path,
                "has no class labels, and this family is class-conditional; use a labelled \
                 dataset (IDX labels, CIFAR-10 labels, or a folder with one subfolder per class)",
            ));
        }
        if l as usize >= classes {
            return Err(Error::data(
                path,
                format!(
                    "has label {l}, but model.num_classes = {classes}; raise model.num_classes \
                     or filter with data.classes"
                ),
            ));
        }
    }
    Ok(())
}
