//! The README's "Your first plugin" examples, as an author would use them:
//! each example's files are copied out of the README's own code blocks into
//! an empty directory outside the repository, `/path/to/plugcheck` becomes
//! this checkout, and its commands run there with this `plugcheck` on PATH.
//! So the README cannot rot.
//!
//! Blocks are tagged in their info string: ```` ```rust file=src/lib.rs
//! example=rust ```` is a file of the `rust` example, ```` ```sh
//! example=rust ```` its commands; `needs=windows` marks commands that
//! judge on Windows through Wine (they need the Windows harness:
//! `cargo xtask test --platform all` builds it and sets
//! `PLUGCHECK_WINDOWS_HARNESS`). Linux only: the commands are a Linux
//! shell's.
#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use plugcheck_test_support::skip_log;

/// Where the README says the checkout is.
const PLACEHOLDER: &str = "/path/to/plugcheck";

#[derive(Default)]
struct Example {
    files: Vec<(String, String)>,
    /// (commands, needs Windows)
    commands: Vec<(String, bool)>,
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// The tagged blocks of the README, by example.
fn examples() -> BTreeMap<String, Example> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut examples: BTreeMap<String, Example> = BTreeMap::new();
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        let Some(info) = line.strip_prefix("```") else {
            continue;
        };
        let mut body = String::new();
        for line in lines.by_ref() {
            if line.starts_with("```") {
                break;
            }
            body.push_str(line);
            body.push('\n');
        }
        let tags: BTreeMap<&str, &str> = info
            .split_whitespace()
            .filter_map(|word| word.split_once('='))
            .collect();
        let Some(name) = tags.get("example") else {
            continue;
        };
        let example = examples.entry((*name).to_owned()).or_default();
        let body = body.replace(PLACEHOLDER, &root().display().to_string());
        match tags.get("file") {
            Some(file) => example.files.push(((*file).to_owned(), body)),
            None => example
                .commands
                .push((body, tags.get("needs") == Some(&"windows"))),
        }
    }
    examples
}

/// A fresh directory outside the repository holding `example`'s files.
fn materialize(example: &Example) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (file, body) in &example.files {
        let path = dir.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    dir
}

/// PATH with this `plugcheck` first.
fn path_with_plugcheck() -> std::ffi::OsString {
    let bin = Path::new(env!("CARGO_BIN_EXE_plugcheck")).parent().unwrap();
    std::env::join_paths(std::iter::once(bin.to_owned()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap()
}

/// A bin directory laid out as the README's two `cargo install`s leave
/// `~/.cargo/bin`: `plugcheck` and, beside it, the Windows `plugcheck.exe`
/// (copies: the lookup goes by where the running binary really is).
fn installed_bin(dir: &Path, windows_harness: &Path) -> PathBuf {
    let bin = dir.join("cargo-home/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_plugcheck"), bin.join("plugcheck")).unwrap();
    std::fs::copy(windows_harness, bin.join("plugcheck.exe")).unwrap();
    bin
}

// Go builds here, the README's and plugcheck's workers alike, use the
// user's Go build cache, as an author's builds would, and as the fixture
// builds do (`cargo xtask fixtures`). A cache of each test's own compiled
// Go's standard library anew for every plugin and worker, each release and
// experiment: most of these tests' time. Go keys its cache by release,
// experiment and flags, so no build's result depends on what it holds.

/// Runs one example in a fresh directory; says what it skipped. Returns
/// what its commands printed.
fn run(name: &str, example: &Example) -> String {
    let mut printed = String::new();
    let dir = materialize(example);
    let path = path_with_plugcheck();
    // A prefix of the test's own: `--platform windows` must need no set-up.
    let wine_prefix = dir.path().join("wine-prefix");
    for (commands, needs_windows) in &example.commands {
        // The Windows commands run as after the README's installs: both
        // harnesses in one bin directory, found with no flag and no
        // variable (the xtask says where it built the Windows one).
        let path = if *needs_windows {
            let Some(windows_harness) = std::env::var_os("PLUGCHECK_WINDOWS_HARNESS") else {
                skip_log::skip(
                    &format!("the README's `{name}` example's Windows commands"),
                    "PLUGCHECK_WINDOWS_HARNESS is not set (`cargo xtask test --platform all` builds the Windows harness and sets it)",
                );
                continue;
            };
            let bin = installed_bin(dir.path(), Path::new(&windows_harness));
            std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            )))
            .unwrap()
        } else {
            path.clone()
        };
        let output = Command::new("bash")
            .args(["-euo", "pipefail", "-c", commands])
            .current_dir(dir.path())
            .env("PATH", &path)
            .env_remove("PLUGCHECK_WINDOWS_HARNESS")
            .env("PLUGCHECK_WINE_PREFIX", &wine_prefix)
            .env("CARGO_TARGET_DIR", dir.path().join("target"))
            .env_remove("GITHUB_ACTIONS")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "the README's `{name}` example failed ({}):\n$ {commands}\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains("all passed the gate"),
            "the README's `{name}` example did not pass its gate:\n{stdout}"
        );
        if *needs_windows {
            assert!(
                stdout.contains("windows x86_64 under Wine"),
                "judged on Windows under Wine, and the header says so:\n{stdout}"
            );
        }
        printed.push_str(&stdout);
    }
    printed
}

