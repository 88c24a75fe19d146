//! The worker side: connect back to the parent, then run the cases it asks
//! for against one plugin session.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::protocol::{self, CallAnswer, CallContextWire, FromWorker, ToWorker};
use crate::cases;
use crate::os::{self, ChannelStream};
use crate::plugin::call_context::{CallSettings, TraceParent};
use crate::plugin::host::LogForward;
use crate::plugin::session::{InstanceId, Session};
use crate::run::timeline;

/// The hidden `__worker` command line, and a forked worker's assignment
/// (the same, as JSON: `os::WorkerLaunch::assignment`).
#[derive(Debug, clap::Args, serde::Serialize, serde::Deserialize)]
pub struct WorkerArgs {
    /// The parent's loopback address to connect to (Windows).
    #[arg(long)]
    pub connect: Option<SocketAddr>,
    /// The descriptor the worker's end of its channel is on (Linux).
    #[arg(long)]
    pub channel_fd: Option<i32>,
    #[arg(long)]
    pub token: String,
    /// As bytes in the assignment: a path need not be UTF-8.
    #[arg(long)]
    #[serde(with = "path_bytes")]
    pub plugin: PathBuf,
}

/// A path in a forked worker's assignment, as the bytes the OS gave it.
mod path_bytes {
    use std::ffi::OsString;
    use std::path::{Path, PathBuf};

