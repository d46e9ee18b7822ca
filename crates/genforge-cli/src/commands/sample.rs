//! `genforge sample`: images from any run.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use genforge::burn::tensor::{Device, Tensor};
use genforge::device;
use genforge::models::Kind;
use genforge::sample::{self, GanRequest, attention, grid, vq};

/// Generate images from a trained run.
#[derive(clap::Args)]
pub struct SampleArgs {
    pub run_dir: PathBuf,
    /// Number of images.
    #[arg(long, default_value_t = 64, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub n: usize,
    /// Latent seed.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = crate::whole::<u64>)]
    pub seed: u64,
    /// A .png for one grid, or a directory (ending in / or existing) for one PNG per image.
    #[arg(long, default_value = "samples.png")]
    pub out: PathBuf,
    /// Checkpoint directory (default: the latest in the run).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// VQ-VAE-2: the prior run (`genforge train pixelcnn-...`) to sample codes from.
    #[arg(long, value_name = "PRIOR_RUN_DIR")]
    pub prior: Option<PathBuf>,
    /// VQ-VAE-2: softmax temperature of the priors (below 1: sharper, less diverse; default:
    /// the prior run's `sample.temperature`, 1 unless its preset says).
    #[arg(long)]
    pub temperature: Option<f64>,
    /// VQ-VAE-2: class of every sample, for a class-conditional prior.
    #[arg(long, allow_negative_numbers = true, value_parser = crate::whole::<u32>)]
    pub label: Option<u32>,
    /// StyleGAN: truncation psi, `w_avg + psi (w - w_avg)` (1: none, 0: the average image;
    /// default: the run's `sample.psi`, 1 unless its preset says).
    #[arg(long, allow_hyphen_values = true)]
    pub psi: Option<f64>,
    /// StyleGAN: truncate only the first K style layers (the paper's cutoff; default: all).
    #[arg(long, value_name = "K", allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub cutoff: Option<usize>,
    /// BigGAN: class of every sample, by index or name (default: the classes in turn).
    #[arg(long = "class", value_name = "CLASS")]
    pub class: Option<String>,
    /// BigGAN: draw z from a normal truncated at this threshold (by resampling).
    #[arg(long, value_name = "T")]
    pub truncation: Option<f64>,
    /// Attention figure of 5 images instead of samples: `g` (default) or `d`. SAGAN: the
    /// article's centre-pixel maps of G. ViTGAN: one row per head, of G's centre patch or of
    /// D's class token, from the last transformer block.
    #[arg(long, value_name = "g|d", num_args = 0..=1, default_missing_value = "g")]
    pub attention: Option<String>,
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

pub fn sample(args: SampleArgs) -> Result<()> {
    let SampleArgs {
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
    } = args;
    let device = device::parse(&device)?;
    if let Some(prior) = prior {
        return sample_vqvae(
            &run_dir,
            &prior,
            checkpoint.as_deref(),
            temperature,
            vq::SampleOptions {
                label_offset: 0,
                n,
                temperature: 1.0,
                seed,
                label,
            },
            &out,
            &device,
        );
    }
    let cfg = genforge::run::open(&run_dir)?;
    if cfg.model.kind() != Kind::Gan {
        bail!(
            "{} is a {} run: sample a VQ-VAE-2 run with --prior PRIOR_RUN_DIR \
             (a `genforge train pixelcnn-...` run on its codes)",
            run_dir.display(),
            cfg.model.family()
        );
    }
    if psi.is_none() && cfg.sample.psi != 1.0 {
        tracing::info!(
            "truncation psi {}, the run's sample.psi (--psi 1 draws untruncated)",
            cfg.sample.psi
        );
    }
    if cfg.sample.z_var != 1.0 && truncation.is_none() {
        tracing::info!(
            "latents from N(0, {} I), the run's sample.z_var",
            cfg.sample.z_var
        );
    }
    let req = GanRequest {
        n,
        seed,
        psi,
        cutoff,
        class: class.as_deref(),
        truncation,
        run_dir: &run_dir,
    };
    let (cfg, g, ckpt) = sample::load_generator(&run_dir, checkpoint.as_deref(), &device)?;
    tracing::info!("checkpoint {}", ckpt.display());
    if let Some(net) = attention {
        let net: attention::Net = net.parse()?;
        let d = match net {
            attention::Net::Discriminator => {
                Some(sample::load_discriminator(&cfg, &ckpt, &device)?)
            }
            attention::Net::Generator => None,
        };
        let z_dim = cfg.model.z_dim().expect("a GAN run");
        let z = sample::latents(5, z_dim, seed, &device) * cfg.sample.z_var.sqrt();
        let fig = attention::figure(&g, d.as_ref(), net, z)?;
        grid::save_png(&fig, &out)?;
        tracing::info!("wrote {}", out.display());
        return Ok(());
    }
    let images = sample::generate(&cfg, &g, &req)?;
    save_samples(images, &out)
}

/// One grid at `out`, or one PNG per image when `out` is a directory (existing, ending in `/`,
/// or without an extension).
fn save_samples(images: Tensor<4>, out: &Path) -> Result<()> {
    let as_dir = out.is_dir() || out.to_string_lossy().ends_with('/') || out.extension().is_none();
    if as_dir {
        let k = grid::save_each(images, out)?;
        tracing::info!("wrote {k} images to {}", out.display());
    } else {
        grid::save_png(&grid::make_grid(images, None), out)?;
        tracing::info!("wrote {}", out.display());
    }
    Ok(())
}

fn sample_vqvae(
    run_dir: &Path,
    prior: &Path,
    checkpoint: Option<&Path>,
    temperature: Option<f64>,
    mut opts: vq::SampleOptions,
    out: &Path,
    device: &Device,
) -> Result<()> {
    if opts.n == 0 {
        bail!("--n must be at least 1");
    }
    let (vq_cfg, vq, _) = vq::load_vqvae(run_dir, checkpoint, device)?;
    let (prior_cfg, top, bottom, ckpt) = vq::load_priors(prior, device)?;
    tracing::info!("prior checkpoint {}", ckpt.display());
    opts.temperature = temperature.unwrap_or(prior_cfg.sample.temperature);
    let (images, t) = vq::sample(&vq, &vq_cfg, &prior_cfg, &top, &bottom, &opts)?;
    save_samples(images, out)?;
    println!(
        "{} samples in {:.2} s ({:.2} img/s): top codes {:.2} s, bottom codes {:.2} s, decode {:.2} s",
        opts.n,
        t.total(),
        opts.n as f64 / t.total(),
        t.top_seconds,
        t.bottom_seconds,
        t.decode_seconds
    );
    Ok(())
}
