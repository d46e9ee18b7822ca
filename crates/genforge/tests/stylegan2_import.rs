//! StyleGAN2 against NVlabs' stylegan2-ada-pytorch: network pickles written by its own classes
//! load through genforge's pickle reader and reproduce its mapping, synthesis and
//! discriminator outputs (fixtures and golden outputs from `scripts/stylegan2_fixtures.py`),
//! and the published networks' key and shape lists are genforge's skeletons.

mod common;
use common::{Golden, assert_close, values};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use genforge::burn::store::ModuleSnapshot;
use genforge::burn::tensor::{Device, Tensor, TensorData};
use genforge::import::apply;
use genforge::import::pickle::Pickle;
use genforge::import::stylegan2::{D_KEYS, G_KEYS, config_of, networks, read, tensors};
use genforge::models::stylegan::Noise;
use genforge::models::stylegan2::{Discriminator, Generator, Stylegan2Config};
use genforge::rng::Rng;
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stylegan2")
        .join(name)
}

/// G and D of a fixture pickle, configured from their `_init_kwargs`.
fn load(name: &str, device: &Device) -> (Stylegan2Config, Generator, Discriminator) {
    let file = fixture(&format!("{name}.pkl"));
    let bytes = std::fs::read(&file).unwrap();
    let p = Pickle::parse(&bytes).unwrap();
    let (gm, dm) = networks(&p, &file).unwrap();
    let dm = dm.expect("the fixture pickles hold D");
    let cfg = config_of(&gm.init_kwargs().unwrap(), dm.init_kwargs().as_ref(), &file).unwrap();
    let mut g = Generator::new(&cfg, &mut Rng::new(0), device);
    let mut d = Discriminator::new(&cfg, &mut Rng::new(1), device);
    let n = apply(&mut g, &tensors(&gm, &file).unwrap(), &G_KEYS, &file).unwrap();
    assert_eq!(
        n,
        g.collect(None, None, false).len(),
        "every G tensor loaded"
    );
    apply(&mut d, &tensors(&dm, &file).unwrap(), &D_KEYS, &file).unwrap();
    (cfg, g, d)
}

fn check_network(name: &str) {
    let device = Device::flex();
    let (cfg, g, d) = load(name, &device);
    let golden = Golden::load(&fixture(&format!("{name}.golden.json")));
    let b = golden.0["batch"].as_u64().unwrap() as usize;
    assert_eq!(g.num_ws(), golden.0["num_ws"].as_u64().unwrap() as usize);
    let z = golden.tensor("z", [b, cfg.z_dim], &device);
    let c = (cfg.num_classes > 0).then(|| golden.tensor("c", [b, cfg.num_classes], &device));
    let (res, ch) = (cfg.resolution, cfg.channels);
    let stack = |ws: Vec<Tensor<2>>| values(Tensor::stack::<3>(ws, 1));

    // Mapping, untruncated and truncated (psi 0.6 in the first 3 ws).
    let ws = g.mapping_ws(z.clone(), c.clone(), 1.0, None);
    assert_close(stack(ws.clone()), &golden.f32("ws"), 1e-5, "ws");
    let ws_t = g.mapping_ws(z, c.clone(), 0.6, Some(3));
    assert_close(
        stack(ws_t.clone()),
        &golden.f32("ws_trunc"),
        1e-5,
        "ws_trunc",
    );

    // Synthesis with the stored noise (noise_mode = "const").
    let img = g.synthesis(&ws, Noise::Fixed(g.const_noise()));
    assert_eq!(img.dims(), [b, ch, res, res]);
    assert_close(values(img.clone()), &golden.f32("img"), 1e-5, "img");
    let img_t = g.synthesis(&ws_t, Noise::Fixed(g.const_noise()));
    assert_close(values(img_t), &golden.f32("img_trunc"), 1e-5, "img_trunc");

    // D on G's images and on uniform noise.
    let want_img = golden.tensor("img", [b, ch, res, res], &device);
    assert_close(
        values(d.forward(want_img, c.clone())),
        &golden.f32("d_img"),
        1e-5,
        "D(img)",
    );
    let x = golden.tensor("x", [b, ch, res, res], &device);
    assert_close(values(d.forward(x, c)), &golden.f32("d_x"), 1e-5, "D(x)");
}

