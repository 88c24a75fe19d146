//! The host side of the ABI: the `plugcheck_host` table a plugin's `init`
//! receives, with its `log` and `register_method` callbacks, and the method
//! registry they fill.

use std::collections::BTreeMap;
use std::ffi::{CStr, c_char, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

use plugcheck_abi::{ABI_MAJOR, ABI_MINOR, HOST_V1_0_SIZE, HostTable, Method, status};

use crate::report::LogLine;

/// Log lines kept per plugin instance; a plugin that logs in a loop must
/// not grow the worker without bound.
const MAX_LOG_LINES: usize = 200;
const MAX_LOG_LINE_BYTES: usize = 2000;

/// What the callbacks collect while a plugin instance lives.
#[derive(Debug, Default)]
pub struct Registry {
    pub methods: BTreeMap<String, Method>,
    /// Registrations the host refused, as "`name`: why".
    pub rejected: Vec<String>,
    pub logs: Vec<LogLine>,
    pub dropped_logs: usize,
}

/// A host table and the registry behind its `ctx`. Boxed, so the addresses
/// handed to the plugin stay put while the `Host` moves.
pub struct Host {
    registry: Box<Mutex<Registry>>,
    table: Box<HostTable>,
}

impl Host {
    pub fn new() -> Host {
        let registry = Box::new(Mutex::new(Registry::default()));
        let ctx = (&*registry as *const Mutex<Registry>)
            .cast_mut()
            .cast::<c_void>();
        let table = Box::new(HostTable {
            struct_size: HOST_V1_0_SIZE,
            abi_major: ABI_MAJOR,
            abi_minor: ABI_MINOR,
            ctx,
            log: Some(log_callback),
            register_method: Some(register_callback),
        });
        Host { registry, table }
    }

    /// The pointer to pass to `init`; valid while this `Host` lives.
    pub fn table(&self) -> *const HostTable {
        &*self.table
    }

    /// Runs `f` on the registry. A plugin thread may be logging at the same
    /// time, so it is behind a lock.
    pub fn with_registry<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        let mut registry = self
            .registry
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut registry)
    }

    /// Takes the log lines collected so far.
    pub fn take_logs(&self) -> Vec<LogLine> {
        self.with_registry(|registry| std::mem::take(&mut registry.logs))
    }

    pub fn lookup(&self, name: &str) -> Option<Method> {
        self.with_registry(|registry| registry.methods.get(name).copied())
    }
}

impl Default for Host {
    fn default() -> Self {
        Host::new()
    }
}

/// # Safety
/// `ctx` is the registry pointer of a live [`Host`].
unsafe fn registry<'a>(ctx: *mut c_void) -> Option<&'a Mutex<Registry>> {
    // SAFETY: the caller's contract; NULL (a plugin passing garbage) is
    // refused rather than dereferenced.
    unsafe { ctx.cast::<Mutex<Registry>>().as_ref() }
}

/// # Safety
/// `text` is NULL or NUL-terminated.
unsafe fn text_of(text: *const c_char) -> Option<Result<String, String>> {
    if text.is_null() {
        return None;
    }
    // SAFETY: the caller's contract.
    let bytes = unsafe { CStr::from_ptr(text) }.to_bytes();
    Some(match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_owned()),
        Err(_) => Err(String::from_utf8_lossy(bytes).into_owned()),
    })
}

unsafe extern "C" fn log_callback(ctx: *mut c_void, level: i32, message: *const c_char) {
    // A panic must not unwind into the plugin's C frames.
    let _ = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` is the one this host put in its table.
        let Some(registry) = (unsafe { registry(ctx) }) else {
            return;
        };
        // SAFETY: the ABI promises a NUL-terminated message.
        let message = match unsafe { text_of(message) } {
            None => "(NULL message)".to_owned(),
            Some(Ok(text)) => text,
            Some(Err(lossy)) => format!("(not UTF-8) {lossy}"),
        };
        let mut registry = registry.lock().unwrap_or_else(|p| p.into_inner());
        if registry.logs.len() >= MAX_LOG_LINES {
            registry.dropped_logs += 1;
            return;
        }
        let mut message = message;
        if message.len() > MAX_LOG_LINE_BYTES {
            let mut cut = MAX_LOG_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        registry.logs.push(LogLine { level, message });
    }));
}

unsafe extern "C" fn register_callback(
    ctx: *mut c_void,
    name: *const c_char,
    method: Option<Method>,
) -> i32 {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` is the one this host put in its table.
        let Some(registry) = (unsafe { registry(ctx) }) else {
            return status::INVALID_ARGUMENT;
        };
        let mut registry = registry.lock().unwrap_or_else(|p| p.into_inner());
        // SAFETY: the ABI promises a NUL-terminated name.
        let name = match unsafe { text_of(name) } {
            None => {
                registry.rejected.push("a method with a NULL name".into());
                return status::INVALID_ARGUMENT;
            }
            Some(Err(lossy)) => {
                registry
                    .rejected
                    .push(format!("`{lossy}`: name is not UTF-8"));
                return status::INVALID_ARGUMENT;
            }
            Some(Ok(name)) if name.is_empty() => {
                registry.rejected.push("a method with an empty name".into());
                return status::INVALID_ARGUMENT;
            }
            Some(Ok(name)) => name,
        };
        let Some(method) = method else {
            registry.rejected.push(format!("`{name}`: NULL function"));
            return status::INVALID_ARGUMENT;
        };
        if registry.methods.contains_key(&name) {
            registry
                .rejected
                .push(format!("`{name}`: registered twice"));
            return status::DUPLICATE;
        }
        registry.methods.insert(name, method);
        status::OK
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
        assert_eq!(host.take_logs().len(), MAX_LOG_LINES);
        assert_eq!(host.with_registry(|r| r.dropped_logs), 5);
    }
}
