//! Consumers added while load is high and removed when it drops, on a running queue, with the lag
//! of each consumer printed.
//!
//! `cargo run --release --example dynamic_scaling [events]` (default 3,000,000)
//!
//! The work (about a microsecond per event) is done by a work pool. The producer runs flat out
//! for most of the run, then slows to 100,000 events/s. The main thread watches the pool's lag
//! (`Disruptor::lag`): when it passes half the ring, it scales out from one worker to two; once
//! the load has dropped and the lag is small, it scales back in to one.
//!
//! A pool's size is fixed, so scaling replaces the pool, with a handoff that keeps "each event
//! handled exactly once": every event carries the *generation* of the pool that owns it, stamped
//! by the producer; a pool skips events of other generations. To scale, the main thread adds the
//! new pool (it sees every event from its join point on), then asks the producer for the next
//! generation; the producer stamps it from some sequence `h` on and reports `h` (every event
//! stamped with the new generation comes after the join point, so the new pool sees it). The old
//! pool is removed once its tracker says it processed `h - 1`: by then it has handled every event
//! of its generation. A bitmap checks that every event was handled exactly once.
//!
//! Four threads on two cores: `Blocking` waits.

#[path = "common/progress.rs"]
mod progress;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringmq::{Blocking, Builder, Consumer, Disruptor, Single, StageId, WorkPool};

const RING: usize = 4096;

#[derive(Clone, Copy, Default)]
struct Job {
    n: u64,
    generation: u64,
}

