//! Running the other platform's binaries from this host: Windows programs
//! under Wine on Linux, Linux programs inside WSL2 on Windows. `plugcheck
//! check --platform` judges a plugin on the other platform through them,
//! and `cargo xtask` runs its platform legs through the same code.

pub(crate) mod windows_harness;
pub mod wine;
pub mod wsl;

use std::path::PathBuf;

/// A prerequisite this machine lacks: what, and how to get it. A caller may
/// skip what needs it (the xtask without `--require-all`); every other
/// error is a failure.
#[derive(Debug, thiserror::Error)]
#[error("{what} is missing: {remedy}")]
pub struct Missing {
    pub what: String,
    pub remedy: String,
}

impl Missing {
    /// Whether `error`, or any error it was caused by, is a [`Missing`].
    pub fn in_chain(error: &anyhow::Error) -> bool {
        error.chain().any(|cause| cause.is::<Missing>())
    }
}

/// `program` in a directory of PATH; on a Windows host as `program.exe`
/// too (MSYS2's `x86_64-w64-mingw32-gcc.exe`, `go.exe`).
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let names = [
        program.to_owned(),
        format!("{program}{}", std::env::consts::EXE_SUFFIX),
    ];
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
            .find(|candidate| candidate.is_file())
    })
}
