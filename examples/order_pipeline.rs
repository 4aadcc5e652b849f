//! The LMAX shape: an input ring whose events are journaled (appended to a file, flushed at the
//! end of each batch), replicated (a checksum stands in for the network) and decoded, all three in
//! parallel; business logic after all three, enriching each order in place; results leave through
//! a second ring, whose consumer measures end-to-end latency.
//!
//! Two phases: first `events` orders as fast as the producer can publish (the throughput; the
//! latency then is mostly time spent queued behind a full ring, and is labelled so), then orders
//! paced at a fixed rate well below saturation, whose publish-to-output latency is what the queue
//! itself costs (an HDR histogram).
//!
//! `cargo run --release --example order_pipeline [events]` (default 5,000,000).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ringmq::{Builder, Consumer, EventHandler, Yielding};

/// An order as it arrives: raw bytes, and the fields decoding and the business logic fill in.
#[derive(Clone, Copy, Default)]
struct Order {
    raw: [u8; 24],
    sent_ns: u64,
    id: u64,
    accepted: bool,
    /// Sent in the paced phase (its latency is recorded apart).
    paced: bool,
}

/// A result on the output ring.
#[derive(Clone, Copy, Default)]
struct Fill {
    id: u64,
    accepted: bool,
    sent_ns: u64,
    paced: bool,
}

fn encode(id: u64, price: u64, qty: u64) -> [u8; 24] {
    let mut raw = [0u8; 24];
    raw[..8].copy_from_slice(&id.to_le_bytes());
    raw[8..16].copy_from_slice(&price.to_le_bytes());
    raw[16..].copy_from_slice(&qty.to_le_bytes());
    raw
}

fn field(raw: &[u8; 24], i: usize) -> u64 {
    u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().unwrap())
}

/// Appends every order to a journal file and flushes at the end of each batch.
struct Journal {
    out: BufWriter<File>,
    flushes: Arc<AtomicU64>,
}

