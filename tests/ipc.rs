//! The cross-process ring across real processes: this test binary re-executes itself as the
//! children (the `child` test, which does nothing unless `RINGMQ_IPC_ROLE` is set), kills some
//! with SIGKILL, and checks what every survivor saw: exact counts, per-producer order, no loss,
//! no duplicates. Every wait is bounded (a child that hangs is killed, the test fails).
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use ringmq::ipc::{EvictionKind, IpcWait, ShmError, ShmOptions, ShmRing};
use ringmq::{PollState, PublishError};

/// What the children exchange: the producer's id and its own count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Msg {
    producer: u64,
    n: u64,
}

const LIVENESS: Duration = Duration::from_millis(100);
/// The bound on any one wait of a test.
const GUARD: Duration = Duration::from_secs(60);

fn path(name: &str) -> PathBuf {
    PathBuf::from("/dev/shm").join(format!("ringmq-test-{name}-{}", std::process::id()))
}

fn options(multi: bool, capacity: usize) -> ShmOptions {
    let o = if multi {
        ShmOptions::multi_producer(capacity)
    } else {
        ShmOptions::single_producer(capacity)
    };
    o.liveness(LIVENESS).wait(IpcWait::Blocking)
}

/// A child process of this test binary, playing `role` on the segment at `path`.
struct Kid {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Kid {
    fn spawn(role: &str, path: &PathBuf, args: &[(&str, String)]) -> Kid {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["child", "--exact", "--nocapture", "--test-threads=1", "-q"])
            .env("RINGMQ_IPC_ROLE", role)
            .env("RINGMQ_IPC_PATH", path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in args {
            cmd.env(format!("RINGMQ_IPC_{k}"), v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout: ChildStdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Kid { child, lines }
    }

    /// The next line the child printed that starts with `prefix` (bounded).
    fn expect(&self, prefix: &str) -> String {
        let deadline = Instant::now() + GUARD;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => continue,
                Err(e) => panic!("no {prefix:?} line from the child: {e}"),
            }
        }
    }

    /// Waits (bounded) for the child to exit; its status must be success.
    fn finish(mut self) {
        let deadline = Instant::now() + GUARD;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "child failed: {status}");
                return;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("child hung");
            }
            std::thread::park_timeout(Duration::from_millis(5));
        }
    }

    fn kill(&mut self) {
        // SIGKILL: no destructor, no unwinding, as an OOM kill.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn env(key: &str) -> String {
    std::env::var(format!("RINGMQ_IPC_{key}")).unwrap()
}

fn env_u64(key: &str) -> u64 {
    env(key).parse().unwrap()
}

/// Waits (bounded) until `ready`.
fn until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + GUARD;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::yield_now();
    }
}

/// Checks a consumer's stream: per producer, `0, 1, 2, ...` with nothing missing or repeated.
/// Returns the count per producer.
fn check_stream(counts: &mut Vec<u64>, msg: &Msg) {
    let p = msg.producer as usize;
    if counts.len() <= p {
        counts.resize(p + 1, 0);
    }
    assert_eq!(
        msg.n, counts[p],
        "producer {p}: expected {} next, got {}",
        counts[p], msg.n
    );
    counts[p] += 1;
}

