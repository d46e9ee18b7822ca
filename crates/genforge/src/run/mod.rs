//! Run directories: `runs/<NNNNN>-<name>/` with the resolved `config.toml`, `stats.jsonl`,
//! `samples/` and `checkpoints/` (see [`checkpoint`]).

pub mod checkpoint;
pub mod lock;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::rng::Rng;
use crate::{Error, Result};

/// Scalar state saved beside the weights in every checkpoint.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TrainerState {
    pub step: u64,
    pub images_seen: u64,
    /// The run's random stream (latents, noise, mixing, augmentation), so a resumed run draws
    /// what a straight run would.
    pub rng: Rng,
    /// Progressive growing: the level of detail of the last step (see
    /// [`crate::models::growth`]), which decides when the optimizers are reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lod: Option<f64>,
    /// StyleGAN2's running mean path length `a` (path length regularization).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pl_mean: Option<f64>,
    /// ADA: the augmentation probability p and the signs of D's real logits summed since its
    /// last update (`train.augment = "ada"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ada: Option<crate::train::ada::AdaState>,
}

impl TrainerState {
    /// Step 0 with the run's random stream `label` forked from `seed`.
    pub fn new(seed: u64, label: u64) -> Self {
        TrainerState {
            step: 0,
            images_seen: 0,
            rng: Rng::new(seed).fork(label),
            lod: None,
            pl_mean: None,
            ada: None,
        }
    }
}

/// The saved config of the run in `dir`; an error when `dir` is not a run directory.
pub fn open(dir: &Path) -> Result<TrainConfig> {
    let cfg_path = dir.join(CONFIG_FILE);
    if !cfg_path.is_file() {
        return Err(Error::run(
            dir,
            "is not a genforge run directory (no config.toml)",
        ));
    }
    TrainConfig::load_file(&cfg_path)
}

pub const CONFIG_FILE: &str = "config.toml";
pub const STATS_FILE: &str = "stats.jsonl";
/// One line per training session: the step it started at, the kernel switches and the CPU
/// features in force, so a run's speed and its last bits can be traced to how it ran.
pub const ENVIRONMENT_FILE: &str = "environment.jsonl";

/// Appends this process's kernel settings and CPU features to the run's [`ENVIRONMENT_FILE`].
pub fn record_environment(dir: &Path, step: u64, device: &str) -> Result<()> {
    let settings = crate::cpu::settings::settings();
    let kernels: serde_json::Map<String, serde_json::Value> = settings
        .pairs()
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::from(*v)))
        .collect();
    let line = serde_json::json!({
        "step": step,
        "genforge": env!("CARGO_PKG_VERSION"),
        "device": device,
        "kernels": kernels,
        "cpu_features": crate::cpu::settings::cpu_features(),
    });
    append_jsonl(&dir.join(ENVIRONMENT_FILE), &line)
}

/// Give the new run `to` the history of run `from` up to `step`: the lines of `stats.jsonl` and
/// `environment.jsonl` up to it, the sample grids up to it and the real-image grid, and
/// `checkpoints/best` when it was chosen by then.
pub fn copy_history(from: &Path, to: &Path, step: u64) -> Result<()> {
    for name in [STATS_FILE, ENVIRONMENT_FILE] {
        let path = from.join(name);
        if path.is_file() {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            write_atomic(&to.join(name), lines_up_to(&text, step).as_bytes())?;
        }
    }
    let samples = from.join("samples");
    if samples.is_dir() {
        for entry in std::fs::read_dir(&samples).map_err(|e| Error::io(&samples, e))? {
            let entry = entry.map_err(|e| Error::io(&samples, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // `step-NNNNNNN.png` up to `step`, and the grids of no step (`reals.png`).
            let keep = match name
                .strip_prefix("step-")
                .and_then(|n| n.strip_suffix(".png"))
            {
                Some(n) => n.parse::<u64>().is_ok_and(|s| s <= step),
                None => true,
            };
            if keep && entry.path().is_file() {
                let dest = to.join("samples").join(&name);
                std::fs::copy(entry.path(), &dest).map_err(|e| Error::io(&dest, e))?;
            }
        }
    }
    let best = from.join("checkpoints").join(checkpoint::BEST);
    if checkpoint::best_record(from).is_some_and(|(s, _)| s <= step) {
        let dest = to.join("checkpoints").join(checkpoint::BEST);
        std::fs::create_dir_all(&dest).map_err(|e| Error::io(&dest, e))?;
        checkpoint::copy_files(&best, &dest)?;
        let record = best.join(checkpoint::BEST_RECORD);
        std::fs::copy(&record, dest.join(checkpoint::BEST_RECORD))
            .map_err(|e| Error::io(&record, e))?;
    }
    Ok(())
}

/// The next free `NNNNN-name` directory under `root`.
pub fn next_run_dir(root: &Path, name: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    let mut next = 0;
    for entry in std::fs::read_dir(root)
        .map_err(|e| Error::io(root, e))?
        .flatten()
    {
        let fname = entry.file_name().to_string_lossy().into_owned();
        if let Some(n) = fname.split('-').next().and_then(|s| s.parse::<u32>().ok()) {
            next = next.max(n + 1);
        }
    }
    Ok(root.join(format!("{next:05}-{name}")))
}

/// Create the directory layout of a new run and write its config.
pub fn create(dir: &Path, config_toml: &str) -> Result<()> {
    if dir.join(CONFIG_FILE).exists() {
        return Err(Error::run(
            dir,
            "already holds a run; continue it with --resume, or pick another --run-dir",
        ));
    }
    for sub in ["samples", "checkpoints"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| Error::io(dir.join(sub), e))?;
    }
    write_atomic(&dir.join(CONFIG_FILE), config_toml.as_bytes())
}

/// Write a file through a uniquely named temporary sibling and a rename, so readers never see
/// half of it and two writers never share a temporary file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut f = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
    // Temporary files are private; the result is an ordinary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io(f.path(), e))?;
    }
    f.write_all(bytes)
        .and_then(|_| f.as_file().sync_all())
        .map_err(|e| Error::io(f.path(), e))?;
    f.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// Append one JSON object as a line to `path` (created when missing).
