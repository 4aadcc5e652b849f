//! Sequence barriers: what a consumer waits for before it may read a sequence.
//!
//! A consumer of the first stage depends on the producers: it may read everything the sequencer
//! reports published. A consumer placed after other stages depends on them: it may read everything
//! all of them have finished, which is the minimum of their sequences (they only ever pass
//! published events, so that is published too). Loads are `Acquire`, so the consumer sees the
//! producer's writes to the slots, and its upstream stages' writes (an exclusive stage enriching
//! the event in place).
//!
//! The barrier also says when to stop waiting: the queue drained to its last sequence, halted, or
//! this stage was removed while running.

use std::time::Duration;

use crate::protocol::lifecycle::Stop;
use crate::protocol::sequence::{minimum, Sequence};
use crate::protocol::sequencer::SequencerImpl;
use crate::protocol::wait::{WaitStrategy, Waited};
use crate::protocol::Core;
use crate::sync::{Arc, AtomicBool, Ordering};

/// Asks a stage's threads to leave (it is being removed), or records that a poller was dropped.
#[derive(Debug, Default)]
pub(crate) struct Control {
    leave: AtomicBool,
}

impl Control {
    /// Marks the stage as leaving. Release: pairs with [`left`](Self::left).
    pub(crate) fn leave(&self) {
        self.leave.store(true, Ordering::Release);
    }

    /// Whether the stage was asked to leave (checked once per batch and on each wait step).
    #[inline]
    pub(crate) fn left(&self) -> bool {
        self.leave.load(Ordering::Acquire)
    }
}

/// What one consumer (or pool worker, or poller) waits on: the producers, or its upstream stages.
pub(crate) struct Barrier<E, S, W> {
    pub(crate) core: Arc<Core<E, S, W>>,
    /// Upstream consumers' sequences; empty for a first-stage consumer.
    upstream: Box<[Arc<Sequence>]>,
    /// Set when the stage is removed from a running queue.
    pub(crate) control: Arc<Control>,
}

impl<E, S: SequencerImpl, W: WaitStrategy> Barrier<E, S, W> {
    pub(crate) fn new(
        core: Arc<Core<E, S, W>>,
        upstream: Vec<Arc<Sequence>>,
        control: Arc<Control>,
    ) -> Self {
        Self {
            core,
            upstream: upstream.into_boxed_slice(),
            control,
        }
    }

    /// Whether the producers have published `next`, whatever the upstream stages did: tells a
    /// poller "gated by upstream" from "idle".
    pub(crate) fn published(&self, next: i64) -> bool {
        self.core.sequencer.highest_published(next) >= next
    }

    /// Whether a consumer that wants `next` must stop waiting, and why.
    #[inline]
    pub(crate) fn stop(&self, next: i64) -> Option<Stop> {
        match self.core.lifecycle.consumer_stop(next) {
            None if self.control.left() => Some(Stop::Halted),
            other => other,
        }
    }

    /// Whether this barrier waits on the producers only (no upstream stage).
    #[inline]
    pub(crate) fn is_first_stage(&self) -> bool {
        self.upstream.is_empty()
    }

    /// Whether the consumer must stop at this batch boundary (halted, failed or removed).
    #[inline]
    pub(crate) fn must_stop(&self) -> bool {
        self.core.lifecycle.is_halted() || self.control.left()
    }

    /// The highest sequence this consumer may read now (`next - 1` if none).
    #[inline]
    pub(crate) fn available(&self, next: i64) -> i64 {
        if self.upstream.is_empty() {
            self.core.sequencer.highest_published(next)
        } else {
            minimum(&self.upstream, i64::MAX)
        }
    }

    /// Waits with `wait` until `next` is available; returns the highest available sequence.
    /// `timeout` starts only if the sequence is not already available (no clock read otherwise).
    #[inline]
    pub(crate) fn wait_for<P: WaitStrategy>(
        &self,
        next: i64,
        wait: &P,
        timeout: Option<Duration>,
    ) -> Waited<i64, Stop> {
        let available = self.available(next);
        if available >= next {
            return Waited::Ready(available);
        }
        if crate::sync::MODEL_TIMEOUTS && timeout.is_some() {
            // Under loom: time does not pass, so a timed wait that finds nothing times out at
            // once, the schedule in which the timeout elapses before the event comes (the model
            // of a hook panic while waiting needs `on_timeout` to run). The yield lets the other
            // modelled threads run between two timeouts.
            if let Some(stop) = self.stop(next) {
                return Waited::Stopped(stop);
            }
            crate::sync::thread::yield_now();
            return Waited::TimedOut;
        }
        let deadline = timeout.and_then(crate::sync::deadline_in);
        wait.wait_until(
            || {
                let available = self.available(next);
                (available >= next).then_some(available)
            },
            || self.stop(next),
            deadline,
        )
    }
}

impl<E, S, W> Clone for Barrier<E, S, W> {
    fn clone(&self) -> Self {
        Self {
            core: self.core.clone(),
            upstream: self.upstream.clone(),
            control: self.control.clone(),
        }
    }
}
