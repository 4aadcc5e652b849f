//! Sequencers: how producers claim sequences and publish them, single or multi producer.
//!
//! The rest of the queue is generic over the sequencer, so single and multi producer share one
//! builder, one barrier and one consumer loop; only claim and publish differ. Each algorithm has
//! a file of its own ([`single`], [`multi`]); this one holds what they share: the trait, the
//! claim's context and the wait for room.
//!
//! A claim sees nothing of the queue but a [`ClaimContext`]: its sequencer, the capacity, the
//! lifecycle, the gating set and the wait strategy. The sequencer keeps no pointer of its own either; its state
//! is counters and per-slot stamps, so the same code can run over memory that is not one
//! process's heap.
//!
//! # Closing
//! Closing must name the last sequence consumers drain to, such that every publish that
//! returned `Ok` is at or below it. The multi-producer sequencer sets a mark bit in the claim
//! counter with `fetch_or`, as crossbeam-channel's array flavor does with its tail: a claim that
//! got a sequence before the mark is drained (its producer will publish it), a claim after it sees
//! the mark and fails, so a publish racing `shutdown()` is either drained or refused, never lost.
//! The single producer's claim has no shared counter to mark, and no fence either. Before it loads
//! its limit it *announces* the last sequence of its claim (one plain store on its own line, the
//! only store a claim adds to the publish path); a claim that ends without publishing (refused,
//! full, timed out) takes the announcement back with `Release`. The closer sets the lifecycle to
//! closing, poisons the limit, runs the heavy side of an asymmetric fence (`protocol::fence`:
//! `membarrier` on Linux), then waits until the cursor reaches the announced sequence and takes
//! that cursor as the drain target. After the barrier either the closer sees the announcement
//! (and waits for its publish, which the target then covers) or the producer's load of the limit
//! sees the poison (and its slow path sees the close and publishes nothing). Either way a publish
//! that returned `Ok` is drained; one racing the close may fail with `Shutdown`, never vanish.
//! Without `membarrier` the limit stays poisoned, so every claim takes the slow path, which
//! starts with a real SeqCst fence.
//!
//! [`publish`]: crate::Producer::publish
//! [`try_publish`]: crate::Producer::try_publish

use std::time::Instant;

use crate::error::PublishError;
use crate::protocol::lifecycle::Phase;
use crate::protocol::wait::{WaitStrategy, Waited};
use crate::sync::Ordering;

#[cfg(all(test, loom))]
mod models;
pub(crate) mod multi;
pub(crate) mod single;

pub use multi::Multi;
pub use single::Single;

/// How a claim waits for room.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    /// Until there is room (or the queue stops).
    Block,
    /// Not at all: `Err(Full)`.
    Try,
    /// Until the deadline: `Err(Timeout)`. `None` under loom, where time does not pass.
    Until(Option<Instant>),
}

/// What a claim needs to know of the queue besides its sequencer: the narrow context that lets
/// the sequencers stand apart from the queue that holds them (and from its `Arc`, its threads
/// and its graph). Implemented by the queue's core; a claim reads it only off its fast path.
pub(crate) trait ClaimContext {
    /// The sequencer claims are made from.
    type Sequencer;
    /// The strategy producers wait for room with.
    type Wait: WaitStrategy;
    /// The ordering of a multi-producer claim's successful CAS. `Relaxed` in one process (the
    /// claim orders nothing by itself); `Release` across processes, where whoever repairs a dead
    /// producer's claim must see the announcement made before it (`crate::ipc`).
    const CLAIM_ORDER: Ordering = Ordering::Relaxed;
    /// The sequencer itself. (A claim takes it from here rather than as a second argument: its
    /// fields are then addressed from the one pointer the claim gets, as the hot path wants.)
    fn sequencer(&self) -> &Self::Sequencer;
    /// The ring's capacity.
    fn capacity(&self) -> i64;
    /// The queue's lifecycle words: read by a claim only when flagged (see the module docs).
    fn phase(&self) -> &Phase;
    /// The error a refused claim returns.
    fn publish_error(&self) -> PublishError;
    /// The slowest gating consumer's sequence (`i64::MAX` if none gates): a claim must not lap
    /// it. `Acquire` on each sequence read.
    fn gating_minimum(&self) -> i64;
    /// How to wait for room.
    fn wait(&self) -> &Self::Wait;
    /// A multi-producer claim is about to take `first..first + n` from the claim counter: where
    /// a claim may die with its process, it records the range first, so that a survivor can
    /// repair it. Nothing in one process.
    /// A claim found the ring full (`waited`: how long it then waited, if it did): for the
    /// producer-side counters. Nothing across processes.
    #[inline]
    fn found_full(&self, waited: Option<std::time::Duration>) {
        let _ = waited;
    }
    #[inline]
    fn announce(&self, first: i64, n: i64) {
        let _ = (first, n);
    }
}

