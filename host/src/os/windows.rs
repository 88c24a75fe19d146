//! Windows half of the OS seam: `LoadLibraryExW` with DLL-directory search,
//! Win32 error and NTSTATUS names, Job Objects that take a worker's whole
//! process tree down, toolhelp snapshots for threads and children.

use std::collections::HashSet;
use std::os::windows::io::AsRawHandle;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};

use windows_sys::Win32::Foundation::FILETIME;
use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, PROCESSENTRY32W, Process32FirstW, Process32NextW, TH32CS_SNAPPROCESS,
    TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation,
    SetInformationJobObject, TerminateJobObject,
};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, GetProcessHandleCount, GetProcessTimes, OpenProcess,
    PROCESS_QUERY_LIMITED_INFORMATION,
};

#[path = "windows/crash.rs"]
mod crash;

pub(super) use crash::report_crashes_to;

use super::OpenFailure;
use super::{OsError, ProcessInfo};
use crate::os::Termination;

/// The object format this platform's loader takes.
pub(super) const NATIVE_FORMAT: object::BinaryFormat = object::BinaryFormat::Pe;

/// What people call that format, for diagnoses.
pub(super) const NATIVE_FORMAT_NAME: &str = "PE DLLs";

/// The platform this is.
pub(super) const HOST: super::Platform = super::Platform::Windows;

/// Where cargo writes a `cdylib` crate's library, for advice.
pub(super) const CDYLIB_EXAMPLE: &str = "target\\release\\NAME.dll";

/// A shared library's file name here, for advice.
pub(super) const SHARED_LIBRARY_EXAMPLE: &str = "NAME.dll";

/// Whether the harness must keep a library with a Go runtime loaded itself.
/// Yes: PE has no "nodelete", and FreeLibrary unmaps a Go DLL while its
/// runtime's threads still run in it, which crashes the process.
pub(super) const PIN_GO_RUNTIME: bool = true;
pub(super) const KILL_FINISHED_WORKER_AT_ONCE: bool = false;
pub(super) const GO_NATIVE_PLUGINS: bool = false;

/// Opens a library by its full path; its own dependencies are looked for
/// beside it first (`LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR`), then in the
/// system's default directories — never the current directory.
///
/// # Safety
/// Loading runs `DllMain`, which may do anything: only the worker process
/// calls this.
pub(super) unsafe fn open_library(path: &Path) -> Result<libloading::Library, OpenFailure> {
    use libloading::os::windows::{
        LOAD_LIBRARY_SEARCH_DEFAULT_DIRS, LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR, Library,
    };
    use std::os::windows::ffi::OsStrExt;
    use windows_sys::Win32::Foundation::GetLastError;
    use windows_sys::Win32::System::LibraryLoader::LoadLibraryExW;
    let flags = LOAD_LIBRARY_SEARCH_DLL_LOAD_DIR | LOAD_LIBRARY_SEARCH_DEFAULT_DIRS;
    let wide: Vec<u16> = path.as_os_str().encode_wide().chain([0]).collect();
    // The loader's error code is read from the OS right after the call,
    // before anything else can overwrite it; and no "missing DLL" dialog
    // may wait for a click, so critical errors fail for this thread
    // during the load.
    // SAFETY: `wide` is NUL-terminated and `previous` writable; the caller
    // accepts that DllMain runs (see above).
    let (handle, code) = unsafe {
        use windows_sys::Win32::System::Diagnostics::Debug::{
            SEM_FAILCRITICALERRORS, SetThreadErrorMode,
        };
        let mut previous = 0;
        let guarded = SetThreadErrorMode(SEM_FAILCRITICALERRORS, &mut previous) != 0;
        let handle = LoadLibraryExW(wide.as_ptr(), std::ptr::null_mut(), flags);
        let code = GetLastError();
        if guarded {
            SetThreadErrorMode(previous, std::ptr::null_mut());
        }
        (handle, code)
    };
    if !handle.is_null() {
        // SAFETY: a module handle LoadLibraryExW just returned, owned here.
        return Ok(unsafe { Library::from_raw(handle as isize) }.into());
    }
    let error = os_error(i64::from(code));
    let missing_dependency = match error.code {
        Some(126) => missing_import(path),
        _ => None,
    };
    Err(OpenFailure {
        error,
        unresolved_symbol: None,
        missing_dependency,
    })
}

