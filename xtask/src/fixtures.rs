//! `cargo xtask fixtures`: builds every plugin and fixture the manifest
//! names, for one platform, into one known directory:
//! `target/plugcheck/<platform>/artifacts/<name>.<ext>`, and the `plugcheck`
//! binary that judges them into `target/plugcheck/<platform>/bin/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use plugcheck::report::ToolchainProbe;
use plugcheck_fixtures::{CTarget, Fixture, InputKind, Manifest, Source};
use xshell::{Shell, cmd};

use crate::go_plugin;
use crate::leg_plan;
use crate::platform::{Platform, Selection};
use crate::toolchain::{self, RustBuild};
use crate::{needs, probe};

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Build with optimisations (what `bench` uses).
    #[arg(long)]
    pub release: bool,
    /// Fail instead of skipping fixtures whose compiler is not installed.
    #[arg(long)]
    pub require_all: bool,
    /// Which leg to build for.
    #[arg(long, value_enum, default_value_t)]
    pub platform: Selection,
}

/// One artifact ready to be judged.
#[derive(Debug, Clone)]
pub struct Built {
    pub name: String,
    pub path: PathBuf,
    pub timeout: Option<Duration>,
    /// `--reload-to` arguments: `ROLE=PATH` of other built fixtures.
    pub reload_to: Vec<(String, PathBuf)>,
    /// `--repeat N`, for a fixture whose runs are meant to disagree.
    pub repeat: Option<u32>,
    /// `--filter FAMILY,…`: the families the fixture is judged on.
    pub families: Option<String>,
}

/// What a fixtures build produced.
#[derive(Debug, Clone)]
pub struct Artifacts {
    pub platform: Platform,
    /// The `plugcheck` binary of that platform.
    pub plugcheck: PathBuf,
    pub built: Vec<Built>,
    /// Fixtures and probes not built or run: the tool that is missing.
    pub skipped: Vec<Skipped>,
    /// The toolchains' answers to the manifest's probes.
    pub probes: Vec<ToolchainProbe>,
}

impl Artifacts {
    /// The skipped fixtures as the fixture tests read them (`SKIPPED_VAR`).
    pub fn encoded_skipped(&self) -> String {
        let skipped: Vec<(String, String)> = self
            .skipped
            .iter()
            .map(|skipped| (skipped.name.clone(), skipped.why()))
            .collect();
        plugcheck_fixtures::built::encode_skipped(
            skipped
                .iter()
                .map(|(name, why)| (name.as_str(), why.as_str())),
        )
    }

    /// The directory the artifacts were built into (empty when none was).
    pub fn dir(&self) -> PathBuf {
        self.built
            .first()
            .and_then(|built| built.path.parent())
            .map(std::path::Path::to_owned)
            .unwrap_or_default()
    }
}

/// A fixture (or probe) left out because a tool is missing.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub name: String,
    pub need: needs::Need,
}

impl Skipped {
    /// Why, with the command that installs the tool.
    pub fn why(&self) -> String {
        self.need.missing()
    }
}

/// The platform this host builds natively, as reports name it.
pub const HOST_PLATFORM: &str = std::env::consts::OS;

pub fn run(sh: &Shell, args: &Args) -> anyhow::Result<Vec<Artifacts>> {
    args.platform
        .platforms()
        .into_iter()
        .map(|platform| build(sh, platform, args.release, args.require_all))
        .collect()
}

/// Builds the harness, plugins and fixtures for `platform`.
pub fn build(
    sh: &Shell,
    platform: Platform,
    release: bool,
    require_all: bool,
) -> anyhow::Result<Artifacts> {
    build_with(sh, platform, release, require_all, None)
}

