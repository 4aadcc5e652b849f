//! The same ring across processes: a segment in shared memory (a file on tmpfs such as
//! `/dev/shm`, memory-mapped), created by one process and opened by others. Linux only.
//!
//! # From threads to processes
//! The protocol is the in-process one, run over the segment's words: the same sequencers
//! (`Single`, `Multi`), the same claim, write and publish, the same delivery loop with its
//! skipped slots. A publish closure and a handler closure written for threads work unchanged:
//!
//! ```
//! # #[cfg(all(target_os = "linux", not(miri)))] {
//! use ringmq::ipc::{ShmOptions, ShmRing};
//!
//! #[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
//! #[repr(C)]
//! struct Order { id: u64, price: u64 }
//!
//! let path = std::env::temp_dir().join(format!("ringmq-doc-ipc-{}", std::process::id()));
//! // In one process:  Builder::single_producer(1024, Order::default, Yielding)?
//! let ring = ShmRing::<Order>::create(&path, ShmOptions::single_producer(1024))?;
//! // In another (here the same one): open it, attach a consumer by name.
//! let other = ShmRing::<Order>::open(&path, ShmOptions::single_producer(1024))?;
//! let mut audit = other.consumer("audit")?;
//! let mut producer = ring.producer()?;
//! for id in 0..3 {
//!     producer.publish(|slot| *slot = Order { id, price: 100 + id })?;
//! }
//! drop(producer); // the producer side closes: the consumer drains, then sees the end
//! let mut ids = Vec::new();
//! let handled = audit.run(|order: &Order, _seq, _end_of_batch| ids.push(order.id));
//! assert_eq!((handled, ids), (3, vec![0, 1, 2]));
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Participants and liveness
//! The segment has a stage table (its size chosen at creation, up to 64) and a producer table.
//! A consumer attaches by name, after the producers ([`ShmRing::consumer`]) or after named
//! stages ([`ShmRing::consumer_after`]: pipelines, and multicast when several follow the same),
//! and starts at what is published after it joined, as a stage joining a running queue does in
//! one process. Each participant records its process (pid and start time, so a reused pid does
//! not pass for it) and a heartbeat.
//!
//! Processes die. Every waiting participant checks the others once per tick (a quarter of
//! [`ShmOptions::liveness`]) and, for each whose process is gone (killed, OOM):
//! - a **consumer** is removed from gating: producers waiting on it resume, its followers follow
//!   the producers (and their other upstream stages);
//! - a **multi producer** killed between claim and publish left a hole: its claimed, unpublished
//!   sequences are published as skipped (consumers pass them, as an in-process publish closure
//!   that panicked), nothing else is touched;
//! - the **single producer**'s death closes the ring: consumers drain what it published and
//!   end.
//!
//! Survivors learn what happened from [`ShmRing::evictions`] (and a `log` warning).
//!
//! # Trust model
//! The processes sharing a segment are one application's, under one user: the file is created
//! owner-only (`0600`, [`ShmOptions::mode`]). A peer that misbehaves (writes garbage into the
//! segment) can corrupt event contents and stall or confuse the ring, but never make ringmq
//! read or write outside the segment: every offset is computed from the header's parameters,
//! checked when the segment is opened, and every index read from the segment is masked or
//! bounded. Events are `bytemuck::Pod`, so any bytes are a valid event. A segment is for the
//! processes of one machine, one kernel and one pid namespace.
//!
//! # Closing and the file
//! The producer side closes: dropping the single producer, or the last multi producer, or
//! [`ShmProducer::close`]. Consumers drain to the last claimed sequence and end. The creating
//! handle removes the file when dropped (mappings stay valid in every process that has one);
//! [`ShmRing::keep_file`] leaves it. A file left by a crashed run is replaced by the next
//! `create` if every process recorded in it is dead, refused ([`ShmError::InUse`]) otherwise.
//!
//! # Waiting
//! [`IpcWait`] is chosen at creation for every participant: spin, yield, sleep, or block on a
//! futex in the segment (the default: publishes wake sleepers only when someone sleeps).
//!
//! # What is not here
//! A work pool across processes (each event to exactly one of several consumer processes), and
//! exclusive (`&mut E`) stages: cross-process stages read events by `&E`.

