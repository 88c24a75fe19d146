//! Inputs that broke a method, kept: each saved as a file beside the
//! report, named so a rerun with the same seed finds it again, with the
//! `plugcheck call` command that replays it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::fuzz;
use crate::outcome::Outcome;
use crate::report::FuzzInput;

/// Saves `input` (the bytes of `found`) in `dir` and fills in where, and
/// the command that replays it; says why not when it cannot.
pub fn save(
    found: &mut FuzzInput,
    input: &[u8],
    plugin: &Path,
    dir: Option<&Path>,
    seed: u64,
    timeout: Duration,
) -> Result<(), String> {
    let dir = dir.ok_or("no directory for inputs was given (--inputs-dir)")?;
    let path = save_input(dir, plugin, found, input, seed)
        .map_err(|error| format!("{error}; pass --inputs-dir with a directory you can write to"))?;
    found.replay = Some(replay_command(plugin, &found.method, &path, timeout));
    found.saved = Some(path.display().to_string());
    Ok(())
}

/// For an outcome the worker decided (a broken output buffer): saves the
/// input it names, made again from the seed, and says where in the reason.
pub fn keep_reported(
    outcome: &mut Outcome,
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
    let input = fuzz::input(seed, found.index);
    let unsaved = save(found, &input, plugin, dir, seed, timeout).err();
    let sentence = sentence(found, unsaved.as_deref());
    outcome.reason.push_str(&sentence);
}

/// "; the input is saved in …; replay it with `…`", or why it is not.
pub fn sentence(found: &FuzzInput, unsaved: Option<&str>) -> String {
    match (&found.saved, &found.replay, unsaved) {
        (Some(saved), Some(replay), _) => {
            format!("; the input is saved in `{saved}`; replay it with `{replay}`")
        }
        (_, _, Some(error)) => format!("; the input could not be saved: {error}"),
        _ => String::new(),
    }
}

/// Writes a fuzz input where the run keeps them, atomically; returns its
/// path. The name says whose it is and which it is, so a second run with
/// the same seed finds (and rewrites) the same file.
fn save_input(
    dir: &Path,
    plugin: &Path,
    found: &FuzzInput,
    input: &[u8],
    seed: u64,
) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir)
        .map_err(|error| format!("cannot create `{}`: {error}", dir.display()))?;
    let stem = plugin
        .file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = format!(
        "{}-{}-{}-{}.bin",
        file_safe(&stem),
        file_safe(&found.method),
        found.index,
        fuzz::seed_text(seed)
    );
    let path = dir.join(name);
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .map_err(|error| format!("cannot write in `{}`: {error}", dir.display()))?;
    std::io::Write::write_all(&mut file, input)
        .map_err(|error| format!("cannot write `{}`: {error}", path.display()))?;
    file.persist(&path)
        .map_err(|error| format!("cannot write `{}`: {error}", path.display()))?;
    Ok(path)
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

/// The command that calls `method` of `plugin` with the saved input,
/// quoted for this platform's shell; with the run's timeout when it is not
/// the default, so a hang is cut off as in the run.
pub fn replay_command(plugin: &Path, method: &str, input: &Path, timeout: Duration) -> String {
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
        "plugcheck call {} {} --input {}{timeout}",
        word(&plugin.display().to_string()),
        word(method),
        word(&input.display().to_string())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_replay_command_quotes_what_a_shell_would_split() {
        let command = replay_command(
            Path::new("/tmp/my plugins/libx.so"),
            "parse it",
            Path::new("/tmp/in/x-parse_it-3-0x1.bin"),
            Duration::from_millis(2500),
        );
        assert_eq!(
            shlex::split(&command).unwrap(),
            [
                "plugcheck",
                "call",
                "/tmp/my plugins/libx.so",
                "parse it",
                "--input",
                "/tmp/in/x-parse_it-3-0x1.bin",
                "--timeout",
                "2s 500ms"
            ]
        );
    }

    #[test]
    fn method_names_become_safe_file_name_parts() {
        assert_eq!(file_safe("../../etc/passwd"), "______etc_passwd");
        assert_eq!(file_safe(""), "_");
        assert_eq!(file_safe(&"x".repeat(100)).len(), 48);
    }
}
