//! Every error path: bad arguments, full rings, timeouts, shutdown, halt.

mod common;

use std::sync::mpsc;
use std::time::Duration;

use common::*;
use ringmq::{
    Blocking, BuildError, Builder, Consumer, PublishError, ShutdownError, Sleeping, Yielding,
};

#[test]
fn capacity_must_be_a_power_of_two_and_the_error_names_the_nearest() {
    let err = Builder::single_producer(1000, || 0u8, Yielding).unwrap_err();
    assert_eq!(
        err,
        BuildError::Capacity {
            requested: 1000,
            below: Some(512),
            above: Some(1024)
        }
    );
    assert!(err.to_string().contains("use 512 or 1024"), "{err}");
    let zero = Builder::multi_producer(0, || 0u8, Yielding).unwrap_err();
    assert!(zero.to_string().contains("use 1"), "{zero}");
    let huge = Builder::single_producer((1 << 30) + 1, || 0u8, Yielding).unwrap_err();
    assert!(huge.to_string().contains("use 1073741824"), "{huge}");
    for ok in [1, 2, 4, 1024] {
        assert!(Builder::single_producer(ok, || 0u8, Yielding).is_ok());
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "miri does not support sched_getaffinity/sched_setaffinity"
)]
fn pinning_to_a_core_that_does_not_exist_fails_at_build() {
    let mut b = Builder::single_producer(8, || 0u8, Yielding).unwrap();
    b.add(Consumer::new("pinned", |_: &u8, _, _| {}).pin_to_core(100_000));
    match b.build() {
        Err(BuildError::NoSuchCore {
            consumer,
            requested,
            available,
        }) => {
            assert_eq!(consumer, "pinned");
            assert_eq!(requested, 100_000);
            assert!(!available.contains(&100_000));
        }
        other => panic!("expected NoSuchCore, got {:?}", other.map(|_| ())),
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "miri does not support sched_getaffinity/sched_setaffinity"
)]
fn pinning_to_an_existing_core_runs_there() {
    with_timeout(30, || {
        let core = core_affinity::get_core_ids().unwrap()[0].id;
        let (tx, rx) = mpsc::channel();
        let mut b = Builder::single_producer(8, || 0u64, Yielding).unwrap();
        b.add(
            Consumer::new("pinned", move |n: &u64, _, _| {
                let name = std::thread::current().name().map(str::to_owned);
                let _ = tx.send((*n, name));
            })
            .pin_to_core(core),
        );
        let (mut p, q) = b.build().unwrap();
        p.publish(|n| *n = 9).unwrap();
        let (n, name) = rx.recv().unwrap();
        assert_eq!(n, 9);
        assert_eq!(name.as_deref(), Some("ringmq-pinned"));
        drop(p);
        q.shutdown().unwrap();
    });
}

#[test]
#[cfg_attr(
    miri,
    ignore = "miri does not support sched_getaffinity/sched_setaffinity"
)]
fn a_builder_on_a_pinned_thread_still_sees_every_core() {
    with_timeout(30, || {
        let cores = core_affinity::get_core_ids().unwrap();
        let last = cores.last().unwrap().id;
        // Pin this thread to the first core: its affinity mask now shows one core only.
        core_affinity::set_for_current(cores[0]);
        let mut b = Builder::single_producer(8, || 0u64, Yielding).unwrap();
        b.add(Consumer::new("elsewhere", |_: &u64, _, _| {}).pin_to_core(last));
        let (p, q) = b
            .build()
            .expect("a core outside the caller's mask is still a core");
        drop(p);
        q.shutdown().unwrap();
    });
}

#[test]
fn a_handle_from_another_builder_is_rejected() {
    let mut one = Builder::single_producer(8, || 0u8, Yielding).unwrap();
    let mut two = Builder::single_producer(8, || 0u8, Yielding).unwrap();
    let a = one.add(Consumer::new("a", |_: &u8, _, _| {}));
    let err = two
        .add_after(&[a], Consumer::new("b", |_: &u8, _, _| {}))
        .unwrap_err();
    assert!(matches!(err, BuildError::ForeignStage { .. }));
    assert!(err.to_string().contains("another queue"));
}

