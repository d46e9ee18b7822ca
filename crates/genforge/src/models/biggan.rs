//! BigGAN (Brock et al. 2019, "Large Scale GAN Training for High Fidelity Natural Image
//! Synthesis"), as the StyleGAN/BigGAN slides present it: SAGAN scaled up and made
//! class-conditional, with a shared class embedding, hierarchical latents and orthogonal
//! regularization. The network is BigGAN-PyTorch's (`BigGAN.py`, `layers.py`), field for field,
//! so its checkpoints load (see `crate::import`):
//!
//! - G: `z` split into one chunk per block plus one for the input (hierarchical latents);
//!   `linear(z_0) -> 4x4`; residual up-blocks `CBN-ReLU-up-conv3x3-CBN-ReLU-conv3x3` plus an
//!   upsampled 1x1 skip (`conv_sc`), each CBN conditioned on `[shared(y), z_i]`; attention after
//!   the blocks whose output is at a `g_attention` resolution; `BN-ReLU-conv3x3-tanh` out.
//! - D: residual down-blocks (`ReLU-conv3x3-ReLU-conv3x3-avgpool` with a 1x1 skip; the first
//!   without the leading ReLU), attention after the blocks whose output is at a `d_attention`
//!   resolution, ReLU, global sum pooling, and the projection output
//!   `linear(h) + <embed(y), h>` (Miyato & Koyama 2018).
//!
//! Spectral norm ([`crate::nn::sn_layers`], with BigGAN-PyTorch's `u0`/`sv0` buffers and its
//! evaluation-time power iteration) on every conv and linear of both networks and on D's class
//! embedding; the shared embedding is a plain table. Attention is BigGAN-PyTorch's
//! ([`PooledSelfAttention`]). Weights start N(0, 0.02) (BigGAN-PyTorch's `N02`, what its CIFAR
//! script uses); biases at PyTorch's default. Upsampling is nearest-neighbour, downsampling 2x2
//! average pooling.

use crate::nn::activation::add;
use crate::nn::activation::relu;
use crate::nn::blur::{downsample2x, upsample2x};
use burn::module::{Flag, Module, Param, RunningState};
use burn::tensor::activation::tanh;
use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::nn::batch_norm::forward_stored;
use crate::nn::conditional_batch_norm::ConditionalBatchNorm;
use crate::nn::init;
use crate::nn::pooled_attention::PooledSelfAttention;
use crate::nn::sn_layers::{SnConv2d, SnEmbedding, SnLinear};
use crate::rng::Rng;
use crate::{Error, Result};

/// `model.*` keys of `family = "biggan"`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BigganConfig {
    /// Size of z (the paper: 120 at 128x128, split into 6 chunks of 20).
    pub z_dim: usize,
    pub channels: usize,
    /// 16, 32, 64 or 128.
    pub resolution: usize,
    pub num_classes: usize,
    /// G's channel multiplier `ch` (the paper: 96; BigGAN-PyTorch's CIFAR script: 64).
    pub g_width: usize,
    pub d_width: usize,
    /// Size of the shared class embedding (the paper: 128).
    pub shared_dim: usize,
    /// Split z over the input layer and every block (the paper's hierarchical latents); when
    /// false all of z feeds the input layer and the blocks see the embedding alone.
    pub hierarchical: bool,
    /// Output resolutions of the G blocks followed by attention (the paper: 64 at 128x128).
    pub g_attention: Vec<usize>,
    /// Output resolutions of the D blocks followed by attention (the paper: 64 at 128x128).
    pub d_attention: Vec<usize>,
    /// Spectral norm's epsilon (BigGAN-PyTorch's `SN_eps`: 1e-8 by default, 1e-6 for the 138k
    /// ImageNet checkpoint, 1e-4 in the TF-Hub conversion).
    pub sn_eps: f64,
    /// The conditional batch norms' epsilon (`BN_eps`: 1e-5; 1e-4 in the TF-Hub conversion).
    /// The output batch norm always uses 1e-5, as BigGAN-PyTorch's.
    pub bn_eps: f64,
}

impl Default for BigganConfig {
    fn default() -> Self {
        BigganConfig {
            z_dim: 120,
            channels: 3,
            resolution: 128,
            num_classes: 1000,
            g_width: 96,
            d_width: 96,
            shared_dim: 128,
            hierarchical: true,
            g_attention: vec![64],
            d_attention: vec![64],
            sn_eps: 1e-8,
            bn_eps: 1e-5,
        }
    }
}

