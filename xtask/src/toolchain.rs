//! Which Rust toolchain builds the Rust parts for a platform, and how.
//!
//! For the host platform, the `cargo` on PATH. For Windows on a Linux host:
//! a toolchain with a prebuilt `x86_64-pc-windows-gnu` std when there is
//! one (`rustup target add …`), otherwise a rustc whose sysroot carries the
//! standard library's sources (Debian 12: `rustc-web`, `cargo-web`,
//! `rust-web-src`) building std itself with `-Zbuild-std`. Set
//! `PLUGCHECK_WINDOWS_STD=prebuilt` or `=build-std` to choose.

use std::path::{Path, PathBuf};

use anyhow::bail;
use xshell::{Shell, cmd};

use plugcheck::bridge::wine::MINGW_GCC;
use plugcheck::bridge::{Missing, find_on_path};

use crate::needs;
use crate::platform::Platform;

/// Debian's rustc with `rust-web-src`, which can build a Windows std.
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_CARGO: &str = "/usr/bin/cargo";
/// The one profile of a leg that builds std from source, and the file
/// that defines it for that leg's cargo alone.
pub const ONE_STD_PROFILE: &str = "windows-leg";
const ONE_STD_PROFILE_FILE: &str = ".cargo/windows-leg.toml";

/// The profile plugins and fixture crates are built with (Cargo.toml: no
/// debug info), and the one of crash fixtures that keep line tables.
pub const PLUGIN_PROFILE: &str = "fixtures";
pub const DEBUGINFO_PROFILE: &str = "fixtures-debuginfo";

/// A test binary cargo built, and the test target it came from.
#[derive(Debug, Clone)]
pub struct TestExecutable {
    pub target: String,
    pub path: PathBuf,
}

#[derive(Debug, Clone)]
pub struct RustBuild {
    platform: Platform,
    cargo: PathBuf,
    rustc: Option<PathBuf>,
    /// Cross-compile with `--target` (and, with `build_std`, std itself).
    cross: bool,
    build_std: bool,
    target_dir: PathBuf,
    /// Said to the user: which toolchain, and why.
    pub description: String,
    /// Neither the commands nor cargo's messages shown: a build ahead of
    /// time in the background, which the build that needs it repeats.
    silent: bool,
}

/// How the Windows leg's std comes to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowsStd {
    /// rustup's `x86_64-pc-windows-gnu` target, with the cargo on PATH.
    Prebuilt,
    /// Debian's rustc building std from its sources (Linux hosts only).
    BuildStd,
}

/// The Windows leg is `x86_64-pc-windows-gnu` on every host: the target the
/// `@windows` snapshots were made with, and the one both hosts can build
/// (MinGW-w64's gcc links it: Debian's package on Linux, `C:\mingw64\bin`
/// on a Windows runner). On a Windows host that is a cross build too, never
/// the host's default (MSVC) target. `choice` is `PLUGCHECK_WINDOWS_STD`.
pub fn windows_std(
    host: Platform,
    choice: Option<&str>,
    prebuilt: bool,
    debian_sources: bool,
) -> anyhow::Result<WindowsStd> {
    let sources = host == Platform::Linux && debian_sources;
    let missing = |remedy: &str| Missing {
        what: "a Rust std for x86_64-pc-windows-gnu".into(),
        remedy: remedy.into(),
    };
    let add_target = "install it with `rustup target add x86_64-pc-windows-gnu`";
    match (choice, prebuilt, sources) {
        (Some("prebuilt") | None, true, _) => Ok(WindowsStd::Prebuilt),
        (Some("build-std"), _, true) | (None, false, true) => Ok(WindowsStd::BuildStd),
        (Some("prebuilt"), false, _) => Err(missing(&format!(
            "PLUGCHECK_WINDOWS_STD=prebuilt, but the toolchain on PATH has none: {add_target}"
        ))
        .into()),
        (Some("build-std"), _, false) => Err(missing(&format!(
            "PLUGCHECK_WINDOWS_STD=build-std needs {DEBIAN_RUSTC} with the std sources, on a Linux host (apt-get install rustc-web cargo-web rust-web-src)"
        ))
        .into()),
        (Some(other), _, _) => bail!(
            "PLUGCHECK_WINDOWS_STD={other} is not a choice: use `prebuilt` or `build-std`"
        ),
        (None, false, false) if host == Platform::Windows => Err(missing(add_target).into()),
        (None, false, false) => Err(missing(&format!(
            "{add_target}, or apt-get install rustc-web cargo-web rust-web-src"
        ))
        .into()),
    }
}

