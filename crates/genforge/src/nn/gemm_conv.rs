//! Convolution and transposed convolution as one matrix product over the whole batch.
//!
//! burn-flex runs a convolution as per-image GEMMs over `out x (in * k * k)` by `h * w`, and its
//! backward as more of them; at GAN sizes (batch 32-64, maps of 4x4 to 64x64) those products are
//! thin and the GEMM kernel runs far below its peak. Here the input goes channels-last, the
//! kernel taps are gathered as rows (im2col: one `select` of `in`-wide rows, padding reads an
//! appended zero row), and one `[b * oh * ow, k * k * in] x [k * k * in, out]` product does the
//! rest; the transposed convolution is the same product the other way round, followed by a
//! scatter-add of the rows into the output (col2im). Autodiff sees only `select`,
//! `select_assign`, `matmul`, reshapes and permutes, so both gradients are batch-wide products
//! too. Results equal burn's `conv2d` / `conv_transpose2d` up to floating-point summation order.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::cpu::conv as cpu_conv;
use crate::nn::channel_affine::channel_affine;
use burn::tensor::module;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, IndexingUpdateOp, Int, Tensor, TensorData};

/// The geometry of one convolution: input `h x w`, kernel `k`, `stride`, zero `padding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Geometry {
    batch: usize,
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    padding: usize,
    transposed: bool,
}

impl Geometry {
    fn new(
        [b, _, h, w]: [usize; 4],
        k: usize,
        stride: usize,
        padding: usize,
        transposed: bool,
    ) -> Self {
        Geometry {
            batch: b,
            h,
            w,
            k,
            stride,
            padding,
            transposed,
        }
    }

    /// A 1x1 convolution without stride or padding: a plain product, no gather.
    fn pointwise(&self) -> bool {
        self.k == 1 && self.stride == 1 && self.padding == 0
    }

    /// Output size of the convolution (or of the transposed one, without output padding).
    fn out(&self) -> (usize, usize) {
        let Geometry {
            h,
            w,
            k,
            stride: s,
            padding: p,
            ..
        } = *self;
        if self.transposed {
            ((h - 1) * s + k - 2 * p, (w - 1) * s + k - 2 * p)
        } else {
            ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1)
        }
    }

    /// For every (image, small-map pixel, tap) in that order, the row of the large map it meets;
    /// positions in the padding get the extra row `batch * rows(large map)`. For a convolution
    /// the small map is the output and the large one the input; for a transposed one, the
    /// other way round.
    fn rows(&self) -> Vec<i64> {
        let (oh, ow) = self.out();
        let (sh, sw, lh, lw) = if self.transposed {
            (self.h, self.w, oh, ow)
        } else {
            (oh, ow, self.h, self.w)
        };
        let (k, s, p) = (self.k, self.stride as i64, self.padding as i64);
        let outside = (self.batch * lh * lw) as i64;
        let mut rows = Vec::with_capacity(self.batch * sh * sw * k * k);
        for n in 0..self.batch {
            let base = (n * lh * lw) as i64;
            for y in 0..sh as i64 {
                for x in 0..sw as i64 {
                    for ky in 0..k as i64 {
                        for kx in 0..k as i64 {
                            let (ly, lx) = (y * s + ky - p, x * s + kx - p);
                            let inside =
                                (0..lh as i64).contains(&ly) && (0..lw as i64).contains(&lx);
                            rows.push(if inside {
                                base + ly * lw as i64 + lx
                            } else {
                                outside
                            });
                        }
                    }
                }
            }
        }
        rows
    }
}

thread_local! {
    /// Row indices per geometry and device: a training run reuses a handful of shapes.
    static ROWS: RefCell<HashMap<(Geometry, String), Tensor<1, Int>>> = RefCell::new(HashMap::new());
}

fn rows_tensor(g: Geometry, device: &Device) -> Tensor<1, Int> {
    let key = (g, format!("{device:?}"));
    ROWS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.len() > 256 {
            cache.clear();
        }
        cache
            .entry(key)
            .or_insert_with(|| {
                let rows = g.rows();
                let n = rows.len();
                Tensor::from_data(TensorData::new(rows, [n]), device)
            })
            .clone()
    })
}

pub use crate::cpu::settings::ConvRoute as Route;

/// The convolution route `GENFORGE_CONV` picks.
pub fn route() -> Route {
    crate::cpu::settings::settings().conv
}

/// Whether a convolution on a tensor on the CPU backend (`cpu`) or not takes the GEMM route. On the CPU, `auto` sends every convolution to `cpu::conv`, whose
/// kernels pick per pass between one batch-wide product and burn-flex's own kernels; `gemm`
/// does the same (on the CPU the two are one route); other devices keep burn's kernels unless
/// `gemm` asks for the route built from tensor ops.
pub fn wanted(cpu: bool) -> bool {
    match route() {
        Route::Burn => false,
        Route::Gemm => true,
        Route::Auto => cpu,
    }
}

