//! Waking tasks: how an async participant (a producer awaiting room, a poller awaiting events, a
//! receipt being awaited) waits without a thread, and how the side that makes progress wakes it.
//!
//! # Contract
//! - A task waits in a *slot* of a fixed table ([`Tasks`]) that the [`Blocking`] strategy owns: an
//!   [`AtomicWaker`](atomic_waker::AtomicWaker) per slot and two bitmaps, `leased` (the slot
//!   belongs to a waiting future) and `armed` (its waker is registered and not yet woken). The
//!   table is allocated once, with the strategy; a wait allocates nothing.
//! - A handle *leases* a slot ([`Lease`]) the first time one of its futures must wait and keeps
//!   it until the handle drops: an async producer's or a poller's futures wait one at a time
//!   (they borrow the handle mutably), so the slot is theirs in turn, and a wait costs no lease
//!   or release (measured: a round trip between two tasks took 2438 instructions with a lease
//!   per wait, see the issue note). A receipt future (`Tracker::processed_async`, many at once
//!   per tracker) leases for its own life. A wait that ends clears its `armed` bit if no
//!   notifier took it ([`Lease::disarm`]). All slots leased: the future falls back to waking
//!   itself at once (`wake_by_ref`, then `Pending`), which re-polls it through the executor the
//!   way a [`Yielding`](super::wait::Yielding) thread re-looks: never a hang, only CPU. Size
//!   the table ([`Blocking::with_task_slots`]) for the producers and pollers that await plus
//!   the receipts awaited at the same time.
//! - A waker is notified by whoever calls [`WaitStrategy::notify`](super::wait::WaitStrategy)
//!   after moving a sequence: producers after a publish, consumers after a batch, the queue on
//!   shutdown, halt and failure. With nobody waiting it costs what `Blocking` always cost: one
//!   SeqCst fence and one load (parked threads and leased slots are counted in the same word).
//!
//! # No lost wake-up
//! The waiter: *try* (the condition, or the operation itself: a claim that only succeeds when it
//! can publish at once), lease, register the waker, set its `armed` bit, **SeqCst fence**, *try
//! again*, and only then return `Pending`. The notifier: make the condition true, **SeqCst
//! fence**, load the count; if a task is counted, take every `armed` bit (`swap(0)`) and wake
//! those slots. The two fences are ordered one way or the other: either the notifier's loads see
//! the armed bit (and the waker registered before it, through the bit's Release and the swap's
//! Acquire), or the waiter's second try sees the condition. Loom: `wake::models` (a publish
//! waking an awaiting poller, a release of room waking an awaiting producer, a receipt), each
//! with a seeded bug in `loom-tests/seeded-bugs.sh`.
//!
//! [`Blocking`]: super::wait::Blocking
//! [`Blocking::with_task_slots`]: super::wait::Blocking::with_task_slots

use std::task::{Context, Poll};

use crate::sync::{fence, AtomicU64, AtomicUsize, Ordering};

#[cfg(all(test, loom))]
mod models;

/// One parked thread in the shared count; a leased task slot counts [`TASK`].
pub(crate) const THREAD: usize = 1;
/// A leased task slot in the shared count: the upper half of the word, so one load tells a
/// notifier whether threads, tasks, both or neither wait.
pub(crate) const TASK: usize = 1 << (usize::BITS / 2);

/// The fixed table of task slots (see the module docs).
pub(crate) struct Tasks {
    leased: Box<[AtomicU64]>,
    armed: Box<[AtomicU64]>,
    wakers: Box<[Slot]>,
}

impl Tasks {
    /// A table of `slots` slots (rounded up to a multiple of 64; at least 64).
    pub(crate) fn new(slots: usize) -> Self {
        let words = slots.div_ceil(64).max(1);
        Self {
            leased: (0..words).map(|_| AtomicU64::new(0)).collect(),
            armed: (0..words).map(|_| AtomicU64::new(0)).collect(),
            wakers: (0..words * 64).map(|_| Slot::new()).collect(),
        }
    }

