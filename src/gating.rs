//! The gating set: the consumer sequences that producers must not lap, and the consumer graph it
//! is computed from.
//!
//! A producer may claim sequence `s` only when every gating sequence is at least `s - capacity`:
//! then every consumer has finished with the slot's previous event. The last consumers of the
//! graph gate (those nothing depends on); so do stages that a consumer added at runtime depends
//! on (that consumer may start ahead of them, see below). Every other consumer is, by
//! construction, ahead of something that gates.
//!
//! Producers read the set only on their slow path: each keeps (or shares, for multi producer) a
//! cached minimum and rereads the set only when a claim could wrap past it. That is what makes the
//! set cheap to change while running: the hot path never looks at it.
//!
//! # Changing the set while running
//! The set is immutable once installed and swapped copy-on-write: writers (serialized by a mutex)
//! build a new set, swap the pointer, and reclaim the old one with crossbeam-epoch once no
//! producer can still be reading it. Producers pin the epoch only while they compute a minimum.
//!
//! [`Gating::replace`] returns only after a *grace period*: every minimum computed from the old
//! set has finished (crossbeam-epoch runs a deferred function once every thread pinned before it
//! has unpinned; under loom, a reader holds a clone of the set's `Arc` instead, and the grace
//! period waits for the old set's count to drop to one). That is what makes adding a consumer
//! safe against producers' *cached* minimums, which the swap cannot reach:
//!
//! 1. the new consumer's sequence starts at `j`, the old set's minimum, so no producer reading
//!    the new set may run further ahead than it already could;
//! 2. the set is swapped and the grace period passes;
//! 3. the joining sequence `t` is read: the single producer's published cursor, or the multi
//!    producers' last claimed sequence. Every minimum `m` ever computed from the old set was
//!    computed from consumer sequences that were published, hence claimed, before the grace
//!    period ended, so `m <= t`, and no cached minimum lets a producer claim past `t + capacity`;
//! 4. the consumer's sequence moves to `t` and it reads from `t + 1`: no producer can overwrite
//!    those slots before the consumer has read them.
//!
//! Removing a consumer only drops a constraint, so cached minimums stay valid. A set is never left
//! empty: removing its last sequence leaves a frozen copy of it, so no producer can overwrite
//! events nobody has read; and the queue refuses publishes while it has no live stage
//! ([`PublishError::NoConsumers`](crate::PublishError::NoConsumers)), so none waits for room that
//! nobody will make.

use crate::sequence::{minimum, Sequence};
use crate::sync::{Arc, AtomicBool, Mutex, Ordering};

type Set = Box<[Arc<Sequence>]>;

/// Asks a stage's threads to leave (it is being removed), or records that a poller was dropped.
#[derive(Debug, Default)]
pub(crate) struct Control {
    leave: AtomicBool,
}

impl Control {
    /// Marks the stage as leaving. Release: pairs with [`left`](Self::left).
    pub(crate) fn leave(&self) {
        self.leave.store(true, Ordering::Release);
    }

    /// Whether the stage was asked to leave (checked once per batch and on each wait step).
    #[inline]
    pub(crate) fn left(&self) -> bool {
        self.leave.load(Ordering::Acquire)
    }
}

/// One stage of the graph, as the gating set needs to know it.
pub(crate) struct StageInfo {
    pub(crate) name: String,
    pub(crate) upstream: Vec<usize>,
    pub(crate) exclusive: bool,
    /// One per thread of the stage: a consumer has one, a work pool one per worker.
    pub(crate) sequences: Vec<Arc<Sequence>>,
    /// Added while running: it may start ahead of its upstream, which must then keep gating.
    pub(crate) dynamic: bool,
    /// A pull-based poller: it has no thread and cannot be upstream of anything.
    pub(crate) poller: bool,
    /// Removed (its threads joined) or, for a poller, dropped: no longer part of the graph.
    pub(crate) gone: bool,
    pub(crate) control: Arc<Control>,
    /// The first sequence the stage sees.
    pub(crate) first: i64,
}

impl StageInfo {
    pub(crate) fn live(&self) -> bool {
        !self.gone
    }
}

/// The sequences that gate producers, computed from the graph: every live stage that no live
/// stage depends on, and every live stage that a stage added at runtime depends on.
fn gating_sequences(graph: &[StageInfo]) -> Vec<Arc<Sequence>> {
    let mut set = Vec::new();
    for (i, stage) in graph.iter().enumerate() {
        if !stage.live() {
            continue;
        }
        let mut dependents = graph
            .iter()
            .filter(|d| d.live() && d.upstream.contains(&i))
            .peekable();
        let leaf = dependents.peek().is_none();
        if leaf || dependents.any(|d| d.dynamic) {
            set.extend(stage.sequences.iter().cloned());
        }
    }
    set
}

