//! The harness's integration tests, one module per concern, in one test
//! binary: each file was a binary of its own, linking the harness and its
//! dependencies once more. Run one concern with a filter:
//! `cargo test -p plugcheck --test all -- readme::`.
//!
//! `architecture` and `cli` are also binaries of their own (Cargo.toml,
//! `test = false`: built only when named): `cargo test -p plugcheck --test
//! architecture`, and `cargo xtask mutants` runs `cli` beside the unit
//! tests, where a filter would select the unit tests too.

mod architecture;
mod cli;
mod go_worker;
mod progress;
mod readme;
