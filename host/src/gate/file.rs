//! `plugcheck.toml`, the gate file a plugin repository checks in: the
//! settings `plugcheck check` takes as flags, and waivers with reasons.
//! Read strictly: an unknown key, a wrong type or a waiver without a reason
//! is an error naming the file, the line and the key, because a gate that
//! silently ignores half its file is no gate.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::catalog;
use crate::gate::policy::{Until, Waiver};
use crate::os::Platform;
use crate::outcome::ReloadRole;
use crate::report::verdict::Verdict;

/// The gate file's name, looked for beside the plugin.
pub const FILE_NAME: &str = "plugcheck.toml";

/// The schema this plugcheck reads.
pub const SCHEMA: i64 = 1;

/// A read and validated gate file. Every setting is optional: a flag given
/// on the command line wins over it, a built-in default stands in for it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GateFile {
    pub path: PathBuf,
    pub deny_warnings: Option<bool>,
    pub deny_skipped: Option<bool>,
    pub timeout: Option<Duration>,
    pub load_time_bound: Option<Duration>,
    pub repeat_cycles: Option<u32>,
    pub reload_cycles: Option<u32>,
    pub fuzz_inputs: Option<u32>,
    pub seed: Option<u64>,
    pub repeat: Option<u32>,
    /// The `[reload-to]` builds, paths made absolute against the file's
    /// directory.
    pub reload_to: Vec<ReloadBuild>,
    pub waivers: Vec<Waiver>,
    /// `xxh3:` of the file's bytes, which a report records so the shards
    /// of a run are known to share one gate file.
    pub hash: String,
}

/// Another build a reload case switches to, as the gate file names it.
/// Builds are per platform (a `.so` is no upgrade of a `.dll`), so one file
/// serving both legs names each: `upgrade = { linux = "…", windows = "…" }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReloadBuild {
    pub role: ReloadRole,
    /// `/repo/plugcheck.toml:8`: where to fix it, said in every later
    /// diagnosis of the build (missing, another platform's).
    pub named_at: String,
    pub builds: PlatformBuilds,
}

/// The path, or paths, a `[reload-to]` entry gives.
#[derive(Debug, Clone, PartialEq)]
pub enum PlatformBuilds {
    /// `upgrade = "path"`: the build on whichever platform judges.
    Every(PathBuf),
    /// `upgrade = { linux = "…", windows = "…" }`, in [`Platform::ALL`]
    /// order; a platform left out has no build there.
    Each(Vec<(Platform, PathBuf)>),
}

impl ReloadBuild {
    /// The build for `platform`; `None` when the entry names builds for
    /// other platforms only.
    pub fn for_platform(&self, platform: Platform) -> Option<&Path> {
        match &self.builds {
            PlatformBuilds::Every(path) => Some(path),
            PlatformBuilds::Each(builds) => builds
                .iter()
                .find(|(named, _)| *named == platform)
                .map(|(_, path)| path.as_path()),
        }
    }
}

/// What went wrong reading a gate file: where, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum GateFileError {
    #[error("cannot read the gate file `{}`: {cause}; name a readable plugcheck.toml with --config, or pass --no-config", crate::text::one_line(&path.display().to_string()))]
    Io {
        path: PathBuf,
        /// Not a `source`: it is in the message, once.
        cause: std::io::Error,
    },
    #[error("{}:{line}: {message}", crate::text::one_line(&path.display().to_string()))]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("the gate file `{}` is {what}, not a readable regular file: make it a plugcheck.toml file (or remove it), name another with --config, or pass --no-config to check without one", crate::text::one_line(&path.display().to_string()))]
    NotAFile { path: PathBuf, what: String },
    /// Several waivers are wrong: each is named, so one edit fixes all.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<GateFileError>),
}

