//! The report model: one serde type tree, written as JSON, shown as a table
//! (`table.rs`) and, by the fixtures' tests, normalized for snapshots.

pub mod event;
pub mod github;
pub mod junit;
pub(crate) mod not_run;
pub mod progress;
pub mod provenance;
pub mod table;
pub mod verdict;

use verdict::Verdict;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::catalog::{CaseId, Family};
use crate::gate::policy::{Policy, WaiverUse};
use crate::os::{OsError, ProcessInfo, Termination};

/// Resource growth over repeated load cycles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Growth {
    pub cycles: u32,
    pub threads: i64,
    pub handles: i64,
    pub mapped_bytes: i64,
}

/// A line the plugin sent to the host's `log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub level: i32,
    pub message: String,
    /// The trace id of the call the line was logged in, through the call's
    /// own log (ABI 1.1); none for a line logged through the host table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Logged through the host table by a thread that was running a 1.1
    /// method at the time: a line of that call that lacks its trace id
    /// (what `trace-in-logs` looks for). Known where the line is logged
    /// only, so never sent or written.
    #[serde(skip)]
    pub untagged_in_call: bool,
}

/// Structured facts behind a verdict. Every field is optional: a case fills
/// what it measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Detail {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prerequisite: Option<CaseId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_error: Option<OsError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dependency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub termination: Option<Termination>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_abi: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_abi: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_name: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rejected_registrations: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leaked_threads: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub leaked_processes: Vec<ProcessInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub growth: Option<Growth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resident_hint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bound_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reloaded_from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reloaded_to: Option<String>,
    /// The reload step that failed (rollbacks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_stage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reloads: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reload_ms: Option<f64>,
    /// Calls made (on other threads) while reloading.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calls: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub logs: Vec<LogLine>,
    /// What binds a Go-native plugin to its host and differs (Go release,
    /// contract module, build settings, package hashes).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub binding: Vec<Binding>,
    /// Goroutines of a Go-native plugin still running, by function.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub goroutines: Vec<String>,
    /// The plugin's stack frame where a recovered panic was raised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub panic_frame: Option<String>,
    /// What `fuzz-methods` fed the plugin, and the input that broke it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuzz: Option<Fuzz>,
    /// The crashing thread's stack, innermost frame first, symbolized
    /// where the modules carry symbols.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stack: Vec<Frame>,
}

/// A `fuzz-methods` run: enough to repeat it exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fuzz {
    /// The seed, as `--seed` takes it back.
    pub seed: String,
    /// Inputs each method was called with (fewer than asked for when the
    /// time budget ran out, which the reason says).
    pub inputs: u32,
    /// Methods fuzzed (unknown when the worker died on the way).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<u32>,
    /// XXH3 of the inputs fed: equal on every platform for one seed and
    /// count (unknown when the worker died before the series ended).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Calls the plugin answered with an error status (allowed: a method
    /// may refuse input).
    pub refused: u64,
    /// Log lines the plugin wrote while fuzzed beyond the few the case
    /// keeps.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unkept_logs: u64,
    /// The input that crashed, hung or got a broken buffer back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<FuzzInput>,
}

/// One input of a fuzz series, named so it can be made again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FuzzInput {
    pub method: String,
    pub index: u32,
    pub size: u64,
    /// What the input is, in words ("65536 bytes of 0x00").
    pub what: String,
    /// Where the replay of the calls that led to it was saved (its replay
    /// file, beside this input's file), once it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved: Option<String>,
    /// The command that makes those calls again, in one instance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<String>,
    /// Calls in the saved replay: those since init, this one the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay_calls: Option<u64>,
    /// Calls since init left out of the replay to bound it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_out: Option<u64>,
}

/// One frame of a crashed thread's stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// The module's file name (the whole path is in `module_path`).
    pub module: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub module_path: Option<String>,
    /// The function, demangled; none where the module has no symbols.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// The source file, as the debug info names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The frame's address in the dead process.
    pub address: String,
    /// The address within the module, as its symbols count it.
    pub offset: String,
    /// Whether the frame is in the plugin being checked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub in_plugin: bool,
    /// A function inlined into the next frame's (same address).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub inlined: bool,
}

impl Frame {
    /// `function (file:line)`, or what of it is known, or `module+offset`.
    pub fn describe(&self) -> String {
        let place = match (&self.source, self.line) {
            (Some(file), Some(line)) => Some(format!("{}:{line}", short_source(file))),
            (Some(file), None) => Some(short_source(file).to_owned()),
            _ => None,
        };
        match (&self.function, place) {
            (Some(function), Some(place)) => format!("{function} ({place})"),
            (Some(function), None) => format!("{function} in {}", self.module),
            (None, _) => format!("{}+{}", self.module, self.offset),
        }
    }
}

