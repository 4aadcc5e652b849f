//! The running queue: its consumer threads, shutdown, halt, monitoring.
//!
//! [`Disruptor::shutdown`] closes the queue and lets every consumer process every event published
//! before the close, then joins the threads. Dropping the last producer closes the queue the same
//! way; dropping the `Disruptor` shuts it down and joins. [`Disruptor::halt`] stops consumers at
//! their next batch without draining.

use std::time::{Duration, Instant};

use crate::consume::consumer::Consumer;
use crate::consume::handler::IntoProcess;
use crate::consume::poller::Poller;
use crate::consume::pool::WorkPool;
use crate::graph::error::{BuildError, ShutdownError, StageError};
use crate::graph::graph::Wired;
use crate::graph::report::ShutdownReport;
use crate::graph::spawn::{
    check_cores, collect, launch, Finished, NewStage, Pending, Running, Slots, Worker,
};
use crate::graph::stage::{StageId, StageKind};
use crate::graph::watchdog::{OnStall, Watchdog};
use crate::protocol::sequencer::Sequencer;
use crate::protocol::wait::WaitStrategy;
use crate::protocol::Core;
use crate::sync::Arc;
use crate::tracker::Tracker;

/// A running queue: owns the consumer threads, and changes the graph while running.
///
/// Dropping it shuts the queue down (draining) and joins the threads, whatever its stages are (a
/// queue of pollers only is closed too: its producers are refused, its pollers drain and see
/// `Closed`); call [`shutdown`](Self::shutdown) to get their report and any handler panic.
///
/// # Stages added and removed while running
/// [`add`](Self::add), [`add_after`](Self::add_after), [`add_pool`](Self::add_pool) and
/// [`add_poller`](Self::add_poller) (the builder's names) join a running queue: the new stage
/// sees every event claimed after the call returns (from [`first_sequence`](Self::first_sequence)
/// on), placed right after the producers or after the stages named. Producers never overwrite a slot it has yet to read (see
/// the protocol in the gating module). [`remove`](Self::remove) stops a stage at its next batch,
/// joins it and takes it out of the gating set; the other stages lose nothing.
///
/// ```
/// use ringmq::{Builder, Consumer, Yielding};
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
/// b.add(Consumer::new("log", |_: &u64, _, _| {}));
/// let (mut producer, mut queue) = b.build()?;
///
/// let seen = Arc::new(AtomicU64::new(0));
/// let s = seen.clone();
/// let audit = queue.add(Consumer::new("audit", move |_: &u64, _, _| {
///     s.fetch_add(1, Ordering::Relaxed);
/// }))?;
/// let first = queue.first_sequence(audit)?;
/// for i in 0..10 {
///     producer.publish(|slot| *slot = i)?;
/// }
/// queue.tracker(audit)?.wait_processed(first + 9, std::time::Duration::from_secs(5))?;
/// let report = queue.remove(audit)?;
/// assert_eq!(report.consumers[0].name, "audit");
/// assert_eq!(seen.load(Ordering::Relaxed), 10);
/// # drop(producer);
/// # queue.shutdown()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Disruptor<E, S, W> {
    wired: Wired<E, S, W>,
    /// Per stage (by index in the graph), its threads not yet joined.
    threads: Vec<Vec<Running>>,
    finished: Arc<Finished>,
    /// Consumer threads ever started (removed ones included: they arrived at `finished` too).
    spawned: usize,
    /// The stall watchdog, once a stage asks for one; its callback.
    watchdog: Option<Watchdog>,
    on_stall: Option<OnStall>,
    /// Closes the queue on drop: set where the bounds are known (see `Producer`).
    close: fn(&Core<E, S, W>),
}

