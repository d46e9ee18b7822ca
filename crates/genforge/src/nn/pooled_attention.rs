//! Self-attention as SAGAN's and BigGAN's released code builds it (BigGAN-PyTorch's
//! `layers.Attention`, a non-local block; Wang et al. 2018, Zhang et al. 2019), which differs
//! from the SAGAN paper's description ([`super::SelfAttention`]): spectrally normalized 1x1
//! convs without bias, `theta`/`phi` to C/8 channels and `g` to C/2, a 2x2 max-pool on `phi` and
//! `g` (the keys and values of n/4 positions), a softmax over the keys, `o` from C/2 back to C,
//! and `y = x + gamma o` with a learned scalar `gamma` starting at 0.

use burn::module::{Module, Param};
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};

use super::activation::softmax;
use super::init;
use super::sn_layers::SnConv2d;
use crate::rng::Rng;

#[derive(Module, Debug)]
pub struct PooledSelfAttention {
    pub theta: SnConv2d,
    pub phi: SnConv2d,
    pub g: SnConv2d,
    pub o: SnConv2d,
    /// A scalar in PyTorch (shape `[]`), `[1]` here.
    pub gamma: Param<Tensor<1>>,
}

fn pool(x: Tensor<4>) -> Tensor<4> {
    max_pool2d(x, MaxPoolOptions::new([2, 2]).with_stride([2, 2]))
}

impl PooledSelfAttention {
    /// `channels` at least 8 (C/8 projections); `sn_eps` for the convs' spectral norm.
    pub fn new(channels: usize, sn_eps: f64, rng: &mut Rng, device: &Device) -> Self {
        let (c8, c2) = (channels / 8, channels / 2);
        let mut conv = |cin, cout| SnConv2d::new([cin, cout], 1, false, sn_eps, rng, device);
        PooledSelfAttention {
            theta: conv(channels, c8),
            phi: conv(channels, c8),
            g: conv(channels, c2),
            o: conv(c2, channels),
            gamma: init::zeros([1], device),
        }
    }

    /// `[b, c, h, w] -> ([b, c, h, w], attention map [b, n, n/4])` with `n = h * w` (even `h`,
    /// `w`); row `i` of the map is query position `i`'s distribution over the pooled keys.
    pub fn forward(&self, x: Tensor<4>) -> (Tensor<4>, Tensor<3>) {
        let [b, _, h, w] = x.dims();
        let n = h * w;
        let theta = self.theta.forward(x.clone());
        let c8 = theta.dims()[1];
        let theta = theta.reshape([b, c8, n]); // [b, c/8, n]
        let phi = pool(self.phi.forward(x.clone())).reshape([b, c8, n / 4]); // [b, c/8, n/4]
        let g = pool(self.g.forward(x.clone()));
        let c2 = g.dims()[1];
        let g = g.reshape([b, c2, n / 4]); // [b, c/2, n/4]
        let beta = softmax(theta.swap_dims(1, 2).matmul(phi), 2); // [b, n, n/4]
        let o = g.matmul(beta.clone().swap_dims(1, 2)); // [b, c/2, n]
        let o = self.o.forward(o.reshape([b, c2, h, w])); // [b, c, h, w]
        (x + o * self.gamma.val().reshape([1, 1, 1, 1]), beta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::TensorData;

    #[test]
    fn output_matches_an_explicit_loop() {
        let device = Device::flex();
        let mut rng = Rng::new(7);
        let mut sa = PooledSelfAttention::new(16, 1e-6, &mut rng, &device);
        sa.gamma = Param::from_tensor(Tensor::from_data(
            TensorData::new(vec![0.6f32], [1]),
            &device,
        ));
        let (c, h, w) = (16, 4, 6);
        let n = h * w;
        let xv = rng.normal_vec(c * n, 0.0, 1.0);
        let x = Tensor::<4>::from_data(TensorData::new(xv.clone(), [1, c, h, w]), &device);
        let (y, beta) = sa.forward(x.clone());
        assert_eq!(beta.dims(), [1, n, n / 4]);
        let y: Vec<f32> = y.into_data().try_to_vec().unwrap();
        let weight = |conv: &SnConv2d| -> Vec<f32> {
            conv.effective_weight().into_data().try_to_vec().unwrap()
        };
        let (wt, wp, wg, wo) = (
            weight(&sa.theta),
            weight(&sa.phi),
            weight(&sa.g),
            weight(&sa.o),
        );
        // 1x1 conv of a [cin, n] map by a [cout, cin] matrix.
        let project = |wm: &[f32], input: &[f64], cin: usize| -> Vec<Vec<f64>> {
            let cout = wm.len() / cin;
            (0..cout)
                .map(|o| {
                    (0..input.len() / cin)
                        .map(|p| {
                            (0..cin)
                                .map(|i| {
                                    wm[o * cin + i] as f64 * input[i * (input.len() / cin) + p]
                                })
                                .sum()
                        })
                        .collect()
                })
                .collect()
        };
        let x64: Vec<f64> = xv.iter().map(|&v| v as f64).collect();
        let theta = project(&wt, &x64, c);
        // 2x2 max-pool of a projected [ch][n] map to [ch][n/4].
        let pooled = |m: Vec<Vec<f64>>| -> Vec<Vec<f64>> {
            m.iter()
                .map(|row| {
                    (0..h / 2)
                        .flat_map(|i| (0..w / 2).map(move |j| (i, j)))
                        .map(|(i, j)| {
                            let at = |di, dj| row[(2 * i + di) * w + 2 * j + dj];
                            at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1))
                        })
                        .collect()
                })
                .collect()
        };
        let phi = pooled(project(&wp, &x64, c));
        let g = pooled(project(&wg, &x64, c));
        // o_in[ch][i] = sum_j softmax_j(theta_i . phi_j) g[ch][j]
        let mut o_in = vec![0.0f64; (c / 2) * n];
        for i in 0..n {
            let s: Vec<f64> = (0..n / 4)
                .map(|j| (0..c / 8).map(|k| theta[k][i] * phi[k][j]).sum())
                .collect();
            let m = s.iter().cloned().fold(f64::MIN, f64::max);
            let z: f64 = s.iter().map(|v| (v - m).exp()).sum();
            for (ch, gr) in g.iter().enumerate() {
                o_in[ch * n + i] = (0..n / 4).map(|j| (s[j] - m).exp() / z * gr[j]).sum();
            }
        }
        let o = project(&wo, &o_in, c / 2);
        for ch in 0..c {
            for p in 0..n {
                let want = x64[ch * n + p] + 0.6 * o[ch][p];
                let got = y[ch * n + p] as f64;
                assert!((got - want).abs() < 1e-4, "{got} vs {want}");
            }
        }
    }
}
