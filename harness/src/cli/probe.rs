//! Hidden measuring modes for `cargo xtask bench`: the cheapest process
//! that touches a plugin, and in-process reload latency against its floor.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::shared::exit;
use crate::os;
use crate::reload::watch::{DEFAULT_DEBOUNCE, Mode, Wake, Watcher};
use crate::reload::{ReloadEngine, ReloadOptions};

/// Writes of a watched file timed through the watcher.
const WATCHED_WRITES: usize = 10;

/// Opens a plugin, looks up its entry and calls it.
pub(super) fn probe(plugin: &Path) -> anyhow::Result<u8> {
    let (library, entry) = crate::plugin::loader::open_and_enter(plugin)?;
    drop(library);
    Ok(if entry {
        exit::PASSED
    } else {
        exit::GATE_FAILED
    })
}

#[derive(Debug, clap::Args)]
pub(super) struct BenchReloadArgs {
    plugin: PathBuf,
    /// Reloads (and floor rounds) to measure.
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// Where shadow copies go.
    #[arg(long)]
    scratch: Option<PathBuf>,
}

/// Latencies in microseconds, printed as JSON for the bench.
#[derive(Debug, Serialize)]
struct ReloadLatencies {
    /// Copy the library, open it, look up the entry, call it, close the
    /// previous one: the least a reload can do.
    floor_us: Vec<u64>,
    /// `reload()` until the new version has answered a call.
    reload_us: Vec<u64>,
    /// The watcher's debounce, and from a write of the plugin file until the
    /// watcher reported it settled: detection plus the debounce, which
    /// comes before a reload starts.
    debounce_us: u64,
    watcher_us: Vec<u64>,
}

/// Measures reload latency in this process, next to its floor.
pub(super) fn bench_reload(args: BenchReloadArgs) -> anyhow::Result<u8> {
    let scratch = tempfile::Builder::new()
        .prefix("plugcheck-bench-")
        .tempdir_in(args.scratch.unwrap_or_else(std::env::temp_dir))?;
    let mut floor_us = Vec::with_capacity(args.count);
    let mut previous = None;
    for round in 0..args.count {
        let started = Instant::now();
        let copy = scratch
            .path()
            .join(format!("floor-{round}.{}", os::LIBRARY_EXTENSION));
        std::fs::copy(&args.plugin, &copy)?;
        let (library, _) = crate::plugin::loader::open_and_enter(&copy)?;
        if let Some((old, old_copy)) = previous.replace((library, copy)) {
            drop(old);
            let _ = std::fs::remove_file(old_copy);
        }
        floor_us.push(micros(started.elapsed()));
    }
    drop(previous);
    let engine = ReloadEngine::open(
        &args.plugin,
        ReloadOptions {
            scratch: Some(scratch.path().to_owned()),
            ..ReloadOptions::default()
        },
    )
    .map_err(|failure| anyhow::anyhow!("{failure}"))?;
    let mut reload_us = Vec::with_capacity(args.count);
    for _ in 0..args.count {
        let started = Instant::now();
        engine
            .reload()
            .map_err(|failure| anyhow::anyhow!("{failure}"))?;
        engine
            .call("selftest", &[])
            .map_err(|outcome| anyhow::anyhow!("{}", outcome.reason))?;
        reload_us.push(micros(started.elapsed()));
    }
    drop(engine);
    let watched = scratch
        .path()
        .join(format!("watched.{}", os::LIBRARY_EXTENSION));
    std::fs::copy(&args.plugin, &watched)?;
    let watcher = Watcher::new(&watched, DEFAULT_DEBOUNCE, Mode::Events)?;
    let bytes = std::fs::read(&args.plugin)?;
    let mut watcher_us = Vec::new();
    for _ in 0..WATCHED_WRITES {
        std::fs::write(&watched, &bytes)?;
        let written = Instant::now();
        if let Wake::Changed { .. } = watcher.next() {
            watcher_us.push(micros(written.elapsed()));
        }
    }
    println!(
        "{}",
        serde_json::to_string(&ReloadLatencies {
            floor_us,
            reload_us,
            debounce_us: micros(DEFAULT_DEBOUNCE),
            watcher_us,
        })?
    );
    Ok(exit::PASSED)
}

fn micros(duration: Duration) -> u64 {
    duration.as_micros() as u64
}
