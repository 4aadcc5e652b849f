//! Per-stage counters: written by the one thread that owns them, read by snapshots.
//!
//! # Contract
//! - A [`StageCounters`] block belongs to one consumer thread, pool worker or poller, and only
//!   that thread writes it: every update is a `Relaxed` load and a `Relaxed` store of the
//!   owner's own value (no read-modify-write, no lock), on cache lines of its own. A snapshot
//!   from another thread reads each counter with `Relaxed`: each value is one the owner stored,
//!   and the counters of one block may be from slightly different moments (a snapshot is for
//!   monitoring, not for accounting across counters).
//! - Updates happen once per batch (events, batches, the batch-size bucket, the highest lag),
//!   once per sixteen waits that really waited (the time, two clock reads, scaled), and on the
//!   rare paths
//!   (skips, retries, panics). Nothing is counted per event.
//! - The producer side is counted on its slow path only (a claim that found the ring full), where
//!   an atomic add costs nothing the producer was not already waiting for; the number published
//!   is the cursor, which needs no counter.

use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::sync::{AtomicU64, Ordering};

/// Batch-size buckets: bucket `i` counts batches of `2^i ..= 2^(i+1) - 1` events (the last one
/// also everything larger).
pub const BATCH_BUCKETS: usize = 16;

/// A consumer times one wait in this many (see `Processor::counted_wait`).
pub(crate) const WAIT_SAMPLE: u32 = 16;

/// One stage thread's counters.
#[derive(Debug)]
pub(crate) struct StageCounters {
    hot: CachePadded<Hot>,
    rare: CachePadded<Rare>,
    started: Option<Instant>,
}

#[derive(Debug, Default)]
struct Hot {
    events: AtomicU64,
    max_lag: AtomicU64,
    wait_nanos: AtomicU64,
    buckets: [AtomicU64; BATCH_BUCKETS],
}

#[derive(Debug, Default)]
struct Rare {
    skips: AtomicU64,
    retries: AtomicU64,
    panics: AtomicU64,
}

/// Adds `by` to a counter only this thread writes: a load and a store, no read-modify-write.
#[inline]
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

impl StageCounters {
    pub(crate) fn new() -> Self {
        Self {
            hot: CachePadded::new(Hot::default()),
            rare: CachePadded::new(Rare::default()),
            started: crate::sync::now(),
        }
    }

    /// A batch of `n` events handed over when `depth` were available (the lag it started at).
    #[inline]
    pub(crate) fn batch(&self, n: i64, depth: i64) {
        if !cfg!(feature = "counters") {
            return;
        }
        bump(&self.hot.events, n.max(0) as u64);
        self.shape(n, depth);
    }

    /// A batch's shape only (its size bucket, the lag it started at), for a poller, whose
    /// events are its sequence's progress (the snapshot derives them; the poller's loop is the
    /// one the instruction budget measures). The number of batches is the buckets' sum.
    #[inline]
    pub(crate) fn shape(&self, n: i64, depth: i64) {
        if !cfg!(feature = "counters") {
            return;
        }
        let h = &*self.hot;
        let bucket = (63 - (n as u64).max(1).leading_zeros() as usize).min(BATCH_BUCKETS - 1);
        bump(&h.buckets[bucket], 1);
        let depth = depth as u64;
        if depth > h.max_lag.load(Ordering::Relaxed) {
            h.max_lag.store(depth, Ordering::Relaxed);
        }
    }

    /// Time spent in a wait that found nothing at first.
    #[inline]
    pub(crate) fn waited(&self, d: Duration) {
        if !cfg!(feature = "counters") {
            return;
        }
        bump(
            &self.hot.wait_nanos,
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        );
    }

    pub(crate) fn skip(&self) {
        if !cfg!(feature = "counters") {
            return;
        }
        bump(&self.rare.skips, 1);
    }

