//! `y[b, c, ...] = x[b, c, ...] * scale[b, c] + shift[b, c]`, the scale and the shift each per
//! sample and channel or per channel only: a convolution's bias, StyleGAN2's modulation and
//! demodulation. On the CPU backend one parallel operation each way (`cpu::affine`), elsewhere
//! burn's broadcast operations, the reference the tests hold the kernel to.

use burn::backend::{DType, Dispatch};
use burn::tensor::Tensor;

use crate::cpu::affine::ChannelAffine;
use crate::cpu::settings::fused_on;

/// `x [b, c, h, w] * scale + shift`, each `[b, c]` (per sample) or `[1, c]` (shared) when given:
/// one parallel operation each way on the CPU backend, burn's broadcast ops elsewhere.
pub fn channel_affine(
    x: Tensor<4>,
    scale: Option<Tensor<2>>,
    shift: Option<Tensor<2>>,
) -> Tensor<4> {
    let device = x.device();
    if !(fused_on(&device) && x.dtype() == DType::F32) {
        let [_, c, _, _] = x.dims();
        let per = |t: Tensor<2>| {
            let rows = t.dims()[0];
            t.reshape([rows, c, 1, 1])
        };
        let y = match scale {
            Some(s) => x * per(s),
            None => x,
        };
        return match shift {
            Some(t) => y + per(t),
            None => y,
        };
    }
    let empty = || Tensor::<2>::zeros([0, 0], &device);
    let (scale, shift) = (scale.unwrap_or_else(empty), shift.unwrap_or_else(empty));
    Tensor::from_dispatch(<Dispatch as ChannelAffine>::channel_affine(
        x.into_dispatch(),
        scale.into_dispatch(),
        shift.into_dispatch(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::testing::{self, values};

    fn randn<const D: usize>(rng: &mut Rng, shape: [usize; D]) -> Tensor<D> {
        testing::randn(rng, shape, 0.3, 1.0)
    }

    /// Values and gradients equal burn's broadcast product and sum for every combination of
    /// per-sample, shared and absent scale and shift, with the gradient of a shared parameter
    /// summed over the batch.
    #[test]
    fn matches_burn_broadcast_ops_and_their_gradients() {
        let mut rng = Rng::new(31);
        let (b, c, h, w) = (3, 4, 5, 2);
        let rows = |r: usize, rng: &mut Rng| (r > 0).then(|| randn(rng, [r, c]));
        for (scale_rows, shift_rows) in [(3, 1), (1, 3), (0, 1), (3, 0), (1, 1), (3, 3), (0, 0)] {
            let x = randn(&mut rng, [b, c, h, w]);
            let up = randn(&mut rng, [b, c, h, w]);
            let (s, t) = (rows(scale_rows, &mut rng), rows(shift_rows, &mut rng));
            let run = |fused: bool| {
                let x = x.clone().require_grad();
                let s = s.clone().map(|s| s.require_grad());
                let t = t.clone().map(|t| t.require_grad());
                // A fresh input, owned by the operation alone: without a tracked scale it runs
                // in place on it.
                let input = x.clone() * 2.0;
                let y = if fused {
                    channel_affine(input, s.clone(), t.clone())
                } else {
                    let mut y = input;
                    if let Some(s) = &s {
                        y = y * s.clone().reshape([scale_rows, c, 1, 1]);
                    }
                    if let Some(t) = &t {
                        y = y + t.clone().reshape([shift_rows, c, 1, 1]);
                    }
                    y
                };
                let grads = (y.clone() * up.clone()).sum().backward();
                let grad =
                    |p: &Option<Tensor<2>>| p.as_ref().map(|p| values(p.grad(&grads).unwrap()));
                (
                    values(y),
                    values(x.grad(&grads).unwrap()),
                    grad(&s),
                    grad(&t),
                )
            };
            let (ours, theirs) = (run(true), run(false));
            let what = format!("scale rows {scale_rows}, shift rows {shift_rows}");
            let close = |a: &[f32], b: &[f32], part: &str| {
                assert_eq!(a.len(), b.len(), "{part} {what}");
                for (x, y) in a.iter().zip(b) {
                    assert!(
                        (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                        "{part} {what}: {x} vs {y}"
                    );
                }
            };
            close(&ours.0, &theirs.0, "y");
            close(&ours.1, &theirs.1, "dx");
            for (part, a, b) in [
                ("dscale", &ours.2, &theirs.2),
                ("dshift", &ours.3, &theirs.3),
            ] {
                assert_eq!(a.is_some(), b.is_some(), "{part} {what}");
                if let (Some(a), Some(b)) = (a, b) {
                    close(a, b, part);
                }
            }
        }
    }
}
