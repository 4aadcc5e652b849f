//! Opening a journal (recovering its tail), the writer, and the handle shared with readers.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::error::{CorruptKind, JournalError};
use crate::format::{self, SEGMENT_HEADER};
use crate::read::Records;
use crate::{JournalOptions, Retention, SyncPolicy};

/// A torn tail cut off at open: where, how many bytes, and why they were not a record.
///
/// ```
/// # use ringmq_journal::TornTail;
/// fn report(t: &TornTail) -> String {
///     format!("cut {} bytes at {}:{} ({})", t.bytes, t.segment.display(), t.offset, t.kind)
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment file (the last one).
    pub segment: PathBuf,
    /// The offset the file was cut at: the end of its last valid record.
    pub offset: u64,
    /// How many bytes were cut.
    pub bytes: u64,
    /// Why the bytes at `offset` were not a valid record.
    pub kind: CorruptKind,
}

/// What [`Journal::open`] found.
///
/// ```
/// use ringmq_journal::{Journal, JournalOptions};
/// let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-rec-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let journal = Journal::open(JournalOptions::new(&dir))?;
/// let r = journal.recovery();
/// assert_eq!((r.first, r.next, r.segments, r.torn.clone()), (0, 0, 1, None));
/// # drop(journal); std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// The first position the journal holds.
    pub first: u64,
    /// The position the next record takes (the number of records ever written, as positions
    /// start at 0 and retention only removes from the front).
    pub next: u64,
    /// How many segment files it has.
    pub segments: usize,
    /// The torn tail cut off, if the last run crashed in the middle of a write.
    pub torn: Option<TornTail>,
}

/// Counters of what the writer did since open.
///
/// ```
/// let s = ringmq_journal::JournalStats::default();
/// assert_eq!(s.records, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalStats {
    /// Records written.
    pub records: u64,
    /// Bytes written (headers included).
    pub bytes: u64,
    /// Batches written (one `write` each).
    pub batches: u64,
    /// `fdatasync` calls.
    pub syncs: u64,
    /// Segments started after the first.
    pub rotations: u64,
}

/// What the writer and every handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) options: JournalOptions,
    /// The position after the last durable record (under the sync policy).
    pub(crate) durable: AtomicU64,
    /// Journal position minus ring sequence, fixed by the stage's first event.
    pub(crate) offset: AtomicI64,
    /// The segments, sorted by first position; the last is the one being written.
    pub(crate) segments: Mutex<Vec<(u64, PathBuf)>>,
    records: AtomicU64,
    bytes: AtomicU64,
    batches: AtomicU64,
    syncs: AtomicU64,
    rotations: AtomicU64,
}

/// `offset` before the stage has seen an event.
pub(crate) const NO_OFFSET: i64 = i64::MIN;

/// The writing side: the open segment and the batch being built.
#[derive(Debug)]
pub(crate) struct Writer {
    pub(crate) shared: Arc<Shared>,
    file: File,
    path: PathBuf,
    /// The segment file's length: where the next batch goes.
    end: u64,
    /// The position the next record takes.
    pub(crate) next: u64,
    last_sync: Instant,
    /// Written but not yet synced (only under `SyncPolicy::Os`).
    unsynced: bool,
    /// Holds `dir/.lock` locked while the writer lives.
    _lock: File,
}

/// A journal directory open for writing: one per directory (a lock file keeps out a second
/// writer, in this process or another). Turn it into a stage with [`Journal::consumer`] or
/// [`Journal::stage`], or write to it directly with [`Journal::append_batch`].
///
/// ```
/// use ringmq_journal::{Journal, JournalOptions};
/// let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-j-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let mut journal = Journal::open(JournalOptions::new(&dir))?;
/// let written = journal.append_batch([&b"a"[..], b"bc"])?;
/// assert_eq!(written, 0..2);
/// let payloads: Vec<Vec<u8>> = journal.read_from(1)?.map(|r| r.map(|r| r.payload)).collect::<Result<_, _>>()?;
/// assert_eq!(payloads, vec![b"bc".to_vec()]);
/// # drop(journal); std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Journal {
    pub(crate) writer: Writer,
    recovery: Recovery,
}

