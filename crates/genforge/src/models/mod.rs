//! Model families. DCGAN and SAGAN share seed 001's convolutional backbone ([`dcgan`]); SAGAN
//! ([`sagan`]) adds spectral normalization and self-attention to it, exactly as the seed does.
//! ViTGAN ([`vitgan`]) is the transformer pair of seeds 000 and 003. VQ-VAE-2 ([`vqvae2`]) and
//! its Gated PixelCNN prior ([`pixelcnn`]) follow seeds 002 and 004.

pub mod dcgan;
pub mod pixelcnn;
pub mod sagan;
pub mod vitgan;
pub mod vqvae2;

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
            Family::Vitgan => Generator::Vit(vitgan::Generator::new(cfg, rng, device)),
            _ => Generator::Conv(dcgan::Generator::new(cfg, rng, device)),
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
            Family::Vitgan => Discriminator::Vit(vitgan::Discriminator::new(cfg, rng, device)),
            _ => Discriminator::Conv(dcgan::Discriminator::new(cfg, rng, device)),
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
    /// Stage 1 of VQ-VAE-2: the hierarchical autoencoder.
    Vqvae2,
    /// Stage 2 of VQ-VAE-2: the top and bottom Gated PixelCNN priors over `encode`'s code maps.
    Pixelcnn,
}

impl Family {
    /// Families trained adversarially (a generator and a discriminator).
    pub fn is_gan(self) -> bool {
        matches!(self, Family::Dcgan | Family::Sagan | Family::Vitgan)
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub family: Family,
    /// Latent size (seed: 20).
    pub z_dim: usize,
    /// Base channel width. DCGAN/SAGAN: the seed's `image_size` argument (64), G's last hidden
    /// layer and D's first layer, doubling towards 4x4. VQ-VAE-2: encoder/decoder channels.
    /// PixelCNN: channels of every gated layer.
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
    /// ViTGAN: transformer blocks in G and in D (seed: 4). PixelCNN: gated layers (seed: 7).
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
    /// VQ-VAE-2: codes per codebook K (seed: 512). PixelCNN: set from the code maps.
    pub codebook_size: usize,
    /// VQ-VAE-2: code vector size D (seed: 64).
    pub code_dim: usize,
    /// VQ-VAE-2: image side / bottom code-map side, a power of two (seed: 32x32 bottom codes).
    pub bottom_stride: usize,
    /// VQ-VAE-2: bottom side / top side, a power of two (seed: 2, 16x16 top codes). PixelCNN:
    /// set from the code maps.
    pub top_stride: usize,
    /// VQ-VAE-2: residual blocks at the end of each encoder and start of each decoder.
    pub res_blocks: usize,
    /// VQ-VAE-2: hidden channels inside a residual block.
    pub res_channels: usize,
    /// VQ-VAE-2: commitment loss weight beta (seed: 0.25).
    pub commitment: f64,
    /// VQ-VAE-2: EMA decay of the codebook statistics (seed: 0.99).
    pub vq_decay: f64,
    /// VQ-VAE-2: Laplace smoothing epsilon of the cluster sizes (seed: 1e-5).
    pub vq_epsilon: f64,
    /// VQ-VAE-2: restart codes unused for this many steps from encoder outputs (0: never).
    pub dead_code_steps: usize,
    /// PixelCNN: condition the priors on the image class as well.
    pub class_conditional: bool,
    /// PixelCNN: number of classes when class-conditional.
    pub num_classes: usize,
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
            codebook_size: 512,
            code_dim: 64,
            bottom_stride: 4,
            top_stride: 2,
            res_blocks: 2,
            res_channels: 32,
            commitment: 0.25,
            vq_decay: 0.99,
            vq_epsilon: 1e-5,
            dead_code_steps: 100,
            class_conditional: false,
            num_classes: 10,
        }
    }
}

impl ModelConfig {
    pub fn validate(&self) -> Result<()> {
        match self.family {
            Family::Vitgan => return self.validate_vitgan(),
            Family::Vqvae2 => return self.validate_vqvae2(),
            Family::Pixelcnn => return self.validate_pixelcnn(),
            Family::Dcgan | Family::Sagan => {}
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

    fn validate_vqvae2(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(msg));
        if ![1, 3].contains(&self.channels) {
            return bad(format!(
                "model.channels must be 1 or 3, got {}",
                self.channels
            ));
        }
        for (k, v) in [
            ("model.bottom_stride", self.bottom_stride),
            ("model.top_stride", self.top_stride),
        ] {
            if v < 2 || !v.is_power_of_two() {
                return bad(format!("{k} must be a power of two >= 2, got {v}"));
            }
        }
        let total = self.bottom_stride * self.top_stride;
        if self.resolution == 0 || !self.resolution.is_multiple_of(total) {
            return bad(format!(
                "model.resolution ({}) must be a multiple of bottom_stride * top_stride ({total})",
                self.resolution
            ));
        }
        if self.width < 2 || self.code_dim == 0 || self.codebook_size < 2 || self.res_channels == 0
        {
            return bad(
                "model.width (>= 2), code_dim, codebook_size (>= 2) and res_channels must be \
                 positive"
                    .into(),
            );
        }
        if self.codebook_size > u16::MAX as usize + 1 {
            return bad(format!(
                "model.codebook_size must be at most 65536 (codes are stored as 16-bit), got {}",
                self.codebook_size
            ));
        }
        if !(0.0..1.0).contains(&self.vq_decay) {
            return bad(format!(
                "model.vq_decay must be in [0, 1), got {}",
                self.vq_decay
            ));
        }
        if !(self.vq_epsilon > 0.0 && self.commitment >= 0.0) {
            return bad("model.vq_epsilon must be > 0 and model.commitment >= 0".into());
        }
        Ok(())
    }

    fn validate_pixelcnn(&self) -> Result<()> {
        if self.width == 0 || self.depth == 0 {
            return Err(Error::Config(
                "model.width (channels) and model.depth (gated layers) must be positive".into(),
            ));
        }
        if self.class_conditional && self.num_classes < 2 {
            return Err(Error::Config(format!(
                "model.num_classes must be at least 2 for a class-conditional prior, got {}",
                self.num_classes
            )));
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
