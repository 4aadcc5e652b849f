//! The edges of the API: extreme arguments to every method that takes a duration, a count or a
//! capacity; shutdown beside pollers in every arrangement; a queue whose last stage left; a queue
//! of pollers only dropped; shutdown and removal called from inside a handler; which failure
//! shutdown names when several workers panic; what pool workers report.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use common::*;
use ringmq::{
    Blocking, BuildError, Builder, Consumer, Disruptor, PanicPolicy, PollState, PollingWait,
    PublishError, RetryPolicy, Sequencer, ShutdownError, Sleeping, StageError, TrackerError,
    WaitStrategy, WorkPool, Yielding,
};

/// Durations at the edges: nothing, the least, a normal one, one whose deadline overflows
/// `Instant`, and the largest.
const DURATIONS: [Duration; 5] = [
    Duration::ZERO,
    Duration::from_nanos(1),
    Duration::from_millis(2),
    Duration::from_secs(u64::MAX / 2),
    Duration::MAX,
];

fn huge(d: Duration) -> bool {
    d > Duration::from_secs(1 << 40)
}

/// Every timed call with every duration, on a full ring (so the timeout matters) and then with
/// room. A deadline past what `Instant` holds means "no deadline", as with std's `Condvar` and
/// crossbeam-channel: never a panic.
fn timed_calls<S: Sequencer, W: WaitStrategy>(b: Builder<u64, S, W>) {
    let mut b = b;
    let id = b.add_poller(&[]).unwrap();
    let (mut p, q) = b.build().unwrap();
    let mut poller = id;
    for d in DURATIONS {
        // Room: each call succeeds whatever the duration.
        let s = p.publish_timeout(d, |e| *e = 1).unwrap();
        let r = p.publish_batch_timeout(2, d, |e, _| *e = 2).unwrap();
        assert_eq!(r.start, s + 1);
        assert_eq!(
            poller.poll_timeout(d, |_, _, _| true),
            PollState::Processed(3)
        );
        let tracker = q.graph_tracker();
        assert_eq!(tracker.wait_processed(r.end - 1, d), Ok(()));
        if !huge(d) {
            // Nothing to poll, nothing to wait for: the timeout passes.
            assert_eq!(poller.poll_timeout(d, |_, _, _| true), PollState::Idle);
            assert_eq!(tracker.wait_processed(r.end, d), Err(TrackerError::Timeout));
            // A full ring (capacity 4): the timed publishes time out.
            p.publish_batch(4, |e, _| *e = 3).unwrap();
            assert_eq!(p.publish_timeout(d, |e| *e = 4), Err(PublishError::Timeout));
            assert_eq!(
                p.publish_batch_timeout(1, d, |_, _| {}),
                Err(PublishError::Timeout)
            );
            assert_eq!(poller.poll(|_, _, _| true), PollState::Processed(4));
        }
    }
    // A huge timeout on a full ring waits like the untimed call: room made by another thread
    // (here, the poller polled on a helper) lets it through.
    p.publish_batch(4, |e, _| *e = 5).unwrap();
    let helper = std::thread::spawn(move || {
        let mut n = 0;
        for _ in 0..50_000_000u64 {
            if let PollState::Processed(k) = poller.poll(|_, _, _| true) {
                n += k;
                if n >= 5 {
                    break;
                }
            }
            std::thread::yield_now();
        }
        (n, poller)
    });
    p.publish_timeout(Duration::MAX, |e| *e = 6).unwrap();
    let (n, poller) = helper.join().unwrap();
    assert_eq!(n, 5);
    drop(p);
    let report = q.shutdown_timeout(Duration::MAX).unwrap();
    assert!(report.consumers.is_empty());
    drop(poller);
}

