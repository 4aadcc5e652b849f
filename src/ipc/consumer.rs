//! A consumer stage of a cross-process ring: an entry in the segment's stage table, a barrier
//! over the producers or the stages it follows, and the in-process delivery loop
//! (`consume::deliver`).

use std::marker::PhantomData;
use std::sync::Arc;

use super::error::ShmError;
use super::process;
use super::ring::{self, Reader};
use super::segment::Segment;
use super::wait::IpcWaiter;
use crate::consume::deliver;
use crate::protocol::lifecycle::Stop;
use crate::protocol::table::{self, JoinError, ACTIVE};
use crate::protocol::wait::{WaitStrategy, Waited};
use crate::{EventHandler, PollState};

/// A consumer stage of a cross-process ring, attached by name: run it with a handler
/// ([`run`](Self::run), [`run_handler`](Self::run_handler)), or poll it from a loop you own
/// ([`poll`](Self::poll)). Dropping it detaches the stage (it stops gating the producers).
///
/// `Send`, not `Sync`: one thread consumes.
///
/// ```
/// # #[cfg(all(target_os = "linux", not(miri)))] {
/// use ringmq::ipc::{ShmOptions, ShmRing};
/// use ringmq::PollState;
/// # let path = std::env::temp_dir().join(format!("ringmq-doc-sc-{}", std::process::id()));
/// let ring = ShmRing::<u64>::create(&path, ShmOptions::single_producer(8))?;
/// let mut consumer = ring.consumer("sum")?;
/// let mut producer = ring.producer()?;
/// producer.publish_batch(3, |slot, i| *slot = i as u64 + 1)?;
/// let mut sum = 0;
/// assert_eq!(consumer.poll(|n, _seq, _end| { sum += n; true }), PollState::Processed(3));
/// assert_eq!(sum, 6);
/// assert_eq!(consumer.poll(|_, _, _| true), PollState::Idle);
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ShmConsumer<E: 'static> {
    /// What it reads through, addresses computed once (see `Reader`); borrows from `segment`
    /// and `waiter`, which this handle holds as long as it.
    reader: Reader<'static, E>,
    segment: Arc<Segment>,
    waiter: Arc<IpcWaiter>,
    index: usize,
    generation: u32,
    name: String,
    /// The stages followed, with the generation each held when this one joined; an entry that
    /// left (or was reused) is dropped from the list. Empty: the producers.
    upstream: Vec<(usize, u32)>,
    /// The last sequence before this stage's first.
    first: i64,
    /// The next sequence to handle.
    next: i64,
    _event: PhantomData<fn() -> E>,
    _not_sync: PhantomData<std::cell::Cell<()>>,
}

impl<E: bytemuck::Pod + Send + Sync> ShmConsumer<E> {
    pub(super) fn attach(
        segment: Arc<Segment>,
        waiter: Arc<IpcWaiter>,
        name: &str,
        after: &[&str],
    ) -> Result<Self, ShmError> {
        if !segment.control().phase.is_running() {
            return Err(ShmError::Closed);
        }
        let stages = segment.stages();
        let mut upstream = Vec::new();
        let mut mask = 0u64;
        for wanted in after {
            let found = stages
                .iter()
                .enumerate()
                .find(|(_, s)| s.state() == ACTIVE && s.name() == *wanted);
            match found {
                Some((i, s)) => {
                    upstream.push((i, s.generation()));
                    mask |= 1 << i;
                }
                None => {
                    return Err(ShmError::UnknownStage {
                        name: (*wanted).to_owned(),
                    })
                }
            }
        }
        let joined = table::join(
            stages,
            name,
            mask,
            process::me_cached(),
            process::now_ns(),
            || ring::join_bound(&segment),
        )
        .map_err(|JoinError::Full| ShmError::StagesFull {
            stages: stages.len(),
        })?;
        ring::settle_no_stage(&segment, &waiter);
        // Miri: `ipc::tests::two_views_of_one_segment_hand_events_over`.
        // SAFETY: both point into `Arc` allocations this handle keeps (its fields) for as long
        // as `reader`, which is private and lends them out only for a call; neither moves.
        let (seg, wait): (&'static Segment, &'static IpcWaiter) =
            unsafe { (&*Arc::as_ptr(&segment), &*Arc::as_ptr(&waiter)) };
        Ok(Self {
            reader: Reader::new(seg, wait, joined.index),
            segment,
            waiter,
            index: joined.index,
            generation: joined.generation,
            name: name.to_owned(),
            upstream,
            first: joined.start,
            next: joined.start + 1,
            _event: PhantomData,
            _not_sync: PhantomData,
        })
    }

