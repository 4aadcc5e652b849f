//! The segment: its layout, its header and its validation, and the few functions that turn
//! offsets into references. All of the module's `unsafe` that touches the mapping is here.
//!
//! # Layout
//! ```text
//! 0      Header      plain integers, written once by the creator before `Control::ready`
//! 512    Control     the lifecycle words, both sequencers' words, skip high-water mark,
//!                    the futex words, the eviction reports, `ready`
//! ...    stages      `stages` x StageEntry (each on its own cache lines)
//! ...    producers   `producers` x CachePadded<ProducerEntry>
//! ...    available   `capacity` x AtomicI32 (the multi-producer stamps)
//! ...    skipped     `capacity` x AtomicI64
//! ...    slots       `capacity` x E
//! ```
//! Every offset is computed by [`Layout::new`] from the header's parameters, which are
//! checked (and bounded) first, so the segment's contents never decide where this process
//! reads or writes: a peer can corrupt the values (events, sequences, names), never the
//! bounds. Sequence-to-slot indices are masked; stage masks are cut to the table.

use std::fs::{File, OpenOptions};
use std::mem::{align_of, size_of};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

use super::error::ShmError;
use super::process;
use crate::protocol::lifecycle::Phase;
use crate::protocol::ring::{Skips, Slots};
use crate::protocol::sequencer::multi::MultiWords;
use crate::protocol::sequencer::{SequencerImpl, Single};
use crate::protocol::table::{Owner, ProducerEntry, StageEntry, NAME_LEN};
use crate::sync::UnsafeCell;

/// "ringmq" and a format byte.
pub(crate) const MAGIC: [u8; 8] = *b"RINGMQ\x00\x01";
/// The layout version: bumped whenever anything below changes.
pub(crate) const VERSION: u32 = 1;
/// The most stage entries (a stage's upstream is a 64-bit mask).
pub(crate) const MAX_STAGES: usize = 64;
/// The most producer entries.
pub(crate) const MAX_PRODUCERS: usize = 1024;
/// The largest ring of a segment (the in-process bound).
pub(crate) const MAX_CAPACITY: usize = crate::protocol::ring::MAX_CAPACITY;
/// Eviction reports kept (the newest).
pub(crate) const REPORTS: usize = 16;

/// The producer kind, as the header records it.
pub(crate) const KIND_SINGLE: u32 = 1;
pub(crate) const KIND_MULTI: u32 = 2;

/// The header: plain integers, written by the creator before it sets `Control::ready`, never
/// after. Read once by each process that opens the segment (a volatile copy) and checked.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) magic: [u8; 8],
    pub(crate) version: u32,
    pub(crate) kind: u32,
    pub(crate) stages: u32,
    pub(crate) producers: u32,
    pub(crate) capacity: u64,
    pub(crate) event_size: u64,
    pub(crate) event_align: u64,
    pub(crate) fingerprint: u64,
    pub(crate) total_len: u64,
    pub(crate) creator_pid: u32,
    /// How every participant waits (an `IpcWait` as a number): one for all, so that a
    /// publisher wakes a sleeper however each was configured.
    pub(crate) wait: u32,
    pub(crate) creator_start: u64,
    pub(crate) wait_nanos: u64,
    /// The build's pointer width and endianness: a segment is for one machine's processes.
    pub(crate) platform: u64,
}

impl Header {
    /// The header of a segment this process creates for `params`.
    fn new(params: &Params, layout: &Layout) -> Self {
        let me = process::me();
        Header {
            magic: MAGIC,
            version: VERSION,
            kind: params.kind,
            stages: params.stages as u32,
            producers: params.producers as u32,
            capacity: params.capacity as u64,
            event_size: params.event_size as u64,
            event_align: params.event_align as u64,
            fingerprint: params.fingerprint,
            total_len: layout.total as u64,
            creator_pid: me.pid,
            wait: params.wait,
            creator_start: me.start,
            wait_nanos: params.wait_nanos,
            platform: platform(),
        }
    }
}

const HEADER_SPACE: usize = 512;

/// One eviction report: who was removed, where, when.
#[repr(C)]
pub(crate) struct ReportSlot {
    /// The report's number plus one once written (0: never written). Written last (Release).
    pub(crate) stamp: AtomicU64,
    pub(crate) kind: AtomicU32,
    pub(crate) pid: AtomicU32,
    pub(crate) sequence: AtomicI64,
    pub(crate) count: AtomicU64,
    pub(crate) at: AtomicU64,
    pub(crate) name: [AtomicU64; NAME_LEN / 8],
}

