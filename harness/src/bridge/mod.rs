//! Running the other platform's binaries from this host: Windows programs
//! under Wine on Linux, Linux programs inside WSL2 on Windows. `plugcheck
//! check --platform` judges a plugin on the other platform through them,
//! and `cargo xtask` runs its platform legs through the same code.

pub(crate) mod windows_harness;
pub mod wine;
pub mod wsl;

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

pub use crate::os::find_on_path;