mod consumer;
mod error;
mod process;
mod producer;
mod ring;
pub(crate) mod segment;
mod wait;

#[cfg(test)]
mod tests;

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub use consumer::ShmConsumer;
pub use error::ShmError;
pub use producer::ShmProducer;
pub use wait::IpcWait;

use segment::{Params, Segment, KIND_MULTI, KIND_SINGLE};
use wait::IpcWaiter;

/// How to create (or what to expect when opening) a cross-process ring.
///
/// ```
/// use ringmq::ipc::{IpcWait, ShmOptions};
/// use std::time::Duration;
/// let options = ShmOptions::multi_producer(4096)
///     .stages(8)
///     .producers(4)
///     .wait(IpcWait::Yielding)
///     .liveness(Duration::from_millis(200));
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
pub struct ShmOptions {
    kind: u32,
    capacity: usize,
    stages: usize,
    producers: usize,
    wait: IpcWait,
    liveness: Duration,
    mode: u32,
    type_tag: Option<u64>,
    ready_timeout: Duration,
}

impl ShmOptions {
    fn new(kind: u32, capacity: usize) -> Self {
        Self {
            kind,
            capacity,
            stages: 16,
            producers: if kind == KIND_SINGLE { 1 } else { 16 },
            wait: IpcWait::Blocking,
            liveness: Duration::from_millis(500),
            mode: 0o600,
            type_tag: None,
            ready_timeout: Duration::from_secs(5),
        }
    }

    /// One producer handle, in one process: claims with no read-modify-write.
    ///
    /// ```
    /// let options = ringmq::ipc::ShmOptions::single_producer(1024);
    /// # let _ = options;
    /// ```
    pub fn single_producer(capacity: usize) -> Self {
        Self::new(KIND_SINGLE, capacity)
    }

    /// Any number of producer handles (up to [`producers`](Self::producers)), in any processes.
    ///
    /// ```
    /// let options = ringmq::ipc::ShmOptions::multi_producer(1024);
    /// # let _ = options;
    /// ```
    pub fn multi_producer(capacity: usize) -> Self {
        Self::new(KIND_MULTI, capacity)
    }

    /// The stage table's size: how many consumers may be attached at once (1 to 64; 16 by
    /// default). Fixed at creation.
    ///
    /// ```
    /// let options = ringmq::ipc::ShmOptions::single_producer(64).stages(4);
    /// # let _ = options;
    /// ```
    pub fn stages(mut self, n: usize) -> Self {
        self.stages = n;
        self
    }

    /// The producer table's size for a multi-producer ring: how many producer handles may be
    /// attached at once (16 by default). Fixed at creation.
    ///
    /// ```
    /// let options = ringmq::ipc::ShmOptions::multi_producer(64).producers(4);
    /// # let _ = options;
    /// ```
    pub fn producers(mut self, n: usize) -> Self {
        if self.kind == KIND_MULTI {
            self.producers = n;
        }
        self
    }

    /// How every participant waits ([`IpcWait::Blocking`] by default). Set by the creator;
    /// an opener uses the segment's.
    ///
    /// ```
    /// let options = ringmq::ipc::ShmOptions::single_producer(64).wait(ringmq::ipc::IpcWait::BusySpin);
    /// # let _ = options;
    /// ```
    pub fn wait(mut self, wait: IpcWait) -> Self {
        self.wait = wait;
        self
    }

    /// How soon this process's waiting handles notice a dead participant: they check every
    /// quarter of it (500 ms by default).
    ///
    /// ```
    /// let options = ringmq::ipc::ShmOptions::single_producer(64)
    ///     .liveness(std::time::Duration::from_millis(100));
    /// # let _ = options;
    /// ```
    pub fn liveness(mut self, liveness: Duration) -> Self {
        self.liveness = liveness.max(Duration::from_millis(4));
        self
    }