/// The first DLL `path` imports that is neither beside it nor loadable by
/// name: what error 126 (module not found) does not say.
fn missing_import(path: &Path) -> Option<String> {
    use libloading::os::windows::{
        LOAD_LIBRARY_AS_DATAFILE, LOAD_LIBRARY_SEARCH_DEFAULT_DIRS, Library,
    };
    use object::Object;
    let data = std::fs::read(path).ok()?;
    let file = object::File::parse(&*data).ok()?;
    let dir = path.parent()?;
    let mut libraries: Vec<String> = file
        .imports()
        .ok()?
        .iter()
        .map(|import| String::from_utf8_lossy(import.library()).into_owned())
        .collect();
    libraries.dedup();
    libraries.into_iter().find(|library| {
        if dir.join(library).exists() {
            return false;
        }
        // SAFETY: as a data file nothing of the library runs.
        let found = unsafe {
            Library::load_with_flags(
                library.as_str(),
                LOAD_LIBRARY_AS_DATAFILE | LOAD_LIBRARY_SEARCH_DEFAULT_DIRS,
            )
        };
        found.is_err()
    })
}

pub(super) fn monotonic_ns() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_nanos() as u64
}

/// Whether the library at `path` is still loaded in this process, asked
/// with `GetModuleHandleExW`, which never loads anything.
pub(super) fn library_is_resident(path: &Path) -> bool {
    // The handle bumps the reference count; dropping it gives it back.
    libloading::os::windows::Library::open_already_loaded(path.as_os_str()).is_ok()
}

/// `canonicalize` answers `\\?\C:\…`; a drive path is shown without
/// the prefix (a UNC share keeps it: `\\?\UNC\…` has no shorter form here).
pub(super) fn real_path(path: &Path) -> std::io::Result<std::path::PathBuf> {
    let real = std::fs::canonicalize(path)?;
    let plain = real
        .to_str()
        .and_then(|text| text.strip_prefix(r"\\?\"))
        .filter(|rest| rest.as_bytes().get(1) == Some(&b':'))
        .map(std::path::PathBuf::from);
    Ok(plain.unwrap_or(real))
}

/// Both under `%LOCALAPPDATA%`: Windows keeps no separate cache root.
pub(super) fn user_dir(_kind: super::UserDir) -> Option<std::path::PathBuf> {
    std::env::var_os("LOCALAPPDATA")
        .filter(|dir| !dir.is_empty())
        .map(std::path::PathBuf::from)
}

/// What runs this Windows process: `Wine 8.0` when ntdll is Wine's (it
/// exports `wine_get_version`), otherwise `native`.
pub(super) fn runtime() -> String {
    let Ok(ntdll) = libloading::os::windows::Library::open_already_loaded("ntdll.dll") else {
        return "native".into();
    };
    // SAFETY: Wine's ntdll exports `const char *wine_get_version(void)`,
    // returning a static NUL-terminated string; native ntdll has no such
    // export, and then nothing is called.
    unsafe {
        match ntdll.get::<unsafe extern "C" fn() -> *const std::ffi::c_char>(b"wine_get_version\0")
        {
            Ok(version) => {
                let version = version();
                if version.is_null() {
                    "Wine".into()
                } else {
                    format!(
                        "Wine {}",
                        std::ffi::CStr::from_ptr(version).to_string_lossy()
                    )
                }
            }
            Err(_) => "native".into(),
        }
    }
}

/// A failed lookup or close as an [`OsError`], its Win32 code asked of the
/// OS (`GetLastError`): libloading's Display is generic ("GetProcAddress
/// failed"), and nothing runs between its failed call and this one.
pub(super) fn loader_error(error: &libloading::Error) -> OsError {
    // SAFETY: reads this thread's last error; no arguments.
    let code = unsafe { windows_sys::Win32::Foundation::GetLastError() };
    if code == 0 {
        return OsError {
            code: None,
            name: None,
            message: error.to_string(),
        };
    }
    os_error(i64::from(code))
}

/// A Win32 error code with its name and the system's message.
fn os_error(code: i64) -> OsError {
    OsError {
        code: Some(code),
        name: win32_error_name(code).map(str::to_owned),
        message: std::io::Error::from_raw_os_error(code as i32).to_string(),
    }
}

/// Names of the Win32 errors a loader gives.
fn win32_error_name(code: i64) -> Option<&'static str> {
    Some(match code {
        2 => "ERROR_FILE_NOT_FOUND",
        3 => "ERROR_PATH_NOT_FOUND",
        5 => "ERROR_ACCESS_DENIED",
        32 => "ERROR_SHARING_VIOLATION",
        126 => "ERROR_MOD_NOT_FOUND",
        127 => "ERROR_PROC_NOT_FOUND",
        193 => "ERROR_BAD_EXE_FORMAT",
        216 => "ERROR_EXE_MACHINE_TYPE_MISMATCH",
        998 => "ERROR_NOACCESS",
        1114 => "ERROR_DLL_INIT_FAILED",
        _ => return None,
    })
}

/// What a file that is neither a regular file nor a directory is: on
/// Windows, a device or pipe name (`NUL`, `\\.\pipe\…`) or a reparse
/// point the metadata could not follow.
pub(super) fn special_file_kind(file_type: &std::fs::FileType) -> Option<&'static str> {
    (!file_type.is_file() && !file_type.is_dir() && !file_type.is_symlink())
        .then_some("not a regular file (a device, a pipe or a reparse point)")
}

