//! Running the other platform's binaries from this host: Windows programs
//! under Wine on Linux, Linux programs inside WSL2 on Windows. `plugcheck
//! check --platform` judges a plugin on the other platform through them,
//! and `cargo xtask` runs its platform legs through the same code.

pub mod windows_harness;
pub mod wine;
pub mod wsl;

use std::path::PathBuf;

/// A prerequisite this machine lacks: what, and how to get it. A caller may
/// skip what needs it (the xtask without `--require-all`); every other
/// error is a failure.
#[derive(Debug, thiserror::Error)]
#[error("{what} is missing: {remedy}")]
pub struct Missing {
    pub what: String,
    pub remedy: String,
}

impl Missing {
    /// Whether `error`, or any error it was caused by, is a [`Missing`].
    pub fn in_chain(error: &anyhow::Error) -> bool {
        error.chain().any(|cause| cause.is::<Missing>())
    }
}

/// `program` in a directory of PATH; on a Windows host as `program.exe`
/// too (MSYS2's `x86_64-w64-mingw32-gcc.exe`, `go.exe`).
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let names = [
        program.to_owned(),
        format!("{program}{}", std::env::consts::EXE_SUFFIX),
    ];
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
            .find(|candidate| candidate.is_file())
    })
}

/// Test support: a stand-in for `wsl.exe` (WSL2 is Linux). It takes
/// exactly the command lines real `wsl.exe` takes in the forms plugcheck
/// uses, answers `--list --verbose` in UTF-16LE as real `wsl.exe` does, and
/// runs the command here, letting only `WSLENV`'s variables cross. The
/// distro's home is the folder `distro-home` beside it, if there is one.
#[doc(hidden)]
#[cfg(unix)]
pub mod testing {
    use std::path::Path;

    pub const STAND_IN_WSL: &str = r#"#!/usr/bin/env bash
if [ -n "${PLUGCHECK_STAND_IN_WARM_UP:-}" ]; then exit 0; fi
if [ "$#" -eq 2 ] && [ "$1" = "--list" ] && [ "$2" = "--verbose" ]; then
    printf '  NAME            STATE           VERSION\n* Ubuntu-24.04    Running         2\n  Legacy          Stopped         1\n' \
        | iconv -f UTF-8 -t UTF-16LE
    exit 0
fi
if [ "$#" -lt 6 ] || [ "$1" != "-d" ] || [ "$3" != "--cd" ] || [ "$5" != "--exec" ]; then
    echo "stand-in wsl.exe: not a form wsl.exe takes: $*" >&2
    exit 64
fi
case "$2" in
    Ubuntu-24.04) ;;
    *) echo "There is no distribution with the supplied name." >&2; exit 1 ;;
esac
cd "$4" || exit 1
shift 5
crossing=()
IFS=: read -ra entries <<< "${WSLENV:-}"
for entry in "${entries[@]}"; do
    name="${entry%%/*}"
    if [ -n "$name" ] && [ -n "${!name+x}" ]; then crossing+=("$name=${!name}"); fi
done
# The distro's home: the folder `distro-home` beside this script, if any.
home="$HOME"
if [ -d "$(dirname "$0")/distro-home" ]; then home="$(dirname "$0")/distro-home"; fi
exec env -i PATH="$PATH" HOME="$home" "${crossing[@]}" "$@"
"#;

    /// Writes the stand-in into `dir` and returns it as a [`super::wsl::Wsl`].
    pub fn stand_in(dir: &Path) -> super::wsl::Wsl {
        use std::os::unix::fs::PermissionsExt;
        let exe = dir.join("wsl.exe");
        std::fs::write(&exe, STAND_IN_WSL).expect("the stand-in is written");
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755))
            .expect("the stand-in is executable");
        warm_up(&exe);
        super::wsl::Wsl::at(exe)
    }

    /// Gives the stand-in's distro (beside it in `dir`) a program
    /// `~/.cargo/bin/NAME` running `script` with `sh`.
    pub fn distro_program(dir: &Path, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        let bin = dir.join("distro-home/.cargo/bin");
        std::fs::create_dir_all(&bin).expect("the distro's bin is made");
        let program = bin.join(name);
        std::fs::write(
            &program,
            format!("#!/bin/sh\n[ -n \"$PLUGCHECK_STAND_IN_WARM_UP\" ] && exit 0\n{script}\n"),
        )
        .expect("written");
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755))
            .expect("executable");
        warm_up(&program);
    }

    /// Runs a freshly written executable once, harmlessly, until the OS
    /// lets it: a process another test thread forks while the file is
    /// still open for writing holds it (ETXTBSY) until that child execs.
    /// Once it ran, the writers are gone and the test's runs are safe.
    fn warm_up(path: &Path) {
        const TEXT_FILE_BUSY: i32 = 26;
        for _ in 0..200 {
            match std::process::Command::new(path)
                .env("PLUGCHECK_STAND_IN_WARM_UP", "1")
                .output()
            {
                Err(error) if error.raw_os_error() == Some(TEXT_FILE_BUSY) => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                _ => return,
            }
        }
        panic!("`{}` stayed busy (ETXTBSY) for 2 s", path.display());
    }
}
