//! `genforge eval`: features of real and generated images, then the metrics asked for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::{Device, Tensor};
use serde::Serialize;

use super::features::{self, Extraction, FeatureNet, extract_all};
use super::frechet::{GaussianStats, frechet_distance};
use super::inception_score::inception_score;
use super::kid::{KidOptions, kid};
use super::precision_recall::precision_recall;
use super::{Metric, cache};
use crate::config::TrainConfig;
use crate::data::{DataConfig, DataFormat, Dataset};
use crate::run::append_jsonl;
use crate::run::checkpoint::load_state;
use crate::sample::Generated;
use crate::{Error, Result};

#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// Generated images (and at most this many real ones).
    pub n: usize,
    pub metrics: Vec<Metric>,
    pub batch: usize,
    pub kid: KidOptions,
    /// Neighbours of improved precision/recall.
    pub pr_k: usize,
    /// Inception Score splits.
    pub is_splits: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            n: 10_000,
            metrics: vec![Metric::Fid, Metric::Kid, Metric::Is, Metric::Pr],
            batch: 100,
            kid: KidOptions::default(),
            pr_k: 3,
            is_splits: 10,
        }
    }
}

impl EvalOptions {
    /// An error when a set is too small for one of the metrics asked for: FID and KID need two
    /// images per set, precision/recall more than `pr_k`, IS one generated image.
    pub fn check_counts(&self, n_real: usize, n_fake: usize) -> Result<()> {
        for m in &self.metrics {
            let (name, need, have) = match m {
                Metric::Fid => ("FID", 2, n_real.min(n_fake)),
                Metric::Kid => ("KID", 2, n_real.min(n_fake)),
                Metric::Is => ("IS", 1, n_fake),
                Metric::Pr => ("precision/recall", self.pr_k + 1, n_real.min(n_fake)),
            };
            if have < need {
                return Err(Error::Config(format!(
                    "{name} needs at least {need} images in each set, and there are {n_real} real \
                     and {n_fake} generated ones: raise --n or add images, or leave {name} out \
                     with --metrics"
                )));
            }
        }
        Ok(())
    }
}

/// One evaluation's numbers (absent: not asked for).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Scores {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fid: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kid_std: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_std: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub precision: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recall: Option<f64>,
    /// Class-conditional samplers scored by a classifier of the same classes: the fraction of
    /// samples the classifier puts in the class they were drawn for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_accuracy: Option<f64>,
    /// Samplers scored by a classifier of the data's classes: the fraction of samples the
    /// classifier puts in each class (a dropped mode shows as a class near 0; for a
    /// class-conditional sampler, classes it draws as another).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub class_shares: Vec<f64>,
    pub n_real: usize,
    pub n_fake: usize,
    /// Class-conditional samplers: the same metrics (but IS) per class, each class's samples
    /// against the real images of that class.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub per_class: BTreeMap<u32, Scores>,
}

impl Scores {
    /// `name value` rows for printing.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let mut rows = Vec::new();
        if let Some(v) = self.fid {
            rows.push(("FID", format!("{v:.3}")));
        }
        match (self.kid, self.kid_std) {
            (Some(m), Some(s)) => rows.push(("KID", format!("{m:.5} ± {s:.5}"))),
            (Some(m), None) => rows.push(("KID", format!("{m:.5} (one subset: all samples)"))),
            _ => {}
        }
        if let (Some(m), Some(s)) = (self.is, self.is_std) {
            rows.push(("IS", format!("{m:.3} ± {s:.3}")));
        }
        if let (Some(p), Some(r)) = (self.precision, self.recall) {
            rows.push(("precision", format!("{p:.4}")));
            rows.push(("recall", format!("{r:.4}")));
        }
        if let Some(a) = self.class_accuracy {
            rows.push(("accuracy", format!("{a:.4}")));
        }
        if !self.class_shares.is_empty() {
            let shares: Vec<String> = self
                .class_shares
                .iter()
                .enumerate()
                .map(|(c, s)| format!("{c}: {:.1}%", 100.0 * s))
                .collect();
            rows.push(("classes", shares.join(", ")));
        }
        rows
    }

    /// One line per class: `class c (n_fake / n_real): name value, ...`.
    pub fn class_rows(&self) -> Vec<String> {
        self.per_class
            .iter()
            .map(|(c, s)| {
                let values: Vec<String> =
                    s.rows().iter().map(|(k, v)| format!("{k} {v}")).collect();
                format!(
                    "class {c} ({} / {}): {}",
                    s.n_fake,
                    s.n_real,
                    values.join(", ")
                )
            })
            .collect()
    }
}

