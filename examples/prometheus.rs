//! The queue's counters as a Prometheus scrape: `QueueMetrics::export` through the `metrics`
//! facade into `metrics-exporter-prometheus`'s recorder, served at `/metrics` on a loopback port
//! (a plain std listener, one request), and scraped by the example itself as Prometheus would.
//!
//! `cargo run --release --features metrics --example prometheus [events]` (default 100,000)
//!
//! A service exports on a timer (every scrape interval, or from its `/metrics` handler just
//! before rendering); here once, after the traffic.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
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

    // The endpoint: export the snapshot, render, answer (a service does this per scrape).
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = std::thread::scope(|s| -> Result<String, Box<dyn std::error::Error>> {
        let serving = s.spawn(|| -> std::io::Result<()> {
            let (mut conn, _) = listener.accept()?;
            // The whole request head: closing with unread bytes would reset the connection.
            let mut request = Vec::new();
            let mut chunk = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = conn.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&chunk[..n]);
            }
            assert!(request.starts_with(b"GET /metrics"));
            queue.metrics().export("orders");
            let body = scrape.render();
            write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
        });
        // The scrape.
        let mut conn = TcpStream::connect(addr)?;
        write!(conn, "GET /metrics HTTP/1.1\r\nhost: {addr}\r\n\r\n")?;
        let mut response = String::new();
        conn.read_to_string(&mut response)?;
        serving.join().expect("the endpoint thread")?;
        Ok(response)
    })?;
    let (head, body) = server.split_once("\r\n\r\n").ok_or("no HTTP body")?;
    println!("{}", head.lines().next().unwrap_or(""));
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
