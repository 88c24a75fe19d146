//! Shadow copies: where each loaded version of a plugin really lives.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::inspect::file;

/// A temporary directory of shadow copies, removed (with whatever is left
/// in it) when dropped.
#[derive(Debug)]
pub struct ShadowDir {
    dir: tempfile::TempDir,
    next: AtomicU64,
}

impl ShadowDir {
    /// A new directory inside `parent` (the system temporary directory when
    /// `None`).
    pub fn new(parent: Option<&Path>) -> std::io::Result<ShadowDir> {
        let builder = {
            let mut builder = tempfile::Builder::new();
            builder.prefix("plugcheck-reload-");
            builder
        };
        let dir = match parent {
            Some(parent) => builder.tempdir_in(parent)?,
            None => builder.tempdir()?,
        };
        Ok(ShadowDir {
            dir,
            next: AtomicU64::new(1),
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Copies `original` to a name no earlier copy used (`stem-PID-N.ext`):
    /// a loader that caches by path must not hand back an old version.
    /// Returns the copy and the hash of the bytes copied (one read for
    /// both, so the hash is of exactly what will be loaded). The original
    /// must be a regular file within the size bound; its holes stay holes.
    pub fn copy(&self, original: &Path) -> std::io::Result<(PathBuf, u64)> {
        let mut source = file::open(original).map_err(into_io)?;
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let stem = original
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_else(|| "plugin".into());
        let mut name = format!("{stem}-{}-{n}", std::process::id());
        if let Some(extension) = original.extension() {
            name.push('.');
            name.push_str(&extension.to_string_lossy());
        }
        let shadow = self.dir.path().join(name);
        let mut copy = std::fs::File::create(&shadow)?;
        let hash = source.hash_and_copy(Some(&mut copy))?;
        Ok((shadow, hash))
    }
}

/// A hash of a file's content, to tell a real change from a touch; read
/// with the bounds of [`crate::inspect::file`].
pub(super) fn content_hash(path: &Path) -> std::io::Result<u64> {
    file::open(path).map_err(into_io)?.hash_and_copy(None)
}

/// A refused file as an I/O error that keeps the whole diagnosis.
fn into_io(problem: file::FileProblem) -> std::io::Error {
    let kind = match &problem {
        file::FileProblem::NotFound { .. } => std::io::ErrorKind::NotFound,
        file::FileProblem::Unreadable { source, .. } => source.kind(),
        _ => std::io::ErrorKind::InvalidInput,
    };
    std::io::Error::new(kind, problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_get_unique_names_and_the_directory_goes_away() {
        let source_dir = tempfile::tempdir().unwrap();
        let original = source_dir.path().join("libdemo.so");
        std::fs::write(&original, b"v1").unwrap();
        let shadows = ShadowDir::new(Some(source_dir.path())).unwrap();
        let (first, hash) = shadows.copy(&original).unwrap();
        let (second, _) = shadows.copy(&original).unwrap();
        assert_ne!(first, second);
        assert_eq!(hash, content_hash(&original).unwrap());
        assert!(
            first
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .ends_with("-1.so")
        );
        assert_eq!(std::fs::read(&second).unwrap(), b"v1");
        let dir = shadows.path().to_owned();
        drop(shadows);
        assert!(!dir.exists());
    }

    #[test]
    fn the_hash_sees_content_not_timestamps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, b"same").unwrap();
        let before = content_hash(&path).unwrap();
        std::fs::write(&path, b"same").unwrap();
        assert_eq!(content_hash(&path).unwrap(), before);
        std::fs::write(&path, b"changed").unwrap();
        assert_ne!(content_hash(&path).unwrap(), before);
    }
}
