//! One layer of the Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with
//! PixelCNN Decoders"): a vertical stack that sees the rows above, a horizontal stack that sees
//! the pixels to the left in the current row plus the vertical stack, gated `tanh * sigmoid`
//! activations, conditioning added inside both gates, a residual on the horizontal stack and a
//! skip output.
//!
//! Causality comes from the kernel shapes and one-sided padding, not from zeroed 3x3 masks:
//! the vertical kernel is `(k/2 + 1) x k` padded only on top, so its output at row `r` sees rows
//! `r - k/2 ..= r`; the horizontal kernel is `1 x (k/2 + 1)` padded only on the left, so it sees
//! columns `c - k/2 ..= c`. Mask type A (the first layer, whose input holds the current pixel)
//! zeroes the last kernel row and column, so position `(r, c)` sees only rows `< r` and columns
//! `< c`; every later layer (type B) may include its own position because its inputs no longer
//! carry the current pixel. The vertical stack feeds the horizontal one at the same position,
//! which closes the blind spot of the original single-stack PixelCNN.

use burn::module::{Module, Param};
use burn::tensor::activation::{sigmoid, tanh};
use burn::tensor::ops::PadMode;
use burn::tensor::{Device, Tensor};

use super::Conv2d;
use crate::rng::Rng;

/// PixelCNN mask types: A excludes the current position (first layer), B includes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskType {
    A,
    B,
}

#[derive(Module, Debug)]
pub struct GatedMaskedConv2d {
    /// `[2p, p, k/2 + 1, k]`: rows above (and the current row for type B).
    pub vertical: Conv2d,
    /// `[2p, p, 1, k/2 + 1]`: pixels to the left (and the current one for type B).
    pub horizontal: Conv2d,
    /// 1x1, `2p -> 2p`: the vertical stack's features into the horizontal gate.
    pub vertical_to_horizontal: Conv2d,
    /// 1x1, `p -> p` on the gated horizontal output (added to the input for type B).
    pub horizontal_out: Conv2d,
    /// 1x1, `p -> p`: this layer's contribution to the skip sum.
    pub skip: Conv2d,
    /// 1x1 without bias, `cond -> 4p`: conditioning for the vertical and horizontal gates.
    pub condition: Option<Conv2d>,
    pub kernel: usize,
    /// True for mask type A.
    pub mask_a: bool,
}

/// Outputs of one gated layer.
pub struct GatedOutput {
    /// `[b, p, h, w]`
    pub vertical: Tensor<4>,
    /// `[b, p, h, w]`
    pub horizontal: Tensor<4>,
    /// `[b, p, h, w]`
    pub skip: Tensor<4>,
}

fn gate(x: Tensor<4>) -> Tensor<4> {
    let [_, c2, _, _] = x.dims();
    let c = c2 / 2;
    tanh(x.clone().narrow(1, 0, c)) * sigmoid(x.narrow(1, c, c))
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
        let mut vertical = Conv2d::pytorch([p, 2 * p], [half + 1, kernel], 1, 0, rng, device);
        let mut horizontal = Conv2d::pytorch([p, 2 * p], [1, half + 1], 1, 0, rng, device);
        if mask == MaskType::A {
            // Zero the masked taps at init too, so the stored weights read as what is used.
            let (wv, wh) = (vertical.weight.val(), horizontal.weight.val());
            vertical.weight = Param::from_tensor((wv.clone() * last_row_mask(&wv)).detach());
            horizontal.weight = Param::from_tensor((wh.clone() * last_col_mask(&wh)).detach());
        }
        let condition = (cond_channels > 0).then(|| {
            let mut c = Conv2d::pytorch([cond_channels, 4 * p], [1, 1], 1, 0, rng, device);
            c.bias = Param::from_tensor(Tensor::zeros([4 * p], device));
            c
        });
        GatedMaskedConv2d {
            vertical,
            horizontal,
            vertical_to_horizontal: Conv2d::pytorch([2 * p, 2 * p], [1, 1], 1, 0, rng, device),
            horizontal_out: Conv2d::pytorch([p, p], [1, 1], 1, 0, rng, device),
            skip: Conv2d::pytorch([p, p], [1, 1], 1, 0, rng, device),
            condition,
            kernel,
            mask_a: mask == MaskType::A,
        }
    }

    /// `v`, `h`: `[b, p, h, w]`; `cond`: `[b, c, h, w]` when the layer is conditioned.
    pub fn forward(&self, v: Tensor<4>, h: Tensor<4>, cond: Option<&Tensor<4>>) -> GatedOutput {
        let half = self.kernel / 2;
        let (mut wv, mut wh) = (self.vertical.weight.val(), self.horizontal.weight.val());
        if self.mask_a {
            wv = wv.clone() * last_row_mask(&wv);
            wh = wh.clone() * last_col_mask(&wh);
        }
        let conv = |x: Tensor<4>, w: Tensor<4>, b: Tensor<1>| {
            burn::tensor::module::conv2d(
                x,
                w,
                Some(b),
                burn::tensor::ops::ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
            )
        };
        // Vertical: pad top k/2, left and right k/2. [b, 2p, h, w]
        let v_pre = conv(
            v.pad((half, half, half, 0), PadMode::Constant(0.0)),
            wv,
            self.vertical.bias.val(),
        );
        // Horizontal: pad left k/2. [b, 2p, h, w]
        let h_pre = conv(
            h.clone().pad((half, 0, 0, 0), PadMode::Constant(0.0)),
            wh,
            self.horizontal.bias.val(),
        ) + self.vertical_to_horizontal.forward(v_pre.clone());
        let (mut v_pre, mut h_pre) = (v_pre, h_pre);
        if let (Some(c), Some(cond)) = (&self.condition, cond) {
            let cv = c.forward(cond.clone()); // [b, 4p, h, w]
            let p2 = cv.dims()[1] / 2;
            v_pre = v_pre + cv.clone().narrow(1, 0, p2);
            h_pre = h_pre + cv.narrow(1, p2, p2);
        }
        let v_out = gate(v_pre); // [b, p, h, w]
        let gated = gate(h_pre); // [b, p, h, w]
        let skip = self.skip.forward(gated.clone());
        let mut h_out = self.horizontal_out.forward(gated);
        if !self.mask_a {
            // Type A's input holds the current pixel; a residual would leak it.
            h_out = h_out + h;
        }
        GatedOutput {
            vertical: v_out,
            horizontal: h_out,
            skip,
        }
    }
}

/// Ones with the last kernel row zero (`[o, i, kh, kw]`).
fn last_row_mask(w: &Tensor<4>) -> Tensor<4> {
    let [o, i, kh, kw] = w.dims();
    let ones = Tensor::<4>::ones([o, i, kh - 1, kw], &w.device());
    Tensor::cat(vec![ones, Tensor::zeros([o, i, 1, kw], &w.device())], 2)
}

/// Ones with the last kernel column zero.
fn last_col_mask(w: &Tensor<4>) -> Tensor<4> {
    let [o, i, kh, kw] = w.dims();
    let ones = Tensor::<4>::ones([o, i, kh, kw - 1], &w.device());
    Tensor::cat(vec![ones, Tensor::zeros([o, i, kh, 1], &w.device())], 3)
}
