//! Panics never hang anyone: handler panics under each policy, and panics inside publish closures.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;

use common::*;
use ringmq::{
    Blocking, Builder, Consumer, Hook, PanicPolicy, PollState, PublishError, ShutdownError,
    Yielding,
};

/// A consumer that panics on event 5 beside a recording bystander; the producer publishes until
/// the failure reaches it (blocked on the ring the failed consumer never frees, or between
/// publishes), then the queue is shut down.
fn halts_on_panic<S: ringmq::Sequencer>(mut b: Builder<Ev, S, Blocking>) {
    let (tx, rx) = mpsc::channel();
    b.add(Consumer::new("boom", |e: &Ev, _, _| {
        if e.n == 5 {
            panic!("bad event 5");
        }
    }));
    b.add(recorder("bystander", &tx));
    let (mut p, q) = b.build().unwrap();
    let mut err = None;
    for n in 0..1_000_000 {
        if let Err(e) = p.publish(|e| fill(e, 0, n)) {
            err = Some(e);
            break;
        }
    }
    assert_eq!(
        err,
        Some(PublishError::ConsumerFailed {
            consumer: "boom".into(),
            sequence: 5
        })
    );
    match q.shutdown().unwrap_err() {
        ShutdownError::ConsumerPanicked {
            consumer,
            hook,
            sequence,
            message,
            report,
        } => {
            assert_eq!(
                (consumer.as_str(), hook, sequence, message.as_str()),
                ("boom", Hook::OnEvent, 5, "bad event 5")
            );
            assert_eq!(report.consumers.len(), 2);
            assert!(
                report.consumers[1].panic.is_none(),
                "the bystander did not panic"
            );
        }
        other => panic!("{other:?}"),
    }
    // The bystander stopped too, having seen an exact prefix (it may be ahead of `boom`).
    let seen = collect(&rx, 1);
    let got = &seen["bystander"];
    assert!(got.iter().enumerate().all(|(i, s)| s.0 == i as i64));
    assert!(
        got.len() <= 5 + 8,
        "the producer cannot get more than a ring ahead"
    );
}

#[test]
fn a_handler_panic_halts_the_queue_and_producers_learn_why() {
    with_timeout(60, || {
        halts_on_panic(Builder::single_producer(8, Ev::default, Blocking::new()).unwrap());
        halts_on_panic(Builder::multi_producer(8, Ev::default, Blocking::new()).unwrap());
    });
}

#[test]
fn skip_event_policy_skips_only_the_failed_events() {
    with_timeout(60, || {
        let count = scaled(1_000);
        let (tx, rx) = mpsc::channel();
        let mut b = Builder::multi_producer(16, Ev::default, Yielding).unwrap();
        let flaky = b.add(
            Consumer::exclusive("flaky", |e: &mut Ev, _, _| {
                if e.n == 5 || e.n == 7 {
                    panic!("transient");
                }
                e.enriched = 1;
            })
            .panic_policy(PanicPolicy::SkipEvent),
        );
        b.add_after(&[flaky], recorder("after", &tx)).unwrap();
        let (mut p, q) = b.build().unwrap();
        for n in 0..count {
            p.publish(|e| fill(e, 0, n)).unwrap();
        }
        drop(p);
        let report = q.shutdown().unwrap();
        assert_eq!(report.consumers[0].name, "flaky");
        assert_eq!(report.consumers[0].skipped, 2);
        assert_eq!(report.consumers[0].last_sequence, count as i64 - 1);
        let seen = collect(&rx, 1);
        let events = assert_exact("after", &seen["after"], count);
        for e in events {
            let skipped = e.n == 5 || e.n == 7;
            assert_eq!(e.enriched, if skipped { 0 } else { 1 }, "event {}", e.n);
        }
    });
}

