//! A worker's channel to its parent on Linux: a socket pair whose other
//! end the worker is handed as it starts — a forked worker receives it
//! with its assignment, a program finds it on descriptor 3 — so nothing is
//! listened on, connected to, or proved with a token.

use std::os::fd::{OwnedFd, RawFd};

/// See `os::PendingChannel`: the parent's end of a socket pair, and the
/// worker's until it is handed over.
pub type ChannelStream = std::os::unix::net::UnixStream;

/// Where a worker started as a program finds its end of the channel.
const PROGRAM_CHANNEL_FD: i32 = 3;

pub struct PendingChannel {
    ours: Option<ChannelStream>,
    theirs: Option<OwnedFd>,
}

impl PendingChannel {
    pub(crate) fn open() -> std::io::Result<PendingChannel> {
        let (ours, theirs) = ChannelStream::pair()?;
        Ok(PendingChannel {
            ours: Some(ours),
            theirs: Some(theirs.into()),
        })
    }

    /// What a worker started as a program is told of its channel: the
    /// descriptor its end is moved to before the program runs.
    pub(crate) fn worker_args(&self) -> Vec<std::ffi::OsString> {
        vec!["--channel-fd".into(), PROGRAM_CHANNEL_FD.to_string().into()]
    }

    /// The worker's end, for its launch: once it is started the parent
    /// holds no copy, so the worker's death ends the channel.
    pub(crate) fn take_worker_end(&mut self) -> Option<OwnedFd> {
        self.theirs.take()
    }

    /// The parent's end, at once; after it nothing more comes (a pause of
    /// `wait`, so a caller looking for the worker's death does not spin).
    pub(crate) fn next(
        &mut self,
        wait: std::time::Duration,
    ) -> std::io::Result<Option<ChannelStream>> {
        match self.ours.take() {
            Some(ours) => Ok(Some(ours)),
            None => {
                std::thread::sleep(wait);
                Ok(None)
            }
        }
    }
}

/// Puts the channel's end `fd` where `--channel-fd` says a worker started
/// as a program finds it, open across the `exec`. Only `dup2` and `fcntl`,
/// which are async-signal-safe: it runs between the fork and the `exec`.
pub(super) fn hand_to_program(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: both calls take descriptor numbers and touch no memory of
    // ours; `fd` is the channel's end, open in this process.
    let done = unsafe {
        if fd == PROGRAM_CHANNEL_FD {
            libc::fcntl(fd, libc::F_SETFD, 0)
        } else {
            libc::dup2(fd, PROGRAM_CHANNEL_FD)
        }
    };
    if done < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

pub(crate) fn join_channel(
    _connect: Option<std::net::SocketAddr>,
    fd: Option<i32>,
) -> std::io::Result<ChannelStream> {
    use std::os::fd::FromRawFd;
    let Some(fd) = fd.filter(|&fd| fd > 2) else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a worker here is handed its channel: start it with `--channel-fd FD`",
        ));
    };
    // Not inherited by what the plugin starts: a child holding it would
    // keep the channel open after the worker died.
    nix::fcntl::fcntl(
        // SAFETY: borrowed only for this call, which sets the flag on a
        // number given to this worker for its channel; a number that is
        // not open fails here, before it is ever owned below.
        unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(std::io::Error::from)?;
    // SAFETY: the descriptor was handed to this process as its channel's
    // end, for this use alone (checked open just above).
    Ok(unsafe { ChannelStream::from_raw_fd(fd) })
}

/// Both ends of a channel, connected (for tests of what reads one).
#[cfg(test)]
pub(crate) fn channel_pair() -> std::io::Result<(ChannelStream, ChannelStream)> {
    ChannelStream::pair()
}
