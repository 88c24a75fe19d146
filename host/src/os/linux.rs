//! Linux half of the OS seam: `dlopen` flags, `/proc`, process groups and a
//! child subreaper.

use std::collections::HashSet;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

#[path = "linux/channel.rs"]
mod channel;
#[path = "linux/confine.rs"]
mod confine;
#[path = "linux/crash.rs"]
mod crash;
#[path = "linux/zygote.rs"]
mod zygote;

#[cfg(test)]
pub(super) use channel::channel_pair;
pub(super) use channel::join_channel;
pub use channel::{ChannelStream, PendingChannel};

pub(super) use crash::report_crashes_to;

use super::OpenFailure;
use super::{OsError, ProcessInfo};
use crate::os::Termination;

/// The object format this platform's loader takes.
pub(super) const NATIVE_FORMAT: object::BinaryFormat = object::BinaryFormat::Elf;

/// What people call that format, for diagnoses.
pub(super) const NATIVE_FORMAT_NAME: &str = "ELF shared objects";

/// The platform this is.
pub(super) const HOST: super::Platform = super::Platform::Linux;

/// Where cargo writes a `cdylib` crate's library, for advice.
pub(super) const CDYLIB_EXAMPLE: &str = "target/release/libNAME.so";

/// A shared library's file name here, for advice.
pub(super) const SHARED_LIBRARY_EXAMPLE: &str = "libNAME.so";

/// Whether the harness must keep a library with a Go runtime loaded itself.
/// No: Go links its ELF c-shared libraries with `-z nodelete`, so the loader
/// already keeps them (and `dlclose` is harmless).
pub(super) const PIN_GO_RUNTIME: bool = false;
pub(super) const KILL_FINISHED_WORKER_AT_ONCE: bool = true;
pub(super) const GO_NATIVE_PLUGINS: bool = true;

/// Opens a library with immediate binding (`RTLD_NOW | RTLD_LOCAL`), so an
/// unresolved symbol fails here rather than in the middle of a call.
///
/// # Safety
/// Loading runs the library's constructors, which may do anything: only
/// the worker process calls this.
pub(super) unsafe fn open_library(path: &Path) -> Result<libloading::Library, OpenFailure> {
    use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
    // Its initialisers run in this process, and may start processes.
    expect_orphans();
    // SAFETY: the caller accepts that constructors run (see above).
    match unsafe { Library::open(Some(path.as_os_str()), RTLD_NOW | RTLD_LOCAL) } {
        Ok(library) => Ok(library.into()),
        Err(error) => Err(classify_dlerror(path, &error)),
    }
}

/// Whether the library at `path` is still mapped in this process, asked
/// with `dlopen(RTLD_NOLOAD)`, which never loads anything.
pub(super) fn library_is_resident(path: &Path) -> bool {
    use libc::RTLD_NOLOAD;
    use libloading::os::unix::{Library, RTLD_NOW};
    // SAFETY: with RTLD_NOLOAD nothing is loaded and no constructor runs;
    // the handle only bumps the reference count, and dropping it gives that
    // reference back.
    unsafe { Library::open(Some(path.as_os_str()), RTLD_NOW | RTLD_NOLOAD) }.is_ok()
}

/// Turns glibc's `dlerror` text into a diagnosis: the message stays as the
/// OS error; an unresolved symbol or a missing dependency is named.
fn classify_dlerror(path: &Path, error: &libloading::Error) -> OpenFailure {
    let error = loader_error(error);
    let message = &error.message;
    let unresolved_symbol = message.split_once("undefined symbol: ").map(|(_, rest)| {
        rest.split([',', ' ', '\n'])
            .next()
            .unwrap_or(rest)
            .to_owned()
    });
    let missing_dependency = message
        .split_once(": cannot open shared object file")
        .map(|(before, _)| before.rsplit(": ").next().unwrap_or(before).to_owned())
        .filter(|name| Path::new(name) != path);
    OpenFailure {
        error,
        unresolved_symbol,
        missing_dependency,
    }
}

/// A libloading error as an [`OsError`]. libloading's Display is generic
/// ("dlopen failed"): `dlerror`'s text is in the source error. dlopen sets
/// no error code.
pub(super) fn loader_error(error: &libloading::Error) -> OsError {
    OsError {
        code: None,
        name: None,
        message: std::error::Error::source(error)
            .map(ToString::to_string)
            .unwrap_or_else(|| error.to_string()),
    }
}

