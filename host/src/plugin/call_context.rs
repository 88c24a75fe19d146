//! The host side of ABI 1.1's call context (`plugcheck_call`): what a
//! method learns of the call it is in — its deadline on the host's
//! monotonic clock, a cancellation flag the host may set while it runs,
//! the caller's W3C `traceparent`, and a log that tags each line with the
//! call's trace id.
//!
//! A context lives exactly as long as one method call ([`Frame`]). Its
//! `ctx` is checked against the set of live frames before it is used, so a
//! plugin that keeps the pointer and logs after its call returned (or hands
//! back garbage) is ignored, not followed.

use std::collections::BTreeMap;
use std::ffi::{CString, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use plugcheck_abi::{CALL_V1_1_SIZE, CallContext, NO_DEADLINE};

use crate::plugin::host::log_line;

/// What the caller of a 1.1 method hands it: all optional; a call without
/// them has no deadline, is never cancelled and carries no trace.
#[derive(Debug, Clone, Default)]
pub struct CallSettings {
    /// When the caller stops waiting.
    pub deadline: Option<Instant>,
    /// The caller's trace context; only a well-formed `traceparent`
    /// reaches the plugin ([`TraceParent::parse`]).
    pub traceparent: Option<TraceParent>,
    /// Set (to non-zero) by the caller to ask the method to stop.
    pub cancel: Option<Arc<AtomicU32>>,
}

/// A W3C trace context header value, `00-<32 hex trace id>-<16 hex parent
/// id>-<2 hex flags>`, checked: what the plugin is given is always one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent(String);

impl TraceParent {
    /// `None` for anything but a version-00 `traceparent` with lowercase
    /// hex fields and non-zero ids (the spec's invalid values).
    pub fn parse(text: &str) -> Option<TraceParent> {
        let parts: Vec<&str> = text.split('-').collect();
        let [version, trace_id, parent_id, flags] = parts[..] else {
            return None;
        };
        let hex = |part: &str, len: usize| {
            part.len() == len && part.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        let zero = |part: &str| part.bytes().all(|b| b == b'0');
        let well_formed = version == "00"
            && hex(trace_id, 32)
            && hex(parent_id, 16)
            && hex(flags, 2)
            && !zero(trace_id)
            && !zero(parent_id);
        well_formed.then(|| TraceParent(text.to_owned()))
    }

    /// A new trace context of its own: random ids (from the OS's hash
    /// seeds, which are random per process and per call), sampled.
    pub fn fresh() -> TraceParent {
        let trace = format!("{:016x}{:016x}", random_u64(), random_u64());
        let parent = format!("{:016x}", random_u64() | 1);
        TraceParent(format!("00-{trace}-{parent}-01"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 32 hex digits that name the trace.
    pub fn trace_id(&self) -> &str {
        &self.0[3..35]
    }
}

/// 64 random bits without a dependency: each `RandomState` is seeded
/// afresh, randomly, by the standard library.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(now_ns_since_epoch());
    hasher.finish()
}

/// The instant the host's monotonic clock counts from.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ns_since_epoch() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX - 1)
}

/// `now_ns` of every context: nanoseconds on the host's monotonic clock.
unsafe extern "C" fn now_ns() -> u64 {
    now_ns_since_epoch()
}

/// `deadline` on the clock `now_ns` reads.
fn deadline_ns(deadline: Option<Instant>) -> u64 {
    match deadline {
        None => NO_DEADLINE,
        Some(deadline) => u64::try_from(deadline.saturating_duration_since(epoch()).as_nanos())
            .unwrap_or(NO_DEADLINE - 1)
            .min(NO_DEADLINE - 1),
    }
}

pub use crate::plugin::host::WAIT_PROBE;

/// Lines a plugin logged through a context whose call had ended (it kept
/// the pointer): counted, never followed.
static STALE_LOGS: AtomicU64 = AtomicU64::new(0);

/// How many lines came through ended calls' contexts in this process.
pub(crate) fn stale_logs() -> u64 {
    STALE_LOGS.load(Ordering::Relaxed)
}

/// How much earlier than the host stops waiting a method is told its
/// deadline is: a tenth of the time it has, at most 100 ms. A method that
/// stops at its deadline then still has its answer heard, rather than
/// racing the host's kill (worker) or being reported as overrunning (in
/// process).
pub(crate) fn deadline_told(wait: Duration) -> Duration {
    wait.saturating_sub((wait / 10).min(Duration::from_millis(100)))
}

/// What a frame's `ctx` leads to: the host its lines go to, and the tag.
struct Record {
    host_ctx: usize,
    trace_id: Option<String>,
}

/// Every live frame's record, by its `ctx`: a number never used twice in
/// a process (not an address, which the next frame's allocation may take
/// again), so a context kept past its call names no live frame.
static LIVE_FRAMES: Mutex<BTreeMap<usize, Record>> = Mutex::new(BTreeMap::new());

fn live_frames() -> std::sync::MutexGuard<'static, BTreeMap<usize, Record>> {
    LIVE_FRAMES.lock().unwrap_or_else(|p| p.into_inner())
}

/// The next frame's `ctx`.
fn next_frame_id() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// One call's context, alive for the call: everything its pointers lead
/// to is owned here and boxed, so the addresses stay put.
pub(crate) struct Frame {
    raw: Box<CallContext>,
    id: usize,
    _flag: Arc<AtomicU32>,
    _traceparent: Option<CString>,
}

impl Frame {
    /// A context for a call into the plugin whose host has `host_ctx`.
    pub(crate) fn new(host_ctx: *mut c_void, settings: &CallSettings) -> Frame {
        let flag = settings.cancel.clone().unwrap_or_default();
        let traceparent = settings
            .traceparent
            .as_ref()
            .and_then(|trace| CString::new(trace.as_str()).ok());
        let id = next_frame_id();
        let record = Record {
            host_ctx: host_ctx as usize,
            trace_id: settings
                .traceparent
                .as_ref()
                .map(|trace| trace.trace_id().to_owned()),
        };
        let raw = Box::new(CallContext {
            struct_size: CALL_V1_1_SIZE,
            reserved: 0,
            deadline_ns: deadline_ns(settings.deadline),
            cancelled: Arc::as_ptr(&flag),
            traceparent: traceparent
                .as_ref()
                .map_or(std::ptr::null(), |text| text.as_ptr()),
            ctx: id as *mut c_void,
            now_ns: Some(now_ns),
            log: Some(call_log),
        });
        live_frames().insert(id, record);
        Frame {
            raw,
            id,
            _flag: flag,
            _traceparent: traceparent,
        }
    }

    /// The pointer to hand the method; valid while the frame lives.
    pub(crate) fn as_ptr(&self) -> *const CallContext {
        &*self.raw
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        live_frames().remove(&self.id);
    }
}

/// `log` of every context: the line goes to the call's host, tagged with
/// the call's trace id; a `ctx` that is not a live frame's is counted as
/// stale and dropped.
unsafe extern "C" fn call_log(ctx: *mut c_void, level: i32, message: *const c_char) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let found = live_frames()
            .get(&(ctx as usize))
            .map(|record| (record.host_ctx, record.trace_id.clone()));
        match found {
            Some((host_ctx, trace_id)) => {
                log_line(host_ctx as *mut c_void, level, message, trace_id);
            }
            None => {
                STALE_LOGS.fetch_add(1, Ordering::Relaxed);
            }
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_well_formed_traceparent_is_taken() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(
            TraceParent::parse(good).unwrap().trace_id(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1\u{e9}",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
        let fresh = TraceParent::fresh();
        assert_eq!(TraceParent::parse(fresh.as_str()), Some(fresh.clone()));
        assert_ne!(fresh, TraceParent::fresh());
    }

    #[test]
    fn a_frame_says_its_deadline_and_flag_and_forgets_its_ctx_when_dropped() {
        let flag = Arc::new(AtomicU32::new(0));
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        let settings = CallSettings {
            deadline: Some(deadline),
            traceparent: None,
            cancel: Some(flag.clone()),
        };
        let frame = Frame::new(std::ptr::null_mut(), &settings);
        // SAFETY: the frame is alive.
        let raw = unsafe { &*frame.as_ptr() };
        // SAFETY: the host's own clock.
        let now = unsafe { now_ns() };
        let left = raw.deadline_ns - now;
        assert!(left > 4_000_000_000 && left <= 5_000_000_000, "{left}");
        flag.store(1, std::sync::atomic::Ordering::Release);
        // SAFETY: the flag lives as long as the frame.
        assert_eq!(
            unsafe { &*raw.cancelled }.load(std::sync::atomic::Ordering::Acquire),
            1
        );
        assert!(raw.traceparent.is_null());
        let ctx = raw.ctx as usize;
        assert!(live_frames().contains_key(&ctx));
        drop(frame);
        assert!(!live_frames().contains_key(&ctx));
        // The next frame's ctx is another, whatever memory it reuses.
        let next = Frame::new(std::ptr::null_mut(), &CallSettings::default());
        // SAFETY: the frame is alive.
        assert_ne!(unsafe { &*next.as_ptr() }.ctx as usize, ctx);
        // A context with no deadline says so.
        let frame = Frame::new(std::ptr::null_mut(), &CallSettings::default());
        // SAFETY: the frame is alive.
        assert_eq!(unsafe { &*frame.as_ptr() }.deadline_ns, NO_DEADLINE);
    }
}
