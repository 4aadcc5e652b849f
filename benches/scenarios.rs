//! The LMAX scenarios, ringmq beside its peers in one criterion group per scenario, so each ratio
//! comes from one run on one machine.
//!
//! Throughput method: one criterion iteration publishes one burst (per producer); a measurement
//! publishes `iters` bursts and then waits until the consumers' sinks hold the *last sequence (or
//! count) of this measurement*, so a sink left over from an earlier measurement never counts.
//!
//! Each implementation is built, measured and torn down before the next one starts, so no idle
//! consumer of another implementation shares a core with the one being measured. Every group
//! prints the cores it ran on and the wait strategy of each side.
//!
//! Groups (ids are `group/implementation/burst`):
//! - `unicast_1p1c` and `unicast_1p1c_64b` (8- and 64-byte events): ringmq (defaults, and with
//!   `Consumer::coalesce`), the disruptor crate, crossbeam-channel, rtrb, std `sync_channel`;
//!   bursts 1, 10, 100.
//! - `sequencer_3p1c`: three producers, one consumer; ringmq, disruptor, crossbeam-channel, std.
//! - `multicast_1p3c`, `pipeline_1p3c`, `diamond_1p3c`: ringmq and the disruptor crate.
//! - `workpool_1p2w`: a ringmq work pool of two workers; crossbeam-channel as an MPMC work queue.
//! - `poller_1p1c`: ringmq `Poller`, the disruptor crate's `EventPoller`, rtrb popping.
//! - `pingpong_rtt`: round trip through two queues (one each way), and the hardware floor: two
//!   threads handing a cache line back and forth.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use crossbeam_utils::{Backoff, CachePadded};
use disruptor::ProcessorSettings;
use ringmq_tools::{pin, DisruptorYield};

const RING: usize = 1 << 16;
/// `ringmq_coalesce`: batches under 256 events that were already waiting pause for 1 µs.
const COALESCE_MIN: usize = 256;
const COALESCE_DELAY: Duration = Duration::from_micros(1);
const BURSTS: [u64; 3] = [1, 10, 100];

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// The event types: an 8-byte value and a 64-byte one (a cache line).
trait Event: Copy + Default + Send + Sync + 'static {
    fn new(i: u64) -> Self;
    /// Reads the event (its first and last word), as a consumer would.
    fn touch(&self) -> u64;
}

impl Event for u64 {
    #[inline]
    fn new(i: u64) -> Self {
        i
    }
    #[inline]
    fn touch(&self) -> u64 {
        *self
    }
}

/// 64 bytes.
#[derive(Clone, Copy, Default)]
struct Line([u64; 8]);

impl Event for Line {
    #[inline]
    fn new(i: u64) -> Self {
        Line([i; 8])
    }
    #[inline]
    fn touch(&self) -> u64 {
        self.0[0] ^ self.0[7]
    }
}

/// The machine's cores (not this thread's affinity mask, which `pin` narrows to one).
fn cores() -> usize {
    core_affinity::get_core_ids().map_or(1, |c| c.len())
}

/// Waits (spin, then yield) until `sink` reaches `target`; bounded: a lost event fails the
/// benchmark instead of hanging it.
fn await_sink(sink: &AtomicI64, target: i64) {
    let start = Instant::now();
    let backoff = Backoff::new();
    while sink.load(Ordering::Acquire) < target {
        backoff.snooze();
        if backoff.is_completed() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "consumer stalled at {} of {target}",
                sink.load(Ordering::Relaxed)
            );
        }
    }
}

/// Waits until every sink reaches `target`.
fn await_sinks(sinks: &[Arc<AtomicI64>], target: i64) {
    for s in sinks {
        await_sink(s, target);
    }
}

/// A sink a consumer stores the sequence of its last event into, at the end of each batch.
fn sink() -> (Arc<AtomicI64>, Arc<AtomicI64>) {
    let s = Arc::new(AtomicI64::new(-1));
    (s.clone(), s)
}

/// A consumer that stores its sequence into `sink` at the end of each batch.
fn sink_handler<T: Event>(sink: Arc<AtomicI64>) -> impl FnMut(&T, i64, bool) + Send + 'static {
    move |v: &T, seq: i64, eob: bool| {
        std::hint::black_box(v.touch());
        if eob {
            sink.store(seq, Ordering::Release);
        }
    }
}

/// The thread that measures one implementation, pinned to core 0. For single-producer groups it
/// is the producer.
struct Driver {
    tx: mpsc::Sender<(u64, u64)>,
    rx: mpsc::Receiver<Duration>,
    thread: JoinHandle<()>,
}

