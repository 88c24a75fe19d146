//! Reads a would-be plugin file (never loads it) to say what it is before
//! the OS loader gets a chance to answer with a vague error: missing, empty,
//! text, truncated, the other platform's format, the wrong architecture, an
//! executable rather than a library.

use std::path::Path;

use object::read::ReadCache;
use object::{
    Architecture, BinaryFormat, FileKind, Object, ObjectKind, ObjectSection, ObjectSegment,
    ObjectSymbol,
};

use crate::inspect::archive::{self, ArchiveKind};
use crate::inspect::file;
use crate::inspect::open_error::OpenError;
use crate::os;

/// Bytes read from the start of a file that is no binary, to say what it
/// looks like.
const HEAD_BYTES: usize = 512;

/// The most of `.data` searched for Go's build-info magic: Go puts it at
/// the start of the section.
const GO_MAGIC_SEARCH_BYTES: u64 = 64 * 1024;

/// The file behind the parser: read on demand, range by range.
type Data<'a> = &'a ReadCache<std::fs::File>;

/// What a file that looks loadable turned out to be.
#[derive(Debug, Clone)]
pub struct Sniffed {
    /// e.g. `ELF 64-bit shared object, x86_64`.
    pub description: String,
    /// Symbols the library imports, for explaining why it stays resident.
    pub imports: Vec<String>,
    /// Whether it carries a Go runtime, which never unloads.
    pub go_runtime: bool,
    /// The language it was built from, as far as the binary tells.
    pub language: Language,
    /// Exported symbol names (at most [`MAX_EXPORTS`]), for naming near
    /// misses when the entry point is missing.
    pub exports: Vec<String>,
}

/// Exported names kept for advice.
pub(crate) const MAX_EXPORTS: usize = 4096;

/// The language a plugin was built from, read from the binary: a Go
/// runtime's build info, rustc's mark in `.comment` or its panic
/// machinery; otherwise C (or another language through a C compiler).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Rust,
    Go,
    C,
}

/// Checks `path` and reads its headers — only the headers: the file is
/// read through a cache that fetches the ranges the parser asks for, so a
/// plugin padded with gigabytes costs what its headers cost.
pub(crate) fn sniff(path: &Path) -> Result<Sniffed, OpenError> {
    let path_buf = path.to_owned();
    if !path.is_absolute() {
        return Err(OpenError::NotAbsolute { path: path_buf });
    }
    let mut plugin = match file::open(path) {
        Ok(plugin) => plugin,
        Err(problem @ file::FileProblem::NotFound { .. }) => {
            // Looked for once: the archive may go while we look (a rebuild).
            return Err(match archive::beside(path) {
                Some((found, kind)) => OpenError::BuiltAsArchive {
                    path: path_buf,
                    found,
                    kind,
                },
                None => problem.into(),
            });
        }
        Err(problem) => return Err(problem.into()),
    };
    if plugin.len == 0 {
        return Err(OpenError::Empty { path: path_buf });
    }
    let head = plugin
        .head(HEAD_BYTES)
        .map_err(|source| file::FileProblem::Unreadable {
            path: path_buf.clone(),
            source,
        })?;
    let len = plugin.len;
    let data = ReadCache::new(plugin.file);
    let data = &data;
    let kind = match FileKind::parse(data) {
        Ok(kind) => kind,
        Err(_) => {
            return Err(OpenError::NotABinary {
                path: path_buf,
                looks_like: describe_unknown(&head),
            });
        }
    };
    if kind == FileKind::Archive {
        return Err(archive_kind(data, path_buf));
    }
    let format = format_of(kind);
    let file = match object::File::parse(data) {
        Ok(file) => file,
        Err(error) => {
            if let Some(needed) = elf_size_claimed(data).filter(|&n| n > len) {
                return Err(OpenError::Truncated {
                    path: path_buf,
                    format,
                    len,
                    needed,
                });
            }
            return Err(OpenError::Corrupt {
                path: path_buf,
                format,
                error: error.to_string(),
            });
        }
    };
    if let Some(needed) = bytes_described(&file).filter(|&needed| needed > len) {
        return Err(OpenError::Truncated {
            path: path_buf,
            format,
            len,
            needed,
        });
    }
    let description = describe(&file, &format);
    if file.format() != os::NATIVE_FORMAT {
        return Err(OpenError::ForeignFormat {
            path: path_buf,
            found: description,
        });
    }
    let found_arch = arch_name(file.architecture());
    if found_arch != std::env::consts::ARCH {
        return Err(OpenError::WrongArchitecture {
            path: path_buf,
            found: found_arch,
            expected: std::env::consts::ARCH.into(),
        });
    }
    if file.kind() != ObjectKind::Dynamic {
        return Err(OpenError::NotSharedLibrary {
            path: path_buf,
            found: description,
        });
    }
    if is_position_independent_executable(&file) {
        return Err(OpenError::NotSharedLibrary {
            path: path_buf,
            found: format!("{format} position-independent executable"),
        });
    }
    let imports = file
        .imports()
        .map(|imports| {
            imports
                .iter()
                .map(|import| String::from_utf8_lossy(import.name()).into_owned())
                .collect()
        })
        .unwrap_or_default();
    let go_runtime = carries_go_runtime(&file);
    let language = if go_runtime {
        Language::Go
    } else if built_by_rustc(&file) {
        Language::Rust
    } else {
        Language::C
    };
    let exports = file
        .exports()
        .map(|exports| {
            exports
                .iter()
                .take(MAX_EXPORTS)
                .map(|export| String::from_utf8_lossy(export.name()).into_owned())
                .collect()
        })
        .unwrap_or_default();
    Ok(Sniffed {
        description,
        imports,
        go_runtime,
        language,
        exports,
    })
}

