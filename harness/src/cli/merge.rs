//! `plugcheck merge`: the shards of a partitioned run (`check --partition
//! K/N --json …`) as one report, one JUnit file and one gate.

use std::path::PathBuf;

use super::{exit, say};
use crate::report::{self, Report, table};
use crate::shard;

#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The shards' JSON reports (`plugcheck check --partition K/N --json`).
    #[arg(required = true, value_name = "REPORT")]
    reports: Vec<PathBuf>,
    /// Write the merged report as JSON to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the merged report as JUnit XML to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

/// Prints the merged tables and exits as `check` would have over the
/// union: 0 when every plugin passed the gate, 1 when one failed.
pub fn run(args: MergeArgs) -> anyhow::Result<u8> {
    for path in args.json.iter().chain(&args.junit) {
        report::check_writable(path)?;
    }
    let shards = args
        .reports
        .iter()
        .map(|path| Ok((path.display().to_string(), Report::read_json(path)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let count = shards.len();
    let merged = shard::merge(shards)?;
    say(&format!(
        "merged {count} report(s): {} plugin(s)\n",
        merged.plugins.len()
    ));
    say(&table::header(
        &merged.tool,
        &merged.platform,
        merged.timeout_ms,
    ));
    for plugin in &merged.plugins {
        say(&table::plugin(plugin));
    }
    say(&table::summary(&merged));
    if let Some(path) = &args.json {
        merged.write_json(path)?;
        say(&format!("report written to {}\n", path.display()));
    }
    if let Some(path) = &args.junit {
        report::junit::write(&merged, path)?;
        say(&format!("JUnit report written to {}\n", path.display()));
    }
    Ok(if merged.gate_passed() {
        exit::PASSED
    } else {
        exit::GATE_FAILED
    })
}
