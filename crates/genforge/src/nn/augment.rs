//! StyleGAN2-ADA's augmentation pipeline (Karras et al. 2020, "Training Generative Adversarial
//! Networks with Limited Data", appendix B; NVlabs stylegan2-ada-pytorch `training/augment.py`),
//! its `bgc` set: x-flip, 90-degree rotations and integer translation (blit), isotropic scaling,
//! arbitrary rotation, anisotropic scaling and fractional translation (geometric), brightness,
//! contrast, luma flip, hue rotation and saturation (colour). Each transform is applied to an
//! image with probability `p` times its multiplier (1 in `bgc`), with the paper's parameter
//! distributions.
//!
//! All geometric transforms of an image compose into one inverse matrix `G_inv` (output pixel
//! -> input pixel, centred coordinates), applied as NVlabs applies it: reflect padding wide
//! enough for the transformed corners, 2x upsampling with the `sym6` wavelet low-pass,
//! bilinear sampling (`grid_sample`, zero fill, `align_corners=False`), and 2x downsampling with
//! the same filter flipped, so integer transforms are lossless and the others alias little. The
//! colour transforms compose into one 4x4 matrix on homogeneous RGB. Parameters are drawn on the
//! host from the run's generator (resume replays them); the image operations are burn ops, so
//! gradients reach the images (G is trained through D's augmented inputs).

use burn::tensor::ops::ConvOptions;
use burn::tensor::{Int, Tensor, TensorData, module};

use crate::rng::Rng;
use crate::{Error, Result};

/// NVlabs' `wavelets['sym6']`, the geometric transforms' resampling filter.
pub const SYM6: [f64; 12] = [
    0.015404109327027373,
    0.0034907120842174702,
    -0.11799011114819057,
    -0.048311742585633,
    0.4910559419267466,
    0.787641141030194,
    0.3379294217276218,
    -0.07263752278646252,
    -0.021060292512300564,
    0.04472490177066578,
    0.0017677118642428036,
    -0.007800708325034148,
];

/// Probability multipliers and parameter spreads of each transform (`AugmentPipe`'s arguments).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pipeline {
    pub xflip: f64,
    pub rotate90: f64,
    pub xint: f64,
    /// Integer translation range, relative to the image size (0.125).
    pub xint_max: f64,
    pub scale: f64,
    pub rotate: f64,
    pub aniso: f64,
    pub xfrac: f64,
    /// log2 standard deviation of isotropic scaling (0.2).
    pub scale_std: f64,
    /// Rotation range, 1 = full circle.
    pub rotate_max: f64,
    pub aniso_std: f64,
    /// Fractional translation standard deviation, relative to the image size (0.125).
    pub xfrac_std: f64,
    pub brightness: f64,
    pub contrast: f64,
    pub lumaflip: f64,
    pub hue: f64,
    pub saturation: f64,
    pub brightness_std: f64,
    /// log2 standard deviation of contrast (0.5).
    pub contrast_std: f64,
    pub hue_max: f64,
    /// log2 standard deviation of saturation (1).
    pub saturation_std: f64,
}

impl Pipeline {
    /// Nothing enabled, NVlabs' default spreads.
    pub fn none() -> Self {
        Pipeline {
            xflip: 0.0,
            rotate90: 0.0,
            xint: 0.0,
            xint_max: 0.125,
            scale: 0.0,
            rotate: 0.0,
            aniso: 0.0,
            xfrac: 0.0,
            scale_std: 0.2,
            rotate_max: 1.0,
            aniso_std: 0.2,
            xfrac_std: 0.125,
            brightness: 0.0,
            contrast: 0.0,
            lumaflip: 0.0,
            hue: 0.0,
            saturation: 0.0,
            brightness_std: 0.2,
            contrast_std: 0.5,
            hue_max: 1.0,
            saturation_std: 1.0,
        }
    }

