//! Exact delivery: every consumer sees every published sequence exactly once, in order, with the
//! producer's payload, across strategies, capacities and graph shapes.

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{mpsc, Arc};

use common::*;
use ringmq::{
    Blocking, Builder, BusySpin, Consumer, PollingWait, Sleeping, WaitStrategy, Yielding,
};

fn single_producer_multicast<W: WaitStrategy>(wait: W, capacity: usize, count: u64) {
    single_producer_to(wait, capacity, count, &["a", "b"]);
}

fn single_producer_to<W: WaitStrategy>(wait: W, capacity: usize, count: u64, names: &[&str]) {
    let (tx, rx) = mpsc::channel();
    let mut b = Builder::single_producer(capacity, Ev::default, wait).unwrap();
    for name in names {
        b.add(recorder(name, &tx));
    }
    let (mut producer, queue) = b.build().unwrap();
    for n in 0..count {
        let seq = producer.publish(|e| fill(e, 0, n)).unwrap();
        assert_eq!(seq, n as i64);
    }
    drop(producer);
    let report = queue.shutdown().unwrap();
    assert!(report
        .consumers
        .iter()
        .all(|c| c.last_sequence == count as i64 - 1));
    let seen = collect(&rx, names.len());
    for name in names {
        let events = assert_exact(name, &seen[*name], count);
        assert!(events.iter().enumerate().all(|(i, e)| e.n == i as u64));
    }
}

#[test]
fn single_producer_exact_delivery_with_every_wait_strategy() {
    with_timeout(120, || {
        // Busy-spinning only with one consumer: the producer and one spinner fit two cores.
        single_producer_to(BusySpin, 64, scaled(20_000), &["spinner"]);
        single_producer_multicast(Yielding, 64, scaled(200_000));
        single_producer_multicast(Sleeping::default(), 64, scaled(50_000));
        let nap = std::time::Duration::from_micros(20);
        single_producer_multicast(Sleeping::immediate(nap), 64, scaled(20_000));
        single_producer_multicast(Blocking::new(), 64, scaled(200_000));
    });
}

#[test]
fn wrap_around_many_laps_with_tiny_rings() {
    with_timeout(120, || {
        for capacity in [1, 2, 4] {
            single_producer_multicast(Yielding, capacity, scaled(20_000));
            multi_producer_fifo(Yielding, capacity, 2, scaled(10_000));
            multi_producer_fifo(Blocking::new(), capacity, 3, scaled(5_000));
        }
    });
}

fn multi_producer_fifo<W: WaitStrategy>(wait: W, capacity: usize, producers: u32, per: u64) {
    let (tx, rx) = mpsc::channel();
    let mut b = Builder::multi_producer(capacity, Ev::default, wait).unwrap();
    b.add(recorder("a", &tx));
    b.add(recorder("b", &tx));
    let (producer, queue) = b.build().unwrap();
    publish_from_threads(producer, producers, per);
    queue.shutdown().unwrap();
    let seen = collect(&rx, 2);
    let total = per * producers as u64;
    let a = assert_exact("a", &seen["a"], total);
    let b = assert_exact("b", &seen["b"], total);
    // Every multicast consumer sees the one total order.
    assert_eq!(a, b);
    // Per-producer FIFO, no loss, no duplicate.
    let mut next = vec![0u64; producers as usize];
    for e in &a {
        assert_eq!(
            e.n, next[e.producer as usize],
            "producer {} out of order",
            e.producer
        );
        next[e.producer as usize] += 1;
    }
    assert!(next.iter().all(|&n| n == per));
}

#[test]
fn multi_producer_per_producer_fifo() {
    with_timeout(120, || {
        // Three producers and two consumers on two cores: waits must yield or block.
        multi_producer_fifo(Yielding, 64, 3, scaled(50_000));
        multi_producer_fifo(Blocking::new(), 64, 3, scaled(50_000));
        multi_producer_fifo(Sleeping::default(), 16, 2, scaled(5_000));
    });
}