/// Opens a file for reading. A pipe or device is refused by its type
/// before this is called.
pub(super) fn open_without_waiting(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// The ranges of `file` that hold data: the whole file (NTFS sparse files
/// are rare for build outputs).
pub(super) fn data_ranges(_file: &std::fs::File, len: u64) -> Vec<(u64, u64)> {
    vec![(0, len)]
}

/// Copies bytes at `address` of this process into `buffer` if the page
/// is committed and readable, as `VirtualQuery` says; returns how many
/// bytes were copied (0: none). `ReadProcessMemory` would answer the same,
/// but under Wine each call is a round trip to the wineserver, and a
/// plugin that logs 100,000 lines made that a timeout; `VirtualQuery` of
/// our own process is answered in-process.
///
/// A plugin thread that unmaps the page between the query and the copy
/// crashes the worker: that is reported as a crash, the harness carries
/// on.
pub(super) fn read_own_memory(address: usize, buffer: &mut [u8]) -> usize {
    use windows_sys::Win32::System::Memory::{
        MEM_COMMIT, MEMORY_BASIC_INFORMATION, PAGE_EXECUTE_READ, PAGE_EXECUTE_READWRITE,
        PAGE_EXECUTE_WRITECOPY, PAGE_GUARD, PAGE_NOACCESS, PAGE_READONLY, PAGE_READWRITE,
        PAGE_WRITECOPY, VirtualQuery,
    };
    const READABLE: u32 = PAGE_READONLY
        | PAGE_READWRITE
        | PAGE_WRITECOPY
        | PAGE_EXECUTE_READ
        | PAGE_EXECUTE_READWRITE
        | PAGE_EXECUTE_WRITECOPY;
    // SAFETY: an all-zero MEMORY_BASIC_INFORMATION is a valid value of
    // this plain C struct.
    let mut info: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: VirtualQuery only describes the region at `address` into
    // `info`, of the size we pass.
    let described = unsafe {
        VirtualQuery(
            address as *const core::ffi::c_void,
            &mut info,
            std::mem::size_of::<MEMORY_BASIC_INFORMATION>(),
        )
    };
    let readable = described != 0
        && info.State == MEM_COMMIT
        && info.Protect & READABLE != 0
        && info.Protect & (PAGE_GUARD | PAGE_NOACCESS) == 0;
    if !readable {
        return 0;
    }
    let region_end = (info.BaseAddress as usize).saturating_add(info.RegionSize);
    let count = buffer.len().min(region_end.saturating_sub(address));
    // SAFETY: the region [address, region_end) is committed and readable
    // (checked above); `buffer` is ours, writable, and `count` fits both.
    unsafe {
        std::ptr::copy_nonoverlapping(address as *const u8, buffer.as_mut_ptr(), count);
    }
    count
}

/// A temporary file for one of a worker's output streams: the worker
/// writes to it, the parent reads it as it grows, until `ended` (set once
/// the worker is reaped) says no more is coming. Under Wine a write to a
/// file is a plain write; to a pipe it is a wineserver round trip. The
/// file is deleted when the reader is dropped.
pub(super) fn worker_output(
    ended: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::io::Result<super::WorkerOutput> {
    let file = tempfile::Builder::new()
        .prefix("plugcheck-output-")
        .tempfile()?;
    let writer = std::fs::OpenOptions::new().write(true).open(file.path())?;
    let reader = std::fs::File::open(file.path())?;
    Ok(super::WorkerOutput {
        child: writer.into(),
        reader: Box::new(TailFile {
            reader,
            _file: file,
            ended: std::sync::Arc::clone(ended),
        }),
    })
}

/// Reads a file another process is still writing: at its current end it
/// waits for more, until the writer is known to be gone.
struct TailFile {
    reader: std::fs::File,
    /// Deletes the file when the reading is done.
    _file: tempfile::NamedTempFile,
    ended: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl std::io::Read for TailFile {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let read = self.reader.read(buffer)?;
            if read > 0 {
                return Ok(read);
            }
            if self.ended.load(std::sync::atomic::Ordering::SeqCst) {
                // What the worker wrote last, then the end.
                return self.reader.read(buffer);
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

/// The kernel's release string: only Linux (and WSL) has one worth asking.
pub(super) fn kernel_release() -> Option<String> {
    None
}

/// The filesystem type of `path`: Windows' own filesystems deliver change
/// events, so nothing asks.
pub(super) fn filesystem_type(_path: &Path) -> Option<String> {
    None
}

/// The program a process runs now. Windows has no `exec`: a process
/// keeps the image it was started with, so there is nothing to tell.
pub(super) fn process_image(_pid: u32) -> Option<std::path::PathBuf> {
    None
}

/// Permissions for files others read (reports): Windows has no mode bits.
pub(super) fn shared_file_permissions() -> Option<std::fs::Permissions> {
    None
}

unsafe extern "C" {
    fn fflush(stream: *mut std::ffi::c_void) -> i32;
}

/// Flushes the C runtime's stdio buffers, so what a plugin printed with
/// `printf` reaches the pipe before the case ends.
pub(super) fn flush_c_stdio() {
    // SAFETY: fflush(NULL) flushes every open output stream of the CRT.
    unsafe {
        fflush(std::ptr::null_mut());
    }
}

/// Decodes an exit status: an NTSTATUS by name when the process died of an
/// exception or fail-fast, the exit code otherwise.
pub(super) fn decode_exit(status: ExitStatus) -> Termination {
    let code = status.code().unwrap_or(-1) as u32;
    // Error-severity NTSTATUS values (0xC…) and the breakpoint warning.
    if code >= 0xC000_0000 || code == 0x8000_0003 {
        return Termination::NtStatus {
            code: format!("0x{code:08X}"),
            name: ntstatus_name(code).map(str::to_owned),
        };
    }
    Termination::Exited {
        code: i64::from(status.code().unwrap_or(-1)),
    }
}

/// Names of the NTSTATUS values a crashing plugin produces.
fn ntstatus_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0x8000_0003 => "STATUS_BREAKPOINT",
        0xC000_0005 => "STATUS_ACCESS_VIOLATION",
        0xC000_0006 => "STATUS_IN_PAGE_ERROR",
        0xC000_001D => "STATUS_ILLEGAL_INSTRUCTION",
        0xC000_0025 => "STATUS_NONCONTINUABLE_EXCEPTION",
        0xC000_0094 => "STATUS_INTEGER_DIVIDE_BY_ZERO",
        0xC000_0096 => "STATUS_PRIVILEGED_INSTRUCTION",
        0xC000_00FD => "STATUS_STACK_OVERFLOW",
        0xC000_0135 => "STATUS_DLL_NOT_FOUND",
        0xC000_0139 => "STATUS_ENTRYPOINT_NOT_FOUND",
        0xC000_013A => "STATUS_CONTROL_C_EXIT",
        0xC000_0142 => "STATUS_DLL_INIT_FAILED",
        0xC000_0374 => "STATUS_HEAP_CORRUPTION",
        0xC000_0409 => "STATUS_STACK_BUFFER_OVERRUN",
        0xC000_0602 => "STATUS_FAIL_FAST_EXCEPTION",
        _ => return None,
    })
}

/// Nothing to set on the command: the worker joins its Job Object right
/// after it starts, before it is sent any case.
pub(super) fn isolate_worker(_command: &mut Command) {}

/// Never: the file is renamed over `path` (`MoveFileExW` with
/// `REPLACE_EXISTING`, what `persist` does).
pub(super) fn swap_into_place(_temporary: &Path, _path: &Path) -> bool {
    false
}

/// A started worker: always a new process here (Windows has no fork).
#[derive(Debug)]
pub struct WorkerProcess {
    child: Child,
}

impl WorkerProcess {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Always: its Job Object holds every descendant, and closing it kills
    /// them all.
    pub fn holds_its_descendants(&self) -> bool {
        true
    }

    /// The worker process itself: the process started (no namespace here).
    pub fn program_id(&self) -> Option<u32> {
        Some(self.child.id())
    }

    pub fn kill(&mut self) -> std::io::Result<()> {
        self.child.kill()
    }

    pub fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait()
    }

    pub fn try_wait(&mut self) -> std::io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }
}

