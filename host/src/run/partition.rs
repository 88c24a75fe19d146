//! The cut of `--partition K/N`: which slice a plugin belongs to, by a
//! hash of its file name alone (so every machine cuts the same slices
//! whatever the order or directory it was given), and the fingerprint of
//! the plugin set a run was cut from, which a report keeps so `plugcheck
//! merge` can tell that its shards cover that set exactly. Pure: no I/O,
//! no report; the report model and the merge build on it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{Xxh3, xxh3_64};

/// The K-th (1-based) of N slices. Written and read as `K/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    pub index: u32,
    pub count: u32,
}

impl Partition {
    /// The whole run: what a report made without `--partition` is.
    pub const WHOLE: Partition = Partition { index: 1, count: 1 };

    /// `2/3` → the second of three slices.
    pub fn parse(text: &str) -> Result<Partition, String> {
        let usage = || {
            format!(
                "`{}` is not a partition: write K/N with 1 ≤ K ≤ N, e.g. 2/3",
                crate::text::clip(&crate::text::one_line(text), 40)
            )
        };
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
        self.of(plugin).index == self.index
    }

    /// The slice of `self.count` that `plugin` belongs to.
    pub fn of(&self, plugin: &Path) -> Partition {
        let hash = xxh3_64(cut_key(plugin));
        Partition {
            index: (hash % u64::from(self.count)) as u32 + 1,
            count: self.count,
        }
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

impl Serialize for Partition {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Partition {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Partition::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// What the cut hashes: the path's last component, after the last `/` or
/// `\` whichever platform reads it, so a Windows report's `Z:\b\x.dll`
/// is cut as `x.dll` by a merge on Linux too, as the Windows harness cut
/// it.
pub(crate) fn cut_key(path: &Path) -> &[u8] {
    let bytes = path.as_os_str().as_encoded_bytes();
    match bytes.iter().rposition(|byte| matches!(byte, b'/' | b'\\')) {
        Some(separator) => &bytes[separator + 1..],
        None => bytes,
    }
}

/// The plugin set a run was cut from: how many plugins it was given and a
/// hash of their file names, sorted (so the order and directories they
/// were given in do not count, as they do not for the cut). A merge
/// computes the same from its shards' plugins: a shard lost, truncated,
/// duplicated or taken from another set shows as a different count or
/// hash. It is a check against mistakes and broken files, not a
/// signature: whoever can edit a report can edit this too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginSet {
    pub count: u64,
    /// `xxh3:` and 16 hex digits.
    pub hash: String,
}

impl PluginSet {
    pub fn of<'a>(plugins: impl IntoIterator<Item = &'a Path>) -> PluginSet {
        let mut keys: Vec<&[u8]> = plugins.into_iter().map(cut_key).collect();
        keys.sort_unstable();
        let mut hasher = Xxh3::new();
        for key in &keys {
            // Length first: `ab`+`c` and `a`+`bc` differ.
            hasher.update(&(key.len() as u64).to_le_bytes());
            hasher.update(key);
        }
        PluginSet {
            count: keys.len() as u64,
            hash: format!("xxh3:{:016x}", hasher.digest()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let long = "9".repeat(10_000);
        assert!(Partition::parse(&long).unwrap_err().len() < 200, "clipped");
        let json = serde_json::to_string(&Partition { index: 2, count: 3 }).unwrap();
        assert_eq!(json, "\"2/3\"");
        assert_eq!(
            serde_json::from_str::<Partition>(&json).unwrap(),
            Partition { index: 2, count: 3 }
        );
        assert!(serde_json::from_str::<Partition>("\"4/3\"").is_err());
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
        let windows = PathBuf::from(r"Z:\build\p7\libplugin_7.so");
        assert_eq!(home(&windows), home(&plugins[7]), "either separator");
        for plugin in &plugins {
            let whole = Partition { index: 1, count: 3 }.of(plugin);
            assert!(whole.selects(plugin));
        }
    }

    #[test]
    fn the_plugin_set_is_its_names_whatever_their_order_or_directory() {
        let a = PluginSet::of([Path::new("/x/a.so"), Path::new("/y/b.so")]);
        let b = PluginSet::of([Path::new(r"Z:\b.so"), Path::new("a.so")]);
        assert_eq!(a, b);
        assert_eq!(a.count, 2);
        assert!(a.hash.starts_with("xxh3:") && a.hash.len() == 21, "{a:?}");
        let fewer = PluginSet::of([Path::new("/x/a.so")]);
        assert_ne!(fewer.hash, a.hash);
        let other = PluginSet::of([Path::new("/x/a.so"), Path::new("/y/c.so")]);
        assert_ne!(other.hash, a.hash);
        let joined = PluginSet::of([Path::new("ab"), Path::new("c")]);
        let split = PluginSet::of([Path::new("a"), Path::new("bc")]);
        assert_ne!(joined.hash, split.hash);
    }
}
