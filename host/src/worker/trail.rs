//! The calls a worker announced during one case, oldest first: the
//! history a replay needs when a crash depends on earlier calls to the
//! same plugin instance (a `put` before the `get` that crashes).
//!
//! The announcements come over a channel the plugin can write to, so the
//! trail is bounded: the last [`MAX_TRAIL_CALLS`] calls are kept (the
//! nearest ones are likeliest to matter), the earlier ones counted, and a
//! method name is cut at [`MAX_METHOD_NAME`] characters.

use std::collections::VecDeque;

/// Calls a trail keeps at most.
pub(crate) const MAX_TRAIL_CALLS: usize = 4096;

/// Characters of a method name a trail keeps (registered names are
/// bounded by the host; an announced one comes over the channel).
pub(super) const MAX_METHOD_NAME: usize = 256;

/// A fuzz call the worker announced: the last one is the one it was in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FuzzCall {
    pub method: String,
    pub input: u32,
}

/// The calls announced in one case, the last [`MAX_TRAIL_CALLS`] of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallTrail {
    calls: VecDeque<FuzzCall>,
    /// Calls announced before the ones kept.
    left_out: u64,
}

impl CallTrail {
    /// Adds the call announced now.
    pub(crate) fn push(&mut self, method: &str, input: u32) {
        if self.calls.len() == MAX_TRAIL_CALLS {
            self.calls.pop_front();
            self.left_out += 1;
        }
        self.calls.push_back(FuzzCall {
            method: crate::text::clip(method, MAX_METHOD_NAME),
            input,
        });
    }

    /// The call announced last: the one a death or a hang is pinned on.
    pub(crate) fn last(&self) -> Option<&FuzzCall> {
        self.calls.back()
    }

    /// The calls kept, oldest first.
    pub(crate) fn calls(&self) -> impl DoubleEndedIterator<Item = &FuzzCall> + ExactSizeIterator {
        self.calls.iter()
    }

    /// How many calls were announced before the first one kept.
    pub(crate) fn left_out(&self) -> u64 {
        self.left_out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trail_keeps_the_last_calls_and_counts_the_rest() {
        let mut trail = CallTrail::default();
        assert!(trail.last().is_none());
        for input in 0..(MAX_TRAIL_CALLS as u32 + 5) {
            trail.push("get", input);
        }
        assert_eq!(trail.calls().len(), MAX_TRAIL_CALLS);
        assert_eq!(trail.left_out(), 5);
        assert_eq!(trail.calls().next().unwrap().input, 5);
        assert_eq!(trail.last().unwrap().input, MAX_TRAIL_CALLS as u32 + 4);
    }

    #[test]
    fn an_announced_method_name_is_bounded() {
        let mut trail = CallTrail::default();
        trail.push(&"x".repeat(10_000), 0);
        assert_eq!(
            trail.last().unwrap().method.chars().count(),
            MAX_METHOD_NAME + 1
        );
    }
}
