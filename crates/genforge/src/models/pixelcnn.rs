//! The Gated PixelCNN prior over VQ-VAE-2 code maps (the VQ-VAE-2 article's `pixelCNN`): codes are embedded,
//! pass a type-A gated layer with a 7x7 kernel then type-B layers with 3x3 kernels, the skip
//! outputs are summed, and a `relu -> 1x1 -> relu -> 1x1` head gives logits over the K codes at
//! every position. Conditioning (the upsampled top codes for the bottom prior, a one-hot class
//! for a class-conditional prior) enters every layer's gates. Maps are channels-last,
//! `[b, h, w, c]` (see [`crate::nn::masked_conv`]).

use crate::nn::activation::relu;
use burn::module::{Module, Param};
use burn::tensor::{Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::nn::masked_conv::{Dense, GatedMaskedConv2d, MaskType};
use crate::nn::{ConvTranspose2d, init};
use crate::rng::Rng;
use crate::{Error, Result};

/// `model.*` keys of `family = "pixelcnn"` (stage 2). `codebook_size` and `top_stride` are
/// read from the code maps when the run starts and recorded in its config.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PixelcnnConfig {
    /// Channels of every gated layer.
    pub width: usize,
    /// Gated layers of each prior (7).
    pub depth: usize,
    /// Condition both priors on the image class as well.
    pub class_conditional: bool,
    /// Number of classes when class-conditional.
    pub num_classes: usize,
    /// Codes per codebook (from the code maps).
    pub codebook_size: usize,
    /// Bottom side / top side (from the code maps).
    pub top_stride: usize,
}

impl Default for PixelcnnConfig {
    fn default() -> Self {
        PixelcnnConfig {
            width: 64,
            depth: 7,
            class_conditional: false,
            num_classes: 10,
            codebook_size: 512,
            top_stride: 2,
        }
    }
}

impl PixelcnnConfig {
    pub fn validate(&self) -> Result<()> {
        if self.width == 0 || self.depth == 0 {
            return Err(Error::Config(
                "model.width (channels) and model.depth (gated layers) must be positive".into(),
            ));
        }
        if self.class_conditional && self.num_classes < 2 {
            return Err(Error::Config(format!(
                "model.num_classes must be at least 2 for a class-conditional prior, got {}",
                self.num_classes
            )));
        }
        Ok(())
    }

    /// The top prior and the bottom prior (conditioned on the top codes), drawn in that order.
    pub fn init(&self, rng: &mut Rng, device: &Device) -> (GatedPixelCnn, GatedPixelCnn) {
        let spec = PixelCnnSpec {
            codes: self.codebook_size,
            channels: self.width,
            layers: self.depth,
            num_classes: if self.class_conditional {
                self.num_classes
            } else {
                0
            },
            top: None,
        };
        let top = GatedPixelCnn::new(spec, rng, device);
        let bottom = GatedPixelCnn::new(
            PixelCnnSpec {
                top: Some((self.codebook_size, self.top_stride)),
                ..spec
            },
            rng,
            device,
        );
        (top, bottom)
    }
}

/// The VQ-VAE-2 article's kernel sizes: 7 for the first (type A) layer, 3 for the rest.
pub const FIRST_KERNEL: usize = 7;
pub const KERNEL: usize = 3;

/// Top codes as a conditioning map at the bottom resolution (the VQ-VAE-2 article upsamples the condition
/// with a stride-2 transposed convolution and ReLU).
#[derive(Module, Debug)]
pub struct TopCodeCondition {
    /// `[K, c]`
    pub embed: Param<Tensor<2>>,
    /// One stride-2 transposed conv per doubling, each followed by ReLU.
    pub upsample: Vec<ConvTranspose2d>,
}

impl TopCodeCondition {
    /// `[b, ht, wt]` codes -> `[b, ht * factor, wt * factor, c]`
    pub fn forward(&self, top: Tensor<3, Int>) -> Tensor<4> {
        let [b, h, w] = top.dims();
        let mut x = embed_codes(&self.embed, top, b, h, w).permute([0, 3, 1, 2]); // [b, c, h, w]
        for up in &self.upsample {
            x = relu(up.forward(x));
        }
        x.permute([0, 2, 3, 1])
    }
}

