//! Crash tests: a child process journals under load and is killed with SIGKILL at a random
//! moment. The parent drives it in bursts of random size ("GO n" on its stdin); the kill comes
//! either in the middle of a burst (while the journal is writing) or right after the child
//! reported the burst's receipt (the moment a receipt that ran ahead of the disk would show).
//! After each kill, every event whose durable receipt the child reported is in the
//! journal, in order, exactly once, and the next child rebuilds its state from its checkpoint
//! plus replay to exactly the fold of the whole journal, then goes on.
//!
//! Rounds cycle the three sync policies. The seed is printed; `RINGMQ_CRASH_SEED` replays it.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use ringmq::{Builder, Consumer, Yielding};
use ringmq_journal::{Checkpoint, Journal, JournalOptions, SyncPolicy};

const GUARD: Duration = Duration::from_secs(60);
const ROUNDS: u64 = 9;

/// The state the child's business stage keeps: a fold over every journaled event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct State {
    count: u64,
    sum: u64,
    /// Order-sensitive: a lost, repeated or reordered event changes it.
    hash: u64,
}

impl State {
    fn apply(&mut self, position: u64, value: u64) {
        assert_eq!(value, position, "an event's value is its journal position");
        self.count += 1;
        self.sum = self.sum.wrapping_add(value);
        self.hash = (self.hash ^ value).wrapping_mul(0x0100_0000_01b3);
    }

    /// One word for the report line.
    fn key(self) -> String {
        format!("{}:{}:{:x}", self.count, self.sum, self.hash)
    }

    fn to_bytes(self) -> Vec<u8> {
        [self.count, self.sum, self.hash]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    }

    fn from_bytes(b: &[u8]) -> State {
        let v = |i: usize| u64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
        State {
            count: v(0),
            sum: v(1),
            hash: v(2),
        }
    }
}

fn policy(round: u64) -> SyncPolicy {
    match round % 3 {
        0 => SyncPolicy::EveryBatch,
        1 => SyncPolicy::Interval(Duration::from_millis(1)),
        _ => SyncPolicy::Os,
    }
}

fn value(payload: &[u8]) -> u64 {
    u64::from_le_bytes(payload.try_into().expect("8-byte payload"))
}

/// The fold of every record in the journal.
fn fold_all(journal: &Journal) -> State {
    let mut state = State::default();
    for r in journal.read_from(0).unwrap() {
        let r = r.unwrap();
        state.apply(r.position, value(&r.payload));
    }
    state
}

struct Kid {
    child: Child,
    stdin: std::process::ChildStdin,
    lines: Receiver<String>,
}

impl Kid {
    fn spawn(dir: &Path, round: u64) -> Kid {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["child", "--exact", "--nocapture", "--test-threads=1", "-q"])
            .env("RINGMQ_CRASH_DIR", dir)
            .env("RINGMQ_CRASH_ROUND", round.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Kid {
            child,
            stdin,
            lines,
        }
    }

    /// The next line that starts with `prefix` (the test harness prints lines of its own).
    fn expect(&self, prefix: &str, deadline: Instant) -> String {
        loop {
            let line = self.line(deadline);
            if line.starts_with(prefix) {
                return line;
            }
        }
    }

    fn line(&self, deadline: Instant) -> String {
        let left = deadline.saturating_duration_since(Instant::now());
        self.lines
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("the child went quiet: {e}"))
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `Child::kill` is SIGKILL on Unix: no handler, no flush, no destructor runs in the child.
fn sigkill(child: &mut Child) {
    use std::os::unix::process::ExitStatusExt;
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "killed by SIGKILL, not exited: {status:?}"
    );
}

