//! `plugcheck call`: calls to one plugin instance, and what came back —
//! each call's answer, what the plugin logged during it, and what it
//! printed. One method and one input, or (`--replay`) the calls since init
//! that `check` saved for a finding, made again in order: a crash that
//! needs earlier calls reproduces only with them.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use super::shared::say;
use crate::inspect::kind::{self, PluginKind};
use crate::plugin::session::Session;
use crate::postmortem::replay::Replay;
use crate::report::{CapturedOutput, LogLine};
use crate::worker::choice::{self, Choice};
use crate::worker::workspace::Workspace;
use crate::worker::{self, CallAnswer, Exchange, OnInterrupt, Worker, WorkerScope};
use crate::{postmortem::symbolize, text};

/// Exit codes of `plugcheck call`.
mod exit {
    /// The (last) method returned 0.
    pub(super) const RETURNED_OK: u8 = 0;
    /// The method returned an error status, handed back a broken buffer,
    /// crashed or hung.
    pub(super) const METHOD_FAILED: u8 = 1;
}

/// The largest input `call` reads: the worker's bound, said up front.
const MAX_INPUT: u64 = worker::MAX_CALL_INPUT;

/// Frames of a crash shown when none is in the plugin.
const FRAMES_WITHOUT_PLUGIN: usize = 8;

/// Output bytes shown at most; the rest is counted.
const SHOWN_OUTPUT: usize = 4096;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 the (last) method returned 0; 1 it returned an error status, handed back a broken buffer, crashed or hung; 2 usage or harness error.\n\n\
A method whose name starts with `-` goes after `--`: plugcheck call PLUGIN -- --name\n\n\
Under a debugger, use --in-process so the plugin runs (and crashes) in the process the debugger holds:\n  gdb --args plugcheck call --in-process PLUGIN METHOD --input FILE\n  lldb -- plugcheck call --in-process PLUGIN METHOD --input FILE\n  windbg plugcheck.exe call --in-process PLUGIN METHOD --input FILE"
)]
pub(super) struct CallArgs {
    /// The plugin library.
    plugin: PathBuf,
    /// The method to call, by the name the plugin registered.
    #[arg(required_unless_present = "replay")]
    method: Option<String>,
    /// The input: a file, or `-` for standard input [default: empty].
    #[arg(long, value_name = "FILE|-", conflicts_with = "replay")]
    input: Option<PathBuf>,
    /// Make the calls of a replay file in order, in one plugin instance:
    /// what `check` saves when `fuzz-methods` finds a crash, a hang or a
    /// broken buffer (the calls since init that led to it).
    #[arg(long, value_name = "FILE", conflicts_with = "method")]
    replay: Option<PathBuf>,
    /// Load and call the plugin in this process instead of an isolated
    /// worker: for running under gdb, lldb or WinDbg. A crash then ends
    /// this process, and nothing bounds a hang.
    #[arg(long)]
    in_process: bool,
    /// Time each call (the first with load and init) may take in a worker.
    #[arg(long, default_value = crate::outcome::DEFAULT_TIMEOUT, value_parser = humantime::parse_duration)]
    timeout: Duration,
}

/// One call to make: a method, its input file (none: empty), and how the
/// input is said.
struct Step {
    method: String,
    input: Option<PathBuf>,
    said: String,
}

