//! The stall watchdog: a handler stuck on one event is reported within its timeout under each
//! policy, and the policy holds (alert only; the queue failed with the stage named; the stage
//! out of the graph); a slow stage that moves, or an idle one, is never reported.
//!
//! The stuck handler blocks on a channel until the test releases it (after the shutdown, for
//! the policies that leave its thread behind): a handler that will not return, not a timed wait.

mod common;

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::with_timeout;
use ringmq::{
    Blocking, Builder, Consumer, PublishError, ShutdownError, Stall, StallPolicy, TrackerError,
};

const TIMEOUT: Duration = Duration::from_millis(200);
const STUCK_AT: u64 = 5;

#[test]
fn a_stuck_handler_is_reported_within_its_timeout_under_each_policy() {
    for policy in [
        StallPolicy::Alert,
        StallPolicy::FailQueue,
        StallPolicy::RemoveStage,
    ] {
        with_timeout(60, move || stuck_run(policy));
    }
}

fn stuck_run(policy: StallPolicy) {
    let (stalls_tx, stalls) = mpsc::channel::<Stall>();
    let (release, released) = mpsc::channel::<()>();
    let released = Mutex::new(released);
    let (reached_tx, reached) = mpsc::channel::<Instant>();
    let reached_tx = Mutex::new(reached_tx);
    let mut b = Builder::multi_producer(64, || 0u64, Blocking::new()).unwrap();
    let stalls_tx = Mutex::new(stalls_tx);
    b.on_stall(move |s| stalls_tx.lock().unwrap().send(s.clone()).unwrap());
    b.add(
        Consumer::new("stuck", move |e: &u64, _, _| {
            if *e == STUCK_AT {
                reached_tx.lock().unwrap().send(Instant::now()).unwrap();
                // Stuck until released (a lost connection, a deadlock...).
                let _ = released.lock().unwrap().recv();
            }
        })
        // One event per batch: its sequence, stored after each batch, stops right before the
        // stuck event (with larger batches the stall is at the batch's first sequence).
        .max_batch(1)
        .stall_timeout(TIMEOUT, policy),
    );
    let ok = b.add(Consumer::new("ok", |_: &u64, _, _| {}));
    let (mut producer, queue) = b.build().unwrap();
    for i in 0..20 {
        producer.publish(|e| *e = i).unwrap();
    }
    let stuck_since = reached.recv().unwrap();
    // The healthy stage is done long before the stuck one can be found stalled (FailQueue would
    // stop it otherwise).
    queue
        .tracker(ok)
        .unwrap()
        .wait_processed(19, Duration::from_secs(10))
        .unwrap();
    let stall = stalls
        .recv_timeout(Duration::from_secs(10))
        .expect("no stall reported");
    let detected_after = stuck_since.elapsed();
    assert_eq!(stall.stage, "stuck", "{policy:?}");
    assert_eq!(stall.sequence, STUCK_AT as i64, "{policy:?}");
    assert_eq!(stall.policy, policy);
    assert!(stall.stalled_for >= TIMEOUT, "{stall}");
    // Detected within the timeout plus a look or two (a generous bound on a busy CI machine).
    assert!(
        detected_after < TIMEOUT * 10,
        "{policy:?}: after {detected_after:?}"
    );
    match policy {
        StallPolicy::Alert => {
            assert!(queue.is_running());
            assert!(queue.metrics().stages[0].live);
            release.send(()).unwrap();
            let t = queue.tracker(ok).unwrap();
            t.wait_processed(19, Duration::from_secs(10)).unwrap();
            producer.publish(|e| *e = 99).unwrap();
            drop(producer);
            let report = queue.shutdown().unwrap();
            assert_eq!(report.consumers.len(), 2);
            assert!(report.consumers.iter().all(|c| c.last_sequence == 20));
        }
        StallPolicy::FailQueue => {
            let want = PublishError::ConsumerStalled {
                consumer: "stuck".into(),
                sequence: STUCK_AT as i64,
            };
            assert_eq!(producer.publish(|e| *e = 99), Err(want));
            assert_eq!(
                queue
                    .graph_tracker()
                    .wait_processed(19, Duration::from_secs(5)),
                Err(TrackerError::ConsumerStalled {
                    consumer: "stuck".into(),
                    sequence: STUCK_AT as i64
                })
            );
            drop(producer);
            // Returns with the handler still stuck: its thread is left to finish.
            match queue.shutdown() {
                Err(ShutdownError::ConsumerStalled {
                    consumer,
                    sequence,
                    report,
                }) => {
                    assert_eq!((consumer.as_str(), sequence), ("stuck", STUCK_AT as i64));
                    let names: Vec<_> = report.consumers.iter().map(|c| c.name.as_str()).collect();
                    assert_eq!(names, ["ok"]);
                }
                other => panic!("expected ConsumerStalled, got {other:?}"),
            }
            release.send(()).unwrap();
        }
        StallPolicy::RemoveStage => {
            // Out of the gating set: 200 more publishes through a ring of 64 go through.
            for i in 20..220 {
                producer.publish(|e| *e = i).unwrap();
            }
            queue
                .tracker(ok)
                .unwrap()
                .wait_processed(219, Duration::from_secs(10))
                .unwrap();
            let m = queue.metrics();
            assert!(!m.stages[0].live, "the stalled stage left the graph");
            drop(producer);
            let report = queue.shutdown().unwrap();
            let names: Vec<_> = report.consumers.iter().map(|c| c.name.as_str()).collect();
            assert_eq!(names, ["ok"]);
            assert_eq!(report.consumers[0].last_sequence, 219);
            release.send(()).unwrap();
        }
    }
    // One stall, one report.
    assert!(stalls.try_recv().is_err(), "{policy:?}: reported twice");
}

