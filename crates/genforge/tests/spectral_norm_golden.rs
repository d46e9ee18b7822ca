//! Spectral-norm convolutions against PyTorch's `nn.utils.spectral_norm` (golden values from
//! `scripts/spectral_norm_golden.py`): output, weight and input gradients, and the updated `u`
//! after one training-mode forward.

use genforge::burn::module::{Param, RunningState};
use genforge::burn::tensor::{Device, Tensor, TensorData};
use genforge::nn::{Conv2d, ConvTranspose2d, SpectralNorm};
use genforge::rng::Rng;

struct Golden(serde_json::Value);

impl Golden {
    fn load(name: &str) -> Self {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        Golden(serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap())
    }
    fn vec(&self, k: &str) -> Vec<f32> {
        self.0[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    }
    fn shape(&self, k: &str) -> [usize; 4] {
        let v: Vec<usize> = self.0[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as usize)
            .collect();
        [v[0], v[1], v[2], v[3]]
    }
    fn tensor<const D: usize>(&self, k: &str, shape: [usize; D], device: &Device) -> Tensor<D> {
        Tensor::from_data(TensorData::new(self.vec(k), shape), device)
    }
}

fn assert_close(got: Tensor<4>, want: &[f32], what: &str) {
    let got = got.into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(got.len(), want.len(), "{what}: length");
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
        .fold(0.0, f32::max);
    assert!(worst < 1e-5, "{what}: max relative difference {worst}");
}

/// Build a layer from the golden weights, bias and `u`, run forward + backward of
/// `sum(y * r)`, and compare everything PyTorch recorded.
fn check<L>(
    g: &Golden,
    build: impl FnOnce(Param<Tensor<4>>, Param<Tensor<1>>, RunningState<Tensor<1>>) -> L,
    forward: impl Fn(&L, Tensor<4>) -> Tensor<4>,
    parts: impl Fn(&L) -> (Tensor<4>, Tensor<1>),
    what: &str,
) {
    let device = Device::flex().autodiff();
    let layer = build(
        Param::from_tensor(g.tensor("w", g.shape("wshape"), &device)),
        Param::from_tensor(g.tensor("b", [3], &device)),
        RunningState::new(g.tensor("u", [3], &device)),
    );
    let x = g.tensor("x", [2, 2, 6, 6], &device).require_grad();
    let y = forward(&layer, x.clone());
    let loss = (y.clone() * g.tensor("r", g.shape("rshape"), &device)).sum();
    let grads = loss.backward();
    let (weight, u) = parts(&layer);
    assert_close(y, &g.vec("y"), &format!("{what} output"));
    assert_close(
        weight.grad(&grads).unwrap(),
        &g.vec("gw"),
        &format!("{what} dL/dW"),
    );
    assert_close(
        x.grad(&grads).unwrap(),
        &g.vec("gx"),
        &format!("{what} dL/dx"),
    );
    let u1 = u.into_data().try_to_vec::<f32>().unwrap();
    let want = g.vec("u1");
    assert!(
        u1.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5),
        "{what} u: {u1:?} vs {want:?}"
    );
}

fn with_sn(sn: &mut Option<SpectralNorm>, u: RunningState<Tensor<1>>) {
    sn.as_mut().expect("spectral norm on").u = u;
}

#[test]
fn conv2d_matches_pytorch_spectral_norm() {
    let device = Device::flex().autodiff();
    check(
        &Golden::load("sn_conv.json"),
        |w, b, u| {
            let mut c = Conv2d::new([2, 3], 4, 2, 1, true, &mut Rng::new(0), &device);
            (c.weight, c.bias) = (w, b);
            with_sn(&mut c.sn, u);
            c
        },
        |c, x| c.forward(x),
        |c| (c.weight.val(), c.sn.as_ref().unwrap().u.value_sync()),
        "Conv2d",
    );
}

#[test]
fn conv_transpose2d_matches_pytorch_spectral_norm() {
    let device = Device::flex().autodiff();
    check(
        &Golden::load("sn_convT.json"),
        |w, b, u| {
            let mut c = ConvTranspose2d::new([2, 3], 4, 2, 1, true, &mut Rng::new(0), &device);
            (c.weight, c.bias) = (w, b);
            with_sn(&mut c.sn, u);
            c
        },
        |c, x| c.forward(x),
        |c| (c.weight.val(), c.sn.as_ref().unwrap().u.value_sync()),
        "ConvTranspose2d",
    );
}
