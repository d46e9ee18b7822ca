//! Model families, one module each. A family owns its config (keys, defaults, `validate`) and
//! its networks; [`ModelConfig`] is the tagged union of the family configs (`model.family`
//! picks one), and the matches below are the only places a run is built from a family.
//!
//! DCGAN ([`dcgan`]) and SAGAN ([`sagan`]) share the convolutional backbone of "DCGAN and SAGAN
//! step by step"; ViTGAN ([`vitgan`]) is the transformer pair of the ViTGAN paper; StyleGAN
//! ([`stylegan`]) the style-based generator of Karras et al. 2019; BigGAN ([`biggan`]) the
//! class-conditional network of Brock et al. 2019; Progressive GAN ([`pggan`]) the growing
//! networks of Karras et al. 2018; VQ-VAE-2 ([`vqvae2`]) and its
//! Gated PixelCNN prior ([`pixelcnn`]) the two-stage model of Razavi et al. 2019.

pub mod biggan;
pub mod dcgan;
pub mod growth;
pub mod pggan;
pub mod pixelcnn;
pub mod sagan;
pub mod stylegan;
pub mod stylegan2;
pub mod vitgan;
pub mod vqvae2;

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::nn::diff_augment::Policy;
use crate::rng::Rng;
use crate::{Error, Result};

/// Adversarial loss pair (discriminator, generator).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LossKind {
    /// BCE-with-logits for D, non-saturating `-log D(G(z))` for G (DCGAN).
    Bce,
    /// Hinge loss for D, `-D(G(z))` for G (SAGAN).
    Hinge,
    /// Wasserstein loss with gradient penalty (`train.gp_lambda`) and drift term
    /// (`train.wgan_drift`) for D, `-D(G(z))` for G (Progressive GAN).
    #[serde(rename = "wgan-gp")]
    WganGp,
}

impl LossKind {
    /// The name `train.loss` takes.
    pub fn name(self) -> &'static str {
        match self {
            LossKind::Bce => "bce",
            LossKind::Hinge => "hinge",
            LossKind::WganGp => "wgan-gp",
        }
    }
}

/// Class labels of a batch, `[b]`; `None` for unconditional families.
pub type Labels = Option<Tensor<1, Int>>;

/// The `[model]` table: `family` selects the variant, the other keys are that family's.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum ModelConfig {
    Dcgan(dcgan::DcganConfig),
    Sagan(sagan::SaganConfig),
    Vitgan(vitgan::VitganConfig),
    Stylegan(stylegan::StyleganConfig),
    /// StyleGAN2 as NVlabs' stylegan2-ada-pytorch builds it.
    Stylegan2(stylegan2::Stylegan2Config),
    Biggan(biggan::BigganConfig),
    Pggan(pggan::PgganConfig),
    /// Stage 1 of VQ-VAE-2: the hierarchical autoencoder.
    Vqvae2(vqvae2::Vqvae2Config),
    /// Stage 2 of VQ-VAE-2: the top and bottom Gated PixelCNN priors over `encode`'s code maps.
    Pixelcnn(pixelcnn::PixelcnnConfig),
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig::Dcgan(Default::default())
    }
}

/// How a family is trained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A generator and a discriminator ([`crate::train::gan`]).
    Gan,
    /// VQ-VAE-2's autoencoder ([`crate::train::autoencoder`]).
    Autoencoder,
    /// Priors over code maps ([`crate::train::prior`]).
    Prior,
}

