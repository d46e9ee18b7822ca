//! Attention figures: generated images on top and attention maps below them (red = attended),
//! scaled to image size. SAGAN: the DCGAN/SAGAN article's centre-pixel map; ViTGAN: one row per head, of G's
//! centre patch or of D's class token.

use burn::tensor::Tensor;
use image::imageops::FilterType;
use image::{DynamicImage, Rgb, RgbImage};

use super::grid::{PAD, to_u8};
use crate::models::sagan::centre_attention;
use crate::models::{Discriminator, Generator};
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

/// Which network's attention a figure shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    Generator,
    Discriminator,
}

impl std::str::FromStr for Net {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "g" | "G" | "generator" => Ok(Net::Generator),
            "d" | "D" | "discriminator" => Ok(Net::Discriminator),
            other => Err(Error::Config(format!(
                "--attention takes g or d (generator or discriminator), got '{other}'"
            ))),
        }
    }
}

/// Square `[side, side]` maps, one per figure row, for one image.
type Maps = Vec<Vec<f32>>;

fn square(v: Vec<f32>) -> Vec<f32> {
    let side = (v.len() as f64).sqrt() as usize;
    assert_eq!(side * side, v.len(), "attention over a non-square grid");
    v
}

/// ViTGAN maps of image `i` from one block's weights `[n, heads, q, k]`: per head, the row of
/// `query` over the keys from `first_key` on (the patch tokens).
fn head_maps(weights: &Tensor<4>, i: usize, query: usize, first_key: usize) -> Maps {
    let [_, heads, _, k] = weights.dims();
    (0..heads)
        .map(|h| {
            let row = weights
                .clone()
                .slice([i..i + 1, h..h + 1, query..query + 1, first_key..k])
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32");
            square(row)
        })
        .collect()
}

/// Build the figure for the latents `z` (`[n, z_dim]`): generated images on top and below each
/// - SAGAN (`Net::Generator` only): the centre pixel's map of G's first self-attention layer;
/// - ViTGAN generator: the centre patch's map in G's last block, one row per head;
/// - ViTGAN discriminator (`d` given): the class token's map over D's patches in its last block,
///   one row per head, for the generated images.
pub fn figure(
    g: &Generator,
    d: Option<&Discriminator>,
    net: Net,
    z: Tensor<2>,
) -> Result<DynamicImage> {
    let n = z.dims()[0];
    let (images, maps): (Tensor<4>, Vec<Maps>) = match g {
        Generator::Big(_) => {
            return Err(Error::Config(
                "--attention figures are drawn for SAGAN and ViTGAN runs; not yet for BigGAN"
                    .into(),
            ));
        }
        Generator::Style(_) | Generator::Style2(_) | Generator::Pg(_) => {
            return Err(Error::Config(
                "--attention needs a model with self-attention (model.family = \"sagan\" or \"vitgan\"); StyleGAN and Progressive GAN have none".into(),
            ));
        }
        Generator::Conv(g) => {
            if net == Net::Discriminator {
                return Err(Error::Config(
                    "--attention d needs a ViTGAN run; SAGAN figures show G's attention".into(),
                ));
            }
            let out = g.forward(z);
            let Some(map) = out.attention.first() else {
                return Err(Error::Config(
                    "--attention needs a model with self-attention (model.family = \"sagan\" or \"vitgan\")".into(),
                ));
            };
            let nn = map.dims()[1];
            let maps = (0..n)
                .map(|i| {
                    let one = map
                        .clone()
                        .slice([i..i + 1, 0..nn, 0..nn])
                        .reshape([nn, nn]);
                    vec![
                        centre_attention(one)
                            .into_data()
                            .try_to_vec::<f32>()
                            .expect("f32"),
                    ]
                })
                .collect();
            (out.images, maps)
        }
        Generator::Vit(g) => {
            let out = g.forward(z);
            let maps = match (net, d) {
                (Net::Generator, _) => {
                    let last = out.attention.last().expect("ViTGAN has at least one block");
                    let side = (g.resolution / g.patch) as isize;
                    let centre = ((side / 2 - 1) * side + side / 2 - 1).max(0) as usize;
                    (0..n).map(|i| head_maps(last, i, centre, 0)).collect()
                }
                (Net::Discriminator, Some(Discriminator::Vit(d))) => {
                    let logits = d.forward(out.images.clone());
                    let last = logits
                        .attention
                        .last()
                        .expect("ViTGAN has at least one block");
                    (0..n).map(|i| head_maps(last, i, 0, 1)).collect()
                }
                (Net::Discriminator, Some(_)) => {
                    return Err(Error::Config(
                        "--attention d: this run's discriminator is StyleGAN2's \
                         (model.discriminator), which has no attention; use --attention g"
                            .into(),
                    ));
                }
                (Net::Discriminator, None) => {
                    return Err(Error::Config(
                        "--attention d needs the run's discriminator".into(),
                    ));
                }
            };
            (out.images, maps)
        }
    };
    Ok(panels(images, &maps))
}