#[test]
fn backpressure_slow_consumer_never_sees_an_overwritten_slot() {
    with_timeout(120, || {
        let count = scaled(20_000);
        let (tx, rx) = mpsc::channel();
        let mut b = Builder::single_producer(4, Ev::default, Yielding).unwrap();
        // A slow consumer: it yields on every event, so the producer is always waiting for room.
        // If the producer ever overwrote a slot the consumer had not finished, the consumer would
        // see the next lap's number, or a torn checksum.
        let slow = b.add(Consumer::new("slow", |e: &Ev, seq, _| {
            assert_eq!(e.n, seq as u64, "slot overwritten before it was consumed");
            let before = *e;
            std::thread::yield_now();
            assert_eq!(*e, before, "slot changed while being consumed");
        }));
        b.add_after(&[slow], recorder("after", &tx)).unwrap();
        let (mut producer, queue) = b.build().unwrap();
        for n in 0..count {
            producer.publish(|e| fill(e, 0, n)).unwrap();
            assert!(producer.remaining_capacity() <= 4);
        }
        drop(producer);
        queue.shutdown().unwrap();
        let seen = collect(&rx, 1);
        assert_exact("after", &seen["after"], count);
    });
}

#[test]
fn pipeline_stages_see_upstream_writes_and_never_run_ahead() {
    with_timeout(120, || {
        let count = scaled(100_000);
        let (tx, rx) = mpsc::channel();
        let stage1_done = Arc::new(AtomicI64::new(-1));
        let mut b = Builder::multi_producer(32, Ev::default, Yielding).unwrap();
        let done = stage1_done.clone();
        let enrich = b.add(Consumer::exclusive("enrich", move |e: &mut Ev, seq, _| {
            e.enriched = e.check ^ 0xFF;
            done.store(seq, Ordering::Relaxed);
        }));
        let done = stage1_done.clone();
        let check = b
            .add_after(
                &[enrich],
                Consumer::new("check", move |e: &Ev, seq, _| {
                    assert_eq!(e.enriched, e.check ^ 0xFF, "stage 2 missed stage 1's write");
                    assert!(
                        done.load(Ordering::Relaxed) >= seq,
                        "stage 2 ran ahead of stage 1"
                    );
                }),
            )
            .unwrap();
        b.add_after(&[check], recorder("last", &tx)).unwrap();
        let (mut producer, queue) = b.build().unwrap();
        for n in 0..count {
            producer.publish(|e| fill(e, 0, n)).unwrap();
        }
        drop(producer);
        queue.shutdown().unwrap();
        let seen = collect(&rx, 1);
        let events = assert_exact("last", &seen["last"], count);
        assert!(events.iter().all(|e| e.enriched == e.check ^ 0xFF));
    });
}

#[test]
fn diamond_joins_after_both_branches() {
    with_timeout(120, || {
        let count = scaled(100_000);
        let (tx, rx) = mpsc::channel();
        let left_done = Arc::new(AtomicI64::new(-1));
        let right_done = Arc::new(AtomicI64::new(-1));
        let mut b = Builder::single_producer(64, Ev::default, Blocking::new()).unwrap();
        let l = left_done.clone();
        let left = b.add(Consumer::new("left", move |_: &Ev, seq, _| {
            l.store(seq, Ordering::Relaxed)
        }));
        let r = right_done.clone();
        let right = b.add(Consumer::new("right", move |_: &Ev, seq, _| {
            r.store(seq, Ordering::Relaxed)
        }));
        let (l, r) = (left_done.clone(), right_done.clone());
        let join = b
            .add_after(
                &[left, right],
                Consumer::exclusive("join", move |e: &mut Ev, seq, _| {
                    assert!(l.load(Ordering::Relaxed) >= seq && r.load(Ordering::Relaxed) >= seq);
                    e.enriched = 1;
                }),
            )
            .unwrap();
        b.add_after(&[join], recorder("out", &tx)).unwrap();
        let (mut producer, queue) = b.build().unwrap();
        for n in 0..count {
            producer.publish(|e| fill(e, 0, n)).unwrap();
        }
        drop(producer);
        queue.shutdown().unwrap();
        let seen = collect(&rx, 1);
        let events = assert_exact("out", &seen["out"], count);
        assert!(events.iter().all(|e| e.enriched == 1));
    });
}

