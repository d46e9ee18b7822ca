//! One layer of the Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with
//! PixelCNN Decoders"): a vertical stack that sees the rows above, a horizontal stack that sees
//! the pixels to the left in the current row plus the vertical stack, gated `tanh * sigmoid`
//! activations, conditioning added inside both gates, a residual on the horizontal stack and a
//! skip output.
//!
//! Causality comes from the kernel shapes and one-sided padding: the vertical kernel is
//! `(k/2 + 1) x k` padded only on top, so its output at row `r` sees rows `r - k/2 ..= r`; the
//! horizontal kernel is `1 x (k/2 + 1)` padded only on the left, so it sees columns
//! `c - k/2 ..= c`. Mask type A (the first layer, whose input holds the current pixel) drops the
//! last kernel row and column, so position `(r, c)` sees only rows `< r` and columns `< c`; every
//! later layer (type B) may include its own position because its inputs no longer carry the
//! current pixel. The vertical stack feeds the horizontal one at the same position, which closes
//! the blind spot of the original single-stack PixelCNN.
//!
//! Code maps are small (4x4 to 32x32), where per-image convolution GEMMs are thin; so the layer
//! works channels-last, `[b, h, w, c]`, and runs each convolution as one matrix product over the
//! whole batch: the kernel taps are shifted views concatenated along channels (im2col), and 1x1
//! convolutions are plain linear maps.

use super::activation::gated_tanh;
use super::fused_linear::{WeightLayout, linear};
use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::im2row::{Window, im2row};
use super::init;
use crate::rng::Rng;

/// PixelCNN mask types: A excludes the current position (first layer), B includes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskType {
    A,
    B,
}

/// A 1x1 convolution on channels-last maps: `[.., in] -> [.., out]`.
#[derive(Module, Debug)]
pub struct Dense {
    /// `[in, out]`
    pub weight: Param<Tensor<2>>,
    pub bias: Param<Tensor<1>>,
}

impl Dense {
    /// PyTorch's default init with fan-in `fan_in` (uniform in `+-1/sqrt(fan_in)`); `bias`
    /// false leaves a zero bias.
    pub fn new(
        [cin, cout]: [usize; 2],
        fan_in: usize,
        bias: bool,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let bound = 1.0 / (fan_in as f64).sqrt();
        Dense {
            weight: init::uniform([cin, cout], bound, rng, device),
            bias: if bias {
                init::uniform([cout], bound, rng, device)
            } else {
                init::zeros([cout], device)
            },
        }
    }

    /// `[b, h, w, in] -> [b, h, w, out]`
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, h, w, c] = x.dims();
        let out = self.weight.dims()[1];
        let y = linear(
            x.reshape([b * h * w, c]),
            self.weight.val(),
            WeightLayout::InOut,
            Some(self.bias.val()),
        );
        y.reshape([b, h, w, out])
    }
}

#[derive(Module, Debug)]
pub struct GatedMaskedConv2d {
    /// Vertical kernel as `[taps * p, 2p]`, taps `(dy, dx)` row-major over the `(k/2 + 1) x k`
    /// kernel (type A: without its last row).
    pub vertical: Dense,
    /// Horizontal kernel as `[taps * p, 2p]`, taps `dx` over `1 x (k/2 + 1)` (type A: without the
    /// last).
    pub horizontal: Dense,
    /// `2p -> 2p`: the vertical stack's features into the horizontal gate.
    pub vertical_to_horizontal: Dense,
    /// `p -> p` on the gated horizontal output (added to the input for type B).
    pub horizontal_out: Dense,
    /// `p -> p`: this layer's contribution to the skip sum.
    pub skip: Dense,
    /// `cond -> 4p`, its bias starting at zero: conditioning for the vertical and horizontal
    /// gates.
    pub condition: Option<Dense>,
    pub kernel: usize,
    /// True for mask type A.
    pub mask_a: bool,
}

/// Outputs of one gated layer, each `[b, h, w, p]`.
pub struct GatedOutput {
    pub vertical: Tensor<4>,
    pub horizontal: Tensor<4>,
    pub skip: Tensor<4>,
}

impl GatedMaskedConv2d {
    /// `channels` = p; `kernel` odd (seed: 7 for the first layer, 3 after); `cond_channels` 0
    /// for none.
    pub fn new(
        channels: usize,
        kernel: usize,
        mask: MaskType,
        cond_channels: usize,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        assert!(kernel % 2 == 1, "PixelCNN kernels are odd");
        let p = channels;
        let half = kernel / 2;
        let mask_a = mask == MaskType::A;
        let (nv, nh) = (
            Self::vertical_window(kernel, mask_a).taps(),
            Self::horizontal_window(kernel, mask_a).taps(),
        );
        // Fan-in of the full kernels, as PyTorch initialises a masked convolution.
        GatedMaskedConv2d {
            vertical: Dense::new([nv * p, 2 * p], p * (half + 1) * kernel, true, rng, device),
            horizontal: Dense::new([nh * p, 2 * p], p * (half + 1), true, rng, device),
            vertical_to_horizontal: Dense::new([2 * p, 2 * p], 2 * p, true, rng, device),
            horizontal_out: Dense::new([p, p], p, true, rng, device),
            skip: Dense::new([p, p], p, true, rng, device),
            condition: (cond_channels > 0)
                .then(|| Dense::new([cond_channels, 4 * p], cond_channels, false, rng, device)),
            kernel,
            mask_a,
        }
    }

