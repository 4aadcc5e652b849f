//! One ring, three processes: a producer process and two consumer processes (this program,
//! re-executed), a ring in `/dev/shm`. Halfway through, one consumer is killed with SIGKILL;
//! the producer resumes once the ring notices (its liveness time), and the other consumer
//! carries on and loses nothing.
//!
//! `cargo run --release --example ipc [events]` (default 2,000,000)
//!
//! Prints each consumer's rate and its latency percentiles (publish to handle, across
//! processes), and what the ring reported about the killed one.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use ringmq::ipc::{IpcWait, ShmOptions, ShmRing};

/// A trade, as plain data: any bytes are a valid `Trade`.
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Trade {
    id: u64,
    price: u64,
    quantity: u64,
    /// When it was published (nanoseconds of the wall clock, which every process shares).
    sent_ns: u64,
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn options() -> ShmOptions {
    // Three processes on as few as two cores: waiters yield the core. A consumer whose process
    // dies is noticed within 200 ms.
    ShmOptions::single_producer(4096)
        .wait(IpcWait::Yielding)
        .liveness(Duration::from_millis(200))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(role) = args.get(1).filter(|a| a.starts_with("--")) {
        return child(role, &args[2], args[3].parse()?);
    }
    let events: u64 = args
        .get(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(2_000_000);
    let path =
        std::path::PathBuf::from("/dev/shm").join(format!("ringmq-example-{}", std::process::id()));
    let ring = ShmRing::<Trade>::create(&path, options())?;
    println!(
        "ring {} ({} slots), {events} trades",
        path.display(),
        ring.capacity()
    );

    let spawn = |role: &str| -> std::io::Result<(Child, std::sync::mpsc::Receiver<String>)> {
        let mut child = Command::new(std::env::current_exe()?)
            .args([role, path.to_str().unwrap(), &events.to_string()])
            .stdout(Stdio::piped())
            .spawn()?;
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Ok((child, rx))
    };
    let expect = |rx: &std::sync::mpsc::Receiver<String>, prefix: &str| -> String {
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(120))
                .expect("a child stopped talking");
            if line.starts_with(prefix) {
                return line;
            }
        }
    };

    let (mut steady, steady_out) = spawn("--consumer-steady")?;
    let (mut victim, victim_out) = spawn("--consumer-victim")?;
    expect(&steady_out, "attached");
    expect(&victim_out, "attached");
    let (mut producer, producer_out) = spawn("--producer")?;

    // Halfway: kill the victim, as the OOM killer would.
    expect(&producer_out, "halfway");
    victim.kill()?;
    victim.wait()?;
    println!("killed the victim consumer (pid {}) halfway", victim.id());

    println!("{}", expect(&producer_out, "producer"));
    println!("{}", expect(&steady_out, "steady"));
    producer.wait()?;
    steady.wait()?;
    for eviction in ring.evictions() {
        println!(
            "the ring evicted {:?} {:?} (pid {}) at sequence {}",
            eviction.kind, eviction.name, eviction.pid, eviction.sequence
        );
    }
    drop(victim_out);
    Ok(())
}

fn child(role: &str, path: &str, events: u64) -> Result<(), Box<dyn std::error::Error>> {
    let ring = ShmRing::<Trade>::open(path, options())?;
    match role {
        "--producer" => {
            let mut producer = ring.producer()?;
            let start = Instant::now();
            for id in 0..events {
                if id == events / 2 {
                    println!("halfway");
                }
                producer.publish(|t| {
                    *t = Trade {
                        id,
                        price: 10_000 + id % 100,
                        quantity: 1 + id % 7,
                        sent_ns: now_ns(),
                    }
                })?;
            }
            let took = start.elapsed();
            println!(
                "producer: {events} trades in {took:.2?} ({:.1} M/s), including the wait for the ring to evict the killed consumer",
                events as f64 / took.as_secs_f64() / 1e6
            );
            // Dropping the producer closes the ring: the consumer drains and ends.
        }
        "--consumer-steady" | "--consumer-victim" => {
            let name = role.trim_start_matches("--consumer-");
            let mut consumer = ring.consumer(name)?;
            println!("attached");
            let mut latency = Histogram::<u64>::new(3)?;
            let mut next_id = 0;
            let mut volume = 0u64;
            let start = Instant::now();
            let handled = consumer.run(|t: &Trade, _seq, _end_of_batch| {
                assert_eq!(t.id, next_id, "lost or repeated a trade");
                next_id += 1;
                volume += t.quantity;
                let _ = latency.record(now_ns().saturating_sub(t.sent_ns));
            });
            let took = start.elapsed();
            println!(
                "{name}: {handled} trades (volume {volume}) in {took:.2?}, {:.1} M/s; latency p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us",
                handled as f64 / took.as_secs_f64() / 1e6,
                latency.value_at_quantile(0.5) as f64 / 1e3,
                latency.value_at_quantile(0.99) as f64 / 1e3,
                latency.value_at_quantile(0.999) as f64 / 1e3,
                latency.max() as f64 / 1e3,
            );
            assert_eq!(handled, events, "the steady consumer must see every trade");
        }
        other => return Err(format!("unknown role {other}").into()),
    }
    Ok(())
}