/// What a file that is neither a regular file nor a directory is, by name:
/// such a file is never opened as a plugin (a FIFO blocks the opener, a
/// device never ends).
pub(super) fn special_file_kind(file_type: &std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if file_type.is_char_device() {
        Some("a character device")
    } else if file_type.is_block_device() {
        Some("a block device")
    } else if file_type.is_socket() {
        Some("a socket")
    } else {
        None
    }
}

/// Opens a file for reading without ever waiting: a FIFO swapped in after
/// the type check opens at once (`O_NONBLOCK`) instead of blocking until a
/// writer comes, and a terminal does not become ours (`O_NOCTTY`).
pub(super) fn open_without_waiting(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

/// The ranges of `file` (of `len` bytes) that hold data, holes left out,
/// asked with `SEEK_DATA`/`SEEK_HOLE`: a file padded with gigabytes of
/// holes is copied and hashed at the cost of its data. A filesystem that
/// cannot tell gives one range, the whole file.
pub(super) fn data_ranges(file: &std::fs::File, len: u64) -> Vec<(u64, u64)> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    let mut ranges = Vec::new();
    let mut offset: i64 = 0;
    let end = i64::try_from(len).unwrap_or(i64::MAX);
    while offset < end {
        // SAFETY: lseek on a descriptor we own; it only moves the offset.
        let data = unsafe { libc::lseek(fd, offset, libc::SEEK_DATA) };
        if data < 0 {
            // ENXIO: no data after `offset`; anything else: no answer.
            let no_more = std::io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO);
            if !no_more && ranges.is_empty() && offset == 0 {
                return vec![(0, len)];
            }
            break;
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        let hole = if hole < 0 { end } else { hole.min(end) };
        if hole <= data {
            break;
        }
        ranges.push((data as u64, hole as u64));
        offset = hole;
    }
    ranges
}

/// Copies bytes at `address` of this process into `buffer` through the
/// kernel (`process_vm_readv` on ourselves), which answers EFAULT where a
/// plain read would crash. Returns how many bytes were readable (0: none).
pub(super) fn read_own_memory(address: usize, buffer: &mut [u8]) -> usize {
    let local = libc::iovec {
        iov_base: buffer.as_mut_ptr().cast(),
        iov_len: buffer.len(),
    };
    let remote = libc::iovec {
        iov_base: address as *mut libc::c_void,
        iov_len: buffer.len(),
    };
    // SAFETY: `local` is our own writable buffer of its length; the kernel
    // checks `remote` and fails (EFAULT) instead of faulting.
    let read = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    usize::try_from(read).unwrap_or(0)
}

/// A pipe for one of a worker's output streams, holding 1 MiB instead of
/// 64 KiB, so a plugin that prints a lot blocks less often and the capture
/// thread wakes less often per byte (a refused resize leaves it as it is).
/// The end of the stream is the pipe's end: `_ended` is not needed here.
pub(super) fn worker_output(
    _ended: &std::sync::Arc<AtomicBool>,
) -> std::io::Result<super::WorkerOutput> {
    use std::os::fd::AsRawFd;
    let (reader, writer) = std::io::pipe()?;
    // SAFETY: F_SETPIPE_SZ on a pipe descriptor we own; it only resizes
    // the kernel buffer.
    unsafe {
        libc::fcntl(reader.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
    }
    Ok(super::WorkerOutput {
        child: std::os::fd::OwnedFd::from(writer).into(),
        reader: Box::new(reader),
    })
}

/// The kernel's release string (`uname -r`): WSL2's ends in
/// `-microsoft-standard-WSL2`.
/// What runs this process: `WSL2` under Microsoft's Linux kernel,
/// otherwise `native`.
/// The XDG base directories: `$XDG_DATA_HOME` or `~/.local/share`,
/// `$XDG_CACHE_HOME` or `~/.cache`.
pub(super) fn user_dir(kind: super::UserDir) -> Option<std::path::PathBuf> {
    let (variable, under_home) = match kind {
        super::UserDir::Data => ("XDG_DATA_HOME", ".local/share"),
        super::UserDir::Cache => ("XDG_CACHE_HOME", ".cache"),
    };
    std::env::var_os(variable)
        .filter(|dir| !dir.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(under_home)))
}