/// [`build`], taking the Go-native plugins from `go_plugins_built`, the
/// artifacts of a Linux leg built in the same run: every leg judges the
/// same Linux build of them, made by the same command (21 Go links the
/// Windows leg need not make again).
pub fn build_with(
    sh: &Shell,
    platform: Platform,
    release: bool,
    require_all: bool,
    go_plugins_built: Option<&Path>,
) -> anyhow::Result<Artifacts> {
    let root = crate::paths::project_root();
    let manifest = Manifest::load(&root)?;
    let rust = RustBuild::for_platform(sh, platform)?;
    eprintln!("{platform} leg: Rust built by {}", rust.description);
    let leg = crate::paths::target_dir()
        .join("plugcheck")
        .join(platform.name());
    let out = leg.join("artifacts");

    if out.exists() {
        std::fs::remove_dir_all(&out)
            .with_context(|| format!("cannot clear `{}`", out.display()))?;
    }
    std::fs::create_dir_all(&out)?;
    let fixtures: Vec<&Fixture> = manifest
        .fixtures
        .iter()
        .filter(|fixture| fixture.runs_on(platform.name()))
        .collect();
    // What this host cannot build for the leg comes from the Linux leg
    // (in WSL2 on a Windows host): `leg_plan.rs`.
    let plan = leg_plan::plan(&manifest, platform, Platform::host());
    // What needs no cargo first: where the leg's Rust is still building in
    // the background (CI's Windows leg, `prebuild.rs`), the C and Go
    // builds run while cargo's lock is held, not after it.
    let mut results: Vec<Option<Result<PathBuf, needs::Need>>> = Vec::new();
    for fixture in &fixtures {
        let from_linux = plan
            .iter()
            .any(|item| item.name == fixture.name && item.built_on != Platform::host());
        let built_go_plugin = go_plugins_built
            .filter(|_| matches!(fixture.source, Source::GoPlugin { .. }))
            .map(|dir| dir.join(format!("{}.so", fixture.name)))
            .filter(|built| built.is_file());
        results.push(if from_linux {
            Some(take_from_linux_leg(&fixture.name, &out)?)
        } else if let Some(built) = built_go_plugin {
            let library = out.join(format!("{}.so", fixture.name));
            std::fs::copy(&built, &library)
                .with_context(|| format!("cannot copy `{}`", built.display()))?;
            Some(Ok(library))
        } else if reads_cargo_output(fixture) {
            None
        } else {
            Some(build_one(sh, &root, platform, None, &out, fixture)?)
        });
    }

    // The harness with the profile the tests use; plugins and fixtures with
    // their own (`fixtures`: no debug info) or release.
    let harness_profile = if release { "release" } else { "dev" };
    rust.build(sh, &["plugcheck".into()], harness_profile)
        .context("building the harness failed")?;
    let plugin_profile = if release {
        "release"
    } else {
        toolchain::PLUGIN_PROFILE
    };
    // Crash fixtures keep line tables where the leg symbolizes with them.
    let debuginfo_profile = if release {
        "release"
    } else {
        toolchain::DEBUGINFO_PROFILE
    };
    let [plain, with_line_tables] = crate_packages(&root, &manifest, platform)?;
    rust.build(sh, &plain, plugin_profile)
        .context("building the plugins and fixture crates failed")?;
    if !with_line_tables.is_empty() {
        rust.build(sh, &with_line_tables, debuginfo_profile)
            .context("building the fixture crates with line tables failed")?;
    }
    let plugcheck = install_plugcheck(platform, &rust.out_dir(harness_profile), &leg.join("bin"))?;
    let cargo_out = [
        rust.out_dir(plugin_profile),
        rust.out_dir(debuginfo_profile),
    ];
    let mut artifacts = Artifacts {
        platform,
        plugcheck,
        built: Vec::new(),
        skipped: Vec::new(),
        probes: Vec::new(),
    };
    // In the manifest's order, what reads cargo's builds in its turn.
    for (fixture, result) in fixtures.into_iter().zip(results) {
        let result = match result {
            Some(result) => result,
            None => {
                let cargo_out = &cargo_out[usize::from(keeps_line_tables(platform, fixture))];
                build_one(sh, &root, platform, Some(cargo_out), &out, fixture)?
            }
        };
        match result {
            Ok(path) => artifacts.built.push(Built {
                name: fixture.name.clone(),
                path,
                timeout: fixture.timeout_on(platform.name()),
                reload_to: Vec::new(),
                repeat: fixture.repeat,
                families: fixture.families.as_ref().map(|families| families.join(",")),
            }),
            Err(need) if require_all => {
                bail!(
                    "{platform} fixture `{}` cannot be built: {}",
                    fixture.name,
                    need.missing()
                )
            }
            Err(need) => {
                eprintln!(
                    "SKIPPED {platform} fixture `{}`: {}",
                    fixture.name,
                    need.missing()
                );
                artifacts.skipped.push(Skipped {
                    name: fixture.name.clone(),
                    need,
                });
            }
        }
    }
    resolve_reload_targets(&manifest, &mut artifacts)?;
    for probe in &manifest.probes {
        match run_probe(sh, &root, platform, &probe.name)? {
            Ok(answer) => {
                eprintln!(
                    "{platform} probe `{}`: {}",
                    answer.name,
                    if answer.supported {
                        "supported".to_owned()
                    } else {
                        format!("unsupported: {}", answer.message)
                    }
                );
                artifacts.probes.push(answer);
            }
            Err(need) if require_all => {
                bail!(
                    "{platform} probe `{}` cannot run: {}",
                    probe.name,
                    need.missing()
                )
            }
            Err(need) => {
                eprintln!(
                    "SKIPPED {platform} probe `{}`: {}",
                    probe.name,
                    need.missing()
                );
                artifacts.skipped.push(Skipped {
                    name: probe.name.clone(),
                    need,
                });
            }
        }
    }
    eprintln!(
        "built {} {platform} fixtures into {}{}",
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

/// Where the Linux leg leaves what it builds for a Windows host's leg.
pub const LINUX_BUILT_FOR_WINDOWS: &str = "plugcheck/windows-from-linux";

/// Builds, on Linux, the items of the Windows leg that a Windows host
/// cannot build (`leg_plan`), into `LINUX_BUILT_FOR_WINDOWS` under the
/// target directory: the Linux leg in WSL2 does this for the Windows leg.
pub fn build_for_windows_host(sh: &Shell) -> anyhow::Result<()> {
    let root = crate::paths::project_root();
    let manifest = Manifest::load(&root)?;
    let out = crate::paths::target_dir().join(LINUX_BUILT_FOR_WINDOWS);
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    std::fs::create_dir_all(&out)?;
    let plan = leg_plan::plan(&manifest, Platform::Windows, Platform::Windows);
    for item in plan.iter().filter(|item| item.built_on == Platform::Linux) {
        let fixture = manifest.get(&item.name).expect("planned from the manifest");
        // None of these is a crate: no cargo output is read.
        if let Err(need) = build_one(sh, &root, Platform::Windows, None, &out, fixture)? {
            bail!(
                "the windows fixture `{}` a Windows host takes from Linux cannot be built: {}",
                item.name,
                need.missing()
            );
        }
    }
    eprintln!(
        "built the windows leg's Linux-made fixtures into {}",
        out.display()
    );
    Ok(())
}

/// Copies the Linux leg's build of `name` (a file named `name.*`) into
/// `out`, from WSL2's filesystem on a Windows host.
fn take_from_linux_leg(name: &str, out: &Path) -> anyhow::Result<Result<PathBuf, needs::Need>> {
    let dir = crate::wsl::linux_target_dir_here()?.join(LINUX_BUILT_FOR_WINDOWS);
    let found = std::fs::read_dir(&dir)
        .with_context(|| {
            format!(
                "cannot read `{}`: the Linux leg in WSL2 (`cargo xtask conformance --platform linux`) builds what this host cannot, and must run first",
                dir.display()
            )
        })?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.file_stem().is_some_and(|stem| stem == name));
    let Some(found) = found else {
        bail!(
            "the Linux leg did not leave `{name}` in `{}`; run `cargo xtask conformance --platform linux` first",
            dir.display()
        );
    };
    let to = out.join(found.file_name().expect("a file"));
    std::fs::copy(&found, &to).with_context(|| format!("cannot copy `{}`", found.display()))?;
    Ok(Ok(to))
}

/// The Rust plugins and fixture crates `platform` runs, as cargo packages:
/// those built without line tables, and those built with them
/// ([`keeps_line_tables`]).
pub fn crate_packages(
    root: &Path,
    manifest: &Manifest,
    platform: Platform,
) -> anyhow::Result<[Vec<String>; 2]> {
    let mut packages: [Vec<String>; 2] = Default::default();
    for fixture in &manifest.fixtures {
        if let (true, Source::Crate { krate, .. }) =
            (fixture.runs_on(platform.name()), &fixture.source)
        {
            let name = package_name(&root.join(krate))?;
            packages[usize::from(keeps_line_tables(platform, fixture))].push(name);
        }
    }
    Ok(packages)
}

/// Copies the platform's `plugcheck` into `bin` (for Windows, with the
/// compat DLL Wine needs in the prefix).
fn install_plugcheck(platform: Platform, built: &Path, bin: &Path) -> anyhow::Result<PathBuf> {
    let name = format!("plugcheck{}", platform.exe_suffix());
    if platform == Platform::host() {
        return Ok(built.join(name));
    }
    std::fs::create_dir_all(bin)?;
    let exe = bin.join(&name);
    std::fs::copy(built.join(&name), &exe)
        .with_context(|| format!("cannot copy `{}`", built.join(&name).display()))?;
    Ok(exe)
}

/// Reload targets name other fixtures: resolved once all are built.
fn resolve_reload_targets(manifest: &Manifest, artifacts: &mut Artifacts) -> anyhow::Result<()> {
    let paths: Vec<(String, PathBuf)> = artifacts
        .built
        .iter()
        .map(|built| (built.name.clone(), built.path.clone()))
        .collect();
    for built in &mut artifacts.built {
        let fixture = manifest.get(&built.name).expect("built from the manifest");
        for (role, target) in &fixture.reload_to {
            match paths.iter().find(|(name, _)| name == target) {
                Some((_, path)) => built.reload_to.push((role.clone(), path.clone())),
                None => bail!(
                    "fixture `{}` reloads to `{target}`, which was not built (see above)",
                    built.name
                ),
            }
        }
    }
    Ok(())
}

/// Whether `fixture` is built with line tables on this leg: crash fixtures
/// that ask for them, on Linux (the Windows leg names functions only, and
/// a profile of its own would build std from source a second time there).
fn keeps_line_tables(platform: Platform, fixture: &Fixture) -> bool {
    matches!(
        fixture.source,
        Source::Crate {
            debuginfo: true,
            ..
        }
    ) && platform.name() == "linux"
}

/// Whether building `fixture` reads what cargo built: a crate's library,
/// or a file made from the echo plugin's.
fn reads_cargo_output(fixture: &Fixture) -> bool {
    matches!(
        fixture.source,
        Source::Crate { .. }
            | Source::Input {
                input: InputKind::Truncated | InputKind::Padded,
            }
    )
}

/// Builds one fixture. `Ok(Err(need))`: skipped because a tool is missing.
fn build_one(
    sh: &Shell,
    root: &Path,
    platform: Platform,
    cargo_out: Option<&Path>,
    out: &Path,
    fixture: &Fixture,
) -> anyhow::Result<Result<PathBuf, needs::Need>> {
    // Given exactly when `reads_cargo_output` says it is read.
    let cargo_out = || {
        cargo_out.with_context(|| {
            format!(
                "the xtask built `{}` before cargo ran: `reads_cargo_output` must name its kind",
                fixture.name
            )
        })
    };
    let library = out.join(format!("{}.{}", fixture.name, platform.library_extension()));
    match &fixture.source {
        Source::Crate { krate, .. } => {
            let built = cargo_out()?.join(platform.cdylib_file(&package_name(&root.join(krate))?));
            std::fs::copy(&built, &library)
                .with_context(|| format!("cannot copy `{}`", built.display()))?;
        }
        Source::C {
            c,
            target,
            missing_dependency,
            defines,
            header,
        } => {
            let compiler = match CCompiler::for_target(sh, platform, *target) {
                Ok(compiler) => compiler,
                Err(why) => return Ok(Err(why)),
            };
            let include = root.join(header.include_dir());
            let source = root.join(c);
            let library = library.with_extension(compiler.extension);
            let mut link = Vec::new();
            let gone = out.join(".gone");
            if let Some(dependency) = missing_dependency {
                // Build the dependency, link against it, then take it away.
                std::fs::create_dir_all(&gone)?;
                let dep_source = root.join(dependency);
                let dep_name = format!("plugcheck-fixture-gone.{}", compiler.extension);
                let dep_file = match compiler.extension {
                    "so" => format!("lib{dep_name}"),
                    _ => dep_name.clone(),
                };
                let dep = gone.join(&dep_file);
                let gcc = compiler.command;
                let soname = format!("-Wl,-soname,{dep_file}");
                let soname = (compiler.extension == "so").then_some(soname);
                let pic = compiler.pic;
                cmd!(
                    sh,
                    "{gcc} -shared {pic...} {soname...} -o {dep} {dep_source}"
                )
                .run()?;
                link = vec![dep.display().to_string()];
            }
            let gcc = compiler.command;
            let pic = compiler.pic;
            let defines: Vec<String> = defines.iter().map(|define| format!("-D{define}")).collect();
            let threads = (compiler.extension == "so").then_some("-pthread");
            cmd!(
                sh,
                "{gcc} -shared {pic...} {threads...} -O1 -g -Wall -Werror {defines...} -I{include} -o {library} {source} {link...}"
            )
            .run()
            .with_context(|| format!("compiling `{}` failed", source.display()))?;
            if gone.exists() {
                std::fs::remove_dir_all(&gone)?;
            }
            return Ok(Ok(library));
        }
        Source::Go { go } => {
            let package = root.join(go);
            return build_go(sh, platform, &package, &library);
        }
        Source::GoPlugin { .. } => {
            // Go builds plugins only for Linux-likes: every leg judges the
            // Linux build (Windows must say it cannot load it).
            let library = out.join(format!("{}.so", fixture.name));
            return go_plugin::build(sh, root, &fixture.source, &library);
        }
        Source::Input { input } => match input {
            InputKind::Empty => std::fs::write(&library, b"")?,
            InputKind::Text => std::fs::write(
                &library,
                "This is a text file, not a shared library.\nIt only has the right name.\n",
            )?,
            InputKind::Truncated => {
                let echo = cargo_out()?.join(platform.cdylib_file("plugcheck-plugin-echo"));
                let whole = std::fs::read(echo).context(
                    "the truncated fixture is cut from the echo plugin, which was not built",
                )?;
                std::fs::write(&library, &whole[..whole.len() / 2])?;
            }
            InputKind::Directory => std::fs::create_dir_all(&library)?,
            InputKind::Fifo => {
                let fifo = &library;
                cmd!(sh, "mkfifo {fifo}").run()?;
            }
            InputKind::Device => {
                let device = &library;
                cmd!(sh, "ln -s /dev/zero {device}").run()?;
            }
            InputKind::Rlib => {
                // An rlib is an archive whatever the target: the host's
                // rustc makes one the sniffing reads the same on each leg.
                let source = root.join("fixtures/rust-rlib/lib.rs");
                cmd!(
                    sh,
                    "rustc --edition 2021 --crate-type rlib --crate-name plugcheck_fixture_rlib -o {library} {source}"
                )
                .run()?;
            }
            InputKind::StaticLibrary => {
                let object = out.join(".static-library.o");
                let include = root.join(plugcheck_fixtures::CHeader::V1_0.include_dir());
                let source = root.join("fixtures/c/minimal.c");
                cmd!(sh, "cc -c -I{include} -o {object} {source}").run()?;
                cmd!(sh, "ar rcs {library} {object}").run()?;
                std::fs::remove_file(&object)?;
            }
            InputKind::Executable => {
                let compiler = match CCompiler::for_target(sh, platform, CTarget::Native) {
                    Ok(compiler) => compiler,
                    Err(why) => return Ok(Err(why)),
                };
                let command = compiler.command;
                let source = root.join("fixtures/c/program.c");
                cmd!(sh, "{command} -O1 -Wall -Werror -o {library} {source}").run()?;
            }
            InputKind::Padded => {
                let echo = cargo_out()?.join(platform.cdylib_file("plugcheck-plugin-echo"));
                std::fs::copy(&echo, &library)
                    .context("the padded fixture is the echo plugin padded, which was not built")?;
                // Holes, not bytes: 2 GiB that take no disk.
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&library)?
                    .set_len(2 << 30)?;
            }
        },
        Source::System { system } => {
            let found = cmd!(sh, "cc -print-file-name={system}").quiet().read()?;
            let found = PathBuf::from(found.trim());
            if !found.is_absolute() || !found.exists() {
                return Ok(Err(needs::ZLIB));
            }
            std::fs::copy(&found, &library)?;
        }
    }
    Ok(Ok(library))
}

