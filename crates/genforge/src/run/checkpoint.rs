//! Checkpoints are directories `checkpoints/step-XXXXXXX/`. Each is written under a hidden
//! temporary name, synced, then renamed into place, so a crash never leaves a half-written
//! checkpoint that looks like the latest one. The newest `keep` are kept.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

pub fn dir_name(step: u64) -> String {
    format!("step-{step:07}")
}

fn step_of(path: &Path) -> Option<u64> {
    path.file_name()?
        .to_str()?
        .strip_prefix("step-")?
        .parse()
        .ok()
}

/// Completed checkpoints, oldest first.
pub fn list(run_dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let dir = run_dir.join("checkpoints");
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(&dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter_map(|p| step_of(&p).map(|s| (s, p)))
        .collect();
    out.sort();
    Ok(out)
}

pub fn latest(run_dir: &Path) -> Result<(u64, PathBuf)> {
    list(run_dir)?.pop().ok_or_else(|| {
        Error::run(
            run_dir,
            "has no checkpoint (checkpoints/step-*); is this a genforge run directory?",
        )
    })
}

/// Write a checkpoint with `write(tmp_dir)`, then rename it to its final name and prune.
pub fn save(
    run_dir: &Path,
    step: u64,
    keep: usize,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let root = run_dir.join("checkpoints");
    std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
    let final_dir = root.join(dir_name(step));
    let tmp = root.join(format!(".tmp-{}", dir_name(step)));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
    write(&tmp)?;
    for entry in std::fs::read_dir(&tmp)
        .map_err(|e| Error::io(&tmp, e))?
        .flatten()
    {
        if let Ok(f) = std::fs::File::open(entry.path()) {
            f.sync_all().map_err(|e| Error::io(entry.path(), e))?;
        }
    }
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(|e| Error::io(&final_dir, e))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(|e| Error::io(&final_dir, e))?;
    let all = list(run_dir)?;
    if all.len() > keep {
        for (_, old) in &all[..all.len() - keep] {
            std::fs::remove_dir_all(old).map_err(|e| Error::io(old, e))?;
        }
    }
    Ok(final_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_writes_never_become_latest_and_old_ones_are_pruned() {
        let run = tempfile::tempdir().unwrap();
        for step in [10, 20, 30] {
            save(run.path(), step, 2, |d| {
                std::fs::write(d.join("x"), b"ok").map_err(|e| Error::io(d, e))
            })
            .unwrap();
        }
        let steps: Vec<u64> = list(run.path()).unwrap().iter().map(|c| c.0).collect();
        assert_eq!(steps, vec![20, 30]);
        let err = save(run.path(), 40, 2, |d| {
            std::fs::write(d.join("x"), b"half").unwrap();
            Err(Error::run(d, "disk full"))
        });
        assert!(err.is_err());
        assert_eq!(latest(run.path()).unwrap().0, 30);
    }
}
