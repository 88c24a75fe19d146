//! The Go worker (`host/go-worker/`), which judges Go-native plugins:
//! only a Go program can `plugin.Open` one. Its sources and the Go contract
//! (`plugins/abi/go/`) are compiled into this binary, so `plugcheck check`
//! needs nothing from the repository: the first Go-native plugin builds the
//! worker with the Go toolchain the plugin needs, into a cache keyed by
//! that toolchain and these sources, and every later run starts it at once.
//!
//! Which Go: `$PLUGCHECK_GO` when set; else `goX.Y.Z` on PATH when the
//! plugin names its release (the `golang.org/dl` wrappers are named so);
//! else `go` on PATH. Go refuses a plugin built by another release, so a
//! worker of the wrong one fails the plugin's `load` naming both.
//!
//! A release string may carry experiments: `go1.21.13 X:loopvar` is Go
//! 1.21.13 with `GOEXPERIMENT=loopvar`, which changes what the runtime and
//! every package compile to, so Go refuses a host built without it. The
//! worker is built with the release's toolchain *and* those experiments
//! ([`GoRelease`]), and cached apart from a worker without them.
//!
//! The worker is built with `-trimpath`, as Go-native plugins must be:
//! without it the source directory of every shared package (this contract
//! included) is part of what Go compares, and a plugin built from another
//! checkout would never load.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use super::workspace::cache_root;
use crate::inspect::kind::GoNative;
use crate::os::find_on_path;

/// The contract module's version the worker is built with; plugins
/// require the same (`require plugcheck.dev/abi v1.0.0`).
pub const CONTRACT_VERSION: &str = "v1.0.0";

/// Files of the worker's build: (directory, name, contents).
const SOURCES: &[(&str, &str, &str)] = &[
    (
        "abi",
        "go.mod",
        include_str!("../../../plugins/abi/go/go.mod"),
    ),
    (
        "abi",
        "plugcheck.go",
        include_str!("../../../plugins/abi/go/plugcheck.go"),
    ),
    ("worker", "main.go", include_str!("../../go-worker/main.go")),
    (
        "worker",
        "protocol.go",
        include_str!("../../go-worker/protocol.go"),
    ),
    (
        "worker",
        "binding.go",
        include_str!("../../go-worker/binding.go"),
    ),
    (
        "worker",
        "session.go",
        include_str!("../../go-worker/session.go"),
    ),
    (
        "worker",
        "catalog.go",
        include_str!("../../go-worker/catalog.go"),
    ),
    (
        "worker",
        "cases.go",
        include_str!("../../go-worker/cases.go"),
    ),
    ("worker", "fuzz.go", include_str!("../../go-worker/fuzz.go")),
    (
        "worker",
        "serve.go",
        include_str!("../../go-worker/serve.go"),
    ),
    (
        "worker",
        "callcontext.go",
        include_str!("../../go-worker/callcontext.go"),
    ),
    (
        "worker",
        "contextcases.go",
        include_str!("../../go-worker/contextcases.go"),
    ),
    (
        "worker",
        "limits.go",
        include_str!("../../go-worker/limits.go"),
    ),
    (
        "worker",
        "leftovers.go",
        include_str!("../../go-worker/leftovers.go"),
    ),
    (
        "worker",
        "subreaper_linux.go",
        include_str!("../../go-worker/subreaper_linux.go"),
    ),
    (
        "worker",
        "subreaper_other.go",
        include_str!("../../go-worker/subreaper_other.go"),
    ),
    (
        "worker",
        "timeline_linux.go",
        include_str!("../../go-worker/timeline_linux.go"),
    ),
    (
        "worker",
        "timeline_other.go",
        include_str!("../../go-worker/timeline_other.go"),
    ),
];

/// The environment variable naming the Go toolchain to build the worker.
pub const GO_VAR: &str = "PLUGCHECK_GO";

/// A built Go worker.
#[derive(Debug, Clone)]
pub struct GoWorker {
    pub exe: PathBuf,
    /// `go1.19.8`: the release that built it, and so the only one whose
    /// plugins it can load.
    pub go_version: String,
}

/// Why there is no Go worker.
#[derive(Debug, thiserror::Error)]
pub enum GoWorkerError {
    #[error(
        "no Go toolchain to build plugcheck's Go worker with: install Go (apt-get install golang-go) or set {GO_VAR} to the `go` that built the plugin{}",
        .wanted.as_ref().map(|v| format!(" ({v})")).unwrap_or_default()
    )]
    NoGo { wanted: Option<String> },
    #[error("{GO_VAR} names `{}`, which is not a file: point it at a `go` binary", .0.display())]
    BadGoVar(PathBuf),
    #[error("cannot prepare the Go worker's build in `{}`: {source}", dir.display())]
    Cache {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("building the Go worker with `{}` failed: {output}", go.display())]
    Build { go: PathBuf, output: String },
}

