//! BigGAN-PyTorch checkpoints (`G.pth`, `G_ema.pth`, `D.pth`: plain `torch.save` state dicts)
//! into `model.family = "biggan"` runs. genforge's BigGAN has BigGAN-PyTorch's fields, so the
//! keys map one to one except for nesting: BigGAN-PyTorch's `blocks.i.0` (the residual block)
//! and `blocks.i.1` (the attention after it) are genforge's `blocks.i` and `attention.i`, and its
//! `output_layer.0` / `output_layer.2` are `output_bn` / `output_conv`.
//!
//! The released 138k ImageNet checkpoint (`BigGAN_ch96_bs256x8_138k`) loads with the preset
//! `biggan-imagenet128` (`SN_eps` 1e-6, `BN_eps` 1e-5), the TF-Hub conversion
//! (`TFHub/converter.py`, `biggan-128.pth`, which has no `sv0` buffers) with
//! `biggan-tfhub128` (1e-4 for both); the preset is picked from the file unless given.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use burn_pack::Tensor as PackTensor;
use std::collections::BTreeMap;

use super::{KeyMap, apply, read_torch, sha256, write_run};
use crate::config::TrainConfig;
use crate::models;
use crate::models::biggan::{BigganConfig, Discriminator, Generator};
use crate::rng::Rng;
use crate::run::checkpoint::{files, save_module};
use crate::{Error, Result};

/// The 1,000 ImageNet class names in class order (`data/imagenet-classes.txt`).
pub const IMAGENET_CLASSES: &str = include_str!("../../../../data/imagenet-classes.txt");

/// genforge module path -> BigGAN-PyTorch state-dict key.
pub fn torch_key(native: &str) -> String {
    let parts: Vec<&str> = native.splitn(3, '.').collect();
    match parts.as_slice() {
        ["blocks", i, rest] => format!("blocks.{i}.0.{rest}"),
        ["attention", i, rest] => format!("blocks.{i}.1.{rest}"),
        ["output_bn", rest @ ..] => format!("output_layer.0.{}", rest.join(".")),
        ["output_conv", rest @ ..] => format!("output_layer.2.{}", rest.join(".")),
        _ => native.to_string(),
    }
}

/// BigGAN-PyTorch state-dict key -> genforge module path.
pub fn native_key(torch: &str) -> String {
    let parts: Vec<&str> = torch.splitn(4, '.').collect();
    match parts.as_slice() {
        ["blocks", i, "0", rest] => format!("blocks.{i}.{rest}"),
        ["blocks", i, "1", rest] => format!("attention.{i}.{rest}"),
        ["output_layer", "0", rest @ ..] => format!("output_bn.{}", rest.join(".")),
        ["output_layer", "2", rest @ ..] => format!("output_conv.{}", rest.join(".")),
        _ => torch.to_string(),
    }
}

/// The TF-Hub conversion stores no `sv0` (the last singular values, logged only).
fn optional(native: &str) -> bool {
    native.ends_with(".sv0")
}

pub const KEYS: KeyMap = KeyMap {
    foreign: torch_key,
    native: native_key,
    optional,
};

/// What a BigGAN-PyTorch file holds, by its keys.
#[derive(Debug, PartialEq, Eq)]
pub enum Contents {
    Generator { tfhub: bool },
    Discriminator,
    Other,
}

pub fn contents(tensors: &BTreeMap<String, PackTensor>) -> Contents {
    let has = |k: &str| tensors.contains_key(k);
    if has("shared.weight") && has("blocks.0.0.conv1.weight") {
        Contents::Generator {
            tfhub: !tensors.keys().any(|k| k.ends_with(".sv0")),
        }
    } else if has("embed.weight") && has("blocks.0.0.conv1.weight") {
        Contents::Discriminator
    } else {
        Contents::Other
    }
}

/// What [`import`] made.
pub struct Imported {
    pub preset: String,
    pub tensors: usize,
    pub discriminator: bool,
    pub sha256: String,
    pub classes: usize,
}

fn biggan_config(cfg: &TrainConfig) -> Result<&BigganConfig> {
    cfg.model.as_biggan().ok_or_else(|| {
        Error::Config(format!(
            "preset {} is a {} config; a BigGAN import needs a biggan one (biggan-imagenet128, \
             biggan-tfhub128)",
            cfg.name,
            cfg.model.family()
        ))
    })
}

