//! Consumer models: work pools, pollers, stages added and removed while running, completion
//! tracking, batch retry. Every test asserts exact counts, order where order is promised, and
//! intact payloads; every test runs under a hang guard. More threads than cores: Yielding or
//! Blocking waits only.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use common::*;
use ringmq::{
    Blocking, BuildError, Builder, Consumer, PanicPolicy, PollState, PublishError, Retry,
    RetryPolicy, ShutdownError, StageError, TrackerError, WorkPool, Yielding,
};

type Handled = Arc<Mutex<Vec<Vec<(i64, Ev)>>>>;

/// A pool of `n` recording workers; worker `i` appends to `handled[i]`.
fn recording_pool(n: usize, handled: &Handled) -> WorkPool<Ev, impl ringmq::IntoProcess<Ev>> {
    handled.lock().unwrap().resize(n, Vec::new());
    let handled = handled.clone();
    WorkPool::new("pool", n, move |i| {
        let handled = handled.clone();
        Consumer::new(format!("worker-{i}"), move |e: &Ev, seq, _| {
            handled.lock().unwrap()[i].push((seq, *e));
        })
    })
}

#[test]
fn a_work_pool_handles_every_event_exactly_once() {
    with_timeout(120, || {
        let per = scaled(50_000);
        let handled: Handled = Default::default();
        let mut b = Builder::multi_producer(64, Ev::default, Yielding).unwrap();
        b.add_pool(&[], recording_pool(3, &handled).batch(8))
            .unwrap();
        let (p, q) = b.build().unwrap();
        publish_from_threads(p, 3, per);
        q.shutdown().unwrap();

        let handled = handled.lock().unwrap();
        let mut seen = HashSet::new();
        for worker in handled.iter() {
            for (seq, e) in worker {
                assert_eq!(e.check, checksum(e.producer, e.n), "torn payload at {seq}");
                assert!(seen.insert(*seq), "sequence {seq} handled twice");
            }
        }
        assert_eq!(seen.len() as u64, 3 * per, "events lost");
        assert_eq!(*seen.iter().max().unwrap(), 3 * per as i64 - 1);
        if !cfg!(miri) {
            // Load-balanced: with 150k events no worker is starved.
            for (i, worker) in handled.iter().enumerate() {
                assert!(!worker.is_empty(), "worker {i} never got an event");
            }
        }
        // Each worker sees its own events in sequence order (claims are increasing).
        for worker in handled.iter() {
            assert!(worker.windows(2).all(|w| w[0].0 < w[1].0));
        }
    });
}

#[test]
fn a_stage_after_a_pool_sees_each_event_after_its_worker_wrote_it() {
    with_timeout(120, || {
        let events = scaled(100_000);
        let (tx, rx) = mpsc::channel();
        let mut b = Builder::single_producer(8, Ev::default, Yielding).unwrap();
        let pool = b
            .add_pool(
                &[],
                WorkPool::new("enrich", 2, |i| {
                    Consumer::exclusive(format!("enrich-{i}"), |e: &mut Ev, _, _| {
                        e.enriched = e.check
                    })
                })
                .batch(4),
            )
            .unwrap();
        b.add_after(&[pool], recorder("after", &tx)).unwrap();
        let (mut p, q) = b.build().unwrap();
        for n in 0..events {
            p.publish(|e| fill(e, 0, n)).unwrap();
        }
        drop(p);
        q.shutdown().unwrap();
        let seen = collect(&rx, 1);
        let evs = assert_exact("after", &seen["after"], events);
        for (i, e) in evs.iter().enumerate() {
            assert_eq!(e.n, i as u64);
            assert_eq!(
                e.enriched, e.check,
                "event {i} reached the next stage unenriched"
            );
        }
    });
}

