//! The builder: the ring, the producers' kind, the wait strategy, and the stage graph.
//!
//! Stages form a directed acyclic graph. [`Builder::add`] places a consumer right after the
//! producers; [`Builder::add_after`] places it after the stages it names, so it sees each event
//! only once all of them are done with it. Several consumers after the same ones form a multicast
//! stage (each sees every event); chains are pipelines; two stages joined by a third are a diamond.
//! Only the stages nothing depends on gate the producers.
//!
//! Besides consumers, a stage can be a [`WorkPool`] ([`Builder::add_pool`]: N workers, each event
//! to exactly one of them) or a [`Poller`] ([`Builder::add_poller`]: no thread, the owner polls).
//! A running queue adds stages with the same four names ([`Disruptor::add`] and the rest), over
//! the same graph code.
//!
//! Nothing runs until [`Builder::build`]: it checks the graph, starts one named thread per
//! consumer (pinned if asked) and returns the producer handle and the running [`Disruptor`].
//! Dropping a builder starts nothing (pollers taken from it see `Closed`).

use crate::consume::consumer::Consumer;
use crate::consume::handler::IntoProcess;
use crate::consume::poller::Poller;
use crate::consume::pool::WorkPool;
use crate::graph::error::BuildError;
use crate::graph::graph::Wired;
use crate::graph::queue::Disruptor;
use crate::graph::spawn::{check_cores, NewStage, Pending};
use crate::graph::stage::StageId;
use crate::producer::Producer;
use crate::protocol::ring::{Ring, MAX_CAPACITY};
use crate::protocol::sequence::INITIAL;
use crate::protocol::sequencer::{Multi, Sequencer, Single};
use crate::protocol::wait::WaitStrategy;
use crate::protocol::Core;

/// Builds a queue: the ring, then its consumers, then [`build`](Builder::build).
///
/// ```
/// use ringmq::{Builder, Consumer, Yielding};
///
/// // A diamond: two stages in parallel, a third after both, enriching in place.
/// #[derive(Default)]
/// struct Order { id: u64, risk_ok: bool, journaled: bool }
///
/// let mut b = Builder::single_producer(1024, Order::default, Yielding)?;
/// let journal = b.add(Consumer::new("journal", |o: &Order, _, _| { let _ = o.id; }));
/// let risk = b.add(Consumer::new("risk", |o: &Order, _, _| { let _ = o.id; }));
/// b.add_after(&[journal, risk], Consumer::exclusive("decide", |o: &mut Order, _, _| {
///     o.risk_ok = true;
///     o.journaled = true;
/// }))?;
/// let (mut producer, queue) = b.build()?;
/// producer.publish(|o| o.id = 7)?;
/// drop(producer);
/// queue.shutdown()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Builder<E, S, W> {
    /// Present until `build` takes it.
    wired: Option<Wired<E, S, W>>,
    /// Per stage, by index: its kind and the threads to start (none for a poller).
    pending: Vec<Pending<E, S, W>>,
    /// Closes the core if the builder is dropped unbuilt (its pollers then see `Closed`): set
    /// where the bounds are known (see `Producer`).
    close: fn(&Core<E, S, W>),
    /// The stall watchdog's callback, if set.
    on_stall: Option<crate::graph::watchdog::OnStall>,
}

impl<E: Send + Sync + 'static, W: WaitStrategy> Builder<E, Single, W> {
    /// A queue with one producer thread, `capacity` slots built by `factory`, waiting with `wait`.
    ///
    /// # Errors
    /// [`BuildError::Capacity`] unless `capacity` is a power of two (1 to 2^30); the message names
    /// the nearest valid capacities.
    ///
    /// ```
    /// let b = ringmq::Builder::single_producer(1024, || 0u64, ringmq::Yielding)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn single_producer(
        capacity: usize,
        factory: impl FnMut() -> E,
        wait: W,
    ) -> Result<Self, BuildError> {
        Self::new(capacity, factory, wait)
    }
}

impl<E: Send + Sync + 'static, W: WaitStrategy> Builder<E, Multi, W> {
    /// A queue with any number of producer threads (clone the producer handle for each),
    /// `capacity` slots built by `factory`, waiting with `wait`.
    ///
    /// # Errors
    /// As [`Builder::single_producer`].
    ///
    /// ```
    /// // Clone the producer handle once per publishing thread.
    /// let b = ringmq::Builder::multi_producer(1024, String::new, ringmq::Blocking::new())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn multi_producer(
        capacity: usize,
        factory: impl FnMut() -> E,
        wait: W,
    ) -> Result<Self, BuildError> {
        Self::new(capacity, factory, wait)
    }
}

