//! Checkpoints are directories `checkpoints/step-XXXXXXX/`. Each is written under a hidden
//! temporary name, synced, then renamed into place, so a crash never leaves a half-written
//! checkpoint that looks like the latest one. The newest `keep` are kept. This module also owns
//! the file names inside a checkpoint and how modules, optimizers and trainer state are written
//! and read, so training and sampling share one definition.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use burn::store::ModuleRecord;

use super::TrainerState;
use crate::{Error, Result};

/// File names inside a checkpoint directory.
pub mod files {
    pub const STATE: &str = "state.json";
    pub const GENERATOR: &str = "generator.bpk";
    pub const DISCRIMINATOR: &str = "discriminator.bpk";
    pub const G_OPTIM: &str = "g_optim.bpk";
    pub const D_OPTIM: &str = "d_optim.bpk";
    /// The generator's weight average, when the run keeps one.
    pub const GENERATOR_EMA: &str = "generator_ema.bpk";
    pub const VQVAE2: &str = "vqvae2.bpk";
    pub const OPTIM: &str = "optim.bpk";
    pub const PRIOR_TOP: &str = "prior_top.bpk";
    pub const PRIOR_BOTTOM: &str = "prior_bottom.bpk";
    pub const OPTIM_TOP: &str = "optim_top.bpk";
    pub const OPTIM_BOTTOM: &str = "optim_bottom.bpk";
}

/// An error naming the first of `names` missing from the checkpoint `dir`.
pub fn require_files(dir: &Path, names: &[&str]) -> Result<()> {
    for f in names {
        if !dir.join(f).is_file() {
            return Err(Error::run(
                dir,
                format!("checkpoint is incomplete: {f} is missing"),
            ));
        }
    }
    Ok(())
}

pub fn save_module<M: Module>(module: M, path: &Path) -> Result<()> {
    module
        .into_record()
        .save(path)
        .map_err(|e| Error::run(path, e.to_string()))
}

/// Load a `.bpk` record into a freshly built module, turning panics-to-be into errors.
pub fn load_module<M: Module>(module: M, path: &Path) -> Result<M> {
    let record = ModuleRecord::load(path)
        .map_err(|e| Error::run(path, format!("unreadable weights: {e}")))?;
    module.try_load_record(record).map_err(|e| {
        Error::run(
            path,
            format!("weights do not fit the configured model: {e}"),
        )
    })
}

pub fn save_optim(opt: &ModuleOptimizer, path: &Path) -> Result<()> {
    opt.save(path).map_err(|e| Error::run(path, e.to_string()))
}

pub fn load_optim(opt: ModuleOptimizer, path: &Path) -> Result<ModuleOptimizer> {
    opt.load(path)
        .map_err(|e| Error::run(path, format!("unreadable optimizer state: {e}")))
}

pub fn save_state(state: &TrainerState, dir: &Path) -> Result<()> {
    let path = dir.join(files::STATE);
    let text = serde_json::to_string_pretty(state).expect("state serializes");
    std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
}

pub fn load_state(dir: &Path) -> Result<TrainerState> {
    let path = dir.join(files::STATE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::run(&path, format!("corrupt state: {e}")))
}

/// Whether `err` is about a file inside the checkpoint `dir` (so an older checkpoint may do).
pub fn is_checkpoint_error(err: &Error, dir: &Path) -> bool {
    match err {
        Error::Run { path, .. } | Error::Io { path, .. } => path.starts_with(dir),
        _ => false,
    }
}

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

/// A fresh directory `tmp` filled by `write` with every file synced to disk.
fn write_synced(tmp: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if tmp.exists() {
        std::fs::remove_dir_all(tmp).map_err(|e| Error::io(tmp, e))?;
    }
    std::fs::create_dir_all(tmp).map_err(|e| Error::io(tmp, e))?;
    write(tmp)?;
    for entry in std::fs::read_dir(tmp)
        .map_err(|e| Error::io(tmp, e))?
        .flatten()
    {
        if let Ok(f) = std::fs::File::open(entry.path()) {
            f.sync_all().map_err(|e| Error::io(entry.path(), e))?;
        }
    }
    Ok(())
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
    write_synced(&tmp, write)?;
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

/// The checkpoint with the lowest FID of evaluations during training, and its record.
pub const BEST: &str = "best";
const BEST_RECORD: &str = "best.json";

/// FID of `checkpoints/best`, if the run has one.
pub fn best_fid(run_dir: &Path) -> Option<f64> {
    let path = run_dir.join("checkpoints").join(BEST).join(BEST_RECORD);
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v.get("fid")?.as_f64()
}

/// Replace `checkpoints/best` with a checkpoint written by `write`: the new one is complete
/// under a temporary name before the old one is moved aside, so a crash leaves one of them.
pub fn save_best(
    run_dir: &Path,
    step: u64,
    fid: f64,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<PathBuf> {
    let root = run_dir.join("checkpoints");
    let best = root.join(BEST);
    let tmp = root.join(".tmp-best");
    let old = root.join(".old-best");
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    write_synced(&tmp, |d| {
        write(d)?;
        let record = serde_json::json!({ "step": step, "fid": fid });
        std::fs::write(d.join(BEST_RECORD), record.to_string())
            .map_err(|e| Error::io(d.join(BEST_RECORD), e))
    })?;
    if best.exists() {
        std::fs::rename(&best, &old).map_err(|e| Error::io(&best, e))?;
    }
    std::fs::rename(&tmp, &best).map_err(|e| Error::io(&best, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    Ok(best)
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
