//! Producer handles: a thin front end over the protocol's claim, write and publish
//! (`protocol::publish`), holding the handle's own claim state.
//!
//! Every publish is three steps: *claim* sequences from the sequencer (waiting for room if the ring
//! is full: backpressure, never an overwrite), *write* each claimed slot through the caller's
//! closure, *publish* the range so consumers may read it. A write closure that panics still
//! publishes its claim, with the unwritten slots marked skipped, and the panic continues.

use std::cell::Cell;
use std::marker::PhantomData;
use std::ops::Range;
use std::time::Duration;

use crate::error::PublishError;
use crate::protocol::publish;
use crate::protocol::sequencer::{LocalClaim, Mode, Multi, Sequencer, SequencerImpl, Single};
use crate::protocol::wait::{task_waits, WaitStrategy};
use crate::protocol::wake::Lease;
use crate::protocol::Core;
use crate::sync::{Arc, Ordering};
use crate::tracker::Tracker;

/// A handle that publishes events into the ring.
///
/// Built by [`Builder::build`](crate::Builder::build). With the [`Single`] sequencer it is `Send`
/// but neither `Clone` nor `Sync` (one producer thread, no atomic read-modify-write when claiming);
/// with [`Multi`] it is `Clone` (and `Send`, not `Sync`): give each producer thread its own clone.
///
/// Dropping the last handle closes the queue: consumers drain everything published and stop.
///
/// ```compile_fail
/// // The single producer cannot be cloned...
/// fn clone<T: Clone>() {}
/// clone::<ringmq::SingleProducer<u64, ringmq::Yielding>>();
/// ```
/// ```compile_fail
/// // ...nor shared between threads.
/// fn sync<T: Sync>() {}
/// sync::<ringmq::SingleProducer<u64, ringmq::Yielding>>();
/// ```
/// ```
/// // It can be moved to another thread; the multi producer can also be cloned.
/// fn send<T: Send>() {}
/// fn clone<T: Clone + Send>() {}
/// send::<ringmq::SingleProducer<u64, ringmq::Yielding>>();
/// clone::<ringmq::MultiProducer<u64, ringmq::Blocking>>();
/// ```
pub struct Producer<E, S, W> {
    core: Arc<Core<E, S, W>>,
    local: LocalClaim,
    /// Closes the queue when the last handle drops: set where the bounds are known, so that
    /// neither the struct nor its `Drop` has to carry them.
    close: fn(&Core<E, S, W>),
    /// The waker slot this handle's async publishes wait in (`protocol::wake`): leased at the
    /// first wait, given back on drop through `end_lease` (set where the bounds are known, as
    /// `close` is).
    lease: Lease,
    end_lease: fn(&Core<E, S, W>, &Lease),
    /// `Cell` is `Send` but not `Sync`: a handle can move to another thread, never be shared.
    _not_sync: PhantomData<Cell<()>>,
}

/// The single-producer handle: `Send`, not `Clone`, not `Sync`.
pub type SingleProducer<E, W> = Producer<E, Single, W>;
/// The multi-producer handle: `Clone` + `Send`, one clone per producer thread.
pub type MultiProducer<E, W> = Producer<E, Multi, W>;

