//! Loom models of the consumer models' protocols: the work-pool claim, stages joining and leaving
//! a running queue, and poller drop. Same conventions as `engine.rs`: tiny rings, few threads,
//! the `Blocking` strategy, the real engine inside the model.
#![cfg(loom)]

use loom::thread;
use ringmq::{
    Blocking, Builder, Consumer, EventHandler, Hook, PanicPolicy, PollState, PublishError,
    ShutdownError, WorkPool,
};
use ringmq_loom_tests::{recorder, Out};

/// A pool of two workers on a ring of 2, three events (a wrap): every event is handled by exactly
/// one worker, and no slot is reused while the worker that claimed it still reads it (loom's cell
/// tracking would report the producer's write racing the read).
#[test]
fn work_pool_claims_each_event_once_and_gates_reuse() {
    let mut model = loom::model::Builder::new();
    // Three or four threads each with a CAS claim loop: bound 2 did not finish in 5 minutes.
    model.preemption_bound = Some(1);
    model.check(|| {
        let out: Out = Default::default();
        let mut b = Builder::single_producer(2, || 0u64, Blocking::new()).unwrap();
        let o = out.clone();
        b.add_pool(
            &[],
            WorkPool::new("pool", 2, move |i| recorder(&format!("w{i}"), &o)).batch(2),
        )
        .unwrap();
        let (mut p, q) = b.build().unwrap();
        for n in 0..3 {
            p.publish(|e| *e = 10 + n).unwrap();
        }
        drop(p);
        q.shutdown().unwrap();
        let mut all = out.lock().unwrap().clone();
        all.sort();
        assert_eq!(all, vec![(0, 10), (1, 11), (2, 12)]);
    });
}

/// A stage after a pool sees an event only after the worker that took it is done: with an
/// exclusive pool writing into the event, the next stage reads the write, never a race.
#[test]
fn stage_after_a_pool_waits_for_the_worker_that_took_the_event() {
    let mut model = loom::model::Builder::new();
    // Three or four threads each with a CAS claim loop: bound 2 did not finish in 5 minutes.
    model.preemption_bound = Some(1);
    model.check(|| {
        let out: Out = Default::default();
        let mut b = Builder::single_producer(2, || 0u64, Blocking::new()).unwrap();
        let pool = b
            .add_pool(
                &[],
                WorkPool::new("double", 2, |i| {
                    Consumer::exclusive(format!("d{i}"), |e: &mut u64, _, _| *e *= 2)
                })
                .batch(1),
            )
            .unwrap();
        b.add_after(&[pool], recorder("after", &out)).unwrap();
        let (mut p, q) = b.build().unwrap();
        for n in 1..=2 {
            p.publish(|e| *e = n).unwrap();
        }
        drop(p);
        q.shutdown().unwrap();
        assert_eq!(*out.lock().unwrap(), vec![(0, 2), (1, 4)]);
    });
}

/// A consumer joins while the producer publishes on a ring of 1: it sees a contiguous run of
/// events from its first sequence, each the value published there (the producer never overwrote
/// a slot it had yet to read), and the join's grace period never deadlocks with the producer.
#[test]
fn joining_consumer_never_reads_an_overwritten_slot() {
    let mut model = loom::model::Builder::new();
    // Four threads, and the grace period's wait loop: bound 2 did not finish in 6 minutes.
    model.preemption_bound = Some(1);
    model.check(|| {
        let base: Out = Default::default();
        let joined: Out = Default::default();
        let mut b = Builder::single_producer(1, || 0u64, Blocking::new()).unwrap();
        b.add(recorder("base", &base));
        let (mut p, mut q) = b.build().unwrap();
        let t = thread::spawn(move || {
            for n in 0..2 {
                p.publish(|e| *e = 100 + n).unwrap();
            }
        });
        let id = q.add(recorder("joined", &joined)).unwrap();
        let first = q.first_sequence(id).unwrap();
        t.join().unwrap();
        q.shutdown().unwrap();
        let seen = joined.lock().unwrap().clone();
        let expected: Vec<(i64, u64)> = (first..2).map(|s| (s, 100 + s as u64)).collect();
        assert_eq!(seen, expected);
        assert_eq!(base.lock().unwrap().len(), 2);
    });
}

/// Removing one of two gating consumers on a ring of 1 while the producer is blocked on it: the
/// producer is released (the removed sequence stops gating) and the other consumer gets every
/// event.
#[test]
fn removed_consumer_stops_gating() {
    let mut model = loom::model::Builder::new();
    // Four threads, and the grace period's wait loop: bound 2 did not finish in 6 minutes.
    model.preemption_bound = Some(1);
    model.check(|| {
        let kept: Out = Default::default();
        let gone: Out = Default::default();
        let mut b = Builder::single_producer(1, || 0u64, Blocking::new()).unwrap();
        b.add(recorder("kept", &kept));
        let leaving = b.add(recorder("leaving", &gone));
        let (mut p, mut q) = b.build().unwrap();
        let t = thread::spawn(move || {
            for n in 0..2 {
                p.publish(|e| *e = n).unwrap();
            }
        });
        q.remove(leaving).unwrap();
        t.join().unwrap();
        q.shutdown().unwrap();
        assert_eq!(*kept.lock().unwrap(), vec![(0, 0), (1, 1)]);
    });
}

