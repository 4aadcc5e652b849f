//! The one place ringmq takes its concurrency primitives from.
//!
//! Every other module imports atomics, `UnsafeCell`, `Arc`, threads, parking, `Mutex`/`Condvar` and
//! spin-waiting from here. Built normally these are `std`'s (and crossbeam-utils' `Backoff`); built
//! with `RUSTFLAGS="--cfg loom"` they are loom's, so the algorithms run unchanged under the model
//! checker, with no `cfg` in the modules that own a protocol.
//!
//! Under miri, spinning yields too (see [`Backoff`]). Two things differ under loom by design:
//! - spinning (`spin_loop`, [`Backoff`]) becomes `loom::thread::yield_now`, because loom explores
//!   schedules and a real spin would never let the other modelled thread run;
//! - time does not exist in a model: [`now`] returns `None` and timed waits (`park_timeout`,
//!   `sleep`, condvar timeouts) become a yield, so a deadline simply never fires.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    fence, AtomicBool, AtomicI32, AtomicI64, AtomicU32, AtomicU64, AtomicUsize,
};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    fence, AtomicBool, AtomicI32, AtomicI64, AtomicU32, AtomicU64, AtomicUsize,
};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex};

pub(crate) use std::sync::atomic::Ordering;

pub(crate) mod thread {
    //! Threads, switched to loom's under `cfg(loom)`.
    #[cfg(loom)]
    pub(crate) use loom::thread::{current, spawn, yield_now, JoinHandle};
    #[cfg(not(loom))]
    pub(crate) use std::thread::{current, yield_now, Builder, JoinHandle};

    /// Spawns a named consumer thread. Loom threads have no names.
    #[cfg(not(loom))]
    pub(crate) fn spawn_named<F, T>(name: String, f: F) -> std::io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Builder::new().name(name).spawn(f)
    }

    /// Spawns a consumer thread; loom threads have no names.
    #[cfg(loom)]
    pub(crate) fn spawn_named<F, T>(_name: String, f: F) -> std::io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Ok(spawn(f))
    }

    /// Sleeps for `d`; a yield under loom.
    #[inline]
    pub(crate) fn sleep(d: std::time::Duration) {
        #[cfg(not(loom))]
        std::thread::sleep(d);
        #[cfg(loom)]
        {
            let _ = d;
            yield_now();
        }
    }
}

/// The current instant, or `None` under loom, where time does not exist and deadlines never fire.
/// Whether a consumer's timed wait times out as soon as it finds nothing (under loom, where time
/// does not pass; see `Barrier::wait_for`).
pub(crate) const MODEL_TIMEOUTS: bool = cfg!(loom);

#[inline]
pub(crate) fn now() -> Option<std::time::Instant> {
    #[cfg(not(loom))]
    return Some(std::time::Instant::now());
    #[cfg(loom)]
    return None;
}

/// The deadline and the current instant, reading the clock only if there is a deadline.
/// The instant `timeout` from now, or `None` (no deadline) when that is past what `Instant` can
/// hold (`Duration::MAX`, say): a timeout too long to represent never fires, as with std's
/// `Condvar::wait_timeout` and crossbeam-channel's `recv_timeout`. Also `None` under loom.
#[inline]
pub(crate) fn deadline_in(timeout: std::time::Duration) -> Option<std::time::Instant> {
    now().and_then(|n| n.checked_add(timeout))
}

#[inline]
pub(crate) fn deadline_and_now(
    deadline: Option<std::time::Instant>,
) -> Option<(std::time::Instant, std::time::Instant)> {
    deadline.and_then(|d| now().map(|n| (d, n)))
}

/// True once `deadline` has passed; reads the clock only if there is a deadline. Always false
/// under loom.
#[inline]
pub(crate) fn expired(deadline: Option<std::time::Instant>) -> bool {
    match deadline {
        None => false,
        Some(d) => now().is_some_and(|n| n >= d),
    }
}

/// A hint that this thread is spinning; a yield under loom and miri (see [`Backoff`]).
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(not(any(loom, miri)))]
    std::hint::spin_loop();
    #[cfg(any(loom, miri))]
    thread::yield_now();
}

/// Spin-then-yield waiting: crossbeam-utils' `Backoff`, or a yield per step under loom and miri.
#[cfg(not(any(loom, miri)))]
pub(crate) use crossbeam_utils::Backoff;

/// Spin-then-yield waiting under loom and miri: every step yields to the scheduler. Loom needs
/// it to schedule the other modelled threads at all. Under miri a spin only burns interpreted
/// steps while the thread that would make progress waits for its turn (a producer waiting for
/// room pins crossbeam-epoch on every look): the waits of the delivery tests took most of
/// miri's 15 minutes there. Only the pace changes; every access is the same.
#[cfg(any(loom, miri))]
#[derive(Default)]
pub(crate) struct Backoff(std::cell::Cell<u32>);

#[cfg(any(loom, miri))]
impl Backoff {
    pub(crate) fn new() -> Self {
        Self::default()
    }
    pub(crate) fn snooze(&self) {
        self.0.set(self.0.get() + 1);
        thread::yield_now();
    }
    pub(crate) fn spin(&self) {
        self.0.set(self.0.get() + 1);
        thread::yield_now();
    }
    pub(crate) fn is_completed(&self) -> bool {
        self.0.get() > 6
    }
}

/// An `UnsafeCell` with loom's closure-based API (`with`, `with_mut`), so loom can track every
/// access to a slot and report a read racing a write.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    #[inline]
    pub(crate) fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }
    #[inline]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }
    #[inline]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;
