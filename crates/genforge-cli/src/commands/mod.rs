//! One module per command group; each command is its arguments and a function that runs it.

pub mod biggan;
pub mod eval;
pub mod report;
pub mod sample;
pub mod stylegan;
pub mod train;
pub mod vq;

use std::path::Path;

use anyhow::Result;
use genforge::burn::tensor::Tensor;
use genforge::sample::grid;

pub fn save_grid(images: Tensor<4>, cols: usize, out: &Path) -> Result<()> {
    grid::save_png(&grid::make_grid(images, Some(cols)), out)?;
    tracing::info!("wrote {}", out.display());
    Ok(())
}