impl Driver {
    /// `run(iters, burst)` does `iters` iterations and returns the time they took.
    fn spawn(mut run: impl FnMut(u64, u64) -> Duration + Send + 'static) -> Self {
        let (tx, jobs) = mpsc::channel::<(u64, u64)>();
        let (done, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            pin(0);
            for (iters, burst) in jobs {
                done.send(run(iters, burst)).unwrap();
            }
        });
        Self { tx, rx, thread }
    }

    fn measure(&self, iters: u64, burst: u64) -> Duration {
        self.tx.send((iters, burst)).unwrap();
        self.rx.recv().unwrap()
    }

    /// Ends the thread, dropping what it owns (a producer, which closes its queue).
    fn stop(self) {
        drop(self.tx);
        self.thread.join().unwrap();
    }
}

/// Measures `driver` at every burst size, `events_per_burst` events per burst and iteration.
fn measure_bursts(group: &mut Group<'_>, name: &str, driver: Driver, producers: u64) {
    for burst in BURSTS {
        group.throughput(Throughput::Elements(burst * producers));
        group.bench_function(BenchmarkId::new(name, burst), |b| {
            b.iter_custom(|iters| driver.measure(iters, burst))
        });
    }
    driver.stop();
}

/// Drives a ringmq producer: `iters` bursts (single publishes for a burst of 1), then waits for
/// every sink in `last`.
fn ringmq_driver<T, S, W>(mut p: ringmq::Producer<T, S, W>, last: Vec<Arc<AtomicI64>>) -> Driver
where
    T: Event,
    S: ringmq::Sequencer,
    W: ringmq::WaitStrategy,
{
    Driver::spawn(move |iters, burst| {
        let start = Instant::now();
        let mut seq = -1;
        for i in 0..iters {
            seq = ringmq_burst(&mut p, i, burst);
        }
        await_sinks(&last, seq);
        start.elapsed()
    })
}

#[inline]
fn ringmq_burst<T: Event, S: ringmq::Sequencer, W: ringmq::WaitStrategy>(
    p: &mut ringmq::Producer<T, S, W>,
    i: u64,
    burst: u64,
) -> i64 {
    if burst == 1 {
        p.publish(|v| *v = T::new(i)).unwrap()
    } else {
        let seqs = p.publish_batch(burst as usize, |v, k| *v = T::new(i + k as u64));
        seqs.unwrap().end - 1
    }
}

/// Drives a disruptor-crate producer: `iters` bursts, then waits for every sink in `last`.
fn disruptor_driver<T, P>(mut p: P, last: Vec<Arc<AtomicI64>>) -> Driver
where
    T: Event,
    P: disruptor::Producer<T> + Send + 'static,
{
    let mut next = 0i64;
    Driver::spawn(move |iters, burst| {
        let start = Instant::now();
        for i in 0..iters {
            disruptor_burst(&mut p, i, burst);
            next += burst as i64;
        }
        await_sinks(&last, next - 1);
        start.elapsed()
    })
}

#[inline]
fn disruptor_burst<T: Event, P: disruptor::Producer<T>>(p: &mut P, i: u64, burst: u64) {
    if burst == 1 {
        p.publish(|v| *v = T::new(i));
    } else {
        p.batch_publish(burst as usize, |it| {
            for (k, v) in it.enumerate() {
                *v = T::new(i + k as u64);
            }
        });
    }
}

/// Drives a channel-like producer that sends one value at a time: `iters` bursts of `burst`
/// sends, then waits for the consumer's sink.
fn send_driver<T: Event>(mut send: impl FnMut(T) + Send + 'static, sink: Arc<AtomicI64>) -> Driver {
    let mut next = 0i64;
    Driver::spawn(move |iters, burst| {
        let start = Instant::now();
        for i in 0..iters {
            for k in 0..burst {
                send(T::new(i + k));
            }
            next += burst as i64;
        }
        await_sink(&sink, next - 1);
        start.elapsed()
    })
}

/// What a channel gave a consumer.
enum Got<T> {
    Value(T),
    Empty,
    Closed,
}

impl<T> Got<T> {
    fn crossbeam(rx: &crossbeam_channel::Receiver<T>, block: bool) -> Self {
        if block {
            return rx.recv().map_or(Got::Closed, Got::Value);
        }
        match rx.try_recv() {
            Ok(v) => Got::Value(v),
            Err(crossbeam_channel::TryRecvError::Empty) => Got::Empty,
            Err(crossbeam_channel::TryRecvError::Disconnected) => Got::Closed,
        }
    }

    fn std(rx: &mpsc::Receiver<T>, block: bool) -> Self {
        if block {
            return rx.recv().map_or(Got::Closed, Got::Value);
        }
        match rx.try_recv() {
            Ok(v) => Got::Value(v),
            Err(mpsc::TryRecvError::Empty) => Got::Empty,
            Err(mpsc::TryRecvError::Disconnected) => Got::Closed,
        }
    }
}

