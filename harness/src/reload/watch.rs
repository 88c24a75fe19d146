//! Change detection for a plugin file: a file watcher on its directory (a
//! linker deletes and re-creates the file, which a watch on the file itself
//! would lose), then a quiet period so a burst of events is one change.
//! Whether the bytes really changed is the engine's content hash to say.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher as _};

/// The default quiet period: long enough to cover a linker's write burst,
/// short enough to feel immediate.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(50);

/// What woke the watcher up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The file changed, and then nothing happened for the debounce period;
    /// `settled_after` is how long the burst plus the quiet period took.
    Changed { settled_after: Duration },
    /// Someone asked the watch to end (Ctrl-C).
    Stop,
}

enum Signal {
    FileEvent,
    Stop,
}

/// Watches one file.
pub struct Watcher {
    // Kept alive: dropping it stops the OS watch.
    _watcher: notify::RecommendedWatcher,
    signals: Receiver<Signal>,
    sender: Sender<Signal>,
    debounce: Duration,
}

/// A handle that ends [`Watcher::next`] from another thread (a Ctrl-C
/// handler).
#[derive(Clone)]
pub struct Stopper(Sender<Signal>);

impl Stopper {
    pub fn stop(&self) {
        let _ = self.0.send(Signal::Stop);
    }
}

impl Watcher {
    /// Starts watching `file` (its directory, filtered to its name).
    pub fn new(file: &Path, debounce: Duration) -> notify::Result<Watcher> {
        let dir: PathBuf = file
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        let name: OsString = file.file_name().unwrap_or_default().to_owned();
        let (sender, signals) = channel();
        let events = sender.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                let Ok(event) = event else { return };
                if event.kind.is_access() {
                    return;
                }
                if event
                    .paths
                    .iter()
                    .any(|path| path.file_name() == Some(name.as_os_str()))
                {
                    let _ = events.send(Signal::FileEvent);
                }
            })?;
        watcher.watch(&dir, RecursiveMode::NonRecursive)?;
        Ok(Watcher {
            _watcher: watcher,
            signals,
            sender,
            debounce,
        })
    }

    pub fn stopper(&self) -> Stopper {
        Stopper(self.sender.clone())
    }

    /// Blocks until the file changed and then stayed quiet for the debounce
    /// period, or until stopped.
    pub fn next(&self) -> Wake {
        if !matches!(self.signals.recv(), Ok(Signal::FileEvent)) {
            return Wake::Stop;
        }
        let first = Instant::now();
        loop {
            match self.signals.recv_timeout(self.debounce) {
                Ok(Signal::FileEvent) => continue,
                Ok(Signal::Stop) => return Wake::Stop,
                Err(RecvTimeoutError::Timeout) => {
                    return Wake::Changed {
                        settled_after: first.elapsed(),
                    };
                }
                Err(RecvTimeoutError::Disconnected) => return Wake::Stop,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_writes_is_one_change_and_other_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("libp.so");
        std::fs::write(&file, b"v1").unwrap();
        let watcher = Watcher::new(&file, Duration::from_millis(80)).unwrap();
        std::fs::write(dir.path().join("other.txt"), b"noise").unwrap();
        for content in [&b"v2a"[..], b"v2b", b"v2"] {
            std::fs::write(&file, content).unwrap();
        }
        let Wake::Changed { settled_after } = watcher.next() else {
            panic!("expected a change");
        };
        assert!(settled_after >= Duration::from_millis(80));
        // The burst was consumed whole: only a stop is pending now.
        watcher.stopper().stop();
        assert_eq!(watcher.next(), Wake::Stop);
    }

    #[test]
    fn delete_and_recreate_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("libp.so");
        std::fs::write(&file, b"v1").unwrap();
        let watcher = Watcher::new(&file, Duration::from_millis(30)).unwrap();
        std::fs::remove_file(&file).unwrap();
        std::fs::write(&file, b"v2").unwrap();
        assert!(matches!(watcher.next(), Wake::Changed { .. }));
    }
}
