//! The producer handle of a cross-process ring: the in-process claim, write and publish
//! (`protocol::publish`) over the segment's sequencer.

use std::cell::Cell;
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::error::ShmError;
use super::process;
use super::ring::{self, Cx, MultiKind};
use super::segment::{Segment, KIND_SINGLE};
use super::wait::IpcWaiter;
use crate::error::PublishError;
use crate::protocol::publish;
use crate::protocol::sequencer::{LocalClaim, Mode, Single};
use crate::protocol::table;

/// Publishes events into a cross-process ring: the same calls as [`Producer`](crate::Producer).
///
/// `Send`, not `Sync`, not `Clone`: in a multi-producer ring, each thread or process takes its
/// own with [`ShmRing::producer`](super::ShmRing::producer). Dropping the single producer (or
/// the last multi producer) closes the ring.
///
/// ```compile_fail
/// fn sync<T: Sync>() {}
/// sync::<ringmq::ipc::ShmProducer<u64>>();
/// ```
/// ```
/// fn send<T: Send>() {}
/// send::<ringmq::ipc::ShmProducer<u64>>();
/// send::<ringmq::ipc::ShmConsumer<u64>>();
/// send::<ringmq::ipc::ShmRing<u64>>();
/// fn sync<T: Sync>() {}
/// sync::<ringmq::ipc::ShmRing<u64>>();
/// ```
/// ```
/// # #[cfg(all(target_os = "linux", not(miri)))] {
/// use ringmq::ipc::{ShmOptions, ShmRing};
/// # let path = std::env::temp_dir().join(format!("ringmq-doc-sp-{}", std::process::id()));
/// let ring = ShmRing::<u64>::create(&path, ShmOptions::multi_producer(8))?;
/// let _consumer = ring.consumer("c")?;
/// let mut a = ring.producer()?;
/// let mut b = ring.producer()?;
/// assert_eq!(a.publish(|slot| *slot = 1)?, 0);
/// assert_eq!(b.publish(|slot| *slot = 2)?, 1);
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ShmProducer<E: 'static> {
    /// The claim context, its addresses computed once (see `Cx`); borrows from `segment` and
    /// `waiter` below, which this handle holds as long as it.
    hot: Hot<E>,
    segment: Arc<Segment>,
    waiter: Arc<IpcWaiter>,
    entry: usize,
    local: LocalClaim,
    _event: PhantomData<fn(E)>,
    _not_sync: PhantomData<Cell<()>>,
}

