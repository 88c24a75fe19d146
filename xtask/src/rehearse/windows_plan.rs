//! The Windows job's plan as a Windows host computes it (`leg_plan`, with
//! the host a parameter), checked here against what conformance.yml's
//! `windows-host` job gives that host: the tools of each item built
//! natively must be ones the job puts on the windows-2025 runner, and
//! those of each item the WSL2 leg builds must be ones the job installs in
//! the distribution.

use anyhow::bail;
use plugcheck_fixtures::Manifest;
use yaml_rust2::Yaml;

use crate::leg_plan::{self, Tool};
use crate::platform::Platform;

/// The plan's problems (printed, and returned for the rehearsal's verdict).
pub fn check(conformance: &Yaml) -> anyhow::Result<Vec<String>> {
    let root = crate::paths::project_root();
    let job = &conformance["jobs"]["windows-host"];
    if job.is_badvalue() {
        bail!("conformance.yml has no `windows-host` job to plan");
    }
    let manifest = Manifest::load(&root)?;
    let problems = problems(&manifest, job);
    let plan = leg_plan::plan(&manifest, Platform::Windows, Platform::Windows);
    let from_linux: Vec<String> = plan
        .iter()
        .filter(|item| item.built_on == Platform::Linux)
        .map(|item| format!("{} ({:?})", item.name, item.tools))
        .collect();
    eprintln!(
        "\n-- rehearse conformance.yml › windows-host, planned as a Windows host plans it\n  windows leg: {} items, {} built natively, {} from the WSL2 leg: {}\n  linux leg: in WSL2, {} items",
        plan.len(),
        plan.len() - from_linux.len(),
        from_linux.len(),
        from_linux.join(", "),
        leg_plan::plan(&manifest, Platform::Linux, Platform::Linux).len()
    );
    let uploads: Vec<String> = job["steps"]
        .as_vec()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|step| {
            step["uses"]
                .as_str()
                .is_some_and(|uses| uses.starts_with("actions/upload-artifact@"))
        })
        .map(|step| {
            format!(
                "{} ({})",
                step["with"]["name"].as_str().unwrap_or("?"),
                step["with"]["path"]
                    .as_str()
                    .unwrap_or("?")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        })
        .collect();
    let all_scripts = scripts(job);
    let legs: Vec<&str> = all_scripts
        .lines()
        .filter(|line| line.contains("cargo xtask conformance"))
        .map(str::trim)
        .collect::<Vec<_>>();
    eprintln!(
        "  legs: {}
  artifacts: {}",
        legs.join("; "),
        uploads.join("; ")
    );
    for problem in &problems {
        eprintln!("  FAILED       {problem}");
    }
    Ok(problems
        .into_iter()
        .map(|problem| format!("conformance.yml › windows-host's plan: {problem}"))
        .collect())
}

/// What the job gives the Windows host, read from its steps.
pub fn windows_tools(job: &Yaml) -> Vec<Tool> {
    let scripts = scripts(job);
    let mut tools = Vec::new();
    for (mark, tool) in [
        ("rustup target add x86_64-pc-windows-gnu", Tool::Rust),
        ("/c/mingw64/bin", Tool::Mingw),
        ("/c/mingw32/bin", Tool::MingwI686),
        // The image has Go; the job prints its version, so a runner
        // without it fails there.
        ("go version", Tool::Go),
    ] {
        if scripts.contains(mark) {
            tools.push(tool);
        }
    }
    tools
}

/// What the job installs in the WSL2 distribution.
pub fn wsl_tools(job: &Yaml) -> Vec<Tool> {
    let mut tools = vec![Tool::UnixFiles];
    let steps = job["steps"].as_vec().map(Vec::as_slice).unwrap_or_default();
    for step in steps {
        if !step["uses"]
            .as_str()
            .is_some_and(|uses| uses.starts_with("Vampire/setup-wsl@"))
        {
            continue;
        }
        let packages: Vec<&str> = step["with"]["additional-packages"]
            .as_str()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        for (package, tool) in [
            ("gcc", Tool::Cc),
            ("gcc", Tool::Ar),
            ("gcc-aarch64-linux-gnu", Tool::Aarch64),
            ("gcc-mingw-w64-x86-64", Tool::Mingw),
            ("golang-go", Tool::Go),
        ] {
            if packages.contains(&package) {
                tools.push(tool);
            }
        }
        if packages.iter().any(|p| p.starts_with("golang-1.")) {
            tools.push(Tool::OtherGo);
        }
    }
    if scripts(job).contains("sh.rustup.rs") {
        tools.push(Tool::Rust);
    }
    if scripts(job).contains(crate::workflows::SECOND_GO_MARK) {
        tools.push(Tool::OtherGo);
    }
    tools
}

