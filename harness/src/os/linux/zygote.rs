//! Worker starts without `exec`: a spare worker and a zygote, both forked
//! from plugcheck first thing in `main`, while it has one thread and has
//! touched little memory.
//!
//! Starting a worker as a new program costs an `exec` of a 6 MB binary,
//! the dynamic loader and the Rust runtime before the worker can connect:
//! about as much as the whole physical floor (a C spawner starting a C
//! child that opens the plugin, 1.0–1.3 ms here). The harness cannot fork
//! its workers itself: by then it runs threads (output capture, teardown,
//! other plugins' jobs), and a fork of a threaded process may inherit a
//! lock some other thread held, locked forever.
//!
//! - The **spare** is a worker forked ahead: the harness's child in a
//!   process group of its own, parked until it is sent a command line. The
//!   first worker of a run costs one message.
//! - The **zygote** forks every later worker twice (zygote → intermediate →
//!   worker); the intermediate exits at once, so the worker is re-parented
//!   to the harness, a subreaper, before the zygote answers with its pid.
//!
//! Either way a worker is the harness's own child, like a spawned one:
//! waited for, its death decoded and its process group killed the same
//! way; it dies with the harness (`PR_SET_PDEATHSIG`, set by the worker
//! once it has its real parent), and it runs the same `__worker` code with
//! the same arguments, environment and output ends.
//!
//! A request travels over a `SOCK_SEQPACKET` pair: the command line and
//! environment as JSON, the two output ends as `SCM_RIGHTS`; the zygote
//! answers with the worker's pid or an errno. A helper that fails (died,
//! silent past `ANSWER_WAIT`) is ended, and workers start as programs from
//! then on: the helpers are a shortcut, never a requirement.

use std::ffi::OsString;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr,
    recvmsg, sendmsg, setsockopt, socketpair, sockopt,
};
use nix::sys::time::TimeVal;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork, getppid, setpgid};

use crate::os::WorkerMain;

/// The largest request the zygote reads: a worker's command line and
/// environment (a plugin path is at most 4 KiB).
const MAX_REQUEST: usize = 64 * 1024;
/// How long the harness waits for the zygote's answer; a fork takes well
/// under a millisecond, so a zygote this late is broken.
const ANSWER_WAIT: Duration = Duration::from_secs(5);
/// How long a forked worker waits to be re-parented to the harness.
const REPARENT_WAIT: Duration = Duration::from_secs(2);

/// A process of ours that waits for requests over a channel: the zygote,
/// or the spare worker.
struct Helper {
    channel: OwnedFd,
    pid: Pid,
}

/// The harness's side of what `start` forked.
struct Helpers {
    /// The program they are copies of: they serve workers of this program
    /// only.
    exe: PathBuf,
    zygote: Option<Helper>,
    /// A worker forked at start, waiting for its command line: the first
    /// worker of a run then costs one message, not a fork.
    spare: Option<Helper>,
    /// Helpers killed (by `stop`, or on failing), reaped by `end`.
    retired: Vec<Pid>,
}

static HELPERS: Mutex<Option<Helpers>> = Mutex::new(None);

/// The helpers' pids while they run (0: none): children of ours that are
/// not orphans, for the orphan reaper, which must not take the lock above.
static ZYGOTE_PID: AtomicI32 = AtomicI32::new(0);
static SPARE_PID: AtomicI32 = AtomicI32::new(0);