#[test]
fn halt_consumer_policy_stops_one_handler_and_nobody_waits_for_it() {
    with_timeout(60, || {
        let count = scaled(5_000);
        let (tx, rx) = mpsc::channel();
        // capacity 8 and 5000 events: if the halted consumer still gated, producers would hang.
        let mut b = Builder::single_producer(8, Ev::default, Yielding).unwrap();
        let fragile = b.add(
            Consumer::new("fragile", |e: &Ev, _, _| {
                if e.n == 3 {
                    panic!("gives up");
                }
            })
            .panic_policy(PanicPolicy::HaltConsumer),
        );
        b.add(recorder("sibling", &tx));
        b.add_after(&[fragile], recorder("downstream", &tx))
            .unwrap();
        let (mut p, q) = b.build().unwrap();
        for n in 0..count {
            p.publish(|e| fill(e, 0, n)).unwrap();
        }
        drop(p);
        match q.shutdown() {
            Err(ShutdownError::ConsumerPanicked {
                consumer, sequence, ..
            }) => assert_eq!((consumer.as_str(), sequence), ("fragile", 3)),
            other => panic!("expected the panic back, got {other:?}"),
        }
        let seen = collect(&rx, 2);
        assert_exact("sibling", &seen["sibling"], count);
        assert_exact("downstream", &seen["downstream"], count);
    });
}

#[test]
fn a_panicking_factory_fails_the_queue_instead_of_hanging() {
    with_timeout(60, || {
        let mut b = Builder::single_producer(4, || 0u64, Yielding).unwrap();
        struct Journal;
        impl ringmq::EventHandler<u64> for Journal {
            fn on_event(&mut self, _: &u64, _: i64, _: bool) {}
        }
        b.add(Consumer::with_handler("broken", || -> Journal {
            panic!("cannot open the journal")
        }));
        let (mut p, q) = b.build().unwrap();
        let mut err = None;
        for n in 0..1_000_000 {
            if let Err(e) = p.publish(|e| *e = n) {
                err = Some(e);
                break;
            }
        }
        assert!(matches!(err, Some(PublishError::ConsumerFailed { .. })));
        match q.shutdown() {
            Err(ShutdownError::ConsumerPanicked { message, .. }) => {
                assert_eq!(message, "cannot open the journal")
            }
            other => panic!("{other:?}"),
        }
    });
}

#[test]
fn a_panic_in_a_publish_closure_skips_its_slot_and_propagates() {
    with_timeout(60, || {
        for multi in [false, true] {
            let (tx, rx) = mpsc::channel();
            let count = scaled(200);
            macro_rules! run {
                ($b:expr) => {{
                    let mut b = $b;
                    b.add(recorder("r", &tx));
                    let (mut p, q) = b.build().unwrap();
                    for n in 0..count {
                        if n % 10 == 3 {
                            let r = catch_unwind(AssertUnwindSafe(|| {
                                p.publish(|e| {
                                    e.n = 12345; // half-written, then...
                                    panic!("producer bug");
                                })
                            }));
                            assert!(r.is_err(), "the panic propagates to the caller");
                        } else {
                            p.publish(|e| fill(e, 0, n)).unwrap();
                        }
                    }
                    // A batch whose closure panics at index 2 of 4: 0 and 1 are delivered.
                    let r = catch_unwind(AssertUnwindSafe(|| {
                        p.publish_batch(4, |e, i| {
                            if i == 2 {
                                panic!("batch bug");
                            }
                            fill(e, 1, i as u64);
                        })
                    }));
                    assert!(r.is_err());
                    p.publish(|e| fill(e, 2, 0)).unwrap();
                    drop(p);
                    q.shutdown().unwrap();
                }};
            }
            if multi {
                run!(Builder::multi_producer(8, Ev::default, Yielding).unwrap());
            } else {
                run!(Builder::single_producer(8, Ev::default, Yielding).unwrap());
            }
            let seen = collect(&rx, 1);
            let got = &seen["r"];
            let mut expected: Vec<(i64, u32, u64)> = (0..count)
                .filter(|n| n % 10 != 3)
                .map(|n| (n as i64, 0, n))
                .collect();
            expected.push((count as i64, 1, 0));
            expected.push((count as i64 + 1, 1, 1));
            expected.push((count as i64 + 4, 2, 0));
            let got_ids: Vec<(i64, u32, u64)> =
                got.iter().map(|s| (s.0, s.1.producer, s.1.n)).collect();
            assert_eq!(got_ids, expected, "multi={multi}");
            assert!(got
                .iter()
                .all(|s| s.1.check == checksum(s.1.producer, s.1.n)));
        }
    });
}

