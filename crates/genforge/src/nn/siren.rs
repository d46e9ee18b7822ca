//! ViTGAN's implicit patch decoder: learned Fourier features of pixel coordinates (LFF, from
//! CIPS) fed through SIREN sine layers whose weights are modulated by the patch embedding (the
//! seed's `ModulatedLinear`, StyleGAN2 modulation with optional demodulation).
//!
//! Every weight here is equalized like the rest of G: stored uniform in [-1, 1] and multiplied at
//! run time by its SIREN init bound. The function at initialisation is SIREN's, but Adam's steps
//! are relative to that bound; with the raw weights (bounds down to 1/in) the ViTGAN article's learning rate
//! of 0.002 changes them by tens of percent per step and `sin(30 x)` turns that into noise.

use burn::module::{Module, Param};
use burn::tensor::{Device, Tensor, TensorData};

use super::activation::sin;
use super::fused_linear::{WeightLayout, linear, scaled_linear};
use crate::rng::Rng;

/// SIREN's frequency factor `omega_0` (Sitzmann et al.; the ViTGAN article uses 30 for every layer).
pub const OMEGA_0: f64 = 30.0;

/// Uniform in [-1, 1]: the stored (equalized) form of every weight in this module.
fn uniform<const D: usize>(shape: [usize; D], rng: &mut Rng, device: &Device) -> Param<Tensor<D>> {
    super::init::uniform(shape, 1.0, rng, device)
}

/// Learned Fourier features: `E_fou(v) = sin(W v + b)` for 2-D coordinates `v`.
#[derive(Module, Debug)]
pub struct Lff {
    /// `[2, hidden]`, effective weight uniform in `+-sqrt(9 / fan_in)` (SIREN's first layer).
    pub weight: Param<Tensor<2>>,
    /// Effective bias uniform in `+-1 / sqrt(fan_in)` (PyTorch's `nn.Linear` default).
    pub bias: Param<Tensor<1>>,
}

const LFF_WEIGHT_GAIN: f64 = 2.121_320_343_559_642_5; // sqrt(9 / 2)
const LFF_BIAS_GAIN: f64 = std::f64::consts::FRAC_1_SQRT_2;

impl Lff {
    pub fn new(hidden: usize, rng: &mut Rng, device: &Device) -> Self {
        Lff {
            weight: uniform([2, hidden], rng, device),
            bias: uniform([hidden], rng, device),
        }
    }

    /// `[n, 2] -> [n, hidden]`
    pub fn forward(&self, coords: Tensor<2>) -> Tensor<2> {
        let w = self.weight.val() * LFF_WEIGHT_GAIN;
        let b = self.bias.val() * LFF_BIAS_GAIN;
        sin(linear(coords, w, WeightLayout::InOut, Some(b)))
    }
}

/// Pixel coordinates of a `p x p` patch in `[-1, 1]^2`, row-major, each `(x, y)` = (column,
/// row) as numpy's `meshgrid(coords, coords)`: `[p * p, 2]`.
pub fn patch_coords(p: usize, device: &Device) -> Tensor<2> {
    let c = |i: usize| {
        if p == 1 {
            0.0
        } else {
            -1.0 + 2.0 * i as f32 / (p - 1) as f32
        }
    };
    let mut v = Vec::with_capacity(p * p * 2);
    for row in 0..p {
        for col in 0..p {
            v.push(c(col));
            v.push(c(row));
        }
    }
    Tensor::from_data(TensorData::new(v, [p * p, 2]), device)
}

/// A linear layer whose weight is scaled per input feature by a style vector (`gain` folds in the
/// init scale): `w'_oi = s_i w_oi`, optionally demodulated `w''_oi = w'_oi / sqrt(sum_i w'^2 + eps)`.
#[derive(Module, Debug)]
pub struct ModulatedLinear {
    /// `[out, in]`, stored in [-1, 1].
    pub weight: Param<Tensor<2>>,
    /// Run-time multiplier: the effective weight is `weight * gain`, uniform in `+-gain` at init.
    pub gain: f64,
    pub demodulation: bool,
}

impl ModulatedLinear {
    pub fn new(
        [fan_in, fan_out]: [usize; 2],
        gain: f64,
        demodulation: bool,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        ModulatedLinear {
            weight: uniform([fan_out, fan_in], rng, device),
            gain,
            demodulation,
        }
    }