fn scripts(job: &Yaml) -> String {
    job["steps"]
        .as_vec()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|step| step["run"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each planned item whose tools the job does not give the host that
/// builds it; and each tool the plan assumes of a Windows host that the
/// job does not give it.
pub fn problems(manifest: &Manifest, job: &Yaml) -> Vec<String> {
    let windows = windows_tools(job);
    let wsl = wsl_tools(job);
    let mut problems = Vec::new();
    for tool in leg_plan::host_tools(Platform::Windows) {
        if !windows.contains(tool) {
            problems.push(format!(
                "the plan counts on {tool:?} on the Windows host, which the job does not set up"
            ));
        }
    }
    for leg in [Platform::Windows, Platform::Linux] {
        let host = Platform::Windows;
        for item in leg_plan::plan(manifest, leg, host) {
            // The Linux leg runs in WSL2 whatever the plan says.
            let (has, where_) = if leg == Platform::Linux || item.built_on == Platform::Linux {
                (&wsl, "WSL2")
            } else {
                (&windows, "the windows-2025 runner")
            };
            let lacking: Vec<&Tool> = item
                .tools
                .iter()
                .filter(|tool| !has.contains(tool))
                .collect();
            if !lacking.is_empty() {
                problems.push(format!(
                    "{leg} fixture `{}` is built in {where_}, which lacks {lacking:?}",
                    item.name
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use yaml_rust2::YamlLoader;

    fn job(text: &str) -> Yaml {
        YamlLoader::load_from_str(text).unwrap()[0]["jobs"]["w"].clone()
    }

    const GOOD: &str = r#"
jobs:
  w:
    runs-on: windows-2025
    steps:
      - run: for dir in /c/mingw32/bin /c/mingw64/bin; do cygpath -w "$dir" >> "$GITHUB_PATH"; done
      - run: rustup target add x86_64-pc-windows-gnu
      - run: go version
      - uses: Vampire/setup-wsl@x
        with:
          additional-packages: gcc libc6-dev gcc-aarch64-linux-gnu gcc-mingw-w64-x86-64 golang-go
      - run: for p in $(apt-cache pkgnames golang-1.); do echo "$p"; done
      - run: curl -sSf https://sh.rustup.rs | sh -s -- -y
"#;

    #[test]
    fn the_windows_plan_fits_a_job_that_gives_each_host_its_tools() {
        let manifest = Manifest::load(&crate::paths::project_root()).unwrap();
        assert_eq!(problems(&manifest, &job(GOOD)), Vec::<String>::new());
        let no_second_go = problems(
            &manifest,
            &job(&GOOD.replace("apt-cache pkgnames golang-1.", "true")),
        );
        assert!(
            no_second_go
                .iter()
                .any(|p| p.contains("go-native-other-go") && p.contains("OtherGo")),
            "{no_second_go:?}"
        );
        let no_i686 = problems(&manifest, &job(&GOOD.replace("/c/mingw32/bin ", "")));
        assert!(
            no_i686.iter().any(|p| p.contains("wrong-architecture")),
            "{no_i686:?}"
        );
    }

    #[test]
    fn the_projects_windows_job_fits_its_plan() {
        let root = crate::paths::project_root();
        let text = std::fs::read_to_string(root.join(".github/workflows/conformance.yml")).unwrap();
        let docs = YamlLoader::load_from_str(&text).unwrap();
        let manifest = Manifest::load(&root).unwrap();
        assert_eq!(
            problems(&manifest, &docs[0]["jobs"]["windows-host"]),
            Vec::<String>::new()
        );
    }
}
