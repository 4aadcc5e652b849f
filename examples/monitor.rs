//! A live view of a running queue, built on `Disruptor::metrics`: the ring's fill level and each
//! stage's lag and rate as bars, refreshed every second, with the stall watchdog alerting on a
//! stage that stops.
//!
//! `cargo run --release --example monitor [seconds]` (default 6; add `--features counters` for
//! the per-stage batch and waiting columns of the table printed at the end)
//!
//! The pipeline: a producer publishing about 200,000 events a second; `parse` (fast) then
//! `enrich` (deliberately slow: it falls behind, and once, at event 100,000, hangs for 1.5 s,
//! which its watchdog reports: `stall_timeout(500 ms, Alert)`) and `archive` (fast, beside
//! `enrich`). The rates come from the stages' positions, which need no feature.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use ringmq::{Blocking, Builder, Consumer, QueueMetrics, StallPolicy};

const BAR: usize = 40;

fn bar(fraction: f64) -> String {
    let n = ((fraction.clamp(0.0, 1.0) * BAR as f64).round()) as usize;
    format!("[{}{}]", "#".repeat(n), ".".repeat(BAR - n))
}

fn view(m: &QueueMetrics, before: &QueueMetrics, dt: f64, t: u64) -> String {
    let mut out = format!(
        "t={t}s  ring {} {:>5}/{} full, {:.0} published/s\n",
        bar(m.fill as f64 / m.capacity as f64),
        m.fill,
        m.capacity,
        (m.published - before.published) as f64 / dt
    );
    for (s, b) in m.stages.iter().zip(&before.stages) {
        let rate = (s.processed - b.processed) as f64 / dt;
        out += &format!(
            "  {:<8} lag {} {:>5}  rate {:>9.0}/s\n",
            s.name,
            bar(s.lag as f64 / m.capacity as f64),
            s.lag,
            rate
        );
    }
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(6);
    let mut b = Builder::single_producer(4096, || 0u64, Blocking::new())?;
    b.on_stall(|stall| println!("  ALERT from the watchdog: {stall}"));
    let parse = b.add(Consumer::new("parse", |e: &u64, _, _| {
        std::hint::black_box(e.wrapping_mul(31));
    }));
    b.add_after(
        &[parse],
        Consumer::new("enrich", |e: &u64, _, _| {
            if *e == 100_000 {
                // A downstream call that hangs for a while.
                std::thread::sleep(Duration::from_millis(1500));
            }
            // Slow work: about 4 µs an event, slower than the producer.
            let start = Instant::now();
            while start.elapsed() < Duration::from_micros(4) {
                std::hint::spin_loop();
            }
        })
        .stall_timeout(Duration::from_millis(500), StallPolicy::Alert),
    )?;
    b.add_after(&[parse], Consumer::new("archive", |_: &u64, _, _| {}))?;
    let (mut producer, queue) = b.build()?;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let feeder = std::thread::spawn(move || {
        let mut i = 0u64;
        let start = Instant::now();
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            // About 200,000 a second, in bursts of 200 every millisecond.
            for _ in 0..200 {
                if producer.publish(|e| *e = i).is_err() {
                    return;
                }
                i += 1;
            }
            let due = start + Duration::from_micros(i * 5);
            while Instant::now() < due && !s.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::yield_now();
            }
        }
    });

    let terminal = std::io::stdout().is_terminal();
    let mut before = queue.metrics();
    let mut at = Instant::now();
    for t in 1..=seconds {
        std::thread::sleep(Duration::from_secs(1));
        let m = queue.metrics();
        let now = Instant::now();
        let frame = view(&m, &before, now.duration_since(at).as_secs_f64(), t);
        let mut out = std::io::stdout().lock();
        if terminal {
            write!(out, "\x1b[2J\x1b[H")?;
        }
        write!(out, "{frame}")?;
        out.flush()?;
        (before, at) = (m, now);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    feeder.join().expect("the feeder thread");
    if cfg!(feature = "counters") {
        println!("\nfinal counters:\n{}", queue.metrics());
    } else {
        println!("\n(run with --features counters for the per-stage counters table)");
    }
    let report = queue.shutdown()?;
    for c in &report.consumers {
        println!("{} drained to sequence {}", c.name, c.last_sequence);
    }
    Ok(())
}
