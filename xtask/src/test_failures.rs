//! The last lines of a failed test run: which tests failed, the kind of
//! each failure and its first words, so `conformance` and `ci` end by
//! naming the check, never with a generic cause. The tests run with their
//! output streamed as usual; a copy is kept and read for libtest's
//! `---- NAME stdout ----` sections and cargo's "to rerun pass" lines.

use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// What kind of check failed, as far as its name and message tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A fixture got another verdict than `fixtures/fixtures.toml` intends.
    Verdict,
    /// A normalized report differs from its snapshot.
    Snapshot,
    /// A run took longer than the test allows.
    Timing,
    /// A tool or a fixture the test needs is not here.
    MissingTool,
    /// Any other assertion of a test.
    Assertion,
}

impl Kind {
    /// From a failed test's name and panic message.
    fn of(test: &str, message: &str) -> Kind {
        let lower = message.to_lowercase();
        if test.contains("intended_verdicts") || lower.contains("verdict(s) differ") {
            Kind::Verdict
        } else if test.contains("matches_its_snapshot") || lower.contains("snapshots differ") {
            Kind::Snapshot
        } else if lower.contains("took") && (lower.contains("allow") || lower.contains("may add")) {
            Kind::Timing
        } else if lower.contains("not built here")
            || lower.contains("not installed")
            || lower.contains("apt-get install")
        {
            Kind::MissingTool
        } else {
            Kind::Assertion
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Verdict => "verdict",
            Kind::Snapshot => "snapshot",
            Kind::Timing => "timing",
            Kind::MissingTool => "missing tool",
            Kind::Assertion => "test assertion",
        })
    }
}

/// One failed test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `hostile::hostile_plugins_…` where the test binary is known.
    pub test: String,
    pub kind: Kind,
    /// The first lines of its panic message.
    pub message: String,
}

/// Lines of a panic message shown in the summary; the run's output above
/// has the rest.
const MESSAGE_LINES: usize = 6;
/// Output kept for reading back: the failure sections come last.
const KEPT_BYTES: usize = 8 << 20;

/// The failed tests in a libtest run's output, in order.
pub fn parse(output: &str) -> Vec<Failure> {
    let lines: Vec<&str> = output.lines().collect();
    let mut failures = Vec::new();
    // Failures not yet tied to their binary (cargo names it after them).
    let mut pending = 0;
    for (index, line) in lines.iter().enumerate() {
        if let Some(test) = line
            .strip_prefix("---- ")
            .and_then(|rest| rest.strip_suffix(" stdout ----"))
        {
            let message = panic_message(&lines[index + 1..]);
            failures.push(Failure {
                test: test.to_owned(),
                kind: Kind::of(test, &message),
                message,
            });
            pending += 1;
        } else if let Some(binary) = rerun_target(line) {
            let start = failures.len() - pending;
            for failure in &mut failures[start..] {
                failure.test = format!("{binary}::{}", failure.test);
            }
            pending = 0;
        }
    }
    failures
}

/// The test binary in cargo's "to rerun pass `-p PKG --test NAME`" (or
/// `--lib`, `--bin NAME`).
fn rerun_target(line: &str) -> Option<String> {
    let (_, rest) = line.split_once("to rerun pass `")?;
    let args = rest.split('`').next()?;
    let words: Vec<&str> = args.split_whitespace().collect();
    let position = words
        .iter()
        .position(|word| matches!(*word, "--test" | "--bin" | "--lib"))?;
    Some(match words[position] {
        "--lib" => words
            .get(position.checked_sub(1)?)
            .map_or("lib".to_owned(), |package| format!("{package} (lib)")),
        _ => (*words.get(position + 1)?).to_owned(),
    })
}

/// The panic message in a failure section: the lines after its last
/// "panicked at …:" (a test that caught earlier panics, as the snapshot
/// test catches each snapshot's, fails on the last), up to the backtrace
/// or the next section.
fn panic_message(section: &[&str]) -> String {
    let end = section
        .iter()
        .position(|line| line.starts_with("---- ") || *line == "failures:")
        .unwrap_or(section.len());
    let section = &section[..end];
    let start = section
        .iter()
        .rposition(|line| line.contains("panicked at "))
        .map_or(end, |at| at + 1);
    let mut message = Vec::new();
    for line in &section[start..] {
        if line.starts_with("stack backtrace:") || line.starts_with("note: ") {
            break;
        }
        message.push((*line).to_owned());
        if message.len() == MESSAGE_LINES {
            message.push("…".to_owned());
            break;
        }
    }
    while message.last().is_some_and(|line| line.trim().is_empty()) {
        message.pop();
    }
    message.join("\n")
}

