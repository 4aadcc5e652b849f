//! The counters of `Disruptor::metrics`, checked exactly against known traffic: batch shapes
//! forced by gates (a handler that holds its first event until the producer has published the
//! next ones), pollers polled by hand, planted panics and failures, a full ring.
//!
//! The per-stage and producer-side counters need the `counters` feature
//! (`cargo test --features counters --test metrics`, which CI runs); without it the tests check
//! what the snapshot always has (fill level, published count, lags, stages) and that every
//! counter reads zero.

mod common;

#[cfg(feature = "counters")]
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
#[cfg(feature = "counters")]
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::with_timeout;
use ringmq::{Blocking, Builder, Consumer, Counts, PollState, PublishError, BATCH_BUCKETS};
#[cfg(feature = "counters")]
use ringmq::{PanicPolicy, Retry, RetryPolicy};

const WAIT: Duration = Duration::from_secs(20);

fn buckets(pairs: &[(usize, u64)]) -> [u64; BATCH_BUCKETS] {
    let mut b = [0; BATCH_BUCKETS];
    for &(i, n) in pairs {
        b[i] = n;
    }
    b
}

/// A consumer's first batch is event 0 alone (its handler holds it until the producer has
/// published ten more), its second the ten: events 11, batches 2, sizes {1, 8..15}, max lag 10.
#[test]
fn a_consumers_batches_are_counted_exactly() {
    with_timeout(60, || {
        let (got_first, first_seen) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let mut b = Builder::single_producer(16, || 0u64, Blocking::new()).unwrap();
        let released = std::sync::Mutex::new(released);
        let sink = b.add(Consumer::new("sink", move |_: &u64, seq, _| {
            if seq == 0 {
                got_first.send(()).unwrap();
                released.lock().unwrap().recv().unwrap();
            }
        }));
        let started = Instant::now();
        let (mut producer, queue) = b.build().unwrap();
        producer.publish(|e| *e = 0).unwrap();
        first_seen.recv().unwrap();
        for i in 1..=10 {
            producer.publish(|e| *e = i).unwrap();
        }
        let during = queue.metrics();
        assert_eq!(during.published, 11);
        assert_eq!(during.fill, 11, "nothing released while event 0 is held");
        assert_eq!(during.stages[0].lag, 11);
        release.send(()).unwrap();
        queue
            .tracker(sink)
            .unwrap()
            .wait_processed(10, WAIT)
            .unwrap();
        let m = queue.metrics();
        let s = &m.stages[0];
        assert_eq!(
            (s.name.as_str(), s.kind, s.threads, s.live),
            ("sink", "consumer", 1, true)
        );
        assert_eq!((s.processed, s.lag, m.fill), (10, 0, 0));
        let c = s.counts;
        if cfg!(feature = "counters") {
            assert_eq!((c.events, c.batches, c.max_lag), (11, 2, 10));
            assert_eq!(c.batch_sizes, buckets(&[(0, 1), (3, 1)]));
            assert_eq!((c.skips, c.retries, c.panics), (0, 0, 0));
            // Waiting is estimated from sampled waits; with busy, it is the thread's time.
            assert!(c.waiting + c.busy <= started.elapsed() + Duration::from_millis(1));
        } else {
            assert_eq!(
                (c.events, c.batches, c.max_lag, c.waiting),
                (0, 0, 0, Duration::ZERO)
            );
        }
        let table = m.to_string();
        assert!(
            table.contains("sink") && table.contains("consumer"),
            "{table}"
        );
        drop(producer);
        queue.shutdown().unwrap();
    });
}

