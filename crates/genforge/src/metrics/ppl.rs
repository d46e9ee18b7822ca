//! Perceptual path length (Karras et al. 2019, "A Style-Based Generator Architecture for
//! Generative Adversarial Networks", section 4.2) as NVlabs' stylegan2-ada-pytorch computes its
//! `ppl_wend` metric (`metrics/perceptual_path_length.py`): for pairs of latents, the LPIPS
//! distance between the images of `w0` and of `lerp(w0, w1, epsilon)` in W, divided by
//! `epsilon^2`, with the stored noise (`noise_mode='const'`), images cropped to the face's centre
//! when asked (FFHQ), area-downsampled to 256 pixels; the mean of the distances between their 1st
//! and 99th percentiles. The distance is LPIPS v0.1 ([`super::lpips`]) where NVlabs uses its own
//! TorchScript port of the LPIPS VGG16, so values are comparable between genforge runs, not with
//! published PPL numbers.

use burn::tensor::{Tensor, TensorData};

use super::lpips::Lpips;
use crate::models::stylegan::Noise;
use crate::models::stylegan2::Generator;
use crate::rng::Rng;
use crate::{Error, Result};

/// `ppl_wend`'s settings.
#[derive(Clone, Debug)]
pub struct PplOptions {
    /// Latent pairs (NVlabs: 50,000).
    pub n: usize,
    pub epsilon: f64,
    /// Keep the centre of each image (rows 3/8-7/8, columns 2/8-6/8), as for FFHQ faces.
    pub crop: bool,
    pub batch: usize,
    pub seed: u64,
}

impl Default for PplOptions {
    fn default() -> Self {
        PplOptions {
            n: 50_000,
            epsilon: 1e-4,
            crop: false,
            batch: 8,
            seed: 0,
        }
    }
}

/// The mean of `d` between its 1st percentile (rounded down) and its 99th (rounded up), as
/// `np.percentile(..., interpolation='lower' / 'higher')`.
pub fn trimmed_mean(d: &[f64]) -> f64 {
    let mut s = d.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let at = |q: f64| q * (n - 1) as f64;
    let (lo, hi) = (s[at(0.01).floor() as usize], s[at(0.99).ceil() as usize]);
    let kept: Vec<f64> = d.iter().copied().filter(|v| *v >= lo && *v <= hi).collect();
    kept.iter().sum::<f64>() / kept.len() as f64
}

/// PPL of `g` in W at the path ends; `classes` of a conditional network are drawn in turn.
/// `progress(done, total)` after each batch.
pub fn ppl_wend(
    g: &Generator,
    lpips: &Lpips,
    opts: &PplOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<f64> {
    if opts.n < 2 || opts.batch == 0 {
        return Err(Error::Config("PPL needs --n of at least 2".into()));
    }
    let device = g.device();
    let mut rng = Rng::new(opts.seed);
    let num_ws = g.num_ws();
    let mut dist = Vec::with_capacity(opts.n);
    while dist.len() < opts.n {
        let b = opts.batch.min(opts.n - dist.len());
        let z = |rng: &mut Rng| {
            Tensor::<2>::from_data(
                TensorData::new(rng.normal_vec(b * g.z_dim, 0.0, 1.0), [b, g.z_dim]),
                &device,
            )
        };
        let (z0, z1) = (z(&mut rng), z(&mut rng));
        let c = (g.num_classes > 0).then(|| {
            let v: Vec<i64> = (dist.len()..dist.len() + b)
                .map(|i| (i % g.num_classes) as i64)
                .collect();
            Tensor::<1, burn::tensor::Int>::from_data(TensorData::new(v, [b]), &device)
        });
        let c = g.one_hot(c)?;
        let (w0, w1) = (g.to_w(z0, c.clone()), g.to_w(z1, c));
        let w_eps = w0.clone() + (w1 - w0.clone()) * opts.epsilon;
        let image = |w: Tensor<2>| {
            let mut img = g.synthesis(&vec![w; num_ws], Noise::Fixed(g.const_noise()));
            if opts.crop {
                let side = img.dims()[2] / 8;
                img = img
                    .narrow(2, side * 3, side * 4)
                    .narrow(3, side * 2, side * 4);
            }
            while img.dims()[2] > 256 {
                img = crate::nn::blur::downsample2x(img);
            }
            img
        };
        let d = lpips.distance(image(w0), image(w_eps)) / opts.epsilon.powi(2);
        dist.extend(
            d.into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap_or_default()
                .into_iter()
                .map(|v| v as f64),
        );
        progress(dist.len(), opts.n);
    }
    Ok(trimmed_mean(&dist))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimmed_mean_drops_the_outer_percentiles() {
        // 0..=199 plus one huge outlier: the 1st percentile (lower) is 2, the 99th (higher) 198.
        let mut d: Vec<f64> = (0..200).map(|v| v as f64).collect();
        d.push(1e9);
        let kept: Vec<f64> = (2..=198).map(|v| v as f64).collect();
        let want = kept.iter().sum::<f64>() / kept.len() as f64;
        assert!((trimmed_mean(&d) - want).abs() < 1e-9);
    }
}
