//! Loom models of the cross-process tables on their own (the heap standing in for the
//! segment, threads for processes, a joined thread for a dead process: its writes are all
//! visible, as a killed process's are once the kernel reports it gone). Run with the
//! sequencer models:
//!
//! ```sh
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test -p ringmq --lib --release \
//!     --target-dir target/loom -- table::models
//! ```

use crossbeam_utils::CachePadded;

use super::*;
use crate::error::PublishError;
use crate::protocol::lifecycle::Phase;
use crate::protocol::sequencer::multi::{AsMulti, MultiRef};
use crate::protocol::sequencer::{ClaimContext, Mode, Multi, SequencerImpl};
use crate::protocol::wait::Yielding;
use crate::sync::{thread, Arc};

const A: Owner = Owner { pid: 1, start: 1 };
const B: Owner = Owner { pid: 2, start: 2 };

fn stages(n: usize) -> Arc<Vec<StageEntry>> {
    Arc::new((0..n).map(|_| StageEntry::new()).collect())
}

/// A stage joins while another producer claims and a consumer moves, and a producer rereads the
/// table: the minimum that producer computes is never above the joiner's start, so no claim
/// it makes room for can lap what the joiner is about to read.
#[test]
fn a_stage_joining_while_a_producer_rereads_the_table_is_never_lapped() {
    loom::model(|| {
        let multi = Arc::new(<Multi as SequencerImpl>::new(2));
        let table = stages(2);
        // Stage 0 is already there, at the start.
        join(&table, "first", 0, A, 0, || multi.multi().claimed_rmw()).unwrap();

        let joiner = {
            let (multi, table) = (multi.clone(), table.clone());
            thread::spawn(move || {
                join(&table, "late", 0, B, 0, || multi.multi().claimed_rmw())
                    .unwrap()
                    .start
            })
        };
        let mover = {
            let (multi, table) = (multi.clone(), table.clone());
            thread::spawn(move || {
                // Another producer claims sequence 0 (and publishes it), and the first stage
                // handles it.
                assert!(multi.multi().try_claim_once(0, 1));
                multi.multi().publish(0, 0);
                table[0].sequence.set(0);
            })
        };
        // This thread: a producer rereading the table.
        let min = gating_minimum(&table, multi.multi().claimed_rmw());
        let start = joiner.join().unwrap();
        mover.join().unwrap();
        assert!(
            min <= start,
            "minimum {min} above the joiner's start {start}"
        );
    });
}

/// The single producer's variant: the published cursor, with a SeqCst fence on both sides.
#[test]
fn a_stage_joining_while_the_single_producer_rereads_the_table_is_never_lapped() {
    use crate::protocol::sequencer::Single;
    loom::model(|| {
        let single = Arc::new(<Single as SequencerImpl>::new(2));
        let table = stages(2);
        let bound = |s: &Single| s.join_bound();
        join(&table, "first", 0, A, 0, || bound(&single)).unwrap();
        let joiner = {
            let (single, table) = (single.clone(), table.clone());
            thread::spawn(move || {
                join(&table, "late", 0, B, 0, || bound(&single))
                    .unwrap()
                    .start
            })
        };
        // The producer: publishes 0 (its own cursor), lets the first stage move, rereads.
        single.publish(0, 0);
        table[0].sequence.set(0);
        let min = gating_minimum(&table, bound(&single));
        let start = joiner.join().unwrap();
        assert!(
            min <= start,
            "minimum {min} above the joiner's start {start}"
        );
    });
}

/// A producer waits for room on a stage whose process died, while a survivor evicts it: the
/// producer goes on once the dead stage is out, and never passes the live one.
#[test]
fn evicting_a_dead_stage_frees_a_producer_waiting_on_it_but_not_past_the_live_one() {
    loom::model(|| {
        let table = stages(2);
        let dead = join(&table, "dead", 0, A, 0, || INITIAL).unwrap();
        join(&table, "live", 0, B, 0, || INITIAL).unwrap();
        let survivor = {
            let table = table.clone();
            thread::spawn(move || {
                assert!(begin_leave(&table, dead.index, dead.generation));
                free(&table, dead.index);
            })
        };
        let live = {
            let table = table.clone();
            thread::spawn(move || table[1].sequence.set(0))
        };
        // The producer needs both stages past 0 (wrap point 0).
        loop {
            let min = gating_minimum(&table, i64::MAX);
            if min >= 0 {
                break;
            }
            thread::yield_now();
        }
        // Only the live stage's own move let it through.
        assert_eq!(table[1].sequence.get(), 0);
        survivor.join().unwrap();
        live.join().unwrap();
        assert_eq!(table[0].state(), FREE);
    });
}