#[test]
fn batch_publish_in_bursts() {
    with_timeout(120, || {
        for multi in [false, true] {
            let (tx, rx) = mpsc::channel();
            let bursts = scaled(5_000);
            let capacity = 16usize;
            let mut total = 0u64;
            let published = if multi {
                let mut b = Builder::multi_producer(capacity, Ev::default, Yielding).unwrap();
                b.add(recorder("r", &tx));
                let (mut p, q) = b.build().unwrap();
                for i in 0..bursts {
                    let n = (i as usize % capacity) + 1;
                    let base = total;
                    let seqs = p
                        .publish_batch(n, |e, k| fill(e, 0, base + k as u64))
                        .unwrap();
                    assert_eq!(seqs, base as i64..(base + n as u64) as i64);
                    total += n as u64;
                }
                drop(p);
                q.shutdown().unwrap();
                total
            } else {
                let mut b = Builder::single_producer(capacity, Ev::default, Yielding).unwrap();
                b.add(recorder("r", &tx));
                let (mut p, q) = b.build().unwrap();
                for i in 0..bursts {
                    let n = (i as usize % capacity) + 1;
                    let base = total;
                    let seqs = p
                        .publish_batch(n, |e, k| fill(e, 0, base + k as u64))
                        .unwrap();
                    assert_eq!(seqs, base as i64..(base + n as u64) as i64);
                    total += n as u64;
                }
                assert!(p
                    .publish_batch(0, |_, _| unreachable!())
                    .unwrap()
                    .is_empty());
                drop(p);
                q.shutdown().unwrap();
                total
            };
            let seen = collect(&rx, 1);
            let events = assert_exact("r", &seen["r"], published);
            assert!(events.iter().enumerate().all(|(i, e)| e.n == i as u64));
        }
    });
}

#[test]
fn max_batch_caps_batches_and_batch_hooks_add_up() {
    /// (batch_len, queue_depth) per batch, events, end_of_batch flags.
    type Report = (Vec<(i64, i64)>, u64, u64);
    struct Batches {
        tx: mpsc::Sender<Report>,
        batches: Vec<(i64, i64)>,
        events: u64,
        ends: u64,
    }
    impl ringmq::EventHandler<Ev> for Batches {
        fn on_event(&mut self, _: &Ev, _: i64, end_of_batch: bool) {
            self.events += 1;
            self.ends += end_of_batch as u64;
        }
        fn on_batch_start(&mut self, batch_len: i64, queue_depth: i64) {
            self.batches.push((batch_len, queue_depth));
        }
        fn on_shutdown(&mut self) {
            let _ = self
                .tx
                .send((std::mem::take(&mut self.batches), self.events, self.ends));
        }
    }
    with_timeout(60, || {
        let count = scaled(50_000);
        let (tx, rx) = mpsc::channel();
        let mut b = Builder::single_producer(256, Ev::default, Yielding).unwrap();
        b.add(
            Consumer::with_handler("batches", move || Batches {
                tx,
                batches: vec![],
                events: 0,
                ends: 0,
            })
            .max_batch(3)
            .wait_strategy(PollingWait::Yielding),
        );
        let (mut producer, queue) = b.build().unwrap();
        for n in 0..count {
            producer.publish(|e| fill(e, 0, n)).unwrap();
        }
        drop(producer);
        queue.shutdown().unwrap();
        let (batches, events, ends) = rx.recv().unwrap();
        assert_eq!(events, count);
        assert_eq!(ends, batches.len() as u64, "one end_of_batch per batch");
        assert!(batches
            .iter()
            .all(|&(len, depth)| (1..=3).contains(&len) && depth >= len));
        assert_eq!(batches.iter().map(|b| b.0 as u64).sum::<u64>(), count);
    });
}

/// Publishes `count` events through a slow stage while the producer stays alive, shuts down, and
/// checks that everything was drained and later publishes are refused.
fn drains_before_shutdown<S: ringmq::Sequencer>(mut b: Builder<Ev, S, Blocking>, count: u64) {
    let (tx, rx) = mpsc::channel();
    // A slow consumer, so most events are still in the ring when shutdown starts.
    let slow = b.add(Consumer::new("slow", |_: &Ev, _, _| {
        std::thread::yield_now()
    }));
    b.add_after(&[slow], recorder("r", &tx)).unwrap();
    let (mut p, q) = b.build().unwrap();
    for n in 0..count {
        p.publish(|e| fill(e, 0, n)).unwrap();
    }
    // The producer is still alive: shutdown closes the queue itself.
    let report = q.shutdown().unwrap();
    assert!(report
        .consumers
        .iter()
        .all(|c| c.last_sequence == count as i64 - 1));
    let refused = Err(ringmq::PublishError::Shutdown);
    assert_eq!(p.publish(|e| fill(e, 0, 0)), refused);
    assert_eq!(p.try_publish_batch(2, |_, _| {}).map(|_| 0), refused);
    let seen = collect(&rx, 1);
    assert_exact("r", &seen["r"], count);
}

