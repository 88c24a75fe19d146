//! The Go-native line of `cargo xtask bench`: the suite (every family
//! before the crash family, which the bench prices apart) over the
//! go-native-echo template, as `plugcheck check` runs it, against a floor
//! measured in the same run — a Go program (`xtask/bench/go-native-floor`)
//! that does `plugin.Open`, `Lookup("Plugin")` and one call in a fresh
//! process, the least any Go host does. The first run of a fresh worker
//! cache, which builds the Go worker, is reported apart; the target holds
//! for runs once the worker is cached.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use plugcheck::report::Report;

use crate::fixtures::Built;

use super::stats;

/// Target of the twice-the-floor issue for a cached Go-native suite run
/// per plugin, in floors (the Go-native issue set 3).
pub const TARGET: f64 = 2.5;

pub struct GoNativeTiming {
    runs: usize,
    cases: usize,
    first: Duration,
    floor: Duration,
    cached: Duration,
    worker: String,
}

impl GoNativeTiming {
    pub fn ratio(&self) -> f64 {
        self.cached.as_secs_f64() / self.floor.as_secs_f64()
    }

    pub fn print(&self) {
        let met = if self.ratio() <= TARGET {
            "met"
        } else {
            "NOT MET"
        };
        println!(
            "go      Go-native: `plugcheck check --json` over go-native-echo, {} cases, {} runs, {}",
            self.cases, self.runs, self.worker
        );
        println!(
            "        floor (Go program: plugin.Open + Lookup + one call, fresh process) {} · suite, worker cached {} = {:.2}× floor (target ≤ {TARGET}×: {met}) · first run, building the worker {}",
            stats::ms(self.floor),
            stats::ms(self.cached),
            self.ratio(),
            stats::ms(self.first)
        );
    }
}

/// Measures the line; `Ok(None)` when Go is not installed (said why).
pub fn measure(
    plugcheck: &Path,
    echo: &Built,
    runs: usize,
    scratch: &Path,
) -> anyhow::Result<Option<GoNativeTiming>> {
    let Some(go) = plugcheck::bridge::find_on_path("go") else {
        println!("go      Go-native line not measured: go is not installed");
        return Ok(None);
    };
    let floor_exe = build_floor(&go, scratch)?;
    let cache = scratch.join("go-worker-cache");
    let json = scratch.join("go-native.json");
    let suite_once = || -> anyhow::Result<(Duration, Report)> {
        let started = Instant::now();
        let output = Command::new(plugcheck)
            .args(crate::conformance::check_argv())
            // The suite the target was set for: fuzzing is measured on
            // its own line, against the suite without it.
            .args(["--filter", stats::FAMILIES_BEFORE_CRASH])
            .arg("--json")
            .arg(&json)
            .arg(&echo.path)
            .env("PLUGCHECK_CACHE_DIR", &cache)
            .env_remove("PLUGCHECK_GO")
            .output()?;
        let wall = started.elapsed();
        if !output.status.success() {
            bail!(
                "`plugcheck check` failed on go-native-echo: {}\n{}",
                output.status,
                String::from_utf8_lossy(&output.stdout)
            );
        }
        Ok((wall, Report::read_json(&json)?))
    };
    let floor_once = || -> anyhow::Result<Duration> {
        let started = Instant::now();
        let status = Command::new(&floor_exe).arg(&echo.path).status()?;
        if !status.success() {
            bail!("the Go floor program failed on go-native-echo: {status}");
        }
        Ok(started.elapsed())
    };
    let (first, report) = suite_once()?;
    floor_once()?;
    let (mut floors, mut walls) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        floors.push(floor_once()?);
        walls.push(suite_once()?.0);
    }
    let plugin = &report.plugins[0];
    Ok(Some(GoNativeTiming {
        runs,
        cases: plugin.cases.len(),
        first,
        floor: stats::percentile(&mut floors, 50),
        cached: stats::percentile(&mut walls, 50),
        worker: plugin
            .worker
            .clone()
            .unwrap_or_else(|| "no Go worker named".into()),
    }))
}

/// Builds the floor program as Go-native hosts must be built (-trimpath).
fn build_floor(go: &Path, scratch: &Path) -> anyhow::Result<PathBuf> {
    let exe = scratch.join("go-native-floor");
    let output = Command::new(go)
        .args(["build", "-trimpath", "-o"])
        .arg(&exe)
        .arg(".")
        .current_dir(crate::paths::project_root().join("xtask/bench/go-native-floor"))
        .env("CGO_ENABLED", "1")
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .output()
        .context("cannot run go to build the Go-native floor")?;
    if !output.status.success() {
        bail!(
            "building the Go-native floor failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(exe)
}
