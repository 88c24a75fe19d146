//! The contract rules issue 26's review added: each is a mistake predicted
//! to fail on GitHub's runners, named `[rule]` in its problem so a failure
//! says which finding came back. The runner-side facts they rest on (which
//! release of an action runs on Node 24, which packages Ubuntu 24.04 has)
//! are tables here, each entry with where it was checked.

use std::path::Path;
use std::process::Command;

use yaml_rust2::Yaml;

use super::read::{steps_using, workflow_files};

/// Releases of the actions the workflows use whose `action.yml` says
/// `using: node24`, by commit: (action, commit, release). Each was read
/// from the action's own repository at that commit (its `action.yml`),
/// not from a release note. An action missing here cannot be used.
pub const NODE24: &[(&str, &str, &str)] = &[
    (
        "actions/checkout",
        "08c6903cd8c0fde910a37f88322edcfb5dd907a8",
        "v5.0.0",
    ),
    (
        "actions/cache",
        "27d5ce7f107fe9357f9df03efb73ab90386fccae",
        "v5.0.5",
    ),
    (
        "actions/upload-artifact",
        "b7c566a772e6b6bfb58ed0dc250532a479d7789f",
        "v6.0.0",
    ),
    (
        "actions/download-artifact",
        "37930b1c2abaa49bbe596cd826c3c89aef350131",
        "v7.0.0",
    ),
    (
        "Vampire/setup-wsl",
        "d1da7f2c0322a5ee4f24975344f67fc0f5baf364",
        "v7.0.0",
    ),
];

/// Packages the WSL2 distribution (Ubuntu 24.04, noble) may be set up
/// with: each is in noble's main or universe archive for amd64. A package
/// not verified to exist there (golang-1.21-go was listed once) fails
/// `setup-wsl` at the runner, so it is not listed; the second Go release is
/// found by a step that asks the distribution (`SECOND_GO_MARK`).
pub const UBUNTU_2404_PACKAGES: &[&str] = &[
    "ca-certificates",
    "curl",
    "gcc",
    "gcc-aarch64-linux-gnu",
    "gcc-mingw-w64-x86-64",
    "golang-go",
    "libc6-dev",
    "libc6-dev-arm64-cross",
    "zlib1g",
];

/// What the step that installs a second Go release in WSL2 runs: it lists
/// the distribution's versioned Go packages instead of naming one.
pub const SECOND_GO_MARK: &str = "apt-cache pkgnames golang-1.";

/// Per-workflow rules: every problem of `workflow`.
pub fn workflow_problems(workflow: &Yaml) -> Vec<String> {
    let mut problems = Vec::new();
    problems.extend(cancel_only_pull_requests(workflow));
    let reusable = !workflow["on"]["workflow_call"].is_badvalue();
    let Some(jobs) = workflow["jobs"].as_hash() else {
        return problems;
    };
    for (id, job) in jobs {
        let id = id.as_str().unwrap_or("?");
        if let Some(problem) = reusable_call(job) {
            problems.push(format!("job `{id}` {problem}"));
        }
        let job_problems = [
            safe_directory(job),
            windows_legs_apart(job),
            no_advisory_job(job),
            msys_no_pathconv(workflow, job),
            mingw64_first(job),
            node24_pins(job),
            cache_refreshes(job),
            wsl_packages_verified(job),
            shard_artifacts_apart(job, jobs, reusable),
        ];
        for problem in job_problems.into_iter().flatten() {
            problems.push(format!("job `{id}` {problem}"));
        }
    }
    problems
}

/// Rules about the repository beside the workflows.
pub fn repository_problems(root: &Path) -> Vec<String> {
    let mut problems = gitattributes(root);
    problems.extend(docs_count_workflows(root));
    problems
}

fn steps(job: &Yaml) -> &[Yaml] {
    job["steps"].as_vec().map(Vec::as_slice).unwrap_or_default()
}

fn run_of(step: &Yaml) -> &str {
    step["run"].as_str().unwrap_or_default()
}

