//! The bounds every worker holds a plugin to, in one place. The Go worker
//! (`host/go-worker/limits.go`) holds Go-native plugins to the same
//! ones, so the same behaviour gets the same verdict whichever worker
//! judges it; `host/protocol/limits.json` is their golden copy, which
//! the tests below and the Go worker's `limits_test.go` both compare with.

/// Log lines kept per plugin instance; a plugin that logs in a loop must
/// not grow the worker without bound.
pub(crate) const LOG_LINES_KEPT: usize = 200;
/// Bytes of one log line kept; a longer one is cut and marked with `…`.
pub(crate) const LOG_LINE_BYTES: usize = 2000;
/// Longest method name taken; a longer one is refused (names are keys,
/// not messages).
pub(crate) const METHOD_NAME_BYTES: usize = 4096;
/// Most methods one instance may register: far above any real plugin
/// (10,000 is fine), low enough that a registration loop cannot exhaust
/// the worker's memory.
pub(crate) const METHODS: usize = 16_384;
/// Refused registrations kept for the report; more are counted.
pub(crate) const REJECTIONS_KEPT: usize = 100;
/// Method names a report lists at most (a plugin may register thousands).
pub(crate) const METHODS_LISTED: usize = 200;
/// Longest name, version or toolchain a plugin may give; a longer one
/// fails `metadata` (a missing terminator is reported rather than read
/// past).
pub(crate) const PLUGIN_STRING_BYTES: usize = 4096;
/// Longest protocol line either side reads.
pub(crate) const CHANNEL_LINE_BYTES: usize = 4 << 20;
/// The exit code of a worker that lost its channel to the parent: the
/// plugin closed or replaced a descriptor it did not open.
pub const EXIT_CHANNEL_LOST: i32 = 97;
/// The largest input a call may carry in its message (`input_hex`, twice
/// as many characters): an embedding host's call, whose input is in
/// memory. A quarter of the line bound, as the answer's output is.
pub const INLINE_CALL_INPUT_BYTES: usize = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    /// The golden copy both workers' tests read.
    const GOLDEN: &str = include_str!("../../protocol/limits.json");

    #[test]
    fn the_bounds_are_the_golden_ones() {
        let golden: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(GOLDEN).expect("limits.json is a JSON object");
        let ours: [(&str, i64); 10] = [
            ("log_lines_kept", LOG_LINES_KEPT as i64),
            ("log_line_bytes", LOG_LINE_BYTES as i64),
            ("method_name_bytes", METHOD_NAME_BYTES as i64),
            ("methods", METHODS as i64),
            ("rejections_kept", REJECTIONS_KEPT as i64),
            ("methods_listed", METHODS_LISTED as i64),
            ("plugin_string_bytes", PLUGIN_STRING_BYTES as i64),
            ("channel_line_bytes", CHANNEL_LINE_BYTES as i64),
            ("exit_channel_lost", i64::from(EXIT_CHANNEL_LOST)),
            ("inline_call_input_bytes", INLINE_CALL_INPUT_BYTES as i64),
        ];
        for (name, value) in ours {
            assert_eq!(
                golden.get(name).and_then(serde_json::Value::as_i64),
                Some(value),
                "`{name}` in host/protocol/limits.json and in limits.rs differ: change both, and the Go worker's limits.go"
            );
        }
        assert_eq!(
            golden.len(),
            ours.len(),
            "limits.json has a bound limits.rs does not hold: {:?}",
            golden.keys().collect::<Vec<_>>()
        );
    }
}
