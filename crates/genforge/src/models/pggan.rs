//! Progressive GAN ("Progressive Growing of GANs for Improved Quality, Stability, and
//! Variation", Karras, Aila, Laine and Lehtinen 2018), following the official TensorFlow code
//! (tkarras/progressive_growing_of_gans, `G_paper` / `D_paper`) where the paper is brief.
//!
//! Both networks hold every resolution from the start; a run's current *level* (`0` = 4x4,
//! `l` = `4 * 2^l`) and fade-in `alpha` pick the part that is used, as the official code's `lod`
//! does. At 32x32 (`c_r = min(channel_base / (r / 2), channel_max)`, the official `nf`):
//!
//! | G                                               | output            |
//! |-------------------------------------------------|-------------------|
//! | z, pixel norm                                   | [b, z_dim]        |
//! | dense (gain sqrt(2)/4), LReLU, PN               | [b, c4, 4, 4]     |
//! | conv3x3, LReLU, PN                              | [b, c4, 4, 4]     |
//! | per r = 8, 16, 32: upsample, 2 x (conv3x3, LReLU, PN) | [b, c_r, r, r] |
//! | toRGB_r: conv1x1, linear                        | [b, channels, r, r] |
//!
//! | D                                               | output            |
//! |-------------------------------------------------|-------------------|
//! | fromRGB_r: conv1x1, LReLU                       | [b, c_r, r, r]    |
//! | per r = 32, 16, 8: conv3x3, LReLU, conv3x3, 2x2 average pool, LReLU | [b, c_r/2, r/2, r/2] |
//! | minibatch stddev (group 4)                      | [b, c4 + 1, 4, 4] |
//! | conv3x3, LReLU; dense, LReLU; dense (gain 1)    | [b]               |
//!
//! Fade-in while level `l` is added: G's output is `lerp(upsample(toRGB_{l-1}(h_{l-1})),
//! toRGB_l(block_l(h_{l-1})), alpha)` and D's first features `lerp(fromRGB_{l-1}(pool(x)),
//! block_l(fromRGB_l(x)), alpha)`. Every layer has an equalized learning rate (gain sqrt(2)
//! unless noted). The official code fuses upsample+conv and conv+pool at high resolutions; both
//! are the same linear maps as the separate operations used here (pooling before the bias and
//! LReLU, as the fused kernel).

use crate::nn::activation::leaky_relu;
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::nn::blur::{downsample2x, upsample2x};
use crate::nn::equalized::{EqualizedLinear, EqualizedOpts};
use crate::nn::equalized_conv::EqualizedConv2d;
use crate::nn::mapping::normalize_2nd_moment;
use crate::nn::minibatch_stddev::minibatch_stddev;
use crate::nn::pixel_norm::pixel_norm;
use crate::rng::Rng;
use crate::{Error, Result};

/// Slope of every leaky ReLU (the paper's 0.2).
pub const LEAKY_SLOPE: f64 = 0.2;
/// He gain of the layers followed by a leaky ReLU.
const GAIN: f64 = std::f64::consts::SQRT_2;

/// `model.*` keys of `family = "pggan"` (defaults: the paper's CelebA-HQ 1024 network).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PgganConfig {
    /// Size of the latent (512).
    pub z_dim: usize,
    pub channels: usize,
    /// Final output side, a power of two from 8 to 1024.
    pub resolution: usize,
    /// Feature maps at resolution r: `min(channel_base / (r / 2), channel_max)` (8192).
    pub channel_base: usize,
    /// (512)
    pub channel_max: usize,
    /// Minibatch standard deviation group size (4).
    pub mbstd_group: usize,
}

impl Default for PgganConfig {
    fn default() -> Self {
        PgganConfig {
            z_dim: 512,
            channels: 3,
            resolution: 1024,
            channel_base: 8192,
            channel_max: 512,
            mbstd_group: 4,
        }
    }
}

impl PgganConfig {
    pub fn validate(&self) -> Result<()> {
        super::check_channels(self.channels)?;
        super::check_resolution_widths(self.resolution, self.channel_base, self.channel_max)?;
        if self.z_dim == 0 || self.mbstd_group == 0 {
            return Err(Error::Config(
                "model.z_dim and model.mbstd_group must be positive".into(),
            ));
        }
        Ok(())
    }

