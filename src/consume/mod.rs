//! Consuming: handlers, the batch loop with its panic and retry policies, work pools, pollers.
//!
//! | file | what |
//! |---|---|
//! | `handler.rs` | the handler traits, the closure adapters, what the loop calls ([`Process`](handler::Process)) |
//! | `consumer.rs` | [`Consumer`](consumer::Consumer): a handler and how to run it; [`PanicPolicy`](consumer::PanicPolicy), [`Hook`](consumer::Hook) |
//! | `batch.rs` | the batch loop of a consumer or a pool worker, its panics, replays and pool variant |
//! | `pool.rs` | the work pool's claim protocol and [`WorkPool`](pool::WorkPool) |
//! | `poller.rs` | [`Poller`](poller::Poller): a stage polled from the user's own loop |
//!
//! Consumers, pool workers and pollers hand events over through one function, [`deliver`].
//! This layer drives a [barrier](crate::protocol::barrier) and knows nothing of the graph: a
//! poller leaves it through a hook the graph gives it.

pub(crate) mod batch;
pub(crate) mod consumer;
pub(crate) mod counters;
pub(crate) mod handler;
pub(crate) mod poller;
pub(crate) mod pool;

use crate::protocol::ring::{Skips, Slots, Source};

/// Hands `first..=last` to `each(slots, sequence, end_of_batch)` in order, passing the slots
/// their producer abandoned (a publish closure that panicked); `end_of_batch` goes to the last
/// event actually handed over. Stops at the first `Err` and returns it.
///
/// The caller holds `first..=last`: published (its barrier's `Acquire` said so) and not yet
/// released; `each` reads the slots under that precondition. `each` never leaves this function
/// (the rare path with abandoned slots is a loop of its own here, not a call that would take
/// it): what it captures stays in registers.
#[inline]
pub(crate) fn deliver<E, R>(
    ring: &impl Source<E>,
    first: i64,
    last: i64,
    mut each: impl FnMut(Slots<'_, E>, i64, bool) -> Result<(), R>,
) -> Result<(), R> {
    let slots = ring.slots();
    let skips = ring.skips();
    if !skips.may_skip_from(first) {
        // An exclusive range: `..=` iterates with an extra flag per step.
        for seq in first..last + 1 {
            each(slots, seq, seq == last)?;
        }
        return Ok(());
    }
    // Rare: a producer abandoned a slot at or after `first`.
    let end = last_delivered(skips, first, last);
    for seq in first..end + 1 {
        if !skips.is_skipped(seq) {
            each(slots, seq, seq == end)?;
        }
    }
    Ok(())
}

/// The last sequence of `first..=last` that its producer did not abandon (`first - 1`: none).
#[cold]
fn last_delivered(skips: Skips<'_>, first: i64, last: i64) -> i64 {
    let mut end = last;
    while end >= first && skips.is_skipped(end) {
        end -= 1;
    }
    end
}
