//! A plugin report with everything that changes from run to run taken out
//! (paths, pids, timings, compiler versions) and everything that describes
//! behaviour kept (verdicts, reasons, error codes, signal and NTSTATUS
//! names, ABI versions): the form snapshots compare.

use serde_json::Value;

use crate::report::PluginReport;

/// Fields whose values are timings or sizes that vary between runs.
const VOLATILE_FIELDS: &[(&str, &str)] = &[
    ("duration_us", "[duration]"),
    ("load_ms", "[duration]"),
    ("init_ms", "[duration]"),
    ("pid", "[pid]"),
    ("mapped_bytes", "[bytes]"),
];

/// The normalized form of one plugin's report.
pub fn plugin(report: &PluginReport) -> Value {
    let mut value = serde_json::to_value(report).expect("reports serialize");
    let path = report.path.display().to_string();
    let dir = report
        .path
        .parent()
        .map(|dir| dir.display().to_string())
        .unwrap_or_default();
    redact(&mut value, &path, &dir);
    value
}

fn redact(value: &mut Value, path: &str, dir: &str) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if let Some((_, placeholder)) = VOLATILE_FIELDS.iter().find(|(name, _)| name == key)
                {
                    *field = Value::String((*placeholder).into());
                } else if key == "toolchain" {
                    if let Value::String(toolchain) = field {
                        *toolchain = toolchain_family(toolchain);
                    }
                } else {
                    redact(field, path, dir);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| redact(item, path, dir)),
        Value::String(text) => *text = replace_paths(text, path, dir),
        _ => {}
    }
}

fn replace_paths(text: &str, path: &str, dir: &str) -> String {
    let text = if path.is_empty() {
        text.to_owned()
    } else {
        text.replace(path, "[plugin]")
    };
    if dir.is_empty() {
        text
    } else {
        text.replace(dir, "[dir]")
    }
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
            "cases": [{"reason": "`/tmp/x/lib.so` is empty; see /tmp/x/other", "pid": 4}]
        });
        redact(&mut value, "/tmp/x/lib.so", "/tmp/x");
        assert_eq!(
            value,
            serde_json::json!({
                "path": "[plugin]",
                "duration_us": "[duration]",
                "cases": [{"reason": "`[plugin]` is empty; see [dir]/other", "pid": "[pid]"}]
            })
        );
    }
}
