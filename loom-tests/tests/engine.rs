//! Loom models of the engine's lock-free protocols, each small (capacity 1 to 4, two or three
//! threads, a few events, forcing wrap-around) and named for the property it checks.
//!
//! Run: `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p ringmq-loom-tests --release`
//!
//! The whole engine runs under loom: the builder spawns loom threads, every atomic and slot access
//! goes through loom, so loom reports a slot read racing a write (a "causality violation"), a
//! deadlock (a lost wake-up, a producer never released), or a failed assertion (a lost, duplicated
//! or reordered event). `loom-tests/README.md` lists, per model, the bug it was shown to catch.
#![cfg(loom)]

use loom::thread;
use ringmq::{Blocking, Builder, Consumer, PanicPolicy, PublishError, ShutdownError};
use ringmq_loom_tests::Out;

fn recorder(name: &str) -> (Out, Consumer<u64, impl ringmq::IntoProcess<u64>>) {
    let out: Out = Default::default();
    let consumer = ringmq_loom_tests::recorder(name, &out);
    (out, consumer)
}

fn seen(out: &Out) -> Vec<(i64, u64)> {
    out.lock().unwrap().clone()
}

fn numbered(values: &[u64]) -> Vec<(i64, u64)> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as i64, v))
        .collect()
}

/// Single producer, capacity 1, two events (a wrap): the producer never overwrites the slot while
/// the consumer reads it (loom's cell tracking), and the consumer sees 1, 2 with the writes.
#[test]
fn single_producer_wrap_never_overwrites() {
    loom::model(|| {
        let mut b = Builder::single_producer(1, || 0u64, Blocking::new()).unwrap();
        let (a, ca) = recorder("a");
        b.add(ca);
        let (mut p, q) = b.build().unwrap();
        for n in 1..=2 {
            p.publish(|e| *e = n).unwrap();
        }
        drop(p);
        q.shutdown().unwrap();
        assert_eq!(seen(&a), numbered(&[1, 2]));
    });
}

/// Two multicast consumers that both gate, capacity 1, two events: the producer waits for the
/// slower of the two before reusing the slot.
#[test]
fn multicast_wrap_waits_for_every_gating_consumer() {
    loom::model(|| {
        let mut b = Builder::single_producer(1, || 0u64, Blocking::new()).unwrap();
        let (a, ca) = recorder("a");
        let (c, cc) = recorder("c");
        b.add(ca);
        b.add(cc);
        let (mut p, q) = b.build().unwrap();
        for n in 1..=2 {
            p.publish(|e| *e = n).unwrap();
        }
        drop(p);
        q.shutdown().unwrap();
        assert_eq!(seen(&a), numbered(&[1, 2]));
        assert_eq!(seen(&c), numbered(&[1, 2]));
    });
}

