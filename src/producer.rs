//! Producer handles: claim slots, write events in place, publish them.
//!
//! Every publish is three steps: *claim* sequences from the sequencer (waiting for room if the ring
//! is full: backpressure, never an overwrite), *write* each claimed slot through the caller's
//! closure, *publish* the range so consumers may read it.
//!
//! The write step runs user code while the producer holds a claim that consumers will wait for. A
//! drop guard ([`Publication`]) publishes the range in every case: normally after the last write,
//! or, if the closure panics, with the unwritten slots marked skipped, so consumers pass them
//! instead of waiting forever. The panic then continues to the caller.

use std::ops::Range;
use std::time::Duration;

use crate::error::PublishError;
use crate::sequencer::sealed::SequencerImpl;
use crate::sequencer::{Mode, Multi, Sequencer, Single};
use crate::shared::Shared;
use crate::sync::{Arc, Ordering};
use crate::wait::{Blocking, WaitStrategy};

/// A handle that publishes events into the ring.
///
/// Built by [`Builder::build`](crate::Builder::build). With the [`Single`] sequencer it is `Send`
/// but neither `Clone` nor `Sync` (one producer thread, no atomic read-modify-write when claiming);
/// with [`Multi`] it is `Clone`: give each producer thread its own clone.
///
/// Dropping the last handle closes the queue: consumers drain everything published and stop.
///
/// ```compile_fail
/// // The single producer cannot be cloned...
/// fn clone<T: Clone>() {}
/// clone::<ringmq::SingleProducer<u64>>();
/// ```
/// ```compile_fail
/// // ...nor shared between threads.
/// fn sync<T: Sync>() {}
/// sync::<ringmq::SingleProducer<u64>>();
/// ```
/// ```
/// // It can be moved to another thread; the multi producer can also be cloned.
/// fn send<T: Send>() {}
/// fn clone<T: Clone + Send>() {}
/// send::<ringmq::SingleProducer<u64>>();
/// clone::<ringmq::MultiProducer<u64>>();
/// ```
pub struct Producer<E, S: Sequencer, W: WaitStrategy> {
    shared: Arc<Shared<E, S, W>>,
    local: S::Local,
}

/// The single-producer handle: `Send`, not `Clone`, not `Sync`.
pub type SingleProducer<E, W = Blocking> = Producer<E, Single, W>;
/// The multi-producer handle: `Clone` + `Send`, one clone per producer thread.
pub type MultiProducer<E, W = Blocking> = Producer<E, Multi, W>;

impl<E, S: Sequencer, W: WaitStrategy> Producer<E, S, W> {
    pub(crate) fn new(shared: Arc<Shared<E, S, W>>) -> Self {
        let local = shared.sequencer.new_local();
        Self { shared, local }
    }

