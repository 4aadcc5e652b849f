//! Reading the journal back: replay.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::JournalError;
use crate::format::{self, SEGMENT_HEADER};
use crate::journal::Shared;

/// One record read back.
///
/// ```
/// let r = ringmq_journal::Record { position: 7, payload: b"order".to_vec() };
/// assert_eq!(r.position, 7);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Its position in the journal.
    pub position: u64,
    /// The bytes the stage's encoder wrote.
    pub payload: Vec<u8>,
}

/// The records from a position up to the journal's durable end at the time of the call, in
/// order, each checked (length, CRC32C, position). An invalid record yields
/// [`JournalError::Corrupt`] (or [`JournalError::Gap`] where a segment is missing) and ends the
/// iteration. Reads one segment file at a time into memory.
///
/// ```
/// # use ringmq_journal::{Journal, JournalOptions};
/// # let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-rs-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let mut journal = Journal::open(JournalOptions::new(&dir))?;
/// journal.append_batch([&b"a"[..], b"b", b"c"])?;
/// let mut state = Vec::new();
/// for record in journal.read_from(1)? {
///     state.extend(record?.payload);
/// }
/// assert_eq!(state, b"bc");
/// # drop(journal); std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Records {
    shared: Arc<Shared>,
    /// Segments still to read (after the current one).
    segments: std::vec::IntoIter<(u64, PathBuf)>,
    /// The current segment's bytes, its path and the read offset in it.
    current: Option<(Vec<u8>, PathBuf, usize)>,
    /// The position the next record must have.
    next: u64,
    /// The first position not to read.
    end: u64,
    /// Skip records before this position.
    from: u64,
    failed: bool,
}

impl Records {
    pub(crate) fn new(shared: Arc<Shared>, from: u64) -> Result<Records, JournalError> {
        let end = shared.durable.load(Ordering::Acquire);
        let mut segments = shared.segments.lock().expect("segment list").clone();
        let first = segments.first().map_or(0, |s| s.0);
        if from < first {
            return Err(JournalError::Released { from, first });
        }
        if from > end {
            return Err(JournalError::PastEnd { from, next: end });
        }
        // Start at the last segment whose first position is at or before `from`.
        let start = segments.iter().rposition(|s| s.0 <= from).unwrap_or(0);
        let next = segments[start].0;
        Ok(Records {
            shared,
            segments: segments.split_off(start).into_iter(),
            current: None,
            next,
            end,
            from,
            failed: false,
        })
    }

    fn step(&mut self) -> Result<Option<Record>, JournalError> {
        let max = self.shared.options.max_record;
        loop {
            if self.next >= self.end {
                return Ok(None);
            }
            if self.current.is_none() {
                let Some((first, path)) = self.segments.next() else {
                    return Ok(None);
                };
                let bytes = format::read_segment(&path)?;
                let header_first = format::read_header(&path, &bytes)?;
                if header_first != first {
                    return Err(JournalError::Name { segment: path });
                }
                if first != self.next {
                    return Err(JournalError::Gap {
                        segment: path,
                        expected: self.next,
                        found: first,
                    });
                }
                self.current = Some((bytes, path, SEGMENT_HEADER));
            }
            let (bytes, path, at) = self.current.as_mut().expect("a segment is open");
            if *at >= bytes.len() {
                self.current = None;
                continue;
            }
            let scan = format::check_one(bytes, *at, self.next, max).map_err(|kind| {
                JournalError::Corrupt {
                    segment: path.clone(),
                    offset: *at as u64,
                    kind,
                }
            })?;
            let (position, payload) = format::record_at(bytes, *at);
            *at += scan;
            self.next += 1;
            if position >= self.from {
                return Ok(Some(Record {
                    position,
                    payload: payload.to_vec(),
                }));
            }
        }
    }
}

impl Iterator for Records {
    type Item = Result<Record, JournalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.step() {
            Ok(r) => r.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
