//! Convolutions on the CPU backend as one batch-wide matrix product each.
//!
//! burn-flex runs a convolution's matrix products image by image (and its transposed convolution
//! and the gradients likewise), so at 4x4 and 8x8 maps each product has 16-64 rows and runs in
//! the GEMM's narrow edge tiles. Here every product spans the whole batch:
//!
//! ```text
//! conv       y  = W . im2col(x)           dx = col2im(W^T . dy)      dW = dy . im2col(x)^T
//! conv^T     y  = col2im(W^T . x)         dx = W . im2col(dy)        dW = x . im2col(dy)^T
//! ```
//!
//! with images as `[c, b * h * w]` matrices ("channels first", a memcpy per image and channel
//! from NCHW) and `im2col(x)` as `[b * oh * ow, c * k * k]` (the forward pass takes its
//! transpose, so that gemm's right operand runs along contiguous rows). A transposed convolution is the
//! adjoint of a convolution with the same weight tensor (burn's `[in, out, k, k]` layout is the
//! convolution's `[out, in, k, k]`), so three kernels (`conv_forward`, its input adjoint
//! `conv_input_grad` and its weight gradient `conv_weight_grad`) cover both operations and all
//! their gradients; each kernel's own gradients are the other two, so autodiff closes over them.
//!
//! Most passes skip im2col: a stride-`s` convolution is a sum over its kernel taps of products
//! `W[:, :, ky, kx] . x_phase_shifted`, where `x_phase` is one of the `s * s` polyphase
//! components of the zero-padded input (pixels `(s u + ry, s v + rx)`) and the tap a plain offset
//! along it ([`Phases`]; with stride 1, the padded input itself). The input gradient is the
//! adjoint (each tap adds `W^T . dy` into its phase at its offset) and the weight gradient a sum
//! per tap over the output positions (`cpu::taps::WeightGrad`; one product per tap where the
//! CPU has no kernel for it or there are 16 output channels or fewer). They run in tasks of a few images whose grids stay in cache through all
//! taps, with positions along the product's wide side (the forward and input-gradient sums by
//! the register-blocked kernel of `cpu::taps`): stride 1 on 4x4 maps and up, larger strides
//! onto 8x8 maps and up. On smaller stride-1 maps (above one output) the
//! forward and input-gradient passes call burn-flex's convolution (the input gradient of a
//! stride-1 convolution is itself one, with the kernel flipped and transposed); one output per
//! image and strided convolutions onto small maps take the batch-wide im2col products above.
//!
//! Registered through a burn backend extension for the Flex backend (f32, groups 1, dilation 1,
//! square kernels); the layers call [`conv2d`] and [`conv_transpose2d`] through
//! `nn::gemm_conv::conv2d_routed` and `conv_transpose2d_routed`.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, binary};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, DType, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor};
use rayon::prelude::*;

use super::autodiff::record;
use super::gemm::{mat, matmul, product, rows_of};
use super::parallel::{contiguous_f32, filled_with, tensor};
use super::taps::{
    OutputSum, Tap, TapSum, WeightGrad, kernel_available, pack, pack_channels, padded,
};

#[backend_extension(Flex, Autodiff)]
pub trait CpuConv: Backend {
    /// `x [b, c, h, w]`, `weight [o, c, k, k]` -> `[b, o, oh, ow]`, `oh = (h + 2p - k) / s + 1`.
    fn conv_forward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self>;

    /// The adjoint of `conv_forward` in `x`: `dy [b, o, oh, ow]` -> `[b, c, h, w]`.
    fn conv_input_grad(
        dy: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        padding: usize,
        h: usize,
        w: usize,
    ) -> FloatTensor<Self>;

    /// The gradient of `<dy, conv_forward(x, W)>` in `W`: `[o, c, k, k]`.
    fn conv_weight_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        stride: usize,
        padding: usize,
        k: usize,
    ) -> FloatTensor<Self>;
}

/// One convolution's sizes.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    b: usize,
    c: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    k: usize,
    s: usize,
    p: usize,
}

impl Geometry {
    fn new(b: usize, c: usize, [h, w]: [usize; 2], k: usize, s: usize, p: usize) -> Self {
        let oh = (h + 2 * p - k) / s + 1;
        let ow = (w + 2 * p - k) / s + 1;
        Geometry {
            b,
            c,
            h,
            w,
            oh,
            ow,
            k,
            s,
            p,
        }
    }
    /// Columns of `im2col`: `c * k * k`.
    fn cols(&self) -> usize {
        self.c * self.k * self.k
    }
}

/// `[b, c, hw]` (NCHW) -> `[c, b * hw]`.
fn to_channels_first(x: &[f32], b: usize, c: usize, hw: usize, out: &mut [f32]) {
    out.par_chunks_mut(b * hw)
        .enumerate()
        .for_each(|(ci, dst)| {
            for bi in 0..b {
                dst[bi * hw..][..hw].copy_from_slice(&x[(bi * c + ci) * hw..][..hw]);
            }
        });
}

/// `[c, b * hw]` -> `[b, c, hw]` (NCHW).
fn from_channels_first(x: &[f32], b: usize, c: usize, hw: usize, out: &mut [f32]) {
    out.par_chunks_mut(c * hw)
        .enumerate()
        .for_each(|(bi, dst)| {
            for ci in 0..c {
                dst[ci * hw..][..hw].copy_from_slice(&x[(ci * b + bi) * hw..][..hw]);
            }
        });
}

