//! Sequencers: how producers claim sequences and publish them, single or multi producer.
//!
//! The rest of the queue is generic over the sequencer, so single and multi producer share one
//! builder, one barrier and one consumer loop; only claim and publish differ.
//!
//! # Single producer ([`Single`])
//! One thread claims, so the claim is thread-local: the producer keeps the last claimed sequence
//! and a cached minimum of the gating sequences in its handle, and touches shared memory only to
//! publish (one `Release` store of the cursor). No read-modify-write on the claim path. The cached
//! minimum may be stale (too low), never too high, because consumer sequences only grow; the
//! producer rereads the gating set only when a claim would wrap past it.
//!
//! # Multi producer ([`Multi`])
//! Producers share a claim counter, "the next sequence to claim". Every claim (`publish`,
//! `try_publish`, the timed ones) is one loop: read the counter, check that the range it would
//! claim has room (against a shared cached minimum, rereading the gating set only when the
//! cache says no), and take the range with a CAS that backs off after losing a race. Room comes
//! *before* the claim, as in the LMAX `MultiProducerSequencer`: a producer never holds a claimed
//! sequence while it waits, so a claim is always published at once, and a producer waiting for
//! room leaves without a trace when the queue stops (nothing of it needs draining; the shutdown
//! of a queue whose only free-er of room is a poller nobody polls cannot wait on it).
//!
//! A claimed slot is published by storing its *lap* (`sequence >> log2(capacity)`) into the slot's
//! entry of the availability array, with `Release`. A consumer scans forward from the next
//! sequence it wants and stops at the first slot whose entry is not the expected lap, with
//! `Acquire`; so it never reads a claimed-but-unpublished slot, and sees the writes to every slot
//! it does read. The scan does not read the claim counter (a slot not yet published in this lap
//! holds the previous lap), so waiting consumers leave the producers' hottest line alone.
//! Producers publish out of order; consumers still see one total order.
//!
//! The minimum gating sequence is cached in a shared word; it is stored with `Release` after being
//! read with `Acquire`, so a producer that trusts another's cached value inherits its
//! happens-before with the consumers (it may overwrite the slots that value released).
//!
//! # Closing
//! Closing must name the last sequence consumers drain to, such that every publish that
//! returned `Ok` is at or below it. The multi-producer sequencer sets a mark bit in the claim
//! counter with `fetch_or`, as crossbeam-channel's array flavor does with its tail: a claim that
//! got a sequence before the mark is drained (its producer will publish it), a claim after it sees
//! the mark and fails, so a publish racing `shutdown()` is either drained or refused, never lost.
//! The single producer's claim has no shared counter to mark, and no fence either. Before it checks
//! the lifecycle it *announces* the last sequence of its claim (one plain store on a line only it
//! writes, and the only store a claim adds to the publish path); a claim that ends without
//! publishing (refused, full, timed out) takes the announcement back with `Release`. The closer
//! sets the lifecycle to closing, runs the heavy side of an asymmetric fence ([`crate::fence`]:
//! `membarrier` on Linux), then waits until the cursor reaches the announced sequence and takes
//! that cursor as the drain target. After the barrier either the closer sees the announcement (and
//! waits for its publish, which the target then covers) or the producer's check sees the close
//! (and it publishes nothing). Either way a publish that returned `Ok` is drained; one racing the
//! close may fail with `Shutdown`, never vanish.
//!
//! [`publish`]: crate::Producer::publish
//! [`try_publish`]: crate::Producer::try_publish

use std::cell::Cell;
use std::marker::PhantomData;
use std::time::Instant;

use crossbeam_utils::CachePadded;

use crate::error::PublishError;
use crate::sequence::{Sequence, INITIAL};
use crate::shared::Shared;
use crate::sync::{AtomicI32, AtomicI64, Backoff, Ordering};
use crate::wait::{WaitStrategy, Waited};

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

// The sealed trait's methods take crate-private types on purpose: nobody outside the crate can
// name the trait, let alone call them.
#[allow(private_interfaces)]
pub(crate) mod sealed {
    use super::*;

