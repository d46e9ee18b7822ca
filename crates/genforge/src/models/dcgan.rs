//! DCGAN (Radford et al. 2016) with the DCGAN/SAGAN article's layer tables. At 64x64, `z_dim = 20`, width 64:
//!
//! | G layer | op                               | output            |
//! |---------|----------------------------------|-------------------|
//! | layer1  | ConvT(20, 512, k4, s1) BN ReLU   | [b, 512, 4, 4]    |
//! | layer2  | ConvT(512, 256, k4, s2, p1) BN ReLU | [b, 256, 8, 8] |
//! | layer3  | ConvT(256, 128, k4, s2, p1) BN ReLU | [b, 128, 16, 16] |
//! | layer4  | ConvT(128, 64, k4, s2, p1) BN ReLU  | [b, 64, 32, 32]  |
//! | last    | ConvT(64, 1, k4, s2, p1) Tanh    | [b, 1, 64, 64]    |
//!
//! | D layer | op                                    | output          |
//! |---------|---------------------------------------|-----------------|
//! | layer1  | Conv(1, 64, k4, s2, p1) LeakyReLU(0.1)  | [b, 64, 32, 32] |
//! | layer2  | Conv(64, 128, k4, s2, p1) LeakyReLU   | [b, 128, 16, 16]|
//! | layer3  | Conv(128, 256, k4, s2, p1) LeakyReLU  | [b, 256, 8, 8]  |
//! | layer4  | Conv(256, 512, k4, s2, p1) LeakyReLU  | [b, 512, 4, 4]  |
//! | last    | Conv(512, 1, k4, s1)                  | [b, 1, 1, 1]    |
//!
//! Other resolutions add or drop stride-2 layers (32: three hidden G layers, 128: five), keeping
//! `width` channels next to the image and doubling towards 4x4. Conv weights N(0, 0.02), biases
//! 0; BatchNorm weight N(1, 0.02), bias 0 (the DCGAN/SAGAN article's `weights_init`). D has no BatchNorm.
//! With `spectral_norm` (SAGAN) every conv but G's and D's `last` is spectrally normalized, and
//! self-attention follows the layers whose resolutions are listed.

use crate::nn::activation::leaky_relu;
use crate::nn::activation::relu;
use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::tensor::activation::tanh;
use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::nn::{Conv2d, ConvTranspose2d, SelfAttention, batch_norm, init};
use crate::rng::Rng;
use crate::{Error, Result};

/// `model.*` keys of `family = "dcgan"`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DcganConfig {
    /// Latent size (the article: 20).
    pub z_dim: usize,
    /// The article's `image_size` argument (64): G's last hidden layer and D's first layer,
    /// doubling towards 4x4.
    pub width: usize,
    /// Image channels: 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Output side: 32, 64 or 128.
    pub resolution: usize,
}

impl Default for DcganConfig {
    fn default() -> Self {
        DcganConfig {
            z_dim: 20,
            width: 64,
            channels: 1,
            resolution: 64,
        }
    }
}

impl DcganConfig {
    pub fn validate(&self) -> Result<()> {
        if ![32, 64, 128].contains(&self.resolution) {
            return Err(Error::Config(format!(
                "model.resolution must be 32, 64 or 128, got {}",
                self.resolution
            )));
        }
        super::check_channels(self.channels)?;
        if self.z_dim == 0 || self.width == 0 {
            return Err(Error::Config(
                "model.z_dim and model.width must be positive".into(),
            ));
        }
        Ok(())
    }

    pub fn backbone(&self) -> Backbone {
        Backbone {
            z_dim: self.z_dim,
            width: self.width,
            channels: self.channels,
            resolution: self.resolution,
            spectral_norm: false,
            g_attention: Vec::new(),
            d_attention: Vec::new(),
        }
    }
}

/// What the convolutional backbone is built from: DCGAN's keys, plus SAGAN's spectral norm and
/// attention placement.
#[derive(Clone, Debug, PartialEq)]
pub struct Backbone {
    pub z_dim: usize,
    pub width: usize,
    pub channels: usize,
    pub resolution: usize,
    pub spectral_norm: bool,
    /// Resolutions of G's hidden layers followed by self-attention.
    pub g_attention: Vec<usize>,
    /// Resolutions of D's layers followed by self-attention.
    pub d_attention: Vec<usize>,
}

/// LeakyReLU slope of the DCGAN/SAGAN article's discriminator.
pub const LEAKY_SLOPE: f64 = 0.1;

fn hidden_layers(resolution: usize) -> usize {
    resolution.trailing_zeros() as usize - 2
}

/// Output resolution of each hidden G layer: 4, 8, ... resolution / 2.
pub fn generator_resolutions(resolution: usize) -> Vec<usize> {
    (0..hidden_layers(resolution)).map(|i| 4 << i).collect()
}

