//! Which `plugcheck.exe` judges a plugin for `check --platform windows` on
//! Linux when no `--harness` is given.
//!
//! The README's way is `cargo install … --target x86_64-pc-windows-gnu`,
//! which puts `plugcheck.exe` in cargo's install directory, beside an
//! installed `plugcheck`; a `plugcheck` run from a checkout finds the one
//! cargo built for the Windows target in the same target directory. The
//! places are a pure function of the environment, so the order is tested,
//! and the error when none holds it names each of them and how to fill one.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::Missing;

/// The variable that names the Windows harness outright.
pub(crate) const ENV: &str = "PLUGCHECK_WINDOWS_HARNESS";
/// The file name of the Windows harness.
pub(crate) const PROGRAM: &str = "plugcheck.exe";
/// The target the Windows harness is built for.
pub(crate) const TARGET: &str = "x86_64-pc-windows-gnu";

/// The commands that install the Windows harness beside an installed
/// `plugcheck`, run in a plugcheck checkout (the linker variable: cargo
/// links a Windows binary with mingw-w64's gcc only when told to).
pub(crate) const INSTALL: &str = "rustup target add x86_64-pc-windows-gnu\n\
CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc \\\n    \
cargo install --locked --path harness --target x86_64-pc-windows-gnu";
/// The same, built in the checkout's target directory instead.
pub(crate) const BUILD: &str = "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc \\\n    \
cargo build --release -p plugcheck --target x86_64-pc-windows-gnu";

/// What the lookup depends on, read from the process once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Surroundings {
    /// `$PLUGCHECK_WINDOWS_HARNESS`.
    pub named: Option<OsString>,
    /// This `plugcheck`.
    pub exe: Option<PathBuf>,
    /// `$CARGO_INSTALL_ROOT`, `$CARGO_HOME` and `$HOME`: where `cargo
    /// install` puts binaries, in cargo's order.
    pub cargo_install_root: Option<PathBuf>,
    pub cargo_home: Option<PathBuf>,
    pub home: Option<PathBuf>,
}

impl Surroundings {
    pub(crate) fn of_this_process() -> Surroundings {
        let var = |name: &str| {
            std::env::var_os(name)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        };
        Surroundings {
            named: std::env::var_os(ENV).filter(|value| !value.is_empty()),
            exe: std::env::current_exe().ok(),
            cargo_install_root: var("CARGO_INSTALL_ROOT"),
            cargo_home: var("CARGO_HOME"),
            home: var("HOME"),
        }
    }

    /// `bin` of the root `cargo install` installs into.
    fn cargo_bin(&self) -> Option<PathBuf> {
        self.cargo_install_root
            .clone()
            .or_else(|| self.cargo_home.clone())
            .or_else(|| self.home.as_ref().map(|home| home.join(".cargo")))
            .map(|root| root.join("bin"))
    }
}

/// The places `plugcheck.exe` is looked for, in order, when
/// `$PLUGCHECK_WINDOWS_HARNESS` names none: beside this binary; cargo's
/// Windows build in this binary's target directory (release first); cargo's
/// install directory. No place twice, and no target directory when this
/// binary is the installed one (`~/.cargo` is no target directory).
pub(crate) fn places(surroundings: &Surroundings) -> Vec<PathBuf> {
    let cargo_bin = surroundings.cargo_bin();
    let mut places = Vec::new();
    if let Some(dir) = surroundings.exe.as_deref().and_then(Path::parent) {
        places.push(dir.join(PROGRAM));
        let installed = cargo_bin.as_deref() == Some(dir);
        if let Some(target) = dir.parent().filter(|_| !installed) {
            for profile in ["release", "debug"] {
                places.push(target.join(TARGET).join(profile).join(PROGRAM));
            }
        }
    }
    if let Some(bin) = cargo_bin {
        places.push(bin.join(PROGRAM));
    }
    let mut seen = Vec::new();
    places.retain(|place| {
        let new = !seen.contains(place);
        seen.push(place.clone());
        new
    });
    places
}

/// The Windows harness for these surroundings: the file
/// `$PLUGCHECK_WINDOWS_HARNESS` names (which must exist: a name set by
/// hand and wrong is a mistake, not a hint), else the first of [`places`]
/// that is a file. `missing_packages` are the Debian packages the Windows
/// leg lacks here, said in the error.
pub(crate) fn find(
    surroundings: &Surroundings,
    missing_packages: &[&str],
) -> anyhow::Result<PathBuf> {
    if let Some(named) = &surroundings.named {
        let path = PathBuf::from(named);
        if !path.is_file() {
            anyhow::bail!(
                "{ENV} names `{}`, which is not a file: point it at a plugcheck.exe, or unset it",
                path.display()
            );
        }
        return Ok(path);
    }
    let places = places(surroundings);
    match places.iter().find(|place| place.is_file()) {
        Some(found) => Ok(found.clone()),
        None => Err(not_found(&places, missing_packages).into()),
    }
}

