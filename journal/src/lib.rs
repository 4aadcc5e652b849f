//! # ringmq-journal
//!
//! A durable journal for [ringmq]: a stage that appends every event to segment files
//! before later stages act on it, the way the LMAX journaller, exchange-core and Chronicle Queue
//! do, and reads it back after a restart.
//!
//! - **Records** carry a length, a position and a CRC32C; they are written one batch at a time
//!   (one `write` per batch) into segment files that rotate at a size and are retained by count
//!   or released up to a checkpoint ([`JournalOptions`], [`Retention`],
//!   [`JournalHandle::release_before`]).
//! - **The receipt means durable.** The journal stage's sequence moves only once its batch is on
//!   disk under the [`SyncPolicy`]: after an `fdatasync` for [`SyncPolicy::EveryBatch`] and
//!   [`SyncPolicy::Interval`] (a group commit: at most one sync per interval, and the receipt
//!   waits for it), after the `write` for [`SyncPolicy::Os`]. So a [`ringmq::Tracker`] on the
//!   journal stage answers "is this event durable", and stages placed after it act only on
//!   durable events.
//! - **Replay**: [`Journal::read_from`] hands the records back from any position still held;
//!   a [`Checkpoint`] stores where a consumer's state was taken, so a restarted service loads
//!   it and replays only what follows.
//! - **Crashes**: at [`Journal::open`] a torn tail (a record cut short by a crash, or one whose
//!   checksum fails with nothing valid after it) is cut off and reported in [`Recovery`]; a
//!   damaged record with valid records after it is [`JournalError::Corrupt`], naming the
//!   segment and the offset, never a panic.
//!
//! ## Example
//! ```
//! use ringmq::{Builder, Consumer, Yielding};
//! use ringmq_journal::{Journal, JournalOptions, SyncPolicy};
//! use std::time::Duration;
//!
//! let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let journal = Journal::open(JournalOptions::new(&dir).sync(SyncPolicy::EveryBatch))?;
//! let handle = journal.handle();
//!
//! let mut b = Builder::single_producer(1024, || 0u64, Yielding)?;
//! let journaled = b.add(journal.consumer("journal", |n: &u64, out: &mut Vec<u8>| {
//!     out.extend_from_slice(&n.to_le_bytes())
//! }));
//! // Business logic after the journal acts only on durable events.
//! b.add_after(&[journaled], Consumer::new("logic", |_n: &u64, _, _| {}))?;
//! let (mut producer, queue) = b.build()?;
//! let durable = queue.tracker(journaled)?;
//!
//! let seq = producer.publish(|n| *n = 42)?;
//! durable.wait_processed(seq, Duration::from_secs(10))?; // on disk (fdatasync returned)
//! drop(producer);
//! queue.shutdown()?;
//!
//! // After a restart: read it back.
//! let records: Vec<_> = handle.read_from(0)?.collect::<Result<_, _>>()?;
//! assert_eq!(records.len(), 1);
//! assert_eq!(records[0].payload, 42u64.to_le_bytes());
//! # drop(handle);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
#![forbid(unsafe_code)]

mod checkpoint;
mod error;
mod format;
mod journal;
mod read;
mod stage;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use checkpoint::{Checkpoint, Snapshot};
pub use error::{CorruptKind, JournalError};
pub use journal::{Journal, JournalHandle, JournalStats, Recovery, TornTail};
pub use read::{Record, Records};
pub use stage::JournalStage;

/// When the journal makes its writes durable with `fdatasync`.
///
/// ```
/// use ringmq_journal::SyncPolicy;
/// use std::time::Duration;
/// let group_commit = SyncPolicy::Interval(Duration::from_millis(2));
/// assert_ne!(group_commit, SyncPolicy::EveryBatch);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `fdatasync` after every batch's write; the receipt follows it. Under load batches grow,
    /// so the syncs per second stay what the disk allows and each covers more events.
    EveryBatch,
    /// At most one `fdatasync` per interval: a batch that ends sooner after the last sync waits
    /// out the rest of the interval, then syncs (a group commit). The receipt still follows the
    /// sync; the interval bounds the syncs per second and adds up to that much latency.
    Interval(Duration),
    /// No `fdatasync` on the way (one at rotation and at shutdown): the receipt means the
    /// operating system has the bytes, which survives the process being killed but not the
    /// machine losing power.
    Os,
}

