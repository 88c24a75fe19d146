//! Admission: whether a build may be loaded, and how, decided from its
//! bytes and from the conformance reports about those very bytes.
//!
//! A report names each build it judged by the SHA-256 of the file the run
//! read (`PluginReport::sha256`), so a report about yesterday's build says
//! nothing about today's: a rebuilt plugin needs a report of its own. Only
//! reports made on this operating system count: a build judged under Wine
//! is a Windows build, and this host is not running it there.
//!
//! The cases that reload a build to another one (`--reload-to`) judge the
//! pair: a report whose gate failed only there failed the pair, and says
//! nothing of these bytes alone, for or against.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::catalog::CaseId;
use crate::fuzz::DEFAULT_INPUTS;
use crate::gate::judge::tally_today;
use crate::inspect::file::{self, FileProblem};
use crate::report::verdict::Verdict;
use crate::report::{PluginReport, Report, ReportReadError};
use crate::text::one_line;

/// How an admitted plugin runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// In the application's own process: for trusted plugins. A panic the
    /// plugin's boundary catches is an error like any other; a crash (a
    /// bad pointer, an abort) takes the application with it.
    InProcess,
    /// Only in a worker process of its own, where a crash or a hang costs
    /// the call it happened in (the host's worker mode comes next; until
    /// then such a build is refused in process, and says why).
    Worker,
}

impl fmt::Display for Isolation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Isolation::InProcess => "in process",
            Isolation::Worker => "in a worker process",
        })
    }
}

/// What an application requires of a build before it loads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// The SHA-256 the file must have, as `sha256sum` prints it: any other
    /// build is refused, whatever its reports say.
    pub pin: Option<String>,
    /// Refuse a build unless a report made on this operating system passed
    /// the gate for it and none failed it. Without it, reports still decide
    /// isolation and unloading, and a build with none is admitted as
    /// asked, never unloaded.
    pub require_passing_report: bool,
    /// How the application wants the plugin run. A report that saw the
    /// build crash, hang or behave flakily runs it in a worker instead.
    pub isolation: Isolation,
}

/// What the reports read so far say, by the SHA-256 of each build they
/// judged.
#[derive(Debug, Default, Clone)]
pub struct Evidence {
    judged: BTreeMap<String, Vec<Judgement>>,
    /// Reports read, for the words of a refusal.
    reports: usize,
}

/// The cases that judge a build together with another (reloaded to the
/// `--reload-to` build): what they find is the pair's.
pub const WITH_ANOTHER_BUILD: [CaseId; 3] = [
    CaseId::ReloadUpgrade,
    CaseId::ReloadBrokenUpgrade,
    CaseId::ReloadAbiMismatch,
];

/// One report's judgement of one build.
#[derive(Debug, Clone)]
struct Judgement {
    report: PathBuf,
    /// The operating system the report was made on (`linux`, `windows`),
    /// and what ran the harness there (`native`, `Wine 8.0`).
    os: String,
    runtime: String,
    /// The run had the whole suite: no `--filter`, every case there, the
    /// default fuzz inputs or more.
    whole_suite: bool,
    /// The gate passed, judged again today, on a run of the whole suite
    /// (no `--filter`, every case there, the default fuzz inputs or
    /// more): only such a run can vouch for a build.
    passed: bool,
    /// The gate, judged again today without the cases that reload to
    /// another build, failed: these bytes alone broke it.
    failed: bool,
    /// A case that crashed, timed out or disagreed between runs (with
    /// another build too: the old version's `save_state` runs there), or
    /// the Go worker judged it: why the build must not run in process.
    isolating: Option<String>,
    /// The verdicts of `unload` and `reload-unload-verified`, every entry:
    /// what says the library may be closed.
    unloads: Vec<(CaseId, Verdict)>,
}

impl Evidence {
    /// Reads one report `plugcheck check --json` (or `merge`) wrote, as
    /// the harness reads any report: regular files only, bounded, and a
    /// mistake said in a line. Returns how many builds it named by their
    /// SHA-256 (a report of a plugcheck older than the field names none,
    /// and a file the run could not read has none).
    pub fn read(&mut self, report: &Path) -> Result<usize, ReportReadError> {
        let parsed = Report::read_json(report)?;
        Ok(self.add(&parsed, report))
    }

    /// Takes the judgements of a report already in memory; `from` is where
    /// it came from, for the words of an admission.
    pub fn add(&mut self, report: &Report, from: &Path) -> usize {
        self.reports += 1;
        let mut named = 0;
        for plugin in &report.plugins {
            let Some(sha256) = plugin
                .sha256
                .as_deref()
                .and_then(|hash| pin_form(hash).ok())
            else {
                continue;
            };
            named += 1;
            self.judged
                .entry(sha256)
                .or_default()
                .push(Judgement::of(report, plugin, from));
        }
        named
    }
}

