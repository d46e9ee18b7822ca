//! Training: [`losses`] and [`regularizers`] (pure functions), [`ema`] (generator weight
//! averaging), [`optim`] (Adam and the divergence check), [`gan`] (one adversarial iteration and
//! its state), [`autoencoder`] and [`prior`] (the VQ-VAE-2 stages) and [`loop_`] (the run:
//! batches, logging, samples, checkpoints, resume).

pub mod ada;
pub mod autoencoder;
pub mod ema;
pub mod gan;
pub mod loop_;
pub mod losses;
pub mod optim;
pub mod prior;
pub mod regularizers;
pub mod stage;

pub use gan::{GanTrainer, StepStats};
pub use loop_::{Progress, Stage, TrainOptions, train};