    /// The file's permission bits at creation (`0o600`, owner only, by default).
    ///
    /// ```
    /// let options = ringmq::ipc::ShmOptions::single_producer(64).mode(0o660);
    /// # let _ = options;
    /// ```
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// The event type's fingerprint, in place of the one derived from its name, size and
    /// alignment: for processes built from different sources that agree on a layout.
    ///
    /// ```
    /// let options = ringmq::ipc::ShmOptions::single_producer(64).type_tag(0x0bde_0001);
    /// # let _ = options;
    /// ```
    pub fn type_tag(mut self, tag: u64) -> Self {
        self.type_tag = Some(tag);
        self
    }

    /// How long `open` waits for a creator still building the segment (5 s by default).
    ///
    /// ```
    /// let options = ringmq::ipc::ShmOptions::single_producer(64)
    ///     .ready_timeout(std::time::Duration::from_secs(1));
    /// # let _ = options;
    /// ```
    pub fn ready_timeout(mut self, timeout: Duration) -> Self {
        self.ready_timeout = timeout;
        self
    }

    fn params<E>(&self) -> Params {
        let (wait, wait_nanos) = match self.wait {
            IpcWait::BusySpin => (0, 0),
            IpcWait::Yielding => (1, 0),
            IpcWait::Sleeping(d) => (2, process::nanos(d)),
            IpcWait::Blocking => (3, 0),
        };
        Params {
            capacity: self.capacity,
            kind: self.kind,
            stages: self.stages,
            producers: self.producers,
            event_size: std::mem::size_of::<E>(),
            event_align: std::mem::align_of::<E>(),
            fingerprint: self.type_tag.unwrap_or_else(segment::fingerprint::<E>),
            mode: self.mode,
            wait,
            wait_nanos,
        }
    }
}

fn wait_of(header: &segment::Header) -> IpcWait {
    match header.wait {
        0 => IpcWait::BusySpin,
        1 => IpcWait::Yielding,
        2 => IpcWait::Sleeping(Duration::from_nanos(header.wait_nanos)),
        _ => IpcWait::Blocking,
    }
}

/// Who an eviction removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvictionKind {
    /// A consumer stage whose process died.
    Stage = 1,
    /// A producer whose process died.
    Producer = 2,
}

/// A participant removed because its process died: who, and where the ring was.
///
/// ```
/// # #[cfg(all(target_os = "linux", not(miri)))] {
/// # let path = std::env::temp_dir().join(format!("ringmq-doc-ev-{}", std::process::id()));
/// # let ring = ringmq::ipc::ShmRing::<u64>::create(&path, ringmq::ipc::ShmOptions::single_producer(8))?;
/// for eviction in ring.evictions() {
///     println!("{:?} {} (pid {}) removed at {}", eviction.kind, eviction.name, eviction.pid, eviction.sequence);
/// }
/// # }
/// # Ok::<(), ringmq::ipc::ShmError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Eviction {
    /// A stage or a producer.
    pub kind: EvictionKind,
    /// The stage's name (`"producer"` for a producer).
    pub name: String,
    /// Its process.
    pub pid: u32,
    /// A stage: the last sequence it had handled. A producer: the first sequence of its last
    /// claim (the single producer: the cursor consumers drain to).
    pub sequence: i64,
    /// A multi producer: how many of its claimed sequences were published as skipped.
    pub repaired: u64,
}

/// One attached stage, as [`ShmRing::stages`] sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageStatus {
    /// Its name.
    pub name: String,
    /// Its process.
    pub pid: u32,
    /// The last sequence it handled.
    pub sequence: i64,
    /// How long ago its process last showed life (it beats while it waits for events, once
    /// per tick; a busy stage shows its life by its sequence).
    pub heartbeat_age: Duration,
}

