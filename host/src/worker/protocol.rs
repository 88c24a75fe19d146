//! Messages between parent and worker: one JSON object per line over the
//! loopback socket.
//!
//! The plugin shares the worker's process, so it can write into this
//! channel too. The reader trusts nothing it gets: a line longer than
//! [`MAX_LINE_BYTES`] is refused (not buffered without end), and a read
//! waits only until a deadline fixed when the wait began, so a plugin that
//! trickles a byte a second cannot stretch it.

use std::io::{Read, Write};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::catalog::CaseId;
use crate::outcome::{CaseResult, CaseSettings};
use crate::plan::Ledger;
use crate::report::LogLine;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub(super) enum ToWorker {
    /// Run these cases in order, numbered from `first_seq`, skipping those
    /// whose prerequisites the ledger (and the batch so far) rule out; one
    /// `Done` comes back per case.
    Run {
        first_seq: u64,
        cases: Vec<CaseId>,
        ledger: Ledger,
        settings: CaseSettings,
    },
    /// `plugcheck call`: init the plugin and call `method` with the bytes
    /// of the file `input`, or (an embedding host's call, which has its
    /// input in memory) the bytes `input_hex` spells — at most
    /// [`super::limits::INLINE_CALL_INPUT_BYTES`]; neither: empty input.
    /// One `Called` comes back. An inline call's output is not cut from
    /// the next's: the worker writes no case-end marker after it (two
    /// writes, and two wake-ups of the parent's readers, per call).
    Call {
        seq: u64,
        method: String,
        input: Option<std::path::PathBuf>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input_hex: Option<String>,
        /// What an ABI 1.1 method is told of its call (absent: nothing):
        /// the time left to its deadline, the caller's `traceparent`, and
        /// which instance takes it (by the caller's key, made on first
        /// use; absent: the first instance).
        #[serde(default, skip_serializing_if = "CallContextWire::is_empty")]
        context: CallContextWire,
    },
    /// The call `seq` is cancelled by its caller: the worker sets the
    /// call's cancellation flag, which an ABI 1.1 method reads, and the
    /// call's `Called` comes back as usual (the parent kills the worker if
    /// it does not come soon). A worker reads it while the call runs; one
    /// for a call no longer running is ignored.
    Cancel { seq: u64 },
    /// An embedding host's reload or checkpoint: the plugin's state, as
    /// its `save_state` hands it over; one `Called` comes back (the state
    /// as the output, or `stateless`).
    SaveState { seq: u64 },
    /// An embedding host's new or restarted instance takes the state an
    /// earlier one saved (hex, at most `INLINE_CALL_INPUT_BYTES`): one
    /// `Called` comes back (`restore_state`'s status, or `stateless`).
    RestoreState { seq: u64, state_hex: String },
    /// An embedding host's question, after a worker starts: which plugin
    /// is this (its name and version, once it has loaded and initialised)?
    /// One `Called` comes back (`described`). A host reloads a plugin only
    /// with a build of the same name, as the reload engine does in process.
    Describe { seq: u64 },
}

/// [`ToWorker::Call`]'s context of an ABI 1.1 call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CallContextWire {
    /// Milliseconds left to the call's deadline when it was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The instance the call goes to, by the caller's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The caller may cancel it: the worker reads on while it runs (from
    /// this call on, on a thread of its own; before the first such call,
    /// a message costs no hop between threads).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancellable: bool,
}

impl CallContextWire {
    fn is_empty(&self) -> bool {
        *self == CallContextWire::default()
    }
}

/// The worker protocol's version, which a worker says in its `hello`: a
/// worker program of another plugcheck release (an application pointing
/// `WorkerProgram::Plugcheck` at an older installed one) is refused at
/// its hello, by name, instead of failing on the first message it does
/// not know. 0 is a worker from before the version was said; 2 added
/// a call's context (ABI 1.1) and `cancel`. The Go
/// worker's `protocolVersion` is the same number (its protocol test
/// checks the golden hello, which the test below holds to this).
pub(super) const PROTOCOL_VERSION: u32 = 2;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub(super) enum FromWorker {
    /// First message: proves the connection comes from the worker the
    /// parent started (the token was on its command line), and says which
    /// protocol it speaks.
    Hello {
        token: String,
        pid: u32,
        #[serde(default)]
        protocol: u32,
    },
    Done {
        seq: u64,
        case: CaseId,
        result: CaseResult,
        /// Time spent in the case itself, inside the worker.
        work_us: u64,
        /// Whether this worker has loaded the plugin by now.
        has_loaded: bool,
        /// The worker did not run the case: it stopped its batch after a
        /// case that failed (the Go worker, which leaves skipping to the
        /// parent's ledger). The Rust worker never sets it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        not_run: bool,
    },
    /// The worker is about to call `method` with fuzz input `input` in case
    /// `seq`: if it dies or hangs now, that call did it.
    Calling {
        seq: u64,
        method: String,
        input: u32,
    },
    Called {
        seq: u64,
        answer: CallAnswer,
    },
    /// A line the plugin logged during call `seq` (`plugcheck call`), sent
    /// as it is logged: lines logged before a crash reach the parent too.
    Logged {
        seq: u64,
        line: LogLine,
    },
    /// Written by the worker's crash handler as it dies: the crashing
    /// thread's return addresses and what was mapped where, for the parent
    /// to symbolize (see `postmortem/symbolize.rs`).
    Stack(RawStack),
    /// Written by the worker's seccomp handler as it dies: the plugin made
    /// a call the worker may not make (a signal, a trace, a memory access
    /// aimed at the worker's parent, the harness's processes or every
    /// process), which did not run. `parent` is the worker's parent as the
    /// worker names it (1: the init of its PID namespace).
    Forbidden {
        call: String,
        parent: i64,
    },
}

