//! Projecting a real image into a StyleGAN2's W (NVlabs' stylegan2-ada-pytorch `projector.py`,
//! after "Analyzing and Improving the Image Quality of StyleGAN", section 5): one `w`, shared by
//! every synthesis input, and every `noise_const` image are optimised with Adam so that the
//! generated image is close to the target in LPIPS. As NVlabs: start at `w_avg` (the mean of
//! 10,000 mapped latents), learning rate 0.1 with a 5% ramp-up and a cosine ramp-down over the
//! last 25%, Gaussian noise on `w` of `w_std * 0.05 * max(0, 1 - t / 0.75)^2`, the noise
//! maps' autocorrelation penalty (weight 1e5) over a pyramid down to 8x8, noise maps
//! renormalised after each step, images above 256 pixels area-downsampled to 256 for the
//! distance. The distance is LPIPS-VGG (`metrics::lpips`) where NVlabs uses its own VGG16 port of
//! the same metric.

use burn::tensor::{Device, Tensor, TensorData};

use crate::metrics::lpips::Lpips;
use crate::models::stylegan::Noise;
use crate::models::stylegan2::Generator;
use crate::nn::blur::downsample2x;
use crate::rng::Rng;
use crate::{Error, Result};

/// `projector.py`'s settings.
#[derive(Clone, Debug)]
pub struct ProjectOptions {
    pub steps: usize,
    pub w_avg_samples: usize,
    pub initial_lr: f64,
    pub initial_noise_factor: f64,
    pub lr_rampdown: f64,
    pub lr_rampup: f64,
    pub noise_ramp: f64,
    pub noise_weight: f64,
    pub seed: u64,
    /// Keep the image of every this many steps (0: none), for the video.
    pub frame_every: usize,
}

impl Default for ProjectOptions {
    fn default() -> Self {
        ProjectOptions {
            steps: 1000,
            w_avg_samples: 10_000,
            initial_lr: 0.1,
            initial_noise_factor: 0.05,
            lr_rampdown: 0.25,
            lr_rampup: 0.05,
            noise_ramp: 0.75,
            noise_weight: 1e5,
            seed: 303,
            frame_every: 0,
        }
    }
}

/// What a projection found.
pub struct Projection {
    /// `[w_dim]`, the projected `w` (every synthesis input takes it).
    pub w: Vec<f32>,
    /// The projected image, `[1, c, r, r]` in [-1, 1], with the optimised noise.
    pub image: Tensor<4>,
    /// LPIPS to the target after each step.
    pub distances: Vec<f64>,
    /// The images of every `frame_every` steps.
    pub frames: Vec<Tensor<4>>,
}

/// The learning rate at `t` in [0, 1): the ramp-up, then the cosine ramp-down.
pub fn learning_rate(opts: &ProjectOptions, t: f64) -> f64 {
    let down = ((1.0 - t) / opts.lr_rampdown).min(1.0);
    let ramp = 0.5 - 0.5 * (down * std::f64::consts::PI).cos();
    opts.initial_lr * ramp * (t / opts.lr_rampup).min(1.0)
}

/// Area downsampling to at most 256 pixels a side (powers of two).
fn at_most_256(mut x: Tensor<4>) -> Tensor<4> {
    while x.dims()[2] > 256 {
        x = downsample2x(x);
    }
    x
}

/// `torch.roll(x, 1, dim)` for the last two dims of `[1, 1, h, w]`.
fn roll1(x: Tensor<4>, dim: usize) -> Tensor<4> {
    let n = x.dims()[dim];
    Tensor::cat(
        vec![x.clone().narrow(dim, n - 1, 1), x.narrow(dim, 0, n - 1)],
        dim,
    )
}

/// NVlabs' noise regularizer: squared autocorrelation at one-pixel shifts, summed over a pyramid
/// of each noise map down to 8x8.
pub fn noise_regularizer(noise: &[Tensor<4>]) -> Tensor<1> {
    let mut terms = Vec::new();
    for n in noise {
        let mut x = n.clone(); // [1, 1, r, r]
        loop {
            terms.push((x.clone() * roll1(x.clone(), 3)).mean().square());
            terms.push((x.clone() * roll1(x.clone(), 2)).mean().square());
            if x.dims()[2] <= 8 {
                break;
            }
            x = downsample2x(x);
        }
    }
    Tensor::cat(terms, 0).sum()
}

/// One Adam state (PyTorch's: betas 0.9 and 0.999, eps 1e-8).
struct Adam {
    m: Tensor<2>,
    v: Tensor<2>,
}

