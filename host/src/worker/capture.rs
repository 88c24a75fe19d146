//! Reads one of the worker's output streams on a thread, cuts it into
//! per-case segments at the worker's markers, and bounds what it keeps: a
//! plugin that prints without end costs a counter, not memory.

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use super::protocol::parse_marker;

/// Bytes kept per stream per case.
pub(super) const MAX_SEGMENT_BYTES: usize = 64 * 1024;

/// Bytes read at a time. The reader's buffer is zeroed before its first
/// read, page by page: 64 KiB cost each capture thread 16 page faults
/// before the worker had printed anything; a flood is still read in a few
/// large reads per millisecond.
const READ_BYTES: usize = 16 * 1024;

/// Longest line that is still checked for being a marker.
const MAX_MARKER_LINE: usize = 160;

/// What a stream carried during one case.
#[derive(Debug, Default)]
pub(super) struct Segment {
    /// The case it ends (`None`: the stream ended first).
    pub seq: Option<u64>,
    pub bytes: Vec<u8>,
    pub dropped: u64,
}

/// The receiving end of a stream's segments.
pub(super) struct Capture {
    /// The stream and the marker token, until a thread reads them: it
    /// starts once the worker has its first batch (see [`Capture::start`]),
    /// so its start is not on the way there. The pipe holds what the
    /// worker writes meanwhile.
    unread: Option<(Box<dyn Read + Send>, String)>,
    /// The stream's segments, once its thread runs.
    segments: Option<Receiver<Segment>>,
    /// The stream's last segment has arrived.
    ended: bool,
    /// The reading thread, to wake from a batching pause.
    reader: Option<std::thread::Thread>,
    /// Set once someone waits for output: from then on, read without pauses.
    draining: Arc<AtomicBool>,
}

