//! The journal against real files: round trips through a ring under every sync policy, reopen,
//! rotation and retention, the torn-tail and mid-journal corruption matrices, checkpoints.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ringmq::{Builder, Consumer, ShutdownError, Yielding};
use ringmq_journal::{
    Checkpoint, CorruptKind, Journal, JournalError, JournalOptions, Record, Retention, SyncPolicy,
};

const GUARD: Duration = Duration::from_secs(60);

/// A fresh directory under the temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ringmq-journal-test-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn all(journal: &Journal, from: u64) -> Vec<Record> {
    journal
        .read_from(from)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn payload(n: u64) -> Vec<u8> {
    // Lengths vary with n (8..=15 bytes) so record boundaries do not line up.
    let mut p = n.to_le_bytes().to_vec();
    p.extend(std::iter::repeat_n(0xA5, (n % 8) as usize));
    p
}

fn encode(n: &u64, out: &mut Vec<u8>) {
    out.extend_from_slice(&payload(*n));
}

fn assert_contiguous(records: &[Record], first: u64, count: u64) {
    assert_eq!(records.len() as u64, count, "record count");
    for (i, r) in records.iter().enumerate() {
        let pos = first + i as u64;
        assert_eq!(r.position, pos, "position at index {i}");
        assert_eq!(r.payload, payload(pos), "payload at position {pos}");
    }
}

const POLICIES: [SyncPolicy; 3] = [
    SyncPolicy::EveryBatch,
    SyncPolicy::Interval(Duration::from_millis(1)),
    SyncPolicy::Os,
];

/// The journal stage, and a stage after it that counts every event it sees whose record is not
/// yet durable, or that comes out of order.
fn journal_then_check<S: ringmq::Sequencer>(
    b: &mut Builder<u64, S, Yielding>,
    journal: Journal,
    violations: &Arc<AtomicUsize>,
) -> ringmq::StageId {
    let after = journal.handle();
    let v = violations.clone();
    let mut seen = 0u64;
    let journaled = b.add(journal.consumer("journal", encode));
    b.add_after(
        &[journaled],
        Consumer::new("after", move |n: &u64, seq, _| {
            // The journal stage is done with `seq`, so its record is durable.
            if after.durable_next() <= after.position_of(seq).unwrap() || *n != seen {
                v.fetch_add(1, Ordering::Relaxed);
            }
            seen += 1;
        }),
    )
    .unwrap();
    journaled
}

/// Every policy and both producer kinds: every event is journaled once, in order; each receipt
/// awaited on the journal stage finds its record already readable (durable), and a stage after
/// the journal only ever sees events the journal already holds.
#[test]
fn a_ring_journals_every_event_once_in_order_under_every_policy() {
    const EVENTS: u64 = 20_000;
    for policy in POLICIES {
        for multi in [false, true] {
            let dir = TempDir::new("ring");
            let journal = Journal::open(JournalOptions::new(&dir.0).sync(policy)).unwrap();
            let handle = journal.handle();
            let violations = Arc::new(AtomicUsize::new(0));
            let mut checked = 0;
            if multi {
                let mut b = Builder::multi_producer(256, || 0u64, Yielding).unwrap();
                let journaled = journal_then_check(&mut b, journal, &violations);
                let (mut p, q) = b.build().unwrap();
                let tracker = q.tracker(journaled).unwrap();
                for i in 0..EVENTS {
                    let seq = p.publish(|n| *n = i).unwrap();
                    if i % 997 == 0 {
                        tracker.wait_processed(seq, GUARD).unwrap();
                        assert!(handle.durable_next() > i, "{policy:?}: receipt before disk");
                        checked += 1;
                    }
                }
                drop(p);
                q.shutdown().unwrap();
            } else {
                let mut b = Builder::single_producer(256, || 0u64, Yielding).unwrap();
                let journaled = journal_then_check(&mut b, journal, &violations);
                let (mut p, q) = b.build().unwrap();
                let tracker = q.tracker(journaled).unwrap();
                let mut i = 0;
                while i < EVENTS {
                    // Batches of 1..=7 events.
                    let n = (1 + i % 7).min(EVENTS - i);
                    let last = p
                        .publish_batch(n as usize, |slot, k| *slot = i + k as u64)
                        .unwrap()
                        .end
                        - 1;
                    i += n;
                    if i % 13 == 0 {
                        tracker.wait_processed(last, GUARD).unwrap();
                        assert!(
                            handle.durable_next() >= i,
                            "{policy:?}: receipt before disk"
                        );
                        checked += 1;
                    }
                }
                drop(p);
                q.shutdown().unwrap();
            }
            assert!(checked > 10);
            assert_eq!(
                violations.load(Ordering::Relaxed),
                0,
                "{policy:?} multi={multi}"
            );
            let reopened = Journal::open(JournalOptions::new(&dir.0)).unwrap();
            assert_eq!(reopened.recovery().next, EVENTS);
            assert_eq!(reopened.recovery().torn, None);
            assert_contiguous(&all(&reopened, 0), 0, EVENTS);
            let stats = handle.stats();
            assert_eq!(stats.records, EVENTS);
            match policy {
                SyncPolicy::Os => assert!(stats.syncs <= 1, "{stats:?}"),
                _ => assert_eq!(stats.syncs, stats.batches, "{stats:?}"),
            }
        }
    }
}

