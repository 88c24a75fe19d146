//! The one seam between plugcheck and the operating system. Everything that
//! names a platform — loader flags, process groups or Job Objects, exit
//! status decoding, `/proc` or toolhelp snapshots — lives behind it, with the
//! same functions on every OS. The rest of the harness asks for capabilities
//! and never writes `cfg`.

pub(crate) mod crash_note;

#[cfg(target_os = "linux")]
#[path = "linux.rs"]
mod imp;

#[cfg(windows)]
#[path = "windows.rs"]
mod imp;

#[cfg(not(any(target_os = "linux", windows)))]
compile_error!(
    "plugcheck runs on Linux and Windows only: its OS seam (host/src/os) has no module for this target"
);

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::AtomicBool;

mod termination;
mod types;

pub use termination::Termination;
pub use types::{
    ChannelEnd, OpenFailure, OsError, Platform, ProcessInfo, UserDir, WorkerLaunch, WorkerMain,
    WorkerOutput,
};

// The seam: every function the harness asks of the OS, declared once here
// with what it promises, and answered by `linux.rs` or `windows.rs`.

/// The object format this platform's loader takes.
pub const NATIVE_FORMAT: object::BinaryFormat = imp::NATIVE_FORMAT;

/// What people call that format, for diagnoses.
pub const NATIVE_FORMAT_NAME: &str = imp::NATIVE_FORMAT_NAME;

/// The usual file extension of a plugin here.
pub const LIBRARY_EXTENSION: &str = HOST.library_extension();

/// The platform this harness runs on.
pub const HOST: Platform = imp::HOST;

/// Where cargo writes a `cdylib` crate's library, for advice.
pub const CDYLIB_EXAMPLE: &str = imp::CDYLIB_EXAMPLE;

/// A shared library's file name here, for advice.
pub const SHARED_LIBRARY_EXAMPLE: &str = imp::SHARED_LIBRARY_EXAMPLE;

/// Whether Go-native plugins (`go build -buildmode=plugin`) load here: Go
/// builds and opens them only on Unix-likes, never on Windows.
pub const GO_NATIVE_PLUGINS: bool = imp::GO_NATIVE_PLUGINS;

/// Whether the harness must keep a library with a Go runtime loaded itself:
/// on Linux no (Go links its c-shared libraries with `-z nodelete`); on
/// Windows yes (`FreeLibrary` would unmap it under the runtime's threads).
pub const PIN_GO_RUNTIME: bool = imp::PIN_GO_RUNTIME;

/// Whether a worker that finished its cases is killed at once, before the
/// parent hangs up its channel, so that its dying overlaps the report. On
/// Linux yes. On Windows no: under Wine, a process terminated while a read
/// on its socket is pending stays in the wineserver, which kills its stale
/// unix pid when it exits itself, whatever process has that pid by then
/// (it killed a shell here). Hung up first, the worker ends its read and
/// exits on its own.
pub const KILL_FINISHED_WORKER_AT_ONCE: bool = imp::KILL_FINISHED_WORKER_AT_ONCE;

/// Opens a library by its full path, so that what it lacks fails here
/// rather than in the middle of a call: immediate binding on Linux
/// (`RTLD_NOW | RTLD_LOCAL`), a search of its own directory and the
/// system's (never the current directory) on Windows.
///
/// # Safety
/// Loading runs the library's constructors, which may do anything: only
/// the worker process calls this.
pub unsafe fn open_library(path: &Path) -> Result<libloading::Library, OpenFailure> {
    // SAFETY: the caller's contract, which this forwards.
    unsafe { imp::open_library(path) }
}

/// `program` in a directory of PATH; on a Windows host as `program.exe`
/// too (MSYS2's `x86_64-w64-mingw32-gcc.exe`, `go.exe`).
pub fn find_on_path(program: &str) -> Option<PathBuf> {
    let names = [
        program.to_owned(),
        format!("{program}{}", std::env::consts::EXE_SUFFIX),
    ];
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
            .find(|candidate| candidate.is_file())
    })
}

/// Whether the library at `path` is still mapped in this process, asked
/// with `dlopen(RTLD_NOLOAD)`, which never loads anything.
pub fn library_is_resident(path: &Path) -> bool {
    imp::library_is_resident(path)
}

/// A libloading error as an [`OsError`]. libloading's Display is generic
/// ("dlopen failed"): `dlerror`'s text is in the source error. dlopen sets
/// no error code.
pub fn loader_error(error: &libloading::Error) -> OsError {
    imp::loader_error(error)
}

