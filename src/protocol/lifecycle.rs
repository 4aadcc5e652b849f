//! The queue's lifecycle: running, draining to a known last sequence, halted, or failed.
//!
//! One state word, on its own cache line, read by consumers once per batch and on every wait step,
//! and by producers only when their claim is flagged: each change that refuses claims also flags
//! the one word a claim reads anyway (`SequencerImpl::refuse`: the single producer's limit, the
//! multi-producer counter), so a running queue's claims never read this one. It only moves
//! forward:
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
//!
//! Beside the phase, the word carries one flag, `NO_STAGE`: set while the queue has no live
//! stage (the last one was removed, or the last poller dropped), cleared when one joins. It
//! shares the word so that a flagged claim's one check (`check_open`: the word is exactly
//! `RUNNING`) covers it; only a refused claim looks at which bit it was.

use crossbeam_utils::CachePadded;

use crate::error::PublishError;
use crate::sync::{AtomicI64, AtomicUsize, Mutex, Ordering};

const RUNNING: usize = 0;
const CLOSING: usize = 1;
const DRAINING: usize = 2;
const HALTED: usize = 3;
const FAILED: usize = 4;
/// The bits of the word that hold the phase.
const PHASE: usize = 0b111;
/// Set while no stage is live: publishes are refused with [`PublishError::NoConsumers`].
const NO_STAGE: usize = 0b1000;

#[inline]
fn phase(word: usize) -> usize {
    word & PHASE
}

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
    /// The consumer thread's id within the queue (names need not be unique).
    pub(crate) worker: usize,
    pub(crate) sequence: i64,
    /// A stall the watchdog failed the queue over, rather than a panic.
    pub(crate) stalled: bool,
}

/// The lifecycle's words: the state and the drain target. Plain atomics with a fixed layout and
/// no pointer, so the same words can sit in a segment several processes map (`crate::ipc`),
/// where a failure has no record beside them.
#[repr(C)]
pub(crate) struct Phase {
    state: CachePadded<AtomicUsize>,
    drain_to: AtomicI64,
}

/// A queue's lifecycle: its [`Phase`] words, and the record of the handler panic that failed
/// it. Derefs to the words.
pub(crate) struct Lifecycle {
    phase: Phase,
    failure: Mutex<Option<Failure>>,
    /// Orders the panics of the queue's handlers (cold: taken only by a panic).
    tickets: AtomicUsize,
}

impl std::ops::Deref for Lifecycle {
    type Target = Phase;
    #[inline]
    fn deref(&self) -> &Phase {
        &self.phase
    }
}

impl Phase {
    pub(crate) fn new() -> Self {
        Self {
            state: CachePadded::new(AtomicUsize::new(RUNNING)),
            drain_to: AtomicI64::new(i64::MAX),
        }
    }

