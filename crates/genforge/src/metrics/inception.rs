//! The FID Inception network: InceptionV3 as the 2015 TensorFlow graph that FID was defined
//! with, in the layout pytorch-fid ports it to (Szegedy et al. 2016, "Rethinking the Inception
//! Architecture for Computer Vision"; pytorch-fid's `FIDInceptionA/C/E_1/E_2` blocks). Its
//! differences from torchvision's InceptionV3: 1008 classes, average pools that leave padding
//! out of the count, and a max pool in the last block's pooling branch.
//!
//! Field names are the PyTorch state-dict keys, so pytorch-fid's weight file
//! (`pt_inception-2015-12-05-6726825d.pth`) loads without remapping. Inference only: batch
//! norm uses its running statistics (eps 0.001).

#![allow(non_snake_case)] // the state-dict keys

use std::path::{Path, PathBuf};

use burn::module::{Module, Param};
use burn::store::{ModuleSnapshot, PytorchStore};
use burn::tensor::module::{adaptive_avg_pool2d, avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData, activation::relu};

use crate::{Error, Result};

pub const RESOLUTION: usize = 299;
pub const FEATURES: usize = 2048;
pub const CLASSES: usize = 1008;
pub const WEIGHTS_FILE: &str = "pt_inception-2015-12-05-6726825d.pth";
pub const WEIGHTS_SHA256: &str = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2";
pub const WEIGHTS_URL: &str = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth";

/// How parameters are filled at construction: zeros (to be loaded) or the deterministic
/// formula `scripts/inception_golden.py` also uses, for the golden test.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Init {
    Zeros,
    Formula,
}

struct Builder<'a> {
    init: Init,
    device: &'a Device,
}

impl Builder<'_> {
    fn param<const D: usize>(&self, key: &str, shape: [usize; D]) -> Param<Tensor<D>> {
        let n: usize = shape.iter().product();
        let values = match self.init {
            Init::Zeros => vec![0.0f32; n],
            Init::Formula => formula(key, &shape),
        };
        Param::from_tensor(Tensor::from_data(
            TensorData::new(values, shape),
            self.device,
        ))
        .set_require_grad(false)
    }

    fn conv(
        &self,
        key: &str,
        cin: usize,
        cout: usize,
        k: [usize; 2],
        s: usize,
        p: [usize; 2],
    ) -> BasicConv2d {
        BasicConv2d {
            conv: ConvWeight {
                weight: self.param(&format!("{key}.conv.weight"), [cout, cin, k[0], k[1]]),
            },
            bn: BatchNorm {
                weight: self.param(&format!("{key}.bn.weight"), [cout]),
                bias: self.param(&format!("{key}.bn.bias"), [cout]),
                running_mean: self.param(&format!("{key}.bn.running_mean"), [cout]),
                running_var: self.param(&format!("{key}.bn.running_var"), [cout]),
            },
            stride: s,
            padding: p,
        }
    }

    fn sq(&self, key: &str, cin: usize, cout: usize, k: usize, s: usize, p: usize) -> BasicConv2d {
        self.conv(key, cin, cout, [k, k], s, [p, p])
    }
}

/// `scripts/inception_golden.py`'s formula: 24-bit uniforms in [-1, 1) from a hash of the key
/// and the element index, scaled per kind of parameter (He-uniform convolutions).
pub fn formula(key: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let name = key.rsplit('.').next().unwrap_or(key);
    uniform(key, n)
        .into_iter()
        .map(|u| {
            let u = u as f64;
            let v = if key == "fc.weight" {
                u * (3.0 / shape[1] as f64).sqrt()
            } else if name == "weight" && shape.len() == 4 {
                u * (6.0 / (shape[1] * shape[2] * shape[3]) as f64).sqrt()
            } else if name == "weight" {
                1.0 + 0.1 * u
            } else if name == "running_var" {
                1.0 + 0.25 * (u + 1.0)
            } else {
                0.1 * u
            };
            v as f32
        })
        .collect()
}

