//! The same checks for every adversarial family, from one table: the family builds, one step is
//! finite, the D phase leaves G's weights alone and the G phase D's, resume is exact (N steps
//! straight equal N/2 + resume to N: weights, spectral-norm vectors, BatchNorm statistics, the G
//! average, StyleGAN's w_avg, every random stream, logged losses, samples), and sampling works.

mod common;

use std::path::Path;

use common::{params, run, train_from};
use genforge::burn::module::{Module, ModuleVisitor, Param};
use genforge::burn::tensor::{Device, Distribution, Tensor};
use genforge::config::TrainConfig;
use genforge::models::Generator;
use genforge::rng::Rng;
use genforge::run::checkpoint::{files, load_module};
use genforge::sample;
use genforge::train::GanTrainer;
use genforge::train::gan::{Phase, StepStats};
use genforge::train::loop_::RunSource;
use genforge::train::{TrainOptions, train};

/// The tiny preset of every adversarial family.
const FAMILIES: &[&str] = &[
    "dcgan-tiny",
    "sagan-tiny",
    "vitgan-tiny",
    "stylegan-tiny",
    "stylegan2-tiny",
    "biggan-tiny",
    "pggan-tiny",
];

/// Trainable weights only (not spectral-norm vectors, BatchNorm statistics or w_avg, which a
/// forward pass may update by design).
fn weights<M: Module>(m: &M) -> Vec<f32> {
    struct W(Vec<f32>);
    impl ModuleVisitor for W {
        fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<D>>) {
            if p.val().is_require_grad() {
                self.0
                    .extend(p.val().into_data().try_to_vec::<f32>().unwrap());
            }
        }
    }
    let mut w = W(Vec::new());
    m.visit(&mut w);
    w.0
}

fn real_batch(cfg: &TrainConfig, device: &Device) -> Tensor<4> {
    let (c, r) = cfg.model.image_shape().unwrap();
    Tensor::random(
        [cfg.train.batch, c, r, r],
        Distribution::Uniform(-1.0, 1.0),
        device,
    )
}

#[test]
fn each_family_builds_steps_and_its_phases_touch_only_their_network() {
    for preset in FAMILIES {
        let cfg = TrainConfig::load(preset, &[]).unwrap();
        let mut t = GanTrainer::new(cfg.clone(), &Device::flex());
        let real = real_batch(&cfg, t.device());
        let (g0, d0) = (weights(&t.g), weights(&t.d));
        assert!(
            !g0.is_empty() && !d0.is_empty(),
            "{preset}: no trainable weights"
        );
        let mut stats = StepStats::default();
        t.run_phase(Phase::DMain, real.clone(), None, &mut stats)
            .unwrap();
        let (g1, d1) = (weights(&t.g), weights(&t.d));
        assert_eq!(g0, g1, "{preset}: the D phase changed G");
        assert_ne!(d0, d1, "{preset}: the D phase left D unchanged");
        t.run_phase(Phase::GMain, real.clone(), None, &mut stats)
            .unwrap();
        let (g2, d2) = (weights(&t.g), weights(&t.d));
        assert_eq!(d1, d2, "{preset}: the G phase changed D");
        assert_ne!(g1, g2, "{preset}: the G phase left G unchanged");
        // The G phase runs D untracked on a copy; D itself still trains.
        t.run_phase(Phase::DMain, real.clone(), None, &mut stats)
            .unwrap();
        assert_ne!(
            d2,
            weights(&t.d),
            "{preset}: D stopped training after a G phase"
        );
        let s = t.train_step(real, None).unwrap();
        for v in [s.d_loss, s.g_loss, s.d_real, s.d_fake] {
            assert!(v.is_finite(), "{preset}: {s:?}");
        }
    }
}