/// Builds a Go package as a C shared library for `platform` (cgo, with the
/// leg's C compiler: mingw-w64 for Windows). `Ok(Err(need))`: Go or the C
/// compiler is missing, so the fixture is skipped; a failed build is an
/// error.
fn build_go(
    sh: &Shell,
    platform: Platform,
    package: &Path,
    library: &Path,
) -> anyhow::Result<Result<PathBuf, needs::Need>> {
    let go = match GoBuild::for_platform(sh, platform) {
        Ok(go) => go,
        Err(missing) => return Ok(Err(missing)),
    };
    let _dir = sh.push_dir(package);
    go.command(sh, "c-shared", library).run().with_context(|| {
        format!(
            "`go build -buildmode=c-shared` failed in {}",
            package.display()
        )
    })?;
    // c-shared also writes a header beside the library; it is not a plugin.
    let _ = std::fs::remove_file(library.with_extension("h"));
    Ok(Ok(library.to_owned()))
}

/// `go build` for a leg: Go on PATH, cgo on, GOOS/GOARCH of the leg and its
/// C compiler as CC.
struct GoBuild {
    go: PathBuf,
    goos: &'static str,
    compiler: CCompiler,
}

impl GoBuild {
    /// `Err(need)`: Go or the leg's C compiler is missing.
    fn for_platform(sh: &Shell, platform: Platform) -> Result<GoBuild, needs::Need> {
        if !probe::present(&needs::GO, sh) {
            return Err(needs::GO);
        }
        let go = plugcheck::bridge::find_on_path("go").ok_or(needs::GO)?;
        let compiler = CCompiler::for_target(sh, platform, CTarget::Native)?;
        let goos = match platform {
            Platform::Linux => "linux",
            Platform::Windows => "windows",
        };
        Ok(GoBuild { go, goos, compiler })
    }

