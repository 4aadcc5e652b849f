//! The on-disk format: segment files of checksummed records, and the scan that finds where a
//! segment's valid records end.
//!
//! A journal is a directory of segment files named by the position of their first record,
//! `{first:020}.rmqj`, so that their names sort in order. Each file is:
//!
//! ```text
//! segment header, 32 bytes:  magic "RINGMQJ1" | version u32 | flags u32 | first position u64 |
//!                            crc32c of the 24 bytes before it u32 | zero u32
//! record, 16 + len bytes:    len u32 | crc32c u32 | position u64 | payload (len bytes)
//! ```
//!
//! All integers are little-endian. A record's CRC32C covers its `len`, its `position` and its
//! payload, so a torn or shifted record cannot pass for a valid one. Positions are contiguous:
//! each record's is the one before it plus one, across segments.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{CorruptKind, JournalError};

/// The magic that opens every segment file.
pub(crate) const MAGIC: [u8; 8] = *b"RINGMQJ1";
/// The format version this crate writes and reads.
pub(crate) const VERSION: u32 = 1;
/// The size of a segment file's header.
pub(crate) const SEGMENT_HEADER: usize = 32;
/// The size of a record's header (`len`, `crc`, `position`).
pub(crate) const RECORD_HEADER: usize = 16;
/// A segment file's extension.
pub(crate) const EXTENSION: &str = "rmqj";

/// The file name of the segment whose first record is at `first`.
pub(crate) fn segment_name(first: u64) -> String {
    format!("{first:020}.{EXTENSION}")
}

/// A segment header for a segment starting at `first`.
pub(crate) fn segment_header(first: u64) -> [u8; SEGMENT_HEADER] {
    let mut h = [0u8; SEGMENT_HEADER];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[16..24].copy_from_slice(&first.to_le_bytes());
    let crc = crc32c::crc32c(&h[..24]);
    h[24..28].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Appends a record at `position` to `out`: reserves the header, lets `encode` append the
/// payload, then fills in the length and the checksum. Returns the payload's length.
pub(crate) fn append_record(
    out: &mut Vec<u8>,
    position: u64,
    encode: impl FnOnce(&mut Vec<u8>),
) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; RECORD_HEADER]);
    encode(out);
    let len = out.len() - start - RECORD_HEADER;
    let len32 = u32::try_from(len).expect("a journal record's payload is under 4 GiB");
    let rec = &mut out[start..];
    rec[..4].copy_from_slice(&len32.to_le_bytes());
    rec[8..16].copy_from_slice(&position.to_le_bytes());
    let crc = record_crc(&rec[..4], &rec[8..16], &rec[RECORD_HEADER..]);
    rec[4..8].copy_from_slice(&crc.to_le_bytes());
    len
}

