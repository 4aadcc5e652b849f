//! Wait strategies: how a thread waits for a sequence to move, trading CPU for latency.
//!
//! Everybody who waits in ringmq waits through a [`WaitStrategy`]: consumers for the producers' cursor
//! or their upstream stage, producers for room in a full ring. A wait is a loop around three
//! questions the caller supplies: *is it ready?* (`ready`), *must I stop?* (`stop`: shutdown, halt,
//! failure), and *is the deadline past?* The strategy only decides what to do between two looks.
//!
//! Whoever moves a sequence that somebody may wait on calls [`WaitStrategy::notify`] afterwards:
//! producers after each publish, consumers after each batch, the queue on shutdown and halt. For the
//! polling strategies `notify` is empty and compiles away. [`Blocking`] makes it cheap when nobody
//! sleeps: one fence and one load; the lock is taken only when a waiter announced itself.
//!
//! # Choosing one
//!
//! | strategy | latency | CPU while idle | use when |
//! |---|---|---|---|
//! | [`BusySpin`] | lowest (tens of ns) | one full core per waiting thread | every spinning thread has a core of its own (pinned), latency is all that matters |
//! | [`Yielding`] | low | high, but gives the core away when others need it | low latency on a machine that is not oversubscribed, or only slightly |
//! | [`Sleeping`] | up to the sleep period | near zero | throughput matters, latency does not; background pipelines ([`Sleeping::immediate`] when threads outnumber cores) |
//! | [`Blocking`] | a wake-up (microseconds) when the waiter slept | zero | **more threads than cores**, and anywhere idle CPU must be free: the safe choice |
//!
//! More busy-spinning threads than cores is a livelock in waiting: the spinner holds the core the
//! thread it waits for needs. With more threads than cores use [`Blocking`],
//! [`Sleeping::immediate`] or at least [`Yielding`].

use std::time::{Duration, Instant};

use crate::protocol::wake::{notify_tasks, TaskWaits, Tasks, TASK, THREAD};
use crate::sync::{fence, spin_loop, thread, AtomicUsize, Backoff, Condvar, Mutex, Ordering};

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited<T, S> {
    /// `ready` returned a value.
    Ready(T),
    /// `stop` returned a reason.
    Stopped(S),
    /// The deadline passed first.
    TimedOut,
}

/// How a thread waits for a condition that another thread makes true.
///
/// # Contract
/// - `wait_until` returns as soon as it observes `ready()` or `stop()` return `Some`, or the
///   deadline pass; it calls `ready` before `stop` on each look, so a ready value wins.
/// - A strategy that sleeps must not miss a wake-up: if the condition becomes true and then
///   [`notify`](WaitStrategy::notify) is called, a waiter that is asleep (or about to sleep) wakes.
/// - `notify` is on every producer's publish path: keep it free when nobody waits.
pub trait WaitStrategy: Send + Sync + 'static {
    /// Waits until `ready` or `stop` gives `Some`, or `deadline` passes.
    fn wait_until<T, S>(
        &self,
        ready: impl FnMut() -> Option<T>,
        stop: impl FnMut() -> Option<S>,
        deadline: Option<Instant>,
    ) -> Waited<T, S>;

    /// Called after a sequence that somebody may wait on has moved.
    #[inline]
    fn notify(&self) {}

    /// The [`Blocking`] whose table wakes this strategy's async waiters (an awaiting producer,
    /// poller or receipt), if it has one. The default, `None`, is right for the strategies that
    /// poll: an async waiter then re-polls through its executor (the task wakes itself and
    /// yields), as a [`Yielding`] thread looks again. A strategy of your own that wraps a
    /// `Blocking` (and calls its `notify`) returns it here so tasks sleep until woken.
    ///
    /// ```
    /// use ringmq::{Blocking, WaitStrategy, Yielding};
    /// assert!(Blocking::new().task_wakeups().is_some());
    /// assert!(Yielding.task_wakeups().is_none());
    /// ```
    #[inline]
    fn task_wakeups(&self) -> Option<&Blocking> {
        None
    }
}

/// Runs the polling loop shared by the non-blocking strategies; `pause` runs between two looks.
#[inline]
fn poll<T, S>(
    mut ready: impl FnMut() -> Option<T>,
    mut stop: impl FnMut() -> Option<S>,
    deadline: Option<Instant>,
    mut pause: impl FnMut(),
) -> Waited<T, S> {
    loop {
        if let Some(v) = ready() {
            return Waited::Ready(v);
        }
        if let Some(s) = stop() {
            return Waited::Stopped(s);
        }
        if crate::sync::expired(deadline) {
            return Waited::TimedOut;
        }
        pause();
    }
}

