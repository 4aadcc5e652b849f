//! The journal's errors: each says what is wrong, where, and what to do.

use std::fmt;
use std::path::{Path, PathBuf};

/// Why the bytes at a segment offset are not a valid record (or header).
///
/// ```
/// use ringmq_journal::CorruptKind;
/// assert_eq!(CorruptKind::Checksum.to_string(), "the CRC32C does not match");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorruptKind {
    /// The file ends inside the record (or the header).
    Truncated,
    /// The checksum does not match the bytes.
    Checksum,
    /// The record's length is over the journal's `max_record`.
    Length(u32),
    /// The record is valid but not at the position that follows the one before it.
    Position {
        /// The position that should be there.
        expected: u64,
        /// The position found.
        found: u64,
    },
    /// The segment header's magic is not a ringmq journal's.
    Magic,
}

impl fmt::Display for CorruptKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorruptKind::Truncated => write!(f, "the file ends inside it"),
            CorruptKind::Checksum => write!(f, "the CRC32C does not match"),
            CorruptKind::Length(len) => {
                write!(f, "its length {len} is over the journal's max_record")
            }
            CorruptKind::Position { expected, found } => {
                write!(f, "it holds position {found} where {expected} belongs")
            }
            CorruptKind::Magic => write!(f, "it is not a ringmq journal segment (bad magic)"),
        }
    }
}

/// What went wrong opening, writing or reading a journal, or a checkpoint.
///
/// ```
/// use ringmq_journal::{Journal, JournalError, JournalOptions};
/// // A position past the end of the journal cannot be read from.
/// let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-err-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let journal = Journal::open(JournalOptions::new(&dir))?;
/// let err = journal.read_from(5).unwrap_err();
/// assert!(matches!(err, JournalError::PastEnd { from: 5, next: 0 }), "{err}");
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum JournalError {
    /// An I/O call failed.
    Io {
        /// What the journal was doing.
        doing: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A record (or segment header) in the middle of the journal is damaged: valid records
    /// follow it, so it is not a torn tail from a crash, and the journal refuses to go past it.
    Corrupt {
        /// The segment file.
        segment: PathBuf,
        /// The byte offset in it.
        offset: u64,
        /// What is wrong there.
        kind: CorruptKind,
    },
    /// A segment was written by another version of the format.
    Version {
        /// The segment file.
        segment: PathBuf,
        /// Its version.
        found: u32,
        /// The version this crate reads.
        supported: u32,
    },
    /// A `.rmqj` file whose name is not a position.
    Name {
        /// The file.
        segment: PathBuf,
    },
    /// Two segments do not join: the first position of one is not the position after the last
    /// record of the one before (a segment was deleted or copied in by hand).
    Gap {
        /// The segment that does not follow.
        segment: PathBuf,
        /// The position it should start at.
        expected: u64,
        /// The position it starts at.
        found: u64,
    },
    /// Reading from a position the journal no longer holds (retention removed it).
    Released {
        /// The position asked for.
        from: u64,
        /// The first position still held.
        first: u64,
    },
    /// Reading from a position after the journal's end.
    PastEnd {
        /// The position asked for.
        from: u64,
        /// The position the next record will take.
        next: u64,
    },
    /// Another journal object (in this process or another) has the directory open for writing.
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// An option is out of its range.
    Option {
        /// Which option, and the range it must be in.
        what: &'static str,
    },
}

impl JournalError {
    pub(crate) fn io(doing: &'static str, path: &Path, source: std::io::Error) -> Self {
        JournalError::Io {
            doing,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::Io { doing, path, source } => {
                write!(f, "journal I/O error {doing} {}: {source}", path.display())
            }
            JournalError::Corrupt {
                segment,
                offset,
                kind,
            } => write!(
                f,
                "journal segment {} is corrupt at byte {offset}: {kind}; valid records follow, so \
                 this is damage, not a torn tail: restore the segment from a replica or cut the \
                 journal there by hand",
                segment.display()
            ),
            JournalError::Version {
                segment,
                found,
                supported,
            } => write!(
                f,
                "journal segment {} has format version {found}; this ringmq-journal reads {supported}",
                segment.display()
            ),
            JournalError::Name { segment } => write!(
                f,
                "{} is not named by a position (`{{first:020}}.rmqj`): move it out of the journal \
                 directory",
                segment.display()
            ),
            JournalError::Gap {
                segment,
                expected,
                found,
            } => write!(
                f,
                "journal segment {} starts at position {found} but the segment before it ends \
                 before {expected}: a segment is missing",
                segment.display()
            ),
            JournalError::Released { from, first } => write!(
                f,
                "position {from} was released (retention); the journal now starts at {first}"
            ),
            JournalError::PastEnd { from, next } => write!(
                f,
                "position {from} is past the journal's end: the next record will be {next}"
            ),
            JournalError::Locked { dir } => write!(
                f,
                "journal {} is already open for writing (one writer per directory)",
                dir.display()
            ),
            JournalError::Option { what } => write!(f, "journal option out of range: {what}"),
        }
    }
}

impl std::error::Error for JournalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JournalError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
