//! Work pools: N workers share one stage, and each event is handled by exactly one of them.
//!
//! # The claim protocol
//! The pool has one shared counter, `next`: the first sequence no worker has claimed. A worker
//! claims a range `first..=last` with one CAS on it, so every sequence is claimed by exactly one
//! worker (the counter's modification order is the arbiter). The range is as long as what is
//! available now, capped at the pool's batch size, and at least one sequence: an idle worker claims
//! the next sequence *before* it is published and waits for it, as the LMAX `WorkProcessor` did. So
//! the first worker to be free takes the next event (no `sequence % N` sharding), and a busy
//! pool's workers take small batches with one CAS each.
//!
//! # What a worker's sequence means
//! Right after claiming `first..=last`, a worker stores `first - 1` as its sequence (`Release`,
//! covering all it handled before): "I hold nothing at or below this". It holds its claim until it
//! has handled all of it, then claims again. The pool as a whole, seen by producers (gating) and by
//! stages after it, is the *minimum* of its workers' sequences, and that minimum is exact: if every
//! worker's sequence is at least `s`, then the worker that claimed `s` has moved past that claim,
//! so it handled `s` (which was therefore published). A worker waiting for an unpublished claim
//! has a sequence below it, so it never lets anyone past.
//!
//! The worker loop itself is the batch loop's pool variant (`batch.rs`, `Processor::work`).
//!
//! # Panics
//! The engine's policies apply per worker: `HaltAll` stops the queue, `SkipEvent` skips the event
//! and the worker goes on with its claim. `HaltConsumer` retires the worker: it passes the rest of
//! its claim without handling it (waiting for each event to be published, so no one downstream
//! runs ahead of the producers), then leaves the pool, whose other workers take the whole load.
//! The last live worker cannot leave; it keeps claiming and passing events, like a halted
//! consumer, so the queue never blocks on it.

use crossbeam_utils::CachePadded;

use crate::consume::consumer::{clamp_count, Consumer};
use crate::consume::handler::IntoProcess;
use crate::sync::{AtomicI64, AtomicUsize, Ordering};

/// The state a pool's workers share.
pub(crate) struct PoolClaim {
    /// The first sequence not yet claimed by any worker.
    next: CachePadded<AtomicI64>,
    /// Workers that still handle events (see the module docs on `HaltConsumer`).
    live: AtomicUsize,
    /// The most a worker claims at once.
    batch: i64,
}

impl PoolClaim {
    pub(crate) fn new(next: i64, workers: usize, batch: usize) -> Self {
        Self {
            next: CachePadded::new(AtomicI64::new(next)),
            live: AtomicUsize::new(workers),
            batch: clamp_count(batch),
        }
    }

    /// Claims the next range: as much as `available` says is published from the counter on, up to
    /// the batch size, and at least one sequence.
    #[inline]
    pub(crate) fn claim(&self, available: impl Fn(i64) -> i64) -> (i64, i64) {
        // Relaxed: the claim orders nothing. The worker reads slots only after its barrier's
        // Acquire shows them published; exactly-once comes from the CAS alone.
        let mut first = self.next.load(Ordering::Relaxed);
        loop {
            let ready = available(first);
            let n = if ready >= first {
                (ready - first + 1).min(self.batch)
            } else {
                1
            };
            match self.next.compare_exchange_weak(
                first,
                first + n,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return (first, first + n - 1),
                Err(current) => first = current,
            }
        }
    }

    /// Leaves the pool unless this is its last live worker; `true` if it left.
    pub(crate) fn leave(&self) -> bool {
        let mut live = self.live.load(Ordering::Relaxed);
        loop {
            if live <= 1 {
                return false;
            }
            match self.live.compare_exchange_weak(
                live,
                live - 1,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(current) => live = current,
            }
        }
    }
}

/// A pool of workers forming one stage: every event reaches exactly one worker.
///
/// Each worker is a [`Consumer`] of its own (its own thread, name, handler state, pinning, panic
/// policy, wait strategy). Add the pool with [`Builder::add_pool`](crate::Builder::add_pool) (or to
/// a running queue with [`Disruptor::add_pool`](crate::Disruptor::add_pool)); the returned
/// [`StageId`](crate::StageId) stands for the whole pool, so a stage added after it sees an
/// event once whichever worker took it is done. There is no order across workers: two events may
/// be handled at the same time, or the later one first.
///
/// ```
/// use ringmq::{Builder, Consumer, WorkPool, Blocking};
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// let handled = Arc::new(AtomicU64::new(0));
/// let mut b = Builder::multi_producer(64, || 0u64, Blocking::new())?;
/// let h = handled.clone();
/// b.add_pool(&[], WorkPool::new("resize", 3, move |i| {
///     let h = h.clone();
///     Consumer::new(format!("resize-{i}"), move |_job: &u64, _seq, _end| {
///         h.fetch_add(1, Ordering::Relaxed);
///     })
/// }))?;
/// let (mut producer, queue) = b.build()?;
/// for job in 0..100 {
///     producer.publish(|slot| *slot = job)?;
/// }
/// drop(producer);
/// queue.shutdown()?;
/// assert_eq!(handled.load(Ordering::Relaxed), 100); // each job exactly once
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WorkPool<E, H> {
    pub(crate) name: String,
    pub(crate) workers: Vec<Consumer<E, H>>,
    pub(crate) batch: usize,
}

impl<E, H: std::fmt::Debug> std::fmt::Debug for WorkPool<E, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkPool")
            .field("name", &self.name)
            .field("workers", &self.workers)
            .field("batch", &self.batch)
            .finish()
    }
}

impl<E, H: IntoProcess<E>> WorkPool<E, H> {
    /// A pool named `name` of `workers` workers (at least one); `worker(i)` makes the `i`-th.
    ///
    /// ```
    /// use ringmq::{Consumer, WorkPool};
    /// // Worker `i` gets its own consumer (name, handler, options).
    /// let pool = WorkPool::new("resize", 3, |i| Consumer::new(format!("resize-{i}"), |_: &u64, _, _| {}));
    /// ```
    pub fn new(
        name: impl Into<String>,
        workers: usize,
        worker: impl FnMut(usize) -> Consumer<E, H>,
    ) -> Self {
        Self {
            name: name.into(),
            workers: (0..workers.max(1)).map(worker).collect(),
            batch: 16,
        }
    }

    /// The most events a worker claims at once (16 by default; at least 1). Larger batches mean
    /// fewer CAS on the shared counter, smaller ones spread a burst more evenly.
    ///
    /// ```
    /// use ringmq::{Consumer, WorkPool};
    /// // Claim one event at a time: fairest for slow jobs, one CAS per event.
    /// let pool = WorkPool::new("jobs", 2, |i| Consumer::new(format!("jobs-{i}"), |_: &u64, _, _| {})).batch(1);
    /// ```
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }
}
