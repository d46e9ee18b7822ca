//! VQ-VAE-2 figures: reconstructions, the encoded dataset, interpolations.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};
use genforge::burn::tensor::Device;
use genforge::config::TrainConfig;
use genforge::models::vqvae2::VqVae2;
use genforge::sample::{gif, grid, vq};
use genforge::train::autoencoder;

use super::RunArgs;

/// VQ-VAE-2: originals above reconstructions, then decoded with the top codes zeroed and with
/// the bottom codes zeroed (the article's `top=0 | bottom=0`); prints MSE and PSNR over all of
/// the input.
#[derive(clap::Args)]
pub struct ReconstructArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// A PNG/JPEG image or a dataset path (default: the run's own data).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Dataset format of --input when it is not an image (default: the run's data.format).
    #[arg(long)]
    pub format: Option<String>,
    /// Images in the figure.
    #[arg(long, default_value_t = 8, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub n: usize,
    /// Skip this many images of the input before the figure's (the run's held-out images
    /// are its last ones).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub skip: usize,
    #[arg(long, default_value = "reconstructions.png")]
    pub out: PathBuf,
}

pub fn reconstruct(args: ReconstructArgs) -> Result<()> {
    let ReconstructArgs {
        run,
        input,
        format,
        n,
        skip,
        out,
    } = args;
    let (cfg, model, _, device) = load(&run)?;
    let data = load_input(&cfg, input.as_deref(), format.as_deref())?;
    let mse = autoencoder::AutoencoderTrainer::eval_mse(&model, &data, 0, 64);
    println!(
        "{} images: reconstruction MSE {mse:.5}  PSNR {:.2} dB",
        data.len(),
        autoencoder::psnr(mse)
    );
    if skip >= data.len() {
        bail!(
            "--skip {skip} leaves none of the {} input images",
            data.len()
        );
    }
    let k = n.clamp(1, data.len() - skip);
    let idx: Vec<usize> = (skip..skip + k).collect();
    let (rows, _) = vq::reconstruction_rows(&model, data.tensor(&idx, &device));
    grid::save_png(&grid::make_grid(rows, Some(k)), &out)?;
    tracing::info!(
        "wrote {} (rows: originals, reconstructions, top=0, bottom=0)",
        out.display()
    );
    Ok(())
}

/// VQ-VAE-2: write the top and bottom code maps of a dataset (input of the PixelCNN priors).
#[derive(clap::Args)]
pub struct EncodeArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Output directory (default: RUN_DIR/codes).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Dataset path (default: the run's own data).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Dataset format of --input (default: the run's data.format).
    #[arg(long)]
    pub format: Option<String>,
}

pub fn encode(args: EncodeArgs) -> Result<()> {
    let EncodeArgs {
        run,
        out,
        input,
        format,
    } = args;
    let (cfg, model, ckpt, _) = load(&run)?;
    let run_dir = &run.run_dir;
    let data = load_input(&cfg, input.as_deref(), format.as_deref())?;
    let out = out.unwrap_or_else(|| run_dir.join("codes"));
    let started = Instant::now();
    let codes = vq::encode_dataset(&model, &data, run_dir, &ckpt, 128)?;
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
    Ok(())
}

/// VQ-VAE-2: morph image A into image B through the continuous latents, as a grid and a GIF.
#[derive(clap::Args)]
pub struct InterpolateArgs {
    #[command(flatten)]
    pub run: RunArgs,
    #[arg(long)]
    pub a: PathBuf,
    #[arg(long)]
    pub b: PathBuf,
    /// Images from A to B, both included.
    #[arg(long, default_value_t = 10, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub frames: usize,
    /// Snap every mix to its nearest codes before decoding.
    #[arg(long)]
    pub requantize: bool,
    #[arg(long, default_value = "interpolation.png")]
    pub out: PathBuf,
    /// GIF path (default: --out with a .gif extension).
    #[arg(long)]
    pub gif: Option<PathBuf>,
    /// Milliseconds per GIF frame.
    #[arg(long, default_value_t = 120, allow_negative_numbers = true, value_parser = crate::whole::<u32>)]
    pub delay_ms: u32,
}

pub fn interpolate(args: InterpolateArgs) -> Result<()> {
    let InterpolateArgs {
        run,
        a,
        b,
        frames,
        requantize,
        out,
        gif,
        delay_ms,
    } = args;
    let (cfg, model, _, device) = load(&run)?;
    let one = |p: &Path| -> Result<_> {
        let d = load_input(&cfg, Some(p), None)?;
        Ok(d.tensor(&[0], &device))
    };
    let images = vq::interpolate(&model, one(&a)?, one(&b)?, frames, requantize);
    let k = images.dims()[0];
    grid::save_png(&grid::make_grid(images.clone(), Some(k)), &out)?;
    let gif = gif.unwrap_or_else(|| out.with_extension("gif"));
    gif::save_gif(images, &gif, delay_ms, 4)?;
    tracing::info!("wrote {} and {}", out.display(), gif.display());
    Ok(())
}

/// A VQ-VAE-2 run's config, autoencoder, checkpoint and device.
fn load(run: &RunArgs) -> Result<(TrainConfig, VqVae2, PathBuf, Device)> {
    let device = run.device()?;
    let (cfg, model, ckpt) = vq::load_vqvae(&run.run_dir, run.checkpoint.as_deref(), &device)?;
    tracing::info!("checkpoint {}", ckpt.display());
    Ok((cfg, model, ckpt, device))
}

/// The images a VQ-VAE-2 command reads: `input` (an image or a dataset) or the run's own data.
pub fn load_input(
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