/// Images in the top row, each image's maps below it (normalised per map, Reds colormap), the
/// whole figure enlarged with nearest-neighbour to panels of at least 128 pixels.
fn panels(images: Tensor<4>, maps: &[Maps]) -> DynamicImage {
    let [n, c, h, w] = images.dims();
    let rows = maps.iter().map(|m| m.len()).max().unwrap_or(0);
    let imgs = images.into_data().try_to_vec::<f32>().expect("f32");
    let mut fig = RgbImage::from_pixel(
        (n * (w + PAD) + PAD) as u32,
        ((rows + 1) * (h + PAD) + PAD) as u32,
        Rgb([255, 255, 255]),
    );
    for (i, image_maps) in maps.iter().enumerate() {
        let ox = PAD + i * (w + PAD);
        for y in 0..h {
            for x in 0..w {
                let p: Vec<u8> = (0..3)
                    .map(|ch| to_u8(imgs[((i * c + ch.min(c - 1)) * h + y) * w + x]))
                    .collect();
                fig.put_pixel((ox + x) as u32, (PAD + y) as u32, Rgb([p[0], p[1], p[2]]));
            }
        }
        for (r, v) in image_maps.iter().enumerate() {
            let side = (v.len() as f64).sqrt() as usize;
            let max = v.iter().cloned().fold(f32::MIN, f32::max).max(1e-12);
            let oy = PAD + (r + 1) * (h + PAD);
            for y in 0..h {
                for x in 0..w {
                    let a = v[(y * side / h) * side + x * side / w] / max;
                    fig.put_pixel((ox + x) as u32, (oy + y) as u32, Rgb(reds(a)));
                }
            }
        }
    }
    let s = (128 / h).max(1) as u32;
    let fig = image::imageops::resize(&fig, fig.width() * s, fig.height() * s, FilterType::Nearest);
    DynamicImage::ImageRgb8(fig)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panels_put_each_map_value_under_its_own_image() {
        use burn::tensor::{Device, TensorData};
        // Two 4x4 grey images (-1 and +1) and one 2x2 map each, with the maximum at a different
        // corner: every map pixel must take the colour of its map cell (normalised by the map's
        // maximum) and sit under its image.
        let device = Device::flex();
        let mut v = vec![-1.0f32; 16];
        v.extend(vec![1.0f32; 16]);
        let images = Tensor::<4>::from_data(TensorData::new(v, [2, 1, 4, 4]), &device);
        let maps = vec![
            vec![vec![4.0, 1.0, 2.0, 0.0]],
            vec![vec![0.0, 0.0, 0.0, 3.0]],
        ];
        let fig = panels(images, &maps).to_rgb8();
        let s = 128 / 4; // enlargement
        assert_eq!(
            fig.dimensions(),
            (
                s * (2 * (4 + PAD) + PAD) as u32,
                s * (2 * (4 + PAD) + PAD) as u32
            )
        );
        let at = |img: usize, row: usize, y: usize, x: usize| {
            let px = PAD + img * (4 + PAD) + x;
            let py = PAD + row * (4 + PAD) + y;
            fig.get_pixel(px as u32 * s, py as u32 * s).0
        };
        assert_eq!(at(0, 0, 1, 1), [0, 0, 0]);
        assert_eq!(at(1, 0, 2, 2), [255, 255, 255]);
        // Map cell (r, c) covers image pixels (2r..2r+2, 2c..2c+2).
        assert_eq!(at(0, 1, 0, 0), reds(1.0));
        assert_eq!(at(0, 1, 0, 3), reds(0.25));
        assert_eq!(at(0, 1, 3, 1), reds(0.5));
        assert_eq!(at(0, 1, 3, 3), reds(0.0));
        assert_eq!(at(1, 1, 3, 3), reds(1.0));
        assert_eq!(at(1, 1, 0, 0), reds(0.0));
    }

    #[test]
    fn colormap_ends() {
        assert_eq!(reds(0.0), [255, 245, 240]);
        assert_eq!(reds(1.0), [103, 0, 13]);
        assert_eq!(reds(0.5), [251, 106, 74]);
    }

    /// Every attention row of ViTGAN's G and D (each query over all keys, every head and block)
    /// sums to 1, and the figure's G maps (the centre patch over all patches) are such rows.
    #[test]
    fn vitgan_attention_rows_sum_to_one() {
        let cfg = crate::config::TrainConfig::load("vitgan-tiny", &[]).unwrap();
        let z_dim = cfg.model.z_dim().unwrap();
        let (g, d) = crate::testing::preset_gan("vitgan-tiny");
        let (Generator::Vit(g), Discriminator::Vit(d)) = (g, d) else {
            unreachable!("vitgan-tiny is a ViTGAN")
        };
        let z = crate::sample::latents(3, z_dim, 4, &burn::tensor::Device::flex());
        let out = g.forward(z);
        let d_out = d.forward(out.images.clone());
        for (net, weights) in [("G", &out.attention), ("D", &d_out.attention)] {
            assert!(!weights.is_empty(), "{net} has attention blocks");
            for w in weights.iter() {
                let sums = crate::testing::values(w.clone().sum_dim(3));
                for (i, s) in sums.iter().enumerate() {
                    assert!((s - 1.0).abs() < 1e-5, "{net} row {i} sums to {s}");
                }
            }
        }
        let maps = head_maps(out.attention.last().unwrap(), 1, 0, 0);
        for m in maps {
            assert!((m.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
    }
}