pub fn append_jsonl(path: &Path, line: &serde_json::Value) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    writeln!(f, "{line}").map_err(|e| Error::io(path, e))
}

/// The JSON lines of `text` whose `step` is at most `step`, each ending in a newline.
fn lines_up_to(text: &str, step: u64) -> String {
    text.lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v.get("step").and_then(|s| s.as_u64()))
                .is_some_and(|s| s <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Appends one JSON object per line to `stats.jsonl`.
pub struct StatsWriter {
    file: std::fs::File,
    path: PathBuf,
}

impl StatsWriter {
    /// Open for appending, first dropping lines past `keep_until_step` (left by a run that
    /// crashed after logging but before its next checkpoint).
    pub fn open(dir: &Path, keep_until_step: u64) -> Result<Self> {
        let path = dir.join(STATS_FILE);
        if path.exists() {
            let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
            let kept = lines_up_to(&text, keep_until_step);
            if kept.len() != text.len() {
                write_atomic(&path, kept.as_bytes())?;
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        Ok(StatsWriter { file, path })
    }

    pub fn write(&mut self, line: &serde_json::Value) -> Result<()> {
        writeln!(self.file, "{line}").map_err(|e| Error::io(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run directory with stats, environment lines and grids at steps 2, 4, 6 and `best`
    /// chosen at `best_step`.
    fn fake_run(dir: &Path, best_step: u64) {
        create(dir, "name = \"x\"\n").unwrap();
        let mut stats = String::new();
        for step in [2, 4, 6] {
            stats.push_str(&format!("{{\"step\":{step},\"d_loss\":1}}\n"));
            stats.push_str(&format!("{{\"step\":{step},\"fid\":{step}}}\n"));
            std::fs::write(
                dir.join(format!("samples/step-{step:07}.png")),
                [step as u8],
            )
            .unwrap();
        }
        std::fs::write(dir.join(STATS_FILE), stats).unwrap();
        std::fs::write(dir.join(ENVIRONMENT_FILE), "{\"step\":0}\n{\"step\":5}\n").unwrap();
        std::fs::write(dir.join("samples/reals.png"), b"r").unwrap();
        checkpoint::save_best(dir, best_step, 1.0, |d| {
            std::fs::write(d.join("generator.bpk"), b"g").map_err(|e| Error::io(d, e))
        })
        .unwrap();
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    }

    #[test]
    fn a_branch_gets_the_history_up_to_its_step_only() {
        let tmp = tempfile::tempdir().unwrap();
        let (from, to) = (tmp.path().join("from"), tmp.path().join("to"));
        fake_run(&from, 2);
        create(&to, "name = \"x\"\n").unwrap();
        copy_history(&from, &to, 4).unwrap();
        let stats = std::fs::read_to_string(to.join(STATS_FILE)).unwrap();
        let steps: Vec<u64> = stats
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(steps, [2, 2, 4, 4]);
        let env = std::fs::read_to_string(to.join(ENVIRONMENT_FILE)).unwrap();
        assert_eq!(env, "{\"step\":0}\n");
        assert_eq!(
            names(&to.join("samples")),
            ["reals.png", "step-0000002.png", "step-0000004.png"]
        );
        assert_eq!(
            std::fs::read(to.join("samples/step-0000004.png")).unwrap(),
            [4]
        );
        assert_eq!(checkpoint::best_record(&to), Some((2, 1.0)));
        let best = to.join("checkpoints").join(checkpoint::BEST);
        assert_eq!(std::fs::read(best.join("generator.bpk")).unwrap(), b"g");
        // A best chosen after the branch point is another future's: left behind.
        let (later, to2) = (tmp.path().join("later"), tmp.path().join("to2"));
        fake_run(&later, 6);
        create(&to2, "name = \"x\"\n").unwrap();
        copy_history(&later, &to2, 4).unwrap();
        assert_eq!(checkpoint::best_record(&to2), None);
        assert!(!to2.join("checkpoints").join(checkpoint::BEST).exists());
    }
}
