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
    if let Ok(cfg) = genforge::run::open(&run.run_dir)
        && let genforge::models::ModelConfig::Stylegan(m) = &cfg.model
        && m.noise != genforge::models::stylegan::NoiseInputs::All
    {
        tracing::warn!(
            "the run has model.noise = {:?}: its other layers take no noise, so the panels that \
             differ only there are alike",
            format!("{:?}", m.noise).to_lowercase()
        );
    }
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

/// StyleGAN2: project a real image into W (NVlabs' projector.py): writes the projected image,
/// the target beside it, the projected w as `.npy`, and a GIF of the optimisation.
#[derive(clap::Args)]
pub struct ProjectArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// The image to project (PNG/JPEG; centre-cropped and resized to the network's size).
    #[arg(long)]
    pub target: PathBuf,
    /// The class of a conditional StyleGAN2 (an index or a class name).
    #[arg(long)]
    pub class: Option<String>,
    /// Optimisation steps (NVlabs' 1000).
    #[arg(long, default_value_t = 1000, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub steps: usize,
    /// Seed of the noise maps and the w jitter.
    #[arg(long, default_value_t = 303, allow_negative_numbers = true, value_parser = crate::whole::<u64>)]
    pub seed: u64,
    /// torchvision's VGG16 weights for LPIPS (vgg16-397923af.pth; default: $GENFORGE_VGG16, then
    /// the cache directory).
    #[arg(long)]
    pub vgg16: Option<PathBuf>,
    /// Output directory: proj.png (target | projection), projected_w.npy ([1, num_ws, w_dim])
    /// and proj.gif.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
}

pub fn project(args: ProjectArgs) -> Result<()> {
    use genforge::burn::module::Module;
    use genforge::models::Generator as Any;
    use genforge::sample::projector;
    let device = args.run.device()?.autodiff();
    let lpips = genforge::metrics::lpips::Lpips::load(args.vgg16.as_deref(), &device)?;
    let (cfg, g, ckpt) = genforge::sample::load_generator(
        &args.run.run_dir,
        args.run.checkpoint.as_deref(),
        &device,
    )?;
    let Any::Style2(g) = g else {
        bail!(
            "config: {} is a {} run; projection needs a stylegan2 run",
            args.run.run_dir.display(),
            cfg.model.family()
        );
    };
    tracing::info!("checkpoint {}", ckpt.display());
    let g = g.no_grad();
    let class = stylegan::class_vector(
        &args.run.run_dir,
        &cfg,
        g.num_classes,
        args.class.as_deref(),
        &device,
    )?;
    let (channels, res) = cfg.model.image_shape().expect("an image family");
    let target = projector::load_target(&args.target, channels, res, &device)?;
    let opts = projector::ProjectOptions {
        steps: args.steps,
        seed: args.seed,
        frame_every: (args.steps / 50).max(1),
        ..Default::default()
    };
    let started = std::time::Instant::now();
    let mut last_log = started;
    let p = projector::project(&g, class, target.clone(), &lpips, &opts, |step, d| {
        if last_log.elapsed().as_secs_f64() > 10.0 || step == opts.steps || step == 1 {
            tracing::info!("step {step}/{}  LPIPS {d:.4}", opts.steps);
            last_log = std::time::Instant::now();
        }
    })?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| anyhow::anyhow!("{}: {e}", args.out.display()))?;
    let pair = genforge::burn::tensor::Tensor::cat(
        vec![target.clone().inner(), p.image.clone().inner()],
        0,
    );
    save_grid(pair, 2, &args.out.join("proj.png"))?;
    let num_ws = g.num_ws();
    let w_dim = p.w.len();
    let ws: Vec<f32> = (0..num_ws).flat_map(|_| p.w.iter().copied()).collect();
    let npy = args.out.join("projected_w.npy");
    std::fs::write(&npy, projector::npy(&ws, &[1, num_ws, w_dim]))
        .map_err(|e| anyhow::anyhow!("{}: {e}", npy.display()))?;
    let frames: Vec<_> = p
        .frames
        .iter()
        .map(|f| {
            genforge::burn::tensor::Tensor::cat(vec![target.clone().inner(), f.clone().inner()], 3)
        })
        .collect();
    genforge::sample::gif::save_gif(
        genforge::burn::tensor::Tensor::cat(frames, 0),
        &args.out.join("proj.gif"),
        80,
        4,
    )?;
    println!(
        "projected {} in {:.0} s: LPIPS {:.4} -> {:.4}; wrote {}/proj.png, projected_w.npy, proj.gif",
        args.target.display(),
        started.elapsed().as_secs_f64(),
        p.distances.first().copied().unwrap_or(f64::NAN),
        p.distances.last().copied().unwrap_or(f64::NAN),
        args.out.display()
    );
    Ok(())
}
