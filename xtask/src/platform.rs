//! The platforms plugcheck has legs on, and what differs between them for
//! the xtask: target triple, library extension, how `plugcheck` is run.

use std::fmt;

/// A platform leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Platform {
    Linux,
    Windows,
}

/// What `--platform` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Selection {
    /// The host's own platform.
    #[default]
    Host,
    Linux,
    Windows,
    /// Every leg this host can run.
    All,
}

impl Selection {
    pub fn platforms(self) -> Vec<Platform> {
        match self {
            Selection::Host => vec![Platform::host()],
            Selection::Linux => vec![Platform::Linux],
            Selection::Windows => vec![Platform::Windows],
            Selection::All => vec![Platform::Linux, Platform::Windows],
        }
    }
}

impl Platform {
    pub fn host() -> Platform {
        if cfg!(windows) {
            Platform::Windows
        } else {
            Platform::Linux
        }
    }

    /// As reports name it (`std::env::consts::OS` of the harness).
    pub fn name(self) -> &'static str {
        match self {
            Platform::Linux => "linux",
            Platform::Windows => "windows",
        }
    }

    pub fn target(self) -> &'static str {
        match self {
            Platform::Linux => "x86_64-unknown-linux-gnu",
            Platform::Windows => "x86_64-pc-windows-gnu",
        }
    }

    pub fn library_extension(self) -> &'static str {
        match self {
            Platform::Linux => "so",
            Platform::Windows => "dll",
        }
    }

    pub fn exe_suffix(self) -> &'static str {
        match self {
            Platform::Linux => "",
            Platform::Windows => ".exe",
        }
    }

    /// `plugcheck-plugin-echo` → `libplugcheck_plugin_echo.so` /
    /// `plugcheck_plugin_echo.dll`.
    pub fn cdylib_file(self, package: &str) -> String {
        let stem = package.replace('-', "_");
        match self {
            Platform::Linux => format!("lib{stem}.so"),
            Platform::Windows => format!("{stem}.dll"),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
