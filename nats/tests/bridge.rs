//! The bridge against a real nats-server with JetStream (started and stopped by the tests):
//! out and in with message ids, resends dropped by the duplicate window, the server restarted
//! mid-stream, a three-server cluster losing the stream's leader and then the client's server
//! to SIGKILL, and a pipeline of two processes whose consumer is killed with SIGKILL and
//! restarted.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{NatsServer, GUARD};
use ringmq::{Blocking, Builder, Consumer, SingleProducer};
use ringmq_nats::{Bridge, SourceOptions, StreamOptions};

/// An event carrying its application id.
type Order = u64;

fn order_id(o: &Order) -> String {
    format!("order-{o}")
}

fn encode(o: &Order, _seq: i64) -> (String, Vec<u8>) {
    (order_id(o), o.to_le_bytes().to_vec())
}

/// A ring whose only stage publishes to JetStream; returns the producer, the queue, the
/// tracker of the publishing stage and its stats.
fn outbound(
    bridge: &Bridge,
    subject: &str,
) -> (
    SingleProducer<Order, Blocking>,
    ringmq::Disruptor<Order, ringmq::Single, Blocking>,
    ringmq::Tracker,
    ringmq_nats::PublisherStats,
) {
    let mut b = Builder::single_producer(1024, || 0u64, Blocking::new()).unwrap();
    let handler = bridge.publisher_handler(subject, encode);
    let stats = handler.stats();
    let out = b.add(
        Consumer::fallible_with_handler("jetstream", move || handler)
            .retry(ringmq::RetryPolicy::new(1200, Duration::from_millis(100))),
    );
    let (p, q) = b.build().unwrap();
    let t = q.tracker(out).unwrap();
    (p, q, t, stats)
}

/// What an inbound ring's "apply" stage saw: (id, delivered count) in order.
type Applied = Arc<Mutex<Vec<(String, i64)>>>;

/// The inbound ring's events: (message id, times delivered).
type Delivery = (String, i64);
type InQueue = ringmq::Disruptor<Delivery, ringmq::Single, Blocking>;

/// A ring fed by a source on the durable consumer `durable` (ack window 256, redelivery after
/// 2 s), whose "apply" stage runs `apply`; messages are acknowledged after "apply".
fn source_into(
    bridge: &Bridge,
    stream: &str,
    durable: &str,
    apply: impl FnMut(&Delivery, i64, bool) + Send + 'static,
) -> (ringmq_nats::Source, InQueue) {
    let mut b = Builder::single_producer(256, || (String::new(), 0i64), Blocking::new()).unwrap();
    let apply = b.add(Consumer::new("apply", apply));
    let (producer, queue) = b.build().unwrap();
    let source = bridge
        .source(
            SourceOptions::new(stream, durable)
                .max_ack_pending(256)
                .ack_wait(Duration::from_secs(2)),
            producer,
            queue.tracker(apply).unwrap(),
            |slot: &mut Delivery, m| {
                slot.0 = m.id.unwrap_or("").to_string();
                slot.1 = m.delivered;
            },
        )
        .unwrap();
    (source, queue)
}

/// [`source_into`] with an "apply" stage that records what it sees.
fn inbound(
    bridge: &Bridge,
    stream: &str,
    durable: &str,
) -> (ringmq_nats::Source, InQueue, Applied) {
    let applied: Applied = Arc::default();
    let sink = applied.clone();
    let (source, queue) = source_into(bridge, stream, durable, move |(id, delivered), _, _| {
        sink.lock().unwrap().push((id.clone(), *delivered));
    });
    (source, queue, applied)
}

/// Waits (bounded) until `applied` holds at least `n` entries.
fn wait_applied(applied: &Applied, n: usize) {
    let deadline = Instant::now() + GUARD;
    while applied.lock().unwrap().len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} applied",
            applied.lock().unwrap().len()
        );
        std::thread::yield_now();
    }
}

/// What the reader saw again: duplicates in all, and those of them not marked as a redelivery.
struct Again {
    duplicates: u64,
    unmarked: u64,
}

