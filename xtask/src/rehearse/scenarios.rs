//! The workflows' Linux jobs, rehearsed with the inputs a caller gives:
//! conformance.yml's `linux-host` in its container's conditions,
//! release-gate.yml's Linux leg over a plugin repository (the go-echo
//! plugin and its gate file), and gate-shards.yml called twice in one run
//! (two callers, one artifact storage) over the example plugins. The
//! plugins and plugcheck are the conformance run's builds
//! (`cargo xtask conformance` first).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};
use xshell::Shell;
use yaml_rust2::{Yaml, YamlLoader};

use super::artifacts::Store;
use super::job::{Finished, Job, yaml_map};

const OWN_REPOSITORY: &str = "OWNER/plugcheck";

/// Where the workflows are read: the work tree, or a git revision.
pub struct Workflows {
    pub rev: Option<String>,
}

impl Workflows {
    pub fn read(&self, file: &str) -> anyhow::Result<Yaml> {
        let path = format!(".github/workflows/{file}");
        let text = match &self.rev {
            None => {
                let full = crate::paths::project_root().join(&path);
                std::fs::read_to_string(&full)
                    .with_context(|| format!("cannot read `{}`", full.display()))?
            }
            Some(rev) => {
                let output = Command::new("git")
                    .arg("-C")
                    .arg(crate::paths::project_root())
                    .args(["show", &format!("{rev}:{path}")])
                    .output()?;
                if !output.status.success() {
                    bail!("cannot read `{path}` at `{rev}`");
                }
                String::from_utf8(output.stdout)?
            }
        };
        let mut docs =
            YamlLoader::load_from_str(&text).with_context(|| format!("`{path}` is not YAML"))?;
        if docs.is_empty() {
            bail!("`{path}` is empty");
        }
        Ok(docs.swap_remove(0))
    }
}