impl RustBuild {
    /// The toolchain for `platform` on this host, or what is missing and
    /// the command that installs it.
    pub fn for_platform(sh: &Shell, platform: Platform) -> anyhow::Result<RustBuild> {
        if platform == Platform::Linux {
            if Platform::host() != Platform::Linux {
                bail!("the linux leg runs on Linux (or in WSL2), not on this host");
            }
            return Ok(RustBuild {
                platform,
                cargo: "cargo".into(),
                rustc: None,
                cross: false,
                build_std: false,
                target_dir: crate::paths::target_dir(),
                description: "the host toolchain".into(),
                silent: false,
            });
        }
        if find_on_path(MINGW_GCC).is_none() {
            return Err(Missing {
                what: format!("{MINGW_GCC}, which links the Windows leg"),
                remedy: needs::MINGW.install_hint(),
            }
            .into());
        }
        let std = windows_std_here(sh)?;
        let target_dir = crate::paths::target_dir().join("windows");
        Ok(match std {
            WindowsStd::Prebuilt => RustBuild {
                platform,
                cargo: "cargo".into(),
                rustc: None,
                cross: true,
                build_std: false,
                target_dir,
                description: "the toolchain on PATH, with its prebuilt x86_64-pc-windows-gnu std"
                    .into(),
                silent: false,
            },
            WindowsStd::BuildStd => RustBuild {
                platform,
                cargo: DEBIAN_CARGO.into(),
                rustc: Some(DEBIAN_RUSTC.into()),
                cross: true,
                build_std: true,
                target_dir,
                description: format!(
                    "{DEBIAN_RUSTC} building x86_64-pc-windows-gnu's std from its sources (-Zbuild-std)"
                ),
                silent: false,
            },
        })
    }

    /// The same builds, said nothing of: for building ahead of time in the
    /// background, where a failure is left to the build that needs it.
    pub fn silent(mut self) -> RustBuild {
        self.silent = true;
        self
    }

    /// `cargo build` of `packages` with `profile` (see [`RustBuild::profile`]).
    pub fn build(&self, sh: &Shell, packages: &[String], profile: &str) -> anyhow::Result<()> {
        let args = ["build", "--quiet", "--profile", self.profile(profile)];
        self.cargo(sh, &args, packages).run()?;
        Ok(())
    }

    /// The profile cargo builds `asked` with. Where std is built from its
    /// sources, the harness (`dev`), its tests and the fixtures
    /// (`fixtures`) share one, [`ONE_STD_PROFILE`]: each profile builds std
    /// anew, and std is most of what this leg compiles. `release` and
    /// line tables (`fixtures-debuginfo`) keep their own.
    pub fn profile<'a>(&self, asked: &'a str) -> &'a str {
        if self.build_std && matches!(asked, "dev" | "test" | PLUGIN_PROFILE) {
            ONE_STD_PROFILE
        } else {
            asked
        }
    }

    /// Builds the tests of `packages` (`targets`: `--lib`, `--bins` for a
    /// binary crate, `--tests` for every test target) and returns the test
    /// executables cargo reports, each with its target's name.
    pub fn test_executables(
        &self,
        sh: &Shell,
        packages: &[String],
        targets: &str,
    ) -> anyhow::Result<Vec<TestExecutable>> {
        let profile = self.profile("test");
        // Quiet: the JSON on stdout is all that is read, and cargo's
        // warnings would repeat at each call (one is false: it checks the
        // one-std profile's overrides against the workspace, which has no
        // std crates).
        let args = [
            "test",
            "--quiet",
            "--no-run",
            "--profile",
            profile,
            targets,
            "--message-format=json",
        ];
        let messages = self.cargo(sh, &args, packages).read()?;
        Ok(messages
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|message| message["reason"] == "compiler-artifact")
            // Test harnesses only: a package's programs are built for its
            // integration tests too (`CARGO_BIN_EXE_*`), and are not tests.
            .filter(|message| message["profile"]["test"] == true)
            .filter_map(|message| {
                Some(TestExecutable {
                    target: message["target"]["name"].as_str()?.to_owned(),
                    path: PathBuf::from(message["executable"].as_str()?),
                })
            })
            .collect())
    }

    /// `cargo ARGS -p PACKAGE…` for this platform: the right cargo and
    /// rustc, target, target directory, linker and std.
    fn cargo<'a>(&self, sh: &'a Shell, args: &[&str], packages: &[String]) -> xshell::Cmd<'a> {
        let cargo = &self.cargo;
        let target_dir = &self.target_dir;
        let cross: Vec<&str> = if self.cross {
            vec!["--target", self.platform.target()]
        } else {
            Vec::new()
        };
        let one_std_profile = crate::paths::project_root().join(ONE_STD_PROFILE_FILE);
        let build_std: Vec<&std::ffi::OsStr> = if self.build_std {
            vec![
                "-Zbuild-std=std,panic_unwind".as_ref(),
                "--config".as_ref(),
                one_std_profile.as_os_str(),
            ]
        } else {
            Vec::new()
        };
        let package_args: Vec<&str> = packages
            .iter()
            .flat_map(|package| ["-p", package.as_str()])
            .collect();
        let mut command = cmd!(
            sh,
            "{cargo} {args...} --target-dir {target_dir} {cross...} {build_std...} {package_args...}"
        );
        if self.cross {
            command = command.env("CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER", MINGW_GCC);
        }
        if let Some(rustc) = &self.rustc {
            command = command.env("RUSTC", rustc).env("RUSTC_BOOTSTRAP", "1");
        }
        if self.silent {
            command = command.quiet().ignore_stderr();
        }
        command
    }

    /// The rustc that builds for the platform.
    pub fn rustc(&self) -> &Path {
        self.rustc.as_deref().unwrap_or(Path::new("rustc"))
    }

    /// Where cargo puts what `profile` built.
    pub fn out_dir(&self, profile: &str) -> PathBuf {
        let profile = self.profile(profile);
        let dir = if profile == "dev" { "debug" } else { profile };
        if self.cross {
            self.target_dir.join(self.platform.target()).join(dir)
        } else {
            self.target_dir.join(dir)
        }
    }
}