/// What a file that is neither a regular file nor a directory is, by name:
/// such a file is never opened as a plugin (a FIFO blocks the opener, a
/// device never ends).
pub fn special_file_kind(file_type: &std::fs::FileType) -> Option<&'static str> {
    imp::special_file_kind(file_type)
}

/// Opens a file for reading without ever waiting: a FIFO swapped in after
/// the type check opens at once (`O_NONBLOCK`) instead of blocking until a
/// writer comes, and a terminal does not become ours (`O_NOCTTY`).
pub fn open_without_waiting(path: &Path) -> std::io::Result<std::fs::File> {
    imp::open_without_waiting(path)
}

/// The ranges of `file` (of `len` bytes) that hold data, holes left out,
/// asked with `SEEK_DATA`/`SEEK_HOLE`: a file padded with gigabytes of
/// holes is copied and hashed at the cost of its data. A filesystem that
/// cannot tell gives one range, the whole file.
pub fn data_ranges(file: &std::fs::File, len: u64) -> Vec<(u64, u64)> {
    imp::data_ranges(file, len)
}

/// Copies bytes at `address` of this process into `buffer` through the
/// kernel (`process_vm_readv` on ourselves), which answers EFAULT where a
/// plain read would crash. Returns how many bytes were readable (0: none).
pub fn read_own_memory(address: usize, buffer: &mut [u8]) -> usize {
    imp::read_own_memory(address, buffer)
}

/// A pipe for one of a worker's output streams, holding 1 MiB instead of
/// 64 KiB, so a plugin that prints a lot blocks less often and the capture
/// thread wakes less often per byte (a refused resize leaves it as it is).
/// The end of the stream is the pipe's end: `_ended` is not needed here.
pub fn worker_output(ended: &std::sync::Arc<AtomicBool>) -> std::io::Result<WorkerOutput> {
    imp::worker_output(ended)
}

/// The kernel's release string (`uname -r`): WSL2's ends in
/// `-microsoft-standard-WSL2`.
/// Where plugcheck keeps a user's files of `kind`, in the platform's
/// convention (`None` when the environment names no home): its Wine
/// prefix, its built Go workers.
pub fn user_dir(kind: UserDir) -> Option<std::path::PathBuf> {
    imp::user_dir(kind)
}

/// What runs this process: `WSL2` under Microsoft's Linux kernel,
/// otherwise `native`.
pub fn runtime() -> String {
    imp::runtime()
}

pub fn kernel_release() -> Option<String> {
    imp::kernel_release()
}

/// Where `path` really is: absolute, every `..` and symbolic link
/// resolved, in the form people read (no `\\?\` prefix on Windows).
/// What a path's location decides (which gate file applies) is decided on
/// this, never on the words a user or a link happened to use.
pub fn real_path(path: &Path) -> std::io::Result<std::path::PathBuf> {
    imp::real_path(path)
}

/// The type of the filesystem `path` lives on (`ext4`, `9p`, `drvfs`),
/// from the mount table.
pub fn filesystem_type(path: &Path) -> Option<String> {
    imp::filesystem_type(path)
}

/// The program a process runs now (after any `exec`), if the OS says.
pub fn process_image(pid: u32) -> Option<std::path::PathBuf> {
    imp::process_image(pid)
}

/// Permissions for files others read (reports): `rw-r--r--`.
pub fn shared_file_permissions() -> Option<std::fs::Permissions> {
    imp::shared_file_permissions()
}

/// Puts the finished temporary file `file` (written beside `path`) at
/// `path` in one step: a reader of `path` sees the old file or the new one,
/// never a torn one. On Linux an existing regular file is swapped out
/// (`renameat2(RENAME_EXCHANGE)`) and then deleted rather than renamed
/// over: ext4 writes a file renamed over another to disk first (its
/// `auto_da_alloc` guard), 0.1 to 0.7 ms, more than the rest of writing
/// a report.
pub fn replace_file(file: tempfile::NamedTempFile, path: &Path) -> std::io::Result<()> {
    if imp::swap_into_place(file.path(), path) {
        // The temporary name now holds the old file, which goes with it.
        return Ok(());
    }
    file.persist(path).map(drop).map_err(|error| error.error)
}

/// Flushes the C library's stdio buffers, so what a plugin printed with
/// `printf` reaches the pipe before the case ends.
pub fn flush_c_stdio() {
    imp::flush_c_stdio()
}