/// A consumer thread for channels: counts what it receives and stores `count - 1` into `sink`
/// whenever the channel runs dry (its "end of batch"), then blocks for the next value.
/// `next(block)` receives one value.
fn channel_consumer<T: Event>(
    core: Option<usize>,
    sink: Arc<AtomicI64>,
    mut next: impl FnMut(bool) -> Got<T> + Send + 'static,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        if let Some(c) = core {
            pin(c);
        }
        let mut seq = -1i64;
        let mut block = false;
        loop {
            match next(block) {
                Got::Value(v) => {
                    std::hint::black_box(v.touch());
                    seq += 1;
                    block = false;
                }
                Got::Empty => {
                    sink.store(seq, Ordering::Release);
                    block = true;
                }
                Got::Closed => return,
            }
        }
    })
}

/// Pushes into an rtrb queue, spinning while it is full.
fn rtrb_push<T: Event>(p: &mut rtrb::Producer<T>, i: u64, burst: u64) {
    if burst == 1 {
        let mut v = T::new(i);
        while let Err(rtrb::PushError::Full(back)) = p.push(v) {
            v = back;
            std::hint::spin_loop();
        }
    } else {
        let chunk = loop {
            match p.write_chunk_uninit(burst as usize) {
                Ok(chunk) => break chunk,
                Err(_) => std::hint::spin_loop(),
            }
        };
        chunk.fill_from_iter((0..burst).map(|k| T::new(i + k)));
    }
}

/// An rtrb consumer thread: pops until the producer is gone, storing `count - 1` into `sink`
/// whenever the queue runs dry.
fn rtrb_consumer<T: Event>(
    core: usize,
    mut c: rtrb::Consumer<T>,
    sink: Arc<AtomicI64>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        pin(core);
        let mut seq = -1i64;
        loop {
            let n = c.slots();
            if n == 0 {
                if sink.load(Ordering::Relaxed) != seq {
                    sink.store(seq, Ordering::Release);
                }
                if c.is_abandoned() && c.is_empty() {
                    return;
                }
                std::hint::spin_loop();
                continue;
            }
            let chunk = c.read_chunk(n).unwrap();
            for v in chunk.into_iter() {
                std::hint::black_box(v.touch());
            }
            seq += n as i64;
        }
    })
}

/// Unicast 1P-1C, for one event type.
fn unicast_for<T: Event>(c: &mut Criterion, name: &str) {
    let cores = cores();
    let consumer_core = 1 % cores;
    println!(
        "{name} on {cores} cores: producer pinned to core 0, consumer to core {consumer_core}; \
         ringmq BusySpin (ringmq_coalesce: the same, with coalesce({COALESCE_MIN}, \
         {COALESCE_DELAY:?})), disruptor BusySpin, rtrb spins, crossbeam-channel bounded and std \
         sync_channel spin then park; {}-byte events",
        std::mem::size_of::<T>()
    );
    let mut group = c.benchmark_group(name);

    // ringmq, with its defaults and with `coalesce` (a consumer that pauses instead of chasing a
    // streaming producer line by line)
    for (name, coalesce) in [("ringmq", false), ("ringmq_coalesce", true)] {
        let (ringmq_sink, s) = sink();
        let mut b = ringmq::Builder::single_producer(RING, T::default, ringmq::BusySpin).unwrap();
        let mut consumer =
            ringmq::Consumer::new("sink", sink_handler::<T>(s)).pin_to_core(consumer_core);
        if coalesce {
            consumer = consumer.coalesce(COALESCE_MIN, COALESCE_DELAY);
        }
        b.add(consumer);
        let (p, queue) = b.build().unwrap();
        measure_bursts(&mut group, name, ringmq_driver(p, vec![ringmq_sink]), 1);
        queue.shutdown().unwrap();
    }

    // disruptor crate
    let (disruptor_sink, s) = sink();
    let p = disruptor::build_single_producer(RING, T::default, disruptor::BusySpin)
        .pin_at_core(consumer_core)
        .handle_events_with(sink_handler::<T>(s))
        .build();
    measure_bursts(
        &mut group,
        "disruptor",
        disruptor_driver(p, vec![disruptor_sink]),
        1,
    );

    // crossbeam-channel (bounded)
    let (cb_sink, s) = sink();
    let (tx, rx) = crossbeam_channel::bounded::<T>(RING);
    let consumer = channel_consumer(Some(consumer_core), s, move |b| Got::crossbeam(&rx, b));
    let driver = send_driver(move |v| tx.send(v).unwrap(), cb_sink);
    measure_bursts(&mut group, "crossbeam_channel", driver, 1);
    consumer.join().unwrap();

    // rtrb (SPSC)
    let (rtrb_sink, s) = sink();
    let (mut tx, rx) = rtrb::RingBuffer::<T>::new(RING);
    let consumer = rtrb_consumer(consumer_core, rx, s);
    let mut next = 0i64;
    let driver = Driver::spawn(move |iters, burst| {
        let start = Instant::now();
        for i in 0..iters {
            rtrb_push(&mut tx, i, burst);
            next += burst as i64;
        }
        await_sink(&rtrb_sink, next - 1);
        start.elapsed()
    });
    measure_bursts(&mut group, "rtrb", driver, 1);
    consumer.join().unwrap();

    // std::sync::mpsc::sync_channel
    let (std_sink, s) = sink();
    let (tx, rx) = mpsc::sync_channel::<T>(RING);
    let consumer = channel_consumer(Some(consumer_core), s, move |b| Got::std(&rx, b));
    let driver = send_driver(move |v| tx.send(v).unwrap(), std_sink);
    measure_bursts(&mut group, "std_sync_channel", driver, 1);
    consumer.join().unwrap();

    group.finish();
}

