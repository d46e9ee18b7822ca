//! Corrupt network pickles: truncated and bit-flipped copies of every pickle fixture, made here
//! from a seed, go through the whole import path (pickle reader, tensors, constructor
//! arguments, the StyleGAN2, StyleGAN and Progressive GAN builds and key checks). Each must end in an error or a network, never a
//! panic, a hang, or an allocation beyond what the file's bytes can hold.

use std::path::Path;

use genforge::burn::tensor::Device;
use genforge::import::network_pickle::SAME_KEYS;
use genforge::import::persistent;
use genforge::import::pickle::Pickle;
use genforge::import::stylegan2::{D_KEYS, G_KEYS, config_of, read};
use genforge::import::tflib::TfNetwork;
use genforge::import::{pggan as tf_pggan, stylegan as tf_stylegan};
use genforge::models::stylegan2::{Discriminator, Generator};
use genforge::models::{pggan, stylegan};
use genforge::rng::Rng;

/// Everything the import does with a pickle's bytes; errors are fine, panics are not.
fn import_path(bytes: &[u8]) {
    let file = Path::new("fuzz.pkl");
    let Ok(p) = Pickle::parse(bytes) else {
        return;
    };
    let _ = persistent::summarize(&p);
    if let Ok([_, d, gs]) = genforge::import::tflib::networks(&p).as_deref() {
        tf_path(gs, d);
    }
    let Ok(nets) = read(&p, file) else {
        return;
    };
    let Ok(cfg) = config_of(&nets.g_kwargs, nets.d_kwargs.as_ref(), file) else {
        return;
    };
    // A corrupt size could still ask for a huge network; the fixtures are 16x16.
    if cfg.resolution > 64 || cfg.z_dim > 512 || cfg.w_dim > 512 || cfg.channel_max > 64 {
        return;
    }
    let mut g = Generator::new(&cfg, &mut Rng::new(0), &Device::flex());
    let _ = genforge::import::apply(&mut g, &nets.g, &G_KEYS, file);
    if let Some(dt) = &nets.d {
        let mut d = Discriminator::new(&cfg, &mut Rng::new(1), &Device::flex());
        let _ = genforge::import::apply(&mut d, dt, &D_KEYS, file);
    }
}

/// The StyleGAN (2019) and Progressive GAN conversions and builds of a TF `(G, D, Gs)`.
fn tf_path(gs: &TfNetwork, d: &TfNetwork) {
    let device = Device::flex();
    let file = Path::new("fuzz.pkl");
    if let Ok(c) = tf_stylegan::config_of(gs, d) {
        if c.resolution > 64 || c.z_dim > 512 || c.w_dim > 512 || c.channel_max > 64 {
            return;
        }
        let mut g = stylegan::Generator::new(&c, &mut Rng::new(0), &device);
        if let Ok(t) = tf_stylegan::generator(gs, &c) {
            let _ = genforge::import::apply(&mut g, &t, &SAME_KEYS, file);
        }
        let mut dn = stylegan::Discriminator::new(&c, &mut Rng::new(1), &device);
        if let Ok(t) = tf_stylegan::discriminator(d, &c) {
            let _ = genforge::import::apply(&mut dn, &t, &SAME_KEYS, file);
        }
    }
    if let Ok(c) = tf_pggan::config_of(gs, d) {
        if c.resolution > 64 || c.z_dim > 512 || c.channel_max > 64 {
            return;
        }
        let mut g = pggan::Generator::new(&c, &mut Rng::new(0), &device);
        if let Ok(t) = tf_pggan::generator(gs, &c) {
            let _ = genforge::import::apply(&mut g, &t, &SAME_KEYS, file);
        }
        let mut dn = pggan::Discriminator::new(&c, &mut Rng::new(1), &device);
        if let Ok(t) = tf_pggan::discriminator(d, &c) {
            let _ = genforge::import::apply(&mut dn, &t, &SAME_KEYS, file);
        }
    }
}

#[test]
fn corrupt_pickles_give_errors_not_panics() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<_> = [
        "stylegan2/plain.pkl",
        "stylegan2/cond.pkl",
        "stylegan2/tf-plain.pkl",
        "stylegan2/tf-cond.pkl",
        "tf/stylegan.pkl",
        "tf/stylegan-fused.pkl",
        "tf/pggan.pkl",
    ]
    .iter()
    .map(|f| root.join(f))
    .collect();
    for entry in std::fs::read_dir(root.join("pickle")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "pkl") {
            files.push(path);
        }
    }
    let mut rng = Rng::new(2026);
    let mut cases = 0;
    for path in &files {
        let original = std::fs::read(path).unwrap();
        import_path(&original);
        let trials = if original.len() > 10_000 { 600 } else { 150 };
        for _ in 0..trials {
            let mut bytes = original.clone();
            match rng.below(3) {
                0 => bytes.truncate(rng.below(bytes.len())),
                1 => {
                    for _ in 0..1 + rng.below(4) {
                        let at = rng.below(bytes.len());
                        bytes[at] ^= 1 << rng.below(8);
                    }
                }
                _ => {
                    // Corrupt the opcode stream near the start, where lengths and sizes sit.
                    let at = rng.below(bytes.len().min(4096));
                    bytes[at] = rng.below(256) as u8;
                }
            }
            import_path(&bytes);
            cases += 1;
        }
    }
    assert!(cases >= 2000, "{cases} cases");
}
