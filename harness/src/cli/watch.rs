//! `plugcheck watch`: serve a plugin under the reload engine and reload it
//! whenever its build changes — what a plugin author leaves running while
//! rebuilding.
//!
//! The plugin runs in this process, so this process also answers for what
//! it leaves: it is a subreaper, and on the way out (Ctrl-C included) it
//! kills every process the plugin started and removes its scratch
//! directory, whenever the Ctrl-C comes — also before the first version
//! is serving.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;

use super::shared::{exit, say};
use crate::os;
use crate::reload::watch::{DEFAULT_POLL_INTERVAL, Mode, Stopper, Wake, Watcher, polling_needed};
use crate::reload::{OldVersion, ReloadEngine, ReloadOptions, Reloaded};
use crate::text::human_ms;
use crate::text::one_line;
use crate::worker::workspace::Workspace;
use crate::worker::{OnInterrupt, WorkerScope};

#[derive(Debug, clap::Args)]
pub(super) struct WatchArgs {
    /// The plugin's build output (it is never loaded itself: each version
    /// runs from a shadow copy).
    plugin: PathBuf,
    /// Quiet period after a change before reloading (a linker writes in
    /// bursts).
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    debounce: Duration,
    /// Look for changes every 250 ms instead of waiting for the OS's change
    /// events (chosen by itself inside WSL for a build on a Windows drive,
    /// where no events come).
    #[arg(long)]
    poll: bool,
    /// Skip loading each new build in an isolated worker first. Faster, but
    /// a build that crashes while loading then ends the watch.
    #[arg(long)]
    no_preflight: bool,
}

pub(super) fn run(args: WatchArgs) -> anyhow::Result<u8> {
    let plugin = std::path::absolute(&args.plugin)
        .with_context(|| format!("cannot make `{}` an absolute path", args.plugin.display()))?;
    let scratch = Workspace::take("plugcheck-watch-")
        .context("cannot create the watch's temporary directory")?;
    // Pre-flight workers and whatever the plugin starts are this process's
    // children: the scope kills and reaps them, whatever ends the watch.
    let serving_stopper: Arc<Mutex<Option<Stopper>>> = Arc::default();
    let scope = WorkerScope::enter(on_interrupt(Arc::clone(&serving_stopper)))?;
    let preflight: Option<Arc<dyn crate::reload::Preflight>> = if args.no_preflight {
        None
    } else {
        Some(Arc::new(crate::reload::preflight::IsolatedPreflight {
            worker_exe: std::env::current_exe()
                .context("cannot find the plugcheck binary for pre-flights")?,
            timeout: Duration::from_secs(10),
            scratch: Some(scratch.path().to_owned()),
        }))
    };
    let options = ReloadOptions {
        scratch: Some(scratch.path().to_owned()),
        preflight,
    };
    let engine = match first_version(&plugin, options, args.debounce) {
        Ok(engine) => Arc::new(engine),
        Err(failure) => {
            eprintln!("error: {}", one_line(&failure.to_string()));
            leave(scope, scratch);
            return Ok(exit::GATE_FAILED);
        }
    };
    let mode = watch_mode(&args, &plugin);
    let watcher = Watcher::new(&plugin, args.debounce, mode)
        .with_context(|| format!("cannot watch `{}` for changes", plugin.display()))?;
    *serving_stopper.lock().unwrap_or_else(|p| p.into_inner()) = Some(watcher.stopper());
    let serving = engine.info();
    let state = match engine.save_state() {
        Ok(Some(state)) => format!(", {} bytes of state", state.output.len()),
        _ => String::new(),
    };
    say(&format!(
        "watching {}\nserving `{}` {}{state}; rebuild it to reload (debounce {}), Ctrl-C to stop\n",
        one_line(&plugin.display().to_string()),
        one_line(&serving.name),
        one_line(&serving.version),
        human_ms(args.debounce.as_millis() as u64),
    ));
    say(
        "type a method's name (and its input) to call it, `:state` to see the state, `:help` for more\n",
    );
    super::prompt::serve(Arc::downgrade(&engine));
    while let Wake::Changed { settled_after } = watcher.next() {
        match engine.changed_on_disk() {
            Err(_) => {
                say("the build output is gone; waiting for it to come back\n");
                continue;
            }
            Ok(false) => {
                say("touched, but the content is unchanged: not reloaded\n");
                continue;
            }
            Ok(true) => {}
        }
        let methods_before = engine.methods();
        match engine.reload() {
            Ok(reloaded) => {
                let changes = method_changes(&methods_before, &engine.methods());
                say(&describe(&reloaded, settled_after, changes.as_deref()));
                match engine.call("selftest", &[]) {
                    Ok(Some(answer)) if answer.status != 0 => say(&format!(
                        "  selftest of the new version returned {}\n",
                        crate::plugin::session::status_text(answer.status)
                    )),
                    Err(outcome) => say(&format!(
                        "  selftest failed: {}\n",
                        one_line(&outcome.reason)
                    )),
                    _ => {}
                }
            }
            Err(failure) => say(&format!(
                "rolled back: {}\n",
                one_line(&failure.to_string())
            )),
        }
    }
    // The prompt's thread holds the engine only while it calls: this is
    // the last owner, and dropping it shuts the plugin down.
    drop(engine);
    leave(scope, scratch);
    say("stopped; the shadow copies are removed\n");
    Ok(exit::PASSED)
}