fn unicast(c: &mut Criterion) {
    unicast_for::<u64>(c, "unicast_1p1c");
    unicast_for::<Line>(c, "unicast_1p1c_64b");
}

/// `n` producer threads that each run a job per measurement, and report when done.
struct Crew {
    jobs: Vec<mpsc::Sender<(u64, u64)>>,
    done: mpsc::Receiver<()>,
    threads: Vec<JoinHandle<()>>,
}

impl Crew {
    fn spawn(publishers: Vec<Box<dyn FnMut(u64, u64) + Send>>) -> Self {
        let (done_tx, done) = mpsc::channel();
        let mut jobs = Vec::new();
        let mut threads = Vec::new();
        for mut publish in publishers {
            let (tx, rx) = mpsc::channel::<(u64, u64)>();
            let done_tx = done_tx.clone();
            jobs.push(tx);
            threads.push(std::thread::spawn(move || {
                for (iters, burst) in rx {
                    publish(iters, burst);
                    done_tx.send(()).unwrap();
                }
            }));
        }
        Self {
            jobs,
            done,
            threads,
        }
    }

    /// Runs one job on every producer and waits for all of them.
    fn run(&self, iters: u64, burst: u64) {
        for j in &self.jobs {
            j.send((iters, burst)).unwrap();
        }
        for _ in &self.jobs {
            self.done.recv().unwrap();
        }
    }
}

