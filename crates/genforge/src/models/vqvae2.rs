//! VQ-VAE-2 (Razavi et al. 2019) with two levels, as the VQ-VAE-2 article builds it: stride-2 3x3
//! convolutions and residual blocks take the image down to the bottom resolution, then further
//! to the top; the top is quantized, decoded back up to the bottom resolution and joined with the
//! bottom features before the bottom quantization; the decoder reconstructs the image from the
//! bottom codes and the upsampled top codes.

use crate::nn::activation::add;
use crate::nn::activation::relu;
use burn::module::Module;
use burn::tensor::{Device, Int, Tensor};

use serde::{Deserialize, Serialize};

use crate::nn::vector_quantizer::{EmaVectorQuantizer, Quantized};
use crate::nn::{Conv2d, ConvTranspose2d};
use crate::rng::Rng;
use crate::{Error, Result};

/// `model.*` keys of `family = "vqvae2"` (stage 1).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Vqvae2Config {
    pub channels: usize,
    pub resolution: usize,
    /// Encoder/decoder channels.
    pub width: usize,
    /// Codes per codebook K (512).
    pub codebook_size: usize,
    /// Code vector size D (64).
    pub code_dim: usize,
    /// Image side / bottom code-map side, a power of two.
    pub bottom_stride: usize,
    /// Bottom side / top side, a power of two.
    pub top_stride: usize,
    /// Residual blocks at the end of each encoder and start of each decoder.
    pub res_blocks: usize,
    /// Hidden channels inside a residual block.
    pub res_channels: usize,
    /// Commitment loss weight beta (0.25).
    pub commitment: f64,
    /// EMA decay of the codebook statistics (0.99).
    pub vq_decay: f64,
    /// Laplace smoothing epsilon of the cluster sizes (1e-5).
    pub vq_epsilon: f64,
    /// Restart codes unused for this many steps from encoder outputs (0: never).
    pub dead_code_steps: usize,
}

impl Default for Vqvae2Config {
    fn default() -> Self {
        Vqvae2Config {
            channels: 1,
            resolution: 32,
            width: 64,
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
        }
    }
}

impl Vqvae2Config {
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(msg));
        super::check_channels(self.channels)?;
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
}

/// `x + conv1x1(relu(conv3x3(relu(x))))`
#[derive(Module, Debug)]
pub struct ResBlock {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
}

impl ResBlock {
    fn new(channels: usize, res_channels: usize, rng: &mut Rng, device: &Device) -> Self {
        ResBlock {
            conv1: Conv2d::pytorch([channels, res_channels], [3, 3], 1, 1, rng, device),
            conv2: Conv2d::pytorch([res_channels, channels], [1, 1], 1, 0, rng, device),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        add(
            x.clone(),
            self.conv2.forward(relu(self.conv1.forward(relu(x)))),
        )
    }
}

fn res_stack(
    n: usize,
    channels: usize,
    res_channels: usize,
    rng: &mut Rng,
    device: &Device,
) -> Vec<ResBlock> {
    (0..n)
        .map(|_| ResBlock::new(channels, res_channels, rng, device))
        .collect()
}

/// `log2(stride)` stride-2 3x3 convs (ReLU between), a 3x3 conv, residual blocks, ReLU.
#[derive(Module, Debug)]
pub struct Encoder {
    pub down: Vec<Conv2d>,
    pub conv: Conv2d,
    pub res: Vec<ResBlock>,
}

impl Encoder {
    fn new(
        [cin, ch]: [usize; 2],
        stride: usize,
        res_blocks: usize,
        res_channels: usize,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let n = stride.trailing_zeros() as usize;
        let mut down = Vec::new();
        let mut c = cin;
        for i in 0..n {
            let out = if i == 0 { ch / 2 } else { ch };
            down.push(Conv2d::pytorch([c, out], [3, 3], 2, 1, rng, device));
            c = out;
        }
        Encoder {
            down,
            conv: Conv2d::pytorch([c, ch], [3, 3], 1, 1, rng, device),
            res: res_stack(res_blocks, ch, res_channels, rng, device),
        }
    }

