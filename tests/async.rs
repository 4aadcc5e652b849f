//! The async edge: async producers, pollers and receipts on tokio's multi-thread runtime and on
//! futures' thread pool, mixed with threaded participants in the same queue.
//!
//! Every test checks exact counts and order (each producer's events arrive once, in order; a
//! poller sees every sequence once), and runs under a hang guard. Cancellation is exercised by
//! random timeouts around each future, zero included (the future is dropped after its first
//! poll): a cancelled publish published nothing and is retried, so the consumers must see
//! exactly the successful ones, with no hole (a claimed-but-unpublished slot would be a gap in
//! the sequences, or a hang).

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::with_timeout;
use futures_util::StreamExt;
use ringmq::{
    Blocking, Builder, Consumer, PanicPolicy, PollState, PublishError, TrackerError, Yielding,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

/// Encodes a producer id and its event number in one `u64`.
fn tag(producer: u64, n: u64) -> u64 {
    producer << 32 | n
}

/// Checks that `seen` (in sequence order) holds each producer's `0..per` exactly once, in order.
fn check_per_producer(seen: &[u64], producers: u64, per: u64) {
    assert_eq!(
        seen.len() as u64,
        producers * per,
        "lost or repeated events"
    );
    let mut next: HashMap<u64, u64> = HashMap::new();
    for &v in seen {
        let (p, n) = (v >> 32, v & 0xFFFF_FFFF);
        let want = next.entry(p).or_insert(0);
        assert_eq!(n, *want, "producer {p}: out of order or duplicated");
        *want += 1;
    }
    assert_eq!(next.len() as u64, producers);
}

/// A threaded consumer's handler that records every event with its sequence.
struct Recorder(Arc<Mutex<Vec<(i64, u64)>>>);

impl ringmq::EventHandler<u64> for Recorder {
    fn on_event(&mut self, e: &u64, seq: i64, _: bool) {
        self.0.lock().unwrap().push((seq, *e));
    }
}

type Recorded = Arc<Mutex<Vec<(i64, u64)>>>;

fn recorder(
    name: &str,
) -> (
    Consumer<u64, ringmq::SharedFactory<impl FnOnce() -> Recorder + Send + 'static>>,
    Recorded,
) {
    let seen: Recorded = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    (Consumer::with_handler(name, move || Recorder(s)), seen)
}

/// Sequences must be `0..n` with nothing missing: a hole left by a cancelled publish would be
/// a missing sequence (published as skipped) or a hang.
fn check_contiguous(seen: &[(i64, u64)]) {
    for (i, (seq, _)) in seen.iter().enumerate() {
        assert_eq!(*seq, i as i64, "a gap or a duplicate at {i}");
    }
}

#[test]
fn async_producers_on_tokio_with_a_threaded_consumer_and_an_async_poller_lose_nothing() {
    with_timeout(120, || {
        const TASKS: u64 = 8;
        const PER: u64 = 5_000;
        let mut b = Builder::multi_producer(64, || 0u64, Blocking::new()).unwrap();
        let (c, seen) = recorder("threaded");
        b.add(c);
        let mut poller = b.add_poller(&[]).unwrap();
        let (producer, queue) = b.build().unwrap();
        let rt = runtime();
        let polled = rt.spawn(async move {
            let mut got = Vec::new();
            loop {
                match poller
                    .poll_async(|e, seq, _| {
                        got.push((seq, *e));
                        true
                    })
                    .await
                {
                    PollState::Processed(n) => assert!(n > 0),
                    PollState::Closed => return got,
                    other => panic!("poll_async resolved to {other:?}"),
                }
            }
        });
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let mut p = producer.clone();
                rt.spawn(async move {
                    let mut n = 0;
                    while n < PER {
                        if n % 7 == 3 && n + 3 <= PER {
                            let base = n;
                            let seqs = p
                                .publish_batch_async(3, |e, i| *e = tag(t, base + i as u64))
                                .await
                                .unwrap();
                            assert_eq!(seqs.end - seqs.start, 3);
                            n += 3;
                        } else {
                            p.publish_async(|e| *e = tag(t, n)).await.unwrap();
                            n += 1;
                        }
                    }
                })
            })
            .collect();
        drop(producer);
        rt.block_on(async {
            for t in tasks {
                t.await.unwrap();
            }
        });
        let polled = rt.block_on(polled).unwrap();
        queue.shutdown().unwrap();
        let seen = seen.lock().unwrap();
        check_contiguous(&seen);
        check_per_producer(&seen.iter().map(|s| s.1).collect::<Vec<_>>(), TASKS, PER);
        assert_eq!(
            polled, *seen,
            "the poller and the thread saw the same events"
        );
    });
}