    pub(crate) fn retry(&self) {
        if !cfg!(feature = "counters") {
            return;
        }
        bump(&self.rare.retries, 1);
    }

    pub(crate) fn panic(&self) {
        if !cfg!(feature = "counters") {
            return;
        }
        bump(&self.rare.panics, 1);
    }

    /// What the counters say now.
    pub(crate) fn read(&self) -> Counts {
        let h = &*self.hot;
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let mut batch_sizes = [0; BATCH_BUCKETS];
        for (out, b) in batch_sizes.iter_mut().zip(&h.buckets) {
            *out = load(b);
        }
        let elapsed = self.started.map_or(Duration::ZERO, |s| s.elapsed());
        // An estimate (sampled waits, scaled): never more than the time there was.
        let waiting = Duration::from_nanos(load(&h.wait_nanos)).min(elapsed);
        Counts {
            events: load(&h.events),
            batches: batch_sizes.iter().sum(),
            batch_sizes,
            waiting,
            busy: elapsed.saturating_sub(waiting),
            skips: load(&self.rare.skips),
            retries: load(&self.rare.retries),
            panics: load(&self.rare.panics),
            max_lag: load(&h.max_lag),
        }
    }
}

/// A stage's (or one of its threads') counters at one moment: part of
/// [`StageMetrics`](crate::StageMetrics).
///
/// ```
/// let c = ringmq::Counts::default();
/// assert_eq!((c.events, c.batches), (0, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Events handed to the handler (a pool: to any of its workers; a skipped event counts).
    pub events: u64,
    /// Batches handed over.
    pub batches: u64,
    /// Batch sizes in log2 buckets: `batch_sizes[i]` counts batches of `2^i ..= 2^(i+1) - 1`
    /// events (the last bucket also everything larger).
    pub batch_sizes: [u64; BATCH_BUCKETS],
    /// Time spent in waits that found no event at first (summed over a pool's workers): an
    /// estimate, from one wait in 16 timed and scaled.
    pub waiting: Duration,
    /// Time since the thread started, less `waiting`: handling, and the loop's own work.
    pub busy: Duration,
    /// Events skipped after a handler panic (`PanicPolicy::SkipEvent`).
    pub skips: u64,
    /// Batch replays a fallible handler asked for.
    pub retries: u64,
    /// Handler panics, whatever the policy did with them.
    pub panics: u64,
    /// The most events found waiting at the start of a batch: the highest lag seen.
    pub max_lag: u64,
}

impl Counts {
    /// Adds another thread's counts (a pool's workers make one stage).
    pub(crate) fn add(&mut self, o: &Counts) {
        self.events += o.events;
        self.batches += o.batches;
        for (a, b) in self.batch_sizes.iter_mut().zip(&o.batch_sizes) {
            *a += b;
        }
        self.waiting += o.waiting;
        self.busy += o.busy;
        self.skips += o.skips;
        self.retries += o.retries;
        self.panics += o.panics;
        self.max_lag = self.max_lag.max(o.max_lag);
    }
}

/// The producer side's slow-path counters, shared by every producer handle of a queue.
#[derive(Debug, Default)]
pub(crate) struct ProducerCounters {
    full: AtomicU64,
    wait_nanos: AtomicU64,
}

impl ProducerCounters {
    /// A claim found the ring full (and waited `waited`, if it waited).
    #[cold]
    pub(crate) fn found_full(&self, waited: Option<Duration>) {
        if !cfg!(feature = "counters") {
            return;
        }
        // Read-modify-writes: several producer threads share these, and this is the slow path.
        self.full.fetch_add(1, Ordering::Relaxed);
        if let Some(d) = waited {
            let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
            self.wait_nanos.fetch_add(nanos, Ordering::Relaxed);
        }
    }

    pub(crate) fn read(&self) -> (u64, Duration) {
        (
            self.full.load(Ordering::Relaxed),
            Duration::from_nanos(self.wait_nanos.load(Ordering::Relaxed)),
        )
    }
}
