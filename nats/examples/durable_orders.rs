//! The LMAX shape, durable and replicated: orders are journaled to disk and replicated to NATS
//! JetStream in parallel; the business logic (account balances) runs after both, so it acts only
//! on orders that are on disk and stored by JetStream, and an order is acknowledged to its client
//! only then. The service (this program, re-executed) is killed with SIGKILL halfway and
//! restarted: it rebuilds its balances from its checkpoint plus the journal, sends the journal's
//! tail to JetStream again (the stream's duplicate window drops what it already has), and goes
//! on. At the end every acknowledged order is in the journal and in the stream, once, and the
//! balances equal a fold of the journal.
//!
//! `cargo run --release -p ringmq-nats --example durable_orders [orders]` (default 200,000). Needs a NATS
//! server with JetStream: `NATS_URL=nats://host:4222`, or `nats-server` installed
//! (`apt-get install nats-server`), which the example then starts on a free loopback port.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use ringmq::{Blocking, Builder, Consumer};
use ringmq_journal::{Checkpoint, Journal, JournalOptions, SyncPolicy};
use ringmq_nats::{Bridge, StreamOptions};

const ACCOUNTS: usize = 16;
const STREAM: &str = "ORDERS";
const WAIT: Duration = Duration::from_secs(120);

/// An order. Its id is its journal position: a client retrying after a crash sends the same
/// order with the same id.
#[derive(Clone, Copy, Default, Debug)]
struct Order {
    id: u64,
    account: u32,
    amount: i64,
}

impl Order {
    /// The order the (simulated) clients send as number `id`.
    fn number(id: u64) -> Order {
        Order {
            id,
            account: (id.wrapping_mul(2_654_435_761) % ACCOUNTS as u64) as u32,
            amount: (id % 1000) as i64 - 400,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&self.account.to_le_bytes());
        out.extend_from_slice(&self.amount.to_le_bytes());
    }

    fn decode(b: &[u8]) -> Order {
        Order {
            id: u64::from_le_bytes(b[..8].try_into().unwrap()),
            account: u32::from_le_bytes(b[8..12].try_into().unwrap()),
            amount: i64::from_le_bytes(b[12..20].try_into().unwrap()),
        }
    }
}

/// The business state: a balance per account and the number of orders applied.
#[derive(Clone, Copy, Default, PartialEq, Debug)]
struct Balances {
    applied: u64,
    balance: [i64; ACCOUNTS],
}

impl Balances {
    fn apply(&mut self, o: &Order) {
        assert_eq!(o.id, self.applied, "orders apply in id order, each once");
        self.applied += 1;
        self.balance[o.account as usize] += o.amount;
    }

    fn to_bytes(self) -> Vec<u8> {
        std::iter::once(self.applied as i64)
            .chain(self.balance)
            .flat_map(i64::to_le_bytes)
            .collect()
    }