/// A Go release string as a binary records it (`runtime.Version()`, the
/// build information's `GoVersion`): the release, and the experiments it
/// was built with, if any (`go1.21.13 X:loopvar,nocoverageredesign`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoRelease {
    /// `go1.21.13`: what a toolchain's `go env GOVERSION` says, and the
    /// name of a `golang.org/dl` wrapper.
    pub release: String,
    /// `loopvar,nocoverageredesign`: a `GOEXPERIMENT` value that builds
    /// the same (the `X:` list is written in `GOEXPERIMENT`'s own syntax);
    /// `None` without experiments.
    pub experiments: Option<String>,
}

impl GoRelease {
    /// Reads `go1.21.13` or `go1.21.13 X:loopvar`; anything after the
    /// release that is not an `X:` list is ignored (no Go writes any).
    pub fn parse(version: &str) -> GoRelease {
        let mut words = version.split_whitespace();
        let release = words.next().unwrap_or_default().to_owned();
        let experiments = words
            .find_map(|word| word.strip_prefix("X:"))
            .filter(|list| !list.is_empty())
            .map(str::to_owned);
        GoRelease {
            release,
            experiments,
        }
    }
}

/// The Go worker for `plugin`, built now if the cache has none.
pub fn for_plugin(plugin: &GoNative) -> Result<GoWorker, GoWorkerError> {
    let wanted = plugin.go_version.as_deref().map(GoRelease::parse);
    let go = choose_go(wanted.as_ref().map(|wanted| wanted.release.as_str()))?;
    // Only a release with experiments changes what is built (`build`).
    let wanted = wanted.filter(|wanted| wanted.experiments.is_some());
    let dir = cache_root()
        .join("go-worker")
        .join(format!("{:016x}", cache_key(&go, wanted.as_ref())));
    let exe = dir.join("plugcheck-go-worker");
    if let Some(worker) = cached(&dir, &exe) {
        return Ok(worker);
    }
    // One build at a time in this process; another process building the
    // same key at once is harmless (the last rename wins, same contents).
    static BUILDING: Mutex<()> = Mutex::new(());
    let _building = BUILDING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(worker) = cached(&dir, &exe) {
        return Ok(worker);
    }
    build(&go, wanted.as_ref(), &dir)?;
    cached(&dir, &exe).ok_or_else(|| GoWorkerError::Build {
        go,
        output: "the build reported success but left no worker".into(),
    })
}

fn cached(dir: &Path, exe: &Path) -> Option<GoWorker> {
    let go_version = std::fs::read_to_string(dir.join("go-version")).ok()?;
    exe.is_file().then(|| GoWorker {
        exe: exe.to_owned(),
        go_version: go_version.trim().to_owned(),
    })
}

/// The `go` to build the worker with.
fn choose_go(wanted: Option<&str>) -> Result<PathBuf, GoWorkerError> {
    if let Some(named) = std::env::var_os(GO_VAR).filter(|value| !value.is_empty()) {
        let named = PathBuf::from(named);
        let found = if named.components().count() > 1 {
            named.is_file().then(|| named.clone())
        } else {
            find_on_path(&named.to_string_lossy())
        };
        return found.ok_or(GoWorkerError::BadGoVar(named));
    }
    wanted
        .and_then(find_on_path)
        .or_else(|| find_on_path("go"))
        .ok_or_else(|| GoWorkerError::NoGo {
            wanted: wanted.map(str::to_owned),
        })
}

/// The sources' digest, computed when plugcheck is compiled: hashing their
/// 115 KB at every run cost 0.08 ms on the way to the Go worker's start.
const SOURCES_DIGEST: u64 = sources_digest(SOURCES);

/// FNV-1a over every file's folder, name and contents, each ended by a
/// byte no text has (so moving bytes from one field to the next changes
/// it).
const fn sources_digest(sources: &[(&str, &str, &str)]) -> u64 {
    const fn fold(mut hash: u64, bytes: &[u8]) -> u64 {
        let mut at = 0;
        while at < bytes.len() {
            hash = (hash ^ bytes[at] as u64).wrapping_mul(0x0100_0000_01b3);
            at += 1;
        }
        (hash ^ 0xff).wrapping_mul(0x0100_0000_01b3)
    }
    let mut hash = 0xcbf2_9ce4_8422_2325;
    let mut at = 0;
    while at < sources.len() {
        let (folder, name, contents) = sources[at];
        hash = fold(hash, folder.as_bytes());
        hash = fold(hash, name.as_bytes());
        hash = fold(hash, contents.as_bytes());
        at += 1;
    }
    hash
}

