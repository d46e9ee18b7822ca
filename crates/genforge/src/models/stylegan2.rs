//! StyleGAN2 ("Analyzing and Improving the Image Quality of StyleGAN", Karras et al. 2020) as
//! NVlabs' stylegan2-ada-pytorch builds it (`training/networks.py`, "Training Generative
//! Adversarial Networks with Limited Data", Karras et al. 2020): the same layers, the same
//! constants and, through [`crate::import::stylegan2`], the same parameters, so its published
//! pickles load and reproduce its outputs.
//!
//! Generator. Mapping: `z` normalised by its second moment (and, when conditional, the class
//! embedding normalised the same way, concatenated), then `mapping_layers` fully connected layers
//! with leaky ReLU and learning-rate multiplier 0.01; `w_avg` is the centre of the truncation
//! trick `w_avg.lerp(w, psi)`. Synthesis, the `skip` architecture, one block per resolution:
//!
//! | block | layers                                  | ws used          | output          |
//! |-------|-----------------------------------------|------------------|-----------------|
//! | b4    | const, conv1, torgb                     | w0, w1 (torgb)   | [b, c4, 4, 4]   |
//! | b8    | conv0 (2x up), conv1, torgb             | w1, w2, w3       | [b, c8, 8, 8]   |
//! | b2^k  | same; `img = upsample2d(img) + torgb(x)`| w_{2k-5}..w_{2k-3} | [b, c, 2^k, 2^k] |
//!
//! Each toRGB shares its `w` with the next block's conv0, so a `2^k` network takes `2k - 2` ws.
//! Every conv is a modulated convolution (styles from an affine with bias 1, demodulation
//! `rsqrt(sum w^2 + 1e-8)`), then noise (`noise_strength` times a random or the stored
//! `noise_const` image), bias, leaky ReLU times `sqrt 2`, and the `conv_clamp` clip. Channels are
//! `min(channel_base / r, channel_max)`.
//!
//! Discriminator, the `resnet` architecture: fromRGB at the top resolution, then per resolution
//! down to 8x8 `conv0`, `conv1` with the FIR filter and stride 2, plus a 1x1 `skip` with the
//! same downsampling, both branches scaled by `sqrt(1/2)`; the 4x4 epilogue has minibatch
//! standard deviation, a conv, two fully connected layers and, when conditional, the projection
//! onto `cmap`, the class mapped by D's own mapping network.
//!
//! Everything runs in fp32 (NVlabs' `force_fp32=True`); `num_fp16_res` only speeds up their
//! GPU runs.

use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::nn::activation::leaky_relu;
use crate::nn::channel_affine::channel_affine;
use crate::nn::equalized::{EqualizedLinear, EqualizedOpts};
use crate::nn::gemm_conv::{conv_transpose2d_routed, conv2d_routed};
use crate::nn::mapping::normalize_2nd_moment;
use crate::nn::minibatch_stddev::minibatch_stddev;
use crate::nn::modulated_conv::{demodulation, modulate};
use crate::nn::noise::noise_image;
use crate::nn::upfirdn2d::{downsample2d, filter2d, upsample2d};
use crate::rng::Rng;
use crate::{Error, Result};

/// `bias_act`'s default gain for leaky ReLU.
const LRELU_GAIN: f64 = std::f64::consts::SQRT_2;
const SLOPE: f64 = 0.2;
/// The mapping network's learning-rate multiplier.
pub const MAPPING_LR_MULTIPLIER: f64 = 0.01;

