//! `cargo xtask mutants`: how much the tests would notice, measured with
//! cargo-mutants over the modules that decide verdicts and gates. A mutant
//! (one small change: `&&` → `||`, a function returning a constant, a
//! deleted match arm) that every test still passes is a change to a
//! verdict or a gate nothing would catch, so one that survives fails the
//! command — unless `.cargo/mutants.toml` excludes it (`exclude_re`) with
//! a comment saying why it cannot change a verdict.
//!
//! The tests are the harness's unit tests and its CLI tests, plus the
//! fixture tests that judge gates and crashes by running the real binary
//! over built fixtures (`gate`, `crash`, `state`). cargo-mutants builds each mutant
//! in a copy of the tree with its own target directory, so those tests are
//! told (`PLUGCHECK_BIN_BESIDE_TESTS`) to run the `plugcheck` built beside
//! them — the mutated one, which cargo builds because the same `cargo
//! test` runs a `plugcheck` integration test (`cli`). The fixtures they
//! load are not mutated: they stay in this tree's target directory, built
//! first by the conformance run's code path. Left out: the conformance
//! test (it judges a whole run's report, which the mutant did not make),
//! and the tests that scan the machine for orphan processes (`hostile`,
//! `isolation`, `zygote`), which need the conformance lock.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::platform::Platform;

/// A group of source files that decides verdicts or gates, as the command
/// selects them.
#[derive(Debug)]
pub struct Module {
    /// What `--module` names it.
    pub name: &'static str,
    /// The files cargo-mutants mutates, from the workspace root.
    pub files: &'static [&'static str],
    /// Where only some functions of a file decide (the rest describe, or
    /// print): `(file, function)` pairs, and only their mutants are made.
    pub only: &'static [(&'static str, &'static str)],
    /// What it decides.
    pub decides: &'static str,
}

/// Every module the command mutates, in the order it reports them.
pub const MODULES: [Module; 7] = [
    Module {
        name: "policy",
        files: &["host/src/gate/policy.rs"],
        only: &[],
        decides: "which verdicts fail the gate; waivers",
    },
    Module {
        name: "gate",
        files: &["host/src/gate/judge.rs"],
        only: &[],
        decides: "judging a report: waivers applied, verdicts tallied, passed or failed",
    },
    Module {
        name: "plan",
        files: &["host/src/plan.rs"],
        only: &[],
        decides: "the prerequisite ledger: which cases run, which are skipped and why",
    },
    Module {
        name: "repeat",
        files: &["host/src/run/repeat.rs"],
        only: &[],
        decides: "`--repeat`: flaky or steady",
    },
    Module {
        name: "shard",
        files: &["host/src/run/shard.rs", "host/src/run/partition.rs"],
        only: &[],
        decides: "`--partition` and `merge`: which shards make one run",
    },
    Module {
        name: "crash",
        files: &[
            "host/src/cases/crash.rs",
            "host/src/postmortem/death.rs",
            "host/src/plugin/called.rs",
        ],
        only: &[],
        decides: "fuzz-methods and a worker's death: crashed, panicked, refused",
    },
    Module {
        name: "state",
        files: &["host/src/cases/state.rs"],
        only: &[],
        decides: "state-roundtrip's verdict",
    },
];

/// The fixture tests run against each mutant: they judge gates
/// (waivers, `--repeat`, shards), the crash family's findings and
/// state-roundtrip's verdicts with the real binary.
const FIXTURE_TESTS: [&str; 3] = ["gate", "crash", "state"];

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Only these modules (repeatable) [default: all]; `--list-modules` names them.
    #[arg(long = "module", value_name = "NAME")]
    pub modules: Vec<String>,
    /// Print the modules, their files and what they decide, then stop.
    #[arg(long)]
    pub list_modules: bool,
    /// List the mutants that would be tested, then stop (cargo-mutants' `--list`).
    #[arg(long)]
    pub list: bool,
    /// Run only shard K of N (cargo-mutants' `--shard K/N`), e.g. one per CI job.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Mutants built and tested at once, each in its own copy of the tree.
    #[arg(long, default_value_t = 1, conflicts_with = "in_place")]
    pub jobs: u32,
    /// Unit and CLI tests only: no fixtures built, no fixture tests (quicker, catches less).
    #[arg(long)]
    pub unit_only: bool,
    /// Test only the mutants an earlier run in `mutants.out/` did not
    /// catch (cargo-mutants' `--iterate`): re-check the survivors after
    /// adding the tests that kill them.
    #[arg(long)]
    pub iterate: bool,
    /// Mutate this tree instead of a copy (cargo-mutants' `--in-place`):
    /// no copy and no first build; do not edit the sources meanwhile.
    #[arg(long)]
    pub in_place: bool,
}