/// Starts the worker's program; its Job Object comes with
/// [`WorkerTree::attach`].
pub(super) fn start_worker(launch: super::WorkerLaunch) -> std::io::Result<WorkerProcess> {
    let mut command = launch.into_command();
    isolate_worker(&mut command);
    let child = command.spawn()?;
    Ok(WorkerProcess { child })
}

pub(super) fn private_dir_builder() -> std::fs::DirBuilder {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    builder
}

pub(super) fn give_owner_access(dir: &Path) {
    if let Ok(metadata) = std::fs::metadata(dir) {
        let mut permissions = metadata.permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        permissions.set_readonly(false);
        let _ = std::fs::set_permissions(dir, permissions);
    }
}

pub(super) fn directory_identity(_metadata: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

pub(super) fn file_version(metadata: &std::fs::Metadata) -> [i128; 4] {
    use std::os::windows::fs::MetadataExt;
    [
        i128::from(metadata.file_size()),
        i128::from(metadata.creation_time()),
        i128::from(metadata.last_write_time()),
        0,
    ]
}

/// Nothing to prepare: there is no fork to start workers from.
pub(super) fn prepare_worker_starts(_worker_main: super::WorkerMain, _more_workers: bool) {}

pub(super) fn stop_worker_starts() {}

pub(super) fn end_worker_starts() {}

/// A worker's Job Object: every process the worker starts joins it, and
/// closing it (or the harness dying) kills them all.
#[derive(Debug)]
pub struct WorkerTree {
    job: HANDLE,
}

// SAFETY: a job handle is a kernel object handle, usable from any thread.
unsafe impl Send for WorkerTree {}

impl WorkerTree {
    pub fn attach(worker: &WorkerProcess) -> std::io::Result<WorkerTree> {
        // SAFETY: creating an unnamed job with default security.
        let job = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
        if job.is_null() {
            return Err(std::io::Error::last_os_error());
        }
        let tree = WorkerTree { job };
        // SAFETY: a zeroed limit structure is valid; only the flag is set.
        let mut limits: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
        limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        // SAFETY: `limits` is the structure this information class takes.
        let set = unsafe {
            SetInformationJobObject(
                job,
                JobObjectExtendedLimitInformation,
                (&limits as *const JOBOBJECT_EXTENDED_LIMIT_INFORMATION).cast(),
                std::mem::size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
            )
        };
        // SAFETY: both handles are live: the job above, the child's process.
        if set == 0
            || unsafe { AssignProcessToJobObject(job, worker.child.as_raw_handle() as HANDLE) } == 0
        {
            return Err(std::io::Error::last_os_error());
        }
        Ok(tree)
    }

    /// Terminates every process in the job.
    pub fn kill(&self) {
        // SAFETY: the job handle is live until drop.
        unsafe {
            TerminateJobObject(self.job, 1);
        }
    }
}

impl Drop for WorkerTree {
    fn drop(&mut self) {
        // SAFETY: closed once; KILL_ON_JOB_CLOSE ends what is left.
        unsafe {
            CloseHandle(self.job);
        }
    }
}

/// An interrupted run: the Job Objects die with this process and take the
/// workers with them.
pub(super) fn kill_worker_group(_pid: u32) {}

pub(super) fn shell_word(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:/\\=+,@".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "''"))
    }
}