/// The futex words: a counter bumped by each wake, and how many sleep on it.
#[repr(C)]
pub(crate) struct WaitWords {
    pub(crate) futex: AtomicU32,
    pub(crate) sleepers: AtomicU32,
}

/// The shared words besides the tables and the ring.
#[repr(C)]
pub(crate) struct Control {
    pub(crate) phase: Phase,
    pub(crate) single: Single,
    pub(crate) multi: MultiWords,
    pub(crate) highest_skipped: CachePadded<AtomicI64>,
    pub(crate) wait: CachePadded<WaitWords>,
    /// Producer handles attached (or dead and not yet repaired); the last to leave closes.
    pub(crate) producers: AtomicU32,
    /// Set (Release) once the creator wrote the header and built every shared word.
    pub(crate) ready: AtomicU32,
    /// Reports written so far (the newest [`REPORTS`] are kept).
    pub(crate) reports: AtomicU64,
    pub(crate) report: [ReportSlot; REPORTS],
}

/// Where everything is, from the header's parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) capacity: usize,
    pub(crate) stages: usize,
    pub(crate) producers: usize,
    pub(crate) control: usize,
    pub(crate) stage_table: usize,
    pub(crate) producer_table: usize,
    pub(crate) available: usize,
    pub(crate) skipped: usize,
    pub(crate) slots: usize,
    pub(crate) total: usize,
}

fn align_up(n: usize, align: usize) -> Option<usize> {
    Some(n.checked_add(align - 1)? & !(align - 1))
}

impl Layout {
    /// The layout for these parameters, or `None` if they are out of bounds (a corrupt header
    /// or a request too large). Every sum is checked.
    pub(crate) fn new(
        capacity: usize,
        stages: usize,
        producers: usize,
        event_size: usize,
        event_align: usize,
    ) -> Option<Self> {
        if !capacity.is_power_of_two()
            || capacity > MAX_CAPACITY
            || stages == 0
            || stages > MAX_STAGES
            || producers == 0
            || producers > MAX_PRODUCERS
            || !event_align.is_power_of_two()
            || event_align > 4096
        {
            return None;
        }
        const LINE: usize = 128;
        let control = HEADER_SPACE;
        let stage_table = align_up(control + size_of::<Control>(), LINE)?;
        let producer_table = align_up(
            stage_table.checked_add(stages.checked_mul(size_of::<StageEntry>())?)?,
            LINE,
        )?;
        let available = align_up(
            producer_table
                .checked_add(producers.checked_mul(size_of::<CachePadded<ProducerEntry>>())?)?,
            LINE,
        )?;
        let skipped = align_up(available.checked_add(capacity.checked_mul(4)?)?, LINE)?;
        let slots = align_up(
            skipped.checked_add(capacity.checked_mul(8)?)?,
            LINE.max(event_align),
        )?;
        let total = align_up(slots.checked_add(capacity.checked_mul(event_size)?)?, 4096)?;
        Some(Self {
            capacity,
            stages,
            producers,
            control,
            stage_table,
            producer_table,
            available,
            skipped,
            slots,
            total,
        })
    }
}

/// The memory behind a segment: a shared mapping of a file, or (for tests of the segment
/// access under miri, which cannot map files) a heap buffer.
pub(crate) enum Backing {
    /// Held for its lifetime: the mapping is unmapped when the segment drops.
    #[allow(dead_code)]
    Mapped(memmap2::MmapRaw),
    #[cfg(test)]
    #[allow(dead_code)]
    Heap(HeapBuffer),
}

/// Test only: a heap buffer owned through a raw pointer, as a mapping is (a `Box` moved after
/// the base pointer was taken from it would retag it, and miri rightly rejects the pointer).
#[cfg(test)]
pub(crate) struct HeapBuffer(*mut [CachePadded<[u8; 128]>]);

#[cfg(test)]
impl Drop for HeapBuffer {
    fn drop(&mut self) {
        // SAFETY: made by `Box::into_raw` in `Segment::on_heap`, dropped once, here.
        drop(unsafe { Box::from_raw(self.0) });
    }
}

