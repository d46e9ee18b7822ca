//! ViTGAN (Lee et al. 2021; the ViTGAN article and paper review): a Vision-Transformer generator with
//! Self-Modulated LayerNorm and a SIREN patch decoder, and a ViT discriminator with overlapping
//! patches, L2 self-attention and Improved Spectral Normalization on every layer.

use crate::nn::activation::{add, gelu};
use burn::module::{Module, Param};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};

use serde::{Deserialize, Serialize};

use crate::models::stylegan2::Stylegan2Config;
use crate::nn::diff_augment::Policy;
use crate::nn::equalized::{EqualizedLinear, EqualizedOpts};
use crate::nn::init;
use crate::nn::layer_norm::{LayerNorm, SelfModulatedLayerNorm};
pub use crate::nn::mapping::{LRELU_GAIN, MAPPING_LR_MULTIPLIER, MappingNetwork};
use crate::nn::multi_head_attention::MultiHeadAttention;
use crate::nn::siren::{Lff, Siren, patch_coords};
use crate::nn::spectral_norm::ImprovedSpectralNorm;
use crate::rng::Rng;
use crate::{Error, Result};

/// `model.*` keys of `family = "vitgan"` (defaults: the reference CIFAR-10 settings).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct VitganConfig {
    pub z_dim: usize,
    pub channels: usize,
    pub resolution: usize,
    /// Patch side in pixels (4; D's overlapping patches are twice as wide).
    pub patch: usize,
    /// Transformer width of G and D, also the SIREN width and `w` size (384).
    pub hidden: usize,
    /// Transformer blocks in G and in D (4).
    pub depth: usize,
    /// Attention heads (4).
    pub heads: usize,
    /// MLP expansion of the transformer blocks (4).
    pub mlp_ratio: usize,
    /// Layers of the `z -> w` mapping network (8).
    pub mapping_layers: usize,
    /// Add a linear map of `z`, one vector per patch, to G's positional input (TransGAN's
    /// generator input; off: the paper's design, where `z` enters only through SLN).
    pub latent_tokens: bool,
    /// SIREN hidden sine layers after the first (1).
    pub siren_layers: usize,
    /// Demodulate the SIREN's modulated weights (off).
    pub demodulation: bool,
    /// DiffAugment policy for D's inputs ("color,translation,cutout").
    pub diffaugment: String,
    /// D's Lipschitz and generalisation parts, each switchable for the paper's ablations (all
    /// on in ViTGAN): ISN on every D weight, L2 attention (else dot product), overlapping
    /// patches (kernel 2p; else p).
    pub d_isn: bool,
    pub d_l2_attention: bool,
    pub d_overlap: bool,
    /// The discriminator: `vit` (ViTGAN's) or `stylegan2` (NVlabs' StyleGAN2 resnet D, the
    /// pairing of the paper's "compatibility with CNN-based GAN" study, its best CIFAR-10 FID).
    pub discriminator: DiscriminatorKind,
    /// StyleGAN2 D: channels `min(d_channel_base / res, d_channel_max)` at each resolution, and
    /// its minibatch standard deviation group.
    pub d_channel_base: usize,
    pub d_channel_max: usize,
    pub d_mbstd_group: usize,
}

/// `model.discriminator` of a ViTGAN.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum DiscriminatorKind {
    #[default]
    Vit,
    Stylegan2,
}

impl Default for VitganConfig {
    fn default() -> Self {
        VitganConfig {
            z_dim: 32,
            channels: 3,
            resolution: 32,
            patch: 4,
            hidden: 384,
            depth: 4,
            heads: 4,
            mlp_ratio: 4,
            mapping_layers: 8,
            latent_tokens: false,
            siren_layers: 1,
            demodulation: false,
            diffaugment: "color,translation,cutout".into(),
            d_isn: true,
            d_l2_attention: true,
            d_overlap: true,
            discriminator: DiscriminatorKind::Vit,
            d_channel_base: 512,
            d_channel_max: 128,
            d_mbstd_group: 4,
        }
    }
}

