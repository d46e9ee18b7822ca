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
use genforge::train::{Progress, TrainOptions};
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
        /// cpu (default), vulkan or cuda (need the `vulkan` or `cuda` build feature).
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
        /// VQ-VAE-2: the prior run (`genforge train pixelcnn-...`) to sample codes from.
        #[arg(long, value_name = "PRIOR_RUN_DIR")]
        prior: Option<PathBuf>,
        /// VQ-VAE-2: softmax temperature of the priors (below 1: sharper, less diverse).
        #[arg(long, default_value_t = 1.0)]
        temperature: f64,
        /// VQ-VAE-2: class of every sample, for a class-conditional prior.
        #[arg(long)]
        label: Option<u32>,
        /// StyleGAN: truncation psi, `w_avg + psi (w - w_avg)` (1: none, 0: the average image).
        #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
        psi: f64,
        /// StyleGAN: truncate only the first K style layers (the paper's cutoff; default: all).
        #[arg(long, value_name = "K")]
        cutoff: Option<usize>,
        /// BigGAN: class of every sample, by index or name (default: the classes in turn).
        #[arg(long = "class", value_name = "CLASS")]
        class: Option<String>,
        /// BigGAN: draw z from a normal truncated at this threshold (by resampling).
        #[arg(long, value_name = "T")]
        truncation: Option<f64>,
        /// Attention figure of 5 images instead of samples: `g` (default) or `d`. SAGAN: the
        /// article's centre-pixel maps of G. ViTGAN: one row per head, of G's centre patch or of
        /// D's class token, from the last transformer block.
        #[arg(long, value_name = "g|d", num_args = 0..=1, default_missing_value = "g")]
        attention: Option<String>,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// BigGAN: a grid with one row per class.
    Classes {
        #[command(flatten)]
        run: BigRun,
        /// Images per class (one row).
        #[arg(long, default_value_t = 10)]
        per_class: usize,
        /// Only these classes (indices or names, comma separated; default: all).
        #[arg(long, value_delimiter = ',')]
        classes: Vec<String>,
        #[arg(long, value_name = "T")]
        truncation: Option<f64>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value = "classes.png")]
        out: PathBuf,
    },
    /// BigGAN: the truncation threshold sweep of one class: one column per threshold (2.0 down
    /// to 0.04 by default; the slides' set is --thresholds 0.1,0.4,0.7,1.0), rows of noise
    /// seeds.
    Threshold {
        #[command(flatten)]
        run: BigRun,
        #[arg(long = "class", value_name = "CLASS")]
        class: String,
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "2.0,1.5,1.0,0.7,0.5,0.4,0.2,0.1,0.04"
        )]
        thresholds: Vec<f64>,
        #[arg(long, default_value_t = 5)]
        rows: usize,
        /// The noise seed (the slides use 9).
        #[arg(long, default_value_t = 9)]
        seed: u64,
        #[arg(long, default_value = "threshold.png")]
        out: PathBuf,
    },
    /// BigGAN: interpolate between two noise draws and from class A's embedding to class B's
    /// (the same class: noise only), --pairs rows of --frames frames, as a grid and a GIF.
    ClassMorph {
        #[command(flatten)]
        run: BigRun,
        #[arg(long = "a-class")]
        a_class: String,
        #[arg(long = "b-class")]
        b_class: String,
        #[arg(long, default_value_t = 2)]
        pairs: usize,
        #[arg(long, default_value_t = 8)]
        frames: usize,
        #[arg(long, value_name = "T")]
        truncation: Option<f64>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value = "class-morph.png")]
        out: PathBuf,
        /// GIF path (default: --out with a .gif extension); frames run across the pairs.
        #[arg(long)]
        gif: Option<PathBuf>,
        #[arg(long, default_value_t = 120)]
        delay_ms: u32,
    },
    /// StyleGAN: the truncation sweep, one row per seed and one column per psi.
    Truncation {
        #[command(flatten)]
        run: StyleRun,
        /// Seeds, one row each.
        #[arg(long, value_delimiter = ',', default_value = "0,1,2,3")]
        seeds: Vec<u64>,
        /// psi values, one column each (default: -1 to 1 in steps of 0.25).
        #[arg(
            long,
            value_delimiter = ',',
            allow_hyphen_values = true,
            default_value = "-1,-0.75,-0.5,-0.25,0,0.25,0.5,0.75,1"
        )]
        psi: Vec<f64>,
        /// Truncate only the first K style layers.
        #[arg(long, value_name = "K")]
        cutoff: Option<usize>,
        #[arg(long, default_value = "truncation.png")]
        out: PathBuf,
    },
    /// StyleGAN: the style-mixing grid. Source A seeds across the top, source B seeds down the
    /// side; each cell is A's image with B's styles in the chosen layers.
    Mix {
        #[command(flatten)]
        run: StyleRun,
        #[arg(long, value_delimiter = ',', default_value = "0,1,2,3,4")]
        a: Vec<u64>,
        #[arg(long, value_delimiter = ',', default_value = "5,6,7")]
        b: Vec<u64>,
        /// Layers taken from B: coarse (4x4-8x8), middle (16x16-32x32), fine (64x64 and up; the
        /// last resolution of a small network) or a range A..B of style layers.
        #[arg(long, default_value = "coarse")]
        styles: String,
        #[arg(long, default_value = "mixing.png")]
        out: PathBuf,
    },
    /// StyleGAN: the noise figure. Per seed: noise in every layer, in none, in the coarse layers
    /// only, in the fine layers only, two more noise draws, and the per-pixel standard deviation
    /// over --draws draws.
    Noise {
        #[command(flatten)]
        run: StyleRun,
        #[arg(long, value_delimiter = ',', default_value = "0,1,2,3")]
        seeds: Vec<u64>,
        #[arg(long, default_value_t = 100)]
        draws: usize,
        #[arg(long, default_value = "noise.png")]
        out: PathBuf,
    },
    /// StyleGAN: morph seed A into seed B (lerp in W, or slerp in Z) as a looping GIF and a strip.
    Morph {
        #[command(flatten)]
        run: StyleRun,
        #[arg(long)]
        a: u64,
        #[arg(long)]
        b: u64,
        /// Frames from A to B, both included.
        #[arg(long, default_value_t = 40)]
        frames: usize,
        /// Interpolate the latents z spherically instead of w linearly.
        #[arg(long)]
        slerp: bool,
        #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
        psi: f64,
        /// Strip PNG (every frame in one row).
        #[arg(long, default_value = "morph.png")]
        out: PathBuf,
        /// GIF path (default: --out with a .gif extension).
        #[arg(long)]
        gif: Option<PathBuf>,
        #[arg(long, default_value_t = 80)]
        delay_ms: u32,
    },
    /// VQ-VAE-2: originals above reconstructions, then decoded with the top codes zeroed and with
    /// the bottom codes zeroed (the article's `top=0 | bottom=0`); prints MSE and PSNR over all of
    /// the input.
    Reconstruct {
        #[command(flatten)]
        run: VqRun,
        /// A PNG/JPEG image or a dataset path (default: the run's own data).
        #[arg(long)]
        input: Option<PathBuf>,
        /// Dataset format of --input when it is not an image (default: the run's data.format).
        #[arg(long)]
        format: Option<String>,
        /// Images in the figure.
        #[arg(long, default_value_t = 8)]
        n: usize,
        /// Skip this many images of the input before the figure's (the run's held-out images
        /// are its last ones).
        #[arg(long, default_value_t = 0)]
        skip: usize,
        #[arg(long, default_value = "reconstructions.png")]
        out: PathBuf,
    },
    /// VQ-VAE-2: write the top and bottom code maps of a dataset (input of the PixelCNN priors).
    Encode {
        #[command(flatten)]
        run: VqRun,
        /// Output directory (default: RUN_DIR/codes).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Dataset path (default: the run's own data).
        #[arg(long)]
        input: Option<PathBuf>,
        /// Dataset format of --input (default: the run's data.format).
        #[arg(long)]
        format: Option<String>,
    },
    /// VQ-VAE-2: morph image A into image B through the continuous latents, as a grid and a GIF.
    Interpolate {
        #[command(flatten)]
        run: VqRun,
        #[arg(long)]
        a: PathBuf,
        #[arg(long)]
        b: PathBuf,
        /// Images from A to B, both included.
        #[arg(long, default_value_t = 10)]
        frames: usize,
        /// Snap every mix to its nearest codes before decoding.
        #[arg(long)]
        requantize: bool,
        #[arg(long, default_value = "interpolation.png")]
        out: PathBuf,
        /// GIF path (default: --out with a .gif extension).
        #[arg(long)]
        gif: Option<PathBuf>,
        /// Milliseconds per GIF frame.
        #[arg(long, default_value_t = 120)]
        delay_ms: u32,
    },
    /// Score a run's samples against real images (FID, KID, IS, precision/recall), or a folder
    /// of generated images against a folder of real ones (--real/--fake). Prints a table and
    /// appends the numbers to RUN_DIR/metrics.jsonl.
    Eval {
        /// The run to score (omit with --real/--fake).
        #[arg(required_unless_present = "fake")]
        run_dir: Option<PathBuf>,
        /// Checkpoint directory (default: the latest in the run).
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// Real images: a dataset path (default: the run's own data).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Dataset format of --data (default: the run's data.format).
        #[arg(long)]
        format: Option<String>,
        /// Generated images to score (and at most this many real ones).
        #[arg(long, default_value_t = 10000)]
        n: usize,
        /// Any of fid, kid, is, pr, comma separated.
        #[arg(long, default_value = "fid,kid,is,pr")]
        metrics: String,
        /// Feature network: `mnist` (the shipped digit classifier) or a classifier .bpk from
        /// `genforge train-classifier`.
        #[arg(long, default_value = "mnist")]
        features: String,
        /// VQ-VAE-2: the prior run to sample codes from.
        #[arg(long, value_name = "PRIOR_RUN_DIR")]
        prior: Option<PathBuf>,
        /// VQ-VAE-2: softmax temperature of the priors.
        #[arg(long, default_value_t = 1.0)]
        temperature: f64,
        /// StyleGAN: truncation psi.
        #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
        psi: f64,
        /// Latent seed of the generated images.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Folder mode: real images (PNG/JPEG, any size).
        #[arg(long, requires = "fake", conflicts_with = "run_dir")]
        real: Option<PathBuf>,
        /// Folder mode: generated images.
        #[arg(long, requires = "real")]
        fake: Option<PathBuf>,
        /// Images per feature-network batch.
        #[arg(long, default_value_t = 100)]
        batch: usize,
        /// Do not read or write the real-feature cache.
        #[arg(long)]
        no_cache: bool,
        /// Score the run's last N real images against its first N instead of generated ones:
        /// the real-data floor at this sample count (nothing is appended to metrics.jsonl).
        #[arg(long, conflicts_with_all = ["real", "fake", "prior"])]
        floor: bool,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Write RUN_DIR/report.html: loss and metric curves, the sample-grid timeline, figures in
    /// the run directory, timing and the resolved config, in one self-contained file.
    Report {
        run_dir: PathBuf,
        /// Output file (default: RUN_DIR/report.html).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// One row per snapshot grid (samples/step-*.png), the first --cells images of each: the
    /// same latents followed over training (a growing run's grids all have the final size).
    Timeline {
        run_dir: PathBuf,
        /// Images per row.
        #[arg(long, default_value_t = 8)]
        cells: usize,
        /// At most this many rows, evenly spaced over the snapshots (the last included).
        #[arg(long, default_value_t = 12)]
        rows: usize,
        /// Output file (default: RUN_DIR/timeline.png).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Time feature extraction of an evaluation network (`inception` or `mnist`) on random
    /// 32x32 RGB images, resize included. Without pytorch-fid's weight file the Inception network
    /// runs on formula weights (same speed).
    BenchFeatures {
        #[arg(default_value = "inception")]
        network: String,
        #[arg(long, default_value_t = 200)]
        n: usize,
        #[arg(long, default_value_t = 50)]
        batch: usize,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Train the MNIST feature network on labelled digits and report its held-out accuracy
    /// (the shipped `crates/genforge/assets/mnist-classifier.bpk` is this command's output).
    TrainClassifier {
        /// Labelled digits (IDX files; default: the shipped MNIST).
        #[arg(long, default_value = "data/mnist")]
        data: String,
        #[arg(long, default_value_t = 3000)]
        steps: usize,
        #[arg(long, default_value_t = 64)]
        batch: usize,
        /// Fraction of the digits held out for the accuracy (the last ones).
        #[arg(long, default_value_t = 0.2)]
        holdout: f64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value = "mnist-classifier.bpk")]
        out: PathBuf,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Time train steps of a preset: GANs a D step + G step, VQ-VAE-2 one autoencoder step,
    /// PixelCNN one step of each prior (timed apart; reads the code maps at data.path).
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

/// The VQ-VAE-2 run a command reads.
#[derive(clap::Args)]
struct VqRun {
    /// A `vqvae2` run directory.
    run_dir: PathBuf,
    /// Checkpoint directory (default: the latest in the run).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    device: String,
}

impl VqRun {
    fn load(
        &self,
    ) -> Result<(
        TrainConfig,
        genforge::models::vqvae2::VqVae2,
        PathBuf,
        genforge::burn::tensor::Device,
    )> {
        let device = genforge::device::parse(&self.device)?;
        let (cfg, model, ckpt) =
            genforge::sample::vq::load_vqvae(&self.run_dir, self.checkpoint.as_deref(), &device)?;
        tracing::info!("checkpoint {}", ckpt.display());
        Ok((cfg, model, ckpt, device))
    }
}

/// The StyleGAN run a command reads.
#[derive(clap::Args)]
struct StyleRun {
    /// A `stylegan` run directory.
    run_dir: PathBuf,
    /// Checkpoint directory (default: the latest in the run).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// The BigGAN run a command reads.
#[derive(clap::Args)]
struct BigRun {
    /// A `biggan` run directory.
    run_dir: PathBuf,
    /// Checkpoint directory (default: the latest in the run).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    device: String,
}

impl BigRun {
    /// The generator and the class names of the run's data.
    fn load(&self) -> Result<(genforge::models::biggan::Generator, Vec<String>)> {
        let device = genforge::device::parse(&self.device)?;
        let (cfg, g, ckpt) =
            genforge::sample::biggan::load(&self.run_dir, self.checkpoint.as_deref(), &device)?;
        tracing::info!("checkpoint {}", ckpt.display());
        let classes = cfg.model.num_classes().expect("a BigGAN run");
        Ok((g, genforge::sample::biggan::class_names(&cfg, classes)))
    }
}

fn check_truncation(t: Option<f64>) -> Result<()> {
    if let Some(t) = t {
        genforge::sample::biggan::check_threshold(t)?;
    }
    Ok(())
}

impl StyleRun {
    fn load(&self) -> Result<genforge::models::stylegan::Generator> {
        let device = genforge::device::parse(&self.device)?;
        let (_, g, ckpt) =
            genforge::sample::stylegan::load(&self.run_dir, self.checkpoint.as_deref(), &device)?;
        tracing::info!("checkpoint {}", ckpt.display());
        Ok(g)
    }
}

fn save_grid(images: genforge::burn::tensor::Tensor<4>, cols: usize, out: &Path) -> Result<()> {
    genforge::sample::grid::save_png(&genforge::sample::grid::make_grid(images, Some(cols)), out)?;
    tracing::info!("wrote {}", out.display());
    Ok(())
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

    fn step(&mut self, step: u64, values: &[(&'static str, f64)], img_per_s: f64) {
        let mut msg = format!("{img_per_s:.1} img/s");
        for (k, v) in values.iter().take(3) {
            msg.push_str(&format!("  {k} {v:.4}"));
        }
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
            prior,
            temperature,
            label,
            psi,
            cutoff,
            class,
            truncation,
            attention,
            device,
        } => {
            let device = genforge::device::parse(&device)?;
            if let Some(prior) = prior {
                return sample_vqvae(
                    &run_dir,
                    &prior,
                    checkpoint.as_deref(),
                    genforge::sample::vq::SampleOptions {
                        label_offset: 0,
                        n,
                        temperature,
                        seed,
                        label,
                    },
                    &out,
                    &device,
                );
            }
            let cfg = genforge::run::open(&run_dir)?;
            if cfg.model.kind() != genforge::models::Kind::Gan {
                bail!(
                    "{} is a {} run: sample a VQ-VAE-2 run with --prior PRIOR_RUN_DIR \
                     (a `genforge train pixelcnn-...` run on its codes)",
                    run_dir.display(),
                    cfg.model.family()
                );
            }
            if (psi != 1.0 || cutoff.is_some()) && cfg.model.as_stylegan().is_none() {
                bail!(
                    "--psi and --cutoff are StyleGAN's truncation trick; {} is a {} run",
                    run_dir.display(),
                    cfg.model.family()
                );
            }
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
                let z_dim = cfg.model.z_dim().expect("a GAN run");
                let z = genforge::sample::latents(5, z_dim, seed, &device);
                let fig = genforge::sample::attention::figure(&g, d.as_ref(), net, z)?;
                genforge::sample::grid::save_png(&fig, &out)?;
                tracing::info!("wrote {}", out.display());
                return Ok(());
            }
            if n == 0 {
                bail!("--n must be at least 1");
            }
            let z =
                genforge::sample::latents(n, cfg.model.z_dim().expect("a GAN run"), seed, &device);
            if (class.is_some() || truncation.is_some())
                && !matches!(g, genforge::models::Generator::Big(_))
            {
                bail!(
                    "--class and --truncation are BigGAN's; {} is a {} run",
                    run_dir.display(),
                    cfg.model.family()
                );
            }
            let images = match &g {
                genforge::models::Generator::Big(b) => {
                    check_truncation(truncation)?;
                    let classes = cfg.model.num_classes().expect("a BigGAN run");
                    let names = genforge::sample::biggan::class_names(&cfg, classes);
                    let class = class
                        .map(|c| genforge::sample::biggan::parse_class(&c, &names))
                        .transpose()?;
                    genforge::sample::biggan::sample(b, n, class, truncation, seed)
                }
                genforge::models::Generator::Style(s) => {
                    genforge::sample::stylegan::check_psi(psi)?;
                    if let Some(k) = cutoff {
                        genforge::sample::stylegan::check_layers(s, &(0..k.max(1)))?;
                    }
                    s.generate(z, psi, cutoff, &mut genforge::rng::Rng::new(seed))
                }
                g => g.forward(z, None),
            };
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
        Command::Classes {
            run,
            per_class,
            classes,
            truncation,
            seed,
            out,
        } => {
            check_truncation(truncation)?;
            let (g, names) = run.load()?;
            let picked: Vec<usize> = if classes.is_empty() {
                (0..names.len()).collect()
            } else {
                classes
                    .iter()
                    .map(|c| genforge::sample::biggan::parse_class(c, &names))
                    .collect::<std::result::Result<_, _>>()?
            };
            if per_class == 0 {
                bail!("--per-class must be at least 1");
            }
            let images =
                genforge::sample::biggan::class_grid(&g, &picked, per_class, truncation, seed);
            for (row, c) in picked.iter().enumerate() {
                tracing::info!("row {row}: class {c} ({})", names[*c]);
            }
            save_grid(images, per_class, &out)?;
        }
        Command::Threshold {
            run,
            class,
            thresholds,
            rows,
            seed,
            out,
        } => {
            let (g, names) = run.load()?;
            let c = genforge::sample::biggan::parse_class(&class, &names)?;
            if rows == 0 || thresholds.is_empty() {
                bail!("--rows and --thresholds must not be empty");
            }
            let images = genforge::sample::biggan::threshold_sweep(&g, c, &thresholds, rows, seed)?;
            save_grid(images, thresholds.len(), &out)?;
        }
        Command::ClassMorph {
            run,
            a_class,
            b_class,
            pairs,
            frames,
            truncation,
            seed,
            out,
            gif,
            delay_ms,
        } => {
            check_truncation(truncation)?;
            let (g, names) = run.load()?;
            let a = genforge::sample::biggan::parse_class(&a_class, &names)?;
            let b = genforge::sample::biggan::parse_class(&b_class, &names)?;
            let images =
                genforge::sample::biggan::interpolation(&g, a, b, pairs, frames, truncation, seed)?;
            save_grid(images.clone(), frames, &out)?;
            let gif = gif.unwrap_or_else(|| out.with_extension("gif"));
            genforge::sample::gif::save_gif(images, &gif, delay_ms, 4)?;
            tracing::info!("wrote {}", gif.display());
        }
        Command::Truncation {
            run,
            seeds,
            psi,
            cutoff,
            out,
        } => {
            let g = run.load()?;
            let images = genforge::sample::stylegan::truncation_sweep(&g, &seeds, &psi, cutoff)?;
            save_grid(images, psi.len(), &out)?;
        }
        Command::Mix {
            run,
            a,
            b,
            styles,
            out,
        } => {
            let g = run.load()?;
            if a.is_empty() || b.is_empty() {
                bail!("--a and --b need at least one seed each");
            }
            let layers = genforge::sample::stylegan::style_range(&g, &styles)?;
            tracing::info!(
                "B's styles in layers {}..{} of {}",
                layers.start,
                layers.end,
                g.num_layers()
            );
            let (images, cols) = genforge::sample::stylegan::mixing_grid(&g, &a, &b, layers)?;
            save_grid(images, cols, &out)?;
        }
        Command::Noise {
            run,
            seeds,
            draws,
            out,
        } => {
            let g = run.load()?;
            let (images, cols) = genforge::sample::stylegan::noise_figure(&g, &seeds, draws)?;
            save_grid(images, cols, &out)?;
        }
        Command::Morph {
            run,
            a,
            b,
            frames,
            slerp,
            psi,
            out,
            gif,
            delay_ms,
        } => {
            let g = run.load()?;
            let images = genforge::sample::stylegan::morph(&g, a, b, frames, slerp, psi)?;
            save_grid(images.clone(), frames, &out)?;
            let gif = gif.unwrap_or_else(|| out.with_extension("gif"));
            genforge::sample::gif::save_gif(images, &gif, delay_ms, 4)?;
            tracing::info!("wrote {}", gif.display());
        }
        Command::Reconstruct {
            run,
            input,
            format,
            n,
            skip,
            out,
        } => {
            let (cfg, model, _, device) = run.load()?;
            let data = load_input(&cfg, input.as_deref(), format.as_deref())?;
            let mse =
                genforge::train::autoencoder::AutoencoderTrainer::eval_mse(&model, &data, 0, 64);
            println!(
                "{} images: reconstruction MSE {mse:.5}  PSNR {:.2} dB",
                data.len(),
                genforge::train::autoencoder::psnr(mse)
            );
            if skip >= data.len() {
                bail!(
                    "--skip {skip} leaves none of the {} input images",
                    data.len()
                );
            }
            let k = n.clamp(1, data.len() - skip);
            let idx: Vec<usize> = (skip..skip + k).collect();
            let (rows, _) =
                genforge::sample::vq::reconstruction_rows(&model, data.tensor(&idx, &device));
            genforge::sample::grid::save_png(
                &genforge::sample::grid::make_grid(rows, Some(k)),
                &out,
            )?;
            tracing::info!(
                "wrote {} (rows: originals, reconstructions, top=0, bottom=0)",
                out.display()
            );
        }
        Command::Encode {
            run,
            out,
            input,
            format,
        } => {
            let (cfg, model, ckpt, _) = run.load()?;
            let run_dir = &run.run_dir;
            let data = load_input(&cfg, input.as_deref(), format.as_deref())?;
            let out = out.unwrap_or_else(|| run_dir.join("codes"));
            let started = Instant::now();
            let codes = genforge::sample::vq::encode_dataset(&model, &data, run_dir, &ckpt, 128)?;
            codes.write(&out)?;
            let m = &codes.manifest;
            tracing::info!(
                "wrote {} code maps (top {}x{}, bottom {}x{}) to {} in {:.1} s",
                m.count,
                m.top[0],
                m.top[1],
                m.bottom[0],
                m.bottom[1],
                out.display(),
                started.elapsed().as_secs_f64()
            );
        }
        Command::Interpolate {
            run,
            a,
            b,
            frames,
            requantize,
            out,
            gif,
            delay_ms,
        } => {
            let (cfg, model, _, device) = run.load()?;
            let one = |p: &Path| -> Result<_> {
                let d = load_input(&cfg, Some(p), None)?;
                Ok(d.tensor(&[0], &device))
            };
            let images =
                genforge::sample::vq::interpolate(&model, one(&a)?, one(&b)?, frames, requantize);
            let k = images.dims()[0];
            genforge::sample::grid::save_png(
                &genforge::sample::grid::make_grid(images.clone(), Some(k)),
                &out,
            )?;
            let gif = gif.unwrap_or_else(|| out.with_extension("gif"));
            genforge::sample::gif::save_gif(images, &gif, delay_ms, 4)?;
            tracing::info!("wrote {} and {}", out.display(), gif.display());
        }
        Command::Eval {
            run_dir,
            checkpoint,
            data,
            format,
            n,
            metrics,
            features,
            prior,
            temperature,
            psi,
            seed,
            real,
            fake,
            batch,
            no_cache,
            floor,
            device,
        } => {
            let device = genforge::device::parse(&device)?;
            let opts = genforge::metrics::eval::EvalOptions {
                n,
                metrics: genforge::metrics::Metric::parse_list(&metrics)?,
                batch: batch.max(1),
                ..Default::default()
            };
            if n == 0 {
                bail!("--n must be at least 1");
            }
            let cache = if no_cache {
                None
            } else {
                genforge::metrics::cache::default_dir()
            };
            let mut bars = EvalBars::default();
            let mut progress = |set: &str, done: usize, total: usize| bars.update(set, done, total);
            let scores = match (run_dir, real, fake) {
                (_, Some(real), Some(fake)) => genforge::metrics::eval::evaluate_folders(
                    &real,
                    &fake,
                    &features,
                    cache.as_deref(),
                    &opts,
                    &device,
                    &mut progress,
                )?,
                (Some(run_dir), _, _) => {
                    let format = format.map(|f| f.parse()).transpose()?;
                    let req = genforge::metrics::eval::RunEval {
                        run_dir: &run_dir,
                        checkpoint: checkpoint.as_deref(),
                        prior: prior.as_deref(),
                        psi,
                        temperature,
                        seed,
                        data: data.as_deref(),
                        format,
                        features: &features,
                        cache_dir: cache.as_deref(),
                        opts,
                    };
                    if floor {
                        genforge::metrics::eval::evaluate_floor(&req, &device, &mut progress)?
                    } else {
                        let (scores, record) =
                            genforge::metrics::eval::evaluate_run(&req, &device, &mut progress)?;
                        let file = run_dir.join(genforge::metrics::eval::METRICS_FILE);
                        tracing::info!("appended to {}: {record}", file.display());
                        scores
                    }
                }
                _ => bail!("give a RUN_DIR, or --real DIR and --fake DIR"),
            };
            bars.finish();
            println!(
                "{} {} vs {} real images, {} features",
                scores.n_fake,
                if floor { "held-out real" } else { "generated" },
                scores.n_real,
                features
            );
            for (name, value) in scores.rows() {
                println!("{name:>10}  {value}");
            }
            for line in scores.class_rows() {
                println!("{line}");
            }
        }
        Command::Report { run_dir, out } => {
            let path = genforge::report::write(&run_dir, out.as_deref())?;
            println!("wrote {}", path.display());
        }
        Command::Timeline {
            run_dir,
            cells,
            rows,
            out,
        } => {
            if cells == 0 || rows == 0 {
                bail!("--cells and --rows must be at least 1");
            }
            let (img, steps) = genforge::sample::timeline::timeline(&run_dir, cells, rows)?;
            let out = out.unwrap_or_else(|| run_dir.join("timeline.png"));
            genforge::sample::grid::save_png(&img, &out)?;
            let steps: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
            println!("wrote {} (rows: steps {})", out.display(), steps.join(", "));
        }
        Command::BenchFeatures {
            network,
            n,
            batch,
            device,
        } => {
            let device = genforge::device::parse(&device)?;
            if n == 0 || batch == 0 {
                bail!("--n and --batch must be at least 1");
            }
            let r = genforge::bench::features(&network, n, batch, &device)?;
            println!(
                "{}: {:.1} img/s ({} images, batch {}, peak RSS {:.0} MiB{})",
                r.network,
                r.img_per_s,
                r.images,
                r.batch,
                r.peak_rss_mib,
                if r.formula_weights {
                    ", formula weights"
                } else {
                    ""
                }
            );
        }
        Command::TrainClassifier {
            data,
            steps,
            batch,
            holdout,
            seed,
            out,
            device,
        } => {
            use genforge::metrics::mnist_classifier;
            let device = genforge::device::parse(&device)?;
            let path = genforge::config::resolve_shipped(&data);
            let cfg = genforge::data::DataConfig::default();
            let all = genforge::data::load_input(
                &path,
                genforge::data::DataFormat::Idx,
                &cfg,
                1,
                mnist_classifier::RESOLUTION,
            )?;
            let (train, held) = all.split_holdout(holdout);
            let Some(held) = held else {
                bail!("--holdout {holdout} holds out no digits; use a fraction such as 0.2")
            };
            if train.len() < batch {
                bail!(
                    "{} training digits, fewer than --batch {batch}",
                    train.len()
                );
            }
            let t0 = Instant::now();
            let net = mnist_classifier::train(&train, steps, batch, seed, &device, |step, loss| {
                tracing::info!("step {step}/{steps}: cross-entropy {loss:.4}");
            });
            let acc = mnist_classifier::accuracy(&net, &held, &device);
            genforge::run::checkpoint::save_module(net, &out)?;
            println!(
                "held-out accuracy {:.2}% on {} digits ({} trained on, {steps} steps, {:.0} s); wrote {}",
                acc * 100.0,
                held.len(),
                train.len(),
                t0.elapsed().as_secs_f64(),
                out.display()
            );
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
                let total: f64 = report.phases.iter().map(|p| p.1).sum();
                for (name, s) in &report.phases {
                    println!("  {name:<11} {s:>7.3} s  {:>5.1}%", 100.0 * s / total);
                }
            }
        }
    }
    Ok(())
}

/// The images a VQ-VAE-2 command reads: `input` (an image or a dataset) or the run's own data.
fn load_input(
    cfg: &TrainConfig,
    input: Option<&Path>,
    format: Option<&str>,
) -> Result<genforge::data::Dataset> {
    let format = match format {
        Some(f) => f.parse()?,
        None => cfg.data.format,
    };
    let path = match input {
        Some(p) => p.to_path_buf(),
        None => cfg.resolve_data_path(),
    };
    let (channels, resolution) = cfg.model.image_shape().expect("an image family");
    Ok(genforge::data::load_input(
        &path, format, &cfg.data, channels, resolution,
    )?)
}

fn sample_vqvae(
    run_dir: &Path,
    prior: &Path,
    checkpoint: Option<&Path>,
    opts: genforge::sample::vq::SampleOptions,
    out: &Path,
    device: &genforge::burn::tensor::Device,
) -> Result<()> {
    if opts.n == 0 {
        bail!("--n must be at least 1");
    }
    let (vq_cfg, vq, _) = genforge::sample::vq::load_vqvae(run_dir, checkpoint, device)?;
    let (prior_cfg, top, bottom, ckpt) = genforge::sample::vq::load_priors(prior, device)?;
    tracing::info!("prior checkpoint {}", ckpt.display());
    let (images, t) = genforge::sample::vq::sample(&vq, &vq_cfg, &prior_cfg, &top, &bottom, &opts)?;
    genforge::sample::grid::save_png(&genforge::sample::grid::make_grid(images, None), out)?;
    println!(
        "{} samples in {:.2} s ({:.2} img/s): top codes {:.2} s, bottom codes {:.2} s, decode {:.2} s",
        opts.n,
        t.total(),
        opts.n as f64 / t.total(),
        t.top_seconds,
        t.bottom_seconds,
        t.decode_seconds
    );
    tracing::info!("wrote {}", out.display());
    Ok(())
}

/// One progress bar per image set of an evaluation (plain log lines when not on a terminal).
#[derive(Default)]
struct EvalBars {
    set: String,
    bar: Option<ProgressBar>,
    last_log: Option<Instant>,
}

impl EvalBars {
    fn update(&mut self, set: &str, done: usize, total: usize) {
        if self.set != set {
            self.finish();
            self.set = set.to_string();
            if std::io::stderr().is_terminal() {
                let bar = ProgressBar::new(total as u64);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{msg:>10} [{bar:30}] {pos}/{len} {per_sec} eta {eta}",
                    )
                    .expect("template")
                    .progress_chars("=> "),
                );
                bar.set_message(format!("{set} images"));
                self.bar = Some(bar);
            }
        }
        match &self.bar {
            Some(bar) => bar.set_position(done as u64),
            None => {
                if done == total || self.last_log.is_none_or(|t| t.elapsed().as_secs() >= 10) {
                    tracing::info!("features of {set} images: {done}/{total}");
                    self.last_log = Some(Instant::now());
                }
            }
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// glibc's defaults hand a step's large activation buffers back to the kernel and fault them in
/// afresh on the next step (allocations above a dynamic threshold, and always above 32 MiB, are
/// `mmap`ed, and the heap top is trimmed above 128 KiB). Serving every allocation from the heap
/// and never trimming it took the DCGAN CPU step about 9% lower and the SAGAN step (whose
/// attention maps take 256 MiB each) about 25% lower, at the same peak memory (BENCHMARKS.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only sets allocator parameters; called before any other thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}

fn main() -> ExitCode {
    keep_freed_memory();
    // A bug should still read as one error line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("error: internal error ({info}); please report it with the command you ran");
    }));
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
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
