//! An image folder: PNG/JPEG files found recursively; when every image sits under a first-level
//! subfolder, the sorted subfolder names become class labels 0, 1, ...

use std::path::{Path, PathBuf};

use super::RawImage;
use crate::{Error, Result};

fn is_image(p: &Path) -> bool {
    p.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| matches!(e.as_str(), "png" | "jpg" | "jpeg"))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else if is_image(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// The class names of a folder dataset, in label order (empty when unlabelled).
pub fn class_names(root: &Path, files: &[PathBuf]) -> Vec<String> {
    let first = |p: &PathBuf| -> Option<String> {
        let rel = p.strip_prefix(root).ok()?;
        let mut comps = rel.components();
        let c = comps.next()?;
        comps.next()?; // a file directly in root has no class
        Some(c.as_os_str().to_string_lossy().into_owned())
    };
    let firsts: Vec<Option<String>> = files.iter().map(first).collect();
    if firsts.iter().any(Option::is_none) {
        return Vec::new();
    }
    let mut names: Vec<String> = firsts.into_iter().flatten().collect();
    names.sort();
    names.dedup();
    names
}

pub fn decode(path: &Path) -> Result<RawImage> {
    let img =
        image::open(path).map_err(|e| Error::data(path, format!("cannot decode image: {e}")))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (channels, pixels) = if img.color().has_color() {
        let rgb = img.to_rgb8();
        let mut planes = vec![0u8; 3 * w * h];
        for (i, px) in rgb.pixels().enumerate() {
            for c in 0..3 {
                planes[c * w * h + i] = px.0[c];
            }
        }
        (3, planes)
    } else {
        (1, img.to_luma8().into_raw())
    };
    Ok(RawImage {
        channels,
        height: h,
        width: w,
        pixels,
        label: None,
        source: path.to_path_buf(),
    })
}

pub fn read_dataset(root: &Path) -> Result<Vec<RawImage>> {
    if !root.is_dir() {
        return Err(Error::data(
            root,
            "is not a directory; set data.path to a folder of PNG/JPEG images",
        ));
    }
    let mut files = Vec::new();
    walk(root, &mut files)?;
    if files.is_empty() {
        return Err(Error::data(
            root,
            "holds no .png/.jpg/.jpeg images (searched recursively)",
        ));
    }
    let classes = class_names(root, &files);
    let mut out = Vec::with_capacity(files.len());
    for f in &files {
        let mut img = decode(f)?;
        if !classes.is_empty() {
            let rel = f.strip_prefix(root).expect("walked from root");
            let name = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            img.label = classes.iter().position(|c| *c == name).map(|i| i as u32);
        }
        out.push(img);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DataConfig, DataFormat};

    #[test]
    fn classes_from_subfolders_and_bad_inputs() {
        let dir = tempfile::tempdir().unwrap();
        for (cls, n) in [("cat", 2), ("dog", 1)] {
            std::fs::create_dir_all(dir.path().join(cls).join("deep")).unwrap();
            for i in 0..n {
                let img = image::RgbImage::from_pixel(8, 8, image::Rgb([200, 10, i as u8]));
                img.save(dir.path().join(cls).join("deep").join(format!("{i}.png")))
                    .unwrap();
            }
        }
        let imgs = read_dataset(dir.path()).unwrap();
        let labels: Vec<_> = imgs.iter().map(|i| i.label).collect();
        assert_eq!(labels, vec![Some(0), Some(0), Some(1)]);
        assert_eq!(
            (imgs[0].channels, imgs[0].pixels[0], imgs[0].pixels[64]),
            (3, 200, 10)
        );

        // Class filter through the whole pipeline, resized to 16x16 in [-1, 1].
        let cfg = DataConfig {
            format: DataFormat::Folder,
            classes: vec![1],
            ..Default::default()
        };
        let ds = crate::data::load(&cfg, dir.path(), 3, 16).unwrap();
        assert_eq!(ds.len(), 1);
        assert!((ds.image(0)[0] - (200.0 / 127.5 - 1.0)).abs() < 1e-5);
        let cfg = DataConfig {
            classes: vec![5],
            ..cfg
        };
        let err = crate::data::load(&cfg, dir.path(), 3, 16)
            .unwrap_err()
            .to_string();
        assert!(err.contains("leaves no images"), "{err}");

        // Mixed sizes with resizing off.
        image::GrayImage::new(16, 16)
            .save(dir.path().join("cat").join("big.png"))
            .unwrap();
        let cfg = DataConfig {
            format: DataFormat::Folder,
            resize: false,
            ..Default::default()
        };
        let err = crate::data::load(&cfg, dir.path(), 1, 16)
            .unwrap_err()
            .to_string();
        assert!(err.contains("8x8") && err.contains("data.resize"), "{err}");

        // A corrupt PNG names the file.
        std::fs::write(
            dir.path().join("dog").join("broken.png"),
            b"\x89PNG\r\n\x1a\nxx",
        )
        .unwrap();
        let err = read_dataset(dir.path()).unwrap_err().to_string();
        assert!(err.contains("broken.png"), "{err}");

        // Empty folder, and a folder with no images.
        let empty = tempfile::tempdir().unwrap();
        assert!(
            read_dataset(empty.path())
                .unwrap_err()
                .to_string()
                .contains("no .png")
        );
        std::fs::write(empty.path().join("notes.txt"), "x").unwrap();
        assert!(
            read_dataset(empty.path())
                .unwrap_err()
                .to_string()
                .contains("no .png")
        );
    }
}