/// `model.*` keys of `family = "stylegan2"` (defaults: NVlabs' FFHQ 1024 network).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Stylegan2Config {
    /// Size of `z` (512).
    pub z_dim: usize,
    /// Size of `w` (512).
    pub w_dim: usize,
    /// Classes the networks are conditioned on (NVlabs' `c_dim`; 0: unconditional).
    pub num_classes: usize,
    /// Layers of G's mapping network (8; NVlabs' `cifar` config uses 2).
    pub mapping_layers: usize,
    pub channels: usize,
    /// Output side, a power of two from 8 to 1024.
    pub resolution: usize,
    /// Feature maps at resolution r: `min(channel_base / r, channel_max)` (32768).
    pub channel_base: usize,
    /// (512)
    pub channel_max: usize,
    /// Clip of every conv layer's output (256; 0: none). Not of the D skip connections.
    pub conv_clamp: f64,
    /// Decay of the running average `w_avg` (0.995).
    pub w_avg_beta: f64,
    /// Minibatch standard deviation group size (4).
    pub mbstd_group: usize,
    /// Layers of D's mapping network for the class projection (8).
    pub d_mapping_layers: usize,
    /// Learning-rate multiplier of D's mapping network (0.01; TF StyleGAN2's D used 0.1).
    pub d_mapping_lr_multiplier: f64,
    /// Size of D's class projection (0: the channels at 4x4).
    pub cmap_dim: usize,
    /// D's blocks: `resnet` (NVlabs' default) or `orig` (no skip connections; their `cifar`
    /// config).
    pub d_architecture: DArchitecture,
    /// DiffAugment policy for D's inputs (not NVlabs'; empty: none).
    pub diffaugment: String,
}

impl Default for Stylegan2Config {
    fn default() -> Self {
        Stylegan2Config {
            z_dim: 512,
            w_dim: 512,
            num_classes: 0,
            mapping_layers: 8,
            channels: 3,
            resolution: 1024,
            channel_base: 32768,
            channel_max: 512,
            conv_clamp: 256.0,
            w_avg_beta: 0.995,
            mbstd_group: 4,
            d_mapping_layers: 8,
            d_mapping_lr_multiplier: MAPPING_LR_MULTIPLIER,
            cmap_dim: 0,
            d_architecture: DArchitecture::Resnet,
            diffaugment: String::new(),
        }
    }
}

/// `model.d_architecture` of a StyleGAN2.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum DArchitecture {
    /// `conv0`, `conv1` plus a 1x1 skip, both scaled by `sqrt(1/2)`.
    #[default]
    Resnet,
    /// `conv0`, `conv1` only.
    Orig,
}

impl DArchitecture {
    pub fn name(self) -> &'static str {
        match self {
            DArchitecture::Resnet => "resnet",
            DArchitecture::Orig => "orig",
        }
    }
}

impl Stylegan2Config {
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(msg));
        super::check_channels(self.channels)?;
        super::check_resolution_widths(self.resolution, self.channel_base / 2, self.channel_max)?;
        if self.z_dim == 0 || self.w_dim == 0 || self.mapping_layers == 0 {
            return bad(
                "model.z_dim, model.w_dim and model.mapping_layers must be positive".into(),
            );
        }
        if self.num_classes > 0 && self.d_mapping_layers == 0 {
            return bad("model.d_mapping_layers must be positive for a conditional D".into());
        }
        if !(self.d_mapping_lr_multiplier > 0.0 && self.d_mapping_lr_multiplier.is_finite()) {
            return bad(format!(
                "model.d_mapping_lr_multiplier must be positive, got {}",
                self.d_mapping_lr_multiplier
            ));
        }
        if !(0.0..1.0).contains(&self.w_avg_beta) {
            return bad(format!(
                "model.w_avg_beta must be in [0, 1), got {}",
                self.w_avg_beta
            ));
        }
        if !(self.conv_clamp >= 0.0 && self.conv_clamp.is_finite()) {
            return bad(format!(
                "model.conv_clamp must be 0 (none) or positive, got {}",
                self.conv_clamp
            ));
        }
        if self.mbstd_group == 0 {
            return bad("model.mbstd_group must be at least 1".into());
        }
        crate::nn::diff_augment::Policy::parse(&self.diffaugment)?;
        Ok(())
    }

    /// Feature maps at resolution `r` (NVlabs' `channels_dict`).
    pub fn channels_at(&self, r: usize) -> usize {
        (self.channel_base / r).clamp(1, self.channel_max)
    }

    /// Synthesis blocks, 4x4 first.
    pub fn block_resolutions(&self) -> Vec<usize> {
        (2..=self.resolution.trailing_zeros())
            .map(|k| 1 << k)
            .collect()
    }

    /// The ws the synthesis network takes (`num_ws`): one per conv layer and one for the last
    /// toRGB.
    pub fn num_ws(&self) -> usize {
        2 * self.block_resolutions().len()
    }

    pub fn cmap(&self) -> usize {
        match (self.num_classes, self.cmap_dim) {
            (0, _) => 0,
            (_, 0) => self.channels_at(4),
            (_, d) => d,
        }
    }
}