/// A ring in a shared-memory segment, created or opened by this process; makes producer and
/// consumer handles. `Send + Sync`: share it between this process's threads.
///
/// ```
/// # #[cfg(all(target_os = "linux", not(miri)))] {
/// use ringmq::ipc::{ShmOptions, ShmRing};
/// let path = std::env::temp_dir().join(format!("ringmq-doc-ring-{}", std::process::id()));
/// let ring = ShmRing::<u64>::create(&path, ShmOptions::multi_producer(64))?;
/// assert_eq!(ring.capacity(), 64);
/// assert_eq!(ring.path(), path.as_path());
/// # }
/// # Ok::<(), ringmq::ipc::ShmError>(())
/// ```
pub struct ShmRing<E> {
    segment: Arc<Segment>,
    waiter: Arc<IpcWaiter>,
    unlink: bool,
    _event: PhantomData<fn() -> E>,
}

impl<E: bytemuck::Pod + Send + Sync> ShmRing<E> {
    fn from_segment(segment: Segment, options: &ShmOptions, unlink: bool) -> Self {
        let segment = Arc::new(segment);
        let waiter = Arc::new(IpcWaiter {
            kind: wait_of(segment.header()),
            segment: segment.clone(),
            tick: options.liveness / 4,
        });
        Self {
            segment,
            waiter,
            unlink,
            _event: PhantomData,
        }
    }

    /// Creates the segment at `path` (a file; `/dev/shm/<name>` for memory that is never
    /// written back to a disk), sized for `options` and the event type `E`.
    ///
    /// # Errors
    /// [`ShmError::Layout`] for out-of-bounds options, [`ShmError::InUse`] if a live process
    /// uses a segment at `path`, [`ShmError::Io`] if the file cannot be made.
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # use ringmq::ipc::{ShmOptions, ShmRing};
    /// let path = std::env::temp_dir().join(format!("ringmq-doc-create-{}", std::process::id()));
    /// let ring = ShmRing::<[u8; 64]>::create(&path, ShmOptions::single_producer(1024))?;
    /// # drop(ring);
    /// # }
    /// # Ok::<(), ringmq::ipc::ShmError>(())
    /// ```
    pub fn create(path: impl AsRef<Path>, options: ShmOptions) -> Result<Self, ShmError> {
        let segment = Segment::create(path.as_ref(), options.params::<E>())?;
        Ok(Self::from_segment(segment, &options, true))
    }

    /// Opens the segment at `path`, checking that it was made for `E` and these options (the
    /// producer kind and the capacity; the stage and producer tables and the wait are the
    /// creator's).
    ///
    /// # Errors
    /// [`ShmError::Mismatch`] naming what differs, [`ShmError::NotASegment`],
    /// [`ShmError::NotReady`], [`ShmError::Io`].
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # use ringmq::ipc::{ShmError, ShmOptions, ShmRing};
    /// let path = std::env::temp_dir().join(format!("ringmq-doc-open-{}", std::process::id()));
    /// let ring = ShmRing::<u64>::create(&path, ShmOptions::single_producer(64))?;
    /// let same = ShmRing::<u64>::open(&path, ShmOptions::single_producer(64))?;
    /// let wrong = ShmRing::<u64>::open(&path, ShmOptions::single_producer(128));
    /// assert!(matches!(wrong, Err(ShmError::Mismatch { what: "capacity", .. })));
    /// # drop((ring, same));
    /// # }
    /// # Ok::<(), ringmq::ipc::ShmError>(())
    /// ```
    pub fn open(path: impl AsRef<Path>, options: ShmOptions) -> Result<Self, ShmError> {
        let segment = Segment::open(path.as_ref(), options.params::<E>(), options.ready_timeout)?;
        Ok(Self::from_segment(segment, &options, false))
    }

    /// A producer handle. A single-producer ring has one, ever: a second is refused while the
    /// first lives, and the first's drop closes the ring. In a multi-producer ring, the last
    /// handle's drop closes it, and a handle asked for after that is refused with
    /// [`ShmError::Closed`]: a ring whose producer processes come and go is kept open by a handle
    /// that one long-lived process (the creator, say) holds until the end.
    ///
    /// # Errors
    /// [`ShmError::ProducerTaken`], [`ShmError::ProducersFull`], [`ShmError::Closed`].
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # use ringmq::ipc::{ShmError, ShmOptions, ShmRing};
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-prod-{}", std::process::id()));
    /// let ring = ShmRing::<u64>::create(&path, ShmOptions::single_producer(64))?;
    /// let producer = ring.producer()?;
    /// assert!(matches!(ring.producer(), Err(ShmError::ProducerTaken { .. })));
    /// # drop(producer);
    /// # }
    /// # Ok::<(), ringmq::ipc::ShmError>(())
    /// ```
    pub fn producer(&self) -> Result<ShmProducer<E>, ShmError> {
        ShmProducer::attach(self.segment.clone(), self.waiter.clone())
    }

