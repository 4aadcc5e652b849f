//! Loom models of the sequencers on their own, tokio-style: a ring of 2, two or three threads,
//! no consumer thread and no graph. The model's own thread plays the consumer: it scans what the
//! sequencer says is published, reads the slots (loom tracks every access) and moves a gating
//! sequence by hand. Small enough for `LOOM_MAX_PREEMPTIONS=3`:
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p ringmq --lib --release \
//!     --target-dir target/loom -- sequencer::models
//! ```
//!
//! The whole-engine models (consumer threads, graphs, shutdown with a report) are in
//! `loom-tests/`.

use crate::error::PublishError;
use crate::protocol::publish;
use crate::protocol::ring::Ring;
use crate::protocol::sequence::{Sequence, INITIAL};
use crate::protocol::sequencer::{LocalClaim, Mode, Multi, SequencerImpl, Single};
use crate::protocol::wait::{Blocking, WaitStrategy};
use crate::protocol::Core;
use crate::sync::{thread, Arc};

/// A core of capacity 2 gated by one sequence that the model moves by hand.
fn core<S: SequencerImpl>() -> (Arc<Core<u64, S, Blocking>>, Arc<Sequence>) {
    let core = Arc::new(Core::new(Ring::new(2, || 0), Blocking::new()));
    let gate = Arc::new(Sequence::new(INITIAL));
    core.gating.replace(vec![gate.clone()]);
    (core, gate)
}

/// Publishes `value` with a blocking claim.
fn publish<S: SequencerImpl>(
    core: &Core<u64, S, Blocking>,
    local: &mut LocalClaim,
    value: u64,
) -> Result<i64, PublishError> {
    let claim = publish::claim(core, local, 1, Mode::Block)?;
    Ok(publish::write_one(core, claim, |slot| *slot = value))
}

/// Consumes `count` events as a first-stage consumer would: waits (yielding) for each to be
/// published, reads it, then releases its slot through `gate`. Returns what it read, in order.
fn consume<S: SequencerImpl>(
    core: &Core<u64, S, Blocking>,
    gate: &Sequence,
    count: i64,
) -> Vec<u64> {
    let mut seen = Vec::new();
    let mut next = 0;
    while next < count {
        let available = core.sequencer.highest_published(next);
        if available < next {
            thread::yield_now();
            continue;
        }
        for seq in next..=available.min(count - 1) {
            // SAFETY: `seq` is published (the Acquire in `highest_published`) and not released
            // (`gate` is below it); nobody else reads. This model is what checks it.
            seen.push(unsafe { core.ring.slots().read(seq, |e| *e) });
        }
        next = available.min(count - 1) + 1;
        gate.set(next - 1);
        core.wait.notify();
    }
    seen
}

/// Single producer, capacity 2, four events: a claim never passes the gating sequence by more
/// than the capacity (loom reports the overwrite as a causality violation), and the consumer
/// sees every event once, in order, with its contents.
#[test]
fn single_claims_wait_for_the_gating_sequence() {
    loom::model(|| {
        let (core, gate) = core::<Single>();
        let c = core.clone();
        let producer = thread::spawn(move || {
            let mut local = LocalClaim::new();
            for v in 0..4 {
                assert_eq!(publish(&c, &mut local, v), Ok(v as i64));
            }
        });
        assert_eq!(consume(&core, &gate, 4), [0, 1, 2, 3]);
        producer.join().unwrap();
    });
}

/// Two multi producers, capacity 2, two events each: a scan never passes a claimed but
/// unpublished slot, and every event arrives once, each producer's in order.
#[test]
fn multi_scan_never_passes_an_unpublished_claim() {
    loom::model(|| {
        let (core, gate) = core::<Multi>();
        let producers: Vec<_> = [10, 20]
            .into_iter()
            .map(|base| {
                let c = core.clone();
                thread::spawn(move || {
                    let mut local = LocalClaim::new();
                    for k in 0..2 {
                        publish(&c, &mut local, base + k).unwrap();
                    }
                })
            })
            .collect();
        let seen = consume(&core, &gate, 4);
        for base in [10, 20] {
            let mine: Vec<u64> = seen
                .iter()
                .copied()
                .filter(|v| v / 10 == base / 10)
                .collect();
            assert_eq!(mine, [base, base + 1], "{seen:?}");
        }
        for p in producers {
            p.join().unwrap();
        }
    });
}

/// A close racing two publishes, for either sequencer: each publish either returned `Ok` and
/// is at or below the drain target, or was refused with `Shutdown`; the `Ok` ones come first;
/// and the cursor, read while the close may be under way, covers every `Ok` publish.
fn close_races_publishes<S: SequencerImpl>() {
    loom::model(|| {
        let (core, _gate) = core::<S>();
        let c = core.clone();
        let producer = thread::spawn(move || {
            let mut local = LocalClaim::new();
            let results = [publish(&c, &mut local, 1), publish(&c, &mut local, 2)];
            // The cursor never goes back, closing or not: it covers what this thread published.
            let published = results.iter().filter(|r| r.is_ok()).count() as i64;
            assert!(c.sequencer.cursor() >= published - 1, "{results:?}");
            results
        });
        core.close();
        let results = producer.join().unwrap();
        let target = core.lifecycle.drain_target();
        let published = core.sequencer.highest_published(0);
        assert_eq!(published, target, "the drain target is what was published");
        match results {
            [Ok(0), Ok(1)] => assert_eq!(target, 1),
            [Ok(0), Err(PublishError::Shutdown)] => assert_eq!(target, 0),
            [Err(PublishError::Shutdown), Err(PublishError::Shutdown)] => {
                assert_eq!(target, INITIAL)
            }
            other => panic!("{other:?} with drain target {target}"),
        }
    });
}

#[test]
fn single_close_drains_or_refuses_every_publish() {
    close_races_publishes::<Single>();
}

#[test]
fn multi_close_drains_or_refuses_every_publish() {
    close_races_publishes::<Multi>();
}

/// A producer blocked on a full ring (capacity 2, nobody consuming) is released by a halt
/// with `Shutdown`, for either sequencer: room comes before the claim, so it holds nothing. Once
/// the halt is done, a claim that has room (the consumer moved on) is refused too: the halt
/// flagged the word a claim reads anyway (the single producer's limit, the multi-producer
/// counter), so the fast path cannot miss it.
fn halt_releases_a_waiting_producer<S: SequencerImpl>() {
    loom::model(|| {
        let (core, gate) = core::<S>();
        let c = core.clone();
        let producer = thread::spawn(move || {
            let mut local = LocalClaim::new();
            let results: Vec<_> = (0..3).map(|v| publish(&c, &mut local, v)).collect();
            (results, local)
        });
        core.halt();
        let (results, mut local) = producer.join().unwrap();
        assert_eq!(results[2], Err(PublishError::Shutdown), "{results:?}");
        assert!(core.sequencer.highest_published(0) <= 1);
        // Room for two more: only the lifecycle can refuse this claim now.
        gate.set(1);
        let late = publish::claim(&*core, &mut local, 1, Mode::Try).map(|claim| {
            publish::write_one(&*core, claim, |slot| *slot = 9);
        });
        assert_eq!(late, Err(PublishError::Shutdown));
    });
}

#[test]
fn single_halt_releases_a_producer_waiting_for_room() {
    halt_releases_a_waiting_producer::<Single>();
}

#[test]
fn multi_halt_releases_a_producer_waiting_for_room() {
    halt_releases_a_waiting_producer::<Multi>();
}
