//! The ring: a fixed array of pre-allocated slots, indexed by `sequence & (capacity - 1)`.
//!
//! The ring owns the events and nothing else; it knows no protocol. Slots are built once by the
//! user's factory when the queue is built, and reused forever after: publishing writes into a slot
//! in place and consuming reads it in place, so the hot path never allocates.
//!
//! Who may touch a slot when is decided elsewhere, by the sequencer and the barriers:
//! - a producer may write slot `s` between claiming `s` and publishing it; it claims `s` only after
//!   every gating consumer has passed `s - capacity`, so nobody still reads the slot's previous event;
//! - a consumer may read slot `s` after it saw `s` published (or its upstream stage pass `s`), and
//!   until it stores a sequence `>= s`;
//! - an exclusive stage (one that takes `&mut E`) is, by the builder's check, ordered before or
//!   after every other consumer, so no other reader overlaps its window.
//!
//! The two `unsafe` accessors below take those facts as their precondition.

use crate::sync::UnsafeCell;

/// One slot: the event, and whether its producer abandoned it.
///
/// `skipped` is written by the producer together with the event and published with it. It is set
/// when the publish closure panicked (or a blocked producer gave its claim back), so that consumers
/// pass the slot without delivering it instead of waiting forever on a hole.
pub(crate) struct Slot<E> {
    event: UnsafeCell<E>,
    skipped: UnsafeCell<bool>,
}

/// The pre-allocated ring of slots.
pub(crate) struct Ring<E> {
    slots: Box<[Slot<E>]>,
    mask: i64,
}

impl<E> Ring<E> {
    /// Builds `capacity` slots with `factory`. `capacity` was validated by [`check_capacity`].
    pub(crate) fn new(capacity: usize, mut factory: impl FnMut() -> E) -> Self {
        debug_assert!(capacity.is_power_of_two());
        let slots = (0..capacity)
            .map(|_| Slot {
                event: UnsafeCell::new(factory()),
                skipped: UnsafeCell::new(false),
            })
            .collect();
        Self {
            slots,
            mask: capacity as i64 - 1,
        }
    }

    /// The number of slots.
    #[inline]
    pub(crate) fn capacity(&self) -> i64 {
        self.mask + 1
    }

    #[inline]
    fn slot(&self, sequence: i64) -> &Slot<E> {
        // Indexing is bounds-checked; the mask keeps it in range, so the check folds away.
        &self.slots[(sequence & self.mask) as usize]
    }

    /// Writes the event for `sequence` through `f`, and records whether it is delivered.
    ///
    /// # Safety
    /// The caller has claimed `sequence` and not yet published it, so it is the slot's only user:
    /// every gating consumer has passed `sequence - capacity` (the sequencer's wrap check), and no
    /// consumer reads `sequence` before it is published.
    #[inline]
    pub(crate) unsafe fn write<R>(&self, sequence: i64, f: impl FnOnce(&mut E) -> R) -> R {
        let slot = self.slot(sequence);
        // SAFETY: the caller's claim makes this the only access to the slot (see above).
        let r = slot.event.with_mut(|p| f(unsafe { &mut *p }));
        // SAFETY: as above; the flag belongs to the same claim.
        slot.skipped.with_mut(|p| unsafe { *p = false });
        r
    }

    /// Marks the claimed `sequence` as abandoned: consumers will pass it without delivering it.
    ///
    /// # Safety
    /// As for [`Ring::write`]: the caller holds the unpublished claim on `sequence`.
    #[inline]
    pub(crate) unsafe fn mark_skipped(&self, sequence: i64) {
        // SAFETY: the caller holds the unpublished claim, so nobody else touches the slot.
        self.slot(sequence)
            .skipped
            .with_mut(|p| unsafe { *p = true });
    }

    /// Reads the event at `sequence`: `None` if its producer abandoned it.
    ///
    /// # Safety
    /// `sequence` is published (the caller's barrier said so, with `Acquire`), the caller has not yet
    /// released it (its own sequence is below `sequence`), and no exclusive stage may be writing it
    /// (the builder's exclusivity check).
    #[inline]
    pub(crate) unsafe fn read<R>(&self, sequence: i64, f: impl FnOnce(&E) -> R) -> Option<R> {
        let slot = self.slot(sequence);
        // SAFETY: published and not released: producers wait for us, writers are ordered with us.
        if slot.skipped.with(|p| unsafe { *p }) {
            return None;
        }
        // SAFETY: as above.
        Some(slot.event.with(|p| f(unsafe { &*p })))
    }

    /// Mutably accesses the event at `sequence`: `None` if its producer abandoned it.
    ///
    /// # Safety
    /// As for [`Ring::read`], and the caller is an exclusive stage: every other consumer is ordered
    /// strictly before or after it, so no reference to this slot exists while `f` runs.
    #[inline]
    pub(crate) unsafe fn read_mut<R>(
        &self,
        sequence: i64,
        f: impl FnOnce(&mut E) -> R,
    ) -> Option<R> {
        let slot = self.slot(sequence);
        // SAFETY: see the precondition: this is the only access for the duration of `f`.
        if slot.skipped.with(|p| unsafe { *p }) {
            return None;
        }
        // SAFETY: as above.
        Some(slot.event.with_mut(|p| f(unsafe { &mut *p })))
    }

    /// Whether the producer abandoned `sequence`.
    ///
    /// # Safety
    /// As for [`Ring::read`].
    #[inline]
    pub(crate) unsafe fn is_skipped(&self, sequence: i64) -> bool {
        // SAFETY: published and not released by the caller.
        self.slot(sequence).skipped.with(|p| unsafe { *p })
    }
}

// SAFETY: the ring hands out `&E` to several consumer threads at once (needs `E: Sync`) and `&mut E`
// to one producer or exclusive stage at a time on any thread (needs `E: Send`); the sequencing
// protocol described at the top of this module keeps those accesses apart in time.
unsafe impl<E: Send + Sync> Sync for Ring<E> {}
// SAFETY: owning the ring owns the events; moving it moves them (`E: Send`).
unsafe impl<E: Send> Send for Ring<E> {}

/// Checks that `capacity` is a usable ring size: a power of two, at least 1, at most 2^30.
pub(crate) fn check_capacity(capacity: usize) -> Result<(), crate::BuildError> {
    const MAX: usize = 1 << 30;
    if capacity.is_power_of_two() && capacity <= MAX {
        return Ok(());
    }
    let below = if capacity == 0 {
        None
    } else {
        Some(1usize << (usize::BITS - 1 - capacity.min(MAX).leading_zeros()))
    };
    let above = capacity.checked_next_power_of_two().filter(|&c| c <= MAX);
    Err(crate::BuildError::Capacity {
        requested: capacity,
        below,
        above,
    })
}