pub(super) fn runtime() -> String {
    match kernel_release() {
        Some(release) if release.to_ascii_lowercase().contains("microsoft") => "WSL2".into(),
        _ => "native".into(),
    }
}

/// From `uname`: one system call, where reading
/// `/proc/sys/kernel/osrelease` takes five, on the way to every run.
pub(super) fn kernel_release() -> Option<String> {
    let name = nix::sys::utsname::uname().ok()?;
    Some(name.release().to_string_lossy().trim().to_owned())
}

pub(super) fn real_path(path: &Path) -> std::io::Result<std::path::PathBuf> {
    std::fs::canonicalize(path)
}

/// The type of the filesystem `path` lives on (`ext4`, `9p`, `drvfs`),
/// from the mount table.
pub(super) fn filesystem_type(path: &Path) -> Option<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    mount_filesystem(&mountinfo, &path)
}

/// The filesystem type of the longest mount point in `mountinfo` that
/// contains `path`. A line is `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS
/// [OPTIONAL…] - FSTYPE SOURCE SUPER`; spaces in paths are `\040`.
fn mount_filesystem(mountinfo: &str, path: &Path) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    for line in mountinfo.lines() {
        let mut fields = line.split(' ');
        let Some(mount_point) = fields.nth(4) else {
            continue;
        };
        let mount_point = mount_point.replace("\\040", " ");
        let Some((_, after)) = line.split_once(" - ") else {
            continue;
        };
        let Some(filesystem) = after.split(' ').next() else {
            continue;
        };
        if path.starts_with(&mount_point)
            && best
                .as_ref()
                .is_none_or(|(length, _)| mount_point.len() >= *length)
        {
            best = Some((mount_point.len(), filesystem.to_owned()));
        }
    }
    best.map(|(_, filesystem)| filesystem)
}

/// The program a process runs now (after any `exec`), if the OS says.
pub(super) fn process_image(pid: u32) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// Permissions for files others read (reports): `rw-r--r--`.
pub(super) fn shared_file_permissions() -> Option<std::fs::Permissions> {
    use std::os::unix::fs::PermissionsExt;
    Some(std::fs::Permissions::from_mode(0o644))
}

/// Flushes the C library's stdio buffers, so what a plugin printed with
/// `printf` reaches the pipe before the case ends.
pub(super) fn flush_c_stdio() {
    // SAFETY: fflush(NULL) flushes every open output stream; it takes the
    // stdio locks itself.
    unsafe {
        libc::fflush(std::ptr::null_mut());
    }
}

/// Swaps the file at `temporary` with the regular file at `path`
/// (`renameat2(RENAME_EXCHANGE)`); false when there is none to swap with
/// or the filesystem cannot.
pub(super) fn swap_into_place(temporary: &Path, path: &Path) -> bool {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    std::fs::symlink_metadata(path).is_ok_and(|meta| meta.is_file())
        && renameat2(
            AT_FDCWD,
            temporary,
            AT_FDCWD,
            path,
            RenameFlags::RENAME_EXCHANGE,
        )
        .is_ok()
}

/// Decodes an exit status: a signal by name, or the exit code.
pub(super) fn decode_exit(status: ExitStatus) -> Termination {
    if let Some(number) = status.signal() {
        let signal = Signal::try_from(number)
            .map(|signal| signal.as_str().to_owned())
            .unwrap_or_else(|_| format!("signal {number}"));
        return Termination::Signaled {
            signal,
            number,
            core_dumped: status.core_dumped(),
        };
    }
    Termination::Exited {
        code: status.code().map(i64::from).unwrap_or(-1),
    }
}

/// Puts the worker in a process group of its own, so the whole group can
/// be killed at once.
pub(super) fn isolate_worker(command: &mut Command) {
    command.process_group(0);
}

/// A started worker: spawned as a program, or forked by the zygote. Either
/// way it is our child, waited for with `waitpid`.
#[derive(Debug)]
pub struct WorkerProcess {
    pid: u32,
    start: Start,
    /// For a worker in a PID namespace of its own, `pid` is the
    /// namespace's supervisor, and this the read end of the pipe it hands
    /// the worker's own wait status through.
    relay: Option<std::os::fd::OwnedFd>,
}

