//! End-to-end: the `genforge` binary as a user runs it.

use std::path::Path;
use std::process::{Command, Output};

/// Overrides that train on 12 synthetic colour shapes instead of the grey digits.
const SHAPES_RGB: [&str; 8] = [
    "--set",
    "data.format=shapes",
    "--set",
    "data.classes=[]",
    "--set",
    "data.limit=4",
    "--set",
    "model.channels=3",
];

fn genforge(args: &[&str]) -> Output {
    genforge_env(args, &[])
}

/// [`genforge`] with environment variables set.
fn genforge_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_genforge"));
    cmd.args(args).env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("binary runs")
}

/// Run and require success, showing stderr otherwise.
fn genforge_ok(args: &[&str]) -> Output {
    let o = genforge(args);
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn png_size(p: &Path) -> (u32, u32) {
    let b = std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n");
    (
        u32::from_be_bytes(b[16..20].try_into().unwrap()),
        u32::from_be_bytes(b[20..24].try_into().unwrap()),
    )
}

fn assert_clean_failure(o: &Output, needle: &str) {
    let err = stderr(o);
    assert!(!o.status.success(), "expected failure: {err}");
    assert!(err.contains(needle), "stderr lacks '{needle}': {err}");
    assert!(
        !err.contains("panicked"),
        "panic instead of an error: {err}"
    );
}

#[test]
fn train_sample_and_resume_a_tiny_dcgan() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let r = run.to_str().unwrap();
    let o = genforge(&["train", "dcgan-tiny", "--run-dir", r, "--steps", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));

    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        cfg.contains("family = \"dcgan\"") && cfg.contains("steps = 4"),
        "{cfg}"
    );
    let stats: Vec<serde_json::Value> = std::fs::read_to_string(run.join("stats.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(stats.len(), 4);
    for (i, s) in stats.iter().enumerate() {
        assert_eq!(s["step"], (i + 1) as u64);
        assert_eq!(s["images_seen"], 8 * (i + 1) as u64);
        for k in ["d_loss", "g_loss", "sec_per_step", "img_per_s"] {
            assert!(s[k].as_f64().unwrap().is_finite(), "{k} in {s}");
        }
    }
    // 16 images of 32x32 in a 4x4 grid with 2-pixel borders.
    assert_eq!(
        png_size(&run.join("samples/step-0000002.png")),
        (4 * 34 + 2, 4 * 34 + 2)
    );
    assert!(run.join("samples/step-0000004.png").exists());
    assert!(run.join("samples/reals.png").exists());
    let ckpts: Vec<String> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut ckpts = ckpts;
    ckpts.sort();
    assert_eq!(ckpts, vec!["step-0000002", "step-0000004"]);

    // Sampling: a grid, then one file per image.
    let grid = tmp.path().join("grid.png");
    let o = genforge(&["sample", r, "--n", "6", "--out", grid.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(png_size(&grid), (3 * 34 + 2, 2 * 34 + 2));
    let each = tmp.path().join("each/");
    let o = genforge(&["sample", r, "--n", "3", "--out", each.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(png_size(&each.join("000002.png")), (32, 32));

    // Resume to 6 steps; a changed model is refused by name.
    let o = genforge(&["train", "--resume", r, "--steps", "6"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(run.join("checkpoints/step-0000006").exists());
    let o = genforge(&[
        "train",
        "--resume",
        r,
        "--steps",
        "8",
        "--set",
        "model.width=4",
    ]);
    assert_clean_failure(&o, "model.width");
    // --attention needs attention layers.
    let o = genforge(&["sample", r, "--attention", "--out", grid.to_str().unwrap()]);
    assert_clean_failure(&o, "sagan");
}

#[test]
fn sagan_attention_figure() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let r = run.to_str().unwrap();
    let o = genforge(&["train", "sagan-tiny", "--run-dir", r, "--steps", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let fig = tmp.path().join("attn.png");
    let o = genforge(&["sample", r, "--attention", "--out", fig.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    // 5 panels of 32x32 on two rows, enlarged 4x.
    assert_eq!(png_size(&fig), (4 * (5 * 34 + 2), 4 * (2 * 34 + 2)));
}

#[test]
fn vitgan_trains_samples_and_draws_attention_of_g_and_d() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let r = run.to_str().unwrap();
    let mut args = vec!["train", "vitgan-tiny", "--run-dir", r, "--steps", "2"];
    args.extend(SHAPES_RGB);
    let o = genforge(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        run.join("checkpoints/step-0000002/generator_ema.bpk")
            .is_file()
    );
    let grid = tmp.path().join("grid.png");
    let o = genforge(&["sample", r, "--n", "4", "--out", grid.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    for net in ["g", "d"] {
        let fig = tmp.path().join(format!("attn-{net}.png"));
        let o = genforge(&[
            "sample",
            r,
            "--attention",
            net,
            "--out",
            fig.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        // 5 images of 16x16 above one map per head (2 heads), enlarged 8x.
        assert_eq!(png_size(&fig), (8 * (5 * 18 + 2), 8 * (3 * 18 + 2)));
    }
    let o = genforge(&[
        "sample",
        r,
        "--attention",
        "x",
        "--out",
        grid.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, "g or d");
    // A width the heads do not divide is a config error, not a panic.
    let bad = tmp.path().join("bad");
    let o = genforge(&[
        "train",
        "vitgan-tiny",
        "--run-dir",
        bad.to_str().unwrap(),
        "--set",
        "model.heads=3",
    ]);
    assert_clean_failure(&o, "model.heads");
    assert!(!bad.exists());
}

#[test]
fn bad_input_gives_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("r");
    let r = r.to_str().unwrap();
    let o = genforge(&[
        "train",
        "dcgan-tiny",
        "--run-dir",
        r,
        "--set",
        "train.stepz=3",
    ]);
    assert_clean_failure(&o, "Valid keys");
    let o = genforge(&["train", "no-such-preset"]);
    assert_clean_failure(&o, "neither a preset");
    let o = genforge(&[
        "train",
        "dcgan-tiny",
        "--run-dir",
        r,
        "--set",
        "data.path=/nonexistent/mnist",
    ]);
    assert_clean_failure(&o, "/nonexistent/mnist");
    assert!(
        !Path::new(r).exists(),
        "a failed start left a run directory behind"
    );
    let o = genforge(&[
        "train",
        "dcgan-tiny",
        "--run-dir",
        &format!("{r}2"),
        "--set",
        "data.classes=[42]",
    ]);
    assert_clean_failure(&o, "leaves no images");
    let o = genforge(&["sample", tmp.path().to_str().unwrap()]);
    assert_clean_failure(&o, "not a genforge run directory");
    let o = genforge(&[
        "train",
        "dcgan-tiny",
        "--device",
        "vulkan",
        "--run-dir",
        &format!("{r}3"),
    ]);
    if !cfg!(feature = "vulkan") {
        assert_clean_failure(&o, "vulkan");
    }
    let o = genforge(&[
        "train",
        "dcgan-tiny",
        "--device",
        "cuda",
        "--run-dir",
        &format!("{r}4"),
    ]);
    if !cfg!(feature = "cuda") {
        assert_clean_failure(&o, "prepare_cuda_llvm.sh");
    }
    // A diverging run stops with a message and keeps its last good checkpoint.
    let d = tmp.path().join("nan");
    let ds = d.to_str().unwrap();
    let o = genforge(&["train", "dcgan-tiny", "--run-dir", ds, "--steps", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = genforge(&[
        "train",
        "--resume",
        ds,
        "--steps",
        "40",
        "--set",
        "train.d_lr=1e30",
        "train.g_lr=1e30", // one --set takes several pairs
    ]);
    assert_clean_failure(&o, "diverged");
    let kept: Vec<String> = std::fs::read_dir(d.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(kept, vec!["step-0000002"]);
}

#[test]
fn colour_model_on_synthetic_shapes() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let mut args = vec!["train", "dcgan-tiny", "--run-dir", run.to_str().unwrap()];
    args.extend(["--steps", "1"]);
    args.extend(SHAPES_RGB);
    let o = genforge(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["samples/reals.png", "samples/step-0000001.png"] {
        let b = std::fs::read(run.join(f)).unwrap();
        assert_eq!(b[25], 2, "{f} is not an RGB PNG"); // IHDR colour type 2 = truecolour
    }
}

#[test]
fn stylegan_trains_and_draws_every_figure() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let r = run.to_str().unwrap();
    genforge_ok(&["train", "stylegan-tiny", "--run-dir", r, "--steps", "2"]);
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        cfg.contains("family = \"stylegan\"") && !cfg.contains("codebook_size"),
        "{cfg}"
    );
    let stats = std::fs::read_to_string(run.join("stats.jsonl")).unwrap();
    assert!(stats.contains("\"r1\""), "R1 runs at step 2: {stats}");
    let out = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    // 16x16 images with 2 pixels of padding; the tiny network has 6 style layers.
    genforge_ok(&[
        "sample",
        r,
        "--n",
        "4",
        "--psi",
        "0.5",
        "--cutoff",
        "2",
        "--out",
        &out("s.png"),
    ]);
    assert_eq!(png_size(Path::new(&out("s.png"))), (2 * 18 + 2, 2 * 18 + 2));
    // On a StyleGAN run --sweep varies psi.
    genforge_ok(&[
        "eval",
        r,
        "--n",
        "30",
        "--metrics",
        "fid",
        "--no-cache",
        "--sweep",
        "1,0.5",
    ]);
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(
        metrics.contains("\"psi\":0.5") && metrics.contains("\"sweep\""),
        "{metrics}"
    );
    genforge_ok(&[
        "truncation",
        r,
        "--seeds",
        "0,1",
        "--psi",
        "-1,0,1",
        "--out",
        &out("t.png"),
    ]);
    assert_eq!(png_size(Path::new(&out("t.png"))), (3 * 18 + 2, 2 * 18 + 2));
    genforge_ok(&[
        "mix",
        r,
        "--a",
        "0,1,2",
        "--b",
        "3,4",
        "--styles",
        "fine",
        "--out",
        &out("m.png"),
    ]);
    assert_eq!(png_size(Path::new(&out("m.png"))), (4 * 18 + 2, 3 * 18 + 2));
    genforge_ok(&[
        "noise",
        r,
        "--seeds",
        "0",
        "--draws",
        "4",
        "--out",
        &out("n.png"),
    ]);
    assert_eq!(png_size(Path::new(&out("n.png"))), (7 * 18 + 2, 18 + 2));
    genforge_ok(&[
        "morph",
        r,
        "--a",
        "0",
        "--b",
        "1",
        "--frames",
        "5",
        "--out",
        &out("morph.png"),
    ]);
    assert_eq!(png_size(Path::new(&out("morph.png"))), (5 * 18 + 2, 18 + 2));
    let gif = std::fs::read(out("morph.gif")).unwrap();
    assert_eq!(&gif[..6], b"GIF89a");
    // Bad input: one clear line each.
    let o = genforge(&["sample", r, "--psi", "5", "--out", &out("x.png")]);
    assert_clean_failure(&o, "psi");
    let o = genforge(&["truncation", r, "--cutoff", "9", "--out", &out("x.png")]);
    assert_clean_failure(&o, "6 style layers");
    let o = genforge(&["mix", r, "--styles", "2..9", "--out", &out("x.png")]);
    assert_clean_failure(&o, "6 style layers");
    let o = genforge(&["mix", r, "--styles", "middle", "--out", &out("x.png")]);
    assert_clean_failure(&o, "no middle styles");
    let other = tmp.path().join("dcgan");
    genforge_ok(&[
        "train",
        "dcgan-tiny",
        "--run-dir",
        other.to_str().unwrap(),
        "--steps",
        "1",
    ]);
    let o = genforge(&["morph", other.to_str().unwrap(), "--a", "0", "--b", "1"]);
    assert_clean_failure(&o, "needs a StyleGAN run");
    let o = genforge(&["sample", other.to_str().unwrap(), "--psi", "0.7"]);
    assert_clean_failure(&o, "StyleGAN");
    let o = genforge(&["train", "stylegan-tiny", "--set", "train.style_mixing=1.5"]);
    assert_clean_failure(&o, "train.style_mixing");
}

#[test]
fn eval_scores_a_run_and_two_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let r = run.to_str().unwrap();
    let cache = tmp.path().join("cache");
    let cache_env = ("GENFORGE_CACHE", cache.to_str().unwrap());
    genforge_ok(&["train", "dcgan-tiny", "--run-dir", r]);
    let eval = |extra: &[&str]| {
        let mut args = vec!["eval", r, "--n", "40", "--batch", "16"];
        args.extend_from_slice(extra);
        let o = Command::new(env!("CARGO_BIN_EXE_genforge"))
            .args(&args)
            .env(cache_env.0, cache_env.1)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        o
    };
    let o = eval(&[]);
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    for row in ["FID", "KID", "IS", "precision", "recall"] {
        assert!(table.contains(row), "{table}");
    }
    // Logs piped to a file carry no colour escapes.
    assert!(!stderr(&o).contains('\u{1b}'), "{}", stderr(&o));
    // The real features were cached; a second evaluation reads them and gives the same table.
    let cached = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with("data-"))
            .count()
    };
    assert_eq!(cached(&cache), 1);
    let again = eval(&[]);
    assert!(
        stderr(&again).contains("from the cache"),
        "{}",
        stderr(&again)
    );
    assert_eq!(String::from_utf8_lossy(&again.stdout), table);
    // The floor: the run's last 16 digits against its first 16, not appended to metrics.jsonl.
    let floor = eval(&["--floor"]);
    let floor = String::from_utf8_lossy(&floor.stdout).into_owned();
    assert!(floor.contains("16 held-out real vs 16 real"), "{floor}");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["step"], 4);
    assert_eq!(lines[0]["n_real"], 32); // dcgan-tiny trains on 32 digits
    assert_eq!(lines[0]["fid"], lines[1]["fid"]);

    // The run report: one self-contained HTML file.
    let o = genforge_ok(&["report", r]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("report.html"));
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    for part in [
        "<svg",
        "losses",
        "d_loss",
        "Samples over training",
        "step-0000004",
        "data:image/png;base64,",
        "<td>mnist</td>",
        "family = \"dcgan\"",
    ] {
        assert!(html.contains(part), "report lacks {part}");
    }
    assert!(
        !html.contains("src=\"/") && !html.contains("src=\"file:"),
        "external image links"
    );

    // Folder mode: the run's own samples against real digits written as PNGs.
    let fake = tmp.path().join("fake/");
    genforge_ok(&["sample", r, "--n", "24", "--out", fake.to_str().unwrap()]);
    let real = tmp.path().join("real");
    std::fs::create_dir_all(&real).unwrap();
    for (i, v) in [0u8, 60, 120, 180, 240, 30, 90, 150, 210, 20]
        .iter()
        .enumerate()
    {
        image_like(&real.join(format!("{i}.png")), *v);
    }
    let o = genforge_ok(&[
        "eval",
        "--real",
        real.to_str().unwrap(),
        "--fake",
        fake.to_str().unwrap(),
        "--metrics",
        "fid,pr",
        "--no-cache",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("24 generated vs 10 real"), "{out}");

    // Clear errors.
    assert_clean_failure(
        &genforge(&["eval", r, "--metrics", "fid,bogus"]),
        "unknown metric 'bogus'",
    );
    assert_clean_failure(
        &genforge(&["eval", r, "--metrics", "lpips"]),
        "with --real DIR and --fake DIR",
    );
    let o = Command::new(env!("CARGO_BIN_EXE_genforge"))
        .args(["eval", r, "--features", "inception"])
        .env("GENFORGE_CACHE", cache.to_str().unwrap())
        .env("TORCH_HOME", tmp.path())
        .env_remove("GENFORGE_INCEPTION")
        .output()
        .unwrap();
    assert_clean_failure(&o, "pt_inception-2015-12-05-6726825d.pth");
    assert!(
        stderr(&o).contains("https://github.com/mseitzer/pytorch-fid"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn biggan_trains_and_draws_its_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("big");
    let r = run.to_str().unwrap();
    genforge_ok(&["train", "biggan-tiny", "--run-dir", r]);
    let out = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    // 16x16 images, padding 2: a cell is 18 pixels.
    let one = out("sevens.png");
    genforge_ok(&[
        "sample",
        r,
        "--n",
        "4",
        "--class",
        "7",
        "--truncation",
        "0.5",
        "--out",
        &one,
    ]);
    assert_eq!(png_size(Path::new(&one)), (2 * 18 + 2, 2 * 18 + 2));
    let grid = out("classes.png");
    genforge_ok(&[
        "classes",
        r,
        "--classes",
        "7,8",
        "--per-class",
        "5",
        "--out",
        &grid,
    ]);
    assert_eq!(png_size(Path::new(&grid)), (5 * 18 + 2, 2 * 18 + 2));
    let sweep = out("threshold.png");
    genforge_ok(&[
        "threshold",
        r,
        "--class",
        "8",
        "--rows",
        "2",
        "--out",
        &sweep,
    ]);
    assert_eq!(png_size(Path::new(&sweep)), (9 * 18 + 2, 2 * 18 + 2));
    let morph = out("morph.png");
    genforge_ok(&[
        "class-morph",
        r,
        "--a-class",
        "7",
        "--b-class",
        "8",
        "--pairs",
        "2",
        "--frames",
        "4",
        "--out",
        &morph,
    ]);
    assert_eq!(png_size(Path::new(&morph)), (4 * 18 + 2, 2 * 18 + 2));
    assert_eq!(
        &std::fs::read(tmp.path().join("morph.gif")).unwrap()[..6],
        b"GIF89a"
    );
    // Scored overall and per class (the classes G draws in turn; the run's data has 7s and 8s).
    let o = genforge_ok(&["eval", r, "--n", "40", "--metrics", "fid", "--no-cache"]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("class 7 (4 / 16)"), "{table}");
    // The digit classifier judges whether each sample is the digit it was drawn for.
    assert!(table.contains("accuracy"), "{table}");
    // The truncation trade-off: one record per threshold under one sweep id, drawn by the report.
    let o = genforge_ok(&[
        "eval",
        r,
        "--n",
        "40",
        "--metrics",
        "fid,pr",
        "--no-cache",
        "--sweep",
        "1,0.5",
    ]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("precision") && table.lines().count() >= 3,
        "{table}"
    );
    let records: Vec<serde_json::Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let swept: Vec<&serde_json::Value> = records
        .iter()
        .filter(|e| e.get("sweep").is_some())
        .collect();
    assert_eq!(swept.len(), 2);
    assert_eq!(swept[0]["sweep"], swept[1]["sweep"]);
    assert_eq!(
        (
            swept[0]["truncation"].as_f64(),
            swept[1]["truncation"].as_f64()
        ),
        (Some(1.0), Some(0.5))
    );
    genforge_ok(&["report", r]);
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.contains("Truncation trade-off") && html.contains("truncation threshold"));
    // Clear errors.
    assert_clean_failure(
        &genforge(&["sample", r, "--class", "12"]),
        "unknown class '12'",
    );
    assert_clean_failure(
        &genforge(&["classes", r, "--truncation", "0"]),
        "threshold must be positive",
    );
    let dc = tmp.path().join("dc");
    genforge_ok(&["train", "dcgan-tiny", "--run-dir", dc.to_str().unwrap()]);
    assert_clean_failure(
        &genforge(&["classes", dc.to_str().unwrap()]),
        "needs a BigGAN run",
    );
    assert_clean_failure(
        &genforge(&["sample", dc.to_str().unwrap(), "--class", "1"]),
        "BigGAN's",
    );
    assert_clean_failure(
        &genforge(&["eval", dc.to_str().unwrap(), "--truncation", "0.5"]),
        "--truncation is BigGAN's",
    );
    // On a DCGAN run --sweep varies the latent variance sample.z_var, which must be positive.
    let sweep = |values: &str| {
        let d = dc.to_str().unwrap();
        let args = ["eval", d, "--n", "30", "--metrics", "fid", "--no-cache"];
        genforge(&[&args[..], &["--sweep", values]].concat())
    };
    assert!(sweep("1,0.5").status.success());
    let metrics = std::fs::read_to_string(dc.join("metrics.jsonl")).unwrap();
    assert!(
        metrics.contains("\"z_var\":0.5") && metrics.contains("\"z_var\":1.0"),
        "{metrics}"
    );
    assert_clean_failure(&sweep("0"), "sample.z_var must be a positive number");
    // An unlabelled folder (no class subfolders) is refused, naming what to do.
    let flat = tmp.path().join("flat");
    std::fs::create_dir_all(&flat).unwrap();
    for i in 0..8u8 {
        image_like(&flat.join(format!("{i}.png")), i * 30);
    }
    let o = genforge(&[
        "train",
        "biggan-tiny",
        "--run-dir",
        &out("unlabelled"),
        "--set",
        "data.format=folder",
        &format!("data.path={}", flat.display()),
        "data.classes=[]",
    ]);
    assert_clean_failure(&o, "has no class labels");
}

#[test]
fn presets_lists_the_seed_presets() {
    let o = genforge(&["presets"]);
    assert!(o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("dcgan-mnist")
            && out.contains("sagan-mnist")
            && out.contains("vitgan-mnist")
            && out.contains("vitgan-cifar10")
            && out.contains("stylegan-mnist")
            && out.contains("stylegan-ffhq"),
        "{out}"
    );
}

#[test]
fn vqvae2_two_stages_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let vq = tmp.path().join("vq");
    let vqs = vq.to_str().unwrap();
    genforge_ok(&["train", "vqvae2-tiny", "--run-dir", vqs]);
    let stats = std::fs::read_to_string(vq.join("stats.jsonl")).unwrap();
    assert!(stats.contains("perplexity_bottom") && stats.contains("heldout_psnr"));

    // Reconstruction figure: 4 rows (originals, recon, top=0, bottom=0) of 8 images at 16x16.
    let fig = tmp.path().join("recon.png");
    let o = genforge_ok(&["reconstruct", vqs, "--out", fig.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("PSNR"));
    assert_eq!(png_size(&fig), (8 * 18 + 2, 4 * 18 + 2));

    // Interpolation between two PNGs: a grid and a GIF.
    let digits = tmp.path().join("digits");
    let o = genforge(&["sample", vqs, "--out", digits.to_str().unwrap()]);
    assert!(!o.status.success(), "a vqvae2 run needs --prior");
    assert!(stderr(&o).contains("--prior"), "{}", stderr(&o));
    let a = tmp.path().join("a.png");
    let b = tmp.path().join("b.png");
    image_like(&a, 0);
    image_like(&b, 255);
    let grid = tmp.path().join("morph.png");
    genforge_ok(&[
        "interpolate",
        vqs,
        "--a",
        a.to_str().unwrap(),
        "--b",
        b.to_str().unwrap(),
        "--frames",
        "5",
        "--out",
        grid.to_str().unwrap(),
    ]);
    assert_eq!(png_size(&grid), (5 * 18 + 2, 18 + 2));
    let gif = std::fs::read(tmp.path().join("morph.gif")).unwrap();
    assert_eq!(&gif[..6], b"GIF89a");

    // Codes, priors, samples.
    genforge_ok(&["encode", vqs]);
    let manifest = std::fs::read_to_string(vq.join("codes/codes.json")).unwrap();
    assert!(manifest.contains("\"count\": 80"), "{manifest}");
    let prior = tmp.path().join("prior");
    let codes = format!("data.path={}", vq.join("codes").display());
    genforge_ok(&[
        "train",
        "pixelcnn-tiny",
        "--run-dir",
        prior.to_str().unwrap(),
        "--set",
        &codes,
    ]);
    assert!(
        std::fs::read_to_string(prior.join("stats.jsonl"))
            .unwrap()
            .contains("heldout_bottom_bits")
    );
    let out = tmp.path().join("samples.png");
    let o = genforge_ok(&[
        "sample",
        vqs,
        "--prior",
        prior.to_str().unwrap(),
        "--n",
        "4",
        "--temperature",
        "0.8",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("img/s"));
    assert_eq!(png_size(&out), (2 * 18 + 2, 2 * 18 + 2));
    // A directory gets one PNG per image, as for the GANs.
    let each = tmp.path().join("each");
    let each_arg = format!("{}/", each.display());
    let p = prior.to_str().unwrap();
    genforge_ok(&["sample", vqs, "--prior", p, "--n", "3", "--out", &each_arg]);
    for i in 0..3 {
        assert_eq!(png_size(&each.join(format!("{i:06}.png"))), (16, 16));
    }

    // Scoring samples through both stages.
    let o = genforge_ok(&[
        "eval",
        vqs,
        "--prior",
        prior.to_str().unwrap(),
        "--n",
        "12",
        "--batch",
        "6",
        "--metrics",
        "fid,is",
    ]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("FID") && table.contains("IS") && !table.contains("KID"),
        "{table}"
    );
    let record = std::fs::read_to_string(vq.join("metrics.jsonl")).unwrap();
    assert!(record.contains("\"n_fake\":12"), "{record}");

    // A class-conditional pair of priors samples a chosen class.
    let cprior = tmp.path().join("cprior");
    genforge_ok(&[
        "train",
        "pixelcnn-tiny",
        "--run-dir",
        cprior.to_str().unwrap(),
        "--set",
        &codes,
        "--set",
        "model.class_conditional=true",
    ]);
    genforge_ok(&[
        "sample",
        vqs,
        "--prior",
        cprior.to_str().unwrap(),
        "--n",
        "2",
        "--label",
        "7",
        "--out",
        out.to_str().unwrap(),
    ]);
    let o = genforge(&[
        "sample",
        vqs,
        "--prior",
        cprior.to_str().unwrap(),
        "--n",
        "2",
        "--label",
        "10",
    ]);
    assert_clean_failure(&o, "outside the prior's 10 classes");
    // A class-conditional sampler is scored overall and per class.
    let o = genforge_ok(&[
        "eval",
        vqs,
        "--prior",
        cprior.to_str().unwrap(),
        "--n",
        "50",
        "--metrics",
        "fid,kid",
    ]);
    let table = String::from_utf8_lossy(&o.stdout);
    let classes = table.lines().filter(|l| l.starts_with("class ")).count();
    assert!(classes >= 5, "{table}");
    assert!(table.contains("(5 / "), "{table}");
    // The digit classifier scores the requested class, as for BigGAN, and the classes drawn.
    for row in ["accuracy", "classes"] {
        assert!(
            table.lines().any(|l| l.trim_start().starts_with(row)),
            "{row}: {table}"
        );
    }
    // Without --label the classes come in turn.
    genforge_ok(&[
        "sample",
        vqs,
        "--prior",
        cprior.to_str().unwrap(),
        "--n",
        "3",
        "--out",
        out.to_str().unwrap(),
    ]);
    // The prior runs drew sample grids through the VQ-VAE-2 they were encoded with.
    assert!(prior.join("samples/step-0000003.png").is_file());
    assert!(cprior.join("samples/step-0000003.png").is_file());

    // Clear errors: a class label for an unconditional prior, priors on images, GAN sampling
    // options on a prior run.
    let o = genforge(&[
        "sample",
        vqs,
        "--prior",
        prior.to_str().unwrap(),
        "--label",
        "3",
    ]);
    assert_clean_failure(&o, "class-conditional");
    let o = genforge(&[
        "train",
        "pixelcnn-tiny",
        "--set",
        "data.path=/nonexistent/codes",
        "--runs-root",
        tmp.path().to_str().unwrap(),
    ]);
    assert_clean_failure(&o, "codes.json");
    let o = genforge(&["train", "vqvae2-tiny", "--set", "model.bottom_stride=3"]);
    assert_clean_failure(&o, "model.bottom_stride");
    let o = genforge(&["reconstruct", prior.to_str().unwrap()]);
    assert_clean_failure(&o, "not a vqvae2 run");
}

/// A 28x28 grey PNG filled with `v`, with a white bar so it is not blank.
fn image_like(path: &Path, v: u8) {
    let mut img = image::GrayImage::from_pixel(28, 28, image::Luma([v]));
    for y in 8..20 {
        img.put_pixel(14, y, image::Luma([255 - v]));
    }
    img.save(path).unwrap();
}

#[test]
fn pggan_grows_samples_at_the_final_size_and_draws_a_timeline() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("pg");
    let r = run.to_str().unwrap();
    genforge_ok(&["train", "pggan-tiny", "--run-dir", r]);
    let stats = std::fs::read_to_string(run.join("stats.jsonl")).unwrap();
    assert!(stats.contains("\"resolution\":8.0") && stats.contains("\"alpha\""));
    // 16x16 cells (padding 2): 18 pixels each; two snapshots (steps 2 and 4).
    let tl = tmp.path().join("timeline.png");
    let o = genforge_ok(&["timeline", r, "--cells", "4", "--out", tl.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("steps 2, 4"));
    assert_eq!(png_size(&tl), (4 * 18 + 2, 2 * 18 + 2));
    let one = tmp.path().join("s.png");
    genforge_ok(&["sample", r, "--n", "4", "--out", one.to_str().unwrap()]);
    assert_eq!(png_size(&one), (2 * 18 + 2, 2 * 18 + 2));
    // Growing is for the families that grow.
    let o = genforge(&[
        "train",
        "dcgan-tiny",
        "--run-dir",
        tmp.path().join("no").to_str().unwrap(),
        "--set",
        "train.progressive=true",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("train.progressive"), "{}", stderr(&o));
}

/// An unknown kernel switch is refused before any work; the switches in force are printed by
/// `bench` and recorded in the run directory, one line per training session.
#[test]
fn kernel_switches_are_checked_printed_and_recorded() {
    let o = genforge_env(&["presets"], &[("GENFORGE_CONV", "gem")]);
    assert_clean_failure(
        &o,
        "GENFORGE_CONV=\"gem\" is not a setting: use one of auto, burn, gemm",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty(), "work done before the check");

    let o = genforge_env(
        &["bench", "dcgan-tiny", "--steps", "1", "--warmup", "0"],
        &[("GENFORGE_TAPS", "0")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("kernels: GENFORGE_CONV=auto GENFORGE_FUSED=1 GENFORGE_TAPS=0"),
        "{out}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("r");
    let r = r.to_str().unwrap();
    genforge_ok(&["train", "dcgan-tiny", "--run-dir", r, "--steps", "2"]);
    let o = genforge_env(
        &["train", "--resume", r, "--steps", "4"],
        &[("GENFORGE_FUSED", "0")],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(Path::new(r).join("environment.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    assert_eq!(lines.len(), 2, "one line per session");
    assert_eq!(lines[0]["step"], 0);
    assert_eq!(lines[0]["kernels"]["GENFORGE_FUSED"], "1");
    assert_eq!(lines[1]["step"], 2);
    assert_eq!(lines[1]["kernels"]["GENFORGE_FUSED"], "0");
    assert!(lines[1]["cpu_features"].is_array());
}

fn spawn_genforge(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_genforge"))
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary starts")
}

fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: sends a signal to a child process this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !ready() {
        assert!(
            start.elapsed().as_secs() < 60,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// While one process trains in a run directory (checkpointing and pruning every step), a second
/// trainer is refused with the first one's PID, readers sample without failing, and SIGINT stops
/// the trainer after a step with a checkpoint, exit status 130 and how to resume.
#[test]
fn one_trainer_per_run_readers_alongside_and_a_clean_ctrl_c() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("r");
    let rs = r.to_str().unwrap();
    genforge_ok(&["train", "dcgan-tiny", "--run-dir", rs, "--steps", "2"]);
    let set = [
        "--set",
        "train.checkpoint_every=1",
        "train.keep_checkpoints=1",
    ];
    let mut args = vec!["train", "--resume", rs, "--steps", "1000000"];
    args.extend(set);
    let trainer = spawn_genforge(&args);
    let latest = || {
        std::fs::read_dir(r.join("checkpoints"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name() != "step-0000002")
                    .count()
            })
            .unwrap_or(0)
    };
    wait_for("the trainer's first checkpoint", || latest() > 0);

    let o = genforge(&["train", "--resume", rs, "--steps", "5"]);
    assert_clean_failure(&o, "is in use by another genforge training process");
    assert!(
        stderr(&o).contains(&format!("PID {}", trainer.id())),
        "{}",
        stderr(&o)
    );
    let o = genforge(&["train", "dcgan-tiny", "--run-dir", rs]);
    assert_clean_failure(&o, "in use by another genforge training process");

    let png = tmp.path().join("s.png");
    for _ in 0..10 {
        genforge_ok(&["sample", rs, "--n", "2", "--out", png.to_str().unwrap()]);
    }

    signal(&trainer, libc::SIGINT);
    let out = trainer.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.contains("stopped by SIGINT after step"), "{err}");
    assert!(
        err.contains(&format!("genforge train --resume {rs}")),
        "{err}"
    );
    let step: u64 = err
        .split("after step ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no step in: {err}"));
    let ckpt = r.join("checkpoints").join(format!("step-{step:07}"));
    assert!(ckpt.is_dir(), "no checkpoint at the step it stopped: {err}");
    // The lock died with the process: training goes on from there.
    genforge_ok(&["train", "--resume", rs, "--steps", &(step + 1).to_string()]);
}

/// A second SIGTERM while the first is being handled ends the process at once, with 143.
#[test]
fn a_second_sigterm_exits_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path().join("r");
    let rs = r.to_str().unwrap();
    let trainer = spawn_genforge(&["train", "sagan-mnist", "--run-dir", rs, "--steps", "1000"]);
    wait_for("the run directory", || {
        r.join("samples").join("reals.png").exists()
    });
    signal(&trainer, libc::SIGTERM);
    std::thread::sleep(std::time::Duration::from_millis(200));
    signal(&trainer, libc::SIGTERM);
    let out = trainer.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));
}

/// A run whose weights blow up never writes a checkpoint holding NaN or infinity; the message
/// says which checkpoint stays the latest, or that there is none, and a run stopped before its
/// first checkpoint resumes from step 0. Nothing is created for a batch larger than the data or
/// `--steps 0`.
#[test]
fn divergence_keeps_only_finite_checkpoints_and_leaves_no_dead_ends() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("p");
    let ps = p.to_str().unwrap();
    let o = genforge(&[
        "train",
        "pggan-tiny",
        "--run-dir",
        ps,
        "--steps",
        "200",
        "--set",
        "train.g_lr=1e4",
        "train.d_lr=1e4",
        "train.checkpoint_every=1",
    ]);
    assert_clean_failure(&o, "training diverged");
    let err = stderr(&o);
    let ckpts: Vec<String> = std::fs::read_dir(p.join("checkpoints"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(ckpts.iter().all(|c| c.starts_with("step-")), "{ckpts:?}");
    if let Some(last) = ckpts.iter().max() {
        let step: u64 = last["step-".len()..].parse().unwrap();
        assert!(
            err.contains(&format!("The last checkpoint, step {step},")),
            "{err}"
        );
        // Every file of it is finite: sampling and resuming load it without a fallback (a record
        // holding a NaN would be refused as unusable).
        let png = tmp.path().join("p.png");
        genforge_ok(&["sample", ps, "--n", "2", "--out", png.to_str().unwrap()]);
        let o = genforge_ok(&["train", "--resume", ps, "--steps", &step.to_string()]);
        assert!(!stderr(&o).contains("unusable"), "{}", stderr(&o));
    }

    let q = tmp.path().join("q");
    let qs = q.to_str().unwrap();
    let o = genforge(&[
        "train",
        "pggan-tiny",
        "--run-dir",
        qs,
        "--set",
        "train.g_lr=1e30",
        "train.d_lr=1e30",
    ]);
    assert_clean_failure(&o, "No checkpoint was written before it");
    assert!(!stderr(&o).contains("last good checkpoint"));
    genforge_ok(&[
        "train",
        "--resume",
        qs,
        "--steps",
        "2",
        "--set",
        "train.g_lr=1e-4",
        "train.d_lr=1e-4",
    ]);
    assert!(q.join("checkpoints").join("step-0000002").is_dir());

    let b = tmp.path().join("b");
    let bs = b.to_str().unwrap();
    let o = genforge(&["train", "dcgan-tiny", "--batch", "33", "--run-dir", bs]);
    assert_clean_failure(&o, "fewer than the batch of 33");
    let o = genforge(&["train", "dcgan-tiny", "--steps", "0", "--run-dir", bs]);
    assert_clean_failure(&o, "--steps must be at least 1");
    let cache = tmp.path().to_str().unwrap();
    let o = genforge_env(
        &[
            "train",
            "dcgan-tiny",
            "--run-dir",
            bs,
            "--set",
            "train.eval_every=1",
            "train.eval_features=inception",
        ],
        &[
            ("GENFORGE_INCEPTION", "/no/such/file"),
            ("GENFORGE_CACHE", cache),
            ("TORCH_HOME", cache),
        ],
    );
    assert_clean_failure(&o, "the FID Inception weights");
    assert!(!b.exists(), "a failed start left {bs} behind");
}

fn assert_no_panic(o: &Output, what: &str) {
    let err = stderr(o);
    assert_ne!(o.status.code(), Some(101), "{what}: exit 101\n{err}");
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{what}: {err}"
    );
}

/// Every command answers `--help`, and bad input (a run directory that is not one, a file for a
/// folder, too few images, unknown values, a closed pipe) gets an error line, never a panic.
#[test]
fn no_command_panics_on_help_or_bad_input() {
    let help = genforge_ok(&["--help"]);
    let text = String::from_utf8_lossy(&help.stdout).into_owned();
    let commands: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 19, "{commands:?}");
    let tmp = tempfile::tempdir().unwrap();
    let not_run = tmp.path().join("not-a-run");
    std::fs::create_dir(&not_run).unwrap();
    let file = tmp.path().join("file.txt");
    std::fs::write(&file, "x").unwrap();
    let (nr, f) = (not_run.to_str().unwrap(), file.to_str().unwrap());
    for c in &commands {
        let o = genforge(&[c, "--help"]);
        assert!(o.status.success(), "{c} --help: {}", stderr(&o));
        for bad in [
            vec![*c, nr],
            vec![*c, f],
            vec![*c, "/no/such/path"],
            vec![*c, nr, "--n", "-3"],
            vec![*c, nr, "--device", "tpu"],
        ] {
            let o = genforge(&bad);
            assert_no_panic(&o, &bad.join(" "));
        }
    }
    // An OS error is named once, with the path.
    let under_file = format!("{f}/run");
    let o = genforge(&["train", "dcgan-tiny", "--run-dir", &under_file]);
    assert_clean_failure(&o, &format!("{under_file}: Not a directory (os error 20)"));
    assert_eq!(stderr(&o).matches("os error").count(), 1, "{}", stderr(&o));
    // Too few images for a metric.
    let one = tmp.path().join("one");
    let r = tmp.path().join("r");
    genforge_ok(&[
        "train",
        "dcgan-tiny",
        "--run-dir",
        r.to_str().unwrap(),
        "--steps",
        "1",
    ]);
    genforge_ok(&[
        "sample",
        r.to_str().unwrap(),
        "--n",
        "1",
        "--out",
        &format!("{}/", one.display()),
    ]);
    let o = genforge(&[
        "eval",
        "--real",
        one.to_str().unwrap(),
        "--fake",
        one.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, "needs at least 2 images in each set");
    let o = genforge(&["eval", r.to_str().unwrap(), "--n", "3"]);
    assert_clean_failure(&o, "precision/recall needs at least 4 images");
    // A reader that closes the pipe early.
    let mut child = Command::new(env!("CARGO_BIN_EXE_genforge"))
        .arg("presets")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_no_panic(&o, "presets into a closed pipe");
}

/// A copy of the binary, run from a folder outside the repository, trains on the digits and
/// emoji it carries (the shipped data is embedded, written once to the cache directory).
#[test]
fn the_binary_runs_without_its_checkout() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("genforge");
    std::fs::copy(env!("CARGO_BIN_EXE_genforge"), &bin).unwrap();
    let cache = tmp.path().join("cache");
    let run = |args: &[&str]| {
        let o = Command::new(&bin)
            .args(args)
            .current_dir(tmp.path())
            .env("GENFORGE_CACHE", &cache)
            .env("RUST_LOG", "info")
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        stderr(&o)
    };
    let log = run(&["train", "dcgan-tiny", "--run-dir", "d", "--steps", "1"]);
    assert!(log.contains(&cache.display().to_string()), "{log}");
    assert!(
        !log.contains("crates/genforge"),
        "read from the checkout: {log}"
    );
    run(&[
        "train",
        "biggan-tiny",
        "--run-dir",
        "e",
        "--steps",
        "1",
        "--set",
        "data.path=data/emoji/emoji-32x32-binary.tar.gz",
        "data.format=cifar10",
        "model.channels=3",
        "data.classes=[]",
        "data.limit=2",
    ]);
    run(&["eval", "d", "--n", "8", "--metrics", "fid"]);
}

#[test]
fn biggan_pytorch_checkpoints_import_as_runs() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../genforge/tests/fixtures/biggan");
    let (g, d) = (fixtures.join("g.pth"), fixtures.join("d.pth"));
    let (g, d) = (g.to_str().unwrap(), d.to_str().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("imported");
    let r = run.to_str().unwrap();
    // The fixtures' network (scripts/biggan_fixtures.py) on top of the 138k preset.
    let set = [
        "--set",
        "model.g_width=2",
        "model.d_width=4",
        "model.z_dim=12",
        "model.shared_dim=8",
        "model.num_classes=5",
        "model.g_attention=[32]",
        "model.d_attention=[32]",
    ];
    // At the full preset's size every tensor disagrees: the error names keys and shapes.
    assert_clean_failure(
        &genforge(&["import", g, "--out", r]),
        "blocks.0.0.bn1.bias.u0 has shape [1, 32], the network needs [1, 1536]",
    );
    assert!(!run.exists(), "a failed import leaves no run behind");
    assert_clean_failure(
        &genforge(&["import", d, "--out", r]),
        "is a BigGAN-PyTorch discriminator",
    );
    assert_clean_failure(
        &genforge(&["import", "nope.pth", "--out", r]),
        "nope.pth: no such file",
    );
    let mut args = vec!["import", g, "--discriminator", d, "--out", r];
    args.extend(set);
    let o = genforge_ok(&args);
    assert!(String::from_utf8_lossy(&o.stdout).contains("imported 166 tensors"));
    let img = tmp.path().join("s.png");
    genforge_ok(&[
        "sample",
        r,
        "--class",
        "3",
        "--n",
        "1",
        "--truncation",
        "0.5",
        "--out",
        img.to_str().unwrap(),
    ]);
    assert_eq!(png_size(&img), (128 + 4, 128 + 4));
    // A second import into the same directory is refused.
    let mut again = vec!["import", g, "--out", r];
    again.extend(set);
    assert_clean_failure(&genforge(&again), "already holds a run");
}

#[test]
fn network_pickles_are_read_never_run() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../genforge/tests/fixtures/pickle");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let out = out.to_str().unwrap();
    // A pickle in stylegan2-ada-pytorch's persistent format: described, then a clear refusal.
    let o = genforge(&[
        "import",
        fixtures.join("persistent-p4.pkl").to_str().unwrap(),
        "--out",
        out,
    ]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("G_ema: Net (32 values)"));
    assert_clean_failure(
        &o,
        "its G_ema is a Net, not stylegan2-ada-pytorch's Generator",
    );
    // A pickle that asks for os.system("touch pwned") is only described.
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_genforge"))
        .args([
            "import",
            fixtures.join("exploit-p4.pkl").to_str().unwrap(),
            "--out",
            out,
        ])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert_clean_failure(&o, "holds no G_ema or G network");
    assert!(!tmp.path().join("pwned").exists());
    assert!(!Path::new(out).exists());
}

/// NVlabs' pickles (made by its own classes, `scripts/stylegan2_fixtures.py`) import as
/// stylegan2 runs on which every StyleGAN figure works; conditional networks take --class.
#[test]
fn stylegan2_pickles_import_and_draw_every_figure() {
    let fixtures =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../genforge/tests/fixtures/stylegan2");
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("cond");
    let run_s = run.to_str().unwrap();
    let o = genforge_ok(&[
        "import",
        fixtures.join("cond.pkl").to_str().unwrap(),
        "--out",
        run_s,
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("G_ema: Generator"), "{text}");
    assert!(
        text.contains("as a stylegan2 run (16x16, 6 ws, 3 classes) with its discriminator"),
        "{text}"
    );
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(cfg.contains("family = \"stylegan2\"") && cfg.contains("conv_clamp = 0.5"));
    let out = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    genforge_ok(&[
        "sample",
        run_s,
        "--class",
        "2",
        "--psi",
        "0.7",
        "--n",
        "4",
        "--out",
        &out("s.png"),
    ]);
    assert!(tmp.path().join("s.png").is_file());
    for args in [
        vec!["truncation", run_s, "--class", "1", "--out", &out("t.png")],
        vec!["mix", run_s, "--class", "0", "--out", &out("m.png")],
        vec![
            "noise",
            run_s,
            "--class",
            "0",
            "--draws",
            "3",
            "--out",
            &out("n.png"),
        ],
        vec![
            "morph",
            run_s,
            "--class",
            "2",
            "--a",
            "1",
            "--b",
            "2",
            "--frames",
            "4",
            "--out",
            &out("mo.png"),
        ],
    ] {
        genforge_ok(&args);
    }
    assert!(tmp.path().join("mo.gif").is_file());
    // A conditional network needs its class; an unconditional one refuses one.
    assert_clean_failure(
        &genforge(&["truncation", run_s, "--out", &out("x.png")]),
        "give --class",
    );
    let plain = tmp.path().join("plain");
    genforge_ok(&[
        "import",
        fixtures.join("plain.pkl").to_str().unwrap(),
        "--out",
        plain.to_str().unwrap(),
    ]);
    genforge_ok(&[
        "sample",
        plain.to_str().unwrap(),
        "--psi",
        "0.5",
        "--cutoff",
        "2",
        "--n",
        "2",
        "--out",
        &out("p.png"),
    ]);
    assert_clean_failure(
        &genforge(&[
            "mix",
            plain.to_str().unwrap(),
            "--class",
            "1",
            "--out",
            &out("x.png"),
        ]),
        "this network is unconditional",
    );
    // NVlabs' TensorFlow StyleGAN2 layout imports the same way.
    let tf = tmp.path().join("tf");
    let o = genforge_ok(&[
        "import",
        fixtures.join("tf-cond.pkl").to_str().unwrap(),
        "--out",
        tf.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("TF network version 4"), "{text}");
    let import_json = std::fs::read_to_string(tf.join("import.json")).unwrap();
    assert!(import_json.contains("TensorFlow pickle"), "{import_json}");
    genforge_ok(&[
        "sample",
        tf.to_str().unwrap(),
        "--class",
        "1",
        "--n",
        "2",
        "--out",
        &out("tf.png"),
    ]);
    // A missing pickle says where NVlabs publishes its networks; nothing is created.
    let o = genforge(&["import", &out("ffhq.pkl"), "--out", &out("none")]);
    assert_clean_failure(
        &o,
        "nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained",
    );
    assert!(!tmp.path().join("none").exists());
}

/// NVlabs' TensorFlow StyleGAN (2019) and Progressive GAN pickles import as `stylegan` and
/// `pggan` runs, and the family's commands run on them.
#[test]
fn stylegan_and_pggan_tf_pickles_import() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../genforge/tests/fixtures/tf");
    let tmp = tempfile::tempdir().unwrap();
    let out = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    let o = genforge_ok(&[
        "import",
        fixtures.join("stylegan-fused.pkl").to_str().unwrap(),
        "--out",
        &out("sg"),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("TF network version 3")
            && text.contains("as a stylegan run (16x16, 6 ws) with its discriminator"),
        "{text}"
    );
    let cfg = std::fs::read_to_string(tmp.path().join("sg/config.toml")).unwrap();
    assert!(cfg.contains("family = \"stylegan\"") && cfg.contains("channel_base = 64"));
    for args in [
        vec![
            "sample",
            &out("sg"),
            "--psi",
            "0.7",
            "--cutoff",
            "2",
            "--n",
            "2",
            "--out",
            &out("s.png"),
        ],
        vec!["truncation", &out("sg"), "--out", &out("t.png")],
        vec!["mix", &out("sg"), "--out", &out("m.png")],
        vec!["noise", &out("sg"), "--draws", "3", "--out", &out("n.png")],
    ] {
        genforge_ok(&args);
    }
    let o = genforge_ok(&[
        "import",
        fixtures.join("pggan.pkl").to_str().unwrap(),
        "--out",
        &out("pg"),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("as a pggan run (16x16) with its discriminator"),
        "{text}"
    );
    let cfg = std::fs::read_to_string(tmp.path().join("pg/config.toml")).unwrap();
    assert!(cfg.contains("progressive = false"), "{cfg}");
    genforge_ok(&["sample", &out("pg"), "--n", "2", "--out", &out("p.png")]);
    assert!(tmp.path().join("p.png").is_file());
    // A --family that is not the pickle's is refused before anything is written.
    assert_clean_failure(
        &genforge(&[
            "import",
            fixtures.join("pggan.pkl").to_str().unwrap(),
            "--family",
            "stylegan",
            "--out",
            &out("none"),
        ]),
        "is a pggan network",
    );
    assert!(!tmp.path().join("none").exists());
}

/// LPIPS needs the user's torchvision VGG16 file: without it, or with another file, `project`
/// and `eval --metrics lpips` say where to get it; lpips is never mixed with the unpaired metrics.
#[test]
fn lpips_commands_name_the_vgg16_file() {
    let fixtures =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../genforge/tests/fixtures/stylegan2");
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("plain");
    let run_s = run.to_str().unwrap();
    genforge_ok(&[
        "import",
        fixtures.join("plain.pkl").to_str().unwrap(),
        "--out",
        run_s,
    ]);
    let img = tmp.path().join("t.png");
    genforge_ok(&["sample", run_s, "--n", "1", "--out", img.to_str().unwrap()]);
    let cache = tmp.path().join("cache");
    let env = [("GENFORGE_CACHE", cache.to_str().unwrap())];
    let o = genforge_env(
        &[
            "project",
            run_s,
            "--target",
            img.to_str().unwrap(),
            "--steps",
            "2",
        ],
        &env,
    );
    assert_clean_failure(&o, "https://download.pytorch.org/models/vgg16-397923af.pth");
    let junk = tmp.path().join("vgg16.pth");
    std::fs::write(&junk, b"not a network").unwrap();
    let o = genforge(&[
        "project",
        run_s,
        "--target",
        img.to_str().unwrap(),
        "--vgg16",
        junk.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, "does not start with 397923af");
    let dir = tmp.path().to_str().unwrap();
    let o = genforge(&[
        "eval",
        "--real",
        dir,
        "--fake",
        dir,
        "--metrics",
        "fid,lpips",
    ]);
    assert_clean_failure(&o, "give it alone");
    let o = genforge(&[
        "eval",
        "--real",
        dir,
        "--fake",
        dir,
        "--metrics",
        "lpips",
        "--vgg16",
        junk.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, "does not start with 397923af");
}