/// `[b, h, w]` codes -> `[b, h, w, c]` rows of `table` (`[K, c]`).
fn embed_codes(
    table: &Param<Tensor<2>>,
    codes: Tensor<3, Int>,
    b: usize,
    h: usize,
    w: usize,
) -> Tensor<4> {
    let c = table.dims()[1];
    table
        .val()
        .select(0, codes.reshape([b * h * w]))
        .reshape([b, h, w, c])
}

#[derive(Module, Debug)]
pub struct GatedPixelCnn {
    /// Input code embedding, `[K, p]`.
    pub embed: Param<Tensor<2>>,
    pub layers: Vec<GatedMaskedConv2d>,
    /// 1x1, `p -> p` and `p -> K`.
    pub head: Vec<Dense>,
    /// Bottom prior: the top codes as conditioning.
    pub top_condition: Option<TopCodeCondition>,
    /// Classes of a class-conditional prior (0: unconditional on the class).
    pub num_classes: usize,
}

/// Settings of one prior.
#[derive(Clone, Copy, Debug)]
pub struct PixelCnnSpec {
    /// Codebook size K (input vocabulary and output classes).
    pub codes: usize,
    /// Channels p of every gated layer.
    pub channels: usize,
    /// Gated layers (one type A, then type B; seed: 7).
    pub layers: usize,
    /// Classes for class conditioning (0: none).
    pub num_classes: usize,
    /// Bottom prior: codebook size of the top codes and the upsampling factor to the bottom
    /// resolution (a power of two); `None` for the top prior.
    pub top: Option<(usize, usize)>,
}

impl GatedPixelCnn {
    pub fn new(spec: PixelCnnSpec, rng: &mut Rng, device: &Device) -> Self {
        let p = spec.channels;
        let top_condition = spec.top.map(|(k_top, factor)| TopCodeCondition {
            embed: init::normal([k_top, p], 0.0, 1.0, rng, device),
            upsample: (0..factor.trailing_zeros())
                .map(|_| ConvTranspose2d::pytorch([p, p], 4, 2, 1, rng, device))
                .collect(),
        });
        let cond_channels = top_condition.as_ref().map_or(0, |_| p) + spec.num_classes;
        let layers = (0..spec.layers)
            .map(|i| {
                let (kernel, mask) = if i == 0 {
                    (FIRST_KERNEL, MaskType::A)
                } else {
                    (KERNEL, MaskType::B)
                };
                GatedMaskedConv2d::new(p, kernel, mask, cond_channels, rng, device)
            })
            .collect();
        GatedPixelCnn {
            embed: init::normal([spec.codes, p], 0.0, 1.0, rng, device),
            layers,
            head: vec![
                Dense::new([p, p], p, true, rng, device),
                Dense::new([p, spec.codes], p, true, rng, device),
            ],
            top_condition,
            num_classes: spec.num_classes,
        }
    }

    pub fn codebook_size(&self) -> usize {
        self.embed.dims()[0]
    }

    /// The conditioning map for a batch at `[h, w]`: upsampled top codes and/or a one-hot class,
    /// `[b, h, w, c]`; `None` for an unconditional prior.
    pub fn condition(
        &self,
        top: Option<Tensor<3, Int>>,
        labels: Option<Tensor<1, Int>>,
        [h, w]: [usize; 2],
    ) -> Option<Tensor<4>> {
        let mut parts = Vec::new();
        if let (Some(tc), Some(top)) = (&self.top_condition, top) {
            parts.push(tc.forward(top));
        }
        if self.num_classes > 0
            && let Some(labels) = labels
        {
            let b = labels.dims()[0];
            let one_hot =
                labels
                    .one_hot::<2>(self.num_classes)
                    .float()
                    .reshape([b, 1, 1, self.num_classes]);
            parts.push(one_hot.repeat_dim(1, h).repeat_dim(2, w));
        }
        (!parts.is_empty()).then(|| Tensor::cat(parts, 3))
    }