    /// `x: [m or 1, s, in]`, `style: [m, in]` -> `[m, s, out]`. Modulating the input instead of
    /// the weight is the same product (`sum_i w_oi s_i x_i`) without a per-sample weight copy.
    pub fn forward(&self, x: Tensor<3>, style: Tensor<2>) -> Tensor<3> {
        let [m, fan_in] = style.dims();
        let s = x.dims()[1];
        let fan_out = self.weight.dims()[0];
        let xs = x * style.clone().unsqueeze_dim::<3>(1); // [m, s, in]
        let rows = xs.reshape([m * s, fan_in]);
        let w = self.weight.val();
        let y = scaled_linear(rows, w.clone(), self.gain, WeightLayout::OutIn, None); // [m*s, out]
        let y = y.reshape([m, s, fan_out]);
        if self.demodulation {
            let w = w * self.gain; // [out, in]
            let demod =
                super::modulated_conv::demodulation(style, w.reshape([fan_out, fan_in, 1, 1])); // [m, out]
            y * demod.unsqueeze_dim::<3>(1)
        } else {
            y
        }
    }
}

/// The SIREN: `sin(omega * mod(x))` for the first and each hidden layer, then a modulated
/// linear output layer (the ViTGAN article's `outermost_linear=True`).
#[derive(Module, Debug)]
pub struct Siren {
    pub layers: Vec<ModulatedLinear>,
    pub out: ModulatedLinear,
}

impl Siren {
    /// `hidden_layers` sine layers after the first (seed: 1), all modulated by `[m, hidden]` styles.
    pub fn new(
        hidden: usize,
        hidden_layers: usize,
        channels: usize,
        demodulation: bool,
        rng: &mut Rng,
        device: &Device,
    ) -> Self {
        let h = hidden as f64;
        // SIREN init for the sine layers: first U(+-1/in), later U(+-sqrt(6/in)/omega_0), so
        // `omega_0 * W x` has unit-order spread for unit-order inputs and styles. The linear output
        // layer is equalized at 1/sqrt(in) (StyleGAN's toRGB scale): unit-order pixels at init.
        let later = (6.0 / h).sqrt() / OMEGA_0;
        let mut layers = vec![ModulatedLinear::new(
            [hidden, hidden],
            1.0 / h,
            demodulation,
            rng,
            device,
        )];
        for _ in 0..hidden_layers {
            layers.push(ModulatedLinear::new(
                [hidden, hidden],
                later,
                demodulation,
                rng,
                device,
            ));
        }
        let out = ModulatedLinear::new(
            [hidden, channels],
            1.0 / h.sqrt(),
            demodulation,
            rng,
            device,
        );
        Siren { layers, out }
    }

