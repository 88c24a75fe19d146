//! Opening a would-be plugin file without trusting it: the file may be a
//! FIFO (opening blocks), a device (reading never ends), or gigabytes of
//! holes (reading it whole fills memory, copying it whole fills the disk).
//! Its type is checked by name before it is opened, it is opened without
//! waiting, its size is bounded, and it is read — for copies and hashes —
//! only where it holds data, through one fixed-size buffer.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::os;

/// The largest file plugcheck opens as a plugin: far above any real plugin
/// (a Rust cdylib with full debug info is some hundred MiB), far below what
/// would hurt the machine.
pub(crate) const MAX_PLUGIN_BYTES: u64 = 1 << 30;

/// Why a file cannot be taken as a plugin before anything reads it.
#[derive(Debug, thiserror::Error)]
pub enum FileProblem {
    #[error("`{}` does not exist: build the plugin first, or check the path", path.display())]
    NotFound { path: PathBuf },
    #[error("`{}` is a directory, not a shared library: pass the library file inside it", path.display())]
    Directory { path: PathBuf },
    #[error(
        "`{}` is {kind}, not a regular file: plugcheck opens only regular files (a pipe or device never ends or blocks the reader); pass the library your build produced",
        path.display()
    )]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "`{}` is {}, larger than the {} a plugin may be: pass the library your build produced (a file this size is not one)",
        path.display(), human_bytes(*len), human_bytes(MAX_PLUGIN_BYTES)
    )]
    TooLarge { path: PathBuf, len: u64 },
    #[error("cannot read `{}`: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl FileProblem {
    /// The file it is about (a host renames a shadow copy to its build).
    pub fn path_mut(&mut self) -> &mut PathBuf {
        match self {
            FileProblem::NotFound { path }
            | FileProblem::Directory { path }
            | FileProblem::NotRegular { path, .. }
            | FileProblem::TooLarge { path, .. }
            | FileProblem::Unreadable { path, .. } => path,
        }
    }

    /// What the file was found to be, for the report's detail.
    pub fn file_format(&self) -> Option<String> {
        match self {
            FileProblem::Directory { .. } => Some("directory".into()),
            FileProblem::NotRegular { kind, .. } => Some((*kind).to_owned()),
            FileProblem::TooLarge { len, .. } => Some(format!("file of {}", human_bytes(*len))),
            FileProblem::NotFound { .. } | FileProblem::Unreadable { .. } => None,
        }
    }
}

/// The SHA-256 of the plugin file at `path`, as `sha256sum` prints it,
/// read as every plugin file is (refused by name if it is not a regular
/// file, opened without waiting, bounded).
pub fn sha256(path: &Path) -> Result<String, FileProblem> {
    open(path)?
        .sha256()
        .map_err(|source| FileProblem::Unreadable {
            path: path.to_owned(),
            source,
        })
}

/// A build as a run found it: its SHA-256, and what its file looked like
/// then, to tell at the run's end whether every worker loaded those bytes.
#[derive(Debug, Clone)]
pub(crate) struct Fingerprint {
    pub sha256: String,
    version: [i128; 4],
}

impl Fingerprint {
    /// The file at `path`, hashed (see [`sha256`]).
    pub(crate) fn of(path: &Path) -> Option<Fingerprint> {
        open(path).ok()?.fingerprint()
    }

    /// Whether the file at `path` is still the one hashed: not rebuilt,
    /// written or replaced (see [`os::file_version`] for what is seen).
    pub(crate) fn still_at(&self, path: &Path) -> bool {
        std::fs::metadata(path).is_ok_and(|metadata| os::file_version(&metadata) == self.version)
    }
}

/// A plugin file, open for reading, known to be regular and bounded.
#[derive(Debug)]
pub(crate) struct PluginFile {
    pub file: File,
    pub len: u64,
    /// What changes when the file is written or replaced
    /// ([`os::file_version`]), as opened.
    pub version: [i128; 4],
}

/// Checks `path` by name (exists, is a regular file, not too large), then
/// opens it without waiting and checks the opened file again, so a file
/// swapped in between is caught too.
pub(crate) fn open(path: &Path) -> Result<PluginFile, FileProblem> {
    let unreadable = |source| FileProblem::Unreadable {
        path: path.to_owned(),
        source,
    };
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(FileProblem::NotFound {
                path: path.to_owned(),
            });
        }
        Err(error) => return Err(unreadable(error)),
    };
    check_type(path, &metadata)?;
    let file = os::open_without_waiting(path).map_err(unreadable)?;
    let metadata = file.metadata().map_err(unreadable)?;
    check_type(path, &metadata)?;
    Ok(PluginFile {
        file,
        len: metadata.len(),
        version: os::file_version(&metadata),
    })
}

