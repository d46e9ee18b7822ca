//! Feature networks and the extraction of features (and class probabilities, for the Inception
//! Score) from batches of images in [-1, 1].

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, Device, Tensor, TensorData};

use super::Features;
pub use super::fingerprint;
use super::inception::{self, InceptionV3};
use super::mnist_classifier::{self, MnistClassifier};
use crate::data::resize_bilinear;
use crate::rng::Rng;
use crate::{Error, Result};

/// The shipped MNIST classifier's weights (`genforge train-classifier`, see the README).
static MNIST_WEIGHTS: &[u8] = include_bytes!("../../assets/mnist-classifier.bpk");
/// The shipped emoji classifier's weights (`genforge train-classifier --data data/emoji`).
static EMOJI_WEIGHTS: &[u8] = include_bytes!("../../assets/emoji-classifier.bpk");

pub enum FeatureNet {
    /// The FID Inception network with pytorch-fid's weights.
    Inception {
        net: Box<InceptionV3>,
        fingerprint: u64,
    },
    /// A classifier trained by genforge: the digit one, the emoji one, or the user's.
    Mnist {
        net: Box<MnistClassifier>,
        /// `mnist` or `emoji` for the shipped weights, else the file they came from.
        name: String,
        /// Fingerprint of the weights, part of the real-statistics cache key.
        fingerprint: u64,
    },
}

fn classifier_from_bytes(
    bytes: Vec<u8>,
    source: &Path,
    device: &Device,
) -> Result<MnistClassifier> {
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| Error::run(source, format!("unreadable classifier weights: {e}")))?;
    // Grey (digits) or RGB: the first conv's kernel says which.
    let grey = MnistClassifier::new(&mut Rng::new(0), device).try_load_record(record.clone());
    grey.or_else(|_| {
        MnistClassifier::with_channels(3, &mut Rng::new(0), device).try_load_record(record)
    })
    .map_err(|e| {
        Error::run(
            source,
            format!("weights do not fit genforge's classifier (grey or RGB): {e}"),
        )
    })
}

/// The feature network `spec` names for data read as `data`: `auto` is the shipped emoji
/// classifier for the shipped emoji and the digit classifier otherwise; any other name as it
/// is.
pub fn resolve(spec: &str, data: &crate::data::DataConfig) -> String {
    match spec {
        "auto" if data.path.contains("emoji") => "emoji".into(),
        "auto" => "mnist".into(),
        other => other.into(),
    }
}

impl FeatureNet {
    /// `inception` (pytorch-fid's weight file, found as [`inception::candidate_paths`] says),
    /// a path to that `.pth` file, `mnist` (the shipped classifier) or a `.bpk` file of
    /// classifier weights written by `genforge train-classifier`.
    pub fn load(spec: &str, device: &Device) -> Result<Self> {
        if spec == "inception" || spec.ends_with(".pth") {
            let path = (spec != "inception").then(|| Path::new(spec));
            let (net, fingerprint) = inception::load(path, true, device)?;
            return Ok(FeatureNet::Inception {
                net: Box::new(net),
                fingerprint,
            });
        }
        let (bytes, source, name) = match spec {
            "mnist" | "emoji" => (
                if spec == "mnist" {
                    MNIST_WEIGHTS.to_vec()
                } else {
                    EMOJI_WEIGHTS.to_vec()
                },
                PathBuf::from(format!("<shipped {spec}-classifier.bpk>")),
                spec.to_string(),
            ),
            path if path.ends_with(".bpk") => {
                let p = PathBuf::from(path);
                let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
                (bytes, p, path.to_string())
            }
            other => {
                return Err(Error::Config(format!(
                    "unknown feature network '{other}': use inception, mnist, emoji, the \
                     Inception .pth file, or a .bpk file from `genforge train-classifier`"
                )));
            }
        };
        let fingerprint = fingerprint(&bytes);
        let net = classifier_from_bytes(bytes, &source, device)?;
        Ok(FeatureNet::Mnist {
            net: Box::new(net),
            name,
            fingerprint,
        })
    }

