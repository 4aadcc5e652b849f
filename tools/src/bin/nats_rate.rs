//! The NATS bridge's throughput beside the async-nats client alone, against the same
//! `nats-server -js`, measured in the same run.
//!
//! ```sh
//! cargo run --release -p ringmq-tools --features nats --bin nats_rate                # 5 rounds, 100 000 messages
//! cargo run --release -p ringmq-tools --features nats --bin nats_rate -- 3 20000
//! ```
//!
//! Needs `nats-server` (Debian's package; `$NATS_SERVER` names another binary). Each trial is a
//! fresh process (this binary run with `--trial`) that probes the cache-line floor, starts its
//! own server on a free loopback port with a fresh file store (`nats/tests/common/mod.rs`, the
//! bridge tests' harness), runs one configuration, stops the server and probes the floor again;
//! the configurations of a round run in a shuffled order. Messages are 64 bytes with a message id.
//!
//! - `bridge-out`: a 1024-slot ring whose only stage is [`ringmq_nats::Bridge::publisher`]; from
//!   the first publish to the stage's receipt for the last message (every message acknowledged
//!   by JetStream).
//! - `raw-out`: async-nats alone, the same discipline at the bridge's largest batch: 1024
//!   publishes sent, then their 1024 acknowledgements awaited, and again.
//! - `raw-out-each`: async-nats alone, each publish's acknowledgement awaited before the next (a
//!   tenth of the messages: it is that much slower).
//! - `bridge-in`: the stream pre-filled (not timed); a source on a durable consumer (default
//!   options: fetches of 256, 1024 unacknowledged at most) into a 1024-slot ring whose stage
//!   counts the bytes; until every message is acknowledged.
//! - `raw-in`: async-nats alone, the same fetches, each message acknowledged once counted.
//!
//! Printed: per configuration, the median messages/s with the lowest and highest, over all
//! trials and split by the host's placement (both floors under 100 ns: near; both over 400 ns:
//! far).

#[path = "../../../nats/tests/common/mod.rs"]
mod common;

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::pull, context::Publish};
use futures_util::StreamExt;
use ringmq::{Blocking, Builder, Consumer};
use ringmq_nats::{Bridge, SourceOptions, StreamOptions};
use ringmq_tools::cache_line_floor;

const PAYLOAD: usize = 64;
const WINDOW: usize = 1024;
const STREAM: &str = "RATE";
const SUBJECT: &str = "rate.m";
const GUARD: Duration = Duration::from_secs(300);

const CONFIGS: [&str; 5] = [
    "bridge-out",
    "raw-out",
    "raw-out-each",
    "bridge-in",
    "raw-in",
];

fn id(n: u64) -> String {
    format!("m-{n}")
}

fn payload(n: u64) -> bytes::Bytes {
    let mut p = vec![0u8; PAYLOAD];
    p[..8].copy_from_slice(&n.to_le_bytes());
    p.into()
}

