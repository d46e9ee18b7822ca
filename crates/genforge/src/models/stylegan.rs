//! StyleGAN ("A Style-Based Generator Architecture for Generative Adversarial Networks",
//! Karras, Laine and Aila 2019), following the official NVlabs code where the paper is brief.
//!
//! Generator: a mapping network `z -> w` (8 equalized layers, lr multiplier 0.01) and a
//! synthesis network that starts from a learned constant 4x4 input. Every resolution has two
//! style layers; each layer is `[upsample, conv3x3, blur]` (or the constant), then the epilogue
//! `noise -> bias -> LeakyReLU(0.2) -> instance norm -> AdaIN(w_i)`. A 1x1 toRGB makes the image.
//! At 32x32:
//!
//! | layer | op                                  | output        |
//! |-------|-------------------------------------|---------------|
//! | 0     | constant (ones)                      | [b, c4, 4, 4]  |
//! | 1     | conv3x3                              | [b, c4, 4, 4]  |
//! | 2, 3  | upsample, conv3x3, blur; conv3x3     | [b, c8, 8, 8]  |
//! | 4, 5  | same                                 | [b, c16, 16, 16] |
//! | 6, 7  | same                                 | [b, c32, 32, 32] |
//! | toRGB | conv1x1, linear                      | [b, 3, 32, 32] |
//!
//! with `c_r = min(channel_base / (r / 2), channel_max)` (the official `nf`). Discriminator: the
//! Progressive GAN one without growing: fromRGB 1x1, then per resolution `conv3x3, blur,
//! conv3x3, 2x2 average pool`, down to 4x4, where minibatch standard deviation (group 4), a
//! conv3x3 and two dense layers give the logit. Every layer has an equalized learning rate.
//!
//! `synthesis = "demodulation"` swaps instance norm and AdaIN for StyleGAN2's weight
//! demodulation (`nn/modulated_conv.rs`): layer `i > 0` scales its conv's input channels by
//! `A_i(w_i)` and rescales each output channel to unit expected variance; the epilogue is then
//! `noise -> bias -> LeakyReLU(0.2) * sqrt 2`. Layer 0 (the constant) has no conv to modulate.
//!
//! `noise = "coarse"` keeps the noise inputs of the lower half of the resolutions only, `"none"`
//! drops them all: two of the paper's Figure 5 panels, as training configurations.

use crate::nn::activation::leaky_relu;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::pggan::{Level, upsample_to};
use crate::nn::adain::AdaIn;
use crate::nn::blur::{blur, downsample2x, upsample2x};
use crate::nn::channel_affine::channel_affine;
use crate::nn::equalized::{EqualizedLinear, EqualizedOpts};
use crate::nn::equalized_conv::EqualizedConv2d;
use crate::nn::mapping::MappingNetwork;
use crate::nn::minibatch_stddev::minibatch_stddev;
use crate::nn::modulated_conv::{Modulation, demodulation, modulate};
use crate::nn::noise::{NoiseInjection, noise_image};
use crate::rng::Rng;
use crate::{Error, Result};

/// Slope of every leaky ReLU (the paper's 0.2).
pub const LEAKY_SLOPE: f64 = 0.2;
/// He gain of the convolutions followed by a leaky ReLU.
const GAIN: f64 = std::f64::consts::SQRT_2;

/// `model.*` keys of `family = "stylegan"` (defaults: the paper's FFHQ 1024 network).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StyleganConfig {
    /// Size of `z` (512).
    pub z_dim: usize,
    /// Size of `w` and of the mapping network's layers (512).
    pub w_dim: usize,
    /// Layers of the mapping network (8).
    pub mapping_layers: usize,
    pub channels: usize,
    /// Output side, a power of two from 8 to 1024.
    pub resolution: usize,
    /// Feature maps at resolution r: `min(channel_base / (r / 2), channel_max)` (8192).
    pub channel_base: usize,
    /// (512)
    pub channel_max: usize,
    /// Decay of the running average `w_avg` of `w`, the centre of the truncation trick (0.995).
    pub w_avg_decay: f64,
    /// Minibatch standard deviation group size (4).
    pub mbstd_group: usize,
    /// DiffAugment policy for D's inputs (not in the paper; empty: none).
    pub diffaugment: String,
    /// How styles enter the synthesis network: `adain` (the paper) or `demodulation`
    /// (StyleGAN2's weight demodulation in place of instance norm and AdaIN).
    pub synthesis: Synthesis,
    /// Which style layers get per-pixel noise inputs: `all` (the paper), `coarse` (the lower half
    /// of the resolutions, the noise figure's coarse panel) or `none` (the paper's ablation).
    pub noise: NoiseInputs,
}

