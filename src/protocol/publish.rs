//! Claim, write, publish: the producer's half of the protocol. [`claim`] takes sequences from
//! the sequencer and returns a [`Claim`] token; [`write_one`] and [`write_batch`] consume it,
//! write the slots in place and publish them. The producer handles (`crate::producer`) call
//! these with a claim state of their own.
//!
//! The write step runs user code while the producer holds a claim that consumers will wait for. A
//! drop guard ([`Publication`]) publishes the range in every case: normally after the last write,
//! or, if the closure panics, with the unwritten slots marked skipped, so consumers pass them
//! instead of waiting forever. The panic then continues to the caller.

use crate::error::PublishError;
use crate::protocol::ring::Slots;
use crate::protocol::sequencer::{ClaimContext, LocalClaim, Mode, SequencerImpl};
use crate::protocol::wait::WaitStrategy;
use crate::protocol::Core;

/// What a producer publishes into: a ring with a sequencer behind a claim context. The queue's
/// [`Core`] is one; a ring in a segment several processes map is another (`crate::ipc`).
pub(crate) trait Target: ClaimContext {
    /// What the slots hold.
    type Event;
    /// Claims `n` sequences with this target's sequencer; returns the first.
    fn claim_sequences(
        &self,
        local: &mut LocalClaim,
        n: i64,
        mode: Mode,
    ) -> Result<i64, PublishError>;
    /// The ring's slots.
    fn slots(&self) -> Slots<'_, Self::Event>;
    /// Marks the claimed, unpublished `sequence` as abandoned (see `Ring::mark_skipped`).
    fn mark_skipped(&self, sequence: i64);
    /// Publishes `lo..=hi` and wakes whoever waits for it.
    fn publish(&self, lo: i64, hi: i64);
}

impl<E, S: SequencerImpl, W: WaitStrategy> Target for Core<E, S, W> {
    type Event = E;
    #[inline]
    fn claim_sequences(
        &self,
        local: &mut LocalClaim,
        n: i64,
        mode: Mode,
    ) -> Result<i64, PublishError> {
        S::claim(self, local, n, mode)
    }
    #[inline]
    fn slots(&self) -> Slots<'_, E> {
        self.ring.slots()
    }
    #[inline]
    fn mark_skipped(&self, sequence: i64) {
        self.ring.mark_skipped(sequence)
    }
    #[inline]
    fn publish(&self, lo: i64, hi: i64) {
        self.sequencer.publish(lo, hi);
        self.wait.notify();
    }
}

/// A claimed, unpublished range: the token that [`claim`] produces and [`write_one`] or
/// [`write_batch`] consume, so the writing functions need no `unsafe` contract of their own (as
/// crossbeam-channel's array flavor splits `start_send` from `write`). Only this module can make
/// one, and only from a successful claim; it is not `Clone`.
#[derive(Debug)]
#[must_use = "a claim must be written and published, or consumers wait on it forever"]
pub(crate) struct Claim {
    first: i64,
    n: i64,
}

/// Claims `n` contiguous sequences (`1 <= n <= capacity`, checked by the caller), waiting for
/// room as `mode` says.
#[inline]
pub(crate) fn claim<T: Target>(
    core: &T,
    local: &mut LocalClaim,
    n: i64,
    mode: Mode,
) -> Result<Claim, PublishError> {
    debug_assert!(n >= 1 && n <= core.capacity());
    let first = core.claim_sequences(local, n, mode)?;
    Ok(Claim { first, n })
}

/// Lets `write` fill the slot of a one-sequence `claim` in place, publishes it and returns it.
#[inline]
pub(crate) fn write_one<T: Target>(
    core: &T,
    claim: Claim,
    write: impl FnOnce(&mut T::Event),
) -> i64 {
    debug_assert_eq!(claim.n, 1);
    let seq = claim.first;
    let mut publication = Publication {
        core,
        first: seq,
        last: seq,
        unwritten: seq,
    };
    // Loom: `single_producer_wrap_never_overwrites`,
    // `multi_producer_availability_and_per_producer_order`; miri: tests/delivery.rs.
    // SAFETY: `claim` is this handle's unpublished claim of `seq`: every gating consumer passed
    // `seq - capacity` (the wrap check) and none reads `seq` before it is published.
    unsafe { core.slots().write(seq, write) };
    publication.unwritten = seq + 1;
    seq
}

/// Calls `write(slot, i)` for each slot of `claim`, publishes them all with one cursor update,
/// and returns the first sequence.
#[inline]
pub(crate) fn write_batch<T: Target>(
    core: &T,
    claim: Claim,
    mut write: impl FnMut(&mut T::Event, usize),
) -> i64 {
    let Claim { first, n } = claim;
    let last = first + n - 1;
    let mut publication = Publication {
        core,
        first,
        last,
        unwritten: first,
    };
    let slots = core.slots();
    for i in 0..n as usize {
        let seq = first + i as i64;
        // SAFETY: `seq` is in this handle's claim, not yet published (as in `write_one`). Loom:
        // `batch_publish_wraps_and_publishes_whole_batches`, `multi_producer_batch_publish`;
        // miri: tests/delivery.rs, tests/edges.rs.
        unsafe { slots.write(seq, |slot| write(slot, i)) };
        publication.unwritten = seq + 1;
    }
    first
}

/// Publishes a claimed range when dropped, marking the slots not yet written as skipped.
struct Publication<'a, T: Target> {
    core: &'a T,
    first: i64,
    last: i64,
    /// The first slot of the range not yet fully written.
    unwritten: i64,
}

impl<T: Target> Drop for Publication<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // Only after a panic in the write closure: the rest of the claim is abandoned.
        for seq in self.unwritten..self.last + 1 {
            self.core.mark_skipped(seq);
        }
        self.core.publish(self.first, self.last);
    }
}