    /// `go build -buildmode=MODE -trimpath -o OUTPUT` of the current
    /// directory (-trimpath: no build paths in the library or its panics).
    fn command<'a>(&self, sh: &'a Shell, mode: &str, output: &Path) -> xshell::Cmd<'a> {
        let go = &self.go;
        cmd!(sh, "{go} build -buildmode={mode} -trimpath -o {output} .")
            .env("CGO_ENABLED", "1")
            .env("GOOS", self.goos)
            .env("GOARCH", "amd64")
            .env("CC", self.compiler.command)
    }

    /// The command as a person would type it, for the report.
    fn describe(&self, mode: &str) -> String {
        format!(
            "GOOS={} GOARCH=amd64 CGO_ENABLED=1 go build -buildmode={mode}",
            self.goos
        )
    }
}

/// Puts a manifest probe to the leg's toolchain. `Ok(Err(need))`: the
/// toolchain is missing.
fn run_probe(
    sh: &Shell,
    root: &Path,
    platform: Platform,
    name: &str,
) -> anyhow::Result<Result<ToolchainProbe, needs::Need>> {
    match name {
        "go-buildmode-plugin" => probe_go_buildmode_plugin(sh, root, platform),
        other => bail!(
            "fixtures/fixtures.toml names an unknown probe `{other}` (known: go-buildmode-plugin)"
        ),
    }
}

