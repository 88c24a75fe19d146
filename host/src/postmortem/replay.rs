//! A replay file: the calls one plugin instance got since init, in order,
//! each a method and an input file. A crash that needs earlier calls (a
//! `put` before the `get` that crashes) reproduces only with them.
//! `fuzz-methods` saves one per finding (`saved_input.rs`);
//! `plugcheck call --replay FILE PLUGIN` runs it in one instance.
//!
//! JSON, so a method name — the plugin's, any string at all — needs no
//! quoting of ours; input files are named relative to the replay file, so
//! the directory can be moved or attached to a bug report whole.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The format this harness writes and reads.
pub const FORMAT: u32 = 1;

/// The file name a saved replay has in its directory.
pub const FILE_NAME: &str = "replay.json";

/// The largest replay file read: thousands of calls with long method names
/// are far below it.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// The calls to make, in order, in one instance since init.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replay {
    /// [`FORMAT`].
    pub plugcheck_replay: u32,
    /// Calls the instance got before the first one here, left out to
    /// bound the replay: with them missing it may not reproduce.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub left_out: u64,
    pub calls: Vec<ReplayCall>,
}

/// One call: a method by the name the plugin registered, and its input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayCall {
    pub method: String,
    /// The input file, relative to the replay file's directory (or
    /// absolute); none for an empty input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

impl Replay {
    /// Reads and checks a replay file; the error says what is wrong with it
    /// and names it.
    pub fn read(path: &Path) -> Result<Replay, String> {
        use std::io::Read as _;
        let shown = path.display();
        let cannot = |error: std::io::Error| format!("cannot read the replay `{shown}`: {error}");
        let metadata = std::fs::metadata(path).map_err(cannot)?;
        if !metadata.is_file() {
            return Err(format!("the replay `{shown}` is not a regular file"));
        }
        let mut text = Vec::new();
        std::fs::File::open(path)
            .map_err(cannot)?
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut text)
            .map_err(cannot)?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(format!(
                "the replay `{shown}` is larger than {} MiB, more than a replay holds",
                MAX_FILE_BYTES >> 20
            ));
        }
        let replay: Replay = serde_json::from_slice(&text).map_err(|error| {
            format!("the replay `{shown}` is not a plugcheck replay file: {error}")
        })?;
        if replay.plugcheck_replay != FORMAT {
            return Err(format!(
                "the replay `{shown}` has format {}, this plugcheck reads format {FORMAT}: replay it with the plugcheck that saved it",
                replay.plugcheck_replay
            ));
        }
        if replay.calls.is_empty() {
            return Err(format!(
                "the replay `{shown}` holds no call: list at least one under `calls`"
            ));
        }
        Ok(replay)
    }

    /// Writes the replay to `path` whole (a temporary file, then a rename).
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut text = serde_json::to_vec_pretty(self).map_err(|error| error.to_string())?;
        text.push(b'\n');
        write_whole(dir, path, &text)
    }
}

impl ReplayCall {
    /// The input file of this call in a replay read from `replay_file`.
    pub fn input_path(&self, replay_file: &Path) -> Option<PathBuf> {
        let input = self.input.as_deref()?;
        let dir = replay_file.parent().unwrap_or(Path::new("."));
        Some(dir.join(input))
    }
}

/// Writes `bytes` to `path` in `dir` atomically.
pub fn write_whole(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .map_err(|error| format!("cannot write in `{}`: {error}", dir.display()))?;
    std::io::Write::write_all(&mut file, bytes)
        .map_err(|error| format!("cannot write `{}`: {error}", path.display()))?;
    file.persist(path)
        .map_err(|error| format!("cannot write `{}`: {error}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_round_trips_and_keeps_hostile_method_names_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let replay = Replay {
            plugcheck_replay: FORMAT,
            left_out: 2,
            calls: vec![
                ReplayCall {
                    method: "put".into(),
                    input: Some("input-0.bin".into()),
                },
                ReplayCall {
                    method: "--get\n'$(rm -rf ~)'".into(),
                    input: None,
                },
            ],
        };
        replay.write(&path).unwrap();
        let read = Replay::read(&path).unwrap();
        assert_eq!(read, replay);
        assert_eq!(
            read.calls[0].input_path(&path).unwrap(),
            dir.path().join("input-0.bin")
        );
        assert_eq!(read.calls[1].input_path(&path), None);
    }

    #[test]
    fn a_file_that_is_not_a_replay_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        for (text, says) in [
            ("{\"calls\": []}", "not a plugcheck replay file"),
            ("{\"plugcheck_replay\": 9, \"calls\": []}", "has format 9"),
            ("{\"plugcheck_replay\": 1, \"calls\": []}", "holds no call"),
            (
                "{\"plugcheck_replay\": 1, \"calls\": [], \"x\": 1}",
                "unknown field",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let error = Replay::read(&path).unwrap_err();
            assert!(
                error.contains(says) && error.contains("x.json"),
                "{text}: {error}"
            );
        }
        assert!(
            Replay::read(dir.path())
                .unwrap_err()
                .contains("not a regular file")
        );
    }
}