impl<E, S: Sequencer, W: WaitStrategy> Disruptor<E, S, W> {
    /// Closes the queue, lets every consumer process every event published before the close, and
    /// joins the consumer threads.
    ///
    /// Publishes after this return [`PublishError::Shutdown`](crate::PublishError::Shutdown), and
    /// so does a producer waiting for room (of either kind: a producer claims only once it has
    /// room, so a waiting one holds nothing that needs draining). A publish racing this call
    /// from another thread is either drained (and returns `Ok`) or refused; it is never lost. A
    /// producer's publish closure that never returns holds the close up. Pollers are not waited
    /// for, wherever they are (taken, never taken, owned by the thread calling this): they drain
    /// as their owners poll them, then see [`PollState::Closed`](crate::PollState::Closed).
    ///
    /// # Errors
    /// [`ShutdownError::ConsumerPanicked`] if a handler panicked (under
    /// [`PanicPolicy::HaltAll`](crate::PanicPolicy) or `HaltConsumer`, or in `on_shutdown`), with
    /// the full report; [`ShutdownError::OnConsumerThread`] if called from inside one of this
    /// queue's handlers (the queue is closed and drains all the same).
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}));
    /// # let (mut producer, mut queue) = b.build()?;
    /// producer.publish(|e| *e = 1)?;
    /// let report = queue.shutdown()?; // drains: the sink handled event 0
    /// assert_eq!(report.consumers[0].last_sequence, 0);
    /// assert!(producer.publish(|e| *e = 2).is_err()); // refused afterwards
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(mut self) -> Result<ShutdownReport, ShutdownError> {
        self.wired.core.close();
        self.join(None)
    }

    /// As [`shutdown`](Self::shutdown), but if the consumers have not drained within `timeout`
    /// they are halted and the call returns [`ShutdownError::Timeout`] (threads stuck in a handler
    /// are left to finish on their own).
    ///
    /// # Errors
    /// [`ShutdownError::Timeout`], and the errors of [`shutdown`](Self::shutdown).
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}));
    /// # let (mut producer, mut queue) = b.build()?;
    /// producer.publish(|e| *e = 1)?;
    /// queue.shutdown_timeout(Duration::from_secs(5))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Result<ShutdownReport, ShutdownError> {
        self.wired.core.close();
        self.join(crate::sync::deadline_in(timeout))
    }

    /// Stops every consumer at its next batch boundary without draining, and joins them.
    /// Producers get [`PublishError::Shutdown`](crate::PublishError::Shutdown).
    ///
    /// # Errors
    /// As [`shutdown`](Self::shutdown).
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}));
    /// # let (mut producer, mut queue) = b.build()?;
    /// producer.publish(|e| *e = 1)?;
    /// queue.halt()?; // stops at the next batch, without draining
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn halt(mut self) -> Result<ShutdownReport, ShutdownError> {
        self.wired.core.halt();
        self.join(None)
    }

    /// The highest sequence published (single producer) or claimed (multi producer).
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}));
    /// # let (mut producer, mut queue) = b.build()?;
    /// producer.publish(|e| *e = 1)?;
    /// assert_eq!(queue.cursor(), 0);
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cursor(&self) -> i64 {
        self.wired.core.sequencer.cursor()
    }

    /// Free slots right now, for monitoring.
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}));
    /// # let (mut producer, mut queue) = b.build()?;
    /// assert_eq!(queue.remaining_capacity(), 64);
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remaining_capacity(&self) -> usize {
        self.wired.core.remaining_capacity()
    }

    /// The ring's capacity.
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}));
    /// # let (mut producer, mut queue) = b.build()?;
    /// assert_eq!(queue.capacity(), 64);
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.wired.core.ring.capacity() as usize
    }

    /// Whether the queue still accepts publishes.
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}));
    /// # let (mut producer, mut queue) = b.build()?;
    /// assert!(queue.is_running());
    /// drop(producer); // the last producer closes the queue
    /// queue.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_running(&self) -> bool {
        self.wired.core.lifecycle.is_running()
    }

    fn join(&mut self, deadline: Option<Instant>) -> Result<ShutdownReport, ShutdownError> {
        // No stall is reported while the queue stops (its consumers stand still on purpose).
        if let Some(mut dog) = self.watchdog.take() {
            dog.stop();
        }
        let running: Vec<Running> = self.threads.iter_mut().flat_map(std::mem::take).collect();
        // Threads left to finish by the watchdog never arrive at `finished` while stuck.
        let detached = running.iter().filter(|r| r.is_detached()).count();
        if let Some(me) = running.iter().find(|r| r.is_current()) {
            // Called from a handler: its thread cannot wait for itself (joining it would fail
            // with EDEADLK). The queue is closed or halted already and drains without us; the
            // threads are detached.
            return Err(ShutdownError::OnConsumerThread {
                consumer: me.name.clone(),
            });
        }
        // Without a deadline, joining is the wait; with one, wait on the count first.
        if deadline.is_some() && !self.finished.wait(self.spawned - detached, deadline) {
            self.wired.core.halt();
            // Give threads that only waited a moment to see the halt; stuck ones are detached.
            let grace = crate::sync::deadline_in(Duration::from_millis(100));
            if self.finished.wait(self.spawned - detached, grace) {
                for r in running.into_iter().filter(|r| !r.is_detached()) {
                    let _ = r.handle.join();
                }
            }
            return Err(ShutdownError::Timeout);
        }
        let (report, panicked) = collect(running);
        if let Some(f) = self.wired.core.lifecycle.failure().filter(|f| f.stalled) {
            return Err(ShutdownError::ConsumerStalled {
                consumer: f.consumer,
                sequence: f.sequence,
                report,
            });
        }
        // The failure producers were told of, if the queue failed; else the first panic in time.
        let first = match self.wired.core.lifecycle.failure() {
            Some(f) => panicked.iter().find(|p| p.0 == f.worker),
            None => None,
        }
        .or_else(|| panicked.iter().min_by_key(|p| p.2));
        match first {
            Some(&(_, index, _)) => {
                let c = &report.consumers[index];
                let p = c.panic.clone().expect("a panicked consumer has its panic");
                Err(ShutdownError::ConsumerPanicked {
                    consumer: c.name.clone(),
                    hook: p.hook,
                    sequence: p.sequence,
                    message: p.message,
                    report,
                })
            }
            None => Ok(report),
        }
    }
}