fn check_type(path: &Path, metadata: &std::fs::Metadata) -> Result<(), FileProblem> {
    let file_type = metadata.file_type();
    if file_type.is_dir() {
        return Err(FileProblem::Directory {
            path: path.to_owned(),
        });
    }
    if !file_type.is_file() {
        return Err(FileProblem::NotRegular {
            path: path.to_owned(),
            kind: os::special_file_kind(&file_type).unwrap_or("not a regular file"),
        });
    }
    if metadata.len() > MAX_PLUGIN_BYTES {
        return Err(FileProblem::TooLarge {
            path: path.to_owned(),
            len: metadata.len(),
        });
    }
    Ok(())
}

impl PluginFile {
    /// Hashes the file's content and, with `copy_to`, writes an identical
    /// copy there, in one pass over the data: holes stay holes (they are
    /// neither read nor written), and memory use is one buffer whatever the
    /// size. The hash covers the length and every data range, so two files
    /// with the same bytes where it counts hash alike. XXH3, not SipHash:
    /// every reload hashes its build, and SipHash over a 2 MiB DLL in a
    /// debug build took 40 ms of a 42 ms reload under Wine.
    pub(crate) fn hash_and_copy(&mut self, mut copy_to: Option<&mut File>) -> std::io::Result<u64> {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(&self.len.to_le_bytes());
        let mut buffer = vec![0u8; 256 * 1024];
        for (start, end) in os::data_ranges(&self.file, self.len) {
            hasher.update(&start.to_le_bytes());
            self.file.seek(SeekFrom::Start(start))?;
            if let Some(target) = copy_to.as_deref_mut() {
                target.seek(SeekFrom::Start(start))?;
            }
            let mut left = end - start;
            while left > 0 {
                let want = buffer
                    .len()
                    .min(usize::try_from(left).unwrap_or(usize::MAX));
                let read = self.file.read(&mut buffer[..want])?;
                if read == 0 {
                    // The file shrank while we read it: hash what is there.
                    break;
                }
                hasher.update(&buffer[..read]);
                if let Some(target) = copy_to.as_deref_mut() {
                    target.write_all(&buffer[..read])?;
                }
                left -= read as u64;
            }
        }
        if let Some(target) = copy_to {
            // Trailing holes: the copy gets the whole length.
            target.set_len(self.len)?;
        }
        Ok(hasher.digest())
    }

    /// The SHA-256 of the file's bytes, as `sha256sum` prints it: what a
    /// report names the judged build by, and what an application pins a
    /// plugin to. Every byte is read, holes too: the digest must not hang
    /// on the filesystem telling its holes right (some report holes in a
    /// file just written), and a file is at most [`MAX_PLUGIN_BYTES`].
    pub(crate) fn sha256(&mut self) -> std::io::Result<String> {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        let mut buffer = vec![0u8; 256 * 1024];
        self.file.seek(SeekFrom::Start(0))?;
        let mut left = self.len;
        while left > 0 {
            let want = buffer
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let read = match self.file.read(&mut buffer[..want]) {
                Ok(0) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the file shrank while it was hashed",
                    ));
                }
                Ok(read) => read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            hasher.update(&buffer[..read]);
            left -= read as u64;
        }
        Ok(hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect())
    }

    fn fingerprint(mut self) -> Option<Fingerprint> {
        Some(Fingerprint {
            sha256: self.sha256().ok()?,
            version: self.version,
        })
    }

    /// The first `max` bytes (fewer if the file is shorter).
    pub(crate) fn head(&mut self, max: usize) -> std::io::Result<Vec<u8>> {
        let mut head = Vec::with_capacity(max.min(64 * 1024));
        self.file.seek(SeekFrom::Start(0))?;
        (&self.file).take(max as u64).read_to_end(&mut head)?;
        Ok(head)
    }
}