    /// `[b, cin, h, w] -> [b, ch, h / stride, w / stride]`
    fn forward(&self, mut x: Tensor<4>) -> Tensor<4> {
        for conv in &self.down {
            x = relu(conv.forward(x));
        }
        x = self.conv.forward(x);
        for block in &self.res {
            x = block.forward(x);
        }
        relu(x)
    }
}

/// A 3x3 conv, residual blocks, ReLU, then `log2(stride)` 4x4 stride-2 transposed convs.
#[derive(Module, Debug)]
pub struct Decoder {
    pub conv: Conv2d,
    pub res: Vec<ResBlock>,
    pub up: Vec<ConvTranspose2d>,
}

impl Decoder {
    fn new(
        [cin, cout, ch]: [usize; 3],
        stride: usize,
        res_blocks: usize,
        res_channels: usize,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let n = stride.trailing_zeros() as usize;
        let mut up = Vec::new();
        let mut c = ch;
        for i in 0..n {
            let out = if i + 1 == n {
                cout
            } else if i + 2 == n {
                ch / 2
            } else {
                ch
            };
            up.push(ConvTranspose2d::pytorch([c, out], 4, 2, 1, rng, device));
            c = out;
        }
        Decoder {
            conv: Conv2d::pytorch([cin, ch], [3, 3], 1, 1, rng, device),
            res: res_stack(res_blocks, ch, res_channels, rng, device),
            up,
        }
    }

    /// `[b, cin, h, w] -> [b, cout, h * stride, w * stride]`
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = self.conv.forward(x);
        for block in &self.res {
            x = block.forward(x);
        }
        x = relu(x);
        let n = self.up.len();
        for (i, up) in self.up.iter().enumerate() {
            x = up.forward(x);
            if i + 1 < n {
                x = relu(x);
            }
        }
        x
    }
}

#[derive(Module, Debug)]
pub struct VqVae2 {
    pub enc_b: Encoder,
    pub enc_t: Encoder,
    /// 1x1, `ch -> D` before the top quantizer.
    pub quantize_conv_t: Conv2d,
    pub quantize_t: EmaVectorQuantizer,
    /// Top codes back up to the bottom resolution, `D -> D`.
    pub dec_t: Decoder,
    /// 1x1, `D + ch -> D` before the bottom quantizer.
    pub quantize_conv_b: Conv2d,
    pub quantize_b: EmaVectorQuantizer,
    /// Top codes up to the bottom resolution for the decoder.
    pub upsample_t: Vec<ConvTranspose2d>,
    pub dec: Decoder,
}

/// Everything one encoding produces.
pub struct Encoded {
    pub top: Quantized,
    pub bottom: Quantized,
}

impl Encoded {
    /// Commitment losses of both levels, `[1]`.
    pub fn commitment(&self) -> Tensor<1> {
        self.top.loss.clone() + self.bottom.loss.clone()
    }
}

impl VqVae2 {
    pub fn new(cfg: &Vqvae2Config, rng: &mut Rng, device: &Device) -> Self {
        let (ch, d, rb, rc) = (cfg.width, cfg.code_dim, cfg.res_blocks, cfg.res_channels);
        let vq = |rng: &mut Rng| {
            EmaVectorQuantizer::new(
                [cfg.codebook_size, d],
                cfg.vq_decay,
                cfg.vq_epsilon,
                cfg.commitment,
                cfg.dead_code_steps,
                rng,
                device,
            )
        };
        let enc_b = Encoder::new([cfg.channels, ch], cfg.bottom_stride, rb, rc, rng, device);
        let enc_t = Encoder::new([ch, ch], cfg.top_stride, rb, rc, rng, device);
        let quantize_conv_t = Conv2d::pytorch([ch, d], [1, 1], 1, 0, rng, device);
        let quantize_t = vq(rng);
        let dec_t = Decoder::new([d, d, ch], cfg.top_stride, rb, rc, rng, device);
        let quantize_conv_b = Conv2d::pytorch([d + ch, d], [1, 1], 1, 0, rng, device);
        let quantize_b = vq(rng);
        let upsample_t = (0..cfg.top_stride.trailing_zeros())
            .map(|_| ConvTranspose2d::pytorch([d, d], 4, 2, 1, rng, device))
            .collect();
        let dec = Decoder::new(
            [2 * d, cfg.channels, ch],
            cfg.bottom_stride,
            rb,
            rc,
            rng,
            device,
        );
        VqVae2 {
            enc_b,
            enc_t,
            quantize_conv_t,
            quantize_t,
            dec_t,
            quantize_conv_b,
            quantize_b,
            upsample_t,
            dec,
        }
    }