fn record_crc(len: &[u8], position: &[u8], payload: &[u8]) -> u32 {
    let crc = crc32c::crc32c(len);
    let crc = crc32c::crc32c_append(crc, position);
    crc32c::crc32c_append(crc, payload)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Why the bytes at an offset are not the record expected there.
fn check_record(
    bytes: &[u8],
    at: usize,
    expected: u64,
    max_record: u32,
) -> Result<(u64, usize), CorruptKind> {
    let rest = &bytes[at..];
    if rest.len() < RECORD_HEADER {
        return Err(CorruptKind::Truncated);
    }
    let len = u32_at(rest, 0);
    if len > max_record {
        return Err(CorruptKind::Length(len));
    }
    let end = RECORD_HEADER + len as usize;
    if rest.len() < end {
        return Err(CorruptKind::Truncated);
    }
    let crc = u32_at(rest, 4);
    if record_crc(&rest[..4], &rest[8..16], &rest[RECORD_HEADER..end]) != crc {
        return Err(CorruptKind::Checksum);
    }
    let position = u64_at(rest, 8);
    if position != expected {
        return Err(CorruptKind::Position {
            expected,
            found: position,
        });
    }
    Ok((position, end))
}

/// Checks the record at `at` (which must be at position `expected`); returns its length.
pub(crate) fn check_one(
    bytes: &[u8],
    at: usize,
    expected: u64,
    max_record: u32,
) -> Result<usize, CorruptKind> {
    check_record(bytes, at, expected, max_record).map(|(_, len)| len)
}

/// Whether any valid record at a position `>= expected` starts anywhere after `from`: what tells
/// a corrupted record in the middle (valid records follow it) from a torn tail (nothing does).
fn valid_record_after(bytes: &[u8], from: usize, expected: u64, max_record: u32) -> bool {
    (from + 1..bytes.len().saturating_sub(RECORD_HEADER - 1)).any(|at| {
        let rest = &bytes[at..];
        let position = u64_at(rest, 8);
        // Any later record's position is above `expected` by at most the records that fit.
        position >= expected
            && position - expected <= (bytes.len() / RECORD_HEADER) as u64
            && check_record(bytes, at, position, max_record).is_ok()
    })
}

/// What scanning one segment found.
#[derive(Debug)]
pub(crate) struct Scan {
    /// The position of the segment's first record (from its header).
    pub(crate) first: u64,
    /// The position after its last valid record.
    pub(crate) next: u64,
    /// The file offset after its last valid record.
    pub(crate) end: u64,
    /// The file's length (more than `end` if a torn tail follows).
    pub(crate) len: u64,
    /// The torn tail (offset, why) if the segment ends in one.
    pub(crate) torn: Option<(u64, CorruptKind)>,
}

/// Reads and checks a segment's header; returns its first position.
pub(crate) fn read_header(path: &Path, bytes: &[u8]) -> Result<u64, JournalError> {
    let corrupt = |kind| JournalError::Corrupt {
        segment: path.to_path_buf(),
        offset: 0,
        kind,
    };
    if bytes.len() < SEGMENT_HEADER {
        return Err(corrupt(CorruptKind::Truncated));
    }
    if bytes[..8] != MAGIC {
        return Err(corrupt(CorruptKind::Magic));
    }
    if u32_at(bytes, 24) != crc32c::crc32c(&bytes[..24]) {
        return Err(corrupt(CorruptKind::Checksum));
    }
    let version = u32_at(bytes, 8);
    if version != VERSION {
        return Err(JournalError::Version {
            segment: path.to_path_buf(),
            found: version,
            supported: VERSION,
        });
    }
    Ok(u64_at(bytes, 16))
}

/// Reads a whole segment file.
pub(crate) fn read_segment(path: &Path) -> Result<Vec<u8>, JournalError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| JournalError::io("reading segment", path, e))?;
    Ok(bytes)
}

/// Scans a segment's records. In the last segment an invalid record that no valid record
/// follows is a torn tail (a crash in the middle of a write), reported in [`Scan::torn`];
/// anywhere else an invalid record is [`JournalError::Corrupt`], naming the segment and offset.
pub(crate) fn scan(
    path: &Path,
    bytes: &[u8],
    last: bool,
    max_record: u32,
) -> Result<Scan, JournalError> {
    let first = read_header(path, bytes)?;
    let mut at = SEGMENT_HEADER;
    let mut next = first;
    while at < bytes.len() {
        match check_record(bytes, at, next, max_record) {
            Ok((_, len)) => {
                at += len;
                next += 1;
            }
            Err(kind) => {
                if last && !valid_record_after(bytes, at, next, max_record) {
                    return Ok(Scan {
                        first,
                        next,
                        end: at as u64,
                        len: bytes.len() as u64,
                        torn: Some((at as u64, kind)),
                    });
                }
                return Err(JournalError::Corrupt {
                    segment: path.to_path_buf(),
                    offset: at as u64,
                    kind,
                });
            }
        }
    }
    Ok(Scan {
        first,
        next,
        end: at as u64,
        len: bytes.len() as u64,
        torn: None,
    })
}

/// One record read back: its position and its payload.
pub(crate) fn record_at(bytes: &[u8], at: usize) -> (u64, &[u8]) {
    let len = u32_at(bytes, at) as usize;
    (
        u64_at(bytes, at + 8),
        &bytes[at + RECORD_HEADER..at + RECORD_HEADER + len],
    )
}

/// The journal's segment files, sorted by first position (from their names; each header is
/// checked when the segment is read).
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, JournalError> {
    let entries = std::fs::read_dir(dir).map_err(|e| JournalError::io("listing", dir, e))?;
    let mut segments = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io("listing", dir, e))?;
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
            continue;
        }
        let first = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<u64>().ok());
        match first {
            Some(first) => segments.push((first, path)),
            None => return Err(JournalError::Name { segment: path }),
        }
    }
    segments.sort();
    Ok(segments)
}