#[test]
fn a_queue_without_consumers_is_rejected() {
    let b = Builder::single_producer(8, || 0u8, Yielding).unwrap();
    assert_eq!(b.build().err(), Some(BuildError::NoConsumers));
}

#[test]
fn an_exclusive_stage_must_be_ordered_with_every_other_consumer() {
    // Exclusive beside a shared reader of the same stage: rejected.
    let mut b = Builder::single_producer(8, || 0u8, Yielding).unwrap();
    b.add(Consumer::exclusive("writer", |e: &mut u8, _, _| *e += 1));
    b.add(Consumer::new("reader", |_: &u8, _, _| {}));
    match b.build() {
        Err(BuildError::NotExclusive {
            exclusive,
            concurrent,
        }) => {
            assert_eq!(
                (exclusive.as_str(), concurrent.as_str()),
                ("writer", "reader")
            );
        }
        other => panic!("expected NotExclusive, got {:?}", other.map(|_| ())),
    }
    // A branch of a diamond that runs beside the exclusive stage: rejected.
    let mut b = Builder::single_producer(8, || 0u8, Yielding).unwrap();
    let first = b.add(Consumer::new("first", |_: &u8, _, _| {}));
    b.add_after(
        &[first],
        Consumer::exclusive("writer", |e: &mut u8, _, _| *e += 1),
    )
    .unwrap();
    b.add_after(&[first], Consumer::new("sibling", |_: &u8, _, _| {}))
        .unwrap();
    assert!(matches!(b.build(), Err(BuildError::NotExclusive { .. })));
    // Before and after it: accepted.
    let mut b = Builder::single_producer(8, || 0u8, Yielding).unwrap();
    let first = b.add(Consumer::new("first", |_: &u8, _, _| {}));
    let w = b
        .add_after(
            &[first],
            Consumer::exclusive("writer", |e: &mut u8, _, _| *e += 1),
        )
        .unwrap();
    b.add_after(&[w], Consumer::new("after", |_: &u8, _, _| {}))
        .unwrap();
    let (p, q) = b.build().unwrap();
    drop(p);
    q.shutdown().unwrap();
}

/// The gate that releases event 0, the producer, the queue, and what the consumer saw.
type Gated = (
    mpsc::Sender<()>,
    ringmq::SingleProducer<u64, Yielding>,
    ringmq::Disruptor<u64, ringmq::Single, Yielding>,
    mpsc::Receiver<Vec<u64>>,
);

/// A queue whose single consumer holds event 0 until the gate receives.
fn gated_single(capacity: usize) -> Gated {
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let (seen_tx, seen_rx) = mpsc::channel();
    struct Holder {
        gate: mpsc::Receiver<()>,
        seen: Vec<u64>,
        out: mpsc::Sender<Vec<u64>>,
    }
    impl ringmq::EventHandler<u64> for Holder {
        fn on_event(&mut self, n: &u64, seq: i64, _: bool) {
            if seq == 0 {
                self.gate.recv_timeout(Duration::from_secs(60)).unwrap();
            }
            self.seen.push(*n);
        }
        fn on_shutdown(&mut self) {
            let _ = self.out.send(std::mem::take(&mut self.seen));
        }
    }
    let mut b = Builder::single_producer(capacity, || 0u64, Yielding).unwrap();
    b.add(Consumer::with_handler("gated", move || Holder {
        gate: gate_rx,
        seen: vec![],
        out: seen_tx,
    }));
    let (p, q) = b.build().unwrap();
    (gate_tx, p, q, seen_rx)
}

/// The gate that releases event 0, the producer, the queue, and each value the consumer saw.
type GatedMulti<W> = (
    mpsc::Sender<()>,
    ringmq::MultiProducer<u64, W>,
    ringmq::Disruptor<u64, ringmq::Multi, W>,
    mpsc::Receiver<u64>,
);

