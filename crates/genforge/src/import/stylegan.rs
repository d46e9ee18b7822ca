//! NVlabs' TensorFlow StyleGAN (2019) pickles (`karras2019stylegan-ffhq-1024x1024.pkl` and the
//! other networks NVlabs/stylegan lists) as genforge `stylegan` runs. `(G, D, Gs)` are
//! `dnnlib.tflib.network.Network`s (state version 3) built by `G_style` (with components
//! `mapping` and `synthesis`) and `D_basic` of `training/networks_stylegan.py`; `Gs` is imported
//! as the generator. Differences in layout, and how each is converted:
//!
//! - TF kernels are `[kh, kw, in, out]` and dense weights `[in, out]`: transposed.
//! - A fused up-convolution (`fused_scale`, from 128x128 up in the published networks) is TF's
//!   `conv2d_transpose` of the padded 4x4 kernel, which equals nearest upsampling and then a 3x3
//!   conv with the kernel flipped in both spatial axes: flipped. The fused down-convolution
//!   equals conv then 2x2 average pooling without a flip.
//! - TF's mapping and D dense layers fold the He gain `sqrt(2)` into the weight scale and add
//!   their bias unscaled before the leaky ReLU; genforge's (StyleGAN2's convention) multiply the
//!   activation by `sqrt(2)`. `sqrt 2 * lrelu(a + b / sqrt 2) = lrelu(sqrt 2 * a + b)`, so those
//!   biases are divided by `sqrt(2)`.
//! - `dlatent_avg` is the truncation centre `w_avg`. The constant noise maps `noise0..` (used
//!   only with `randomize_noise=False`) and the lower-resolution `ToRGB_lod*`/`FromRGB_lod*` of
//!   progressive growing (unused at `lod = 0`) are not kept.

use std::f32::consts::SQRT_2;

use serde_json::{Value, json};

use super::torch_pickle::Tensor;

use super::tflib::{
    Converted, TfNetwork, check_discriminator, check_lod, convert, kernel, not_in_network, put,
    require, side, tf_kwargs, torch_layout, usize_arg,
};
use crate::models::stylegan::{NoiseInputs, StyleganConfig, Synthesis};

/// `G_style`'s arguments (its own, `G_mapping`'s and `G_synthesis`'s, which it passes on) that
/// only steer training or the run-time graph.
const G_IGNORED: &[&str] = &[
    "truncation_psi",
    "truncation_cutoff",
    "truncation_psi_val",
    "truncation_cutoff_val",
    "style_mixing_prob",
    "is_training",
    "is_validation",
    "is_template_graph",
    "force_clean_graph",
    "randomize_noise",
    "dlatent_broadcast",
    "structure",
    "dtype",
];

/// Arguments genforge reads, or builds only at the value [`FIXED`] gives.
const G_KNOWN: &[&str] = &[
    "latent_size",
    "label_size",
    "dlatent_size",
    "mapping_layers",
    "mapping_fmaps",
    "mapping_lrmul",
    "mapping_nonlinearity",
    "normalize_latents",
    "num_channels",
    "resolution",
    "fmap_base",
    "fmap_decay",
    "fmap_max",
    "use_styles",
    "const_input_layer",
    "use_noise",
    "nonlinearity",
    "use_wscale",
    "use_pixel_norm",
    "use_instance_norm",
    "fused_scale",
    "blur_filter",
    "dlatent_avg_beta",
];

const D_KNOWN: &[&str] = &[
    "num_channels",
    "resolution",
    "label_size",
    "fmap_base",
    "fmap_decay",
    "fmap_max",
    "nonlinearity",
    "use_wscale",
    "mbstd_group_size",
    "mbstd_num_features",
    "fused_scale",
    "blur_filter",
];