/// A claim context for the repair model: the producer's entry is where claims are announced.
struct RepairCx<'a> {
    multi: &'a Multi,
    phase: &'a Phase,
    entry: &'a ProducerEntry,
}

impl ClaimContext for RepairCx<'_> {
    type Sequencer = Multi;
    type Wait = Yielding;
    const CLAIM_ORDER: Ordering = Ordering::Release;
    fn sequencer(&self) -> &Multi {
        self.multi
    }
    fn capacity(&self) -> i64 {
        4
    }
    fn phase(&self) -> &Phase {
        self.phase
    }
    fn publish_error(&self) -> PublishError {
        PublishError::Shutdown
    }
    fn gating_minimum(&self) -> i64 {
        i64::MAX / 2
    }
    fn wait(&self) -> &Yielding {
        &Yielding
    }
    fn announce(&self, first: i64, n: i64) {
        self.entry.announce(first, n);
    }
}

struct ForRepair<'a>(&'a Multi, &'a [AtomicI64]);

impl Repairable for ForRepair<'_> {
    fn claimed(&self) -> i64 {
        self.0.multi().claimed_rmw()
    }
    fn is_published(&self, sequence: i64) -> bool {
        self.0.multi().is_published(sequence)
    }
    fn skip_and_publish(&self, sequence: i64) {
        self.1[sequence as usize].store(1, Ordering::Relaxed);
        self.0.multi().publish(sequence, sequence);
    }
    fn capacity(&self) -> i64 {
        4
    }
}

/// A producer dies after announcing a claim (winning or losing its CAS to a live producer that
/// then publishes); a survivor repairs: the dead producer's claimed sequence, if it got one, is
/// published as skipped, the live producer's never is, and nothing stays unpublished.
#[test]
fn a_dead_producers_hole_is_repaired_and_nothing_else_is() {
    loom::model(|| {
        let multi = Arc::new(<Multi as SequencerImpl>::new(4));
        let phase = Arc::new(Phase::new());
        let producers: Arc<Vec<CachePadded<ProducerEntry>>> = Arc::new(
            (0..2)
                .map(|_| CachePadded::new(ProducerEntry::new()))
                .collect(),
        );
        let skipped: Arc<Vec<AtomicI64>> = Arc::new((0..4).map(|_| AtomicI64::new(0)).collect());
        let dead_i = producer_join(&producers, A, INITIAL).unwrap();
        let live_i = producer_join(&producers, B, INITIAL).unwrap();
        // The dying producer: announces sequence 0 and tries once; dies either way.
        let dying = {
            let (multi, producers) = (multi.clone(), producers.clone());
            thread::spawn(move || {
                producers[dead_i].announce(0, 1);
                multi.multi().try_claim_once(0, 1)
            })
        };
        let live = {
            let (multi, phase, producers) = (multi.clone(), phase.clone(), producers.clone());
            thread::spawn(move || {
                let cx = RepairCx {
                    multi: &multi,
                    phase: &phase,
                    entry: &producers[live_i],
                };
                let seq = MultiRef::claim(&cx, 1, Mode::Block).unwrap();
                multi.multi().publish(seq, seq);
                seq
            })
        };
        let dead_won = dying.join().unwrap();
        // The dying thread is joined: its process is dead. Repair, racing the live producer.
        assert!(begin_repair(&producers, dead_i, Owner { pid: 3, start: 3 }));
        let ring = ForRepair(&multi, &skipped);
        let mut outcome = repair(&producers, dead_i, &ring, |i| i == live_i);
        let live_seq = live.join().unwrap();
        if let Repair::Pending(_) = outcome {
            // The live producer covered part of the range; it has published now.
            outcome = repair(&producers, dead_i, &ring, |i| i == live_i);
        }
        assert!(matches!(outcome, Repair::Done(_)), "{outcome:?}");
        let dead_seq = if dead_won { Some(0) } else { None };
        assert_eq!(
            skipped[live_seq as usize].load(Ordering::Relaxed),
            0,
            "the live claim was skipped"
        );
        for s in 0..=live_seq.max(dead_seq.unwrap_or(0)) {
            assert!(multi.multi().is_published(s), "{s} left unpublished");
            let was_skipped = skipped[s as usize].load(Ordering::Relaxed) == 1;
            assert_eq!(was_skipped, Some(s) == dead_seq, "sequence {s}");
        }
    });
}
