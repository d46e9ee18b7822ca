//! Sampling from a run: fixed-seed latents, image grids, GIFs, attention figures, and the
//! VQ-VAE-2 tools ([`vq`]).

pub mod attention;
pub mod biggan;
pub mod gif;
pub mod grid;
pub mod projector;
pub mod stylegan;
pub mod timeline;
pub mod vq;

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::TrainConfig;
use crate::models::{Discriminator, Generator};
use crate::rng::Rng;
use crate::run::checkpoint::{self, files, load_module};
use crate::run::{self};
use crate::{Error, Result};

/// `n` standard-normal latents from `seed` (the same seed gives the same grid in every run).
pub fn latents(n: usize, z_dim: usize, seed: u64, device: &Device) -> Tensor<2> {
    let mut rng = Rng::new(seed).fork(0x5A3D);
    Tensor::from_data(
        TensorData::new(rng.normal_vec(n * z_dim, 0.0, 1.0), [n, z_dim]),
        device,
    )
}

/// Build G and D of a run's config for loading; an error when the run is not adversarial.
fn gan_modules(
    cfg: &TrainConfig,
    run_dir: &Path,
    device: &Device,
) -> Result<(Generator, Discriminator)> {
    cfg.model
        .init_gan(cfg.train.progressive, &mut Rng::new(0), device)
        .ok_or_else(|| {
            Error::run(
                run_dir,
                format!(
                    "is a {} run, which has no generator to sample from; use the commands for its \
                 family (see genforge --help)",
                    cfg.model.family()
                ),
            )
        })
}

/// A run's config and its generator from `checkpoint` (default: the latest), for inference:
/// the weight average when the run keeps one, else the trained weights; a BigGAN with the
/// standing statistics its `sample.standing_stats` asks for.
pub fn load_generator(
    run_dir: &Path,
    checkpoint: Option<&Path>,
    device: &Device,
) -> Result<(TrainConfig, Generator, PathBuf)> {
    let cfg = run::open(run_dir)?;
    let (g, _) = gan_modules(&cfg, run_dir, device)?;
    let (g, ckpt) = checkpoint::load_newest(run_dir, checkpoint, |ckpt| {
        let file = if ckpt.join(files::GENERATOR_EMA).is_file() {
            files::GENERATOR_EMA
        } else {
            files::GENERATOR
        };
        let mut g = load_module(g.clone(), &ckpt.join(file))?;
        if let Some(level) = growth_level(&cfg, ckpt)? {
            g.set_level(level);
        }
        Ok(g)
    })?;
    let g = match g {
        Generator::Big(g) if cfg.sample.standing_stats > 0 => Generator::Big(
            g.with_standing_stats(cfg.sample.standing_stats, cfg.train.batch, cfg.train.seed),
        ),
        g => g,
    };
    Ok((cfg, g, ckpt))
}

/// The level a growing run's checkpoint was trained at (from its state), so a checkpoint taken
/// mid-growth samples at the resolution and fade-in it had; `None` when the run does not grow.
fn growth_level(cfg: &TrainConfig, ckpt: &Path) -> Result<Option<crate::models::pggan::Level>> {
    let Some(growth) = cfg.growth() else {
        return Ok(None);
    };
    let state = crate::run::checkpoint::load_state(ckpt)?;
    Ok(Some(match state.lod {
        Some(lod) => growth.level_of(lod),
        None => growth.level(state.images_seen),
    }))
}

/// A run's config and generator when it is of `family` (`pick` takes the family's network out
/// of the [`Generator`] enum), else an error naming both families.
pub(crate) fn load_family<T>(
    run_dir: &Path,
    checkpoint: Option<&Path>,
    device: &Device,
    family: &str,
    pick: impl FnOnce(Generator) -> Option<T>,
) -> Result<(TrainConfig, T, PathBuf)> {
    let (cfg, g, ckpt) = load_generator(run_dir, checkpoint, device)?;
    match pick(g) {
        Some(g) => Ok((cfg, g, ckpt)),
        None => Err(Error::run(
            run_dir,
            format!(
                "is a {} run; this command needs a {family} run (model.family = \"{}\")",
                cfg.model.family(),
                family.to_lowercase()
            ),
        )),
    }
}