/// Two producers on a ring of 2, one consumer, three events (a wrap): the consumer never reads a
/// claimed but unpublished slot, sees every event exactly once with its writes, and each
/// producer's events in its order.
#[test]
fn multi_producer_availability_and_per_producer_order() {
    loom::model(|| {
        let mut b = Builder::multi_producer(2, || 0u64, Blocking::new()).unwrap();
        let (out, c) = recorder("c");
        b.add(c);
        let (mut p, q) = b.build().unwrap();
        let mut other = p.clone();
        let t = thread::spawn(move || {
            other.publish(|e| *e = 10).unwrap();
            other.publish(|e| *e = 11).unwrap();
        });
        p.publish(|e| *e = 20).unwrap();
        t.join().unwrap();
        drop(p);
        q.shutdown().unwrap();
        let got: Vec<u64> = seen(&out).iter().map(|s| s.1).collect();
        assert_eq!(
            seen(&out).iter().map(|s| s.0).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        let mut sorted = got.clone();
        sorted.sort();
        assert_eq!(sorted, vec![10, 11, 20]);
        let tens: Vec<u64> = got.iter().copied().filter(|v| *v < 20).collect();
        assert_eq!(tens, vec![10, 11], "per-producer order");
    });
}

/// `try_publish` on a ring of 1: each attempt either fails with `Full` (and nothing is claimed)
/// or is delivered exactly once; a full ring is never overwritten.
#[test]
fn try_publish_is_full_or_delivered_never_overwrites() {
    loom::model(|| {
        let mut b = Builder::multi_producer(1, || 0u64, Blocking::new()).unwrap();
        let (out, c) = recorder("c");
        b.add(c);
        let (mut p, q) = b.build().unwrap();
        let mut ok = Vec::new();
        for n in 1..=2u64 {
            match p.try_publish(|e| *e = n) {
                Ok(_) => ok.push(n),
                Err(PublishError::Full) => {}
                Err(e) => panic!("{e}"),
            }
        }
        drop(p);
        q.shutdown().unwrap();
        assert!(!ok.is_empty(), "the first try always has room");
        assert_eq!(seen(&out), numbered(&ok));
    });
}

/// Batch publish of two slots twice on a ring of 2 (the second batch wraps): one cursor update per
/// batch publishes both slots with their writes.
#[test]
fn batch_publish_wraps_and_publishes_whole_batches() {
    loom::model(|| {
        let mut b = Builder::single_producer(2, || 0u64, Blocking::new()).unwrap();
        let (out, c) = recorder("c");
        b.add(c);
        let (mut p, q) = b.build().unwrap();
        assert_eq!(p.publish_batch(2, |e, i| *e = 1 + i as u64).unwrap(), 0..2);
        assert_eq!(p.publish_batch(2, |e, i| *e = 3 + i as u64).unwrap(), 2..4);
        drop(p);
        q.shutdown().unwrap();
        assert_eq!(seen(&out), numbered(&[1, 2, 3, 4]));
    });
}

/// Multi-producer batch publish: availability is published per slot of the batch.
#[test]
fn multi_producer_batch_publish() {
    loom::model(|| {
        let mut b = Builder::multi_producer(2, || 0u64, Blocking::new()).unwrap();
        let (out, c) = recorder("c");
        b.add(c);
        let (mut p, q) = b.build().unwrap();
        p.publish_batch(2, |e, i| *e = 1 + i as u64).unwrap();
        p.publish(|e| *e = 3).unwrap(); // wraps onto the batch's first slot
        drop(p);
        q.shutdown().unwrap();
        assert_eq!(seen(&out), numbered(&[1, 2, 3]));
    });
}

/// A two-stage pipeline: an exclusive first stage doubles each event in place; the second stage
/// sees every doubled value (the first stage's writes) and never runs ahead of it.
#[test]
fn pipeline_stage_two_sees_stage_one_writes() {
    loom::model(|| {
        let mut b = Builder::single_producer(1, || 0u64, Blocking::new()).unwrap();
        let first = b.add(Consumer::exclusive("double", |e: &mut u64, _, _| *e *= 2));
        let (out, c) = recorder("after");
        b.add_after(&[first], c).unwrap();
        let (mut p, q) = b.build().unwrap();
        for n in 1..=2 {
            p.publish(|e| *e = n).unwrap();
        }
        drop(p);
        q.shutdown().unwrap();
        assert_eq!(seen(&out), numbered(&[2, 4]));
    });
}

/// A diamond: two branches in parallel, an exclusive join after both. The join sees the event only
/// after both branches are done with it (otherwise its write races their reads). One event, and
/// one preemption: with four threads (producer, two branches, join) a bound of two does not finish
/// in minutes; the race it looks for needs one preemption.
#[test]
fn diamond_join_waits_for_both_branches() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(1);
    model.check(|| {
        let mut b = Builder::single_producer(1, || 0u64, Blocking::new()).unwrap();
        let left = b.add(Consumer::new("left", |e: &u64, _, _| assert!(*e < 100)));
        let right = b.add(Consumer::new("right", |e: &u64, _, _| assert!(*e < 100)));
        let (out, _) = recorder("unused");
        let o = out.clone();
        b.add_after(
            &[left, right],
            Consumer::exclusive("join", move |e: &mut u64, seq, _| {
                *e += 100;
                o.lock().unwrap().push((seq, *e));
            }),
        )
        .unwrap();
        let (mut p, q) = b.build().unwrap();
        p.publish(|e| *e = 1).unwrap();
        drop(p);
        q.shutdown().unwrap();
        assert_eq!(seen(&out), numbered(&[101]));
    });
}

/// The blocking strategy: consumers park and producers skip the wake-up when nobody sleeps. No
/// wake-up is lost: if one were, loom would find every thread blocked (a deadlock).
#[test]
fn blocking_wait_loses_no_wake_up() {
    loom::model(|| {
        let mut b = Builder::single_producer(1, || 0u64, Blocking::new()).unwrap();
        let (out, c) = recorder("c");
        b.add(c);
        let (mut p, q) = b.build().unwrap();
        // Capacity 1: the producer also parks waiting for room, woken by the consumer.
        for n in 1..=2 {
            p.publish(|e| *e = n).unwrap();
        }
        drop(p);
        q.shutdown().unwrap();
        assert_eq!(seen(&out), numbered(&[1, 2]));
    });
}