/// `model.noise` of a StyleGAN.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum NoiseInputs {
    #[default]
    All,
    Coarse,
    None,
}

/// `model.synthesis` of a StyleGAN.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Synthesis {
    /// Instance norm, then `x * (1 + s(w)) + b(w)` after each layer (StyleGAN 2019).
    #[default]
    AdaIn,
    /// Styles scale the conv's input channels; each output channel is rescaled to unit
    /// expected variance; no normalization of the activations (StyleGAN2 2020).
    Demodulation,
}

impl Default for StyleganConfig {
    fn default() -> Self {
        StyleganConfig {
            z_dim: 512,
            w_dim: 512,
            mapping_layers: 8,
            channels: 3,
            resolution: 1024,
            channel_base: 8192,
            channel_max: 512,
            w_avg_decay: 0.995,
            mbstd_group: 4,
            diffaugment: String::new(),
            synthesis: Synthesis::AdaIn,
            noise: NoiseInputs::All,
        }
    }
}

impl StyleganConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(msg));
        super::check_channels(self.channels)?;
        super::check_resolution_widths(self.resolution, self.channel_base, self.channel_max)?;
        if self.z_dim == 0 || self.w_dim == 0 || self.mapping_layers == 0 {
            return bad(
                "model.z_dim, model.w_dim and model.mapping_layers must be positive".into(),
            );
        }
        if !(0.0..1.0).contains(&self.w_avg_decay) {
            return bad(format!(
                "model.w_avg_decay must be in [0, 1), got {}",
                self.w_avg_decay
            ));
        }
        if self.mbstd_group == 0 {
            return bad("model.mbstd_group must be at least 1".into());
        }
        crate::nn::diff_augment::Policy::parse(&self.diffaugment)?;
        Ok(())
    }

    /// Feature maps at resolution `r` (the official `nf(log2(r) - 1)`).
    pub fn channels_at(&self, r: usize) -> usize {
        (self.channel_base / (r / 2)).clamp(1, self.channel_max)
    }

    /// Style layers of the synthesis network: two per resolution from 4x4 up.
    pub fn num_layers(&self) -> usize {
        2 * (self.resolution.trailing_zeros() as usize - 1)
    }

    /// Side of layer `i`'s feature maps.
    pub fn layer_resolution(&self, i: usize) -> usize {
        4 << (i / 2)
    }

    /// How many style layers, from the first, take noise (`model.noise`).
    pub fn noise_layers(&self) -> usize {
        let n = self.num_layers();
        match self.noise {
            NoiseInputs::All => n,
            // Two layers per resolution; the coarse half of the resolutions, at least 4x4.
            NoiseInputs::Coarse => 2 * (n / 4).max(1),
            NoiseInputs::None => 0,
        }
    }
}

/// One style layer: an optional (upsampling) convolution, then noise, bias, LeakyReLU, instance
/// norm and AdaIN.
#[derive(Module, Debug)]
pub struct StyleLayer {
    /// `None` for layer 0, whose input is the learned constant.
    pub conv: Option<EqualizedConv2d>,
    /// Upsample 2x before the conv and blur after it (the first layer of each resolution > 4).
    pub upsample: bool,
    pub noise: NoiseInjection,
    /// `[c]`, added after the noise.
    pub bias: Param<Tensor<1>>,
    /// Instance norm and AdaIN after the activation (`synthesis = "adain"`, the paper).
    pub adain: Option<AdaIn>,
    /// The conv's style with demodulation (`synthesis = "demodulation"`, StyleGAN2).
    pub modulation: Option<Modulation>,
}

impl StyleLayer {
    /// `[b, cin, r, r]` (or the constant), `w_i` `[b, w_dim]`, noise `[b, 1, r', r']` or none.
    fn forward(&self, x: Tensor<4>, w: Tensor<2>, noise: Option<Tensor<4>>) -> Tensor<4> {
        let mut x = x;
        if let Some(conv) = &self.conv {
            // Modulation scales the input channels and demodulation the output channels; both
            // commute with the per-channel upsampling and blur.
            let s = self.modulation.as_ref().map(|m| m.styles(w.clone())); // [b, cin]
            if let Some(s) = &s {
                x = modulate(x, s.clone());
            }
            if self.upsample {
                x = blur(conv.forward(upsample2x(x))); // [b, c, 2r, 2r]
            } else {
                x = conv.forward(x); // [b, c, r, r]
            }
            if let Some(s) = s {
                x = modulate(x, demodulation(s, conv.weight.val() * conv.weight_gain));
            }
        }
        if let Some(n) = noise {
            x = self.noise.forward(x, n);
        }
        let c = self.bias.dims()[0];
        x = leaky_relu(
            channel_affine(x, None, Some(self.bias.val().reshape([1, c]))),
            LEAKY_SLOPE,
        );
        match &self.adain {
            Some(adain) => adain.forward(x, w),
            // No normalization follows, so the activation keeps its He gain (StyleGAN2).
            None => x * GAIN,
        }
    }
}