/// The children's entry point: does nothing in a normal test run.
#[test]
fn child() {
    let Ok(role) = std::env::var("RINGMQ_IPC_ROLE") else {
        return;
    };
    let path = PathBuf::from(env("PATH"));
    let multi = env("KIND") == "multi";
    let capacity = env_u64("CAPACITY") as usize;
    if role == "creator" {
        // Creates the segment, keeps the file, attaches a stage and waits to be killed.
        let ring = ShmRing::<Msg>::create(&path, options(multi, capacity)).unwrap();
        let _c = ring.consumer("crashed-stage").unwrap();
        let _path = ring.keep_file();
        println!("ATTACHED");
        loop {
            std::thread::park();
        }
    }
    let ring = ShmRing::<Msg>::open(&path, options(multi, capacity)).unwrap();
    match role.as_str() {
        "producer" => {
            let id = env_u64("ID");
            let count = env_u64("COUNT");
            let mut p = ring.producer().unwrap();
            println!("ATTACHED");
            for n in 0..count {
                p.publish(|m| *m = Msg { producer: id, n }).unwrap();
            }
            println!("DONE");
        }
        "producer-dies-mid-claim" => {
            // Publishes `COUNT` events, then claims one more and stops inside the write: the
            // parent kills it there.
            let id = env_u64("ID");
            let count = env_u64("COUNT");
            let mut p = ring.producer().unwrap();
            for n in 0..count {
                p.publish(|m| *m = Msg { producer: id, n }).unwrap();
            }
            let _ = p.publish(|m| {
                m.producer = id;
                m.n = count;
                println!("CLAIMED");
                loop {
                    std::thread::park();
                }
            });
        }
        "single-producer-dies" => {
            let count = env_u64("COUNT");
            let mut p = ring.producer().unwrap();
            for n in 0..count {
                p.publish(|m| *m = Msg { producer: 0, n }).unwrap();
            }
            println!("PUBLISHED");
            loop {
                std::thread::park();
            }
        }
        "consumer" => {
            let name = env("NAME");
            let after = env("AFTER");
            let mut c = if after.is_empty() {
                ring.consumer(&name).unwrap()
            } else {
                ring.consumer_after(&name, &[after.as_str()]).unwrap()
            };
            println!("ATTACHED");
            let mut counts = Vec::new();
            let handled = c.run(|m: &Msg, _, _| check_stream(&mut counts, m));
            println!("RESULT {handled} {counts:?}");
        }
        "consumer-stalls" => {
            // Consumes `COUNT` events, then stops consuming (holding the ring): killed there.
            let count = env_u64("COUNT") as i64;
            let mut c = ring.consumer(&env("NAME")).unwrap();
            println!("ATTACHED");
            let mut seen = 0i64;
            let deadline = Instant::now() + GUARD;
            while seen < count && Instant::now() < deadline {
                if let PollState::Processed(n) = c.poll(|_, seq, _| seq + 1 < count) {
                    seen += n as i64;
                }
            }
            println!("STALLED {seen}");
            loop {
                std::thread::park();
            }
        }
        "creator" => unreachable!(),
        other => panic!("unknown role {other}"),
    }
}

fn kid_args(
    multi: bool,
    capacity: usize,
    extra: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    let mut args = vec![
        ("KIND", if multi { "multi" } else { "single" }.to_string()),
        ("CAPACITY", capacity.to_string()),
    ];
    args.extend_from_slice(extra);
    args
}

fn result_of(line: &str) -> (u64, Vec<u64>) {
    // "RESULT <handled> [a, b]"
    let rest = line.strip_prefix("RESULT ").unwrap();
    let (handled, counts) = rest.split_once(' ').unwrap();
    let counts = counts
        .trim_matches(|c| c == '[' || c == ']')
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    (handled.parse().unwrap(), counts)
}

#[test]
fn exactly_once_across_five_processes_with_two_producers_multicast_and_a_pipeline() {
    const EACH: u64 = 20_000;
    let path = path("exactly-once");
    let capacity = 256;
    let ring = ShmRing::<Msg>::create(&path, options(true, capacity)).unwrap();
    let consumer = |name: &str, after: &str| {
        Kid::spawn(
            "consumer",
            &path,
            &kid_args(
                true,
                capacity,
                &[("NAME", name.into()), ("AFTER", after.into())],
            ),
        )
    };
    let a = consumer("a", "");
    a.expect("ATTACHED");
    let b = consumer("b", "");
    b.expect("ATTACHED");
    let c = consumer("c-after-a", "a");
    c.expect("ATTACHED");
    // The parent holds a producer of its own until both children are done: the last multi
    // producer to leave closes the ring, and a child that finished before the other attached
    // would otherwise close it under the other's feet.
    let keep_open = ring.producer().unwrap();
    let producers: Vec<Kid> = (0..2)
        .map(|id| {
            Kid::spawn(
                "producer",
                &path,
                &kid_args(
                    true,
                    capacity,
                    &[("ID", id.to_string()), ("COUNT", EACH.to_string())],
                ),
            )
        })
        .collect();
    for p in producers {
        p.expect("DONE");
        p.finish();
    }
    drop(keep_open);
    for kid in [a, b, c] {
        let (handled, counts) = result_of(&kid.expect("RESULT"));
        assert_eq!(handled, 2 * EACH);
        assert_eq!(counts, vec![EACH, EACH]);
        kid.finish();
    }
    assert!(ring.is_closed());
    assert!(ring.evictions().is_empty());
}