/// The rows of `e` at `idx`.
fn select(e: &Extraction, idx: &[usize]) -> Extraction {
    Extraction {
        features: e.features.select(idx),
        probs: e.probs.select(idx),
    }
}

/// The fraction of samples (of class `only`, or all) whose most probable class under `probs` is
/// the class they were drawn for.
fn class_accuracy(probs: &super::Features, labels: &[u32], only: Option<u32>) -> f64 {
    let (mut hit, mut n) = (0usize, 0usize);
    for (i, &label) in labels.iter().enumerate() {
        if only.is_some_and(|c| c != label) {
            continue;
        }
        n += 1;
        hit += usize::from(argmax(&probs.data[i * probs.d..(i + 1) * probs.d]) == label as usize);
    }
    hit as f64 / n.max(1) as f64
}

/// The most probable class of one row of class probabilities.
fn argmax(row: &[f32]) -> usize {
    (0..row.len())
        .max_by(|&a, &b| row[a].total_cmp(&row[b]))
        .expect("at least one class")
}

/// The fraction of samples whose most probable class under `probs` is each class.
pub fn class_shares(probs: &super::Features) -> Vec<f64> {
    let mut counts = vec![0usize; probs.d];
    for row in probs.data.chunks(probs.d) {
        counts[argmax(row)] += 1;
    }
    let n = probs.n.max(1) as f64;
    counts.iter().map(|&c| c as f64 / n).collect()
}

/// Scores of each class present in both sets with enough samples (IS left out: one class).
fn per_class(
    real: &Extraction,
    real_labels: &[u32],
    fake: &Extraction,
    fake_labels: &[u32],
    opts: &EvalOptions,
) -> BTreeMap<u32, Scores> {
    let opts = EvalOptions {
        metrics: opts
            .metrics
            .iter()
            .copied()
            .filter(|m| *m != Metric::Is)
            .collect(),
        ..opts.clone()
    };
    let classes: std::collections::BTreeSet<u32> = fake_labels.iter().copied().collect();
    let mut out = BTreeMap::new();
    for c in classes {
        let of = |labels: &[u32]| -> Vec<usize> {
            (0..labels.len()).filter(|&i| labels[i] == c).collect()
        };
        let (ri, fi) = (of(real_labels), of(fake_labels));
        if ri.len().min(fi.len()) <= opts.pr_k {
            continue;
        }
        out.insert(c, score(&select(real, &ri), &select(fake, &fi), &opts));
    }
    out
}

