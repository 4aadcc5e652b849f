//! The participant tables of a ring shared by several processes: stages (consumers) and
//! producers, each a fixed array of entries made of plain atomics, so that a segment can hold
//! them (`crate::ipc`) and loom can check them (on the heap, `protocol::table::models`).
//!
//! # Stages
//! A stage entry is `FREE`, `JOINING` (taken by a process that is filling it in), `ACTIVE`
//! (its sequence gates the producers) or `LEAVING` (being removed: by its owner, or by a
//! survivor that found its process dead). Producers wait for the minimum of the `ACTIVE`
//! sequences ([`gating_minimum`]).
//!
//! **Joining while producers claim.** A stage that joins starts after a sequence `J` and reads
//! `J + 1` onwards, so no producer may claim `J + 1 + capacity` until it passed it. A producer
//! that computed its room from a table read that missed the joiner must therefore have computed
//! a minimum at or below `J`. Each side reads one word *after* its table access, and the two
//! reads are ordered against each other, so one of them sees the other:
//! - the joiner marks its entry `ACTIVE` (at `J0`, the bound read before), then reads the
//!   bound `J` (see below), then stores `J` as its sequence;
//! - a producer rereading the table first takes the same bound `N`, then reads the entries, and
//!   caps the minimum at `N`.
//!
//! If the producer's read of the bound comes first, `J >= N >=` its minimum. If the joiner's
//! comes first, the producer's table read sees the entry (at `J0` or `J`, both at or below
//! `J`). The bound and how it is ordered depend on the sequencer: the multi-producer claim
//! counter, read by both with a read-modify-write (every change of that counter is one, so the
//! later reader synchronizes with the earlier); the single producer's published cursor, which
//! only the producer changes, read after a `SeqCst` fence by both (the producer reads its own).
//! Model: `a_stage_joining_while_a_producer_rereads_the_table_is_never_lapped`.
//!
//! **Leaving.** Removing an entry only raises the minimum: safe at any time. A stage that
//! follows others reads their entries on every wait, and treats one that is no longer `ACTIVE`
//! (or was reused: the generation changed) as gone.
//!
//! # Producers
//! A multi-producer claim takes a range from the shared counter with a CAS. A process killed
//! between that CAS and its publish leaves a hole consumers would wait at forever, so each
//! claim first *announces* its range in the producer's entry (`hi`, then `lo` with `Release`;
//! the claim's CAS is `Release` too). A survivor that found the producer dead repairs the hole:
//! every sequence of the dead producer's last announced range that was claimed (below the
//! counter), is not published, and is not covered by a live producer's announcement (the dead
//! one announced it but lost the CAS to a live one) is marked skipped and published, as an
//! in-process publish closure that panicked does. One survivor repairs a given producer: it takes
//! the entry from `ACTIVE` to `REPAIRING` with a CAS. Model:
//! `a_dead_producers_hole_is_repaired_and_nothing_else_is`.

// Used by `crate::ipc`, which loom builds leave out (its models here use what they check).
#![cfg_attr(loom, allow(dead_code))]

use crossbeam_utils::CachePadded;

use crate::protocol::sequence::{Sequence, INITIAL};
use crate::sync::{AtomicI64, AtomicU32, AtomicU64, Ordering};

/// A stage entry's states.
pub(crate) const FREE: u32 = 0;
pub(crate) const JOINING: u32 = 1;
pub(crate) const ACTIVE: u32 = 2;
pub(crate) const LEAVING: u32 = 3;
/// A producer entry being repaired by a survivor.
pub(crate) const REPAIRING: u32 = 4;

/// The longest stage name kept, in bytes.
pub(crate) const NAME_LEN: usize = 32;

/// Who a participant is: a process id and its start time, which tells a reused pid apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Owner {
    pub(crate) pid: u32,
    pub(crate) start: u64,
}

/// The fields every participant's entry has: its state, its owner and a heartbeat.
#[repr(C)]
pub(crate) struct Presence {
    pub(crate) state: AtomicU32,
    /// Bumped each time the entry is taken, so that a reference to an old occupant goes stale.
    pub(crate) generation: AtomicU32,
    pub(crate) pid: AtomicU32,
    pub(crate) start: AtomicU64,
    /// When the owner last showed life (nanoseconds of `CLOCK_MONOTONIC`, shared by all
    /// processes of the machine); for operators, not for eviction, which needs proof of death.
    pub(crate) heartbeat: AtomicU64,
}

impl Presence {
    fn new() -> Self {
        Self {
            state: AtomicU32::new(FREE),
            generation: AtomicU32::new(0),
            pid: AtomicU32::new(0),
            start: AtomicU64::new(0),
            heartbeat: AtomicU64::new(0),
        }
    }