#[test]
fn a_consumer_killed_mid_stream_is_evicted_and_the_producer_and_the_others_carry_on() {
    for multi in [false, true] {
        const TOTAL: u64 = 5_000;
        let path = path(&format!("kill-consumer-{multi}"));
        let capacity = 64;
        let ring = ShmRing::<Msg>::create(&path, options(multi, capacity)).unwrap();
        let mut victim = Kid::spawn(
            "consumer-stalls",
            &path,
            &kid_args(
                multi,
                capacity,
                &[("NAME", "victim".into()), ("COUNT", "100".into())],
            ),
        );
        victim.expect("ATTACHED");
        let survivor = Kid::spawn(
            "consumer",
            &path,
            &kid_args(
                multi,
                capacity,
                &[("NAME", "survivor".into()), ("AFTER", String::new())],
            ),
        );
        survivor.expect("ATTACHED");
        let mut producer = ring.producer().unwrap();
        // Fills the ring past what the victim will take, so the producer blocks on it.
        let publisher = std::thread::spawn(move || {
            for n in 0..TOTAL {
                producer.publish(|m| *m = Msg { producer: 0, n }).unwrap();
            }
            producer
        });
        assert_eq!(victim.expect("STALLED"), "STALLED 100");
        until("the producer to block on the stalled victim", || {
            ring.stages()
                .iter()
                .any(|s| s.name == "survivor" && s.sequence >= 100 + capacity as i64 - 1)
        });
        victim.kill();
        let killed = Instant::now();
        let producer = publisher.join().unwrap();
        let resumed = killed.elapsed();
        drop(producer); // closes: the survivor drains and ends
        let (handled, counts) = result_of(&survivor.expect("RESULT"));
        assert_eq!((handled, counts), (TOTAL, vec![TOTAL]));
        survivor.finish();
        let evictions = ring.evictions();
        assert_eq!(evictions.len(), 1, "{evictions:?}");
        assert_eq!(evictions[0].kind, EvictionKind::Stage);
        assert_eq!(evictions[0].name, "victim");
        assert_eq!(evictions[0].sequence, 99);
        // Detected within the liveness time (checked every quarter of it), with room for a
        // loaded machine.
        assert!(resumed < LIVENESS * 20, "resumed after {resumed:?}");
    }
}

