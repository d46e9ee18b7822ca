//! Real-data features cached on disk, keyed by the images, the feature network and the sample
//! count: a change in any of them gives another key, so a stale cache is never read. A cache
//! file that does not parse is recomputed with a warning.
//!
//! Location: `$GENFORGE_CACHE`, else `$XDG_CACHE_HOME/genforge`, else `~/.cache/genforge`.

use std::path::{Path, PathBuf};

use super::Features;
use super::features::{Extraction, fingerprint};
use crate::run::write_atomic;

const MAGIC: &[u8; 8] = b"GFFEAT01";

pub fn default_dir() -> Option<PathBuf> {
    crate::data::shipped::cache_root()
}

/// Cache key of the features of `pixels` (the images as the network will read them, before
/// its own preprocessing) under the network `net_fingerprint`.
pub fn key(pixels: &[f32], shape: [usize; 4], net_fingerprint: u64) -> String {
    let mut bytes = Vec::with_capacity(pixels.len() * 4 + 40);
    for s in shape {
        bytes.extend((s as u64).to_le_bytes());
    }
    bytes.extend(net_fingerprint.to_le_bytes());
    for p in pixels {
        bytes.extend(p.to_le_bytes());
    }
    format!("real-{:016x}", fingerprint(&bytes))
}

fn encode(e: &Extraction) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for v in [e.features.n, e.features.d, e.probs.d] {
        out.extend((v as u64).to_le_bytes());
    }
    for v in e.features.data.iter().chain(&e.probs.data) {
        out.extend(v.to_le_bytes());
    }
    out
}

fn decode(bytes: &[u8]) -> Option<Extraction> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let word = |i: usize| -> Option<usize> {
        Some(u64::from_le_bytes(rest.get(i * 8..i * 8 + 8)?.try_into().ok()?) as usize)
    };
    let (n, d, k) = (word(0)?, word(1)?, word(2)?);
    let floats = &rest[24..];
    if floats.len() != n.checked_mul(d + k)?.checked_mul(4)? {
        return None;
    }
    let v: Vec<f32> = floats
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let (f, p) = v.split_at(n * d);
    Some(Extraction {
        features: Features::new(n, d, f.to_vec()),
        probs: Features::new(n, k, p.to_vec()),
    })
}

/// The cached extraction under `key` in `dir`, if there is a readable one.
pub fn load(dir: &Path, key: &str) -> Option<Extraction> {
    let path = dir.join(format!("{key}.bin"));
    let bytes = std::fs::read(&path).ok()?;
    let e = decode(&bytes);
    if e.is_none() {
        tracing::warn!("{}: unreadable feature cache, recomputing", path.display());
    }
    e
}

/// Store an extraction; a cache that cannot be written only costs time, so failures warn.
pub fn store(dir: &Path, key: &str, e: &Extraction) {
    let path = dir.join(format!("{key}.bin"));
    let result = std::fs::create_dir_all(dir)
        .map_err(|err| err.to_string())
        .and_then(|_| write_atomic(&path, &encode(e)).map_err(|err| err.to_string()));
    if let Err(err) = result {
        tracing::warn!(
            "could not write the feature cache {}: {err}",
            path.display()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn extraction() -> Extraction {
        Extraction {
            features: Features::new(2, 3, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
            probs: Features::new(2, 1, vec![0.5, 1.0]),
        }
    }

    #[test]
    fn round_trip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let e = extraction();
        store(dir.path(), "k", &e);
        let back = load(dir.path(), "k").unwrap();
        assert_eq!(back.features, e.features);
        assert_eq!(back.probs, e.probs);
        let path = dir.path().join("k.bin");
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert!(load(dir.path(), "k").is_none());
    }

    #[test]
    fn key_changes_with_images_network_and_count() {
        let px = vec![0.0f32, 0.5, -1.0, 1.0];
        let k = key(&px, [1, 1, 2, 2], 7);
        assert_ne!(k, key(&px, [1, 1, 2, 2], 8));
        let mut other = px.clone();
        other[1] = 0.25;
        assert_ne!(k, key(&other, [1, 1, 2, 2], 7));
        assert_ne!(k, key(&px[..2], [2, 1, 1, 1], 7));
    }
}
