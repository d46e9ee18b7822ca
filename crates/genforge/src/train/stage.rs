//! What the run loop drives: a [`Stage`] (adversarial, autoencoder or prior training) owns its
//! models and data; the loop (`train::loop_`) owns batching, logging, snapshots, checkpoints and
//! resume. The helpers below are shared by the stages.

use std::path::Path;

use burn::tensor::Device;

use crate::Result;
use crate::config::TrainConfig;
use crate::data::Dataset;
use crate::metrics::eval::Scores;
use crate::run::TrainerState;
use crate::sample::grid;

/// One kind of training (adversarial, autoencoder, prior) as the run loop drives it: the loop
/// owns batching, logging, snapshots, checkpoints and resume; a stage owns its models and data.
pub trait Stage {
    /// The resolved config (written to the run directory).
    fn config(&self) -> &TrainConfig;
    /// Training items (images or code maps) batches are drawn from.
    fn train_items(&self) -> usize;
    /// Batch size of iteration `step` (0-based); a schedule may change it between steps.
    fn batch_size(&self, _step: u64) -> usize {
        self.config().train.batch
    }
    /// One optimisation step on the items `batch`; returns the numbers to log.
    fn step(&mut self, batch: &[usize]) -> Result<Vec<(&'static str, f64)>>;
    fn state(&self) -> &TrainerState;
    /// Write every file of a checkpoint into `dir` (atomicity is the caller's).
    fn save(&self, dir: &Path) -> Result<()>;
    /// Sample grids and held-out metrics at `step`; returned numbers are logged.
    fn snapshot(&mut self, run_dir: &Path, step: u64) -> Result<Vec<(&'static str, f64)>>;
    /// FID and KID of `n` generated images against the training images under the feature
    /// network `features`; `None` for stages that cannot generate on their own.
    fn evaluate(&mut self, _n: usize, _features: &str) -> Result<Option<Scores>> {
        Ok(None)
    }
    /// One line on the data, for the log.
    fn describe(&self) -> String;
    /// Once, when a new run starts (e.g. a grid of real images).
    fn begin(&self, _run_dir: &Path) -> Result<()> {
        Ok(())
    }
}

/// `name: N images of CxHxW from PATH`
pub fn describe_images(cfg: &TrainConfig, dataset: &Dataset, path: &Path) -> String {
    format!(
        "{}: {} images of {}x{}x{} from {}",
        cfg.name,
        dataset.len(),
        dataset.channels,
        dataset.height,
        dataset.width,
        path.display()
    )
}

/// `samples/reals.png`: the first `n` images of the training data.
pub fn save_reals(dataset: &Dataset, n: usize, run_dir: &Path) -> Result<()> {
    let idx: Vec<usize> = (0..n.min(dataset.len())).collect();
    let reals = dataset.tensor(&idx, &Device::flex());
    grid::save_png(
        &grid::make_grid(reals, None),
        &run_dir.join("samples").join("reals.png"),
    )
}
