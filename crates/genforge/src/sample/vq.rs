//! VQ-VAE-2 at inference: loading runs, the reconstruction figure (the VQ-VAE-2 article's `top=0 | bottom=0`),
//! interpolation through the continuous latents (the VQ-VAE-2 article's "analogy"), and ancestral sampling
//! from the two PixelCNN priors.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::config::TrainConfig;
use crate::data::Dataset;
use crate::data::codes::{CodeMaps, Manifest};
use crate::models::pixelcnn::GatedPixelCnn;
use crate::models::vqvae2::VqVae2;
use crate::rng::Rng;
use crate::run;
use crate::run::checkpoint::{self, files, load_module};
use crate::{Error, Result};

/// A VQ-VAE-2 run's config and autoencoder from `checkpoint` (default: the latest).
pub fn load_vqvae(
    run_dir: &Path,
    checkpoint: Option<&Path>,
    device: &Device,
) -> Result<(TrainConfig, VqVae2, PathBuf)> {
    let cfg = run::open(run_dir)?;
    cfg.model.require_family("vqvae2", run_dir)?;
    let m = cfg.model.as_vqvae2().expect("checked above");
    let model = VqVae2::new(m, &mut Rng::new(0), device);
    let (model, ckpt) = checkpoint::load_newest(run_dir, checkpoint, |ckpt| {
        load_module(model.clone(), &ckpt.join(files::VQVAE2))
    })?;
    Ok((cfg, model, ckpt))
}

/// A prior run's config and its (top, bottom) PixelCNNs from the latest checkpoint.
pub fn load_priors(
    run_dir: &Path,
    device: &Device,
) -> Result<(TrainConfig, GatedPixelCnn, GatedPixelCnn, PathBuf)> {
    let cfg = run::open(run_dir)?;
    cfg.model.require_family("pixelcnn", run_dir)?;
    let p = cfg.model.as_pixelcnn().expect("checked above");
    let (top, bottom) = p.init(&mut Rng::new(0), device);
    let ((top, bottom), ckpt) = checkpoint::load_newest(run_dir, None, |ckpt| {
        let top = load_module(top.clone(), &ckpt.join(files::PRIOR_TOP))?;
        let bottom = load_module(bottom.clone(), &ckpt.join(files::PRIOR_BOTTOM))?;
        Ok((top, bottom))
    })?;
    Ok((cfg, top, bottom, ckpt))
}

/// The code maps of every image of `data`, in order, with its labels (for the priors).
pub fn encode_dataset(
    model: &VqVae2,
    data: &Dataset,
    run_dir: &Path,
    checkpoint: &Path,
    batch: usize,
) -> Result<CodeMaps> {
    let device = model.device();
    let (mut top, mut bottom) = (Vec::new(), Vec::new());
    let (mut ts, mut bs) = ([0, 0], [0, 0]);
    let to_u16 = |t: Tensor<3, Int>| -> Vec<u16> {
        t.into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .expect("int")
            .into_iter()
            .map(|c| c as u16)
            .collect()
    };
    for start in (0..data.len()).step_by(batch.max(1)) {
        let idx: Vec<usize> = (start..(start + batch).min(data.len())).collect();
        let enc = model.encode(data.tensor(&idx, &device));
        let [_, th, tw] = enc.top.indices.dims();
        let [_, bh, bw] = enc.bottom.indices.dims();
        (ts, bs) = ([th, tw], [bh, bw]);
        top.extend(to_u16(enc.top.indices));
        bottom.extend(to_u16(enc.bottom.indices));
    }
    let labels: Vec<u32> = (0..data.len()).map(|i| data.label(i)).collect();
    let has_labels = labels.iter().all(|&l| l != u32::MAX);
    let step = checkpoint
        .file_name()
        .and_then(|f| f.to_str())
        .and_then(|f| f.strip_prefix("step-"))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok(CodeMaps {
        manifest: Manifest {
            count: data.len(),
            codebook_size: model.quantize_t.codebook_size(),
            top: ts,
            bottom: bs,
            labels: has_labels,
            vqvae_run: run_dir.display().to_string(),
            vqvae_step: step,
        },
        top,
        bottom,
        labels: if has_labels { labels } else { Vec::new() },
    })
}