/// Whether the job runs on a Windows runner, directly or as a leg of its
/// matrix.
pub fn on_windows(job: &Yaml) -> bool {
    let runs_on = job["runs-on"].as_str().unwrap_or_default();
    if runs_on.contains("windows") {
        return true;
    }
    runs_on.contains("matrix.")
        && job["strategy"]["matrix"]["include"]
            .as_vec()
            .is_some_and(|legs| {
                legs.iter()
                    .any(|leg| leg["os"].as_str().is_some_and(|os| os.contains("windows")))
            })
}

/// A job that calls a reusable workflow names it as the runner resolves
/// it: in this repository by the self-repository form `$/.github/
/// workflows/FILE` (what zizmor's `self-repository` audit asks for) or the
/// older `./.github/workflows/FILE`, else `OWNER/REPO/.github/workflows/
/// FILE@REF`.
fn reusable_call(job: &Yaml) -> Option<String> {
    let called = job["uses"].as_str()?;
    let local = ["$/.github/workflows/", "./.github/workflows/"]
        .iter()
        .filter_map(|prefix| called.strip_prefix(prefix))
        .any(|file| !file.contains('/') && file.ends_with(".yml"));
    let remote = called.contains("/.github/workflows/")
        && called.contains('@')
        && !called.starts_with('.')
        && called.split('/').next().is_some_and(|owner| {
            !owner.is_empty() && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if local || remote {
        return None;
    }
    Some(format!(
        "[reusable-call] calls `{called}`, which the runner cannot resolve: use `./.github/workflows/FILE.yml` (this repository) or `OWNER/REPO/.github/workflows/FILE.yml@REF`"
    ))
}

/// (1) In a container, the checkout belongs to the runner's user (uid
/// 1001) and the job runs as root; `actions/checkout` marks it safe only
/// in a config of its own, so Go's VCS stamping (`git status`) exits 128
/// and every Go build fails. The job must mark it safe before it builds.
fn safe_directory(job: &Yaml) -> Vec<String> {
    if job["container"].is_badvalue() {
        return Vec::new();
    }
    let steps = steps(job);
    let builds = |step: &Yaml| {
        let run = run_of(step);
        run.contains(".ci/run") || run.contains("cargo xtask") || run.contains("go build")
    };
    let Some(first_build) = steps.iter().position(builds) else {
        return Vec::new();
    };
    let marks = steps[..first_build].iter().any(|step| {
        let run = run_of(step);
        run.contains("git config --global --add safe.directory") && run.contains("GITHUB_WORKSPACE")
    });
    if marks {
        return Vec::new();
    }
    vec!["[safe-directory] builds in a container without marking the checkout safe for git first: the checkout is the runner user's, the job runs as root, and Go's VCS stamping fails (`error obtaining VCS status: exit status 128`); add a step `git config --global --add safe.directory \"$GITHUB_WORKSPACE\"` after the checkout".into()]
}

/// (2) One invocation for both legs stops at the first leg's failure,
/// so the other never runs and its artifact holds the wrong files: each
/// leg is a step of its own, uploading its own reports and snapshots.
fn windows_legs_apart(job: &Yaml) -> Vec<String> {
    let steps = steps(job);
    let conformance: Vec<&str> = steps
        .iter()
        .map(run_of)
        .filter(|run| run.contains("cargo xtask conformance"))
        .collect();
    if !on_windows(job) || conformance.is_empty() {
        return Vec::new();
    }
    let mut problems = Vec::new();
    if conformance.iter().any(|run| run.contains("--platform all")) {
        problems.push("[windows-legs-apart] runs both legs in one step (`--platform all` stops at the first leg's failure, so the other never runs): run `--platform windows` and `--platform linux` as steps of their own".to_owned());
    }
    // The second leg runs after the first one failed.
    let legs: Vec<&Yaml> = steps
        .iter()
        .filter(|step| run_of(step).contains("cargo xtask conformance --platform"))
        .collect();
    if let Some(second) = legs.get(1) {
        let condition = second["if"].as_str().unwrap_or_default();
        if !(condition.contains("!cancelled()") || condition.contains("always()")) {
            problems.push("[windows-legs-apart] runs the second leg only when the first passed: give it `if: ${{ !cancelled() && steps.FIRST.outcome != 'skipped' }}`, so one leg's failure never hides the other".to_owned());
        }
    }
    for leg in ["windows", "linux"] {
        let runs = conformance
            .iter()
            .any(|run| run.contains(&format!("--platform {leg}")));
        let uploads = steps_using(steps, "actions/upload-artifact@").any(|upload| {
            let name = upload["with"]["name"].as_str().unwrap_or_default();
            let path = upload["with"]["path"].as_str().unwrap_or_default();
            name.contains(leg)
                && (path.contains(&format!("/{leg}/")) || path.contains(&format!("@{leg}")))
        });
        if !runs || !uploads {
            problems.push(format!("[windows-legs-apart] lacks the {leg} leg as a step of its own (`--platform {leg}`) with an artifact of its own (named for `{leg}`, holding only its files)"));
        }
    }
    problems
}

/// (4) A job that may fail turns every failure into a green check. Only a
/// step that compares snapshots may be advisory, and then the job's summary
/// must say what kind of difference there was (from that step's outcome).
fn no_advisory_job(job: &Yaml) -> Vec<String> {
    let mut problems = Vec::new();
    if !job["continue-on-error"].is_badvalue() && job["continue-on-error"].as_bool() != Some(false)
    {
        problems.push("[no-advisory-job] is `continue-on-error`: a setup failure, a failed leg and a snapshot difference all read as passed; only a snapshot comparison step may be advisory".to_owned());
    }
    let steps = steps(job);
    for step in steps {
        if step["continue-on-error"].as_bool() != Some(true) {
            continue;
        }
        let name = step["name"].as_str().unwrap_or_default();
        let compares =
            name.starts_with("Snapshot comparison") && run_of(step).contains(".snap.new");
        if !compares {
            problems.push(format!("[no-advisory-job] step `{name}` is `continue-on-error` but is not a snapshot comparison (a step named `Snapshot comparison…` that reads `*.snap.new`)"));
            continue;
        }
        let id = step["id"].as_str().unwrap_or_default();
        let summarized = !id.is_empty()
            && steps.iter().any(|other| {
                other["if"].as_str().is_some_and(|c| c.contains("always()"))
                    && run_of(other).contains("GITHUB_STEP_SUMMARY")
                    && other["env"].as_hash().is_some_and(|env| {
                        env.values().any(|v| {
                            v.as_str()
                                .is_some_and(|v| v.contains(&format!("steps.{id}.outcome")))
                        })
                    })
            });
        if !summarized {
            problems.push(format!("[no-advisory-job] advisory step `{name}` needs an `id`, and an `if: always()` summary step that reads `steps.ID.outcome` and says which kind of difference it saw"));
        }
    }
    problems
}

/// (5) Git Bash rewrites `/`-arguments of native programs into Windows
/// paths (`/var/tmp/x` → `C:/Program Files/Git/var/tmp/x`); a bash step
/// that hands paths to plugcheck or the xtask on Windows turns that off.
fn msys_no_pathconv(workflow: &Yaml, job: &Yaml) -> Vec<String> {
    if !on_windows(job) {
        return Vec::new();
    }
    let set = |env: &Yaml| {
        env["MSYS_NO_PATHCONV"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| env["MSYS_NO_PATHCONV"].as_i64().map(|n| n.to_string()))
            .is_some_and(|value| value == "1")
    };
    let shell_default = job["defaults"]["run"]["shell"].as_str();
    let mut problems = Vec::new();
    for step in steps(job) {
        let shell = step["shell"].as_str().or(shell_default).unwrap_or_default();
        let run = run_of(step);
        let native = run.contains("plugcheck check")
            || run.contains("plugcheck.exe")
            || run.contains("cargo xtask");
        if shell == "bash"
            && native
            && !(set(&step["env"]) || set(&job["env"]) || set(&workflow["env"]))
        {
            let name = step["name"].as_str().unwrap_or("a bash step");
            problems.push(format!("[msys-no-pathconv] step `{name}` passes arguments to a native program from Git Bash without `MSYS_NO_PATHCONV: \"1\"`: a `/`-path becomes `C:/Program Files/Git/…`"));
        }
    }
    problems
}

/// (6) Each line of `GITHUB_PATH` is prepended, so the last one written
/// comes first: mingw64 must be written last, or plain `gcc`, `ld` and the
/// runtime DLLs are i686.
fn mingw64_first(job: &Yaml) -> Vec<String> {
    let mut problems = Vec::new();
    for step in steps(job) {
        let run = run_of(step);
        if !run.contains("GITHUB_PATH") {
            continue;
        }
        if let (Some(x64), Some(i686)) = (run.rfind("mingw64"), run.rfind("mingw32"))
            && x64 < i686
        {
            let name = step["name"].as_str().unwrap_or("a step");
            problems.push(format!("[mingw64-first] step `{name}` writes mingw32 to GITHUB_PATH after mingw64: each line is prepended, so i686's gcc, ld and DLLs come first; write mingw64 last"));
        }
    }
    problems
}

/// (7) Actions on Node 20 run forced onto Node 24: each use is pinned to a
/// commit of a release that runs on Node 24 (`NODE24`).
fn node24_pins(job: &Yaml) -> Vec<String> {
    let mut problems = Vec::new();
    for step in steps(job) {
        let Some(uses) = step["uses"].as_str() else {
            continue;
        };
        let Some((action, reference)) = uses.split_once('@') else {
            continue;
        };
        let watched = NODE24.iter().any(|(known, _, _)| *known == action);
        if !watched {
            continue;
        }
        let pinned = NODE24
            .iter()
            .any(|(known, commit, _)| *known == action && *commit == reference);
        if !pinned {
            let releases: Vec<String> = NODE24
                .iter()
                .filter(|(known, _, _)| *known == action)
                .map(|(_, commit, release)| format!("{commit} # {release}"))
                .collect();
            problems.push(format!("[node24-pins] uses `{uses}`, not a known Node 24 release of {action} pinned by commit: use `{action}@{}`", releases.join("` or `")));
        }
    }
    problems
}

/// (8) A key without the commit is restored forever and never saved
/// again; without restore keys a new key starts cold. A job that runs a leg
/// caches its build, and one that sets up WSL2 caches the WSL side too.
fn cache_refreshes(job: &Yaml) -> Vec<String> {
    let steps = steps(job);
    let mut problems = Vec::new();
    for cache in steps_using(steps, "actions/cache@") {
        let key = cache["with"]["key"].as_str().unwrap_or_default();
        if !key.contains("github.sha") || cache["with"]["restore-keys"].is_badvalue() {
            problems.push(format!("[cache-refreshes] caches with key `{key}`: without `${{{{ github.sha }}}}` in the key and `restore-keys`, the first entry is restored forever and never saved again"));
        }
    }
    let scripts: String = steps.iter().map(run_of).collect::<Vec<_>>().join("\n");
    let runs_leg = scripts.contains("cargo xtask") || scripts.contains(".ci/run");
    if runs_leg && steps_using(steps, "actions/cache@").next().is_none() {
        problems.push(
            "[cache-refreshes] builds the legs without a cache: every run compiles from nothing"
                .into(),
        );
    }
    if steps_using(steps, "Vampire/setup-wsl@").next().is_some() {
        let wsl_cached = steps_using(steps, "actions/cache@").any(|cache| {
            cache["with"]["path"]
                .as_str()
                .unwrap_or_default()
                .contains("wsl")
        });
        if !wsl_cached {
            problems.push("[cache-refreshes] sets up WSL2 but caches nothing of the WSL side (its cargo registry and target directory live in the distribution)".into());
        }
    }
    problems
}

/// (9) `cancel-in-progress: true` cancels runs on main too, leaving
/// commits unverified: only a pull request's older run is cancelled.
fn cancel_only_pull_requests(workflow: &Yaml) -> Vec<String> {
    let cancel = &workflow["concurrency"]["cancel-in-progress"];
    if cancel.is_badvalue() || cancel.as_bool() == Some(false) {
        return Vec::new();
    }
    let only_prs = cancel
        .as_str()
        .is_some_and(|text| text.replace(' ', "") == "${{github.event_name=='pull_request'}}");
    if only_prs {
        return Vec::new();
    }
    vec!["[cancel-only-pull-requests] cancels runs in progress on every event, main's pushes too: use `cancel-in-progress: ${{ github.event_name == 'pull_request' }}`".into()]
}

/// (12) Ubuntu 24.04's archive must have every package WSL2 is set up
/// with (`UBUNTU_2404_PACKAGES`).
fn wsl_packages_verified(job: &Yaml) -> Vec<String> {
    let mut problems = Vec::new();
    for wsl in steps_using(steps(job), "Vampire/setup-wsl@") {
        let unverified: Vec<&str> = wsl["with"]["additional-packages"]
            .as_str()
            .unwrap_or_default()
            .split_whitespace()
            .filter(|package| !UBUNTU_2404_PACKAGES.contains(package))
            .collect();
        if !unverified.is_empty() {
            problems.push(format!("[wsl-packages-verified] sets up WSL2 with packages not verified to exist in Ubuntu 24.04: {} (one missing package fails the whole setup)", unverified.join(" ")));
        }
    }
    problems
}

/// (11) A download pattern whose wildcard comes before the caller's suffix
/// also matches another caller's artifacts when the suffix is empty
/// (`plugcheck-shard-*` takes `plugcheck-shard-1-codec`); and
/// `merge-multiple` silently overwrites files of the same name, so the
/// artifacts it merges must hold files named per artifact.
fn shard_artifacts_apart(job: &Yaml, jobs: &yaml_rust2::yaml::Hash, reusable: bool) -> Vec<String> {
    let mut problems = Vec::new();
    for download in steps_using(steps(job), "actions/download-artifact@") {
        let Some(pattern) = download["with"]["pattern"].as_str() else {
            continue;
        };
        let before_wildcard = pattern.split('*').next().unwrap_or_default();
        if reusable && pattern.contains('*') && !before_wildcard.contains("inputs.artifact-suffix")
        {
            problems.push(format!("[shard-artifacts-apart] downloads `{pattern}`: its wildcard comes before the caller's suffix, so with an empty suffix it also takes another caller's artifacts; put `${{{{ inputs.artifact-suffix }}}}` before the `*` (in the uploads' names too)"));
        }
        if download["with"]["merge-multiple"].as_bool() != Some(true) {
            continue;
        }
        let prefix = literal_prefix(before_wildcard);
        for (_, other) in jobs {
            for upload in steps_using(steps(other), "actions/upload-artifact@") {
                let name = upload["with"]["name"].as_str().unwrap_or_default();
                let path = upload["with"]["path"].as_str().unwrap_or_default();
                if literal_prefix(name) == prefix
                    && name.contains("matrix.")
                    && !path.contains("matrix.")
                {
                    problems.push(format!("[shard-artifacts-apart] merges `{pattern}` into one directory, but each `{name}` holds `{path}`, the same file name in every artifact: merge-multiple overwrites all but one"));
                }
            }
        }
    }
    problems
}

/// The part of a name before its first expression.
fn literal_prefix(name: &str) -> &str {
    name.split("${{").next().unwrap_or_default()
}

/// (10) Windows runners check out with `core.autocrlf=true`, and the WSL
/// leg reads that checkout: every text file, the Go worker's sources and
/// the scripts first, must be checked out with LF.
fn gitattributes(root: &Path) -> Vec<String> {
    let file = root.join(".gitattributes");
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    if !text
        .lines()
        .any(|line| line.split_whitespace().collect::<Vec<_>>() == ["*", "text=auto", "eol=lf"])
    {
        return vec!["[gitattributes] .gitattributes lacks `* text=auto eol=lf`: a Windows runner checks out with CRLF (core.autocrlf=true) and the WSL leg reads that checkout (the Go worker's sources, the scripts)".into()];
    }
    let mut problems = Vec::new();
    for binary in ["*.so", "*.dll", "*.exe", "*.a"] {
        if !text
            .lines()
            .any(|line| line.starts_with(binary) && line.contains("binary"))
        {
            problems.push(format!(
                "[gitattributes] .gitattributes does not mark `{binary}` binary"
            ));
        }
    }
    let covered = [
        "host/go-worker/main.go",
        "host/go-worker/go.mod",
        "plugins/abi/go/plugcheck.go",
        ".ci/run",
        "rust-toolchain.toml",
    ];
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["check-attr", "text", "eol", "--"])
        .args(covered)
        .output();
    match output {
        Ok(output) if output.status.success() => {
            let said = String::from_utf8_lossy(&output.stdout);
            let wrong = |line: &&str| {
                (line.contains(": eol: ") && !line.ends_with(": eol: lf"))
                    || line.ends_with(": text: unset")
            };
            for line in said.lines().filter(wrong) {
                problems.push(format!("[gitattributes] not checked out with LF: {line}"));
            }
        }
        _ => problems.push(format!(
            "[gitattributes] cannot ask `git check-attr` in `{}`",
            root.display()
        )),
    }
    problems
}

/// (12) docs/ci.md says how many workflows there are, and names each.
fn docs_count_workflows(root: &Path) -> Vec<String> {
    let docs = std::fs::read_to_string(root.join("docs/ci.md")).unwrap_or_default();
    let Ok(files) = workflow_files(root) else {
        return vec!["[docs-count-workflows] cannot list the workflows".into()];
    };
    let words = [
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    ];
    let said = docs
        .split_once(" workflows live in")
        .and_then(|(before, _)| before.split_whitespace().last())
        .and_then(|word| words.iter().position(|w| w.eq_ignore_ascii_case(word)));
    let mut problems = Vec::new();
    if said != Some(files.len()) {
        problems.push(format!(
            "[docs-count-workflows] docs/ci.md says `{} workflows live in`, there are {} ({})",
            said.map_or("?", |n| words[n]),
            words.get(files.len()).copied().unwrap_or("many"),
            files.len()
        ));
    }
    for file in &files {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        if !docs.contains(&format!("`{name}`")) {
            problems.push(format!(
                "[docs-count-workflows] docs/ci.md does not name `{name}`"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use yaml_rust2::YamlLoader;

    fn problems(text: &str) -> Vec<String> {
        workflow_problems(&YamlLoader::load_from_str(text).unwrap()[0])
    }

    /// `good` has no problem; `good` with `from` replaced by `to` has one
    /// naming `rule`.
    fn caught(good: &str, from: &str, to: &str, rule: &str) {
        assert_eq!(problems(good), Vec::<String>::new(), "{good}");
        assert!(good.contains(from), "`{from}` is not in the good text");
        let bad = problems(&good.replacen(from, to, 1));
        assert!(
            bad.iter().any(|p| p.contains(&format!("[{rule}]"))),
            "replacing `{from}` must break [{rule}]: {bad:?}"
        );
    }

    #[test]
    fn a_reusable_call_names_a_workflow_the_runner_resolves() {
        let good = "jobs:\n  g:\n    uses: $/.github/workflows/gate-shards.yml\n";
        caught(good, "$/.github", "/.github", "reusable-call");
        caught(
            good,
            "gate-shards.yml",
            "sub/gate-shards.yml",
            "reusable-call",
        );
        assert_eq!(
            problems("jobs:\n  g:\n    uses: o/r/.github/workflows/g.yml@v1\n"),
            Vec::<String>::new()
        );
        assert!(!problems("jobs:\n  g:\n    uses: o/r/.github/workflows/g.yml\n").is_empty());
    }

    #[test]
    fn safe_directory_before_a_container_builds() {
        let good = r#"
jobs:
  linux:
    runs-on: ubuntu-24.04
    container: debian:bookworm
    steps:
      - uses: actions/cache@27d5ce7f107fe9357f9df03efb73ab90386fccae
        with:
          key: k-${{ github.sha }}
          restore-keys: k-
      - run: git config --global --add safe.directory "$GITHUB_WORKSPACE"
      - run: bash .ci/run
"#;
        caught(
            good,
            "git config --global --add safe.directory",
            "echo",
            "safe-directory",
        );
        // After the build is too late.
        let late = good.replace(
            "      - run: git config --global --add safe.directory \"$GITHUB_WORKSPACE\"\n      - run: bash .ci/run\n",
            "      - run: bash .ci/run\n      - run: git config --global --add safe.directory \"$GITHUB_WORKSPACE\"\n",
        );
        assert!(
            problems(&late)
                .iter()
                .any(|p| p.contains("[safe-directory]"))
        );
    }

    const WINDOWS: &str = r#"
jobs:
  w:
    runs-on: windows-2025
    env:
      MSYS_NO_PATHCONV: "1"
    steps:
      - uses: actions/cache@27d5ce7f107fe9357f9df03efb73ab90386fccae
        with:
          path: target
          key: w-${{ github.sha }}
          restore-keys: w-
      - name: path
        shell: bash
        run: for dir in /c/mingw32/bin /c/mingw64/bin; do cygpath -w "$dir" >> "$GITHUB_PATH"; done
      - name: linux leg
        shell: bash
        run: cargo xtask conformance --platform linux --require-all
      - name: windows leg
        if: ${{ !cancelled() }}
        shell: bash
        run: cargo xtask conformance --platform windows --require-all
      - name: Snapshot comparison (advisory)
        id: snapshots
        continue-on-error: true
        shell: bash
        run: ls fixtures/snapshots/*.snap.new && exit 1
      - name: summary
        if: always()
        shell: bash
        env:
          SNAPSHOTS: ${{ steps.snapshots.outcome }}
        run: echo "$SNAPSHOTS" >> "$GITHUB_STEP_SUMMARY"
      - uses: actions/upload-artifact@b7c566a772e6b6bfb58ed0dc250532a479d7789f
        with:
          name: reports-windows
          path: target/plugcheck/windows/report.json
      - uses: actions/upload-artifact@b7c566a772e6b6bfb58ed0dc250532a479d7789f
        with:
          name: reports-linux
          path: target/plugcheck/linux/report.json
"#;

    #[test]
    fn the_windows_legs_run_apart_with_their_own_artifacts() {
        caught(
            WINDOWS,
            "--platform linux",
            "--platform all",
            "windows-legs-apart",
        );
        caught(
            WINDOWS,
            "name: reports-linux",
            "name: reports",
            "windows-legs-apart",
        );
        caught(
            WINDOWS,
            "plugcheck/windows/report",
            "plugcheck/*/report",
            "windows-legs-apart",
        );
        caught(
            WINDOWS,
            "        if: ${{ !cancelled() }}\n        shell: bash\n        run: cargo xtask conformance --platform windows",
            "        shell: bash\n        run: cargo xtask conformance --platform windows",
            "windows-legs-apart",
        );
    }

    #[test]
    fn only_a_snapshot_comparison_is_advisory_and_the_summary_says_so() {
        caught(
            WINDOWS,
            "    env:\n      MSYS",
            "    continue-on-error: true\n    env:\n      MSYS",
            "no-advisory-job",
        );
        caught(
            WINDOWS,
            "Snapshot comparison (advisory)",
            "Compare",
            "no-advisory-job",
        );
        caught(
            WINDOWS,
            "SNAPSHOTS: ${{ steps.snapshots.outcome }}",
            "SNAPSHOTS: x",
            "no-advisory-job",
        );
    }

    #[test]
    fn git_bash_steps_that_pass_paths_turn_path_conversion_off() {
        caught(
            WINDOWS,
            "MSYS_NO_PATHCONV: \"1\"",
            "OTHER: \"1\"",
            "msys-no-pathconv",
        );
    }

    #[test]
    fn mingw64_is_written_last_to_come_first() {
        caught(
            WINDOWS,
            "/c/mingw32/bin /c/mingw64/bin",
            "/c/mingw64/bin /c/mingw32/bin",
            "mingw64-first",
        );
    }

    #[test]
    fn actions_are_pinned_to_node24_commits() {
        caught(
            WINDOWS,
            "upload-artifact@b7c566a772e6b6bfb58ed0dc250532a479d7789f",
            "upload-artifact@330a01c490aca151604b8cf639adc76d48f6c5d4",
            "node24-pins",
        );
        caught(
            WINDOWS,
            "cache@27d5ce7f107fe9357f9df03efb73ab90386fccae",
            "cache@v5",
            "node24-pins",
        );
    }

    #[test]
    fn caches_refresh_and_wsl_is_cached() {
        caught(
            WINDOWS,
            "w-${{ github.sha }}",
            "w-${{ hashFiles('Cargo.lock') }}",
            "cache-refreshes",
        );
        caught(
            WINDOWS,
            "          restore-keys: w-\n",
            "",
            "cache-refreshes",
        );
        let wsl = WINDOWS.replace(
            "      - name: linux leg\n",
            "      - uses: Vampire/setup-wsl@d1da7f2c0322a5ee4f24975344f67fc0f5baf364\n        with:\n          additional-packages: gcc\n      - uses: actions/cache@27d5ce7f107fe9357f9df03efb73ab90386fccae\n        with:\n          path: wsl-cache\n          key: s-${{ github.sha }}\n          restore-keys: s-\n      - name: linux leg\n",
        );
        caught(
            &wsl,
            "path: wsl-cache",
            "path: elsewhere",
            "cache-refreshes",
        );
        caught(
            &wsl,
            "additional-packages: gcc",
            "additional-packages: gcc golang-1.21-go",
            "wsl-packages-verified",
        );
    }

    #[test]
    fn only_pull_requests_cancel_their_runs() {
        let good = "concurrency:\n  group: g\n  cancel-in-progress: ${{ github.event_name == 'pull_request' }}\njobs: {}\n";
        caught(
            good,
            "${{ github.event_name == 'pull_request' }}",
            "true",
            "cancel-only-pull-requests",
        );
        assert_eq!(
            problems("concurrency:\n  cancel-in-progress: false\njobs: {}\n"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn shard_artifacts_of_two_callers_never_meet() {
        let good = r#"
on:
  workflow_call:
    inputs: {}
jobs:
  check:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/upload-artifact@b7c566a772e6b6bfb58ed0dc250532a479d7789f
        with:
          name: plugcheck${{ inputs.artifact-suffix }}-shard-${{ matrix.shard }}
          path: shard-${{ matrix.shard }}.json
  merge:
    runs-on: ubuntu-24.04
    steps:
      - uses: actions/download-artifact@37930b1c2abaa49bbe596cd826c3c89aef350131
        with:
          pattern: plugcheck${{ inputs.artifact-suffix }}-shard-*
          merge-multiple: true
"#;
        caught(
            good,
            "plugcheck${{ inputs.artifact-suffix }}-shard-*",
            "plugcheck-shard-*${{ inputs.artifact-suffix }}",
            "shard-artifacts-apart",
        );
        caught(
            good,
            "path: shard-${{ matrix.shard }}.json",
            "path: shard.json",
            "shard-artifacts-apart",
        );
    }

    // Unix only: it runs `git check-attr`, and the Windows leg runs these
    // tests under Wine, where there is no git.
    #[cfg(unix)]
    #[test]
    fn gitattributes_keep_lf_for_the_worker_and_the_scripts() {
        let dir = tempfile::tempdir().unwrap();
        Command::new("git")
            .args(["init", "-q"])
            .arg(dir.path())
            .status()
            .unwrap();
        let text = "* text=auto eol=lf\n*.so binary\n*.dll binary\n*.exe binary\n*.a binary\n";
        assert!(gitattributes(dir.path())[0].contains("lacks `* text=auto eol=lf`"));
        std::fs::write(dir.path().join(".gitattributes"), text).unwrap();
        assert_eq!(gitattributes(dir.path()), Vec::<String>::new());
        std::fs::write(
            dir.path().join(".gitattributes"),
            format!("{text}*.go -text\n"),
        )
        .unwrap();
        let found = gitattributes(dir.path());
        assert!(
            found.iter().any(|p| p.contains("host/go-worker/main.go")),
            "{found:?}"
        );
        std::fs::write(
            dir.path().join(".gitattributes"),
            text.replace("*.dll binary\n", ""),
        )
        .unwrap();
        assert!(gitattributes(dir.path())[0].contains("*.dll"));
    }

    #[test]
    fn docs_count_and_name_the_workflows() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".github/workflows")).unwrap();
        std::fs::create_dir_all(dir.path().join("docs")).unwrap();
        for name in ["a.yml", "b.yml"] {
            std::fs::write(dir.path().join(".github/workflows").join(name), "").unwrap();
        }
        std::fs::write(
            dir.path().join("docs/ci.md"),
            "Two workflows live in x: `a.yml`, `b.yml`.",
        )
        .unwrap();
        assert_eq!(docs_count_workflows(dir.path()), Vec::<String>::new());
        std::fs::write(dir.path().join(".github/workflows/c.yml"), "").unwrap();
        let found = docs_count_workflows(dir.path());
        assert!(
            found.iter().any(|p| p.contains("there are three")),
            "{found:?}"
        );
        assert!(found.iter().any(|p| p.contains("`c.yml`")), "{found:?}");
    }
}
