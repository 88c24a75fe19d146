//! `ar` archives where a shared library was expected: a Rust rlib (a crate
//! built without `crate-type = ["cdylib"]`) or a static library. Passed as
//! the plugin, the sniffing says which; and when the plugin's path does not
//! exist but its build left one of these beside it (`libkv.rlib` where
//! `libkv.so` was asked for), "does not exist: build the plugin first"
//! would send someone who did build it looking in the wrong place, so the
//! diagnosis names the archive and the fix.

use std::path::{Path, PathBuf};

use object::FileKind;
use object::read::ReadCache;

use crate::inspect::file;

/// Which kind of archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// A Rust library: it carries the crate's metadata as `lib.rmeta`.
    Rust,
    /// A static library of object files.
    Static,
}

impl ArchiveKind {
    /// The kind of the archive `data` holds.
    pub fn of(data: &ReadCache<std::fs::File>) -> ArchiveKind {
        let rust = object::read::archive::ArchiveFile::parse(data).is_ok_and(|archive| {
            archive
                .members()
                .filter_map(Result::ok)
                .any(|member| member.name() == b"lib.rmeta")
        });
        if rust {
            ArchiveKind::Rust
        } else {
            ArchiveKind::Static
        }
    }

    /// What the build made instead of a shared library, and the fix.
    pub fn advice(self) -> &'static str {
        match self {
            ArchiveKind::Rust => {
                "the crate was built as a Rust library (rlib), not a cdylib: add `crate-type = [\"cdylib\"]` under `[lib]` in its Cargo.toml and build again"
            }
            ArchiveKind::Static => {
                "it was built as a static library, not a shared one: for a Rust crate add `crate-type = [\"cdylib\"]` under `[lib]` in its Cargo.toml; in C link with `-shared -fPIC`"
            }
        }
    }
}

/// The archives a build makes beside a shared library's place, by the
/// names rustc and C toolchains give them on either platform:
/// `libkv.so`/`kv.dll` → `libkv.rlib`, `libkv.a`, `kv.lib`.
pub(crate) fn names_beside(library: &Path) -> Vec<PathBuf> {
    let Some(stem) = library.file_stem().and_then(|stem| stem.to_str()) else {
        return Vec::new();
    };
    let name = stem.strip_prefix("lib").unwrap_or(stem);
    if name.is_empty() {
        return Vec::new();
    }
    [
        format!("lib{name}.rlib"),
        format!("lib{name}.a"),
        format!("{name}.lib"),
    ]
    .into_iter()
    .map(|file| library.with_file_name(file))
    .filter(|candidate| candidate != library)
    .collect()
}

/// The first archive beside the missing `library` that is one (read
/// through [`file::open`], bounded like a plugin), with its kind.
pub(crate) fn beside(library: &Path) -> Option<(PathBuf, ArchiveKind)> {
    names_beside(library).into_iter().find_map(|candidate| {
        let plugin = file::open(&candidate).ok()?;
        let data = ReadCache::new(plugin.file);
        (FileKind::parse(&data).ok()? == FileKind::Archive)
            .then(|| (candidate, ArchiveKind::of(&data)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archives_of_a_crate_are_named_as_its_toolchains_name_them() {
        let names = |path: &str| -> Vec<String> {
            names_beside(Path::new(path))
                .iter()
                // `/` on every platform: Windows joins with `\\`.
                .map(|p| p.display().to_string().replace('\\', "/"))
                .collect()
        };
        assert_eq!(
            names("/t/release/libkv.so"),
            [
                "/t/release/libkv.rlib",
                "/t/release/libkv.a",
                "/t/release/kv.lib"
            ]
        );
        assert_eq!(
            names("/t/release/kv.dll"),
            [
                "/t/release/libkv.rlib",
                "/t/release/libkv.a",
                "/t/release/kv.lib"
            ]
        );
        assert_eq!(names("/t/lib.so"), Vec::<String>::new());
    }

    #[test]
    fn only_an_archive_counts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("libkv.rlib"), b"not an archive").unwrap();
        assert_eq!(beside(&dir.path().join("libkv.so")), None);
    }
}