pub fn run(sh: &Shell, args: &Args) -> anyhow::Result<()> {
    if args.list_modules {
        for module in &MODULES {
            println!(
                "{:<8} {:<60} {}",
                module.name,
                module.files.join(" "),
                module.decides
            );
        }
        return Ok(());
    }
    let modules = select(&args.modules)?;
    ensure_cargo_mutants(sh)?;
    let mut argv = mutants_argv(&modules, args);
    let mut env: Vec<(&str, OsString)> = Vec::new();
    if !args.unit_only && !args.list {
        if Platform::host() != Platform::Linux {
            bail!(
                "the fixture tests run with mutants are Linux's (gate.rs is bash): run `cargo xtask mutants --unit-only` here"
            );
        }
        let artifacts = crate::fixtures::build(sh, Platform::Linux, false, false)?;
        env = fixture_env(&artifacts);
    }
    if args.list {
        argv.push("--list".into());
    } else {
        // cargo-mutants' own baseline tests only the mutated package, and
        // `--test=gate` is not one of its targets: the same tests run here
        // on the unmutated tree instead, and their time sets the timeout.
        let took = baseline(sh, args, &env)?;
        let timeout = (took.as_secs() * 3).max(120);
        argv.extend([
            "--baseline=skip".into(),
            format!("--timeout={timeout}").into(),
        ]);
    }
    eprintln!("$ cargo {}", shown(&argv));
    let started = Instant::now();
    let mut command = duct::cmd("cargo", &argv)
        .dir(sh.current_dir())
        .env("RUST_BACKTRACE", "0")
        .unchecked();
    for (name, value) in &env {
        command = command.env(name, value);
    }
    let status = command.run().context("cannot run cargo-mutants")?.status;
    if args.list {
        return if status.success() {
            Ok(())
        } else {
            bail!("cargo mutants --list failed ({status})")
        };
    }
    let out_dir = crate::paths::project_root().join("mutants.out");
    let results = Results::read(&out_dir)?;
    print!("{}", results.table(&modules));
    eprintln!(
        "mutants run in {:.1} min; outcomes and logs: {}",
        started.elapsed().as_secs_f64() / 60.0,
        out_dir.display()
    );
    // cargo-mutants: 0 all caught, 2 some missed, 3 some timed out; any
    // other status (1 usage, 4 the unmutated tree fails its tests) means
    // the numbers above are not a measurement.
    if !matches!(status.code(), Some(0 | 2 | 3)) {
        bail!(
            "cargo-mutants failed ({status}); see {}",
            out_dir.join("log").display()
        );
    }
    if !results.missed.is_empty() {
        bail!(
            "{} mutant(s) of modules that decide verdicts or gates survived every test (listed above): add a test that kills each, or exclude it in .cargo/mutants.toml with a comment saying why it cannot change a verdict",
            results.missed.len()
        );
    }
    Ok(())
}