/// A poller polled by hand: each poll is one batch of what was there.
#[test]
fn a_pollers_batches_are_its_polls() {
    let mut b = Builder::single_producer(64, || 0u64, Blocking::new()).unwrap();
    let mut poller = b.add_poller(&[]).unwrap();
    let (mut producer, queue) = b.build().unwrap();
    for i in 0..5 {
        producer.publish(|e| *e = i).unwrap();
    }
    assert_eq!(poller.poll(|_, _, _| true), PollState::Processed(5));
    producer.publish(|e| *e = 5).unwrap();
    assert_eq!(poller.poll(|_, _, _| true), PollState::Processed(1));
    assert_eq!(poller.poll(|_, _, _| true), PollState::Idle);
    for i in 0..40 {
        producer.publish(|e| *e = i).unwrap();
    }
    // A closure that stops after 3: a batch of 3 out of the 40 found.
    let mut n = 0;
    assert_eq!(
        poller.poll(|_, _, _| {
            n += 1;
            n < 3
        }),
        PollState::Processed(3)
    );
    let m = queue.metrics();
    let s = &m.stages[0];
    assert_eq!(
        (s.kind, s.threads, s.processed, s.lag),
        ("poller", 0, 8, 37)
    );
    // A poller's events are the sequences it passed, counters or not.
    assert_eq!(s.counts.events, 9);
    if cfg!(feature = "counters") {
        assert_eq!((s.counts.batches, s.counts.max_lag), (3, 40));
        assert_eq!(s.counts.batch_sizes, buckets(&[(0, 1), (1, 1), (2, 1)]));
    }
    assert_eq!(m.fill, 37);
    drop(poller);
    let m = queue.metrics();
    assert!(!m.stages[0].live, "a dropped poller's stage is gone");
    drop(producer);
    queue.shutdown().unwrap();
}

/// Panics and replays, under each policy: skips, retries and panics are exact, and the events
/// of a batch cut short by a panic are counted.
#[test]
#[cfg(feature = "counters")]
fn skips_retries_and_panics_are_counted_exactly() {
    for policy in [PanicPolicy::SkipEvent, PanicPolicy::HaltConsumer] {
        with_timeout(60, move || {
            let mut b = Builder::single_producer(64, || 0u64, Blocking::new()).unwrap();
            let bad = b.add(
                Consumer::new("bad", |e: &u64, _, _| {
                    if *e == 3 || *e == 7 {
                        panic!("planted");
                    }
                })
                .panic_policy(policy),
            );
            // Fails event 5 twice, then takes it: two replays.
            let tries = Arc::new(AtomicU64::new(0));
            let t = tries.clone();
            let flaky = b.add(
                Consumer::fallible("flaky", move |e: &u64, _, _| {
                    if *e == 5 && t.fetch_add(1, Ordering::Relaxed) < 2 {
                        return Err(Retry::new("busy"));
                    }
                    Ok(())
                })
                .retry(RetryPolicy::new(5, Duration::ZERO)),
            );
            let (mut producer, queue) = b.build().unwrap();
            for i in 0..10 {
                producer.publish(|e| *e = i).unwrap();
            }
            queue
                .tracker(flaky)
                .unwrap()
                .wait_processed(9, WAIT)
                .unwrap();
            queue.tracker(bad).unwrap().wait_processed(9, WAIT).unwrap();
            let m = queue.metrics();
            let bad = m.stages[0].counts;
            let flaky = m.stages[1].counts;
            match policy {
                // Both planted panics skipped; all ten handed over.
                PanicPolicy::SkipEvent => {
                    assert_eq!(
                        (bad.events, bad.skips, bad.panics),
                        (10, 2, 2),
                        "{policy:?}"
                    )
                }
                // The handler stops at 3: events 0..=2 handled, the rest passed unhandled.
                _ => assert_eq!((bad.events, bad.skips, bad.panics), (3, 0, 1), "{policy:?}"),
            }
            assert_eq!((flaky.events, flaky.retries, flaky.panics), (10, 2, 0));
            drop(producer);
            let _ = queue.shutdown();
        });
    }
}

