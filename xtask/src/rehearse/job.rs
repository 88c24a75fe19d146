//! One job of a workflow, run step by step the way the runner runs it:
//! `run:` scripts through the runner's shell and flags, `${{ }}` evaluated
//! first, the `GITHUB_*` files honoured between steps, `if:` and
//! `continue-on-error` as on the runner, and `uses:` steps replaced by what
//! the action leaves behind. Each step prints one line: ran, substituted
//! (why) or failed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use serde_json::{Map, Value, json};
use yaml_rust2::Yaml;

use super::artifacts::{IfNone, Store};
use super::expr::{self, Context};
use super::files::{self, StepFiles};
use super::substitutions;

/// A job to run and what it reads.
pub struct Job<'a> {
    /// The workflow's file name (`gate-shards.yml`), for the table.
    pub workflow_file: &'a str,
    pub workflow: &'a Yaml,
    pub id: &'a str,
    /// `inputs`, `matrix`, `github`, `needs` (the rest is the job's own).
    pub contexts: Map<String, Value>,
    /// Checkouts: (`repository` input or `None` for the caller's own) to
    /// the directory to copy.
    pub repositories: &'a dyn Fn(Option<&str>) -> anyhow::Result<PathBuf>,
    pub store: &'a Store,
    /// Extra variables every step sees (what a substitution reads).
    pub extra_env: Vec<(String, String)>,
}

/// How a job ended.
pub struct Finished {
    pub success: bool,
    pub outputs: Map<String, Value>,
}

/// The default shell on Linux, and what `shell: bash` means.
fn shell_argv(shell: Option<&str>) -> anyhow::Result<Vec<&'static str>> {
    match shell {
        None => Ok(vec!["bash", "-e"]),
        Some("bash") => Ok(vec!["bash", "--noprofile", "--norc", "-eo", "pipefail"]),
        Some("sh") => Ok(vec!["sh", "-e"]),
        Some(other) => bail!("shell `{other}` does not run on a Linux runner"),
    }
}

