//! The line prompt of `plugcheck watch`: call the serving plugin's methods
//! from stdin, so an author can change its state and watch it survive the
//! next reload.
//!
//! `METHOD` calls it with no input, `METHOD TEXT` with the text's UTF-8
//! bytes, `METHOD 0x0a0b…` with those bytes. `:state` shows what
//! `save_state` returns, `:methods` what the plugin registered. Outputs
//! are shown as text when they are printable UTF-8, as hex otherwise.

use std::io::BufRead;
use std::sync::Weak;

use super::shared::say;
use crate::plugin::session::status_text;
use crate::reload::ReloadEngine;
use crate::text::one_line;

/// The longest line read (the rest is refused, not buffered).
const MAX_LINE: usize = 64 * 1024;

/// Bytes of an output shown; the rest is counted.
const SHOWN_BYTES: usize = 256;

/// Reads commands from stdin on a thread of its own until stdin ends. It
/// holds the engine only while a command runs, so the watch can end (and
/// shut the plugin down) while it waits for a line.
pub(super) fn serve(engine: Weak<ReloadEngine>) {
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut lines = stdin.lock();
        let mut line = Vec::new();
        loop {
            line.clear();
            let read =
                std::io::Read::take(&mut lines, MAX_LINE as u64 + 1).read_until(b'\n', &mut line);
            match read {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let Some(engine) = engine.upgrade() else {
                return;
            };
            let answer = if line.len() > MAX_LINE && !line.ends_with(b"\n") {
                // Skip the rest of an overlong line.
                let _ = lines.skip_until(b'\n');
                format!("a line is at most {MAX_LINE} bytes\n")
            } else {
                run(&engine, &String::from_utf8_lossy(&line))
            };
            drop(engine);
            say(&answer);
        }
    });
}

/// One command's answer.
pub(super) fn run(engine: &ReloadEngine, line: &str) -> String {
    let line = line.trim();
    if line.is_empty() {
        return String::new();
    }
    match line {
        ":help" | "?" => return HELP.to_owned(),
        ":state" => {
            return match engine.save_state() {
                Ok(None) => "stateless plugin: no save_state\n".into(),
                Ok(Some(answer)) if answer.status != 0 => {
                    format!("save_state returned {}\n", status_text(answer.status))
                }
                Ok(Some(answer)) => format!("state: {}\n", show(&answer.output)),
                Err(outcome) => format!("save_state failed: {}\n", one_line(&outcome.reason)),
            };
        }
        ":methods" => {
            let methods = engine.methods();
            return format!(
                "methods: {}\n",
                methods
                    .iter()
                    .map(|name| format!("`{}`", one_line(name)))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        _ => {}
    }
    let (method, input) = line.split_once(' ').unwrap_or((line, ""));
    let input = match parse_input(input.trim()) {
        Ok(input) => input,
        Err(problem) => return format!("{problem}\n"),
    };
    let method_shown = one_line(method);
    match engine.call(method, &input) {
        Ok(None) => format!("no method `{method_shown}` (`:methods` lists them)\n"),
        Ok(Some(answer)) if answer.status != 0 => {
            format!("`{method_shown}` returned {}\n", status_text(answer.status))
        }
        Ok(Some(answer)) => format!("`{method_shown}` returned 0: {}\n", show(&answer.output)),
        Err(outcome) => format!("`{method_shown}` failed: {}\n", one_line(&outcome.reason)),
    }
}

const HELP: &str = "METHOD             call METHOD with no input
METHOD TEXT        call it with TEXT (UTF-8)
METHOD 0x0a0b…     call it with these bytes
:state             what save_state returns now
:methods           the methods the plugin registered
";

/// `0x…` is hex; anything else is the text's bytes.
fn parse_input(text: &str) -> Result<Vec<u8>, String> {
    let Some(hex) = text.strip_prefix("0x") else {
        return Ok(text.as_bytes().to_vec());
    };
    if hex.len() % 2 != 0 {
        return Err("hex input needs two digits per byte".into());
    }
    (0..hex.len())
        .step_by(2)
        .map(|at| {
            u8::from_str_radix(&hex[at..at + 2], 16)
                .map_err(|_| format!("`{}` is not hex", one_line(&hex[at..at + 2])))
        })
        .collect()
}

/// `5 bytes "hello"`, or `8 bytes 0x0200000000000000`.
fn show(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(SHOWN_BYTES)];
    let more = if bytes.len() > SHOWN_BYTES { "…" } else { "" };
    let text = std::str::from_utf8(shown)
        .ok()
        .filter(|text| !text.is_empty() && text.chars().all(|c| !c.is_control() || c == '\n'));
    match text {
        Some(text) => format!("{} bytes \"{}{more}\"", bytes.len(), one_line(text)),
        None if bytes.is_empty() => "0 bytes".into(),
        None => {
            let hex: String = shown.iter().map(|byte| format!("{byte:02x}")).collect();
            format!("{} bytes 0x{hex}{more}", bytes.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_text_or_hex_and_outputs_text_or_hex() {
        assert_eq!(parse_input("hi").unwrap(), b"hi");
        assert_eq!(parse_input("0x0aff").unwrap(), vec![0x0a, 0xff]);
        assert!(parse_input("0x0").is_err());
        assert!(parse_input("0xzz").unwrap_err().contains("not hex"));
        assert_eq!(show(b"hello"), "5 bytes \"hello\"");
        assert_eq!(show(&2u64.to_le_bytes()), "8 bytes 0x0200000000000000");
        assert_eq!(show(b""), "0 bytes");
        assert_eq!(show(b"\x1b[31m"), "5 bytes 0x1b5b33316d");
    }

    /// The README's "Hot reload while you rebuild" names every command.
    #[test]
    fn the_readme_documents_every_command() {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("## Hot reload while you rebuild")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("the README has the section");
        for command in HELP
            .lines()
            .map(|line| line.split("  ").next().unwrap().trim())
        {
            let command = command.replace('…', "");
            assert!(section.contains(&command), "README lacks `{command}`");
        }
        assert!(section.contains("`:help`"));
    }
}
