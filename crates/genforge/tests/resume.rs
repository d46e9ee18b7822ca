//! Resume is exact: N steps straight and N/2 + resume to N give identical weights (G, D, spectral
//! norm vectors, BatchNorm statistics) and identical samples.

mod common;

use std::path::Path;

use common::{params, run};
use genforge::burn::tensor::Device;
use genforge::config::TrainConfig;
use genforge::models::{Discriminator, Generator};
use genforge::rng::Rng;
use genforge::sample;
use genforge::train::gan::load_module;
use genforge::train::loop_::{RunSource, Silent};
use genforge::train::{TrainOptions, train};

fn check(preset: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("straight"), tmp.path().join("resumed"));
    run(preset, &a, 4, false, &[]);
    run(preset, &b, 2, false, &[]);
    run(preset, &b, 4, true, &[]);
    let device = Device::flex();
    let (_, ga, _) = sample::load_generator(&a, None, &device).unwrap();
    let (_, gb, ckpt) = sample::load_generator(&b, None, &device).unwrap();
    assert!(ckpt.ends_with("step-0000004"));
    let (pa, pb) = (params(&ga), params(&gb));
    assert!(!pa.is_empty());
    assert_eq!(pa, pb, "{preset}: generator weights differ after resume");
    // The generator moved away from its initialisation, so equality is not trivial.
    let mut fresh = TrainConfig::load(preset, &[]).unwrap();
    fresh.train.steps = 0;
    let init = genforge::train::GanTrainer::new(fresh, &device);
    assert_ne!(params(&init.g), pa);
    // Discriminators (with their spectral-norm vectors) match too.
    let cfg = TrainConfig::load(preset, &[]).unwrap();
    let load_d = |run: &Path| {
        let d = Discriminator::new(&cfg.model, &mut Rng::new(5), &device);
        load_module(d, &run.join("checkpoints/step-0000004/discriminator.bpk")).unwrap()
    };
    assert_eq!(
        params(&load_d(&a)),
        params(&load_d(&b)),
        "{preset}: discriminators differ"
    );
    // The raw generator too (for ViTGAN, `load_generator` returned the weight average).
    let load_g = |run: &Path| {
        let g = Generator::new(&cfg.model, &mut Rng::new(6), &device);
        load_module(g, &run.join("checkpoints/step-0000004/generator.bpk")).unwrap()
    };
    let raw = params(&load_g(&a));
    assert_eq!(raw, params(&load_g(&b)), "{preset}: raw generators differ");
    if cfg.train.ema_decay > 0.0 {
        assert_ne!(raw, pa, "{preset}: the average should lag the generator");
    }
    let da = std::fs::read(a.join("checkpoints/step-0000004/state.json")).unwrap();
    let db = std::fs::read(b.join("checkpoints/step-0000004/state.json")).unwrap();
    assert_eq!(da, db, "{preset}: step / rng state differ");
    let z = sample::latents(4, cfg.model.z_dim, 9, &device);
    let (ia, ib) = (ga.forward(z.clone()), gb.forward(z));
    assert_eq!(ia.into_data(), ib.into_data());
    // The losses logged after the resume match the straight run's.
    let tail = |p: &Path| -> Vec<String> {
        std::fs::read_to_string(p.join("stats.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                format!("{} {} {}", v["step"], v["d_loss"], v["g_loss"])
            })
            .collect()
    };
    assert_eq!(tail(&a), tail(&b));
}

#[test]
fn dcgan_resume_is_exact() {
    check("dcgan-tiny");
}

#[test]
fn sagan_resume_is_exact() {
    check("sagan-tiny");
}

#[test]
fn vitgan_resume_is_exact() {
    // Includes the G weight average (what load_generator returns), ISN's u and sigma(W_init),
    // and the DiffAugment draws.
    check("vitgan-tiny");
}

#[test]
fn resume_refuses_a_changed_model() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("r");
    run("dcgan-tiny", &dir, 2, false, &[]);
    let source = RunSource::Resume {
        run_dir: dir.clone(),
        overrides: vec!["model.z_dim=9".into()],
    };
    let err = train(
        TrainOptions {
            source,
            steps: Some(4),
            device: Device::flex(),
        },
        &mut Silent,
    )
    .unwrap_err();
    assert!(err.to_string().contains("model.z_dim"), "{err}");
}