/// Import the generator `file` (and the discriminator `d_file`) into the new run `out`, with the
/// config `preset` (default: picked from the file) and `overrides` (`key=value`).
pub fn import(
    file: &Path,
    d_file: Option<&Path>,
    preset: Option<&str>,
    overrides: &[String],
    out: &Path,
) -> Result<Imported> {
    let tensors = read_torch(file)?;
    let tfhub = match contents(&tensors) {
        Contents::Generator { tfhub } => tfhub,
        Contents::Discriminator => {
            return Err(Error::data(
                file,
                "is a BigGAN-PyTorch discriminator; import the generator (G_ema.pth or G.pth) \
                 and give this file with --discriminator",
            ));
        }
        Contents::Other => {
            let some: Vec<&String> = tensors.keys().take(4).collect();
            return Err(Error::data(
                file,
                format!(
                    "holds no BigGAN-PyTorch generator (no shared.weight and blocks.0.0.*; its \
                     keys start {some:?}); BigGAN-PyTorch keeps the weights in G_ema.pth, G.pth \
                     and D.pth (state_dict.pth is its training state)"
                ),
            ));
        }
    };
    let preset = preset
        .unwrap_or(if tfhub {
            "biggan-tfhub128"
        } else {
            "biggan-imagenet128"
        })
        .to_string();
    let cfg = TrainConfig::load(&preset, overrides)?;
    let c = biggan_config(&cfg)?;
    let device = Device::flex();
    let mut g = Generator::new(c, &mut Rng::new(0), &device);
    let n = apply(&mut g, &tensors, &KEYS, file)?;
    let d = match d_file {
        Some(path) => {
            let dt = read_torch(path)?;
            if contents(&dt) != Contents::Discriminator {
                return Err(Error::data(
                    path,
                    "is not a BigGAN-PyTorch discriminator (no embed.weight and blocks.0.0.*)",
                ));
            }
            let mut d = Discriminator::new(c, &mut Rng::new(1), &device);
            apply(&mut d, &dt, &KEYS, path)?;
            Some(d)
        }
        None => None,
    };
    let sha = sha256(file)?;
    let source = serde_json::json!({
        "format": "BigGAN-PyTorch state dict",
        "generator": absolute(file),
        "generator_sha256": sha,
        "discriminator": d_file.map(absolute),
        "preset": preset,
        "tfhub_conversion": tfhub,
    });
    let has_d = d.is_some();
    write_run(out, &cfg, source, |dir| {
        // Saved as the family enums, as training saves them.
        save_module(models::Generator::Big(g), &dir.join(files::GENERATOR))?;
        if let Some(d) = d {
            save_module(
                models::Discriminator::Big(d),
                &dir.join(files::DISCRIMINATOR),
            )?;
        }
        Ok(())
    })?;
    if c.num_classes == 1000 {
        crate::run::write_atomic(&out.join(CLASS_NAMES), IMAGENET_CLASSES.as_bytes())?;
    }
    Ok(Imported {
        preset,
        tensors: n,
        discriminator: has_d,
        sha256: sha,
        classes: c.num_classes,
    })
}

/// Class names a run carries itself (one per line), before those of its data.
pub const CLASS_NAMES: &str = "categories.txt";

fn absolute(p: &Path) -> String {
    std::fs::canonicalize(p)
        .unwrap_or_else(|_| PathBuf::from(p))
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_both_ways() {
        for (native, torch) in [
            ("blocks.3.conv1.u0", "blocks.3.0.conv1.u0"),
            ("blocks.0.bn1.gain.weight", "blocks.0.0.bn1.gain.weight"),
            ("attention.3.theta.weight", "blocks.3.1.theta.weight"),
            ("attention.3.gamma", "blocks.3.1.gamma"),
            ("output_bn.stored_var", "output_layer.0.stored_var"),
            ("output_conv.sv0", "output_layer.2.sv0"),
            ("shared.weight", "shared.weight"),
            ("linear.u0", "linear.u0"),
            ("embed.weight", "embed.weight"),
        ] {
            assert_eq!(torch_key(native), torch);
            assert_eq!(native_key(torch), native);
        }
        assert_eq!(IMAGENET_CLASSES.lines().count(), 1000);
        assert_eq!(IMAGENET_CLASSES.lines().nth(207), Some("golden retriever"));
    }
}