/// A multi-producer ring of 2 whose consumer holds event 0 until the gate receives.
fn gated_multi<W: ringmq::WaitStrategy>(wait: W) -> GatedMulti<W> {
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let (seen_tx, seen_rx) = mpsc::channel();
    let mut b = Builder::multi_producer(2, || 0u64, wait).unwrap();
    b.add(Consumer::new("gated", move |n: &u64, seq, _| {
        if seq == 0 {
            gate_rx.recv().unwrap();
        }
        seen_tx.send(*n).unwrap();
    }));
    let (p, q) = b.build().unwrap();
    (gate_tx, p, q, seen_rx)
}

#[test]
fn try_publish_on_a_full_ring_is_full_and_timeouts_time_out() {
    with_timeout(60, || {
        let (gate, mut p, q, seen) = gated_single(4);
        for n in 0..4 {
            p.try_publish(|e| *e = n).unwrap();
        }
        assert_eq!(p.remaining_capacity(), 0);
        assert_eq!(p.try_publish(|e| *e = 99), Err(PublishError::Full));
        assert_eq!(p.try_publish_batch(2, |_, _| {}), Err(PublishError::Full));
        assert_eq!(
            p.publish_timeout(Duration::from_millis(20), |e| *e = 99),
            Err(PublishError::Timeout)
        );
        assert_eq!(
            p.publish_batch_timeout(1, Duration::from_millis(20), |_, _| {}),
            Err(PublishError::Timeout)
        );
        let too_large = p.publish_batch(5, |_, _| {}).unwrap_err();
        assert_eq!(
            too_large,
            PublishError::BatchTooLarge {
                requested: 5,
                capacity: 4
            }
        );
        assert!(too_large.to_string().contains("split it"));
        // Nothing failed left a hole: release the consumer and everything arrives.
        gate.send(()).unwrap();
        p.publish_timeout(Duration::from_secs(30), |e| *e = 4)
            .unwrap();
        drop(p);
        q.shutdown().unwrap();
        assert_eq!(seen.recv().unwrap(), vec![0, 1, 2, 3, 4]);
    });
}