/// A work pool's workers add up to the stage: every event once.
#[test]
fn a_pools_workers_add_up() {
    with_timeout(60, || {
        let mut b = Builder::multi_producer(256, || 0u64, Blocking::new()).unwrap();
        let pool = b.add_pool(
            &[],
            ringmq::WorkPool::new("pool", 3, |w| {
                Consumer::new(format!("w{w}"), |_: &u64, _, _| {})
            }),
        );
        let pool = pool.unwrap();
        let (producer, queue) = b.build().unwrap();
        let threads: Vec<_> = (0..2u64)
            .map(|t| {
                let mut p = producer.clone();
                std::thread::spawn(move || {
                    for n in 0..5_000 {
                        p.publish(|e| *e = t << 32 | n).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        queue
            .tracker(pool)
            .unwrap()
            .wait_processed(9_999, WAIT)
            .unwrap();
        let m = queue.metrics();
        let s = &m.stages[0];
        assert_eq!((s.kind, s.threads, s.lag), ("pool", 3, 0));
        if cfg!(feature = "counters") {
            assert_eq!(s.counts.events, 10_000);
        }
        let in_buckets: u64 = s.counts.batch_sizes.iter().sum();
        assert_eq!(in_buckets, s.counts.batches);
        assert_eq!(m.published, 10_000);
        drop(producer);
        queue.shutdown().unwrap();
    });
}

/// The producer side: claims that found the ring full, and the time they then waited.
#[test]
fn a_full_ring_is_counted_on_the_producer_side() {
    let mut b = Builder::single_producer(4, || 0u64, Blocking::new()).unwrap();
    let mut poller = b.add_poller(&[]).unwrap();
    let (mut producer, queue) = b.build().unwrap();
    for i in 0..4 {
        producer.try_publish(|e| *e = i).unwrap();
    }
    assert_eq!(producer.try_publish(|e| *e = 9), Err(PublishError::Full));
    let on = u64::from(cfg!(feature = "counters"));
    let m = queue.metrics();
    assert_eq!((m.found_full, m.producers_waiting), (on, Duration::ZERO));
    assert_eq!((m.fill, m.capacity), (4, 4));
    let timeout = Duration::from_millis(5);
    assert_eq!(
        producer.publish_timeout(timeout, |e| *e = 9),
        Err(PublishError::Timeout)
    );
    let m = queue.metrics();
    assert_eq!(m.found_full, 2 * on);
    if on == 1 {
        assert!(m.producers_waiting >= timeout, "{:?}", m.producers_waiting);
    }
    // Room again: no more counted.
    assert_eq!(poller.poll(|_, _, _| true), PollState::Processed(4));
    producer.publish(|e| *e = 5).unwrap();
    assert_eq!(queue.metrics().found_full, 2 * on);
    assert_eq!(queue.metrics().published, 5);
    drop((producer, poller));
    queue.shutdown().unwrap();
}

#[test]
fn counts_default_to_zero() {
    let c = Counts::default();
    assert_eq!(c.batch_sizes, [0; BATCH_BUCKETS]);
    assert_eq!(c.waiting + c.busy, Duration::ZERO);
}

/// The export through the `metrics` facade, rendered by a Prometheus recorder local to this
/// test: names, labels and values exactly.
#[test]
#[cfg(feature = "metrics")]
fn the_export_renders_as_prometheus_series() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let scrape = recorder.handle();
    let mut b = Builder::single_producer(16, || 0u64, Blocking::new()).unwrap();
    let mut poller = b.add_poller(&[]).unwrap();
    let (mut producer, queue) = b.build().unwrap();
    for i in 0..12 {
        producer.publish(|e| *e = i).unwrap();
    }
    assert_eq!(poller.poll(|_, _, _| true), PollState::Processed(12));
    for i in 0..3 {
        producer.publish(|e| *e = i).unwrap();
    }
    metrics::with_local_recorder(&recorder, || queue.metrics().export("q"));
    let body = scrape.render();
    let labels = r#"queue="q",stage="poller-0",kind="poller""#;
    for want in [
        r#"ringmq_published_total{queue="q"} 15"#.to_string(),
        r#"ringmq_ring_fill{queue="q"} 3"#.to_string(),
        r#"ringmq_ring_capacity{queue="q"} 16"#.to_string(),
        format!("ringmq_stage_events_total{{{labels}}} 12"),
        format!("ringmq_stage_batches_total{{{labels}}} 1"),
        format!("ringmq_stage_lag{{{labels}}} 3"),
        format!("ringmq_stage_max_lag{{{labels}}} 12"),
        format!(r#"ringmq_stage_batches_by_size_total{{{labels},size="8"}} 1"#),
    ] {
        assert!(
            body.lines().any(|l| l == want),
            "missing `{want}` in:\n{body}"
        );
    }
    drop((producer, poller));
    queue.shutdown().unwrap();
}
