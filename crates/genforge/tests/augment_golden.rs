//! StyleGAN2-ADA's augmentation pipeline against NVlabs' `AugmentPipe`: with every parameter
//! fixed at its 70th percentile (`debug_percentile`), genforge's transforms of the same
//! matrices reproduce NVlabs' outputs, transform by transform and all of `bgc` together
//! (fixtures from `scripts/ada_golden.py`).

mod common;
use common::{Golden, assert_close, floats, values};
use std::f64::consts::PI;
use std::path::Path;

use genforge::burn::tensor::{Device, Tensor, TensorData};
use genforge::nn::augment::{
    I3, I4, Mat3, Mat4, Transforms, hue_rotation, luma_flip, mul3, mul4, rotate2d, saturation,
    scale2d, scale3d, translate2d, translate3d,
};

const GEOMETRIC: [&str; 7] = [
    "xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac",
];
const COLOUR: [&str; 5] = ["brightness", "contrast", "lumaflip", "hue", "saturation"];

/// The matrix of transform `name` with parameter `v` on a 16x16 image, as `AugmentPipe` builds
/// it (its `*_inv` helpers written out).
fn geometric(name: &str, v: f64) -> Mat3 {
    match name {
        "xflip" => scale2d(1.0 / (1.0 - 2.0 * v), 1.0),
        "rotate90" => rotate2d(PI / 2.0 * v),
        "xint" => translate2d(-(v * 16.0).round(), -(v * 16.0).round()),
        "scale" => scale2d(1.0 / v, 1.0 / v),
        "rotate" => rotate2d(v),
        "aniso" => scale2d(1.0 / v, v),
        "xfrac" => translate2d(-v * 16.0, -v * 16.0),
        _ => unreachable!(),
    }
}

fn colour(name: &str, v: f64) -> Mat4 {
    match name {
        "brightness" => translate3d(v),
        "contrast" => scale3d(v),
        "lumaflip" => luma_flip(v),
        "hue" => hue_rotation(v),
        "saturation" => saturation(v),
        _ => unreachable!(),
    }
}

#[test]
fn augment_pipe_matches_nvlabs() {
    let golden =
        Golden::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ada/golden.json"));
    let device = Device::flex();
    let param = |k: &str| golden.0["params"][k].as_f64().unwrap();
    let mut cases: Vec<(String, Mat3, Mat4)> = Vec::new();
    for name in GEOMETRIC {
        cases.push((name.into(), geometric(name, param(name)), I4));
    }
    for name in COLOUR {
        cases.push((name.into(), I3, colour(name, param(name))));
    }
    // All of bgc: geometric matrices composed on the right, colour ones on the left; the
    // second rotation is 0 under debug_percentile.
    let g = GEOMETRIC
        .iter()
        .fold(I3, |g, n| mul3(&g, &geometric(n, param(n))));
    let c = COLOUR
        .iter()
        .fold(I4, |c, n| mul4(&colour(n, param(n)), &c));
    cases.push(("bgc".into(), g, c));
    for (name, g, c) in cases {
        for (kind, channels) in [("rgb", 3), ("gray", 1)] {
            let t = Transforms {
                g_inv: vec![g],
                color: vec![c],
            };
            // NVlabs applies no hue or saturation to grayscale images.
            let t = if channels == 1 && (name == "hue" || name == "saturation") {
                Transforms {
                    g_inv: vec![I3],
                    color: vec![I4],
                }
            } else if channels == 1 && name == "bgc" {
                let c = ["brightness", "contrast", "lumaflip"]
                    .iter()
                    .fold(I4, |c, n| mul4(&colour(n, param(n)), &c));
                Transforms {
                    g_inv: vec![g],
                    color: vec![c],
                }
            } else {
                t
            };
            let x = Tensor::<4>::from_data(
                TensorData::new(golden.f32(kind), [1, channels, 16, 16]),
                &device,
            );
            let want = floats(&golden.0["cases"][&name][kind]);
            assert_close(values(t.apply(x)), &want, 1e-4, &format!("{name} {kind}"));
        }
    }
}