/// The discriminator of a run's checkpoint (attention figures of D).
pub fn load_discriminator(
    cfg: &TrainConfig,
    ckpt: &Path,
    device: &Device,
) -> Result<Discriminator> {
    let (_, d) = gan_modules(cfg, ckpt, device)?;
    load_module(d, &ckpt.join(files::DISCRIMINATOR))
}

/// What a run generates from, for scoring many images in batches: a GAN's generator (StyleGAN
/// with its truncation `psi`), or a VQ-VAE-2 decoder with its two PixelCNN priors.
pub enum Generated {
    Gan {
        g: Box<Generator>,
        z_dim: usize,
        psi: f64,
        /// BigGAN: latents from the normal truncated at this threshold (resampling).
        truncation: Option<f64>,
        /// The variance of the untruncated latents (the run's `sample.z_var`; 1 for StyleGAN).
        z_var: f64,
        /// Class-conditional G (BigGAN): image `i` has class `i % classes`.
        classes: Option<usize>,
    },
    VqVae2 {
        vq_cfg: Box<TrainConfig>,
        prior_cfg: Box<TrainConfig>,
        vq: Box<crate::models::vqvae2::VqVae2>,
        top: Box<crate::models::pixelcnn::GatedPixelCnn>,
        bottom: Box<crate::models::pixelcnn::GatedPixelCnn>,
        temperature: f64,
    },
}

impl Generated {
    /// A run's sampler from `checkpoint` (default: the latest); VQ-VAE-2 runs need `prior`.
    /// `psi` is StyleGAN's truncation, `truncation` BigGAN's threshold; `psi` and `temperature`
    /// default to the run's and the prior's `[sample]` settings.
    pub fn load(
        run_dir: &Path,
        checkpoint: Option<&Path>,
        prior: Option<&Path>,
        psi: Option<f64>,
        truncation: Option<f64>,
        temperature: Option<f64>,
        device: &Device,
    ) -> Result<(TrainConfig, Generated, PathBuf)> {
        let cfg = run::open(run_dir)?;
        if cfg.model.as_vqvae2().is_some() {
            let prior = prior.ok_or_else(|| {
                Error::run(
                    run_dir,
                    "is a VQ-VAE-2 run: give --prior PRIOR_RUN_DIR (its PixelCNN prior run) to \
                     sample through both stages",
                )
            })?;
            let (vq_cfg, vq, ckpt) = vq::load_vqvae(run_dir, checkpoint, device)?;
            let (prior_cfg, top, bottom, _) = vq::load_priors(prior, device)?;
            let temperature = temperature.unwrap_or(prior_cfg.sample.temperature);
            return Ok((
                vq_cfg.clone(),
                Generated::VqVae2 {
                    vq_cfg: Box::new(vq_cfg),
                    prior_cfg: Box::new(prior_cfg),
                    vq: Box::new(vq),
                    top: Box::new(top),
                    bottom: Box::new(bottom),
                    temperature,
                },
                ckpt,
            ));
        }
        let psi = psi.unwrap_or(cfg.sample.psi);
        if psi != 1.0 {
            if cfg.model.as_stylegan().is_none() && cfg.model.as_stylegan2().is_none() {
                return Err(Error::Config(format!(
                    "--psi is StyleGAN's truncation trick; {} is a {} run",
                    run_dir.display(),
                    cfg.model.family()
                )));
            }
            stylegan::check_psi(psi)?;
        }
        if let Some(t) = truncation {
            if cfg.model.as_biggan().is_none() {
                return Err(Error::Config(format!(
                    "--truncation is BigGAN's truncation trick (StyleGAN's is --psi); {} is a {} \
                     run",
                    run_dir.display(),
                    cfg.model.family()
                )));
            }
            biggan::check_threshold(t)?;
        }
        let (cfg, g, ckpt) = load_generator(run_dir, checkpoint, device)?;
        let z_dim = cfg.model.z_dim().expect("a GAN run");
        let classes = cfg.model.num_classes();
        let z_var = cfg.sample.z_var;
        Ok((
            cfg,
            Generated::Gan {
                g: Box::new(g),
                z_dim,
                psi,
                truncation,
                z_var,
                classes,
            },
            ckpt,
        ))
    }

