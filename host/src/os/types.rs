//! The seam's own types: what the harness and each OS's side of the seam
//! (`linux.rs`, `windows.rs`) both name. A leaf, so the two sides meet
//! here and not in `mod.rs`, which forwards to them.

use std::path::Path;
use std::process::Command;

/// A platform plugcheck judges on: this host ([`HOST`]) or the other one,
/// which `check --platform` reaches through a bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Platform {
    Linux,
    Windows,
}

impl Platform {
    /// Every platform, in the order reports and gate files list them.
    pub const ALL: [Platform; 2] = [Platform::Linux, Platform::Windows];

    /// As reports and gate files name it (`std::env::consts::OS` there).
    pub const fn name(self) -> &'static str {
        match self {
            Platform::Linux => "linux",
            Platform::Windows => "windows",
        }
    }

    /// The one named `name`, if plugcheck judges on it.
    pub fn named(name: &str) -> Option<Platform> {
        Platform::ALL
            .into_iter()
            .find(|platform| platform.name() == name)
    }

    /// The usual file extension of a plugin there.
    pub const fn library_extension(self) -> &'static str {
        match self {
            Platform::Linux => "so",
            Platform::Windows => "dll",
        }
    }

    /// The platform that is not this one.
    pub const fn other(self) -> Platform {
        match self {
            Platform::Linux => Platform::Windows,
            Platform::Windows => Platform::Linux,
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A kind of per-user directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserDir {
    /// Kept until removed (a Wine prefix).
    Data,
    /// Rebuilt when removed (built Go workers).
    Cache,
}

/// What starts one worker: the program and its arguments (after the
/// program name), variables on top of plugcheck's own environment, and the
/// ends its stdout and stderr write to. Stdin is always empty.
pub struct WorkerLaunch<'a> {
    pub exe: &'a Path,
    pub args: Vec<std::ffi::OsString>,
    /// The same assignment as data, for a worker forked from plugcheck
    /// (no command line to build and parse): opaque here, read by the
    /// [`WorkerMain`] it is handed to.
    pub assignment: Vec<u8>,
    /// The worker's end of its channel, where the OS hands one over at
    /// the start (see `PendingChannel`).
    pub channel: Option<ChannelEnd>,
    pub environment: &'a [(&'a str, String)],
    /// The worker's working directory: a scratch directory of its own, so
    /// files a plugin writes "here" never land in the user's directory.
    pub cwd: &'a Path,
    pub stdout: std::fs::File,
    pub stderr: std::fs::File,
}

impl WorkerLaunch<'_> {
    /// The launch as a new program: how a worker starts wherever no
    /// zygote serves it (the OS side then gives it a process tree of its
    /// own).
    pub(crate) fn into_command(self) -> Command {
        let mut command = Command::new(self.exe);
        command
            .args(self.args)
            .envs(self.environment.iter().map(|(name, value)| (name, value)))
            .current_dir(self.cwd)
            .stdin(std::process::Stdio::null())
            .stdout(self.stdout)
            .stderr(self.stderr);
        command
    }
}

/// What a launch hands a worker of its channel (see `PendingChannel`):
/// the socket pair's end on Linux; nothing on Windows, where the worker
/// connects.
#[cfg(unix)]
pub type ChannelEnd = std::os::fd::OwnedFd;
#[cfg(windows)]
pub type ChannelEnd = std::convert::Infallible;

/// What a forked worker runs: its assignment (`WorkerLaunch::assignment`)
/// and the descriptor its channel end arrived on, to its exit code.
pub type WorkerMain = fn(&[u8], Option<i32>) -> i32;

/// One output stream of a worker (stdout or stderr): what the worker is
/// given to write to, and what the parent reads the plugin's output from.
/// A pipe on Linux; a temporary file on Windows, whose pipes cost a
/// wineserver round trip per write under Wine (a plugin printing 1 MB of
/// lines took 1.5 s there, through a file 40 ms).
pub struct WorkerOutput {
    /// The worker's end (a pipe's write end, or the file).
    pub child: std::fs::File,
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
