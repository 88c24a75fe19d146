//! Work CI runs beside its steps (`ci.rs`): the Windows leg's Rust
//! (`prebuild.rs`) and clippy. Each is the xtask started again as a child
//! (`cargo xtask background JOB`, hidden), in a process group of its own,
//! so that it can be stopped whole, cargo, rustc and linkers with it:
//!
//! - when a step fails, CI stops it at once ([`Job::cancel`]) and says the
//!   failure instead of waiting minutes for a build nobody needs;
//! - when CI itself dies (Ctrl-C, a runner's timeout), the job sees its
//!   standard input, a pipe from CI, close, and kills its own group: a
//!   group of its own no longer gets the terminal's Ctrl-C.
//!
//! What a job prints is kept in a temporary file and handed back whole
//! when it ends ([`Job::finish`]), so it never interleaves with the steps'.

use std::io::{Read, Seek};
use std::process::{Child, ChildStdin, Command, Stdio};

use anyhow::{Context, bail};

/// A job of [`serve`]'s, as its command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// The Windows leg's Rust (`prebuild.rs`).
    WindowsLeg,
    /// `cargo clippy -D warnings` over the workspace, all targets.
    Clippy,
}

/// A job under way.
pub struct Job {
    what: &'static str,
    kind_name: String,
    child: Option<Child>,
    /// Held open for the job's life: its closing tells the job CI is gone.
    stdin: Option<ChildStdin>,
    output: Option<std::fs::File>,
}

impl Job {
    /// Starts `kind` beside CI's steps, its output kept for [`Job::finish`].
    /// A job that cannot start is no job: the steps then do its work
    /// themselves (the builds) or [`Job::finish`] says why (clippy).
    pub fn start(kind: Kind, what: &'static str) -> Job {
        let kind_name = clap::ValueEnum::to_possible_value(&kind)
            .expect("every kind is a command-line value")
            .get_name()
            .to_owned();
        let mut job = Job {
            what,
            kind_name,
            child: None,
            stdin: None,
            output: None,
        };
        let Ok(xtask) = std::env::current_exe() else {
            return job;
        };
        let Ok(output) = tempfile::tempfile() else {
            return job;
        };
        let (Ok(stdout), Ok(stderr)) = (output.try_clone(), output.try_clone()) else {
            return job;
        };
        let mut command = Command::new(xtask);
        command
            .arg("background")
            .arg(&job.kind_name)
            .current_dir(crate::paths::project_root())
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(stderr);
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        if let Ok(mut child) = command.spawn() {
            job.stdin = child.stdin.take();
            job.child = Some(child);
            job.output = Some(output);
        }
        job
    }

    /// Stops the job and everything it started, and reaps it.
    pub fn cancel(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill_group(&mut child);
            let _ = child.wait();
        }
        self.stdin = None;
    }

    /// Waits for the job; its output, or an error with it.
    pub fn finish(mut self) -> anyhow::Result<String> {
        let Some(mut child) = self.child.take() else {
            bail!(
                "{} could not start beside the steps: the xtask could not start itself again (its binary, {}, or a temporary file for the output); run it alone: `cargo xtask background {}`",
                self.what,
                std::env::current_exe()
                    .map_or_else(|_| "unknown".into(), |exe| exe.display().to_string()),
                self.kind_name
            );
        };
        let status = child.wait()?;
        self.stdin = None;
        let mut said = String::new();
        if let Some(mut output) = self.output.take() {
            output.rewind()?;
            output
                .read_to_string(&mut said)
                .with_context(|| format!("cannot read what {} printed", self.what))?;
        }
        if !status.success() {
            bail!("{} failed ({status}):\n{said}", self.what);
        }
        Ok(said)
    }
}

impl Drop for Job {
    /// A job left running is waited for (no cargo outlives CI), unless CI
    /// is unwinding from a panic: then it is stopped.
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.cancel();
        } else if let Some(child) = &mut self.child {
            let _ = child.wait();
        }
    }
}

/// Runs `kind` as the child [`Job::start`] started.
pub fn serve(kind: Kind) -> anyhow::Result<()> {
    stop_when_ci_is_gone();
    match kind {
        Kind::WindowsLeg => crate::prebuild::build_windows_leg(),
        Kind::Clippy => crate::clippy::check(),
    }
}

/// Watches standard input, CI's pipe: when it closes while this job runs,
/// CI is gone, and the job's group (this process, cargo, rustc) is killed.
fn stop_when_ci_is_gone() {
    std::thread::spawn(|| {
        let mut sink = [0u8; 64];
        let mut stdin = std::io::stdin();
        while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
        kill_own_group();
    });
}

#[cfg(unix)]
fn kill_group(child: &mut Child) {
    // The group's id is the child's pid (`process_group(0)`).
    let group = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
    let _ = child.kill();
}

#[cfg(not(unix))]
fn kill_group(child: &mut Child) {
    let _ = child.kill();
}

#[cfg(unix)]
fn kill_own_group() {
    let _ = nix::sys::signal::killpg(nix::unistd::getpgrp(), nix::sys::signal::Signal::SIGKILL);
}

#[cfg(not(unix))]
fn kill_own_group() {
    std::process::exit(1);
}