#[test]
fn every_timed_call_accepts_any_duration() {
    with_timeout(120, || {
        timed_calls(Builder::single_producer(4, || 0u64, Blocking::new()).unwrap());
        timed_calls(Builder::multi_producer(4, || 0u64, Yielding).unwrap());
        if cfg!(miri) {
            return; // the wait strategies' own sleeps add nothing miri checks
        }
        timed_calls(Builder::single_producer(4, || 0u64, Sleeping::new(Duration::MAX)).unwrap());
        timed_calls(
            Builder::multi_producer(4, || 0u64, Sleeping::immediate(Duration::ZERO)).unwrap(),
        );
    });
}

#[test]
fn shutdown_timeout_with_any_duration() {
    with_timeout(120, || {
        for d in DURATIONS {
            let (tx, rx) = mpsc::channel();
            let mut b = Builder::single_producer(8, Ev::default, Blocking::new()).unwrap();
            b.add(recorder("r", &tx));
            let (mut p, q) = b.build().unwrap();
            p.publish(|e| fill(e, 0, 0)).unwrap();
            match q.shutdown_timeout(d) {
                // A finite timeout may be too short to drain one event on a loaded machine; one
                // past what `Instant` holds is no deadline, so it must drain.
                Err(ShutdownError::Timeout) => assert!(!huge(d), "{d:?} timed out"),
                Ok(report) => assert_eq!(report.consumers[0].last_sequence, 0),
                Err(e) => panic!("{d:?}: {e}"),
            }
            drop(p);
            let seen = collect(&rx, 1);
            assert!(seen["r"].len() <= 1);
            if huge(d) {
                assert_eq!(seen["r"].len(), 1, "{d:?}: drained");
            }
        }
    });
}

/// Consumer options at their edges: every timeout (`on_timeout` runs, or never for a huge one),
/// `max_batch` from 0 to `usize::MAX`, coalescing with any count and delay, every polling wait,
/// retries with any count and pause. Each consumer gets every event exactly once, and shutdown
/// is never held up.
#[test]
fn consumer_options_at_their_edges() {
    with_timeout(120, || {
        let count = if cfg!(miri) { 24 } else { 300 };
        for (i, d) in DURATIONS.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel();
            let timeouts = Arc::new(AtomicU64::new(0));
            let mut b = Builder::multi_producer(8, Ev::default, Blocking::new()).unwrap();
            let batch = [0, 1, 7, usize::MAX / 2, usize::MAX][i];
            struct Timed(Recorder, Arc<AtomicU64>);
            impl ringmq::EventHandler<Ev> for Timed {
                fn on_event(&mut self, e: &Ev, s: i64, eob: bool) {
                    self.0.on_event(e, s, eob)
                }
                fn on_timeout(&mut self, _: i64) {
                    self.1.fetch_add(1, Ordering::Relaxed);
                }
                fn on_shutdown(&mut self) {
                    self.0.on_shutdown()
                }
            }
            let (t, txc) = (timeouts.clone(), tx.clone());
            b.add(
                Consumer::with_handler("timed", move || {
                    Timed(
                        Recorder {
                            seen: vec![],
                            tx: txc,
                            name: "timed".into(),
                        },
                        t,
                    )
                })
                .timeout(d)
                .max_batch(batch),
            );
            b.add(recorder("coalesced", &tx).coalesce(batch, d));
            b.add(recorder("retrying", &tx).retry(RetryPolicy::new(u32::MAX, d)));
            let polling = [
                PollingWait::BusySpin,
                PollingWait::Yielding,
                PollingWait::Sleeping(ringmq::Sleeping::new(Duration::ZERO)),
                PollingWait::Sleeping(ringmq::Sleeping::new(d.min(Duration::from_millis(1)))),
                PollingWait::Sleeping(ringmq::Sleeping::new(Duration::from_micros(50))),
            ][i];
            b.add(recorder("polling", &tx).wait_strategy(polling));
            b.add_pool(
                &[],
                WorkPool::new("pool", [0, 1, 2, 3, 0][i], |j| {
                    recorder(&format!("pool-{j}"), &tx)
                })
                .batch(batch),
            )
            .unwrap();
            let (mut p, q) = b.build().unwrap();
            for n in 0..count {
                p.publish(|e| fill(e, 0, n)).unwrap();
            }
            if d == Duration::from_millis(2) {
                // Idle with a 2 ms timeout: on_timeout comes (bounded wait, no sleep).
                for _ in 0..50_000_000u64 {
                    if timeouts.load(Ordering::Relaxed) > 0 {
                        break;
                    }
                    std::thread::yield_now();
                }
                assert!(timeouts.load(Ordering::Relaxed) > 0, "on_timeout never ran");
            }
            drop(p);
            let report = q.shutdown().unwrap();
            let pools = report
                .consumers
                .iter()
                .filter(|c| c.name.starts_with("pool-"))
                .count();
            let seen = collect(&rx, 4 + pools);
            for name in ["timed", "coalesced", "retrying", "polling"] {
                assert_exact(name, &seen[name], count);
            }
            let mut pooled: Vec<i64> = seen
                .iter()
                .filter(|(k, _)| k.starts_with("pool-"))
                .flat_map(|(_, v)| v.iter().map(|s| s.0))
                .collect();
            pooled.sort_unstable();
            assert_eq!(pooled, (0..count as i64).collect::<Vec<_>>(), "{d:?}: pool");
            if huge(d) {
                assert_eq!(
                    timeouts.load(Ordering::Relaxed),
                    0,
                    "a huge timeout never fires"
                );
            }
        }
    });
}

