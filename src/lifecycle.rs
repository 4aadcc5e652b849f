//! The queue's lifecycle: running, draining to a known last sequence, halted, or failed.
//!
//! One state word, on its own cache line, read by producers once per claim and by consumers once
//! per batch and on every wait step. It only moves forward:
//!
//! ```text
//! RUNNING --close--> CLOSING --(drain target known)--> DRAINING
//!    |                  |                                 |
//!    +------------------+------------ halt ---------------+--> HALTED
//!    +------------------+------------ a handler panics ---+--> FAILED
//! ```
//!
//! - `close` (from `shutdown()` or the last producer's drop) stops new claims and asks the sequencer
//!   for the last sequence claimed before the close; every consumer processes up to it and exits.
//!   `CLOSING` is the short step in between, so that only one closer computes the target.
//! - `halt` stops consumers at their next batch boundary without draining.
//! - `fail` is `halt` plus the name and sequence of the consumer whose handler panicked, which
//!   producers report as [`PublishError::ConsumerFailed`].
//!
//! The drain target is written before the state becomes `DRAINING` (Release) and read after seeing
//! `DRAINING` (Acquire), so a consumer that sees the state always sees the target.

use crossbeam_utils::CachePadded;

use crate::error::PublishError;
use crate::sync::{AtomicI64, AtomicUsize, Mutex, Ordering};

const RUNNING: usize = 0;
const CLOSING: usize = 1;
const DRAINING: usize = 2;
const HALTED: usize = 3;
const FAILED: usize = 4;

/// Why a consumer must stop waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Everything up to the drain target is processed.
    Drained,
    /// Halted or failed: stop now.
    Halted,
}

/// The consumer whose panic failed the queue.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) consumer: String,
    pub(crate) sequence: i64,
}

pub(crate) struct Lifecycle {
    state: CachePadded<AtomicUsize>,
    drain_to: AtomicI64,
    failure: Mutex<Option<Failure>>,
}

impl Lifecycle {
    pub(crate) fn new() -> Self {
        Self {
            state: CachePadded::new(AtomicUsize::new(RUNNING)),
            drain_to: AtomicI64::new(i64::MAX),
            failure: Mutex::new(None),
        }
    }

    /// `Ok` while producers may claim. Relaxed: a close that happens-before this call is seen by
    /// coherence; one racing it is resolved by the sequencer (see `Sequencer::close`).
    #[inline]
    pub(crate) fn check_open(&self) -> Result<(), PublishError> {
        if self.state.load(Ordering::Relaxed) == RUNNING {
            Ok(())
        } else {
            Err(self.publish_error())
        }
    }

    /// The error a producer gets once the queue is no longer running.
    #[cold]
    pub(crate) fn publish_error(&self) -> PublishError {
        if self.state.load(Ordering::Acquire) == FAILED {
            if let Some(f) = self.failure.lock().unwrap().as_ref() {
                return PublishError::ConsumerFailed {
                    consumer: f.consumer.clone(),
                    sequence: f.sequence,
                };
            }
        }
        PublishError::Shutdown
    }

    /// Whether a producer that holds a claim must give up waiting for room: only when consumers
    /// stopped for good. While draining they still make room, and the claim will be drained.
    #[inline]
    pub(crate) fn producers_must_stop(&self) -> bool {
        self.state.load(Ordering::Acquire) >= HALTED
    }

    /// Whether a consumer that wants `next` must stop waiting, and why.
    #[inline]
    pub(crate) fn consumer_stop(&self, next: i64) -> Option<Stop> {
        match self.state.load(Ordering::Acquire) {
            RUNNING | CLOSING => None,
            DRAINING => (next > self.drain_to.load(Ordering::Relaxed)).then_some(Stop::Drained),
            _ => Some(Stop::Halted),
        }
    }

    /// Whether consumers must stop at their next batch boundary.
    #[inline]
    pub(crate) fn is_halted(&self) -> bool {
        self.state.load(Ordering::Relaxed) >= HALTED
    }

    /// Whether the queue still accepts claims.
    #[inline]
    pub(crate) fn is_running(&self) -> bool {
        self.state.load(Ordering::Acquire) == RUNNING
    }

    /// Starts a close: `true` for the one caller that must compute and set the drain target.
    pub(crate) fn begin_close(&self) -> bool {
        self.state
            .compare_exchange(RUNNING, CLOSING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Publishes the drain target and moves to `DRAINING`, unless halted meanwhile.
    pub(crate) fn set_drain_target(&self, last: i64) {
        self.drain_to.store(last, Ordering::Relaxed);
        // Release: a consumer that sees DRAINING sees `drain_to`.
        let _ =
            self.state
                .compare_exchange(CLOSING, DRAINING, Ordering::Release, Ordering::Relaxed);
    }

    /// Halts: consumers stop at their next batch boundary, producers get `Err(Shutdown)`.
    pub(crate) fn halt(&self) {
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s < HALTED).then_some(HALTED)
            });
    }

    /// Fails the queue because `consumer` panicked at `sequence`; the first failure wins.
    pub(crate) fn fail(&self, consumer: &str, sequence: i64) {
        let mut slot = self.failure.lock().unwrap();
        if slot.is_none() {
            *slot = Some(Failure {
                consumer: consumer.to_owned(),
                sequence,
            });
        }
        drop(slot);
        // Release: whoever sees FAILED finds the failure recorded above.
        let _ = self
            .state
            .fetch_update(Ordering::Release, Ordering::Relaxed, |s| {
                (s != FAILED).then_some(FAILED)
            });
    }
}
