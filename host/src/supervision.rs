//! How a worker-mode plugin is kept serving: restarts spaced by an
//! exponential backoff with jitter and a cap, then quarantine; and a circuit
//! breaker that stops sending calls to a plugin (or one of its methods)
//! that keeps failing, probing it again after a pause.
//!
//! The backoff's delays come from `backon` (exponential, jittered,
//! capped, a bounded number of times). The breaker is our own, small: it
//! must be keyed per plugin *and*, where asked, per method — one method
//! that crashes on every input must not cut off the others — and its
//! failures are the host's own kinds (a crash, a timeout, a panic, a broken
//! buffer; not a method's error status, which is an answer). The breaker
//! crates at hand key one breaker per value and count any `Err`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use backon::BackoffBuilder as _;

/// When a worker that died is started again, and when not at all. In a
/// configuration file: `[plugin.restart]`, durations as `100ms`, `30s`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Restart {
    /// The pause before the first restart; each next one doubles it.
    #[serde(with = "humantime_serde")]
    pub first: Duration,
    /// The longest pause (before jitter).
    #[serde(with = "humantime_serde")]
    pub max: Duration,
    /// Add up to as much again at random to each pause, so many hosts
    /// whose plugin died together do not restart it together.
    pub jitter: bool,
    /// Restarts in a row, without a stable stretch between them, before
    /// the plugin is quarantined: no calls until the application lifts it
    /// ([`crate::isolated::Isolated::release`]) or reloads a build. 0: the
    /// first death quarantines it.
    pub attempts: usize,
    /// A worker that served this long before it died was stable: its
    /// death starts the backoff over.
    #[serde(with = "humantime_serde")]
    pub stable_after: Duration,
}

/// The longest duration a setting takes: far above any sensible one, far
/// below where adding it to the clock overflows.
pub(crate) const MAX_SETTING: Duration = Duration::from_secs(30 * 24 * 3600);

/// `what` is at most [`MAX_SETTING`].
pub(crate) fn within_bound(what: &str, duration: Duration) -> Result<(), String> {
    match duration > MAX_SETTING {
        true => Err(format!("`{what}` is over 30 days: give a shorter one")),
        false => Ok(()),
    }
}

impl Restart {
    /// What no restart policy can mean: a zero `first` or `stable_after`
    /// (a backoff that never grows, a death that is always "stable"), a
    /// `max` below `first`, a duration over 30 days.
    pub fn check(&self) -> Result<(), String> {
        for (what, duration) in [
            ("restart.first", self.first),
            ("restart.max", self.max),
            ("restart.stable_after", self.stable_after),
        ] {
            within_bound(what, duration)?;
        }
        if self.first.is_zero() {
            return Err("`restart.first` is 0: restarts would never back off".into());
        }
        if self.max < self.first {
            return Err(format!(
                "`restart.max` ({:?}) is below `restart.first` ({:?})",
                self.max, self.first
            ));
        }
        if self.stable_after.is_zero() {
            return Err(
                "`restart.stable_after` is 0: every death would start the backoff over, and the plugin would never be quarantined".into(),
            );
        }
        Ok(())
    }
}

impl Default for Restart {
    fn default() -> Self {
        Restart {
            first: Duration::from_millis(100),
            max: Duration::from_secs(30),
            jitter: true,
            attempts: 8,
            stable_after: Duration::from_secs(60),
        }
    }
}

/// The restarts of one plugin's worker: when the next may happen, and
/// whether the plugin is quarantined.
#[derive(Debug)]
pub(crate) struct Restarts {
    policy: Restart,
    /// Pauses left before quarantine; `None` until the first death.
    pauses: Option<backon::ExponentialBackoff>,
    /// No start before this.
    not_before: Option<Instant>,
    quarantined: bool,
    /// Deaths since the backoff last started over.
    in_a_row: u64,
}

impl Restarts {
    pub(crate) fn new(policy: Restart) -> Restarts {
        Restarts {
            policy,
            pauses: None,
            not_before: None,
            quarantined: false,
            in_a_row: 0,
        }
    }

    fn builder(&self) -> backon::ExponentialBuilder {
        let builder = backon::ExponentialBuilder::default()
            .with_min_delay(self.policy.first)
            .with_max_delay(self.policy.max)
            .with_factor(2.0)
            .with_max_times(self.policy.attempts);
        match self.policy.jitter {
            true => builder.with_jitter(),
            false => builder,
        }
    }

    /// A worker died (or failed to start) after serving `served`: the
    /// pause before the next start, or none when the plugin is now
    /// quarantined.
    pub(crate) fn died(&mut self, served: Duration, now: Instant) -> Option<Duration> {
        if served >= self.policy.stable_after || self.pauses.is_none() {
            self.pauses = Some(self.builder().build());
            self.in_a_row = 0;
        }
        self.in_a_row += 1;
        match self.pauses.as_mut().and_then(Iterator::next) {
            Some(pause) => {
                self.not_before = Some(now + pause);
                Some(pause)
            }
            None => {
                self.quarantined = true;
                None
            }
        }
    }

    /// Whether a worker may start now; if not, how long until it may
    /// (`None`: quarantined).
    pub(crate) fn may_start(&self, now: Instant) -> Result<(), Option<Duration>> {
        if self.quarantined {
            return Err(None);
        }
        match self.not_before {
            Some(at) if at > now => Err(Some(at - now)),
            _ => Ok(()),
        }
    }

