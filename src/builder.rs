//! The builder: the ring, the producers' kind, the wait strategy, and the consumer graph.
//!
//! Consumers form a directed acyclic graph. [`Builder::add`] places a consumer right after the
//! producers; [`Builder::add_after`] places it after the consumers it names, so it sees each event
//! only once all of them are done with it. Several consumers after the same ones form a multicast
//! stage (each sees every event); chains are pipelines; two stages joined by a third are a diamond.
//! Only the consumers nothing depends on gate the producers.
//!
//! Nothing runs until [`Builder::build`]: it checks the graph, starts one named thread per consumer
//! (pinned if asked) and returns the producer handle and the running [`Disruptor`]. Dropping a
//! builder starts nothing.

use std::sync::atomic::{AtomicU64, Ordering as StdOrdering};

use crate::barrier::Barrier;
use crate::consumer::{ConsumerExit, IntoProcess, Processor};
use crate::disruptor::{Disruptor, Finished, Running};
use crate::error::BuildError;
use crate::gating::Gating;
use crate::lifecycle::Lifecycle;
use crate::producer::Producer;
use crate::ring::{check_capacity, Ring};
use crate::sequence::{Sequence, INITIAL};
use crate::sequencer::{Multi, Sequencer, Single};
use crate::shared::Shared;
use crate::sync::{Arc, AtomicUsize};
use crate::wait::WaitStrategy;

/// Distinguishes builders, so a handle from one cannot be used in another.
static NEXT_BUILDER_ID: AtomicU64 = AtomicU64::new(0);

/// A consumer added to a [`Builder`]; pass it to [`Builder::add_after`] to depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConsumerId {
    builder: u64,
    index: usize,
}

type Start<E, S, W> = Box<dyn FnOnce(Processor<E, S, W>) -> ConsumerExit + Send>;

struct Node<E, S, W> {
    name: String,
    upstream: Vec<usize>,
    exclusive: bool,
    options: crate::consumer::Options,
    start: Start<E, S, W>,
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
    nodes: Vec<Node<E, S, W>>,
}

