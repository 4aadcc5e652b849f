//! An async front end on a pinned pipeline: a tokio TCP service whose connection tasks publish
//! requests into a ring served by a work pool on pinned threads, await each request's receipt,
//! and reply. A client in the same program drives it over loopback and prints the rate and the
//! latency percentiles.
//!
//! `cargo run --release --example async_service [calls] [connections]` (defaults 20,000 and 8)
//!
//! - Wire format: a request is 16 bytes (`id`, `x`, little-endian `u64`s), a reply 16 bytes
//!   (`id`, `serve(x)`).
//! - A connection task reads a request, `publish_async`es it (awaiting room if the ring is full:
//!   the task yields its worker thread, nothing blocks), then awaits
//!   `Tracker::processed_async(seq)` on the pool's tracker, reads the reply the worker left in
//!   the connection's reply slot and writes it back. A pool's receipt for `s` means a worker has
//!   handled `s` (and everything before it).
//! - The pool: two workers, each pinned to a core, waiting with `Blocking` (they share the two
//!   cores with tokio's two workers). Each request goes to exactly one worker.
//! - Shutdown: the client closes its connections, the connection tasks end (dropping their
//!   producers), and `shutdown` drains the ring and joins the workers.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ringmq::{Blocking, Builder, Consumer, MultiProducer, Tracker, WorkPool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The most connections served at once (one reply slot each).
const MAX_CONNECTIONS: usize = 64;

#[derive(Clone, Copy, Default)]
struct Request {
    connection: usize,
    id: u64,
    x: u64,
}

/// The service: some arithmetic standing in for real work.
fn serve(x: u64) -> u64 {
    let mut h = x;
    for _ in 0..200 {
        h = (h ^ (h >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    }
    h
}

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Per connection: the id of the request last served and its result.
type Replies = Arc<Vec<(AtomicU64, AtomicU64)>>;

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let calls: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let connections: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(8)
        .clamp(1, MAX_CONNECTIONS);

    // One reply slot per connection (a connection has one request in flight at a time): the
    // request's id and the result.
    let replies: Replies = Arc::new(
        (0..MAX_CONNECTIONS)
            .map(|_| (AtomicU64::new(u64::MAX), AtomicU64::new(0)))
            .collect(),
    );
    let served: Arc<Vec<AtomicU64>> = Arc::new((0..2).map(|_| AtomicU64::new(0)).collect());
    let cores = core_affinity::get_core_ids().map_or(1, |c| c.len());

    let mut b = Builder::multi_producer(1024, Request::default, Blocking::new())?;
    let (r, s) = (replies.clone(), served.clone());
    let pool = b.add_pool(
        &[],
        WorkPool::new("service", 2, move |worker| {
            let (replies, served) = (r.clone(), s.clone());
            Consumer::new(format!("service-{worker}"), move |req: &Request, _, _| {
                // Relaxed: the connection task reads it after its receipt, and the receipt
                // (the pool's sequence, stored with Release after this handler returns, read
                // with Acquire) orders this write before that read.
                let (id, value) = &replies[req.connection];
                value.store(serve(req.x), Ordering::Relaxed);
                id.store(req.id, Ordering::Relaxed);
                served[worker].fetch_add(1, Ordering::Relaxed);
            })
            .pin_to_core(worker % cores)
        }),
    )?;
    let (producer, queue) = b.build()?;
    let receipts = queue.tracker(pool)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (latency, elapsed) = rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(accept(listener, connections, producer, receipts, replies));
        let started = Instant::now();
        let latency = client(addr, calls, connections).await?;
        let elapsed = started.elapsed();
        server.await??;
        Ok::<_, Error>((latency, elapsed))
    })?;

    let report = queue.shutdown()?;
    let served: Vec<u64> = served.iter().map(|s| s.load(Ordering::Relaxed)).collect();
    let total = latency.len();
    assert_eq!(
        served.iter().sum::<u64>(),
        total,
        "every request served once"
    );
    println!(
        "{total} calls over {connections} connections in {:.2?}: {:.0} calls/s",
        elapsed,
        total as f64 / elapsed.as_secs_f64()
    );
    println!(
        "round trip (client write to reply read): p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us",
        latency.value_at_quantile(0.50) as f64 / 1e3,
        latency.value_at_quantile(0.99) as f64 / 1e3,
        latency.value_at_quantile(0.999) as f64 / 1e3,
        latency.max() as f64 / 1e3
    );
    println!("served by worker: {served:?}");
    for c in &report.consumers {
        println!("  {} handled up to sequence {}", c.name, c.last_sequence);
    }
    Ok(())
}

/// Accepts `connections` connections, one task each; returns when all have ended.
async fn accept(
    listener: TcpListener,
    connections: usize,
    producer: MultiProducer<Request, Blocking>,
    receipts: Tracker,
    replies: Replies,
) -> Result<(), Error> {
    let mut tasks = Vec::new();
    for connection in 0..connections {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        tasks.push(tokio::spawn(connection_task(
            stream,
            connection,
            producer.clone(),
            receipts.clone(),
            replies.clone(),
        )));
    }
    drop(producer);
    for t in tasks {
        t.await??;
    }
    Ok(())
}

/// One connection: request in, publish, await the receipt, reply out; until the peer closes.
async fn connection_task(
    mut stream: TcpStream,
    connection: usize,
    mut producer: MultiProducer<Request, Blocking>,
    receipts: Tracker,
    replies: Replies,
) -> Result<(), Error> {
    let mut frame = [0u8; 16];
    loop {
        match stream.read_exact(&mut frame).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let id = u64::from_le_bytes(frame[..8].try_into().unwrap());
        let x = u64::from_le_bytes(frame[8..].try_into().unwrap());
        // Awaits room without blocking the runtime's thread; dropping this future (a timeout,
        // a closed connection) would publish nothing: no claim is held across the await.
        let seq = producer
            .publish_async(|req| *req = Request { connection, id, x })
            .await?;
        receipts.processed_async(seq).await?;
        let (served_id, value) = &replies[connection];
        assert_eq!(
            served_id.load(Ordering::Relaxed),
            id,
            "the reply is this request's"
        );
        frame[8..].copy_from_slice(&value.load(Ordering::Relaxed).to_le_bytes());
        stream.write_all(&frame).await?;
    }
}

/// The client: `connections` connections, one call at a time each; the latency of every call.
async fn client(addr: SocketAddr, calls: u64, connections: usize) -> Result<Histogram<u64>, Error> {
    let per = calls / connections as u64;
    let mut tasks = Vec::new();
    for c in 0..connections as u64 {
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let mut latency = Histogram::<u64>::new(3)?;
            let mut frame = [0u8; 16];
            for id in 0..per {
                let x = c << 32 | id;
                frame[..8].copy_from_slice(&id.to_le_bytes());
                frame[8..].copy_from_slice(&x.to_le_bytes());
                let t = Instant::now();
                stream.write_all(&frame).await?;
                stream.read_exact(&mut frame).await?;
                latency.record(t.elapsed().as_nanos() as u64)?;
                let got_id = u64::from_le_bytes(frame[..8].try_into().unwrap());
                let got = u64::from_le_bytes(frame[8..].try_into().unwrap());
                assert_eq!((got_id, got), (id, serve(x)), "connection {c}: call {id}");
            }
            Ok::<_, Error>(latency)
        }));
    }
    let mut all = Histogram::<u64>::new(3)?;
    for t in tasks {
        all.add(tokio::time::timeout(Duration::from_secs(60), t).await???)?;
    }
    Ok(all)
}
