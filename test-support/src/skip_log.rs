//! For the workspace's tests (the harness's and the fixtures'): a test that
//! cannot run here — a tool missing, a fixture not built — does not pass
//! silently. It prints `SKIPPED TEST: WHY` and appends `TEST: WHY` to the
//! file [`VAR`] names, which `cargo xtask` sets and reads back, so a run
//! ends listing what it skipped (the test harness hides a passing test's
//! output). One way for every test, so no skip escapes the count.

/// The environment variable naming the skip log.
pub const VAR: &str = "PLUGCHECK_SKIP_LOG";

/// Says that `test` was skipped and why, on stderr and in the skip log.
///
/// # Panics
/// When the skip log is named but cannot be appended to: a skip that is
/// not counted would pass silently.
pub fn skip(test: &str, why: &str) {
    let line = format!("{}: {}\n", one_line(test), one_line(why));
    eprint!("SKIPPED {line}");
    if let Some(log) = std::env::var_os(VAR) {
        use std::io::Write;
        let appended = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(error) = appended {
            panic!(
                "cannot record the skip in `{}`: {error}",
                log.to_string_lossy()
            );
        }
    }
}

/// One line of the log per skip, whatever the reason holds.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_reason_over_several_lines_is_one_line_of_the_log() {
        assert_eq!(super::one_line("a\n  b\tc\n"), "a b c");
    }
}