/// Decodes an exit status: a signal by name, or the exit code.
pub fn decode_exit(status: ExitStatus) -> Termination {
    imp::decode_exit(status)
}

/// A builder of directories only their owner may enter (0700 on Linux;
/// Windows' default ACLs already keep a user's profile to that user),
/// making parents as needed.
pub fn private_dir_builder() -> std::fs::DirBuilder {
    imp::private_dir_builder()
}

/// Gives a directory's owner back the right to list and change it, which
/// a plugin may have taken from itself (one directory, not its contents).
pub fn give_owner_access(dir: &std::path::Path) {
    imp::give_owner_access(dir)
}

/// What tells one directory from another at the same path over time: its
/// device and inode on Linux; on Windows nothing stable is at hand (a
/// working directory cannot be renamed away while in use there, and a link
/// in its place is still seen by its type), so every directory is alike.
pub fn directory_identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    imp::directory_identity(metadata)
}

/// What changes when the file at a path is rebuilt, written or replaced:
/// on Linux its device, inode, size and modification time; on Windows its
/// size and its creation and last-write times. Not the change time, which
/// a hard link moves too (a Go-native run makes one of the plugin). A
/// writer that sets the modification time back goes unseen.
pub fn file_version(metadata: &std::fs::Metadata) -> [i128; 4] {
    imp::file_version(metadata)
}

/// Where a worker started with `--channel-fd FD` or `--connect ADDRESS`
/// (see `PendingChannel`) finds its channel to the parent.
pub fn join_channel(
    connect: Option<std::net::SocketAddr>,
    fd: Option<i32>,
) -> std::io::Result<ChannelStream> {
    imp::join_channel(connect, fd)
}

/// Both ends of a channel of the kind workers use, connected (for tests
/// of what reads one).
#[cfg(test)]
pub(crate) fn channel_pair() -> std::io::Result<(ChannelStream, ChannelStream)> {
    imp::channel_pair()
}

/// Starts a worker. On Linux a worker of plugcheck's own binary is the
/// spare or a fork of the zygote (see [`prepare_worker_starts`]) while they
/// run, at a fraction of the cost of starting the program anew; every
/// other start runs the program. Either way the worker leads a process
/// tree of its own and is a child of this process.
pub fn start_worker(launch: WorkerLaunch) -> std::io::Result<WorkerProcess> {
    imp::start_worker(launch)
}

/// A started worker: its pid, and waiting for it and killing it.
pub use imp::WorkerProcess;

/// Says this process is an application that embeds workers
/// (`embed`), not plugcheck: every child it has that is not a worker is
/// its own, and the orphan sweep ([`reap_orphans`]) never kills one.
pub fn embedded_in_application() {
    imp::embedded_in_application()
}

/// Makes worker starts cheap where the OS allows it: on Linux, forks a
/// spare worker now, while this process has a single thread; the spare
/// becomes the first worker of plugcheck's own binary and runs
/// `worker_main` with the worker's assignment instead of starting the
/// binary anew (an `exec` costs about as much as the whole physical
/// floor). With `more_workers` (a command that may start several), the
/// spare also forks the zygote that forks every later worker into a
/// namespace of its own. Makes this process a subreaper. Does nothing on
/// Windows, which has no fork, or when this process already runs threads.
pub fn prepare_worker_starts(worker_main: WorkerMain, more_workers: bool) {
    imp::prepare_worker_starts(worker_main, more_workers)
}

/// Says no more workers will start (they would start as programs): what
/// [`prepare_worker_starts`] started is killed now, its dying overlapping
/// the rest of the run, and reaped by [`end_worker_starts`].
pub fn stop_worker_starts() {
    imp::stop_worker_starts()
}

/// Ends what [`prepare_worker_starts`] started, and waits for it to go:
/// call it before exiting, so nothing of the run outlives it.
pub fn end_worker_starts() {
    imp::end_worker_starts()
}

pub use imp::WorkerTree;

/// A worker's channel to its parent, and how it is set up: on Linux a
/// socket pair whose other end the worker is handed as it starts (nothing
/// is listened on, connected to or proved); on Windows a loopback
/// listener the worker connects to (`--connect`), proving itself with its
/// token. `ChannelEnd` is what the launch hands over (nothing on Windows).
pub use imp::{ChannelStream, PendingChannel};