    /// Publishes one event: waits for room if the ring is full, lets `write` fill the slot in
    /// place, publishes it and returns its sequence.
    ///
    /// The slot holds whatever event was there before (the factory's, or an old one): `write`
    /// should set every field consumers read. If `write` panics the slot is published as
    /// *skipped* (consumers pass it without seeing it) and the panic propagates.
    ///
    /// # Errors
    /// [`PublishError::Shutdown`] once the queue is shut down or halted (including while waiting
    /// for room), [`PublishError::ConsumerFailed`] once a handler's panic stopped the queue.
    ///
    /// ```
    /// use ringmq::{Builder, Consumer, Yielding};
    ///
    /// let mut builder = Builder::single_producer(8, || 0u64, Yielding)?;
    /// builder.add(Consumer::new("print", |n: &u64, seq, _end_of_batch| println!("{seq}: {n}")))?;
    /// let (mut producer, queue) = builder.build()?;
    /// let seq = producer.publish(|slot| *slot = 42)?;
    /// assert_eq!(seq, 0);
    /// drop(producer);
    /// queue.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn publish(&mut self, write: impl FnOnce(&mut E)) -> Result<i64, PublishError> {
        // The shared state's address as a value: the claim's compiler fence would otherwise
        // make the compiler load it from the handle again for the write.
        let shared: &Shared<E, S, W> = &self.shared;
        let seq = S::claim(shared, &mut self.local, 1, Mode::Block)?;
        write_one(shared, seq, write);
        Ok(seq)
    }

    /// Publishes one event if there is room now; `Err(Full)` at once otherwise.
    ///
    /// # Errors
    /// [`PublishError::Full`], and the errors of [`publish`](Self::publish).
    ///
    /// ```
    /// # use ringmq::{Builder, PublishError, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(4, || 0u64, Yielding)?;
    /// # let id = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// # let mut poller = queue.take_poller(id)?;
    /// for i in 0..4 {
    ///     producer.try_publish(|e| *e = i)?;
    /// }
    /// // Nobody consumed: the ring of 4 is full, and `try_publish` does not wait.
    /// assert_eq!(producer.try_publish(|e| *e = 4), Err(PublishError::Full));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn try_publish(&mut self, write: impl FnOnce(&mut E)) -> Result<i64, PublishError> {
        let shared: &Shared<E, S, W> = &self.shared;
        let seq = S::claim(shared, &mut self.local, 1, Mode::Try)?;
        write_one(shared, seq, write);
        Ok(seq)
    }

    /// Publishes one event, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`PublishError::Timeout`], and the errors of [`publish`](Self::publish).
    ///
    /// ```
    /// # use ringmq::{Builder, PublishError, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(4, || 0u64, Yielding)?;
    /// # let id = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// # let mut poller = queue.take_poller(id)?;
    /// for i in 0..4 {
    ///     producer.publish_timeout(Duration::from_millis(10), |e| *e = i)?;
    /// }
    /// let full = producer.publish_timeout(Duration::from_millis(1), |e| *e = 4);
    /// assert_eq!(full, Err(PublishError::Timeout));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_timeout(
        &mut self,
        timeout: Duration,
        write: impl FnOnce(&mut E),
    ) -> Result<i64, PublishError> {
        let mode = Mode::Until(crate::sync::deadline_in(timeout));
        let shared: &Shared<E, S, W> = &self.shared;
        let seq = S::claim(shared, &mut self.local, 1, mode)?;
        write_one(shared, seq, write);
        Ok(seq)
    }

    /// Claims `n` contiguous slots, calls `write(slot, i)` for `i` in `0..n`, and publishes all of
    /// them with one cursor update. Returns their sequences. Waits for room as
    /// [`publish`](Self::publish) does.
    ///
    /// If `write` panics at `i`, slots `i..n` are published as skipped and the panic propagates.
    ///
    /// # Errors
    /// [`PublishError::BatchTooLarge`] if `n` exceeds the capacity (it could never fit), and the
    /// errors of [`publish`](Self::publish).
    ///
    /// ```
    /// use ringmq::{Builder, Consumer, Yielding};
    ///
    /// let mut builder = Builder::single_producer(8, || 0u64, Yielding)?;
    /// builder.add(Consumer::new("sink", |_: &u64, _, _| {}))?;
    /// let (mut producer, queue) = builder.build()?;
    /// let seqs = producer.publish_batch(3, |slot, i| *slot = i as u64 * 10)?;
    /// assert_eq!(seqs, 0..3);
    /// assert!(producer.publish_batch(9, |_, _| {}).is_err()); // larger than the ring
    /// # drop(producer); queue.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// ```
    /// # use ringmq::{Builder, PublishError, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(4, || 0u64, Yielding)?;
    /// # let id = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// # let mut poller = queue.take_poller(id)?;
    /// // Three slots, one cursor update: consumers see all three at once.
    /// let seqs = producer.publish_batch(3, |e, i| *e = 10 * i as u64)?;
    /// assert_eq!(seqs, 0..3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn publish_batch(
        &mut self,
        n: usize,
        write: impl FnMut(&mut E, usize),
    ) -> Result<Range<i64>, PublishError> {
        self.batch(n, Mode::Block, write)
    }

    /// [`publish_batch`](Self::publish_batch) if there is room for all `n` now; `Err(Full)` at
    /// once otherwise (nothing is claimed).
    ///
    /// # Errors
    /// [`PublishError::Full`], and the errors of [`publish_batch`](Self::publish_batch).
    ///
    /// ```
    /// # use ringmq::{Builder, PublishError, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(4, || 0u64, Yielding)?;
    /// # let id = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// # let mut poller = queue.take_poller(id)?;
    /// producer.try_publish_batch(3, |e, i| *e = i as u64)?;
    /// assert_eq!(producer.try_publish_batch(2, |e, _| *e = 0), Err(PublishError::Full));
    /// // Larger than the ring: an error at once, never a wait.
    /// assert!(matches!(producer.try_publish_batch(5, |_, _| {}), Err(PublishError::BatchTooLarge { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn try_publish_batch(
        &mut self,
        n: usize,
        write: impl FnMut(&mut E, usize),
    ) -> Result<Range<i64>, PublishError> {
        self.batch(n, Mode::Try, write)
    }

    /// [`publish_batch`](Self::publish_batch), waiting at most `timeout` for room for all `n`.
    ///
    /// # Errors
    /// [`PublishError::Timeout`], and the errors of [`publish_batch`](Self::publish_batch).
    ///
    /// ```
    /// # use ringmq::{Builder, PublishError, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(4, || 0u64, Yielding)?;
    /// # let id = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// # let mut poller = queue.take_poller(id)?;
    /// let seqs = producer.publish_batch_timeout(4, Duration::from_millis(10), |e, i| *e = i as u64)?;
    /// assert_eq!(seqs, 0..4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_batch_timeout(
        &mut self,
        n: usize,
        timeout: Duration,
        write: impl FnMut(&mut E, usize),
    ) -> Result<Range<i64>, PublishError> {
        let mode = Mode::Until(crate::sync::deadline_in(timeout));
        self.batch(n, mode, write)
    }

    /// The highest sequence published (single producer) or claimed (multi producer).
    ///
    /// ```
    /// # use ringmq::{Builder, PublishError, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(4, || 0u64, Yielding)?;
    /// # let id = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// # let mut poller = queue.take_poller(id)?;
    /// assert_eq!(producer.cursor(), -1); // nothing published yet
    /// producer.publish(|e| *e = 1)?;
    /// assert_eq!(producer.cursor(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cursor(&self) -> i64 {
        self.shared.sequencer.cursor()
    }

    /// How many slots are free right now: a snapshot for monitoring, stale as soon as it returns.
    ///
    /// ```
    /// # use ringmq::{Builder, PublishError, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(4, || 0u64, Yielding)?;
    /// # let id = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// # let mut poller = queue.take_poller(id)?;
    /// producer.publish(|e| *e = 1)?;
    /// assert_eq!(producer.remaining_capacity(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remaining_capacity(&self) -> usize {
        self.shared.remaining_capacity()
    }

    /// The ring's capacity.
    ///
    /// ```
    /// # use ringmq::{Builder, PublishError, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(4, || 0u64, Yielding)?;
    /// # let id = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// # let mut poller = queue.take_poller(id)?;
    /// assert_eq!(producer.capacity(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.shared.ring.capacity() as usize
    }

    /// A [`Tracker`](crate::Tracker) for the whole graph: the receipt for a publish.
    ///
    /// ```
    /// use ringmq::{Builder, Consumer, Yielding};
    /// use std::time::Duration;
    ///
    /// let mut b = Builder::single_producer(8, || 0u64, Yielding)?;
    /// b.add(Consumer::new("apply", |_: &u64, _, _| {}))?;
    /// let (mut producer, queue) = b.build()?;
    /// let receipts = producer.tracker();
    /// let seq = producer.publish(|slot| *slot = 1)?;
    /// receipts.wait_processed(seq, Duration::from_secs(5))?; // every stage handled it
    /// # drop(producer);
    /// # queue.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// ```
    /// # use ringmq::{Builder, PublishError, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(4, || 0u64, Yielding)?;
    /// # let id = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// # let mut poller = queue.take_poller(id)?;
    /// let receipts = producer.tracker(); // the whole graph: here, the poller
    /// let seq = producer.publish(|e| *e = 1)?;
    /// assert!(!receipts.is_processed(seq));
    /// poller.poll(|_, _, _| true);
    /// assert!(receipts.is_processed(seq));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tracker(&self) -> crate::Tracker<E, S, W> {
        crate::Tracker::graph(self.shared.clone())
    }

    #[inline]
    fn batch(
        &mut self,
        n: usize,
        mode: Mode,
        mut write: impl FnMut(&mut E, usize),
    ) -> Result<Range<i64>, PublishError> {
        let capacity = self.shared.ring.capacity();
        if n as u64 > capacity as u64 {
            return Err(PublishError::BatchTooLarge {
                requested: n,
                capacity: capacity as usize,
            });
        }
        if n == 0 {
            self.shared.lifecycle.check_open()?;
            let at = self.cursor() + 1;
            return Ok(at..at);
        }
        let first = S::claim(&self.shared, &mut self.local, n as i64, mode)?;
        let last = first + n as i64 - 1;
        let mut publication = Publication {
            shared: &self.shared,
            first,
            last,
            unwritten: first,
        };
        let slots = self.shared.ring.slots();
        for i in 0..n {
            let seq = first + i as i64;
            // SAFETY: `seq` is in the range this handle just claimed and has not published: the
            // sequencer checked every gating consumer passed `seq - capacity`, and consumers wait
            // for the publication below. (Exercised by the loom models and the wrap tests.)
            unsafe { slots.write(seq, |slot| write(slot, i)) };
            publication.unwritten = seq + 1;
        }
        drop(publication);
        Ok(first..last + 1)
    }
}