impl ModelConfig {
    /// The `model.family` name.
    pub fn family(&self) -> &'static str {
        match self {
            ModelConfig::Dcgan(_) => "dcgan",
            ModelConfig::Sagan(_) => "sagan",
            ModelConfig::Vitgan(_) => "vitgan",
            ModelConfig::Stylegan(_) => "stylegan",
            ModelConfig::Stylegan2(_) => "stylegan2",
            ModelConfig::Biggan(_) => "biggan",
            ModelConfig::Pggan(_) => "pggan",
            ModelConfig::Vqvae2(_) => "vqvae2",
            ModelConfig::Pixelcnn(_) => "pixelcnn",
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            ModelConfig::Dcgan(_)
            | ModelConfig::Sagan(_)
            | ModelConfig::Vitgan(_)
            | ModelConfig::Stylegan(_)
            | ModelConfig::Stylegan2(_)
            | ModelConfig::Biggan(_)
            | ModelConfig::Pggan(_) => Kind::Gan,
            ModelConfig::Vqvae2(_) => Kind::Autoencoder,
            ModelConfig::Pixelcnn(_) => Kind::Prior,
        }
    }

    pub fn validate(&self) -> Result<()> {
        match self {
            ModelConfig::Dcgan(c) => c.validate(),
            ModelConfig::Sagan(c) => c.validate(),
            ModelConfig::Vitgan(c) => c.validate(),
            ModelConfig::Stylegan(c) => c.validate(),
            ModelConfig::Stylegan2(c) => c.validate(),
            ModelConfig::Biggan(c) => c.validate(),
            ModelConfig::Pggan(c) => c.validate(),
            ModelConfig::Vqvae2(c) => c.validate(),
            ModelConfig::Pixelcnn(c) => c.validate(),
        }
    }

    /// `(channels, resolution)` of the images the family reads or makes; `None` for the prior,
    /// which reads code maps.
    pub fn image_shape(&self) -> Option<(usize, usize)> {
        match self {
            ModelConfig::Dcgan(c) => Some((c.channels, c.resolution)),
            ModelConfig::Sagan(c) => Some((c.channels, c.resolution)),
            ModelConfig::Vitgan(c) => Some((c.channels, c.resolution)),
            ModelConfig::Stylegan(c) => Some((c.channels, c.resolution)),
            ModelConfig::Stylegan2(c) => Some((c.channels, c.resolution)),
            ModelConfig::Biggan(c) => Some((c.channels, c.resolution)),
            ModelConfig::Pggan(c) => Some((c.channels, c.resolution)),
            ModelConfig::Vqvae2(c) => Some((c.channels, c.resolution)),
            ModelConfig::Pixelcnn(_) => None,
        }
    }

    /// Latent size of an adversarial family's `z`.
    pub fn z_dim(&self) -> Option<usize> {
        match self {
            ModelConfig::Dcgan(c) => Some(c.z_dim),
            ModelConfig::Sagan(c) => Some(c.z_dim),
            ModelConfig::Vitgan(c) => Some(c.z_dim),
            ModelConfig::Stylegan(c) => Some(c.z_dim),
            ModelConfig::Stylegan2(c) => Some(c.z_dim),
            ModelConfig::Biggan(c) => Some(c.z_dim),
            ModelConfig::Pggan(c) => Some(c.z_dim),
            ModelConfig::Vqvae2(_) | ModelConfig::Pixelcnn(_) => None,
        }
    }

    /// Classes G and D are conditioned on (BigGAN); `None` for unconditional families.
    pub fn num_classes(&self) -> Option<usize> {
        match self {
            ModelConfig::Biggan(c) => Some(c.num_classes),
            ModelConfig::Stylegan2(c) => (c.num_classes > 0).then_some(c.num_classes),
            ModelConfig::Dcgan(_)
            | ModelConfig::Sagan(_)
            | ModelConfig::Vitgan(_)
            | ModelConfig::Stylegan(_)
            | ModelConfig::Pggan(_)
            | ModelConfig::Vqvae2(_)
            | ModelConfig::Pixelcnn(_) => None,
        }
    }

    /// Whether G and D take class labels.
    pub fn is_conditional(&self) -> bool {
        self.num_classes().is_some()
    }

    /// G and D of an adversarial family, G's weights drawn first from `rng`; `growing` adds the
    /// lower resolutions' toRGB / fromRGB layers a family needs to grow progressively (Progressive
    /// GAN always has them).
    pub fn init_gan(
        &self,
        growing: bool,
        rng: &mut Rng,
        device: &Device,
    ) -> Option<(Generator, Discriminator)> {
        Some(match self {
            ModelConfig::Dcgan(c) => conv_pair(&c.backbone(), rng, device),
            ModelConfig::Sagan(c) => conv_pair(&c.backbone(), rng, device),
            ModelConfig::Vitgan(c) => {
                let g = vitgan::Generator::new(c, rng, device);
                let d = match c.discriminator {
                    vitgan::DiscriminatorKind::Vit => {
                        Discriminator::Vit(vitgan::Discriminator::new(c, rng, device))
                    }
                    vitgan::DiscriminatorKind::Stylegan2 => Discriminator::Style2(
                        stylegan2::Discriminator::new(&c.stylegan2_d(), rng, device),
                    ),
                };
                (Generator::Vit(g), d)
            }
            ModelConfig::Stylegan(c) => {
                let mut g = stylegan::Generator::new(c, rng, device);
                let mut d = stylegan::Discriminator::new(c, rng, device);
                if growing {
                    g = g.growable(c, rng);
                    d = d.growable(c, rng);
                }
                (Generator::Style(g), Discriminator::Style(d))
            }
            ModelConfig::Stylegan2(c) => {
                let g = stylegan2::Generator::new(c, rng, device);
                let d = stylegan2::Discriminator::new(c, rng, device);
                (Generator::Style2(g), Discriminator::Style2(d))
            }
            ModelConfig::Biggan(c) => {
                let g = biggan::Generator::new(c, rng, device);
                let d = biggan::Discriminator::new(c, rng, device);
                (Generator::Big(g), Discriminator::Big(d))
            }
            ModelConfig::Pggan(c) => {
                let g = pggan::Generator::new(c, rng, device);
                let d = pggan::Discriminator::new(c, rng, device);
                (Generator::Pg(g), Discriminator::Pg(d))
            }
            ModelConfig::Vqvae2(_) | ModelConfig::Pixelcnn(_) => return None,
        })
    }

    /// An error when the family's paper does not train with `loss`: ViTGAN uses the
    /// non-saturating logistic loss; the StyleGAN paper trained FFHQ with it (and R1) and
    /// CelebA-HQ with WGAN-GP.
    pub fn check_loss(&self, loss: LossKind) -> Result<()> {
        let allowed: &[(LossKind, &str)] = match self {
            ModelConfig::Vitgan(_) => {
                &[(LossKind::Bce, "\"bce\" (its non-saturating logistic loss)")]
            }
            ModelConfig::Stylegan(_) => &[
                (LossKind::Bce, "\"bce\" (non-saturating logistic, with R1)"),
                (LossKind::WganGp, "\"wgan-gp\""),
            ],
            ModelConfig::Stylegan2(_) => &[(
                LossKind::Bce,
                "\"bce\" (non-saturating logistic, with R1, as NVlabs' StyleGAN2Loss)",
            )],
            ModelConfig::Dcgan(_)
            | ModelConfig::Sagan(_)
            | ModelConfig::Biggan(_)
            | ModelConfig::Pggan(_)
            | ModelConfig::Vqvae2(_)
            | ModelConfig::Pixelcnn(_) => return Ok(()),
        };
        if allowed.iter().any(|(k, _)| *k == loss) {
            return Ok(());
        }
        let names: Vec<&str> = allowed.iter().map(|(_, n)| *n).collect();
        Err(Error::Config(format!(
            "train.loss must be {} for {}, got \"{}\"",
            names.join(" or "),
            self.family(),
            loss.name()
        )))
    }

    /// DiffAugment policy applied to D's inputs (ViTGAN, optionally StyleGAN; identity for the
    /// others).
    pub fn diffaugment(&self) -> Policy {
        match self {
            ModelConfig::Vitgan(c) => Policy::parse(&c.diffaugment).unwrap_or_default(),
            ModelConfig::Stylegan(c) => Policy::parse(&c.diffaugment).unwrap_or_default(),
            ModelConfig::Stylegan2(c) => Policy::parse(&c.diffaugment).unwrap_or_default(),
            ModelConfig::Dcgan(_)
            | ModelConfig::Sagan(_)
            | ModelConfig::Biggan(_)
            | ModelConfig::Pggan(_)
            | ModelConfig::Vqvae2(_)
            | ModelConfig::Pixelcnn(_) => Policy::default(),
        }
    }

    /// Weight of the adversarial D loss: ViTGAN's reference code averages its real and fake
    /// terms (`0.5 BCE(real) + 0.5 BCE(fake)`); the others add them.
    pub fn d_adversarial_weight(&self) -> f64 {
        match self {
            ModelConfig::Vitgan(_) => 0.5,
            ModelConfig::Dcgan(_)
            | ModelConfig::Sagan(_)
            | ModelConfig::Stylegan(_)
            | ModelConfig::Stylegan2(_)
            | ModelConfig::Biggan(_)
            | ModelConfig::Pggan(_)
            | ModelConfig::Vqvae2(_)
            | ModelConfig::Pixelcnn(_) => 1.0,
        }
    }

    /// Whether G carries BatchNorm statistics (DCGAN, SAGAN, BigGAN): its training-mode
    /// forward is part of the D step.
    pub fn has_batchnorm(&self) -> bool {
        match self {
            ModelConfig::Dcgan(_) | ModelConfig::Sagan(_) | ModelConfig::Biggan(_) => true,
            ModelConfig::Vitgan(_)
            | ModelConfig::Stylegan(_)
            | ModelConfig::Stylegan2(_)
            | ModelConfig::Pggan(_)
            | ModelConfig::Vqvae2(_)
            | ModelConfig::Pixelcnn(_) => false,
        }
    }

    /// Whether a G weight average can be kept: not for DCGAN and SAGAN, whose articles keep
    /// none; BigGAN's averages its batch-norm statistics with the weights, as BigGAN-PyTorch.
    pub fn supports_ema(&self) -> bool {
        match self {
            ModelConfig::Vitgan(_)
            | ModelConfig::Stylegan(_)
            | ModelConfig::Stylegan2(_)
            | ModelConfig::Biggan(_)
            | ModelConfig::Pggan(_) => true,
            ModelConfig::Dcgan(_)
            | ModelConfig::Sagan(_)
            | ModelConfig::Vqvae2(_)
            | ModelConfig::Pixelcnn(_) => false,
        }
    }

    /// Whether the family can grow progressively (`train.progressive`).
    pub fn supports_growth(&self) -> bool {
        match self {
            ModelConfig::Pggan(_) | ModelConfig::Stylegan(_) => true,
            ModelConfig::Dcgan(_)
            | ModelConfig::Sagan(_)
            | ModelConfig::Vitgan(_)
            | ModelConfig::Stylegan2(_)
            | ModelConfig::Biggan(_)
            | ModelConfig::Vqvae2(_)
            | ModelConfig::Pixelcnn(_) => false,
        }
    }

    /// Why `sample.z_var` (the variance of the latents drawn at sampling) cannot change this
    /// family's images, or `None` where its generator takes `z` as drawn. StyleGAN's, StyleGAN2's
    /// and Progressive GAN's generators normalize `z` first, and ViTGAN's reaches its blocks only
    /// through the mapping network's normalization unless `model.latent_tokens` adds it to the
    /// input tokens.
    pub fn z_var_unused(&self) -> Option<&'static str> {
        match self {
            ModelConfig::Dcgan(_) | ModelConfig::Sagan(_) | ModelConfig::Biggan(_) => None,
            ModelConfig::Vitgan(c) if c.latent_tokens => None,
            ModelConfig::Vitgan(_) => Some(
                "without model.latent_tokens ViTGAN's generator normalizes z (its mapping network)",
            ),
            ModelConfig::Stylegan(_) | ModelConfig::Stylegan2(_) => {
                Some("StyleGAN normalizes z; its truncation is sample.psi")
            }
            ModelConfig::Pggan(_) => Some("Progressive GAN's generator normalizes z"),
            ModelConfig::Vqvae2(_) | ModelConfig::Pixelcnn(_) => Some("VQ-VAE-2 draws no z"),
        }
    }

    pub fn as_biggan(&self) -> Option<&biggan::BigganConfig> {
        match self {
            ModelConfig::Biggan(c) => Some(c),
            _ => None,
        }
    }

    pub fn as_vitgan(&self) -> Option<&vitgan::VitganConfig> {
        match self {
            ModelConfig::Vitgan(c) => Some(c),
            _ => None,
        }
    }

    pub fn as_stylegan(&self) -> Option<&stylegan::StyleganConfig> {
        match self {
            ModelConfig::Stylegan(c) => Some(c),
            _ => None,
        }
    }

    pub fn as_stylegan2(&self) -> Option<&stylegan2::Stylegan2Config> {
        match self {
            ModelConfig::Stylegan2(c) => Some(c),
            _ => None,
        }
    }

    pub fn as_vqvae2(&self) -> Option<&vqvae2::Vqvae2Config> {
        match self {
            ModelConfig::Vqvae2(c) => Some(c),
            _ => None,
        }
    }

    pub fn as_pixelcnn(&self) -> Option<&pixelcnn::PixelcnnConfig> {
        match self {
            ModelConfig::Pixelcnn(c) => Some(c),
            _ => None,
        }
    }

    /// An error naming the run when its family is not `want`.
    pub fn require_family(&self, want: &str, run: &std::path::Path) -> Result<()> {
        if self.family() == want {
            Ok(())
        } else {
            Err(Error::run(
                run,
                format!("is a {} run, not a {want} run", self.family()),
            ))
        }
    }
}

