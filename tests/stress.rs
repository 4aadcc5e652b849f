//! Randomized stress: random topologies, capacities, wait strategies and batch sizes, with every
//! consumer checking every event.
//!
//! Each scenario draws: 1 to 4 producers (single- or multi-producer sequencer), a layered consumer
//! graph (1 to 3 layers of 1 to 3 consumers, each depending on the whole layer before it:
//! multicast, pipelines and diamonds), single-consumer layers made exclusive at random (they stamp
//! the event for the layers after them), a capacity from 1 to 1024, a wait strategy, publish batch
//! sizes and consumer `max_batch`. Every consumer checks, per event: the sequence is the next one
//! (no loss, no duplicate, total order), the payload is intact, each producer's numbers arrive in
//! order, and every exclusive upstream layer's stamp is there.
//!
//! Layers of two or more consumers are drawn as a work pool instead (its workers exclusive at
//! random, a pool batch from 1 to 16): the pool's workers share one bitmap and every event must be
//! handled exactly once across them, in increasing order within each worker. And while the
//! producers run, the test thread may churn the graph: it adds a consumer, a pool or a poller
//! after a random stage, lets it work for a while, and removes it (drops the poller), checking
//! that what it saw starts at its join point, has no gap or duplicate, and was never overwritten.
//!
//! In some scenarios the producers publish through the async edge (`publish_async`,
//! `publish_batch_async` under futures' `block_on`), whatever the wait strategy: with
//! `Blocking` their tasks sleep until a consumer's batch wakes them, with the others they re-poll.
//!
//! `RINGMQ_STRESS_SEED` replays a run (the seed is printed); `RINGMQ_STRESS_EVENTS` sets the total
//! event budget (default: 10 million in release builds, 300 thousand in debug, 2 thousand under
//! miri). Run it in release: `cargo test --release --test stress -- --nocapture`.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use common::with_timeout;
use ringmq::{
    Blocking, Builder, BusySpin, Consumer, EventHandler, Hook, PanicPolicy, PollState, PollingWait,
    Sleeping, StageId, WaitStrategy, WorkPool, Yielding,
};

/// splitmix64: a small, good-enough generator, so a seed replays a run exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const LAYERS: usize = 3;

#[derive(Clone, Copy, Default)]
struct Ev {
    producer: u32,
    n: u64,
    check: u64,
    stamps: [u64; LAYERS],
}

fn checksum(producer: u32, n: u64) -> u64 {
    (n ^ 0xA5A5_5A5A).wrapping_mul(0x2545_F491_4F6C_DD1D) ^ ((producer as u64) << 56)
}

fn stamp(e: &Ev, layer: usize) -> u64 {
    e.check.rotate_left(layer as u32 + 1)
}

#[derive(Clone)]
struct Scenario {
    producers: u32,
    multi: bool,
    capacity: usize,
    layers: Vec<usize>,
    exclusive: Vec<bool>,
    /// `Some(batch)`: this layer is one work pool of `layers[i]` workers claiming up to `batch`.
    pools: Vec<Option<usize>>,
    /// Add and remove consumers, pools and pollers while the producers run.
    churn: bool,
    /// Seeds the churn's own choices (how many rounds run depends on timing, so they must not
    /// draw from the scenario generator).
    churn_seed: u64,
    wait: u8,
    publish_batch: usize,
    max_batch: Option<usize>,
    per_producer: u64,
    /// A planted handler panic in the first consumer of one shared, non-pool layer.
    fault: Option<Fault>,
    /// The producers publish through the async edge (`publish_async`,
    /// `publish_batch_async`), each driven by futures' `block_on` on its thread.
    async_producers: bool,
}

/// Where a planted panic goes and what its consumer does after it. The healthy consumers must
/// still verify every event; the faulty one loses only what its policy says.
#[derive(Debug, Clone, Copy)]
struct Fault {
    layer: usize,
    hook: Hook,
    policy: PanicPolicy,
    /// For `on_event`, the sequence that panics; for the other hooks, the first call once the
    /// consumer is past this sequence panics (for `on_timeout`, if it ever idles).
    at: i64,
}