    /// Quantized codes of both levels: `x` `[b, c, H, W]` -> top `[b, D, Ht, Wt]`, bottom
    /// `[b, D, Hb, Wb]`.
    pub fn encode(&self, x: Tensor<4>) -> Encoded {
        let f_b = self.enc_b.forward(x); // [b, ch, Hb, Wb]
        let f_t = self.enc_t.forward(f_b.clone()); // [b, ch, Ht, Wt]
        let top = self.quantize_t.quantize(self.quantize_conv_t.forward(f_t)); // [b, D, Ht, Wt]
        let dec_t = self.dec_t.forward(top.codes.clone()); // [b, D, Hb, Wb]
        let z_b = self
            .quantize_conv_b
            .forward(Tensor::cat(vec![dec_t, f_b], 1)); // [b, D, Hb, Wb]
        let bottom = self.quantize_b.quantize(z_b);
        Encoded { top, bottom }
    }

    /// Images from the codes of both levels: `q_t` `[b, D, Ht, Wt]`, `q_b` `[b, D, Hb, Wb]`.
    pub fn decode(&self, q_t: Tensor<4>, q_b: Tensor<4>) -> Tensor<4> {
        let mut up = q_t;
        for conv in &self.upsample_t {
            up = conv.forward(up);
        }
        self.dec.forward(Tensor::cat(vec![up, q_b], 1)) // [b, c, H, W]
    }

    /// Images from code indices (`[b, Ht, Wt]`, `[b, Hb, Wb]`).
    pub fn decode_indices(&self, top: Tensor<3, Int>, bottom: Tensor<3, Int>) -> Tensor<4> {
        self.decode(
            self.quantize_t.indices_to_codes(top),
            self.quantize_b.indices_to_codes(bottom),
        )
    }

    /// Reconstruction and the encoding it came from.
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<4>, Encoded) {
        let enc = self.encode(x);
        let recon = self.decode(enc.top.codes.clone(), enc.bottom.codes.clone());
        (recon, enc)
    }

    pub fn device(&self) -> Device {
        self.quantize_conv_t.weight.device()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    #[test]
    fn both_levels_have_the_configured_shapes() {
        let device = Device::flex();
        for (res, bs, ts) in [(32, 4, 2), (32, 2, 2), (64, 2, 4), (32, 8, 2)] {
            let cfg = Vqvae2Config {
                channels: 3,
                resolution: res,
                width: 16,
                code_dim: 8,
                codebook_size: 32,
                res_channels: 8,
                res_blocks: 1,
                bottom_stride: bs,
                top_stride: ts,
                ..Vqvae2Config::default()
            };
            let m = VqVae2::new(&cfg, &mut Rng::new(0), &device);
            let x =
                Tensor::<4>::random([2, 3, res, res], Distribution::Uniform(-1.0, 1.0), &device);
            let (recon, enc) = m.forward(x);
            let (hb, ht) = (res / bs, res / bs / ts);
            assert_eq!(recon.dims(), [2, 3, res, res]);
            assert_eq!(enc.bottom.indices.dims(), [2, hb, hb]);
            assert_eq!(enc.top.indices.dims(), [2, ht, ht]);
            assert_eq!(enc.bottom.codes.dims(), [2, 8, hb, hb]);
            assert_eq!(enc.top.codes.dims(), [2, 8, ht, ht]);
            // Decoding the indices gives the same images as decoding the codes.
            let a = m.decode_indices(enc.top.indices.clone(), enc.bottom.indices.clone());
            let b = m.decode(enc.top.codes, enc.bottom.codes);
            let diff: f32 = (a - b).abs().max().into_scalar();
            assert!(diff < 1e-4, "{diff}");
        }
    }
}