/// A segment mapped by this process: the base and the checked layout. Every reference into it
/// comes from the functions below.
pub(crate) struct Segment {
    base: *mut u8,
    layout: Layout,
    header: Header,
    path: PathBuf,
    _backing: Backing,
}

// Exercised across threads and processes by tests/ipc.rs, under miri by
// `ipc::tests::two_views_of_one_segment_hand_events_over`.
// SAFETY: shared memory accessed only through atomics (the shared words) and the ring protocol
// (the slots, `E: Pod + Send + Sync` by the front ends); the base pointer is never written.
unsafe impl Send for Segment {}
// SAFETY: as for `Send`.
unsafe impl Sync for Segment {}

/// What the creator asks for.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub(crate) capacity: usize,
    pub(crate) kind: u32,
    pub(crate) stages: usize,
    pub(crate) producers: usize,
    pub(crate) event_size: usize,
    pub(crate) event_align: usize,
    pub(crate) fingerprint: u64,
    pub(crate) mode: u32,
    pub(crate) wait: u32,
    pub(crate) wait_nanos: u64,
}

fn platform() -> u64 {
    (size_of::<usize>() as u64)
        | if cfg!(target_endian = "big") {
            1 << 8
        } else {
            0
        }
}

impl Segment {
    /// Creates the segment file at `path` (owner-only permissions by `params.mode`), sized and
    /// built for `params`. A file already there is replaced if it is a ringmq segment whose
    /// every participant is dead (a crashed run), refused otherwise.
    pub(crate) fn create(path: &Path, params: Params) -> Result<Self, ShmError> {
        let layout = Layout::new(
            params.capacity,
            params.stages,
            params.producers,
            params.event_size,
            params.event_align,
        )
        .ok_or(ShmError::Layout {
            capacity: params.capacity,
            stages: params.stages,
            producers: params.producers,
        })?;
        let io = |source| ShmError::Io {
            path: path.to_owned(),
            source,
        };
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(params.mode)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::check_stale(path)?;
                crate::diag::warn(format_args!(
                    "replacing the stale segment {} (every process that used it is dead)",
                    path.display()
                ));
                std::fs::remove_file(path).map_err(io)?;
                OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(params.mode)
                    .open(path)
                    .map_err(io)?
            }
            Err(e) => return Err(io(e)),
        };
        file.set_len(layout.total as u64).map_err(io)?;
        let map = memmap2::MmapOptions::new()
            .len(layout.total)
            .map_raw(&file)
            .map_err(io)?;
        let header = Header::new(&params, &layout);
        let base = map.as_mut_ptr();
        let segment = Segment {
            base,
            layout,
            header,
            path: path.to_owned(),
            _backing: Backing::Mapped(map),
        };
        // SAFETY: the file is new (create_new) and sized to the layout; nobody else can have
        // it ready before `ready` is set below, so this process is the only one writing.
        unsafe { segment.build() };
        Ok(segment)
    }

    /// Opens the segment at `path` and checks it against what this process expects: `Err`
    /// naming the first thing that differs.
    pub(crate) fn open(
        path: &Path,
        expect: Params,
        wait_ready: std::time::Duration,
    ) -> Result<Self, ShmError> {
        let io = |source| ShmError::Io {
            path: path.to_owned(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io)?;
        let (header, layout) = Self::read_header(&file, path, wait_ready)?;
        check(&header, &expect)?;
        let map = memmap2::MmapOptions::new()
            .len(layout.total)
            .map_raw(&file)
            .map_err(io)?;
        let base = map.as_mut_ptr();
        Ok(Segment {
            base,
            layout,
            header,
            path: path.to_owned(),
            _backing: Backing::Mapped(map),
        })
    }

    /// Reads and checks the header of an open segment file: magic, version, platform, the
    /// layout's bounds, and the file's length against the layout. Waits (bounded) for the
    /// creator to finish building.
    fn read_header(
        file: &File,
        path: &Path,
        wait_ready: std::time::Duration,
    ) -> Result<(Header, Layout), ShmError> {
        let io = |source| ShmError::Io {
            path: path.to_owned(),
            source,
        };
        let len = file.metadata().map_err(io)?.len();
        let need = (HEADER_SPACE + size_of::<Control>()) as u64;
        if len < need {
            return Err(ShmError::NotASegment {
                path: path.to_owned(),
                why: format!("{len} bytes, less than a header ({need})"),
            });
        }
        let map = memmap2::MmapOptions::new()
            .len(need as usize)
            .map_raw_read_only(file)
            .map_err(io)?;
        let base = map.as_ptr();
        let deadline = std::time::Instant::now() + wait_ready;
        loop {
            // Tested by the mismatch and stale-segment tests of tests/ipc.rs.
            // SAFETY: `base` maps `need` bytes (the header and `Control`); `ready` is read
            // atomically, the header copied with a volatile read (a peer may write it: never a
            // reference to it).
            let (header, ready) = unsafe {
                let ready = &*(base.add(HEADER_SPACE + std::mem::offset_of!(Control, ready))
                    as *const AtomicU32);
                let ready = ready.load(Ordering::Acquire);
                (std::ptr::read_volatile(base as *const Header), ready)
            };
            if header.magic != MAGIC {
                return Err(ShmError::NotASegment {
                    path: path.to_owned(),
                    why: "no ringmq magic".into(),
                });
            }
            if header.version != VERSION {
                return Err(ShmError::Mismatch {
                    what: "layout version",
                    segment: header.version.to_string(),
                    expected: VERSION.to_string(),
                });
            }
            if header.platform != platform() {
                return Err(ShmError::Mismatch {
                    what: "platform (pointer width, endianness)",
                    segment: header.platform.to_string(),
                    expected: platform().to_string(),
                });
            }
            if ready == 1 {
                let layout = Layout::new(
                    header.capacity as usize,
                    header.stages as usize,
                    header.producers as usize,
                    header.event_size as usize,
                    header.event_align as usize,
                )
                .filter(|l| l.total as u64 == header.total_len)
                .ok_or_else(|| ShmError::NotASegment {
                    path: path.to_owned(),
                    why: "its header's layout is out of bounds (corrupt)".into(),
                })?;
                if len < layout.total as u64 {
                    return Err(ShmError::NotASegment {
                        path: path.to_owned(),
                        why: format!("{len} bytes, its layout needs {}", layout.total),
                    });
                }
                return Ok((header, layout));
            }
            let creator = Owner {
                pid: header.creator_pid,
                start: header.creator_start,
            };
            if !process::alive(creator) || std::time::Instant::now() >= deadline {
                return Err(ShmError::NotReady {
                    path: path.to_owned(),
                    creator_pid: header.creator_pid,
                });
            }
            std::thread::yield_now();
        }
    }

    /// `Ok` if the segment at `path` may be replaced: a ringmq segment (or an unfinished one)
    /// whose creator and every participant are dead.
    fn check_stale(path: &Path) -> Result<(), ShmError> {
        let old = match OpenOptions::new().read(true).write(true).open(path) {
            Ok(f) => f,
            Err(source) => {
                return Err(ShmError::Io {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        match Self::read_header(&old, path, std::time::Duration::ZERO) {
            Ok((header, layout)) => {
                let map = memmap2::MmapOptions::new()
                    .len(layout.total)
                    .map_raw(&old)
                    .map_err(|source| ShmError::Io {
                        path: path.to_owned(),
                        source,
                    })?;
                let seg = Segment {
                    base: map.as_mut_ptr(),
                    layout,
                    header,
                    path: path.to_owned(),
                    _backing: Backing::Mapped(map),
                };
                if let Some(pid) = seg.live_participant() {
                    return Err(ShmError::InUse {
                        path: path.to_owned(),
                        pid,
                    });
                }
                Ok(())
            }
            // Never finished by a creator that died: stale.
            Err(ShmError::NotReady { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// A live process among the creator and the table's participants, if any.
    pub(crate) fn live_participant(&self) -> Option<u32> {
        let creator = Owner {
            pid: self.header.creator_pid,
            start: self.header.creator_start,
        };
        if process::alive(creator) {
            return Some(creator.pid);
        }
        let stages = self
            .stages()
            .iter()
            .filter(|s| s.state() != crate::protocol::table::FREE);
        for owner in stages.map(|s| s.owner()) {
            if process::alive(owner) {
                return Some(owner.pid);
            }
        }
        for p in self.producers() {
            if p.state() != crate::protocol::table::FREE && process::alive(p.presence.owner()) {
                return Some(p.presence.pid.load(Ordering::Relaxed));
            }
        }
        None
    }

    /// Builds every shared word in place and sets `ready`.
    ///
    /// # Safety
    /// The caller is the only process with access to the segment (it just created the file),
    /// and the mapping covers `self.layout.total` bytes.
    unsafe fn build(&self) {
        let l = self.layout;
        // Miri: `two_views_of_one_segment_hand_events_over` (the heap segment is built here).
        // SAFETY: each write is at an offset from `Layout::new`, aligned for its type (every
        // region starts at a multiple of 128 and the types have alignment <= 128) and inside
        // `total`; nobody else reads before `ready`.
        unsafe {
            std::ptr::write_volatile(self.base as *mut Header, self.header);
            let control = self.base.add(l.control) as *mut Control;
            std::ptr::write(std::ptr::addr_of_mut!((*control).phase), Phase::new());
            std::ptr::write(
                std::ptr::addr_of_mut!((*control).single),
                <Single as SequencerImpl>::new(l.capacity),
            );
            std::ptr::write(
                std::ptr::addr_of_mut!((*control).multi),
                MultiWords::new(l.capacity),
            );
            std::ptr::write(
                std::ptr::addr_of_mut!((*control).highest_skipped),
                CachePadded::new(AtomicI64::new(-1)),
            );
            let stages = self.base.add(l.stage_table) as *mut StageEntry;
            for i in 0..l.stages {
                std::ptr::write(stages.add(i), StageEntry::new());
            }
            let producers = self.base.add(l.producer_table) as *mut CachePadded<ProducerEntry>;
            for i in 0..l.producers {
                std::ptr::write(producers.add(i), CachePadded::new(ProducerEntry::new()));
            }
            let available = self.base.add(l.available) as *mut AtomicI32;
            for i in 0..l.capacity {
                std::ptr::write(available.add(i), AtomicI32::new(-1));
            }
            let skipped = self.base.add(l.skipped) as *mut AtomicI64;
            for i in 0..l.capacity {
                std::ptr::write(skipped.add(i), AtomicI64::new(-1));
            }
            // The slots, the futex words, the counters and the reports are all zero: a fresh
            // file reads as zeros, and zero is a valid `E: Pod`.
            // No live stage yet: producers are refused (`NoConsumers`) until one joins.
            (*control).phase.set_no_stage(true);
            (*control).single.refuse();
            crate::protocol::sequencer::multi::MultiRef::new(&(*control).multi, self.available())
                .refuse();
            (*control).ready.store(1, Ordering::Release);
        }
    }

    /// The parameters the segment was created with.
    pub(crate) fn header(&self) -> &Header {
        &self.header
    }

    pub(crate) fn layout(&self) -> &Layout {
        &self.layout
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn control(&self) -> &Control {
        // SAFETY: `control` is in bounds and aligned (Layout::new), built before `ready`, and
        // holds only atomics (shared access through `&` is how they are meant to be used).
        // Every ipc test; miri: `two_views_of_one_segment_hand_events_over`.
        unsafe { &*(self.base.add(self.layout.control) as *const Control) }
    }

    pub(crate) fn stages(&self) -> &[StageEntry] {
        // SAFETY: as for `control`: `stages` entries of atomics, in bounds and aligned.
        unsafe {
            std::slice::from_raw_parts(
                self.base.add(self.layout.stage_table) as *const StageEntry,
                self.layout.stages,
            )
        }
    }

    pub(crate) fn producers(&self) -> &[CachePadded<ProducerEntry>] {
        // SAFETY: as for `control`: `producers` entries of atomics, in bounds and aligned.
        unsafe {
            std::slice::from_raw_parts(
                self.base.add(self.layout.producer_table) as *const CachePadded<ProducerEntry>,
                self.layout.producers,
            )
        }
    }

    pub(crate) fn available(&self) -> &[AtomicI32] {
        // SAFETY: as for `control`: `capacity` atomics, in bounds and aligned.
        unsafe {
            std::slice::from_raw_parts(
                self.base.add(self.layout.available) as *const AtomicI32,
                self.layout.capacity,
            )
        }
    }

    pub(crate) fn skips(&self) -> Skips<'_> {
        // SAFETY: as for `control`: `capacity` atomics, in bounds and aligned.
        let marks = unsafe {
            std::slice::from_raw_parts(
                self.base.add(self.layout.skipped) as *const AtomicI64,
                self.layout.capacity,
            )
        };
        Skips::new(marks, &self.control().highest_skipped)
    }

    /// The slots, as events of type `E`.
    ///
    /// # Safety
    /// `E` is the segment's event type: its size and alignment are the header's (checked by
    /// `open` and `create`), and every bit pattern is an `E` (`Pod`), so the zeroed or
    /// peer-written bytes are valid events. Access to a slot follows the ring protocol.
    pub(crate) unsafe fn slots<E>(&self) -> Slots<'_, E> {
        debug_assert_eq!(size_of::<E>() as u64, self.header.event_size);
        debug_assert_eq!(align_of::<E>() as u64, self.header.event_align);
        // SAFETY: `slots` is aligned for `E` (Layout::new aligns it to `E`'s alignment), holds
        // `capacity` of them inside the mapping, which lives as long as `self`. `UnsafeCell<E>`
        // has `E`'s layout. Miri: `two_views_of_one_segment_hand_events_over`.
        unsafe {
            Slots::from_raw(
                self.base.add(self.layout.slots) as *const UnsafeCell<E>,
                self.layout.capacity,
            )
        }
    }

    /// The single-producer sequencer's words.
    pub(crate) fn single(&self) -> &Single {
        &self.control().single
    }

    /// Test only: a segment in a heap buffer, built as `create` builds a file's.
    #[cfg(test)]
    pub(crate) fn on_heap(params: Params) -> Self {
        let layout = Layout::new(
            params.capacity,
            params.stages,
            params.producers,
            params.event_size,
            params.event_align,
        )
        .unwrap();
        let buf: Box<[CachePadded<[u8; 128]>]> = (0..layout.total / 128)
            .map(|_| CachePadded::new([0u8; 128]))
            .collect();
        let buf = Box::into_raw(buf);
        let base = buf as *mut u8;
        let segment = Segment {
            base,
            layout,
            header: Header::new(&params, &layout),
            path: PathBuf::from("(heap)"),
            _backing: Backing::Heap(HeapBuffer(buf)),
        };
        // SAFETY: a fresh buffer of `total` bytes, 128-aligned, this thread's only.
        unsafe { segment.build() };
        segment
    }
}

/// Checks a segment's header against what the opener expects; `Err` says what differs.
fn check(h: &Header, expect: &Params) -> Result<(), ShmError> {
    let kind = |k: u32| {
        if k == KIND_SINGLE {
            "single producer"
        } else {
            "multi producer"
        }
    };
    let mismatch = |what, segment: String, expected: String| {
        Err(ShmError::Mismatch {
            what,
            segment,
            expected,
        })
    };
    if h.event_size != expect.event_size as u64 || h.event_align != expect.event_align as u64 {
        return mismatch(
            "event size and alignment",
            format!("{} bytes, aligned to {}", h.event_size, h.event_align),
            format!(
                "{} bytes, aligned to {}",
                expect.event_size, expect.event_align
            ),
        );
    }
    if h.fingerprint != expect.fingerprint {
        return mismatch(
            "event type fingerprint",
            format!("{:#018x}", h.fingerprint),
            format!("{:#018x}", expect.fingerprint),
        );
    }
    if expect.capacity != 0 && h.capacity != expect.capacity as u64 {
        return mismatch(
            "capacity",
            h.capacity.to_string(),
            expect.capacity.to_string(),
        );
    }
    if h.kind != expect.kind {
        return mismatch(
            "producer kind",
            kind(h.kind).into(),
            kind(expect.kind).into(),
        );
    }
    Ok(())
}

/// A type's fingerprint: FNV-1a of its name, size and alignment. The same type in every build
/// of the same source; [`ShmOptions::type_tag`](super::ShmOptions::type_tag) overrides it.
pub(crate) fn fingerprint<E>() -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let name = std::any::type_name::<E>();
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    feed(name.as_bytes());
    feed(&(size_of::<E>() as u64).to_le_bytes());
    feed(&(align_of::<E>() as u64).to_le_bytes());
    h
}

impl Segment {
    /// The multi-producer sequencer's view.
    pub(crate) fn multi(&self) -> crate::protocol::sequencer::multi::MultiRef<'_> {
        crate::protocol::sequencer::multi::MultiRef::new(&self.control().multi, self.available())
    }
}