#[test]
fn an_unconditional_network_reproduces_nvlabs_outputs() {
    check_network("plain");
}

/// Three classes, grayscale, `conv_clamp = 0.5` (the fixture script checks the clamp changes
/// the image), D's class projection.
#[test]
fn a_conditional_clamped_network_reproduces_nvlabs_outputs() {
    check_network("cond");
}

/// NVlabs' TensorFlow StyleGAN2 layout (written by the fixture script with numpy stand-ins of
/// `dnnlib.tflib.network.Network`): genforge's conversion reproduces the outputs of the network
/// stylegan2-ada-pytorch's `legacy.py` converts the same file into.
#[test]
fn tf_stylegan2_pickles_convert_as_legacy_py_does() {
    let device = Device::flex();
    for name in ["tf-plain", "tf-cond"] {
        let file = fixture(&format!("{name}.pkl"));
        let bytes = std::fs::read(&file).unwrap();
        let p = Pickle::parse(&bytes).unwrap();
        let nets = read(&p, &file).unwrap();
        let cfg = config_of(&nets.g_kwargs, nets.d_kwargs.as_ref(), &file).unwrap();
        let mut g = Generator::new(&cfg, &mut Rng::new(0), &device);
        let mut d = Discriminator::new(&cfg, &mut Rng::new(1), &device);
        apply(&mut g, &nets.g, &G_KEYS, &file).unwrap();
        apply(&mut d, nets.d.as_ref().unwrap(), &D_KEYS, &file).unwrap();
        let golden = Golden::load(&fixture(&format!("{name}.golden.json")));
        let b = golden.0["batch"].as_u64().unwrap() as usize;
        let z = golden.tensor("z", [b, cfg.z_dim], &device);
        let c = (cfg.num_classes > 0).then(|| golden.tensor("c", [b, cfg.num_classes], &device));
        let ws = g.mapping_ws(z, c.clone(), 1.0, None);
        let stacked = values(Tensor::stack::<3>(ws.clone(), 1));
        assert_close(stacked, &golden.f32("ws"), 1e-5, &format!("{name} ws"));
        let img = g.synthesis(&ws, Noise::Fixed(g.const_noise()));
        assert_close(
            values(img),
            &golden.f32("img"),
            1e-5,
            &format!("{name} img"),
        );
        let (res, ch) = (cfg.resolution, cfg.channels);
        let x = golden.tensor("x", [b, ch, res, res], &device);
        assert_close(
            values(d.forward(x, c)),
            &golden.f32("d_x"),
            1e-5,
            &format!("{name} D"),
        );
    }
}

/// The random noise mode draws a fresh image per layer, and leaving a layer's noise out
/// changes the image (the fixtures' noise strengths are non-zero).
#[test]
fn noise_modes() {
    let device = Device::flex();
    let (_, g, _) = load("plain", &device);
    let z = Tensor::<2>::from_data(TensorData::new(vec![0.3f32; 8], [1, 8]), &device);
    let ws = g.mapping_ws(z, None, 1.0, None);
    let diff = |a: Tensor<4>, b: Tensor<4>| (a - b).abs().max().into_scalar::<f32>();
    let a = g.synthesis(&ws, Noise::Random(&mut Rng::new(1)));
    let b = g.synthesis(&ws, Noise::Random(&mut Rng::new(2)));
    assert!(diff(a.clone(), b) > 1e-3);
    assert_eq!(
        diff(a.clone(), g.synthesis(&ws, Noise::Random(&mut Rng::new(1)))),
        0.0
    );
    let none = g.synthesis(&ws, Noise::Fixed(vec![None; g.conv_layers().len()]));
    assert!(diff(a, none) > 1e-3);
}

