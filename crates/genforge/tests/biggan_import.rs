//! BigGAN against BigGAN-PyTorch: checkpoints written by its own classes load and reproduce its
//! outputs (fixtures and golden outputs from `scripts/biggan_fixtures.py`), and the 138k
//! ImageNet checkpoint's key and shape list is genforge's `biggan-imagenet128` skeleton.

mod common;
use common::assert_close;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use genforge::burn::module::Module;
use genforge::burn::store::ModuleSnapshot;
use genforge::burn::store::bridge;
use genforge::burn::tensor::{Device, Int, Tensor, TensorData};
use genforge::config::TrainConfig;
use genforge::import::biggan::{Contents, KEYS, contents, native_key, torch_key};
use genforge::import::{apply, read_torch};
use genforge::models::biggan::{BigganConfig, Discriminator, Generator};
use genforge::rng::Rng;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/biggan")
        .join(name)
}

/// The `--set` pairs of the fixtures' network (`G_ch=2`, `D_ch=4`, `dim_z=12`, `shared_dim=8`,
/// attention at 32, 5 classes) over `biggan-imagenet128` (`SN_eps=1e-6`, `BN_eps=1e-5`).
fn overrides() -> Vec<String> {
    std::fs::read_to_string(fixture("overrides.txt"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn tiny() -> BigganConfig {
    let cfg = TrainConfig::load("biggan-imagenet128", &overrides()).unwrap();
    cfg.model.as_biggan().unwrap().clone()
}

struct Golden(BTreeMap<String, TensorData>);

impl Golden {
    fn load() -> Self {
        let tensors = read_torch(&fixture("golden.pth")).unwrap();
        Golden(
            tensors
                .iter()
                .map(|(k, t)| (k.clone(), bridge::to_data(t).unwrap()))
                .collect(),
        )
    }
    fn f32(&self, k: &str) -> Vec<f32> {
        self.0[k].clone().convert::<f32>().try_to_vec().unwrap()
    }
    fn tensor<const D: usize>(&self, k: &str, device: &Device) -> Tensor<D> {
        Tensor::from_data(self.0[k].clone().convert::<f32>(), device)
    }
    fn labels(&self, k: &str, device: &Device) -> Tensor<1, Int> {
        let v: Vec<i64> = self.0[k].clone().convert::<i64>().try_to_vec().unwrap();
        let n = v.len();
        Tensor::from_data(TensorData::new(v, [n]), device)
    }
}

fn load_g(file: &str, device: &Device) -> Generator {
    let mut g = Generator::new(&tiny(), &mut Rng::new(0), device);
    let n = apply(
        &mut g,
        &read_torch(&fixture(file)).unwrap(),
        &KEYS,
        &fixture(file),
    )
    .unwrap();
    assert!(n > 100, "{n} tensors");
    g
}

#[test]
fn the_loaded_generator_and_discriminator_reproduce_biggan_pytorch() {
    let device = Device::flex();
    let golden = Golden::load();
    let z: Tensor<2> = golden.tensor("z", &device);
    let y = golden.labels("y", &device);
    for file in ["g.pth", "g_legacy.pth"] {
        let g = load_g(file, &device);
        // The first layer alone: a dense layer loaded without burn's Linear transpose.
        let z0 = z.clone().slice([0..2, 0..g.z_chunk]);
        let lin = g.linear.forward(z0).into_data().try_to_vec().unwrap();
        assert_close(lin, &golden.f32("linear_out"), 1e-5, "linear");
        let img = g.forward(z.clone(), y.clone());
        assert_eq!(img.dims(), [2, 3, 128, 128]);
        let img = img.into_data().try_to_vec().unwrap();
        assert_close(img, &golden.f32("g_out"), 1e-5, file);
    }
    let mut d = Discriminator::new(&tiny(), &mut Rng::new(1), &device);
    apply(
        &mut d,
        &read_torch(&fixture("d.pth")).unwrap(),
        &KEYS,
        &fixture("d.pth"),
    )
    .unwrap();
    let logits = d
        .forward(golden.tensor("g_out", &device), y)
        .into_data()
        .try_to_vec()
        .unwrap();
    assert_close(logits, &golden.f32("d_out"), 1e-5, "D");
}

#[test]
fn a_training_pass_matches_biggan_pytorch_and_updates_the_same_buffers() {
    // Batch statistics, u0 and sv0 after one power-iteration step, and the stored batch-norm
    // statistics moved towards the batch mean and unbiased variance.
    let device = Device::flex().autodiff();
    let golden = Golden::load();
    let g = load_g("g.pth", &device);
    let out = g
        .forward(
            golden.tensor("z_train", &device),
            golden.labels("y_train", &device),
        )
        .into_data()
        .try_to_vec()
        .unwrap();
    assert_close(out, &golden.f32("g_train_out"), 1e-4, "training output");
    let mut checked = 0;
    // `valid()` merges the running-state updates of the pass, as saving a checkpoint does.
    for t in g.valid().collect(None, None, false) {
        let key = format!("after.{}", torch_key(&t.name));
        if golden.0.contains_key(&key) {
            let got = bridge::to_data(&t)
                .unwrap()
                .convert::<f32>()
                .try_to_vec()
                .unwrap();
            assert_close(got, &golden.f32(&key), 1e-4, &key);
            checked += 1;
        }
    }
    let expected = golden.0.keys().filter(|k| k.starts_with("after.")).count();
    assert_eq!(checked, expected);
}

#[test]
fn the_138k_key_and_shape_list_is_the_imagenet128_skeleton() {
    // BigGAN-PyTorch's Generator and Discriminator built at the 138k checkpoint's size.
    let listed: BTreeMap<String, Vec<usize>> =
        std::fs::read_to_string(fixture("imagenet128_keys.txt"))
            .unwrap()
            .lines()
            .map(|l| {
                let (k, s) = l.split_once(' ').unwrap();
                let shape = s.split('x').filter(|d| !d.is_empty());
                (k.to_string(), shape.map(|d| d.parse().unwrap()).collect())
            })
            .collect();
    let cfg = TrainConfig::load("biggan-imagenet128", &[]).unwrap();
    let c = cfg.model.as_biggan().unwrap();
    assert_eq!((c.sn_eps, c.bn_eps), (1e-6, 1e-5));
    let device = Device::flex();
    let mut ours = BTreeMap::new();
    let g = Generator::new(c, &mut Rng::new(0), &device);
    let d = Discriminator::new(c, &mut Rng::new(1), &device);
    for (net, tensors) in [
        ("G", g.collect(None, None, false)),
        ("D", d.collect(None, None, false)),
    ] {
        for t in tensors {
            let shape: Vec<usize> = t.shape.to_vec();
            // PyTorch's scalar gamma is [1] here.
            let shape = if shape == [1] && t.name.ends_with("gamma") {
                vec![]
            } else {
                shape
            };
            ours.insert(format!("{net}.{}", torch_key(&t.name)), shape);
        }
    }
    assert_eq!(ours, listed);
    for k in listed.keys() {
        let (_, key) = k.split_once('.').unwrap();
        assert_eq!(torch_key(&native_key(key)), key);
    }
}

#[test]
fn files_are_recognised_by_their_keys() {
    let g = read_torch(&fixture("g.pth")).unwrap();
    assert_eq!(contents(&g), Contents::Generator { tfhub: false });
    let mut tfhub = g.clone();
    tfhub.retain(|k, _| !k.ends_with(".sv0"));
    assert_eq!(contents(&tfhub), Contents::Generator { tfhub: true });
    assert_eq!(
        contents(&read_torch(&fixture("d.pth")).unwrap()),
        Contents::Discriminator
    );
    assert_eq!(
        contents(&read_torch(&fixture("golden.pth")).unwrap()),
        Contents::Other
    );
    // A TF-Hub conversion lacks sv0 only: it still loads.
    let mut net = Generator::new(&tiny(), &mut Rng::new(0), &Device::flex());
    apply(&mut net, &tfhub, &KEYS, Path::new("biggan-128.pth")).unwrap();
    // Anything else missing is an error naming the key.
    let mut broken = g.clone();
    broken.remove("blocks.2.0.conv1.u0");
    let err = apply(&mut net, &broken, &KEYS, Path::new("G.pth"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing key blocks.2.0.conv1.u0"), "{err}");
}

/// The released 138k checkpoint (BigGAN-PyTorch's README links `BigGAN_ch96_bs256x8_138k`):
/// `GENFORGE_BIGGAN_138K=/path/to/G_ema.pth cargo test --release -- --ignored biggan_138k`.
#[test]
#[ignore = "needs the released checkpoint: set GENFORGE_BIGGAN_138K to its G_ema.pth"]
fn biggan_138k_checkpoint_loads() {
    let path =
        PathBuf::from(std::env::var("GENFORGE_BIGGAN_138K").expect("set GENFORGE_BIGGAN_138K"));
    let tensors = read_torch(&path).unwrap();
    assert_eq!(contents(&tensors), Contents::Generator { tfhub: false });
    let cfg = TrainConfig::load("biggan-imagenet128", &[]).unwrap();
    let device = Device::flex();
    let mut g = Generator::new(cfg.model.as_biggan().unwrap(), &mut Rng::new(0), &device);
    apply(&mut g, &tensors, &KEYS, &path).unwrap();
    println!("sha256 {}", genforge::import::sha256(&path).unwrap());
    if let Ok(want) = std::env::var("GENFORGE_BIGGAN_138K_SHA256") {
        assert_eq!(genforge::import::sha256(&path).unwrap(), want);
    }
}

#[test]
fn an_imported_run_samples_what_biggan_pytorch_draws() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let set = overrides();
    let done =
        genforge::import::biggan::import(&fixture("g_legacy.pth"), None, None, &set, &run).unwrap();
    assert_eq!(done.preset, "biggan-imagenet128");
    let device = Device::flex();
    let (_, g, _) = genforge::sample::load_generator(&run, None, &device).unwrap();
    let genforge::models::Generator::Big(g) = g else {
        panic!("not a BigGAN run")
    };
    let golden = Golden::load();
    let img = g
        .forward(golden.tensor("z", &device), golden.labels("y", &device))
        .into_data()
        .try_to_vec()
        .unwrap();
    assert_close(img, &golden.f32("g_out"), 1e-5, "imported run");
}
