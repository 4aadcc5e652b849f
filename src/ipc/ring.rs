//! The protocol core over a segment: the claim contexts (the same sequencers as in one
//! process, over the segment's words), what producers publish into and consumers read from,
//! closing, and the liveness pass that removes dead stages and repairs dead producers.

use std::marker::PhantomData;
use std::sync::atomic::Ordering;

use super::segment::{Control, ReportSlot, Segment, KIND_SINGLE, REPORTS};
use super::wait::IpcWaiter;
use super::{process, EvictionKind};
use crate::error::PublishError;
use crate::protocol::lifecycle::Phase;
use crate::protocol::publish::Target;
use crate::protocol::ring::{Skips, Slots, Source};
use crate::protocol::sequencer::multi::{AsMulti, MultiRef, MultiWords};
use crate::protocol::sequencer::{ClaimContext, LocalClaim, Mode, SequencerImpl, Single};
use crate::protocol::table::{
    self, Owner, ProducerEntry, Repair, Repairable, ACTIVE, JOINING, REPAIRING,
};
use crate::protocol::wait::WaitStrategy;

/// The bound a producer rereading the stage table caps its minimum at, and a joining stage
/// starts after, each read with the ordering the join protocol needs (`protocol::table`).
pub(crate) fn join_bound(segment: &Segment) -> i64 {
    if segment.header().kind == KIND_SINGLE {
        segment.single().join_bound()
    } else {
        segment.multi().claimed_rmw()
    }
}

/// The multi-producer sequencer of a segment, as a claim sees it: its words and its view,
/// computed once per handle.
pub(crate) struct SegMulti<'a> {
    words: &'a MultiWords,
    view: MultiRef<'a>,
}

impl AsMulti for SegMulti<'_> {
    #[inline]
    fn words(&self) -> &MultiWords {
        self.words
    }
    #[inline]
    fn multi(&self) -> MultiRef<'_> {
        self.view
    }
}

/// The producer kind of a [`Cx`] with the multi-producer sequencer.
pub(crate) struct MultiKind;

/// The claim context of a producer handle over a segment, for producer kind `S` (`Single` or
/// [`MultiKind`]). Every address the hot path uses is computed once, when the handle is made:
/// derived from the segment on each publish, they cost about 20 instructions per event (the
/// `ringmq-ipc` column of benches/icount.rs).
pub(crate) struct Cx<'a, E, S> {
    pub(crate) segment: &'a Segment,
    control: &'a Control,
    slots: Slots<'a, E>,
    skips: Skips<'a>,
    multi: SegMulti<'a>,
    wait: &'a IpcWaiter,
    /// The producer's own entry (the multi producer announces its claims there).
    entry: &'a ProducerEntry,
    capacity: i64,
    /// Whether publishes must wake sleepers (`IpcWait::Blocking`).
    blocking: bool,
    _kind: PhantomData<fn() -> S>,
}

impl<'a, E: bytemuck::Pod, S> Cx<'a, E, S> {
    /// The context of the producer at `entry` of `segment` (whose event type is `E`: checked
    /// against the header when the segment was created or opened).
    pub(crate) fn new(segment: &'a Segment, wait: &'a IpcWaiter, entry: usize) -> Self {
        Self {
            segment,
            control: segment.control(),
            // SAFETY: `E` was checked against the segment's header (size, alignment,
            // fingerprint) and is `Pod`. Tests: tests/ipc.rs; miri:
            // `ipc::tests::two_views_of_one_segment_hand_events_over`.
            slots: unsafe { segment.slots::<E>() },
            skips: segment.skips(),
            multi: SegMulti {
                words: &segment.control().multi,
                view: segment.multi(),
            },
            wait,
            entry: &segment.producers()[entry],
            capacity: segment.layout().capacity as i64,
            blocking: wait.kind == super::IpcWait::Blocking,
            _kind: PhantomData,
        }
    }
}

