//! NVlabs' TensorFlow Progressive GAN pickles (`karras2018iclr-celebahq-1024x1024.pkl` and the
//! other networks tkarras/progressive_growing_of_gans lists) as genforge `pggan` runs.
//! `(G, D, Gs)` are `tfutil.Network`s (state version 2) built by `G_paper` and `D_paper` of its
//! `networks.py`; `Gs` is imported as the generator. genforge's PGGAN holds every level, as the
//! TF networks do: `ToRGB_lod{n}` is `to_rgb[final - n]` and `FromRGB_lod{n}` is
//! `from_rgb[final - n]`. Layouts:
//!
//! - TF kernels are `[kh, kw, in, out]` and dense weights `[in, out]`: transposed.
//! - The fused up-convolution (`fused_scale=True`, the default) stores `[kh, kw, out, in]` and is
//!   TF's `conv2d_transpose` of the padded 4x4 kernel, which equals nearest upsampling and then
//!   a 3x3 conv with the kernel flipped in both spatial axes: transposed and flipped. Without
//!   fusing it is `Conv0`, a plain conv after the upsampling.
//! - D's fused down-convolution is conv then 2x2 average pooling, both before the bias and
//!   leaky ReLU, which is what genforge builds; the unfused D pools after the leaky ReLU and is
//!   refused.

use serde_json::json;

use super::tflib::{
    Converted, TfNetwork, check_discriminator, check_lod, convert, matrix, not_in_network, put,
    require, side, tf_kwargs, torch_layout, usize_arg,
};
use crate::models::pggan::PgganConfig;

const G_KNOWN: &[&str] = &[
    "num_channels",
    "resolution",
    "label_size",
    "fmap_base",
    "fmap_decay",
    "fmap_max",
    "latent_size",
    "normalize_latents",
    "use_wscale",
    "use_pixelnorm",
    "pixelnorm_epsilon",
    "use_leakyrelu",
    "fused_scale",
];

const D_KNOWN: &[&str] = &[
    "num_channels",
    "resolution",
    "label_size",
    "fmap_base",
    "fmap_decay",
    "fmap_max",
    "use_wscale",
    "mbstd_group_size",
    "fused_scale",
];

const IGNORED: &[&str] = &["dtype", "structure", "is_template_graph"];

/// The genforge config of `Gs` and `D`, or why genforge cannot build it.
pub fn config_of(gs: &TfNetwork, d: &TfNetwork) -> Result<PgganConfig, String> {
    tf_kwargs(gs, G_KNOWN, IGNORED)?;
    // The build functions ignore arguments they do not take (`**kwargs`): D may carry G's.
    let d_ignored: Vec<&str> = G_KNOWN.iter().chain(IGNORED).copied().collect();
    tf_kwargs(d, D_KNOWN, &d_ignored)?;
    for (key, want) in [
        ("label_size", json!(0)),
        ("fmap_decay", json!(1.0)),
        ("normalize_latents", json!(true)),
        ("use_wscale", json!(true)),
        ("use_pixelnorm", json!(true)),
        ("pixelnorm_epsilon", json!(1e-8)),
        ("use_leakyrelu", json!(true)),
    ] {
        require(gs, key, &want)?;
    }
    for (key, want) in [
        ("label_size", json!(0)),
        ("fmap_decay", json!(1.0)),
        ("use_wscale", json!(true)),
        ("fused_scale", json!(true)),
    ] {
        require(d, key, &want)?;
    }
    let g = |key, default| usize_arg(gs, key, default);
    let (base, max) = (g("fmap_base", 8192)?, g("fmap_max", 512)?);
    let cfg = PgganConfig {
        z_dim: g("latent_size", base.min(max))?,
        channels: g("num_channels", 1)?,
        resolution: g("resolution", 32)?,
        channel_base: base,
        channel_max: max,
        mbstd_group: usize_arg(d, "mbstd_group_size", 4)?,
    };
    let sizes = [
        cfg.channels,
        cfg.resolution,
        cfg.channel_base,
        cfg.channel_max,
    ];
    check_discriminator(d, sizes, cfg.mbstd_group)?;
    cfg.validate().map_err(|e| e.to_string())?;
    Ok(cfg)
}