/// The first version to serve. A build that does not exist yet is waited
/// for; a first build that cannot serve (a half-written file, a failed
/// init) is reported and the next build waited for, as later builds are.
/// What can never be a build (a FIFO, a device, a directory) ends the watch.
fn first_version(
    plugin: &Path,
    options: ReloadOptions,
    debounce: Duration,
) -> Result<ReloadEngine, crate::reload::ReloadFailure> {
    let mut said_waiting = false;
    let mut failed_on: Option<Stamp> = None;
    loop {
        let Some(stamp) = Stamp::of(plugin) else {
            if !said_waiting {
                say(&format!(
                    "waiting for `{}` to be built\n",
                    one_line(&plugin.display().to_string())
                ));
                said_waiting = true;
            }
            std::thread::sleep(FIRST_BUILD_POLL);
            continue;
        };
        if failed_on == Some(stamp) {
            std::thread::sleep(FIRST_BUILD_POLL);
            continue;
        }
        // A linker writes in bursts: wait until the file holds still.
        std::thread::sleep(debounce);
        if Stamp::of(plugin) != Some(stamp) {
            continue;
        }
        match ReloadEngine::open(plugin, options.clone()) {
            Ok(engine) => return Ok(engine),
            Err(failure) if !stamp.regular_file => return Err(failure),
            Err(failure) => {
                say(&format!(
                    "cannot serve this build: {}; waiting for the next build\n",
                    one_line(&failure.outcome.reason)
                ));
                failed_on = Some(stamp);
            }
        }
    }
}

/// How often a build that is not there yet is looked for.
const FIRST_BUILD_POLL: Duration = Duration::from_millis(100);

/// What tells one build from the next before anything is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    regular_file: bool,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl Stamp {
    fn of(path: &Path) -> Option<Stamp> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(Stamp {
            regular_file: metadata.is_file(),
            len: metadata.len(),
            modified: metadata.modified().ok(),
        })
    }
}

/// Events, unless `--poll` or the filesystem delivers none (said once).
fn watch_mode(args: &WatchArgs, plugin: &std::path::Path) -> Mode {
    let poll = Mode::Poll {
        interval: DEFAULT_POLL_INTERVAL,
    };
    let every = human_ms(DEFAULT_POLL_INTERVAL.as_millis() as u64);
    if args.poll {
        say(&format!("polling for changes every {every} (--poll)\n"));
        return poll;
    }
    let dir = plugin.parent().unwrap_or(plugin);
    match polling_needed(
        os::kernel_release().as_deref(),
        os::filesystem_type(dir).as_deref(),
    ) {
        Some(why) => {
            say(&format!(
                "{why}: polling for changes every {every} instead\n"
            ));
            poll
        }
        None => Mode::Events,
    }
}

/// Kills what the plugin left (the scope's end), then empties the scratch
/// directory.
fn leave(scope: WorkerScope, scratch: Workspace) {
    drop(scope);
    drop(scratch);
}