impl Scenario {
    fn draw(rng: &mut Rng, budget: u64) -> Self {
        let producers = 1 + rng.below(4) as u32;
        let multi = producers > 1 || rng.chance(50);
        let capacity = [1, 2, 4, 8, 64, 1024][rng.below(6) as usize];
        let layers: Vec<usize> = (0..1 + rng.below(LAYERS as u64))
            .map(|_| 1 + rng.below(3) as usize)
            .collect();
        let pools: Vec<Option<usize>> = layers
            .iter()
            .map(|&n| (n > 1 && rng.chance(40)).then(|| 1 + rng.below(16) as usize))
            .collect();
        // A single consumer or a whole pool may write (a pool is one stage); parallel consumers not.
        let exclusive: Vec<bool> = layers
            .iter()
            .zip(&pools)
            .map(|(&n, pool)| (n == 1 || pool.is_some()) && rng.chance(50))
            .collect();
        let consumers: usize = layers.iter().sum();
        // Busy-spinning only where every thread has a core: one producer, one consumer.
        let wait = if producers == 1 && consumers == 1 {
            rng.below(4) as u8
        } else {
            1 + rng.below(3) as u8
        };
        let churn = wait != 0 && rng.chance(40);
        let churn_seed = rng.next();
        let publish_batch = 1 + rng.below(capacity.min(8) as u64) as usize;
        let max_batch = rng.chance(30).then(|| 1 + rng.below(16) as usize);
        let per_producer = (budget / producers as u64).max(1);
        let fault = rng.chance(35).then(|| {
            let layer = rng.below(layers.len() as u64) as usize;
            let hook = [
                Hook::OnEvent,
                Hook::OnBatchStart,
                Hook::OnTimeout,
                Hook::OnStart,
            ][rng.below(4) as usize];
            let policy = [PanicPolicy::SkipEvent, PanicPolicy::HaltConsumer][rng.below(2) as usize];
            // Early: scenarios are resized after the draw, and may be short.
            let at = rng.below(50) as i64;
            (pools[layer].is_none() && !exclusive[layer]).then_some(Fault {
                layer,
                hook,
                policy,
                at,
            })
        });
        let fault = fault.flatten();
        let async_producers = rng.chance(30);
        Self {
            producers,
            multi,
            capacity,
            layers,
            exclusive,
            pools,
            churn,
            churn_seed,
            wait,
            publish_batch,
            max_batch,
            per_producer,
            fault,
            async_producers,
        }
    }

    fn describe(&self) -> String {
        format!(
            "{}P{} {} cap {} layers {:?} exclusive {:?} pools {:?}{} wait {} batch {} max_batch {:?} x{}{}",
            self.producers,
            if self.async_producers { " async" } else { "" },
            if self.multi { "multi" } else { "single" },
            self.capacity,
            self.layers,
            self.exclusive,
            self.pools,
            if self.churn { " churn" } else { "" },
            ["busy-spin", "yielding", "blocking", "sleeping"][self.wait as usize],
            self.publish_batch,
            self.max_batch,
            self.per_producer,
            self.fault
                .map(|f| format!(" fault L{}.0 {:?} {:?} @{}", f.layer, f.hook, f.policy, f.at))
                .unwrap_or_default()
        )
    }
}

/// What one consumer reports on shutdown: its name and how many events it verified.
type Report = (String, u64);

/// The checking handler.
struct Checker {
    name: String,
    layer: usize,
    exclusive_before: Vec<usize>,
    next_seq: i64,
    next_n: Vec<u64>,
    out: mpsc::Sender<Report>,
    /// The planted panic, until it fires.
    fault: Option<Fault>,
    /// Events verified (a skipped one is not).
    verified: u64,
}

impl Checker {
    /// Panics once in `hook` if this checker carries that fault and is past its point.
    fn fire(&mut self, hook: Hook) {
        if let Some(f) = self.fault {
            if f.hook == hook && (hook == Hook::OnStart || self.next_seq > f.at) {
                self.fault = None;
                panic!("stress: planted panic in {hook}");
            }
        }
    }

