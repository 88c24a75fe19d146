//! GitHub Actions: `::error`/`::warning` workflow commands on stdout, which
//! the runner turns into annotations, and a markdown table appended to the
//! file `$GITHUB_STEP_SUMMARY` names.

use std::io::Write;
use std::path::Path;

use super::junit::{file_name, message};
use crate::gate::file::FILE_NAME;
use crate::gate::judge;
use crate::gate::policy::{Passage, UseState};
use crate::report::verdict::Verdict;
use crate::report::{CaseReport, Report};
use crate::text::{clip_reason, one_line};

/// Whether this process runs in a GitHub Actions job.
pub fn in_actions() -> bool {
    std::env::var_os("GITHUB_ACTIONS").is_some_and(|value| value == "true")
}

/// One annotation per case that breaks the gate (an error), warned (a
/// warning) or was waived (a notice, with the waiver's reason); one per
/// waiver that is stale or expired, on its line of the gate file.
pub fn annotations(report: &Report) -> String {
    let mut out = String::new();
    for plugin in &report.plugins {
        for case in &plugin.cases {
            let level = match (judge::lets_through(&report.policy, case), case.verdict) {
                (Passage::Blocked, _) => "error",
                (Passage::Waived, _) => "notice",
                (Passage::Clean, Verdict::Warning) => "warning",
                (Passage::Clean, _) => continue,
            };
            let title = format!(
                "plugcheck {} {} on {}: {}",
                file_name(&plugin.path),
                case.id,
                report.platform.os,
                case.verdict
            );
            out.push_str(&format!(
                "::{level} {}title={}::{}\n",
                location(&plugin.path, case),
                escape_property(&one_line(&title)),
                escape_data(&message(case))
            ));
        }
    }
    let gate_file = report.policy.file.as_deref().unwrap_or(FILE_NAME);
    for used in &report.waivers {
        let waiver = &used.waiver;
        let why = match (used.state, &used.expired) {
            (UseState::Expired, Some(why)) => format!("no longer applies: {why}"),
            (UseState::Stale, _) => format!(
                "is stale: its cases ran and none was `{}`; remove it",
                waiver.accept
            ),
            _ => continue,
        };
        out.push_str(&format!(
            "::warning file={},line={}::{}\n",
            escape_property(&one_line(gate_file)),
            waiver.line,
            escape_data(&one_line(&format!(
                "the waiver for `{}` {why}",
                waiver.case
            )))
        ));
    }
    out
}

/// Where an annotation points: the plugin's own source line of a crash,
/// when the debug info names one inside the checked-out repository, else
/// the plugin file. GitHub places annotations by paths relative to the
/// workspace; one outside it is named as it is.
fn location(plugin: &Path, case: &CaseReport) -> String {
    let workspace = std::env::var_os("GITHUB_WORKSPACE").map(std::path::PathBuf::from);
    let relative = |path: &Path| -> String {
        workspace
            .as_deref()
            .and_then(|workspace| path.strip_prefix(workspace).ok())
            .unwrap_or(path)
            .display()
            .to_string()
    };
    let source_line = super::plugin_frame(&case.detail.stack).and_then(|frame| {
        let source = Path::new(frame.source.as_deref()?);
        let inside = workspace.as_deref().is_some_and(|w| source.starts_with(w));
        Some((relative(source), frame.line?)).filter(|_| inside)
    });
    match source_line {
        Some((source, line)) => {
            format!("file={},line={line},", escape_property(&one_line(&source)))
        }
        None => format!("file={},", escape_property(&one_line(&relative(plugin)))),
    }
}

/// The job summary: a table per plugin of the cases that did not pass.
pub(crate) fn summary(report: &Report) -> String {
    let mut out = format!(
        "## plugcheck on {} ({})\n\n| plugin | gate | pass | fail | crashed | timed out | warning | skipped |\n|---|---|---|---|---|---|---|---|\n",
        report.platform.os, report.platform.arch
    );
    for plugin in &report.plugins {
        let gate = &plugin.tally;
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |\n",
            markdown_code(&file_name(&plugin.path)),
            if gate.passed {
                "✅ passed"
            } else {
                "❌ failed"
            },
            gate.pass,
            gate.fail,
            gate.crashed,
            gate.timed_out,
            gate.warning,
            gate.skipped
        ));
    }
    let problems: Vec<String> = report
        .plugins
        .iter()
        .flat_map(|plugin| {
            plugin
                .cases
                .iter()
                .filter(|case| !matches!(case.verdict, Verdict::Pass | Verdict::Skipped))
                .map(move |case| {
                    let waived = match &case.waiver {
                        Some(waiver) if waiver.expired.is_none() => {
                            format!(" (waived: {})", markdown_text(&clip_reason(&waiver.reason)))
                        }
                        _ => String::new(),
                    };
                    format!(
                        "| `{}` | `{}` | {} | {}{waived} |\n",
                        markdown_code(&file_name(&plugin.path)),
                        case.id,
                        case.verdict,
                        markdown_text(&case.reason)
                    )
                })
        })
        .collect();
    if !problems.is_empty() {
        out.push_str("\n| plugin | case | verdict | reason |\n|---|---|---|---|\n");
        out.extend(problems);
    }
    out.push_str(&did_not_run(report));
    out.push('\n');
    out
}