impl<E, S: Sequencer, W: WaitStrategy> Producer<E, S, W> {
    pub(crate) fn new(core: Arc<Core<E, S, W>>) -> Self {
        Self {
            core,
            local: LocalClaim::new(),
            close: Core::close,
            lease: Lease::default(),
            end_lease: |core, lease| lease.end(task_waits(&core.wait)),
            _not_sync: PhantomData,
        }
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
    /// builder.add(Consumer::new("print", |n: &u64, seq, _end_of_batch| println!("{seq}: {n}")));
    /// let (mut producer, queue) = builder.build()?;
    /// let seq = producer.publish(|slot| *slot = 42)?;
    /// assert_eq!(seq, 0);
    /// drop(producer);
    /// queue.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn publish(&mut self, write: impl FnOnce(&mut E)) -> Result<i64, PublishError> {
        // The core's address as a value: the claim's compiler fence would otherwise make the
        // compiler load it from the handle again for the write.
        let core: &Core<E, S, W> = &self.core;
        let claim = publish::claim(core, &mut self.local, 1, Mode::Block)?;
        Ok(publish::write_one(core, claim, write))
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
    /// # let mut poller = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// for i in 0..4 {
    ///     producer.try_publish(|e| *e = i)?;
    /// }
    /// // Nobody consumed: the ring of 4 is full, and `try_publish` does not wait.
    /// assert_eq!(producer.try_publish(|e| *e = 4), Err(PublishError::Full));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn try_publish(&mut self, write: impl FnOnce(&mut E)) -> Result<i64, PublishError> {
        let core: &Core<E, S, W> = &self.core;
        let claim = publish::claim(core, &mut self.local, 1, Mode::Try)?;
        Ok(publish::write_one(core, claim, write))
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
    /// # let mut poller = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
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
        let core: &Core<E, S, W> = &self.core;
        let claim = publish::claim(core, &mut self.local, 1, mode)?;
        Ok(publish::write_one(core, claim, write))
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
    /// builder.add(Consumer::new("sink", |_: &u64, _, _| {}));
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
    /// # let mut poller = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
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
    /// # let mut poller = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
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
    /// # let mut poller = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
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

    /// Publishes one event, awaiting room instead of blocking the thread: the async
    /// [`publish`](Self::publish). Returns its sequence.
    ///
    /// Cancellation-safe: the claim is taken only in a `poll` where it can be written and
    /// published at once, so a future dropped at any await point published nothing, called
    /// nothing and holds no slot (see [`crate::future`]). Wrap it in a runtime's timeout for a
    /// deadline. Tasks sleep until woken with a [`Blocking`](crate::Blocking) queue; with a
    /// polling strategy they re-poll through the executor.
    ///
    /// # Errors
    /// Those of [`publish`](Self::publish): `Shutdown`, `ConsumerFailed`, `NoConsumers`.
    ///
    /// ```
    /// use ringmq::{Blocking, Builder};
    ///
    /// let mut b = Builder::multi_producer(4, || 0u64, Blocking::new())?;
    /// let mut poller = b.add_poller(&[])?;
    /// let (mut producer, queue) = b.build()?;
    /// futures_executor::block_on(async {
    ///     for i in 0..3 {
    ///         assert_eq!(producer.publish_async(|e| *e = i * 10).await, Ok(i as i64));
    ///     }
    /// });
    /// let mut seen = Vec::new();
    /// poller.poll(|e, _, _| { seen.push(*e); true });
    /// assert_eq!(seen, [0, 10, 20]);
    /// # drop(producer); drop(poller); queue.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_async<F: FnOnce(&mut E)>(
        &mut self,
        write: F,
    ) -> crate::future::Publish<'_, E, S, W, F> {
        crate::future::Publish::new(self, write)
    }

    /// Publishes `n` events with one cursor update, awaiting room for all of them: the async
    /// [`publish_batch`](Self::publish_batch), cancellation-safe as
    /// [`publish_async`](Self::publish_async) is (all `n` are claimed, written and published in
    /// one `poll`, or none is claimed).
    ///
    /// # Errors
    /// Those of [`publish_batch`](Self::publish_batch), `BatchTooLarge` included.
    ///
    /// ```
    /// use ringmq::{Blocking, Builder};
    ///
    /// let mut b = Builder::single_producer(8, || 0u64, Blocking::new())?;
    /// let mut poller = b.add_poller(&[])?;
    /// let (mut producer, queue) = b.build()?;
    /// let seqs = futures_executor::block_on(producer.publish_batch_async(3, |e, i| *e = i as u64));
    /// assert_eq!(seqs, Ok(0..3));
    /// assert!(futures_executor::block_on(producer.publish_batch_async(9, |_, _| {})).is_err());
    /// # drop(producer); drop(poller); queue.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_batch_async<F: FnMut(&mut E, usize)>(
        &mut self,
        n: usize,
        write: F,
    ) -> crate::future::PublishBatch<'_, E, S, W, F> {
        crate::future::PublishBatch::new(self, n, write)
    }

    /// The highest sequence published (single producer) or claimed (multi producer).
    ///
    /// ```
    /// # use ringmq::{Builder, PublishError, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(4, || 0u64, Yielding)?;
    /// # let mut poller = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// assert_eq!(producer.cursor(), -1); // nothing published yet
    /// producer.publish(|e| *e = 1)?;
    /// assert_eq!(producer.cursor(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cursor(&self) -> i64 {
        self.core.sequencer.cursor()
    }

    /// How many slots are free right now: a snapshot for monitoring, stale as soon as it returns.
    ///
    /// ```
    /// # use ringmq::{Builder, PublishError, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(4, || 0u64, Yielding)?;
    /// # let mut poller = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// producer.publish(|e| *e = 1)?;
    /// assert_eq!(producer.remaining_capacity(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remaining_capacity(&self) -> usize {
        self.core.remaining_capacity()
    }

    /// The ring's capacity.
    ///
    /// ```
    /// # use ringmq::{Builder, PublishError, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(4, || 0u64, Yielding)?;
    /// # let mut poller = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// assert_eq!(producer.capacity(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.core.ring.capacity() as usize
    }

    /// A [`Tracker`](crate::Tracker) for the whole graph: the receipt for a publish.
    ///
    /// ```
    /// use ringmq::{Builder, Consumer, Yielding};
    /// use std::time::Duration;
    ///
    /// let mut b = Builder::single_producer(8, || 0u64, Yielding)?;
    /// b.add(Consumer::new("apply", |_: &u64, _, _| {}));
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
    /// # let mut poller = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// let receipts = producer.tracker(); // the whole graph: here, the poller
    /// let seq = producer.publish(|e| *e = 1)?;
    /// assert!(!receipts.is_processed(seq));
    /// poller.poll(|_, _, _| true);
    /// assert!(receipts.is_processed(seq));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tracker(&self) -> Tracker
    where
        E: Send + Sync + 'static,
    {
        Tracker::graph(self.core.clone())
    }

    #[inline]
    pub(crate) fn batch(
        &mut self,
        n: usize,
        mode: Mode,
        write: impl FnMut(&mut E, usize),
    ) -> Result<Range<i64>, PublishError> {
        let (core, local, _) = self.parts();
        batch(core, local, n, mode, write)
    }
}