/// The modules `names` selects (all of them for none), or which name is
/// unknown and what the known ones are.
fn select(names: &[String]) -> anyhow::Result<Vec<&'static Module>> {
    if names.is_empty() {
        return Ok(MODULES.iter().collect());
    }
    names
        .iter()
        .map(|name| {
            MODULES
                .iter()
                .find(|module| module.name == name)
                .with_context(|| {
                    format!(
                        "no module `{name}`: choose from {}",
                        MODULES
                            .iter()
                            .map(|module| module.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })
        })
        .collect()
}

/// Installs cargo-mutants when `cargo mutants` is not there: it is a
/// developer tool, not a dependency of the workspace.
fn ensure_cargo_mutants(sh: &Shell) -> anyhow::Result<()> {
    if cmd!(sh, "cargo mutants --version")
        .quiet()
        .ignore_stdout()
        .ignore_stderr()
        .run()
        .is_ok()
    {
        return Ok(());
    }
    eprintln!("cargo-mutants is missing: installing it (cargo install --locked cargo-mutants)");
    cmd!(sh, "cargo install --locked cargo-mutants")
        .run()
        .context("cannot install cargo-mutants: run `cargo install --locked cargo-mutants`")
}

/// One `--re` pattern per module file: the whole file, or only the
/// mutants of the functions `only` names in it. (cargo-mutants names a
/// mutant `FILE:LINE:COL: replace FUNCTION -> T with …` or
/// `FILE:LINE:COL: replace … in FUNCTION`.)
fn include_patterns(modules: &[&Module]) -> Vec<String> {
    let mut patterns = Vec::new();
    for module in modules {
        for file in module.files {
            let file_re = file.replace('.', r"\.");
            let functions: Vec<&str> = module
                .only
                .iter()
                .filter(|(only_file, _)| only_file == file)
                .map(|(_, function)| *function)
                .collect();
            if functions.is_empty() {
                patterns.push(format!("^{file_re}:"));
            }
            for function in functions {
                // `replace F -> T with …`, or `… in F`.
                patterns.push(format!(
                    r"^{file_re}:.* {}( |$)",
                    function.replace('.', r"\.")
                ));
            }
        }
    }
    patterns
}

/// cargo-mutants' arguments (after `cargo`). Its outcomes go where it
/// puts them by default, `mutants.out/` at the root (git ignores it):
/// inside `target/` they would be copied with the target directory.
fn mutants_argv(modules: &[&Module], args: &Args) -> Vec<OsString> {
    let mut argv: Vec<OsString> = vec!["mutants".into(), "--no-shuffle".into()];
    for module in modules {
        for file in module.files {
            argv.extend(["--file".into(), (*file).into()]);
        }
    }
    for pattern in include_patterns(modules) {
        argv.extend(["--re".into(), pattern.into()]);
    }
    if args.in_place {
        argv.push("--in-place".into());
    } else {
        argv.extend(["--jobs".into(), args.jobs.to_string().into()]);
        // The copy takes the target directory along: the dependencies the
        // fixtures build compiled are reused, and the first build only
        // rebuilds the workspace's crates.
        argv.push("--copy-target=true".into());
    }
    if args.iterate {
        argv.push("--iterate".into());
    }
    if let Some(shard) = &args.shard {
        argv.extend(["--shard".into(), shard.into()]);
    }
    argv.extend([
        "--test-package".into(),
        test_packages(args).join(",").into(),
    ]);
    for arg in test_args(args) {
        argv.push(format!("--cargo-test-arg={arg}").into());
    }
    argv
}

/// The packages whose tests judge each mutant: the engine's (the mutated
/// files are `plugcheck-host`'s), the harness's command line, and the
/// fixture tests.
fn test_packages(args: &Args) -> Vec<&'static str> {
    if args.unit_only {
        vec!["plugcheck-host", "plugcheck"]
    } else {
        vec!["plugcheck-host", "plugcheck", "plugcheck-fixtures"]
    }
}

/// What `cargo test` is given besides the packages: the engine's and the
/// harness's unit tests, the CLI tests, and the fixture tests. `cli` also makes cargo build the
/// mutated `plugcheck` binary, which the fixture tests run; they are
/// `#[ignore]`d in a plain `cargo test`, hence `--include-ignored`.
fn test_args(args: &Args) -> Vec<String> {
    let mut test_args = vec!["--lib".to_owned(), "--test=cli".to_owned()];
    if !args.unit_only {
        test_args.extend(FIXTURE_TESTS.iter().map(|test| format!("--test={test}")));
    }
    test_args.extend(["--".to_owned(), "--include-ignored".to_owned()]);
    test_args
}

/// Runs the mutants' tests on the unmutated tree: they must pass, or no
/// mutant's result means anything. Returns how long they took.
fn baseline(
    sh: &Shell,
    args: &Args,
    env: &[(&str, OsString)],
) -> anyhow::Result<std::time::Duration> {
    let mut argv: Vec<String> = vec!["test".into(), "--quiet".into()];
    for package in test_packages(args) {
        argv.extend(["-p".into(), package.into()]);
    }
    argv.extend(test_args(args));
    // Built first, so the time measured is the tests'.
    let build: Vec<&str> = argv
        .iter()
        .map(String::as_str)
        .take_while(|arg| *arg != "--")
        .chain(["--no-run"])
        .collect();
    crate::test_failures::cargo(sh, &build)
        .run()
        .context("the unmutated tree does not build its tests")?;
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    eprintln!("$ cargo {} (the unmutated tree)", argv.join(" "));
    let mut command = crate::test_failures::cargo(sh, &argv).env("RUST_BACKTRACE", "0");
    for (name, value) in env {
        command = command.env(name, value);
    }
    let started = Instant::now();
    crate::test_failures::run(command, "the mutants' tests on the unmutated tree")?;
    let took = started.elapsed();
    eprintln!("the unmutated tree passes in {:.0} s", took.as_secs_f64());
    Ok(took)
}

