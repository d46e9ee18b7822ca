//! The FP32 matrix-product rate of the `gemm` crate that the CPU convolutions use, for square
//! products (compare with `torch.mm` on the same machine):
//! `cargo run --release --example gemm_peak -- [N ...]` (default 1024 2048 4096).

use std::time::Instant;

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1024, 2048, 4096]
    } else {
        sizes
    };
    let threads = rayon::current_num_threads();
    for n in sizes {
        let a = vec![1.0f32; n * n];
        let b = vec![1.0f32; n * n];
        let mut c = vec![0.0f32; n * n];
        let mut best = 0.0f64;
        for _ in 0..4 {
            let t = Instant::now();
            // SAFETY: a, b and c are n x n column-major buffers of the given strides.
            unsafe {
                gemm::gemm(
                    n,
                    n,
                    n,
                    c.as_mut_ptr(),
                    1,
                    n as isize,
                    false,
                    a.as_ptr(),
                    1,
                    n as isize,
                    b.as_ptr(),
                    1,
                    n as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::Rayon(threads),
                );
            }
            best = best.max(2.0 * (n * n * n) as f64 / t.elapsed().as_secs_f64() / 1e9);
        }
        println!("{n}x{n}x{n}: {best:.0} GFLOP/s ({threads} threads, best of 4)");
    }
}
