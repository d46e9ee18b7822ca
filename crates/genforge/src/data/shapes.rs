//! Synthetic coloured shapes, deterministic from a seed: a filled circle (label 0), square (1)
//! or triangle (2) of random colour, size and position on a random darker background. For tests
//! and quick checks of colour models without any download.

use super::RawImage;
use crate::rng::Rng;

pub const CLASSES: [&str; 3] = ["circle", "square", "triangle"];

fn inside(class: usize, x: f32, y: f32, cx: f32, cy: f32, r: f32) -> bool {
    match class {
        0 => (x - cx).powi(2) + (y - cy).powi(2) <= r * r,
        1 => (x - cx).abs() <= r * 0.8 && (y - cy).abs() <= r * 0.8,
        _ => {
            // Upward triangle: apex at (cx, cy - r), base at y = cy + r/2.
            let top = cy - r;
            let base = cy + 0.5 * r;
            if y < top || y > base {
                return false;
            }
            let half = (y - top) / (base - top) * r * 0.9;
            (x - cx).abs() <= half
        }
    }
}

/// `per_class` images of each class at `size` x `size`, RGB, 2x2 supersampled edges.
pub fn generate(per_class: usize, size: usize, seed: u64) -> Vec<RawImage> {
    let mut rng = Rng::new(seed ^ 0x5A4E_5345);
    let mut out = Vec::with_capacity(per_class * CLASSES.len());
    for i in 0..per_class * CLASSES.len() {
        let class = i % CLASSES.len();
        let s = size as f32;
        let r = s * (0.18 + 0.17 * rng.uniform() as f32);
        let cx = r + (s - 2.0 * r) * rng.uniform() as f32;
        let cy = r + (s - 2.0 * r) * rng.uniform() as f32;
        let fg: Vec<f32> = (0..3)
            .map(|_| 110.0 + 145.0 * rng.uniform() as f32)
            .collect();
        let bg: Vec<f32> = (0..3).map(|_| 70.0 * rng.uniform() as f32).collect();
        let mut pixels = vec![0u8; 3 * size * size];
        for py in 0..size {
            for px in 0..size {
                let mut cover = 0.0;
                for (dy, dx) in [(0.25, 0.25), (0.25, 0.75), (0.75, 0.25), (0.75, 0.75)] {
                    if inside(class, px as f32 + dx, py as f32 + dy, cx, cy, r) {
                        cover += 0.25;
                    }
                }
                for c in 0..3 {
                    let v = fg[c] * cover + bg[c] * (1.0 - cover);
                    pixels[c * size * size + py * size + px] = v.round() as u8;
                }
            }
        }
        out.push(RawImage {
            channels: 3,
            height: size,
            width: size,
            pixels,
            label: Some(class as u32),
            source: format!("shapes(seed={seed})").into(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_shaped() {
        let a = generate(2, 16, 3);
        let b = generate(2, 16, 3);
        assert_eq!(a.len(), 6);
        assert!(a.iter().zip(&b).all(|(x, y)| x.pixels == y.pixels));
        assert_ne!(generate(2, 16, 4)[0].pixels, a[0].pixels);
        // Each image has a foreground brighter than its background somewhere.
        for img in &a {
            let max = *img.pixels.iter().max().unwrap();
            assert!(max >= 110, "no shape drawn");
        }
        // Classes cycle circle, square, triangle.
        assert_eq!(
            a.iter().map(|i| i.label.unwrap()).collect::<Vec<_>>(),
            vec![0, 1, 2, 0, 1, 2]
        );
    }
}
