//! The `plugcheck` binary as a user meets it: exit codes, one-line
//! diagnoses naming the file, and a JSON report that is written whole.
//! Real plugins are judged by the conformance run; these need none.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn plugcheck(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plugcheck"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the plugcheck binary runs")
}

fn check(paths: &[&Path], extra: &[&str]) -> (i32, String, String) {
    let mut args: Vec<&std::ffi::OsStr> = vec!["check".as_ref()];
    args.extend(extra.iter().map(|arg| std::ffi::OsStr::new(*arg)));
    args.extend(paths.iter().map(|path| path.as_os_str()));
    let output = plugcheck(&args);
    (
        output.status.code().expect("exited, not killed"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A real system library that is not a plugin: zlib, found by the C
/// compiler the project already needs.
fn libz() -> PathBuf {
    let found = Command::new("cc")
        .arg("-print-file-name=libz.so.1")
        .output()
        .expect("cc runs (install gcc)");
    let path = PathBuf::from(String::from_utf8(found.stdout).unwrap().trim());
    assert!(
        path.is_absolute(),
        "libz.so.1 not found: apt-get install zlib1g"
    );
    path
}

#[test]
fn a_system_library_is_told_it_is_not_a_plugin() {
    let (code, stdout, _) = check(&[&libz()], &[]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("does not export `plugcheck_entry`"),
        "{stdout}"
    );
    assert!(stdout.contains("it is not a plugcheck plugin"), "{stdout}");
    assert!(stdout.contains("gate: FAILED"), "{stdout}");
}

#[test]
fn bad_inputs_get_one_line_naming_the_file_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.so");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.path().join("notes.so");
    std::fs::write(&text, b"just some words\n").unwrap();
    let missing = dir.path().join("missing.so");
    let cases = [
        (&empty, "is empty (0 bytes)"),
        (&text, "a text file starting with `just some words`"),
        (&missing, "does not exist: build the plugin first"),
        (&dir.path().to_owned(), "is a directory"),
    ];
    for (path, diagnosis) in cases {
        let (code, stdout, stderr) = check(&[path], &["--filter", "load"]);
        assert_eq!(code, 1, "{}: {stdout}{stderr}", path.display());
        let line = stdout
            .lines()
            .find(|line| line.contains("FAIL"))
            .unwrap_or_else(|| panic!("no FAIL line for {}: {stdout}", path.display()));
        assert!(line.contains(&format!("`{}`", path.display())), "{line}");
        assert!(line.contains(diagnosis), "{line}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn relative_paths_are_resolved_before_loading() {
    let (code, stdout, _) = check(&[Path::new("no-such-plugin.so")], &["--filter", "load"]);
    assert_eq!(code, 1);
    let cwd = std::env::current_dir().unwrap();
    assert!(
        stdout.contains(&format!("`{}`", cwd.join("no-such-plugin.so").display())),
        "{stdout}"
    );
}

#[test]
fn usage_errors_exit_2_and_say_what_to_do() {
    let (code, _, stderr) = check(&[&libz()], &["--filter", "lod"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown case or family `lod`"), "{stderr}");
    assert!(stderr.contains("plugcheck list"), "{stderr}");
    let (code, _, stderr) = check(&[], &[]);
    assert_eq!(code, 2, "no plugin given: {stderr}");
    let (code, _, stderr) = check(&[&libz()], &["--timeout", "soon"]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn the_json_report_is_written_whole_with_nothing_left_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let (code, _, stderr) = check(&[&libz()], &["--json", json.to_str().unwrap()]);
    assert_eq!(code, 1, "{stderr}");
    let report = plugcheck::report::Report::read_json(&json).unwrap();
    assert_eq!(report.plugins.len(), 1);
    assert!(!report.gate_passed());
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "temporary files left: {entries:?}");
}

#[test]
fn an_unwritable_report_path_is_a_harness_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"").unwrap();
    let json = blocker.join("report.json");
    let (code, stdout, stderr) = check(&[&libz()], &["--json", json.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot write the report"), "{stderr}");
    // Refused before the run, not after it: no plugin was checked.
    assert!(!stdout.contains("plugin(s) checked"), "{stdout}");
}

/// `plugcheck list` against the README's table of the cases, which is
/// written by hand, not from the catalog: the same ids, in the same order,
/// in the same families, each described as the README describes it (which
/// may add a parenthesis). Not against `CaseId::ALL`: that is what `list`
/// prints from, so a case missing from both, or described differently
/// from what users read, would pass.
#[test]
fn list_names_every_case_the_readme_documents() {
    let output = plugcheck(&["list".as_ref()]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let mut rows = text.lines();
    assert!(rows.next().unwrap().starts_with("CASE"), "{text}");
    let listed: Vec<(String, String, String)> = rows
        .map(|row| {
            let mut words = row.splitn(2, ' ');
            let id = words.next().unwrap().to_owned();
            let rest = words.next().unwrap_or_default().trim_start();
            let mut words = rest.splitn(2, ' ');
            let family = words.next().unwrap().to_owned();
            let what = words.next().unwrap_or_default().trim().to_owned();
            (id, family, what)
        })
        .collect();
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let table = readme
        .split("## The cases\n")
        .nth(1)
        .expect("the README has a `## The cases` section");
    let documented: Vec<(String, String, String)> = table
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2) // the header and its rule
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 3, "a row of id, family, checks: {line}");
            (
                cells[0].trim_matches('`').to_owned(),
                cells[1].to_owned(),
                cells[2].to_owned(),
            )
        })
        .collect();
    assert!(
        documented.len() > 10,
        "the README's table of the cases: {documented:?}"
    );
    let ids = |rows: &[(String, String, String)]| -> Vec<(String, String)> {
        rows.iter()
            .map(|(id, family, _)| (id.clone(), family.clone()))
            .collect()
    };
    assert_eq!(
        ids(&listed),
        ids(&documented),
        "`plugcheck list` (left) and the README's table of the cases (right)"
    );
    for ((id, _, what), (_, _, readme_what)) in listed.iter().zip(&documented) {
        assert!(
            readme_what.starts_with(what.as_str()),
            "`{id}`: `plugcheck list` says \"{what}\", the README \"{readme_what}\""
        );
    }
}

#[test]
fn junit_annotations_and_job_summary_are_what_ci_readers_take() {
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let summary = dir.path().join("summary.md");
    let output = Command::new(env!("CARGO_BIN_EXE_plugcheck"))
        .arg("check")
        .arg("--junit")
        .arg(&junit)
        .arg(libz())
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let annotation = stdout
        .lines()
        .find(|line| line.starts_with("::error file="))
        .unwrap_or_else(|| panic!("no ::error annotation in {stdout}"));
    assert!(
        annotation.contains("lookup-entry on linux%3A fail::"),
        "{annotation}"
    );
    // It points at the plugin (a workflow-command property: `,` ends it).
    let file = format!("file={},", libz().display());
    assert!(
        annotation.starts_with(&format!("::error {file}")),
        "{annotation}"
    );
    let summary = std::fs::read_to_string(&summary).unwrap();
    assert!(summary.contains("| `libz.so.1` | ❌ failed |"), "{summary}");
    assert!(
        summary.contains("| `libz.so.1` | `lookup-entry` | fail |"),
        "{summary}"
    );

    // Read back by junitparser, the JUnit reader many CI tools use.
    let parsed = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys\n\
             from junitparser import JUnitXml, Failure, Skipped\n\
             suites = list(JUnitXml.fromfile(sys.argv[1]))\n\
             assert len(suites) == 1, suites\n\
             suite = suites[0]\n\
             cases = {case.name: case for case in suite}\n\
             failure = [r for r in cases['lookup-entry'].result if isinstance(r, Failure)]\n\
             skipped = [r for r in cases['init'].result if isinstance(r, Skipped)]\n\
             print(suite.name, suite.tests, suite.failures, suite.errors, suite.skipped, len(failure), len(skipped), cases['load'].is_passed)\n",
        )
        .arg(&junit)
        .output()
        .expect("python3 runs");
    assert!(
        parsed.status.success(),
        "junitparser could not read the report (install it: pip install junitparser): {}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let cases = plugcheck::catalog::CaseId::ALL.len();
    assert_eq!(
        String::from_utf8_lossy(&parsed.stdout).trim(),
        format!("libz.so.1 (linux) {cases} 1 0 {} 1 1 True", cases - 2)
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_windows_dll_on_linux_points_at_the_windows_platform() {
    let dir = tempfile::tempdir().unwrap();
    let dll = dir.path().join("my_plugin.dll");
    std::fs::write(&dll, b"MZ not really").unwrap();
    let (_, stdout, _) = check(&[&dll], &["--filter", "load"]);
    assert!(
        stdout.contains("`plugcheck check --platform windows` judges it there"),
        "{stdout}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn without_the_windows_harness_the_error_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let dll = dir.path().join("my_plugin.dll");
    std::fs::write(&dll, b"MZ").unwrap();
    // cargo's install directory of this test's own: an installed
    // plugcheck.exe in ~/.cargo/bin would be found.
    let cargo_home = dir.path().join("cargo-home");
    let output = Command::new(env!("CARGO_BIN_EXE_plugcheck"))
        .args(["check", "--platform", "windows"])
        .arg(&dll)
        .env_remove("PLUGCHECK_WINDOWS_HARNESS")
        .env_remove("CARGO_INSTALL_ROOT")
        .env("CARGO_HOME", &cargo_home)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let installed = cargo_home.join("bin/plugcheck.exe");
    assert!(
        stderr.contains("cargo install --locked --path harness --target x86_64-pc-windows-gnu")
            && stderr.contains(&installed.display().to_string())
            && stderr.contains("PLUGCHECK_WINDOWS_HARNESS")
            && stderr.contains("--harness PATH"),
        "{stderr}"
    );
}

/// A crate built without `crate-type = ["cdylib"]` leaves `libkv.rlib`
/// where `libkv.so` was expected: the missing file's diagnosis says so.
#[test]
fn a_missing_library_beside_the_rlib_its_build_made_is_told_the_crate_type() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("lib.rs");
    std::fs::write(&source, "pub fn get() -> u32 { 1 }\n").unwrap();
    let rlib = Command::new("rustc")
        .args([
            "--edition",
            "2021",
            "--crate-type",
            "rlib",
            "--crate-name",
            "kv",
            "-o",
        ])
        .arg(dir.path().join("libkv.rlib"))
        .arg(&source)
        .output()
        .expect("rustc runs");
    assert!(
        rlib.status.success(),
        "{}",
        String::from_utf8_lossy(&rlib.stderr)
    );
    let (code, stdout, _) = check(&[&dir.path().join("libkv.so")], &["--filter", "load"]);
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.contains("libkv.so` does not exist, but `libkv.rlib` beside it does")
            && stdout.contains("built as a Rust library")
            && stdout.contains("crate-type = [\"cdylib\"]` under `[lib]`"),
        "{stdout}"
    );
}

/// `plugcheck ARGS…` that must end within 60 s (a merge that reads a
/// device or waits on a FIFO would not): exit code, stdout, stderr.
fn within_deadline(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_plugcheck"))
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("plugcheck {args:?} did not end within 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    (
        status.code().expect("exited, not killed"),
        String::from_utf8_lossy(&std::fs::read(&out).unwrap()).into_owned(),
        String::from_utf8_lossy(&std::fs::read(&err).unwrap()).into_owned(),
    )
}

/// Six copies of zlib under plugin names (each fails `lookup-entry`
/// quickly) and the JSON report of each of the 3 shards of their check,
/// `extra` options given to the shard `odd` is (if any).
struct ShardedRun {
    dir: tempfile::TempDir,
    shards: Vec<PathBuf>,
}

fn sharded_run(odd: Option<(u32, &[&str])>) -> ShardedRun {
    let dir = tempfile::tempdir().unwrap();
    let plugins: Vec<PathBuf> = (1..=6)
        .map(|n| {
            let path = dir.path().join(format!("libplugin{n}.so"));
            std::fs::copy(libz(), &path).unwrap();
            path
        })
        .collect();
    let shards = (1..=3)
        .map(|index| {
            let json = dir.path().join(format!("shard-{index}.json"));
            let partition = format!("{index}/3");
            let mut extra = vec![
                "--no-config",
                "--partition",
                &partition,
                "--json",
                json.to_str().unwrap(),
            ];
            if let Some((_, more)) = odd.filter(|(at, _)| *at == index) {
                extra.extend(more);
            }
            let paths: Vec<&Path> = plugins.iter().map(PathBuf::as_path).collect();
            let (code, stdout, stderr) = check(&paths, &extra);
            // zlib fails the gate, unless a filter hid the failing case.
            assert!(matches!(code, 0 | 1), "{stdout}{stderr}");
            json
        })
        .collect();
    ShardedRun { dir, shards }
}

fn merge(shards: &[&Path], extra: &[&str]) -> (i32, String, String) {
    let mut args: Vec<&std::ffi::OsStr> = vec!["merge".as_ref()];
    args.extend(extra.iter().map(|arg| std::ffi::OsStr::new(*arg)));
    args.extend(shards.iter().map(|path| path.as_os_str()));
    within_deadline(&args)
}

#[test]
fn a_runs_shards_merge_into_its_gate_and_every_other_set_is_refused_naming_the_shard() {
    let run = sharded_run(None);
    let all: Vec<&Path> = run.shards.iter().map(PathBuf::as_path).collect();
    let merged_json = run.dir.path().join("merged.json");
    let (code, stdout, stderr) = merge(&all, &["--json", merged_json.to_str().unwrap()]);
    assert_eq!(code, 1, "the union's gate: zlib fails it: {stdout}{stderr}");
    assert!(
        stdout.contains("merged 3 shard(s): 6 plugin(s)"),
        "{stdout}"
    );
    let merged = plugcheck::report::Report::read_json(&merged_json).unwrap();
    assert_eq!(merged.plugins.len(), 6);

    let (code, _, stderr) = merge(&[all[0], all[2]], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("shard 2/3 is missing")
            && stderr.contains("1/3 from `")
            && stderr.contains("shard-3.json`"),
        "{stderr}"
    );

    let (code, _, stderr) = merge(&[all[0], all[1], all[2], all[1]], &[]);
    assert_eq!(code, 2, "{stderr}");
    // The same file twice: named as such (a copy under another name is
    // "shard 2/3 again", the merge module's unit tests hold that).
    assert!(stderr.contains("is given twice (shard 2/3)"), "{stderr}");

    // A plugin whose cases were cut away, its stored gate saying passed.
    let mut forged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(all[0]).unwrap()).unwrap();
    let plugin = forged["plugins"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .next()
        .expect("shard 1 holds a plugin");
    plugin["cases"] = serde_json::json!([]);
    plugin["gate"]["passed"] = serde_json::json!(true);
    let forged_path = run.dir.path().join("forged-1.json");
    std::fs::write(&forged_path, serde_json::to_vec(&forged).unwrap()).unwrap();
    let (code, _, stderr) = merge(&[&forged_path, all[1], all[2]], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("has no case results") && stderr.contains("forged-1.json"),
        "{stderr}"
    );
}

#[test]
fn a_filtered_shard_or_one_run_with_other_settings_is_refused() {
    let filtered = sharded_run(Some((2, &["--filter", "load"])));
    let all: Vec<&Path> = filtered.shards.iter().map(PathBuf::as_path).collect();
    let (code, _, stderr) = merge(&all, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("shard-2.json` differs from `") && stderr.contains("in --filter"),
        "{stderr}"
    );

    let seeded = sharded_run(Some((3, &["--seed", "7"])));
    let all: Vec<&Path> = seeded.shards.iter().map(PathBuf::as_path).collect();
    let (code, _, stderr) = merge(&all, &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("shard-3.json` differs from `") && stderr.contains("in --seed"),
        "{stderr}"
    );
}

#[test]
fn a_filtered_run_is_merged_only_when_the_merge_names_its_filter() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("libplugin.so");
    std::fs::copy(libz(), &plugin).unwrap();
    let json = dir.path().join("whole.json");
    let (code, _, _) = check(
        &[&plugin],
        &[
            "--no-config",
            "--filter",
            "load",
            "--json",
            json.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "zlib loads");
    let (code, _, stderr) = merge(&[&json], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("ran only the cases of `--filter load`")
            && stderr.contains("plugcheck merge --filter load"),
        "{stderr}"
    );
    let (code, stdout, stderr) = merge(&[&json], &["--filter", "load"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("only the cases of --filter load"),
        "{stdout}"
    );
}

#[test]
fn merge_reads_only_regular_files_of_bounded_size_and_never_echoes_one() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = merge(&[Path::new("/dev/zero")], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("`/dev/zero` is a character device, not a report"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");

    let fifo = dir.path().join("shard.json");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let (code, _, stderr) = merge(&[&fifo], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("is a FIFO (named pipe), not a report"),
        "{stderr}"
    );

    let (code, _, stderr) = merge(&[dir.path()], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is a directory, not a report"), "{stderr}");

    // 100 MiB of a report's text: refused by its size, before reading.
    let huge = dir.path().join("huge.json");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&huge).unwrap();
        file.write_all(b"{\"tool\": \"").unwrap();
        let chunk = vec![b'A'; 1 << 20];
        for _ in 0..100 {
            file.write_all(&chunk).unwrap();
        }
        file.write_all(b"\"}").unwrap();
    }
    let (code, stdout, stderr) = merge(&[&huge], &[]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("is 100.0 MiB, larger than the 64.0 MiB a report may be"),
        "{}",
        &stderr[..stderr.len().min(2000)]
    );
    assert!(stdout.len() + stderr.len() < 4096, "nothing of it echoed");

    // Under the bound, but with a 10 MiB verdict and a 10 MiB reason: the
    // parser's message and the table are clipped.
    let run = sharded_run(None);
    let mut forged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&run.shards[0]).unwrap()).unwrap();
    forged["plugins"][0]["cases"][0]["verdict"] = serde_json::json!("X".repeat(10 << 20));
    let bad_verdict = dir.path().join("bad-verdict.json");
    std::fs::write(&bad_verdict, serde_json::to_vec(&forged).unwrap()).unwrap();
    let (code, stdout, stderr) = merge(&[&bad_verdict], &[]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("is not a plugcheck JSON report"),
        "{}",
        &stderr[..stderr.len().min(2000)]
    );
    assert!(stdout.len() + stderr.len() < 4096, "{} bytes", stderr.len());

    let long_reasons = dir.path().join("long-reasons.json");
    let mut forged: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&run.shards[0]).unwrap()).unwrap();
    for plugin in forged["plugins"].as_array_mut().unwrap() {
        plugin["cases"][1]["reason"] = serde_json::json!("R".repeat(10 << 20));
    }
    std::fs::write(&long_reasons, serde_json::to_vec(&forged).unwrap()).unwrap();
    let (code, stdout, stderr) = merge(&[&long_reasons, &run.shards[1], &run.shards[2]], &[]);
    assert_eq!(code, 1, "{}", &stderr[..stderr.len().min(2000)]);
    assert!(stdout.len() < 256 * 1024, "{} bytes printed", stdout.len());
}
