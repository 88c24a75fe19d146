use super::*;

fn plain(attempts: usize) -> Restart {
    Restart {
        first: Duration::from_millis(100),
        max: Duration::from_millis(500),
        jitter: false,
        attempts,
        stable_after: Duration::from_secs(60),
    }
}

#[test]
fn restarts_double_up_to_the_cap_then_quarantine() {
    let mut restarts = Restarts::new(plain(5));
    let now = Instant::now();
    // In whole milliseconds: backon multiplies in f32.
    let pauses: Vec<Option<u128>> = (0..6)
        .map(|_| {
            restarts
                .died(Duration::ZERO, now)
                .map(|pause| pause.as_millis())
        })
        .collect();
    assert_eq!(
        pauses,
        [Some(100), Some(200), Some(400), Some(500), Some(500), None]
    );
    assert!(restarts.quarantined());
    assert_eq!(
        restarts.may_start(now + Duration::from_secs(3600)),
        Err(None)
    );
    restarts.release();
    assert_eq!(restarts.may_start(now), Ok(()));
    assert_eq!(
        restarts.died(Duration::ZERO, now),
        Some(Duration::from_millis(100))
    );
}

#[test]
fn a_start_waits_out_its_pause() {
    let mut restarts = Restarts::new(plain(3));
    let now = Instant::now();
    restarts.died(Duration::ZERO, now);
    assert_eq!(
        restarts.may_start(now + Duration::from_millis(40)),
        Err(Some(Duration::from_millis(60)))
    );
    assert_eq!(restarts.may_start(now + Duration::from_millis(100)), Ok(()));
}

#[test]
fn a_stable_worker_starts_the_backoff_over() {
    let mut restarts = Restarts::new(plain(3));
    let now = Instant::now();
    restarts.died(Duration::ZERO, now);
    restarts.died(Duration::ZERO, now);
    assert_eq!(
        restarts.died(Duration::from_secs(61), now),
        Some(Duration::from_millis(100))
    );
    assert!(!restarts.quarantined());
}

#[test]
fn jitter_adds_at_most_as_much_again() {
    let policy = Restart {
        jitter: true,
        attempts: 1_000,
        max: Duration::from_millis(100),
        ..plain(0)
    };
    let mut restarts = Restarts::new(policy);
    let now = Instant::now();
    let pauses: Vec<Duration> = (0..200)
        .map(|_| restarts.died(Duration::ZERO, now).unwrap())
        .collect();
    assert!(
        pauses
            .iter()
            .all(|pause| *pause >= Duration::from_millis(100)
                && *pause <= Duration::from_millis(200))
    );
    // Not one fixed value: the jitter is there.
    assert!(pauses.iter().any(|pause| *pause != pauses[0]), "{pauses:?}");
}

fn breakers(per_method: bool) -> Breakers {
    Breakers::new(Breaker {
        failures: 3,
        open_for: Duration::from_secs(10),
        per_method,
    })
}

#[test]
fn a_breaker_opens_after_failures_in_a_row_and_probes_once() {
    let mut breakers = breakers(false);
    let now = Instant::now();
    for _ in 0..2 {
        breakers.admit("parse", now).unwrap();
        assert_eq!(breakers.record("parse", true, now), BreakerState::Closed);
    }
    // A success in between starts the count over.
    breakers.record("parse", false, now);
    for _ in 0..2 {
        breakers.record("parse", true, now);
    }
    assert_eq!(breakers.record("parse", true, now), BreakerState::Open);
    assert_eq!(
        breakers.admit("other", now + Duration::from_secs(4)),
        Err(TurnedAway {
            retry_in: Some(Duration::from_secs(6))
        })
    );
    let later = now + Duration::from_secs(10);
    breakers.admit("parse", later).unwrap();
    assert_eq!(breakers.state("parse"), BreakerState::HalfOpen);
    assert_eq!(
        breakers.admit("parse", later),
        Err(TurnedAway { retry_in: None })
    );
    // The probe failed: open again, for a whole pause.
    assert_eq!(breakers.record("parse", true, later), BreakerState::Open);
    let again = later + Duration::from_secs(10);
    breakers.admit("parse", again).unwrap();
    assert_eq!(breakers.record("parse", false, again), BreakerState::Closed);
    breakers.admit("parse", again).unwrap();
}

#[test]
fn per_method_breakers_leave_the_other_methods_alone() {
    let mut breakers = breakers(true);
    let now = Instant::now();
    for _ in 0..3 {
        breakers.record("crashes", true, now);
    }
    assert!(breakers.admit("crashes", now).is_err());
    assert_eq!(breakers.admit("echo", now), Ok(()));
    assert_eq!(breakers.state("echo"), BreakerState::Closed);
}

#[test]
fn answered_calls_leave_no_breaker_behind_whatever_the_method_names() {
    let mut breakers = breakers(true);
    let now = Instant::now();
    for n in 0..10_000 {
        let method = format!("m{n}");
        breakers.admit(&method, now).unwrap();
        breakers.record(&method, false, now);
    }
    assert!(breakers.states.is_empty(), "{}", breakers.states.len());
}

#[test]
fn a_probe_never_made_is_owed_to_the_next_call() {
    let mut breakers = breakers(false);
    let now = Instant::now();
    for _ in 0..3 {
        breakers.record("parse", true, now);
    }
    let later = now + Duration::from_secs(10);
    breakers.admit("parse", later).unwrap();
    assert!(breakers.probing("parse"));
    // The worker could not start: no call was made.
    breakers.cancel_probe("parse", later);
    assert_eq!(breakers.state("parse"), BreakerState::Open);
    breakers.admit("parse", later).unwrap();
    assert!(breakers.probing("parse"));
}

#[test]
fn deaths_in_a_row_are_counted_and_a_probe_death_does_not_advance_them() {
    let mut restarts = Restarts::new(plain(3));
    let now = Instant::now();
    restarts.died(Duration::ZERO, now);
    restarts.died(Duration::ZERO, now);
    assert_eq!(restarts.in_a_row(), 2);
    restarts.died_probing();
    assert_eq!(restarts.in_a_row(), 2);
    assert_eq!(restarts.may_start(now), Ok(()));
    assert!(!restarts.quarantined());
}

#[test]
fn policies_that_cannot_work_are_refused() {
    assert!(Restart::default().check().is_ok());
    assert!(Breaker::default().check().is_ok());
    let zero_first = Restart {
        first: Duration::ZERO,
        ..Restart::default()
    };
    assert!(
        zero_first
            .check()
            .unwrap_err()
            .contains("`restart.first` is 0")
    );
    let huge = Breaker {
        open_for: Duration::from_secs(u64::MAX / 2),
        ..Breaker::default()
    };
    assert!(huge.check().unwrap_err().contains("over 30 days"));
}