/// Prepares a worker to die plainly: no error dialog may wait for a person,
/// and a crash ends the process at once with the exception's NTSTATUS as
/// its exit code, instead of starting a debugger (Windows Error Reporting;
/// winedbg under Wine, which would also print its dump into the plugin's
/// output). The Job Object takes care of the descendants.
pub(super) fn harden_worker() {
    use windows_sys::Win32::System::Diagnostics::Debug::{
        SEM_FAILCRITICALERRORS, SEM_NOGPFAULTERRORBOX, SEM_NOOPENFILEERRORBOX, SetErrorMode,
        SetUnhandledExceptionFilter,
    };
    // SAFETY: sets a process-wide flag word, and a filter that is a plain
    // function valid for the life of the process.
    unsafe {
        SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX | SEM_NOOPENFILEERRORBOX);
        SetUnhandledExceptionFilter(Some(end_on_crash));
    }
}

/// The unhandled-exception filter of a worker: tell the parent where the
/// crash was (see `crash`), then exit with the exception code, which the
/// parent decodes.
unsafe extern "system" fn end_on_crash(
    info: *const windows_sys::Win32::System::Diagnostics::Debug::EXCEPTION_POINTERS,
) -> i32 {
    use windows_sys::Win32::System::Threading::TerminateProcess;
    // SAFETY: the system passes valid exception pointers to the filter.
    unsafe { crash::report(info) };
    // SAFETY: the system passes valid exception pointers to the filter.
    let code = unsafe { info.as_ref().and_then(|info| info.ExceptionRecord.as_ref()) }
        .map_or(0xC000_0001_u32, |record| record.ExceptionCode as u32);
    // SAFETY: ends this process; nothing runs after it.
    unsafe {
        TerminateProcess(GetCurrentProcess(), code);
    }
    // EXCEPTION_EXECUTE_HANDLER, should TerminateProcess return.
    1
}

