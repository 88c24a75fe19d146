//! The safe side of the contract for Rust plugin authors: implement
//! [`Plugin`] (and [`Stateful`] when the plugin carries state across a
//! reload), then call [`crate::export_plugin!`].
//!
//! The macro owns every `extern "C"` function of the plugin. Each one runs
//! the author's code inside `catch_unwind`, so a panic becomes
//! [`status::PANIC`](crate::status::PANIC) instead of unwinding into a C
//! host (which would abort it).

use std::ffi::{CStr, CString};
use std::fmt;
use std::mem::{offset_of, size_of};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::{CallContext, HostTable};

/// Severity of a log line sent to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum LogLevel {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

/// A plugin-side failure: a status code for the host and a message that is
/// logged to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    code: i32,
    message: String,
}

impl Error {
    /// A failure with [`status::FAILED`](crate::status::FAILED).
    pub fn new(message: impl Into<String>) -> Self {
        Self::with_code(crate::status::FAILED, message)
    }

    /// A failure with a code of the plugin's choosing; zero is replaced by
    /// [`status::FAILED`](crate::status::FAILED), since zero means success.
    pub fn with_code(code: i32, message: impl Into<String>) -> Self {
        let code = if code == crate::status::OK {
            crate::status::FAILED
        } else {
            code
        };
        Self {
            code,
            message: message.into(),
        }
    }

    /// A call that stopped early, cancelled or past its deadline
    /// ([`status::CANCELLED`](crate::status::CANCELLED)).
    pub fn cancelled() -> Self {
        Self::with_code(
            crate::status::CANCELLED,
            "stopped: the call was cancelled or its deadline passed",
        )
    }

    pub fn code(&self) -> i32 {
        self.code
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (status {})", self.message, self.code)
    }
}

impl std::error::Error for Error {}

/// The host, as a plugin sees it: valid from `init` until `shutdown` returns.
/// Cheap to copy, so a plugin may keep it for logging from its methods.
#[derive(Debug, Clone, Copy)]
pub struct HostHandle {
    table: *const HostTable,
}

// SAFETY: the host table is immutable for the plugin's lifetime and the host
// promises its `log` callback may be called from any thread.
unsafe impl Send for HostHandle {}
// SAFETY: as for `Send`: the handle only reads the immutable table.
unsafe impl Sync for HostHandle {}

impl HostHandle {
    /// # Safety
    /// `table` must be the non-NULL pointer the host passed to `init`.
    pub(crate) unsafe fn from_raw(table: *const HostTable) -> Self {
        Self { table }
    }

    fn table(&self) -> &HostTable {
        // SAFETY: `from_raw`'s contract: the host keeps the table alive until
        // shutdown returns, which bounds every use of the handle.
        unsafe { &*self.table }
    }

    /// The ABI version the host speaks.
    pub fn abi_version(&self) -> (u16, u16) {
        let table = self.table();
        (table.abi_major, table.abi_minor)
    }

    /// Sends one line to the host's log. Interior NUL bytes are replaced, so
    /// any message can be logged.
    pub fn log(&self, level: LogLevel, message: &str) {
        let table = self.table();
        if table.struct_size < crate::HOST_V1_0_SIZE {
            return;
        }
        let Some(log) = table.log else { return };
        let line = CString::new(message.replace('\0', "\u{FFFD}"))
            .expect("interior NUL bytes were replaced");
        // SAFETY: `log` comes from the host table, which the host keeps valid;
        // `line` outlives the call.
        unsafe { log(table.ctx, level as i32, line.as_ptr()) }
    }
}

/// What the host says about the call a method is in (ABI 1.1): its
/// deadline, whether it was cancelled, the caller's trace context, and a
/// log tagged with it. Take it as a method's second parameter to see it
/// (`fn method(&mut self, call: &Call, input: &[u8])`).
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    raw: Option<&'a CallContext>,
    host: Option<HostHandle>,
}

impl<'a> Call<'a> {
    /// # Safety
    /// `raw` is NULL or the context the host passed to this method call,
    /// valid while it runs (which bounds `'a`).
    pub(crate) unsafe fn from_raw(raw: *const CallContext, host: Option<HostHandle>) -> Self {
        // SAFETY: the caller's contract.
        let raw = unsafe { raw.as_ref() };
        Call { raw, host }
    }

