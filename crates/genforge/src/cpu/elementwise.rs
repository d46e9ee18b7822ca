//! Element-wise CPU kernels, each one autodiff operation with a one-pass backward: LeakyReLU,
//! ReLU, residual sums, softmax over the last axis, GELU, sine, LayerNorm's normalization, the
//! PixelCNN gate and row-wise cross-entropy.
//!
//! burn-flex runs its element-wise operations on one thread, and burn's compositions under
//! autodiff make several passes (LeakyReLU's backward alone is two `mask_where`s over zero-filled
//! tensors, a `mul_scalar` and an add). Here each runs in parallel blocks, `exp`, `sin` and `erf`
//! as polynomials that vectorise. The trait's default methods are burn's compositions, the
//! reference each kernel is tested against (`nn::activation`).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, binary, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use burn::backend::{TensorMetadata, get_or_init_device_settings};
use burn::tensor::TensorData;
use rayon::prelude::*;

use super::autodiff::{Saved, record, record_saved, untracked};
use super::parallel::{contiguous_f32, filled, owned_values};

/// LayerNorm's epsilon, as PyTorch's `nn.LayerNorm` default.
pub const LAYER_NORM_EPS: f64 = 1e-5;

#[backend_extension(Flex, Autodiff)]
pub trait FusedActivations: Backend {
    /// `x` where `x >= 0`, `slope * x` elsewhere.
    fn leaky_relu_fused(x: FloatTensor<Self>, slope: f32) -> FloatTensor<Self> {
        Self::leaky_relu(x, slope.into())
    }

    /// The gradient through `leaky_relu_fused` given its output (`slope > 0`, so the output has
    /// the input's sign).
    fn leaky_relu_backward(
        output: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        slope: f32,
    ) -> FloatTensor<Self>;

    /// `max(x, 0)`, NaN kept.
    fn relu_fused(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::relu(x)
    }

    /// The gradient through `relu_fused` given its output.
    fn relu_fused_backward(
        output: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::relu_backward(output, grad)
    }

