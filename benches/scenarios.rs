//! The LMAX scenarios, ringmq beside its peers in one criterion group per scenario, so each ratio
//! comes from one run on one machine.
//!
//! Throughput method: one criterion iteration publishes one burst; a measurement publishes
//! `iters` bursts and then waits until the consumer's sink holds the *last sequence of this
//! measurement* (sequence-tagged, so a sink left over from an earlier measurement never counts).
//!
//! Threads: the benchmark thread is the producer, pinned to core 0; consumers are pinned to core 1.
//! With one consumer on two cores every side busy-spins.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use disruptor::ProcessorSettings;

const RING: usize = 1 << 16;
const BURSTS: [u64; 3] = [1, 10, 100];

fn pin(core: usize) {
    if let Some(id) = core_affinity::get_core_ids().and_then(|c| c.get(core).copied()) {
        core_affinity::set_for_current(id);
    }
}

/// The machine's cores (not this thread's affinity mask, which `pin` narrows to one).
fn cores() -> usize {
    core_affinity::get_core_ids().map_or(1, |c| c.len())
}

/// Spins until `sink` reaches `target` (bounded: a lost event fails the benchmark).
fn await_sink(sink: &AtomicI64, target: i64) {
    let start = Instant::now();
    while sink.load(Ordering::Acquire) < target {
        std::hint::spin_loop();
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "consumer stalled"
        );
    }
}

/// A sink a consumer stores the sequence of its last event into, at the end of each batch.
fn sink() -> (Arc<AtomicI64>, Arc<AtomicI64>) {
    let s = Arc::new(AtomicI64::new(-1));
    (s.clone(), s)
}

/// The producer side of one implementation, on its own thread pinned to core 0. Each side is
/// built, measured and torn down before the next one starts, so no idle spinning consumer of
/// another implementation shares a core with the one being measured.
struct Driver {
    tx: mpsc::Sender<(u64, u64)>,
    rx: mpsc::Receiver<Duration>,
    thread: std::thread::JoinHandle<()>,
}

impl Driver {
    /// `run(iters, burst)` publishes `iters` bursts, waits for the last event, returns the time.
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

    /// Ends the thread, dropping its producer (which closes the queue).
    fn stop(self) {
        drop(self.tx);
        self.thread.join().unwrap();
    }
}

fn measure_bursts(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    driver: Driver,
) {
    for burst in BURSTS {
        group.throughput(Throughput::Elements(burst));
        group.bench_function(BenchmarkId::new(name, burst), |b| {
            b.iter_custom(|iters| driver.measure(iters, burst))
        });
    }
    driver.stop();
}

fn unicast(c: &mut Criterion) {
    let cores = cores();
    let consumer_core = 1 % cores;
    println!(
        "unicast 1P-1C on {cores} cores: producer pinned to core 0, consumer to core {consumer_core}; \
         ringmq BusySpin, disruptor BusySpin, crossbeam-channel bounded (spins, then parks)"
    );
    let mut group = c.benchmark_group("unicast_1p1c");

    // ringmq
    let (ringmq_sink, s) = sink();
    let mut b = ringmq::Builder::single_producer(RING, || 0u64, ringmq::BusySpin).unwrap();
    b.add(
        ringmq::Consumer::new("sink", move |v: &u64, seq, eob| {
            std::hint::black_box(v);
            if eob {
                s.store(seq, Ordering::Release);
            }
        })
        .pin_to_core(consumer_core),
    )
    .unwrap();
    let (p, queue) = b.build().unwrap();
    let driver = ringmq_driver(p, vec![ringmq_sink]);
    measure_bursts(&mut group, "ringmq", driver);
    queue.shutdown().unwrap();

    // disruptor crate
    let (disruptor_sink, s) = sink();
    let p = disruptor::build_single_producer(RING, || 0u64, disruptor::BusySpin)
        .pin_at_core(consumer_core)
        .handle_events_with(move |v: &u64, seq: i64, eob: bool| {
            std::hint::black_box(v);
            if eob {
                s.store(seq, Ordering::Release);
            }
        })
        .build();
    let driver = disruptor_driver(p, vec![disruptor_sink]);
    measure_bursts(&mut group, "disruptor", driver);

    // crossbeam-channel (bounded)
    let (crossbeam_sink, s) = sink();
    let (tx, rx) = crossbeam_channel::bounded::<u64>(RING);
    let consumer = std::thread::spawn(move || {
        pin(consumer_core);
        let mut seq = -1i64;
        while let Ok(v) = rx.recv() {
            std::hint::black_box(v);
            seq += 1;
            if rx.is_empty() {
                s.store(seq, Ordering::Release);
            }
        }
    });
    let mut next = 0i64;
    let driver = Driver::spawn(move |iters, burst| {
        let start = Instant::now();
        for i in 0..iters {
            for k in 0..burst {
                tx.send(i + k).unwrap();
            }
            next += burst as i64;
        }
        await_sink(&crossbeam_sink, next - 1);
        start.elapsed()
    });
    measure_bursts(&mut group, "crossbeam_channel", driver);
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

/// A consumer that stores its sequence into `sink` at the end of each batch.
fn sink_handler(sink: Arc<AtomicI64>) -> impl FnMut(&u64, i64, bool) + Send + 'static {
    move |v: &u64, seq: i64, eob: bool| {
        std::hint::black_box(v);
        if eob {
            sink.store(seq, Ordering::Release);
        }
    }
}

