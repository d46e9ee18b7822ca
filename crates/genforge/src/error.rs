//! One error type for the library: every variant names the file, key or value at fault.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written. (The OS error is part of the message and not a
    /// `source`, so that printing the chain does not repeat it.)
    #[error("{path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// A dataset file or folder is missing, truncated or malformed.
    #[error("{path}: {msg}")]
    Data { path: PathBuf, msg: String },
    /// A config key or value is invalid.
    #[error("config: {0}")]
    Config(String),
    /// A checkpoint or run directory is missing or unusable.
    #[error("{path}: {msg}")]
    Run { path: PathBuf, msg: String },
    /// Training diverged (a NaN or infinite loss).
    #[error("{0}")]
    Diverged(String),
    /// Training stopped on a signal after writing a checkpoint at `step`.
    #[error(
        "stopped by {} after step {step}; the checkpoint is in {}: \
         `genforge train --resume {}` continues",
        signal_name(*signal),
        run_dir.join("checkpoints").display(),
        run_dir.display()
    )]
    Interrupted {
        signal: i32,
        step: u64,
        run_dir: PathBuf,
    },
    /// The requested device is not available in this build or on this machine.
    #[error("device: {0}")]
    Device(String),
}

fn signal_name(signal: i32) -> String {
    match signal {
        2 => "SIGINT".into(),
        15 => "SIGTERM".into(),
        s => format!("signal {s}"),
    }
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }
    pub fn data(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Data {
            path: path.into(),
            msg: msg.into(),
        }
    }
    pub fn run(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        Error::Run {
            path: path.into(),
            msg: msg.into(),
        }
    }
}