    /// Softmax over the last axis.
    fn softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let last = x.shape().num_dims() - 1;
        Self::softmax(x, last)
    }

    /// The gradient through `softmax_last` given its output `y`: `y * (g - sum(g * y))` per row.
    fn softmax_last_backward(y: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;

    /// GELU, `x Phi(x)` with the exact (erf) normal CDF.
    fn gelu_fused(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The gradient through `gelu_fused` given its input: `g (Phi(x) + x phi(x))`.
    fn gelu_fused_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `sin(x)`.
    fn sin_fused(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The gradient through `sin_fused` given its input: `g cos(x)`.
    fn sin_fused_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `a + b`, both of one shape.
    fn add_fused(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::float_add(a, b)
    }

    /// LayerNorm's normalization over the last axis, `(x - mean) / sqrt(var + 1e-5)` with the
    /// biased variance.
    fn layer_norm_fused(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The gradient through `layer_norm_fused` given its input, per row:
    /// `rstd (g - mean(g) - xhat mean(g xhat))`.
    fn layer_norm_fused_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;

    /// The PixelCNN gate `tanh(a) * sigmoid(b)` of the two halves `[a | b]` of the last axis.
    fn gated_tanh(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The gradient through `gated_tanh` given its input: `[g s (1 - t^2) | g t s (1 - s)]`.
    fn gated_tanh_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self>;

    /// Cross-entropy of each row of `logits` `[n, k]` against its class in `labels` `[n]`:
    /// `logsumexp(x) - x_label`, `[n]`.
    fn cross_entropy_rows(logits: FloatTensor<Self>, labels: IntTensor<Self>) -> FloatTensor<Self>;

    /// The gradient through `cross_entropy_rows`: `g_r (softmax(x_r) - onehot(label_r))`.
    fn cross_entropy_rows_backward(
        logits: FloatTensor<Self>,
        labels: IntTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self>;
}

/// `log sum exp` of a row, shifted by its maximum; the sum runs in 8 lanes so that it
/// vectorises.
#[inline(always)]
fn log_sum_exp(x: &[f32]) -> f32 {
    let m = x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let mut lanes = [0.0f32; 8];
    for chunk in x.chunks(8) {
        for (l, v) in lanes.iter_mut().zip(chunk) {
            *l += exp(v - m);
        }
    }
    m + lanes.iter().sum::<f32>().ln()
}

fn labels_of(labels: FlexTensor) -> Vec<usize> {
    labels
        .into_data()
        .iter::<i64>()
        .map(|l| l as usize)
        .collect()
}

/// The integer `n` (two's complement) of `ROUND + n`, `|n| < 2^22`: the low bits of its
/// mantissa. Unlike `as i32`, which saturates and so is done lane by lane, this vectorises.
#[inline(always)]
fn integer_bits(shifted: f32) -> u32 {
    const ROUND_BITS: u32 = 0x4B40_0000; // 1.5 * 2^23
    shifted.to_bits().wrapping_sub(ROUND_BITS)
}

/// `e^x` in f32 within 2 ulp, without libm: `2^n e^r` with `n = round(x log2 e)`, `|r| <= ln 2 / 2`
/// and Cephes' degree-7 polynomial for `e^r`. Branch-free, so the loops calling it vectorise
/// (libm's scalar `expf`/`exp` calls do not). The argument is clamped to `[-87.3, 88]`, where
/// `2^n` stays a normal f32.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let x = x.clamp(-87.3, 88.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_1e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 0.166_666_65)
        * r
        + 0.5;
    let er = p * r * r + r + 1.0;
    er * f32::from_bits(integer_bits(shifted).wrapping_add(127) << 23)
}

/// Defines `fn $name` compiled twice: for AVX2 and FMA, where its loops vectorise 8 lanes wide,
/// and for baseline x86-64 (4 lanes), the crate's target; a call takes the first where the CPU
/// has the features. The arithmetic is the same IEEE operations either way (Rust does not contract
/// into FMA), so results do not depend on the CPU.
macro_rules! simd_fn {
    ($(#[$m:meta])* fn $name:ident($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)? $body:block) => {
        $(#[$m])*
        fn $name($($a: $t),*) $(-> $r)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn wide($($a: $t),*) $(-> $r)? $body
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU has the features `wide` is compiled for.
                    return unsafe { wide($($a),*) };
                }
            }
            $body
        }
    };
}

/// `out[i] = f(a[i], b[i])` over blocks in parallel, `f` a block kernel.
fn zip_blocks(a: &[f32], b: &[f32], f: impl Fn(&[f32], &[f32], &mut [f32]) + Sync) -> Vec<f32> {
    const BLOCK: usize = 4096;
    filled(a.len(), BLOCK, |i, o| {
        let at = i * BLOCK;
        f(&a[at..at + o.len()], &b[at..at + o.len()], o)
    })
}

simd_fn! {
    /// GELU of a block.
    fn gelu_block(x: &[f32], _unused: &[f32], out: &mut [f32]) {
        for (o, &x) in out.iter_mut().zip(x) {
            *o = x * normal_cdf_pdf(x).0;
        }
    }
}

simd_fn! {
    /// GELU's input gradient on a block: `g (Phi(x) + x phi(x))`.
    fn gelu_backward_block(x: &[f32], g: &[f32], out: &mut [f32]) {
        for ((o, &x), &g) in out.iter_mut().zip(x).zip(g) {
            let (cdf, pdf) = normal_cdf_pdf(x);
            *o = g * (cdf + x * pdf);
        }
    }
}

simd_fn! {
    /// LeakyReLU of a block, as burn-flex's (`x >= 0`: `x`, else `slope x`).
    fn leaky_block(x: &[f32], slope: f32, out: &mut [f32]) {
        for (o, &x) in out.iter_mut().zip(x) {
            *o = if x >= 0.0 { x } else { slope * x };
        }
    }
}

simd_fn! {
    /// LeakyReLU's input gradient on a block from its output `y` (`slope > 0`: `y` has the
    /// input's sign).
    fn leaky_backward_block(y: &[f32], g: &[f32], slope: f32, out: &mut [f32]) {
        for ((o, &y), &g) in out.iter_mut().zip(y).zip(g) {
            *o = if y >= 0.0 { g } else { slope * g };
        }
    }
}

simd_fn! {
    /// ReLU of a block, as burn-flex's (NaN kept).
    fn relu_block(x: &[f32], _unused: &[f32], out: &mut [f32]) {
        for (o, &x) in out.iter_mut().zip(x) {
            *o = if x.is_nan() || x > 0.0 { x } else { 0.0 };
        }
    }
}

simd_fn! {
    /// ReLU's input gradient on a block from its output `y` (kept where `y` is NaN, as burn's).
    fn relu_backward_block(y: &[f32], g: &[f32], out: &mut [f32]) {
        for ((o, &y), &g) in out.iter_mut().zip(y).zip(g) {
            *o = if y.is_nan() || y > 0.0 { g } else { 0.0 };
        }
    }
}

simd_fn! {
    /// `a += b` on a block.
    fn add_block(a: &mut [f32], b: &[f32]) {
        a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
    }
}

simd_fn! {
    /// `sin` of a block.
    fn sin_block(x: &[f32], _unused: &[f32], out: &mut [f32]) {
        for (o, &x) in out.iter_mut().zip(x) {
            *o = sin_cos(x).0;
        }
        fix_large(x, out, f64::sin);
    }
}

simd_fn! {
    /// The gradient of `sin` on a block: `g cos(x)`.
    fn sin_backward_block(x: &[f32], g: &[f32], out: &mut [f32]) {
        for (o, &x) in out.iter_mut().zip(x) {
            *o = sin_cos(x).1;
        }
        fix_large(x, out, f64::cos);
        for (o, &g) in out.iter_mut().zip(g) {
            *o *= g;
        }
    }
}

/// `sum f(v)` over a slice in 16 lanes, so that the loop vectorises.
#[inline(always)]
pub(crate) fn lane_sum(x: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; 16];
    for chunk in x.chunks(16) {
        for (l, &v) in lanes.iter_mut().zip(chunk) {
            *l += f(v);
        }
    }
    lanes.iter().sum()
}

/// Mean and `1 / sqrt(var + eps)` of one row (biased variance).
#[inline(always)]
fn row_mean_rstd(x: &[f32]) -> (f32, f32) {
    let n = x.len() as f32;
    let mean = lane_sum(x, |v| v) / n;
    let var = lane_sum(x, |v| (v - mean) * (v - mean)) / n;
    (mean, 1.0 / (var + LAYER_NORM_EPS as f32).sqrt())
}

simd_fn! {
    /// LayerNorm's normalization of one row.
    fn layer_norm_row(x: &[f32], out: &mut [f32]) {
        let (mean, rstd) = row_mean_rstd(x);
        for (o, &v) in out.iter_mut().zip(x) {
            *o = (v - mean) * rstd;
        }
    }
}

simd_fn! {
    /// The gradient through [`layer_norm_row`], `g` the upstream gradient of the row.
    fn layer_norm_row_backward(x: &[f32], g: &[f32], out: &mut [f32]) {
        let (mean, rstd) = row_mean_rstd(x);
        let (mut sg, mut sgx) = ([0.0f32; 16], [0.0f32; 16]);
        for (x, g) in x.chunks(16).zip(g.chunks(16)) {
            for ((a, b), (&v, &g)) in sg.iter_mut().zip(sgx.iter_mut()).zip(x.iter().zip(g)) {
                *a += g;
                *b += g * (v - mean) * rstd;
            }
        }
        let n = x.len() as f32;
        let (mg, mgx) = (sg.iter().sum::<f32>() / n, sgx.iter().sum::<f32>() / n);
        for ((o, &v), &g) in out.iter_mut().zip(x).zip(g) {
            *o = rstd * (g - mg - (v - mean) * rstd * mgx);
        }
    }
}

/// Past `|x| = 8192` the reduction of [`sin_cos`] loses accuracy: those (rare) arguments take
/// `f` in f64 instead.
#[inline(always)]
fn fix_large(x: &[f32], out: &mut [f32], f: fn(f64) -> f64) {
    const LIMIT: f32 = 8192.0;
    if x.iter().fold(0.0f32, |m, v| m.max(v.abs())) > LIMIT {
        for (o, &x) in out.iter_mut().zip(x) {
            if x.abs() > LIMIT {
                *o = f(x as f64) as f32;
            }
        }
    }
}

/// `(sin x, cos x)` in f32 within 2e-7 for `|x| <= 8192` (and NaN for infinite `x`): `x = j pi/2
/// + r` with `|r| <= pi/4` (pi/2 in three parts, so `j pi/2` is exact), Cephes' polynomials for
/// `sin r` and `cos r`, and the quadrant `j mod 4` picking and signing them. Branch-free, so the
/// loops calling it vectorise (libm's `sinf`/`cosf` are scalar calls).
#[inline(always)]
fn sin_cos(x: f32) -> (f32, f32) {
    const PIO2_1: f32 = 1.570_312_5;
    const PIO2_2: f32 = 4.837_513e-4;
    const PIO2_3: f32 = 7.549_79e-8;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let shifted = x * std::f32::consts::FRAC_2_PI + ROUND;
    let j = shifted - ROUND;
    let r = ((x - j * PIO2_1) - j * PIO2_2) - j * PIO2_3;
    let z = r * r;
    let sin_r = ((-1.951_529_6e-4 * z + 8.332_161e-3) * z - 0.166_666_55) * z * r + r;
    let cos_r =
        ((2.443_315_7e-5 * z - 1.388_731_6e-3) * z + 4.166_664_6e-2) * z * z - 0.5 * z + 1.0;
    // sin x = (sin r, cos r, -sin r, -cos r)[j mod 4], cos x = (cos r, -sin r, -cos r, sin r)[..]
    let q = integer_bits(shifted);
    let (s, c) = if q & 1 == 0 {
        (sin_r, cos_r)
    } else {
        (cos_r, sin_r)
    };
    let sin_sign = (q & 2) << 30;
    let cos_sign = (q.wrapping_add(1) & 2) << 30;
    (
        f32::from_bits(s.to_bits() ^ sin_sign),
        f32::from_bits(c.to_bits() ^ cos_sign),
    )
}

simd_fn! {
    /// The gate on one row `[a | b]`: `tanh(a) sigmoid(b)`.
    fn gate_row(x: &[f32], out: &mut [f32]) {
        let (a, b) = x.split_at(out.len());
        for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
            let (t, s) = gate_parts(a, b);
            *o = t * s;
        }
    }
}

simd_fn! {
    /// The gate's gradient on one row, `g` the upstream gradient of its `c` outputs.
    fn gate_row_backward(x: &[f32], g: &[f32], out: &mut [f32]) {
        let c = g.len();
        let ((a, b), (oa, ob)) = (x.split_at(c), out.split_at_mut(c));
        for ((((oa, ob), &a), &b), &g) in oa.iter_mut().zip(ob).zip(a).zip(b).zip(g) {
            let (t, s) = gate_parts(a, b);
            *oa = g * s * (1.0 - t * t);
            *ob = g * t * s * (1.0 - s);
        }
    }
}

simd_fn! {
    /// `log sum exp` of one row.
    fn row_log_sum_exp(x: &[f32]) -> f32 {
        log_sum_exp(x)
    }
}

simd_fn! {
    /// Cross-entropy's gradient on one row: `g (softmax(x) - onehot(label))`.
    fn cross_entropy_row_backward(x: &[f32], g: f32, label: usize, out: &mut [f32]) {
        let lse = log_sum_exp(x);
        for (o, &v) in out.iter_mut().zip(x) {
            *o = g * exp(v - lse);
        }
        out[label] -= g;
    }
}

/// `erf(x)` to within 3e-7 (W. J. Cody's rational approximations as in Numerical Recipes'
/// `erfcc`, which is within 1.2e-7 relative of `erfc` everywhere, evaluated in f32): one
/// [`exp`], no branches on ranges, so the loops over it vectorise.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_2
        + t * (1.000_023_7
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_204
                                + t * (1.488_515_9 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * exp(poly);
    if x >= 0.0 { 1.0 - erfc } else { erfc - 1.0 }
}

/// `(Phi(x), phi(x))`, the standard normal CDF and density.
#[inline(always)]
fn normal_cdf_pdf(x: f32) -> (f32, f32) {
    const INV_SQRT2: f32 = std::f32::consts::FRAC_1_SQRT_2;
    const INV_SQRT_2PI: f32 = 0.398_942_3;
    (
        0.5 * (1.0 + erf(x * INV_SQRT2)),
        INV_SQRT_2PI * exp(-0.5 * x * x),
    )
}

/// `(tanh a, sigmoid b)`, tanh as `1 - 2 / (e^2a + 1)` (within 2e-7 absolute; libm's `tanhf`
/// goes through `expm1f` and costs about twice as much).
#[inline(always)]
fn gate_parts(a: f32, b: f32) -> (f32, f32) {
    (1.0 - 2.0 / (exp(2.0 * a) + 1.0), 1.0 / (1.0 + exp(-b)))
}

/// Rows of `n` of `x` and of the output (width `out_n`), 64 rows per parallel task.
fn par_rows(
    x: &[f32],
    n: usize,
    out_n: usize,
    f: impl Fn(&[f32], &mut [f32], usize) + Sync,
) -> Vec<f32> {
    let rows = x.len() / n.max(1);
    if n == 0 || out_n == 0 {
        return vec![0.0f32; rows * out_n];
    }
    filled(rows * out_n, 64 * out_n, |blk, out| {
        let x = &x[blk * 64 * n..];
        for (i, (o, x)) in out.chunks_mut(out_n).zip(x.chunks(n)).enumerate() {
            f(x, o, blk * 64 + i);
        }
    })
}

/// The block kernel `f` over `x` and, for a gradient, the upstream `grad` (`f` gets `x` twice
/// without one), as a tensor of `x`'s shape.
fn elementwise(
    x: FlexTensor,
    grad: Option<FlexTensor>,
    f: impl Fn(&[f32], &[f32], &mut [f32]) + Sync,
) -> FlexTensor {
    let shape = x.shape();
    let x = contiguous_f32(&x);
    let out = match grad {
        Some(g) => zip_blocks(&x, &contiguous_f32(&g), f),
        None => zip_blocks(&x, &x, f),
    };
    FlexTensor::from_data(TensorData::new(out, shape))
}

impl FusedActivations for Flex {
    fn gelu_fused(x: FloatTensor<Self>) -> FloatTensor<Self> {
        elementwise(x, None, gelu_block)
    }

    fn gelu_fused_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        elementwise(x, Some(grad), gelu_backward_block)
    }

    fn sin_fused(x: FloatTensor<Self>) -> FloatTensor<Self> {
        elementwise(x, None, sin_block)
    }

    fn sin_fused_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        elementwise(x, Some(grad), sin_backward_block)
    }

    fn add_fused(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        let bs = contiguous_f32(&b);
        let mut a = a;
        // In place when `a` owns its data.
        if let Some(buf) = owned_values(&mut a, bs.len()) {
            buf.par_chunks_mut(4096)
                .zip(bs.par_chunks(4096))
                .for_each(|(a, b)| add_block(a, b));
            return a;
        }
        let shape = a.shape();
        let out = zip_blocks(&contiguous_f32(&a), &bs, |a, b, o| {
            o.copy_from_slice(a);
            add_block(o, b)
        });
        FlexTensor::from_data(TensorData::new(out, shape))
    }

    fn layer_norm_fused(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let shape = x.shape();
        let n = shape[shape.num_dims() - 1];
        let x = contiguous_f32(&x);
        let out = par_rows(&x, n, n, |x, o, _| layer_norm_row(x, o));
        FlexTensor::from_data(TensorData::new(out, shape))
    }

    fn layer_norm_fused_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let shape = x.shape();
        let n = shape[shape.num_dims() - 1];
        let (x, g) = (contiguous_f32(&x), contiguous_f32(&grad));
        let out = par_rows(&x, n, n, |x, o, row| {
            layer_norm_row_backward(x, &g[row * n..(row + 1) * n], o)
        });
        FlexTensor::from_data(TensorData::new(out, shape))
    }

    fn cross_entropy_rows(logits: FloatTensor<Self>, labels: IntTensor<Self>) -> FloatTensor<Self> {
        let shape = logits.shape();
        let (n, k) = (shape[0], shape[1]);
        let labels = labels_of(labels);
        let x = contiguous_f32(&logits);
        let out = par_rows(&x, k, 1, |x, o, row| {
            o[0] = row_log_sum_exp(x) - x[labels[row]];
        });
        FlexTensor::from_data(TensorData::new(out, [n]))
    }

    fn cross_entropy_rows_backward(
        logits: FloatTensor<Self>,
        labels: IntTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        let shape = logits.shape();
        let k = shape[1];
        let labels = labels_of(labels);
        let (x, g) = (contiguous_f32(&logits), contiguous_f32(&grad));
        let out = par_rows(&x, k, k, |x, o, row| {
            cross_entropy_row_backward(x, g[row], labels[row], o)
        });
        FlexTensor::from_data(TensorData::new(out, shape))
    }

    fn gated_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        let mut shape = x.shape();
        let last = shape.num_dims() - 1;
        let n = shape[last];
        let c = n / 2;
        let x = contiguous_f32(&x);
        let out = par_rows(&x, n, c, |x, o, _| gate_row(x, o));
        shape[last] = c;
        FlexTensor::from_data(TensorData::new(out, shape))
    }

    fn gated_tanh_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let shape = x.shape();
        let n = shape[shape.num_dims() - 1];
        let c = n / 2;
        let (x, g) = (contiguous_f32(&x), contiguous_f32(&grad));
        let out = par_rows(&x, n, n, |x, o, row| {
            gate_row_backward(x, &g[row * c..(row + 1) * c], o)
        });
        FlexTensor::from_data(TensorData::new(out, shape))
    }

    fn softmax_last_backward(y: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        let shape = y.shape();
        let n = shape[shape.num_dims() - 1];
        let (y, g) = (contiguous_f32(&y), contiguous_f32(&grad));
        let mut out = vec![0.0f32; y.len()];
        let block = 64 * n; // rows per parallel task
        out.par_chunks_mut(block)
            .zip(y.par_chunks(block))
            .zip(g.par_chunks(block))
            .for_each(|((out, y), g)| {
                for ((o, y), g) in out.chunks_mut(n).zip(y.chunks(n)).zip(g.chunks(n)) {
                    let dot: f32 = y.iter().zip(g).map(|(a, b)| a * b).sum();
                    for ((o, y), g) in o.iter_mut().zip(y).zip(g) {
                        *o = y * (g - dot);
                    }
                }
            });
        FlexTensor::from_data(TensorData::new(out, shape))
    }

    fn leaky_relu_fused(x: FloatTensor<Self>, slope: f32) -> FloatTensor<Self> {
        elementwise(x, None, |x, _, o| leaky_block(x, slope, o))
    }

    fn leaky_relu_backward(
        output: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        slope: f32,
    ) -> FloatTensor<Self> {
        elementwise(output, Some(grad), |y, g, o| {
            leaky_backward_block(y, g, slope, o)
        })
    }

    fn relu_fused(x: FloatTensor<Self>) -> FloatTensor<Self> {
        elementwise(x, None, relu_block)
    }

    fn relu_fused_backward(
        output: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        elementwise(output, Some(grad), relu_backward_block)
    }
}

