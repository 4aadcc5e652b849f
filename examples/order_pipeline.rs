//! The LMAX shape: an input ring whose events are journaled (appended to a file, flushed at the
//! end of each batch), replicated (a checksum stands in for the network) and decoded, all three in
//! parallel; business logic after all three, enriching each order in place; results leave through
//! a second ring, whose consumer measures end-to-end latency.
//!
//! `cargo run --release --example order_pipeline [events]` (default 5,000,000).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringmq::{Builder, Consumer, EventHandler, Yielding};

/// An order as it arrives: raw bytes, and the fields decoding and the business logic fill in.
#[derive(Clone, Copy, Default)]
struct Order {
    raw: [u8; 24],
    sent_ns: u64,
    id: u64,
    accepted: bool,
}

/// A result on the output ring.
#[derive(Clone, Copy, Default)]
struct Fill {
    id: u64,
    accepted: bool,
    sent_ns: u64,
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

/// Records end-to-end latencies (a sample of them) on the output side.
struct Latency {
    start: Instant,
    samples: Vec<u64>,
    accepted: u64,
    done: Arc<AtomicU64>,
    report: std::sync::mpsc::Sender<(Vec<u64>, u64)>,
}

impl EventHandler<Fill> for Latency {
    fn on_event(&mut self, fill: &Fill, seq: i64, _end_of_batch: bool) {
        if seq % 16 == 0 && self.samples.len() < self.samples.capacity() {
            let now = self.start.elapsed().as_nanos() as u64;
            self.samples.push(now.saturating_sub(fill.sent_ns));
        }
        self.accepted += fill.accepted as u64;
        let _ = fill.id;
        self.done.store(seq as u64 + 1, Ordering::Relaxed);
    }
    fn on_shutdown(&mut self) {
        let _ = self
            .report
            .send((std::mem::take(&mut self.samples), self.accepted));
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let events: u64 = std::env::args()
        .nth(1)
        .map(|a| a.replace('_', "").parse())
        .transpose()?
        .unwrap_or(5_000_000);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("order_pipeline: {events} orders, {cores} cores, yielding waits (6 threads)");

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
        samples: Vec::with_capacity(1 << 20),
        accepted: 0,
        done: d,
        report: report_tx,
    }))?;
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
    }))?;
    let r = replicated.clone();
    let mut checksum = 0u64;
    let replicate = input.add(Consumer::new("replicate", move |o: &Order, _, eob| {
        checksum = checksum.rotate_left(5) ^ field(&o.raw, 0);
        if eob {
            r.store(checksum, Ordering::Relaxed);
        }
    }))?;
    let decode = input.add(Consumer::new("decode", |o: &Order, _, _| {
        assert!(field(&o.raw, 2) > 0, "undecodable order");
    }))?;
    input.add_after(
        &[journal, replicate, decode],
        Consumer::exclusive("business", move |o: &mut Order, _, _| {
            o.id = field(&o.raw, 0);
            o.accepted = field(&o.raw, 1) % 100 < 95;
            let (id, accepted, sent_ns) = (o.id, o.accepted, o.sent_ns);
            fills
                .publish(|f| {
                    *f = Fill {
                        id,
                        accepted,
                        sent_ns,
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
    // Close the input (drains the diamond, which also drops the business stage's output
    // producer), then the output ring.
    drop(orders);
    in_queue.shutdown()?;
    out_queue.shutdown()?;
    let elapsed = start.elapsed();
    let (mut samples, accepted) = report_rx.recv()?;
    samples.sort_unstable();

    let journal_bytes = std::fs::metadata(&journal_path)?.len();
    std::fs::remove_file(&journal_path)?;
    println!("\r{:70}", "");
    println!(
        "  processed {} orders in {:.2?}: {:.2} M orders/s end to end",
        done.load(Ordering::Relaxed),
        elapsed,
        events as f64 / elapsed.as_secs_f64() / 1e6
    );
    println!(
        "  journal: {journal_bytes} bytes in {} flushes; replication checksum {:#x}; {accepted} accepted",
        flushes.load(Ordering::Relaxed),
        replicated.load(Ordering::Relaxed)
    );
    println!(
        "  latency publish -> output consumer ({} samples): p50 {} ns, p90 {} ns, p99 {} ns, p99.9 {} ns, max {} ns",
        samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.90),
        percentile(&samples, 0.99),
        percentile(&samples, 0.999),
        samples.last().copied().unwrap_or(0)
    );
    assert_eq!(
        done.load(Ordering::Relaxed),
        events,
        "every order reached the output"
    );
    assert_eq!(journal_bytes, events * 24, "every order was journaled");
    Ok(())
}