/// What a cached worker depends on: these sources, the release and
/// experiments a plugin built with experiments asks for (which decide
/// whether the build uses them), and the toolchain (its path, size and
/// time, so an upgraded Go in place builds anew) — all known without
/// running Go, so a cached start costs a few `stat`s.
fn cache_key(go: &Path, wanted: Option<&GoRelease>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    SOURCES_DIGEST.hash(&mut hasher);
    CONTRACT_VERSION.hash(&mut hasher);
    wanted
        .map(|wanted| (&wanted.release, &wanted.experiments))
        .hash(&mut hasher);
    let go = std::fs::canonicalize(go).unwrap_or_else(|_| go.to_owned());
    go.hash(&mut hasher);
    if let Ok(metadata) = std::fs::metadata(&go) {
        metadata.len().hash(&mut hasher);
        metadata.modified().ok().hash(&mut hasher);
    }
    hasher.finish()
}

/// Builds the worker into `dir`: sources into a staging directory beside
/// it, `go build`, then one rename, so a half-built worker is never found.
/// When `go` is of the `wanted` release, the worker gets its experiments
/// (`GOEXPERIMENT`) too; a toolchain of another release builds without
/// them: its worker refuses the plugin naming both releases whatever it
/// is built with, and it may not know the experiments at all.
fn build(go: &Path, wanted: Option<&GoRelease>, dir: &Path) -> Result<(), GoWorkerError> {
    let parent = dir.parent().expect("the cache key is a subdirectory");
    let cache_error = |source| GoWorkerError::Cache {
        dir: parent.to_owned(),
        source,
    };
    std::fs::create_dir_all(parent).map_err(cache_error)?;
    remove_abandoned(parent, BUILD_PREFIX);
    let staging = tempfile::Builder::new()
        .prefix(BUILD_PREFIX)
        .tempdir_in(parent)
        .map_err(cache_error)?;
    for (subdir, name, contents) in SOURCES {
        let subdir = staging.path().join(subdir);
        std::fs::create_dir_all(&subdir).map_err(cache_error)?;
        std::fs::write(subdir.join(name), contents).map_err(cache_error)?;
    }
    let go_mod = format!(
        "module plugcheck.dev/go-worker\n\ngo 1.19\n\nrequire plugcheck.dev/abi {CONTRACT_VERSION}\n\nreplace plugcheck.dev/abi => ../abi\n"
    );
    std::fs::write(staging.path().join("worker/go.mod"), go_mod).map_err(cache_error)?;
    let release =
        crate::worker::run_helper(go_command(go, None, staging.path()).args(["env", "GOVERSION"]))
            .ok()
            .filter(|output| output.status.success())
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned());
    let experiments = wanted
        .filter(|wanted| release.as_deref() == Some(wanted.release.as_str()))
        .and_then(|wanted| wanted.experiments.as_deref());
    let output = crate::worker::run_helper(
        go_command(go, experiments, &staging.path().join("worker"))
            .args(["build", "-trimpath", "-o"])
            .arg(staging.path().join("plugcheck-go-worker"))
            .arg("."),
    )
    .map_err(|error| GoWorkerError::Build {
        go: go.to_owned(),
        output: error.to_string(),
    })?;
    if !output.status.success() {
        return Err(GoWorkerError::Build {
            go: go.to_owned(),
            output: crate::text::clip(String::from_utf8_lossy(&output.stderr).trim(), 2000),
        });
    }
    // The release as the worker's own runtime says it (`go env GOVERSION`
    // leaves the experiments out).
    let version = match (release, experiments) {
        (Some(release), Some(experiments)) => format!("{release} X:{experiments}"),
        (Some(release), None) => release,
        (None, _) => "an unknown Go release".into(),
    };
    std::fs::write(staging.path().join("go-version"), version).map_err(cache_error)?;
    // The worker's own package hashes, read once here rather than at every
    // start (it scans its own tens of thousands of symbols for them); a
    // worker without the file reads them itself.
    let facts = crate::worker::run_helper(
        Command::new(staging.path().join("plugcheck-go-worker")).arg("__facts"),
    )
    .ok()
    .filter(|facts| facts.status.success());
    if let Some(facts) = facts {
        std::fs::write(staging.path().join("worker-facts.json"), &facts.stdout)
            .map_err(cache_error)?;
    }
    // The standard library's packages of this release, which the worker
    // does not count as a plugin's (`broughtPackages` in leftovers.go); a
    // worker without the list tells them by their paths.
    let std_packages = crate::worker::run_helper(
        go_command(go, experiments, &staging.path().join("worker")).args(["list", "std"]),
    )
    .ok()
    .filter(|listed| listed.status.success());
    if let Some(listed) = std_packages {
        std::fs::write(staging.path().join("std-packages.txt"), &listed.stdout)
            .map_err(cache_error)?;
    }
    let staged = staging.keep();
    if std::fs::rename(&staged, dir).is_err() {
        // Another process put the same worker there first.
        let _ = std::fs::remove_dir_all(&staged);
    }
    Ok(())
}

