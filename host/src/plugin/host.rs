//! The host side of the ABI: the `plugcheck_host` table a plugin's `init`
//! receives, with its `log` and `register_method` callbacks (and 1.1's
//! `register_method_1_1`), and the method registry they fill.

use std::cell::Cell;
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::ffi::{c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

use plugcheck_abi::{ABI_MAJOR, ABI_MINOR, HOST_V1_1_SIZE, HostTable, Method, MethodV1_1, status};

use crate::plugin::memory::{CText, Overlong, read_c_text};
use crate::report::LogLine;

// The bounds, shared with the Go worker (see `limits`).
use crate::worker::limits::{
    LOG_LINE_BYTES as MAX_LOG_LINE_BYTES, LOG_LINES_KEPT as MAX_LOG_LINES,
    METHOD_NAME_BYTES as MAX_METHOD_NAME_BYTES, METHODS as MAX_METHODS,
    REJECTIONS_KEPT as MAX_REJECTED,
};

/// The method a plugin registers for plugcheck to see that its 1.1 calls
/// are told their deadline and cancellation: it returns once its call is
/// cancelled or its deadline passes, whichever comes first. It waits by
/// design, so only the cases made for it call it (fuzzing it would wait).
pub const WAIT_PROBE: &str = "selftest.wait";

thread_local! {
    /// Whether this thread is inside a 1.1 method call now: a line it logs
    /// through the host table then is a line of the call without the
    /// call's trace id.
    static IN_CALL: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current thread is running a 1.1 method for the host.
pub(crate) fn on_calling_thread() -> bool {
    IN_CALL.with(Cell::get)
}

/// Marks the current thread as inside a 1.1 call while it lives.
pub(crate) struct InCall(bool);

impl InCall {
    pub(crate) fn enter() -> InCall {
        InCall(IN_CALL.with(|cell| cell.replace(true)))
    }
}

impl Drop for InCall {
    fn drop(&mut self) {
        IN_CALL.with(|cell| cell.set(self.0));
    }
}

/// A method as the plugin registered it: through 1.0's `register_method`
/// (input and output only) or 1.1's (its instance and call too). A 1.1
/// plugin may register either.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Registered {
    V1_0(Method),
    V1_1(MethodV1_1),
}

/// What the callbacks collect while a plugin instance lives.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    /// By name: registration and lookup are O(1), so a plugin with 10,000
    /// methods costs each reload 10,000 hash inserts, not a tree's string
    /// comparisons. [`Registry::method_names`] gives them in name order.
    pub methods: HashMap<String, Registered>,
    /// Registrations the host refused, as "`name`: why".
    pub rejected: Vec<String>,
    pub logs: Vec<LogLine>,
    pub dropped_logs: usize,
    /// How many of `dropped_logs` [`Host::take_logs_counted`] has told.
    dropped_told: usize,
    /// Refusals past [`MAX_REJECTED`], counted only.
    pub dropped_rejections: usize,
    /// Lines logged through the host table by a thread running a 1.1
    /// method (see [`LogLine::untagged_in_call`]), kept or dropped.
    pub untagged_in_call: u64,
    /// Where each kept log line also goes as it is logged (`plugcheck
    /// call` sends it to the parent at once, so a crash does not lose it).
    forward: Option<LogForward>,
    /// Every line logged, kept or dropped.
    logged: u64,
    /// The last lines logged, kept or dropped: a plugin that filled
    /// [`Registry::logs`] in `init` still says why a later call failed.
    recent: VecDeque<LogLine>,
}

/// Lines kept after the bound is reached, for [`Registry::lines_since`].
const RECENT_LOG_LINES: usize = 4;

/// Where the log stood at a moment: [`Registry::mark`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogMark {
    kept: usize,
    logged: u64,
}

/// A sink for log lines as they are logged; called with the registry lock
/// held, so lines reach it in order, one at a time.
pub(crate) struct LogForward(pub Box<dyn FnMut(&LogLine) + Send>);

impl std::fmt::Debug for LogForward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogForward")
    }
}

