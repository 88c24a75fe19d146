//! The `stack` message a dying worker sends, composed without allocating.
//!
//! It is written from a signal handler (Linux) or an unhandled-exception
//! filter (Windows), in a process whose heap may be what broke: so the
//! message is built in a fixed buffer the worker reserved up front, with
//! nothing but byte copies and integer formatting. The parent turns it
//! into a `FromWorker::Stack` like any other line, and symbolizes it.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, Ordering};

/// Frames a note carries at most: the innermost ones, where the crash is.
pub(crate) const MAX_FRAMES: usize = 64;

/// The note's bytes at most: frames, and the memory map (Linux) or the
/// modules (Windows), cut to fit.
const CAPACITY: usize = 256 << 10;

/// A fixed buffer that only the first crashing thread may use.
pub(crate) struct NoteBuffer {
    taken: AtomicBool,
    bytes: UnsafeCell<[u8; CAPACITY]>,
}

// SAFETY: `bytes` is only reached through `take`, which hands it to one
// caller for the life of the process.
unsafe impl Sync for NoteBuffer {}

impl NoteBuffer {
    pub(crate) const fn new() -> NoteBuffer {
        NoteBuffer {
            taken: AtomicBool::new(false),
            bytes: UnsafeCell::new([0; CAPACITY]),
        }
    }

    /// The buffer, for the first caller only: a second thread crashing at
    /// the same time gets `None` (one stack per death is all the parent
    /// reads).
    pub(crate) fn take(&'static self) -> Option<Note> {
        if self.taken.swap(true, Ordering::SeqCst) {
            return None;
        }
        // SAFETY: `taken` makes this the only reference, ever.
        let bytes = unsafe { &mut *self.bytes.get() };
        Some(Note {
            bytes,
            len: 0,
            modules: 0,
        })
    }
}

impl Default for NoteBuffer {
    fn default() -> Self {
        NoteBuffer::new()
    }
}

/// A message being composed; bytes past the capacity are dropped.
pub(crate) struct Note {
    bytes: &'static mut [u8; CAPACITY],
    len: usize,
    /// Modules written so far.
    #[cfg_attr(
        not(windows),
        allow(dead_code, reason = "Windows lists modules; Linux sends its maps")
    )]
    modules: usize,
}

/// Bytes kept free at the end for the closing of the message.
const CLOSING: usize = 64;

impl Note {
    #[cfg_attr(
        windows,
        allow(dead_code, reason = "Linux sends its maps; Windows lists modules")
    )]
    /// The whole buffer, for use as scratch space (the memory map's text
    /// is read into one before it is copied into the note).
    pub(crate) fn buffer(&mut self) -> &mut [u8] {
        &mut self.bytes[..]
    }

    /// Starts the message with the frames: `{"type":"stack","frames":[…]`.
    pub(crate) fn begin(&mut self, frames: &[u64]) {
        self.raw(b"{\"type\":\"stack\",\"frames\":[");
        for (i, &frame) in frames.iter().take(MAX_FRAMES).enumerate() {
            if i > 0 {
                self.raw(b",");
            }
            self.number(frame);
        }
        self.raw(b"]");
    }

    #[cfg_attr(
        windows,
        allow(dead_code, reason = "Linux sends its maps; Windows lists modules")
    )]
    /// Adds the memory map's text (Linux), cut at a line end if it must be
    /// cut.
    pub(crate) fn maps(&mut self, text: &[u8]) {
        self.raw(b",\"maps\":\"");
        for line in text.split_inclusive(|&b| b == b'\n') {
            // A line needs at most six bytes per byte, escaped.
            if self.len + line.len() * 6 + CLOSING > CAPACITY {
                break;
            }
            self.string_bytes(line);
        }
        self.raw(b"\"");
    }

    #[cfg_attr(
        not(windows),
        allow(dead_code, reason = "Windows lists modules; Linux sends its maps")
    )]
    /// Starts the list of modules (Windows).
    pub(crate) fn begin_modules(&mut self) {
        self.raw(b",\"modules\":[");
    }

    #[cfg_attr(
        not(windows),
        allow(dead_code, reason = "Windows lists modules; Linux sends its maps")
    )]
    /// Adds one module: its path (UTF-8 or not), where it starts and ends.
    pub(crate) fn module(&mut self, path: &[u8], start: u64, end: u64) {
        if self.len + path.len() * 6 + 2 * CLOSING > CAPACITY {
            return;
        }
        if self.modules > 0 {
            self.raw(b",");
        }
        self.modules += 1;
        self.raw(b"{\"path\":\"");
        self.string_bytes(path);
        self.raw(b"\",\"start\":");
        self.number(start);
        self.raw(b",\"end\":");
        self.number(end);
        self.raw(b"}");
    }

    #[cfg_attr(
        not(windows),
        allow(dead_code, reason = "Windows lists modules; Linux sends its maps")
    )]
    pub(crate) fn end_modules(&mut self) {
        self.raw(b"]");
    }

    /// Closes the message; returns the line to write.
    pub(crate) fn finish(&mut self) -> &[u8] {
        self.len = self.len.min(CAPACITY - 2);
        self.bytes[self.len] = b'}';
        self.bytes[self.len + 1] = b'\n';
        self.len += 2;
        &self.bytes[..self.len]
    }

    fn raw(&mut self, bytes: &[u8]) {
        let room = (CAPACITY - 2).saturating_sub(self.len);
        let take = bytes.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&bytes[..take]);
        self.len += take;
    }

    fn number(&mut self, mut value: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        self.raw(&digits[at..]);
    }

    /// JSON string content: quotes, backslashes and control bytes escaped;
    /// a byte that is not ASCII becomes `\u00XX`, so the line is valid
    /// UTF-8 whatever the path's bytes (the parent maps them back).
    fn string_bytes(&mut self, text: &[u8]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for &byte in text {
            match byte {
                b'"' => self.raw(b"\\\""),
                b'\\' => self.raw(b"\\\\"),
                b'\n' => self.raw(b"\\n"),
                0x20..=0x7e => self.raw(&[byte]),
                _ => self.raw(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(byte >> 4)],
                    HEX[usize::from(byte & 15)],
                ]),
            }
        }
    }
}