/// `n` values in [-1, 1) from an integer hash of `key` and the index, exact in f32 (24-bit
/// fractions): the golden scripts' `uniform`.
pub fn uniform(key: &str, n: usize) -> Vec<f32> {
    let h = super::fingerprint(key.as_bytes());
    let splitmix = |mut z: u64| {
        z = z.wrapping_add(0x9E3779B97F4A7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    };
    (0..n as u64)
        .map(|k| ((splitmix(h ^ k) >> 40) as f64 / (1u64 << 23) as f64 - 1.0) as f32)
        .collect()
}

#[derive(Module, Debug)]
pub struct ConvWeight {
    weight: Param<Tensor<4>>,
}

#[derive(Module, Debug)]
pub struct BatchNorm {
    weight: Param<Tensor<1>>,
    bias: Param<Tensor<1>>,
    running_mean: Param<Tensor<1>>,
    running_var: Param<Tensor<1>>,
}

/// Convolution without bias, batch norm, ReLU (torchvision's `BasicConv2d`).
#[derive(Module, Debug)]
pub struct BasicConv2d {
    conv: ConvWeight,
    bn: BatchNorm,
    stride: usize,
    padding: [usize; 2],
}

impl BasicConv2d {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = conv2d(
            x,
            self.conv.weight.val(),
            None,
            ConvOptions::new([self.stride; 2], self.padding, [1, 1], 1),
        );
        let bn = &self.bn;
        let scale = bn.weight.val() / (bn.running_var.val() + 1e-3).sqrt(); // [c]
        let shift = bn.bias.val() - bn.running_mean.val() * scale.clone();
        let c = scale.dims()[0];
        relu(y * scale.reshape([1, c, 1, 1]) + shift.reshape([1, c, 1, 1]))
    }
}

fn avg3(x: Tensor<4>) -> Tensor<4> {
    let opts = AvgPoolOptions::new([3, 3])
        .with_stride([1, 1])
        .with_padding([1, 1])
        .with_count_include_pad(false);
    avg_pool2d(x, opts)
}

fn max3(x: Tensor<4>, stride: usize, padding: usize) -> Tensor<4> {
    let opts = MaxPoolOptions::new([3, 3])
        .with_stride([stride; 2])
        .with_padding([padding; 2]);
    max_pool2d(x, opts)
}

/// `FIDInceptionA`: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool (padding not counted)-1x1.
#[derive(Module, Debug)]
pub struct InceptionA {
    branch1x1: BasicConv2d,
    branch5x5_1: BasicConv2d,
    branch5x5_2: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3: BasicConv2d,
    branch_pool: BasicConv2d,
}

