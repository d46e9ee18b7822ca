//! StyleGAN (2019) and Progressive GAN against NVlabs' TensorFlow code: `(G, D, Gs)` pickles
//! written by their own `Network` classes load through genforge's pickle reader and reproduce
//! the outputs of their own build functions (`G_style`, `D_basic`, `G_paper`, `D_paper`), and
//! the published networks' variable lists convert onto genforge's skeletons. Fixtures and
//! golden outputs from `scripts/tf_network_fixtures.py`.

mod common;
use common::{Golden, assert_close, floats, values};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use genforge::burn::store::ModuleSnapshot;
use genforge::burn::tensor::{Device, Tensor, TensorData};
use genforge::import::network_pickle::SAME_KEYS;
use genforge::import::pickle::Pickle;
use genforge::import::tflib::{self, TfNetwork};
use genforge::import::torch_pickle::{Dtype, Tensor as PickleTensor};
use genforge::import::{apply, pggan, stylegan};
use genforge::models::pggan as pggan_model;
use genforge::models::stylegan::{self as stylegan_model, Noise};
use genforge::rng::Rng;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tf")
        .join(name)
}

/// `(G, D, Gs)` of a fixture pickle.
fn networks(name: &str) -> (TfNetwork, TfNetwork, TfNetwork) {
    let bytes = std::fs::read(fixture(&format!("{name}.pkl"))).unwrap();
    let p = Pickle::parse(&bytes).unwrap();
    let mut nets = tflib::networks(&p).unwrap();
    assert_eq!(nets.len(), 3, "(G, D, Gs)");
    let gs = nets.pop().unwrap();
    let d = nets.pop().unwrap();
    (nets.pop().unwrap(), d, gs)
}

/// Load converted tensors; every tensor of the genforge module must come from the file.
fn load<M: ModuleSnapshot>(m: &mut M, t: &tflib::Converted, what: &str) {
    let n = apply(m, t, &SAME_KEYS, Path::new(what)).unwrap();
    assert_eq!(
        n,
        m.collect(None, None, false).len(),
        "{what}: every tensor"
    );
}

type Stylegan = (
    stylegan_model::StyleganConfig,
    stylegan_model::Generator,
    stylegan_model::Discriminator,
);
type Pggan = (
    pggan_model::PgganConfig,
    pggan_model::Generator,
    pggan_model::Discriminator,
);

/// genforge's StyleGAN configured from `Gs` and `D`, every tensor loaded from them.
fn stylegan_built(gs: &TfNetwork, d: &TfNetwork, device: &Device, what: &str) -> Stylegan {
    let cfg = stylegan::config_of(gs, d).unwrap();
    let mut g = stylegan_model::Generator::new(&cfg, &mut Rng::new(0), device);
    let mut dn = stylegan_model::Discriminator::new(&cfg, &mut Rng::new(1), device);
    load(&mut g, &stylegan::generator(gs, &cfg).unwrap(), what);
    load(&mut dn, &stylegan::discriminator(d, &cfg).unwrap(), what);
    (cfg, g, dn)
}

/// genforge's Progressive GAN configured from `Gs` and `D`, every tensor loaded from them.
fn pggan_built(gs: &TfNetwork, d: &TfNetwork, device: &Device, what: &str) -> Pggan {
    let cfg = pggan::config_of(gs, d).unwrap();
    let mut g = pggan_model::Generator::new(&cfg, &mut Rng::new(0), device);
    let mut dn = pggan_model::Discriminator::new(&cfg, &mut Rng::new(1), device);
    load(&mut g, &pggan::generator(gs, &cfg).unwrap(), what);
    load(&mut dn, &pggan::discriminator(d, &cfg).unwrap(), what);
    (cfg, g, dn)
}

