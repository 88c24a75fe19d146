//! Reads a plugin's descriptor in the order the ABI allows: the frozen
//! header first (magic, versions, size), the rest only once the version is
//! accepted and `struct_size` covers it. Nothing of the plugin is called
//! here, and every string is checked for NULL, bounded and copied out of
//! plugin memory.

use std::ffi::c_char;

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
    let plugin = header.abi();
    let host = host_abi();
    match plugcheck_abi::check_compatibility(
        (ABI_MAJOR, ABI_MINOR),
        (header.abi_major, header.abi_minor),
    ) {
        Ok(()) => None,
        Err(plugcheck_abi::Incompatibility::Major) => Some(format!(
            "plugin built against ABI {plugin}, this host speaks ABI {host}: rebuild against plugcheck-abi {ABI_MAJOR}.x (Rust) or plugcheck.h of ABI {ABI_MAJOR}.x (C, Go)"
        )),
        Err(plugcheck_abi::Incompatibility::MinorTooNew) => Some(format!(
            "plugin built against ABI {plugin}, newer than this host's ABI {host}: rebuild against plugcheck-abi {ABI_MAJOR}.{ABI_MINOR} (Rust) or plugcheck.h of ABI {ABI_MAJOR}.{ABI_MINOR} (C, Go), or upgrade plugcheck"
        )),
    }
}

/// The functions of a v1.0 descriptor, copied out of plugin memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Functions {
    pub init: unsafe extern "C" fn(*const plugcheck_abi::HostTable) -> i32,
    pub shutdown: unsafe extern "C" fn(),
    pub save_state: Option<unsafe extern "C" fn(*mut plugcheck_abi::Buf) -> i32>,
    pub restore_state: Option<unsafe extern "C" fn(*const u8, usize) -> i32>,
    pub free_buf: unsafe extern "C" fn(*mut plugcheck_abi::Buf),
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
    // SAFETY: the caller's contract: struct_size covers the v1.0 fields.
    let fields = unsafe { descriptor.read_unaligned() };
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
            save_state: fields.save_state,
            restore_state: fields.restore_state,
            free_buf: fields.free_buf.expect("checked above"),
        },
    })
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
        }
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
            problem.contains("ABI 2.0") && problem.contains("ABI 1.0"),
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
