//! A plugin report with everything that changes from run to run taken out
//! (paths, pids, timings, compiler versions) and everything that describes
//! behaviour kept (verdicts, reasons, error codes, signal and NTSTATUS
//! names, ABI versions): the form snapshots compare. It is a plugin's form:
//! the run's provenance (plugcheck version, plugin-set and gate-file
//! hashes), which changes with every release and plugin list, is the
//! report's and never reaches a snapshot.

use serde_json::Value;

use crate::report::{Frame, PluginReport};

/// Fields that only ever hold timings: dropped, they say nothing about
/// behaviour.
const DROPPED_FIELDS: &[&str] = &["duration_us", "work_us", "module_path"];

/// Fields whose values vary between runs but whose presence matters.
const VOLATILE_FIELDS: &[(&str, &str)] = &[
    ("load_ms", "[duration]"),
    ("init_ms", "[duration]"),
    ("reload_ms", "[duration]"),
    ("calls", "[count]"),
    // Thread counts of a language runtime (Go's) vary with timing.
    ("threads", "[count]"),
    ("leaked_threads", "[count]"),
    ("pid", "[pid]"),
    ("mapped_bytes", "[bytes]"),
    ("truncated_bytes", "[bytes]"),
    // Where a crashed worker's code was mapped, and where inputs were saved.
    ("address", "[address]"),
    ("offset", "[offset]"),
    ("saved", "[input]"),
];

/// Frames of a crash a snapshot keeps at most when none is the plugin's
/// own code: the language runtime's innermost ones say enough.
const RUNTIME_FRAMES_KEPT: usize = 3;

/// Captured output a snapshot keeps per stream and case: enough to see what
/// the plugin printed, not a megabyte of it to review (the JSON report keeps
/// up to the capture bound).
const SNAPSHOT_OUTPUT_BYTES: usize = 4096;

/// The normalized form of one plugin's report.
pub fn plugin(report: &PluginReport) -> Value {
    let mut report = report.clone();
    for case in &mut report.cases {
        case.detail.stack = snapshot_stack(std::mem::take(&mut case.detail.stack));
    }
    let report = &report;
    let mut value = serde_json::to_value(report).expect("reports serialize");
    // The report may come from the other platform: split on either
    // separator, not with this platform's `Path`.
    let path = report.path.display().to_string();
    let dir = path
        .rsplit_once(['/', '\\'])
        .map(|(dir, _)| dir.to_owned())
        .unwrap_or_default();
    // Saved fuzz inputs first: their directory is the run's.
    let mut replacements: Vec<(String, String)> = report
        .cases
        .iter()
        .filter_map(|case| case.detail.fuzz.as_ref()?.input.as_ref()?.saved.clone())
        .map(|saved| (saved, "[input]".to_owned()))
        .collect();
    replacements.push((path, "[plugin]".to_owned()));
    if let Some(toolchain) = report
        .plugin
        .as_ref()
        .and_then(|info| info.toolchain.clone())
    {
        let family = toolchain_family(&toolchain);
        replacements.push((toolchain, family));
    }
    replacements.push((dir, "[dir]".to_owned()));
    replacements.retain(|(from, _)| !from.is_empty());
    redact(&mut value, &replacements);
    value
}

/// A crash's stack as a snapshot keeps it: from the innermost frame to the
/// plugin's own (what a reviewer reads; the harness's frames beyond it
/// change with every refactoring of the harness), without the source
/// places of language-runtime frames (they move with each toolchain
/// release). Addresses go in `redact`.
fn snapshot_stack(mut frames: Vec<Frame>) -> Vec<Frame> {
    let kept = match crate::report::plugin_frame_index(&frames) {
        Some(index) => index + 1,
        None => RUNTIME_FRAMES_KEPT,
    };
    frames.truncate(kept);
    for frame in &mut frames {
        if crate::report::is_runtime(frame) {
            frame.source = None;
            frame.line = None;
        } else if let Some(source) = &frame.source {
            frame.source = Some(crate::report::short_source(source).to_owned());
        }
    }
    frames
}

