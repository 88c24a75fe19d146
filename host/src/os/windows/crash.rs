//! The worker's crash report on Windows: as an unhandled exception ends the
//! worker, tell the parent where the crashing thread was.
//!
//! The unhandled-exception filter runs on the crashing thread once the
//! exception found no handler. It is not a signal handler (other threads
//! and the loader lock behave as usual), but the heap may be what broke,
//! so it does as little as it can: the unwinder walks the stack (the
//! `backtrace` crate, `RtlVirtualUnwind` under the hood) into a fixed
//! array, the loader names the module of each frame, and one `send` on
//! the channel writes a note composed in a buffer reserved up front. The
//! parent symbolizes. Then the filter ends the process with the exception
//! code, as before.

use std::os::windows::io::AsRawSocket;
use std::sync::atomic::{AtomicUsize, Ordering};

use windows_sys::Win32::Foundation::HMODULE;
use windows_sys::Win32::Networking::WinSock::{SOCKET, send};
use windows_sys::Win32::System::Diagnostics::Debug::EXCEPTION_POINTERS;
use windows_sys::Win32::System::LibraryLoader::{
    GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS, GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
    GetModuleFileNameW, GetModuleHandleExW,
};
use windows_sys::Win32::System::ProcessStatus::{K32GetModuleInformation, MODULEINFO};
use windows_sys::Win32::System::Threading::GetCurrentProcess;

use super::super::crash_note::{MAX_FRAMES, NoteBuffer, crashing_frames};

/// The channel's socket; 0 until set.
static CHANNEL: AtomicUsize = AtomicUsize::new(0);

static NOTE: NoteBuffer = NoteBuffer::new();

pub(crate) fn report_crashes_to(channel: &std::net::TcpStream) {
    CHANNEL.store(channel.as_raw_socket() as usize, Ordering::SeqCst);
}

/// Sends the crashing thread's stack to the parent, if a channel is set.
///
/// # Safety
/// `info` is what the system passed the unhandled-exception filter.
pub(super) unsafe fn report(info: *const EXCEPTION_POINTERS) {
    let socket = CHANNEL.load(Ordering::SeqCst);
    if socket == 0 {
        return;
    }
    let Some(mut note) = NOTE.take() else {
        return;
    };
    // SAFETY: the caller's contract.
    let faulting = unsafe { info.as_ref().and_then(|info| info.ExceptionRecord.as_ref()) }
        .map_or(0, |record| record.ExceptionAddress as u64);
    let mut frames = [0u64; MAX_FRAMES];
    let count = crashing_frames(faulting, &mut frames);
    let frames = &frames[..count];
    note.begin(frames);
    note.begin_modules();
    let mut seen: [usize; MAX_FRAMES] = [0; MAX_FRAMES];
    let mut seen_count = 0;
    for &frame in frames {
        let Some((base, size)) = module_of(frame) else {
            continue;
        };
        if seen[..seen_count].contains(&base) {
            continue;
        }
        seen[seen_count] = base;
        seen_count += 1;
        let mut wide = [0u16; 1024];
        // SAFETY: `base` is a loaded module's handle; the buffer is ours.
        let len =
            unsafe { GetModuleFileNameW(base as HMODULE, wide.as_mut_ptr(), wide.len() as u32) }
                as usize;
        let mut utf8 = [0u8; 3 * 1024];
        let path = utf8_of(&wide[..len.min(wide.len())], &mut utf8);
        note.module(path, base as u64, base as u64 + size as u64);
    }
    note.end_modules();
    let line = note.finish();
    let mut sent = 0;
    while sent < line.len() {
        let chunk = &line[sent..];
        // SAFETY: a socket of ours and a buffer of ours.
        let wrote = unsafe { send(socket as SOCKET, chunk.as_ptr(), chunk.len() as i32, 0) };
        if wrote <= 0 {
            return;
        }
        sent += wrote as usize;
    }
}

/// The base and size of the module `address` is in.
fn module_of(address: u64) -> Option<(usize, u32)> {
    let mut module: HMODULE = std::ptr::null_mut();
    // SAFETY: asks the loader which module holds an address, without
    // taking a reference; `module` is ours.
    let found = unsafe {
        GetModuleHandleExW(
            GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
            address as usize as *const u16,
            &mut module,
        )
    };
    if found == 0 || module.is_null() {
        return None;
    }
    let mut info = MODULEINFO {
        lpBaseOfDll: std::ptr::null_mut(),
        SizeOfImage: 0,
        EntryPoint: std::ptr::null_mut(),
    };
    // SAFETY: a module handle of this process and a struct of ours.
    let ok = unsafe {
        K32GetModuleInformation(
            GetCurrentProcess(),
            module,
            &mut info,
            std::mem::size_of::<MODULEINFO>() as u32,
        )
    };
    (ok != 0).then_some((info.lpBaseOfDll as usize, info.SizeOfImage))
}

/// UTF-16 to UTF-8 into a buffer of ours, without allocating; an unpaired
/// surrogate becomes U+FFFD.
fn utf8_of<'a>(wide: &[u16], out: &'a mut [u8]) -> &'a [u8] {
    let mut len = 0;
    for c in char::decode_utf16(wide.iter().copied()) {
        let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
        if len + c.len_utf8() > out.len() {
            break;
        }
        len += c.encode_utf8(&mut out[len..]).len();
    }
    &out[..len]
}