impl Job<'_> {
    pub fn run(&self) -> anyhow::Result<Finished> {
        let job = &self.workflow["jobs"][self.id];
        let matrix = self
            .contexts
            .get("matrix")
            .and_then(Value::as_object)
            .filter(|matrix| !matrix.is_empty())
            .map(|matrix| format!(" {}", Value::Object(matrix.clone())))
            .unwrap_or_default();
        let suffix = self
            .contexts
            .get("inputs")
            .and_then(|inputs| inputs.get("artifact-suffix"))
            .and_then(Value::as_str)
            .filter(|suffix| !suffix.is_empty())
            .map(|suffix| format!(" (artifact-suffix `{suffix}`)"))
            .unwrap_or_default();
        let label = format!("{} › {}{matrix}{suffix}", self.workflow_file, self.id);
        let workspace = tempfile::tempdir().context("cannot create the job's workspace")?;
        let home = tempfile::tempdir().context("cannot create the job's HOME")?;
        let temp = tempfile::tempdir().context("cannot create RUNNER_TEMP")?;
        let runner_files = tempfile::tempdir().context("cannot create the GITHUB_* files")?;
        let container = !job["container"].is_badvalue();
        let mut values = self.contexts.clone();
        values.insert("steps".into(), json!({}));
        values.insert("runner".into(), json!({"os": "Linux", "temp": temp.path()}));
        values.insert("env".into(), json!({}));
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        let mut path: Vec<String> = std::env::var("PATH")
            .unwrap_or_default()
            .split(':')
            .map(str::to_owned)
            .collect();
        let mut failed = false;
        // Workflow env, then job env, each evaluated once.
        for scope in [&self.workflow["env"], &job["env"]] {
            for (name, value) in yaml_map(scope) {
                let ctx = self.context(&values, failed, workspace.path());
                env.insert(name, expr::interpolate(&value, &ctx.get())?);
            }
            values.insert("env".into(), json!(env));
        }
        eprintln!(
            "\n-- rehearse {label}{}",
            if container {
                " (container job: checkout owned by uid 1001, steps as root)"
            } else {
                ""
            }
        );
        let steps = job["steps"].as_vec().map(Vec::as_slice).unwrap_or_default();
        for (index, step) in steps.iter().enumerate() {
            let name = step_name(step);
            let ctx = self.context(&values, failed, workspace.path());
            let shown = expr::interpolate(&name, &ctx.get()).unwrap_or_else(|_| name.clone());
            let runs = match step["if"].as_str() {
                Some(condition) => expr::condition(condition, &ctx.get())?,
                None => step["if"].as_bool().unwrap_or(true) && !failed,
            };
            if !runs {
                eprintln!("  skipped      {shown} (its `if:` is false)");
                record(&mut values, step, "skipped", &Map::new());
                continue;
            }
            let mut step_env = env.clone();
            for (key, value) in yaml_map(&step["env"]) {
                step_env.insert(key, expr::interpolate(&value, &ctx.get())?);
            }
            let outcome = if let Some(uses) = step["uses"].as_str() {
                self.uses(uses, step, &ctx, workspace.path(), container)
                    .map(|what| (what, Map::new()))
            } else if let Some(script) = step["run"].as_str() {
                let files = StepFiles::fresh(runner_files.path(), index)?;
                let directory = match step["working-directory"].as_str() {
                    Some(dir) => workspace.path().join(expr::interpolate(dir, &ctx.get())?),
                    None => workspace.path().to_owned(),
                };
                let substitution = substitutions::find(self.workflow_file, self.id, &name);
                let (script, how) = match substitution {
                    Some(sub) => match sub.instead {
                        Some(instead) => (
                            instead.to_owned(),
                            format!("substituted  {name}: {}", sub.why),
                        ),
                        None => (
                            String::new(),
                            format!("substituted  {name}: {} (nothing runs)", sub.why),
                        ),
                    },
                    None => {
                        if let Some(why) = substitutions::cannot_run_here(script) {
                            bail!(
                                "{label}: step `{name}` {why} and cannot run here; add a substitution for it to xtask/src/rehearse/substitutions.rs"
                            );
                        }
                        (
                            expr::interpolate(script, &ctx.get())?,
                            format!("ran          {shown}"),
                        )
                    }
                };
                let shell = shell_argv(
                    step["shell"]
                        .as_str()
                        .or(job["defaults"]["run"]["shell"].as_str()),
                )
                .with_context(|| format!("{label}: step `{name}`"))?;
                let result = self.script(
                    &script,
                    &shell,
                    &directory,
                    &step_env,
                    &path,
                    &files,
                    home.path(),
                    temp.path(),
                    workspace.path(),
                );
                match result {
                    Ok(()) => {
                        let outputs =
                            files::parse_assignments(&std::fs::read_to_string(&files.output)?)?;
                        for (key, value) in
                            files::parse_assignments(&std::fs::read_to_string(&files.env)?)?
                        {
                            env.insert(key, value);
                        }
                        values.insert("env".into(), json!(env));
                        path = files::prepend_paths(&path, &std::fs::read_to_string(&files.path)?);
                        Ok((
                            how,
                            outputs
                                .into_iter()
                                .map(|(k, v)| (k, Value::String(v)))
                                .collect(),
                        ))
                    }
                    Err(error) => Err(error),
                }
            } else {
                bail!("{label}: step `{name}` has neither `uses:` nor `run:`");
            };
            match outcome {
                Ok((how, outputs)) => {
                    eprintln!("  {how}");
                    record(&mut values, step, "success", &outputs);
                }
                Err(error) => {
                    eprintln!("  FAILED       {shown}: {error:#}");
                    record(&mut values, step, "failure", &Map::new());
                    if step["continue-on-error"].as_bool() != Some(true) {
                        failed = true;
                    }
                }
            }
        }
        let ctx = self.context(&values, failed, workspace.path());
        let mut outputs = Map::new();
        for (name, value) in yaml_map(&job["outputs"]) {
            outputs.insert(name, Value::String(expr::interpolate(&value, &ctx.get())?));
        }
        Ok(Finished {
            success: !failed,
            outputs,
        })
    }

    fn context<'v>(
        &self,
        values: &'v Map<String, Value>,
        failed: bool,
        workspace: &'v Path,
    ) -> ContextOwner<'v> {
        ContextOwner {
            value: Value::Object(values.clone()),
            failed,
            workspace,
        }
    }

    /// What an action leaves behind.
    fn uses(
        &self,
        uses: &str,
        step: &Yaml,
        ctx: &ContextOwner,
        workspace: &Path,
        container: bool,
    ) -> anyhow::Result<String> {
        let action = uses.split('@').next().unwrap_or_default();
        let with = |key: &str| -> anyhow::Result<Option<String>> {
            step["with"][key]
                .as_str()
                .map(|text| expr::interpolate(text, &ctx.get()))
                .transpose()
        };
        match action {
            "actions/checkout" => {
                let repository = with("repository")?;
                let source = (self.repositories)(repository.as_deref())?;
                let into = workspace.join(with("path")?.unwrap_or_default());
                checkout(&source, &into, container)?;
                Ok(format!(
                    "checkout     {} into {}{}",
                    repository.as_deref().unwrap_or("the caller's repository"),
                    with("path")?.unwrap_or_else(|| ".".into()),
                    if container {
                        ", owned by uid 1001 as on the runner"
                    } else {
                        ""
                    }
                ))
            }
            "actions/cache" => Ok(format!(
                "cache        nothing restored (key `{}`)",
                with("key")?.unwrap_or_default()
            )),
            "actions/upload-artifact" => {
                let name = with("name")?.unwrap_or_else(|| "artifact".into());
                let paths = with("path")?.unwrap_or_default();
                let if_none = match with("if-no-files-found")?.as_deref() {
                    Some("error") => IfNone::Error,
                    Some("ignore") => IfNone::Ignore,
                    _ => IfNone::Warn,
                };
                let count = self.store.upload(&name, &paths, workspace, if_none)?;
                Ok(format!("upload       `{name}`: {count} file(s)"))
            }
            "actions/download-artifact" => {
                let into = workspace.join(with("path")?.unwrap_or_default());
                let merge = step["with"]["merge-multiple"].as_bool() == Some(true);
                let names = self.store.download(
                    with("name")?.as_deref(),
                    with("pattern")?.as_deref(),
                    &into,
                    merge,
                )?;
                Ok(format!("download     {}", names.join(", ")))
            }
            other => {
                bail!("the action `{other}` is not one the rehearsal knows what it leaves behind")
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn script(
        &self,
        script: &str,
        shell: &[&str],
        directory: &Path,
        env: &BTreeMap<String, String>,
        path: &[String],
        files: &StepFiles,
        home: &Path,
        temp: &Path,
        workspace: &Path,
    ) -> anyhow::Result<()> {
        let file = temp.join(format!("step-{}.sh", std::process::id()));
        std::fs::write(&file, script)?;
        let log = temp.join("step.log");
        let mut command = Command::new("timeout");
        // What a runner's environment never has, and what would change
        // what git or Go do here (a global config elsewhere, VCS stamping
        // turned off): gone, so the rehearsal fails where the runner would.
        for name in [
            "GOFLAGS",
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_CONFIG_GLOBAL",
            "GIT_CONFIG_SYSTEM",
            "GIT_CONFIG_NOSYSTEM",
            "GITHUB_ACTIONS",
            "GITHUB_OUTPUT",
            "GITHUB_ENV",
            "GITHUB_PATH",
            "GITHUB_STEP_SUMMARY",
        ] {
            command.env_remove(name);
        }
        command
            .args(["--kill-after=5", "300"])
            .args(shell)
            .arg(&file)
            .current_dir(directory)
            .env("PATH", path.join(":"))
            .env("HOME", home)
            .env("CI", "true")
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_WORKSPACE", workspace)
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_TEMP", temp)
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::options().append(true).open(&log)?);
        for (name, value) in files.variables() {
            command.env(name, value);
        }
        for (name, value) in env.iter().chain(self.extra_env.iter().map(|(k, v)| (k, v))) {
            command.env(name, value);
        }
        // The runner keeps the toolchains where they are installed.
        for name in ["CARGO_HOME", "RUSTUP_HOME", "GOCACHE"] {
            if std::env::var_os(name).is_none() {
                command.env(name, default_home(name));
            }
        }
        let status = command
            .status()
            .with_context(|| format!("cannot run `{}`", shell.join(" ")))?;
        if !directory.exists() {
            bail!(
                "the working directory `{}` does not exist",
                directory.display()
            );
        }
        if status.success() {
            return Ok(());
        }
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = said
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        bail!(
            "{status}; its last lines:\n      {}",
            plugcheck::text::keeping_lines(&tail.join("\n      "))
        )
    }
}

/// The real home's toolchain directories (a job's HOME is fresh).
fn default_home(name: &str) -> PathBuf {
    let home = PathBuf::from(std::env::var_os("HOME").unwrap_or_default());
    match name {
        "CARGO_HOME" => home.join(".cargo"),
        "RUSTUP_HOME" => home.join(".rustup"),
        _ => home.join(".cache/go-build"),
    }
}

/// An owned context (the values change between steps).
pub struct ContextOwner<'a> {
    value: Value,
    failed: bool,
    workspace: &'a Path,
}