    /// The context, when the host's covers the field ending at `end`.
    fn covering(&self, end: usize) -> Option<&'a CallContext> {
        self.raw.filter(|raw| raw.struct_size as usize >= end)
    }

    /// Whether the host has asked this call to stop: return soon (with
    /// any status) once it says so.
    pub fn is_cancelled(&self) -> bool {
        let end = offset_of!(CallContext, cancelled) + size_of::<usize>();
        self.covering(end)
            .and_then(|raw| {
                // SAFETY: the host promises a flag that lives as long as the
                // call.
                unsafe { raw.cancelled.as_ref() }
            })
            .is_some_and(|flag| flag.load(Ordering::Acquire) != 0)
    }

    /// Time left before the host stops waiting: `None` when the call has no
    /// deadline, zero once it has passed.
    pub fn remaining(&self) -> Option<Duration> {
        let end = offset_of!(CallContext, now_ns) + size_of::<usize>();
        let raw = self.covering(end)?;
        if raw.deadline_ns == crate::NO_DEADLINE {
            return None;
        }
        // SAFETY: the host's clock function, callable from any thread.
        let now = unsafe { (raw.now_ns?)() };
        Some(Duration::from_nanos(raw.deadline_ns.saturating_sub(now)))
    }

    /// The caller's W3C `traceparent` (`00-<trace id>-<span id>-<flags>`),
    /// when the call carries one.
    pub fn traceparent(&self) -> Option<&'a str> {
        let end = offset_of!(CallContext, traceparent) + size_of::<usize>();
        let raw = self.covering(end)?;
        if raw.traceparent.is_null() {
            return None;
        }
        // SAFETY: a NUL-terminated string the host keeps for the call.
        unsafe { CStr::from_ptr(raw.traceparent) }.to_str().ok()
    }

    /// Whether the method should stop now: its call was cancelled or its
    /// deadline has passed. A long method asks between steps and returns
    /// [`status::CANCELLED`](crate::status::CANCELLED) (see
    /// [`Error::cancelled`]).
    pub fn should_stop(&self) -> bool {
        self.is_cancelled() || self.remaining() == Some(Duration::ZERO)
    }

    /// The trace id of [`Call::traceparent`]: 32 hex digits.
    pub fn trace_id(&self) -> Option<&'a str> {
        self.traceparent()?.split('-').nth(1)
    }

    /// Sends one line to the host's log, tagged with this call's trace id
    /// (the host's plain log when the host gave no call log).
    pub fn log(&self, level: LogLevel, message: &str) {
        let end = offset_of!(CallContext, log) + size_of::<usize>();
        let Some((raw, log)) = self.covering(end).and_then(|raw| Some((raw, raw.log?))) else {
            if let Some(host) = self.host {
                host.log(level, message);
            }
            return;
        };
        let line = CString::new(message.replace('\0', "\u{FFFD}"))
            .expect("interior NUL bytes were replaced");
        // SAFETY: the host's log for this call, with its ctx; `line`
        // outlives the call.
        unsafe { log(raw.ctx, level as i32, line.as_ptr()) }
    }
}

/// The wait probe of ABI 1.1 (`selftest.wait`), ready to register for any
/// plugin type: it returns once its call is cancelled or its deadline
/// passes, which is how `plugcheck check` sees that the crate hands a
/// method both. Register it as
/// `"selftest.wait" => plugcheck_abi::selftest_wait::<YourPlugin>`.
pub fn selftest_wait<P>(_plugin: &mut P, call: &Call<'_>, _input: &[u8]) -> Result<Vec<u8>, Error> {
    while !call.should_stop() {
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(Error::cancelled())
}

/// A plugin written in Rust: the state of one instance. The host makes as
/// many instances as it wants (one per tenant, say), each with its own
/// value of this type: [`crate::export_plugin!`] keeps them apart and hands
/// each method its own, so a plugin keeps no global state.
pub trait Plugin: Sized + Send + 'static {
    /// Builds one instance.
    fn init(host: HostHandle) -> Result<Self, Error>;

    /// Stops everything the instance started (threads, processes). The
    /// default only drops it.
    fn shutdown(self) {}
}

/// A plugin that hands its state to the next version on hot reload.
pub trait Stateful: Plugin {
    /// The state to carry over, in a format the plugin's later versions read.
    fn save_state(&self) -> Vec<u8>;

