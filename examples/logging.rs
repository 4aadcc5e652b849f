//! Routing ringmq's messages into a service's own logging: ringmq prints nothing itself; what it
//! has to say (a handler panic passed over by its policy, a pinning that failed, a panic in
//! `on_shutdown`) goes through the `log` facade with the target `ringmq`. This program installs
//! a small logger of its own (a service would install env_logger, or a tracing subscriber with
//! tracing-log) that tags each line with the level and the target, then runs a pipeline whose
//! metrics stage panics on a few events under `PanicPolicy::SkipEvent`.
//!
//! ```sh
//! cargo run --release --example logging            # 1 000 events
//! cargo run --release --example logging -- 20000   # events
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ringmq::{Blocking, Builder, Consumer, PanicPolicy};

/// The service's logger: one line per record on stdout, `[LEVEL target] message`.
struct ServiceLogger {
    lines: AtomicU64,
}

impl log::Log for ServiceLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        // ringmq's warnings and errors; a service would filter its own targets here too.
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            self.lines.fetch_add(1, Ordering::Relaxed);
            println!("[{} {}] {}", record.level(), record.target(), record.args());
        }
    }

    fn flush(&self) {}
}

static LOGGER: ServiceLogger = ServiceLogger {
    lines: AtomicU64::new(0),
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let events: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000);
    log::set_logger(&LOGGER)?;
    log::set_max_level(log::LevelFilter::Warn);
    // Keep the default panic message off stderr: the logger reports the panics that matter.
    std::panic::set_hook(Box::new(|_| {}));

    let handled = Arc::new(AtomicU64::new(0));
    let mut b = Builder::multi_producer(1024, || 0u64, Blocking::new())?;
    let h = handled.clone();
    b.add(Consumer::new("store", move |_: &u64, _, _| {
        h.fetch_add(1, Ordering::Relaxed);
    }));
    // A stage whose failures must not stop the queue: each bad event is skipped, and logged.
    b.add(
        Consumer::new("metrics", |v: &u64, _, _| {
            assert!(v % 250 != 249, "value {v} is out of range");
        })
        .panic_policy(PanicPolicy::SkipEvent),
    );
    let (mut producer, queue) = b.build()?;
    for v in 0..events {
        producer.publish(|e| *e = v)?;
    }
    drop(producer);
    let report = queue.shutdown()?;
    let skipped: u64 = report.consumers.iter().map(|c| c.skipped).sum();
    println!(
        "logging: {events} events stored ({} handled), {skipped} skipped by `metrics`, {} lines \
         routed through the service's logger",
        handled.load(Ordering::Relaxed),
        LOGGER.lines.load(Ordering::Relaxed)
    );
    assert_eq!(handled.load(Ordering::Relaxed), events);
    assert_eq!(skipped, events / 250);
    assert_eq!(LOGGER.lines.load(Ordering::Relaxed), skipped);
    Ok(())
}
