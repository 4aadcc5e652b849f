//! The single-producer sequencer ([`Single`]).
//!
//! One thread claims, so the claim is thread-local: the producer keeps the last claimed sequence
//! and a cached minimum of the gating sequences, and touches shared memory only to publish (one
//! `Release` store of the cursor) and on its own cache line. No read-modify-write on the claim
//! path. The cached minimum may be stale (too low), never too high, because consumer sequences
//! only grow; the producer rereads the gating set only when a claim would wrap past it.
//!
//! The cache is kept as a *limit* (the minimum plus the capacity: the highest sequence it may
//! claim) in a word on the producer's own line, which is also how the queue stops it: every
//! change of the lifecycle that refuses claims (close, halt, a failure, the last stage leaving)
//! *poisons* the limit, after changing the state. A claim is one store (the announcement, below),
//! one load of the limit and a compare; only a claim past the limit, because the cache ran out or
//! because it is poisoned, goes out of line, reads the lifecycle, rereads the gating set if it
//! must, and puts the limit back with a CAS (which fails if a refusal poisoned it meanwhile, and
//! is followed by one more look at the lifecycle for a refusal whose poison it replaced). So the
//! hot path pays nothing for stopping, and the producer still sees a refusal at its next claim.
//!

use crossbeam_utils::CachePadded;

use super::{wait_for_room, ClaimContext, LocalClaim, Mode, Sequencer, SequencerImpl};
use crate::error::PublishError;
use crate::protocol::sequence::{Sequence, INITIAL};
use crate::sync::{AtomicI64, Backoff, Ordering};

/// The single-producer sequencer: claims are local to the one producer handle.
///
/// Plain words with a fixed layout and no pointer: a segment several processes map holds one
/// as it is (`crate::ipc`).
#[repr(C)]
pub struct Single {
    cursor: Sequence,
    /// The producer's own line: written by it on every claim (`announced`) and when its room
    /// cache moves (`limit`); written by others only to refuse claims (`limit`, once per
    /// refusal), read by the closer once per close.
    line: CachePadded<ProducerLine>,
    /// No `membarrier`: the light side of the close handshake must be a real fence, so `limit`
    /// stays [`POISON`] and every claim takes the out-of-line path, which has the fence.
    fenced: bool,
}

/// The single producer's shared words; see [`Single`].
#[repr(C)]
struct ProducerLine {
    /// The last sequence the producer may publish: announced before it reads `limit`, so
    /// above the cursor exactly while a claim is between that read and its publish.
    announced: AtomicI64,
    /// The highest sequence the producer may claim without looking anywhere else (its cached
    /// gating minimum plus the capacity), or [`POISON`]: the lifecycle may refuse claims, look.
    limit: AtomicI64,
}

/// `limit` when a claim must take the slow path: below every sequence.
const POISON: i64 = i64::MIN;

impl Single {
    /// The claim's out-of-line path, taken when `last` is past the limit: the room cache ran
    /// out, or the limit is poisoned (the lifecycle may refuse claims; or there is no
    /// `membarrier` and every claim comes here for its fence). Checks the lifecycle, waits for
    /// room if the cache is short (or gives up, by `mode`), and puts the limit back unless a
    /// refusal poisoned it meanwhile. Takes the announcement back if the claim ends here.
    #[cold]
    #[inline(never)]
    fn slow_claim<C: ClaimContext<Sequencer = Self>>(
        cx: &C,
        local: &mut LocalClaim,
        last: i64,
        mode: Mode,
    ) -> Result<(), PublishError> {
        let this = cx.sequencer();
        if this.fenced {
            // The light side's real fence, where the heavy side cannot be `membarrier`.
            crate::sync::fence(Ordering::SeqCst);
        }
        let refused = |e| {
            this.retract(local.claimed);
            Err(e)
        };
        loop {
            // Acquire: a poison read here carries the lifecycle change that stored it (the
            // refusal stores its state first, then the poison with Release).
            let seen = this.line.limit.load(Ordering::Acquire);
            if !cx.phase().is_open() {
                return refused(cx.publish_error());
            }
            if last > local.limit {
                let wrap = last - cx.capacity();
                match wait_for_room(cx, wrap, mode) {
                    Ok(min) => local.limit = min + cx.capacity(),
                    Err(e) => return refused(e),
                }
            }
            if this.fenced {
                return Ok(());
            }
            // AcqRel: a refusal whose poison this replaces is seen by the check below (Acquire),
            // and a claim that later reads this limit reads the room it was computed from
            // (Release; the same thread, but say it). On failure a refusal came in: look again.
            if this
                .line
                .limit
                .compare_exchange(seen, local.limit, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                // The CAS may have replaced a refusal's poison that the check above came too
                // early to see (a refusal after a cleared one stores the same value): look once
                // more, and poison again if so.
                if !cx.phase().is_open() {
                    // A swap for loom's sake, as in `refuse`.
                    this.line.limit.swap(POISON, Ordering::Relaxed);
                    return refused(cx.publish_error());
                }
                return Ok(());
            }
        }
    }

