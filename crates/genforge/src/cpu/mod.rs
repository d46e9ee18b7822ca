//! CPU kernels: the operations burn-flex runs slowly at these models' sizes, written for the CPU
//! backend and registered with burn through backend extensions.
//!
//! This is the kernel boundary. Nothing here imports `nn`; the layers in `nn` call these kernels
//! on the CPU backend and keep burn's composition of the same operation beside each call, as the
//! path for other devices and the reference the tests hold each kernel to. The models never
//! call this module directly. [`settings`] holds the environment switches that turn kernels off
//! to compare.
//!
//! | module | kernels |
//! |---|---|
//! | [`conv`] | convolutions and transposed convolutions, both gradients (batch-wide products, taps, im2col) |
//! | [`taps`] | the register-blocked sums over kernel taps the convolutions run on |
//! | [`gemm`] | strided matrix products through the `gemm` crate |
//! | [`dense`] | dense layers with the bias and a constant scale folded in |
//! | [`elementwise`] | LeakyReLU, ReLU, residual sums, softmax, GELU, sine, LayerNorm, PixelCNN gate, cross-entropy |
//! | [`norm`] | training-mode batch norm with a per-sample affine map |
//! | [`affine`] | per-channel scale and shift (biases, StyleGAN2 modulation) |
//! | [`resample`] | StyleGAN's blur, nearest 2x upsampling, 2x2 block sums |
//! | [`im2row`] | channels-last im2col for the PixelCNN's masked convolutions |
//! | [`autodiff`], [`parallel`] | the one registration pattern, and output buffers written by parallel tasks |

pub mod affine;
pub(crate) mod autodiff;
pub mod conv;
pub mod dense;
pub mod elementwise;
pub(crate) mod gemm;
pub mod im2row;
pub mod norm;
pub(crate) mod parallel;
pub mod resample;
pub mod settings;
pub(crate) mod taps;
