//! The batch loop: one consumer, or one worker of a pool, on its own thread.
//!
//! # The batch loop
//! A consumer owns one sequence: the last event it finished. It waits on its barrier for the
//! next sequence, which returns the *highest* available one; it then hands every event up to it
//! (or up to its `max_batch`) to the handler, the last one with `end_of_batch = true`, and stores
//! its sequence once for the whole batch (`Release`: the events it covers are done). That single
//! store per batch is what lets a consumer that fell behind catch up at memory speed.
//!
//! Delivering a range, passing the slots a producer abandoned and giving `end_of_batch` to the
//! last event actually delivered, is [`deliver`](super::deliver), shared with pollers.
//!
//! # Panics
//! The loop runs under `catch_unwind`, re-entered only after a panic, so it costs nothing per
//! event. What follows a handler's panic is the consumer's [`PanicPolicy`].

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use crate::consume::consumer::{clamp_count, Coalesce, Hook, Options, PanicPolicy};
use crate::consume::handler::{Process, Retry};
use crate::consume::pool::PoolClaim;
use crate::protocol::barrier::Barrier;
use crate::protocol::lifecycle::Stop;
use crate::protocol::sequence::Sequence;
use crate::protocol::sequencer::SequencerImpl;
use crate::protocol::wait::{WaitStrategy, Waited};
use crate::sync::Arc;

/// A panic that stopped a consumer's handler (or, for [`Hook::OnShutdown`], its last call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Panicked {
    pub(crate) hook: Hook,
    pub(crate) sequence: i64,
    pub(crate) message: String,
    /// When it happened, among all panics of the queue: shutdown reports the first.
    pub(crate) ticket: usize,
}

/// How a consumer thread ended.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerExit {
    pub(crate) name: String,
    /// The consumer thread's id within the queue (unique, unlike names).
    pub(crate) worker: usize,
    pub(crate) last_sequence: i64,
    pub(crate) skipped: u64,
    pub(crate) skipped_hooks: u64,
    pub(crate) panic: Option<Panicked>,
}

/// The batch loop of one consumer (or one worker of a pool), with everything it needs.
pub(crate) struct Processor<E, S, W> {
    pub(crate) name: String,
    /// Unique within the queue: names the worker in a failure (see [`ConsumerExit::worker`]).
    pub(crate) worker: usize,
    pub(crate) barrier: Barrier<E, S, W>,
    pub(crate) sequence: Arc<Sequence>,
    pub(crate) options: Options,
    /// The pool's shared claim, for a worker of a work pool.
    pub(crate) pool: Option<Arc<PoolClaim>>,
    /// This thread's counters (`consume::counters`): only this thread writes them.
    pub(crate) counters: Arc<super::counters::StageCounters>,
    /// Batches started, for sampling the waits the counters time (one in
    /// [`WAIT_SAMPLE`](super::counters::WAIT_SAMPLE)).
    pub(crate) waits: std::cell::Cell<u32>,
}

pub(crate) enum Ended {
    Drained,
    Halted,
}

/// Where the loop is, kept outside `catch_unwind` so a panic's position survives it.
pub(crate) struct Position {
    /// The next sequence to hand over; after a panic in `on_event`, the one that panicked.
    pub(crate) next: i64,
    /// For a pool worker, the last sequence of its current claim (`< next`: no claim).
    pub(crate) claim_end: i64,
    /// The highest sequence this consumer handled or passed (what its report calls
    /// `last_sequence`; for a pool worker its own sequence can be past it, see `pool.rs`).
    pub(crate) finished: i64,
    /// The hook that was running when a panic unwound; written by [`InHook`] on unwind only.
    pub(crate) hook: Hook,
    /// After `on_batch_start` panicked under `SkipEvent`: hand the batch over without calling it
    /// again (it would only panic again).
    pub(crate) pass_batch_start: bool,
    /// The first sequence of the batch being delivered: a batch cut short by a panic counts the
    /// events before it.
    pub(crate) batch_first: i64,
}