    /// Fourier features `[s, hidden]` shared by all patches, styles `[m, hidden]` -> `[m, s, channels]`.
    pub fn forward(&self, features: Tensor<2>, style: Tensor<2>) -> Tensor<3> {
        let mut x = features.unsqueeze::<3>(); // [1, s, hidden]
        for layer in &self.layers {
            x = sin(layer.forward(x, style.clone()) * OMEGA_0); // [m, s, hidden]
        }
        self.out.forward(x, style)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(t: impl Into<Tensor<2>>) -> Vec<f64> {
        let t: Tensor<2> = t.into();
        t.into_data().iter::<f32>().map(f64::from).collect()
    }

    /// `y = W x` for `[m, s, in]` rows on the host, with `w` as `[out, in]`.
    fn dense(x: &[f64], w: &[f64], rows: usize, fan_in: usize, fan_out: usize) -> Vec<f64> {
        (0..rows * fan_out)
            .map(|r| {
                let (row, o) = (r / fan_out, r % fan_out);
                (0..fan_in)
                    .map(|i| w[o * fan_in + i] * x[row * fan_in + i])
                    .sum()
            })
            .collect()
    }

    /// LFF is `sin(v W g_w + b g_b)` and the SIREN is `sin(30 mod(x))` per hidden layer, then
    /// the modulated linear output, each computed here on the host from the stored weights.
    #[test]
    fn lff_and_siren_follow_their_formulas() {
        let device = Device::flex();
        let mut rng = Rng::new(9);
        let (hidden, p, m, channels) = (16, 4, 5, 3);
        let lff = Lff::new(hidden, &mut rng, &device);
        let coords = patch_coords(p, &device);
        let f = lff.forward(coords.clone());
        assert_eq!(f.dims(), [p * p, hidden]);
        let (v, w) = (host(coords), host(lff.weight.val()));
        let b: Vec<f64> = lff
            .bias
            .val()
            .into_data()
            .iter::<f32>()
            .map(f64::from)
            .collect();
        let got_f = host(f.clone());
        for n in 0..p * p {
            for j in 0..hidden {
                let arg = (0..2)
                    .map(|i| v[n * 2 + i] * w[i * hidden + j])
                    .sum::<f64>()
                    * LFF_WEIGHT_GAIN
                    + b[j] * LFF_BIAS_GAIN;
                let got = got_f[n * hidden + j];
                assert!(
                    (got - arg.sin()).abs() < 1e-5,
                    "lff[{n}, {j}]: {got} vs {}",
                    arg.sin()
                );
            }
        }
        let siren = Siren::new(hidden, 1, channels, false, &mut rng, &device);
        let sv = rng.normal_vec(m * hidden, 0.0, 1.0);
        let style = Tensor::<2>::from_data(TensorData::new(sv.clone(), [m, hidden]), &device);
        let got: Vec<f64> = siren
            .forward(f, style)
            .into_data()
            .iter::<f32>()
            .map(f64::from)
            .collect();
        // Host: each sample's rows modulated by its style, through every layer.
        let s = p * p;
        let mut x: Vec<f64> = (0..m).flat_map(|_| got_f.clone()).collect(); // [m, s, hidden]
        let modulate = |x: &[f64]| -> Vec<f64> {
            x.iter()
                .enumerate()
                .map(|(k, xv)| xv * sv[(k / (s * hidden)) * hidden + k % hidden] as f64)
                .collect()
        };
        for layer in &siren.layers {
            let w: Vec<f64> = host(layer.weight.val())
                .iter()
                .map(|w| w * layer.gain)
                .collect();
            x = dense(&modulate(&x), &w, m * s, hidden, hidden)
                .into_iter()
                .map(|y| (OMEGA_0 * y).sin())
                .collect();
        }
        let w: Vec<f64> = host(siren.out.weight.val())
            .iter()
            .map(|w| w * siren.out.gain)
            .collect();
        let want = dense(&modulate(&x), &w, m * s, hidden, channels);
        assert_eq!(got.len(), want.len());
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() < 1e-3 * (1.0 + w.abs()),
                "siren[{k}]: {g} vs {w}"
            );
        }
    }

    #[test]
    fn modulation_equals_per_sample_weights_and_demodulation_normalizes_them() {
        let device = Device::flex();
        let mut rng = Rng::new(10);
        let (m, s, i, o) = (3, 4, 5, 2);
        for demod in [false, true] {
            let layer =
                ModulatedLinear::new([i, o], 1.0 / (i as f64).sqrt(), demod, &mut rng, &device);
            let xv = rng.normal_vec(m * s * i, 0.0, 1.0);
            let sv = rng.normal_vec(m * i, 0.0, 1.0);
            let x = Tensor::<3>::from_data(TensorData::new(xv.clone(), [m, s, i]), &device);
            let st = Tensor::<2>::from_data(TensorData::new(sv.clone(), [m, i]), &device);
            let y = layer
                .forward(x, st)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let w = layer.weight.val().into_data().try_to_vec::<f32>().unwrap();
            assert!((layer.gain - 1.0 / (i as f64).sqrt()).abs() < 1e-12);
            for a in 0..m {
                // The ViTGAN article's per-sample weight w'[o][i] = w[o][i] s[i] / sqrt(in), demodulated.
                let wp: Vec<f64> = (0..o * i)
                    .map(|k| w[k] as f64 * sv[a * i + k % i] as f64 / (i as f64).sqrt())
                    .collect();
                for oo in 0..o {
                    let norm = if demod {
                        ((0..i).map(|ii| wp[oo * i + ii].powi(2)).sum::<f64>() + 1e-8).sqrt()
                    } else {
                        1.0
                    };
                    for ss in 0..s {
                        let want: f64 = (0..i)
                            .map(|ii| wp[oo * i + ii] / norm * xv[(a * s + ss) * i + ii] as f64)
                            .sum();
                        let got = y[(a * s + ss) * o + oo] as f64;
                        assert!((want - got).abs() < 1e-4, "demod {demod}: {want} vs {got}");
                    }
                }
            }
        }
    }

    #[test]
    fn coords_are_x_then_y() {
        let c = patch_coords(3, &Device::flex())
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        // Row 0 col 2 is (x = 1, y = -1); row 2 col 0 is (x = -1, y = 1).
        assert_eq!(&c[4..6], &[1.0, -1.0]);
        assert_eq!(&c[12..14], &[-1.0, 1.0]);
    }
}