#[test]
fn end_of_batch_lands_on_the_last_delivered_event_when_the_batch_ends_skipped() {
    with_timeout(60, || {
        let (tx, rx) = mpsc::channel();
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let mut b = Builder::single_producer(16, Ev::default, Yielding).unwrap();
        let gate = b.add(Consumer::new("gate", move |_: &Ev, seq, _| {
            if seq == 0 {
                gate_rx.recv().unwrap();
            }
        }));
        b.add_after(&[gate], recorder("r", &tx)).unwrap();
        let (mut p, q) = b.build().unwrap();
        p.publish(|e| fill(e, 0, 0)).unwrap();
        // While the gate holds event 0, publish 1..=3 with the last two skipped.
        let r = catch_unwind(AssertUnwindSafe(|| {
            p.publish_batch(3, |e, i| {
                if i == 1 {
                    panic!("skip the rest");
                }
                fill(e, 0, 1 + i as u64);
            })
        }));
        assert!(r.is_err());
        gate_tx.send(()).unwrap();
        drop(p);
        q.shutdown().unwrap();
        let seen = collect(&rx, 1);
        let got: Vec<(i64, bool)> = seen["r"].iter().map(|s| (s.0, s.2)).collect();
        // The recorder's batch is 0..=3 (or 0 then 1..=3): either way 1 ends it.
        assert_eq!(got.last(), Some(&(1, true)));
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), vec![0, 1]);
    });
}

/// A batch whose last slot its producer abandoned (the publish closure panicked): a poller, as a
/// consumer does, gives `end_of_batch` to the last event it actually hands over, passes the
/// abandoned slot without handing it, and goes on after it. (The poller's own loop once gave the
/// flag to the abandoned slot, so no delivered event carried it.) Both producer kinds, a batch
/// publish and single publishes.
#[test]
fn a_poller_ends_the_batch_at_the_last_event_it_hands_over() {
    fn run<S: ringmq::Sequencer>(mut b: Builder<u64, S, Blocking>, batched: bool) {
        let mut poller = b.add_poller(&[]).unwrap();
        let (mut p, _q) = b.build().unwrap();
        let abandoned = if batched {
            catch_unwind(AssertUnwindSafe(|| {
                p.publish_batch(3, |e, i| {
                    assert!(i < 2, "abandoned");
                    *e = 10 + i as u64;
                })
            }))
            .map(|_| ())
        } else {
            p.publish(|e| *e = 10).unwrap();
            p.publish(|e| *e = 11).unwrap();
            catch_unwind(AssertUnwindSafe(|| p.publish(|_| panic!("abandoned")))).map(|_| ())
        };
        assert!(abandoned.is_err());
        let mut seen = Vec::new();
        let state = poller.poll(|e, seq, end| {
            seen.push((seq, *e, end));
            true
        });
        assert_eq!(state, PollState::Processed(2));
        assert_eq!(seen, [(0, 10, false), (1, 11, true)]);
        // The abandoned slot was passed: nothing is left, and the next event follows it.
        assert_eq!(poller.poll(|_, _, _| true), PollState::Idle);
        assert_eq!(poller.sequence(), 2);
        p.publish(|e| *e = 13).unwrap();
        seen.clear();
        poller.poll(|e, seq, end| {
            seen.push((seq, *e, end));
            true
        });
        assert_eq!(seen, [(3, 13, true)]);
    }
    with_timeout(60, || {
        for batched in [false, true] {
            run(
                Builder::single_producer(8, || 0u64, Blocking::new()).unwrap(),
                batched,
            );
            run(
                Builder::multi_producer(8, || 0u64, Blocking::new()).unwrap(),
                batched,
            );
        }
    });
}
