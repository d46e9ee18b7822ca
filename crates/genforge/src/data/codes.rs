//! Code maps of a dataset, written by `genforge encode` and read by the PixelCNN priors:
//! `codes.json` (sizes, codebook size, the VQ-VAE-2 run they came from), `top.u16` and
//! `bottom.u16` (little-endian code indices, image-major, row-major) and, when the dataset has
//! labels, `labels.u32`.

use std::path::Path;

use burn::tensor::{Device, Int, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

pub const MANIFEST: &str = "codes.json";
const TOP: &str = "top.u16";
const BOTTOM: &str = "bottom.u16";
const LABELS: &str = "labels.u32";

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Manifest {
    /// Number of images.
    pub count: usize,
    pub codebook_size: usize,
    /// `[h, w]` of the top and bottom code maps.
    pub top: [usize; 2],
    pub bottom: [usize; 2],
    pub labels: bool,
    /// The VQ-VAE-2 run directory and checkpoint step that produced the codes.
    pub vqvae_run: String,
    pub vqvae_step: u64,
}

/// All code maps of a dataset in memory.
#[derive(Clone, Debug)]
pub struct CodeMaps {
    pub manifest: Manifest,
    pub top: Vec<u16>,
    pub bottom: Vec<u16>,
    pub labels: Vec<u32>,
}

impl CodeMaps {
    pub fn len(&self) -> usize {
        self.manifest.count
    }

    pub fn is_empty(&self) -> bool {
        self.manifest.count == 0
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let bytes16 = |v: &[u16]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        crate::run::write_atomic(&dir.join(TOP), &bytes16(&self.top))?;
        crate::run::write_atomic(&dir.join(BOTTOM), &bytes16(&self.bottom))?;
        if self.manifest.labels {
            let b: Vec<u8> = self.labels.iter().flat_map(|x| x.to_le_bytes()).collect();
            crate::run::write_atomic(&dir.join(LABELS), &b)?;
        }
        // The manifest last: a directory with a manifest is complete.
        let json = serde_json::to_string_pretty(&self.manifest).expect("manifest serializes");
        crate::run::write_atomic(&dir.join(MANIFEST), json.as_bytes())
    }

    pub fn read(dir: &Path) -> Result<Self> {
        let mpath = dir.join(MANIFEST);
        if !mpath.is_file() {
            return Err(Error::data(
                dir,
                "has no codes.json; write code maps with `genforge encode <VQVAE_RUN> --out DIR`",
            ));
        }
        let text = std::fs::read_to_string(&mpath).map_err(|e| Error::io(&mpath, e))?;
        let manifest: Manifest = serde_json::from_str(&text)
            .map_err(|e| Error::data(&mpath, format!("corrupt manifest: {e}")))?;
        let read16 = |name: &str, per: usize| -> Result<Vec<u16>> {
            let p = dir.join(name);
            let b = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
            if b.len() != manifest.count * per * 2 {
                return Err(Error::data(
                    &p,
                    format!(
                        "has {} bytes, expected {} ({} maps of {per} codes); re-run `genforge encode`",
                        b.len(),
                        manifest.count * per * 2,
                        manifest.count
                    ),
                ));
            }
            let v: Vec<u16> = b
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            if let Some(bad) = v.iter().find(|&&c| c as usize >= manifest.codebook_size) {
                return Err(Error::data(
                    &p,
                    format!(
                        "holds code {bad}, outside the codebook of {}",
                        manifest.codebook_size
                    ),
                ));
            }
            Ok(v)
        };
        let top = read16(TOP, manifest.top[0] * manifest.top[1])?;
        let bottom = read16(BOTTOM, manifest.bottom[0] * manifest.bottom[1])?;
        let labels = if manifest.labels {
            let p = dir.join(LABELS);
            let b = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
            if b.len() != manifest.count * 4 {
                return Err(Error::data(&p, "is truncated; re-run `genforge encode`"));
            }
            b.chunks_exact(4)
                .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        } else {
            Vec::new()
        };
        Ok(CodeMaps {
            manifest,
            top,
            bottom,
            labels,
        })
    }

    /// Top maps `[n, ht, wt]`, bottom maps `[n, hb, wb]` and labels `[n]` (0 without labels)
    /// of the given items.
    pub fn batch(
        &self,
        indices: &[usize],
        device: &Device,
    ) -> (Tensor<3, Int>, Tensor<3, Int>, Tensor<1, Int>) {
        let [th, tw] = self.manifest.top;
        let [bh, bw] = self.manifest.bottom;
        let gather = |src: &[u16], per: usize| -> Vec<i64> {
            indices
                .iter()
                .flat_map(|&i| src[i * per..(i + 1) * per].iter().map(|&c| c as i64))
                .collect()
        };
        let n = indices.len();
        let top = Tensor::from_data(
            TensorData::new(gather(&self.top, th * tw), [n, th, tw]),
            device,
        );
        let bottom = Tensor::from_data(
            TensorData::new(gather(&self.bottom, bh * bw), [n, bh, bw]),
            device,
        );
        let labels: Vec<i64> = indices
            .iter()
            .map(|&i| self.labels.get(i).copied().unwrap_or(0) as i64)
            .collect();
        let labels = Tensor::from_data(TensorData::new(labels, [n]), device);
        (top, bottom, labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let maps = CodeMaps {
            manifest: Manifest {
                count: 2,
                codebook_size: 300,
                top: [1, 2],
                bottom: [2, 2],
                labels: true,
                vqvae_run: "runs/x".into(),
                vqvae_step: 5,
            },
            top: vec![1, 299, 0, 7],
            bottom: vec![0, 1, 2, 3, 4, 5, 6, 7],
            labels: vec![3, 9],
        };
        maps.write(dir.path()).unwrap();
        let back = CodeMaps::read(dir.path()).unwrap();
        assert_eq!(back.top, maps.top);
        assert_eq!(back.bottom, maps.bottom);
        assert_eq!(back.labels, maps.labels);
        let (t, b, l) = back.batch(&[1], &Device::flex());
        assert_eq!(t.dims(), [1, 1, 2]);
        assert_eq!(b.dims(), [1, 2, 2]);
        let lv: Vec<i64> = l.into_data().convert::<i64>().try_into_vec().unwrap();
        assert_eq!(lv, vec![9]);
        std::fs::write(dir.path().join(TOP), [0u8; 3]).unwrap();
        let err = CodeMaps::read(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("top.u16") && err.contains("expected 8"),
            "{err}"
        );
    }
}
