//! The multi-producer sequencer ([`Multi`]).
//!
//! Producers share a claim counter, "the next sequence to claim". Every claim (`publish`,
//! `try_publish`, the timed ones) is one loop: read the counter, check that the range it would
//! claim has room (against a shared cached limit, rereading the gating set only when the
//! cache says no), and take the range with a CAS that backs off after losing a race. Room comes
//! *before* the claim, as in the LMAX `MultiProducerSequencer`: a producer never holds a claimed
//! sequence while it waits, so a claim is always published at once, and a producer waiting for
//! room leaves without a trace when the queue stops (nothing of it needs draining; the shutdown
//! of a queue whose only free-er of room is a poller nobody polls cannot wait on it).
//!
//! A claimed slot is published by storing its *stamp* (the sequence's low 32 bits) into the
//! slot's entry of the availability array, with `Release`. A consumer scans forward from the next
//! sequence it wants and stops at the first slot whose entry is not the expected stamp, with
//! `Acquire`; so it never reads a claimed-but-unpublished slot, and sees the writes to every slot
//! it does read. The scan does not read the claim counter (a slot not yet published in this lap
//! holds the previous lap's stamp), so waiting consumers leave the producers' hottest line alone.
//!
//! Every change of the lifecycle that refuses claims also sets a refusal bit in the claim
//! counter, so a claim reads the lifecycle only when the counter it read anyway carries a flag.
//! Producers publish out of order; consumers still see one total order.
//!
//! The minimum gating sequence (plus the capacity: a limit) is cached in a shared word; it is
//! stored with `Release` after being read with `Acquire`, so a producer that trusts another's
//! cached value inherits its happens-before with the consumers (it may overwrite the slots that
//! value released).
//!

use crossbeam_utils::CachePadded;

use super::{wait_for_room, ClaimContext, LocalClaim, Mode, Sequencer, SequencerImpl};
use crate::error::PublishError;
use crate::protocol::sequence::INITIAL;
use crate::sync::{AtomicI32, AtomicI64, Backoff, Ordering};

/// The claim counter's mark bit: set once the queue is closed.
const CLOSED: i64 = 1 << 62;
/// The claim counter's refusal bit: set by each change of the lifecycle that refuses claims, so
/// a claim reads the lifecycle only when this is set; cleared by a claim that finds the queue
/// open again (a stage joined).
const REFUSED: i64 = 1 << 61;
/// Either flag: the counter does not hold a sequence to claim as it is.
const FLAGS: i64 = CLOSED | REFUSED;

/// The multi-producer sequencer: a shared claim counter and per-slot availability.
#[repr(C)]
pub struct Multi {
    words: MultiWords,
    /// Per slot, the stamp of the last sequence published into it (`-1`: never; see `Lookup`).
    available: Box<[AtomicI32]>,
    mask: i64,
}

/// The multi-producer sequencer's two shared words, apart from its availability array: a fixed
/// layout with no pointer, which a segment mapped by several processes holds too (`crate::ipc`).
#[repr(C)]
pub(crate) struct MultiWords {
    /// The next sequence to claim, with [`CLOSED`] set once closed and [`REFUSED`] while the
    /// lifecycle may refuse claims.
    next: CachePadded<AtomicI64>,
    /// A recent minimum of the gating sequences plus the capacity: the highest sequence that
    /// surely has room (a lower bound, never too high).
    limit: CachePadded<AtomicI64>,
}

impl MultiWords {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            next: CachePadded::new(AtomicI64::new(0)),
            limit: CachePadded::new(AtomicI64::new(INITIAL + capacity as i64)),
        }
    }
}

/// A multi-producer sequencer wherever its memory is: its words and its availability array.
/// The algorithm is written once, on this view; [`Multi`] makes one from its own fields (the
/// same pointer, so the claim costs nothing more), a cross-process ring from its segment.
#[derive(Clone, Copy)]
pub(crate) struct MultiRef<'a> {
    words: &'a MultiWords,
    lookup: Lookup<'a>,
}