/// Writes and publishes the one slot `seq`, just claimed.
#[inline]
fn write_one<E, S: SequencerImpl, W: WaitStrategy>(
    shared: &Shared<E, S, W>,
    seq: i64,
    write: impl FnOnce(&mut E),
) {
    let mut publication = Publication {
        shared,
        first: seq,
        last: seq,
        unwritten: seq,
    };
    // SAFETY: `seq` was just claimed by this handle and is not published yet (see `batch`).
    unsafe { shared.ring.slots().write(seq, write) };
    publication.unwritten = seq + 1;
}

/// Publishes a claimed range when dropped, marking the slots not yet written as skipped.
struct Publication<'a, E, S: SequencerImpl, W: WaitStrategy> {
    shared: &'a Shared<E, S, W>,
    first: i64,
    last: i64,
    /// The first slot of the range not yet fully written.
    unwritten: i64,
}

impl<E, S: SequencerImpl, W: WaitStrategy> Drop for Publication<'_, E, S, W> {
    #[inline]
    fn drop(&mut self) {
        // Only after a panic in the write closure: the rest of the claim is abandoned.
        for seq in self.unwritten..self.last + 1 {
            self.shared.ring.mark_skipped(seq);
        }
        self.shared.sequencer.publish(self.first, self.last);
        self.shared.wait.notify();
    }
}

impl<E, W: WaitStrategy> Clone for Producer<E, Multi, W> {
    fn clone(&self) -> Self {
        // Relaxed: like `Arc::clone`, a new handle is made from a live one, so the count is > 0.
        self.shared.producers.fetch_add(1, Ordering::Relaxed);
        Self::new(self.shared.clone())
    }
}

impl<E, S: Sequencer, W: WaitStrategy> Drop for Producer<E, S, W> {
    fn drop(&mut self) {
        // AcqRel: the last handle's close must see every other handle's publishes (they released
        // on their own drop), so the drain target covers them.
        if self.shared.producers.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.close();
        }
    }
}

impl<E, S: Sequencer, W: WaitStrategy> std::fmt::Debug for Producer<E, S, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("cursor", &self.cursor())
            .field("capacity", &self.capacity())
            .finish()
    }
}