impl Capture {
    /// A capture of `stream`, read from [`Capture::start`] on, or from the
    /// first time its output is asked for.
    pub(super) fn new(stream: impl Read + Send + 'static, token: String) -> Capture {
        Capture {
            unread: Some((Box::new(stream), token)),
            segments: None,
            ended: false,
            reader: None,
            draining: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Starts reading the stream on a thread, if it is not read yet.
    pub(super) fn start(&mut self) {
        let Some((stream, token)) = self.unread.take() else {
            return;
        };
        let (sender, segments) = channel();
        let batched = Batched {
            inner: stream,
            pause: false,
            draining: Arc::clone(&self.draining),
        };
        let reader = std::thread::Builder::new()
            .name("plugcheck-capture".into())
            .spawn(move || split(batched, &token, &sender))
            .expect("spawning a capture thread")
            .thread()
            .clone();
        self.segments = Some(segments);
        self.reader = Some(reader);
    }

    /// From now on, reads without batching pauses: for output that will be
    /// waited for soon.
    pub(super) fn read_eagerly(&mut self) {
        self.start();
        self.draining.store(true, Ordering::Relaxed);
        if let Some(reader) = &self.reader {
            reader.unpark();
        }
    }

    /// The output of case `seq`, waiting up to `wait` for its marker.
    pub(super) fn case_output(&mut self, seq: u64, wait: Duration) -> Segment {
        self.read_eagerly();
        let deadline = Instant::now() + wait;
        let mut collected = Segment::default();
        let Some(segments) = &self.segments else {
            return collected;
        };
        while !self.ended {
            let left = deadline.saturating_duration_since(Instant::now());
            match segments.recv_timeout(left) {
                Ok(segment) => {
                    let done = segment.seq.is_none_or(|s| s >= seq);
                    self.ended = segment.seq.is_none();
                    append(&mut collected, segment);
                    if done {
                        break;
                    }
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => self.ended = true,
            }
        }
        collected
    }

    /// Everything left until the stream ends (the worker is gone), waiting
    /// at most `wait`: a daemon the plugin started may hold the pipe open.
    pub(super) fn rest(&mut self, wait: Duration) -> Segment {
        self.case_output(u64::MAX, wait)
    }
}

fn append(into: &mut Segment, segment: Segment) {
    let room = MAX_SEGMENT_BYTES.saturating_sub(into.bytes.len());
    let kept = segment.bytes.len().min(room);
    into.bytes.extend_from_slice(&segment.bytes[..kept]);
    into.dropped += segment.dropped + (segment.bytes.len() - kept) as u64;
    into.seq = segment.seq;
}

/// The capture thread: line-aware splitting at markers, bounded storage.
fn split(stream: impl Read, token: &str, sender: &Sender<Segment>) {
    let mut reader = BufReader::with_capacity(READ_BYTES, stream);
    let mut segment = Segment::default();
    let mut line: Vec<u8> = Vec::new();
    // The current line is too long to be a marker and goes straight through.
    let mut long_line = false;
    loop {
        let buffer = match reader.fill_buf() {
            Ok([]) => break,
            Ok(buffer) => buffer,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let (chunk, ends_line) = match buffer.iter().position(|&b| b == b'\n') {
            Some(newline) => (&buffer[..=newline], true),
            None => (buffer, false),
        };
        let consumed = chunk.len();
        if long_line {
            keep(&mut segment, chunk);
        } else {
            line.extend_from_slice(chunk);
            if line.len() > MAX_MARKER_LINE {
                keep(&mut segment, &line);
                line.clear();
                long_line = true;
            }
        }
        if ends_line {
            if !long_line {
                match parse_marker(token, &line) {
                    Some(seq) => {
                        // The marker's leading newline ended the plugin's
                        // last line: it is ours, not the plugin's.
                        if segment.dropped == 0 && segment.bytes.last() == Some(&b'\n') {
                            segment.bytes.pop();
                        }
                        segment.seq = Some(seq);
                        if sender.send(std::mem::take(&mut segment)).is_err() {
                            return;
                        }
                    }
                    None => keep(&mut segment, &line),
                }
                line.clear();
            }
            long_line = false;
        }
        reader.consume(consumed);
    }
    keep(&mut segment, &line);
    segment.seq = None;
    let _ = sender.send(segment);
}

/// How long a capture thread waits after a short read before reading again.
const BATCH_PAUSE: Duration = Duration::from_millis(1);

/// Reads in batches. Output is split by case only when the worker ends, so
/// reading it late costs nothing, while reading it at once would wake this
/// thread for every case marker, competing with the worker for the CPU.
/// After a short read (the pipe was drained) it pauses before the next; a
/// plugin that floods its output is read without pauses, and so is all
/// output once the parent waits for it.
struct Batched<R> {
    inner: R,
    pause: bool,
    draining: Arc<AtomicBool>,
}

impl<R: Read> Read for Batched<R> {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.pause && !self.draining.load(Ordering::Relaxed) {
            std::thread::park_timeout(BATCH_PAUSE);
        }
        let read = self.inner.read(buffer)?;
        self.pause = read > 0 && read < buffer.len() / 2;
        Ok(read)
    }
}

fn keep(segment: &mut Segment, bytes: &[u8]) {
    let room = MAX_SEGMENT_BYTES.saturating_sub(segment.bytes.len());
    let kept = bytes.len().min(room);
    segment.bytes.extend_from_slice(&bytes[..kept]);
    segment.dropped += (bytes.len() - kept) as u64;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::protocol::case_end_marker;

    fn capture(text: &[u8]) -> Capture {
        Capture::new(std::io::Cursor::new(text.to_vec()), "tok".into())
    }

    #[test]
    fn output_is_cut_at_markers_and_fake_markers_stay_output() {
        let mut stream = b"hello\nno newline".to_vec();
        stream.extend(case_end_marker("tok", 1).as_bytes());
        stream.extend(b"@@plugcheck:forged:2@@\n{\"fake\":\"json\"}\n");
        stream.extend(case_end_marker("tok", 2).as_bytes());
        stream.extend(b"tail");
        let mut capture = capture(&stream);
        let wait = Duration::from_secs(5);
        assert_eq!(capture.case_output(1, wait).bytes, b"hello\nno newline");
        assert_eq!(
            capture.case_output(2, wait).bytes,
            b"@@plugcheck:forged:2@@\n{\"fake\":\"json\"}\n"
        );
        let rest = capture.rest(wait);
        assert_eq!(rest.bytes, b"tail");
        assert_eq!(rest.seq, None);
    }

    #[test]
    fn endless_output_is_bounded_and_counted() {
        let mut stream = vec![b'x'; MAX_SEGMENT_BYTES * 3];
        stream.extend(case_end_marker("tok", 1).as_bytes());
        let segment = capture(&stream).case_output(1, Duration::from_secs(5));
        assert_eq!(segment.bytes.len(), MAX_SEGMENT_BYTES);
        // The marker's own newline counts as plugin output here, since the
        // kept bytes were cut before it.
        assert_eq!(segment.dropped, (MAX_SEGMENT_BYTES * 2 + 1) as u64);
        assert_eq!(segment.seq, Some(1));
    }
}
