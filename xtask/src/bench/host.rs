//! The lines of `plugcheck-host`: an embedded host's in-process call, its
//! worker call and its reload under load, each against a floor the bench
//! program (`plugcheck-host-bench`, in the fixtures crate) measures in the
//! same run. It runs as the application it measures: its own binary is
//! its workers' program.

use std::path::Path;

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

/// Builds and runs the host bench over release builds of echo and the
/// counter pair; fails when the worker call is over its goal.
pub fn measure(sh: &Shell, echo: &Path, counter: &Path, counter_v2: &Path) -> anyhow::Result<()> {
    if crate::platform::Platform::host() != crate::platform::Platform::Linux {
        println!("host    lines not measured: their floor is a Unix socket pair (Linux)");
        return Ok(());
    }
    cmd!(
        sh,
        "cargo build --quiet --release -p plugcheck-fixtures --bin plugcheck-host-bench"
    )
    .run()?;
    let bench = crate::paths::target_dir().join("release/plugcheck-host-bench");
    let status = std::process::Command::new(&bench)
        .args([echo, counter, counter_v2])
        .status()
        .with_context(|| format!("cannot run `{}`", bench.display()))?;
    if !status.success() {
        bail!("the host bench failed ({status}): see above");
    }
    Ok(())
}