impl InceptionA {
    fn new(b: &Builder, key: &str, cin: usize, pool: usize) -> Self {
        let k = |n: &str| format!("{key}.{n}");
        InceptionA {
            branch1x1: b.sq(&k("branch1x1"), cin, 64, 1, 1, 0),
            branch5x5_1: b.sq(&k("branch5x5_1"), cin, 48, 1, 1, 0),
            branch5x5_2: b.sq(&k("branch5x5_2"), 48, 64, 5, 1, 2),
            branch3x3dbl_1: b.sq(&k("branch3x3dbl_1"), cin, 64, 1, 1, 0),
            branch3x3dbl_2: b.sq(&k("branch3x3dbl_2"), 64, 96, 3, 1, 1),
            branch3x3dbl_3: b.sq(&k("branch3x3dbl_3"), 96, 96, 3, 1, 1),
            branch_pool: b.sq(&k("branch_pool"), cin, pool, 1, 1, 0),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = self.branch1x1.forward(x.clone());
        let b = self
            .branch5x5_2
            .forward(self.branch5x5_1.forward(x.clone()));
        let c = self.branch3x3dbl_1.forward(x.clone());
        let c = self.branch3x3dbl_3.forward(self.branch3x3dbl_2.forward(c));
        let d = self.branch_pool.forward(avg3(x));
        Tensor::cat(vec![a, b, c, d], 1)
    }
}

/// `InceptionB` (Mixed_6a): strided 3x3 | 1x1-3x3-strided 3x3 | max pool.
#[derive(Module, Debug)]
pub struct InceptionB {
    branch3x3: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3: BasicConv2d,
}

impl InceptionB {
    fn new(b: &Builder, key: &str, cin: usize) -> Self {
        let k = |n: &str| format!("{key}.{n}");
        InceptionB {
            branch3x3: b.sq(&k("branch3x3"), cin, 384, 3, 2, 0),
            branch3x3dbl_1: b.sq(&k("branch3x3dbl_1"), cin, 64, 1, 1, 0),
            branch3x3dbl_2: b.sq(&k("branch3x3dbl_2"), 64, 96, 3, 1, 1),
            branch3x3dbl_3: b.sq(&k("branch3x3dbl_3"), 96, 96, 3, 2, 0),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = self.branch3x3.forward(x.clone());
        let c = self.branch3x3dbl_1.forward(x.clone());
        let c = self.branch3x3dbl_3.forward(self.branch3x3dbl_2.forward(c));
        Tensor::cat(vec![a, c, max3(x, 2, 0)], 1)
    }
}

/// `FIDInceptionC`: factorised 7x7 convolutions (1x7 and 7x1).
#[derive(Module, Debug)]
pub struct InceptionC {
    branch1x1: BasicConv2d,
    branch7x7_1: BasicConv2d,
    branch7x7_2: BasicConv2d,
    branch7x7_3: BasicConv2d,
    branch7x7dbl_1: BasicConv2d,
    branch7x7dbl_2: BasicConv2d,
    branch7x7dbl_3: BasicConv2d,
    branch7x7dbl_4: BasicConv2d,
    branch7x7dbl_5: BasicConv2d,
    branch_pool: BasicConv2d,
}

impl InceptionC {
    fn new(b: &Builder, key: &str, cin: usize, c7: usize) -> Self {
        let k = |n: &str| format!("{key}.{n}");
        let row = |n: &str, i: usize, o: usize| b.conv(&k(n), i, o, [1, 7], 1, [0, 3]);
        let col = |n: &str, i: usize, o: usize| b.conv(&k(n), i, o, [7, 1], 1, [3, 0]);
        InceptionC {
            branch1x1: b.sq(&k("branch1x1"), cin, 192, 1, 1, 0),
            branch7x7_1: b.sq(&k("branch7x7_1"), cin, c7, 1, 1, 0),
            branch7x7_2: row("branch7x7_2", c7, c7),
            branch7x7_3: col("branch7x7_3", c7, 192),
            branch7x7dbl_1: b.sq(&k("branch7x7dbl_1"), cin, c7, 1, 1, 0),
            branch7x7dbl_2: col("branch7x7dbl_2", c7, c7),
            branch7x7dbl_3: row("branch7x7dbl_3", c7, c7),
            branch7x7dbl_4: col("branch7x7dbl_4", c7, c7),
            branch7x7dbl_5: row("branch7x7dbl_5", c7, 192),
            branch_pool: b.sq(&k("branch_pool"), cin, 192, 1, 1, 0),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = self.branch1x1.forward(x.clone());
        let mut b = self.branch7x7_1.forward(x.clone());
        for l in [&self.branch7x7_2, &self.branch7x7_3] {
            b = l.forward(b);
        }
        let mut c = self.branch7x7dbl_1.forward(x.clone());
        for l in [
            &self.branch7x7dbl_2,
            &self.branch7x7dbl_3,
            &self.branch7x7dbl_4,
            &self.branch7x7dbl_5,
        ] {
            c = l.forward(c);
        }
        let d = self.branch_pool.forward(avg3(x));
        Tensor::cat(vec![a, b, c, d], 1)
    }
}

/// `InceptionD` (Mixed_7a): 1x1-strided 3x3 | 1x1-1x7-7x1-strided 3x3 | max pool.
#[derive(Module, Debug)]
pub struct InceptionD {
    branch3x3_1: BasicConv2d,
    branch3x3_2: BasicConv2d,
    branch7x7x3_1: BasicConv2d,
    branch7x7x3_2: BasicConv2d,
    branch7x7x3_3: BasicConv2d,
    branch7x7x3_4: BasicConv2d,
}

impl InceptionD {
    fn new(b: &Builder, key: &str, cin: usize) -> Self {
        let k = |n: &str| format!("{key}.{n}");
        InceptionD {
            branch3x3_1: b.sq(&k("branch3x3_1"), cin, 192, 1, 1, 0),
            branch3x3_2: b.sq(&k("branch3x3_2"), 192, 320, 3, 2, 0),
            branch7x7x3_1: b.sq(&k("branch7x7x3_1"), cin, 192, 1, 1, 0),
            branch7x7x3_2: b.conv(&k("branch7x7x3_2"), 192, 192, [1, 7], 1, [0, 3]),
            branch7x7x3_3: b.conv(&k("branch7x7x3_3"), 192, 192, [7, 1], 1, [3, 0]),
            branch7x7x3_4: b.sq(&k("branch7x7x3_4"), 192, 192, 3, 2, 0),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = self
            .branch3x3_2
            .forward(self.branch3x3_1.forward(x.clone()));
        let mut b = self.branch7x7x3_1.forward(x.clone());
        for l in [
            &self.branch7x7x3_2,
            &self.branch7x7x3_3,
            &self.branch7x7x3_4,
        ] {
            b = l.forward(b);
        }
        Tensor::cat(vec![a, b, max3(x, 2, 0)], 1)
    }
}

/// `FIDInceptionE_1` (average pool, padding not counted) and `FIDInceptionE_2` (max pool).
#[derive(Module, Debug)]
pub struct InceptionE {
    branch1x1: BasicConv2d,
    branch3x3_1: BasicConv2d,
    branch3x3_2a: BasicConv2d,
    branch3x3_2b: BasicConv2d,
    branch3x3dbl_1: BasicConv2d,
    branch3x3dbl_2: BasicConv2d,
    branch3x3dbl_3a: BasicConv2d,
    branch3x3dbl_3b: BasicConv2d,
    branch_pool: BasicConv2d,
    max_pool: bool,
}

impl InceptionE {
    fn new(b: &Builder, key: &str, cin: usize, max_pool: bool) -> Self {
        let k = |n: &str| format!("{key}.{n}");
        InceptionE {
            branch1x1: b.sq(&k("branch1x1"), cin, 320, 1, 1, 0),
            branch3x3_1: b.sq(&k("branch3x3_1"), cin, 384, 1, 1, 0),
            branch3x3_2a: b.conv(&k("branch3x3_2a"), 384, 384, [1, 3], 1, [0, 1]),
            branch3x3_2b: b.conv(&k("branch3x3_2b"), 384, 384, [3, 1], 1, [1, 0]),
            branch3x3dbl_1: b.sq(&k("branch3x3dbl_1"), cin, 448, 1, 1, 0),
            branch3x3dbl_2: b.sq(&k("branch3x3dbl_2"), 448, 384, 3, 1, 1),
            branch3x3dbl_3a: b.conv(&k("branch3x3dbl_3a"), 384, 384, [1, 3], 1, [0, 1]),
            branch3x3dbl_3b: b.conv(&k("branch3x3dbl_3b"), 384, 384, [3, 1], 1, [1, 0]),
            branch_pool: b.sq(&k("branch_pool"), cin, 192, 1, 1, 0),
            max_pool,
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = self.branch1x1.forward(x.clone());
        let b = self.branch3x3_1.forward(x.clone());
        let b = Tensor::cat(
            vec![
                self.branch3x3_2a.forward(b.clone()),
                self.branch3x3_2b.forward(b),
            ],
            1,
        );
        let c = self
            .branch3x3dbl_2
            .forward(self.branch3x3dbl_1.forward(x.clone()));
        let c = Tensor::cat(
            vec![
                self.branch3x3dbl_3a.forward(c.clone()),
                self.branch3x3dbl_3b.forward(c),
            ],
            1,
        );
        let pooled = if self.max_pool {
            max3(x, 1, 1)
        } else {
            avg3(x)
        };
        let d = self.branch_pool.forward(pooled);
        Tensor::cat(vec![a, b, c, d], 1)
    }
}

/// The classifier head, kept as PyTorch stores it (`[1008, 2048]`, not transposed).
#[derive(Module, Debug)]
pub struct Fc {
    weight: Param<Tensor<2>>,
    bias: Param<Tensor<1>>,
}

#[derive(Module, Debug)]
pub struct InceptionV3 {
    Conv2d_1a_3x3: BasicConv2d,
    Conv2d_2a_3x3: BasicConv2d,
    Conv2d_2b_3x3: BasicConv2d,
    Conv2d_3b_1x1: BasicConv2d,
    Conv2d_4a_3x3: BasicConv2d,
    Mixed_5b: InceptionA,
    Mixed_5c: InceptionA,
    Mixed_5d: InceptionA,
    Mixed_6a: InceptionB,
    Mixed_6b: InceptionC,
    Mixed_6c: InceptionC,
    Mixed_6d: InceptionC,
    Mixed_6e: InceptionC,
    Mixed_7a: InceptionD,
    Mixed_7b: InceptionE,
    Mixed_7c: InceptionE,
    fc: Fc,
}

impl InceptionV3 {
    pub fn new(init: Init, device: &Device) -> Self {
        let b = Builder { init, device };
        InceptionV3 {
            Conv2d_1a_3x3: b.sq("Conv2d_1a_3x3", 3, 32, 3, 2, 0),
            Conv2d_2a_3x3: b.sq("Conv2d_2a_3x3", 32, 32, 3, 1, 0),
            Conv2d_2b_3x3: b.sq("Conv2d_2b_3x3", 32, 64, 3, 1, 1),
            Conv2d_3b_1x1: b.sq("Conv2d_3b_1x1", 64, 80, 1, 1, 0),
            Conv2d_4a_3x3: b.sq("Conv2d_4a_3x3", 80, 192, 3, 1, 0),
            Mixed_5b: InceptionA::new(&b, "Mixed_5b", 192, 32),
            Mixed_5c: InceptionA::new(&b, "Mixed_5c", 256, 64),
            Mixed_5d: InceptionA::new(&b, "Mixed_5d", 288, 64),
            Mixed_6a: InceptionB::new(&b, "Mixed_6a", 288),
            Mixed_6b: InceptionC::new(&b, "Mixed_6b", 768, 128),
            Mixed_6c: InceptionC::new(&b, "Mixed_6c", 768, 160),
            Mixed_6d: InceptionC::new(&b, "Mixed_6d", 768, 160),
            Mixed_6e: InceptionC::new(&b, "Mixed_6e", 768, 192),
            Mixed_7a: InceptionD::new(&b, "Mixed_7a", 768),
            Mixed_7b: InceptionE::new(&b, "Mixed_7b", 1280, false),
            Mixed_7c: InceptionE::new(&b, "Mixed_7c", 2048, true),
            fc: Fc {
                weight: b.param("fc.weight", [CLASSES, FEATURES]),
                bias: b.param("fc.bias", [CLASSES]),
            },
        }
    }