#[test]
fn the_readme_has_a_complete_example_per_language() {
    let examples = examples();
    for name in ["rust", "c", "go", "go-native", "embed"] {
        let example = examples
            .get(name)
            .unwrap_or_else(|| panic!("the README lost its `{name}` example"));
        assert!(!example.files.is_empty() && !example.commands.is_empty());
    }
}

#[test]
fn the_readme_rust_example_builds_outside_the_repository_and_passes() {
    run("rust", &examples()["rust"]);
}

#[test]
fn the_readme_c_example_builds_outside_the_repository_and_passes() {
    run("c", &examples()["c"]);
}

/// "Embed plugins in your application": the application of
/// `host/examples/embed`, word for word, built outside the repository
/// against this checkout's `plugcheck-host`, serving its three plugins
/// (in process, in a worker, Go-native in the Go worker) as the README's
/// output block says.
#[test]
fn the_readme_embedding_example_serves_its_three_plugins_as_shown() {
    if go_or_skip("the README's embedding example").is_none() {
        return;
    }
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let section = &readme[readme.find("## Embed plugins in your application").unwrap()..];
    let shown = section
        .split("```text\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the section shows the application's output");
    assert!(
        shown.lines().count() >= 3,
        "the output block is empty: {shown:?}"
    );
    let printed = run("embed", &examples()["embed"]);
    for line in shown.lines() {
        assert!(
            printed.lines().any(|printed| printed == line),
            "the application did not print `{line}`:\n{printed}"
        );
    }
}

#[test]
fn the_readme_embedding_example_is_the_one_in_the_repository() {
    let example = &examples()["embed"];
    let dir = root().join("host/examples/embed");
    let checkout = root().display().to_string();
    let mut files: Vec<&str> = example.files.iter().map(|(f, _)| f.as_str()).collect();
    files.sort();
    assert_eq!(files, ["Cargo.toml", "plugins.toml", "src/main.rs"]);
    for (file, body) in &example.files {
        // The README names the checkout; the repository's copy is in it.
        let repository = std::fs::read_to_string(dir.join(file))
            .unwrap()
            .replace("path = \"../..\"", &format!("path = \"{checkout}/host\""));
        assert_eq!(
            body, &repository,
            "host/examples/embed/{file} and the README's differ: change both"
        );
    }
}

/// `go` on PATH; without it, says that `test` is skipped, in the skip log
/// too (`plugcheck_test_support::skip_log`, as the fixture tests do).
fn go_or_skip(test: &str) -> Option<PathBuf> {
    let go = plugcheck::bridge::find_on_path("go");
    if go.is_none() {
        skip_log::skip(test, "go is not installed (apt-get install golang-go)");
    }
    go
}

#[test]
fn the_readme_go_example_builds_outside_the_repository_and_passes() {
    if go_or_skip("the README's Go example").is_some() {
        run("go", &examples()["go"]);
    }
}

#[test]
fn the_readme_go_native_example_builds_outside_the_repository_and_passes() {
    if go_or_skip("the README's Go-native example").is_some() {
        run("go-native", &examples()["go-native"]);
    }
}

