//! What people do with a trained StyleGAN (Karras et al. 2019) or StyleGAN2: the truncation
//! trick in W and its psi sweep (figure 8), style-mixing grids (figure 3), the noise figures
//! (figures 4 and 5) and A-to-B morphs. Each seed is one latent, `latents(1, z_dim, seed)`, so a
//! seed names the same image in every figure and in `genforge sample`. The figures see a
//! generator through [`StyleBased`], which both families implement.

use std::ops::Range;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};

use super::latents;
use crate::config::TrainConfig;
use crate::models::stylegan::{self, Noise};
use crate::models::{Generator, stylegan2};
use crate::rng::Rng;
use crate::{Error, Result};

fn unconditional() -> Error {
    Error::Config("--class: this network is unconditional; leave --class out".into())
}

/// The one-hot `[1, classes]` of `--class` (an index or a class name) for a StyleGAN2 with
/// `classes` classes; `None` for an unconditional one. An error when a conditional network gets
/// no class or an unconditional one gets one.
pub fn class_vector(
    run_dir: &Path,
    cfg: &TrainConfig,
    classes: usize,
    class: Option<&str>,
    device: &Device,
) -> Result<Option<Tensor<2>>> {
    match (classes, class) {
        (0, None) => Ok(None),
        (0, Some(_)) => Err(unconditional()),
        (k, None) => Err(Error::Config(format!(
            "this StyleGAN2 is conditional on {k} classes: give --class (an index or a class name)"
        ))),
        (k, Some(spec)) => {
            let names = super::biggan::class_names(run_dir, cfg, k);
            let i = super::biggan::parse_class(spec, &names)?;
            let mut v = vec![0f32; k];
            v[i] = 1.0;
            Ok(Some(Tensor::from_data(TensorData::new(v, [1, k]), device)))
        }
    }
}

/// psi beyond this magnitude only extrapolates into noise; the paper's sweeps stay in [-1, 1].
pub const MAX_PSI: f64 = 2.0;

/// A style-based generator as the figures use it: `z -> w`, the truncation centre, and a
/// synthesis network taking one `w` per style input and one noise image per noise input.
pub trait StyleBased {
    fn z_dim(&self) -> usize;
    fn device(&self) -> Device;
    /// The ws the synthesis network takes (StyleGAN's style layers, StyleGAN2's `num_ws`).
    fn num_ws(&self) -> usize;
    /// `[b, z_dim] -> [b, w_dim]`
    fn to_w(&self, z: Tensor<2>) -> Tensor<2>;
    /// `[w_dim]`
    fn w_avg(&self) -> Tensor<1>;
    /// Side of each noise input, in synthesis order.
    fn noise_sides(&self) -> Vec<usize>;
    fn synthesis(&self, ws: &[Tensor<2>], noise: Noise) -> Tensor<4>;

    /// The truncation trick in W: `w_avg + psi (w - w_avg)`.
    fn truncate(&self, w: Tensor<2>, psi: f64) -> Tensor<2> {
        stylegan2::truncate(self.w_avg(), w, psi)
    }

    /// N(0, 1) noise images for every noise input of a batch of `b`, drawn in order.
    fn random_noise(&self, b: usize, rng: &mut Rng) -> Vec<Option<Tensor<4>>> {
        let device = self.device();
        self.noise_sides()
            .into_iter()
            .map(|side| Some(crate::nn::noise::noise_image(b, side, rng, &device)))
            .collect()
    }

    /// Images with `w` truncated by `psi` in the first `cutoff` ws (all when `None`), noise
    /// from `rng`.
    fn generate(&self, z: Tensor<2>, psi: f64, cutoff: Option<usize>, rng: &mut Rng) -> Tensor<4> {
        let w = self.to_w(z);
        let t = self.truncate(w.clone(), psi);
        let cut = cutoff.unwrap_or(self.num_ws());
        let ws = stylegan2::crossover(t, w, cut, self.num_ws());
        self.synthesis(&ws, Noise::Random(rng))
    }
}

impl StyleBased for stylegan::Generator {
    fn z_dim(&self) -> usize {
        self.z_dim
    }
    fn device(&self) -> Device {
        stylegan::Generator::device(self)
    }
    fn num_ws(&self) -> usize {
        self.num_layers()
    }
    fn to_w(&self, z: Tensor<2>) -> Tensor<2> {
        stylegan::Generator::to_w(self, z)
    }
    fn w_avg(&self) -> Tensor<1> {
        self.w_avg.val()
    }
    fn noise_sides(&self) -> Vec<usize> {
        (0..self.num_layers())
            .map(|i| self.layer_resolution(i))
            .collect()
    }
    fn synthesis(&self, ws: &[Tensor<2>], noise: Noise) -> Tensor<4> {
        stylegan::Generator::synthesis(self, ws, noise)
    }
}

