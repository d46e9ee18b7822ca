//! Datasets on disk become images in [-1, 1], `[n, channels, height, width]`.
//!
//! Readers: [`idx`] (MNIST / Fashion-MNIST files as published, gzipped or not), [`cifar`]
//! (CIFAR-10 binary batches or the `.tar.gz`), [`folder`] (PNG/JPEG, first-level subfolders as
//! classes) and [`shapes`] (synthetic coloured shapes). [`prepare`] applies the options (class
//! filter, limit, channel conversion, bilinear resize, normalisation).

pub mod cifar;
pub mod codes;
pub mod folder;
pub mod idx;
pub mod loader;
pub mod shapes;
pub mod shipped;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{Error, Result};
pub use loader::{BatchSampler, Dataset};

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    Idx,
    Cifar10,
    Folder,
    Shapes,
    /// Code maps written by `genforge encode` (PixelCNN priors).
    Codes,
}

impl std::str::FromStr for DataFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "idx" => DataFormat::Idx,
            "cifar10" => DataFormat::Cifar10,
            "folder" => DataFormat::Folder,
            "shapes" => DataFormat::Shapes,
            "codes" => DataFormat::Codes,
            _ => {
                return Err(Error::Config(format!(
                    "unknown data format '{s}': use idx, cifar10, folder, shapes or codes"
                )));
            }
        })
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// `idx` | `cifar10` | `folder` | `shapes` | `codes`.
    pub format: DataFormat,
    /// File or directory; relative paths also resolve against the repository root.
    pub path: String,
    /// Keep only these labels (empty: all).
    pub classes: Vec<u32>,
    /// Keep at most this many images per selected class (0: all). For `shapes`, the number of
    /// images generated per class.
    pub limit: usize,
    /// Resize to the model resolution (bilinear); when false, sizes must already match.
    pub resize: bool,
    /// Seed of the `shapes` generator.
    pub seed: u64,
    /// Add an x-flipped copy of every image (NVlabs' `--mirror`), for data where left and right
    /// are interchangeable (faces, most emoji; not digits or text).
    pub mirror: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            format: DataFormat::Idx,
            path: "data/mnist".into(),
            classes: Vec::new(),
            limit: 0,
            resize: true,
            seed: 0,
            mirror: false,
        }
    }
}

/// One decoded image before conversion: 8-bit, channel-major `[c, h, w]`.
#[derive(Clone, Debug)]
pub struct RawImage {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub pixels: Vec<u8>,
    pub label: Option<u32>,
    /// Where it came from, for error messages.
    pub source: PathBuf,
}

/// Read the dataset a config names and convert it to the model's channels and resolution.
pub fn load(cfg: &DataConfig, path: &Path, channels: usize, resolution: usize) -> Result<Dataset> {
    let raw = match cfg.format {
        DataFormat::Idx => idx::read_dataset(path)?,
        DataFormat::Cifar10 => cifar::read_dataset(path)?,
        DataFormat::Folder => folder::read_dataset(path)?,
        DataFormat::Shapes => {
            let per_class = if cfg.limit == 0 { 1000 } else { cfg.limit };
            shapes::generate(per_class, resolution, cfg.seed)
        }
        DataFormat::Codes => {
            return Err(Error::data(
                path,
                "holds code maps, not images; code maps train a PixelCNN prior",
            ));
        }
    };
    prepare(raw, cfg, path, channels, resolution)
}

/// The data's own images without `data.mirror`'s flipped copies (each sits right after its
/// original): what evaluation scores against, so a run with mirroring meets the same reals as one
/// without. NVlabs' metrics include the flips when `--mirror` is set.
pub fn originals<'a>(data: &'a Dataset, cfg: &DataConfig) -> Cow<'a, Dataset> {
    if cfg.mirror {
        let even: Vec<usize> = (0..data.len()).step_by(2).collect();
        Cow::Owned(data.select(&even))
    } else {
        Cow::Borrowed(data)
    }
}