/// The longest sleeping waits are cut to `Sleeping::MAX_PERIOD`: a consumer napping
/// `Duration::MAX` still drains and shuts down (after one nap at most).
#[test]
fn the_longest_sleeping_waits_still_drain_and_shut_down() {
    with_timeout(60, || {
        let (tx, rx) = mpsc::channel();
        let mut b =
            Builder::single_producer(64, Ev::default, Sleeping::new(Duration::MAX)).unwrap();
        b.add(recorder("queue-wait", &tx));
        b.add(
            recorder("own-wait", &tx)
                .wait_strategy(PollingWait::Sleeping(ringmq::Sleeping::new(Duration::MAX))),
        );
        let (mut p, q) = b.build().unwrap();
        for n in 0..10 {
            p.publish(|e| fill(e, 0, n)).unwrap();
        }
        drop(p);
        q.shutdown().unwrap();
        let seen = collect(&rx, 2);
        assert_exact("queue-wait", &seen["queue-wait"], 10);
        assert_exact("own-wait", &seen["own-wait"], 10);
    });
}

/// Counts and capacities at their edges: capacities 0, 1, 2^30 + 1 and `usize::MAX`; batches of
/// 0, the capacity, one more, and `usize::MAX`; `poll_n` with 0 and `usize::MAX`; pools of 0
/// workers (one is made) and a sequence nobody will reach in a tracker.
#[test]
fn counts_and_capacities_at_their_edges() {
    with_timeout(60, || {
        for bad in [0, 3, (1 << 30) + 1, usize::MAX] {
            let e = Builder::single_producer(bad, || 0u8, Yielding).unwrap_err();
            assert!(matches!(e, BuildError::Capacity { requested, .. } if requested == bad));
            assert!(Builder::multi_producer(bad, || 0u8, Yielding).is_err());
        }
        let mut b = Builder::single_producer(1, || 0u64, Blocking::new()).unwrap();
        let id = b.add_poller(&[]).unwrap();
        let (mut p, q) = b.build().unwrap();
        let mut poller = id;
        assert_eq!(p.publish_batch(0, |_, _| {}).unwrap(), 0..0);
        assert_eq!(p.try_publish_batch(0, |_, _| {}).unwrap(), 0..0);
        for n in [2, usize::MAX] {
            assert_eq!(
                p.publish_batch(n, |_, _| {}),
                Err(PublishError::BatchTooLarge {
                    requested: n,
                    capacity: 1
                })
            );
        }
        assert_eq!(p.publish_batch(1, |e, _| *e = 7).unwrap(), 0..1);
        assert_eq!(p.try_publish(|e| *e = 8), Err(PublishError::Full));
        // A limit of 0 hands nothing over.
        assert_ne!(poller.poll_n(0, |_, _, _| true), PollState::Processed(0));
        assert_eq!(poller.sequence(), -1);
        assert_eq!(
            poller.poll_n(usize::MAX, |e, _, _| *e == 7),
            PollState::Processed(1)
        );
        let far = q.graph_tracker();
        assert!(!far.is_processed(i64::MAX));
        assert!(far.is_processed(i64::MIN));
        assert_eq!(
            far.wait_processed(i64::MAX, Duration::ZERO),
            Err(TrackerError::Timeout)
        );
        drop(p);
        q.shutdown().unwrap();
        // Past the drain target: never processed, and the tracker says so.
        assert_eq!(
            far.wait_processed(i64::MAX, Duration::MAX),
            Err(TrackerError::Shutdown)
        );
        assert_eq!(poller.poll(|_, _, _| true), PollState::Closed);

        // A pool asked for 0 workers gets one.
        let handled = Arc::new(AtomicU64::new(0));
        let h = handled.clone();
        let mut b = Builder::multi_producer(2, || 0u64, Blocking::new()).unwrap();
        b.add_pool(
            &[],
            WorkPool::new("none", 0, move |_| {
                let h = h.clone();
                Consumer::new("w", move |_: &u64, _, _| {
                    h.fetch_add(1, Ordering::Relaxed);
                })
            }),
        )
        .unwrap();
        let (mut p, q) = b.build().unwrap();
        for n in 0..10 {
            p.publish(|e| *e = n).unwrap();
        }
        drop(p);
        assert_eq!(q.shutdown().unwrap().consumers.len(), 1);
        assert_eq!(handled.load(Ordering::Relaxed), 10);
    });
}