    /// The published cursor, `Acquire`.
    #[cfg_attr(loom, allow(dead_code))] // used by `crate::ipc`
    pub(crate) fn cursor_acquire(&self) -> i64 {
        self.cursor.get()
    }

    /// The bound of the cross-process join protocol (`protocol::table`): the published cursor,
    /// after a SeqCst fence. Only the producer moves the cursor, so a read-modify-write on it
    /// would not order anything (the producer's plain stores break release sequences); the
    /// fences on both sides do: either the joiner's cursor read comes after the producer's
    /// last publish, or the producer's table read sees the joiner's entry.
    #[cfg_attr(loom, allow(dead_code))] // used by `crate::ipc`
    pub(crate) fn join_bound(&self) -> i64 {
        crate::sync::fence(Ordering::SeqCst);
        self.cursor.get()
    }

    /// Ends a claim that publishes nothing (refused, full, timed out): `published` is the
    /// producer's last published sequence, at or below the cursor.
    #[cold]
    fn retract(&self, published: i64) {
        // Release: a closer that sees the retraction sees the cursor it is at or below.
        self.line.announced.store(published, Ordering::Release);
    }
}

#[allow(private_interfaces, private_bounds)]
impl SequencerImpl for Single {
    fn new(capacity: usize) -> Self {
        let fenced = crate::protocol::fence::needs_real_fence();
        let limit = if fenced {
            POISON
        } else {
            INITIAL + capacity as i64
        };
        Self {
            cursor: Sequence::new(INITIAL),
            line: CachePadded::new(ProducerLine {
                announced: AtomicI64::new(INITIAL),
                limit: AtomicI64::new(limit),
            }),
            fenced,
        }
    }

    /// The whole claim, when the limit allows it: one store, one load of the producer's own
    /// line and a compare. The lifecycle is not read: every change that refuses claims poisons
    /// the limit (see [`SequencerImpl::refuse`] and the module docs).
    #[inline]
    fn claim<C: ClaimContext<Sequencer = Self>>(
        cx: &C,
        local: &mut LocalClaim,
        n: i64,
        mode: Mode,
    ) -> Result<i64, PublishError> {
        let this = cx.sequencer();
        // Read into a value before the light fence, which (a compiler fence) would otherwise
        // make the compiler load it again after.
        let claimed = local.claimed;
        let last = claimed + n;
        // Relaxed, then the light fence: the close handshake (see the module docs) orders this
        // store before the load of `limit`.
        this.line.announced.store(last, Ordering::Relaxed);
        crate::protocol::fence::light();
        // Relaxed: the producer's own value, or a poison that only sends it to the slow path
        // (which reads it again with Acquire).
        if last > this.line.limit.load(Ordering::Relaxed) {
            Self::slow_claim(cx, local, last, mode)?;
        }
        local.claimed = last;
        Ok(claimed + 1)
    }

    fn refuse(&self) {
        // Release: the slow path that reads the poison (Acquire) sees the lifecycle change the
        // caller made before this call. A swap where a store would do: loom misorders a plain
        // store against a concurrent read-modify-write (tokio-rs/loom#254: the store can land
        // between the two halves of the producer's CAS), and reported this protocol broken
        // until the store became one. Refusals are rare; the cost does not matter.
        self.line.limit.swap(POISON, Ordering::Release);
    }

    #[inline]
    fn publish(&self, _lo: i64, hi: i64) {
        self.cursor.set(hi);
    }

    #[inline]
    fn highest_published(&self, _next: i64) -> i64 {
        self.cursor.get()
    }

    fn cursor(&self) -> i64 {
        self.cursor.get_relaxed()
    }

    fn close(&self) -> i64 {
        // The lifecycle already says closing and the limit is poisoned (`refuse`). The heavy
        // fence orders that poison before our loads of `announced` against the producer's
        // store of `announced` and its load of the limit.
        crate::protocol::fence::heavy();
        let backoff = Backoff::new();
        // Bounded by one publish: the producer either finishes the claim it is in, or sees the
        // close while waiting for room (the closer notified the wait strategy first) and
        // retracts. Acquire on both: the target covers every slot written up to it.
        loop {
            let announced = self.line.announced.load(Ordering::Acquire);
            let cursor = self.cursor.get();
            if cursor >= announced {
                return cursor;
            }
            backoff.snooze();
        }
    }

    fn join_point(&self) -> i64 {
        // Acquire: the consumer sequences any cached minimum came from are at or below it.
        self.cursor.get()
    }
}

impl Sequencer for Single {}

impl std::fmt::Debug for Single {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Single")
            .field("cursor", &self.cursor.get_relaxed())
            .finish()
    }
}
