//! Asynchronous service calls: caller threads publish requests, a work pool serves them (each
//! request by exactly one worker), and callers learn the outcome from their receipts.
//!
//! `cargo run --release --example request_reply [calls]` (default 30,000, split over 3 callers)
//!
//! - A call is `publish` (returns the request's sequence) then `wait_processed(seq, timeout)` on
//!   the pool's tracker; the worker wrote the reply into the caller's reply slot before the pool
//!   moved past the sequence, so once the receipt says "processed" the reply is there.
//! - Pipelining: a caller publishes 8 requests with one `publish_batch` and waits for the last
//!   receipt only: a pool's receipt for `s` means every request up to `s` is handled.
//! - Timeouts: one request is slow (its worker takes 20 ms); its caller waits 5 ms, gets
//!   `Err(Timeout)`, and later collects the late reply: the request was not lost. The same rule
//!   that makes pipelining cheap means the receipts of requests published after the slow one wait
//!   for it too (the work itself goes on in the other worker).
//!
//! Five threads on two cores: the queue uses `Blocking` waits.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use ringmq::{Blocking, Builder, Consumer, TrackerError, WorkPool};

const CALLERS: usize = 3;
/// Requests a caller may have in flight (one pipelined batch).
const WINDOW: usize = 8;

#[derive(Clone, Copy, Default)]
struct Request {
    caller: usize,
    id: u64,
    x: u64,
    slow: bool,
}

/// The service: some arithmetic standing in for real work.
fn serve(x: u64) -> u64 {
    let mut h = x;
    for _ in 0..200 {
        h = (h ^ (h >> 29)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    }
    h
}

/// Reply slots: `[caller][id % WINDOW]`.
type Replies = Arc<Vec<Vec<AtomicU64>>>;

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let calls: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(30_000);
    let per_caller = (calls / CALLERS as u64).max(2 * WINDOW as u64);

    let replies: Replies = Arc::new(
        (0..CALLERS)
            .map(|_| (0..WINDOW).map(|_| AtomicU64::new(0)).collect())
            .collect(),
    );
    let served: Arc<Vec<AtomicU64>> = Arc::new((0..2).map(|_| AtomicU64::new(0)).collect());

    let mut b = Builder::multi_producer(1024, Request::default, Blocking::new())?;
    let (r, s) = (replies.clone(), served.clone());
    let pool = b.add_pool(
        &[],
        WorkPool::new("service", 2, move |worker| {
            let (replies, served) = (r.clone(), s.clone());
            Consumer::new(format!("service-{worker}"), move |req: &Request, _, _| {
                if req.slow {
                    // A slow downstream call (a database, another service).
                    std::thread::sleep(Duration::from_millis(20));
                }
                // Relaxed: the caller reads it after its receipt, and the receipt (the pool's
                // sequence, stored with Release after this handler returns, read with Acquire)
                // orders this write before that read.
                replies[req.caller][req.id as usize % WINDOW]
                    .store(serve(req.x), Ordering::Relaxed);
                served[worker].fetch_add(1, Ordering::Relaxed);
            })
        }),
    )?;
    let (producer, queue) = b.build()?;
    let receipts = queue.tracker(pool)?;

    let started = Instant::now();
    let callers: Vec<_> = (0..CALLERS)
        .map(|caller| {
            let mut producer = producer.clone();
            let receipts = receipts.clone();
            let replies = replies.clone();
            std::thread::spawn(
                move || -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
                    let mut latency = Histogram::<u64>::new(3).unwrap();
                    let mut late = None;
                    let mut id = 0u64;
                    while id < per_caller {
                        if id % 100 == 50 && id + WINDOW as u64 <= per_caller {
                            // Pipelined: a batch of requests, one wait for the last receipt.
                            let seqs = producer.publish_batch(WINDOW, |req, k| {
                                *req = Request {
                                    caller,
                                    id: id + k as u64,
                                    x: id + k as u64,
                                    slow: false,
                                }
                            })?;
                            receipts.wait_processed(seqs.end - 1, Duration::from_secs(5))?;
                            for k in 0..WINDOW as u64 {
                                let got = replies[caller][((id + k) as usize) % WINDOW]
                                    .load(Ordering::Relaxed);
                                assert_eq!(got, serve(id + k), "caller {caller}: reply {}", id + k);
                            }
                            id += WINDOW as u64;
                            continue;
                        }
                        let slow = caller == 0 && id == per_caller / 200 * 100;
                        let t = Instant::now();
                        let seq = producer.publish(|req| {
                            *req = Request {
                                caller,
                                id,
                                x: id,
                                slow,
                            }
                        })?;
                        let timeout = if slow {
                            Duration::from_millis(5)
                        } else {
                            Duration::from_secs(5)
                        };
                        match receipts.wait_processed(seq, timeout) {
                            Ok(()) => {
                                let _ = latency.record(t.elapsed().as_nanos() as u64);
                            }
                            Err(TrackerError::Timeout) => {
                                // Not lost: still in the pool. Collect the late reply.
                                receipts.wait_processed(seq, Duration::from_secs(5))?;
                                late = Some(t.elapsed());
                            }
                            Err(e) => return Err(e.into()),
                        }
                        let got = replies[caller][id as usize % WINDOW].load(Ordering::Relaxed);
                        assert_eq!(got, serve(id), "caller {caller}: reply {id}");
                        id += 1;
                    }
                    Ok((latency, late))
                },
            )
        })
        .collect();
    drop(producer);

    let mut latency = Histogram::<u64>::new(3).unwrap();
    let mut timeouts = Vec::new();
    for c in callers {
        let (h, late) = c.join().expect("caller panicked")?;
        latency.add(&h).unwrap();
        timeouts.extend(late);
    }
    let elapsed = started.elapsed();
    queue.shutdown()?;

    let served: Vec<u64> = served.iter().map(|s| s.load(Ordering::Relaxed)).collect();
    let total: u64 = served.iter().sum();
    assert_eq!(
        total,
        per_caller * CALLERS as u64,
        "every request served exactly once"
    );
    assert_eq!(timeouts.len(), 1, "exactly the slow request timed out");
    println!(
        "request_reply: {total} requests from {CALLERS} callers in {elapsed:.2?} ({:.0} calls/s), \
         served by 2 workers: {served:?}",
        total as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  synchronous call latency: p50 {:.1} us, p99 {:.1} us, max {:.1} ms ({} calls; the \
         max includes waiting behind the slow request)",
        latency.value_at_quantile(0.5) as f64 / 1e3,
        latency.value_at_quantile(0.99) as f64 / 1e3,
        latency.max() as f64 / 1e6,
        latency.len()
    );
    println!(
        "  timeouts: 1 (the slow request: Err(Timeout) after 5 ms; its reply arrived after {:.1?})",
        timeouts[0]
    );
    Ok(())
}