/// The crashing thread's frames, innermost first, into `frames`: the
/// unwinder walks the stack it runs on (the `backtrace` crate: libgcc's
/// unwinder on Linux, `RtlVirtualUnwind` on Windows), and the walk is cut
/// at `faulting` (the faulting instruction, from the signal context or the
/// exception record), which drops the handler's, filter's and dispatcher's
/// own frames. Where the walk never reaches it, the faulting address alone
/// is still worth reporting. Allocates nothing.
pub(crate) fn crashing_frames(faulting: u64, frames: &mut [u64; MAX_FRAMES]) -> usize {
    let mut all = [0u64; MAX_FRAMES + 32];
    let mut count = 0;
    // SAFETY: the walk only reads this thread's stack and unwind tables;
    // nothing else runs on this thread meanwhile.
    unsafe {
        backtrace::trace_unsynchronized(|frame| {
            all[count] = frame.ip() as u64;
            count += 1;
            count < all.len()
        });
    }
    let walked = &all[..count];
    let crashing: &[u64] = match walked.iter().position(|&ip| ip == faulting) {
        Some(at) => &walked[at..],
        None if faulting != 0 => std::slice::from_ref(&faulting),
        None => walked,
    };
    let kept = crashing.len().min(MAX_FRAMES);
    frames[..kept].copy_from_slice(&crashing[..kept]);
    kept
}

/// Maps a string the note escaped byte by byte back to the bytes (each
/// char below U+0100 is one byte), then reads them as UTF-8 where they are.
pub(crate) fn unescape_bytes(text: &str) -> String {
    if text.is_ascii() {
        return text.to_owned();
    }
    let bytes: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    static BUFFER: NoteBuffer = NoteBuffer::new();

    #[test]
    fn a_note_is_one_json_line_and_only_one_is_taken() {
        let mut note = BUFFER.take().expect("first");
        assert!(BUFFER.take().is_none(), "one note per process");
        note.begin(&[1, 0x7fff_0000_1234, u64::MAX]);
        note.maps(b"7f00-7f10 r-xp 00001000 08:01 42 /lib/libq\"uote\xc3\xa9.so\n");
        note.begin_modules();
        note.module(b"C:\\dir\\plugin.dll", 0x1000, 0x2000);
        note.end_modules();
        let line = note.finish().to_vec();
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1);
        let message: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(message["type"], "stack");
        assert_eq!(
            message["frames"],
            serde_json::json!([1, 0x7fff_0000_1234_u64, u64::MAX])
        );
        assert_eq!(
            unescape_bytes(message["maps"].as_str().unwrap()),
            "7f00-7f10 r-xp 00001000 08:01 42 /lib/libq\"uoteé.so\n"
        );
        assert_eq!(message["modules"][0]["path"], "C:\\dir\\plugin.dll");
        assert_eq!(message["modules"][0]["end"], 0x2000);
    }
}