impl VitganConfig {
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(msg));
        super::check_channels(self.channels)?;
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
        if self.discriminator == DiscriminatorKind::Stylegan2 {
            // Named as this family's keys: the StyleGAN2 checks would name StyleGAN2's.
            let r = self.resolution;
            if !(8..=1024).contains(&r) || !r.is_power_of_two() {
                return bad(format!(
                    "model.discriminator = \"stylegan2\" needs model.resolution to be a power of \
                     two from 8 to 1024, got {r}"
                ));
            }
            if self.d_channel_max == 0 || self.d_channel_base < r / 2 || self.d_mbstd_group == 0 {
                return bad(format!(
                    "model.d_channel_base ({}) must be at least resolution / 2 ({}), and \
                     model.d_channel_max and model.d_mbstd_group positive",
                    self.d_channel_base,
                    r / 2
                ));
            }
        }
        Ok(())
    }

    /// The StyleGAN2 discriminator's config for `discriminator = "stylegan2"`.
    pub fn stylegan2_d(&self) -> Stylegan2Config {
        Stylegan2Config {
            channels: self.channels,
            resolution: self.resolution,
            channel_base: self.d_channel_base,
            channel_max: self.d_channel_max,
            mbstd_group: self.d_mbstd_group,
            ..Stylegan2Config::default()
        }
    }
}

/// Transformer MLP: `d -> ratio * d -> d` with GELU.
#[derive(Module, Debug)]
pub struct FeedForward {
    pub fc1: EqualizedLinear,
    pub fc2: EqualizedLinear,
}

impl FeedForward {
    fn new(d: usize, ratio: usize, isn: bool, rng: &mut Rng, device: &Device) -> Self {
        let opts = EqualizedOpts {
            isn,
            ..Default::default()
        };
        FeedForward {
            fc1: EqualizedLinear::new([d, ratio * d], opts, rng, device),
            fc2: EqualizedLinear::new([ratio * d, d], opts, rng, device),
        }
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.fc2.forward(gelu(self.fc1.forward(x)))
    }
}

/// Generator block: `h += MSA(SLN(h, w)); h += MLP(SLN(h, w))`.
#[derive(Module, Debug)]
pub struct GeneratorBlock {
    pub sln1: SelfModulatedLayerNorm,
    pub attn: MultiHeadAttention,
    pub sln2: SelfModulatedLayerNorm,
    pub mlp: FeedForward,
}

impl GeneratorBlock {
    /// `[b, n, d], [b, d] -> [b, n, d]`, with the attention weights `[b, heads, n, n]`.
    pub fn forward(&self, h: Tensor<3>, w: Tensor<2>) -> (Tensor<3>, Tensor<4>) {
        let a = self.attn.forward(self.sln1.forward(h.clone(), w.clone()));
        let h = add(h, a.out);
        let h = add(h.clone(), self.mlp.forward(self.sln2.forward(h, w)));
        (h, a.weights)
    }
}

/// Generated images and the generator's attention weights, one `[b, heads, n, n]` per block.
pub struct Output {
    pub images: Tensor<4>,
    pub attention: Vec<Tensor<4>>,
}

#[derive(Module, Debug)]
pub struct Generator {
    pub mapping: MappingNetwork,
    /// `[patches, d]`, passed through `sin` (the ViTGAN article's learnable positional input).
    pub pos_emb: Param<Tensor<2>>,
    /// `z -> [patches * d]` (`model.latent_tokens`), added to the positional input.
    pub latent_tokens: Option<EqualizedLinear>,
    pub blocks: Vec<GeneratorBlock>,
    /// SLN on the transformer output, giving the patch embeddings (styles of the SIREN).
    pub sln_out: SelfModulatedLayerNorm,
    pub lff: Lff,
    pub siren: Siren,
    pub patch: usize,
    pub channels: usize,
    pub resolution: usize,
}

impl Generator {
    pub fn new(cfg: &VitganConfig, rng: &mut Rng, device: &Device) -> Self {
        let d = cfg.hidden;
        let n = (cfg.resolution / cfg.patch).pow(2);
        let blocks = (0..cfg.depth)
            .map(|_| GeneratorBlock {
                sln1: SelfModulatedLayerNorm::new(d, d, rng, device),
                attn: MultiHeadAttention::new(d, cfg.heads, false, false, rng, device),
                sln2: SelfModulatedLayerNorm::new(d, d, rng, device),
                mlp: FeedForward::new(d, cfg.mlp_ratio, false, rng, device),
            })
            .collect();
        let mut g = Generator {
            mapping: MappingNetwork::new(cfg.z_dim, d, cfg.mapping_layers, rng, device),
            pos_emb: init::normal([n, d], 0.0, 1.0, rng, device),
            latent_tokens: None,
            blocks,
            sln_out: SelfModulatedLayerNorm::new(d, d, rng, device),
            lff: Lff::new(d, rng, device),
            siren: Siren::new(
                d,
                cfg.siren_layers,
                cfg.channels,
                cfg.demodulation,
                rng,
                device,
            ),
            patch: cfg.patch,
            channels: cfg.channels,
            resolution: cfg.resolution,
        };
        // Drawn last, so the other weights of a seed do not depend on the switch.
        g.latent_tokens = cfg.latent_tokens.then(|| {
            EqualizedLinear::new([cfg.z_dim, n * d], EqualizedOpts::default(), rng, device)
        });
        g
    }