#[derive(Debug)]
enum Start {
    Spawned(Child),
    /// Forked by the zygote; its status once reaped (the pid may be reused
    /// after that, so it is never signalled or waited for again).
    Forked(Option<ExitStatus>),
}

impl WorkerProcess {
    /// The process to wait for and kill: the worker, or the supervisor of
    /// its namespace (killing it kills everything in the namespace).
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// Whether every process the worker starts ends with it: so for a
    /// worker in a PID namespace of its own, as the kernel kills what is
    /// left in a namespace when its first process (the supervisor) dies,
    /// and nothing in it can be re-parented out of it. A worker outside
    /// one can leave orphans, which come to this process (a subreaper).
    pub fn holds_its_descendants(&self) -> bool {
        self.relay.is_some()
    }

    /// The worker process itself, as this process names it: what runs the
    /// plugin (and what an `exec` replaces). None when a supervised worker
    /// is gone already (its supervisor, which runs plugcheck, is about to
    /// hand over its status): the supervisor is never the worker's image.
    pub fn program_id(&self) -> Option<u32> {
        if self.relay.is_none() {
            return Some(self.pid);
        }
        // The supervisor's only child.
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", self.pid))
            .ok()
            .and_then(|children| children.split_whitespace().next()?.parse().ok())
    }

    /// The worker's own status, as its supervisor handed it over, in place
    /// of the supervisor's (which is only ours: 0, or SIGKILL when we
    /// killed the namespace).
    fn relayed(relay: Option<&std::os::fd::OwnedFd>, status: ExitStatus) -> ExitStatus {
        let Some(relay) = relay else {
            return status;
        };
        // The supervisor has exited: its 4 bytes are in the pipe, or
        // nothing is (it was killed).
        let mut bytes = [0u8; 4];
        match nix::unistd::read(relay, &mut bytes) {
            Ok(4) => ExitStatus::from_raw(i32::from_le_bytes(bytes)),
            _ => status,
        }
    }

    pub fn kill(&mut self) -> std::io::Result<()> {
        match &mut self.start {
            Start::Spawned(child) => child.kill(),
            Start::Forked(Some(_)) => Ok(()),
            Start::Forked(None) => {
                kill(Pid::from_raw(self.pid as i32), Signal::SIGKILL).map_err(std::io::Error::from)
            }
        }
    }

    pub fn wait(&mut self) -> std::io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.reap(0)? {
                return Ok(status);
            }
        }
    }

    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        self.reap(libc::WNOHANG)
    }

    fn reap(&mut self, flags: libc::c_int) -> std::io::Result<Option<ExitStatus>> {
        let pid = self.pid as libc::pid_t;
        match &mut self.start {
            Start::Spawned(child) if flags == 0 => child.wait().map(Some),
            Start::Spawned(child) => child.try_wait(),
            Start::Forked(Some(status)) => Ok(Some(*status)),
            Start::Forked(reaped) => {
                let mut status = 0;
                // SAFETY: waitpid writes the status into a local integer.
                match unsafe { libc::waitpid(pid, &mut status, flags) } {
                    0 => Ok(None),
                    -1 => {
                        let error = std::io::Error::last_os_error();
                        if error.kind() == std::io::ErrorKind::Interrupted {
                            Ok(None)
                        } else {
                            Err(error)
                        }
                    }
                    _ => {
                        let status =
                            Self::relayed(self.relay.as_ref(), ExitStatus::from_raw(status));
                        *reaped = Some(status);
                        Ok(Some(status))
                    }
                }
            }
        }
    }
}