fn runtime() -> tokio::runtime::Runtime {
    // The bridge's own shape: one worker thread.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Publishes `n` messages with async-nats alone, `window` sent before their acknowledgements
/// are awaited; returns the seconds it took.
async fn raw_publish(js: &jetstream::Context, n: u64, window: usize) -> f64 {
    let start = Instant::now();
    let mut acks = Vec::with_capacity(window);
    let mut next = 0;
    while next < n {
        let end = (next + window as u64).min(n);
        for m in next..end {
            let publish = Publish::build().payload(payload(m)).message_id(id(m));
            acks.push(js.send_publish(SUBJECT, publish).await.expect("send"));
        }
        for ack in acks.drain(..) {
            assert!(!ack.await.expect("ack").duplicate);
        }
        next = end;
    }
    start.elapsed().as_secs_f64()
}

/// One trial: seconds for `events` messages (a tenth for `raw-out-each`), floors before and
/// after.
fn trial(config: &str, events: u64) -> (f64, u64, f64, f64) {
    let before = cache_line_floor();
    let server = common::NatsServer::start("rate").expect("nats-server is needed");
    let url = server.url();
    let bridge = Bridge::connect(&url).unwrap();
    bridge
        .ensure_stream(StreamOptions::new(STREAM, ["rate.>"]))
        .unwrap();
    let rt = runtime();
    let js = rt.block_on(async { jetstream::new(async_nats::connect(&url).await.unwrap()) });
    if config.ends_with("-in") {
        rt.block_on(raw_publish(&js, events, WINDOW));
    }
    let (secs, n) = match config {
        "bridge-out" => (bridge_out(&bridge, events), events),
        "raw-out" => (rt.block_on(raw_publish(&js, events, WINDOW)), events),
        "raw-out-each" => (rt.block_on(raw_publish(&js, events / 10, 1)), events / 10),
        "bridge-in" => (bridge_in(&bridge, events), events),
        "raw-in" => (rt.block_on(raw_in(&js, events)), events),
        other => panic!("unknown configuration {other}"),
    };
    if config.ends_with("-out") || config == "raw-out-each" {
        assert_eq!(
            bridge.stream_messages(STREAM).unwrap(),
            n,
            "{config}: stored"
        );
    }
    drop((js, rt, bridge, server));
    (secs, n, before, cache_line_floor())
}

fn bridge_out(bridge: &Bridge, events: u64) -> f64 {
    let mut b = Builder::single_producer(1024, || 0u64, Blocking::new()).unwrap();
    let stored = b.add(bridge.publisher("jetstream", SUBJECT, |n: &u64, _| {
        (id(*n), payload(*n).to_vec())
    }));
    let (mut producer, queue) = b.build().unwrap();
    let tracker = queue.tracker(stored).unwrap();
    let start = Instant::now();
    let mut last = -1;
    for n in 0..events {
        last = producer.publish(|slot| *slot = n).unwrap();
    }
    tracker.wait_processed(last, GUARD).unwrap();
    let secs = start.elapsed().as_secs_f64();
    drop(producer);
    queue.shutdown().unwrap();
    secs
}

fn bridge_in(bridge: &Bridge, events: u64) -> f64 {
    let bytes = Arc::new(AtomicU64::new(0));
    let sink = bytes.clone();
    let mut b = Builder::single_producer(1024, || 0u64, Blocking::new()).unwrap();
    let apply = b.add(Consumer::new("apply", move |n: &u64, _, _| {
        sink.fetch_add(*n, Ordering::Relaxed);
    }));
    let (producer, queue) = b.build().unwrap();
    let start = Instant::now();
    let source = bridge
        .source(
            SourceOptions::new(STREAM, "rate-in"),
            producer,
            queue.tracker(apply).unwrap(),
            |slot: &mut u64, m| *slot = m.payload.len() as u64,
        )
        .unwrap();
    let stats = source.stats();
    let deadline = Instant::now() + GUARD;
    // Polled: the acknowledgements are the source's own; 100 us is far below the run's length.
    while stats.acked() < events {
        assert!(
            Instant::now() < deadline,
            "{} of {events} acked",
            stats.acked()
        );
        std::thread::sleep(Duration::from_micros(100));
    }
    let secs = start.elapsed().as_secs_f64();
    source.stop(Duration::from_secs(10)).unwrap();
    queue.shutdown().unwrap();
    assert_eq!(bytes.load(Ordering::Relaxed), events * PAYLOAD as u64);
    assert_eq!(stats.redelivered(), 0);
    secs
}

async fn raw_in(js: &jetstream::Context, events: u64) -> f64 {
    let start = Instant::now();
    let stream = js.get_stream(STREAM).await.unwrap();
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            "rate-in",
            pull::Config {
                durable_name: Some("rate-in".into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                max_ack_pending: 1024,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (mut acked, mut bytes) = (0u64, 0u64);
    while acked < events {
        assert!(start.elapsed() < GUARD, "{acked} of {events} acked");
        let mut messages = consumer
            .fetch()
            .max_messages(256)
            .expires(Duration::from_millis(500))
            .messages()
            .await
            .unwrap();
        while let Some(m) = messages.next().await {
            let m = m.unwrap();
            bytes += m.payload.len() as u64;
            m.ack().await.unwrap();
            acked += 1;
        }
    }
    assert_eq!(bytes, events * PAYLOAD as u64);
    start.elapsed().as_secs_f64()
}

fn placement(before: f64, after: f64) -> &'static str {
    if before < 100.0 && after < 100.0 {
        "near"
    } else if before > 400.0 && after > 400.0 {
        "far"
    } else {
        "mixed"
    }
}

fn summary(rates: &mut [f64]) -> String {
    if rates.is_empty() {
        return "-".into();
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    format!(
        "{:.0} ({:.0}..{:.0}, n={})",
        rates[rates.len() / 2],
        rates[0],
        rates[rates.len() - 1],
        rates.len()
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--trial") {
        let (secs, n, before, after) = trial(&args[2], args[3].parse().unwrap());
        println!("{secs} {n} {before} {after}");
        return;
    }
    let rounds: usize = args.get(1).map_or(5, |s| s.parse().unwrap());
    let events: u64 = args.get(2).map_or(100_000, |s| s.parse().unwrap());
    let exe = std::env::current_exe().unwrap();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    // (config, placement, messages/s)
    let mut trials: Vec<(&str, &str, f64)> = Vec::new();
    for round in 0..rounds {
        let mut order = CONFIGS.to_vec();
        for i in (1..order.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        for config in order {
            let out = Command::new(&exe)
                .args(["--trial", config, &events.to_string()])
                .output()
                .unwrap();
            assert!(out.status.success(), "{config}: {out:?}");
            let text = String::from_utf8(out.stdout).unwrap();
            let v: Vec<f64> = text
                .split_whitespace()
                .map(|s| s.parse().unwrap())
                .collect();
            let place = placement(v[2], v[3]);
            eprintln!(
                "round {round} {config:<13} {:>9.0} msg/s  floor {:.0}/{:.0} ns ({place})",
                v[1] / v[0],
                v[2],
                v[3]
            );
            trials.push((config, place, v[1] / v[0]));
        }
    }
    println!("{events} messages of {PAYLOAD} bytes, {rounds} rounds; messages/s, median (min..max, trials)");
    println!(
        "{:<13} {:>30} {:>30} {:>30}",
        "config", "all", "near", "far"
    );
    for config in CONFIGS {
        let pick = |p: Option<&str>| -> Vec<f64> {
            trials
                .iter()
                .filter(|t| t.0 == config && p.is_none_or(|p| t.1 == p))
                .map(|t| t.2)
                .collect()
        };
        println!(
            "{config:<13} {:>30} {:>30} {:>30}",
            summary(&mut pick(None)),
            summary(&mut pick(Some("near"))),
            summary(&mut pick(Some("far")))
        );
    }
}