/// Arguments with the one value genforge's StyleGAN builds (each the official default).
fn fixed() -> [(&'static str, Value); 14] {
    [
        ("label_size", json!(0)),
        ("mapping_lrmul", json!(0.01)),
        ("mapping_nonlinearity", json!("lrelu")),
        ("normalize_latents", json!(true)),
        ("fmap_decay", json!(1.0)),
        ("use_styles", json!(true)),
        ("const_input_layer", json!(true)),
        ("use_noise", json!(true)),
        ("nonlinearity", json!("lrelu")),
        ("use_wscale", json!(true)),
        ("use_pixel_norm", json!(false)),
        ("use_instance_norm", json!(true)),
        ("blur_filter", json!([1, 2, 1])),
        ("mbstd_num_features", json!(1)),
    ]
}

/// Whether `G_style`'s up-convolution into a `side` x `side` map is fused.
fn fused_up(gs: &TfNetwork, side: usize) -> bool {
    match gs.static_kwargs.get("fused_scale") {
        Some(Value::Bool(b)) => *b,
        // 'auto' (the default): fused when the output is at least 128x128.
        _ => side >= 128,
    }
}

/// The genforge config of `Gs` and `D`, or why genforge cannot build it.
pub fn config_of(gs: &TfNetwork, d: &TfNetwork) -> Result<StyleganConfig, String> {
    tf_kwargs(gs, G_KNOWN, G_IGNORED)?;
    // The build functions ignore arguments they do not take (`**_kwargs`): D may carry G's.
    let d_ignored: Vec<&str> = G_KNOWN.iter().chain(G_IGNORED).copied().collect();
    tf_kwargs(d, D_KNOWN, &d_ignored)?;
    for (key, want) in fixed() {
        require(gs, key, &want)?;
        require(d, key, &want)?;
    }
    let g = |key, default| usize_arg(gs, key, default);
    let cfg = StyleganConfig {
        z_dim: g("latent_size", 512)?,
        w_dim: g("dlatent_size", 512)?,
        mapping_layers: g("mapping_layers", 8)?,
        channels: g("num_channels", 3)?,
        resolution: g("resolution", 1024)?,
        channel_base: g("fmap_base", 8192)?,
        channel_max: g("fmap_max", 512)?,
        w_avg_decay: gs
            .static_kwargs
            .get("dlatent_avg_beta")
            .and_then(Value::as_f64)
            .unwrap_or(0.995),
        mbstd_group: usize_arg(d, "mbstd_group_size", 4)?,
        diffaugment: String::new(),
        synthesis: Synthesis::AdaIn,
        noise: NoiseInputs::All,
    };
    if g("mapping_fmaps", 512)? != cfg.w_dim {
        return Err(
            "mapping_fmaps differs from dlatent_size, which genforge does not build".into(),
        );
    }
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

/// A dense layer whose He gain genforge applies after the activation: its bias over sqrt 2.
fn gain_after(leaf: &str, t: &Tensor) -> Result<Tensor, String> {
    if leaf == "bias" {
        Ok(t.scaled(1.0 / SQRT_2))
    } else {
        torch_layout(leaf, t)
    }
}

/// `Gs` (G_style) as tensors of genforge's `stylegan::Generator`.
pub fn generator(gs: &TfNetwork, cfg: &StyleganConfig) -> Result<Converted, String> {
    let top = cfg.resolution.trailing_zeros() as usize - 2; // the lod of ToRGB_lod0's level
    convert("Gs", gs, |name, parts, t, out| {
        let unexpected = || not_in_network(t);
        match parts {
            ["lod"] | ["synthesis", "lod"] => check_lod(name, t)?,
            ["dlatent_avg"] => put(out, "w_avg".into(), t.plus(0.0)),
            ["mapping", layer, p] if layer.starts_with("Dense") => {
                let i: usize = layer["Dense".len()..].parse().map_err(|_| unexpected())?;
                put(out, format!("mapping.layers.{i}.{p}"), gain_after(p, t)?);
            }
            ["synthesis", noise] if noise.starts_with("noise") => {}
            ["synthesis", rgb, _] if rgb.starts_with("ToRGB_lod") => {
                let lod: usize = rgb["ToRGB_lod".len()..].parse().map_err(|_| unexpected())?;
                if lod == 0 {
                    let leaf = parts[2];
                    put(out, format!("to_rgb.{leaf}"), torch_layout(leaf, t)?);
                } else if lod > top {
                    return Err(unexpected());
                }
            }
            ["synthesis", "4x4", "Const", "const"] => put(out, "constant".into(), t.plus(0.0)),
            ["synthesis", scope, layer, rest @ ..] => {
                let r = side(scope)
                    .filter(|&r| r <= cfg.resolution)
                    .ok_or_else(unexpected)?;
                let i = match (r, *layer) {
                    (4, "Const") => 0,
                    (4, "Conv") => 1,
                    (_, "Conv0_up") => 2 * r.trailing_zeros() as usize - 4,
                    (_, "Conv1") => 2 * r.trailing_zeros() as usize - 3,
                    _ => return Err(unexpected()),
                };
                let key = |leaf: &str| format!("layers.{i}.{leaf}");
                match rest {
                    ["weight"] if *layer == "Conv0_up" && fused_up(gs, r) => {
                        put(out, key("conv.weight"), kernel(&t.flipped01())?)
                    }
                    ["weight"] => put(out, key("conv.weight"), kernel(t)?),
                    ["bias"] => put(out, key("bias"), t.plus(0.0)),
                    ["Noise", "weight"] => put(out, key("noise.strength"), t.plus(0.0)),
                    ["StyleMod", p] => {
                        put(out, key(&format!("adain.affine.{p}")), torch_layout(p, t)?)
                    }
                    _ => return Err(unexpected()),
                }
            }
            _ => return Err(unexpected()),
        }
        Ok(())
    })
}

/// `D` (D_basic) as tensors of genforge's `stylegan::Discriminator`.
pub fn discriminator(d: &TfNetwork, cfg: &StyleganConfig) -> Result<Converted, String> {
    let top = cfg.resolution.trailing_zeros() as usize;
    convert("D", d, |name, parts, t, out| {
        let unexpected = || not_in_network(t);
        match parts {
            ["lod"] => check_lod(name, t)?,
            [rgb, p] if rgb.starts_with("FromRGB_lod") => {
                let lod: usize = rgb["FromRGB_lod".len()..]
                    .parse()
                    .map_err(|_| unexpected())?;
                if lod == 0 {
                    put(out, format!("from_rgb.{p}"), torch_layout(p, t)?);
                } else if lod > top - 2 {
                    return Err(unexpected());
                }
            }
            ["4x4", "Conv", p] => put(out, format!("conv.{p}"), torch_layout(p, t)?),
            ["4x4", "Dense0", p] => put(out, format!("dense0.{p}"), gain_after(p, t)?),
            ["4x4", "Dense1", p] => put(out, format!("dense1.{p}"), torch_layout(p, t)?),
            [scope, layer, p] => {
                let r = side(scope)
                    .filter(|&r| r <= cfg.resolution)
                    .ok_or_else(unexpected)?;
                // blocks[0] is the full resolution.
                let j = top
                    .checked_sub(r.trailing_zeros() as usize)
                    .ok_or_else(unexpected)?;
                let conv = match *layer {
                    "Conv0" => "conv0",
                    "Conv1_down" => "conv1",
                    _ => return Err(unexpected()),
                };
                put(out, format!("blocks.{j}.{conv}.{p}"), torch_layout(p, t)?);
            }
            _ => return Err(unexpected()),
        }
        Ok(())
    })
}