/// Job Objects hold every descendant: there are no orphans to adopt.
pub(super) fn become_subreaper() {}

/// No filter on Windows: a plugin can open and terminate its parent there
/// (README, "What a plugin cannot do to the harness").
pub(super) fn confine_worker() -> bool {
    false
}

/// Nothing to change: see [`reap_orphans`].
pub(super) fn embedded_in_application() {}

/// Job Objects hold every descendant: there are no orphans to reap.
pub(super) fn reap_orphans(_keep: &HashSet<u32>) {}

/// Nothing to expect: see [`reap_orphans`].
pub(super) fn expect_orphans() {}

/// See `os::PendingChannel`: a loopback listener the worker connects to.
pub type ChannelStream = std::net::TcpStream;

pub struct PendingChannel {
    listener: std::net::TcpListener,
    address: std::net::SocketAddr,
}

impl PendingChannel {
    pub(crate) fn open() -> std::io::Result<PendingChannel> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        let address = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        Ok(PendingChannel { listener, address })
    }

    /// What a worker is told of its channel: the address to connect to.
    pub(crate) fn worker_args(&self) -> Vec<std::ffi::OsString> {
        vec!["--connect".into(), self.address.to_string().into()]
    }

    pub(crate) fn take_worker_end(&mut self) -> Option<super::ChannelEnd> {
        None
    }

    /// The next connection, waiting at most `wait` for one (and waking
    /// the moment it comes); the caller checks it is its worker's.
    pub(crate) fn next(
        &mut self,
        wait: std::time::Duration,
    ) -> std::io::Result<Option<ChannelStream>> {
        match self.listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false)?;
                stream.set_nodelay(true)?;
                Ok(Some(stream))
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                wait_for_connection(&self.listener, wait);
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }
}

