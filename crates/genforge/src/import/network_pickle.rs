//! `genforge import X.pkl`: an NVlabs network pickle of any generation, recognised by what it
//! holds and imported as a run of the matching family.
//!
//! | pickle | networks | genforge family |
//! |---|---|---|
//! | stylegan2-ada-pytorch | `dict(G, D, G_ema, ...)` of persistent torch modules | `stylegan2` |
//! | StyleGAN2, TensorFlow | `(G, D, Gs)`, `dnnlib.tflib.network.Network` v4 | `stylegan2` |
//! | StyleGAN (2019), TensorFlow | `(G, D, Gs)`, `dnnlib.tflib.network.Network` v3 | `stylegan` |
//! | Progressive GAN, TensorFlow | `(G, D, Gs)`, `tfutil.Network` v2 | `pggan` |

use std::path::Path;

use burn::tensor::Device;

use super::pickle::Pickle;
use super::tflib::{self, Converted, TfNetwork};
use super::{KeyMap, apply, sha256, write_run};
use crate::config::TrainConfig;
use crate::models::{self, ModelConfig};
use crate::rng::Rng;
use crate::run::checkpoint::{files, save_module};
use crate::{Error, Result};

/// What `genforge import` made of a network pickle.
pub struct Imported {
    /// The pickle's kind, in words.
    pub format: &'static str,
    /// The run's `model.family`.
    pub family: &'static str,
    pub tensors: usize,
    pub discriminator: bool,
    pub sha256: String,
    pub resolution: usize,
    /// Style inputs of the synthesis network (`ws`); 0 for Progressive GAN.
    pub styles: usize,
    pub classes: usize,
}

/// Tensors already under genforge's module paths.
pub const SAME_KEYS: KeyMap = KeyMap {
    foreign: str::to_string,
    native: str::to_string,
    optional: |_| false,
};

/// Which TF network a `(G, D, Gs)` pickle holds, from `Gs`'s variables.
enum TfKind {
    Stylegan2,
    Stylegan,
    Pggan,
}

fn tf_kind(gs: &TfNetwork) -> Option<TfKind> {
    let has = |s: &str| gs.variables.keys().any(|k| k.contains(s));
    if has("mod_weight") {
        Some(TfKind::Stylegan2)
    } else if has("StyleMod") {
        Some(TfKind::Stylegan)
    } else if has("4x4/Dense") && has("ToRGB_lod") {
        Some(TfKind::Pggan)
    } else {
        None
    }
}