/// Where a synthesis pass gets its per-pixel noise.
pub enum Noise<'a> {
    /// Fresh N(0, 1) images from this generator (training, and figures that vary the noise).
    Random(&'a mut Rng),
    /// Given noise images, one per layer (`None`: no noise in that layer).
    Fixed(Vec<Option<Tensor<4>>>),
}

#[derive(Module, Debug)]
pub struct Generator {
    pub mapping: MappingNetwork,
    /// `[1, c4, 4, 4]`, initialised to ones.
    pub constant: Param<Tensor<4>>,
    pub layers: Vec<StyleLayer>,
    pub to_rgb: EqualizedConv2d,
    /// `[w_dim]`: running average of `w` over training (not trained by the optimizer).
    pub w_avg: Param<Tensor<1>>,
    pub z_dim: usize,
    /// Style layers `0..noise_layers` take noise; the rest ignore any given (`model.noise`).
    pub noise_layers: usize,
    /// Progressive growing (the 2019 paper's training): toRGB of every level below the final
    /// one (`to_rgb_lower[l]` at `4 * 2^l`); empty when the run does not grow.
    pub to_rgb_lower: Vec<EqualizedConv2d>,
    /// The growth level in use (`log2(resolution) - 2` when grown) and its fade-in.
    pub level: usize,
    pub alpha: f64,
}

impl Generator {
    pub fn new(cfg: &StyleganConfig, rng: &mut Rng, device: &Device) -> Self {
        let mapping = MappingNetwork::new(cfg.z_dim, cfg.w_dim, cfg.mapping_layers, rng, device);
        let c4 = cfg.channels_at(4);
        let mut layers = Vec::with_capacity(cfg.num_layers());
        let mut cin = c4;
        for i in 0..cfg.num_layers() {
            let r = cfg.layer_resolution(i);
            let c = cfg.channels_at(r);
            let conv = (i > 0).then(|| EqualizedConv2d::new([cin, c], 3, GAIN, false, rng, device));
            layers.push(StyleLayer {
                conv,
                upsample: i > 1 && i % 2 == 0,
                noise: NoiseInjection::new(c, device),
                bias: crate::nn::init::zeros([c], device),
                adain: (cfg.synthesis == Synthesis::AdaIn)
                    .then(|| AdaIn::new(cfg.w_dim, c, rng, device)),
                modulation: (cfg.synthesis == Synthesis::Demodulation && i > 0)
                    .then(|| Modulation::new(cfg.w_dim, cin, rng, device)),
            });
            cin = c;
        }
        let to_rgb = EqualizedConv2d::new([cin, cfg.channels], 1, 1.0, true, rng, device);
        Generator {
            mapping,
            constant: Param::from_tensor(Tensor::ones([1, c4, 4, 4], device)),
            layers,
            to_rgb,
            w_avg: Param::from_tensor(Tensor::zeros([cfg.w_dim], device)).set_require_grad(false),
            z_dim: cfg.z_dim,
            noise_layers: cfg.noise_layers(),
            to_rgb_lower: Vec::new(),
            level: cfg.num_layers() / 2 - 1,
            alpha: 1.0,
        }
    }

    /// Add the toRGB layers of the lower resolutions, for progressive growing.
    pub fn growable(mut self, cfg: &StyleganConfig, rng: &mut Rng) -> Self {
        let device = self.device();
        self.to_rgb_lower = (0..self.level)
            .map(|l| {
                let c = cfg.channels_at(4 << l);
                EqualizedConv2d::new([c, cfg.channels], 1, 1.0, true, rng, &device)
            })
            .collect();
        self
    }

    pub fn set_level(&mut self, level: Level) {
        assert!(
            level.level == self.num_layers() / 2 - 1 || level.level < self.to_rgb_lower.len(),
            "level {} needs a growable generator",
            level.level
        );
        self.level = level.level;
        self.alpha = level.alpha;
    }

    /// Style layers in use at the current level.
    fn active_layers(&self) -> usize {
        2 * (self.level + 1)
    }

    /// toRGB at level `l`.
    fn rgb(&self, l: usize) -> &EqualizedConv2d {
        self.to_rgb_lower.get(l).unwrap_or(&self.to_rgb)
    }