    pub(super) fn serialize<S: serde::Serializer>(
        path: &Path,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(path.as_os_str().as_encoded_bytes())
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<PathBuf, D::Error> {
        let bytes: Vec<u8> = serde::Deserialize::deserialize(deserializer)?;
        // SAFETY: the bytes are `as_encoded_bytes` of an `OsStr` of this
        // very binary on this platform: the parent that forked this
        // worker wrote them (`serialize` above), before any plugin ran.
        Ok(PathBuf::from(unsafe {
            OsString::from_encoded_bytes_unchecked(bytes)
        }))
    }
}

/// Serves batches of cases until the parent hangs up (or kills the worker,
/// which is how a worker normally ends).
pub(crate) fn serve(args: WorkerArgs) -> anyhow::Result<()> {
    timeline::mark("worker:serving");
    os::harden_worker();
    // A plugin's child that daemonizes is re-parented to us, where the
    // `shutdown` case can see it.
    os::become_subreaper();
    let stream = os::join_channel(args.connect, args.channel_fd)?;
    os::report_crashes_to(&stream);
    // Before the plugin is loaded (its constructors run then): from here
    // on, a signal or a trace aimed at the harness is refused and named.
    os::confine_worker();
    // Shared with the plugin's threads, which forward log lines during a
    // call: one message at a time, never two interleaved.
    let writer = Arc::new(Mutex::new(stream.try_clone()?));
    let reader = protocol::LineReader::new(stream);
    // Before the hello: after it, the parent may end this process at any
    // moment.
    timeline::mark("worker:hello");
    send(
        &writer,
        &FromWorker::Hello {
            token: args.token.clone(),
            pid: std::process::id(),
            protocol: protocol::PROTOCOL_VERSION,
        },
    );
    let in_flight = InFlight::default();
    let mut messages = Messages::Direct(reader);
    let mut session = Session::new(args.plugin);
    loop {
        let Some(message) = messages.next(&in_flight) else {
            // The parent hung up: nothing left to do.
            return Ok(());
        };
        match message {
            ToWorker::Run {
                first_seq,
                cases: batch,
                ledger,
                settings,
            } => {
                timeline::mark("worker:batch-received");
                run_batch(
                    &args.token,
                    &writer,
                    &mut session,
                    first_seq,
                    batch,
                    ledger,
                    &settings,
                );
            }
            ToWorker::Call {
                seq,
                method,
                input,
                input_hex,
                context,
            } => {
                // An embedding host's call: its output is not cut per call
                // (see `ToWorker::Call`), so no marker ends it.
                let inline = input_hex.is_some();
                let input = match input_hex {
                    Some(hex) => CallInput::Inline(hex),
                    None => CallInput::File(input),
                };
                let call = Call {
                    seq,
                    method: &method,
                    input,
                    context,
                };
                let answer = call_forwarding_logs(&mut session, &in_flight, &writer, call);
                if !inline {
                    mark_case_end(&args.token, seq);
                }
                send(&writer, &FromWorker::Called { seq, answer });
            }
            ToWorker::SaveState { seq } => {
                let answer = match session.save_state() {
                    Ok(Some(saved)) => returned(saved.status, &saved.output),
                    Ok(None) => CallAnswer::Stateless {},
                    Err(outcome) => CallAnswer::NotReady {
                        reason: outcome.reason,
                    },
                };
                send(&writer, &FromWorker::Called { seq, answer });
            }
            ToWorker::RestoreState { seq, state_hex } => {
                let answer = match unhex(&state_hex) {
                    None => CallAnswer::NotReady {
                        reason: "the state_hex is not hex of at most 1 MiB".into(),
                    },
                    Some(state) => match session.restore_state(&state) {
                        // A refusal's words are what the plugin logged.
                        Ok(Some(restored)) => CallAnswer::Returned {
                            status: restored.status,
                            output: String::new(),
                            output_len: 0,
                            error: match restored.status {
                                0 => None,
                                _ => restored.logged.last().map(|line| line.message.clone()),
                            },
                        },
                        Ok(None) => CallAnswer::Stateless {},
                        Err(outcome) => CallAnswer::NotReady {
                            reason: outcome.reason,
                        },
                    },
                };
                send(&writer, &FromWorker::Called { seq, answer });
            }
            // Taken by the reading thread while the call runs; one read
            // here came after its call had ended.
            ToWorker::Cancel { .. } => {}
            ToWorker::Describe { seq } => {
                let answer = match session.init().map(|()| session.info()) {
                    Ok(Some(info)) => CallAnswer::Described {
                        name: info.name,
                        version: info.version,
                        abi: Some(info.abi),
                        // Initialised above, so this reads what is known.
                        makes_instances: session.makes_instances().unwrap_or(false),
                    },
                    // Initialised, so validated: not reached.
                    Ok(None) => CallAnswer::NotReady {
                        reason: "the plugin gave no name".into(),
                    },
                    Err(outcome) => CallAnswer::NotReady {
                        reason: outcome.reason,
                    },
                };
                send(&writer, &FromWorker::Called { seq, answer });
            }
        }
    }
}

/// Sends `message` to the parent, or exits as a worker that lost its
/// channel.
fn send(writer: &Mutex<ChannelStream>, message: &FromWorker) {
    let mut writer = writer
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Err(error) = protocol::send(&mut *writer, message) {
        channel_lost(&error);
    }
}

/// One call of `plugcheck call` (a replay sends several to the same
/// instance). What the plugin logs goes to the parent as it is logged —
/// init's lines before the call — so the lines logged before a crash are
/// not lost with the worker.
fn call_forwarding_logs(
    session: &mut Session,
    in_flight: &InFlight,
    writer: &Arc<Mutex<ChannelStream>>,
    call: Call<'_>,
) -> CallAnswer {
    let Call {
        seq,
        method,
        input,
        context,
    } = call;
    // The deadline runs from the call's arrival: a start or a new
    // instance before the method runs is part of the time it has.
    let deadline = context
        .deadline_ms
        .map(|ms| Instant::now() + Duration::from_millis(ms));
    let bytes = match input.bytes() {
        Ok(bytes) => bytes,
        Err(reason) => return CallAnswer::NotReady { reason },
    };
    // Lines kept before this call: init's, when this call starts the
    // instance; otherwise ones the previous call's forwarder already sent
    // (a plugin thread logging between calls), which must not come twice.
    let starts_instance = session.host().is_none();
    // A failed init is said by the answer below.
    if session.init().is_ok() {
        let host = session.host().expect("initialised above");
        let kept = host.take_logs();
        for line in kept.into_iter().filter(|_| starts_instance) {
            send(writer, &FromWorker::Logged { seq, line });
        }
        let writer = Arc::clone(writer);
        host.forward_logs(LogForward(Box::new(move |line| {
            let line = line.clone();
            send(&writer, &FromWorker::Logged { seq, line });
        })));
    }
    let instance = match session.instance_by_key(context.instance.as_deref()) {
        Ok(instance) => instance,
        Err(outcome) => {
            return CallAnswer::NotReady {
                reason: outcome.reason,
            };
        }
    };
    let settings = CallSettings {
        deadline,
        traceparent: context.traceparent.as_deref().and_then(TraceParent::parse),
        // Registered when the call was read: a cancel that came while the
        // plugin started is not lost.
        cancel: Some(in_flight.flag(seq)),
    };
    let answer = call_answer_with(session, instance, method, &bytes, &settings);
    in_flight.end(seq);
    // Sent already; what the host keeps must not pile up over many calls.
    if let Some(host) = session.host() {
        host.take_logs();
    }
    answer
}

/// One `call` message, as the worker serves it.
struct Call<'a> {
    seq: u64,
    method: &'a str,
    input: CallInput,
    context: CallContextWire,
}

