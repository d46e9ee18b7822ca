//! Animated GIFs of image sequences (morphs, interpolations), written atomically.

use std::path::Path;

use burn::tensor::Tensor;
use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, RgbaImage};

use super::grid::to_u8;
use crate::{Error, Result};

/// One frame per image of `frames` (`[n, c, h, w]` in [-1, 1]), each shown `delay_ms`, scaled
/// up `scale` times (nearest neighbour) so small images stay visible; loops forever.
pub fn save_gif(frames: Tensor<4>, path: &Path, delay_ms: u32, scale: usize) -> Result<()> {
    let [n, c, h, w] = frames.dims();
    let data = frames.into_data().try_to_vec::<f32>().expect("f32 images");
    let s = scale.max(1);
    let mut bytes = Vec::new();
    {
        let mut enc = GifEncoder::new_with_speed(&mut bytes, 10);
        enc.set_repeat(Repeat::Infinite)
            .map_err(|e| Error::run(path, e.to_string()))?;
        for i in 0..n {
            let img = RgbaImage::from_fn((w * s) as u32, (h * s) as u32, |x, y| {
                let (x, y) = (x as usize / s, y as usize / s);
                let at = |ch: usize| to_u8(data[((i * c + ch) * h + y) * w + x]);
                let (r, g, b) = if c == 1 {
                    (at(0), at(0), at(0))
                } else {
                    (at(0), at(1), at(2))
                };
                image::Rgba([r, g, b, 255])
            });
            let frame = Frame::from_parts(img, 0, 0, Delay::from_numer_denom_ms(delay_ms, 1));
            enc.encode_frame(frame)
                .map_err(|e| Error::run(path, e.to_string()))?;
        }
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    crate::run::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};
    use image::AnimationDecoder;

    #[test]
    fn frames_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.gif");
        let v: Vec<f32> = (0..3 * 4 * 4)
            .map(|i| if i < 16 { -1.0 } else { 1.0 })
            .collect();
        let frames = Tensor::<4>::from_data(TensorData::new(v, [3, 1, 4, 4]), &Device::flex());
        save_gif(frames, &path, 100, 2).unwrap();
        let dec = image::codecs::gif::GifDecoder::new(std::io::BufReader::new(
            std::fs::File::open(&path).unwrap(),
        ))
        .unwrap();
        let frames: Vec<_> = dec
            .into_frames()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].buffer().dimensions(), (8, 8));
        assert_eq!(frames[0].buffer().get_pixel(0, 0).0[0], 0);
        assert_eq!(frames[2].buffer().get_pixel(7, 7).0[0], 255);
    }
}
