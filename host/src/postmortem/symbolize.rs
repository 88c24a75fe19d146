//! Turns the stack a dying worker sent (addresses and what was mapped
//! where) into frames a person reads: module, function, file and line.
//!
//! This runs in the parent, which is healthy, long after the worker died:
//! the worker only recorded addresses (see `os::report_crashes_to`). The
//! symbols come from the module files themselves, through `addr2line`
//! (DWARF where the module has it, its symbol table where not), for ELF
//! and PE alike.
//!
//! The stack came over a channel the plugin could write to: it may name any
//! file. Only regular files are opened, and only a bounded number.

use std::collections::HashMap;
use std::path::Path;

use object::{Object, ObjectSegment, ObjectSymbol};

use crate::os::crash_note::{MAX_FRAMES, unescape_bytes};
use crate::report::Frame;
use crate::worker::{Module, RawStack};

/// Distinct module files opened for one stack at most.
const MAX_MODULE_FILES: usize = 16;

/// The frames of `raw`, innermost first; `plugin` marks the plugin's own.
pub fn symbolize(raw: &RawStack, plugin: &Path) -> Vec<Frame> {
    let modules = if raw.maps.is_empty() {
        raw.modules
            .iter()
            .map(|module| Module {
                path: unescape_bytes(&module.path),
                ..module.clone()
            })
            .collect()
    } else {
        parse_maps(&unescape_bytes(&raw.maps))
    };
    let plugin_text = plugin.to_string_lossy();
    let mut files: HashMap<String, Option<ModuleFile>> = HashMap::new();
    let mut frames = Vec::new();
    for (depth, &address) in raw.frames.iter().take(MAX_FRAMES).enumerate() {
        if address == 0 {
            continue;
        }
        let module = modules
            .iter()
            .find(|module| (module.start..module.end).contains(&address));
        let Some(module) = module else {
            frames.push(Frame {
                module: "?".into(),
                module_path: None,
                function: None,
                source: None,
                line: None,
                address: format!("{address:#x}"),
                offset: format!("{address:#x}"),
                in_plugin: false,
                inlined: false,
            });
            continue;
        };
        if !files.contains_key(&module.path) && files.len() < MAX_MODULE_FILES {
            files.insert(module.path.clone(), ModuleFile::open(&module.path));
        }
        let file = files.get(&module.path).and_then(Option::as_ref);
        // A return address is the instruction after the call: look up the
        // call. The innermost frame is the faulting instruction itself.
        let lookup = if depth == 0 {
            address
        } else {
            address.saturating_sub(1)
        };
        let svma = file.and_then(|file| file.svma(module, lookup));
        let offset = match (file, svma) {
            (Some(file), Some(svma)) => svma - file.loader.relative_address_base(),
            _ => address - module.start,
        };
        let frame = Frame {
            module: file_name(&module.path).to_owned(),
            module_path: Some(module.path.clone()),
            function: None,
            source: None,
            line: None,
            address: format!("{address:#x}"),
            offset: format!("{offset:#x}"),
            in_plugin: same_file(&module.path, &plugin_text),
            inlined: false,
        };
        let places = match (file, svma) {
            (Some(file), Some(svma)) => file.places(svma),
            _ => Vec::new(),
        };
        if places.is_empty() {
            frames.push(frame);
            continue;
        }
        // Functions inlined at this address first, each a frame of its
        // own, as a debugger shows them; the function the code is in last.
        let outermost = places.len() - 1;
        for (i, place) in places.into_iter().enumerate() {
            frames.push(Frame {
                function: place.function,
                source: place.source,
                line: place.line,
                inlined: i < outermost,
                ..frame.clone()
            });
        }
    }
    frames
}

