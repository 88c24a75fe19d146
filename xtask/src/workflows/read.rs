//! Reading the workflows: where they are, and the steps that use an
//! action. Shared by the checks (`workflows.rs`) and the rules
//! (`rules.rs`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use yaml_rust2::Yaml;

/// The workflows' folder, from the repository's root.
pub const WORKFLOWS: &str = ".github/workflows";

/// The workflow files, in name order.
pub fn workflow_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = root.join(WORKFLOWS);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list `{}`", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// The steps that use `action` (`owner/name@`).
pub fn steps_using<'a>(steps: &'a [Yaml], action: &'a str) -> impl Iterator<Item = &'a Yaml> {
    steps.iter().filter(move |step| {
        step["uses"]
            .as_str()
            .is_some_and(|uses| uses.starts_with(action))
    })
}