impl Drop for Crew {
    fn drop(&mut self) {
        self.jobs.clear();
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}

/// `producers` threads that each send every value of a burst on its own (channels have no batch).
/// The crew owns clones of `send`; the original is dropped here, so dropping the crew closes the
/// channel.
fn sending_crew(send: impl FnMut(u64) + Clone + Send + 'static, producers: u64) -> Crew {
    Crew::spawn(
        (0..producers)
            .map(|_| {
                let mut send = send.clone();
                Box::new(move |iters, burst| {
                    for i in 0..iters {
                        for k in 0..burst {
                            send(i + k);
                        }
                    }
                }) as Box<dyn FnMut(u64, u64) + Send>
            })
            .collect(),
    )
}

/// Three producers, each publishing `iters` bursts, then waiting for the consumer's sink.
fn crew_driver(crew: Crew, sink: Arc<AtomicI64>, producers: u64) -> Driver {
    let mut next = 0i64;
    Driver::spawn(move |iters, burst| {
        let start = Instant::now();
        crew.run(iters, burst);
        next += (iters * burst * producers) as i64;
        await_sink(&sink, next - 1);
        start.elapsed()
    })
}

/// Sequencer 3P-1C: three producer threads and a consumer on two cores, so every side yields.
fn sequencer(c: &mut Criterion) {
    const P: u64 = 3;
    println!(
        "sequencer_3p1c on {} cores: 3 producers and 1 consumer unpinned; ringmq Yielding, \
         disruptor a yielding WaitStrategy (its producers spin on a full ring), crossbeam-channel \
         and std sync_channel spin then park",
        cores()
    );
    let mut group = c.benchmark_group("sequencer_3p1c");

    let (ringmq_sink, s) = sink();
    let mut b = ringmq::Builder::multi_producer(RING, u64::default, ringmq::Yielding).unwrap();
    b.add(ringmq::Consumer::new("sink", sink_handler::<u64>(s)));
    let (p, queue) = b.build().unwrap();
    let crew = Crew::spawn(
        (0..P)
            .map(|_| {
                let mut p = p.clone();
                Box::new(move |iters, burst| {
                    for i in 0..iters {
                        ringmq_burst(&mut p, i, burst);
                    }
                }) as Box<dyn FnMut(u64, u64) + Send>
            })
            .collect(),
    );
    drop(p);
    measure_bursts(&mut group, "ringmq", crew_driver(crew, ringmq_sink, P), P);
    queue.shutdown().unwrap();

    let (disruptor_sink, s) = sink();
    let p = disruptor::build_multi_producer(RING, u64::default, DisruptorYield)
        .handle_events_with(sink_handler::<u64>(s))
        .build();
    let crew = Crew::spawn(
        (0..P)
            .map(|_| {
                let mut p = p.clone();
                Box::new(move |iters, burst| {
                    for i in 0..iters {
                        disruptor_burst(&mut p, i, burst);
                    }
                }) as Box<dyn FnMut(u64, u64) + Send>
            })
            .collect(),
    );
    let driver = crew_driver(crew, disruptor_sink, P);
    measure_bursts(&mut group, "disruptor", driver, P);
    drop(p);

    let (cb_sink, s) = sink();
    let (tx, rx) = crossbeam_channel::bounded::<u64>(RING);
    let consumer = channel_consumer(None, s, move |b| Got::crossbeam(&rx, b));
    let crew = sending_crew(move |v| tx.send(v).unwrap(), P);
    measure_bursts(
        &mut group,
        "crossbeam_channel",
        crew_driver(crew, cb_sink, P),
        P,
    );
    consumer.join().unwrap();

    let (std_sink, s) = sink();
    let (tx, rx) = mpsc::sync_channel::<u64>(RING);
    let consumer = channel_consumer(None, s, move |b| Got::std(&rx, b));
    let crew = sending_crew(move |v| tx.send(v).unwrap(), P);
    measure_bursts(
        &mut group,
        "std_sync_channel",
        crew_driver(crew, std_sink, P),
        P,
    );
    consumer.join().unwrap();

    group.finish();
}

/// The 1P-3C shapes of the LMAX suite.
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    /// Three consumers each see every event.
    Multicast,
    /// A chain of three consumers.
    Pipeline,
    /// Two consumers in parallel, a third after both.
    Diamond,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Multicast => "multicast_1p3c",
            Shape::Pipeline => "pipeline_1p3c",
            Shape::Diamond => "diamond_1p3c",
        }
    }
}

/// 1P-3C graphs: four threads on two cores, so every side sleeps between looks instead of
/// spinning: ringmq `Sleeping` (spin, yield, then sleep 50 µs) and the disruptor crate's `Sleep`
/// (sleep 50 µs). crossbeam-channel has no multicast or stage graph and is not in these groups.
fn graphs(c: &mut Criterion) {
    const NAP: Duration = Duration::from_micros(50);
    for shape in [Shape::Multicast, Shape::Pipeline, Shape::Diamond] {
        println!(
            "{} on {} cores: producer on core 0, consumers unpinned; ringmq Sleeping::immediate(50us), \
             disruptor Sleep(50us) (both sleep as soon as a look finds nothing)",
            shape.name(),
            cores()
        );
        let mut group = c.benchmark_group(shape.name());

        // ringmq: the sinks are the consumers nothing depends on.
        let sinks: Vec<Arc<AtomicI64>> = (0..3).map(|_| Arc::new(AtomicI64::new(-1))).collect();
        let mut b =
            ringmq::Builder::single_producer(RING, || 0u64, ringmq::Sleeping::immediate(NAP))
                .unwrap();
        let new = |i: usize| {
            ringmq::Consumer::new(format!("c{i}"), sink_handler::<u64>(sinks[i].clone()))
        };
        let last: Vec<Arc<AtomicI64>> = match shape {
            Shape::Multicast => {
                for i in 0..3 {
                    b.add(new(i));
                }
                sinks.clone()
            }
            Shape::Pipeline => {
                let a = b.add(new(0));
                let m = b.add_after(&[a], new(1)).unwrap();
                b.add_after(&[m], new(2)).unwrap();
                vec![sinks[2].clone()]
            }
            Shape::Diamond => {
                let l = b.add(new(0));
                let r = b.add(new(1));
                b.add_after(&[l, r], new(2)).unwrap();
                vec![sinks[2].clone()]
            }
        };
        let (p, queue) = b.build().unwrap();
        measure_bursts(&mut group, "ringmq", ringmq_driver(p, last), 1);
        queue.shutdown().unwrap();

        // disruptor crate
        let sinks: Vec<Arc<AtomicI64>> = (0..3).map(|_| Arc::new(AtomicI64::new(-1))).collect();
        let h = |i: usize| sink_handler::<u64>(sinks[i].clone());
        let base = disruptor::build_single_producer(RING, || 0u64, disruptor::Sleep::new(NAP));
        let driver = match shape {
            Shape::Multicast => disruptor_driver(
                base.handle_events_with(h(0))
                    .handle_events_with(h(1))
                    .handle_events_with(h(2))
                    .build(),
                sinks.clone(),
            ),
            Shape::Pipeline => disruptor_driver(
                base.handle_events_with(h(0))
                    .and_then()
                    .handle_events_with(h(1))
                    .and_then()
                    .handle_events_with(h(2))
                    .build(),
                vec![sinks[2].clone()],
            ),
            Shape::Diamond => disruptor_driver(
                base.handle_events_with(h(0))
                    .handle_events_with(h(1))
                    .and_then()
                    .handle_events_with(h(2))
                    .build(),
                vec![sinks[2].clone()],
            ),
        };
        measure_bursts(&mut group, "disruptor", driver, 1);
        group.finish();
    }
}

