//! Layers burn lacks, named as in the papers.

pub mod activation;
pub mod adain;
pub mod batch_norm;
pub mod blur;
pub mod channel_affine;
pub mod conditional_batch_norm;
pub mod conv;
pub mod cpu_conv;
pub mod diff_augment;
pub mod equalized;
pub mod equalized_conv;
pub mod fused_linear;
pub mod gemm_conv;
pub mod im2row;
pub mod init;
pub mod layer_norm;
pub mod linear;
pub mod mapping;
pub mod masked_conv;
pub mod minibatch_stddev;
pub mod modulated_conv;
pub mod multi_head_attention;
pub mod noise;
mod parallel;
pub mod pixel_norm;
pub mod self_attention;
pub mod siren;
pub mod spectral_norm;
mod tap_sum;
pub mod vector_quantizer;

pub use conv::{Conv2d, ConvTranspose2d};
pub use self_attention::SelfAttention;
pub use spectral_norm::SpectralNorm;

/// Helpers shared by the layer tests.
#[cfg(test)]
pub(crate) mod testing {
    use burn::tensor::{Device, Tensor, TensorData};

    use crate::rng::Rng;

    /// The values of an f32 tensor.
    pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    /// Normal values on the autodiff CPU device.
    pub fn randn<const D: usize>(
        rng: &mut Rng,
        shape: [usize; D],
        mean: f64,
        std: f64,
    ) -> Tensor<D> {
        let n = shape.iter().product();
        let device = Device::flex().autodiff();
        Tensor::from_data(
            TensorData::new(rng.normal_vec(n, mean, std), shape),
            &device,
        )
    }
}