/// What one method call gave back (`plugcheck call`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum CallAnswer {
    Returned {
        status: i32,
        /// The output's first bytes, in hex.
        output: String,
        /// The whole output's length.
        output_len: u64,
        /// A Go-native method's error message (Go errors have no code).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A Go-native method panicked; the Go worker recovered it.
    Panicked {
        panic: String,
    },
    BrokenBuffer {
        status: i32,
        problem: String,
    },
    /// The plugin registers no such method; these are (some of) the ones it
    /// does.
    NoSuchMethod {
        registered: Vec<String>,
    },
    /// The method could not be called: the input could not be read, or
    /// the plugin did not load or init.
    NotReady {
        reason: String,
    },
    /// A `save-state` or `restore-state` to a plugin that keeps no state
    /// (no `save_state`/`restore_state`; Go: not a `plugcheck.Stateful`).
    Stateless {},
    /// A `describe`'s answer: the plugin's name and version, as it gave
    /// them (bounded as `metadata` bounds them).
    Described {
        name: String,
        version: String,
        /// The ABI the plugin was built against (`1.1`): from 1.1 on, a
        /// method can see a cancellation, so the parent gives a cancelled
        /// call a moment to end before it kills the worker. None (a
        /// worker before protocol 2): it cannot.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        abi: Option<String>,
        /// Whether the plugin makes instances (ABI 1.1's create_instance;
        /// Go: NewInstance): only then does a call by key make one, whose
        /// state the worker alone holds. A plugin without serves every key
        /// from its one instance.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        makes_instances: bool,
    },
}

/// A dying worker's stack, unsymbolized.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RawStack {
    /// Innermost first: the faulting instruction, then return addresses.
    pub frames: Vec<u64>,
    /// Linux: the text of `/proc/self/maps`, read in the signal handler.
    #[serde(default)]
    pub maps: String,
    /// Windows: the module of each frame, from the loader.
    #[serde(default)]
    pub modules: Vec<Module>,
}

/// A module mapped into the dying worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Module {
    pub path: String,
    pub start: u64,
    pub end: u64,
    /// The file offset mapped at `start` (0 for a whole PE image).
    #[serde(default)]
    pub offset: u64,
}

pub(super) fn send<T: Serialize>(writer: &mut impl Write, message: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    line.push(b'\n');
    writer.write_all(&line)?;
    writer.flush()
}

/// The longest line the channel takes: far above the largest real answer
/// (a case result with its log lines is well under 1 MiB).
pub(super) const MAX_LINE_BYTES: usize = crate::worker::limits::CHANNEL_LINE_BYTES;

/// The worker's exit code when it lost its channel to the parent (a write
/// failed): the plugin closed or replaced a descriptor it did not open.
pub const EXIT_CHANNEL_LOST: i32 = crate::worker::limits::EXIT_CHANNEL_LOST;

/// Why no message came.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReceiveError {
    #[error("no complete message before the deadline")]
    Deadline,
    #[error("more than {} MiB arrived without a line end, more than any message", MAX_LINE_BYTES >> 20)]
    TooLong { received: usize },
    #[error("a line that is not a message of the protocol: {0}")]
    Invalid(serde_json::Error),
    #[error("reading the channel failed: {0}")]
    Io(std::io::Error),
}

/// A stream that can wait for input until a deadline.
pub(super) trait TimedRead: Read {
    /// Makes the next reads give up after `timeout` (`None`: wait forever).
    fn set_timeout(&self, timeout: Option<std::time::Duration>) -> std::io::Result<()>;
}

impl TimedRead for crate::os::ChannelStream {
    fn set_timeout(&self, timeout: Option<std::time::Duration>) -> std::io::Result<()> {
        self.set_read_timeout(timeout)
    }
}

