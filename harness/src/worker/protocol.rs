//! Messages between parent and worker: one JSON object per line over the
//! loopback socket.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::cases::{CaseResult, CaseSettings};
use crate::catalog::CaseId;
use crate::plan::Ledger;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ToWorker {
    /// Run these cases in order, numbered from `first_seq`, skipping those
    /// whose prerequisites the ledger (and the batch so far) rule out; one
    /// `Done` comes back per case.
    Run {
        first_seq: u64,
        cases: Vec<CaseId>,
        ledger: Ledger,
        settings: CaseSettings,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum FromWorker {
    /// First message: proves the connection comes from the worker the
    /// parent started (the token was on its command line).
    Hello { token: String, pid: u32 },
    Done {
        seq: u64,
        case: CaseId,
        result: CaseResult,
        /// Time spent in the case itself, inside the worker.
        work_us: u64,
        /// Whether this worker has loaded the plugin by now.
        has_loaded: bool,
    },
}

pub fn send<T: Serialize>(writer: &mut impl Write, message: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(message).map_err(std::io::Error::other)?;
    line.push(b'\n');
    writer.write_all(&line)?;
    writer.flush()
}

/// Reads one message; `Ok(None)` at end of stream.
pub fn receive<T: for<'de> Deserialize<'de>>(
    reader: &mut impl BufRead,
) -> std::io::Result<Option<T>> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    serde_json::from_str(&line)
        .map(Some)
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidData, error))
}

/// The line the worker writes to stdout and stderr after each case, so the
/// parent can cut the plugin's output into per-case pieces. The leading
/// newline ends whatever line the plugin left open; the parent removes it.
pub fn case_end_marker(token: &str, seq: u64) -> String {
    format!("\n@@plugcheck:{token}:{seq}@@\n")
}

/// The sequence number of a marker line (without the leading newline).
pub fn parse_marker(token: &str, line: &[u8]) -> Option<u64> {
    let line = std::str::from_utf8(line).ok()?;
    let rest = line.strip_prefix("@@plugcheck:")?.strip_prefix(token)?;
    rest.strip_prefix(':')?.strip_suffix("@@\n")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_and_need_the_token() {
        let marker = case_end_marker("abc", 7);
        let line = &marker.as_bytes()[1..];
        assert_eq!(parse_marker("abc", line), Some(7));
        assert_eq!(parse_marker("xyz", line), None);
        assert_eq!(parse_marker("abc", b"@@plugcheck:abc:7@@"), None);
    }

    #[test]
    fn messages_are_json_lines() {
        let mut buffer = Vec::new();
        let batch = ToWorker::Run {
            first_seq: 3,
            cases: vec![CaseId::Init, CaseId::Selftest],
            ledger: Ledger::default(),
            settings: CaseSettings::default(),
        };
        send(&mut buffer, &batch).unwrap();
        assert_eq!(buffer.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(
            buffer.starts_with(
                b"{\"type\":\"run\",\"first_seq\":3,\"cases\":[\"init\",\"selftest\"]"
            )
        );
        let parsed: Option<ToWorker> = receive(&mut &buffer[..]).unwrap();
        let Some(ToWorker::Run {
            first_seq, cases, ..
        }) = parsed
        else {
            panic!("a batch comes back as a batch");
        };
        assert_eq!(
            (first_seq, cases),
            (3, vec![CaseId::Init, CaseId::Selftest])
        );
        let empty: Option<ToWorker> = receive(&mut &b""[..]).unwrap();
        assert!(empty.is_none(), "end of stream is not an error");
    }
}