/// About a microsecond of arithmetic.
fn work(n: u64) -> u64 {
    let mut h = n;
    for _ in 0..300 {
        h = (h ^ (h >> 31)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    h
}

/// What the producer and the main thread share.
struct Control {
    /// The generation the producer stamps on new events (the main thread raises it).
    generation: AtomicU64,
    /// The first sequence the producer stamped with the latest generation (-1: not yet).
    handoff: AtomicI64,
    /// The producer is in its slow phase.
    slow: AtomicBool,
}

/// One bit per event: set by the worker that handled it.
struct Handled(Vec<AtomicU64>);

impl Handled {
    fn mark(&self, n: u64) {
        let bit = 1 << (n % 64);
        let before = self.0[(n / 64) as usize].fetch_or(bit, Ordering::Relaxed);
        assert!(before & bit == 0, "event {n} handled twice");
    }
    fn count(&self) -> u64 {
        self.0
            .iter()
            .map(|w| w.load(Ordering::Relaxed).count_ones() as u64)
            .sum()
    }
}

type Queue = Disruptor<Job, Single, Blocking>;

/// A pool of `workers` that handles the events of `generation`.
fn pool(
    generation: u64,
    workers: usize,
    handled: &Arc<Handled>,
) -> WorkPool<Job, impl ringmq::IntoProcess<Job>> {
    let handled = handled.clone();
    WorkPool::new(format!("work-g{generation}"), workers, move |i| {
        let handled = handled.clone();
        Consumer::new(format!("work-g{generation}-{i}"), move |job: &Job, _, _| {
            if job.generation == generation {
                std::hint::black_box(work(job.n));
                handled.mark(job.n);
            }
        })
    })
}

/// Replaces pool `old` (generation `generation`) by a pool of `workers` for the next
/// generation, as the module docs describe. Returns the new pool and the handoff sequence.
fn scale(
    queue: &mut Queue,
    control: &Control,
    old: StageId,
    generation: u64,
    workers: usize,
    handled: &Arc<Handled>,
    producer_done: &dyn Fn() -> bool,
) -> Result<(StageId, i64), Box<dyn std::error::Error>> {
    let new = queue.add_pool(&[], pool(generation + 1, workers, handled))?;
    control.handoff.store(-1, Ordering::Relaxed);
    // Release: pairs with the producer's Acquire load; the producer reads it only after the
    // join point above was taken, so every event stamped with it is one the new pool sees.
    control.generation.store(generation + 1, Ordering::Release);
    let old_tracker = queue.tracker(old)?;
    loop {
        let h = control.handoff.load(Ordering::Acquire);
        if h >= 0 {
            // Every event of the old generation is below `h`.
            while old_tracker
                .wait_processed(h - 1, Duration::from_millis(100))
                .is_err()
            {}
            queue.remove(old)?;
            return Ok((new, h));
        }
        if producer_done() {
            // No new-generation event will come: the old pool finishes what was published.
            let last = queue.cursor();
            while old_tracker
                .wait_processed(last, Duration::from_millis(100))
                .is_err()
            {}
            queue.remove(old)?;
            return Ok((new, last + 1));
        }
        std::hint::spin_loop();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let events: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3_000_000);
    let slow_from = events - events / 10;
    let handled = Arc::new(Handled(
        (0..events.div_ceil(64))
            .map(|_| AtomicU64::new(0))
            .collect(),
    ));
    let control = Arc::new(Control {
        generation: AtomicU64::new(1),
        handoff: AtomicI64::new(-1),
        slow: AtomicBool::new(false),
    });

    let mut b = Builder::single_producer(RING, Job::default, Blocking::new())?;
    let mut current = b.add_pool(&[], pool(1, 1, &handled))?;
    let (mut producer, mut queue) = b.build()?;

    let c = control.clone();
    let started = Instant::now();
    let producer_thread = std::thread::spawn(move || {
        let mut generation = 1;
        let mut slow_since: Option<Instant> = None;
        for n in 0..events {
            if n >= slow_from {
                // The slow phase: 100,000 events per second.
                let since = *slow_since.get_or_insert_with(|| {
                    c.slow.store(true, Ordering::Relaxed);
                    Instant::now()
                });
                let due = Duration::from_micros(10 * (n - slow_from));
                while since.elapsed() < due {
                    std::hint::spin_loop();
                }
            }
            let g = c.generation.load(Ordering::Acquire);
            let seq = producer
                .publish(|job| {
                    job.n = n;
                    job.generation = g;
                })
                .expect("queue is running");
            if g != generation {
                generation = g;
                // Release: the main thread removes the old pool only after reading this.
                c.handoff.store(seq, Ordering::Release);
            }
        }
    });

    let done = || producer_thread.is_finished();
    let mut generation = 1;
    let mut workers = 1;
    let mut log = Vec::new();
    let mut progress = progress::Progress::new("dynamic_scaling", events);
    while !done() {
        let tracker = queue.tracker(current)?;
        let _ = tracker.wait_processed(queue.cursor(), Duration::from_millis(50));
        let lag = queue.lag(current)?;
        let slow = control.slow.load(Ordering::Relaxed);
        progress.update(
            (queue.cursor() + 1) as u64,
            &format!(
                "{} load, work-g{generation} x{workers} lag {lag}",
                if slow { "low" } else { "high" }
            ),
        );
        let target = if !slow && lag > RING as i64 / 2 {
            2
        } else if slow && lag < 64 {
            1
        } else {
            workers
        };
        if target != workers {
            let at = queue.cursor() + 1;
            let (new, h) = scale(
                &mut queue, &control, current, generation, target, &handled, &done,
            )?;
            log.push(format!(
                "at event {at}: lag {lag}, {} from {workers} to {target} workers (work-g{} from sequence {h})",
                if target > workers { "scaled out" } else { "scaled in" },
                generation + 1
            ));
            current = new;
            generation += 1;
            workers = target;
        }
    }
    producer_thread.join().expect("producer panicked");
    queue.shutdown()?;
    let elapsed = started.elapsed();
    progress.finish(events, &format!("work-g{generation} x{workers}"));

    assert_eq!(handled.count(), events, "every event handled exactly once");
    println!(
        "dynamic_scaling: {events} events in {elapsed:.2?}, each handled exactly once across {generation} pool generations"
    );
    for line in &log {
        println!("  {line}");
    }
    Ok(())
}