#[test]
fn biggan_steps_g_every_d_steps_and_averages_its_batch_norm_statistics() {
    let cfg = TrainConfig::load("biggan-tiny", &[]).unwrap();
    assert_eq!(cfg.train.d_steps, 2);
    let mut t = GanTrainer::new(cfg.clone(), &Device::flex());
    assert_eq!(t.phases(1), [Phase::DMain]);
    assert_eq!(t.phases(2), [Phase::DMain, Phase::GMain]);
    let real = real_batch(&cfg, t.device());
    let g0 = weights(&t.g);
    t.train_step(real.clone(), None).unwrap();
    assert_eq!(weights(&t.g), g0, "step 1 is a D step only");
    t.train_step(real, None).unwrap();
    assert_ne!(weights(&t.g), g0, "step 2 steps G");
    // The average carries batch-norm statistics of its own, averaged like the weights: they
    // moved off their initial zeros but lag G's.
    let mean = |g: &Generator| match g {
        Generator::Big(b) => b
            .output_bn
            .stored_mean
            .value()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap(),
        _ => unreachable!(),
    };
    let (g_stats, avg_stats) = (mean(&t.g.valid()), mean(t.g_ema.as_ref().unwrap()));
    assert!(avg_stats.iter().all(|v| v.is_finite()) && avg_stats.iter().any(|v| *v != 0.0));
    assert_ne!(avg_stats, g_stats);
}

#[test]
fn the_r1_phase_updates_only_d_and_logs_the_gradient_norm() {
    let cfg = TrainConfig::load("stylegan-tiny", &[]).unwrap();
    let mut t = GanTrainer::new(cfg.clone(), &Device::flex());
    assert_eq!(t.phases(1), [Phase::DMain, Phase::GMain]);
    assert_eq!(t.phases(2), [Phase::DMain, Phase::DReg, Phase::GMain]);
    let real = real_batch(&cfg, t.device());
    let (g0, d0) = (weights(&t.g), weights(&t.d));
    let mut stats = StepStats::default();
    t.run_phase(Phase::DReg, real, None, &mut stats).unwrap();
    assert_eq!(weights(&t.g), g0);
    assert_ne!(weights(&t.d), d0);
    assert!(stats.r1.unwrap() > 0.0);
}

/// With DiffAugment, D must still score reals and fakes as separate batches: StyleGAN's D takes
/// the standard deviation over its batch, so a joint batch would let the fakes change the
/// reals' logits (and hide a collapsed G from D).
#[test]
fn with_diffaugment_the_fakes_do_not_change_the_logits_of_the_reals() {
    let set = ["model.diffaugment=color,translation,cutout".to_string()];
    let cfg = TrainConfig::load("stylegan-tiny", &set).unwrap();
    let mut a = GanTrainer::new(cfg.clone(), &Device::flex());
    let mut b = GanTrainer::new(cfg.clone(), &Device::flex());
    let mut other = cfg.clone();
    other.train.seed = 1;
    b.g = GanTrainer::new(other, &Device::flex()).g;
    let real = real_batch(&cfg, a.device());
    let (mut sa, mut sb) = (StepStats::default(), StepStats::default());
    a.run_phase(Phase::DMain, real.clone(), None, &mut sa)
        .unwrap();
    b.run_phase(Phase::DMain, real, None, &mut sb).unwrap();
    assert_ne!(sa.d_fake, sb.d_fake, "the two generators differ");
    assert_eq!(sa.d_real, sb.d_real);
}

fn stats_lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p.join("stats.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let keys = ["step", "d_loss", "g_loss", "r1", "ada_p", "ada_rt"];
            keys.map(|k| v[k].to_string()).join(" ")
        })
        .collect()
}

fn load_raw(cfg: &TrainConfig, ckpt: &Path, device: &Device) -> (Generator, Vec<f32>) {
    let (g, d) = cfg
        .model
        .init_gan(cfg.train.progressive, &mut Rng::new(5), device)
        .unwrap();
    let g = load_module(g, &ckpt.join(files::GENERATOR)).unwrap();
    let d = load_module(d, &ckpt.join(files::DISCRIMINATOR)).unwrap();
    let dp = params(&d);
    (g, dp)
}

