//! The runner's files between steps: each step gets fresh, empty
//! `GITHUB_OUTPUT`, `GITHUB_ENV`, `GITHUB_PATH` and `GITHUB_STEP_SUMMARY`
//! files; after it, what it wrote becomes the step's outputs, the job's
//! environment, and the job's PATH, each line of `GITHUB_PATH` *prepended*
//! (so the last line written comes first, as on the runner).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// One step's four files.
pub struct StepFiles {
    pub output: PathBuf,
    pub env: PathBuf,
    pub path: PathBuf,
    pub summary: PathBuf,
}

impl StepFiles {
    /// Fresh empty files in `dir`, named for step `index`.
    pub fn fresh(dir: &Path, index: usize) -> anyhow::Result<StepFiles> {
        let file = |name: &str| -> anyhow::Result<PathBuf> {
            let path = dir.join(format!("step{index}-{name}"));
            std::fs::write(&path, "")
                .with_context(|| format!("cannot create `{}`", path.display()))?;
            Ok(path)
        };
        Ok(StepFiles {
            output: file("output")?,
            env: file("env")?,
            path: file("path")?,
            summary: file("summary")?,
        })
    }

    /// The variables a step's script sees for them.
    pub fn variables(&self) -> [(&'static str, &Path); 4] {
        [
            ("GITHUB_OUTPUT", &self.output),
            ("GITHUB_ENV", &self.env),
            ("GITHUB_PATH", &self.path),
            ("GITHUB_STEP_SUMMARY", &self.summary),
        ]
    }
}

/// `NAME=value` lines and `NAME<<DELIMITER` … `DELIMITER` blocks.
pub fn parse_assignments(text: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let mut values = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some((name, delimiter)) = line.split_once("<<") {
            let mut value: Vec<&str> = Vec::new();
            loop {
                match lines.next() {
                    Some(line) if line == delimiter => break,
                    Some(line) => value.push(line),
                    None => bail!("`{name}<<{delimiter}` is never closed by `{delimiter}`"),
                }
            }
            values.insert(name.to_owned(), value.join("\n"));
        } else if let Some((name, value)) = line.split_once('=') {
            values.insert(name.to_owned(), value.to_owned());
        } else {
            bail!("`{line}` is neither `NAME=value` nor `NAME<<DELIMITER`");
        }
    }
    Ok(values)
}

/// The job's PATH after a step wrote `added` to `GITHUB_PATH`: each line
/// goes in front of what is there, in the order written.
pub fn prepend_paths(path: &[String], added: &str) -> Vec<String> {
    let mut path = path.to_vec();
    for line in added.lines().map(str::trim).filter(|line| !line.is_empty()) {
        path.insert(0, line.to_owned());
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_and_env_read_lines_and_heredocs() {
        let values = parse_assignments("shards=[1,2]\nnotes<<EOF\na=b\nc\nEOF\nempty=\n").unwrap();
        assert_eq!(values["shards"], "[1,2]");
        assert_eq!(values["notes"], "a=b\nc");
        assert_eq!(values["empty"], "");
        assert!(parse_assignments("x<<END\nnever closed\n").is_err());
        assert!(parse_assignments("not an assignment\n").is_err());
    }

    #[test]
    fn each_path_line_is_prepended_so_the_last_written_comes_first() {
        let path = vec!["/usr/bin".to_owned()];
        let after = prepend_paths(&path, "C:\\mingw64\\bin\nC:\\mingw32\\bin\n");
        assert_eq!(after, ["C:\\mingw32\\bin", "C:\\mingw64\\bin", "/usr/bin"]);
        let after = prepend_paths(&path, "C:\\mingw32\\bin\nC:\\mingw64\\bin\n");
        assert_eq!(after[0], "C:\\mingw64\\bin");
    }

    #[test]
    fn every_step_starts_with_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        let first = StepFiles::fresh(dir.path(), 0).unwrap();
        std::fs::write(&first.output, "x=1\n").unwrap();
        let second = StepFiles::fresh(dir.path(), 1).unwrap();
        for (_, file) in second.variables() {
            assert_eq!(std::fs::read_to_string(file).unwrap(), "");
        }
    }
}