/// The metrics in `opts.metrics` between two extractions.
pub fn score(real: &Extraction, fake: &Extraction, opts: &EvalOptions) -> Scores {
    let (r, f) = (&real.features, &fake.features);
    let mut s = Scores {
        n_real: r.n,
        n_fake: f.n,
        ..Scores::default()
    };
    for m in &opts.metrics {
        match m {
            Metric::Fid => {
                if r.n.min(f.n) < r.d {
                    tracing::warn!(
                        "FID from {} samples of {}-d features: the covariances are singular and \
                         the value is biased upwards; compare only FIDs taken with the same count",
                        r.n.min(f.n),
                        r.d
                    );
                }
                s.fid = Some(frechet_distance(
                    &GaussianStats::of(r),
                    &GaussianStats::of(f),
                ));
            }
            Metric::Kid => {
                let (m, sd) = kid(r, f, opts.kid);
                s.kid = Some(m);
                s.kid_std = sd;
            }
            Metric::Is => {
                let splits = opts.is_splits.min(fake.probs.n).max(1);
                let (m, sd) = inception_score(&fake.probs.data, fake.probs.n, fake.probs.d, splits);
                s.is = Some(m);
                s.is_std = Some(sd);
            }
            Metric::Pr => {
                let (p, rc) = precision_recall(r, f, opts.pr_k);
                s.precision = Some(p);
                s.recall = Some(rc);
            }
        }
    }
    s
}

/// Features of the first `n` images of `data`, from the cache when it has them.
pub fn real_features(
    net: &FeatureNet,
    data: &Dataset,
    n: usize,
    batch: usize,
    cache_dir: Option<&Path>,
    device: &Device,
    progress: impl FnMut(usize),
) -> Result<Extraction> {
    let n = n.min(data.len());
    let idx: Vec<usize> = (0..n).collect();
    let pixels: Vec<f32> = idx
        .iter()
        .flat_map(|&i| data.image(i).iter().copied())
        .collect();
    let key = cache::key(
        &pixels,
        [n, data.channels, data.height, data.width],
        net.fingerprint(),
    );
    if let Some(hit) = cache_dir.and_then(|d| cache::load(d, &key)) {
        tracing::info!("real features from the cache ({key})");
        return Ok(hit);
    }
    let e = extract_all(
        net,
        n,
        batch,
        |start, len| {
            let idx: Vec<usize> = (start..start + len).collect();
            Ok(data.tensor(&idx, device))
        },
        progress,
    )?;
    if let Some(d) = cache_dir {
        cache::store(d, &key, &e);
    }
    Ok(e)
}

/// Features of `n` images drawn by `generate(start, len)`.
pub fn generated_features(
    net: &FeatureNet,
    n: usize,
    batch: usize,
    generate: impl FnMut(usize, usize) -> Result<Tensor<4>>,
    progress: impl FnMut(usize),
) -> Result<Extraction> {
    if n == 0 {
        return Err(Error::Config("--n must be at least 1".into()));
    }
    extract_all(net, n, batch, generate, progress)
}

/// What to score: a run's samples against real images.
#[derive(Clone)]
pub struct RunEval<'a> {
    pub run_dir: &'a Path,
    pub checkpoint: Option<&'a Path>,
    /// VQ-VAE-2: the prior run to sample codes from.
    pub prior: Option<&'a Path>,
    /// StyleGAN's truncation psi and the prior's temperature (`None`: the run's and the prior's
    /// `[sample]` settings).
    pub psi: Option<f64>,
    /// BigGAN: the truncation threshold of the latents (`None`: the full normal).
    pub truncation: Option<f64>,
    pub temperature: Option<f64>,
    /// The variance of the latents (`None`: the run's `sample.z_var`); GANs whose generator
    /// takes `z` as drawn ([`crate::models::ModelConfig::z_var_unused`]).
    pub z_var: Option<f64>,
    pub seed: u64,
    /// Real images (default: the run's own data) and their format (default: the run's).
    pub data: Option<&'a Path>,
    pub format: Option<DataFormat>,
    pub features: &'a str,
    pub cache_dir: Option<&'a Path>,
    pub opts: EvalOptions,
    /// The truncation sweep this evaluation belongs to (see [`evaluate_sweep`]).
    pub sweep: Option<u64>,
}

/// Progress of an evaluation: which set, images done, images in all.
pub type EvalProgress<'a> = &'a mut dyn FnMut(&str, usize, usize);