    /// `x`: `[b, 3, 299, 299]` in [-1, 1] -> (pool features `[b, 2048]`, logits `[b, 1008]`).
    /// The logits leave out the bias, as the original Inception Score code multiplies the pool
    /// features by the softmax weights alone (torch-fidelity's `logits_unbiased`).
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let b = x.dims()[0];
        let x = self.Conv2d_1a_3x3.forward(x); // [b, 32, 149, 149]
        let x = self.Conv2d_2a_3x3.forward(x); // [b, 32, 147, 147]
        let x = self.Conv2d_2b_3x3.forward(x); // [b, 64, 147, 147]
        let x = max3(x, 2, 0); // [b, 64, 73, 73]
        let x = self.Conv2d_3b_1x1.forward(x); // [b, 80, 73, 73]
        let x = self.Conv2d_4a_3x3.forward(x); // [b, 192, 71, 71]
        let x = max3(x, 2, 0); // [b, 192, 35, 35]
        let x = self.Mixed_5b.forward(x); // [b, 256, 35, 35]
        let x = self.Mixed_5c.forward(x); // [b, 288, 35, 35]
        let x = self.Mixed_5d.forward(x); // [b, 288, 35, 35]
        let x = self.Mixed_6a.forward(x); // [b, 768, 17, 17]
        let x = self.Mixed_6b.forward(x);
        let x = self.Mixed_6c.forward(x);
        let x = self.Mixed_6d.forward(x);
        let x = self.Mixed_6e.forward(x); // [b, 768, 17, 17]
        let x = self.Mixed_7a.forward(x); // [b, 1280, 8, 8]
        let x = self.Mixed_7b.forward(x); // [b, 2048, 8, 8]
        let x = self.Mixed_7c.forward(x); // [b, 2048, 8, 8]
        let pool = adaptive_avg_pool2d(x, [1, 1]).reshape([b, FEATURES]);
        let logits = pool.clone().matmul(self.fc.weight.val().transpose());
        (pool, logits)
    }