macro_rules! context_common {
    () => {
        type Wait = IpcWaiter;
        #[inline]
        fn capacity(&self) -> i64 {
            self.capacity
        }
        #[inline]
        fn phase(&self) -> &Phase {
            &self.control.phase
        }
        fn publish_error(&self) -> PublishError {
            self.control.phase.refusal()
        }
        fn gating_minimum(&self) -> i64 {
            table::gating_minimum(self.segment.stages(), join_bound(self.segment))
        }
        #[inline]
        fn wait(&self) -> &IpcWaiter {
            self.wait
        }
    };
}

impl<E> ClaimContext for Cx<'_, E, Single> {
    type Sequencer = Single;
    context_common!();
    #[inline]
    fn sequencer(&self) -> &Single {
        &self.control.single
    }
}

impl<'a, E> ClaimContext for Cx<'a, E, MultiKind> {
    type Sequencer = SegMulti<'a>;
    /// Release: a survivor that repairs a dead producer's claim reads the counter and must see
    /// every announcement made before a claim below it (`protocol::table`).
    const CLAIM_ORDER: Ordering = Ordering::Release;
    context_common!();
    #[inline]
    fn sequencer(&self) -> &SegMulti<'a> {
        &self.multi
    }
    #[inline]
    fn announce(&self, first: i64, n: i64) {
        self.entry.announce(first, n);
    }
}

macro_rules! target_common {
    () => {
        type Event = E;
        #[inline]
        fn slots(&self) -> Slots<'_, E> {
            self.slots
        }
        #[inline]
        fn mark_skipped(&self, sequence: i64) {
            self.skips.mark(sequence)
        }
    };
}

impl<E> Target for Cx<'_, E, Single> {
    target_common!();
    #[inline]
    fn claim_sequences(
        &self,
        local: &mut LocalClaim,
        n: i64,
        mode: Mode,
    ) -> Result<i64, PublishError> {
        <Single as SequencerImpl>::claim(self, local, n, mode)
    }
    #[inline]
    fn publish(&self, lo: i64, hi: i64) {
        self.control.single.publish(lo, hi);
        if self.blocking {
            self.wait.notify();
        }
    }
}

impl<E> Target for Cx<'_, E, MultiKind> {
    target_common!();
    #[inline]
    fn claim_sequences(
        &self,
        _local: &mut LocalClaim,
        n: i64,
        mode: Mode,
    ) -> Result<i64, PublishError> {
        MultiRef::claim(self, n, mode)
    }
    #[inline]
    fn publish(&self, lo: i64, hi: i64) {
        self.multi.view.publish(lo, hi);
        if self.blocking {
            self.wait.notify();
        }
    }
}

/// What a consumer reads through, its addresses computed once per handle (as [`Cx`]'s): the
/// slots, the skip marks, the published sequences and its own entry.
pub(crate) struct Reader<'a, E> {
    slots: Slots<'a, E>,
    skips: Skips<'a>,
    /// The single producer's sequencer, or `None` for the multi producer's `multi`.
    single: Option<&'a Single>,
    multi: MultiRef<'a>,
    pub(crate) phase: &'a Phase,
    pub(crate) own: &'a crate::protocol::table::StageEntry,
    pub(crate) stages: &'a [crate::protocol::table::StageEntry],
    /// Whether releases must wake sleepers (`IpcWait::Blocking`).
    pub(crate) blocking: bool,
}

impl<'a, E: bytemuck::Pod> Reader<'a, E> {
    /// The reader of the stage at `index` of `segment` (whose event type is `E`: checked
    /// against the header when the segment was created or opened).
    pub(crate) fn new(segment: &'a Segment, wait: &IpcWaiter, index: usize) -> Self {
        Self {
            // SAFETY: `E` was checked against the segment's header (size, alignment,
            // fingerprint) and is `Pod`. Tests: tests/ipc.rs; miri:
            // `ipc::tests::two_views_of_one_segment_hand_events_over`.
            slots: unsafe { segment.slots::<E>() },
            skips: segment.skips(),
            single: (segment.header().kind == KIND_SINGLE).then(|| segment.single()),
            multi: segment.multi(),
            phase: &segment.control().phase,
            own: &segment.stages()[index],
            stages: segment.stages(),
            blocking: wait.kind == super::IpcWait::Blocking,
        }
    }

