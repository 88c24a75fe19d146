//! One run laid out phase by phase: `plugcheck check` over a plugin with
//! `PLUGCHECK_TIMELINE` set, so the parent, the spare and the worker (the
//! Go worker too) each
//! record the phases they pass on the clock all processes share
//! (`CLOCK_MONOTONIC`); this side adds the spawn and the reaping. The p50
//! of each phase over the runs, from the spawn, so a regression shows the
//! phase it landed in. Linux only: elsewhere the clock is per process.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use plugcheck::run::timeline::VAR;

use crate::fixtures::Built;

/// The p50 of each phase's time since the spawn, in the order a run
/// passes them.
pub struct Timeline {
    /// What was run: `foundation run over echo`.
    what: String,
    runs: usize,
    /// Phase → p50 nanoseconds since the spawn.
    phases: Vec<(String, u64)>,
}

/// `CLOCK_MONOTONIC` now, as the harness's `os::monotonic_ns` reads it.
fn now_ns() -> anyhow::Result<u64> {
    let now = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .context("cannot read CLOCK_MONOTONIC")?;
    Ok(now.tv_sec() as u64 * 1_000_000_000 + now.tv_nsec() as u64)
}

/// `runs` timed runs of `plugcheck check --filter FILTER` over `plugin`;
/// with `go_cache`, the Go worker is the one built there by the Go-native
/// line (its cache, the Go on PATH).
pub fn measure(
    what: &str,
    plugcheck: &Path,
    plugin: &Built,
    filter: &str,
    runs: usize,
    scratch: &Path,
    go_cache: Option<&Path>,
) -> anyhow::Result<Timeline> {
    let json = scratch.join("timeline.json");
    let file = scratch.join("timeline.txt");
    let mut per_phase: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for _ in 0..runs {
        let _ = std::fs::remove_file(&file);
        let mut command = std::process::Command::new(plugcheck);
        command
            .args(["check", "--filter", filter, "--json"])
            .arg(&json)
            .arg(&plugin.path)
            .env(VAR, &file)
            .stdout(std::process::Stdio::null());
        if let Some(cache) = go_cache {
            command
                .env("PLUGCHECK_CACHE_DIR", cache)
                .env_remove("PLUGCHECK_GO");
        }
        let spawned = now_ns()?;
        let status = command.status()?;
        let reaped = now_ns()?;
        if !status.success() {
            bail!("`plugcheck check` failed for the timeline of a {what}: {status}");
        }
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("plugcheck wrote no timeline to {}", file.display()))?;
        // Each phase's times in this run: a phase passed several times (a
        // case recorded) shows its first and its last.
        let mut times: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for line in text.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let [_pid, phase, ns] = fields[..] else {
                bail!("a timeline line is not `PID PHASE NS`: {line:?}");
            };
            let ns: u64 = ns.parse().with_context(|| format!("in {line:?}"))?;
            times.entry(phase.to_owned()).or_default().push(ns);
        }
        let mut seen: BTreeMap<String, u64> = BTreeMap::new();
        for (phase, times) in times {
            let (first, last) = (times.iter().min(), times.iter().max());
            if let (Some(&first), Some(&last)) = (first, last) {
                if times.len() > 1 {
                    seen.insert(format!("{phase} (last)"), last);
                }
                seen.insert(phase, first);
            }
        }
        seen.insert("reaped".into(), reaped);
        for (phase, ns) in seen {
            per_phase
                .entry(phase)
                .or_default()
                .push(ns.saturating_sub(spawned));
        }
    }
    let mut phases: Vec<(String, u64)> = per_phase
        .into_iter()
        .filter(|(_, times)| times.len() == runs)
        .map(|(phase, mut times)| {
            times.sort_unstable();
            (phase, times[times.len() / 2])
        })
        .collect();
    phases.sort_by_key(|(_, ns)| *ns);
    Ok(Timeline {
        what: what.to_owned(),
        runs,
        phases,
    })
}

impl Timeline {
    pub fn print(&self) {
        println!(
            "phases  one {}, laid out from the spawn (p50 of {} runs; + since the phase before):",
            self.what, self.runs
        );
        let mut before = 0;
        for (phase, ns) in &self.phases {
            println!(
                "        {phase:32} {:7.3} ms  +{:6.3} ms",
                *ns as f64 / 1e6,
                ns.saturating_sub(before) as f64 / 1e6
            );
            before = *ns;
        }
    }
}
