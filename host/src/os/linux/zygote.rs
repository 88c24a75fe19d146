//! Worker starts without `exec`: a spare worker forked from plugcheck
//! first thing in `main`, while it has one thread and has touched little
//! memory, and — for a command that may start several workers (`check`,
//! `init`, `watch`) — a zygote the spare forks beside itself.
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
//!   process group of its own (or, with a namespace, the only child of
//!   the namespace's supervisor, prepared at start too: the supervisor is
//!   forked `CLONE_PARENT`, the harness's child at once, and the parked
//!   worker installs its seccomp filter while it waits), parked until it
//!   is sent its assignment. The first worker of a run costs one message.
//! - The **zygote** forks every later worker twice (zygote → intermediate →
//!   worker); the intermediate exits at once, so the worker is re-parented
//!   to the harness, a subreaper, before the zygote answers with its pid.
//!   The spare forks it first thing (`CLONE_PARENT`, so it is the
//!   harness's child) on a channel the harness made, and names it in its
//!   first message: a fork the harness does not pay for.
//!
//! Either way a worker is the harness's own child, like a spawned one:
//! waited for, its death decoded and its process group killed the same
//! way; it dies with the harness (`PR_SET_PDEATHSIG`, set by the worker
//! once it has its real parent), and it runs the same `__worker` code with
//! the same arguments, environment and output ends.
//!
//! **Out of the plugin's reach.** Each worker runs in a PID namespace of
//! its own (`unshare(CLONE_NEWPID)`; for a user without the privilege,
//! with a user namespace mapping only its own ids: `CLONE_NEWUSER`). The
//! harness, the helpers and the other plugins' workers have no pid there,
//! so the plugin cannot signal, trace or read them (`kill(getppid(), …)`,
//! `kill(-1, …)`, `ptrace`, `process_vm_writev` name nothing outside).
//! The namespace's first process is its init, which the kernel shields
//! from signals sent inside and whose death kills everything in it; so
//! the first process is a small **supervisor** (a fork of the helper, no
//! `exec`) that forks the real worker, waits for it, and hands its exact
//! wait status (exit code, or signal and core) to the harness through a
//! pipe of its own: the harness waits for the supervisor, decodes the
//! worker's status, and kills the whole namespace by killing the
//! supervisor. The supervisor also watches the harness through a pipe
//! only the harness holds open, and ends (and the namespace with it) when
//! the harness is gone, however it died. Where the kernel refuses both
//! namespaces (a seccomp profile, a sysctl), the worker is forked beside
//! the harness as before, and `confine.rs`'s filter is the defence.
//!
//! A request travels over a `SOCK_SEQPACKET` pair: the command line and
//! environment as JSON, the two output ends as `SCM_RIGHTS`; the zygote
//! answers with the worker's pid or an errno. A helper that fails (died,
//! silent past `ANSWER_WAIT`) is ended, and workers start as programs from
//! then on: the helpers are a shortcut, never a requirement.

use std::ffi::OsString;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
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

/// A worker a helper started: the harness's child to wait for (the
/// supervisor of its namespace, or the worker itself), and where the
/// worker's own status comes from.
pub(super) struct Started {
    pub pid: u32,
    /// The read end of the supervisor's status pipe: the worker's wait
    /// status, 4 bytes, once the supervisor has ended. `None`: the worker
    /// is the child itself (no namespace).
    pub relay: Option<OwnedFd>,
}

/// What a helper answers: the pid the harness waits for, or a negative
/// errno, and whether that pid is a namespace's supervisor.
const ANSWER_LEN: usize = 8;

/// The write end of the pipe only the harness holds open: supervisors read
/// its end (`Harness::life`) to learn the harness is gone.
static LIFE_WRITER: AtomicI32 = AtomicI32::new(-1);

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
    /// Its pid is 0 until the spare's first message names it.
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
/// The spare once it has handed over its namespace's supervisor: exiting,
/// reaped by [`end`].
static FORMER_SPARE_PID: AtomicI32 = AtomicI32::new(0);

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
    /// Another program than plugcheck's (the Go worker): the worker
    /// process `exec`s it, inside its namespace, under its filter.
    #[serde(default)]
    exec: bool,
    /// What a worker of plugcheck's own runs (`WorkerMain`), as data.
    #[serde(default)]
    assignment: Vec<u8>,
}

