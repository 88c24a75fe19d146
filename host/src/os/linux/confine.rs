//! What a plugin may not do to its judge, enforced in the worker by a
//! seccomp filter and named when it is tried.
//!
//! A worker runs in a PID namespace of its own where the kernel allows it
//! (`zygote.rs`): the harness, the helpers and every other worker are not
//! even nameable there. This filter is the other half: a system call that
//! aims a signal, a trace, a memory access or a resource limit at the
//! worker's parent, at the harness's processes or at "every process"
//! (`kill(-1, …)`) never runs. It traps (`SIGSYS`), and the handler sends
//! the parent a `forbidden` message naming the call — `kill(1, SIGSTOP)`,
//! the worker's parent and what the plugin meant — before the worker dies
//! of that `SIGSYS`: the verdict names what the plugin did, not a crash.
//! Where namespaces are refused this filter is the defence; its limit is
//! that it knows pids, not processes (a harness process started after the
//! filter, or a pidfd opened through `/proc`, is not in it).
//!
//! The filter is inherited by everything the plugin starts and by a
//! program the worker becomes (`exec`), so a `kill -STOP` run by a
//! plugin's shell is trapped alike. Installing it needs no privilege
//! (`PR_SET_NO_NEW_PRIVS`: a set-uid program the plugin runs gains none).

use std::sync::atomic::{AtomicI32, Ordering};

/// System calls that name a target process by its pid, and the argument
/// that holds it.
const TARGETED: &[(libc::c_long, u32)] = &[
    (libc::SYS_kill, 0),
    (libc::SYS_tkill, 0),
    (libc::SYS_tgkill, 0),
    (libc::SYS_rt_sigqueueinfo, 0),
    (libc::SYS_rt_tgsigqueueinfo, 0),
    (libc::SYS_ptrace, 1),
    (libc::SYS_process_vm_readv, 0),
    (libc::SYS_process_vm_writev, 0),
    (libc::SYS_pidfd_open, 0),
    (libc::SYS_prlimit64, 0),
];

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// `seccomp_data`'s layout: `nr` at 0, `arch` at 4, `args[i]` at
/// 16 + 8·i (its low half first on these little-endian targets).
const NR: u32 = 0;
const ARCH: u32 = 4;
const fn arg_low(index: u32) -> u32 {
    16 + 8 * index
}

/// x32 system calls on x86_64 carry this bit: they are refused outright,
/// as a way around the numbers above.
const X32_BIT: u32 = 0x4000_0000;

const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_FILTER_FLAG_SPEC_ALLOW: libc::c_ulong = 1 << 2;
const SECCOMP_RET_TRAP: u32 = 0x0003_0000;

/// The worker's parent as it sees it (1 inside a namespace: the
/// supervising init), for the handler's words.
static PARENT: AtomicI32 = AtomicI32::new(0);

/// Pids the filter protects, as the worker names them.
pub(super) struct Protected(Vec<i32>);

impl Protected {
    /// The worker's parent (the harness, or the namespace's init), the
    /// parent's process group, the parent's other children (the helpers,
    /// and the other plugins' workers where no namespace hides them), and
    /// the worker's parent and grandparent as `/proc` numbers them (inside
    /// a namespace those numbers name nothing of ours, but a plugin that
    /// reads them there and uses them is named all the same).
    pub(super) fn around_parent() -> Protected {
        let parent = nix::unistd::getppid().as_raw();
        let mut pids = vec![parent];
        if let Ok(group) = nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(parent))) {
            pids.push(group.as_raw());
        }
        pids.extend(siblings(parent));
        if let Some(parent) = proc_parent("self") {
            pids.push(parent);
            pids.extend(proc_parent(&parent.to_string()));
        }
        pids.retain(|&pid| pid > 0 && pid != std::process::id() as i32);
        pids.sort_unstable();
        pids.dedup();
        Protected(pids)
    }

    /// These, and `pid` too (the harness, by the number `/proc` gives it,
    /// where this process's ancestry does not show it yet) — unless it is
    /// this process's own number, as `around_parent` leaves that out: a
    /// `/proc` number can name this very worker inside its namespace,
    /// whose own signals (a Go runtime's preemption, `abort`) must run.
    pub(super) fn with(mut self, pid: i32) -> Protected {
        if pid > 0 && pid != std::process::id() as i32 && !self.0.contains(&pid) {
            self.0.push(pid);
            self.0.sort_unstable();
        }
        self
    }
}

/// The parent of `/proc/{pid}`, as `/proc` numbers it.
fn proc_parent(pid: &str) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`: the name may hold anything up to its
    // last `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace()
        .nth(1)?
        .parse()
        .ok()
        .filter(|&pid| pid > 1)
}