    /// The stage's name.
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-name-{}", std::process::id()));
    /// # let ring = ringmq::ipc::ShmRing::<u64>::create(&path, ringmq::ipc::ShmOptions::single_producer(8))?;
    /// let consumer = ring.consumer("audit")?;
    /// assert_eq!(consumer.name(), "audit");
    /// # }
    /// # Ok::<(), ringmq::ipc::ShmError>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The last sequence handled (`first_sequence() - 1` before the first).
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-seq-{}", std::process::id()));
    /// # let ring = ringmq::ipc::ShmRing::<u64>::create(&path, ringmq::ipc::ShmOptions::single_producer(8))?;
    /// let consumer = ring.consumer("audit")?;
    /// assert_eq!(consumer.sequence(), -1);
    /// # }
    /// # Ok::<(), ringmq::ipc::ShmError>(())
    /// ```
    pub fn sequence(&self) -> i64 {
        self.next - 1
    }

    /// The first sequence this stage sees: the first published after it joined.
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-first-{}", std::process::id()));
    /// # let ring = ringmq::ipc::ShmRing::<u64>::create(&path, ringmq::ipc::ShmOptions::single_producer(8))?;
    /// let early = ring.consumer("early")?;
    /// let mut producer = ring.producer()?;
    /// producer.publish(|e| *e = 1)?;
    /// let late = ring.consumer("late")?;
    /// assert_eq!((early.first_sequence(), late.first_sequence()), (0, 1));
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn first_sequence(&self) -> i64 {
        self.first + 1
    }

    /// The highest sequence this stage may read now (`next - 1` if none): the producers'
    /// published sequences, or the slowest of the upstream stages still live (an upstream
    /// stage that left or was evicted is passed over; with none left, the producers).
    #[inline]
    fn available(&self) -> i64 {
        if self.upstream.is_empty() {
            return self.reader.highest_published(self.next);
        }
        let stages = self.reader.stages;
        let mut min = i64::MAX;
        for &(index, generation) in &self.upstream {
            let entry = &stages[index];
            if entry.state() == ACTIVE && entry.generation() == generation {
                min = min.min(entry.sequence.get());
            }
        }
        if min == i64::MAX {
            self.reader.highest_published(self.next)
        } else {
            min
        }
    }

    /// Why this stage must stop waiting for `next`, if it must: the ring drained (or halted),
    /// or this stage's entry is no longer its own.
    fn stop(&self) -> Option<Stop> {
        let entry = self.reader.own;
        if entry.state() != ACTIVE || entry.generation() != self.generation {
            return Some(Stop::Halted);
        }
        self.reader.phase.consumer_stop(self.next)
    }

    /// Hands `self.next..=last` to `f`; stops after the event for which `f` says `false`.
    /// Releases what was handled (and the skipped slots passed). Returns how many were handed
    /// over.
    fn hand_over(&mut self, last: i64, mut f: impl FnMut(&E, i64, bool) -> bool) -> usize {
        let mut handed = 0usize;
        let mut done = self.next - 1;
        let stopped = deliver(&self.reader, self.next, last, |slots, seq, end| {
            // SAFETY: `seq` is published (the barrier's Acquire) and not yet released by this
            // stage (its sequence is below `seq`); cross-process stages only read. Tests:
            // tests/ipc.rs; miri: `ipc::tests::two_views_of_one_segment_hand_events_over`.
            let more = unsafe { slots.read(seq, |e| f(e, seq, end)) };
            handed += 1;
            done = seq;
            if more {
                Ok(())
            } else {
                Err(())
            }
        })
        .is_err();
        let released = if stopped { done } else { last };
        self.next = released + 1;
        self.reader.own.sequence.set(released);
        if self.reader.blocking {
            self.waiter.notify();
        }
        handed
    }

