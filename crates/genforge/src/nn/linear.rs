//! A fully connected layer in PyTorch's layout (`weight [out, in]`) with optional spectral norm
//! (BigGAN's `SNLinear`), PyTorch's default `nn.Linear` init.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor};

use super::fused_linear::{WeightLayout, linear};
use super::{SpectralNorm, init};
use crate::rng::Rng;

#[derive(Module, Debug)]
pub struct Linear {
    /// `[out, in]`
    pub weight: Param<Tensor<2>>,
    pub bias: Option<Param<Tensor<1>>>,
    pub sn: Option<SpectralNorm>,
}

impl Linear {
    /// Weight and bias uniform in `+-1/sqrt(in)` (PyTorch's default).
    pub fn new(
        [cin, cout]: [usize; 2],
        bias: bool,
        spectral_norm: bool,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let bound = 1.0 / (cin as f64).sqrt();
        Linear {
            weight: init::uniform([cout, cin], bound, rng, device),
            bias: bias.then(|| init::uniform([cout], bound, rng, device)),
            sn: spectral_norm.then(|| SpectralNorm::new(cout, 0, rng, device)),
        }
    }

    /// The weight the forward pass uses: `W / sigma(W)` with spectral norm.
    pub fn effective_weight(&self) -> Tensor<2> {
        let w = self.weight.val();
        match &self.sn {
            Some(sn) => {
                let sigma = sn.sigma_matrix(w.clone());
                w / sigma.reshape([1, 1])
            }
            None => w,
        }
    }

    /// `[b, in] -> [b, out]`
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let bias = self.bias.as_ref().map(|b| b.val());
        linear(x, self.effective_weight(), WeightLayout::OutIn, bias)
    }
}
