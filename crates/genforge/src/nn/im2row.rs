//! The taps of a masked convolution's window around every pixel (im2col, channels last), for the
//! Gated PixelCNN: on the CPU backend one operation each way (`cpu::im2row`), elsewhere burn's
//! pad, slices and concatenation, the reference the tests hold the kernel to.

use burn::backend::{DType, Dispatch};
use burn::tensor::Tensor;
use burn::tensor::ops::PadMode;

use crate::cpu::im2row::Im2Row;
pub use crate::cpu::im2row::Window;
use crate::cpu::settings::fused_on;

/// The taps of `window` around every pixel of `x` (`[b, h, w, c]` -> `[b, h, w, taps * c]`):
/// one operation on the CPU backend, burn's pad, slices and concatenation elsewhere (or with
/// `GENFORGE_FUSED=0`).
pub fn im2row(x: Tensor<4>, window: Window) -> Tensor<4> {
    if fused_on(&x.device()) && x.dtype() == DType::F32 {
        return Tensor::from_dispatch(<Dispatch as Im2Row>::im2row(x.into_dispatch(), window));
    }
    im2row_composed(x, window)
}

/// [`im2row`] from burn operations.
pub fn im2row_composed(x: Tensor<4>, win: Window) -> Tensor<4> {
    let [_, h, w, _] = x.dims();
    // Enough zeros that every window fits: `top` above, `left` left, the rest right.
    let right = (win.cols - 1).saturating_sub(win.left);
    let bottom = (win.rows - 1).saturating_sub(win.top);
    let padded = x.pad(
        [(0, 0), (win.top, bottom), (win.left, right), (0, 0)],
        PadMode::Constant(0.0),
    );
    let views: Vec<Tensor<4>> = (0..win.rows)
        .flat_map(|dy| (0..win.cols).map(move |dx| (dy, dx)))
        .map(|(dy, dx)| padded.clone().narrow(1, dy, h).narrow(2, dx, w))
        .collect();
    Tensor::cat(views, 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::testing::values;
    use burn::tensor::{Device, TensorData};

    /// Values and the input gradient equal the composed form for the PixelCNN's windows
    /// (vertical 7x7 type A, vertical and horizontal 3x3 type B) and an odd map.
    #[test]
    fn matches_the_composed_taps_forward_and_backward() {
        let device = Device::flex().autodiff();
        let mut rng = Rng::new(21);
        let windows = [
            Window {
                rows: 3,
                cols: 7,
                top: 3,
                left: 3,
            },
            Window {
                rows: 2,
                cols: 3,
                top: 1,
                left: 1,
            },
            Window {
                rows: 1,
                cols: 2,
                top: 0,
                left: 1,
            },
            Window {
                rows: 2,
                cols: 2,
                top: 0,
                left: 0,
            },
        ];
        for win in windows {
            let shape = [2, 5, 6, 3];
            let v = rng.normal_vec(shape.iter().product(), 0.0, 1.0);
            let up_shape = [2, 5, 6, 3 * win.taps()];
            let up = rng.normal_vec(up_shape.iter().product(), 0.0, 1.0);
            let up = Tensor::<4>::from_data(TensorData::new(up, up_shape), &device);
            let run = |fused: bool| {
                let x = Tensor::<4>::from_data(TensorData::new(v.clone(), shape), &device)
                    .require_grad();
                let y = if fused {
                    im2row(x.clone(), win)
                } else {
                    im2row_composed(x.clone(), win)
                };
                let grads = (y.clone() * up.clone()).sum().backward();
                (values(y), values(x.grad(&grads).unwrap()))
            };
            assert_eq!(run(true), run(false), "{win:?}");
        }
    }

    /// A hand-checked case: the 2-tap horizontal window of a 1x3 row `[1, 2, 3]` is
    /// `[(0, 1), (1, 2), (2, 3)]`, and the adjoint of all-ones counts each pixel's uses.
    #[test]
    fn a_row_by_hand() {
        let device = Device::flex();
        let win = Window {
            rows: 1,
            cols: 2,
            top: 0,
            left: 1,
        };
        let x = Tensor::<4>::from_floats([[[[1.0], [2.0], [3.0]]]], &device);
        assert_eq!(values(im2row(x, win)), vec![0.0, 1.0, 1.0, 2.0, 2.0, 3.0]);
        let ones = Tensor::<4>::ones([1, 1, 3, 2], &device);
        let back = Tensor::from_dispatch(<Dispatch as Im2Row>::row2im(ones.into_dispatch(), win));
        assert_eq!(values::<4>(back), vec![2.0, 2.0, 1.0]);
    }
}
