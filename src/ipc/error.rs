//! What can go wrong opening, attaching to and using a cross-process ring.

use std::fmt;
use std::path::PathBuf;

/// Why a cross-process ring could not be created, opened or joined. Each variant says what
/// to change.
///
/// ```
/// # #[cfg(all(target_os = "linux", not(miri)))] {
/// use ringmq::ipc::{ShmError, ShmOptions, ShmRing};
/// let path = std::env::temp_dir().join(format!("ringmq-doc-err-{}", std::process::id()));
/// let ring = ShmRing::<u64>::create(&path, ShmOptions::single_producer(8))?;
/// // The same file opened as a ring of another event type is refused, saying what differs.
/// match ShmRing::<u32>::open(&path, ShmOptions::single_producer(8)) {
///     Err(ShmError::Mismatch { what, .. }) => assert_eq!(what, "event size and alignment"),
///     other => panic!("{other:?}"),
/// }
/// # drop(ring);
/// # }
/// # Ok::<(), ringmq::ipc::ShmError>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ShmError {
    /// The file could not be created, opened, sized or mapped.
    Io {
        /// The segment's path.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The capacity, stage table or producer table asked for is out of bounds.
    Layout {
        /// Requested capacity (a power of two up to 2^30).
        capacity: usize,
        /// Requested stage entries (1 to 64).
        stages: usize,
        /// Requested producer entries (1 to 1024).
        producers: usize,
    },
    /// The file is not a ringmq segment (or is corrupt).
    NotASegment {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The segment was made for something else than this opener expects.
    Mismatch {
        /// What differs: `"event size and alignment"`, `"event type fingerprint"`,
        /// `"capacity"`, `"producer kind"`, `"layout version"`, `"platform ..."`.
        what: &'static str,
        /// What the segment holds.
        segment: String,
        /// What this process asked for.
        expected: String,
    },
    /// The creator has not finished building the segment (or died while building it).
    NotReady {
        /// The segment.
        path: PathBuf,
        /// Its creator.
        creator_pid: u32,
    },
    /// `create` found a segment at the path that a live process uses.
    InUse {
        /// The segment.
        path: PathBuf,
        /// A live process using it.
        pid: u32,
    },
    /// Every stage entry is taken: create the segment with more (`ShmOptions::stages`).
    StagesFull {
        /// The table's size.
        stages: usize,
    },
    /// Every producer entry is taken: create the segment with more (`ShmOptions::producers`).
    ProducersFull {
        /// The table's size.
        producers: usize,
    },
    /// A single-producer segment already has its producer (in this or another process).
    ProducerTaken {
        /// The process holding it.
        pid: u32,
    },
    /// No live stage has this name (to follow).
    UnknownStage {
        /// The name asked for.
        name: String,
    },
    /// The ring is closed: no new producer or stage joins it.
    Closed,
}

impl fmt::Display for ShmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShmError::Io { path, source } => write!(f, "segment {}: {source}", path.display()),
            ShmError::Layout { capacity, stages, producers } => write!(
                f,
                "no such segment: capacity {capacity} (a power of two up to 2^30), {stages} stages (1 to 64), {producers} producers (1 to 1024)"
            ),
            ShmError::NotASegment { path, why } => {
                write!(f, "{} is not a ringmq segment: {why}", path.display())
            }
            ShmError::Mismatch { what, segment, expected } => write!(
                f,
                "the segment's {what} is {segment}, this process expects {expected}: open it with the options and event type it was created with"
            ),
            ShmError::NotReady { path, creator_pid } => write!(
                f,
                "segment {} is not ready: its creator (pid {creator_pid}) has not finished building it, or died doing so (create it again)",
                path.display()
            ),
            ShmError::InUse { path, pid } => write!(
                f,
                "segment {} is in use by live process {pid}: open it, or create another path",
                path.display()
            ),
            ShmError::StagesFull { stages } => write!(
                f,
                "all {stages} stage entries are taken: create the segment with more (ShmOptions::stages)"
            ),
            ShmError::ProducersFull { producers } => write!(
                f,
                "all {producers} producer entries are taken: create the segment with more (ShmOptions::producers)"
            ),
            ShmError::ProducerTaken { pid } => write!(
                f,
                "this single-producer segment's producer is held by process {pid}: create it with ShmOptions::multi_producer for several"
            ),
            ShmError::UnknownStage { name } => {
                write!(f, "no live stage is named {name:?}: attach that stage first")
            }
            ShmError::Closed => write!(f, "the ring is closed: nothing joins it any more"),
        }
    }
}

impl std::error::Error for ShmError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ShmError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