/// The other children of `parent`, as `/proc` lists them; only where the
/// worker's pids and `/proc`'s agree (no namespace between them).
fn siblings(parent: i32) -> Vec<i32> {
    let me = std::process::id() as i32;
    // Pid 1 is a namespace's supervisor, or the machine's init: `/proc`'s
    // pid 1 is not ours to list either way.
    if parent <= 1 {
        return Vec::new();
    }
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{parent}/task")) else {
        return Vec::new();
    };
    let pids: Vec<i32> = tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|children| {
            children
                .split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    if pids.contains(&me) { pids } else { Vec::new() }
}

/// Installs the filter on this process (every thread it starts later, and
/// every process it starts, inherits it) and the handler that names a
/// trapped call. False when the kernel refused it.
pub(super) fn confine_worker(protected: &Protected) -> bool {
    if is_confined() {
        return true;
    }
    PARENT.store(nix::unistd::getppid().as_raw(), Ordering::SeqCst);
    drop_ptrace_capability();
    let program = filter(protected);
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: the handler is async-signal-safe (see `on_forbidden`);
    // prctl and seccomp read the filter, which outlives the calls.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_forbidden as *const () as usize;
        action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        libc::sigfillset(&mut action.sa_mask);
        libc::sigaction(libc::SIGSYS, &action, std::ptr::null_mut());
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return false;
        }
        // Without SPEC_ALLOW, kernels before 5.16 turn on speculation
        // mitigations for every filtered task (store bypass disabled,
        // barriers on each switch), which would slow the plugin's own code
        // and skew the timing cases. Kernels older than 4.17 refuse the
        // flag: then the filter goes in without it.
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            SECCOMP_FILTER_FLAG_SPEC_ALLOW,
            &fprog as *const libc::sock_fprog,
        ) == 0
            || libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &fprog as *const libc::sock_fprog,
            ) == 0
    }
    .then(|| CONFINED.store(true, Ordering::SeqCst))
    .is_some()
}

/// Set once this process installed the filter: a spare worker parked in
/// its namespace installs it while it waits (off the path to the first
/// case), and the worker it becomes does not install it twice.
static CONFINED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether this process is under the filter already.
pub(super) fn is_confined() -> bool {
    CONFINED.load(Ordering::SeqCst)
}

/// `CAP_SYS_PTRACE`'s number.
const CAP_SYS_PTRACE: u32 = 19;

/// Gives up `CAP_SYS_PTRACE` for good (bounding, permitted, effective and
/// inheritable sets): a worker run as root could otherwise open the
/// harness's `/proc/PID/mem` — a path, which no filter on pids sees — even
/// though the harness is not dumpable. Without the capability, the kernel
/// refuses a process that is not dumpable to anyone but itself. A worker
/// without the capability (not root) has nothing to drop.
fn drop_ptrace_capability() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget/capset with the version-3 header and its two data
    // words, which live on this stack for the calls.
    unsafe {
        libc::prctl(libc::PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0);
        if libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) != 0 {
            return;
        }
        let bit = !(1u32 << CAP_SYS_PTRACE);
        data[0].effective &= bit;
        data[0].permitted &= bit;
        data[0].inheritable &= bit;
        libc::syscall(libc::SYS_capset, &mut header, data.as_ptr());
    }
}