/// A StyleGAN2 generator with the class it draws (`None` when unconditional).
pub struct Stylegan2 {
    pub g: stylegan2::Generator,
    /// One-hot, `[1, num_classes]`.
    pub class: Option<Tensor<2>>,
}

impl StyleBased for Stylegan2 {
    fn z_dim(&self) -> usize {
        self.g.z_dim
    }
    fn device(&self) -> Device {
        self.g.device()
    }
    fn num_ws(&self) -> usize {
        self.g.num_ws()
    }
    fn to_w(&self, z: Tensor<2>) -> Tensor<2> {
        let b = z.dims()[0];
        let c = self.class.as_ref().map(|c| c.clone().repeat_dim(0, b));
        self.g.to_w(z, c)
    }
    fn w_avg(&self) -> Tensor<1> {
        self.g.w_avg()
    }
    fn noise_sides(&self) -> Vec<usize> {
        self.g
            .conv_layers()
            .iter()
            .map(|l| l.resolution())
            .collect()
    }
    fn synthesis(&self, ws: &[Tensor<2>], noise: Noise) -> Tensor<4> {
        self.g.synthesis(ws, noise)
    }
}

/// A StyleGAN or StyleGAN2 run's config and its sampling generator (the weight average when
/// kept); `class` (an index or a class name) is the class a conditional StyleGAN2 draws.
pub fn load(
    run_dir: &Path,
    checkpoint: Option<&Path>,
    device: &Device,
    class: Option<&str>,
) -> Result<(TrainConfig, Box<dyn StyleBased>, PathBuf)> {
    let (cfg, g, ckpt) = super::load_family(run_dir, checkpoint, device, "StyleGAN", |g| {
        matches!(g, Generator::Style(_) | Generator::Style2(_)).then_some(g)
    })?;
    let g: Box<dyn StyleBased> = match g {
        Generator::Style(g) if class.is_none() => Box::new(g),
        Generator::Style2(g) => {
            let class = class_vector(run_dir, &cfg, g.num_classes, class, device)?;
            Box::new(Stylegan2 { g, class })
        }
        _ => return Err(unconditional()),
    };
    Ok((cfg, g, ckpt))
}

pub fn check_psi(psi: f64) -> Result<()> {
    if psi.is_finite() && psi.abs() <= MAX_PSI {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "psi must be in [-{MAX_PSI}, {MAX_PSI}] (1: no truncation, 0: the average image), got {psi}"
        )))
    }
}

/// An error unless `cutoff` (layers truncated, from the first) fits the network.
pub fn check_layers(g: &dyn StyleBased, layers: &Range<usize>) -> Result<()> {
    let n = g.num_ws();
    if layers.start < layers.end && layers.end <= n {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "layers {}..{} are not inside this generator's {n} style layers (0..{n})",
            layers.start, layers.end
        )))
    }
}

fn z_of(g: &dyn StyleBased, seed: u64) -> Tensor<2> {
    latents(1, g.z_dim(), seed, &g.device())
}

fn w_of(g: &dyn StyleBased, seed: u64) -> Tensor<2> {
    g.to_w(z_of(g, seed))
}

/// One image per seed with `psi` applied to the first `cutoff` layers (all when `None`), each
/// with its seed's noise.
pub fn generate_seeds(
    g: &dyn StyleBased,
    seeds: &[u64],
    psi: f64,
    cutoff: Option<usize>,
) -> Result<Tensor<4>> {
    check_psi(psi)?;
    if let Some(c) = cutoff {
        check_layers(g, &(0..c.max(1)))?;
    }
    let imgs = seeds
        .iter()
        .map(|&s| g.generate(z_of(g, s), psi, cutoff, &mut Rng::new(s)))
        .collect();
    Ok(Tensor::cat(imgs, 0))
}

