//! The builder: the ring, the producers' kind, the wait strategy, and the consumer graph.
//!
//! Consumers form a directed acyclic graph. [`Builder::add`] places a consumer right after the
//! producers; [`Builder::add_after`] places it after the consumers it names, so it sees each event
//! only once all of them are done with it. Several consumers after the same ones form a multicast
//! stage (each sees every event); chains are pipelines; two stages joined by a third are a diamond.
//! Only the consumers nothing depends on gate the producers.
//!
//! Besides consumers, a stage can be a [`WorkPool`] ([`Builder::add_pool`]: N workers, each event
//! to exactly one of them) or a [`Poller`](crate::Poller) ([`Builder::add_poller`]: no thread, the
//! owner polls). The same three can join a running queue through [`Disruptor::add_consumer`],
//! [`Disruptor::add_pool`] and [`Disruptor::add_poller`].
//!
//! Nothing runs until [`Builder::build`]: it checks the graph, starts one named thread per consumer
//! (pinned if asked) and returns the producer handle and the running [`Disruptor`]. Dropping a
//! builder starts nothing.

use std::sync::atomic::{AtomicU64, Ordering as StdOrdering};

use crate::consumer::{ConsumerExit, IntoProcess, Options, Processor};
use crate::disruptor::{Disruptor, Finished};
use crate::error::BuildError;
use crate::gating::{Control, Gating, StageInfo};
use crate::lifecycle::Lifecycle;
use crate::pool::WorkPool;
use crate::producer::Producer;
use crate::ring::{check_capacity, Ring};
use crate::sequence::{Sequence, INITIAL};
use crate::sequencer::{Multi, Sequencer, Single};
use crate::shared::Shared;
use crate::sync::{Arc, AtomicUsize};
use crate::wait::WaitStrategy;

/// Distinguishes builders, so a handle from one cannot be used in another.
static NEXT_BUILDER_ID: AtomicU64 = AtomicU64::new(0);

/// A stage (consumer, work pool or poller) of a [`Builder`] or a running [`Disruptor`]: pass it to
/// [`Builder::add_after`] to depend on it, to [`Disruptor::tracker`] to follow it, to
/// [`Disruptor::remove`] to stop it.
///
/// ```
/// use ringmq::{BuildError, Builder, Consumer, Yielding};
///
/// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
/// let parse = b.add(Consumer::new("parse", |_: &u64, _, _| {}))?;
/// b.add_after(&[parse], Consumer::new("store", |_: &u64, _, _| {}))?;
/// // A handle belongs to its builder: another queue refuses it.
/// let mut other = Builder::single_producer(64, || 0u64, Yielding)?;
/// let refused = other.add_after(&[parse], Consumer::new("x", |_: &u64, _, _| {}));
/// assert!(matches!(refused, Err(BuildError::ForeignConsumer { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConsumerId {
    pub(crate) builder: u64,
    pub(crate) index: usize,
}

pub(crate) type Start<E, S, W> = Box<dyn FnOnce(Processor<E, S, W>) -> ConsumerExit + Send>;

/// One thread of a stage to be started: a consumer, or one worker of a pool.
pub(crate) struct Worker<E, S, W> {
    pub(crate) name: String,
    pub(crate) options: Options,
    pub(crate) start: Start<E, S, W>,
}

/// A stage not started yet.
pub(crate) struct Pending<E, S, W> {
    pub(crate) name: String,
    pub(crate) upstream: Vec<usize>,
    pub(crate) exclusive: bool,
    /// Empty for a poller.
    pub(crate) workers: Vec<Worker<E, S, W>>,
    /// `Some(batch)` for a work pool.
    pub(crate) pool_batch: Option<usize>,
    pub(crate) poller: bool,
}