/// Where the poller is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PollerAt {
    /// Taken and polled by a thread of its own until it is closed.
    Taken,
    /// Never taken: it stays inside the `Disruptor`.
    NotTaken,
    /// Taken and dropped before publishing.
    Dropped,
    /// Taken by the thread that calls `shutdown()` (which polls it only afterwards).
    OwnedByShutdown,
}

/// Shutdown beside a poller, in every arrangement, with a producer blocked for room (only the
/// poller can make it) or not. Shutdown returns promptly and drains the consumer; a blocked
/// producer is refused with `Shutdown` (it holds no claim); a poller still polled afterwards gets
/// every event published before the close, then `Closed`.
#[test]
fn shutdown_beside_pollers_in_every_arrangement() {
    fn run<S: Sequencer, W: WaitStrategy>(
        b: Builder<Ev, S, W>,
        at: PollerAt,
        blocked: bool,
        clone: impl Fn(&mut ringmq::Producer<Ev, S, W>) -> Option<ringmq::Producer<Ev, S, W>>,
    ) {
        let mut b = b;
        let (tx, rx) = mpsc::channel();
        b.add(recorder("consumer", &tx));
        let id = b.add_poller(&[]).unwrap();
        let (mut p, q) = b.build().unwrap();
        // Not taken: its owner holds it and never polls.
        let (poller, _held) = match at {
            PollerAt::NotTaken => (None, Some(id)),
            _ => (Some(id), None),
        };
        let poller = if at == PollerAt::Dropped {
            drop(poller);
            None
        } else {
            poller
        };
        let (poll_thread, mut poller) = if at == PollerAt::Taken {
            let mut poller = poller.unwrap();
            let t = std::thread::spawn(move || {
                let mut got = Vec::new();
                for _ in 0..50_000_000u64 {
                    match poller.poll(|e, s, _| {
                        got.push((s, e.n));
                        true
                    }) {
                        PollState::Closed => return got,
                        _ => std::thread::yield_now(),
                    }
                }
                panic!("the poller never saw Closed");
            });
            (Some(t), None)
        } else {
            (None, poller)
        };
        let capacity = p.capacity() as u64;
        let mut published = 0;
        let mut waiting = None;
        if blocked && matches!(at, PollerAt::NotTaken | PollerAt::OwnedByShutdown) {
            // Fill the ring: nobody polls, so the next publish must wait for room.
            for n in 0..capacity {
                p.publish(|e| fill(e, 0, n)).unwrap();
            }
            published = capacity;
            assert_eq!(p.remaining_capacity(), 0);
            let mut other = clone(&mut p);
            waiting = Some(std::thread::spawn(move || {
                let r = match other.as_mut() {
                    Some(o) => o.publish(|e| fill(e, 0, 999)),
                    None => Err(PublishError::Full),
                };
                (r, other)
            }));
        } else {
            for n in 0..capacity / 2 {
                p.publish(|e| fill(e, 0, n)).unwrap();
            }
            published = published.max(capacity / 2);
        }
        let report = q.shutdown().unwrap();
        assert_eq!(report.consumers.len(), 1);
        assert_eq!(report.consumers[0].last_sequence, published as i64 - 1);
        if let Some(w) = waiting {
            let (r, other) = w.join().unwrap();
            if other.is_some() {
                assert_eq!(
                    r,
                    Err(PublishError::Shutdown),
                    "{at:?}: the blocked producer"
                );
            }
        }
        assert_eq!(p.publish(|e| fill(e, 0, 0)), Err(PublishError::Shutdown));
        let seen = collect(&rx, 1);
        assert_exact("consumer", &seen["consumer"], published);
        let polled = match (poll_thread, poller.as_mut()) {
            (Some(t), _) => Some(t.join().unwrap()),
            (None, Some(poller)) => {
                let mut got = Vec::new();
                assert_eq!(
                    poller.poll(|e, s, _| {
                        got.push((s, e.n));
                        true
                    }),
                    PollState::Processed(published as usize)
                );
                assert_eq!(poller.poll(|_, _, _| true), PollState::Closed);
                Some(got)
            }
            (None, None) => None,
        };
        if let Some(got) = polled {
            let want: Vec<(i64, u64)> = (0..published).map(|n| (n as i64, n)).collect();
            assert_eq!(got, want, "{at:?} blocked={blocked}: the poller");
        }
    }
    for at in [
        PollerAt::Taken,
        PollerAt::NotTaken,
        PollerAt::Dropped,
        PollerAt::OwnedByShutdown,
    ] {
        for blocked in [false, true] {
            with_timeout(60, move || {
                run(
                    Builder::single_producer(4, Ev::default, Blocking::new()).unwrap(),
                    at,
                    blocked,
                    |_| None,
                );
                run(
                    Builder::multi_producer(4, Ev::default, Blocking::new()).unwrap(),
                    at,
                    blocked,
                    |p| Some(p.clone()),
                );
            });
        }
    }
}