/// NVlabs' `bias_act`: `clamp(act(x + b) * gain, -clamp, clamp)` (`clamp` 0: none).
fn bias_act(
    x: Tensor<4>,
    bias: Option<Tensor<1>>,
    lrelu: bool,
    gain: f64,
    clamp: f64,
) -> Tensor<4> {
    let mut x = match bias {
        Some(b) => {
            let c = b.dims()[0];
            channel_affine(x, None, Some(b.reshape([1, c])))
        }
        None => x,
    };
    if lrelu {
        x = leaky_relu(x, SLOPE);
    }
    if gain != 1.0 {
        x = x * gain;
    }
    if clamp > 0.0 {
        crate::nn::activation::clamp(x, clamp)
    } else {
        x
    }
}

/// A fully connected layer (NVlabs' `FullyConnectedLayer`); `lrelu` adds its activation.
fn fc(layer: &EqualizedLinear, x: Tensor<2>, lrelu: bool) -> Tensor<2> {
    let y = layer.forward(x);
    if lrelu {
        leaky_relu(y, SLOPE) * LRELU_GAIN
    } else {
        y
    }
}

/// The mapping network: G's `z [, c] -> w`, or D's `c -> cmap`.
#[derive(Module, Debug)]
pub struct MappingNetwork {
    /// `c_dim -> w_dim` (conditional only).
    pub embed: Option<EqualizedLinear>,
    pub fc: Vec<EqualizedLinear>,
    /// `[w_dim]`, G only: tracked in training, the truncation centre.
    pub w_avg: Option<Param<Tensor<1>>>,
}

impl MappingNetwork {
    /// `z_dim = 0` for D's class mapping; `lr_multiplier` of the fully connected layers.
    pub fn new(
        [z_dim, c_dim, w_dim]: [usize; 3],
        (layers, lr_multiplier): (usize, f64),
        w_avg: bool,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let embed_features = if c_dim > 0 { w_dim } else { 0 };
        let embed = (c_dim > 0).then(|| {
            EqualizedLinear::new(
                [c_dim, embed_features],
                EqualizedOpts::default(),
                rng,
                device,
            )
        });
        let opts = EqualizedOpts {
            lr_multiplier,
            ..Default::default()
        };
        let fc = (0..layers)
            .map(|i| {
                let fan_in = if i == 0 {
                    z_dim + embed_features
                } else {
                    w_dim
                };
                EqualizedLinear::new([fan_in, w_dim], opts, rng, device)
            })
            .collect();
        MappingNetwork {
            embed,
            fc,
            w_avg: w_avg.then(|| {
                Param::from_tensor(Tensor::zeros([w_dim], device)).set_require_grad(false)
            }),
        }
    }

    /// `z` `[b, z_dim]` and/or one-hot `c` `[b, c_dim]` -> `[b, w_dim]`.
    pub fn forward(&self, z: Option<Tensor<2>>, c: Option<Tensor<2>>) -> Tensor<2> {
        let mut parts = Vec::new();
        if let Some(z) = z {
            parts.push(normalize_2nd_moment(z));
        }
        if let (Some(embed), Some(c)) = (&self.embed, c) {
            parts.push(normalize_2nd_moment(embed.forward(c)));
        }
        let mut x = Tensor::cat(parts, 1);
        for layer in &self.fc {
            x = fc(layer, x, true);
        }
        x
    }
}

/// The affine `A` of a modulated layer: `w_dim -> in`, bias initialised to 1.
fn style_affine(w_dim: usize, cin: usize, rng: &mut Rng, device: &Device) -> EqualizedLinear {
    let opts = EqualizedOpts {
        bias_init: Some(1.0),
        ..Default::default()
    };
    EqualizedLinear::new([w_dim, cin], opts, rng, device)
}

/// One modulated 3x3 convolution with noise (NVlabs' `SynthesisLayer`).
#[derive(Module, Debug)]
pub struct SynthesisLayer {
    /// `w_dim -> in`, bias initialised to 1.
    pub affine: EqualizedLinear,
    /// `[out, in, 3, 3]`, unscaled (demodulation makes the scale irrelevant).
    pub weight: Param<Tensor<4>>,
    pub bias: Param<Tensor<1>>,
    /// `[r, r]`, the noise image of `noise_mode = "const"` (fixed).
    pub noise_const: Param<Tensor<2>>,
    /// `[1]`, one learned scale for the layer's noise.
    pub noise_strength: Param<Tensor<1>>,
    /// Upsample 2x (the first conv of every block above 4x4).
    pub up: bool,
    pub conv_clamp: f64,
}