impl<'a> MultiRef<'a> {
    /// The view over `words` and `available` (a power-of-two length).
    #[cfg_attr(loom, allow(dead_code))] // used by `crate::ipc`
    pub(crate) fn new(words: &'a MultiWords, available: &'a [AtomicI32]) -> Self {
        debug_assert!(available.len().is_power_of_two());
        Self {
            words,
            lookup: Lookup {
                available,
                mask: available.len() as i64 - 1,
            },
        }
    }
}

/// What a multi-producer claim context's sequencer is: anything that gives the words and the
/// view. (The claim takes only the words, from the context, inside its own frame: a view built
/// for it and handed to the cold paths would load the array's address on every claim.)
pub(crate) trait AsMulti {
    fn words(&self) -> &MultiWords;
    fn multi(&self) -> MultiRef<'_>;
}

impl AsMulti for Multi {
    #[inline]
    fn words(&self) -> &MultiWords {
        &self.words
    }
    #[inline]
    fn multi(&self) -> MultiRef<'_> {
        MultiRef {
            words: &self.words,
            lookup: Lookup {
                available: &self.available,
                mask: self.mask,
            },
        }
    }
}

/// The availability array and its mask, copied out of [`Multi`] once per publish or scan: after
/// an Acquire or Release access the compiler may not reuse a field it loaded before, so reading
/// them through `&Multi` in a loop loads them again for every slot.
#[derive(Clone, Copy)]
struct Lookup<'a> {
    available: &'a [AtomicI32],
    mask: i64,
}

impl<'a> Lookup<'a> {
    /// What the slot of `sequence` holds once `sequence` is published: its low 32 bits. Until
    /// then it holds the previous lap's sequence (or -1, before the first lap), which differs
    /// from it by the capacity (at most 2^30, see `ring::MAX_CAPACITY`), so never agrees in
    /// the low 32 bits. A truncation, where a lap number (`sequence >> log2(capacity)`) cost a
    /// load and a shift on every publish and every slot scanned.
    #[inline]
    fn stamp(sequence: i64) -> i32 {
        sequence as i32
    }

    #[inline]
    fn entry(self, sequence: i64) -> &'a AtomicI32 {
        let index = (sequence & self.mask) as usize;
        debug_assert!(index < self.available.len());
        // Unchecked: the bounds check was three instructions of every multi-producer publish
        // and of every slot a consumer scans (benches/icount.rs).
        // SAFETY: `mask` is the array's length (a power of two) minus one, both set in
        // `Multi::new` and never changed, so `index` is in bounds (every multi-producer test
        // under miri).
        unsafe { self.available.get_unchecked(index) }
    }
}

impl<'a> MultiRef<'a> {
    /// The cached limit says `last` may not have room: reread the gating set, and wait for room
    /// (or give up, by `mode`) if there is none, holding no claim. Caches what it saw (Release,
    /// see the module docs); the caller then checks the counter again.
    #[cold]
    #[inline(never)]
    fn make_room<C: ClaimContext>(cx: &C, last: i64, mode: Mode) -> Result<(), PublishError>
    where
        C::Sequencer: AsMulti,
    {
        let wrap = last - cx.capacity();
        let mut min = cx.gating_minimum();
        if wrap > min {
            min = wait_for_room(cx, wrap, mode)?;
        }
        let limit = min + cx.capacity();
        cx.sequencer().words().limit.store(limit, Ordering::Release);
        Ok(())
    }

