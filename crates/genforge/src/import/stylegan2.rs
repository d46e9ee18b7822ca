//! NVlabs' stylegan2-ada-pytorch network pickles (`ffhq.pkl`, `metfaces.pkl`, `cifar10.pkl`,
//! ... and any `network-snapshot-*.pkl` its `train.py` writes) into `model.family =
//! "stylegan2"` runs. The pickle is read by [`super::pickle`], which runs nothing; the network
//! is configured from its constructor arguments (`_init_kwargs`) and its tensors are matched key
//! for key. genforge's field names differ from NVlabs' only where Rust needs lists:
//!
//! | NVlabs                     | genforge                          |
//! |----------------------------|-----------------------------------|
//! | `mapping.fc3.weight`       | `mapping.fc.3.weight`             |
//! | `synthesis.b16.conv0.*`    | `synthesis.blocks.2.conv0.*`      |
//! | `synthesis.b4.const`       | `synthesis.blocks.0.constant`     |
//! | D `b32.conv1.*`            | D `blocks.2.conv1.*` (8x8 is 0)   |
//! | D `b4.*`                   | D `epilogue.*`                    |
//!
//! The `resample_filter` buffers are NVlabs' fixed `[1,3,3,1]` filter; they are checked and
//! dropped.

use std::collections::BTreeMap;
use std::path::Path;

use burn::store::bridge;
use burn::tensor::{Device, TensorData};
use burn_pack::Tensor as PackTensor;
use serde_json::Value;

use super::network_pickle::{imported_config, write_gan_run};
use super::persistent::{self, Module};
use super::pickle::Pickle;
use super::tflib::{
    self, Converted, TfNetwork, kernel, matrix, put, side, tf_kwargs, unknown_keys,
};
use super::{KeyMap, apply, sha256};
use crate::models::stylegan2::{DArchitecture, Discriminator, Generator, Stylegan2Config};
use crate::models::{self, ModelConfig};
use crate::nn::upfirdn2d;
use crate::rng::Rng;
use crate::{Error, Result};

/// Where NVlabs publishes its networks, for the error on a missing file.
pub const WHERE: &str = "NVlabs publishes its StyleGAN2-ADA networks at \
    https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/ (ffhq.pkl, metfaces.pkl, \
    afhqcat.pkl, cifar10.pkl, ...); the READMEs of NVlabs/stylegan2, NVlabs/stylegan and \
    tkarras/progressive_growing_of_gans link their TensorFlow pickles";

/// genforge module path -> NVlabs key, for G (`d = false`) or D.
fn nvlabs_key(native: &str, d: bool) -> String {
    let parts: Vec<&str> = native.split('.').collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < parts.len() {
        match (parts[i], parts.get(i + 1)) {
            ("fc", Some(n)) if n.parse::<usize>().is_ok() => {
                out.push(format!("fc{n}"));
                i += 2;
                continue;
            }
            ("blocks", Some(n)) if n.parse::<usize>().is_ok() => {
                let n: usize = n.parse().unwrap_or(0);
                out.push(format!("b{}", if d { 8 } else { 4 } << n));
                i += 2;
                continue;
            }
            ("constant", _) => out.push("const".into()),
            ("epilogue", _) if d && i == 0 => out.push("b4".into()),
            (p, _) => out.push(p.into()),
        }
        i += 1;
    }
    out.join(".")
}