fn helpers() -> std::sync::MutexGuard<'static, Option<Helpers>> {
    HELPERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What the harness asks for: a worker with this command line (program
/// name first) and these variables on top of the zygote's environment.
#[derive(serde::Serialize, serde::Deserialize)]
struct Request {
    argv: Vec<Vec<u8>>,
    environment: Vec<(String, String)>,
    /// The working directory the worker changes to.
    cwd: Vec<u8>,
}

/// Forks the zygote and the spare worker, if this process has a single
/// thread (checked, not assumed: a fork copies only the calling thread, so
/// any other thread's locks would stay locked in the copy forever).
pub fn start(worker_main: WorkerMain) {
    if super::thread_count() != 1 || helpers().is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let harness = Harness {
        pid: nix::unistd::getpid(),
        worker_main,
    };
    let zygote = fork_helper(None, serve, harness);
    let spare = fork_helper(zygote.as_ref(), park, harness);
    if let Some(spare) = &spare {
        // Its own group from the start, as a spawned worker has.
        let _ = setpgid(spare.pid, spare.pid);
    }
    ZYGOTE_PID.store(
        zygote.as_ref().map_or(0, |z| z.pid.as_raw()),
        Ordering::SeqCst,
    );
    SPARE_PID.store(
        spare.as_ref().map_or(0, |s| s.pid.as_raw()),
        Ordering::SeqCst,
    );
    *helpers() = Some(Helpers {
        exe,
        zygote,
        spare,
        retired: Vec::new(),
    });
}

/// Forks a helper that runs `life` on its end of a new channel. The copy
/// closes `sibling`'s channel: a worker must not reach the zygote.
fn fork_helper(
    sibling: Option<&Helper>,
    life: fn(OwnedFd, Harness) -> !,
    harness: Harness,
) -> Option<Helper> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ok()?;
    let timeout = TimeVal::new(ANSWER_WAIT.as_secs() as i64, 0);
    setsockopt(&ours, sockopt::ReceiveTimeout, &timeout).ok()?;
    // SAFETY: this process has one thread (checked by `start`), so the
    // child is a complete copy with no lock held by a thread that is not
    // there.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(ours);
            if let Some(sibling) = sibling {
                // SAFETY: the copy of the sibling's channel end is never
                // used here; closing it leaves the harness's own intact.
                unsafe {
                    libc::close(sibling.channel.as_raw_fd());
                }
            }
            life(theirs, harness)
        }
        Ok(ForkResult::Parent { child }) => Some(Helper {
            channel: ours,
            pid: child,
        }),
        Err(_) => None,
    }
}

/// Whether `pid` is the zygote or the spare worker: a child of the
/// harness that is neither a worker nor an orphan.
pub fn is_helper(pid: u32) -> bool {
    let pid = pid as i32;
    pid != 0
        && (ZYGOTE_PID.load(Ordering::SeqCst) == pid || SPARE_PID.load(Ordering::SeqCst) == pid)
}

/// Starts a worker for `launch` from the spare or the zygote, if they
/// serve its program. `None`: nothing serves it (none runs, another
/// program, or they just failed and were ended); start the program instead.
pub fn start_worker(launch: &crate::os::WorkerLaunch) -> Option<std::io::Result<u32>> {
    let mut guard = helpers();
    let helpers = guard.as_mut()?;
    if launch.exe != helpers.exe {
        return None;
    }
    let request = Request {
        argv: std::iter::once(launch.exe.as_os_str())
            .chain(launch.args.iter().map(OsString::as_os_str))
            .map(|arg| arg.as_bytes().to_vec())
            .collect(),
        environment: launch
            .environment
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect(),
        cwd: launch.cwd.as_os_str().as_bytes().to_vec(),
    };
    if let Some(spare) = helpers.spare.take() {
        // The spare is our child already: once it has the request, it is
        // the worker.
        if send_request(&spare.channel, &request, launch).is_ok() {
            SPARE_PID.store(0, Ordering::SeqCst);
            return Some(Ok(spare.pid.as_raw() as u32));
        }
        helpers.retire(spare);
    }
    let zygote = helpers.zygote.as_ref()?;
    let answer =
        send_request(&zygote.channel, &request, launch).and_then(|()| read_answer(&zygote.channel));
    match answer {
        Ok(pid) if pid > 0 => Some(Ok(pid as u32)),
        Ok(errno) => Some(Err(std::io::Error::from_raw_os_error(-errno))),
        Err(_) => {
            // A zygote that cannot be asked is ended; workers start as
            // programs from now on.
            if let Some(broken) = helpers.zygote.take() {
                helpers.retire(broken);
            }
            None
        }
    }
}

impl Helpers {
    /// Kills a helper without waiting for it; [`end`] reaps it. Until then
    /// it stays a helper to the orphan reaper.
    fn retire(&mut self, helper: Helper) {
        drop(helper.channel);
        let _ = kill(helper.pid, Signal::SIGKILL);
        self.retired.push(helper.pid);
    }
}

/// Kills the zygote and an unused spare without waiting for them to die,
/// which then overlaps the rest of the run; [`end`] reaps them. Workers
/// start as programs after this.
pub fn stop() {
    if let Some(helpers) = helpers().as_mut() {
        for helper in [helpers.zygote.take(), helpers.spare.take()]
            .into_iter()
            .flatten()
        {
            helpers.retire(helper);
        }
    }
}

