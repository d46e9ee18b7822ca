//! LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual
//! Metric"), version 0.1 with the VGG16 trunk, as the `lpips` package computes it: the images
//! (in [-1, 1]) shifted and scaled per channel, torchvision's VGG16 `features` up to `relu5_3`,
//! the five taps `relu1_2 .. relu5_3` normalised to unit length over channels, their squared
//! differences weighted per channel by the learned linear heads, averaged over space and summed
//! over the taps. The trunk is the user's torchvision `vgg16-397923af.pth`; the heads are the
//! package's `weights/v0.1/vgg.pth` (BSD-2-Clause), shipped in `data/lpips/`.

use std::path::{Path, PathBuf};

use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor, TensorData, activation::relu};

use crate::nn::gemm_conv::conv2d_routed;
use crate::{Error, Result};

pub const VGG16_FILE: &str = "vgg16-397923af.pth";
pub const VGG16_URL: &str = "https://download.pytorch.org/models/vgg16-397923af.pth";
/// torchvision checks its files by this prefix of their SHA-256 (the name's hash part).
pub const VGG16_SHA256_PREFIX: &str = "397923af";
/// The `lpips` package's linear heads for the VGG trunk, version 0.1.
pub const HEADS: &[u8] = include_bytes!("../../../../data/lpips/vgg-v0.1.pth");

/// torchvision VGG16's convolutions: `features` index, in and out channels.
const CONVS: [(usize, usize, usize); 13] = [
    (0, 3, 64),
    (2, 64, 64),
    (5, 64, 128),
    (7, 128, 128),
    (10, 128, 256),
    (12, 256, 256),
    (14, 256, 256),
    (17, 256, 512),
    (19, 512, 512),
    (21, 512, 512),
    (24, 512, 512),
    (26, 512, 512),
    (28, 512, 512),
];
/// The convolutions whose ReLU is a tap (`relu1_2`, ..., `relu5_3`); a 2x2 max pool follows each
/// but the last.
const TAPS: [usize; 5] = [2, 7, 14, 21, 28];
/// The `lpips` ScalingLayer.
const SHIFT: [f32; 3] = [-0.030, -0.088, -0.188];
const SCALE: [f32; 3] = [0.458, 0.448, 0.450];

/// The LPIPS network: VGG16's convolutions and the five heads, constants on `device`.
pub struct Lpips {
    /// `([out, in, 3, 3], [out])` per convolution of [`CONVS`].
    convs: Vec<(Tensor<4>, Tensor<1>)>,
    /// `[1, c, 1, 1]` per tap.
    heads: Vec<Tensor<4>>,
}

/// Where the VGG16 file is looked for: `$GENFORGE_VGG16`, then the cache directory.
pub fn candidate_paths() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("GENFORGE_VGG16") {
        out.push(PathBuf::from(p));
    }
    if let Some(d) = crate::data::shipped::cache_root() {
        out.push(d.join(VGG16_FILE));
    }
    out
}

fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

impl Lpips {
    /// From `get(key, shape)`, the values of torchvision's `features.N.weight` / `.bias`.
    fn build(
        mut get: impl FnMut(&str, &[usize]) -> Result<Vec<f32>>,
        device: &Device,
    ) -> Result<Self> {
        let mut convs = Vec::new();
        for (i, cin, cout) in CONVS {
            let w = get(&format!("features.{i}.weight"), &[cout, cin, 3, 3])?;
            let b = get(&format!("features.{i}.bias"), &[cout])?;
            convs.push((
                tensor(w, [cout, cin, 3, 3], device),
                tensor(b, [cout], device),
            ));
        }
        Ok(Lpips {
            convs,
            heads: heads(device)?,
        })
    }