fn redact(value: &mut Value, replacements: &[(String, String)]) {
    match value {
        Value::Object(map) => {
            map.retain(|key, _| !DROPPED_FIELDS.contains(&key.as_str()));
            for (key, field) in map.iter_mut() {
                if let Some((_, placeholder)) = VOLATILE_FIELDS.iter().find(|(name, _)| name == key)
                {
                    *field = Value::String((*placeholder).into());
                } else if key == "toolchain" {
                    if let Value::String(toolchain) = field {
                        *toolchain = toolchain_family(toolchain);
                    }
                } else if key == "stdout" || key == "stderr" {
                    redact(field, replacements);
                    if let Value::String(output) = field {
                        *output = cut_output(output);
                    }
                } else {
                    redact(field, replacements);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| redact(item, replacements)),
        Value::String(text) => {
            *text = collapse_repeats(&scrub_runtime_noise(text));
            for (from, to) in replacements {
                if text.contains(from.as_str()) {
                    *text = text.replace(from.as_str(), to);
                }
            }
        }
        _ => {}
    }
}

/// Output cut to [`SNAPSHOT_OUTPUT_BYTES`] (at a character boundary),
/// with a mark saying how much more there was.
fn cut_output(text: &str) -> String {
    if text.len() <= SNAPSHOT_OUTPUT_BYTES {
        return text.to_owned();
    }
    let mut cut = SNAPSHOT_OUTPUT_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}[… {} more bytes in the report]",
        &text[..cut],
        text.len() - cut
    )
}

/// A line printed again and again in a row (a plugin that logs on every
/// call, while a reload case calls it as often as it can) is kept once,
/// with a mark: how many times depends on timing.
fn collapse_repeats(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut previous: Option<&str> = None;
    let mut marked = false;
    for line in text.split_inclusive('\n') {
        if previous == Some(line) && line.ends_with('\n') {
            if !marked {
                out.push_str("[the line above, repeated]\n");
                marked = true;
            }
            continue;
        }
        out.push_str(line);
        previous = Some(line);
        marked = false;
    }
    out
}

/// Takes out what a Rust runtime prints that differs per run: thread ids
/// in panic messages (`thread 'main' (4242) panicked`) and the frames of a
/// forced backtrace (addresses, toolchain paths).
fn scrub_runtime_noise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_backtrace = false;
    for line in text.split_inclusive('\n') {
        if in_backtrace {
            if line.starts_with(' ') {
                continue;
            }
            in_backtrace = false;
        }
        if line.trim_end() == "stack backtrace:" {
            out.push_str("stack backtrace: [frames omitted]\n");
            in_backtrace = true;
            continue;
        }
        // A Go crash report: the goroutines' stacks (ids, frames, offsets)
        // run to the end and depend on scheduling and the build.
        if line.starts_with("goroutine ") && line.contains(" [") {
            out.push_str("goroutine stacks: [omitted]\n");
            break;
        }
        out.push_str(&scrub_go_release(&scrub_go_signal_pc(&scrub_std_location(
            &scrub_inherent_impl(&scrub_thread_id(line)),
        ))));
    }
    out
}

/// `go1.21.13` → `go [version]`, wherever a Go release is named (the
/// version binding's reasons name both sides): which Go a distribution
/// ships is the machine's, not behaviour; the JSON report keeps them.
fn scrub_go_release(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("go1.") {
        let starts_word = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        let version_len = rest[at + 4..]
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len() - at - 4);
        out.push_str(&rest[..at]);
        if starts_word && version_len > 0 {
            out.push_str("go [version]");
            // A sentence's full stop after the version stays.
            let version = &rest[at + 4..at + 4 + version_len];
            let kept_dot = version.ends_with('.');
            if kept_dot {
                out.push('.');
            }
        } else {
            out.push_str(&rest[at..at + 4 + version_len]);
        }
        rest = &rest[at + 4 + version_len..];
    }
    out.push_str(rest);
    out
}

