//! Times forward + backward of GAN-sized convolutions through burn's ops and through the
//! batch-wide GEMM route on the CPU (`cpu::conv`): `cargo run --release --example conv_route`.

use std::time::Instant;

use burn::module::Param;
use burn::tensor::module;
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Device, Tensor, TensorData};
use genforge::cpu::conv as cpu_conv;
use genforge::rng::Rng;

fn random(shape: [usize; 4], rng: &mut Rng, device: &Device) -> Tensor<4> {
    let n = shape.iter().product();
    Tensor::from_data(TensorData::new(rng.normal_vec(n, 0.0, 1.0), shape), device)
}

fn time(f: &dyn Fn() -> f32, reps: usize) -> f64 {
    f();
    let t = Instant::now();
    for _ in 0..reps {
        f();
    }
    t.elapsed().as_secs_f64() / reps as f64
}

fn main() {
    let device = Device::flex().autodiff();
    let mut rng = Rng::new(0);
    let b: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(64);
    let reps = 3;
    println!("batch {b}; forward + backward per layer, seconds");
    println!("| layer | burn | gemm route | speed-up |");
    println!("|---|---|---|---|");
    // (name, transposed, in, out, input size, k, stride, padding)
    let layers = [
        ("D conv 1->64 64x64 k4 s2", false, 1, 64, 64, 4, 2, 1),
        ("D conv 64->128 32x32 k4 s2", false, 64, 128, 32, 4, 2, 1),
        ("D conv 128->256 16x16 k4 s2", false, 128, 256, 16, 4, 2, 1),
        ("D conv 256->512 8x8 k4 s2", false, 256, 512, 8, 4, 2, 1),
        ("D conv 512->1 4x4 k4 valid", false, 512, 1, 4, 4, 1, 0),
        ("G convT 20->512 1x1 k4", true, 20, 512, 1, 4, 1, 0),
        ("G convT 512->256 4x4 k4 s2", true, 512, 256, 4, 4, 2, 1),
        ("G convT 256->128 8x8 k4 s2", true, 256, 128, 8, 4, 2, 1),
        ("G convT 128->64 16x16 k4 s2", true, 128, 64, 16, 4, 2, 1),
        ("G convT 64->1 32x32 k4 s2", true, 64, 1, 32, 4, 2, 1),
        ("3x3 conv 64->64 32x32", false, 64, 64, 32, 3, 1, 1),
        ("3x3 conv 128->128 8x8", false, 128, 128, 8, 3, 1, 1),
    ];
    let (mut tb, mut tg) = (0.0, 0.0);
    let only = std::env::var("LAYER").unwrap_or_default();
    let route = std::env::var("ROUTE").unwrap_or_default();
    for (name, transposed, cin, cout, size, k, s, p) in layers {
        if !name.contains(&only) {
            continue;
        }
        let x0 = random([b, cin, size, size], &mut rng, &device);
        let wshape = if transposed {
            [cin, cout, k, k]
        } else {
            [cout, cin, k, k]
        };
        let w0 = random(wshape, &mut rng, &device);
        let run = |gemm: bool| {
            let x = Param::from_tensor(x0.clone());
            let w = Param::from_tensor(w0.clone());
            let y = match (transposed, gemm) {
                (false, false) => module::conv2d(
                    x.val(),
                    w.val(),
                    None,
                    ConvOptions::new([s, s], [p, p], [1, 1], 1),
                ),
                (false, true) => cpu_conv::conv2d(x.val(), w.val(), s, p),
                (true, false) => module::conv_transpose2d(
                    x.val(),
                    w.val(),
                    None,
                    ConvTransposeOptions::new([s, s], [p, p], [0, 0], [1, 1], 1),
                ),
                (true, true) => cpu_conv::conv_transpose2d(x.val(), w.val(), s, p),
            };
            let grads = (y.clone() * y).sum().backward();
            let gx = x.val().grad(&grads).unwrap();
            let gw = w.val().grad(&grads).unwrap();
            gx.sum().into_scalar::<f32>() + gw.sum().into_scalar::<f32>()
        };
        let a = if route == "gemm" {
            1.0
        } else {
            time(&|| run(false), reps)
        };
        let g = if route == "burn" {
            1.0
        } else {
            time(&|| run(true), reps)
        };
        tb += a;
        tg += g;
        println!("| {name} | {a:.4} | {g:.4} | {:.2}x |", a / g);
    }
    println!("| total | {tb:.4} | {tg:.4} | {:.2}x |", tb / tg);
}
