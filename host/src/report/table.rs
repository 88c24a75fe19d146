//! The human report: one line per case, then the gate. Written for a
//! terminal or a CI log; the JSON report carries the full detail.

use std::collections::BTreeMap;
use std::fmt::Write;

use anstyle::{AnsiColor, Style};

use super::event::{Event, Reporter};
use crate::gate::policy::UseState;
use crate::report::verdict::Verdict;
use crate::report::{CaseReport, PluginReport, Report};
use crate::text::human_ms;
use crate::text::{clip_reason, one_line};

/// The table as a run's reporter: the header when the run starts, each
/// plugin's table as soon as it and every plugin before it have finished
/// (so tables come in input order whatever runs at once), the summary at
/// the end. `say` writes (and strips colour where it does not belong).
pub struct Table {
    pub tool: String,
    pub say: fn(&str),
    next: usize,
    waiting: BTreeMap<usize, String>,
}

impl Table {
    pub fn new(tool: String, say: fn(&str)) -> Table {
        Table {
            tool,
            say,
            next: 0,
            waiting: BTreeMap::new(),
        }
    }
}

impl Reporter for Table {
    fn on(&mut self, event: &Event<'_>) -> anyhow::Result<()> {
        match event {
            Event::RunStarted {
                platform,
                timeout_ms,
                ..
            } => (self.say)(&header(&self.tool, platform, *timeout_ms)),
            Event::PluginFinished { index, report } => {
                self.waiting.insert(*index, plugin(report));
                while let Some(text) = self.waiting.remove(&self.next) {
                    (self.say)(&text);
                    self.next += 1;
                }
            }
            Event::RunFinished { report } => (self.say)(&summary(report)),
            Event::PluginStarted { .. }
            | Event::WorkerStarted { .. }
            | Event::CaseStarted { .. }
            | Event::CaseFinished { .. } => {}
        }
        Ok(())
    }
}

/// How a verdict looks on a terminal (anstream strips it elsewhere).
fn verdict_style(verdict: Verdict) -> Style {
    let color = |color: AnsiColor| Style::new().fg_color(Some(color.into()));
    match verdict {
        Verdict::Pass => color(AnsiColor::Green),
        Verdict::Fail => color(AnsiColor::Red).bold(),
        Verdict::Crashed => color(AnsiColor::Red).bold(),
        Verdict::TimedOut => color(AnsiColor::Magenta).bold(),
        Verdict::Warning => color(AnsiColor::Yellow),
        Verdict::Skipped => Style::new().dimmed(),
        Verdict::Unsupported => color(AnsiColor::Red),
        Verdict::Flaky => color(AnsiColor::Yellow).bold(),
    }
}

/// `text` in `style`: the escapes around the text, padding outside them.
fn styled(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

/// How much of a failing case's output the table quotes.
const OUTPUT_LINES: usize = 3;

pub fn header(report_tool: &str, platform: &crate::report::Machine, timeout_ms: u64) -> String {
    format!(
        "{report_tool} · {} · timeout {} per case\n",
        platform.describe(),
        human_ms(timeout_ms)
    )
}

/// One plugin's table.
pub fn plugin(report: &PluginReport) -> String {
    let mut out = String::new();
    let file = report
        .path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| report.path.display().to_string());
    let about = match &report.plugin {
        Some(info) => {
            let toolchain = info
                .toolchain
                .as_deref()
                .map(|toolchain| format!("{toolchain}, "))
                .unwrap_or_default();
            format!(
                " — {} {} ({}ABI {})",
                one_line(&info.name),
                one_line(&info.version),
                one_line(&toolchain),
                info.abi
            )
        }
        None => String::new(),
    };
    let _ = writeln!(out, "\n{}{about}", one_line(&file));
    let _ = writeln!(out, "  {}", one_line(&report.path.display().to_string()));
    if let Some(worker) = &report.worker {
        let _ = writeln!(out, "  judged by the {}", one_line(worker));
    }
    for case in &report.cases {
        out.push_str(&case_line(case));
    }
    let gate = &report.tally;
    let _ = writeln!(
        out,
        "  gate: {} — {} pass, {} fail, {} crashed, {} timed out, {} warning, {} skipped{}{}{}{} · {} worker(s) · {}",
        if gate.passed {
            styled(verdict_style(Verdict::Pass).bold(), "PASSED")
        } else {
            styled(verdict_style(Verdict::Fail), "FAILED")
        },
        gate.pass,
        gate.fail,
        gate.crashed,
        gate.timed_out,
        gate.warning,
        gate.skipped,
        match report
            .cases
            .iter()
            .filter(|case| case.verdict == Verdict::Skipped && case.detail.prerequisite.is_some())
            .count()
        {
            0 => String::new(),
            count => format!(" ({count} not verified)"),
        },
        match gate.unsupported {
            0 => String::new(),
            count => format!(", {count} unsupported"),
        },
        match gate.flaky {
            0 => String::new(),
            count => format!(", {count} flaky"),
        },
        match gate.waived {
            0 => String::new(),
            count => format!(" ({count} waived)"),
        },
        report.workers_started,
        human_ms(report.duration_us / 1000)
    );
    out
}