/// Ends the zygote and an unused spare, and reaps every helper.
pub fn end() {
    stop();
    if let Some(helpers) = helpers().take() {
        for pid in helpers.retired {
            while let Err(Errno::EINTR) = waitpid(pid, None) {}
        }
        // Only now: until reaped, they are not orphans to the reaper.
        ZYGOTE_PID.store(0, Ordering::SeqCst);
        SPARE_PID.store(0, Ordering::SeqCst);
    }
}

/// Sends one request with the two output ends.
fn send_request(
    channel: &OwnedFd,
    request: &Request,
    launch: &crate::os::WorkerLaunch,
) -> Result<(), Errno> {
    let bytes = serde_json::to_vec(request).map_err(|_| Errno::EINVAL)?;
    if bytes.len() > MAX_REQUEST {
        return Err(Errno::E2BIG);
    }
    let fds = [launch.stdout.as_raw_fd(), launch.stderr.as_raw_fd()];
    let sent = sendmsg::<UnixAddr>(
        channel.as_raw_fd(),
        &[IoSlice::new(&bytes)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    if sent == bytes.len() {
        Ok(())
    } else {
        Err(Errno::EIO)
    }
}

/// The zygote's answer: a pid, or a negative errno. An `Err` is the
/// zygote's failure (dead, or silent past `ANSWER_WAIT`), not the worker's.
fn read_answer(channel: &OwnedFd) -> Result<i32, Errno> {
    let mut answer = [0u8; 4];
    loop {
        match nix::sys::socket::recv(channel.as_raw_fd(), &mut answer, MsgFlags::empty()) {
            Ok(4) => return Ok(i32::from_le_bytes(answer)),
            Ok(_) => return Err(Errno::EIO),
            Err(Errno::EINTR) => {}
            Err(error) => return Err(error),
        }
    }
}

/// What a helper knows of its harness.
#[derive(Clone, Copy)]
struct Harness {
    pid: Pid,
    worker_main: WorkerMain,
}

/// A request as a helper received it: what the worker is to be.
struct Assignment {
    request: Request,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

/// What a helper's channel gave it.
enum Received {
    Assignment(Assignment),
    /// Not a whole request with exactly two descriptors.
    Invalid,
    /// The harness closed the channel.
    Closed,
}

/// The spare's life: wait for one request, then become that worker. The
/// harness closing the channel (or dying) ends it.
fn park(channel: OwnedFd, harness: Harness) -> ! {
    die_with(harness.pid);
    quiet_stdio();
    let mut buffer = vec![0u8; MAX_REQUEST];
    loop {
        match receive(&channel, &mut buffer) {
            Ok(Received::Assignment(assignment)) => become_worker(assignment, &channel, harness),
            Err(Errno::EINTR) => {}
            Ok(Received::Invalid) => exit_now(1),
            Ok(Received::Closed) | Err(_) => exit_now(0),
        }
    }
}

/// Has the kernel kill this helper when the harness dies, and exits now if
/// it already has.
fn die_with(harness: Pid) {
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and touches no memory.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
    }
    if getppid() != harness {
        exit_now(0);
    }
}

/// The zygote's life: a fork per request until the harness closes the
/// channel (or dies: then the kernel kills the zygote).
fn serve(channel: OwnedFd, harness: Harness) -> ! {
    die_with(harness.pid);
    // The zygote keeps none of the harness's terminal or pipes: a reader
    // of the harness's stdout must see its end when the harness exits.
    quiet_stdio();
    let mut buffer = vec![0u8; MAX_REQUEST];
    loop {
        let answer = match receive(&channel, &mut buffer) {
            Ok(Received::Assignment(assignment)) => fork_worker(assignment, &channel, harness),
            Ok(Received::Invalid) => -libc::EINVAL,
            Err(Errno::EINTR) => continue,
            Ok(Received::Closed) | Err(_) => exit_now(0),
        };
        let _ = nix::sys::socket::send(
            channel.as_raw_fd(),
            &answer.to_le_bytes(),
            MsgFlags::MSG_NOSIGNAL,
        );
    }
}

/// Reads one request and its descriptors.
fn receive(channel: &OwnedFd, buffer: &mut [u8]) -> Result<Received, Errno> {
    let mut space = nix::cmsg_space!([RawFd; 2]);
    let mut slices = [IoSliceMut::new(buffer)];
    let message = recvmsg::<UnixAddr>(
        channel.as_raw_fd(),
        &mut slices,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut received: Vec<OwnedFd> = Vec::new();
    for control in message.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = control {
            // SAFETY: the kernel just installed these descriptors in this
            // process for us; nothing else owns them.
            received.extend(
                fds.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    let length = message.bytes;
    let whole = !message
        .flags
        .intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC);
    if length == 0 && received.is_empty() {
        return Ok(Received::Closed);
    }
    let request = serde_json::from_slice::<Request>(&buffer[..length]);
    Ok(match (<[OwnedFd; 2]>::try_from(received), request) {
        (Ok([stdout, stderr]), Ok(request)) if whole => Received::Assignment(Assignment {
            request,
            stdout,
            stderr,
        }),
        _ => Received::Invalid,
    })
}

/// Forks the intermediate, which forks the worker, tells us its pid and
/// exits. Once the intermediate is reaped the worker is the harness's
/// child: only then is its pid the answer.
fn fork_worker(assignment: Assignment, channel: &OwnedFd, harness: Harness) -> i32 {
    let Ok((pid_reader, pid_writer)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
        return -libc::EMFILE;
    };
    // SAFETY: the zygote has a single thread.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(pid_reader);
            // SAFETY: the intermediate has a single thread.
            let answer = match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    drop(pid_writer);
                    become_worker(assignment, channel, harness)
                }
                Ok(ForkResult::Parent { child }) => {
                    // The group is set on both sides, so it exists by the
                    // time the harness hears of the worker.
                    let _ = setpgid(child, child);
                    child.as_raw()
                }
                Err(error) => -(error as i32),
            };
            let _ = nix::unistd::write(&pid_writer, &answer.to_le_bytes());
            exit_now(0)
        }
        Ok(ForkResult::Parent {
            child: intermediate,
        }) => {
            drop(pid_writer);
            drop(assignment);
            let mut answer = [0u8; 4];
            let read = read_all(pid_reader.as_fd(), &mut answer);
            while let Err(Errno::EINTR) = waitpid(intermediate, None) {}
            if read {
                i32::from_le_bytes(answer)
            } else {
                -libc::EIO
            }
        }
        Err(error) => -(error as i32),
    }
}

