//! What a worker's death says about the plugin: a worker that crashed,
//! hung, was replaced or abused its channel, turned into the outcome of the
//! case it died in. The cause comes from what the worker left behind: its
//! termination, its last output, the crashing thread's stack, and — in a
//! fuzz case — the call it was making, whose input is saved beside the
//! report with the calls since init that led to it and the command that
//! replays them.

use std::path::Path;
use std::time::Duration;

use crate::catalog::CaseId;
use crate::fuzz;
use crate::os::Termination;
use crate::outcome::Outcome;
use crate::report::{CapturedOutput, CaseReport, Fuzz, FuzzInput};
use crate::text::human_ms;
use crate::worker::{CallTrail, Exchange, Forbidden};
use crate::{postmortem::saved_input, postmortem::symbolize};

/// What the runner knows of the run, to explain a death.
pub(crate) struct Circumstances<'a> {
    pub case: CaseId,
    pub plugin: &'a Path,
    pub timeout: Duration,
    /// Settings the worker ran with (the fuzz seed and input count).
    pub settings: &'a crate::outcome::CaseSettings,
    /// Where an input that crashed or hung a method is saved.
    pub inputs_dir: Option<&'a Path>,
}

/// The outcome of the case a worker ended in (`ended` is not `Done`).
pub(crate) fn outcome(
    ended: Exchange,
    output: &CapturedOutput,
    context: &Circumstances<'_>,
) -> Outcome {
    let case = context.case;
    match ended {
        Exchange::Crashed {
            termination,
            calls,
            stack,
            forbidden,
        } => {
            let frames = stack
                .map(|raw| symbolize::symbolize(&raw, context.plugin))
                .unwrap_or_default();
            let finding = Finding::of(&calls, context);
            let mut place = finding.as_ref().map(Finding::place).unwrap_or_default();
            if let Some(frame) = crate::report::plugin_frame(&frames) {
                place.push_str(&format!(" at {}", frame.describe()));
            }
            let then = finding.as_ref().map(Finding::then).unwrap_or_default();
            let mut outcome = match forbidden {
                Some(forbidden) => tried_the_harness(case, termination, &forbidden, &place, &then),
                None => crashed(case, termination, output, &place, &then),
            };
            outcome.detail.stack = frames;
            if let Some(finding) = finding {
                outcome.detail.fuzz = Some(finding.fuzz);
            }
            outcome
        }
        Exchange::TimedOut { calls } => {
            let finding = Finding::of(&calls, context);
            let place = finding
                .as_ref()
                .map(|finding| format!(": {} did not return{}", finding.call(), finding.on()))
                .unwrap_or_else(|| waited_for_ever(case));
            let then = finding.as_ref().map(Finding::then).unwrap_or_default();
            let mut outcome = timed_out(case, context.timeout, &place, &then);
            if let Some(finding) = finding {
                outcome.detail.fuzz = Some(finding.fuzz);
            }
            outcome
        }
        Exchange::ChannelAbused { problem } => channel_abused(case, &problem),
        Exchange::Replaced { image } => replaced(case, &image),
        Exchange::Done { .. } => unreachable!("a worker that answered did not die"),
    }
}

/// The fuzz call a worker died in, with the calls that led to it saved.
struct Finding {
    fuzz: Fuzz,
    /// Why the input could not be saved, if it could not.
    unsaved: Option<String>,
}

impl Finding {
    /// The finding of the last call of `calls`; none if none was announced.
    fn of(calls: &CallTrail, context: &Circumstances<'_>) -> Option<Finding> {
        let call = calls.last()?;
        let seed = context.settings.seed;
        let mut found = FuzzInput {
            // Bounded by the trail: named by a message the plugin could
            // have forged.
            method: call.method.clone(),
            index: call.input,
            size: fuzz::input(seed, call.input).len() as u64,
            what: fuzz::describe(seed, call.input),
            saved: None,
            replay: None,
            replay_calls: None,
            left_out: None,
        };
        let unsaved = saved_input::save(
            &mut found,
            calls,
            context.plugin,
            context.inputs_dir,
            seed,
            context.timeout,
        )
        .err();
        Some(Finding {
            fuzz: Fuzz {
                seed: fuzz::seed_text(seed),
                inputs: context.settings.fuzz_inputs,
                methods: None,
                digest: None,
                refused: 0,
                unkept_logs: 0,
                input: Some(found),
            },
            unsaved,
        })
    }

    fn input(&self) -> &FuzzInput {
        self.fuzz.input.as_ref().expect("a finding has its input")
    }

    /// "`parse`"
    fn call(&self) -> String {
        format!("`{}`", crate::text::one_line(&self.input().method))
    }

    /// " on fuzz input #17 (4097 bytes of random bytes; seed 0x…)"
    fn on(&self) -> String {
        let input = self.input();
        format!(
            " on fuzz input #{} ({}; seed {})",
            input.index, input.what, self.fuzz.seed
        )
    }