/// Whether rustc built the library: its version in `.comment` (ELF), or a
/// symbol of Rust's panic machinery, which every Rust cdylib links.
fn built_by_rustc<'a>(file: &object::File<'a, Data<'a>>) -> bool {
    const COMMENT_BYTES: u64 = 4096;
    let comment = file.section_by_name(".comment").and_then(|comment| {
        let size = comment.size().min(COMMENT_BYTES);
        comment.data_range(comment.address(), size).ok().flatten()
    });
    if comment.is_some_and(|bytes| bytes.windows(6).any(|w| w == b"rustc ")) {
        return true;
    }
    let panic = memchr::memmem::Finder::new(b"rust_panic");
    let begin = memchr::memmem::Finder::new(b"rust_begin");
    file.symbols().take(200_000).any(|symbol| {
        symbol
            .name_bytes()
            .is_ok_and(|name| panic.find(name).is_some() || begin.find(name).is_some())
    })
}

/// Whether the library was built by Go (and so starts a Go runtime). ELF
/// builds name a section for Go's build info; PE builds keep it at the
/// start of `.data`, behind Go's magic.
fn carries_go_runtime<'a>(file: &object::File<'a, Data<'a>>) -> bool {
    const GO_BUILDINFO_MAGIC: &[u8] = b"\xff Go buildinf:";
    if file.section_by_name(".go.buildinfo").is_some()
        || file.section_by_name(".gopclntab").is_some()
    {
        return true;
    }
    file.section_by_name(".data")
        .and_then(|data| {
            let searched = data.size().min(GO_MAGIC_SEARCH_BYTES);
            data.data_range(data.address(), searched).ok().flatten()
        })
        .is_some_and(|data| {
            data.windows(GO_BUILDINFO_MAGIC.len())
                .any(|window| window == GO_BUILDINFO_MAGIC)
        })
}

/// The likely reason a library stayed mapped after it was closed, read from
/// what it imports.
pub(crate) fn resident_hint(sniffed: &Sniffed) -> String {
    if sniffed.go_runtime {
        "it carries a Go runtime, which never unloads".into()
    } else if sniffed
        .imports
        .iter()
        .any(|name| name == "__cxa_thread_atexit_impl")
    {
        "it registers thread-local destructors (`__cxa_thread_atexit_impl`), which pin it in \
         memory until every thread that used them exits"
            .into()
    } else {
        "the loader kept it (a NODELETE flag, a unique symbol, or another reference to it)".into()
    }
}