    /// Attaches a consumer stage named `name` after the producers: it sees every event
    /// published after it joined.
    ///
    /// # Errors
    /// [`ShmError::StagesFull`], [`ShmError::Closed`].
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # use ringmq::ipc::{ShmOptions, ShmRing};
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-cons-{}", std::process::id()));
    /// let ring = ShmRing::<u64>::create(&path, ShmOptions::single_producer(64))?;
    /// let consumer = ring.consumer("journal")?;
    /// assert_eq!(consumer.name(), "journal");
    /// # }
    /// # Ok::<(), ringmq::ipc::ShmError>(())
    /// ```
    pub fn consumer(&self, name: &str) -> Result<ShmConsumer<E>, ShmError> {
        ShmConsumer::attach(self.segment.clone(), self.waiter.clone(), name, &[])
    }

    /// Attaches a consumer stage named `name` after the live stages named in `after`: it
    /// reads an event once all of them have handled it (a pipeline; several stages after the
    /// same one are a multicast).
    ///
    /// # Errors
    /// [`ShmError::UnknownStage`] if no live stage has one of the names, and those of
    /// [`consumer`](Self::consumer).
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # use ringmq::ipc::{ShmOptions, ShmRing};
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-after-{}", std::process::id()));
    /// let ring = ShmRing::<u64>::create(&path, ShmOptions::single_producer(64))?;
    /// let decode = ring.consumer("decode")?;
    /// let store = ring.consumer_after("store", &["decode"])?;
    /// # drop((decode, store));
    /// # }
    /// # Ok::<(), ringmq::ipc::ShmError>(())
    /// ```
    pub fn consumer_after(&self, name: &str, after: &[&str]) -> Result<ShmConsumer<E>, ShmError> {
        ShmConsumer::attach(self.segment.clone(), self.waiter.clone(), name, after)
    }

    /// The ring's capacity.
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-cap-{}", std::process::id()));
    /// let ring = ringmq::ipc::ShmRing::<u64>::create(&path, ringmq::ipc::ShmOptions::single_producer(32))?;
    /// assert_eq!(ring.capacity(), 32);
    /// # }
    /// # Ok::<(), ringmq::ipc::ShmError>(())
    /// ```
    pub fn capacity(&self) -> usize {
        self.segment.layout().capacity
    }

    /// The segment's file.
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-path-{}", std::process::id()));
    /// let ring = ringmq::ipc::ShmRing::<u64>::create(&path, ringmq::ipc::ShmOptions::single_producer(32))?;
    /// assert!(ring.path().exists());
    /// # }
    /// # Ok::<(), ringmq::ipc::ShmError>(())
    /// ```
    pub fn path(&self) -> &Path {
        self.segment.path()
    }

    /// Leaves the file in place when this (creating) handle drops.
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-keep-{}", std::process::id()));
    /// let ring = ringmq::ipc::ShmRing::<u64>::create(&path, ringmq::ipc::ShmOptions::single_producer(32))?;
    /// let path = ring.keep_file();
    /// assert!(path.exists());
    /// # std::fs::remove_file(path).unwrap();
    /// # }
    /// # Ok::<(), ringmq::ipc::ShmError>(())
    /// ```
    pub fn keep_file(mut self) -> PathBuf {
        self.unlink = false;
        self.segment.path().to_owned()
    }

    /// Whether the ring is closed (the producer side closed, or the single producer died).
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-closed-{}", std::process::id()));
    /// let ring = ringmq::ipc::ShmRing::<u64>::create(&path, ringmq::ipc::ShmOptions::single_producer(32))?;
    /// let mut producer = ring.producer()?;
    /// assert!(!ring.is_closed());
    /// producer.close();
    /// assert!(ring.is_closed());
    /// # }
    /// # Ok::<(), ringmq::ipc::ShmError>(())
    /// ```
    pub fn is_closed(&self) -> bool {
        !self.segment.control().phase.is_running()
    }