impl SynthesisLayer {
    fn new(
        [cin, cout]: [usize; 2],
        w_dim: usize,
        resolution: usize,
        up: bool,
        conv_clamp: f64,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        SynthesisLayer {
            affine: style_affine(w_dim, cin, rng, device),
            weight: crate::nn::init::normal([cout, cin, 3, 3], 0.0, 1.0, rng, device),
            bias: crate::nn::init::zeros([cout], device),
            noise_const: crate::nn::init::normal([resolution, resolution], 0.0, 1.0, rng, device)
                .set_require_grad(false),
            noise_strength: crate::nn::init::zeros([1], device),
            up,
            conv_clamp,
        }
    }

    /// Side of the layer's output (and of its noise).
    pub fn resolution(&self) -> usize {
        self.noise_const.dims()[0]
    }

    /// `[b, in, r', r']`, `w` `[b, w_dim]`, unit noise `[b or 1, 1, r, r]` -> `[b, out, r, r]`.
    pub fn forward(&self, x: Tensor<4>, w: Tensor<2>, noise: Option<Tensor<4>>) -> Tensor<4> {
        let styles = self.affine.forward(w); // [b, in]
        let weight = self.weight.val();
        let d = demodulation(styles.clone(), weight.clone()); // [b, out]
        let x = modulate(x, styles);
        let x = if self.up {
            // Transposed conv, stride 2, then the FIR filter with gain 4 (NVlabs' up path).
            let x = conv_transpose2d_routed(x, weight.swap_dims(0, 1), None, 2, 0); // 2r + 1
            filter2d(x, 1, 1) * 4.0 // [b, out, 2r, 2r]
        } else {
            conv2d_routed(x, weight, None, 1, 1)
        };
        let mut x = modulate(x, d);
        if let Some(n) = noise {
            x = x + n * self.noise_strength.val().reshape([1, 1, 1, 1]);
        }
        bias_act(x, Some(self.bias.val()), true, LRELU_GAIN, self.conv_clamp)
    }
}

/// The modulated 1x1 toRGB without demodulation (NVlabs' `ToRGBLayer`).
#[derive(Module, Debug)]
pub struct ToRgbLayer {
    pub affine: EqualizedLinear,
    /// `[channels, in, 1, 1]`
    pub weight: Param<Tensor<4>>,
    pub bias: Param<Tensor<1>>,
    pub conv_clamp: f64,
}

impl ToRgbLayer {
    fn new(
        cin: usize,
        channels: usize,
        w_dim: usize,
        conv_clamp: f64,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        ToRgbLayer {
            affine: style_affine(w_dim, cin, rng, device),
            weight: crate::nn::init::normal([channels, cin, 1, 1], 0.0, 1.0, rng, device),
            bias: crate::nn::init::zeros([channels], device),
            conv_clamp,
        }
    }

    pub fn forward(&self, x: Tensor<4>, w: Tensor<2>) -> Tensor<4> {
        let cin = self.weight.dims()[1];
        let styles = self.affine.forward(w) * (1.0 / (cin as f64).sqrt()); // [b, in]
        let x = conv2d_routed(modulate(x, styles), self.weight.val(), None, 1, 0);
        bias_act(x, Some(self.bias.val()), false, 1.0, self.conv_clamp)
    }
}

/// One synthesis resolution (NVlabs' `SynthesisBlock`, `skip` architecture).
#[derive(Module, Debug)]
pub struct SynthesisBlock {
    /// `[c4, 4, 4]`, the 4x4 block's learned input (NVlabs' `const`).
    pub constant: Option<Param<Tensor<3>>>,
    /// The upsampling conv (blocks above 4x4).
    pub conv0: Option<SynthesisLayer>,
    pub conv1: SynthesisLayer,
    pub torgb: ToRgbLayer,
}

impl SynthesisBlock {
    /// Conv layers (ws it consumes before its toRGB).
    pub fn num_conv(&self) -> usize {
        1 + self.conv0.is_some() as usize
    }
}

