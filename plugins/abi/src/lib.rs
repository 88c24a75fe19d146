//! The plugcheck plugin contract, ABI v1 (1.1: instances and a call
//! context, appended to the 1.0 layout).
//!
//! A plugin is a shared library that exports one symbol, [`ENTRY_SYMBOL`]
//! (`plugcheck_entry`), returning a pointer to a static [`Descriptor`].
//! Everything else — the lifecycle functions, state handoff and the methods a
//! plugin offers — is reached through that descriptor and the [`HostTable`]
//! the host hands to `init`.
//!
//! The types here are `#[repr(C)]` twins of `include/plugcheck.h`; a test
//! compiles a C probe against the header and checks every size and offset.
//!
//! Rust plugins do not fill these structs by hand: they implement [`Plugin`]
//! and call [`export_plugin!`], which builds a correct descriptor and stops
//! panics at the boundary (turning them into [`status::PANIC`]).

use std::ffi::{c_char, c_void};
use std::mem::{offset_of, size_of};

mod export;

pub use export::{Call, Error, HostHandle, LogLevel, Plugin, Stateful, selftest_wait};

#[doc(hidden)]
pub mod __private {
    pub use crate::export::runtime::*;
}

/// Name of the one symbol a plugin exports.
pub const ENTRY_SYMBOL: &str = "plugcheck_entry";

/// `magic` of every descriptor: `"PLUGCHK\0"`.
pub const MAGIC: [u8; 8] = *b"PLUGCHK\0";

/// The ABI major version this crate describes. A host accepts only plugins
/// with the same major.
pub const ABI_MAJOR: u16 = 1;

/// The ABI minor version this crate describes. A host accepts plugins whose
/// minor is not newer than its own.
pub const ABI_MINOR: u16 = 1;

/// Size of the ABI v1.0 descriptor. `struct_size` below this is rejected;
/// fields added in later minors go after it and are read only when
/// `struct_size` covers them.
pub const DESCRIPTOR_V1_0_SIZE: u32 = offset_of!(Descriptor, create_instance) as u32;

/// Size of the ABI v1.1 descriptor: the 1.0 one and the instance functions.
pub const DESCRIPTOR_V1_1_SIZE: u32 = size_of::<Descriptor>() as u32;

/// Size of the descriptor header (`magic`, versions, `struct_size`). Its
/// layout is frozen across all ABI majors, so a host can read it from any
/// plugcheck plugin and tell which ABI the rest follows.
pub const DESCRIPTOR_HEADER_SIZE: u32 = offset_of!(Descriptor, name) as u32;

/// Size of the ABI v1.0 host table.
pub const HOST_V1_0_SIZE: u32 = offset_of!(HostTable, register_method_1_1) as u32;

/// Size of the ABI v1.1 host table: the 1.0 one and `register_method_1_1`.
pub const HOST_V1_1_SIZE: u32 = size_of::<HostTable>() as u32;

/// Size of the ABI v1.1 call context.
pub const CALL_V1_1_SIZE: u32 = size_of::<CallContext>() as u32;

/// `deadline_ns` of a call without a deadline.
pub const NO_DEADLINE: u64 = u64::MAX;

/// Status codes shared by the host and plugins. Zero is success; plugin
/// methods may return any other non-zero value of their own.
pub mod status {
    /// Success.
    pub const OK: i32 = 0;
    /// A pointer was NULL, a string was empty or not UTF-8, or a length was
    /// inconsistent.
    pub const INVALID_ARGUMENT: i32 = -1;
    /// `register_method` was given a name already registered.
    pub const DUPLICATE: i32 = -2;
    /// A Rust panic was caught at the boundary (see [`crate::export_plugin!`]).
    pub const PANIC: i32 = -3;
    /// A method or state function was called while the plugin was not
    /// initialised.
    pub const NOT_INITIALIZED: i32 = -4;
    /// The plugin reported a failure of its own.
    pub const FAILED: i32 = -5;
    /// (1.1) The method stopped early: its call was cancelled or its
    /// deadline passed.
    pub const CANCELLED: i32 = -6;

    /// The symbolic name of a shared status code, for diagnostics.
    pub fn name(code: i32) -> Option<&'static str> {
        Some(match code {
            OK => "OK",
            INVALID_ARGUMENT => "INVALID_ARGUMENT",
            DUPLICATE => "DUPLICATE",
            PANIC => "PANIC",
            NOT_INITIALIZED => "NOT_INITIALIZED",
            FAILED => "FAILED",
            CANCELLED => "CANCELLED",
            _ => return None,
        })
    }
}

