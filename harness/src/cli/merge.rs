//! `plugcheck merge`: the shards of a partitioned run (`check --partition
//! K/N --json …`) as one report, one JUnit file and one gate — once the
//! shards are shown to be exactly the N slices of one run (`shard.rs`).

use std::path::PathBuf;

use super::shared::{exit, say};
use crate::report::{self, Report, table};
use crate::run::shard;

/// Characters of any one text of a shard (a reason, a path, a name) the
/// merge prints: the JSON it writes keeps them whole.
const PRINTED_CHARS: usize = 2000;

#[derive(Debug, clap::Args)]
pub(super) struct MergeArgs {
    /// The shards' JSON reports (`plugcheck check --partition K/N --json`),
    /// every one of the run's N, each once.
    #[arg(required = true, value_name = "REPORT")]
    reports: Vec<PathBuf>,
    /// Gate a filtered run: accept shards run with exactly these cases
    /// (`check --filter`, the same ids or families). Without it, a shard
    /// that ran fewer cases than the whole suite is refused.
    #[arg(long, value_delimiter = ',', value_name = "CASE|FAMILY")]
    filter: Vec<String>,
    /// Write the merged report as JSON to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the merged report as JUnit XML to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

/// Prints the merged tables and exits as `check` would have over the
/// union: 0 when every plugin passed the gate, 1 when one failed, 2 when
/// the shards are not one run's (nothing is written then).
pub(super) fn run(args: MergeArgs) -> anyhow::Result<u8> {
    crate::catalog::select(&args.filter)
        .map_err(|error| anyhow::anyhow!("{error} (in --filter)"))?;
    for path in args.json.iter().chain(&args.junit) {
        report::check_writable(path)?;
    }
    let shards = args
        .reports
        .iter()
        .map(|path| Ok((path.display().to_string(), Report::read_json(path)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let count = shards.len();
    let merged = shard::merge(shards, &args.filter)?;
    let shown = shard::clipped_for_display(&merged, PRINTED_CHARS);
    say(&format!(
        "merged {count} shard(s): {} plugin(s){}\n",
        shown.plugins.len(),
        match &args.filter {
            filter if filter.is_empty() => String::new(),
            filter => format!(
                ", only the cases of --filter {}",
                crate::text::one_line(&filter.join(","))
            ),
        }
    ));
    say(&table::header(
        &shown.tool,
        &shown.platform,
        shown.timeout_ms,
    ));
    for plugin in &shown.plugins {
        say(&table::plugin(plugin));
    }
    say(&table::summary(&shown));
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