/// Spins on the condition without ever giving the core away: the lowest latency, one whole core.
///
/// Only for threads that have a core to themselves; see the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct BusySpin;

impl WaitStrategy for BusySpin {
    #[inline]
    fn wait_until<T, S>(
        &self,
        ready: impl FnMut() -> Option<T>,
        stop: impl FnMut() -> Option<S>,
        deadline: Option<Instant>,
    ) -> Waited<T, S> {
        poll(ready, stop, deadline, spin_loop)
    }
}

/// Spins briefly, then yields the core to the scheduler between looks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Yielding;

impl WaitStrategy for Yielding {
    #[inline]
    fn wait_until<T, S>(
        &self,
        ready: impl FnMut() -> Option<T>,
        stop: impl FnMut() -> Option<S>,
        deadline: Option<Instant>,
    ) -> Waited<T, S> {
        let backoff = Backoff::new();
        poll(ready, stop, deadline, || {
            // `snooze` spins with exponential backoff, then yields once the spin budget is spent.
            backoff.snooze()
        })
    }
}

/// Spins, then yields, then sleeps for a bounded period between looks: near-zero idle CPU, with
/// latency up to the sleep period. Needs no wake-up from anyone.
///
/// [`Sleeping::immediate`] skips the spinning and yielding: with more threads than cores, a
/// consumer that spins and yields before each sleep takes every event the moment it is
/// published, one at a time, on a core the producer needs (the README's Performance section
/// measures it: 4-11x less throughput for a 1P-3C graph on 2 cores fed one event at a time).
#[derive(Debug, Clone, Copy)]
pub struct Sleeping {
    period: Duration,
    /// Whether to spin and yield before the first sleep of a wait.
    spin_first: bool,
}

impl Sleeping {
    /// The longest nap: a sleeper sees a shutdown or halt only between naps, so a longer period
    /// would only hold those up. Longer periods are cut to it.
    pub const MAX_PERIOD: Duration = Duration::from_secs(1);

    /// Sleeps `period` (at most [`MAX_PERIOD`](Self::MAX_PERIOD)) between looks once spinning
    /// and yielding found nothing.
    ///
    /// ```
    /// use std::time::Duration;
    /// let wait = ringmq::Sleeping::new(Duration::from_micros(100));
    /// assert_eq!(wait.period(), Duration::from_micros(100));
    /// // Any period is accepted; past a second it is cut, so shutdown is never held up longer.
    /// assert_eq!(ringmq::Sleeping::new(Duration::MAX).period(), ringmq::Sleeping::MAX_PERIOD);
    /// ```
    pub fn new(period: Duration) -> Self {
        Self {
            period: period.min(Self::MAX_PERIOD),
            spin_first: true,
        }
    }

    /// The period between looks.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(ringmq::Sleeping::immediate(Duration::ZERO).period(), Duration::ZERO);
    /// ```
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Sleeps `period` (at most [`MAX_PERIOD`](Self::MAX_PERIOD)) as soon as a look finds
    /// nothing, without spinning or yielding first: the
    /// least CPU while waiting, and the choice when threads outnumber cores. Consumers then
    /// wake to whole batches instead of chasing the producer event by event.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ringmq::{Builder, Consumer, Sleeping};
    /// // Four threads on a small machine: nobody spins.
    /// let mut b = Builder::single_producer(1024, || 0u64, Sleeping::immediate(Duration::from_micros(50)))?;
    /// for name in ["a", "b", "c"] {
    ///     b.add(Consumer::new(name, |_: &u64, _, _| {}));
    /// }
    /// let (mut producer, queue) = b.build()?;
    /// producer.publish(|e| *e = 1)?;
    /// drop(producer);
    /// queue.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn immediate(period: Duration) -> Self {
        Self {
            period: period.min(Self::MAX_PERIOD),
            spin_first: false,
        }
    }
}

impl Default for Sleeping {
    /// Sleeps 100 µs between looks.
    fn default() -> Self {
        Self::new(Duration::from_micros(100))
    }
}