    /// The user's torchvision VGG16 file (`path`, else [`candidate_paths`]), checked as
    /// torchvision checks it, with the shipped heads.
    pub fn load(path: Option<&Path>, device: &Device) -> Result<Self> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => candidate_paths()
                .into_iter()
                .find(|p| p.is_file())
                .ok_or_else(|| {
                    Error::Config(format!(
                        "LPIPS needs torchvision's VGG16 weights ({VGG16_FILE}, 528 MB): download \
                         {VGG16_URL} and give it with --vgg16, point GENFORGE_VGG16 at it, or put \
                         it in {}",
                        candidate_paths()
                            .last()
                            .map_or("the cache directory".into(), |p| p.display().to_string())
                    ))
                })?,
        };
        let sha = crate::import::sha256(&path)?;
        if !sha.starts_with(VGG16_SHA256_PREFIX) {
            return Err(Error::data(
                &path,
                format!(
                    "SHA-256 is {sha}, which does not start with {VGG16_SHA256_PREFIX} as \
                     torchvision's {VGG16_FILE} does; download it again from {VGG16_URL}"
                ),
            ));
        }
        let tensors = crate::import::read_torch(&path)?;
        Self::build(
            |key, shape| {
                let t = tensors.get(key).ok_or_else(|| {
                    Error::data(&path, format!("has no {key}: not torchvision's VGG16"))
                })?;
                if t.shape.to_vec() != shape {
                    return Err(Error::data(
                        &path,
                        format!("{key} has shape {:?}, VGG16's is {shape:?}", t.shape),
                    ));
                }
                values(t).map_err(|e| Error::data(&path, format!("{key}: {e}")))
            },
            device,
        )
    }

    /// VGG16 with the deterministic formula weights of `scripts/lpips_golden.py`, for tests.
    pub fn formula(device: &Device) -> Self {
        // Conv weights uniform with bound sqrt(6 / fan_in), biases 0.1 u: the Inception
        // formula's rules for these keys.
        Self::build(
            |key, shape| Ok(super::inception::formula(key, shape)),
            device,
        )
        .expect("formula weights")
    }

    /// The five taps of `x` (`[b, 3, h, w]` in [-1, 1]).
    pub fn features(&self, x: Tensor<4>) -> Vec<Tensor<4>> {
        let device = x.device();
        let shift = tensor(SHIFT.to_vec(), [1, 3, 1, 1], &device);
        let scale = tensor(SCALE.to_vec(), [1, 3, 1, 1], &device);
        let mut h = (x - shift) / scale;
        let mut taps = Vec::new();
        for ((i, _, _), (w, b)) in CONVS.iter().zip(&self.convs) {
            h = relu(conv2d_routed(h, w.clone(), Some(b.clone()), 1, 1));
            if TAPS.contains(i) {
                taps.push(h.clone());
                if taps.len() < TAPS.len() {
                    h = max_pool2d(h, MaxPoolOptions::new([2, 2]).with_stride([2, 2]));
                }
            }
        }
        taps
    }

    /// Per-tap distances `[b]` of the image pairs `a`, `b` (`[b, 3, h, w]` in [-1, 1]; one
    /// channel is repeated to three).
    pub fn layers(&self, a: Tensor<4>, b: Tensor<4>) -> Vec<Tensor<1>> {
        let rgb = |x: Tensor<4>| {
            if x.dims()[1] == 1 {
                x.repeat_dim(1, 3)
            } else {
                x
            }
        };
        let n = a.dims()[0];
        let (fa, fb) = (self.features(rgb(a)), self.features(rgb(b)));
        fa.into_iter()
            .zip(fb)
            .zip(&self.heads)
            .map(|((x, y), head)| {
                let d = (unit(x) - unit(y)).square(); // [b, c, h, w]
                let weighted = (d * head.clone()).sum_dim(1); // [b, 1, h, w]
                weighted.mean_dim(3).mean_dim(2).reshape([n])
            })
            .collect()
    }

    /// LPIPS of each pair, `[b]`.
    pub fn distance(&self, a: Tensor<4>, b: Tensor<4>) -> Tensor<1> {
        let layers = self.layers(a, b);
        layers.into_iter().reduce(|x, y| x + y).expect("five taps")
    }
}

/// The image files of `dir` (PNG or JPEG, not recursive), sorted by name.
fn images_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_lowercase().as_str()))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// An image file as `[1, 3, h, w]` in [-1, 1], resized to `size` when given.
fn load_rgb(path: &Path, size: Option<(u32, u32)>, device: &Device) -> Result<Tensor<4>> {
    let img = image::open(path)
        .map_err(|e| Error::data(path, format!("cannot be read as an image: {e}")))?;
    let img = match size {
        Some((w, h)) if (img.width(), img.height()) != (w, h) => {
            img.resize_exact(w, h, image::imageops::FilterType::Lanczos3)
        }
        _ => img,
    };
    let rgb = img.to_rgb8();
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let mut planes = vec![0f32; 3 * w * h];
    for (i, p) in rgb.pixels().enumerate() {
        for c in 0..3 {
            planes[c * w * h + i] = p.0[c] as f32 / 127.5 - 1.0;
        }
    }
    Ok(tensor(planes, [1, 3, h, w], device))
}