#[test]
fn a_pool_worker_that_halts_retires_and_the_others_take_the_load() {
    with_timeout(120, || {
        let events = scaled(20_000);
        let handled = Arc::new(AtomicU64::new(0));
        let (tx, rx) = mpsc::channel();
        let mut b = Builder::single_producer(16, Ev::default, Blocking::new()).unwrap();
        let h = handled.clone();
        let pool = b
            .add_pool(
                &[],
                WorkPool::new("pool", 2, move |i| {
                    let h = h.clone();
                    Consumer::new(format!("w{i}"), move |e: &Ev, _, _| {
                        if i == 0 && e.n >= 10 {
                            panic!("worker 0 is broken");
                        }
                        h.fetch_add(1, Ordering::Relaxed);
                    })
                    .panic_policy(PanicPolicy::HaltConsumer)
                })
                .batch(2),
            )
            .unwrap();
        b.add_after(&[pool], recorder("after", &tx)).unwrap();
        let (mut p, q) = b.build().unwrap();
        for n in 0..events {
            p.publish(|e| fill(e, 0, n)).unwrap();
        }
        drop(p);
        let err = q.shutdown();
        let seen = collect(&rx, 1);
        // The stage after the pool saw everything, in order: nothing held back, nothing overtaken.
        assert_exact("after", &seen["after"], events);
        match err {
            Err(ShutdownError::ConsumerPanicked { consumer, .. }) => assert_eq!(consumer, "w0"),
            other => {
                // Worker 0 may never have been given an event at or after 10.
                assert!(other.is_ok(), "{other:?}");
                assert_eq!(handled.load(Ordering::Relaxed), events);
                return;
            }
        }
        // Handled by a worker, or passed by the retiring one (the panicked event and the rest of
        // its claim): at most one claim of 2 is lost, the rest is handled by worker 1.
        let handled = handled.load(Ordering::Relaxed);
        assert!(
            handled >= events - 2 && handled <= events,
            "handled {handled}"
        );
    });
}

