//! Reads a plugin's descriptor in the order the ABI allows: the frozen
//! header first (magic, versions, size), the rest only once the version is
//! accepted and `struct_size` covers it. Nothing of the plugin is called
//! here, and every string is checked for NULL, bounded and copied out of
//! plugin memory.

use std::ffi::{c_char, c_void};

use plugcheck_abi::{
    ABI_MAJOR, ABI_MINOR, DESCRIPTOR_HEADER_SIZE, DESCRIPTOR_V1_0_SIZE, Descriptor, MAGIC,
};

use crate::plugin::memory::{CText, Overlong, read_c_text};
use crate::report::PluginInfo;

/// Longest string read from a descriptor; a missing terminator is reported
/// rather than read past. The Go worker holds `Info()` to the same bound.
use crate::worker::limits::PLUGIN_STRING_BYTES as MAX_STRING_BYTES;

/// The frozen first 16 bytes of every descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub magic: [u8; 8],
    pub abi_major: u16,
    pub abi_minor: u16,
    pub struct_size: u32,
}

impl Header {
    pub(crate) fn abi(&self) -> String {
        format!("{}.{}", self.abi_major, self.abi_minor)
    }
}

pub(crate) fn host_abi() -> String {
    format!("{ABI_MAJOR}.{ABI_MINOR}")
}

/// Why the header is not a plugcheck descriptor header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HeaderError {
    #[error(
        "`plugcheck_entry` returned NULL instead of a descriptor: return a pointer to a static plugcheck_plugin"
    )]
    Null,
    #[error(
        "the descriptor's magic is {found:?}, not \"PLUGCHK\\0\": `plugcheck_entry` does not return a plugcheck_plugin (or it is corrupt)"
    )]
    BadMagic { found: String },
    #[error(
        "the descriptor says struct_size {size}, smaller than even its {DESCRIPTOR_HEADER_SIZE}-byte header: set struct_size to sizeof(plugcheck_plugin)"
    )]
    TooSmallForHeader { size: u32 },
}

/// Reads the header.
///
/// # Safety
/// `descriptor` is what `plugcheck_entry` returned: NULL, or readable for
/// the header's 16 bytes (a plugin that lies about that crashes the worker,
/// which is the point of running it there).
pub(crate) unsafe fn read_header(descriptor: *const Descriptor) -> Result<Header, HeaderError> {
    if descriptor.is_null() {
        return Err(HeaderError::Null);
    }
    // SAFETY: the caller's contract; read unaligned, as a plugin's static
    // need not honour our alignment.
    let bytes = unsafe { descriptor.cast::<[u8; 16]>().read_unaligned() };
    let header = Header {
        magic: bytes[0..8].try_into().expect("8 bytes"),
        abi_major: u16::from_ne_bytes([bytes[8], bytes[9]]),
        abi_minor: u16::from_ne_bytes([bytes[10], bytes[11]]),
        struct_size: u32::from_ne_bytes(bytes[12..16].try_into().expect("4 bytes")),
    };
    if header.magic != MAGIC {
        return Err(HeaderError::BadMagic {
            found: String::from_utf8_lossy(&header.magic).into_owned(),
        });
    }
    if header.struct_size < DESCRIPTOR_HEADER_SIZE {
        return Err(HeaderError::TooSmallForHeader {
            size: header.struct_size,
        });
    }
    Ok(header)
}

/// Why a plugin's ABI version is refused; both versions and the remedy are
/// in the message.
pub(crate) fn version_problem(header: &Header) -> Option<String> {
    version_problem_for((ABI_MAJOR, ABI_MINOR), header)
}