fn resume_is_exact(preset: &str, set: &[String]) {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("straight"), tmp.path().join("resumed"));
    run(preset, &a, 4, false, set);
    run(preset, &b, 2, false, set);
    run(preset, &b, 4, true, &[]);
    let device = Device::flex();
    let (_, ga, _) = sample::load_generator(&a, None, &device).unwrap();
    let (_, gb, ckpt) = sample::load_generator(&b, None, &device).unwrap();
    assert!(ckpt.ends_with("step-0000004"));
    let pa = params(&ga);
    assert_eq!(
        pa,
        params(&gb),
        "{preset}: sampling generators differ after resume"
    );
    // G moved away from its initialisation, so equality is not trivial.
    let cfg = TrainConfig::load(preset, set).unwrap();
    let init = GanTrainer::new(cfg.clone(), &device);
    assert_ne!(params(&init.g), pa);
    let (raw_a, da) = load_raw(&cfg, &a.join("checkpoints/step-0000004"), &device);
    let (raw_b, db) = load_raw(&cfg, &b.join("checkpoints/step-0000004"), &device);
    assert_eq!(da, db, "{preset}: discriminators differ");
    let raw = params(&raw_a);
    assert_eq!(raw, params(&raw_b), "{preset}: raw generators differ");
    if cfg.train.ema_decay > 0.0 {
        assert_ne!(raw, pa, "{preset}: the average should lag the generator");
    }
    let state = |p: &Path| std::fs::read(p.join("checkpoints/step-0000004/state.json")).unwrap();
    assert_eq!(state(&a), state(&b), "{preset}: step / rng state differ");
    let z = sample::latents(4, cfg.model.z_dim().unwrap(), 9, &device);
    let (ia, ib) = (ga.forward(z.clone(), None), gb.forward(z, None));
    assert_eq!(ia.clone().into_data(), ib.into_data());
    // Sampling works: the right shape, finite, and a sample grid was written at the end.
    let (c, r) = cfg.model.image_shape().unwrap();
    assert_eq!(ia.dims(), [4, c, r, r]);
    assert!(ia.is_finite().all().into_scalar::<bool>());
    assert!(b.join("samples/step-0000004.png").is_file());
    assert_eq!(
        stats_lines(&a),
        stats_lines(&b),
        "{preset}: logged losses differ"
    );
}

#[test]
fn resume_is_exact_for_every_family() {
    for preset in FAMILIES {
        resume_is_exact(preset, &[]);
    }
    // StyleGAN on Progressive GAN's schedule, stopped mid-fade-in as pggan-tiny.
    resume_is_exact("stylegan-tiny", &stylegan_growing());
    // StyleGAN2's weight demodulation in place of AdaIN.
    resume_is_exact(
        "stylegan-tiny",
        &["model.synthesis=demodulation".to_string()],
    );
    // ADA, p updated every 3 steps: the resume at step 2 falls mid-interval, so the gathered
    // signs must survive it; p jumps past 1 at step 3 (0.001 kimg), so step 4 augments.
    for preset in ["dcgan-tiny", "stylegan2-tiny"] {
        resume_is_exact(preset, &ada());
    }
    // ViTGAN's G with StyleGAN2's D, and with its own D stripped of ISN.
    resume_is_exact(
        "vitgan-tiny",
        &["model.discriminator=stylegan2".to_string()],
    );
    resume_is_exact("vitgan-tiny", &["model.d_isn=false".to_string()]);
}

fn ada() -> Vec<String> {
    [
        "train.augment=ada",
        "train.ada_kimg=0.001",
        "train.ada_interval=3",
        "train.ada_target=0",
    ]
    .map(String::from)
    .to_vec()
}

/// ADA reaches both of D's inputs: at p = 1 the reals' and the fakes' logits change, at p = 0
/// the step is exactly the unaugmented one (no draws, nothing applied); and p is logged.
#[test]
fn ada_augments_reals_and_fakes_and_p_zero_is_plain() {
    let plain = TrainConfig::load("stylegan2-tiny", &["train.augment=none".to_string()]).unwrap();
    let fixed = |p: &str| {
        let set = [
            "train.augment=fixed".to_string(),
            format!("train.ada_p={p}"),
        ];
        TrainConfig::load("stylegan2-tiny", &set).unwrap()
    };
    let real = real_batch(&plain, &Device::flex());
    let d_step = |cfg: TrainConfig| {
        let mut t = GanTrainer::new(cfg, &Device::flex());
        let mut s = StepStats::default();
        t.run_phase(Phase::DMain, real.clone(), None, &mut s)
            .unwrap();
        s
    };
    let (none, p0, p1) = (d_step(plain), d_step(fixed("0")), d_step(fixed("1")));
    assert_eq!((none.d_real, none.d_fake), (p0.d_real, p0.d_fake));
    assert_ne!(none.d_real, p1.d_real, "reals augmented");
    assert_ne!(none.d_fake, p1.d_fake, "fakes augmented");
    let mut t = GanTrainer::new(fixed("1"), &Device::flex());
    let s = t.train_step(real, None).unwrap();
    assert_eq!(s.ada_p, Some(1.0));
}