/// Why a test run failed, for the error chain's last lines.
#[derive(Debug)]
pub struct TestsFailed {
    /// What ran: "linux conformance tests".
    pub what: String,
    /// How the run ended ("exit status: 101").
    pub status: String,
    pub failures: Vec<Failure>,
}

impl fmt::Display for TestsFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.failures.is_empty() {
            return write!(
                f,
                "{} failed ({}) before any test failed: they did not build or run; the first `error` above says why",
                self.what, self.status
            );
        }
        write!(f, "{}: {} test(s) failed:", self.what, self.failures.len())?;
        for failure in &self.failures {
            write!(f, "\n  {} ({}):", failure.test, failure.kind)?;
            for line in failure.message.lines() {
                write!(f, "\n      {line}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for TestsFailed {}

/// `cargo ARGS…` in the shell's directory, with the shell's `CI` (`ci`
/// sets it on its shell, which a duct command, unlike xshell's, does not
/// inherit; insta writes no snapshot where it is set). `INSTA_UPDATE` is
/// the caller's to set: in duct the first `env` given wins.
pub fn cargo(sh: &xshell::Shell, args: &[&str]) -> duct::Expression {
    let command = duct::cmd("cargo", args).dir(sh.current_dir());
    match sh.var("CI") {
        Ok(ci) => command.env("CI", ci),
        Err(_) => command,
    }
}

/// How long the output is still read after the test process ended: a
/// process it left behind (a plugin's escapee, a lingering wineserver)
/// may hold the pipe open; the run does not wait for it.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// Runs a test command with its output streamed to stdout, and on failure
/// returns [`TestsFailed`] naming each failed test. `what` says what ran.
/// The run ends when the process does (plus [`DRAIN_AFTER_EXIT`]), not when
/// the last holder of its output pipe lets go.
pub fn run(expression: duct::Expression, what: &str) -> anyhow::Result<()> {
    run_into(expression, what, &mut std::io::stdout())
}

/// [`run`], with the output written to `out`: a run beside another keeps
/// its output whole, to be printed when it ends.
pub fn run_into(
    expression: duct::Expression,
    what: &str,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let reader = Arc::new(expression.stderr_to_stdout().unchecked().reader()?);
    let (lines, received) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn({
        let reader = Arc::clone(&reader);
        move || {
            let mut buffered = BufReader::new(&*reader);
            loop {
                let mut line = Vec::new();
                match buffered.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) if lines.send(line).is_err() => return,
                    Ok(_) => {}
                }
            }
        }
    });
    let mut kept: Vec<u8> = Vec::new();
    let mut ended: Option<(Instant, std::process::ExitStatus)> = None;
    loop {
        match received.recv_timeout(Duration::from_millis(50)) {
            Ok(line) => {
                out.write_all(&line)?;
                kept.extend_from_slice(&line);
                if kept.len() > KEPT_BYTES {
                    kept.drain(..KEPT_BYTES / 2);
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if ended.is_none() {
            ended = reader
                .try_wait()?
                .map(|output| (Instant::now(), output.status));
        }
        if ended.is_some_and(|(at, _)| at.elapsed() > DRAIN_AFTER_EXIT) {
            break;
        }
    }
    out.flush()?;
    let status = match ended {
        Some((_, status)) => status,
        None => {
            reader
                .try_wait()?
                .ok_or_else(|| anyhow::anyhow!("{what}: the output ended but the process did not"))?
                .status
        }
    };
    if status.success() {
        return Ok(());
    }
    Err(TestsFailed {
        what: what.to_owned(),
        status: status.to_string(),
        failures: parse(&String::from_utf8_lossy(&kept)),
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `cargo test --quiet --no-fail-fast` printed for the timing
    /// failure of the first-contact issue, and a verdict failure beside it.
    const OUTPUT: &str = r#"
running 5 tests
. 1/5
hostile_plugins_alone_and_together_leave_nothing_and_stay_bounded --- FAILED
...
failures:

---- hostile_plugins_alone_and_together_leave_nothing_and_stay_bounded stdout ----

thread 'hostile_plugins_alone_and_together_leave_nothing_and_stay_bounded' (1024) panicked at fixtures/manifest/tests/hostile.rs:110:5:
["many-methods.so"]: took 11.407833796s, allowed 6s
stack backtrace:
   0: __rustc::rust_begin_unwind

failures:
    hostile_plugins_alone_and_together_leave_nothing_and_stay_bounded

test result: FAILED. 4 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 19.60s

error: test failed, to rerun pass `-p plugcheck-fixtures --test hostile`

running 4 tests
F...
failures:

---- every_fixture_gets_its_intended_verdicts stdout ----

thread 'every_fixture_gets_its_intended_verdicts' (77) panicked at fixtures/manifest/tests/conformance.rs:100:5:
1 verdict(s) differ from fixtures/fixtures.toml:
  linux go-native-forged load: expected fail, got fail (a Go-native plugin: no Go toolchain)
note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace

---- every_fixture_matches_its_snapshot stdout ----

thread 'every_fixture_matches_its_snapshot' (78) panicked at insta/src/runtime.rs:1:1:
snapshot assertion for 'go-native-forged@linux' failed in line 198

thread 'every_fixture_matches_its_snapshot' (78) panicked at fixtures/manifest/tests/conformance.rs:249:5:
snapshots differ for: go-native-forged
review with `cargo xtask conformance --update` and `git diff fixtures/snapshots`

failures:
    every_fixture_gets_its_intended_verdicts
    every_fixture_matches_its_snapshot

error: test failed, to rerun pass `-p plugcheck-fixtures --test conformance`
error: 2 targets failed:
"#;

    #[test]
    fn each_failed_test_is_named_with_its_binary_kind_and_message() {
        let failures = parse(OUTPUT);
        let named: Vec<(&str, Kind)> = failures
            .iter()
            .map(|failure| (failure.test.as_str(), failure.kind))
            .collect();
        assert_eq!(
            named,
            [
                (
                    "hostile::hostile_plugins_alone_and_together_leave_nothing_and_stay_bounded",
                    Kind::Timing
                ),
                (
                    "conformance::every_fixture_gets_its_intended_verdicts",
                    Kind::Verdict
                ),
                (
                    "conformance::every_fixture_matches_its_snapshot",
                    Kind::Snapshot
                ),
            ]
        );
        assert_eq!(
            failures[0].message,
            r#"["many-methods.so"]: took 11.407833796s, allowed 6s"#
        );
        assert!(failures[1].message.contains("linux go-native-forged load"));
        assert!(
            failures[2]
                .message
                .starts_with("snapshots differ for: go-native-forged")
        );
        assert!(!failures[1].message.contains("RUST_BACKTRACE"));
    }

    #[test]
    fn the_summary_names_every_failure_or_says_nothing_ran() {
        let failed = TestsFailed {
            what: "linux conformance tests".into(),
            status: "exit status: 101".into(),
            failures: parse(OUTPUT),
        };
        let text = failed.to_string();
        assert!(
            text.starts_with("linux conformance tests: 3 test(s) failed:"),
            "{text}"
        );
        assert!(text.contains(
            "hostile::hostile_plugins_alone_and_together_leave_nothing_and_stay_bounded (timing):"
        ));
        assert!(text.contains("every_fixture_matches_its_snapshot (snapshot):"));
        let none = TestsFailed {
            failures: Vec::new(),
            ..failed
        };
        assert!(none.to_string().contains("did not build or run"), "{none}");
    }

    #[test]
    fn kinds_come_from_the_message() {
        assert_eq!(
            Kind::of(
                "t",
                "fixture `x` was not built here: apt-get install golang-go"
            ),
            Kind::MissingTool
        );
        assert_eq!(
            Kind::of("t", "assertion `left == right` failed"),
            Kind::Assertion
        );
        assert_eq!(
            Kind::of(
                "t",
                "[\"a.so\"]: took 3s; its plugins' own time was 1s and the harness may add 1s"
            ),
            Kind::Timing
        );
    }

    #[test]
    fn rerun_lines_name_the_binary() {
        assert_eq!(
            rerun_target("error: test failed, to rerun pass `-p xtask --bin xtask`").as_deref(),
            Some("xtask")
        );
        assert_eq!(
            rerun_target("error: test failed, to rerun pass `-p plugcheck --lib`").as_deref(),
            Some("plugcheck (lib)")
        );
        assert_eq!(rerun_target("error: 2 targets failed:"), None);
    }
}
