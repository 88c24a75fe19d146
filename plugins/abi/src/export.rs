//! The safe side of the contract for Rust plugin authors: implement
//! [`Plugin`] (and [`Stateful`] when the plugin carries state across a
//! reload), then call [`crate::export_plugin!`].
//!
//! The macro owns every `extern "C"` function of the plugin. Each one runs
//! the author's code inside `catch_unwind`, so a panic becomes
//! [`status::PANIC`](crate::status::PANIC) instead of unwinding into a C
//! host (which would abort it).

use std::ffi::CString;
use std::fmt;

use crate::HostTable;

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
        if (table.struct_size as usize) < std::mem::size_of::<HostTable>() {
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

/// A plugin written in Rust. One instance lives between `init` and
/// `shutdown`; [`crate::export_plugin!`] stores it and hands it to methods.
pub trait Plugin: Sized + Send + 'static {
    /// Builds the plugin. Methods are registered after this succeeds.
    fn init(host: HostHandle) -> Result<Self, Error>;

    /// Stops everything the plugin started (threads, processes). The default
    /// only drops the instance.
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
    use std::ffi::{CStr, c_char};
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::{Mutex, MutexGuard};

    use super::{Error, HostHandle, LogLevel, Plugin, Stateful};
    use crate::{Buf, HostTable, Method, status};

    pub use crate::{ABI_MAJOR, ABI_MINOR, DESCRIPTOR_V1_0_SIZE, Descriptor, MAGIC};

    /// The toolchain string for descriptors: the rustc that compiled this
    /// crate, which is the one that compiled the plugin.
    pub const TOOLCHAIN: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("PLUGCHECK_ABI_RUSTC"), "\0").as_bytes()) {
            Ok(toolchain) => toolchain,
            Err(_) => panic!("rustc version contains a NUL byte"),
        };

    /// Where the live instance of an exported plugin is kept.
    pub struct Slot<P> {
        instance: Mutex<Option<P>>,
        host: Mutex<Option<HostHandle>>,
    }

    impl<P> Slot<P> {
        pub const fn new() -> Self {
            Self {
                instance: Mutex::new(None),
                host: Mutex::new(None),
            }
        }

        fn instance(&self) -> Result<MutexGuard<'_, Option<P>>, i32> {
            // A poisoned lock means a method panicked halfway through a change
            // of state: refuse further calls rather than serve torn state.
            self.instance.lock().map_err(|_| status::PANIC)
        }
    }

    impl<P> Default for Slot<P> {
        fn default() -> Self {
            Self::new()
        }
    }

    /// Implemented by [`crate::export_plugin!`] to tie a plugin type to its
    /// slot.
    pub trait Exported: Plugin {
        fn slot() -> &'static Slot<Self>;
    }

    /// Registers methods with the host during `init`.
    pub struct Registrar<'a> {
        table: &'a HostTable,
    }

    impl Registrar<'_> {
        pub fn register(&self, name: &CStr, method: Method) -> Result<(), Error> {
            let Some(register) = self.table.register_method else {
                return Err(Error::with_code(
                    status::INVALID_ARGUMENT,
                    "host table has no register_method",
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

    /// `init` of an exported plugin.
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
            if (table_ref.struct_size as usize) < std::mem::size_of::<HostTable>() {
                return status::INVALID_ARGUMENT;
            }
            let slot = P::slot();
            let Ok(mut instance) = slot.instance() else {
                return status::PANIC;
            };
            if instance.is_some() {
                return report(
                    Some(host),
                    &Error::with_code(status::FAILED, "init called twice without shutdown"),
                );
            }
            let plugin = match P::init(host) {
                Ok(plugin) => plugin,
                Err(error) => return report(Some(host), &error),
            };
            if let Err(error) = register_methods(&Registrar { table: table_ref }) {
                plugin.shutdown();
                return report(Some(host), &error);
            }
            *instance = Some(plugin);
            if let Ok(mut kept) = slot.host.lock() {
                *kept = Some(host);
            }
            status::OK
        })
    }

    /// `shutdown` of an exported plugin.
    pub extern "C" fn shutdown<P: Exported>() {
        guarded(|| {
            let slot = P::slot();
            // A poisoned instance (a method panicked) ends here too, and
            // the poison with it: the next `init` starts a fresh one.
            let plugin = slot
                .instance
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            slot.instance.clear_poison();
            if let Some(plugin) = plugin {
                plugin.shutdown();
            }
            if let Ok(mut host) = slot.host.lock() {
                *host = None;
            }
            status::OK
        });
    }

    /// Calls `method` on the live instance with the input bytes, handing the
    /// result back through `out`.
    ///
    /// # Safety
    /// `input` points to `len` readable bytes (or is NULL with `len` 0) and
    /// `out` is NULL or writable.
    pub unsafe fn call<P: Exported>(
        input: *const u8,
        len: usize,
        out: *mut Buf,
        method: fn(&mut P, &[u8]) -> Result<Vec<u8>, Error>,
    ) -> i32 {
        // SAFETY: the caller's contract.
        let Some(input) = (unsafe { input_slice(input, len) }) else {
            return status::INVALID_ARGUMENT;
        };
        with_live::<P>(|plugin, host| match method(plugin, input) {
            // SAFETY: the caller's contract on `out`.
            Ok(bytes) => unsafe { hand_out(bytes, out) },
            Err(error) => report(host, &error),
        })
    }

    /// `save_state` as the descriptor holds it.
    pub type SaveStateFn = unsafe extern "C" fn(out: *mut Buf) -> i32;
    /// `restore_state` as the descriptor holds it.
    pub type RestoreStateFn = unsafe extern "C" fn(input: *const u8, len: usize) -> i32;

    /// The state functions of the exported plugin `P`: found by whether `P`
    /// implements [`Stateful`], so a plugin cannot implement it and still
    /// be exported as stateless. For a concrete `P`, the inherent constants
    /// below exist only when `P: Stateful` and then shadow the
    /// [`NoState`] defaults (the `impls` crate's technique), all in a
    /// constant context, as the static descriptor needs.
    pub struct StateFns<P>(std::marker::PhantomData<P>);

    impl<P: Exported + Stateful> StateFns<P> {
        pub const SAVE: Option<SaveStateFn> = Some(save_state::<P>);
        pub const RESTORE: Option<RestoreStateFn> = Some(restore_state::<P>);
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

    /// `save_state` of an exported stateful plugin.
    ///
    /// # Safety
    /// `out` is NULL or writable.
    pub unsafe extern "C" fn save_state<P: Exported + Stateful>(out: *mut Buf) -> i32 {
        // SAFETY: the caller's contract on `out`.
        with_live::<P>(|plugin, _| unsafe { hand_out(plugin.save_state(), out) })
    }

    /// `restore_state` of an exported stateful plugin.
    ///
    /// # Safety
    /// `input` points to `len` readable bytes (or is NULL with `len` 0).
    pub unsafe extern "C" fn restore_state<P: Exported + Stateful>(
        input: *const u8,
        len: usize,
    ) -> i32 {
        // SAFETY: the caller's contract.
        let Some(input) = (unsafe { input_slice(input, len) }) else {
            return status::INVALID_ARGUMENT;
        };
        with_live::<P>(|plugin, host| match plugin.restore_state(input) {
            Ok(()) => status::OK,
            Err(error) => report(host, &error),
        })
    }

    /// Runs `body` on the live instance, with the host for reporting errors,
    /// inside the panic guard. NOT_INITIALIZED when there is no instance.
    fn with_live<P: Exported>(body: impl FnOnce(&mut P, Option<HostHandle>) -> i32) -> i32 {
        guarded(|| {
            let slot = P::slot();
            let mut instance = match slot.instance() {
                Ok(instance) => instance,
                Err(code) => return code,
            };
            let Some(plugin) = instance.as_mut() else {
                return status::NOT_INITIALIZED;
            };
            let host = slot.host.lock().ok().and_then(|host| *host);
            // A panic is told to the host in its own words (the status
            // alone says only that there was one), then unwinds on, so the
            // instance's lock is poisoned and no later call serves torn
            // state.
            match catch_unwind(AssertUnwindSafe(|| body(plugin, host))) {
                Ok(code) => code,
                Err(payload) => {
                    if let Some(host) = host {
                        host.log(LogLevel::Error, &panic_message(payload.as_ref()));
                    }
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

/// Exports a Rust type as a plugcheck plugin: builds its descriptor and the
/// `plugcheck_entry` symbol, and registers its methods during `init`.
///
/// ```
/// struct Echo;
/// impl plugcheck_abi::Plugin for Echo {
///     fn init(_host: plugcheck_abi::HostHandle) -> Result<Self, plugcheck_abi::Error> { Ok(Echo) }
/// }
/// impl Echo {
///     fn echo(&mut self, input: &[u8]) -> Result<Vec<u8>, plugcheck_abi::Error> { Ok(input.to_vec()) }
/// }
/// plugcheck_abi::export_plugin! {
///     name: "echo",
///     plugin: Echo,
///     methods: { "echo" => Echo::echo },
/// }
/// ```
///
/// When the type implements [`Stateful`], the descriptor offers
/// `save_state`/`restore_state`; that is found from the impl itself, so a
/// stateful plugin cannot be exported as stateless by a missing line. An
/// optional `stateful: true,` after `plugin:` asserts it.
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
            static SLOT: $crate::__private::Slot<$ty> = $crate::__private::Slot::new();

            impl $crate::__private::Exported for $ty {
                fn slot() -> &'static $crate::__private::Slot<Self> {
                    &SLOT
                }
            }

            fn register_methods(
                registrar: &$crate::__private::Registrar<'_>,
            ) -> ::std::result::Result<(), $crate::Error> {
                $({
                    unsafe extern "C" fn trampoline(
                        input: *const u8,
                        len: usize,
                        out: *mut $crate::Buf,
                    ) -> i32 {
                        // SAFETY: the host calls methods with the pointers the
                        // ABI promises; `call` checks them for NULL.
                        unsafe { $crate::__private::call::<$ty>(input, len, out, $method) }
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
                struct_size: $crate::DESCRIPTOR_V1_0_SIZE,
                name: $crate::__private::c_str(concat!($name, "\0").as_bytes()),
                version: $crate::__private::c_str(
                    concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes(),
                ),
                toolchain: $crate::__private::TOOLCHAIN.as_ptr(),
                init: Some(init),
                shutdown: Some($crate::__private::shutdown::<$ty>),
                save_state: {
                    use $crate::__private::NoState as _;
                    <$crate::__private::StateFns<$ty>>::SAVE
                },
                restore_state: {
                    use $crate::__private::NoState as _;
                    <$crate::__private::StateFns<$ty>>::RESTORE
                },
                free_buf: Some($crate::__private::free_buf),
            };

            #[unsafe(no_mangle)]
            pub extern "C" fn plugcheck_entry() -> *const $crate::Descriptor {
                &DESCRIPTOR
            }
        };
    };
}