    /// Feature maps at resolution `r` (the official `nf(log2(r) - 1)`).
    pub fn channels_at(&self, r: usize) -> usize {
        (self.channel_base / (r / 2).max(1)).clamp(1, self.channel_max)
    }

    /// The level of the final resolution (`log2(resolution) - 2`).
    pub fn final_level(&self) -> usize {
        self.resolution.trailing_zeros() as usize - 2
    }
}

/// Which part of a growing network is in use: resolution `4 * 2^level`, faded in by `alpha`
/// (1: the level is stable; below 1: blended with the level below).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Level {
    pub level: usize,
    pub alpha: f64,
}

impl Level {
    pub fn resolution(&self) -> usize {
        4 << self.level
    }

    /// A stable level.
    pub fn stable(level: usize) -> Self {
        Level { level, alpha: 1.0 }
    }
}

/// `lerp(a, b, t) = a + (b - a) t`, exactly `a` at `t = 0`.
fn lerp(a: Tensor<4>, b: Tensor<4>, t: f64) -> Tensor<4> {
    a.clone() + (b - a) * t
}

/// Nearest-neighbour upsampling by `factor` (a power of two).
pub fn upsample_to(x: Tensor<4>, side: usize) -> Tensor<4> {
    let mut x = x;
    while x.dims()[2] < side {
        x = upsample2x(x);
    }
    x
}

/// Real images as D sees them at `level` (the official `process_reals`): box-downsampled to the
/// level's resolution and, during a fade-in, blended with their own 2x2-averaged copy so reals
/// change resolution as smoothly as G's output. `[b, c, R, R] -> [b, c, r, r]`.
pub fn fade_reals(x: Tensor<4>, level: Level) -> Tensor<4> {
    let mut x = x;
    while x.dims()[2] > level.resolution() {
        x = downsample2x(x);
    }
    if level.alpha < 1.0 && level.level > 0 {
        let coarse = upsample2x(downsample2x(x.clone()));
        x = lerp(coarse, x, level.alpha);
    }
    x
}

fn lrelu(x: Tensor<4>) -> Tensor<4> {
    leaky_relu(x, LEAKY_SLOPE)
}

/// One generator resolution: upsample, then two `conv3x3 -> LReLU -> pixel norm`.
#[derive(Module, Debug)]
pub struct GeneratorBlock {
    pub conv0: EqualizedConv2d,
    pub conv1: EqualizedConv2d,
}

impl GeneratorBlock {
    /// `[b, cin, r, r] -> [b, c, 2r, 2r]`
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = pixel_norm(lrelu(self.conv0.forward(upsample2x(x))));
        pixel_norm(lrelu(self.conv1.forward(x)))
    }
}

#[derive(Module, Debug)]
pub struct Generator {
    /// `z_dim -> c4 * 16`, gain `sqrt(2) / 4` (the official code's Theano-matching override),
    /// without bias: the bias is per channel of the 4x4 map, as the official `apply_bias` after
    /// the reshape.
    pub dense: EqualizedLinear,
    /// `[c4]`
    pub dense_bias: Param<Tensor<1>>,
    /// The 4x4 conv3x3.
    pub conv: EqualizedConv2d,
    /// `blocks[l - 1]` makes level `l` from level `l - 1`.
    pub blocks: Vec<GeneratorBlock>,
    /// `to_rgb[l]`: conv1x1 at level `l`, gain 1.
    pub to_rgb: Vec<EqualizedConv2d>,
    pub level: usize,
    pub alpha: f64,
    /// Final output side.
    pub resolution: usize,
}