/// `[signal SIGSEGV: … addr=0x0 pc=0x7f70f89058c7]` → `pc=[address]`: the
/// faulting address of a Go crash moves with address-space randomization.
fn scrub_go_signal_pc(line: &str) -> String {
    if let Some(rest) = line.strip_prefix("PC=0x") {
        // An unexpected signal's report (`SIGSYS: bad system call`):
        // `PC=0x7fec33026cee m=4 sigcode=1`, where the thread number `m`
        // depends on scheduling too.
        let after = rest.trim_start_matches(|c: char| c.is_ascii_hexdigit());
        let after = match after.strip_prefix(" m=") {
            Some(m) => format!(
                " m=[thread]{}",
                m.trim_start_matches(|c: char| c.is_ascii_digit())
            ),
            None => after.to_owned(),
        };
        return format!("PC=[address]{after}");
    }
    if !line.starts_with("[signal ") {
        return line.to_owned();
    }
    let Some(start) = line.find(" pc=0x") else {
        return line.to_owned();
    };
    let digits = start + " pc=0x".len();
    let end = line[digits..]
        .find(|c: char| !c.is_ascii_hexdigit())
        .map_or(line.len(), |i| digits + i);
    format!("{} pc=[address]{}", &line[..start], &line[end..])
}

/// `<crate::Type>::method` → `crate::Type::method`. Rust's v0 symbol
/// mangling (the default of newer toolchains) demangles an inherent method
/// with its type in angle brackets, the legacy mangling without: which
/// toolchain built a fixture is the machine's, not behaviour. Trait
/// methods (`<T as Trait>::f`) and generic arguments (`Vec<u8>::new`) are
/// left as they are.
fn scrub_inherent_impl(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let path_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(after.len());
        let path = &after[..path_len];
        let inherent = path.contains("::")
            && after[path_len..].starts_with(">::")
            && !rest[..open].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
        if inherent {
            out.push_str(&rest[..open]);
            out.push_str(path);
            rest = &after[path_len + 1..];
        } else {
            out.push_str(&rest[..=open]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// `/rustc/<commit>/library/core/src/panicking.rs:225:5` (a prebuilt std)
/// or `/usr/lib/rustlib/src/rust/library/core/src/panicking.rs:225:5` (a
/// std built from a distribution's sources) → `[rust std]`: where inside
/// the standard library a panic was raised changes with every toolchain.
fn scrub_std_location(line: &str) -> String {
    let start = match (
        line.find("/rustc/"),
        line.find("/rustlib/src/rust/library/"),
    ) {
        (Some(prebuilt), _) => prebuilt,
        // The path begins where the word does: `/usr/lib/rustlib/…`.
        (None, Some(from_source)) => line[..from_source]
            .rfind(char::is_whitespace)
            .map_or(0, |space| space + 1),
        (None, None) => return line.to_owned(),
    };
    let rest = &line[start..];
    let Some(rs) = rest.find(".rs:") else {
        return line.to_owned();
    };
    let after = &rest[rs + 4..];
    let position = after
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ':')
        .count();
    let position = after[..position].trim_end_matches(':').len();
    format!("{}[rust std]{}", &line[..start], &after[position..])
}

/// `thread 'x' (123) panicked` → `thread 'x' ([tid]) panicked`.
fn scrub_thread_id(line: &str) -> String {
    let Some(start) = line.find("thread '") else {
        return line.to_owned();
    };
    let after_name = line[start + 8..].find("' (").map(|i| start + 8 + i + 3);
    let Some(digits_start) = after_name else {
        return line.to_owned();
    };
    let digits = line[digits_start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .count();
    if digits == 0 || !line[digits_start + digits..].starts_with(')') {
        return line.to_owned();
    }
    format!(
        "{}[tid]{}",
        &line[..digits_start],
        &line[digits_start + digits..]
    )
}

/// `rustc 1.95.0` → `rustc [version]`: which compiler, not which release.
fn toolchain_family(toolchain: &str) -> String {
    match toolchain.split_whitespace().next() {
        Some(family) if toolchain.contains(char::is_numeric) => {
            let family = family.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
            format!("{family} [version]")
        }
        _ => toolchain.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_releases_are_redacted_where_they_are_words() {
        assert_eq!(
            scrub_go_release("built by go1.21.13, this worker by go1.19.8: build both"),
            "built by go [version], this worker by go [version]: build both"
        );
        assert_eq!(
            scrub_go_release("ends with go1.21."),
            "ends with go [version]."
        );
        assert_eq!(scrub_go_release("cargo1.2 and go1."), "cargo1.2 and go1.");
    }

    #[test]
    fn go_crash_reports_keep_their_cause_and_lose_addresses_and_stacks() {
        let text = "panic: runtime error: nil pointer dereference\n[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x7f70f89058c7]\n\ngoroutine 17 [running, locked to thread]:\nmain.goSelftest(...)\n\tmain.go:58\n";
        assert_eq!(
            scrub_runtime_noise(text),
            "panic: runtime error: nil pointer dereference\n[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=[address]]\n\ngoroutine stacks: [omitted]\n"
        );
        assert_eq!(scrub_go_signal_pc("pc=0x1 elsewhere"), "pc=0x1 elsewhere");
        assert_eq!(
            scrub_go_signal_pc("PC=0x7fec33026cee m=4 sigcode=1\n"),
            "PC=[address] m=[thread] sigcode=1\n"
        );
    }

    #[test]
    fn thread_ids_and_backtraces_are_scrubbed() {
        let text = "thread 'main' (4242) panicked at x.rs:1:1:\nboom\nstack backtrace:\n   0: 0x7f - f\n         at /rustc/x\nthread caused non-unwinding panic. aborting.\n";
        assert_eq!(
            scrub_runtime_noise(text),
            "thread 'main' ([tid]) panicked at x.rs:1:1:\nboom\nstack backtrace: [frames omitted]\nthread caused non-unwinding panic. aborting.\n"
        );
        assert_eq!(scrub_thread_id("thread 'x' (abc)"), "thread 'x' (abc)");
        assert_eq!(
            scrub_std_location("panicked at /rustc/5980/library/core/src/panicking.rs:225:5:\n"),
            "panicked at [rust std]:\n"
        );
        assert_eq!(
            scrub_std_location(
                "panicked at /usr/lib/rustlib/src/rust/library/core/src/panicking.rs:230:5:\n"
            ),
            "panicked at [rust std]:\n"
        );
    }

    #[test]
    fn symbols_read_alike_whichever_mangling_the_toolchain_used() {
        for (v0, legacy) in [
            (
                "at <plugcheck_fixture_x::Fixture>::parse (x.dll)",
                "at plugcheck_fixture_x::Fixture::parse (x.dll)",
            ),
            ("<a::B>::f then <c::D>::g", "a::B::f then c::D::g"),
        ] {
            assert_eq!(scrub_inherent_impl(v0), legacy);
            assert_eq!(scrub_inherent_impl(legacy), legacy);
        }
        for kept in [
            "<T as core::ops::Drop>::drop",
            "Vec<alloc::string::String>::new",
            "a < b::c > d",
            "<b::c>",
        ] {
            assert_eq!(scrub_inherent_impl(kept), kept);
        }
    }

    #[test]
    fn long_output_is_cut_with_a_mark() {
        let long = "é".repeat(3000);
        let cut = cut_output(&long);
        assert!(cut.starts_with(&"é".repeat(2048)), "cut at a char boundary");
        assert!(
            cut.ends_with("[… 1904 more bytes in the report]"),
            "{}",
            &cut[4090..]
        );
        assert_eq!(cut_output("short"), "short");
    }

    #[test]
    fn repeated_lines_are_kept_once_with_a_mark() {
        assert_eq!(
            collapse_repeats("a\nb\nb\nb\nc\nc"),
            "a\nb\n[the line above, repeated]\nc\nc"
        );
    }

    #[test]
    fn toolchains_keep_their_family() {
        assert_eq!(toolchain_family("rustc 1.95.0"), "rustc [version]");
        assert_eq!(toolchain_family("go1.19.8"), "go [version]");
        assert_eq!(toolchain_family("gcc 12.2.0"), "gcc [version]");
        assert_eq!(toolchain_family("handmade"), "handmade");
    }

    #[test]
    fn paths_and_timings_are_redacted() {
        let mut value = serde_json::json!({
            "path": "/tmp/x/lib.so",
            "duration_us": 17,
            "cases": [{"reason": "`/tmp/x/lib.so` is empty; see /tmp/x/other", "pid": 4}],
            "metadata": "built by rustc 1.95.0"
        });
        let replacements = [
            ("/tmp/x/lib.so".to_owned(), "[plugin]".to_owned()),
            ("rustc 1.95.0".to_owned(), "rustc [version]".to_owned()),
            ("/tmp/x".to_owned(), "[dir]".to_owned()),
        ];
        redact(&mut value, &replacements);
        assert_eq!(
            value,
            serde_json::json!({
                "path": "[plugin]",
                "cases": [{"reason": "`[plugin]` is empty; see [dir]/other", "pid": "[pid]"}],
                "metadata": "built by rustc [version]"
            })
        );
    }
}