fn sync_dir(dir: &Path) -> Result<(), JournalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| JournalError::io("syncing directory", dir, e))
}

/// Creates the segment starting at `first`: header written and synced, directory synced.
fn create_segment(dir: &Path, first: u64) -> Result<(File, PathBuf), JournalError> {
    let path = dir.join(format::segment_name(first));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| JournalError::io("creating segment", &path, e))?;
    file.write_all(&format::segment_header(first))
        .and_then(|()| file.sync_all())
        .map_err(|e| JournalError::io("writing segment header", &path, e))?;
    sync_dir(dir)?;
    Ok((file, path))
}

impl Journal {
    /// Opens (or creates) the journal in the options' directory, checks its segments join,
    /// scans the last one and cuts off a torn tail left by a crash (reported in
    /// [`recovery`](Self::recovery) and logged).
    ///
    /// # Errors
    /// [`JournalError::Locked`] if another writer has it open; [`JournalError::Corrupt`] if the
    /// last segment is damaged before its end; [`JournalError::Gap`],
    /// [`JournalError::Version`], [`JournalError::Name`]; [`JournalError::Io`];
    /// [`JournalError::Option`] for options out of range.
    ///
    /// ```
    /// use ringmq_journal::{Journal, JournalError, JournalOptions};
    /// let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-open-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let first = Journal::open(JournalOptions::new(&dir))?;
    /// // One writer per directory.
    /// assert!(matches!(Journal::open(JournalOptions::new(&dir)), Err(JournalError::Locked { .. })));
    /// drop(first);
    /// assert!(Journal::open(JournalOptions::new(&dir)).is_ok());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(options: JournalOptions) -> Result<Journal, JournalError> {
        options.check()?;
        let dir = options.dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| JournalError::io("creating", &dir, e))?;
        let lock_path = dir.join(".lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| JournalError::io("opening lock file", &lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(JournalError::Locked { dir }),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(JournalError::io("locking", &lock_path, e))
            }
        }

        let mut segments = format::list_segments(&dir)?;
        let mut torn = None;
        let (file, path, end, next) = match segments.last().cloned() {
            None => {
                let (file, path) = create_segment(&dir, 0)?;
                segments.push((0, path.clone()));
                (file, path, SEGMENT_HEADER as u64, 0)
            }
            Some((last_first, last_path)) => {
                // The segments must join: each starts where the one before ends. Reading a
                // non-last segment's last position needs a scan; its successor's name says
                // where it should end, and the reader checks every record when it reads.
                for pair in segments.windows(2) {
                    if pair[1].0 <= pair[0].0 {
                        return Err(JournalError::Gap {
                            segment: pair[1].1.clone(),
                            expected: pair[0].0 + 1,
                            found: pair[1].0,
                        });
                    }
                }
                let bytes = format::read_segment(&last_path)?;
                if bytes.len() < SEGMENT_HEADER {
                    // A crash while the segment was being created, before its header was
                    // synced: it holds nothing, so it is made again.
                    let (file, path) = create_segment(&dir, last_first)?;
                    torn = Some(TornTail {
                        segment: path.clone(),
                        offset: 0,
                        bytes: bytes.len() as u64,
                        kind: CorruptKind::Truncated,
                    });
                    (file, path, SEGMENT_HEADER as u64, last_first)
                } else {
                    let scan = format::scan(&last_path, &bytes, true, options.max_record)?;
                    if scan.first != last_first {
                        return Err(JournalError::Name { segment: last_path });
                    }
                    let file = OpenOptions::new()
                        .read(true)
                        .write(true)
                        .open(&last_path)
                        .map_err(|e| JournalError::io("opening segment", &last_path, e))?;
                    if let Some((offset, kind)) = scan.torn {
                        file.set_len(offset)
                            .and_then(|()| file.sync_all())
                            .map_err(|e| JournalError::io("cutting torn tail", &last_path, e))?;
                        torn = Some(TornTail {
                            segment: last_path.clone(),
                            offset,
                            bytes: scan.len - offset,
                            kind,
                        });
                    }
                    (file, last_path, scan.end, scan.next)
                }
            }
        };
        if let Some(t) = &torn {
            log::warn!(
                "ringmq-journal: cut a torn tail of {} bytes at {}:{} ({}); the journal ends at position {next}",
                t.bytes,
                t.segment.display(),
                t.offset,
                t.kind
            );
        }
        let mut file = file;
        file.seek(SeekFrom::Start(end))
            .map_err(|e| JournalError::io("seeking segment", &path, e))?;
        let recovery = Recovery {
            first: segments[0].0,
            next,
            segments: segments.len(),
            torn,
        };
        let shared = Arc::new(Shared {
            options,
            durable: AtomicU64::new(next),
            offset: AtomicI64::new(NO_OFFSET),
            segments: Mutex::new(segments),
            records: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            batches: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            rotations: AtomicU64::new(0),
        });
        Ok(Journal {
            writer: Writer {
                shared,
                file,
                path,
                end,
                next,
                last_sync: Instant::now(),
                unsynced: false,
                _lock: lock,
            },
            recovery,
        })
    }

    /// What opening found: first and next positions, segments, a torn tail cut off.
    ///
    /// ```
    /// # use ringmq_journal::{Journal, JournalOptions};
    /// # let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-r-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let journal = Journal::open(JournalOptions::new(&dir))?;
    /// assert!(journal.recovery().torn.is_none());
    /// # drop(journal); std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// A handle for reading, releasing and watching the journal while its stage runs.
    ///
    /// ```
    /// # use ringmq_journal::{Journal, JournalOptions};
    /// # let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-h-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let journal = Journal::open(JournalOptions::new(&dir))?;
    /// let handle = journal.handle();
    /// assert_eq!(handle.durable_next(), 0);
    /// # drop(journal); std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn handle(&self) -> JournalHandle {
        JournalHandle {
            shared: self.writer.shared.clone(),
        }
    }

    /// The records from position `from` to the last durable one (see
    /// [`JournalHandle::read_from`]).
    ///
    /// ```
    /// # use ringmq_journal::{Journal, JournalOptions};
    /// # let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-rf-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut journal = Journal::open(JournalOptions::new(&dir))?;
    /// journal.append_batch([&b"x"[..]])?;
    /// assert_eq!(journal.read_from(0)?.count(), 1);
    /// # drop(journal); std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_from(&self, from: u64) -> Result<Records, JournalError> {
        Records::new(self.writer.shared.clone(), from)
    }

    /// Writes `payloads` as one batch (one `write`, then a sync as the policy says) and returns
    /// their positions. For journaling outside a ring, for tools and for tests; a ring's stage
    /// uses [`consumer`](Self::consumer).
    ///
    /// ```
    /// # use ringmq_journal::{Journal, JournalOptions};
    /// # let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-ab-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut journal = Journal::open(JournalOptions::new(&dir))?;
    /// assert_eq!(journal.append_batch([&b"one"[..], b"two"])?, 0..2);
    /// assert_eq!(journal.append_batch([&b"three"[..]])?, 2..3);
    /// # drop(journal); std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn append_batch<'a>(
        &mut self,
        payloads: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<std::ops::Range<u64>, JournalError> {
        let first = self.writer.next;
        let mut buf = Vec::new();
        let mut count = 0;
        for p in payloads {
            format::append_record(&mut buf, first + count, |out| out.extend_from_slice(p));
            count += 1;
        }
        self.writer.commit(&buf, count, true)?;
        Ok(first..first + count)
    }
}