pub(super) fn join_channel(
    connect: Option<std::net::SocketAddr>,
    _fd: Option<i32>,
) -> std::io::Result<ChannelStream> {
    let Some(address) = connect else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a worker here connects to its parent: start it with `--connect ADDRESS`",
        ));
    };
    let stream = ChannelStream::connect(address)?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Both ends of a channel, connected (for tests of what reads one).
#[cfg(test)]
pub(super) fn channel_pair() -> std::io::Result<(ChannelStream, ChannelStream)> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    let theirs = ChannelStream::connect(listener.local_addr()?)?;
    Ok((listener.accept()?.0, theirs))
}

/// Waits until `listener` has a connection to accept, or `timeout` passes.
fn wait_for_connection(listener: &std::net::TcpListener, timeout: std::time::Duration) -> bool {
    use std::os::windows::io::AsRawSocket;
    use windows_sys::Win32::Networking::WinSock::{POLLRDNORM, WSAPOLLFD, WSAPoll};
    let mut fds = [WSAPOLLFD {
        fd: listener.as_raw_socket() as usize,
        events: POLLRDNORM,
        revents: 0,
    }];
    let millis = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one valid poll entry for a live socket.
    unsafe { WSAPoll(fds.as_mut_ptr(), 1, millis) > 0 }
}

/// Children of this process that are still running.
pub(super) fn running_child_processes() -> Vec<ProcessInfo> {
    child_processes()
}

/// When the process `handle` was made, in 100 ns ticks (`FILETIME`).
fn created_at(handle: HANDLE) -> Option<u64> {
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: a process handle and four writable FILETIMEs.
    let ok = unsafe { GetProcessTimes(handle, &mut created, &mut exited, &mut kernel, &mut user) };
    (ok != 0).then(|| (u64::from(created.dwHighDateTime) << 32) | u64::from(created.dwLowDateTime))
}

/// When process `pid` was made; `None` when it cannot be asked.
fn created_at_pid(pid: u32) -> Option<u64> {
    // SAFETY: OpenProcess takes any id; a handle it gives is closed below.
    let handle = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if handle.is_null() {
        return None;
    }
    let created = created_at(handle);
    // SAFETY: the handle was opened above and is closed once.
    unsafe { CloseHandle(handle) };
    created
}

/// Every child of this process, from a toolhelp snapshot. A process whose
/// parent id is ours but that is older than this process is not our
/// child: its parent died and the id was given to us (Wine reuses small
/// ids, and a prefix's `services.exe` outlives the process that started
/// it).
pub(super) fn child_processes() -> Vec<ProcessInfo> {
    let me = std::process::id();
    // SAFETY: the pseudo-handle of this process.
    let my_start = created_at(unsafe { GetCurrentProcess() });
    let mut children = Vec::new();
    let Some(snapshot) = Snapshot::take(TH32CS_SNAPPROCESS) else {
        return children;
    };
    // SAFETY: a zeroed entry with its size set is what Process32FirstW takes.
    let mut entry: PROCESSENTRY32W = unsafe { std::mem::zeroed() };
    entry.dwSize = std::mem::size_of::<PROCESSENTRY32W>() as u32;
    // SAFETY: the snapshot is live and `entry` is sized.
    let mut more = unsafe { Process32FirstW(snapshot.0, &mut entry) } != 0;
    while more {
        let older_than_me = || {
            my_start
                .zip(created_at_pid(entry.th32ProcessID))
                .is_some_and(|(mine, theirs)| theirs < mine)
        };
        if entry.th32ParentProcessID == me && entry.th32ProcessID != me && !older_than_me() {
            let len = entry
                .szExeFile
                .iter()
                .position(|&c| c == 0)
                .unwrap_or(entry.szExeFile.len());
            children.push(ProcessInfo {
                pid: entry.th32ProcessID,
                name: String::from_utf16_lossy(&entry.szExeFile[..len]),
            });
        }
        // SAFETY: as above.
        more = unsafe { Process32NextW(snapshot.0, &mut entry) } != 0;
    }
    children
}