impl<E: Send + Sync + 'static, S: Sequencer, W: WaitStrategy> Builder<E, S, W> {
    fn new(capacity: usize, factory: impl FnMut() -> E, wait: W) -> Result<Self, BuildError> {
        check_capacity(capacity)?;
        Ok(Self {
            wired: Some(Wired::new(Core::new(Ring::new(capacity, factory), wait))),
            pending: Vec::new(),
            close: Core::close,
            on_stall: None,
        })
    }

    /// Called by the stall watchdog with each stall it detects (once the stage's
    /// [`StallPolicy`](crate::StallPolicy) has been applied), on the watchdog's thread: keep it short
    /// (log, alert, count). The watchdog also logs a warning through `log`. See
    /// [`Consumer::stall_timeout`](crate::Consumer::stall_timeout).
    ///
    /// ```
    /// use ringmq::{Builder, Consumer, StallPolicy, Yielding};
    /// use std::time::Duration;
    /// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// b.on_stall(|stall| eprintln!("ALERT: {stall}"));
    /// b.add(Consumer::new("db", |_: &u64, _, _| {})
    ///     .stall_timeout(Duration::from_secs(2), StallPolicy::Alert));
    /// let (producer, queue) = b.build()?;
    /// # drop(producer); queue.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn on_stall(&mut self, f: impl Fn(&crate::Stall) + Send + Sync + 'static) -> &mut Self {
        self.on_stall = Some(std::sync::Arc::new(f));
        self
    }

    fn wired(&self) -> &Wired<E, S, W> {
        self.wired.as_ref().expect("present until build")
    }

    /// Records a stage; `build` starts it.
    fn push(
        &mut self,
        upstream: &[StageId],
        stage: NewStage<E, S, W>,
    ) -> Result<usize, BuildError> {
        let index = self.wired().add_stage(upstream, &stage, INITIAL, false)?;
        self.pending.push((stage.kind, stage.workers));
        Ok(index)
    }

    fn id(&self, index: usize) -> StageId {
        self.wired().read(|g| g.id_of(index))
    }

    /// Adds a consumer right after the producers: it sees every published event. Cannot fail:
    /// what is checked across stages (exclusivity, cores) is checked by [`build`](Self::build).
    ///
    /// ```
    /// use ringmq::{Builder, Consumer, Yielding};
    /// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// // Both see every event (multicast).
    /// b.add(Consumer::new("journal", |_: &u64, _, _| {}));
    /// b.add(Consumer::new("replicate", |_: &u64, _, _| {}));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add<H: IntoProcess<E>>(&mut self, consumer: Consumer<E, H>) -> StageId {
        let index = self
            .push(&[], NewStage::consumer(consumer))
            .expect("no upstream to check");
        self.id(index)
    }

    /// Adds a consumer that sees each event only after every stage in `upstream` is done with
    /// it (and sees what exclusive upstream stages wrote into it).
    ///
    /// # Errors
    /// [`BuildError::ForeignStage`] if a handle comes from another queue.
    ///
    /// ```
    /// use ringmq::{Builder, Consumer, Yielding};
    /// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// let decode = b.add(Consumer::new("decode", |_: &u64, _, _| {}));
    /// let journal = b.add(Consumer::new("journal", |_: &u64, _, _| {}));
    /// // Sees an event once both are done with it (a diamond).
    /// b.add_after(&[decode, journal], Consumer::new("logic", |_: &u64, _, _| {}))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_after<H: IntoProcess<E>>(
        &mut self,
        upstream: &[StageId],
        consumer: Consumer<E, H>,
    ) -> Result<StageId, BuildError> {
        let index = self.push(upstream, NewStage::consumer(consumer))?;
        Ok(self.id(index))
    }

    /// Adds a work pool after `upstream` (`&[]`: right after the producers): each event is
    /// handled by exactly one of its workers. The handle stands for the whole pool.
    ///
    /// # Errors
    /// As [`add_after`](Self::add_after).
    ///
    /// ```
    /// use ringmq::{Builder, Consumer, WorkPool, Yielding};
    /// let mut b = Builder::multi_producer(64, || 0u64, Yielding)?;
    /// let pool = b.add_pool(&[], WorkPool::new("serve", 4, |i| {
    ///     Consumer::new(format!("serve-{i}"), |_: &u64, _, _| {})
    /// }))?;
    /// b.add_after(&[pool], Consumer::new("audit", |_: &u64, _, _| {}))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_pool<H: IntoProcess<E>>(
        &mut self,
        upstream: &[StageId],
        pool: WorkPool<E, H>,
    ) -> Result<StageId, BuildError> {
        let index = self.push(upstream, NewStage::pool(pool))?;
        Ok(self.id(index))
    }

    /// Adds a pull-based [`Poller`] after `upstream` and returns it: it sees every event, and
    /// holds producers back until it is polled or dropped. (A running queue adds one the same
    /// way: [`Disruptor::add_poller`].)
    ///
    /// # Errors
    /// As [`add_after`](Self::add_after).
    ///
    /// ```
    /// use ringmq::{Builder, PollState, Yielding};
    /// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// let mut poller = b.add_poller(&[])?;
    /// let (mut producer, _queue) = b.build()?;
    /// producer.publish(|e| *e = 7)?;
    /// assert_eq!(poller.poll(|e, _, _| { assert_eq!(*e, 7); true }), PollState::Processed(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_poller(&mut self, upstream: &[StageId]) -> Result<Poller<E, S, W>, BuildError> {
        let name = format!("poller-{}", self.pending.len());
        let index = self.push(upstream, NewStage::poller(name))?;
        Ok(self.wired().poller(index))
    }

    /// Checks the graph, starts the consumer threads, and returns the producer handle and the
    /// running queue.
    ///
    /// # Errors
    /// [`BuildError::NoConsumers`], [`BuildError::NotExclusive`] (an exclusive stage that another
    /// stage could read concurrently), [`BuildError::NoSuchCore`], [`BuildError::Spawn`].
    ///
    /// ```
    /// use ringmq::{Builder, Consumer, Yielding};
    /// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// b.add(Consumer::new("sink", |_: &u64, _, _| {}));
    /// let (mut producer, queue) = b.build()?; // threads start here
    /// producer.publish(|e| *e = 1)?;
    /// drop(producer);
    /// queue.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn build(mut self) -> Result<(Producer<E, S, W>, Disruptor<E, S, W>), BuildError> {
        self.wired().read(|g| {
            if !g.has_live_stage() {
                return Err(BuildError::NoConsumers);
            }
            g.check_exclusive(None)
        })?;
        check_cores(self.pending.iter().flat_map(|(_, w)| w.iter()))?;
        let wired = self.wired.take().expect("present until build");
        // No producer exists yet: the set goes in without a reader to wait for. A poller dropped
        // before now may have flagged "no live stage"; there is one.
        wired.read(|g| {
            wired.core.gating.replace(g.gating_sequences());
            wired.core.set_no_stage(false);
        });
        let core = wired.core.clone();
        let queue = Disruptor::start(
            wired,
            std::mem::take(&mut self.pending),
            self.on_stall.take(),
        )?;
        Ok((Producer::new(core), queue))
    }
}

impl<E, S, W> Drop for Builder<E, S, W> {
    fn drop(&mut self) {
        if let Some(wired) = &self.wired {
            // Never built: no producer will come, so its pollers see `Closed`.
            (self.close)(&wired.core);
        }
    }
}

impl<E, S, W> std::fmt::Debug for Builder<E, S, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Builder");
        if let Some(wired) = &self.wired {
            d.field("capacity", &wired.core.ring.capacity());
            wired.read(|g| {
                d.field(
                    "stages",
                    &g.stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
                );
            });
        }
        d.finish()
    }
}

/// Checks that `capacity` is a usable ring size: a power of two, at least 1, at most
/// [`MAX_CAPACITY`].
fn check_capacity(capacity: usize) -> Result<(), BuildError> {
    if capacity.is_power_of_two() && capacity <= MAX_CAPACITY {
        return Ok(());
    }
    let below = if capacity == 0 {
        None
    } else {
        Some(1usize << (usize::BITS - 1 - capacity.min(MAX_CAPACITY).leading_zeros()))
    };
    let above = capacity
        .checked_next_power_of_two()
        .filter(|&c| c <= MAX_CAPACITY);
    Err(BuildError::Capacity {
        requested: capacity,
        below,
        above,
    })
}