/// Output resolution of each hidden D layer: resolution / 2, ... 4.
pub fn discriminator_resolutions(resolution: usize) -> Vec<usize> {
    (0..hidden_layers(resolution))
        .map(|i| resolution >> (i + 1))
        .collect()
}

#[derive(Module, Debug)]
pub struct GeneratorBlock {
    pub conv: ConvTranspose2d,
    pub bn: BatchNorm,
    pub attention: Option<SelfAttention>,
}

#[derive(Module, Debug)]
pub struct Generator {
    pub blocks: Vec<GeneratorBlock>,
    pub last: ConvTranspose2d,
    pub z_dim: usize,
}

/// A forward pass's images and the attention maps of its self-attention layers, in order.
pub struct Output {
    pub images: Tensor<4>,
    pub attention: Vec<Tensor<3>>,
}

impl Generator {
    pub fn new(cfg: &Backbone, rng: &mut Rng, device: &Device) -> Self {
        let sagan = cfg.spectral_norm;
        let n = hidden_layers(cfg.resolution);
        let res = generator_resolutions(cfg.resolution);
        let mut blocks = Vec::with_capacity(n);
        let mut cin = cfg.z_dim;
        for (i, &r) in res.iter().enumerate() {
            let cout = cfg.width << (n - 1 - i);
            let (stride, pad) = if i == 0 { (1, 0) } else { (2, 1) };
            let mut bn = BatchNormConfig::new(cout).init(device);
            bn.gamma = init::normal([cout], 1.0, 0.02, rng, device);
            blocks.push(GeneratorBlock {
                conv: ConvTranspose2d::new([cin, cout], 4, stride, pad, sagan, rng, device),
                bn,
                attention: (sagan && cfg.g_attention.contains(&r))
                    .then(|| SelfAttention::new(cout, rng, device)),
            });
            cin = cout;
        }
        let last = ConvTranspose2d::new([cin, cfg.channels], 4, 2, 1, false, rng, device);
        Generator {
            blocks,
            last,
            z_dim: cfg.z_dim,
        }
    }

    /// `[b, z_dim] -> [b, channels, res, res]` in [-1, 1].
    pub fn forward(&self, z: Tensor<2>) -> Output {
        let [b, zd] = z.dims();
        let mut x = z.reshape([b, zd, 1, 1]); // [b, z, 1, 1]
        let mut attention = Vec::new();
        for block in &self.blocks {
            x = relu(batch_norm::forward(&block.bn, block.conv.forward(x), None)); // [b, c_i, 4 * 2^i, ...]
            if let Some(sa) = &block.attention {
                let (y, map) = sa.forward(x);
                x = y;
                attention.push(map);
            }
        }
        Output {
            images: tanh(self.last.forward(x)),
            attention,
        }
    }
}

#[derive(Module, Debug)]
pub struct DiscriminatorBlock {
    pub conv: Conv2d,
    pub attention: Option<SelfAttention>,
}

#[derive(Module, Debug)]
pub struct Discriminator {
    pub blocks: Vec<DiscriminatorBlock>,
    pub last: Conv2d,
}

/// Logits and attention maps of a discriminator pass.
pub struct Logits {
    /// `[b]`
    pub logits: Tensor<1>,
    pub attention: Vec<Tensor<3>>,
}

impl Discriminator {
    pub fn new(cfg: &Backbone, rng: &mut Rng, device: &Device) -> Self {
        let sagan = cfg.spectral_norm;
        let mut blocks = Vec::new();
        let mut cin = cfg.channels;
        for (i, &r) in discriminator_resolutions(cfg.resolution).iter().enumerate() {
            let cout = cfg.width << i;
            blocks.push(DiscriminatorBlock {
                conv: Conv2d::new([cin, cout], 4, 2, 1, sagan, rng, device),
                attention: (sagan && cfg.d_attention.contains(&r))
                    .then(|| SelfAttention::new(cout, rng, device)),
            });
            cin = cout;
        }
        let last = Conv2d::new([cin, 1], 4, 1, 0, false, rng, device);
        Discriminator { blocks, last }
    }