/// The frame a person should look at first: the innermost in the plugin
/// that is the plugin's own code, not the language runtime linked into it
/// (Rust's `std`, which aborts and panics on the plugin's behalf; Go's
/// `runtime`); failing that, the innermost in the plugin at all.
pub fn plugin_frame(frames: &[Frame]) -> Option<&Frame> {
    plugin_frame_index(frames).map(|index| &frames[index])
}

/// Where [`plugin_frame`] is in `frames`.
pub fn plugin_frame_index(frames: &[Frame]) -> Option<usize> {
    frames
        .iter()
        .position(|frame| frame.in_plugin && !is_runtime(frame))
}

/// Whether a frame is in a language runtime rather than the plugin's own
/// code: by the prefix of its (demangled) name, or, for a function inlined
/// from Rust's standard library (whose inlined names are short), by its
/// source path (`/rustc/<commit>/library/…`).
pub fn is_runtime(frame: &Frame) -> bool {
    const RUNTIME: &[&str] = &[
        "std::", "core::", "alloc::", "<std::", "<core::", "<alloc::", "__rust", "rust_",
        "runtime.", "_Unwind",
    ];
    let named = frame
        .function
        .as_deref()
        .is_some_and(|function| RUNTIME.iter().any(|prefix| function.starts_with(prefix)));
    let from_std = frame
        .source
        .as_deref()
        .is_some_and(|source| source.starts_with("/rustc/") || source.contains("/library/core/"));
    named || from_std
}

/// A source path cut to its last three components: enough to find the
/// line, without the build machine's directories.
pub fn short_source(path: &str) -> &str {
    let mut cut = path.len();
    for _ in 0..3 {
        match path[..cut].rfind(['/', '\\']) {
            Some(separator) => cut = separator,
            None => return path,
        }
    }
    &path[cut + 1..]
}

/// One thing a Go-native plugin must share with its host, where they differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub what: String,
    pub plugin: String,
    pub host: String,
}

impl Detail {
    pub fn is_empty(&self) -> bool {
        *self == Detail::default()
    }
}

/// What the plugin wrote to stdout/stderr during a case, bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CapturedOutput {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stdout: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub stderr: String,
    /// Bytes dropped beyond the capture bound, both streams together.
    #[serde(skip_serializing_if = "is_zero")]
    pub truncated_bytes: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl CapturedOutput {
    pub fn is_empty(&self) -> bool {
        self.stdout.is_empty() && self.stderr.is_empty() && self.truncated_bytes == 0
    }
}

/// One case's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseReport {
    pub id: CaseId,
    pub family: Family,
    pub verdict: Verdict,
    /// One line: why.
    pub reason: String,
    #[serde(default, skip_serializing_if = "Detail::is_empty")]
    pub detail: Detail,
    #[serde(default, skip_serializing_if = "CapturedOutput::is_empty")]
    pub output: CapturedOutput,
    /// Wall time of the case as the parent saw it, process start-up included
    /// when the case needed a new worker.
    pub duration_us: u64,
    /// Time the case's own work took inside the worker (none when it was
    /// skipped, crashed or timed out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_us: Option<u64>,
    /// The gate file's waiver that matched this verdict: applied, or
    /// expired (then the verdict counts as it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiver: Option<AppliedWaiver>,
    /// Every run of the case when `--repeat` runs disagreed (the case is
    /// then `flaky`), first run first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<Attempt>,
}

/// A waiver as it met one case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedWaiver {
    pub accept: Verdict,
    pub reason: String,
    /// Its line in the gate file.
    pub line: u32,
    /// Why it no longer applies (its `until` passed), if it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired: Option<String>,
}

/// One run of a repeated case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1 for the first run.
    pub run: u32,
    pub verdict: Verdict,
    pub reason: String,
    pub duration_us: u64,
}

/// What the descriptor says about the plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub toolchain: Option<String>,
    /// `major.minor`.
    pub abi: String,
    /// The descriptor's size; none for a Go-native plugin, which has no
    /// descriptor.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub struct_size: u32,
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// A plugin's verdicts counted, and whether its gate passed (the gate's
/// rules and the judging are `gate/`'s). Written as `gate` in the JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub passed: bool,
    pub pass: u32,
    pub fail: u32,
    pub crashed: u32,
    pub timed_out: u32,
    pub skipped: u32,
    pub warning: u32,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub unsupported: u32,
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub flaky: u32,
    /// Cases whose verdict a waiver accepted (counted under their verdict
    /// too).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub waived: u32,
}