fn statement(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// The BPF program: another architecture's call or an x32 call traps; a
/// call of [`TARGETED`] traps when its target is -1 or a protected pid
/// (or its negation, the group); everything else is allowed.
fn filter(protected: &Protected) -> Vec<libc::sock_filter> {
    let mut targets: Vec<u32> = vec![u32::MAX];
    for &pid in &protected.0 {
        targets.push(pid as u32);
        targets.push(pid.wrapping_neg() as u32);
    }
    targets.sort_unstable();
    targets.dedup();
    let mut program = vec![
        statement(LD_W_ABS, ARCH),
        jump(JEQ_K, AUDIT_ARCH, 1, 0),
        statement(RET_K, SECCOMP_RET_TRAP),
        statement(LD_W_ABS, NR),
    ];
    if cfg!(target_arch = "x86_64") {
        program.push(jump(JSET_K, X32_BIT, 0, 1));
        program.push(statement(RET_K, SECCOMP_RET_TRAP));
    }
    // Per argument position: a block that loads it, compares it with each
    // target (trap on a match) and allows otherwise.
    let block = |index: u32| -> Vec<libc::sock_filter> {
        let mut block = vec![statement(LD_W_ABS, arg_low(index))];
        for (n, &target) in targets.iter().enumerate() {
            // On a match, jump over the remaining comparisons and the
            // allow to the trap.
            let skip = (targets.len() - n) as u8;
            block.push(jump(JEQ_K, target, skip, 0));
        }
        block.push(statement(RET_K, SECCOMP_RET_ALLOW));
        block.push(statement(RET_K, SECCOMP_RET_TRAP));
        block
    };
    let first = block(0);
    let second = block(1);
    // The dispatch: each targeted call jumps to its argument's block;
    // the blocks follow an allow.
    let dispatch_len = TARGETED.len() + 1;
    for (n, &(number, index)) in TARGETED.iter().enumerate() {
        let remaining = dispatch_len - n - 1;
        let offset = match index {
            0 => remaining,
            _ => remaining + first.len(),
        };
        program.push(jump(JEQ_K, number as u32, offset as u8, 0));
    }
    program.push(statement(RET_K, SECCOMP_RET_ALLOW));
    program.extend(first);
    program.extend(second);
    program
}

/// The `forbidden` message, composed in a fixed buffer: the handler runs
/// in a signal context.
struct Line {
    bytes: [u8; 512],
    len: usize,
}

impl Line {
    fn push(&mut self, text: &[u8]) {
        for &byte in text {
            if self.len < self.bytes.len() {
                self.bytes[self.len] = byte;
                self.len += 1;
            }
        }
    }

    fn number(&mut self, value: i64) {
        if value < 0 {
            self.push(b"-");
        }
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut rest = value.unsigned_abs();
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        self.push(&digits[at..]);
    }
}

/// The name of a call of [`TARGETED`].
fn call_name(number: libc::c_long) -> &'static [u8] {
    match number {
        libc::SYS_kill => b"kill",
        libc::SYS_tkill => b"tkill",
        libc::SYS_tgkill => b"tgkill",
        libc::SYS_rt_sigqueueinfo => b"rt_sigqueueinfo",
        libc::SYS_rt_tgsigqueueinfo => b"rt_tgsigqueueinfo",
        libc::SYS_ptrace => b"ptrace",
        libc::SYS_process_vm_readv => b"process_vm_readv",
        libc::SYS_process_vm_writev => b"process_vm_writev",
        libc::SYS_pidfd_open => b"pidfd_open",
        libc::SYS_prlimit64 => b"prlimit64",
        _ => b"a system call",
    }
}

/// The signal argument's position in a signalling call, if it has one.
fn signal_argument(number: libc::c_long) -> Option<usize> {
    match number {
        libc::SYS_kill | libc::SYS_tkill | libc::SYS_rt_sigqueueinfo => Some(1),
        libc::SYS_tgkill | libc::SYS_rt_tgsigqueueinfo => Some(2),
        _ => None,
    }
}

fn signal_name(signal: i64) -> &'static [u8] {
    match signal as libc::c_int {
        0 => b"0",
        libc::SIGHUP => b"SIGHUP",
        libc::SIGINT => b"SIGINT",
        libc::SIGQUIT => b"SIGQUIT",
        libc::SIGABRT => b"SIGABRT",
        libc::SIGKILL => b"SIGKILL",
        libc::SIGUSR1 => b"SIGUSR1",
        libc::SIGUSR2 => b"SIGUSR2",
        libc::SIGSEGV => b"SIGSEGV",
        libc::SIGPIPE => b"SIGPIPE",
        libc::SIGALRM => b"SIGALRM",
        libc::SIGTERM => b"SIGTERM",
        libc::SIGCHLD => b"SIGCHLD",
        libc::SIGCONT => b"SIGCONT",
        libc::SIGSTOP => b"SIGSTOP",
        libc::SIGTSTP => b"SIGTSTP",
        libc::SIGTTIN => b"SIGTTIN",
        libc::SIGTTOU => b"SIGTTOU",
        libc::SIGXCPU => b"SIGXCPU",
        _ => b"",
    }
}