pub fn run_all(sh: &Shell, workflows: &Workflows, mut failures: Vec<String>) -> anyhow::Result<()> {
    let root = crate::paths::project_root();
    let built = Built::find()?;
    let store_dir = tempfile::tempdir()?;
    let store = Store {
        dir: store_dir.path().to_owned(),
    };
    let sha = xshell::cmd!(sh, "git rev-parse HEAD").quiet().read()?;
    let github = json!({"event_name": "push", "sha": sha, "ref": "refs/heads/main", "repository": OWN_REPOSITORY});

    // conformance.yml: linux-host; the reusable call's inputs.
    let conformance = workflows.read("conformance.yml")?;
    let own = |_: Option<&str>| -> anyhow::Result<PathBuf> { Ok(crate::paths::project_root()) };
    let finished = Job {
        workflow_file: "conformance.yml",
        workflow: &conformance,
        id: "linux-host",
        contexts: contexts(&github, json!({}), json!({}), json!({})),
        repositories: &own,
        store: &store,
        extra_env: Vec::new(),
    }
    .run()?;
    note(&mut failures, "conformance.yml › linux-host", &finished);
    let shards = workflows.read("gate-shards.yml")?;
    let call = &conformance["jobs"]["example-plugins-sharded"];
    let called = call["uses"].as_str().unwrap_or_default();
    if ![
        "$/.github/workflows/gate-shards.yml",
        "./.github/workflows/gate-shards.yml",
    ]
    .contains(&called)
    {
        failures.push(format!("conformance.yml › example-plugins-sharded calls `{called}`, not this repository's `$/.github/workflows/gate-shards.yml`"));
    }
    inputs(&shards, &yaml_map(&call["with"]), &github)
        .context("conformance.yml › example-plugins-sharded calls gate-shards.yml with inputs it does not take")?;
    eprintln!(
        "\n-- rehearse conformance.yml › example-plugins-sharded\n  substituted  the call's inputs were checked against gate-shards.yml's; its build-command is a release build (minutes), so gate-shards.yml runs below with callers that copy the conformance run's builds"
    );
    eprintln!(
        "\n-- conformance.yml › windows-host: a windows-2025 job; its plan is rehearsed above, its steps run only on a runner (docs/ci.md)"
    );

    // A plugin repository: the go-echo plugin and its gate file.
    let plugin_repo = repository(&[
        (
            "prebuilt/go-echo.so",
            Source::File(built.artifact("go-echo")?),
        ),
        (
            "plugcheck.toml",
            Source::File(root.join("plugins/go-echo/plugcheck.toml")),
        ),
        ("prebuilt/echo.so", Source::File(built.artifact("echo")?)),
        (
            "prebuilt/counter.so",
            Source::File(built.artifact("counter")?),
        ),
    ])?;
    let repositories = |repository: Option<&str>| -> anyhow::Result<PathBuf> {
        match repository {
            None => Ok(plugin_repo.path().to_owned()),
            Some(OWN_REPOSITORY) => Ok(crate::paths::project_root()),
            Some(other) => bail!("the rehearsal has no repository `{other}`"),
        }
    };
    let extra_env = vec![(
        "REHEARSAL_PLUGCHECK".to_owned(),
        built.plugcheck.display().to_string(),
    )];

    let gate = workflows.read("release-gate.yml")?;
    let given = [
        ("plugcheck-repository", OWN_REPOSITORY),
        ("plugcheck-ref", "main"),
        (
            "build-command",
            "mkdir -p build && cp prebuilt/go-echo.so build/go-echo.so",
        ),
        ("plugin-linux", "build/go-echo.so"),
        ("plugin-windows", "build/go-echo.dll"),
        ("args", "--reload-cycles 5"),
    ];
    let gate_inputs = inputs(&gate, &owned(&given), &github)?;
    for leg in matrix_legs(&gate["jobs"]["gate"]) {
        if leg["os"].as_str().is_some_and(|os| os.contains("windows")) {
            eprintln!(
                "\n-- release-gate.yml › gate ({}): a windows-2025 leg, run only on a runner",
                leg["os"]
            );
            continue;
        }
        let finished = Job {
            workflow_file: "release-gate.yml",
            workflow: &gate,
            id: "gate",
            contexts: contexts(&github, gate_inputs.clone(), leg, json!({})),
            repositories: &repositories,
            store: &store,
            extra_env: extra_env.clone(),
        }
        .run()?;
        note(&mut failures, "release-gate.yml › gate (linux)", &finished);
    }

    // gate-shards.yml, called twice in one run: the artifacts of one
    // caller must never reach the other's merge.
    let mut merges = Vec::new();
    for suffix in ["", "-codec"] {
        let given = [
            ("plugcheck-repository", OWN_REPOSITORY),
            (
                "build-command",
                "mkdir -p build && cp prebuilt/echo.so prebuilt/counter.so build/",
            ),
            ("plugins", "build/*.so"),
            ("shards", "2"),
            ("artifact-suffix", suffix),
        ];
        let shard_inputs = inputs(&shards, &owned(&given), &github)?;
        let job = |id: &'static str, matrix: Value, needs: Value| Job {
            workflow_file: "gate-shards.yml",
            workflow: &shards,
            id,
            contexts: contexts(&github, shard_inputs.clone(), matrix, needs),
            repositories: &repositories,
            store: &store,
            extra_env: extra_env.clone(),
        };
        let build = job("build", json!({}), json!({})).run()?;
        note(
            &mut failures,
            &format!("gate-shards.yml › build (suffix `{suffix}`)"),
            &build,
        );
        let build_needs = json!({"outputs": build.outputs, "result": result(&build)});
        let matrix = super::expr::evaluate(
            shards["jobs"]["check"]["strategy"]["matrix"]["shard"]
                .as_str()
                .unwrap_or_default()
                .trim()
                .trim_start_matches("${{")
                .trim_end_matches("}}"),
            &super::expr::Context {
                values: &json!({"needs": {"build": build_needs}}),
                failed: false,
                workspace: Path::new("."),
            },
        )?;
        let Value::Array(shard_numbers) = matrix else {
            bail!("gate-shards.yml's check matrix is not a list: {matrix}");
        };
        let mut all_checked = true;
        for shard in shard_numbers {
            let check = job(
                "check",
                json!({"shard": shard}),
                json!({"build": build_needs}),
            )
            .run()?;
            all_checked &= check.success;
            note(
                &mut failures,
                &format!("gate-shards.yml › check {shard} (suffix `{suffix}`)"),
                &check,
            );
        }
        let needs = json!({"build": build_needs, "check": {"result": if all_checked { "success" } else { "failure" }, "outputs": {}}});
        merges.push((suffix, shard_inputs, needs));
    }
    for (suffix, shard_inputs, needs) in merges {
        let merge = Job {
            workflow_file: "gate-shards.yml",
            workflow: &shards,
            id: "merge",
            contexts: contexts(&github, shard_inputs, json!({}), needs),
            repositories: &repositories,
            store: &store,
            extra_env: extra_env.clone(),
        };
        if let Some(condition) = shards["jobs"]["merge"]["if"].as_str() {
            let values = Value::Object(merge.contexts.clone());
            let ctx = super::expr::Context {
                values: &values,
                failed: false,
                workspace: Path::new("."),
            };
            if !super::expr::condition(condition, &ctx)? {
                failures.push(format!(
                    "gate-shards.yml › merge (suffix `{suffix}`) would be skipped"
                ));
                continue;
            }
        }
        let finished = merge.run()?;
        note(
            &mut failures,
            &format!("gate-shards.yml › merge (suffix `{suffix}`)"),
            &finished,
        );
    }
    if !failures.is_empty() {
        bail!("the rehearsal failed:\n  {}", failures.join("\n  "));
    }
    Ok(())
}