#[test]
fn multi_producer_try_and_timeout_on_a_full_ring() {
    with_timeout(60, || {
        let (gate_tx, mut p, q, seen_rx) = gated_multi(Blocking::new());
        p.try_publish(|e| *e = 0).unwrap();
        p.try_publish(|e| *e = 1).unwrap();
        assert_eq!(p.try_publish(|e| *e = 9), Err(PublishError::Full));
        assert_eq!(p.try_publish_batch(1, |_, _| {}), Err(PublishError::Full));
        assert_eq!(
            p.publish_timeout(Duration::from_millis(20), |e| *e = 9),
            Err(PublishError::Timeout)
        );
        gate_tx.send(()).unwrap();
        p.publish_batch_timeout(2, Duration::from_secs(30), |e, i| *e = 2 + i as u64)
            .unwrap();
        drop(p);
        q.shutdown().unwrap();
        assert_eq!(seen_rx.iter().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    });
}

#[test]
fn a_single_producer_blocked_on_a_full_ring_is_released_by_shutdown() {
    with_timeout(60, || {
        let (gate, mut p, q, seen) = gated_single(2);
        p.publish(|e| *e = 0).unwrap();
        p.publish(|e| *e = 1).unwrap();
        // The ring is full and the consumer holds event 0: this publish waits for room.
        let blocked = std::thread::spawn(move || (p.publish(|e| *e = 2), p));
        // Shut down from another thread (it drains, so it needs the gate opened later).
        let shutdown = std::thread::spawn(move || q.shutdown());
        let (result, p) = blocked.join().unwrap();
        assert_eq!(result, Err(PublishError::Shutdown));
        gate.send(()).unwrap();
        shutdown.join().unwrap().unwrap();
        assert_eq!(seen.recv().unwrap(), vec![0, 1]);
        drop(p);
    });
}

/// A multi producer checks for room before it claims (as the single producer does), so one
/// blocked on a full ring holds no sequence: shutdown and halt both release it with `Shutdown`,
/// nothing of it is drained, and the consumers get exactly what was published before.
#[test]
fn a_blocked_multi_producer_holds_no_claim_and_is_released_by_shutdown_and_halt() {
    with_timeout(60, || {
        for halt in [false, true] {
            let (gate_tx, mut p, q, seen_rx) = gated_multi(Yielding);
            p.publish(|e| *e = 0).unwrap();
            p.publish(|e| *e = 1).unwrap();
            assert_eq!(p.remaining_capacity(), 0);
            let mut blocked_p = p.clone();
            let blocked = std::thread::spawn(move || blocked_p.publish(|e| *e = 2));
            let stopper = std::thread::spawn(move || if halt { q.halt() } else { q.shutdown() });
            // The gated consumer holds event 0 until here, so no room can have appeared: the
            // publish waited (or came after the close) and was refused either way.
            assert_eq!(blocked.join().unwrap(), Err(PublishError::Shutdown));
            assert_eq!(
                p.cursor(),
                1,
                "halt={halt}: the refused publish claimed nothing"
            );
            let _ = gate_tx.send(());
            stopper.join().unwrap().unwrap();
            let seen: Vec<u64> = seen_rx.iter().collect();
            if halt {
                assert!(seen.len() <= 2 && seen.iter().enumerate().all(|(i, &v)| v == i as u64));
            } else {
                assert_eq!(seen, vec![0, 1], "shutdown drains what was published");
            }
            assert_eq!(p.publish(|e| *e = 3), Err(PublishError::Shutdown));
        }
    });
}

#[test]
fn halt_stops_without_draining_and_refuses_publishes() {
    with_timeout(60, || {
        let (gate_tx, p, q, seen) = gated_single(64);
        let mut p = p;
        for n in 0..10 {
            p.publish(|e| *e = n).unwrap();
        }
        let halter = std::thread::spawn(move || q.halt());
        // Once halted, publishes fail; the consumer stops at its batch boundary.
        for _ in 0..1_000_000 {
            if p.publish(|e| *e = 99).is_err() {
                break;
            }
            std::thread::yield_now();
        }
        assert_eq!(p.publish(|e| *e = 99), Err(PublishError::Shutdown));
        gate_tx.send(()).unwrap();
        let report = halter.join().unwrap().unwrap();
        let got = seen.recv().unwrap();
        // The batch in progress completes; nothing after the halt is required to be delivered,
        // and nothing is delivered twice or out of order.
        // (The loop above published 99s until it saw the halt.)
        let expected: Vec<u64> = (0..got.len() as u64)
            .map(|i| if i < 10 { i } else { 99 })
            .collect();
        assert_eq!(got, expected);
        assert_eq!(report.consumers[0].last_sequence + 1, got.len() as i64);
    });
}

#[test]
fn shutdown_timeout_halts_consumers_that_do_not_drain() {
    with_timeout(60, || {
        let (gate_tx, mut p, q, _seen) = gated_single(8);
        p.publish(|e| *e = 0).unwrap();
        assert_eq!(
            q.shutdown_timeout(Duration::from_millis(50)).unwrap_err(),
            ShutdownError::Timeout
        );
        assert_eq!(p.publish(|e| *e = 1), Err(PublishError::Shutdown));
        gate_tx.send(()).unwrap();
    });
}

#[test]
fn consumer_timeout_calls_on_timeout() {
    struct T(mpsc::Sender<i64>);
    impl ringmq::EventHandler<u64> for T {
        fn on_event(&mut self, _: &u64, _: i64, _: bool) {}
        fn on_timeout(&mut self, sequence: i64) {
            let _ = self.0.send(sequence);
        }
    }
    with_timeout(60, || {
        for blocking in [false, true] {
            let (tx, rx) = mpsc::channel();
            let consumer =
                Consumer::with_handler("idle", move || T(tx)).timeout(Duration::from_millis(5));
            if blocking {
                let mut b = Builder::single_producer(8, || 0u64, Blocking::new()).unwrap();
                b.add(consumer);
                let (mut p, q) = b.build().unwrap();
                assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), -1);
                p.publish(|e| *e = 1).unwrap();
                // After event 0 is handled, the next timeout reports it.
                let mut last = -1;
                for _ in 0..10_000 {
                    last = rx.recv_timeout(Duration::from_secs(30)).unwrap();
                    if last == 0 {
                        break;
                    }
                }
                assert_eq!(last, 0);
                drop(p);
                q.shutdown().unwrap();
            } else {
                let mut b = Builder::single_producer(8, || 0u64, Sleeping::default()).unwrap();
                b.add(consumer);
                let (p, q) = b.build().unwrap();
                assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), -1);
                drop(p);
                q.shutdown().unwrap();
            }
        }
    });
}