/// Images a command was pointed at: one PNG/JPEG file, or a dataset in `format` at `path`
/// (class filter and limit from `cfg`), converted to `channels` and `resolution`.
pub fn load_input(
    path: &Path,
    format: DataFormat,
    cfg: &DataConfig,
    channels: usize,
    resolution: usize,
) -> Result<Dataset> {
    let is_image = path.is_file()
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str()));
    if !path.exists() {
        return Err(Error::data(path, "does not exist"));
    }
    if is_image {
        let one = DataConfig {
            classes: Vec::new(),
            limit: 0,
            resize: true,
            ..cfg.clone()
        };
        return prepare(
            vec![folder::decode(path)?],
            &one,
            path,
            channels,
            resolution,
        );
    }
    let cfg = DataConfig {
        format,
        path: path.display().to_string(),
        ..cfg.clone()
    };
    load(&cfg, path, channels, resolution)
}

/// Class filter, per-class limit, channel conversion, resize and normalisation to [-1, 1].
pub fn prepare(
    raw: Vec<RawImage>,
    cfg: &DataConfig,
    path: &Path,
    channels: usize,
    resolution: usize,
) -> Result<Dataset> {
    if raw.is_empty() {
        return Err(Error::data(path, "contains no images"));
    }
    let mut kept = Vec::new();
    let mut per_class = std::collections::BTreeMap::<Option<u32>, usize>::new();
    for img in raw {
        if !cfg.classes.is_empty() {
            match img.label {
                Some(l) if cfg.classes.contains(&l) => {}
                Some(_) => continue,
                None => {
                    return Err(Error::data(
                        &img.source,
                        "data.classes is set but this dataset has no labels; remove data.classes",
                    ));
                }
            }
        }
        let count = per_class.entry(img.label).or_default();
        if cfg.limit > 0 && *count >= cfg.limit {
            continue;
        }
        *count += 1;
        kept.push(img);
    }
    if kept.is_empty() {
        return Err(Error::data(
            path,
            format!(
                "data.classes = {:?} leaves no images; check the labels this dataset has",
                cfg.classes
            ),
        ));
    }
    let n = kept.len();
    let plane = resolution * resolution;
    let mut images = Vec::with_capacity(n * channels * plane);
    let mut labels = Vec::with_capacity(n);
    for img in &kept {
        if !cfg.resize && (img.height != resolution || img.width != resolution) {
            return Err(Error::data(
                &img.source,
                format!(
                    "image is {}x{} but the model is {r}x{r} and data.resize is false; set data.resize=true or model.resolution",
                    img.width,
                    img.height,
                    r = resolution
                ),
            ));
        }
        let converted = convert_channels(img, channels);
        for c in 0..channels {
            let src = &converted[c * img.height * img.width..(c + 1) * img.height * img.width];
            let plane_f: Vec<f32> = src.iter().map(|&p| p as f32).collect();
            let resized = if img.height == resolution && img.width == resolution {
                plane_f
            } else {
                resize_bilinear(&plane_f, img.height, img.width, resolution, resolution)
            };
            images.extend(resized.into_iter().map(|p| p / 127.5 - 1.0));
        }
        labels.push(img.label.unwrap_or(u32::MAX));
        if cfg.mirror {
            // The copy right after its original, so a held-out tail holds both.
            let start = images.len() - channels * plane;
            let flipped: Vec<f32> = images[start..]
                .chunks(resolution)
                .flat_map(|row| row.iter().rev().copied().collect::<Vec<_>>())
                .collect();
            images.extend(flipped);
            labels.push(img.label.unwrap_or(u32::MAX));
        }
    }
    let n = if cfg.mirror { 2 * n } else { n };
    Ok(Dataset::new(
        images, labels, n, channels, resolution, resolution,
    ))
}

