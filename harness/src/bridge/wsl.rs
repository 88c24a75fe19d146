//! WSL2 from a Windows host: `wsl.exe -d DISTRO --cd DIR --exec PROGRAM
//! ARGS…`, the distributions it lists, and paths mapped between the two
//! sides. `plugcheck check --platform linux` runs the Linux harness this
//! way; `cargo xtask conformance` runs the whole Linux leg.
//!
//! Never `wsl.exe --`: that re-parses the command through the distro's
//! shell; `--exec` runs the program as given. `--exec` reads no profile, so
//! programs are found in `~/.cargo/bin` or by a login shell. Environment
//! crosses only through `WSLENV`.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use anyhow::{Context, bail};

use super::{Missing, find_on_path};

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
    /// `wsl.exe` at `exe` (tests use a stand-in).
    pub fn at(exe: PathBuf) -> Wsl {
        Wsl { exe }
    }

    /// `wsl.exe` on PATH, or what is missing.
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
    ) -> std::process::Command {
        let mut command = std::process::Command::new(&self.exe);
        command
            .args(["-d", distro, "--cd", dir, "--exec", program])
            .args(args)
            .env(
                "WSLENV",
                wslenv(std::env::var_os("WSLENV").as_deref(), crossing),
            );
        command
    }

    /// A program inside the distro: `~/.cargo/bin/NAME` first (rustup's
    /// cargo honours the project's `rust-toolchain.toml`, and `cargo
    /// install` puts programs there), then whatever a login shell finds,
    /// since `--exec` reads no profile. `None` when neither has it.
    pub fn find_program(&self, distro: &str, name: &str) -> anyhow::Result<Option<String>> {
        let script = r#"if test -x "$HOME/.cargo/bin/$0"; then echo "$HOME/.cargo/bin/$0"; else command -v "$0"; fi"#;
        let output = self
            .command(
                distro,
                "/",
                "bash",
                &["-lc".into(), script.into(), name.into()],
                &[],
            )
            .stderr(std::process::Stdio::null())
            .output()
            .with_context(|| format!("cannot run `{}`", self.exe.display()))?;
        let found = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        Ok((!found.is_empty()).then_some(found))
    }

    /// Cargo inside the distro, or what to install.
    pub fn find_cargo(&self, distro: &str) -> anyhow::Result<String> {
        self.find_program(distro, "cargo")?.ok_or_else(|| {
            Missing {
                what: format!("cargo inside the WSL distribution `{distro}`"),
                remedy: "install Rust there with rustup (https://rustup.rs)".into(),
            }
            .into()
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    fn stand_in() -> (tempfile::TempDir, Wsl) {
        let dir = tempfile::tempdir().unwrap();
        let wsl = Wsl::at(plugcheck_test_support::wsl::stand_in(dir.path()));
        (dir, wsl)
    }

    #[cfg(unix)]
    #[test]
    fn distros_are_listed_chosen_and_refused_like_wsl_does() {
        let (_dir, wsl) = stand_in();
        assert_eq!(wsl.choose(None).unwrap().name, "Ubuntu-24.04");
        let wsl1 = wsl.choose(Some("legacy")).unwrap_err();
        assert!(Missing::in_chain(&wsl1), "{wsl1:#}");
        let wsl1 = wsl1.to_string();
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
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&printed.stdout),
            format!("{}|true|unset", odd.display())
        );
        let status = wsl
            .command(
                "Ubuntu-24.04",
                "/",
                "sh",
                &["-c".into(), "exit 3".into()],
                &[],
            )
            .status()
            .unwrap();
        assert_eq!(
            status.code(),
            Some(3),
            "the Linux exit status passes through"
        );
        let refused = wsl
            .command("Nope", "/", "true", &[], &[])
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(refused.code(), Some(1));
    }

    #[cfg(unix)]
    #[test]
    fn programs_are_found_in_cargo_bin_first_then_through_a_login_shell() {
        let (dir, wsl) = stand_in();
        assert!(wsl.find_program("Ubuntu-24.04", "sh").unwrap().is_some());
        assert_eq!(
            wsl.find_program("Ubuntu-24.04", "no-such-program").unwrap(),
            None
        );
        plugcheck_test_support::wsl::distro_program(dir.path(), "cargo", "exit 0");
        let cargo = wsl.find_cargo("Ubuntu-24.04").unwrap();
        assert!(cargo.ends_with("distro-home/.cargo/bin/cargo"), "{cargo}");
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
