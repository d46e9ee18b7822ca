//! BigGAN figures: class grids, the truncation-threshold sweep, class morphs.

use std::path::PathBuf;

use anyhow::{Result, bail};
use genforge::models::biggan::Generator;
use genforge::sample::biggan;

use super::{RunArgs, save_grid, save_strip_and_gif};

/// BigGAN: a grid with one row per class.
#[derive(clap::Args)]
pub struct ClassesArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Images per class (one row).
    #[arg(long, default_value_t = 10, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub per_class: usize,
    /// Only these classes (indices or names, comma separated; default: all).
    #[arg(long, value_delimiter = ',')]
    pub classes: Vec<String>,
    #[arg(long, value_name = "T")]
    pub truncation: Option<f64>,
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = crate::whole::<u64>)]
    pub seed: u64,
    #[arg(long, default_value = "classes.png")]
    pub out: PathBuf,
}

pub fn classes(args: ClassesArgs) -> Result<()> {
    let ClassesArgs {
        run,
        per_class,
        classes,
        truncation,
        seed,
        out,
    } = args;
    check_truncation(truncation)?;
    let (g, names, z) = load(&run, truncation)?;
    let picked: Vec<usize> = if classes.is_empty() {
        (0..names.len()).collect()
    } else {
        classes
            .iter()
            .map(|c| biggan::parse_class(c, &names))
            .collect::<std::result::Result<_, _>>()?
    };
    if per_class == 0 {
        bail!("--per-class must be at least 1");
    }
    let images = biggan::class_grid(&g, &picked, per_class, z, seed);
    for (row, c) in picked.iter().enumerate() {
        tracing::info!("row {row}: class {c} ({})", names[*c]);
    }
    save_grid(images, per_class, &out)?;
    Ok(())
}

/// BigGAN: the truncation threshold sweep of one class: one column per threshold (2.0 down
/// to 0.04 by default; the slides' set is --thresholds 0.1,0.4,0.7,1.0), rows of noise
/// seeds.
#[derive(clap::Args)]
pub struct ThresholdArgs {
    #[command(flatten)]
    pub run: RunArgs,
    #[arg(long = "class", value_name = "CLASS")]
    pub class: String,
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "2.0,1.5,1.0,0.7,0.5,0.4,0.2,0.1,0.04"
    )]
    pub thresholds: Vec<f64>,
    #[arg(long, default_value_t = 5, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub rows: usize,
    /// The noise seed (the slides use 9).
    #[arg(long, default_value_t = 9, allow_negative_numbers = true, value_parser = crate::whole::<u64>)]
    pub seed: u64,
    #[arg(long, default_value = "threshold.png")]
    pub out: PathBuf,
}

pub fn threshold(args: ThresholdArgs) -> Result<()> {
    let ThresholdArgs {
        run,
        class,
        thresholds,
        rows,
        seed,
        out,
    } = args;
    let (g, names, _) = load(&run, None)?;
    let c = biggan::parse_class(&class, &names)?;
    if rows == 0 || thresholds.is_empty() {
        bail!("--rows and --thresholds must not be empty");
    }
    let images = biggan::threshold_sweep(&g, c, &thresholds, rows, seed)?;
    save_grid(images, thresholds.len(), &out)?;
    Ok(())
}

/// BigGAN: interpolate between two noise draws and from class A's embedding to class B's
/// (the same class: noise only), --pairs rows of --frames frames, as a grid and a GIF.
#[derive(clap::Args)]
pub struct ClassMorphArgs {
    #[command(flatten)]
    pub run: RunArgs,
    #[arg(long = "a-class")]
    pub a_class: String,
    #[arg(long = "b-class")]
    pub b_class: String,
    #[arg(long, default_value_t = 2, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub pairs: usize,
    #[arg(long, default_value_t = 8, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub frames: usize,
    #[arg(long, value_name = "T")]
    pub truncation: Option<f64>,
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = crate::whole::<u64>)]
    pub seed: u64,
    #[arg(long, default_value = "class-morph.png")]
    pub out: PathBuf,
    /// GIF path (default: --out with a .gif extension); frames run across the pairs.
    #[arg(long)]
    pub gif: Option<PathBuf>,
    #[arg(long, default_value_t = 120, allow_negative_numbers = true, value_parser = crate::whole::<u32>)]
    pub delay_ms: u32,
}

pub fn class_morph(args: ClassMorphArgs) -> Result<()> {
    let ClassMorphArgs {
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
    } = args;
    check_truncation(truncation)?;
    let (g, names, z) = load(&run, truncation)?;
    let a = biggan::parse_class(&a_class, &names)?;
    let b = biggan::parse_class(&b_class, &names)?;
    let images = biggan::interpolation(&g, a, b, pairs, frames, z, seed)?;
    save_strip_and_gif(images, frames, &out, gif, delay_ms)
}

/// The generator of a BigGAN run, the class names of its data, and its latents: truncated at
/// `truncation` when given, else with the run's `sample.z_var`.
fn load(
    run: &RunArgs,
    truncation: Option<f64>,
) -> Result<(Generator, Vec<String>, biggan::Latents)> {
    let (cfg, g, ckpt) = biggan::load(&run.run_dir, run.checkpoint.as_deref(), &run.device()?)?;
    tracing::info!("checkpoint {}", ckpt.display());
    let classes = cfg.model.num_classes().expect("a BigGAN run");
    let names = biggan::class_names(&run.run_dir, &cfg, classes);
    Ok((g, names, biggan::Latents::new(truncation, cfg.sample.z_var)))
}

pub fn check_truncation(t: Option<f64>) -> Result<()> {
    if let Some(t) = t {
        biggan::check_threshold(t)?;
    }
    Ok(())
}