    /// Takes over the state an earlier instance saved.
    fn restore_state(&mut self, state: &[u8]) -> Result<(), Error>;
}

/// What the macro expands to. Not a stable API: use [`crate::export_plugin!`].
pub mod runtime {
    use std::ffi::{CStr, c_char, c_void};
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::{Mutex, MutexGuard};

    use super::{Call, Error, HostHandle, LogLevel, Plugin, Stateful};
    use crate::{Buf, CallContext, HOST_V1_1_SIZE, HostTable, MethodV1_1, status};

    pub use crate::{ABI_MAJOR, ABI_MINOR, DESCRIPTOR_V1_1_SIZE, Descriptor, MAGIC};

    /// The toolchain string for descriptors: the rustc that compiled this
    /// crate, which is the one that compiled the plugin.
    pub const TOOLCHAIN: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("PLUGCHECK_ABI_RUSTC"), "\0").as_bytes()) {
            Ok(toolchain) => toolchain,
            Err(_) => panic!("rustc version contains a NUL byte"),
        };

    /// What an exported plugin keeps for the library as a whole: the host
    /// between `init` and `shutdown`. Instances are not here: each is a
    /// heap value the host holds the pointer to.
    pub struct Slot {
        host: Mutex<Option<HostHandle>>,
    }

    impl Slot {
        pub const fn new() -> Self {
            Self {
                host: Mutex::new(None),
            }
        }

        fn host(&self) -> Option<HostHandle> {
            *self.host.lock().unwrap_or_else(|p| p.into_inner())
        }

        fn set_host(&self, host: Option<HostHandle>) {
            *self.host.lock().unwrap_or_else(|p| p.into_inner()) = host;
        }
    }

    impl Default for Slot {
        fn default() -> Self {
            Self::new()
        }
    }

    /// One instance, as `create_instance` hands it to the host.
    struct Instance<P> {
        plugin: Mutex<Option<P>>,
    }

    impl<P> Instance<P> {
        fn plugin(&self) -> Result<MutexGuard<'_, Option<P>>, i32> {
            // A poisoned lock means a method panicked halfway through a
            // change of state: refuse further calls rather than serve torn
            // state.
            self.plugin.lock().map_err(|_| status::PANIC)
        }
    }

    /// Implemented by [`crate::export_plugin!`] to tie a plugin type to its
    /// slot.
    pub trait Exported: Plugin {
        fn slot() -> &'static Slot;
    }

    /// Registers methods with the host during `init`.
    pub struct Registrar<'a> {
        table: &'a HostTable,
    }

    impl Registrar<'_> {
        pub fn register(&self, name: &CStr, method: MethodV1_1) -> Result<(), Error> {
            let Some(register) = self.table.register_method_1_1 else {
                return Err(Error::with_code(
                    status::INVALID_ARGUMENT,
                    "host table has no register_method_1_1",
                ));
            };
            // SAFETY: `register` and `ctx` come from the host table `init`
            // received; `name` is NUL-terminated and outlives the call.
            let code = unsafe { register(self.table.ctx, name.as_ptr(), Some(method)) };
            if code == status::OK {
                Ok(())
            } else {
                Err(Error::with_code(
                    code,
                    format!("host refused method `{}`", name.to_string_lossy()),
                ))
            }
        }
    }

    /// A method as an author writes it: with or without the call's context.
    /// The marker tells the two forms apart, so `export_plugin!` takes
    /// either without being told which.
    pub trait MethodFn<P, Marker>: Copy {
        fn invoke(self, plugin: &mut P, call: &Call<'_>, input: &[u8]) -> Result<Vec<u8>, Error>;
    }

    /// The marker of `fn(&mut P, &[u8])`.
    pub struct InputOnly;
    /// The marker of `fn(&mut P, &Call, &[u8])`.
    pub struct WithCall;

    impl<P, F> MethodFn<P, InputOnly> for F
    where
        F: Fn(&mut P, &[u8]) -> Result<Vec<u8>, Error> + Copy,
    {
        fn invoke(self, plugin: &mut P, _call: &Call<'_>, input: &[u8]) -> Result<Vec<u8>, Error> {
            self(plugin, input)
        }
    }

    impl<P, F> MethodFn<P, WithCall> for F
    where
        F: Fn(&mut P, &Call<'_>, &[u8]) -> Result<Vec<u8>, Error> + Copy,
    {
        fn invoke(self, plugin: &mut P, call: &Call<'_>, input: &[u8]) -> Result<Vec<u8>, Error> {
            self(plugin, call, input)
        }
    }

    /// Runs `body`, turning a panic into [`status::PANIC`].
    fn guarded(body: impl FnOnce() -> i32) -> i32 {
        catch_unwind(AssertUnwindSafe(body)).unwrap_or(status::PANIC)
    }

    fn report(host: Option<HostHandle>, error: &Error) -> i32 {
        if let Some(host) = host {
            host.log(LogLevel::Error, error.message());
        }
        error.code()
    }

    /// `init` of an exported plugin: keeps the host and registers the
    /// methods. Instances come later, from `create_instance`.
    ///
    /// # Safety
    /// `table` is NULL or points to a host table valid until `shutdown`.
    pub unsafe fn init<P: Exported>(
        table: *const HostTable,
        register_methods: fn(&Registrar<'_>) -> Result<(), Error>,
    ) -> i32 {
        guarded(|| {
            if table.is_null() {
                return status::INVALID_ARGUMENT;
            }
            // SAFETY: non-NULL, and the host keeps it valid until shutdown.
            let host = unsafe { HostHandle::from_raw(table) };
            // SAFETY: as above.
            let table_ref = unsafe { &*table };
            if table_ref.struct_size < HOST_V1_1_SIZE {
                // A 1.0 host refuses this plugin before init; one that
                // calls it anyway is told why in its own log.
                let (major, minor) = host.abi_version();
                return report(
                    Some(host),
                    &Error::with_code(
                        status::INVALID_ARGUMENT,
                        format!(
                            "this plugin needs a host of ABI 1.1 or later; the host speaks {major}.{minor}"
                        ),
                    ),
                );
            }
            let slot = P::slot();
            if slot.host().is_some() {
                return report(
                    Some(host),
                    &Error::with_code(status::FAILED, "init called twice without shutdown"),
                );
            }
            if let Err(error) = register_methods(&Registrar { table: table_ref }) {
                return report(Some(host), &error);
            }
            slot.set_host(Some(host));
            status::OK
        })
    }

    /// `shutdown` of an exported plugin. The host destroyed its instances
    /// first; the plugin forgets the host.
    pub extern "C" fn shutdown<P: Exported>() {
        guarded(|| {
            P::slot().set_host(None);
            status::OK
        });
    }

    /// `create_instance` of an exported plugin: a new value of `P`, on the
    /// heap, its pointer handed to the host.
    ///
    /// # Safety
    /// `out` is NULL or writable.
    pub unsafe extern "C" fn create_instance<P: Exported>(out: *mut *mut c_void) -> i32 {
        guarded(|| {
            // SAFETY: the caller's contract.
            let Some(out) = (unsafe { out.as_mut() }) else {
                return status::INVALID_ARGUMENT;
            };
            let Some(host) = P::slot().host() else {
                return status::NOT_INITIALIZED;
            };
            match P::init(host) {
                Ok(plugin) => {
                    let instance = Box::new(Instance {
                        plugin: Mutex::new(Some(plugin)),
                    });
                    *out = Box::into_raw(instance).cast();
                    status::OK
                }
                Err(error) => report(Some(host), &error),
            }
        })
    }

    /// `destroy_instance` of an exported plugin.
    ///
    /// # Safety
    /// `instance` is NULL or a pointer [`create_instance`] made for `P`,
    /// not destroyed before.
    pub unsafe extern "C" fn destroy_instance<P: Exported>(instance: *mut c_void) {
        guarded(|| {
            if instance.is_null() {
                return status::OK;
            }
            // SAFETY: the caller's contract: ours, destroyed once.
            let instance = unsafe { Box::from_raw(instance.cast::<Instance<P>>()) };
            // A poisoned instance (a method panicked) ends here too.
            let plugin = instance
                .plugin
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(plugin) = plugin {
                plugin.shutdown();
            }
            status::OK
        });
    }

    /// Calls `method` on `instance` with the input bytes, handing the
    /// result back through `out`.
    ///
    /// # Safety
    /// `instance` is NULL or what [`create_instance`] made for `P`; `call`
    /// is NULL or valid for the call; `input` points to `len` readable
    /// bytes (or is NULL with `len` 0) and `out` is NULL or writable.
    pub unsafe fn call<P: Exported, M>(
        instance: *mut c_void,
        call: *const CallContext,
        input: *const u8,
        len: usize,
        out: *mut Buf,
        method: impl MethodFn<P, M>,
    ) -> i32 {
        // SAFETY: the caller's contract.
        let Some(input) = (unsafe { input_slice(input, len) }) else {
            return status::INVALID_ARGUMENT;
        };
        let host = P::slot().host();
        // SAFETY: the caller's contract on `call`.
        let call = unsafe { Call::from_raw(call, host) };
        // SAFETY: the caller's contract on `instance`.
        unsafe {
            with_instance::<P>(instance, &call, |plugin| {
                match method.invoke(plugin, &call, input) {
                    // SAFETY: the caller's contract on `out`.
                    Ok(bytes) => hand_out(bytes, out),
                    Err(error) => {
                        call.log(LogLevel::Error, error.message());
                        error.code()
                    }
                }
            })
        }
    }

    /// `save_instance` as the descriptor holds it.
    pub type SaveStateFn = unsafe extern "C" fn(instance: *mut c_void, out: *mut Buf) -> i32;
    /// `restore_instance` as the descriptor holds it.
    pub type RestoreStateFn =
        unsafe extern "C" fn(instance: *mut c_void, input: *const u8, len: usize) -> i32;

    /// The state functions of the exported plugin `P`: found by whether `P`
    /// implements [`Stateful`], so a plugin cannot implement it and still
    /// be exported as stateless. For a concrete `P`, the inherent constants
    /// below exist only when `P: Stateful` and then shadow the
    /// [`NoState`] defaults (the `impls` crate's technique), all in a
    /// constant context, as the static descriptor needs.
    pub struct StateFns<P>(std::marker::PhantomData<P>);

    impl<P: Exported + Stateful> StateFns<P> {
        pub const SAVE: Option<SaveStateFn> = Some(save_instance::<P>);
        pub const RESTORE: Option<RestoreStateFn> = Some(restore_instance::<P>);
    }

    /// The defaults of [`StateFns`] for a plugin without [`Stateful`].
    pub trait NoState {
        const SAVE: Option<SaveStateFn> = None;
        const RESTORE: Option<RestoreStateFn> = None;
    }

    impl<P> NoState for StateFns<P> {}

    /// What the optional `stateful: true` still asserts: compiles only for
    /// a [`Stateful`] plugin, and refuses `false` (which it implements).
    pub const fn assert_stateful<P: Stateful>(stateful: bool) {
        assert!(
            stateful,
            "`stateful: false`, but the plugin implements Stateful: remove the line"
        );
    }

    /// `save_instance` of an exported stateful plugin.
    ///
    /// # Safety
    /// As [`call`] for `instance`; `out` is NULL or writable.
    pub unsafe extern "C" fn save_instance<P: Exported + Stateful>(
        instance: *mut c_void,
        out: *mut Buf,
    ) -> i32 {
        let host = P::slot().host();
        // SAFETY: the caller's contract; `hand_out`'s on `out`.
        unsafe {
            with_instance::<P>(
                instance,
                &Call::from_raw(std::ptr::null(), host),
                |plugin| hand_out(plugin.save_state(), out),
            )
        }
    }

    /// `restore_instance` of an exported stateful plugin.
    ///
    /// # Safety
    /// As [`call`] for `instance`; `input` points to `len` readable bytes
    /// (or is NULL with `len` 0).
    pub unsafe extern "C" fn restore_instance<P: Exported + Stateful>(
        instance: *mut c_void,
        input: *const u8,
        len: usize,
    ) -> i32 {
        // SAFETY: the caller's contract.
        let Some(input) = (unsafe { input_slice(input, len) }) else {
            return status::INVALID_ARGUMENT;
        };
        let host = P::slot().host();
        // SAFETY: the caller's contract.
        unsafe {
            with_instance::<P>(
                instance,
                &Call::from_raw(std::ptr::null(), host),
                |plugin| match plugin.restore_state(input) {
                    Ok(()) => status::OK,
                    Err(error) => report(host, &error),
                },
            )
        }
    }

    /// Runs `body` on the instance's value inside the panic guard;
    /// NOT_INITIALIZED for a NULL instance or one already shut down.
    ///
    /// # Safety
    /// `instance` is NULL or what [`create_instance`] made for `P`, not yet
    /// destroyed.
    unsafe fn with_instance<P: Exported>(
        instance: *mut c_void,
        call: &Call<'_>,
        body: impl FnOnce(&mut P) -> i32,
    ) -> i32 {
        guarded(|| {
            // SAFETY: the caller's contract.
            let Some(instance) = (unsafe { instance.cast::<Instance<P>>().as_ref() }) else {
                return status::NOT_INITIALIZED;
            };
            let mut plugin = match instance.plugin() {
                Ok(plugin) => plugin,
                Err(code) => return code,
            };
            let Some(plugin) = plugin.as_mut() else {
                return status::NOT_INITIALIZED;
            };
            // A panic is told to the host in its own words (the status
            // alone says only that there was one), then unwinds on, so the
            // instance's lock is poisoned and no later call serves torn
            // state.
            match catch_unwind(AssertUnwindSafe(|| body(plugin))) {
                Ok(code) => code,
                Err(payload) => {
                    call.log(LogLevel::Error, &panic_message(payload.as_ref()));
                    std::panic::resume_unwind(payload)
                }
            }
        })
    }

    /// `panicked: MESSAGE`, the message of a panic's payload when it is
    /// text (`panic!` with a message always is).
    fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
        match message {
            Some(message) => format!("panicked: {message}"),
            None => "panicked (with a payload that is not text)".to_owned(),
        }
    }

    /// `free_buf`: takes back a buffer [`hand_out`] gave away.
    ///
    /// # Safety
    /// `buf` is NULL or a buffer this plugin handed out and has not freed.
    pub unsafe extern "C" fn free_buf(buf: *mut Buf) {
        guarded(|| {
            // SAFETY: the caller's contract: NULL or a live buffer of ours.
            let Some(buf) = (unsafe { buf.as_mut() }) else {
                return status::OK;
            };
            if !buf.ptr.is_null() {
                let slice = std::ptr::slice_from_raw_parts_mut(buf.ptr, buf.len);
                // SAFETY: `hand_out` made this pointer from a `Box<[u8]>` of
                // exactly `len` bytes, and it is freed once (cleared below).
                drop(unsafe { Box::from_raw(slice) });
            }
            *buf = Buf::EMPTY;
            status::OK
        });
    }

    /// # Safety
    /// `input` points to `len` readable bytes, or is NULL with `len` 0.
    unsafe fn input_slice<'a>(input: *const u8, len: usize) -> Option<&'a [u8]> {
        match (input.is_null(), len) {
            (true, 0) => Some(&[]),
            (true, _) => None,
            // SAFETY: the caller's contract.
            (false, _) => Some(unsafe { std::slice::from_raw_parts(input, len) }),
        }
    }

    /// Moves `bytes` into `out` for the host; freed by [`free_buf`].
    ///
    /// # Safety
    /// `out` is NULL or writable.
    unsafe fn hand_out(bytes: Vec<u8>, out: *mut Buf) -> i32 {
        // SAFETY: the caller's contract.
        let Some(out) = (unsafe { out.as_mut() }) else {
            return if bytes.is_empty() {
                status::OK
            } else {
                status::INVALID_ARGUMENT
            };
        };
        *out = if bytes.is_empty() {
            Buf::EMPTY
        } else {
            let len = bytes.len();
            let ptr = Box::into_raw(bytes.into_boxed_slice()).cast::<u8>();
            Buf { ptr, len }
        };
        status::OK
    }

    /// The descriptor fields an exported plugin's name and version make.
    pub const fn c_str(bytes_with_nul: &'static [u8]) -> *const c_char {
        match CStr::from_bytes_with_nul(bytes_with_nul) {
            Ok(text) => text.as_ptr(),
            Err(_) => panic!("plugin name or version contains a NUL byte"),
        }
    }
}

/// Exports a Rust type as a plugcheck plugin of ABI 1.1: builds its
/// descriptor and the `plugcheck_entry` symbol, registers its methods
/// during `init`, and makes each instance the host asks for a value of the
/// type of its own (built by [`Plugin::init`]), so state lives in `self`,
/// never in a global.
///
/// ```
/// struct Echo;
/// impl plugcheck_abi::Plugin for Echo {
///     fn init(_host: plugcheck_abi::HostHandle) -> Result<Self, plugcheck_abi::Error> { Ok(Echo) }
/// }
/// impl Echo {
///     fn echo(&mut self, input: &[u8]) -> Result<Vec<u8>, plugcheck_abi::Error> { Ok(input.to_vec()) }
///     fn traced(
///         &mut self,
///         call: &plugcheck_abi::Call,
///         input: &[u8],
///     ) -> Result<Vec<u8>, plugcheck_abi::Error> {
///         call.log(plugcheck_abi::LogLevel::Info, "tagged with the caller's trace id");
///         Ok(input.to_vec())
///     }
/// }
/// plugcheck_abi::export_plugin! {
///     name: "echo",
///     plugin: Echo,
///     methods: { "echo" => Echo::echo, "traced" => Echo::traced },
/// }
/// ```
///
/// A method takes `(&mut self, input)`, or `(&mut self, &Call, input)` to
/// see its deadline, cancellation and trace context ([`Call`]).
/// When the type implements [`Stateful`], the descriptor offers
/// `save_instance`/`restore_instance`; that is found from the impl itself,
/// so a stateful plugin cannot be exported as stateless by a missing line.
/// An optional `stateful: true,` after `plugin:` asserts it.
/// The plugin's version is its crate's `CARGO_PKG_VERSION`.
#[macro_export]
macro_rules! export_plugin {
    (
        name: $name:literal,
        plugin: $ty:ty,
        $(stateful: $stateful:literal,)?
        methods: { $($method_name:literal => $method:path),* $(,)? } $(,)?
    ) => {
        $(const _: () = $crate::__private::assert_stateful::<$ty>($stateful);)?
        const _: () = {
            static SLOT: $crate::__private::Slot = $crate::__private::Slot::new();

            impl $crate::__private::Exported for $ty {
                fn slot() -> &'static $crate::__private::Slot {
                    &SLOT
                }
            }

            fn register_methods(
                registrar: &$crate::__private::Registrar<'_>,
            ) -> ::std::result::Result<(), $crate::Error> {
                $({
                    unsafe extern "C" fn trampoline(
                        instance: *mut ::std::ffi::c_void,
                        call: *const $crate::CallContext,
                        input: *const u8,
                        len: usize,
                        out: *mut $crate::Buf,
                    ) -> i32 {
                        // SAFETY: the host calls methods with the pointers the
                        // ABI promises; `call` checks them for NULL.
                        unsafe {
                            $crate::__private::call::<$ty, _>(instance, call, input, len, out, $method)
                        }
                    }
                    let name = match ::std::ffi::CStr::from_bytes_with_nul(
                        concat!($method_name, "\0").as_bytes(),
                    ) {
                        Ok(name) => name,
                        Err(_) => unreachable!("method names are literals without NUL"),
                    };
                    registrar.register(name, trampoline)?;
                })*
                Ok(())
            }

            unsafe extern "C" fn init(table: *const $crate::HostTable) -> i32 {
                // SAFETY: the host passes the table the ABI describes.
                unsafe { $crate::__private::init::<$ty>(table, register_methods) }
            }

            static DESCRIPTOR: $crate::Descriptor = $crate::Descriptor {
                magic: $crate::MAGIC,
                abi_major: $crate::ABI_MAJOR,
                abi_minor: $crate::ABI_MINOR,
                struct_size: $crate::DESCRIPTOR_V1_1_SIZE,
                name: $crate::__private::c_str(concat!($name, "\0").as_bytes()),
                version: $crate::__private::c_str(
                    concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
                ),
                toolchain: $crate::__private::TOOLCHAIN.as_ptr(),
                init: Some(init),
                shutdown: Some($crate::__private::shutdown::<$ty>),
                save_state: None,
                restore_state: None,
                free_buf: Some($crate::__private::free_buf),
                create_instance: Some($crate::__private::create_instance::<$ty>),
                destroy_instance: Some($crate::__private::destroy_instance::<$ty>),
                save_instance: {
                    use $crate::__private::NoState as _;
                    <$crate::__private::StateFns<$ty>>::SAVE
                },
                restore_instance: {
                    use $crate::__private::NoState as _;
                    <$crate::__private::StateFns<$ty>>::RESTORE
                },
            };

            #[unsafe(no_mangle)]
            pub extern "C" fn plugcheck_entry() -> *const $crate::Descriptor {
                &DESCRIPTOR
            }
        };
    };
}