/// Work pool 1P-2W: each event to one of two workers. Three threads on two cores: ringmq
/// `Yielding`; crossbeam-channel's receivers spin, then park. The disruptor crate has no pool.
fn workpool(c: &mut Criterion) {
    println!(
        "workpool_1p2w on {} cores: producer on core 0, 2 workers unpinned; ringmq WorkPool \
         (batch 16) Yielding, crossbeam-channel bounded MPMC with 2 receivers",
        cores()
    );
    let mut group = c.benchmark_group("workpool_1p2w");

    let mut b = ringmq::Builder::single_producer(RING, || 0u64, ringmq::Yielding).unwrap();
    let pool = b
        .add_pool(
            &[],
            ringmq::WorkPool::new("pool", 2, |i| {
                ringmq::Consumer::new(format!("w{i}"), |v: &u64, _, _| {
                    std::hint::black_box(*v);
                })
            }),
        )
        .unwrap();
    let (mut p, queue) = b.build().unwrap();
    // The pool's tracker: the pool as a whole has handled everything up to a sequence.
    let done = queue.tracker(pool).unwrap();
    let driver = Driver::spawn(move |iters, burst| {
        let start = Instant::now();
        let mut seq = -1;
        for i in 0..iters {
            seq = ringmq_burst(&mut p, i, burst);
        }
        done.wait_processed(seq, Duration::from_secs(60)).unwrap();
        start.elapsed()
    });
    measure_bursts(&mut group, "ringmq", driver, 1);
    queue.shutdown().unwrap();

    // crossbeam: each receiver counts into its own cache line when it finds the channel empty.
    let (tx, rx) = crossbeam_channel::bounded::<u64>(RING);
    let counts: Vec<Arc<CachePadded<AtomicU64>>> = (0..2)
        .map(|_| Arc::new(CachePadded::new(AtomicU64::new(0))))
        .collect();
    let workers: Vec<JoinHandle<()>> = counts
        .iter()
        .map(|count| {
            let (rx, count) = (rx.clone(), count.clone());
            std::thread::spawn(move || {
                // Publishes its count whenever it finds the channel empty, before blocking: a
                // worker that took the last value, or whose values another took, always does.
                let mut n = 0;
                let mut block = false;
                loop {
                    match Got::crossbeam(&rx, block) {
                        Got::Value(v) => {
                            std::hint::black_box(v);
                            n += 1;
                            block = false;
                        }
                        Got::Empty => {
                            count.store(n, Ordering::Release);
                            block = true;
                        }
                        Got::Closed => return,
                    }
                }
            })
        })
        .collect();
    drop(rx);
    let mut next = 0u64;
    let driver = Driver::spawn(move |iters, burst| {
        let start = Instant::now();
        for i in 0..iters {
            for k in 0..burst {
                tx.send(i + k).unwrap();
            }
        }
        next += iters * burst;
        let backoff = Backoff::new();
        while counts
            .iter()
            .map(|c| c.load(Ordering::Acquire))
            .sum::<u64>()
            < next
        {
            backoff.snooze();
            assert!(start.elapsed() < Duration::from_secs(60), "workers stalled");
        }
        start.elapsed()
    });
    measure_bursts(&mut group, "crossbeam_channel", driver, 1);
    for w in workers {
        w.join().unwrap();
    }
    group.finish();
}