impl Generator {
    pub fn new(cfg: &PgganConfig, rng: &mut Rng, device: &Device) -> Self {
        let c4 = cfg.channels_at(4);
        let dense = EqualizedLinear::new(
            [cfg.z_dim, c4 * 16],
            EqualizedOpts {
                gain: GAIN / 4.0,
                bias_init: None,
                ..Default::default()
            },
            rng,
            device,
        );
        let conv = EqualizedConv2d::new([c4, c4], 3, GAIN, true, rng, device);
        let rgb = |c: usize, rng: &mut Rng| {
            EqualizedConv2d::new([c, cfg.channels], 1, 1.0, true, rng, device)
        };
        let mut to_rgb = vec![rgb(c4, rng)];
        let mut blocks = Vec::new();
        for l in 1..=cfg.final_level() {
            let (cin, c) = (cfg.channels_at(2 << l), cfg.channels_at(4 << l));
            blocks.push(GeneratorBlock {
                conv0: EqualizedConv2d::new([cin, c], 3, GAIN, true, rng, device),
                conv1: EqualizedConv2d::new([c, c], 3, GAIN, true, rng, device),
            });
            to_rgb.push(rgb(c, rng));
        }
        Generator {
            dense,
            dense_bias: crate::nn::init::zeros([c4], device),
            conv,
            blocks,
            to_rgb,
            level: cfg.final_level(),
            alpha: 1.0,
            resolution: cfg.resolution,
        }
    }

    pub fn device(&self) -> Device {
        self.conv.weight.val().device()
    }

    pub fn current(&self) -> Level {
        Level {
            level: self.level,
            alpha: self.alpha,
        }
    }

    pub fn set_level(&mut self, level: Level) {
        assert!(level.level < self.to_rgb.len(), "level beyond the network");
        self.level = level.level;
        self.alpha = level.alpha;
    }

    /// `[b, z_dim] -> [b, channels, r, r]` at the current level's resolution `r`.
    pub fn forward_level(&self, z: Tensor<2>) -> Tensor<4> {
        let b = z.dims()[0];
        let c4 = self.conv.weight.dims()[0];
        let x = self.dense.forward(normalize_2nd_moment(z)); // [b, c4 * 16]
        let bias = self.dense_bias.val().reshape([1, c4, 1, 1]);
        let x = pixel_norm(lrelu(x.reshape([b, c4, 4, 4]) + bias)); // [b, c4, 4, 4]
        let mut x = pixel_norm(lrelu(self.conv.forward(x))); // [b, c4, 4, 4]
        if self.level == 0 {
            return self.to_rgb[0].forward(x);
        }
        for block in &self.blocks[..self.level - 1] {
            x = block.forward(x); // [b, c_r, r, r]
        }
        let top = self.blocks[self.level - 1].forward(x.clone()); // [b, c_r, r, r]
        let new = self.to_rgb[self.level].forward(top);
        if self.alpha >= 1.0 {
            return new;
        }
        let old = upsample2x(self.to_rgb[self.level - 1].forward(x));
        lerp(old, new, self.alpha)
    }

    /// `[b, z_dim] -> [b, channels, R, R]`: the current level's images, upsampled to the final
    /// side so every snapshot of a growing run has one size.
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        upsample_to(self.forward_level(z), self.resolution)
    }
}

/// One discriminator resolution: `conv3x3 -> LReLU -> conv3x3 -> 2x2 average pool -> LReLU`.
#[derive(Module, Debug)]
pub struct DiscriminatorBlock {
    pub conv0: EqualizedConv2d,
    pub conv1: EqualizedConv2d,
}

impl DiscriminatorBlock {
    /// `[b, c, r, r] -> [b, c_next, r/2, r/2]`
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = lrelu(self.conv0.forward(x));
        lrelu(downsample2x(self.conv1.forward(x)))
    }
}

#[derive(Module, Debug)]
pub struct Discriminator {
    /// `from_rgb[l]`: conv1x1 + LReLU at level `l`.
    pub from_rgb: Vec<EqualizedConv2d>,
    /// `blocks[l - 1]` takes level `l` down to level `l - 1`.
    pub blocks: Vec<DiscriminatorBlock>,
    /// 4x4, after minibatch stddev: `c4 + 1 -> c4`.
    pub conv: EqualizedConv2d,
    /// `c4 * 16 -> nf(0)`
    pub dense0: EqualizedLinear,
    /// `nf(0) -> 1`, gain 1.
    pub dense1: EqualizedLinear,
    pub mbstd_group: usize,
    pub level: usize,
    pub alpha: f64,
}

