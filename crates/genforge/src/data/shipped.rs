//! The datasets shipped in the repository's `data/` (10,000 MNIST digits, 1,911 Noto emoji; a
//! few MB), embedded in the binary so that it runs without its source checkout. A preset's
//! `data/mnist` or `data/emoji/...` is read from the working directory when it is there (a
//! checkout), else from a copy written once into the cache directory. User data is always read
//! from disk.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// One shipped dataset: its folder under `data/` and its files.
struct Shipped {
    dir: &'static str,
    files: &'static [(&'static str, &'static [u8])],
}

const SHIPPED: [Shipped; 2] = [
    Shipped {
        dir: "data/mnist",
        files: &[
            (
                "mnist-10k-images-idx3-ubyte.gz",
                include_bytes!("../../../../data/mnist/mnist-10k-images-idx3-ubyte.gz"),
            ),
            (
                "mnist-10k-labels-idx1-ubyte.gz",
                include_bytes!("../../../../data/mnist/mnist-10k-labels-idx1-ubyte.gz"),
            ),
        ],
    },
    Shipped {
        dir: "data/emoji",
        files: &[
            (
                "emoji-32x32-binary.tar.gz",
                include_bytes!("../../../../data/emoji/emoji-32x32-binary.tar.gz"),
            ),
            (
                "categories.txt",
                include_bytes!("../../../../data/emoji/categories.txt"),
            ),
        ],
    },
];

/// genforge's cache directory: `$GENFORGE_CACHE`, else `$XDG_CACHE_HOME/genforge`, else
/// `~/.cache/genforge`.
pub fn cache_root() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("GENFORGE_CACHE") {
        return Some(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(d).join("genforge"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("genforge"))
}

/// The embedded copy of a shipped `path` (`data/mnist`, `data/emoji/emoji-32x32-binary.tar.gz`,
/// ...), written to the cache directory on first use; `None` when `path` is not shipped data.
pub fn embedded(path: &str) -> Option<Result<PathBuf>> {
    let rel = path.trim_start_matches("./").trim_end_matches('/');
    let (set, rest) = SHIPPED.iter().find_map(|s| {
        let rest = rel.strip_prefix(s.dir)?;
        (rest.is_empty() || rest.starts_with('/')).then_some((s, rest.trim_start_matches('/')))
    })?;
    if !rest.is_empty() && !set.files.iter().any(|(name, _)| *name == rest) {
        return None;
    }
    Some(extract(set).map(|dir| if rest.is_empty() { dir } else { dir.join(rest) }))
}

/// The dataset's files under the cache directory (or the system's temporary one), each written
/// through a temporary file and a rename, so concurrent processes never read half a file.
fn extract(set: &Shipped) -> Result<PathBuf> {
    let root = cache_root().unwrap_or_else(std::env::temp_dir);
    let dir = root
        .join(format!("data-{}", env!("CARGO_PKG_VERSION")))
        .join(Path::new(set.dir).file_name().expect("a folder"));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    for (name, bytes) in set.files {
        let path = dir.join(name);
        let current = std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64);
        if !current {
            crate::run::write_atomic(&path, bytes)?;
        }
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_paths_resolve_to_identical_copies_and_others_do_not() {
        for p in [
            "data/mnist",
            "./data/mnist/",
            "data/emoji/emoji-32x32-binary.tar.gz",
        ] {
            let got = embedded(p).expect("shipped").unwrap();
            let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(p);
            if got.is_dir() {
                for (name, bytes) in SHIPPED.iter().flat_map(|s| s.files.iter()) {
                    let (a, b) = (got.join(name), repo.join(name));
                    if b.exists() {
                        assert_eq!(&std::fs::read(&a).unwrap(), bytes);
                        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
                    }
                }
            } else {
                assert_eq!(std::fs::read(&got).unwrap(), std::fs::read(&repo).unwrap());
            }
        }
        for p in [
            "data/mnistx",
            "data/imagenet",
            "data/emoji/other.bin",
            "my/data/mnist",
        ] {
            assert!(embedded(p).is_none(), "{p}");
        }
    }
}