    /// Runs the liveness pass now (waiting handles run it every quarter of the liveness time):
    /// removes stages and repairs producers whose process died. Returns whether it changed
    /// anything.
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-live-{}", std::process::id()));
    /// let ring = ringmq::ipc::ShmRing::<u64>::create(&path, ringmq::ipc::ShmOptions::single_producer(32))?;
    /// assert!(!ring.check_liveness()); // nobody died
    /// # }
    /// # Ok::<(), ringmq::ipc::ShmError>(())
    /// ```
    pub fn check_liveness(&self) -> bool {
        let changed = ring::maintain(&self.segment);
        if changed {
            self.waiter_notify();
        }
        changed
    }

    fn waiter_notify(&self) {
        use crate::protocol::wait::WaitStrategy;
        self.waiter.notify();
    }

    /// The participants removed because their process died, oldest first (the newest 16).
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-evs-{}", std::process::id()));
    /// let ring = ringmq::ipc::ShmRing::<u64>::create(&path, ringmq::ipc::ShmOptions::single_producer(32))?;
    /// assert!(ring.evictions().is_empty());
    /// # }
    /// # Ok::<(), ringmq::ipc::ShmError>(())
    /// ```
    pub fn evictions(&self) -> Vec<Eviction> {
        let control = self.segment.control();
        let written = control.reports.load(Ordering::Acquire);
        let first = written.saturating_sub(segment::REPORTS as u64);
        (first..written)
            .filter_map(|n| {
                let slot = &control.report[(n % segment::REPORTS as u64) as usize];
                if slot.stamp.load(Ordering::Acquire) != n + 1 {
                    return None;
                }
                let mut bytes = Vec::new();
                for word in &slot.name {
                    bytes.extend_from_slice(&word.load(Ordering::Relaxed).to_le_bytes());
                }
                let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                Some(Eviction {
                    kind: if slot.kind.load(Ordering::Relaxed) == EvictionKind::Stage as u32 {
                        EvictionKind::Stage
                    } else {
                        EvictionKind::Producer
                    },
                    name: String::from_utf8_lossy(&bytes[..end]).into_owned(),
                    pid: slot.pid.load(Ordering::Relaxed),
                    sequence: slot.sequence.load(Ordering::Relaxed),
                    repaired: slot.count.load(Ordering::Relaxed),
                })
            })
            .collect()
    }

    /// The attached stages.
    ///
    /// ```
    /// # #[cfg(all(target_os = "linux", not(miri)))] {
    /// # let path = std::env::temp_dir().join(format!("ringmq-doc-stages-{}", std::process::id()));
    /// let ring = ringmq::ipc::ShmRing::<u64>::create(&path, ringmq::ipc::ShmOptions::single_producer(32))?;
    /// let _audit = ring.consumer("audit")?;
    /// assert_eq!(ring.stages()[0].name, "audit");
    /// # }
    /// # Ok::<(), ringmq::ipc::ShmError>(())
    /// ```
    pub fn stages(&self) -> Vec<StageStatus> {
        self.segment
            .stages()
            .iter()
            .filter(|s| s.state() == crate::protocol::table::ACTIVE)
            .map(|s| StageStatus {
                name: s.name(),
                pid: s.owner().pid,
                sequence: s.sequence.get(),
                heartbeat_age: Duration::from_nanos(
                    process::now_ns().saturating_sub(s.heartbeat()),
                ),
            })
            .collect()
    }
}

impl<E> Drop for ShmRing<E> {
    fn drop(&mut self) {
        if self.unlink {
            let _ = std::fs::remove_file(self.segment.path());
        }
    }
}

impl<E> std::fmt::Debug for ShmRing<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShmRing")
            .field("path", &self.segment.path())
            .field("capacity", &self.segment.layout().capacity)
            .finish()
    }
}