    fn check(&mut self, e: &Ev, seq: i64) {
        if let Some(f) = self.fault {
            if f.hook == Hook::OnEvent && seq == f.at {
                self.fault = None;
                // The event is skipped (SkipEvent) or the handler stops (HaltConsumer).
                self.next_seq = seq + 1;
                self.next_n[e.producer as usize] = e.n + 1;
                panic!("stress: planted panic at {seq}");
            }
        }
        assert_eq!(
            seq, self.next_seq,
            "{}: lost, duplicated or reordered sequence",
            self.name
        );
        self.next_seq += 1;
        self.verified += 1;
        assert_eq!(
            e.check,
            checksum(e.producer, e.n),
            "{}: torn payload at {seq}",
            self.name
        );
        let p = e.producer as usize;
        assert_eq!(
            e.n, self.next_n[p],
            "{}: producer {p} out of order at {seq}",
            self.name
        );
        self.next_n[p] += 1;
        for &l in &self.exclusive_before {
            assert_eq!(
                e.stamps[l],
                stamp(e, l),
                "{}: missed layer {l}'s write at {seq}",
                self.name
            );
        }
    }
}

impl EventHandler<Ev> for Checker {
    fn on_event(&mut self, e: &Ev, seq: i64, _: bool) {
        self.check(e, seq);
    }
    fn on_start(&mut self) {
        self.fire(Hook::OnStart);
    }
    fn on_batch_start(&mut self, _: i64, _: i64) {
        self.fire(Hook::OnBatchStart);
    }
    fn on_timeout(&mut self, _: i64) {
        self.fire(Hook::OnTimeout);
    }
    fn on_shutdown(&mut self) {
        let _ = self.out.send((self.name.clone(), self.verified));
    }
}

impl ringmq::ExclusiveHandler<Ev> for Checker {
    fn on_event(&mut self, e: &mut Ev, seq: i64, _: bool) {
        self.check(e, seq);
        e.stamps[self.layer] = stamp(e, self.layer);
    }
    fn on_shutdown(&mut self) {
        let _ = self.out.send((self.name.clone(), self.verified));
    }
}

/// One bit per sequence: which events a pool has handled, shared by its workers.
struct Bitmap(Vec<AtomicU64>);

impl Bitmap {
    fn new(bits: u64) -> Self {
        Self((0..bits.div_ceil(64)).map(|_| AtomicU64::new(0)).collect())
    }
    /// Marks `seq`; false if it was marked already.
    fn mark(&self, seq: i64) -> bool {
        let bit = 1u64 << (seq % 64);
        // Relaxed: the pool's claim protocol is what is under test; the bitmap only records.
        self.0[seq as usize / 64].fetch_or(bit, Ordering::Relaxed) & bit == 0
    }
}

/// A pool worker's checks: intact payload, the stamps of exclusive layers before it, increasing
/// sequences (and producer numbers) within the worker, and exactly once across the pool.
struct WorkerChecker {
    pool: String,
    layer: usize,
    exclusive_before: Vec<usize>,
    last_seq: i64,
    last_n: Vec<Option<u64>>,
    handled: u64,
    seen: Arc<Bitmap>,
    out: mpsc::Sender<Report>,
}

impl WorkerChecker {
    fn check(&mut self, e: &Ev, seq: i64) {
        assert!(seq > self.last_seq, "{}: a worker went back", self.pool);
        self.last_seq = seq;
        assert!(self.seen.mark(seq), "{}: {seq} handled twice", self.pool);
        assert_eq!(
            e.check,
            checksum(e.producer, e.n),
            "{}: torn at {seq}",
            self.pool
        );
        let last = &mut self.last_n[e.producer as usize];
        assert!(
            last.is_none_or(|l| e.n > l),
            "{}: producer order",
            self.pool
        );
        *last = Some(e.n);
        for &l in &self.exclusive_before {
            assert_eq!(e.stamps[l], stamp(e, l), "{}: missed layer {l}", self.pool);
        }
        self.handled += 1;
    }
}