/// Positions continue across reopenings, and a ring started again maps its sequence 0 to the
/// next position.
#[test]
fn positions_continue_across_restarts() {
    let dir = TempDir::new("restart");
    for round in 0..3u64 {
        let journal = Journal::open(JournalOptions::new(&dir.0)).unwrap();
        assert_eq!(journal.recovery().next, round * 100);
        let handle = journal.handle();
        let mut b = Builder::single_producer(64, || 0u64, Yielding).unwrap();
        b.add(journal.consumer("journal", encode));
        let (mut p, q) = b.build().unwrap();
        for i in 0..100 {
            p.publish(|n| *n = round * 100 + i).unwrap();
        }
        drop(p);
        q.shutdown().unwrap();
        assert_eq!(handle.position_of(0), Some(round * 100));
        assert_eq!(handle.position_of(99), Some(round * 100 + 99));
    }
    let journal = Journal::open(JournalOptions::new(&dir.0)).unwrap();
    assert_contiguous(&all(&journal, 0), 0, 300);
    assert_contiguous(&all(&journal, 250), 250, 50);
    assert_eq!(all(&journal, 300), vec![]);
    assert!(matches!(
        journal.read_from(301),
        Err(JournalError::PastEnd {
            from: 301,
            next: 300
        })
    ));
}

/// Segments rotate at their size; reads cross them; retention by count deletes the oldest;
/// `release_before` deletes what a checkpoint covers, never the segment being written.
#[test]
fn segments_rotate_and_are_retained_or_released() {
    let dir = TempDir::new("rotate");
    let mut journal = Journal::open(JournalOptions::new(&dir.0).segment_bytes(4096)).unwrap();
    let mut next = 0u64;
    for _ in 0..200 {
        let batch: Vec<Vec<u8>> = (next..next + 5).map(payload).collect();
        journal
            .append_batch(batch.iter().map(Vec::as_slice))
            .unwrap();
        next += 5;
    }
    let handle = journal.handle();
    let stats = handle.stats();
    assert!(stats.rotations >= 5, "{stats:?}");
    let segments = std::fs::read_dir(&dir.0)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "rmqj")
        })
        .count() as u64;
    assert_eq!(segments, stats.rotations + 1);
    for entry in std::fs::read_dir(&dir.0).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "rmqj") {
            // A segment may pass its size only by the batch that started it.
            assert!(std::fs::metadata(&path).unwrap().len() <= 4096, "{path:?}");
        }
    }
    assert_contiguous(&all(&journal, 0), 0, 1000);
    assert_contiguous(&all(&journal, 777), 777, 223);

    // Release up to 500: every segment whose records all precede 500 goes.
    let released = handle.release_before(500).unwrap();
    assert!(released >= 2);
    let first = handle.first();
    assert!(first <= 500 && first > 0, "first {first}");
    assert!(matches!(
        journal.read_from(0),
        Err(JournalError::Released { from: 0, first: f }) if f == first
    ));
    assert_contiguous(&all(&journal, first), first, 1000 - first);
    drop(journal);
    let journal = Journal::open(JournalOptions::new(&dir.0)).unwrap();
    assert_eq!(
        (journal.recovery().first, journal.recovery().next),
        (first, 1000)
    );
    // Releasing everything keeps the segment being written.
    let handle = journal.handle();
    assert_eq!(
        handle.release_before(u64::MAX).unwrap(),
        journal.recovery().segments - 1
    );
    assert_eq!(
        segment_files(&dir.0),
        1,
        "only the segment being written is left"
    );
    drop(journal);

    // Retention by count.
    let dir = TempDir::new("retain");
    let mut journal = Journal::open(
        JournalOptions::new(&dir.0)
            .segment_bytes(4096)
            .retention(Retention::Segments(2)),
    )
    .unwrap();
    for i in 0..1000u64 {
        journal.append_batch([payload(i).as_slice()]).unwrap();
    }
    let handle = journal.handle();
    let files = std::fs::read_dir(&dir.0)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "rmqj")
        })
        .count();
    assert_eq!(files, 2);
    let first = handle.first();
    assert_contiguous(&all(&journal, first), first, 1000 - first);
}