fn seed() -> u64 {
    std::env::var("RINGMQ_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

#[test]
fn every_durable_receipt_survives_sigkill_and_replay_rebuilds_the_state() {
    let mut rng = seed();
    println!("RINGMQ_CRASH_SEED={rng}");
    let dir = std::env::temp_dir().join(format!("ringmq-journal-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut acked_total = 0u64;
    let mut torn_tails = 0;
    for round in 0..ROUNDS {
        let deadline = Instant::now() + GUARD;
        let mut kid = Kid::spawn(&dir, round);
        // The child first rebuilds its state and reports both folds.
        let rebuilt = kid.expect("REBUILT ", deadline);
        let parts: Vec<&str> = rebuilt.split_whitespace().collect();
        assert_eq!(parts[0], "REBUILT", "{rebuilt}");
        assert_eq!(
            parts[1], parts[2],
            "round {round}: checkpoint + replay != the whole journal's fold"
        );
        // Bursts of 1..=2000 events until the kill: in the middle of a burst, or just after
        // its receipt, each half the time.
        let mut acked = acked_total;
        let mut mid_burst = false;
        for burst in 0..200 {
            let n = 1 + xorshift(&mut rng) % 2000;
            writeln!(kid.stdin, "GO {n}").unwrap();
            let kill = burst == 199 || xorshift(&mut rng).is_multiple_of(8);
            mid_burst = kill && xorshift(&mut rng).is_multiple_of(2);
            // Mid-burst: kill once a random part of the burst is durable, while the rest is
            // being written.
            let target = acked + if mid_burst { xorshift(&mut rng) % n } else { n };
            while acked < target {
                let line = kid.line(deadline);
                if let Some(n) = line.strip_prefix("DURABLE ") {
                    let n: u64 = n.parse().unwrap();
                    assert!(n >= acked, "receipts go forward");
                    acked = n;
                }
            }
            if kill {
                break;
            }
        }
        sigkill(&mut kid.child);
        // Lines the child printed before it died may still be in the pipe.
        while let Ok(line) = kid.lines.try_recv() {
            if let Some(n) = line.strip_prefix("DURABLE ") {
                acked = acked.max(n.parse().unwrap());
            }
        }
        acked_total = acked;

        // Every event whose receipt was reported is there, in order, exactly once.
        let journal = Journal::open(JournalOptions::new(dir.join("journal"))).unwrap();
        if journal.recovery().torn.is_some() {
            torn_tails += 1;
        }
        let next = journal.recovery().next;
        assert!(
            next >= acked,
            "round {round} ({:?}): {acked} receipts reported but the journal holds {next}",
            policy(round)
        );
        let state = fold_all(&journal);
        assert_eq!(state.count, next);
        println!(
            "round {round} ({:?}): killed {} after {acked} durable receipts; journal holds {next}{}",
            policy(round),
            if mid_burst { "mid-burst" } else { "after a receipt" },
            journal
                .recovery()
                .torn
                .as_ref()
                .map_or(String::new(), |t| format!(", cut a torn tail of {} bytes", t.bytes))
        );
    }
    // The last round's state is rebuilt by one more child, which then exits cleanly.
    let kid = Kid::spawn(&dir, u64::MAX);
    let rebuilt = kid.expect("REBUILT ", Instant::now() + GUARD);
    let parts: Vec<&str> = rebuilt.split_whitespace().collect();
    assert_eq!(parts[1], parts[2], "{rebuilt}");
    println!("{ROUNDS} kills, {acked_total} receipts, {torn_tails} torn tails cut");
    drop(kid);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The child: rebuilds its state from the checkpoint and the journal, reports it, then
/// journals events under load until killed, printing each durable receipt.
#[test]
fn child() {
    let Ok(dir) = std::env::var("RINGMQ_CRASH_DIR") else {
        return;
    };
    let dir = PathBuf::from(dir);
    let round: u64 = std::env::var("RINGMQ_CRASH_ROUND")
        .unwrap()
        .parse()
        .unwrap();
    let journal = Journal::open(
        JournalOptions::new(dir.join("journal"))
            .sync(policy(round))
            .segment_bytes(64 << 10),
    )
    .unwrap();
    let checkpoint = Checkpoint::new(dir.join("state.ckpt"));

    // Rebuild: the checkpoint, then the journal after it.
    let (mut state, resume_at) = match checkpoint.load().unwrap() {
        Some(s) => (State::from_bytes(&s.state), s.resume_at),
        None => (State::default(), 0),
    };
    for r in journal.read_from(resume_at).unwrap() {
        let r = r.unwrap();
        state.apply(r.position, value(&r.payload));
    }
    let whole = fold_all(&journal);
    println!("REBUILT {} {}", state.key(), whole.key());
    if round == u64::MAX {
        return;
    }

    let base = journal.recovery().next;
    let handle = journal.handle();
    let mut b = Builder::single_producer(1024, || 0u64, Yielding).unwrap();
    let journaled = b.add(journal.consumer("journal", |v: &u64, out: &mut Vec<u8>| {
        out.extend_from_slice(&v.to_le_bytes())
    }));
    // The business stage acts on durable events only, and checkpoints every 1000.
    let mut since = 0;
    b.add_after(
        &[journaled],
        Consumer::new("state", move |v: &u64, seq, end_of_batch| {
            let position = handle.position_of(seq).unwrap();
            state.apply(position, *v);
            since += 1;
            if since >= 1000 && end_of_batch {
                checkpoint.store(position + 1, &state.to_bytes()).unwrap();
                since = 0;
            }
        }),
    )
    .unwrap();
    let (mut producer, queue) = b.build().unwrap();
    let tracker = queue.tracker(journaled).unwrap();
    let mut i = 0u64;
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let burst: u64 = line.strip_prefix("GO ").unwrap().parse().unwrap();
        let end = i + burst;
        while i < end {
            // Batches of 1..=16 events, valued by their journal positions; a receipt every few.
            let n = (1 + i % 16).min(end - i);
            let last = producer
                .publish_batch(n as usize, |slot, k| *slot = base + i + k as u64)
                .unwrap()
                .end
                - 1;
            i += n;
            if i.is_multiple_of(7) || i == end {
                tracker.wait_processed(last, GUARD).unwrap();
                // `base + last + 1` events are durable: print the receipt.
                println!("DURABLE {}", base + last as u64 + 1);
            }
        }
    }
}
