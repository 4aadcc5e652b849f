//! Sequences: the padded counters through which producers and consumers coordinate.
//!
//! Every event has a sequence number: the producers claim 0, 1, 2, ... in order, and slot
//! `sequence & (capacity - 1)` holds it. A [`Sequence`] is a shared counter meaning "everything up
//! to and including this number is done": a consumer's sequence is the last event it processed,
//! the single producer's cursor is the last event it published. They start at
//! [`INITIAL`] (`-1`, nothing yet), as in the LMAX Disruptor.
//!
//! The owner stores its sequence with `Release` after the work it covers (writing a slot, or
//! reading one); whoever waits on it loads with `Acquire`, and so sees that work. Each sequence sits
//! on its own cache line ([`CachePadded`]), so a producer spinning on a consumer's sequence does not
//! slow down the consumer writing the counter next to it.

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicI64, Ordering};

/// The value of every sequence before anything has been published or processed.
pub const INITIAL: i64 = -1;

/// A cache-padded atomic sequence, written by one owner and read by anyone who waits on it.
#[derive(Debug)]
#[repr(transparent)]
pub(crate) struct Sequence(CachePadded<AtomicI64>);

impl Sequence {
    pub(crate) fn new(value: i64) -> Self {
        Self(CachePadded::new(AtomicI64::new(value)))
    }

    /// The sequence, with `Acquire`: the caller sees all the work it covers.
    #[inline]
    pub(crate) fn get(&self) -> i64 {
        self.0.load(Ordering::Acquire)
    }

    /// The sequence, with no ordering: for monitoring, and for owners re-reading their own value.
    #[inline]
    pub(crate) fn get_relaxed(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Publishes `value`, with `Release`: the work done before it is visible to anyone who sees it.
    #[inline]
    pub(crate) fn set(&self, value: i64) {
        self.0.store(value, Ordering::Release);
    }
}

/// The smallest of `sequences`, or `default` when there are none.
///
/// Each load is `Acquire`, so a producer that sees a consumer past a slot also sees that consumer's
/// reads of it finished, and may overwrite the slot.
#[inline]
pub(crate) fn minimum(sequences: &[crate::sync::Arc<Sequence>], default: i64) -> i64 {
    sequences.iter().fold(default, |min, s| min.min(s.get()))
}