/// A module file, open for symbols.
struct ModuleFile {
    loader: addr2line::Loader,
    /// ELF: `(file offset, file size, address)` of each loadable segment,
    /// to turn a mapped file offset into an address the symbols use.
    segments: Vec<(u64, u64, u64)>,
    /// ELF: function symbols with their sizes, by address. A stripped
    /// library has only its exported ones: an address past a symbol's end
    /// is in a function the table does not name, and must not take the
    /// name of the exported one before it.
    functions: Vec<(u64, u64, String)>,
    is_pe: bool,
}

impl ModuleFile {
    fn open(path: &str) -> Option<ModuleFile> {
        // A FIFO or a device named by a forged stack must not block us.
        if !std::fs::metadata(path).ok()?.is_file() {
            return None;
        }
        let file = std::fs::File::open(path).ok()?;
        // SAFETY: a read-only map of a regular file, read while we parse
        // its headers; a plugin rewriting its own file now gets wrong
        // symbols, nothing worse.
        let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
        let object = object::File::parse(&*map).ok()?;
        let is_pe = matches!(object.format(), object::BinaryFormat::Pe);
        let segments = object
            .segments()
            .map(|segment| {
                let (offset, size) = segment.file_range();
                (offset, size, segment.address())
            })
            .collect();
        let mut functions: Vec<(u64, u64, String)> = object
            .symbols()
            .chain(object.dynamic_symbols())
            .filter(|symbol| symbol.kind() == object::SymbolKind::Text && symbol.size() > 0)
            .filter_map(|symbol| {
                let name = symbol.name().ok()?;
                Some((symbol.address(), symbol.size(), name.to_owned()))
            })
            .collect();
        functions.sort_unstable();
        functions.dedup_by_key(|(address, _, _)| *address);
        let loader = addr2line::Loader::new(path).ok()?;
        Some(ModuleFile {
            loader,
            segments,
            functions,
            is_pe,
        })
    }

    /// The address `address` of the dead process has in the module's own
    /// numbering (what its symbols and debug info use).
    fn svma(&self, module: &Module, address: u64) -> Option<u64> {
        let relative = address.checked_sub(module.start)?;
        if self.is_pe {
            // A whole image is mapped at `start`: RVA plus image base.
            return Some(self.loader.relative_address_base() + relative);
        }
        let file_offset = relative + module.offset;
        self.segments
            .iter()
            .find(|(offset, size, _)| (*offset..offset + size).contains(&file_offset))
            .map(|(offset, _, vaddr)| file_offset - offset + vaddr)
    }

    /// What is at `svma`: the functions inlined there, innermost first,
    /// then the function the code belongs to; from the debug info where the
    /// module has it, else the symbol table and the line tables (one
    /// place).
    fn places(&self, svma: u64) -> Vec<Place> {
        let mut places = Vec::new();
        if let Ok(mut frames) = self.loader.find_frames(svma) {
            while let Ok(Some(frame)) = frames.next() {
                let location = frame.location.as_ref();
                places.push(Place {
                    function: frame
                        .function
                        .as_ref()
                        .and_then(|name| name.demangle().ok())
                        .map(|name| name.into_owned()),
                    source: location.and_then(|l| l.file).map(str::to_owned),
                    line: location.and_then(|l| l.line),
                });
            }
        }
        let function = self
            .symbol(svma)
            .map(|name| addr2line::demangle_auto(name.into(), None).into_owned());
        if places.iter().any(|place| place.function.is_some()) {
            // Line tables alone name a function without its path
            // (`parse`); the symbol table has it whole
            // (`my_plugin::Parser::parse`).
            if let (Some(outermost), Some(function)) = (places.last_mut(), function) {
                outermost.function = Some(function);
            }
            return places;
        }
        let location = self.loader.find_location(svma).ok().flatten();
        if function.is_none() && location.is_none() {
            return Vec::new();
        }
        vec![Place {
            function,
            source: location.as_ref().and_then(|l| l.file).map(str::to_owned),
            line: location.and_then(|l| l.line),
        }]
    }
}