/// Score a run; the returned record (also appended to `metrics.jsonl` in the run) names the
/// checkpoint, its step, the feature network and the counts.
pub fn evaluate_run(
    req: &RunEval,
    device: &Device,
    progress: EvalProgress,
) -> Result<(Scores, serde_json::Value)> {
    let run_cfg = crate::run::open(req.run_dir)?;
    let net = FeatureNet::load(&features::resolve(req.features, &run_cfg.data), device)?;
    let (cfg, mut generated, ckpt) = Generated::load(
        req.run_dir,
        req.checkpoint,
        req.prior,
        req.psi,
        req.truncation,
        req.temperature,
        device,
    )?;
    if let Some(v) = req.z_var {
        let mut with = cfg.clone();
        with.sample.z_var = v;
        with.validate()?;
        if let Generated::Gan { z_var, .. } = &mut generated {
            *z_var = v;
        }
    }
    let (data, path) = real_data(&cfg, req)?;
    let t0 = Instant::now();
    let n_real = req.opts.n.min(data.len());
    req.opts.check_counts(n_real, req.opts.n)?;
    let real = real_features(
        &net,
        &data,
        n_real,
        req.opts.batch,
        req.cache_dir,
        device,
        |done| progress("real", done, n_real),
    )?;
    let fake = generated_features(
        &net,
        req.opts.n,
        req.opts.batch,
        |start, len| generated.batch(start, len, req.seed, device),
        |done| progress("generated", done, req.opts.n),
    )?;
    let mut scores = score(&real, &fake, &req.opts);
    // The shipped digit classifier's classes are the digits; the emoji one's and a classifier
    // file's are the classes they were trained on, which the user pairs with the run.
    let digits = net.name() != "mnist" || cfg.data.format == DataFormat::Idx;
    let classifier = matches!(net, FeatureNet::Mnist { .. }) && digits;
    if classifier {
        scores.class_shares = class_shares(&fake.probs);
    }
    if let Some(classes) = generated.num_classes() {
        let fake_labels: Vec<u32> = (0..req.opts.n)
            .map(|i| generated.class_of(i).expect("conditional"))
            .collect();
        let real_labels: Vec<u32> = (0..n_real).map(|i| data.label(i)).collect();
        scores.per_class = per_class(&real, &real_labels, &fake, &fake_labels, &req.opts);
        if classifier && fake.probs.d == classes {
            scores.class_accuracy = Some(class_accuracy(&fake.probs, &fake_labels, None));
            for (c, s) in scores.per_class.iter_mut() {
                s.class_accuracy = Some(class_accuracy(&fake.probs, &fake_labels, Some(*c)));
            }
        }
    }
    let step = load_state(&ckpt).map(|s| s.step).ok();
    let mut record = serde_json::json!({
        "checkpoint": ckpt.file_name().map(|f| f.to_string_lossy().to_string()),
        "step": step,
        "features": net.name(),
        "data": path.display().to_string(),
        "seed": req.seed,
        "seconds": t0.elapsed().as_secs_f64(),
    });
    // A sweep over psi records every value, 1 included, so its curve has every point.
    let (setting, value) = generated.setting();
    if value != 1.0 || (req.sweep.is_some() && req.truncation.is_none()) {
        record[setting] = value.into();
    }
    if let Some(t) = req.truncation {
        record["truncation"] = t.into();
    }
    if let Some(id) = req.sweep {
        record["sweep"] = id.into();
    }
    merge(&mut record, &scores);
    append_jsonl(&req.run_dir.join(METRICS_FILE), &record)?;
    Ok((scores, record))
}