impl<E: 'static, S: Sequencer, W: WaitStrategy> Pending<E, S, W> {
    pub(crate) fn consumer<H: IntoProcess<E>>(consumer: crate::Consumer<E, H>) -> Self {
        Self {
            name: consumer.name.clone(),
            upstream: Vec::new(),
            exclusive: H::EXCLUSIVE,
            workers: vec![Worker::new(consumer)],
            pool_batch: None,
            poller: false,
        }
    }

    pub(crate) fn pool<H: IntoProcess<E>>(pool: WorkPool<E, H>) -> Self {
        Self {
            name: pool.name,
            upstream: Vec::new(),
            exclusive: H::EXCLUSIVE,
            workers: pool.workers.into_iter().map(Worker::new).collect(),
            pool_batch: Some(pool.batch),
            poller: false,
        }
    }

    pub(crate) fn poller(name: String) -> Self {
        Self {
            name,
            upstream: Vec::new(),
            exclusive: false,
            workers: Vec::new(),
            pool_batch: None,
            poller: true,
        }
    }

    /// How many sequences the stage has: one per worker, one for a poller.
    pub(crate) fn width(&self) -> usize {
        self.workers.len().max(1)
    }
}

impl<E: 'static, S: Sequencer, W: WaitStrategy> Worker<E, S, W> {
    fn new<H: IntoProcess<E>>(consumer: crate::Consumer<E, H>) -> Self {
        let handler = consumer.handler;
        Self {
            name: consumer.name,
            options: consumer.options,
            start: Box::new(move |processor: Processor<E, S, W>| {
                processor.run(|| handler.into_process())
            }),
        }
    }
}

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
/// let journal = b.add(Consumer::new("journal", |o: &Order, _, _| { let _ = o.id; }))?;
/// let risk = b.add(Consumer::new("risk", |o: &Order, _, _| { let _ = o.id; }))?;
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
pub struct Builder<E, S: Sequencer, W: WaitStrategy> {
    id: u64,
    ring: Ring<E>,
    wait: W,
    nodes: Vec<Pending<E, S, W>>,
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
            id: NEXT_BUILDER_ID.fetch_add(1, StdOrdering::Relaxed),
            ring: Ring::new(capacity, factory),
            wait,
            nodes: Vec::new(),
        })
    }

    /// Adds a consumer right after the producers: it sees every published event.
    ///
    /// # Errors
    /// None today; the `Result` keeps the signature of [`add_after`](Self::add_after).
    ///
    /// ```
    /// use ringmq::{Builder, Consumer, Yielding};
    /// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// // Both see every event (multicast).
    /// b.add(Consumer::new("journal", |_: &u64, _, _| {}))?;
    /// b.add(Consumer::new("replicate", |_: &u64, _, _| {}))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add<H: IntoProcess<E>>(
        &mut self,
        consumer: crate::Consumer<E, H>,
    ) -> Result<ConsumerId, BuildError> {
        self.add_after(&[], consumer)
    }

    /// Adds a consumer that sees each event only after every stage in `upstream` is done with
    /// it (and sees what exclusive upstream stages wrote into it).
    ///
    /// # Errors
    /// [`BuildError::ForeignConsumer`] if a handle comes from another builder,
    /// [`BuildError::PollerUpstream`] if it names a poller.
    ///
    /// ```
    /// use ringmq::{Builder, Consumer, Yielding};
    /// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// let decode = b.add(Consumer::new("decode", |_: &u64, _, _| {}))?;
    /// let journal = b.add(Consumer::new("journal", |_: &u64, _, _| {}))?;
    /// // Sees an event once both are done with it (a diamond).
    /// b.add_after(&[decode, journal], Consumer::new("logic", |_: &u64, _, _| {}))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_after<H: IntoProcess<E>>(
        &mut self,
        upstream: &[ConsumerId],
        consumer: crate::Consumer<E, H>,
    ) -> Result<ConsumerId, BuildError> {
        self.push(upstream, Pending::consumer(consumer))
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
        upstream: &[ConsumerId],
        pool: WorkPool<E, H>,
    ) -> Result<ConsumerId, BuildError> {
        self.push(upstream, Pending::pool(pool))
    }

    /// Adds a pull-based [`Poller`](crate::Poller) after `upstream`; take it from the running
    /// queue with [`Disruptor::take_poller`]. It sees every event, and holds producers back until
    /// it is polled or dropped.
    ///
    /// # Errors
    /// As [`add_after`](Self::add_after).
    ///
    /// ```
    /// use ringmq::{Builder, Yielding};
    /// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// let id = b.add_poller(&[])?; // take it with `Disruptor::take_poller(id)` after `build`
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn add_poller(&mut self, upstream: &[ConsumerId]) -> Result<ConsumerId, BuildError> {
        let name = format!("poller-{}", self.nodes.len());
        self.push(upstream, Pending::poller(name))
    }

    fn push(
        &mut self,
        upstream: &[ConsumerId],
        mut stage: Pending<E, S, W>,
    ) -> Result<ConsumerId, BuildError> {
        let mut indices = Vec::with_capacity(upstream.len());
        for id in upstream {
            if id.builder != self.id || id.index >= self.nodes.len() {
                return Err(BuildError::ForeignConsumer { index: id.index });
            }
            if self.nodes[id.index].poller {
                return Err(BuildError::PollerUpstream {
                    poller: self.nodes[id.index].name.clone(),
                });
            }
            indices.push(id.index);
        }
        indices.sort_unstable();
        indices.dedup();
        stage.upstream = indices;
        self.nodes.push(stage);
        Ok(ConsumerId {
            builder: self.id,
            index: self.nodes.len() - 1,
        })
    }

    /// Checks the graph, starts the consumer threads, and returns the producer handle and the
    /// running queue.
    ///
    /// # Errors
    /// [`BuildError::NoConsumers`], [`BuildError::NotExclusive`] (an exclusive stage that another
    /// consumer could read concurrently), [`BuildError::NoSuchCore`], [`BuildError::Spawn`].
    ///
    /// ```
    /// use ringmq::{Builder, Consumer, Yielding};
    /// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// b.add(Consumer::new("sink", |_: &u64, _, _| {}))?;
    /// let (mut producer, queue) = b.build()?; // threads start here
    /// producer.publish(|e| *e = 1)?;
    /// drop(producer);
    /// queue.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(clippy::type_complexity)]
    pub fn build(self) -> Result<(Producer<E, S, W>, Disruptor<E, S, W>), BuildError> {
        if self.nodes.is_empty() {
            return Err(BuildError::NoConsumers);
        }
        let shape: Vec<(&str, &[usize], bool)> = self
            .nodes
            .iter()
            .map(|n| (n.name.as_str(), n.upstream.as_slice(), n.exclusive))
            .collect();
        check_exclusive(&shape)?;
        check_cores(self.nodes.iter())?;

        let graph: Vec<StageInfo> = self
            .nodes
            .iter()
            .map(|n| StageInfo {
                name: n.name.clone(),
                upstream: n.upstream.clone(),
                exclusive: n.exclusive,
                sequences: (0..n.width())
                    .map(|_| Arc::new(Sequence::new(INITIAL)))
                    .collect(),
                dynamic: false,
                poller: n.poller,
                gone: false,
                control: Arc::new(Control::default()),
                first: 0,
            })
            .collect();
        let capacity = self.ring.capacity() as usize;
        let shared = Arc::new(Shared {
            ring: self.ring,
            sequencer: S::new(capacity),
            gating: Gating::new(graph),
            wait: self.wait,
            lifecycle: Lifecycle::new(),
            producers: AtomicUsize::new(1),
        });
        let mut disruptor = Disruptor::new(shared.clone(), self.id, Arc::new(Finished::new()));
        for (index, node) in self.nodes.into_iter().enumerate() {
            if let Err(e) = disruptor.launch(index, node, INITIAL) {
                drop(disruptor.halt());
                return Err(e);
            }
        }
        let producer = Producer::new(shared);
        Ok((producer, disruptor))
    }
}

