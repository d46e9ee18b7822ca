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