impl WaitStrategy for Sleeping {
    #[inline]
    fn wait_until<T, S>(
        &self,
        ready: impl FnMut() -> Option<T>,
        stop: impl FnMut() -> Option<S>,
        deadline: Option<Instant>,
    ) -> Waited<T, S> {
        let backoff = Backoff::new();
        poll(ready, stop, deadline, || {
            if !self.spin_first || backoff.is_completed() {
                let nap = match crate::sync::deadline_and_now(deadline) {
                    Some((d, now)) => self.period.min(d.saturating_duration_since(now)),
                    None => self.period,
                };
                thread::sleep(nap);
            } else {
                backoff.snooze();
            }
        })
    }
}

/// Parks waiting threads, and puts waiting async tasks to sleep, until they are notified: zero
/// idle CPU, a wake-up's latency.
///
/// Safe with any number of threads on any number of cores: the safe choice when unsure, and the
/// strategy for a queue with async participants (see [`task_wakeups`](WaitStrategy::task_wakeups)).
///
/// # Protocol
/// A waiter announces itself (`count += 1`), issues a SeqCst fence, takes the lock, looks at the
/// condition once more and only then sleeps on the condvar. A notifier makes the condition true,
/// issues a SeqCst fence and loads `count`; only if it is non-zero does it take the lock and
/// wake everybody. The two fences are ordered one way or the other: either the notifier sees the
/// announcement (and wakes the waiter, whose sleep it cannot slip past because it takes the lock
/// the waiter holds until it sleeps), or the waiter's last look sees the condition. No wake-up is
/// lost, and a notifier with nobody asleep pays a fence and a load.
///
/// Tasks wait in a fixed table of waker slots (64 by default, [`with_task_slots`](Self::with_task_slots))
/// counted in the upper half of the same word, by the same fence-and-recheck protocol (the
/// `protocol::wake` module); so the notifier's one load tells it whether to take the lock, wake
/// tasks, both or neither.
pub struct Blocking {
    /// Parked threads (in units of `wake::THREAD`) plus leased task slots (`wake::TASK`).
    count: AtomicUsize,
    lock: Mutex<()>,
    condvar: Condvar,
    tasks: Tasks,
}

impl Default for Blocking {
    fn default() -> Self {
        Self::with_task_slots(64)
    }
}

impl Blocking {
    /// A blocking strategy with nobody asleep and 64 task slots.
    ///
    /// ```
    /// let wait = ringmq::Blocking::new();
    /// assert_eq!(wait.task_slots(), 64);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// A blocking strategy with room for `slots` async waiters (rounded up to a multiple of 64):
    /// each producer or poller that has awaited once (it keeps its slot from its first wait
    /// until the handle drops, so its waits cost no lease), plus the receipt futures awaited at
    /// the same time. More waiters than that still work: the extra ones re-poll through their
    /// executor until a slot frees, so they cost CPU, never a hang. The table is allocated
    /// here, once; a wait allocates nothing.
    ///
    /// ```
    /// let wait = ringmq::Blocking::with_task_slots(1000);
    /// assert_eq!(wait.task_slots(), 1024);
    /// ```
    pub fn with_task_slots(slots: usize) -> Self {
        Self {
            count: AtomicUsize::new(0),
            lock: Mutex::new(()),
            condvar: Condvar::new(),
            tasks: Tasks::new(slots),
        }
    }

    /// How many async tasks can wait at once without re-polling.
    ///
    /// ```
    /// assert_eq!(ringmq::Blocking::with_task_slots(1).task_slots(), 64);
    /// ```
    pub fn task_slots(&self) -> usize {
        self.tasks.len()
    }

    pub(crate) fn task_waits(&self) -> TaskWaits<'_> {
        TaskWaits {
            count: &self.count,
            tasks: &self.tasks,
        }
    }
}

/// The table through which `wait` wakes tasks, if it has one.
#[inline]
pub(crate) fn task_waits<W: WaitStrategy + ?Sized>(wait: &W) -> Option<TaskWaits<'_>> {
    wait.task_wakeups().map(Blocking::task_waits)
}

impl std::fmt::Debug for Blocking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.count.load(Ordering::Relaxed);
        f.debug_struct("Blocking")
            .field("sleepers", &(count % TASK))
            .field("tasks", &(count / TASK))
            .finish()
    }
}

