//! What a person at a terminal sees and a CI log does not: the live
//! progress line and coloured verdicts. The binary runs under a real
//! pseudo-terminal (portable-pty), then with its output piped, over a
//! plugin slow enough (its init sleeps) for the progress line to appear.
#![cfg(target_os = "linux")]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

/// The progress line's own words.
const PROGRESS: &str = "plugin(s) ·";
/// Any colour escape.
const ESCAPE: &str = "\x1b[";

/// A valid plugin whose init takes 1.5 s, built with cc.
fn slow_plugin(dir: &Path) -> PathBuf {
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/abi/include");
    let source = dir.join("slow.c");
    std::fs::write(
        &source,
        r#"#include <unistd.h>
#include "plugcheck.h"
static int32_t init(const plugcheck_host *host) { (void)host; usleep(1500000); return 0; }
static void shutdown(void) {}
static void free_buf(plugcheck_buf *buf) { (void)buf; }
static const plugcheck_plugin descriptor = {
    .magic = PLUGCHECK_MAGIC, .abi_major = PLUGCHECK_ABI_MAJOR, .abi_minor = PLUGCHECK_ABI_MINOR,
    .struct_size = sizeof(plugcheck_plugin), .name = "slow", .version = "0.1.0",
    .init = init, .shutdown = shutdown, .free_buf = free_buf,
};
PLUGCHECK_EXPORT const plugcheck_plugin *plugcheck_entry(void) { return &descriptor; }
"#,
    )
    .unwrap();
    let library = dir.join("libslow.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-I"])
        .arg(&include)
        .arg("-o")
        .arg(&library)
        .arg(&source)
        .status()
        .expect("cc runs (install gcc)");
    assert!(status.success());
    library
}

const CASES: &str = "load,lookup-entry,descriptor,abi-version,metadata,init";

/// Everything the binary writes to a terminal, with `env` set.
fn under_terminal(plugin: &Path, env: &[(&str, &str)]) -> String {
    let pair = native_pty_system()
        .openpty(PtySize {
            rows: 40,
            cols: 160,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_plugcheck"));
    command.args(["check", "--filter", CASES]);
    command.arg(plugin);
    for name in ["CI", "NO_COLOR", "CLICOLOR_FORCE", "GITHUB_ACTIONS"] {
        command.env_remove(name);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = pair.slave.spawn_command(command).unwrap();
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().unwrap();
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    // The terminal reports EIO once the program and its workers are gone.
    while let Ok(read) = reader.read(&mut chunk) {
        if read == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..read]);
    }
    let status = child.wait().unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert!(status.success(), "{status:?}: {text}");
    text
}

#[test]
fn a_terminal_gets_progress_and_colour_and_a_pipe_gets_neither() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = slow_plugin(dir.path());

    let terminal = under_terminal(&plugin, &[]);
    assert!(
        terminal.contains(PROGRESS),
        "no progress line: {terminal:?}"
    );
    assert!(terminal.contains(ESCAPE), "no colour: {terminal:?}");
    assert!(terminal.contains("all passed the gate"), "{terminal:?}");

    let piped = Command::new(env!("CARGO_BIN_EXE_plugcheck"))
        .args(["check", "--filter", CASES])
        .arg(&plugin)
        .env_remove("CI")
        .env_remove("CLICOLOR_FORCE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&piped.stdout);
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(piped.status.success(), "{stdout}{stderr}");
    for (stream, text) in [("stdout", &stdout), ("stderr", &stderr)] {
        assert!(
            !text.contains(PROGRESS),
            "progress in a piped {stream}: {text}"
        );
        assert!(
            !text.contains(ESCAPE),
            "escapes in a piped {stream}: {text:?}"
        );
    }
}

#[test]
fn ci_and_no_color_are_honoured_at_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = slow_plugin(dir.path());
    let in_ci = under_terminal(&plugin, &[("CI", "true")]);
    assert!(!in_ci.contains(PROGRESS), "progress with CI set: {in_ci:?}");
    let no_color = under_terminal(&plugin, &[("NO_COLOR", "1")]);
    assert!(
        !no_color.contains("\x1b[3") && !no_color.contains("\x1b[1"),
        "colour with NO_COLOR: {no_color:?}"
    );
}
