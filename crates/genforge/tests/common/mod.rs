#![allow(dead_code)] // each test crate uses a different part
//! Helpers shared by the integration tests: flattening a module's parameters and running a
//! preset through the training loop.

use std::path::Path;

use genforge::burn::module::{Module, ModuleVisitor, Param};
use genforge::burn::tensor::{Device, Tensor, TensorData};
use genforge::config::TrainConfig;
use genforge::train::loop_::{RunSource, Silent};
use genforge::train::{TrainOptions, train};

struct Flatten(Vec<f32>);
impl ModuleVisitor for Flatten {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.0
            .extend(param.val().into_data().try_to_vec::<f32>().unwrap());
    }
}

/// Every float parameter and state tensor of `m`, in visiting order.
pub fn params<M: Module>(m: &M) -> Vec<f32> {
    let mut f = Flatten(Vec::new());
    m.visit(&mut f);
    f.0
}

/// Train `preset` (with `set` overrides) in `dir` to `steps`, or resume the run there.
pub fn run(preset: &str, dir: &Path, steps: u64, resume: bool, set: &[String]) {
    let source = if resume {
        RunSource::Resume {
            run_dir: dir.to_path_buf(),
            overrides: vec![],
        }
    } else {
        RunSource::New {
            config: Box::new(TrainConfig::load(preset, set).unwrap()),
            run_dir: Some(dir.to_path_buf()),
            runs_root: dir.to_path_buf(),
        }
    };
    train_from(source, steps).unwrap();
}

/// Train from `source` to `steps`, quietly on the CPU.
pub fn train_from(source: RunSource, steps: u64) -> genforge::Result<std::path::PathBuf> {
    train(
        TrainOptions {
            source,
            steps: Some(steps),
            device: Device::flex(),
            stop: None,
        },
        &mut Silent,
    )
}

/// `got` equals `want` within `tol` relative to the larger of `want`'s magnitude and 1e-3 (the
/// golden-output tests against reference implementations).
pub fn assert_close(got: Vec<f32>, want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: sizes");
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        worst <= tol * scale,
        "{what}: max |diff| {worst} (scale {scale})"
    );
}

/// Inputs and outputs recorded by a reference implementation (`*.golden.json`).
pub struct Golden(pub serde_json::Value);

impl Golden {
    pub fn load(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap();
        Golden(serde_json::from_str(&text).unwrap())
    }
    pub fn f32(&self, k: &str) -> Vec<f32> {
        floats(&self.0[k])
    }
    pub fn usize(&self, k: &str) -> usize {
        self.0[k].as_u64().unwrap() as usize
    }
    pub fn tensor<const D: usize>(&self, k: &str, shape: [usize; D], device: &Device) -> Tensor<D> {
        Tensor::from_data(TensorData::new(self.f32(k), shape), device)
    }
}

/// A JSON array of numbers as f32.
pub fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec().unwrap()
}
