//! The Go worker's own unit tests (`host/go-worker/*_test.go`: how it
//! compares a plugin's build with its own and says why they differ, what a
//! plugin leaves after Shutdown, and its bounds and messages against the
//! golden protocol files in `host/protocol/`), run with `go test` when
//! Go is installed, so `cargo test` runs them too.

use std::path::Path;
use std::process::Command;

#[test]
fn the_go_workers_unit_tests_pass() {
    if plugcheck::bridge::find_on_path("go").is_none() {
        plugcheck_test_support::skip_log::skip(
            "the Go worker's unit tests",
            "go is not installed (apt-get install golang-go)",
        );
        return;
    }
    // The engine's, beside this crate.
    let worker = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/go-worker");
    // The user's Go build cache, as the README's tests (readme.rs);
    // `-count=1`: the tests run, whatever results that cache holds.
    let output = Command::new("go")
        .args(["test", "-count=1", "./..."])
        .current_dir(&worker)
        .env("GOFLAGS", "-mod=mod")
        .env("GOTOOLCHAIN", "local")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "go test in {} failed:\n{}{}",
        worker.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