impl EventHandler<Ev> for WorkerChecker {
    fn on_event(&mut self, e: &Ev, seq: i64, _: bool) {
        self.check(e, seq);
    }
    fn on_shutdown(&mut self) {
        let _ = self.out.send((self.pool.clone(), self.handled));
    }
}

impl ringmq::ExclusiveHandler<Ev> for WorkerChecker {
    fn on_event(&mut self, e: &mut Ev, seq: i64, _: bool) {
        self.check(e, seq);
        e.stamps[self.layer] = stamp(e, self.layer);
    }
    fn on_shutdown(&mut self) {
        let _ = self.out.send((self.pool.clone(), self.handled));
    }
}

fn run<S: ringmq::Sequencer, W: WaitStrategy>(
    sc: &Scenario,
    mut b: Builder<Ev, S, W>,
    spawn_producers: impl FnOnce(ringmq::Producer<Ev, S, W>) -> Vec<std::thread::JoinHandle<()>>,
) {
    let total = sc.per_producer * sc.producers as u64;
    let (tx, rx) = mpsc::channel();
    let mut previous: Vec<StageId> = Vec::new();
    // Every stage, by layer, and how many stages report (a pool reports once per worker).
    let mut stages: Vec<Vec<StageId>> = Vec::new();
    let mut expected: HashMap<String, u64> = HashMap::new();
    for (layer, &width) in sc.layers.iter().enumerate() {
        let exclusive_before: Vec<usize> = (0..layer).filter(|&l| sc.exclusive[l]).collect();
        let mut this_layer = Vec::new();
        if let Some(batch) = sc.pools[layer] {
            let name = format!("L{layer}.pool");
            let seen = Arc::new(Bitmap::new(total));
            let worker = |i: usize| {
                WorkerChecker {
                    pool: name.clone(),
                    layer,
                    exclusive_before: exclusive_before.clone(),
                    last_seq: -1,
                    last_n: vec![None; sc.producers as usize],
                    handled: 0,
                    seen: seen.clone(),
                    out: tx.clone(),
                }
                .named(i)
            };
            let id = if sc.exclusive[layer] {
                let pool = WorkPool::new(name.clone(), width, |i| {
                    let (n, w) = worker(i);
                    Consumer::exclusive_with_handler(n, move || w)
                });
                b.add_pool(&previous, pool.batch(batch)).unwrap()
            } else {
                let pool = WorkPool::new(name.clone(), width, |i| {
                    let (n, w) = worker(i);
                    Consumer::with_handler(n, move || w)
                });
                b.add_pool(&previous, pool.batch(batch)).unwrap()
            };
            *expected.entry(name).or_default() += width as u64;
            this_layer.push(id);
        } else {
            for i in 0..width {
                let fault = sc.fault.filter(|f| f.layer == layer && i == 0);
                let checker = Checker {
                    name: format!("L{layer}.{i}"),
                    layer,
                    exclusive_before: exclusive_before.clone(),
                    next_seq: 0,
                    next_n: vec![0; sc.producers as usize],
                    out: tx.clone(),
                    fault,
                    verified: 0,
                };
                let name = checker.name.clone();
                expected.insert(name.clone(), 1);
                let id = if sc.exclusive[layer] {
                    let mut c = Consumer::exclusive_with_handler(name, move || checker);
                    if let Some(m) = sc.max_batch {
                        c = c.max_batch(m);
                    }
                    b.add_after(&previous, c).unwrap()
                } else {
                    let mut c = Consumer::with_handler(name, move || checker);
                    if let Some(m) = sc.max_batch {
                        c = c.max_batch(m);
                    }
                    if sc.wait != 0 && i == 1 {
                        // A consumer with its own polling strategy beside the queue's.
                        c = c.wait_strategy(PollingWait::Yielding);
                    }
                    if let Some(f) = fault {
                        c = c.panic_policy(f.policy).timeout(Duration::from_millis(1));
                    }
                    b.add_after(&previous, c).unwrap()
                };
                this_layer.push(id);
            }
        }
        stages.push(this_layer.clone());
        previous = this_layer;
    }
    drop(tx);
    let (producer, mut queue) = b.build().unwrap();
    let producers = spawn_producers(producer);
    if sc.churn {
        churn(sc, &mut queue, &stages, &producers, &mut Rng(sc.churn_seed));
    }
    for t in producers {
        t.join().unwrap();
    }
    let faulty = sc.fault.map(|f| format!("L{}.0", f.layer));
    let fired = match queue.shutdown() {
        Ok(report) => {
            // A hook panic passed over under SkipEvent is counted; an event panic is a skip.
            let c = faulty
                .as_ref()
                .and_then(|n| report.consumers.iter().find(|c| &c.name == n));
            c.is_some_and(|c| c.skipped + c.skipped_hooks > 0)
        }
        Err(ringmq::ShutdownError::ConsumerPanicked { consumer, .. }) => {
            assert_eq!(
                Some(&consumer),
                faulty.as_ref(),
                "only the faulty consumer panics"
            );
            assert_eq!(sc.fault.map(|f| f.policy), Some(PanicPolicy::HaltConsumer));
            true
        }
        Err(e) => panic!("shutdown: {e}"),
    };
    let mut reports: HashMap<String, (u64, u64)> = HashMap::new();
    for (name, count) in rx.iter() {
        let r = reports.entry(name).or_default();
        r.0 += 1;
        r.1 += count;
    }
    assert_eq!(reports.len(), expected.len(), "every stage reports");
    for (name, (reported, count)) in reports {
        assert_eq!(reported, expected[&name], "{name}: every worker reports");
        if Some(&name) == faulty.as_ref() && fired {
            let f = sc.fault.unwrap();
            match (f.policy, f.hook) {
                // Only the planted event is lost to it.
                (PanicPolicy::SkipEvent, Hook::OnEvent) => assert_eq!(count, total - 1, "{name}"),
                // A hook call passed over: every event still handled.
                (PanicPolicy::SkipEvent, _) => assert_eq!(count, total, "{name}"),
                _ => assert!(count <= total, "{name}"),
            }
        } else {
            assert_eq!(count, total, "{name} verified {count} of {total} events");
        }
    }
}