/// stylegan-tiny growing from 4x4 on pggan-tiny's schedule.
fn stylegan_growing() -> Vec<String> {
    [
        "train.progressive=true",
        "train.stabilise_kimg=0.004",
        "train.transition_kimg=0.012",
        "train.batch_by_resolution={ 8 = 4 }",
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn resume_falls_back_past_a_corrupt_latest_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("straight"), tmp.path().join("broken"));
    run("stylegan-tiny", &a, 6, false, &[]);
    run("stylegan-tiny", &b, 4, false, &[]);
    // A crash mid-copy, or a bad disk: step 4's generator is cut short.
    let bad = b.join("checkpoints/step-0000004").join(files::GENERATOR);
    let bytes = std::fs::read(&bad).unwrap();
    std::fs::write(&bad, &bytes[..bytes.len() / 3]).unwrap();
    struct Log(Vec<String>);
    impl genforge::train::Progress for Log {
        fn start(&mut self, _: &Path, _: u64, _: u64) {}
        fn step(&mut self, _: u64, _: &[(&'static str, f64)], _: f64) {}
        fn message(&mut self, m: &str) {
            self.0.push(m.to_string());
        }
        fn finish(&mut self) {}
    }
    let mut log = Log(Vec::new());
    train(
        TrainOptions {
            source: RunSource::Resume {
                run_dir: b.clone(),
                overrides: vec![],
            },
            steps: Some(6),
            device: Device::flex(),
            stop: None,
        },
        &mut log,
    )
    .unwrap();
    let warning = log
        .0
        .iter()
        .find(|m| m.contains("warning"))
        .expect("a warning");
    assert!(warning.contains("generator.bpk"), "{warning}");
    assert!(
        log.0.iter().any(|m| m.contains("from step 2")),
        "{:?}",
        log.0
    );
    // Resumed from step 2, the run still ends exactly where a straight run does.
    let device = Device::flex();
    let (_, ga, _) = sample::load_generator(&a, None, &device).unwrap();
    let (_, gb, _) = sample::load_generator(&b, None, &device).unwrap();
    assert_eq!(params(&ga), params(&gb));
    // Every checkpoint unusable: the error names the file, and nothing is overwritten.
    let c = tmp.path().join("hopeless");
    run("dcgan-tiny", &c, 2, false, &[]);
    std::fs::write(c.join("checkpoints/step-0000002/state.json"), b"{").unwrap();
    let err = train_from(
        RunSource::Resume {
            run_dir: c.clone(),
            overrides: vec![],
        },
        4,
    )
    .unwrap_err();
    assert!(err.to_string().contains("state.json"), "{err}");
}

#[test]
fn a_branch_continues_a_checkpoint_exactly_and_leaves_its_source_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let (straight, source, branch) = (
        tmp.path().join("straight"),
        tmp.path().join("source"),
        tmp.path().join("branch"),
    );
    // Two steps at G's learning rate 0.01, then two at 0.002 (straight), or at 0.01 again (the
    // source, from which the branch takes step 2 and goes on at 0.002).
    let set = ["train.eval_every=1", "train.eval_n=10", "train.g_lr=0.01"].map(String::from);
    for (dir, lr) in [(&straight, "0.002"), (&source, "0.01")] {
        run("stylegan-tiny", dir, 2, false, &set);
        train_from(
            RunSource::Resume {
                run_dir: dir.clone(),
                overrides: vec![format!("train.g_lr={lr}")],
            },
            4,
        )
        .unwrap();
    }
    let files_of = |dir: &Path| -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(d) = todo.pop() {
            for e in std::fs::read_dir(d).unwrap().flatten() {
                if e.path().is_dir() {
                    todo.push(e.path());
                } else {
                    out.push((e.path(), std::fs::read(e.path()).unwrap()));
                }
            }
        }
        out.sort();
        out
    };
    let before = files_of(&source);
    let checkpoint = source.join("checkpoints/step-0000002");
    let branched = |overrides: &[&str], dir: &Path| {
        train_from(
            RunSource::Branch {
                checkpoint: checkpoint.clone(),
                run_dir: Some(dir.to_path_buf()),
                runs_root: tmp.path().to_path_buf(),
                overrides: overrides.iter().map(|s| s.to_string()).collect(),
            },
            4,
        )
    };
    branched(&["train.g_lr=0.002"], &branch).unwrap();
    assert_eq!(before, files_of(&source), "the source run was modified");
    let device = Device::flex();
    let (_, ga, _) = sample::load_generator(&straight, None, &device).unwrap();
    let (_, gb, _) = sample::load_generator(&branch, None, &device).unwrap();
    assert_eq!(
        params(&ga),
        params(&gb),
        "the branch differs from the straight run"
    );
    let (_, gs, _) = sample::load_generator(&source, None, &device).unwrap();
    assert_ne!(
        params(&ga),
        params(&gs),
        "the source's own steps 3-4 should differ"
    );
    assert_eq!(stats_lines(&straight), stats_lines(&branch));
    let grids = |d: &Path| -> Vec<_> {
        let mut names: Vec<_> = std::fs::read_dir(d.join("samples"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    assert_eq!(grids(&straight), grids(&branch));
    assert!(grids(&branch).len() >= 3, "{:?}", grids(&branch));
    // checkpoints/best is the source's when chosen by step 2, else from the branch's own
    // evaluations: either way the lowest FID of the evaluations it covers.
    let evals: Vec<(u64, f64)> = std::fs::read_to_string(branch.join("stats.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|v| Some((v["step"].as_u64()?, v.get("fid")?.as_f64()?)))
        .collect();
    assert_eq!(evals.len(), 4);
    let record = |d: &Path| genforge::run::checkpoint::best_record(d).unwrap();
    let first = if record(&source).0 <= 2 { 1 } else { 3 };
    let lowest = evals
        .iter()
        .filter(|e| e.0 >= first)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert_eq!(record(&branch), *lowest);
    // A changed model, a path that is not a checkpoint, or a taken directory: an error, and
    // no run directory left behind.
    let refused = tmp.path().join("refused");
    let err = branched(&["model.z_dim=9"], &refused).unwrap_err();
    assert!(err.to_string().contains("model.z_dim"), "{err}");
    assert!(!refused.exists());
    let err = train_from(
        RunSource::Branch {
            checkpoint: source.join("samples"),
            run_dir: Some(refused.clone()),
            runs_root: tmp.path().to_path_buf(),
            overrides: vec![],
        },
        4,
    )
    .unwrap_err();
    assert!(err.to_string().contains("is not a checkpoint"), "{err}");
    assert!(!refused.exists());
    let err = branched(&[], &branch).unwrap_err();
    assert!(err.to_string().contains("already holds a run"), "{err}");
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
    let err = train_from(source, 4).unwrap_err();
    assert!(err.to_string().contains("model.z_dim"), "{err}");
}

#[test]
fn a_growing_run_follows_its_schedule_and_resumes_mid_fade_in() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("grow");
    run("pggan-tiny", &dir, 4, false, &[]);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("stats.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let col = |k: &str| -> Vec<f64> { lines.iter().map(|v| v[k].as_f64().unwrap()).collect() };
    // 4x4 for one step of 8, then the 8x8 fade-in with its batch of 4, stable at step 4.
    assert_eq!(col("resolution"), [4.0, 8.0, 8.0, 8.0]);
    assert_eq!(col("images_seen"), [8.0, 12.0, 16.0, 20.0]);
    let alpha = col("alpha");
    assert_eq!((alpha[0], alpha[3]), (1.0, 1.0));
    assert!((alpha[1] - 1.0 / 3.0).abs() < 1e-9 && (alpha[2] - 2.0 / 3.0).abs() < 1e-9);
    assert!(col("gp").iter().all(|v| v.is_finite() && *v >= 0.0));
    // The step-2 checkpoint is mid-fade-in (the resume test of the family table resumes from
    // it); sampling it uses the level it was trained at, at the final size.
    let device = Device::flex();
    let ckpt = dir.join("checkpoints/step-0000002");
    let (cfg, g, _) = sample::load_generator(&dir, Some(&ckpt), &device).unwrap();
    let Generator::Pg(pg) = &g else {
        panic!("a pggan run")
    };
    assert_eq!(pg.level, 1);
    assert!((pg.alpha - 1.0 / 3.0).abs() < 1e-9);
    let z = sample::latents(2, cfg.model.z_dim().unwrap(), 1, &device);
    assert_eq!(g.forward(z, None).dims(), [2, 1, 16, 16]);
    // Every snapshot grid has the final size, whatever the resolution then.
    let size = |p: &str| image::image_dimensions(dir.join("samples").join(p)).unwrap();
    assert_eq!(size("step-0000002.png"), size("step-0000004.png"));
}

/// A run's `sample.psi` is the truncation `genforge sample` and `genforge eval` draw at when the
/// command line gives none; a given psi wins.
#[test]
fn a_runs_sample_psi_is_the_default_truncation() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    run("stylegan2-tiny", &dir, 2, false, &["sample.psi=0.5".into()]);
    let device = Device::flex();
    let (cfg, g, _) = sample::load_generator(&dir, None, &device).unwrap();
    assert_eq!(cfg.sample.psi, 0.5);
    let images = |psi| {
        let req = sample::GanRequest {
            n: 2,
            seed: 3,
            psi,
            cutoff: None,
            class: None,
            truncation: None,
            run_dir: &dir,
        };
        sample::generate(&cfg, &g, &req).unwrap().into_data()
    };
    assert_eq!(images(None), images(Some(0.5)));
    assert_ne!(images(None), images(Some(1.0)));
    let setting = |psi| {
        let (_, drawn, _) =
            sample::Generated::load(&dir, None, None, psi, None, None, &device).unwrap();
        drawn.setting()
    };
    assert_eq!(setting(None), ("psi", 0.5));
    assert_eq!(setting(Some(1.0)), ("psi", 1.0));
}

/// Replace text in a run's saved `config.toml`, as a user editing its `[sample]` settings.
fn rewrite_config(dir: &Path, edits: &[(&str, &str)]) {
    let path = dir.join("config.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "{from} not in {}", path.display());
        text = text.replace(from, to);
    }
    std::fs::write(path, text).unwrap();
}

/// A BigGAN run's `sample.z_var` and `sample.standing_stats` reach what `genforge eval` and
/// `genforge sample` draw from: the same weights give G with standing statistics, fed the unit
/// latents scaled by `sqrt(z_var)`.
#[test]
fn a_biggan_runs_latent_variance_and_standing_stats_reach_its_samplers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    run("biggan-tiny", &dir, 2, false, &[]);
    let device = Device::flex();
    let big = |g: Generator| match g {
        Generator::Big(g) => g,
        _ => panic!("a BigGAN run"),
    };
    let (cfg, raw, _) = sample::load_generator(&dir, None, &device).unwrap();
    let raw = big(raw);
    rewrite_config(
        &dir,
        &[
            ("z_var = 1.0", "z_var = 1.44"),
            ("standing_stats = 0", "standing_stats = 2"),
        ],
    );
    let (_, g, _) = sample::load_generator(&dir, None, &device).unwrap();
    let g = big(g);
    let mean =
        |g: &genforge::models::biggan::Generator| g.output_bn.stored_mean.value().into_data();
    let want = raw
        .clone()
        .with_standing_stats(2, cfg.train.batch, cfg.train.seed);
    assert_eq!(mean(&g), mean(&want));
    assert_ne!(mean(&g), mean(&raw));
    let (_, drawn, _) =
        sample::Generated::load(&dir, None, None, None, None, None, &device).unwrap();
    assert_eq!(drawn.setting(), ("z_var", 1.44));
    let (n, seed, z_dim) = (4, 3, cfg.model.z_dim().unwrap());
    let z: Vec<_> = (0..n)
        .map(|i| sample::latents(1, z_dim, sample::per_image_seed(seed, i), &device))
        .collect();
    let classes = cfg.model.num_classes().unwrap();
    let y: Vec<i64> = (0..n).map(|i| (i % classes) as i64).collect();
    let y = Tensor::from_data(genforge::burn::tensor::TensorData::new(y, [n]), &device);
    let expected = want.forward(Tensor::cat(z, 0) * 1.2, y);
    let got = drawn.batch(0, n, seed, &device).unwrap();
    let diff = (got - expected).abs().max().into_scalar::<f32>();
    assert!(diff < 1e-5, "eval's images differ from G(1.2 z) by {diff}");
}

/// `sample.z_var` of a generator that takes `z` as drawn (ViTGAN with latent tokens) reaches
/// `genforge sample` and `genforge eval`: both draw G(sqrt(z_var) z).
#[test]
fn a_vitgan_runs_latent_variance_reaches_its_samplers() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    run("vitgan-tiny", &dir, 1, false, &[]);
    let device = Device::flex();
    rewrite_config(&dir, &[("z_var = 1.0", "z_var = 0.64")]);
    let (cfg, g, _) = sample::load_generator(&dir, None, &device).unwrap();
    assert_eq!(cfg.sample.z_var, 0.64);
    let (n, seed, z_dim) = (3, 5, cfg.model.z_dim().unwrap());
    let close = |a: Tensor<4>, b: Tensor<4>, what: &str| {
        let diff = (a - b).abs().max().into_scalar::<f32>();
        assert!(diff < 1e-5, "{what} differs from G(0.8 z) by {diff}");
    };
    let req = sample::GanRequest {
        n,
        seed,
        psi: None,
        cutoff: None,
        class: None,
        truncation: None,
        run_dir: &dir,
    };
    let unit = sample::latents(n, z_dim, seed, &device);
    close(
        sample::generate(&cfg, &g, &req).unwrap(),
        g.forward(unit.clone() * 0.8, None),
        "genforge sample",
    );
    assert_ne!(
        sample::generate(&cfg, &g, &req).unwrap().into_data(),
        g.forward(unit, None).into_data()
    );
    let (_, drawn, _) =
        sample::Generated::load(&dir, None, None, None, None, None, &device).unwrap();
    assert_eq!(drawn.setting(), ("z_var", 0.64));
    let z: Vec<_> = (0..n)
        .map(|i| sample::latents(1, z_dim, sample::per_image_seed(seed, i), &device))
        .collect();
    close(
        drawn.batch(0, n, seed, &device).unwrap(),
        g.forward(Tensor::cat(z, 0) * 0.8, None),
        "genforge eval",
    );
}

/// Evaluations during training (`train.eval_every`, which the digit and emoji presets turn on for
/// their FID-against-time curves) draw from streams of their own: every family's weights and
/// logged losses are those of the same run without them.
#[test]
fn evaluating_during_training_leaves_the_training_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let device = Device::flex();
    // stats.jsonl split into its evaluations and its step lines, the timings left out.
    let stats = |dir: &Path| -> (usize, Vec<serde_json::Value>) {
        let text = std::fs::read_to_string(dir.join("stats.jsonl")).unwrap();
        let (evals, steps): (Vec<_>, Vec<_>) = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .partition(|v| v.get("fid").is_some());
        let steps = steps
            .into_iter()
            .map(|mut v| {
                let m = v.as_object_mut().unwrap();
                m.remove("img_per_s");
                m.remove("sec_per_step");
                v
            })
            .collect();
        (evals.len(), steps)
    };
    for preset in FAMILIES {
        let (plain, evaluated) = (
            tmp.path().join(preset),
            tmp.path().join(format!("{preset}-eval")),
        );
        run(preset, &plain, 3, false, &[]);
        let set = ["train.eval_every=1", "train.eval_n=10"].map(String::from);
        run(preset, &evaluated, 3, false, &set);
        let ((none, logged), (evals, logged_evaluated)) = (stats(&plain), stats(&evaluated));
        assert_eq!((none, evals), (0, 3), "{preset}: one evaluation per step");
        let cfg = TrainConfig::load(preset, &[]).unwrap();
        let ckpt = "checkpoints/step-0000003";
        let (ga, da) = load_raw(&cfg, &plain.join(ckpt), &device);
        let (gb, db) = load_raw(&cfg, &evaluated.join(ckpt), &device);
        assert_eq!(params(&ga), params(&gb), "{preset}: G differs");
        assert_eq!(da, db, "{preset}: D differs");
        assert!(!logged.is_empty() && logged.iter().all(|v| v.get("d_loss").is_some()));
        assert_eq!(logged, logged_evaluated, "{preset}: logged losses differ");
    }
}
