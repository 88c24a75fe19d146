//! The physical floor of what plugcheck does per plugin: a minimal C
//! program (`xtask/bench/floor-spawner.c`) that starts a minimal C child
//! (`floor-child.c`) which opens the plugin, looks up `plugcheck_entry` and
//! calls it, and waits for it. The spawner times each round itself (spawn
//! to reap), so neither the bench's own process start nor Wine's start-up
//! is counted. Built with `cc` for Linux and with MinGW-w64 for the
//! Windows leg, where it runs under Wine like the harness.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::platform::Platform;
use crate::runner::Runner;

/// The built pair.
pub struct PhysicalFloor {
    spawner: PathBuf,
    child: PathBuf,
}

impl PhysicalFloor {
    /// Compiles the pair for `platform` into `dir`.
    pub fn build(sh: &Shell, platform: Platform, dir: &Path) -> anyhow::Result<PhysicalFloor> {
        let source = crate::paths::project_root().join("xtask/bench");
        let (compiler, extension) = match platform {
            Platform::Linux => ("cc", ""),
            Platform::Windows => (plugcheck::bridge::wine::MINGW_GCC, ".exe"),
        };
        let build = |name: &str| -> anyhow::Result<PathBuf> {
            let input = source.join(format!("{name}.c"));
            let output = dir.join(format!("{name}-{platform}{extension}"));
            let libraries: &[&str] = match platform {
                Platform::Linux => &["-ldl"],
                Platform::Windows => &[],
            };
            cmd!(
                sh,
                "{compiler} -O2 -Wall -Wextra -Werror -o {output} {input} {libraries...}"
            )
            .quiet()
            .run()
            .with_context(|| format!("cannot build the physical floor's {name}"))?;
            Ok(output)
        };
        Ok(PhysicalFloor {
            spawner: build("floor-spawner")?,
            child: build("floor-child")?,
        })
    }

    /// One round: the spawner's own measure of spawning the child over
    /// `plugin` and reaping it.
    pub fn once(&self, runner: &Runner, plugin: &Path) -> anyhow::Result<Duration> {
        let output = runner
            .command(
                &self.spawner,
                vec![runner.path(&self.child), runner.path(plugin), "1".into()],
            )
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()?;
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            bail!(
                "the physical floor failed on `{}`: {}{}",
                plugin.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let micros: f64 = text
            .trim()
            .parse()
            .with_context(|| format!("the floor spawner printed `{}`", text.trim()))?;
        Ok(Duration::from_secs_f64(micros / 1e6))
    }
}
