//! `plugcheck call`: one method, one input, and what came back. The replay
//! command a crash line prints, and a way to poke at a plugin by hand.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};

use super::say;
use crate::plugin_kind::{self, PluginKind};
use crate::report::CapturedOutput;
use crate::session::Session;
use crate::worker::{self, CallAnswer, Exchange, Worker};
use crate::worker_choice::{self, Choice};
use crate::{symbolize, text};

/// Exit codes of `plugcheck call`.
mod exit {
    /// The method returned 0.
    pub const RETURNED_OK: u8 = 0;
    /// The method returned an error status, handed back a broken buffer,
    /// crashed or hung.
    pub const METHOD_FAILED: u8 = 1;
}

/// The largest input `call` reads: the worker's bound, said up front.
const MAX_INPUT: u64 = worker::MAX_CALL_INPUT;

/// Frames of a crash shown when none is in the plugin.
const FRAMES_WITHOUT_PLUGIN: usize = 8;

/// Output bytes shown at most; the rest is counted.
const SHOWN_OUTPUT: usize = 4096;

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit codes: 0 the method returned 0; 1 it returned an error status, handed back a broken buffer, crashed or hung; 2 usage or harness error.\n\n\
Under a debugger, use --in-process so the plugin runs (and crashes) in the process the debugger holds:\n  gdb --args plugcheck call --in-process PLUGIN METHOD --input FILE\n  lldb -- plugcheck call --in-process PLUGIN METHOD --input FILE\n  windbg plugcheck.exe call --in-process PLUGIN METHOD --input FILE"
)]
pub struct CallArgs {
    /// The plugin library.
    plugin: PathBuf,
    /// The method to call, by the name the plugin registered.
    method: String,
    /// The input: a file, or `-` for standard input [default: empty].
    #[arg(long, value_name = "FILE|-")]
    input: Option<PathBuf>,
    /// Load and call the plugin in this process instead of an isolated
    /// worker: for running under gdb, lldb or WinDbg. A crash then ends
    /// this process, and nothing bounds a hang.
    #[arg(long)]
    in_process: bool,
    /// Time the call (with load and init) may take in a worker.
    #[arg(long, default_value = crate::outcome::DEFAULT_TIMEOUT, value_parser = humantime::parse_duration)]
    timeout: Duration,
}

pub fn run(args: CallArgs) -> anyhow::Result<u8> {
    let plugin = std::path::absolute(&args.plugin)
        .with_context(|| format!("cannot make `{}` an absolute path", args.plugin.display()))?;
    if args.in_process && matches!(plugin_kind::of(&plugin), PluginKind::GoNative(_)) {
        bail!(
            "`{}` is a Go-native plugin (-buildmode=plugin): it loads only into a Go program, not into this process; run `plugcheck call` without --in-process (a Go worker calls it)",
            plugin.display()
        );
    }
    // Standard input is copied to a file first: the worker reads a file,
    // and a pipe is read once.
    let stdin_copy;
    let input: Option<PathBuf> = match &args.input {
        None => None,
        Some(path) if path.as_os_str() == "-" => {
            stdin_copy = copy_stdin()?;
            Some(stdin_copy.path().to_owned())
        }
        Some(path) => Some(regular_file(path)?),
    };
    let input_len = match &input {
        Some(path) => std::fs::metadata(path)?.len(),
        None => 0,
    };
    say(&format!(
        "calling `{}` of {} with {}\n",
        text::one_line(&args.method),
        plugin.display(),
        match (&args.input, input_len) {
            (None, _) => "no input (0 bytes)".to_owned(),
            (Some(path), len) if path.as_os_str() == "-" => format!("{len} byte(s) from stdin"),
            (Some(path), len) => format!("{len} byte(s) from {}", path.display()),
        }
    ));
    if args.in_process {
        let bytes = match &input {
            Some(path) => worker::read_call_input(path).map_err(anyhow::Error::msg)?,
            None => Vec::new(),
        };
        let mut session = Session::new(plugin);
        let answer = worker::call_answer(&mut session, &args.method, &bytes);
        return Ok(show_answer(&answer));
    }
    let exe = std::env::current_exe().context("cannot find the plugcheck binary to re-execute")?;
    // The worker that can load it: this binary, or the Go worker.
    let program = match worker_choice::for_plugin(&plugin, &exe) {
        Choice::Worker(program) => program,
        Choice::Refused(outcome) => bail!("{}", outcome.reason),
    };
    os_prepare();
    let mut worker = Worker::spawn(&program.exe, &plugin, &[])?;
    let result = worker.call(&args.method, input.as_deref(), args.timeout);
    let (_, outputs) = worker.finish();
    let code = match result {
        Ok(answer) => show_answer(&answer),
        Err(ended) => show_death(*ended, &args.method, &plugin, args.timeout),
    };
    if let Some(output) = outputs.first() {
        show_output(output);
    }
    worker::wait_for_teardown();
    worker::reap_leftovers();
    Ok(code)
}

/// Orphans a plugin leaves come to us, to be killed.
fn os_prepare() {
    crate::os::become_subreaper();
}

fn show_answer(answer: &CallAnswer) -> u8 {
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
            say(&format!(
                "returned {}{error} with {output_len} byte(s) of output{}\n",
                crate::session::status_text(*status),
                if bytes.is_empty() { "" } else { ":" }
            ));
            say(&render_bytes(&bytes, *output_len));
            if *status == 0 {
                exit::RETURNED_OK
            } else {
                exit::METHOD_FAILED
            }
        }
        CallAnswer::BrokenBuffer { status, problem } => {
            say(&format!(
                "returned {} with a broken output buffer: {}\n",
                crate::session::status_text(*status),
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
            super::exit::ERROR
        }
        CallAnswer::NotReady { reason } => {
            say(&format!(
                "the method could not be called: {}\n",
                text::one_line(reason)
            ));
            super::exit::ERROR
        }
    }
}

fn show_death(ended: Exchange, method: &str, plugin: &Path, timeout: Duration) -> u8 {
    let method = text::one_line(method);
    match ended {
        Exchange::Crashed {
            termination, stack, ..
        } => {
            say(&format!(
                "the worker {} in `{method}`\n",
                termination.describe()
            ));
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

fn show_output(output: &CapturedOutput) {
    for (stream, text) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        if text.is_empty() {
            continue;
        }
        say(&format!("the plugin printed to {stream}:\n"));
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
    text.as_bytes()
        .chunks(2)
        .filter_map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
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

fn copy_stdin() -> anyhow::Result<tempfile::NamedTempFile> {
    let mut copy = tempfile::Builder::new()
        .prefix("plugcheck-input-")
        .tempfile()
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