/// The psi sweep: one row per seed, one column per psi; `[seeds * psis, c, h, w]`, row-major.
pub fn truncation_sweep(
    g: &dyn StyleBased,
    seeds: &[u64],
    psis: &[f64],
    cutoff: Option<usize>,
) -> Result<Tensor<4>> {
    let mut rows = Vec::new();
    for &s in seeds {
        for &psi in psis {
            rows.push(generate_seeds(g, &[s], psi, cutoff)?);
        }
    }
    Ok(Tensor::cat(rows, 0))
}

/// The paper's style ranges by resolution: coarse 4x4-8x8, middle 16x16-32x32, fine 64x64 and
/// up. A network of 32x32 or less keeps its last resolution as "fine".
pub fn style_range(g: &dyn StyleBased, name: &str) -> Result<Range<usize>> {
    let n = g.num_ws();
    let levels = n / 2;
    let mid_end = 4.min(levels.saturating_sub(1)).max(2);
    let r = match name {
        "coarse" => 0..4.min(n),
        "middle" => 4.min(n)..2 * mid_end,
        "fine" => 2 * mid_end..n,
        other => {
            let parsed = other.split_once("..").and_then(|(a, b)| {
                Some(a.trim().parse::<usize>().ok()?..b.trim().parse::<usize>().ok()?)
            });
            return match parsed {
                Some(r) => check_layers(g, &r).map(|_| r),
                None => Err(Error::Config(format!(
                    "--styles '{other}': use coarse, middle, fine or a layer range A..B (0..{n})"
                ))),
            };
        }
    };
    check_layers(g, &r).map_err(|_| {
        Error::Config(format!(
            "this {n}-layer generator has no {name} styles; give a layer range A..B instead"
        ))
    })?;
    Ok(r)
}

/// The style-mixing grid: a blank corner, source A images across the top, source B images down
/// the side, and in cell (i, j) A_j's image with B_i's styles in `layers`. Returns
/// `(images, columns)` for [`super::grid::make_grid`].
pub fn mixing_grid(
    g: &dyn StyleBased,
    a: &[u64],
    b: &[u64],
    layers: Range<usize>,
) -> Result<(Tensor<4>, usize)> {
    check_layers(g, &layers)?;
    let n = g.num_ws();
    let image = |ws: Vec<Tensor<2>>, noise_seed: u64| {
        g.synthesis(&ws, Noise::Random(&mut Rng::new(noise_seed)))
    };
    let wa: Vec<Tensor<2>> = a.iter().map(|&s| w_of(g, s)).collect();
    let wb: Vec<Tensor<2>> = b.iter().map(|&s| w_of(g, s)).collect();
    let first = image(vec![wa[0].clone(); n], a[0]);
    let blank = first.ones_like(); // white
    let mut cells = vec![blank];
    for (w, &s) in wa.iter().zip(a) {
        cells.push(image(vec![w.clone(); n], s));
    }
    for (w_b, &sb) in wb.iter().zip(b) {
        cells.push(image(vec![w_b.clone(); n], sb));
        for (w_a, &sa) in wa.iter().zip(a) {
            let ws = (0..n)
                .map(|i| {
                    if layers.contains(&i) {
                        w_b.clone()
                    } else {
                        w_a.clone()
                    }
                })
                .collect();
            cells.push(image(ws, sa));
        }
    }
    Ok((Tensor::cat(cells, 0), a.len() + 1))
}

/// Which layers get noise in a panel of the noise figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoiseLayers {
    All,
    None,
    /// The coarse half of the resolutions (the paper: 4x4-32x32 of 4x4-1024x1024).
    Coarse,
    /// The fine half.
    Fine,
}

/// Per noise input, whether `which` keeps it: coarse is the lower half of the resolutions
/// (at least 4x4), fine the rest.
fn noise_mask(g: &dyn StyleBased, which: NoiseLayers) -> Vec<bool> {
    let sides = g.noise_sides();
    let levels = sides
        .iter()
        .max()
        .map_or(1, |m| m.trailing_zeros() as usize - 1);
    let coarse_levels = (levels / 2).max(1);
    sides
        .into_iter()
        .map(|side| {
            let coarse = (side.trailing_zeros() as usize - 2) < coarse_levels;
            match which {
                NoiseLayers::All => true,
                NoiseLayers::None => false,
                NoiseLayers::Coarse => coarse,
                NoiseLayers::Fine => !coarse,
            }
        })
        .collect()
}