/// Poller 1P-1C: the consumer is a thread of ours that polls in a loop. Both busy-poll.
fn poller(c: &mut Criterion) {
    let consumer_core = 1 % cores();
    println!(
        "poller_1p1c on {} cores: producer pinned to core 0, polling thread to core {consumer_core}; \
         all sides busy-poll: ringmq Poller, disruptor EventPoller, rtrb read_chunk",
        cores()
    );
    let mut group = c.benchmark_group("poller_1p1c");

    let (ringmq_sink, s) = sink();
    let mut b = ringmq::Builder::single_producer(RING, || 0u64, ringmq::BusySpin).unwrap();
    let id = b.add_poller(&[]).unwrap();
    let (p, queue) = b.build().unwrap();
    let mut poller = id;
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let consumer = std::thread::spawn(move || {
        pin(consumer_core);
        let mut handle = sink_handler::<u64>(s);
        while !st.load(Ordering::Relaxed) {
            poller.poll(|v, seq, eob| {
                handle(v, seq, eob);
                true
            });
        }
    });
    measure_bursts(&mut group, "ringmq", ringmq_driver(p, vec![ringmq_sink]), 1);
    stop.store(true, Ordering::Relaxed);
    consumer.join().unwrap();
    queue.shutdown().unwrap();

    let (disruptor_sink, s) = sink();
    let (mut event_poller, builder) =
        disruptor::build_single_producer(RING, || 0u64, disruptor::BusySpin).new_event_poller();
    let p = builder.build();
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let consumer = std::thread::spawn(move || {
        pin(consumer_core);
        let mut seq = -1i64;
        while !st.load(Ordering::Relaxed) {
            if let Ok(mut events) = event_poller.poll() {
                for v in &mut events {
                    std::hint::black_box(*v);
                    seq += 1;
                }
                drop(events);
                s.store(seq, Ordering::Release);
            }
        }
    });
    measure_bursts(
        &mut group,
        "disruptor",
        disruptor_driver(p, vec![disruptor_sink]),
        1,
    );
    stop.store(true, Ordering::Relaxed);
    consumer.join().unwrap();

    let (rtrb_sink, s) = sink();
    let (mut tx, rx) = rtrb::RingBuffer::<u64>::new(RING);
    let consumer = rtrb_consumer(consumer_core, rx, s);
    let mut next = 0i64;
    let driver = Driver::spawn(move |iters, burst| {
        let start = Instant::now();
        for i in 0..iters {
            rtrb_push(&mut tx, i, burst);
            next += burst as i64;
        }
        await_sink(&rtrb_sink, next - 1);
        start.elapsed()
    });
    measure_bursts(&mut group, "rtrb", driver, 1);
    consumer.join().unwrap();
    group.finish();
}

/// A round trip through two channels: the driver `send`s `i` and waits for `back`; an echo
/// thread (pinned to `echo_core`) runs `echo` (forward one value; `false` once the driver's
/// sender is gone) until it returns `false`. Stopping the driver ends the echo thread.
fn channel_rtt(
    echo_core: usize,
    mut send: impl FnMut(u64) + Send + 'static,
    mut back: impl FnMut() -> u64 + Send + 'static,
    mut echo: impl FnMut() -> bool + Send + 'static,
) -> (Driver, JoinHandle<()>) {
    let echo = std::thread::spawn(move || {
        pin(echo_core);
        while echo() {}
    });
    let driver = Driver::spawn(move |iters, _| {
        let start = Instant::now();
        for i in 0..iters {
            send(i);
            assert_eq!(back(), i);
        }
        start.elapsed()
    });
    (driver, echo)
}

