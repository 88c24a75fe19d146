//! The Windows leg on a Linux host: Windows binaries run under Wine, in a
//! prefix of the project's own (never the user's `~/.wine`), headless,
//! and with the compat DLL Wine 8.0 lacks; crashes never reach winedbg (see
//! `os::harden_worker` in the harness).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::needs::{MINGW_GCC, Missing, find_on_path};

#[derive(Debug, Clone)]
pub struct Wine {
    wine64: PathBuf,
    prefix: PathBuf,
}

impl Wine {
    /// Finds `wine64`, or says how to install it.
    pub fn find() -> anyhow::Result<Wine> {
        let wine64 = [PathBuf::from("/usr/lib/wine/wine64")]
            .into_iter()
            .find(|path| path.exists())
            .or_else(|| find_on_path("wine64"))
            .ok_or_else(|| Missing {
                what: "wine64, which runs the Windows leg on Linux".into(),
                remedy: crate::needs::WINE.install_hint(),
            })?;
        Ok(Wine {
            wine64,
            prefix: crate::target_dir().join("wine-prefix"),
        })
    }

    /// Wine's loader program.
    pub fn wine64(&self) -> &Path {
        &self.wine64
    }

    /// Creates the prefix once (`wineboot`). A crashing worker never
    /// reaches winedbg: the harness's workers end themselves on an
    /// unhandled exception (`os::harden_worker`).
    pub fn prepare(&self, sh: &Shell) -> anyhow::Result<()> {
        if self.prefix.join("system.reg").exists() {
            return Ok(());
        }
        eprintln!("creating the Wine prefix {} (once)", self.prefix.display());
        let wine64 = &self.wine64;
        self.env(cmd!(sh, "{wine64} wineboot -i"))
            .ignore_stderr()
            .run()?;
        // wineboot returns before the server has written the registry.
        let wineserver = self.wine64.with_file_name("wineserver");
        if wineserver.exists() {
            self.env(cmd!(sh, "{wineserver} -w")).run()?;
        }
        Ok(())
    }

    fn env<'a>(&self, command: xshell::Cmd<'a>) -> xshell::Cmd<'a> {
        command
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .env_remove("DISPLAY")
    }

    /// `wine64 EXE ARGS…` as a streaming command.
    pub fn command(&self, exe: &Path, args: Vec<OsString>) -> duct::Expression {
        let mut argv: Vec<OsString> = vec![exe.as_os_str().to_owned()];
        argv.extend(args);
        duct::cmd(&self.wine64, argv)
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .env_remove("DISPLAY")
    }
}

/// A Linux path as Wine's Windows programs see it: drive Z: is `/`.
pub fn windows_path(path: &Path) -> OsString {
    let text = path.display().to_string().replace('/', "\\");
    format!("Z:{text}").into()
}

/// Builds `bcryptprimitives.dll` (ProcessPrng) into `dir`, beside
/// plugcheck.exe, where the loader looks first.
pub fn install_compat_dll(sh: &Shell, root: &Path, dir: &Path) -> anyhow::Result<()> {
    let source = root.join("xtask/wine/bcryptprimitives.c");
    let dll = dir.join("bcryptprimitives.dll");
    cmd!(
        sh,
        "{MINGW_GCC} -shared -O2 -Wall -Werror -o {dll} {source} -ladvapi32"
    )
    .run()
    .context("building the ProcessPrng compat DLL for Wine failed")?;
    if !dll.exists() {
        bail!("`{}` was not built", dll.display());
    }
    Ok(())
}