#[test]
fn a_multi_producer_killed_mid_claim_leaves_a_hole_that_is_repaired_and_nothing_else_is_lost() {
    const BEFORE: u64 = 50;
    const AFTER: u64 = 3_000;
    let path = path("kill-producer");
    let capacity = 64;
    let ring = ShmRing::<Msg>::create(&path, options(true, capacity)).unwrap();
    let mut consumer = ring.consumer("all").unwrap();
    let mut mine = ring.producer().unwrap();
    let mut victim = Kid::spawn(
        "producer-dies-mid-claim",
        &path,
        &kid_args(
            true,
            capacity,
            &[("ID", "1".into()), ("COUNT", BEFORE.to_string())],
        ),
    );
    // Consume while the victim publishes, until it holds its claim.
    let mut counts = Vec::new();
    let mut seqs = Vec::new();
    let mut poll = |consumer: &mut ringmq::ipc::ShmConsumer<Msg>, counts: &mut Vec<u64>| {
        consumer.poll(|m, seq, _| {
            check_stream(counts, m);
            seqs.push(seq);
            true
        })
    };
    until("the victim's events", || {
        poll(&mut consumer, &mut counts);
        counts.get(1) == Some(&BEFORE)
    });
    victim.expect("CLAIMED");
    victim.kill();
    // Our own producer publishes after the hole; the consumer passes the hole once repaired.
    let publisher = std::thread::spawn(move || {
        for n in 0..AFTER {
            mine.publish(|m| *m = Msg { producer: 0, n }).unwrap();
        }
        mine
    });
    let deadline = Instant::now() + GUARD;
    while counts.first().copied().unwrap_or(0) < AFTER {
        assert!(Instant::now() < deadline, "stuck at the hole: {counts:?}");
        if let PollState::Idle = poll(&mut consumer, &mut counts) {
            // Waiting handles repair once per tick; a poller asks for the pass itself.
            ring.check_liveness();
        }
    }
    let mine = publisher.join().unwrap();
    drop(mine);
    assert_eq!(poll(&mut consumer, &mut counts), PollState::Closed);
    assert_eq!(counts, vec![AFTER, BEFORE]);
    // Exactly one sequence, the victim's claim, was passed over.
    let total = BEFORE + AFTER;
    assert_eq!(seqs.len() as u64, total);
    let missing: Vec<i64> = (0..=total as i64).filter(|s| !seqs.contains(s)).collect();
    assert_eq!(missing, vec![BEFORE as i64]);
    let evictions = ring.evictions();
    assert_eq!(evictions.len(), 1, "{evictions:?}");
    assert_eq!(
        (
            evictions[0].kind,
            evictions[0].sequence,
            evictions[0].repaired
        ),
        (EvictionKind::Producer, BEFORE as i64, 1)
    );
}

#[test]
fn a_dead_single_producer_closes_the_ring_once_consumers_drained() {
    const COUNT: u64 = 200;
    let path = path("dead-single");
    let capacity = 256;
    let ring = ShmRing::<Msg>::create(&path, options(false, capacity)).unwrap();
    let mut consumer = ring.consumer("c").unwrap();
    let mut producer = Kid::spawn(
        "single-producer-dies",
        &path,
        &kid_args(false, capacity, &[("COUNT", COUNT.to_string())]),
    );
    producer.expect("PUBLISHED");
    producer.kill();
    let mut counts = Vec::new();
    let handled = consumer.run(|m: &Msg, _, _| check_stream(&mut counts, m));
    assert_eq!((handled, counts), (COUNT, vec![COUNT]));
    assert!(ring.is_closed());
    let evictions = ring.evictions();
    assert_eq!(evictions.len(), 1);
    assert_eq!(
        (evictions[0].kind, evictions[0].sequence),
        (EvictionKind::Producer, COUNT as i64 - 1)
    );
}

