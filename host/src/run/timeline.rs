//! A run's phases with timestamps, when asked: with `PLUGCHECK_TIMELINE`
//! naming a file by its absolute path (workers run in directories of their
//! own), every process of the run (the parent, the spare and the workers
//! it forks, the Go worker) appends one line per phase it passes, `PID PHASE NS`,
//! on the clock they all share (`os::monotonic_ns`). `cargo xtask bench`
//! lays one run out from it, so a regression shows the phase it landed
//! in. Unasked, a mark costs a load of a cached `None`.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use crate::os;

/// The variable naming the timeline file.
pub const VAR: &str = "PLUGCHECK_TIMELINE";

/// The file, opened once per process image (a forked worker keeps its
/// parent's descriptor). Each line lands whole; lines of several processes
/// may land out of time order, so readers sort by NS. A worker in a PID
/// namespace of its own writes its pid there (2).
static FILE: OnceLock<Option<Mutex<std::fs::File>>> = OnceLock::new();

/// Records that this process reached `phase` now.
pub fn mark(phase: &str) {
    let Some(file) = FILE.get_or_init(open) else {
        return;
    };
    let line = format!("{} {phase} {}\n", std::process::id(), os::monotonic_ns());
    // One write per line, to a file opened for appending: lines of
    // several processes do not interleave.
    let _ = file
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .write_all(line.as_bytes());
}

fn open() -> Option<Mutex<std::fs::File>> {
    let path = std::env::var_os(VAR)?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .ok()
        .map(Mutex::new)
}
