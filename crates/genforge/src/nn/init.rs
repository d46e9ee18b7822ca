//! Weight initialisation from the host generator, so a seed gives the same weights on every
//! device and backend.

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};

use crate::rng::Rng;

/// `N(mean, std)` parameter of the given shape.
pub fn normal<const D: usize>(
    shape: [usize; D],
    mean: f64,
    std: f64,
    rng: &mut Rng,
    device: &Device,
) -> Param<Tensor<D>> {
    let n = shape.iter().product();
    Param::from_tensor(Tensor::from_data(
        TensorData::new(rng.normal_vec(n, mean, std), shape),
        device,
    ))
}

pub fn zeros<const D: usize>(shape: [usize; D], device: &Device) -> Param<Tensor<D>> {
    Param::from_tensor(Tensor::zeros(shape, device))
}

/// Uniform in `[-bound, bound]`.
pub fn uniform<const D: usize>(
    shape: [usize; D],
    bound: f64,
    rng: &mut Rng,
    device: &Device,
) -> Param<Tensor<D>> {
    let n = shape.iter().product();
    let v: Vec<f32> = (0..n)
        .map(|_| ((rng.uniform() * 2.0 - 1.0) * bound) as f32)
        .collect();
    Param::from_tensor(Tensor::from_data(TensorData::new(v, shape), device))
}