/// How this host's Rust gets a Windows std, or what is missing. Only the
/// std: the linker is a need of its own (`needs::MINGW`), so `doctor` does
/// not send someone whose `rustup target add` worked to Debian's rustc
/// because mingw-w64 is missing.
pub fn windows_std_here(sh: &Shell) -> anyhow::Result<WindowsStd> {
    windows_std(
        Platform::host(),
        std::env::var("PLUGCHECK_WINDOWS_STD").ok().as_deref(),
        prebuilt_windows_std(sh),
        Path::new(DEBIAN_RUSTC).exists() && debian_std_sources().is_some(),
    )
}

/// Whether `rustc` on PATH has a prebuilt Windows std.
fn prebuilt_windows_std(sh: &Shell) -> bool {
    cmd!(
        sh,
        "rustc --print target-libdir --target x86_64-pc-windows-gnu"
    )
    .quiet()
    .ignore_stderr()
    .read()
    .ok()
    .map(|dir| PathBuf::from(dir.trim()))
    .and_then(|dir| std::fs::read_dir(dir).ok())
    .is_some_and(|mut entries| {
        entries.any(|entry| {
            entry.is_ok_and(|entry| entry.file_name().to_string_lossy().starts_with("libstd-"))
        })
    })
}

/// The standard library sources of Debian's rustc (`rust-web-src`).
fn debian_std_sources() -> Option<PathBuf> {
    let library = Path::new("/usr/lib/rustlib/src/rust/library");
    library.join("std").exists().then(|| library.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_missing(result: anyhow::Result<WindowsStd>) -> String {
        let error = result.unwrap_err();
        assert!(error.is::<Missing>(), "{error:#}");
        error.to_string()
    }

    fn build(build_std: bool) -> RustBuild {
        RustBuild {
            platform: Platform::Windows,
            cargo: "cargo".into(),
            rustc: None,
            cross: true,
            build_std,
            target_dir: PathBuf::from("/t"),
            description: String::new(),
            silent: false,
        }
    }

    #[test]
    fn a_leg_that_builds_std_builds_harness_tests_and_fixtures_in_one_profile() {
        let from_source = build(true);
        for asked in ["dev", "test", PLUGIN_PROFILE] {
            assert_eq!(from_source.profile(asked), ONE_STD_PROFILE, "{asked}");
        }
        // Line tables and release builds keep theirs.
        for asked in ["release", DEBUGINFO_PROFILE] {
            assert_eq!(from_source.profile(asked), asked);
        }
        assert_eq!(
            from_source.out_dir("dev"),
            Path::new("/t/x86_64-pc-windows-gnu/windows-leg")
        );
        let prebuilt = build(false);
        for asked in ["dev", "test", PLUGIN_PROFILE, "release"] {
            assert_eq!(prebuilt.profile(asked), asked);
        }
        assert_eq!(
            prebuilt.out_dir("dev"),
            Path::new("/t/x86_64-pc-windows-gnu/debug")
        );
    }

    #[test]
    fn both_hosts_build_the_windows_leg_for_the_gnu_target() {
        assert_eq!(
            windows_std(Platform::Windows, None, true, false).unwrap(),
            WindowsStd::Prebuilt
        );
        assert_eq!(
            windows_std(Platform::Linux, None, true, true).unwrap(),
            WindowsStd::Prebuilt
        );
        assert_eq!(
            windows_std(Platform::Linux, None, false, true).unwrap(),
            WindowsStd::BuildStd
        );
        assert_eq!(
            windows_std(Platform::Linux, Some("build-std"), true, true).unwrap(),
            WindowsStd::BuildStd
        );
    }

    #[test]
    fn a_missing_windows_std_is_a_missing_prerequisite_with_its_remedy() {
        let windows = is_missing(windows_std(Platform::Windows, None, false, true));
        assert!(
            windows.contains("rustup target add x86_64-pc-windows-gnu")
                && !windows.contains("apt-get"),
            "{windows}"
        );
        let linux = is_missing(windows_std(Platform::Linux, None, false, false));
        assert!(linux.contains("rust-web-src"), "{linux}");
        is_missing(windows_std(
            Platform::Windows,
            Some("build-std"),
            true,
            true,
        ));
        let typo = windows_std(Platform::Linux, Some("prebuit"), true, true).unwrap_err();
        assert!(
            !typo.is::<Missing>(),
            "a typo is a mistake, not a missing tool"
        );
    }
}