/// Rows of `x.len()` images: originals, reconstructions, decoded with the top codes zeroed
/// (`top=0`, bottom level alone) and with the bottom codes zeroed (`bottom=0`, top alone).
pub fn reconstruction_rows(model: &VqVae2, x: Tensor<4>) -> (Tensor<4>, f64) {
    let enc = model.encode(x.clone());
    let (qt, qb) = (enc.top.codes, enc.bottom.codes);
    let recon = model.decode(qt.clone(), qb.clone());
    let mse = (recon.clone() - x.clone())
        .square()
        .mean()
        .into_scalar::<f32>() as f64;
    let top_zero = model.decode(qt.zeros_like(), qb.clone());
    let bottom_zero = model.decode(qt, qb.zeros_like());
    (Tensor::cat(vec![x, recon, top_zero, bottom_zero], 0), mse)
}

/// `frames` images from `a` to `b` (`[1, c, h, w]` each): the quantized latents of both levels
/// are mixed linearly and decoded; with `requantize`, each mix snaps to its nearest codes first.
pub fn interpolate(
    model: &VqVae2,
    a: Tensor<4>,
    b: Tensor<4>,
    frames: usize,
    requantize: bool,
) -> Tensor<4> {
    let (ea, eb) = (model.encode(a), model.encode(b));
    let frames = frames.max(2);
    let mut out = Vec::with_capacity(frames);
    for i in 0..frames {
        let t = i as f64 / (frames - 1) as f64;
        let mix = |x: &Tensor<4>, y: &Tensor<4>| x.clone() * (1.0 - t) + y.clone() * t;
        let mut qt = mix(&ea.top.codes, &eb.top.codes);
        let mut qb = mix(&ea.bottom.codes, &eb.bottom.codes);
        if requantize {
            qt = model.quantize_t.quantize(qt).codes;
            qb = model.quantize_b.quantize(qb).codes;
        }
        out.push(model.decode(qt, qb));
    }
    Tensor::cat(out, 0)
}

/// Options of [`sample`].
#[derive(Clone, Debug)]
pub struct SampleOptions {
    pub n: usize,
    /// Softmax temperature (1: the model's distribution; lower: sharper).
    pub temperature: f64,
    pub seed: u64,
    /// Class of every sample for a class-conditional prior (default: the classes in turn).
    pub label: Option<u32>,
    /// With the classes in turn, sample `i` has class `(label_offset + i) % classes`, so batches
    /// of a longer stream continue the cycle.
    pub label_offset: usize,
}

/// Timing of [`sample`].
#[derive(Clone, Copy, Debug)]
pub struct SampleTiming {
    pub top_seconds: f64,
    pub bottom_seconds: f64,
    pub decode_seconds: f64,
}

impl SampleTiming {
    pub fn total(&self) -> f64 {
        self.top_seconds + self.bottom_seconds + self.decode_seconds
    }
}

/// Draw one code per image from `logits` (`[n, K]`, host) at `temperature`.
fn draw(logits: &[f32], n: usize, k: usize, temperature: f64, rng: &mut Rng) -> Vec<i64> {
    (0..n)
        .map(|i| {
            let row = &logits[i * k..(i + 1) * k];
            let max = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
            let w: Vec<f64> = row
                .iter()
                .map(|&l| ((l as f64 - max) / temperature).exp())
                .collect();
            let total: f64 = w.iter().sum();
            let mut u = rng.uniform() * total;
            for (j, wj) in w.iter().enumerate() {
                u -= wj;
                if u <= 0.0 {
                    return j as i64;
                }
            }
            (k - 1) as i64
        })
        .collect()
}