/// `2.0 GiB`, `512 KiB`, `17 bytes`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            return format!("{:.1} {unit}", bytes as f64 / size as f64);
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A build rewritten or replaced is not the build hashed; one that only
    /// gained a link (as a Go-native run links its plugin) still is.
    #[test]
    fn a_fingerprint_tells_a_rebuilt_file_from_a_linked_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plugin.so");
        std::fs::write(&path, b"the bytes judged").unwrap();
        let build = Fingerprint::of(&path).unwrap();
        assert_eq!(build.sha256, sha256(&path).unwrap());
        assert!(build.still_at(&path));
        std::fs::hard_link(&path, dir.path().join("link.so")).unwrap();
        assert!(build.still_at(&path));
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::write(&path, b"the bytes loaded").unwrap();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(!build.still_at(&path));
        let other = dir.path().join("other.so");
        std::fs::write(&other, b"the bytes judged").unwrap();
        let moved = Fingerprint::of(&other).unwrap();
        std::fs::write(dir.path().join("next.so"), b"the bytes judged").unwrap();
        std::fs::rename(dir.path().join("next.so"), &other).unwrap();
        assert!(!moved.still_at(&other), "a replaced file is another file");
    }

    /// The digest `sha256sum` prints: holes read as zeros, so a sparse
    /// file and its dense twin agree, and a known vector holds.
    #[test]
    fn the_sha256_is_sha256sum_s_holes_and_all() {
        use sha2::Digest;
        let dir = tempfile::tempdir().unwrap();
        let abc = dir.path().join("abc.so");
        std::fs::write(&abc, b"abc").unwrap();
        assert_eq!(
            sha256(&abc).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let sparse = dir.path().join("sparse.so");
        {
            let mut file = File::create(&sparse).unwrap();
            file.seek(SeekFrom::Start(700_000)).unwrap();
            file.write_all(b"middle").unwrap();
            file.set_len(3 << 20).unwrap();
        }
        let mut dense = vec![0u8; 3 << 20];
        dense[700_000..700_006].copy_from_slice(b"middle");
        let expected: String = sha2::Sha256::digest(&dense)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        assert_eq!(sha256(&sparse).unwrap(), expected);
        let empty = dir.path().join("empty.so");
        std::fs::write(&empty, b"").unwrap();
        assert_eq!(
            sha256(&empty).unwrap(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(matches!(
            sha256(dir.path()),
            Err(FileProblem::Directory { .. })
        ));
    }

    #[test]
    fn sparse_files_are_copied_with_their_holes_and_hashed_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let original = dir.path().join("padded.so");
        {
            let mut file = File::create(&original).unwrap();
            file.write_all(b"head").unwrap();
            file.seek(SeekFrom::Start(32 << 20)).unwrap();
            file.write_all(b"tail").unwrap();
            file.set_len(64 << 20).unwrap();
        }
        let mut plugin = open(&original).unwrap();
        assert_eq!(plugin.len, 64 << 20);
        let copy_path = dir.path().join("copy.so");
        let mut copy = File::create(&copy_path).unwrap();
        let hash = plugin.hash_and_copy(Some(&mut copy)).unwrap();
        drop(copy);
        let copied = std::fs::metadata(&copy_path).unwrap();
        assert_eq!(copied.len(), 64 << 20);
        let mut copy = open(&copy_path).unwrap();
        assert_eq!(copy.hash_and_copy(None).unwrap(), hash);
        assert_eq!(copy.head(4).unwrap(), b"head");
        std::fs::write(&copy_path, b"head").unwrap();
        assert_ne!(open(&copy_path).unwrap().hash_and_copy(None).unwrap(), hash);
    }

    #[test]
    fn files_over_the_bound_and_directories_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let huge = dir.path().join("huge.so");
        File::create(&huge)
            .unwrap()
            .set_len(MAX_PLUGIN_BYTES + 1)
            .unwrap();
        let error = open(&huge).unwrap_err();
        assert!(matches!(error, FileProblem::TooLarge { .. }), "{error}");
        assert!(error.to_string().contains("1.0 GiB"), "{error}");
        assert!(matches!(
            open(dir.path()).unwrap_err(),
            FileProblem::Directory { .. }
        ));
        assert!(matches!(
            open(&dir.path().join("nope")).unwrap_err(),
            FileProblem::NotFound { .. }
        ));
    }

    /// Linux: a FIFO and a device made here, and a sparse file (the
    /// filesystems there keep holes).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_fifo_and_a_device_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("plugin.so");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates the node.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let error = open(&fifo).unwrap_err();
        assert!(error.to_string().contains("a FIFO"), "{error}");
        let error = open(Path::new("/dev/zero")).unwrap_err();
        assert!(error.to_string().contains("a character device"), "{error}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_sparse_copy_allocates_only_the_data() {
        use std::io::{Seek, SeekFrom, Write};
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let original = dir.path().join("padded.so");
        let mut file = std::fs::File::create(&original).unwrap();
        file.write_all(b"data").unwrap();
        file.seek(SeekFrom::Start(256 << 20)).unwrap();
        file.write_all(b"more").unwrap();
        file.set_len(1 << 30).unwrap();
        drop(file);
        let copy_path = dir.path().join("copy.so");
        let mut copy = std::fs::File::create(&copy_path).unwrap();
        let mut plugin = open(&original).unwrap();
        plugin.hash_and_copy(Some(&mut copy)).unwrap();
        let copied = std::fs::metadata(&copy_path).unwrap();
        assert_eq!(copied.len(), 1 << 30);
        assert!(
            copied.blocks() * 512 < 16 << 20,
            "{} blocks",
            copied.blocks()
        );
    }
}
