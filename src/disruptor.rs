//! The running queue: its consumer threads, shutdown, halt, monitoring.
//!
//! [`Disruptor::shutdown`] closes the queue and lets every consumer process every event published
//! before the close, then joins the threads. Dropping the last producer closes the queue the same
//! way; dropping the `Disruptor` shuts it down and joins. [`Disruptor::halt`] stops consumers at
//! their next batch without draining.

use std::time::{Duration, Instant};

use crate::barrier::Barrier;
use crate::builder::{check_cores, check_exclusive, ConsumerId, Pending};
use crate::consumer::{ConsumerExit, Hook, IntoProcess, Panicked, Processor};
use crate::error::{BuildError, ShutdownError};
use crate::gating::{Control, StageInfo};
use crate::poller::Poller;
use crate::pool::PoolClaim;
use crate::report::{ConsumerReport, HandlerPanic, ShutdownReport};
use crate::sequence::Sequence;
use crate::sequencer::Sequencer;
use crate::shared::Shared;
use crate::sync::{thread::JoinHandle, Arc, Condvar, Mutex};
use crate::tracker::Tracker;
use crate::wait::WaitStrategy;

/// Counts consumer threads that have finished, so shutdown can wait for them with a deadline.
pub(crate) struct Finished {
    count: Mutex<usize>,
    condvar: Condvar,
}

impl Finished {
    pub(crate) fn new() -> Self {
        Self {
            count: Mutex::new(0),
            condvar: Condvar::new(),
        }
    }

    pub(crate) fn arrive(&self) {
        *self.count.lock().unwrap() += 1;
        self.condvar.notify_all();
    }

    /// Waits until `n` threads finished; `false` if `deadline` passed first.
    pub(crate) fn wait(&self, n: usize, deadline: Option<Instant>) -> bool {
        let mut count = self.count.lock().unwrap();
        while *count < n {
            match crate::sync::deadline_and_now(deadline) {
                None => count = self.condvar.wait(count).unwrap(),
                Some((d, now)) => {
                    if now >= d {
                        return false;
                    }
                    #[cfg(not(loom))]
                    {
                        count = self.condvar.wait_timeout(count, d - now).unwrap().0;
                    }
                }
            }
        }
        true
    }
}

pub(crate) struct Running {
    pub(crate) name: String,
    /// The thread's id within the queue (see `Processor::worker`).
    pub(crate) worker: usize,
    pub(crate) handle: JoinHandle<ConsumerExit>,
}

impl Running {
    /// Whether this is the calling thread: a handler that shuts its own queue down.
    fn is_current(&self) -> bool {
        self.handle.thread().id() == crate::sync::thread::current().id()
    }
}

/// The threads (or the untaken poller) of one stage.
struct StageRun<E, S: Sequencer, W: WaitStrategy> {
    threads: Vec<Running>,
    poller: Option<Poller<E, S, W>>,
}

/// A running queue: owns the consumer threads, and changes the graph while running.
///
/// Dropping it shuts the queue down (draining) and joins the threads, whatever its stages are (a
/// queue of pollers only is closed too: its producers are refused, its pollers drain and see
/// `Closed`); call [`shutdown`](Self::shutdown) to get their report and any handler panic.
///
/// # Stages added and removed while running
/// [`add_consumer`](Self::add_consumer), [`add_pool`](Self::add_pool) and
/// [`add_poller`](Self::add_poller) join a running queue: the new stage sees every event claimed
/// after the call returns (from [`first_sequence`](Self::first_sequence) on), placed right after the
/// producers or after the stages named. Producers never overwrite a slot it has yet to read (see
/// the protocol in the gating module). [`remove`](Self::remove) stops a stage at its next batch,
/// joins it and takes it out of the gating set; the other stages lose nothing.
///
/// ```
/// use ringmq::{Builder, Consumer, Yielding};
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
/// b.add(Consumer::new("log", |_: &u64, _, _| {}))?;
/// let (mut producer, mut queue) = b.build()?;
///
/// let seen = Arc::new(AtomicU64::new(0));
/// let s = seen.clone();
/// let audit = queue.add_consumer(&[], Consumer::new("audit", move |_: &u64, _, _| {
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
pub struct Disruptor<E, S: Sequencer, W: WaitStrategy> {
    shared: Arc<Shared<E, S, W>>,
    /// The builder's id: handles from other queues do not fit.
    id: u64,
    stages: Vec<StageRun<E, S, W>>,
    finished: Arc<Finished>,
    /// Consumer threads ever started (removed ones included: they arrived at `finished` too).
    spawned: usize,
}