/// Forks the worker from the zygote when it serves the program, and starts
/// the program otherwise.
pub(super) fn start_worker(launch: super::WorkerLaunch) -> std::io::Result<WorkerProcess> {
    if let Some(forked) = zygote::start_worker(&launch) {
        return forked.map(|started| WorkerProcess {
            pid: started.pid,
            start: Start::Forked(None),
            relay: started.relay,
        });
    }
    let mut launch = launch;
    // Kept open until the program has its copy, then closed here.
    let channel_end = launch.channel.take();
    let channel = channel_end.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
    let mut command = launch.into_command();
    isolate_worker(&mut command);
    if let Some(channel) = channel {
        // SAFETY: runs in the forked child before `exec`, where only
        // async-signal-safe calls are allowed: `hand_to_program` makes
        // only such calls.
        unsafe {
            command.pre_exec(move || channel::hand_to_program(channel));
        }
    }
    let child = command.spawn()?;
    drop(channel_end);
    Ok(WorkerProcess {
        pid: child.id(),
        start: Start::Spawned(child),
        relay: None,
    })
}

pub(super) fn private_dir_builder() -> std::fs::DirBuilder {
    use std::os::unix::fs::DirBuilderExt;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true).mode(0o700);
    builder
}

pub(super) fn give_owner_access(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}

pub(super) fn directory_identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (metadata.dev(), metadata.ino())
}

pub(super) fn file_version(metadata: &std::fs::Metadata) -> [i128; 4] {
    use std::os::unix::fs::MetadataExt;
    [
        i128::from(metadata.dev()),
        i128::from(metadata.ino()),
        i128::from(metadata.size()),
        i128::from(metadata.mtime()) * 1_000_000_000 + i128::from(metadata.mtime_nsec()),
    ]
}

pub(super) fn prepare_worker_starts(worker_main: super::WorkerMain, more_workers: bool) {
    // The zygote's workers come to us only if we are a subreaper: their
    // parent exits at once.
    become_subreaper();
    if thread_count() == 1 {
        zygote::start(worker_main, more_workers);
    }
    // Not dumpable from here on (the helpers forked above keep their own
    // setting, and a program started later gets its own at exec): no
    // process of the same user without CAP_SYS_PTRACE — a worker's
    // plugin — may open our /proc/PID/mem, fds or environment, or trace
    // us.
    // SAFETY: PR_SET_DUMPABLE takes an integer and touches no memory.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

pub(super) fn stop_worker_starts() {
    zygote::stop()
}

pub(super) fn end_worker_starts() {
    zygote::end()
}

/// Per-worker kill switch. On Linux the process group is the worker's pid,
/// so there is nothing to hold; Windows keeps its Job Object here.
#[derive(Debug)]
pub struct WorkerTree {
    pgid: Pid,
}

impl WorkerTree {
    pub fn attach(worker: &WorkerProcess) -> std::io::Result<WorkerTree> {
        Ok(WorkerTree {
            pgid: Pid::from_raw(worker.id() as i32),
        })
    }

    /// Kills every process still in the worker's group. Processes that
    /// left the group are found by [`reap_orphans`].
    pub fn kill(&self) {
        // ESRCH (the group is already gone) is the expected case at the end.
        let _ = killpg(self.pgid, Signal::SIGKILL);
    }
}

/// Kills the process group a worker leads, from outside its `Worker` (an
/// interrupted run), and reaps the worker, waiting up to a second: only
/// once it is gone have the processes that escaped its group been
/// re-parented here, where [`reap_orphans`] finds them.
pub(super) fn kill_worker_group(pid: u32) {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let pid = Pid::from_raw(pid as i32);
    let _ = killpg(pid, Signal::SIGKILL);
    let _ = kill(pid, Signal::SIGKILL);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while std::time::Instant::now() < deadline {
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => std::thread::sleep(std::time::Duration::from_millis(1)),
            _ => return,
        }
    }
}

pub(super) fn shell_word(text: &str) -> String {
    // Only a NUL cannot be quoted; no path or method name has one.
    shlex::try_quote(text).map_or_else(
        |_| format!("'{}'", text.replace('\0', "")),
        |quoted| quoted.into_owned(),
    )
}

/// Prepares a worker to die plainly: the kernel kills it when the harness
/// that started it dies, however that dies (even SIGKILL, which no handler
/// sees).
pub(super) fn harden_worker() {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and touches no memory
    // of ours.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
    }
    // The parent may have died before the request: then we are an orphan
    // already and must not run cases for nobody. Pid 1 is our parent in a
    // PID namespace of our own (its supervisor), which is not the
    // namespace of /proc's pid 1.
    if nix::unistd::getppid() == Pid::from_raw(1) && !in_own_pid_namespace() {
        std::process::exit(1);
    }
}

