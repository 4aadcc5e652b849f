//! Starting a stage's threads: one named thread per consumer or pool worker, pinned if asked,
//! counted when it finishes (so a shutdown can wait with a deadline), joined into a report.

use std::time::Instant;

use crate::consume::batch::{ConsumerExit, Panicked, Processor};
use crate::consume::consumer::Hook;
use crate::consume::consumer::{Consumer, Options};
use crate::consume::handler::IntoProcess;
use crate::consume::pool::{PoolClaim, WorkPool};
use crate::graph::error::BuildError;
use crate::graph::report::{ConsumerReport, HandlerPanic, ShutdownReport};
use crate::graph::stage::StageKind;
use crate::protocol::barrier::Barrier;
use crate::protocol::sequence::Sequence;
use crate::protocol::sequencer::SequencerImpl;
use crate::protocol::wait::WaitStrategy;
use crate::sync::{thread::JoinHandle, Arc, Condvar, Mutex};

/// A stage's kind and the threads to start for it (none for a poller), between `add` and
/// `build`.
pub(crate) type Pending<E, S, W> = (StageKind, Vec<Worker<E, S, W>>);

/// A stage to add, as the user described it: what `add`, `add_after`, `add_pool` and
/// `add_poller` hand to the graph, on the builder and on the running queue alike.
pub(crate) struct NewStage<E, S, W> {
    pub(crate) name: String,
    pub(crate) kind: StageKind,
    pub(crate) exclusive: bool,
    /// One per thread; none for a poller.
    pub(crate) workers: Vec<Worker<E, S, W>>,
}

impl<E: 'static, S: SequencerImpl, W: WaitStrategy> NewStage<E, S, W> {
    pub(crate) fn consumer<H: IntoProcess<E>>(consumer: Consumer<E, H>) -> Self {
        Self {
            name: consumer.name.clone(),
            kind: StageKind::Consumer,
            exclusive: H::EXCLUSIVE,
            workers: vec![Worker::new(consumer)],
        }
    }

    pub(crate) fn pool<H: IntoProcess<E>>(pool: WorkPool<E, H>) -> Self {
        Self {
            name: pool.name,
            kind: StageKind::Pool { batch: pool.batch },
            exclusive: H::EXCLUSIVE,
            workers: pool.workers.into_iter().map(Worker::new).collect(),
        }
    }

    pub(crate) fn poller(name: String) -> Self {
        Self {
            name,
            kind: StageKind::Poller,
            exclusive: false,
            workers: Vec::new(),
        }
    }
}

type Start<E, S, W> = Box<dyn FnOnce(Processor<E, S, W>) -> ConsumerExit + Send>;

/// One thread of a stage to be started: a consumer, or one worker of a pool.
pub(crate) struct Worker<E, S, W> {
    pub(crate) name: String,
    pub(crate) options: Options,
    start: Start<E, S, W>,
}

impl<E: 'static, S: SequencerImpl, W: WaitStrategy> Worker<E, S, W> {
    pub(crate) fn new<H: IntoProcess<E>>(consumer: Consumer<E, H>) -> Self {
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
    /// The stage's flag: set, the thread is left to finish on its own (stall watchdog).
    pub(crate) detached: crate::graph::watchdog::Detached,
}

impl Running {
    /// Whether this is the calling thread: a handler that shuts its own queue down.
    pub(crate) fn is_current(&self) -> bool {
        self.handle.thread().id() == crate::sync::thread::current().id()
    }

    /// Whether the watchdog left this thread to finish on its own: not to be joined.
    pub(crate) fn is_detached(&self) -> bool {
        self.detached.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// What a stage's threads take from its graph node: a sequence and a counter block each, and
/// the stage's detached flag.
pub(crate) struct Slots {
    pub(crate) sequences: Vec<Arc<Sequence>>,
    pub(crate) counters: Vec<Arc<crate::consume::counters::StageCounters>>,
    pub(crate) detached: crate::graph::watchdog::Detached,
}

/// Starts one thread per worker over `barrier`, with its sequence and counters from `slots`
/// (one each), as a pool if `pool_batch` is given; `next_id` numbers the threads within the
/// queue. On a spawn failure returns the threads started so far with the error, for the caller
/// to stop.
#[allow(clippy::type_complexity)]
pub(crate) fn launch<E: Send + Sync + 'static, S: SequencerImpl, W: WaitStrategy>(
    workers: Vec<Worker<E, S, W>>,
    barrier: &Barrier<E, S, W>,
    slots: Slots,
    pool_batch: Option<usize>,
    next_id: &mut usize,
    finished: &Arc<Finished>,
) -> (Vec<Running>, Option<BuildError>) {
    let Slots {
        sequences,
        counters,
        detached,
    } = slots;
    let detached = &detached;
    let start = sequences[0].get_relaxed();
    let pool = pool_batch.map(|batch| Arc::new(PoolClaim::new(start + 1, workers.len(), batch)));
    let mut threads = Vec::with_capacity(workers.len());
    for ((worker, sequence), counters) in workers.into_iter().zip(sequences).zip(counters) {
        let id = *next_id;
        let processor = Processor {
            name: worker.name.clone(),
            worker: id,
            barrier: barrier.clone(),
            sequence,
            options: worker.options.clone(),
            pool: pool.clone(),
            counters,
            waits: std::cell::Cell::new(0),
        };
        let pin = worker.options.pin;
        let start = worker.start;
        let done = finished.clone();
        let spawned =
            crate::sync::thread::spawn_named(format!("ringmq-{}", worker.name), move || {
                pin_current_thread(pin);
                let exit = start(processor);
                done.arrive();
                exit
            });
        match spawned {
            Ok(handle) => {
                *next_id += 1;
                threads.push(Running {
                    name: worker.name,
                    worker: id,
                    handle,
                    detached: detached.clone(),
                });
            }
            Err(e) => {
                let error = BuildError::Spawn {
                    consumer: worker.name,
                    message: e.to_string(),
                };
                return (threads, Some(error));
            }
        }
    }
    (threads, None)
}

/// Joins `running` and reports on each; also returns, per consumer that panicked, its worker id,
/// its index in the report and its panic's ticket.
pub(crate) fn collect(running: Vec<Running>) -> (ShutdownReport, Vec<(usize, usize, usize)>) {
    let mut consumers = Vec::with_capacity(running.len());
    let mut panicked = Vec::new();
    // Threads the stall watchdog left to finish are not waited for (nor reported).
    for r in running.into_iter().filter(|r| !r.is_detached()) {
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

/// Every pinned worker names a core the machine has.
pub(crate) fn check_cores<'a, E: 'a, S: 'a, W: 'a>(
    workers: impl Iterator<Item = &'a Worker<E, S, W>>,
) -> Result<(), BuildError> {
    let mut available: Option<Vec<usize>> = None;
    for worker in workers {
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

fn pin_current_thread(core: Option<usize>) {
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