    pub fn device(&self) -> Device {
        self.pos_emb.val().device()
    }

    /// The transformer's input tokens: `sin(E_pos)`, the same for every sample, plus a linear
    /// map of `z` per patch with `model.latent_tokens`. `[b, z_dim] -> [b, n, d]`
    pub fn input_tokens(&self, z: Tensor<2>) -> Tensor<3> {
        let b = z.dims()[0];
        let [n, d] = self.pos_emb.dims();
        let pos = self.pos_emb.val().sin().unsqueeze::<3>().repeat_dim(0, b); // [b, n, d]
        match &self.latent_tokens {
            Some(proj) => pos + proj.forward(z).reshape([b, n, d]),
            None => pos,
        }
    }

    /// `[b, z_dim] -> [b, c, res, res]`
    pub fn forward(&self, z: Tensor<2>) -> Output {
        let b = z.dims()[0];
        let [n, d] = self.pos_emb.dims();
        let mut h = self.input_tokens(z.clone()); // [b, n, d]
        let w = self.mapping.forward(z); // [b, d]
        let mut attention = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let (out, a) = block.forward(h, w.clone());
            h = out;
            attention.push(a);
        }
        let styles = self.sln_out.forward(h, w).reshape([b * n, d]); // [b*n, d]
        let features = self.lff.forward(patch_coords(self.patch, &styles.device())); // [p*p, d]
        let pixels = self.siren.forward(features, styles); // [b*n, p*p, c]
        Output {
            images: patches_to_image(pixels, b, self.resolution / self.patch, self.patch),
            attention,
        }
    }
}

/// `[b * g * g, p * p, c] -> [b, c, g * p, g * p]`: patch `(r, col)` pixel `(i, j)` (index
/// `i * p + j`) lands at image row `r * p + i`, column `col * p + j` (the ViTGAN article's permutation).
pub fn patches_to_image(x: Tensor<3>, b: usize, g: usize, p: usize) -> Tensor<4> {
    let c = x.dims()[2];
    x.reshape([b, g, g, p, p, c])
        .permute([0, 5, 1, 3, 2, 4]) // [b, c, r, i, col, j]
        .reshape([b, c, g * p, g * p])
}

/// Overlapping patch embedding: a conv with kernel `2p`, stride `p`, padding `p/2` (each patch
/// sees `p/2` pixels of its neighbours on every side; kernel `p`, no padding without overlap),
/// a class token and positional embedding.
#[derive(Module, Debug)]
pub struct PatchEmbedding {
    /// `[d, c, 2p, 2p]`, unit scale (equalized: times `1 / sqrt(c * 4p^2)`).
    pub weight: Param<Tensor<4>>,
    pub bias: Param<Tensor<1>>,
    pub isn: Option<ImprovedSpectralNorm>,
    pub cls: Param<Tensor<3>>,
    /// `[tokens + 1, d]`, through `sin` as the ViTGAN article's discriminator.
    pub pos: Param<Tensor<2>>,
    pub patch: usize,
    pub gain: f64,
}

/// Kernel and padding of D's patch embedding.
fn patch_kernel(patch: usize, overlap: bool) -> (usize, usize) {
    if overlap {
        (2 * patch, patch / 2)
    } else {
        (patch, 0)
    }
}

/// Tokens of D's patch grid for a square image.
pub fn discriminator_tokens(resolution: usize, patch: usize, overlap: bool) -> usize {
    let (k, pad) = patch_kernel(patch, overlap);
    let side = (resolution + 2 * pad - k) / patch + 1;
    side * side
}

