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

/// An OS error as the loader reported it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OsError {
    /// Numeric code where the OS gives one (Win32 error, errno).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// Symbolic name of the code (`ERROR_MOD_NOT_FOUND`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub message: String,
}

/// `ERROR_DLL_INIT_FAILED: DLL initialization failed. (os error 1114)`:
/// the symbolic name first where there is one, since Windows' own message
/// is localized and vague.
impl std::fmt::Display for OsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A process the plugin left behind.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessInfo {
    pub pid: u32,
    pub name: String,
}

/// Why the OS loader refused a library, as far as its message tells.
#[derive(Debug, Clone)]
pub struct OpenFailure {
    pub error: OsError,
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