    pub fn device(&self) -> Device {
        self.constant.val().device()
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Side of layer `i`'s feature maps.
    pub fn layer_resolution(&self, i: usize) -> usize {
        4 << (i / 2)
    }

    /// `[b, z_dim] -> [b, w_dim]`
    pub fn to_w(&self, z: Tensor<2>) -> Tensor<2> {
        self.mapping.forward(z)
    }

    /// The truncation trick in W: `w_avg + psi (w - w_avg)`.
    pub fn truncate(&self, w: Tensor<2>, psi: f64) -> Tensor<2> {
        let avg = self.w_avg.val().unsqueeze::<2>(); // [1, w_dim]
        avg.clone() + (w - avg) * psi
    }

    /// Random noise images for every layer in use of a batch of `b`.
    pub fn random_noise(&self, b: usize, rng: &mut Rng) -> Vec<Option<Tensor<4>>> {
        let device = self.device();
        // Drawn for every layer, so that runs differing only in `model.noise` draw the same
        // latents and the same noise in the layers they share.
        (0..self.active_layers())
            .map(|i| {
                let n = noise_image(b, self.layer_resolution(i), rng, &device);
                (i < self.noise_layers).then_some(n)
            })
            .collect()
    }

    /// The synthesis network: one `w` per layer (`[b, w_dim]` each) -> `[b, channels, res, res]`
    /// (a growing generator's current resolution upsampled to `res`).
    pub fn synthesis(&self, ws: &[Tensor<2>], noise: Noise) -> Tensor<4> {
        let side = self.layer_resolution(self.num_layers() - 1);
        upsample_to(self.synthesis_level(ws, noise), side)
    }

    /// The synthesis network at the current level: `[b, channels, r, r]`. While a level fades
    /// in, the output is `lerp(upsample(toRGB_low(x_low)), toRGB(x), alpha)`, as Progressive
    /// GAN.
    pub fn synthesis_level(&self, ws: &[Tensor<2>], noise: Noise) -> Tensor<4> {
        assert_eq!(ws.len(), self.num_layers(), "one w per style layer");
        let b = ws[0].dims()[0];
        let noise = match noise {
            Noise::Random(rng) => self.random_noise(b, rng),
            Noise::Fixed(n) => n,
        };
        let active = self.active_layers();
        let mut x = self.constant.val().repeat_dim(0, b); // [b, c4, 4, 4]
        let mut below = None;
        for (i, ((layer, w), n)) in self.layers.iter().zip(ws).zip(noise).enumerate() {
            if i == active {
                break;
            }
            if i + 2 == active && self.level > 0 && self.alpha < 1.0 {
                below = Some(x.clone()); // the level below's last features
            }
            let n = n.filter(|_| i < self.noise_layers);
            x = layer.forward(x, w.clone(), n); // [b, c_r, r, r]
        }
        let new = self.rgb(self.level).forward(x); // [b, channels, r, r]
        match below {
            Some(low) => {
                let old = upsample2x(self.rgb(self.level - 1).forward(low));
                old.clone() + (new - old) * self.alpha
            }
            None => new,
        }
    }

    /// Per-layer `w`s: `w1` for layers below `crossover`, `w2` from there on (style mixing).
    pub fn mix(&self, w1: Tensor<2>, w2: Tensor<2>, crossover: usize) -> Vec<Tensor<2>> {
        (0..self.num_layers())
            .map(|i| {
                if i < crossover {
                    w1.clone()
                } else {
                    w2.clone()
                }
            })
            .collect()
    }

    /// Images for sampling: `w` truncated with `psi` in the first `cutoff` layers (all when
    /// `None`), noise from `rng`.
    pub fn generate(
        &self,
        z: Tensor<2>,
        psi: f64,
        cutoff: Option<usize>,
        rng: &mut Rng,
    ) -> Tensor<4> {
        let w = self.to_w(z);
        let t = self.truncate(w.clone(), psi);
        let cut = cutoff.unwrap_or(self.num_layers());
        let ws = self.mix(t, w, cut);
        self.synthesis(&ws, Noise::Random(rng))
    }

    /// The training forward with style mixing regularization (section 3.1): with probability
    /// `mixing_prob` a second latent takes over from a random layer in `1..num_layers`. Returns
    /// the images and the detached batch mean of the first latent's `w`, for `w_avg`.
    pub fn forward_train(
        &self,
        z: Tensor<2>,
        mixing_prob: f64,
        rng: &mut Rng,
    ) -> (Tensor<4>, Tensor<1>) {
        let [b, zd] = z.dims();
        let w1 = self.to_w(z);
        let n = self.num_layers();
        // While growing, the crossover falls among the layers in use (the official
        // `cur_layers`).
        let active = self.active_layers();
        let ws = if active > 1 && rng.uniform() < mixing_prob {
            let z2 = Tensor::from_data(
                TensorData::new(rng.normal_vec(b * zd, 0.0, 1.0), [b, zd]),
                &w1.device(),
            );
            let crossover = 1 + rng.below(active - 1);
            self.mix(w1.clone(), self.to_w(z2), crossover)
        } else {
            vec![w1.clone(); n]
        };
        let images = self.synthesis_level(&ws, Noise::Random(rng));
        (
            images,
            w1.detach().mean_dim(0).reshape([self.w_avg.dims()[0]]),
        )
    }

    /// `w_avg <- decay * w_avg + (1 - decay) * batch_mean` (the official `dlatent_avg` update).
    pub fn track_w_avg(mut self, batch_mean: Tensor<1>, decay: f64) -> Self {
        self.w_avg = self.w_avg.map(|avg| {
            let m = batch_mean.to_device(&avg.device());
            (avg * decay + m * (1.0 - decay)).detach()
        });
        self
    }
}

/// One discriminator resolution: `conv3x3 -> blur -> conv3x3 -> 2x2 average pool`.
#[derive(Module, Debug)]
pub struct DiscriminatorBlock {
    pub conv0: EqualizedConv2d,
    pub conv1: EqualizedConv2d,
}

#[derive(Module, Debug)]
pub struct Discriminator {
    pub from_rgb: EqualizedConv2d,
    /// From the full resolution down to 8x8.
    pub blocks: Vec<DiscriminatorBlock>,
    /// 4x4, after minibatch stddev: `c4 + 1 -> c4`.
    pub conv: EqualizedConv2d,
    /// `c4 * 16 -> c4`
    pub dense0: EqualizedLinear,
    /// `c4 -> 1`
    pub dense1: EqualizedLinear,
    pub mbstd_group: usize,
    /// Progressive growing: fromRGB of every level below the final one (`from_rgb_lower[l]` at
    /// `4 * 2^l`); empty when the run does not grow.
    pub from_rgb_lower: Vec<EqualizedConv2d>,
    pub level: usize,
    pub alpha: f64,
}

impl Discriminator {
    pub fn new(cfg: &StyleganConfig, rng: &mut Rng, device: &Device) -> Self {
        let res = cfg.resolution;
        let from_rgb = EqualizedConv2d::new(
            [cfg.channels, cfg.channels_at(res)],
            1,
            GAIN,
            true,
            rng,
            device,
        );
        let mut blocks = Vec::new();
        let mut r = res;
        while r > 4 {
            let (c, c_next) = (cfg.channels_at(r), cfg.channels_at(r / 2));
            blocks.push(DiscriminatorBlock {
                conv0: EqualizedConv2d::new([c, c], 3, GAIN, true, rng, device),
                conv1: EqualizedConv2d::new([c, c_next], 3, GAIN, true, rng, device),
            });
            r /= 2;
        }
        let c4 = cfg.channels_at(4);
        let gain_opts = EqualizedOpts::default();
        Discriminator {
            from_rgb,
            blocks,
            conv: EqualizedConv2d::new([c4 + 1, c4], 3, GAIN, true, rng, device),
            dense0: EqualizedLinear::new([c4 * 16, c4], gain_opts, rng, device),
            dense1: EqualizedLinear::new([c4, 1], gain_opts, rng, device),
            mbstd_group: cfg.mbstd_group,
            from_rgb_lower: Vec::new(),
            level: cfg.num_layers() / 2 - 1,
            alpha: 1.0,
        }
    }