/// `x [b, c, h, w]` -> `cols [b * oh * ow, c * k * k]`, zeros where the window leaves the image.
fn im2col(x: &[f32], g: &Geometry, cols: &mut [f32]) {
    let (kk, k, pos) = (g.cols(), g.k, g.oh * g.ow);
    cols.par_chunks_mut(pos * kk)
        .enumerate()
        .for_each(|(bi, image)| {
            let xb = &x[bi * g.c * g.h * g.w..][..g.c * g.h * g.w];
            for (pi, row) in image.chunks_mut(kk).enumerate() {
                let (oy, ox) = (pi / g.ow, pi % g.ow);
                for ci in 0..g.c {
                    for ky in 0..k {
                        let dst = &mut row[(ci * k + ky) * k..][..k];
                        let iy = (oy * g.s + ky) as isize - g.p as isize;
                        if iy < 0 || iy >= g.h as isize {
                            dst.fill(0.0);
                            continue;
                        }
                        let src = &xb[(ci * g.h + iy as usize) * g.w..][..g.w];
                        for (kx, d) in dst.iter_mut().enumerate() {
                            let ix = (ox * g.s + kx) as isize - g.p as isize;
                            *d = if ix >= 0 && ix < g.w as isize {
                                src[ix as usize]
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
        });
}

/// `x [b, c, h, w]` -> `cols [c * k * k, b * oh * ow]`, the transpose of [`im2col`]: each row
/// is one tap of one channel over every output position, so a product with it as the right
/// operand runs along its contiguous rows (gemm packs a right operand whose inner dimension is
/// contiguous 2-3 times slower).
fn im2col_t(x: &[f32], g: &Geometry, cols: &mut [f32]) {
    let (k, pos, rows) = (g.k, g.oh * g.ow, g.b * g.oh * g.ow);
    cols.par_chunks_mut(rows).enumerate().for_each(|(j, row)| {
        let (ci, ky, kx) = (j / (k * k), j / k % k, j % k);
        // Output columns whose window column stays inside the image: ox in [ox0, ox1).
        let lo = g.p.saturating_sub(kx).div_ceil(g.s);
        let hi = ((g.w + g.p).saturating_sub(kx)).div_ceil(g.s).min(g.ow);
        let (ox0, ox1) = (lo.min(hi), hi);
        for (bi, image) in row.chunks_mut(pos).enumerate() {
            for (oy, out) in image.chunks_mut(g.ow).enumerate() {
                let iy = (oy * g.s + ky) as isize - g.p as isize;
                if iy < 0 || iy >= g.h as isize {
                    out.fill(0.0);
                    continue;
                }
                let src = &x[((bi * g.c + ci) * g.h + iy as usize) * g.w..][..g.w];
                out[..ox0].fill(0.0);
                out[ox1..].fill(0.0);
                for (ox, d) in out[ox0..ox1].iter_mut().enumerate() {
                    *d = src[(ox + ox0) * g.s + kx - g.p];
                }
            }
        }
    });
}

/// The adjoint of [`im2col`]: scatter-add `cols [b * oh * ow, c * k * k]` into `x [b, c, h, w]`
/// (zeroed first).
fn col2im(cols: &[f32], g: &Geometry, x: &mut [f32]) {
    let (kk, k, pos) = (g.cols(), g.k, g.oh * g.ow);
    x.par_chunks_mut(g.c * g.h * g.w)
        .enumerate()
        .for_each(|(bi, xb)| {
            xb.fill(0.0);
            let image = &cols[bi * pos * kk..][..pos * kk];
            for (pi, row) in image.chunks(kk).enumerate() {
                let (oy, ox) = (pi / g.ow, pi % g.ow);
                for ci in 0..g.c {
                    for ky in 0..k {
                        let src = &row[(ci * k + ky) * k..][..k];
                        let iy = (oy * g.s + ky) as isize - g.p as isize;
                        if iy < 0 || iy >= g.h as isize {
                            continue;
                        }
                        let dst = &mut xb[(ci * g.h + iy as usize) * g.w..][..g.w];
                        for (kx, v) in src.iter().enumerate() {
                            let ix = (ox * g.s + kx) as isize - g.p as isize;
                            if ix >= 0 && ix < g.w as isize {
                                dst[ix as usize] += v;
                            }
                        }
                    }
                }
            }
        });
}

/// Images per chunk: as many as keep one chunk's `im2col` near 4 MiB (so it stays in cache and
/// its buffer is reused), at least one.
fn images_per_chunk(g: &Geometry) -> usize {
    // Tests use small chunks so that several chunks (and the accumulation of dW) are exercised.
    const CHUNK_BYTES: usize = if cfg!(test) { 2048 } else { 4 << 20 };
    let per_image = g.oh * g.ow * g.cols() * 4;
    (CHUNK_BYTES / per_image.max(1)).clamp(1, g.b)
}

/// `(first image, images)` of each chunk of a batch of `b`.
fn chunks(b: usize, per: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..b).step_by(per).map(move |b0| (b0, per.min(b - b0)))
}

impl CpuConv for Flex {
    fn conv_forward(
        x: FlexTensor,
        weight: FlexTensor,
        stride: usize,
        padding: usize,
    ) -> FlexTensor {
        let [b, c, h, w] = dims4(&x);
        let [o, _, k, _] = dims4(&weight);
        let g = Geometry::new(b, c, [h, w], k, stride, padding);
        match route(&g) {
            Route::Taps => {
                let (xs, ws) = (contiguous_f32(&x), contiguous_f32(&weight));
                return tensor(
                    conv_by_taps(&xs, &ws, &g, o, kernel_available()),
                    [b, o, g.oh, g.ow],
                );
            }
            Route::Flex => return flex_conv(x, weight, padding),
            Route::Im2col => {}
        }
        let (x, weight) = (contiguous_f32(&x), contiguous_f32(&weight));
        let (pos, kk) = (g.oh * g.ow, g.cols());
        let per = images_per_chunk(&g);
        let mut y = vec![0.0; b * o * pos];
        let (mut cols, mut y_cf) = (vec![0.0; per * pos * kk], vec![0.0; o * per * pos]);
        for (b0, nb) in chunks(b, per) {
            let gc = Geometry { b: nb, ..g };
            let rows = nb * pos;
            im2col_t(
                &x[b0 * c * h * w..][..nb * c * h * w],
                &gc,
                &mut cols[..rows * kk],
            );
            // y [o, rows] = W [o, kk] . cols [kk, rows]: channels first.
            matmul(
                (o, rows, kk),
                mat(&weight, kk, 1),
                mat(&cols, rows, 1),
                &mut y_cf,
                false,
                false,
            );
            from_channels_first(&y_cf, nb, o, pos, &mut y[b0 * o * pos..][..nb * o * pos]);
        }
        tensor(y, [b, o, g.oh, g.ow])
    }

    fn conv_input_grad(
        dy: FlexTensor,
        weight: FlexTensor,
        stride: usize,
        padding: usize,
        h: usize,
        w: usize,
    ) -> FlexTensor {
        let [b, o, _, _] = dims4(&dy);
        let [_, c, k, _] = dims4(&weight);
        let g = Geometry::new(b, c, [h, w], k, stride, padding);
        match route(&g) {
            Route::Taps => {
                let (dys, ws) = (contiguous_f32(&dy), contiguous_f32(&weight));
                return tensor(
                    conv_input_grad_by_taps(&dys, &ws, &g, o, kernel_available()),
                    [b, c, h, w],
                );
            }
            // With stride 1 the input gradient is itself a stride-1 convolution: of dy with the
            // kernel flipped in space and transposed in channels, padded by k - 1 - p.
            Route::Flex if padding < k => {
                return flex_conv(dy, flip_transpose(&weight), k - 1 - padding);
            }
            _ => {}
        }
        let (dy, weight) = (contiguous_f32(&dy), contiguous_f32(&weight));
        let (pos, kk) = (g.oh * g.ow, g.cols());
        let per = images_per_chunk(&g);
        let mut dx = vec![0.0; b * c * h * w];
        let (mut dcols, mut dy_cf) = (vec![0.0; per * pos * kk], vec![0.0; o * per * pos]);
        for (b0, nb) in chunks(b, per) {
            let gc = Geometry { b: nb, ..g };
            let rows = nb * pos;
            to_channels_first(
                &dy[b0 * o * pos..][..nb * o * pos],
                nb,
                o,
                pos,
                &mut dy_cf[..o * rows],
            );
            // dcols [rows, kk] = dy^T . W
            matmul(
                (rows, kk, o),
                mat(&dy_cf, 1, rows),
                mat(&weight, kk, 1),
                &mut dcols,
                false,
                false,
            );
            col2im(
                &dcols[..rows * kk],
                &gc,
                &mut dx[b0 * c * h * w..][..nb * c * h * w],
            );
        }
        tensor(dx, [b, c, h, w])
    }

    fn conv_weight_grad(
        x: FlexTensor,
        dy: FlexTensor,
        stride: usize,
        padding: usize,
        k: usize,
    ) -> FlexTensor {
        let [b, c, h, w] = dims4(&x);
        let [_, o, _, _] = dims4(&dy);
        let g = Geometry::new(b, c, [h, w], k, stride, padding);
        let (x, dy) = (contiguous_f32(&x), contiguous_f32(&dy));
        if route(&g) != Route::Im2col {
            return tensor(
                weight_grad_by_taps(&x, &dy, &g, o, kernel_available()),
                [o, c, k, k],
            );
        }
        let (pos, kk) = (g.oh * g.ow, g.cols());
        let per = images_per_chunk(&g);
        let mut dw = vec![0.0; o * kk];
        let (mut cols, mut dy_cf) = (vec![0.0; per * pos * kk], vec![0.0; o * per * pos]);
        for (i, (b0, nb)) in chunks(b, per).enumerate() {
            let gc = Geometry { b: nb, ..g };
            let rows = nb * pos;
            im2col(
                &x[b0 * c * h * w..][..nb * c * h * w],
                &gc,
                &mut cols[..rows * kk],
            );
            to_channels_first(
                &dy[b0 * o * pos..][..nb * o * pos],
                nb,
                o,
                pos,
                &mut dy_cf[..o * rows],
            );
            // dW [o, kk] += dy . cols
            matmul(
                (o, kk, rows),
                mat(&dy_cf, rows, 1),
                mat(&cols, kk, 1),
                &mut dw,
                false,
                i > 0,
            );
        }
        tensor(dw, [o, c, k, k])
    }
}

/// How a convolution's passes run on the CPU (`examples/conv_route.rs` times them).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Route {
    /// Products per kernel tap on the polyphase grid, in cache-sized tasks: stride 1 on 4x4
    /// maps and up, larger strides from 8x8 outputs up, and onto smaller maps where im2col's
    /// product would be shallow (`c k k` under 2048; its deep products run near the peak).
    Taps,
    /// burn-flex's kernel for the forward and input-gradient passes (stride 1, 2-15 outputs per
    /// image; the weight gradient still by taps).
    Flex,
    /// im2col over the whole batch and one wide product: one output per image, or strided
    /// convolutions onto small maps, where a task's positions would be too few for a wide
    /// product.
    Im2col,
}

fn route(g: &Geometry) -> Route {
    let off = !super::settings::settings().taps;
    match (g.s, g.oh * g.ow) {
        (_, 1) => Route::Im2col,
        (1, pixels) if pixels < 16 || off => Route::Flex,
        (1, _) => Route::Taps,
        (_, pixels) if (pixels >= strided_taps_min() || g.cols() < 2048) && !off => Route::Taps,
        _ => Route::Im2col,
    }
}

fn strided_taps_min() -> usize {
    // Tests take strided convolutions onto small maps by taps too, so that both routes are
    // exercised on small images.
    if cfg!(test) { 16 } else { 64 }
}

/// Images per parallel task of the per-tap products: as many as keep a task's grids (`channels`
/// rows of `plane` positions per image) near 256 KiB, so that all `k * k` taps reuse them from
/// cache, but at least 512 positions (a product that narrow runs in the GEMM's edge tiles), and
/// at most a quarter of the batch per thread.
fn images_per_task(b: usize, plane: usize, channels: usize) -> usize {
    if cfg!(test) {
        // Tests use two images per task so that tasks of several images and a shorter last
        // task are exercised.
        return 2.min(b);
    }
    let by_cache = ((256 << 10) / (plane * channels * 4).max(1)).max(512_usize.div_ceil(plane));
    let by_threads = b.div_ceil(2 * rayon::current_num_threads());
    by_cache.clamp(1, by_threads.max(1))
}

/// The polyphase layout of a zero-padded image for a stride-`s` convolution: phase `(ry, rx)`
/// holds pixels `(s u + ry, s v + rx)` of the image padded by `p` on the top and left, on a
/// `[hu, wu]` plane (`s hu >= h + p`; the padding on the bottom and right is the next image's and
/// row's). Kernel tap `(ky, kx)` then reads phase `(ky % s, kx % s)` shifted by `(ky / s) wu + kx
/// / s` along the plane, a plain offset, and output `(oy, ox)` sits at plane position `oy wu +
/// ox`. With `s = 1` it is the padded image itself.
#[derive(Clone, Copy, Debug)]
struct Phases {
    s: usize,
    p: usize,
    hu: usize,
    wu: usize,
    k: usize,
}

impl Phases {
    fn new(g: &Geometry) -> Self {
        // A row's right padding is the next row's left padding, and an image's bottom padding
        // the next image's top padding: a row needs `w + p` positions, not `w + 2p` (on 4x4
        // maps with 3x3 kernels that is 25 positions per image instead of 36). Taps that read
        // past a row's last pixel wrap onto the zeros leading the next row. With strides the
        // period stays a multiple of `s`, so each phase stays a plane of its own.
        let period = |n: usize, on: usize| (n + g.p).max(g.s * on).div_ceil(g.s);
        Phases {
            s: g.s,
            p: g.p,
            hu: period(g.h, g.oh),
            wu: period(g.w, g.ow),
            k: g.k,
        }
    }

    /// One phase-free plane of the same size, for maps placed at its top-left (the outputs).
    fn outputs(&self) -> Self {
        Phases {
            s: 1,
            p: 0,
            k: 1,
            ..*self
        }
    }

    fn plane(&self) -> usize {
        self.hu * self.wu
    }

    /// Positions past a task's planes that the largest shift reads.
    fn tail(&self) -> usize {
        let q = (self.k - 1) / self.s;
        q * self.wu + q
    }

    /// `(phase, shift)` of tap `t = ky k + kx`.
    fn tap(&self, t: usize) -> (usize, usize) {
        let (ky, kx) = (t / self.k, t % self.k);
        let phase = (ky % self.s) * self.s + kx % self.s;
        (phase, (ky / self.s) * self.wu + kx / self.s)
    }

    /// Every tap `t` as its window on a grid of `c` channels per phase, `cols` apart, and its
    /// weight offset `t`.
    fn taps(&self, c: usize, cols: usize) -> Vec<Tap> {
        (0..self.k * self.k)
            .map(|t| {
                let (phase, shift) = self.tap(t);
                Tap {
                    x: phase * c * cols + shift,
                    w: t,
                }
            })
            .collect()
    }

    /// Calls `f(image offset, grid offset, run)` for each run of pixels of one image row that
    /// lie `s` apart in the image and next to each other in one phase: `(phase, channel)` rows
    /// of `cols` positions, images `plane` apart.
    fn runs(
        &self,
        (c, h, w): (usize, usize, usize),
        n_img: usize,
        cols: usize,
        mut f: impl FnMut(usize, usize, usize),
    ) {
        let (s, p, plane) = (self.s, self.p, self.plane());
        // One plane's runs, the same for every image and channel: (offset in the plane, phase,
        // offset in the phase's row, length).
        let mut plane_runs = Vec::with_capacity(h * s);
        for iy in 0..h {
            let (ry, u) = ((iy + p) % s, (iy + p) / s);
            for rx in 0..s {
                // The first column of this row in phase column rx.
                let ix0 = (rx + s - p % s) % s;
                if ix0 < w {
                    let v0 = (ix0 + p) / s;
                    let len = (w - ix0).div_ceil(s);
                    plane_runs.push((iy * w + ix0, ry * s + rx, u * self.wu + v0, len));
                }
            }
        }
        for li in 0..n_img {
            for ci in 0..c {
                let src = (li * c + ci) * h * w;
                for &(at, phase, offset, len) in &plane_runs {
                    f(src + at, (phase * c + ci) * cols + li * plane + offset, len);
                }
            }
        }
    }

    /// Positions per grid row for a task of `n_img` images, `origin` zeros first: the padded
    /// planes, then what the largest shift reads past them.
    fn cols(&self, n_img: usize, origin: usize) -> usize {
        origin + padded(n_img * self.plane()) + self.tail()
    }

    /// Images `b0..b0 + n_img` of `x [b, c, h, w]` into `grid [s * s, c, cols]` (`cols` from
    /// [`Phases::cols`]), the planes starting at `origin`, zeros elsewhere.
    fn fill(
        &self,
        x: &[f32],
        (c, h, w): (usize, usize, usize),
        (b0, n_img, origin): (usize, usize, usize),
        grid: &mut Vec<f32>,
    ) {
        let cols = self.cols(n_img, origin);
        let s = self.s;
        grid.clear();
        let x = &x[b0 * c * h * w..][..n_img * c * h * w];
        if s == 1 {
            // Each channel's row written once, in order: the zeros between image rows, then the
            // row (no clearing pass over the grid first).
            let (p, wu, plane) = (self.p, self.wu, self.plane());
            grid.reserve(c * cols);
            let rows = &mut grid.spare_capacity_mut()[..c * cols];
            for (ci, row) in rows.chunks_mut(cols).enumerate() {
                let mut at = 0;
                for li in 0..n_img {
                    let image = &x[(li * c + ci) * h * w..][..h * w];
                    for (iy, src) in image.chunks(w).enumerate() {
                        let start = origin + li * plane + (iy + p) * wu + p;
                        zeros(&mut row[at..start]);
                        for (d, v) in row[start..start + w].iter_mut().zip(src) {
                            d.write(*v);
                        }
                        at = start + w;
                    }
                }
                zeros(&mut row[at..]);
            }
            // SAFETY: every element of the first `c * cols` was written above (the runs of
            // zeros and pixels tile each row from 0 to `cols`).
            unsafe { grid.set_len(c * cols) };
            return;
        }
        grid.resize(s * s * c * cols, 0.0);
        self.runs((c, h, w), n_img, cols, |src, dst, len| {
            let from = x[src..].iter().step_by(s);
            grid[dst + origin..][..len]
                .iter_mut()
                .zip(from)
                .for_each(|(g, v)| *g = *v);
        });
    }

    /// The adjoint of [`Phases::fill`]: the image pixels of `grid` into `x [n_img, c, h, w]`.
    fn gather(&self, grid: &[f32], (c, h, w): (usize, usize, usize), x: &mut [f32]) {
        let n_img = x.len() / (c * h * w);
        let cols = self.cols(n_img, 0);
        let s = self.s;
        self.runs((c, h, w), n_img, cols, |dst, src, len| {
            if s == 1 {
                x[dst..dst + len].copy_from_slice(&grid[src..src + len]);
            } else {
                let to = x[dst..].iter_mut().step_by(s);
                to.zip(&grid[src..src + len]).for_each(|(v, g)| *v = *g);
            }
        });
    }
}

/// Images per task of a convolution by taps with `o` output channels.
fn task_images(g: &Geometry, o: usize) -> usize {
    images_per_task(g.b, Phases::new(g).plane(), g.c * g.s * g.s + o)
}

/// Runs `f(scratch, (first image, images), part)` in parallel over tasks of a few images, `part`
/// being the task's images of an output of `b` images of `image` values each; each thread keeps
/// two scratch buffers across its tasks.
fn over_tasks(
    g: &Geometry,
    o: usize,
    image: usize,
    f: impl Fn(&mut (Vec<f32>, Vec<f32>), (usize, usize), &mut [f32]) + Sync,
) -> Vec<f32> {
    let nb = task_images(g, o);
    filled_with(
        g.b * image,
        nb * image,
        || (Vec::new(), Vec::new()),
        |scratch, task, part| f(scratch, (task * nb, part.len() / image), part),
    )
}

/// A convolution as one product per kernel tap on the polyphase grid of [`Phases`]:
/// `y_grid [o, R] = sum over taps of W[:, :, ky, kx] . phase_grid[:, shift..]`, then cropped to
/// `[b, o, oh, ow]`. Each task of a few images builds its grid in cache, runs every tap on it
/// and crops its own images; positions stay contiguous, so the product's wide side runs along
/// them.
fn conv_by_taps(x: &[f32], weight: &[f32], g: &Geometry, o: usize, kernels: bool) -> Vec<f32> {
    let (ph, k, c) = (Phases::new(g), g.k, g.c);
    let plane = ph.plane();
    let image = o * g.oh * g.ow;
    let cols = |n_img| ph.cols(n_img, 0);
    let (js, is) = (c * k * k, k * k);
    // Channels along the vectors, at output positions only (`tap_sum::OutputSum`), where the
    // grid's padding is a large share of it (`mostly_padding`): on larger maps the positions
    // along the vectors run faster.
    if o > 16 && mostly_padding(g, plane, g.oh * g.ow) && kernels {
        let (pos, mp) = (g.oh * g.ow, padded(o));
        let packed = pack_channels(weight, (js, is), &ph.taps(c, 0), (o, c));
        return over_tasks(g, o, image, |(grid, out), (b0, n_img), y_part| {
            let cols = cols(n_img);
            ph.fill(x, (c, g.h, g.w), (b0, n_img, 0), grid);
            let taps: Vec<usize> = ph.taps(c, cols).iter().map(|t| t.x).collect();
            out.resize(n_img * pos * mp, 0.0);
            OutputSum {
                x: grid,
                rs: cols,
                k: c,
                taps: &taps,
                w: &packed,
                m: o,
                layout: (g.ow, g.oh, ph.wu, plane),
            }
            .run(n_img, &mut out[..n_img * pos * mp]);
            // [outputs, mp] -> each image's [o, pos]
            for (dst, src) in y_part.chunks_mut(image).zip(out.chunks(pos * mp)) {
                transpose(src, (pos, o), mp, dst, (pos, 1));
            }
        });
    }
    let packed = pack(weight, (js, is), &ph.taps(c, 0), (o, c));
    over_tasks(g, o, image, |(grid, out), (b0, n_img), y_part| {
        let (n, cols) = (n_img * plane, cols(n_img));
        ph.fill(x, (c, g.h, g.w), (b0, n_img, 0), grid);
        let np = padded(n);
        out.resize(o * np, 0.0);
        let taps = ph.taps(c, cols);
        // out [o, n] = sum over taps of W_t [o, c] . grid[phase][:, shift..shift + n]
        TapSum {
            x: grid,
            rs: cols,
            k: c,
            w: weight,
            js,
            is,
            taps: &taps,
            packed: &packed,
            kernel: kernels,
        }
        .run((o, n), out, np);
        for (li, dst) in y_part.chunks_mut(image).enumerate() {
            for oi in 0..o {
                for oy in 0..g.oh {
                    let src = &out[oi * np + li * plane + oy * ph.wu..][..g.ow];
                    dst[(oi * g.oh + oy) * g.ow..][..g.ow].copy_from_slice(src);
                }
            }
        }
    })
}

/// The adjoint of [`conv_by_taps`] in `x` (the input gradient, and the transposed
/// convolution): with `dy` on the output plane, phase `(ry, rx)` of the input grid is the sum
/// over the taps that read it of `W[:, :, ky, kx]^T . dy` shifted back by the tap's offset (read
/// from `dy` placed after a margin of zeros as long as the largest shift), and the image's
/// pixels are gathered back from the phases.
fn conv_input_grad_by_taps(
    dy: &[f32],
    weight: &[f32],
    g: &Geometry,
    o: usize,
    kernels: bool,
) -> Vec<f32> {
    let (ph, k, c) = (Phases::new(g), g.k, g.c);
    let (plane, margin) = (ph.plane(), ph.tail());
    let image = c * g.h * g.w;
    let (js, is) = (k * k, c * k * k);
    // Each phase's taps, and their weights packed once for every task.
    let by_phase = |pack: Packer| {
        (0..g.s * g.s)
            .map(|phase| {
                let taps: Vec<Tap> = (0..k * k)
                    .filter_map(|t| {
                        let (tp, shift) = ph.tap(t);
                        (tp == phase).then_some(Tap {
                            x: margin - shift,
                            w: t,
                        })
                    })
                    .collect();
                let packed = pack(weight, (js, is), &taps, (c, o));
                (taps, packed)
            })
            .collect::<Vec<_>>()
    };
    // As in `conv_by_taps`: channels along the vectors where the padding is a large share.
    let pixels = g.h.div_ceil(g.s) * g.w.div_ceil(g.s);
    if c > 16 && mostly_padding(g, plane, pixels) && kernels {
        return input_grad_at_pixels(dy, g, o, &by_phase(pack_channels));
    }
    let phases = by_phase(pack);
    over_tasks(g, o, image, |(dy_grid, grid), (b0, n_img), dx_part| {
        let (n, cols) = (n_img * plane, ph.cols(n_img, 0));
        let out = ph.outputs();
        out.fill(dy, (o, g.oh, g.ow), (b0, n_img, margin), dy_grid);
        let dy_cols = out.cols(n_img, margin);
        grid.resize(g.s * g.s * c * cols, 0.0);
        for (phase, (taps, packed)) in phases.iter().enumerate() {
            // grid[phase] [c, n] = sum over its taps of W_t^T [c, o] . dy_grid[:, ..n - shift]
            TapSum {
                x: dy_grid,
                rs: dy_cols,
                k: o,
                w: weight,
                js,
                is,
                taps,
                packed,
                kernel: kernels,
            }
            .run((c, n), &mut grid[phase * c * cols..], cols);
        }
        ph.gather(grid, (c, g.h, g.w), dx_part);
    })
}

/// Writes zeros. The runs between a grid's rows are a few values long, where a `memset` call
/// costs more than the stores (volatile, so that they do not become one).
fn zeros(run: &mut [std::mem::MaybeUninit<f32>]) {
    if run.len() >= 32 {
        run.iter_mut().for_each(|v| {
            v.write(0.0);
        });
        return;
    }
    for v in run {
        // SAFETY: `v` is a valid, aligned place for an f32.
        unsafe { std::ptr::write_volatile(v.as_mut_ptr(), 0.0) };
    }
}

/// `dst[j rs + i cs] = src[i src_rs + j]` for `i < rows`, `j < cols`, in 16 x 16 tiles (so
/// that the strided side of a tile stays in L1).
fn transpose(
    src: &[f32],
    (rows, cols): (usize, usize),
    src_rs: usize,
    dst: &mut [f32],
    (rs, cs): (usize, usize),
) {
    const T: usize = 16;
    if rows == 0 || cols == 0 {
        return;
    }
    assert!(
        src.len() > (rows - 1) * src_rs + cols - 1,
        "transpose source too short"
    );
    assert!(
        dst.len() > (cols - 1) * rs + (rows - 1) * cs,
        "transpose target too short"
    );
    for i0 in (0..rows).step_by(T) {
        for j0 in (0..cols).step_by(T) {
            for i in i0..(i0 + T).min(rows) {
                let from = &src[i * src_rs + j0..][..(j0 + T).min(cols) - j0];
                for (jj, v) in from.iter().enumerate() {
                    // SAFETY: j = j0 + jj < cols and i < rows, so the index is within the bound
                    // asserted above.
                    unsafe { *dst.get_unchecked_mut((j0 + jj) * rs + i * cs) = *v };
                }
            }
        }
    }
}

/// Whether a plane of `plane` grid positions holding `used` outputs or pixels is padded enough
/// for `tap_sum::OutputSum` (which skips the padding) to beat `TapSum` (which runs along the
/// positions faster): by a tenth with stride 1 (maps up to 16x16 with 3x3 kernels), by a fifth
/// with strides, whose several phases make a larger working set (measured on the presets'
/// layers).
fn mostly_padding(g: &Geometry, plane: usize, used: usize) -> bool {
    let tenths = if g.s == 1 { 11 } else { 12 };
    plane * 10 >= tenths * used
}

/// A weight packing of `tap_sum` ([`pack`] or [`pack_channels`]).
type Packer = fn(&[f32], (usize, usize), &[Tap], (usize, usize)) -> Vec<f32>;

/// [`conv_input_grad_by_taps`] with the input channels along the vectors, at each phase's image
/// pixels only (`tap_sum::OutputSum`, each phase's weights packed by `pack_channels`), then
/// scattered into the images.
fn input_grad_at_pixels(
    dy: &[f32],
    g: &Geometry,
    o: usize,
    phases: &[(Vec<Tap>, Vec<f32>)],
) -> Vec<f32> {
    let (ph, c, s) = (Phases::new(g), g.c, g.s);
    let (plane, margin, cp) = (ph.plane(), ph.tail(), padded(c));
    let image = c * g.h * g.w;
    // Per phase (ry, rx): the plane rows u and columns v holding image pixels
    // (u s + ry - p, v s + rx - p), and its taps' weights as `[taps, o, cp]`.
    let span = |r: usize, n: usize| {
        (
            g.p.saturating_sub(r).div_ceil(s),
            (n + g.p).saturating_sub(r).div_ceil(s),
        )
    };
    over_tasks(g, o, image, |(dy_grid, out), (b0, n_img), dx_part| {
        let dy_plane = ph.outputs();
        dy_plane.fill(dy, (o, g.oh, g.ow), (b0, n_img, margin), dy_grid);
        let dy_cols = dy_plane.cols(n_img, margin);
        for (phase, (taps, packed)) in phases.iter().enumerate() {
            let (ry, rx) = (phase / s, phase % s);
            let ((u0, u1), (v0, v1)) = (span(ry, g.h), span(rx, g.w));
            let (rows, run) = (u1.saturating_sub(u0), v1.saturating_sub(v0));
            if rows == 0 || run == 0 {
                continue;
            }
            let origin = u0 * ph.wu + v0;
            let offsets: Vec<usize> = taps.iter().map(|t| t.x + origin).collect();
            let len = n_img * rows * run * cp;
            out.resize(len, 0.0);
            // out [pixels, cp] = sum over the phase's taps of dy_grid[:, q - shift] W_t
            OutputSum {
                x: dy_grid,
                rs: dy_cols,
                k: o,
                taps: &offsets,
                w: packed,
                m: c,
                layout: (run, rows, ph.wu, plane),
            }
            .run(n_img, &mut out[..len]);
            // Each pixel row [run, cp] into columns s apart of its row in every channel.
            for (li, dst) in dx_part.chunks_mut(image).enumerate() {
                for a in 0..rows {
                    let (iy, ix) = ((u0 + a) * s + ry - g.p, v0 * s + rx - g.p);
                    let src = &out[(li * rows + a) * run * cp..][..run * cp];
                    let at = iy * g.w + ix;
                    transpose(src, (run, c), cp, &mut dst[at..], (g.h * g.w, s));
                }
            }
        }
    })
}

/// The weight gradient on the polyphase grid of [`Phases`]: `dW[:, :, ky, kx] = dy .
/// phase_grid[:, shift..]^T`, summed over the output positions by `tap_sum::WeightGrad` (`dy`
/// transposed once per task). Tasks of a few images each build their part of the grid and run
/// all taps on it while it is in cache; their sums are added.
fn weight_grad_by_taps(x: &[f32], dy: &[f32], g: &Geometry, o: usize, kernels: bool) -> Vec<f32> {
    // With one vector of output channels the kernel makes one broadcast per multiply-add;
    // the products do better there.
    if !kernels || o <= 16 {
        return weight_grad_by_products(x, dy, g, o);
    }
    let (ph, k, c) = (Phases::new(g), g.k, g.c);
    let (pos, mp) = (g.oh * g.ow, padded(o));
    let part = summed_over_tasks(g, o, |(x_grid, dy_t), (b0, n_img)| {
        let cols = ph.cols(n_img, 0);
        ph.fill(x, (c, g.h, g.w), (b0, n_img, 0), x_grid);
        // dy_t [outputs, mp]: each image's [o, pos] transposed, zeros past o (the
        // transposes never write there, so a buffer of the same size keeps them).
        if dy_t.len() != n_img * pos * mp {
            dy_t.clear();
            dy_t.resize(n_img * pos * mp, 0.0);
        }
        for li in 0..n_img {
            let image = &dy[(b0 + li) * o * pos..][..o * pos];
            let dst = &mut dy_t[li * pos * mp..][..pos * mp];
            transpose(image, (o, pos), pos, dst, (mp, 1));
        }
        let taps: Vec<usize> = (0..k * k)
            .map(|t| {
                let (phase, shift) = ph.tap(t);
                phase * c * cols + shift
            })
            .collect();
        let mut part = vec![0.0f32; k * k * c * mp];
        // part [t, c, mp] = sum over outputs of grid[phase][:, shift + q] dy_t^T
        WeightGrad {
            x: x_grid,
            rs: cols,
            k: c,
            taps: &taps,
            dy: dy_t,
            m: o,
            layout: (g.ow, g.oh, ph.wu, ph.plane()),
        }
        .run(n_img, &mut part);
        part
    });
    let kk = k * k;
    let mut dw = vec![0.0f32; o * c * kk];
    for (tc, row) in part.chunks(mp).enumerate() {
        let (t, ci) = (tc / c, tc % c);
        for (oc, v) in row[..o].iter().enumerate() {
            dw[(oc * c + ci) * kk + t] = *v;
        }
    }
    dw
}

/// Runs `f(scratch, (first image, images))` in parallel over tasks of a few images, each thread
/// keeping two scratch buffers across its tasks, and sums the parts the tasks return.
fn summed_over_tasks(
    g: &Geometry,
    o: usize,
    f: impl Fn(&mut (Vec<f32>, Vec<f32>), (usize, usize)) -> Vec<f32> + Sync + Send,
) -> Vec<f32> {
    chunks(g.b, task_images(g, o))
        .collect::<Vec<_>>()
        .into_par_iter()
        .map_init(|| (Vec::new(), Vec::new()), f)
        .reduce_with(|mut a, b| {
            a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
            a
        })
        .expect("a batch of at least one image")
}

/// [`weight_grad_by_taps`] as one GEMM call per tap (on `dy` on the output plane), where the CPU
/// has no kernel for it or there are 16 output channels or fewer.
fn weight_grad_by_products(x: &[f32], dy: &[f32], g: &Geometry, o: usize) -> Vec<f32> {
    let (ph, k, c) = (Phases::new(g), g.k, g.c);
    let plane = ph.plane();
    let taps = summed_over_tasks(g, o, |(x_grid, dy_grid), (b0, n_img)| {
        let (n, cols) = (n_img * plane, ph.cols(n_img, 0));
        ph.fill(x, (c, g.h, g.w), (b0, n_img, 0), x_grid);
        ph.outputs()
            .fill(dy, (o, g.oh, g.ow), (b0, n_img, 0), dy_grid);
        let mut part = vec![0.0f32; k * k * o * c];
        for (t, dst) in part.chunks_mut(o * c).enumerate() {
            let (phase, shift) = ph.tap(t);
            // dW_t [o, c] = dy_grid [o, n] . grid[phase][:, shift..shift + n]^T
            product(
                (o, c, n),
                mat(dy_grid, padded(n), 1),
                mat(&x_grid[phase * c * cols + shift..], 1, cols),
                rows_of(dst, c),
                false,
                gemm::Parallelism::None,
            );
        }
        part
    });
    let mut dw = vec![0.0f32; o * c * k * k];
    for (t, tap) in taps.chunks(o * c).enumerate() {
        for (oc, v) in tap.iter().enumerate() {
            dw[oc * k * k + t] = *v;
        }
    }
    dw
}

/// burn-flex's stride-1 convolution.
fn flex_conv(x: FlexTensor, weight: FlexTensor, padding: usize) -> FlexTensor {
    let options = ConvOptions::new([1, 1], [padding, padding], [1, 1], 1);
    <Flex as ModuleOps<Flex>>::conv2d(x, weight, None, options)
}

/// `[o, c, k, k]` -> `[c, o, k, k]` flipped in both spatial axes.
fn flip_transpose(weight: &FlexTensor) -> FlexTensor {
    let [o, c, k, _] = dims4(weight);
    let w = contiguous_f32(weight);
    let mut out = vec![0.0; o * c * k * k];
    for oi in 0..o {
        for ci in 0..c {
            for i in 0..k {
                for j in 0..k {
                    out[((ci * o + oi) * k + i) * k + j] =
                        w[((oi * c + ci) * k + (k - 1 - i)) * k + (k - 1 - j)];
                }
            }
        }
    }
    tensor(out, [c, o, k, k])
}

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let s = t.shape();
    [s[0], s[1], s[2], s[3]]
}

/// Which kernel an autodiff node ran, with the sizes its gradients need.
#[derive(Clone, Copy, Debug)]
enum Kernel {
    Forward,
    InputGrad { h: usize, w: usize },
    WeightGrad { k: usize },
}

/// One kernel call `(a, b) -> out` as the autodiff graph records it.
#[derive(Clone, Copy, Debug)]
struct Conv {
    kernel: Kernel,
    stride: usize,
    padding: usize,
}

impl Conv {
    fn run<B: CpuConv>(self, a: FloatTensor<B>, b: FloatTensor<B>) -> FloatTensor<B> {
        let (s, p) = (self.stride, self.padding);
        match self.kernel {
            Kernel::Forward => B::conv_forward(a, b, s, p),
            Kernel::InputGrad { h, w } => B::conv_input_grad(a, b, s, p, h, w),
            Kernel::WeightGrad { k } => B::conv_weight_grad(a, b, s, p, k),
        }
    }

    fn with(self, kernel: Kernel) -> Conv {
        Conv { kernel, ..self }
    }
}

#[derive(Debug)]
struct ConvBackward;

impl<B: Backend + CpuConv> Backward<B, 2> for ConvBackward {
    /// The two inputs and the call.
    type State = (FloatTensor<B>, FloatTensor<B>, Conv);

    /// Each kernel is bilinear in its inputs and its gradients are the other two kernels:
    /// `conv(x, W)`: `x` <- input_grad(g, W), `W` <- weight_grad(x, g);
    /// `input_grad(dy, W)`: `dy` <- conv(g, W), `W` <- weight_grad(g, dy);
    /// `weight_grad(x, dy)`: `x` <- input_grad(dy, g), `dy` <- conv(x, g).
    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (a, b, call) = ops.state;
        let a_shape = a.shape();
        let image = Kernel::InputGrad {
            h: a_shape[2],
            w: a_shape[3],
        };
        let (ga, gb): (Box<dyn FnOnce(_) -> _>, Box<dyn FnOnce(_) -> _>) = match call.kernel {
            Kernel::Forward => {
                let k = b.shape()[2];
                (
                    Box::new(move |g| call.with(image).run::<B>(g, b)),
                    Box::new(move |g| call.with(Kernel::WeightGrad { k }).run::<B>(a, g)),
                )
            }
            Kernel::InputGrad { .. } => {
                let k = b.shape()[2];
                (
                    Box::new(move |g| call.with(Kernel::Forward).run::<B>(g, b)),
                    Box::new(move |g| call.with(Kernel::WeightGrad { k }).run::<B>(g, a)),
                )
            }
            Kernel::WeightGrad { .. } => (
                Box::new(move |g| call.with(image).run::<B>(b, g)),
                Box::new(move |g| call.with(Kernel::Forward).run::<B>(a, g)),
            ),
        };
        binary::<B, _, _>(ops.parents, ops.node, grads, ga, gb);
    }
}

/// Runs `call` on the inner backend and records it for the backward pass.
fn record_conv<B: Backend + CpuConv, C: CheckpointStrategy>(
    a: FloatTensor<Autodiff<B, C>>,
    b: FloatTensor<Autodiff<B, C>>,
    call: Conv,
) -> FloatTensor<Autodiff<B, C>> {
    record::<B, C, _, 2>(ConvBackward, [a, b], |[a, b], tracked| {
        if tracked {
            (call.run::<B>(a.clone(), b.clone()), Some((a, b, call)))
        } else {
            (call.run::<B>(a, b), None)
        }
    })
}

impl<B: Backend + CpuConv, C: CheckpointStrategy> CpuConv for Autodiff<B, C> {
    fn conv_forward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        padding: usize,
    ) -> FloatTensor<Self> {
        let kernel = Kernel::Forward;
        record_conv::<B, C>(
            x,
            weight,
            Conv {
                kernel,
                stride,
                padding,
            },
        )
    }

    fn conv_input_grad(
        dy: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        stride: usize,
        padding: usize,
        h: usize,
        w: usize,
    ) -> FloatTensor<Self> {
        let kernel = Kernel::InputGrad { h, w };
        record_conv::<B, C>(
            dy,
            weight,
            Conv {
                kernel,
                stride,
                padding,
            },
        )
    }

    fn conv_weight_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        stride: usize,
        padding: usize,
        k: usize,
    ) -> FloatTensor<Self> {
        let kernel = Kernel::WeightGrad { k };
        record_conv::<B, C>(
            x,
            dy,
            Conv {
                kernel,
                stride,
                padding,
            },
        )
    }
}