impl PatchEmbedding {
    fn new(cfg: &VitganConfig, rng: &mut Rng, device: &Device) -> Self {
        let (d, c) = (cfg.hidden, cfg.channels);
        let (k, _) = patch_kernel(cfg.patch, cfg.d_overlap);
        let weight = init::normal([d, c, k, k], 0.0, 1.0, rng, device);
        let gain = 1.0 / ((c * k * k) as f64).sqrt();
        let isn = cfg.d_isn.then(|| {
            ImprovedSpectralNorm::new(&(weight.val().reshape([d, c * k * k]) * gain), device)
        });
        let n = discriminator_tokens(cfg.resolution, cfg.patch, cfg.d_overlap);
        PatchEmbedding {
            weight,
            bias: init::zeros([d], device),
            isn,
            cls: init::normal([1, 1, d], 0.0, 1.0, rng, device),
            pos: init::normal([n + 1, d], 0.0, 1.0, rng, device),
            patch: cfg.patch,
            gain,
        }
    }

    /// `[b, c, h, w] -> [b, 1 + tokens, d]`
    fn forward(&self, x: Tensor<4>) -> Tensor<3> {
        let b = x.dims()[0];
        let [d, c, k, _] = self.weight.dims();
        let w = self.weight.val().reshape([d, c * k * k]) * self.gain;
        let w = match &self.isn {
            Some(isn) => isn.normalize(w),
            None => w,
        }
        .reshape([d, c, k, k]);
        let p = self.patch;
        let pad = (k - p) / 2; // p/2 with overlap, else 0
        let t = conv2d(
            x,
            w,
            Some(self.bias.val()),
            ConvOptions::new([p, p], [pad, pad], [1, 1], 1),
        ); // [b, d, g, g]
        let [_, _, gh, gw] = t.dims();
        let t = t.reshape([b, d, gh * gw]).swap_dims(1, 2); // [b, tokens, d]
        let cls = self.cls.val().repeat_dim(0, b); // [b, 1, d]
        Tensor::cat(vec![cls, t], 1) + self.pos.val().sin().unsqueeze::<3>()
    }
}

/// Discriminator block: `h += MSA_L2(LN(h)); h += MLP(LN(h))`, every linear under ISN.
#[derive(Module, Debug)]
pub struct DiscriminatorBlock {
    pub ln1: LayerNorm,
    pub attn: MultiHeadAttention,
    pub ln2: LayerNorm,
    pub mlp: FeedForward,
}

/// `[b]` logits and D's attention weights, one `[b, heads, 1 + n, 1 + n]` per block.
pub struct Logits {
    pub logits: Tensor<1>,
    pub attention: Vec<Tensor<4>>,
}

#[derive(Module, Debug)]
pub struct Discriminator {
    pub embed: PatchEmbedding,
    pub blocks: Vec<DiscriminatorBlock>,
    pub ln_out: LayerNorm,
    pub head: EqualizedLinear,
}

impl Discriminator {
    pub fn new(cfg: &VitganConfig, rng: &mut Rng, device: &Device) -> Self {
        let d = cfg.hidden;
        let blocks = (0..cfg.depth)
            .map(|_| DiscriminatorBlock {
                ln1: LayerNorm::new(d, device),
                attn: MultiHeadAttention::new(
                    d,
                    cfg.heads,
                    cfg.d_l2_attention,
                    cfg.d_isn,
                    rng,
                    device,
                ),
                ln2: LayerNorm::new(d, device),
                mlp: FeedForward::new(d, cfg.mlp_ratio, cfg.d_isn, rng, device),
            })
            .collect();
        let isn = EqualizedOpts {
            isn: cfg.d_isn,
            ..Default::default()
        };
        Discriminator {
            embed: PatchEmbedding::new(cfg, rng, device),
            blocks,
            ln_out: LayerNorm::new(d, device),
            head: EqualizedLinear::new([d, 1], isn, rng, device),
        }
    }

