//! The one seam between plugcheck and the operating system. Everything that
//! names a platform — loader flags, process groups or Job Objects, exit
//! status decoding, `/proc` or toolhelp snapshots — lives behind it, with the
//! same functions on every OS. The rest of the harness asks for capabilities
//! and never writes `cfg`.

#[cfg(unix)]
#[path = "unix.rs"]
mod imp;

#[cfg(windows)]
#[path = "windows.rs"]
mod imp;

pub use imp::*;

/// One output stream of a worker (stdout or stderr): what the worker is
/// given to write to, and what the parent reads the plugin's output from.
/// A pipe on Linux; a temporary file on Windows, whose pipes cost a
/// wineserver round trip per write under Wine (a plugin printing 1 MB of
/// lines took 1.5 s there, through a file 40 ms).
pub struct WorkerOutput {
    pub child: std::process::Stdio,
    pub reader: Box<dyn std::io::Read + Send>,
}

/// Why the OS loader refused a library, as far as its message tells.
#[derive(Debug, Clone)]
pub struct OpenFailure {
    pub error: crate::report::OsError,
    /// The symbol immediate binding could not resolve.
    pub unresolved_symbol: Option<String>,
    /// The dependency the loader could not find.
    pub missing_dependency: Option<String>,
}

/// Resources a process holds, for leak checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceUse {
    pub threads: u64,
    /// Open file descriptors (Unix) or handles (Windows).
    pub handles: u64,
    pub mapped_bytes: u64,
}

impl ResourceUse {
    pub fn now() -> ResourceUse {
        ResourceUse {
            threads: thread_count(),
            handles: open_handles(),
            mapped_bytes: mapped_bytes(),
        }
    }
}
