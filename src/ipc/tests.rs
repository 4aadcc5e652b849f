//! In-process tests of the segment access, including under miri (which cannot map files or
//! run other processes): two views of one heap segment stand for two processes' mappings.
//!
//! What they cover is every function of `segment.rs` that turns an offset into a reference
//! (`control`, `stages`, `producers`, `available`, `skips`, `slots`, `build`), the delivery
//! closure's read and the publish's write over a segment, and a publish closure's panic (its
//! slot marked skipped in the segment's marks). Threads stand for the processes.

use std::sync::Arc;
use std::time::Duration;

use super::consumer::ShmConsumer;
use super::producer::ShmProducer;
use super::segment::{Params, Segment, KIND_MULTI, KIND_SINGLE};
use super::wait::{IpcWait, IpcWaiter};
use crate::PollState;

fn heap(kind: u32, capacity: usize) -> (Arc<Segment>, Arc<IpcWaiter>) {
    let segment = Arc::new(Segment::on_heap(Params {
        capacity,
        kind,
        stages: 4,
        producers: 4,
        event_size: 8,
        event_align: 8,
        fingerprint: 0,
        mode: 0o600,
        wait: 1,
        wait_nanos: 0,
    }));
    let waiter = Arc::new(IpcWaiter {
        kind: IpcWait::Yielding,
        segment: segment.clone(),
        tick: Duration::from_secs(3600),
    });
    (segment, waiter)
}

/// Consumes until closed, by polling (yielding between empty polls); returns what it read.
fn drain(mut consumer: ShmConsumer<u64>) -> Vec<(i64, u64)> {
    let mut seen = Vec::new();
    loop {
        match consumer.poll(|e, seq, _| {
            seen.push((seq, *e));
            true
        }) {
            PollState::Closed => return seen,
            PollState::Processed(_) => {}
            _ => std::thread::yield_now(),
        }
    }
}

#[test]
fn two_views_of_one_segment_hand_events_over() {
    for kind in [KIND_SINGLE, KIND_MULTI] {
        let (segment, waiter) = heap(kind, 4);
        // The consumer's "process": its own handle on the segment.
        let consumer =
            ShmConsumer::<u64>::attach(segment.clone(), waiter.clone(), "c", &[]).unwrap();
        let after =
            ShmConsumer::<u64>::attach(segment.clone(), waiter.clone(), "d", &["c"]).unwrap();
        let reader = std::thread::spawn(move || drain(consumer));
        let follower = std::thread::spawn(move || drain(after));
        let mut producer = ShmProducer::<u64>::attach(segment.clone(), waiter.clone()).unwrap();
        for i in 0..6u64 {
            producer.publish(|e| *e = i * 10).unwrap();
        }
        producer
            .publish_batch(3, |e, i| *e = 100 + i as u64)
            .unwrap();
        // A publish closure that panics: its slot is published as skipped.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            producer.publish(|_| panic!("bad event")).unwrap();
        }));
        assert!(panicked.is_err());
        producer.publish(|e| *e = 7).unwrap();
        drop(producer);
        let want: Vec<(i64, u64)> = (0..6)
            .map(|i| (i, i as u64 * 10))
            .chain((0..3).map(|i| (6 + i, 100 + i as u64)))
            .chain([(10, 7)])
            .collect();
        assert_eq!(reader.join().unwrap(), want);
        assert_eq!(follower.join().unwrap(), want);
    }
}

#[test]
fn two_multi_producers_on_one_segment_lose_and_repeat_nothing() {
    let (segment, waiter) = heap(KIND_MULTI, 4);
    let consumer = ShmConsumer::<u64>::attach(segment.clone(), waiter.clone(), "c", &[]).unwrap();
    let reader = std::thread::spawn(move || drain(consumer));
    // Both attach before either starts: the last multi producer to leave closes the ring, so a
    // producer that finished before the other attached would (rightly) close it first.
    let attached: Vec<_> = (0..2u64)
        .map(|p| {
            (
                p,
                ShmProducer::<u64>::attach(segment.clone(), waiter.clone()).unwrap(),
            )
        })
        .collect();
    let producers: Vec<_> = attached
        .into_iter()
        .map(|(p, mut producer)| {
            std::thread::spawn(move || {
                for i in 0..8u64 {
                    producer.publish(|e| *e = p * 1000 + i).unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    let seen = reader.join().unwrap();
    assert_eq!(seen.len(), 16);
    for p in 0..2u64 {
        let mine: Vec<u64> = seen
            .iter()
            .map(|&(_, e)| e)
            .filter(|e| e / 1000 == p)
            .collect();
        assert_eq!(mine, (0..8).map(|i| p * 1000 + i).collect::<Vec<_>>());
    }
}
