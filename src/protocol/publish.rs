//! Claim, write, publish: the producer's half of the protocol, as two functions that the producer
//! handles (`crate::producer`) call with a claim state of their own.
//!
//! The write step runs user code while the producer holds a claim that consumers will wait for. A
//! drop guard ([`Publication`]) publishes the range in every case: normally after the last write,
//! or, if the closure panics, with the unwritten slots marked skipped, so consumers pass them
//! instead of waiting forever. The panic then continues to the caller.

use crate::error::PublishError;
use crate::protocol::sequencer::{LocalClaim, Mode, SequencerImpl};
use crate::protocol::wait::WaitStrategy;
use crate::protocol::Core;

/// Claims one sequence (waiting for room as `mode` says), lets `write` fill its slot in place,
/// publishes it and returns it.
#[inline]
pub(crate) fn one<E, S: SequencerImpl, W: WaitStrategy>(
    core: &Core<E, S, W>,
    local: &mut LocalClaim,
    mode: Mode,
    write: impl FnOnce(&mut E),
) -> Result<i64, PublishError> {
    let seq = core.sequencer.claim(core, local, 1, mode)?;
    let mut publication = Publication {
        core,
        first: seq,
        last: seq,
        unwritten: seq,
    };
    // SAFETY: `seq` was just claimed by this handle and is not published yet: the sequencer saw
    // every gating consumer past `seq - capacity` (the wrap check), and consumers wait for the
    // publication below, so this is the slot's only user. Loom: `single_producer_wrap_never_overwrites`,
    // `multi_producer_availability_and_per_producer_order`; miri: tests/delivery.rs.
    unsafe { core.ring.slots().write(seq, write) };
    publication.unwritten = seq + 1;
    Ok(seq)
}

/// Claims `n` contiguous sequences (`1 <= n <= capacity`, checked by the caller), calls
/// `write(slot, i)` for each, publishes them all with one cursor update, and returns the first.
#[inline]
pub(crate) fn batch<E, S: SequencerImpl, W: WaitStrategy>(
    core: &Core<E, S, W>,
    local: &mut LocalClaim,
    n: i64,
    mode: Mode,
    mut write: impl FnMut(&mut E, usize),
) -> Result<i64, PublishError> {
    debug_assert!(n >= 1 && n <= core.ring.capacity());
    let first = core.sequencer.claim(core, local, n, mode)?;
    let last = first + n - 1;
    let mut publication = Publication {
        core,
        first,
        last,
        unwritten: first,
    };
    let slots = core.ring.slots();
    for i in 0..n {
        let seq = first + i;
        // SAFETY: `seq` is in the range this handle just claimed and has not published (as in
        // `one`). Loom: `batch_publish_wraps_and_publishes_whole_batches`,
        // `multi_producer_batch_publish`; miri: tests/delivery.rs, tests/edges.rs.
        unsafe { slots.write(seq, |slot| write(slot, i as usize)) };
        publication.unwritten = seq + 1;
    }
    Ok(first)
}

/// Publishes a claimed range when dropped, marking the slots not yet written as skipped.
struct Publication<'a, E, S: SequencerImpl, W: WaitStrategy> {
    core: &'a Core<E, S, W>,
    first: i64,
    last: i64,
    /// The first slot of the range not yet fully written.
    unwritten: i64,
}

impl<E, S: SequencerImpl, W: WaitStrategy> Drop for Publication<'_, E, S, W> {
    #[inline]
    fn drop(&mut self) {
        // Only after a panic in the write closure: the rest of the claim is abandoned.
        for seq in self.unwritten..self.last + 1 {
            self.core.ring.mark_skipped(seq);
        }
        self.core.sequencer.publish(self.first, self.last);
        self.core.wait.notify();
    }
}
