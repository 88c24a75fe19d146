//! Why a would-be plugin could not be opened: the diagnosis the sniffing
//! and the loader both give, named for the step that failed. A leaf, so
//! the two do not import each other.

use std::path::PathBuf;

use crate::os::{self, OsError};

/// Why a library could not be opened, named for the step that failed. Each
/// message names the file and what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error(
        "`{}` is not an absolute path: plugcheck never loads through the library search path; pass a full path",
        path.display()
    )]
    NotAbsolute { path: PathBuf },
    /// Missing, a directory, a pipe or device, too large, unreadable: the
    /// file is refused before anything reads it.
    #[error(transparent)]
    File(#[from] crate::inspect::file::FileProblem),
    /// Missing, but the build left an archive beside it: the crate was
    /// built as a Rust or static library.
    #[error(
        "`{}` does not exist, but `{}` beside it does: {}",
        path.display(), found.file_name().unwrap_or_default().to_string_lossy(), kind.advice()
    )]
    BuiltAsArchive {
        path: PathBuf,
        found: PathBuf,
        kind: crate::inspect::archive::ArchiveKind,
    },
    #[error(
        "`{}` is empty (0 bytes): the build or copy did not finish; rebuild the plugin",
        path.display()
    )]
    Empty { path: PathBuf },
    #[error(
        "`{}` is not a shared library but {looks_like}: pass the library your build produced",
        path.display()
    )]
    NotABinary { path: PathBuf, looks_like: String },
    #[error(
        "`{}` is a truncated {format} file: its headers describe more bytes than it holds; the build or copy was cut short, rebuild the plugin",
        path.display()
    )]
    Truncated {
        path: PathBuf,
        format: String,
        len: u64,
        needed: u64,
    },
    #[error("`{}` is a corrupt {format} file ({error}): rebuild the plugin", path.display())]
    Corrupt {
        path: PathBuf,
        format: String,
        error: String,
    },
    #[error(
        "`{}` is {} {found}; this platform loads {}: build the plugin for {}-{}",
        path.display(), article(found), os::NATIVE_FORMAT_NAME, std::env::consts::ARCH, std::env::consts::OS
    )]
    ForeignFormat { path: PathBuf, found: String },
    #[error(
        "`{}` is built for {found}, but this host is {expected}: build the plugin for {expected}",
        path.display()
    )]
    WrongArchitecture {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error(
        "`{}` is {} {found}, not a shared library: build it as one (Rust: crate-type = [\"cdylib\"]; C: -shared)",
        path.display(), article(found)
    )]
    NotSharedLibrary { path: PathBuf, found: String },
    #[error(
        "`{}` is a Rust library (rlib), not a shared library: add `crate-type = [\"cdylib\"]` under `[lib]` in the plugin's Cargo.toml and rebuild; cargo then writes {}",
        path.display(), os::CDYLIB_EXAMPLE
    )]
    RustLibrary { path: PathBuf },
    #[error(
        "`{}` is a static library (an archive of object files), not a shared library: link the objects as one (gcc/clang: `-shared -fPIC -o {}`)",
        path.display(), os::SHARED_LIBRARY_EXAMPLE
    )]
    StaticLibrary { path: PathBuf },
    #[error(
        "`{}` needs the symbol `{symbol}`, which no loaded library defines (found at load: immediate binding): link the library that provides it, or remove the reference",
        path.display()
    )]
    UnresolvedSymbol {
        path: PathBuf,
        symbol: String,
        os_error: OsError,
    },
    #[error(
        "`{}` needs `{dependency}`, which the loader cannot find: install it, or place it where the loader looks",
        path.display()
    )]
    MissingDependency {
        path: PathBuf,
        dependency: String,
        os_error: OsError,
    },
    #[error("the loader refused `{}`: {os_error}", path.display())]
    Refused { path: PathBuf, os_error: OsError },
}

impl OpenError {
    /// The OS error behind the diagnosis, when the loader was asked.
    pub fn os_error(&self) -> Option<&OsError> {
        match self {
            OpenError::UnresolvedSymbol { os_error, .. }
            | OpenError::MissingDependency { os_error, .. }
            | OpenError::Refused { os_error, .. } => Some(os_error),
            _ => None,
        }
    }

    /// Whether the file is no library this platform loads at all (missing,
    /// another platform's or architecture's, not a shared library), rather
    /// than a build of one that fails to load (truncated, damaged, a symbol
    /// or dependency missing). Any host refuses the first for reasons that
    /// say nothing about the plugin.
    ///
    /// Every variant is classified here, with no catch-all: a new kind of
    /// diagnosis must say which it is, or a reload case could count a file
    /// that never loads as the refusal it wanted.
    pub fn is_no_library_here(&self) -> bool {
        match self {
            OpenError::NotAbsolute { .. }
            | OpenError::File(_)
            | OpenError::BuiltAsArchive { .. }
            | OpenError::Empty { .. }
            | OpenError::NotABinary { .. }
            | OpenError::ForeignFormat { .. }
            | OpenError::WrongArchitecture { .. }
            | OpenError::NotSharedLibrary { .. }
            | OpenError::RustLibrary { .. }
            | OpenError::StaticLibrary { .. } => true,
            OpenError::Truncated { .. }
            | OpenError::Corrupt { .. }
            | OpenError::UnresolvedSymbol { .. }
            | OpenError::MissingDependency { .. }
            | OpenError::Refused { .. } => false,
        }
    }

    /// What the file was found to be, when sniffing got that far.
    pub fn file_format(&self) -> Option<String> {
        match self {
            OpenError::Empty { .. } => Some("empty file".into()),
            OpenError::File(problem) => problem.file_format(),
            OpenError::NotABinary { looks_like, .. } => Some(looks_like.clone()),
            OpenError::Truncated { format, .. } => Some(format!("{format} (truncated)")),
            OpenError::Corrupt { format, .. } => Some(format!("{format} (damaged)")),
            OpenError::ForeignFormat { found, .. } | OpenError::NotSharedLibrary { found, .. } => {
                Some(found.clone())
            }
            OpenError::WrongArchitecture { found, .. } => Some(format!("built for {found}")),
            OpenError::RustLibrary { .. } => Some("Rust library (rlib)".into()),
            OpenError::StaticLibrary { .. } => Some("static library".into()),
            _ => None,
        }
    }
}

/// "an" before a vowel sound (ELF, x86), "a" otherwise (PE, Mach-O).
fn article(word: &str) -> &'static str {
    match word.chars().next().map(|c| c.to_ascii_uppercase()) {
        Some('A' | 'E' | 'I' | 'O' | 'U' | 'X') => "an",
        _ => "a",
    }
}