/// The truncation trade-off (the BigGAN paper's figure 4, the StyleGAN/BigGAN slides' curve):
/// the run scored at each of `values`, BigGAN's truncation thresholds or StyleGAN's psi, with
/// every record tagged with one sweep id so `genforge report` draws them as one curve. Real
/// features come from the cache after the first value.
pub fn evaluate_sweep(
    req: &RunEval,
    values: &[f64],
    device: &Device,
    progress: EvalProgress,
) -> Result<Vec<(f64, Scores)>> {
    let cfg = crate::run::open(req.run_dir)?;
    let swept = if cfg.model.as_biggan().is_some() {
        "truncation"
    } else if cfg.model.as_stylegan().is_some() || cfg.model.as_stylegan2().is_some() {
        "psi"
    } else if cfg.model.z_var_unused().is_none() {
        "z_var"
    } else {
        return Err(Error::Config(format!(
            "--sweep varies BigGAN's truncation threshold, StyleGAN's psi, or the latent \
             variance sample.z_var of a generator that takes z as drawn; {} is a {} run",
            req.run_dir.display(),
            cfg.model.family()
        )));
    };
    if values.is_empty() {
        return Err(Error::Config("--sweep needs at least one value".into()));
    }
    let id = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut out = Vec::new();
    for &v in values {
        let mut r = req.clone();
        r.sweep = Some(id);
        match swept {
            "truncation" => r.truncation = Some(v),
            "psi" => r.psi = Some(v),
            _ => r.z_var = Some(v),
        }
        tracing::info!("{swept} {v}");
        out.push((v, evaluate_run(&r, device, &mut *progress)?.0));
    }
    Ok(out)
}

/// The real images of an evaluation at the run's shape: `--data` in `--format`, else the run's
/// own data; never `data.mirror`'s flipped copies.
fn real_data(cfg: &TrainConfig, req: &RunEval) -> Result<(Dataset, PathBuf)> {
    let (channels, resolution) = cfg.model.image_shape().ok_or_else(|| {
        Error::run(
            req.run_dir,
            "is a prior run; evaluate its VQ-VAE-2 run with --prior pointing here",
        )
    })?;
    let path = req
        .data
        .map(Path::to_path_buf)
        .unwrap_or_else(|| cfg.resolve_data_path());
    let format = req.format.unwrap_or(cfg.data.format);
    let data_cfg = DataConfig {
        mirror: false,
        ..cfg.data.clone()
    };
    let data = crate::data::load_input(&path, format, &data_cfg, channels, resolution)?;
    Ok((data, path))
}

/// The real-data floor of a run's evaluation: its last `n` real images scored against its first
/// `n` (at most half the data each, so the sets are disjoint), with the run's feature network.
/// What a perfect generator would score at this sample count; nothing is appended to
/// `metrics.jsonl`.
pub fn evaluate_floor(req: &RunEval, device: &Device, progress: EvalProgress) -> Result<Scores> {
    let cfg = crate::run::open(req.run_dir)?;
    let net = FeatureNet::load(&features::resolve(req.features, &cfg.data), device)?;
    let (data, _) = real_data(&cfg, req)?;
    let n = req.opts.n.min(data.len() / 2);
    if n < 2 {
        return Err(Error::Config(format!(
            "the real data has {} images; the floor needs at least 4",
            data.len()
        )));
    }
    req.opts.check_counts(n, n)?;
    let real = real_features(&net, &data, n, req.opts.batch, req.cache_dir, device, |d| {
        progress("real", d, n)
    })?;
    let held = data.subset(data.len() - n..data.len());
    let other = real_features(&net, &held, n, req.opts.batch, req.cache_dir, device, |d| {
        progress("held-out real", d, n)
    })?;
    Ok(score(&real, &other, &req.opts))
}

/// Where `genforge eval` appends its results inside a run.
pub const METRICS_FILE: &str = "metrics.jsonl";

fn merge(record: &mut serde_json::Value, scores: &Scores) {
    if let (Some(r), serde_json::Value::Object(s)) = (
        record.as_object_mut(),
        serde_json::to_value(scores).expect("scores serialize"),
    ) {
        r.extend(s);
    }
}

