//! The async edge: futures that await room, events or a receipt instead of blocking a thread.
//!
//! Made by [`Producer::publish_async`], [`Producer::publish_batch_async`],
//! [`Poller::poll_async`], [`Poller::events`] and [`Tracker::processed_async`]. They depend on no
//! runtime (any executor polls them: tokio, smol, futures' executors) and allocate nothing: a
//! future that must wait registers its waker in a slot of the queue's [`Blocking`] strategy (a
//! producer or poller leases one the first time it waits and keeps it until the handle drops; a
//! receipt future holds one while it waits), and the side that makes progress wakes it (the protocol is in the crate's `protocol::wake` module, with its
//! loom models). With a polling strategy ([`BusySpin`](crate::BusySpin),
//! [`Yielding`](crate::Yielding), [`Sleeping`](crate::Sleeping)) nobody wakes tasks, so a waiting
//! future wakes itself and re-polls through the executor: it works, and costs CPU as a spinning
//! thread does. Use [`Blocking`] for a queue with async participants; its consumers may still
//! spin ([`Consumer::wait_strategy`](crate::Consumer::wait_strategy)).
//!
//! # Cancellation
//! Every future here is cancellation-safe: dropping it at any await point loses nothing and
//! holds nothing.
//! - A publish future claims sequences only inside one `poll`, when the claim succeeds at once
//!   (a *try*-claim), and writes and publishes them before that `poll` returns. No claim is ever
//!   held across an await, so a dropped future leaves no claimed-but-unpublished slot (a hole
//!   that every consumer would wait on). Dropped before it completed, it published nothing and
//!   its closure was never called; wrap it in a timeout freely.
//! - A poll future hands events to its closure and stores the poller's sequence within one
//!   `poll`; dropped, it consumed nothing more than the closure saw.
//! - A receipt future only reads.
//!
//! Dropping a waiting future unregisters it (a receipt future also gives its slot back).
//!
//! [`Producer::publish_async`]: crate::Producer::publish_async
//! [`Producer::publish_batch_async`]: crate::Producer::publish_batch_async
//! [`Poller::poll_async`]: crate::Poller::poll_async
//! [`Poller::events`]: crate::Poller::events
//! [`Tracker::processed_async`]: crate::Tracker::processed_async
//! [`Blocking`]: crate::Blocking

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::consume::poller::{PollState, Poller};
use crate::error::{PublishError, TrackerError};
use crate::producer::Producer;
use crate::protocol::publish;
use crate::protocol::sequencer::{Mode, SequencerImpl};
use crate::protocol::wait::{task_waits, WaitStrategy};
use crate::protocol::wake::{poll_wait, Lease};
use crate::tracker::Tracker;

/// Publishes one event once there is room: [`Producer::publish_async`](crate::Producer::publish_async).
#[must_use = "futures do nothing unless awaited"]
pub struct Publish<'a, E, S, W: WaitStrategy, F> {
    producer: &'a mut Producer<E, S, W>,
    write: Option<F>,
}

impl<'a, E, S: SequencerImpl, W: WaitStrategy, F: FnOnce(&mut E)> Publish<'a, E, S, W, F> {
    pub(crate) fn new(producer: &'a mut Producer<E, S, W>, write: F) -> Self {
        Self {
            producer,
            write: Some(write),
        }
    }
}

// Never pinned structurally: the closure is moved out by value, never through a `Pin`.
impl<E, S: SequencerImpl, W: WaitStrategy, F> Unpin for Publish<'_, E, S, W, F> {}

impl<E, S: SequencerImpl, W: WaitStrategy, F: FnOnce(&mut E)> Future for Publish<'_, E, S, W, F> {
    type Output = Result<i64, PublishError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let (core, local, lease) = this.producer.parts();
        let write = &mut this.write;
        poll_wait(task_waits(&core.wait), lease, cx, || {
            // A try-claim: it succeeds only when it can be published at once (below, in this
            // same poll), so no claim outlives this call.
            match publish::claim(core, local, 1, Mode::Try) {
                Ok(claim) => {
                    let write = write.take().expect("`Publish` polled after it completed");
                    Some(Ok(publish::write_one(core, claim, write)))
                }
                Err(PublishError::Full) => None,
                Err(e) => Some(Err(e)),
            }
        })
    }
}