/// A stage that takes 40 ms per event (longer than a look, shorter than the timeout) moves on
/// every look: never stalled, though it is behind for the whole run; an idle stage is never
/// stalled either, however long it waits.
#[test]
fn a_slow_but_moving_stage_and_an_idle_one_are_never_reported() {
    with_timeout(60, || {
        let reported = Arc::new(Mutex::new(Vec::<Stall>::new()));
        let r = reported.clone();
        let mut b = Builder::single_producer(64, || 0u64, Blocking::new()).unwrap();
        b.on_stall(move |s| r.lock().unwrap().push(s.clone()));
        let slow = b.add(
            Consumer::new("slow", |_: &u64, _, _| {
                // Work, not a wait: the handler is busy for 40 ms.
                let start = Instant::now();
                while start.elapsed() < Duration::from_millis(40) {
                    std::hint::spin_loop();
                }
            })
            .max_batch(1)
            .stall_timeout(TIMEOUT, StallPolicy::FailQueue),
        );
        let idle_stage = b.add(
            Consumer::new("idle", |_: &u64, _, _| {})
                .stall_timeout(Duration::from_millis(100), StallPolicy::FailQueue),
        );
        let (mut producer, queue) = b.build().unwrap();
        // Idle for three of the idle stage's timeouts: nothing waits for it, so no stall. (Its
        // timeout leaves room for a wake-up delayed on a loaded machine, under TSan in CI.)
        std::thread::sleep(Duration::from_millis(300));
        for i in 0..15 {
            producer.publish(|e| *e = i).unwrap();
        }
        // 15 x 40 ms: the slow stage is behind for 600 ms, three times its timeout.
        queue
            .tracker(slow)
            .unwrap()
            .wait_processed(14, Duration::from_secs(20))
            .unwrap();
        queue
            .tracker(idle_stage)
            .unwrap()
            .wait_processed(14, Duration::from_secs(5))
            .unwrap();
        assert!(
            reported.lock().unwrap().is_empty(),
            "{:?}",
            reported.lock().unwrap()
        );
        drop(producer);
        queue.shutdown().unwrap();
    });
}
