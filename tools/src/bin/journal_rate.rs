//! Journal throughput per sync policy, beside the raw `write` + `fdatasync` rate of the same disk,
//! measured in the same run.
//!
//! ```sh
//! cargo run --release -p ringmq-tools --bin journal_rate                # 5 rounds, 200 000 events
//! cargo run --release -p ringmq-tools --bin journal_rate -- 3 50000 /mnt/disk/dir
//! ```
//!
//! Each trial is a fresh process (this binary run with `--trial`), and the trials of a round run
//! in a shuffled order, so a disk that slows down over a run (writeback, a neighbour) is spread
//! over every configuration. A trial: one producer publishes `events` events of 64 bytes into a
//! 4096-slot ring whose only stage is the journal; the time is from the first publish to the
//! journal's receipt for the last event. The raw trials write batches of the size the
//! `EveryBatch` trial of the same round averaged (records per `write`) with one `write_all` and
//! one `fdatasync` per batch (`raw-sync`), or none (`raw-write`), into a fresh file in the same
//! directory. Medians over rounds, with the lowest and highest, are printed per configuration.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ringmq::{Builder, Yielding};
use ringmq_journal::{Journal, JournalOptions, SyncPolicy};

const EVENT: usize = 64;
const RECORD: usize = EVENT + 16;

fn policy(name: &str) -> SyncPolicy {
    match name {
        "every-batch" => SyncPolicy::EveryBatch,
        "interval-1ms" => SyncPolicy::Interval(Duration::from_millis(1)),
        "interval-10ms" => SyncPolicy::Interval(Duration::from_millis(10)),
        "os" => SyncPolicy::Os,
        other => panic!("unknown policy {other}"),
    }
}

/// One journal trial: (seconds, records per write).
fn journal_trial(dir: &Path, name: &str, events: u64) -> (f64, f64) {
    let _ = std::fs::remove_dir_all(dir);
    let journal = Journal::open(JournalOptions::new(dir).sync(policy(name))).unwrap();
    let handle = journal.handle();
    let mut b = Builder::single_producer(4096, || [0u8; EVENT], Yielding).unwrap();
    let journaled = b.add(
        journal.consumer("journal", |e: &[u8; EVENT], out: &mut Vec<u8>| {
            out.extend_from_slice(e)
        }),
    );
    let (mut producer, queue) = b.build().unwrap();
    let tracker = queue.tracker(journaled).unwrap();
    let start = Instant::now();
    let mut last = 0;
    for i in 0..events {
        last = producer
            .publish(|e| e[..8].copy_from_slice(&i.to_le_bytes()))
            .unwrap();
    }
    tracker
        .wait_processed(last, Duration::from_secs(600))
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    drop(producer);
    queue.shutdown().unwrap();
    let stats = handle.stats();
    assert_eq!(stats.records, events);
    let _ = std::fs::remove_dir_all(dir);
    (secs, stats.records as f64 / stats.batches as f64)
}

/// One raw trial: `events` records of `RECORD` bytes, `batch` per `write`, synced or not.
fn raw_trial(dir: &Path, events: u64, batch: usize, sync: bool) -> f64 {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("raw.bin");
    let mut file = std::fs::File::create(&path).unwrap();
    let buf = vec![0xA5u8; batch * RECORD];
    let start = Instant::now();
    let mut written = 0;
    while written < events {
        let n = (batch as u64).min(events - written);
        file.write_all(&buf[..n as usize * RECORD]).unwrap();
        if sync {
            file.sync_data().unwrap();
        }
        written += n;
    }
    let secs = start.elapsed().as_secs_f64();
    drop(file);
    let _ = std::fs::remove_dir_all(dir);
    secs
}

fn median(v: &mut [f64]) -> (f64, f64, f64) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--trial") {
        // --trial <config> <events> <dir> [batch]
        let (config, events, dir) = (&args[2], args[3].parse().unwrap(), PathBuf::from(&args[4]));
        let out = match config.as_str() {
            "raw-sync" | "raw-write" => {
                let batch: usize = args[5].parse().unwrap();
                let secs = raw_trial(&dir, events, batch, config == "raw-sync");
                format!("{secs} {batch}")
            }
            name => {
                let (secs, per_write) = journal_trial(&dir, name, events);
                format!("{secs} {per_write}")
            }
        };
        println!("{out}");
        return;
    }
    let rounds: usize = args.get(1).map_or(5, |s| s.parse().unwrap());
    let events: u64 = args.get(2).map_or(200_000, |s| s.parse().unwrap());
    let base = args.get(3).map_or_else(
        || std::env::temp_dir().join("ringmq-journal-rate"),
        PathBuf::from,
    );
    let configs = ["every-batch", "interval-1ms", "interval-10ms", "os"];
    let mut results: Vec<(String, Vec<f64>, Vec<f64>)> = Vec::new();
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let exe = std::env::current_exe().unwrap();
    let run = |config: &str, batch: usize| -> (f64, f64) {
        let out = Command::new(&exe)
            .args(["--trial", config, &events.to_string()])
            .arg(base.join(config))
            .arg(batch.to_string())
            .output()
            .unwrap();
        assert!(out.status.success(), "{config}: {:?}", out);
        let text = String::from_utf8(out.stdout).unwrap();
        let mut it = text.split_whitespace().map(|s| s.parse::<f64>().unwrap());
        (it.next().unwrap(), it.next().unwrap())
    };
    let record =
        |results: &mut Vec<(String, Vec<f64>, Vec<f64>)>, name: &str, secs: f64, b: f64| {
            match results.iter_mut().find(|r| r.0 == name) {
                Some(r) => {
                    r.1.push(secs);
                    r.2.push(b);
                }
                None => results.push((name.to_string(), vec![secs], vec![b])),
            }
        };
    for round in 0..rounds {
        // The EveryBatch trial first in each round: its mean batch sets the raw trials' batch.
        let (secs, per_write) = run("every-batch", 0);
        record(&mut results, "every-batch", secs, per_write);
        let batch = per_write.round().max(1.0) as usize;
        let mut order: Vec<String> = configs[1..].iter().map(|s| s.to_string()).collect();
        order.push("raw-sync".into());
        order.push("raw-write".into());
        for i in (1..order.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        for config in &order {
            let (secs, b) = run(config, batch);
            record(&mut results, config, secs, b);
        }
        eprintln!("round {} of {rounds} done (batch {batch})", round + 1);
    }
    println!(
        "{events} events of {EVENT} bytes ({RECORD} on disk), {rounds} rounds, dir {}",
        base.display()
    );
    println!(
        "{:<14} {:>14} {:>22} {:>10} {:>16}",
        "config", "events/s", "(min..max)", "MB/s", "records/write"
    );
    for (name, secs, batches) in &mut results {
        let mut rates: Vec<f64> = secs.iter().map(|s| events as f64 / s).collect();
        let (med, lo, hi) = median(&mut rates);
        let (b, _, _) = median(batches);
        println!(
            "{name:<14} {med:>14.0} {:>22} {:>10.1} {b:>16.1}",
            format!("({lo:.0}..{hi:.0})"),
            med * RECORD as f64 / 1e6
        );
    }
}