/// The same blocked single producer, moved to its own thread (a single producer cannot be
/// cloned): shutdown by the poller's owner releases it.
#[test]
fn a_single_producer_blocked_by_an_unpolled_poller_is_released_by_shutdown() {
    with_timeout(60, || {
        let mut b = Builder::single_producer(4, || 0u64, Blocking::new()).unwrap();
        let id = b.add_poller(&[]).unwrap();
        let (mut p, q) = b.build().unwrap();
        let mut poller = id;
        p.publish_batch(4, |e, i| *e = i as u64).unwrap();
        let blocked = std::thread::spawn(move || p.publish(|e| *e = 99));
        q.shutdown().unwrap();
        assert_eq!(blocked.join().unwrap(), Err(PublishError::Shutdown));
        let mut got = vec![];
        poller.poll(|e, _, _| {
            got.push(*e);
            true
        });
        assert_eq!(got, vec![0, 1, 2, 3]);
        assert_eq!(poller.poll(|_, _, _| true), PollState::Closed);
    });
}

/// Dropping a `Disruptor` whose only stages are pollers closes the queue: publishes are refused
/// and the pollers drain, then see `Closed`.
#[test]
fn dropping_a_queue_of_pollers_only_closes_it() {
    fn run<S: Sequencer, W: WaitStrategy>(mut b: Builder<u64, S, W>) {
        let a = b.add_poller(&[]).unwrap();
        let _never_polled = b.add_poller(&[]).unwrap(); // held, never polled
        let (mut p, q) = b.build().unwrap();
        let mut poller = a;
        p.publish(|e| *e = 1).unwrap();
        drop(q);
        assert_eq!(p.publish(|e| *e = 2), Err(PublishError::Shutdown));
        assert_eq!(poller.poll(|e, _, _| *e == 1), PollState::Processed(1));
        assert_eq!(poller.poll(|_, _, _| true), PollState::Closed);
    }
    with_timeout(60, || {
        run(Builder::single_producer(4, || 0u64, Blocking::new()).unwrap());
        run(Builder::multi_producer(4, || 0u64, Blocking::new()).unwrap());
    });
}

