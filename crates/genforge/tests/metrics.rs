//! The evaluation pipeline on real digits: the shipped classifier's accuracy, and metrics that
//! must order real, degraded and collapsed sets the way any correct implementation does.

use genforge::burn::tensor::Device;
use genforge::config::resolve_shipped;
use genforge::data::{self, DataConfig, Dataset};
use genforge::metrics::eval::{EvalOptions, real_features, score};
use genforge::metrics::features::FeatureNet;
use genforge::metrics::kid::KidOptions;
use genforge::metrics::mnist_classifier::{RESOLUTION, accuracy};

fn digits(classes: &[u32]) -> Dataset {
    let cfg = DataConfig {
        classes: classes.to_vec(),
        ..DataConfig::default()
    };
    data::load(&cfg, &resolve_shipped("data/mnist"), 1, RESOLUTION).unwrap()
}

fn net() -> (FeatureNet, Device) {
    let device = Device::flex();
    (FeatureNet::load("mnist", &device).unwrap(), device)
}

fn opts() -> EvalOptions {
    EvalOptions {
        n: 1000,
        kid: KidOptions {
            subsets: 20,
            subset_size: 400,
            seed: 0,
        },
        ..EvalOptions::default()
    }
}

#[test]
fn the_shipped_classifier_reads_held_out_digits() {
    // `genforge train-classifier` trains on the first 8000 shipped digits; the last 2000 are
    // held out.
    let (net, device) = net();
    let FeatureNet::Mnist { net, .. } = &net else {
        unreachable!("mnist is the classifier")
    };
    let (_, held) = digits(&[]).split_holdout(0.2);
    let acc = accuracy(net, &held.unwrap(), &device);
    assert!(acc > 0.98, "held-out accuracy {acc}");
    // The feature scale was set on the training digits: mean square 1 there.
    let (train, _) = digits(&[]).split_holdout(0.2);
    let ms = genforge::metrics::mnist_classifier::mean_square_feature(net, &train, &device);
    assert!((ms - 1.0).abs() < 1e-3, "mean square feature {ms}");
}

/// The shipped emoji classifier (`genforge train-classifier --data
/// data/emoji/emoji-32x32-binary.tar.gz`: the first 80% of the shuffled emoji, 10 categories)
/// reads RGB, classifies the held-out fifth far above the majority class's 20%, and the real
/// emoji score near its floor against each other but badly against one category.
#[test]
fn the_shipped_emoji_classifier_reads_held_out_emoji() {
    let device = Device::flex();
    let features = FeatureNet::load("emoji", &device).unwrap();
    assert_eq!(features.input(), (3, RESOLUTION));
    let FeatureNet::Mnist { net, .. } = &features else {
        unreachable!("emoji is a classifier")
    };
    let emoji = |classes: &[u32]| {
        let cfg = DataConfig {
            format: data::DataFormat::Cifar10,
            classes: classes.to_vec(),
            ..DataConfig::default()
        };
        let path = resolve_shipped("data/emoji/emoji-32x32-binary.tar.gz");
        data::load(&cfg, &path, 3, RESOLUTION).unwrap()
    };
    let (train, held) = emoji(&[]).split_holdout(0.2);
    let acc = accuracy(net, &held.unwrap(), &device);
    assert!(acc > 0.6, "held-out accuracy {acc}");
    let ms = genforge::metrics::mnist_classifier::mean_square_feature(net, &train, &device);
    assert!((ms - 1.0).abs() < 1e-3, "mean square feature {ms}");
    let all = emoji(&[]);
    let feats = |d: &Dataset| real_features(&features, d, 800, 100, None, &device, |_| {}).unwrap();
    let (a, b) = (feats(&all.subset(0..800)), feats(&all.subset(1000..1800)));
    let flags = feats(&emoji(&[3]).subset(0..200));
    let o = EvalOptions {
        n: 800,
        kid: KidOptions {
            subsets: 10,
            subset_size: 200,
            seed: 0,
        },
        ..EvalOptions::default()
    };
    let (real, one) = (score(&a, &b, &o), score(&a, &flags, &o));
    assert!(
        real.fid.unwrap() < 0.25 * one.fid.unwrap(),
        "{real:?} vs {one:?}"
    );
}

#[test]
fn real_digits_score_near_the_floor_and_one_class_scores_badly() {
    let (net, device) = net();
    let all = digits(&[]);
    let first = all.subset(0..1000);
    let second = all.subset(5000..6000);
    let ones = digits(&[1]).subset(0..1000);
    let o = opts();
    let feats = |d: &Dataset| real_features(&net, d, 1000, 100, None, &device, |_| {}).unwrap();
    let (a, b, c) = (feats(&first), feats(&second), feats(&ones));
    let real = score(&a, &b, &o);
    let collapsed = score(&a, &c, &o);
    let fid = real.fid.unwrap();
    assert!(
        fid < 0.1 * collapsed.fid.unwrap(),
        "{real:?} vs {collapsed:?}"
    );
    assert!(real.kid.unwrap() < 0.1 * collapsed.kid.unwrap());
    // Ten balanced, confidently classified classes: IS near 10; one class: near 1.
    assert!(real.is.unwrap() > 8.5, "{real:?}");
    assert!(collapsed.is.unwrap() < 1.5, "{collapsed:?}");
    // A collapsed set stays inside the real manifold but covers little of it.
    assert!(
        real.precision.unwrap() > 0.6 && real.recall.unwrap() > 0.6,
        "{real:?}"
    );
    assert!(collapsed.recall.unwrap() < 0.3, "{collapsed:?}");
}

