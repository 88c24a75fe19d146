//! The live progress line of a run on a terminal: plugins done of all,
//! cases done, what runs now, time so far. Drawn on stderr, once a run has
//! taken longer than [`SHOW_AFTER`], at most every [`REDRAW_EVERY`], and
//! erased before anything else is printed, so the tables stay clean. Never
//! drawn when stderr or stdout is not a terminal or `CI` is set: a CI log
//! has no use for it.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use super::event::{Event, Reporter};
use crate::catalog::CaseId;
use crate::text::{human_ms, one_line};

/// A run shorter than this shows no progress at all.
pub(crate) const SHOW_AFTER: Duration = Duration::from_secs(1);

/// The line is redrawn at most this often.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

/// Where a line is too long for a terminal, it is cut here.
const MAX_WIDTH: usize = 100;

pub struct Progress {
    started: Instant,
    last_draw: Option<Instant>,
    shown: bool,
    plugins: usize,
    plugins_done: usize,
    cases_done: usize,
    /// What each running plugin is doing now, by input index.
    running: BTreeMap<usize, (String, Option<CaseId>)>,
}

impl Progress {
    /// A progress line, if this process writes to a terminal outside CI.
    pub fn for_terminal() -> Option<Progress> {
        let ci = std::env::var_os("CI").is_some_and(|value| !value.is_empty());
        (std::io::stderr().is_terminal() && std::io::stdout().is_terminal() && !ci).then(|| {
            Progress {
                started: Instant::now(),
                last_draw: None,
                shown: false,
                plugins: 0,
                plugins_done: 0,
                cases_done: 0,
                running: BTreeMap::new(),
            }
        })
    }

    /// The line as it would be drawn now.
    pub(crate) fn line(&self) -> String {
        let current = self
            .running
            .values()
            .next()
            .map(|(plugin, case)| match case {
                Some(case) => format!(" · {plugin}: {case}"),
                None => format!(" · {plugin}"),
            })
            .unwrap_or_default();
        let line = format!(
            "plugcheck: {}/{} plugin(s) · {} case(s) done{current} · {}",
            self.plugins_done,
            self.plugins,
            self.cases_done,
            human_ms(self.started.elapsed().as_millis() as u64)
        );
        line.chars().take(MAX_WIDTH).collect()
    }

    fn draw(&mut self) {
        let now = Instant::now();
        if now.duration_since(self.started) < SHOW_AFTER
            || self
                .last_draw
                .is_some_and(|last| now.duration_since(last) < REDRAW_EVERY)
        {
            return;
        }
        self.last_draw = Some(now);
        self.shown = true;
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r\x1b[2K{}", self.line());
        let _ = stderr.flush();
    }

    fn erase(&mut self) {
        if self.shown {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[2K");
            let _ = stderr.flush();
            self.shown = false;
            // Drawn again on the next event, without waiting.
            self.last_draw = None;
        }
    }
}

impl Reporter for Progress {
    fn on(&mut self, event: &Event<'_>) -> anyhow::Result<()> {
        match event {
            Event::RunStarted { plugins, .. } => {
                self.plugins = *plugins;
                self.started = Instant::now();
            }
            Event::PluginStarted { index, path } => {
                let name = path
                    .file_name()
                    .map(|name| one_line(&name.to_string_lossy()).into_owned())
                    .unwrap_or_default();
                self.running.insert(*index, (name, None));
                self.draw();
            }
            Event::WorkerStarted { .. } => self.draw(),
            Event::CaseStarted { index, case } => {
                if let Some((_, current)) = self.running.get_mut(index) {
                    *current = Some(*case);
                }
                self.draw();
            }
            Event::CaseFinished { .. } => {
                self.cases_done += 1;
                self.draw();
            }
            // The table prints next: the line goes first.
            Event::PluginFinished { index, .. } => {
                self.running.remove(index);
                self.plugins_done += 1;
                self.erase();
            }
            Event::RunFinished { .. } => self.erase(),
        }
        Ok(())
    }
}
