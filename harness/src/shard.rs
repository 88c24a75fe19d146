//! Sharding a plugin collection over CI machines: `--partition K/N` picks
//! a slice by a hash of each plugin's file name (so every machine cuts the
//! same slices whatever the order or directory it was given), and
//! [`merge`] joins the shards' reports into the report one run would have
//! made, judged again by the gate they share.

use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::xxh3_64;

use crate::report::Report;

/// The K-th (1-based) of N slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub index: u32,
    pub count: u32,
}

impl Partition {
    /// `2/3` → the second of three slices.
    pub fn parse(text: &str) -> Result<Partition, String> {
        let usage = || format!("`{text}` is not a partition: write K/N with 1 ≤ K ≤ N, e.g. 2/3");
        let (index, count) = text.split_once('/').ok_or_else(usage)?;
        let index: u32 = index.trim().parse().map_err(|_| usage())?;
        let count: u32 = count.trim().parse().map_err(|_| usage())?;
        if index == 0 || count == 0 || index > count {
            return Err(usage());
        }
        Ok(Partition { index, count })
    }

    /// Whether `plugin` is in this slice: by its file name alone.
    pub fn selects(&self, plugin: &Path) -> bool {
        let name = plugin.file_name().unwrap_or(plugin.as_os_str());
        let hash = xxh3_64(name.as_encoded_bytes());
        hash % u64::from(self.count) == u64::from(self.index - 1)
    }

    /// The plugins of this slice, in their given order.
    pub fn slice(&self, plugins: &[PathBuf]) -> Vec<PathBuf> {
        plugins
            .iter()
            .filter(|plugin| self.selects(plugin))
            .cloned()
            .collect()
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Why shards cannot be merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no reports to merge: give the shards' JSON reports")]
    Nothing,
    #[error(
        "`{shard}` comes from {its}, the first report from {first}: merge the shards of one platform's run (`cargo xtask merge-reports` compares platforms)"
    )]
    Platform {
        shard: String,
        its: String,
        first: String,
    },
    #[error(
        "`{shard}` was judged by another gate than the first report (its gate file, --deny-warnings or --deny-skipped differ): run every shard with the same gate"
    )]
    Policy { shard: String },
    #[error(
        "`{shard}` was made by {its}, the first report by {first}: run every shard with the same plugcheck"
    )]
    Tool {
        shard: String,
        its: String,
        first: String,
    },
    #[error(
        "`{plugin}` is in both `{first}` and `{second}`: the shards overlap; give each shard once"
    )]
    Overlap {
        plugin: String,
        first: String,
        second: String,
    },
}

/// The shards (with the names they were read from) as one report: every
/// plugin once, ordered by path, judged again by the shards' gate, so the
/// verdicts and the gate are those of one run over the union.
pub fn merge(shards: Vec<(String, Report)>) -> Result<Report, MergeError> {
    let mut shards = shards.into_iter();
    let (first_name, mut merged) = shards.next().ok_or(MergeError::Nothing)?;
    let mut origin: Vec<(PathBuf, String)> = merged
        .plugins
        .iter()
        .map(|plugin| (plugin.path.clone(), first_name.clone()))
        .collect();
    for (name, shard) in shards {
        if shard.platform != merged.platform {
            return Err(MergeError::Platform {
                shard: name,
                its: shard.platform.describe(),
                first: merged.platform.describe(),
            });
        }
        if shard.policy != merged.policy {
            return Err(MergeError::Policy { shard: name });
        }
        if shard.tool != merged.tool {
            return Err(MergeError::Tool {
                shard: name,
                its: shard.tool,
                first: merged.tool,
            });
        }
        for plugin in shard.plugins {
            if let Some((_, first)) = origin.iter().find(|(path, _)| *path == plugin.path) {
                return Err(MergeError::Overlap {
                    plugin: crate::text::one_line(&plugin.path.display().to_string()).into_owned(),
                    first: first.clone(),
                    second: name,
                });
            }
            origin.push((plugin.path.clone(), name.clone()));
            merged.plugins.push(plugin);
        }
        merged.timeout_ms = merged.timeout_ms.max(shard.timeout_ms);
    }
    merged.plugins.sort_by(|a, b| a.path.cmp(&b.path));
    let policy = merged.policy.clone();
    policy.judge(&mut merged, crate::policy::today());
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_report;

    #[test]
    fn partitions_parse_and_bad_ones_say_how_to_write_them() {
        assert_eq!(
            Partition::parse("2/3"),
            Ok(Partition { index: 2, count: 3 })
        );
        for bad in ["0/3", "4/3", "1/0", "x/2", "3", ""] {
            let error = Partition::parse(bad).unwrap_err();
            assert!(error.contains("K/N"), "{bad}: {error}");
        }
    }

    #[test]
    fn every_plugin_is_in_exactly_one_slice_by_its_file_name() {
        let plugins: Vec<PathBuf> = (0..200)
            .map(|n| PathBuf::from(format!("/build/p{n}/libplugin_{n}.so")))
            .collect();
        let slices: Vec<Vec<PathBuf>> = (1..=3)
            .map(|index| Partition { index, count: 3 }.slice(&plugins))
            .collect();
        let mut union: Vec<&PathBuf> = slices.iter().flatten().collect();
        union.sort();
        let mut given: Vec<&PathBuf> = plugins.iter().collect();
        given.sort();
        assert_eq!(union, given, "every plugin once");
        assert!(slices.iter().all(|slice| slice.len() > 40), "roughly even");
        let moved = PathBuf::from("/elsewhere/libplugin_7.so");
        let home = |path: &Path| (1..=3).find(|&index| Partition { index, count: 3 }.selects(path));
        assert_eq!(
            home(&moved),
            home(&plugins[7]),
            "the directory does not count"
        );
    }

    #[test]
    fn shards_merge_into_one_judged_report_and_refuse_to_overlap() {
        let a = test_report("linux", &[("/p/b.so", &[("load", "fail")])]);
        let b = test_report("linux", &[("/p/a.so", &[("load", "pass")])]);
        let merged = merge(vec![
            ("a.json".into(), a.clone()),
            ("b.json".into(), b.clone()),
        ])
        .unwrap();
        let paths: Vec<&Path> = merged.plugins.iter().map(|p| p.path.as_path()).collect();
        assert_eq!(paths, [Path::new("/p/a.so"), Path::new("/p/b.so")]);
        assert!(!merged.gate_passed(), "judged again: b.so's load failed");
        let error = merge(vec![
            ("a.json".into(), a.clone()),
            ("again.json".into(), a.clone()),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("a.json") && error.contains("again.json"),
            "{error}"
        );
        let windows = test_report("windows", &[]);
        let error = merge(vec![("a.json".into(), a), ("w.json".into(), windows)])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("w.json") && error.contains("windows"),
            "{error}"
        );
        assert!(matches!(merge(Vec::new()), Err(MergeError::Nothing)));
    }
}
