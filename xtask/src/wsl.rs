//! The Linux leg from a Windows host: the whole leg runs inside WSL2 —
//! `wsl.exe -d DISTRO --cd DIR --exec CARGO xtask conformance --platform
//! linux` — with its target directory on the Linux filesystem (cargo on
//! `/mnt/c` rebuilds every time and trips over locks), and its report read
//! back through the `\\wsl.localhost` share.
//!
//! Never `wsl.exe --`: that re-parses the command through the distro's
//! shell; `--exec` runs the program as given. `--exec` reads no profile, so
//! cargo is found by a login shell or at `~/.cargo/bin`. Environment
//! crosses only through `WSLENV`.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::needs::{Missing, find_on_path};

/// Where the leg's cargo builds inside the distro (the Linux filesystem).
pub const LINUX_TARGET_DIR: &str = "/var/tmp/plugcheck-target";

/// Longest Windows path without the `\\?\` prefix (MAX_PATH less the NUL).
const MAX_PATH: usize = 259;

/// A WSL distribution, as `wsl.exe --list --verbose` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distro {
    pub name: String,
    pub default: bool,
    pub state: String,
    /// 1 or 2.
    pub version: u8,
}

/// Why a Windows path has no WSL twin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("`{0}` is not an absolute Windows path")]
    NotAbsolute(String),
    #[error(
        "`{0}` is on a network share, which WSL does not mount: copy the project to a local drive"
    )]
    Network(String),
    #[error(
        "`{0}` is longer than MAX_PATH ({MAX_PATH} characters): move the project to a shorter path"
    )]
    TooLong(String),
}

