//! CIFAR-10 binary version: records of 1 label byte + 3072 pixel bytes (R, G, B planes of
//! 32x32). Reads `data_batch_*.bin` (or `test_batch.bin` alone) from a directory, one `.bin`
//! file, or `cifar-10-binary.tar.gz` itself.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::RawImage;
use crate::{Error, Result};

const RECORD: usize = 1 + 3 * 32 * 32;

pub fn parse_batch(path: &Path, bytes: &[u8], out: &mut Vec<RawImage>) -> Result<()> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(Error::data(
            path,
            format!(
                "{} bytes is not a whole number of CIFAR-10 records ({RECORD} bytes each); the file is truncated or not CIFAR-10 binary",
                bytes.len()
            ),
        ));
    }
    for rec in bytes.chunks_exact(RECORD) {
        if rec[0] > 9 {
            return Err(Error::data(
                path,
                format!("label {} is outside 0-9: not CIFAR-10 binary", rec[0]),
            ));
        }
        out.push(RawImage {
            channels: 3,
            height: 32,
            width: 32,
            pixels: rec[1..].to_vec(),
            label: Some(rec[0] as u32),
            source: path.to_path_buf(),
        });
    }
    Ok(())
}

fn is_train_batch(name: &str) -> bool {
    name.starts_with("data_batch_") && name.ends_with(".bin")
}

fn batch_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = entry.map_err(|e| Error::io(dir, e))?.path();
        if p.is_dir() {
            // The archive unpacks into `cifar-10-batches-bin/`.
            all.extend(batch_files(&p)?);
        } else {
            all.push(p);
        }
    }
    all.sort();
    let name = |p: &PathBuf| p.file_name().unwrap().to_string_lossy().into_owned();
    let train: Vec<_> = all
        .iter()
        .filter(|p| is_train_batch(&name(p)))
        .cloned()
        .collect();
    if !train.is_empty() {
        return Ok(train);
    }
    Ok(all
        .into_iter()
        .filter(|p| name(p) == "test_batch.bin")
        .collect())
}

fn is_archive(path: &Path) -> bool {
    let name = path.to_string_lossy();
    name.ends_with(".tar.gz") || name.ends_with(".tgz")
}

/// The `.tar.gz` / `.tgz` files directly in `dir`, sorted.
fn archives_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let p = entry.map_err(|e| Error::io(dir, e))?.path();
        if p.is_file() && is_archive(&p) {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// The training batches of a `cifar-10-binary.tar.gz`-style archive, appended to `out`.
fn read_archive(path: &Path, out: &mut Vec<RawImage>) -> Result<()> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut batches = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| Error::data(path, format!("not a readable tar.gz: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::data(path, format!("corrupt archive: {e}")))?;
        let entry_path = entry
            .path()
            .map_err(|e| Error::data(path, format!("corrupt archive: {e}")))?
            .into_owned();
        let fname = entry_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if is_train_batch(&fname) {
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| Error::data(path, format!("corrupt archive member {fname}: {e}")))?;
            batches.push((fname, bytes));
        }
    }
    if batches.is_empty() {
        return Err(Error::data(path, "archive holds no data_batch_*.bin"));
    }
    batches.sort_by(|a, b| a.0.cmp(&b.0));
    for (fname, bytes) in batches {
        parse_batch(&path.join(fname), &bytes, out)?;
    }
    Ok(())
}