impl Position {
    fn new(next: i64) -> Self {
        Self {
            next,
            claim_end: next - 1,
            finished: next - 1,
            hook: Hook::Engine,
            pass_batch_start: false,
            batch_first: next,
        }
    }
}

/// What the loop does after a panic.
enum Then {
    /// Re-enter the loop where `Position` says.
    Resume,
    /// The loop is over (the queue failed, or the handler is stopped and the consumer passed
    /// everything it will see).
    Stop,
}

impl<E, S: SequencerImpl, W: WaitStrategy> Processor<E, S, W> {
    /// Runs the consumer to its end on the current thread.
    pub(crate) fn run<P: Process<E>>(self, make: impl FnOnce() -> P) -> ConsumerExit {
        let start = self.sequence.get_relaxed() + 1;
        let mut exit = ConsumerExit {
            name: self.name.clone(),
            worker: self.worker,
            last_sequence: start - 1,
            skipped: 0,
            skipped_hooks: 0,
            panic: None,
        };
        // A pool worker starts with no claim (`claim_end < next`).
        let mut at = Position::new(start);
        let mut process = match catch_unwind(AssertUnwindSafe(make)) {
            Ok(p) => p,
            Err(payload) => {
                at.hook = Hook::Factory;
                self.after_panic(payload.as_ref(), &mut at, &mut exit);
                exit.last_sequence = self.last_sequence(&at);
                return exit;
            }
        };
        let mut then = Then::Resume;
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| process.on_start())) {
            at.hook = Hook::OnStart;
            then = self.after_panic(payload.as_ref(), &mut at, &mut exit);
        }
        while let Then::Resume = then {
            // A panic that no hook guard claims is the engine's (see `Hook::Engine`).
            at.hook = Hook::Engine;
            let result = catch_unwind(AssertUnwindSafe(|| match &self.pool {
                None => self.batches(&mut process, &mut at),
                Some(pool) => self.work(pool, &mut process, &mut at),
            }));
            then = match result {
                Ok(_ended) => Then::Stop,
                Err(payload) => self.after_panic(payload.as_ref(), &mut at, &mut exit),
            };
        }
        // Reported, never fatal to the others: by now this consumer is done, and the rest of the
        // queue may still be draining.
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| process.on_shutdown())) {
            let message = panic_message(payload.as_ref());
            crate::diag::error(format_args!(
                "consumer `{}` panicked in on_shutdown: {message}",
                self.name
            ));
            if exit.panic.is_none() {
                exit.panic = Some(self.panicked(Hook::OnShutdown, at.finished, message));
            }
        }
        exit.last_sequence = self.last_sequence(&at);
        exit
    }

    /// What the report calls the last sequence: the consumer's own sequence, which for a pool
    /// worker may stand for a claim past what was published, so for it what it really finished.
    fn last_sequence(&self, at: &Position) -> i64 {
        match self.pool {
            None => self.sequence.get_relaxed(),
            Some(_) => at.finished,
        }
    }

    /// Applies the panic policy to a panic in `at.hook` (see [`PanicPolicy`] for the table).
    /// Only a panic in `on_event` fails an event, and that event (`at.next`) was published; any
    /// other hook leaves the consumer where it was, so no sequence it has not been handed is
    /// ever passed (the loom model `hook_panic_while_waiting_never_passes_an_unpublished_slot`).
    #[cold]
    fn after_panic(
        &self,
        payload: &(dyn Any + Send),
        at: &mut Position,
        exit: &mut ConsumerExit,
    ) -> Then {
        let message = panic_message(payload);
        let hook = at.hook;
        self.counters.panic();
        // Without a handler there is nothing to skip to: the stage goes on without it.
        let policy = match (hook, self.options.policy) {
            (Hook::Engine, _) => PanicPolicy::HaltAll,
            (Hook::Factory, PanicPolicy::SkipEvent) => PanicPolicy::HaltConsumer,
            (_, policy) => policy,
        };
        let sequence = match hook {
            Hook::OnEvent | Hook::OnBatchStart => at.next,
            _ => at.next - 1,
        };
        if hook == Hook::OnEvent {
            // The batch was cut short: count what it handed over (the skipped event too).
            let skipped = i64::from(policy == PanicPolicy::SkipEvent);
            let n = sequence - at.batch_first + skipped;
            if n > 0 {
                self.counters.batch(n, 0);
            }
        }
        let name = &self.name;
        match policy {
            PanicPolicy::HaltAll => {
                let panicked = self.panicked(hook, sequence, message);
                self.barrier.core.fail(&self.name, self.worker, sequence);
                exit.panic = Some(panicked);
                Then::Stop
            }
            PanicPolicy::SkipEvent if hook == Hook::OnEvent => {
                crate::diag::warn(format_args!(
                    "consumer `{name}` panicked at sequence {sequence}: {message}; skipping the event"
                ));
                exit.skipped += 1;
                self.counters.skip();
                // For a pool worker too: it holds nothing at or below `sequence` now.
                self.sequence.set(sequence);
                self.barrier.core.wait.notify();
                at.next = sequence + 1;
                at.finished = at.finished.max(sequence);
                Then::Resume
            }
            PanicPolicy::SkipEvent => {
                crate::diag::warn(format_args!(
                    "consumer `{name}` panicked in {hook}: {message}; passing over the call"
                ));
                exit.skipped_hooks += 1;
                at.pass_batch_start = hook == Hook::OnBatchStart;
                Then::Resume
            }
            PanicPolicy::HaltConsumer => {
                crate::diag::warn(format_args!(
                    "consumer `{name}` panicked in {hook} at sequence {sequence}: {message}; \
                     its handler is stopped, the rest of the queue goes on"
                ));
                exit.panic = Some(self.panicked(hook, sequence, message));
                // From the first sequence not handled: after `on_event`, the one that panicked.
                // Under `catch_unwind` too: a panic here (a user wait strategy's) would otherwise
                // end the thread with its sequence frozen, holding producers back for good.
                let passing = catch_unwind(AssertUnwindSafe(|| match &self.pool {
                    None => {
                        self.pass(at.next, i64::MAX, at, exit);
                    }
                    Some(pool) => self.retire(pool, at, exit),
                }));
                if passing.is_err() {
                    self.barrier.core.fail(&self.name, self.worker, at.finished);
                }
                Then::Stop
            }
        }
    }

    fn panicked(&self, hook: Hook, sequence: i64, message: String) -> Panicked {
        Panicked {
            hook,
            sequence,
            message,
            ticket: self.barrier.core.lifecycle.ticket(),
        }
    }

    #[inline]
    pub(crate) fn wait_for(&self, next: i64) -> Waited<i64, Stop> {
        let timeout = self.options.timeout;
        match &self.options.wait {
            Some(polling) => self.barrier.wait_for(next, polling, timeout),
            None => self
                .barrier
                .wait_for(next, &self.barrier.core.wait, timeout),
        }
    }

    /// [`wait_for`](Self::wait_for), timing one wait in
    /// [`WAIT_SAMPLE`](super::counters::WAIT_SAMPLE) if its first look finds nothing (two clock
    /// reads per wait cost a consumer that keeps up with its producer a fifth of its
    /// throughput; sampled, the waiting time is an estimate: the sampled waits times the rate).
    #[inline]
    pub(crate) fn counted_wait(&self, next: i64) -> Waited<i64, Stop> {
        if !cfg!(feature = "counters") {
            return self.wait_for(next);
        }
        let n = self.waits.get().wrapping_add(1);
        self.waits.set(n);
        if n % super::counters::WAIT_SAMPLE != 0 || self.barrier.available(next) >= next {
            return self.wait_for(next);
        }
        let start = crate::sync::now();
        let waited = self.wait_for(next);
        if let Some(start) = start {
            self.counters
                .waited(start.elapsed() * super::counters::WAIT_SAMPLE);
        }
        waited
    }

    /// Calls `on_timeout` (no event came for the consumer's `timeout`), recording the hook if it
    /// unwinds.
    #[cold]
    pub(crate) fn timed_out<P: Process<E>>(&self, process: &mut P, at: &mut Position) {
        let guard = InHook(&mut at.hook, Hook::OnTimeout);
        process.on_timeout(at.next - 1);
        std::mem::forget(guard);
    }

    /// The batch loop proper, from `at.next`.
    fn batches<P: Process<E>>(&self, process: &mut P, at: &mut Position) -> Ended {
        let core = &self.barrier.core;
        let max_batch = self.options.max_batch.map_or(i64::MAX, clamp_count);
        let coalesce = self.options.coalesce;
        loop {
            let first = at.next;
            if let Some(c) = coalesce {
                self.coalesce(first, c);
            }
            match self.counted_wait(first) {
                Waited::Ready(available) => {
                    let last = available.min(first.saturating_add(max_batch - 1));
                    at.batch_first = first;
                    if !self.deliver_batch(process, first, last, available, at) {
                        // A replay was interrupted: the batch is not done, the sequence stays.
                        return Ended::Halted;
                    }
                    self.counters.batch(last - first + 1, available - first + 1);
                    at.next = last + 1;
                    self.sequence.set(last);
                    core.wait.notify();
                    if self.barrier.must_stop() {
                        return Ended::Halted;
                    }
                }
                Waited::TimedOut => self.timed_out(process, at),
                Waited::Stopped(Stop::Drained) => return Ended::Drained,
                Waited::Stopped(Stop::Halted) => return Ended::Halted,
            }
        }
    }

    /// Pauses for `c.delay` if `first` is already available but fewer than `c.min` events are:
    /// the producer is streaming and this consumer is right behind it (see
    /// [`Consumer::coalesce`]). The pause touches no shared memory except, every 64 spins, to
    /// end early: once `c.min` events are there, or the queue stops running (so even a delay of
    /// `Duration::MAX` holds up neither a drain nor a halt).
    #[inline]
    fn coalesce(&self, first: i64, c: Coalesce) {
        // A batch never exceeds the ring: a larger minimum would pause a consumer behind a full
        // ring, where the producer waits for it, until the delay ran out (or for ever).
        let min = c.min.min(self.barrier.core.ring.capacity());
        let available = self.barrier.available(first);
        if available < first || available - first + 1 >= min {
            return;
        }
        // No clock under loom: no pause there (the models check delivery, not timing).
        if let Some(start) = crate::sync::now() {
            let mut spins = 0u32;
            while crate::sync::now().is_some_and(|n| n.duration_since(start) < c.delay) {
                crate::sync::spin_loop();
                spins = spins.wrapping_add(1);
                if spins % 64 == 0
                    && (!self.barrier.core.lifecycle.is_running()
                        || self.barrier.must_stop()
                        || self.barrier.available(first) - first + 1 >= min)
                {
                    return;
                }
            }
        }
    }

    /// Hands `first..=last` (published, held by this consumer) to the handler as one batch,
    /// replaying it as the retry policy says if a fallible handler fails it. `false` if a replay
    /// was interrupted (halted, failed elsewhere, removed): the batch is then not done.
    #[inline]
    pub(crate) fn deliver_batch<P: Process<E>>(
        &self,
        process: &mut P,
        first: i64,
        last: i64,
        available: i64,
        at: &mut Position,
    ) -> bool {
        self.batch_start(process, first, last, available, at);
        match self.deliver_range(process, first, last, at) {
            Ok(()) => true,
            Err((failed, retry)) => self.replay(process, first, last, available, at, failed, retry),
        }
    }

    /// Calls `on_batch_start`, unless it panicked on this batch under `SkipEvent` (then once
    /// not), recording the hook if it unwinds.
    #[inline]
    fn batch_start<P: Process<E>>(
        &self,
        process: &mut P,
        first: i64,
        last: i64,
        available: i64,
        at: &mut Position,
    ) {
        if at.pass_batch_start {
            at.pass_batch_start = false;
            return;
        }
        let guard = InHook(&mut at.hook, Hook::OnBatchStart);
        process.on_batch_start(last - first + 1, available - first + 1);
        std::mem::forget(guard);
    }

    /// Delivers `first..=last` once; the first failure of a fallible handler stops it.
    #[inline]
    fn deliver_range<P: Process<E>>(
        &self,
        process: &mut P,
        first: i64,
        last: i64,
        at: &mut Position,
    ) -> Result<(), (i64, Retry)> {
        super::deliver(
            &self.barrier.core.ring,
            first,
            last,
            |slots, seq, end_of_batch| {
                // Records `seq` only if the handler unwinds: no store per event.
                let guard = PanicAt(at, seq);
                // Loom: `pipeline_stage_two_sees_stage_one_writes`,
                // `hook_panic_while_waiting_never_passes_an_unpublished_slot`; miri:
                // tests/delivery.rs, tests/failure_matrix.rs.
                // SAFETY: `first..=last` is published (the barrier's Acquire) and not released (our
                // sequence is below `first`; a pool worker claimed it alone); no exclusive overlap.
                let result = unsafe { process.deliver(slots, seq, end_of_batch) };
                std::mem::forget(guard);
                result.map_err(|retry| (seq, retry))
            },
        )
    }

    /// A fallible handler failed the batch at `failed`: replay it from `first` as the retry policy
    /// says; once the attempts are spent, unwind as a panic at the failing event, so the panic
    /// policy decides. The consumer's sequence has not moved meanwhile. `false` if the queue
    /// stopped (or the stage was removed) while retrying: the batch is then not done, and the
    /// caller must not store its end as processed.
    #[cold]
    #[allow(clippy::too_many_arguments)]
    fn replay<P: Process<E>>(
        &self,
        process: &mut P,
        first: i64,
        last: i64,
        available: i64,
        at: &mut Position,
        mut failed: i64,
        mut retry: Retry,
    ) -> bool {
        let policy = self.options.retry;
        for _ in 0..policy.attempts() {
            self.counters.retry();
            if !self.pause(policy.pause()) {
                // Halted or removed while retrying: nothing will be drained any more.
                return false;
            }
            self.batch_start(process, first, last, available, at);
            match self.deliver_range(process, first, last, at) {
                Ok(()) => return true,
                Err((seq, r)) => (failed, retry) = (seq, r),
            }
        }
        at.next = failed;
        at.hook = Hook::OnEvent;
        std::panic::resume_unwind(Box::new(format!(
            "the batch {first}..={last} failed after {} replays: {}",
            policy.attempts(),
            retry.reason()
        )));
    }

    /// Sleeps `pause` in slices of at most a millisecond; `false` as soon as the consumer must
    /// stop. Any pause is accepted: one past what `Instant` can hold never ends by itself.
    fn pause(&self, pause: Duration) -> bool {
        const SLICE: Duration = Duration::from_millis(1);
        let deadline = crate::sync::deadline_in(pause);
        loop {
            if self.barrier.must_stop() {
                return false;
            }
            let left = match (crate::sync::now(), deadline) {
                // Under loom (no clock) a pause is one yield.
                (None, _) => {
                    crate::sync::thread::sleep(pause);
                    return !self.barrier.must_stop();
                }
                (Some(now), Some(d)) => d.saturating_duration_since(now),
                (Some(_), None) => SLICE,
            };
            if left.is_zero() {
                return true;
            }
            crate::sync::thread::sleep(left.min(SLICE));
        }
    }

    /// After [`PanicPolicy::HaltConsumer`]: keep the sequence moving with the barrier without
    /// handling anything, from `from` (the first sequence not handled) to `to` (`i64::MAX`: for
    /// good), so neither producers nor downstream stages wait on this consumer. Every sequence is
    /// passed only once the barrier shows it published; each counts as skipped. `false` if the
    /// queue stopped (or the stage left) before `to` was passed.
    fn pass(&self, from: i64, to: i64, at: &mut Position, exit: &mut ConsumerExit) -> bool {
        let core = &self.barrier.core;
        let mut next = from;
        while next <= to {
            match self.barrier.wait_for(next, &core.wait, None) {
                Waited::Ready(available) => {
                    let upto = available.min(to);
                    exit.skipped += (upto - next + 1) as u64;
                    self.sequence.set(upto);
                    core.wait.notify();
                    next = upto + 1;
                    at.finished = upto;
                    if to == i64::MAX && self.barrier.must_stop() {
                        return false;
                    }
                }
                Waited::TimedOut => {}
                Waited::Stopped(_) => return false,
            }
        }
        true
    }

    /// The worker loop of a pool: claim, wait for the claim to be published, hand it over in
    /// batches (see the `pool` module for the claim protocol).
    fn work<P: Process<E>>(&self, pool: &PoolClaim, process: &mut P, at: &mut Position) -> Ended {
        let core = &self.barrier.core;
        loop {
            if at.next > at.claim_end {
                let (first, last) = pool.claim(|s| self.barrier.available(s));
                // Everything this worker handled is below `first`; it holds `first..=last` now.
                self.sequence.set(first - 1);
                core.wait.notify();
                (at.next, at.claim_end) = (first, last);
            }
            let first = at.next;
            match self.counted_wait(first) {
                Waited::Ready(available) => {
                    let last = available.min(at.claim_end);
                    at.batch_first = first;
                    if !self.deliver_batch(process, first, last, available, at) {
                        // A replay was interrupted: the batch is not done.
                        return Ended::Halted;
                    }
                    self.counters.batch(last - first + 1, available - first + 1);
                    at.next = last + 1;
                    at.finished = last;
                    if self.barrier.must_stop() {
                        return Ended::Halted;
                    }
                }
                Waited::TimedOut => self.timed_out(process, at),
                // Only a claim past the drain target waits here: everything below it is handled.
                Waited::Stopped(Stop::Drained) => return Ended::Drained,
                Waited::Stopped(Stop::Halted) => return Ended::Halted,
            }
        }
    }

    /// `HaltConsumer` for a pool worker (see the `pool` module): pass the rest of the claim
    /// from `at.next` (the first sequence not handled; after `on_event`, the one that panicked),
    /// each once it is published, then leave; the last live worker keeps claiming and passing
    /// events instead. Every sequence passed counts as skipped.
    fn retire(&self, pool: &PoolClaim, at: &mut Position, exit: &mut ConsumerExit) {
        let core = &self.barrier.core;
        let left = pool.leave();
        let (mut next, mut end) = (at.next, at.claim_end);
        loop {
            if !self.pass(next, end, at, exit) {
                return;
            }
            if left {
                // Published and passed up to the end of the claim: out of the minimum for good
                // (the report gives `at.finished`, not this).
                self.sequence.set(i64::MAX);
                core.wait.notify();
                return;
            }
            if self.barrier.must_stop() {
                return;
            }
            let (first, last) = pool.claim(|s| self.barrier.available(s));
            self.sequence.set(first - 1);
            core.wait.notify();
            (next, end) = (first, last);
        }
    }
}

/// Stores the sequence being handled into the loop's position if the handler unwinds; it is
/// `mem::forget`-ed after every event that returns, so the normal path stores nothing.
struct PanicAt<'a>(&'a mut Position, i64);

impl Drop for PanicAt<'_> {
    fn drop(&mut self) {
        self.0.next = self.1;
        self.0.hook = Hook::OnEvent;
    }
}

/// Records which hook was running if it unwinds; `mem::forget`-ed when it returns.
struct InHook<'a>(&'a mut Hook, Hook);

impl Drop for InHook<'_> {
    fn drop(&mut self) {
        *self.0 = self.1;
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_owned()
    }
}