impl Writer {
    /// Writes one batch of `count` encoded records, rotating first if the batch would take the
    /// segment past its size, then syncs as the policy says and publishes the new durable
    /// position. On an error the segment is cut back to where the batch began, so a retry
    /// rewrites it whole (after a failed `fdatasync` the kernel may have dropped the pages, so
    /// rewriting, not re-syncing, is the fix).
    pub(crate) fn commit(
        &mut self,
        batch: &[u8],
        count: u64,
        may_wait: bool,
    ) -> Result<(), JournalError> {
        if count == 0 {
            return Ok(());
        }
        let options = &self.shared.options;
        if self.end > SEGMENT_HEADER as u64 && self.end + batch.len() as u64 > options.segment_bytes
        {
            self.rotate()?;
        }
        let start = self.end;
        let result = self.file.write_all(batch).and_then(|()| {
            match self.shared.options.sync {
                SyncPolicy::EveryBatch => self.sync()?,
                SyncPolicy::Interval(every) => {
                    let since = self.last_sync.elapsed();
                    if since < every && may_wait {
                        std::thread::sleep(every - since);
                    }
                    self.sync()?;
                }
                SyncPolicy::Os => self.unsynced = true,
            }
            Ok(())
        });
        if let Err(e) = result {
            let _ = self.file.set_len(start);
            let _ = self.file.seek(SeekFrom::Start(start));
            return Err(JournalError::io("writing batch", &self.path, e));
        }
        self.end = start + batch.len() as u64;
        self.next += count;
        let s = &self.shared;
        s.records.fetch_add(count, Ordering::Relaxed);
        s.bytes.fetch_add(batch.len() as u64, Ordering::Relaxed);
        s.batches.fetch_add(1, Ordering::Relaxed);
        // Release: a reader that sees the new durable position sees the segment list the
        // rotation above updated (the file's bytes are ordered by the kernel).
        s.durable.store(self.next, Ordering::Release);
        Ok(())
    }

