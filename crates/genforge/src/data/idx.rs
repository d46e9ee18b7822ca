//! IDX files (MNIST, Fashion-MNIST), gzipped or not: `images-idx3-ubyte` (magic 0x803) with
//! `labels-idx1-ubyte` (magic 0x801) beside it.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::RawImage;
use crate::{Error, Result};

/// Read a whole file, gunzipping when it starts with the gzip magic.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::data(path, format!("corrupt gzip stream: {e}")))?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Parse an IDX3 image file: `(n, rows, cols, pixels)`.
pub fn parse_images(path: &Path, b: &[u8]) -> Result<(usize, usize, usize, Vec<u8>)> {
    if b.len() < 16 {
        return Err(Error::data(
            path,
            "too short for an IDX image header (16 bytes)",
        ));
    }
    let magic = be_u32(b, 0);
    if magic != 0x0803 {
        return Err(Error::data(
            path,
            format!("not an IDX3 u8 image file (magic {magic:#x}, expected 0x803)"),
        ));
    }
    let (n, rows, cols) = (
        be_u32(b, 4) as usize,
        be_u32(b, 8) as usize,
        be_u32(b, 12) as usize,
    );
    let want = n * rows * cols;
    if b.len() - 16 != want {
        return Err(Error::data(
            path,
            format!(
                "truncated or padded: header says {n} images of {rows}x{cols} ({want} bytes), file has {}",
                b.len() - 16
            ),
        ));
    }
    Ok((n, rows, cols, b[16..].to_vec()))
}

/// Parse an IDX1 label file.
pub fn parse_labels(path: &Path, b: &[u8]) -> Result<Vec<u32>> {
    if b.len() < 8 {
        return Err(Error::data(
            path,
            "too short for an IDX label header (8 bytes)",
        ));
    }
    let magic = be_u32(b, 0);
    if magic != 0x0801 {
        return Err(Error::data(
            path,
            format!("not an IDX1 u8 label file (magic {magic:#x}, expected 0x801)"),
        ));
    }
    let n = be_u32(b, 4) as usize;
    if b.len() - 8 != n {
        return Err(Error::data(
            path,
            format!(
                "truncated or padded: header says {n} labels, file has {}",
                b.len() - 8
            ),
        ));
    }
    Ok(b[8..].iter().map(|&l| l as u32).collect())
}

/// The label file that goes with an image file, if it exists.
fn labels_for(images: &Path) -> Option<PathBuf> {
    let name = images.file_name()?.to_string_lossy();
    let cand = images.with_file_name(name.replace("images-idx3", "labels-idx1"));
    (cand != images && cand.exists()).then_some(cand)
}

fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains("images-idx3"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// A directory (every `*images-idx3*` file in it) or one image file.
pub fn read_dataset(path: &Path) -> Result<Vec<RawImage>> {
    if !path.exists() {
        return Err(Error::data(
            path,
            "does not exist; set data.path to an IDX file or a directory holding one",
        ));
    }
    let files = if path.is_dir() {
        let f = image_files(path)?;
        if f.is_empty() {
            return Err(Error::data(
                path,
                "no '*images-idx3-ubyte[.gz]' file in this directory",
            ));
        }
        f
    } else {
        vec![path.to_path_buf()]
    };
    let mut out = Vec::new();
    for file in files {
        let (n, rows, cols, pixels) = parse_images(&file, &read_maybe_gz(&file)?)?;
        let labels = match labels_for(&file) {
            Some(lp) => {
                let l = parse_labels(&lp, &read_maybe_gz(&lp)?)?;
                if l.len() != n {
                    return Err(Error::data(
                        &lp,
                        format!("{} labels for {n} images in {}", l.len(), file.display()),
                    ));
                }
                Some(l)
            }
            None => None,
        };
        let plane = rows * cols;
        for i in 0..n {
            out.push(RawImage {
                channels: 1,
                height: rows,
                width: cols,
                pixels: pixels[i * plane..(i + 1) * plane].to_vec(),
                label: labels.as_ref().map(|l| l[i]),
                source: file.clone(),
            });
        }
    }
    Ok(out)
}

/// Write an IDX3 image file and its IDX1 label file (gzipped when the name ends in `.gz`).
pub fn write(
    images_path: &Path,
    labels_path: &Path,
    rows: usize,
    cols: usize,
    pixels: &[u8],
    labels: &[u8],
) -> std::io::Result<()> {
    use std::io::Write;
    let n = labels.len();
    let mut img = Vec::with_capacity(16 + pixels.len());
    for v in [0x803u32, n as u32, rows as u32, cols as u32] {
        img.extend_from_slice(&v.to_be_bytes());
    }
    img.extend_from_slice(pixels);
    let mut lab = Vec::with_capacity(8 + n);
    for v in [0x801u32, n as u32] {
        lab.extend_from_slice(&v.to_be_bytes());
    }
    lab.extend_from_slice(labels);
    for (path, bytes) in [(images_path, img), (labels_path, lab)] {
        if path.extension().is_some_and(|e| e == "gz") {
            let f = std::fs::File::create(path)?;
            let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
            gz.write_all(&bytes)?;
            gz.finish()?;
        } else {
            std::fs::write(path, bytes)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
    }

    #[test]
    fn reads_the_shipped_mnist() {
        let imgs = read_dataset(&shipped()).unwrap();
        assert_eq!(imgs.len(), 10_000);
        assert_eq!(
            (imgs[0].height, imgs[0].width, imgs[0].channels),
            (28, 28, 1)
        );
        let mut counts = [0usize; 10];
        for i in &imgs {
            counts[i.label.unwrap() as usize] += 1;
        }
        assert_eq!(
            counts,
            [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
        );
        // Digits are ink on black: a border pixel is 0, and every image has some ink.
        assert!(
            imgs.iter()
                .all(|i| i.pixels[0] == 0 && i.pixels.iter().any(|&p| p > 200))
        );
    }

    #[test]
    fn roundtrip_plain_and_gz_and_corrupt_cases() {
        let dir = tempfile::tempdir().unwrap();
        for ext in ["", ".gz"] {
            let ip = dir.path().join(format!("t{ext}-images-idx3-ubyte{ext}"));
            let lp = dir.path().join(format!("t{ext}-labels-idx1-ubyte{ext}"));
            let pixels: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8).collect();
            write(&ip, &lp, 3, 4, &pixels, &[5, 9]).unwrap();
            let got = read_dataset(&ip).unwrap();
            assert_eq!(got.len(), 2);
            assert_eq!(got[1].pixels, pixels[12..].to_vec());
            assert_eq!((got[1].height, got[1].width, got[1].label), (3, 4, Some(9)));
        }
        // Truncated: drop the last byte of a plain file.
        let ip = dir.path().join("t-images-idx3-ubyte");
        let mut b = std::fs::read(&ip).unwrap();
        b.pop();
        std::fs::write(&ip, &b).unwrap();
        let err = read_dataset(&ip).unwrap_err().to_string();
        assert!(
            err.contains("truncated") && err.contains("t-images-idx3-ubyte"),
            "{err}"
        );
        // Wrong magic.
        b[3] = 0x01;
        std::fs::write(&ip, &b).unwrap();
        assert!(read_dataset(&ip).unwrap_err().to_string().contains("magic"));
        // Corrupt gzip body.
        let gp = dir.path().join("t.gz-images-idx3-ubyte.gz");
        let mut g = std::fs::read(&gp).unwrap();
        let len = g.len();
        g.truncate(len / 2);
        std::fs::write(&gp, &g).unwrap();
        assert!(read_dataset(&gp).unwrap_err().to_string().contains("gzip"));
        // Missing path.
        let err = read_dataset(&dir.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not exist"), "{err}");
    }
}
