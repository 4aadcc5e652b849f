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
//! - an exclusive stage (one that takes `&mut E`) is, by the graph's check, ordered before or
//!   after every other consumer, so no other reader overlaps its window.
//!
//! The `unsafe` accessors below take those facts as their precondition.

use std::marker::PhantomData;

use crate::sync::{AtomicI64, Ordering, UnsafeCell};

/// The pre-allocated ring of slots, and the record of slots abandoned by their producer.
///
/// # Skipped slots
/// A producer whose publish closure panics still publishes its claim (otherwise consumers would
/// wait on the hole forever) but marks it *skipped*, so consumers pass it without delivering it.
/// Skipping is rare, so it costs nothing until it happens: the producer writes the sequence into
/// `skipped[slot]` and raises `highest_skipped`, both before the `Release` that publishes the slot.
/// A consumer, after the `Acquire` that showed it the batch, loads `highest_skipped` once; only a
/// batch at or below it looks up each slot. Slots hold nothing but the event, as densely as `E`
/// allows.
pub(crate) struct Ring<E> {
    slots: Box<[UnsafeCell<E>]>,
    /// Per slot, the last sequence in it that was skipped (`-1`: none).
    skipped: Box<[AtomicI64]>,
    /// The highest sequence ever skipped (`-1`: none).
    highest_skipped: AtomicI64,
    mask: i64,
}

impl<E> Ring<E> {
    /// Builds `capacity` slots with `factory`. `capacity` is a power of two up to [`MAX_CAPACITY`]
    /// (checked by the builder).
    pub(crate) fn new(capacity: usize, mut factory: impl FnMut() -> E) -> Self {
        debug_assert!(capacity.is_power_of_two());
        Self {
            slots: (0..capacity).map(|_| UnsafeCell::new(factory())).collect(),
            skipped: (0..capacity).map(|_| AtomicI64::new(-1)).collect(),
            highest_skipped: AtomicI64::new(-1),
            mask: capacity as i64 - 1,
        }
    }

    /// The number of slots.
    #[inline]
    pub(crate) fn capacity(&self) -> i64 {
        self.mask + 1
    }

    /// A copyable view of the slots for a hot loop: base pointer and mask in registers, not
    /// reloaded from the shared ring after every handler call that might touch memory.
    #[inline]
    pub(crate) fn slots(&self) -> Slots<'_, E> {
        Slots {
            base: self.slots.as_ptr(),
            mask: self.mask,
            _ring: PhantomData,
        }
    }

    /// The record of skipped slots, as the view the protocol reads it through.
    #[inline]
    pub(crate) fn skips(&self) -> Skips<'_> {
        Skips {
            marks: &self.skipped,
            highest: &self.highest_skipped,
            mask: self.mask,
        }
    }

    /// See [`Skips::mark`].
    #[inline]
    pub(crate) fn mark_skipped(&self, sequence: i64) {
        self.skips().mark(sequence)
    }
}

/// What a consumer reads events from: the slots and the record of skipped ones. A [`Ring`],
/// or a ring in a segment several processes map (`crate::ipc`).
pub(crate) trait Source<E> {
    /// The slots.
    fn slots(&self) -> Slots<'_, E>;
    /// The record of skipped slots.
    fn skips(&self) -> Skips<'_>;
}

impl<E> Source<E> for Ring<E> {
    #[inline]
    fn slots(&self) -> Slots<'_, E> {
        Ring::slots(self)
    }
    #[inline]
    fn skips(&self) -> Skips<'_> {
        Ring::skips(self)
    }
}

/// The record of the slots their producer abandoned, wherever it lives: per slot the last
/// sequence skipped in it, and the highest sequence ever skipped (`-1`: none).
#[derive(Clone, Copy)]
pub(crate) struct Skips<'a> {
    marks: &'a [AtomicI64],
    highest: &'a AtomicI64,
    mask: i64,
}

impl<'a> Skips<'a> {
    /// The view over `marks` (one per slot, a power-of-two count) and `highest`.
    #[cfg_attr(loom, allow(dead_code))] // used by `crate::ipc`
    pub(crate) fn new(marks: &'a [AtomicI64], highest: &'a AtomicI64) -> Self {
        debug_assert!(marks.len().is_power_of_two());
        Self {
            marks,
            highest,
            mask: marks.len() as i64 - 1,
        }
    }