/// The timed claim path (CAS, able to give up): on a full ring of 1 the timed publish waits for the
/// consumer to make room. Under loom time does not pass, so the model checks that the path claims
/// correctly and is woken; the deadline itself is covered by the ordinary tests.
#[test]
fn timed_publish_claims_with_cas_and_waits_for_room() {
    loom::model(|| {
        let mut b = Builder::multi_producer(1, || 0u64, Blocking::new()).unwrap();
        let (out, c) = recorder("c");
        b.add(c);
        let (mut p, q) = b.build().unwrap();
        let d = std::time::Duration::from_secs(1);
        p.publish_timeout(d, |e| *e = 1).unwrap();
        p.publish_timeout(d, |e| *e = 2).unwrap();
        drop(p);
        q.shutdown().unwrap();
        assert_eq!(seen(&out), numbered(&[1, 2]));
    });
}

/// Shutdown while a multi-producer publish is in flight: whatever shutdown returns after, every
/// publish that returned `Ok` was delivered, every other one was refused, and nothing else arrived.
#[test]
fn shutdown_drains_every_publish_that_returned_ok() {
    loom::model(|| {
        let mut b = Builder::multi_producer(2, || 0u64, Blocking::new()).unwrap();
        let (out, c) = recorder("c");
        b.add(c);
        let (mut p, q) = b.build().unwrap();
        let mut other = p.clone();
        let t = thread::spawn(move || other.publish(|e| *e = 7).is_ok());
        p.publish(|e| *e = 1).unwrap();
        q.shutdown().unwrap();
        let racing_ok = t.join().unwrap();
        let got: Vec<u64> = seen(&out).iter().map(|s| s.1).collect();
        assert!(got.contains(&1), "published before shutdown, so drained");
        assert_eq!(got.contains(&7), racing_ok, "Ok if and only if drained");
        assert_eq!(got.len(), 1 + racing_ok as usize);
    });
}

/// A single producer waiting for room on a full ring is released by shutdown with
/// `Err(Shutdown)`, while the consumer drains what was published.
#[test]
fn shutdown_releases_a_producer_blocked_on_a_full_ring() {
    loom::model(|| {
        let mut b = Builder::single_producer(1, || 0u64, Blocking::new()).unwrap();
        let (out, c) = recorder("c");
        b.add(c);
        let (mut p, q) = b.build().unwrap();
        p.publish(|e| *e = 1).unwrap();
        let t = thread::spawn(move || {
            let r = p.publish(|e| *e = 2);
            (r, p)
        });
        q.shutdown().unwrap();
        let (r, p) = t.join().unwrap();
        // Either the consumer made room before the close (delivered) or the close came first.
        let got: Vec<u64> = seen(&out).iter().map(|s| s.1).collect();
        match r {
            Ok(_) => assert_eq!(got, vec![1, 2]),
            Err(PublishError::Shutdown) => assert_eq!(got, vec![1]),
            Err(e) => panic!("{e}"),
        }
        drop(p);
    });
}

/// A handler panics on the first event: the queue fails, the producer blocked on the full ring is
/// released with `ConsumerFailed`, and shutdown returns the panic. Nobody hangs.
#[test]
fn handler_panic_releases_producers_and_is_reported() {
    loom::model(|| {
        let mut b = Builder::single_producer(1, || 0u64, Blocking::new()).unwrap();
        b.add(
            Consumer::new("boom", |_: &u64, _, _| panic!("boom"))
                .panic_policy(PanicPolicy::HaltAll),
        );
        let (mut p, q) = b.build().unwrap();
        p.publish(|e| *e = 1).unwrap();
        // The ring is full until the consumer handles event 0, which it never does.
        let r = p.publish(|e| *e = 2);
        assert_eq!(
            r,
            Err(PublishError::ConsumerFailed {
                consumer: "boom".into(),
                sequence: 0
            })
        );
        match q.shutdown() {
            Err(ShutdownError::ConsumerPanicked { sequence: 0, .. }) => {}
            other => panic!("{other:?}"),
        }
    });
}

