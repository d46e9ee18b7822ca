//! DiffAugment (Zhao et al. 2020) as the ViTGAN article uses it: random brightness, saturation and
//! contrast ("color"), translation with zero fill ("translation") and a zeroed square
//! ("cutout"), all differentiable in the image, applied to real and fake inputs of D.
//! The random draws come from the host generator so resumed runs draw the same augmentations.

use burn::tensor::{Int, Tensor, TensorData};

use crate::rng::Rng;
use crate::{Error, Result};

/// Translation of up to this fraction of the side (the ViTGAN article's `rand_translation` ratio).
pub const TRANSLATION_RATIO: f64 = 0.1;
/// Cutout square side as a fraction of the image side (the ViTGAN article's `rand_cutout` ratio).
pub const CUTOUT_RATIO: f64 = 0.3;

#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Policy {
    pub color: bool,
    pub translation: bool,
    pub cutout: bool,
}

impl Policy {
    /// Parses the ViTGAN article's policy string, e.g. `"color,translation,cutout"` (empty: none).
    pub fn parse(s: &str) -> Result<Self> {
        let mut p = Policy::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "color" => p.color = true,
                "translation" => p.translation = true,
                "cutout" => p.cutout = true,
                other => {
                    return Err(Error::Config(format!(
                        "model.diffaugment: unknown augmentation '{other}' (use color, translation, cutout)"
                    )));
                }
            }
        }
        Ok(p)
    }

    pub fn is_identity(&self) -> bool {
        !(self.color || self.translation || self.cutout)
    }
}

fn per_sample(v: Vec<f32>, device: &burn::tensor::Device) -> Tensor<4> {
    let b = v.len();
    Tensor::from_data(TensorData::new(v, [b, 1, 1, 1]), device)
}

/// `[b, c, h, w] -> [b, c, h, w]`
pub fn diff_augment(x: Tensor<4>, policy: Policy, rng: &mut Rng) -> Tensor<4> {
    let [b, c, h, w] = x.dims();
    let device = x.device();
    let mut x = x;
    if policy.color {
        let brightness: Vec<f32> = (0..b).map(|_| rng.uniform() as f32 - 0.5).collect();
        x = x + per_sample(brightness, &device);
        let saturation: Vec<f32> = (0..b).map(|_| rng.uniform() as f32 * 2.0).collect();
        let mean = x.clone().mean_dim(1); // [b, 1, h, w]
        x = (x - mean.clone()) * per_sample(saturation, &device) + mean;
        let contrast: Vec<f32> = (0..b).map(|_| rng.uniform() as f32 + 0.5).collect();
        let mean = x.clone().mean_dim(1).mean_dim(2).mean_dim(3); // [b, 1, 1, 1]
        x = (x - mean.clone()) * per_sample(contrast, &device) + mean;
    }
    if policy.translation {
        // out[i, j] = x[i + ty, j + tx], zero outside: one gather plus a validity mask.
        let (sy, sx) = (shift(h), shift(w));
        let mut index = Vec::with_capacity(b * h * w);
        let mut mask = Vec::with_capacity(b * h * w);
        for _ in 0..b {
            let ty = rng.below(2 * sy + 1) as i64 - sy as i64;
            let tx = rng.below(2 * sx + 1) as i64 - sx as i64;
            for i in 0..h as i64 {
                for j in 0..w as i64 {
                    let (si, sj) = (i + ty, j + tx);
                    let inside = si >= 0 && si < h as i64 && sj >= 0 && sj < w as i64;
                    let (si, sj) = (si.clamp(0, h as i64 - 1), sj.clamp(0, w as i64 - 1));
                    index.push(si * w as i64 + sj);
                    mask.push(if inside { 1.0f32 } else { 0.0 });
                }
            }
        }
        let index = Tensor::<3, Int>::from_data(TensorData::new(index, [b, 1, h * w]), &device)
            .repeat_dim(1, c); // [b, c, h*w]
        let mask = Tensor::<4>::from_data(TensorData::new(mask, [b, 1, h, w]), &device);
        x = x
            .reshape([b, c, h * w])
            .gather(2, index)
            .reshape([b, c, h, w])
            * mask;
    }
    if policy.cutout {
        let (ch, cw) = (cut(h), cut(w));
        let mut mask = vec![1.0f32; b * h * w];
        for n in 0..b {
            // Centre drawn as the ViTGAN article: offset in [0, side + 1 - size % 2), square from
            // offset - size / 2, clipped to the image.
            let oy = rng.below(h + 1 - ch % 2) as i64 - (ch / 2) as i64;
            let ox = rng.below(w + 1 - cw % 2) as i64 - (cw / 2) as i64;
            for i in oy.max(0)..(oy + ch as i64).min(h as i64) {
                for j in ox.max(0)..(ox + cw as i64).min(w as i64) {
                    mask[n * h * w + i as usize * w + j as usize] = 0.0;
                }
            }
        }
        x = x * Tensor::<4>::from_data(TensorData::new(mask, [b, 1, h, w]), &device);
    }
    x
}