/// Everything plugcheck found about one plugin file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginReport {
    /// Written as text: a path that is not UTF-8 is written with its
    /// undecodable bytes replaced (U+FFFD), as it is printed.
    #[serde(serialize_with = "lossy_path")]
    pub path: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<PluginInfo>,
    pub cases: Vec<CaseReport>,
    #[serde(rename = "gate")]
    pub tally: Tally,
    /// Worker processes started for this plugin: one, plus one per crash or
    /// timeout.
    pub workers_started: u32,
    pub duration_us: u64,
    /// What judged the plugin when it was not the Rust worker: the Go
    /// worker and the Go release that built it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    /// The SHA-256 of the plugin file as the run read it, as `sha256sum`
    /// prints it: what an application admitting plugins by their reports
    /// (`plugcheck-host`) matches a build against. None where the file
    /// could not be read as a plugin (missing, not a regular file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl PluginReport {
    /// The plugin's file name without its extension, from a path of either
    /// platform (`/a/echo.so` and `Z:\\a\\echo.dll` are both `echo`): what
    /// matches one plugin across legs.
    pub fn stem(&self) -> String {
        let path = self.path.to_string_lossy();
        let file = path.rsplit(['/', '\\']).next().unwrap_or_default();
        file.rsplit_once('.')
            .map_or(file, |(stem, _)| stem)
            .to_owned()
    }
}

/// The machine a report was produced on: its OS (as `os::Platform` names
/// it), architecture and runtime; `platform` in the JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// `linux`, `windows`.
    pub os: String,
    pub arch: String,
    /// What ran the harness there: `native`, `Wine 8.0`, `WSL2`. A plugin
    /// judged from the other platform's host says so here.
    #[serde(default)]
    pub runtime: String,
}

impl Machine {
    pub fn current() -> Machine {
        Machine {
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            runtime: crate::os::runtime(),
        }
    }

    /// `windows x86_64 under Wine 8.0`, `linux x86_64`.
    pub fn describe(&self) -> String {
        match self.runtime.as_str() {
            "" | "native" => format!("{} {}", self.os, self.arch),
            runtime => format!("{} {} under {runtime}", self.os, self.arch),
        }
    }
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// `plugcheck 0.1.0`.
    pub tool: String,
    pub platform: Machine,
    pub timeout_ms: u64,
    pub plugins: Vec<PluginReport>,
    /// What the leg's toolchains can build, asked while building the
    /// fixtures (`go build -buildmode=plugin`): `cargo xtask conformance`
    /// fills it in; `plugcheck check` builds nothing and leaves it empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub toolchain_probes: Vec<ToolchainProbe>,
    /// What the gate was: deny-warnings, deny-skipped and the gate file's
    /// waivers. Kept so shards of one run can be merged and judged again.
    #[serde(default, skip_serializing_if = "Policy::is_default")]
    pub policy: Policy,
    /// How each waiver fared over the whole run: applied, expired, stale.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waivers: Vec<WaiverUse>,
    /// How the run was made (partition, plugin set, settings, gate file,
    /// version): what `plugcheck merge` checks its shards by. None in
    /// reports of an older plugcheck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<provenance::Provenance>,
}

/// One question put to a toolchain, with its own answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolchainProbe {
    /// `go-buildmode-plugin`.
    pub name: String,
    /// The command that was tried, e.g. `GOOS=windows go build -buildmode=plugin`.
    pub command: String,
    pub supported: bool,
    /// The toolchain's own words when it refused (`-buildmode=plugin not
    /// supported on windows/amd64`); empty when it built.
    pub message: String,
}

impl Report {
    /// One report of several runs on one platform (the parts of a leg run
    /// with different options): the first part's header, every part's
    /// plugins. `None` for no parts. Runs made differently have no one
    /// provenance: the union of several has none (and is no shard).
    pub fn merge(parts: impl IntoIterator<Item = Report>) -> Option<Report> {
        let mut parts = parts.into_iter();
        let mut merged = parts.next()?;
        for part in parts {
            merged.plugins.extend(part.plugins);
            merged.provenance = None;
        }
        Some(merged)
    }

    /// Puts the plugins in the order of `stems` (file names without
    /// extension); plugins not named go last, in their order.
    pub fn order_plugins(&mut self, stems: &[String]) {
        self.plugins.sort_by_key(|plugin| {
            let stem = plugin.stem();
            stems
                .iter()
                .position(|name| *name == stem)
                .unwrap_or(usize::MAX)
        });
    }