    #[inline]
    fn mark_of(self, sequence: i64) -> &'a AtomicI64 {
        &self.marks[(sequence & self.mask) as usize]
    }

    /// Marks the claimed, unpublished `sequence` as abandoned: consumers will pass it. Must be
    /// called before the publication of `sequence` (whose `Release` carries these stores).
    #[inline]
    pub(crate) fn mark(self, sequence: i64) {
        // Relaxed: published to consumers by the producer's Release of `sequence`.
        self.mark_of(sequence).store(sequence, Ordering::Relaxed);
        self.highest.fetch_max(sequence, Ordering::Relaxed);
    }

    /// Whether any sequence at or after `first` may have been skipped. Called by a consumer after
    /// it acquired the publication of `first`; false means no slot of its batch needs a lookup.
    #[inline]
    pub(crate) fn may_skip_from(self, first: i64) -> bool {
        self.highest.load(Ordering::Relaxed) >= first
    }

    /// Whether the producer abandoned `sequence` (published: the caller acquired it).
    #[inline]
    pub(crate) fn is_skipped(self, sequence: i64) -> bool {
        self.mark_of(sequence).load(Ordering::Relaxed) == sequence
    }
}

/// The ring's slots as a base pointer and mask: what the hot loops index with.
pub(crate) struct Slots<'a, E> {
    base: *const UnsafeCell<E>,
    mask: i64,
    _ring: PhantomData<&'a [UnsafeCell<E>]>,
}

impl<E> Clone for Slots<'_, E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E> Copy for Slots<'_, E> {}

impl<'a, E> Slots<'a, E> {
    /// The slots at `base`, `capacity` (a power of two) of them.
    ///
    /// # Safety
    /// `base` points at `capacity` initialized slots that stay alive and in place for `'a`.
    #[cfg_attr(loom, allow(dead_code))] // used by `crate::ipc`
    pub(crate) unsafe fn from_raw(base: *const UnsafeCell<E>, capacity: usize) -> Self {
        debug_assert!(capacity.is_power_of_two());
        Slots {
            base,
            mask: capacity as i64 - 1,
            _ring: PhantomData,
        }
    }

    /// The slot of `sequence`.
    #[inline]
    fn slot(self, sequence: i64) -> &'a UnsafeCell<E> {
        // Every test; miri checks the bound (tests/edges.rs wraps rings of every size from 1).
        // SAFETY: `base` points at the ring's `capacity` slots, alive for `'a`; `mask` is
        // `capacity - 1` (a power of two, set once in `Ring::new`), so the index is in bounds.
        unsafe { &*self.base.add((sequence & self.mask) as usize) }
    }

    /// Writes the event for `sequence` through `f`.
    ///
    /// # Safety
    /// The caller has claimed `sequence` and not yet published it, so it is the slot's only user:
    /// every gating consumer has passed `sequence - capacity` (the sequencer's wrap check), and no
    /// consumer reads `sequence` before it is published.
    #[inline]
    pub(crate) unsafe fn write<R>(self, sequence: i64, f: impl FnOnce(&mut E) -> R) -> R {
        // SAFETY: the caller's claim makes this the only access to the slot (see above). Loom
        // tracks the access: `single_claims_wait_for_the_gating_sequence`,
        // `single_producer_wrap_never_overwrites`.
        self.slot(sequence).with_mut(|p| f(unsafe { &mut *p }))
    }

    /// Reads the event at `sequence`.
    ///
    /// # Safety
    /// `sequence` is published (the caller's barrier said so, with `Acquire`), the caller has not yet
    /// released it (its own sequence is below `sequence`), and no exclusive stage may be writing it
    /// (the graph's exclusivity check).
    #[inline]
    pub(crate) unsafe fn read<R>(self, sequence: i64, f: impl FnOnce(&E) -> R) -> R {
        // SAFETY: published and not released: producers wait for us, writers are ordered with us.
        // Loom tracks the access: `multi_scan_never_passes_an_unpublished_claim`.
        self.slot(sequence).with(|p| f(unsafe { &*p }))
    }

    /// Mutably accesses the event at `sequence`.
    ///
    /// # Safety
    /// As for [`Slots::read`], and the caller is an exclusive stage: every other consumer is ordered
    /// strictly before or after it, so no reference to this slot exists while `f` runs.
    #[inline]
    pub(crate) unsafe fn read_mut<R>(self, sequence: i64, f: impl FnOnce(&mut E) -> R) -> R {
        // SAFETY: see the precondition: this is the only access for the duration of `f`. Loom
        // tracks it: `pipeline_stage_two_sees_stage_one_writes`.
        self.slot(sequence).with_mut(|p| f(unsafe { &mut *p }))
    }
}

// Every loom model reports a slot access that overlaps another as a causality violation.
// The sequencing protocol at the top of this module keeps the accesses below apart in time.
// SAFETY: the ring hands out `&E` to several consumer threads at once (needs `E: Sync`) and
// `&mut E` to one producer or exclusive stage at a time on any thread (needs `E: Send`).
unsafe impl<E: Send + Sync> Sync for Ring<E> {}
// SAFETY: owning the ring owns the events; moving it moves them (`E: Send`).
unsafe impl<E: Send> Send for Ring<E> {}

/// The largest ring: availability stamps are a sequence's low 32 bits, which tell two laps apart
/// only while the capacity is below 2^31 (see `sequencer::multi`).
pub(crate) const MAX_CAPACITY: usize = 1 << 30;