/// How many segment files the journal keeps.
///
/// ```
/// use ringmq_journal::Retention;
/// assert_eq!(Retention::default(), Retention::KeepAll);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Retention {
    /// Keep every segment (release them with [`JournalHandle::release_before`]).
    #[default]
    KeepAll,
    /// Keep the newest `n` segments (at least 1): older ones are deleted as segments rotate.
    Segments(usize),
}

/// Where and how a journal writes.
///
/// ```
/// use ringmq_journal::{JournalOptions, Retention, SyncPolicy};
/// let options = JournalOptions::new("/var/lib/orders/journal")
///     .sync(SyncPolicy::EveryBatch)
///     .segment_bytes(256 << 20)
///     .retention(Retention::Segments(8));
/// assert_eq!(options.dir().to_str(), Some("/var/lib/orders/journal"));
/// ```
#[derive(Debug, Clone)]
pub struct JournalOptions {
    pub(crate) dir: PathBuf,
    pub(crate) segment_bytes: u64,
    pub(crate) sync: SyncPolicy,
    pub(crate) retention: Retention,
    pub(crate) max_record: u32,
}

impl JournalOptions {
    /// A journal in `dir` (created if missing), with 64 MiB segments, [`SyncPolicy::EveryBatch`],
    /// [`Retention::KeepAll`] and records of at most 16 MiB.
    ///
    /// ```
    /// let o = ringmq_journal::JournalOptions::new("journal");
    /// assert_eq!(o.dir(), std::path::Path::new("journal"));
    /// ```
    pub fn new(dir: impl AsRef<Path>) -> Self {
        Self {
            dir: dir.as_ref().to_path_buf(),
            segment_bytes: 64 << 20,
            sync: SyncPolicy::EveryBatch,
            retention: Retention::KeepAll,
            max_record: 16 << 20,
        }
    }

    /// The directory.
    ///
    /// ```
    /// let o = ringmq_journal::JournalOptions::new("j");
    /// assert_eq!(o.dir().to_str(), Some("j"));
    /// ```
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// When to `fdatasync` (see [`SyncPolicy`]).
    ///
    /// ```
    /// use ringmq_journal::{JournalOptions, SyncPolicy};
    /// let _ = JournalOptions::new("j").sync(SyncPolicy::Os);
    /// ```
    pub fn sync(mut self, policy: SyncPolicy) -> Self {
        self.sync = policy;
        self
    }

    /// The size at which a segment rotates: a new segment starts with the first batch that
    /// would take the current one past it (a single batch larger than this gets a segment of its
    /// own). At least 4 KiB.
    ///
    /// ```
    /// let _ = ringmq_journal::JournalOptions::new("j").segment_bytes(1 << 30);
    /// ```
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }

    /// How many segments to keep (see [`Retention`]).
    ///
    /// ```
    /// use ringmq_journal::{JournalOptions, Retention};
    /// let _ = JournalOptions::new("j").retention(Retention::Segments(4));
    /// ```
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// The largest record payload accepted, in bytes (default 16 MiB). Reading, a length above
    /// it marks a damaged record; writing, a larger payload fails the batch.
    ///
    /// ```
    /// let _ = ringmq_journal::JournalOptions::new("j").max_record(4096);
    /// ```
    pub fn max_record(mut self, bytes: u32) -> Self {
        self.max_record = bytes;
        self
    }

    pub(crate) fn check(&self) -> Result<(), JournalError> {
        if self.segment_bytes < 4096 {
            return Err(JournalError::Option {
                what: "segment_bytes must be at least 4096",
            });
        }
        if self.retention == Retention::Segments(0) {
            return Err(JournalError::Option {
                what: "Retention::Segments(n) needs n >= 1",
            });
        }
        if self.max_record == 0 {
            return Err(JournalError::Option {
                what: "max_record must be at least 1",
            });
        }
        Ok(())
    }
}
