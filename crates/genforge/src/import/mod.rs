//! Networks trained elsewhere, turned into genforge run directories: their weights read in pure
//! Rust, checked key by key and shape by shape against the genforge network the run's config
//! builds, and written as the checkpoint `checkpoints/step-0000000`. After that `sample`,
//! `eval`, `report` and the family's figure commands work on the run as on a trained one.
//!
//! - [`biggan`]: BigGAN-PyTorch's `torch.save` state dicts (its released 128x128 checkpoint and
//!   the TF-Hub conversion).
//! - [`pickle`] and [`torch_pickle`]: a pickle reader that runs nothing, and the tensors inside
//!   plain pickles (the groundwork for NVlabs' network pickles).

pub mod biggan;
pub mod network_pickle;
pub mod persistent;
pub mod pggan;
pub mod pickle;
pub mod stylegan;
pub mod stylegan2;
pub mod tflib;
pub mod torch_pickle;

use std::collections::BTreeMap;
use std::path::Path;

use burn::store::bridge;
use burn::store::{ModuleSnapshot, ModuleStore, PytorchStore};
use burn::tensor::TensorData;
use burn_pack::Tensor as PackTensor;
use sha2::{Digest, Sha256};

use crate::config::TrainConfig;
use crate::run::{self, TrainerState, checkpoint};
use crate::{Error, Result};

/// The tensors of a `torch.save` file (zip or legacy format) by key, unread until used.
pub fn read_torch(path: &Path) -> Result<BTreeMap<String, PackTensor>> {
    if !path.is_file() {
        return Err(Error::data(path, "no such file"));
    }
    let mut store = PytorchStore::from_file(path).map_indices_contiguous(false);
    let tensors = store.get_all_tensors().map_err(|e| {
        Error::data(
            path,
            format!("cannot be read as a PyTorch checkpoint (torch.save file): {e}"),
        )
    })?;
    Ok(tensors.clone())
}

/// `t` renamed, as f32, with a PyTorch scalar (shape `[]`) as shape `[1]`.
fn adapt(t: &PackTensor, name: String) -> Result<PackTensor> {
    if !t.shape.is_empty() && t.dtype == burn::tensor::DType::F32 {
        let mut t = t.clone();
        t.name = name;
        return Ok(t);
    }
    let data = bridge::to_data(t).map_err(|e| Error::Config(format!("{}: {e}", t.name)))?;
    let shape: Vec<usize> = if t.shape.is_empty() {
        vec![1]
    } else {
        t.shape.to_vec()
    };
    let values = data
        .convert::<f32>()
        .try_to_vec::<f32>()
        .map_err(|e| Error::Config(format!("{}: not a floating-point tensor ({e:?})", t.name)))?;
    Ok(bridge::from_data(
        TensorData::new(values, shape),
        name,
        None,
    ))
}

/// How a foreign checkpoint's keys map onto a genforge module's.
pub struct KeyMap {
    /// The foreign key of a genforge module path.
    pub foreign: fn(&str) -> String,
    /// The genforge module path of a foreign key.
    pub native: fn(&str) -> String,
    /// Genforge entries the file may lack (they keep their initial values).
    pub optional: fn(&str) -> bool,
}

/// Load `tensors` (from `file`) into `module` without any layout conversion (genforge's layers
/// are in PyTorch's layouts); every mismatch is an error naming the file's keys. Returns how
/// many tensors were applied.
pub fn apply<M: ModuleSnapshot>(
    module: &mut M,
    tensors: &BTreeMap<String, PackTensor>,
    map: &KeyMap,
    file: &Path,
) -> Result<usize> {
    let expected: BTreeMap<String, Vec<usize>> = module
        .collect(None, None, false)
        .into_iter()
        .map(|t| (t.name.clone(), t.shape.to_vec()))
        .collect();
    let mut problems = Vec::new();
    let mut adapted = Vec::new();
    for (key, t) in tensors {
        let native = (map.native)(key);
        match expected.get(&native) {
            None => problems.push(format!("unexpected key {key}")),
            Some(shape) => {
                let found: Vec<usize> = t.shape.to_vec();
                let same = found == *shape || (found.is_empty() && shape == &[1]);
                if same {
                    adapted.push(adapt(t, native)?);
                } else {
                    problems.push(format!(
                        "{key} has shape {found:?}, the network needs {shape:?}"
                    ));
                }
            }
        }
    }
    for native in expected.keys() {
        let key = (map.foreign)(native);
        if !tensors.contains_key(&key) && !(map.optional)(native) {
            problems.push(format!("missing key {key}"));
        }
    }
    if !problems.is_empty() {
        let n = problems.len();
        problems.truncate(6);
        let more = if n > 6 {
            format!(" (and {} more)", n - 6)
        } else {
            String::new()
        };
        return Err(Error::data(
            file,
            format!(
                "does not match the network of this config: {}{more}; check the preset \
                 (--preset) and its model keys (--set)",
                problems.join("; ")
            ),
        ));
    }
    let result = module.apply(adapted, None, None, false);
    if let Some(e) = result.errors.first() {
        return Err(Error::data(file, format!("could not load: {e}")));
    }
    Ok(result.applied.len())
}

/// SHA-256 of a file, hex.
pub fn sha256(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| Error::io(path, e))?;
    Ok(format!("{:x}", h.finalize()))
}

/// Create the run directory `out` with `cfg` and one checkpoint at step 0 written by `write`,
/// plus `import.json` recording where the weights came from.
pub fn write_run(
    out: &Path,
    cfg: &TrainConfig,
    source: serde_json::Value,
    write: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let _held = run::lock::lock(out)?;
    run::create(out, &cfg.to_toml())?;
    run::write_atomic(
        &out.join("import.json"),
        serde_json::to_string_pretty(&source)
            .expect("plain JSON")
            .as_bytes(),
    )?;
    checkpoint::save(out, 0, 1, |dir| {
        checkpoint::save_state(&TrainerState::new(cfg.train.seed, 0), dir)?;
        write(dir)
    })?;
    Ok(())
}
