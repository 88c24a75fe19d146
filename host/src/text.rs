//! Text from a plugin is data, not markup. Its name, version, toolchain,
//! log lines and output may hold newlines (to forge a `PASS` line or a
//! summary), escape sequences (`ESC[8m` hides what follows), or bidi
//! controls (to reorder what a reader sees). Every view that prints such
//! text — the table, `watch`, GitHub annotations and summaries, JUnit —
//! passes it through here; the JSON report keeps the exact text.

use std::borrow::Cow;

/// `text` on one line: every control character (newlines included) and
/// every invisible reordering character shown escaped (`\n`, `\u{1b}`).
pub fn one_line(text: &str) -> Cow<'_, str> {
    escape(text, false)
}

/// `text` with its line breaks kept, every other control or reordering
/// character escaped: for output quoted as a block (JUnit `system-out`).
pub fn keeping_lines(text: &str) -> Cow<'_, str> {
    escape(text, true)
}

fn escape(text: &str, keep_newlines: bool) -> Cow<'_, str> {
    let needs = |c: char| is_unsafe(c) && !(keep_newlines && c == '\n');
    if !text.chars().any(needs) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !needs(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            other => out.push_str(&format!("\\u{{{:x}}}", u32::from(other))),
        }
    }
    Cow::Owned(out)
}

/// Control characters (C0, DEL, C1) and the invisible characters that
/// change how text around them is ordered or joined.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}'
        )
}

/// `850 ms`, `1.5 s`: durations for people.
pub fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// `text` cut to at most `max_chars` characters, with `…` where it was cut.
pub fn clip(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The characters of a waiver's reason a human view prints.
pub const REASON_CHARS: usize = 300;

/// A waiver's reason as the table, the summary, annotations and JUnit show
/// it: clipped to [`REASON_CHARS`] with `…` (a reason is the gate file's
/// text, and a megabyte of it would bury the verdicts). The JSON report
/// keeps it whole. Escaping is still each view's job.
pub fn clip_reason(reason: &str) -> String {
    clip(reason, REASON_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_lines_and_escape_sequences_stay_visible_text() {
        let forged = "echo\n  PASS      load    fine\n\u{1b}[8mhidden\u{1b}[0m";
        let shown = one_line(forged);
        assert!(
            !shown.contains('\n') && !shown.contains('\u{1b}'),
            "{shown}"
        );
        assert_eq!(
            shown,
            "echo\\n  PASS      load    fine\\n\\u{1b}[8mhidden\\u{1b}[0m"
        );
        assert_eq!(one_line("tab\there\r"), "tab\\there\\r");
        assert_eq!(one_line("abc\u{202e}def"), "abc\\u{202e}def");
        assert_eq!(
            one_line("Z:\\plugins\\echo.dll — ünïcode"),
            "Z:\\plugins\\echo.dll — ünïcode"
        );
        assert!(matches!(one_line("plain"), Cow::Borrowed(_)));
        assert_eq!(keeping_lines("a\nb\u{7}"), "a\nb\\u{7}");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_ms(850), "850 ms");
        assert_eq!(human_ms(2000), "2 s");
        assert_eq!(human_ms(1500), "1.5 s");
    }
}