/// A producer handle's own claim state, kept outside the shared sequencer: the last sequence it
/// claimed and, for the single producer, its room cache (the multi producer shares its cache in
/// the sequencer and uses neither).
#[derive(Debug)]
pub(crate) struct LocalClaim {
    pub(crate) claimed: i64,
    /// The cached gating minimum plus the capacity: claims up to it have room. May be stale
    /// (too low), never too high: consumer sequences only grow, and a stage that joins starts
    /// at or above it (see the gating module).
    pub(crate) limit: i64,
}

impl LocalClaim {
    pub(crate) fn new() -> Self {
        Self {
            claimed: crate::protocol::sequence::INITIAL,
            // Too low is safe (the first claim past it reads the gating set); too high never is.
            limit: crate::protocol::sequence::INITIAL,
        }
    }
}

// The sealed trait's methods take crate-private types on purpose: nobody outside the crate can
// name the trait, let alone call them.
#[allow(private_interfaces, private_bounds)]
pub(crate) mod sealed {
    use super::*;

    /// The claim strategy behind [`Sequencer`](super::Sequencer); not for use outside the crate.
    pub trait SequencerImpl: Send + Sync + Sized + 'static {
        fn new(capacity: usize) -> Self;

        /// Claims `n` contiguous sequences and returns the first.
        fn claim<C: ClaimContext<Sequencer = Self>>(
            cx: &C,
            local: &mut LocalClaim,
            n: i64,
            mode: Mode,
        ) -> Result<i64, PublishError>;

        /// The lifecycle now refuses claims (the caller changed it first): make every claim
        /// from now on look at it. Called after each change that refuses claims.
        fn refuse(&self);

        /// Makes `lo..=hi` visible to consumers; the caller wrote every slot in it.
        fn publish(&self, lo: i64, hi: i64);

        /// The highest `s >= next - 1` such that all of `next..=s` is published, with `Acquire`.
        fn highest_published(&self, next: i64) -> i64;

        /// The highest claimed (multi) or published (single) sequence, for monitoring.
        fn cursor(&self) -> i64;

        /// Stops claims; returns the last sequence that consumers must drain to.
        fn close(&self) -> i64;

        /// Where a stage joining the running queue starts (it sees the sequences after it): the
        /// published cursor (single) or the last claimed sequence (multi). Read after the gating
        /// set's grace period, it is at or above every minimum any producer has cached (see the
        /// gating module).
        fn join_point(&self) -> i64;
    }
}

pub(crate) use sealed::SequencerImpl;

/// A claim strategy: [`Single`] or [`Multi`] producer. Sealed.
///
/// ```
/// fn kind<S: ringmq::Sequencer>() -> &'static str { std::any::type_name::<S>() }
/// assert!(kind::<ringmq::Single>().ends_with("Single"));
/// ```
pub trait Sequencer: SequencerImpl {}

/// Waits for the slowest gating consumer to reach `wrap`; returns the minimum it saw. Called
/// before any sequence is claimed, so the wait ends as soon as the queue refuses claims (stopped,
/// or no live stage left to make room).
#[inline]
fn wait_for_room<C: ClaimContext>(cx: &C, wrap: i64, mode: Mode) -> Result<i64, PublishError> {
    let ready = || {
        let min = cx.gating_minimum();
        (min >= wrap).then_some(min)
    };
    // With the `counters` feature, when the ring was first found full: `stop` is asked only
    // after `ready` said no, so a claim that finds room pays nothing, and the clock is read
    // only when the producer is about to wait anyway.
    #[cfg(feature = "counters")]
    let mut full_since = None;
    let stop = || {
        #[cfg(feature = "counters")]
        if full_since.is_none() {
            full_since = Some(crate::sync::now());
        }
        cx.phase().refuses_claims().then_some(())
    };
    let deadline = match mode {
        Mode::Try => {
            return match ready() {
                Some(min) => Ok(min),
                None => {
                    cx.found_full(None);
                    Err(PublishError::Full)
                }
            }
        }
        Mode::Block => None,
        Mode::Until(d) => d,
    };
    let waited = cx.wait().wait_until(ready, stop, deadline);
    #[cfg(feature = "counters")]
    if let Some(since) = full_since {
        cx.found_full(since.map(|s: std::time::Instant| s.elapsed()));
    }
    match waited {
        Waited::Ready(min) => Ok(min),
        Waited::Stopped(()) => Err(cx.publish_error()),
        Waited::TimedOut => Err(PublishError::Timeout),
    }
}
