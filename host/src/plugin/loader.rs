//! Every libloading call of the harness: open (after sniffing the file),
//! symbol lookup, close. Platform differences (dlopen flags, Windows search
//! flags) come from the OS seam.

use std::path::{Path, PathBuf};

use plugcheck_abi::{Descriptor, ENTRY_SYMBOL};

use crate::inspect::open_error::OpenError;
use crate::inspect::sniff::{self, Sniffed};
use crate::os;
use crate::os::OsError;

/// A library loaded into this (worker) process.
#[derive(Debug)]
pub struct Loaded {
    library: libloading::Library,
    path: PathBuf,
    sniffed: Sniffed,
}

/// The entry function every plugin exports.
pub type EntryFn = unsafe extern "C" fn() -> *const Descriptor;

/// Sniffs `path`, then opens it with the platform's immediate-binding flags.
///
/// # Safety
/// Opening runs the library's initialisers: call this in a worker, or in a
/// process that chose to run the plugin's code as its own.
pub unsafe fn open(path: &Path) -> Result<Loaded, OpenError> {
    // SAFETY: as this function's.
    unsafe { open_known(path, None) }
}

/// [`open`], with what an earlier sniff of the same bytes found (a reload
/// of an unchanged build): the file is not parsed again.
///
/// # Safety
/// As [`open`]'s.
pub unsafe fn open_known(path: &Path, known: Option<Sniffed>) -> Result<Loaded, OpenError> {
    let sniffed = match known {
        Some(sniffed) => sniffed,
        None => sniff::sniff(path)?,
    };
    // SAFETY: the caller's contract (`open`): a worker process, where a
    // misbehaving initialiser takes down only the worker, or a process that
    // chose to run the plugin itself.
    let library = unsafe { os::open_library(path) }.map_err(|failure| {
        let path = path.to_owned();
        if let Some(symbol) = failure.unresolved_symbol {
            OpenError::UnresolvedSymbol {
                path,
                symbol,
                os_error: failure.error,
            }
        } else if let Some(dependency) = failure.missing_dependency {
            OpenError::MissingDependency {
                path,
                dependency,
                os_error: failure.error,
            }
        } else {
            OpenError::Refused {
                path,
                os_error: failure.error,
            }
        }
    })?;
    Ok(Loaded {
        library,
        path: path.to_owned(),
        sniffed,
    })
}

impl Loaded {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn sniffed(&self) -> &Sniffed {
        &self.sniffed
    }

    /// Looks up `plugcheck_entry`.
    pub fn entry(&self) -> Result<EntryFn, OsError> {
        // SAFETY: the symbol is declared by the ABI as
        // `const plugcheck_plugin *plugcheck_entry(void)`; a plugin that
        // exports it with another type breaks the contract, and the worker
        // isolates what happens then.
        let symbol = unsafe { self.library.get::<EntryFn>(ENTRY_SYMBOL.as_bytes()) };
        symbol
            .map(|symbol| *symbol)
            .map_err(|error| os::loader_error(&error))
    }

    /// Closes the library. Whether it really left the process is a separate
    /// question: see [`os::library_is_resident`].
    ///
    /// A library with a Go runtime stays loaded where the OS would unload
    /// it under the runtime's threads (`os::PIN_GO_RUNTIME`), as Go's own
    /// `-z nodelete` keeps it on Linux; the unload case reports it resident.
    pub fn close(self) -> Result<(), OsError> {
        if self.sniffed.go_runtime && os::PIN_GO_RUNTIME {
            std::mem::forget(self.library);
            return Ok(());
        }
        self.library
            .close()
            .map_err(|error| os::loader_error(&error))
    }
}

/// Opens `plugin` as plainly as a host can (no sniffing, no checks), calls
/// `plugcheck_entry` and says whether it returned a descriptor: the floor
/// process of `cargo xtask bench`, which measures what the harness adds.
pub fn open_and_enter(plugin: &Path) -> anyhow::Result<(libloading::Library, bool)> {
    // SAFETY: the measuring modes that call this exist to load the plugin,
    // in processes of their own.
    let library = unsafe { os::open_library(plugin) }
        .map_err(|failure| anyhow::anyhow!("{}", failure.error.message))?;
    // SAFETY: the ABI's entry signature; only called on plugins.
    let entry = unsafe { library.get::<EntryFn>(ENTRY_SYMBOL.as_bytes()) }
        .map_err(|error| anyhow::anyhow!("no {ENTRY_SYMBOL}: {error}"))?;
    // SAFETY: as above.
    let descriptor = unsafe { entry() };
    Ok((library, !descriptor.is_null()))
}