/// A convolution (`weight` `[out, in, k, k]`) by the route [`route`] picks for its shape: burn's
/// `conv2d` or [`conv2d`].
pub fn conv2d_routed(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    stride: usize,
    padding: usize,
) -> Tensor<4> {
    let [_, _, kh, kw] = weight.dims();
    let [_, _, h, w] = x.dims();
    let cpu = cpu_conv::supports(&x);
    if kh == kw && wanted(cpu) {
        if cpu {
            return add_bias(cpu_conv::conv2d(x, weight, stride, padding), bias);
        }
        if h == w {
            return conv2d(x, weight, bias, stride, padding);
        }
    }
    let options = ConvOptions::new([stride; 2], [padding; 2], [1, 1], 1);
    module::conv2d(x, weight, bias, options)
}

/// A transposed convolution (`weight` `[in, out, k, k]`) by the route [`route`] picks.
pub fn conv_transpose2d_routed(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    stride: usize,
    padding: usize,
) -> Tensor<4> {
    let [_, _, kh, kw] = weight.dims();
    let cpu = cpu_conv::supports(&x);
    if kh == kw && wanted(cpu) {
        if cpu {
            return add_bias(cpu_conv::conv_transpose2d(x, weight, stride, padding), bias);
        }
        return conv_transpose2d(x, weight, bias, stride, padding);
    }
    let options = ConvTransposeOptions::new([stride; 2], [padding; 2], [0, 0], [1, 1], 1);
    module::conv_transpose2d(x, weight, bias, options)
}

fn add_bias(y: Tensor<4>, bias: Option<Tensor<1>>) -> Tensor<4> {
    match bias {
        Some(b) => {
            let c = b.dims()[0];
            channel_affine(y, None, Some(b.reshape([1, c])))
        }
        None => y,
    }
}

/// `[b, c, h, w] -> [b * h * w, c]`
fn channels_last_rows(x: Tensor<4>) -> Tensor<2> {
    let [b, c, h, w] = x.dims();
    x.permute([0, 2, 3, 1]).reshape([b * h * w, c])
}

/// `[b * h * w, c]` plus `bias` -> `[b, c, h, w]`
fn channels_first(rows: Tensor<2>, bias: Option<Tensor<1>>, [b, h, w]: [usize; 3]) -> Tensor<4> {
    let c = rows.dims()[1];
    let rows = match bias {
        Some(bias) => rows + bias.unsqueeze(),
        None => rows,
    };
    rows.reshape([b, h, w, c]).permute([0, 3, 1, 2])
}

/// burn's `conv2d` (square kernel, equal stride and padding, no dilation or groups):
/// `x` `[b, in, h, w]`, `weight` `[out, in, k, k]` -> `[b, out, oh, ow]`.
pub fn conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    stride: usize,
    padding: usize,
) -> Tensor<4> {
    let [b, cin, _, _] = x.dims();
    let [cout, _, k, _] = weight.dims();
    let g = Geometry::new(x.dims(), k, stride, padding, false);
    let (oh, ow) = g.out();
    let device = x.device();
    let rows = channels_last_rows(x); // [b*h*w, in]
    let cols = if g.pointwise() {
        rows
    } else {
        let rows = Tensor::cat(vec![rows, Tensor::zeros([1, cin], &device)], 0); // + zero row
        rows.select(0, rows_tensor(g, &device)) // [b*oh*ow*k*k, in]
            .reshape([b * oh * ow, k * k * cin])
    };
    let wm = weight.permute([2, 3, 1, 0]).reshape([k * k * cin, cout]); // (ky, kx, in) x out
    channels_first(cols.matmul(wm), bias, [b, oh, ow]) // [b*oh*ow, out] -> NCHW
}