#[test]
fn a_poller_hands_over_in_order_and_reports_gated_idle_and_closed() {
    with_timeout(60, || {
        let release = Arc::new(AtomicBool::new(false));
        let r = release.clone();
        let mut b = Builder::single_producer(16, Ev::default, Yielding).unwrap();
        let slow = b.add(Consumer::new("slow", move |_: &Ev, _, _| {
            while !r.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
        }));
        let pid = b.add_poller(&[slow]).unwrap();
        let (mut p, q) = b.build().unwrap();
        let mut poller = pid;

        assert_eq!(poller.poll(|_, _, _| true), PollState::Idle);
        for n in 0..10 {
            p.publish(|e| fill(e, 0, n)).unwrap();
        }
        // Published, but the stage before the poller holds them.
        assert_eq!(poller.poll(|_, _, _| true), PollState::Gated);
        release.store(true, Ordering::Release);
        let mut seen = Vec::new();
        // Bounded: at most 4 per poll, and the closure may stop early.
        while seen.len() < 10 {
            match poller.poll_timeout(Duration::from_secs(10), |e, seq, _| {
                assert_eq!(e.check, checksum(e.producer, e.n));
                seen.push(seq);
                seq != 5
            }) {
                PollState::Processed(n) => assert!(n <= 10),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(seen, (0..10).collect::<Vec<i64>>());
        assert_eq!(poller.sequence(), 9);
        assert_eq!(poller.poll_n(4, |_, _, _| true), PollState::Idle);
        drop(p);
        q.shutdown().unwrap();
        assert_eq!(poller.poll(|_, _, _| true), PollState::Closed);
    });
}

#[test]
fn poll_n_hands_at_most_n() {
    with_timeout(60, || {
        let mut b = Builder::single_producer(16, || 0u64, Yielding).unwrap();
        let pid = b.add_poller(&[]).unwrap();
        let (mut p, q) = b.build().unwrap();
        let mut poller = pid;
        for i in 0..10 {
            p.publish(|s| *s = i).unwrap();
        }
        let mut got = Vec::new();
        assert_eq!(
            poller.poll_n(4, |v, _, _| {
                got.push(*v);
                true
            }),
            PollState::Processed(4)
        );
        assert_eq!(got, [0, 1, 2, 3]);
        assert_eq!(poller.poll(|_, _, _| true), PollState::Processed(6));
        drop(p);
        q.shutdown().unwrap();
    });
}

#[test]
fn dropping_a_poller_releases_producers() {
    with_timeout(60, || {
        let mut b = Builder::single_producer(4, || 0u64, Yielding).unwrap();
        b.add(Consumer::new("fast", |_: &u64, _, _| {}));
        let pid = b.add_poller(&[]).unwrap();
        let (mut p, q) = b.build().unwrap();
        let poller = pid;
        for i in 0..4 {
            p.publish(|s| *s = i).unwrap();
        }
        // The unpolled poller holds the ring full.
        assert_eq!(p.try_publish(|s| *s = 4), Err(PublishError::Full));
        drop(poller);
        for i in 4..1000 {
            p.publish(|s| *s = i).unwrap();
        }
        drop(p);
        q.shutdown().unwrap();
    });
}

/// A consumer added while a producer thread publishes sees a contiguous run of events starting
/// at its first sequence, each intact (no slot overwritten before it read it); removed, it stops
/// gating: producers go on through a tiny ring. Repeated, so joins land at every point of a lap.
#[test]
fn consumers_added_and_removed_while_publishing_lose_nothing() {
    with_timeout(180, || {
        let rounds = if cfg!(miri) { 2 } else { 40 };
        let mut b = Builder::single_producer(8, Ev::default, Yielding).unwrap();
        let (tx, rx) = mpsc::channel();
        b.add(recorder("base", &tx));
        let (mut p, mut q) = b.build().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let producer = std::thread::spawn(move || {
            let mut n = 0;
            while !s.load(Ordering::Relaxed) {
                p.publish(|e| fill(e, 0, n)).unwrap();
                n += 1;
            }
            n
        });
        for round in 0..rounds {
            let seen: Arc<Mutex<Vec<(i64, Ev)>>> = Default::default();
            let sn = seen.clone();
            let id = q
                .add_after(
                    &[],
                    Consumer::new(format!("dyn-{round}"), move |e: &Ev, seq, _| {
                        sn.lock().unwrap().push((seq, *e))
                    }),
                )
                .unwrap();
            let first = q.first_sequence(id).unwrap();
            q.tracker(id)
                .unwrap()
                .wait_processed(first + 50, Duration::from_secs(30))
                .unwrap();
            let report = q.remove(id).unwrap();
            assert_eq!(report.consumers.len(), 1);
            let seen = seen.lock().unwrap();
            assert!(seen.len() > 50);
            for (i, (seq, e)) in seen.iter().enumerate() {
                assert_eq!(*seq, first + i as i64, "round {round}: gap or duplicate");
                assert_eq!(
                    e.n, *seq as u64,
                    "round {round}: slot overwritten before read"
                );
                assert_eq!(e.check, checksum(e.producer, e.n));
            }
            assert_eq!(report.consumers[0].last_sequence, seen.last().unwrap().0);
            assert!(matches!(q.remove(id), Err(StageError::Removed { .. })));
        }
        stop.store(true, Ordering::Relaxed);
        let published = producer.join().unwrap();
        q.shutdown().unwrap();
        let all = collect(&rx, 1);
        assert_exact("base", &all["base"], published);
    });
}

#[test]
fn a_stage_added_after_another_runs_behind_it_and_a_pool_can_join() {
    with_timeout(120, || {
        let mut b = Builder::multi_producer(16, Ev::default, Blocking::new()).unwrap();
        let first = b.add(Consumer::exclusive("enrich", |e: &mut Ev, _, _| {
            e.enriched = e.check
        }));
        let (mut p, mut q) = b.build().unwrap();
        for n in 0..100 {
            p.publish(|e| fill(e, 0, n)).unwrap();
        }
        let bad = Arc::new(AtomicU64::new(0));
        let count = Arc::new(AtomicU64::new(0));
        let (bd, ct) = (bad.clone(), count.clone());
        let pool = q
            .add_pool(
                &[first],
                WorkPool::new("check", 3, move |i| {
                    let (bd, ct) = (bd.clone(), ct.clone());
                    Consumer::new(format!("check-{i}"), move |e: &Ev, _, _| {
                        if e.enriched != e.check {
                            bd.fetch_add(1, Ordering::Relaxed);
                        }
                        ct.fetch_add(1, Ordering::Relaxed);
                    })
                }),
            )
            .unwrap();
        let start = q.first_sequence(pool).unwrap();
        assert!(
            start >= 100,
            "joined before events published earlier: {start}"
        );
        let per = scaled(5_000);
        publish_from_threads(p, 2, per);
        let end = 100 + 2 * per as i64 - 1;
        q.shutdown().unwrap();
        assert_eq!(
            bad.load(Ordering::Relaxed),
            0,
            "read before the upstream stage"
        );
        assert_eq!(count.load(Ordering::Relaxed) as i64, end - start + 1);
    });
}

#[test]
fn graph_changes_refuse_what_would_lose_events() {
    with_timeout(60, || {
        let mut b = Builder::single_producer(16, || 0u64, Yielding).unwrap();
        let a = b.add(Consumer::new("a", |_: &u64, _, _| {}));
        b.add_after(&[a], Consumer::new("b", |_: &u64, _, _| {}))
            .unwrap();
        // A poller has no StageId: nothing can be placed after it (the types say so).
        let pid = b.add_poller(&[]).unwrap();
        let (p, mut q) = b.build().unwrap();
        let err = q.remove(a).unwrap_err();
        assert!(matches!(err, StageError::HasDependents { .. }));
        assert!(err.to_string().contains("remove `b` first"), "{err}");
        // A concurrent exclusive stage is refused at runtime too.
        assert!(matches!(
            q.add(Consumer::exclusive("x", |_: &mut u64, _, _| {})),
            Err(BuildError::NotExclusive { .. })
        ));
        drop(pid);
        drop(p); // closes the queue
        assert_eq!(
            q.add(Consumer::new("late", |_: &u64, _, _| {}))
                .unwrap_err(),
            BuildError::NotRunning
        );
        q.shutdown().unwrap();
    });
}

#[test]
fn trackers_report_when_a_stage_and_the_graph_processed_a_sequence() {
    with_timeout(60, || {
        let gate = Arc::new(AtomicBool::new(false));
        let g = gate.clone();
        let mut b = Builder::single_producer(16, || 0u64, Blocking::new()).unwrap();
        let fast = b.add(Consumer::new("fast", |_: &u64, _, _| {}));
        let slow = b.add(Consumer::new("slow", move |_: &u64, _, _| {
            while !g.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
        }));
        let (mut p, mut q) = b.build().unwrap();
        let (fast_t, slow_t, all) = (
            q.tracker(fast).unwrap(),
            q.tracker(slow).unwrap(),
            p.tracker(),
        );
        let seq = p.publish(|s| *s = 1).unwrap();
        fast_t.wait_processed(seq, Duration::from_secs(10)).unwrap();
        assert!(!slow_t.is_processed(seq));
        assert!(!all.is_processed(seq));
        assert_eq!(
            all.wait_processed(seq, Duration::from_millis(20)),
            Err(TrackerError::Timeout)
        );
        gate.store(true, Ordering::Release);
        all.wait_processed(seq, Duration::from_secs(10)).unwrap();
        assert!(slow_t.is_processed(seq) && all.processed() >= seq);
        // A removed stage's tracker says so instead of waiting forever.
        q.remove(slow).unwrap();
        assert!(matches!(
            slow_t.wait_processed(seq + 1, Duration::from_secs(10)),
            Err(TrackerError::StageRemoved { .. })
        ));
        drop(p);
        q.shutdown().unwrap();
        // Past what shutdown drained: never.
        assert_eq!(
            fast_t.wait_processed(seq + 1, Duration::from_secs(10)),
            Err(TrackerError::Shutdown)
        );
    });
}

#[test]
fn a_failed_batch_is_replayed_and_the_consumer_does_not_move_meanwhile() {
    with_timeout(60, || {
        let attempts = Arc::new(AtomicU64::new(0));
        let passed_downstream_early = Arc::new(AtomicBool::new(false));
        let a = attempts.clone();
        let mut b = Builder::single_producer(16, || 0u64, Yielding).unwrap();
        let db = b.add(
            Consumer::fallible("db", move |v: &u64, _, _| {
                // Event 3 fails twice, then goes through.
                if *v == 3 && a.fetch_add(1, Ordering::SeqCst) < 2 {
                    return Err(Retry::new("deadlock detected"));
                }
                Ok(())
            })
            .retry(RetryPolicy::new(5, Duration::from_millis(1))),
        );
        let (tx, rx) = mpsc::channel();
        let (at, early) = (attempts.clone(), passed_downstream_early.clone());
        b.add_after(
            &[db],
            Consumer::new("after", move |v: &u64, _, _| {
                if *v == 3 && at.load(Ordering::SeqCst) < 3 {
                    early.store(true, Ordering::SeqCst);
                }
                tx.send(*v).unwrap();
            }),
        )
        .unwrap();
        let (mut p, q) = b.build().unwrap();
        // One batch: publish 0..8 at once.
        p.publish_batch(8, |s, i| *s = i as u64).unwrap();
        drop(p);
        q.shutdown().unwrap();
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
        assert!(!passed_downstream_early.load(Ordering::SeqCst));
        assert_eq!(
            rx.try_iter().collect::<Vec<_>>(),
            (0..8).collect::<Vec<_>>()
        );
    });
}

#[test]
fn a_batch_that_keeps_failing_goes_to_the_panic_policy() {
    with_timeout(60, || {
        let mut b = Builder::single_producer(16, || 0u64, Yielding).unwrap();
        let replays = Arc::new(AtomicU64::new(0));
        let r = replays.clone();
        b.add(
            Consumer::fallible("db", move |v: &u64, _, _| {
                if *v == 2 {
                    r.fetch_add(1, Ordering::SeqCst);
                    return Err(Retry::new("disk full"));
                }
                Ok(())
            })
            .retry(RetryPolicy::new(2, Duration::from_millis(1))),
        );
        let (mut p, q) = b.build().unwrap();
        p.publish_batch(4, |s, i| *s = i as u64).unwrap();
        drop(p);
        match q.shutdown() {
            Err(ShutdownError::ConsumerPanicked {
                consumer,
                sequence,
                message,
                ..
            }) => {
                assert_eq!((consumer.as_str(), sequence), ("db", 2));
                assert!(message.contains("disk full") && message.contains("2 replays"));
            }
            other => panic!("expected the failure, got {other:?}"),
        }
        assert_eq!(
            replays.load(Ordering::SeqCst),
            3,
            "first try and two replays"
        );
    });
}
