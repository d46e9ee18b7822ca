//! What people do with a trained BigGAN (the StyleGAN/BigGAN slides, slides 48-63): class-
//! conditional samples, the truncation trick (z drawn from a normal truncated at a threshold by
//! resampling, the paper's section 4.1) and its threshold sweep, and interpolation between two
//! noise vectors or two classes. Latent seeds work as in the slides' notebook: one
//! `noise_seed` fixes the draws of a whole figure.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::TrainConfig;
use crate::models::Generator;
use crate::models::biggan;
use crate::rng::Rng;
use crate::{Error, Result};

/// The thresholds of the sweep figure: 2.0 down to 0.04, as the slides' figures.
pub const SWEEP: [f64; 9] = [2.0, 1.5, 1.0, 0.7, 0.5, 0.4, 0.2, 0.1, 0.04];

/// A BigGAN run's config and its sampling generator (the weight average when kept).
pub fn load(
    run_dir: &Path,
    checkpoint: Option<&Path>,
    device: &Device,
) -> Result<(TrainConfig, biggan::Generator, PathBuf)> {
    super::load_family(run_dir, checkpoint, device, "BigGAN", |g| match g {
        Generator::Big(g) => Some(g),
        _ => None,
    })
}

pub fn check_threshold(t: f64) -> Result<()> {
    if t.is_finite() && t > 0.0 {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "truncation threshold must be positive (the slides use 0.04 to 2), got {t}"
        )))
    }
}

/// Class names of a run: `categories.txt` in the run directory (an imported ImageNet network's),
/// else `categories.txt` or CIFAR-10's `batches.meta.txt` beside or inside `data.path` (`index
/// name` or one name per line); digits name themselves otherwise.
pub fn class_names(run_dir: &Path, cfg: &TrainConfig, classes: usize) -> Vec<String> {
    let path = cfg.resolve_data_path();
    let dirs = [
        run_dir.to_path_buf(),
        path.clone(),
        path.parent().map(Path::to_path_buf).unwrap_or_default(),
    ];
    for dir in dirs {
        for file in ["categories.txt", "batches.meta.txt"] {
            let Ok(text) = std::fs::read_to_string(dir.join(file)) else {
                continue;
            };
            let names: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| match l.split_once(' ') {
                    Some((i, name)) if i.parse::<usize>().is_ok() => name.trim().to_string(),
                    _ => l.to_string(),
                })
                .collect();
            if names.len() >= classes {
                return names;
            }
        }
    }
    (0..classes).map(|i| i.to_string()).collect()
}

/// A class given by index or by name (case-insensitive).
pub fn parse_class(spec: &str, names: &[String]) -> Result<usize> {
    if let Ok(i) = spec.parse::<usize>()
        && i < names.len()
    {
        return Ok(i);
    }
    names
        .iter()
        .position(|n| n.eq_ignore_ascii_case(spec))
        .ok_or_else(|| {
            // ImageNet's 1,000 names are too many to list: those containing the words given.
            let lower = spec.to_lowercase();
            let listed: Vec<&str> = if names.len() <= 20 {
                names.iter().map(String::as_str).collect()
            } else {
                names
                    .iter()
                    .filter(|n| {
                        let n = n.to_lowercase();
                        lower
                            .split_whitespace()
                            .any(|w| w.len() > 2 && n.contains(w))
                    })
                    .take(10)
                    .map(String::as_str)
                    .collect()
            };
            let all: Vec<&str> = names.iter().map(String::as_str).collect();
            let hint = crate::config::did_you_mean(&lower, &all);
            let list = if listed.is_empty() {
                String::new()
            } else {
                format!(" or one of: {}", listed.join(", "))
            };
            Error::Config(format!(
                "unknown class '{spec}'{hint}: use an index below {}{list}",
                names.len()
            ))
        })
}

/// How BigGAN's latents are drawn: each entry from N(0, `var`) (BigGAN-PyTorch's `--z_var`,
/// 1 unless the run's `sample.z_var` says), or from the unit normal truncated at `threshold` by
/// resampling (the truncation trick, whose threshold sets the spread instead).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Latents {
    Normal { var: f64 },
    Truncated { threshold: f64 },
}

impl Latents {
    /// The truncation trick when a threshold is given, else N(0, `z_var`).
    pub fn new(truncation: Option<f64>, z_var: f64) -> Self {
        match truncation {
            Some(threshold) => Latents::Truncated { threshold },
            None => Latents::Normal { var: z_var },
        }
    }

    /// `[n, z_dim]` drawn from `seed`.
    pub fn draw(self, n: usize, z_dim: usize, seed: u64, device: &Device) -> Tensor<2> {
        let mut rng = Rng::new(seed).fork(0xB16);
        let v = match self {
            Latents::Truncated { threshold } => rng.truncated_normal_vec(n * z_dim, threshold),
            Latents::Normal { var } => rng.normal_vec(n * z_dim, 0.0, var.sqrt()),
        };
        Tensor::from_data(TensorData::new(v, [n, z_dim]), device)
    }
}

