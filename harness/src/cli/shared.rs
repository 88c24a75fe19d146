//! What every command shares: its exit codes, its one way to print, and
//! its one way to make a path absolute. A leaf: the commands import it, it
//! imports none of them.

use std::io::Write;
use std::path::PathBuf;

/// Exit codes of `plugcheck check`.
pub(super) mod exit {
    /// Every plugin passed the gate.
    pub(crate) const PASSED: u8 = 0;
    /// At least one plugin failed the gate.
    pub(crate) const GATE_FAILED: u8 = 1;
    /// Bad usage, or the harness itself failed.
    pub(crate) const ERROR: u8 = 2;
}

/// Writes to stdout. A closed pipe (`plugcheck check … | head`) must not
/// turn a verdict into a panic, so write errors are ignored.
/// Writes to stdout through anstream, which keeps colour for a terminal
/// (per `--color`, NO_COLOR, CLICOLOR_FORCE) and strips it elsewhere.
pub(super) fn say(text: &str) {
    let mut stdout = anstream::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// `path` made absolute against the current directory, lexically (no
/// symlink resolved, nothing need exist): the one way every command makes
/// a path absolute. An error (an empty path, no current directory) says
/// which path, never falls back to the path as given.
pub(super) fn absolute(path: &std::path::Path) -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    std::path::absolute(path)
        .with_context(|| format!("cannot make `{}` an absolute path", path.display()))
}
