//! The queue's counters as a Prometheus scrape: `QueueMetrics::export` through the `metrics`
//! facade into `metrics-exporter-prometheus`'s recorder, rendered as the body a `/metrics`
//! endpoint would serve.
//!
//! `cargo run --release --features metrics --example prometheus [events]` (default 100,000)
//!
//! A service exports on a timer (every scrape interval, or from its `/metrics` handler just
//! before rendering); here once, after the traffic.

use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use ringmq::{Blocking, Builder, Consumer, WorkPool};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let events: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    // The process-wide recorder the `metrics` macros write to; its handle renders the scrape.
    let scrape = PrometheusBuilder::new().install_recorder()?;

    let mut b = Builder::multi_producer(1024, || 0u64, Blocking::new())?;
    let journal = b.add(Consumer::new("journal", |_: &u64, _, _| {}));
    let pool = b.add_pool(
        &[journal],
        WorkPool::new("handlers", 2, |w| {
            Consumer::new(format!("handler-{w}"), |e: &u64, _, _| {
                std::hint::black_box(e.wrapping_mul(31));
            })
        }),
    )?;
    let (mut producer, queue) = b.build()?;
    for i in 0..events {
        producer.publish(|e| *e = i)?;
    }
    queue
        .tracker(pool)?
        .wait_processed(events as i64 - 1, Duration::from_secs(30))?;

    queue.metrics().export("orders");
    let body = scrape.render();
    // The ringmq series (the recorder may hold others).
    for line in body.lines().filter(|l| l.contains("ringmq_")) {
        println!("{line}");
    }
    assert!(body.contains(&format!(
        "ringmq_stage_events_total{{queue=\"orders\",stage=\"journal\",kind=\"consumer\"}} {events}"
    )));
    drop(producer);
    queue.shutdown()?;
    Ok(())
}
