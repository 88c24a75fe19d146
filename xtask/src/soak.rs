//! `cargo xtask soak`: the host's soak (`plugcheck-soak`, in the fixtures
//! crate) over the host platform's fixtures for a set time, then a look
//! for any process it left behind once it exited — its own copies (its
//! workers and helpers), and what they started, Go workers included, told
//! by a mark in the environment they inherit. A process that made itself
//! undumpable (the zygote, the namespaces' supervisors) shows neither its
//! program nor its environment to another user: the look is whole as
//! root, which CI runs as. CI runs a short one.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::fixtures;
use crate::platform::Platform;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long the callers call.
    #[arg(long, default_value_t = 60)]
    pub seconds: u64,
}

/// How long the soak's helpers (the spare and the zygote) get to see it
/// gone and end.
const HELPERS_END: Duration = Duration::from_secs(5);

pub fn run(sh: &Shell, args: &Args) -> anyhow::Result<()> {
    if Platform::host() != Platform::Linux {
        bail!("the soak runs on Linux (it reads /proc for what is left behind)");
    }
    let artifacts = fixtures::build(sh, Platform::host(), false, false)?;
    let built = |name: &str| -> anyhow::Result<PathBuf> {
        artifacts
            .built
            .iter()
            .find(|built| built.name == name)
            .map(|built| built.path.clone())
            .with_context(|| format!("the {name} fixture was not built"))
    };
    let [echo, crasher, counter, counter_v2] =
        ["echo", "c-fuzz-crash-or-hang", "counter", "counter-v2"].map(built);
    let (echo, crasher, counter, counter_v2) = (echo?, crasher?, counter?, counter_v2?);
    // The Go-native tenants join where Go built their plugin.
    let go_tally = built("go-native-tally").ok();
    cmd!(
        sh,
        "cargo build --quiet -p plugcheck-fixtures --bin plugcheck-soak"
    )
    .run()?;
    // As /proc/PID/exe names it: through no symbolic link.
    let soak = crate::paths::target_dir()
        .join("debug/plugcheck-soak")
        .canonicalize()
        .context("the soak was not built")?;
    let seconds = args.seconds.to_string();
    let mark = format!("{MARK}={}-{}", std::process::id(), seconds);
    let (mark_name, mark_value) = mark.split_once('=').expect("the mark is NAME=VALUE");
    let status = std::process::Command::new(&soak)
        .args([&seconds])
        .args([&echo, &crasher, &counter, &counter_v2])
        .args(go_tally.iter())
        .env(mark_name, mark_value)
        .status()
        .with_context(|| format!("cannot run `{}`", soak.display()))?;
    let left = left_behind(&soak, &mark);
    println!("processes left after the soak exited: {}", left.len());
    if !status.success() {
        bail!("the soak failed ({status}): see above");
    }
    if !left.is_empty() {
        bail!("the soak left processes behind: {left:?}");
    }
    Ok(())
}

/// The environment variable that marks every process the soak started.
const MARK: &str = "PLUGCHECK_SOAK_MARK";

/// Processes still running `program` (the soak, its workers and helpers
/// are all its copies) or carrying `mark` in their environment (what they
/// started, Go workers too) once its helpers had time to end.
fn left_behind(program: &Path, mark: &str) -> Vec<u32> {
    let give_up = Instant::now() + HELPERS_END;
    loop {
        let left = running(program, mark);
        if left.is_empty() || Instant::now() >= give_up {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn running(program: &Path, mark: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let exe = std::fs::read_link(entry.path().join("exe")).ok()?;
            let zombie = std::fs::read_to_string(entry.path().join("stat"))
                .ok()
                .and_then(|stat| {
                    let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
                    Some(state == 'Z')
                })
                .unwrap_or(true);
            let marked = || {
                std::fs::read(entry.path().join("environ")).is_ok_and(|environ| {
                    environ
                        .split(|&byte| byte == 0)
                        .any(|variable| variable == mark.as_bytes())
                })
            };
            ((exe == program || marked()) && !zombie).then_some(pid)
        })
        .collect()
}
