//! VQ-VAE-2 and its priors through the training loop: reconstruction error falls on the shipped
//! digits, and resume is exact for both stages (weights, codebook EMA state, logged losses).

mod common;

use std::path::Path;

use common::{params, run};
use genforge::burn::tensor::Device;
use genforge::config::TrainConfig;
use genforge::sample::vq::{load_priors, load_vqvae};

fn stats(dir: &Path, key: &str) -> Vec<f64> {
    std::fs::read_to_string(dir.join("stats.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.get(key).and_then(|x| x.as_f64())
        })
        .collect()
}

#[test]
fn reconstruction_error_falls_on_the_shipped_digits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vq");
    run(
        "vqvae2-tiny",
        &dir,
        60,
        false,
        &["train.sample_every=30".into()],
    );
    let mse = stats(&dir, "mse");
    assert_eq!(mse.len(), 60);
    let first: f64 = mse[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = mse[55..].iter().sum::<f64>() / 5.0;
    assert!(last < 0.6 * first, "mse {first:.4} -> {last:.4}");
    let held = stats(&dir, "heldout_mse");
    assert_eq!(held.len(), 2);
    assert!(held[1] < held[0], "held-out mse {held:?}");
    // Codebook statistics are logged every step. At initialisation the batch maps to one or two
    // of the 16 codes; dead-code restarts (after 2 unused steps here) bring the others into use,
    // so over the last ten steps most codes are used and the code distribution is spread. A
    // collapsed or never-restarted codebook stays near 1/16 usage and perplexity 1.
    let tail_mean = |key: &str| {
        let v = stats(&dir, key);
        assert_eq!(v.len(), 60, "{key} logged every step");
        v[50..].iter().sum::<f64>() / 10.0
    };
    let usage_start = stats(&dir, "usage_bottom")[0];
    assert!(usage_start <= 0.2, "usage at step 1: {usage_start}");
    for (key, floor) in [
        ("usage_bottom", 0.6),
        ("usage_top", 0.5),
        ("perplexity_bottom", 4.0),
        ("perplexity_top", 4.0),
    ] {
        let mean = tail_mean(key);
        assert!(
            mean >= floor,
            "{key} over the last 10 steps: {mean:.3} < {floor}"
        );
    }
}

#[test]
fn both_stages_resume_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    run("vqvae2-tiny", &a, 4, false, &[]);
    run("vqvae2-tiny", &b, 2, false, &[]);
    run("vqvae2-tiny", &b, 4, true, &[]);
    let device = Device::flex();
    let (_, ma, _) = load_vqvae(&a, None, &device).unwrap();
    let (_, mb, ckpt) = load_vqvae(&b, None, &device).unwrap();
    assert!(ckpt.ends_with("step-0000004"));
    // Includes the codebooks' EMA sizes, sums and unused counters.
    assert_eq!(params(&ma), params(&mb), "autoencoder differs after resume");
    assert_eq!(stats(&a, "mse"), stats(&b, "mse"));

    // Priors on the codes of run a.
    let codes = a.join("codes");
    let enc = genforge::sample::vq::encode_dataset(
        &ma,
        &genforge::data::load_input(
            &TrainConfig::load("vqvae2-tiny", &[])
                .unwrap()
                .resolve_data_path(),
            genforge::data::DataFormat::Idx,
            &TrainConfig::load("vqvae2-tiny", &[]).unwrap().data,
            1,
            16,
        )
        .unwrap(),
        &a,
        &ckpt,
        32,
    )
    .unwrap();
    enc.write(&codes).unwrap();
    let set = vec![
        format!("data.path={}", codes.display()),
        "train.sample_every=2".into(),
    ];
    let (pa, pb) = (tmp.path().join("pa"), tmp.path().join("pb"));
    run("pixelcnn-tiny", &pa, 4, false, &set);
    run("pixelcnn-tiny", &pb, 2, false, &set);
    run("pixelcnn-tiny", &pb, 4, true, &[]);
    let (cfg, ta, ba, _) = load_priors(&pa, &device).unwrap();
    let (_, tb, bb, _) = load_priors(&pb, &device).unwrap();
    assert_eq!(params(&ta), params(&tb), "top prior differs after resume");
    assert_eq!(
        params(&ba),
        params(&bb),
        "bottom prior differs after resume"
    );
    assert_eq!(stats(&pa, "bottom_nats"), stats(&pb, "bottom_nats"));
    assert_eq!(stats(&pa, "heldout_top_nats").len(), 2);
    // The prior run recorded the code maps' sizes.
    let p = cfg.model.as_pixelcnn().unwrap();
    assert_eq!(p.codebook_size, 16);
    assert_eq!(p.top_stride, 2);
}