    /// Hands every available event to `f(event, sequence, end_of_batch)` until `f` returns
    /// `false` (that event is the last handed over), then releases them. Does not wait.
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # use ringmq::{ipc::{ShmOptions, ShmRing}, PollState};
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-poll-{}", std::process::id()));
    /// let ring = ShmRing::<u64>::create(&path, ShmOptions::single_producer(8))?;
    /// let mut consumer = ring.consumer("c")?;
    /// let mut producer = ring.producer()?;
    /// producer.publish_batch(4, |slot, i| *slot = i as u64)?;
    /// // Take two, leave two.
    /// assert_eq!(consumer.poll(|_, seq, _| seq < 1), PollState::Processed(2));
    /// assert_eq!(consumer.poll(|_, _, _| true), PollState::Processed(2));
    /// drop(producer);
    /// assert_eq!(consumer.poll(|_, _, _| true), PollState::Closed);
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn poll(&mut self, f: impl FnMut(&E, i64, bool) -> bool) -> PollState {
        let available = self.available();
        if available < self.next {
            if self.stop().is_some() {
                return PollState::Closed;
            }
            if !self.upstream.is_empty() && self.reader.highest_published(self.next) >= self.next {
                return PollState::Gated;
            }
            return PollState::Idle;
        }
        match self.hand_over(available, f) {
            0 => PollState::Idle,
            n => PollState::Processed(n),
        }
    }

    /// Waits (by the ring's [`IpcWait`](super::IpcWait)) for events and hands each to
    /// `f(event, sequence, end_of_batch)`, until the ring is closed and drained; returns how
    /// many it handled. The same closure as [`Consumer::new`](crate::Consumer::new)'s.
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # use ringmq::ipc::{ShmOptions, ShmRing};
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-run-{}", std::process::id()));
    /// let ring = ShmRing::<u64>::create(&path, ShmOptions::single_producer(8))?;
    /// let mut consumer = ring.consumer("c")?;
    /// let mut producer = ring.producer()?;
    /// producer.publish_batch(5, |slot, i| *slot = i as u64)?;
    /// drop(producer);
    /// let mut total = 0;
    /// assert_eq!(consumer.run(|n: &u64, _, _| total += n), 5);
    /// assert_eq!(total, 10);
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run(&mut self, mut f: impl FnMut(&E, i64, bool)) -> u64 {
        let mut handled = 0u64;
        let waiter = self.waiter.clone();
        loop {
            let this = &*self;
            let waited = waiter.wait_until(
                || {
                    let available = this.available();
                    (available >= this.next).then_some(available)
                },
                || this.stop(),
                None,
            );
            match waited {
                Waited::Ready(available) => {
                    handled += self.hand_over(available, |e, seq, end| {
                        f(e, seq, end);
                        true
                    }) as u64;
                }
                Waited::Stopped(_) | Waited::TimedOut => return handled,
            }
        }
    }

    /// [`run`](Self::run) with an [`EventHandler`]: `on_start`, `on_event` for each event,
    /// `on_shutdown` once the ring is drained. Returns how many events it handled.
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # use ringmq::ipc::{ShmOptions, ShmRing};
    /// struct Count(u64);
    /// impl ringmq::EventHandler<u64> for Count {
    ///     fn on_event(&mut self, _: &u64, _: i64, _: bool) { self.0 += 1; }
    /// }
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-rh-{}", std::process::id()));
    /// let ring = ShmRing::<u64>::create(&path, ShmOptions::single_producer(8))?;
    /// let mut consumer = ring.consumer("count")?;
    /// let mut producer = ring.producer()?;
    /// producer.publish_batch(2, |slot, _| *slot = 0)?;
    /// drop(producer);
    /// assert_eq!(consumer.run_handler(Count(0)), 2);
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run_handler(&mut self, mut handler: impl EventHandler<E>) -> u64 {
        handler.on_start();
        let handled = self.run(|e, seq, end| handler.on_event(e, seq, end));
        handler.on_shutdown();
        handled
    }
}

impl<E: 'static> Drop for ShmConsumer<E> {
    fn drop(&mut self) {
        let stages = self.segment.stages();
        if table::begin_leave(stages, self.index, self.generation) {
            table::free(stages, self.index);
        }
        ring::settle_no_stage(&self.segment, &self.waiter);
    }
}

impl<E: 'static> std::fmt::Debug for ShmConsumer<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmConsumer")
            .field("name", &self.name)
            .field("next", &self.next)
            .finish()
    }
}