/// The image of `w` with noise drawn from `rng` in the layers `which` selects.
pub fn with_noise(
    g: &dyn StyleBased,
    w: Tensor<2>,
    which: NoiseLayers,
    rng: &mut Rng,
) -> Tensor<4> {
    let noise = g
        .random_noise(w.dims()[0], rng)
        .into_iter()
        .zip(noise_mask(g, which))
        .map(|(n, keep)| if keep { n } else { None })
        .collect();
    g.synthesis(&vec![w; g.num_ws()], Noise::Fixed(noise))
}

/// The noise figure for each seed, one row each: the image with noise everywhere, with none,
/// in the coarse layers only, in the fine layers only, two more noise draws, and the per-pixel
/// standard deviation over `draws` noise draws (scaled to [-1, 1], brighter = more variation).
pub fn noise_figure(g: &dyn StyleBased, seeds: &[u64], draws: usize) -> Result<(Tensor<4>, usize)> {
    if draws < 2 {
        return Err(Error::Config(format!(
            "--draws must be at least 2, got {draws}"
        )));
    }
    let mut cells = Vec::new();
    for &s in seeds {
        let w = w_of(g, s);
        let mut rng = Rng::new(s).fork(0x401);
        for which in [
            NoiseLayers::All,
            NoiseLayers::None,
            NoiseLayers::Coarse,
            NoiseLayers::Fine,
        ] {
            cells.push(with_noise(g, w.clone(), which, &mut Rng::new(s)));
        }
        let samples: Vec<Tensor<4>> = (0..draws)
            .map(|_| with_noise(g, w.clone(), NoiseLayers::All, &mut rng))
            .collect();
        cells.push(samples[0].clone());
        cells.push(samples[1].clone());
        let stack = Tensor::cat(samples, 0); // [draws, c, h, w]
        let std = stack.var(0).sqrt().mean_dim(1); // [1, 1, h, w]
        let max = std.clone().max().into_scalar::<f32>().max(1e-8);
        let c = cells[0].dims()[1];
        cells.push((std / max * 2.0 - 1.0).repeat_dim(1, c));
    }
    Ok((Tensor::cat(cells, 0), 7))
}

/// Spherical interpolation between two latents (Shoemake), falling back to lerp when they are
/// nearly parallel.
pub fn slerp(a: Tensor<2>, b: Tensor<2>, t: f64) -> Tensor<2> {
    let na = a.clone().square().sum().sqrt().into_scalar::<f32>() as f64;
    let nb = b.clone().square().sum().sqrt().into_scalar::<f32>() as f64;
    let cos =
        ((a.clone() * b.clone()).sum().into_scalar::<f32>() as f64 / (na * nb)).clamp(-1.0, 1.0);
    let omega = cos.acos();
    if omega.sin().abs() < 1e-6 {
        return a.clone() + (b - a) * t;
    }
    let (sa, sb) = (
        ((1.0 - t) * omega).sin() / omega.sin(),
        (t * omega).sin() / omega.sin(),
    );
    a * sa + b * sb
}

