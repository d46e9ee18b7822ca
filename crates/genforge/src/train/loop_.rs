//! The training run: resolves the run directory, feeds batches, logs `stats.jsonl`, writes
//! fixed-latent sample grids and checkpoints, and resumes exactly from the latest checkpoint.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use serde_json::json;

use super::{GanTrainer, StepStats};
use crate::config::TrainConfig;
use crate::run::{self, StatsWriter, checkpoint};
use crate::sample::{self, grid};
use crate::{Error, Result, data};

/// What the caller shows the user while training runs.
pub trait Progress {
    fn start(&mut self, run_dir: &Path, done: u64, total: u64);
    fn step(&mut self, step: u64, stats: &StepStats, img_per_s: f64);
    fn message(&mut self, msg: &str);
    fn finish(&mut self);
}

/// A [`Progress`] that prints nothing (tests, benchmarks).
pub struct Silent;
impl Progress for Silent {
    fn start(&mut self, _: &Path, _: u64, _: u64) {}
    fn step(&mut self, _: u64, _: &StepStats, _: f64) {}
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
}

pub struct TrainOptions {
    pub source: RunSource,
    /// Total steps to reach (overrides `train.steps`).
    pub steps: Option<u64>,
    pub device: Device,
}

fn fixed_grid(trainer: &GanTrainer, run_dir: &Path, step: u64) -> Result<()> {
    let cfg = &trainer.cfg;
    let z = sample::latents(
        cfg.train.grid_size,
        cfg.model.z_dim,
        cfg.train.seed,
        trainer.device(),
    );
    let images = trainer.generate(z);
    let path = run_dir.join("samples").join(format!("step-{step:07}.png"));
    grid::save_png(&grid::make_grid(images, None), &path)
}

/// Train until the configured number of steps; returns the run directory.
pub fn train(opts: TrainOptions, progress: &mut dyn Progress) -> Result<PathBuf> {
    // Resolve the config and read the data before touching the run directory, so a bad key or
    // a missing dataset leaves nothing behind.
    let (config, resume_from) = match &opts.source {
        RunSource::New { config, .. } => ((**config).clone(), None),
        RunSource::Resume { run_dir, overrides } => {
            let cfg_path = run_dir.join(run::CONFIG_FILE);
            if !cfg_path.is_file() {
                return Err(Error::run(
                    run_dir,
                    "is not a genforge run directory (no config.toml)",
                ));
            }
            let saved = TrainConfig::load_file(&cfg_path)?;
            let mut config = saved.clone();
            config.apply_overrides(overrides)?;
            let diff = config.model_differences(&saved);
            if !diff.is_empty() {
                return Err(Error::Config(format!(
                    "cannot resume {} with a changed model: {}. Start a new run instead",
                    run_dir.display(),
                    diff.join(", ")
                )));
            }
            (config, Some(checkpoint::latest(run_dir)?))
        }
    };
    let mut config = config;
    if let Some(s) = opts.steps {
        config.train.steps = s;
    }
    let data_path = config.resolve_data_path();
    let dataset = data::load(
        &config.data,
        &data_path,
        config.model.channels,
        config.model.resolution,
    )?;
    let mut sampler = data::BatchSampler::new(&dataset, config.train.seed, config.train.batch)?;

    let (run_dir, mut trainer) = match (opts.source, resume_from) {
        (
            RunSource::New {
                run_dir, runs_root, ..
            },
            _,
        ) => {
            let dir = match run_dir {
                Some(d) => d,
                None => run::next_run_dir(&runs_root, &config.name)?,
            };
            run::create(&dir, &config.to_toml())?;
            (dir, GanTrainer::new(config, &opts.device))
        }
        (RunSource::Resume { run_dir, .. }, Some((step, ckpt))) => {
            progress.message(&format!("resuming {} from step {step}", run_dir.display()));
            let trainer = GanTrainer::load(config.clone(), &ckpt, &opts.device)?;
            run::write_atomic(&run_dir.join(run::CONFIG_FILE), config.to_toml().as_bytes())?;
            (run_dir, trainer)
        }
        (RunSource::Resume { .. }, None) => unreachable!("resume always has a checkpoint"),
    };
    let cfg = trainer.cfg.clone();
    let t = &cfg.train;
    progress.message(&format!(
        "{}: {} images of {}x{}x{} from {}",
        cfg.name,
        dataset.len(),
        dataset.channels,
        dataset.height,
        dataset.width,
        data_path.display()
    ));

    let start = trainer.state.step;
    if start == 0 {
        let n = t.grid_size.min(dataset.len());
        let idx: Vec<usize> = (0..n).collect();
        let reals = dataset.tensor(&idx, &Device::flex());
        grid::save_png(
            &grid::make_grid(reals, None),
            &run_dir.join("samples").join("reals.png"),
        )?;
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
    while trainer.state.step < t.steps {
        let step0 = trainer.state.step;
        let real = dataset.tensor(sampler.indices(step0), trainer.device());
        let stats = trainer.train_step(real)?;
        let step = trainer.state.step;
        window_steps += 1;
        let elapsed = window.elapsed().as_secs_f64();
        let sec_per_step = elapsed / window_steps as f64;
        let img_per_s = t.batch as f64 / sec_per_step;
        progress.step(step, &stats, img_per_s);
        if step % t.log_every == 0 || step == t.steps {
            stats_out.write(&json!({
                "step": step,
                "images_seen": trainer.state.images_seen,
                "d_loss": stats.d_loss,
                "g_loss": stats.g_loss,
                "d_real": stats.d_real,
                "d_fake": stats.d_fake,
                "sec_per_step": sec_per_step,
                "img_per_s": img_per_s,
            }))?;
            window = Instant::now();
            window_steps = 0;
        }
        if (t.sample_every > 0 && step % t.sample_every == 0) || step == t.steps {
            fixed_grid(&trainer, &run_dir, step)?;
        }
        if (t.checkpoint_every > 0 && step % t.checkpoint_every == 0) || step == t.steps {
            checkpoint::save(&run_dir, step, t.keep_checkpoints, |d| trainer.save(d))?;
            last_ckpt = step;
        }
    }
    if last_ckpt != trainer.state.step {
        checkpoint::save(&run_dir, trainer.state.step, t.keep_checkpoints, |d| {
            trainer.save(d)
        })?;
    }
    progress.finish();
    Ok(run_dir)
}