/// Forks the spare worker, unless it runs already, and — for a command
/// that may start more than one worker (`with_zygote`) — has the spare
/// fork the zygote beside it, off this process's path. Only while this
/// process has a single thread (the caller checks, not assumes: a fork
/// copies only the calling thread, so any other thread's locks would stay
/// locked in the copy forever).
pub(super) fn start(worker_main: WorkerMain, with_zygote: bool) {
    if helpers().is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    // Held open by this process alone, for as long as it lives: its end
    // is what a namespace's supervisor watches.
    let Ok((life_reader, life_writer)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
        return;
    };
    // The zygote's channel: our end here, the zygote's end handed to the
    // spare, which forks the zygote and gives it that end alone.
    let zygote_channel = with_zygote.then(helper_channel).flatten();
    let harness = Harness {
        pid: nix::unistd::getpid(),
        proc_pid: std::fs::read_link("/proc/self")
            .ok()
            .and_then(|link| link.to_str()?.parse().ok())
            .unwrap_or_else(|| nix::unistd::getpid().as_raw()),
        worker_main,
        life: life_reader.as_raw_fd(),
        life_writer: life_writer.as_raw_fd(),
        zygote_end: zygote_channel
            .as_ref()
            .map_or(-1, |(_, theirs)| theirs.as_raw_fd()),
    };
    // Never closed here: both ends stay for the life of the process (the
    // reader for later helpers' copies).
    std::mem::forget(life_reader);
    LIFE_WRITER.store(life_writer.into_raw_fd(), Ordering::SeqCst);
    // The spare (and the zygote it forks) must not hold our end of the
    // zygote's channel: the zygote reads its end to learn we are gone.
    let spare = fork_helper(
        zygote_channel.as_ref().map(|(ours, _)| ours.as_raw_fd()),
        park,
        harness,
    );
    if let Some(spare) = &spare {
        // Its own group from the start, as a spawned worker has.
        let _ = setpgid(spare.pid, spare.pid);
    }
    // Its pid comes with the spare's first message; without a spare there
    // is no zygote either.
    let zygote = match (zygote_channel, &spare) {
        (Some((ours, _theirs)), Some(_)) => Some(Helper {
            channel: ours,
            pid: Pid::from_raw(0),
        }),
        _ => None,
    };
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

/// A helper's channel: a datagram socket pair, ours first, whose answers
/// we wait for at most `ANSWER_WAIT`.
fn helper_channel() -> Option<(OwnedFd, OwnedFd)> {
    let (ours, theirs) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .ok()?;
    let timeout = TimeVal::new(ANSWER_WAIT.as_secs() as i64, 0);
    setsockopt(&ours, sockopt::ReceiveTimeout, &timeout).ok()?;
    Some((ours, theirs))
}

/// Forks a helper that runs `life` on its end of a new channel. The copy
/// closes `sibling`, our end of another helper's channel (it has no use
/// for it, and must not hold the end that tells that helper the harness
/// is gone).
fn fork_helper(
    sibling: Option<RawFd>,
    life: fn(OwnedFd, Harness) -> !,
    harness: Harness,
) -> Option<Helper> {
    let (ours, theirs) = helper_channel()?;
    // SAFETY: this process has one thread (checked by `start`), so the
    // child is a complete copy with no lock held by a thread that is not
    // there.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(ours);
            // SAFETY: closing this copy of the harness's life pipe end,
            // which only the harness may hold.
            unsafe {
                libc::close(harness.life_writer);
            }
            if let Some(sibling) = sibling {
                // SAFETY: the copy of the sibling's channel end is never
                // used here; closing it leaves the harness's own intact.
                unsafe {
                    libc::close(sibling);
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
pub(super) fn is_helper(pid: u32) -> bool {
    let pid = pid as i32;
    pid != 0
        && [&ZYGOTE_PID, &SPARE_PID, &FORMER_SPARE_PID]
            .iter()
            .any(|helper| helper.load(Ordering::SeqCst) == pid)
}

/// Starts a worker for `launch` from the spare or the zygote, if they
/// serve its program. `None`: nothing serves it (none runs, another
/// program, or they just failed and were ended); start the program instead.
pub(super) fn start_worker(launch: &crate::os::WorkerLaunch) -> Option<std::io::Result<Started>> {
    let mut guard = helpers();
    let helpers = guard.as_mut()?;
    let exec = launch.exe != helpers.exe;
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
        exec,
        assignment: launch.assignment.clone(),
    };
    let Ok((relay_reader, relay_writer)) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
    else {
        return None;
    };
    if let Some(mut spare) = helpers.spare.take() {
        // The spare is our child (or its namespace's supervisor is), with
        // a worker parked: once it has the request, it is the worker.
        let ready = spare_ready(&mut spare);
        helpers.zygote_is(ready.as_ref().map_or(0, |ready| ready.zygote));
        match ready {
            Ok(ready) if send_request(&spare.channel, &request, launch, &relay_writer).is_ok() => {
                SPARE_PID.store(0, Ordering::SeqCst);
                return Some(Ok(Started {
                    pid: spare.pid.as_raw() as u32,
                    relay: if ready.namespaced { ready.relay } else { None },
                }));
            }
            _ => helpers.retire(spare),
        }
    }
    let zygote = helpers.zygote.as_ref()?;
    let answer = send_request(&zygote.channel, &request, launch, &relay_writer)
        .and_then(|()| read_answer(&zygote.channel));
    drop(relay_writer);
    match answer {
        Ok((pid, namespaced)) if pid > 0 => Some(Ok(Started {
            pid: pid as u32,
            relay: namespaced.then_some(relay_reader),
        })),
        Ok((errno, _)) => Some(Err(std::io::Error::from_raw_os_error(-errno))),
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
        // A zygote whose pid never came is not known: pid 0 would name
        // our own process group.
        if helper.pid.as_raw() > 0 {
            let _ = kill(helper.pid, Signal::SIGKILL);
            self.retired.push(helper.pid);
        }
    }

    /// Records the zygote the spare's first message named: its pid for
    /// the orphan reaper and the end; none forked, or none named, and its
    /// channel goes (a zygote that was forked then reads its end and
    /// exits, and is reaped as an orphan).
    fn zygote_is(&mut self, pid: i32) {
        match self.zygote.as_mut() {
            Some(zygote) if pid > 0 => {
                zygote.pid = Pid::from_raw(pid);
                ZYGOTE_PID.store(pid, Ordering::SeqCst);
            }
            _ => self.zygote = None,
        }
    }
}

/// Kills the zygote and an unused spare without waiting for them to die,
/// which then overlaps the rest of the run; [`end`] reaps them. Workers
/// start as programs after this.
pub(super) fn stop() {
    if let Some(helpers) = helpers().as_mut() {
        if let Some(spare) = helpers.spare.as_mut() {
            // An unused spare may be a namespace's supervisor by now: that
            // is the process to kill; and it names the zygote.
            let ready = spare_ready(spare);
            helpers.zygote_is(ready.map_or(0, |ready| ready.zygote));
        }
        for helper in [helpers.zygote.take(), helpers.spare.take()]
            .into_iter()
            .flatten()
        {
            helpers.retire(helper);
        }
    }
}

/// Ends the zygote and an unused spare, and reaps every helper.
pub(super) fn end() {
    stop();
    if let Some(helpers) = helpers().take() {
        let former_spare = FORMER_SPARE_PID.load(Ordering::SeqCst);
        for pid in helpers
            .retired
            .into_iter()
            .chain((former_spare != 0).then(|| Pid::from_raw(former_spare)))
        {
            while let Err(Errno::EINTR) = waitpid(pid, None) {}
        }
        // Only now: until reaped, they are not orphans to the reaper.
        ZYGOTE_PID.store(0, Ordering::SeqCst);
        SPARE_PID.store(0, Ordering::SeqCst);
        FORMER_SPARE_PID.store(0, Ordering::SeqCst);
    }
}

/// Sends one request with the two output ends and the status pipe's
/// write end.
fn send_request(
    channel: &OwnedFd,
    request: &Request,
    launch: &crate::os::WorkerLaunch,
    relay: &OwnedFd,
) -> Result<(), Errno> {
    let bytes = serde_json::to_vec(request).map_err(|_| Errno::EINVAL)?;
    if bytes.len() > MAX_REQUEST {
        return Err(Errno::E2BIG);
    }
    let fds: Vec<RawFd> = [
        launch.stdout.as_raw_fd(),
        launch.stderr.as_raw_fd(),
        relay.as_raw_fd(),
    ]
    .into_iter()
    .chain(launch.channel.as_ref().map(|end| end.as_raw_fd()))
    .collect();
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

/// A helper's answer: a pid, or a negative errno, and whether the pid is
/// a namespace's supervisor. An `Err` is the helper's failure (dead, or
/// silent past `ANSWER_WAIT`), not the worker's.
fn read_answer(channel: &OwnedFd) -> Result<(i32, bool), Errno> {
    let mut answer = [0u8; ANSWER_LEN];
    loop {
        match nix::sys::socket::recv(channel.as_raw_fd(), &mut answer, MsgFlags::empty()) {
            Ok(ANSWER_LEN) => return Ok(decode_answer(answer)),
            Ok(_) => return Err(Errno::EIO),
            Err(Errno::EINTR) => {}
            Err(error) => return Err(error),
        }
    }
}

fn encode_answer(pid: i32, namespaced: bool) -> [u8; ANSWER_LEN] {
    let mut answer = [0u8; ANSWER_LEN];
    answer[..4].copy_from_slice(&pid.to_le_bytes());
    answer[4] = u8::from(namespaced);
    answer
}

fn decode_answer(answer: [u8; ANSWER_LEN]) -> (i32, bool) {
    let pid = i32::from_le_bytes([answer[0], answer[1], answer[2], answer[3]]);
    (pid, answer[4] == 1)
}

/// What a helper knows of its harness.
#[derive(Clone, Copy)]
struct Harness {
    pid: Pid,
    /// Its number as `/proc` gives it (`pid` is its own namespace's,
    /// which `/proc` may not show): what a plugin reading `/proc` finds.
    proc_pid: i32,
    worker_main: WorkerMain,
    /// The read end of the pipe only the harness holds open.
    life: RawFd,
    /// Its write end's number, which every helper closes at once.
    life_writer: RawFd,
    /// The zygote's end of its channel, for the spare to fork the zygote
    /// with (-1: no zygote).
    zygote_end: RawFd,
}

/// A request as a helper received it: what the worker is to be.
struct Assignment {
    request: Request,
    stdout: OwnedFd,
    stderr: OwnedFd,
    /// Where a namespace's supervisor writes the worker's wait status.
    relay: OwnedFd,
    /// The worker's end of its channel to the harness: a request without
    /// one is no assignment (every launch here hands one over).
    channel: OwnedFd,
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
    let zygote = fork_zygote(&channel, harness);
    // Prepared ahead, while the harness goes on starting: the namespace,
    // its supervisor, and the worker parked in it. The harness learns the
    // supervisor's pid and its status pipe from the first message, and
    // its first worker then costs one message, as without a namespace.
    if enter_namespace() {
        let Ok((relay_reader, relay_writer)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        else {
            exit_now(1)
        };
        match fork_beside_me() {
            Ok(ForkResult::Child) => {
                drop(relay_reader);
                supervise(
                    Job::Parked {
                        relay: relay_writer,
                    },
                    &channel,
                    harness,
                )
            }
            Ok(ForkResult::Parent { child }) => {
                // Not ours to put in a group: the supervisor leads its own.
                drop(relay_writer);
                let _ = send_ready(
                    &channel,
                    encode_answer(child.as_raw(), true),
                    zygote,
                    Some(&relay_reader),
                );
                exit_now(0)
            }
            Err(error) => {
                let _ = send_ready(
                    &channel,
                    encode_answer(-(error as i32), false),
                    zygote,
                    None,
                );
                exit_now(1)
            }
        }
    }
    // No namespace: the spare is the worker, as it is.
    let me = nix::unistd::getpid().as_raw();
    let _ = send_ready(&channel, encode_answer(me, false), zygote, None);
    wait_for_assignment(&channel, harness, Parent::Harness)
}

/// In the spare, first thing: forks the zygote beside it (the harness's
/// child, `CLONE_PARENT`) on the end of its channel the harness made, so
/// the harness pays no fork for it. Its pid, for the spare's first
/// message; 0 when there is none.
fn fork_zygote(spare_channel: &OwnedFd, harness: Harness) -> i32 {
    if harness.zygote_end < 0 {
        return 0;
    }
    match fork_beside_me() {
        Ok(ForkResult::Child) => {
            // SAFETY: the copy of the spare's channel is the spare's, not
            // the zygote's; closing it leaves the spare's own intact.
            unsafe {
                libc::close(spare_channel.as_raw_fd());
            }
            // SAFETY: handed to the spare for the zygote alone; owned by
            // the zygote from here.
            let channel = unsafe { OwnedFd::from_raw_fd(harness.zygote_end) };
            serve(channel, harness)
        }
        Ok(ForkResult::Parent { child }) => {
            // SAFETY: the zygote's end is the zygote's now; the spare's
            // copy goes.
            unsafe {
                libc::close(harness.zygote_end);
            }
            child.as_raw()
        }
        Err(_) => {
            // SAFETY: as above: the spare's copy goes, and with it the
            // zygote's channel: the harness sees no zygote.
            unsafe {
                libc::close(harness.zygote_end);
            }
            0
        }
    }
}

/// Forks a child of this process's parent, not of this process
/// (`CLONE_PARENT`): the spare's supervisor is the harness's child from
/// the start, so the harness need not wait for the spare to exit (and the
/// supervisor to be re-parented) before its first worker can start. A
/// single-threaded process only, as for `fork`.
fn fork_beside_me() -> Result<ForkResult, Errno> {
    // SAFETY: clone without CLONE_VM and without a new stack continues in
    // a copy of this process, as fork does; this process has one thread,
    // and nothing of ours relies on fork handlers.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::CLONE_PARENT | libc::SIGCHLD,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match pid {
        -1 => Err(Errno::last()),
        0 => Ok(ForkResult::Child),
        pid => Ok(ForkResult::Parent {
            child: Pid::from_raw(pid as i32),
        }),
    }
}

/// A parked worker's wait: the first request makes it that worker; the
/// harness closing the channel (or dying) ends it.
fn wait_for_assignment(channel: &OwnedFd, harness: Harness, parent: Parent) -> ! {
    loop {
        match receive(channel) {
            Ok(Received::Assignment(assignment)) => {
                become_worker(assignment, channel, harness, parent)
            }
            Err(Errno::EINTR) => {}
            Ok(Received::Invalid) => exit_now(1),
            Ok(Received::Closed) | Err(_) => exit_now(0),
        }
    }
}

/// The spare's first message: the pid the harness waits for (the
/// supervisor of the spare's namespace, or the spare itself), the
/// zygote's pid (0: none), and the read end of the supervisor's status
/// pipe.
fn send_ready(
    channel: &OwnedFd,
    answer: [u8; ANSWER_LEN],
    zygote: i32,
    relay: Option<&OwnedFd>,
) -> Result<(), Errno> {
    let mut ready = [0u8; READY_LEN];
    ready[..ANSWER_LEN].copy_from_slice(&answer);
    ready[ANSWER_LEN..].copy_from_slice(&zygote.to_le_bytes());
    let fds: Vec<RawFd> = relay.iter().map(|fd| fd.as_raw_fd()).collect();
    let rights = [ControlMessage::ScmRights(&fds)];
    let control: &[ControlMessage] = if fds.is_empty() { &[] } else { &rights };
    sendmsg::<UnixAddr>(
        channel.as_raw_fd(),
        &[IoSlice::new(&ready)],
        control,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map(drop)
}

/// The spare's first message's length: an answer and the zygote's pid.
const READY_LEN: usize = ANSWER_LEN + 4;

/// What the spare said it is (see [`send_ready`]).
struct Ready {
    namespaced: bool,
    relay: Option<OwnedFd>,
    /// The zygote the spare forked (0: none).
    zygote: i32,
}

/// Reads the spare's first message, once: the harness waits for the pid
/// it names from then on (the spare, which exits, is reaped here).
fn spare_ready(spare: &mut Helper) -> Result<Ready, Errno> {
    let mut ready = [0u8; READY_LEN];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let (length, relay) = loop {
        let mut slices = [IoSliceMut::new(&mut ready)];
        match recvmsg::<UnixAddr>(
            spare.channel.as_raw_fd(),
            &mut slices,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(message) => {
                let mut relay = None;
                for control in message.cmsgs()? {
                    if let ControlMessageOwned::ScmRights(fds) = control {
                        for fd in fds {
                            // SAFETY: the kernel just installed it for us.
                            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
                            relay.get_or_insert(fd);
                        }
                    }
                }
                break (message.bytes, relay);
            }
            Err(Errno::EINTR) => {}
            Err(error) => return Err(error),
        }
    };
    if length != READY_LEN {
        return Err(Errno::EIO);
    }
    let mut answer = [0u8; ANSWER_LEN];
    answer.copy_from_slice(&ready[..ANSWER_LEN]);
    let (pid, namespaced) = decode_answer(answer);
    let mut zygote = [0u8; 4];
    zygote.copy_from_slice(&ready[ANSWER_LEN..]);
    let zygote = i32::from_le_bytes(zygote);
    if pid <= 0 {
        return Err(Errno::from_raw(-pid));
    }
    if pid != spare.pid.as_raw() {
        // The spare started the namespace beside itself (the supervisor is
        // already our child) and is exiting: it is reaped at the end, a
        // helper to the orphan reaper until then.
        FORMER_SPARE_PID.store(spare.pid.as_raw(), Ordering::SeqCst);
        spare.pid = Pid::from_raw(pid);
        SPARE_PID.store(pid, Ordering::SeqCst);
    }
    if let Some(relay) = &relay {
        let _ = nix::fcntl::fcntl(
            relay,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
    }
    Ok(Ready {
        namespaced: namespaced && relay.is_some(),
        relay,
        zygote,
    })
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
    // Not dumpable: its answers are pids the harness trusts, so no plugin
    // may open its memory. Each worker it forks is made dumpable again
    // (`become_worker`).
    // SAFETY: PR_SET_DUMPABLE takes an integer and touches no memory.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    // The zygote keeps none of the harness's terminal or pipes: a reader
    // of the harness's stdout must see its end when the harness exits.
    quiet_stdio();
    loop {
        let answer = match receive(&channel) {
            Ok(Received::Assignment(assignment)) => fork_worker(assignment, &channel, harness),
            Ok(Received::Invalid) => encode_answer(-libc::EINVAL, false),
            Err(Errno::EINTR) => continue,
            Ok(Received::Closed) | Err(_) => exit_now(0),
        };
        answer_on(&channel, answer);
    }
}

fn answer_on(channel: &OwnedFd, answer: [u8; ANSWER_LEN]) {
    let _ = nix::sys::socket::send(channel.as_raw_fd(), &answer, MsgFlags::MSG_NOSIGNAL);
}

/// Reads one request and its descriptors, into a buffer the size of the
/// request (peeked first): a zeroed buffer of `MAX_REQUEST` costs a page
/// fault for each of its pages, on the path to the first case.
fn receive(channel: &OwnedFd) -> Result<Received, Errno> {
    // SAFETY: recv into no buffer; MSG_TRUNC makes it return the length
    // of the datagram waiting, which MSG_PEEK leaves there.
    let waiting = unsafe {
        libc::recv(
            channel.as_raw_fd(),
            std::ptr::null_mut(),
            0,
            libc::MSG_PEEK | libc::MSG_TRUNC,
        )
    };
    if waiting < 0 {
        return Err(Errno::last());
    }
    let mut buffer = vec![0u8; (waiting as usize).clamp(1, MAX_REQUEST)];
    let buffer = &mut buffer[..];
    let mut space = nix::cmsg_space!([RawFd; 4]);
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
    Ok(match (<[OwnedFd; 4]>::try_from(received), request) {
        (Ok([stdout, stderr, relay, channel]), Ok(request)) if whole => {
            Received::Assignment(Assignment {
                request,
                stdout,
                stderr,
                relay,
                channel,
            })
        }
        _ => Received::Invalid,
    })
}

/// Forks the intermediate, which starts the worker (in a namespace of its
/// own under a supervisor, or beside us), tells us the pid to wait for and
/// exits. Once the intermediate is reaped that pid is the harness's child:
/// only then is it the answer.
fn fork_worker(assignment: Assignment, channel: &OwnedFd, harness: Harness) -> [u8; ANSWER_LEN] {
    let Ok((pid_reader, pid_writer)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
        return encode_answer(-libc::EMFILE, false);
    };
    // SAFETY: the zygote has a single thread.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(pid_reader);
            let answer = match start_in_namespace(assignment, channel, harness) {
                Ok(answer) => answer,
                // SAFETY: the intermediate has a single thread.
                Err(assignment) => match unsafe { fork() } {
                    Ok(ForkResult::Child) => {
                        drop(pid_writer);
                        become_worker(assignment, channel, harness, Parent::Harness)
                    }
                    Ok(ForkResult::Parent { child }) => {
                        // The group is set on both sides, so it exists by
                        // the time the harness hears of the worker.
                        let _ = setpgid(child, child);
                        encode_answer(child.as_raw(), false)
                    }
                    Err(error) => encode_answer(-(error as i32), false),
                },
            };
            let _ = nix::unistd::write(&pid_writer, &answer);
            exit_now(0)
        }
        Ok(ForkResult::Parent {
            child: intermediate,
        }) => {
            drop(pid_writer);
            drop(assignment);
            let mut answer = [0u8; ANSWER_LEN];
            let read = read_all(pid_reader.as_fd(), &mut answer);
            while let Err(Errno::EINTR) = waitpid(intermediate, None) {}
            if read {
                answer
            } else {
                encode_answer(-libc::EIO, false)
            }
        }
        Err(error) => encode_answer(-(error as i32), false),
    }
}

/// Moves this process's future children into a PID namespace of their
/// own: with the privilege to (root), a PID namespace alone; without it,
/// inside a user namespace that maps only this user's own ids, so files
/// are read and written as before. False when the kernel refuses both
/// (then nothing changed).
fn enter_namespace() -> bool {
    // SAFETY: unshare takes flags and changes only this process's
    // namespaces for its future children; getuid/getgid read ids.
    let (uid, gid) = unsafe {
        if libc::unshare(libc::CLONE_NEWPID) == 0 {
            return true;
        }
        let ids = (libc::getuid(), libc::getgid());
        if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWPID) != 0 {
            return false;
        }
        ids
    };
    // The maps can only fail if the kernel is broken; there is no way
    // back out of the user namespace, so the worker then runs unmapped
    // (as the overflow user) rather than not at all.
    let _ = std::fs::write("/proc/self/setgroups", "deny");
    let _ = std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1"));
    let _ = std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1"));
    true
}

/// In a process that is about to go (the zygote's intermediate, or the
/// spare): starts the worker in a PID namespace of its own, under its
/// supervisor, and gives the answer naming the supervisor. `Err`: the
/// kernel allows no namespace here; the assignment comes back.
fn start_in_namespace(
    assignment: Assignment,
    channel: &OwnedFd,
    harness: Harness,
) -> Result<[u8; ANSWER_LEN], Assignment> {
    if !enter_namespace() {
        return Err(assignment);
    }
    // SAFETY: this process has a single thread.
    Ok(match unsafe { fork() } {
        Ok(ForkResult::Child) => supervise(Job::Assigned(assignment), channel, harness),
        Ok(ForkResult::Parent { child }) => {
            let _ = setpgid(child, child);
            encode_answer(child.as_raw(), true)
        }
        Err(error) => encode_answer(-(error as i32), false),
    })
}

/// Nothing: SIGCHLD only has to interrupt the supervisor's wait.
extern "C" fn on_child(_: libc::c_int) {}

/// The life of a namespace's supervisor, its init: fork the worker, wait
/// for it, hand its wait status to the harness, end (the kernel then kills
/// whatever else lives in the namespace). Ends at once if the harness is
/// gone. Signals the plugin sends it are dropped by the kernel (an init
/// has no default actions for signals from inside), and it is not
/// dumpable, so the plugin cannot trace it either.
fn supervise(job: Job, channel: &OwnedFd, harness: Harness) -> ! {
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    let (relay, assignment) = match job {
        Job::Assigned(mut assignment) => (
            std::mem::replace(&mut assignment.relay, dummy_fd()),
            Some(assignment),
        ),
        Job::Parked { relay } => (relay, None),
    };
    // SAFETY: prctl and the signal calls touch only this process's
    // settings; the handler does nothing.
    let unblocked = unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        let mut child: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut child);
        libc::sigaddset(&mut child, libc::SIGCHLD);
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigprocmask(libc::SIG_BLOCK, &child, &mut old);
        libc::signal(libc::SIGCHLD, on_child as *const () as libc::sighandler_t);
        libc::sigdelset(&mut old, libc::SIGCHLD);
        old
    };
    // SAFETY: a single thread.
    let worker = match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            drop(relay);
            // SAFETY: back to what a worker started as a program has.
            unsafe {
                libc::signal(libc::SIGCHLD, libc::SIG_DFL);
                libc::sigprocmask(libc::SIG_SETMASK, &unblocked, std::ptr::null_mut());
                libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0);
            }
            match assignment {
                Some(assignment) => become_worker(assignment, channel, harness, Parent::Supervisor),
                None => {
                    // Parked in its namespace, whose supervisor is all
                    // it can name: the filter goes in while it waits
                    // rather than after its assignment came.
                    super::confine::confine_worker(&super::confine::Protected::around_parent());
                    wait_for_assignment(channel, harness, Parent::Supervisor)
                }
            }
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(_) => exit_now(1),
    };
    // SAFETY: closing our copies of what the worker alone uses.
    unsafe {
        libc::close(channel.as_raw_fd());
    }
    drop(assignment);
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes into a local integer.
        match unsafe { libc::waitpid(worker.as_raw(), &mut status, libc::WNOHANG) } {
            0 => {}
            pid if pid == worker.as_raw() => {
                let _ = nix::unistd::write(&relay, &status.to_le_bytes());
                exit_now(0)
            }
            _ if Errno::last() == Errno::EINTR => {}
            _ => exit_now(1),
        }
        let mut watch = libc::pollfd {
            fd: harness.life,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd of ours; SIGCHLD is unblocked only while
        // waiting, so a worker's death between the waitpid and here still
        // interrupts the wait.
        let ready = unsafe { libc::ppoll(&mut watch, 1, std::ptr::null(), &unblocked) };
        if ready > 0 {
            // The harness is gone: so are we, and the namespace with us.
            exit_now(1)
        }
    }
}