/// Waits (bounded) until the reader has seen every id of `0..n`, then checks that it saw no
/// other and at most `max_duplicates` again. On one server an id seen again must come marked
/// as a redelivery (`marked`); on a cluster a consumer-leader change can redeliver with the
/// count still 1 (nats-server 2.9), which the application's check by id covers, so there they
/// are only counted.
fn read_every_id_once_by_id(applied: &Applied, n: u64, max_duplicates: u64, marked: bool) -> Again {
    let deadline = Instant::now() + GUARD;
    loop {
        let distinct: BTreeSet<String> = applied
            .lock()
            .unwrap()
            .iter()
            .map(|a| a.0.clone())
            .collect();
        if distinct.len() as u64 >= n {
            break;
        }
        assert!(Instant::now() < deadline, "{} of {n} read", distinct.len());
        std::thread::yield_now();
    }
    let applied = applied.lock().unwrap();
    let ids: BTreeSet<&str> = applied.iter().map(|a| a.0.as_str()).collect();
    let expected: BTreeSet<String> = (0..n).map(|i| order_id(&i)).collect();
    assert_eq!(ids, expected.iter().map(String::as_str).collect());
    let mut seen = BTreeMap::new();
    let mut unmarked = 0;
    for (id, delivered) in applied.iter() {
        let count = seen.entry(id.clone()).or_insert(0);
        *count += 1;
        if *count > 1 && *delivered == 1 {
            assert!(
                !marked,
                "{id} came twice, the second time not marked as a redelivery"
            );
            unmarked += 1;
        }
    }
    let duplicates = applied.len() as u64 - n;
    assert!(
        duplicates <= max_duplicates,
        "{duplicates} duplicates: more than {max_duplicates}"
    );
    Again {
        duplicates,
        unmarked,
    }
}

#[test]
fn out_then_in_delivers_every_event_once_in_order_with_its_id() {
    let Some(server) = NatsServer::start("outin") else {
        return;
    };
    let bridge = Bridge::connect(&server.url()).unwrap();
    bridge
        .ensure_stream(StreamOptions::new("ORDERS", ["orders.>"]))
        .unwrap();
    const N: u64 = 5000;
    let (mut p, q, stored, stats) = outbound(&bridge, "orders.new");
    let mut last = 0;
    for i in 0..N {
        last = p.publish(|o| *o = i).unwrap();
        if i % 500 == 0 {
            // The receipt means stored: the stream already counts it.
            stored.wait_processed(last, GUARD).unwrap();
            assert!(bridge.stream_messages("ORDERS").unwrap() > i);
        }
    }
    stored.wait_processed(last, GUARD).unwrap();
    assert_eq!(bridge.stream_messages("ORDERS").unwrap(), N);
    drop(p);
    q.shutdown().unwrap();
    assert_eq!((stats.stored(), stats.duplicates()), (N, 0));

    let (source, inq, applied) = inbound(&bridge, "ORDERS", "applier");
    wait_applied(&applied, N as usize);
    let stats = source.stats();
    source.stop(GUARD).unwrap();
    inq.shutdown().unwrap();
    let applied = applied.lock().unwrap();
    let ids: Vec<&str> = applied.iter().map(|(id, _)| id.as_str()).collect();
    let expected: Vec<String> = (0..N).map(|i| order_id(&i)).collect();
    assert_eq!(ids, expected.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(applied.iter().all(|(_, delivered)| *delivered == 1));
    assert_eq!(
        (stats.received(), stats.acked(), stats.redelivered()),
        (N, N, 0)
    );

    // Acknowledged means consumed: the durable consumer, read again, has nothing left.
    let (source, inq, applied) = inbound(&bridge, "ORDERS", "applier");
    source.stop(Duration::from_secs(5)).unwrap();
    inq.shutdown().unwrap();
    assert_eq!(applied.lock().unwrap().len(), 0);
}

#[test]
fn a_resend_is_dropped_by_the_duplicate_window() {
    let Some(server) = NatsServer::start("dup") else {
        return;
    };
    let bridge = Bridge::connect(&server.url()).unwrap();
    bridge
        .ensure_stream(StreamOptions::new("DUP", ["dup.>"]))
        .unwrap();
    // The same 1000 events published twice (a producer that resent everything after a restart).
    for round in 0..2 {
        let (mut p, q, stored, stats) = outbound(&bridge, "dup.x");
        let mut last = 0;
        for i in 0..1000 {
            last = p.publish(|o| *o = i).unwrap();
        }
        stored.wait_processed(last, GUARD).unwrap();
        drop(p);
        q.shutdown().unwrap();
        let expected = if round == 0 { (1000, 0) } else { (0, 1000) };
        assert_eq!(
            (stats.stored(), stats.duplicates()),
            expected,
            "round {round}"
        );
    }
    assert_eq!(bridge.stream_messages("DUP").unwrap(), 1000);
}

#[test]
fn the_server_restarted_mid_stream_loses_nothing() {
    let Some(mut server) = NatsServer::start("restart") else {
        return;
    };
    let mut bridge = Bridge::connect(&server.url()).unwrap();
    bridge.set_ack_timeout(Duration::from_millis(500));
    bridge
        .ensure_stream(StreamOptions::new("R", ["r.>"]))
        .unwrap();
    const N: u64 = 20_000;
    let (source, inq, applied) = inbound(&bridge, "R", "reader");
    let (mut p, q, stored, stats) = outbound(&bridge, "r.x");
    let publisher = std::thread::spawn(move || {
        let mut last = 0;
        for i in 0..N {
            last = p.publish(|o| *o = i).unwrap();
        }
        (p, last)
    });
    // Once a third is stored, the server goes down while both sides are busy; it comes back
    // once the publishing stage has seen a batch fail and started resending.
    stored.wait_processed(N as i64 / 3, GUARD).unwrap();
    server.stop();
    let deadline = Instant::now() + GUARD;
    while stats.resent_batches() == 0 {
        assert!(
            Instant::now() < deadline,
            "no batch failed while the server was down"
        );
        std::thread::yield_now();
    }
    server.launch();
    let (p, last) = publisher.join().unwrap();
    stored.wait_processed(last, GUARD).unwrap();
    drop(p);
    q.shutdown().unwrap();
    assert_eq!(
        bridge.stream_messages("R").unwrap(),
        N,
        "every event stored once"
    );
    // Each event's last, successful send was acknowledged once: as new, or as a duplicate of a
    // send whose acknowledgement the outage lost.
    assert_eq!(stats.stored() + stats.duplicates(), N);

    // Everything reaches the reader; what came twice came as a redelivery, with its id.
    // At most the ack window (256) again.
    let dups = read_every_id_once_by_id(&applied, N, 256, true).duplicates;
    source.stop(GUARD).unwrap();
    inq.shutdown().unwrap();
    println!(
        "restart: {} resent batches, {} duplicates dropped by the window, {dups} redelivered to the reader",
        stats.resent_batches(),
        stats.duplicates()
    );
}

// ---- A three-server JetStream cluster: the same code, the stream on three replicas.

/// The stream's leader (a server name) and whether each of its other replicas is online and
/// current, asked of JetStream through the bridge's client.
fn stream_cluster(bridge: &Bridge, stream: &str) -> (Option<String>, bool) {
    let js = async_nats::jetstream::new(bridge.client().clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let Ok(mut s) = js.get_stream(stream).await else {
            return (None, false);
        };
        let Ok(info) = s.info().await else {
            return (None, false);
        };
        let cluster = info.cluster.clone().unwrap_or_default();
        let current =
            cluster.replicas.len() == 2 && cluster.replicas.iter().all(|r| r.current && !r.offline);
        (cluster.leader, current)
    })
}