/// The fuzz inputs the Go worker reads, as a file in `scratch` (removed
/// with the returned path). The default series (default seed, 256 inputs:
/// ~6 MB) is kept in the cache beside the built workers, written once
/// instead of per run (writing it cost each Go-native run 6 ms; `cargo
/// xtask bench`'s phases), and handed over as a link: the link pins the
/// file the worker reads, and its content is checked whole against the
/// pinned digest first; a file that fails (cut short, changed) is written
/// anew. Any other series, or the default when the cache cannot be used,
/// is written for this run.
pub(crate) fn fuzz_series(scratch: &Path, seed: u64, count: u32) -> Option<tempfile::TempPath> {
    use crate::fuzz::{DEFAULT_INPUTS, DEFAULT_SEED};
    if (seed, count) == (DEFAULT_SEED, DEFAULT_INPUTS)
        && let Some(linked) = cached_series(&cache_root().join("fuzz-series"), scratch)
    {
        return Some(linked);
    }
    let mut file = series_file().tempfile_in(scratch).ok()?;
    crate::fuzz::write_series(file.as_file_mut(), seed, count).ok()?;
    Some(file.into_temp_path())
}

fn series_file() -> tempfile::Builder<'static, 'static> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("fuzz-series-");
    builder
}

/// The default series from `cache`, linked into `scratch` once checked.
fn cached_series(cache: &Path, scratch: &Path) -> Option<tempfile::TempPath> {
    use crate::fuzz::{DEFAULT_INPUTS, DEFAULT_SEED, DEFAULT_SERIES_DIGEST};
    let path = cache.join(format!("v1-{DEFAULT_SERIES_DIGEST}"));
    for _ in 0..2 {
        if let Ok(linked) = series_file().make_in(scratch, |link| std::fs::hard_link(&path, link)) {
            let linked = linked.into_temp_path();
            if std::fs::File::open(&linked).is_ok_and(|file| {
                crate::fuzz::is_series(file, DEFAULT_INPUTS, DEFAULT_SERIES_DIGEST)
            }) {
                return Some(linked);
            }
        }
        std::fs::create_dir_all(cache).ok()?;
        remove_abandoned(cache, WRITING_PREFIX);
        let mut file = tempfile::Builder::new()
            .prefix(WRITING_PREFIX)
            .tempfile_in(cache)
            .ok()?;
        crate::fuzz::write_series(file.as_file_mut(), DEFAULT_SEED, DEFAULT_INPUTS).ok()?;
        file.as_file().sync_all().ok()?;
        file.persist(&path).ok()?;
    }
    None
}

/// The cached series while it is written, before its rename.
const WRITING_PREFIX: &str = ".writing-";

/// The prefix of a worker build's staging directory.
const BUILD_PREFIX: &str = ".build-";

/// Removes what writes into `dir` that were interrupted (the process
/// killed mid-build or mid-write) left an hour or more ago: the entries
/// named with `prefix`. A write running now in another process is younger
/// than that.
fn remove_abandoned(dir: &Path, prefix: &str) {
    const ABANDONED: std::time::Duration = std::time::Duration::from_secs(3600);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let abandoned = entry.file_name().to_string_lossy().starts_with(prefix)
            && entry
                .metadata()
                .and_then(|metadata| metadata.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age >= ABANDONED);
        if abandoned {
            let path = entry.path();
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }
}