    /// The claim strategy behind [`Sequencer`](super::Sequencer); not for use outside the crate.
    pub trait SequencerImpl: Send + Sync + Sized + 'static {
        /// Producer-local claim state.
        type Local: Send;

        fn new(capacity: usize) -> Self;
        fn new_local(&self) -> Self::Local;

        /// Claims `n` contiguous sequences and returns the first.
        fn claim<E, W: WaitStrategy>(
            shared: &Shared<E, Self, W>,
            local: &mut Self::Local,
            n: i64,
            mode: Mode,
        ) -> Result<i64, PublishError>;

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

use sealed::SequencerImpl;

/// A claim strategy: [`Single`] or [`Multi`] producer. Sealed.
pub trait Sequencer: SequencerImpl {}

/// Waits for the slowest gating consumer to reach `wrap`; returns the minimum it saw. Called
/// before any sequence is claimed, so the wait ends as soon as the queue refuses claims (stopped,
/// or no live stage left to make room).
#[inline]
fn wait_for_room<E, S: SequencerImpl, W: WaitStrategy>(
    shared: &Shared<E, S, W>,
    wrap: i64,
    mode: Mode,
) -> Result<i64, PublishError> {
    let ready = || {
        let min = shared.gating.minimum(i64::MAX);
        (min >= wrap).then_some(min)
    };
    let stop = || shared.lifecycle.refuses_claims().then_some(());
    let deadline = match mode {
        Mode::Try => {
            return match ready() {
                Some(min) => Ok(min),
                None => Err(PublishError::Full),
            }
        }
        Mode::Block => None,
        Mode::Until(d) => d,
    };
    match shared.wait.wait_until(ready, stop, deadline) {
        Waited::Ready(min) => Ok(min),
        Waited::Stopped(()) => Err(shared.lifecycle.publish_error()),
        Waited::TimedOut => Err(PublishError::Timeout),
    }
}

/// The single-producer sequencer: claims are local to the one producer handle.
pub struct Single {
    cursor: Sequence,
    /// The last sequence the producer may publish: announced before its lifecycle check, so
    /// above the cursor exactly while a claim is between that check and its publish.
    announced: CachePadded<AtomicI64>,
    /// Whether the producer's side of the close handshake needs a real fence (no `membarrier`).
    fenced: bool,
}

impl Single {
    /// The cached minimum says `wrap` may not have room: wait for it (or give up, by `mode`),
    /// taking the announcement back if the claim ends here. Out of line, so the claim that
    /// finds room in its cache stays small enough to inline into every publish.
    #[cold]
    #[inline(never)]
    fn make_room<E, W: WaitStrategy>(
        shared: &Shared<E, Self, W>,
        published: i64,
        wrap: i64,
        mode: Mode,
    ) -> Result<i64, PublishError> {
        wait_for_room(shared, wrap, mode).inspect_err(|_| shared.sequencer.retract(published))
    }

    /// Ends a claim that publishes nothing (refused, full, timed out): `published` is the
    /// producer's last published sequence, at or below the cursor.
    #[cold]
    fn retract(&self, published: i64) {
        // Release: a closer that sees the retraction sees the cursor it is at or below.
        self.announced.store(published, Ordering::Release);
    }
}

/// The single producer's claim state: last claimed sequence and cached gating minimum.
#[doc(hidden)]
pub struct SingleLocal {
    claimed: i64,
    cached_min: i64,
    /// `Cell` is `Send` but not `Sync`: the single producer's handle can move, never be shared.
    _not_sync: PhantomData<Cell<()>>,
}

#[allow(private_interfaces)]
impl SequencerImpl for Single {
    type Local = SingleLocal;

    fn new(_capacity: usize) -> Self {
        Self {
            cursor: Sequence::new(INITIAL),
            announced: CachePadded::new(AtomicI64::new(INITIAL)),
            fenced: crate::fence::needs_real_fence(),
        }
    }