    /// How many slots the table has.
    pub(crate) fn len(&self) -> usize {
        self.wakers.len()
    }

    /// Takes a free slot, counting it in `count`; `None` if all are leased.
    fn lease(&self, count: &AtomicUsize) -> Option<usize> {
        for (w, word) in self.leased.iter().enumerate() {
            let mut seen = word.load(Ordering::Relaxed);
            while seen != u64::MAX {
                let bit = (!seen).trailing_zeros();
                // Relaxed: the bit only makes the slot ours; what we publish through it (the
                // waker) is ordered by the `armed` bit's Release.
                match word.compare_exchange_weak(
                    seen,
                    seen | 1 << bit,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // Relaxed: the waiter's SeqCst fence (in `poll_wait`) orders it before
                        // the second try, against the notifier's fence.
                        count.fetch_add(TASK, Ordering::Relaxed);
                        return Some(w * 64 + bit as usize);
                    }
                    Err(now) => seen = now,
                }
            }
        }
        None
    }

    /// Gives slot `i` back: disarms it, drops its waker, frees it, uncounts it.
    fn release(&self, count: &AtomicUsize, i: usize) {
        let bit = 1u64 << (i % 64);
        self.armed[i / 64].fetch_and(!bit, Ordering::Relaxed);
        // The waker may hold the task alive: drop it now rather than at the slot's next use.
        self.wakers[i].take();
        count.fetch_sub(TASK, Ordering::Relaxed);
        // Release: the next lessee of the slot starts after our `take`.
        self.leased[i / 64].fetch_and(!bit, Ordering::Release);
    }

    /// Wakes every armed slot, disarming it. Called by a notifier that saw a task counted.
    /// Whether any slot is armed (a Relaxed look; `wake_armed` takes the bits).
    #[inline]
    pub(crate) fn any_armed(&self) -> bool {
        self.armed.iter().any(|w| w.load(Ordering::Relaxed) != 0)
    }

    fn wake_armed(&self) {
        for (w, word) in self.armed.iter().enumerate() {
            if word.load(Ordering::Relaxed) == 0 {
                continue;
            }
            // Acquire: pairs with the arming `fetch_or` (Release), so the waker registered
            // before it is the one `wake` finds.
            let mut bits = word.swap(0, Ordering::Acquire);
            while bits != 0 {
                let bit = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                self.wakers[w * 64 + bit].wake();
            }
        }
    }
}

/// A notifier's side, after its caller made progress and issued the SeqCst fence: wakes armed
/// tasks if the count `seen` (loaded after the fence) says any slot is leased.
#[inline]
pub(crate) fn notify_tasks(tasks: &Tasks, seen: usize) {
    if seen >= TASK {
        tasks.wake_armed();
    }
}

/// The table and the count a strategy that wakes tasks shares with its notifiers.
#[derive(Clone, Copy)]
pub(crate) struct TaskWaits<'a> {
    pub(crate) count: &'a AtomicUsize,
    pub(crate) tasks: &'a Tasks,
}

/// A hold on a waker slot: none until the first wait, then one until [`Lease::end`]. Held by a
/// handle (an async producer's or a poller's, ended in the handle's `Drop`) or by a receipt
/// future (ended in the future's `Drop`). It holds no reference, so neither needs a borrow of
/// the strategy.
///
/// A `Cell`: a poll future reads its handle through `&` (a poller's `poll_shared`) while it
/// leases; both handles are `!Sync`, and a receipt future owns its lease.
#[derive(Debug, Default)]
pub(crate) struct Lease(std::cell::Cell<Option<usize>>);

impl Lease {
    /// Gives the slot back, if held: the handle or the future that held it is gone.
    pub(crate) fn end(&self, waits: Option<TaskWaits<'_>>) {
        if let (Some(i), Some(w)) = (self.0.take(), waits) {
            w.tasks.release(w.count, i);
        }
    }