    /// Logits over the K codes, `[b, h, w]` codes -> `[b, h, w, K]`.
    pub fn forward(&self, codes: Tensor<3, Int>, cond: Option<&Tensor<4>>) -> Tensor<4> {
        let [b, h, w] = codes.dims();
        self.forward_embedded(embed_codes(&self.embed, codes, b, h, w), cond)
    }

    /// [`forward`](Self::forward) from the embedded codes `[b, h, w, p]` (the causality test
    /// differentiates through this input).
    pub fn forward_embedded(&self, x: Tensor<4>, cond: Option<&Tensor<4>>) -> Tensor<4> {
        let (mut v, mut h) = (x.clone(), x);
        let mut skip: Option<Tensor<4>> = None;
        for layer in &self.layers {
            let out = layer.forward(v, h, cond);
            v = out.vertical;
            h = out.horizontal;
            skip = Some(match skip {
                Some(s) => s + out.skip,
                None => out.skip,
            });
        }
        let s = skip.expect("at least one layer"); // [b, h, w, p]
        self.head[1].forward(relu(self.head[0].forward(relu(s)))) // [b, h, w, K]
    }

    /// Sampling, once per row: the raw vertical pre-activation of every layer at the last row of
    /// `codes` (`[b, rows, w]`, the rows the receptive field reaches, ending with the row being
    /// sampled), each `[b, 1, w, 2p]`. The vertical stacks see only rows above, so these stay
    /// valid while the row is filled in.
    pub fn vertical_rows(&self, codes: Tensor<3, Int>, cond: Option<&Tensor<4>>) -> Vec<Tensor<4>> {
        let [b, h, w] = codes.dims();
        let mut v = embed_codes(&self.embed, codes, b, h, w);
        let mut out = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            let cv = layer.condition_parts(cond).map(|c| c.0);
            let (v_pre, gated) = layer.vertical_step(v, cv.as_ref());
            out.push(v_pre.narrow(1, h - 1, 1));
            v = gated;
        }
        out
    }

    /// Sampling, once per position: logits of one row (`[b, 1, w]` codes, `[b, 1, w, K]` out)
    /// from its vertical pre-activations ([`vertical_rows`](Self::vertical_rows)) and the row's
    /// conditioning; only the horizontal stacks and the head run.
    pub fn row_logits(
        &self,
        row: Tensor<3, Int>,
        vertical: &[Tensor<4>],
        cond: Option<&Tensor<4>>,
    ) -> Tensor<4> {
        let [b, h, w] = row.dims();
        let mut x = embed_codes(&self.embed, row, b, h, w);
        let mut skip: Option<Tensor<4>> = None;
        for (layer, v_pre) in self.layers.iter().zip(vertical) {
            let ch = layer.condition_parts(cond).map(|c| c.1);
            let (out, s) = layer.horizontal_step(x, v_pre.clone(), ch.as_ref());
            x = out;
            skip = Some(match skip {
                Some(acc) => acc + s,
                None => s,
            });
        }
        let s = skip.expect("at least one layer");
        self.head[1].forward(relu(self.head[0].forward(relu(s))))
    }

    /// Rows needed above a position: the type-A layer reaches `FIRST_KERNEL / 2` rows up and each
    /// type-B layer one more.
    pub fn receptive_rows(&self) -> usize {
        FIRST_KERNEL / 2 + self.layers.len().saturating_sub(1) * (KERNEL / 2)
    }
}

