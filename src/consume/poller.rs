//! Pollers: pull-based consumers for a thread the user owns.
//!
//! A poller is a stage without a thread: it has a sequence in the graph like any consumer (so it
//! gates producers and sees every event after its upstream), but events are handed over only when
//! its owner calls [`Poller::poll`], from a network loop, a game loop, a test. A poll looks at the
//! barrier once, hands every available event (up to a limit) to the closure, and stores the
//! poller's sequence once (`Release`), as the batch loop does.
//!
//! Dropping the poller removes its sequence from the gating set, so a poller that is no longer
//! polled can never hold producers back (if it was the last live stage, publishes are refused
//! with `NoConsumers` instead of waiting). A panic in the closure passed to `poll` reaches the
//! caller; the event it panicked on is not consumed, and the next poll hands it again.

use std::cell::Cell;
use std::marker::PhantomData;
use std::time::Duration;

use crate::protocol::barrier::Barrier;
use crate::protocol::sequence::Sequence;
use crate::protocol::sequencer::SequencerImpl;
use crate::protocol::wait::{task_waits, WaitStrategy, Waited};
use crate::protocol::wake::Lease;
use crate::sync::Arc;
use crate::tracker::Tracker;

/// How a dropped poller leaves the graph (given by the graph, which this layer does not know).
pub(crate) type Leave = Box<dyn FnOnce() + Send>;

/// What a call to [`Poller::poll`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollState {
    /// It handed this many events (at least one) to the closure.
    Processed(usize),
    /// Events are published, but the stages this poller comes after have not finished them yet.
    Gated,
    /// Nothing new is published.
    Idle,
    /// The queue is shut down and this poller has every event it will get (or it was halted).
    Closed,
}

/// A pull-based consumer: call [`poll`](Self::poll) from your own thread.
///
/// Made by [`Builder::add_poller`](crate::Builder::add_poller) (sees every event) or
/// [`Disruptor::add_poller`](crate::Disruptor::add_poller) (joins a running queue, from
/// [`first_sequence`](Self::first_sequence) on). `Send`, not `Sync`: one thread polls at a time.
/// Dropping it removes it from the gating set.
///
/// ```
/// use ringmq::{Builder, Consumer, PollState, Yielding};
///
/// let mut b = Builder::single_producer(16, || 0u64, Yielding)?;
/// let mut poller = b.add_poller(&[])?;
/// let (mut producer, queue) = b.build()?;
///
/// for i in 0..3 {
///     producer.publish(|slot| *slot = i * 10)?;
/// }
/// let mut seen = Vec::new();
/// let state = poller.poll(|event, _seq, _end_of_batch| {
///     seen.push(*event);
///     true // keep going
/// });
/// assert_eq!(state, PollState::Processed(3));
/// assert_eq!(seen, [0, 10, 20]);
/// assert_eq!(poller.poll(|_, _, _| true), PollState::Idle);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Poller<E, S, W> {
    barrier: Barrier<E, S, W>,
    sequence: Arc<Sequence>,
    /// The first sequence this poller sees.
    first: i64,
    /// Takes the poller out of the graph; run once, on drop.
    leave: Option<Leave>,
    /// A receipt for this poller's progress.
    tracker: Tracker,
    /// The waker slot this poller's async polls wait in (`protocol::wake`): leased at the first
    /// wait, given back on drop through `end_lease` (set where the bounds are known).
    lease: Lease,
    end_lease: fn(&crate::protocol::Core<E, S, W>, &Lease),
    /// This poller's counters; only the thread polling writes them (the poller is `!Sync`).
    counters: Arc<crate::consume::counters::StageCounters>,
    /// `Cell` is `Send` but not `Sync`.
    _not_sync: PhantomData<Cell<()>>,
}

impl<E, S: SequencerImpl, W: WaitStrategy> Poller<E, S, W> {
    pub(crate) fn new(
        barrier: Barrier<E, S, W>,
        sequence: Arc<Sequence>,
        first: i64,
        tracker: Tracker,
        leave: Leave,
        counters: Arc<crate::consume::counters::StageCounters>,
    ) -> Self {
        Self {
            barrier,
            sequence,
            first,
            leave: Some(leave),
            tracker,
            lease: Lease::default(),
            end_lease: |core, lease| lease.end(task_waits(&core.wait)),
            counters,
            _not_sync: PhantomData,
        }
    }