/// Every exclusive stage must be ordered (upstream or downstream) with every other stage.
/// `stages[i] = (name, upstream, exclusive)`; stages only depend on earlier ones. A removed
/// stage is passed with no name (`""`) and is skipped.
pub(crate) fn check_exclusive(stages: &[(&str, &[usize], bool)]) -> Result<(), BuildError> {
    let n = stages.len();
    // reach[i][j]: j is upstream of i (transitively).
    let mut reach = vec![vec![false; n]; n];
    for (i, &(_, upstream, _)) in stages.iter().enumerate() {
        for &u in upstream {
            // `u < i`, so `reach[u]` is complete: everything upstream of `u` is upstream of `i`.
            let (done, rest) = reach.split_at_mut(i);
            for (mine, &theirs) in rest[0].iter_mut().zip(&done[u]) {
                *mine |= theirs;
            }
            rest[0][u] = true;
        }
    }
    for (i, &(name, _, exclusive)) in stages.iter().enumerate() {
        if !exclusive || name.is_empty() {
            continue;
        }
        for (j, &(other, _, _)) in stages.iter().enumerate() {
            if i != j && !other.is_empty() && !reach[i][j] && !reach[j][i] {
                return Err(BuildError::NotExclusive {
                    exclusive: name.to_owned(),
                    concurrent: other.to_owned(),
                });
            }
        }
    }
    Ok(())
}