/// What a supervisor's worker is to do.
enum Job {
    /// Become the worker the assignment asks for.
    Assigned(Assignment),
    /// Park until an assignment comes over the channel (the spare); the
    /// supervisor writes the status into `relay`, whose read end the
    /// spare handed the harness.
    Parked { relay: OwnedFd },
}

/// A descriptor to leave in a moved-out field: `/dev/null`'s, or a closed
/// pipe's.
fn dummy_fd() -> OwnedFd {
    match std::fs::File::open("/dev/null") {
        Ok(file) => file.into(),
        Err(_) => {
            let (reader, _) = nix::unistd::pipe().expect("a pipe");
            reader
        }
    }
}

/// Who a forked worker's parent is to be.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Parent {
    /// The harness, once the intermediate has exited (no namespace).
    Harness,
    /// The supervisor of its namespace, from the start.
    Supervisor,
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
fn become_worker(assignment: Assignment, channel: &OwnedFd, harness: Harness, parent: Parent) -> ! {
    // SAFETY: closing the zygote's channel end and the harness's life
    // pipe, which this copy must not keep (the plugin could write into
    // the one and hold the other); nothing else uses them here.
    unsafe {
        libc::close(channel.as_raw_fd());
        libc::close(harness.life);
    }
    let deadline = Instant::now() + REPARENT_WAIT;
    while parent == Parent::Harness && getppid() != harness.pid {
        // The harness died meanwhile (re-parented elsewhere), or the
        // intermediate never exited: no one would ever judge this worker.
        if Instant::now() >= deadline {
            exit_now(1);
        }
        std::thread::yield_now();
    }
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    // Under a supervisor, the filter goes in now and names the harness
    // itself: the supervisor (forked through an intermediate) may not
    // have been re-parented to the harness yet, and the worker's
    // grandparent as `/proc` shows it would then be the intermediate,
    // leaving the harness's number out of the filter for good (a plugin
    // that read it later from `/proc` was not named; seen as a flaky pass
    // of `signal-harness-by-proc`). A worker already confined (the
    // parked spare's) keeps its filter.
    if parent == Parent::Supervisor {
        super::confine::confine_worker(
            &super::confine::Protected::around_parent().with(harness.proc_pid),
        );
    }
    // Dumpable, as a worker started as a program is (a worker forked by
    // the zygote inherits its setting).
    // SAFETY: PR_SET_DUMPABLE takes an integer and touches no memory.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0);
    }
    let Assignment {
        request,
        stdout,
        stderr,
        relay,
        channel: channel_end,
    } = assignment;
    drop(relay);
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
    if request.exec {
        run_program(request.argv, channel_end)
    }
    // The worker owns its channel's end from here (`os::join_channel`).
    let channel = channel_end.into_raw_fd();
    // A panic must end this process here, as it would end a worker started
    // as a program: unwinding further would return into the helper's loop.
    let code =
        std::panic::catch_unwind(|| (harness.worker_main)(&request.assignment, Some(channel)))
            .unwrap_or(101);
    std::process::exit(code)
}

/// Becomes another worker program (the Go worker), under the same filter
/// a worker of ours puts itself under: the filter outlives the `exec`
/// (its handler does not: a trapped call then ends the program with its
/// own report of SIGSYS).
fn run_program(argv: Vec<Vec<u8>>, channel: OwnedFd) -> ! {
    // Where `--channel-fd` says, open across the `exec`.
    if super::channel::hand_to_program(channel.into_raw_fd()).is_err() {
        exit_now(127)
    }
    let Ok(argv) = argv
        .into_iter()
        .map(std::ffi::CString::new)
        .collect::<Result<Vec<_>, _>>()
    else {
        exit_now(127)
    };
    let Some(program) = argv.first() else {
        exit_now(127)
    };
    super::confine::confine_worker(&super::confine::Protected::around_parent());
    let _ = nix::unistd::execv(program, &argv);
    exit_now(127)
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