pub(super) fn thread_count() -> u64 {
    let me = std::process::id();
    let Some(snapshot) = Snapshot::take(TH32CS_SNAPTHREAD) else {
        return 0;
    };
    // SAFETY: a zeroed entry with its size set is what Thread32First takes.
    let mut entry: THREADENTRY32 = unsafe { std::mem::zeroed() };
    entry.dwSize = std::mem::size_of::<THREADENTRY32>() as u32;
    let mut count = 0;
    // SAFETY: the snapshot is live and `entry` is sized.
    let mut more = unsafe { Thread32First(snapshot.0, &mut entry) } != 0;
    while more {
        if entry.th32OwnerProcessID == me {
            count += 1;
        }
        // SAFETY: as above.
        more = unsafe { Thread32Next(snapshot.0, &mut entry) } != 0;
    }
    count
}

/// Handles this process holds. Wine 8.0 answers 0 (a stub), so under Wine
/// handle leaks go unseen; real Windows counts them.
pub(super) fn open_handles() -> u64 {
    let mut count = 0u32;
    // SAFETY: the pseudo-handle of this process and a place for the count.
    unsafe { GetProcessHandleCount(GetCurrentProcess(), &mut count) };
    u64::from(count)
}

pub(super) fn mapped_bytes() -> u64 {
    use windows_sys::Win32::System::ProcessStatus::{
        GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS,
    };
    // SAFETY: a zeroed counters structure with its size passed.
    let mut counters: PROCESS_MEMORY_COUNTERS = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<PROCESS_MEMORY_COUNTERS>() as u32;
    // SAFETY: as above, for this process.
    if unsafe { GetProcessMemoryInfo(GetCurrentProcess(), &mut counters, size) } == 0 {
        return 0;
    }
    counters.PagefileUsage as u64
}

/// A toolhelp snapshot, closed when dropped.
struct Snapshot(HANDLE);

impl Snapshot {
    fn take(what: u32) -> Option<Snapshot> {
        // SAFETY: a snapshot of the whole system.
        let handle = unsafe { CreateToolhelp32Snapshot(what, 0) };
        (handle != INVALID_HANDLE_VALUE && !handle.is_null()).then_some(Snapshot(handle))
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        // SAFETY: closed once.
        unsafe {
            CloseHandle(self.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_keep_backslashes_and_quote_what_powershell_would_split() {
        assert_eq!(super::shell_word("Z:\\dir\\x.dll"), "Z:\\dir\\x.dll");
        assert_eq!(
            super::shell_word("C:\\My Plugins\\it's.dll"),
            "'C:\\My Plugins\\it''s.dll'"
        );
        assert_eq!(super::shell_word(""), "''");
    }

    #[test]
    fn crash_codes_decode_to_ntstatus_names() {
        use std::os::windows::process::ExitStatusExt;
        assert_eq!(
            decode_exit(ExitStatus::from_raw(0xC000_0005)),
            Termination::NtStatus {
                code: "0xC0000005".into(),
                name: Some("STATUS_ACCESS_VIOLATION".into())
            }
        );
        assert_eq!(
            decode_exit(ExitStatus::from_raw(3)),
            Termination::Exited { code: 3 }
        );
    }

    #[test]
    fn a_spawned_child_is_listed() {
        let mut child = Command::new("cmd")
            .args(["/c", "ping", "-n", "30", "127.0.0.1"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let listed = child_processes().iter().any(|c| c.pid == pid);
        let _ = child.kill();
        let _ = child.wait();
        assert!(listed);
    }

    #[test]
    fn resource_counts_are_plausible() {
        assert!(thread_count() >= 1);
        assert!(mapped_bytes() > 0);
        // No lower bound on handles: Wine 8.0's GetProcessHandleCount
        // answers 0, so handle growth is not seen under Wine.
    }
}
