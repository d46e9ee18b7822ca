//! A run's timeline: the same latents at every snapshot, one row per snapshot grid, so a
//! reader follows the same samples from the first steps to the last (and, for a growing run,
//! from 4x4 up: every grid of a growing run is written at the final size).

use std::path::{Path, PathBuf};

use image::{DynamicImage, GenericImage, GenericImageView};

use super::grid::PAD;
use crate::{Error, Result, run};

/// `samples/step-*.png` of a run, in step order, with their steps.
pub fn snapshot_grids(run_dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(run_dir.join("samples"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let step = name
                .strip_prefix("step-")?
                .strip_suffix(".png")?
                .parse()
                .ok()?;
            Some((step, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// The first `cells` images of each of (at most `rows`, evenly spaced, the last included)
/// snapshot grids, one row per snapshot; also the steps of the rows.
pub fn timeline(run_dir: &Path, cells: usize, rows: usize) -> Result<(DynamicImage, Vec<u64>)> {
    let cfg = run::open(run_dir)?;
    let (_, side) = cfg
        .model
        .image_shape()
        .ok_or_else(|| Error::run(run_dir, "makes no images of its own; no timeline"))?;
    let all = snapshot_grids(run_dir);
    if all.is_empty() {
        return Err(Error::run(
            run_dir,
            "has no sample grids (samples/step-*.png) yet",
        ));
    }
    let picked: Vec<&(u64, PathBuf)> = if all.len() <= rows.max(2) {
        all.iter().collect()
    } else {
        let k = rows.max(2);
        (0..k)
            .map(|i| &all[i * (all.len() - 1) / (k - 1)])
            .collect()
    };
    let cell = side + PAD;
    let (w, h) = (cells * cell + PAD, cell);
    let mut out = image::RgbImage::new(w as u32, (picked.len() * h + PAD) as u32);
    for (r, (_, path)) in picked.iter().enumerate() {
        let grid = image::open(path)
            .map_err(|e| Error::run(path, format!("unreadable: {e}")))?
            .to_rgb8();
        let (gw, gh) = grid.dimensions();
        if (gw as usize) < w || (gh as usize) < h + PAD {
            return Err(Error::run(
                path,
                format!("is {gw}x{gh}, smaller than {cells} cells of {side}x{side}; lower --cells"),
            ));
        }
        let row = grid.view(0, 0, w as u32, (h + PAD) as u32).to_image();
        out.copy_from(&row, 0, (r * h) as u32)
            .map_err(|e| Error::run(path, e.to_string()))?;
    }
    Ok((
        DynamicImage::from(out),
        picked.iter().map(|(s, _)| *s).collect(),
    ))
}