impl WorkerChecker {
    fn named(self, i: usize) -> (String, Self) {
        (format!("{}.{i}", self.pool), self)
    }
}

/// What a stage added at runtime saw: (sequence, event).
type Log = Arc<Mutex<Vec<(i64, Ev)>>>;

/// Adds a consumer, a pool or a poller after a random stage (or right after the producers) while
/// the producers run, lets it handle events for a while, removes it, and checks what it saw.
/// Bounded: a few rounds, and each stops waiting once the producers are done.
fn churn<S: ringmq::Sequencer, W: WaitStrategy>(
    sc: &Scenario,
    queue: &mut ringmq::Disruptor<Ev, S, W>,
    stages: &[Vec<StageId>],
    producers: &[std::thread::JoinHandle<()>],
    rng: &mut Rng,
) {
    let done = || producers.iter().all(|t| t.is_finished());
    // A new stage must be ordered after every exclusive stage (they write while others wait).
    let after_exclusive = sc.exclusive.iter().rposition(|&x| x);
    for round in 0..6 {
        if done() {
            break;
        }
        let layer = match after_exclusive {
            Some(x) => Some(x + rng.below((stages.len() - x) as u64) as usize),
            None => (rng.chance(70)).then(|| rng.below(stages.len() as u64) as usize),
        };
        let upstream: Vec<StageId> = match layer {
            Some(l) => {
                let ids = &stages[l];
                vec![ids[rng.below(ids.len() as u64) as usize]]
            }
            None => Vec::new(),
        };
        // Stamps the new stage must see: exclusive layers at or before the one it follows.
        let stamped: Vec<usize> = match layer {
            Some(l) => (0..=l).filter(|&x| sc.exclusive[x]).collect(),
            None => Vec::new(),
        };
        let wanted = 1 + rng.below(2_000) as i64;
        let log: Log = Default::default();
        let what = rng.below(3);
        let first;
        if what == 2 {
            // The last producer closing the queue races this add: then the run is over.
            let mut poller = match queue.add_poller(&upstream) {
                Err(ringmq::BuildError::NotRunning) => break,
                added => added.unwrap(),
            };
            first = poller.sequence() + 1;
            let mut got = 0;
            while got < wanted && !done() {
                let state = poller.poll_timeout(Duration::from_millis(5), |e, seq, _| {
                    log.lock().unwrap().push((seq, *e));
                    true
                });
                if let PollState::Processed(n) = state {
                    got += n as i64;
                }
            }
            drop(poller);
            let log = log.lock().unwrap();
            check_log(
                &format!("round {round} poller"),
                &log,
                first,
                &stamped,
                true,
            );
        } else {
            let l = log.clone();
            let record = move |e: &Ev, seq: i64, _: bool| l.lock().unwrap().push((seq, *e));
            let added = if what == 0 {
                queue.add_after(&upstream, Consumer::new("churn", record))
            } else {
                let workers = 1 + rng.below(3) as usize;
                let pool = WorkPool::new("churn-pool", workers, |_| {
                    Consumer::new("churn-worker", record.clone())
                });
                queue.add_pool(&upstream, pool.batch(1 + rng.below(8) as usize))
            };
            // The last producer closing the queue races this add: then the run is over.
            let id = match added {
                Err(ringmq::BuildError::NotRunning) => break,
                added => added.unwrap(),
            };
            first = queue.first_sequence(id).unwrap();
            let tracker = queue.tracker(id).unwrap();
            while !done() {
                if tracker
                    .wait_processed(first + wanted, Duration::from_millis(5))
                    .is_ok()
                {
                    break;
                }
            }
            let report = queue.remove(id).unwrap();
            let mut log = log.lock().unwrap();
            let name = format!(
                "round {round} {}",
                if what == 0 { "consumer" } else { "pool" }
            );
            if what == 0 {
                check_log(&name, &log, first, &stamped, true);
                let last = log.last().map_or(first - 1, |x| x.0);
                assert_eq!(report.consumers[0].last_sequence, last, "{name}: report");
            } else {
                // Workers interleave: sort, then everything up to the slowest worker's end
                // must be there exactly once.
                log.sort_unstable_by_key(|x| x.0);
                let upto = report
                    .consumers
                    .iter()
                    .map(|c| c.last_sequence)
                    .min()
                    .unwrap();
                let below: Vec<(i64, Ev)> = log.iter().copied().filter(|x| x.0 <= upto).collect();
                check_log(&name, &below, first, &stamped, false);
                assert_eq!(below.len() as i64, upto - first + 1, "{name}: lost events");
                for w in log.windows(2) {
                    assert!(w[0].0 < w[1].0, "{name}: {} handled twice", w[1].0);
                }
            }
        }
    }
}