/// Whether `go build -buildmode=plugin` builds for `platform`, in the Go
/// toolchain's own words: Go plugins exist only for Go hosts, and Go
/// refuses them outright for Windows.
fn probe_go_buildmode_plugin(
    sh: &Shell,
    root: &Path,
    platform: Platform,
) -> anyhow::Result<Result<ToolchainProbe, needs::Need>> {
    let go = match GoBuild::for_platform(sh, platform) {
        Ok(go) => go,
        Err(missing) => return Ok(Err(missing)),
    };
    let scratch = tempfile::tempdir().context("cannot create a directory for the probe")?;
    let output = scratch.path().join("probe.so");
    let _dir = sh.push_dir(root.join("fixtures/go/buildmode-plugin"));
    let result = go
        .command(sh, "plugin", &output)
        .quiet()
        .ignore_status()
        .output()
        .context("cannot run `go build -buildmode=plugin`")?;
    Ok(Ok(ToolchainProbe {
        name: "go-buildmode-plugin".into(),
        command: go.describe("plugin"),
        supported: result.status.success(),
        message: String::from_utf8_lossy(&result.stderr).trim().to_owned(),
    }))
}

/// The C compiler for a fixture on a leg.
struct CCompiler {
    command: &'static str,
    /// Extension of what it builds.
    extension: &'static str,
    pic: Option<&'static str>,
}

impl CCompiler {
    /// `native`: the leg's own format and architecture; `foreign`: the other
    /// platform's format; `wrong-arch`: the leg's format for another
    /// architecture. Or why there is no such compiler here, with the
    /// command that installs it.
    fn for_target(
        sh: &Shell,
        platform: Platform,
        target: CTarget,
    ) -> Result<CCompiler, needs::Need> {
        let (need, extension) = match (platform, target) {
            (Platform::Linux, CTarget::Native) | (Platform::Windows, CTarget::Foreign) => {
                (needs::CC, "so")
            }
            (Platform::Linux, CTarget::Foreign) | (Platform::Windows, CTarget::Native) => {
                (needs::MINGW, "dll")
            }
            (Platform::Linux, CTarget::WrongArch) => (needs::AARCH64, "so"),
            (Platform::Windows, CTarget::WrongArch) => (needs::MINGW_I686, "dll"),
        };
        let needs::Probe::CompilesC(command) = need.probe else {
            unreachable!("C compiler needs are probed by compiling");
        };
        if !probe::present(&need, sh) {
            return Err(need);
        }
        Ok(CCompiler {
            command,
            extension,
            pic: (extension == "so").then_some("-fPIC"),
        })
    }
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