/// [`version_problem`] for a host of ABI `host`: the rule as a host of
/// another version applies it (a 1.0 host and a 1.1 plugin, say).
fn version_problem_for(host: (u16, u16), header: &Header) -> Option<String> {
    let plugin = header.abi();
    let (major, minor) = host;
    let host = format!("{major}.{minor}");
    match plugcheck_abi::check_compatibility((major, minor), (header.abi_major, header.abi_minor)) {
        Ok(()) => None,
        Err(plugcheck_abi::Incompatibility::Major) => Some(format!(
            "plugin built against ABI {plugin}, this host speaks ABI {host}: rebuild against plugcheck-abi {major}.x (Rust) or plugcheck.h of ABI {major}.x (C, Go)"
        )),
        Err(plugcheck_abi::Incompatibility::MinorTooNew) => Some(format!(
            "plugin built against ABI {plugin}, newer than this host's ABI {host}: rebuild against plugcheck-abi {major}.{minor} (Rust) or plugcheck.h of ABI {major}.{minor} (C, Go), or upgrade plugcheck"
        )),
    }
}

/// The functions of a descriptor, copied out of plugin memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Functions {
    pub init: unsafe extern "C" fn(*const plugcheck_abi::HostTable) -> i32,
    pub shutdown: unsafe extern "C" fn(),
    pub state: Option<StateFunctions>,
    pub free_buf: unsafe extern "C" fn(*mut plugcheck_abi::Buf),
    /// A 1.1 plugin's instances; `None` for one implicit instance (every
    /// 1.0 plugin, and a 1.1 plugin that makes none).
    pub instances: Option<InstanceFunctions>,
}

/// How a stateful plugin saves and restores: 1.0's functions of the one
/// instance, or 1.1's, which take theirs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum StateFunctions {
    V1_0 {
        save: unsafe extern "C" fn(*mut plugcheck_abi::Buf) -> i32,
        restore: unsafe extern "C" fn(*const u8, usize) -> i32,
    },
    V1_1 {
        save: unsafe extern "C" fn(*mut c_void, *mut plugcheck_abi::Buf) -> i32,
        restore: unsafe extern "C" fn(*mut c_void, *const u8, usize) -> i32,
    },
}

/// `create_instance` and `destroy_instance` of a 1.1 plugin.
#[derive(Debug, Clone, Copy)]
pub(crate) struct InstanceFunctions {
    pub create: unsafe extern "C" fn(*mut *mut c_void) -> i32,
    pub destroy: unsafe extern "C" fn(*mut c_void),
}

/// A descriptor that passed every check.
#[derive(Debug, Clone)]
pub(crate) struct Validated {
    pub info: PluginInfo,
    pub functions: Functions,
}

/// Reads and checks the v1.0 fields.
///
/// # Safety
/// `descriptor` passed [`read_header`] with an accepted version, and its
/// memory is as long as `header.struct_size` says.
pub(crate) unsafe fn read_descriptor(
    descriptor: *const Descriptor,
    header: &Header,
) -> Result<Validated, String> {
    if header.struct_size < DESCRIPTOR_V1_0_SIZE {
        return Err(format!(
            "struct_size {} is smaller than the ABI v1.0 descriptor ({DESCRIPTOR_V1_0_SIZE} bytes): rebuild against the current plugcheck.h or plugcheck-abi",
            header.struct_size
        ));
    }
    // SAFETY: the caller's contract: the plugin's memory is as long as its
    // struct_size, which covers the v1.0 fields.
    let fields = unsafe { copy_fields(descriptor, header.struct_size) };
    // Each string is copied through the OS, never dereferenced here.
    let name = match read_string(fields.name) {
        Ok(Some(name)) if !name.is_empty() => name,
        Ok(Some(_)) => return Err("the descriptor's name is empty: give the plugin a name".into()),
        Ok(None) => return Err("the descriptor's name is NULL: give the plugin a name".into()),
        Err(problem) => return Err(format!("the descriptor's name {problem}")),
    };
    let version = match read_string(fields.version) {
        Ok(Some(version)) if !version.is_empty() => version,
        Ok(_) => {
            return Err(format!(
                "plugin `{name}` has a NULL or empty version: set it to the plugin's semver"
            ));
        }
        Err(problem) => return Err(format!("plugin `{name}`'s version {problem}")),
    };
    let toolchain = read_string(fields.toolchain)
        .map_err(|problem| format!("plugin `{name}`'s toolchain string {problem}"))?;
    let missing: Vec<&str> = [
        ("init", fields.init.is_none()),
        ("shutdown", fields.shutdown.is_none()),
        ("free_buf", fields.free_buf.is_none()),
    ]
    .into_iter()
    .filter_map(|(field, is_missing)| is_missing.then_some(field))
    .collect();
    if !missing.is_empty() {
        return Err(format!(
            "plugin `{name}` leaves required function(s) NULL: {}",
            missing.join(", ")
        ));
    }
    if fields.save_state.is_some() != fields.restore_state.is_some() {
        return Err(format!(
            "plugin `{name}` sets only one of save_state and restore_state: set both (stateful) or neither (stateless)"
        ));
    }
    let (state, instances) = if Descriptor::has_v1_1_fields(header.abi_minor, header.struct_size) {
        v1_1_functions(&name, &fields)?
    } else {
        let state = fields
            .save_state
            .zip(fields.restore_state)
            .map(|(save, restore)| StateFunctions::V1_0 { save, restore });
        (state, None)
    };
    Ok(Validated {
        info: PluginInfo {
            name,
            version,
            toolchain,
            abi: header.abi(),
            struct_size: header.struct_size,
        },
        functions: Functions {
            init: fields.init.expect("checked above"),
            shutdown: fields.shutdown.expect("checked above"),
            state,
            free_buf: fields.free_buf.expect("checked above"),
            instances,
        },
    })
}

