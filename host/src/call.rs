//! What a call gives back, in either isolation mode: one answer type and
//! one error type, so an application's code does not change with the
//! mode a plugin is configured to run in. Every text a plugin handed over
//! (a method name, a panic, a crash's frame) is printed escaped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::text::one_line;
use plugcheck_abi::status;

/// What a call answered in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    pub output: Vec<u8>,
    pub took: Duration,
}

/// What a call tells an ABI 1.1 method besides its input and deadline:
/// which instance takes it, by the application's key (one per tenant, say;
/// made on first use; `None`: the plugin's first instance), and the
/// caller's trace context, which the plugin's log lines then carry. A
/// plugin of ABI 1.0 (or of the Go-native contract 1.0) sees neither and
/// serves every key from its one instance. Instances by key are the serving version's: a reload or a
/// restart carries the first instance's state, and makes the keyed ones
/// afresh; so a plugin that holds some is not unloaded when idle (nor
/// evicted, nor its worker stopped), which would lose them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallOptions {
    pub instance: Option<String>,
    /// A W3C `traceparent`, or a bare trace id (hex, up to 32 digits,
    /// as the host's own ids are), which the host makes one of.
    pub trace: Option<String>,
}

impl CallOptions {
    /// A call to the first instance, in the caller's trace `trace_id`.
    pub fn traced(trace_id: &str) -> CallOptions {
        CallOptions {
            instance: None,
            trace: Some(trace_id.to_owned()),
        }
    }
}

/// A caller's way to cancel its call while it runs (a request abandoned,
/// a client gone): clone it to the call, keep one, `cancel()` from any
/// thread. The flag is the one an ABI 1.1 method reads (its call
/// context's `cancelled`): a method that honours it returns soon, with
/// `CANCELLED`, and the call fails with [`CallError::Cancelled`]. In worker
/// mode, a call that has not ended half a second after the flag was set
/// (every ABI 1.0 method, which cannot see it) has its worker killed with
/// its tree; the next call starts another worker at once — a cancellation
/// is the caller's, not a death of the plugin's: no restart pause, no
/// breaker fault. In process a call cannot be interrupted: one cancelled
/// before it starts is not made, one already running ends when its method
/// returns.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicU32>);

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Cancels the call (or calls) this was given to.
    pub fn cancel(&self) {
        self.0.store(1, Ordering::SeqCst);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst) != 0
    }

    /// The flag a worker's wait looks at, and an in-process 1.1 method.
    pub(crate) fn flag(&self) -> &Arc<AtomicU32> {
        &self.0
    }
}