    /// The highest sequence published from `next` on (`next - 1`: none), `Acquire`.
    #[inline]
    pub(crate) fn highest_published(&self, next: i64) -> i64 {
        match self.single {
            Some(single) => single.highest_published(next),
            None => self.multi.highest_published(next),
        }
    }
}

// Moving a consumer handle to another thread (`ShmConsumer` is `Send`, not `Sync`) takes its
// reader along; checked by the doc tests of `ShmProducer` (which assert `ShmConsumer: Send`)
// and exercised across threads by `ipc::tests` under miri.
// SAFETY: references into the segment (`Segment: Send + Sync`) and slots read through the ring
// protocol, as `Ring<E>` is `Send` for `E: Send`.
unsafe impl<E: Send + Sync> Send for Reader<'_, E> {}

impl<E> Source<E> for Reader<'_, E> {
    #[inline]
    fn slots(&self) -> Slots<'_, E> {
        self.slots
    }
    #[inline]
    fn skips(&self) -> Skips<'_> {
        self.skips
    }
}

/// Refuses claims after a change of the lifecycle (close, no live stage).
pub(crate) fn refuse(segment: &Segment) {
    if segment.header().kind == KIND_SINGLE {
        segment.single().refuse();
    } else {
        segment.multi().refuse();
    }
}

/// Keeps the "no live stage" flag in step with the stage table, refusing claims while it is set.
pub(crate) fn settle_no_stage(segment: &Segment, wait: &IpcWaiter) {
    let phase = &segment.control().phase;
    table::settle_no_stage(segment.stages(), |none| {
        phase.set_no_stage(none);
        if none {
            refuse(segment);
        }
    });
    wait.notify();
}

/// Closes the ring from a live producer: stops claims and sets the drain target (the single
/// producer calls it from its own thread, so its close handshake finds no claim in flight).
pub(crate) fn close(segment: &Segment, wait: &IpcWaiter) {
    let phase = &segment.control().phase;
    if phase.begin_close() {
        refuse(segment);
        wait.notify();
        let last = if segment.header().kind == KIND_SINGLE {
            segment.single().close()
        } else {
            segment.multi().close()
        };
        phase.set_drain_target(last);
    }
    wait.notify();
}

/// Closes the ring after its single producer died: nothing is in flight (its claims were never
/// published), so consumers drain to the published cursor.
fn close_after_dead_single(segment: &Segment) {
    let phase = &segment.control().phase;
    if phase.begin_close() {
        refuse(segment);
        phase.set_drain_target(segment.single().cursor_acquire());
    }
}

/// Appends an eviction report to the segment's log (the newest [`REPORTS`] are kept).
fn report(
    segment: &Segment,
    kind: EvictionKind,
    owner: Owner,
    name: &str,
    sequence: i64,
    count: u64,
) {
    let control = segment.control();
    let n = control.reports.fetch_add(1, Ordering::AcqRel);
    let slot: &ReportSlot = &control.report[(n % REPORTS as u64) as usize];
    slot.kind.store(kind as u32, Ordering::Relaxed);
    slot.pid.store(owner.pid, Ordering::Relaxed);
    slot.sequence.store(sequence, Ordering::Relaxed);
    slot.count.store(count, Ordering::Relaxed);
    slot.at.store(process::now_ns(), Ordering::Relaxed);
    let mut bytes = [0u8; table::NAME_LEN];
    let len = name.len().min(table::NAME_LEN);
    bytes[..len].copy_from_slice(&name.as_bytes()[..len]);
    for (word, chunk) in slot.name.iter().zip(bytes.chunks(8)) {
        word.store(
            u64::from_le_bytes(chunk.try_into().unwrap()),
            Ordering::Relaxed,
        );
    }
    // Release: a reader that sees the stamp sees the fields.
    slot.stamp.store(n + 1, Ordering::Release);
}

struct RingForRepair<'a>(&'a Segment);

