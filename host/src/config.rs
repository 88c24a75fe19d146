//! An application's plugins, declared in a file or in code: where each
//! build is (or which build is watched), how it runs, its deadline, its
//! restart, breaker, bulkhead and idle settings, and the reports that
//! admit builds.
//!
//! ```toml
//! # plugins.toml; paths are relative to this file
//! reports = ["reports/linux.json"]
//! max_loaded = 2                     # least recently used unloaded past this
//! worker_program = "bin/plugcheck"   # none: this program (serve_if_worker)
//!
//! [[plugin]]
//! name = "echo"
//! build = "plugins/libecho.so"
//! mode = "in-process"                # or "worker" (the default)
//! pin = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! deadline = "2s"
//! idle_unload = "5m"
//! watch = true                       # reload when the build changes
//!
//! [[plugin]]
//! name = "parser"
//! build = "plugins/libparser.so"
//! max_in_flight = 8
//! checkpoint = "5s"                  # its state, saved; a restart resumes it
//! restart = { first = "100ms", max = "30s", attempts = 8 }
//! breaker = { failures = 5, open_for = "10s", per_method = true }
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::text::one_line;
use serde::Deserialize;

use crate::supervision::{Breaker, Restart, within_bound};

/// The largest configuration file read: a list of plugins, not a dataset.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// How a plugin runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// In the application's process: trusted plugins only (a crash takes
    /// the application; see [`crate::in_process`]).
    InProcess,
    /// In a worker process of its own (see [`crate::isolated`]).
    #[default]
    Worker,
}

/// One plugin.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// What the application calls it by.
    pub name: String,
    /// The build to load (relative to the configuration file).
    pub build: PathBuf,
    #[serde(default)]
    pub mode: Mode,
    /// The SHA-256 the build must have (`sha256sum`'s digits).
    #[serde(default)]
    pub pin: Option<String>,
    /// Refuse a build that no report passed (default: yes).
    #[serde(default = "yes")]
    pub require_passing_report: bool,
    /// Each call's deadline.
    #[serde(default = "default_deadline", with = "humantime_serde")]
    pub deadline: Duration,
    /// Unload after this long without a call (in process: only a build
    /// whose unloading the reports verified).
    #[serde(default, with = "humantime_serde")]
    pub idle_unload: Option<Duration>,
    /// Calls in flight at most (bulkhead).
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    /// Reload when the build changes on disk.
    #[serde(default)]
    pub watch: bool,
    /// Worker mode: save the plugin's state when this long has passed
    /// since the last save, after a call ("0s": after every call), so a
    /// worker that dies restarts from it. A plugin configured in process
    /// uses it where it is served in a worker after all (its reports saw
    /// a crash, a hang or a flaky case, or it is Go-native); in process
    /// the state never leaves the application, and nothing restarts.
    #[serde(default, with = "humantime_serde")]
    pub checkpoint: Option<Duration>,
    #[serde(default)]
    pub restart: Restart,
    #[serde(default)]
    pub breaker: Breaker,
}

