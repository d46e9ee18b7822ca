//! StyleGAN and StyleGAN2 figures: truncation sweeps, style mixing, noise, morphs.

use std::path::PathBuf;

use anyhow::{Result, bail};
use genforge::sample::stylegan::{self, StyleBased};

use super::{RunArgs, save_grid, save_strip_and_gif};

/// StyleGAN: the truncation sweep, one row per seed and one column per psi.
#[derive(clap::Args)]
pub struct TruncationArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// The class a conditional StyleGAN2 draws (an index or a class name).
    #[arg(long)]
    pub class: Option<String>,
    /// Seeds, one row each.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,3")]
    pub seeds: Vec<u64>,
    /// psi values, one column each (default: -1 to 1 in steps of 0.25).
    #[arg(
        long,
        value_delimiter = ',',
        allow_hyphen_values = true,
        default_value = "-1,-0.75,-0.5,-0.25,0,0.25,0.5,0.75,1"
    )]
    pub psi: Vec<f64>,
    /// Truncate only the first K style layers.
    #[arg(long, value_name = "K", allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub cutoff: Option<usize>,
    #[arg(long, default_value = "truncation.png")]
    pub out: PathBuf,
}

pub fn truncation(args: TruncationArgs) -> Result<()> {
    let TruncationArgs {
        run,
        class,
        seeds,
        psi,
        cutoff,
        out,
    } = args;
    let g = load(&run, class.as_deref())?;
    let images = stylegan::truncation_sweep(&*g, &seeds, &psi, cutoff)?;
    save_grid(images, psi.len(), &out)?;
    Ok(())
}

/// StyleGAN: the style-mixing grid. Source A seeds across the top, source B seeds down the
/// side; each cell is A's image with B's styles in the chosen layers.
#[derive(clap::Args)]
pub struct MixArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// The class a conditional StyleGAN2 draws (an index or a class name).
    #[arg(long)]
    pub class: Option<String>,
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,3,4")]
    pub a: Vec<u64>,
    #[arg(long, value_delimiter = ',', default_value = "5,6,7")]
    pub b: Vec<u64>,
    /// Layers taken from B: coarse (4x4-8x8), middle (16x16-32x32), fine (64x64 and up; the
    /// last resolution of a small network) or a range A..B of style layers.
    #[arg(long, default_value = "coarse")]
    pub styles: String,
    #[arg(long, default_value = "mixing.png")]
    pub out: PathBuf,
}

pub fn mix(args: MixArgs) -> Result<()> {
    let MixArgs {
        run,
        class,
        a,
        b,
        styles,
        out,
    } = args;
    let g = load(&run, class.as_deref())?;
    if a.is_empty() || b.is_empty() {
        bail!("--a and --b need at least one seed each");
    }
    let layers = stylegan::style_range(&*g, &styles)?;
    tracing::info!(
        "B's styles in layers {}..{} of {}",
        layers.start,
        layers.end,
        g.num_ws()
    );
    let (images, cols) = stylegan::mixing_grid(&*g, &a, &b, layers)?;
    save_grid(images, cols, &out)?;
    Ok(())
}

/// StyleGAN: the noise figure. Per seed: noise in every layer, in none, in the coarse layers
/// only, in the fine layers only, two more noise draws, and the per-pixel standard deviation
/// over --draws draws.
#[derive(clap::Args)]
pub struct NoiseArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// The class a conditional StyleGAN2 draws (an index or a class name).
    #[arg(long)]
    pub class: Option<String>,
    #[arg(long, value_delimiter = ',', default_value = "0,1,2,3")]
    pub seeds: Vec<u64>,
    #[arg(long, default_value_t = 100, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub draws: usize,
    #[arg(long, default_value = "noise.png")]
    pub out: PathBuf,
}

pub fn noise(args: NoiseArgs) -> Result<()> {
    let NoiseArgs {
        run,
        class,
        seeds,
        draws,
        out,
    } = args;
    let g = load(&run, class.as_deref())?;
    let (images, cols) = stylegan::noise_figure(&*g, &seeds, draws)?;
    save_grid(images, cols, &out)?;
    Ok(())
}

/// StyleGAN: morph seed A into seed B (lerp in W, or slerp in Z) as a looping GIF and a strip.
#[derive(clap::Args)]
pub struct MorphArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// The class a conditional StyleGAN2 draws (an index or a class name).
    #[arg(long)]
    pub class: Option<String>,
    #[arg(long, allow_negative_numbers = true, value_parser = crate::whole::<u64>)]
    pub a: u64,
    #[arg(long, allow_negative_numbers = true, value_parser = crate::whole::<u64>)]
    pub b: u64,
    /// Frames from A to B, both included.
    #[arg(long, default_value_t = 40, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub frames: usize,
    /// Interpolate the latents z spherically instead of w linearly.
    #[arg(long)]
    pub slerp: bool,
    #[arg(long, default_value_t = 1.0, allow_hyphen_values = true)]
    pub psi: f64,
    /// Strip PNG (every frame in one row).
    #[arg(long, default_value = "morph.png")]
    pub out: PathBuf,
    /// GIF path (default: --out with a .gif extension).
    #[arg(long)]
    pub gif: Option<PathBuf>,
    #[arg(long, default_value_t = 80, allow_negative_numbers = true, value_parser = crate::whole::<u32>)]
    pub delay_ms: u32,
}

pub fn morph(args: MorphArgs) -> Result<()> {
    let MorphArgs {
        run,
        class,
        a,
        b,
        frames,
        slerp,
        psi,
        out,
        gif,
        delay_ms,
    } = args;
    let g = load(&run, class.as_deref())?;
    let images = stylegan::morph(&*g, a, b, frames, slerp, psi)?;
    save_strip_and_gif(images, frames, &out, gif, delay_ms)
}

/// The generator of a StyleGAN or StyleGAN2 run.
fn load(run: &RunArgs, class: Option<&str>) -> Result<Box<dyn StyleBased>> {
    let (_, g, ckpt) = stylegan::load(
        &run.run_dir,
        run.checkpoint.as_deref(),
        &run.device()?,
        class,
    )?;
    tracing::info!("checkpoint {}", ckpt.display());
    Ok(g)
}