impl Registry {
    /// Every registered name, in byte order (what reports and the fuzz
    /// series walk, so they list the same methods on every run).
    pub(crate) fn method_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.methods.keys().cloned().collect();
        names.sort_unstable();
        names
    }

    /// [`Registry::method_names`] without the wait probe
    /// ([`WAIT_PROBE`]), which
    /// waits by design: the names cases drive with inputs of their own.
    pub(crate) fn callable_method_names(&self) -> Vec<String> {
        let mut names = self.method_names();
        // Only a 1.1 method waits for its call's end: a 1.0 method of that
        // name is a method like any other.
        let probe = WAIT_PROBE;
        if matches!(self.methods.get(probe), Some(Registered::V1_1(_))) {
            names.retain(|name| name != probe);
        }
        names
    }

    /// Where the log stands now, to ask later what came after.
    pub(crate) fn mark(&self) -> LogMark {
        LogMark {
            kept: self.logs.len(),
            logged: self.logged,
        }
    }

    /// The lines logged since `mark`: those kept, then, when the bound
    /// dropped some, the last of those (a refusal's reason comes last).
    pub(crate) fn lines_since(&self, mark: LogMark) -> Vec<LogLine> {
        let mut lines = self.logs.get(mark.kept..).unwrap_or_default().to_vec();
        let dropped = usize::try_from(self.logged - mark.logged)
            .unwrap_or(usize::MAX)
            .saturating_sub(lines.len());
        let from_recent = dropped.min(self.recent.len());
        lines.extend(
            self.recent
                .iter()
                .skip(self.recent.len() - from_recent)
                .cloned(),
        );
        lines
    }

    fn reject(&mut self, why: String) {
        if self.rejected.len() < MAX_REJECTED {
            self.rejected.push(why);
        } else {
            self.dropped_rejections += 1;
        }
    }
}

/// A host table and the registry behind its `ctx`. Boxed, so the addresses
/// handed to the plugin stay put while the `Host` moves.
pub struct Host {
    registry: Box<Mutex<Registry>>,
    table: Box<HostTable>,
}

impl Host {
    pub(crate) fn new() -> Host {
        let registry = Box::new(Mutex::new(Registry::default()));
        let ctx = (&*registry as *const Mutex<Registry>)
            .cast_mut()
            .cast::<c_void>();
        let table = Box::new(HostTable {
            struct_size: HOST_V1_1_SIZE,
            abi_major: ABI_MAJOR,
            abi_minor: ABI_MINOR,
            ctx,
            log: Some(log_callback),
            register_method: Some(register_callback),
            register_method_1_1: Some(register_1_1_callback),
        });
        live_hosts().insert(ctx as usize);
        Host { registry, table }
    }

    /// The pointer to pass to `init`; valid while this `Host` lives.
    pub(crate) fn table(&self) -> *const HostTable {
        &*self.table
    }

    /// Runs `f` on the registry. A plugin thread may be logging at the same
    /// time, so it is behind a lock.
    pub(crate) fn with_registry<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        let mut registry = self
            .registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut registry)
    }

    /// Empties the registry of an instance that was shut down (or failed
    /// to start). The host itself is kept, since a plugin thread may still
    /// call `log` through it, but what it collected is not: a worker that
    /// runs many cycles of a plugin with 10,000 methods must not hold
    /// 10,000 names per cycle, and growth checks must measure the plugin,
    /// not this bookkeeping.
    pub(crate) fn retire(&self) {
        self.with_registry(|registry| *registry = Registry::default());
    }

    /// Sends every log line kept from now on to `forward` too, as it is
    /// logged (replacing an earlier sink); retiring the host drops it.
    pub(crate) fn forward_logs(&self, forward: LogForward) {
        self.with_registry(|registry| registry.forward = Some(forward));
    }

    /// Takes the log lines collected so far.
    pub fn take_logs(&self) -> Vec<LogLine> {
        self.with_registry(|registry| std::mem::take(&mut registry.logs))
    }

    /// Takes the log lines collected so far, and counts the lines dropped
    /// since the last of these takes (past the bound on lines kept): what
    /// an embedding host says it did not pass on.
    pub fn take_logs_counted(&self) -> (Vec<LogLine>, u64) {
        self.with_registry(|registry| {
            let dropped = registry.dropped_logs - registry.dropped_told;
            registry.dropped_told = registry.dropped_logs;
            (std::mem::take(&mut registry.logs), dropped as u64)
        })
    }

    /// The `ctx` the plugin's callbacks carry: what a call's log finds
    /// this host by.
    pub(crate) fn ctx(&self) -> *mut c_void {
        self.table.ctx
    }

    pub(crate) fn lookup(&self, name: &str) -> Option<Registered> {
        self.with_registry(|registry| registry.methods.get(name).copied())
    }
}

impl Default for Host {
    fn default() -> Self {
        Host::new()
    }
}

/// The `ctx` of every live [`Host`]. A plugin hands `ctx` back to the
/// callbacks, and a hostile one hands back anything: only a pointer found
/// here is ever dereferenced, and a host leaves the set (under its lock)
/// before its registry is freed.
static LIVE_HOSTS: Mutex<BTreeSet<usize>> = Mutex::new(BTreeSet::new());

fn live_hosts() -> std::sync::MutexGuard<'static, BTreeSet<usize>> {
    LIVE_HOSTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Drop for Host {
    fn drop(&mut self) {
        live_hosts().remove(&(self.table.ctx as usize));
    }
}