    pub fn name(&self) -> &str {
        match self {
            FeatureNet::Inception { .. } => "inception",
            FeatureNet::Mnist { name, .. } => name,
        }
    }

    pub fn fingerprint(&self) -> u64 {
        match self {
            FeatureNet::Inception { fingerprint, .. } | FeatureNet::Mnist { fingerprint, .. } => {
                *fingerprint
            }
        }
    }

    /// Channels and side the network reads.
    pub fn input(&self) -> (usize, usize) {
        match self {
            FeatureNet::Inception { .. } => (3, inception::RESOLUTION),
            FeatureNet::Mnist { net, .. } => (net.channels(), mnist_classifier::RESOLUTION),
        }
    }

    fn device(&self) -> Device {
        match self {
            FeatureNet::Inception { net, .. } => net.devices()[0].clone(),
            FeatureNet::Mnist { net, .. } => net.devices()[0].clone(),
        }
    }

    /// Features and class probabilities of `images` (`[b, c, h, w]` in [-1, 1], any channels
    /// and size: converted and resized to what the network reads).
    pub fn extract(&self, images: Tensor<4>) -> (Features, Features) {
        let x = preprocess(images, self.input(), &self.device());
        let b = x.dims()[0];
        let (f, logits) = match self {
            FeatureNet::Inception { net, .. } => net.forward(x),
            FeatureNet::Mnist { net, .. } => net.forward(x),
        };
        let (d, k) = (f.dims()[1], logits.dims()[1]);
        let probs = burn::tensor::activation::softmax(logits, 1);
        (
            Features::new(b, d, to_vec(f)),
            Features::new(b, k, to_vec(probs)),
        )
    }
}

fn to_vec(t: Tensor<2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 features")
}

/// RGB -> grey by ITU-R 601 luma, grey -> RGB by repetition, then a bilinear resize with
/// half-pixel centres (PyTorch's `interpolate(mode="bilinear", align_corners=False)`).
pub fn preprocess(
    images: Tensor<4>,
    (channels, side): (usize, usize),
    device: &Device,
) -> Tensor<4> {
    let [b, c, h, w] = images.dims();
    let data = images
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 images");
    let plane = h * w;
    let mut out = Vec::with_capacity(b * channels * side * side);
    for img in data.chunks(c * plane) {
        let planes: Vec<Vec<f32>> = match (c, channels) {
            (a, b) if a == b => img.chunks(plane).map(<[f32]>::to_vec).collect(),
            (1, 3) => vec![img.to_vec(); 3],
            (3, 1) => vec![
                (0..plane)
                    .map(|i| 0.299 * img[i] + 0.587 * img[plane + i] + 0.114 * img[2 * plane + i])
                    .collect(),
            ],
            (a, b) => panic!("no conversion from {a} to {b} channels"),
        };
        for p in planes {
            if h == side && w == side {
                out.extend(p);
            } else {
                out.extend(resize_bilinear(&p, h, w, side, side));
            }
        }
    }
    Tensor::from_data(TensorData::new(out, [b, channels, side, side]), device)
}

/// Accumulates features over batches.
pub struct Extraction {
    pub features: Features,
    pub probs: Features,
}

/// Features of all `n` images that `batch(start, len)` yields, `batch_size` at a time;
/// `progress(done)` after each batch.
pub fn extract_all(
    net: &FeatureNet,
    n: usize,
    batch_size: usize,
    mut batch: impl FnMut(usize, usize) -> Result<Tensor<4>>,
    mut progress: impl FnMut(usize),
) -> Result<Extraction> {
    let mut feats = Vec::new();
    let mut probs = Vec::new();
    let (mut d, mut k) = (0, 0);
    for start in (0..n).step_by(batch_size.max(1)) {
        let len = batch_size.min(n - start);
        let (f, p) = net.extract(batch(start, len)?);
        d = f.d;
        k = p.d;
        feats.extend(f.data);
        probs.extend(p.data);
        progress(start + len);
    }
    Ok(Extraction {
        features: Features::new(n, d, feats),
        probs: Features::new(n, k, probs),
    })
}