/// One round trip per iteration: the driver (core 0) sends `i` one way, an echo thread (core 1)
/// sends it back the other way, the driver waits for it. Both busy-wait everywhere except the
/// channels, which spin then park.
fn pingpong(c: &mut Criterion) {
    let echo_core = 1 % cores();
    println!(
        "pingpong_rtt on {} cores: driver pinned to core 0, echo to core {echo_core}; \
         cache_line is the hardware floor (two threads handing one cache line back and forth); \
         ringmq and disruptor: the echo is a BusySpin consumer of ring A publishing into ring B, \
         which the driver busy-polls; rtrb spins; channels spin then park",
        cores()
    );
    let mut group = c.benchmark_group("pingpong_rtt");
    let rtt = |group: &mut Group<'_>, name: &str, driver: Driver| {
        group.bench_function(name, |b| b.iter_custom(|iters| driver.measure(iters, 1)));
        driver.stop();
    };

    // The floor: ping writes i into one cache line, pong copies it into another.
    let ping = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let pong = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let (pi, po) = (ping.clone(), pong.clone());
    let echo = std::thread::spawn(move || {
        pin(echo_core);
        let mut last = 0;
        loop {
            let v = pi.load(Ordering::Acquire);
            if v == u64::MAX {
                return;
            }
            if v != last {
                last = v;
                po.store(v, Ordering::Release);
            }
            std::hint::spin_loop();
        }
    });
    let mut n = 0u64;
    let (pi, po) = (ping.clone(), pong.clone());
    let driver = Driver::spawn(move |iters, _| {
        let start = Instant::now();
        for _ in 0..iters {
            n += 1;
            pi.store(n, Ordering::Release);
            while po.load(Ordering::Acquire) != n {
                std::hint::spin_loop();
            }
        }
        start.elapsed()
    });
    rtt(&mut group, "cache_line", driver);
    ping.store(u64::MAX, Ordering::Release);
    echo.join().unwrap();

    // ringmq: echo consumer on ring A publishes into ring B; the driver polls B.
    let mut b_ring = ringmq::Builder::single_producer(1024, || 0u64, ringmq::BusySpin).unwrap();
    let back_id = b_ring.add_poller(&[]).unwrap();
    let (mut back_tx, back) = b_ring.build().unwrap();
    let mut back_rx = back_id;
    let mut a_ring = ringmq::Builder::single_producer(1024, || 0u64, ringmq::BusySpin).unwrap();
    a_ring.add(
        ringmq::Consumer::new("echo", move |v: &u64, _, _| {
            back_tx.publish(|slot| *slot = *v).unwrap();
        })
        .pin_to_core(echo_core),
    );
    let (mut out_tx, out) = a_ring.build().unwrap();
    let driver = Driver::spawn(move |iters, _| {
        let start = Instant::now();
        for i in 0..iters {
            out_tx.publish(|slot| *slot = i).unwrap();
            let mut got = false;
            while !got {
                back_rx.poll(|v, _, _| {
                    got = *v == i;
                    true
                });
            }
        }
        start.elapsed()
    });
    rtt(&mut group, "ringmq", driver);
    out.shutdown().unwrap();
    back.shutdown().unwrap();

    // disruptor crate: the same shape with its EventPoller.
    let (mut back_rx, builder) =
        disruptor::build_single_producer(1024, || 0u64, disruptor::BusySpin).new_event_poller();
    let mut back_tx = builder.build();
    let out_tx = disruptor::build_single_producer(1024, || 0u64, disruptor::BusySpin)
        .pin_at_core(echo_core)
        .handle_events_with(move |v: &u64, _, _| {
            disruptor::Producer::publish(&mut back_tx, |slot| *slot = *v);
        })
        .build();
    let mut out_tx = out_tx;
    let driver = Driver::spawn(move |iters, _| {
        let start = Instant::now();
        for i in 0..iters {
            disruptor::Producer::publish(&mut out_tx, |slot| *slot = i);
            let mut got = false;
            while !got {
                if let Ok(mut events) = back_rx.poll() {
                    for v in &mut events {
                        got = *v == i;
                    }
                }
            }
        }
        start.elapsed()
    });
    rtt(&mut group, "disruptor", driver);

    // rtrb: two SPSC rings.
    let (mut a_tx, mut a_rx) = rtrb::RingBuffer::<u64>::new(1024);
    let (mut b_tx, mut b_rx) = rtrb::RingBuffer::<u64>::new(1024);
    let echo = std::thread::spawn(move || {
        pin(echo_core);
        loop {
            match a_rx.pop() {
                Ok(v) => while b_tx.push(v).is_err() {},
                Err(_) if a_rx.is_abandoned() => return,
                Err(_) => std::hint::spin_loop(),
            }
        }
    });
    let driver = Driver::spawn(move |iters, _| {
        let start = Instant::now();
        for i in 0..iters {
            a_tx.push(i).unwrap();
            loop {
                if let Ok(v) = b_rx.pop() {
                    assert_eq!(v, i);
                    break;
                }
                std::hint::spin_loop();
            }
        }
        start.elapsed()
    });
    rtt(&mut group, "rtrb", driver);
    echo.join().unwrap();

    // crossbeam-channel and std sync_channel: blocking receives (they spin, then park).
    let (a_tx, a_rx) = crossbeam_channel::bounded::<u64>(1024);
    let (b_tx, b_rx) = crossbeam_channel::bounded::<u64>(1024);
    let (driver, echo) = channel_rtt(
        echo_core,
        move |v| a_tx.send(v).unwrap(),
        move || b_rx.recv().unwrap(),
        move || a_rx.recv().map(|v| b_tx.send(v).unwrap()).is_ok(),
    );
    rtt(&mut group, "crossbeam_channel", driver);
    echo.join().unwrap();

    let (a_tx, a_rx) = mpsc::sync_channel::<u64>(1024);
    let (b_tx, b_rx) = mpsc::sync_channel::<u64>(1024);
    let (driver, echo) = channel_rtt(
        echo_core,
        move |v| a_tx.send(v).unwrap(),
        move || b_rx.recv().unwrap(),
        move || a_rx.recv().map(|v| b_tx.send(v).unwrap()).is_ok(),
    );
    rtt(&mut group, "std_sync_channel", driver);
    echo.join().unwrap();

    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(20);
    targets = unicast, sequencer, graphs, workpool, poller, pingpong
}
criterion_main!(benches);