    /// The truncation psi (StyleGAN), latent variance (the other GANs, BigGAN untruncated) or prior
    /// temperature (VQ-VAE-2) the images are drawn at.
    pub fn setting(&self) -> (&'static str, f64) {
        match self {
            Generated::Gan {
                g,
                truncation: None,
                z_var,
                ..
            } if !matches!(**g, Generator::Style(_) | Generator::Style2(_)) => ("z_var", *z_var),
            Generated::Gan { psi, .. } => ("psi", *psi),
            Generated::VqVae2 { temperature, .. } => ("temperature", *temperature),
        }
    }

    /// The number of classes of a class-conditional sampler (BigGAN's G, a class-conditional
    /// prior).
    pub fn num_classes(&self) -> Option<usize> {
        match self {
            Generated::VqVae2 { prior_cfg, .. } => {
                let p = prior_cfg.model.as_pixelcnn().expect("a pixelcnn run");
                p.class_conditional.then_some(p.num_classes)
            }
            Generated::Gan { classes, .. } => *classes,
        }
    }

    /// Class of image `i` of the stream, for class-conditional samplers: the classes in turn.
    pub fn class_of(&self, i: usize) -> Option<u32> {
        self.num_classes().map(|k| (i % k) as u32)
    }

    /// Images `start..start + len` of the stream drawn from `seed`. A GAN's latents depend only
    /// on (seed, image index), so batching does not change them.
    pub fn batch(&self, start: usize, len: usize, seed: u64, device: &Device) -> Result<Tensor<4>> {
        match self {
            Generated::Gan {
                g,
                z_dim,
                psi,
                truncation,
                z_var,
                classes,
            } => {
                let z: Vec<Tensor<2>> = (start..start + len)
                    .map(|i| {
                        let seed = per_image_seed(seed, i);
                        match truncation {
                            Some(threshold) => biggan::Latents::Truncated {
                                threshold: *threshold,
                            }
                            .draw(1, *z_dim, seed, device),
                            // N(0, z_var I); z_var is 1 unless the run sets it.
                            None => latents(1, *z_dim, seed, device) * z_var.sqrt(),
                        }
                    })
                    .collect();
                let z = Tensor::cat(z, 0); // [len, z_dim]
                Ok(match &**g {
                    Generator::Style(st) => {
                        let mut rng = Rng::new(per_image_seed(seed, start)).fork(0x4015E);
                        st.generate(z, *psi, None, &mut rng)
                    }
                    Generator::Style2(st) => {
                        let mut rng = Rng::new(per_image_seed(seed, start)).fork(0x4015E);
                        let c = classes.map(|k| class_cycle(start, len, k, device));
                        let c = st.one_hot(c)?;
                        let ws = st.mapping_ws(z, c, *psi, None);
                        st.synthesis(&ws, crate::models::stylegan::Noise::Random(&mut rng))
                    }
                    g @ (Generator::Conv(_)
                    | Generator::Vit(_)
                    | Generator::Big(_)
                    | Generator::Pg(_)) => {
                        let labels = classes.map(|k| class_cycle(start, len, k, device));
                        g.forward(z, labels)
                    }
                })
            }
            Generated::VqVae2 {
                vq_cfg,
                prior_cfg,
                vq,
                top,
                bottom,
                temperature,
            } => {
                let opts = vq::SampleOptions {
                    n: len,
                    temperature: *temperature,
                    seed: per_image_seed(seed, start),
                    label: None,
                    label_offset: start,
                };
                Ok(vq::sample(vq, vq_cfg, prior_cfg, top, bottom, &opts)?.0)
            }
        }
    }
}

/// What a sample of a GAN run asks for: how many images from which seed, and the options only
/// some families have.
#[derive(Clone, Debug)]
pub struct GanRequest<'a> {
    pub n: usize,
    pub seed: u64,
    /// StyleGAN: the truncation psi (1: none; default: the run's `sample.psi`) and the style
    /// layers it applies to (all: `None`).
    pub psi: Option<f64>,
    pub cutoff: Option<usize>,
    /// BigGAN: the class of every image (index or name; default: the classes in turn) and the
    /// threshold of the truncated normal its latents are drawn from.
    pub class: Option<&'a str>,
    pub truncation: Option<f64>,
    /// The run, where class names are looked up first.
    pub run_dir: &'a Path,
}

