//! One module per command group; each command is its arguments and a function that runs it.

pub mod biggan;
pub mod eval;
pub mod import;
pub mod report;
pub mod sample;
pub mod stylegan;
pub mod train;
pub mod vq;

use std::path::{Path, PathBuf};

use anyhow::Result;
use genforge::burn::tensor::{Device, Tensor};
use genforge::device;
use genforge::sample::{gif, grid};

/// The run a figure command reads.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The run directory.
    pub run_dir: PathBuf,
    /// Checkpoint directory (default: the latest in the run).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// cpu (default), vulkan or cuda (need the `vulkan` or `cuda` build feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl RunArgs {
    pub fn device(&self) -> Result<Device> {
        Ok(device::parse(&self.device)?)
    }
}

pub fn save_grid(images: Tensor<4>, cols: usize, out: &Path) -> Result<()> {
    grid::save_png(&grid::make_grid(images, Some(cols)), out)?;
    tracing::info!("wrote {}", out.display());
    Ok(())
}

/// The frames of a morph as a strip of `cols` columns at `out` and as a looping GIF at `gif`
/// (default: `out` with `.gif`).
pub fn save_strip_and_gif(
    images: Tensor<4>,
    cols: usize,
    out: &Path,
    gif: Option<PathBuf>,
    delay_ms: u32,
) -> Result<()> {
    save_grid(images.clone(), cols, out)?;
    let gif = gif.unwrap_or_else(|| out.with_extension("gif"));
    gif::save_gif(images, &gif, delay_ms, 4)?;
    tracing::info!("wrote {}", gif.display());
    Ok(())
}