#[test]
fn lifecycle_hooks_run_once_on_the_consumer_thread() {
    struct Hooks(mpsc::Sender<String>);
    impl ringmq::EventHandler<u64> for Hooks {
        fn on_event(&mut self, _: &u64, _: i64, _: bool) {}
        fn on_start(&mut self) {
            let name = std::thread::current().name().unwrap_or("").to_owned();
            self.0.send(format!("start@{name}")).unwrap();
        }
        fn on_shutdown(&mut self) {
            self.0.send("shutdown".into()).unwrap();
        }
    }
    with_timeout(60, || {
        let (tx, rx) = mpsc::channel();
        let mut b = Builder::single_producer(8, || 0u64, Yielding).unwrap();
        // The factory runs on the consumer thread; `Hooks` is built there.
        b.add(Consumer::with_handler("hooks", move || Hooks(tx)));
        let (p, q) = b.build().unwrap();
        drop(p);
        q.shutdown().unwrap();
        let got: Vec<String> = rx.iter().collect();
        assert_eq!(
            got,
            vec!["start@ringmq-hooks".to_owned(), "shutdown".to_owned()]
        );
    });
}

#[test]
fn errors_say_what_to_change() {
    let messages = [
        PublishError::Full.to_string(),
        PublishError::Timeout.to_string(),
        PublishError::Shutdown.to_string(),
        PublishError::ConsumerFailed {
            consumer: "x".into(),
            sequence: 3,
        }
        .to_string(),
        BuildError::NoConsumers.to_string(),
        ShutdownError::Timeout.to_string(),
    ];
    for m in &messages {
        assert!(m.len() > 30, "too terse: {m}");
    }
    assert!(messages[3].contains("`x`") && messages[3].contains("3"));
}

#[test]
fn publishing_after_shutdown_is_refused_for_both_producer_kinds() {
    with_timeout(60, || {
        let mut b = Builder::multi_producer(8, Ev::default, Yielding).unwrap();
        b.add(Consumer::new("c", |_: &Ev, _, _| {}));
        let (mut p, q) = b.build().unwrap();
        let mut other = p.clone();
        q.shutdown().unwrap();
        assert_eq!(p.publish(|e| fill(e, 0, 0)), Err(PublishError::Shutdown));
        assert_eq!(
            other.try_publish(|e| fill(e, 0, 0)),
            Err(PublishError::Shutdown)
        );
        assert_eq!(
            other.publish_timeout(Duration::from_millis(1), |e| fill(e, 0, 0)),
            Err(PublishError::Shutdown)
        );
        assert_eq!(p.publish_batch(2, |_, _| {}), Err(PublishError::Shutdown));
    });
}

#[test]
fn dropping_an_unbuilt_builder_starts_nothing() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let started = Arc::new(AtomicBool::new(false));
    struct Never;
    impl ringmq::EventHandler<u64> for Never {
        fn on_event(&mut self, _: &u64, _: i64, _: bool) {}
    }
    let s = started.clone();
    let mut b = Builder::single_producer(8, || 0u64, Yielding).unwrap();
    b.add(Consumer::with_handler("never", move || {
        s.store(true, Ordering::SeqCst);
        Never
    }));
    drop(b);
    // A consumer thread would have run the factory first thing; none was started.
    assert!(!started.load(Ordering::SeqCst));
    // Its thread name does not exist either: nothing to join, nothing left running.
    assert_eq!(
        Arc::strong_count(&started),
        1,
        "the factory (and its thread) are gone"
    );
}