impl Discriminator {
    pub fn new(cfg: &PgganConfig, rng: &mut Rng, device: &Device) -> Self {
        let rgb = |c: usize, rng: &mut Rng| {
            EqualizedConv2d::new([cfg.channels, c], 1, GAIN, true, rng, device)
        };
        let c4 = cfg.channels_at(4);
        let mut from_rgb = vec![rgb(c4, rng)];
        let mut blocks = Vec::new();
        for l in 1..=cfg.final_level() {
            let (c, c_next) = (cfg.channels_at(4 << l), cfg.channels_at(2 << l));
            from_rgb.push(rgb(c, rng));
            blocks.push(DiscriminatorBlock {
                conv0: EqualizedConv2d::new([c, c], 3, GAIN, true, rng, device),
                conv1: EqualizedConv2d::new([c, c_next], 3, GAIN, true, rng, device),
            });
        }
        // The official Dense0 width, nf(0).
        let c0 = cfg.channel_base.min(cfg.channel_max);
        let dense = |io: [usize; 2], gain: f64, rng: &mut Rng| {
            let opts = EqualizedOpts {
                gain,
                ..Default::default()
            };
            EqualizedLinear::new(io, opts, rng, device)
        };
        Discriminator {
            from_rgb,
            blocks,
            conv: EqualizedConv2d::new([c4 + 1, c4], 3, GAIN, true, rng, device),
            dense0: dense([c4 * 16, c0], GAIN, rng),
            dense1: dense([c0, 1], 1.0, rng),
            mbstd_group: cfg.mbstd_group,
            level: cfg.final_level(),
            alpha: 1.0,
        }
    }

    pub fn set_level(&mut self, level: Level) {
        assert!(
            level.level < self.from_rgb.len(),
            "level beyond the network"
        );
        self.level = level.level;
        self.alpha = level.alpha;
    }

    /// `[b, channels, r, r] -> [b]` logits, `r` the current level's resolution.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<1> {
        let b = x.dims()[0];
        let l = self.level;
        assert_eq!(
            x.dims()[2],
            4 << l,
            "D at level {l} takes {0}x{0} images",
            4 << l
        );
        let mut h = lrelu(self.from_rgb[l].forward(x.clone())); // [b, c_r, r, r]
        if l > 0 {
            h = self.blocks[l - 1].forward(h); // [b, c_r/2, r/2, r/2]
            if self.alpha < 1.0 {
                let old = lrelu(self.from_rgb[l - 1].forward(downsample2x(x)));
                h = lerp(old, h, self.alpha);
            }
            for block in self.blocks[..l - 1].iter().rev() {
                h = block.forward(h);
            }
        }
        let h = minibatch_stddev(h, self.mbstd_group); // [b, c4 + 1, 4, 4]
        let h = lrelu(self.conv.forward(h)); // [b, c4, 4, 4]
        let c4 = h.dims()[1];
        let h = leaky_relu(self.dense0.forward(h.reshape([b, c4 * 16])), LEAKY_SLOPE); // [b, nf0]
        self.dense1.forward(h).reshape([b])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

    fn tiny() -> PgganConfig {
        PgganConfig {
            z_dim: 8,
            channels: 3,
            resolution: 16,
            channel_base: 32,
            channel_max: 8,
            mbstd_group: 4,
        }
    }

    fn z(b: usize, device: &Device) -> Tensor<2> {
        let v = Rng::new(1).normal_vec(b * 8, 0.0, 1.0);
        Tensor::from_data(TensorData::new(v, [b, 8]), device)
    }