/// A multi producer waits for room that only a poller can make, and the poller's owner calls
/// `shutdown()` (so it is never polled meanwhile). The producer holds no claim while it waits,
/// so the drain needs nothing of it: shutdown returns, the producer is refused, and the consumer
/// got exactly what was published. (Claiming before waiting, as ringmq once did, deadlocked here:
/// the drain waited for the claim, the claim for the poller, the poller for the shutdown.)
#[test]
fn shutdown_refuses_a_multi_producer_waiting_on_an_unpolled_poller() {
    loom::model(|| {
        let mut b = Builder::multi_producer(1, || 0u64, Blocking::new()).unwrap();
        let (out, c) = recorder("c");
        b.add(c);
        let pid = b.add_poller(&[]).unwrap();
        let (mut p, q) = b.build().unwrap();
        let poller = pid;
        p.publish(|e| *e = 1).unwrap();
        let t = thread::spawn(move || {
            let r = p.publish(|e| *e = 2);
            (r, p)
        });
        q.shutdown().unwrap();
        let (r, p) = t.join().unwrap();
        assert_eq!(r, Err(PublishError::Shutdown));
        assert_eq!(seen(&out), numbered(&[1]));
        drop((poller, p));
    });
}

/// A single producer with room in its cache publishes while another thread shuts down: a
/// publish that returned `Ok` was drained, one that failed was refused with `Shutdown`, and the
/// `Ok` ones are a prefix of what the producer tried. The close handshake at its smallest: the
/// producer's claim reads no lifecycle, only its limit, which the closer poisons before the
/// heavy fence (a SeqCst fence under loom, as is the producer's light side).
#[test]
fn single_producer_publish_racing_shutdown_is_drained_or_refused() {
    loom::model(|| {
        let mut b = Builder::single_producer(4, || 0u64, Blocking::new()).unwrap();
        let (out, c) = recorder("c");
        b.add(c);
        let (mut p, q) = b.build().unwrap();
        let t = thread::spawn(move || {
            let results: Vec<bool> = (1..=2).map(|v| p.publish(|e| *e = v).is_ok()).collect();
            (results, p)
        });
        q.shutdown().unwrap();
        let (results, p) = t.join().unwrap();
        let ok = results.iter().take_while(|&&r| r).count();
        assert!(
            results[ok..].iter().all(|&r| !r),
            "Ok after a refusal: {results:?}"
        );
        let got: Vec<u64> = seen(&out).iter().map(|s| s.1).collect();
        assert_eq!(
            got,
            (1..=ok as u64).collect::<Vec<_>>(),
            "Ok if and only if drained"
        );
        drop(p);
    });
}

/// The last stage (a poller) is dropped and a new one joins, so the producer's next claim finds
/// its refusal flag (the poisoned limit, or the counter's refusal bit) and clears it; meanwhile
/// another thread drops the new stage, setting the same flag again. Whatever the interleaving,
/// once that drop is done a publish is refused with `NoConsumers`: a claim that clears a flag
/// looks at the lifecycle once more afterwards, so it never erases a refusal it did not see.
fn a_refusal_racing_the_clearing_of_an_earlier_one_still_refuses<S: ringmq::Sequencer>(
    build: fn() -> Builder<u64, S, Blocking>,
) {
    loom::model(move || {
        let mut b = build();
        let first = b.add_poller(&[]).unwrap();
        let (mut p, mut q) = b.build().unwrap();
        drop(first);
        assert_eq!(p.try_publish(|e| *e = 1), Err(PublishError::NoConsumers));
        let second = q.add_poller(&[]).unwrap();
        let t = thread::spawn(move || {
            let r = p.try_publish(|e| *e = 2);
            (r, p)
        });
        drop(second);
        let (r, mut p) = t.join().unwrap();
        assert!(matches!(r, Ok(0) | Err(PublishError::NoConsumers)), "{r:?}");
        assert_eq!(p.try_publish(|e| *e = 3), Err(PublishError::NoConsumers));
        drop(p);
        q.shutdown().unwrap();
    });
}

#[test]
fn a_refusal_racing_the_clearing_of_an_earlier_one_still_refuses_single() {
    a_refusal_racing_the_clearing_of_an_earlier_one_still_refuses(|| {
        Builder::single_producer(2, || 0u64, Blocking::new()).unwrap()
    });
}

#[test]
fn a_refusal_racing_the_clearing_of_an_earlier_one_still_refuses_multi() {
    a_refusal_racing_the_clearing_of_an_earlier_one_still_refuses(|| {
        Builder::multi_producer(2, || 0u64, Blocking::new()).unwrap()
    });
}