/// Where a synthesis pass gets its per-layer noise.
pub use super::stylegan::Noise;

#[derive(Module, Debug)]
pub struct SynthesisNetwork {
    /// 4x4 first.
    pub blocks: Vec<SynthesisBlock>,
}

#[derive(Module, Debug)]
pub struct Generator {
    pub mapping: MappingNetwork,
    pub synthesis: SynthesisNetwork,
    pub z_dim: usize,
    pub num_classes: usize,
}

impl Generator {
    pub fn new(cfg: &Stylegan2Config, rng: &mut Rng, device: &Device) -> Self {
        let mapping = MappingNetwork::new(
            [cfg.z_dim, cfg.num_classes, cfg.w_dim],
            (cfg.mapping_layers, MAPPING_LR_MULTIPLIER),
            true,
            rng,
            device,
        );
        let mut blocks = Vec::new();
        for r in cfg.block_resolutions() {
            let c = cfg.channels_at(r);
            let (constant, conv0, cin) = if r == 4 {
                (
                    Some(crate::nn::init::normal([c, 4, 4], 0.0, 1.0, rng, device)),
                    None,
                    c,
                )
            } else {
                let cin = cfg.channels_at(r / 2);
                let conv0 =
                    SynthesisLayer::new([cin, c], cfg.w_dim, r, true, cfg.conv_clamp, rng, device);
                (None, Some(conv0), c)
            };
            blocks.push(SynthesisBlock {
                constant,
                conv0,
                conv1: SynthesisLayer::new(
                    [cin, c],
                    cfg.w_dim,
                    r,
                    false,
                    cfg.conv_clamp,
                    rng,
                    device,
                ),
                torgb: ToRgbLayer::new(c, cfg.channels, cfg.w_dim, cfg.conv_clamp, rng, device),
            });
        }
        Generator {
            mapping,
            synthesis: SynthesisNetwork { blocks },
            z_dim: cfg.z_dim,
            num_classes: cfg.num_classes,
        }
    }

    pub fn device(&self) -> Device {
        self.synthesis.blocks[0].conv1.weight.val().device()
    }

    pub fn num_ws(&self) -> usize {
        self.synthesis
            .blocks
            .iter()
            .map(|b| b.num_conv())
            .sum::<usize>()
            + 1
    }

    /// The conv layers in synthesis order (one noise input each).
    pub fn conv_layers(&self) -> Vec<&SynthesisLayer> {
        self.synthesis
            .blocks
            .iter()
            .flat_map(|b| b.conv0.iter().chain(std::iter::once(&b.conv1)))
            .collect()
    }

    /// One-hot classes, `[b, num_classes]`; `None` for an unconditional network.
    pub fn one_hot(&self, labels: Option<Tensor<1, Int>>) -> Result<Option<Tensor<2>>> {
        one_hot(labels, self.num_classes, &self.device())
    }

    /// `z` `[b, z_dim]`, one-hot `c` -> `w` `[b, w_dim]` (untruncated).
    pub fn to_w(&self, z: Tensor<2>, c: Option<Tensor<2>>) -> Tensor<2> {
        self.mapping.forward(Some(z), c)
    }

    /// `[w_dim]`
    pub fn w_avg(&self) -> Tensor<1> {
        self.mapping
            .w_avg
            .as_ref()
            .expect("G's mapping tracks w_avg")
            .val()
    }

    /// The stored noise images (`noise_mode = "const"`), `[1, 1, r, r]` each.
    pub fn const_noise(&self) -> Vec<Option<Tensor<4>>> {
        self.conv_layers()
            .iter()
            .map(|l| {
                let r = l.resolution();
                Some(l.noise_const.val().reshape([1, 1, r, r]))
            })
            .collect()
    }

    /// Fresh N(0, 1) noise for every conv layer of a batch of `b` (`noise_mode = "random"`).
    pub fn random_noise(&self, b: usize, rng: &mut Rng) -> Vec<Option<Tensor<4>>> {
        let device = self.device();
        self.conv_layers()
            .iter()
            .map(|l| Some(noise_image(b, l.resolution(), rng, &device)))
            .collect()
    }

