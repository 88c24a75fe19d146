//! A stand-in for `wsl.exe` (WSL2 is Linux). It takes exactly the command
//! lines real `wsl.exe` takes in the forms plugcheck uses, answers `--list
//! --verbose` in UTF-16LE as real `wsl.exe` does, and runs the command
//! here, letting only `WSLENV`'s variables cross. The distro's home is the
//! folder `distro-home` beside it, if there is one.

use std::path::{Path, PathBuf};

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

/// Writes the stand-in into `dir` and returns its path, for
/// `plugcheck::bridge::wsl::Wsl::at`.
pub fn stand_in(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let exe = dir.join("wsl.exe");
    std::fs::write(&exe, STAND_IN_WSL).expect("the stand-in is written");
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755))
        .expect("the stand-in is executable");
    warm_up(&exe);
    exe
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
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).expect("executable");
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