/// Whether `x` can take this route: an f32 tensor on the CPU backend.
pub fn supports(x: &Tensor<4>) -> bool {
    x.dtype() == DType::F32 && x.device().without_autodiff() == Device::flex()
}

/// Convolution `[b, c, h, w]` with `weight [o, c, k, k]` (no bias) -> `[b, o, oh, ow]`.
pub fn conv2d(x: Tensor<4>, weight: Tensor<4>, stride: usize, padding: usize) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as CpuConv>::conv_forward(
        x.into_dispatch(),
        weight.into_dispatch(),
        stride,
        padding,
    ))
}

/// Transposed convolution `[b, c, h, w]` with `weight [c, o, k, k]` (burn's layout, no bias,
/// no output padding) -> `[b, o, (h - 1) s - 2p + k, ...]`.
pub fn conv_transpose2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    stride: usize,
    padding: usize,
) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let k = weight.dims()[2];
    let (oh, ow) = (
        (h - 1) * stride + k - 2 * padding,
        (w - 1) * stride + k - 2 * padding,
    );
    Tensor::from_dispatch(<Dispatch as CpuConv>::conv_input_grad(
        x.into_dispatch(),
        weight.into_dispatch(),
        stride,
        padding,
        oh,
        ow,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::testing::values;
    use burn::tensor::TensorData;
    use burn::tensor::module;
    use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

    fn randn<const D: usize>(rng: &mut Rng, shape: [usize; D], device: &Device) -> Tensor<D> {
        let n = shape.iter().product();
        Tensor::from_data(TensorData::new(rng.normal_vec(n, 0.0, 1.0), shape), device)
    }

    fn close(a: Tensor<4>, b: Tensor<4>, what: &str) {
        let (a, b) = (values(a), values(b));
        assert_eq!(a.len(), b.len(), "{what}: sizes");
        let scale = b.iter().map(|v| v.abs()).fold(1e-3f32, f32::max);
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * scale,
                "{what}[{i}]: {x} vs burn {y}"
            );
        }
    }

    /// Forward values and both gradients (under a random upstream gradient) equal burn's
    /// `conv2d` and `conv_transpose2d` for every layer shape the presets use.
    #[test]
    fn matches_burn_convolutions_and_their_gradients() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(5);
        // (batch, in, out, side, k, stride, padding)
        let cases = [
            (3, 2, 5, 8, 4, 2, 1),
            (2, 3, 4, 7, 3, 1, 1),
            (2, 4, 3, 4, 4, 1, 0),
            (4, 5, 6, 6, 1, 1, 0),
            (2, 3, 2, 9, 3, 2, 0),
            (1, 2, 3, 5, 5, 1, 2),
            (20, 1, 2, 4, 3, 2, 1), // chunks of 14 and 6 images
            (3, 3, 4, 4, 3, 1, 1),  // stride 1 on a 4x4 map: products per tap
            (2, 3, 4, 3, 3, 1, 1),  // stride 1 on a 3x3 map: burn-flex's convolution
            (2, 3, 4, 16, 3, 1, 1), // stride 1 on 16x16: products per tap
            (5, 3, 2, 16, 5, 1, 2), // per tap, in tasks of 2, 2 and 1 images
            (2, 4, 3, 16, 1, 1, 0),
            (2, 3, 2, 10, 3, 1, 1),
            (2, 3, 4, 6, 3, 1, 2), // full padding: 8x8 outputs
            (2, 3, 2, 5, 2, 1, 2), // padding past the kernel: more output rows than h + p
            // Strided, by taps on the polyphase grid (with few channels too, as the first and
            // fifth cases above; the transposed convolution of the last case as well):
            (3, 16, 4, 16, 4, 2, 1),
            (2, 16, 3, 17, 3, 2, 0), // odd size, no padding
            (2, 16, 2, 18, 4, 3, 1), // stride 3
            (3, 16, 3, 12, 5, 2, 2), // padding a multiple of the stride
            (2, 16, 3, 16, 3, 2, 1),
            (2, 3, 16, 8, 4, 2, 1),
            // Channel counts past the weight-gradient kernel's blocks (8 rows, 64 columns).
            (2, 19, 70, 8, 3, 1, 1),
            (2, 9, 17, 16, 4, 2, 1),
            (5, 3, 20, 8, 3, 1, 1), // tasks of 2, 2 and 1 images reusing their buffers
            // ... and past 16 input channels with padding, strided: sums at pixels only.
            (2, 17, 20, 9, 3, 2, 1),
            (3, 18, 5, 8, 4, 2, 1),
            // Strided onto a small map with a deep im2col product: by im2col.
            (2, 128, 3, 4, 4, 2, 1),
        ];
        type Op = dyn Fn(Tensor<4>, Tensor<4>) -> Tensor<4>;
        // Output, dL/dx and dL/dW of `ours` and `reference` under the upstream gradient `up`.
        let compare = |x: &Tensor<4>,
                       w: &Tensor<4>,
                       up: Tensor<4>,
                       ours: &Op,
                       reference: &Op,
                       what: String| {
            let run = |op: &Op| {
                let (x, w) = (x.clone().require_grad(), w.clone().require_grad());
                let y = op(x.clone(), w.clone());
                let grads = (y.clone() * up.clone()).sum().backward();
                (y.inner(), x.grad(&grads).unwrap(), w.grad(&grads).unwrap())
            };
            let ((y, gx, gw), (y0, gx0, gw0)) = (run(ours), run(reference));
            close(y, y0, &format!("{what} y"));
            close(gx, gx0, &format!("{what} dx"));
            close(gw, gw0, &format!("{what} dW"));
        };
        for (b, cin, cout, side, k, s, p) in cases {
            let x = randn(&mut rng, [b, cin, side, side], &device);
            let geometry = format!("b{b} {cin}->{cout} {side} k{k} s{s} p{p}");
            let w = randn(&mut rng, [cout, cin, k, k], &device);
            let oh = (side + 2 * p - k) / s + 1;
            let up = randn(&mut rng, [b, cout, oh, oh], &device);
            let reference =
                move |x, w| module::conv2d(x, w, None, ConvOptions::new([s, s], [p, p], [1, 1], 1));
            let ours = move |x, w| conv2d(x, w, s, p);
            compare(&x, &w, up, &ours, &reference, format!("conv {geometry}"));

            // Transposed convolution of the same geometry (in = cin, out = cout).
            let w = randn(&mut rng, [cin, cout, k, k], &device);
            let ot = (side - 1) * s + k - 2 * p;
            let up = randn(&mut rng, [b, cout, ot, ot], &device);
            let reference = move |x, w| {
                let opts = ConvTransposeOptions::new([s, s], [p, p], [0, 0], [1, 1], 1);
                module::conv_transpose2d(x, w, None, opts)
            };
            let ours = move |x, w| conv_transpose2d(x, w, s, p);
            compare(
                &x,
                &w,
                up,
                &ours,
                &reference,
                format!("conv_transpose {geometry}"),
            );
        }
    }

    /// The sums by taps on both routes, the portable products and the AVX-512 kernels (where
    /// the CPU has them), against burn's convolution and its two gradients, on shapes that take
    /// the kernels' special layouts: more than 16 channels on small, mostly padded maps (the
    /// sums at output positions), strides 1 and 2, and a weight gradient over 16 channels.
    #[test]
    fn portable_and_kernel_routes_match_burn() {
        let device = Device::flex();
        let mut rng = Rng::new(17);
        let routes: &[bool] = if kernel_available() {
            &[false, true]
        } else {
            eprintln!("skipped the AVX-512 route: this CPU has no AVX-512F");
            &[false]
        };
        // (b, c, o, side, k, s, p)
        for (b, c, o, side, k, s, p) in [
            (2, 24, 20, 4, 3, 1, 1),
            (3, 5, 33, 8, 3, 1, 1),
            (2, 20, 18, 8, 4, 2, 1),
            (1, 3, 40, 9, 3, 2, 0),
        ] {
            let oh = (side + 2 * p - k) / s + 1;
            let x = randn(&mut rng, [b, c, side, side], &device);
            let w = randn(&mut rng, [o, c, k, k], &device);
            let dy = randn(&mut rng, [b, o, oh, oh], &device);
            let g = Geometry::new(b, c, [side, side], k, s, p);
            let opts = ConvOptions::new([s, s], [p, p], [1, 1], 1);
            let want_y = module::conv2d(x.clone(), w.clone(), None, opts.clone());
            let topts = ConvTransposeOptions::new([s, s], [p, p], [0, 0], [1, 1], 1);
            let mut want_dx = module::conv_transpose2d(dy.clone(), w.clone(), None, topts);
            let [_, _, dh, dw] = want_dx.dims();
            if dh < side || dw < side {
                // A stride that skips the last rows: they get no gradient.
                want_dx = want_dx.pad(
                    [(0, side - dh), (0, side - dw)],
                    burn::tensor::ops::PadMode::Constant(0.0),
                );
            }
            // dW[o, c, ky, kx] = sum over b, positions of dy * x at the tap's offset.
            let wg = Tensor::<4>::from_data(w.to_data(), &device.clone().autodiff()).require_grad();
            let xg = Tensor::<4>::from_data(x.to_data(), &device.clone().autodiff());
            let dyg = Tensor::<4>::from_data(dy.to_data(), &device.clone().autodiff());
            let y = module::conv2d(xg, wg.clone(), None, opts);
            let want_dw = wg.grad(&(y * dyg).sum().backward()).unwrap();
            let (xv, wv, dyv) = (values(x), values(w), values(dy));
            for &kernels in routes {
                let t = |v: Vec<f32>, shape: [usize; 4]| {
                    Tensor::<4>::from_data(TensorData::new(v, shape), &device)
                };
                let what = |pass: &str| {
                    format!("{pass} {b}x{c}->{o} {side}px k{k} s{s} p{p} kernels={kernels}")
                };
                close(
                    t(conv_by_taps(&xv, &wv, &g, o, kernels), [b, o, oh, oh]),
                    want_y.clone(),
                    &what("y"),
                );
                close(
                    t(
                        conv_input_grad_by_taps(&dyv, &wv, &g, o, kernels),
                        [b, c, side, side],
                    ),
                    want_dx.clone(),
                    &what("dx"),
                );
                close(
                    t(weight_grad_by_taps(&xv, &dyv, &g, o, kernels), [o, c, k, k]),
                    want_dw.clone(),
                    &what("dW"),
                );
            }
        }
    }

    /// The weight-gradient kernel's own gradients (used if a gradient is differentiated again)
    /// agree with a finite difference of `<G, conv_weight_grad(x, dy)>`.
    #[test]
    fn weight_grad_kernel_is_differentiable() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(9);
        let (b, c, o, side, k, s, p) = (2, 2, 3, 5, 3, 2, 1);
        let oh = (side + 2 * p - k) / s + 1;
        let x = randn(&mut rng, [b, c, side, side], &device).require_grad();
        let dy = randn(&mut rng, [b, o, oh, oh], &device).require_grad();
        let gmat = randn(&mut rng, [o, c, k, k], &device);
        let f = |x: Tensor<4>, dy: Tensor<4>| {
            let gw = Tensor::<4>::from_dispatch(<Dispatch as CpuConv>::conv_weight_grad(
                x.into_dispatch(),
                dy.into_dispatch(),
                s,
                p,
                k,
            ));
            (gw * gmat.clone()).sum()
        };
        let grads = f(x.clone(), dy.clone()).backward();
        let gx = values(x.grad(&grads).unwrap());
        let gdy = values(dy.grad(&grads).unwrap());
        // The function is bilinear, so a central difference is exact up to rounding.
        let eps = 1e-2;
        let xv = x.clone().inner().into_data().try_to_vec::<f32>().unwrap();
        let dyv = dy.clone().inner().into_data().try_to_vec::<f32>().unwrap();
        let at = |xv: Vec<f32>, dyv: Vec<f32>| {
            let x = Tensor::<4>::from_data(TensorData::new(xv, [b, c, side, side]), &device);
            let dy = Tensor::<4>::from_data(TensorData::new(dyv, [b, o, oh, oh]), &device);
            f(x, dy).into_scalar::<f32>()
        };
        let check = |i: usize, of_x: bool, analytic: f32| {
            let (mut plus, mut minus) = if of_x {
                (xv.clone(), xv.clone())
            } else {
                (dyv.clone(), dyv.clone())
            };
            plus[i] += eps;
            minus[i] -= eps;
            let fd = if of_x {
                (at(plus, dyv.clone()) - at(minus, dyv.clone())) / (2.0 * eps)
            } else {
                (at(xv.clone(), plus) - at(xv.clone(), minus)) / (2.0 * eps)
            };
            assert!(
                (fd - analytic).abs() < 1e-2 * (1.0 + fd.abs()),
                "{} [{i}]: {analytic} vs {fd}",
                if of_x { "dx" } else { "d(dy)" }
            );
        };
        for i in [0, 7, 23, xv.len() - 1] {
            check(i, true, gx[i]);
        }
        for i in [0, 5, dyv.len() - 1] {
            check(i, false, gdy[i]);
        }
        assert!(gdy.iter().any(|v| v.abs() > 1e-3), "d(dy) must not vanish");
    }
}