/// Channels in and out of each block and the resolution after it, as BigGAN-PyTorch's arch
/// tables; up to 32x32 its CIFAR layout (every block at `4 ch`).
struct Arch {
    /// `(in, out, output resolution)`
    g: Vec<(usize, usize, usize)>,
    /// `(in, out, downsample, output resolution)`
    d: Vec<(usize, usize, bool, usize)>,
}

fn arch(cfg: &BigganConfig) -> Arch {
    let (gc, dc, r) = (cfg.g_width, cfg.d_width, cfg.resolution);
    let ups = r.trailing_zeros() as usize - 2; // 4 -> r
    let g_mult: Vec<usize> = if r <= 32 {
        vec![4; ups + 1]
    } else {
        // 64: 16,16,8,4,2; 128: 16,16,8,4,2,1.
        let mut m = vec![16];
        m.extend((0..ups).map(|i| 16 >> i));
        m
    };
    let g = (0..ups)
        .map(|i| (gc * g_mult[i], gc * g_mult[i + 1], 8 << i))
        .collect();
    let mut d = Vec::new();
    if r <= 32 {
        let downs = r.trailing_zeros() as usize - 3; // r -> 8
        let mut cin = cfg.channels;
        let mut res = r;
        for i in 0..downs + 2 {
            let down = i < downs;
            if down {
                res /= 2;
            }
            d.push((cin, 4 * dc, down, res));
            cin = 4 * dc;
        }
    } else {
        // 64: 1,2,4,8,16 (+16); 128: 1,2,4,8,16,16 (+16).
        let downs = r.trailing_zeros() as usize - 2; // r -> 4
        let mults: Vec<usize> = (0..downs).map(|i| (1usize << i).min(16)).collect();
        let mut cin = cfg.channels;
        let mut res = r;
        for m in mults {
            res /= 2;
            d.push((cin, dc * m, true, res));
            cin = dc * m;
        }
        d.push((cin, dc * 16, false, res));
    }
    Arch { g, d }
}

impl BigganConfig {
    /// Chunks z is split into: the input layer and one per G block (1 when not hierarchical).
    pub fn z_slots(&self) -> usize {
        if self.hierarchical {
            arch(self).g.len() + 1
        } else {
            1
        }
    }

    pub fn z_chunk(&self) -> usize {
        self.z_dim / self.z_slots()
    }