impl TimedRead for &[u8] {
    fn set_timeout(&self, _: Option<std::time::Duration>) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads JSON lines, bounded in length and in time.
pub(super) struct LineReader<R> {
    inner: R,
    /// Bytes read past the last line handed out.
    pending: Vec<u8>,
}

impl<R: TimedRead> LineReader<R> {
    pub(super) fn new(inner: R) -> LineReader<R> {
        LineReader {
            inner,
            pending: Vec::new(),
        }
    }

    /// Reads one message, waiting until `deadline` at most (`None`: no
    /// deadline); `Ok(None)` at end of stream.
    pub(super) fn receive<T: for<'de> Deserialize<'de>>(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<T>, ReceiveError> {
        let mut chunk = [0u8; 16 * 1024];
        let mut scanned = 0;
        loop {
            if let Some(newline) = self.pending[scanned..].iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=scanned + newline).collect();
                return serde_json::from_slice(&line)
                    .map(Some)
                    .map_err(ReceiveError::Invalid);
            }
            scanned = self.pending.len();
            if self.pending.len() > MAX_LINE_BYTES {
                return Err(ReceiveError::TooLong {
                    received: self.pending.len(),
                });
            }
            let timeout = match deadline {
                None => None,
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => Some(left),
                    _ => return Err(ReceiveError::Deadline),
                },
            };
            self.inner.set_timeout(timeout).map_err(ReceiveError::Io)?;
            match self.inner.read(&mut chunk) {
                Ok(0) if self.pending.is_empty() => return Ok(None),
                // A partial line, then the end: the writer died mid-line.
                Ok(0) => return Ok(None),
                Ok(read) => self.pending.extend_from_slice(&chunk[..read]),
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(ReceiveError::Deadline);
                }
                Err(error) => return Err(ReceiveError::Io(error)),
            }
        }
    }
}

/// The line the worker writes to stdout and stderr after each case, so the
/// parent can cut the plugin's output into per-case pieces. The leading
/// newline ends whatever line the plugin left open; the parent removes it.
pub(super) fn case_end_marker(token: &str, seq: u64) -> String {
    format!("\n@@plugcheck:{token}:{seq}@@\n")
}