    /// `num_ws` ws (`[b, w_dim]` each) -> `[b, channels, res, res]`.
    pub fn synthesis(&self, ws: &[Tensor<2>], noise: Noise) -> Tensor<4> {
        assert_eq!(ws.len(), self.num_ws(), "one w per synthesis input");
        let b = ws[0].dims()[0];
        let noise = match noise {
            Noise::Random(rng) => self.random_noise(b, rng),
            Noise::Fixed(n) => n,
        };
        let mut noise = noise.into_iter();
        let mut at = 0; // the next w
        let mut x: Option<Tensor<4>> = None;
        let mut img: Option<Tensor<4>> = None;
        for block in &self.synthesis.blocks {
            let mut h = match (&block.constant, x) {
                (Some(c), _) => c.val().unsqueeze_dim::<4>(0).repeat_dim(0, b), // [b, c4, 4, 4]
                (None, Some(x)) => x,
                (None, None) => unreachable!("the 4x4 block comes first"),
            };
            for layer in block.conv0.iter().chain(std::iter::once(&block.conv1)) {
                h = layer.forward(h, ws[at].clone(), noise.next().flatten());
                at += 1;
            }
            let y = block.torgb.forward(h.clone(), ws[at].clone()); // shares conv0's next w
            img = Some(match img {
                Some(i) => upsample2d(i) + y,
                None => y,
            });
            x = Some(h);
        }
        img.expect("at least one block")
    }

    /// NVlabs' `G(z, c, truncation_psi, truncation_cutoff)`: the mapped `w` truncated toward
    /// `w_avg` in the first `cutoff` ws (all when `None`), as `num_ws` ws.
    pub fn mapping_ws(
        &self,
        z: Tensor<2>,
        c: Option<Tensor<2>>,
        psi: f64,
        cutoff: Option<usize>,
    ) -> Vec<Tensor<2>> {
        let w = self.to_w(z, c);
        let n = self.num_ws();
        let cut = cutoff.unwrap_or(n).min(n);
        let t = if psi == 1.0 {
            w.clone()
        } else {
            truncate(self.w_avg(), w.clone(), psi)
        };
        crossover(t, w, cut, n)
    }

    /// The training forward with style mixing (probability `mixing_prob`, a random crossover
    /// among the ws, as NVlabs' `StyleGAN2Loss.run_G`); returns the images and the batch mean of
    /// `w` for `w_avg`.
    pub fn forward_train(
        &self,
        z: Tensor<2>,
        c: Option<Tensor<2>>,
        mixing_prob: f64,
        rng: &mut Rng,
    ) -> (Tensor<4>, Tensor<1>) {
        let (ws, w_mean) = self.train_ws(z, c, mixing_prob, rng);
        (self.synthesis(&ws, Noise::Random(rng)), w_mean)
    }

    /// The ws of [`forward_train`](Self::forward_train).
    pub fn train_ws(
        &self,
        z: Tensor<2>,
        c: Option<Tensor<2>>,
        mixing_prob: f64,
        rng: &mut Rng,
    ) -> (Vec<Tensor<2>>, Tensor<1>) {
        let [b, zd] = z.dims();
        let w = self.to_w(z, c.clone());
        let n = self.num_ws();
        let mean = w.clone().detach().mean_dim(0).reshape([w.dims()[1]]);
        let ws = if rng.uniform() < mixing_prob {
            let z2 = Tensor::from_data(
                TensorData::new(rng.normal_vec(b * zd, 0.0, 1.0), [b, zd]),
                &w.device(),
            );
            let w2 = self.to_w(z2, c);
            crossover(w, w2, 1 + rng.below(n - 1), n)
        } else {
            vec![w; n]
        };
        (ws, mean)
    }

    /// `w_avg <- lerp(batch_mean, w_avg, beta)` (NVlabs' update).
    pub fn track_w_avg(mut self, batch_mean: Tensor<1>, beta: f64) -> Self {
        if let Some(avg) = self.mapping.w_avg.take() {
            self.mapping.w_avg = Some(avg.map(|a| {
                let m = batch_mean.to_device(&a.device());
                (m.clone() + (a - m) * beta).detach()
            }));
        }
        self
    }
}

/// `w_avg.lerp(w, psi)`: `[w_dim]`, `[b, w_dim]`.
pub fn truncate(w_avg: Tensor<1>, w: Tensor<2>, psi: f64) -> Tensor<2> {
    let avg = w_avg.unsqueeze::<2>();
    avg.clone() + (w - avg) * psi
}