/// The sequences producers wait for before reusing a slot, and the graph they come from.
pub(crate) struct Gating {
    #[cfg(not(loom))]
    current: crossbeam_epoch::Atomic<Set>,
    #[cfg(loom)]
    current: Mutex<Arc<Set>>,
    /// The graph; its lock serializes writers, so each change starts from the set the previous
    /// one installed.
    graph: Mutex<Vec<StageInfo>>,
}

impl Gating {
    pub(crate) fn new(graph: Vec<StageInfo>) -> Self {
        let set: Set = gating_sequences(&graph).into_boxed_slice();
        Self {
            #[cfg(not(loom))]
            current: crossbeam_epoch::Atomic::new(set),
            #[cfg(loom)]
            current: Mutex::new(Arc::new(set)),
            graph: Mutex::new(graph),
        }
    }

    /// Reads the graph (under the writers' lock).
    pub(crate) fn graph<R>(&self, f: impl FnOnce(&[StageInfo]) -> R) -> R {
        f(&self.graph.lock().unwrap())
    }

    /// Changes what the graph records without changing the gating set.
    pub(crate) fn graph_mut<R>(&self, f: impl FnOnce(&mut [StageInfo]) -> R) -> R {
        f(&mut self.graph.lock().unwrap())
    }

    /// The slowest gating consumer's sequence, or `default` if nothing gates. `Acquire` per
    /// sequence: a producer that sees a consumer past a slot sees that consumer's reads finished.
    #[inline]
    pub(crate) fn minimum(&self, default: i64) -> i64 {
        self.with_current(|set| minimum(set, default))
    }

    #[cfg(not(loom))]
    #[inline]
    fn with_current<R>(&self, f: impl FnOnce(&[Arc<Sequence>]) -> R) -> R {
        let guard = crossbeam_epoch::pin();
        // Acquire: the set's contents, written before the writer's Release swap.
        let set = self
            .current
            .load(std::sync::atomic::Ordering::Acquire, &guard);
        // SAFETY: the pointer is never null (every install is a valid `Box`), and the set it
        // points to is destroyed only through `defer_destroy`, after every thread pinned now (this
        // one, until `guard` drops) has unpinned.
        f(unsafe { set.deref() })
    }

    #[cfg(loom)]
    fn with_current<R>(&self, f: impl FnOnce(&[Arc<Sequence>]) -> R) -> R {
        let set = self.current.lock().unwrap().clone();
        f(&set)
    }

    /// Changes the graph with `change`, installs the gating set of the changed graph, and returns
    /// once no minimum can still be computed from the old set (the grace period of the module
    /// docs). `emptied` runs, under the writers' lock, if the changed graph has no live stage left
    /// (the set installed is then the frozen copy), so that whoever records that fact is
    /// serialized with every other change.
    pub(crate) fn change<R>(
        &self,
        change: impl FnOnce(&mut Vec<StageInfo>) -> R,
        emptied: impl FnOnce(),
    ) -> R {
        let mut graph = self.graph.lock().unwrap();
        let old_min = self.minimum(i64::MAX);
        let result = change(&mut graph);
        let mut next = gating_sequences(&graph);
        if next.is_empty() {
            // Never leave producers unguarded: freeze the last position instead.
            next.push(Arc::new(Sequence::new(old_min)));
            emptied();
        }
        self.install(next.into_boxed_slice());
        result
    }

    #[cfg(not(loom))]
    fn install(&self, set: Set) {
        use crossbeam_epoch::Owned;
        use std::sync::atomic::Ordering;
        let passed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        {
            let guard = crossbeam_epoch::pin();
            // AcqRel: Release publishes the new set's contents to readers.
            let old = self.current.swap(Owned::new(set), Ordering::AcqRel, &guard);
            // SAFETY: `old` was installed by `new` or a previous `install` and is unreachable now
            // that it is swapped out; crossbeam-epoch frees it after every reader pinned now
            // has unpinned.
            unsafe { guard.defer_destroy(old) };
            let flag = passed.clone();
            // Runs after the same grace period: the signal that every old reader finished.
            guard.defer(move || flag.store(true, std::sync::atomic::Ordering::Release));
        }
        let backoff = crate::sync::Backoff::new();
        // Bounded by the longest minimum computation in progress (readers pin only for that).
        while !passed.load(std::sync::atomic::Ordering::Acquire) {
            crossbeam_epoch::pin().flush();
            backoff.snooze();
        }
    }

    #[cfg(loom)]
    fn install(&self, set: Set) {
        let old = std::mem::replace(&mut *self.current.lock().unwrap(), Arc::new(set));
        let backoff = crate::sync::Backoff::new();
        while Arc::strong_count(&old) > 1 {
            backoff.snooze();
        }
    }
}

#[cfg(not(loom))]
impl Drop for Gating {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no reader can hold the set any more.
        unsafe {
            let guard = crossbeam_epoch::unprotected();
            let set = self
                .current
                .load(std::sync::atomic::Ordering::Relaxed, guard);
            drop(set.into_owned());
        }
    }
}