    /// Parameter paths and shapes, in the state-dict's key form.
    pub fn layout(&self) -> Vec<(String, Vec<usize>)> {
        self.collect(None, None, false)
            .into_iter()
            .map(|s| (s.name.clone(), s.shape.to_vec()))
            .collect()
    }
}

/// Where `inception` looks for the weight file: `$GENFORGE_INCEPTION`, then the genforge
/// cache, then torch hub's cache (where pytorch-fid puts it).
pub fn candidate_paths() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("GENFORGE_INCEPTION") {
        out.push(PathBuf::from(p));
    }
    if let Some(d) = crate::data::shipped::cache_root() {
        out.push(d.join(WEIGHTS_FILE));
    }
    let torch_home = std::env::var_os("TORCH_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("torch"))
        });
    if let Some(t) = torch_home {
        out.push(t.join("hub").join("checkpoints").join(WEIGHTS_FILE));
    }
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The first of [`candidate_paths`] that exists, or an error saying where to put the file.
pub fn weights_path() -> Result<PathBuf> {
    candidate_paths()
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::Config(format!(
                "the FID Inception weights ({WEIGHTS_FILE}) were not found. Download them from \
                 {WEIGHTS_URL} and put the file in one of: {}; or point GENFORGE_INCEPTION at it",
                candidate_paths()
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
}

/// Load pytorch-fid's weight file from `path` (checked against its SHA-256 unless
/// `check_hash` is false) or the first of [`candidate_paths`] that exists.
pub fn load(path: Option<&Path>, check_hash: bool, device: &Device) -> Result<(InceptionV3, u64)> {
    let path = match path {
        Some(p) => p.to_path_buf(),
        None => weights_path()?,
    };
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let fingerprint = super::fingerprint(&bytes);
    if check_hash {
        let got = sha256_hex(&bytes);
        if got != WEIGHTS_SHA256 {
            return Err(Error::data(
                &path,
                format!(
                    "SHA-256 is {got}, not {WEIGHTS_SHA256} of pytorch-fid's {WEIGHTS_FILE}; the \
                     file is damaged or another network's weights. Download it again from {WEIGHTS_URL}"
                ),
            ));
        }
    }
    drop(bytes);
    let mut net = InceptionV3::new(Init::Zeros, device);
    let mut store = PytorchStore::from_file(&path);
    net.load_from(&mut store).map_err(|e| {
        Error::data(
            &path,
            format!("not loadable as the FID Inception network: {e}"),
        )
    })?;
    Ok((net, fingerprint))
}