    /// The vertical stack's taps: the rows above (and for type B the current row), `k` wide.
    fn vertical_window(kernel: usize, mask_a: bool) -> Window {
        let half = kernel / 2;
        Window {
            rows: half + usize::from(!mask_a),
            cols: kernel,
            top: half,
            left: half,
        }
    }

    /// The horizontal stack's taps: the pixels to the left (and for type B the current one).
    fn horizontal_window(kernel: usize, mask_a: bool) -> Window {
        let half = kernel / 2;
        Window {
            rows: 1,
            cols: half + usize::from(!mask_a),
            top: 0,
            left: half,
        }
    }

    /// `v`, `h`: `[b, h, w, p]`; `cond`: `[b, h, w, c]` when the layer is conditioned.
    pub fn forward(&self, v: Tensor<4>, h: Tensor<4>, cond: Option<&Tensor<4>>) -> GatedOutput {
        let cond = self.condition_parts(cond);
        let (v_pre, vertical) = self.vertical_step(v, cond.as_ref().map(|c| &c.0));
        let (horizontal, skip) = self.horizontal_step(h, v_pre, cond.as_ref().map(|c| &c.1));
        GatedOutput {
            vertical,
            horizontal,
            skip,
        }
    }

    /// The conditioning projected for the vertical and the horizontal gate, `[b, h, w, 2p]` each.
    pub fn condition_parts(&self, cond: Option<&Tensor<4>>) -> Option<(Tensor<4>, Tensor<4>)> {
        let (c, cond) = (self.condition.as_ref()?, cond?);
        let [b, h, w, cin] = cond.dims();
        let rows = cond.clone().reshape([b * h * w, cin]);
        let (weight, bias) = (c.weight.val(), c.bias.val()); // [c, 4p], [4p]
        let p2 = weight.dims()[1] / 2;
        // The two halves as two products: narrowing the weight, not the `[b, h, w, 4p]` output,
        // keeps the backward from zero-filling and scattering a full-size gradient per half.
        let half = |at| {
            let part = weight.clone().narrow(1, at, p2);
            let part_bias = Some(bias.clone().narrow(0, at, p2));
            let y = linear(rows.clone(), part, WeightLayout::InOut, part_bias);
            y.reshape([b, h, w, p2])
        };
        Some((half(0), half(p2)))
    }

    /// The vertical stack: its pre-activation before conditioning (which also feeds the
    /// horizontal gate), `[b, h, w, 2p]`, and its gated output, `[b, h, w, p]`.
    pub fn vertical_step(
        &self,
        v: Tensor<4>,
        cond_v: Option<&Tensor<4>>,
    ) -> (Tensor<4>, Tensor<4>) {
        let v_taps = im2row(v, Self::vertical_window(self.kernel, self.mask_a)); // [b, h, w, taps * p]
        let v_pre = self.vertical.forward(v_taps); // [b, h, w, 2p]
        let gated = match cond_v {
            Some(c) => gated_tanh(v_pre.clone() + c.clone()),
            None => gated_tanh(v_pre.clone()),
        };
        (v_pre, gated)
    }

    /// The horizontal stack given the same rows' vertical pre-activation: its output (with the
    /// residual for type B) and its skip contribution, `[b, h, w, p]` each. Rows are independent
    /// here, so this runs on any subset of rows.
    pub fn horizontal_step(
        &self,
        h: Tensor<4>,
        v_pre: Tensor<4>,
        cond_h: Option<&Tensor<4>>,
    ) -> (Tensor<4>, Tensor<4>) {
        let h_taps = im2row(h.clone(), Self::horizontal_window(self.kernel, self.mask_a)); // [b, h, w, taps * p]
        let mut h_pre =
            self.horizontal.forward(h_taps) + self.vertical_to_horizontal.forward(v_pre); // [b, h, w, 2p]
        if let Some(c) = cond_h {
            h_pre = h_pre + c.clone();
        }
        let gated = gated_tanh(h_pre); // [b, h, w, p]
        let skip = self.skip.forward(gated.clone());
        let mut out = self.horizontal_out.forward(gated);
        if !self.mask_a {
            // Type A's input holds the current pixel; a residual would leak it.
            out = out + h;
        }
        (out, skip)
    }
}
