//! Findings of `fuzz-methods` kept as replays: the calls the plugin
//! instance got since init, up to the one that broke a method, saved as a
//! replay file (`crate::postmortem::replay`) with their inputs in a directory beside
//! the report, named so a rerun with the same seed finds it again, with the
//! `plugcheck call --replay` command that runs them again in one instance.
//!
//! A sequence can be long (64 methods × 256 inputs), so a replay is bounded:
//! the nearest calls are kept — the trail's last [`MAX_TRAIL_CALLS`], then
//! as many as fit [`MAX_REPLAY_BYTES`] of distinct inputs — and the reason
//! says how many earlier ones were left out.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fuzz;
use crate::outcome::Outcome;
use crate::postmortem::replay::{self, Replay, ReplayCall};
use crate::report::FuzzInput;
use crate::worker::{CallTrail, FuzzCall, MAX_TRAIL_CALLS};

/// Bytes of inputs a saved replay holds at most (each distinct input once;
/// the default series is about 13 MiB in all).
pub(crate) const MAX_REPLAY_BYTES: u64 = 32 << 20;

/// Saves the calls of `calls` (the last is the one that broke the method
/// `found` names) as a replay in `dir`, and fills in where, how many calls
/// and the command that replays them; says why not when it cannot.
pub(crate) fn save(
    found: &mut FuzzInput,
    calls: &CallTrail,
    plugin: &Path,
    dir: Option<&Path>,
    seed: u64,
    timeout: Duration,
) -> Result<(), String> {
    let dir = dir.ok_or("no directory for inputs was given (--inputs-dir)")?;
    let alone = [FuzzCall {
        method: found.method.clone(),
        input: found.index,
    }];
    // No call announced (a worker that does not announce): the one found.
    let (all, left_out): (Vec<&FuzzCall>, u64) = match calls.last() {
        Some(_) => (calls.calls().collect(), calls.left_out()),
        None => (alone.iter().collect(), 0),
    };
    let (kept, cut) = within_bytes(&all, seed, MAX_REPLAY_BYTES);
    let left_out = left_out + cut as u64;
    let path = save_replay(dir, plugin, found, kept, left_out, seed)
        .map_err(|error| format!("{error}; pass --inputs-dir with a directory you can write to"))?;
    let absolute = std::path::absolute(&path).unwrap_or(path);
    found.replay = Some(replay_command(plugin, &absolute, timeout));
    found.saved = Some(absolute.display().to_string());
    found.replay_calls = Some(kept.len() as u64);
    found.left_out = (left_out > 0).then_some(left_out);
    Ok(())
}

/// For an outcome the worker decided (a broken output buffer): saves the
/// calls that led to it, their inputs made again from the seed, and says
/// where in the reason.
pub(crate) fn keep_reported(
    outcome: &mut Outcome,
    calls: &CallTrail,
    plugin: &Path,
    dir: Option<&Path>,
    seed: u64,
    timeout: Duration,
) {
    let Some(found) = outcome
        .detail
        .fuzz
        .as_mut()
        .and_then(|fuzz| fuzz.input.as_mut())
    else {
        return;
    };
    if found.saved.is_some() {
        return;
    }
    let unsaved = save(found, calls, plugin, dir, seed, timeout).err();
    let sentence = sentence(found, unsaved.as_deref());
    outcome.reason.push_str(&sentence);
}

/// "; the 3 calls since init that led to it are saved in …; replay them
/// with `…`", or why they are not.
pub(crate) fn sentence(found: &FuzzInput, unsaved: Option<&str>) -> String {
    match (&found.saved, &found.replay, unsaved) {
        (Some(saved), Some(replay), _) => {
            let calls = found.replay_calls.unwrap_or(1);
            let which = match found.left_out {
                None | Some(0) => format!("the {calls} call(s) since init that led to it"),
                Some(left_out) => format!(
                    "the last {calls} of the {} calls since init that led to it (a replay keeps at most {MAX_TRAIL_CALLS} calls and {} MiB of inputs; without the earlier ones it may not reproduce)",
                    left_out + calls,
                    MAX_REPLAY_BYTES >> 20
                ),
            };
            format!("; {which} are saved in `{saved}`; replay them with `{replay}`")
        }
        (_, _, Some(error)) => format!("; the calls that led to it could not be saved: {error}"),
        _ => String::new(),
    }
}

/// The last calls of `all` whose distinct inputs fit `max_bytes` (the
/// last call always), and how many before them do not.
fn within_bytes<'a, 'b>(
    all: &'b [&'a FuzzCall],
    seed: u64,
    max_bytes: u64,
) -> (&'b [&'a FuzzCall], usize) {
    let mut seen = HashSet::new();
    let mut bytes = 0;
    let mut first = all.len();
    for (at, call) in all.iter().enumerate().rev() {
        if seen.insert(call.input) {
            let size = fuzz::input(seed, call.input).len() as u64;
            if first < all.len() && bytes + size > max_bytes {
                break;
            }
            bytes += size;
        }
        first = at;
    }
    (&all[first..], first)
}

