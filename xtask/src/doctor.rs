//! `cargo xtask doctor`: for each leg, what is present, what is missing,
//! and the exact command that installs it.

use std::path::Path;

use xshell::{Shell, cmd};

use crate::fixtures::find_on_path;
use crate::platform::Platform;
use crate::toolchain::RustBuild;
use crate::wine::Wine;

pub fn run(sh: &Shell) -> anyhow::Result<()> {
    let mut missing = 0;
    let mut check = |what: &str, found: Result<String, String>| match found {
        Ok(found) => println!("  ok       {what:<34} {found}"),
        Err(install) => {
            missing += 1;
            println!("  MISSING  {what:<34} install: {install}");
        }
    };
    println!("linux leg");
    check(
        "cargo",
        version(sh, "cargo").ok_or_else(|| {
            "a Rust toolchain (rustup, or apt-get install rustc-web cargo-web)".into()
        }),
    );
    check("C compiler (cc)", program("cc", "apt-get install gcc"));
    check(
        "aarch64 C compiler (wrong-arch)",
        program(
            "aarch64-linux-gnu-gcc",
            "apt-get install gcc-aarch64-linux-gnu",
        ),
    );
    check(
        "mingw-w64 (foreign format)",
        program(
            "x86_64-w64-mingw32-gcc",
            "apt-get install gcc-mingw-w64-x86-64",
        ),
    );
    check("zlib (system-library)", zlib(sh));
    check(
        "go (Go plugins, c-shared)",
        cmd!(sh, "go version")
            .quiet()
            .ignore_stderr()
            .read()
            .map_err(|_| "apt-get install golang-go".into()),
    );
    println!("windows leg (under Wine)");
    check(
        "mingw-w64 (linker, C fixtures)",
        program(
            "x86_64-w64-mingw32-gcc",
            "apt-get install gcc-mingw-w64-x86-64",
        ),
    );
    check(
        "i686 mingw-w64 (wrong-arch)",
        program("i686-w64-mingw32-gcc", "apt-get install gcc-mingw-w64-i686"),
    );
    check(
        "Rust for x86_64-pc-windows-gnu",
        RustBuild::for_platform(sh, Platform::Windows)
            .map(|build| build.description)
            .map_err(|error| error.to_string()),
    );
    check(
        "wine64",
        Wine::find()
            .map(|wine| wine.describe(sh))
            .map_err(|_| "apt-get install wine64".to_owned()),
    );
    if missing == 0 {
        println!("\nevery leg can run here: cargo xtask conformance --platform all");
    } else {
        println!(
            "\n{missing} tool(s) missing: the legs that need them are skipped (or fail with --require-all)"
        );
    }
    Ok(())
}

fn program(name: &str, install: &str) -> Result<String, String> {
    find_on_path(name)
        .map(|path| path.display().to_string())
        .ok_or_else(|| install.to_owned())
}

fn version(sh: &Shell, program: &str) -> Option<String> {
    cmd!(sh, "{program} --version")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()
}

fn zlib(sh: &Shell) -> Result<String, String> {
    let found = cmd!(sh, "cc -print-file-name=libz.so.1")
        .quiet()
        .ignore_stderr()
        .read()
        .unwrap_or_default();
    let found = found.trim();
    if Path::new(found).is_absolute() {
        Ok(found.to_owned())
    } else {
        Err("apt-get install zlib1g".into())
    }
}