/// Import the network pickle `file` into the new run `out` (`overrides` as `--set`); `family`,
/// when given, must be the family the pickle builds.
pub fn import(
    file: &Path,
    family: Option<&str>,
    overrides: &[String],
    out: &Path,
) -> Result<Imported> {
    let map = super::stylegan2::map_file(file)?;
    let p = Pickle::parse(&map)
        .map_err(|e| Error::data(file, format!("is not a readable pickle: {e}")))?;
    let tf = tflib::networks(&p).map_err(|e| Error::data(file, e.0))?;
    let kind = match tf.as_slice() {
        [] => TfKind::Stylegan2,
        [_g, _d, gs] => tf_kind(gs).ok_or_else(|| {
            Error::data(
                file,
                format!(
                    "holds TF networks ({}) of no kind genforge knows: not StyleGAN, StyleGAN2 \
                     or Progressive GAN",
                    gs.name
                ),
            )
        })?,
        nets => {
            return Err(Error::data(
                file,
                format!(
                    "holds {} TF networks; NVlabs' pickles hold (G, D, Gs)",
                    nets.len()
                ),
            ));
        }
    };
    let builds = match kind {
        TfKind::Stylegan2 => "stylegan2",
        TfKind::Stylegan => "stylegan",
        TfKind::Pggan => "pggan",
    };
    if let Some(f) = family.filter(|f| *f != builds) {
        return Err(Error::Config(format!(
            "--family {f}: {} is a {builds} network",
            file.display()
        )));
    }
    let tf_pair = || (&tf[2], &tf[1]);
    match kind {
        TfKind::Stylegan2 => {
            drop(p);
            let done = super::stylegan2::import(file, overrides, out)?;
            let c = &done.config;
            Ok(Imported {
                format: done.format,
                family: "stylegan2",
                tensors: done.tensors,
                discriminator: done.discriminator,
                sha256: done.sha256,
                resolution: c.resolution,
                styles: c.num_ws(),
                classes: c.num_classes,
            })
        }
        TfKind::Stylegan => {
            let (gs, d) = tf_pair();
            let c = super::stylegan::config_of(gs, d).map_err(|e| Error::data(file, e))?;
            let cfg = imported_config("stylegan-ffhq", ModelConfig::Stylegan(c), overrides)?;
            let ModelConfig::Stylegan(c) = &cfg.model else {
                return Err(family_changed("stylegan"));
            };
            let g_t = super::stylegan::generator(gs, c).map_err(|e| Error::data(file, e))?;
            let d_t = super::stylegan::discriminator(d, c).map_err(|e| Error::data(file, e))?;
            let device = Device::flex();
            let mut g = models::stylegan::Generator::new(c, &mut Rng::new(0), &device);
            let mut dn = models::stylegan::Discriminator::new(c, &mut Rng::new(1), &device);
            let tensors = load(&mut g, &g_t, file)? + load(&mut dn, &d_t, file)?;
            let shape = (c.resolution, c.num_layers());
            let nets = (
                models::Generator::Style(g),
                models::Discriminator::Style(dn),
            );
            let format = "NVlabs StyleGAN TensorFlow pickle (dnnlib.tflib.network.Network v3)";
            finish(file, out, &cfg, format, (gs, d), nets, tensors, shape)
        }
        TfKind::Pggan => {
            let (gs, d) = tf_pair();
            let c = super::pggan::config_of(gs, d).map_err(|e| Error::data(file, e))?;
            let mut cfg = imported_config("pggan-celebahq", ModelConfig::Pggan(c), overrides)?;
            // Every level is in the network; the run samples the finished one.
            cfg.train.progressive = false;
            let ModelConfig::Pggan(c) = &cfg.model else {
                return Err(family_changed("pggan"));
            };
            let g_t = super::pggan::generator(gs, c).map_err(|e| Error::data(file, e))?;
            let d_t = super::pggan::discriminator(d, c).map_err(|e| Error::data(file, e))?;
            let device = Device::flex();
            let mut g = models::pggan::Generator::new(c, &mut Rng::new(0), &device);
            let mut dn = models::pggan::Discriminator::new(c, &mut Rng::new(1), &device);
            let tensors = load(&mut g, &g_t, file)? + load(&mut dn, &d_t, file)?;
            let shape = (c.resolution, 0);
            let nets = (models::Generator::Pg(g), models::Discriminator::Pg(dn));
            let format = "NVlabs Progressive GAN TensorFlow pickle (tfutil.Network v2)";
            finish(file, out, &cfg, format, (gs, d), nets, tensors, shape)
        }
    }
}

fn family_changed(family: &str) -> Error {
    Error::Config(format!(
        "--set model.family: this pickle builds a {family} network"
    ))
}

/// `preset` with the pickle's `model` and then the user's `--set` overrides.
pub fn imported_config(
    preset: &str,
    model: ModelConfig,
    overrides: &[String],
) -> Result<TrainConfig> {
    let mut cfg = TrainConfig::load(preset, &[])?;
    cfg.model = model;
    cfg.apply_overrides(overrides)?;
    Ok(cfg)
}

/// Load converted tensors into `module`; every key and shape must match.
fn load<M: burn::store::ModuleSnapshot>(
    module: &mut M,
    tensors: &Converted,
    file: &Path,
) -> Result<usize> {
    apply(module, tensors, &SAME_KEYS, file)
}

/// Write the run, with `import.json` naming the file and both networks' arguments.
#[allow(clippy::too_many_arguments)]
fn finish(
    file: &Path,
    out: &Path,
    cfg: &TrainConfig,
    format: &'static str,
    (gs, d): (&TfNetwork, &TfNetwork),
    (g, dn): (models::Generator, models::Discriminator),
    tensors: usize,
    (resolution, styles): (usize, usize),
) -> Result<Imported> {
    let sha = sha256(file)?;
    let source = serde_json::json!({
        "format": format,
        "file": std::fs::canonicalize(file).unwrap_or(file.to_path_buf()).display().to_string(),
        "sha256": sha,
        "G": gs.static_kwargs,
        "D": d.static_kwargs,
    });
    write_gan_run(out, cfg, source, g, Some(dn))?;
    Ok(Imported {
        format,
        family: cfg.model.family(),
        tensors,
        discriminator: true,
        sha256: sha,
        resolution,
        styles,
        classes: 0,
    })
}

/// A run of one imported generator (and discriminator) at step 0.
pub fn write_gan_run(
    out: &Path,
    cfg: &TrainConfig,
    source: serde_json::Value,
    g: models::Generator,
    d: Option<models::Discriminator>,
) -> Result<()> {
    write_run(out, cfg, source, |dir| {
        save_module(g, &dir.join(files::GENERATOR))?;
        if let Some(d) = d {
            save_module(d, &dir.join(files::DISCRIMINATOR))?;
        }
        Ok(())
    })
}