    fn sync(&mut self) -> std::io::Result<()> {
        self.file.sync_data()?;
        self.shared.syncs.fetch_add(1, Ordering::Relaxed);
        self.last_sync = Instant::now();
        self.unsynced = false;
        Ok(())
    }

    /// Syncs what `SyncPolicy::Os` left unsynced (at rotation and shutdown).
    pub(crate) fn flush(&mut self) -> Result<(), JournalError> {
        if self.unsynced {
            self.sync()
                .map_err(|e| JournalError::io("syncing segment", &self.path, e))?;
        }
        Ok(())
    }

    /// Closes the current segment (synced) and starts the next at `self.next`; applies
    /// `Retention::Segments`.
    fn rotate(&mut self) -> Result<(), JournalError> {
        self.flush()?;
        let dir = self.shared.options.dir.clone();
        let (file, path) = create_segment(&dir, self.next)?;
        self.file = file;
        self.path = path.clone();
        self.end = SEGMENT_HEADER as u64;
        self.shared.rotations.fetch_add(1, Ordering::Relaxed);
        let mut segments = self.shared.segments.lock().expect("segment list");
        segments.push((self.next, path));
        if let Retention::Segments(keep) = self.shared.options.retention {
            let excess = segments.len().saturating_sub(keep);
            for (_, old) in segments.drain(..excess) {
                if let Err(e) = std::fs::remove_file(&old) {
                    log::warn!("ringmq-journal: could not delete {}: {e}", old.display());
                }
            }
        }
        log::debug!("ringmq-journal: new segment at position {}", self.next);
        Ok(())
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            log::error!("ringmq-journal: final sync failed: {e}");
        }
    }
}

/// A handle on a journal whose writer runs elsewhere (in its stage): reads, the durable
/// position, the mapping from ring sequences to positions, releasing old segments. Cheap to
/// clone; keeps nothing open.
///
/// ```
/// # use ringmq_journal::{Journal, JournalOptions};
/// # let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-jh-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let mut journal = Journal::open(JournalOptions::new(&dir))?;
/// let handle = journal.handle();
/// journal.append_batch([&b"a"[..]])?;
/// assert_eq!(handle.durable_next(), 1);
/// assert_eq!(handle.stats().records, 1);
/// # drop(journal); std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct JournalHandle {
    pub(crate) shared: Arc<Shared>,
}