/// A queue whose last live stage left (removed, or its only poller dropped) refuses publishes
/// with `NoConsumers` instead of letting producers wait at a full ring forever; a producer
/// already waiting is released with it; a stage that joins lets publishes through again, and
/// sees them.
#[test]
fn a_queue_without_a_live_stage_refuses_publishes_until_one_joins() {
    fn run<S: Sequencer, W: WaitStrategy>(mut b: Builder<Ev, S, W>, by_poller: bool) {
        let (tx, rx) = mpsc::channel();
        let mut poller = None;
        let mut id = None;
        if by_poller {
            poller = Some(b.add_poller(&[]).unwrap());
        } else {
            id = Some(b.add(Consumer::new("only", |_: &Ev, _, _| {})));
        }
        let (mut p, mut q) = b.build().unwrap();
        // Fill the ring (the poller never polls; the consumer may keep up).
        let mut n = 0;
        while p.remaining_capacity() > 0 && n < 4 {
            p.publish(|e| fill(e, 0, n)).unwrap();
            n += 1;
        }
        let tracker = q.graph_tracker();
        match poller {
            Some(poller) => drop(poller),
            None => {
                q.remove(id.unwrap()).unwrap();
            }
        }
        assert_eq!(p.publish(|e| fill(e, 0, n)), Err(PublishError::NoConsumers));
        assert_eq!(
            p.try_publish(|e| fill(e, 0, n)),
            Err(PublishError::NoConsumers)
        );
        assert_eq!(
            p.publish_batch_timeout(2, Duration::from_secs(30), |e, i| fill(e, 0, n + i as u64)),
            Err(PublishError::NoConsumers)
        );
        assert!(PublishError::NoConsumers
            .to_string()
            .contains("Disruptor::add"));
        assert_eq!(
            tracker.wait_processed(p.cursor() + 1, Duration::from_secs(30)),
            Err(TrackerError::NoConsumers)
        );
        // A stage joins: publishes go through again, and it sees them.
        let back = q.add(recorder("back", &tx)).unwrap();
        let first = q.first_sequence(back).unwrap();
        let mut last = 0;
        for k in 0..20 {
            last = p.publish(|e| fill(e, 0, first as u64 + k)).unwrap();
        }
        q.tracker(back)
            .unwrap()
            .wait_processed(last, Duration::from_secs(30))
            .unwrap();
        drop(p);
        q.shutdown().unwrap();
        let seen = collect(&rx, 1);
        let got: Vec<i64> = seen["back"].iter().map(|s| s.0).collect();
        assert_eq!(got, (first..=last).collect::<Vec<_>>());
    }
    fn blocked<S: Sequencer, W: WaitStrategy>(
        mut b: Builder<u64, S, W>,
        producer: impl FnOnce(
            ringmq::Producer<u64, S, W>,
        ) -> std::thread::JoinHandle<Result<i64, PublishError>>,
    ) {
        let id = b.add_poller(&[]).unwrap();
        let (mut p, q) = b.build().unwrap();
        let poller = id;
        p.publish_batch(4, |e, _| *e = 0).unwrap();
        let waiting = producer(p);
        // The only stage goes while the producer waits for room it would make.
        drop(poller);
        assert_eq!(waiting.join().unwrap(), Err(PublishError::NoConsumers));
        q.shutdown().unwrap();
    }
    with_timeout(60, || {
        for by_poller in [false, true] {
            run(
                Builder::single_producer(4, Ev::default, Blocking::new()).unwrap(),
                by_poller,
            );
            run(
                Builder::multi_producer(4, Ev::default, Yielding).unwrap(),
                by_poller,
            );
        }
        blocked(
            Builder::single_producer(4, || 0u64, Blocking::new()).unwrap(),
            |mut p| std::thread::spawn(move || p.publish(|e| *e = 1)),
        );
        blocked(
            Builder::multi_producer(4, || 0u64, Blocking::new()).unwrap(),
            |mut p| std::thread::spawn(move || p.publish(|e| *e = 1)),
        );
    });
}