    pub fn gate_passed(&self) -> bool {
        self.plugins.iter().all(|plugin| plugin.tally.passed)
    }

    /// Worker processes started over the whole run.
    pub fn workers_started(&self) -> u32 {
        self.plugins
            .iter()
            .map(|plugin| plugin.workers_started)
            .sum()
    }

    /// Writes the report as pretty JSON, atomically: it is written whole to
    /// a temporary file beside `path`, then renamed over it, so a reader (or
    /// an interrupted run) sees the old file or the new one, never a torn
    /// one. Not fsynced: a test report need not survive a power cut, and the
    /// sync would cost more than the whole run of a small suite.
    pub fn write_json(&self, path: &Path) -> Result<(), ReportWriteError> {
        let mut json = serde_json::to_vec_pretty(self).map_err(|error| ReportWriteError {
            path: path.to_owned(),
            source: error.into(),
        })?;
        json.push(b'\n');
        write_atomically(path, &json)
    }

    /// Reads a JSON report without trusting it: only a regular file (a
    /// FIFO, a device such as `/dev/zero`, a socket or a directory is
    /// refused by name before it is opened, and again once opened, so one
    /// swapped in between is caught), opened without waiting, read to at
    /// most [`MAX_REPORT_BYTES`]. What went wrong is said in a line, with
    /// nothing of the file's content beyond a clipped parser message.
    pub fn read_json(path: &Path) -> Result<Report, ReportReadError> {
        let bytes = read_bounded(path)?;
        serde_json::from_slice(&bytes).map_err(|error| ReportReadError::Parse {
            path: path.to_owned(),
            message: crate::text::clip(&crate::text::one_line(&error.to_string()), 200),
        })
    }
}

/// The largest report plugcheck reads. A report holds about 20 KiB per
/// plugin (the project's 92 fixtures make 1.7 MiB), and the harness bounds
/// what one plugin adds (64 KiB of output per stream and case, 200 log
/// lines): 64 MiB is thousands of plugins, or several that print all they
/// may in every case. Anything larger is not a report a shard of a real
/// run wrote, and reading it whole (a merge holds every shard) could take
/// the machine's memory. A run whose shards outgrow it needs more shards.
pub const MAX_REPORT_BYTES: u64 = 64 << 20;