    /// Takes a `FREE` entry for `owner`: `Some(generation)`, or `None` if it was not free.
    fn take(&self, owner: Owner) -> Option<u32> {
        // Acquire on success: the previous occupant's last writes (its LEAVING -> FREE was a
        // Release) come before ours.
        self.state
            .compare_exchange(FREE, JOINING, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        let generation = self.generation.load(Ordering::Relaxed).wrapping_add(1);
        self.generation.store(generation, Ordering::Relaxed);
        self.pid.store(owner.pid, Ordering::Relaxed);
        self.start.store(owner.start, Ordering::Relaxed);
        Some(generation)
    }

    /// The entry's owner, as last recorded (meaningful once it is `ACTIVE`: read after an
    /// `Acquire` of the state).
    pub(crate) fn owner(&self) -> Owner {
        Owner {
            pid: self.pid.load(Ordering::Relaxed),
            start: self.start.load(Ordering::Relaxed),
        }
    }
}

/// One stage of the table: its sequence on a line of its own, then who it is and whom it
/// follows.
#[repr(C)]
pub(crate) struct StageEntry {
    pub(crate) sequence: Sequence,
    pub(crate) presence: CachePadded<StageInfo>,
}

/// A stage entry's fields besides its sequence.
#[repr(C)]
pub(crate) struct StageInfo {
    pub(crate) presence: Presence,
    /// The entries it follows, one bit each; 0: the producers.
    pub(crate) upstream: AtomicU64,
    /// Its name, UTF-8, zero-padded.
    pub(crate) name: [AtomicU64; NAME_LEN / 8],
}

impl StageEntry {
    pub(crate) fn new() -> Self {
        Self {
            sequence: Sequence::new(INITIAL),
            presence: CachePadded::new(StageInfo {
                presence: Presence::new(),
                upstream: AtomicU64::new(0),
                name: Default::default(),
            }),
        }
    }

    fn info(&self) -> &StageInfo {
        &self.presence
    }

    /// The stage's state (`Acquire`: an `ACTIVE` seen here comes with the fields written
    /// before it).
    pub(crate) fn state(&self) -> u32 {
        self.info().presence.state.load(Ordering::Acquire)
    }

    pub(crate) fn generation(&self) -> u32 {
        self.info().presence.generation.load(Ordering::Acquire)
    }

    pub(crate) fn owner(&self) -> Owner {
        self.info().presence.owner()
    }

    /// Records that the stage's process is alive at `now`.
    pub(crate) fn beat(&self, now: u64) {
        self.info().presence.heartbeat.store(now, Ordering::Relaxed);
    }

    /// When the stage's process last showed life (see [`Presence::heartbeat`]).
    pub(crate) fn heartbeat(&self) -> u64 {
        self.info().presence.heartbeat.load(Ordering::Relaxed)
    }

    /// The stage's name (as many bytes as were kept; lossy if a peer wrote garbage).
    pub(crate) fn name(&self) -> String {
        let mut bytes = Vec::with_capacity(NAME_LEN);
        for word in &self.info().name {
            bytes.extend_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
        }
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    }

    fn set_name(&self, name: &str) {
        let mut bytes = [0u8; NAME_LEN];
        let mut len = name.len().min(NAME_LEN);
        while !name.is_char_boundary(len) {
            len -= 1;
        }
        bytes[..len].copy_from_slice(&name.as_bytes()[..len]);
        for (word, chunk) in self.info().name.iter().zip(bytes.chunks(8)) {
            word.store(
                u64::from_le_bytes(chunk.try_into().unwrap()),
                Ordering::Relaxed,
            );
        }
    }
}

/// The slowest `ACTIVE` stage's sequence, capped at `bound` (see the module docs: the caller
/// read `bound` first, ordered as the join protocol says). `Acquire` per sequence: a producer
/// that sees a stage past a slot sees its reads of it finished.
#[inline]
pub(crate) fn gating_minimum(stages: &[StageEntry], bound: i64) -> i64 {
    stages.iter().fold(bound, |min, s| {
        if s.state() == ACTIVE {
            min.min(s.sequence.get())
        } else {
            min
        }
    })
}

/// Whether any stage is `ACTIVE` (or about to be: `JOINING`). `SeqCst`: see
/// [`settle_no_stage`].
pub(crate) fn any_stage(stages: &[StageEntry]) -> bool {
    stages.iter().any(|s| {
        let state = s.info().presence.state.load(Ordering::SeqCst);
        state == ACTIVE || state == JOINING
    })
}

/// Keeps the "no live stage" flag in step with the table after a join or a leave, without a
/// lock: each caller sets the flag from what it sees and looks again, until the two agree. Two
/// callers racing (one leaving the last stage, one joining) both end with a look after the
/// other's change (the states and the looks are `SeqCst`), so the last word is right.
pub(crate) fn settle_no_stage(stages: &[StageEntry], set: impl Fn(bool)) {
    let mut none = !any_stage(stages);
    loop {
        set(none);
        let now = !any_stage(stages);
        if now == none {
            return;
        }
        none = now;
    }
}

/// A stage that joined: its entry and the generation it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Joined {
    pub(crate) index: usize,
    pub(crate) generation: u32,
    /// The last sequence before the stage's first.
    pub(crate) start: i64,
}