/// The arguments of the trapped call, from the registers it was made with.
///
/// # Safety
/// `context` is the `ucontext_t` the kernel passed to the handler.
unsafe fn arguments(context: *mut libc::c_void) -> [i64; 3] {
    let context = context.cast::<libc::ucontext_t>();
    if context.is_null() {
        return [0; 3];
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller's contract.
    unsafe {
        let registers = &(*context).uc_mcontext.gregs;
        [
            registers[libc::REG_RDI as usize],
            registers[libc::REG_RSI as usize],
            registers[libc::REG_RDX as usize],
        ]
    }
    #[cfg(target_arch = "aarch64")]
    // SAFETY: the caller's contract.
    unsafe {
        let registers = &(*context).uc_mcontext.regs;
        [
            registers[0] as i64,
            registers[1] as i64,
            registers[2] as i64,
        ]
    }
}

/// The `SIGSYS` handler: names the trapped call to the parent, then lets
/// the worker die of `SIGSYS`, which the parent reads with the name.
extern "C" fn on_forbidden(
    _signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel passes a valid siginfo; for SIGSYS from seccomp
    // the call's number follows the address in `_sifields` (si_syscall).
    let number = unsafe {
        if info.is_null() {
            -1
        } else {
            // `si_call_addr` at 16, `si_syscall` after it.
            i64::from((info as *const u8).add(24).cast::<i32>().read_unaligned())
        }
    };
    // SAFETY: the handler's context.
    let args = unsafe { arguments(context) };
    let mut line = Line {
        bytes: [0; 512],
        len: 0,
    };
    line.push(b"{\"type\":\"forbidden\",\"call\":\"");
    line.push(call_name(number as libc::c_long));
    line.push(b"(");
    let pid_index = TARGETED
        .iter()
        .find(|(call, _)| i64::from(*call as i32) == number)
        .map(|&(_, index)| index as usize);
    match pid_index {
        Some(1) => {
            match args[0] {
                16 => line.push(b"PTRACE_ATTACH"),
                0x4206 => line.push(b"PTRACE_SEIZE"),
                request => line.number(request),
            }
            line.push(b", ");
            line.number(i64::from(args[1] as i32));
        }
        Some(_) => {
            line.number(i64::from(args[0] as i32));
            if let Some(signal) = signal_argument(number as libc::c_long) {
                let signal = args[signal] as i32;
                line.push(b", ");
                match signal_name(i64::from(signal)) {
                    b"" => line.number(i64::from(signal)),
                    name => line.push(name),
                }
            } else {
                line.push(b", ...");
            }
        }
        None => line.number(number),
    }
    line.push(b")\",\"parent\":");
    line.number(i64::from(PARENT.load(Ordering::SeqCst)));
    line.push(b"}\n");
    super::crash::send(&line.bytes[..line.len]);
    // SAFETY: default disposition, unblocked, then raised on this thread:
    // the worker dies of SIGSYS (a tgkill of ourselves, which the filter
    // allows).
    unsafe {
        libc::signal(libc::SIGSYS, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGSYS);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(libc::SIGSYS);
        libc::_exit(128 + libc::SIGSYS);
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixStream;

    use super::*;

    /// Forks a child that confines itself and then makes `attack`; returns
    /// what it said over its channel and how it ended (its raw status).
    fn confined_child(attack: fn()) -> (String, i32) {
        let (ours, child_end) = UnixStream::pair().unwrap();
        // SAFETY: the child only confines itself, makes one call and
        // exits; glibc keeps malloc usable after a fork.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            super::super::crash::report_crashes_to(&child_end);
            confine_worker(&Protected::around_parent());
            attack();
            // SAFETY: ends the child without running the test harness's
            // exit code.
            unsafe { libc::_exit(0) }
        }
        drop(child_end);
        ours.set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut line = String::new();
        let _ = BufReader::new(ours).read_line(&mut line);
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        (line, status)
    }

    #[test]
    fn a_signal_to_the_parent_does_not_run_and_is_named() {
        let (line, status) = confined_child(|| {
            // SAFETY: signal 0 only checks; the filter stops it anyway.
            unsafe { libc::kill(libc::getppid(), 0) };
        });
        assert!(libc::WIFSIGNALED(status), "status {status:#x}");
        assert_eq!(libc::WTERMSIG(status), libc::SIGSYS);
        let parent = std::process::id();
        assert!(
            line.contains(&format!("\"call\":\"kill({parent}, 0)\"")),
            "{line}"
        );
    }

    #[test]
    fn a_signal_to_every_process_does_not_run_and_is_named() {
        let (line, status) = confined_child(|| {
            // SAFETY: signal 0 sends nothing; the filter stops it anyway.
            unsafe { libc::kill(-1, 0) };
        });
        assert_eq!(libc::WTERMSIG(status), libc::SIGSYS, "{line}");
        assert!(line.contains("\"call\":\"kill(-1, 0)\""), "{line}");
    }

    #[test]
    fn a_signal_to_itself_and_its_own_group_is_allowed() {
        let (line, status) = confined_child(|| {
            // SAFETY: signal 0 only checks that the processes exist.
            unsafe {
                libc::kill(libc::getpid(), 0);
                libc::kill(0, 0);
            }
        });
        assert!(libc::WIFEXITED(status), "{line} {status:#x}");
        assert_eq!(libc::WEXITSTATUS(status), 0);
        assert_eq!(line, "");
    }
}