/// Grey -> RGB repeats the plane; RGB -> grey uses ITU-R 601 luma (as PIL's `convert("L")`).
fn convert_channels(img: &RawImage, channels: usize) -> Vec<u8> {
    let plane = img.height * img.width;
    match (img.channels, channels) {
        (a, b) if a == b => img.pixels.clone(),
        (1, 3) => img.pixels.repeat(3),
        (3, 1) => (0..plane)
            .map(|i| {
                let (r, g, b) = (
                    img.pixels[i] as u32,
                    img.pixels[plane + i] as u32,
                    img.pixels[2 * plane + i] as u32,
                );
                ((r * 299 + g * 587 + b * 114 + 500) / 1000) as u8
            })
            .collect(),
        (a, b) => panic!("unsupported channel conversion {a} -> {b}"),
    }
}

/// Bilinear resize of one plane with half-pixel centres (PyTorch `align_corners=False`).
pub fn resize_bilinear(src: &[f32], h: usize, w: usize, out_h: usize, out_w: usize) -> Vec<f32> {
    let mut out = vec![0.0; out_h * out_w];
    let sy = h as f32 / out_h as f32;
    let sx = w as f32 / out_w as f32;
    for oy in 0..out_h {
        let fy = ((oy as f32 + 0.5) * sy - 0.5).max(0.0);
        let y0 = (fy.floor() as usize).min(h - 1);
        let y1 = (y0 + 1).min(h - 1);
        let ty = fy - y0 as f32;
        for ox in 0..out_w {
            let fx = ((ox as f32 + 0.5) * sx - 0.5).max(0.0);
            let x0 = (fx.floor() as usize).min(w - 1);
            let x1 = (x0 + 1).min(w - 1);
            let tx = fx - x0 as f32;
            let top = src[y0 * w + x0] * (1.0 - tx) + src[y0 * w + x1] * tx;
            let bot = src[y1 * w + x0] * (1.0 - tx) + src[y1 * w + x1] * tx;
            out[oy * out_w + ox] = top * (1.0 - ty) + bot * ty;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bilinear_keeps_constants_and_matches_hand_values() {
        let flat = resize_bilinear(&[3.0; 16], 4, 4, 9, 7);
        assert!(flat.iter().all(|&v| (v - 3.0).abs() < 1e-6));
        // 2x2 -> 4x4, half-pixel centres: the first row is 0, 0.25, 0.75, 1 of the way.
        let up = resize_bilinear(&[0.0, 4.0, 0.0, 4.0], 2, 2, 4, 4);
        assert_eq!(&up[..4], &[0.0, 1.0, 3.0, 4.0]);
    }

    #[test]
    fn luma_conversion() {
        let img = RawImage {
            channels: 3,
            height: 1,
            width: 2,
            pixels: vec![255, 0, 0, 255, 0, 0],
            label: None,
            source: "x".into(),
        };
        assert_eq!(convert_channels(&img, 1), vec![76, 150]);
    }

    /// `data.mirror` puts each image's left-right flip right after it, per channel, with its
    /// label.
    #[test]
    fn mirror_adds_a_flipped_copy_of_each_image() {
        let cfg = DataConfig {
            mirror: true,
            resize: false,
            ..DataConfig::default()
        };
        let square = |pixels: Vec<u8>, label| RawImage {
            channels: 2,
            height: 2,
            width: 2,
            pixels,
            label: Some(label),
            source: "x".into(),
        };
        let raw = vec![square(vec![0, 51, 102, 153, 204, 255, 0, 51], 4)];
        let d = prepare(raw, &cfg, Path::new("x"), 2, 2).unwrap();
        assert_eq!(d.len(), 2);
        let v = |p: u8| p as f32 / 127.5 - 1.0;
        assert_eq!(d.image(0), [0, 51, 102, 153, 204, 255, 0, 51].map(v));
        assert_eq!(d.image(1), [51, 0, 153, 102, 255, 204, 51, 0].map(v));
        assert_eq!((d.label(0), d.label(1)), (4, 4));
    }
}