/// Waits until every sink reaches `target`.
fn await_sinks(sinks: &[Arc<AtomicI64>], target: i64) {
    for s in sinks {
        await_sink(s, target);
    }
}

/// Drives a ringmq producer: `iters` bursts (single publishes for a burst of 1), then waits for
/// every sink in `last`.
fn ringmq_driver<S, W>(mut p: ringmq::Producer<u64, S, W>, last: Vec<Arc<AtomicI64>>) -> Driver
where
    S: ringmq::Sequencer,
    W: ringmq::WaitStrategy,
{
    Driver::spawn(move |iters, burst| {
        let start = Instant::now();
        let mut seq = -1;
        for i in 0..iters {
            seq = if burst == 1 {
                p.publish(|v| *v = i).unwrap()
            } else {
                let seqs = p.publish_batch(burst as usize, |v, k| *v = i + k as u64);
                seqs.unwrap().end - 1
            };
        }
        await_sinks(&last, seq);
        start.elapsed()
    })
}

/// Drives a disruptor-crate producer: `iters` bursts, then waits for every sink in `last`.
fn disruptor_driver<P>(mut p: P, last: Vec<Arc<AtomicI64>>) -> Driver
where
    P: disruptor::Producer<u64> + Send + 'static,
{
    let mut next = 0i64;
    Driver::spawn(move |iters, burst| {
        let start = Instant::now();
        for i in 0..iters {
            if burst == 1 {
                p.publish(|v| *v = i);
            } else {
                p.batch_publish(burst as usize, |it| {
                    for (k, v) in it.enumerate() {
                        *v = i + k as u64;
                    }
                });
            }
            next += burst as i64;
        }
        await_sinks(&last, next - 1);
        start.elapsed()
    })
}

/// 1P-3C graphs: four threads on two cores, so every side sleeps between looks instead of
/// spinning: ringmq `Sleeping` (spin, yield, then sleep 50 µs) and the disruptor crate's `Sleep`
/// (sleep 50 µs). crossbeam-channel has no multicast or stage graph and is not in these groups.
fn graphs(c: &mut Criterion) {
    const NAP: Duration = Duration::from_micros(50);
    for shape in [Shape::Multicast, Shape::Pipeline, Shape::Diamond] {
        println!(
            "{} on {} cores: producer on core 0, consumers unpinned; ringmq Sleeping(50us), disruptor Sleep(50us)",
            shape.name(),
            cores()
        );
        let mut group = c.benchmark_group(shape.name());

        // ringmq: the sinks are the consumers nothing depends on.
        let sinks: Vec<Arc<AtomicI64>> = (0..3).map(|_| Arc::new(AtomicI64::new(-1))).collect();
        let mut b =
            ringmq::Builder::single_producer(RING, || 0u64, ringmq::Sleeping::new(NAP)).unwrap();
        let new = |i: usize| ringmq::Consumer::new(format!("c{i}"), sink_handler(sinks[i].clone()));
        let last: Vec<Arc<AtomicI64>> = match shape {
            Shape::Multicast => {
                for i in 0..3 {
                    b.add(new(i)).unwrap();
                }
                sinks.clone()
            }
            Shape::Pipeline => {
                let a = b.add(new(0)).unwrap();
                let m = b.add_after(&[a], new(1)).unwrap();
                b.add_after(&[m], new(2)).unwrap();
                vec![sinks[2].clone()]
            }
            Shape::Diamond => {
                let l = b.add(new(0)).unwrap();
                let r = b.add(new(1)).unwrap();
                b.add_after(&[l, r], new(2)).unwrap();
                vec![sinks[2].clone()]
            }
        };
        let (p, queue) = b.build().unwrap();
        let driver = ringmq_driver(p, last);
        measure_bursts(&mut group, "ringmq", driver);
        queue.shutdown().unwrap();

        // disruptor crate
        let sinks: Vec<Arc<AtomicI64>> = (0..3).map(|_| Arc::new(AtomicI64::new(-1))).collect();
        let base = disruptor::build_single_producer(RING, || 0u64, disruptor::Sleep::new(NAP));
        let driver = match shape {
            Shape::Multicast => disruptor_driver(
                base.handle_events_with(sink_handler(sinks[0].clone()))
                    .handle_events_with(sink_handler(sinks[1].clone()))
                    .handle_events_with(sink_handler(sinks[2].clone()))
                    .build(),
                sinks.clone(),
            ),
            Shape::Pipeline => disruptor_driver(
                base.handle_events_with(sink_handler(sinks[0].clone()))
                    .and_then()
                    .handle_events_with(sink_handler(sinks[1].clone()))
                    .and_then()
                    .handle_events_with(sink_handler(sinks[2].clone()))
                    .build(),
                vec![sinks[2].clone()],
            ),
            Shape::Diamond => disruptor_driver(
                base.handle_events_with(sink_handler(sinks[0].clone()))
                    .handle_events_with(sink_handler(sinks[1].clone()))
                    .and_then()
                    .handle_events_with(sink_handler(sinks[2].clone()))
                    .build(),
                vec![sinks[2].clone()],
            ),
        };
        measure_bursts(&mut group, "disruptor", driver);
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2)).sample_size(20);
    targets = unicast, graphs
}
criterion_main!(benches);
