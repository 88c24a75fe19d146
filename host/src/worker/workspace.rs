//! Directories a run works in — its scratch, and each worker's working
//! directory — taken from a pool of reusable ones instead of made and
//! removed every time.
//!
//! Removing a directory is the dearest file operation of a short run: on
//! this project's Linux machines (ext4) an `rmdir` costs 100–260 µs, while
//! creating and unlinking a small file costs 5–15 µs (measured in the issue
//! that introduced this module: a check over one plugin made and removed
//! two directories, 0.45–0.8 ms of its 3.5 ms). A pooled directory is made
//! once, locked while one process uses it, and emptied when it is given
//! back — so a run leaves nothing behind but empty directories in the
//! cache, and never finds another run's files: whatever a killed run left
//! is emptied by the next process that takes the directory, before use.
//!
//! The pool lives in the user's cache (`plugcheck/workspaces`, or
//! `$PLUGCHECK_CACHE_DIR/workspaces`). Where there is no such directory, or
//! it cannot be used, a run works in temporary directories as before.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// How many pooled directories one process looks at before it works in a
/// temporary directory instead: more than any machine runs workers at once.
const MAX_SLOTS: usize = 256;

/// Where plugcheck keeps what outlives a run: built Go workers, the fuzz
/// series, the workspace pool. `$PLUGCHECK_CACHE_DIR` when set. Always
/// absolute: workers run in directories of their own, where a relative
/// path (`PLUGCHECK_CACHE_DIR=.cache` in CI) would name something else.
pub(crate) fn cache_root() -> PathBuf {
    let root = explicit_cache_root().unwrap_or_else(|| {
        crate::os::user_dir(crate::os::UserDir::Cache)
            .unwrap_or_else(std::env::temp_dir)
            .join("plugcheck")
    });
    absolute(root)
}

fn explicit_cache_root() -> Option<PathBuf> {
    std::env::var_os("PLUGCHECK_CACHE_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
}

/// `path` made absolute against the current directory (as it is when the
/// run starts); as it is when that cannot be read.
fn absolute(path: PathBuf) -> PathBuf {
    std::path::absolute(&path).unwrap_or(path)
}

/// The pool's directory: only in a real cache directory. In the
/// temporary directory instead, pooled directories would be left there,
/// where a run promises to leave nothing.
fn pool_root() -> Option<PathBuf> {
    let cache = match explicit_cache_root() {
        Some(root) => root,
        None => crate::os::user_dir(crate::os::UserDir::Cache)?.join("plugcheck"),
    };
    // Paths in the run's settings travel to the workers as text.
    Some(absolute(cache.join("workspaces"))).filter(|root| root.to_str().is_some())
}

/// The workspaces this process holds, for an interrupt to empty after it
/// killed the workers (no `Drop` runs then): each path, and the identity
/// of the pool directory taken there (none: a temporary directory).
static IN_USE: Mutex<Vec<(PathBuf, Option<Identity>)>> = Mutex::new(Vec::new());

fn in_use() -> std::sync::MutexGuard<'static, Vec<(PathBuf, Option<Identity>)>> {
    IN_USE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An empty directory this process alone works in until it is dropped,
/// which empties it (pooled) or removes it (temporary).
#[derive(Debug)]
pub struct Workspace {
    path: PathBuf,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// A pool directory; the lock on its lock file is ours while this is
    /// held (released when the file closes, also when the process dies).
    Pooled { _lock: File, taken: Identity },
    /// Removed when dropped.
    Temporary { _dir: tempfile::TempDir },
}

impl Workspace {
    /// An empty directory from the pool, or else a new temporary one named
    /// `prefix…` in the system's temporary directory.
    pub fn take(prefix: &str) -> io::Result<Workspace> {
        let workspace = match pool_root().and_then(|root| take_pooled(&root)) {
            Some(workspace) => workspace,
            None => {
                let dir = tempfile::Builder::new().prefix(prefix).tempdir()?;
                Workspace {
                    path: dir.path().to_owned(),
                    kind: Kind::Temporary { _dir: dir },
                }
            }
        };
        let taken = match workspace.kind {
            Kind::Pooled { taken, .. } => Some(taken),
            Kind::Temporary { .. } => None,
        };
        in_use().push((workspace.path.clone(), taken));
        Ok(workspace)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        // Emptied before the lock goes with the file: the next taker finds
        // it empty. One that cannot be emptied (a file still held open on
        // Windows, a plugin's unreadable directory) is emptied, or skipped,
        // by its next taker.
        if let Kind::Pooled { taken, .. } = self.kind {
            give_back(&self.path, taken);
        }
        in_use().retain(|(path, _)| *path != self.path);
    }
}

/// Empties, or removes, every workspace this process holds: for an
/// interrupted run, once its workers are killed, right before it exits.
pub(crate) fn clear_all_in_use() {
    for (path, taken) in in_use().iter() {
        // A temporary one is the whole directory (a link in its place is
        // removed, not followed); a pooled one keeps its directory.
        match taken {
            Some(taken) => give_back(path, *taken),
            None => {
                let _ = std::fs::remove_dir_all(path);
            }
        }
    }
}

/// Which directory a path named when it was taken (`os::directory_identity`):
/// a plugin may rename its working directory away and put a link to
/// another directory (the user's home) in its place, which must never be
/// emptied in its stead.
type Identity = (u64, u64);

/// The identity of the real directory at `path`; none for a link, a file,
/// or nothing.
fn identity(path: &Path) -> Option<Identity> {
    let metadata = std::fs::symlink_metadata(path).ok()?;
    metadata
        .is_dir()
        .then(|| crate::os::directory_identity(&metadata))
}

/// Empties the pool directory taken at `path`, if it is still the one
/// taken; whatever else is there now (a link, a file, another directory)
/// is left to the next taker's `prepare`, which removes it without
/// following it.
fn give_back(path: &Path, taken: Identity) {
    if identity(path) == Some(taken) {
        let _ = empty(path);
    }
}

/// The first pooled directory no other process holds, locked and emptied:
/// the pool stays as small as the most workers that ever ran at once, and
/// a busy directory costs a look (an open and a lock refused, ~5 µs).
fn take_pooled(root: &Path) -> Option<Workspace> {
    make_private_dir(root).ok()?;
    for slot in 0..MAX_SLOTS {
        let Ok(lock) = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join(format!("{slot}.lock")))
        else {
            // No lock file can be made here: the pool is not usable.
            return None;
        };
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(_)) => return None,
        }
        let path = root.join(slot.to_string());
        if prepare(&path).is_ok()
            && let Some(taken) = identity(&path)
        {
            return Some(Workspace {
                path,
                kind: Kind::Pooled { _lock: lock, taken },
            });
        }
    }
    None
}