    /// `[b, c, h, w] -> [b]` (the class token's logit).
    pub fn forward(&self, x: Tensor<4>) -> Logits {
        let b = x.dims()[0];
        let mut h = self.embed.forward(x); // [b, 1 + n, d]
        let mut attention = Vec::with_capacity(self.blocks.len());
        for block in &self.blocks {
            let a = block.attn.forward(block.ln1.forward(h.clone()));
            h = add(h, a.out);
            h = add(h.clone(), block.mlp.forward(block.ln2.forward(h)));
            attention.push(a.weights);
        }
        let d = h.dims()[2];
        let cls = self.ln_out.forward(h.slice([0..b, 0..1, 0..d])); // [b, 1, d]
        Logits {
            logits: self.head.forward(cls).reshape([b]),
            attention,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    fn tiny() -> VitganConfig {
        VitganConfig {
            z_dim: 8,
            channels: 3,
            resolution: 16,
            patch: 4,
            hidden: 16,
            depth: 2,
            heads: 2,
            mapping_layers: 2,
            ..Default::default()
        }
    }

    #[test]
    fn patch_pixel_lands_at_row_r_p_plus_i_column_c_p_plus_j() {
        let device = Device::flex();
        let (b, g, p, c) = (2, 3, 4, 2);
        // Value encodes (sample, patch row, patch col, i, j, channel).
        let code = |s: usize, r: usize, col: usize, i: usize, j: usize, ch: usize| {
            (((((s * 10 + r) * 10 + col) * 10 + i) * 10 + j) * 10 + ch) as f32
        };
        let mut v = Vec::new();
        for s in 0..b {
            for r in 0..g {
                for col in 0..g {
                    for i in 0..p {
                        for j in 0..p {
                            for ch in 0..c {
                                v.push(code(s, r, col, i, j, ch));
                            }
                        }
                    }
                }
            }
        }
        let x = Tensor::<3>::from_data(TensorData::new(v, [b * g * g, p * p, c]), &device);
        let img = patches_to_image(x, b, g, p);
        assert_eq!(img.dims(), [b, c, g * p, g * p]);
        let img = img.into_data().try_to_vec::<f32>().unwrap();
        let side = g * p;
        for s in 0..b {
            for r in 0..g {
                for col in 0..g {
                    for i in 0..p {
                        for j in 0..p {
                            for ch in 0..c {
                                let at = ((s * c + ch) * side + r * p + i) * side + col * p + j;
                                assert_eq!(img[at], code(s, r, col, i, j, ch));
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn generator_and_discriminator_shapes() {
        let device = Device::flex();
        let cfg = tiny();
        let mut rng = Rng::new(13);
        let g = Generator::new(&cfg, &mut rng, &device);
        let d = Discriminator::new(&cfg, &mut rng, &device);
        let z = Tensor::<2>::from_data(
            TensorData::new(rng.normal_vec(3 * 8, 0.0, 1.0), [3, 8]),
            &device,
        );
        let out = g.forward(z);
        assert_eq!(out.images.dims(), [3, 3, 16, 16]);
        assert_eq!(out.attention.len(), 2);
        assert_eq!(out.attention[0].dims(), [3, 2, 16, 16]);
        let logits = d.forward(out.images);
        assert_eq!(logits.logits.dims(), [3]);
        // 16x16 with patch 4: a 4x4 grid of overlapping 8x8 patches plus the class token.
        assert_eq!(discriminator_tokens(16, 4, true), 16);
        assert_eq!(discriminator_tokens(16, 4, false), 16);
        assert_eq!(logits.attention[0].dims(), [3, 2, 17, 17]);
    }

    #[test]
    fn ablation_switches_remove_each_part_of_d() {
        let device = Device::flex();
        let mut rng = Rng::new(14);
        let x = Tensor::<4>::from_data(
            TensorData::new(rng.normal_vec(2 * 3 * 16 * 16, 0.0, 1.0), [2, 3, 16, 16]),
            &device,
        );
        let full = Discriminator::new(&tiny(), &mut rng, &device);
        assert!(full.embed.isn.is_some() && full.head.isn.is_some());
        assert!(
            full.blocks
                .iter()
                .all(|b| b.attn.l2 && b.mlp.fc1.isn.is_some())
        );
        assert_eq!(full.embed.weight.dims()[2], 8);
        let cfg = VitganConfig {
            d_isn: false,
            d_l2_attention: false,
            d_overlap: false,
            ..tiny()
        };
        let d = Discriminator::new(&cfg, &mut rng, &device);
        assert!(d.embed.isn.is_none() && d.head.isn.is_none());
        for b in &d.blocks {
            assert!(!b.attn.l2 && b.attn.qkv.isn.is_none() && b.mlp.fc2.isn.is_none());
        }
        // Without overlap the patch conv is 4x4: still a 4x4 grid plus the class token.
        assert_eq!(d.embed.weight.dims()[2], 4);
        let out = d.forward(x);
        assert_eq!(out.logits.dims(), [2]);
        assert_eq!(out.attention[0].dims(), [2, 2, 17, 17]);
    }

    #[test]
    fn stylegan2_discriminator_pairs_with_the_vitgan_generator() {
        use crate::models::{Discriminator as AnyD, ModelConfig};
        let device = Device::flex();
        let cfg = VitganConfig {
            discriminator: DiscriminatorKind::Stylegan2,
            d_channel_base: 64,
            d_channel_max: 16,
            ..tiny()
        };
        cfg.validate().unwrap();
        let (g, d) = ModelConfig::Vitgan(cfg.clone())
            .init_gan(false, &mut Rng::new(3), &device)
            .unwrap();
        let AnyD::Style2(inner) = &d else {
            panic!("expected StyleGAN2's D")
        };
        // 16x16 -> 8x8 -> 4x4 epilogue, widths min(64 / res, 16).
        assert_eq!(inner.blocks.len(), 2);
        let z = crate::sample::latents(4, cfg.z_dim, 1, &device);
        let x = g.forward(z, None);
        assert_eq!(d.forward(x, None).dims(), [4]);
        let bad = VitganConfig {
            resolution: 24,
            patch: 4,
            ..cfg.clone()
        };
        let msg = bad.validate().unwrap_err().to_string();
        assert!(msg.contains("power of"), "{msg}");
        let bad = VitganConfig {
            d_channel_base: 4,
            ..cfg
        };
        let msg = bad.validate().unwrap_err().to_string();
        assert!(msg.contains("model.d_channel_base"), "{msg}");
    }

    #[test]
    fn latent_tokens_add_one_map_of_z_per_patch_to_the_positional_input() {
        let device = Device::flex();
        let (b, z_dim, n, d) = (3, 8, 16, 16);
        let on = VitganConfig {
            latent_tokens: true,
            ..tiny()
        };
        let g = Generator::new(&on, &mut Rng::new(21), &device);
        let plain = Generator::new(&tiny(), &mut Rng::new(21), &device);
        let z = Tensor::<2>::from_data(
            TensorData::new(Rng::new(22).normal_vec(b * z_dim, 0.0, 1.0), [b, z_dim]),
            &device,
        );
        // Off: every sample gets the same sin(E_pos). The switch leaves the other weights alone.
        let pos = crate::testing::values(plain.pos_emb.val().sin());
        let shared = crate::testing::values(plain.input_tokens(z.clone()));
        assert_eq!(shared, pos.repeat(b));
        assert_eq!(crate::testing::values(g.pos_emb.val().sin()), pos);
        // On: token t of sample s adds rows t*d..(t+1)*d of the projection of z_s.
        let proj = g.latent_tokens.as_ref().unwrap();
        let w = crate::testing::values(proj.effective_weight()); // [n*d, z_dim]
        let bias = crate::testing::values(proj.bias.as_ref().unwrap().val());
        let zs = crate::testing::values(z.clone());
        let got = crate::testing::values(g.input_tokens(z.clone()));
        for s in 0..b {
            for t in 0..n {
                for k in 0..d {
                    let row = t * d + k;
                    let dot: f32 = (0..z_dim)
                        .map(|i| zs[s * z_dim + i] * w[row * z_dim + i])
                        .sum();
                    let want = pos[t * d + k] + dot + bias[row];
                    let at = (s * n + t) * d + k;
                    assert!(
                        (got[at] - want).abs() < 1e-4,
                        "[{s}, {t}, {k}]: {} vs {want}",
                        got[at]
                    );
                }
            }
        }
        assert_eq!(g.forward(z).images.dims(), [b, 3, 16, 16]);
    }

    #[test]
    fn initial_images_and_w_are_unit_order_and_depend_on_z() {
        // Guards the init scales: w must not vanish through the mapping layers, and the SIREN
        // output must start at pixel scale, not 100x below it.
        let device = Device::flex();
        let cfg = VitganConfig {
            hidden: 64,
            resolution: 32,
            mapping_layers: 8,
            ..tiny()
        };
        let mut rng = Rng::new(16);
        let g = Generator::new(&cfg, &mut rng, &device);
        let z = Tensor::<2>::from_data(
            TensorData::new(rng.normal_vec(4 * 8, 0.0, 1.0), [4, 8]),
            &device,
        );
        let w = g.mapping.forward(z.clone());
        let w_std = w.var(1).mean().sqrt().into_scalar::<f32>();
        assert!(w_std > 0.3 && w_std < 3.0, "w std {w_std}");
        let img = g.forward(z).images;
        let std = img.clone().var(0).mean().sqrt().into_scalar::<f32>();
        assert!(std > 0.05 && std < 3.0, "std across samples {std}");
        let spread = img
            .reshape([4, 3 * 32 * 32])
            .var(1)
            .mean()
            .sqrt()
            .into_scalar::<f32>();
        assert!(spread > 0.05 && spread < 3.0, "spatial std {spread}");
    }
}