/// `key shape` lines of a `keys-*.txt` fixture, for `prefix` (`G` or `D`), resample filters
/// left out.
fn key_list(name: &str, prefix: &str) -> BTreeMap<String, Vec<usize>> {
    std::fs::read_to_string(fixture(&format!("keys-{name}.txt")))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let (k, shape) = l.split_once(' ')?;
            let k = k.strip_prefix(&format!("{prefix}."))?;
            if k.ends_with("resample_filter") {
                return None;
            }
            let shape: Vec<usize> = serde_json::from_str(shape).unwrap();
            // PyTorch's scalar noise_strength is [1] here.
            let shape = if shape.is_empty() { vec![1] } else { shape };
            Some((k.to_string(), shape))
        })
        .collect()
}

/// The published FFHQ 1024 and conditional CIFAR-10 networks, configured from their constructor
/// arguments, have exactly NVlabs' keys and shapes (the skeletons are built without weights).
#[test]
fn full_size_skeletons_match_nvlabs_key_lists() {
    let device = Device::flex();
    for name in ["ffhq1024", "cifar10"] {
        let kwargs: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(&format!("kwargs-{name}.json"))).unwrap(),
        )
        .unwrap();
        let cfg = config_of(&kwargs["G"], Some(&kwargs["D"]), &fixture(name)).unwrap();
        let skeleton = |m: &dyn Fn() -> Vec<(String, Vec<usize>)>,
                        map: &genforge::import::KeyMap| {
            m().into_iter()
                .map(|(name, shape)| ((map.foreign)(&name), shape))
                .collect::<BTreeMap<_, _>>()
        };
        let g = Generator::new(&cfg, &mut Rng::new(0), &device);
        let g_keys = || {
            g.collect(None, None, false)
                .into_iter()
                .map(|t| (t.name.clone(), t.shape.to_vec()))
                .collect()
        };
        assert_eq!(skeleton(&g_keys, &G_KEYS), key_list(name, "G"), "{name} G");
        let d = Discriminator::new(&cfg, &mut Rng::new(0), &device);
        let d_keys = || {
            d.collect(None, None, false)
                .into_iter()
                .map(|t| (t.name.clone(), t.shape.to_vec()))
                .collect()
        };
        assert_eq!(skeleton(&d_keys, &D_KEYS), key_list(name, "D"), "{name} D");
    }
}

/// A published pickle of any NVlabs generation (`GENFORGE_NVLABS_PKL=ffhq.pkl`, or a TF StyleGAN2,
/// StyleGAN or Progressive GAN pickle; optionally `GENFORGE_NVLABS_SHA256`): it imports with
/// every key matched, and sampling it twice with one seed gives the same finite image.
#[test]
#[ignore = "needs a published pickle: set GENFORGE_NVLABS_PKL"]
fn a_published_pickle_imports_and_samples_deterministically() {
    let Ok(path) = std::env::var("GENFORGE_NVLABS_PKL") else {
        panic!("set GENFORGE_NVLABS_PKL to an NVlabs network pickle");
    };
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let done = genforge::import::network_pickle::import(Path::new(&path), None, &[], &run).unwrap();
    if let Ok(want) = std::env::var("GENFORGE_NVLABS_SHA256") {
        assert_eq!(done.sha256, want.to_lowercase());
    }
    let device = Device::flex();
    let (cfg, g, _) = genforge::sample::load_generator(&run, None, &device).unwrap();
    let req = genforge::sample::GanRequest {
        n: 1,
        seed: 7,
        psi: (done.styles > 0).then_some(0.7),
        cutoff: None,
        class: (done.classes > 0).then_some("0"),
        truncation: None,
        run_dir: &run,
    };
    let a = genforge::sample::generate(&cfg, &g, &req).unwrap();
    let b = genforge::sample::generate(&cfg, &g, &req).unwrap();
    let r = done.resolution;
    assert_eq!(a.dims()[2..], [r, r]);
    assert!(a.clone().is_finite().all().into_scalar::<bool>());
    assert_eq!(values(a), values(b));
}