fn shift(side: usize) -> usize {
    (side as f64 * TRANSLATION_RATIO + 0.5) as usize
}

fn cut(side: usize) -> usize {
    (side as f64 * CUTOUT_RATIO + 0.5) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;

    #[test]
    fn parses_policies_and_rejects_unknown_names() {
        let p = Policy::parse("color, translation,cutout").unwrap();
        assert!(p.color && p.translation && p.cutout);
        assert!(Policy::parse("").unwrap().is_identity());
        assert!(Policy::parse("colour").is_err());
    }

    #[test]
    fn passes_gradients_to_the_input() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(11);
        let v = rng.normal_vec(4 * 3 * 8 * 8, 0.0, 1.0);
        let x = Tensor::<4>::from_data(TensorData::new(v, [4, 3, 8, 8]), &device).require_grad();
        let policy = Policy::parse("color,translation,cutout").unwrap();
        let y = diff_augment(x.clone(), policy, &mut rng);
        let grads = (y.clone() * y).sum().backward();
        let g = x.grad(&grads).expect("gradient reaches the input");
        let g = g.into_data().try_to_vec::<f32>().unwrap();
        assert!(g.iter().all(|v| v.is_finite()));
        let nonzero = g.iter().filter(|v| v.abs() > 1e-6).count();
        // Cutout and translation zero some pixels; most still receive gradient.
        assert!(nonzero > g.len() / 2, "{nonzero} of {}", g.len());
    }

    #[test]
    fn translation_moves_each_image_by_its_drawn_shift_and_fills_zeros() {
        let device = Device::flex();
        let (b, h, w) = (24, 16, 16);
        let v: Vec<f32> = (0..b * h * w).map(|i| i as f32 + 1.0).collect();
        let x = Tensor::<4>::from_data(TensorData::new(v.clone(), [b, 1, h, w]), &device);
        let policy = Policy {
            translation: true,
            ..Default::default()
        };
        let y = diff_augment(x, policy, &mut Rng::new(12))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        // Replay the draws (ty then tx per image, uniform in [-s, s]) and check every pixel.
        let s = shift(h) as i64;
        assert_eq!(s, 2);
        let mut replay = Rng::new(12);
        let mut seen = std::collections::BTreeSet::new();
        for n in 0..b {
            let ty = replay.below(2 * s as usize + 1) as i64 - s;
            let tx = replay.below(2 * s as usize + 1) as i64 - s;
            seen.insert((ty, tx));
            for i in 0..h as i64 {
                for j in 0..w as i64 {
                    let (si, sj) = (i + ty, j + tx);
                    let want = if (0..h as i64).contains(&si) && (0..w as i64).contains(&sj) {
                        v[n * h * w + (si * w as i64 + sj) as usize]
                    } else {
                        0.0
                    };
                    assert_eq!(
                        y[n * h * w + (i * w as i64 + j) as usize],
                        want,
                        "image {n}"
                    );
                }
            }
        }
        // The shifts vary over the batch and reach the range's ends, so an augmentation that
        // returned its input unchanged (shift 0) would have failed above.
        assert!(seen.len() > 5, "{seen:?}");
        assert!(seen.iter().any(|&(ty, tx)| ty.abs() == s || tx.abs() == s));
    }
}
