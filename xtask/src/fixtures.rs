//! `cargo xtask fixtures`: builds every plugin and fixture the manifest
//! names, for the host platform, into one known directory:
//! `target/plugcheck/<platform>/artifacts/<name>.<ext>`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use plugcheck_fixtures::{CTarget, Fixture, InputKind, Manifest, Source};
use xshell::{Shell, cmd};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Build with optimisations (what `bench` uses).
    #[arg(long)]
    pub release: bool,
    /// Fail instead of skipping fixtures whose compiler is not installed.
    #[arg(long)]
    pub require_all: bool,
}

/// One artifact ready to be judged.
#[derive(Debug, Clone)]
pub struct Built {
    pub name: String,
    pub path: PathBuf,
    pub timeout: Option<Duration>,
    /// `--reload-to` arguments: `ROLE=PATH` of other built fixtures.
    pub reload_to: Vec<String>,
}

/// What a fixtures build produced.
#[derive(Debug)]
pub struct Artifacts {
    /// The `plugcheck` binary built alongside.
    pub plugcheck: PathBuf,
    pub built: Vec<Built>,
    /// Fixtures not built, with the reason (a compiler is missing).
    pub skipped: Vec<(String, String)>,
}

/// The platform this host builds natively, as reports name it.
pub const HOST_PLATFORM: &str = std::env::consts::OS;

