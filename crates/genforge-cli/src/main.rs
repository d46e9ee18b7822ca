//! The `genforge` command line: argument parsing and progress display only; the work is in the
//! `genforge` library.

mod commands;
mod progress;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use genforge::cpu::settings::KernelSettings;

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
    Train(commands::train::TrainArgs),
    /// List the shipped presets.
    Presets,
    /// Time train steps of a preset: GANs a D step + G step, VQ-VAE-2 one autoencoder step,
    /// PixelCNN one step of each prior (timed apart; reads the code maps at data.path).
    Bench(commands::train::BenchArgs),
    /// Generate images from a trained run.
    Sample(commands::sample::SampleArgs),
    /// BigGAN: a grid with one row per class.
    Classes(commands::biggan::ClassesArgs),
    /// BigGAN: the truncation threshold sweep of one class: one column per threshold (2.0 down
    /// to 0.04 by default; the slides' set is --thresholds 0.1,0.4,0.7,1.0), rows of noise
    /// seeds.
    Threshold(commands::biggan::ThresholdArgs),
    /// BigGAN: interpolate between two noise draws and from class A's embedding to class B's
    /// (the same class: noise only), --pairs rows of --frames frames, as a grid and a GIF.
    ClassMorph(commands::biggan::ClassMorphArgs),
    /// StyleGAN: the truncation sweep, one row per seed and one column per psi.
    Truncation(commands::stylegan::TruncationArgs),
    /// StyleGAN: the style-mixing grid. Source A seeds across the top, source B seeds down the
    /// side; each cell is A's image with B's styles in the chosen layers.
    Mix(commands::stylegan::MixArgs),
    /// StyleGAN: the noise figure. Per seed: noise in every layer, in none, in the coarse layers
    /// only, in the fine layers only, two more noise draws, and the per-pixel standard deviation
    /// over --draws draws.
    Noise(commands::stylegan::NoiseArgs),
    /// StyleGAN: morph seed A into seed B (lerp in W, or slerp in Z) as a looping GIF and a strip.
    Morph(commands::stylegan::MorphArgs),
    /// StyleGAN2: project a real image into W (NVlabs' projector.py, with LPIPS-VGG); writes the
    /// projection, its w as .npy and a GIF of the optimisation.
    Project(commands::stylegan::ProjectArgs),
    /// VQ-VAE-2: originals above reconstructions, then decoded with the top codes zeroed and with
    /// the bottom codes zeroed (the article's `top=0 | bottom=0`); prints MSE and PSNR over all of
    /// the input.
    Reconstruct(commands::vq::ReconstructArgs),
    /// VQ-VAE-2: write the top and bottom code maps of a dataset (input of the PixelCNN priors).
    Encode(commands::vq::EncodeArgs),
    /// VQ-VAE-2: morph image A into image B through the continuous latents, as a grid and a GIF.
    Interpolate(commands::vq::InterpolateArgs),
    /// Score a run's samples against real images (FID, KID, IS, precision/recall), or a folder
    /// of generated images against a folder of real ones (--real/--fake). Prints a table and
    /// appends the numbers to RUN_DIR/metrics.jsonl.
    Eval(commands::eval::EvalArgs),
    /// Time feature extraction of an evaluation network (`inception` or `mnist`) on random
    /// 32x32 RGB images, resize included. Without pytorch-fid's weight file the Inception network
    /// runs on formula weights (same speed).
    BenchFeatures(commands::eval::BenchFeaturesArgs),
    /// Time a GAN run's sampling generator: images/s over --reps batches of --batch images
    /// after a warm-up batch, loaded once.
    BenchSample(commands::eval::BenchSampleArgs),
    /// Train a classifier feature network on labelled images and report its held-out accuracy
    /// (the shipped `crates/genforge/assets/mnist-classifier.bpk` and `emoji-classifier.bpk`
    /// are this command's output on the shipped digits and emoji).
    TrainClassifier(commands::eval::TrainClassifierArgs),
    /// Write RUN_DIR/report.html: loss and metric curves, the sample-grid timeline, figures in
    /// the run directory, timing and the resolved config, in one self-contained file.
    Report(commands::report::ReportArgs),
    /// One row per snapshot grid (samples/step-*.png), the first --cells images of each: the
    /// same latents followed over training (a growing run's grids all have the final size).
    Timeline(commands::report::TimelineArgs),
    /// Turn a network trained elsewhere into a run directory (BigGAN-PyTorch's G_ema.pth /
    /// G.pth and its TF-Hub conversion), on which sample, classes, threshold, class-morph, eval
    /// and report work.
    Import(commands::import::ImportArgs),
}

/// A count, seed or index: a whole number of 0 or more, with a plain message for anything else
/// (clap's own tip to write `-- -3` does not apply to these options).
fn whole<T: std::str::FromStr>(s: &str) -> std::result::Result<T, String> {
    s.parse()
        .map_err(|_| format!("expected a whole number of 0 or more, got '{s}'"))
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(a) => commands::train::train(a),
        Command::Presets => commands::train::presets(),
        Command::Bench(a) => commands::train::bench(a),
        Command::Sample(a) => commands::sample::sample(a),
        Command::Classes(a) => commands::biggan::classes(a),
        Command::Threshold(a) => commands::biggan::threshold(a),
        Command::ClassMorph(a) => commands::biggan::class_morph(a),
        Command::Truncation(a) => commands::stylegan::truncation(a),
        Command::Mix(a) => commands::stylegan::mix(a),
        Command::Noise(a) => commands::stylegan::noise(a),
        Command::Morph(a) => commands::stylegan::morph(a),
        Command::Project(a) => commands::stylegan::project(a),
        Command::Reconstruct(a) => commands::vq::reconstruct(a),
        Command::Encode(a) => commands::vq::encode(a),
        Command::Interpolate(a) => commands::vq::interpolate(a),
        Command::Eval(a) => commands::eval::eval(a),
        Command::BenchFeatures(a) => commands::eval::bench_features(a),
        Command::BenchSample(a) => commands::eval::bench_sample(a),
        Command::TrainClassifier(a) => commands::eval::train_classifier(a),
        Command::Report(a) => commands::report::report(a),
        Command::Timeline(a) => commands::report::timeline(a),
        Command::Import(a) => commands::import::import(a),
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
    // Rust ignores SIGPIPE, so printing into a closed pipe (`genforge presets | head -1`) would
    // fail; with the default action the process ends quietly there, as Unix tools do.
    #[cfg(unix)]
    // SAFETY: sets a signal disposition before any other thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
    // Unknown kernel switches are refused before any work, not silently taken as the defaults.
    if let Err(e) = KernelSettings::from_env() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<genforge::Error>() {
            Some(genforge::Error::Interrupted { signal, .. }) => {
                eprintln!("{e}");
                ExitCode::from((128 + signal) as u8)
            }
            _ => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