    /// Done waiting (the wait completed or its future was dropped), slot kept: clears the
    /// slot's `armed` bit if no notifier took it, so that no later notify wakes a task that no
    /// longer waits here. Losing the race to a notifier's `swap` only costs that task one
    /// spurious wake-up.
    pub(crate) fn disarm(&self, waits: Option<TaskWaits<'_>>) {
        if let (Some(i), Some(w)) = (self.0.get(), waits) {
            let bit = 1u64 << (i % 64);
            let word = &w.tasks.armed[i / 64];
            // Relaxed: the bit orders nothing for us; a load first, because a task woken by a
            // notifier (the common case) finds it already clear and need not write the line.
            if word.load(Ordering::Relaxed) & bit != 0 {
                word.fetch_and(!bit, Ordering::Relaxed);
            }
        }
    }
}

/// Polls a wait: `attempt` returns `Some` when the future is done (ready, or stopped with an
/// error). The protocol is the module docs' waiter side; `waits` is `None` for a strategy that
/// wakes nobody (the polling ones), where the task re-polls through the executor.
#[inline]
pub(crate) fn poll_wait<T>(
    waits: Option<TaskWaits<'_>>,
    lease: &Lease,
    cx: &mut Context<'_>,
    mut attempt: impl FnMut() -> Option<T>,
) -> Poll<T> {
    if let Some(done) = attempt() {
        lease.disarm(waits);
        return Poll::Ready(done);
    }
    let Some(w) = waits else {
        cx.waker().wake_by_ref();
        return Poll::Pending;
    };
    if lease.0.get().is_none() {
        lease.0.set(w.tasks.lease(w.count));
    }
    let Some(i) = lease.0.get() else {
        // Every slot is leased: re-poll through the executor rather than wait unwoken.
        cx.waker().wake_by_ref();
        return Poll::Pending;
    };
    w.tasks.wakers[i].register(cx.waker());
    // Release: a notifier that takes the bit (Acquire) finds the waker just registered.
    w.tasks.armed[i / 64].fetch_or(1 << (i % 64), Ordering::Release);
    // SeqCst fence: pairs with the notifier's (see the module docs). Without it the second
    // try may read the condition from before a notifier's progress while the notifier reads
    // the armed bit from before our store: both miss, and the task sleeps forever.
    fence(Ordering::SeqCst);
    if let Some(done) = attempt() {
        lease.disarm(waits);
        return Poll::Ready(done);
    }
    Poll::Pending
}

/// One task slot: the atomic-waker crate's `AtomicWaker`; under loom, a loom mutex around an
/// `Option<Waker>` (the crate's atomics are std's, invisible to loom; what the models check is
/// the protocol around the slot, not the crate).
#[cfg(not(loom))]
struct Slot(atomic_waker::AtomicWaker);

#[cfg(not(loom))]
impl Slot {
    fn new() -> Self {
        Self(atomic_waker::AtomicWaker::new())
    }
    fn register(&self, waker: &std::task::Waker) {
        self.0.register(waker)
    }
    fn wake(&self) {
        self.0.wake()
    }
    fn take(&self) {
        drop(self.0.take())
    }
}

#[cfg(loom)]
struct Slot(crate::sync::Mutex<Option<std::task::Waker>>);

#[cfg(loom)]
impl Slot {
    fn new() -> Self {
        Self(crate::sync::Mutex::new(None))
    }
    fn register(&self, waker: &std::task::Waker) {
        *self.0.lock().unwrap() = Some(waker.clone());
    }
    fn wake(&self) {
        let waker = self.0.lock().unwrap().take();
        if let Some(w) = waker {
            w.wake();
        }
    }
    fn take(&self) {
        drop(self.0.lock().unwrap().take())
    }
}