/// `C:\x\y` → `/mnt/c/x/y`; `\\wsl.localhost\D\home\me` and `\\wsl$\D\…`
/// → `/home/me`. Spaces and non-ASCII are kept as they are.
pub fn to_wsl_path(windows: &str) -> Result<String, PathError> {
    let verbatim = windows.strip_prefix(r"\\?\");
    let path = verbatim.unwrap_or(windows);
    if verbatim.is_none() && path.chars().count() > MAX_PATH {
        return Err(PathError::TooLong(windows.to_owned()));
    }
    for share in [
        r"\\wsl.localhost\",
        r"\\wsl$\",
        r"UNC\wsl.localhost\",
        r"UNC\wsl$\",
    ] {
        if let Some(rest) = strip_prefix_ignore_case(path, share) {
            // Skip the distro name: the path is inside that distro.
            let inner = rest.split_once('\\').map_or("", |(_, inner)| inner);
            return Ok(format!("/{}", inner.replace('\\', "/")));
        }
    }
    if path.starts_with(r"\\") || path.starts_with(r"UNC\") {
        return Err(PathError::Network(windows.to_owned()));
    }
    let mut chars = path.chars();
    match (chars.next(), chars.next(), chars.next()) {
        (Some(drive), Some(':'), Some('\\' | '/')) if drive.is_ascii_alphabetic() => {
            let rest = &path[3..];
            let rest = rest.replace('\\', "/");
            let rest = rest.trim_end_matches('/');
            let drive = drive.to_ascii_lowercase();
            Ok(if rest.is_empty() {
                format!("/mnt/{drive}")
            } else {
                format!("/mnt/{drive}/{rest}")
            })
        }
        _ => Err(PathError::NotAbsolute(windows.to_owned())),
    }
}

/// `/mnt/c/x` → `C:\x`; anything else → `\\wsl.localhost\DISTRO\…`.
pub fn to_windows_path(linux: &str, distro: &str) -> String {
    if let Some(rest) = linux.strip_prefix("/mnt/") {
        let mut parts = rest.splitn(2, '/');
        if let Some(drive) = parts
            .next()
            .filter(|d| d.len() == 1 && d.chars().all(|c| c.is_ascii_alphabetic()))
        {
            let inner = parts.next().unwrap_or("").replace('/', "\\");
            return format!("{}:\\{inner}", drive.to_ascii_uppercase());
        }
    }
    format!(r"\\wsl.localhost\{distro}{}", linux.replace('/', "\\"))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Decodes what `wsl.exe --list` printed: UTF-16LE (its default), or UTF-8
/// when `WSL_UTF8=1` was set.
pub fn decode_list_output(bytes: &[u8]) -> String {
    let looks_utf16 = bytes.len() >= 2
        && (bytes.starts_with(&[0xFF, 0xFE])
            || bytes.iter().skip(1).step_by(2).take(16).all(|&b| b == 0));
    if looks_utf16 {
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
            .collect();
        String::from_utf16_lossy(&units)
            .trim_start_matches('\u{FEFF}')
            .to_owned()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// Parses `wsl.exe --list --verbose`. The header is localized, so it is
/// skipped by position and the rows are read by structure: an optional `*`
/// (the default), the name, the state, the version as the last column.
pub fn parse_list(text: &str) -> Vec<Distro> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let line = line.trim_matches(|c: char| c.is_whitespace() || c == '\0');
            let (default, line) = match line.strip_prefix('*') {
                Some(rest) => (true, rest.trim_start()),
                None => (false, line),
            };
            // Names have no spaces in WSL; a localized state may.
            let columns: Vec<&str> = line.split_whitespace().collect();
            let version: u8 = columns.last()?.parse().ok()?;
            let name = columns.first()?.to_string();
            let state = columns.get(1..columns.len() - 1)?.join(" ");
            (columns.len() >= 3).then_some(Distro {
                name,
                default,
                state,
                version,
            })
        })
        .collect()
}

/// `wsl.exe`, found on PATH.
#[derive(Debug, Clone)]
pub struct Wsl {
    exe: PathBuf,
}

impl Wsl {
    pub fn find() -> anyhow::Result<Wsl> {
        let exe = find_on_path("wsl.exe")
            .or_else(|| find_on_path("wsl"))
            .ok_or_else(|| Missing {
                what: "WSL (wsl.exe), which runs the Linux leg from Windows".into(),
                remedy: "install it with `wsl --install`, then a distribution".into(),
            })?;
        Ok(Wsl { exe })
    }

    pub fn distros(&self) -> anyhow::Result<Vec<Distro>> {
        let output = std::process::Command::new(&self.exe)
            .args(["--list", "--verbose"])
            .output()
            .with_context(|| format!("cannot run `{}`", self.exe.display()))?;
        if !output.status.success() {
            bail!(
                "`wsl.exe --list --verbose` failed ({}): {}",
                output.status,
                decode_list_output(&output.stderr).trim()
            );
        }
        Ok(parse_list(&decode_list_output(&output.stdout)))
    }

    /// The distro to use: the one asked for, or the default; it must run
    /// WSL 2.
    pub fn choose(&self, wanted: Option<&str>) -> anyhow::Result<Distro> {
        let distros = self.distros()?;
        if distros.is_empty() {
            return Err(Missing {
                what: "a WSL distribution".into(),
                remedy: "install one with `wsl --install -d Ubuntu-24.04`".into(),
            }
            .into());
        }
        let distro = match wanted {
            Some(name) => distros
                .iter()
                .find(|d| d.name.eq_ignore_ascii_case(name))
                .ok_or_else(|| {
                    let names: Vec<&str> = distros.iter().map(|d| d.name.as_str()).collect();
                    Missing {
                        what: format!("the WSL distribution `{name}`"),
                        remedy: format!(
                            "install it, or pass --wsl-distro with one of: {}",
                            names.join(", ")
                        ),
                    }
                })?,
            None => distros.iter().find(|d| d.default).ok_or_else(|| Missing {
                what: "a default WSL distribution".into(),
                remedy: "pass --wsl-distro NAME, or `wsl --set-default NAME`".into(),
            })?,
        };
        if distro.version != 2 {
            return Err(Missing {
                what: format!(
                    "WSL 2 for the distribution `{}` (it runs WSL {})",
                    distro.name, distro.version
                ),
                remedy: format!("convert it: `wsl --set-version {} 2`", distro.name),
            }
            .into());
        }
        Ok(distro.clone())
    }

    /// `wsl.exe -d DISTRO --cd DIR --exec PROGRAM ARGS…`, with the variables
    /// `crossing` passed into the distro through `WSLENV`.
    pub fn command(
        &self,
        distro: &str,
        dir: &str,
        program: &str,
        args: &[OsString],
        crossing: &[&str],
    ) -> duct::Expression {
        let mut argv: Vec<OsString> = ["-d", distro, "--cd", dir, "--exec", program]
            .into_iter()
            .map(OsString::from)
            .collect();
        argv.extend(args.iter().cloned());
        duct::cmd(&self.exe, argv).env(
            "WSLENV",
            wslenv(std::env::var_os("WSLENV").as_deref(), crossing),
        )
    }

    /// Cargo inside the distro: rustup's `~/.cargo/bin/cargo` first (it
    /// honours the project's `rust-toolchain.toml`; a distribution's own
    /// cargo is often too old), then whatever a login shell finds, since
    /// `--exec` reads no profile.
    pub fn find_cargo(&self, distro: &str) -> anyhow::Result<String> {
        let script = r#"if test -x "$HOME/.cargo/bin/cargo"; then echo "$HOME/.cargo/bin/cargo"; else command -v cargo; fi"#;
        let found = self
            .command(distro, "/", "bash", &["-lc".into(), script.into()], &[])
            .stdout_capture()
            .unchecked()
            .read()
            .unwrap_or_default();
        let cargo = found.trim();
        if cargo.is_empty() {
            return Err(Missing {
                what: format!("cargo inside the WSL distribution `{distro}`"),
                remedy: "install Rust there with rustup (https://rustup.rs)".into(),
            }
            .into());
        }
        Ok(cargo.to_owned())
    }
}

/// The `WSLENV` value that passes `names` (unchanged, `/u`: from Windows
/// into WSL) on top of what `WSLENV` already held.
pub fn wslenv(existing: Option<&OsStr>, names: &[&str]) -> OsString {
    let mut parts: Vec<String> = existing
        .map(|value| value.to_string_lossy().into_owned())
        .unwrap_or_default()
        .split(':')
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
        .collect();
    for name in names {
        let entry = format!("{name}/u");
        if !parts
            .iter()
            .any(|part| part.split('/').next() == Some(name))
        {
            parts.push(entry);
        }
    }
    parts.join(":").into()
}

/// The variables the Linux leg needs from the Windows side: CI settings,
/// insta's, logging, and every `PLUGCHECK_*`.
pub fn crossing_variables() -> Vec<String> {
    let mut names: Vec<String> = [
        "CI",
        "INSTA_UPDATE",
        "RUST_LOG",
        "RUST_BACKTRACE",
        "CARGO_TARGET_DIR",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    names.extend(
        std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .filter(|name| name.starts_with("PLUGCHECK_")),
    );
    names
}

/// Runs the Linux leg inside WSL2 from `project` (a Windows path), and
/// returns the Windows path of its report.
pub fn run_linux_leg(
    project: &Path,
    distro: Option<&str>,
    conformance_args: &[OsString],
) -> anyhow::Result<PathBuf> {
    let wsl = Wsl::find()?;
    let dir = to_wsl_path(&project.display().to_string())?;
    let (distro, report) = wsl.linux_leg(&dir, distro, conformance_args)?;
    Ok(PathBuf::from(to_windows_path(&report, &distro)))
}

impl Wsl {
    /// Runs `cargo xtask conformance --platform linux ARGS…` in `dir` (a
    /// path inside the distro); returns the distro's name and the Linux
    /// path of the report. What the leg lacks is a [`Missing`]; a leg that
    /// ran and failed is an error of its own, which fails the run.
    fn linux_leg(
        &self,
        dir: &str,
        distro: Option<&str>,
        conformance_args: &[OsString],
    ) -> anyhow::Result<(String, String)> {
        let distro = self.choose(distro)?;
        let cargo = self.find_cargo(&distro.name)?;
        eprintln!(
            "linux leg in WSL2 `{}` at {dir}, cargo {cargo}",
            distro.name
        );
        let mut args: Vec<OsString> = vec![
            "xtask".into(),
            "conformance".into(),
            "--platform".into(),
            "linux".into(),
        ];
        args.extend(conformance_args.iter().cloned());
        let names = crossing_variables();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let status = self
            .command(&distro.name, dir, &cargo, &args, &names)
            .env("CARGO_TARGET_DIR", LINUX_TARGET_DIR)
            .unchecked()
            .run()
            .with_context(|| format!("cannot run `{}`", self.exe.display()))?
            .status;
        if !status.success() {
            bail!("the Linux leg in WSL2 failed ({status}); see its output above");
        }
        let report = format!("{LINUX_TARGET_DIR}/plugcheck/linux/report.json");
        Ok((distro.name, report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for `wsl.exe` (WSL2 is Linux): it takes exactly the
    /// command lines real `wsl.exe` takes in the forms plugcheck uses,
    /// answers `--list --verbose` in UTF-16LE as real `wsl.exe` does, and
    /// runs the command here, letting only `WSLENV`'s variables cross.
    #[cfg(unix)]
    const STAND_IN: &str = r#"#!/usr/bin/env bash
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

    #[cfg(unix)]
    fn stand_in() -> (tempfile::TempDir, Wsl) {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("wsl.exe");
        std::fs::write(&exe, STAND_IN).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        (dir, Wsl { exe })
    }

    #[cfg(unix)]
    #[test]
    fn distros_are_listed_chosen_and_refused_like_wsl_does() {
        let (_dir, wsl) = stand_in();
        assert_eq!(wsl.choose(None).unwrap().name, "Ubuntu-24.04");
        let wsl1 = wsl.choose(Some("legacy")).unwrap_err().to_string();
        assert!(
            wsl1.contains("runs WSL 1") && wsl1.contains("wsl --set-version Legacy 2"),
            "{wsl1}"
        );
        let missing = wsl.choose(Some("Arch")).unwrap_err().to_string();
        assert!(
            missing.contains("the WSL distribution `Arch` is missing")
                && missing.contains("Ubuntu-24.04"),
            "{missing}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn commands_cross_with_their_directory_wslenv_and_exit_status() {
        let (_dir, wsl) = stand_in();
        let work = tempfile::tempdir().unwrap();
        let odd = work.path().join("dir with spaces é");
        std::fs::create_dir(&odd).unwrap();
        let printed = wsl
            .command(
                "Ubuntu-24.04",
                &odd.display().to_string(),
                "sh",
                &[
                    "-c".into(),
                    r#"printf '%s|%s|%s' "$PWD" "${CI:-unset}" "${SECRET:-unset}""#.into(),
                ],
                &["CI"],
            )
            .env("CI", "true")
            .env("SECRET", "kept on the Windows side")
            .read()
            .unwrap();
        assert_eq!(printed, format!("{}|true|unset", odd.display()));
        let status = wsl
            .command(
                "Ubuntu-24.04",
                "/",
                "sh",
                &["-c".into(), "exit 3".into()],
                &[],
            )
            .unchecked()
            .run()
            .unwrap()
            .status;
        assert_eq!(
            status.code(),
            Some(3),
            "the Linux exit status passes through"
        );
        let refused = wsl
            .command("Nope", "/", "true", &[], &[])
            .stderr_capture()
            .unchecked()
            .run()
            .unwrap();
        assert_eq!(refused.status.code(), Some(1));
    }

    #[cfg(unix)]
    #[test]
    fn cargo_is_found_through_a_login_shell() {
        let (_dir, wsl) = stand_in();
        let cargo = wsl.find_cargo("Ubuntu-24.04").unwrap();
        assert!(cargo.ends_with("cargo"), "{cargo}");
    }

    /// Gives the stand-in's distro a `~/.cargo/bin/cargo` running `script`.
    #[cfg(unix)]
    fn distro_cargo(dir: &Path, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        let bin = dir.join("distro-home/.cargo/bin");
        std::fs::create_dir_all(&bin).unwrap();
        let cargo = bin.join("cargo");
        std::fs::write(&cargo, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&cargo, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_linux_leg_that_fails_in_wsl_is_a_failure_not_a_missing_tool() {
        let (dir, wsl) = stand_in();
        let called = dir.path().join("cargo-args");
        distro_cargo(
            dir.path(),
            &format!(
                "echo \"$*|$CARGO_TARGET_DIR\" > '{}'; exit 1",
                called.display()
            ),
        );
        let project = tempfile::tempdir().unwrap();
        let error = wsl
            .linux_leg(
                &project.path().display().to_string(),
                None,
                &["--require-all".into()],
            )
            .unwrap_err();
        assert!(!Missing::in_chain(&error), "{error:#}");
        assert!(
            error.to_string().contains("the Linux leg in WSL2 failed"),
            "{error:#}"
        );
        assert_eq!(
            std::fs::read_to_string(&called).unwrap().trim(),
            format!("xtask conformance --platform linux --require-all|{LINUX_TARGET_DIR}")
        );
    }

    #[cfg(unix)]
    #[test]
    fn what_wsl_lacks_is_a_missing_prerequisite() {
        let (_dir, wsl) = stand_in();
        for (distro, words) in [
            ("Arch", "the WSL distribution `Arch`"),
            ("Legacy", "WSL 2 for the distribution `Legacy`"),
        ] {
            let error = wsl.linux_leg("/", Some(distro), &[]).unwrap_err();
            assert!(Missing::in_chain(&error), "{error:#}");
            assert!(error.to_string().contains(words), "{error:#}");
        }
    }

    #[test]
    fn drive_paths_map_to_mnt_and_back() {
        assert_eq!(
            to_wsl_path(r"C:\Users\Zoë Ann\proj").unwrap(),
            "/mnt/c/Users/Zoë Ann/proj"
        );
        assert_eq!(to_wsl_path(r"d:\").unwrap(), "/mnt/d");
        assert_eq!(to_wsl_path(r"\\?\C:\x\y").unwrap(), "/mnt/c/x/y");
        assert_eq!(
            to_windows_path("/mnt/c/Users/Zoë Ann/proj", "Ubuntu"),
            r"C:\Users\Zoë Ann\proj"
        );
    }

    #[test]
    fn wsl_shares_map_into_the_distro_and_back() {
        assert_eq!(
            to_wsl_path(r"\\wsl.localhost\Ubuntu\home\me\p").unwrap(),
            "/home/me/p"
        );
        assert_eq!(to_wsl_path(r"\\wsl$\Debian\var\tmp").unwrap(), "/var/tmp");
        assert_eq!(
            to_windows_path("/var/tmp/plugcheck-target/x.json", "Ubuntu-24.04"),
            r"\\wsl.localhost\Ubuntu-24.04\var\tmp\plugcheck-target\x.json"
        );
    }

    #[test]
    fn unmappable_paths_are_named() {
        assert_eq!(
            to_wsl_path(r"\\fileserver\share\proj"),
            Err(PathError::Network(r"\\fileserver\share\proj".into()))
        );
        assert!(matches!(
            to_wsl_path(r"proj\sub"),
            Err(PathError::NotAbsolute(_))
        ));
        let long = format!(r"C:\{}", "a".repeat(300));
        assert!(matches!(to_wsl_path(&long), Err(PathError::TooLong(_))));
        assert!(
            to_wsl_path(&format!(r"\\?\{long}")).is_ok(),
            "verbatim paths may be long"
        );
        let message = to_wsl_path(r"\\fileserver\share").unwrap_err().to_string();
        assert!(
            message.contains("network share") && message.contains("local drive"),
            "{message}"
        );
    }

    #[test]
    fn the_list_parses_from_utf16_and_utf8_whatever_the_language() {
        let listing = "  NAME            STATE           VERSION\n* Ubuntu-24.04    Running         2\n  Legacy          Stopped         1\n";
        let utf16: Vec<u8> = listing.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let expected = vec![
            Distro {
                name: "Ubuntu-24.04".into(),
                default: true,
                state: "Running".into(),
                version: 2,
            },
            Distro {
                name: "Legacy".into(),
                default: false,
                state: "Stopped".into(),
                version: 1,
            },
        ];
        assert_eq!(parse_list(&decode_list_output(&utf16)), expected);
        assert_eq!(
            parse_list(&decode_list_output(listing.as_bytes())),
            expected
        );
        let german = "  NAME   STATUS     VERSION\n* Debian Wird ausgeführt 2\n";
        assert_eq!(
            parse_list(german),
            vec![Distro {
                name: "Debian".into(),
                default: true,
                state: "Wird ausgeführt".into(),
                version: 2
            }]
        );
    }

    #[test]
    fn wslenv_adds_what_is_missing_and_keeps_what_was_there() {
        assert_eq!(
            wslenv(
                Some(OsStr::new("USERPROFILE/p:CI/u")),
                &["CI", "INSTA_UPDATE"]
            ),
            OsString::from("USERPROFILE/p:CI/u:INSTA_UPDATE/u")
        );
        assert_eq!(wslenv(None, &["CI"]), OsString::from("CI/u"));
    }
}
