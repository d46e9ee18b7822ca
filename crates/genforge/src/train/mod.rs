//! Training: [`losses`] (pure functions), [`ema`] (generator weight averaging), [`gan`] (one adversarial iteration and its state) and
//! [`loop_`] (the run: batches, logging, samples, checkpoints, resume).

pub mod autoencoder;
pub mod ema;
pub mod gan;
pub mod growth;
pub mod loop_;
pub mod losses;
pub mod prior;
pub mod regularizers;

pub use gan::{GanTrainer, StepStats};
pub use loop_::{Progress, Stage, TrainOptions, train};