/// The error when no place holds the harness: every place looked, and
/// every way to fill one.
pub(crate) fn not_found(places: &[PathBuf], missing_packages: &[&str]) -> Missing {
    let looked: Vec<String> = places
        .iter()
        .map(|place| format!("    {}", place.display()))
        .collect();
    let apt = if missing_packages.is_empty() {
        String::new()
    } else {
        format!("apt-get install {}\n", missing_packages.join(" "))
    };
    let indent = |commands: &str| {
        commands
            .lines()
            .map(|line| format!("    {line}\n"))
            .collect::<String>()
    };
    Missing {
        what: format!("the Windows harness ({PROGRAM})"),
        remedy: format!(
            "{ENV} is not set, and none of these is a file:\n{}\n\
             install it beside plugcheck, in the plugcheck checkout:\n{}\
             or, after the same first lines, build it there (for that checkout's target/release/plugcheck):\n{}\
             or name one: `--harness PATH`, or {ENV}=PATH",
            looked.join("\n"),
            indent(&format!("{apt}{INSTALL}")),
            indent(BUILD),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With `/` between components on every platform: the Windows build
    /// of these tests joins with `\\`.
    fn paths(places: &[PathBuf]) -> Vec<String> {
        places
            .iter()
            .map(|p| p.display().to_string().replace('\\', "/"))
            .collect()
    }

    #[test]
    fn the_readme_shows_the_install_commands_the_error_gives() {
        let readme = include_str!("../../../README.md");
        assert!(readme.contains(INSTALL), "README lacks:\n{INSTALL}");
    }

    #[test]
    fn a_checkout_build_looks_beside_itself_in_its_target_dir_then_in_cargos_bin() {
        let surroundings = Surroundings {
            exe: Some("/src/plugcheck/target/release/plugcheck".into()),
            home: Some("/home/me".into()),
            ..Surroundings::default()
        };
        assert_eq!(
            paths(&places(&surroundings)),
            [
                "/src/plugcheck/target/release/plugcheck.exe",
                "/src/plugcheck/target/x86_64-pc-windows-gnu/release/plugcheck.exe",
                "/src/plugcheck/target/x86_64-pc-windows-gnu/debug/plugcheck.exe",
                "/home/me/.cargo/bin/plugcheck.exe",
            ]
        );
    }

    #[test]
    fn an_installed_plugcheck_looks_beside_itself_once_and_in_no_target_dir() {
        let surroundings = Surroundings {
            exe: Some("/opt/cargo/bin/plugcheck".into()),
            cargo_home: Some("/opt/cargo".into()),
            home: Some("/home/me".into()),
            ..Surroundings::default()
        };
        assert_eq!(
            paths(&places(&surroundings)),
            ["/opt/cargo/bin/plugcheck.exe"]
        );
    }

    #[test]
    fn cargos_install_root_is_chosen_as_cargo_chooses_it() {
        let mut surroundings = Surroundings {
            cargo_install_root: Some("/root-dir".into()),
            cargo_home: Some("/cargo-home".into()),
            home: Some("/home/me".into()),
            ..Surroundings::default()
        };
        assert_eq!(
            paths(&places(&surroundings)),
            ["/root-dir/bin/plugcheck.exe"]
        );
        surroundings.cargo_install_root = None;
        assert_eq!(
            paths(&places(&surroundings)),
            ["/cargo-home/bin/plugcheck.exe"]
        );
    }

    #[test]
    fn the_first_place_that_holds_it_wins_and_a_wrong_name_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        let built = target.join(TARGET).join("debug");
        let installed = dir.path().join("cargo/bin");
        for folder in [&built, &installed, &target.join("release")] {
            std::fs::create_dir_all(folder).unwrap();
        }
        std::fs::write(built.join(PROGRAM), b"").unwrap();
        std::fs::write(installed.join(PROGRAM), b"").unwrap();
        let mut surroundings = Surroundings {
            exe: Some(target.join("release/plugcheck")),
            cargo_home: Some(dir.path().join("cargo")),
            ..Surroundings::default()
        };
        assert_eq!(find(&surroundings, &[]).unwrap(), built.join(PROGRAM));
        surroundings.exe = Some(installed.join("plugcheck"));
        assert_eq!(find(&surroundings, &[]).unwrap(), installed.join(PROGRAM));
        surroundings.named = Some(dir.path().join("nowhere.exe").into());
        let error = find(&surroundings, &[]).unwrap_err().to_string();
        assert!(
            error.contains("PLUGCHECK_WINDOWS_HARNESS names") && error.contains("nowhere.exe"),
            "{error}"
        );
    }

    #[test]
    fn the_error_names_every_place_and_every_way_to_fill_one() {
        let places = places(&Surroundings {
            exe: Some("/src/plugcheck/target/release/plugcheck".into()),
            home: Some("/home/me".into()),
            ..Surroundings::default()
        });
        let error = not_found(&places, &["gcc-mingw-w64-x86-64"]).to_string();
        for place in &places {
            assert!(error.contains(&place.display().to_string()), "{error}");
        }
        for needed in [
            "PLUGCHECK_WINDOWS_HARNESS",
            "--harness PATH",
            "apt-get install gcc-mingw-w64-x86-64\n",
            "rustup target add x86_64-pc-windows-gnu",
            "CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc",
            "cargo install --locked --path harness --target x86_64-pc-windows-gnu",
            "cargo build --release -p plugcheck --target x86_64-pc-windows-gnu",
        ] {
            assert!(error.contains(needed), "`{needed}` not in:\n{error}");
        }
        let ready = not_found(&places, &[]).to_string();
        assert!(!ready.contains("apt-get"), "{ready}");
    }
}
