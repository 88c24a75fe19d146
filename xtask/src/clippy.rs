//! Clippy as the workspace is built, not as a pass of its own: `cargo
//! clippy` type-checks every crate and every dependency a second time
//! (42 s of CPU on 2 cores, a fifth of CI's compiling), while the same
//! lints run inside the build when cargo starts each workspace crate's
//! compiler through `clippy-driver` — what `cargo clippy` itself does,
//! through the same two variables. CI sets them for the whole run, so
//! every workspace crate it builds is linted with `-D warnings`: the
//! tests' build (libraries, binaries, tests), and the Rust fixtures in
//! the conformance step (which the tests' build does not compile).
//!
//! Because a lint that only warns would pass silently, [`prove_it_bites`]
//! first builds a crate with a lint in it and requires the build to fail
//! naming the lint.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{Context, bail};

/// Cargo starts workspace crates' compiler through this program.
pub const WRAPPER_VAR: &str = "RUSTC_WORKSPACE_WRAPPER";
/// The arguments `clippy-driver` adds, joined as `cargo clippy` joins them.
pub const ARGS_VAR: &str = "CLIPPY_ARGS";
/// `-D warnings`, as `cargo clippy -- -D warnings` passes it.
pub const DENY_WARNINGS: &str = "-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__";

/// The two variables CI's builds run with. The driver may be set already:
/// `.ci/run` exports both before the xtask is built, so that the crates
/// the xtask shares with the tests are built once, linted.
pub fn environment() -> anyhow::Result<[(&'static str, OsString); 2]> {
    let driver = match std::env::var_os(WRAPPER_VAR) {
        Some(driver) if is_clippy_driver(&PathBuf::from(&driver)) => driver,
        Some(other) => bail!(
            "{WRAPPER_VAR} is `{}`, not clippy-driver: CI lints through it; unset it",
            PathBuf::from(other).display()
        ),
        None => driver_path()?.into_os_string(),
    };
    Ok([
        (WRAPPER_VAR, driver),
        (ARGS_VAR, OsString::from(DENY_WARNINGS)),
    ])
}

fn is_clippy_driver(path: &std::path::Path) -> bool {
    path.file_stem().is_some_and(|stem| stem == "clippy-driver")
}

/// `clippy-driver` of the toolchain cargo builds with (the pin).
fn driver_path() -> anyhow::Result<PathBuf> {
    let sysroot = duct::cmd!("rustc", "--print", "sysroot")
        .read()
        .context("cannot ask rustc for its sysroot")?;
    let driver = PathBuf::from(sysroot.trim())
        .join("bin")
        .join(format!("clippy-driver{}", std::env::consts::EXE_SUFFIX));
    if !driver.is_file() {
        bail!(
            "`{}` is missing: install clippy with `rustup component add clippy`",
            driver.display()
        );
    }
    Ok(driver)
}

/// Builds a one-line crate with a lint in it through the variables and
/// requires the build to fail on it: the check that CI's builds lint, and
/// that a lint fails them.
pub fn prove_it_bites(environment: &[(&'static str, OsString)]) -> anyhow::Result<()> {
    let dir = tempfile::tempdir().context("cannot create a directory for clippy's canary")?;
    std::fs::create_dir(dir.path().join("src"))?;
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"clippy-canary\"\nversion = \"0.0.0\"\nedition = \"2021\"\n[workspace]\n",
    )?;
    // clippy::identity_op, a warning by default.
    std::fs::write(
        dir.path().join("src/lib.rs"),
        "pub fn canary(x: u32) -> u32 {\n    x + 0\n}\n",
    )?;
    let mut build = duct::cmd!("cargo", "build", "--quiet", "--offline")
        .dir(dir.path())
        .env("CARGO_TARGET_DIR", dir.path().join("target"))
        .stderr_capture()
        .stdout_null()
        .unchecked();
    for (name, value) in environment {
        build = build.env(name, value);
    }
    let output = build
        .run()
        .context("cannot run cargo for clippy's canary")?;
    let said = String::from_utf8_lossy(&output.stderr);
    if output.status.success() || !said.contains("clippy::identity_op") {
        bail!(
            "a crate with a clippy lint built {} through {WRAPPER_VAR}: CI's builds would not lint; cargo said:\n{said}",
            if output.status.success() {
                "fine"
            } else {
                "with another error"
            }
        );
    }
    Ok(())
}