    /// Size of each G block's conditioning vector.
    fn cond_dim(&self) -> usize {
        self.shared_dim + if self.hierarchical { self.z_chunk() } else { 0 }
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(msg));
        super::check_channels(self.channels)?;
        if ![16, 32, 64, 128].contains(&self.resolution) {
            return bad(format!(
                "model.resolution must be 16, 32, 64 or 128, got {}",
                self.resolution
            ));
        }
        if self.num_classes < 1 || self.g_width == 0 || self.d_width == 0 || self.shared_dim == 0 {
            return bad(
                "model.num_classes, model.g_width, model.d_width and model.shared_dim must be positive"
                    .into(),
            );
        }
        for (key, eps) in [("model.sn_eps", self.sn_eps), ("model.bn_eps", self.bn_eps)] {
            if !(eps.is_finite() && eps > 0.0) {
                return bad(format!("{key} must be positive and finite, got {eps}"));
            }
        }
        let slots = self.z_slots();
        if self.z_dim == 0 || !self.z_dim.is_multiple_of(slots) {
            return bad(format!(
                "model.z_dim ({}) must be a positive multiple of {slots} (one chunk for the input \
                 layer and one per generator block); try {}",
                self.z_dim,
                slots * (self.z_dim / slots).max(1)
            ));
        }
        let a = arch(self);
        let blocks = [
            (
                "model.g_attention",
                "generator",
                &self.g_attention,
                a.g.iter().map(|b| (b.1, b.2)).collect::<Vec<_>>(),
            ),
            (
                "model.d_attention",
                "discriminator",
                &self.d_attention,
                a.d.iter().map(|b| (b.1, b.3)).collect(),
            ),
        ];
        for (key, net, wanted, blocks) in blocks {
            let res: Vec<usize> = blocks.iter().map(|b| b.1).collect();
            for r in wanted {
                if !res.contains(r) {
                    return bad(format!(
                        "{key}: {r} is not the output resolution of a {net} block ({res:?})"
                    ));
                }
                if let Some(&(c, _)) = blocks.iter().find(|b| b.1 == *r && b.0 < 8) {
                    return bad(format!(
                        "{key}: attention at {r} needs at least 8 channels there (its C/8 \
                         projections), the block has {c}; widen the network or drop {r}"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `weight [out, ...]` flattened to `[out, fan_in]` (orthogonal regularization).
fn rows<const D: usize>(w: Tensor<D>) -> Tensor<2> {
    let out = w.dims()[0];
    w.reshape([out as i32, -1])
}

#[derive(Module, Debug)]
pub struct GBlock {
    pub conv1: SnConv2d,
    pub conv2: SnConv2d,
    pub conv_sc: SnConv2d,
    pub bn1: ConditionalBatchNorm,
    pub bn2: ConditionalBatchNorm,
}

impl GBlock {
    fn new(cin: usize, cout: usize, cfg: &BigganConfig, rng: &mut Rng, device: &Device) -> Self {
        let (cond, sn) = (cfg.cond_dim(), cfg.sn_eps);
        GBlock {
            conv1: SnConv2d::new([cin, cout], 3, true, sn, rng, device),
            conv2: SnConv2d::new([cout, cout], 3, true, sn, rng, device),
            conv_sc: SnConv2d::new([cin, cout], 1, true, sn, rng, device),
            bn1: ConditionalBatchNorm::new(cin, cond, cfg.bn_eps, sn, rng, device),
            bn2: ConditionalBatchNorm::new(cout, cond, cfg.bn_eps, sn, rng, device),
        }
    }

    /// `[b, in, r, r], [b, cond] -> [b, out, 2r, 2r]`
    fn forward(&self, x: Tensor<4>, e: Tensor<2>) -> Tensor<4> {
        let h = upsample2x(relu(self.bn1.forward(x.clone(), e.clone())));
        let h = self.conv1.forward(h);
        let h = self.conv2.forward(relu(self.bn2.forward(h, e)));
        add(h, self.conv_sc.forward(upsample2x(x)))
    }
}

/// A plain embedding table (`nn.Embedding`), G's shared class embedding.
#[derive(Module, Debug)]
pub struct Embedding {
    /// `[num_classes, dim]`
    pub weight: Param<Tensor<2>>,
}

/// BigGAN-PyTorch's `layers.bn`, G's output batch norm: a learned per-channel `gain`/`bias`
/// over the `stored_mean`/`stored_var` buffers, epsilon 1e-5.
#[derive(Module, Debug)]
pub struct OutputBatchNorm {
    pub gain: Param<Tensor<1>>,
    pub bias: Param<Tensor<1>>,
    pub stored_mean: RunningState<Tensor<1>>,
    pub stored_var: RunningState<Tensor<1>>,
    pub training: Param<Flag>,
    pub momentum: f64,
}

impl OutputBatchNorm {
    fn new(c: usize, device: &Device) -> Self {
        OutputBatchNorm {
            gain: Param::from_tensor(Tensor::ones([c], device)),
            bias: init::zeros([c], device),
            stored_mean: RunningState::new(Tensor::zeros([c], device)),
            stored_var: RunningState::new(Tensor::ones([c], device)),
            training: Param::from_bool(true),
            momentum: 0.1,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, _, _] = x.dims();
        let per_sample = |p: &Param<Tensor<1>>| p.val().unsqueeze::<2>().expand([b, c]);
        let affine = (per_sample(&self.gain), per_sample(&self.bias));
        let training = self.training.is_enabled();
        forward_stored(
            x,
            training,
            &self.stored_mean,
            &self.stored_var,
            1e-5,
            self.momentum,
            affine,
        )
    }
}

#[derive(Module, Debug)]
pub struct Generator {
    /// The shared class embedding `[num_classes, shared_dim]` (not spectral-normed).
    pub shared: Embedding,
    /// `z_0 -> [4 * 4 * ch_0]`
    pub linear: SnLinear,
    pub blocks: Vec<GBlock>,
    /// BigGAN-PyTorch's `blocks.i.1`.
    pub attention: Vec<Option<PooledSelfAttention>>,
    /// BigGAN-PyTorch's `output_layer.0`.
    pub output_bn: OutputBatchNorm,
    /// BigGAN-PyTorch's `output_layer.2`.
    pub output_conv: SnConv2d,
    pub z_dim: usize,
    pub z_chunk: usize,
    pub hierarchical: bool,
}

impl Generator {
    pub fn new(cfg: &BigganConfig, rng: &mut Rng, device: &Device) -> Self {
        let a = arch(cfg);
        let ch0 = a.g[0].0;
        let z_in = if cfg.hierarchical {
            cfg.z_chunk()
        } else {
            cfg.z_dim
        };
        let shared = Embedding {
            weight: init::normal([cfg.num_classes, cfg.shared_dim], 0.0, 0.02, rng, device),
        };
        let linear = SnLinear::new([z_in, 16 * ch0], true, cfg.sn_eps, rng, device);
        let blocks =
            a.g.iter()
                .map(|&(i, o, _)| GBlock::new(i, o, cfg, rng, device))
                .collect();
        let attention =
            a.g.iter()
                .map(|&(_, o, r)| {
                    cfg.g_attention
                        .contains(&r)
                        .then(|| PooledSelfAttention::new(o, cfg.sn_eps, rng, device))
                })
                .collect();
        let last = a.g.last().expect("at least one block").1;
        Generator {
            shared,
            linear,
            blocks,
            attention,
            output_bn: OutputBatchNorm::new(last, device),
            output_conv: SnConv2d::new([last, cfg.channels], 3, true, cfg.sn_eps, rng, device),
            z_dim: cfg.z_dim,
            z_chunk: cfg.z_chunk(),
            hierarchical: cfg.hierarchical,
        }
    }

    /// The input layer's part of z and each block's chunk (hierarchical latents), in order;
    /// without the hierarchy all of z and no chunks.
    pub fn split_latent(&self, z: Tensor<2>) -> (Tensor<2>, Vec<Tensor<2>>) {
        if !self.hierarchical {
            return (z, Vec::new());
        }
        let mut parts = z.split(self.z_chunk, 1); // n_blocks + 1 of [b, chunk]
        let first = parts.remove(0);
        (first, parts)
    }

    pub fn num_classes(&self) -> usize {
        self.shared.weight.dims()[0]
    }

    /// BigGAN-PyTorch's standing statistics (`utils.accumulate_standing_stats`, what its
    /// `sample.py --use_standing_stats` samples with): every batch norm's stored mean and
    /// variance replaced by their average over `batches` training-mode passes of `batch` latents
    /// from N(0, I) with uniformly drawn classes. A weight average's stored statistics are the
    /// training G's running ones averaged alongside its weights; these are the average's own.
    /// The variance kept is the unbiased one, as the running statistics (PyTorch's
    /// `F.batch_norm`), where BigGAN-PyTorch's `myBN` keeps the biased one (a factor n/(n-1),
    /// n = batch x height x width). Returns the network on `self`'s device, in evaluation mode.
    pub fn with_standing_stats(self, batches: usize, batch: usize, seed: u64) -> Self {
        let device = self.shared.weight.device();
        // Training-mode batch norm runs on an autodiff device (as burn's layer decides).
        let mut g = self.to_device(&device.clone().autodiff()).train();
        let ad = g.shared.weight.device();
        let mut rng = Rng::new(seed).fork(0x57A4D);
        for k in 0..batches {
            // Momentum 1/(k+1): after k+1 passes each buffer is the plain average of the passes.
            g.set_bn_momentum(1.0 / (k + 1) as f64);
            let (z, y) = g.standing_batch(&mut rng, batch, &ad);
            drop(g.forward(z, y));
        }
        g.set_bn_momentum(0.1);
        g.valid().to_device(&device)
    }

    /// One pass of [`Self::with_standing_stats`]: `[batch, z_dim]` from N(0, I), `[batch]`
    /// uniform classes.
    fn standing_batch(
        &self,
        rng: &mut Rng,
        batch: usize,
        device: &Device,
    ) -> (Tensor<2>, Tensor<1, Int>) {
        let z = rng.normal_vec(batch * self.z_dim, 0.0, 1.0);
        let z = Tensor::from_data(TensorData::new(z, [batch, self.z_dim]), device);
        let classes = self.num_classes();
        let y: Vec<i64> = (0..batch).map(|_| rng.below(classes) as i64).collect();
        (z, Tensor::from_data(TensorData::new(y, [batch]), device))
    }

    fn set_bn_momentum(&mut self, momentum: f64) {
        for block in &mut self.blocks {
            block.bn1.momentum = momentum;
            block.bn2.momentum = momentum;
        }
        self.output_bn.momentum = momentum;
    }

    /// The shared embedding of `y`, `[b, shared_dim]`.
    pub fn embed(&self, y: Tensor<1, Int>) -> Tensor<2> {
        self.shared.weight.val().select(0, y)
    }

    /// `[b, z_dim], [b] -> [b, channels, res, res]` in [-1, 1].
    pub fn forward(&self, z: Tensor<2>, y: Tensor<1, Int>) -> Tensor<4> {
        self.forward_embedded(z, self.embed(y))
    }

    /// The forward pass from a class embedding instead of a label (interpolating between
    /// classes moves the embedding), BigGAN-PyTorch's `G(z, G.shared(y))`.
    pub fn forward_embedded(&self, z: Tensor<2>, e: Tensor<2>) -> Tensor<4> {
        let b = z.dims()[0];
        let (z0, chunks) = self.split_latent(z);
        let ch0 = self.linear.weight.dims()[0] / 16;
        let mut h = self.linear.forward(z0).reshape([b, ch0, 4, 4]); // [b, ch0, 4, 4]
        for (i, (block, attention)) in self.blocks.iter().zip(&self.attention).enumerate() {
            let cond = match chunks.get(i) {
                Some(zi) => Tensor::cat(vec![e.clone(), zi.clone()], 1), // [b, shared + chunk]
                None => e.clone(),
            };
            h = block.forward(h, cond); // [b, ch_i, 8 << i, 8 << i]
            if let Some(sa) = attention {
                h = sa.forward(h).0;
            }
        }
        tanh(self.output_conv.forward(relu(self.output_bn.forward(h))))
    }

    /// BigGAN's orthogonal regularization over G's weights: every parameter of two or more
    /// dimensions but the shared embedding, as BigGAN-PyTorch's `ortho(G, ..., blacklist=
    /// G.shared.parameters())` (convs, linears, the conditional BN maps and the attention's).
    pub fn orthogonal_penalty(&self, beta: f64) -> Tensor<1> {
        let mut w: Vec<Tensor<2>> = vec![self.linear.weight.val()];
        for b in &self.blocks {
            for c in [&b.conv1, &b.conv2, &b.conv_sc] {
                w.push(rows(c.weight.val()));
            }
            for bn in [&b.bn1, &b.bn2] {
                w.push(bn.gain.weight.val());
                w.push(bn.bias.weight.val());
            }
        }
        for sa in self.attention.iter().flatten() {
            for c in [&sa.theta, &sa.phi, &sa.g, &sa.o] {
                w.push(rows(c.weight.val()));
            }
        }
        w.push(rows(self.output_conv.weight.val()));
        w.into_iter()
            .map(|m| orthogonal(m, beta))
            .reduce(|a, b| a + b)
            .expect("G has weights")
    }

    pub fn device(&self) -> Device {
        self.shared.weight.val().device()
    }
}

#[derive(Module, Debug)]
pub struct DBlock {
    pub conv1: SnConv2d,
    pub conv2: SnConv2d,
    pub conv_sc: Option<SnConv2d>,
    pub preactivation: bool,
    pub downsample: bool,
}

impl DBlock {
    /// `[b, in, r, r] -> [b, out, r/2, r/2]` (or `r` without downsampling).
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let h = if self.preactivation {
            relu(x.clone())
        } else {
            x.clone()
        };
        let mut h = self.conv2.forward(relu(self.conv1.forward(h)));
        if self.downsample {
            h = downsample2x(h);
        }
        let mut s = x;
        if self.preactivation {
            if let Some(c) = &self.conv_sc {
                s = c.forward(s);
            }
            if self.downsample {
                s = downsample2x(s);
            }
        } else {
            if self.downsample {
                s = downsample2x(s);
            }
            if let Some(c) = &self.conv_sc {
                s = c.forward(s);
            }
        }
        add(h, s)
    }
}

#[derive(Module, Debug)]
pub struct Discriminator {
    pub blocks: Vec<DBlock>,
    /// BigGAN-PyTorch's `blocks.i.1`.
    pub attention: Vec<Option<PooledSelfAttention>>,
    /// `h -> logit`
    pub linear: SnLinear,
    /// The projection's class embedding `[num_classes, C]`, spectral-normed.
    pub embed: SnEmbedding,
}

impl Discriminator {
    pub fn new(cfg: &BigganConfig, rng: &mut Rng, device: &Device) -> Self {
        let a = arch(cfg);
        let sn = cfg.sn_eps;
        let blocks =
            a.d.iter()
                .enumerate()
                .map(|(i, &(cin, cout, down, _))| DBlock {
                    conv1: SnConv2d::new([cin, cout], 3, true, sn, rng, device),
                    conv2: SnConv2d::new([cout, cout], 3, true, sn, rng, device),
                    conv_sc: (cin != cout || down)
                        .then(|| SnConv2d::new([cin, cout], 1, true, sn, rng, device)),
                    preactivation: i > 0,
                    downsample: down,
                })
                .collect();
        let attention =
            a.d.iter()
                .map(|&(_, cout, _, r)| {
                    cfg.d_attention
                        .contains(&r)
                        .then(|| PooledSelfAttention::new(cout, sn, rng, device))
                })
                .collect();
        let c = a.d.last().expect("at least one block").1;
        Discriminator {
            blocks,
            attention,
            linear: SnLinear::new([c, 1], true, sn, rng, device),
            embed: SnEmbedding::new([cfg.num_classes, c], sn, rng, device),
        }
    }

    /// Pooled features `[b, C]`: ReLU, then the sum over positions.
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let mut h = x;
        for (block, attention) in self.blocks.iter().zip(&self.attention) {
            h = block.forward(h); // [b, c_i, r_i, r_i]
            if let Some(sa) = attention {
                h = sa.forward(h).0;
            }
        }
        let [b, c, _, _] = h.dims();
        relu(h).sum_dim(3).sum_dim(2).reshape([b, c])
    }

    /// `[b, c, r, r], [b] -> [b]` logits: `linear(h) + <embed(y), h>`.
    pub fn forward(&self, x: Tensor<4>, y: Tensor<1, Int>) -> Tensor<1> {
        let h = self.features(x); // [b, C]
        let b = h.dims()[0];
        let projection = (self.embed.forward(y) * h.clone()).sum_dim(1); // [b, 1]
        (self.linear.forward(h) + projection).reshape([b])
    }
}

/// BigGAN's orthogonal regularization (Brock et al. 2019, "Large Scale GAN Training for High
/// Fidelity Natural Image Synthesis", eq. 3): `beta ||W^T W (1 - I)||_F^2`, the squared
/// off-diagonal of the filters' Gram matrix, so filters are pushed towards orthogonality without
/// constraining their norms. The paper's W has one filter per column; here `w` is `[out, fan_in]`
/// (a conv weight flattened), one filter per row, so the Gram matrix is `w w^T`, as
/// BigGAN-PyTorch's `ortho`. Its gradient is `4 beta (w w^T (1 - I)) w`; BigGAN-PyTorch writes
/// `2 (...)` into the gradient directly, so its "strength" is twice this beta.
pub fn orthogonal(w: Tensor<2>, beta: f64) -> Tensor<1> {
    let out = w.dims()[0];
    let device = w.device();
    let gram = w.clone().matmul(w.transpose()); // [out, out]
    let off = Tensor::<2>::ones([out, out], &device) - Tensor::eye(out, &device);
    (gram * off).square().sum() * beta
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::values;
    use burn::tensor::{Distribution, TensorData};

    fn tiny() -> BigganConfig {
        BigganConfig {
            z_dim: 12,
            channels: 1,
            resolution: 16,
            num_classes: 4,
            g_width: 2,
            d_width: 2,
            shared_dim: 6,
            hierarchical: true,
            g_attention: vec![16],
            d_attention: vec![8],
            sn_eps: 1e-8,
            bn_eps: 1e-5,
        }
    }

    fn labels(v: Vec<i64>, device: &Device) -> Tensor<1, Int> {
        let n = v.len();
        Tensor::from_data(TensorData::new(v, [n]), device)
    }

    #[test]
    fn shapes_and_layouts_follow_biggan_pytorch() {
        let device = Device::flex();
        let cfg = tiny();
        cfg.validate().unwrap();
        let g = Generator::new(&cfg, &mut Rng::new(0), &device);
        let d = Discriminator::new(&cfg, &mut Rng::new(1), &device);
        let z = Tensor::<2>::random([3, 12], Distribution::Normal(0.0, 1.0), &device);
        let y = labels(vec![0, 3, 1], &device);
        let img = g.forward(z, y.clone());
        assert_eq!(img.dims(), [3, 1, 16, 16]);
        assert_eq!(d.forward(img, y).dims(), [3]);
        // 128x128: BigGAN-PyTorch's arch[128].
        let big = BigganConfig::default();
        let a = arch(&big);
        let g_out: Vec<usize> = a.g.iter().map(|b| b.1 / 96).collect();
        assert_eq!(g_out, vec![16, 8, 4, 2, 1]);
        let d_out: Vec<usize> = a.d.iter().map(|b| b.1 / 96).collect();
        assert_eq!(d_out, vec![1, 2, 4, 8, 16, 16]);
        assert_eq!(big.z_slots(), 6);
        assert_eq!(big.z_chunk(), 20);
        // 32x32: the CIFAR layout.
        let c32 = BigganConfig {
            resolution: 32,
            ..tiny()
        };
        let a = arch(&c32);
        assert_eq!(a.g.iter().map(|b| b.2).collect::<Vec<_>>(), vec![8, 16, 32]);
        assert_eq!(
            a.d.iter().map(|b| b.2).collect::<Vec<_>>(),
            vec![true, true, false, false]
        );
    }

    /// Standing statistics: the first batch norm's buffers are the average over the passes of
    /// its input's batch mean and unbiased variance (recomputed here from the input layer), one
    /// pass normalizes that pass's batch as training mode does, and the result samples each
    /// image independently of its batch (evaluation mode).
    #[test]
    fn standing_statistics_average_the_passes_batch_statistics() {
        let cfg = tiny();
        let ad = Device::flex().autodiff();
        // Converge the spectral-norm vectors first, so every pass sees the same sigma.
        let g = Generator::new(&cfg, &mut Rng::new(5), &ad);
        for i in 0..60 {
            let (z, y) = g.standing_batch(&mut Rng::new(100 + i), 8, &ad);
            drop(g.forward(z, y));
        }
        let g = g.valid();
        let device = Device::flex();
        let (batches, b, seed) = (3, 6, 9);
        let standing = g.clone().with_standing_stats(batches, b, seed);
        let ch0 = g.linear.weight.dims()[0] / 16;
        let mut rng = Rng::new(seed).fork(0x57A4D);
        let (mut mean, mut var) = (vec![0.0f64; ch0], vec![0.0f64; ch0]);
        for _ in 0..batches {
            let (z, _) = g.standing_batch(&mut rng, b, &device);
            let h = values(g.linear.forward(g.split_latent(z).0)); // [b, ch0 * 16]
            for c in 0..ch0 {
                let v: Vec<f64> = (0..b)
                    .flat_map(|i| (0..16).map(move |p| (i * ch0 + c) * 16 + p))
                    .map(|k| h[k] as f64)
                    .collect();
                let n = v.len() as f64;
                let m = v.iter().sum::<f64>() / n;
                mean[c] += m / batches as f64;
                var[c] +=
                    v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0) / batches as f64;
            }
        }
        let bn = &standing.blocks[0].bn1;
        for (got, want) in [(&bn.stored_mean, &mean), (&bn.stored_var, &var)] {
            for (g, w) in values(got.value()).iter().zip(want) {
                assert!((*g as f64 - w).abs() < 1e-4 * (1.0 + w.abs()), "{g} vs {w}");
            }
        }
        // One pass: evaluation on that pass's batch is training mode on it, up to the
        // unbiased variance's factor n/(n-1) in every layer.
        let one = g.clone().with_standing_stats(1, 64, seed);
        let (z, y) = g.standing_batch(&mut Rng::new(seed).fork(0x57A4D), 64, &device);
        let train = one
            .clone()
            .to_device(&ad)
            .train()
            .forward(z.clone().to_device(&ad), y.clone().to_device(&ad))
            .inner();
        let max_diff = |a: Tensor<4>| (a - train.clone()).abs().max().into_scalar::<f32>();
        let err = max_diff(one.forward(z.clone(), y.clone()));
        let far = max_diff(g.forward(z.clone(), y.clone()));
        assert!(
            err < 0.05 * far,
            "standing {err} vs stored {far} from training mode"
        );
        // Evaluation mode: the first two images do not depend on the rest of the batch.
        let two = one.forward(z.clone().narrow(0, 0, 2), y.clone().narrow(0, 0, 2));
        let all = one.forward(z, y).narrow(0, 0, 2);
        let diff = (two - all).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-5, "batch-dependent samples: {diff}");
    }

    #[test]
    fn the_hierarchical_split_covers_z_exactly_once() {
        // The chunks tile z in order (each entry in exactly one), one per block plus the input
        // layer's, and every chunk reaches the image.
        let cfg = tiny();
        let (slots, chunk) = (cfg.z_slots(), cfg.z_chunk());
        assert_eq!(slots * chunk, cfg.z_dim);
        let device = Device::flex();
        let g = Generator::new(&cfg, &mut Rng::new(2), &device);
        let y = labels(vec![1, 2], &device);
        let z = Tensor::<2>::random([2, 12], Distribution::Normal(0.0, 1.0), &device);
        let (z0, chunks) = g.split_latent(z.clone());
        assert_eq!(chunks.len(), g.blocks.len());
        let mut parts = vec![z0];
        parts.extend(chunks);
        assert!(parts.iter().all(|p| p.dims() == [2, chunk]));
        assert_eq!(Tensor::cat(parts, 1).into_data(), z.clone().into_data());
        let base = g.forward(z.clone(), y.clone());
        for s in 0..slots {
            // Perturb slot s only.
            let mut bump = vec![0.0f32; 2 * 12];
            for i in 0..2 {
                bump[i * 12 + s * chunk] = 0.5;
            }
            let z2 = z.clone() + Tensor::<2>::from_data(TensorData::new(bump, [2, 12]), &device);
            let diff = (g.forward(z2, y.clone()) - base.clone())
                .abs()
                .max()
                .into_scalar::<f32>();
            assert!(diff > 1e-6, "slot {s} has no effect");
        }
        // A non-hierarchical G ignores nothing either: all of z feeds the input layer.
        let flat = BigganConfig {
            hierarchical: false,
            ..tiny()
        };
        assert_eq!(flat.z_slots(), 1);
        let g = Generator::new(&flat, &mut Rng::new(2), &device);
        assert_eq!(g.linear.weight.dims()[1], 12);
    }

    #[test]
    fn the_projection_term_is_the_explicit_inner_product() {
        let device = Device::flex();
        let cfg = tiny();
        let d = Discriminator::new(&cfg, &mut Rng::new(3), &device);
        let x = Tensor::<4>::random([2, 1, 16, 16], Distribution::Default, &device);
        let y = labels(vec![2, 0], &device);
        let logits = d
            .forward(x.clone(), y)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let h = d.features(x).into_data().try_to_vec::<f32>().unwrap();
        let e = d.embed.table().into_data().try_to_vec::<f32>().unwrap();
        let w = d
            .linear
            .effective_weight()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let bias = d.linear.bias.as_ref().unwrap().val().into_scalar::<f32>();
        let c = h.len() / 2;
        for (i, class) in [2usize, 0].iter().enumerate() {
            let hi = &h[i * c..(i + 1) * c];
            let lin: f32 = hi.iter().zip(&w).map(|(a, b)| a * b).sum::<f32>() + bias;
            let proj: f32 = hi
                .iter()
                .zip(&e[class * c..(class + 1) * c])
                .map(|(a, b)| a * b)
                .sum();
            assert!((logits[i] - (lin + proj)).abs() < 1e-4 * (1.0 + logits[i].abs()));
        }
    }

    #[test]
    fn bad_configs_name_the_key() {
        let err = |cfg: BigganConfig| cfg.validate().unwrap_err().to_string();
        let e = err(BigganConfig {
            z_dim: 13,
            ..tiny()
        });
        assert!(e.contains("model.z_dim") && e.contains("try 12"), "{e}");
        let e = err(BigganConfig {
            g_attention: vec![4],
            ..tiny()
        });
        assert!(e.contains("model.g_attention"), "{e}");
        // D's blocks are named by their output: at 16x16 the first D block outputs 8x8.
        let e = err(BigganConfig {
            d_attention: vec![16],
            ..tiny()
        });
        assert!(
            e.contains("model.d_attention") && e.contains("[8, 8, 8]"),
            "{e}"
        );
        // The attention's C/8 projections need 8 channels (g_width 1: 4 channels at 16x16).
        let e = err(BigganConfig {
            g_width: 1,
            ..tiny()
        });
        assert!(e.contains("needs at least 8 channels"), "{e}");
        let e = err(BigganConfig {
            sn_eps: 0.0,
            ..tiny()
        });
        assert!(e.contains("model.sn_eps"), "{e}");
    }

    #[test]
    fn orthogonal_rows_cost_nothing_and_the_gradient_is_the_formula() {
        let device = Device::flex().autodiff();
        // Rotation rows (orthogonal, any norms): zero penalty.
        let (c, s) = (0.6f32, 0.8f32);
        let rot = vec![2.0 * c, -2.0 * s, 0.0, 3.0 * s, 3.0 * c, 0.0, 0.0, 0.0, 0.5];
        let w = Tensor::<2>::from_data(TensorData::new(rot, [3, 3]), &device);
        assert!(orthogonal(w, 1e-4).into_scalar::<f32>().abs() < 1e-9);
        // A general [4, 6] weight: autodiff against 4 beta (w w^T (1 - I)) w on the host.
        let (o, f, beta) = (4, 6, 0.5);
        let v = Rng::new(2).normal_vec(o * f, 0.0, 1.0);
        let w = Tensor::<2>::from_data(TensorData::new(v.clone(), [o, f]), &device).require_grad();
        let loss = orthogonal(w.clone(), beta);
        let grad = w
            .grad(&loss.backward())
            .unwrap()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let at = |i: usize, j: usize| v[i * f + j] as f64;
        let gram = |i: usize, k: usize| (0..f).map(|j| at(i, j) * at(k, j)).sum::<f64>();
        let mut value = 0.0;
        for i in 0..o {
            for k in 0..o {
                if i != k {
                    value += gram(i, k).powi(2);
                }
            }
            for j in 0..f {
                let want: f64 = 4.0
                    * beta
                    * (0..o)
                        .filter(|&k| k != i)
                        .map(|k| gram(i, k) * at(k, j))
                        .sum::<f64>();
                let got = grad[i * f + j] as f64;
                assert!(
                    (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                    "({i},{j}): {got} vs {want}"
                );
            }
        }
        let got = orthogonal(w, beta).into_scalar::<f32>() as f64;
        assert!((got - beta * value).abs() < 1e-4 * beta * value);
    }
}