fn check_stylegan(name: &str) {
    let device = Device::flex();
    let (_, d, gs) = networks(name);
    let (cfg, g, d) = stylegan_built(&gs, &d, &device, name);
    let golden = Golden::load(&fixture(&format!("{name}.golden.json")));
    let (b, layers) = (golden.usize("batch"), golden.usize("num_layers"));
    assert_eq!(g.num_layers(), layers);
    let (res, ch) = (cfg.resolution, cfg.channels);

    // Mapping: G_mapping broadcasts one w to every layer.
    let w = g.to_w(golden.tensor("z", [b, cfg.z_dim], &device));
    let ws = vec![w.clone(); layers];
    let stacked = values(Tensor::stack::<3>(ws.clone(), 1));
    assert_close(stacked, &golden.f32("dlatents"), 1e-5, "dlatents");

    // Synthesis with the network's constant noise maps (randomize_noise=False).
    let noise = || {
        let maps = golden.0["noise"].as_array().unwrap();
        Noise::Fixed(
            maps.iter()
                .enumerate()
                .map(|(i, m)| {
                    let s = g.layer_resolution(i);
                    let one =
                        Tensor::<4>::from_data(TensorData::new(floats(m), [1, 1, s, s]), &device);
                    Some(one.repeat_dim(0, b))
                })
                .collect(),
        )
    };
    let img = g.synthesis(&ws, noise());
    assert_eq!(img.dims(), [b, ch, res, res]);
    assert_close(values(img), &golden.f32("images"), 1e-5, "images");

    // G_style's truncation: psi 0.6 in the first 3 layers.
    let t = g.truncate(w.clone(), 0.6);
    let ws_t: Vec<_> = (0..layers)
        .map(|i| if i < 3 { t.clone() } else { w.clone() })
        .collect();
    let img_t = g.synthesis(&ws_t, noise());
    assert_close(
        values(img_t),
        &golden.f32("images_trunc"),
        1e-5,
        "images_trunc",
    );

    // D_basic on Gs's images and on uniform noise.
    let images = golden.tensor("images", [b, ch, res, res], &device);
    assert_close(
        values(d.forward(images)),
        &golden.f32("d_images"),
        1e-5,
        "D(images)",
    );
    let x = golden.tensor("x", [b, ch, res, res], &device);
    assert_close(values(d.forward(x)), &golden.f32("d_x"), 1e-5, "D(x)");
}

#[test]
fn a_stylegan_pickle_reproduces_nvlabs_outputs() {
    check_stylegan("stylegan");
}

/// Every up and down convolution fused, as the published networks' are from 128x128 up: the
/// transposed-conv kernels must be flipped on import.
#[test]
fn a_fused_stylegan_pickle_reproduces_nvlabs_outputs() {
    check_stylegan("stylegan-fused");
}

#[test]
fn a_pggan_pickle_reproduces_nvlabs_outputs() {
    let device = Device::flex();
    let (_, d, gs) = networks("pggan");
    let (cfg, g, dn) = pggan_built(&gs, &d, &device, "pggan");
    let golden = Golden::load(&fixture("pggan.golden.json"));
    let b = golden.usize("batch");
    let (res, ch) = (cfg.resolution, cfg.channels);
    let img = g.forward(golden.tensor("z", [b, cfg.z_dim], &device));
    assert_close(values(img), &golden.f32("images"), 1e-5, "images");
    let images = golden.tensor("images", [b, ch, res, res], &device);
    assert_close(
        values(dn.forward(images)),
        &golden.f32("d_images"),
        1e-5,
        "D(images)",
    );
    let x = golden.tensor("x", [b, ch, res, res], &device);
    assert_close(values(dn.forward(x)), &golden.f32("d_x"), 1e-5, "D(x)");
}

/// `(G, D)` of a `keys-*.txt` list (the published networks built at full size by NVlabs'
/// code), zeros of each variable's shape, with the list's arguments.
fn listed(name: &str) -> (TfNetwork, TfNetwork) {
    let text = std::fs::read_to_string(fixture(&format!("keys-{name}.txt"))).unwrap();
    let kwargs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture(&format!("kwargs-{name}.json"))).unwrap(),
    )
    .unwrap();
    let mut vars: [BTreeMap<String, PickleTensor>; 2] = Default::default();
    for line in text.lines() {
        let (k, shape) = line.split_once(' ').unwrap();
        let shape: Vec<usize> = serde_json::from_str(shape).unwrap();
        let (net, k) = k.split_once('/').unwrap();
        let n = shape.iter().product();
        let t = PickleTensor {
            dtype: Dtype::F32,
            shape,
            values: vec![0.0; n],
        };
        vars[usize::from(net == "D")].insert(k.to_string(), t);
    }
    let [g, d] = vars.map(|variables| TfNetwork {
        name: name.into(),
        version: 3,
        static_kwargs: kwargs.clone(),
        variables,
    });
    (g, d)
}

/// The variables of `karras2019stylegan-ffhq-1024x1024.pkl`'s networks and of
/// `karras2018iclr-celebahq-1024x1024.pkl`'s, as NVlabs' code builds them, are exactly what
/// genforge's networks of the derived configs hold.
#[test]
fn published_networks_fit_genforge() {
    let device = Device::flex();
    let (g, d) = listed("stylegan-ffhq1024");
    let (cfg, _, _) = stylegan_built(&g, &d, &device, "ffhq");
    assert_eq!(
        (cfg.resolution, cfg.w_dim, cfg.num_layers()),
        (1024, 512, 18)
    );
    let (g, d) = listed("pggan-celebahq1024");
    let (cfg, _, _) = pggan_built(&g, &d, &device, "celebahq");
    assert_eq!((cfg.resolution, cfg.z_dim), (1024, 512));
}

