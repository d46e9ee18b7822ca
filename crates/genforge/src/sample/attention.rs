//! Seed 001's SAGAN figure: generated images on top and, below each, the attention map of the
//! centre pixel from G's first self-attention layer (red = attended), scaled to image size, the
//! whole figure enlarged to panels of at least 128 pixels.

use burn::tensor::Tensor;
use image::imageops::FilterType;
use image::{DynamicImage, Rgb, RgbImage};

use super::grid::{PAD, to_u8};
use crate::models::Generator;
use crate::models::sagan::centre_attention;
use crate::{Error, Result};

/// Matplotlib's "Reds" colormap, sampled at 0, 0.25, 0.5, 0.75, 1.
const REDS: [[f32; 3]; 5] = [
    [255.0, 245.0, 240.0],
    [252.0, 187.0, 161.0],
    [251.0, 106.0, 74.0],
    [203.0, 24.0, 29.0],
    [103.0, 0.0, 13.0],
];

pub fn reds(t: f32) -> [u8; 3] {
    let t = t.clamp(0.0, 1.0) * 4.0;
    let i = (t.floor() as usize).min(3);
    let f = t - i as f32;
    let mut out = [0u8; 3];
    for c in 0..3 {
        out[c] = (REDS[i][c] * (1.0 - f) + REDS[i + 1][c] * f).round() as u8;
    }
    out
}

/// Build the figure for the first `n` latents of `z` (`[n, z_dim]`).
pub fn figure(g: &Generator, z: Tensor<2>) -> Result<DynamicImage> {
    let out = g.forward(z);
    let Some(map) = out.attention.first() else {
        return Err(Error::Config(
            "--attention needs a model with self-attention (model.family = \"sagan\")".into(),
        ));
    };
    let [n, c, h, w] = out.images.dims();
    let imgs = out.images.into_data().try_to_vec::<f32>().expect("f32");
    let mut fig = RgbImage::from_pixel(
        (n * (w + PAD) + PAD) as u32,
        (2 * (h + PAD) + PAD) as u32,
        Rgb([255, 255, 255]),
    );
    for i in 0..n {
        let ox = PAD + i * (w + PAD);
        for y in 0..h {
            for x in 0..w {
                let p: Vec<u8> = (0..3)
                    .map(|ch| to_u8(imgs[((i * c + ch.min(c - 1)) * h + y) * w + x]))
                    .collect();
                fig.put_pixel((ox + x) as u32, (PAD + y) as u32, Rgb([p[0], p[1], p[2]]));
            }
        }
        let nn = map.dims()[1];
        let one = map
            .clone()
            .slice([i..i + 1, 0..nn, 0..nn])
            .reshape([nn, nn]);
        let panel = centre_attention(one);
        let side = panel.dims()[0];
        let v = panel.into_data().try_to_vec::<f32>().expect("f32");
        let max = v.iter().cloned().fold(f32::MIN, f32::max).max(1e-12);
        let oy = 2 * PAD + h;
        for y in 0..h {
            for x in 0..w {
                let a = v[(y * side / h) * side + x * side / w] / max;
                fig.put_pixel((ox + x) as u32, (oy + y) as u32, Rgb(reds(a)));
            }
        }
    }
    // Nearest-neighbour upscale so small models still give a readable figure (>= 128 px panels).
    let s = (128 / h).max(1) as u32;
    let fig = image::imageops::resize(&fig, fig.width() * s, fig.height() * s, FilterType::Nearest);
    Ok(DynamicImage::ImageRgb8(fig))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colormap_ends() {
        assert_eq!(reds(0.0), [255, 245, 240]);
        assert_eq!(reds(1.0), [103, 0, 13]);
        assert_eq!(reds(0.5), [251, 106, 74]);
    }
}