    fn max_diff(a: Tensor<4>, b: Tensor<4>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    #[test]
    fn shapes_follow_the_level_and_the_paper_widths() {
        let paper = PgganConfig::default();
        // Table 2 of the paper: 512 maps up to 32x32, 16 at 1024x1024.
        assert_eq!(
            [4, 32, 64, 1024].map(|r| paper.channels_at(r)),
            [512, 512, 256, 16]
        );
        assert_eq!(paper.final_level(), 8);
        let device = Device::flex();
        // The paper's 23.1M parameters in each network (plus the lower resolutions' toRGB and
        // fromRGB layers, 1x1 convolutions the final network keeps from growing).
        let m = |n: usize| n as f64 / 1e6;
        let g = Generator::new(&paper, &mut Rng::new(0), &device);
        let d = Discriminator::new(&paper, &mut Rng::new(0), &device);
        assert!(
            (23.07..23.1).contains(&m(g.num_params())),
            "{}",
            g.num_params()
        );
        assert!(
            (23.07..23.1).contains(&m(d.num_params())),
            "{}",
            d.num_params()
        );
        let mut g = Generator::new(&tiny(), &mut Rng::new(0), &device);
        let mut d = Discriminator::new(&tiny(), &mut Rng::new(1), &device);
        for level in 0..3 {
            for alpha in [0.3, 1.0] {
                let lv = Level { level, alpha };
                g.set_level(lv);
                d.set_level(lv);
                let r = 4 << level;
                let img = g.forward_level(z(4, &device));
                assert_eq!(img.dims(), [4, 3, r, r]);
                assert_eq!(g.forward(z(4, &device)).dims(), [4, 3, 16, 16]);
                assert_eq!(d.forward(img).dims(), [4]);
            }
        }
    }

    #[test]
    fn fade_in_starts_at_the_upsampled_previous_output_and_ends_at_the_new_path() {
        let device = Device::flex();
        let mut g = Generator::new(&tiny(), &mut Rng::new(0), &device);
        let zz = z(3, &device);
        g.set_level(Level::stable(1));
        let previous = upsample2x(g.forward_level(zz.clone())); // [3, 3, 16, 16]
        g.set_level(Level {
            level: 2,
            alpha: 0.0,
        });
        assert_eq!(max_diff(g.forward_level(zz.clone()), previous.clone()), 0.0);
        // alpha = 1: toRGB of the new block alone.
        g.set_level(Level::stable(2));
        let new = g.forward_level(zz.clone());
        let x = {
            let g1 = &g;
            let b = 3;
            let x = g1.dense.forward(normalize_2nd_moment(zz.clone()));
            let x = pixel_norm(lrelu(
                x.reshape([b, 8, 4, 4]) + g1.dense_bias.val().reshape([1, 8, 1, 1]),
            ));
            let x = pixel_norm(lrelu(g1.conv.forward(x)));
            let x = g1.blocks[0].forward(x);
            g1.to_rgb[2].forward(g1.blocks[1].forward(x))
        };
        assert_eq!(max_diff(new.clone(), x), 0.0);
        assert!(max_diff(new.clone(), previous.clone()) > 1e-3);
        // In between: the straight line between the two.
        g.set_level(Level {
            level: 2,
            alpha: 0.25,
        });
        let mid = g.forward_level(zz);
        assert!(max_diff(mid, previous.clone() * 0.75 + new * 0.25) < 1e-5);
    }

    #[test]
    fn discriminator_fade_in_blends_the_two_input_paths() {
        let device = Device::flex();
        let mut d = Discriminator::new(&tiny(), &mut Rng::new(2), &device);
        let x = Tensor::<4>::random([4, 3, 16, 16], Distribution::Uniform(-1.0, 1.0), &device);
        // alpha = 0: D at level 2 equals D at level 1 on the pooled images.
        d.set_level(Level::stable(1));
        let previous = d.forward(downsample2x(x.clone()));
        d.set_level(Level {
            level: 2,
            alpha: 0.0,
        });
        let faded = d.forward(x.clone());
        let diff = (faded - previous.clone()).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-6, "{diff}");
        d.set_level(Level::stable(2));
        let full = d.forward(x);
        assert!((full - previous).abs().max().into_scalar::<f32>() > 1e-4);
    }

    #[test]
    fn reals_fade_between_resolutions() {
        let device = Device::flex();
        let x = Tensor::<4>::random([2, 1, 16, 16], Distribution::Uniform(-1.0, 1.0), &device);
        let at8 = fade_reals(x.clone(), Level::stable(1));
        assert_eq!(at8.dims(), [2, 1, 8, 8]);
        assert!(max_diff(at8.clone(), downsample2x(x.clone())) < 1e-6);
        // alpha 0 at level 2: the 8x8 images shown at 16x16; alpha 1: the images themselves.
        let start = fade_reals(
            x.clone(),
            Level {
                level: 2,
                alpha: 0.0,
            },
        );
        assert!(max_diff(start, upsample2x(at8)) < 1e-6);
        assert_eq!(max_diff(fade_reals(x.clone(), Level::stable(2)), x), 0.0);
    }
}