    /// NVlabs' `augpipe_specs` by name: `blit`, `geom`, `color`, `bg`, `bgc` (the paper's
    /// default).
    pub fn named(name: &str) -> Result<Self> {
        let (blit, geom, color) = match name {
            "blit" => (true, false, false),
            "geom" => (false, true, false),
            "color" => (false, false, true),
            "bg" => (true, true, false),
            "bgc" => (true, true, true),
            other => {
                return Err(Error::Config(format!(
                    "train.ada_pipeline: unknown pipeline '{other}' (use bgc, bg, blit, geom or \
                     color)"
                )));
            }
        };
        let on = |b: bool| if b { 1.0 } else { 0.0 };
        let mut p = Pipeline::none();
        (p.xflip, p.rotate90, p.xint) = (on(blit), on(blit), on(blit));
        (p.scale, p.rotate, p.aniso, p.xfrac) = (on(geom), on(geom), on(geom), on(geom));
        (p.brightness, p.contrast, p.lumaflip) = (on(color), on(color), on(color));
        (p.hue, p.saturation) = (on(color), on(color));
        Ok(p)
    }

    /// Draw every image's transforms for a batch of `b` images of `[channels, h, w]` at
    /// probability `p`, transform by transform in NVlabs' order (hue and saturation only for
    /// colour images).
    pub fn sample(
        &self,
        b: usize,
        [channels, h, w]: [usize; 3],
        p: f64,
        rng: &mut Rng,
    ) -> Transforms {
        let mut g = vec![I3; b];
        let mut draw = |g: &mut Vec<Mat3>, prob: f64, value: &mut dyn FnMut(&mut Rng) -> Mat3| {
            if prob > 0.0 {
                for gi in g.iter_mut() {
                    let m = value(rng);
                    if rng.uniform() < prob {
                        *gi = mul3(gi, &m);
                    }
                }
            }
        };
        let pi = std::f64::consts::PI;
        let (wf, hf) = (w as f64, h as f64);
        draw(&mut g, self.xflip * p, &mut |r| {
            let i = (r.uniform() * 2.0).floor();
            scale2d(1.0 / (1.0 - 2.0 * i), 1.0)
        });
        draw(&mut g, self.rotate90 * p, &mut |r| {
            let i = (r.uniform() * 4.0).floor();
            rotate2d(pi / 2.0 * i)
        });
        let xint_max = self.xint_max;
        draw(&mut g, self.xint * p, &mut |r| {
            let tx = (r.uniform() * 2.0 - 1.0) * xint_max;
            let ty = (r.uniform() * 2.0 - 1.0) * xint_max;
            translate2d(-(tx * wf).round(), -(ty * hf).round())
        });
        let scale_std = self.scale_std;
        draw(&mut g, self.scale * p, &mut |r| {
            let s = (r.normal() * scale_std).exp2();
            scale2d(1.0 / s, 1.0 / s)
        });
        // Rotation happens before or after anisotropic scaling: P(either) = p.
        let p_rot = 1.0 - (1.0 - self.rotate * p).clamp(0.0, 1.0).sqrt();
        let rotate_max = self.rotate_max;
        let mut rotation = |r: &mut Rng| rotate2d((r.uniform() * 2.0 - 1.0) * pi * rotate_max);
        if self.rotate > 0.0 {
            draw(&mut g, p_rot, &mut rotation);
        }
        let aniso_std = self.aniso_std;
        draw(&mut g, self.aniso * p, &mut |r| {
            let s = (r.normal() * aniso_std).exp2();
            scale2d(1.0 / s, s)
        });
        if self.rotate > 0.0 {
            draw(&mut g, p_rot, &mut rotation);
        }
        let xfrac_std = self.xfrac_std;
        draw(&mut g, self.xfrac * p, &mut |r| {
            let (tx, ty) = (r.normal() * xfrac_std, r.normal() * xfrac_std);
            translate2d(-tx * wf, -ty * hf)
        });

        let mut c = vec![I4; b];
        let mut draw4 = |c: &mut Vec<Mat4>, prob: f64, value: &mut dyn FnMut(&mut Rng) -> Mat4| {
            if prob > 0.0 {
                for ci in c.iter_mut() {
                    let m = value(rng);
                    if rng.uniform() < prob {
                        *ci = mul4(&m, ci);
                    }
                }
            }
        };
        let brightness_std = self.brightness_std;
        draw4(&mut c, self.brightness * p, &mut |r| {
            let v = r.normal() * brightness_std;
            translate3d(v)
        });
        let contrast_std = self.contrast_std;
        draw4(&mut c, self.contrast * p, &mut |r| {
            let v = (r.normal() * contrast_std).exp2();
            scale3d(v)
        });
        draw4(&mut c, self.lumaflip * p, &mut |r| {
            let i = (r.uniform() * 2.0).floor();
            luma_flip(i)
        });
        let colour = if channels > 1 { 1.0 } else { 0.0 };
        let hue_max = self.hue_max;
        draw4(&mut c, self.hue * p * colour, &mut |r| {
            hue_rotation((r.uniform() * 2.0 - 1.0) * pi * hue_max)
        });
        let saturation_std = self.saturation_std;
        draw4(&mut c, self.saturation * p * colour, &mut |r| {
            saturation((r.normal() * saturation_std).exp2())
        });
        Transforms { g_inv: g, color: c }
    }
}