/// Makes `path` an empty directory of ours: made if missing; anything else
/// in its place (a file, a symbolic link a plugin put there) removed first;
/// whatever an earlier user left in it removed.
fn prepare(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => empty(path),
        Ok(_) => {
            std::fs::remove_file(path)?;
            make_private_dir(path)
        }
        Err(error) if error.kind() == io::ErrorKind::NotFound => make_private_dir(path),
        Err(error) => Err(error),
    }
}

fn make_private_dir(path: &Path) -> io::Result<()> {
    crate::os::private_dir_builder().create(path)
}

/// Removes everything in `dir`, never following a symbolic link out of it
/// (`remove_dir_all` removes a link, not what it points to). A plugin may
/// have taken its own permissions away: they are given back once.
fn empty(dir: &Path) -> io::Result<()> {
    match remove_entries(dir) {
        Ok(()) => Ok(()),
        Err(_) => {
            restore_permissions(dir);
            remove_entries(dir)
        }
    }
}

fn remove_entries(dir: &Path) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            std::fs::remove_dir_all(entry.path())?;
        } else {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Makes `dir` and the directories under it ours to list and change again.
fn restore_permissions(dir: &Path) {
    crate::os::give_owner_access(dir);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                restore_permissions(&entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pooled_directory_is_locked_while_held_and_empty_when_taken_again() {
        let root = tempfile::tempdir().unwrap();
        let first = take_pooled(root.path()).unwrap();
        std::fs::write(first.path().join("left-by-a-plugin"), b"x").unwrap();
        std::fs::create_dir_all(first.path().join("deep/er")).unwrap();
        // Held: another taker gets another directory.
        let second = take_pooled(root.path()).unwrap();
        assert_ne!(first.path(), second.path());
        let held = first.path().to_owned();
        drop(first);
        assert_eq!(std::fs::read_dir(&held).unwrap().count(), 0);
        // Given back: taken again, and empty.
        let again = take_pooled(root.path()).unwrap();
        assert_eq!(again.path(), held);
        drop(second);
    }

    #[test]
    fn what_a_killed_run_left_is_emptied_before_use_and_links_are_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), b"keep").unwrap();
        let slot = root.path().join("0");
        std::fs::create_dir_all(&slot).unwrap();
        std::fs::write(slot.join("stale"), b"x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(outside.path(), slot.join("link")).unwrap();
        let taken = take_pooled(root.path()).unwrap();
        assert_eq!(taken.path(), slot);
        assert_eq!(std::fs::read_dir(&slot).unwrap().count(), 0);
        assert!(outside.path().join("precious").exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_link_in_place_of_the_directory_is_replaced_not_followed() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("precious"), b"keep").unwrap();
        let slot = root.path().join("0");
        std::os::unix::fs::symlink(outside.path(), &slot).unwrap();
        let taken = take_pooled(root.path()).unwrap();
        assert_eq!(taken.path(), slot);
        assert!(std::fs::symlink_metadata(&slot).unwrap().is_dir());
        assert!(outside.path().join("precious").exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_renamed_away_and_replaced_by_a_link_is_not_emptied_through_it() {
        let root = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("precious"), b"keep").unwrap();
        let taken = take_pooled(root.path()).unwrap();
        let path = taken.path().to_owned();
        // What a plugin can do to its working directory while it runs.
        std::fs::rename(&path, root.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(home.path(), &path).unwrap();
        drop(taken);
        assert!(home.path().join("precious").exists());
        // The next taker removes the link, not what it points to.
        let again = take_pooled(root.path()).unwrap();
        assert_eq!(again.path(), path);
        assert!(std::fs::symlink_metadata(&path).unwrap().is_dir());
        assert!(home.path().join("precious").exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_a_plugin_locked_itself_out_of_is_still_emptied() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let taken = take_pooled(root.path()).unwrap();
        let sealed = taken.path().join("sealed");
        std::fs::create_dir(&sealed).unwrap();
        std::fs::write(sealed.join("inside"), b"x").unwrap();
        std::fs::set_permissions(&sealed, std::fs::Permissions::from_mode(0o000)).unwrap();
        std::fs::set_permissions(taken.path(), std::fs::Permissions::from_mode(0o500)).unwrap();
        let path = taken.path().to_owned();
        drop(taken);
        assert_eq!(std::fs::read_dir(&path).unwrap().count(), 0);
    }
}
