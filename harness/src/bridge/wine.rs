//! Windows programs on a Linux host: under Wine, in a prefix of
//! plugcheck's own (never the user's `~/.wine`), headless, with winedbg
//! kept out of crashes (the harness's workers end themselves on an
//! unhandled exception) and with the one DLL Wine 8.0 lacks that every
//! Rust program needs.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use super::{Missing, find_on_path};

/// The mingw-w64 C compiler that builds the compatibility DLL.
pub const MINGW_GCC: &str = "x86_64-w64-mingw32-gcc";
/// Debian's packages for `MINGW_GCC` and for Wine: named once, here, for
/// the errors that say what to install and for the xtask's list of needs.
pub const MINGW_PACKAGE: &str = "gcc-mingw-w64-x86-64";
pub const WINE_PACKAGE: &str = "wine64";

/// `bcryptprimitives.dll` for a Wine without it (8.0): Rust's std (1.78+)
/// imports `ProcessPrng` from it, so without it no Rust .exe starts (Wine
/// exits with code 53 and says nothing).
const COMPAT_DLL_SOURCE: &str = include_str!("bcryptprimitives.c");
const COMPAT_DLL: &str = "bcryptprimitives.dll";

#[derive(Debug, Clone)]
pub struct Wine {
    wine64: PathBuf,
    prefix: PathBuf,
}

impl Wine {
    /// `wine64` with the prefix at `prefix`, or what is missing.
    pub fn find(prefix: PathBuf) -> Result<Wine, Missing> {
        let wine64 = wine64().ok_or_else(|| Missing {
            what: "wine64, which runs Windows programs on Linux".into(),
            remedy: format!("install: apt-get install {WINE_PACKAGE}"),
        })?;
        Ok(Wine { wine64, prefix })
    }

    /// The prefix plugcheck manages for a user: `$PLUGCHECK_WINE_PREFIX`,
    /// else `$XDG_DATA_HOME/plugcheck/wine-prefix` (by default under
    /// `~/.local/share`).
    pub fn default_prefix() -> anyhow::Result<PathBuf> {
        if let Some(prefix) = std::env::var_os("PLUGCHECK_WINE_PREFIX") {
            return Ok(PathBuf::from(prefix));
        }
        let data = crate::os::user_dir(crate::os::UserDir::Data)
            .context("neither XDG_DATA_HOME nor HOME is set: set PLUGCHECK_WINE_PREFIX to a directory for plugcheck's Wine prefix")?;
        Ok(data.join("plugcheck/wine-prefix"))
    }

    /// Wine's loader program.
    pub fn wine64(&self) -> &Path {
        &self.wine64
    }

    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    /// Creates the prefix once (`wineboot`), and puts the compatibility DLL
    /// in its `system32` when this Wine has none: then every Rust program
    /// starts in it, wherever it lies.
    pub fn prepare(&self) -> anyhow::Result<()> {
        if !self.prefix.join("system.reg").exists() {
            eprintln!("creating the Wine prefix {} (once)", self.prefix.display());
            std::fs::create_dir_all(&self.prefix).with_context(|| {
                format!("cannot create the Wine prefix `{}`", self.prefix.display())
            })?;
            let status = self
                .command(Path::new("wineboot"), ["-i"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .context("cannot run wineboot")?;
            if !status.success() {
                bail!(
                    "wineboot failed ({status}) creating `{}`",
                    self.prefix.display()
                );
            }
            // wineboot returns before the server has written the registry.
            let wineserver = self.wine64.with_file_name("wineserver");
            if wineserver.exists() {
                Command::new(wineserver)
                    .arg("-w")
                    .env("WINEPREFIX", &self.prefix)
                    .status()
                    .context("cannot run wineserver -w")?;
            }
        }
        let system32 = self.prefix.join("drive_c/windows/system32");
        if !system32.join(COMPAT_DLL).exists() {
            build_compat_dll(&system32.join(COMPAT_DLL))?;
        }
        Ok(())
    }

    /// `wine64 EXE ARGS…` in the prefix, headless, without Wine's chatter.
    pub fn command<I, A>(&self, exe: &Path, args: I) -> Command
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        let mut command = Command::new(&self.wine64);
        command.arg(exe).args(args.into_iter().map(Into::into));
        for (name, value) in self.environment() {
            command.env(name, value);
        }
        command.env_remove("DISPLAY");
        command
    }

    /// The environment every program under this Wine gets (and `DISPLAY`
    /// removed): for callers that build their own commands.
    pub fn environment(&self) -> Vec<(&'static str, OsString)> {
        vec![
            ("WINEPREFIX", self.prefix.clone().into_os_string()),
            ("WINEDEBUG", "-all".into()),
            ("WINEDLLOVERRIDES", "mscoree,mshtml=".into()),
        ]
    }
}

/// Wine's `wine64`: Debian's, else one on PATH.
pub fn wine64() -> Option<PathBuf> {
    [PathBuf::from("/usr/lib/wine/wine64")]
        .into_iter()
        .find(|path| path.exists())
        .or_else(|| find_on_path("wine64"))
}

/// A Linux path as Wine's Windows programs see it: drive Z: is `/`.
pub fn windows_path(path: &Path) -> OsString {
    let text = path.display().to_string().replace('/', "\\");
    format!("Z:{text}").into()
}

/// Builds the compatibility DLL to `dll` with mingw-w64's gcc.
fn build_compat_dll(dll: &Path) -> anyhow::Result<()> {
    let gcc = find_on_path(MINGW_GCC).ok_or_else(|| Missing {
        what: format!("{MINGW_GCC}, which builds the {COMPAT_DLL} this Wine lacks"),
        remedy: format!("install: apt-get install {MINGW_PACKAGE}"),
    })?;
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let source = dir.path().join("bcryptprimitives.c");
    std::fs::write(&source, COMPAT_DLL_SOURCE)?;
    let built = dir.path().join(COMPAT_DLL);
    let output = Command::new(&gcc)
        .args(["-shared", "-O2", "-Wall", "-Werror", "-o"])
        .arg(&built)
        .arg(&source)
        .arg("-ladvapi32")
        .output()
        .with_context(|| format!("cannot run `{}`", gcc.display()))?;
    if !output.status.success() {
        bail!(
            "building {COMPAT_DLL} for Wine failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    std::fs::copy(&built, dll).with_context(|| format!("cannot install `{}`", dll.display()))?;
    Ok(())
}
