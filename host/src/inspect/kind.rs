//! Which kind of plugin a file is, so the parent picks the worker that can
//! judge it: a C-ABI plugin (the Rust worker) or a Go-native plugin built
//! with `go build -buildmode=plugin` (the Go worker). Told from what the
//! file is, never from its name: a Go-native plugin is an ELF shared object
//! whose dynamic symbols carry the Go linker's per-package hashes
//! (`go.link.pkghashbytes.PKG`, `go:link.…` since Go 1.21; the runtime's is
//! looked for), which only the `plugin` build mode exports. Go 1.19 embeds no build information in a
//! plugin, so the hashes are the mark; where Go's build information is
//! there (`.go.buildinfo`, Go 1.20 and later), it names the Go release.

use std::path::Path;

use object::Endianness;
use object::elf::{self, FileHeader64};
use object::read::elf::{FileHeader, SectionHeader};
use object::read::{ReadCache, ReadRef};

use crate::inspect::file;

/// What a file is, as far as choosing its worker goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginKind {
    /// Everything the Rust worker judges, including files that are no
    /// plugin at all (its `load` case says what they are).
    CAbi,
    GoNative(GoNative),
    /// An ELF library that exports the runtime's package hash but too few
    /// others to be a Go plugin: a forgery, or something that only looks
    /// like one. Said from the file, so the verdict never depends on
    /// whether a Go toolchain is installed (`plugin.Open` would end the
    /// process on it: "runtime: no plugin module data").
    GoLookalike {
        packages: usize,
    },
}

impl PluginKind {
    /// Why a [`PluginKind::GoLookalike`] is refused: the `load` case's reason.
    pub(crate) fn lookalike_reason(packages: usize) -> String {
        format!(
            "not a Go plugin: it exports the hashes of {packages} package(s), where every `go build -buildmode=plugin` library links the runtime and the dozens of packages under it (plugin.Open would end the process on it); build it with go build -buildmode=plugin"
        )
    }
}

/// What a Go-native plugin's file says about its build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoNative {
    /// `go1.21.13`, or `go1.21.13 X:loopvar` for a build with experiments
    /// (see `go::GoRelease`); `None` when the plugin embeds no build
    /// information.
    pub go_version: Option<String>,
}

/// The most of `.dynstr` read: a Go plugin exports every symbol, some
/// hundreds of KiB of names; far below this.
const MAX_DYNSTR_BYTES: u64 = 16 << 20;
/// The dynamic symbol of Go's runtime package hash, which every Go plugin
/// exports (and no other kind of library).
const RUNTIME_HASH: [&[u8]; 2] = [
    b"\0go.link.pkghashbytes.runtime\0",
    b"\0go:link.pkghashbytes.runtime\0",
];
/// The prefix of every package's hash symbol, before and since Go 1.21.
const PACKAGE_HASH: [&[u8]; 2] = [b"\0go.link.pkghashbytes.", b"\0go:link.pkghashbytes."];
/// The fewest package hashes a real Go plugin exports: the runtime and its
/// internal packages alone are more (a `hello` plugin built by Go 1.19
/// exports dozens). The Go worker holds a plugin to the same number of
/// packages shared with itself (`minSharedPackages`).
const MIN_GO_PACKAGES: usize = 5;

/// The most of the section names read: a few hundred bytes in any real
/// library; the bound of `.dynstr`, so a name a padded file puts far out
/// is still found.
const MAX_SECTION_NAMES_BYTES: u64 = MAX_DYNSTR_BYTES;
/// The most of `.go.buildinfo` read: the header and the version string.
const BUILDINFO_BYTES: u64 = 4096;

