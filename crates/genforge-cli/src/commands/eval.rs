//! Evaluation: FID/KID/IS/PR of a run or two folders, the feature-network benchmark, the MNIST
//! classifier the digit metrics use.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use genforge::device;
use genforge::metrics::eval as evaluation;
use genforge::metrics::mnist_classifier;

use crate::progress::EvalBars;

/// Score a run's samples against real images (FID, KID, IS, precision/recall), or a folder
/// of generated images against a folder of real ones (--real/--fake). Prints a table and
/// appends the numbers to RUN_DIR/metrics.jsonl.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// The run to score (omit with --real/--fake).
    #[arg(required_unless_present = "fake")]
    pub run_dir: Option<PathBuf>,
    /// Checkpoint directory (default: the latest in the run).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Real images: a dataset path (default: the run's own data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Dataset format of --data (default: the run's data.format).
    #[arg(long)]
    pub format: Option<String>,
    /// Generated images to score (and at most this many real ones).
    #[arg(long, default_value_t = 10000, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub n: usize,
    /// Any of fid, kid, is, pr, comma separated; or `lpips` alone with --real/--fake: the mean
    /// LPIPS of the two folders' images paired in name order; or `ppl` alone for a StyleGAN2
    /// run: the perceptual path length in W (NVlabs' ppl_wend; --n pairs).
    #[arg(long, default_value = "fid,kid,is,pr")]
    pub metrics: String,
    /// LPIPS and PPL: torchvision's VGG16 weights (vgg16-397923af.pth; default: $GENFORGE_VGG16,
    /// then the cache directory).
    #[arg(long)]
    pub vgg16: Option<PathBuf>,
    /// PPL: crop the images to their centre first (NVlabs does for FFHQ faces).
    #[arg(long)]
    pub crop: bool,
    /// Feature network: `mnist` (the shipped digit classifier), `emoji` (the shipped emoji
    /// classifier), `inception`, or a classifier .bpk from `genforge train-classifier`; `auto`:
    /// `emoji` for runs on the shipped emoji, else `mnist`.
    #[arg(long, default_value = "auto")]
    pub features: String,
    /// VQ-VAE-2: the prior run to sample codes from.
    #[arg(long, value_name = "PRIOR_RUN_DIR")]
    pub prior: Option<PathBuf>,
    /// VQ-VAE-2: softmax temperature of the priors (default: the prior run's
    /// `sample.temperature`, 1 unless its preset says).
    #[arg(long)]
    pub temperature: Option<f64>,
    /// StyleGAN: truncation psi (default: the run's `sample.psi`, 1 unless its preset says).
    #[arg(long, allow_hyphen_values = true)]
    pub psi: Option<f64>,
    /// BigGAN: draw the latents from the normal truncated at this threshold.
    #[arg(long, conflicts_with = "sweep")]
    pub truncation: Option<f64>,
    /// The truncation trade-off: score the run at each of these BigGAN thresholds (the slides':
    /// 2,1.5,1,0.7,0.5,0.4,0.2,0.1,0.04), StyleGAN psi values, or latent variances
    /// (`sample.z_var`) of DCGAN, SAGAN and ViTGAN with latent tokens, comma separated; the
    /// curve goes into `genforge report`.
    #[arg(long, value_delimiter = ',', num_args = 1.., conflicts_with_all = ["floor", "real", "fake", "psi"])]
    pub sweep: Vec<f64>,
    /// Latent seed of the generated images.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = crate::whole::<u64>)]
    pub seed: u64,
    /// Folder mode: real images (PNG/JPEG, any size).
    #[arg(long, requires = "fake", conflicts_with = "run_dir")]
    pub real: Option<PathBuf>,
    /// Folder mode: generated images.
    #[arg(long, requires = "real")]
    pub fake: Option<PathBuf>,
    /// Images per feature-network batch.
    #[arg(long, default_value_t = 100, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub batch: usize,
    /// Do not read or write the real-feature cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Score the run's last N real images against its first N instead of generated ones:
    /// the real-data floor at this sample count (nothing is appended to metrics.jsonl).
    #[arg(long, conflicts_with_all = ["real", "fake", "prior"])]
    pub floor: bool,
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn eval(args: EvalArgs) -> Result<()> {
    let EvalArgs {
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
        truncation,
        sweep,
        seed,
        real,
        fake,
        batch,
        no_cache,
        floor,
        device,
        vgg16,
        crop,
    } = args;
    let device = device::parse(&device)?;
    if metrics.split(',').any(|m| m.trim() == "lpips") {
        let (Some(real), Some(fake), true) = (&real, &fake, metrics.trim() == "lpips") else {
            bail!(
                "config: --metrics lpips compares paired images: give it alone, with --real DIR \
                 and --fake DIR"
            );
        };
        let net = genforge::metrics::lpips::Lpips::load(vgg16.as_deref(), &device)?;
        let (mean, std, pairs) = genforge::metrics::lpips::folders(&net, real, fake, n, &device)?;
        println!("{pairs} image pairs");
        println!("{:>10}  {mean:.4} ± {std:.4}", "LPIPS");
        return Ok(());
    }
    if metrics.split(',').any(|m| m.trim() == "ppl") {
        let (Some(run_dir), true) = (&run_dir, metrics.trim() == "ppl") else {
            bail!("config: --metrics ppl scores a StyleGAN2 run: give it alone, with a RUN_DIR");
        };
        let net = genforge::metrics::lpips::Lpips::load(vgg16.as_deref(), &device)?;
        let (cfg, g, _) =
            genforge::sample::load_generator(run_dir, checkpoint.as_deref(), &device)?;
        let genforge::models::Generator::Style2(g) = g else {
            bail!(
                "config: {} is a {} run; PPL is computed for stylegan2 runs",
                run_dir.display(),
                cfg.model.family()
            );
        };
        let opts = genforge::metrics::ppl::PplOptions {
            n,
            crop,
            seed,
            batch: batch.clamp(1, 16),
            ..Default::default()
        };
        let mut bars = EvalBars::default();
        let value = genforge::metrics::ppl::ppl_wend(&g, &net, &opts, |done, total| {
            bars.update("path pairs", done, total)
        })?;
        bars.finish();
        println!(
            "{n} latent pairs, epsilon 1e-4, W, path ends{}",
            if crop { ", cropped" } else { "" }
        );
        println!("{:>10}  {value:.2}", "PPL");
        return Ok(());
    }
    let opts = evaluation::EvalOptions {
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
    // The network `auto` picks, for the summary line.
    let shown = match (&run_dir, features.as_str()) {
        (Some(dir), "auto") => genforge::run::open(dir)
            .map(|cfg| genforge::metrics::features::resolve("auto", &cfg.data))
            .unwrap_or_else(|_| features.clone()),
        (_, "auto") => "mnist".to_string(),
        _ => features.clone(),
    };
    // The truncation, latent variance or temperature the run was drawn at, where not 1.
    let mut drawn_at = String::new();
    let scores = match (run_dir, real, fake) {
        (_, Some(real), Some(fake)) => evaluation::evaluate_folders(
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
            let req = evaluation::RunEval {
                run_dir: &run_dir,
                checkpoint: checkpoint.as_deref(),
                prior: prior.as_deref(),
                psi,
                truncation,
                temperature,
                seed,
                data: data.as_deref(),
                format,
                features: &features,
                cache_dir: cache.as_deref(),
                opts,
                z_var: None,
                sweep: None,
            };
            if !sweep.is_empty() {
                let rows = evaluation::evaluate_sweep(&req, &sweep, &device, &mut progress)?;
                bars.finish();
                print_sweep(&rows, &run_dir);
                return Ok(());
            }
            if floor {
                evaluation::evaluate_floor(&req, &device, &mut progress)?
            } else {
                let (scores, record) = evaluation::evaluate_run(&req, &device, &mut progress)?;
                for key in ["psi", "temperature", "z_var"] {
                    if let Some(v) = record.get(key) {
                        drawn_at = format!(", {key} {v}");
                    }
                }
                let file = run_dir.join(evaluation::METRICS_FILE);
                tracing::info!("appended to {}: {record}", file.display());
                scores
            }
        }
        _ => bail!("give a RUN_DIR, or --real DIR and --fake DIR"),
    };
    bars.finish();
    println!(
        "{} {} vs {} real images, {} features{drawn_at}",
        scores.n_fake,
        if floor { "held-out real" } else { "generated" },
        scores.n_real,
        shown
    );
    for (name, value) in scores.rows() {
        println!("{name:>10}  {value}");
    }
    for line in scores.class_rows() {
        println!("{line}");
    }
    Ok(())
}

/// The sweep as a table, one row per value.
fn print_sweep(rows: &[(f64, evaluation::Scores)], run_dir: &std::path::Path) {
    println!(
        "{:>10}  {:>9}  {:>7}  {:>9}  {:>6}",
        "value", "FID", "IS", "precision", "recall"
    );
    let f = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    for (v, s) in rows {
        println!(
            "{v:>10}  {:>9}  {:>7}  {:>9}  {:>6}",
            f(s.fid),
            f(s.is),
            f(s.precision),
            f(s.recall)
        );
    }
    println!(
        "appended to {}; `genforge report {}` draws the curve",
        run_dir.join(evaluation::METRICS_FILE).display(),
        run_dir.display()
    );
}

/// Time feature extraction of an evaluation network (`inception` or `mnist`) on random
/// 32x32 RGB images, resize included. Without pytorch-fid's weight file the Inception network
/// runs on formula weights (same speed).
#[derive(clap::Args)]
pub struct BenchFeaturesArgs {
    #[arg(default_value = "inception")]
    pub network: String,
    #[arg(long, default_value_t = 200, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub n: usize,
    #[arg(long, default_value_t = 50, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub batch: usize,
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn bench_features(args: BenchFeaturesArgs) -> Result<()> {
    let BenchFeaturesArgs {
        network,
        n,
        batch,
        device,
    } = args;
    let device = device::parse(&device)?;
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
    Ok(())
}

/// Train the MNIST feature network on labelled digits and report its held-out accuracy
/// (the shipped `crates/genforge/assets/mnist-classifier.bpk` is this command's output).
#[derive(clap::Args)]
pub struct TrainClassifierArgs {
    /// Labelled images (default: the shipped MNIST digits;
    /// `data/emoji/emoji-32x32-binary.tar.gz` for the shipped emoji).
    #[arg(long, default_value = "data/mnist")]
    pub data: String,
    /// The data's format: `idx` (digits, grey) or `cifar10` / `folder` (RGB); default: `cifar10`
    /// for a path naming emoji, else `idx`.
    #[arg(long)]
    pub format: Option<String>,
    #[arg(long, default_value_t = 3000, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub steps: usize,
    #[arg(long, default_value_t = 64, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub batch: usize,
    /// Fraction of the digits held out for the accuracy (the last ones).
    #[arg(long, default_value_t = 0.2)]
    pub holdout: f64,
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = crate::whole::<u64>)]
    pub seed: u64,
    #[arg(long, default_value = "mnist-classifier.bpk")]
    pub out: PathBuf,
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn train_classifier(args: TrainClassifierArgs) -> Result<()> {
    let TrainClassifierArgs {
        data,
        format,
        steps,
        batch,
        holdout,
        seed,
        out,
        device,
    } = args;
    let device = device::parse(&device)?;
    let path = genforge::config::resolve_shipped(&data);
    let cfg = genforge::data::DataConfig::default();
    let format: genforge::data::DataFormat = match format {
        Some(f) => f.parse()?,
        None if data.contains("emoji") => "cifar10".parse()?,
        None => genforge::data::DataFormat::Idx,
    };
    let channels = if format == genforge::data::DataFormat::Idx {
        1
    } else {
        3
    };
    let all =
        genforge::data::load_input(&path, format, &cfg, channels, mnist_classifier::RESOLUTION)?;
    let (train, held) = all.split_holdout(holdout);
    let Some(held) = held else {
        bail!("--holdout {holdout} holds out no images; use a fraction such as 0.2")
    };
    if train.len() < batch {
        bail!(
            "{} training images, fewer than --batch {batch}",
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
        "held-out accuracy {:.2}% on {} images ({} trained on, {steps} steps, {:.0} s); wrote {}",
        acc * 100.0,
        held.len(),
        train.len(),
        t0.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(())
}

/// Time a GAN run's sampling: images/s of its sampling generator, loaded once.
#[derive(clap::Args)]
pub struct BenchSampleArgs {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Images per batch.
    #[arg(long, default_value_t = 8, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub batch: usize,
    /// Timed batches (after one warm-up batch).
    #[arg(long, default_value_t = 3, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub reps: usize,
    /// BigGAN: truncation threshold of the latents.
    #[arg(long)]
    pub truncation: Option<f64>,
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn bench_sample(args: BenchSampleArgs) -> Result<()> {
    if args.batch == 0 || args.reps == 0 {
        bail!("--batch and --reps must be at least 1");
    }
    let device = device::parse(&args.device)?;
    let r = genforge::bench::sampling(
        &args.run_dir,
        args.batch,
        args.reps,
        args.truncation,
        &device,
    )?;
    println!(
        "sampling: {:.2} img/s ({} batches of {}, peak RSS {:.0} MiB)",
        r.img_per_s, r.reps, r.batch, r.peak_rss_mib
    );
    Ok(())
}