    /// The counter carries a flag: `Err` if the queue is closed or refuses claims, else the
    /// counter with [`REFUSED`] cleared (the refusal that set it was undone: a stage joined).
    #[cold]
    #[inline(never)]
    fn flagged<C: ClaimContext>(cx: &C, current: i64) -> Result<i64, PublishError>
    where
        C::Sequencer: AsMulti,
    {
        let this = cx.sequencer().multi();
        let phase = cx.phase();
        let refused = || Err(cx.publish_error());
        if current & CLOSED != 0 {
            return refused();
        }
        // Acquire: the refusal set its bit with Release after changing the lifecycle, which the
        // check below then sees.
        let mut current = this.words.next.load(Ordering::Acquire);
        loop {
            if current & CLOSED != 0 || phase.refuses_claims() {
                return refused();
            }
            if current & REFUSED == 0 {
                return Ok(current);
            }
            // AcqRel: if this replaces a later refusal's bit (a refusal after a cleared one sets
            // the same bit), it reads from that refusal, and the check below sees it.
            match this.words.next.compare_exchange(
                current,
                current & !REFUSED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if phase.refuses_claims() {
                        this.refuse();
                        return refused();
                    }
                    return Ok(current & !REFUSED);
                }
                Err(actual) => current = actual,
            }
        }
    }

    /// Room first, then the claim (see the module docs). The CAS backs off after losing a race
    /// rather than claiming with one `fetch_add`: under contention every `fetch_add` moves the
    /// counter's line to another core, while a producer that lost a CAS stays off the line for a
    /// moment and lets the winner claim again with the line still in its cache. Measured in the
    /// 3P-1C benchmark (3 producers on 2 cores, one event per publish): 12.6 M events/s with
    /// `fetch_add`, 36.0 with a backing-off CAS.
    #[inline]
    pub(crate) fn claim<C: ClaimContext>(cx: &C, n: i64, mode: Mode) -> Result<i64, PublishError>
    where
        C::Sequencer: AsMulti,
    {
        let words = cx.sequencer().words();
        let backoff = Backoff::new();
        // Relaxed: the claim orders nothing by itself; the room check below does (Acquire).
        let mut current = words.next.load(Ordering::Relaxed);
        loop {
            // The lifecycle is read only when a flag says it may refuse (see `refuse`).
            if current & FLAGS != 0 {
                current = Self::flagged(cx, current)?;
                continue;
            }
            let last = current + n - 1;
            // Acquire: inherit the happens-before of whoever cached this limit (module docs).
            if last > words.limit.load(Ordering::Acquire) {
                // Out of line: the hot loop keeps only the cached check.
                Self::make_room(cx, last, mode)?;
                current = words.next.load(Ordering::Relaxed);
                continue;
            }
            cx.announce(current, n);
            match words.next.compare_exchange_weak(
                current,
                current + n,
                C::CLAIM_ORDER,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(current),
                Err(actual) => {
                    current = actual;
                    backoff.spin();
                }
            }
        }
    }

    /// One claim attempt from `current` (loom models of a producer that dies after it).
    #[cfg(all(test, loom))]
    pub(crate) fn try_claim_once(self, current: i64, n: i64) -> bool {
        self.words
            .next
            .compare_exchange(current, current + n, Ordering::Release, Ordering::Relaxed)
            .is_ok()
    }

    pub(crate) fn refuse(self) {
        // Release: a claim that sees the bit (and reloads with Acquire) sees the lifecycle
        // change the caller made before this call.
        self.words.next.fetch_or(REFUSED, Ordering::Release);
    }

    #[inline]
    pub(crate) fn publish(self, lo: i64, hi: i64) {
        // `lo <= hi`: a claim is never empty. Written so that one slot is one store and one
        // compare (no range-overflow check).
        let this = self.lookup;
        let mut s = lo;
        loop {
            // Release: a consumer that sees the stamp sees the slot's contents.
            this.entry(s).store(Lookup::stamp(s), Ordering::Release);
            if s == hi {
                break;
            }
            s += 1;
        }
    }

    /// Whether `sequence` is published (Acquire): a survivor's check before it repairs a dead
    /// producer's claim (`crate::ipc`).
    #[cfg_attr(loom, allow(dead_code))] // used by `crate::ipc`
    pub(crate) fn is_published(self, sequence: i64) -> bool {
        self.lookup.entry(sequence).load(Ordering::Acquire) == Lookup::stamp(sequence)
    }

    #[inline]
    pub(crate) fn highest_published(self, next: i64) -> i64 {
        // The scan needs no bound from the claim counter, which every producer writes on every
        // claim (reading it on each look would pull that line away from them): a slot not yet
        // published in this lap still holds the previous lap's stamp, so the scan stops at the first
        // unpublished sequence, and at most one ring ahead of `next`.
        let this = self.lookup;
        let end = next + this.mask + 1;
        let mut s = next;
        // Acquire: a consumer that sees the stamp sees the slot's contents.
        while s < end && this.entry(s).load(Ordering::Acquire) == Lookup::stamp(s) {
            s += 1;
        }
        s - 1
    }

    pub(crate) fn cursor(self) -> i64 {
        // The counter below its flags is the next sequence to claim, closed or not: a claim
        // moves it only with a CAS from an unflagged value, so once `close` marks it nothing
        // moves it again. (A copy of the closed value, once kept beside it and stored after the
        // mark, let a read between the two report -1 while events were claimed: seen under miri
        // in `a_blocked_multi_producer_holds_no_claim_and_is_released_by_shutdown_and_halt`.)
        (self.words.next.load(Ordering::Relaxed) & !FLAGS) - 1
    }

    /// The last claimed sequence, read with a read-modify-write (`AcqRel`) of the claim
    /// counter: ordered in the counter's modification order against every claim and every
    /// other such read. A cross-process joiner and a producer rereading the gating table both
    /// take it so, and one of them sees the other (see `crate::ipc`).
    #[cfg_attr(loom, allow(dead_code))] // used by `crate::ipc`
    pub(crate) fn claimed_rmw(self) -> i64 {
        (self.words.next.fetch_add(0, Ordering::AcqRel) & !FLAGS) - 1
    }

    pub(crate) fn close(self) -> i64 {
        // Every claim ordered before this in the counter's modification order is below the
        // target and will be published; every claim after it sees the mark and fails.
        let next = self.words.next.fetch_or(CLOSED, Ordering::AcqRel) & !FLAGS;
        next - 1
    }

    pub(crate) fn join_point(self) -> i64 {
        // Acquire: ordered after the grace period's synchronization like every load after it;
        // the counter is at or above every published, hence every consumed, sequence.
        (self.words.next.load(Ordering::Acquire) & !FLAGS) - 1
    }
}