impl ContextOwner<'_> {
    fn get(&self) -> Context<'_> {
        Context {
            values: &self.value,
            failed: self.failed,
            workspace: self.workspace,
        }
    }
}

impl std::ops::Deref for ContextOwner<'_> {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.value
    }
}

/// `actions/checkout` into `into`: a clone of `source`'s committed tree;
/// in a container job, owned by the runner's user (uid 1001), not root.
fn checkout(source: &Path, into: &Path, container: bool) -> anyhow::Result<()> {
    if into.exists() && std::fs::read_dir(into)?.next().is_some() {
        bail!("checkout into `{}`, which is not empty", into.display());
    }
    let status = Command::new("git")
        .args(["clone", "-q", "--no-hardlinks"])
        .arg(source)
        .arg(into)
        .status()
        .context("cannot run git clone")?;
    if !status.success() {
        bail!("git clone `{}` failed", source.display());
    }
    if container {
        let status = Command::new("chown")
            .args(["-R", "1001:1001"])
            .arg(into)
            .status()?;
        if !status.success() {
            bail!(
                "cannot give the rehearsal's checkout `{}` to uid 1001: a container job's checkout belongs to the runner's user while its steps run as root, and only root can set that up here; run `cargo xtask rehearse` (or `cargo xtask ci`) as root, e.g. with sudo",
                into.display()
            );
        }
    }
    Ok(())
}