impl PluginConfig {
    /// A plugin with the defaults: a worker, a passing report required,
    /// 10 s deadline, 64 calls in flight, no idle unload, no watch.
    pub fn new(name: &str, build: impl Into<PathBuf>) -> PluginConfig {
        PluginConfig {
            name: name.to_owned(),
            build: build.into(),
            mode: Mode::Worker,
            pin: None,
            require_passing_report: true,
            deadline: default_deadline(),
            idle_unload: None,
            max_in_flight: default_in_flight(),
            watch: false,
            checkpoint: None,
            restart: Restart::default(),
            breaker: Breaker::default(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_deadline() -> Duration {
    Duration::from_secs(10)
}

fn default_in_flight() -> usize {
    64
}

/// Every plugin of an application, and what admits them.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// `plugcheck check --json` reports that admit builds.
    #[serde(default)]
    pub reports: Vec<PathBuf>,
    /// Loaded plugins at most; past it the least recently called one is
    /// unloaded (where it may be).
    #[serde(default)]
    pub max_loaded: Option<usize>,
    /// The `plugcheck` binary workers run; none: this program, which calls
    /// `crate::embed::serve_if_worker` first thing in `main`.
    #[serde(default)]
    pub worker_program: Option<PathBuf>,
    #[serde(default, rename = "plugin")]
    pub plugins: Vec<PluginConfig>,
}

/// Why a configuration cannot be used: what, where, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the plugin configuration `{}`: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("`{}` is over {} KiB: a plugin configuration is a short TOML file", path.display(), MAX_CONFIG_BYTES >> 10)]
    TooLarge { path: PathBuf },
    #[error("`{}` is not a valid plugin configuration: {}", path.display(), one_line(message))]
    Invalid { path: PathBuf, message: String },
    #[error("{where_}: {problem}")]
    Wrong { where_: String, problem: String },
}

impl HostConfig {
    /// Reads `path` (TOML): paths in it are taken relative to its directory.
    /// Every plugin is checked (see [`HostConfig::check`]).
    pub fn read(path: &Path) -> Result<HostConfig, ConfigError> {
        use std::io::Read as _;
        let unreadable = |source| ConfigError::Unreadable {
            path: path.to_owned(),
            source,
        };
        let metadata = std::fs::metadata(path).map_err(unreadable)?;
        if !metadata.is_file() {
            return Err(unreadable(std::io::Error::other(
                "not a regular file: name the TOML file",
            )));
        }
        let mut text = String::new();
        std::fs::File::open(path)
            .map_err(unreadable)?
            .take(MAX_CONFIG_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(unreadable)?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: path.to_owned(),
            });
        }
        let mut config: HostConfig =
            toml::from_str(&text).map_err(|error| ConfigError::Invalid {
                path: path.to_owned(),
                message: error.to_string(),
            })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let relative = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        config.reports.iter_mut().for_each(relative);
        config.worker_program.iter_mut().for_each(relative);
        for plugin in &mut config.plugins {
            relative(&mut plugin.build);
        }
        config.check(&path.display().to_string())?;
        Ok(config)
    }

    /// Names unique and not empty, bounds above zero, pins of 64 hex
    /// digits: what a file or code can get wrong before any build is read.
    /// `origin` names where the configuration came from.
    pub fn check(&self, origin: &str) -> Result<(), ConfigError> {
        let wrong = |plugin: Option<&str>, problem: String| ConfigError::Wrong {
            where_: match plugin {
                Some(name) => format!("{origin}, plugin `{}`", one_line(name)),
                None => origin.to_owned(),
            },
            problem,
        };
        if self.max_loaded == Some(0) {
            return Err(wrong(
                None,
                "`max_loaded` is 0: no plugin could ever load; leave it out for no bound".into(),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for plugin in &self.plugins {
            let name = plugin.name.as_str();
            if name.trim().is_empty() {
                return Err(wrong(None, "a plugin has an empty `name`".into()));
            }
            if !seen.insert(name) {
                return Err(wrong(
                    Some(name),
                    "the name is used twice: give each plugin its own".into(),
                ));
            }
            if plugin.max_in_flight == 0 {
                return Err(wrong(
                    Some(name),
                    "`max_in_flight` is 0: no call could ever run".into(),
                ));
            }
            if plugin.deadline.is_zero() {
                return Err(wrong(Some(name), "`deadline` is 0".into()));
            }
            let policies = within_bound("deadline", plugin.deadline)
                .and_then(|()| {
                    plugin
                        .idle_unload
                        .map_or(Ok(()), |idle| within_bound("idle_unload", idle))
                })
                .and_then(|()| {
                    plugin
                        .checkpoint
                        .map_or(Ok(()), |every| within_bound("checkpoint", every))
                })
                .and_then(|()| plugin.restart.check())
                .and_then(|()| plugin.breaker.check());
            if let Err(problem) = policies {
                return Err(wrong(Some(name), problem));
            }
            if plugin.idle_unload.is_some_and(|idle| idle.is_zero()) {
                return Err(wrong(
                    Some(name),
                    "`idle_unload` is 0: every call would unload it; leave it out to keep it loaded".into(),
                ));
            }
            if let Some(pin) = &plugin.pin
                && (pin.len() != 64 || !pin.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                return Err(wrong(
                    Some(name),
                    format!(
                        "`pin` `{}` is not a SHA-256: give the 64 hexadecimal digits `sha256sum` prints",
                        one_line(pin)
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