/// Mean and standard deviation of LPIPS over image pairs: the files of `a` and `b` paired in
/// name order (at most `n` pairs; `b`'s images resized to their partner's size).
pub fn folders(
    net: &Lpips,
    a: &Path,
    b: &Path,
    n: usize,
    device: &Device,
) -> Result<(f64, f64, usize)> {
    let (fa, fb) = (images_in(a)?, images_in(b)?);
    if fa.len() != fb.len() || fa.is_empty() {
        return Err(Error::Config(format!(
            "LPIPS pairs the images of two folders in name order: {} holds {} and {} holds {}",
            a.display(),
            fa.len(),
            b.display(),
            fb.len()
        )));
    }
    let mut d = Vec::new();
    for (pa, pb) in fa.iter().zip(&fb).take(n.max(1)) {
        let x = load_rgb(pa, None, device)?;
        let [_, _, h, w] = x.dims();
        let y = load_rgb(pb, Some((w as u32, h as u32)), device)?;
        d.push(net.distance(x, y).into_scalar::<f32>() as f64);
    }
    let mean = d.iter().sum::<f64>() / d.len() as f64;
    let var = d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d.len() as f64;
    Ok((mean, var.sqrt(), d.len()))
}

/// `x / (||x||_channels + 1e-10)` (the package's `normalize_tensor`).
fn unit(x: Tensor<4>) -> Tensor<4> {
    let norm = x.clone().square().sum_dim(1).sqrt(); // [b, 1, h, w]
    x / (norm + 1e-10)
}

fn values(t: &burn_pack::Tensor) -> std::result::Result<Vec<f32>, String> {
    burn::store::bridge::to_data(t)
        .map_err(|e| e.to_string())?
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))
}

/// The shipped heads, `lin{k}.model.1.weight` `[1, c, 1, 1]`.
fn heads(device: &Device) -> Result<Vec<Tensor<4>>> {
    let dir = tempfile::tempdir().map_err(|e| Error::io(Path::new("."), e))?;
    let path = dir.path().join("vgg-v0.1.pth");
    std::fs::write(&path, HEADS).map_err(|e| Error::io(&path, e))?;
    let tensors = crate::import::read_torch(&path)?;
    TAPS.iter()
        .enumerate()
        .map(|(k, _)| {
            let key = format!("lin{k}.model.1.weight");
            let t = tensors
                .get(&key)
                .ok_or_else(|| Error::Config(format!("the shipped LPIPS heads lack {key}")))?;
            let shape: [usize; 4] =
                t.shape.to_vec().try_into().map_err(|_| {
                    Error::Config(format!("the shipped LPIPS head {key} is not 4-D"))
                })?;
            Ok(tensor(values(t).map_err(Error::Config)?, shape, device))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The package's own distances (scripts/lpips_golden.py) on image pairs drawn from the same
    /// formula, with the shipped heads and formula VGG16 weights.
    #[test]
    fn matches_the_lpips_package() {
        let device = Device::flex();
        let net = Lpips::formula(&device);
        let golden: serde_json::Value =
            serde_json::from_slice(&crate::testing::fixture("lpips", "golden.json")).unwrap();
        let image = |key: &str, size: usize| {
            let v = super::super::inception::uniform(key, 3 * size * size);
            tensor(v, [1, 3, size, size], &device)
        };
        for pair in golden["pairs"].as_array().unwrap() {
            let size = pair["size"].as_u64().unwrap() as usize;
            let a = image(pair["a"].as_str().unwrap(), size);
            let b = if pair["near_copy"].as_bool().unwrap() {
                a.clone() + image("noise", size) * 0.05
            } else {
                image(pair["b"].as_str().unwrap(), size)
            };
            let layers = net.layers(a.clone(), b.clone());
            for (k, (got, want)) in layers
                .into_iter()
                .zip(pair["layers"].as_array().unwrap())
                .enumerate()
            {
                let (got, want) = (got.into_scalar::<f32>() as f64, want.as_f64().unwrap());
                assert!(
                    (got - want).abs() <= 1e-4 * want.abs() + 1e-7,
                    "tap {k}: {got} vs {want}"
                );
            }
            let total = net.distance(a, b).into_scalar::<f32>() as f64;
            let want = pair["lpips"].as_f64().unwrap();
            assert!((total - want).abs() <= 1e-4 * want, "{total} vs {want}");
        }
    }
}