/// The descriptor's fields, as far as its `struct_size` goes: the rest
/// (a 1.0 descriptor's 1.1 fields, which are not its) stays zero, which
/// is NULL for every function. A descriptor is never read past its size.
///
/// # Safety
/// `descriptor` is readable for `struct_size` bytes (at most the size of
/// [`Descriptor`] is read).
unsafe fn copy_fields(descriptor: *const Descriptor, struct_size: u32) -> Descriptor {
    let len = (struct_size as usize).min(std::mem::size_of::<Descriptor>());
    let mut fields = std::mem::MaybeUninit::<Descriptor>::zeroed();
    // SAFETY: `len` bytes are readable (the caller's contract) and fit in
    // `fields`; the copy is bytewise, so alignment does not matter.
    unsafe {
        std::ptr::copy_nonoverlapping(
            descriptor.cast::<u8>(),
            fields.as_mut_ptr().cast::<u8>(),
            len,
        );
    }
    // SAFETY: every field of a descriptor is an integer, a byte array, a
    // raw pointer or an `Option` of a function pointer, for all of which
    // zero is a valid value, and the copied bytes are the plugin's values
    // of the same types (a function pointer the plugin set is non-NULL).
    unsafe { fields.assume_init() }
}

/// The state and instance functions of a descriptor with the 1.1 fields,
/// checked: each pair set together, and state through the 1.1 pair only
/// (a 1.1 plugin's state belongs to an instance, and a host must not have
/// to guess which pair is meant).
fn v1_1_functions(
    name: &str,
    fields: &Descriptor,
) -> Result<(Option<StateFunctions>, Option<InstanceFunctions>), String> {
    if fields.create_instance.is_some() != fields.destroy_instance.is_some() {
        return Err(format!(
            "plugin `{name}` sets only one of create_instance and destroy_instance: set both (instances) or neither (one implicit instance)"
        ));
    }
    if fields.save_instance.is_some() != fields.restore_instance.is_some() {
        return Err(format!(
            "plugin `{name}` sets only one of save_instance and restore_instance: set both (stateful) or neither (stateless)"
        ));
    }
    let v1_0_state = fields
        .save_state
        .zip(fields.restore_state)
        .map(|(save, restore)| StateFunctions::V1_0 { save, restore });
    let v1_1_state = fields
        .save_instance
        .zip(fields.restore_instance)
        .map(|(save, restore)| StateFunctions::V1_1 { save, restore });
    // A 1.0 plugin rebuilt against the 1.1 header says minor 1 with its
    // 1.0 state pair and no instances: its one instance's state is that
    // pair's. With instances, or beside the 1.1 pair, it is ambiguous.
    let state = match (v1_0_state, v1_1_state) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "plugin `{name}` sets both save_state/restore_state and save_instance/restore_instance: set one pair (the 1.1 one when it makes instances)"
            ));
        }
        (Some(_), None) if fields.create_instance.is_some() => {
            return Err(format!(
                "plugin `{name}` makes instances but saves state through 1.0's save_state/restore_state, which do not say whose: use save_instance/restore_instance"
            ));
        }
        (v1_0, v1_1) => v1_0.or(v1_1),
    };
    let instances = fields
        .create_instance
        .zip(fields.destroy_instance)
        .map(|(create, destroy)| InstanceFunctions { create, destroy });
    Ok((state, instances))
}