fn read_all(fd: std::os::fd::BorrowedFd, buffer: &mut [u8]) -> bool {
    let mut filled = 0;
    while filled < buffer.len() {
        match nix::unistd::read(fd, &mut buffer[filled..]) {
            Ok(0) => return false,
            Ok(read) => filled += read,
            Err(Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
    true
}

/// The worker's start: wait to be the harness's child, lead a process
/// group, take the output ends and the environment, then run as
/// `plugcheck __worker` would.
fn become_worker(assignment: Assignment, channel: &OwnedFd, harness: Harness) -> ! {
    // SAFETY: closing the zygote's channel end, which this copy must not
    // keep (the plugin could write into it); nothing else uses it here.
    unsafe {
        libc::close(channel.as_raw_fd());
    }
    let deadline = Instant::now() + REPARENT_WAIT;
    while getppid() != harness.pid {
        // The harness died meanwhile (re-parented elsewhere), or the
        // intermediate never exited: no one would ever judge this worker.
        if Instant::now() >= deadline {
            exit_now(1);
        }
        std::thread::yield_now();
    }
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    let Assignment {
        request,
        stdout,
        stderr,
    } = assignment;
    if nix::unistd::dup2_stdout(&stdout).is_err() || nix::unistd::dup2_stderr(&stderr).is_err() {
        exit_now(1);
    }
    drop(stdout);
    drop(stderr);
    for (name, value) in request.environment {
        // SAFETY: this process has one thread: nothing reads the
        // environment concurrently.
        unsafe { std::env::set_var(name, value) };
    }
    // A worker that cannot be where its files are meant to go does not
    // run in the user's directory instead.
    if std::env::set_current_dir(OsString::from_vec(request.cwd)).is_err() {
        exit_now(1);
    }
    let argv = request.argv.into_iter().map(OsString::from_vec).collect();
    // A panic must end this process here, as it would end a worker started
    // as a program: unwinding further would return into the helper's loop.
    let code = std::panic::catch_unwind(|| (harness.worker_main)(argv)).unwrap_or(101);
    std::process::exit(code)
}

/// Stdin, stdout and stderr onto /dev/null.
fn quiet_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        let _ = nix::unistd::dup2_stdin(&null);
        let _ = nix::unistd::dup2_stdout(&null);
        let _ = nix::unistd::dup2_stderr(&null);
    }
}

/// Exits without running anything of the harness's: no atexit handler, no
/// flush of buffers that are the harness's copies.
fn exit_now(code: i32) -> ! {
    // SAFETY: _exit ends the process at once; it touches no memory.
    unsafe { libc::_exit(code) }
}