/// `shutdown()` (or `halt`, or `shutdown_timeout`) called from inside a handler cannot wait for
/// the handler's own thread: it closes the queue, which drains as usual, and says so with
/// `OnConsumerThread`. `remove` of the stage from its own handler is `SelfRemoval`.
#[test]
fn shutdown_and_remove_from_inside_a_handler_are_typed_errors() {
    type Q = Disruptor<u64, ringmq::Multi, Blocking>;
    for how in 0..3 {
        with_timeout(60, move || {
            let slot: Arc<Mutex<Option<Q>>> = Arc::new(Mutex::new(None));
            let (tx, rx) = mpsc::channel();
            let s = slot.clone();
            let mut b = Builder::multi_producer(8, || 0u64, Blocking::new()).unwrap();
            b.add(Consumer::new("closer", move |e: &u64, _, _| {
                if *e == 3 {
                    let q = s.lock().unwrap().take().unwrap();
                    let r = match how {
                        0 => q.shutdown().map(|_| ()),
                        1 => q.halt().map(|_| ()),
                        _ => q.shutdown_timeout(Duration::from_secs(5)).map(|_| ()),
                    };
                    tx.send(r).unwrap();
                }
            }));
            let (mut p, q) = b.build().unwrap();
            *slot.lock().unwrap() = Some(q);
            for n in 0..5 {
                if p.publish(|e| *e = n).is_err() {
                    break;
                }
            }
            let r = rx.recv_timeout(Duration::from_secs(30)).unwrap();
            assert_eq!(
                r,
                Err(ShutdownError::OnConsumerThread {
                    consumer: "closer".into()
                })
            );
            assert!(r
                .unwrap_err()
                .to_string()
                .contains("from inside consumer `closer`"));
            // Closed: publishes are refused.
            assert_eq!(p.publish(|e| *e = 9), Err(PublishError::Shutdown));
        });
    }
    with_timeout(60, || {
        type QS = Disruptor<u64, ringmq::Single, Blocking>;
        let slot: Arc<Mutex<Option<(QS, ringmq::StageId)>>> = Arc::new(Mutex::new(None));
        let (tx, rx) = mpsc::channel();
        let s = slot.clone();
        let mut b = Builder::single_producer(8, || 0u64, Blocking::new()).unwrap();
        let me = b.add(Consumer::new("self-remover", move |e: &u64, _, _| {
            if *e == 1 {
                let mut guard = s.lock().unwrap();
                let (q, id) = guard.as_mut().unwrap();
                tx.send(q.remove(*id).map(|_| ())).unwrap();
            }
        }));
        let (mut p, q) = b.build().unwrap();
        *slot.lock().unwrap() = Some((q, me));
        p.publish(|e| *e = 1).unwrap();
        let r = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(
            r,
            Err(StageError::SelfRemoval {
                stage: "self-remover".into()
            })
        );
        drop(p);
        let (q, _) = slot.lock().unwrap().take().unwrap();
        q.shutdown().unwrap();
    });
}

