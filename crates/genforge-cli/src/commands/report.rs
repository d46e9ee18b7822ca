//! A run's HTML report and its sample timeline.

use std::path::PathBuf;

use anyhow::{Result, bail};
use genforge::sample::{grid, timeline};

/// Write RUN_DIR/report.html: loss and metric curves, the sample-grid timeline, figures in
/// the run directory, timing and the resolved config, in one self-contained file.
#[derive(clap::Args)]
pub struct ReportArgs {
    pub run_dir: PathBuf,
    /// Output file (default: RUN_DIR/report.html).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Another training's FID against wall-clock minutes to draw beside the run's: a JSON-lines
    /// file of {"minutes", "fid", "label"} records, as bench/fid_curve.py writes for a PyTorch
    /// reference training (repeatable).
    #[arg(long)]
    pub compare: Vec<PathBuf>,
}

pub fn report(args: ReportArgs) -> Result<()> {
    let ReportArgs {
        run_dir,
        out,
        compare,
    } = args;
    let path = genforge::report::write(&run_dir, out.as_deref(), &compare)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// One row per snapshot grid (samples/step-*.png), the first --cells images of each: the
/// same latents followed over training (a growing run's grids all have the final size).
#[derive(clap::Args)]
pub struct TimelineArgs {
    pub run_dir: PathBuf,
    /// Images per row.
    #[arg(long, default_value_t = 8, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub cells: usize,
    /// At most this many rows, evenly spaced over the snapshots (the last included).
    #[arg(long, default_value_t = 12, allow_negative_numbers = true, value_parser = crate::whole::<usize>)]
    pub rows: usize,
    /// Output file (default: RUN_DIR/timeline.png).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn timeline(args: TimelineArgs) -> Result<()> {
    let TimelineArgs {
        run_dir,
        cells,
        rows,
        out,
    } = args;
    if cells == 0 || rows == 0 {
        bail!("--cells and --rows must be at least 1");
    }
    let (img, steps) = timeline::timeline(&run_dir, cells, rows)?;
    let out = out.unwrap_or_else(|| run_dir.join("timeline.png"));
    grid::save_png(&img, &out)?;
    let steps: Vec<String> = steps.iter().map(|s| s.to_string()).collect();
    println!("wrote {} (rows: steps {})", out.display(), steps.join(", "));
    Ok(())
}