/// Projection (NVlabs' `projector.py`) of an image the fixture network itself drew, with
/// LPIPS on formula VGG16 weights: the projected image comes far closer to the target than the
/// start (the image of `w_avg`) was.
#[test]
fn projecting_a_generated_image_recovers_it() {
    use genforge::metrics::lpips::Lpips;
    use genforge::sample::projector::{ProjectOptions, project};
    let device = Device::flex().autodiff();
    let (_, g, _) = load("plain", &device);
    let g = genforge::burn::module::Module::no_grad(g);
    let lpips = Lpips::formula(&device);
    let z = Tensor::<2>::from_data(
        TensorData::new(Rng::new(5).normal_vec(8, 0.0, 1.0), [1, 8]),
        &device,
    );
    let ws = g.mapping_ws(z, None, 1.0, None);
    let target = g.synthesis(&ws, Noise::Fixed(g.const_noise())).detach();
    let opts = ProjectOptions {
        steps: 120,
        w_avg_samples: 2000,
        ..Default::default()
    };
    let p = project(&g, None, target.clone(), &lpips, &opts, |_, _| {}).unwrap();
    let start = p.distances[0];
    let end = lpips.distance(p.image.clone(), target).into_scalar::<f32>() as f64;
    // In W as well: the projected w is nearer the target's than the start, w_avg, was.
    let w_target = values(ws[0].clone());
    let w_avg = values(
        g.to_w(
            Tensor::from_data(
                TensorData::new(Rng::new(303).normal_vec(2000 * 8, 0.0, 1.0), [2000, 8]),
                &device,
            ),
            None,
        )
        .mean_dim(0),
    );
    let dist = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f32>()
            .sqrt()
    };
    let (w_start, w_end) = (dist(&w_avg, &w_target), dist(&p.w, &w_target));
    println!("LPIPS {start:.4} -> {end:.4}; |w - w_target| {w_start:.3} -> {w_end:.3}");
    assert!(end < 0.35 * start, "LPIPS {start} -> {end}");
    assert!(w_end < 0.7 * w_start, "|w - w_target| {w_start} -> {w_end}");
}

/// PPL divides LPIPS by epsilon squared because LPIPS grows with the square of a small step:
/// at half the step the value holds, and a network whose styles ignore `w` has none.
#[test]
fn ppl_is_the_second_order_rate_of_lpips() {
    use genforge::metrics::lpips::Lpips;
    use genforge::metrics::ppl::{PplOptions, ppl_wend};
    let device = Device::flex();
    let (_, g, _) = load("plain", &device);
    let lpips = Lpips::formula(&device);
    let at = |g: &Generator, epsilon: f64| {
        let opts = PplOptions {
            n: 16,
            epsilon,
            batch: 8,
            ..Default::default()
        };
        ppl_wend(g, &lpips, &opts, |_, _| {}).unwrap()
    };
    let (a, b) = (at(&g, 1e-2), at(&g, 5e-3));
    println!("PPL {a} at 1e-2, {b} at 5e-3");
    assert!(a > 0.0 && (a - b).abs() < 0.1 * a, "{a} vs {b}");
    // Zero mapping weights: every z maps to the same w, so the path has no length.
    let mut flat = g;
    for fc in &mut flat.mapping.fc {
        fc.weight = fc.weight.clone().map(|w| w * 0.0);
    }
    assert!(at(&flat, 1e-2) < 1e-6 * a);
}

