//! Convolutions with N(0, 0.02) init (DCGAN's `weights_init`) and optional spectral norm.
//! burn's own `Conv2d` keeps its weight private to its forward; these apply `W / sigma(W)`.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::gemm_conv::{conv_transpose2d_routed, conv2d_routed};
use super::{SpectralNorm, init};
use crate::rng::Rng;

/// Init std of every conv weight (DCGAN paper and the DCGAN/SAGAN article).
pub const INIT_STD: f64 = 0.02;

/// N(0, 0.02) weight of `shape`, zero bias, and spectral norm over the output-channel axis
/// `out_axis` when asked for.
fn init_params(
    shape: [usize; 4],
    out_axis: usize,
    spectral_norm: bool,
    rng: &mut Rng,
    device: &Device,
) -> (Param<Tensor<4>>, Param<Tensor<1>>, Option<SpectralNorm>) {
    let cout = shape[out_axis];
    let weight = init::normal(shape, 0.0, INIT_STD, rng, device);
    let sn = spectral_norm.then(|| SpectralNorm::new(cout, out_axis, rng, device));
    (weight, init::zeros([cout], device), sn)
}

/// `W / sigma(W)` with spectral norm, else `W`.
fn effective_weight(weight: &Param<Tensor<4>>, sn: &Option<SpectralNorm>) -> Tensor<4> {
    match sn {
        Some(sn) => sn.normalize_weight(weight.val()),
        None => weight.val(),
    }
}

#[derive(Module, Debug)]
pub struct Conv2d {
    /// `[out, in, k, k]`
    pub weight: Param<Tensor<4>>,
    pub bias: Param<Tensor<1>>,
    pub stride: usize,
    pub padding: usize,
    pub sn: Option<SpectralNorm>,
}

impl Conv2d {
    /// PyTorch's default `nn.Conv2d` init: weight and bias uniform in `+-1/sqrt(fan_in)`
    /// (the VQ-VAE and PixelCNN reference implementations keep it). `kernel` = `[kh, kw]`.
    pub fn pytorch(
        [cin, cout]: [usize; 2],
        [kh, kw]: [usize; 2],
        stride: usize,
        padding: usize,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let bound = 1.0 / ((cin * kh * kw) as f64).sqrt();
        Conv2d {
            weight: init::uniform([cout, cin, kh, kw], bound, rng, device),
            bias: init::uniform([cout], bound, rng, device),
            stride,
            padding,
            sn: None,
        }
    }

    /// `channels` = `[in, out]`.
    pub fn new(
        [cin, cout]: [usize; 2],
        kernel: usize,
        stride: usize,
        padding: usize,
        spectral_norm: bool,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let (weight, bias, sn) =
            init_params([cout, cin, kernel, kernel], 0, spectral_norm, rng, device);
        Conv2d {
            weight,
            bias,
            stride,
            padding,
            sn,
        }
    }

    /// `[b, in, h, w] -> [b, out, (h + 2p - k) / s + 1, ...]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv2d_routed(
            x,
            effective_weight(&self.weight, &self.sn),
            Some(self.bias.val()),
            self.stride,
            self.padding,
        )
    }
}

#[derive(Module, Debug)]
pub struct ConvTranspose2d {
    /// `[in, out, k, k]`
    pub weight: Param<Tensor<4>>,
    pub bias: Param<Tensor<1>>,
    pub stride: usize,
    pub padding: usize,
    pub sn: Option<SpectralNorm>,
}

impl ConvTranspose2d {
    /// PyTorch's default `nn.ConvTranspose2d` init (fan-in over `out * k * k`, as PyTorch
    /// computes it from the `[in, out, k, k]` weight).
    pub fn pytorch(
        [cin, cout]: [usize; 2],
        kernel: usize,
        stride: usize,
        padding: usize,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let bound = 1.0 / ((cout * kernel * kernel) as f64).sqrt();
        ConvTranspose2d {
            weight: init::uniform([cin, cout, kernel, kernel], bound, rng, device),
            bias: init::uniform([cout], bound, rng, device),
            stride,
            padding,
            sn: None,
        }
    }

    /// `channels` = `[in, out]`.
    pub fn new(
        [cin, cout]: [usize; 2],
        kernel: usize,
        stride: usize,
        padding: usize,
        spectral_norm: bool,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let (weight, bias, sn) =
            init_params([cin, cout, kernel, kernel], 1, spectral_norm, rng, device);
        ConvTranspose2d {
            weight,
            bias,
            stride,
            padding,
            sn,
        }
    }

    /// `[b, in, h, w] -> [b, out, (h - 1) s - 2p + k, ...]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv_transpose2d_routed(
            x,
            effective_weight(&self.weight, &self.sn),
            Some(self.bias.val()),
            self.stride,
            self.padding,
        )
    }
}