/// Writes the replay's inputs, then the replay file, in the finding's own
/// directory; returns the replay file's path. The directory's name says
/// whose finding it is and which, so a second run with the same seed finds
/// (and rewrites) the same one.
fn save_replay(
    dir: &Path,
    plugin: &Path,
    found: &FuzzInput,
    calls: &[&FuzzCall],
    left_out: u64,
    seed: u64,
) -> Result<PathBuf, String> {
    let stem = plugin
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = format!(
        "{}-{}-{}-{}",
        file_safe(&stem),
        file_safe(&found.method),
        found.index,
        fuzz::seed_text(seed)
    );
    let own = dir.join(name);
    std::fs::create_dir_all(&own)
        .map_err(|error| format!("cannot create `{}`: {error}", own.display()))?;
    let mut written = HashSet::new();
    for call in calls {
        if written.insert(call.input) {
            let path = own.join(input_name(call.input));
            replay::write_whole(&own, &path, &fuzz::input(seed, call.input))?;
        }
    }
    let replay = Replay {
        plugcheck_replay: replay::FORMAT,
        left_out,
        calls: calls
            .iter()
            .map(|call| ReplayCall {
                method: call.method.clone(),
                input: Some(input_name(call.input)),
            })
            .collect(),
    };
    let path = own.join(replay::FILE_NAME);
    replay.write(&path)?;
    Ok(path)
}

/// The file of fuzz input `index` in a replay's directory.
fn input_name(index: u32) -> String {
    format!("input-{index}.bin")
}

/// A name part made of letters, digits, `-` and `_` only, 48 at most: a
/// method name is the plugin's, and may be anything.
fn file_safe(text: &str) -> String {
    let safe: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    if safe.is_empty() { "_".into() } else { safe }
}

/// The command that runs the replay `replay` against `plugin`, quoted for
/// this platform's shell; with the run's timeout when it is not the
/// default, so a hang is cut off as in the run. The plugin comes after
/// `--`, so no path is ever taken for an option.
pub(crate) fn replay_command(plugin: &Path, replay: &Path, timeout: Duration) -> String {
    let word = crate::os::shell_word;
    let default = humantime::parse_duration(crate::outcome::DEFAULT_TIMEOUT).ok();
    let timeout = match Some(timeout) == default {
        true => String::new(),
        false => format!(
            " --timeout {}",
            word(&humantime::format_duration(timeout).to_string())
        ),
    };
    format!(
        "plugcheck call --replay {}{timeout} -- {}",
        word(&replay.display().to_string()),
        word(&plugin.display().to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_replay_command_quotes_what_a_shell_would_split() {
        let command = replay_command(
            Path::new("/tmp/my plugins/-libx.so"),
            Path::new("/tmp/in $(x)/x-parse_it-3-0x1/replay.json"),
            Duration::from_millis(2500),
        );
        assert_eq!(
            shlex::split(&command).unwrap(),
            [
                "plugcheck",
                "call",
                "--replay",
                "/tmp/in $(x)/x-parse_it-3-0x1/replay.json",
                "--timeout",
                "2s 500ms",
                "--",
                "/tmp/my plugins/-libx.so",
            ]
        );
    }

    #[test]
    fn a_replay_keeps_the_last_calls_whose_inputs_fit_the_bound() {
        let seed = fuzz::DEFAULT_SEED;
        let calls: Vec<FuzzCall> = (0..fuzz::DEFAULT_INPUTS)
            .flat_map(|input| {
                ["a", "b"].map(|method| FuzzCall {
                    method: method.into(),
                    input,
                })
            })
            .collect();
        let all: Vec<&FuzzCall> = calls.iter().collect();
        // The default series fits a replay whole.
        assert_eq!(within_bytes(&all, seed, MAX_REPLAY_BYTES).1, 0);
        // A tighter bound keeps the last calls; an input called twice
        // counts once.
        let bound = 1 << 20;
        let (kept, cut) = within_bytes(&all, seed, bound);
        assert!(cut > 0 && kept.len() + cut == all.len(), "{cut}");
        assert_eq!(kept.last().unwrap(), all.last().unwrap());
        let bytes: u64 = kept
            .iter()
            .map(|call| call.input)
            .collect::<HashSet<_>>()
            .into_iter()
            .map(|input| fuzz::input(seed, input).len() as u64)
            .sum();
        assert!(bytes <= bound, "{bytes}");
        let next = fuzz::input(seed, all[cut - 1].input).len() as u64;
        assert!(bytes + next > bound, "it kept as many as fit");
        // The last call is kept even above the bound, with the calls on
        // the same input (both methods on input #4).
        let (kept, _) = within_bytes(&all[..10], seed, 0);
        assert!(kept.len() == 2 && kept.iter().all(|call| call.input == 4));
    }

    #[test]
    fn method_names_become_safe_file_name_parts() {
        assert_eq!(file_safe("../../etc/passwd"), "______etc_passwd");
        assert_eq!(file_safe(""), "_");
        assert_eq!(file_safe(&"x".repeat(100)).len(), 48);
    }
}