/// The gate file for `plugin`: `plugcheck.toml` in the directory the plugin
/// really is in, or the nearest one above, stopping at that directory's
/// repository root (the nearest directory above it with `.git`), so a file
/// outside the plugin's repository is never picked up. A plugin in no
/// repository has only its own directory: the directories above it (`/tmp`,
/// a home, a CI workspace) may hold anybody's `plugcheck.toml`.
///
/// "Really is": the path is resolved first (`..` and symbolic links, the
/// plugin's own included), so the words used to name the plugin cannot
/// steer the walk: `run/../other/libx.so` never reaches `run/`, and a
/// link to a plugin answers to the gate file of the repository the plugin
/// is in, not the link's. The current directory plays no part.
///
/// Anything named `plugcheck.toml` ends the walk, whatever it is: [`read`]
/// refuses one that is not a regular file, rather than the walk stepping
/// past it to a more lenient file above.
pub fn discover(plugin: &Path) -> Option<PathBuf> {
    let start = match crate::os::real_path(plugin) {
        Ok(real) => real.parent()?.to_owned(),
        // No plugin there (the check says so): its directory still decides.
        Err(_) => crate::os::real_path(plugin.parent()?).ok()?,
    };
    let exists = |path: &Path| std::fs::symlink_metadata(path).is_ok();
    let root = start.ancestors().find(|dir| exists(&dir.join(".git")));
    let Some(root) = root else {
        let candidate = start.join(FILE_NAME);
        return exists(&candidate).then_some(candidate);
    };
    start
        .ancestors()
        .take_while(|dir| dir.starts_with(root))
        .map(|dir| dir.join(FILE_NAME))
        .find(|candidate| exists(candidate))
}

/// The bytes a gate file may have: far more than any real one.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Reads and validates a gate file. Only a regular file (or a link to
/// one) is read: a directory, a device, a FIFO or a dangling link named
/// `plugcheck.toml` is an error, never a file silently skipped.
pub fn read(path: &Path) -> Result<GateFile, GateFileError> {
    let io = |cause| GateFileError::Io {
        path: path.to_owned(),
        cause,
    };
    let not_a_file = |what: String| GateFileError::NotAFile {
        path: path.to_owned(),
        what,
    };
    // Asked before opening: opening a FIFO for reading waits for a writer,
    // a device never ends.
    if let Some(what) = not_regular(path).map_err(io)? {
        return Err(not_a_file(what));
    }
    let file = crate::os::open_without_waiting(path).map_err(io)?;
    // Asked again of what was opened: a file swapped in since is refused too.
    let opened = file.metadata().map_err(io)?;
    if let Some(what) = kind(&opened) {
        return Err(not_a_file(what.to_owned()));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_FILE_BYTES + 1),
        &mut bytes,
    )
    .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(io(std::io::Error::other("it is larger than 1 MiB")));
    }
    let text = text_of(&bytes, path)?;
    parse(text, path)
}

/// What `path` is when it is not a regular file or a link to one; `None`
/// when it is one.
fn not_regular(path: &Path) -> std::io::Result<Option<String>> {
    let link = std::fs::symlink_metadata(path)?;
    if !link.file_type().is_symlink() {
        return Ok(kind(&link).map(str::to_owned));
    }
    let target = std::fs::read_link(path)
        .map(|target| crate::text::one_line(&target.display().to_string()).into_owned())
        .unwrap_or_default();
    Ok(match std::fs::metadata(path) {
        Err(error) => Some(format!(
            "a symbolic link to `{target}`, which cannot be followed ({error})"
        )),
        Ok(meta) => kind(&meta).map(|what| format!("a symbolic link to `{target}`, {what}")),
    })
}

/// What a file that is not a regular file is, by name.
fn kind(meta: &std::fs::Metadata) -> Option<&'static str> {
    if meta.is_file() {
        None
    } else if meta.is_dir() {
        Some("a directory")
    } else {
        Some(crate::os::special_file_kind(&meta.file_type()).unwrap_or("not a regular file"))
    }
}

/// The file's text, or the line where it stops being UTF-8.
fn text_of<'a>(bytes: &'a [u8], path: &Path) -> Result<&'a str, GateFileError> {
    std::str::from_utf8(bytes).map_err(|error| {
        let bad = error.valid_up_to();
        let line_start = bytes[..bad]
            .iter()
            .rposition(|byte| *byte == b'\n')
            .map_or(0, |newline| newline + 1);
        GateFileError::Invalid {
            path: path.to_owned(),
            line: line_of_bytes(bytes, bad),
            message: format!(
                "byte {} of this line (0x{:02x}) is not UTF-8: a gate file is UTF-8 text, save it as such",
                bad - line_start + 1,
                bytes[bad]
            ),
        }
    })
}