fn step_name(step: &Yaml) -> String {
    step["name"]
        .as_str()
        .or_else(|| step["uses"].as_str())
        .or_else(|| step["run"].as_str().and_then(|run| run.lines().next()))
        .unwrap_or("?")
        .to_owned()
}

/// `steps.ID.outcome` / `.conclusion` / `.outputs` for a step with an id.
fn record(
    values: &mut Map<String, Value>,
    step: &Yaml,
    outcome: &str,
    outputs: &Map<String, Value>,
) {
    let Some(id) = step["id"].as_str() else {
        return;
    };
    let conclusion = if outcome == "failure" && step["continue-on-error"].as_bool() == Some(true) {
        "success"
    } else {
        outcome
    };
    let steps = values.entry("steps").or_insert_with(|| json!({}));
    steps[id] = json!({"outcome": outcome, "conclusion": conclusion, "outputs": outputs});
}

/// A YAML mapping of strings (numbers and booleans as text).
pub fn yaml_map(yaml: &Yaml) -> Vec<(String, String)> {
    let Some(hash) = yaml.as_hash() else {
        return Vec::new();
    };
    hash.iter()
        .filter_map(|(key, value)| {
            let value = match value {
                Yaml::String(text) => text.clone(),
                Yaml::Integer(n) => n.to_string(),
                Yaml::Boolean(b) => b.to_string(),
                Yaml::Real(text) => text.clone(),
                _ => return None,
            };
            Some((key.as_str()?.to_owned(), value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use yaml_rust2::YamlLoader;

    /// Runs job `j` of the workflow `text` with `contexts`, artifacts in a
    /// store of its own and no checkout.
    fn run_job(text: &str, contexts: Map<String, Value>) -> anyhow::Result<Finished> {
        let workflow = YamlLoader::load_from_str(text).unwrap().remove(0);
        let store_dir = tempfile::tempdir().unwrap();
        let store = Store {
            dir: store_dir.path().to_owned(),
        };
        let none = |_: Option<&str>| -> anyhow::Result<PathBuf> { bail!("no checkout here") };
        Job {
            workflow_file: "test.yml",
            workflow: &workflow,
            id: "j",
            contexts,
            repositories: &none,
            store: &store,
            extra_env: Vec::new(),
        }
        .run()
    }

    /// Outputs, env and PATH cross steps as on the runner; the default
    /// shell has no pipefail and `shell: bash` has.
    const WORKFLOW: &str = r#"
jobs:
  j:
    runs-on: ubuntu-24.04
    env:
      FROM_JOB: ${{ matrix.leg }}
    outputs:
      said: ${{ steps.a.outputs.x }}
      second: ${{ steps.b.outputs.second }}
      seen: ${{ steps.seen.outcome }}
    steps:
      - id: a
        run: |
          echo "x=1" >> "$GITHUB_OUTPUT"
          echo "V=v" >> "$GITHUB_ENV"
          mkdir -p "$RUNNER_TEMP/one" "$RUNNER_TEMP/two"
          printf '#!/bin/sh\necho one\n' > "$RUNNER_TEMP/one/tool"
          printf '#!/bin/sh\necho two\n' > "$RUNNER_TEMP/two/tool"
          chmod +x "$RUNNER_TEMP/one/tool" "$RUNNER_TEMP/two/tool"
          echo "$RUNNER_TEMP/one" >> "$GITHUB_PATH"
          echo "$RUNNER_TEMP/two" >> "$GITHUB_PATH"
      - id: b
        run: |
          test "${{ steps.a.outputs.x }}" = 1
          test "$V" = v
          test "$FROM_JOB" = linux
          test "$(tool)" = two
          false | true
          echo "second=ok" >> "$GITHUB_OUTPUT"
      - id: piped
        shell: bash
        run: false | true
      - id: seen
        if: failure() && steps.piped.outcome == 'failure'
        run: echo "the failure is seen" >> "$GITHUB_STEP_SUMMARY"
"#;

    // Unix only: the steps run in bash, as on a Linux runner; the Windows
    // leg runs these tests under Wine, where there is no bash.
    #[cfg(unix)]
    #[test]
    fn files_outputs_and_shells_behave_as_on_the_runner() {
        let mut contexts = Map::new();
        contexts.insert("matrix".into(), json!({"leg": "linux"}));
        contexts.insert("github".into(), json!({}));
        contexts.insert("inputs".into(), json!({}));
        contexts.insert("needs".into(), json!({}));
        let finished = run_job(WORKFLOW, contexts).unwrap();
        assert!(!finished.success, "`shell: bash` has pipefail");
        assert_eq!(finished.outputs["said"], json!("1"));
        assert_eq!(
            finished.outputs["second"],
            json!("ok"),
            "bash -e has no pipefail"
        );
        assert_eq!(
            finished.outputs["seen"],
            json!("success"),
            "failure() sees it"
        );
    }

    #[test]
    fn an_unknown_expression_or_action_fails_the_step() {
        let text = WORKFLOW.replace("${{ matrix.leg }}", "${{ matrix.no-such }}");
        let mut contexts = Map::new();
        contexts.insert("matrix".into(), json!({"leg": "linux"}));
        let error = run_job(&text, contexts)
            .err()
            .expect("an unknown property is an error");
        assert!(format!("{error:#}").contains("matrix.no-such"), "{error:#}");
    }
}