/// `go` with an environment that builds from the files given, offline, with
/// this very toolchain, cgo (which `plugin` needs) and `experiments` — and
/// no others: a `GOEXPERIMENT` of the user's environment would make a
/// worker no plugin of that release without it can load.
fn go_command(go: &Path, experiments: Option<&str>, dir: &Path) -> Command {
    let mut command = Command::new(go);
    command
        .current_dir(dir)
        .env("GOEXPERIMENT", experiments.unwrap_or_default())
        .env("CGO_ENABLED", "1")
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOWORK", "off")
        .env("GO111MODULE", "on");
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sources_digest_sees_every_byte_and_where_it_is() {
        let digest = |contents: &'static str| sources_digest(&[("", "a.go", contents)]);
        assert_eq!(SOURCES_DIGEST, sources_digest(SOURCES));
        assert_ne!(digest("package main"), digest("package mainx"));
        // A byte moved from one field to the next is another source tree.
        assert_ne!(
            sources_digest(&[("", "ab", "c")]),
            sources_digest(&[("", "a", "bc")])
        );
    }

    #[test]
    fn a_release_string_is_a_release_and_its_experiments() {
        let parse = |version| {
            let GoRelease {
                release,
                experiments,
            } = GoRelease::parse(version);
            (release, experiments)
        };
        assert_eq!(parse("go1.19.8"), ("go1.19.8".into(), None));
        assert_eq!(
            parse("go1.21.13 X:loopvar"),
            ("go1.21.13".into(), Some("loopvar".into()))
        );
        assert_eq!(
            parse("go1.22.0 X:nocoverageredesign,loopvar"),
            ("go1.22.0".into(), Some("nocoverageredesign,loopvar".into()))
        );
        assert_eq!(parse("go1.21.13 X:"), ("go1.21.13".into(), None));
        assert_eq!(parse("devel go1.23-abc"), ("devel".into(), None));
    }

    /// Every source file of the worker is compiled in: one left out
    /// would only show when a plugin's worker fails to build.
    #[test]
    fn every_worker_source_is_built_in() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("go-worker");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".go") && !name.ends_with("_test.go"))
            .collect();
        on_disk.sort();
        let mut built_in: Vec<String> = SOURCES
            .iter()
            .filter(|(subdir, name, _)| *subdir == "worker" && name.ends_with(".go"))
            .map(|(_, name, _)| (*name).to_owned())
            .collect();
        built_in.sort();
        assert_eq!(built_in, on_disk, "go::SOURCES and host/go-worker differ");
    }

    #[test]
    fn experiments_get_a_worker_of_their_own() {
        let go = Path::new("/usr/bin/go");
        let key = |version| cache_key(go, Some(&GoRelease::parse(version)));
        assert_ne!(cache_key(go, None), key("go1.21.13 X:loopvar"));
        assert_ne!(
            key("go1.21.13 X:loopvar"),
            key("go1.21.13 X:nocoverageredesign")
        );
        assert_ne!(key("go1.21.13 X:loopvar"), key("go1.22.0 X:loopvar"));
        assert_eq!(key("go1.21.13 X:loopvar"), key("go1.21.13 X:loopvar"));
    }

    #[test]
    fn the_cached_series_is_linked_checked_and_written_anew_when_wrong() {
        use crate::fuzz::{DEFAULT_INPUTS, DEFAULT_SEED, DEFAULT_SERIES_DIGEST};
        let dir = tempfile::tempdir().unwrap();
        let (cache, scratch) = (dir.path().join("cache"), dir.path().join("scratch"));
        std::fs::create_dir_all(&scratch).unwrap();
        let mut fresh = Vec::new();
        crate::fuzz::write_series(&mut fresh, DEFAULT_SEED, DEFAULT_INPUTS).unwrap();
        let linked = cached_series(&cache, &scratch).unwrap();
        assert_eq!(std::fs::read(&linked).unwrap(), fresh);
        let cached = cache.join(format!("v1-{DEFAULT_SERIES_DIGEST}"));
        assert_eq!(std::fs::read(&cached).unwrap(), fresh);
        drop(linked);
        // Cut short, or one byte changed: written anew, never handed over.
        for broken in [fresh[..fresh.len() / 2].to_vec(), {
            let mut changed = fresh.clone();
            let last = changed.len() - 1;
            changed[last] ^= 1;
            changed
        }] {
            std::fs::remove_file(&cached).unwrap();
            std::fs::write(&cached, &broken).unwrap();
            let linked = cached_series(&cache, &scratch).unwrap();
            assert_eq!(std::fs::read(&linked).unwrap(), fresh);
        }
        let names: Vec<String> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [format!("v1-{DEFAULT_SERIES_DIGEST}")],
            "nothing half-written left"
        );
    }
}
