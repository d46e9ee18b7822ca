//! Model families. DCGAN and SAGAN share seed 001's convolutional backbone ([`dcgan`]); SAGAN
//! ([`sagan`]) adds spectral normalization and self-attention to it, exactly as the seed does.
//! ViTGAN ([`vitgan`]) is the transformer pair of seeds 000 and 003.

pub mod dcgan;
pub mod sagan;
pub mod vitgan;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::nn::diff_augment::Policy;
use crate::rng::Rng;
use crate::{Error, Result};

/// The generator of any family; the variant follows `model.family`.
// Only a handful exist per process (model, average, optimizer step), so boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Generator {
    Conv(dcgan::Generator),
    Vit(vitgan::Generator),
}

/// The discriminator of any family.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Discriminator {
    Conv(dcgan::Discriminator),
    Vit(vitgan::Discriminator),
}

impl Generator {
    pub fn new(cfg: &ModelConfig, rng: &mut Rng, device: &Device) -> Self {
        match cfg.family {
            Family::Dcgan | Family::Sagan => {
                Generator::Conv(dcgan::Generator::new(cfg, rng, device))
            }
            Family::Vitgan => Generator::Vit(vitgan::Generator::new(cfg, rng, device)),
        }
    }

    /// `[b, z_dim] -> [b, c, res, res]`
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        match self {
            Generator::Conv(g) => g.forward(z).images,
            Generator::Vit(g) => g.forward(z).images,
        }
    }

    pub fn device(&self) -> Device {
        match self {
            Generator::Conv(g) => g.blocks[0].conv.weight.val().device(),
            Generator::Vit(g) => g.device(),
        }
    }
}

impl Discriminator {
    pub fn new(cfg: &ModelConfig, rng: &mut Rng, device: &Device) -> Self {
        match cfg.family {
            Family::Dcgan | Family::Sagan => {
                Discriminator::Conv(dcgan::Discriminator::new(cfg, rng, device))
            }
            Family::Vitgan => Discriminator::Vit(vitgan::Discriminator::new(cfg, rng, device)),
        }
    }

    /// `[b, c, res, res] -> [b]` logits.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<1> {
        match self {
            Discriminator::Conv(d) => d.forward(x).logits,
            Discriminator::Vit(d) => d.forward(x).logits,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Dcgan,
    Sagan,
    Vitgan,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub family: Family,
    /// Latent size (seed: 20).
    pub z_dim: usize,
    /// Base channel width (the seed's `image_size` argument, 64): G's last hidden layer and D's
    /// first layer have this many channels, doubling towards 4x4.
    pub width: usize,
    /// Image channels: 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Output side, a power of two from 32 to 128.
    pub resolution: usize,
    /// SAGAN: resolutions of G's hidden layers followed by self-attention (seed: 16 and 32).
    pub g_attention: Vec<usize>,
    /// SAGAN: resolutions of D's layers followed by self-attention (seed: 8 and 4).
    pub d_attention: Vec<usize>,
    /// ViTGAN: patch side in pixels (seed: 4; D's overlapping patches are twice as wide).
    pub patch: usize,
    /// ViTGAN: transformer width of G and D, also the SIREN width and `w` size (seed: 384).
    pub hidden: usize,
    /// ViTGAN: transformer blocks in G and in D (seed: 4).
    pub depth: usize,
    /// ViTGAN: attention heads (seed: 4).
    pub heads: usize,
    /// ViTGAN: MLP expansion of the transformer blocks (seed: 4).
    pub mlp_ratio: usize,
    /// ViTGAN: layers of the `z -> w` mapping network (seed: 8).
    pub mapping_layers: usize,
    /// ViTGAN: SIREN hidden sine layers after the first (seed: 1).
    pub siren_layers: usize,
    /// ViTGAN: demodulate the SIREN's modulated weights (seed: off).
    pub demodulation: bool,
    /// ViTGAN: DiffAugment policy for D's inputs (seed: "color,translation,cutout").
    pub diffaugment: String,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            family: Family::Dcgan,
            z_dim: 20,
            width: 64,
            channels: 1,
            resolution: 64,
            g_attention: vec![16, 32],
            d_attention: vec![8, 4],
            patch: 4,
            hidden: 384,
            depth: 4,
            heads: 4,
            mlp_ratio: 4,
            mapping_layers: 8,
            siren_layers: 1,
            demodulation: false,
            diffaugment: "color,translation,cutout".into(),
        }
    }
}

impl ModelConfig {
    pub fn validate(&self) -> Result<()> {
        if self.family == Family::Vitgan {
            return self.validate_vitgan();
        }
        if ![32, 64, 128].contains(&self.resolution) {
            return Err(Error::Config(format!(
                "model.resolution must be 32, 64 or 128, got {}",
                self.resolution
            )));
        }
        if ![1, 3].contains(&self.channels) {
            return Err(Error::Config(format!(
                "model.channels must be 1 or 3, got {}",
                self.channels
            )));
        }
        if self.z_dim == 0 || self.width == 0 {
            return Err(Error::Config(
                "model.z_dim and model.width must be positive".into(),
            ));
        }
        if self.family == Family::Sagan {
            let g_res = dcgan::generator_resolutions(self.resolution);
            for r in &self.g_attention {
                if !g_res.contains(r) {
                    return Err(Error::Config(format!(
                        "model.g_attention: {r} is not a generator hidden resolution ({g_res:?})"
                    )));
                }
            }
            let d_res = dcgan::discriminator_resolutions(self.resolution);
            for r in &self.d_attention {
                if !d_res.contains(r) {
                    return Err(Error::Config(format!(
                        "model.d_attention: {r} is not a discriminator layer resolution ({d_res:?})"
                    )));
                }
            }
        }
        Ok(())
    }

    fn validate_vitgan(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(msg));
        if ![1, 3].contains(&self.channels) {
            return bad(format!(
                "model.channels must be 1 or 3, got {}",
                self.channels
            ));
        }
        if self.patch < 2
            || !self.patch.is_multiple_of(2)
            || !self.resolution.is_multiple_of(self.patch)
        {
            return bad(format!(
                "model.patch must be even and divide model.resolution ({}), got {}",
                self.resolution, self.patch
            ));
        }
        if self.z_dim == 0 || self.hidden == 0 || self.depth == 0 || self.mapping_layers == 0 {
            return bad("model.z_dim, hidden, depth and mapping_layers must be positive".into());
        }
        if self.heads == 0 || !self.hidden.is_multiple_of(self.heads) {
            return bad(format!(
                "model.hidden ({}) must be divisible by model.heads ({})",
                self.hidden, self.heads
            ));
        }
        if self.mlp_ratio == 0 {
            return bad("model.mlp_ratio must be positive".into());
        }
        Policy::parse(&self.diffaugment)?;
        Ok(())
    }
}