#[test]
fn async_producers_and_an_async_stream_on_futures_thread_pool() {
    with_timeout(120, || {
        const TASKS: u64 = 4;
        const PER: u64 = 5_000;
        let pool = futures_executor::ThreadPool::builder()
            .pool_size(2)
            .create()
            .unwrap();
        let mut b = Builder::multi_producer(32, || 0u64, Blocking::new()).unwrap();
        let mut poller = b.add_poller(&[]).unwrap();
        let (producer, queue) = b.build().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        for t in 0..TASKS {
            let mut p = producer.clone();
            let tx = tx.clone();
            pool.spawn_ok(async move {
                for n in 0..PER {
                    p.publish_async(|e| *e = tag(t, n)).await.unwrap();
                }
                tx.send(()).unwrap();
            });
        }
        drop(producer);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        pool.spawn_ok(async move {
            let got: Vec<(i64, u64)> = poller.events().collect().await;
            done_tx.send(got).unwrap();
        });
        for _ in 0..TASKS {
            rx.recv().unwrap();
        }
        let got = done_rx.recv().unwrap();
        queue.shutdown().unwrap();
        check_contiguous(&got);
        check_per_producer(&got.iter().map(|s| s.1).collect::<Vec<_>>(), TASKS, PER);
    });
}

#[test]
fn threaded_producers_with_an_async_poller_and_receipts() {
    with_timeout(120, || {
        const THREADS: u64 = 3;
        const PER: u64 = 10_000;
        let mut b = Builder::multi_producer(128, || 0u64, Blocking::new()).unwrap();
        let (c, seen) = recorder("store");
        let store = b.add(c);
        let mut poller = b.add_poller(&[store]).unwrap();
        let (producer, queue) = b.build().unwrap();
        let receipts = queue.tracker(store).unwrap();
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let mut p = producer.clone();
                std::thread::spawn(move || {
                    let mut last = -1;
                    for n in 0..PER {
                        last = p.publish(|e| *e = tag(t, n)).unwrap();
                    }
                    last
                })
            })
            .collect();
        drop(producer);
        let rt = runtime();
        // The poller gates the producers: it runs while they publish.
        let polling = rt.spawn(async move {
            let mut got = Vec::new();
            while let PollState::Processed(_) = poller
                .poll_async(|e, seq, _| {
                    got.push((seq, *e));
                    true
                })
                .await
            {}
            got
        });
        let lasts: Vec<i64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        rt.block_on(async {
            for last in &lasts {
                receipts.processed_async(*last).await.unwrap();
                assert!(receipts.is_processed(*last));
            }
        });
        let got = rt.block_on(polling).unwrap();
        queue.shutdown().unwrap();
        check_contiguous(&got);
        check_per_producer(&got.iter().map(|s| s.1).collect::<Vec<_>>(), THREADS, PER);
        assert_eq!(got, *seen.lock().unwrap());
    });
}

/// splitmix64, for the random timeouts.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Zero half the time (dropped after the first poll), else up to 2 ms.
    fn timeout(&mut self) -> Duration {
        match self.next() % 4 {
            0 | 1 => Duration::ZERO,
            2 => Duration::from_micros(self.next() % 500),
            _ => Duration::from_millis(1 + self.next() % 2),
        }
    }
}

