//! `genforge bench`: time full train steps (D step + G step) of a preset on random real
//! images, as `../shared/reference/torch_gan_step.py` does for PyTorch, with a per-phase split.

use std::time::Instant;

use burn::module::Module;

use burn::tensor::{Device, Distribution, Tensor};
use serde::Serialize;

use crate::Result;
use crate::config::TrainConfig;
use crate::models::Kind;
use crate::train::GanTrainer;
use crate::train::Stage;
use crate::train::autoencoder::AutoencoderTrainer;
use crate::train::gan::PhaseTimes;
use crate::train::prior::{Level, PriorTrainer};

#[derive(Debug, Serialize)]
pub struct BenchReport {
    pub preset: String,
    pub batch: usize,
    pub steps: usize,
    pub sec_per_step: f64,
    pub img_per_s: f64,
    /// Peak resident memory of the process (VmHWM), MiB.
    pub peak_rss_mib: f64,
    /// Parameters of G and D (to check a reference builds the same model); for other families
    /// the first two of `models`.
    pub g_params: usize,
    pub d_params: usize,
    /// Mean seconds per step of each phase, from a separate synchronised pass.
    pub phases: Vec<(String, f64)>,
    /// Trainable parameters of every network of the step, by name.
    pub models: Vec<(String, usize)>,
    /// The kernel switches in force (`GENFORGE_CONV=auto ...`) and the CPU's vector features.
    pub kernels: String,
    pub cpu_features: Vec<String>,
}

/// Peak resident set size of this process in MiB (Linux; 0 elsewhere).
pub fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

pub fn run(
    cfg: TrainConfig,
    device: &Device,
    steps: usize,
    warmup: usize,
    mut on_step: impl FnMut(usize, f64),
) -> Result<BenchReport> {
    match cfg.model.kind() {
        Kind::Autoencoder => return run_autoencoder(cfg, device, steps, warmup, on_step),
        Kind::Prior => return run_prior(cfg, device, steps, warmup, on_step),
        Kind::Gan => {}
    }
    let (channels, resolution) = cfg.model.image_shape().expect("an image family");
    let mut cfg = cfg;
    // A growing run is timed at its final resolution, fully grown.
    cfg.train.progressive = false;
    let batch = cfg.train.batch;
    let shape = [batch, channels, resolution, resolution];
    let preset = cfg.name.clone();
    let mut trainer = GanTrainer::new(cfg, device);
    let real = Tensor::<4>::random(shape, Distribution::Uniform(-1.0, 1.0), trainer.device());
    for _ in 0..warmup {
        trainer.train_step(real.clone(), None)?;
    }
    let _ = trainer.device().sync();
    let t0 = Instant::now();
    for i in 0..steps {
        let s = Instant::now();
        trainer.train_step(real.clone(), None)?;
        on_step(i, s.elapsed().as_secs_f64());
    }
    let _ = trainer.device().sync();
    let sec_per_step = t0.elapsed().as_secs_f64() / steps as f64;
    let mut phases = PhaseTimes::default();
    let phase_steps = steps.clamp(1, 3);
    for _ in 0..phase_steps {
        trainer.train_step_timed(real.clone(), None, Some(&mut phases))?;
    }
    let phases = phases
        .seconds
        .into_iter()
        .map(|(n, s)| (n.to_string(), s / phase_steps as f64))
        .collect();
    let models = vec![
        ("G".into(), trainer.g.num_params()),
        ("D".into(), trainer.d.num_params()),
    ];
    Ok(stage_report(
        preset,
        batch,
        steps,
        sec_per_step,
        phases,
        models,
    ))
}

/// Times `f` over `warmup` + `steps` calls; returns mean seconds of the timed ones.
fn time_steps(
    device: &Device,
    steps: usize,
    warmup: usize,
    mut f: impl FnMut() -> Result<()>,
    mut on_step: impl FnMut(usize, f64),
) -> Result<f64> {
    for _ in 0..warmup {
        f()?;
    }
    let _ = device.sync();
    let t0 = Instant::now();
    for i in 0..steps {
        let s = Instant::now();
        f()?;
        let _ = device.sync();
        on_step(i, s.elapsed().as_secs_f64());
    }
    Ok(t0.elapsed().as_secs_f64() / steps as f64)
}

/// VQ-VAE-2 stage 1: one step (forward, backward, Adam, both EMA codebook updates) on the first
/// `batch` images of the preset's data.
fn run_autoencoder(
    cfg: TrainConfig,
    device: &Device,
    steps: usize,
    warmup: usize,
    on_step: impl FnMut(usize, f64),
) -> Result<BenchReport> {
    let (preset, batch) = (cfg.name.clone(), cfg.train.batch);
    let mut t = AutoencoderTrainer::build(cfg, None, device)?;
    let idx: Vec<usize> = (0..batch.min(t.train_items())).collect();
    let dev = device.clone().autodiff();
    let sec = time_steps(&dev, steps, warmup, || t.step(&idx).map(|_| ()), on_step)?;
    let n = t.model.num_params();
    Ok(stage_report(
        preset,
        batch,
        steps,
        sec,
        Vec::new(),
        vec![("vqvae2".into(), n)],
    ))
}