impl Judgement {
    fn of(report: &Report, plugin: &PluginReport, from: &Path) -> Judgement {
        // What the run asked for (a report `cargo xtask conformance`
        // composes of several runs keeps no one run's provenance: its cases
        // alone say). A time budget that cut the fuzzing short for a plugin
        // of thousands of methods is the plugin's size, said in
        // `fuzz-methods`' reason, not a partial run.
        let whole_suite = report
            .provenance
            .as_ref()
            .is_none_or(|run| run.filter.is_empty() && run.fuzz_inputs >= DEFAULT_INPUTS)
            && CaseId::ALL
                .iter()
                .all(|id| plugin.cases.iter().any(|case| case.id == *id));
        let mut alone = plugin.clone();
        alone
            .cases
            .retain(|case| !WITH_ANOTHER_BUILD.contains(&case.id));
        let crashed = plugin.cases.iter().find(|case| {
            matches!(
                case.verdict,
                Verdict::Crashed | Verdict::TimedOut | Verdict::Flaky
            )
        });
        let shown = one_line(&from.display().to_string()).into_owned();
        let isolating = match (crashed, &plugin.worker) {
            (Some(case), _) => Some(format!(
                "`{}` {} in `{shown}`",
                case.id,
                case.verdict.past_tense()
            )),
            (None, Some(worker)) => Some(format!(
                "it is a Go-native plugin, judged by {} in `{shown}`: Go loads it only in a Go process",
                one_line(worker)
            )),
            (None, None) => None,
        };
        Judgement {
            report: from.to_owned(),
            os: report.platform.os.clone(),
            runtime: report.platform.runtime.clone(),
            whole_suite,
            passed: whole_suite && tally_today(&report.policy, plugin).passed,
            failed: !tally_today(&report.policy, &alone).passed,
            isolating,
            unloads: plugin
                .cases
                .iter()
                .filter(|case| matches!(case.id, CaseId::Unload | CaseId::ReloadUnloadVerified))
                .map(|case| (case.id, case.verdict))
                .collect(),
        }
    }
}

/// A build admitted, with how it is to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub path: PathBuf,
    /// Its SHA-256, as `sha256sum` prints it: what to pin it by.
    pub sha256: String,
    pub isolation: Isolation,
    /// What a report saw that keeps the build out of the application's
    /// process, if anything (then `isolation` is `Worker`).
    pub isolated_by: Option<String>,
    /// Whether the host may close the library: only where at least one
    /// report ran `unload`, and every entry of `unload` and
    /// `reload-unload-verified` in every report of these bytes passed.
    pub may_unload: bool,
    /// Why, a line each: what admitted it, what forced its isolation, why
    /// it is never unloaded.
    pub why: Vec<String>,
}

/// Why a build is not admitted. Each says what was found, where, and what
/// to do.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("the plugin cannot be admitted: {0}")]
    File(#[from] FileProblem),
    #[error(
        "the pin `{}` is not a SHA-256: give the 64 hexadecimal digits `sha256sum` prints for the build",
        one_line(pin)
    )]
    BadPin { pin: String },
    #[error(
        "`{}` is not the pinned build: its SHA-256 is {found}, the pin is {pinned}; load the pinned build, or check this one (`plugcheck check --json`) and pin it",
        one_line(&path.display().to_string())
    )]
    NotPinned {
        path: PathBuf,
        pinned: String,
        found: String,
    },
    #[error(
        "`{}` failed the gate in `{}` (SHA-256 {sha256}): fix what that report names and check the new build",
        one_line(&path.display().to_string()),
        one_line(&report.display().to_string())
    )]
    FailedGate {
        path: PathBuf,
        sha256: String,
        report: PathBuf,
    },
    #[error(
        "`{}` has no passing report (SHA-256 {sha256}): {found}; run `plugcheck check --json REPORT` on this very build and admit it with that report",
        one_line(&path.display().to_string())
    )]
    NoPassingReport {
        path: PathBuf,
        sha256: String,
        /// What the reports read did say.
        found: String,
    },
}

impl Refused {
    /// The same refusal, naming `build` where it named `read`: a host
    /// admits the shadow copy it is about to load, and tells the
    /// application about the build it asked for.
    pub fn naming(mut self, read: &Path, build: &Path) -> Refused {
        let path = match &mut self {
            Refused::NotPinned { path, .. }
            | Refused::FailedGate { path, .. }
            | Refused::NoPassingReport { path, .. } => Some(path),
            Refused::File(problem) => Some(problem.path_mut()),
            Refused::BadPin { .. } => None,
        };
        if let Some(path) = path
            && path == read
        {
            *path = build.to_owned();
        }
        self
    }
}

