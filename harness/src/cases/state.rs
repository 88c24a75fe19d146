//! `state-roundtrip`: what hot reload relies on.

use super::{CaseFn, Outcome};
use crate::session::{Session, status_text};

/// Saves state from one instance, restores it into a fresh one (as a hot
/// reload would) and saves again: the bytes must survive unchanged.
pub fn state_roundtrip(session: &mut Session) -> CaseFn {
    let Some(first) = session.save_state()? else {
        return Ok(Outcome::skipped(
            "stateless plugin: save_state and restore_state are NULL",
        ));
    };
    if first.status != 0 {
        return Ok(Outcome::fail(format!(
            "save_state returned {}",
            status_text(first.status)
        )));
    }
    session.shutdown();
    session.init()?;
    let restored = session
        .restore_state(&first.output)?
        .expect("a stateful plugin has restore_state");
    if restored != 0 {
        return Ok(Outcome::fail(format!(
            "restore_state refused the {} bytes save_state produced: it returned {}",
            first.output.len(),
            status_text(restored)
        )));
    }
    let second = session.save_state()?.expect("still stateful");
    if second.status != 0 || second.output != first.output {
        return Ok(Outcome::fail(format!(
            "state changed across save → restore into a new instance → save: {} bytes became {} bytes (status {})",
            first.output.len(),
            second.output.len(),
            status_text(second.status)
        )));
    }
    Ok(Outcome::pass(format!(
        "{} bytes of state carried into a new instance unchanged",
        first.output.len()
    ))
    .with_detail(|detail| detail.state_bytes = Some(first.output.len() as u64)))
}