/// What the fixture tests need: the mutated binary beside them, the
/// fixtures this tree built, and which fixtures were skipped and why.
fn fixture_env(artifacts: &crate::fixtures::Artifacts) -> Vec<(&'static str, OsString)> {
    let skipped = artifacts.encoded_skipped();
    let artifacts_dir = artifacts.dir();
    vec![
        (plugcheck_fixtures::built::BIN_BESIDE_TESTS_VAR, "1".into()),
        (
            plugcheck_fixtures::built::ARTIFACTS_VAR,
            artifacts_dir.into(),
        ),
        (plugcheck_fixtures::built::SKIPPED_VAR, skipped.into()),
        // Never write snapshots from a mutant's run.
        ("INSTA_UPDATE", "no".into()),
    ]
}

fn shown(argv: &[OsString]) -> String {
    argv.iter()
        .map(|arg| {
            let arg = arg.to_string_lossy();
            if arg.contains([' ', '(', '|', '$', '*', '\\']) {
                format!("'{arg}'")
            } else {
                arg.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One mutant's outcome, as cargo-mutants lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Caught,
    Missed,
    Unviable,
    Timeout,
}

/// What a run found: each mutant's outcome and the seconds it took.
#[derive(Debug, Default)]
struct Results {
    /// `(name, outcome, seconds)`, name as `FILE:LINE:COL: mutation`.
    mutants: Vec<(String, Outcome, f64)>,
    missed: Vec<String>,
}

impl Results {
    /// Reads `mutants.out/outcomes.json`.
    fn read(out_dir: &Path) -> anyhow::Result<Results> {
        let path = out_dir.join("outcomes.json");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read `{}`: cargo-mutants wrote no outcomes",
                path.display()
            )
        })?;
        Results::parse(&text).with_context(|| format!("cannot understand `{}`", path.display()))
    }

    fn parse(text: &str) -> anyhow::Result<Results> {
        let json: serde_json::Value = serde_json::from_str(text)?;
        let outcomes = json["outcomes"].as_array().context("no `outcomes` list")?;
        let mut results = Results::default();
        for outcome in outcomes {
            let Some(mutant) = outcome["scenario"].get("Mutant") else {
                continue; // the baseline
            };
            let outcome_kind = match outcome["summary"].as_str() {
                Some("CaughtMutant") => Outcome::Caught,
                Some("MissedMutant") => Outcome::Missed,
                Some("Unviable") => Outcome::Unviable,
                Some("Timeout") => Outcome::Timeout,
                other => bail!("a mutant's outcome is {other:?}"),
            };
            let name = mutant_name(mutant).context("a mutant without a name")?;
            let seconds = outcome["phase_results"]
                .as_array()
                .map(|phases| {
                    phases
                        .iter()
                        .filter_map(|phase| phase["duration"].as_f64())
                        .sum()
                })
                .unwrap_or_default();
            if outcome_kind == Outcome::Missed {
                results.missed.push(name.clone());
            }
            results.mutants.push((name, outcome_kind, seconds));
        }
        results.missed.sort();
        Ok(results)
    }

    /// Per module: caught, missed, unviable, timeouts and minutes; then
    /// every missed mutant.
    fn table(&self, modules: &[&Module]) -> String {
        let mut rows: BTreeMap<usize, [f64; 5]> = BTreeMap::new();
        for (name, outcome, seconds) in &self.mutants {
            let index = modules
                .iter()
                .position(|module| {
                    module
                        .files
                        .iter()
                        .any(|file| name.starts_with(&format!("{file}:")))
                })
                .unwrap_or(usize::MAX);
            let row = rows.entry(index).or_default();
            row[*outcome as usize] += 1.0;
            row[4] += seconds / 60.0;
        }
        let mut table = format!(
            "\n{:<10} {:>7} {:>7} {:>9} {:>9} {:>8}\n",
            "module", "caught", "missed", "unviable", "timeouts", "minutes"
        );
        let mut total = [0.0; 5];
        for (index, row) in &rows {
            let name = modules.get(*index).map_or("other", |module| module.name);
            table.push_str(&format!(
                "{name:<10} {:>7} {:>7} {:>9} {:>9} {:>8.1}\n",
                row[0], row[1], row[2], row[3], row[4]
            ));
            for (sum, value) in total.iter_mut().zip(row) {
                *sum += value;
            }
        }
        table.push_str(&format!(
            "{:<10} {:>7} {:>7} {:>9} {:>9} {:>8.1}\n",
            "total", total[0], total[1], total[2], total[3], total[4]
        ));
        if !self.missed.is_empty() {
            table.push_str("\nmissed (no test failed with this change):\n");
            for name in &self.missed {
                table.push_str(&format!("  {name}\n"));
            }
        }
        table
    }
}