/// `req.n` images from the GAN generator `g` of a run with config `cfg`, each family's own
/// options applied: StyleGAN's truncation (psi, cutoff), BigGAN's class and truncated latents.
pub fn generate(cfg: &TrainConfig, g: &Generator, req: &GanRequest) -> Result<Tensor<4>> {
    let style = req.psi.is_some_and(|p| p != 1.0) || req.cutoff.is_some();
    let psi = req.psi.unwrap_or(cfg.sample.psi);
    let big = req.class.is_some() || req.truncation.is_some();
    let unsupported = match g {
        Generator::Style(_) => big.then_some("--class and --truncation are BigGAN's"),
        Generator::Style2(_) => req
            .truncation
            .is_some()
            .then_some("--truncation is BigGAN's (StyleGAN2 truncates with --psi)"),
        Generator::Big(_) => style.then_some("--psi and --cutoff are StyleGAN's truncation trick"),
        Generator::Conv(_) | Generator::Vit(_) | Generator::Pg(_) => {
            if style {
                Some("--psi and --cutoff are StyleGAN's truncation trick")
            } else {
                big.then_some("--class and --truncation are BigGAN's")
            }
        }
    };
    if let Some(what) = unsupported {
        return Err(Error::Config(format!(
            "{what}; this is a {} run",
            cfg.model.family()
        )));
    }
    if req.n == 0 {
        return Err(Error::Config("--n must be at least 1".into()));
    }
    let z_dim = cfg.model.z_dim().expect("a GAN run");
    Ok(match g {
        Generator::Big(b) => {
            if let Some(t) = req.truncation {
                biggan::check_threshold(t)?;
            }
            let classes = cfg.model.num_classes().expect("a BigGAN run");
            let names = biggan::class_names(req.run_dir, cfg, classes);
            let class = req
                .class
                .map(|c| biggan::parse_class(c, &names))
                .transpose()?;
            let z = biggan::Latents::new(req.truncation, cfg.sample.z_var);
            biggan::sample(b, req.n, class, z, req.seed)
        }
        Generator::Style(s) => {
            stylegan::check_psi(psi)?;
            if let Some(k) = req.cutoff {
                stylegan::check_layers(s, &(0..k.max(1)))?;
            }
            let z = latents(req.n, z_dim, req.seed, &s.device());
            s.generate(z, psi, req.cutoff, &mut Rng::new(req.seed))
        }
        Generator::Style2(s) => {
            stylegan::check_psi(psi)?;
            let device = s.device();
            let c = match (s.num_classes, req.class) {
                (0, Some(_)) => {
                    return Err(Error::Config(
                        "--class: this StyleGAN2 is unconditional; leave --class out".into(),
                    ));
                }
                (0, None) => None,
                (k, Some(spec)) => {
                    let names = biggan::class_names(req.run_dir, cfg, k);
                    let i = biggan::parse_class(spec, &names)?;
                    Some(Tensor::from_data(
                        TensorData::new(vec![i as i64; req.n], [req.n]),
                        &device,
                    ))
                }
                (k, None) => Some(class_cycle(0, req.n, k, &device)),
            };
            let z = latents(req.n, z_dim, req.seed, &device);
            let ws = s.mapping_ws(z, s.one_hot(c)?, psi, req.cutoff);
            s.synthesis(
                &ws,
                crate::models::stylegan::Noise::Random(&mut Rng::new(req.seed)),
            )
        }
        Generator::Conv(_) | Generator::Vit(_) | Generator::Pg(_) => {
            let z = latents(req.n, z_dim, req.seed, &g.device()) * cfg.sample.z_var.sqrt();
            g.forward(z, None)
        }
    })
}

/// Classes `start..start + len` in turn, `[len]`.
fn class_cycle(start: usize, len: usize, classes: usize, device: &Device) -> Tensor<1, Int> {
    let v: Vec<i64> = (start..start + len).map(|i| (i % classes) as i64).collect();
    Tensor::from_data(TensorData::new(v, [len]), device)
}

/// The latent seed of image `i` of a stream drawn from `seed` ([`Generated::batch`]).
pub fn per_image_seed(seed: u64, i: usize) -> u64 {
    seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}
