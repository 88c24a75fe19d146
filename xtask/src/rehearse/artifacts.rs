//! What `upload-artifact` and `download-artifact` leave behind, in a
//! directory standing for the workflow run's artifact storage: an upload
//! copies the files its `path` lines match (rooted, as the action roots
//! them, at the paths' deepest common directory) under the artifact's
//! name, and refuses a name already uploaded in the run (v4 and later
//! do); a download by `pattern` takes every matching artifact, and with
//! `merge-multiple` refuses two files of the same name, which the action
//! would silently overwrite.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

pub struct Store {
    pub dir: PathBuf,
}

/// `if-no-files-found` of an upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfNone {
    Warn,
    Error,
    Ignore,
}

impl Store {
    pub fn upload(
        &self,
        name: &str,
        paths: &str,
        workspace: &Path,
        if_none: IfNone,
    ) -> anyhow::Result<usize> {
        if name.is_empty() {
            bail!("an artifact needs a name");
        }
        let target = self.dir.join(name);
        if target.exists() {
            bail!(
                "an artifact named `{name}` was already uploaded in this run: upload-artifact refuses it (names must be unique within a run)"
            );
        }
        let (include, exclude): (Vec<&str>, Vec<&str>) = paths
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .partition(|line| !line.starts_with('!'));
        let mut files = Vec::new();
        for pattern in &include {
            files.extend(glob(workspace, pattern)?);
        }
        files.retain(|file| {
            !exclude.iter().any(|pattern| {
                glob(workspace, &pattern[1..]).is_ok_and(|excluded| excluded.contains(file))
            })
        });
        if files.is_empty() {
            return match if_none {
                IfNone::Error => bail!(
                    "upload `{name}`: no file matches `{}`",
                    include.join("`, `")
                ),
                IfNone::Warn | IfNone::Ignore => Ok(0),
            };
        }
        let root = common_root(&include);
        for file in &files {
            let relative = file.strip_prefix(&root).unwrap_or(file);
            let to = target.join(relative);
            std::fs::create_dir_all(to.parent().expect("a file in a directory"))?;
            std::fs::copy(workspace.join(file), &to)
                .with_context(|| format!("upload `{name}`: cannot copy `{}`", file.display()))?;
        }
        Ok(files.len())
    }

    /// Downloads artifact `name`, or every one matching `pattern`, into
    /// `into`. Returns the artifacts' names.
    pub fn download(
        &self,
        name: Option<&str>,
        pattern: Option<&str>,
        into: &Path,
        merge_multiple: bool,
    ) -> anyhow::Result<Vec<String>> {
        let mut names: Vec<String> = std::fs::read_dir(&self.dir)?
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let chosen: Vec<String> = match (name, pattern) {
            (Some(name), _) => {
                if !names.iter().any(|n| n == name) {
                    bail!(
                        "download: no artifact named `{name}` (uploaded: {})",
                        names.join(", ")
                    );
                }
                vec![name.to_owned()]
            }
            (None, Some(pattern)) => names.into_iter().filter(|n| wildcard(pattern, n)).collect(),
            (None, None) => names,
        };
        let single = name.is_some();
        let mut placed: Vec<(PathBuf, String)> = Vec::new();
        for artifact in &chosen {
            let from = self.dir.join(artifact);
            let to = if single || merge_multiple {
                into.to_owned()
            } else {
                into.join(artifact)
            };
            for file in walk(&from)? {
                let relative = file
                    .strip_prefix(&from)
                    .expect("walked below it")
                    .to_owned();
                if let Some((_, first)) =
                    placed.iter().find(|(path, _)| *path == to.join(&relative))
                {
                    bail!(
                        "download with merge-multiple: `{}` is in both `{first}` and `{artifact}`; one overwrites the other",
                        relative.display()
                    );
                }
                std::fs::create_dir_all(to.join(&relative).parent().expect("a parent"))?;
                std::fs::copy(&file, to.join(&relative))?;
                placed.push((to.join(&relative), artifact.clone()));
            }
        }
        Ok(chosen)
    }
}