impl<E, S: Sequencer, W: WaitStrategy> Disruptor<E, S, W> {
    pub(crate) fn new(shared: Arc<Shared<E, S, W>>, id: u64, finished: Arc<Finished>) -> Self {
        Self {
            shared,
            id,
            stages: Vec::new(),
            finished,
            spawned: 0,
        }
    }

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
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}))?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// producer.publish(|e| *e = 1)?;
    /// let report = queue.shutdown()?; // drains: the sink handled event 0
    /// assert_eq!(report.consumers[0].last_sequence, 0);
    /// assert!(producer.publish(|e| *e = 2).is_err()); // refused afterwards
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(mut self) -> Result<ShutdownReport, ShutdownError> {
        self.shared.close();
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
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}))?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// producer.publish(|e| *e = 1)?;
    /// queue.shutdown_timeout(Duration::from_secs(5))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Result<ShutdownReport, ShutdownError> {
        self.shared.close();
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
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}))?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// producer.publish(|e| *e = 1)?;
    /// queue.halt()?; // stops at the next batch, without draining
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn halt(mut self) -> Result<ShutdownReport, ShutdownError> {
        self.shared.halt();
        self.join(None)
    }

    /// The highest sequence published (single producer) or claimed (multi producer).
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}))?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// producer.publish(|e| *e = 1)?;
    /// assert_eq!(queue.cursor(), 0);
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cursor(&self) -> i64 {
        self.shared.sequencer.cursor()
    }

    /// Free slots right now, for monitoring.
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}))?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// assert_eq!(queue.remaining_capacity(), 64);
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remaining_capacity(&self) -> usize {
        self.shared.remaining_capacity()
    }

    /// The ring's capacity.
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}))?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// assert_eq!(queue.capacity(), 64);
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.shared.ring.capacity() as usize
    }

    /// Whether the queue still accepts publishes.
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}))?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// assert!(queue.is_running());
    /// drop(producer); // the last producer closes the queue
    /// queue.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_running(&self) -> bool {
        self.shared.lifecycle.is_running()
    }

    /// A [`Tracker`] for one stage: when has it processed a given sequence.
    ///
    /// # Errors
    /// [`BuildError::ForeignConsumer`], [`BuildError::Removed`].
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}))?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// let seq = producer.publish(|e| *e = 1)?;
    /// queue.tracker(sink)?.wait_processed(seq, Duration::from_secs(5))?;
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn tracker(&self, stage: ConsumerId) -> Result<Tracker<E, S, W>, BuildError> {
        let index = self.index(stage)?;
        Ok(self.shared.gating.graph(|g| {
            Tracker::stage(
                self.shared.clone(),
                g[index].name.clone(),
                g[index].sequences.clone(),
                g[index].control.clone(),
            )
        }))
    }

    /// A [`Tracker`] for the whole graph: a sequence is processed once every stage has.
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}))?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// let seq = producer.publish(|e| *e = 1)?;
    /// queue.graph_tracker().wait_processed(seq, Duration::from_secs(5))?; // every stage
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn graph_tracker(&self) -> Tracker<E, S, W> {
        Tracker::graph(self.shared.clone())
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
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}))?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// let seq = producer.publish(|e| *e = 1)?;
    /// queue.tracker(sink)?.wait_processed(seq, Duration::from_secs(5))?;
    /// assert_eq!(queue.lag(sink)?, 0);
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lag(&self, stage: ConsumerId) -> Result<i64, BuildError> {
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
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}))?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// assert_eq!(queue.first_sequence(sink)?, 0); // built with the queue: sees everything
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn first_sequence(&self, stage: ConsumerId) -> Result<i64, BuildError> {
        let index = self.index(stage)?;
        Ok(self.shared.gating.graph(|g| g[index].first))
    }

    /// Takes the [`Poller`] added by [`Builder::add_poller`](crate::Builder::add_poller).
    ///
    /// # Errors
    /// [`BuildError::NoPoller`] if `id` is not a poller or was already taken,
    /// [`BuildError::ForeignConsumer`].
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let id = b.add_poller(&[])?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// let mut poller = queue.take_poller(id)?;
    /// assert!(queue.take_poller(id).is_err()); // once only
    /// producer.publish(|e| *e = 1)?;
    /// assert_eq!(poller.poll(|_, _, _| true), ringmq::PollState::Processed(1));
    /// # drop(poller);
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn take_poller(&mut self, id: ConsumerId) -> Result<Poller<E, S, W>, BuildError> {
        let index = self.index(id)?;
        self.stages[index]
            .poller
            .take()
            .ok_or(BuildError::NoPoller { index })
    }

    fn index(&self, id: ConsumerId) -> Result<usize, BuildError> {
        if id.builder != self.id || id.index >= self.stages.len() {
            return Err(BuildError::ForeignConsumer { index: id.index });
        }
        self.shared.gating.graph(|g| {
            if g[id.index].live() {
                Ok(id.index)
            } else {
                Err(BuildError::Removed {
                    consumer: g[id.index].name.clone(),
                })
            }
        })
    }

    fn join(&mut self, deadline: Option<Instant>) -> Result<ShutdownReport, ShutdownError> {
        let running: Vec<Running> = self
            .stages
            .iter_mut()
            .flat_map(|s| std::mem::take(&mut s.threads))
            .collect();
        if let Some(me) = running.iter().find(|r| r.is_current()) {
            // Called from a handler: its thread cannot wait for itself (joining it would fail
            // with EDEADLK). The queue is closed or halted already and drains without us; the
            // threads are detached.
            return Err(ShutdownError::OnConsumerThread {
                consumer: me.name.clone(),
            });
        }
        // Without a deadline, joining is the wait; with one, wait on the count first.
        if deadline.is_some() && !self.finished.wait(self.spawned, deadline) {
            self.shared.halt();
            // Give threads that only waited a moment to see the halt; stuck ones are detached.
            let grace = crate::sync::deadline_in(Duration::from_millis(100));
            if self.finished.wait(self.spawned, grace) {
                for r in running {
                    let _ = r.handle.join();
                }
            }
            return Err(ShutdownError::Timeout);
        }
        let (report, panicked) = collect(running);
        // The failure producers were told of, if the queue failed; else the first panic in time.
        let first = match self.shared.lifecycle.failure() {
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

/// Joins `running` and reports on each; also returns, per consumer that panicked, its worker id,
/// its index in the report and its panic's ticket.
fn collect(running: Vec<Running>) -> (ShutdownReport, Vec<(usize, usize, usize)>) {
    let mut consumers = Vec::with_capacity(running.len());
    let mut panicked = Vec::new();
    for r in running {
        let exit = match r.handle.join() {
            Ok(exit) => exit,
            // The loop catches every panic; this is one in ringmq's own bookkeeping.
            Err(_) => ConsumerExit {
                name: r.name.clone(),
                worker: r.worker,
                last_sequence: -1,
                skipped: 0,
                skipped_hooks: 0,
                panic: Some(Panicked {
                    hook: Hook::Engine,
                    sequence: -1,
                    message: "the consumer thread panicked".into(),
                    ticket: usize::MAX,
                }),
            },
        };
        if let Some(p) = &exit.panic {
            panicked.push((exit.worker, consumers.len(), p.ticket));
        }
        consumers.push(ConsumerReport {
            name: exit.name,
            last_sequence: exit.last_sequence,
            skipped: exit.skipped,
            skipped_hooks: exit.skipped_hooks,
            panic: exit.panic.map(|p| HandlerPanic {
                hook: p.hook,
                sequence: p.sequence,
                message: p.message,
            }),
        });
    }
    (ShutdownReport { consumers }, panicked)
}

impl<E: Send + Sync + 'static, S: Sequencer, W: WaitStrategy> Disruptor<E, S, W> {
    /// Starts stage `index` of the graph (already in the gating set), its sequences at `start`.
    pub(crate) fn launch(
        &mut self,
        index: usize,
        stage: Pending<E, S, W>,
        start: i64,
    ) -> Result<(), BuildError> {
        debug_assert_eq!(index, self.stages.len());
        let shared = &self.shared;
        let (sequences, upstream, control) = shared.gating.graph(|g| {
            let upstream: Vec<Arc<Sequence>> = stage
                .upstream
                .iter()
                .flat_map(|&u| g[u].sequences.iter().cloned())
                .collect();
            (
                g[index].sequences.clone(),
                upstream,
                g[index].control.clone(),
            )
        });
        for s in &sequences {
            s.set(start);
        }
        // A joining stage's sequences just moved up from the old minimum to the join point: a
        // producer blocked on them must look again (found by the loom model of a join: without
        // this, a producer that saw the old value slept forever).
        shared.wait.notify();
        if stage.poller {
            let barrier = Barrier::new(shared.clone(), upstream, control);
            let poller = Poller::new(barrier, sequences[0].clone(), index);
            self.stages.push(StageRun {
                threads: Vec::new(),
                poller: Some(poller),
            });
            return Ok(());
        }
        let pool = stage
            .pool_batch
            .map(|batch| Arc::new(PoolClaim::new(start + 1, stage.workers.len(), batch)));
        let mut threads = Vec::with_capacity(stage.workers.len());
        let mut failed = None;
        for (worker, sequence) in stage.workers.into_iter().zip(sequences) {
            let id = self.spawned;
            let processor = Processor {
                name: worker.name.clone(),
                worker: id,
                barrier: Barrier::new(shared.clone(), upstream.clone(), control.clone()),
                sequence,
                options: worker.options.clone(),
                pool: pool.clone(),
            };
            let pin = worker.options.pin;
            let start = worker.start;
            let done = self.finished.clone();
            let spawned =
                crate::sync::thread::spawn_named(format!("ringmq-{}", worker.name), move || {
                    crate::builder::pin_current_thread(pin);
                    let exit = start(processor);
                    done.arrive();
                    exit
                });
            match spawned {
                Ok(handle) => {
                    self.spawned += 1;
                    threads.push(Running {
                        name: worker.name,
                        worker: id,
                        handle,
                    });
                }
                Err(e) => {
                    failed = Some(BuildError::Spawn {
                        consumer: worker.name,
                        message: e.to_string(),
                    });
                    break;
                }
            }
        }
        self.stages.push(StageRun {
            threads,
            poller: None,
        });
        match failed {
            None => Ok(()),
            Some(e) => {
                let _ = self.stop_stage(index);
                Err(e)
            }
        }
    }

    /// Adds a consumer to the running queue, after `upstream` (`&[]`: right after the producers).
    /// It sees every event claimed after this call returns, from
    /// [`first_sequence`](Self::first_sequence) on.
    ///
    /// ```
    /// use ringmq::{Builder, Consumer, Yielding};
    /// use std::time::Duration;
    ///
    /// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// b.add(Consumer::new("main", |_: &u64, _, _| {}))?;
    /// let (mut producer, mut queue) = b.build()?;
    /// producer.publish(|e| *e = 1)?; // before the audit joins: it will not see this one
    ///
    /// let audit = queue.add_consumer(&[], Consumer::new("audit", |e: &u64, seq, _| {
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
    ///
    /// # Errors
    /// [`BuildError::NotRunning`] once the queue is shut down; [`BuildError::ForeignConsumer`],
    /// [`BuildError::Removed`], [`BuildError::PollerUpstream`] for a bad `upstream`;
    /// [`BuildError::NotExclusive`], [`BuildError::NoSuchCore`], [`BuildError::Spawn`] as when
    /// building.
    pub fn add_consumer<H: IntoProcess<E>>(
        &mut self,
        upstream: &[ConsumerId],
        consumer: crate::Consumer<E, H>,
    ) -> Result<ConsumerId, BuildError> {
        self.join_stage(upstream, Pending::consumer(consumer))
    }

    /// Adds a [`WorkPool`](crate::WorkPool) to the running queue; as
    /// [`add_consumer`](Self::add_consumer).
    ///
    /// # Errors
    /// As [`add_consumer`](Self::add_consumer).
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}))?;
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
        upstream: &[ConsumerId],
        pool: crate::WorkPool<E, H>,
    ) -> Result<ConsumerId, BuildError> {
        self.join_stage(upstream, Pending::pool(pool))
    }

    /// Adds a [`Poller`] to the running queue; as [`add_consumer`](Self::add_consumer). Drop the
    /// poller to remove it.
    ///
    /// # Errors
    /// As [`add_consumer`](Self::add_consumer).
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}))?;
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
    pub fn add_poller(&mut self, upstream: &[ConsumerId]) -> Result<Poller<E, S, W>, BuildError> {
        let name = format!("poller-{}", self.stages.len());
        let id = self.join_stage(upstream, Pending::poller(name))?;
        self.take_poller(id)
    }

    /// The join protocol of the gating module: the new stage's sequences start at the old
    /// gating minimum, the set is swapped (with its grace period), then they move to the join
    /// point, and only then do its threads start.
    fn join_stage(
        &mut self,
        upstream: &[ConsumerId],
        mut stage: Pending<E, S, W>,
    ) -> Result<ConsumerId, BuildError> {
        if !self.shared.lifecycle.is_running() {
            return Err(BuildError::NotRunning);
        }
        let mut indices = Vec::with_capacity(upstream.len());
        for &id in upstream {
            let index = self.index(id)?;
            if self.shared.gating.graph(|g| g[index].poller) {
                let poller = self.shared.gating.graph(|g| g[index].name.clone());
                return Err(BuildError::PollerUpstream { poller });
            }
            indices.push(index);
        }
        indices.sort_unstable();
        indices.dedup();
        stage.upstream = indices;
        self.shared.gating.graph(|g| {
            let mut shape: Vec<(&str, &[usize], bool)> = g
                .iter()
                .map(|s| {
                    let name = if s.live() { s.name.as_str() } else { "" };
                    (name, s.upstream.as_slice(), s.exclusive)
                })
                .collect();
            shape.push((
                stage.name.as_str(),
                stage.upstream.as_slice(),
                stage.exclusive,
            ));
            check_exclusive(&shape)
        })?;
        check_cores(std::iter::once(&stage))?;

        let shared = self.shared.clone();
        let below = shared.gating.minimum(i64::MAX);
        let sequences: Vec<Arc<Sequence>> = (0..stage.width())
            .map(|_| Arc::new(Sequence::new(below)))
            .collect();
        let index = shared.gating.change(
            |graph| {
                graph.push(StageInfo {
                    name: stage.name.clone(),
                    upstream: stage.upstream.clone(),
                    exclusive: stage.exclusive,
                    sequences,
                    dynamic: true,
                    poller: stage.poller,
                    gone: false,
                    control: Arc::new(Control::default()),
                    first: 0,
                });
                graph.len() - 1
            },
            // The new stage is live: the graph cannot be left empty.
            || {},
        );
        // After the grace period: no cached minimum is above the join point.
        let join = shared.sequencer.join_point().max(below);
        shared.gating.graph_mut(|g| g[index].first = join + 1);
        self.launch(index, stage, join)?;
        // In place, reading from the join point on: publishes may go through again if the queue
        // had no live stage. Under the graph's lock, as the flag is set (`Shared::change_graph`),
        // so a stage leaving at the same time cannot set it after this clears it.
        shared
            .gating
            .graph(|_| shared.lifecycle.set_no_stage(false));
        Ok(ConsumerId {
            builder: self.id,
            index,
        })
    }

    /// Removes a stage from the running queue: it stops at its next batch boundary, its threads
    /// are joined, and its sequences leave the gating set. Events it had not reached are still
    /// processed by every other stage. A [`Poller`] is removed by dropping it. Removing (or
    /// dropping) the last live stage leaves nobody to read new events: publishes are then refused
    /// with [`PublishError::NoConsumers`](crate::PublishError::NoConsumers) (never left waiting
    /// at a full ring) until a stage is added again.
    ///
    /// # Errors
    /// [`BuildError::HasDependents`] if a live stage comes after it, [`BuildError::PollerUpstream`]
    /// for a poller that was taken (drop it instead), [`BuildError::SelfRemoval`] from inside the
    /// stage's own handler, [`BuildError::Removed`], [`BuildError::ForeignConsumer`].
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}))?;
    /// # let (mut producer, mut queue) = b.build()?;
    /// let audit = queue.add_consumer(&[sink], Consumer::new("audit", |_: &u64, _, _| {}))?;
    /// assert!(queue.remove(sink).is_err()); // `audit` depends on it
    /// queue.remove(audit)?;
    /// queue.remove(sink)?; // now it may go
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove(&mut self, id: ConsumerId) -> Result<ShutdownReport, BuildError> {
        let index = self.index(id)?;
        let blocker = self.shared.gating.graph(|g| {
            g.iter()
                .find(|d| d.live() && d.upstream.contains(&index))
                .map(|d| d.name.clone())
        });
        if let Some(dependent) = blocker {
            return Err(BuildError::HasDependents {
                consumer: self.shared.gating.graph(|g| g[index].name.clone()),
                dependent,
            });
        }
        let is_poller = self.shared.gating.graph(|g| g[index].poller);
        if is_poller {
            return match self.stages[index].poller.take() {
                Some(poller) => {
                    drop(poller);
                    Ok(ShutdownReport {
                        consumers: Vec::new(),
                    })
                }
                None => Err(BuildError::PollerUpstream {
                    poller: self.shared.gating.graph(|g| g[index].name.clone()),
                }),
            };
        }
        if self.stages[index].threads.iter().any(Running::is_current) {
            return Err(BuildError::SelfRemoval {
                consumer: self.shared.gating.graph(|g| g[index].name.clone()),
            });
        }
        Ok(self.stop_stage(index))
    }

    /// Stops stage `index`'s threads, joins them, then takes the stage out of the gating set (in
    /// that order: until its threads stopped reading, its sequences must keep gating).
    fn stop_stage(&mut self, index: usize) -> ShutdownReport {
        let control = self.shared.gating.graph(|g| g[index].control.clone());
        control.leave();
        self.shared.wait.notify();
        let threads = std::mem::take(&mut self.stages[index].threads);
        let (report, _) = collect(threads);
        self.shared.change_graph(|g| g[index].gone = true);
        report
    }
}

impl<E, S: Sequencer, W: WaitStrategy> Drop for Disruptor<E, S, W> {
    fn drop(&mut self) {
        // Always closes, whatever the stages are (a queue of pollers only has no thread to join,
        // but its producers must learn it is gone, and its pollers see `Closed` once drained).
        // Idempotent after `shutdown`/`halt`; joins what they left (nothing), or detaches when
        // dropped on one of its own consumer threads (see `join`).
        self.shared.close();
        let _ = self.join(None);
    }
}

impl<E, S: Sequencer, W: WaitStrategy> std::fmt::Debug for Disruptor<E, S, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disruptor")
            .field("cursor", &self.cursor())
            .field("capacity", &self.capacity())
            .field(
                "consumers",
                &self
                    .stages
                    .iter()
                    .flat_map(|s| s.threads.iter().map(|r| r.name.as_str()))
                    .collect::<Vec<_>>(),
            )
            .field("running", &self.is_running())
            .finish()
    }
}