/// The sequence number of a marker line (without the leading newline).
pub(super) fn parse_marker(token: &str, line: &[u8]) -> Option<u64> {
    let line = std::str::from_utf8(line).ok()?;
    let rest = line.strip_prefix("@@plugcheck:")?.strip_prefix(token)?;
    rest.strip_prefix(':')?.strip_suffix("@@\n")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_need_the_token() {
        let marker = case_end_marker("abc", 7);
        let line = &marker.as_bytes()[1..];
        assert_eq!(parse_marker("abc", line), Some(7));
        assert_eq!(parse_marker("xyz", line), None);
        assert_eq!(parse_marker("abc", b"@@plugcheck:abc:7@@"), None);
    }

    /// The golden messages both workers' tests read
    /// (`host/protocol/examples/`, see its README): read into the
    /// parent's types and written back, each must come out as it went in,
    /// so a field renamed, added or dropped on one side fails here or in
    /// the Go worker's protocol_test.go. Every file there is read (a new
    /// one too), and every kind of message and of call answer has one.
    #[test]
    fn the_golden_messages_read_and_write_back_unchanged() {
        fn round_trip<T: Serialize + serde::de::DeserializeOwned>(
            value: &serde_json::Value,
            name: &str,
        ) -> T {
            let read: T = serde_json::from_value(value.clone())
                .unwrap_or_else(|error| panic!("examples/{name} does not read: {error}"));
            assert_eq!(
                &serde_json::to_value(&read).unwrap(),
                value,
                "examples/{name} does not write back as it was read: the parent and the golden file differ"
            );
            read
        }
        // Exhaustive, so a new kind of message cannot be added without
        // being named here; each named kind needs a golden example.
        fn to_worker(message: &ToWorker) -> &'static str {
            match message {
                ToWorker::Run { .. } => "run",
                ToWorker::Call { .. } => "call",
                ToWorker::SaveState { .. } => "save-state",
                ToWorker::RestoreState { .. } => "restore-state",
                ToWorker::Describe { .. } => "describe",
                ToWorker::Cancel { .. } => "cancel",
            }
        }
        fn from_worker(message: &FromWorker) -> &'static str {
            match message {
                FromWorker::Hello { .. } => "hello",
                FromWorker::Done { .. } => "done",
                FromWorker::Calling { .. } => "calling",
                FromWorker::Called { answer, .. } => match answer {
                    CallAnswer::Returned { .. } => "called returned",
                    CallAnswer::Panicked { .. } => "called panicked",
                    CallAnswer::BrokenBuffer { .. } => "called broken-buffer",
                    CallAnswer::NoSuchMethod { .. } => "called no-such-method",
                    CallAnswer::NotReady { .. } => "called not-ready",
                    CallAnswer::Stateless {} => "called stateless",
                    CallAnswer::Described { .. } => "called described",
                },
                FromWorker::Logged { .. } => "logged",
                FromWorker::Stack(_) => "stack",
                FromWorker::Forbidden { .. } => "forbidden",
            }
        }
        const KINDS: [&str; 19] = [
            "run",
            "call",
            "cancel",
            "save-state",
            "restore-state",
            "describe",
            "called stateless",
            "called described",
            "hello",
            "done",
            "calling",
            "called returned",
            "called panicked",
            "called broken-buffer",
            "called no-such-method",
            "called not-ready",
            "logged",
            "stack",
            "forbidden",
        ];
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("protocol/examples");
        let mut seen = std::collections::BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).unwrap();
            let value: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|error| panic!("examples/{name} is no JSON: {error}"));
            if value["type"] == "hello" {
                assert_eq!(
                    value["protocol"], PROTOCOL_VERSION,
                    "examples/{name}: the golden hello says another protocol than PROTOCOL_VERSION"
                );
            }
            let kind = match value["type"].as_str() {
                Some("run" | "call" | "cancel" | "save-state" | "restore-state" | "describe") => {
                    to_worker(&round_trip::<ToWorker>(&value, &name))
                }
                _ => from_worker(&round_trip::<FromWorker>(&value, &name)),
            };
            assert!(
                KINDS.contains(&kind),
                "examples/{name}: `{kind}` is not in KINDS"
            );
            seen.insert(kind);
        }
        for kind in KINDS {
            assert!(
                seen.contains(kind),
                "no golden example in host/protocol/examples/ of `{kind}`"
            );
        }
    }

    #[test]
    fn messages_are_json_lines() {
        let mut buffer = Vec::new();
        let batch = ToWorker::Run {
            first_seq: 3,
            cases: vec![CaseId::Init, CaseId::Selftest],
            ledger: Ledger::default(),
            settings: CaseSettings::default(),
        };
        send(&mut buffer, &batch).unwrap();
        assert_eq!(buffer.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(
            buffer.starts_with(
                b"{\"type\":\"run\",\"first_seq\":3,\"cases\":[\"init\",\"selftest\"]"
            )
        );
        let parsed: Option<ToWorker> = LineReader::new(&buffer[..]).receive(None).unwrap();
        let Some(ToWorker::Run {
            first_seq, cases, ..
        }) = parsed
        else {
            panic!("a batch comes back as a batch");
        };
        assert_eq!(
            (first_seq, cases),
            (3, vec![CaseId::Init, CaseId::Selftest])
        );
        let empty: Option<ToWorker> = LineReader::new(&b""[..]).receive(None).unwrap();
        assert!(empty.is_none(), "end of stream is not an error");
    }

    #[test]
    fn a_line_without_end_is_refused_at_the_bound_not_buffered() {
        let flood = vec![b'x'; MAX_LINE_BYTES + 100_000];
        let mut reader = LineReader::new(&flood[..]);
        match reader.receive::<ToWorker>(None) {
            Err(ReceiveError::TooLong { received }) => {
                assert!(received > MAX_LINE_BYTES && received < MAX_LINE_BYTES + 64 * 1024)
            }
            other => panic!("expected TooLong, got {other:?}"),
        }
    }

    #[test]
    fn a_trickle_does_not_extend_the_deadline() {
        use std::io::Write as _;
        use std::sync::atomic::{AtomicUsize, Ordering};
        // A byte every 20 ms for 4 s against a 200 ms deadline: the reader
        // must give up while the trickle still runs. Judged by how far the
        // trickle got, not by a wall-clock bound a busy machine breaks.
        const BYTES: usize = 200;
        let written = std::sync::Arc::new(AtomicUsize::new(0));
        let (stream, mut theirs) = crate::os::channel_pair().unwrap();
        let writer = std::thread::spawn({
            let written = written.clone();
            move || {
                let stream = &mut theirs;
                for _ in 0..BYTES {
                    if stream.write_all(b"x").is_err() {
                        return;
                    }
                    written.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
        });
        let deadline = Instant::now() + std::time::Duration::from_millis(200);
        let result = LineReader::new(stream).receive::<ToWorker>(Some(deadline));
        let trickled = written.load(Ordering::SeqCst);
        assert!(matches!(result, Err(ReceiveError::Deadline)), "{result:?}");
        assert!(
            trickled < BYTES,
            "the reader waited for the whole trickle ({trickled} bytes) past its deadline"
        );
        writer.join().unwrap();
    }
}