#[derive(Debug)]
struct CrossEntropyBackward;

impl<B: Backend + FusedActivations> Backward<B, 1> for CrossEntropyBackward {
    /// The logits and the labels.
    type State = (FloatTensor<B>, IntTensor<B>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (logits, labels) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |g| {
            B::cross_entropy_rows_backward(logits, labels, g)
        });
    }
}

/// The sum's gradient is the upstream gradient, for both terms.
#[derive(Debug)]
struct AddBackward;

impl<B: Backend> Backward<B, 2> for AddBackward {
    type State = ();

    fn backward(self, ops: Ops<(), 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        binary::<B, _, _>(ops.parents, ops.node, grads, |g| g, |g| g);
    }
}

#[derive(Debug)]
struct LeakyReluBackward;

impl<B: Backend + FusedActivations> Backward<B, 1> for LeakyReluBackward {
    /// The forward output and the slope.
    type State = (FloatTensor<B>, f32);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (output, slope) = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            B::leaky_relu_backward(output, grad, slope)
        });
    }
}

impl<B: Backend + FusedActivations, C: CheckpointStrategy> FusedActivations for Autodiff<B, C> {
    fn leaky_relu_fused(x: FloatTensor<Self>, slope: f32) -> FloatTensor<Self> {
        record::<B, C, _, 1>(LeakyReluBackward, [x], |[x], tracked| {
            let y = B::leaky_relu_fused(x, slope);
            (y.clone(), tracked.then_some((y, slope)))
        })
    }