impl Adam {
    fn new(like: &Tensor<2>) -> Self {
        Adam {
            m: like.zeros_like(),
            v: like.zeros_like(),
        }
    }

    /// The parameter after one step with gradient `g` at step `t` (1-based).
    fn step(&mut self, p: Tensor<2>, g: Tensor<2>, lr: f64, t: i32) -> Tensor<2> {
        let (b1, b2) = (0.9f64, 0.999f64);
        self.m = self.m.clone() * b1 + g.clone() * (1.0 - b1);
        self.v = self.v.clone() * b2 + g.square() * (1.0 - b2);
        let mhat = self.m.clone() / (1.0 - b1.powi(t));
        let vhat = self.v.clone() / (1.0 - b2.powi(t));
        p - mhat / (vhat.sqrt() + 1e-8) * lr
    }
}

/// Project `target` (`[1, c, r, r]` in [-1, 1], the generator's size) into `g`'s W; `class` is
/// a conditional network's one-hot `[1, num_classes]`. `device` must be an autodiff device (G
/// and LPIPS live there as constants). `progress(step, lpips)` is called after each step.
pub fn project(
    g: &Generator,
    class: Option<Tensor<2>>,
    target: Tensor<4>,
    lpips: &Lpips,
    opts: &ProjectOptions,
    mut progress: impl FnMut(usize, f64),
) -> Result<Projection> {
    let device = g.device();
    if !device.is_autodiff() {
        return Err(Error::Config("projection needs an autodiff device".into()));
    }
    if opts.steps == 0 {
        return Err(Error::Config("--steps must be at least 1".into()));
    }
    let mut rng = Rng::new(opts.seed);
    // w statistics from mapped latents, without autodiff.
    let (w_avg, w_std) = {
        let n = opts.w_avg_samples.max(2);
        let z = Tensor::<2>::from_data(
            TensorData::new(rng.normal_vec(n * g.z_dim, 0.0, 1.0), [n, g.z_dim]),
            &device,
        );
        let c = class.clone().map(|c| c.repeat_dim(0, n));
        let w = g.to_w(z, c).detach(); // [n, w_dim]
        let avg = w.clone().mean_dim(0); // [1, w_dim]
        let var = (w - avg.clone()).square().sum() / n as f64;
        (avg, var.into_scalar::<f32>().sqrt() as f64)
    };
    let target = at_most_256(target.to_device(&device).detach());
    let sides: Vec<usize> = g.conv_layers().iter().map(|l| l.resolution()).collect();
    let mut noise: Vec<Tensor<2>> = sides
        .iter()
        .map(|&r| {
            Tensor::from_data(
                TensorData::new(rng.normal_vec(r * r, 0.0, 1.0), [r, r]),
                &device,
            )
        })
        .collect();
    let mut w = w_avg.clone();
    let mut adam_w = Adam::new(&w);
    let mut adam_n: Vec<Adam> = noise.iter().map(Adam::new).collect();
    let num_ws = g.num_ws();
    let mut distances = Vec::with_capacity(opts.steps);
    let mut frames = Vec::new();
    let image_of = |w: &Tensor<2>, noise: &[Tensor<2>]| {
        let maps = noise
            .iter()
            .zip(&sides)
            .map(|(n, &r)| Some(n.clone().reshape([1, 1, r, r])))
            .collect();
        g.synthesis(&vec![w.clone(); num_ws], Noise::Fixed(maps))
    };
    for step in 0..opts.steps {
        let t = step as f64 / opts.steps as f64;
        let w_noise_scale =
            w_std * opts.initial_noise_factor * (1.0 - t / opts.noise_ramp).max(0.0).powi(2);
        let lr = learning_rate(opts, t);
        let w_leaf = w.clone().detach().require_grad();
        let n_leaves: Vec<Tensor<2>> = noise
            .iter()
            .map(|n| n.clone().detach().require_grad())
            .collect();
        let jitter = Tensor::<2>::from_data(
            TensorData::new(
                rng.normal_vec(w.dims()[1], 0.0, w_noise_scale.max(0.0)),
                w.dims(),
            ),
            &device,
        );
        let synth = image_of(&(w_leaf.clone() + jitter), &n_leaves);
        let dist = lpips.distance(at_most_256(synth), target.clone()).sum();
        let maps: Vec<Tensor<4>> = n_leaves
            .iter()
            .zip(&sides)
            .map(|(n, &r)| n.clone().reshape([1, 1, r, r]))
            .collect();
        let loss = dist.clone() + noise_regularizer(&maps) * opts.noise_weight;
        let d = dist.into_scalar::<f32>() as f64;
        if !d.is_finite() {
            return Err(Error::Config(format!(
                "the projection diverged at step {step} (LPIPS {d})"
            )));
        }
        let grads = loss.backward();
        let grad = |x: &Tensor<2>| {
            x.grad(&grads)
                .map(Tensor::<2>::from_inner)
                .unwrap_or_else(|| x.zeros_like().detach())
        };
        let tt = step as i32 + 1;
        w = adam_w.step(w, grad(&w_leaf), lr, tt).detach();
        for ((n, leaf), adam) in noise.iter_mut().zip(&n_leaves).zip(&mut adam_n) {
            let stepped = adam.step(n.clone(), grad(leaf), lr, tt);
            // Renormalise to zero mean and unit variance, as NVlabs does after each step.
            let centred = stepped.clone() - stepped.mean().unsqueeze::<2>();
            let rms = centred.clone().square().mean().sqrt().unsqueeze::<2>();
            *n = (centred / rms).detach();
        }
        distances.push(d);
        progress(step + 1, d);
        if opts.frame_every > 0 && (step % opts.frame_every == 0 || step + 1 == opts.steps) {
            frames.push(image_of(&w, &noise).detach());
        }
    }
    let image = image_of(&w, &noise).detach();
    Ok(Projection {
        w: w.into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default(),
        image,
        distances,
        frames,
    })
}