/// 3x3 and 4x4 matrices, row-major.
pub type Mat3 = [[f64; 3]; 3];
pub type Mat4 = [[f64; 4]; 4];
pub const I3: Mat3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
pub const I4: Mat4 = [
    [1.0, 0.0, 0.0, 0.0],
    [0.0, 1.0, 0.0, 0.0],
    [0.0, 0.0, 1.0, 0.0],
    [0.0, 0.0, 0.0, 1.0],
];

pub fn mul3(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut m = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            m[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    m
}

pub fn mul4(a: &Mat4, b: &Mat4) -> Mat4 {
    let mut m = [[0.0; 4]; 4];
    for i in 0..4 {
        for j in 0..4 {
            m[i][j] = (0..4).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    m
}

pub fn translate2d(tx: f64, ty: f64) -> Mat3 {
    [[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]]
}

pub fn scale2d(sx: f64, sy: f64) -> Mat3 {
    [[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]]
}

/// Rotation by `theta` (NVlabs' `rotate2d`; the pipeline composes `rotate2d_inv(-theta)`,
/// which is this).
pub fn rotate2d(theta: f64) -> Mat3 {
    let (s, c) = theta.sin_cos();
    [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
}

pub fn translate3d(v: f64) -> Mat4 {
    let mut m = I4;
    for row in m.iter_mut().take(3) {
        row[3] = v;
    }
    m
}

pub fn scale3d(v: f64) -> Mat4 {
    let mut m = I4;
    for (i, row) in m.iter_mut().enumerate().take(3) {
        row[i] = v;
    }
    m
}

/// The luma axis `(1, 1, 1, 0) / sqrt 3` and `v v^T`.
fn luma_outer() -> Mat4 {
    let mut m = [[0.0; 4]; 4];
    for row in m.iter_mut().take(3) {
        row[..3].fill(1.0 / 3.0);
    }
    m
}

/// Householder reflection of the colours through the plane normal to the luma axis, when `i`
/// is 1 (`I - 2 v v^T i`).
pub fn luma_flip(i: f64) -> Mat4 {
    let vv = luma_outer();
    let mut m = I4;
    for r in 0..4 {
        for c in 0..4 {
            m[r][c] -= 2.0 * vv[r][c] * i;
        }
    }
    m
}

/// Rotation of the colours by `theta` about the luma axis (NVlabs' `rotate3d(v, theta)`).
pub fn hue_rotation(theta: f64) -> Mat4 {
    let v = 1.0 / 3f64.sqrt();
    let (s, c) = theta.sin_cos();
    let cc = 1.0 - c;
    let (a, b) = (v * v * cc + c, v * v * cc);
    [
        [a, b - v * s, b + v * s, 0.0],
        [b + v * s, a, b - v * s, 0.0],
        [b - v * s, b + v * s, a, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
}

/// Saturation `s`: the luma component kept, the rest scaled (`v v^T + (I - v v^T) s`).
pub fn saturation(s: f64) -> Mat4 {
    let vv = luma_outer();
    let mut m = [[0.0; 4]; 4];
    for r in 0..4 {
        for c in 0..4 {
            m[r][c] = vv[r][c] + (I4[r][c] - vv[r][c]) * s;
        }
    }
    m
}

/// One batch's drawn transforms: each image's inverse geometric matrix and colour matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Transforms {
    pub g_inv: Vec<Mat3>,
    pub color: Vec<Mat4>,
}

impl Transforms {
    pub fn is_identity(&self) -> bool {
        self.g_inv.iter().all(|g| *g == I3) && self.color.iter().all(|c| *c == I4)
    }

    /// The transforms of a batch `n` times as large (the same images repeated, as the R1
    /// surrogate stacks its evaluation points).
    pub fn repeated(&self, n: usize) -> Transforms {
        Transforms {
            g_inv: self.g_inv.repeat(n),
            color: self.color.repeat(n),
        }
    }

    /// `[b, c, h, w] -> [b, c, h, w]`, `b` the number of drawn images; `c` is 1 or 3.
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, c, _, _] = x.dims();
        assert_eq!(
            b,
            self.g_inv.len(),
            "transforms drawn for another batch size"
        );
        let mut x = x;
        if self.g_inv.iter().any(|g| *g != I3) {
            x = geometric(x, &self.g_inv);
        }
        if self.color.iter().any(|m| *m != I4) {
            x = colour(x, &self.color, c);
        }
        x
    }
}

/// The 1-D `sym6` filter normalised to sum 1 (NVlabs' `setup_filter`).
fn sym6() -> Vec<f64> {
    let s: f64 = SYM6.iter().sum();
    SYM6.iter().map(|v| v / s).collect()
}

/// Reflect padding (`torch.nn.functional.pad(mode='reflect')`) by `[x0, x1, y0, y1]`, as index
/// selections (each pad smaller than the side).
fn reflect_pad(x: Tensor<4>, [x0, x1, y0, y1]: [usize; 4]) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let device = x.device();
    let index = |n: usize, p0: usize, p1: usize| -> Tensor<1, Int> {
        let idx: Vec<i64> = (0..n + p0 + p1)
            .map(|i| {
                let j = i as i64 - p0 as i64;
                let last = n as i64 - 1;
                if j < 0 {
                    -j
                } else if j > last {
                    2 * last - j
                } else {
                    j
                }
            })
            .collect();
        Tensor::from_data(TensorData::new(idx, [n + p0 + p1]), &device)
    };
    x.select(2, index(h, y0, y1)).select(3, index(w, x0, x1))
}

/// Zeros added (or, negative, rows and columns removed) on each side of the last two axes.
fn pad_zeros(x: Tensor<4>, [x0, x1, y0, y1]: [i64; 4]) -> Tensor<4> {
    let crop = |x: Tensor<4>, dim: usize, p0: i64, p1: i64| {
        let n = x.dims()[dim] as i64;
        let (a, e) = (p0.min(0).unsigned_abs() as usize, (n + p1.min(0)) as usize);
        x.narrow(dim, a, e - a)
    };
    let grow = |x: Tensor<4>, dim: usize, p0: i64, p1: i64| {
        let mut parts = Vec::new();
        let mut shape = x.dims();
        let device = x.device();
        if p0 > 0 {
            shape[dim] = p0 as usize;
            parts.push(Tensor::zeros(shape, &device));
        }
        parts.push(x);
        if p1 > 0 {
            shape[dim] = p1 as usize;
            parts.push(Tensor::zeros(shape, &device));
        }
        Tensor::cat(parts, dim)
    };
    let x = crop(grow(x, 3, x0, x1), 3, x0, x1);
    crop(grow(x, 2, y0, y1), 2, y0, y1)
}

/// NVlabs' `upfirdn2d` with a separable 1-D filter: zero-insert `up - 1` pixels after each
/// pixel, pad `[p0, p1]` on both axes, convolve with `f` on each axis (correlate when `flip`,
/// NVlabs' `flip_filter=True`) times `gain` in all, keep every `down`-th pixel.
pub fn upfirdn2d(
    x: Tensor<4>,
    f: &[f64],
    up: usize,
    down: usize,
    [p0, p1]: [i64; 2],
    flip: bool,
    gain: f64,
) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let device = x.device();
    let mut x = x;
    if up > 1 {
        // Rows then columns: each followed by up - 1 zero rows (columns).
        let z = Tensor::<5>::zeros([b, c, h, up - 1, w], &device);
        x = Tensor::cat(vec![x.unsqueeze_dim::<5>(3), z], 3).reshape([b, c, h * up, w]);
        let z = Tensor::<5>::zeros([b, c, h * up, w, up - 1], &device);
        x = Tensor::cat(vec![x.unsqueeze_dim::<5>(4), z], 4).reshape([b, c, h * up, w * up]);
    }
    x = pad_zeros(x, [p0, p1, p0, p1]);
    // burn's conv2d correlates: NVlabs convolves unless flip_filter, i.e. correlates with the
    // reversed taps.
    let g = gain.sqrt();
    let taps: Vec<f32> = if flip {
        f.iter().map(|v| (v * g) as f32).collect()
    } else {
        f.iter().rev().map(|v| (v * g) as f32).collect()
    };
    let k = taps.len();
    let along_w = Tensor::<4>::from_data(TensorData::new(taps.repeat(c), [c, 1, 1, k]), &device);
    let along_h = Tensor::<4>::from_data(TensorData::new(taps.repeat(c), [c, 1, k, 1]), &device);
    let x = module::conv2d(
        x,
        along_w,
        None,
        ConvOptions::new([1, down], [0, 0], [1, 1], c),
    );
    module::conv2d(
        x,
        along_h,
        None,
        ConvOptions::new([down, 1], [0, 0], [1, 1], c),
    )
}

/// The geometric half of `AugmentPipe.forward`: `[b, c, h, w]` through each image's `G_inv`.
fn geometric(x: Tensor<4>, g_inv: &[Mat3]) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let f = sym6();
    let hz_pad = (f.len() / 4) as i64; // 3
    let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
    // Reflect-pad enough that every transformed corner stays inside the image.
    let corners = [[-cx, -cy], [cx, -cy], [cx, cy], [-cx, cy]];
    let mut margin = [f64::NEG_INFINITY; 4]; // x0, y0, x1, y1
    for g in g_inv {
        for [px, py] in corners {
            let tx = g[0][0] * px + g[0][1] * py + g[0][2];
            let ty = g[1][0] * px + g[1][1] * py + g[1][2];
            margin[0] = margin[0].max(-tx);
            margin[1] = margin[1].max(-ty);
            margin[2] = margin[2].max(tx);
            margin[3] = margin[3].max(ty);
        }
    }
    let pad2 = 2.0 * hz_pad as f64;
    let mut m = [0usize; 4];
    for (i, v) in margin.iter().enumerate() {
        let centre = if i % 2 == 0 { cx } else { cy };
        let limit = if i % 2 == 0 { w - 1 } else { h - 1 } as f64;
        m[i] = (v + pad2 - centre).max(0.0).min(limit).ceil() as usize;
    }
    let [mx0, my0, mx1, my1] = m;
    let x = reflect_pad(x, [mx0, mx1, my0, my1]);
    let x = upfirdn2d(x, &f, 2, 1, [6, 5], false, 4.0); // NVlabs' upsample2d
    let [_, _, hu, wu] = x.dims();
    let (ho, wo) = ((h + 2 * hz_pad as usize) * 2, (w + 2 * hz_pad as usize) * 2);
    // Each image's G_inv in grid_sample's normalised coordinates, as NVlabs builds it.
    let shift = translate2d(
        (mx0 as f64 - mx1 as f64) / 2.0,
        (my0 as f64 - my1 as f64) / 2.0,
    );
    let thetas: Vec<Mat3> = g_inv
        .iter()
        .map(|g| {
            let mut t = mul3(&shift, g);
            t = mul3(&mul3(&scale2d(2.0, 2.0), &t), &scale2d(0.5, 0.5));
            t = mul3(&mul3(&translate2d(-0.5, -0.5), &t), &translate2d(0.5, 0.5));
            let to = scale2d(2.0 / wu as f64, 2.0 / hu as f64);
            let from = scale2d(wo as f64 / 2.0, ho as f64 / 2.0);
            mul3(&mul3(&to, &t), &from)
        })
        .collect();
    let x = grid_sample(x, &thetas, [ho, wo]);
    upfirdn2d(x, &f, 1, 2, [-1, -1], true, 1.0) // NVlabs' downsample2d, padding -2 hz_pad
}