#[test]
fn random_cancellation_of_every_future_loses_nothing_and_leaves_no_hole() {
    for multi in [true, false] {
        with_timeout(180, move || cancellation_run(multi));
    }
}

fn cancellation_run(multi: bool) {
    const TASKS: u64 = 6;
    const PER: u64 = 3_000;
    let tasks = if multi { TASKS } else { 1 };
    let per = if multi { PER } else { TASKS * PER };
    let seed = 0xC0FFEE ^ multi as u64;
    // A small ring and a slow threaded stage: the producers find it full most of the time.
    let (c, seen) = recorder("slow");
    let c_slow = c.wait_strategy(ringmq::PollingWait::Yielding);
    let work = Arc::new(AtomicU64::new(0));
    let w = work.clone();
    let spin = Consumer::new("spin", move |e: &u64, _, _| {
        // A little work per event (no sleep): keeps the ring near full.
        let mut x = *e;
        for _ in 0..200 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        w.fetch_add(x & 1, Ordering::Relaxed);
    });
    let rt = runtime();
    let ((cancelled, receipts_cancelled), polled) = if multi {
        let mut b = Builder::multi_producer(8, || 0u64, Blocking::new()).unwrap();
        let slow = b.add(c_slow);
        b.add_after(&[slow], spin).unwrap();
        let poller = b.add_poller(&[]).unwrap();
        let (producer, queue) = b.build().unwrap();
        let tracker = queue.tracker(slow).unwrap();
        let polling = spawn_poller(&rt, poller, seed);
        let out = drive(&rt, seed, tasks, (tasks * per) as i64, tracker, |t| {
            let mut p = producer.clone();
            Box::pin(async move {
                let mut rng = Rng(seed ^ t);
                let mut cancelled = 0u64;
                let mut last = -1;
                let mut n = 0;
                while n < per {
                    let d = rng.timeout();
                    match tokio::time::timeout(d, p.publish_async(|e| *e = tag(t, n))).await {
                        Ok(r) => {
                            last = r.unwrap();
                            n += 1;
                        }
                        Err(_) => cancelled += 1,
                    }
                }
                (cancelled, last)
            })
        });
        drop(producer);
        let polled = rt.block_on(polling).unwrap();
        queue.shutdown().unwrap();
        (out, polled)
    } else {
        let mut b = Builder::single_producer(8, || 0u64, Blocking::new()).unwrap();
        let slow = b.add(c_slow);
        b.add_after(&[slow], spin).unwrap();
        let poller = b.add_poller(&[]).unwrap();
        let (producer, queue) = b.build().unwrap();
        let tracker = queue.tracker(slow).unwrap();
        let cell = Arc::new(tokio::sync::Mutex::new(producer));
        let polling = spawn_poller(&rt, poller, seed);
        let out = drive(&rt, seed, tasks, (tasks * per) as i64, tracker, |t| {
            let cell = cell.clone();
            Box::pin(async move {
                let mut p = cell.lock().await;
                let mut rng = Rng(seed ^ t);
                let mut cancelled = 0u64;
                let mut last = -1;
                let mut n = 0;
                while n < per {
                    let d = rng.timeout();
                    let batch = 1 + n % 3;
                    let k = batch.min(per - n);
                    let f = p.publish_batch_async(k as usize, |e, i| *e = tag(t, n + i as u64));
                    match tokio::time::timeout(d, f).await {
                        Ok(r) => {
                            last = r.unwrap().end - 1;
                            n += k;
                        }
                        Err(_) => cancelled += 1,
                    }
                }
                (cancelled, last)
            })
        });
        drop(cell);
        let polled = rt.block_on(polling).unwrap();
        queue.shutdown().unwrap();
        (out, polled)
    };
    let seen = seen.lock().unwrap();
    check_contiguous(&seen);
    check_per_producer(&seen.iter().map(|s| s.1).collect::<Vec<_>>(), tasks, per);
    assert_eq!(
        polled, *seen,
        "the cancelled-and-retried poller saw the same events"
    );
    // The timeouts did cut futures off: the test exercised cancellation.
    assert!(cancelled > 0, "no publish was cancelled");
    assert!(receipts_cancelled > 0, "no receipt wait was cancelled");
}