/// The generator of any adversarial family.
// Only a handful exist per process (model, average, optimizer step), so boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Generator {
    Conv(dcgan::Generator),
    Vit(vitgan::Generator),
    Style(stylegan::Generator),
    Style2(stylegan2::Generator),
    Big(biggan::Generator),
    Pg(pggan::Generator),
}

/// The discriminator of any adversarial family.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Discriminator {
    Conv(dcgan::Discriminator),
    Vit(vitgan::Discriminator),
    Style(stylegan::Discriminator),
    Style2(stylegan2::Discriminator),
    Big(biggan::Discriminator),
    Pg(pggan::Discriminator),
}

/// BigGAN's labels, or the classes in turn (`i % classes`) when none are given.
fn labels_or_cycle(c: Labels, b: usize, classes: usize, device: &Device) -> Tensor<1, Int> {
    c.unwrap_or_else(|| {
        let v: Vec<i64> = (0..b).map(|i| (i % classes) as i64).collect();
        Tensor::from_data(burn::tensor::TensorData::new(v, [b]), device)
    })
}

/// StyleGAN2's one-hot classes: the labels given, or the classes in turn; `None` when
/// unconditional.
fn style2_classes(c: Labels, classes: usize, b: usize, device: &Device) -> Option<Tensor<2>> {
    (classes > 0).then(|| {
        labels_or_cycle(c, b, classes, device)
            .one_hot::<2>(classes)
            .float()
    })
}

