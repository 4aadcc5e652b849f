//! What producers, consumers and the running queue share: one allocation per queue.

use crate::gating::{Gating, StageInfo};
use crate::lifecycle::Lifecycle;
use crate::ring::Ring;
use crate::sequencer::sealed::SequencerImpl;
use crate::sync::AtomicUsize;
use crate::wait::WaitStrategy;

/// The ring, its sequencer, the gating set, the wait strategy and the lifecycle of one queue.
pub(crate) struct Shared<E, S, W> {
    pub(crate) ring: Ring<E>,
    pub(crate) sequencer: S,
    pub(crate) gating: Gating,
    pub(crate) wait: W,
    pub(crate) lifecycle: Lifecycle,
    /// Live producer handles; dropping the last one closes the queue.
    pub(crate) producers: AtomicUsize,
}

impl<E, S: SequencerImpl, W: WaitStrategy> Shared<E, S, W> {
    /// Stops new claims and lets consumers drain to the last claimed sequence. Idempotent.
    pub(crate) fn close(&self) {
        if self.lifecycle.begin_close() {
            self.sequencer.refuse();
            // Wake producers parked waiting for room first: the sequencer's close may wait for a
            // claim in progress, which ends when its producer sees the close.
            self.wait.notify();
            let last = self.sequencer.close();
            self.lifecycle.set_drain_target(last);
        }
        self.wait.notify();
    }

    /// Stops consumers at their next batch boundary, without draining.
    pub(crate) fn halt(&self) {
        self.lifecycle.halt();
        self.sequencer.refuse();
        self.wait.notify();
    }

    /// Fails the queue (see [`Lifecycle::fail`]) and wakes whoever waits.
    pub(crate) fn fail(&self, consumer: &str, worker: usize, sequence: i64) {
        self.lifecycle.fail(consumer, worker, sequence);
        self.sequencer.refuse();
        self.wait.notify();
    }

    /// Changes the graph (see [`Gating::change`]) and keeps the lifecycle's "no live stage" flag in
    /// step: set, under the graph's lock, when the change leaves no live stage, so producers are
    /// refused instead of waiting for room nobody will make. A stage that joins clears it, also
    /// under the lock, once it is in place (see `Disruptor::join_stage`). Then wakes whoever
    /// waits, for room or on a sequence.
    pub(crate) fn change_graph<R>(&self, change: impl FnOnce(&mut Vec<StageInfo>) -> R) -> R {
        let result = self.gating.change(change, || {
            self.lifecycle.set_no_stage(true);
            self.sequencer.refuse();
        });
        self.wait.notify();
        result
    }

    /// Free slots: capacity minus what is claimed and not yet released by every gating consumer.
    pub(crate) fn remaining_capacity(&self) -> usize {
        let claimed = self.sequencer.cursor();
        let released = self.gating.minimum(claimed).min(claimed);
        let used = (claimed - released).clamp(0, self.ring.capacity());
        (self.ring.capacity() - used) as usize
    }
}