/// Ancestral sampling of `[n, h, w]` codes from `prior`, all images at once, in raster order.
/// The vertical stacks see only the rows above, so they run once per row, on the band of rows the
/// receptive field reaches; each position then runs only the horizontal stacks and the head on
/// its own row.
fn sample_codes(
    prior: &GatedPixelCnn,
    [h, w]: [usize; 2],
    cond: Option<&Tensor<4>>,
    opts: &SampleOptions,
    rng: &mut Rng,
    device: &Device,
) -> Vec<i64> {
    let n = opts.n;
    let k = prior.codebook_size();
    let reach = prior.receptive_rows();
    let mut codes = vec![0i64; n * h * w];
    let rows_of = |codes: &[i64], first: usize, last: usize| -> Tensor<3, Int> {
        let mut band = Vec::with_capacity(n * (last - first) * w);
        for i in 0..n {
            band.extend_from_slice(&codes[i * h * w + first * w..i * h * w + last * w]);
        }
        Tensor::from_data(TensorData::new(band, [n, last - first, w]), device)
    };
    for r in 0..h {
        let first = r.saturating_sub(reach);
        let band_cond = cond.map(|c| c.clone().narrow(1, first, r + 1 - first));
        let vertical = prior.vertical_rows(rows_of(&codes, first, r + 1), band_cond.as_ref());
        let row_cond = cond.map(|c| c.clone().narrow(1, r, 1));
        for c in 0..w {
            let logits = prior
                .row_logits(rows_of(&codes, r, r + 1), &vertical, row_cond.as_ref()) // [n, 1, w, K]
                .narrow(2, c, 1)
                .reshape([n, k]);
            let l: Vec<f32> = logits
                .into_data()
                .convert::<f32>()
                .try_into_vec()
                .expect("f32");
            for (i, code) in draw(&l, n, k, opts.temperature, rng)
                .into_iter()
                .enumerate()
            {
                codes[i * h * w + r * w + c] = code;
            }
        }
    }
    codes
}