impl EventHandler<Order> for Journal {
    fn on_event(&mut self, order: &Order, _seq: i64, end_of_batch: bool) {
        self.out.write_all(&order.raw).expect("journal write");
        if end_of_batch {
            self.out.flush().expect("journal flush");
            self.flushes.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Records end-to-end latencies on the output side: every 16th order while saturated, every
/// order while paced, each phase in its own histogram (allocated up front: recording allocates
/// nothing).
struct Latency {
    start: Instant,
    saturated: Histogram<u64>,
    paced: Histogram<u64>,
    accepted: u64,
    done: Arc<AtomicU64>,
    report: std::sync::mpsc::Sender<(Histogram<u64>, Histogram<u64>, u64)>,
}

impl EventHandler<Fill> for Latency {
    fn on_event(&mut self, fill: &Fill, seq: i64, _end_of_batch: bool) {
        let now = self.start.elapsed().as_nanos() as u64;
        let took = now.saturating_sub(fill.sent_ns).max(1);
        if fill.paced {
            self.paced.saturating_record(took);
        } else if seq % 16 == 0 {
            self.saturated.saturating_record(took);
        }
        self.accepted += fill.accepted as u64;
        let _ = fill.id;
        self.done.store(seq as u64 + 1, Ordering::Relaxed);
    }
    fn on_shutdown(&mut self) {
        let empty = || Histogram::new(3).expect("histogram");
        let _ = self.report.send((
            std::mem::replace(&mut self.saturated, empty()),
            std::mem::replace(&mut self.paced, empty()),
            self.accepted,
        ));
    }
}

/// A duration in the unit that reads best: `850 ns`, `12.3 µs`, `4.56 ms`, `1.23 s`.
fn human(ns: u64) -> String {
    let ns = ns as f64;
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// `p50 ..., p90 ..., p99 ..., p99.9 ..., max ...` in human units.
fn percentiles(h: &Histogram<u64>) -> String {
    let q = |p: f64| human(h.value_at_quantile(p));
    format!(
        "p50 {}, p90 {}, p99 {}, p99.9 {}, max {} ({} samples)",
        q(0.50),
        q(0.90),
        q(0.99),
        q(0.999),
        human(h.max()),
        h.len()
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let events: u64 = std::env::args()
        .nth(1)
        .map(|a| a.replace('_', "").parse())
        .transpose()?
        .unwrap_or(5_000_000);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "order_pipeline: {events} orders saturated, then paced ones; {cores} cores, yielding waits (6 threads)"
    );

    let start = Instant::now();
    let journal_path =
        std::env::temp_dir().join(format!("ringmq-journal-{}.bin", std::process::id()));

    // The output ring: business logic publishes fills, a latency probe consumes them.
    let done = Arc::new(AtomicU64::new(0));
    let (report_tx, report_rx) = std::sync::mpsc::channel();
    let mut out = Builder::single_producer(8192, Fill::default, Yielding)?;
    let d = done.clone();
    out.add(Consumer::with_handler("latency", move || Latency {
        start,
        // 1 ns to 60 s, 3 significant digits.
        saturated: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram"),
        paced: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram"),
        accepted: 0,
        done: d,
        report: report_tx,
    }));
    let (mut fills, out_queue) = out.build()?;

    // The input ring and its diamond.
    let flushes = Arc::new(AtomicU64::new(0));
    let replicated = Arc::new(AtomicU64::new(0));
    let mut input = Builder::single_producer(8192, Order::default, Yielding)?;
    let file = File::create(&journal_path)?;
    let f = flushes.clone();
    let journal = input.add(Consumer::with_handler("journal", move || Journal {
        out: BufWriter::with_capacity(1 << 16, file),
        flushes: f,
    }));
    let r = replicated.clone();
    let mut checksum = 0u64;
    let replicate = input.add(Consumer::new("replicate", move |o: &Order, _, eob| {
        checksum = checksum.rotate_left(5) ^ field(&o.raw, 0);
        if eob {
            r.store(checksum, Ordering::Relaxed);
        }
    }));
    let decode = input.add(Consumer::new("decode", |o: &Order, _, _| {
        assert!(field(&o.raw, 2) > 0, "undecodable order");
    }));
    input.add_after(
        &[journal, replicate, decode],
        Consumer::exclusive("business", move |o: &mut Order, _, _| {
            o.id = field(&o.raw, 0);
            o.accepted = field(&o.raw, 1) % 100 < 95;
            let (id, accepted, sent_ns, paced) = (o.id, o.accepted, o.sent_ns, o.paced);
            fills
                .publish(|f| {
                    *f = Fill {
                        id,
                        accepted,
                        sent_ns,
                        paced,
                    }
                })
                .expect("output ring");
        }),
    )?;
    let (mut orders, in_queue) = input.build()?;

    let mut last_report = Instant::now();
    for id in 0..events {
        orders.publish(|o| {
            o.raw = encode(id, id.wrapping_mul(7919), 1 + id % 10);
            o.sent_ns = start.elapsed().as_nanos() as u64;
            o.paced = false;
        })?;
        if id % 65_536 == 0 && last_report.elapsed() > Duration::from_millis(250) {
            last_report = Instant::now();
            let secs = start.elapsed().as_secs_f64();
            print!(
                "\r  {id:>12} published, {:>6.2} M orders/s   ",
                id as f64 / secs / 1e6
            );
            std::io::stdout().flush()?;
        }
    }
    // Wait for the saturated phase to come out of the pipeline (bounded), so the paced orders
    // find empty rings.
    let saturated_elapsed = start.elapsed();
    let drained = Instant::now();
    while done.load(Ordering::Relaxed) < events && drained.elapsed() < Duration::from_secs(60) {
        std::thread::yield_now();
    }
    let saturated_total = start.elapsed();

    // The paced phase: one order every `gap`. The producer sleeps through most of each gap and
    // spins only for the last 50 µs, so on a small machine it leaves the cores to the pipeline.
    let paced = (events / 100).clamp(1_000, 20_000);
    let gap = Duration::from_micros(100); // 10 000 orders/s
    print!(
        "\r  pacing {paced} orders at {:.0} orders/s ...{:30}",
        1.0 / gap.as_secs_f64(),
        ""
    );
    std::io::stdout().flush()?;
    let mut next = Instant::now();
    for id in events..events + paced {
        let left = next.saturating_duration_since(Instant::now());
        if left > Duration::from_micros(60) {
            std::thread::sleep(left - Duration::from_micros(50));
        }
        while Instant::now() < next {
            std::hint::spin_loop();
        }
        next += gap;
        orders.publish(|o| {
            o.raw = encode(id, id.wrapping_mul(7919), 1 + id % 10);
            o.sent_ns = start.elapsed().as_nanos() as u64;
            o.paced = true;
        })?;
    }
    let events = events + paced;
    // Close the input (drains the diamond, which also drops the business stage's output
    // producer), then the output ring.
    drop(orders);
    in_queue.shutdown()?;
    out_queue.shutdown()?;
    let (saturated, paced_latency, accepted) = report_rx.recv()?;

    let journal_bytes = std::fs::metadata(&journal_path)?.len();
    std::fs::remove_file(&journal_path)?;
    println!("\r{:70}", "");
    let saturated_events = events - paced;
    println!(
        "  saturated: {saturated_events} orders published in {:.2?} ({:.2} M orders/s), all out of \
         the pipeline after {:.2?} ({:.2} M orders/s end to end)",
        saturated_elapsed,
        saturated_events as f64 / saturated_elapsed.as_secs_f64() / 1e6,
        saturated_total,
        saturated_events as f64 / saturated_total.as_secs_f64() / 1e6
    );
    println!(
        "    time queued behind full rings, publish -> output: {}",
        percentiles(&saturated)
    );
    println!(
        "  paced at {:.0} orders/s, publish -> output latency: {}",
        1.0 / gap.as_secs_f64(),
        percentiles(&paced_latency)
    );
    println!(
        "  journal: {journal_bytes} bytes in {} flushes; replication checksum {:#x}; {accepted} accepted",
        flushes.load(Ordering::Relaxed),
        replicated.load(Ordering::Relaxed)
    );
    assert_eq!(
        done.load(Ordering::Relaxed),
        events,
        "every order reached the output"
    );
    assert_eq!(journal_bytes, events * 24, "every order was journaled");
    Ok(())
}
