//! After a worker died, hung or was hijacked: what the parent makes of it.
//! `death` turns the worker's end into the outcome of the case it was in;
//! `symbolize` maps the stack it sent to module-relative frames and source
//! lines; `saved_input` writes the fuzz calls it announced beside the
//! report, as a `replay` that `plugcheck call --replay` makes again.

pub mod death;
pub mod replay;
pub(crate) mod saved_input;
pub mod symbolize;
