//! `plugcheck watch`: serve a plugin under the reload engine and reload it
//! whenever its build changes — what a plugin author leaves running while
//! rebuilding.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::{exit, say};
use crate::reload::watch::{Wake, Watcher};
use crate::reload::{OldVersion, ReloadEngine, ReloadOptions, Reloaded};
use crate::report::human_ms;

#[derive(Debug, clap::Args)]
pub struct WatchArgs {
    /// The plugin's build output (it is never loaded itself: each version
    /// runs from a shadow copy).
    plugin: PathBuf,
    /// Quiet period after a change before reloading (a linker writes in
    /// bursts).
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    debounce: Duration,
    /// Skip loading each new build in an isolated worker first. Faster, but
    /// a build that crashes while loading then ends the watch.
    #[arg(long)]
    no_preflight: bool,
}

pub fn run(args: WatchArgs) -> anyhow::Result<u8> {
    let plugin = std::path::absolute(&args.plugin)
        .with_context(|| format!("cannot make `{}` an absolute path", args.plugin.display()))?;
    let preflight = if args.no_preflight {
        None
    } else {
        // Pre-flight workers are this process's only children: orphans
        // their plugins leave come here to be killed.
        crate::os::become_subreaper();
        Some(std::env::current_exe().context("cannot find the plugcheck binary for pre-flights")?)
    };
    let engine = match ReloadEngine::open(
        &plugin,
        ReloadOptions {
            scratch: None,
            preflight,
            preflight_timeout: Duration::from_secs(10),
        },
    ) {
        Ok(engine) => engine,
        Err(failure) => {
            eprintln!("error: {failure}");
            return Ok(exit::GATE_FAILED);
        }
    };
    let watcher = Watcher::new(&plugin, args.debounce)
        .with_context(|| format!("cannot watch `{}` for changes", plugin.display()))?;
    let stopper = watcher.stopper();
    ctrlc::set_handler(move || stopper.stop()).context("cannot install the interrupt handler")?;
    let serving = engine.info();
    let state = match engine.save_state() {
        Ok(Some(state)) => format!(", {} bytes of state", state.output.len()),
        _ => String::new(),
    };
    say(&format!(
        "watching {}\nserving `{}` {}{state}; rebuild it to reload (debounce {}), Ctrl-C to stop\n",
        plugin.display(),
        serving.name,
        serving.version,
        human_ms(args.debounce.as_millis() as u64),
    ));
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
        match engine.reload() {
            Ok(reloaded) => {
                say(&describe(&reloaded, settled_after));
                match engine.call("selftest", &[]) {
                    Ok(Some(answer)) if answer.status != 0 => say(&format!(
                        "  selftest of the new version returned {}\n",
                        crate::session::status_text(answer.status)
                    )),
                    Err(outcome) => say(&format!("  selftest failed: {}\n", outcome.reason)),
                    _ => {}
                }
            }
            Err(failure) => say(&format!("rolled back: {failure}\n")),
        }
    }
    drop(engine);
    say("stopped; the shadow copies are removed\n");
    Ok(exit::PASSED)
}

fn describe(reloaded: &Reloaded, settled_after: Duration) -> String {
    let state = match reloaded.state_bytes {
        Some(bytes) => format!("{bytes} bytes of state carried"),
        None => "no state carried (stateless)".into(),
    };
    let old = match &reloaded.old {
        OldVersion::Unloaded => "old version unloaded".to_owned(),
        OldVersion::Resident { hint } => format!("old version stays resident: {hint}"),
    };
    format!(
        "reloaded `{}` {} → {} in {:.1} ms (after {} of file activity and quiet); {state}; {old}\n",
        reloaded.to.name,
        reloaded.from.version,
        reloaded.to.version,
        reloaded.took.as_secs_f64() * 1e3,
        human_ms(settled_after.as_millis() as u64),
    )
}