/// Waits (bounded) until the stream has a leader and its two other replicas are current.
fn wait_stream_healthy(bridge: &Bridge, stream: &str) -> String {
    let deadline = Instant::now() + GUARD;
    loop {
        if let (Some(leader), true) = stream_cluster(bridge, stream) {
            return leader;
        }
        assert!(
            Instant::now() < deadline,
            "the stream's replicas never caught up"
        );
        std::thread::yield_now();
    }
}

/// A producer thread that publishes consecutive orders in bursts: each burst starts when told
/// and runs until paused, so whatever the test does meanwhile happens while it is publishing.
struct Bursts {
    go: mpsc::Sender<()>,
    pause: Arc<AtomicBool>,
    paused: Receiver<i64>,
    thread: std::thread::JoinHandle<u64>,
}

impl Bursts {
    fn start(mut p: SingleProducer<Order, Blocking>) -> Bursts {
        let (go, starts) = mpsc::channel::<()>();
        let (report, paused) = mpsc::channel();
        let pause = Arc::new(AtomicBool::new(false));
        let flag = pause.clone();
        let thread = std::thread::spawn(move || {
            let (mut next, mut last) = (0u64, -1i64);
            for () in starts {
                // Relaxed: the flag orders nothing; the report goes through the channel.
                while !flag.load(AtomicOrdering::Relaxed) {
                    last = p.publish(|o| *o = next).unwrap();
                    next += 1;
                }
                report.send(last).unwrap();
            }
            next
        });
        Bursts {
            go,
            pause,
            paused,
            thread,
        }
    }