fn case_line(case: &CaseReport) -> String {
    let word = format!("{:<9}", case.verdict.as_str().to_uppercase());
    let mut out = format!(
        "  {} {:<28} {}\n",
        styled(verdict_style(case.verdict), &word),
        case.id.id(),
        one_line(&case.reason)
    );
    let note = |out: &mut String, text: &str| {
        let _ = writeln!(out, "  {:<9} {:<28} {}", "", "", one_line(text));
    };
    if !case.attempts.is_empty() {
        let runs: Vec<&str> = case
            .attempts
            .iter()
            .map(|attempt| attempt.verdict.as_str())
            .collect();
        note(&mut out, &format!("runs: {}", runs.join(", ")));
    }
    if let Some(waiver) = &case.waiver {
        match &waiver.expired {
            None => note(
                &mut out,
                &format!(
                    "waived (gate file line {}): {}",
                    waiver.line,
                    clip_reason(&waiver.reason)
                ),
            ),
            Some(why) => note(
                &mut out,
                &format!(
                    "waiver (gate file line {}) no longer applies: {why}",
                    waiver.line
                ),
            ),
        }
    }
    if matches!(
        case.verdict,
        Verdict::Fail | Verdict::Crashed | Verdict::TimedOut | Verdict::Flaky
    ) {
        for (stream, text) in [
            ("stdout", &case.output.stdout),
            ("stderr", &case.output.stderr),
        ] {
            for line in text
                .lines()
                .filter(|line| !line.trim().is_empty())
                .take(OUTPUT_LINES)
            {
                let _ = writeln!(out, "  {:<9} {:<28} | {}", "", stream, one_line(line));
            }
        }
    }
    out
}

/// The closing summary over all plugins: the gate file's waivers and what
/// became of each, then the gate.
pub fn summary(report: &Report) -> String {
    let mut out = waivers(report);
    out.push_str(&did_not_run(report));
    out.push_str(&gate_summary(report));
    out
}

/// Every case that did not run, per plugin and grouped by why: what a
/// passing gate did not verify is shown, not only counted.
fn did_not_run(report: &Report) -> String {
    let mut out = String::new();
    for plugin in &report.plugins {
        let groups = super::not_run::not_run(plugin);
        if groups.is_empty() {
            continue;
        }
        if out.is_empty() {
            out.push_str(
                "
cases that did not run:
",
            );
        }
        let file = plugin.path.file_name().unwrap_or_default();
        let _ = writeln!(out, "  {}", one_line(&file.to_string_lossy()));
        for group in groups {
            let cases: Vec<&str> = group.cases.iter().map(|case| case.id()).collect();
            let why = if group.not_verified {
                format!("not verified, behind {}", group.why)
            } else {
                format!("does not apply: {}", clip_reason(&group.why))
            };
            let _ = writeln!(out, "    {} — {}", cases.join(", "), one_line(&why));
        }
    }
    out
}

/// Each waiver with its state and reason, when the run had a gate file.
fn waivers(report: &Report) -> String {
    let Some(file) = &report.policy.file else {
        return String::new();
    };
    let mut out = format!("\nwaivers of {}:\n", one_line(file));
    if report.waivers.is_empty() {
        out.push_str("  (none)\n");
    }
    for used in &report.waivers {
        let waiver = &used.waiver;
        let state = match used.state {
            UseState::Applied => format!("applied to {} case(s)", used.applied),
            UseState::Expired => format!(
                "EXPIRED: {}",
                used.expired.as_deref().unwrap_or("its `until` passed")
            ),
            UseState::Stale => format!(
                "STALE: its cases ran and none was `{}`; remove it",
                waiver.accept
            ),
            UseState::NotRun => "not run: none of its cases ran here".to_owned(),
        };
        let plugin = waiver
            .plugin
            .as_deref()
            .map(|plugin| format!(" of {}", one_line(plugin)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  line {:<4} {}{plugin} accepts {} — {}\n  {:<9} reason: {}",
            waiver.line,
            one_line(&waiver.case),
            waiver.accept,
            state,
            "",
            one_line(&clip_reason(&waiver.reason))
        );
    }
    out
}

fn gate_summary(report: &Report) -> String {
    let failed: Vec<String> = report
        .plugins
        .iter()
        .filter(|plugin| !plugin.tally.passed)
        .map(|plugin| {
            plugin
                .path
                .file_name()
                .map(|name| one_line(&name.to_string_lossy()).into_owned())
                .unwrap_or_default()
        })
        .collect();
    let total = report.plugins.len();
    if failed.is_empty() {
        format!("\n{total} plugin(s) checked: all passed the gate\n")
    } else {
        format!(
            "\n{total} plugin(s) checked: {} passed the gate, {} failed ({})\n",
            total - failed.len(),
            failed.len(),
            failed.join(", ")
        )
    }
}