/// Checks a runtime stage's log: contiguous from `first` (`from_first`: and starting there), intact
/// payloads, the stamps of the exclusive layers before it.
fn check_log(name: &str, log: &[(i64, Ev)], first: i64, stamped: &[usize], from_first: bool) {
    for (i, (seq, e)) in log.iter().enumerate() {
        if from_first || i > 0 {
            assert_eq!(
                *seq,
                first + i as i64,
                "{name}: gap or duplicate (joined at {first})"
            );
        }
        assert_eq!(
            e.check,
            checksum(e.producer, e.n),
            "{name}: overwritten or torn at {seq}"
        );
        for &l in stamped {
            assert_eq!(
                e.stamps[l],
                stamp(e, l),
                "{name}: missed layer {l} at {seq}"
            );
        }
    }
}

fn publish_all<S: ringmq::Sequencer, W: WaitStrategy>(
    mut p: ringmq::Producer<Ev, S, W>,
    id: u32,
    count: u64,
    batch: usize,
    asynchronous: bool,
) {
    if asynchronous {
        return futures_executor::block_on(async move {
            let mut n = 0;
            while n < count {
                let k = (batch as u64).min(count - n);
                if k == 1 {
                    p.publish_async(|e| fill(e, id, n)).await.unwrap();
                } else {
                    let base = n;
                    p.publish_batch_async(k as usize, |e, i| fill(e, id, base + i as u64))
                        .await
                        .unwrap();
                }
                n += k;
            }
        });
    }
    let mut n = 0;
    while n < count {
        let k = (batch as u64).min(count - n);
        if k == 1 {
            p.publish(|e| fill(e, id, n)).unwrap();
        } else {
            let base = n;
            p.publish_batch(k as usize, |e, i| fill(e, id, base + i as u64))
                .unwrap();
        }
        n += k;
    }
}