/// What genforge does not build is an error naming it, never a silently different network.
#[test]
fn unbuilt_arguments_and_growing_networks_are_errors() {
    let (_, d, gs) = networks("stylegan");
    let cfg = stylegan::config_of(&gs, &d).unwrap();
    for (key, value) in [
        ("use_noise", serde_json::json!(false)),
        ("use_instance_norm", serde_json::json!(false)),
        ("blur_filter", serde_json::json!([1, 3, 3, 1])),
        ("label_size", serde_json::json!(10)),
        ("unknown_argument", serde_json::json!(1)),
    ] {
        let mut bad = networks("stylegan").2;
        bad.static_kwargs[key] = value;
        let e = stylegan::config_of(&bad, &d).unwrap_err();
        assert!(e.contains(key), "{key}: {e}");
    }
    let mut growing = networks("stylegan").2;
    growing.variables.get_mut("synthesis/lod").unwrap().values[0] = 1.0;
    let e = stylegan::generator(&growing, &cfg).err().unwrap();
    assert!(e.contains("lod"), "{e}");
    let mut extra = networks("stylegan").2;
    let t = extra.variables["dlatent_avg"].plus(0.0);
    extra
        .variables
        .insert("synthesis/64x64/Conv1/weight".into(), t);
    let e = stylegan::generator(&extra, &cfg).err().unwrap();
    assert!(e.contains("64x64"), "{e}");

    let (_, d, gs) = networks("pggan");
    let mut unfused = d;
    unfused.static_kwargs["fused_scale"] = serde_json::json!(false);
    let e = pggan::config_of(&gs, &unfused).unwrap_err();
    assert!(e.contains("fused_scale"), "{e}");
}

/// Full-size networks (FFHQ 1024 StyleGAN with `fused_scale='auto'`: fused from 128x128 up, as
/// published; CelebA-HQ 1024 Progressive GAN) written with randomised weights by
/// `scripts/tf_network_fixtures.py ... --full DIR`, hundreds of MB, so not committed: run with
/// `GENFORGE_TF_FULL_DIR=DIR cargo test --release --test tf_import -- --ignored`. Imports each
/// with `genforge import`'s code path and compares every 997th output value with TF's.
#[test]
#[ignore]
fn full_size_pickles_match_tf() {
    let Ok(dir) = std::env::var("GENFORGE_TF_FULL_DIR") else {
        panic!("set GENFORGE_TF_FULL_DIR to the --full directory of tf_network_fixtures.py");
    };
    let dir = PathBuf::from(dir);
    let device = Device::flex();
    let every = |v: Vec<f32>| v.into_iter().step_by(997).collect::<Vec<_>>();
    let tmp = tempfile::tempdir().unwrap();
    for name in ["stylegan-ffhq1024", "pggan-celebahq1024"] {
        let file = dir.join(format!("{name}.pkl"));
        let done =
            genforge::import::network_pickle::import(&file, None, &[], &tmp.path().join(name))
                .unwrap();
        assert_eq!(done.resolution, 1024);
        let golden = Golden::load(&dir.join(format!("{name}.golden.json")));
        let map = genforge::import::stylegan2::map_file(&file).unwrap();
        let p = Pickle::parse(&map).unwrap();
        let nets = tflib::networks(&p).unwrap();
        let (d, gs) = (&nets[1], &nets[2]);
        let z = golden.tensor("z", [1, 512], &device);
        let (img, score) = if name.starts_with("stylegan") {
            let (_, g, dn) = stylegan_built(gs, d, &device, name);
            let noise = (0..g.num_layers())
                .map(|i| {
                    let t = &gs.variables[&format!("synthesis/noise{i}")];
                    let data = TensorData::new(t.values.clone(), t.shape.clone());
                    Some(Tensor::<4>::from_data(data, &device))
                })
                .collect();
            let ws = vec![g.to_w(z); g.num_layers()];
            let img = g.synthesis(&ws, Noise::Fixed(noise));
            (img.clone(), dn.forward(img))
        } else {
            let (_, g, dn) = pggan_built(gs, d, &device, name);
            let img = g.forward(z);
            (img.clone(), dn.forward(img))
        };
        assert_close(every(values(img)), &golden.f32("images"), 1e-4, name);
        assert_close(values(score), &golden.f32("d_images"), 1e-4, name);
    }
}
