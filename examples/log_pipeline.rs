//! Log processing: application threads publish log records (multi producer); a parse stage
//! decodes each record in place; then, in parallel, one stage counts records by level and another
//! appends them to a rotating log file. After the run, the files are replayed to rebuild the
//! counts, as a restarted service would, and the two must agree.
//!
//! `cargo run --release --example log_pipeline [records]` (default 2,000,000)
//!
//! Seven threads on two cores: `Blocking` waits. The counts live in memory and are lost with the
//! process; the files are what survives a restart (what is still in the ring at a crash is lost,
//! as with any in-memory queue).

#[path = "common/progress.rs"]
mod progress;

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ringmq::{Blocking, Builder, Consumer, EventHandler, ExclusiveHandler};

const THREADS: u32 = 4;
const LEVELS: [&str; 4] = ["ERROR", "WARN", "INFO", "DEBUG"];
/// A log file is rotated once it holds this many bytes.
const ROTATE_AT: u64 = 4 << 20;

/// A log record: the raw line as the application wrote it, and what the parse stage decodes.
#[derive(Clone, Copy)]
struct Record {
    raw: [u8; 96],
    len: u8,
    /// Filled in by the parse stage: an index into `LEVELS`.
    level: u8,
}

impl Default for Record {
    fn default() -> Self {
        Self {
            raw: [0; 96],
            len: 0,
            level: u8::MAX,
        }
    }
}

impl Record {
    fn text(&self) -> &[u8] {
        &self.raw[..self.len as usize]
    }
}

/// What application thread `t` logs as its `k`th record.
fn write_record(r: &mut Record, t: u32, k: u64) {
    let level = match k % 100 {
        0 => "ERROR",
        1..=4 => "WARN",
        5..=29 => "INFO",
        _ => "DEBUG",
    };
    let mut cursor = std::io::Cursor::new(&mut r.raw[..]);
    write!(cursor, "app-{t} {level} request {k} took {}us", k % 997).expect("fits in 96 bytes");
    r.len = cursor.position() as u8;
    r.level = u8::MAX;
}

/// The level of a log line: its second word.
fn parse_level(line: &[u8]) -> Option<u8> {
    let word = line.split(|&b| b == b' ').nth(1)?;
    LEVELS
        .iter()
        .position(|l| l.as_bytes() == word)
        .map(|i| i as u8)
}

/// Stage 1: decodes each record in place (exclusive: the stages after it read what it wrote).
struct Parse;

impl ExclusiveHandler<Record> for Parse {
    fn on_event(&mut self, r: &mut Record, seq: i64, _: bool) {
        r.level = parse_level(r.text()).unwrap_or_else(|| panic!("unparsable record at {seq}"));
    }
}

/// Stage 2a: counts by level; reports on shutdown.
struct Count {
    by_level: [u64; 4],
    out: mpsc::Sender<[u64; 4]>,
}

impl EventHandler<Record> for Count {
    fn on_event(&mut self, r: &Record, _: i64, _: bool) {
        self.by_level[r.level as usize] += 1;
    }
    fn on_shutdown(&mut self) {
        let _ = self.out.send(self.by_level);
    }
}

/// Stage 2b: appends each record to `dir/app.log.N`, flushes at the end of each batch, and
/// starts the next file once one holds `ROTATE_AT` bytes.
struct RotatingFile {
    dir: PathBuf,
    index: usize,
    written: u64,
    out: BufWriter<File>,
}

impl RotatingFile {
    fn open(dir: &Path, index: usize) -> BufWriter<File> {
        BufWriter::new(File::create(dir.join(format!("app.log.{index}"))).expect("create log file"))
    }
}

impl EventHandler<Record> for RotatingFile {
    fn on_event(&mut self, r: &Record, _: i64, end_of_batch: bool) {
        if self.written >= ROTATE_AT {
            self.out.flush().expect("flush log file");
            self.index += 1;
            self.written = 0;
            self.out = Self::open(&self.dir, self.index);
        }
        self.out.write_all(r.text()).expect("write log file");
        self.out.write_all(b"\n").expect("write log file");
        self.written += r.len as u64 + 1;
        if end_of_batch {
            self.out.flush().expect("flush log file");
        }
    }
    fn on_shutdown(&mut self) {
        self.out.flush().expect("flush log file");
    }
}

/// After a restart: rebuild the counts from the files, oldest first.
fn replay(dir: &Path) -> ([u64; 4], usize, u64) {
    let mut counts = [0u64; 4];
    let mut files = 0;
    let mut lines = 0;
    while let Ok(f) = File::open(dir.join(format!("app.log.{files}"))) {
        for line in BufReader::new(f).split(b'\n') {
            let line = line.expect("read log file");
            counts[parse_level(&line).expect("a line the pipeline wrote") as usize] += 1;
            lines += 1;
        }
        files += 1;
    }
    (counts, files, lines)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let records: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let per_thread = records / THREADS as u64;
    let total = per_thread * THREADS as u64;
    let dir = std::env::temp_dir().join(format!("ringmq-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    let (tx, counted) = mpsc::channel();
    let mut b = Builder::multi_producer(4096, Record::default, Blocking::new())?;
    let parse = b.add(Consumer::exclusive_with_handler("parse", || Parse));
    b.add_after(
        &[parse],
        Consumer::with_handler("count", move || Count {
            by_level: [0; 4],
            out: tx,
        }),
    )?;
    let d = dir.clone();
    b.add_after(
        &[parse],
        Consumer::with_handler("file", move || RotatingFile {
            out: RotatingFile::open(&d, 0),
            dir: d,
            index: 0,
            written: 0,
        }),
    )?;
    let (producer, queue) = b.build()?;

    let started = Instant::now();
    let apps: Vec<_> = (0..THREADS)
        .map(|t| {
            let mut p = producer.clone();
            std::thread::spawn(move || {
                for k in 0..per_thread {
                    p.publish(|r| write_record(r, t, k))
                        .expect("queue is running");
                }
            })
        })
        .collect();
    drop(producer);

    // Progress: the whole graph's receipt, waited on in 200 ms steps.
    let graph = queue.graph_tracker();
    let mut progress = progress::Progress::new("log_pipeline", total);
    while graph
        .wait_processed(total as i64 - 1, Duration::from_millis(200))
        .is_err()
    {
        progress.update((graph.processed() + 1) as u64, "");
        if apps.iter().all(|a| a.is_finished()) && graph.processed() + 1 == total as i64 {
            break;
        }
    }
    for a in apps {
        a.join().expect("application thread panicked");
    }
    let elapsed = started.elapsed();
    progress.finish(total, "");
    queue.shutdown()?;

    let live = counted.recv()?;
    let (replayed, files, lines) = replay(&dir);
    std::fs::remove_dir_all(&dir)?;
    assert_eq!(live.iter().sum::<u64>(), total, "every record counted once");
    assert_eq!(lines, total, "every record written once");
    assert_eq!(replayed, live, "the files rebuild the counts");
    println!(
        "log_pipeline: {total} records from {THREADS} threads in {elapsed:.2?} ({:.2} M records/s); \
         by level {}; {files} rotated files; replaying them rebuilt the same counts",
        total as f64 / elapsed.as_secs_f64() / 1e6,
        LEVELS
            .iter()
            .zip(live)
            .map(|(l, n)| format!("{l} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
