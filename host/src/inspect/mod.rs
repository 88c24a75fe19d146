//! What the parent reads from a would-be plugin without loading it: `file`
//! (opened without trusting it: FIFOs and devices refused, bounded reads),
//! `sniff` (its headers: missing, empty, text, other platform, wrong
//! architecture), `kind` (C-ABI or Go-native), `archive` (an `ar` archive
//! where a library was expected) and `open_error` (the diagnosis, named for
//! the step that failed).

pub(crate) mod archive;
pub mod file;
pub mod kind;
pub(crate) mod open_error;
pub(crate) mod sniff;
