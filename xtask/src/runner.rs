//! How a leg's `plugcheck` is started: directly on its own platform, or
//! under Wine for the Windows leg on a Linux host. The suite, the tests
//! that read its build and the bench all start it this way.

use std::ffi::OsString;
use std::path::Path;

use anyhow::bail;

use crate::platform::Platform;
use crate::wine::{self, Wine};

/// How a leg's `plugcheck` is started: directly, or under Wine.
#[derive(Clone)]
pub enum Runner {
    Native,
    Wine(Wine),
}

impl Runner {
    pub fn for_platform(platform: Platform) -> anyhow::Result<Runner> {
        if platform == Platform::host() {
            return Ok(Runner::Native);
        }
        match platform {
            Platform::Windows => {
                let wine = wine::find()?;
                wine.prepare()?;
                Ok(Runner::Wine(wine))
            }
            Platform::Linux => bail!("the Linux leg runs on Linux (or in WSL2), not on this host"),
        }
    }

    /// A path as the leg's `plugcheck` sees it.
    pub fn path(&self, path: &Path) -> OsString {
        match self {
            Runner::Native => path.as_os_str().to_owned(),
            Runner::Wine(_) => wine::windows_path(path),
        }
    }

    pub fn command(&self, plugcheck: &Path, args: Vec<OsString>) -> duct::Expression {
        match self {
            Runner::Native => duct::cmd(plugcheck, args),
            Runner::Wine(wine) => {
                let mut argv: Vec<OsString> = vec![plugcheck.as_os_str().to_owned()];
                argv.extend(args);
                let mut command = duct::cmd(wine.wine64(), argv).env_remove("DISPLAY");
                for (name, value) in wine.environment() {
                    command = command.env(name, value);
                }
                command
            }
        }
    }
}