impl Generator {
    /// The family's own term in G's loss: BigGAN's orthogonal regularization with strength
    /// `ortho_beta` (none at 0).
    pub fn penalty(&self, ortho_beta: f64) -> Option<Tensor<1>> {
        match self {
            Generator::Big(g) if ortho_beta > 0.0 => Some(g.orthogonal_penalty(ortho_beta)),
            Generator::Big(_)
            | Generator::Conv(_)
            | Generator::Vit(_)
            | Generator::Style(_)
            | Generator::Style2(_)
            | Generator::Pg(_) => None,
        }
    }

    /// After a G step: StyleGAN folds the batch mean of `w` into `w_avg` with its decay.
    pub fn track_w_avg(self, w_mean: Tensor<1>, model: &ModelConfig) -> Generator {
        match (self, model) {
            (Generator::Style(s), ModelConfig::Stylegan(cfg)) => {
                Generator::Style(s.track_w_avg(w_mean, cfg.w_avg_decay))
            }
            (Generator::Style2(s), ModelConfig::Stylegan2(cfg)) => {
                Generator::Style2(s.track_w_avg(w_mean, cfg.w_avg_beta))
            }
            (g, _) => g,
        }
    }

    /// `avg` (a weight average of this generator) with the buffers that are copied rather than
    /// averaged: StyleGAN's `w_avg`, as the official code's G_ema takes it from G.
    pub fn copy_buffers_into(&self, avg: Generator) -> Generator {
        match (avg, self) {
            (Generator::Style(mut a), Generator::Style(s)) => {
                let w = s.w_avg.val().without_autodiff().detach();
                a.w_avg = a.w_avg.map(|old| w.to_device(&old.device()));
                Generator::Style(a)
            }
            (Generator::Style2(mut a), Generator::Style2(s)) => {
                let w = s.w_avg().without_autodiff().detach();
                a.mapping.w_avg = a
                    .mapping
                    .w_avg
                    .map(|old| old.map(|o| w.to_device(&o.device())));
                Generator::Style2(a)
            }
            (avg, _) => avg,
        }
    }