fn note(failures: &mut Vec<String>, what: &str, finished: &Finished) {
    if !finished.success {
        failures.push(format!("{what} failed (see its steps above)"));
    }
}

fn result(finished: &Finished) -> &'static str {
    if finished.success {
        "success"
    } else {
        "failure"
    }
}

fn owned(given: &[(&str, &str)]) -> Vec<(String, String)> {
    given
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn contexts(github: &Value, inputs: Value, matrix: Value, needs: Value) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("github".into(), github.clone());
    map.insert("inputs".into(), inputs);
    map.insert("matrix".into(), matrix);
    map.insert("needs".into(), needs);
    map
}

/// A reusable workflow's `inputs` context for a caller's `with:`: every
/// given input must be declared, every required one given, defaults fill
/// the rest, numbers are numbers.
fn inputs(workflow: &Yaml, given: &[(String, String)], github: &Value) -> anyhow::Result<Value> {
    let declared = workflow["on"]["workflow_call"]["inputs"]
        .as_hash()
        .context("not a reusable workflow (no `on.workflow_call.inputs`)")?;
    let mut values = Map::new();
    for (name, _) in given {
        if !declared.keys().any(|key| key.as_str() == Some(name)) {
            bail!("the input `{name}` is not declared");
        }
    }
    let values_for_callers = json!({"github": github});
    for (name, spec) in declared {
        let name = name.as_str().unwrap_or_default();
        let value = match given.iter().find(|(given, _)| given == name) {
            Some((_, value)) => super::expr::interpolate(
                value,
                &super::expr::Context {
                    values: &values_for_callers,
                    failed: false,
                    workspace: Path::new("."),
                },
            )?,
            None if spec["required"].as_bool() == Some(true) => {
                bail!("the required input `{name}` is not given")
            }
            None => yaml_map(&Yaml::Hash(spec.as_hash().cloned().unwrap_or_default()))
                .into_iter()
                .find(|(key, _)| key == "default")
                .map(|(_, value)| value)
                .unwrap_or_default(),
        };
        let value = if spec["type"].as_str() == Some("number") {
            json!(
                value
                    .parse::<i64>()
                    .with_context(|| format!("the input `{name}` is a number, not `{value}`"))?
            )
        } else {
            Value::String(value)
        };
        values.insert(name.to_owned(), value);
    }
    Ok(Value::Object(values))
}

/// The legs of a job's `matrix.include`, as JSON.
fn matrix_legs(job: &Yaml) -> Vec<Value> {
    job["strategy"]["matrix"]["include"]
        .as_vec()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|leg| {
            Value::Object(
                yaml_map(leg)
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            )
        })
        .collect()
}

/// What the conformance run built that the rehearsal uses.
struct Built {
    plugcheck: PathBuf,
    artifacts: PathBuf,
}

impl Built {
    fn find() -> anyhow::Result<Built> {
        let target = crate::paths::target_dir();
        let built = Built {
            plugcheck: target.join("debug/plugcheck"),
            artifacts: target.join("plugcheck/linux/artifacts"),
        };
        if !built.plugcheck.is_file() || !built.artifacts.is_dir() {
            bail!(
                "the rehearsal runs the gates with the conformance run's builds ({} and {}): run `cargo xtask conformance` first",
                built.plugcheck.display(),
                built.artifacts.display()
            );
        }
        Ok(built)
    }

    fn artifact(&self, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.artifacts.join(format!("{name}.so"));
        if !path.is_file() {
            bail!("the conformance run did not build `{}`", path.display());
        }
        Ok(path)
    }
}

enum Source {
    File(PathBuf),
}

/// A git repository of `files`, committed (a checkout clones it).
fn repository(files: &[(&str, Source)]) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    for (path, source) in files {
        let to = dir.path().join(path);
        std::fs::create_dir_all(to.parent().expect("a parent"))?;
        match source {
            Source::File(from) => {
                std::fs::copy(from, &to)
                    .with_context(|| format!("cannot copy `{}`", from.display()))?;
            }
        }
    }
    let git = |args: &[&str]| -> anyhow::Result<()> {
        let status = Command::new("git")
            .arg("-C")
            .arg(dir.path())
            .args([
                "-c",
                "user.name=rehearsal",
                "-c",
                "user.email=rehearsal@localhost",
            ])
            .args(args)
            .status()?;
        if !status.success() {
            bail!("git {} failed in the plugin repository", args.join(" "));
        }
        Ok(())
    };
    git(&["init", "-q"])?;
    git(&["add", "-A"])?;
    git(&["commit", "-q", "-m", "a plugin repository"])?;
    Ok(dir)
}