/// A target image file as `[1, channels, res, res]` in [-1, 1]: centre-cropped to a square and
/// resized (Lanczos) as `projector.py` does, converted to one channel for grayscale networks.
pub fn load_target(
    path: &std::path::Path,
    channels: usize,
    res: usize,
    device: &Device,
) -> Result<Tensor<4>> {
    let img = image::open(path)
        .map_err(|e| Error::data(path, format!("cannot be read as an image: {e}")))?;
    let (w, h) = (img.width(), img.height());
    let s = w.min(h);
    let img = img.crop_imm((w - s) / 2, (h - s) / 2, s, s).resize_exact(
        res as u32,
        res as u32,
        image::imageops::FilterType::Lanczos3,
    );
    let values: Vec<f32> = if channels == 1 {
        let g = img.to_luma8();
        g.pixels().map(|p| p.0[0] as f32 / 127.5 - 1.0).collect()
    } else {
        let rgb = img.to_rgb8();
        let mut planes = vec![0f32; 3 * res * res];
        for (i, p) in rgb.pixels().enumerate() {
            for c in 0..3 {
                planes[c * res * res + i] = p.0[c] as f32 / 127.5 - 1.0;
            }
        }
        planes
    };
    Ok(Tensor::from_data(
        TensorData::new(values, [1, channels, res, res]),
        device,
    ))
}

/// `values` (`[rows, cols]` f32) as a NumPy `.npy` file (format 1.0, little-endian).
pub fn npy(values: &[f32], shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    // Magic (6) + version (2) + length (2) + header + '\n' padded to a multiple of 64.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learning_rate_ramps_as_nvlabs() {
        let o = ProjectOptions::default();
        assert_eq!(learning_rate(&o, 0.0), 0.0);
        assert!((learning_rate(&o, 0.025) - 0.05).abs() < 1e-12); // half-way up the ramp
        assert!((learning_rate(&o, 0.5) - 0.1).abs() < 1e-12);
        assert!((learning_rate(&o, 0.875) - 0.05).abs() < 1e-9); // half-way down the cosine
    }

    #[test]
    fn npy_header_is_aligned_and_parsable() {
        let b = npy(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[1, 2, 3]);
        assert_eq!(&b[..6], b"\x93NUMPY");
        let len = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + len) % 64, 0);
        let header = std::str::from_utf8(&b[10..10 + len]).unwrap();
        assert!(header.contains("'shape': (1, 2, 3)"));
        assert_eq!(b.len(), 10 + len + 24);
    }

    /// White noise has almost no autocorrelation; a smooth map has a lot.
    #[test]
    fn noise_regularizer_penalises_correlated_maps() {
        let device = Device::flex();
        let mut rng = Rng::new(1);
        let white = Tensor::<4>::from_data(
            TensorData::new(rng.normal_vec(1024, 0.0, 1.0), [1, 1, 32, 32]),
            &device,
        );
        let smooth = crate::nn::blur::blur(crate::nn::blur::blur(white.clone())) * 4.0;
        let r = |x: Tensor<4>| noise_regularizer(&[x]).into_scalar::<f32>();
        assert!(r(white) * 20.0 < r(smooth));
    }
}