type Task = std::pin::Pin<Box<dyn std::future::Future<Output = (u64, i64)> + Send>>;

/// Runs the producer tasks with a receipt task beside them, which awaits (under random
/// timeouts, so most waits are cut off and retried) receipts for every 97th sequence of the
/// `total` while they publish; then awaits the receipt for each producer's last sequence.
/// Returns how many publishes and receipt waits were cancelled.
fn drive(
    rt: &tokio::runtime::Runtime,
    seed: u64,
    tasks: u64,
    total: i64,
    tracker: ringmq::Tracker,
    make: impl Fn(u64) -> Task,
) -> (u64, u64) {
    let tracker = Arc::new(tracker);
    let t = tracker.clone();
    let receipts = rt.spawn(async move {
        let mut rng = Rng(seed ^ 0xABCD);
        let mut cancelled = 0u64;
        for target in (0..total).step_by(97) {
            loop {
                match tokio::time::timeout(rng.timeout(), t.processed_async(target)).await {
                    Ok(r) => break r.unwrap(),
                    Err(_) => cancelled += 1,
                }
            }
            assert!(t.is_processed(target));
        }
        cancelled
    });
    let handles: Vec<_> = (0..tasks).map(|t| rt.spawn(make(t))).collect();
    rt.block_on(async {
        let mut cancelled = 0;
        for h in handles {
            let (c, last) = h.await.unwrap();
            cancelled += c;
            tracker.processed_async(last).await.unwrap();
            assert!(tracker.is_processed(last));
        }
        (cancelled, receipts.await.unwrap())
    })
}

/// A task polling under random timeouts (each cut-off future dropped, the poll retried) until
/// `Closed`; it returns everything the poller saw and how many polls were cut off.
fn spawn_poller<S: ringmq::Sequencer + Send + 'static>(
    rt: &tokio::runtime::Runtime,
    mut poller: ringmq::Poller<u64, S, Blocking>,
    seed: u64,
) -> tokio::task::JoinHandle<Vec<(i64, u64)>> {
    rt.spawn(async move {
        let mut rng = Rng(seed ^ 0x5151);
        let mut got = Vec::new();
        let mut cut = 0u64;
        loop {
            let f = poller.poll_async(|e, seq, _| {
                got.push((seq, *e));
                true
            });
            match tokio::time::timeout(rng.timeout(), f).await {
                Ok(PollState::Closed) => break,
                Ok(PollState::Processed(_)) => {}
                Err(_) => cut += 1,
                Ok(other) => panic!("poll_async resolved to {other:?}"),
            }
        }
        assert!(cut > 0, "no poll was cancelled");
        got
    })
}

#[test]
fn shutdown_reaches_every_awaiting_task() {
    with_timeout(60, || {
        let rt = runtime();
        // Producers await room: the only stage is a poller nobody polls, so the ring stays full.
        let mut b = Builder::multi_producer(4, || 0u64, Blocking::new()).unwrap();
        let mut full = b.add_poller(&[]).unwrap();
        let (mut producer, queue) = b.build().unwrap();
        for i in 0..4 {
            producer.publish(|e| *e = i).unwrap();
        }
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel(8);
        let waiting: Vec<_> = (0..5)
            .map(|i| {
                let mut p = producer.clone();
                let ready = ready_tx.clone();
                rt.spawn(async move {
                    let mut f = std::pin::pin!(p.publish_async(|e| *e = 100 + i));
                    // Polled once (Pending: the ring is full) before the shutdown is allowed.
                    let first = futures_util::poll!(f.as_mut());
                    assert!(first.is_pending());
                    ready.send(()).await.unwrap();
                    f.await
                })
            })
            .collect();
        rt.block_on(async {
            for _ in 0..5 {
                ready_rx.recv().await.unwrap();
            }
        });
        drop(producer);
        let report = queue.shutdown().unwrap();
        let _ = report;
        for w in waiting {
            assert_eq!(rt.block_on(w).unwrap(), Err(PublishError::Shutdown));
        }
        // The poller still drains what was published before the shutdown, then sees Closed.
        let got = rt.block_on(async {
            let mut got = Vec::new();
            while let PollState::Processed(_) = full
                .poll_async(|e, _, _| {
                    got.push(*e);
                    true
                })
                .await
            {}
            got
        });
        assert_eq!(got, [0, 1, 2, 3]);
    });
}