impl<E: Send + Sync + 'static, W: WaitStrategy> Builder<E, Single, W> {
    /// A queue with one producer thread, `capacity` slots built by `factory`, waiting with `wait`.
    ///
    /// # Errors
    /// [`BuildError::Capacity`] unless `capacity` is a power of two (1 to 2^30); the message names
    /// the nearest valid capacities.
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
    pub fn add<H: IntoProcess<E>>(
        &mut self,
        consumer: crate::Consumer<E, H>,
    ) -> Result<ConsumerId, BuildError> {
        self.add_after(&[], consumer)
    }

    /// Adds a consumer that sees each event only after every consumer in `upstream` is done with
    /// it (and sees what exclusive upstream stages wrote into it).
    ///
    /// # Errors
    /// [`BuildError::ForeignConsumer`] if a handle comes from another builder.
    pub fn add_after<H: IntoProcess<E>>(
        &mut self,
        upstream: &[ConsumerId],
        consumer: crate::Consumer<E, H>,
    ) -> Result<ConsumerId, BuildError> {
        for id in upstream {
            if id.builder != self.id || id.index >= self.nodes.len() {
                return Err(BuildError::ForeignConsumer { index: id.index });
            }
        }
        let mut upstream: Vec<usize> = upstream.iter().map(|id| id.index).collect();
        upstream.sort_unstable();
        upstream.dedup();
        let handler = consumer.handler;
        let start: Start<E, S, W> =
            Box::new(move |processor: Processor<E, S, W>| processor.run(|| handler.into_process()));
        self.nodes.push(Node {
            name: consumer.name,
            upstream,
            exclusive: H::EXCLUSIVE,
            options: consumer.options,
            start,
        });
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
    #[allow(clippy::type_complexity)]
    pub fn build(self) -> Result<(Producer<E, S, W>, Disruptor<E, S, W>), BuildError> {
        if self.nodes.is_empty() {
            return Err(BuildError::NoConsumers);
        }
        self.check_exclusive()?;
        self.check_cores()?;

        let sequences: Vec<Arc<Sequence>> = self
            .nodes
            .iter()
            .map(|_| Arc::new(Sequence::new(INITIAL)))
            .collect();
        let has_downstream: Vec<bool> = (0..self.nodes.len())
            .map(|i| self.nodes.iter().any(|n| n.upstream.contains(&i)))
            .collect();
        let gating = sequences
            .iter()
            .zip(&has_downstream)
            .filter(|(_, &downstream)| !downstream)
            .map(|(s, _)| s.clone())
            .collect();
        let capacity = self.ring.capacity() as usize;
        let shared = Arc::new(Shared {
            ring: self.ring,
            sequencer: S::new(capacity),
            gating: Gating::new(gating),
            wait: self.wait,
            lifecycle: Lifecycle::new(),
            producers: AtomicUsize::new(1),
        });
        let finished = Arc::new(Finished::new());
        let mut running: Vec<Running> = Vec::with_capacity(self.nodes.len());
        for (node, sequence) in self.nodes.into_iter().zip(&sequences) {
            let processor = Processor {
                name: node.name.clone(),
                barrier: Barrier::new(
                    shared.clone(),
                    node.upstream
                        .iter()
                        .map(|&i| sequences[i].clone())
                        .collect(),
                ),
                sequence: sequence.clone(),
                options: node.options.clone(),
            };
            let pin = node.options.pin;
            let start = node.start;
            let done = finished.clone();
            let spawned =
                crate::sync::thread::spawn_named(format!("ringmq-{}", node.name), move || {
                    pin_current_thread(pin);
                    let exit = start(processor);
                    done.arrive();
                    exit
                });
            match spawned {
                Ok(handle) => running.push(Running {
                    name: node.name,
                    handle,
                }),
                Err(e) => {
                    shared.halt();
                    for r in running {
                        let _ = r.handle.join();
                    }
                    return Err(BuildError::Spawn {
                        consumer: node.name,
                        message: e.to_string(),
                    });
                }
            }
        }
        let producer = Producer::new(shared.clone());
        Ok((producer, Disruptor::new(shared, running, finished)))
    }

    /// Every exclusive stage must be ordered (upstream or downstream) with every other consumer.
    fn check_exclusive(&self) -> Result<(), BuildError> {
        let n = self.nodes.len();
        // reach[i][j]: j is upstream of i (transitively). Nodes only depend on earlier nodes.
        let mut reach = vec![vec![false; n]; n];
        for i in 0..n {
            for &u in &self.nodes[i].upstream {
                // `u < i`, so `reach[u]` is complete: everything upstream of `u` is upstream of `i`.
                let (done, rest) = reach.split_at_mut(i);
                for (mine, &theirs) in rest[0].iter_mut().zip(&done[u]) {
                    *mine |= theirs;
                }
                rest[0][u] = true;
            }
        }
        for (i, node) in self.nodes.iter().enumerate() {
            if !node.exclusive {
                continue;
            }
            for (j, other) in self.nodes.iter().enumerate() {
                if i != j && !reach[i][j] && !reach[j][i] {
                    return Err(BuildError::NotExclusive {
                        exclusive: node.name.clone(),
                        concurrent: other.name.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    fn check_cores(&self) -> Result<(), BuildError> {
        let mut available: Option<Vec<usize>> = None;
        for node in &self.nodes {
            let Some(core) = node.options.pin else {
                continue;
            };
            let available = available.get_or_insert_with(machine_cores);
            if !available.contains(&core) {
                return Err(BuildError::NoSuchCore {
                    consumer: node.name.clone(),
                    requested: core,
                    available: available.clone(),
                });
            }
        }
        Ok(())
    }
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

fn pin_current_thread(core: Option<usize>) {
    #[cfg(not(loom))]
    if let Some(id) = core {
        if !core_affinity::set_for_current(core_affinity::CoreId { id }) {
            eprintln!("ringmq: could not pin a consumer thread to core {id}; it runs unpinned");
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