/// `lod` as a level: `lod = final - level` (0 is the finished network).
fn level_of(lod: &str, prefix: &str, cfg: &PgganConfig) -> Option<usize> {
    let n: usize = lod.strip_prefix(prefix)?.parse().ok()?;
    cfg.final_level().checked_sub(n)
}

/// The block of a `RESxRES` scope: G's `blocks[l]` makes, and D's takes down, `8 * 2^l`.
fn block_of(scope: &str, cfg: &PgganConfig) -> Option<usize> {
    let r = side(scope).filter(|&r| r <= cfg.resolution)?;
    (r.trailing_zeros() as usize).checked_sub(3)
}

/// `Gs` (G_paper) as tensors of genforge's `pggan::Generator`.
pub fn generator(gs: &TfNetwork, cfg: &PgganConfig) -> Result<Converted, String> {
    convert("Gs", gs, |name, parts, t, out| {
        let unexpected = || not_in_network(t);
        match parts {
            ["lod"] => check_lod(name, t)?,
            ["4x4", "Dense", "weight"] => put(out, "dense.weight".into(), matrix(t)?),
            ["4x4", "Dense", "bias"] => put(out, "dense_bias".into(), t.plus(0.0)),
            ["4x4", "Conv", p] => put(out, format!("conv.{p}"), torch_layout(p, t)?),
            [rgb, p] if rgb.starts_with("ToRGB_lod") => {
                let l = level_of(rgb, "ToRGB_lod", cfg).ok_or_else(unexpected)?;
                put(out, format!("to_rgb.{l}.{p}"), torch_layout(p, t)?);
            }
            [scope, layer, p] => {
                let l = block_of(scope, cfg).ok_or_else(unexpected)?;
                let key = |c: &str| format!("blocks.{l}.{c}.{p}");
                match (*layer, *p) {
                    // [kh, kw, out, in] of a transposed conv: an ordinary, flipped kernel.
                    ("Conv0_up", "weight") if t.shape.len() == 4 => {
                        put(out, key("conv0"), t.flipped01().permuted(&[2, 3, 0, 1]))
                    }
                    ("Conv0_up" | "Conv0", _) => put(out, key("conv0"), torch_layout(p, t)?),
                    ("Conv1", _) => put(out, key("conv1"), torch_layout(p, t)?),
                    _ => return Err(unexpected()),
                }
            }
            _ => return Err(unexpected()),
        }
        Ok(())
    })
}

/// `D` (D_paper) as tensors of genforge's `pggan::Discriminator`.
pub fn discriminator(d: &TfNetwork, cfg: &PgganConfig) -> Result<Converted, String> {
    convert("D", d, |name, parts, t, out| {
        let unexpected = || not_in_network(t);
        match parts {
            ["lod"] => check_lod(name, t)?,
            ["4x4", "Conv", p] => put(out, format!("conv.{p}"), torch_layout(p, t)?),
            ["4x4", "Dense0", p] => put(out, format!("dense0.{p}"), torch_layout(p, t)?),
            ["4x4", "Dense1", p] => put(out, format!("dense1.{p}"), torch_layout(p, t)?),
            [rgb, p] if rgb.starts_with("FromRGB_lod") => {
                let l = level_of(rgb, "FromRGB_lod", cfg).ok_or_else(unexpected)?;
                put(out, format!("from_rgb.{l}.{p}"), torch_layout(p, t)?);
            }
            [scope, layer, p] => {
                let l = block_of(scope, cfg).ok_or_else(unexpected)?;
                let conv = match *layer {
                    "Conv0" => "conv0",
                    "Conv1_down" => "conv1",
                    _ => return Err(unexpected()),
                };
                put(out, format!("blocks.{l}.{conv}.{p}"), torch_layout(p, t)?);
            }
            _ => return Err(unexpected()),
        }
        Ok(())
    })
}