fn labels(v: Vec<usize>, device: &Device) -> Tensor<1, Int> {
    let n = v.len();
    let v: Vec<i64> = v.into_iter().map(|c| c as i64).collect();
    Tensor::from_data(TensorData::new(v, [n]), device)
}

/// `n` images of `class`, or of the classes in turn when `None`.
pub fn sample(
    g: &biggan::Generator,
    n: usize,
    class: Option<usize>,
    z: Latents,
    seed: u64,
) -> Tensor<4> {
    let device = g.device();
    let classes = g.num_classes();
    let y: Vec<usize> = match class {
        Some(c) => vec![c; n],
        None => (0..n).map(|i| i % classes).collect(),
    };
    g.forward(z.draw(n, g.z_dim, seed, &device), labels(y, &device))
}

/// `per_class` images of each class in `classes`, one row per class.
pub fn class_grid(
    g: &biggan::Generator,
    classes: &[usize],
    per_class: usize,
    z: Latents,
    seed: u64,
) -> Tensor<4> {
    let device = g.device();
    let n = classes.len() * per_class;
    let z = z.draw(n, g.z_dim, seed, &device);
    let y: Vec<usize> = classes
        .iter()
        .flat_map(|&c| std::iter::repeat_n(c, per_class))
        .collect();
    g.forward(z, labels(y, &device))
}

/// The threshold sweep of one class: one column per threshold, `rows` rows, each row's draws
/// from one noise seed (`seed + row`) in every column, as the slides' notebook fixes
/// `noise_seed` while the threshold changes.
pub fn threshold_sweep(
    g: &biggan::Generator,
    class: usize,
    thresholds: &[f64],
    rows: usize,
    seed: u64,
) -> Result<Tensor<4>> {
    for &t in thresholds {
        check_threshold(t)?;
    }
    let device = g.device();
    let mut images = Vec::with_capacity(rows * thresholds.len());
    for r in 0..rows {
        let row_seed = seed.wrapping_add(r as u64);
        let z: Vec<Tensor<2>> = thresholds
            .iter()
            .map(|&threshold| Latents::Truncated { threshold }.draw(1, g.z_dim, row_seed, &device))
            .collect();
        let k = z.len();
        images.push(g.forward(Tensor::cat(z, 0), labels(vec![class; k], &device)));
    }
    Ok(Tensor::cat(images, 0))
}