/// Every pinned worker names a core the machine has.
pub(crate) fn check_cores<'a, E: 'a, S: 'a, W: 'a>(
    stages: impl Iterator<Item = &'a Pending<E, S, W>>,
) -> Result<(), BuildError> {
    let mut available: Option<Vec<usize>> = None;
    for worker in stages.flat_map(|s| s.workers.iter()) {
        let Some(core) = worker.options.pin else {
            continue;
        };
        let available = available.get_or_insert_with(machine_cores);
        if !available.contains(&core) {
            return Err(BuildError::NoSuchCore {
                consumer: worker.name.clone(),
                requested: core,
                available: available.clone(),
            });
        }
    }
    Ok(())
}

/// The cores of the machine. Not `core_affinity::get_core_ids()` alone: that is the *calling
/// thread's* affinity mask, so a builder running on a pinned thread would reject every other core.
/// On Linux the online CPUs come from sysfs; elsewhere (or if sysfs is unreadable) from
/// core_affinity.
fn machine_cores() -> Vec<usize> {
    let mut cores: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if cfg!(target_os = "linux") {
        if let Ok(online) = std::fs::read_to_string("/sys/devices/system/cpu/online") {
            cores.extend(parse_cpu_list(&online));
        }
    }
    cores.sort_unstable();
    cores.dedup();
    cores
}

/// Parses a Linux CPU list such as `0-3,8,10-11`; malformed parts are ignored.
fn parse_cpu_list(list: &str) -> Vec<usize> {
    let mut cores = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let mut ends = part.splitn(2, '-').map(|n| n.trim().parse::<usize>());
        match (ends.next(), ends.next()) {
            (Some(Ok(lo)), None) => cores.push(lo),
            (Some(Ok(lo)), Some(Ok(hi))) if lo <= hi && hi - lo < 1 << 16 => cores.extend(lo..=hi),
            _ => {}
        }
    }
    cores
}

pub(crate) fn pin_current_thread(core: Option<usize>) {
    #[cfg(not(loom))]
    if let Some(id) = core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
            crate::diag::warn(format_args!(
                "could not pin a consumer thread to core {id}; it runs unpinned"
            ));
        }
    }
    #[cfg(loom)]
    let _ = core;
}

impl<E, S: Sequencer, W: WaitStrategy> std::fmt::Debug for Builder<E, S, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("capacity", &self.ring.capacity())
            .field(
                "consumers",
                &self
                    .nodes
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::parse_cpu_list;

    #[test]
    fn cpu_lists_parse_like_sysfs_writes_them() {
        assert_eq!(parse_cpu_list("0-1\n"), vec![0, 1]);
        assert_eq!(parse_cpu_list("0-2,4,6-7"), vec![0, 1, 2, 4, 6, 7]);
        assert_eq!(parse_cpu_list("3"), vec![3]);
        assert_eq!(parse_cpu_list(""), Vec::<usize>::new());
        assert_eq!(parse_cpu_list("x,2-1,5"), vec![5]);
    }
}