/// `frames` images from seed `a` to seed `b`: lerp in W (the slides' morph), or slerp in Z;
/// `psi` truncates every frame; the noise is `a`'s throughout so only the latent moves.
pub fn morph(
    g: &dyn StyleBased,
    a: u64,
    b: u64,
    frames: usize,
    slerp_z: bool,
    psi: f64,
) -> Result<Tensor<4>> {
    check_psi(psi)?;
    if frames < 2 {
        return Err(Error::Config(format!(
            "--frames must be at least 2, got {frames}"
        )));
    }
    let (za, zb) = (z_of(g, a), z_of(g, b));
    let (wa, wb) = (g.to_w(za.clone()), g.to_w(zb.clone()));
    let out = (0..frames)
        .map(|i| {
            let t = i as f64 / (frames - 1) as f64;
            let w = if slerp_z {
                g.to_w(slerp(za.clone(), zb.clone(), t))
            } else {
                wa.clone() + (wb.clone() - wa.clone()) * t
            };
            let w = g.truncate(w, psi);
            g.synthesis(&vec![w; g.num_ws()], Noise::Random(&mut Rng::new(a)))
        })
        .collect();
    Ok(Tensor::cat(out, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::stylegan::{Generator, StyleganConfig};
    use burn::tensor::TensorData;

    fn g() -> Generator {
        let cfg = StyleganConfig {
            z_dim: 8,
            w_dim: 8,
            mapping_layers: 2,
            channels: 1,
            resolution: 32,
            channel_base: 32,
            channel_max: 8,
            ..Default::default()
        };
        Generator::new(&cfg, &mut Rng::new(0), &Device::flex())
    }

    #[test]
    fn style_ranges_cover_the_paper_levels() {
        let g = g(); // 8 layers: 4, 4, 8, 8, 16, 16, 32, 32
        assert_eq!(style_range(&g, "coarse").unwrap(), 0..4);
        assert_eq!(style_range(&g, "middle").unwrap(), 4..6);
        assert_eq!(style_range(&g, "fine").unwrap(), 6..8);
        assert_eq!(style_range(&g, "2..5").unwrap(), 2..5);
        assert!(
            style_range(&g, "3..9")
                .unwrap_err()
                .to_string()
                .contains("8 style layers")
        );
        assert!(style_range(&g, "huge").is_err());
        let paper = Generator::new(
            &StyleganConfig {
                channel_base: 64,
                channel_max: 4,
                z_dim: 4,
                w_dim: 4,
                mapping_layers: 1,
                ..Default::default()
            },
            &mut Rng::new(0),
            &Device::flex(),
        );
        assert_eq!(style_range(&paper, "middle").unwrap(), 4..8); // 16x16 and 32x32
        assert_eq!(style_range(&paper, "fine").unwrap(), 8..18); // 64x64 to 1024x1024
    }

    #[test]
    fn mixing_grid_cells_swap_the_selected_styles() {
        let g = g();
        let (grid, cols) = mixing_grid(&g, &[1, 2], &[3], 0..8).unwrap();
        assert_eq!((grid.dims()[0], cols), (6, 3));
        // With every layer swapped, a cell is B's latent with A's noise.
        let b_with_a_noise = g.synthesis(&vec![w_of(&g, 3); 8], Noise::Random(&mut Rng::new(1)));
        let cell = grid.narrow(0, 4, 1);
        assert!((cell - b_with_a_noise).abs().max().into_scalar::<f32>() < 1e-6);
        assert!(check_psi(2.5).is_err() && check_psi(-1.0).is_ok());
    }

    #[test]
    fn slerp_keeps_the_endpoints_and_the_norm_of_equal_norm_latents() {
        let d = Device::flex();
        let a = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 0.0], [1, 2]), &d);
        let b = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 1.0], [1, 2]), &d);
        let mid = slerp(a.clone(), b.clone(), 0.5)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let h = std::f32::consts::FRAC_1_SQRT_2;
        assert!((mid[0] - h).abs() < 1e-6 && (mid[1] - h).abs() < 1e-6);
        let end = slerp(a, b, 1.0).into_data().try_to_vec::<f32>().unwrap();
        assert!(end[0].abs() < 1e-6 && (end[1] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn noise_figure_panels() {
        let g = g();
        let (fig, cols) = noise_figure(&g, &[0], 4).unwrap();
        assert_eq!((fig.dims()[0], cols), (7, 7));
        // The noise-free panel does not depend on the noise generator.
        let w = w_of(&g, 0);
        let a = with_noise(&g, w.clone(), NoiseLayers::None, &mut Rng::new(5));
        let b = with_noise(&g, w, NoiseLayers::None, &mut Rng::new(6));
        assert_eq!((a - b).abs().max().into_scalar::<f32>(), 0.0);
        assert_eq!(
            noise_mask(&g, NoiseLayers::Coarse),
            [true, true, true, true, false, false, false, false]
        );
    }

    /// A morph's first and last frames are seeds A and B (their `w`, truncated), drawn with the
    /// morph's fixed noise, for both interpolations.
    #[test]
    fn morph_ends_at_seeds_a_and_b() {
        let g = g();
        let (a, b, psi) = (3, 11, 0.7);
        for slerp_z in [false, true] {
            let m = morph(&g, a, b, 5, slerp_z, psi).unwrap();
            assert_eq!(m.dims()[0], 5);
            for (frame, seed) in [(0, a), (4, b)] {
                let w = g.truncate(w_of(&g, seed), psi);
                let want = g.synthesis(&vec![w; g.num_layers()], Noise::Random(&mut Rng::new(a)));
                let got = m.clone().narrow(0, frame, 1);
                crate::testing::assert_close(
                    got,
                    want,
                    1e-4,
                    &format!("frame {frame}, slerp {slerp_z}"),
                );
            }
            let (first, mid) = (m.clone().narrow(0, 0, 1), m.narrow(0, 2, 1));
            assert!(
                (first - mid).abs().max().into_scalar::<f32>() > 1e-4,
                "the morph moves"
            );
        }
    }
}