mod common;

/// `(step, fid, kid, precision, recall)` of each evaluation during training.
fn evals(run: &std::path::Path) -> Vec<(u64, f64, f64, f64, f64)> {
    std::fs::read_to_string(run.join("stats.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v.get("fid").is_some())
        .map(|v| {
            (
                v["step"].as_u64().unwrap(),
                v["fid"].as_f64().unwrap(),
                v["kid"].as_f64().unwrap(),
                v["precision"].as_f64().unwrap(),
                v["recall"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn evaluation_during_training_logs_fid_keeps_the_best_and_resumes_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("straight"), tmp.path().join("resumed"));
    let set = [
        "train.eval_every=1".to_string(),
        "train.eval_n=16".to_string(),
    ];
    common::run("dcgan-tiny", &a, 4, false, &set);
    common::run("dcgan-tiny", &b, 2, false, &set);
    common::run("dcgan-tiny", &b, 4, true, &[]);
    let (ea, eb) = (evals(&a), evals(&b));
    assert_eq!(ea.iter().map(|e| e.0).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    // Evaluation draws from its own streams: the resumed run logs the same numbers.
    assert_eq!(ea, eb);
    assert!(ea.iter().all(|e| e.1.is_finite() && e.1 > 0.0));
    assert!(
        ea.iter()
            .all(|e| (0.0..=1.0).contains(&e.3) && (0.0..=1.0).contains(&e.4))
    );
    // Every step logs D's sign accuracy, a fraction.
    let steps = std::fs::read_to_string(a.join("stats.jsonl")).unwrap();
    let accs: Vec<f64> = steps
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|v| v.get("d_acc").and_then(|x| x.as_f64()))
        .collect();
    assert_eq!(accs.len(), 4);
    assert!(accs.iter().all(|a| (0.0..=1.0).contains(a)));
    let best = ea.iter().min_by(|x, y| x.1.total_cmp(&y.1)).unwrap();
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(a.join("checkpoints/best/best.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["step"].as_u64(), Some(best.0));
    assert_eq!(record["fid"].as_f64(), Some(best.1));
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(a.join("checkpoints/best/state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["step"].as_u64(), Some(best.0));
    // The best checkpoint samples like any other.
    let device = Device::flex();
    let best_dir = a.join("checkpoints/best");
    genforge::sample::load_generator(&a, Some(&best_dir), &device).unwrap();
}

/// `scripts/metrics_golden.py`'s formula, in f64 then f32 as numpy computes it.
fn formula(n: usize, d: usize, phase: f64, scale: f64) -> genforge::metrics::Features {
    let mut v = Vec::with_capacity(n * d);
    for i in 0..n {
        for j in 0..d {
            let (i, j) = (i as f64, j as f64);
            v.push((scale * (0.37 * i * (j + 1.0) / d as f64 + phase * j).sin() + 0.05 * j) as f32);
        }
    }
    genforge::metrics::Features::new(n, d, v)
}

#[test]
fn metrics_agree_with_pytorch_fid_and_torch_fidelity() {
    use genforge::metrics::frechet::{GaussianStats, frechet_distance};
    use genforge::metrics::inception_score::inception_score;
    use genforge::metrics::kid::kid;
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/metrics_golden.json"
    ))
    .unwrap();
    let golden: serde_json::Value = serde_json::from_str(&text).unwrap();
    for case in golden["cases"].as_array().unwrap() {
        let n = case["n"].as_u64().unwrap() as usize;
        let d = case["d"].as_u64().unwrap() as usize;
        let p = |k: &str, i: usize| case[k][i].as_f64().unwrap();
        let a = formula(n, d, p("a", 0), p("a", 1));
        let b = formula(n, d, p("b", 0), p("b", 1));
        let fid = frechet_distance(&GaussianStats::of(&a), &GaussianStats::of(&b));
        let want = case["fid"].as_f64().unwrap();
        assert!(
            (fid - want).abs() < 1e-9 * want.max(1.0),
            "FID {fid} vs {want}"
        );
        let opts = KidOptions {
            subsets: 1,
            subset_size: n,
            seed: 0,
        };
        let (k, _) = kid(&a, &b, opts);
        let want = case["kid"].as_f64().unwrap();
        assert!((k - want).abs() < 2e-5, "KID {k} vs {want}");
        // torch-fidelity takes logits; the softmax here is in f64.
        let logits = formula(n, 10, p("a", 0), 3.0 * p("a", 1));
        let probs: Vec<f32> = logits
            .data
            .chunks(10)
            .flat_map(|r| {
                let m = r.iter().fold(f32::MIN, |a, b| a.max(*b)) as f64;
                let e: Vec<f64> = r.iter().map(|v| (*v as f64 - m).exp()).collect();
                let s: f64 = e.iter().sum();
                e.into_iter().map(move |v| (v / s) as f32)
            })
            .collect();
        let (is, is_std) = inception_score(&probs, n, 10, 10);
        let (want, want_std) = (
            case["is_mean"].as_f64().unwrap(),
            case["is_std"].as_f64().unwrap(),
        );
        assert!((is - want).abs() < 1e-5, "IS {is} vs {want}");
        assert!(
            (is_std - want_std).abs() < 1e-5,
            "IS std {is_std} vs {want_std}"
        );
    }
}
