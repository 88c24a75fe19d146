//! Reading strings out of plugin memory without trusting the pointer: the
//! OS copies the bytes (and answers "unreadable" where a plain read would
//! crash the worker), page by page, up to a bound. So a name of 1 MiB is
//! reported as too long, with its length, and a pointer into nowhere as
//! unreadable — not as a missing terminator or a crash.

use crate::os;

/// Reads never cross a page boundary, so a read that fails tells exactly
/// where readable memory ends (Windows copies all of a range or nothing).
const PAGE: usize = 4096;

/// The first read of a string: most names and log lines end well within
/// it, and the OS then copies this much instead of the rest of the page
/// (a plugin registering 10,000 methods hands over 10,000 names per init).
const FIRST_READ: usize = 256;

/// How far past the bound a too-long string is measured, to give its
/// length, when the caller asks for it.
const MEASURE_LIMIT: usize = 64 << 20;

/// What to do with a string longer than the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overlong {
    /// Read on to find its length (up to 64 MiB): for strings read once
    /// per load, where the length is the diagnosis (a descriptor's name).
    Measure,
    /// Stop at the bound: for strings a plugin may hand over many times
    /// (log lines, method names), where reading on would let it make the
    /// host scan megabytes per call.
    Stop,
}

/// A NUL-terminated string read from plugin memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CText {
    /// The bytes before the terminator (at most the bound).
    Text(Vec<u8>),
    /// No terminator within the bound; `len` is the string's length when
    /// it was measured and the terminator came within `searched` bytes,
    /// `head` its first `bound` bytes.
    TooLong {
        len: Option<usize>,
        searched: usize,
        head: Vec<u8>,
    },
    /// Memory stopped being readable after `after` bytes, before any
    /// terminator.
    Unreadable { after: usize },
}

impl CText {
    /// Why a string that is not [`CText::Text`] was refused: completes
    /// "the descriptor's name …".
    pub(crate) fn problem(&self, bound: usize) -> Option<String> {
        match self {
            CText::Text(_) => None,
            CText::TooLong { len: Some(len), .. } => Some(format!(
                "is {len} bytes long, over the {bound}-byte bound: keep it short"
            )),
            CText::TooLong {
                len: None,
                searched,
                ..
            } => Some(format!(
                "has no NUL terminator within {searched} bytes, over the {bound}-byte bound: keep it short and NUL-terminated"
            )),
            CText::Unreadable { after: 0 } => {
                Some("points to unreadable memory: point it to a static string".into())
            }
            CText::Unreadable { after } => Some(format!(
                "runs into unreadable memory after {after} bytes without a NUL terminator: NUL-terminate it"
            )),
        }
    }
}

/// Copies the string at `text` (not NULL) up to its NUL terminator, keeping
/// at most `bound` bytes; `overlong` says whether a longer one is measured.
pub(crate) fn read_c_text(text: *const u8, bound: usize, overlong: Overlong) -> CText {
    let start = text as usize;
    let limit = match overlong {
        Overlong::Measure => MEASURE_LIMIT.max(bound + 1),
        Overlong::Stop => bound + 1,
    };
    let mut kept = Vec::new();
    let mut offset = 0usize;
    let mut chunk = [0u8; PAGE];
    while offset < limit {
        let Some(address) = start.checked_add(offset) else {
            return CText::Unreadable { after: offset };
        };
        let mut want = (PAGE - address % PAGE).min(limit - offset);
        if offset == 0 {
            want = want.min(FIRST_READ);
        }
        let read = os::read_own_memory(address, &mut chunk[..want]);
        if read == 0 {
            return CText::Unreadable { after: offset };
        }
        if let Some(nul) = memchr::memchr(0, &chunk[..read]) {
            let len = offset + nul;
            if len > bound {
                return CText::TooLong {
                    len: Some(len),
                    searched: offset + read,
                    head: kept,
                };
            }
            kept.extend_from_slice(&chunk[..nul]);
            return CText::Text(kept);
        }
        let room = bound.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..read.min(room)]);
        offset += read;
    }
    CText::TooLong {
        len: None,
        searched: offset,
        head: kept,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_strings_long_strings_and_bad_pointers_are_told_apart() {
        assert_eq!(
            read_c_text(c"echo".as_ptr().cast(), 4096, Overlong::Stop),
            CText::Text(b"echo".to_vec())
        );
        let mut long = vec![b'n'; 1 << 20];
        long.push(0);
        let too_long = read_c_text(long.as_ptr(), 4096, Overlong::Measure);
        let CText::TooLong { len, head, .. } = &too_long else {
            panic!("{too_long:?}");
        };
        assert_eq!((*len, head.len()), (Some(1 << 20), 4096));
        let problem = too_long.problem(4096).unwrap();
        assert!(problem.contains("1048576 bytes long"), "{problem}");
        // Not measured: the read stops just past the bound.
        let stopped = read_c_text(long.as_ptr(), 4096, Overlong::Stop);
        let CText::TooLong {
            len,
            searched,
            head,
        } = &stopped
        else {
            panic!("{stopped:?}");
        };
        assert_eq!((*len, *searched, head.len()), (None, 4097, 4096));
        let problem = stopped.problem(4096).unwrap();
        assert!(
            problem.contains("no NUL terminator within 4097 bytes"),
            "{problem}"
        );
        // Address 8 is never mapped: the OS says so instead of a crash.
        assert_eq!(
            read_c_text(8 as *const u8, 4096, Overlong::Measure),
            CText::Unreadable { after: 0 }
        );
    }
}
