//! One training process per run directory: an exclusive OS file lock held for the life of the
//! process. The operating system releases it when the process ends, however it ends, so a killed
//! run never leaves a stale lock. Readers (`sample`, `eval`, figures) take no lock: they load a
//! checkpoint whole into memory and fall back to an older one when a trainer prunes it first.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;

use crate::{Error, Result};

/// The lock file inside a run directory; it holds the PID of the process that has the lock.
pub const LOCK_FILE: &str = ".lock";

/// Held while a process trains in a run directory; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

/// Locks `dir` (created if missing) for this process, or explains who holds it.
pub fn lock(dir: &Path) -> Result<RunLock> {
    try_lock(dir)?.ok_or_else(|| {
        let holder = std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap_or_default();
        let holder = match holder.trim() {
            "" => String::new(),
            pid => format!(" (PID {pid})"),
        };
        Error::run(
            dir,
            format!(
                "is in use by another genforge training process{holder}; wait for it to \
                 finish or stop it, then try again"
            ),
        )
    })
}

/// Locks `dir` (created if missing) for this process; `None` when another process holds it.
pub fn try_lock(dir: &Path) -> Result<Option<RunLock>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => {
            let pid = format!("{}\n", std::process::id());
            file.set_len(0)
                .and_then(|_| file.write_all(pid.as_bytes()))
                .map_err(|e| Error::io(&path, e))?;
            Ok(Some(RunLock { _file: file }))
        }
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holder_and_released_on_drop() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        let held = lock(&dir).unwrap();
        let err = lock(&dir).unwrap_err().to_string();
        let pid = std::process::id().to_string();
        assert!(
            err.contains("in use by another genforge training process"),
            "{err}"
        );
        assert!(err.contains(&format!("PID {pid}")), "{err}");
        drop(held);
        lock(&dir).expect("released with its holder");
    }
}