/// Interpolation for `pairs` pairs with `frames` frames each (both ends included): z moves
/// linearly from one draw to another, and the class embedding from `class_a`'s to `class_b`'s
/// (the same class: only the noise moves), as the slides' `interpolate` cell.
pub fn interpolation(
    g: &biggan::Generator,
    class_a: usize,
    class_b: usize,
    pairs: usize,
    frames: usize,
    z: Latents,
    seed: u64,
) -> Result<Tensor<4>> {
    if frames < 2 || pairs == 0 {
        return Err(Error::Config(
            "interpolation needs at least 2 frames and 1 pair".into(),
        ));
    }
    let device = g.device();
    let za = z.draw(pairs, g.z_dim, seed, &device);
    let zb = z.draw(pairs, g.z_dim, seed.wrapping_add(1_000_003), &device);
    let ea = g.embed(labels(vec![class_a; pairs], &device));
    let eb = g.embed(labels(vec![class_b; pairs], &device));
    let mut rows = Vec::with_capacity(pairs);
    for p in 0..pairs {
        let pick = |t: &Tensor<2>| t.clone().narrow(0, p, 1);
        let (z0, z1, e0, e1) = (pick(&za), pick(&zb), pick(&ea), pick(&eb));
        let mut z = Vec::with_capacity(frames);
        let mut e = Vec::with_capacity(frames);
        for f in 0..frames {
            let t = f as f64 / (frames - 1) as f64;
            z.push(z0.clone() * (1.0 - t) + z1.clone() * t);
            e.push(e0.clone() * (1.0 - t) + e1.clone() * t);
        }
        rows.push(g.forward_embedded(Tensor::cat(z, 0), Tensor::cat(e, 0)));
    }
    Ok(Tensor::cat(rows, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_latents_are_inside_and_repeat_per_seed() {
        let device = Device::flex();
        let trunc = Latents::new(Some(0.5), 2.0);
        let z = trunc.draw(50, 8, 3, &device);
        let v = z.clone().into_data().try_to_vec::<f32>().unwrap();
        assert!(v.iter().all(|x| x.abs() <= 0.5));
        assert_eq!(trunc.draw(50, 8, 3, &device).into_data(), z.into_data());
    }

    /// `z_var` scales the untruncated draws: the same seed's draws times `sqrt(var)`, with the
    /// sample variance of many draws near `var`.
    #[test]
    fn latent_variance_follows_z_var() {
        let device = Device::flex();
        let unit = crate::testing::values(Latents::new(None, 1.0).draw(400, 50, 4, &device));
        let wide = crate::testing::values(Latents::new(None, 1.44).draw(400, 50, 4, &device));
        for (u, w) in unit.iter().zip(&wide) {
            assert!((u * 1.2 - w).abs() < 1e-5, "{u} x 1.2 vs {w}");
        }
        let var = wide.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / wide.len() as f64;
        assert!((var - 1.44).abs() < 0.05, "sample variance {var}");
    }

    #[test]
    fn classes_parse_by_index_or_name() {
        let names: Vec<String> = ["Activities", "Animals & Nature", "Flags"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(parse_class("2", &names).unwrap(), 2);
        assert_eq!(parse_class("flags", &names).unwrap(), 2);
        assert_eq!(parse_class("Animals & Nature", &names).unwrap(), 1);
        let err = parse_class("7", &names).unwrap_err().to_string();
        assert!(err.contains("Activities"), "{err}");
    }

    #[test]
    fn a_run_s_own_class_names_come_first() {
        // An imported ImageNet network: the names sit in the run directory.
        let run = tempfile::tempdir().unwrap();
        let cfg = TrainConfig::load("biggan-imagenet128", &[]).unwrap();
        assert_eq!(class_names(run.path(), &cfg, 1000)[207], "207");
        std::fs::write(
            run.path().join(crate::import::biggan::CLASS_NAMES),
            crate::import::biggan::IMAGENET_CLASSES,
        )
        .unwrap();
        let names = class_names(run.path(), &cfg, 1000);
        assert_eq!(parse_class("golden retriever", &names).unwrap(), 207);
        assert_eq!(parse_class("Tench", &names).unwrap(), 0);
        let err = parse_class("golden retrievr", &names)
            .unwrap_err()
            .to_string();
        assert!(err.contains("did you mean 'golden retriever'?"), "{err}");
        assert!(err.contains("golden retriever") && err.len() < 400, "{err}");
    }

    fn tiny_g() -> biggan::Generator {
        match crate::testing::preset_gan("biggan-tiny").0 {
            Generator::Big(g) => g,
            _ => unreachable!("biggan-tiny is a BigGAN"),
        }
    }

    /// Row k of the class grid is G on that row's latents with class k, and differs from the
    /// same latents with another class (so the label reaches G, in the row's order).
    #[test]
    fn class_grid_rows_are_their_classes() {
        let (g, device) = (tiny_g(), Device::flex());
        let (classes, per) = ([2, 0, 3], 3);
        let z = Latents::new(Some(0.7), 1.0);
        let grid = class_grid(&g, &classes, per, z, 5);
        let z = z.draw(classes.len() * per, g.z_dim, 5, &device);
        for (row, &c) in classes.iter().enumerate() {
            let z_row = z.clone().narrow(0, row * per, per);
            let got = grid.clone().narrow(0, row * per, per);
            let want = g.forward(z_row.clone(), labels(vec![c; per], &device));
            crate::testing::assert_close(got.clone(), want, 1e-5, &format!("row {row}"));
            let other = g.forward(z_row, labels(vec![(c + 1) % 4; per], &device));
            let diff = (got - other).abs().max().into_scalar::<f32>();
            assert!(
                diff > 1e-4,
                "row {row}: class {c} draws what class {} draws",
                (c + 1) % 4
            );
        }
    }

    /// Column j of the threshold sweep is G on a latent drawn inside threshold j from the
    /// row's seed, for the sweep's class.
    #[test]
    fn threshold_sweep_columns_draw_inside_their_thresholds() {
        let (g, device) = (tiny_g(), Device::flex());
        let (thresholds, rows, seed) = ([2.0, 0.5, 0.04], 2, 7);
        let sweep = threshold_sweep(&g, 1, &thresholds, rows, seed).unwrap();
        assert_eq!(sweep.dims()[0], rows * thresholds.len());
        for r in 0..rows {
            for (j, &t) in thresholds.iter().enumerate() {
                let z = Latents::new(Some(t), 1.0).draw(1, g.z_dim, seed + r as u64, &device);
                let zv = crate::testing::values(z.clone());
                assert!(zv.iter().all(|v| v.abs() <= t as f32), "row {r} column {j}");
                let want = g.forward(z, labels(vec![1], &device));
                let got = sweep.clone().narrow(0, r * thresholds.len() + j, 1);
                crate::testing::assert_close(got, want, 1e-5, &format!("row {r} column {j}"));
            }
        }
    }
}
