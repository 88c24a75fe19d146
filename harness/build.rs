//! Link settings of the `plugcheck` binary, chosen by their effect on a
//! check's start-to-exit time, measured on the release binary (two to four
//! builds of the same source spawned in turn, 500 one-plugin checks and
//! 1,000 `--version` runs each, p50):
//!
//! | build | check | `--version` |
//! | --- | --- | --- |
//! | fat LTO, 1 codegen unit, `-no-pie` (chosen) | 4.12 ms | 0.86 ms |
//! | the same, position-independent | 4.15 ms | 0.91 ms |
//! | thin LTO, 1 codegen unit, `-no-pie` | 4.17 ms | 0.88 ms |
//! | no LTO, 16 codegen units, `-no-pie` | 4.28 ms | 0.88 ms |
//!
//! A position-independent executable has the loader apply ~3,800
//! relocations and copy the pages they land on at every start; a fixed
//! one does not. The harness's own image then loses address-space
//! randomisation: what it parses from a worker is handled by safe Rust,
//! and a plugin already runs its own code in its worker, so nothing at a
//! known address in the harness gives it more. Libraries (plugins, libc)
//! are still placed at random. `panic = "abort"` is not an option: the
//! worker reports a plugin's panic by catching it.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bin=plugcheck=-no-pie");
    }
}