pub fn run(sh: &Shell, args: &Args) -> anyhow::Result<Artifacts> {
    let root = crate::project_root();
    let manifest = Manifest::load(&root)?;
    let profile = if args.release { "release" } else { "debug" };
    let target_dir = root.join("target");
    let out = target_dir
        .join("plugcheck")
        .join(HOST_PLATFORM)
        .join("artifacts");

    let packages = manifest
        .fixtures
        .iter()
        .filter_map(|fixture| match &fixture.source {
            Source::Crate { krate } => Some(package_name(&root.join(krate))),
            _ => None,
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // The harness builds with the profile the tests use; plugins and
    // fixtures with their own (`fixtures`: no debug info) or release.
    let release = args.release.then_some("--release");
    cmd!(sh, "cargo build --quiet {release...} -p plugcheck")
        .run()
        .context("building the harness failed")?;
    let plugin_profile = if args.release { "release" } else { "fixtures" };
    let package_args: Vec<String> = packages
        .iter()
        .flat_map(|p| ["-p".into(), p.clone()])
        .collect();
    cmd!(
        sh,
        "cargo build --quiet --profile {plugin_profile} {package_args...}"
    )
    .run()
    .context("building the plugins and fixture crates failed")?;

    if out.exists() {
        std::fs::remove_dir_all(&out)
            .with_context(|| format!("cannot clear `{}`", out.display()))?;
    }
    std::fs::create_dir_all(&out)?;
    let cargo_out = target_dir.join(plugin_profile);
    let mut artifacts = Artifacts {
        plugcheck: target_dir
            .join(profile)
            .join(format!("plugcheck{}", std::env::consts::EXE_SUFFIX)),
        built: Vec::new(),
        skipped: Vec::new(),
    };
    for fixture in &manifest.fixtures {
        match build_one(sh, &root, &cargo_out, &out, fixture)? {
            Ok(path) => artifacts.built.push(Built {
                name: fixture.name.clone(),
                path,
                timeout: fixture.timeout,
                reload_to: Vec::new(),
            }),
            Err(why) if args.require_all => {
                bail!("fixture `{}` cannot be built: {why}", fixture.name)
            }
            Err(why) => {
                eprintln!("SKIPPED fixture `{}`: {why}", fixture.name);
                artifacts.skipped.push((fixture.name.clone(), why));
            }
        }
    }
    // Reload targets name other fixtures: resolve them once all are built.
    let paths: Vec<(String, PathBuf)> = artifacts
        .built
        .iter()
        .map(|built| (built.name.clone(), built.path.clone()))
        .collect();
    for built in &mut artifacts.built {
        let fixture = manifest.get(&built.name).expect("built from the manifest");
        for (role, target) in &fixture.reload_to {
            match paths.iter().find(|(name, _)| name == target) {
                Some((_, path)) => built.reload_to.push(format!("{role}={}", path.display())),
                None => bail!(
                    "fixture `{}` reloads to `{target}`, which was not built (see above)",
                    built.name
                ),
            }
        }
    }
    eprintln!(
        "built {} fixtures into {}{}",
        artifacts.built.len(),
        out.display(),
        if artifacts.skipped.is_empty() {
            String::new()
        } else {
            format!(" ({} SKIPPED, see above)", artifacts.skipped.len())
        }
    );
    Ok(artifacts)
}

/// Builds one fixture. `Ok(Err(why))`: skipped because a tool is missing.
fn build_one(
    sh: &Shell,
    root: &Path,
    cargo_out: &Path,
    out: &Path,
    fixture: &Fixture,
) -> anyhow::Result<Result<PathBuf, String>> {
    let library = out.join(format!(
        "{}.{}",
        fixture.name,
        plugcheck::os::LIBRARY_EXTENSION
    ));
    match &fixture.source {
        Source::Crate { krate } => {
            let built = cargo_out.join(cdylib_file(&package_name(&root.join(krate))?));
            std::fs::copy(&built, &library)
                .with_context(|| format!("cannot copy `{}`", built.display()))?;
        }
        Source::C {
            c,
            target,
            missing_dependency,
        } => {
            let compiler = match c_compiler(*target) {
                Ok(compiler) => compiler,
                Err(why) => return Ok(Err(why)),
            };
            let include = root.join("plugins/abi/include");
            let source = root.join(c);
            let library = match target {
                CTarget::Windows => library.with_extension("dll"),
                _ => library,
            };
            let mut link = Vec::new();
            let gone = out.join(".gone");
            if let Some(dependency) = missing_dependency {
                // Build the dependency, link against it, then take it away.
                std::fs::create_dir_all(&gone)?;
                let dep_source = root.join(dependency);
                let dep = gone.join("libplugcheck-fixture-gone.so");
                cmd!(sh, "{compiler} -shared -fPIC -Wl,-soname,libplugcheck-fixture-gone.so -o {dep} {dep_source}").run()?;
                link = vec![
                    format!("-L{}", gone.display()),
                    "-lplugcheck-fixture-gone".into(),
                ];
            }
            let pic = (*target != CTarget::Windows).then_some("-fPIC");
            cmd!(
                sh,
                "{compiler} -shared {pic...} -O1 -Wall -Werror -I{include} -o {library} {source} {link...}"
            )
            .run()
            .with_context(|| format!("compiling `{}` failed", source.display()))?;
            if gone.exists() {
                std::fs::remove_dir_all(&gone)?;
            }
            return Ok(Ok(library));
        }
        Source::Input { input } => {
            match input {
                InputKind::Empty => std::fs::write(&library, b"")?,
                InputKind::Text => std::fs::write(
                    &library,
                    "This is a text file, not a shared library.\nIt only has the right name.\n",
                )?,
                InputKind::Truncated => {
                    let whole = std::fs::read(cargo_out.join(cdylib_file("plugcheck-plugin-echo")))
                    .context("the truncated fixture is cut from the echo plugin, which was not built")?;
                    std::fs::write(&library, &whole[..whole.len() / 2])?;
                }
                InputKind::Directory => std::fs::create_dir_all(&library)?,
            }
        }
        Source::System { system } => {
            let found = cmd!(sh, "cc -print-file-name={system}").quiet().read()?;
            let found = PathBuf::from(found.trim());
            if !found.is_absolute() || !found.exists() {
                return Ok(Err(format!(
                    "the system library `{system}` is not installed (Debian: apt-get install zlib1g)"
                )));
            }
            std::fs::copy(&found, &library)?;
        }
    }
    Ok(Ok(library))
}

/// The C compiler for a target, or why there is none.
fn c_compiler(target: CTarget) -> Result<String, String> {
    let (compiler, package) = match target {
        CTarget::Native => ("cc", "gcc"),
        CTarget::Windows => ("x86_64-w64-mingw32-gcc", "gcc-mingw-w64-x86-64"),
        CTarget::Aarch64 => ("aarch64-linux-gnu-gcc", "gcc-aarch64-linux-gnu"),
    };
    if find_on_path(compiler).is_some() {
        Ok(compiler.into())
    } else {
        Err(format!(
            "{compiler} not found (install: apt-get install {package})"
        ))
    }
}

pub fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

/// `[package] name` of the crate at `dir`.
fn package_name(dir: &Path) -> anyhow::Result<String> {
    let manifest = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("cannot read `{}`", manifest.display()))?;
    let value: toml::Table = toml::from_str(&text)?;
    value
        .get("package")
        .and_then(|package| package.get("name"))
        .and_then(|name| name.as_str())
        .map(str::to_owned)
        .with_context(|| format!("`{}` has no [package] name", manifest.display()))
}

/// `plugcheck-plugin-echo` → `libplugcheck_plugin_echo.so`.
fn cdylib_file(package: &str) -> String {
    format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        package.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    )
}