    /// " in `parse` on fuzz input #17 (…)"
    fn place(&self) -> String {
        format!(" in {}{}", self.call(), self.on())
    }

    /// "; the 3 call(s) since init that led to it are saved in …; replay
    /// them with …"
    fn then(&self) -> String {
        saved_input::sentence(self.input(), self.unsaved.as_deref())
    }
}

/// What a forbidden call aimed at, in words: `kill(1, SIGSTOP)` from a
/// worker whose parent is 1 stops "its parent (the harness's supervisor of
/// this worker)"; -1 is every process it may signal.
pub fn forbidden_act(forbidden: &Forbidden) -> String {
    let call = crate::text::one_line(&forbidden.call);
    let name = call.split('(').next().unwrap_or_default();
    let arguments: Vec<&str> = call
        .split_once('(')
        .map(|(_, rest)| rest.trim_end_matches(')').split(", ").collect())
        .unwrap_or_default();
    // The target pid: the second argument of ptrace, the first of the rest.
    let target_at = usize::from(name == "ptrace");
    let target = arguments
        .get(target_at)
        .and_then(|pid| pid.trim().parse::<i64>().ok());
    let signal = arguments
        .iter()
        .skip(1)
        .find(|argument| argument.starts_with("SIG"));
    let whom = match target {
        Some(-1) => "every process it may signal (-1)".to_owned(),
        Some(pid) if pid == forbidden.parent => "its parent, the harness".to_owned(),
        Some(pid) if pid == -forbidden.parent => {
            "its parent's process group, the harness's".to_owned()
        }
        _ => "a process of the harness".to_owned(),
    };
    let verb = match (name, signal) {
        (_, Some(signal)) => format!("sent {signal} to {whom}"),
        ("ptrace", _) => format!("tried to trace {whom}"),
        ("process_vm_readv", _) => format!("tried to read the memory of {whom}"),
        ("process_vm_writev", _) => format!("tried to write into the memory of {whom}"),
        ("prlimit64", _) => format!("tried to change the resource limits of {whom}"),
        ("pidfd_open", _) => format!("tried to take a handle to {whom}"),
        _ => format!("tried to reach {whom}"),
    };
    // Pids outside a namespace differ from run to run: the call is shown
    // with what it named.
    let mut shown: Vec<String> = arguments.iter().map(|a| (*a).to_owned()).collect();
    if let (Some(pid), Some(slot)) = (target, shown.get_mut(target_at)) {
        if pid == forbidden.parent && pid != 1 {
            *slot = "getppid()".into();
        } else if pid != -1 && pid != 1 {
            *slot = "PID".into();
        }
    }
    let shown = format!("{name}({})", shown.join(", "));
    format!("the plugin {verb} (`{shown}`)")
}

/// The worker's filter trapped a call aimed at the harness (or at every
/// process): the plugin attacked its judge. The call never ran; the
/// worker died of it.
fn tried_the_harness(
    case: CaseId,
    termination: Termination,
    forbidden: &Forbidden,
    place: &str,
    then: &str,
) -> Outcome {
    Outcome::crashed(
        format!(
            "during `{case}`{place} {}, which a plugin must never do: the call did not run, and the worker {} there{then}; the harness carried on in a new worker",
            forbidden_act(forbidden),
            termination.describe()
        ),
        Some(termination),
    )
}

/// The plugin wrote into the harness's private channel. That is the
/// plugin's fault, not a crash: a `fail` that says what arrived.
fn channel_abused(case: CaseId, problem: &str) -> Outcome {
    Outcome::fail(format!(
        "during `{case}` the plugin wrote into the harness's private channel ({problem}); \
         a plugin must not write to descriptors it did not open; the worker was killed"
    ))
}

/// The plugin replaced the worker process with another program.
fn replaced(case: CaseId, image: &str) -> Outcome {
    Outcome::crashed(
        format!(
            "during `{case}` the plugin replaced the worker process with `{image}` (exec); \
             a plugin must not exec in its host's process; the process was killed"
        ),
        None,
    )
}