pub(super) fn confine_worker() -> bool {
    confine::is_confined() || confine::confine_worker(&confine::Protected::around_parent())
}

/// Whether this process lives in a PID namespace below the one `/proc`
/// shows (a worker's own, under its supervisor).
fn in_own_pid_namespace() -> bool {
    match (
        std::fs::read_link("/proc/self/ns/pid"),
        std::fs::read_link("/proc/1/ns/pid"),
    ) {
        (Ok(mine), Ok(outer)) => mine != outer,
        // Unreadable (not ours to trace): a supervisor's first and only
        // child is its pid 2.
        (Ok(_), Err(_)) => std::process::id() == 2,
        _ => false,
    }
}

/// This process's pid as `/proc` numbers it (which differs from
/// `getpid()` inside a PID namespace of its own).
fn proc_pid() -> u32 {
    std::fs::read_link("/proc/self")
        .ok()
        .and_then(|link| link.to_str()?.parse().ok())
        .unwrap_or_else(std::process::id)
}

/// Whether this process asked to be a subreaper: only then are its
/// unknown children orphans of workers (rather than the children of a host
/// that embeds the harness as a library, which are none of our business).
static SUBREAPER: AtomicBool = AtomicBool::new(false);

/// Set in an application that embeds the workers (`embed`): its children
/// are its own, not orphans a plugin left, and are never killed here.
static EMBEDDED: AtomicBool = AtomicBool::new(false);

pub(super) fn embedded_in_application() {
    EMBEDDED.store(true, Ordering::SeqCst);
}

/// Makes this process the reaper of orphaned descendants: a plugin's child
/// that double-forks and calls `setsid` is re-parented here rather than to
/// init, so it can still be found and killed. Only a process that runs
/// nothing but workers may do this (the `plugcheck` binary does).
pub(super) fn become_subreaper() {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and touches no
    // memory of ours.
    let done = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } == 0;
    SUBREAPER.store(done, Ordering::Relaxed);
}

/// Kills and reaps every child of this process whose pid is not in `keep`
/// (the live workers), until none is left. A killed orphan's own children
/// are re-parented here in turn, so this loops. Does nothing unless this
/// process is a subreaper (see [`become_subreaper`]).
pub(super) fn reap_orphans(keep: &HashSet<u32>) {
    // Nothing could have left one yet: a worker in a PID namespace of its
    // own takes everything it started with it (the kernel kills what is
    // left in a namespace when its first process, the supervisor, dies,
    // and nothing in one is re-parented out of it). Skipping the look
    // saves a dozen reads of `/proc`, 75 µs of a one-plugin check.
    if !ORPHANS_POSSIBLE.load(Ordering::SeqCst) {
        return;
    }
    reap_children_where(|child| !keep.contains(&child.pid) && !zygote::is_helper(child.pid));
}

/// Set by [`expect_orphans`], and by a plugin loaded in this process.
static ORPHANS_POSSIBLE: AtomicBool = AtomicBool::new(false);

pub(super) fn expect_orphans() {
    ORPHANS_POSSIBLE.store(true, Ordering::SeqCst);
}

/// Kills and reaps the children `orphan` picks, until none is left (see
/// [`reap_orphans`]).
fn reap_children_where(orphan: impl Fn(&ProcessInfo) -> bool) {
    if !SUBREAPER.load(Ordering::Relaxed) || EMBEDDED.load(Ordering::SeqCst) {
        return;
    }
    for _ in 0..64 {
        let orphans: Vec<ProcessInfo> = child_processes().into_iter().filter(&orphan).collect();
        if orphans.is_empty() {
            return;
        }
        for orphan in orphans {
            let pid = Pid::from_raw(orphan.pid as i32);
            if nix::unistd::getpgid(Some(pid)) == Ok(pid) {
                let _ = killpg(pid, Signal::SIGKILL);
            }
            let _ = kill(pid, Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
    }
}

/// Children of this process that are still running (not zombies waiting to
/// be reaped).
pub(super) fn running_child_processes() -> Vec<ProcessInfo> {
    children(false)
}

/// Every child of this process, zombies included.
pub(super) fn child_processes() -> Vec<ProcessInfo> {
    children(true)
}

/// Direct children: the kernel lists each thread's children in
/// `/proc/self/task/<tid>/children` (a re-parented orphan may land on any
/// thread), which is a few reads instead of a scan of every process. Each
/// pid is then checked against its `stat`, as the list can be stale.
fn children(include_zombies: bool) -> Vec<ProcessInfo> {
    let me = proc_pid();
    child_pids()
        .into_iter()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (name, state, ppid) = parse_stat(&stat)?;
            (ppid == me && (include_zombies || state != 'Z')).then_some(ProcessInfo { pid, name })
        })
        .collect()
}