/// Runs `f` on the registry behind `ctx` if `ctx` is a live host's;
/// `None` for anything else (NULL, garbage, a host already gone).
fn with_live_registry<T>(ctx: *mut c_void, f: impl FnOnce(&mut Registry) -> T) -> Option<T> {
    let live = live_hosts();
    if !live.contains(&(ctx as usize)) {
        return None;
    }
    // SAFETY: `ctx` is in the live set, so it is the registry pointer of a
    // `Host` not yet dropped; dropping removes it under the lock we hold.
    let registry = unsafe { &*ctx.cast::<Mutex<Registry>>() };
    let mut registry = registry.lock().unwrap_or_else(|p| p.into_inner());
    Some(f(&mut registry))
}

/// The string at `text`, at most `bound` bytes of it (longer: cut, and
/// marked with `…`), copied through the OS so a bad pointer costs a
/// reason, not the worker. `Err` holds a lossy copy of text that is not
/// UTF-8, or why the string could not be read.
fn text_of(text: *const c_char, bound: usize) -> Option<Result<String, String>> {
    if text.is_null() {
        return None;
    }
    let bytes = match read_c_text(text.cast(), bound, Overlong::Stop) {
        CText::Text(bytes) => bytes,
        CText::TooLong { head, .. } => {
            // Keep the first `bound` bytes: a long log line is still news.
            let mut text = String::from_utf8_lossy(&head).into_owned();
            text.push('…');
            return Some(Ok(text));
        }
        unreadable @ CText::Unreadable { .. } => {
            return Some(Err(unreadable.problem(bound).unwrap_or_default()));
        }
    };
    Some(match String::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(error) => Err(String::from_utf8_lossy(error.as_bytes()).into_owned()),
    })
}

/// Registers `method` under `name` (already read), or records why not.
fn register(
    registry: &mut Registry,
    name: Result<String, String>,
    method: Option<Registered>,
) -> i32 {
    let name = match name {
        Ok(name) => name,
        Err(why) => {
            registry.reject(why);
            return status::INVALID_ARGUMENT;
        }
    };
    let Some(method) = method else {
        registry.reject(format!("`{name}`: NULL function"));
        return status::INVALID_ARGUMENT;
    };
    let full = registry.methods.len() >= MAX_METHODS;
    match registry.methods.entry(name) {
        Entry::Occupied(taken) => {
            let why = format!("`{}`: registered twice", taken.key());
            registry.reject(why);
            status::DUPLICATE
        }
        Entry::Vacant(free) if full => {
            let why = format!(
                "`{}`: more than {MAX_METHODS} methods registered",
                free.key()
            );
            registry.reject(why);
            status::INVALID_ARGUMENT
        }
        Entry::Vacant(free) => {
            free.insert(method);
            status::OK
        }
    }
}

/// A method name, or why it is refused (quoted short: it is the plugin's).
fn read_name(name: *const c_char) -> Result<String, String> {
    if name.is_null() {
        return Err("a method with a NULL name".into());
    }
    match read_c_text(name.cast(), MAX_METHOD_NAME_BYTES, Overlong::Stop) {
        CText::Text(bytes) if bytes.is_empty() => Err("a method with an empty name".into()),
        CText::Text(bytes) => String::from_utf8(bytes).map_err(|error| {
            format!(
                "`{}`: name is not UTF-8",
                String::from_utf8_lossy(&error.as_bytes()[..error.as_bytes().len().min(60)])
            )
        }),
        other => Err(format!(
            "a method whose name {}",
            other.problem(MAX_METHOD_NAME_BYTES).unwrap_or_default()
        )),
    }
}

unsafe extern "C" fn log_callback(ctx: *mut c_void, level: i32, message: *const c_char) {
    // A panic must not unwind into the plugin's C frames.
    let _ = catch_unwind(AssertUnwindSafe(|| log_line(ctx, level, message, None)));
}

/// Keeps (and forwards) one line a plugin logged through the host whose
/// `ctx` this is, tagged with `trace_id` when it came through a call's log.
/// Nothing for a `ctx` that is not a live host's.
pub(crate) fn log_line(
    ctx: *mut c_void,
    level: i32,
    message: *const c_char,
    trace_id: Option<String>,
) {
    // Read the message before taking any lock: it may be long.
    let message = match text_of(message, MAX_LOG_LINE_BYTES) {
        None => "(NULL message)".to_owned(),
        Some(Ok(text)) => text,
        Some(Err(lossy)) => format!("(not UTF-8) {lossy}"),
    };
    with_live_registry(ctx, |registry| {
        let untagged_in_call = trace_id.is_none() && on_calling_thread();
        let line = LogLine {
            level,
            message,
            trace_id,
            untagged_in_call,
        };
        registry.logged += 1;
        registry.untagged_in_call += u64::from(untagged_in_call);
        if registry.recent.len() == RECENT_LOG_LINES {
            registry.recent.pop_front();
        }
        registry.recent.push_back(line.clone());
        if registry.logs.len() >= MAX_LOG_LINES {
            registry.dropped_logs += 1;
            return;
        }
        if let Some(LogForward(forward)) = registry.forward.as_mut() {
            forward(&line);
        }
        registry.logs.push(line);
    });
}

