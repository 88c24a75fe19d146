//! The report as JUnit XML: one testsuite per plugin and platform, one
//! testcase per case. Fail is a failure; crashed and timed-out are errors
//! typed by how the worker ended; skipped is skipped; a warning passes with
//! its reason kept as a property. Flaky is as nextest writes it: a failure
//! with a `<rerunFailure>` per failing run, or, where a waiver accepts it,
//! a pass with a `<flakyFailure>` per failing run. Any other waived verdict
//! passes, with the waiver's reason as a property.

use std::path::Path;
use std::time::Duration;

use quick_junit::{
    NonSuccessKind, Report as JunitReport, TestCase, TestCaseStatus, TestRerun, TestSuite,
};

use crate::report::verdict::Verdict;
use crate::report::{CaseReport, Frame, Report, ReportWriteError, write_atomically};
use crate::text::{clip_reason, keeping_lines, one_line};

/// The JUnit document for a report.
pub fn to_xml(report: &Report) -> String {
    let mut junit = JunitReport::new("plugcheck");
    for plugin in &report.plugins {
        let name = format!(
            "{} ({})",
            one_line(&file_name(&plugin.path)),
            report.platform.os
        );
        let mut suite = TestSuite::new(name);
        suite.set_time(Duration::from_micros(plugin.duration_us));
        suite.add_property((
            "path",
            one_line(&plugin.path.display().to_string()).as_ref(),
        ));
        suite.add_property(("platform", report.platform.os.as_str()));
        if let Some(info) = &plugin.plugin {
            suite.add_property((
                "plugin",
                one_line(&format!("{} {}", info.name, info.version)).as_ref(),
            ));
        }
        for case in &plugin.cases {
            let waived = case
                .waiver
                .as_ref()
                .is_some_and(|waiver| waiver.expired.is_none());
            let mut status = match case.verdict {
                Verdict::Pass | Verdict::Warning => TestCaseStatus::success(),
                // Waived or not, a skipped case did not run.
                Verdict::Skipped => {
                    let mut status = TestCaseStatus::skipped();
                    status.set_message(one_line(&case.reason).as_ref());
                    status
                }
                _ if waived => TestCaseStatus::success(),
                Verdict::Flaky => non_success(NonSuccessKind::Failure, "flaky", &message(case)),
                Verdict::Fail | Verdict::Unsupported => non_success(
                    NonSuccessKind::Failure,
                    case.verdict.as_str(),
                    &message(case),
                ),
                Verdict::Crashed | Verdict::TimedOut => {
                    let ty = case
                        .detail
                        .termination
                        .as_ref()
                        .map(|termination| termination.describe())
                        .unwrap_or_else(|| case.verdict.to_string());
                    non_success(NonSuccessKind::Error, &ty, &message(case))
                }
            };
            if let TestCaseStatus::NonSuccess { .. } = &mut status {
                status.set_description(description(case).as_str());
            }
            status.add_reruns(reruns(case));
            let mut test_case = TestCase::new(case.id.id(), status);
            test_case.set_classname(format!("plugcheck.{}", case.family));
            test_case.set_time(Duration::from_micros(case.duration_us));
            test_case.add_property(("verdict", case.verdict.as_str()));
            if case.verdict == Verdict::Warning {
                test_case.add_property(("warning", one_line(&case.reason).as_ref()));
            }
            if let Some(waiver) = &case.waiver {
                let key = match waiver.expired {
                    None => "waived",
                    Some(_) => "waiver-expired",
                };
                test_case.add_property((key, one_line(&clip_reason(&waiver.reason)).as_ref()));
            }
            if !case.output.stdout.is_empty() {
                test_case.set_system_out(keeping_lines(&case.output.stdout).as_ref());
            }
            if !case.output.stderr.is_empty() {
                test_case.set_system_err(keeping_lines(&case.output.stderr).as_ref());
            }
            suite.add_test_case(test_case);
        }
        junit.add_test_suite(suite);
    }
    junit
        .to_string()
        .expect("a JUnit document of strings serializes")
}

/// The failing runs of a flaky case, as JUnit reruns: how each ended.
fn reruns(case: &CaseReport) -> Vec<TestRerun> {
    case.attempts
        .iter()
        .filter(|attempt| attempt.verdict != Verdict::Pass)
        .map(|attempt| {
            let kind = match attempt.verdict {
                Verdict::Crashed | Verdict::TimedOut => NonSuccessKind::Error,
                _ => NonSuccessKind::Failure,
            };
            let mut rerun = TestRerun::new(kind);
            rerun
                .set_type(attempt.verdict.as_str())
                .set_message(one_line(&format!("run {}: {}", attempt.run, attempt.reason)).as_ref())
                .set_time(Duration::from_micros(attempt.duration_us));
            rerun
        })
        .collect()
}

/// Writes the JUnit document atomically.
pub fn write(report: &Report, path: &Path) -> Result<(), ReportWriteError> {
    write_atomically(path, to_xml(report).as_bytes())
}

/// Frames a `<failure>`/`<error>` message names: where CI lists show
/// one line, the crash's place.
const MESSAGE_FRAMES: usize = 3;

/// The reason on one line, with the crash's top frames when there was one.
pub(crate) fn message(case: &CaseReport) -> String {
    let frames = &case.detail.stack;
    if frames.is_empty() {
        return one_line(&case.reason).into_owned();
    }
    one_line(&format!(
        "{} [stack: {}]",
        case.reason,
        top_frames(frames, MESSAGE_FRAMES)
    ))
    .into_owned()
}

/// The reason and, after a crash, the whole stack, a frame per line.
fn description(case: &CaseReport) -> String {
    let mut text = one_line(&case.reason).into_owned();
    if !case.detail.stack.is_empty() {
        text.push_str("\n\nstack of the crashing thread, innermost first:");
        for (depth, frame) in case.detail.stack.iter().enumerate() {
            text.push_str(&format!("\n  #{depth:<2} {}", one_line(&frame.describe())));
        }
    }
    text
}

/// The top frames of a stack as one line, innermost first.
pub(crate) fn top_frames(frames: &[Frame], count: usize) -> String {
    frames
        .iter()
        .take(count)
        .map(Frame::describe)
        .collect::<Vec<_>>()
        .join(" ← ")
}

fn non_success(kind: NonSuccessKind, ty: &str, message: &str) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(kind);
    status.set_type(ty).set_message(message);
    status
}

/// The file name of a path from either platform.
pub(crate) fn file_name(path: &Path) -> String {
    let text = path.display().to_string();
    text.rsplit(['/', '\\'])
        .next()
        .unwrap_or_default()
        .to_owned()
}
