//! How a report was made: the plugcheck that made it, the slice of which
//! plugin set it judged, and every setting that can change a verdict.
//! `plugcheck merge` joins only shards whose provenance says they are the
//! slices of one run (`shard.rs`). Snapshots never see it: they are made
//! of plugin reports (the fixtures' `normalize.rs`), and this is the run's.

use serde::{Deserialize, Serialize};

use crate::run::partition::{Partition, PluginSet};

/// How a report was made. Reports written before plugcheck recorded it
/// read with none, and cannot be merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// The plugcheck version that ran the cases (`0.1.0`).
    pub version: String,
    /// `K/N` when the run checked one slice (`--partition`); none for a
    /// whole run (what `1/1` would be).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<Partition>,
    /// The plugins the run was given, before `--partition` cut its slice.
    pub plugin_set: PluginSet,
    /// `--filter` as given; empty when every case ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filter: Vec<String>,
    /// The fuzz seed, as `--seed` takes it back.
    pub seed: String,
    /// `--repeat`: runs of each plugin's cases.
    pub repeat: u32,
    pub fuzz_inputs: u32,
    pub load_time_bound_ms: u64,
    pub repeat_cycles: u32,
    pub reload_cycles: u32,
    /// The reload roles that had a build to switch to (`upgrade`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reload_to: Vec<String>,
    /// `xxh3:` of the gate file's bytes; none when the run had no gate
    /// file. Its content, not its path: shards run in different checkouts
    /// of one commit share it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_file: Option<String>,
}

impl Provenance {
    /// The slice this report is: its partition, or the whole run.
    pub fn slice(&self) -> Partition {
        self.partition.unwrap_or(Partition::WHOLE)
    }

    /// The settings two shards of one run share, each with its name as
    /// the command line spells it and its value, in the order a person
    /// would look for a difference: every field but the partition.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        let or_none = |text: String| if text.is_empty() { "none".into() } else { text };
        vec![
            ("plugcheck version", self.version.clone()),
            (
                "plugin set",
                format!(
                    "{} plugin(s), names hashed {}",
                    self.plugin_set.count, self.plugin_set.hash
                ),
            ),
            (
                "--filter",
                match self.filter.join(",") {
                    filter if filter.is_empty() => "none (every case)".into(),
                    filter => filter,
                },
            ),
            ("--seed", self.seed.clone()),
            ("--repeat", self.repeat.to_string()),
            ("--fuzz-inputs", self.fuzz_inputs.to_string()),
            (
                "--load-time-bound",
                format!("{} ms", self.load_time_bound_ms),
            ),
            ("--repeat-cycles", self.repeat_cycles.to_string()),
            ("--reload-cycles", self.reload_cycles.to_string()),
            ("--reload-to roles", or_none(self.reload_to.join(","))),
            (
                "gate file content",
                self.gate_file
                    .clone()
                    .unwrap_or_else(|| "no gate file".into()),
            ),
        ]
    }
}

/// The hash a report records for a gate file's bytes.
pub(crate) fn gate_file_hash(bytes: &[u8]) -> String {
    format!("xxh3:{:016x}", xxhash_rust::xxh3::xxh3_64(bytes))
}