    fn from_bytes(b: &[u8]) -> Balances {
        let v = |i: usize| i64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().unwrap());
        let mut s = Balances {
            applied: v(0) as u64,
            ..Default::default()
        };
        for (a, bal) in s.balance.iter_mut().enumerate() {
            *bal = v(a + 1);
        }
        s
    }

    fn summary(&self) -> String {
        format!(
            "{} orders, total {}",
            self.applied,
            self.balance.iter().sum::<i64>()
        )
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--service") {
        return service(&args[2], Path::new(&args[3]), args[4].parse()?);
    }
    let orders: u64 = args
        .get(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(200_000);
    let dir = std::env::temp_dir().join(format!("ringmq-durable-orders-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let (url, server) = match std::env::var("NATS_URL") {
        Ok(url) => (url, None),
        Err(_) => {
            let (url, server) = start_nats(&dir)?;
            (url, Some(server))
        }
    };
    let bridge = Bridge::connect(&url)?;
    bridge.ensure_stream(StreamOptions::new(STREAM, ["orders.>"]))?;
    println!(
        "{orders} orders; journal in {}; JetStream at {url}",
        dir.display()
    );

    // First run: killed with SIGKILL once half the orders are acknowledged.
    let start = Instant::now();
    let mut first = Service::spawn(&url, &dir, orders)?;
    let mut acked = 0;
    while acked < orders / 2 {
        acked = first.ack()?;
    }
    first.child.kill()?;
    first.child.wait()?;
    while let Ok(line) = first.lines.try_recv() {
        if let Some(n) = line.strip_prefix("ACKED ") {
            acked = acked.max(n.parse()?);
        }
    }
    println!("service killed (SIGKILL) after {acked} orders acknowledged");

    // Second run: recovers and finishes.
    let mut second = Service::spawn(&url, &dir, orders)?;
    let summary = loop {
        let line = second.line()?;
        if let Some(s) = line.strip_prefix("RECOVERED ") {
            println!("restarted: {s}");
        }
        if let Some(s) = line.strip_prefix("DONE ") {
            break s.to_string();
        }
    };
    second.child.wait()?;
    let elapsed = start.elapsed();

    // Nothing acknowledged is lost: the journal holds every order once, in order, the stream
    // holds each once, and the balances are the journal's fold.
    let journal = Journal::open(JournalOptions::new(dir.join("journal")))?;
    let mut fold = Balances::default();
    for record in journal.read_from(0)? {
        fold.apply(&Order::decode(&record?.payload));
    }
    assert_eq!(fold.applied, orders, "the journal holds every order");
    assert_eq!(
        summary,
        fold.summary(),
        "the service's balances are the journal's fold"
    );
    let stored = bridge.stream_messages(STREAM)?;
    assert_eq!(stored, orders, "JetStream holds every order once");
    println!(
        "done in {:.1} s: journal {} orders, JetStream {stored}, balances {summary}: nothing acknowledged was lost",
        elapsed.as_secs_f64(),
        fold.applied
    );
    drop(journal);
    drop(server);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// The service: recover, replicate the journal's tail again, then take orders until `orders`.
fn service(url: &str, dir: &Path, orders: u64) -> Result<(), Box<dyn std::error::Error>> {
    let journal =
        Journal::open(JournalOptions::new(dir.join("journal")).sync(SyncPolicy::EveryBatch))?;
    let handle = journal.handle();
    let checkpoint = Checkpoint::new(dir.join("balances.ckpt"));
    let bridge = Bridge::connect(url)?;

    // Recover: balances from the checkpoint, then the journal after it.
    let (mut balances, resume_at) = match checkpoint.load()? {
        Some(s) => (Balances::from_bytes(&s.state), s.resume_at),
        None => (Balances::default(), 0),
    };
    let mut tail = Vec::new();
    for record in journal.read_from(resume_at)? {
        let order = Order::decode(&record?.payload);
        balances.apply(&order);
        tail.push(order);
    }
    // The tail may not have reached JetStream before the crash (journal and replication run
    // in parallel): republish it through a ring of its own; duplicates are dropped by id.
    let republished = tail.len();
    let mut already = 0;
    if !tail.is_empty() {
        let mut b = Builder::single_producer(1024, Order::default, Blocking::new())?;
        let handler = bridge.publisher_handler("orders.new", replicate);
        let stats = handler.stats();
        let out = b.add(Consumer::fallible_with_handler(
            "replicate-tail",
            move || handler,
        ));
        let (mut p, q) = b.build()?;
        let stored = q.tracker(out)?;
        let mut last = 0;
        for o in tail {
            last = p.publish(|slot| *slot = o)?;
        }
        stored.wait_processed(last, WAIT)?;
        drop(p);
        q.shutdown()?;
        already = stats.duplicates();
    }
    let next = journal.recovery().next;
    println!(
        "RECOVERED checkpoint at {resume_at}, replayed {republished} journal records and republished them ({already} already in JetStream, dropped by id), torn tail {:?}; resuming at order {next}",
        journal.recovery().torn.as_ref().map(|t| t.bytes)
    );

    // The LMAX shape: journal and replicate in parallel, the business logic after both.
    let mut b = Builder::single_producer(4096, Order::default, Blocking::new())?;
    let journaled =
        b.add(journal.consumer("journal", |o: &Order, out: &mut Vec<u8>| o.encode(out)));
    let replicated = b.add(bridge.publisher("replicate", "orders.new", replicate));
    let mut since = 0;
    let logic = b.add_after(
        &[journaled, replicated],
        Consumer::new("balances", move |o: &Order, seq, end_of_batch| {
            balances.apply(o);
            since += 1;
            if since >= 3000 && end_of_batch {
                let position = handle.position_of(seq).expect("journaled");
                checkpoint
                    .store(position + 1, &balances.to_bytes())
                    .expect("checkpoint");
                since = 0;
            }
            if o.id + 1 == orders {
                println!("DONE {}", balances.summary());
            }
        }),
    )?;
    let (mut producer, queue) = b.build()?;
    let done = queue.tracker(logic)?;
    // The clients send orders `next..orders` without waiting; an order is acknowledged to them
    // once the business logic has applied it (so it is journaled and replicated).
    let acks = std::thread::spawn(move || {
        let mut acked = next;
        while acked < orders {
            let upto = (acked + 100).min(orders);
            done.wait_processed((upto - next) as i64 - 1, WAIT)
                .expect("processed");
            acked = upto;
            println!("ACKED {acked}");
        }
    });
    for id in next..orders {
        producer.publish(|slot| *slot = Order::number(id))?;
    }
    acks.join().expect("acks");
    drop(producer);
    queue.shutdown()?;
    Ok(())
}

fn replicate(o: &Order, _seq: i64) -> (String, Vec<u8>) {
    let mut payload = Vec::with_capacity(20);
    o.encode(&mut payload);
    (format!("order-{}", o.id), payload)
}

/// A running service process and its output lines.
struct Service {
    child: Child,
    lines: Receiver<String>,
}

impl Service {
    fn spawn(url: &str, dir: &Path, orders: u64) -> std::io::Result<Service> {
        let mut child = Command::new(std::env::current_exe()?)
            .args(["--service", url, dir.to_str().unwrap(), &orders.to_string()])
            .stdout(Stdio::piped())
            .spawn()?;
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Ok(Service { child, lines })
    }

    fn line(&mut self) -> Result<String, Box<dyn std::error::Error>> {
        Ok(self.lines.recv_timeout(WAIT)?)
    }

    /// The next acknowledgement count.
    fn ack(&mut self) -> Result<u64, Box<dyn std::error::Error>> {
        loop {
            let line = self.line()?;
            if let Some(n) = line.strip_prefix("ACKED ") {
                return Ok(n.parse()?);
            }
        }
    }
}

/// A nats-server with JetStream on a free loopback port, its store in `dir`.
struct NatsServer(Child);

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_nats(dir: &Path) -> Result<(String, NatsServer), Box<dyn std::error::Error>> {
    let store: PathBuf = dir.join("nats");
    let mut child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", "-1", "-sd"])
        .arg(&store)
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not start nats-server ({e}): install it or set NATS_URL"))?;
    let stderr = child.stderr.take().unwrap();
    let server = NatsServer(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut port = None;
    loop {
        let line = rx.recv_timeout(WAIT)?;
        if let Some(at) = line.find("Listening for client connections on ") {
            port = line[at..].rsplit(':').next().map(|p| p.trim().to_string());
        }
        if line.contains("Server is ready") {
            break;
        }
    }
    Ok((
        format!("nats://127.0.0.1:{}", port.ok_or("no port in the log")?),
        server,
    ))
}