    /// Add the fromRGB layers of the lower resolutions, for progressive growing.
    pub fn growable(mut self, cfg: &StyleganConfig, rng: &mut Rng) -> Self {
        let device = self.conv.weight.val().device();
        self.from_rgb_lower = (0..self.level)
            .map(|l| {
                let c = cfg.channels_at(4 << l);
                EqualizedConv2d::new([cfg.channels, c], 1, GAIN, true, rng, &device)
            })
            .collect();
        self
    }

    pub fn set_level(&mut self, level: Level) {
        assert!(
            level.level == self.blocks.len() || level.level < self.from_rgb_lower.len(),
            "level {} needs a growable discriminator",
            level.level
        );
        self.level = level.level;
        self.alpha = level.alpha;
    }

    /// fromRGB at level `l`, with its leaky ReLU.
    fn rgb_in(&self, l: usize, x: Tensor<4>) -> Tensor<4> {
        let conv = self.from_rgb_lower.get(l).unwrap_or(&self.from_rgb);
        leaky_relu(conv.forward(x), LEAKY_SLOPE)
    }

    /// `[b, channels, r, r] -> [b]` logits, `r` the current level's side (the full resolution
    /// unless growing). While a level fades in, the first block's output is blended with the
    /// level below's fromRGB of the pooled images, as Progressive GAN.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<1> {
        let b = x.dims()[0];
        // blocks[i] takes 4 * 2^(top - i) down by 2; the current level starts at top - level.
        let first = self.blocks.len() - self.level;
        let mut h = self.rgb_in(self.level, x.clone()); // [b, c_r, r, r]
        for (i, block) in self.blocks.iter().enumerate().skip(first) {
            h = leaky_relu(block.conv0.forward(h), LEAKY_SLOPE);
            h = leaky_relu(downsample2x(block.conv1.forward(blur(h))), LEAKY_SLOPE); // [b, c_r/2, r/2, r/2]
            if i == first && self.alpha < 1.0 {
                let old = self.rgb_in(self.level - 1, downsample2x(x.clone()));
                h = old.clone() + (h - old) * self.alpha;
            }
        }
        let x = h;
        let x = minibatch_stddev(x, self.mbstd_group); // [b, c4 + 1, 4, 4]
        let x = leaky_relu(self.conv.forward(x), LEAKY_SLOPE); // [b, c4, 4, 4]
        let c4 = x.dims()[1];
        // Dense layers carry the He gain in their activation, as StyleGAN2's FC layers do.
        let h = leaky_relu(self.dense0.forward(x.reshape([b, c4 * 16])), LEAKY_SLOPE) * GAIN; // [b, c4]
        self.dense1.forward(h).reshape([b])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn tiny() -> StyleganConfig {
        StyleganConfig {
            z_dim: 8,
            w_dim: 8,
            mapping_layers: 2,
            channels: 3,
            resolution: 16,
            channel_base: 64,
            channel_max: 16,
            ..Default::default()
        }
    }