/// `grid_sample(x, affine_grid(theta[:, :2], [b, c, ho, wo], align_corners=False))`, bilinear,
/// zero fill: each output pixel a weighted sum of four gathered input pixels.
fn grid_sample(x: Tensor<4>, thetas: &[Mat3], [ho, wo]: [usize; 2]) -> Tensor<4> {
    let [b, c, hi, wi] = x.dims();
    let device = x.device();
    let n = ho * wo;
    let mut index = vec![0i64; 4 * b * n];
    let mut weight = vec![0f32; 4 * b * n];
    for (img, t) in thetas.iter().enumerate() {
        for i in 0..ho {
            let y = (2 * i + 1) as f64 / ho as f64 - 1.0;
            for j in 0..wo {
                let xn = (2 * j + 1) as f64 / wo as f64 - 1.0;
                let gx = t[0][0] * xn + t[0][1] * y + t[0][2];
                let gy = t[1][0] * xn + t[1][1] * y + t[1][2];
                let ix = ((gx + 1.0) * wi as f64 - 1.0) / 2.0;
                let iy = ((gy + 1.0) * hi as f64 - 1.0) / 2.0;
                let (x0, y0) = (ix.floor(), iy.floor());
                let (fx, fy) = (ix - x0, iy - y0);
                let corners = [
                    (x0, y0, (1.0 - fx) * (1.0 - fy)),
                    (x0 + 1.0, y0, fx * (1.0 - fy)),
                    (x0, y0 + 1.0, (1.0 - fx) * fy),
                    (x0 + 1.0, y0 + 1.0, fx * fy),
                ];
                for (k, (px, py, wt)) in corners.into_iter().enumerate() {
                    let inside = px >= 0.0 && py >= 0.0 && px < wi as f64 && py < hi as f64;
                    let at = (k * b + img) * n + i * wo + j;
                    if inside {
                        index[at] =
                            img as i64 * (hi * wi) as i64 + py as i64 * wi as i64 + px as i64;
                        weight[at] = wt as f32;
                    }
                }
            }
        }
    }
    // [b, c, hi, wi] -> [b * hi * wi, c], rows gathered per corner.
    let flat = x.permute([0, 2, 3, 1]).reshape([b * hi * wi, c]);
    let idx = Tensor::<1, Int>::from_data(TensorData::new(index, [4 * b * n]), &device);
    let wts = Tensor::<2>::from_data(TensorData::new(weight, [4 * b * n, 1]), &device);
    let picked = flat.select(0, idx) * wts; // [4 b n, c]
    let out = picked
        .reshape([4, b * n, c])
        .sum_dim(0)
        .reshape([b, ho, wo, c]);
    out.permute([0, 3, 1, 2])
}

