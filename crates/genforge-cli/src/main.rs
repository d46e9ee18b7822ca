//! The `genforge` command line: argument parsing and progress display only; the work is in the
//! `genforge` library.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};
use genforge::config::{PRESETS, TrainConfig};
use genforge::train::loop_::RunSource;
use genforge::train::{Progress, StepStats, TrainOptions};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser)]
#[command(
    name = "genforge",
    version,
    about = "Train, sample and evaluate generative image models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model from a preset or a TOML config, or resume a run.
    Train {
        /// Preset name (see `genforge presets`) or path to a TOML file. Omit with --resume.
        preset: Option<String>,
        /// Total number of steps (one D and one G update each).
        #[arg(long)]
        steps: Option<u64>,
        /// Batch size (same as --set train.batch=B).
        #[arg(long)]
        batch: Option<usize>,
        /// Run directory (default: runs/NNNNN-<preset>).
        #[arg(long)]
        run_dir: Option<PathBuf>,
        /// Where new run directories are numbered.
        #[arg(long, default_value = "runs")]
        runs_root: PathBuf,
        /// Override any config key, e.g. --set train.g_lr=1e-4 --set data.classes=[3]
        #[arg(long = "set", value_name = "KEY=VALUE", num_args = 1..)]
        set: Vec<String>,
        /// cpu (default) or vulkan (needs the `vulkan` build feature).
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Seed for weights, batch order and latents (same as --set train.seed=S).
        #[arg(long)]
        seed: Option<u64>,
        /// Continue the run in this directory from its latest checkpoint.
        #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["preset", "run_dir"])]
        resume: Option<PathBuf>,
    },
    /// List the shipped presets.
    Presets,
    /// Generate images from a trained run.
    Sample {
        run_dir: PathBuf,
        /// Number of images.
        #[arg(long, default_value_t = 64)]
        n: usize,
        /// Latent seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// A .png for one grid, or a directory (ending in / or existing) for one PNG per image.
        #[arg(long, default_value = "samples.png")]
        out: PathBuf,
        /// Checkpoint directory (default: the latest in the run).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Attention figure of 5 images instead of samples: `g` (default) or `d`. SAGAN: the
        /// seed's centre-pixel maps of G. ViTGAN: one row per head, of G's centre patch or of
        /// D's class token, from the last transformer block.
        #[arg(long, value_name = "g|d", num_args = 0..=1, default_missing_value = "g")]
        attention: Option<String>,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Time full train steps (D step + G step) of a preset.
    Bench {
        preset: String,
        #[arg(long, default_value_t = 5)]
        steps: usize,
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        #[arg(long = "set", value_name = "KEY=VALUE", num_args = 1..)]
        set: Vec<String>,
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// A bar on a terminal, periodic log lines otherwise.
struct CliProgress {
    bar: Option<ProgressBar>,
    total: u64,
    last_line: Instant,
    started: Instant,
    start_step: u64,
}

impl CliProgress {
    fn new() -> Self {
        CliProgress {
            bar: None,
            total: 0,
            last_line: Instant::now(),
            started: Instant::now(),
            start_step: 0,
        }
    }
}

impl Progress for CliProgress {
    fn start(&mut self, run_dir: &Path, done: u64, total: u64) {
        tracing::info!("run directory: {}", run_dir.display());
        self.total = total;
        self.start_step = done;
        self.started = Instant::now();
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total).with_position(done);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} [{elapsed_precise}<{eta_precise}] {msg}",
                )
                .expect("valid template"),
            );
            self.bar = Some(bar);
        }
    }

    fn step(&mut self, step: u64, s: &StepStats, img_per_s: f64) {
        let msg = format!(
            "{img_per_s:.1} img/s  d_loss {:.4}  g_loss {:.4}",
            s.d_loss, s.g_loss
        );
        match &self.bar {
            Some(bar) => {
                bar.set_position(step);
                bar.set_message(msg);
            }
            None => {
                if self.last_line.elapsed().as_secs() >= 10 || step == self.total {
                    let done = (step - self.start_step) as f64;
                    let rate = done / self.started.elapsed().as_secs_f64().max(1e-9);
                    let eta = (self.total - step) as f64 / rate.max(1e-9);
                    tracing::info!("step {step}/{}  {msg}  eta {eta:.0}s", self.total);
                    self.last_line = Instant::now();
                }
            }
        }
    }

    fn message(&mut self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.println(msg),
            None => tracing::info!("{msg}"),
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish();
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Presets => {
            for (name, text) in PRESETS {
                let cfg = TrainConfig::from_toml(text, name)?;
                println!("{name:<14} {}", cfg.description);
            }
        }
        Command::Train {
            preset,
            steps,
            batch,
            run_dir,
            runs_root,
            mut set,
            device,
            seed,
            resume,
        } => {
            if let Some(b) = batch {
                set.push(format!("train.batch={b}"));
            }
            if let Some(s) = seed {
                set.push(format!("train.seed={s}"));
            }
            let device = genforge::device::parse(&device)?;
            let source = match (resume, preset) {
                (Some(dir), _) => RunSource::Resume {
                    run_dir: dir,
                    overrides: set,
                },
                (None, Some(p)) => {
                    let config = Box::new(TrainConfig::load(&p, &set)?);
                    RunSource::New {
                        config,
                        run_dir,
                        runs_root,
                    }
                }
                (None, None) => bail!("give a preset (see `genforge presets`) or --resume RUN_DIR"),
            };
            let started = Instant::now();
            let dir = genforge::train::train(
                TrainOptions {
                    source,
                    steps,
                    device,
                },
                &mut CliProgress::new(),
            )?;
            tracing::info!(
                "done in {:.1} s; samples in {}",
                started.elapsed().as_secs_f64(),
                dir.join("samples").display()
            );
        }
        Command::Sample {
            run_dir,
            n,
            seed,
            out,
            checkpoint,
            attention,
            device,
        } => {
            let device = genforge::device::parse(&device)?;
            let (cfg, g, ckpt) =
                genforge::sample::load_generator(&run_dir, checkpoint.as_deref(), &device)?;
            tracing::info!("checkpoint {}", ckpt.display());
            if let Some(net) = attention {
                let net: genforge::sample::attention::Net = net.parse()?;
                let d = match net {
                    genforge::sample::attention::Net::Discriminator => {
                        Some(genforge::sample::load_discriminator(&cfg, &ckpt, &device)?)
                    }
                    genforge::sample::attention::Net::Generator => None,
                };
                let z = genforge::sample::latents(5, cfg.model.z_dim, seed, &device);
                let fig = genforge::sample::attention::figure(&g, d.as_ref(), net, z)?;
                genforge::sample::grid::save_png(&fig, &out)?;
                tracing::info!("wrote {}", out.display());
                return Ok(());
            }
            if n == 0 {
                bail!("--n must be at least 1");
            }
            let z = genforge::sample::latents(n, cfg.model.z_dim, seed, &device);
            let images = g.forward(z);
            let as_dir =
                out.is_dir() || out.to_string_lossy().ends_with('/') || out.extension().is_none();
            if as_dir {
                let k = genforge::sample::grid::save_each(images, &out)?;
                tracing::info!("wrote {k} images to {}", out.display());
            } else {
                genforge::sample::grid::save_png(
                    &genforge::sample::grid::make_grid(images, None),
                    &out,
                )?;
                tracing::info!("wrote {}", out.display());
            }
        }
        Command::Bench {
            preset,
            steps,
            warmup,
            batch,
            mut set,
            device,
            json,
        } => {
            if steps == 0 {
                bail!("--steps must be at least 1");
            }
            set.push(format!("train.batch={batch}"));
            let cfg = TrainConfig::load(&preset, &set)?;
            let dev = genforge::device::parse(&device)?;
            tracing::info!(
                "bench {preset}: batch {batch}, {warmup} warm-up + {steps} timed steps on {device}"
            );
            let report = genforge::bench::run(cfg, &dev, steps, warmup, |i, s| {
                tracing::info!("step {}: {s:.3} s", i + 1);
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "genforge {preset} batch {} on {device}: {:.3} s/step  {:.1} img/s  peak RSS {:.0} MiB  \
                     params G {:.2}M D {:.2}M",
                    report.batch,
                    report.sec_per_step,
                    report.img_per_s,
                    report.peak_rss_mib,
                    report.g_params as f64 / 1e6,
                    report.d_params as f64 / 1e6
                );
                let total: f64 = report.phases.iter().map(|p| p.1).sum();
                for (name, s) in &report.phases {
                    println!("  {name:<11} {s:>7.3} s  {:>5.1}%", 100.0 * s / total);
                }
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    // A bug should still read as one error line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error ({info}); please report it with the command you ran");
    }));
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