impl<E, S, W> Producer<E, S, W> {
    /// The core and this handle's claim state, borrowed apart (for the async futures).
    #[inline]
    pub(crate) fn parts(&mut self) -> (&Core<E, S, W>, &mut LocalClaim, &Lease) {
        (&self.core, &mut self.local, &self.lease)
    }
}

/// Checks `n`, claims `n` sequences in `mode`, writes and publishes them.
#[inline]
pub(crate) fn batch<E, S: SequencerImpl, W: WaitStrategy>(
    core: &Core<E, S, W>,
    local: &mut LocalClaim,
    n: usize,
    mode: Mode,
    write: impl FnMut(&mut E, usize),
) -> Result<Range<i64>, PublishError> {
    let capacity = core.ring.capacity();
    if n as u64 > capacity as u64 {
        return Err(PublishError::BatchTooLarge {
            requested: n,
            capacity: capacity as usize,
        });
    }
    if n == 0 {
        core.lifecycle.check_open()?;
        let at = core.sequencer.cursor() + 1;
        return Ok(at..at);
    }
    let claim = publish::claim(core, local, n as i64, mode)?;
    let first = publish::write_batch(core, claim, write);
    Ok(first..first + n as i64)
}

impl<E, W: WaitStrategy> Clone for Producer<E, Multi, W> {
    fn clone(&self) -> Self {
        // Relaxed: like `Arc::clone`, a new handle is made from a live one, so the count is > 0.
        self.core.producers.fetch_add(1, Ordering::Relaxed);
        Self::new(self.core.clone())
    }
}

impl<E, S, W> Drop for Producer<E, S, W> {
    fn drop(&mut self) {
        (self.end_lease)(&self.core, &self.lease);
        // AcqRel: the last handle's close must see every other handle's publishes (they released
        // on their own drop), so the drain target covers them.
        if self.core.producers.fetch_sub(1, Ordering::AcqRel) == 1 {
            (self.close)(&self.core);
        }
    }
}

impl<E, S, W> std::fmt::Debug for Producer<E, S, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("claimed", &self.local.claimed)
            .field("capacity", &self.core.ring.capacity())
            .finish()
    }
}