/// The README's Go-native plugin built by another Go release than `go` on
/// PATH: refused before `plugin.Open` with both releases named; judged by
/// a worker of its own release once `PLUGCHECK_GO` names that Go, which
/// the cache keeps beside the first worker.
#[test]
fn a_go_native_plugin_of_another_go_release_fails_naming_both_until_plugcheck_go_names_it() {
    let Some(go) = go_or_skip("the second-Go-release test") else {
        return;
    };
    let version_of = |go: &Path| {
        let output = Command::new(go)
            .args(["env", "GOVERSION"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    let default_release = version_of(&go);
    // Debian's versioned Go packages: /usr/lib/go-1.NN/bin/go.
    let other = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("go-1."))
        .map(|entry| entry.path().join("bin/go"))
        .find(|candidate| candidate.is_file() && version_of(candidate) != default_release);
    let Some(other_go) = other else {
        skip_log::skip(
            "the second-Go-release test",
            "no second Go release under /usr/lib/go-1.* (Debian 12: golang-1.21-go from bookworm-backports; `cargo xtask ci` installs it)",
        );
        return;
    };
    let other_release = version_of(&other_go);
    let dir = materialize(&examples()["go-native"]);
    build_go_native(&other_go, dir.path());
    let cache = dir.path().join("plugcheck-cache");
    let check = |plugcheck_go: Option<&std::ffi::OsStr>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_plugcheck"));
        command
            .args(["check", "--color", "never", "hello.so"])
            .current_dir(dir.path())
            .env("PLUGCHECK_CACHE_DIR", &cache)
            .env_remove("PLUGCHECK_GO")
            .env_remove("GITHUB_ACTIONS");
        if let Some(go) = plugcheck_go {
            command.env("PLUGCHECK_GO", go);
        }
        let output = command.output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let (code, stdout) = check(None);
    assert_eq!(code, Some(1), "the gate fails:\n{stdout}");
    let named =
        format!("the plugin was built by {other_release}, this worker by {default_release}");
    assert!(
        stdout.contains(&named),
        "both releases are named ({named}):\n{stdout}"
    );
    let (code, stdout) = check(Some(other_go.as_os_str()));
    assert_eq!(
        code,
        Some(0),
        "judged by a worker of its own release:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!("judged by the Go worker built by {other_release}")),
        "{stdout}"
    );
    let workers = std::fs::read_dir(cache.join("go-worker")).unwrap().count();
    assert_eq!(workers, 2, "one cached worker per Go release");
}

/// The README's Go-native plugin built by another Go release with
/// `GOEXPERIMENT=loopvar`: its release string is `go1.21.13 X:loopvar`, a
/// release plus an experiment. A `go1.21.13` on PATH (as the golang.org/dl
/// wrappers are named) or `PLUGCHECK_GO` gives plugcheck that release, and
/// it builds its worker with the experiment too, so the plugin passes; with
/// neither, the refusal names the release and the experiment apart.
#[test]
fn a_go_native_plugin_built_with_a_go_experiment_is_judged_by_a_worker_with_it() {
    let Some(go) = go_or_skip("the Go-experiment test") else {
        return;
    };
    let version_of = |go: &Path, experiment: &str| {
        let output = Command::new(go)
            .args(["env", "GOVERSION"])
            .env("GOEXPERIMENT", experiment)
            .output()
            .unwrap();
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
    };
    let default_release = version_of(&go, "").unwrap();
    // A Debian versioned Go (/usr/lib/go-1.NN/bin/go) other than `go`
    // that knows the loopvar experiment (Go 1.21 and later).
    let other = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("go-1."))
        .map(|entry| entry.path().join("bin/go"))
        .find(|candidate| {
            candidate.is_file()
                && version_of(candidate, "").is_some_and(|release| release != default_release)
                && version_of(candidate, "loopvar").is_some()
        });
    let Some(other_go) = other else {
        skip_log::skip(
            "the Go-experiment test",
            "no second Go release with GOEXPERIMENT=loopvar under /usr/lib/go-1.* (Debian 12: golang-1.21-go from bookworm-backports; `cargo xtask ci` installs it)",
        );
        return;
    };
    let release = version_of(&other_go, "").unwrap();
    let dir = materialize(&examples()["go-native"]);
    let built = Command::new(&other_go)
        .args([
            "build",
            "-buildmode=plugin",
            "-trimpath",
            "-o",
            "hello.so",
            ".",
        ])
        .current_dir(dir.path())
        .env("GOFLAGS", "-mod=mod")
        .env("GOTOOLCHAIN", "local")
        .env("GOEXPERIMENT", "loopvar")
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    // `go1.21.13` on PATH, before the rest of it.
    let wrappers = dir.path().join("wrappers");
    std::fs::create_dir(&wrappers).unwrap();
    std::os::unix::fs::symlink(&other_go, wrappers.join(&release)).unwrap();
    let mut path = vec![wrappers];
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let path = std::env::join_paths(path).unwrap();
    let cache = dir.path().join("plugcheck-cache");
    let check = |plugcheck_go: Option<&Path>, path: Option<&std::ffi::OsStr>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_plugcheck"));
        command
            .args(["check", "--color", "never", "hello.so"])
            .current_dir(dir.path())
            .env("PLUGCHECK_CACHE_DIR", &cache)
            .env_remove("PLUGCHECK_GO")
            .env_remove("GOEXPERIMENT")
            .env_remove("GITHUB_ACTIONS");
        if let Some(go) = plugcheck_go {
            command.env("PLUGCHECK_GO", go);
        }
        if let Some(path) = path {
            command.env("PATH", path);
        }
        let output = command.output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let judged_by = format!("judged by the Go worker built by {release} X:loopvar");
    let (code, stdout) = check(None, Some(&path));
    assert_eq!(
        code,
        Some(0),
        "`{release}` on PATH builds a worker of that release with the experiment:\n{stdout}"
    );
    assert!(stdout.contains(&judged_by), "{judged_by}:\n{stdout}");
    let (code, stdout) = check(Some(&other_go), None);
    assert_eq!(
        code,
        Some(0),
        "PLUGCHECK_GO gives the release, the plugin the experiment:\n{stdout}"
    );
    assert!(stdout.contains(&judged_by), "{judged_by}:\n{stdout}");
    let (code, stdout) = check(None, None);
    assert_eq!(
        code,
        Some(1),
        "a worker of another release fails it:\n{stdout}"
    );
    let named = format!(
        "the plugin was built by {release} with GOEXPERIMENT=loopvar, this worker by {default_release}: build both with one Go release"
    );
    assert!(stdout.contains(&named), "{named}:\n{stdout}");
    assert!(!stdout.contains("X:loopvar, this worker"), "{stdout}");
}

/// `go build -buildmode=plugin -trimpath -o hello.so .` in `dir` with
/// `go`, as the README's Go-native example says, with caches of the test's.
fn build_go_native(go: &Path, dir: &Path) {
    let built = Command::new(go)
        .args([
            "build",
            "-buildmode=plugin",
            "-trimpath",
            "-o",
            "hello.so",
            ".",
        ])
        .current_dir(dir)
        .env("GOFLAGS", "-mod=mod")
        .env("GOTOOLCHAIN", "local")
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
}

/// Every relative link of the repository's Markdown pages resolves in a
/// clone, and none leaves the repository (a contract kept beside it, in
/// `../shared`, is missing for whoever clones it).
#[test]
fn every_markdown_link_resolves_inside_the_repository() {
    let root = root();
    let mut pages = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|extension| extension == "md") {
            pages.push(path);
        }
    }
    let mut broken = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        let name = page.strip_prefix(&root).unwrap().display().to_string();
        if text.contains("../shared") {
            broken.push(format!("{name}: names `../shared`, outside the repository"));
        }
        for (_, rest) in text
            .match_indices("](")
            .map(|(at, _)| text.split_at(at + 2))
        {
            let target = rest.split([')', ' ']).next().unwrap_or_default();
            let file = target.split('#').next().unwrap_or_default();
            if file.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let resolved = page.parent().unwrap().join(file);
            if !resolved.exists() {
                broken.push(format!("{name}: `{target}` does not exist"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "broken links:\n  {}",
        broken.join("\n  ")
    );
}

/// The README's Go-native plugin with its go.mod requiring the contract at
/// `v0.0.0`, as is natural beside a `replace`: refused, with the version
/// the worker requires and why the version matters under `-trimpath`.
#[test]
fn a_go_native_plugin_requiring_the_contract_at_v0_0_0_is_told_the_version() {
    if go_or_skip("the contract-version test").is_none() {
        return;
    }
    let dir = materialize(&examples()["go-native"]);
    let go_mod = dir.path().join("go.mod");
    let text = std::fs::read_to_string(&go_mod).unwrap();
    let required = format!(
        "require plugcheck.dev/abi {}",
        plugcheck::worker::go::CONTRACT_VERSION
    );
    assert!(text.contains(&required), "{text}");
    std::fs::write(
        &go_mod,
        text.replace(&required, "require plugcheck.dev/abi v0.0.0"),
    )
    .unwrap();
    build_go_native(Path::new("go"), dir.path());
    let output = Command::new(env!("CARGO_BIN_EXE_plugcheck"))
        .args(["check", "--color", "never", "--filter", "load", "hello.so"])
        .current_dir(dir.path())
        .env("PLUGCHECK_CACHE_DIR", dir.path().join("plugcheck-cache"))
        .env_remove("PLUGCHECK_GO")
        .env_remove("GITHUB_ACTIONS")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "the gate fails:\n{stdout}");
    for words in [
        "plugcheck.dev/abi",
        "under -trimpath the module version is part of the package's identity",
        &format!("{required} in go.mod"),
    ] {
        assert!(stdout.contains(words), "`{words}` not said:\n{stdout}");
    }
}
