//! Builds Go-native plugin fixtures (`go build -buildmode=plugin`), always
//! for Linux: Go builds plugins for no Windows target.
//!
//! Some fixtures are variants of one module, made the way a plugin author
//! would make them: the next version is a copy under its own module path
//! (Go loads a package path once per process; `-ldflags=-pluginpath` does
//! not change the symbols' path), a version string is set with
//! `-ldflags=-X` (and a fixture's defect, `flaw`, alike), a plugin built against a newer contract is built
//! against a copy of `plugins/abi/go` bumped to that version, and one built
//! with Go experiments gets them through `GOEXPERIMENT`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use plugcheck_fixtures::Source;
use xshell::{Shell, cmd};

use plugcheck::bridge::find_on_path;

use crate::needs::{self, Need};
use crate::probe;

/// The contract module every Go-native plugin requires.
const CONTRACT_MODULE: &str = "plugcheck.dev/abi";

/// Builds the fixture `source` into `library`. `Ok(Err(need))`: a tool is
/// missing, so the fixture is skipped; a failed build is an error.
pub fn build(
    sh: &Shell,
    root: &Path,
    source: &Source,
    library: &Path,
) -> anyhow::Result<Result<PathBuf, Need>> {
    let Source::GoPlugin {
        go_plugin,
        module,
        version,
        flaw,
        trimpath,
        other_go,
        goexperiment,
        contract,
    } = source
    else {
        bail!("not a Go-native plugin source: {source:?}");
    };
    let default_go = match find_on_path("go").filter(|_| probe::present(&needs::GO, sh)) {
        Some(go) => go,
        None => return Ok(Err(needs::GO)),
    };
    let go = if *other_go {
        match probe::other_go(sh) {
            Some(go) => go,
            None => return Ok(Err(needs::GO_OTHER_RELEASE)),
        }
    } else {
        default_go
    };
    if !probe::present(&needs::CC, sh) {
        return Ok(Err(needs::CC));
    }
    let package = root.join(go_plugin);
    // A variant builds from a scratch copy; the package itself builds in
    // place.
    let scratch = tempfile::tempdir().context("cannot create a directory for a Go build")?;
    let (dir, import_path) = if module.is_some() || contract.is_some() {
        variant(
            root,
            &package,
            module.as_deref(),
            contract.as_deref(),
            scratch.path(),
        )?
    } else {
        let import_path = module_path(&package)?;
        (package.clone(), import_path)
    };
    let mut flags: Vec<String> = vec!["-buildmode=plugin".into()];
    if *trimpath {
        flags.push("-trimpath".into());
    }
    // Variables set at link time: the build tags cannot choose a
    // variant, since a plugin built with other tags than its host is
    // refused.
    let mut set: Vec<String> = Vec::new();
    if let Some(version) = version {
        set.push(format!("-X {import_path}.version={version}"));
    }
    if let Some(flaw) = flaw {
        set.push(format!("-X {import_path}.flaw={flaw}"));
    }
    if !set.is_empty() {
        flags.push(format!("-ldflags={}", set.join(" ")));
    }
    let _dir = sh.push_dir(&dir);
    cmd!(sh, "{go} build {flags...} -o {library} .")
        .env("CGO_ENABLED", "1")
        .env("GOOS", "linux")
        .env("GOARCH", "amd64")
        .env("CC", "cc")
        .env("GOFLAGS", "-mod=mod")
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local")
        .env("GOWORK", "off")
        .env("GOEXPERIMENT", goexperiment.as_deref().unwrap_or_default())
        .run()
        .with_context(|| {
            format!(
                "`go build -buildmode=plugin` failed in {}",
                package.display()
            )
        })?;
    Ok(Ok(library.to_owned()))
}