/// The colour half: `[b, c, h, w]` through each image's 4x4 matrix (RGB), or for grayscale the
/// mean of its first three rows, as NVlabs applies it.
fn colour(x: Tensor<4>, color: &[Mat4], c: usize) -> Tensor<4> {
    let [b, _, h, w] = x.dims();
    let device = x.device();
    let x = x.reshape([b, c, h * w]);
    let (m, t): (Vec<f32>, Vec<f32>) = match c {
        3 => (
            color
                .iter()
                .flat_map(|m| (0..3).flat_map(move |r| (0..3).map(move |k| m[r][k] as f32)))
                .collect(),
            color
                .iter()
                .flat_map(|m| (0..3).map(move |r| m[r][3] as f32))
                .collect(),
        ),
        1 => (
            color
                .iter()
                .map(|m| ((0..3).map(|r| m[r][0] + m[r][1] + m[r][2]).sum::<f64>() / 3.0) as f32)
                .collect(),
            color
                .iter()
                .map(|m| ((0..3).map(|r| m[r][3]).sum::<f64>() / 3.0) as f32)
                .collect(),
        ),
        _ => panic!("the augmentation pipeline takes RGB or grayscale images, not {c} channels"),
    };
    let m = Tensor::<3>::from_data(TensorData::new(m, [b, c, c]), &device);
    let t = Tensor::<3>::from_data(TensorData::new(t, [b, c, 1]), &device);
    (m.matmul(x) + t).reshape([b, c, h, w])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;
    use std::f64::consts::PI;

    fn image(v: Vec<f32>, shape: [usize; 4]) -> Tensor<4> {
        Tensor::from_data(TensorData::new(v, shape), &Device::flex())
    }

    fn vals(x: Tensor<4>) -> Vec<f32> {
        x.into_data().convert::<f32>().try_to_vec().unwrap()
    }

    fn one(g: Mat3, c: Mat4) -> Transforms {
        Transforms {
            g_inv: vec![g],
            color: vec![c],
        }
    }

    fn random(n: usize, seed: u64) -> Tensor<4> {
        image(Rng::new(seed).normal_vec(n * n, 0.0, 1.0), [1, 1, n, n])
    }

    fn max_diff(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// `exp(-(x^2 / sx^2 + y^2 / sy^2) / (2 sigma^2))` about the centre of an `n x n` image.
    fn blob(n: usize, sigma: f64, [sx, sy]: [f64; 2]) -> Vec<f32> {
        let c = (n as f64 - 1.0) / 2.0;
        (0..n * n)
            .map(|k| {
                let (x, y) = ((k % n) as f64 - c, (k / n) as f64 - c);
                (-(x * x / (sx * sx) + y * y / (sy * sy)) / (2.0 * sigma * sigma)).exp() as f32
            })
            .collect()
    }

    #[test]
    fn probability_zero_is_the_identity() {
        let pipe = Pipeline::named("bgc").unwrap();
        let t = pipe.sample(8, [3, 16, 16], 0.0, &mut Rng::new(1));
        assert!(t.is_identity());
        let x = image(
            Rng::new(2).normal_vec(8 * 3 * 256, 0.0, 1.0),
            [8, 3, 16, 16],
        );
        assert_eq!(vals(t.apply(x.clone())), vals(x));
    }

    /// The geometric path's resampling (sym6 up, bilinear at the pixel centres, sym6 down) is
    /// lossless: a matrix that only forces the path returns the image. Flips, quarter turns and
    /// integer shifts move a smooth image's pixels where their matrices say (on noise they are
    /// not exact: the asymmetric sym6 filter does not commute with a flip, in NVlabs' code too).
    #[test]
    fn integer_transforms_move_pixels_where_their_matrices_say() {
        let n = 24;
        let x = random(n, 3);
        let nearly_identity = [[1.0, 0.0, 0.0], [0.0, 1.0, 1e-12], [0.0, 0.0, 1.0]];
        let same = vals(one(nearly_identity, I4).apply(x.clone()));
        assert!(max_diff(&same, &vals(x)) < 1e-5);
        // An off-centre blob, smooth enough for the filters.
        let c = (n as f64 - 1.0) / 2.0;
        let v: Vec<f32> = (0..n * n)
            .map(|k| {
                let (x, y) = ((k % n) as f64 - c - 3.0, (k / n) as f64 - c + 2.0);
                (-(x * x + y * y) / 18.0).exp() as f32
            })
            .collect();
        let x = image(v.clone(), [1, 1, n, n]);
        let check = |g: Mat3, at: &dyn Fn(usize, usize) -> (i64, i64)| {
            let got = vals(one(g, I4).apply(x.clone()));
            let want: Vec<f32> = (0..n * n)
                .map(|k| {
                    let (y, x) = at(k / n, k % n);
                    let inside = (0..n as i64).contains(&y) && (0..n as i64).contains(&x);
                    if inside {
                        v[y as usize * n + x as usize]
                    } else {
                        0.0
                    }
                })
                .collect();
            max_diff(&got, &want)
        };
        let last = n as i64 - 1;
        // out(p) = in(G_inv p).
        // A shift keeps the filters aligned; a flip or turn meets sym6 reversed (about 2% of the
        // peak on this blob).
        assert!(check(translate2d(-2.0, 1.0), &|y, x| (y as i64 + 1, x as i64 - 2)) < 1e-3);
        assert!(check(scale2d(-1.0, 1.0), &|y, x| (y as i64, last - x as i64)) < 0.03);
        assert!(check(rotate2d(PI / 2.0), &|y, x| (x as i64, last - y as i64)) < 0.03);
        // The other direction of the quarter turn is far off.
        assert!(check(rotate2d(PI / 2.0), &|y, x| (last - x as i64, y as i64)) > 0.3);
    }

    /// Arbitrary rotation leaves a centred round blob as it is; anisotropic scaling by `s`
    /// stretches it to `exp(-((x / s)^2 + (s y)^2) / 2 sigma^2)`.
    #[test]
    fn rotation_and_scaling_follow_their_matrices() {
        let (n, sigma) = (32, 3.0);
        let x = image(blob(n, sigma, [1.0, 1.0]), [1, 1, n, n]);
        let rotated = vals(one(rotate2d(0.7), I4).apply(x.clone()));
        let d = max_diff(&rotated, &blob(n, sigma, [1.0, 1.0]));
        assert!(d < 0.02, "rotation: {d}");
        let s = 1.3;
        let stretched = vals(one(scale2d(1.0 / s, s), I4).apply(x.clone()));
        let d = max_diff(&stretched, &blob(n, sigma, [s, 1.0 / s]));
        assert!(d < 0.01, "anisotropic scaling: {d}");
        // A wrong direction (the forward matrix in place of the inverse) is far off.
        let d = max_diff(&stretched, &blob(n, sigma, [1.0 / s, s]));
        assert!(d > 0.1, "{d}");
    }

    #[test]
    fn colour_transforms_follow_their_matrices() {
        let (r, g, b) = (0.2f32, -0.5, 0.9);
        let x = image(vec![r, g, b], [1, 3, 1, 1]);
        let close = |got: Vec<f32>, want: [f32; 3]| max_diff(&got, &want) < 1e-5;
        assert!(close(
            vals(one(I3, translate3d(0.3)).apply(x.clone())),
            [0.5, -0.2, 1.2]
        ));
        assert!(close(
            vals(one(I3, scale3d(2.0)).apply(x.clone())),
            [0.4, -1.0, 1.8]
        ));
        // A third of a turn about the grey axis moves red to green, green to blue, blue to red.
        let hue = vals(one(I3, hue_rotation(2.0 * PI / 3.0)).apply(x.clone()));
        assert!(close(hue, [b, r, g]));
        let mean = (r + g + b) / 3.0;
        assert!(close(
            vals(one(I3, saturation(0.0)).apply(x.clone())),
            [mean; 3]
        ));
        let flip = vals(one(I3, luma_flip(1.0)).apply(x.clone()));
        assert!(close(
            flip,
            [r - 2.0 * mean, g - 2.0 * mean, b - 2.0 * mean]
        ));
        // Grayscale: the mean of the RGB rows, as NVlabs applies it.
        let gray = image(vec![0.25], [1, 1, 1, 1]);
        let m = mul4(&translate3d(0.1), &scale3d(3.0));
        assert!(max_diff(&vals(one(I3, m).apply(gray)), &[0.85]) < 1e-6);
    }

    /// Each transform fires with probability `p` times its multiplier: with only x-flips at
    /// p = 0.5, a quarter of the images flip (half the draws pick the identity flip).
    #[test]
    fn transforms_fire_with_probability_p() {
        let mut pipe = Pipeline::none();
        pipe.xflip = 1.0;
        let t = pipe.sample(4000, [1, 8, 8], 0.5, &mut Rng::new(7));
        let flipped = t.g_inv.iter().filter(|g| g[0][0] < 0.0).count() as f64 / 4000.0;
        assert!((flipped - 0.25).abs() < 0.03, "{flipped}");
        // Grayscale images draw no hue or saturation.
        let mut hs = Pipeline::none();
        (hs.hue, hs.saturation) = (1.0, 1.0);
        let gray = hs.sample(64, [1, 8, 8], 1.0, &mut Rng::new(8));
        let rgb = hs.sample(64, [3, 8, 8], 1.0, &mut Rng::new(8));
        assert!(gray.is_identity());
        assert!(!rgb.is_identity());
    }

    /// The full pipeline at p = 1 changes the images, keeps them finite, and passes gradients
    /// back to them (G learns through D's augmented inputs).
    #[test]
    fn bgc_is_differentiable() {
        let device = Device::flex().autodiff();
        let pipe = Pipeline::named("bgc").unwrap();
        let t = pipe.sample(4, [3, 16, 16], 1.0, &mut Rng::new(9));
        let v = Rng::new(10).normal_vec(4 * 3 * 256, 0.0, 1.0);
        let x = Tensor::<4>::from_data(TensorData::new(v.clone(), [4, 3, 16, 16]), &device)
            .require_grad();
        let y = t.apply(x.clone());
        let out = vals(y.clone());
        assert!(out.iter().all(|v| v.is_finite()));
        assert!(max_diff(&out, &v) > 0.1);
        let grads = (y.clone() * y).sum().backward();
        let g = x.grad(&grads).unwrap();
        let g = g.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
        assert!(g.iter().any(|v| v.abs() > 1e-3));
    }
}