#[test]
fn shutdown_drains_everything_published_before_it() {
    with_timeout(60, || {
        let count = scaled(10_000);
        drains_before_shutdown(
            Builder::single_producer(1024, Ev::default, Blocking::new()).unwrap(),
            count,
        );
        drains_before_shutdown(
            Builder::multi_producer(1024, Ev::default, Blocking::new()).unwrap(),
            count,
        );
    });
}

#[test]
fn dropping_the_last_producer_drains_and_stops_consumers() {
    with_timeout(60, || {
        let count = scaled(10_000);
        let (tx, rx) = mpsc::channel();
        let mut b = Builder::multi_producer(64, Ev::default, Yielding).unwrap();
        b.add(recorder("r", &tx));
        let (producer, queue) = b.build().unwrap();
        publish_from_threads(producer, 2, count);
        // The consumer drains and stops by itself: its on_shutdown report arrives before we ask.
        let seen = collect(&rx, 1);
        assert_exact("r", &seen["r"], 2 * count);
        assert!(!queue.is_running());
        queue.shutdown().unwrap();
    });
}

#[test]
fn monitoring_cursor_and_remaining_capacity() {
    with_timeout(60, || {
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let mut b = Builder::single_producer(8, Ev::default, Yielding).unwrap();
        b.add(Consumer::new("gated", move |_: &Ev, seq, _| {
            if seq == 0 {
                gate_rx.recv().unwrap();
            }
        }));
        let (mut p, q) = b.build().unwrap();
        assert_eq!(p.capacity(), 8);
        assert_eq!(p.cursor(), -1);
        assert_eq!(p.remaining_capacity(), 8);
        for n in 0..5 {
            p.publish(|e| fill(e, 0, n)).unwrap();
        }
        assert_eq!(p.cursor(), 4);
        assert_eq!(q.cursor(), 4);
        // The consumer holds event 0, so all five are unreleased.
        assert_eq!(p.remaining_capacity(), 3);
        assert_eq!(q.remaining_capacity(), 3);
        gate_tx.send(()).unwrap();
        drop(p);
        q.shutdown().unwrap();
    });
}

#[test]
fn coalescing_consumer_delivers_exactly_and_never_holds_an_isolated_event() {
    use std::time::{Duration, Instant};
    with_timeout(120, || {
        // Exactness while it pauses often: a small ring and a minimum batch no stream reaches.
        let count = scaled(50_000);
        let (tx, rx) = mpsc::channel();
        let mut b = Builder::single_producer(64, Ev::default, Yielding).unwrap();
        b.add(recorder("coalescing", &tx).coalesce(1_000, Duration::from_micros(20)));
        let (mut producer, queue) = b.build().unwrap();
        for n in 0..count {
            producer.publish(|e| fill(e, 0, n)).unwrap();
        }
        drop(producer);
        queue.shutdown().unwrap();
        assert_exact("coalescing", &collect(&rx, 1)["coalescing"], count);

        // An event the consumer was waiting for is delivered at once, however long the pause: a
        // pause only follows an event that was already there when the consumer looked. Not
        // under miri: its clock is virtual and its scheduler makes the race below the rule, and
        // a virtual second of spinning takes far too long to interpret.
        if cfg!(miri) {
            return;
        }
        let pause = Duration::from_secs(1);
        let mut b = Builder::single_producer(64, || 0u64, Yielding).unwrap();
        b.add(Consumer::new("c", |_: &u64, _, _| {}).coalesce(1_000, pause));
        let (mut producer, queue) = b.build().unwrap();
        let receipts = producer.tracker();
        let rounds = 10;
        let start = Instant::now();
        for n in 0..rounds {
            let seq = producer.publish(|e| *e = n).unwrap();
            receipts
                .wait_processed(seq, Duration::from_secs(30))
                .unwrap();
        }
        // Each round publishes only after the previous event was handled, so the consumer was
        // (nearly always) already waiting. Paused rounds would take `rounds` seconds; allow two
        // for the race where the consumer had not looked again yet when the next event came.
        assert!(
            start.elapsed() < pause * 3,
            "isolated events were held back: {rounds} rounds took {:?}",
            start.elapsed()
        );
        drop(producer);
        queue.shutdown().unwrap();
    });
}