#[test]
fn an_awaiting_poller_and_receipt_see_the_shutdown() {
    with_timeout(60, || {
        let rt = runtime();
        let mut b = Builder::single_producer(8, || 0u64, Blocking::new()).unwrap();
        let mut poller = b.add_poller(&[]).unwrap();
        let (producer, queue) = b.build().unwrap();
        let tracker = producer.tracker();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        // The task hands the poller back, so the stage outlives the shutdown: with no stage
        // left the receipt would (rightly) report `NoConsumers` instead.
        let polling = rt.spawn(async move {
            let state = {
                let mut f = std::pin::pin!(poller.poll_async(|_, _, _| true));
                assert!(futures_util::poll!(f.as_mut()).is_pending());
                ready_tx.send(()).unwrap();
                f.await
            };
            (state, poller)
        });
        // A receipt for a sequence that will never be published.
        let receipt = rt.spawn(async move { tracker.processed_async(5).await });
        ready_rx.recv().unwrap();
        drop(producer);
        queue.shutdown().unwrap();
        let (state, poller) = rt.block_on(polling).unwrap();
        assert_eq!(state, PollState::Closed);
        assert_eq!(rt.block_on(receipt).unwrap(), Err(TrackerError::Shutdown));
        drop(poller);
    });
}

/// A handler panics on one event while three producer tasks await room in a ring of 4 and a
/// task awaits the receipt for the last event, under each panic policy: `HaltAll` reaches
/// every awaiting producer and the receipt as `ConsumerFailed`; `SkipEvent` and
/// `HaltConsumer` let everything through (the stage after the failed one sees all 3000
/// events, the receipt resolves), and the report or `shutdown` says what happened.
#[test]
fn a_handler_panic_reaches_awaiting_tasks_under_each_policy() {
    for policy in [
        PanicPolicy::HaltAll,
        PanicPolicy::SkipEvent,
        PanicPolicy::HaltConsumer,
    ] {
        with_timeout(60, move || panic_run(policy));
    }
}