/// The kind of the file at `path`. A file that cannot be read or parsed is
/// `CAbi`: the Rust worker's `load` case explains it.
pub fn of(path: &Path) -> PluginKind {
    let Ok(plugin) = file::open(path) else {
        return PluginKind::CAbi;
    };
    let data = &ReadCache::new(plugin.file);
    // Only the header and the section headers: a full parse reads the
    // symbol tables too, which in a Go plugin are most of a megabyte.
    let Ok(header) = FileHeader64::<Endianness>::parse(data) else {
        return PluginKind::CAbi;
    };
    let Ok(endian) = header.endian() else {
        return PluginKind::CAbi;
    };
    if header.e_type(endian) != elf::ET_DYN
        || !crate::inspect::sniff::elf_machine_is_ours(header.e_machine(endian))
    {
        // Not loadable here whatever its kind: the Rust worker's `load`
        // case names the format or the architecture, and no Go toolchain
        // is asked for first.
        return PluginKind::CAbi;
    }
    let Ok(sections) = header.sections(endian, data) else {
        return PluginKind::CAbi;
    };
    // The section names, read in one piece: looked up one by one, each
    // name costs a seek and a read, a dozen system calls on the way to
    // every worker's start.
    let Some(section_names) = header
        .shstrndx(endian, data)
        .ok()
        .and_then(|index| sections.section(object::SectionIndex(index as usize)).ok())
        .and_then(|table| table.file_range(endian))
        .and_then(|(offset, size)| {
            data.read_bytes_at(offset, size.min(MAX_SECTION_NAMES_BYTES))
                .ok()
        })
    else {
        return PluginKind::CAbi;
    };
    let named = |name: &[u8], section: &&elf::SectionHeader64<Endianness>| {
        section_names
            .get(section.sh_name(endian) as usize..)
            .and_then(|rest| rest.strip_prefix(name))
            .is_some_and(|after| after.first() == Some(&0))
    };
    let section_bytes = |name: &[u8], max: u64| {
        let section = sections.iter().find(|section| named(name, section))?;
        let (offset, size) = section.file_range(endian)?;
        data.read_bytes_at(offset, size.min(max)).ok()
    };
    // The names of the dynamic symbols, read in one piece.
    let Some(names) = section_bytes(b".dynstr", MAX_DYNSTR_BYTES) else {
        return PluginKind::CAbi;
    };
    let go_plugin = RUNTIME_HASH
        .iter()
        .any(|name| memchr::memmem::find(names, name).is_some());
    if !go_plugin {
        return PluginKind::CAbi;
    }
    let packages = PACKAGE_HASH
        .iter()
        .map(|prefix| memchr::memmem::find_iter(names, prefix).count())
        .sum();
    if packages < MIN_GO_PACKAGES {
        return PluginKind::GoLookalike { packages };
    }
    let go_version = section_bytes(b".go.buildinfo", BUILDINFO_BYTES).and_then(buildinfo_version);
    PluginKind::GoNative(GoNative { go_version })
}

/// The Go release in a `.go.buildinfo` section of the inline format (Go
/// 1.18 and later): a 32-byte header (magic, pointer size, flags with bit
/// 2 set), then the version as a varint-prefixed string.
fn buildinfo_version(section: &[u8]) -> Option<String> {
    const MAGIC: &[u8] = b"\xff Go buildinf:";
    const INLINE_STRINGS: u8 = 0x2;
    if !section.starts_with(MAGIC) || section.get(15)? & INLINE_STRINGS == 0 {
        return None;
    }
    let rest = section.get(32..)?;
    let (len, used) = uvarint(rest)?;
    let text = rest.get(used..used.checked_add(usize::try_from(len).ok()?)?)?;
    let version = std::str::from_utf8(text).ok()?;
    // `go1.21.13 X:loopvar`: a release built with experiments has a space.
    let plausible = version.starts_with("go")
        && version.len() <= 200
        && version.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    plausible.then(|| version.to_owned())
}

/// A Go `uvarint`: the value and the bytes it took.
fn uvarint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (index, &byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte < 0x80 {
            return Some((value, index + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_from_an_inline_buildinfo_header() {
        let mut section = b"\xff Go buildinf:".to_vec();
        section.extend([8, 0x2]);
        section.resize(32, 0);
        section.push(9);
        section.extend(b"go1.21.13");
        section.extend([0x80, 0x01]);
        assert_eq!(buildinfo_version(&section).as_deref(), Some("go1.21.13"));
        let mut experimental = section[..32].to_vec();
        experimental.push(19);
        experimental.extend(b"go1.21.13 X:loopvar");
        assert_eq!(
            buildinfo_version(&experimental).as_deref(),
            Some("go1.21.13 X:loopvar"),
            "a release with experiments"
        );
        section[15] = 0;
        assert_eq!(buildinfo_version(&section), None, "pointer format");
        assert_eq!(buildinfo_version(b"\xff Go buildinf:"), None, "cut short");
    }

    #[test]
    fn a_varint_that_never_ends_is_refused() {
        assert_eq!(uvarint(&[0x80; 12]), None);
        assert_eq!(uvarint(&[0xac, 0x02]), Some((300, 2)));
    }

    #[test]
    fn files_that_are_no_go_plugin_are_c_abi() {
        let dir = tempfile::tempdir().unwrap();
        let text = dir.path().join("text.so");
        std::fs::write(&text, "not a library").unwrap();
        assert_eq!(of(&text), PluginKind::CAbi);
        assert_eq!(of(&dir.path().join("missing.so")), PluginKind::CAbi);
        assert_eq!(of(dir.path()), PluginKind::CAbi);
        let exe = std::env::current_exe().unwrap();
        assert_eq!(of(&exe), PluginKind::CAbi);
    }
}