    fn z(b: usize, seed: u64, device: &Device) -> Tensor<2> {
        let mut rng = Rng::new(seed);
        Tensor::from_data(
            TensorData::new(rng.normal_vec(b * 8, 0.0, 1.0), [b, 8]),
            device,
        )
    }

    fn max_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    #[test]
    fn shapes_channels_and_layer_count() {
        let device = Device::flex();
        let cfg = tiny();
        assert_eq!(cfg.num_layers(), 6);
        assert_eq!(
            (cfg.channels_at(4), cfg.channels_at(8), cfg.channels_at(16)),
            (16, 16, 8)
        );
        let paper = StyleganConfig::default();
        assert_eq!(paper.num_layers(), 18); // the paper's 18 style layers at 1024x1024
        assert_eq!((paper.channels_at(64), paper.channels_at(1024)), (256, 16));
        let mut rng = Rng::new(0);
        let g = Generator::new(&cfg, &mut rng, &device);
        let d = Discriminator::new(&cfg, &mut rng, &device);
        let img = g.generate(z(4, 1, &device), 1.0, None, &mut Rng::new(2));
        assert_eq!(img.dims(), [4, 3, 16, 16]);
        assert_eq!(d.forward(img).dims(), [4]);
        // The constant input starts at ones and the noise scales at zero.
        assert_eq!(g.constant.val().min().into_scalar::<f32>(), 1.0);
        assert!(
            g.layers
                .iter()
                .all(|l| l.noise.strength.val().abs().max().into_scalar::<f32>() == 0.0)
        );
    }

    /// The tiny generator with AdaIN and with demodulation.
    fn both_syntheses() -> [Generator; 2] {
        [Synthesis::AdaIn, Synthesis::Demodulation].map(|synthesis| {
            let cfg = StyleganConfig {
                synthesis,
                ..tiny()
            };
            Generator::new(&cfg, &mut Rng::new(0), &Device::flex())
        })
    }

    fn with_noise_strength(mut g: Generator, v: f32) -> Generator {
        for l in &mut g.layers {
            let c = l.noise.strength.dims()[0];
            l.noise.strength = Param::from_tensor(Tensor::full([c], v, &l.noise.strength.device()));
        }
        g
    }

    #[test]
    fn noise_scale_zero_makes_the_noise_irrelevant() {
        for g in both_syntheses() {
            let device = g.device();
            let zz = z(2, 3, &device);
            let a = g.generate(zz.clone(), 1.0, None, &mut Rng::new(10));
            let b = g.generate(zz.clone(), 1.0, None, &mut Rng::new(11));
            assert_eq!(max_diff(a, b), 0.0);
            // With a non-zero scale the same latent gives different images.
            let g = with_noise_strength(g, 0.5);
            let a = g.generate(zz.clone(), 1.0, None, &mut Rng::new(10));
            let b = g.generate(zz, 1.0, None, &mut Rng::new(11));
            assert!(max_diff(a, b) > 1e-3);
        }
    }

