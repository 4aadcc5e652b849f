//! The gating set: the consumer sequences that producers must not lap.
//!
//! A producer may claim sequence `s` only when every gating sequence is at least `s - capacity`:
//! then every consumer has finished with the slot's previous event. Only the *last* consumers of
//! the graph gate (those no other consumer depends on): every other consumer is, by construction,
//! ahead of something that gates.
//!
//! Producers read the set only on their slow path: each keeps (or shares, for multi producer) a
//! cached minimum and rereads the set only when a claim could wrap past it. That is what makes the
//! set cheap to change while running.
//!
//! # Changing the set while running
//! Today the set is fixed when the queue is built. Adding and removing consumers at runtime will
//! swap it copy-on-write: the set becomes an `crossbeam_epoch::Atomic<Box<[Arc<Sequence>]>>`, a
//! producer's slow path pins the epoch and loads it, and a writer (serialized by a mutex) installs a
//! new set and defers dropping the old one until no pinned producer can still be reading it. A new
//! consumer is installed with its sequence set to the cursor *before* it becomes visible, and the
//! producers' cached minimum is reset, so no producer can lap a slot the newcomer is about to read;
//! a removed consumer simply stops appearing in the minimum. The hot path (cached minimum) is
//! untouched, which is why this type hides how the set is stored behind [`Gating::minimum`].

use crate::sequence::{minimum, Sequence};
use crate::sync::Arc;

/// The sequences producers wait for before reusing a slot.
pub(crate) struct Gating {
    sequences: Box<[Arc<Sequence>]>,
}

impl Gating {
    pub(crate) fn new(sequences: Vec<Arc<Sequence>>) -> Self {
        Self {
            sequences: sequences.into_boxed_slice(),
        }
    }

    /// The slowest gating consumer's sequence, or `default` if nothing gates. `Acquire` per
    /// sequence: a producer that sees a consumer past a slot sees that consumer's reads finished.
    #[inline]
    pub(crate) fn minimum(&self, default: i64) -> i64 {
        minimum(&self.sequences, default)
    }
}