    /// Publishes until `at` events are stored, runs `during` while publishing goes on, waits
    /// until 3,000 more are stored after it, and pauses; returns the last sequence published.
    fn with(&self, stored: &ringmq::Tracker, at: i64, during: impl FnOnce()) -> i64 {
        self.pause.store(false, AtomicOrdering::Relaxed);
        self.go.send(()).unwrap();
        stored.wait_processed(at, GUARD).unwrap();
        during();
        let after = stored.processed() + 3000;
        stored.wait_processed(after, GUARD).unwrap();
        self.pause.store(true, AtomicOrdering::Relaxed);
        let last = self.paused.recv_timeout(GUARD).unwrap();
        stored.wait_processed(last, GUARD).unwrap();
        last
    }

    /// Stops the thread; returns the number of orders published.
    fn finish(self) -> u64 {
        drop(self.go);
        self.thread.join().unwrap()
    }
}

#[test]
fn a_three_server_cluster_loses_nothing_when_the_leader_and_the_clients_server_are_killed() {
    let Some(mut cluster) = NatsServer::cluster("cl") else {
        return;
    };
    let urls = cluster
        .iter()
        .map(NatsServer::url)
        .collect::<Vec<_>>()
        .join(",");
    let start = Instant::now();
    let mut phases = Vec::new();
    let mut bridge = Bridge::connect(&urls).unwrap();
    bridge.set_ack_timeout(Duration::from_millis(500));
    // The same calls as on one server, with three replicas: a stream can be created once the
    // cluster has elected its meta leader, which it does by itself shortly after start.
    let deadline = Instant::now() + GUARD;
    while let Err(e) = bridge.ensure_stream(StreamOptions::new("C", ["c.>"]).replicas(3)) {
        assert!(Instant::now() < deadline, "no stream on the cluster: {e}");
        std::thread::yield_now();
    }
    wait_stream_healthy(&bridge, "C");
    phases.push(("stream", start.elapsed()));
    let (source, inq, applied) = inbound(&bridge, "C", "reader");
    let (p, q, stored, stats) = outbound(&bridge, "c.x");
    let bursts = Bursts::start(p);
    let kill = |cluster: &mut [NatsServer], name: &str| {
        let i = cluster.iter().position(|s| s.name == name).unwrap();
        cluster[i].kill();
        i
    };

    // The stream's leader is killed with SIGKILL while events are in flight; the other two
    // elect a new leader, the publishing stage resends what was lost and goes on.
    let mut leader = String::new();
    let mut killed = 0;
    bursts.with(&stored, 3000, || {
        leader = wait_stream_healthy(&bridge, "C");
        killed = kill(&mut cluster, &leader);
        phases.push(("leader killed", start.elapsed()));
    });
    phases.push(("3000 more stored", start.elapsed()));
    // It comes back on its store and catches up from the others.
    cluster[killed].launch();
    wait_stream_healthy(&bridge, "C");
    phases.push(("caught up", start.elapsed()));

    // Then the server the bridge's client is connected to: the client reconnects to another.
    let connected = bridge.client().server_info().server_name;
    let last = bursts.with(&stored, stored.processed() + 3000, || {
        kill(&mut cluster, &connected);
        phases.push(("client's server killed", start.elapsed()));
    });
    phases.push(("3000 more stored", start.elapsed()));
    let n = bursts.finish();
    assert_eq!(n as i64, last + 1);
    q.shutdown().unwrap();
    assert_ne!(bridge.client().server_info().server_name, connected);
    assert_eq!(
        bridge.stream_messages("C").unwrap(),
        n,
        "every event stored once, on the two replicas still up"
    );
    assert_eq!(stats.stored() + stats.duplicates(), n);
    // Each of the two failovers can hand out again at most the ack window (256).
    let again = read_every_id_once_by_id(&applied, n, 2 * 256, false);
    phases.push(("all read", start.elapsed()));
    let source_stats = source.stats();
    source.stop(GUARD).unwrap();
    inq.shutdown().unwrap();
    println!(
        "cluster: {n} events; leader {leader} killed, then {connected} (the client's); {} resent batches, {} duplicates dropped by the window, {} redelivered to the reader ({} with the count still 1), {} fetch errors; at {phases:.1?}",
        stats.resent_batches(),
        stats.duplicates(),
        again.duplicates,
        again.unmarked,
        source_stats.fetch_errors()
    );
}

// ---- Two processes: a producer process and a consumer process exchanging through JetStream.

struct Kid {
    child: Child,
    lines: Receiver<String>,
}