/// Decides whether the plugin file at `plugin` may be loaded under
/// `rules`, given `evidence`: its SHA-256 is read once, through the
/// harness's bounded reader (a FIFO, a device or a file over 1 GiB is
/// refused by name before anything reads it).
pub fn admit(plugin: &Path, rules: &Rules, evidence: &Evidence) -> Result<Admitted, Refused> {
    let pin = rules
        .pin
        .as_deref()
        .map(|pin| {
            pin_form(pin).map_err(|()| Refused::BadPin {
                pin: pin.to_owned(),
            })
        })
        .transpose()?;
    let sha256 = file::sha256(plugin)?;
    if let Some(pinned) = pin
        && pinned != sha256
    {
        return Err(Refused::NotPinned {
            path: plugin.to_owned(),
            pinned,
            found: sha256,
        });
    }
    let here = std::env::consts::OS;
    let all = evidence.judged.get(&sha256).map_or(&[][..], Vec::as_slice);
    let judgements: Vec<&Judgement> = all.iter().filter(|judged| judged.os == here).collect();
    let mut why = Vec::new();
    if rules.require_passing_report {
        if let Some(failed) = judgements.iter().find(|judged| judged.failed) {
            return Err(Refused::FailedGate {
                path: plugin.to_owned(),
                sha256,
                report: failed.report.clone(),
            });
        }
        if !judgements.iter().any(|judged| judged.passed) {
            return Err(Refused::NoPassingReport {
                path: plugin.to_owned(),
                found: no_report_here(evidence.reports, all, here),
                sha256,
            });
        }
    }
    for judged in judgements.iter().filter(|judged| judged.passed) {
        why.push(format!(
            "passed the gate in `{}`",
            one_line(&judged.report.display().to_string())
        ));
    }
    for judged in judgements
        .iter()
        .filter(|judged| judged.runtime != "native")
    {
        why.push(format!(
            "judged under {} in `{}`, not natively: what that runtime does not show (see plugcheck's known limits) was not seen",
            one_line(&judged.runtime),
            one_line(&judged.report.display().to_string())
        ));
    }
    let isolated_by = judgements
        .iter()
        .find_map(|judged| judged.isolating.clone());
    let isolation = match &isolated_by {
        Some(reason) => {
            why.push(format!("runs in a worker process: {reason}"));
            Isolation::Worker
        }
        None => rules.isolation,
    };
    let unloads: Vec<(CaseId, Verdict)> = judgements
        .iter()
        .flat_map(|judged| judged.unloads.iter().copied())
        .collect();
    let ran_unload = unloads.iter().any(|(case, _)| *case == CaseId::Unload);
    let not_closed = unloads
        .iter()
        .find(|(_, verdict)| *verdict != Verdict::Pass);
    let may_unload = ran_unload && not_closed.is_none();
    if let Some((case, verdict)) = not_closed {
        why.push(format!("never unloaded: `{case}` {}", verdict.past_tense()));
    } else if !ran_unload {
        why.push("never unloaded: no report of this build ran `unload`".to_owned());
    }
    Ok(Admitted {
        path: plugin.to_owned(),
        sha256,
        isolation,
        isolated_by,
        may_unload,
        why,
    })
}

/// What the reports said of a build none of them passed here.
fn no_report_here(reports: usize, all: &[Judgement], here: &str) -> String {
    if let Some(partial) = all
        .iter()
        .find(|judged| judged.os == here && !judged.whole_suite)
    {
        return format!(
            "its report here ran part of the suite (`--filter`, or fewer fuzz inputs than the default), `{}`: only a run of the whole suite vouches for a build",
            one_line(&partial.report.display().to_string())
        );
    }
    if let Some(paired) = all.iter().find(|judged| judged.os == here) {
        return format!(
            "its gate failed only where it was reloaded to another build (`--reload-to`), in `{}`",
            one_line(&paired.report.display().to_string())
        );
    }
    match all.first() {
        Some(elsewhere) => format!(
            "it was judged on {} only (`{}`), and this host runs on {here}",
            one_line(&elsewhere.os),
            one_line(&elsewhere.report.display().to_string())
        ),
        None if reports == 0 => "no report was given".to_owned(),
        None => format!("none of the {reports} report(s) read judged these bytes"),
    }
}

/// A SHA-256 as `sha256sum` prints it, lower case; `Err` if `text` is not
/// one.
fn pin_form(text: &str) -> Result<String, ()> {
    let text = text.trim();
    if text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(())
    }
}

#[cfg(test)]
mod tests;