/// A mutant's name as cargo-mutants prints it: `FILE:LINE:COL: mutation`.
fn mutant_name(mutant: &serde_json::Value) -> Option<String> {
    if let Some(name) = mutant["name"].as_str() {
        return Some(name.to_owned());
    }
    let file = mutant["file"].as_str()?;
    let line = mutant["span"]["start"]["line"].as_u64()?;
    let column = mutant["span"]["start"]["column"].as_u64()?;
    let genre = mutant["genre"].as_str().unwrap_or_default();
    let replacement = mutant["replacement"].as_str().unwrap_or_default();
    let function = mutant["function"]["function_name"]
        .as_str()
        .unwrap_or_default();
    Some(format!(
        "{file}:{line}:{column}: {genre} {replacement} in {function}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_is_mutated_whole_or_only_in_the_functions_it_names() {
        let plan = Module {
            name: "plan",
            files: &["host/src/plan.rs", "host/src/catalog.rs"],
            only: &[("host/src/catalog.rs", "Need::met_by")],
            decides: "",
        };
        assert_eq!(
            include_patterns(&[&plan]),
            [
                r"^host/src/plan\.rs:",
                r"^host/src/catalog\.rs:.* Need::met_by( |$)",
            ]
        );
        let error = select(&["polcy".to_owned()]).unwrap_err().to_string();
        assert!(error.contains("no module `polcy`") && error.contains("policy, gate"));
        assert_eq!(select(&[]).unwrap().len(), MODULES.len());
        for module in &MODULES {
            for file in module.files {
                assert!(
                    crate::paths::project_root().join(file).is_file(),
                    "{}: `{file}` does not exist",
                    module.name
                );
            }
        }
    }

    #[test]
    fn the_fixture_tests_run_ignored_and_beside_the_engine_and_cli_tests() {
        let args = |unit_only| Args {
            modules: Vec::new(),
            list_modules: false,
            list: false,
            shard: Some("2/4".into()),
            jobs: 1,
            unit_only,
            in_place: false,
            iterate: false,
        };
        let argv = mutants_argv(&MODULES.iter().collect::<Vec<_>>(), &args(false));
        let argv: Vec<String> = argv
            .iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        let joined = argv.join(" ");
        assert!(joined.contains("--shard 2/4"), "{joined}");
        assert!(
            joined.contains("--test-package plugcheck-host,plugcheck,plugcheck-fixtures"),
            "{joined}"
        );
        assert!(
            joined.ends_with(
                "--cargo-test-arg=--lib --cargo-test-arg=--test=cli --cargo-test-arg=--test=gate --cargo-test-arg=--test=crash --cargo-test-arg=--test=state --cargo-test-arg=-- --cargo-test-arg=--include-ignored"
            ),
            "{joined}"
        );
        assert_eq!(
            test_args(&args(true)),
            ["--lib", "--test=cli", "--", "--include-ignored"]
        );
    }

    #[test]
    fn outcomes_are_counted_per_module_and_every_missed_mutant_is_named() {
        let outcome = |name: &str, file: &str, summary: &str| {
            serde_json::json!({
                "scenario": {"Mutant": {"name": name, "file": file}},
                "summary": summary,
                "phase_results": [{"duration": 30.0}, {"duration": 30.0}],
            })
        };
        let json = serde_json::json!({
            "outcomes": [
                {"scenario": "Baseline", "summary": "Success", "phase_results": []},
                outcome("host/src/run/repeat.rs:48:38: replace && with || in behind_prerequisite", "host/src/run/repeat.rs", "MissedMutant"),
                outcome("host/src/run/repeat.rs:15:5: replace combine -> Option<PluginReport> with None", "host/src/run/repeat.rs", "CaughtMutant"),
                outcome("host/src/gate/policy.rs:1:1: replace x -> bool with true", "host/src/gate/policy.rs", "Timeout"),
                outcome("host/src/gate/policy.rs:2:1: replace y -> T with Default::default()", "host/src/gate/policy.rs", "Unviable"),
            ]
        });
        let results = Results::parse(&json.to_string()).unwrap();
        assert_eq!(
            results.missed,
            ["host/src/run/repeat.rs:48:38: replace && with || in behind_prerequisite"]
        );
        let table = results.table(&select(&[]).unwrap());
        assert!(
            table.contains("policy           0       0         1         1      2.0"),
            "{table}"
        );
        assert!(
            table.contains("repeat           1       1         0         0      2.0"),
            "{table}"
        );
        assert!(
            table.contains(
                "missed (no test failed with this change):\n  host/src/run/repeat.rs:48:38"
            ),
            "{table}"
        );
        assert!(
            Results::parse(
                r#"{"outcomes": [{"scenario": {"Mutant": {"name": "a"}}, "summary": "Odd"}]}"#
            )
            .is_err()
        );
    }
}