/// Two pool workers panic under `HaltAll`: producers and `shutdown()` name the same one, the
/// one whose panic failed the queue. Repeated, since which worker fails first varies.
#[test]
fn producers_and_shutdown_agree_on_the_first_failure() {
    with_timeout(120, || {
        for _ in 0..if cfg!(miri) { 3 } else { 50 } {
            let mut b = Builder::multi_producer(8, || 0u64, Blocking::new()).unwrap();
            b.add_pool(
                &[],
                WorkPool::new("pool", 2, |i| {
                    Consumer::new(format!("w{i}"), |e: &u64, _, _| {
                        if *e >= 3 {
                            panic!("bad {e}");
                        }
                    })
                })
                .batch(1),
            )
            .unwrap();
            let (mut p, q) = b.build().unwrap();
            let mut err = None;
            for n in 0..1000 {
                if let Err(e) = p.publish(|e| *e = n) {
                    err = Some(e);
                    break;
                }
            }
            let Some(PublishError::ConsumerFailed { consumer, sequence }) = err else {
                panic!("producers were not told: {err:?}")
            };
            match q.shutdown() {
                Err(ShutdownError::ConsumerPanicked {
                    consumer: c,
                    sequence: s,
                    report,
                    ..
                }) => {
                    assert_eq!((c, s), (consumer, sequence));
                    assert!(report.consumers.iter().all(|w| w.last_sequence < 1000));
                }
                other => panic!("{other:?}"),
            }
        }
    });
}

/// Pool workers report only sequences they finished, never one past the last published (idle
/// workers hold claims beyond it), and a retired worker reports where it stopped.
#[test]
fn pool_workers_report_no_sequence_past_the_last_published() {
    with_timeout(60, || {
        for workers in [2, 3] {
            let mut b = Builder::multi_producer(16, || 0u64, Blocking::new()).unwrap();
            b.add_pool(
                &[],
                WorkPool::new("pool", workers, |i| {
                    Consumer::new(format!("w{i}"), move |e: &u64, _, _| {
                        if *e == 4 {
                            panic!("the worker that takes 4 retires");
                        }
                    })
                    .panic_policy(PanicPolicy::HaltConsumer)
                })
                .batch(1),
            )
            .unwrap();
            let (mut p, q) = b.build().unwrap();
            for n in 0..10 {
                p.publish(|e| *e = n).unwrap();
            }
            drop(p);
            let Err(ShutdownError::ConsumerPanicked { report, .. }) = q.shutdown() else {
                panic!()
            };
            for w in &report.consumers {
                assert!(w.last_sequence <= 9, "{}: {}", w.name, w.last_sequence);
            }
            assert_eq!(
                report.consumers.iter().map(|w| w.last_sequence).max(),
                Some(9)
            );
        }
    });
}

/// A user wait strategy that panics while a `HaltConsumer` consumer follows (after its handler
/// stopped) fails the queue: producers are told instead of waiting for a sequence that will never
/// move again.
#[test]
fn a_wait_strategy_panic_while_following_fails_the_queue() {
    #[derive(Default)]
    struct PanicsOnFollower(Yielding);
    impl WaitStrategy for PanicsOnFollower {
        fn wait_until<T, S>(
            &self,
            ready: impl FnMut() -> Option<T>,
            stop: impl FnMut() -> Option<S>,
            deadline: Option<std::time::Instant>,
        ) -> ringmq::Waited<T, S> {
            if std::thread::current().name() == Some("ringmq-fragile") {
                panic!("wait strategy bug");
            }
            self.0.wait_until(ready, stop, deadline)
        }
    }
    with_timeout(60, || {
        let mut b = Builder::single_producer(4, || 0u64, PanicsOnFollower::default()).unwrap();
        b.add(
            Consumer::new("fragile", |_: &u64, _, _| panic!("handler bug"))
                .panic_policy(PanicPolicy::HaltConsumer),
        );
        let (mut p, q) = b.build().unwrap();
        let mut err = None;
        for n in 0..1_000 {
            if let Err(e) = p.publish(|e| *e = n) {
                err = Some(e);
                break;
            }
        }
        assert!(
            matches!(err, Some(PublishError::ConsumerFailed { ref consumer, .. }) if consumer == "fragile"),
            "{err:?}"
        );
        assert!(matches!(
            q.shutdown(),
            Err(ShutdownError::ConsumerPanicked { .. })
        ));
    });
}