fn stage_report(
    preset: String,
    batch: usize,
    steps: usize,
    sec: f64,
    phases: Vec<(String, f64)>,
    models: Vec<(String, usize)>,
) -> BenchReport {
    BenchReport {
        preset,
        batch,
        steps,
        sec_per_step: sec,
        img_per_s: batch as f64 / sec,
        peak_rss_mib: peak_rss_mib(),
        g_params: models.first().map_or(0, |m| m.1),
        d_params: models.get(1).map_or(0, |m| m.1),
        phases,
        models,
        kernels: crate::cpu::settings::settings().describe(),
        cpu_features: crate::cpu::settings::cpu_features()
            .iter()
            .map(|f| f.to_string())
            .collect(),
    }
}

/// VQ-VAE-2 stage 2: one step of the top prior and one of the bottom prior, timed apart, on
/// the first `batch` code maps at `data.path`.
fn run_prior(
    cfg: TrainConfig,
    device: &Device,
    steps: usize,
    warmup: usize,
    mut on_step: impl FnMut(usize, f64),
) -> Result<BenchReport> {
    let (preset, batch) = (cfg.name.clone(), cfg.train.batch);
    let mut t = PriorTrainer::build(cfg, None, device)?;
    let idx: Vec<usize> = (0..batch.min(t.train_items())).collect();
    let dev = t.device().clone();
    let mut phases = Vec::new();
    for level in [Level::Top, Level::Bottom] {
        let sec = time_steps(
            &dev,
            steps,
            warmup,
            || t.train_level(level, &idx).map(|_| ()),
            &mut on_step,
        )?;
        phases.push((format!("{level:?}_prior").to_lowercase(), sec));
    }
    let sec: f64 = phases.iter().map(|p| p.1).sum();
    let models = vec![
        ("top prior".into(), t.top.num_params()),
        ("bottom prior".into(), t.bottom.num_params()),
    ];
    Ok(stage_report(preset, batch, steps, sec, phases, models))
}

/// Feature-extraction throughput of an evaluation network.
#[derive(Debug, Serialize)]
pub struct FeatureBench {
    pub network: String,
    pub batch: usize,
    pub images: usize,
    pub img_per_s: f64,
    pub peak_rss_mib: f64,
    /// Whether the network held formula weights (the weight file was not found); the speed is
    /// the same.
    pub formula_weights: bool,
}

/// Time feature extraction of `images` random 32x32 RGB images in batches of `batch`, as
/// `genforge eval` runs it (resize included), after one warm-up batch. `network`: `inception`
/// (pytorch-fid's weights when found, else formula weights) or `mnist`.
pub fn features(
    network: &str,
    images: usize,
    batch: usize,
    device: &Device,
) -> Result<FeatureBench> {
    use crate::metrics::features::{FeatureNet, extract_all};
    use crate::metrics::inception::{InceptionV3, Init};
    let (net, formula_weights) = match network {
        "inception" => match FeatureNet::load("inception", device) {
            Ok(net) => (net, false),
            Err(_) => (
                FeatureNet::Inception {
                    net: Box::new(InceptionV3::new(Init::Formula, device)),
                    fingerprint: 0,
                },
                true,
            ),
        },
        other => (FeatureNet::load(other, device)?, false),
    };
    let draw = |_: usize, len: usize| {
        Ok(Tensor::<4>::random(
            [len, 3, 32, 32],
            Distribution::Uniform(-1.0, 1.0),
            device,
        ))
    };
    extract_all(&net, batch, batch, draw, |_| {})?;
    let t0 = Instant::now();
    extract_all(&net, images, batch, draw, |_| {})?;
    Ok(FeatureBench {
        network: network.to_string(),
        batch,
        images,
        img_per_s: images as f64 / t0.elapsed().as_secs_f64(),
        peak_rss_mib: peak_rss_mib(),
        formula_weights,
    })
}

/// What [`sampling`] measured.
pub struct SamplingBench {
    pub batch: usize,
    pub reps: usize,
    pub img_per_s: f64,
    pub peak_rss_mib: f64,
}

/// Images per second of a GAN run's sampling generator: `reps` batches of `batch` latents
/// after one warm-up batch, generator loaded once (the time of a figure command without its
/// process start and checkpoint read). BigGAN draws truncated latents at `truncation`.
pub fn sampling(
    run_dir: &std::path::Path,
    batch: usize,
    reps: usize,
    truncation: Option<f64>,
    device: &Device,
) -> Result<SamplingBench> {
    let (cfg, g, _) = crate::sample::load_generator(run_dir, None, device)?;
    let req = |seed| crate::sample::GanRequest {
        n: batch,
        seed,
        psi: None,
        cutoff: None,
        class: None,
        truncation,
        run_dir,
    };
    let images = crate::sample::generate(&cfg, &g, &req(0))?;
    images.into_data(); // the warm-up's work is done before the clock starts
    let t0 = Instant::now();
    for r in 0..reps {
        crate::sample::generate(&cfg, &g, &req(1 + r as u64))?.into_data();
    }
    Ok(SamplingBench {
        batch,
        reps,
        img_per_s: (batch * reps) as f64 / t0.elapsed().as_secs_f64(),
        peak_rss_mib: peak_rss_mib(),
    })
}
