//! StyleGAN2's resampling (Karras et al. 2020, "Analyzing and Improving the Image Quality of
//! StyleGAN", appendix B; NVlabs' `upfirdn2d`): upsample by zero insertion, pad, filter with the
//! 4x4 FIR kernel `outer([1,3,3,1], [1,3,3,1]) / 64`, keep every `down`-th pixel. The kernel is
//! symmetric, so convolution and correlation agree. The three uses StyleGAN2 makes of it are
//! depthwise (grouped) burn convolutions here; [`upfirdn2d_reference`] is the definition, by
//! loops, that the tests hold them to.

use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{Tensor, TensorData, module};

/// The 1-D taps before normalisation.
pub const TAPS: [f32; 4] = [1.0, 3.0, 3.0, 1.0];

/// The 4x4 kernel normalised to sum 1, times `gain` (NVlabs' `setup_filter([1,3,3,1])`).
pub fn filter(gain: f32) -> [f32; 16] {
    let mut f = [0.0; 16];
    for i in 0..4 {
        for j in 0..4 {
            f[i * 4 + j] = TAPS[i] * TAPS[j] / 64.0 * gain;
        }
    }
    f
}

/// The kernel for each of `c` channels, `[c, 1, 4, 4]`.
fn depthwise(c: usize, gain: f32, device: &burn::tensor::Device) -> Tensor<4> {
    Tensor::from_data(
        TensorData::new(filter(gain).repeat(c), [c, 1, 4, 4]),
        device,
    )
}

/// Pad by `pad` on every side, filter, keep every `down`-th pixel:
/// `[b, c, h, w] -> [b, c, (h + 2 pad - 4) / down + 1, ...]` (`upfirdn2d` with `up = 1`).
pub fn filter2d(x: Tensor<4>, pad: usize, down: usize) -> Tensor<4> {
    let c = x.dims()[1];
    let w = depthwise(c, 1.0, &x.device());
    module::conv2d(
        x,
        w,
        None,
        ConvOptions::new([down, down], [pad, pad], [1, 1], c),
    )
}

/// NVlabs' `upsample2d`: `[b, c, h, w] -> [b, c, 2h, 2w]` (zero insertion, padding `[2, 1]`,
/// the filter with gain 4), as one depthwise transposed convolution.
pub fn upsample2d(x: Tensor<4>) -> Tensor<4> {
    let c = x.dims()[1];
    let w = depthwise(c, 4.0, &x.device());
    module::conv_transpose2d(
        x,
        w,
        None,
        ConvTransposeOptions::new([2, 2], [1, 1], [0, 0], [1, 1], c),
    )
}

/// NVlabs' `downsample2d`: `[b, c, h, w] -> [b, c, h/2, w/2]` (padding 1, filter, stride 2).
pub fn downsample2d(x: Tensor<4>) -> Tensor<4> {
    filter2d(x, 1, 2)
}

/// `upfirdn2d` by its definition, on one `[h, w]` plane in f64: zero-insert `up - 1` pixels
/// after each pixel, pad `[p0, p1]` on both axes, correlate with `f` (`[4, 4]`, times `gain`),
/// keep every `down`-th pixel.
pub fn upfirdn2d_reference(
    x: &[f64],
    [h, w]: [usize; 2],
    up: usize,
    [p0, p1]: [usize; 2],
    down: usize,
    gain: f64,
) -> (Vec<f64>, [usize; 2]) {
    let f = filter(1.0);
    let (uh, uw) = (h * up + p0 + p1, w * up + p0 + p1);
    let mut u = vec![0.0; uh * uw];
    for i in 0..h {
        for j in 0..w {
            u[(i * up + p0) * uw + j * up + p0] = x[i * w + j];
        }
    }
    let (oh, ow) = ((uh - 4) / down + 1, (uw - 4) / down + 1);
    let mut out = vec![0.0; oh * ow];
    for i in 0..oh {
        for j in 0..ow {
            let mut acc = 0.0;
            for a in 0..4 {
                for b in 0..4 {
                    acc += f[a * 4 + b] as f64 * u[(i * down + a) * uw + j * down + b];
                }
            }
            out[i * ow + j] = acc * gain;
        }
    }
    (out, [oh, ow])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::values;
    use burn::tensor::Device;

    fn check(
        got: Tensor<4>,
        x: &[f32],
        [b, c, h, w]: [usize; 4],
        up: usize,
        pad: [usize; 2],
        down: usize,
        gain: f64,
    ) {
        let got = values(got);
        let per = got.len() / (b * c);
        for plane in 0..b * c {
            let xs: Vec<f64> = x[plane * h * w..(plane + 1) * h * w]
                .iter()
                .map(|v| *v as f64)
                .collect();
            let (want, [oh, ow]) = upfirdn2d_reference(&xs, [h, w], up, pad, down, gain);
            assert_eq!(per, oh * ow);
            for (g, w) in got[plane * per..(plane + 1) * per].iter().zip(&want) {
                assert!((*g as f64 - w).abs() < 1e-5, "{g} vs {w}");
            }
        }
    }

    #[test]
    fn the_three_resamplings_equal_their_definition() {
        let device = Device::flex();
        let mut rng = crate::rng::Rng::new(3);
        let shape = [2, 3, 6, 6];
        let v = rng.normal_vec(shape.iter().product(), 0.0, 1.0);
        let x = || Tensor::<4>::from_data(TensorData::new(v.clone(), shape), &device);
        // upsample2d: up 2, padding [2, 1], gain 4 (up^2).
        let up = upsample2d(x());
        assert_eq!(up.dims(), [2, 3, 12, 12]);
        check(up, &v, shape, 2, [2, 1], 1, 4.0);
        // downsample2d: padding [1, 1], down 2.
        let down = downsample2d(x());
        assert_eq!(down.dims(), [2, 3, 3, 3]);
        check(down, &v, shape, 1, [1, 1], 2, 1.0);
        // The filter before a stride-2 3x3 convolution: padding [2, 2].
        check(filter2d(x(), 2, 1), &v, shape, 1, [2, 2], 1, 1.0);
    }
}