/// Why a call did not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error(
        "`{}` has no method `{}`; it registered: {}",
        one_line(plugin),
        one_line(method),
        known.iter().map(|name| one_line(name)).collect::<Vec<_>>().join(", ")
    )]
    NoSuchMethod {
        plugin: String,
        method: String,
        known: Vec<String>,
    },
    /// The method returned an error status: the plugin's answer to this
    /// input (a Go-native method's error comes with its message).
    #[error(
        "`{}` refused the call: it returned {status} ({}){}",
        one_line(method),
        status_name(*status),
        message.as_deref().map(|m| format!(": {}", one_line(m))).unwrap_or_default()
    )]
    Refused {
        method: String,
        status: i32,
        message: Option<String>,
    },
    /// The method panicked and the plugin's boundary (or the Go worker)
    /// caught it: a defect in the plugin, which may have left its state
    /// half-changed.
    #[error(
        "`{}` panicked (caught at the plugin's boundary): a defect in the plugin, not an answer{}",
        one_line(method),
        panic.as_deref().map(|p| format!(": {}", one_line(p))).unwrap_or_default()
    )]
    Panicked {
        method: String,
        panic: Option<String>,
    },
    /// The method answered after its deadline. In process it cannot be
    /// stopped, only reported; its answer is here.
    #[error(
        "`{}` answered after {took:?}, over its {deadline:?} deadline (in process a call cannot be stopped, only reported)",
        one_line(method)
    )]
    Overran {
        method: String,
        took: Duration,
        deadline: Duration,
        output: Vec<u8>,
    },
    /// Worker mode: the method did not answer by its deadline; the worker
    /// and everything it started were killed, and a new one starts (after
    /// the backoff's pause) for the next call.
    #[error(
        "`{}` did not answer within {deadline:?}: its worker was killed and will be restarted",
        one_line(method)
    )]
    TimedOut { method: String, deadline: Duration },
    /// Worker mode: the worker died in the call (how, and where in the
    /// plugin); a new one starts for the next call.
    #[error(
        "the plugin's worker died in `{}`: {}; it will be restarted",
        one_line(method),
        one_line(how)
    )]
    Crashed { method: String, how: String },
    /// The method handed back an output buffer the ABI does not allow, or
    /// wrote into the worker's channel: a defect in the plugin.
    #[error(
        "`{}` broke the call's contract: {}",
        one_line(method),
        one_line(problem)
    )]
    Broken { method: String, problem: String },
    /// Worker mode: the method answered more than a worker hands back
    /// (1 MiB): a limit of the host's, not a fault of the plugin's.
    #[error(
        "`{}` answered {len} bytes, more than a worker hands back (1 MiB): serve it in process, or have it answer less",
        one_line(method)
    )]
    TooLarge { method: String, len: u64 },
    /// The caller cancelled the call ([`Cancel`]): an ABI 1.1 method saw
    /// the flag and returned `CANCELLED`, or (worker mode) the call did not
    /// end soon after and its worker was killed, the next call starting
    /// another at once.
    #[error("`{}` was cancelled by its caller", one_line(method))]
    Cancelled { method: String },
    /// The plugin could not take the call (it did not load or its `init`
    /// failed), or the call could not be sent (an input over the bound).
    #[error("the plugin cannot take calls: {}", one_line(.0))]
    NotServing(String),
    /// Worker mode: the worker died and its restart waits out the
    /// backoff's pause.
    #[error(
        "the plugin's worker is restarting after {restarts} death(s) in a row; try again in {retry_in:?}"
    )]
    Restarting {
        retry_in: Duration,
        /// Deaths in a row.
        restarts: u64,
    },
    /// Worker mode: the worker died after every restart the policy
    /// allows; no calls until the application lifts the quarantine or
    /// reloads a build.
    #[error(
        "the plugin is quarantined: its worker died {restarts} time(s) in a row; fix the plugin and reload it, or release the quarantine"
    )]
    Quarantined {
        /// Deaths in a row.
        restarts: u64,
    },
    /// The circuit breaker is open after failures in a row (`retry_in`:
    /// until one call may probe it; none: the probe is in flight).
    #[error(
        "the circuit breaker of `{}` is open after failures in a row; {}",
        one_line(scope),
        match retry_in {
            Some(pause) => format!("one call may probe it in {pause:?}"),
            None => "a probe call is in flight".to_owned(),
        }
    )]
    BreakerOpen {
        /// The plugin, or `plugin/method` for a per-method breaker.
        scope: String,
        retry_in: Option<Duration>,
    },
    /// More calls are in flight to the plugin than its bound allows
    /// (bulkhead).
    #[error("the plugin already has {limit} call(s) in flight, its bound: try again later")]
    Busy { limit: usize },
    /// The host has no plugin by that name.
    #[error(
        "no plugin is named `{}`; the host has: {}",
        one_line(name),
        known.iter().map(|name| one_line(name)).collect::<Vec<_>>().join(", ")
    )]
    NoSuchPlugin { name: String, known: Vec<String> },
}

impl CallError {
    /// Whether the plugin is at fault (a crash, a hang, a panic, a broken
    /// buffer): what a circuit breaker counts. An error status is an
    /// answer, and a breaker or a restart turning a call away is not the
    /// plugin's doing this time.
    pub fn is_plugin_fault(&self) -> bool {
        matches!(
            self,
            CallError::Panicked { .. }
                | CallError::TimedOut { .. }
                | CallError::Crashed { .. }
                | CallError::Broken { .. }
                | CallError::Overran { .. }
        )
    }

    /// A short name for the kind, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::NoSuchMethod { .. } => "no-such-method",
            CallError::Refused { .. } => "refused",
            CallError::Panicked { .. } => "panicked",
            CallError::Overran { .. } => "overran",
            CallError::TimedOut { .. } => "timed-out",
            CallError::Crashed { .. } => "crashed",
            CallError::Broken { .. } => "broken",
            CallError::TooLarge { .. } => "too-large",
            CallError::NotServing(_) => "not-serving",
            CallError::Restarting { .. } => "restarting",
            CallError::Cancelled { .. } => "cancelled",
            CallError::Quarantined { .. } => "quarantined",
            CallError::BreakerOpen { .. } => "breaker-open",
            CallError::Busy { .. } => "busy",
            CallError::NoSuchPlugin { .. } => "no-such-plugin",
        }
    }
}

/// The methods a [`CallError::NoSuchMethod`] names at most (a plugin may
/// register thousands).
pub(crate) const MAX_NAMED_METHODS: usize = 20;

/// The name of a status the ABI defines, or `plugin-specific`.
fn status_name(code: i32) -> &'static str {
    status::name(code).unwrap_or("plugin-specific")
}