/// The claim context for the ring's producer kind.
enum Hot<E: 'static> {
    Single(Cx<'static, E, Single>),
    Multi(Cx<'static, E, MultiKind>),
}

// Moving a producer handle to another thread (`ShmProducer` is `Send`, not `Sync`) takes its
// claim context along; checked by the doc tests of `ShmProducer` and exercised across threads
// by `ipc::tests::two_multi_producers_on_one_segment_lose_and_repeat_nothing` under miri.
// SAFETY: the context is references into the segment (`Segment: Send + Sync`) and the waiter,
// and slots reached through the ring protocol, as `Ring<E>` is `Send` for `E: Send`.
unsafe impl<E: Send + Sync + 'static> Send for Hot<E> {}

/// Runs `$body` with `$cx` bound to the handle's claim context.
macro_rules! with_cx {
    ($hot:expr, $cx:ident => $body:expr) => {
        match $hot {
            Hot::Single($cx) => $body,
            Hot::Multi($cx) => $body,
        }
    };
}

impl<E: bytemuck::Pod + Send + Sync> ShmProducer<E> {
    pub(super) fn attach(segment: Arc<Segment>, waiter: Arc<IpcWaiter>) -> Result<Self, ShmError> {
        let control = segment.control();
        if !control.phase.is_running() {
            return Err(ShmError::Closed);
        }
        let me = process::me_cached();
        let single = segment.header().kind == KIND_SINGLE;
        let at = if single {
            segment.single().cursor_acquire()
        } else {
            segment.multi().cursor()
        };
        let Some(entry) = table::producer_join(segment.producers(), me, at) else {
            if single {
                let holder = segment.producers()[0].presence.owner();
                return Err(ShmError::ProducerTaken { pid: holder.pid });
            }
            return Err(ShmError::ProducersFull {
                producers: segment.producers().len(),
            });
        };
        control.producers.fetch_add(1, Ordering::AcqRel);
        if !control.phase.is_running() {
            // Closed while joining: leave as a producer leaves.
            let producer = Self::new(segment, waiter, entry, at);
            drop(producer);
            return Err(ShmError::Closed);
        }
        Ok(Self::new(segment, waiter, entry, at))
    }

    fn new(segment: Arc<Segment>, waiter: Arc<IpcWaiter>, entry: usize, at: i64) -> Self {
        let mut local = LocalClaim::new();
        local.claimed = at;
        // Miri: `ipc::tests::two_views_of_one_segment_hand_events_over` (both kinds).
        // SAFETY: both point into `Arc` allocations this handle keeps (the fields below) for as
        // long as `hot`, which is private and lends them out only for a call; neither moves.
        let (seg, wait): (&'static Segment, &'static IpcWaiter) =
            unsafe { (&*Arc::as_ptr(&segment), &*Arc::as_ptr(&waiter)) };
        let hot = if seg.header().kind == KIND_SINGLE {
            Hot::Single(Cx::new(seg, wait, entry))
        } else {
            Hot::Multi(Cx::new(seg, wait, entry))
        };
        Self {
            hot,
            segment,
            waiter,
            entry,
            local,
            _event: PhantomData,
            _not_sync: PhantomData,
        }
    }

    fn is_single(&self) -> bool {
        self.segment.header().kind == KIND_SINGLE
    }

    #[inline]
    fn one(&mut self, mode: Mode, write: impl FnOnce(&mut E)) -> Result<i64, PublishError> {
        with_cx!(&self.hot, cx => {
            let claim = publish::claim(cx, &mut self.local, 1, mode)?;
            Ok(publish::write_one(cx, claim, write))
        })
    }

    fn batch(
        &mut self,
        n: usize,
        mode: Mode,
        write: impl FnMut(&mut E, usize),
    ) -> Result<Range<i64>, PublishError> {
        let capacity = self.segment.layout().capacity;
        if n > capacity {
            return Err(PublishError::BatchTooLarge {
                requested: n,
                capacity,
            });
        }
        if n == 0 {
            let phase = &self.segment.control().phase;
            if !phase.is_open() {
                return Err(phase.refusal());
            }
            let at = self.cursor() + 1;
            return Ok(at..at);
        }
        let first = with_cx!(&self.hot, cx => {
            let claim = publish::claim(cx, &mut self.local, n as i64, mode)?;
            publish::write_batch(cx, claim, write)
        });
        Ok(first..first + n as i64)
    }

    /// Publishes one event: waits for room if the ring is full, lets `write` fill the slot in
    /// place, publishes it and returns its sequence. As [`Producer::publish`](crate::Producer::publish).
    ///
    /// # Errors
    /// [`PublishError::NoConsumers`] while no stage is attached (nothing would read it),
    /// [`PublishError::Shutdown`] once the ring is closed.
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # use ringmq::{ipc::{ShmOptions, ShmRing}, PublishError};
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-pub-{}", std::process::id()));
    /// let ring = ShmRing::<u64>::create(&path, ShmOptions::single_producer(8))?;
    /// let mut producer = ring.producer()?;
    /// assert_eq!(producer.publish(|slot| *slot = 7), Err(PublishError::NoConsumers));
    /// let _consumer = ring.consumer("c")?;
    /// assert_eq!(producer.publish(|slot| *slot = 7), Ok(0));
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn publish(&mut self, write: impl FnOnce(&mut E)) -> Result<i64, PublishError> {
        self.one(Mode::Block, write)
    }

    /// Publishes one event if there is room now; `Err(Full)` at once otherwise.
    ///
    /// # Errors
    /// [`PublishError::Full`], and those of [`publish`](Self::publish).
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # use ringmq::{ipc::{ShmOptions, ShmRing}, PublishError};
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-try-{}", std::process::id()));
    /// let ring = ShmRing::<u64>::create(&path, ShmOptions::single_producer(2))?;
    /// let _consumer = ring.consumer("slow")?;
    /// let mut producer = ring.producer()?;
    /// producer.try_publish(|e| *e = 1)?;
    /// producer.try_publish(|e| *e = 2)?;
    /// assert_eq!(producer.try_publish(|e| *e = 3), Err(PublishError::Full));
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn try_publish(&mut self, write: impl FnOnce(&mut E)) -> Result<i64, PublishError> {
        self.one(Mode::Try, write)
    }

    /// Publishes one event, waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`PublishError::Timeout`], and those of [`publish`](Self::publish).
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # use ringmq::{ipc::{ShmOptions, ShmRing}, PublishError};
    /// # use std::time::Duration;
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-pto-{}", std::process::id()));
    /// let ring = ShmRing::<u64>::create(&path, ShmOptions::single_producer(1))?;
    /// let _consumer = ring.consumer("slow")?;
    /// let mut producer = ring.producer()?;
    /// producer.publish(|e| *e = 1)?;
    /// let late = producer.publish_timeout(Duration::from_millis(5), |e| *e = 2);
    /// assert_eq!(late, Err(PublishError::Timeout));
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_timeout(
        &mut self,
        timeout: Duration,
        write: impl FnOnce(&mut E),
    ) -> Result<i64, PublishError> {
        let deadline = std::time::Instant::now().checked_add(timeout);
        self.one(Mode::Until(deadline), write)
    }

    /// Publishes `n` events with one claim: `write(slot, i)` fills the `i`-th; returns their
    /// sequences. As [`Producer::publish_batch`](crate::Producer::publish_batch).
    ///
    /// # Errors
    /// [`PublishError::BatchTooLarge`] over the capacity, and those of [`publish`](Self::publish).
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # use ringmq::ipc::{ShmOptions, ShmRing};
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-batch-{}", std::process::id()));
    /// let ring = ShmRing::<u64>::create(&path, ShmOptions::single_producer(8))?;
    /// let _consumer = ring.consumer("c")?;
    /// let mut producer = ring.producer()?;
    /// assert_eq!(producer.publish_batch(3, |slot, i| *slot = i as u64)?, 0..3);
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_batch(
        &mut self,
        n: usize,
        write: impl FnMut(&mut E, usize),
    ) -> Result<Range<i64>, PublishError> {
        self.batch(n, Mode::Block, write)
    }

    /// [`publish_batch`](Self::publish_batch) if there is room for all `n` now.
    ///
    /// # Errors
    /// [`PublishError::Full`], and those of [`publish_batch`](Self::publish_batch).
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # use ringmq::{ipc::{ShmOptions, ShmRing}, PublishError};
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-tbatch-{}", std::process::id()));
    /// let ring = ShmRing::<u64>::create(&path, ShmOptions::single_producer(4))?;
    /// let _consumer = ring.consumer("c")?;
    /// let mut producer = ring.producer()?;
    /// producer.try_publish_batch(3, |slot, i| *slot = i as u64)?;
    /// assert_eq!(producer.try_publish_batch(2, |slot, _| *slot = 0), Err(PublishError::Full));
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_publish_batch(
        &mut self,
        n: usize,
        write: impl FnMut(&mut E, usize),
    ) -> Result<Range<i64>, PublishError> {
        self.batch(n, Mode::Try, write)
    }

    /// [`publish_batch`](Self::publish_batch), waiting at most `timeout` for room.
    ///
    /// # Errors
    /// [`PublishError::Timeout`], and those of [`publish_batch`](Self::publish_batch).
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # use ringmq::{ipc::{ShmOptions, ShmRing}, PublishError};
    /// # use std::time::Duration;
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-btime-{}", std::process::id()));
    /// let ring = ShmRing::<u64>::create(&path, ShmOptions::single_producer(4))?;
    /// let _consumer = ring.consumer("c")?;
    /// let mut producer = ring.producer()?;
    /// producer.publish_batch(4, |slot, i| *slot = i as u64)?;
    /// let late = producer.publish_batch_timeout(1, Duration::from_millis(5), |slot, _| *slot = 9);
    /// assert_eq!(late, Err(PublishError::Timeout));
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish_batch_timeout(
        &mut self,
        n: usize,
        timeout: Duration,
        write: impl FnMut(&mut E, usize),
    ) -> Result<Range<i64>, PublishError> {
        let deadline = std::time::Instant::now().checked_add(timeout);
        self.batch(n, Mode::Until(deadline), write)
    }

    /// The highest published (single) or claimed (multi) sequence, for monitoring.
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # use ringmq::ipc::{ShmOptions, ShmRing};
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-cur-{}", std::process::id()));
    /// let ring = ShmRing::<u64>::create(&path, ShmOptions::single_producer(4))?;
    /// let producer = ring.producer()?;
    /// assert_eq!(producer.cursor(), -1);
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cursor(&self) -> i64 {
        if self.is_single() {
            self.segment.single().cursor_acquire()
        } else {
            self.segment.multi().cursor()
        }
    }

    /// Free slots: the capacity minus what is claimed and not yet released by every stage.
    /// Equal to the capacity once every stage has handled everything published.
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # use ringmq::ipc::{ShmOptions, ShmRing};
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-rem-{}", std::process::id()));
    /// let ring = ShmRing::<u64>::create(&path, ShmOptions::single_producer(4))?;
    /// let mut consumer = ring.consumer("c")?;
    /// let mut producer = ring.producer()?;
    /// producer.publish_batch(3, |slot, _| *slot = 0)?;
    /// assert_eq!(producer.remaining_capacity(), 1);
    /// consumer.poll(|_, _, _| true);
    /// assert_eq!(producer.remaining_capacity(), 4);
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remaining_capacity(&self) -> usize {
        let capacity = self.segment.layout().capacity as i64;
        let claimed = self.cursor();
        let released = crate::protocol::table::gating_minimum(self.segment.stages(), claimed);
        (capacity - (claimed - released).clamp(0, capacity)) as usize
    }

    /// Closes the ring for every producer: consumers drain what was published and end.
    /// Idempotent; dropping the single producer (or the last multi producer) does it too.
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # use ringmq::{ipc::{ShmOptions, ShmRing}, PublishError};
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-close-{}", std::process::id()));
    /// let ring = ShmRing::<u64>::create(&path, ShmOptions::multi_producer(4))?;
    /// let _consumer = ring.consumer("c")?;
    /// let mut producer = ring.producer()?;
    /// producer.close();
    /// assert_eq!(producer.publish(|e| *e = 1), Err(PublishError::Shutdown));
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&mut self) {
        ring::close(&self.segment, &self.waiter);
    }
}

impl<E: 'static> Drop for ShmProducer<E> {
    fn drop(&mut self) {
        let segment = &self.segment;
        let control = segment.control();
        if segment.header().kind == KIND_SINGLE {
            ring::close(segment, &self.waiter);
            table::producer_free(segment.producers(), self.entry);
            control.producers.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        table::producer_free(segment.producers(), self.entry);
        if control.producers.fetch_sub(1, Ordering::AcqRel) == 1 {
            ring::close_after_last_producer(segment);
        }
        use crate::protocol::wait::WaitStrategy;
        self.waiter.notify();
    }
}

impl<E: 'static> std::fmt::Debug for ShmProducer<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmProducer")
            .field("path", &self.segment.path())
            .field("entry", &self.entry)
            .finish()
    }
}