/// What Ctrl-C does: before the plugin is serving, kill the pre-flight
/// workers and everything they or the plugin started, empty the scratch
/// directory and exit; once serving, stop the watch, which then shuts the
/// plugin down in order and leaves its scope.
fn on_interrupt(serving: Arc<Mutex<Option<Stopper>>>) -> OnInterrupt {
    OnInterrupt {
        handled_by_command: Some(Box::new(move || {
            match serving.lock().unwrap_or_else(|p| p.into_inner()).clone() {
                Some(stopper) => {
                    stopper.stop();
                    true
                }
                None => false,
            }
        })),
        message: "plugcheck: interrupted before serving; nothing is left running",
    }
}

/// `methods: +`reset`, −`get``: what the new version registers that the
/// old did not, and what it dropped (a host calling `get` is about to
/// fail); `None` when they are the same. Names are the plugin's: escaped,
/// and at most [`SHOWN_METHOD_CHANGES`] of each side named.
fn method_changes(before: &[String], after: &[String]) -> Option<String> {
    // Sets, not lists: a plugin may register 10,000 methods, and each
    // reload compares them.
    let (before_set, after_set): (HashSet<&String>, HashSet<&String>) =
        (before.iter().collect(), after.iter().collect());
    let added: Vec<&String> = after
        .iter()
        .filter(|name| !before_set.contains(name))
        .collect();
    let removed: Vec<&String> = before
        .iter()
        .filter(|name| !after_set.contains(name))
        .collect();
    if added.is_empty() && removed.is_empty() {
        return None;
    }
    let side = |sign: char, names: &[&String]| -> Vec<String> {
        let mut shown: Vec<String> = names
            .iter()
            .take(SHOWN_METHOD_CHANGES)
            .map(|name| format!("{sign}`{}`", one_line(name)))
            .collect();
        if names.len() > SHOWN_METHOD_CHANGES {
            shown.push(format!("{sign}{} more", names.len() - SHOWN_METHOD_CHANGES));
        }
        shown
    };
    let mut changes = side('+', &added);
    changes.extend(side('−', &removed));
    Some(format!("methods: {}", changes.join(", ")))
}

/// Method names shown per side of a reload's change (a plugin may
/// register thousands).
const SHOWN_METHOD_CHANGES: usize = 8;

fn describe(reloaded: &Reloaded, settled_after: Duration, method_changes: Option<&str>) -> String {
    let state = match reloaded.state_bytes {
        Some(bytes) => format!("{bytes} bytes of state carried"),
        None => "no state carried (stateless)".into(),
    };
    let old = match &reloaded.old {
        OldVersion::Unloaded => "old version unloaded".to_owned(),
        OldVersion::Resident { hint } => format!("old version stays resident: {hint}"),
    };
    let downgrade = if reloaded.is_downgrade() {
        " (a DOWNGRADE: the older version now holds state a newer one saved)"
    } else {
        ""
    };
    let methods = method_changes
        .map(|changes| format!("; {changes}"))
        .unwrap_or_default();
    format!(
        "reloaded `{}` {} → {}{downgrade} in {:.1} ms (after {} of file activity and quiet); {state}; {old}{methods}\n",
        one_line(&reloaded.to.name),
        one_line(&reloaded.from.version),
        one_line(&reloaded.to.version),
        reloaded.took.as_secs_f64() * 1e3,
        human_ms(settled_after.as_millis() as u64),
    )
}

#[cfg(test)]
mod tests {
    use super::method_changes;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn a_reload_names_the_methods_that_came_and_went_escaped_and_bounded() {
        let v1 = names(&["increment", "get", "selftest"]);
        assert_eq!(method_changes(&v1, &v1), None);
        let v2 = names(&["increment", "reset", "selftest", "bad\u{1b}[2Jname"]);
        assert_eq!(
            method_changes(&v1, &v2).unwrap(),
            "methods: +`reset`, +`bad\\u{1b}[2Jname`, −`get`"
        );
        let many: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
        let line = method_changes(&[], &many).unwrap();
        assert!(line.ends_with("+`m7`, +12 more"), "{line}");
    }
}