    /// `[b, channels, res, res] -> [b]` logits.
    pub fn forward(&self, x: Tensor<4>) -> Logits {
        let mut x = x;
        let mut attention = Vec::new();
        for block in &self.blocks {
            x = leaky_relu(block.conv.forward(x), LEAKY_SLOPE); // [b, width * 2^i, res / 2^(i+1), ...]
            if let Some(sa) = &block.attention {
                let (y, map) = sa.forward(x);
                x = y;
                attention.push(map);
            }
        }
        let out = self.last.forward(x); // [b, 1, 1, 1]
        let b = out.dims()[0];
        Logits {
            logits: out.reshape([b]),
            attention,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_cfg(sagan: bool) -> Backbone {
        if sagan {
            crate::models::sagan::SaganConfig::default().backbone()
        } else {
            DcganConfig::default().backbone()
        }
    }

    #[test]
    fn generator_layer_shapes_follow_the_seed_table() {
        let device = Device::flex();
        let g = Generator::new(&seed_cfg(false), &mut Rng::new(0), &device);
        let mut x = Tensor::<4>::zeros([2, 20, 1, 1], &device);
        let want = [
            [2, 512, 4, 4],
            [2, 256, 8, 8],
            [2, 128, 16, 16],
            [2, 64, 32, 32],
        ];
        for (block, w) in g.blocks.iter().zip(want) {
            x = block.conv.forward(x);
            assert_eq!(x.dims(), w);
        }
        assert_eq!(g.last.forward(x).dims(), [2, 1, 64, 64]);
        let out = g.forward(Tensor::zeros([3, 20], &device));
        assert_eq!(out.images.dims(), [3, 1, 64, 64]);
        assert!(out.attention.is_empty());
    }

    #[test]
    fn discriminator_layer_shapes_follow_the_seed_table() {
        let device = Device::flex();
        let d = Discriminator::new(&seed_cfg(false), &mut Rng::new(0), &device);
        let mut x = Tensor::<4>::zeros([2, 1, 64, 64], &device);
        let want = [
            [2, 64, 32, 32],
            [2, 128, 16, 16],
            [2, 256, 8, 8],
            [2, 512, 4, 4],
        ];
        for (block, w) in d.blocks.iter().zip(want) {
            x = block.conv.forward(x);
            assert_eq!(x.dims(), w);
        }
        assert_eq!(d.last.forward(x).dims(), [2, 1, 1, 1]);
        assert_eq!(
            d.forward(Tensor::zeros([5, 1, 64, 64], &device))
                .logits
                .dims(),
            [5]
        );
    }

    #[test]
    fn sagan_attention_sits_after_layers_3_and_4() {
        let device = Device::flex();
        let cfg = seed_cfg(true);
        let g = Generator::new(&cfg, &mut Rng::new(0), &device);
        let has: Vec<bool> = g.blocks.iter().map(|b| b.attention.is_some()).collect();
        assert_eq!(has, [false, false, true, true]);
        assert!(g.blocks.iter().all(|b| b.conv.sn.is_some()) && g.last.sn.is_none());
        let out = g.forward(Tensor::zeros([2, 20], &device));
        assert_eq!(out.attention[0].dims(), [2, 256, 256]); // 16x16 positions
        assert_eq!(out.attention[1].dims(), [2, 1024, 1024]); // 32x32
        let d = Discriminator::new(&cfg, &mut Rng::new(0), &device);
        let has: Vec<bool> = d.blocks.iter().map(|b| b.attention.is_some()).collect();
        assert_eq!(has, [false, false, true, true]);
        assert!(d.blocks.iter().all(|b| b.conv.sn.is_some()) && d.last.sn.is_none());
        let out = d.forward(Tensor::zeros([2, 1, 64, 64], &device));
        assert_eq!(out.attention[0].dims(), [2, 64, 64]); // 8x8
        assert_eq!(out.attention[1].dims(), [2, 16, 16]); // 4x4
    }

    #[test]
    fn other_resolutions_and_channels() {
        let device = Device::flex();
        for (res, layers) in [(32, 3), (128, 5)] {
            let cfg = DcganConfig {
                resolution: res,
                channels: 3,
                width: 8,
                ..DcganConfig::default()
            }
            .backbone();
            let g = Generator::new(&cfg, &mut Rng::new(0), &device);
            assert_eq!(g.blocks.len(), layers);
            let img = g.forward(Tensor::zeros([1, 20], &device)).images;
            assert_eq!(img.dims(), [1, 3, res, res]);
            let d = Discriminator::new(&cfg, &mut Rng::new(0), &device);
            assert_eq!(d.forward(img).logits.dims(), [1]);
        }
    }

    #[test]
    fn init_statistics_match_weights_init() {
        let device = Device::flex();
        let g = Generator::new(&seed_cfg(false), &mut Rng::new(0), &device);
        let w = g.blocks[1]
            .conv
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let mean = w.iter().sum::<f32>() / w.len() as f32;
        let std = (w.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / w.len() as f32).sqrt();
        assert!(
            mean.abs() < 1e-3 && (std - 0.02).abs() < 1e-3,
            "{mean} {std}"
        );
        let gamma = g.blocks[1]
            .bn
            .gamma
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let gm = gamma.iter().sum::<f32>() / gamma.len() as f32;
        assert!((gm - 1.0).abs() < 0.01, "{gm}");
    }
}