#[derive(Deserialize)]
struct SchemaOnly {
    schema: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Raw {
    #[allow(dead_code, reason = "checked before the rest")]
    schema: toml::Value,
    deny_warnings: Option<bool>,
    deny_skipped: Option<bool>,
    timeout: Option<Spanned<String>>,
    load_time_bound: Option<Spanned<String>>,
    repeat_cycles: Option<u32>,
    reload_cycles: Option<u32>,
    fuzz_inputs: Option<u32>,
    seed: Option<Spanned<toml::Value>>,
    repeat: Option<Spanned<u32>>,
    /// Read again from the document with every key's span
    /// ([`read_reload_to`]); here only its type is checked.
    #[allow(dead_code, reason = "read with spans from the document")]
    #[serde(default)]
    reload_to: toml::Table,
    #[serde(default)]
    waive: Vec<Spanned<RawWaiver>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWaiver {
    case: Option<Spanned<String>>,
    plugin: Option<String>,
    accept: Option<Spanned<String>>,
    reason: Option<Spanned<String>>,
    until: Option<Spanned<String>>,
}

/// Parses a gate file's text; `path` names it in errors and anchors its
/// relative paths.
pub fn parse(text: &str, path: &Path) -> Result<GateFile, GateFileError> {
    let at = |offset: usize, message: String| GateFileError::Invalid {
        path: path.to_owned(),
        line: line_of(text, offset),
        message,
    };
    let toml_error = |error: toml::de::Error| {
        let offset = error.span().map_or(0, |span| span.start);
        at(offset, error.message().trim().to_owned())
    };
    let schema = toml::from_str::<SchemaOnly>(text)
        .map_err(toml_error)?
        .schema
        .ok_or_else(|| {
            at(
                0,
                format!("no `schema` key: start the file with `schema = {SCHEMA}`"),
            )
        })?;
    if schema.get_ref().as_integer() != Some(SCHEMA) {
        return Err(at(
            schema.span().start,
            format!(
                "`schema = {}` is not a schema this plugcheck reads: it reads `schema = {SCHEMA}`; \
                 a newer schema needs a newer plugcheck",
                crate::text::one_line(&schema.get_ref().to_string())
            ),
        ));
    }
    let raw: Raw = toml::from_str(text).map_err(toml_error)?;
    let duration = |value: &Option<Spanned<String>>, key: &str| {
        value
            .as_ref()
            .map(|value| {
                humantime::parse_duration(value.get_ref()).map_err(|error| {
                    at(
                        value.span().start,
                        format!(
                            "`{key}` = \"{}\" is not a duration ({error}): write e.g. \"10s\" or \"500ms\"",
                            crate::text::one_line(value.get_ref())
                        ),
                    )
                })
            })
            .transpose()
    };
    let seed = match &raw.seed {
        None => None,
        Some(value) => Some(match value.get_ref() {
            toml::Value::Integer(n) if *n >= 0 => *n as u64,
            toml::Value::String(text) => crate::fuzz::parse_seed(text)
                .map_err(|error| at(value.span().start, format!("`seed`: {error}")))?,
            _ => {
                return Err(at(
                    value.span().start,
                    "`seed` must be a number, or a string like \"0x2a\"".to_owned(),
                ));
            }
        }),
    };
    if let Some(repeat) = &raw.repeat
        && *repeat.get_ref() == 0
    {
        return Err(at(
            repeat.span().start,
            "`repeat = 0` runs nothing: use 1 or more".to_owned(),
        ));
    }
    // The document with a span for every key and value, for what serde
    // cannot type (`[reload-to]`'s tables of platforms).
    let document = toml::de::DeTable::parse(text).map_err(toml_error)?;
    let reload_to = read_reload_to(document.get_ref(), path, &at, &|offset| {
        line_of(text, offset)
    })?;
    let (waivers, mut errors): (Vec<_>, Vec<_>) = raw
        .waive
        .iter()
        .map(|waiver| read_waiver(waiver, &at, &|offset| line_of(text, offset)))
        .partition(Result::is_ok);
    let waivers: Vec<Waiver> = waivers.into_iter().filter_map(Result::ok).collect();
    match errors.len() {
        0 => {}
        1 => return Err(errors.remove(0).expect_err("partitioned")),
        _ => {
            return Err(GateFileError::Several(
                errors.into_iter().filter_map(Result::err).collect(),
            ));
        }
    }
    Ok(GateFile {
        path: path.to_owned(),
        deny_warnings: raw.deny_warnings,
        deny_skipped: raw.deny_skipped,
        timeout: duration(&raw.timeout, "timeout")?,
        load_time_bound: duration(&raw.load_time_bound, "load-time-bound")?,
        repeat_cycles: raw.repeat_cycles,
        reload_cycles: raw.reload_cycles,
        fuzz_inputs: raw.fuzz_inputs,
        seed,
        repeat: raw.repeat.map(Spanned::into_inner),
        reload_to,
        waivers,
        hash: crate::report::provenance::gate_file_hash(text.as_bytes()),
    })
}

/// The `[reload-to]` table: each role's build, a path or a table of paths
/// by platform. Read from the spanned document so that each mistake points
/// at its own key (a platform key's line, not its role's).
fn read_reload_to(
    document: &toml::de::DeTable<'_>,
    path: &Path,
    at: &dyn Fn(usize, String) -> GateFileError,
    line_of: &dyn Fn(usize) -> usize,
) -> Result<Vec<ReloadBuild>, GateFileError> {
    use toml::de::DeValue;
    let Some(table) = document
        .iter()
        .find(|(key, _)| key.get_ref() == "reload-to")
        .map(|(_, table)| table)
    else {
        return Ok(Vec::new());
    };
    let DeValue::Table(table) = table.get_ref() else {
        return Err(at(
            table.span().start,
            "`reload-to` must be a table: `[reload-to]`".to_owned(),
        ));
    };
    let base = path.parent().unwrap_or(Path::new(""));
    let shape = |role: ReloadRole| {
        format!(
            "`[reload-to]` `{0}` must be a path in quotes, or a path per platform: \
             `{0} = {{ linux = \"…/libx.so\", windows = \"…/x.dll\" }}`",
            role.name()
        )
    };
    let mut builds = Vec::new();
    for (role, value) in table {
        let offset = role.span().start;
        let role = role.get_ref();
        let role = ReloadRole::ALL
            .into_iter()
            .find(|known| known.name() == role)
            .ok_or_else(|| {
                at(
                    offset,
                    format!(
                        "`[reload-to]` has no role `{}`: use {}",
                        crate::text::one_line(role),
                        ReloadRole::ALL.map(|role| role.name()).join(", ")
                    ),
                )
            })?;
        let platform_builds = match value.get_ref() {
            DeValue::String(target) => PlatformBuilds::Every(base.join(target.as_ref())),
            DeValue::Table(table) if !table.is_empty() => {
                let mut each = Vec::new();
                for (platform, target) in table {
                    let known = Platform::named(platform.get_ref())
                        .ok_or_else(|| {
                            at(
                                platform.span().start,
                                format!(
                                    "`[reload-to]` `{}` names a build for `{}`, which is no platform plugcheck judges on: use {}",
                                    role.name(),
                                    crate::text::one_line(platform.get_ref()),
                                    Platform::ALL.map(Platform::name).join(", ")
                                ),
                            )
                        })?;
                    let DeValue::String(target) = target.get_ref() else {
                        return Err(at(platform.span().start, shape(role)));
                    };
                    each.push((known, base.join(target.as_ref())));
                }
                each.sort_by_key(|(platform, _)| *platform);
                PlatformBuilds::Each(each)
            }
            _ => return Err(at(offset, shape(role))),
        };
        builds.push(ReloadBuild {
            role,
            named_at: format!("{}:{}", path.display(), line_of(offset)),
            builds: platform_builds,
        });
    }
    Ok(builds)
}

/// One `[[waive]]` table, checked key by key.
fn read_waiver(
    raw: &Spanned<RawWaiver>,
    at: &dyn Fn(usize, String) -> GateFileError,
    line_of: &dyn Fn(usize) -> usize,
) -> Result<Waiver, GateFileError> {
    let start = raw.span().start;
    let waiver = raw.get_ref();
    let case = waiver.case.as_ref().ok_or_else(|| {
        at(
            start,
            "`[[waive]]` without `case`: name a case id or a family (`plugcheck list` shows them)"
                .to_owned(),
        )
    })?;
    catalog::check_case_or_family(case.get_ref())
        .map_err(|error| at(case.span().start, format!("`case`: {error}")))?;
    let name = crate::text::one_line(case.get_ref()).into_owned();
    let accept = waiver.accept.as_ref().ok_or_else(|| {
        at(
            start,
            format!("the waiver for `{name}` has no `accept`: say which verdict it accepts instead of pass"),
        )
    })?;
    let verdicts = || {
        Verdict::ALL
            .iter()
            .filter(|verdict| **verdict != Verdict::Pass)
            .map(|verdict| verdict.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let accepted = match Verdict::from_name(accept.get_ref()) {
        Some(Verdict::Pass) => {
            return Err(at(
                accept.span().start,
                format!(
                    "`accept = \"pass\"` waives nothing: use one of {}",
                    verdicts()
                ),
            ));
        }
        Some(verdict) => verdict,
        None => {
            return Err(at(
                accept.span().start,
                format!(
                    "`accept = \"{}\"` is not a verdict: use one of {}",
                    crate::text::one_line(accept.get_ref()),
                    verdicts()
                ),
            ));
        }
    };
    let reason = waiver
        .reason
        .as_ref()
        .filter(|reason| !reason.get_ref().trim().is_empty())
        .ok_or_else(|| {
            let offset = waiver
                .reason
                .as_ref()
                .map_or(start, |reason| reason.span().start);
            at(
                offset,
                format!(
                    "the waiver for `{name}` has no `reason`: write why the gate may accept \
                     `{accepted}` there (a reason is mandatory)"
                ),
            )
        })?;
    if let Some(until) = &waiver.until {
        Until::parse(until.get_ref())
            .map_err(|error| at(until.span().start, format!("`until`: {error}")))?;
    }
    Ok(Waiver {
        case: case.get_ref().clone(),
        plugin: waiver.plugin.clone(),
        accept: accepted,
        reason: reason.get_ref().trim().to_owned(),
        until: waiver.until.as_ref().map(|until| until.get_ref().clone()),
        // Its `case` key's line: where a reader finds the waiver.
        line: line_of(case.span().start) as u32,
    })
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    line_of_bytes(text.as_bytes(), offset)
}

fn line_of_bytes(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|byte| **byte == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"schema = 1
deny-warnings = true
timeout = "30s"
seed = "0x2a"
repeat = 3

[reload-to]
upgrade = "build/v2/libx.so"

[[waive]]
case = "unload"          # a case id or a family
accept = "warning"
reason = "a Go runtime never unloads"
until = "2.0.0"

[[waive]]
case = "reload"
plugin = "go-echo"
accept = "skipped"
reason = "no second build yet"
"#;

    fn error(text: &str) -> String {
        parse(text, Path::new("/repo/plugcheck.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_good_file_reads_with_paths_beside_it_and_each_waivers_line() {
        let file = parse(GOOD, Path::new("/repo/plugcheck.toml")).unwrap();
        assert_eq!(file.deny_warnings, Some(true));
        assert_eq!(file.timeout, Some(Duration::from_secs(30)));
        assert_eq!(file.seed, Some(42));
        assert_eq!(file.repeat, Some(3));
        assert_eq!(
            file.reload_to,
            [ReloadBuild {
                role: ReloadRole::Upgrade,
                named_at: "/repo/plugcheck.toml:8".into(),
                builds: PlatformBuilds::Every(PathBuf::from("/repo/build/v2/libx.so")),
            }]
        );
        let lines: Vec<(u32, &str, Verdict)> = file
            .waivers
            .iter()
            .map(|waiver| (waiver.line, waiver.case.as_str(), waiver.accept))
            .collect();
        assert_eq!(
            lines,
            [
                (11, "unload", Verdict::Warning),
                (17, "reload", Verdict::Skipped)
            ]
        );
        assert_eq!(file.waivers[1].plugin.as_deref(), Some("go-echo"));
    }

    #[test]
    fn one_file_names_each_platforms_build_and_each_platform_takes_its_own() {
        let text = "schema = 1\n\
                    [reload-to]\n\
                    upgrade = { windows = 'w/v2/x.dll', linux = 'l/v2/libx.so' }\n\
                    broken = \"any/broken\"\n\
                    \n\
                    [reload-to.abi-mismatch]\n\
                    linux = \"l/abi2/libx.so\"\n";
        let file = parse(text, Path::new("/repo/plugcheck.toml")).unwrap();
        let build = |role: ReloadRole| {
            file.reload_to
                .iter()
                .find(|build| build.role == role)
                .unwrap()
        };
        let upgrade = build(ReloadRole::Upgrade);
        assert_eq!(upgrade.named_at, "/repo/plugcheck.toml:3");
        assert_eq!(
            upgrade.for_platform(Platform::Linux),
            Some(Path::new("/repo/l/v2/libx.so"))
        );
        assert_eq!(
            upgrade.for_platform(Platform::Windows),
            Some(Path::new("/repo/w/v2/x.dll"))
        );
        let broken = build(ReloadRole::Broken);
        assert_eq!(broken.named_at, "/repo/plugcheck.toml:4");
        assert_eq!(
            broken.for_platform(Platform::Windows),
            broken.for_platform(Platform::Linux),
            "a plain path serves every platform"
        );
        let abi = build(ReloadRole::AbiMismatch);
        assert_eq!(abi.named_at, "/repo/plugcheck.toml:6");
        assert_eq!(
            abi.for_platform(Platform::Linux),
            Some(Path::new("/repo/l/abi2/libx.so"))
        );
        assert_eq!(
            abi.for_platform(Platform::Windows),
            None,
            "named for linux only"
        );
    }

    #[test]
    fn every_mistake_names_the_file_the_line_and_the_key() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "schema = 1\ntimout = \"1s\"\n",
                "plugcheck.toml:2:",
                &["timout"],
            ),
            ("schema = 1\ntimeout = 10\n", ":2:", &["string"]),
            (
                "schema = 1\ntimeout = \"ten\"\n",
                ":2:",
                &["`timeout`", "10s"],
            ),
            (
                "deny-warnings = true\n",
                ":1:",
                &["no `schema`", "schema = 1"],
            ),
            ("schema = 2\n", ":1:", &["schema = 2", "newer plugcheck"]),
            ("schema = 1\nrepeat = 0\n", ":2:", &["repeat = 0"]),
            (
                "schema = 1 # newer\n[reload-to]\nupgrade = \"u\"\nnewer = \"x\"\n",
                ":4:",
                &["no role `newer`", "upgrade"],
            ),
            (
                "schema = 1\n[reload-to]\nupgrade = 2\n",
                ":3:",
                &["`upgrade` must be a path in quotes", "windows = "],
            ),
            (
                "schema = 1\n[reload-to]\n\nbroken = { linux = \"a.so\", macos = \"a.dylib\" }\n",
                ":4:",
                &["`broken`", "`macos`", "linux, windows"],
            ),
            (
                "schema = 1\n[reload-to]\nbroken = { linux = 1 }\n",
                ":3:",
                &["`broken` must be a path", "per platform"],
            ),
            (
                "schema = 1\n[reload-to]\nbroken = {}\n",
                ":3:",
                &["`broken` must be a path"],
            ),
            (
                "schema = 1\n[[waive]]\ncase = \"unlod\"\naccept = \"warning\"\nreason = \"r\"\n",
                ":3:",
                &["`case`", "unlod", "did you mean `unload`"],
            ),
            (
                "schema = 1\n[[waive]]\ncase = \"unload\"\naccept = \"warn\"\nreason = \"r\"\n",
                ":4:",
                &["accept = \"warn\"", "warning", "flaky"],
            ),
            (
                "schema = 1\n[[waive]]\ncase = \"unload\"\naccept = \"pass\"\nreason = \"r\"\n",
                ":4:",
                &["waives nothing"],
            ),
            (
                "schema = 1\n[[waive]]\ncase = \"unload\"\naccept = \"warning\"\nreason = \"  \"\n",
                ":5:",
                &["`unload` has no `reason`", "mandatory"],
            ),
            (
                "schema = 1\n[[waive]]\ncase = \"unload\"\naccept = \"warning\"\n",
                ":",
                &["`unload` has no `reason`"],
            ),
            (
                "schema = 1\n[[waive]]\ncase = \"unload\"\naccept = \"warning\"\nreason = \"r\"\nuntil = \"soon\"\n",
                ":6:",
                &["`until`", "YYYY-MM-DD"],
            ),
            (
                "schema = 1\n[[waive]]\ncase = \"unload\"\naccept = \"warning\"\nreason = \"r\"\nwhy = \"x\"\n",
                ":6:",
                &["why"],
            ),
            (
                "schema = 1\n[[waive]]\naccept = \"warning\"\nreason = \"r\"\n",
                ":",
                &["without `case`"],
            ),
        ];
        assert_errors(cases);
    }

    /// Each gate file text is refused with an error at `place` (`:LINE:`)
    /// that says every one of `words`.
    fn assert_errors(cases: &[(&str, &str, &[&str])]) {
        for (text, place, words) in cases {
            let error = error(text);
            assert!(
                error.contains(place),
                "{text:?}: `{error}` is not at {place}"
            );
            for word in *words {
                assert!(error.contains(word), "{text:?}: `{error}` lacks {word}");
            }
        }
    }

    #[test]
    fn a_mistake_deep_in_a_table_names_its_own_line() {
        let cases: &[(&str, &str, &[&str])] = &[
            (
                "schema = 1\n[reload-to.upgrade]\nlinux = \"a.so\"\n\nmacos = \"a.dylib\"\n",
                ":5:",
                &["`macos`"],
            ),
            (
                "schema = 1\n[reload-to]\nupgrade = {\n  linux = \"a.so\",\n  macos = \"a.dylib\" }\n",
                ":5:",
                &["`macos`"],
            ),
            (
                "schema = 1\n[reload-to.broken]\nwindows = \"a.dll\"\nlinux = 2\n",
                ":4:",
                &["`broken` must be a path"],
            ),
            (
                "schema = 1\nwaive = [\n  { case = \"unload\", accept = \"warning\", reason = \"r\" },\n  { case = \"unload\", accept = \"warning\", reason = \"r\", why = 1 },\n]\n",
                ":4:",
                &["`why`"],
            ),
            (
                "schema = 1\n[[waive]]\ncase = \"unload\"\naccept = \"warning\"\nreason = \"r\"\n[waive.more]\nx = 1\n",
                ":6:",
                &["`more`"],
            ),
            (
                "schema = 1\n[[waive]]\ncase = \"unload\"\n\n[[waive]]\ncase = \"unload\"\naccept = \"warning\"\nreason = [\"r\"]\n",
                ":8:",
                &["string"],
            ),
        ];
        assert_errors(cases);
    }

    #[test]
    fn a_file_that_is_not_utf8_names_the_line_and_byte() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, b"schema = 1\n\n# caf\xe9 au lait\n").unwrap();
        let error = read(&path).unwrap_err().to_string();
        assert!(error.contains("plugcheck.toml:3:"), "{error}");
        assert!(
            error.contains("byte 6") && error.contains("0xe9"),
            "{error}"
        );
        assert!(error.contains("UTF-8"), "{error}");
    }

    #[test]
    #[cfg(unix)] // links need no privilege here
    fn discovery_starts_where_the_plugin_really_is() {
        let root = tempfile::tempdir().unwrap();
        let root = crate::os::real_path(root.path()).unwrap();
        let repo = root.join("repo");
        for dir in ["repo/.git", "repo/x/run", "repo/x/build", "elsewhere"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        let plugin = repo.join("x/build/libx.so");
        std::fs::write(&plugin, b"").unwrap();
        // `run/` holds a file; `x/run/../build/libx.so` passes it by name.
        let named = repo.join("x/run/../build/libx.so");
        std::fs::write(repo.join("x/run").join(FILE_NAME), "schema = 1\n").unwrap();
        assert_eq!(discover(&named), None, "a sibling's file does not apply");
        std::fs::write(repo.join(FILE_NAME), "schema = 1\n").unwrap();
        assert_eq!(discover(&named), Some(repo.join(FILE_NAME)));
        // A link elsewhere beside its own gate file answers to the plugin's.
        let elsewhere = root.join("elsewhere");
        std::fs::write(elsewhere.join(FILE_NAME), "schema = 1\n").unwrap();
        std::os::unix::fs::symlink(&plugin, elsewhere.join("libx.so")).unwrap();
        assert_eq!(
            discover(&elsewhere.join("libx.so")),
            Some(repo.join(FILE_NAME))
        );
    }

    #[test]
    #[cfg(unix)] // links need no privilege here
    fn anything_named_plugcheck_toml_ends_the_walk_and_only_a_file_is_read() {
        let root = tempfile::tempdir().unwrap();
        let root = crate::os::real_path(root.path()).unwrap();
        let plugin = root.join("repo/build/libx.so");
        std::fs::create_dir_all(plugin.parent().unwrap()).unwrap();
        std::fs::create_dir(root.join("repo/.git")).unwrap();
        std::fs::write(root.join("repo").join(FILE_NAME), "schema = 1\n").unwrap();
        let beside = plugin.with_file_name(FILE_NAME);
        std::fs::create_dir(&beside).unwrap();
        assert_eq!(discover(&plugin), Some(beside.clone()), "a directory");
        let error = read(&beside).unwrap_err().to_string();
        assert!(error.contains("is a directory"), "{error}");
        assert!(error.contains("--no-config"), "{error}");
        std::fs::remove_dir(&beside).unwrap();
        std::os::unix::fs::symlink(root.join("gone.toml"), &beside).unwrap();
        assert_eq!(discover(&plugin), Some(beside.clone()), "a dangling link");
        let error = read(&beside).unwrap_err().to_string();
        assert!(
            error.contains("gone.toml") && error.contains("cannot be followed"),
            "{error}"
        );
    }

    #[test]
    fn discovery_looks_up_to_the_repository_root_and_no_further() {
        let root = tempfile::tempdir().unwrap();
        let real = crate::os::real_path(root.path()).unwrap();
        let repo = real.join("repo");
        let plugin = repo.join("target/release/libx.so");
        std::fs::create_dir_all(plugin.parent().unwrap()).unwrap();
        std::fs::write(root.path().join(FILE_NAME), "schema = 1\n").unwrap();
        std::fs::create_dir(repo.join(".git")).unwrap();
        assert_eq!(discover(&plugin), None, "not above the repository");
        std::fs::write(repo.join(FILE_NAME), "schema = 1\n").unwrap();
        assert_eq!(discover(&plugin), Some(repo.join(FILE_NAME)));
        let beside = plugin.with_file_name(FILE_NAME);
        std::fs::write(&beside, "schema = 1\n").unwrap();
        assert_eq!(discover(&plugin), Some(beside));
    }

    #[test]
    fn outside_any_repository_only_the_plugins_own_directory_counts() {
        let root = tempfile::tempdir().unwrap();
        let plugin = root.path().join("build/libx.so");
        std::fs::create_dir_all(plugin.parent().unwrap()).unwrap();
        std::fs::write(&plugin, b"").unwrap();
        std::fs::write(root.path().join(FILE_NAME), "schema = 1\n").unwrap();
        assert_eq!(discover(&plugin), None, "a shared directory above");
        let beside = plugin.with_file_name(FILE_NAME);
        std::fs::write(&beside, "schema = 1\n").unwrap();
        let real = crate::os::real_path(plugin.parent().unwrap()).unwrap();
        assert_eq!(discover(&plugin), Some(real.join(FILE_NAME)));
    }

    #[test]
    fn a_gate_file_that_is_not_a_regular_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let error = read(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("not a regular file") || error.contains("directory"),
            "{error}"
        );
    }
}
