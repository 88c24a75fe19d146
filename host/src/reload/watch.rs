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

/// How changes are noticed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The OS's change notifications (inotify, ReadDirectoryChangesW).
    Events,
    /// Looking at the file's metadata (length, modification time to the
    /// nanosecond) every `interval`: for filesystems that deliver no events
    /// (WSL2's mounts of Windows drives). notify's own poller compares
    /// modification times in whole seconds, so a rebuild within the second
    /// would be missed; this one does not read the file's content.
    Poll { interval: std::time::Duration },
}

/// How often polling looks: fast enough to feel live, cheap on a directory.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Why events cannot be trusted for `dir`, if they cannot: WSL2 delivers
/// no inotify events for changes made from Windows to its drvfs/9p mounts
/// (`/mnt/c`), so a watcher there would wait forever and say nothing.
/// `kernel_release` and `filesystem` come from the OS seam.
pub fn polling_needed(kernel_release: Option<&str>, filesystem: Option<&str>) -> Option<String> {
    let release = kernel_release?;
    let lower = release.to_ascii_lowercase();
    if !(lower.contains("microsoft") || lower.contains("wsl")) {
        return None;
    }
    let filesystem = filesystem?;
    matches!(filesystem, "9p" | "drvfs" | "v9fs" | "virtiofs").then(|| {
        format!(
            "WSL (kernel {release}) delivers no change events for a Windows drive mounted as {filesystem}"
        )
    })
}

/// Watches one file.
pub struct Watcher {
    // Kept alive: dropping it stops the watch.
    _source: Box<dyn Send>,
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
    pub fn new(file: &Path, debounce: Duration, mode: Mode) -> notify::Result<Watcher> {
        let dir: PathBuf = file
            .parent()
            .filter(|dir| !dir.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned();
        let name: OsString = file.file_name().unwrap_or_default().to_owned();
        let (sender, signals) = channel();
        let events = sender.clone();
        let source: Box<dyn Send> = match mode {
            Mode::Events => {
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
                Box::new(watcher)
            }
            Mode::Poll { interval } => {
                Box::new(StatPoller::start(dir.join(&name), interval, events))
            }
        };
        Ok(Watcher {
            _source: source,
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

/// Polls one file's metadata on a thread; stops when dropped.
struct StatPoller {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// What the poller compares: whether the file exists, its length and its
/// modification time.
type Stamp = Option<(u64, Option<std::time::SystemTime>)>;

impl StatPoller {
    fn start(file: PathBuf, interval: Duration, events: Sender<Signal>) -> StatPoller {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = std::sync::Arc::clone(&stop);
        let stamp = move || -> Stamp {
            let metadata = std::fs::metadata(&file).ok()?;
            Some((metadata.len(), metadata.modified().ok()))
        };
        let _ = std::thread::Builder::new()
            .name("plugcheck-poll".into())
            .spawn(move || {
                let mut last = stamp();
                while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                    std::thread::sleep(interval);
                    let now = stamp();
                    if now != last {
                        last = now;
                        if events.send(Signal::FileEvent).is_err() {
                            return;
                        }
                    }
                }
            });
        StatPoller { stop }
    }
}

impl Drop for StatPoller {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
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
        let watcher = Watcher::new(&file, Duration::from_millis(80), Mode::Events).unwrap();
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
        let watcher = Watcher::new(&file, Duration::from_millis(30), Mode::Events).unwrap();
        std::fs::remove_file(&file).unwrap();
        std::fs::write(&file, b"v2").unwrap();
        assert!(matches!(watcher.next(), Wake::Changed { .. }));
    }

    #[test]
    fn polling_sees_a_change_without_events() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("libp.so");
        std::fs::write(&file, b"v1").unwrap();
        let mode = Mode::Poll {
            interval: Duration::from_millis(20),
        };
        let watcher = Watcher::new(&file, Duration::from_millis(30), mode).unwrap();
        // Within the same second, and the same length: the poller must see
        // the modification time to the nanosecond.
        std::thread::sleep(Duration::from_millis(50));
        std::fs::write(&file, b"v2").unwrap();
        assert!(matches!(watcher.next(), Wake::Changed { .. }));
    }

    #[test]
    fn wsl_with_a_windows_drive_polls_and_nothing_else_does() {
        let wsl = Some("5.15.167.4-microsoft-standard-WSL2");
        let reason = polling_needed(wsl, Some("9p")).expect("WSL on 9p polls");
        assert!(reason.contains("WSL") && reason.contains("9p"), "{reason}");
        assert!(polling_needed(wsl, Some("drvfs")).is_some());
        assert_eq!(polling_needed(wsl, Some("ext4")), None);
        assert_eq!(polling_needed(Some("6.1.0-28-amd64"), Some("9p")), None);
        assert_eq!(polling_needed(None, Some("9p")), None);
        assert_eq!(polling_needed(wsl, None), None);
    }
}