/// Why a join failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum JoinError {
    /// Every entry is taken.
    Full,
}

/// Joins a stage named `name`, following `upstream` (a bit per entry; 0: the producers), for
/// `owner`. `bound` reads the sequencer's bound with the ordering of the module docs; it is
/// called twice (before and after the entry becomes `ACTIVE`).
pub(crate) fn join(
    stages: &[StageEntry],
    name: &str,
    upstream: u64,
    owner: Owner,
    now: u64,
    bound: impl Fn() -> i64,
) -> Result<Joined, JoinError> {
    for (index, entry) in stages.iter().enumerate() {
        let info = entry.info();
        let Some(generation) = info.presence.take(owner) else {
            continue;
        };
        entry.set_name(name);
        info.upstream.store(upstream, Ordering::Relaxed);
        info.presence.heartbeat.store(now, Ordering::Relaxed);
        // A stage after others starts at the same point: it reads what is published after
        // it joined, once its upstream stages passed it.
        let j0 = bound();
        entry.sequence.set(j0);
        // SeqCst: the state is also what `settle_no_stage` looks at; Release for the fields
        // above.
        info.presence.state.store(ACTIVE, Ordering::SeqCst);
        let start = bound();
        entry.sequence.set(start);
        return Ok(Joined {
            index,
            generation,
            start,
        });
    }
    Err(JoinError::Full)
}

/// Starts removing the stage at `index` if it still holds `generation` and is `ACTIVE` (or
/// `JOINING`, for an owner that died while joining): `true` for the one caller that moved it
/// to `LEAVING`, who must then call [`free`].
pub(crate) fn begin_leave(stages: &[StageEntry], index: usize, generation: u32) -> bool {
    let entry = &stages[index];
    let state = &entry.info().presence.state;
    for from in [ACTIVE, JOINING] {
        if entry.generation() != generation {
            return false;
        }
        // SeqCst: `settle_no_stage` looks at the states.
        if state
            .compare_exchange(from, LEAVING, Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
        {
            // The generation is re-checked after the CAS: an entry freed and retaken between
            // the check above and the CAS holds another stage.
            if entry.generation() == generation {
                return true;
            }
            state.store(from, Ordering::SeqCst);
            return false;
        }
    }
    false
}

/// Ends a removal [`begin_leave`] started: the entry is `FREE` for the next stage.
pub(crate) fn free(stages: &[StageEntry], index: usize) {
    // Release: the next occupant's take (Acquire) comes after everything done with the entry.
    stages[index]
        .info()
        .presence
        .state
        .store(FREE, Ordering::Release);
}

/// One producer handle of the table: who it is and the range its last claim announced.
#[repr(C)]
pub(crate) struct ProducerEntry {
    pub(crate) presence: Presence,
    /// The first sequence of the last announced claim (stored after `hi`, `Release`).
    pub(crate) lo: AtomicI64,
    /// The last sequence of the last announced claim.
    pub(crate) hi: AtomicI64,
    /// The survivor repairing this entry, once `REPAIRING`.
    pub(crate) repairer: AtomicU32,
    pub(crate) repairer_start: AtomicU64,
}

impl ProducerEntry {
    pub(crate) fn new() -> Self {
        Self {
            presence: Presence::new(),
            lo: AtomicI64::new(0),
            hi: AtomicI64::new(INITIAL),
            repairer: AtomicU32::new(0),
            repairer_start: AtomicU64::new(0),
        }
    }

    /// Records that the owner is about to claim `first..first + n`.
    #[inline]
    pub(crate) fn announce(&self, first: i64, n: i64) {
        self.hi.store(first + n - 1, Ordering::Relaxed);
        // Release: whoever reads this `lo` (Acquire) reads this `hi` or a later one, so the
        // range it sees covers the claim (announcements only move forward).
        self.lo.store(first, Ordering::Release);
    }

    /// The last announced range, or a superset of it (see [`announce`](Self::announce)).
    pub(crate) fn announced(&self) -> (i64, i64) {
        let lo = self.lo.load(Ordering::Acquire);
        let hi = self.hi.load(Ordering::Relaxed);
        (lo, hi)
    }

    pub(crate) fn state(&self) -> u32 {
        self.presence.state.load(Ordering::Acquire)
    }
}

/// Takes a free producer entry for `owner`; its index, or `None` if all are taken.
pub(crate) fn producer_join(
    producers: &[CachePadded<ProducerEntry>],
    owner: Owner,
    at: i64,
) -> Option<usize> {
    for (index, entry) in producers.iter().enumerate() {
        if entry.presence.take(owner).is_some() {
            entry.hi.store(at, Ordering::Relaxed);
            entry.lo.store(at + 1, Ordering::Relaxed);
            entry.presence.state.store(ACTIVE, Ordering::Release);
            return Some(index);
        }
    }
    None
}

/// Frees a producer entry (its owner detached, or its repair is done).
pub(crate) fn producer_free(producers: &[CachePadded<ProducerEntry>], index: usize) {
    producers[index]
        .presence
        .state
        .store(FREE, Ordering::Release);
}

/// What a repair needs of the multi-producer sequencer and the ring.
pub(crate) trait Repairable {
    /// The claim counter's last claimed sequence (`Acquire`).
    fn claimed(&self) -> i64;
    /// Whether `sequence` is published (`Acquire`).
    fn is_published(&self, sequence: i64) -> bool;
    /// Marks `sequence` skipped and publishes it.
    fn skip_and_publish(&self, sequence: i64);
    /// The ring's capacity.
    fn capacity(&self) -> i64;
}

/// How a repair pass ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Repair {
    /// Every sequence of the dead producer's range is published (by it, or now as skipped) or
    /// was never claimed: the entry may be freed. Carries how many were repaired.
    Done(u64),
    /// A live producer's announcement still covers part of the range: try again later.
    Pending(u64),
}