    fn relu_fused(x: FloatTensor<Self>) -> FloatTensor<Self> {
        record_saved::<B, C>(x, B::relu_fused, Saved::Output, B::relu_fused_backward)
    }

    fn add_fused(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        record::<B, C, _, 2>(AddBackward, [a, b], |[a, b], _| {
            (B::add_fused(a, b), Some(()))
        })
    }

    fn softmax_last(x: FloatTensor<Self>) -> FloatTensor<Self> {
        record_saved::<B, C>(x, B::softmax_last, Saved::Output, B::softmax_last_backward)
    }

    fn gelu_fused(x: FloatTensor<Self>) -> FloatTensor<Self> {
        record_saved::<B, C>(x, B::gelu_fused, Saved::Input, B::gelu_fused_backward)
    }

    fn gelu_fused_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        untracked::<B, C, 2>([x, grad], |[x, g]| B::gelu_fused_backward(x, g))
    }

    fn gated_tanh(x: FloatTensor<Self>) -> FloatTensor<Self> {
        record_saved::<B, C>(x, B::gated_tanh, Saved::Input, B::gated_tanh_backward)
    }

    fn gated_tanh_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        untracked::<B, C, 2>([x, grad], |[x, g]| B::gated_tanh_backward(x, g))
    }

    fn sin_fused(x: FloatTensor<Self>) -> FloatTensor<Self> {
        record_saved::<B, C>(x, B::sin_fused, Saved::Input, B::sin_fused_backward)
    }

    fn sin_fused_backward(x: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        untracked::<B, C, 2>([x, grad], |[x, g]| B::sin_fused_backward(x, g))
    }

    fn layer_norm_fused(x: FloatTensor<Self>) -> FloatTensor<Self> {
        record_saved::<B, C>(
            x,
            B::layer_norm_fused,
            Saved::Input,
            B::layer_norm_fused_backward,
        )
    }

    fn layer_norm_fused_backward(
        x: FloatTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        untracked::<B, C, 2>([x, grad], |[x, g]| B::layer_norm_fused_backward(x, g))
    }

    fn cross_entropy_rows(logits: FloatTensor<Self>, labels: IntTensor<Self>) -> FloatTensor<Self> {
        record::<B, C, _, 1>(CrossEntropyBackward, [logits], |[x], tracked| {
            if tracked {
                let y = B::cross_entropy_rows(x.clone(), labels.clone());
                (y, Some((x, labels)))
            } else {
                (B::cross_entropy_rows(x, labels), None)
            }
        })
    }

    fn cross_entropy_rows_backward(
        logits: FloatTensor<Self>,
        labels: IntTensor<Self>,
        grad: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        untracked::<B, C, 2>([logits, grad], |[x, g]| {
            B::cross_entropy_rows_backward(x, labels, g)
        })
    }

    fn softmax_last_backward(y: FloatTensor<Self>, grad: FloatTensor<Self>) -> FloatTensor<Self> {
        // Only reached if a second derivative were taken; burn has none, so compose.
        let last = y.shape().num_dims() - 1;
        let dot = Self::float_sum_dim(Self::float_mul(grad.clone(), y.clone()), last);
        Self::float_mul(y, Self::float_sub(grad, dot))
    }

    fn leaky_relu_backward(
        output: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        slope: f32,
    ) -> FloatTensor<Self> {
        // Only reached if a second derivative were taken; burn has none, so compose.
        let bool_dtype = get_or_init_device_settings::<Self>(&output.device()).bool_dtype;
        let negative = Self::float_lower_elem(output, 0f32.into(), bool_dtype);
        let scaled = Self::float_mul_scalar(grad.clone(), slope.into());
        Self::float_mask_where(grad, negative, scaled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectorisable `exp` is within 2 ulp of f64's over the range it does not clamp, and
    /// stays finite and non-negative beyond it (no NaN or wrapped exponent).
    #[test]
    fn exp_matches_libm() {
        let mut x = -87.0f32;
        while x < 88.0 {
            let (got, want) = (exp(x) as f64, (x as f64).exp());
            assert!(
                (got - want).abs() <= 2.5e-7 * want,
                "exp({x}) = {got}, want {want}"
            );
            x += 0.0137;
        }
        assert!(exp(-200.0) < 1e-37 && exp(-200.0) >= 0.0);
        assert!(exp(200.0) > 1e38 && exp(200.0).is_finite());
    }

    /// `sin_cos` against f64 over the range SIREN layers see and beyond.
    #[test]
    fn sin_cos_matches_libm() {
        let mut x = -300.0f32;
        while x < 300.0 {
            let (s, c) = sin_cos(x);
            let (ws, wc) = ((x as f64).sin(), (x as f64).cos());
            assert!(
                (s as f64 - ws).abs() < 2e-7 && (c as f64 - wc).abs() < 2e-7,
                "sin_cos({x}) = ({s}, {c}), want ({ws}, {wc})"
            );
            x += 0.0173;
        }
    }

    /// The rational `erf` matches known values and Simpson's rule in f64.
    #[test]
    fn erf_matches_known_values_and_a_quadrature() {
        for (x, want) in [
            (0.5f32, 0.520_499_9f32),
            (1.0, 0.842_700_8),
            (-2.0, -0.995_322_3),
        ] {
            assert!((erf(x) - want).abs() < 2e-7, "erf({x}) = {}", erf(x));
        }
        // erf by Simpson's rule on 2 / sqrt(pi) e^(-t^2), in f64 (error below 1e-12).
        let erf_reference = |x: f64| {
            let n = 2000;
            let h = x / n as f64;
            let f = |t: f64| (-t * t).exp();
            let inner: f64 = (1..n)
                .map(|i| f(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 })
                .sum();
            (f(0.0) + inner + f(x)) * h / 3.0 * std::f64::consts::FRAC_2_SQRT_PI
        };
        for i in -600..=600 {
            let x = i as f32 / 100.0;
            let want = erf_reference(x as f64) as f32;
            assert!(
                (erf(x) - want).abs() < 3e-7,
                "erf({x}) = {}, want {want}",
                erf(x)
            );
        }
    }
}