/// Copies the module at `package` into `scratch/plugin` (renamed to
/// `module`), beside a copy of the contract (bumped to `contract`), and
/// returns the copy's directory and import path.
fn variant(
    root: &Path,
    package: &Path,
    module: Option<&str>,
    contract: Option<&str>,
    scratch: &Path,
) -> anyhow::Result<(PathBuf, String)> {
    let abi = scratch.join("abi");
    let plugin = scratch.join("plugin");
    copy_files(&root.join("plugins/abi/go"), &abi)?;
    copy_files(package, &plugin)?;
    if let Some(contract) = contract {
        bump_contract(&abi, contract)?;
    }
    let go_mod = std::fs::read_to_string(plugin.join("go.mod"))?;
    let own_path = module_path(package)?;
    let import_path = module.unwrap_or(&own_path).to_owned();
    let rewritten: Vec<String> = go_mod
        .lines()
        .map(|line| {
            if line.starts_with("module ") {
                format!("module {import_path}")
            } else if line.starts_with(&format!("replace {CONTRACT_MODULE} ")) {
                format!("replace {CONTRACT_MODULE} => ../abi")
            } else if let (Some(version), true) = (
                contract,
                line.starts_with(&format!("require {CONTRACT_MODULE} ")),
            ) {
                format!("require {CONTRACT_MODULE} {version}")
            } else {
                line.to_owned()
            }
        })
        .collect();
    std::fs::write(plugin.join("go.mod"), rewritten.join("\n") + "\n")?;
    Ok((plugin, import_path))
}

/// Makes the contract copy at `abi` the newer minor `version` (`v1.1.0`):
/// its minor constant, and one interface it adds.
fn bump_contract(abi: &Path, version: &str) -> anyhow::Result<()> {
    let minor = version
        .trim_start_matches('v')
        .split('.')
        .nth(1)
        .context("a contract version is vMAJOR.MINOR.PATCH")?;
    let file = abi.join("plugcheck.go");
    let text = std::fs::read_to_string(&file)?;
    let old = "const ABIMajor, ABIMinor = 1, 0";
    if !text.contains(old) {
        bail!("plugins/abi/go/plugcheck.go no longer declares `{old}`: update go_plugin.rs");
    }
    let text = text.replace(old, &format!("const ABIMajor, ABIMinor = 1, {minor}"))
        + &format!(
            "\n// Described is new in {version}: a plugin may say what it does.\ntype Described interface {{\n\tDescribe() string\n}}\n"
        );
    std::fs::write(&file, text)?;
    Ok(())
}

/// The `module` line of the go.mod at (or above) `package`.
fn module_path(package: &Path) -> anyhow::Result<String> {
    let mut dir = package;
    loop {
        let go_mod = dir.join("go.mod");
        if let Ok(text) = std::fs::read_to_string(&go_mod) {
            let module = text
                .lines()
                .find_map(|line| line.strip_prefix("module "))
                .with_context(|| format!("`{}` has no module line", go_mod.display()))?
                .trim()
                .to_owned();
            let below = package.strip_prefix(dir).unwrap_or(Path::new(""));
            let mut path = module;
            for part in below.iter() {
                path.push('/');
                path.push_str(&part.to_string_lossy());
            }
            return Ok(path);
        }
        dir = dir
            .parent()
            .with_context(|| format!("no go.mod at or above `{}`", package.display()))?;
    }
}

/// Copies the files (not subdirectories) of `from` into `to`.
fn copy_files(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read `{}`", from.display()))?
    {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_package_below_its_module_root_gets_the_full_import_path() {
        let root = crate::paths::project_root();
        assert_eq!(
            module_path(&root.join("fixtures/go-native/no-entry")).unwrap(),
            "plugcheck.dev/fixtures/go-native/no-entry"
        );
        assert_eq!(
            module_path(&root.join("plugins/go-native-echo")).unwrap(),
            "plugcheck.dev/go-native-echo"
        );
    }

    #[test]
    fn a_bumped_contract_says_its_minor_and_adds_to_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        copy_files(
            &crate::paths::project_root().join("plugins/abi/go"),
            dir.path(),
        )
        .unwrap();
        bump_contract(dir.path(), "v1.1.0").unwrap();
        let text = std::fs::read_to_string(dir.path().join("plugcheck.go")).unwrap();
        assert!(text.contains("const ABIMajor, ABIMinor = 1, 1"));
        assert!(text.contains("type Described interface"));
    }
}