#[allow(private_interfaces, private_bounds)]
impl SequencerImpl for Multi {
    fn new(capacity: usize) -> Self {
        Self {
            words: MultiWords::new(capacity),
            available: (0..capacity).map(|_| AtomicI32::new(-1)).collect(),
            mask: capacity as i64 - 1,
        }
    }

    fn refuse(&self) {
        self.multi().refuse()
    }

    #[inline]
    fn claim<C: ClaimContext<Sequencer = Self>>(
        cx: &C,
        _local: &mut LocalClaim,
        n: i64,
        mode: Mode,
    ) -> Result<i64, PublishError> {
        MultiRef::claim(cx, n, mode)
    }

    #[inline]
    fn publish(&self, lo: i64, hi: i64) {
        self.multi().publish(lo, hi)
    }

    #[inline]
    fn highest_published(&self, next: i64) -> i64 {
        self.multi().highest_published(next)
    }

    fn cursor(&self) -> i64 {
        self.multi().cursor()
    }

    fn close(&self) -> i64 {
        self.multi().close()
    }

    fn join_point(&self) -> i64 {
        self.multi().join_point()
    }
}

impl Sequencer for Multi {}

impl std::fmt::Debug for Multi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Multi")
            .field("cursor", &self.multi().cursor())
            .finish()
    }
}