impl<E, S, W: WaitStrategy, F> Drop for Publish<'_, E, S, W, F> {
    fn drop(&mut self) {
        // Cancelled mid-wait (or done): the slot stays the producer's, unarmed.
        let (core, _, lease) = self.producer.parts();
        lease.disarm(task_waits(&core.wait));
    }
}

impl<E, S: SequencerImpl, W: WaitStrategy, F> std::fmt::Debug for Publish<'_, E, S, W, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publish")
            .field("done", &self.write.is_none())
            .finish()
    }
}

/// Publishes `n` events once there is room for all of them:
/// [`Producer::publish_batch_async`](crate::Producer::publish_batch_async).
#[must_use = "futures do nothing unless awaited"]
pub struct PublishBatch<'a, E, S, W: WaitStrategy, F> {
    producer: &'a mut Producer<E, S, W>,
    n: usize,
    write: F,
    done: bool,
}

impl<'a, E, S: SequencerImpl, W: WaitStrategy, F: FnMut(&mut E, usize)>
    PublishBatch<'a, E, S, W, F>
{
    pub(crate) fn new(producer: &'a mut Producer<E, S, W>, n: usize, write: F) -> Self {
        Self {
            producer,
            n,
            write,
            done: false,
        }
    }
}

// Never pinned structurally: the closure is only called through `&mut`.
impl<E, S: SequencerImpl, W: WaitStrategy, F> Unpin for PublishBatch<'_, E, S, W, F> {}

impl<E, S: SequencerImpl, W: WaitStrategy, F: FnMut(&mut E, usize)> Future
    for PublishBatch<'_, E, S, W, F>
{
    type Output = Result<Range<i64>, PublishError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        assert!(!this.done, "`PublishBatch` polled after it completed");
        let n = this.n;
        let write = &mut this.write;
        let (core, local, lease) = this.producer.parts();
        let result = poll_wait(task_waits(&core.wait), lease, cx, || {
            // The same try-claim as `Publish`: all `n` claimed, written and published in this
            // poll, or nothing claimed.
            match crate::producer::batch(core, local, n, Mode::Try, &mut *write) {
                Err(PublishError::Full) => None,
                other => Some(other),
            }
        });
        if result.is_ready() {
            this.done = true;
        }
        result
    }
}

impl<E, S, W: WaitStrategy, F> Drop for PublishBatch<'_, E, S, W, F> {
    fn drop(&mut self) {
        let (core, _, lease) = self.producer.parts();
        lease.disarm(task_waits(&core.wait));
    }
}

impl<E, S: SequencerImpl, W: WaitStrategy, F> std::fmt::Debug for PublishBatch<'_, E, S, W, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishBatch")
            .field("n", &self.n)
            .field("done", &self.done)
            .finish()
    }
}

/// Hands the next available events to a closure, awaiting them if none are available:
/// [`Poller::poll_async`](crate::Poller::poll_async).
#[must_use = "futures do nothing unless awaited"]
pub struct PollEvents<'a, E, S, W: WaitStrategy, F> {
    poller: &'a mut Poller<E, S, W>,
    handle: F,
}

impl<'a, E, S: SequencerImpl, W: WaitStrategy, F> PollEvents<'a, E, S, W, F> {
    pub(crate) fn new(poller: &'a mut Poller<E, S, W>, handle: F) -> Self {
        Self { poller, handle }
    }
}

// Never pinned structurally: the closure is only called through `&mut`.
impl<E, S: SequencerImpl, W: WaitStrategy, F> Unpin for PollEvents<'_, E, S, W, F> {}