    /// Whether producers may claim: running, with a live stage. Relaxed: a close that
    /// happens-before this call is seen by coherence; one racing it is resolved by the sequencer
    /// (see `Sequencer::close`).
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        self.state.load(Ordering::Relaxed) == RUNNING
    }

    /// Whether a producer waiting for room must give up: the queue stopped running, or its
    /// last stage left (nobody would ever make room).
    #[inline]
    pub(crate) fn refuses_claims(&self) -> bool {
        self.state.load(Ordering::Acquire) != RUNNING
    }

    /// The error a producer gets once the queue refuses claims, where no failure is recorded
    /// (a failed phase reads as `Shutdown`).
    #[cold]
    pub(crate) fn refusal(&self) -> PublishError {
        if self.state.load(Ordering::Acquire) & (PHASE | NO_STAGE) == RUNNING | NO_STAGE {
            PublishError::NoConsumers
        } else {
            PublishError::Shutdown
        }
    }

    /// Whether a consumer that wants `next` must stop waiting, and why.
    #[inline]
    pub(crate) fn consumer_stop(&self, next: i64) -> Option<Stop> {
        match phase(self.state.load(Ordering::Acquire)) {
            RUNNING | CLOSING => None,
            DRAINING => (next > self.drain_to.load(Ordering::Relaxed)).then_some(Stop::Drained),
            _ => Some(Stop::Halted),
        }
    }

    /// Whether consumers must stop at their next batch boundary.
    #[inline]
    pub(crate) fn is_halted(&self) -> bool {
        phase(self.state.load(Ordering::Relaxed)) >= HALTED
    }

    /// Whether the queue is running (not closed, halted or failed), with or without a stage.
    #[inline]
    pub(crate) fn is_running(&self) -> bool {
        phase(self.state.load(Ordering::Acquire)) == RUNNING
    }

    /// Whether the queue has no live stage.
    pub(crate) fn has_no_stage(&self) -> bool {
        self.state.load(Ordering::Acquire) & NO_STAGE != 0
    }

    /// Records whether the queue has a live stage. Relaxed: the flag guards no data; a producer
    /// waiting for room learns of it through the wait strategy's `notify`, which the caller
    /// runs after this store.
    pub(crate) fn set_no_stage(&self, none: bool) {
        if none {
            self.state.fetch_or(NO_STAGE, Ordering::Relaxed);
        } else {
            self.state.fetch_and(!NO_STAGE, Ordering::Relaxed);
        }
    }

    /// Moves the phase from `from` to `to`, keeping the flag; `false` if the phase was not
    /// `from` (nothing is read then, hence Relaxed on failure).
    fn advance(&self, from: impl Fn(usize) -> bool, to: usize, success: Ordering) -> bool {
        self.state
            .fetch_update(success, Ordering::Relaxed, |w| {
                from(phase(w)).then_some(w & !PHASE | to)
            })
            .is_ok()
    }

    /// Starts a close: `true` for the one caller that must compute and set the drain target.
    pub(crate) fn begin_close(&self) -> bool {
        self.advance(|p| p == RUNNING, CLOSING, Ordering::AcqRel)
    }

    /// Publishes the drain target and moves to `DRAINING`, unless halted meanwhile.
    pub(crate) fn set_drain_target(&self, last: i64) {
        self.drain_to.store(last, Ordering::Relaxed);
        // Release: a consumer that sees DRAINING sees `drain_to`.
        self.advance(|p| p == CLOSING, DRAINING, Ordering::Release);
    }

    /// The drain target set by a close (`i64::MAX` until then).
    #[cfg(all(test, loom))]
    pub(crate) fn drain_target(&self) -> i64 {
        self.drain_to.load(Ordering::Relaxed)
    }

    /// Halts: consumers stop at their next batch boundary, producers get `Err(Shutdown)`.
    pub(crate) fn halt(&self) {
        self.advance(|p| p < HALTED, HALTED, Ordering::AcqRel);
    }

    /// Moves to `FAILED`. Release: whoever sees it finds the failure recorded before.
    fn mark_failed(&self) {
        self.advance(|p| p != FAILED, FAILED, Ordering::Release);
    }

    /// Whether the queue failed.
    fn is_failed(&self) -> bool {
        phase(self.state.load(Ordering::Acquire)) == FAILED
    }
}

impl Lifecycle {
    pub(crate) fn new() -> Self {
        Self {
            phase: Phase::new(),
            failure: Mutex::new(None),
            tickets: AtomicUsize::new(0),
        }
    }

    /// `Ok` while producers may claim, else the error a claim returns.
    #[inline]
    pub(crate) fn check_open(&self) -> Result<(), PublishError> {
        if self.is_open() {
            Ok(())
        } else {
            Err(self.publish_error())
        }
    }

    /// The error a producer gets once the queue refuses claims.
    #[cold]
    pub(crate) fn publish_error(&self) -> PublishError {
        if self.is_failed() {
            if let Some(f) = self.failure.lock().unwrap().as_ref() {
                return if f.stalled {
                    PublishError::ConsumerStalled {
                        consumer: f.consumer.clone(),
                        sequence: f.sequence,
                    }
                } else {
                    PublishError::ConsumerFailed {
                        consumer: f.consumer.clone(),
                        sequence: f.sequence,
                    }
                };
            }
        }
        self.refusal()
    }

    /// Fails the queue because `consumer` (thread `worker`) panicked at `sequence`; the first
    /// failure wins, and is the one producers and `shutdown()` both report.
    pub(crate) fn fail(&self, consumer: &str, worker: usize, sequence: i64) {
        self.fail_as(consumer, worker, sequence, false);
    }

    /// As [`fail`](Self::fail), for a stall (`stalled`) or a panic.
    pub(crate) fn fail_as(&self, consumer: &str, worker: usize, sequence: i64, stalled: bool) {
        let mut slot = self.failure.lock().unwrap();
        if slot.is_none() {
            *slot = Some(Failure {
                consumer: consumer.to_owned(),
                worker,
                sequence,
                stalled,
            });
        }
        drop(slot);
        self.mark_failed();
    }

    /// The failure that failed the queue, if one did.
    pub(crate) fn failure(&self) -> Option<Failure> {
        self.failure.lock().unwrap().clone()
    }

    /// The next panic's place in the order of the queue's panics.
    pub(crate) fn ticket(&self) -> usize {
        // Relaxed: only the order matters, and the counter's modification order gives it.
        self.tickets.fetch_add(1, Ordering::Relaxed)
    }
}