/// One-hot rows of `labels` for `classes` classes; an error when a conditional network gets
/// none.
pub fn one_hot(
    labels: Option<Tensor<1, Int>>,
    classes: usize,
    device: &Device,
) -> Result<Option<Tensor<2>>> {
    match (classes, labels) {
        (0, _) => Ok(None),
        (k, Some(l)) => Ok(Some(l.to_device(device).one_hot::<2>(k).float())),
        (k, None) => Err(Error::Config(format!(
            "this network is conditional on {k} classes: give a class (--class)"
        ))),
    }
}

/// `num_ws` ws: `a` for the first `cut`, `b` for the rest (truncation cutoffs, style mixing).
pub fn crossover(a: Tensor<2>, b: Tensor<2>, cut: usize, num_ws: usize) -> Vec<Tensor<2>> {
    (0..num_ws)
        .map(|i| if i < cut { a.clone() } else { b.clone() })
        .collect()
}

/// A convolution of the discriminator (NVlabs' `Conv2dLayer`).
#[derive(Module, Debug)]
pub struct Conv2dLayer {
    /// `[out, in, k, k]`, scaled at run time by `1 / sqrt(in k k)`.
    pub weight: Param<Tensor<4>>,
    pub bias: Option<Param<Tensor<1>>>,
    /// FIR filter, then stride 2.
    pub down: bool,
    pub lrelu: bool,
    pub conv_clamp: f64,
}

impl Conv2dLayer {
    #[allow(clippy::too_many_arguments)]
    fn new(
        [cin, cout]: [usize; 2],
        k: usize,
        bias: bool,
        lrelu: bool,
        down: bool,
        conv_clamp: f64,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        Conv2dLayer {
            weight: crate::nn::init::normal([cout, cin, k, k], 0.0, 1.0, rng, device),
            bias: bias.then(|| crate::nn::init::zeros([cout], device)),
            down,
            lrelu,
            conv_clamp,
        }
    }

    /// `[b, in, r, r] -> [b, out, r or r/2, ...]`, the activation's gain times `gain`.
    pub fn forward(&self, x: Tensor<4>, gain: f64) -> Tensor<4> {
        let [_, cin, k, _] = self.weight.dims();
        let w = self.weight.val() * (1.0 / ((cin * k * k) as f64).sqrt());
        let x = match (self.down, k) {
            (false, _) => conv2d_routed(x, w, None, 1, k / 2),
            (true, 1) => conv2d_routed(downsample2d(x), w, None, 1, 0),
            // The conv's padding plus the filter's (NVlabs' `conv2d_resample`, down 2), then stride 2.
            (true, _) => conv2d_routed(filter2d(x, k / 2 + 1, 1), w, None, 2, 0),
        };
        let act_gain = if self.lrelu { LRELU_GAIN } else { 1.0 };
        bias_act(
            x,
            self.bias.as_ref().map(|b| b.val()),
            self.lrelu,
            act_gain * gain,
            self.conv_clamp * gain,
        )
    }
}

/// One discriminator resolution (NVlabs' `DiscriminatorBlock`, `resnet` or `orig`).
#[derive(Module, Debug)]
pub struct DiscriminatorBlock {
    /// The top resolution's 1x1 fromRGB.
    pub fromrgb: Option<Conv2dLayer>,
    pub conv0: Conv2dLayer,
    pub conv1: Conv2dLayer,
    /// The 1x1 downsampling skip (`resnet` only).
    pub skip: Option<Conv2dLayer>,
}

impl DiscriminatorBlock {
    pub fn forward(&self, x: Option<Tensor<4>>, img: &Tensor<4>) -> Tensor<4> {
        let x = match (&self.fromrgb, x) {
            (Some(f), _) => f.forward(img.clone(), 1.0),
            (None, Some(x)) => x,
            (None, None) => unreachable!("the top block reads the image"),
        };
        match &self.skip {
            Some(skip) => {
                let half = std::f64::consts::FRAC_1_SQRT_2;
                let y = skip.forward(x.clone(), half);
                y + self.conv1.forward(self.conv0.forward(x, 1.0), half)
            }
            None => self.conv1.forward(self.conv0.forward(x, 1.0), 1.0),
        }
    }
}

