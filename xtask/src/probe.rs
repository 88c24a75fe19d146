//! Whether a need of `needs.rs` is met on this machine. A need is proven by
//! using it, not by finding a file: a cross compiler is present when it
//! compiles a file that includes the C library's headers (Debian's
//! `gcc-aarch64-linux-gnu` alone installs a compiler that cannot). Apart
//! from the list so that the list stays a leaf: probing asks the toolchain
//! and Wine, which name needs in their errors.

use std::path::PathBuf;
use std::sync::Mutex;

use plugcheck::bridge::find_on_path;
use xshell::{Shell, cmd};

use crate::needs::{Need, Probe};

/// Whether the machine has it now. A need found present is remembered
/// (a compile test per fixture would add up); a missing one is asked
/// again, since `ci` installs it in the same process.
pub fn present(need: &Need, sh: &Shell) -> bool {
    static PRESENT: Mutex<Vec<Probe>> = Mutex::new(Vec::new());
    if PRESENT
        .lock()
        .expect("no panics while held")
        .contains(&need.probe)
    {
        return true;
    }
    let present = probe_now(need, sh);
    if present {
        PRESENT
            .lock()
            .expect("no panics while held")
            .push(need.probe);
    }
    present
}

/// [`present`] asked again, not remembered: after an install.
pub fn probe_now(need: &Need, sh: &Shell) -> bool {
    match need.probe {
        Probe::CompilesC(compiler) => compiles_c(sh, compiler),
        Probe::Program(name) => find_on_path(name).is_some(),
        Probe::OtherGo => other_go(sh).is_some(),
        Probe::PythonModule(module) => {
            let import = format!("import {module}");
            cmd!(sh, "python3 -c {import}")
                .quiet()
                .ignore_stdout()
                .ignore_stderr()
                .run()
                .is_ok()
        }
        Probe::Zlib => zlib(sh).is_some(),
        Probe::Wine => crate::wine::find().is_ok(),
        Probe::WindowsRust => crate::toolchain::windows_std_here(sh).is_ok(),
    }
}

/// A `go` of another release than `go` on PATH, from Debian's versioned Go
/// packages (`/usr/lib/go-1.NN/bin/go`).
pub fn other_go(sh: &Shell) -> Option<PathBuf> {
    let release = |go: &std::path::Path| {
        cmd!(sh, "{go} env GOVERSION")
            .quiet()
            .ignore_stderr()
            .read()
            .ok()
            .map(|version| version.trim().to_owned())
    };
    let default = release(&find_on_path("go")?)?;
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .ok()?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("go-1."))
        .map(|entry| entry.path().join("bin/go"))
        .filter(|go| go.is_file())
        .collect();
    candidates.sort();
    candidates
        .into_iter()
        .find(|go| release(go).is_some_and(|version| version != default))
}

/// Where `libz.so.1` is, asked of the C compiler.
pub fn zlib(sh: &Shell) -> Option<PathBuf> {
    let found = cmd!(sh, "cc -print-file-name=libz.so.1")
        .quiet()
        .ignore_stderr()
        .read()
        .ok()?;
    let found = PathBuf::from(found.trim());
    (found.is_absolute() && found.exists()).then_some(found)
}

/// Whether `compiler` compiles a file that includes the C library's
/// headers. A compiler without them fails here, not in a fixture build.
fn compiles_c(sh: &Shell, compiler: &str) -> bool {
    if find_on_path(compiler).is_none() {
        return false;
    }
    let Ok(dir) = tempfile::tempdir() else {
        return false;
    };
    let source = dir.path().join("probe.c");
    let object = dir.path().join("probe.o");
    if std::fs::write(
        &source,
        "#include <stdint.h>\n#include <stdio.h>\nint32_t probe(void) { return (int32_t)sizeof(FILE); }\n",
    )
    .is_err()
    {
        return false;
    }
    cmd!(sh, "{compiler} -c -o {object} {source}")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
}