impl Repairable for RingForRepair<'_> {
    fn claimed(&self) -> i64 {
        self.0.multi().claimed_rmw()
    }
    fn is_published(&self, sequence: i64) -> bool {
        self.0.multi().is_published(sequence)
    }
    fn skip_and_publish(&self, sequence: i64) {
        self.0.skips().mark(sequence);
        self.0.multi().publish(sequence, sequence);
    }
    fn capacity(&self) -> i64 {
        self.0.layout().capacity as i64
    }
}

/// The liveness pass, run by every waiter once per tick: removes the stages whose process is
/// dead, repairs the holes of dead multi producers, and closes a ring whose single producer
/// died. Returns whether it changed anything.
pub(crate) fn maintain(segment: &Segment) -> bool {
    let me = process::me_cached();
    let now = process::now_ns();
    let mut changed = false;
    let stages = segment.stages();
    for (index, entry) in stages.iter().enumerate() {
        let state = entry.state();
        if state != ACTIVE && state != JOINING {
            continue;
        }
        let generation = entry.generation();
        let owner = entry.owner();
        if owner == me {
            // Our own: show life.
            entry.beat(now);
            continue;
        }
        if process::alive(owner) {
            continue;
        }
        if table::begin_leave(stages, index, generation) {
            let name = entry.name();
            let sequence = entry.sequence.get();
            crate::diag::warn(format_args!(
                "ringmq ipc: evicted stage {name:?} (pid {}, dead) at sequence {sequence}",
                owner.pid
            ));
            report(segment, EvictionKind::Stage, owner, &name, sequence, 0);
            table::free(stages, index);
            changed = true;
        }
    }
    if changed {
        let phase = &segment.control().phase;
        table::settle_no_stage(stages, |none| {
            phase.set_no_stage(none);
            if none {
                refuse(segment);
            }
        });
    }
    let producers = segment.producers();
    for (index, entry) in producers.iter().enumerate() {
        let state = entry.state();
        let owner = entry.presence.owner();
        let mine = match state {
            ACTIVE => {
                if process::alive(owner) {
                    continue;
                }
                if !table::begin_repair(segment.producers(), index, me) {
                    continue;
                }
                true
            }
            REPAIRING => {
                let by = table::repairer(entry);
                if by == me {
                    true
                } else if !process::alive(by) {
                    table::take_over_repair(segment.producers(), index, by, me)
                } else {
                    false
                }
            }
            _ => false,
        };
        if !mine {
            continue;
        }
        changed = true;
        if segment.header().kind == KIND_SINGLE {
            let at = segment.single().cursor_acquire();
            crate::diag::warn(format_args!(
                "ringmq ipc: the single producer (pid {}) died; consumers drain to {at} and close",
                owner.pid
            ));
            report(segment, EvictionKind::Producer, owner, "producer", at, 0);
            close_after_dead_single(segment);
            table::producer_free(segment.producers(), index);
            continue;
        }
        let live = |i: usize| process::alive(producers[i].presence.owner());
        match table::repair(segment.producers(), index, &RingForRepair(segment), live) {
            Repair::Done(repaired) => {
                let (lo, _) = entry.announced();
                crate::diag::warn(format_args!(
                    "ringmq ipc: producer pid {} died; {repaired} claimed, unpublished event(s) from {lo} published as skipped",
                    owner.pid
                ));
                report(
                    segment,
                    EvictionKind::Producer,
                    owner,
                    "producer",
                    lo,
                    repaired,
                );
                table::producer_free(segment.producers(), index);
                if segment.control().producers.fetch_sub(1, Ordering::AcqRel) == 1 {
                    close_after_last_producer(segment);
                }
            }
            Repair::Pending(_) => {}
        }
    }
    changed
}

/// The last multi producer left (or died): close as its drop would have.
pub(crate) fn close_after_last_producer(segment: &Segment) {
    let phase = &segment.control().phase;
    if phase.begin_close() {
        refuse(segment);
        let last = segment.multi().close();
        phase.set_drain_target(last);
    }
}