/// Copies a NUL-terminated UTF-8 string out of plugin memory, at most
/// [`MAX_STRING_BYTES`] of it, through the OS (a bad pointer is a reason,
/// not a crash). The pointer is never dereferenced here, so any value is
/// safe to pass.
fn read_string(text: *const c_char) -> Result<Option<String>, String> {
    if text.is_null() {
        return Ok(None);
    }
    match read_c_text(text.cast(), MAX_STRING_BYTES, Overlong::Measure) {
        CText::Text(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| "is not valid UTF-8: descriptor strings must be UTF-8".to_owned()),
        other => Err(other
            .problem(MAX_STRING_BYTES)
            .expect("only text has no problem")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn init(_: *const plugcheck_abi::HostTable) -> i32 {
        0
    }
    unsafe extern "C" fn shutdown() {}
    unsafe extern "C" fn free_buf(_: *mut plugcheck_abi::Buf) {}

    fn descriptor(name: *const c_char) -> Descriptor {
        Descriptor {
            magic: MAGIC,
            abi_major: ABI_MAJOR,
            abi_minor: ABI_MINOR,
            struct_size: DESCRIPTOR_V1_0_SIZE,
            name,
            version: c"1.2.3".as_ptr(),
            toolchain: std::ptr::null(),
            init: Some(init),
            shutdown: Some(shutdown),
            save_state: None,
            restore_state: None,
            free_buf: Some(free_buf),
            create_instance: None,
            destroy_instance: None,
            save_instance: None,
            restore_instance: None,
        }
    }

    #[test]
    fn a_1_1_plugin_on_a_host_of_1_0_is_refused_naming_both() {
        let header = Header {
            magic: MAGIC,
            abi_major: 1,
            abi_minor: 1,
            struct_size: plugcheck_abi::DESCRIPTOR_V1_1_SIZE,
        };
        let problem = version_problem_for((1, 0), &header).unwrap();
        assert!(
            problem.contains("ABI 1.1, newer than this host's ABI 1.0"),
            "{problem}"
        );
        assert_eq!(version_problem_for((1, 1), &header), None);
        // And a 1.0 plugin on this 1.1 host is accepted.
        let old = Header {
            abi_minor: 0,
            struct_size: DESCRIPTOR_V1_0_SIZE,
            ..header
        };
        assert_eq!(version_problem(&old), None);
    }

    #[test]
    fn the_1_1_fields_are_read_only_from_a_1_1_descriptor_and_checked() {
        unsafe extern "C" fn create(_: *mut *mut c_void) -> i32 {
            0
        }
        unsafe extern "C" fn save(_: *mut plugcheck_abi::Buf) -> i32 {
            0
        }
        unsafe extern "C" fn restore(_: *const u8, _: usize) -> i32 {
            0
        }
        // A 1.0 descriptor's bytes past its 80 are not its: never read.
        let mut d = descriptor(c"demo".as_ptr());
        d.abi_minor = 0;
        d.create_instance = Some(create);
        // SAFETY: `d` is a complete local descriptor.
        let header = unsafe { read_header(&d) }.unwrap();
        // SAFETY: as above.
        let validated = unsafe { read_descriptor(&d, &header) }.unwrap();
        assert!(validated.functions.instances.is_none());
        // A 1.1 one with half a pair, or the 1.0 state pair, is refused.
        d.abi_minor = 1;
        d.struct_size = plugcheck_abi::DESCRIPTOR_V1_1_SIZE;
        // SAFETY: as above.
        let header = unsafe { read_header(&d) }.unwrap();
        // SAFETY: as above.
        let error = unsafe { read_descriptor(&d, &header) }.unwrap_err();
        assert!(error.contains("only one of create_instance"), "{error}");
        // A 1.0 plugin rebuilt against the 1.1 header: no instances, the
        // 1.0 state pair: its one instance's state.
        d.create_instance = None;
        d.save_state = Some(save);
        d.restore_state = Some(restore);
        // SAFETY: as above.
        let validated = unsafe { read_descriptor(&d, &header) }.unwrap();
        assert!(matches!(
            validated.functions.state,
            Some(StateFunctions::V1_0 { .. })
        ));
        // With instances, the 1.0 pair does not say whose state it is.
        unsafe extern "C" fn destroy(_: *mut c_void) {}
        d.create_instance = Some(create);
        d.destroy_instance = Some(destroy);
        // SAFETY: as above.
        let error = unsafe { read_descriptor(&d, &header) }.unwrap_err();
        assert!(error.contains("do not say whose"), "{error}");
    }

    #[test]
    fn bytes_past_struct_size_are_never_taken() {
        // A 1.1 descriptor's room, the 1.0 part valid and the rest garbage
        // that a 1.0 plugin's neighbouring data could be.
        let d = descriptor(c"demo".as_ptr());
        let mut bytes = [0xffu8; std::mem::size_of::<Descriptor>()];
        // SAFETY: `d` is a complete local descriptor, copied bytewise into
        // a buffer of its size.
        unsafe {
            std::ptr::copy_nonoverlapping(
                (&d as *const Descriptor).cast::<u8>(),
                bytes.as_mut_ptr(),
                DESCRIPTOR_V1_0_SIZE as usize,
            );
        }
        // SAFETY: 80 of the 112 bytes are read: the buffer has them all.
        let fields = unsafe { copy_fields(bytes.as_ptr().cast(), DESCRIPTOR_V1_0_SIZE) };
        assert!(fields.create_instance.is_none() && fields.save_instance.is_none());
        assert!(fields.init.is_some() && fields.free_buf.is_some());
    }

    #[test]
    fn a_good_descriptor_validates() {
        let d = descriptor(c"demo".as_ptr());
        // SAFETY: `d` is a complete local descriptor.
        let header = unsafe { read_header(&d) }.unwrap();
        assert_eq!(version_problem(&header), None);
        // SAFETY: as above.
        let validated = unsafe { read_descriptor(&d, &header) }.unwrap();
        assert_eq!(validated.info.name, "demo");
        assert_eq!(validated.info.version, "1.2.3");
        assert_eq!(validated.info.toolchain, None);
    }

    #[test]
    fn null_bad_magic_and_versions_are_named() {
        // SAFETY: NULL is checked before any read.
        assert_eq!(
            unsafe { read_header(std::ptr::null()) },
            Err(HeaderError::Null)
        );
        let mut d = descriptor(c"demo".as_ptr());
        d.magic = *b"NOTMAGIC";
        // SAFETY: `d` is a complete local descriptor.
        assert!(matches!(
            unsafe { read_header(&d) },
            Err(HeaderError::BadMagic { .. })
        ));
        let newer = Header {
            magic: MAGIC,
            abi_major: 2,
            abi_minor: 0,
            struct_size: 16,
        };
        let problem = version_problem(&newer).unwrap();
        assert!(
            problem.contains("ABI 2.0") && problem.contains("ABI 1.1"),
            "{problem}"
        );
        assert!(
            problem.contains("rebuild against plugcheck-abi 1.x"),
            "{problem}"
        );
    }

    #[test]
    fn null_and_non_utf8_names_are_refused() {
        let d = descriptor(std::ptr::null());
        // SAFETY: `d` is a complete local descriptor.
        let header = unsafe { read_header(&d) }.unwrap();
        // SAFETY: as above.
        let error = unsafe { read_descriptor(&d, &header) }.unwrap_err();
        assert!(error.contains("name is NULL"), "{error}");
        let bad = [0xffu8, 0xfe, 0];
        let d = descriptor(bad.as_ptr().cast());
        // SAFETY: as above.
        let error = unsafe { read_descriptor(&d, &header) }.unwrap_err();
        assert!(error.contains("not valid UTF-8"), "{error}");
    }
}