/// R1's parameter gradient from genforge's first-order surrogate equals PyTorch's double
/// backward through NVlabs' own discriminator (`scripts/r1_golden.py`): every parameter's
/// gradient norm, and zero for the biases R1 cannot see (those after the minibatch standard
/// deviation sit between piecewise-linear layers). Letting the surrogate's shifted passes cross
/// the leaky ReLUs' kinks gives those biases gradients and moves the weights' norms. The
/// conditional fixture clips its layers at 0.5 (`conv_clamp`), the other kink frozen; its
/// gradients (at most 1.9e-4) sit near the float32 floor of 5e-7, which still separates them
/// from an unfrozen clamp's (7.9e-5 on a bias whose PyTorch gradient is 2.6e-7).
#[test]
fn r1_surrogate_gradient_equals_pytorch_double_backward_on_nvlabs_d() {
    r1_matches_pytorch("plain");
    r1_matches_pytorch("cond");
}

fn r1_matches_pytorch(name: &str) {
    use genforge::burn::module::{Module, ModuleVisitor, Param};
    use genforge::burn::optim::GradientsParams;
    use genforge::train::regularizers::r1_surrogate;

    let device = Device::flex().autodiff();
    let (cfg, _, d) = load(name, &device);
    let golden = Golden::load(&fixture(&format!("{name}.golden.json")));
    let want = Golden::load(&fixture(&format!("{name}.r1.json")));
    let b = golden.0["batch"].as_u64().unwrap() as usize;
    let (ch, res) = (cfg.channels, cfg.resolution);
    let x = golden.tensor("x", [b, ch, res, res], &device);
    let c = (cfg.num_classes > 0).then(|| golden.tensor("c", [b, cfg.num_classes], &device));
    let d_const = d.clone().no_grad();
    let (loss, r1) = r1_surrogate(
        |t| d.forward(t, c.clone()),
        |t| d_const.forward(t, c.clone()),
        x,
        1.0,
    );
    let want_r1 = want.0["r1"].as_f64().unwrap();
    assert!(
        (r1 / 2.0 - want_r1).abs() < 1e-5 * want_r1,
        "r1 {} vs {want_r1}",
        r1 / 2.0
    );
    let grads = GradientsParams::from_grads(loss.backward(), &d);

    // Gradient norms by shape, each group sorted: the parameters' order differs between the two.
    struct Norms<'a>(&'a GradientsParams, BTreeMap<Vec<usize>, Vec<f64>>);
    impl ModuleVisitor for Norms<'_> {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            let v = self.0.get::<D>(p.id).map_or(0.0, |g| {
                let g = g.into_data().try_to_vec::<f32>().unwrap();
                g.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt()
            });
            self.1.entry(p.val().dims().to_vec()).or_default().push(v);
        }
    }
    let mut got = Norms(&grads, BTreeMap::new());
    d.visit(&mut got);
    let mut expected: BTreeMap<Vec<usize>, Vec<f64>> = BTreeMap::new();
    for p in want.0["params"].as_object().unwrap().values() {
        let shape: Vec<usize> = p["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_u64().unwrap() as usize)
            .collect();
        expected
            .entry(shape)
            .or_default()
            .push(p["norm"].as_f64().unwrap());
    }
    let mut got = got.1;
    for norms in got.values_mut().chain(expected.values_mut()) {
        norms.sort_by(f64::total_cmp);
    }
    assert_eq!(
        got.iter().map(|(s, v)| (s, v.len())).collect::<Vec<_>>(),
        expected
            .iter()
            .map(|(s, v)| (s, v.len()))
            .collect::<Vec<_>>(),
        "parameter shapes"
    );
    // Some biases have a true R1 gradient of 0; in f32 theirs is rounding noise, which scales
    // with the gradient as a whole (seen up to 3e-5 of the largest norm), so the absolute floor
    // is set against that.
    let scale = expected.values().flatten().fold(0.0f64, |a, b| a.max(*b));
    for (shape, want) in &expected {
        for (g, w) in got[shape].iter().zip(want) {
            assert!(
                (g - w).abs() < 1e-4 * w + 1e-4 * scale,
                "{name}: a {shape:?} parameter: R1 gradient norm {g}, PyTorch {w}"
            );
        }
    }
}