/// `*` matches any run of characters (artifact names, path segments).
pub fn wildcard(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            let Some(rest) = text.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|&at| rest.is_char_boundary(at))
                .any(|at| wildcard(tail, &rest[at..]))
        }
    }
}

/// The workspace-relative files `pattern` matches (`*` within a segment).
fn glob(workspace: &Path, pattern: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = vec![PathBuf::new()];
    for segment in pattern.split('/').filter(|s| !s.is_empty() && *s != ".") {
        let mut next = Vec::new();
        for base in &found {
            if segment.contains('*') {
                let Ok(entries) = std::fs::read_dir(workspace.join(base)) else {
                    continue;
                };
                for entry in entries.filter_map(Result::ok) {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if wildcard(segment, &name) {
                        next.push(base.join(name));
                    }
                }
            } else if workspace.join(base).join(segment).exists() {
                next.push(base.join(segment));
            }
        }
        found = next;
    }
    found.retain(|path| workspace.join(path).is_file());
    found.sort();
    Ok(found)
}

/// The deepest directory all patterns' literal parts share.
fn common_root(patterns: &[&str]) -> PathBuf {
    let dirs: Vec<Vec<&str>> = patterns
        .iter()
        .map(|pattern| {
            let segments: Vec<&str> = pattern.split('/').collect();
            let literal = segments.iter().take_while(|s| !s.contains('*')).count();
            // A literal file's root is its directory.
            let keep = if literal == segments.len() {
                literal - 1
            } else {
                literal
            };
            segments[..keep].to_vec()
        })
        .collect();
    let mut root = PathBuf::new();
    let Some(first) = dirs.first() else {
        return root;
    };
    for (i, segment) in first.iter().enumerate() {
        if dirs.iter().all(|dir| dir.get(i) == Some(segment)) {
            root.push(segment);
        } else {
            break;
        }
    }
    root
}

fn walk(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            files.extend(walk(&path)?);
        } else {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_before_an_empty_suffix_takes_another_callers_artifacts() {
        assert!(wildcard("plugcheck-shard-*", "plugcheck-shard-1-codec"));
        assert!(!wildcard(
            "plugcheck-shard-*-filter",
            "plugcheck-shard-1-codec"
        ));
        assert!(wildcard("plugcheck-shard-*", "plugcheck-shard-2"));
    }

    #[test]
    fn uploads_are_unique_and_merging_same_named_files_is_refused() {
        let work = tempfile::tempdir().unwrap();
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store {
            dir: store_dir.path().to_owned(),
        };
        std::fs::write(work.path().join("shard.json"), "1").unwrap();
        store
            .upload("s-1", "shard.json", work.path(), IfNone::Error)
            .unwrap();
        assert!(
            store
                .upload("s-1", "shard.json", work.path(), IfNone::Error)
                .is_err()
        );
        store
            .upload("s-2", "shard.json", work.path(), IfNone::Error)
            .unwrap();
        let into = tempfile::tempdir().unwrap();
        let error = store
            .download(None, Some("s-*"), into.path(), true)
            .unwrap_err();
        assert!(error.to_string().contains("overwrites"), "{error:#}");
        assert!(
            store
                .upload("none", "missing.json", work.path(), IfNone::Error)
                .is_err()
        );
        assert_eq!(
            store
                .upload("none", "missing.json", work.path(), IfNone::Warn)
                .unwrap(),
            0
        );
    }

    #[test]
    fn an_upload_is_rooted_at_the_paths_common_directory() {
        let work = tempfile::tempdir().unwrap();
        for leg in ["linux", "windows"] {
            std::fs::create_dir_all(work.path().join("t/p").join(leg)).unwrap();
            std::fs::write(work.path().join("t/p").join(leg).join("report.json"), leg).unwrap();
        }
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store {
            dir: store_dir.path().to_owned(),
        };
        let n = store
            .upload(
                "r",
                "t/p/*/report.json\nt/p/*/junit.xml",
                work.path(),
                IfNone::Warn,
            )
            .unwrap();
        assert_eq!(n, 2);
        assert!(store_dir.path().join("r/linux/report.json").is_file());
    }
}