#[test]
fn opening_with_another_type_capacity_or_producer_kind_is_refused_saying_what_differs() {
    let path = path("mismatch");
    let _ring = ShmRing::<Msg>::create(&path, options(true, 64)).unwrap();
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C)]
    struct Other {
        a: u64,
        b: u64,
    }
    let cases: Vec<(&str, Result<(), ShmError>)> = vec![
        (
            "event size and alignment",
            ShmRing::<u32>::open(&path, options(true, 64)).map(drop),
        ),
        (
            "event type fingerprint",
            ShmRing::<Other>::open(&path, options(true, 64)).map(drop),
        ),
        (
            "capacity",
            ShmRing::<Msg>::open(&path, options(true, 128)).map(drop),
        ),
        (
            "producer kind",
            ShmRing::<Msg>::open(&path, options(false, 64)).map(drop),
        ),
    ];
    for (want, got) in cases {
        match got {
            Err(ShmError::Mismatch { what, .. }) => assert_eq!(what, want),
            other => panic!("{want}: {other:?}"),
        }
    }
    // The same type with an agreed tag passes the fingerprint check.
    let tagged = path.with_extension("tagged");
    let _t = ShmRing::<Msg>::create(&tagged, options(true, 64).type_tag(7)).unwrap();
    assert!(ShmRing::<Other>::open(&tagged, options(true, 64).type_tag(7)).is_ok());
    // Not a segment at all.
    let junk = path.with_extension("junk");
    std::fs::write(&junk, vec![7u8; 8192]).unwrap();
    assert!(matches!(
        ShmRing::<Msg>::open(&junk, options(true, 64)),
        Err(ShmError::NotASegment { .. })
    ));
    std::fs::remove_file(&junk).unwrap();
    // Out-of-bounds options.
    for bad in [
        options(true, 3),
        options(true, 64).stages(0),
        options(true, 64).stages(65),
    ] {
        assert!(matches!(
            ShmRing::<Msg>::create(path.with_extension("bad"), bad),
            Err(ShmError::Layout { .. })
        ));
    }
    // Owner-only permissions by default.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn a_stale_segment_is_replaced_when_everyone_is_dead_and_refused_while_someone_lives() {
    let path = path("stale");
    let capacity = 64;
    // A run that crashes: its creator (a child) made the segment, attached a stage, and was
    // killed. The file stays.
    let mut crashed = Kid::spawn("creator", &path, &kid_args(false, capacity, &[]));
    crashed.expect("ATTACHED");
    // While it lives, `create` is refused, naming it.
    match ShmRing::<Msg>::create(&path, options(false, capacity)) {
        Err(ShmError::InUse { pid, .. }) => assert_eq!(pid, crashed.child.id()),
        other => panic!("{other:?}"),
    }
    crashed.kill();
    // Opened again once stale: compatible, so it opens; the dead stage is evicted.
    let reopened = ShmRing::<Msg>::open(&path, options(false, capacity)).unwrap();
    assert!(reopened.check_liveness());
    assert!(reopened.stages().is_empty());
    assert_eq!(reopened.evictions()[0].name, "crashed-stage");
    drop(reopened);
    // Replaced by a new `create` now that everyone recorded in it is dead.
    let fresh = ShmRing::<Msg>::create(&path, options(false, capacity)).unwrap();
    assert!(fresh.stages().is_empty() && fresh.evictions().is_empty());
    // Opened as something else, the stale file is refused clearly instead.
    drop(fresh);
}

#[test]
fn the_single_producer_is_exclusive_and_closed_rings_take_no_one() {
    let path = path("exclusive");
    let ring = ShmRing::<Msg>::create(&path, options(false, 8)).unwrap();
    let _c = ring.consumer("c").unwrap();
    let mut p = ring.producer().unwrap();
    assert!(matches!(
        ring.producer(),
        Err(ShmError::ProducerTaken { .. })
    ));
    p.publish(|m| m.n = 1).unwrap();
    drop(p);
    assert!(matches!(ring.producer(), Err(ShmError::Closed)));
    assert!(matches!(ring.consumer("late"), Err(ShmError::Closed)));
    assert!(matches!(
        ring.consumer_after("x", &["nobody"]),
        Err(ShmError::Closed)
    ));
    let multi =
        ShmRing::<Msg>::create(path.with_extension("m"), options(true, 8).producers(2)).unwrap();
    let _a = multi.producer().unwrap();
    let _b = multi.producer().unwrap();
    assert!(matches!(
        multi.producer(),
        Err(ShmError::ProducersFull { producers: 2 })
    ));
    assert!(matches!(
        multi.consumer_after("x", &["nobody"]),
        Err(ShmError::UnknownStage { .. })
    ));
    let full =
        ShmRing::<Msg>::create(path.with_extension("s"), options(true, 8).stages(1)).unwrap();
    let _one = full.consumer("one").unwrap();
    assert!(matches!(
        full.consumer("two"),
        Err(ShmError::StagesFull { stages: 1 })
    ));
    // No stage attached: publishing is refused rather than lost.
    let lonely = ShmRing::<Msg>::create(path.with_extension("l"), options(true, 8)).unwrap();
    let mut lp = lonely.producer().unwrap();
    assert_eq!(lp.publish(|m| m.n = 1), Err(PublishError::NoConsumers));
    let c = lonely.consumer("c").unwrap();
    assert_eq!(lp.publish(|m| m.n = 1), Ok(0));
    drop(c);
    assert_eq!(lp.publish(|m| m.n = 1), Err(PublishError::NoConsumers));
}