/// The bytes of the report at `path`: a regular file of at most
/// [`MAX_REPORT_BYTES`], checked by name, opened without waiting, checked
/// again, and read through a bound (a file that grows meanwhile is cut
/// and refused, not followed).
fn read_bounded(path: &Path) -> Result<Vec<u8>, ReportReadError> {
    let io = |source| ReportReadError::Io {
        path: path.to_owned(),
        source,
    };
    let check = |metadata: &std::fs::Metadata| {
        let file_type = metadata.file_type();
        if !file_type.is_file() {
            let kind = if file_type.is_dir() {
                "a directory"
            } else {
                crate::os::special_file_kind(&file_type).unwrap_or("not a regular file")
            };
            return Err(ReportReadError::NotRegular {
                path: path.to_owned(),
                kind,
            });
        }
        if metadata.len() > MAX_REPORT_BYTES {
            return Err(ReportReadError::TooLarge {
                path: path.to_owned(),
                len: metadata.len(),
            });
        }
        Ok(())
    };
    check(&std::fs::metadata(path).map_err(io)?)?;
    let file = crate::os::open_without_waiting(path).map_err(io)?;
    let opened = file.metadata().map_err(io)?;
    check(&opened)?;
    let mut bytes = Vec::with_capacity(opened.len() as usize);
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, MAX_REPORT_BYTES + 1),
        &mut bytes,
    )
    .map_err(io)?;
    if bytes.len() as u64 > MAX_REPORT_BYTES {
        return Err(ReportReadError::TooLarge {
            path: path.to_owned(),
            len: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` whole: to a temporary file beside it, then
/// renamed over it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), ReportWriteError> {
    let error = |source| ReportWriteError {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(error)?;
    let mut file = tempfile::Builder::new()
        .prefix(".plugcheck-report")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(error)?;
    file.write_all(bytes).map_err(error)?;
    // A temporary file is private (0600); a report is for everyone.
    if let Some(permissions) = crate::os::shared_file_permissions() {
        file.as_file().set_permissions(permissions).map_err(error)?;
    }
    crate::os::replace_file(file, path).map_err(error)
}

/// Checks, before a run, that a report can be written to `path` later: its
/// directory can be created and takes a new file, and `path` is not a
/// directory. A run of many minutes must not end in "cannot write".
pub fn check_writable(path: &Path) -> Result<(), ReportWriteError> {
    let error = |source| ReportWriteError {
        path: path.to_owned(),
        source,
    };
    if path.is_dir() {
        return Err(error(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "it is a directory",
        )));
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(error)?;
    tempfile::Builder::new()
        .prefix(".plugcheck-report")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(error)?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write the report to `{}`: {source}; check the directory exists and is writable", path.display())]
pub struct ReportWriteError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

/// Why a report could not be read. Paths are printed escaped: a file
/// name may hold control characters.
#[derive(Debug, thiserror::Error)]
pub enum ReportReadError {
    #[error("cannot read the report `{}`: {source}", crate::text::one_line(&path.display().to_string()))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "`{}` is {kind}, not a report: plugcheck reads reports only from regular files (a pipe or a device may block or never end); give the JSON file `plugcheck check --json` wrote",
        crate::text::one_line(&path.display().to_string())
    )]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error(
        "`{}` is {}, larger than the {} a report may be: it is not one a shard of a real run wrote (if it is, split the run into more shards with --partition K/N)",
        crate::text::one_line(&path.display().to_string()),
        crate::inspect::file::human_bytes(*len),
        crate::inspect::file::human_bytes(MAX_REPORT_BYTES)
    )]
    TooLarge { path: PathBuf, len: u64 },
    #[error(
        "`{}` is not a plugcheck JSON report ({message}): give one `plugcheck check --json` wrote",
        crate::text::one_line(&path.display().to_string())
    )]
    Parse { path: PathBuf, message: String },
}

/// A report as JSON would give it: `os`, and per plugin its path and
/// `(case id, verdict)` pairs. For tests of what reads reports, here and
/// in the harness's command line.
#[doc(hidden)]
pub fn test_report(os: &str, plugins: &[(&str, &[(&str, &str)])]) -> Report {
    let plugins: Vec<serde_json::Value> = plugins
        .iter()
        .map(|(path, cases)| {
            let cases: Vec<serde_json::Value> = cases
                .iter()
                .map(|(id, verdict)| {
                    serde_json::json!({"id": id, "family": "load", "verdict": verdict,
                        "reason": "", "duration_us": 0})
                })
                .collect();
            serde_json::json!({"path": path, "cases": cases, "gate": {"passed": true,
                "pass": 0, "fail": 0, "crashed": 0, "timed_out": 0, "skipped": 0, "warning": 0},
                "workers_started": 1, "duration_us": 0})
        })
        .collect();
    serde_json::from_value(serde_json::json!({"tool": "t", "timeout_ms": 1,
        "platform": {"os": os, "arch": "x86_64"}, "plugins": plugins}))
    .expect("a valid report")
}

/// A path as report text (see [`PluginReport::path`]).
fn lossy_path<S: serde::Serializer>(
    path: &std::path::Path,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_merge_into_one_report_in_the_order_asked() {
        assert!(Report::merge(Vec::new()).is_none());
        let mut merged = Report::merge([
            test_report("windows", &[(r"Z:\a\hang.dll", &[])]),
            test_report("linux", &[("/a/echo.so", &[]), ("/a/extra.so", &[])]),
        ])
        .unwrap();
        assert_eq!(merged.platform.os, "windows", "the first part's header");
        merged.order_plugins(&["echo".into(), "hang".into()]);
        let stems: Vec<String> = merged.plugins.iter().map(PluginReport::stem).collect();
        assert_eq!(stems, ["echo", "hang", "extra"], "unnamed plugins go last");
        let mut part = test_report("linux", &[]);
        part.provenance = serde_json::from_value(serde_json::json!({"version": "0.1.0",
            "plugin_set": {"count": 0, "hash": "xxh3:0"}, "seed": "0x1", "repeat": 1,
            "fuzz_inputs": 1, "load_time_bound_ms": 1, "repeat_cycles": 1, "reload_cycles": 1}))
        .unwrap();
        assert!(part.provenance.is_some());
        let one = Report::merge([part.clone()]).unwrap();
        assert_eq!(one.provenance, part.provenance, "one part is that run");
        let two = Report::merge([part.clone(), part]).unwrap();
        assert_eq!(two.provenance, None, "parts of several runs are no one run");
    }
    #[test]
    fn json_write_is_atomic_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/report.json");
        let report = Report {
            tool: "plugcheck test".into(),
            platform: Machine::current(),
            timeout_ms: 10,
            plugins: vec![],
            toolchain_probes: vec![],
            policy: Policy::default(),
            waivers: vec![],
            provenance: None,
        };
        report.write_json(&path).unwrap();
        assert_eq!(Report::read_json(&path).unwrap(), report);
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("report.json")]);
    }
}