    fn new_local(&self) -> SingleLocal {
        SingleLocal {
            claimed: INITIAL,
            cached_min: INITIAL,
            _not_sync: PhantomData,
        }
    }

    #[inline]
    fn claim<E, W: WaitStrategy>(
        shared: &Shared<E, Self, W>,
        local: &mut SingleLocal,
        n: i64,
        mode: Mode,
    ) -> Result<i64, PublishError> {
        let this = &shared.sequencer;
        let last = local.claimed + n;
        // Relaxed, then the light fence: the close handshake (see the module docs) orders this
        // store before the lifecycle check below.
        this.announced.store(last, Ordering::Relaxed);
        crate::fence::light(this.fenced);
        if let Err(e) = shared.lifecycle.check_open() {
            this.retract(local.claimed);
            return Err(e);
        }
        let wrap = last - shared.ring.capacity();
        if wrap > local.cached_min {
            local.cached_min = Self::make_room(shared, local.claimed, wrap, mode)?;
        }
        let first = local.claimed + 1;
        local.claimed = last;
        Ok(first)
    }

    #[inline]
    fn publish(&self, _lo: i64, hi: i64) {
        self.cursor.set(hi);
    }

    #[inline]
    fn highest_published(&self, _next: i64) -> i64 {
        self.cursor.get()
    }

    fn cursor(&self) -> i64 {
        self.cursor.get_relaxed()
    }

    fn close(&self) -> i64 {
        // The lifecycle already says closing. The heavy fence orders that store before our loads
        // of `announced` against the producer's store of `announced` and its load of the
        // lifecycle.
        crate::fence::heavy();
        let backoff = Backoff::new();
        // Bounded by one publish: the producer either finishes the claim it is in, or sees the
        // close while waiting for room (the closer notified the wait strategy first) and
        // retracts. Acquire on both: the target covers every slot written up to it.
        loop {
            let announced = self.announced.load(Ordering::Acquire);
            let cursor = self.cursor.get();
            if cursor >= announced {
                return cursor;
            }
            backoff.snooze();
        }
    }

    fn join_point(&self) -> i64 {
        // Acquire: the consumer sequences any cached minimum came from are at or below it.
        self.cursor.get()
    }
}

impl Sequencer for Single {}

/// The claim counter's mark bit: set once the queue is closed.
const CLOSED: i64 = 1 << 62;

/// The multi-producer sequencer: a shared claim counter and per-slot availability.
pub struct Multi {
    /// The next sequence to claim, with [`CLOSED`] set once closed.
    next: CachePadded<AtomicI64>,
    /// A recent minimum of the gating sequences (a lower bound, never too high).
    cached_min: CachePadded<AtomicI64>,
    /// The claim counter's value when it was closed.
    closed_at: AtomicI64,
    /// Per slot, the lap of the last sequence published into it (`-1`: never).
    available: Box<[AtomicI32]>,
    mask: i64,
    shift: u32,
}

impl Multi {
    #[inline]
    fn lap(&self, sequence: i64) -> i32 {
        // Wraps after 2^32 laps; a slot only ever holds its current lap or the one before, which
        // differ modulo 2^32.
        (sequence >> self.shift) as i32
    }

    #[inline]
    fn entry(&self, sequence: i64) -> &AtomicI32 {
        &self.available[(sequence & self.mask) as usize]
    }

    /// The cached minimum says `wrap` may not have room: reread the gating set, and wait for room
    /// (or give up, by `mode`) if there is none, holding no claim. Caches what it saw (Release,
    /// see the module docs); the caller then checks the counter again.
    #[cold]
    #[inline(never)]
    fn make_room<E, W: WaitStrategy>(
        shared: &Shared<E, Self, W>,
        wrap: i64,
        mode: Mode,
    ) -> Result<(), PublishError> {
        let mut min = shared.gating.minimum(i64::MAX);
        if wrap > min {
            min = wait_for_room(shared, wrap, mode)?;
        }
        shared.sequencer.cached_min.store(min, Ordering::Release);
        Ok(())
    }
}

#[allow(private_interfaces)]
impl SequencerImpl for Multi {
    type Local = ();

