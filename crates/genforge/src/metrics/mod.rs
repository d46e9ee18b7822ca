//! Evaluation: FID ([`frechet`]), KID ([`kid`]), Inception Score ([`inception_score`]) and
//! improved precision/recall ([`precision_recall`]) on features of a feature network
//! ([`features`]: the FID Inception network or the shipped MNIST classifier).

pub mod cache;
pub mod eval;
pub mod features;
pub mod frechet;
pub mod inception;
pub mod inception_score;
pub mod kid;
pub mod lpips;
pub mod mnist_classifier;
pub mod ppl;
pub mod precision_recall;

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// `n` feature vectors of dimension `d`, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Features {
    pub n: usize,
    pub d: usize,
    pub data: Vec<f32>,
}

impl Features {
    pub fn new(n: usize, d: usize, data: Vec<f32>) -> Self {
        assert_eq!(
            data.len(),
            n * d,
            "features: {n} x {d} needs {} values",
            n * d
        );
        Features { n, d, data }
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.d..(i + 1) * self.d]
    }

    pub fn select(&self, idx: &[usize]) -> Features {
        let mut data = Vec::with_capacity(idx.len() * self.d);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        Features::new(idx.len(), self.d, data)
    }

    /// The first `n` rows.
    pub fn head(&self, n: usize) -> Features {
        Features::new(n, self.d, self.data[..n * self.d].to_vec())
    }

    fn tensor(&self, device: &Device) -> Tensor<2> {
        Tensor::from_data(TensorData::new(self.data.clone(), [self.n, self.d]), device)
    }
}

/// Dot products `a_i · b_j`, `[a.n * b.n]` row-major, through burn's matrix product.
fn gram(a: &Features, b: &Features) -> Vec<f32> {
    let device = Device::flex();
    a.tensor(&device)
        .matmul(b.tensor(&device).transpose())
        .into_data()
        .try_into_vec::<f32>()
        .expect("f32 gram matrix")
}

/// Squared Euclidean distances from every row of `a` to every row of `b`, handed to `each`
/// one row of `a` at a time (blocks of rows keep memory bounded for large sets).
fn squared_distances(a: &Features, b: &Features, mut each: impl FnMut(usize, &[f32])) {
    const BLOCK: usize = 1024;
    let norms = |f: &Features| -> Vec<f32> {
        (0..f.n)
            .map(|i| f.row(i).iter().map(|v| v * v).sum())
            .collect()
    };
    let (na, nb) = (norms(a), norms(b));
    for start in (0..a.n).step_by(BLOCK) {
        let end = (start + BLOCK).min(a.n);
        let idx: Vec<usize> = (start..end).collect();
        let dots = gram(&a.select(&idx), b);
        let mut row = vec![0.0f32; b.n];
        for (r, i) in (start..end).enumerate() {
            for (j, d) in row.iter_mut().enumerate() {
                *d = (na[i] + nb[j] - 2.0 * dots[r * b.n + j]).max(0.0);
            }
            each(i, &row);
        }
    }
}

/// Mean and (population) standard deviation, as `numpy.mean` / `numpy.std`.
fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// The metrics `genforge eval` can compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    Fid,
    Kid,
    Is,
    Pr,
}

impl Metric {
    /// `fid,kid,is,pr` (any subset, any order).
    pub fn parse_list(s: &str) -> Result<Vec<Metric>> {
        s.split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(|m| match m.to_ascii_lowercase().as_str() {
                "fid" => Ok(Metric::Fid),
                "kid" => Ok(Metric::Kid),
                "is" => Ok(Metric::Is),
                "pr" => Ok(Metric::Pr),
                other => Err(Error::Config(format!(
                    "unknown metric '{other}': use fid, kid, is, pr (comma separated)"
                ))),
            })
            .collect()
    }
}

/// FNV-1a, for cache keys (not for security).
pub fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}
