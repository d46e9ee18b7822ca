//! Image grids: `[n, c, h, w]` in [-1, 1] to an 8-bit PNG with a 2-pixel border.

use std::path::Path;

use burn::tensor::Tensor;
use image::{DynamicImage, GrayImage, RgbImage};

use crate::{Error, Result};

pub const PAD: usize = 2;

/// Pixel value of an image in [-1, 1].
pub fn to_u8(v: f32) -> u8 {
    ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8
}

/// Lay `images` out `ncol` per row (default: a near-square grid).
pub fn make_grid(images: Tensor<4>, ncol: Option<usize>) -> DynamicImage {
    let [n, c, h, w] = images.dims();
    let data = images.into_data().try_to_vec::<f32>().expect("f32 images");
    let ncol = ncol
        .unwrap_or_else(|| (n as f64).sqrt().ceil() as usize)
        .max(1);
    let nrow = n.div_ceil(ncol);
    let (gw, gh) = (ncol * (w + PAD) + PAD, nrow * (h + PAD) + PAD);
    let px = |i: usize, ch: usize, y: usize, x: usize| to_u8(data[((i * c + ch) * h + y) * w + x]);
    if c == 1 {
        let mut img = GrayImage::new(gw as u32, gh as u32);
        for i in 0..n {
            let (ox, oy) = (PAD + (i % ncol) * (w + PAD), PAD + (i / ncol) * (h + PAD));
            for y in 0..h {
                for x in 0..w {
                    img.put_pixel(
                        (ox + x) as u32,
                        (oy + y) as u32,
                        image::Luma([px(i, 0, y, x)]),
                    );
                }
            }
        }
        DynamicImage::ImageLuma8(img)
    } else {
        let mut img = RgbImage::new(gw as u32, gh as u32);
        for i in 0..n {
            let (ox, oy) = (PAD + (i % ncol) * (w + PAD), PAD + (i / ncol) * (h + PAD));
            for y in 0..h {
                for x in 0..w {
                    let p = [px(i, 0, y, x), px(i, 1, y, x), px(i, 2, y, x)];
                    img.put_pixel((ox + x) as u32, (oy + y) as u32, image::Rgb(p));
                }
            }
        }
        DynamicImage::ImageRgb8(img)
    }
}

/// Save as PNG through a temporary file and a rename.
pub fn save_png(img: &DynamicImage, path: &Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .map_err(|e| Error::run(path, format!("PNG encoding failed: {e}")))?;
    crate::run::write_atomic(path, &bytes)
}

/// One PNG per image, `prefix000000.png`, ...
pub fn save_each(images: Tensor<4>, dir: &Path) -> Result<usize> {
    let n = images.dims()[0];
    for i in 0..n {
        let one = images.clone().narrow(0, i, 1);
        let img = make_grid(one, Some(1));
        // Crop the border of a one-image grid.
        let (w, h) = (img.width() - 2 * PAD as u32, img.height() - 2 * PAD as u32);
        let img = img.crop_imm(PAD as u32, PAD as u32, w, h);
        save_png(&img, &dir.join(format!("{i:06}.png")))?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn grid_places_images_and_maps_values() {
        let v: Vec<f32> = (0..3 * 4)
            .map(|i| {
                if i < 4 {
                    -1.0
                } else if i < 8 {
                    0.0
                } else {
                    1.0
                }
            })
            .collect();
        let t = Tensor::<4>::from_data(TensorData::new(v, [3, 1, 2, 2]), &Device::flex());
        let g = make_grid(t, Some(2)).to_luma8();
        assert_eq!((g.width(), g.height()), (2 * 4 + 2, 2 * 4 + 2));
        assert_eq!(g.get_pixel(2, 2).0[0], 0);
        assert_eq!(g.get_pixel(2 + 4, 2).0[0], 128);
        assert_eq!(g.get_pixel(2, 2 + 4).0[0], 255);
        assert_eq!(g.get_pixel(0, 0).0[0], 0); // border
    }
}
