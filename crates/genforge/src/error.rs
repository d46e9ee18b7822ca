//! One error type for the library: every variant names the file, key or value at fault.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
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
    /// The requested device is not available in this build or on this machine.
    #[error("device: {0}")]
    Device(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
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