fn segment_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "rmqj")
        })
        .count()
}

/// A journal of `count` records written one per batch; returns each record's offset in the
/// (single) segment file and the file's path.
fn journal_of(dir: &Path, count: u64) -> (PathBuf, Vec<u64>) {
    let mut journal = Journal::open(JournalOptions::new(dir)).unwrap();
    let mut offsets = Vec::new();
    let mut at = 32u64;
    for i in 0..count {
        offsets.push(at);
        let p = payload(i);
        at += 16 + p.len() as u64;
        journal.append_batch([p.as_slice()]).unwrap();
    }
    drop(journal);
    (dir.join(format!("{:020}.rmqj", 0)), offsets)
}

fn flip(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

/// The torn-tail matrix: the last record cut at every length (inside its header, inside its
/// payload), or damaged in each field (length, CRC, position, payload) with nothing after it.
/// Each is cut off at the last record's offset and reported; the journal then goes on at the
/// position the lost record had, and everything before it reads back.
#[test]
fn a_torn_tail_is_cut_off_cleanly_wherever_it_was_torn() {
    const N: u64 = 20;
    let mut cases = Vec::new();
    let last_len = 16 + payload(N - 1).len() as u64;
    for keep in 0..last_len {
        cases.push(("cut", keep));
    }
    // Damage in the length, CRC, position, and payload fields.
    for field in [0u64, 5, 9, 16, last_len - 1] {
        cases.push(("flip", field));
    }
    for (what, at) in cases {
        let dir = TempDir::new("torn");
        let (segment, offsets) = journal_of(&dir.0, N);
        let last = offsets[N as usize - 1];
        let file_len = std::fs::metadata(&segment).unwrap().len();
        match what {
            "cut" => OpenOptions::new()
                .write(true)
                .open(&segment)
                .unwrap()
                .set_len(last + at)
                .unwrap(),
            _ => flip(&segment, last + at),
        }
        let mut journal = Journal::open(JournalOptions::new(&dir.0)).unwrap();
        let torn = journal.recovery().torn.clone();
        if what == "cut" && at == 0 {
            // Cut exactly at a record boundary: nothing is torn, the record is simply absent.
            assert_eq!(torn, None);
        } else {
            let torn = torn.unwrap_or_else(|| panic!("{what} {at}: no torn tail reported"));
            assert_eq!(torn.offset, last, "{what} {at}");
            let expected_bytes = if what == "cut" { at } else { file_len - last };
            assert_eq!(torn.bytes, expected_bytes, "{what} {at}");
            assert_eq!(torn.segment, segment);
        }
        assert_eq!(journal.recovery().next, N - 1, "{what} {at}");
        assert_eq!(std::fs::metadata(&segment).unwrap().len(), last);
        // The journal goes on: the lost record's position is written again.
        journal
            .append_batch([payload(N - 1).as_slice(), payload(N).as_slice()])
            .unwrap();
        assert_contiguous(&all(&journal, 0), 0, N + 1);
    }
}

/// The corruption matrix: a damaged record with valid records after it, in each field, in the
/// last segment (refused at open) and in an earlier one (refused when read), is a typed error
/// naming the segment and the record's offset.
#[test]
fn a_damaged_record_in_the_middle_is_a_typed_error_naming_segment_and_offset() {
    const N: u64 = 20;
    for record in [0u64, 7, N - 2] {
        for (field, kind) in [
            (0u64, "length"),
            (5, "crc"),
            (9, "position"),
            (16, "payload"),
        ] {
            // In the last segment: open refuses to write after it.
            let dir = TempDir::new("mid");
            let (segment, offsets) = journal_of(&dir.0, N);
            let at = offsets[record as usize];
            flip(&segment, at + field);
            match Journal::open(JournalOptions::new(&dir.0)) {
                Err(JournalError::Corrupt {
                    segment: s,
                    offset,
                    kind: k,
                }) => {
                    assert_eq!((s, offset), (segment.clone(), at), "record {record} {kind}");
                    let expected_kind = match kind {
                        "length" | "crc" | "payload" => {
                            matches!(
                                k,
                                CorruptKind::Checksum
                                    | CorruptKind::Truncated
                                    | CorruptKind::Length(_)
                            )
                        }
                        _ => matches!(k, CorruptKind::Checksum),
                    };
                    assert!(expected_kind, "record {record} {kind}: {k:?}");
                    let msg = JournalError::Corrupt {
                        segment: segment.clone(),
                        offset,
                        kind: k,
                    }
                    .to_string();
                    assert!(msg.contains(&format!("at byte {at}")), "{msg}");
                }
                other => panic!("record {record} {kind}: {other:?}"),
            }
        }
    }

    // In an earlier segment: open scans only the last one; the read stops with the error.
    let dir = TempDir::new("mid-early");
    let mut journal = Journal::open(JournalOptions::new(&dir.0).segment_bytes(4096)).unwrap();
    for i in 0..600u64 {
        journal.append_batch([payload(i).as_slice()]).unwrap();
    }
    drop(journal);
    let first_segment = dir.0.join(format!("{:020}.rmqj", 0));
    flip(&first_segment, 32 + 16 + 16 + payload(0).len() as u64); // record 1's payload
    let journal = Journal::open(JournalOptions::new(&dir.0)).unwrap();
    let mut reader = journal.read_from(0).unwrap();
    assert_eq!(reader.next().unwrap().unwrap().position, 0);
    match reader.next() {
        Some(Err(JournalError::Corrupt {
            segment,
            offset,
            kind,
        })) => {
            assert_eq!(segment, first_segment);
            assert_eq!(offset, 32 + 16 + payload(0).len() as u64);
            assert_eq!(kind, CorruptKind::Checksum);
        }
        other => panic!("{other:?}"),
    }
    assert!(reader.next().is_none(), "the reader stops after an error");
}

/// A segment deleted from the middle is a gap when read across; a foreign file and a torn
/// segment header are reported, and a header torn by a crash at creation is made again.
#[test]
fn missing_segments_bad_names_and_torn_headers() {
    let dir = TempDir::new("gap");
    let mut journal = Journal::open(JournalOptions::new(&dir.0).segment_bytes(4096)).unwrap();
    for i in 0..1000u64 {
        journal.append_batch([payload(i).as_slice()]).unwrap();
    }
    drop(journal);
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "rmqj"))
        .collect();
    segments.sort();
    assert!(segments.len() >= 3);
    std::fs::remove_file(&segments[1]).unwrap();
    let journal = Journal::open(JournalOptions::new(&dir.0)).unwrap();
    let err = journal
        .read_from(0)
        .unwrap()
        .find_map(Result::err)
        .expect("a gap");
    assert!(
        matches!(&err, JournalError::Gap { segment, .. } if *segment == segments[2]),
        "{err:?}"
    );
    drop(journal);

    // A file that is not named by a position.
    std::fs::write(dir.0.join("notes.rmqj"), b"x").unwrap();
    assert!(matches!(
        Journal::open(JournalOptions::new(&dir.0)),
        Err(JournalError::Name { .. })
    ));
    std::fs::remove_file(dir.0.join("notes.rmqj")).unwrap();

    // A new last segment whose header a crash cut short: made again, reported as torn.
    let last_first: u64 = 1000;
    let path = dir.0.join(format!("{last_first:020}.rmqj"));
    std::fs::write(&path, b"RINGMQ").unwrap();
    let mut journal = Journal::open(JournalOptions::new(&dir.0)).unwrap();
    let torn = journal.recovery().torn.clone().unwrap();
    assert_eq!((torn.segment, torn.offset, torn.bytes), (path, 0, 6));
    assert_eq!(journal.recovery().next, 1000);
    journal.append_batch([payload(1000).as_slice()]).unwrap();
    let last: Vec<Record> = journal
        .read_from(1000)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(last.len(), 1);
    drop(journal);

    // A segment whose magic is not ours.
    let mut f = OpenOptions::new().write(true).open(&segments[0]).unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.write_all(b"NOTOURS!").unwrap();
    drop(f);
    let journal = Journal::open(JournalOptions::new(&dir.0)).unwrap();
    let first = journal.recovery().first;
    let err = journal
        .read_from(first)
        .unwrap()
        .next()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            err,
            JournalError::Corrupt {
                kind: CorruptKind::Magic,
                offset: 0,
                ..
            }
        ),
        "{err:?}"
    );
}

