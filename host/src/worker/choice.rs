//! Which worker judges a plugin, from what its file is: the Rust worker
//! (this binary) for C-ABI plugins, the Go worker for Go-native ones — or
//! none, with the verdict that says why (a Go-native plugin on Windows, no
//! Go toolchain to build the Go worker with).

use std::path::{Path, PathBuf};

use crate::inspect::kind::{self, PluginKind};
use crate::os;
use crate::outcome::Outcome;
use crate::worker::go;

/// How a plugin will be judged.
#[derive(Debug)]
pub enum Choice {
    Worker(WorkerProgram),
    /// No worker can judge it here: the outcome of its first case.
    Refused(Outcome),
}

/// A worker program and how to drive it.
#[derive(Debug, Clone)]
pub struct WorkerProgram {
    pub exe: PathBuf,
    /// Whether the worker skips a batch's cases behind a failed
    /// prerequisite itself (the Rust worker, with the shared ledger). The
    /// Go worker runs every case it is sent, so the parent cuts batches
    /// where a case depends on one before it in the batch.
    pub applies_ledger: bool,
    /// Whether the worker reads the fuzz inputs from a file the parent
    /// writes (the Go worker) instead of making them itself.
    pub reads_fuzz_series: bool,
    /// For the report, when it is not the Rust worker.
    pub described: Option<String>,
}

/// The worker for the plugin at `path`; `rust_worker` is this binary.
pub fn for_plugin(path: &Path, rust_worker: &Path) -> Choice {
    let go = match kind::of(path) {
        PluginKind::CAbi => {
            return Choice::Worker(WorkerProgram {
                exe: rust_worker.to_owned(),
                applies_ledger: true,
                reads_fuzz_series: false,
                described: None,
            });
        }
        PluginKind::GoNative(go) => go,
        PluginKind::GoLookalike { packages } => {
            return Choice::Refused(Outcome::fail(PluginKind::lookalike_reason(packages)));
        }
    };
    if !os::GO_NATIVE_PLUGINS {
        return Choice::Refused(Outcome::unsupported(go_native_elsewhere(path)));
    }
    match go::for_plugin(&go) {
        Ok(worker) => Choice::Worker(WorkerProgram {
            exe: worker.exe,
            applies_ledger: false,
            reads_fuzz_series: true,
            described: Some(format!("Go worker built by {}", worker.go_version)),
        }),
        Err(error) => Choice::Refused(Outcome::fail(format!(
            "a Go-native plugin (go build -buildmode=plugin): {error}"
        ))),
    }
}

/// Why a Go-native plugin is not judged on this platform, and the command
/// that judges it where it loads.
fn go_native_elsewhere(path: &Path) -> String {
    format!(
        "a Go-native plugin (go build -buildmode=plugin) cannot load on {os}: Go plugins load only on Linux-like systems, and Go refuses to build them here (`-buildmode=plugin not supported on {os}/amd64`); judge it inside WSL2 with `plugcheck check --platform linux {path}` (which runs `plugcheck check` on the same file inside the distribution through `wsl.exe --exec`; install plugcheck and Go there), or build it as a C-ABI plugin with -buildmode=c-shared",
        os = std::env::consts::OS,
        path = path.display(),
    )
}