pub(super) fn run(args: CallArgs) -> anyhow::Result<u8> {
    let plugin = std::path::absolute(&args.plugin)
        .with_context(|| format!("cannot make `{}` an absolute path", args.plugin.display()))?;
    if args.in_process && matches!(kind::of(&plugin), PluginKind::GoNative(_)) {
        bail!(
            "`{}` is a Go-native plugin (-buildmode=plugin): it loads only into a Go program, not into this process; run `plugcheck call` without --in-process (a Go worker calls it)",
            plugin.display()
        );
    }
    // Standard input is copied to a file first: the worker reads a file,
    // and a pipe is read once.
    // The copy of standard input lives here, which an interrupt empties
    // too (as it does the worker's directory).
    let scratch = Workspace::take("plugcheck-call-")
        .context("cannot create the call's temporary directory")?;
    let mut stdin_copy = None;
    let steps = match (&args.replay, &args.method) {
        (Some(replay), _) => replay_steps(replay, &plugin)?,
        (None, Some(method)) => vec![one_step(
            method,
            args.input.as_deref(),
            scratch.path(),
            &mut stdin_copy,
        )?],
        (None, None) => bail!("name a method to call, or a replay file with --replay"),
    };
    if steps.len() == 1 {
        say(&format!(
            "calling `{}` of {} with {}\n",
            text::one_line(&steps[0].method),
            plugin.display(),
            steps[0].said
        ));
    }
    if args.in_process {
        return Ok(in_process(plugin, &steps));
    }
    let exe = std::env::current_exe().context("cannot find the plugcheck binary to re-execute")?;
    // The worker that can load it: this binary, or the Go worker.
    let program = match choice::for_plugin(&plugin, &exe) {
        Choice::Worker(program) => program,
        Choice::Refused(outcome) => bail!("{}", outcome.reason),
    };
    let scope = WorkerScope::enter(OnInterrupt::exit(
        "plugcheck: interrupted; the worker and its processes were killed",
    ))?;
    let mut worker = Worker::spawn(&program.exe, &plugin, &[])?;
    let mut code = exit::RETURNED_OK;
    for (at, step) in steps.iter().enumerate() {
        announce(&steps, at);
        let called = worker.call(&step.method, step.input.as_deref(), args.timeout);
        // A worker Ctrl-C killed is not the plugin's doing: nothing shown.
        scope.halt_if_interrupted();
        show_logs(&called.logs, called.unkept_logs);
        let last = at + 1 == steps.len();
        match called.ended {
            Ok(answer) => {
                code = show_answer(&answer, last);
                if stops(&answer) {
                    break;
                }
            }
            Err(ended) => {
                code = show_death(*ended, &step.method, &plugin, args.timeout);
                break;
            }
        }
    }
    let (_, outputs) = worker.finish();
    for (at, output) in outputs.iter().enumerate() {
        let during = match steps.len() {
            1 => String::new(),
            _ => format!(" during call {}", at + 1),
        };
        show_output(output, &during);
    }
    // The worker's teardown and the orphans' reaping, before the
    // directory they may use goes.
    drop(scope);
    drop(stdin_copy);
    drop(scratch);
    Ok(code)
}

/// The steps in this process (`--in-process`): a crash ends it, which is
/// the point under a debugger.
fn in_process(plugin: PathBuf, steps: &[Step]) -> u8 {
    let mut session = Session::new(plugin);
    let mut code = exit::RETURNED_OK;
    for (at, step) in steps.iter().enumerate() {
        announce(steps, at);
        let answer = match &step.input {
            Some(path) => match worker::read_call_input(path) {
                Ok(bytes) => worker::call_answer(&mut session, &step.method, &bytes),
                Err(reason) => CallAnswer::NotReady { reason },
            },
            None => worker::call_answer(&mut session, &step.method, &[]),
        };
        if let Some(host) = session.host() {
            show_logs(&host.take_logs(), 0);
        }
        code = show_answer(&answer, at + 1 == steps.len());
        if stops(&answer) {
            break;
        }
    }
    code
}

/// In a replay, the line that says which call comes next.
fn announce(steps: &[Step], at: usize) {
    if steps.len() > 1 {
        say(&format!(
            "call {}/{}: `{}` with {}\n",
            at + 1,
            steps.len(),
            text::one_line(&steps[at].method),
            steps[at].said
        ));
    }
}

/// Whether the calls after this answer cannot be made as the replay says.
fn stops(answer: &CallAnswer) -> bool {
    matches!(
        answer,
        CallAnswer::NoSuchMethod { .. } | CallAnswer::NotReady { .. }
    )
}

/// The one call of `plugcheck call PLUGIN METHOD [--input FILE|-]`.
fn one_step(
    method: &str,
    input: Option<&Path>,
    scratch: &Path,
    stdin_copy: &mut Option<tempfile::NamedTempFile>,
) -> anyhow::Result<Step> {
    let (input, said) = match input {
        None => (None, "no input (0 bytes)".to_owned()),
        Some(path) if path.as_os_str() == "-" => {
            let copy = stdin_copy.insert(copy_stdin(scratch)?);
            let len = copy.as_file().metadata()?.len();
            (
                Some(copy.path().to_owned()),
                format!("{len} byte(s) from stdin"),
            )
        }
        Some(path) => {
            let file = regular_file(path)?;
            let len = std::fs::metadata(&file)?.len();
            (Some(file), format!("{len} byte(s) from {}", path.display()))
        }
    };
    Ok(Step {
        method: method.to_owned(),
        input,
        said,
    })
}