/// Score a folder of generated images against a folder of real ones (PNG/JPEG, any size; both
/// are converted to what the feature network reads).
pub fn evaluate_folders(
    real_dir: &Path,
    fake_dir: &Path,
    features: &str,
    cache_dir: Option<&Path>,
    opts: &EvalOptions,
    device: &Device,
    progress: EvalProgress,
) -> Result<Scores> {
    let features = if features == "auto" {
        "mnist"
    } else {
        features
    };
    let net = FeatureNet::load(features, device)?;
    let (channels, side) = net.input();
    let cfg = DataConfig {
        format: DataFormat::Folder,
        ..DataConfig::default()
    };
    let load = |dir: &Path| crate::data::load_input(dir, DataFormat::Folder, &cfg, channels, side);
    let (real_data, fake_data) = (load(real_dir)?, load(fake_dir)?);
    let n_real = opts.n.min(real_data.len());
    let n_fake = opts.n.min(fake_data.len());
    opts.check_counts(n_real, n_fake)?;
    let real = real_features(
        &net,
        &real_data,
        n_real,
        opts.batch,
        cache_dir,
        device,
        |d| progress("real", d, n_real),
    )?;
    let fake = real_features(&net, &fake_data, n_fake, opts.batch, None, device, |d| {
        progress("generated", d, n_fake)
    })?;
    Ok(score(&real, &fake, opts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Features;

    #[test]
    fn class_accuracy_counts_the_argmax_against_the_requested_class() {
        // Four samples drawn for classes 0, 1, 1, 2; the classifier gets the first and the
        // third right.
        let probs = Features::new(
            4,
            3,
            vec![
                0.7, 0.2, 0.1, //
                0.6, 0.3, 0.1, //
                0.1, 0.8, 0.1, //
                0.5, 0.4, 0.1,
            ],
        );
        let labels = [0, 1, 1, 2];
        assert_eq!(class_accuracy(&probs, &labels, None), 0.5);
        assert_eq!(class_accuracy(&probs, &labels, Some(1)), 0.5);
        assert_eq!(class_accuracy(&probs, &labels, Some(0)), 1.0);
        assert_eq!(class_accuracy(&probs, &labels, Some(2)), 0.0);
        // Unconditionally: three samples in class 0, one in class 1, none in class 2.
        assert_eq!(class_shares(&probs), vec![0.75, 0.25, 0.0]);
    }

    /// A run trained with `data.mirror` is scored against the data's own images, as one
    /// trained without: the same images, in the same order, with no flipped copy among them.
    #[test]
    fn evaluation_reals_leave_out_the_mirrored_copies() {
        let req = |cfg: &TrainConfig| {
            let req = RunEval {
                run_dir: Path::new("run"),
                checkpoint: None,
                prior: None,
                psi: None,
                truncation: None,
                temperature: None,
                seed: 0,
                data: None,
                format: None,
                features: "auto",
                cache_dir: None,
                opts: EvalOptions::default(),
                z_var: None,
                sweep: None,
            };
            real_data(cfg, &req).unwrap().0
        };
        let plain = TrainConfig::load("stylegan-emoji", &["data.mirror=false".into()]).unwrap();
        let mirrored = TrainConfig::load("stylegan-emoji", &["data.mirror=true".into()]).unwrap();
        let (a, b) = (req(&plain), req(&mirrored));
        assert_eq!(a.len(), 1911);
        assert_eq!(b.len(), a.len());
        assert!((0..a.len()).all(|i| a.image(i) == b.image(i) && a.label(i) == b.label(i)));
        // The training data itself does hold the flips, each right after its original.
        let train = crate::data::load(
            &mirrored.data,
            &mirrored.resolve_data_path(),
            3,
            mirrored.model.image_shape().unwrap().1,
        )
        .unwrap();
        assert_eq!(train.len(), 2 * a.len());
        let kept = crate::data::originals(&train, &mirrored.data);
        assert!((0..a.len()).all(|i| kept.image(i) == a.image(i)));
    }
}