/// Where an ELF file's section header table ends, read from the file
/// header alone: it sits at the end of the file, so a cut file misses it.
fn elf_size_claimed(data: Data<'_>) -> Option<u64> {
    use object::read::elf::FileHeader;
    let end = |offset: u64, entry_size: u16, count: u16| {
        offset.checked_add(u64::from(entry_size) * u64::from(count))
    };
    match FileKind::parse(data).ok()? {
        FileKind::Elf64 => {
            let header = object::elf::FileHeader64::<object::Endianness>::parse(data).ok()?;
            let endian = header.endian().ok()?;
            end(
                header.e_shoff(endian),
                header.e_shentsize(endian),
                header.e_shnum(endian),
            )
        }
        FileKind::Elf32 => {
            let header = object::elf::FileHeader32::<object::Endianness>::parse(data).ok()?;
            let endian = header.endian().ok()?;
            end(
                header.e_shoff(endian).into(),
                header.e_shentsize(endian),
                header.e_shnum(endian),
            )
        }
        _ => None,
    }
}

/// The highest file offset the headers say the file reaches.
fn bytes_described<'a>(file: &object::File<'a, Data<'a>>) -> Option<u64> {
    file.segments()
        .filter_map(|segment| {
            let (offset, size) = segment.file_range();
            offset.checked_add(size)
        })
        .max()
}

fn format_of(kind: FileKind) -> String {
    match kind {
        FileKind::Elf32 | FileKind::Elf64 => "ELF",
        FileKind::Pe32 | FileKind::Pe64 => "PE",
        FileKind::MachO32 | FileKind::MachO64 | FileKind::MachOFat32 | FileKind::MachOFat64 => {
            "Mach-O"
        }
        FileKind::Archive => "static archive",
        FileKind::Coff | FileKind::CoffBig | FileKind::CoffImport => "COFF object",
        _ => "object",
    }
    .into()
}

fn describe<'a>(file: &object::File<'a, Data<'a>>, format: &str) -> String {
    let bits = if file.is_64() { "64-bit" } else { "32-bit" };
    let what = match (file.format(), file.kind()) {
        (BinaryFormat::Pe, ObjectKind::Dynamic) => "DLL (Windows)",
        (BinaryFormat::Pe, ObjectKind::Executable) => "executable (Windows)",
        (BinaryFormat::MachO, ObjectKind::Dynamic) => "dylib (macOS)",
        (_, ObjectKind::Dynamic) => "shared object",
        (_, ObjectKind::Executable) => "executable",
        (_, ObjectKind::Relocatable) => "relocatable object",
        (_, ObjectKind::Core) => "core dump",
        _ => "file",
    };
    format!("{format} {bits} {what}, {}", arch_name(file.architecture()))
}

/// Whether an ELF file that looks like a shared object is really a program
/// (`DF_1_PIE` in `DT_FLAGS_1`): a PIE is an `ET_DYN` file too, and the
/// loader's "cannot dynamically load position-independent executable"
/// does not say what to do. 64-bit little-endian ELF, as the legs are.
fn is_position_independent_executable<'a>(file: &object::File<'a, Data<'a>>) -> bool {
    const DT_FLAGS_1: u64 = 0x6fff_fffb;
    const DF_1_PIE: u64 = 0x0800_0000;
    const MAX_DYNAMIC_BYTES: u64 = 64 * 1024;
    if file.format() != BinaryFormat::Elf || !file.is_64() || !file.is_little_endian() {
        return false;
    }
    let Some(dynamic) = file.section_by_name(".dynamic") else {
        return false;
    };
    let size = dynamic.size().min(MAX_DYNAMIC_BYTES);
    let Ok(Some(bytes)) = dynamic.data_range(dynamic.address(), size) else {
        return false;
    };
    bytes.chunks_exact(16).any(|entry| {
        let tag = u64::from_le_bytes(entry[..8].try_into().expect("8 bytes"));
        let value = u64::from_le_bytes(entry[8..].try_into().expect("8 bytes"));
        tag == DT_FLAGS_1 && value & DF_1_PIE != 0
    })
}

/// An `ar` archive passed as a plugin: a Rust rlib or a static library.
fn archive_kind(data: Data<'_>, path: std::path::PathBuf) -> OpenError {
    match ArchiveKind::of(data) {
        ArchiveKind::Rust => OpenError::RustLibrary { path },
        ArchiveKind::Static => OpenError::StaticLibrary { path },
    }
}