fn panic_run(policy: PanicPolicy) {
    const PER: u64 = 1_000;
    const BAD: u64 = 10;
    let rt = runtime();
    let mut b = Builder::multi_producer(4, || 0u64, Blocking::new()).unwrap();
    let bad = b.add(
        Consumer::new("bad", |e: &u64, _, _| {
            if *e == BAD {
                panic!("bad event");
            }
        })
        .panic_policy(policy),
    );
    let after_count = Arc::new(AtomicU64::new(0));
    let a = after_count.clone();
    b.add_after(
        &[bad],
        Consumer::new("after", move |_: &u64, _, _| {
            a.fetch_add(1, Ordering::Relaxed);
        }),
    )
    .unwrap();
    let (producer, queue) = b.build().unwrap();
    let tracker = producer.tracker();
    let receipt = rt.spawn(async move { tracker.processed_async(3 * PER as i64 - 1).await });
    let tasks: Vec<_> = (0..3u64)
        .map(|t| {
            let mut p = producer.clone();
            rt.spawn(async move {
                let mut ok = 0;
                for n in 0..PER {
                    let v = if t == 0 && n == 10 { BAD } else { 1 };
                    match p.publish_async(|e| *e = v).await {
                        Ok(_) => ok += 1,
                        Err(e) => return (ok, Some(e)),
                    }
                }
                (ok, None)
            })
        })
        .collect();
    drop(producer);
    let outcomes: Vec<_> = tasks.into_iter().map(|t| rt.block_on(t).unwrap()).collect();
    let receipt = rt.block_on(receipt).unwrap();
    let shutdown = queue.shutdown();
    match policy {
        PanicPolicy::HaltAll => {
            for (ok, err) in outcomes {
                assert!(ok < PER, "{policy:?}: a producer went on after the halt");
                match err {
                    Some(PublishError::ConsumerFailed { consumer, .. }) => {
                        assert_eq!(consumer, "bad")
                    }
                    other => panic!("{policy:?}: expected ConsumerFailed, got {other:?}"),
                }
            }
            match receipt {
                Err(TrackerError::ConsumerFailed { consumer, .. }) => assert_eq!(consumer, "bad"),
                other => panic!("{policy:?}: the receipt resolved to {other:?}"),
            }
            assert!(after_count.load(Ordering::Relaxed) < 3 * PER);
            assert!(matches!(
                shutdown,
                Err(ringmq::ShutdownError::ConsumerPanicked { ref consumer, .. }) if consumer == "bad"
            ));
        }
        PanicPolicy::SkipEvent | PanicPolicy::HaltConsumer => {
            for (ok, err) in outcomes {
                assert_eq!((ok, err), (PER, None), "{policy:?}");
            }
            assert_eq!(receipt, Ok(()), "{policy:?}");
            assert_eq!(after_count.load(Ordering::Relaxed), 3 * PER, "{policy:?}");
            if policy == PanicPolicy::SkipEvent {
                let report = shutdown.unwrap();
                let bad = report.consumers.iter().find(|c| c.name == "bad").unwrap();
                assert_eq!(bad.skipped, 1);
            } else {
                assert!(matches!(
                    shutdown,
                    Err(ringmq::ShutdownError::ConsumerPanicked { ref consumer, .. }) if consumer == "bad"
                ));
            }
        }
    }
}

#[test]
fn more_waiting_tasks_than_slots_still_complete() {
    with_timeout(120, || {
        let rt = runtime();
        // 64 slots, 100 tasks waiting on a full ring at once: 36 re-poll until slots free.
        let mut b = Builder::multi_producer(4, || 0u64, Blocking::with_task_slots(64)).unwrap();
        let mut poller = b.add_poller(&[]).unwrap();
        let (producer, queue) = b.build().unwrap();
        let tasks: Vec<_> = (0..100u64)
            .map(|t| {
                let mut p = producer.clone();
                rt.spawn(async move { p.publish_async(|e| *e = t).await.unwrap() })
            })
            .collect();
        drop(producer);
        let got = rt.block_on(async {
            let mut got = Vec::new();
            while let PollState::Processed(_) = poller
                .poll_async(|e, _, _| {
                    got.push(*e);
                    true
                })
                .await
            {}
            got
        });
        let mut seqs: Vec<i64> = tasks.into_iter().map(|t| rt.block_on(t).unwrap()).collect();
        seqs.sort();
        assert_eq!(seqs, (0..100).collect::<Vec<_>>());
        let mut got = got;
        got.sort();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        drop(poller);
        queue.shutdown().unwrap();
    });
}

#[test]
fn a_polling_strategy_re_polls_through_the_executor() {
    with_timeout(60, || {
        let rt = runtime();
        let mut b = Builder::single_producer(4, || 0u64, Yielding).unwrap();
        let mut poller = b.add_poller(&[]).unwrap();
        let (mut producer, queue) = b.build().unwrap();
        let feeding = rt.spawn(async move {
            for i in 0..1_000u64 {
                producer.publish_async(|e| *e = i).await.unwrap();
            }
        });
        let got: Vec<u64> =
            rt.block_on(async { poller.events().take(1_000).map(|(_, e)| e).collect().await });
        assert_eq!(got, (0..1_000).collect::<Vec<_>>());
        rt.block_on(feeding).unwrap();
        drop(poller);
        queue.shutdown().unwrap();
    });
}