fn crashed(
    case: CaseId,
    termination: Termination,
    output: &CapturedOutput,
    place: &str,
    then: &str,
) -> Outcome {
    // A Rust host turns a stack overflow into SIGABRT after printing this;
    // the signal alone would hide the cause.
    let heap_corruption = matches!(
        termination,
        Termination::Exited { code } if code as u32 == HEAP_CORRUPTION
    );
    let cause = if output.stderr.contains("has overflowed its stack") {
        ": a stack overflow".to_owned()
    } else if let Some(message) = allocator_abort(&output.stderr) {
        format!(" on `{message}`{ALLOCATOR_ABORT}")
    } else if heap_corruption {
        ALLOCATOR_ABORT.to_owned()
    } else if output.stderr.contains("SIGSYS: bad system call") {
        // The Go worker under the filter: Go's own handler reports it.
        ": the plugin made a call the harness forbids (a signal, a trace or a memory access aimed at the harness, or a signal to every process); it did not run".to_owned()
    } else if let Some(go_abort) = go_runtime_abort(&output.stderr) {
        format!(": the Go runtime aborted on `{go_abort}`")
    } else if termination == (Termination::Exited { code: 0 }) {
        " without answering: the plugin ended the process (exit) or replaced it with a program that exited".to_owned()
    } else if termination
        == (Termination::Exited {
            code: i64::from(crate::worker::EXIT_CHANNEL_LOST),
        })
    {
        ": it lost its channel to the harness (the plugin closed or replaced a descriptor it did not open)".to_owned()
    } else {
        String::new()
    };
    Outcome::crashed(
        format!(
            "the worker {} during `{case}`{place}{cause}{then}; the harness carried on in a new worker",
            termination.describe()
        ),
        Some(termination),
    )
}

/// Windows' fail-fast code for a corrupted heap (`STATUS_HEAP_CORRUPTION`).
const HEAP_CORRUPTION: u32 = 0xC000_0374;

/// Why an allocator aborts inside a plugin, said once per plugin.
pub(crate) const ALLOCATOR_ABORT: &str = ": the C library's allocator rejected a pointer being freed. The host gives every buffer a plugin hands out (from save_state or a method) back to the plugin's own free_buf, so that buffer must be one the plugin allocated: not static storage, not a pointer into another allocation, not freed twice";

/// glibc's line when `free` or `realloc` meets a pointer it did not hand
/// out (`free(): invalid pointer`, `double free or corruption (out)`, …).
fn allocator_abort(stderr: &str) -> Option<&str> {
    stderr.lines().map(str::trim).find(|line| {
        [
            "free(): ",
            "munmap_chunk(): ",
            "double free or corruption",
            "realloc(): ",
        ]
        .iter()
        .any(|start| line.starts_with(start))
    })
}

/// Keeps `explanation` in the first case reason that carries it; later
/// reasons point back to that case instead of repeating it.
pub(crate) fn explain_once(cases: &mut [CaseReport], explanation: &str) {
    let mut first: Option<CaseId> = None;
    for case in cases.iter_mut() {
        if !case.reason.contains(explanation) {
            continue;
        }
        match first {
            None => first = Some(case.id),
            Some(first) => {
                case.reason = case.reason.replace(
                    explanation,
                    &format!(" (the same allocator abort as in `{first}`)"),
                );
            }
        }
    }
}

/// The first line of a Go runtime's crash report, if `stderr` holds one.
/// An unrecovered panic or a fatal runtime error in a Go library ends the
/// whole process (SIGABRT in a c-shared library, exit code 2 in a Go
/// program) after printing `panic: …` or `fatal error: …` and the
/// goroutines' stacks: that line is the cause, the signal is not.
fn go_runtime_abort(stderr: &str) -> Option<&str> {
    if !stderr.contains("\ngoroutine ") {
        return None;
    }
    stderr
        .lines()
        .find(|line| line.starts_with("panic: ") || line.starts_with("fatal error: "))
        .map(str::trim_end)
}

/// What a case that calls the wait probe says when it never returned.
fn waited_for_ever(case: CaseId) -> String {
    match case {
        CaseId::DeadlineVisible | CaseId::CancelHonoured => format!(
            ": `{}` saw neither its deadline nor its cancellation",
            crate::plugin::call_context::WAIT_PROBE
        ),
        _ => String::new(),
    }
}