impl JournalHandle {
    /// The position after the last durable record (under the sync policy).
    ///
    /// ```
    /// # use ringmq_journal::{Journal, JournalOptions};
    /// # let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-dn-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let journal = Journal::open(JournalOptions::new(&dir))?;
    /// assert_eq!(journal.handle().durable_next(), journal.recovery().next);
    /// # drop(journal); std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn durable_next(&self) -> u64 {
        self.shared.durable.load(Ordering::Acquire)
    }

    /// The journal position of the event at ring sequence `sequence`, once the stage has seen
    /// its first event (positions continue across restarts; ring sequences start again).
    ///
    /// ```
    /// # use ringmq_journal::{Journal, JournalOptions};
    /// # let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-po-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let journal = Journal::open(JournalOptions::new(&dir))?;
    /// assert_eq!(journal.handle().position_of(0), None); // no event journaled yet
    /// # drop(journal); std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn position_of(&self, sequence: i64) -> Option<u64> {
        match self.shared.offset.load(Ordering::Acquire) {
            NO_OFFSET => None,
            offset => u64::try_from(sequence.checked_add(offset)?).ok(),
        }
    }

    /// Reads the records from position `from` up to the durable end as it is now (see
    /// [`Records`]).
    ///
    /// # Errors
    /// [`JournalError::Released`] before the first segment held, [`JournalError::PastEnd`]
    /// after the end; reading may then fail with [`JournalError::Corrupt`].
    ///
    /// ```
    /// # use ringmq_journal::{Journal, JournalOptions};
    /// # let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-hr-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut journal = Journal::open(JournalOptions::new(&dir))?;
    /// journal.append_batch([&b"a"[..], b"b"])?;
    /// let positions: Vec<u64> = journal.handle().read_from(0)?.map(|r| r.unwrap().position).collect();
    /// assert_eq!(positions, [0, 1]);
    /// # drop(journal); std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_from(&self, from: u64) -> Result<Records, JournalError> {
        Records::new(self.shared.clone(), from)
    }

    /// Deletes the segments that hold only positions before `position` (never the segment
    /// being written); returns how many. Call it after a [`Checkpoint`](crate::Checkpoint)
    /// made them unnecessary.
    ///
    /// # Errors
    /// [`JournalError::Io`] if a file cannot be deleted (the ones before it are gone).
    ///
    /// ```
    /// # use ringmq_journal::{Journal, JournalOptions};
    /// # let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-rb-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let journal = Journal::open(JournalOptions::new(&dir))?;
    /// assert_eq!(journal.handle().release_before(100)?, 0); // the only segment is being written
    /// # drop(journal); std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release_before(&self, position: u64) -> Result<usize, JournalError> {
        let mut segments = self.shared.segments.lock().expect("segment list");
        let mut released = 0;
        // Segment i holds [first_i, first_{i+1}); it can go if first_{i+1} <= position.
        while segments.len() > 1 && segments[1].0 <= position {
            let (_, path) = segments.remove(0);
            std::fs::remove_file(&path).map_err(|e| JournalError::io("releasing", &path, e))?;
            released += 1;
        }
        Ok(released)
    }

    /// The first position still held.
    ///
    /// ```
    /// # use ringmq_journal::{Journal, JournalOptions};
    /// # let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-fi-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let journal = Journal::open(JournalOptions::new(&dir))?;
    /// assert_eq!(journal.handle().first(), 0);
    /// # drop(journal); std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn first(&self) -> u64 {
        self.shared.segments.lock().expect("segment list")[0].0
    }

    /// What the writer did since open.
    ///
    /// ```
    /// # use ringmq_journal::{Journal, JournalOptions};
    /// # let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-st-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let mut journal = Journal::open(JournalOptions::new(&dir))?;
    /// journal.append_batch([&b"abc"[..]])?;
    /// let s = journal.handle().stats();
    /// assert_eq!((s.records, s.bytes, s.batches, s.syncs), (1, 16 + 3, 1, 1));
    /// # drop(journal); std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> JournalStats {
        let s = &self.shared;
        JournalStats {
            records: s.records.load(Ordering::Relaxed),
            bytes: s.bytes.load(Ordering::Relaxed),
            batches: s.batches.load(Ordering::Relaxed),
            syncs: s.syncs.load(Ordering::Relaxed),
            rotations: s.rotations.load(Ordering::Relaxed),
        }
    }

    /// The journal's directory.
    ///
    /// ```
    /// # use ringmq_journal::{Journal, JournalOptions};
    /// # let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-di-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let journal = Journal::open(JournalOptions::new(&dir))?;
    /// assert_eq!(journal.handle().dir(), dir.as_path());
    /// # drop(journal); std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn dir(&self) -> &Path {
        &self.shared.options.dir
    }
}
