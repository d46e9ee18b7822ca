//! The FID Inception port against pytorch-fid: the same state-dict layout, and the same pool
//! features and logits for fixed images when both networks hold the same formula weights
//! (`scripts/inception_golden.py`; the 95 MB weight file itself is never needed).

use genforge::burn::tensor::{Device, Tensor, TensorData};
use genforge::metrics::features::preprocess;
use genforge::metrics::inception::{self, InceptionV3, Init};

fn golden() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/inception_golden.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The script's test image, in [-1, 1] (`2x - 1` of its [0, 1] values, as pytorch-fid
/// normalises).
fn image(index: usize, size: usize) -> Vec<f32> {
    let mut v = Vec::with_capacity(3 * size * size);
    for c in 0..3 {
        for y in 0..size {
            for x in 0..size {
                let (c, y, x) = (c as f64, y as f64, x as f64);
                let s = 0.1 * (x + 1.0) * (c + 1.0) + 0.07 * y * (index as f64 + 1.0);
                let p = (0.5 + 0.5 * s.sin()) as f32;
                v.push(2.0 * p - 1.0);
            }
        }
    }
    v
}

#[test]
fn the_layout_is_pytorch_fids_state_dict() {
    let net = InceptionV3::new(Init::Zeros, &Device::flex());
    let mut ours: Vec<(String, Vec<usize>)> = net.layout();
    let mut theirs: Vec<(String, Vec<usize>)> = golden()["layout"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let shape = e[1]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize);
            (e[0].as_str().unwrap().to_string(), shape.collect())
        })
        .collect();
    ours.sort();
    theirs.sort();
    assert_eq!(ours.len(), 472, "{} parameters", ours.len());
    assert_eq!(ours, theirs);
}

#[test]
fn formula_weights_give_pytorch_fids_features() {
    let device = Device::flex();
    let net = InceptionV3::new(Init::Formula, &device);
    let g = golden();
    let bias = inception::formula("fc.bias", &[inception::CLASSES]);
    for img in g["images"].as_array().unwrap() {
        let index = img["index"].as_u64().unwrap() as usize;
        let size = img["size"].as_u64().unwrap() as usize;
        let x = Tensor::<4>::from_data(
            TensorData::new(image(index, size), [1, 3, size, size]),
            &device,
        );
        // genforge's resize to 299 (bilinear, half-pixel centres) stands in for F.interpolate.
        let x = preprocess(x, (3, inception::RESOLUTION), &device);
        let (pool, logits) = net.forward(x);
        let pool = pool.into_data().try_into_vec::<f32>().unwrap();
        let logits = logits.into_data().try_into_vec::<f32>().unwrap();
        let want_pool: Vec<f64> = img["pool"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let want_logits: Vec<f64> = img["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let scale = want_pool.iter().map(|v| v.abs()).fold(0.0, f64::max);
        let worst = pool
            .iter()
            .zip(&want_pool)
            .map(|(a, b)| (*a as f64 - b).abs())
            .fold(0.0, f64::max);
        assert!(
            worst < 1e-4 * scale,
            "image {index}: pool features differ by {worst} (scale {scale})"
        );
        // pytorch-fid's logits include the bias; genforge's leave it out (the IS convention).
        let worst = logits
            .iter()
            .zip(&bias)
            .zip(&want_logits)
            .map(|((a, b), w)| ((*a + *b) as f64 - w).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1e-4, "image {index}: logits differ by {worst}");
    }
}

/// With `GENFORGE_INCEPTION_FORMULA_PTH` pointing at `scripts/inception_golden.py --save-pth`'s
/// file, pytorch's serialised state dict loads through burn's PyTorch import into exactly the
/// formula weights.
#[test]
#[ignore = "needs the formula .pth written by scripts/inception_golden.py --save-pth"]
fn a_pytorch_state_dict_loads_into_the_port() {
    let path = std::env::var("GENFORGE_INCEPTION_FORMULA_PTH").unwrap();
    let device = Device::flex();
    let (loaded, _) = inception::load(Some(std::path::Path::new(&path)), false, &device).unwrap();
    let built = InceptionV3::new(Init::Formula, &device);
    let x = Tensor::<4>::from_data(TensorData::new(image(0, 64), [1, 3, 64, 64]), &device);
    let x = preprocess(x, (3, inception::RESOLUTION), &device);
    let (a, _) = loaded.forward(x.clone());
    let (b, _) = built.forward(x);
    assert_eq!(a.into_data(), b.into_data());
}

#[test]
fn a_wrong_or_missing_weight_file_is_a_clear_error() {
    let device = Device::flex();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join(inception::WEIGHTS_FILE);
    let err = inception::load(Some(&missing), true, &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains(inception::WEIGHTS_FILE), "{err}");
    let bad = dir.path().join("other.pth");
    std::fs::write(&bad, b"not the inception weights").unwrap();
    let err = inception::load(Some(&bad), true, &device)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("SHA-256") && err.contains(inception::WEIGHTS_SHA256),
        "{err}"
    );
    assert!(err.contains(inception::WEIGHTS_URL), "{err}");
}

/// The script's image `index` cropped to `h x w` (top-left), one channel, in [0, 1].
fn plane(index: usize, h: usize, w: usize) -> Vec<f32> {
    let side = h.max(w);
    let full = image(index, side);
    let mut v = Vec::with_capacity(h * w);
    for y in 0..h {
        for x in 0..w {
            v.push((full[y * side + x] + 1.0) / 2.0);
        }
    }
    v
}

#[test]
fn bilinear_resize_matches_torch_interpolate() {
    for case in golden()["resize"].as_array().unwrap() {
        let dims = |k: &str| {
            let a = case[k].as_array().unwrap();
            (
                a[0].as_u64().unwrap() as usize,
                a[1].as_u64().unwrap() as usize,
            )
        };
        let ((h, w), (oh, ow)) = (dims("in"), dims("out"));
        let index = case["index"].as_u64().unwrap() as usize;
        let ours = genforge::data::resize_bilinear(&plane(index, h, w), h, w, oh, ow);
        let want = case["values"].as_array().unwrap();
        for (k, v) in want.iter().enumerate() {
            let (a, b) = (ours[k * 53], v.as_f64().unwrap() as f32);
            assert!(
                (a - b).abs() < 2e-6,
                "{h}x{w} -> {oh}x{ow}, value {}: {a} vs {b}",
                k * 53
            );
        }
    }
}