impl ModuleFile {
    /// The symbol table's name for the function at `svma`: by size where
    /// the table has sizes (ELF), else the nearest symbol before (PE).
    fn symbol(&self, svma: u64) -> Option<&str> {
        if self.functions.is_empty() {
            return self.loader.find_symbol(svma);
        }
        let after = self
            .functions
            .partition_point(|(address, _, _)| *address <= svma);
        let (address, size, name) = self.functions.get(after.checked_sub(1)?)?;
        (svma < address + size).then_some(name.as_str())
    }
}

/// A function and where in its source, as the symbols tell.
struct Place {
    function: Option<String>,
    source: Option<String>,
    line: Option<u32>,
}

/// The file-backed mappings of a `/proc/PID/maps` text.
fn parse_maps(text: &str) -> Vec<Module> {
    text.lines()
        .filter_map(|line| {
            // start-end perms offset dev inode path
            let mut fields = line.splitn(6, ' ');
            let (start, end) = fields.next()?.split_once('-')?;
            let _perms = fields.next()?;
            let offset = fields.next()?;
            let _dev = fields.next()?;
            let _inode = fields.next()?;
            let path = fields.next()?.trim_start();
            if !path.starts_with('/') {
                return None;
            }
            let path = path.strip_suffix(" (deleted)").unwrap_or(path);
            Some(Module {
                path: path.to_owned(),
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                offset: u64::from_str_radix(offset, 16).ok()?,
            })
        })
        .collect()
}

fn file_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

/// Whether a module path the worker reported is the plugin's file. The
/// worker may have loaded a shadow copy (reload cases), so file names
/// count too.
fn same_file(module: &str, plugin: &str) -> bool {
    module == plugin
        || module.eq_ignore_ascii_case(plugin)
        || file_name(module) == file_name(plugin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_become_file_backed_modules() {
        let maps = "\
55d0c0000000-55d0c0001000 r--p 00000000 08:01 1234 /usr/bin/plugcheck
7f0000001000-7f0000005000 r-xp 00001000 08:01 99 /tmp/dir with space/libx.so
7f0000010000-7f0000011000 rw-p 00000000 00:00 0 
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
7f0000020000-7f0000021000 r-xp 00002000 08:01 7 /tmp/gone.so (deleted)";
        let modules = parse_maps(maps);
        let paths: Vec<&str> = modules.iter().map(|m| m.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/usr/bin/plugcheck",
                "/tmp/dir with space/libx.so",
                "/tmp/gone.so"
            ]
        );
        assert_eq!(
            (modules[1].start, modules[1].end, modules[1].offset),
            (0x7f00_0000_1000, 0x7f00_0000_5000, 0x1000)
        );
    }

    #[cfg(target_os = "linux")]
    /// This test's own function, found again from its address the way the
    /// parent finds a dead worker's: through the maps and the file.
    #[test]
    fn a_live_address_symbolizes_to_its_function() {
        #[inline(never)]
        fn marker_function_for_symbolize() -> u64 {
            marker_function_for_symbolize as *const () as u64
        }
        let address = marker_function_for_symbolize();
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let raw = RawStack {
            frames: vec![address],
            maps,
            modules: Vec::new(),
        };
        let exe = std::env::current_exe().unwrap();
        let frames = symbolize(&raw, &exe);
        let frame = &frames[0];
        assert!(frame.in_plugin, "{frame:?}");
        let function = frame.function.as_deref().unwrap_or_default();
        assert!(
            function.ends_with("marker_function_for_symbolize"),
            "{frame:?}"
        );
        assert!(
            frame
                .source
                .as_deref()
                .unwrap_or_default()
                .ends_with("symbolize.rs"),
            "{frame:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_forged_module_naming_a_fifo_is_not_opened() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates the node.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let raw = RawStack {
            frames: vec![0x1010],
            maps: format!("1000-2000 r-xp 00000000 08:01 1 {}\n", fifo.display()),
            modules: Vec::new(),
        };
        let frames = symbolize(&raw, Path::new("/plugin.so"));
        assert_eq!(frames[0].module, "fifo");
        assert_eq!(frames[0].function, None);
    }
}