/// A poller that is never polled holds a ring of 1 full; dropping it releases the producer
/// blocked on it, which then publishes to the other consumer.
#[test]
fn dropping_a_poller_releases_a_blocked_producer() {
    loom::model(|| {
        let out: Out = Default::default();
        let mut b = Builder::single_producer(1, || 0u64, Blocking::new()).unwrap();
        b.add(recorder("c", &out));
        let pid = b.add_poller(&[]).unwrap();
        let (mut p, q) = b.build().unwrap();
        let mut poller = pid;
        let t = thread::spawn(move || {
            for n in 0..2 {
                p.publish(|e| *e = n).unwrap();
            }
        });
        // It may or may not see the first event; it never blocks the producer after the drop.
        let state = poller.poll_n(1, |e, seq, _| {
            assert_eq!(*e as i64, seq);
            true
        });
        assert!(matches!(state, PollState::Processed(1) | PollState::Idle));
        drop(poller);
        t.join().unwrap();
        q.shutdown().unwrap();
        assert_eq!(*out.lock().unwrap(), vec![(0, 0), (1, 1)]);
    });
}

/// A consumer's `on_timeout` panics while it waits for an event that is not published yet (under
/// loom a timed wait that finds nothing times out at once). Under `SkipEvent` the call is passed
/// over, under `HaltConsumer` the handler stops and the consumer follows; either way it must not
/// pass the sequence it was waiting for: the stage after it never reads a slot before the
/// producer wrote it (loom's cell tracking), and gets every event with its value.
fn hook_panic_while_waiting(policy: PanicPolicy) {
    struct Panicky(bool);
    impl EventHandler<u64> for Panicky {
        fn on_event(&mut self, _: &u64, _: i64, _: bool) {}
        fn on_timeout(&mut self, _: i64) {
            if !self.0 {
                self.0 = true;
                panic!("on_timeout fails");
            }
        }
    }
    loom::model(move || {
        let out: Out = Default::default();
        let mut b = Builder::single_producer(2, || 0u64, Blocking::new()).unwrap();
        let waiting = b.add(
            Consumer::with_handler("waiting", || Panicky(false))
                .timeout(std::time::Duration::from_secs(1))
                .panic_policy(policy),
        );
        b.add_after(&[waiting], recorder("after", &out)).unwrap();
        let (mut p, q) = b.build().unwrap();
        p.publish(|e| *e = 1).unwrap();
        p.publish(|e| *e = 2).unwrap();
        drop(p);
        let report = match q.shutdown() {
            Ok(r) => r,
            Err(ShutdownError::ConsumerPanicked { hook, report, .. }) => {
                assert_eq!(hook, Hook::OnTimeout);
                report
            }
            Err(e) => panic!("{e}"),
        };
        assert_eq!(*out.lock().unwrap(), vec![(0, 1), (1, 2)]);
        let w = &report.consumers[0];
        assert_eq!(w.last_sequence, 1);
        if policy == PanicPolicy::SkipEvent {
            assert_eq!((w.skipped, w.skipped_hooks <= 1), (0, true));
        }
    });
}

#[test]
fn hook_panic_while_waiting_never_passes_an_unpublished_slot() {
    hook_panic_while_waiting(PanicPolicy::SkipEvent);
}

#[test]
fn hook_panic_while_waiting_under_halt_consumer_follows_only_published() {
    hook_panic_while_waiting(PanicPolicy::HaltConsumer);
}

/// The only stage is a poller that is never polled, so a ring of 1 stays full; the producer waits
/// for room. Dropping the poller leaves the queue with no live stage: the waiting producer is
/// released with `NoConsumers` (not left waiting for a reader that no longer exists), and later
/// publishes are refused the same way.
#[test]
fn dropping_the_last_stage_refuses_producers_instead_of_stranding_them() {
    loom::model(|| {
        let mut b = Builder::single_producer(1, || 0u64, Blocking::new()).unwrap();
        let pid = b.add_poller(&[]).unwrap();
        let (mut p, q) = b.build().unwrap();
        let poller = pid;
        p.publish(|e| *e = 1).unwrap();
        let t = thread::spawn(move || {
            let r = p.publish(|e| *e = 2);
            (r, p)
        });
        drop(poller);
        let (r, mut p) = t.join().unwrap();
        assert_eq!(r, Err(PublishError::NoConsumers));
        assert_eq!(p.try_publish(|e| *e = 3), Err(PublishError::NoConsumers));
        drop(p);
        q.shutdown().unwrap();
    });
}