/// The calls of a replay file, each input checked before the first call.
fn replay_steps(path: &Path, plugin: &Path) -> anyhow::Result<Vec<Step>> {
    let replay = Replay::read(path).map_err(anyhow::Error::msg)?;
    let mut steps = Vec::with_capacity(replay.calls.len());
    for (at, call) in replay.calls.iter().enumerate() {
        let (input, said) = match call.input_path(path) {
            None => (None, "no input (0 bytes)".to_owned()),
            Some(input) => {
                let file = regular_file(&input).with_context(|| {
                    format!("call {} of the replay `{}`", at + 1, path.display())
                })?;
                let len = std::fs::metadata(&file)?.len();
                let name = input.file_name().unwrap_or(input.as_os_str());
                (
                    Some(file),
                    // The replay file may come from anywhere: its names
                    // are shown escaped, like a plugin's text.
                    format!(
                        "{len} byte(s) from {}",
                        crate::text::one_line(&name.to_string_lossy())
                    ),
                )
            }
        };
        steps.push(Step {
            method: call.method.clone(),
            input,
            said,
        });
    }
    let left_out = match replay.left_out {
        0 => String::new(),
        n => format!(
            " (the {n} call(s) before them since init were left out when it was saved: it may not reproduce)"
        ),
    };
    say(&format!(
        "replaying {} call(s) from {} into one instance of {}{left_out}\n",
        steps.len(),
        path.display(),
        plugin.display()
    ));
    Ok(steps)
}

/// What the plugin logged during a call, as it logged it, escaped.
fn show_logs(logs: &[LogLine], unkept: u64) {
    if logs.is_empty() {
        return;
    }
    say("the plugin logged:\n");
    for line in logs {
        say(&format!(
            "  [{}] {}\n",
            level_name(line.level),
            text::one_line(&line.message)
        ));
    }
    if unkept > 0 {
        say(&format!("  … {unkept} more line(s) not kept\n"));
    }
}

/// A log level as the ABI names it; another number as itself.
fn level_name(level: i32) -> String {
    match level {
        1 => "error".into(),
        2 => "warn".into(),
        3 => "info".into(),
        4 => "debug".into(),
        5 => "trace".into(),
        other => format!("level {other}"),
    }
}

/// Says what came back; the output's bytes only for `last` (a replay's
/// earlier calls say their status and length).
fn show_answer(answer: &CallAnswer, last: bool) -> u8 {
    match answer {
        CallAnswer::Returned {
            status,
            output,
            output_len,
            error,
        } => {
            let bytes = unhex(output);
            let error = error
                .as_deref()
                .map(|error| format!(" (error: {})", text::one_line(error)))
                .unwrap_or_default();
            let shown = last && !bytes.is_empty();
            say(&format!(
                "returned {}{error} with {output_len} byte(s) of output{}\n",
                crate::plugin::session::status_text(*status),
                if shown { ":" } else { "" }
            ));
            if shown {
                say(&render_bytes(&bytes, *output_len));
            }
            if *status == 0 {
                exit::RETURNED_OK
            } else {
                exit::METHOD_FAILED
            }
        }
        CallAnswer::BrokenBuffer { status, problem } => {
            say(&format!(
                "returned {} with a broken output buffer: {}\n",
                crate::plugin::session::status_text(*status),
                text::one_line(problem)
            ));
            exit::METHOD_FAILED
        }
        CallAnswer::Panicked { panic } => {
            say(&format!(
                "panicked: {} (the Go worker recovered it; a host that does not recover dies)\n",
                text::one_line(panic)
            ));
            exit::METHOD_FAILED
        }
        CallAnswer::NoSuchMethod { registered } => {
            let names: Vec<String> = registered
                .iter()
                .map(|name| format!("`{}`", text::one_line(name)))
                .collect();
            say(&format!(
                "the plugin registers no such method; it registers {}\n",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            ));
            super::shared::exit::ERROR
        }
        CallAnswer::NotReady { reason } => {
            say(&format!(
                "the method could not be called: {}\n",
                text::one_line(reason)
            ));
            super::shared::exit::ERROR
        }
        // The answer to a state message, which `call` never sends: the
        // channel carried what the worker did not write.
        CallAnswer::Stateless {} => {
            say(
                "the worker answered the call with `stateless`, which answers only a state message\n",
            );
            super::shared::exit::ERROR
        }
        CallAnswer::Described { .. } => {
            say("the worker answered the call with `described`, which answers only a `describe`\n");
            super::shared::exit::ERROR
        }
    }
}

