//! Training, the preset list and the train-step benchmark.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use genforge::config::{PRESETS, TrainConfig};
use genforge::device;
use genforge::train::TrainOptions;
use genforge::train::loop_::RunSource;

use crate::progress::CliProgress;

/// Train a model from a preset or a TOML config, or resume a run.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// Preset name (see `genforge presets`) or path to a TOML file. Omit with --resume.
    pub preset: Option<String>,
    /// Total number of steps (one D and one G update each).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::whole::<u64>)]
    pub steps: Option<u64>,
    /// Batch size (same as --set train.batch=B).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub batch: Option<usize>,
    /// Run directory (default: runs/NNNNN-<preset>).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Where new run directories are numbered.
    #[arg(long, default_value = "runs")]
    pub runs_root: PathBuf,
    /// Override any config key, e.g. --set train.g_lr=1e-4 --set data.classes=[3]
    #[arg(long = "set", value_name = "KEY=VALUE", num_args = 1..)]
    pub set: Vec<String>,
    /// cpu (default), vulkan or cuda (need the `vulkan` or `cuda` build feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Seed for weights, batch order and latents (same as --set train.seed=S).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::whole::<u64>)]
    pub seed: Option<u64>,
    /// Continue the run in this directory from its latest checkpoint.
    #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["preset", "run_dir"])]
    pub resume: Option<PathBuf>,
    /// Start a new run (--run-dir, or the next runs/NNNNN-<name>) that continues another run from
    /// one of its checkpoints (RUN/checkpoints/step-NNNNNNN or RUN/checkpoints/best), with that
    /// run's config, --set overrides of training keys and its history up to that step; the other
    /// run is only read.
    #[arg(long, value_name = "CHECKPOINT", conflicts_with_all = ["preset", "resume"])]
    pub branch: Option<PathBuf>,
}

pub fn train(args: TrainArgs) -> Result<()> {
    let TrainArgs {
        preset,
        steps,
        batch,
        run_dir,
        runs_root,
        mut set,
        device,
        seed,
        resume,
        branch,
    } = args;
    if let Some(b) = batch {
        set.push(format!("train.batch={b}"));
    }
    if let Some(s) = seed {
        set.push(format!("train.seed={s}"));
    }
    let device = device::parse(&device)?;
    let source = match (resume, branch, preset) {
        (Some(dir), _, _) => RunSource::Resume {
            run_dir: dir,
            overrides: set,
        },
        (None, Some(checkpoint), _) => RunSource::Branch {
            checkpoint,
            run_dir,
            runs_root,
            overrides: set,
        },
        (None, None, Some(p)) => {
            let config = Box::new(TrainConfig::load(&p, &set)?);
            RunSource::New {
                config,
                run_dir,
                runs_root,
            }
        }
        (None, None, None) => {
            bail!("give a preset (see `genforge presets`), --resume RUN_DIR or --branch CHECKPOINT")
        }
    };
    let started = Instant::now();
    let dir = genforge::train::train(
        TrainOptions {
            source,
            steps,
            device,
            stop: Some(stop_on_signals()?),
        },
        &mut CliProgress::new(),
    )?;
    tracing::info!(
        "done in {:.1} s; samples in {}",
        started.elapsed().as_secs_f64(),
        dir.join("samples").display()
    );
    Ok(())
}

/// List the shipped presets.
pub fn presets() -> Result<()> {
    let width = PRESETS.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    for (name, text) in PRESETS {
        let cfg = TrainConfig::from_toml(text, name)?;
        println!("{name:<width$} {}", cfg.description);
    }
    Ok(())
}

/// Time train steps of a preset: GANs a D step + G step, VQ-VAE-2 one autoencoder step,
/// PixelCNN one step of each prior (timed apart; reads the code maps at data.path).
#[derive(clap::Args)]
pub struct BenchArgs {
    pub preset: String,
    #[arg(long, default_value_t = 5, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub steps: usize,
    #[arg(long, default_value_t = 2, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub warmup: usize,
    #[arg(long, default_value_t = 64, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub batch: usize,
    #[arg(long = "set", value_name = "KEY=VALUE", num_args = 1..)]
    pub set: Vec<String>,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn bench(args: BenchArgs) -> Result<()> {
    let BenchArgs {
        preset,
        steps,
        warmup,
        batch,
        mut set,
        device,
        json,
    } = args;
    if steps == 0 {
        bail!("--steps must be at least 1");
    }
    set.push(format!("train.batch={batch}"));
    let cfg = TrainConfig::load(&preset, &set)?;
    let dev = device::parse(&device)?;
    tracing::info!(
        "bench {preset}: batch {batch}, {warmup} warm-up + {steps} timed steps on {device}"
    );
    let report = genforge::bench::run(cfg, &dev, steps, warmup, |i, s| {
        tracing::info!("step {}: {s:.3} s", i + 1);
    })?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let models: Vec<String> = report
            .models
            .iter()
            .map(|(n, p)| format!("{n} {:.2}M", *p as f64 / 1e6))
            .collect();
        println!(
            "genforge {preset} batch {} on {device}: {:.3} s/step  {:.1} img/s  peak RSS {:.0} MiB  \
             params {}",
            report.batch,
            report.sec_per_step,
            report.img_per_s,
            report.peak_rss_mib,
            models.join(", ")
        );
        println!(
            "  kernels: {}  cpu: {}",
            report.kernels,
            report.cpu_features.join(" ")
        );
        let total: f64 = report.phases.iter().map(|p| p.1).sum();
        for (name, s) in &report.phases {
            println!("  {name:<11} {s:>7.3} s  {:>5.1}%", 100.0 * s / total);
        }
    }
    Ok(())
}

/// The first SIGINT or SIGTERM sets the returned value to its number (training stops after the
/// current step with a checkpoint); a second one exits at once with 128 + its number.
fn stop_on_signals() -> Result<Arc<AtomicUsize>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let stop = Arc::new(AtomicUsize::new(0));
    let stopping = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        // Registered first, so on the first signal it sees `stopping` still false.
        signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&stopping))?;
        signal_hook::flag::register(sig, Arc::clone(&stopping))?;
        signal_hook::flag::register_usize(sig, Arc::clone(&stop), sig as usize)?;
    }
    // Say at once what will happen; the training loop notices after its step.
    let seen = Arc::clone(&stopping);
    std::thread::spawn(move || {
        while !seen.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!(
            "stopping after the current step and writing a checkpoint (signal again to stop at once)"
        );
    });
    Ok(stop)
}
