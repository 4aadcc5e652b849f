//! Checkpoints: where a consumer's state was taken, so a restart replays only what follows.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{CorruptKind, JournalError};

const MAGIC: [u8; 8] = *b"RMQCKPT1";
const HEADER: usize = 24;

/// A consumer's state as of a journal position, loaded back by [`Checkpoint::load`].
///
/// ```
/// let s = ringmq_journal::Snapshot { resume_at: 10, state: vec![1, 2] };
/// assert_eq!(s.resume_at, 10);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The first position the state does not include: replay from here.
    pub resume_at: u64,
    /// The consumer's state, as it serialized it.
    pub state: Vec<u8>,
}

/// A consumer's checkpoint file: its state and the journal position it covers, replaced
/// atomically (written to a temporary file, synced, renamed over the old one, directory
/// synced), so a crash leaves either the old checkpoint or the new one, never a mix.
///
/// On restart: [`load`](Self::load) the snapshot, rebuild the state from it, then replay the
/// journal from [`Snapshot::resume_at`].
///
/// ```
/// use ringmq_journal::Checkpoint;
/// let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-ck-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// # std::fs::create_dir_all(&dir)?;
/// let checkpoint = Checkpoint::new(dir.join("balances.ckpt"));
/// assert_eq!(checkpoint.load()?, None);
/// checkpoint.store(120, &500u64.to_le_bytes())?; // state after positions 0..120
/// let snap = checkpoint.load()?.unwrap();
/// assert_eq!((snap.resume_at, snap.state), (120, 500u64.to_le_bytes().to_vec()));
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Checkpoint {
    path: PathBuf,
}

impl Checkpoint {
    /// The checkpoint at `path` (nothing is read or written yet).
    ///
    /// ```
    /// let c = ringmq_journal::Checkpoint::new("state.ckpt");
    /// assert_eq!(c.path().to_str(), Some("state.ckpt"));
    /// ```
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
        }
    }

    /// Its file.
    ///
    /// ```
    /// let c = ringmq_journal::Checkpoint::new("s.ckpt");
    /// assert!(c.path().ends_with("s.ckpt"));
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the checkpoint with `state`, taken after every position before `resume_at`.
    /// Durable when it returns.
    ///
    /// # Errors
    /// [`JournalError::Io`].
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-cs-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// # std::fs::create_dir_all(&dir)?;
    /// let c = ringmq_journal::Checkpoint::new(dir.join("c"));
    /// c.store(1, b"one")?;
    /// c.store(2, b"two")?;
    /// assert_eq!(c.load()?.unwrap().state, b"two");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn store(&self, resume_at: u64, state: &[u8]) -> Result<(), JournalError> {
        let len = u32::try_from(state.len()).map_err(|_| JournalError::Option {
            what: "a checkpoint's state must be under 4 GiB",
        })?;
        let mut bytes = Vec::with_capacity(HEADER + state.len());
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&resume_at.to_le_bytes());
        bytes.extend_from_slice(&len.to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c::crc32c(&bytes[8..20]), state);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes.extend_from_slice(state);
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| JournalError::io("creating checkpoint", &tmp, e))?;
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .map_err(|e| JournalError::io("writing checkpoint", &tmp, e))?;
        std::fs::rename(&tmp, &self.path)
            .map_err(|e| JournalError::io("renaming checkpoint", &self.path, e))?;
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| JournalError::io("syncing directory", dir, e))
    }

    /// The stored snapshot, or `None` if there is no checkpoint yet.
    ///
    /// # Errors
    /// [`JournalError::Corrupt`] if the file is damaged (it is only ever replaced by a rename,
    /// so this means damage after the fact), [`JournalError::Io`].
    ///
    /// ```
    /// let c = ringmq_journal::Checkpoint::new("/nonexistent/dir/none.ckpt");
    /// assert_eq!(c.load()?, None);
    /// # Ok::<(), ringmq_journal::JournalError>(())
    /// ```
    pub fn load(&self) -> Result<Option<Snapshot>, JournalError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(JournalError::io("reading checkpoint", &self.path, e)),
        };
        let corrupt = |kind| JournalError::Corrupt {
            segment: self.path.clone(),
            offset: 0,
            kind,
        };
        if bytes.len() < HEADER {
            return Err(corrupt(CorruptKind::Truncated));
        }
        if bytes[..8] != MAGIC {
            return Err(corrupt(CorruptKind::Magic));
        }
        let resume_at = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[20..24].try_into().expect("4 bytes"));
        if bytes.len() != HEADER + len {
            return Err(corrupt(CorruptKind::Truncated));
        }
        if crc32c::crc32c_append(crc32c::crc32c(&bytes[8..20]), &bytes[HEADER..]) != crc {
            return Err(corrupt(CorruptKind::Checksum));
        }
        Ok(Some(Snapshot {
            resume_at,
            state: bytes[HEADER..].to_vec(),
        }))
    }
}