impl<E: Send + Sync + 'static, S: Sequencer, W: WaitStrategy> Disruptor<E, S, W> {
    /// The running queue over `wired`, starting the builder's stages (`pending`, by index; a
    /// poller has no worker). On a failure every started thread is halted and joined.
    pub(crate) fn start(
        wired: Wired<E, S, W>,
        pending: Vec<Pending<E, S, W>>,
        on_stall: Option<OnStall>,
    ) -> Result<Self, BuildError> {
        let mut queue = Self {
            wired,
            threads: Vec::new(),
            finished: Arc::new(Finished::new()),
            spawned: 0,
            watchdog: None,
            on_stall,
            close: Core::close,
        };
        for (index, (kind, workers)) in pending.into_iter().enumerate() {
            if let Err(e) = queue.launch(index, kind, workers) {
                drop(queue.halt());
                return Err(e);
            }
        }
        if let Err(e) = queue.watch_if_asked() {
            drop(queue.halt());
            return Err(e);
        }
        Ok(queue)
    }

    /// Starts the stall watchdog if a stage asks for one and it is not running yet.
    fn watch_if_asked(&mut self) -> Result<(), BuildError> {
        if self.watchdog.is_some()
            || !self
                .wired
                .read(|g| g.stages.iter().any(|s| s.stall.is_some()))
        {
            return Ok(());
        }
        let dog = Watchdog::start(
            self.wired.core.clone(),
            self.wired.graph.clone(),
            self.on_stall.clone(),
        )
        .map_err(|e| BuildError::Spawn {
            consumer: "ringmq-watchdog".into(),
            message: e.to_string(),
        })?;
        self.watchdog = Some(dog);
        Ok(())
    }

    /// Starts the threads of stage `index` (already in the graph, its sequences where they
    /// start). A poller has none.
    fn launch(
        &mut self,
        index: usize,
        kind: StageKind,
        workers: Vec<Worker<E, S, W>>,
    ) -> Result<(), BuildError> {
        debug_assert_eq!(index, self.threads.len());
        let pool_batch = match kind {
            StageKind::Consumer | StageKind::Poller => None,
            StageKind::Pool { batch } => Some(batch),
        };
        let barrier = self.wired.barrier(index);
        let slots = self.wired.read(|g| {
            let s = &g.stages[index];
            Slots {
                sequences: s.sequences.clone(),
                counters: s.counters.clone(),
                detached: s.detached.clone(),
            }
        });
        let (threads, failed) = launch(
            workers,
            &barrier,
            slots,
            pool_batch,
            &mut self.spawned,
            &self.finished,
        );
        self.threads.push(threads);
        match failed {
            None => Ok(()),
            Some(e) => {
                let _ = self.stop_stage(index);
                Err(e)
            }
        }
    }

    /// A [`Tracker`] for one stage: when has it processed a given sequence.
    ///
    /// # Errors
    /// [`StageError::ForeignStage`], [`StageError::Removed`].
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}));
    /// # let (mut producer, mut queue) = b.build()?;
    /// let seq = producer.publish(|e| *e = 1)?;
    /// queue.tracker(sink)?.wait_processed(seq, Duration::from_secs(5))?;
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tracker(&self, stage: StageId) -> Result<Tracker, StageError> {
        let index = self.wired.read(|g| g.resolve(stage))?;
        Ok(self.wired.tracker(index))
    }

    /// A [`Tracker`] for the whole graph: a sequence is processed once every stage has.
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}));
    /// # let (mut producer, mut queue) = b.build()?;
    /// let seq = producer.publish(|e| *e = 1)?;
    /// queue.graph_tracker().wait_processed(seq, Duration::from_secs(5))?; // every stage
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn graph_tracker(&self) -> Tracker {
        Tracker::graph(self.wired.core.clone())
    }

    /// The queue at this moment ([`QueueMetrics`](crate::QueueMetrics), with a `Display` that
    /// prints a compact table): the ring's fill level, the published count, each stage's
    /// position and lag, and, with the `counters` cargo feature, the producer side's slow-path
    /// counts and each stage's events, batches, batch sizes, waiting and busy time, skips,
    /// retries, panics and highest lag (without it those read zero, except a poller's events,
    /// which are its progress). Reading costs the running queue nothing: each counter is a
    /// plain value its own thread stores (see [`Counts`](crate::Counts)).
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}));
    /// # let (mut producer, mut queue) = b.build()?;
    /// let seq = producer.publish(|e| *e = 1)?;
    /// queue.graph_tracker().wait_processed(seq, Duration::from_secs(5))?;
    /// let m = queue.metrics();
    /// assert_eq!((m.published, m.stages[0].processed), (1, 0));
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn metrics(&self) -> crate::QueueMetrics {
        let cursor = self.cursor();
        let (found_full, producers_waiting) = self.wired.core.producer_counters.read();
        let stages = self.wired.read(|g| {
            g.stages
                .iter()
                .map(|s| {
                    let mut counts = crate::Counts::default();
                    for c in &s.counters {
                        counts.add(&c.read());
                    }
                    let processed = s
                        .sequences
                        .iter()
                        .map(|q| q.get())
                        .min()
                        .unwrap_or(crate::INITIAL)
                        .min(cursor);
                    let (kind, threads) = match s.kind {
                        StageKind::Consumer => ("consumer", 1),
                        StageKind::Pool { .. } => ("pool", s.sequences.len()),
                        StageKind::Poller => {
                            // A poller counts no events (see `StageCounters::shape`): they
                            // are the sequences it passed since it joined.
                            counts.events = (processed - (s.first - 1)).max(0) as u64;
                            ("poller", 0)
                        }
                    };
                    crate::StageMetrics {
                        name: s.name.clone(),
                        kind,
                        threads,
                        live: s.live(),
                        processed,
                        lag: (cursor - processed).max(0) as u64,
                        counts,
                    }
                })
                .collect()
        });
        crate::QueueMetrics {
            capacity: self.capacity(),
            published: (cursor + 1).max(0) as u64,
            fill: self.capacity() - self.remaining_capacity(),
            found_full,
            producers_waiting,
            stages,
        }
    }

    /// How far behind the producers a stage is: the cursor minus the stage's sequence (for a
    /// pool, its slowest worker's). For monitoring.
    ///
    /// # Errors
    /// As [`tracker`](Self::tracker).
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}));
    /// # let (mut producer, mut queue) = b.build()?;
    /// let seq = producer.publish(|e| *e = 1)?;
    /// queue.tracker(sink)?.wait_processed(seq, Duration::from_secs(5))?;
    /// assert_eq!(queue.lag(sink)?, 0);
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lag(&self, stage: StageId) -> Result<i64, StageError> {
        let processed = self.tracker(stage)?.processed();
        Ok((self.cursor() - processed).max(0))
    }

    /// The first sequence a stage sees: 0 for stages built with the queue, the sequence after the
    /// join point for stages added while running.
    ///
    /// # Errors
    /// As [`tracker`](Self::tracker).
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}));
    /// # let (mut producer, mut queue) = b.build()?;
    /// assert_eq!(queue.first_sequence(sink)?, 0); // built with the queue: sees everything
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn first_sequence(&self, stage: StageId) -> Result<i64, StageError> {
        self.wired.read(|g| Ok(g.stages[g.resolve(stage)?].first))
    }

    /// Adds a consumer to the running queue right after the producers (it sees every event
    /// claimed after this call returns, from [`first_sequence`](Self::first_sequence) on), as
    /// [`Builder::add`](crate::Builder::add) does before the queue runs.
    ///
    /// # Errors
    /// [`BuildError::NotRunning`] once the queue is shut down; [`BuildError::NotExclusive`],
    /// [`BuildError::NoSuchCore`], [`BuildError::Spawn`] as when building.
    ///
    /// ```
    /// use ringmq::{Builder, Consumer, Yielding};
    /// use std::time::Duration;
    ///
    /// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// b.add(Consumer::new("main", |_: &u64, _, _| {}));
    /// let (mut producer, mut queue) = b.build()?;
    /// producer.publish(|e| *e = 1)?; // before the audit joins: it will not see this one
    ///
    /// let audit = queue.add(Consumer::new("audit", |e: &u64, seq, _| {
    ///     assert!(seq >= 1 && *e == 2);
    /// }))?;
    /// assert_eq!(queue.first_sequence(audit)?, 1);
    /// let seq = producer.publish(|e| *e = 2)?;
    /// queue.tracker(audit)?.wait_processed(seq, Duration::from_secs(5))?;
    /// assert_eq!(queue.lag(audit)?, 0);
    ///
    /// let report = queue.remove(audit)?; // stops it; it no longer holds producers back
    /// assert_eq!(report.consumers[0].last_sequence, 1);
    /// # drop(producer);
    /// # queue.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add<H: IntoProcess<E>>(
        &mut self,
        consumer: Consumer<E, H>,
    ) -> Result<StageId, BuildError> {
        self.add_after(&[], consumer)
    }

    /// Adds a consumer to the running queue after `upstream`; as [`add`](Self::add) and
    /// [`Builder::add_after`](crate::Builder::add_after).
    ///
    /// # Errors
    /// As [`add`](Self::add); and [`BuildError::ForeignStage`], [`BuildError::RemovedUpstream`]
    /// for a bad `upstream`.
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}));
    /// # let (mut producer, mut queue) = b.build()?;
    /// let audit = queue.add_after(&[sink], Consumer::new("audit", |_: &u64, _, _| {}))?;
    /// let seq = producer.publish(|e| *e = 1)?;
    /// queue.tracker(audit)?.wait_processed(seq, Duration::from_secs(5))?;
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_after<H: IntoProcess<E>>(
        &mut self,
        upstream: &[StageId],
        consumer: Consumer<E, H>,
    ) -> Result<StageId, BuildError> {
        self.join_stage(upstream, NewStage::consumer(consumer))
    }

    /// Adds a [`WorkPool`] to the running queue after `upstream` (`&[]`: right after the
    /// producers); as [`add_after`](Self::add_after).
    ///
    /// # Errors
    /// As [`add_after`](Self::add_after).
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}));
    /// # let (mut producer, mut queue) = b.build()?;
    /// let pool = queue.add_pool(&[sink], ringmq::WorkPool::new("resize", 2, |i| {
    ///     Consumer::new(format!("resize-{i}"), |_: &u64, _, _| {})
    /// }))?;
    /// let seq = producer.publish(|e| *e = 1)?;
    /// queue.tracker(pool)?.wait_processed(seq, Duration::from_secs(5))?;
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_pool<H: IntoProcess<E>>(
        &mut self,
        upstream: &[StageId],
        pool: WorkPool<E, H>,
    ) -> Result<StageId, BuildError> {
        self.join_stage(upstream, NewStage::pool(pool))
    }

    /// Adds a [`Poller`] to the running queue after `upstream`; as [`add_after`](Self::add_after)
    /// and [`Builder::add_poller`](crate::Builder::add_poller). Drop the poller to remove it.
    ///
    /// # Errors
    /// As [`add_after`](Self::add_after).
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}));
    /// # let (mut producer, mut queue) = b.build()?;
    /// let mut poller = queue.add_poller(&[])?; // sees what is published from now on
    /// let seq = producer.publish(|e| *e = 9)?;
    /// let mut got = None;
    /// poller.poll_timeout(Duration::from_secs(5), |e, s, _| { got = Some((s, *e)); true });
    /// assert_eq!(got, Some((seq, 9)));
    /// drop(poller); // no longer holds producers back
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_poller(&mut self, upstream: &[StageId]) -> Result<Poller<E, S, W>, BuildError> {
        let name = format!("poller-{}", self.threads.len());
        let id = self.join_stage(upstream, NewStage::poller(name))?;
        Ok(self.wired.poller(id.index))
    }

    /// The join protocol of `protocol::gating`: the new stage's sequences start at the old
    /// gating minimum, the set is swapped (with its grace period), then they move to the join
    /// point, and only then do its threads start.
    fn join_stage(
        &mut self,
        upstream: &[StageId],
        stage: NewStage<E, S, W>,
    ) -> Result<StageId, BuildError> {
        if !self.wired.core.lifecycle.is_running() {
            return Err(BuildError::NotRunning);
        }
        check_cores(stage.workers.iter())?;
        let core = self.wired.core.clone();
        let below = core.gating.minimum(i64::MAX);
        let index = self.wired.add_stage(upstream, &stage, below, true)?;
        // After the grace period: no cached minimum is above the join point.
        let join = core.sequencer.join_point().max(below);
        self.wired.write(|g| {
            let stage = &mut g.stages[index];
            for s in &stage.sequences {
                s.set(join);
            }
            stage.first = join + 1;
        });
        // The sequences just moved up from the old minimum to the join point: a producer blocked
        // on them must look again (found by the loom model of a join: without this, a producer
        // that saw the old value slept forever).
        core.wait.notify();
        self.launch(index, stage.kind, stage.workers)?;
        self.watch_if_asked()?;
        // In place, reading from the join point on: publishes may go through again if the queue
        // had no live stage. Under the graph's lock, as the flag is set (`graph::change`), so a
        // stage leaving at the same time cannot set it after this clears it.
        self.wired.read(|_| core.set_no_stage(false));
        Ok(self.wired.read(|g| g.id_of(index)))
    }

    /// Removes a stage from the running queue: it stops at its next batch boundary, its threads
    /// are joined, and its sequences leave the gating set. Events it had not reached are still
    /// processed by every other stage. A [`Poller`] is removed by dropping it. Removing (or
    /// dropping) the last live stage leaves nobody to read new events: publishes are then refused
    /// with [`PublishError::NoConsumers`](crate::PublishError::NoConsumers) (never left waiting
    /// at a full ring) until a stage is added again.
    ///
    /// # Errors
    /// [`StageError::HasDependents`] if a live stage comes after it, [`StageError::SelfRemoval`]
    /// from inside the stage's own handler, [`StageError::Removed`], [`StageError::ForeignStage`].
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}));
    /// # let (mut producer, mut queue) = b.build()?;
    /// let audit = queue.add_after(&[sink], Consumer::new("audit", |_: &u64, _, _| {}))?;
    /// assert!(queue.remove(sink).is_err()); // `audit` depends on it
    /// queue.remove(audit)?;
    /// queue.remove(sink)?; // now it may go
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove(&mut self, id: StageId) -> Result<ShutdownReport, StageError> {
        let index = self.wired.read(|g| {
            let index = g.resolve(id)?;
            match g.dependent_of(index) {
                Some(d) => Err(StageError::HasDependents {
                    stage: g.stages[index].name.clone(),
                    dependent: d.name.clone(),
                }),
                None => Ok(index),
            }
        })?;
        if self.threads[index].iter().any(Running::is_current) {
            return Err(StageError::SelfRemoval {
                stage: self.wired.read(|g| g.stages[index].name.clone()),
            });
        }
        Ok(self.stop_stage(index))
    }

    /// Stops stage `index`'s threads, joins them, then takes the stage out of the gating set (in
    /// that order: until its threads stopped reading, its sequences must keep gating).
    fn stop_stage(&mut self, index: usize) -> ShutdownReport {
        let control = self.wired.read(|g| g.stages[index].control.clone());
        control.leave();
        self.wired.core.wait.notify();
        let threads = std::mem::take(&mut self.threads[index]);
        let (report, _) = collect(threads);
        self.wired.change(|g| g.stages[index].gone = true);
        report
    }
}

impl<E, S, W> Drop for Disruptor<E, S, W> {
    fn drop(&mut self) {
        // Always closes, whatever the stages are (a queue of pollers only has no thread to join,
        // but its producers must learn it is gone, and its pollers see `Closed` once drained).
        // Idempotent after `shutdown`/`halt`; joins what they left (nothing), or detaches when
        // dropped on one of its own consumer threads (see `join`).
        (self.close)(&self.wired.core);
        let running: Vec<Running> = self.threads.iter_mut().flat_map(std::mem::take).collect();
        if !running.iter().any(Running::is_current) {
            for r in running.into_iter().filter(|r| !r.is_detached()) {
                let _ = r.handle.join();
            }
        }
    }
}

impl<E, S, W> std::fmt::Debug for Disruptor<E, S, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disruptor")
            .field("capacity", &self.wired.core.ring.capacity())
            .field(
                "consumers",
                &self
                    .threads
                    .iter()
                    .flat_map(|s| s.iter().map(|r| r.name.as_str()))
                    .collect::<Vec<_>>(),
            )
            .field("running", &self.wired.core.lifecycle.is_running())
            .finish()
    }
}
