//! The protocol core: sequences, the ring, the sequencers, barriers, the gating set, the
//! lifecycle and the wait strategies. The hot path (claim, publish, wait) and nearly all of the
//! crate's `unsafe` live here.
//!
//! # The protocol in a few sentences
//! Every event has a sequence number; slot `sequence & (capacity - 1)` holds it. Producers *claim*
//! sequences from a [sequencer](sequencer) (one thread: [`Single`](sequencer::Single), several:
//! [`Multi`](sequencer::Multi)), but never more than `capacity` past the slowest *gating*
//! consumer sequence ([`gating`]), write the claimed slots in place ([`ring`], [`publish`]), and
//! *publish* them (`Release`). Each consumer waits on a [`barrier`] (`Acquire`) for the producers'
//! cursor or for the stages before it, handles everything available as one batch, and stores its
//! own [`sequence`] once per batch (`Release`), which frees the slots for the producers. The
//! [`lifecycle`] says when to stop: a close drains to a target every successful publish is below,
//! a halt or a failure stops at the next batch. How a thread waits is its [`wait`] strategy.
//!
//! # What this layer knows
//! Nothing of threads, handlers or the consumer graph: the graph (`crate::graph`) decides which
//! sequences gate and hands the set to [`gating::Gating::replace`]; the batch loop
//! (`crate::consume`) drives a barrier. A claim sees the queue only through the narrow
//! [`ClaimContext`](sequencer::ClaimContext). The shared words are counters, stamps and slots
//! addressed by sequence, never pointers into each other, which is what lets the same protocol
//! run over a fixed-layout region of memory rather than one process's heap.
//!
//! [`Core`] is what one queue's producers, consumers and graph share.

pub(crate) mod barrier;
pub(crate) mod fence;
pub(crate) mod gating;
pub(crate) mod lifecycle;
pub(crate) mod publish;
pub(crate) mod ring;
pub(crate) mod sequence;
pub(crate) mod sequencer;
pub(crate) mod table;
pub mod wait;
pub(crate) mod wake;

use crate::error::PublishError;
use crate::protocol::gating::Gating;
use crate::protocol::lifecycle::{Lifecycle, Phase};
use crate::protocol::ring::Ring;
use crate::protocol::sequencer::{ClaimContext, SequencerImpl};
use crate::protocol::wait::WaitStrategy;
use crate::sync::AtomicUsize;

/// The ring, its sequencer, the gating set, the wait strategy and the lifecycle of one queue.
pub(crate) struct Core<E, S, W> {
    pub(crate) ring: Ring<E>,
    pub(crate) sequencer: S,
    pub(crate) gating: Gating,
    pub(crate) wait: W,
    pub(crate) lifecycle: Lifecycle,
    /// Live producer handles; dropping the last one closes the queue.
    pub(crate) producers: AtomicUsize,
    /// The producer side's slow-path counters (`consume::counters`).
    pub(crate) producer_counters: crate::consume::counters::ProducerCounters,
}

impl<E, S: SequencerImpl, W: WaitStrategy> Core<E, S, W> {
    /// A queue's core over `ring`, with one producer handle to come and no gating sequence yet
    /// (the graph installs its set before any producer can claim).
    pub(crate) fn new(ring: Ring<E>, wait: W) -> Self {
        let capacity = ring.capacity() as usize;
        Self {
            ring,
            sequencer: S::new(capacity),
            gating: Gating::new(Vec::new()),
            wait,
            lifecycle: Lifecycle::new(),
            producers: AtomicUsize::new(1),
            producer_counters: Default::default(),
        }
    }

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

    /// Fails the queue because the stall watchdog found `stage` stalled at `sequence`.
    pub(crate) fn fail_stalled(&self, stage: &str, sequence: i64) {
        self.lifecycle.fail_as(stage, usize::MAX, sequence, true);
        self.sequencer.refuse();
        self.wait.notify();
    }

    /// Records that the queue has no live stage (`true`: producers are refused instead of
    /// waiting for room nobody will make) or has one again. The graph calls it under its lock,
    /// so a stage leaving and one joining cannot undo each other's flag; the caller notifies.
    pub(crate) fn set_no_stage(&self, none: bool) {
        self.lifecycle.set_no_stage(none);
        if none {
            self.sequencer.refuse();
        }
    }

    /// Free slots: capacity minus what is claimed and not yet released by every gating consumer.
    pub(crate) fn remaining_capacity(&self) -> usize {
        let claimed = self.sequencer.cursor();
        let released = self.gating.minimum(claimed).min(claimed);
        let used = (claimed - released).clamp(0, self.ring.capacity());
        (self.ring.capacity() - used) as usize
    }
}

impl<E, S, W: WaitStrategy> ClaimContext for Core<E, S, W> {
    type Sequencer = S;
    type Wait = W;
    #[inline]
    fn sequencer(&self) -> &S {
        &self.sequencer
    }
    #[inline]
    fn capacity(&self) -> i64 {
        self.ring.capacity()
    }
    #[inline]
    fn phase(&self) -> &Phase {
        &self.lifecycle
    }
    fn publish_error(&self) -> PublishError {
        self.lifecycle.publish_error()
    }
    #[inline]
    fn gating_minimum(&self) -> i64 {
        self.gating.minimum(i64::MAX)
    }
    #[inline]
    fn wait(&self) -> &W {
        &self.wait
    }
    fn found_full(&self, waited: Option<std::time::Duration>) {
        self.producer_counters.found_full(waited);
    }
}