    /// Hands every available event to `f(event, sequence, end_of_batch)`, in order, until `f`
    /// returns `false` (that event counts as handled) or the events run out.
    ///
    /// ```
    /// # use ringmq::{Builder, PublishError, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(4, || 0u64, Yielding)?;
    /// # let mut poller = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// producer.publish(|e| *e = 5)?;
    /// let mut sum = 0;
    /// assert_eq!(poller.poll(|e, _seq, _end| { sum += *e; true }), ringmq::PollState::Processed(1));
    /// assert_eq!(sum, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll(&mut self, f: impl FnMut(&E, i64, bool) -> bool) -> PollState {
        self.poll_n(usize::MAX, f)
    }

    /// As [`poll`](Self::poll), handing at most `limit` events (a bounded slice of work in a
    /// loop that has other things to do).
    ///
    /// ```
    /// # use ringmq::{Builder, PublishError, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(4, || 0u64, Yielding)?;
    /// # let mut poller = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// producer.publish_batch(3, |e, i| *e = i as u64)?;
    /// assert_eq!(poller.poll_n(2, |_, _, _| true), ringmq::PollState::Processed(2));
    /// assert_eq!(poller.poll_n(2, |_, _, _| true), ringmq::PollState::Processed(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_n(&mut self, limit: usize, f: impl FnMut(&E, i64, bool) -> bool) -> PollState {
        self.poll_shared(limit, f)
    }

    /// [`poll_n`](Self::poll_n) through a shared borrow: nothing in a poll needs `&mut` (the
    /// public calls take it so that one poller is polled by one caller at a time, which the
    /// async futures keep by holding the `&mut`).
    pub(crate) fn poll_shared(
        &self,
        limit: usize,
        mut f: impl FnMut(&E, i64, bool) -> bool,
    ) -> PollState {
        let next = self.sequence.get_relaxed() + 1;
        let available = self.barrier.available(next);
        if available < next || limit == 0 {
            return self.why_nothing(next);
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let last = available.min(next.saturating_add(limit - 1));
        // Stores the last sequence passed on the way out, also if `f` unwinds.
        let mut done = Done {
            sequence: &self.sequence,
            last: next - 1,
        };
        let mut handled = 0;
        let stopped = super::deliver(&self.barrier.core.ring, next, last, |slots, seq, end| {
            handled += 1;
            // Loom: `dropping_a_poller_releases_a_blocked_producer`; miri: tests/delivery.rs
            // (pollers), tests/edges.rs, tests/panics.rs (abandoned slots).
            // SAFETY: `next..=last` is published (the barrier's Acquire) and not released (our
            // sequence is `next - 1` until `done` drops); `&E` only, no exclusive stage overlaps.
            let more = unsafe { slots.read(seq, |e| f(e, seq, end)) };
            done.last = seq;
            if more {
                Ok(())
            } else {
                Err(())
            }
        });
        if stopped.is_ok() {
            // Everything up to `last` was handed over or abandoned by its producer.
            done.last = last;
        }
        drop(done);
        self.barrier.core.wait.notify();
        if handled == 0 {
            // Everything available was a skipped slot: report it as idle.
            return PollState::Idle;
        }
        self.counters.shape(handled as i64, available - next + 1);
        PollState::Processed(handled)
    }

    /// As [`poll`](Self::poll), but first waits up to `timeout` (with the queue's wait strategy)
    /// for an event to be available. Returns [`PollState::Idle`] or [`PollState::Gated`] if none
    /// came in time.
    ///
    /// ```
    /// # use ringmq::{Builder, PublishError, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(4, || 0u64, Yielding)?;
    /// # let mut poller = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// // Nothing published: waits up to 1 ms, then says so.
    /// assert_eq!(poller.poll_timeout(Duration::from_millis(1), |_, _, _| true), ringmq::PollState::Idle);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_timeout(
        &mut self,
        timeout: Duration,
        f: impl FnMut(&E, i64, bool) -> bool,
    ) -> PollState {
        let next = self.sequence.get_relaxed() + 1;
        match self
            .barrier
            .wait_for(next, &self.barrier.core.wait, Some(timeout))
        {
            Waited::Ready(_) => self.poll(f),
            Waited::Stopped(_) => PollState::Closed,
            Waited::TimedOut => self.why_nothing(next),
        }
    }

    /// The last sequence this poller handled.
    ///
    /// ```
    /// # use ringmq::{Builder, PublishError, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(4, || 0u64, Yielding)?;
    /// # let mut poller = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// producer.publish(|e| *e = 1)?;
    /// poller.poll(|_, _, _| true);
    /// assert_eq!(poller.sequence(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sequence(&self) -> i64 {
        self.sequence.get_relaxed()
    }

    /// The first sequence this poller sees: 0 for a poller added to the builder, the one after
    /// the join point for one added to a running queue.
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// let mut b = Builder::single_producer(8, || 0u64, Yielding)?;
    /// let poller = b.add_poller(&[])?;
    /// assert_eq!(poller.first_sequence(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn first_sequence(&self) -> i64 {
        self.first
    }

    /// A [`Tracker`] of this poller's progress: the receipt for events it has to handle.
    ///
    /// ```
    /// # use ringmq::{Builder, Yielding};
    /// let mut b = Builder::single_producer(8, || 0u64, Yielding)?;
    /// let mut poller = b.add_poller(&[])?;
    /// let (mut producer, _queue) = b.build()?;
    /// let polled = poller.tracker();
    /// let seq = producer.publish(|e| *e = 1)?;
    /// assert!(!polled.is_processed(seq));
    /// poller.poll(|_, _, _| true);
    /// assert!(polled.is_processed(seq));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tracker(&self) -> Tracker {
        self.tracker.clone()
    }

    /// Hands every available event to `f` as [`poll`](Self::poll) does, awaiting events when
    /// none are available: resolves to [`PollState::Processed`] (how many `f` saw) or, once the
    /// queue has shut down and this poller drained it, [`PollState::Closed`]. Never `Idle` or
    /// `Gated`: those are what it awaits.
    ///
    /// Cancellation-safe: events are handed over and the poller's sequence stored within one
    /// `poll`; a dropped future consumed nothing beyond what `f` saw. Tasks sleep until a
    /// publish wakes them with a [`Blocking`](crate::Blocking) queue; with a polling strategy
    /// they re-poll through the executor.
    ///
    /// ```
    /// use ringmq::{Blocking, Builder, PollState};
    ///
    /// let mut b = Builder::single_producer(8, || 0u64, Blocking::new())?;
    /// let mut poller = b.add_poller(&[])?;
    /// let (mut producer, queue) = b.build()?;
    /// let feeder = std::thread::spawn(move || {
    ///     for i in 1..=5 {
    ///         producer.publish(|e| *e = i).unwrap();
    ///     }
    /// });
    /// let sum = futures_executor::block_on(async {
    ///     let mut sum = 0;
    ///     while let PollState::Processed(_) = poller.poll_async(|e, _, _| { sum += *e; true }).await {}
    ///     sum
    /// });
    /// assert_eq!(sum, 15);
    /// feeder.join().unwrap();
    /// # drop(poller); queue.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll_async<F: FnMut(&E, i64, bool) -> bool>(
        &mut self,
        f: F,
    ) -> crate::future::PollEvents<'_, E, S, W, F> {
        crate::future::PollEvents::new(self, f)
    }

    /// A [`Stream`](futures_core::Stream) of copies of the events, each with its sequence,
    /// awaiting them as [`poll_async`](Self::poll_async) does; it ends once the queue has shut
    /// down and this poller drained it. One event per item, so the poller's sequence (what
    /// producers wait on) moves at each.
    ///
    /// ```
    /// use ringmq::{Blocking, Builder};
    /// use futures_util::StreamExt;
    ///
    /// let mut b = Builder::single_producer(8, || 0u64, Blocking::new())?;
    /// let mut poller = b.add_poller(&[])?;
    /// let (mut producer, queue) = b.build()?;
    /// for i in 0..3 {
    ///     producer.publish(|e| *e = i * i)?;
    /// }
    /// drop(producer); // closes: the stream ends after the three
    /// let got: Vec<(i64, u64)> = futures_executor::block_on(poller.events().collect());
    /// assert_eq!(got, [(0, 0), (1, 1), (2, 4)]);
    /// # drop(poller); queue.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn events(&mut self) -> crate::future::Events<'_, E, S, W>
    where
        E: Copy,
    {
        crate::future::Events::new(self)
    }

    fn why_nothing(&self, next: i64) -> PollState {
        if self.barrier.stop(next).is_some() {
            PollState::Closed
        } else if self.barrier.is_first_stage() {
            // Nothing upstream to be gated by: what was not available was not published. (No
            // second look at the cursor: an idle poll in a loop would read its line twice.)
            PollState::Idle
        } else if self.barrier.published(next) {
            if self.barrier.available(next) >= next {
                // Became available since we looked: let the caller poll again.
                PollState::Idle
            } else {
                PollState::Gated
            }
        } else {
            PollState::Idle
        }
    }
}

/// Stores the poller's progress when dropped (normally or by unwinding).
struct Done<'a> {
    sequence: &'a Sequence,
    last: i64,
}

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.sequence.set(self.last);
    }
}

impl<E, S, W> Poller<E, S, W> {
    /// The queue's core, for the async futures' waker table.
    pub(crate) fn core(&self) -> &crate::protocol::Core<E, S, W> {
        &self.barrier.core
    }

    /// The waker slot its poll futures wait in.
    pub(crate) fn lease(&self) -> &Lease {
        &self.lease
    }
}

impl<E, S, W> Drop for Poller<E, S, W> {
    fn drop(&mut self) {
        (self.end_lease)(&self.barrier.core, &self.lease);
        // Not reading any more: leave the graph, so the gating set drops this sequence.
        self.barrier.control.leave();
        if let Some(leave) = self.leave.take() {
            leave();
        }
    }
}

impl<E, S, W> std::fmt::Debug for Poller<E, S, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poller")
            .field("sequence", &self.sequence.get_relaxed())
            .field("first", &self.first)
            .finish()
    }
}