/// One writer per directory; options out of range are refused with what to change.
#[test]
fn one_writer_per_directory_and_options_checked() {
    let dir = TempDir::new("lock");
    let journal = Journal::open(JournalOptions::new(&dir.0)).unwrap();
    let err = Journal::open(JournalOptions::new(&dir.0)).unwrap_err();
    assert!(matches!(err, JournalError::Locked { .. }));
    assert!(
        err.to_string().contains("already open for writing"),
        "{err}"
    );
    drop(journal);
    Journal::open(JournalOptions::new(&dir.0)).unwrap();
    for (options, says) in [
        (
            JournalOptions::new(&dir.0).segment_bytes(100),
            "segment_bytes",
        ),
        (
            JournalOptions::new(&dir.0).retention(Retention::Segments(0)),
            "Segments",
        ),
        (JournalOptions::new(&dir.0).max_record(0), "max_record"),
    ] {
        let err = Journal::open(options).unwrap_err();
        assert!(err.to_string().contains(says), "{err}");
    }
}

/// A record over `max_record` fails its batch: retried, then the stage halts the queue; the
/// journal's receipt never passes the event, and nothing of the batch is on disk.
#[test]
fn an_event_too_large_halts_the_journal_without_a_false_receipt() {
    let dir = TempDir::new("large");
    let journal = Journal::open(JournalOptions::new(&dir.0).max_record(64)).unwrap();
    let handle = journal.handle();
    let mut b = Builder::single_producer(64, Vec::<u8>::new, Yielding).unwrap();
    let journaled = b.add(
        journal
            .consumer("journal", |v: &Vec<u8>, out: &mut Vec<u8>| {
                out.extend_from_slice(v)
            })
            .retry(ringmq::RetryPolicy::new(2, Duration::from_millis(1))),
    );
    let (mut p, q) = b.build().unwrap();
    let tracker = q.tracker(journaled).unwrap();
    let ok = p.publish(|v| *v = vec![1; 64]).unwrap();
    tracker.wait_processed(ok, GUARD).unwrap();
    let big = p.publish(|v| *v = vec![2; 65]).unwrap();
    assert!(tracker.wait_processed(big, GUARD).is_err());
    assert!(!tracker.is_processed(big));
    drop(p);
    match q.shutdown() {
        Err(ShutdownError::ConsumerPanicked {
            consumer,
            sequence,
            message,
            ..
        }) => {
            assert_eq!((consumer.as_str(), sequence), ("journal", big));
            assert!(message.contains("max_record"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(handle.durable_next(), 1);
    let journal = Journal::open(JournalOptions::new(&dir.0)).unwrap();
    assert_eq!(journal.recovery().next, 1);
}

/// A batch that fails part-way (here: one event encodes too large once, as a transient failure
/// would) is replayed whole, from a clean buffer, and every event ends up in the journal once.
#[test]
fn a_failed_batch_is_replayed_whole_and_written_once() {
    let dir = TempDir::new("replay");
    let journal = Journal::open(JournalOptions::new(&dir.0).max_record(64)).unwrap();
    let mut b = Builder::single_producer(64, || 0u64, Yielding).unwrap();
    let mut failed = 0;
    let journaled = b.add(
        journal
            .consumer("journal", move |n: &u64, out: &mut Vec<u8>| {
                if *n % 50 == 37 && failed < 3 {
                    failed += 1;
                    out.extend_from_slice(&[0; 65]); // over max_record: the batch is retried
                } else {
                    encode(n, out)
                }
            })
            .retry(ringmq::RetryPolicy::new(5, Duration::from_millis(1))),
    );
    let (mut p, q) = b.build().unwrap();
    let tracker = q.tracker(journaled).unwrap();
    let mut i = 0;
    while i < 200 {
        let last = p
            .publish_batch(10, |slot, k| *slot = i + k as u64)
            .unwrap()
            .end
            - 1;
        i += 10;
        tracker.wait_processed(last, GUARD).unwrap();
    }
    drop(p);
    q.shutdown().unwrap();
    let journal = Journal::open(JournalOptions::new(&dir.0).max_record(64)).unwrap();
    assert_eq!(journal.recovery().torn, None);
    assert_contiguous(&all(&journal, 0), 0, 200);
}

/// `Interval` syncs at most once per interval (a group commit), and still never passes a
/// receipt before its sync.
#[test]
fn the_interval_policy_syncs_at_most_once_per_interval() {
    let dir = TempDir::new("interval");
    let interval = Duration::from_millis(20);
    let mut journal =
        Journal::open(JournalOptions::new(&dir.0).sync(SyncPolicy::Interval(interval))).unwrap();
    let handle = journal.handle();
    let start = Instant::now();
    for i in 0..10u64 {
        journal.append_batch([payload(i).as_slice()]).unwrap();
        assert_eq!(handle.durable_next(), i + 1);
    }
    let elapsed = start.elapsed();
    let syncs = handle.stats().syncs;
    assert_eq!(syncs, 10);
    // Ten syncs need at least nine full intervals between them.
    assert!(elapsed >= interval * 9, "{elapsed:?}");
}

/// Checkpoints: replaced atomically, loaded back, damage detected; a leftover temporary file
/// from a crash mid-store does not count.
#[test]
fn checkpoints_store_load_and_detect_damage() {
    let dir = TempDir::new("ckpt");
    std::fs::create_dir_all(&dir.0).unwrap();
    let c = Checkpoint::new(dir.0.join("state.ckpt"));
    assert_eq!(c.load().unwrap(), None);
    for i in 0..5u64 {
        c.store(i * 10, &i.to_le_bytes()).unwrap();
        let s = c.load().unwrap().unwrap();
        assert_eq!((s.resume_at, s.state), (i * 10, i.to_le_bytes().to_vec()));
    }
    // A crash after writing the temporary file, before the rename.
    std::fs::write(dir.0.join("state.ckpt.tmp"), b"garbage").unwrap();
    assert_eq!(c.load().unwrap().unwrap().resume_at, 40);
    c.store(50, b"").unwrap();
    assert_eq!(c.load().unwrap().unwrap().state, b"");
    for at in [0u64, 9, 17, 21, 23] {
        let d = TempDir::new("ckpt-flip");
        std::fs::create_dir_all(&d.0).unwrap();
        let c = Checkpoint::new(d.0.join("c"));
        c.store(77, b"state!").unwrap();
        flip(c.path(), at);
        assert!(
            matches!(c.load(), Err(JournalError::Corrupt { .. })),
            "flip at {at}"
        );
    }
    let d = TempDir::new("ckpt-cut");
    std::fs::create_dir_all(&d.0).unwrap();
    let c = Checkpoint::new(d.0.join("c"));
    c.store(77, b"state!").unwrap();
    let len = std::fs::metadata(c.path()).unwrap().len();
    OpenOptions::new()
        .write(true)
        .open(c.path())
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    assert!(matches!(
        c.load(),
        Err(JournalError::Corrupt {
            kind: CorruptKind::Truncated,
            ..
        })
    ));
}

/// A reader racing the stage sees only durable records, in order, and never an error.
#[test]
fn a_reader_racing_the_writer_sees_only_whole_durable_records() {
    let dir = TempDir::new("race");
    let journal = Journal::open(JournalOptions::new(&dir.0).segment_bytes(8192)).unwrap();
    let handle = journal.handle();
    let mut b = Builder::single_producer(128, || 0u64, Yielding).unwrap();
    b.add(journal.consumer("journal", encode));
    let (mut p, q) = b.build().unwrap();
    let done = Arc::new(Mutex::new(false));
    let reader = {
        let handle = handle.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut reads = 0;
            let deadline = Instant::now() + GUARD;
            while !*done.lock().unwrap() && Instant::now() < deadline {
                let end = handle.durable_next();
                let records: Vec<Record> =
                    handle.read_from(0).unwrap().map(Result::unwrap).collect();
                assert!(records.len() as u64 >= end);
                assert_contiguous(&records, 0, records.len() as u64);
                reads += 1;
                std::thread::yield_now();
            }
            reads
        })
    };
    for i in 0..5000 {
        p.publish(|n| *n = i).unwrap();
    }
    drop(p);
    q.shutdown().unwrap();
    *done.lock().unwrap() = true;
    assert!(reader.join().unwrap() > 0);
    assert_contiguous(
        &handle
            .read_from(0)
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>(),
        0,
        5000,
    );
}

/// Random damage (byte flips, truncations, appended garbage) anywhere in a journal of several
/// segments: opening and reading return records or a typed error, never panic, and whatever is
/// read is a contiguous prefix with the payloads written.
#[test]
fn random_damage_is_an_error_or_a_clean_prefix_never_a_panic() {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for case in 0..200 {
        let dir = TempDir::new("random");
        let options = JournalOptions::new(&dir.0)
            .segment_bytes(4096)
            .sync(SyncPolicy::Os);
        let mut journal = Journal::open(options).unwrap();
        for i in 0..300u64 {
            journal.append_batch([payload(i).as_slice()]).unwrap();
        }
        drop(journal);
        let mut segments: Vec<PathBuf> = std::fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "rmqj"))
            .collect();
        segments.sort();
        let victim = &segments[(next() % segments.len() as u64) as usize];
        let mut bytes = std::fs::read(victim).unwrap();
        match next() % 3 {
            0 => {
                for _ in 0..1 + next() % 4 {
                    let at = (next() % bytes.len() as u64) as usize;
                    bytes[at] ^= 1 << (next() % 8);
                }
            }
            1 => bytes.truncate((next() % bytes.len() as u64) as usize),
            _ => bytes.extend((0..1 + next() % 64).map(|_| next() as u8)),
        }
        std::fs::write(victim, &bytes).unwrap();
        let result = std::panic::catch_unwind(|| {
            let journal = match Journal::open(JournalOptions::new(&dir.0)) {
                Ok(j) => j,
                Err(_) => return,
            };
            let first = journal.recovery().first;
            let mut expected = first;
            for record in journal.read_from(first).unwrap() {
                match record {
                    Ok(r) => {
                        assert_eq!(r.position, expected);
                        assert_eq!(r.payload, payload(expected));
                        expected += 1;
                    }
                    Err(e) => {
                        let _ = e.to_string();
                        break;
                    }
                }
            }
        });
        assert!(result.is_ok(), "case {case}: a panic");
    }
}