fn child_pids() -> Vec<u32> {
    let from_tasks = || -> Option<Vec<u32>> {
        let mut pids = Vec::new();
        for task in std::fs::read_dir("/proc/self/task").ok()? {
            let children = std::fs::read_to_string(task.ok()?.path().join("children")).ok()?;
            pids.extend(
                children
                    .split_whitespace()
                    .filter_map(|pid| pid.parse::<u32>().ok()),
            );
        }
        Some(pids)
    };
    // Kernels built without CONFIG_PROC_CHILDREN: scan every process.
    from_tasks().unwrap_or_else(|| {
        std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
            .collect()
    })
}

/// `pid (comm) state ppid …` → (comm, state, ppid). The name may hold
/// spaces and parentheses, so it runs to the last `)`.
fn parse_stat(stat: &str) -> Option<(String, char, u32)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((name, state, ppid))
}

pub(super) fn monotonic_ns() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for clock_gettime to fill.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) } != 0 {
        return 0;
    }
    (now.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(now.tv_nsec as u64)
}

pub(super) fn thread_count() -> u64 {
    count_entries("/proc/self/task")
}

pub(super) fn open_handles() -> u64 {
    // The directory being read holds one descriptor of its own.
    count_entries("/proc/self/fd").saturating_sub(1)
}

pub(super) fn mapped_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    // SAFETY: sysconf reads a system constant.
    let page_size = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        size if size > 0 => size as u64,
        _ => 4096,
    };
    pages * page_size
}

fn count_entries(dir: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| entries.count() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_names_with_spaces_and_parens_parse() {
        assert_eq!(
            parse_stat("1234 (my (odd) name) S 77 1234 1234 0"),
            Some(("my (odd) name".into(), 'S', 77))
        );
    }

    #[test]
    fn signals_decode_by_name() {
        let status = ExitStatus::from_raw(libc::SIGSEGV);
        assert_eq!(
            decode_exit(status),
            Termination::Signaled {
                signal: "SIGSEGV".into(),
                number: 11,
                core_dumped: false
            }
        );
        assert_eq!(
            decode_exit(ExitStatus::from_raw(3 << 8)),
            Termination::Exited { code: 3 }
        );
    }

    #[test]
    fn a_spawned_child_is_listed_and_reaped() {
        let mut child = Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        assert!(
            child_processes()
                .iter()
                .any(|c| c.pid == pid && c.name == "sleep")
        );
        become_subreaper();
        // Only this test's child: other tests in this process start
        // children of their own at any moment, and one reaped here would
        // fail its own wait (ECHILD).
        reap_children_where(|child| child.pid == pid);
        assert!(!child_processes().iter().any(|c| c.pid == pid));
        // Already reaped: std's wait now fails with ECHILD.
        assert!(child.try_wait().is_err());
    }

    #[test]
    fn the_longest_mount_point_names_the_filesystem() {
        let mountinfo = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
95 22 0:52 / /mnt/c rw,noatime - 9p drvfs rw,aname=drvfs
96 22 0:53 / /mnt/c\\040drive rw - drvfs C: rw
";
        assert_eq!(
            mount_filesystem(mountinfo, Path::new("/mnt/c/Users/me/libp.so")),
            Some("9p".into())
        );
        assert_eq!(
            mount_filesystem(mountinfo, Path::new("/mnt/c drive/x.so")),
            Some("drvfs".into())
        );
        assert_eq!(
            mount_filesystem(mountinfo, Path::new("/home/me/libp.so")),
            Some("ext4".into())
        );
        assert!(filesystem_type(Path::new("/")).is_some());
    }
}
