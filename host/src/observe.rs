//! What a host tells the application's observability: a `tracing` span per
//! call (plugin, version, instance, method, trace id), the plugin's own log
//! lines as `tracing` events inside it — bounded by the worker, escaped
//! here — and metrics through the `metrics` facade. Both are facades: with
//! no subscriber or recorder installed they cost a branch.
//!
//! Metric names (labels: `plugin`, and `kind` or `state` where said):
//!
//! | metric | type | what |
//! | --- | --- | --- |
//! | `plugcheck_host_calls_total` | counter | calls made |
//! | `plugcheck_host_call_errors_total` | counter, `kind` | failed calls by [`CallError::kind`] |
//! | `plugcheck_host_call_seconds` | histogram | time the call took |
//! | `plugcheck_host_restarts_total` | counter | workers restarted after a death |
//! | `plugcheck_host_breaker_state` | gauge | 0 closed, 1 half-open, 2 open |
//! | `plugcheck_host_reloads_total` | counter, `outcome` | reloads, `switched` or `rolled-back` |

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::plugin::call_context::TraceParent;
use crate::report::LogLine;
use crate::text::one_line;

use crate::call::{CallError, CallOptions};
use crate::supervision::BreakerState;

/// A fresh trace id for a call whose caller gave none: 32 hex digits, a
/// W3C trace id as it is.
pub fn new_trace_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let half = || {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        hasher.write_u32(std::process::id());
        hasher.finish()
    };
    format!("{:016x}{:016x}", half(), half())
}

/// The W3C trace context a call carries into an ABI 1.1 plugin, made of
/// the caller's `trace`: a `traceparent` as it is, or a trace id of hex
/// digits (up to 32, as this host's own ids are; a shorter one
/// left-padded with zeros, as W3C asks of 64-bit ids) with a fresh parent
/// id. `None` for anything else.
pub(crate) fn traceparent_of(trace: &str) -> Option<TraceParent> {
    if let Some(traceparent) = TraceParent::parse(trace) {
        return Some(traceparent);
    }
    let hex = |text: &str| text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let id = trace.to_ascii_lowercase();
    if id.is_empty() || id.len() > 32 || !hex(&id) {
        return None;
    }
    let fresh = TraceParent::fresh();
    let parent = &fresh.as_str()[36..52];
    TraceParent::parse(&format!("00-{id:0>32}-{parent}-01"))
}

/// `options` with a trace id for certain (the caller's, or a fresh one),
/// and that id, for the call's span.
pub(crate) fn traced(options: &CallOptions) -> (String, CallOptions) {
    let trace_id = options.trace.clone().unwrap_or_else(new_trace_id);
    let options = CallOptions {
        trace: Some(trace_id.clone()),
        ..options.clone()
    };
    (trace_id, options)
}

/// A build's version in a span: the first 12 digits of its SHA-256.
pub(crate) fn short_version(sha256: &str) -> &str {
    sha256.get(..12).unwrap_or(sha256)
}

/// The plugin's log lines of a call, as events of the current span, at
/// the level it logged them (an unknown level as `trace`), escaped.
pub(crate) fn plugin_logs(lines: &[LogLine], unkept: u64) {
    for line in lines {
        let message = one_line(&line.message);
        // The trace id the plugin's call context tagged the line with (an
        // ABI 1.1 method logging through its call): the caller's, which
        // the span says too; none for a line of the host table's log.
        let traced = line.trace_id.as_deref().map(one_line).unwrap_or_default();
        match line.level {
            1 => {
                tracing::error!(target: "plugcheck_host::plugin", plugin_trace_id = %traced, "{message}")
            }
            2 => {
                tracing::warn!(target: "plugcheck_host::plugin", plugin_trace_id = %traced, "{message}")
            }
            3 => {
                tracing::info!(target: "plugcheck_host::plugin", plugin_trace_id = %traced, "{message}")
            }
            4 => {
                tracing::debug!(target: "plugcheck_host::plugin", plugin_trace_id = %traced, "{message}")
            }
            _ => {
                tracing::trace!(target: "plugcheck_host::plugin", plugin_trace_id = %traced, "{message}")
            }
        }
    }
    if unkept > 0 {
        tracing::warn!(target: "plugcheck_host::plugin", "{unkept} more log line(s) the plugin wrote were not kept (a plugin's lines are bounded)");
    }
}

/// A call's end, in metrics and as an event of its span.
pub(crate) fn call_ended<T>(plugin: &str, result: &Result<T, CallError>, took: Duration) {
    let plugin = plugin.to_owned();
    metrics::counter!("plugcheck_host_calls_total", "plugin" => plugin.clone()).increment(1);
    metrics::histogram!("plugcheck_host_call_seconds", "plugin" => plugin.clone())
        .record(took.as_secs_f64());
    if let Err(error) = result {
        metrics::counter!("plugcheck_host_call_errors_total", "plugin" => plugin, "kind" => error.kind())
            .increment(1);
        tracing::warn!(kind = error.kind(), "{error}");
    }
}

/// A worker restarted after a pause.
pub(crate) fn restarted(plugin: &str, pause: Duration) {
    metrics::counter!("plugcheck_host_restarts_total", "plugin" => plugin.to_owned()).increment(1);
    tracing::info!(plugin = %plugin, pause = ?pause, "worker restarted");
}

/// A breaker changed state.
pub(crate) fn breaker(plugin: &str, state: BreakerState) {
    let value = match state {
        BreakerState::Closed => 0.0,
        BreakerState::HalfOpen => 1.0,
        BreakerState::Open => 2.0,
    };
    metrics::gauge!("plugcheck_host_breaker_state", "plugin" => plugin.to_owned()).set(value);
    tracing::info!(plugin = %plugin, state = ?state, "circuit breaker");
}

/// A reload switched to the new build, or rolled back.
pub(crate) fn reloaded(plugin: &str, switched: bool) {
    let outcome = if switched { "switched" } else { "rolled-back" };
    metrics::counter!("plugcheck_host_reloads_total", "plugin" => plugin.to_owned(), "outcome" => outcome)
        .increment(1);
}