/// Images from the full two-level sampler: top codes from the top prior, bottom codes from the
/// bottom prior given the top codes, then the VQ-VAE-2 decoder.
pub fn sample(
    vq: &VqVae2,
    vq_cfg: &TrainConfig,
    prior_cfg: &TrainConfig,
    top: &GatedPixelCnn,
    bottom: &GatedPixelCnn,
    opts: &SampleOptions,
) -> Result<(Tensor<4>, SampleTiming)> {
    let m = vq_cfg.model.as_vqvae2().expect("a vqvae2 run");
    let p = prior_cfg.model.as_pixelcnn().expect("a pixelcnn run");
    let k = vq.quantize_t.codebook_size();
    if top.codebook_size() != k || bottom.codebook_size() != k || p.top_stride != m.top_stride {
        return Err(Error::Config(format!(
            "the prior was trained on codes of another shape (codebook {} / top stride {}) than \
             this VQ-VAE-2 has (codebook {k} / top stride {}); train the prior on `genforge \
             encode` output of this run",
            top.codebook_size(),
            p.top_stride,
            m.top_stride
        )));
    }
    if !(opts.temperature > 0.0 && opts.temperature.is_finite()) {
        return Err(Error::Config(format!(
            "--temperature must be positive, got {}",
            opts.temperature
        )));
    }
    let conditional = p.class_conditional;
    let classes = p.num_classes;
    let n = opts.n;
    let labels: Option<Vec<i64>> = match (conditional, opts.label) {
        (true, Some(l)) if (l as usize) < classes => Some(vec![l as i64; n]),
        (true, Some(l)) => {
            return Err(Error::Config(format!(
                "--label {l} is outside the prior's {} classes",
                p.num_classes
            )));
        }
        (true, None) => Some(
            (0..n)
                .map(|i| ((opts.label_offset + i) % classes) as i64)
                .collect(),
        ),
        (false, Some(_)) => {
            return Err(Error::Config(
                "--label needs a class-conditional prior (model.class_conditional = true)".into(),
            ));
        }
        (false, None) => None,
    };
    let device = vq.device();
    let hb = m.resolution / m.bottom_stride;
    let ht = hb / m.top_stride;
    let label_t = labels.map(|l| Tensor::<1, Int>::from_data(TensorData::new(l, [n]), &device));
    let mut rng = Rng::new(opts.seed).fork(0x5a3e);

    let t0 = Instant::now();
    let cond_t = top.condition(None, label_t.clone(), [ht, ht]);
    let top_codes = sample_codes(top, [ht, ht], cond_t.as_ref(), opts, &mut rng, &device);
    let top_codes = Tensor::<3, Int>::from_data(TensorData::new(top_codes, [n, ht, ht]), &device);
    let t1 = Instant::now();
    let cond_b = bottom.condition(Some(top_codes.clone()), label_t, [hb, hb]);
    let bottom_codes = sample_codes(bottom, [hb, hb], cond_b.as_ref(), opts, &mut rng, &device);
    let bottom_codes =
        Tensor::<3, Int>::from_data(TensorData::new(bottom_codes, [n, hb, hb]), &device);
    let t2 = Instant::now();
    let images = vq.decode_indices(top_codes, bottom_codes);
    let _ = device.sync();
    let t3 = Instant::now();
    Ok((
        images,
        SampleTiming {
            top_seconds: (t1 - t0).as_secs_f64(),
            bottom_seconds: (t2 - t1).as_secs_f64(),
            decode_seconds: (t3 - t2).as_secs_f64(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draw_follows_the_tempered_softmax() {
        let mut rng = Rng::new(5);
        let logits = [0.0f32, (3.0f32).ln(), f32::NEG_INFINITY];
        let n = 20000;
        let hits = (0..n)
            .filter(|_| draw(&logits, 1, 3, 1.0, &mut rng)[0] == 1)
            .count();
        // p(1) = 3/4 at T = 1.
        assert!((hits as f64 / n as f64 - 0.75).abs() < 0.02, "{hits}");
        // T = 0.5 squares the odds: p(1) = 9/10.
        let hits = (0..n)
            .filter(|_| draw(&logits, 1, 3, 0.5, &mut rng)[0] == 1)
            .count();
        assert!((hits as f64 / n as f64 - 0.9).abs() < 0.02, "{hits}");
    }

    #[test]
    fn row_cached_logits_equal_full_map_logits() {
        // The sampler's split (vertical stacks per row on a band, horizontal stacks per row)
        // gives the full network's logits, with and without conditioning.
        use crate::models::pixelcnn::PixelCnnSpec;
        let device = Device::flex();
        let net = GatedPixelCnn::new(
            PixelCnnSpec {
                codes: 5,
                channels: 8,
                layers: 3,
                num_classes: 3,
                top: Some((4, 2)),
            },
            &mut Rng::new(2),
            &device,
        );
        let (h, w) = (10, 4);
        let v: Vec<i64> = (0..2 * h * w).map(|i| (i * 7 % 5) as i64).collect();
        let codes = Tensor::<3, Int>::from_data(TensorData::new(v.clone(), [2, h, w]), &device);
        let top = Tensor::<3, Int>::from_data(
            TensorData::new(
                (0..2 * 5 * 2).map(|i| (i % 4) as i64).collect::<Vec<_>>(),
                [2, 5, 2],
            ),
            &device,
        );
        let labels = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 2], [2]), &device);
        let cond = net.condition(Some(top), Some(labels), [h, w]).unwrap();
        let full = net.forward(codes.clone(), Some(&cond)); // [2, h, w, K]
        let reach = net.receptive_rows();
        for r in [0usize, 3, 9] {
            let first = r.saturating_sub(reach);
            let vertical = net.vertical_rows(
                codes.clone().narrow(1, first, r + 1 - first),
                Some(&cond.clone().narrow(1, first, r + 1 - first)),
            );
            let row = net.row_logits(
                codes.clone().narrow(1, r, 1),
                &vertical,
                Some(&cond.clone().narrow(1, r, 1)),
            );
            let diff: f32 = (row - full.clone().narrow(1, r, 1))
                .abs()
                .max()
                .into_scalar();
            assert!(diff < 1e-4, "row {r}: {diff}");
        }
    }

    #[test]
    fn banded_sampling_equals_full_map_logits() {
        // The band of rows the sampler feeds gives the same logits as the whole map.
        use crate::models::pixelcnn::PixelCnnSpec;
        let device = Device::flex();
        let net = GatedPixelCnn::new(
            PixelCnnSpec {
                codes: 5,
                channels: 8,
                layers: 2,
                num_classes: 0,
                top: None,
            },
            &mut Rng::new(1),
            &device,
        );
        let (h, w) = (8, 3);
        let v: Vec<i64> = (0..h * w).map(|i| (i * 7 % 5) as i64).collect();
        let full = net.forward(
            Tensor::<3, Int>::from_data(TensorData::new(v.clone(), [1, h, w]), &device),
            None,
        );
        let reach = net.receptive_rows();
        let r = 7;
        let first = r - reach;
        let band = Tensor::<3, Int>::from_data(
            TensorData::new(v[first * w..(r + 1) * w].to_vec(), [1, r + 1 - first, w]),
            &device,
        );
        let part = net.forward(band, None).narrow(1, r - first, 1);
        let diff: f32 = (part - full.narrow(1, r, 1)).abs().max().into_scalar();
        assert!(diff < 1e-5, "{diff}");
        assert!(first > 0, "the test must actually crop rows");
    }
}