impl<E, S: SequencerImpl, W: WaitStrategy, F: FnMut(&E, i64, bool) -> bool> Future
    for PollEvents<'_, E, S, W, F>
{
    type Output = PollState;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<PollState> {
        let this = self.get_mut();
        let poller = &*this.poller;
        let handle = &mut this.handle;
        poll_wait(task_waits(&poller.core().wait), poller.lease(), cx, || {
            match poller.poll_shared(usize::MAX, &mut *handle) {
                state @ (PollState::Processed(_) | PollState::Closed) => Some(state),
                // Idle (nothing published, or only skipped slots) or gated upstream: wait.
                PollState::Idle | PollState::Gated => None,
            }
        })
    }
}

impl<E, S, W: WaitStrategy, F> Drop for PollEvents<'_, E, S, W, F> {
    fn drop(&mut self) {
        self.poller
            .lease()
            .disarm(task_waits(&self.poller.core().wait));
    }
}

impl<E, S: SequencerImpl, W: WaitStrategy, F> std::fmt::Debug for PollEvents<'_, E, S, W, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollEvents")
            .field("poller", &self.poller)
            .finish()
    }
}

/// A [`Stream`](futures_core::Stream) of copies of the events a poller sees, each with its
/// sequence, ending when the queue has shut down and the poller drained it:
/// [`Poller::events`](crate::Poller::events).
#[must_use = "streams do nothing unless polled"]
pub struct Events<'a, E, S, W: WaitStrategy> {
    poller: &'a mut Poller<E, S, W>,
    ended: bool,
}

impl<'a, E, S: SequencerImpl, W: WaitStrategy> Events<'a, E, S, W> {
    pub(crate) fn new(poller: &'a mut Poller<E, S, W>) -> Self {
        Self {
            poller,
            ended: false,
        }
    }
}

impl<E: Copy, S: SequencerImpl, W: WaitStrategy> futures_core::Stream for Events<'_, E, S, W> {
    type Item = (i64, E);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<(i64, E)>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        let poller = &*this.poller;
        let next = poll_wait(task_waits(&poller.core().wait), poller.lease(), cx, || {
            let mut item = None;
            match poller.poll_shared(1, |e, seq, _| {
                item = Some((seq, *e));
                true
            }) {
                PollState::Processed(_) => Some(item),
                PollState::Closed => Some(None),
                PollState::Idle | PollState::Gated => None,
            }
        });
        if let Poll::Ready(None) = next {
            this.ended = true;
        }
        next
    }
}

impl<E, S: SequencerImpl, W: WaitStrategy> futures_core::FusedStream for Events<'_, E, S, W>
where
    E: Copy,
{
    fn is_terminated(&self) -> bool {
        self.ended
    }
}

impl<E, S, W: WaitStrategy> Drop for Events<'_, E, S, W> {
    fn drop(&mut self) {
        self.poller
            .lease()
            .disarm(task_waits(&self.poller.core().wait));
    }
}

impl<E, S: SequencerImpl, W: WaitStrategy> std::fmt::Debug for Events<'_, E, S, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("poller", &self.poller)
            .field("ended", &self.ended)
            .finish()
    }
}

/// Resolves once a stage (or the whole graph) has processed a sequence:
/// [`Tracker::processed_async`](crate::Tracker::processed_async).
#[must_use = "futures do nothing unless awaited"]
pub struct Processed<'a> {
    tracker: &'a Tracker,
    sequence: i64,
    lease: Lease,
}

impl<'a> Processed<'a> {
    pub(crate) fn new(tracker: &'a Tracker, sequence: i64) -> Self {
        Self {
            tracker,
            sequence,
            lease: Lease::default(),
        }
    }
}

impl Future for Processed<'_> {
    type Output = Result<(), TrackerError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let tracker = this.tracker;
        let sequence = this.sequence;
        poll_wait(tracker.task_waits(), &this.lease, cx, || {
            if tracker.is_processed(sequence) {
                Some(Ok(()))
            } else {
                tracker.stop_for(sequence).map(Err)
            }
        })
    }
}

impl Drop for Processed<'_> {
    fn drop(&mut self) {
        self.lease.end(self.tracker.task_waits());
    }
}

impl std::fmt::Debug for Processed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processed")
            .field("tracker", self.tracker)
            .field("sequence", &self.sequence)
            .finish()
    }
}