pub fn read_dataset(path: &Path) -> Result<Vec<RawImage>> {
    if !path.exists() {
        return Err(Error::data(
            path,
            "does not exist; set data.path to the CIFAR-10 binary directory, a .bin file or cifar-10-binary.tar.gz",
        ));
    }
    let mut out = Vec::new();
    if path.is_dir() {
        let files = batch_files(path)?;
        if files.is_empty() {
            // A directory holding only the downloaded archive reads as the archive.
            let archives = archives_in(path)?;
            if let [one] = archives.as_slice() {
                read_archive(one, &mut out)?;
                return Ok(out);
            }
            let why = if archives.is_empty() {
                "no data_batch_*.bin, test_batch.bin or cifar-10-binary.tar.gz in this directory"
                    .to_string()
            } else {
                format!(
                    "holds {} archives and no batch files; set data.path to the one to read",
                    archives.len()
                )
            };
            return Err(Error::data(path, why));
        }
        for f in files {
            let bytes = std::fs::read(&f).map_err(|e| Error::io(&f, e))?;
            parse_batch(&f, &bytes, &mut out)?;
        }
    } else if is_archive(path) {
        read_archive(path, &mut out)?;
    } else {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        parse_batch(path, &bytes, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_batch(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| {
                let mut r = vec![(i % 10) as u8];
                r.extend((0..3072).map(|p| ((p + i) % 251) as u8));
                r
            })
            .collect()
    }

    #[test]
    fn reads_dir_file_and_targz_and_rejects_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("cifar-10-batches-bin");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("data_batch_1.bin"), fake_batch(3)).unwrap();
        std::fs::write(sub.join("data_batch_2.bin"), fake_batch(2)).unwrap();
        std::fs::write(sub.join("test_batch.bin"), fake_batch(4)).unwrap();
        let imgs = read_dataset(dir.path()).unwrap();
        assert_eq!(imgs.len(), 5);
        assert_eq!(imgs[1].label, Some(1));
        assert_eq!(imgs[1].pixels[0], 1);
        assert_eq!(imgs[1].pixels[1024], ((1024 + 1) % 251) as u8); // green plane
        assert_eq!(read_dataset(&sub.join("test_batch.bin")).unwrap().len(), 4);

        // The archive as distributed.
        let tgz = dir.path().join("cifar-10-binary.tar.gz");
        {
            let f = std::fs::File::create(&tgz).unwrap();
            let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            let mut t = tar::Builder::new(gz);
            t.append_dir_all("cifar-10-batches-bin", &sub).unwrap();
            t.into_inner().unwrap().finish().unwrap();
        }
        assert_eq!(read_dataset(&tgz).unwrap().len(), 5);
        // A directory holding only the archive (and other files) reads as the archive; with two
        // archives it names the count.
        let only = tempfile::tempdir().unwrap();
        std::fs::copy(&tgz, only.path().join("cifar-10-binary.tar.gz")).unwrap();
        std::fs::write(only.path().join("LICENSE"), "text").unwrap();
        assert_eq!(read_dataset(only.path()).unwrap().len(), 5);
        std::fs::copy(&tgz, only.path().join("copy.tgz")).unwrap();
        let err = read_dataset(only.path()).unwrap_err().to_string();
        assert!(err.contains("2 archives"), "{err}");

        let mut b = fake_batch(2);
        b.truncate(b.len() - 10);
        let bad = dir.path().join("bad.bin");
        std::fs::write(&bad, b).unwrap();
        let err = read_dataset(&bad).unwrap_err().to_string();
        assert!(
            err.contains("bad.bin") && err.contains("truncated"),
            "{err}"
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(
            read_dataset(empty.path())
                .unwrap_err()
                .to_string()
                .contains("no data_batch")
        );
    }

    #[test]
    fn reads_the_shipped_emoji() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data/emoji/emoji-32x32-binary.tar.gz");
        let imgs = read_dataset(&path).unwrap();
        assert_eq!(imgs.len(), 1911);
        let mut per = [0usize; 10];
        for img in &imgs {
            assert_eq!((img.channels, img.height, img.width), (3, 32, 32));
            per[img.label.unwrap() as usize] += 1;
        }
        // data/README.md's counts, in categories.txt order.
        assert_eq!(per, [85, 159, 5, 270, 131, 264, 386, 169, 224, 218]);
        // Composited on white: the corners of nearly every emoji are white.
        let white = imgs
            .iter()
            .filter(|i| i.pixels[0] == 255 && i.pixels[2048] == 255)
            .count();
        assert!(white > 1700, "{white}");
    }
}