/// Mean cross-entropy of `logits` (`[b, h, w, K]`) against `codes` (`[b, h, w]`), in nats.
pub fn cross_entropy(logits: Tensor<4>, codes: Tensor<3, Int>) -> Tensor<1> {
    let [b, h, w, k] = logits.dims();
    let n = b * h * w;
    crate::nn::activation::cross_entropy_rows(logits.reshape([n, k]), codes.reshape([n])).mean()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

    fn spec(top: Option<(usize, usize)>, num_classes: usize) -> PixelCnnSpec {
        PixelCnnSpec {
            codes: 6,
            channels: 16,
            layers: 4,
            num_classes,
            top,
        }
    }

    /// d logits(i) / d input(j) for every pair on a 5x5 map: zero for j >= i in raster order,
    /// non-zero for every j < i (all earlier positions are inside the receptive field here).
    fn check_causality(net: &GatedPixelCnn, cond: Option<Tensor<4>>, device: &Device) {
        let (hh, ww) = (5, 5);
        let x = Tensor::<4>::random([1, hh, ww, 16], Distribution::Normal(0.0, 1.0), device)
            .require_grad();
        for i in 0..hh * ww {
            let (r, c) = (i / ww, i % ww);
            let logits = net.forward_embedded(x.clone(), cond.as_ref());
            let out = logits.narrow(1, r, 1).narrow(2, c, 1).sum();
            let grads = out.backward();
            let g = x.grad(&grads).expect("input gradient"); // [1, h, w, p]
            let per_pos: Vec<f32> = g
                .abs()
                .sum_dim(3)
                .reshape([hh * ww])
                .into_data()
                .try_into_vec()
                .unwrap();
            for (j, &gj) in per_pos.iter().enumerate() {
                if j >= i {
                    assert_eq!(gj, 0.0, "output {i} depends on input {j} (leak)");
                } else {
                    assert!(gj > 0.0, "output {i} is blind to input {j}");
                }
            }
        }
    }

    #[test]
    fn causal_no_leak_and_no_blind_spot() {
        let device = Device::flex().autodiff();
        let net = GatedPixelCnn::new(spec(None, 0), &mut Rng::new(1), &device);
        check_causality(&net, None, &device);
    }

    #[test]
    fn conditioned_prior_is_still_causal_in_its_own_codes() {
        let device = Device::flex().autodiff();
        let net = GatedPixelCnn::new(spec(Some((3, 1)), 2), &mut Rng::new(2), &device);
        // A 5x5 top map with factor 1 (no upsampling) and a class.
        let top = Tensor::<3, Int>::from_data(
            TensorData::new(
                (0..25).map(|i| (i % 3) as i64).collect::<Vec<_>>(),
                [1, 5, 5],
            ),
            &device,
        );
        let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64], [1]), &device);
        let cond = net.condition(Some(top), Some(labels), [5, 5]);
        assert_eq!(cond.as_ref().unwrap().dims(), [1, 5, 5, 16 + 2]);
        check_causality(&net, cond.map(|c| c.detach()), &device);
    }

    #[test]
    fn shapes_and_cross_entropy_against_a_host_computation() {
        let device = Device::flex();
        let net = GatedPixelCnn::new(spec(Some((3, 2)), 0), &mut Rng::new(4), &device);
        let codes = Tensor::<3, Int>::from_data(
            TensorData::new(
                (0..2 * 4 * 4).map(|i| (i % 6) as i64).collect::<Vec<_>>(),
                [2, 4, 4],
            ),
            &device,
        );
        let top = Tensor::<3, Int>::from_data(
            TensorData::new(vec![0i64, 1, 2, 1, 2, 0, 1, 1], [2, 2, 2]),
            &device,
        );
        let cond = net.condition(Some(top), None, [4, 4]).unwrap();
        assert_eq!(cond.dims(), [2, 4, 4, 16]);
        let logits = net.forward(codes.clone(), Some(&cond));
        assert_eq!(logits.dims(), [2, 4, 4, 6]);
        let ce: f32 = cross_entropy(logits.clone(), codes.clone()).into_scalar();
        let l: Vec<f32> = logits.into_data().try_into_vec().unwrap();
        let t: Vec<i64> = codes.into_data().convert::<i64>().try_into_vec().unwrap();
        let mut sum = 0.0f64;
        for bi in 0..2 {
            for pos in 0..16 {
                let at = |k: usize| l[(bi * 16 + pos) * 6 + k] as f64;
                let lse = (0..6).map(|k| at(k).exp()).sum::<f64>().ln();
                sum += lse - at(t[bi * 16 + pos] as usize);
            }
        }
        assert!(
            (ce as f64 - sum / 32.0).abs() < 1e-4,
            "{ce} vs {}",
            sum / 32.0
        );
    }
}