/// A byte buffer handed from plugin to host (`plugcheck_buf`). The plugin
/// allocates it; the host copies it and gives it back through
/// [`Descriptor::free_buf`]. An empty result is `{NULL, 0}` and is not freed.
#[repr(C)]
#[derive(Debug)]
pub struct Buf {
    pub ptr: *mut u8,
    pub len: usize,
}

impl Buf {
    /// `{NULL, 0}`: what the host passes in, and what "no bytes" looks like.
    pub const EMPTY: Buf = Buf {
        ptr: std::ptr::null_mut(),
        len: 0,
    };
}

/// A method a plugin registers by name (`plugcheck_method`): input bytes in,
/// status out, result bytes through `out`.
pub type Method = unsafe extern "C" fn(input: *const u8, input_len: usize, out: *mut Buf) -> i32;

/// A method of ABI 1.1 (`plugcheck_method_1_1`): its instance (what
/// `create_instance` made, or NULL for a plugin without instances) and the
/// call's context come first.
pub type MethodV1_1 = unsafe extern "C" fn(
    instance: *mut c_void,
    call: *const CallContext,
    input: *const u8,
    input_len: usize,
    out: *mut Buf,
) -> i32;

/// What the host tells a 1.1 method about its call (`plugcheck_call`).
/// Valid only while the method runs; a field is read only when
/// `struct_size` covers it.
#[repr(C)]
#[derive(Debug)]
pub struct CallContext {
    /// `sizeof(plugcheck_call)` as the host compiled it.
    pub struct_size: u32,
    /// 0.
    pub reserved: u32,
    /// When the host stops waiting, on `now_ns`'s clock; [`NO_DEADLINE`]
    /// when there is none.
    pub deadline_ns: u64,
    /// Never NULL: non-zero once the host asks the call to stop. Read it
    /// atomically (the host sets it from another thread).
    pub cancelled: *const std::sync::atomic::AtomicU32,
    /// The caller's W3C `traceparent`, NUL-terminated; NULL when none.
    pub traceparent: *const c_char,
    /// The host's; passed back to `log`.
    pub ctx: *mut c_void,
    /// The host's monotonic clock, in nanoseconds.
    pub now_ns: Option<unsafe extern "C" fn() -> u64>,
    /// A log line tagged with this call's trace id.
    pub log: Option<LogFn>,
}

/// `register_method_1_1` in the host table.
pub type RegisterMethodV1_1Fn =
    unsafe extern "C" fn(ctx: *mut c_void, name: *const c_char, method: Option<MethodV1_1>) -> i32;

/// `log` in the host table: `level` is 1 (error) to 5 (trace).
pub type LogFn = unsafe extern "C" fn(ctx: *mut c_void, level: i32, utf8_message: *const c_char);

/// `register_method` in the host table.
pub type RegisterMethodFn =
    unsafe extern "C" fn(ctx: *mut c_void, name: *const c_char, method: Option<Method>) -> i32;

/// What the host gives `init` (`plugcheck_host`). Valid until `shutdown`
/// returns.
#[repr(C)]
#[derive(Debug)]
pub struct HostTable {
    /// `sizeof(plugcheck_host)` as the host compiled it.
    pub struct_size: u32,
    pub abi_major: u16,
    pub abi_minor: u16,
    pub ctx: *mut c_void,
    pub log: Option<LogFn>,
    pub register_method: Option<RegisterMethodFn>,
    /// ABI 1.1: registers a method that receives its instance and call.
    pub register_method_1_1: Option<RegisterMethodV1_1Fn>,
}