    /// `[b, z_dim], c -> [b, c, res, res]` in inference form (StyleGAN: no mixing, random
    /// noise from `Tensor::random`, no truncation).
    /// BigGAN without labels draws the classes in turn.
    pub fn forward(&self, z: Tensor<2>, c: Labels) -> Tensor<4> {
        match self {
            Generator::Conv(g) => g.forward(z).images,
            Generator::Vit(g) => g.forward(z).images,
            Generator::Style(g) => g.generate(z, 1.0, None, &mut Rng::new(0)),
            Generator::Style2(g) => {
                let c = style2_classes(c, g.num_classes, z.dims()[0], &z.device());
                let ws = g.mapping_ws(z, c, 1.0, None);
                g.synthesis(&ws, stylegan::Noise::Random(&mut Rng::new(0)))
            }
            Generator::Big(g) => {
                let classes = g.num_classes();
                let y = labels_or_cycle(c, z.dims()[0], classes, &z.device());
                g.forward(z, y)
            }
            Generator::Pg(g) => g.forward(z),
        }
    }

    /// The training-time forward: StyleGAN mixes styles with probability `mixing_prob` and draws
    /// noise from `rng`; returns the
    /// images and, for StyleGAN, the batch mean of `w` (for `w_avg`).
    pub fn forward_train(
        &self,
        z: Tensor<2>,
        c: Labels,
        mixing_prob: f64,
        rng: &mut Rng,
    ) -> (Tensor<4>, Option<Tensor<1>>) {
        match self {
            Generator::Big(_) => (self.forward(z, c), None),
            Generator::Pg(g) => (g.forward_level(z), None),
            Generator::Conv(g) => (g.forward(z).images, None),
            Generator::Vit(g) => (g.forward(z).images, None),
            Generator::Style(g) => {
                let (img, w_mean) = g.forward_train(z, mixing_prob, rng);
                (img, Some(w_mean))
            }
            Generator::Style2(g) => {
                let c = style2_classes(c, g.num_classes, z.dims()[0], &z.device());
                let (img, w_mean) = g.forward_train(z, c, mixing_prob, rng);
                (img, Some(w_mean))
            }
        }
    }