/// burn's `conv_transpose2d` (square kernel, equal stride and padding, no output padding,
/// dilation or groups): `x` `[b, in, h, w]`, `weight` `[in, out, k, k]` -> `[b, out, oh, ow]`
/// with `oh = (h - 1) * stride + k - 2 * padding`.
pub fn conv_transpose2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    stride: usize,
    padding: usize,
) -> Tensor<4> {
    let [b, _, h, w] = x.dims();
    let [cin, cout, k, _] = weight.dims();
    let g = Geometry::new(x.dims(), k, stride, padding, true);
    let (oh, ow) = g.out();
    let device = x.device();
    let wm = weight.permute([0, 2, 3, 1]).reshape([cin, k * k * cout]); // in x (ky, kx, out)
    let cols = channels_last_rows(x).matmul(wm); // [b*h*w, k*k*out]
    let y = if g.pointwise() {
        cols
    } else {
        let cols = cols.reshape([b * h * w * k * k, cout]);
        // Rows that land in the cropped border go to one extra row, dropped after.
        Tensor::zeros([b * oh * ow + 1, cout], &device)
            .select_assign(0, rows_tensor(g, &device), cols, IndexingUpdateOp::Add)
            .narrow(0, 0, b * oh * ow)
    }; // [b*oh*ow, out]
    channels_first(y, bias, [b, oh, ow])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use burn::module::Param;

    fn random(shape: [usize; 4], rng: &mut Rng, device: &Device) -> Tensor<4> {
        let n = shape.iter().product();
        Tensor::from_data(TensorData::new(rng.normal_vec(n, 0.0, 1.0), shape), device)
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    fn assert_close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        let scale = b.iter().fold(1e-3f32, |m, v| m.max(v.abs()));
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 2e-5 * scale,
                "{what}[{i}]: {x} vs burn's {y}"
            );
        }
    }

    /// Output, input gradient, weight gradient and bias gradient of `ours` and `burns` under the
    /// loss `sum(y * r)` for a fixed random `r`.
    fn compare(
        x_shape: [usize; 4],
        w_shape: [usize; 4],
        ours: impl Fn(Tensor<4>, Tensor<4>, Tensor<1>) -> Tensor<4>,
        burns: impl Fn(Tensor<4>, Tensor<4>, Tensor<1>) -> Tensor<4>,
        bias_len: usize,
    ) {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(7);
        let x0 = random(x_shape, &mut rng, &device);
        let w0 = random(w_shape, &mut rng, &device);
        let b0 = Tensor::<1>::from_data(
            TensorData::new(rng.normal_vec(bias_len, 0.0, 1.0), [bias_len]),
            &device,
        );
        let mut results = Vec::new();
        let mut r = None;
        for f in [&ours as &dyn Fn(_, _, _) -> _, &burns] {
            let x = Param::from_tensor(x0.clone());
            let w = Param::from_tensor(w0.clone());
            let b = Param::from_tensor(b0.clone());
            let y = f(x.val(), w.val(), b.val());
            let r = r
                .get_or_insert_with(|| random(y.dims(), &mut rng, &device))
                .clone();
            let grads = (y.clone() * r).sum().backward();
            results.push([
                values(y),
                values(x.val().grad(&grads).unwrap()),
                values(w.val().grad(&grads).unwrap()),
                values(b.val().grad(&grads).unwrap()),
            ]);
        }
        for (i, what) in ["output", "dL/dx", "dL/dW", "dL/db"].iter().enumerate() {
            assert_close(&results[0][i], &results[1][i], what);
        }
    }

    #[test]
    fn conv2d_equals_burns_forward_and_gradients() {
        // (in, out, size, k, stride, padding): DCGAN's stride-2 4x4, 3x3 same, odd sizes, 1x1,
        // and a valid 4x4 to 1x1.
        for (cin, cout, size, k, s, p) in [
            (3, 5, 8, 4, 2, 1),
            (4, 6, 7, 3, 1, 1),
            (2, 3, 9, 3, 2, 0),
            (5, 4, 6, 1, 1, 0),
            (6, 2, 4, 4, 1, 0),
        ] {
            compare(
                [2, cin, size, size],
                [cout, cin, k, k],
                |x, w, b| conv2d(x, w, Some(b), s, p),
                |x, w, b| {
                    module::conv2d(x, w, Some(b), ConvOptions::new([s, s], [p, p], [1, 1], 1))
                },
                cout,
            );
        }
    }

    #[test]
    fn conv_transpose2d_equals_burns_forward_and_gradients() {
        // DCGAN's 1x1 -> 4x4 (valid) and stride-2 4x4 upsampling, a 3x3 stride 1, a 1x1.
        for (cin, cout, size, k, s, p) in [
            (5, 3, 1, 4, 1, 0),
            (4, 3, 5, 4, 2, 1),
            (3, 4, 6, 3, 1, 1),
            (3, 2, 4, 1, 1, 0),
            (2, 3, 3, 3, 2, 0),
        ] {
            compare(
                [2, cin, size, size],
                [cin, cout, k, k],
                |x, w, b| conv_transpose2d(x, w, Some(b), s, p),
                |x, w, b| {
                    module::conv_transpose2d(
                        x,
                        w,
                        Some(b),
                        ConvTransposeOptions::new([s, s], [p, p], [0, 0], [1, 1], 1),
                    )
                },
                cout,
            );
        }
    }
}