/// NVlabs key -> genforge module path.
fn native_key(key: &str, d: bool) -> String {
    key.split('.')
        .enumerate()
        .map(|(i, p)| {
            if let Some(n) = p.strip_prefix("fc").filter(|n| n.parse::<usize>().is_ok()) {
                return format!("fc.{n}");
            }
            if let Some(r) = p.strip_prefix('b').and_then(|r| r.parse::<usize>().ok()) {
                if d && i == 0 && r == 4 {
                    return "epilogue".into();
                }
                let base = if d { 8 } else { 4 };
                if r >= base && r.is_power_of_two() {
                    return format!("blocks.{}", (r / base).trailing_zeros());
                }
            }
            if p == "const" {
                return "constant".into();
            }
            p.to_string()
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn never(_: &str) -> bool {
    false
}

pub const G_KEYS: KeyMap = KeyMap {
    foreign: |n| nvlabs_key(n, false),
    native: |k| native_key(k, false),
    optional: never,
};

pub const D_KEYS: KeyMap = KeyMap {
    foreign: |n| nvlabs_key(n, true),
    native: |k| native_key(k, true),
    optional: never,
};

/// What [`import`] made.
pub struct Imported {
    pub format: &'static str,
    pub tensors: usize,
    pub discriminator: bool,
    pub sha256: String,
    pub config: Stylegan2Config,
}

/// A pickle file, memory-mapped.
pub fn map_file(path: &Path) -> Result<memmap2::Mmap> {
    if !path.is_file() {
        return Err(Error::data(path, format!("no such file; {WHERE}")));
    }
    let f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: the map is only read, and only while this process holds it; a file changed
    // underneath gives wrong bytes, which the pickle reader rejects or the key check catches.
    unsafe { memmap2::Mmap::map(&f) }.map_err(|e| Error::io(path, e))
}

fn kw<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

fn usize_of(v: &Value, key: &str, default: usize, file: &Path, net: &str) -> Result<usize> {
    match kw(v, key) {
        None => Ok(default),
        Some(x) => x.as_u64().map(|n| n as usize).ok_or_else(|| {
            Error::data(
                file,
                format!("{net}: _init_kwargs.{key} is {x}, not a whole number"),
            )
        }),
    }
}

/// An error naming any of `v`'s keys outside `known` (arguments genforge does not build).
fn only(v: &Value, known: &[&str], file: &Path, what: &str) -> Result<()> {
    let unknown = unknown_keys(v, known);
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(Error::data(
            file,
            format!(
                "{what} has constructor arguments genforge does not build: {unknown:?} \
                 (it builds NVlabs' defaults for them)"
            ),
        ))
    }
}

/// The config of G's (and D's) `_init_kwargs`.
pub fn config_of(g: &Value, d: Option<&Value>, file: &Path) -> Result<Stylegan2Config> {
    let net = "G";
    only(
        g,
        &[
            "z_dim",
            "c_dim",
            "w_dim",
            "img_resolution",
            "img_channels",
            "mapping_kwargs",
            "synthesis_kwargs",
        ],
        file,
        "G",
    )?;
    let empty = Value::Object(Default::default());
    let mk = kw(g, "mapping_kwargs").unwrap_or(&empty);
    let sk = kw(g, "synthesis_kwargs").unwrap_or(&empty);
    only(
        mk,
        &["num_layers", "lr_multiplier", "w_avg_beta"],
        file,
        "G.mapping_kwargs",
    )?;
    only(
        sk,
        &[
            "channel_base",
            "channel_max",
            "num_fp16_res",
            "conv_clamp",
            "architecture",
            "resample_filter",
            "fp16_channels_last",
            "use_noise",
            "activation",
        ],
        file,
        "G.synthesis_kwargs",
    )?;
    let check = |ok: bool, what: String| {
        if ok {
            Ok(())
        } else {
            Err(Error::data(
                file,
                format!("{what}; genforge builds NVlabs' defaults only"),
            ))
        }
    };
    let lr = kw(mk, "lr_multiplier")
        .and_then(Value::as_f64)
        .unwrap_or(0.01);
    check(
        (lr - 0.01).abs() < 1e-12,
        format!("G.mapping_kwargs.lr_multiplier is {lr}"),
    )?;
    let arch = kw(sk, "architecture")
        .and_then(Value::as_str)
        .unwrap_or("skip");
    check(
        arch == "skip",
        format!("G.synthesis_kwargs.architecture is {arch:?}, not \"skip\""),
    )?;
    let act = kw(sk, "activation")
        .and_then(Value::as_str)
        .unwrap_or("lrelu");
    check(
        act == "lrelu",
        format!("G.synthesis_kwargs.activation is {act:?}"),
    )?;
    check(
        kw(sk, "use_noise") != Some(&Value::Bool(false)),
        "G.synthesis_kwargs.use_noise is False".into(),
    )?;
    if let Some(f) = kw(sk, "resample_filter") {
        check(
            f == &serde_json::json!([1, 3, 3, 1]),
            format!("G's resample_filter is {f}"),
        )?;
    }
    let defaults = Stylegan2Config::default();
    let mut cfg = Stylegan2Config {
        z_dim: usize_of(g, "z_dim", 512, file, net)?,
        w_dim: usize_of(g, "w_dim", 512, file, net)?,
        num_classes: usize_of(g, "c_dim", 0, file, net)?,
        mapping_layers: usize_of(mk, "num_layers", 8, file, net)?,
        channels: usize_of(g, "img_channels", 3, file, net)?,
        resolution: usize_of(g, "img_resolution", 1024, file, net)?,
        channel_base: usize_of(sk, "channel_base", 32768, file, net)?,
        channel_max: usize_of(sk, "channel_max", 512, file, net)?,
        conv_clamp: kw(sk, "conv_clamp").and_then(Value::as_f64).unwrap_or(0.0),
        w_avg_beta: kw(mk, "w_avg_beta")
            .and_then(Value::as_f64)
            .unwrap_or(0.995),
        ..defaults
    };
    if let Some(d) = d {
        let net = "D";
        only(
            d,
            &[
                "c_dim",
                "img_resolution",
                "img_channels",
                "architecture",
                "channel_base",
                "channel_max",
                "num_fp16_res",
                "conv_clamp",
                "cmap_dim",
                "block_kwargs",
                "mapping_kwargs",
                "epilogue_kwargs",
            ],
            file,
            "D",
        )?;
        cfg.d_architecture = match kw(d, "architecture").and_then(Value::as_str) {
            None | Some("resnet") => DArchitecture::Resnet,
            Some("orig") => DArchitecture::Orig,
            Some(other) => {
                return Err(Error::data(
                    file,
                    format!("D.architecture is {other:?}; genforge builds \"resnet\" and \"orig\""),
                ));
            }
        };
        let same = [
            ("c_dim", cfg.num_classes, 0),
            ("img_resolution", cfg.resolution, 1024),
            ("img_channels", cfg.channels, 3),
            ("channel_base", cfg.channel_base, 32768),
            ("channel_max", cfg.channel_max, 512),
        ];
        for (key, want, default) in same {
            let got = usize_of(d, key, default, file, net)?;
            check(got == want, format!("D.{key} is {got} where G's is {want}"))?;
        }
        let clamp = kw(d, "conv_clamp").and_then(Value::as_f64).unwrap_or(0.0);
        check(
            clamp == cfg.conv_clamp,
            format!("D.conv_clamp is {clamp} where G's is {}", cfg.conv_clamp),
        )?;
        let bk = kw(d, "block_kwargs").unwrap_or(&empty);
        only(
            bk,
            &[
                "activation",
                "resample_filter",
                "fp16_channels_last",
                "freeze_layers",
            ],
            file,
            "D.block_kwargs",
        )?;
        let dm = kw(d, "mapping_kwargs").unwrap_or(&empty);
        only(
            dm,
            &["num_layers", "lr_multiplier"],
            file,
            "D.mapping_kwargs",
        )?;
        let ek = kw(d, "epilogue_kwargs").unwrap_or(&empty);
        only(
            ek,
            &["mbstd_group_size", "mbstd_num_channels", "activation"],
            file,
            "D.epilogue_kwargs",
        )?;
        let mbstd_c = usize_of(ek, "mbstd_num_channels", 1, file, net)?;
        check(
            mbstd_c == 1,
            format!("D.epilogue_kwargs.mbstd_num_channels is {mbstd_c}"),
        )?;
        cfg.mbstd_group = usize_of(ek, "mbstd_group_size", 4, file, net)?;
        cfg.d_mapping_layers = usize_of(dm, "num_layers", 8, file, net)?;
        cfg.d_mapping_lr_multiplier = kw(dm, "lr_multiplier")
            .and_then(Value::as_f64)
            .unwrap_or(0.01);
        cfg.cmap_dim = usize_of(d, "cmap_dim", 0, file, net)?;
    }
    cfg.validate()
        .map_err(|e| Error::data(file, format!("builds no valid network: {e}")))?;
    Ok(cfg)
}

/// A network's tensors by NVlabs key, the fixed resample filters checked and left out.
pub fn tensors(m: &Module, file: &Path) -> Result<BTreeMap<String, PackTensor>> {
    let named = m
        .named_tensors()
        .map_err(|e| Error::data(file, format!("{}: {e}", m.class_name)))?;
    let filter = upfirdn2d::filter(1.0);
    let mut out = BTreeMap::new();
    for (key, t) in named {
        if key.ends_with("resample_filter") {
            let same = t.shape == [4, 4]
                && t.values
                    .iter()
                    .zip(&filter)
                    .all(|(a, b)| (a - b).abs() < 1e-6);
            if !same {
                return Err(Error::data(
                    file,
                    format!("{key} is not the [1,3,3,1] filter genforge builds"),
                ));
            }
            continue;
        }
        let shape = t.shape.clone();
        out.insert(
            key.clone(),
            bridge::from_data(TensorData::new(t.values, shape), key, None),
        );
    }
    Ok(out)
}

/// The networks of a stylegan2-ada-pytorch pickle: `G_ema` (else `G`) and `D`.
pub fn networks<'p>(p: &'p Pickle, file: &Path) -> Result<(Module<'p>, Option<Module<'p>>)> {
    let get = |key: &str| p.get(p.root, key).and_then(|id| persistent::module(p, id));
    let g = get("G_ema").or_else(|| get("G")).ok_or_else(|| {
        Error::data(
            file,
            "holds no G_ema or G network: not a stylegan2-ada-pytorch pickle",
        )
    })?;
    if g.class_name != "Generator" {
        return Err(Error::data(
            file,
            format!(
                "its G_ema is a {}, not stylegan2-ada-pytorch's Generator",
                g.class_name
            ),
        ));
    }
    let d = get("D").filter(|d| d.class_name == "Discriminator");
    Ok((g, d))
}

/// What a network pickle holds, ready to build: constructor arguments in stylegan2-ada-pytorch's
/// form and tensors under its keys.
pub struct Networks {
    pub format: &'static str,
    pub g_kwargs: Value,
    pub d_kwargs: Option<Value>,
    pub g: BTreeMap<String, PackTensor>,
    pub d: Option<BTreeMap<String, PackTensor>>,
}

/// G_ema (and D) of a stylegan2-ada-pytorch pickle or of a TF StyleGAN2 pickle.
pub fn read(p: &Pickle, file: &Path) -> Result<Networks> {
    let tf = tflib::networks(p).map_err(|e| Error::data(file, e.0))?;
    if !tf.is_empty() {
        return tf_networks(&tf, file);
    }
    let (gm, dm) = networks(p, file)?;
    let g_kwargs = gm.init_kwargs().ok_or_else(|| {
        Error::data(
            file,
            "its G keeps no _init_kwargs: not a persistent NVlabs network",
        )
    })?;
    Ok(Networks {
        format: "stylegan2-ada-pytorch network pickle",
        g_kwargs,
        d_kwargs: dm.as_ref().and_then(|d| d.init_kwargs()),
        g: tensors(&gm, file)?,
        d: dm.as_ref().map(|d| tensors(d, file)).transpose()?,
    })
}

/// `(G, D, Gs)` of a TensorFlow pickle: StyleGAN2's (version 4) is converted as
/// stylegan2-ada-pytorch's `legacy.py` converts it; StyleGAN's and Progressive GAN's are named.
fn tf_networks(nets: &[TfNetwork], file: &Path) -> Result<Networks> {
    let [_g, d, gs] = nets else {
        return Err(Error::data(
            file,
            format!(
                "holds {} TF networks; NVlabs' pickles hold (G, D, Gs)",
                nets.len()
            ),
        ));
    };
    if gs.version < 4 || !gs.variables.keys().any(|k| k.ends_with("mod_weight")) {
        return Err(Error::data(
            file,
            format!(
                "is a TensorFlow pickle of an older NVlabs network (version {}), not StyleGAN2; \
                 `genforge import` builds StyleGAN (2019) and Progressive GAN pickles as \
                 stylegan and pggan runs",
                gs.version
            ),
        ));
    }
    // Sampling uses Gs, the generator average; G (the raw generator) is not imported.
    let (g_kwargs, g) = tf_generator(gs).map_err(|e| Error::data(file, e))?;
    let (d_kwargs, d) = tf_discriminator(d).map_err(|e| Error::data(file, e))?;
    Ok(Networks {
        format: "NVlabs StyleGAN2 TensorFlow pickle (dnnlib.tflib.network.Network version 4)",
        g_kwargs,
        d_kwargs: Some(d_kwargs),
        g,
        d: Some(d),
    })
}

/// TF StyleGAN2's `G_main` (the `Gs` average) as stylegan2-ada-pytorch's constructor
/// arguments and tensors (`legacy.convert_tf_generator`).
pub fn tf_generator(gs: &TfNetwork) -> std::result::Result<(Value, Converted), String> {
    tf_kwargs(
        gs,
        &[
            "latent_size",
            "label_size",
            "dlatent_size",
            "resolution",
            "num_channels",
            "mapping_layers",
            "label_fmaps",
            "mapping_fmaps",
            "mapping_nonlinearity",
            "mapping_lrmul",
            "w_avg_beta",
            "fmap_base",
            "fmap_max",
            "num_fp16_res",
            "conv_clamp",
            "architecture",
            "resample_kernel",
            "use_noise",
            "nonlinearity",
        ],
        &[
            "truncation_psi",
            "truncation_cutoff",
            "style_mixing_prob",
            "structure",
        ],
    )?;
    let k = |key: &str| gs.static_kwargs.get(key).filter(|v| !v.is_null()).cloned();
    let fmap_base = k("fmap_base").and_then(|v| v.as_u64()).unwrap_or(16384);
    let kwargs = serde_json::json!({
        "z_dim": k("latent_size").unwrap_or(512.into()),
        "c_dim": k("label_size").unwrap_or(0.into()),
        "w_dim": k("dlatent_size").unwrap_or(512.into()),
        "img_resolution": k("resolution").unwrap_or(1024.into()),
        "img_channels": k("num_channels").unwrap_or(3.into()),
        "mapping_kwargs": {
            "num_layers": k("mapping_layers").unwrap_or(8.into()),
            "lr_multiplier": k("mapping_lrmul").unwrap_or(0.01.into()),
            "w_avg_beta": k("w_avg_beta").unwrap_or(0.995.into()),
        },
        "synthesis_kwargs": {
            "channel_base": fmap_base * 2,
            "channel_max": k("fmap_max").unwrap_or(512.into()),
            "conv_clamp": k("conv_clamp"),
            "architecture": k("architecture").unwrap_or("skip".into()),
            "resample_filter": k("resample_kernel").unwrap_or(serde_json::json!([1, 3, 3, 1])),
            "activation": k("nonlinearity").unwrap_or("lrelu".into()),
        },
    });
    for key in ["label_fmaps", "mapping_fmaps"] {
        if k(key).is_some_and(|v| v != kwargs["w_dim"]) {
            return Err(format!(
                "{key} differs from dlatent_size, which genforge does not build"
            ));
        }
    }
    if k("use_noise") == Some(Value::Bool(false)) {
        return Err("use_noise = False, which genforge does not build".into());
    }
    let mut out = Converted::new();
    for (name, t) in &gs.variables {
        let parts: Vec<&str> = name.split('/').collect();
        let unexpected = || format!("unexpected TF variable {name} (shape {:?})", t.shape);
        let dense = |p: &str| {
            if p == "weight" {
                matrix(t)
            } else {
                Ok(t.plus(0.0))
            }
        };
        match parts.as_slice() {
            ["dlatent_avg"] => put(&mut out, "mapping.w_avg".into(), t.plus(0.0)),
            ["mapping", "LabelEmbed", p] => put(&mut out, format!("mapping.embed.{p}"), dense(p)?),
            ["mapping", layer, p] if layer.starts_with("Dense") => put(
                &mut out,
                format!("mapping.fc{}.{p}", &layer["Dense".len()..]),
                dense(p)?,
            ),
            ["synthesis", noise] if noise.starts_with("noise") => {
                let i: usize = noise["noise".len()..].parse().map_err(|_| unexpected())?;
                // noise0 is 4x4's conv1, then (conv0, conv1) per resolution.
                let (r, layer) = match i {
                    0 => (4, "conv1"),
                    _ => (
                        8 << ((i - 1) / 2),
                        if i % 2 == 1 { "conv0" } else { "conv1" },
                    ),
                };
                let v = t.squeezed(2).ok_or_else(unexpected)?;
                put(&mut out, format!("synthesis.b{r}.{layer}.noise_const"), v);
            }
            ["synthesis", "4x4", "Const", "const"] => {
                let v = t.squeezed(1).ok_or_else(unexpected)?;
                put(&mut out, "synthesis.b4.const".into(), v);
            }
            ["synthesis", scope, layer, p] => {
                let r = side(scope).ok_or_else(unexpected)?;
                let pt = match (r, *layer) {
                    (4, "Conv") => "conv1",
                    (_, "Conv0_up") => "conv0",
                    (_, "Conv1") => "conv1",
                    (_, "ToRGB") => "torgb",
                    _ => return Err(unexpected()),
                };
                let key = |leaf: &str| format!("synthesis.b{r}.{pt}.{leaf}");
                match *p {
                    // The up-convolution's kernel is flipped (TF's conv2d_transpose).
                    "weight" if *layer == "Conv0_up" => {
                        put(&mut out, key("weight"), kernel(&t.flipped01())?)
                    }
                    "weight" => put(&mut out, key("weight"), kernel(t)?),
                    "bias" | "noise_strength" => put(&mut out, key(p), t.plus(0.0)),
                    "mod_weight" => put(&mut out, key("affine.weight"), matrix(t)?),
                    // TF adds the affine's 1 at run time; PyTorch stores it in the bias.
                    "mod_bias" => put(&mut out, key("affine.bias"), t.plus(1.0)),
                    _ => return Err(unexpected()),
                }
            }
            _ => return Err(unexpected()),
        }
    }
    Ok((kwargs, out))
}

/// TF StyleGAN2's `D` as stylegan2-ada-pytorch's constructor arguments and tensors
/// (`legacy.convert_tf_discriminator`; an absent `mbstd_group_size` is TF's default 4).
pub fn tf_discriminator(d: &TfNetwork) -> std::result::Result<(Value, Converted), String> {
    tf_kwargs(
        d,
        &[
            "label_size",
            "resolution",
            "num_channels",
            "architecture",
            "fmap_base",
            "fmap_max",
            "num_fp16_res",
            "conv_clamp",
            "mapping_fmaps",
            "nonlinearity",
            "resample_kernel",
            "freeze_layers",
            "mapping_layers",
            "mapping_lrmul",
            "mbstd_group_size",
            "mbstd_num_features",
        ],
        &["structure"],
    )?;
    let k = |key: &str| d.static_kwargs.get(key).filter(|v| !v.is_null()).cloned();
    let fmap_base = k("fmap_base").and_then(|v| v.as_u64()).unwrap_or(16384);
    let kwargs = serde_json::json!({
        "c_dim": k("label_size").unwrap_or(0.into()),
        "img_resolution": k("resolution").unwrap_or(1024.into()),
        "img_channels": k("num_channels").unwrap_or(3.into()),
        "architecture": k("architecture").unwrap_or("resnet".into()),
        "channel_base": fmap_base * 2,
        "channel_max": k("fmap_max").unwrap_or(512.into()),
        "conv_clamp": k("conv_clamp"),
        "cmap_dim": k("mapping_fmaps"),
        "block_kwargs": {
            "activation": k("nonlinearity").unwrap_or("lrelu".into()),
            "resample_filter": k("resample_kernel").unwrap_or(serde_json::json!([1, 3, 3, 1])),
        },
        "mapping_kwargs": {
            "num_layers": k("mapping_layers").unwrap_or(0.into()),
            "lr_multiplier": k("mapping_lrmul").unwrap_or(0.1.into()),
        },
        "epilogue_kwargs": {
            "mbstd_group_size": k("mbstd_group_size").unwrap_or(4.into()),
            "mbstd_num_channels": k("mbstd_num_features").unwrap_or(1.into()),
        },
    });
    let mut out = Converted::new();
    for (name, t) in &d.variables {
        let parts: Vec<&str> = name.split('/').collect();
        let unexpected = || format!("unexpected TF variable D/{name} (shape {:?})", t.shape);
        let dense = |p: &str| {
            if p == "weight" {
                matrix(t)
            } else {
                Ok(t.plus(0.0))
            }
        };
        let conv = |p: &str| {
            if p == "weight" {
                kernel(t)
            } else {
                Ok(t.plus(0.0))
            }
        };
        match parts.as_slice() {
            ["LabelEmbed", p] => put(&mut out, format!("mapping.embed.{p}"), dense(p)?),
            [m, p] if m.starts_with("Mapping") => put(
                &mut out,
                format!("mapping.fc{}.{p}", &m["Mapping".len()..]),
                dense(p)?,
            ),
            ["4x4", "Conv", p] => put(&mut out, format!("b4.conv.{p}"), conv(p)?),
            ["4x4", "Dense0", p] => put(&mut out, format!("b4.fc.{p}"), dense(p)?),
            ["Output", p] => put(&mut out, format!("b4.out.{p}"), dense(p)?),
            [scope, layer, p] => {
                let r = side(scope).ok_or_else(unexpected)?;
                let pt = match *layer {
                    "FromRGB" => "fromrgb",
                    "Conv0" => "conv0",
                    "Conv1_down" => "conv1",
                    "Skip" => "skip",
                    _ => return Err(unexpected()),
                };
                put(&mut out, format!("b{r}.{pt}.{p}"), conv(p)?);
            }
            _ => return Err(unexpected()),
        }
    }
    Ok((kwargs, out))
}

/// Import the pickle `file` (stylegan2-ada-pytorch's, or TF StyleGAN2's) into the new run
/// `out`, with its discriminator when it holds one (for `eval`'s D figures and to train on).
pub fn import(file: &Path, overrides: &[String], out: &Path) -> Result<Imported> {
    let map = map_file(file)?;
    let p = Pickle::parse(&map)
        .map_err(|e| Error::data(file, format!("is not a readable pickle: {e}")))?;
    let nets = read(&p, file)?;
    let (g_kwargs, d_kwargs) = (nets.g_kwargs.clone(), nets.d_kwargs.clone());
    let c = config_of(&g_kwargs, d_kwargs.as_ref(), file)?;
    let cfg = imported_config("stylegan2-ffhq1024", ModelConfig::Stylegan2(c), overrides)?;
    let ModelConfig::Stylegan2(c) = cfg.model.clone() else {
        return Err(Error::Config(
            "--set model.family: an NVlabs pickle builds a stylegan2 network".into(),
        ));
    };
    let device = Device::flex();
    let mut g = Generator::new(&c, &mut Rng::new(0), &device);
    let n = apply(&mut g, &nets.g, &G_KEYS, file)?;
    let d = match &nets.d {
        Some(dt) => {
            let mut d = Discriminator::new(&c, &mut Rng::new(1), &device);
            apply(&mut d, dt, &D_KEYS, file)?;
            Some(d)
        }
        None => None,
    };
    let sha = sha256(file)?;
    let source = serde_json::json!({
        "format": nets.format,
        "file": std::fs::canonicalize(file).unwrap_or(file.to_path_buf()).display().to_string(),
        "sha256": sha,
        "G": g_kwargs,
        "D": d_kwargs,
    });
    let has_d = d.is_some();
    write_gan_run(
        out,
        &cfg,
        source,
        models::Generator::Style2(g),
        d.map(models::Discriminator::Style2),
    )?;
    Ok(Imported {
        format: nets.format,
        tensors: n,
        discriminator: has_d,
        sha256: sha,
        config: c,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_both_ways() {
        for (native, nv, d) in [
            ("mapping.fc.3.weight", "mapping.fc3.weight", false),
            ("mapping.embed.bias", "mapping.embed.bias", false),
            ("mapping.w_avg", "mapping.w_avg", false),
            ("synthesis.blocks.0.constant", "synthesis.b4.const", false),
            (
                "synthesis.blocks.2.conv0.affine.weight",
                "synthesis.b16.conv0.affine.weight",
                false,
            ),
            (
                "synthesis.blocks.8.torgb.bias",
                "synthesis.b1024.torgb.bias",
                false,
            ),
            ("blocks.0.conv1.weight", "b8.conv1.weight", true),
            ("blocks.7.fromrgb.bias", "b1024.fromrgb.bias", true),
            ("epilogue.fc.weight", "b4.fc.weight", true),
            ("mapping.fc.7.bias", "mapping.fc7.bias", true),
        ] {
            assert_eq!(nvlabs_key(native, d), nv);
            assert_eq!(native_key(nv, d), native);
        }
    }

    /// Constructor arguments genforge does not build are refused by name, not ignored.
    #[test]
    fn unbuilt_arguments_are_errors() {
        let file = Path::new("net.pkl");
        let g = |synthesis: Value| {
            serde_json::json!({"z_dim": 8, "w_dim": 8, "img_resolution": 16, "img_channels": 3,
                "synthesis_kwargs": synthesis})
        };
        let ok = g(serde_json::json!({"channel_base": 128, "channel_max": 16}));
        assert_eq!(config_of(&ok, None, file).unwrap().channels_at(16), 8);
        for (synthesis, needle) in [
            (
                serde_json::json!({"use_noise": false}),
                "use_noise is False",
            ),
            (
                serde_json::json!({"architecture": "resnet"}),
                "architecture is \"resnet\"",
            ),
            (
                serde_json::json!({"fused_modconv_default": true}),
                "fused_modconv_default",
            ),
        ] {
            let e = config_of(&g(synthesis), None, file)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{e}");
        }
    }
}