/// Whether an ELF header's `e_machine` is this process's architecture, as
/// [`arch_name`] names both (the Go-plugin sniff reads only the header).
pub(crate) fn elf_machine_is_ours(machine: u16) -> bool {
    use object::elf;
    let architecture = match machine {
        elf::EM_X86_64 => Architecture::X86_64,
        elf::EM_386 => Architecture::I386,
        elf::EM_AARCH64 => Architecture::Aarch64,
        elf::EM_ARM => Architecture::Arm,
        elf::EM_RISCV => Architecture::Riscv64,
        elf::EM_PPC64 => Architecture::PowerPc64,
        elf::EM_S390 => Architecture::S390x,
        _ => Architecture::Unknown,
    };
    arch_name(architecture) == std::env::consts::ARCH
}

/// Architecture names as Rust's `std::env::consts::ARCH` spells them.
fn arch_name(arch: Architecture) -> String {
    match arch {
        Architecture::X86_64 | Architecture::X86_64_X32 => "x86_64".into(),
        Architecture::I386 => "x86".into(),
        Architecture::Aarch64 | Architecture::Aarch64_Ilp32 => "aarch64".into(),
        Architecture::Arm => "arm".into(),
        Architecture::Riscv64 => "riscv64".into(),
        Architecture::Riscv32 => "riscv32".into(),
        Architecture::PowerPc64 => "powerpc64".into(),
        Architecture::S390x => "s390x".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// "a text file starting with `…`" or "data of no known format".
fn describe_unknown(data: &[u8]) -> String {
    let head = &data[..data.len().min(512)];
    let printable = head
        .iter()
        .filter(|&&b| b.is_ascii_graphic() || b.is_ascii_whitespace())
        .count();
    if printable * 10 >= head.len() * 9 {
        let first_line: String = String::from_utf8_lossy(head)
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(61)
            .collect();
        let shown: String = first_line.trim().chars().take(60).collect();
        let more = if first_line.chars().count() > 60 {
            "…"
        } else {
            ""
        };
        format!("a text file starting with `{shown}{more}`")
    } else {
        "data of no known binary format".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sniff_bytes(bytes: &[u8]) -> Result<Sniffed, OpenError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plugin.so");
        std::fs::write(&path, bytes).unwrap();
        sniff(&path)
    }

    #[test]
    fn relative_missing_directory_and_empty_are_told_apart() {
        assert!(matches!(
            sniff(Path::new("x.so")),
            Err(OpenError::NotAbsolute { .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            sniff(&dir.path().join("nope.so")),
            Err(OpenError::File(file::FileProblem::NotFound { .. }))
        ));
        assert!(matches!(
            sniff(dir.path()),
            Err(OpenError::File(file::FileProblem::Directory { .. }))
        ));
        assert!(matches!(sniff_bytes(b""), Err(OpenError::Empty { .. })));
    }

    #[test]
    fn text_is_quoted_in_the_diagnosis() {
        let Err(OpenError::NotABinary { looks_like, .. }) = sniff_bytes(b"hello plugin\nmore")
        else {
            panic!("text should not sniff as a binary");
        };
        assert_eq!(looks_like, "a text file starting with `hello plugin`");
    }

    #[test]
    fn the_running_test_binary_is_an_executable_not_a_library() {
        let exe = std::env::current_exe().unwrap();
        match sniff(&exe) {
            // PIE executables are ET_DYN, like libraries: the loader itself
            // refuses them later, with its own message.
            Ok(sniffed) => assert!(sniffed.description.contains("shared object")),
            Err(OpenError::NotSharedLibrary { found, .. }) => assert!(found.contains("executable")),
            Err(other) => panic!("unexpected diagnosis: {other}"),
        }
    }

    #[test]
    fn a_truncated_copy_of_a_real_library_is_caught() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let result = sniff_bytes(&exe[..exe.len() / 2]);
        assert!(
            matches!(
                result,
                Err(OpenError::Truncated { .. } | OpenError::Corrupt { .. })
            ),
            "{result:?}"
        );
    }
}
