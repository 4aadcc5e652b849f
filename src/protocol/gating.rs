//! The gating set: the consumer sequences that producers must not lap.
//!
//! A producer may claim sequence `s` only when every gating sequence is at least `s - capacity`:
//! then every consumer has finished with the slot's previous event. Which sequences gate is the
//! graph's business (`graph::graph` computes the set: the last stages, and the stages a stage
//! added at runtime depends on); this module only holds the set and swaps it safely.
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

use crate::protocol::sequence::{minimum, Sequence};
use crate::sync::Arc;
#[cfg(loom)]
use crate::sync::Mutex;

type Set = Box<[Arc<Sequence>]>;

/// The sequences producers wait for before reusing a slot. Writers (who replace the set) are
/// serialized by their caller: the graph's lock.
pub(crate) struct Gating {
    #[cfg(not(loom))]
    current: crossbeam_epoch::Atomic<Set>,
    #[cfg(loom)]
    current: Mutex<Arc<Set>>,
}

impl Gating {
    pub(crate) fn new(set: Vec<Arc<Sequence>>) -> Self {
        let set: Set = set.into_boxed_slice();
        Self {
            #[cfg(not(loom))]
            current: crossbeam_epoch::Atomic::new(set),
            #[cfg(loom)]
            current: Mutex::new(Arc::new(set)),
        }
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
        // Miri: tests/models.rs and tests/stress.rs change the set while producers read it (loom
        // runs the `Arc` twin below).
        // SAFETY: never null (every install is a valid `Box`); freed only by `defer_destroy`,
        // after every thread pinned now (this one, until `guard` drops) has unpinned.
        f(unsafe { set.deref() })
    }

    #[cfg(loom)]
    fn with_current<R>(&self, f: impl FnOnce(&[Arc<Sequence>]) -> R) -> R {
        let set = self.current.lock().unwrap().clone();
        f(&set)
    }

    /// Installs `set` and returns once no minimum can still be computed from the old one (the
    /// grace period of the module docs). Callers are serialized (the graph's lock), so each
    /// replacement starts from the set the previous one installed.
    pub(crate) fn replace(&self, set: Vec<Arc<Sequence>>) {
        self.install(set.into_boxed_slice());
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
            // Miri: tests/models.rs, tests/stress.rs add and remove stages while producers run.
            // SAFETY: `old` was installed by `new` or a previous `install` and is unreachable now
            // that it is swapped out; crossbeam-epoch frees it once every reader pinned now left.
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
        // SAFETY: `&mut self`: no reader can hold the set any more (miri: every test drops its
        // queue).
        unsafe {
            let guard = crossbeam_epoch::unprotected();
            let set = self
                .current
                .load(std::sync::atomic::Ordering::Relaxed, guard);
            drop(set.into_owned());
        }
    }
}