    /// A worker died in a call a per-method breaker let through as its
    /// probe: the breaker spaces those already, and one method that
    /// crashes on every input must not quarantine the plugin (and so its
    /// other methods). The next start may come at once.
    pub(crate) fn died_probing(&mut self) {
        self.not_before = None;
    }

    pub(crate) fn started(&mut self) {
        self.not_before = None;
    }

    /// Deaths since the backoff last started over.
    pub(crate) fn in_a_row(&self) -> u64 {
        self.in_a_row
    }

    pub(crate) fn quarantined(&self) -> bool {
        self.quarantined
    }

    /// Lifts a quarantine and starts the backoff over.
    pub(crate) fn release(&mut self) {
        self.quarantined = false;
        self.pauses = None;
        self.not_before = None;
        self.in_a_row = 0;
    }
}

/// When a breaker opens, and for how long. In a configuration file:
/// `[plugin.breaker]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Breaker {
    /// Failures in a row (crashes, timeouts, panics, broken buffers) that
    /// open it.
    pub failures: u32,
    /// How long it stays open before one call may probe the plugin.
    #[serde(with = "humantime_serde")]
    pub open_for: Duration,
    /// One breaker per method, not one per plugin.
    pub per_method: bool,
}

impl Breaker {
    /// What no breaker can mean: no failures to open it, no time open, a
    /// duration over 30 days.
    pub fn check(&self) -> Result<(), String> {
        within_bound("breaker.open_for", self.open_for)?;
        if self.failures == 0 {
            return Err("`breaker.failures` is 0: give the failures in a row that open it".into());
        }
        if self.open_for.is_zero() {
            return Err("`breaker.open_for` is 0: it would never turn a call away".into());
        }
        Ok(())
    }
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            failures: 5,
            open_for: Duration::from_secs(10),
            per_method: false,
        }
    }
}

/// A breaker's state, as metrics and tests see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls fail at once, until the pause is over.
    Open,
    /// One call (the probe) is in flight; the others fail at once.
    HalfOpen,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen,
}

/// The breakers of one plugin: one, or one per method.
#[derive(Debug)]
pub(crate) struct Breakers {
    settings: Breaker,
    states: HashMap<String, State>,
}

/// A breaker that turned a call away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TurnedAway {
    /// Until the probe may go (none: a probe is in flight).
    pub retry_in: Option<Duration>,
}

impl Breakers {
    pub(crate) fn new(settings: Breaker) -> Breakers {
        Breakers {
            settings,
            states: HashMap::new(),
        }
    }

    fn key<'a>(&self, method: &'a str) -> &'a str {
        match self.settings.per_method {
            true => method,
            false => "",
        }
    }

    /// Whether a call of `method` may go now. An open breaker whose pause
    /// is over lets this one call through as its probe (half-open).
    pub(crate) fn admit(&mut self, method: &str, now: Instant) -> Result<(), TurnedAway> {
        // A closed breaker with no failure is no entry: callers' method
        // names must not grow the map.
        let Some(state) = self.states.get_mut(self.key(method)) else {
            return Ok(());
        };
        match *state {
            State::Closed { .. } => Ok(()),
            State::Open { until } if until <= now => {
                *state = State::HalfOpen;
                Ok(())
            }
            State::Open { until } => Err(TurnedAway {
                retry_in: Some(until - now),
            }),
            State::HalfOpen => Err(TurnedAway { retry_in: None }),
        }
    }

    /// How the call `admit` let through ended (`failed`: a fault of the
    /// plugin's, not an answer); the state it leaves the breaker in.
    pub(crate) fn record(&mut self, method: &str, failed: bool, now: Instant) -> BreakerState {
        let key = self.key(method).to_owned();
        if !failed {
            self.states.remove(&key);
            return BreakerState::Closed;
        }
        let open = State::Open {
            until: now + self.settings.open_for,
        };
        let threshold = self.settings.failures.max(1);
        let state = self
            .states
            .entry(key)
            .or_insert(State::Closed { failures: 0 });
        *state = match *state {
            State::Closed { failures } if failures + 1 >= threshold => open,
            State::Closed { failures } => State::Closed {
                failures: failures + 1,
            },
            // The probe failed, or a call admitted before it opened did.
            State::HalfOpen | State::Open { .. } => open,
        };
        Self::public(*state)
    }

    /// The call `admit` let through as the probe was not made (its worker
    /// could not start): the next call may probe instead.
    pub(crate) fn cancel_probe(&mut self, method: &str, now: Instant) {
        if let Some(state @ State::HalfOpen) = self.states.get_mut(self.key(method)) {
            *state = State::Open { until: now };
        }
    }

    /// Whether `method`'s breaker is half-open: a call now is its probe.
    pub(crate) fn probing(&self, method: &str) -> bool {
        matches!(self.states.get(self.key(method)), Some(State::HalfOpen))
    }

    /// The state of `method`'s breaker.
    pub(crate) fn state(&self, method: &str) -> BreakerState {
        self.states
            .get(self.key(method))
            .map_or(BreakerState::Closed, |state| Self::public(*state))
    }

    fn public(state: State) -> BreakerState {
        match state {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests;