impl Kid {
    fn spawn(role: &str, url: &str, events: u64) -> Kid {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["child", "--exact", "--nocapture", "--test-threads=1", "-q"])
            .env("RINGMQ_NATS_ROLE", role)
            .env("RINGMQ_NATS_URL", url)
            .env("RINGMQ_NATS_EVENTS", events.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
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
}

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ledger: the application's side of exactly-once. Each APPLIED line is applied unless its
/// id was applied before, in which case it must be a redelivery.
#[derive(Default)]
struct Ledger {
    applied: BTreeSet<String>,
    dropped: u64,
}

impl Ledger {
    fn take(&mut self, line: &str) {
        let mut parts = line.split_whitespace().skip(1);
        let id = parts.next().unwrap().to_string();
        let delivered: i64 = parts.next().unwrap().parse().unwrap();
        if !self.applied.insert(id.clone()) {
            assert!(
                delivered > 1,
                "{id} applied twice without being a redelivery"
            );
            self.dropped += 1;
        }
    }
}

#[test]
fn two_processes_exactly_once_at_the_application_across_a_killed_consumer() {
    let Some(server) = NatsServer::start("procs") else {
        return;
    };
    let bridge = Bridge::connect(&server.url()).unwrap();
    bridge
        .ensure_stream(StreamOptions::new("PIPE", ["pipe.>"]))
        .unwrap();
    const N: u64 = 10_000;
    let producer = Kid::spawn("producer", &server.url(), N);
    let mut consumer = Kid::spawn("consumer", &server.url(), N);
    let mut ledger = Ledger::default();
    let deadline = Instant::now() + GUARD;
    // Kill the consumer with SIGKILL once it applied a third.
    while (ledger.applied.len() as u64) < N / 3 {
        let line = consumer
            .lines
            .recv_timeout(deadline - Instant::now())
            .expect("consumer quiet");
        if line.starts_with("APPLIED ") {
            ledger.take(&line);
        }
    }
    consumer.child.kill().unwrap();
    consumer.child.wait().unwrap();
    while let Ok(line) = consumer.lines.try_recv() {
        if line.starts_with("APPLIED ") {
            ledger.take(&line);
        }
    }
    let before = ledger.applied.len();
    // Restarted, it resumes from its durable consumer.
    let consumer = Kid::spawn("consumer", &server.url(), N);
    while (ledger.applied.len() as u64) < N {
        let line = consumer
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|e| panic!("consumer quiet at {} of {N}: {e}", ledger.applied.len()));
        if line.starts_with("APPLIED ") {
            ledger.take(&line);
        }
    }
    let expected: BTreeSet<String> = (0..N).map(|i| order_id(&i)).collect();
    assert_eq!(ledger.applied, expected);
    assert!(
        ledger.dropped <= 256,
        "{} duplicates: more than the ack window",
        ledger.dropped
    );
    // The producer process finished: every receipt it got, the stream has.
    loop {
        let line = producer
            .lines
            .recv_timeout(GUARD)
            .expect("the producer process finishes");
        if line.starts_with("PRODUCED") {
            break;
        }
    }
    assert_eq!(bridge.stream_messages("PIPE").unwrap(), N);
    println!(
        "two processes: consumer killed after {before} applied; {} redelivered duplicates dropped by id",
        ledger.dropped
    );
}

/// The children: a producer process (a ring publishing to JetStream) or a consumer process (a
/// source into a ring whose stage applies each message by printing it).
#[test]
fn child() {
    let Ok(role) = std::env::var("RINGMQ_NATS_ROLE") else {
        return;
    };
    let url = std::env::var("RINGMQ_NATS_URL").unwrap();
    let events: u64 = std::env::var("RINGMQ_NATS_EVENTS")
        .unwrap()
        .parse()
        .unwrap();
    let bridge = Bridge::connect(&url).unwrap();
    if role == "producer" {
        let (mut p, q, stored, _) = outbound(&bridge, "pipe.orders");
        let mut last = 0;
        for i in 0..events {
            last = p.publish(|o| *o = i).unwrap();
        }
        stored.wait_processed(last, GUARD).unwrap();
        drop(p);
        q.shutdown().unwrap();
        println!("PRODUCED {events}");
        return;
    }
    // A slow application (about 20 us an event): the ring stays full of messages received and
    // not yet applied, which the kill must not lose.
    let (_source, _queue) =
        source_into(&bridge, "PIPE", "pipe-consumer", |(id, delivered), _, _| {
            let start = Instant::now();
            while start.elapsed() < Duration::from_micros(20) {
                std::hint::spin_loop();
            }
            println!("APPLIED {id} {delivered}");
        });
    // Runs until the parent kills it (bounded by the guard).
    let deadline = Instant::now() + GUARD;
    while Instant::now() < deadline {
        std::thread::park_timeout(deadline - Instant::now());
    }
}