impl WaitStrategy for Blocking {
    fn wait_until<T, S>(
        &self,
        mut ready: impl FnMut() -> Option<T>,
        mut stop: impl FnMut() -> Option<S>,
        deadline: Option<Instant>,
    ) -> Waited<T, S> {
        loop {
            if let Some(v) = ready() {
                return Waited::Ready(v);
            }
            if let Some(s) = stop() {
                return Waited::Stopped(s);
            }
            if crate::sync::expired(deadline) {
                return Waited::TimedOut;
            }
            self.count.fetch_add(THREAD, Ordering::Relaxed);
            // SeqCst fence: pairs with the one in `notify` (see the protocol above).
            fence(Ordering::SeqCst);
            let guard = self.lock.lock().unwrap();
            let outcome = if let Some(v) = ready() {
                Some(Waited::Ready(v))
            } else if let Some(s) = stop() {
                Some(Waited::Stopped(s))
            } else {
                match crate::sync::deadline_and_now(deadline) {
                    Some((d, now)) => {
                        let left = d.saturating_duration_since(now);
                        if !left.is_zero() {
                            wait_timeout(&self.condvar, guard, left);
                        }
                    }
                    None => drop(self.condvar.wait(guard).unwrap()),
                }
                None
            };
            self.count.fetch_sub(THREAD, Ordering::Relaxed);
            if let Some(o) = outcome {
                return o;
            }
        }
    }

    #[inline]
    fn notify(&self) {
        // SeqCst fence: orders our caller's store (the sequence it moved) before the load of
        // `count`, against the waiter's announce-then-look (see the protocol above).
        fence(Ordering::SeqCst);
        let seen = self.count.load(Ordering::Relaxed);
        // A task counted is a slot leased, which a producer or poller keeps between its waits:
        // look at the armed bits here, inline, and go to the cold path only if one is set. (The
        // loads come after the fence, which is all the protocol asks of them.)
        if seen != 0 && (seen % TASK != 0 || self.tasks.any_armed()) {
            self.wake(seen);
        }
    }

    #[inline]
    fn task_wakeups(&self) -> Option<&Blocking> {
        Some(self)
    }
}

impl Blocking {
    /// The notifier's rare half: somebody waits.
    #[cold]
    #[inline(never)]
    fn wake(&self, seen: usize) {
        if seen % TASK != 0 {
            drop(self.lock.lock().unwrap());
            self.condvar.notify_all();
        }
        notify_tasks(&self.tasks, seen);
    }
}

#[cfg(not(loom))]
fn wait_timeout(cv: &Condvar, guard: std::sync::MutexGuard<'_, ()>, d: Duration) {
    drop(cv.wait_timeout(guard, d).unwrap());
}

#[cfg(loom)]
fn wait_timeout(_cv: &Condvar, guard: loom::sync::MutexGuard<'_, ()>, _d: Duration) {
    // Time does not exist under loom (`now()` is `None`), so no deadline reaches here.
    drop(guard);
}

/// A per-consumer override of the queue's wait strategy, limited to the strategies that poll.
///
/// A consumer may wait differently from the rest of the queue (a latency-critical stage spinning
/// on its own core while the others block), but only with a strategy that needs no wake-up: a
/// [`Blocking`] waiter of its own would never be notified by producers, who notify the queue's.
///
/// ```
/// use ringmq::{Consumer, PollingWait, Sleeping};
/// use std::time::Duration;
/// // A background stage that sleeps as soon as it finds nothing, whatever the queue does.
/// let c = Consumer::new("archive", |_: &u64, _, _| {})
///     .wait_strategy(PollingWait::Sleeping(Sleeping::immediate(Duration::from_micros(200))));
/// # let _ = c;
/// ```
#[derive(Debug, Clone, Copy)]
pub enum PollingWait {
    /// [`BusySpin`].
    BusySpin,
    /// [`Yielding`].
    Yielding,
    /// This [`Sleeping`] strategy: [`Sleeping::new`] (spin and yield, then sleep) or
    /// [`Sleeping::immediate`] (sleep at once).
    Sleeping(Sleeping),
}

impl WaitStrategy for PollingWait {
    #[inline]
    fn wait_until<T, S>(
        &self,
        ready: impl FnMut() -> Option<T>,
        stop: impl FnMut() -> Option<S>,
        deadline: Option<Instant>,
    ) -> Waited<T, S> {
        match *self {
            PollingWait::BusySpin => BusySpin.wait_until(ready, stop, deadline),
            PollingWait::Yielding => Yielding.wait_until(ready, stop, deadline),
            PollingWait::Sleeping(s) => s.wait_until(ready, stop, deadline),
        }
    }
}