fn timed_out(case: CaseId, timeout: Duration, place: &str, then: &str) -> Outcome {
    let after_ms = timeout.as_millis() as u64;
    Outcome::timed_out(
        format!(
            "`{case}` did not finish within {}{place}{then}; the worker and its process tree were killed",
            human_ms(after_ms)
        ),
        after_ms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_go_crash_report_gives_its_first_line_as_the_cause() {
        let report = "panic: runtime error: invalid memory address or nil pointer dereference\n\
                      [signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x7f70f89058c7]\n\
                      \n\
                      goroutine 17 [running, locked to thread]:\n";
        assert_eq!(
            go_runtime_abort(report),
            Some("panic: runtime error: invalid memory address or nil pointer dereference")
        );
        let fatal = "fatal error: concurrent map writes\n\ngoroutine 5 [running]:\n";
        assert_eq!(
            go_runtime_abort(fatal),
            Some("fatal error: concurrent map writes")
        );
    }

    #[test]
    fn a_forbidden_call_is_told_by_what_it_aimed_at() {
        let said = |call: &str, parent: i64| {
            forbidden_act(&Forbidden {
                call: call.into(),
                parent,
            })
        };
        assert_eq!(
            said("kill(1, SIGSTOP)", 1),
            "the plugin sent SIGSTOP to its parent, the harness (`kill(1, SIGSTOP)`)"
        );
        assert_eq!(
            said("kill(4242, SIGTERM)", 4242),
            "the plugin sent SIGTERM to its parent, the harness (`kill(getppid(), SIGTERM)`)"
        );
        assert_eq!(
            said("kill(-1, SIGUSR2)", 1),
            "the plugin sent SIGUSR2 to every process it may signal (-1) (`kill(-1, SIGUSR2)`)"
        );
        assert_eq!(
            said("kill(977, SIGSTOP)", 1),
            "the plugin sent SIGSTOP to a process of the harness (`kill(PID, SIGSTOP)`)"
        );
        assert_eq!(
            said("ptrace(PTRACE_ATTACH, 1)", 1),
            "the plugin tried to trace its parent, the harness (`ptrace(PTRACE_ATTACH, 1)`)"
        );
        assert_eq!(
            said("process_vm_writev(77, ...)", 77),
            "the plugin tried to write into the memory of its parent, the harness (`process_vm_writev(getppid(), ...)`)"
        );
        assert_eq!(
            said("kill(-77, SIGINT)", 77),
            "the plugin sent SIGINT to its parent's process group, the harness's (`kill(PID, SIGINT)`)"
        );
    }

    #[test]
    fn each_forbidden_call_says_what_it_tried() {
        let said = |call: &str| {
            forbidden_act(&Forbidden {
                call: call.into(),
                parent: 77,
            })
        };
        assert!(
            said("process_vm_readv(77, ...)").contains("tried to read the memory of its parent")
        );
        assert!(
            said("prlimit64(77, ...)")
                .contains("tried to change the resource limits of its parent")
        );
        assert!(said("pidfd_open(77, 0)").contains("tried to take a handle to its parent"));
        assert!(said("tgkill(77, 77)").contains("tried to reach its parent"));
    }

    /// `crashed`'s reason for a worker that died with `stderr` and
    /// `termination`.
    fn crash_reason(termination: Termination, stderr: &str) -> String {
        let output = CapturedOutput {
            stderr: stderr.into(),
            ..CapturedOutput::default()
        };
        crashed(CaseId::FuzzMethods, termination, &output, "", "").reason
    }

    #[test]
    fn a_crash_names_its_cause_from_the_exit_and_the_output() {
        let exited = |code: i64| Termination::Exited { code };
        assert!(
            crash_reason(exited(0), "").contains("without answering: the plugin ended the process")
        );
        assert!(!crash_reason(exited(3), "").contains("without answering"));
        let lost = i64::from(crate::worker::EXIT_CHANNEL_LOST);
        assert!(crash_reason(exited(lost), "").contains("it lost its channel to the harness"));
        assert!(!crash_reason(exited(0), "").contains("lost its channel"));
        let freed = crash_reason(exited(134), "noise\n  free(): invalid pointer\n");
        assert!(freed.contains("on `free(): invalid pointer`"), "{freed}");
        assert!(freed.contains(ALLOCATOR_ABORT));
        assert!(!crash_reason(exited(134), "free of charge\n").contains(ALLOCATOR_ABORT));
        let heap = crash_reason(exited(i64::from(HEAP_CORRUPTION)), "");
        assert!(heap.contains(ALLOCATOR_ABORT), "{heap}");
    }

    #[test]
    fn an_explanation_is_given_once_and_later_cases_point_back() {
        let case = |id: CaseId, reason: &str| CaseReport {
            id,
            family: id.family(),
            verdict: crate::report::verdict::Verdict::Crashed,
            reason: reason.into(),
            detail: Default::default(),
            output: CapturedOutput::default(),
            duration_us: 0,
            work_us: None,
            waiver: None,
            attempts: Vec::new(),
        };
        let mut cases = vec![
            case(CaseId::Init, "ok"),
            case(CaseId::FuzzMethods, &format!("crashed{ALLOCATOR_ABORT}")),
            case(
                CaseId::StateRoundtrip,
                &format!("crashed too{ALLOCATOR_ABORT}"),
            ),
        ];
        explain_once(&mut cases, ALLOCATOR_ABORT);
        assert_eq!(cases[0].reason, "ok");
        assert!(cases[1].reason.ends_with(ALLOCATOR_ABORT));
        assert_eq!(
            cases[2].reason,
            "crashed too (the same allocator abort as in `fuzz-methods`)"
        );
    }

    #[test]
    fn a_plugin_printing_panic_without_goroutines_is_not_a_go_crash() {
        assert_eq!(go_runtime_abort("panic: not really\n"), None);
        assert_eq!(go_runtime_abort(""), None);
    }
}
