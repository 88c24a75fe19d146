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

use crate::needs::{self, MINGW_GCC, find_on_path};
use crate::platform::Platform;

/// Debian's rustc with `rust-web-src`, which can build a Windows std.
const DEBIAN_RUSTC: &str = "/usr/bin/rustc";
const DEBIAN_CARGO: &str = "/usr/bin/cargo";

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
}

impl RustBuild {
    /// The toolchain for `platform` on this host, or what is missing and
    /// the command that installs it.
    pub fn for_platform(sh: &Shell, platform: Platform) -> anyhow::Result<RustBuild> {
        if platform == Platform::host() {
            return Ok(RustBuild {
                platform,
                cargo: "cargo".into(),
                rustc: None,
                cross: false,
                build_std: false,
                target_dir: crate::target_dir(),
                description: "the host toolchain".into(),
            });
        }
        if platform != Platform::Windows {
            bail!("the {platform} leg runs from a {platform} host (or WSL2), not from this host");
        }
        if find_on_path(MINGW_GCC).is_none() {
            bail!(
                "{MINGW_GCC} not found: it links Windows binaries (install: {})",
                needs::MINGW.install.command()
            );
        }
        let choice = std::env::var("PLUGCHECK_WINDOWS_STD").ok();
        let prebuilt = prebuilt_windows_std(sh);
        let sources = Path::new(DEBIAN_RUSTC).exists() && debian_std_sources().is_some();
        let target_dir = crate::target_dir().join("windows");
        let prebuilt_build = |description: String| RustBuild {
            platform,
            cargo: "cargo".into(),
            rustc: None,
            cross: true,
            build_std: false,
            target_dir: target_dir.clone(),
            description,
        };
        let build_std = |description: String| RustBuild {
            platform,
            cargo: DEBIAN_CARGO.into(),
            rustc: Some(DEBIAN_RUSTC.into()),
            cross: true,
            build_std: true,
            target_dir: target_dir.clone(),
            description,
        };
        match (choice.as_deref(), prebuilt, sources) {
            (Some("prebuilt"), true, _) | (None, true, _) => Ok(prebuilt_build(
                "the toolchain on PATH, with its prebuilt x86_64-pc-windows-gnu std".into(),
            )),
            (Some("build-std"), _, true) | (None, false, true) => Ok(build_std(format!(
                "{DEBIAN_RUSTC} building std from its sources (-Zbuild-std)"
            ))),
            (Some("prebuilt"), false, _) => bail!(
                "PLUGCHECK_WINDOWS_STD=prebuilt, but the toolchain on PATH has no x86_64-pc-windows-gnu std (install: rustup target add x86_64-pc-windows-gnu)"
            ),
            (Some("build-std"), _, false) => bail!(
                "PLUGCHECK_WINDOWS_STD=build-std, but {DEBIAN_RUSTC} with the std sources is missing (install: apt-get install rustc-web cargo-web rust-web-src)"
            ),
            (Some(other), _, _) => bail!(
                "PLUGCHECK_WINDOWS_STD={other} is not a choice: use `prebuilt` or `build-std`"
            ),
            (None, false, false) => bail!(
                "no Rust toolchain can build for Windows here (install: apt-get install rustc-web cargo-web rust-web-src, or rustup target add x86_64-pc-windows-gnu)"
            ),
        }
    }

    /// `cargo build` of `packages` with `profile`.
    pub fn build(&self, sh: &Shell, packages: &[String], profile: &str) -> anyhow::Result<()> {
        let args = ["build", "--quiet", "--profile", profile];
        self.cargo(sh, &args, packages).run()?;
        Ok(())
    }

    /// Builds the unit tests of `packages` (`targets`: `--lib`, or `--bins`
    /// for a binary crate) and returns the test executables cargo reports.
    pub fn test_executables(
        &self,
        sh: &Shell,
        packages: &[String],
        targets: &str,
    ) -> anyhow::Result<Vec<PathBuf>> {
        let args = ["test", "--no-run", targets, "--message-format=json"];
        let messages = self.cargo(sh, &args, packages).read()?;
        Ok(messages
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter(|message| message["reason"] == "compiler-artifact")
            .filter_map(|message| message["executable"].as_str().map(PathBuf::from))
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
        let build_std: &[&str] = if self.build_std {
            &["-Zbuild-std=std,panic_unwind"]
        } else {
            &[]
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
        command
    }

    /// Where cargo puts what `profile` built.
    pub fn out_dir(&self, profile: &str) -> PathBuf {
        let dir = if profile == "dev" { "debug" } else { profile };
        if self.cross {
            self.target_dir.join(self.platform.target()).join(dir)
        } else {
            self.target_dir.join(dir)
        }
    }
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