/// Kills the process group a worker leads, from outside its `Worker` (an
/// interrupted run), and reaps the worker, waiting up to a second: only
/// once it is gone have the processes that escaped its group been
/// re-parented here, where [`reap_orphans`] finds them.
pub fn kill_worker_group(pid: u32) {
    imp::kill_worker_group(pid)
}

/// Prepares a worker to die plainly: the kernel kills it when the harness
/// that started it dies, however that dies (even SIGKILL, which no handler
/// sees).
pub fn harden_worker() {
    imp::harden_worker()
}

/// `text` as one word of a command line a person pastes into this
/// platform's shell: POSIX sh on Linux, PowerShell on Windows (whose
/// single quotes keep backslashes as they are).
pub fn shell_word(text: &str) -> String {
    imp::shell_word(text)
}

/// Makes a crash of this worker tell the parent where it happened: on a
/// fatal signal (Linux) or an unhandled exception (Windows), the crashing
/// thread's stack goes over `channel` as a `stack` message before the
/// worker dies as it would have. What runs in the dying process is
/// minimal; ARCHITECTURE.md says what is async-signal-safe.
pub fn report_crashes_to(channel: &ChannelStream) {
    imp::report_crashes_to(channel)
}

/// Forbids this worker — and everything the plugin starts from it — to
/// signal, trace, read or write the memory of, or limit its parent, the
/// harness's other processes, or every process at once (`kill(-1, …)`).
/// Such a call does not run: the worker names it to the parent over
/// `channel` (a `forbidden` message) and dies. On Linux a seccomp filter
/// (see `linux/confine.rs`); Windows has no such filter (a plugin can
/// `TerminateProcess` its parent there: the README says so). Call it once
/// the crash handler has the channel. False: not in force.
pub fn confine_worker() -> bool {
    imp::confine_worker()
}

/// Makes this process the reaper of orphaned descendants: a plugin's child
/// that double-forks and calls `setsid` is re-parented here rather than to
/// init, so it can still be found and killed. Only a process that runs
/// nothing but workers may do this (the `plugcheck` binary does).
pub fn become_subreaper() {
    imp::become_subreaper()
}

/// Kills and reaps every child of this process whose pid is not in `keep`
/// (the live workers), until none is left. A killed orphan's own children
/// are re-parented here in turn, so this loops. Does nothing unless this
/// process is a subreaper (see [`become_subreaper`]), nor before anything
/// that can leave an orphan here ran (see [`expect_orphans`]).
pub fn reap_orphans(keep: &HashSet<u32>) {
    imp::reap_orphans(keep)
}

/// Says that processes may be re-parented here from now on: a worker
/// that does not hold its descendants (see
/// [`WorkerProcess::holds_its_descendants`]), or a program of the harness's
/// own, started. A plugin loaded in this process ([`open_library`]) says
/// so itself. Until one of them, nothing this process started can have
/// left an orphan, and [`reap_orphans`] skips its look through `/proc`.
pub fn expect_orphans() {
    imp::expect_orphans()
}

/// Children of this process that are still running (not zombies waiting to
/// be reaped).
pub fn running_child_processes() -> Vec<ProcessInfo> {
    imp::running_child_processes()
}

/// Every child of this process, zombies included.
pub fn child_processes() -> Vec<ProcessInfo> {
    imp::child_processes()
}

/// Nanoseconds on a clock every process of this machine shares and that
/// never goes back (Linux: `CLOCK_MONOTONIC`), for a timeline of one run
/// across its processes. On Windows, per process (since its first call).
pub fn monotonic_ns() -> u64 {
    imp::monotonic_ns()
}

pub fn thread_count() -> u64 {
    imp::thread_count()
}

pub fn open_handles() -> u64 {
    imp::open_handles()
}

pub fn mapped_bytes() -> u64 {
    imp::mapped_bytes()
}

/// Resources a process holds, for leak checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceUse {
    pub threads: u64,
    /// Open file descriptors (Unix) or handles (Windows).
    pub handles: u64,
    pub mapped_bytes: u64,
}

impl ResourceUse {
    pub fn now() -> ResourceUse {
        ResourceUse {
            threads: thread_count(),
            handles: open_handles(),
            mapped_bytes: mapped_bytes(),
        }
    }
}

/// Linux: the counts read from `/proc` (Wine's answers differ).
#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn resource_counts_are_plausible() {
        let use_now = ResourceUse::now();
        assert!(use_now.threads >= 1);
        assert!(use_now.handles >= 3, "stdin, stdout, stderr");
        assert!(use_now.mapped_bytes > 1 << 20);
    }
}