    pub fn device(&self) -> Device {
        match self {
            Generator::Conv(g) => g.blocks[0].conv.weight.val().device(),
            Generator::Vit(g) => g.device(),
            Generator::Style(g) => g.device(),
            Generator::Style2(g) => g.device(),
            Generator::Big(g) => g.device(),
            Generator::Pg(g) => g.device(),
        }
    }

    /// Set the level of a growing generator (others have one resolution and ignore it).
    pub fn set_level(&mut self, level: pggan::Level) {
        match self {
            Generator::Pg(g) => g.set_level(level),
            Generator::Style(g) => g.set_level(level),
            Generator::Conv(_) | Generator::Vit(_) | Generator::Style2(_) | Generator::Big(_) => {}
        }
    }
}

impl Discriminator {
    /// `[b, c, res, res], c -> [b]` logits.
    /// BigGAN without labels scores the classes in turn.
    pub fn forward(&self, x: Tensor<4>, c: Labels) -> Tensor<1> {
        match self {
            Discriminator::Conv(d) => d.forward(x).logits,
            Discriminator::Vit(d) => d.forward(x).logits,
            Discriminator::Style(d) => d.forward(x),
            Discriminator::Style2(d) => {
                let c = style2_classes(c, d.num_classes(), x.dims()[0], &x.device());
                d.forward(x, c)
            }
            Discriminator::Big(d) => {
                let classes = d.embed.weight.dims()[0];
                let y = labels_or_cycle(c, x.dims()[0], classes, &x.device());
                d.forward(x, y)
            }
            Discriminator::Pg(d) => d.forward(x),
        }
    }

    /// Set the level of a growing discriminator (others ignore it).
    pub fn set_level(&mut self, level: pggan::Level) {
        match self {
            Discriminator::Pg(d) => d.set_level(level),
            Discriminator::Style(d) => d.set_level(level),
            Discriminator::Conv(_)
            | Discriminator::Vit(_)
            | Discriminator::Style2(_)
            | Discriminator::Big(_) => {}
        }
    }
}

/// DCGAN's or SAGAN's G and D on the shared backbone, G's weights drawn first.
fn conv_pair(b: &dcgan::Backbone, rng: &mut Rng, device: &Device) -> (Generator, Discriminator) {
    let g = dcgan::Generator::new(b, rng, device);
    let d = dcgan::Discriminator::new(b, rng, device);
    (Generator::Conv(g), Discriminator::Conv(d))
}

/// Checks shared by the image families' configs.
pub(crate) fn check_channels(channels: usize) -> Result<()> {
    if [1, 3].contains(&channels) {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "model.channels must be 1 or 3, got {channels}"
        )))
    }
}

/// Checks shared by the families whose widths are `min(channel_base / (r/2), channel_max)` at a
/// power-of-two resolution (StyleGAN, Progressive GAN).
pub(crate) fn check_resolution_widths(
    resolution: usize,
    channel_base: usize,
    channel_max: usize,
) -> Result<()> {
    if !(8..=1024).contains(&resolution) || !resolution.is_power_of_two() {
        return Err(Error::Config(format!(
            "model.resolution must be a power of two from 8 to 1024, got {resolution}"
        )));
    }
    if channel_max == 0 || channel_base < resolution / 2 {
        return Err(Error::Config(format!(
            "model.channel_base ({channel_base}) must be at least resolution / 2 ({}) and \
             model.channel_max positive, so every resolution has a channel",
            resolution / 2
        )));
    }
    Ok(())
}