    #[test]
    fn model_noise_picks_the_layers_that_take_noise() {
        let device = Device::flex();
        let paper = StyleganConfig::default();
        let at = |noise, resolution| {
            StyleganConfig {
                noise,
                resolution,
                ..paper.clone()
            }
            .noise_layers()
        };
        // 4x4-32x32 of 1024 (the paper's coarse half), 4x4-8x8 of 32, 4x4 of 16.
        assert_eq!(at(NoiseInputs::Coarse, 1024), 8);
        assert_eq!(at(NoiseInputs::Coarse, 32), 4);
        assert_eq!(at(NoiseInputs::Coarse, 16), 2);
        assert_eq!(
            (at(NoiseInputs::All, 32), at(NoiseInputs::None, 32)),
            (8, 0)
        );
        // Noise images in every layer (`full`) or only in the fine layers 2-5 (`fine`), at
        // strength 0.5: the image changes with the noise of exactly the layers that take it.
        for noise in [NoiseInputs::All, NoiseInputs::Coarse, NoiseInputs::None] {
            let cfg = StyleganConfig { noise, ..tiny() };
            let g = with_noise_strength(Generator::new(&cfg, &mut Rng::new(0), &device), 0.5);
            let mut rng = Rng::new(4);
            let images: Vec<Tensor<4>> = (0..6)
                .map(|i| noise_image(2, g.layer_resolution(i), &mut rng, &device))
                .collect();
            let ws = vec![g.to_w(z(2, 3, &device)); 6];
            let image = |keep: &dyn Fn(usize) -> bool| {
                let n = (0..6).map(|i| keep(i).then(|| images[i].clone())).collect();
                g.synthesis(&ws, Noise::Fixed(n))
            };
            let (none, full, fine) = (image(&|_| false), image(&|_| true), image(&|i| i >= 2));
            let changed = |a: &Tensor<4>, b: &Tensor<4>| max_diff(a.clone(), b.clone()) > 1e-3;
            assert_eq!(
                changed(&full, &none),
                noise != NoiseInputs::None,
                "{noise:?}"
            );
            assert_eq!(
                changed(&fine, &none),
                noise == NoiseInputs::All,
                "{noise:?}"
            );
            // Random noise goes to the layers that take it, and the random stream moves on as
            // with noise everywhere.
            let mut rng = Rng::new(5);
            let drawn = g.random_noise(2, &mut rng);
            let layers: Vec<bool> = drawn.iter().map(Option::is_some).collect();
            assert_eq!(
                layers,
                (0..6).map(|i| i < g.noise_layers).collect::<Vec<_>>()
            );
            let mut all = Rng::new(5);
            Generator::new(&tiny(), &mut Rng::new(0), &device).random_noise(2, &mut all);
            assert_eq!(rng.normal_vec(3, 0.0, 1.0), all.normal_vec(3, 0.0, 1.0));
        }
    }

    #[test]
    fn truncation_psi_zero_is_the_average_and_psi_one_is_untruncated() {
        let device = Device::flex();
        let mut g = Generator::new(&tiny(), &mut Rng::new(0), &device);
        g = g.track_w_avg(
            Tensor::from_data(TensorData::new(vec![0.3f32; 8], [8]), &device),
            0.0,
        );
        let zz = z(3, 4, &device);
        let same = g.generate(zz.clone(), 0.0, None, &mut Rng::new(1));
        let first = same.clone().narrow(0, 0, 1).repeat_dim(0, 3);
        assert!(
            max_diff(same, first) < 1e-5,
            "psi = 0: every seed gives the average image"
        );
        let plain = g.synthesis(
            &vec![g.to_w(zz.clone()); 6],
            Noise::Random(&mut Rng::new(1)),
        );
        let psi1 = g.generate(zz.clone(), 1.0, None, &mut Rng::new(1));
        // `avg + (w - avg)` rounds differently from `w` in the last bit only.
        assert!(max_diff(plain.clone(), psi1) < 1e-4);
        // A cutoff of 0 layers leaves every layer untruncated.
        let cut0 = g.generate(zz, 0.0, Some(0), &mut Rng::new(1));
        assert_eq!(max_diff(plain, cut0), 0.0);
    }

    #[test]
    fn crossover_at_layer_zero_is_the_second_latent() {
        for g in both_syntheses() {
            let device = g.device();
            let (w1, w2) = (g.to_w(z(2, 5, &device)), g.to_w(z(2, 6, &device)));
            let mixed = g.synthesis(
                &g.mix(w1.clone(), w2.clone(), 0),
                Noise::Random(&mut Rng::new(1)),
            );
            let only2 = g.synthesis(&vec![w2.clone(); 6], Noise::Random(&mut Rng::new(1)));
            assert_eq!(max_diff(mixed, only2.clone()), 0.0);
            let at3 = g.synthesis(&g.mix(w1, w2, 3), Noise::Random(&mut Rng::new(1)));
            assert!(max_diff(at3, only2) > 1e-4);
        }
    }

