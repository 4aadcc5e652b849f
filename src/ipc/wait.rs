//! Waiting across processes: spin, yield, sleep, or block on a futex in the segment. Every
//! waiter also looks after the ring's liveness: once per tick (a quarter of the liveness time)
//! it checks the participants and removes or repairs the dead (`super::ring::maintain`), so a
//! producer waiting for room on a killed consumer frees itself.

use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ring::maintain;
use super::segment::Segment;
use crate::protocol::wait::{WaitStrategy, Waited};

/// How a participant of a cross-process ring waits (for room, for events).
///
/// ```
/// use ringmq::ipc::{IpcWait, ShmOptions};
/// use std::time::Duration;
/// let options = ShmOptions::single_producer(1024).wait(IpcWait::Sleeping(Duration::from_micros(50)));
/// # let _ = options;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IpcWait {
    /// Spin on the sequence: lowest latency, a core per waiting process.
    BusySpin,
    /// Spin a little, then yield the core between looks.
    Yielding,
    /// Sleep this long between looks.
    Sleeping(Duration),
    /// Sleep on a futex in the segment until a publish or a release wakes it (Linux
    /// `FUTEX_WAIT` on a shared word): zero CPU while idle, a wake-up's latency. The safe choice
    /// with more processes than cores.
    #[default]
    Blocking,
}

/// The wait strategy of one process's handle: the kind, the segment (for the futex words and
/// the liveness checks) and the tick.
pub(crate) struct IpcWaiter {
    pub(crate) kind: IpcWait,
    pub(crate) segment: Arc<Segment>,
    pub(crate) tick: Duration,
}

fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // The kernel returns on a wake, a timeout, a signal or a changed value: the caller looks
    // again in every case. Exercised by the Blocking tests of tests/ipc.rs (not under miri).
    // SAFETY: `word` is a valid, aligned u32 for the call (in the mapping the waiter's
    // `Arc<Segment>` keeps); FUTEX_WAIT (shared, not private) only reads it.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: as in `futex_wait`; FUTEX_WAKE does not touch the memory.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

impl WaitStrategy for IpcWaiter {
    fn wait_until<T, S>(
        &self,
        mut ready: impl FnMut() -> Option<T>,
        mut stop: impl FnMut() -> Option<S>,
        deadline: Option<Instant>,
    ) -> Waited<T, S> {
        // The first look reads no clock: a wait that finds its condition at once (a consumer's
        // every batch under load, a claim's room check) costs two calls, not a clock read.
        if let Some(v) = ready() {
            return Waited::Ready(v);
        }
        if let Some(s) = stop() {
            return Waited::Stopped(s);
        }
        let mut next_tick = Instant::now() + self.tick;
        let mut spins = 0u32;
        let words = &self.segment.control().wait;
        loop {
            if let Some(v) = ready() {
                return Waited::Ready(v);
            }
            if let Some(s) = stop() {
                return Waited::Stopped(s);
            }
            spins = spins.wrapping_add(1);
            // The clock is read every 64 looks while spinning, on every look otherwise.
            let look =
                !matches!(self.kind, IpcWait::BusySpin | IpcWait::Yielding) || spins % 64 == 0;
            if look {
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    return Waited::TimedOut;
                }
                if now >= next_tick {
                    maintain(&self.segment);
                    next_tick = now + self.tick;
                    continue;
                }
            }
            match self.kind {
                IpcWait::BusySpin => std::hint::spin_loop(),
                IpcWait::Yielding => {
                    if spins > 100 {
                        std::thread::yield_now()
                    } else {
                        std::hint::spin_loop()
                    }
                }
                IpcWait::Sleeping(d) => std::thread::sleep(d.min(self.tick)),
                IpcWait::Blocking => {
                    let seen = words.futex.load(Ordering::Acquire);
                    // SeqCst: announce, then look (against `notify`'s change, then fence, then
                    // look at `sleepers`): one of the two sees the other.
                    words.sleepers.fetch_add(1, Ordering::SeqCst);
                    fence(Ordering::SeqCst);
                    let found = ready();
                    if let Some(v) = found {
                        words.sleepers.fetch_sub(1, Ordering::Relaxed);
                        return Waited::Ready(v);
                    }
                    let mut timeout = next_tick.saturating_duration_since(Instant::now());
                    if let Some(d) = deadline {
                        timeout = timeout.min(d.saturating_duration_since(Instant::now()));
                    }
                    futex_wait(&words.futex, seen, timeout.max(Duration::from_micros(1)));
                    words.sleepers.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
    }

    #[inline]
    fn notify(&self) {
        if self.kind != IpcWait::Blocking {
            return;
        }
        let words = &self.segment.control().wait;
        // SeqCst fence: orders the caller's store (the sequence it moved) before the look at
        // `sleepers`, against the waiter's announce-then-look.
        fence(Ordering::SeqCst);
        if words.sleepers.load(Ordering::Relaxed) != 0 {
            words.futex.fetch_add(1, Ordering::Release);
            futex_wake_all(&words.futex);
        }
    }
}
