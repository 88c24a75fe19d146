//! The worker's crash handler on Linux: as a fatal signal kills the worker,
//! tell the parent where the crashing thread was.
//!
//! What runs in the dying process is kept to what a signal handler can do:
//! the unwinder walks the stack into a fixed array, `open`/`read` copy
//! `/proc/self/maps` into a buffer reserved up front, `write` sends both.
//! No allocation, no lock of ours, no symbol lookup: the parent, which is
//! healthy, symbolizes. The unwinder (libgcc's, through the `backtrace`
//! crate) is the best-effort part: it is not async-signal-safe by any
//! standard, but it only reads the stack and unwind tables, and glibc
//! answers its table lookups without a lock (`_dl_find_object`).
//!
//! Then the signal's previous disposition is put back and the signal is
//! raised again, so the worker dies exactly as it would have without us
//! (Rust's own stack-overflow message included) and the parent decodes
//! the same termination.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicI32, Ordering};

use super::super::crash_note::{MAX_FRAMES, NoteBuffer, crashing_frames};

/// The signals that mean the worker crashed.
const CRASH_SIGNALS: [libc::c_int; 5] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
    libc::SIGABRT,
];

/// Where the note goes: the worker's channel to the parent.
static CHANNEL: AtomicI32 = AtomicI32::new(-1);

static NOTE: NoteBuffer = NoteBuffer::new();

/// `/proc/self/maps`, read as the worker dies.
static MAPS: NoteBuffer = NoteBuffer::new();

/// The dispositions the handler replaced, to hand each signal back to.
struct Previous(std::cell::UnsafeCell<[Option<libc::sigaction>; CRASH_SIGNALS.len()]>);

// SAFETY: written once in `report_crashes_to`, before any handler is
// installed; only read afterwards.
unsafe impl Sync for Previous {}

static PREVIOUS: Previous = Previous(std::cell::UnsafeCell::new([None; CRASH_SIGNALS.len()]));

/// Stack the handler runs on: a stack overflow leaves none on the
/// crashing thread, and unwinding needs a few KiB.
const ALTERNATE_STACK: usize = 256 << 10;

pub(crate) fn report_crashes_to(channel: &std::os::unix::net::UnixStream) {
    CHANNEL.store(channel.as_raw_fd(), Ordering::SeqCst);
    // The worker's main thread runs the cases; plugin threads keep their
    // own stacks (the handler runs there unless one overflows).
    let stack: &'static mut [u8] = Box::leak(vec![0u8; ALTERNATE_STACK].into_boxed_slice());
    let alternate = libc::stack_t {
        ss_sp: stack.as_mut_ptr().cast(),
        ss_flags: 0,
        ss_size: stack.len(),
    };
    // SAFETY: the stack is leaked, so valid for the life of the process;
    // `PREVIOUS` is written before any handler that reads it exists.
    unsafe {
        libc::sigaltstack(&alternate, std::ptr::null_mut());
        let previous = &mut *PREVIOUS.0.get();
        for (slot, &signal) in previous.iter_mut().zip(&CRASH_SIGNALS) {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_crash as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigfillset(&mut action.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, &action, &mut old) == 0 {
                *slot = Some(old);
            }
        }
    }
}

extern "C" fn on_crash(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    if let Some(mut note) = NOTE.take() {
        // SAFETY: the kernel passes the interrupted context.
        let pc = unsafe { faulting_pc(context) };
        let mut frames = [0u64; MAX_FRAMES];
        let count = crashing_frames(pc, &mut frames);
        note.begin(&frames[..count]);
        if let Some(mut maps) = MAPS.take() {
            note.maps(read_maps(maps.buffer()));
        }
        send(note.finish());
    }
    // SAFETY: puts back the disposition saved at installation (or the
    // default one), then lets it act: a fault re-executes the faulting
    // instruction on return; a sent signal (abort, kill) is raised again.
    unsafe {
        let index = CRASH_SIGNALS.iter().position(|&s| s == signal);
        let previous = index.and_then(|i| (*PREVIOUS.0.get())[i]);
        match previous {
            Some(previous) => libc::sigaction(signal, &previous, std::ptr::null_mut()),
            None => libc::signal(signal, libc::SIG_DFL) as libc::c_int,
        };
        if info.is_null() || (*info).si_code <= 0 {
            libc::raise(signal);
        }
    }
}

/// The program counter at the fault.
///
/// # Safety
/// `context` is the `ucontext_t` the kernel passed to the handler.
unsafe fn faulting_pc(context: *mut libc::c_void) -> u64 {
    let context = context.cast::<libc::ucontext_t>();
    if context.is_null() {
        return 0;
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the caller's contract.
    return unsafe { (*context).uc_mcontext.gregs[libc::REG_RIP as usize] as u64 };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: the caller's contract.
    return unsafe { (*context).uc_mcontext.pc };
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    return 0;
}

/// Reads `/proc/self/maps` into `buffer` with plain system calls.
fn read_maps(buffer: &mut [u8]) -> &[u8] {
    // SAFETY: a constant C string, and a buffer we own.
    unsafe {
        let fd = libc::open(
            c"/proc/self/maps".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return &[];
        }
        let mut len = 0;
        while len < buffer.len() {
            let read = libc::read(fd, buffer[len..].as_mut_ptr().cast(), buffer.len() - len);
            if read <= 0 {
                break;
            }
            len += read as usize;
        }
        libc::close(fd);
        &buffer[..len]
    }
}

/// Writes `bytes` to the channel with plain `write`s (a signal handler's
/// way).
pub(super) fn send(mut bytes: &[u8]) {
    let fd = CHANNEL.load(Ordering::SeqCst);
    while !bytes.is_empty() && fd >= 0 {
        // SAFETY: writes from a buffer we own to the channel's descriptor.
        let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if written <= 0 {
            return;
        }
        bytes = &bytes[written as usize..];
    }
}