/// The call running now and its cancellation flag, shared with the thread
/// that reads the parent's messages: a `cancel` for it sets the flag while
/// the plugin runs.
#[derive(Clone, Default)]
struct InFlight(Arc<Mutex<Option<Running>>>);

/// A running call: its sequence number and its cancellation flag.
type Running = (u64, Arc<AtomicU32>);

impl InFlight {
    /// Call `seq` is read: its flag, unset, is the one a `cancel` sets.
    fn start(&self, seq: u64) {
        *self.lock() = Some((seq, Arc::new(AtomicU32::new(0))));
    }

    /// The flag of call `seq` (a fresh one if it was never started).
    fn flag(&self, seq: u64) -> Arc<AtomicU32> {
        let mut running = self.lock();
        match running.as_ref() {
            Some((running, flag)) if *running == seq => Arc::clone(flag),
            _ => {
                let flag = Arc::new(AtomicU32::new(0));
                *running = Some((seq, Arc::clone(&flag)));
                flag
            }
        }
    }

    /// Call `seq` has answered: a late `cancel` for it finds nothing.
    fn end(&self, seq: u64) {
        let mut running = self.lock();
        if running.as_ref().is_some_and(|(running, _)| *running == seq) {
            *running = None;
        }
    }

    /// Sets the flag of call `seq`, if it is the one running.
    fn cancel(&self, seq: u64) {
        if let Some((running, flag)) = self.lock().as_ref()
            && *running == seq
        {
            flag.store(1, Ordering::Release);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Running>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where the worker reads the parent's messages: on its own thread until
/// the first call its caller may cancel, then — since it must be read
/// while the call runs — from a thread of their own (a message then costs
/// a hop between threads, which calls that cannot be cancelled are
/// spared). A worker that runs cases never has that
/// thread: its threads are the plugin's to count (`shutdown`), and a plugin
/// that dies (a stack overflow under Wine, which then hangs) dies alone.
enum Messages {
    Direct(protocol::LineReader<ChannelStream>),
    /// What the thread read, or why it could not.
    Threaded(mpsc::Receiver<Result<ToWorker, String>>),
    /// Between the two, for the moment of the move.
    Moving,
}

impl Messages {
    /// The next message; `None` once the parent has hung up.
    fn next(&mut self, in_flight: &InFlight) -> Option<ToWorker> {
        if let Messages::Threaded(received) = self {
            // The thread ends when the parent hangs up; an error it read is
            // said here, between calls, not while a plugin runs.
            return match received.recv().ok()? {
                Ok(message) => Some(message),
                Err(error) => channel_lost(&error),
            };
        }
        let Messages::Direct(reader) = self else {
            unreachable!("`Moving` lasts only inside this function")
        };
        let message = match reader.receive::<ToWorker>(None) {
            Ok(message) => message?,
            Err(error) => channel_lost(&error),
        };
        if let ToWorker::Call { seq, context, .. } = &message
            && context.cancellable
        {
            in_flight.start(*seq);
            let Messages::Direct(reader) = std::mem::replace(self, Messages::Moving) else {
                unreachable!("matched above")
            };
            *self = Messages::Threaded(read_on_a_thread(reader, in_flight.clone()));
        }
        Some(message)
    }
}

/// Reads the parent's messages on a thread of their own, so a `cancel`
/// is taken while a call runs; the others are handed on in order. The
/// channel ends when the parent hangs up.
fn read_on_a_thread(
    mut reader: protocol::LineReader<ChannelStream>,
    in_flight: InFlight,
) -> mpsc::Receiver<Result<ToWorker, String>> {
    let (messages, received) = mpsc::channel();
    std::thread::Builder::new()
        .name("plugcheck-reader".into())
        .spawn(move || {
            loop {
                let message = match reader.receive::<ToWorker>(None) {
                    Ok(Some(ToWorker::Cancel { seq })) => {
                        in_flight.cancel(seq);
                        continue;
                    }
                    Ok(Some(message)) => message,
                    Ok(None) => return,
                    Err(error) => {
                        let _ = messages.send(Err(error.to_string()));
                        return;
                    }
                };
                if let ToWorker::Call { seq, .. } = &message {
                    in_flight.start(*seq);
                }
                if messages.send(Ok(message)).is_err() {
                    return;
                }
            }
        })
        .unwrap_or_else(|error| channel_lost(&error));
    received
}

/// Where a call's input is: a file (`plugcheck call`; none: empty), or
/// its bytes in the message, in hex (an embedding host's call).
enum CallInput {
    File(Option<PathBuf>),
    Inline(String),
}

impl CallInput {
    fn bytes(&self) -> Result<Vec<u8>, String> {
        match self {
            CallInput::File(None) => Ok(Vec::new()),
            CallInput::File(Some(path)) => read_call_input(path),
            CallInput::Inline(hex) => unhex(hex).ok_or_else(|| {
                format!(
                    "the call's input_hex is not hex of at most {} MiB",
                    super::limits::INLINE_CALL_INPUT_BYTES >> 20
                )
            }),
        }
    }
}

/// The bytes `text` spells in hex, exactly as many (the fuzz series hands
/// inputs exactly as long too); none for what is not hex or too long.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if !text.len().is_multiple_of(2) || text.len() / 2 > super::limits::INLINE_CALL_INPUT_BYTES {
        return None;
    }
    let digit = |byte: u8| (byte as char).to_digit(16).map(|d| d as u8);
    text.chunks_exact(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

/// Runs a batch of cases, answering each as it ends.
fn run_batch(
    token: &str,
    writer: &Mutex<ChannelStream>,
    session: &mut Session,
    first_seq: u64,
    batch: Vec<crate::catalog::CaseId>,
    mut ledger: crate::plan::Ledger,
    settings: &crate::outcome::CaseSettings,
) {
    for (seq, case) in (first_seq..).zip(batch) {
        let started = std::time::Instant::now();
        let result = match ledger.blocked(case) {
            Some(skip) => crate::outcome::CaseResult {
                outcome: skip,
                plugin: session.info(),
            },
            None => {
                let mut announce = |method: &str, input: u32| {
                    let calling = FromWorker::Calling {
                        seq,
                        method: method.to_owned(),
                        input,
                    };
                    send(writer, &calling);
                };
                cases::run(case, session, settings, &mut announce)
            }
        };
        let work_us = started.elapsed().as_micros() as u64;
        ledger.record(case, &result.outcome);
        mark_case_end(token, seq);
        send(
            writer,
            &FromWorker::Done {
                seq,
                case,
                result,
                work_us,
                has_loaded: session.has_loaded(),
                not_run: false,
            },
        );
    }
}

/// Inputs `plugcheck call` passes at most: a file, not a disk.
pub const MAX_CALL_INPUT: u64 = 256 << 20;

/// Output bytes a call answer carries at most (hex doubles them, and the
/// channel takes lines of a few MiB).
pub const MAX_CALL_OUTPUT: usize = 1 << 20;

/// `plugcheck call`'s work, in a worker or (`--in-process`) in the
/// command's own process: init the plugin, call one method with `input`.
pub fn call_answer(session: &mut Session, method: &str, input: &[u8]) -> CallAnswer {
    call_answer_with(
        session,
        InstanceId::FIRST,
        method,
        input,
        &CallSettings::default(),
    )
}

/// [`call_answer`] on `instance`, in a call of `settings`.
fn call_answer_with(
    session: &mut Session,
    instance: InstanceId,
    method: &str,
    input: &[u8],
    settings: &CallSettings,
) -> CallAnswer {
    match session.call_untrusted_with(instance, method, input, settings) {
        Err(outcome) => CallAnswer::NotReady {
            reason: outcome.reason,
        },
        Ok(None) => CallAnswer::NoSuchMethod {
            registered: session
                .host()
                .map(|host| host.with_registry(|r| r.method_names().into_iter().take(50).collect()))
                .unwrap_or_default(),
        },
        Ok(Some(Err(broken))) => CallAnswer::BrokenBuffer {
            status: broken.status,
            problem: broken.problem,
        },
        Ok(Some(Ok(answer))) => returned(answer.status, &answer.output),
    }
}

/// A status and an output, the output's first [`MAX_CALL_OUTPUT`] bytes
/// in hex.
fn returned(status: i32, output: &[u8]) -> CallAnswer {
    CallAnswer::Returned {
        status,
        output_len: output.len() as u64,
        output: hex(&output[..output.len().min(MAX_CALL_OUTPUT)]),
        error: None,
    }
}

/// The bytes of `plugcheck call`'s input file, bounded, exactly as long as
/// the input (in a worker, or in `call --in-process`); `call` made it a
/// regular file (stdin is copied into one), so this does not block.
pub fn read_call_input(path: &Path) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let cannot = |error: std::io::Error| format!("cannot read `{}`: {error}", path.display());
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = Vec::new();
    file.take(MAX_CALL_INPUT + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    // Exactly as long as the input, as the fuzz series hands it.
    bytes.shrink_to_fit();
    if bytes.len() as u64 > MAX_CALL_INPUT {
        return Err(format!(
            "`{}` is larger than {} MiB, more than a method input",
            path.display(),
            MAX_CALL_INPUT >> 20
        ));
    }
    Ok(bytes)
}

pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// The channel to the parent broke under us: the plugin closed, replaced or
/// wrote into a descriptor it did not open. Says so and exits with the code
/// the parent turns into that reason.
fn channel_lost(error: &dyn std::fmt::Display) -> ! {
    let _ = writeln!(
        std::io::stderr(),
        "plugcheck worker: lost the channel to the harness: {error}"
    );
    std::process::exit(protocol::EXIT_CHANNEL_LOST)
}

/// Flushes what the plugin printed and writes the case-end marker to both
/// streams, so the parent attributes output to the right case.
fn mark_case_end(token: &str, seq: u64) {
    os::flush_c_stdio();
    let marker = protocol::case_end_marker(token, seq);
    // A plugin may have closed our stdout or stderr: then there is no output
    // to attribute, and nothing to do about the error.
    let _ = std::io::stdout().lock().write_all(marker.as_bytes());
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().lock().write_all(marker.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_input_is_hex_of_exactly_its_bytes_within_the_bound() {
        assert_eq!(unhex("00ff7A"), Some(vec![0, 255, 0x7a]));
        assert_eq!(unhex(""), Some(Vec::new()));
        assert_eq!(unhex(&hex(b"round\0trip")), Some(b"round\0trip".to_vec()));
        for broken in ["0", "0g", "+1", "é0", " 0"] {
            assert_eq!(unhex(broken), None, "{broken:?}");
        }
        let bound = super::super::limits::INLINE_CALL_INPUT_BYTES;
        assert_eq!(unhex(&"ab".repeat(bound)).map(|b| b.len()), Some(bound));
        assert_eq!(unhex(&"ab".repeat(bound + 1)), None);
    }
}