unsafe extern "C" fn register_callback(
    ctx: *mut c_void,
    name: *const c_char,
    method: Option<Method>,
) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        let name = read_name(name);
        let method = method.map(Registered::V1_0);
        with_live_registry(ctx, |registry| register(registry, name, method))
            .unwrap_or(status::INVALID_ARGUMENT)
    }))
    .unwrap_or(status::INVALID_ARGUMENT)
}

unsafe extern "C" fn register_1_1_callback(
    ctx: *mut c_void,
    name: *const c_char,
    method: Option<MethodV1_1>,
) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        let name = read_name(name);
        let method = method.map(Registered::V1_1);
        with_live_registry(ctx, |registry| register(registry, name, method))
            .unwrap_or(status::INVALID_ARGUMENT)
    }))
    .unwrap_or(status::INVALID_ARGUMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn noop(_: *const u8, _: usize, _: *mut plugcheck_abi::Buf) -> i32 {
        0
    }

    #[test]
    fn registration_refuses_bad_names_and_duplicates() {
        let host = Host::new();
        // SAFETY: the table was just built by `Host::new` and outlives the calls.
        let table = unsafe { &*host.table() };
        let register = table.register_method.unwrap();
        // SAFETY: the callbacks get this host's ctx and NUL-terminated names.
        unsafe {
            assert_eq!(
                register(table.ctx, c"echo".as_ptr(), Some(noop)),
                status::OK
            );
            assert_eq!(
                register(table.ctx, c"echo".as_ptr(), Some(noop)),
                status::DUPLICATE
            );
            assert_eq!(
                register(table.ctx, c"".as_ptr(), Some(noop)),
                status::INVALID_ARGUMENT
            );
            assert_eq!(
                register(table.ctx, std::ptr::null(), Some(noop)),
                status::INVALID_ARGUMENT
            );
            assert_eq!(
                register(table.ctx, c"x".as_ptr(), None),
                status::INVALID_ARGUMENT
            );
            assert_eq!(
                register(std::ptr::null_mut(), c"y".as_ptr(), Some(noop)),
                status::INVALID_ARGUMENT
            );
        }
        assert!(host.lookup("echo").is_some());
        assert!(host.lookup("missing").is_none());
        assert_eq!(host.with_registry(|r| r.rejected.len()), 4);
    }

    #[test]
    fn logs_are_kept_and_bounded() {
        let host = Host::new();
        // SAFETY: as above.
        let table = unsafe { &*host.table() };
        let log = table.log.unwrap();
        for _ in 0..(MAX_LOG_LINES + 5) {
            // SAFETY: as above.
            unsafe { log(table.ctx, 3, c"hello".as_ptr()) };
        }
        let mark = host.with_registry(|r| r.mark());
        // SAFETY: as above.
        unsafe { log(table.ctx, 1, c"the last word".as_ptr()) };
        let since = host.with_registry(|r| r.lines_since(mark));
        assert_eq!(
            since
                .iter()
                .map(|line| line.message.as_str())
                .collect::<Vec<_>>(),
            ["the last word"],
            "a line past the bound still answers `lines_since`"
        );
        assert_eq!(host.take_logs().len(), MAX_LOG_LINES);
        assert_eq!(host.with_registry(|r| r.dropped_logs), 6);
    }

    #[test]
    fn an_embedding_host_is_told_each_dropped_line_once() {
        let host = Host::new();
        // SAFETY: as above.
        let table = unsafe { &*host.table() };
        let log = table.log.unwrap();
        let say = |times: usize| {
            for _ in 0..times {
                // SAFETY: as above.
                unsafe { log(table.ctx, 3, c"hello".as_ptr()) };
            }
        };
        say(MAX_LOG_LINES + 7);
        let (lines, dropped) = host.take_logs_counted();
        assert_eq!((lines.len(), dropped), (MAX_LOG_LINES, 7));
        // Taken, the store has room again: nothing more was dropped.
        say(3);
        assert_eq!(host.take_logs_counted().0.len(), 3);
        assert_eq!(host.take_logs_counted(), (Vec::new(), 0));
        say(MAX_LOG_LINES + 1);
        assert_eq!(host.take_logs_counted().1, 1);
    }
}