/// Every case that did not run, per plugin, grouped by why: a passing
/// gate shows what it did not verify.
fn did_not_run(report: &Report) -> String {
    let rows: Vec<String> = report
        .plugins
        .iter()
        .flat_map(|plugin| {
            crate::report::not_run::not_run(plugin)
                .into_iter()
                .map(move |group| {
                    let cases: Vec<String> =
                        group.cases.iter().map(|case| format!("`{case}`")).collect();
                    let why = match group.not_verified {
                        true => format!("not verified, behind {}", group.why),
                        false => format!("does not apply: {}", clip_reason(&group.why)),
                    };
                    format!(
                        "| `{}` | {} | {} |\n",
                        markdown_code(&file_name(&plugin.path)),
                        cases.join(", "),
                        markdown_text(&why)
                    )
                })
        })
        .collect();
    match rows.is_empty() {
        true => String::new(),
        false => format!(
            "\n**Cases that did not run**\n\n| plugin | cases | why |\n|---|---|---|\n{}",
            rows.concat()
        ),
    }
}

/// Appends the summary to `$GITHUB_STEP_SUMMARY`, if the job has one.
pub fn append_summary(report: &Report) -> std::io::Result<()> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") else {
        return Ok(());
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(Path::new(&path))?;
    file.write_all(summary(report).as_bytes())
}

/// Plugin text in a markdown table cell: one line, and no character that
/// markdown or HTML reads (`|` ends the cell, `<` opens a tag, `` ` ``,
/// `*`, `_`, `[` format).
fn markdown_text(text: &str) -> String {
    let mut out = String::new();
    for c in one_line(text).chars() {
        if matches!(
            c,
            '|' | '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '!'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Plugin text inside a markdown code span: one line, no backtick or `|`.
fn markdown_code(text: &str) -> String {
    one_line(text).replace('`', "'").replace('|', "\\|")
}

/// Workflow-command data: `%`, CR and LF are escaped.
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Workflow-command property values also escape `:` and `,`.
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both summaries, the job's and the terminal's, name every case that
    /// did not run and why, a waived prerequisite's cases as not verified.
    #[test]
    fn summaries_list_the_cases_that_did_not_run() {
        let mut report = crate::report::test_report(
            "linux",
            &[(
                "/p/x.so",
                &[
                    ("shutdown", "fail"),
                    ("unload", "skipped"),
                    ("reload-upgrade", "skipped"),
                ],
            )],
        );
        let plugin = &mut report.plugins[0];
        plugin.cases[1].detail.prerequisite = Some(crate::catalog::CaseId::Shutdown);
        plugin.cases[2].reason = "no `upgrade` build".into();
        let job = summary(&report);
        assert!(
            job.contains("| `x.so` | `unload` | not verified, behind \\`shutdown\\` failed |"),
            "{job}"
        );
        assert!(
            job.contains("does not apply: no \\`upgrade\\` build"),
            "{job}"
        );
        let terminal = crate::report::table::summary(&report);
        assert!(
            terminal.contains("unload — not verified, behind `shutdown` failed")
                && terminal.contains("reload-upgrade — does not apply: no `upgrade` build"),
            "{terminal}"
        );
    }

    #[test]
    fn workflow_commands_escape_what_github_reads_specially() {
        assert_eq!(escape_data("50%\nnext"), "50%25%0Anext");
        assert_eq!(escape_property("a: b, c"), "a%3A b%2C c");
    }

    #[test]
    fn plugin_text_cannot_forge_annotations_or_table_rows() {
        assert_eq!(
            markdown_text("x | ✅ passed |\n<img src=x>"),
            "x \\| ✅ passed \\|\\\\n\\<img src=x\\>"
        );
        assert_eq!(markdown_code("a`b|c"), "a'b\\|c");
    }

    #[test]
    fn a_waived_case_is_a_notice_a_blocking_one_an_error_and_a_stale_waiver_a_warning_on_its_line()
    {
        use crate::gate::policy::{Policy, Waiver};
        let mut report = crate::report::test_report(
            "linux",
            &[("/p/x.so", &[("unload", "warning"), ("selftest", "fail")])],
        );
        let waiver = |case: &str, accept: Verdict, line: u32| Waiver {
            case: case.into(),
            plugin: None,
            accept,
            reason: format!("because {line}"),
            until: None,
            line,
        };
        let policy = Policy {
            deny_warnings: true,
            waivers: vec![
                waiver("unload", Verdict::Warning, 4),
                waiver("selftest", Verdict::Warning, 9),
            ],
            file: Some("gate/plugcheck.toml".into()),
            ..Policy::default()
        };
        judge::judge(&policy, &mut report, judge::today());
        let text = annotations(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(
            lines[0].starts_with("::notice ") && lines[0].contains("unload"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("::error ") && lines[1].contains("selftest"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("::warning file=gate/plugcheck.toml,line=9::")
                && lines[2].contains("stale"),
            "{text}"
        );
    }
}