fn fill(e: &mut Ev, producer: u32, n: u64) {
    e.producer = producer;
    e.n = n;
    e.check = checksum(producer, n);
    e.stamps = [0; LAYERS];
}

fn run_scenario<W: WaitStrategy>(sc: &Scenario, wait: W) {
    let per = sc.per_producer;
    let batch = sc.publish_batch;
    let asynchronous = sc.async_producers;
    if sc.multi {
        let b = Builder::multi_producer(sc.capacity, Ev::default, wait).unwrap();
        let producers = sc.producers;
        run(sc, b, move |p| {
            (0..producers)
                .map(|id| {
                    let p = p.clone();
                    std::thread::spawn(move || publish_all(p, id, per, batch, asynchronous))
                })
                .collect()
        });
    } else {
        let b = Builder::single_producer(sc.capacity, Ev::default, wait).unwrap();
        run(sc, b, move |p| {
            vec![std::thread::spawn(move || {
                publish_all(p, 0, per, batch, asynchronous)
            })]
        });
    }
}

#[test]
fn random_topologies_lose_nothing() {
    let seed = std::env::var("RINGMQ_STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            if cfg!(miri) {
                // Miri's isolation has no wall clock; a fixed seed, still printed.
                0x5EED
            } else {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            }
        });
    let default_budget = if cfg!(miri) {
        2_000
    } else if cfg!(debug_assertions) {
        300_000
    } else {
        10_000_000
    };
    let budget: u64 = std::env::var("RINGMQ_STRESS_EVENTS")
        .ok()
        .and_then(|s| s.replace('_', "").parse().ok())
        .unwrap_or(default_budget);
    println!("stress: seed {seed} (replay with RINGMQ_STRESS_SEED={seed}), budget {budget} events");
    with_timeout(1500, move || {
        let mut rng = Rng(seed);
        let started = Instant::now();
        let (mut done, mut scenarios) = (0u64, 0u32);
        // Scenario sizes scale with the ring: a ring of 1 with six parked consumers moves tens of
        // thousands of events a second, a ring of 1024 tens of millions. Every ring still laps
        // thousands of times.
        while done < budget {
            let left = budget - done;
            let mut sc = Scenario::draw(&mut rng, left);
            let cap = if cfg!(miri) {
                left
            } else {
                let per_slot = 2_000 + rng.below(2_000);
                (sc.capacity as u64 * per_slot).clamp(5_000, 3_000_000)
            };
            sc.per_producer = (left.min(cap) / sc.producers as u64).max(1);
            let t = Instant::now();
            let result = std::panic::catch_unwind(|| match sc.wait {
                0 => run_scenario(&sc, BusySpin),
                1 => run_scenario(&sc, Yielding),
                2 => run_scenario(&sc, Blocking::new()),
                _ => run_scenario(&sc, Sleeping::new(Duration::from_micros(20))),
            });
            if let Err(panic) = result {
                eprintln!(
                    "stress: FAILED scenario {scenarios}: {} (seed {seed})",
                    sc.describe()
                );
                std::panic::resume_unwind(panic);
            }
            let events = sc.per_producer * sc.producers as u64;
            println!(
                "  #{scenarios:<3} {:<90} {:>6.1} M events/s",
                sc.describe(),
                events as f64 / t.elapsed().as_secs_f64() / 1e6
            );
            done += events;
            scenarios += 1;
        }
        println!(
            "stress: {done} events in {scenarios} scenarios, {:.1?}, every consumer verified every event",
            started.elapsed()
        );
    });
}
