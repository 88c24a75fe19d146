//! The other build a reload case switches to: which file, where it was
//! named (a gate file's line, or `--reload-to`), and whether it is a
//! library this platform loads at all. A refused reload proves rollback
//! only when the build reached the loader as a library of this platform:
//! a missing file or another platform's library is refused by any host for
//! reasons that say nothing about the plugin, so it must never stand in for
//! the verdict a case wants.

use std::path::Path;

use crate::outcome::{CaseSettings, Outcome, ReloadRole};

/// A reload build given for this run.
pub(super) struct OtherBuild<'a> {
    pub role: ReloadRole,
    pub path: &'a Path,
    named_at: &'a str,
}

impl<'a> OtherBuild<'a> {
    /// The `role` build, usable or not; `Err` with the skip to report when
    /// none was given for this platform.
    pub(super) fn of(
        settings: &'a CaseSettings,
        role: ReloadRole,
    ) -> Result<OtherBuild<'a>, Outcome> {
        let named_at = settings.reload_named_at.get(&role);
        let Some(path) = settings.reload_to.get(&role) else {
            return Err(match named_at {
                Some(named_at) => Outcome::skipped(format!(
                    "no `{0}` build for {1}: `{named_at}` names `{0}` builds for other platforms only; add `{1} = \"PATH\"` there",
                    role.name(),
                    std::env::consts::OS
                )),
                None => Outcome::skipped(format!(
                    "no `{0}` build to reload to: pass --reload-to {0}=PATH",
                    role.name()
                )),
            });
        };
        Ok(OtherBuild {
            role,
            path,
            named_at: named_at.map_or("--reload-to", String::as_str),
        })
    }

    /// `Err` (a failure naming the build, where it was named, and why) when
    /// the build is no library this platform could load at all.
    pub(super) fn check_loadable_here(&self) -> Result<(), Outcome> {
        match crate::inspect::sniff::sniff(self.path) {
            Err(error) if error.is_no_library_here() => Err(Outcome::fail(format!(
                "the `{role}` build (named at `{named_at}`) cannot be loaded here at all, so reloading to it proves nothing: {error}; name a {os} build for `{role}` (a gate file can name one per platform: `{role} = {{ linux = \"…\", windows = \"…\" }}`)",
                role = self.role.name(),
                named_at = self.named_at,
                os = std::env::consts::OS,
            ))),
            _ => Ok(()),
        }
    }

    /// `outcome` with the scratch copy `stand_in` it speaks of named as this
    /// build, the file the author knows.
    pub(super) fn in_its_terms(&self, stand_in: &Path, mut outcome: Outcome) -> Outcome {
        outcome.reason = outcome.reason.replace(
            &stand_in.display().to_string(),
            &self.path.display().to_string(),
        );
        outcome
    }
}