fn show_death(ended: Exchange, method: &str, plugin: &Path, timeout: Duration) -> u8 {
    let method = text::one_line(method);
    match ended {
        Exchange::Crashed {
            termination,
            stack,
            forbidden,
            ..
        } => {
            say(&format!(
                "the worker {} in `{method}`\n",
                termination.describe()
            ));
            if let Some(forbidden) = &forbidden {
                say(&format!(
                    "{}, which a plugin must never do; the call did not run\n",
                    crate::postmortem::death::forbidden_act(forbidden)
                ));
            }
            let frames = stack
                .map(|raw| symbolize::symbolize(&raw, plugin))
                .unwrap_or_default();
            // Down to the plugin's outermost frame: what lies beyond is
            // the harness calling it.
            let shown = frames
                .iter()
                .rposition(|frame| frame.in_plugin)
                .map_or(FRAMES_WITHOUT_PLUGIN, |last| last + 1)
                .min(frames.len());
            for (depth, frame) in frames[..shown].iter().enumerate() {
                let not_plugin = if frame.in_plugin {
                    ""
                } else {
                    "  [not the plugin]"
                };
                say(&format!(
                    "  #{depth:<2} {}{not_plugin}\n",
                    text::one_line(&frame.describe())
                ));
            }
            if frames.len() > shown {
                say(&format!(
                    "  … {} more frame(s) of the harness that called it\n",
                    frames.len() - shown
                ));
            }
        }
        Exchange::TimedOut { .. } => say(&format!(
            "`{method}` did not return within {}; the worker and its process tree were killed\n",
            humantime::format_duration(timeout)
        )),
        Exchange::ChannelAbused { problem } => say(&format!(
            "the plugin wrote into the harness's private channel ({}); the worker was killed\n",
            text::one_line(&problem)
        )),
        Exchange::Replaced { image } => say(&format!(
            "the plugin replaced the worker process with `{}` (exec); it was killed\n",
            text::one_line(&image)
        )),
        Exchange::Done { .. } => unreachable!("a call is not answered by a case"),
    }
    exit::METHOD_FAILED
}

/// What the plugin printed to `stream` during a call (`during` says which
/// one of a replay).
fn show_output(output: &CapturedOutput, during: &str) {
    for (stream, text) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        if text.is_empty() {
            continue;
        }
        say(&format!("the plugin printed to {stream}{during}:\n"));
        for line in text::keeping_lines(text).lines() {
            say(&format!("  | {line}\n"));
        }
    }
}

/// Output as text when it is (printable UTF-8), else as a hex dump; the
/// first [`SHOWN_OUTPUT`] bytes.
fn render_bytes(bytes: &[u8], total: u64) -> String {
    let shown = &bytes[..bytes.len().min(SHOWN_OUTPUT)];
    let more = match total.saturating_sub(shown.len() as u64) {
        0 => String::new(),
        more => format!("  … {more} more byte(s)\n"),
    };
    if let Ok(text) = std::str::from_utf8(shown) {
        let printable = text
            .chars()
            .all(|c| !c.is_control() || c == '\n' || c == '\t');
        if printable {
            let mut out: String = text::keeping_lines(text)
                .lines()
                .map(|line| format!("  {line}\n"))
                .collect();
            out.push_str(&more);
            return out;
        }
    }
    let mut out = String::new();
    for (row, chunk) in shown.chunks(16).enumerate() {
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let ascii: String = chunk
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        out.push_str(&format!(
            "  {:08x}  {:<47}  {ascii}\n",
            row * 16,
            hex.join(" ")
        ));
    }
    out.push_str(&more);
    out
}

fn unhex(text: &str) -> Vec<u8> {
    worker::unhex(text).unwrap_or_default()
}

/// `path`, absolute, if it is a regular file (a FIFO or a device would
/// block or never end).
fn regular_file(path: &Path) -> anyhow::Result<PathBuf> {
    let metadata = std::fs::metadata(path)
        .with_context(|| format!("cannot read the input `{}`", path.display()))?;
    if !metadata.is_file() {
        bail!(
            "the input `{}` is not a regular file; pipe it in with `--input -` instead",
            path.display()
        );
    }
    if metadata.len() > MAX_INPUT {
        bail!(
            "the input `{}` is larger than {} MiB, more than a method input",
            path.display(),
            MAX_INPUT >> 20
        );
    }
    Ok(std::path::absolute(path)?)
}

fn copy_stdin(scratch: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    let mut copy = tempfile::Builder::new()
        .prefix("input-")
        .tempfile_in(scratch)
        .context("cannot create a temporary file for standard input")?;
    let copied = std::io::copy(
        &mut std::io::stdin().lock().take(MAX_INPUT + 1),
        copy.as_file_mut(),
    )
    .context("cannot read standard input")?;
    if copied > MAX_INPUT {
        bail!(
            "standard input is larger than {} MiB, more than a method input",
            MAX_INPUT >> 20
        );
    }
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_output_prints_as_text_and_bytes_as_a_dump() {
        assert_eq!(render_bytes(b"hello\nworld", 11), "  hello\n  world\n");
        let dump = render_bytes(&[0, 1, 2, b'A'], 4);
        assert!(dump.starts_with("  00000000  00 01 02 41"), "{dump}");
        assert!(dump.trim_end().ends_with("...A"), "{dump}");
        let cut = render_bytes(b"abc", 10);
        assert!(cut.ends_with("  … 7 more byte(s)\n"), "{cut}");
    }

    #[test]
    fn escape_sequences_in_output_are_shown_not_played() {
        let shown = render_bytes(b"\x1b[2Jgone", 8);
        assert!(!shown.contains('\x1b'), "{shown:?}");
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(unhex("00ff10"), [0, 0xff, 0x10]);
    }
}
