//! Exponential moving average of the generator's weights (the reference ViTGAN code's
//! `torch_ema`): after each G step `ema = beta * ema + (1 - beta) * g` with
//! `beta = min(decay, (1 + n) / (10 + n))` for the n-th update, so early averages follow G
//! closely instead of being anchored to the random initialisation. Samples use the average.
//! burn visits running states (batch-norm statistics, spectral-norm vectors) like parameters,
//! so they are averaged too, as BigGAN-PyTorch's `ema` averages its whole state dict.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

/// `beta` of the `updates`-th update (1-based).
pub fn decay_at(decay: f64, updates: u64) -> f64 {
    let n = updates as f64;
    decay.min((1.0 + n) / (10.0 + n))
}

struct Collect(Vec<Tensor<1>>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val().without_autodiff().detach();
        let n = t.dims().iter().product::<usize>();
        self.0.push(t.reshape([n]));
    }
}

struct Blend {
    source: std::vec::IntoIter<Tensor<1>>,
    beta: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let src = self
            .source
            .next()
            .expect("EMA and generator have the same parameters");
        let beta = self.beta;
        param.map(|ema| {
            let dims = ema.dims();
            let src = src.to_device(&ema.device()).reshape(dims);
            ema * beta + src * (1.0 - beta)
        })
    }
}

/// `ema <- beta * ema + (1 - beta) * model`, parameter by parameter (both must share a structure;
/// `ema` lives on a plain, non-autodiff device).
pub fn update<M: Module>(ema: M, model: &M, beta: f64) -> M {
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    let mut blend = Blend {
        source: collect.0.into_iter(),
        beta,
    };
    ema.map(&mut blend)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::vitgan::{Generator, VitganConfig};
    use crate::rng::Rng;
    use burn::tensor::Device;

    fn flat<M: Module>(m: &M) -> Vec<f32> {
        let mut c = Collect(Vec::new());
        m.visit(&mut c);
        c.0.into_iter()
            .flat_map(|t| t.into_data().try_to_vec::<f32>().unwrap())
            .collect()
    }

    #[test]
    fn decay_warms_up_to_the_configured_value() {
        assert!((decay_at(0.995, 1) - 2.0 / 11.0).abs() < 1e-12);
        assert!((decay_at(0.995, 100) - 101.0 / 110.0).abs() < 1e-12);
        assert_eq!(decay_at(0.995, 1_000_000), 0.995);
    }

    #[test]
    fn update_is_the_convex_combination_for_every_parameter() {
        let device = Device::flex();
        let cfg = VitganConfig {
            z_dim: 4,
            channels: 1,
            resolution: 8,
            patch: 4,
            hidden: 8,
            depth: 1,
            heads: 2,
            mapping_layers: 2,
            ..Default::default()
        };
        let ema = Generator::new(&cfg, &mut Rng::new(1), &device);
        let g = Generator::new(&cfg, &mut Rng::new(2), &device);
        let (e0, g0) = (flat(&ema), flat(&g));
        assert_eq!(e0.len(), g0.len());
        let out = flat(&update(ema, &g, 0.9));
        for i in 0..e0.len() {
            let want = 0.9 * e0[i] as f64 + 0.1 * g0[i] as f64;
            let tol = 1e-5 * want.abs().max(1.0);
            assert!(
                (out[i] as f64 - want).abs() < tol,
                "param {i}: {} vs {want}",
                out[i]
            );
        }
    }
}