    fn new(capacity: usize) -> Self {
        Self {
            next: CachePadded::new(AtomicI64::new(0)),
            cached_min: CachePadded::new(AtomicI64::new(INITIAL)),
            closed_at: AtomicI64::new(0),
            available: (0..capacity).map(|_| AtomicI32::new(-1)).collect(),
            mask: capacity as i64 - 1,
            shift: capacity.trailing_zeros(),
        }
    }

    fn new_local(&self) {}

    /// Room first, then the claim (see the module docs). The CAS backs off after losing a race
    /// rather than claiming with one `fetch_add`: under contention every `fetch_add` moves the
    /// counter's line to another core, while a producer that lost a CAS stays off the line for a
    /// moment and lets the winner claim again with the line still in its cache. Measured in the
    /// 3P-1C benchmark (3 producers on 2 cores, one event per publish): 12.6 M events/s with
    /// `fetch_add`, 36.0 with a backing-off CAS.
    #[inline]
    fn claim<E, W: WaitStrategy>(
        shared: &Shared<E, Self, W>,
        _local: &mut (),
        n: i64,
        mode: Mode,
    ) -> Result<i64, PublishError> {
        let this = &shared.sequencer;
        shared.lifecycle.check_open()?;
        let backoff = Backoff::new();
        // Relaxed: the claim orders nothing by itself; the room check below does (Acquire).
        let mut current = this.next.load(Ordering::Relaxed);
        loop {
            if current & CLOSED != 0 {
                return Err(shared.lifecycle.publish_error());
            }
            let wrap = current + n - 1 - shared.ring.capacity();
            // Acquire: inherit the happens-before of whoever cached this minimum (module docs).
            if wrap > this.cached_min.load(Ordering::Acquire) {
                // Out of line: the hot loop keeps only the cached check.
                Self::make_room(shared, wrap, mode)?;
                current = this.next.load(Ordering::Relaxed);
                continue;
            }
            match this.next.compare_exchange_weak(
                current,
                current + n,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(current),
                Err(actual) => {
                    current = actual;
                    backoff.spin();
                }
            }
        }
    }

    #[inline]
    fn publish(&self, lo: i64, hi: i64) {
        for s in lo..hi + 1 {
            // Release: a consumer that sees the lap sees the slot's contents.
            self.entry(s).store(self.lap(s), Ordering::Release);
        }
    }

    #[inline]
    fn highest_published(&self, next: i64) -> i64 {
        // The scan needs no bound from the claim counter, which every producer writes on every
        // claim (reading it on each look would pull that line away from them): a slot not yet
        // published in this lap still holds the previous lap, so the scan stops at the first
        // unpublished sequence, and at most one ring ahead of `next`.
        let end = next + self.mask + 1;
        let mut s = next;
        // Acquire: a consumer that sees the lap sees the slot's contents.
        while s < end && self.entry(s).load(Ordering::Acquire) == self.lap(s) {
            s += 1;
        }
        s - 1
    }

    fn cursor(&self) -> i64 {
        let next = self.next.load(Ordering::Relaxed);
        if next & CLOSED != 0 {
            self.closed_at.load(Ordering::Relaxed) - 1
        } else {
            next - 1
        }
    }

    fn close(&self) -> i64 {
        // Every claim ordered before this in the counter's modification order is below the
        // target and will be published; every claim after it sees the mark and fails.
        let next = self.next.fetch_or(CLOSED, Ordering::AcqRel) & !CLOSED;
        self.closed_at.store(next, Ordering::Relaxed);
        next - 1
    }

    fn join_point(&self) -> i64 {
        // Acquire: ordered after the grace period's synchronization like every load after it;
        // the counter is at or above every published, hence every consumed, sequence.
        (self.next.load(Ordering::Acquire) & !CLOSED) - 1
    }
}

impl Sequencer for Multi {}