/// Repairs the hole the dead producer at `dead` may have left (the caller holds the entry
/// `REPAIRING`; `live` says whether another entry's owner is alive). See the module docs.
pub(crate) fn repair(
    producers: &[CachePadded<ProducerEntry>],
    dead: usize,
    ring: &impl Repairable,
    live: impl Fn(usize) -> bool,
) -> Repair {
    let (lo, hi) = producers[dead].announced();
    if hi < lo || hi - lo >= ring.capacity() {
        // Nothing announced, or garbage from a peer: nothing this entry could own.
        return Repair::Done(0);
    }
    // Acquire (a read-modify-write's view of the counter, whose every change is a Release
    // read-modify-write): every announcement made before a claim below this is visible.
    let claimed = ring.claimed();
    let mut repaired = 0;
    let mut pending = false;
    for s in lo..hi + 1 {
        if s > claimed || ring.is_published(s) {
            continue;
        }
        let covered = producers.iter().enumerate().any(|(i, p)| {
            if i == dead || p.state() != ACTIVE || !live(i) {
                return false;
            }
            let (plo, phi) = p.announced();
            plo <= s && s <= phi
        });
        if covered {
            pending = true;
            continue;
        }
        // Looked at after the announcements: a live producer that published `s` and announced
        // again is seen here as published (its later announcement, read Acquire, came after).
        if ring.is_published(s) {
            continue;
        }
        ring.skip_and_publish(s);
        repaired += 1;
    }
    if pending {
        Repair::Pending(repaired)
    } else {
        Repair::Done(repaired)
    }
}

/// Takes the dead producer at `index` for repair (`ACTIVE -> REPAIRING`), recording the
/// repairer; `true` for the one caller that did. An entry already `REPAIRING` whose repairer
/// died can be taken over with [`take_over_repair`].
pub(crate) fn begin_repair(
    producers: &[CachePadded<ProducerEntry>],
    index: usize,
    repairer: Owner,
) -> bool {
    let entry = &producers[index];
    if entry
        .presence
        .state
        .compare_exchange(ACTIVE, REPAIRING, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return false;
    }
    entry.repairer.store(repairer.pid, Ordering::Relaxed);
    entry
        .repairer_start
        .store(repairer.start, Ordering::Release);
    true
}

/// The repairer recorded for an entry being repaired.
pub(crate) fn repairer(entry: &ProducerEntry) -> Owner {
    Owner {
        start: entry.repairer_start.load(Ordering::Acquire),
        pid: entry.repairer.load(Ordering::Relaxed),
    }
}

/// Takes over the repair of an entry whose recorded repairer `was` died.
pub(crate) fn take_over_repair(
    producers: &[CachePadded<ProducerEntry>],
    index: usize,
    was: Owner,
    now: Owner,
) -> bool {
    let entry = &producers[index];
    if entry
        .repairer
        .compare_exchange(was.pid, now.pid, Ordering::AcqRel, Ordering::Relaxed)
        .is_err()
    {
        return false;
    }
    entry.repairer_start.store(now.start, Ordering::Release);
    true
}

#[cfg(all(test, loom))]
mod models;