/// The 4x4 end of D (NVlabs' `DiscriminatorEpilogue`).
#[derive(Module, Debug)]
pub struct Epilogue {
    /// `c4 + 1 -> c4`, after minibatch standard deviation.
    pub conv: Conv2dLayer,
    /// `c4 * 16 -> c4`
    pub fc: EqualizedLinear,
    /// `c4 -> 1`, or `c4 -> cmap_dim` when conditional.
    pub out: EqualizedLinear,
    pub mbstd_group: usize,
}

#[derive(Module, Debug)]
pub struct Discriminator {
    /// 8x8 first (NVlabs' `b8`, `b16`, ...); the forward pass runs them from the top down.
    pub blocks: Vec<DiscriminatorBlock>,
    /// `c -> cmap` (conditional only).
    pub mapping: Option<MappingNetwork>,
    /// NVlabs' `b4`.
    pub epilogue: Epilogue,
}

impl Discriminator {
    pub fn new(cfg: &Stylegan2Config, rng: &mut Rng, device: &Device) -> Self {
        let clamp = cfg.conv_clamp;
        let mut blocks = Vec::new();
        for &r in cfg.block_resolutions()[1..].iter().rev() {
            let (tmp, out) = (cfg.channels_at(r), cfg.channels_at(r / 2));
            blocks.push(DiscriminatorBlock {
                fromrgb: (r == cfg.resolution).then(|| {
                    Conv2dLayer::new(
                        [cfg.channels, tmp],
                        1,
                        true,
                        true,
                        false,
                        clamp,
                        rng,
                        device,
                    )
                }),
                conv0: Conv2dLayer::new([tmp, tmp], 3, true, true, false, clamp, rng, device),
                conv1: Conv2dLayer::new([tmp, out], 3, true, true, true, clamp, rng, device),
                skip: (cfg.d_architecture == DArchitecture::Resnet)
                    .then(|| Conv2dLayer::new([tmp, out], 1, false, false, true, 0.0, rng, device)),
            });
        }
        blocks.reverse();
        let cmap = cfg.cmap();
        let mapping = (cfg.num_classes > 0).then(|| {
            MappingNetwork::new(
                [0, cfg.num_classes, cmap],
                (cfg.d_mapping_layers, cfg.d_mapping_lr_multiplier),
                false,
                rng,
                device,
            )
        });
        let c4 = cfg.channels_at(4);
        let opts = EqualizedOpts::default();
        Discriminator {
            blocks,
            mapping,
            epilogue: Epilogue {
                conv: Conv2dLayer::new([c4 + 1, c4], 3, true, true, false, clamp, rng, device),
                fc: EqualizedLinear::new([c4 * 16, c4], opts, rng, device),
                out: EqualizedLinear::new([c4, cmap.max(1)], opts, rng, device),
                mbstd_group: cfg.mbstd_group,
            },
        }
    }

    /// `[b, channels, res, res]`, one-hot `c` -> `[b]` logits.
    pub fn forward(&self, img: Tensor<4>, c: Option<Tensor<2>>) -> Tensor<1> {
        let b = img.dims()[0];
        let mut x = None;
        for block in self.blocks.iter().rev() {
            x = Some(block.forward(x, &img));
        }
        let x = x.expect("at least one block"); // [b, c4, 4, 4]
        let e = &self.epilogue;
        let x = e.conv.forward(minibatch_stddev(x, e.mbstd_group), 1.0); // [b, c4, 4, 4]
        let [_, c4, h, w] = x.dims();
        let x = fc(&e.fc, x.reshape([b, c4 * h * w]), true);
        let x = fc(&e.out, x, false); // [b, 1] or [b, cmap]
        match (&self.mapping, c) {
            (Some(m), Some(c)) => {
                let cmap = m.forward(None, Some(c)); // [b, cmap]
                let k = cmap.dims()[1];
                (x * cmap).sum_dim(1).reshape([b]) * (1.0 / (k as f64).sqrt())
            }
            _ => x.reshape([b]),
        }
    }

    pub fn num_classes(&self) -> usize {
        self.mapping
            .as_ref()
            .and_then(|m| m.embed.as_ref())
            .map_or(0, |e| e.weight.dims()[1])
    }
}
