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

/// A file's bytes, read whole: a record parsed from memory never reads its file again, so a
/// checkpoint pruned by a training process while a reader uses it cannot fail half-way.
fn read_whole(path: &Path) -> Result<burn::tensor::Bytes> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    Ok(burn::tensor::Bytes::from_bytes_vec(bytes))
}

/// The first f32 or f64 tensor of the record `bytes` holding a NaN or an infinity, by name.
fn non_finite_tensor(bytes: burn::tensor::Bytes) -> std::result::Result<Option<String>, String> {
    use burn_pack::DType;
    let reader = burn_pack::Reader::from_bytes(bytes).map_err(|e| e.to_string())?;
    for t in reader.into_tensors().map_err(|e| e.to_string())? {
        let (name, dtype, _, _, data) = t.into_parts().map_err(|e| e.to_string())?;
        let bad = match dtype {
            DType::F32 => data
                .chunks_exact(4)
                .any(|b| !f32::from_le_bytes([b[0], b[1], b[2], b[3]]).is_finite()),
            DType::F64 => data
                .chunks_exact(8)
                .any(|b| !f64::from_le_bytes(b.try_into().expect("8 bytes")).is_finite()),
            _ => false,
        };
        if bad {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// The bytes of the record file at `path`, read once, or an error when it cannot be parsed or
/// holds non-finite values (a checkpoint written by a diverged run or damaged on disk, so an
/// older one should be used). `what` names the record in the message.
fn read_finite(path: &Path, what: &str) -> Result<burn::tensor::Bytes> {
    let bytes = read_whole(path)?;
    match non_finite_tensor(bytes.clone()) {
        Ok(None) => Ok(bytes),
        Ok(Some(name)) => Err(Error::run(
            path,
            format!("corrupt {what}: NaN or infinite values in {name}"),
        )),
        Err(e) => Err(Error::run(path, format!("unreadable {what}: {e}"))),
    }
}

pub fn save_module<M: Module>(module: M, path: &Path) -> Result<()> {
    module
        .into_record()
        .save(path)
        .map_err(|e| Error::run(path, e.to_string()))
}

/// Load a `.bpk` record into a freshly built module, turning panics-to-be into errors; a record
/// with NaN or infinite values is refused like a corrupt one.
pub fn load_module<M: Module>(module: M, path: &Path) -> Result<M> {
    let bytes = read_finite(path, "weights")?;
    let record = ModuleRecord::from_bytes(bytes)
        .map_err(|e| Error::run(path, format!("unreadable weights: {e}")))?;
    module.try_load_record(record).map_err(|e| {
        let mut e = e.to_string();
        if let Some((cut, _)) = e.char_indices().nth(400) {
            e.truncate(cut);
            e.push_str(" ...");
        }
        Error::run(
            path,
            format!(
                "weights do not fit the configured model ({e}); was the run made by a genforge \
                 whose network for this family has changed since (the README's \"Changes that affect existing runs\")?"
            ),
        )
    })
}

pub fn save_optim(opt: &ModuleOptimizer, path: &Path) -> Result<()> {
    opt.save(path).map_err(|e| Error::run(path, e.to_string()))
}

pub fn load_optim(opt: ModuleOptimizer, path: &Path) -> Result<ModuleOptimizer> {
    opt.from_bytes(read_finite(path, "optimizer state")?)
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

/// The step of a checkpoint directory `step-XXXXXXX`.
pub fn step_of(path: &Path) -> Option<u64> {
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

/// Makes a rename or removal inside `dir` durable (the directory entry itself is synced).
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(dir, e))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Removes what failed writes left in the run's checkpoint folder: temporary checkpoint
/// directories (never complete, or they would have been renamed) and a `best` swap that a crash
/// interrupted (see [`save_best`]). Only a process holding the run's lock may call it.
pub fn clean_up(run_dir: &Path) -> Result<()> {
    let root = run_dir.join("checkpoints");
    if !root.is_dir() {
        return Ok(());
    }
    recover_best(&root)?;
    for entry in std::fs::read_dir(&root)
        .map_err(|e| Error::io(&root, e))?
        .flatten()
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".tmp-") || name == ".old-best" {
            let p = entry.path();
            std::fs::remove_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        }
    }
    Ok(())
}

/// Every record file of the checkpoint directory `dir` free of NaN and infinite values; else a
/// divergence error naming the file.
fn check_finite_dir(dir: &Path, step: u64) -> Result<()> {
    for entry in std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .flatten()
    {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "bpk")
            && let Err(e) = read_finite(&path, "record")
        {
            let file = path.file_name().unwrap_or_default().to_string_lossy();
            return Err(Error::Diverged(format!(
                "training diverged: the weights after step {step} are not finite, so its \
                 checkpoint was not written ({file}: {})",
                match &e {
                    Error::Run { msg, .. } => msg.clone(),
                    other => other.to_string(),
                }
            )));
        }
    }
    Ok(())
}

/// `load(checkpoint)` on `checkpoint` when given, else on the newest checkpoint of `run_dir`,
/// falling back to older ones when a checkpoint cannot be read: a training process may prune it
/// while this one reads, or it may be damaged. The checkpoint used is returned with the value.
pub fn load_newest<T>(
    run_dir: &Path,
    checkpoint: Option<&Path>,
    load: impl FnMut(&Path) -> Result<T>,
) -> Result<(T, PathBuf)> {
    load_newest_with(run_dir, checkpoint, load, |m| tracing::warn!("{m}"))
}

/// [`load_newest`], telling `warn` about each unusable checkpoint that is still there (one
/// pruned meanwhile is skipped silently).
pub fn load_newest_with<T>(
    run_dir: &Path,
    checkpoint: Option<&Path>,
    mut load: impl FnMut(&Path) -> Result<T>,
    mut warn: impl FnMut(&str),
) -> Result<(T, PathBuf)> {
    if let Some(c) = checkpoint {
        return Ok((load(c)?, c.to_path_buf()));
    }
    let all = list(run_dir)?;
    if all.is_empty() {
        latest(run_dir)?;
    }
    let mut first_err = None;
    for (_, dir) in all.iter().rev() {
        match load(dir) {
            Ok(v) => return Ok((v, dir.clone())),
            Err(e) if is_checkpoint_error(&e, dir) => {
                if dir.exists() {
                    warn(&format!(
                        "checkpoint {} is unusable ({e}); trying the one before it",
                        dir.display()
                    ));
                }
                first_err.get_or_insert(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(first_err.expect("at least one checkpoint was tried"))
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
    if let Err(e) = check_finite_dir(&tmp, step) {
        std::fs::remove_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        return Err(e);
    }
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(|e| Error::io(&final_dir, e))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(|e| Error::io(&final_dir, e))?;
    sync_dir(&root)?;
    let all = list(run_dir)?;
    if all.len() > keep {
        for (_, old) in &all[..all.len() - keep] {
            std::fs::remove_dir_all(old).map_err(|e| Error::io(old, e))?;
        }
    }
    Ok(final_dir)
}

/// Copy the files of checkpoint `from` into the directory `to` (`best`'s record stays behind).
pub fn copy_files(from: &Path, to: &Path) -> Result<()> {
    for entry in std::fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let entry = entry.map_err(|e| Error::io(from, e))?;
        let path = entry.path();
        if path.is_file() && entry.file_name() != BEST_RECORD {
            std::fs::copy(&path, to.join(entry.file_name())).map_err(|e| Error::io(&path, e))?;
        }
    }
    Ok(())
}

/// The checkpoint with the lowest FID of evaluations during training, and its record.
pub const BEST: &str = "best";
pub const BEST_RECORD: &str = "best.json";

/// After a crash between [`save_best`]'s two renames, `best` is missing: the complete new one
/// (`.tmp-best`, synced before the swap began) or the old one (`.old-best`) takes its place.
fn recover_best(root: &Path) -> Result<()> {
    let best = root.join(BEST);
    if best.exists() {
        return Ok(());
    }
    let (tmp, old) = (root.join(".tmp-best"), root.join(".old-best"));
    let from = if old.is_dir() && tmp.join(BEST_RECORD).is_file() {
        tmp
    } else if old.is_dir() {
        old
    } else {
        return Ok(());
    };
    std::fs::rename(&from, &best).map_err(|e| Error::io(&best, e))?;
    sync_dir(root)
}

/// FID of `checkpoints/best`, if the run has one.
pub fn best_fid(run_dir: &Path) -> Option<f64> {
    best_record(run_dir).map(|(_, fid)| fid)
}

/// Step and FID of `checkpoints/best`, if the run has one.
pub fn best_record(run_dir: &Path) -> Option<(u64, f64)> {
    recover_best(&run_dir.join("checkpoints")).ok()?;
    let path = run_dir.join("checkpoints").join(BEST).join(BEST_RECORD);
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    Some((v.get("step")?.as_u64()?, v.get("fid")?.as_f64()?))
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
    recover_best(&root)?;
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
    sync_dir(&root)?;
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
        // The failed write's temporary directory goes at the next start.
        let tmp = run.path().join("checkpoints").join(".tmp-step-0000040");
        assert!(tmp.is_dir());
        clean_up(run.path()).unwrap();
        assert!(!tmp.exists());
        assert_eq!(list(run.path()).unwrap().len(), 2);
    }

    /// A structurally valid record holding a NaN is refused on load as a corrupt one (so resume
    /// and readers fall back to an older checkpoint), and a checkpoint whose files hold one is
    /// never written: the latest stays the one before.
    #[test]
    fn non_finite_records_are_refused_and_never_written() {
        use burn::nn::{Linear, LinearConfig};
        use burn::tensor::{Device, Tensor};
        let device = Device::flex();
        let tmp = tempfile::tempdir().unwrap();
        let fine: Linear = LinearConfig::new(3, 2).init(&device);
        let mut bad = fine.clone();
        bad.weight = bad.weight.map(|w| {
            w.clone()
                .slice_assign([0..1, 0..1], Tensor::from_floats([[f32::NAN]], &device))
        });
        let (ok_path, bad_path) = (tmp.path().join("ok.bpk"), tmp.path().join("bad.bpk"));
        save_module(fine.clone(), &ok_path).unwrap();
        save_module(bad.clone(), &bad_path).unwrap();
        load_module(fine.clone(), &ok_path).unwrap();
        let err = load_module(fine.clone(), &bad_path).unwrap_err();
        assert!(
            err.to_string().contains("NaN or infinite values in weight"),
            "{err}"
        );
        assert!(is_checkpoint_error(&err, tmp.path()));

        let run = tmp.path().join("run");
        save(&run, 1, 3, |d| save_module(fine.clone(), &d.join("g.bpk"))).unwrap();
        let err = save(&run, 2, 3, |d| save_module(bad.clone(), &d.join("g.bpk"))).unwrap_err();
        assert!(matches!(err, Error::Diverged(_)), "{err}");
        assert!(err.to_string().contains("g.bpk"), "{err}");
        assert_eq!(latest(&run).unwrap().0, 1);
        clean_up(&run).unwrap();
        let names: Vec<_> = std::fs::read_dir(run.join("checkpoints"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec!["step-0000001"]);
    }

    /// A crash between `save_best`'s two renames leaves no `best`; the next use finds the new
    /// one (complete before the swap began) in its place.
    #[test]
    fn an_interrupted_best_swap_is_recovered() {
        let run = tempfile::tempdir().unwrap();
        let write = |d: &Path| std::fs::write(d.join("x"), b"ok").map_err(|e| Error::io(d, e));
        save_best(run.path(), 10, 5.0, write).unwrap();
        let root = run.path().join("checkpoints");
        // As if the process died after moving the old best aside, before the new one moved in.
        write_synced(&root.join(".tmp-best"), |d| {
            write(d)?;
            std::fs::write(d.join(BEST_RECORD), r#"{"step": 20, "fid": 4.0}"#)
                .map_err(|e| Error::io(d, e))
        })
        .unwrap();
        std::fs::rename(root.join(BEST), root.join(".old-best")).unwrap();
        assert_eq!(best_fid(run.path()), Some(4.0));
        clean_up(run.path()).unwrap();
        assert!(root.join(BEST).is_dir() && !root.join(".old-best").exists());
    }
}
