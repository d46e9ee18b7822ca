//! Helpers shared by the unit tests.

use burn::tensor::{Device, Tensor, TensorData};

use crate::rng::Rng;

/// The values of an f32 tensor.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// Normal values on the autodiff CPU device.
pub fn randn<const D: usize>(rng: &mut Rng, shape: [usize; D], mean: f64, std: f64) -> Tensor<D> {
    let n = shape.iter().product();
    let device = Device::flex().autodiff();
    Tensor::from_data(
        TensorData::new(rng.normal_vec(n, mean, std), shape),
        &device,
    )
}

/// `a` and `b` equal within `tol` relative to the larger of `b`'s magnitude and 1e-3.
pub fn assert_close<const D: usize>(a: Tensor<D>, b: Tensor<D>, tol: f32, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    let (a, b) = (values(a), values(b));
    let scale = b.iter().map(|v| v.abs()).fold(1e-3f32, f32::max);
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!((x - y).abs() <= tol * scale, "{what}[{i}]: {x} vs {y}");
    }
}

/// The generator and discriminator of a shipped preset, on the CPU.
pub fn preset_gan(name: &str) -> (crate::models::Generator, crate::models::Discriminator) {
    let cfg = crate::config::TrainConfig::load(name, &[]).unwrap();
    cfg.model
        .init_gan(false, &mut Rng::new(1), &Device::flex())
        .expect("an adversarial preset")
}

/// A file of `tests/fixtures/<dir>/`.
pub fn fixture(dir: &str, name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{dir}/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