/// The static descriptor `plugcheck_entry` returns (`plugcheck_plugin`).
#[repr(C)]
#[derive(Debug)]
pub struct Descriptor {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// The ABI the plugin was built against.
    pub abi_major: u16,
    pub abi_minor: u16,
    /// `sizeof(plugcheck_plugin)` as the plugin compiled it.
    pub struct_size: u32,
    /// UTF-8, NUL-terminated, non-empty.
    pub name: *const c_char,
    /// UTF-8 semver of the plugin itself.
    pub version: *const c_char,
    /// The compiler that built the plugin, e.g. `rustc 1.95.0`; may be NULL.
    pub toolchain: *const c_char,
    /// 0 = ok; registers the plugin's methods through the host table.
    pub init: Option<unsafe extern "C" fn(host: *const HostTable) -> i32>,
    /// Must stop every thread the plugin started.
    pub shutdown: Option<unsafe extern "C" fn()>,
    /// NULL for a stateless plugin (and in every 1.1 plugin, whose state
    /// functions are `save_instance`/`restore_instance`).
    pub save_state: Option<unsafe extern "C" fn(out: *mut Buf) -> i32>,
    /// NULL for a stateless plugin (and in every 1.1 plugin).
    pub restore_state: Option<unsafe extern "C" fn(input: *const u8, len: usize) -> i32>,
    /// Frees a buffer the plugin handed out.
    pub free_buf: Option<unsafe extern "C" fn(buf: *mut Buf)>,
    /// ABI 1.1: makes an instance after `init`; NULL for a plugin with one
    /// implicit instance (its methods then receive NULL).
    pub create_instance: Option<unsafe extern "C" fn(instance: *mut *mut c_void) -> i32>,
    /// ABI 1.1: ends an instance, before `shutdown`; set with
    /// `create_instance`.
    pub destroy_instance: Option<unsafe extern "C" fn(instance: *mut c_void)>,
    /// ABI 1.1: an instance's state for the next version; NULL when
    /// stateless.
    pub save_instance: Option<unsafe extern "C" fn(instance: *mut c_void, out: *mut Buf) -> i32>,
    /// ABI 1.1: an instance takes over saved state; set with
    /// `save_instance`.
    pub restore_instance:
        Option<unsafe extern "C" fn(instance: *mut c_void, input: *const u8, len: usize) -> i32>,
}

impl Descriptor {
    /// Whether the 1.1 fields are there to read: the plugin says minor 1
    /// or later and its `struct_size` covers them. A 1.0 plugin's bytes
    /// after its 80 are never read.
    pub fn has_v1_1_fields(abi_minor: u16, struct_size: u32) -> bool {
        abi_minor >= 1 && struct_size >= DESCRIPTOR_V1_1_SIZE
    }
}

// SAFETY: a descriptor is immutable static data: its pointers refer to
// 'static NUL-terminated strings and to functions, none of which are mutated
// after the library is loaded, so sharing it between threads is sound.
unsafe impl Sync for Descriptor {}

/// Why a host refuses a plugin's ABI version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incompatibility {
    /// Different major version: layouts may differ.
    Major,
    /// Same major, but the plugin expects a newer minor than the host has.
    MinorTooNew,
}

/// The compatibility rule of ABI v1: same major, plugin minor not newer than
/// the host's.
pub fn check_compatibility(host: (u16, u16), plugin: (u16, u16)) -> Result<(), Incompatibility> {
    if plugin.0 != host.0 {
        Err(Incompatibility::Major)
    } else if plugin.1 > host.1 {
        Err(Incompatibility::MinorTooNew)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_major_and_older_or_equal_minor_is_accepted() {
        assert_eq!(check_compatibility((1, 2), (1, 0)), Ok(()));
        assert_eq!(check_compatibility((1, 2), (1, 2)), Ok(()));
    }

    #[test]
    fn newer_minor_or_other_major_is_refused() {
        assert_eq!(
            check_compatibility((1, 0), (1, 1)),
            Err(Incompatibility::MinorTooNew)
        );
        assert_eq!(
            check_compatibility((1, 0), (2, 0)),
            Err(Incompatibility::Major)
        );
        assert_eq!(
            check_compatibility((2, 0), (1, 0)),
            Err(Incompatibility::Major)
        );
    }

    #[test]
    fn header_is_the_first_sixteen_bytes() {
        assert_eq!(DESCRIPTOR_HEADER_SIZE, 16);
        const { assert!(DESCRIPTOR_V1_0_SIZE > DESCRIPTOR_HEADER_SIZE) };
    }

    #[test]
    fn a_1_1_struct_begins_with_the_1_0_one() {
        // The 1.0 sizes a 1.0 plugin was built with on 64-bit targets.
        if size_of::<usize>() == 8 {
            assert_eq!(DESCRIPTOR_V1_0_SIZE, 80);
            assert_eq!(HOST_V1_0_SIZE, 32);
            assert_eq!(DESCRIPTOR_V1_1_SIZE, 112);
            assert_eq!(HOST_V1_1_SIZE, 40);
            assert_eq!(CALL_V1_1_SIZE, 56);
        }
    }
}