    #[test]
    fn growing_fades_from_the_level_below_to_the_new_one() {
        let device = Device::flex();
        let cfg = tiny();
        let mut rng = Rng::new(0);
        let mut g = Generator::new(&cfg, &mut rng, &device).growable(&cfg, &mut rng);
        let mut d = Discriminator::new(&cfg, &mut rng, &device).growable(&cfg, &mut rng);
        assert_eq!((g.to_rgb_lower.len(), d.from_rgb_lower.len()), (2, 2));
        let ws = vec![g.to_w(z(2, 3, &device)); g.num_layers()];
        let at = |g: &Generator| g.synthesis_level(&ws, Noise::Random(&mut Rng::new(4)));
        g.set_level(Level::stable(1));
        let previous = at(&g); // [2, 3, 8, 8]
        assert_eq!(previous.dims(), [2, 3, 8, 8]);
        // The noise of the shared layers is drawn first, so it is the same at both levels.
        g.set_level(Level {
            level: 2,
            alpha: 0.0,
        });
        assert_eq!(max_diff(at(&g), upsample2x(previous.clone())), 0.0);
        // alpha = 1 at the final level: exactly the non-growing network.
        g.set_level(Level::stable(2));
        let full = at(&g);
        let mut plain = Generator::new(&cfg, &mut Rng::new(0), &device);
        plain.to_rgb = g.to_rgb.clone();
        assert_eq!(max_diff(full.clone(), at(&plain)), 0.0);
        assert!(max_diff(full, upsample2x(previous)) > 1e-4);
        // D: at alpha 0 the grown D scores the pooled images as the level below does.
        let x = Tensor::<4>::random(
            [4, 3, 16, 16],
            burn::tensor::Distribution::Uniform(-1.0, 1.0),
            &device,
        );
        d.set_level(Level::stable(1));
        let low = d.forward(downsample2x(x.clone()));
        d.set_level(Level {
            level: 2,
            alpha: 0.0,
        });
        let faded = d.forward(x);
        assert!((faded - low).abs().max().into_scalar::<f32>() < 1e-6);
    }

    /// Demodulation makes a layer blind to the overall scale of its style: multiplying a
    /// style affine by 3 leaves the image unchanged, where AdaIN's output changes.
    #[test]
    fn demodulated_layers_ignore_the_scale_of_their_style() {
        let device = Device::flex();
        let scaled = |synthesis| {
            let cfg = StyleganConfig {
                synthesis,
                ..tiny()
            };
            let g = Generator::new(&cfg, &mut Rng::new(0), &device);
            let zz = z(2, 7, &device);
            let before = g.generate(zz.clone(), 1.0, None, &mut Rng::new(1));
            let mut g = g;
            let layer = &mut g.layers[3];
            let affine = match (&mut layer.modulation, &mut layer.adain) {
                (Some(m), None) => &mut m.affine,
                (None, Some(a)) => &mut a.affine,
                _ => panic!("a layer has exactly one way to take its style"),
            };
            affine.weight = affine.weight.clone().map(|w| w * 3.0);
            affine.bias = affine.bias.clone().map(|b| b.map(|b| b * 3.0));
            let after = g.generate(zz, 1.0, None, &mut Rng::new(1));
            max_diff(before, after)
        };
        assert!(scaled(Synthesis::Demodulation) < 1e-4);
        assert!(scaled(Synthesis::AdaIn) > 1e-2);
        // Layer 0 is the constant: no convolution, so nothing to modulate.
        let cfg = StyleganConfig {
            synthesis: Synthesis::Demodulation,
            ..tiny()
        };
        let g = Generator::new(&cfg, &mut Rng::new(0), &device);
        assert!(
            g.layers[0].modulation.is_none()
                && g.layers[1..].iter().all(|l| l.modulation.is_some())
        );
        assert!(g.layers.iter().all(|l| l.adain.is_none()));
    }

    #[test]
    fn w_avg_follows_the_ema_formula() {
        let device = Device::flex();
        let g = Generator::new(&tiny(), &mut Rng::new(0), &device);
        let m = Tensor::<1>::from_data(TensorData::new(vec![2.0f32; 8], [8]), &device);
        let g = g.track_w_avg(m.clone(), 0.9).track_w_avg(m, 0.9);
        // 0 -> 0.2 -> 0.38
        let v = g.w_avg.val().into_data().try_to_vec::<f32>().unwrap();
        assert!(v.iter().all(|x| (x - 0.38).abs() < 1e-6), "{v:?}");
    }
}
