//! The async edge: ringmq's async producers and poller beside the async channels that services
//! use between tasks, all on one tokio multi-thread runtime with two workers.
//!
//! Groups (ids are `group/implementation/burst`):
//! - `async_1p1c`: one producer task and one consumer task. An iteration is one burst: a
//!   `publish_batch_async` of the burst for ringmq (`publish_async` for 1), that many `send`s for
//!   a channel (none has a batch send). The consumer takes what is there: a `poll_async` batch
//!   for ringmq, `recv_many` for tokio's `mpsc` (its batch receive), one `recv` at a time for the
//!   others. A measurement sends `iters` bursts and ends when the consumer has the last event.
//!   Bursts 1, 10, 100.
//! - `async_4p1c`: four producer tasks (ringmq's multi producer, the channels' cloned senders),
//!   one consumer task; an iteration is one burst from each producer.
//! - `async_round_trip`: one event to an echo task and back (two queues, one each way).
//! - `async_floor`: the floor, a cache line handed between two pinned threads, probed before and
//!   after the rest (the host moves its two vCPUs between a near and a far placement; compare
//!   only runs whose two probes agree).
//!
//! Every queue holds 1024 events; ringmq waits with `Blocking` (tasks park in its waker table
//! as the channels' tasks park in theirs). Peers: tokio `mpsc`, flume, kanal, crossfire (`spsc`
//! for one producer, `mpsc` for four).
//!
//! `cargo bench --bench asyncs`; `-- --test` runs each once.
//!
//! Instructions per round trip, the deterministic figure: `RINGMQ_ASYNC_ICOUNT=IMPL:N` makes
//! the binary run `N` round trips of implementation `IMPL` (`ringmq`, `tokio-mpsc`, `flume`,
//! `kanal`, `crossfire`) between two tasks on a current-thread runtime and exit; run it under
//! `valgrind --tool=callgrind` at two `N` and divide the difference in instructions by the
//! difference in `N` (`tools/async_icount.sh` does that for every implementation).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use crossbeam_utils::CachePadded;
use ringmq::{Blocking, Builder, PollState};
use tokio::runtime::Runtime;

const CAPACITY: usize = 1024;
const BURSTS: [u64; 3] = [1, 10, 100];
const PRODUCERS: u64 = 4;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

fn main() {
    if let Ok(spec) = std::env::var("RINGMQ_ASYNC_ICOUNT") {
        let (imp, n) = spec.split_once(':').expect("RINGMQ_ASYNC_ICOUNT=IMPL:N");
        return icount_round_trips(imp, n.parse().expect("N: a count"));
    }
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let rt = runtime();
    // Read before `floor` pins this thread (afterwards the list holds only its core).
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    floor(&mut c, &cores, "before");
    one_to_one(&mut c, &rt);
    four_to_one(&mut c, &rt);
    round_trip(&mut c, &rt);
    floor(&mut c, &cores, "after");
    c.final_summary();
}

/// Runs `f` on the runtime as a task (not on the bench thread, which only waits), timing it.
fn timed<F: Future<Output = T> + Send + 'static, T: Send + 'static>(
    rt: &Runtime,
    f: F,
) -> (Duration, T) {
    rt.block_on(async {
        let start = Instant::now();
        let out = tokio::spawn(f).await.unwrap();
        (start.elapsed(), out)
    })
}

/// One producer and one consumer moved into tasks for each measurement and handed back after.
/// `send(tx, first, burst)` sends one burst; `recv(rx, n)` receives exactly `n` events and
/// returns their sum (checked: every event arrived once).
fn pair<Tx, Rx, SF, RF>(
    rt: &Runtime,
    tx: &mut Option<Tx>,
    rx: &mut Option<Rx>,
    iters: u64,
    burst: u64,
    send: fn(Tx, u64, u64) -> SF,
    recv: fn(Rx, u64) -> RF,
) -> Duration
where
    Tx: Send + 'static,
    Rx: Send + 'static,
    SF: Future<Output = Tx> + Send + 'static,
    RF: Future<Output = (Rx, u64)> + Send + 'static,
{
    let (t, r) = (tx.take().unwrap(), rx.take().unwrap());
    let n = iters * burst;
    let (elapsed, (t, (r, sum))) = timed(rt, async move {
        let consumer = tokio::spawn(recv(r, n));
        let producer = tokio::spawn(async move {
            let mut t = t;
            for i in 0..iters {
                t = send(t, i * burst, burst).await;
            }
            t
        });
        (producer.await.unwrap(), consumer.await.unwrap())
    });
    assert_eq!(sum, n * (n.wrapping_sub(1)) / 2, "lost or repeated events");
    (*tx, *rx) = (Some(t), Some(r));
    elapsed
}

/// `PRODUCERS` producers, one consumer; each producer sends `iters` bursts.
fn fan_in<Tx, Rx, SF, RF>(
    rt: &Runtime,
    txs: &mut Vec<Tx>,
    rx: &mut Option<Rx>,
    iters: u64,
    burst: u64,
    send: fn(Tx, u64, u64) -> SF,
    recv: fn(Rx, u64) -> RF,
) -> Duration
where
    Tx: Send + 'static,
    Rx: Send + 'static,
    SF: Future<Output = Tx> + Send + 'static,
    RF: Future<Output = (Rx, u64)> + Send + 'static,
{
    let ts: Vec<Tx> = std::mem::take(txs);
    let r = rx.take().unwrap();
    let per = iters * burst;
    let n = per * PRODUCERS;
    let (elapsed, (ts, (r, sum))) = timed(rt, async move {
        let consumer = tokio::spawn(recv(r, n));
        let producers: Vec<_> = ts
            .into_iter()
            .enumerate()
            .map(|(p, t)| {
                tokio::spawn(async move {
                    let mut t = t;
                    for i in 0..iters {
                        t = send(t, p as u64 * per + i * burst, burst).await;
                    }
                    t
                })
            })
            .collect();
        let mut ts = Vec::new();
        for p in producers {
            ts.push(p.await.unwrap());
        }
        (ts, consumer.await.unwrap())
    });
    assert_eq!(sum, n * (n.wrapping_sub(1)) / 2, "lost or repeated events");
    (*txs, *rx) = (ts, Some(r));
    elapsed
}

/// Round trips: the driver task sends `i` and awaits it back from an echo task.
fn trips<Tx, Rx, F>(
    rt: &Runtime,
    ends: &mut Option<(Tx, Rx)>,
    iters: u64,
    trip: fn(Tx, Rx, u64) -> F,
) -> Duration
where
    Tx: Send + 'static,
    Rx: Send + 'static,
    F: Future<Output = (Tx, Rx)> + Send + 'static,
{
    let (t, r) = ends.take().unwrap();
    let (elapsed, back) = timed(rt, trip(t, r, iters));
    *ends = Some(back);
    elapsed
}

// ---------------------------------------------------------------------------------------
// ringmq

type RingTx<S> = ringmq::Producer<u64, S, Blocking>;
type RingRx<S> = ringmq::Poller<u64, S, Blocking>;

async fn ring_send<S: ringmq::Sequencer>(mut p: RingTx<S>, first: u64, burst: u64) -> RingTx<S> {
    if burst == 1 {
        p.publish_async(|e| *e = first).await.unwrap();
    } else {
        p.publish_batch_async(burst as usize, |e, i| *e = first + i as u64)
            .await
            .unwrap();
    }
    p
}

async fn ring_recv<S: ringmq::Sequencer>(mut r: RingRx<S>, n: u64) -> (RingRx<S>, u64) {
    let (mut got, mut sum) = (0, 0u64);
    while got < n {
        let state = r
            .poll_async(|e, _, _| {
                got += 1;
                sum = sum.wrapping_add(*e);
                true
            })
            .await;
        assert!(matches!(state, PollState::Processed(_)), "{state:?}");
    }
    (r, sum)
}

// ---------------------------------------------------------------------------------------
// The channels: one sender and receiver type each, with the same two functions.

macro_rules! channel {
    ($module:ident, $tx:ty, $rx:ty, |$s:ident, $v:ident| $send:expr, |$r:ident| $recv:expr) => {
        mod $module {
            pub type Tx = $tx;
            pub type Rx = $rx;
            pub async fn send(t: Tx, first: u64, burst: u64) -> Tx {
                for i in 0..burst {
                    let ($s, $v) = (&t, first + i);
                    $send;
                }
                t
            }
            #[allow(unused_mut)]
            pub async fn recv(mut r: Rx, n: u64) -> (Rx, u64) {
                let (mut got, mut sum) = (0, 0u64);
                while got < n {
                    let $r = &mut r;
                    let (k, s) = $recv;
                    got += k;
                    sum = sum.wrapping_add(s);
                }
                (r, sum)
            }
        }
    };
}

channel!(
    tokio_mpsc,
    tokio::sync::mpsc::Sender<u64>,
    crate::TokioRx,
    |s, v| s.send(v).await.unwrap(),
    |r| r.next().await
);
channel!(
    flume_ch,
    flume::Sender<u64>,
    flume::Receiver<u64>,
    |s, v| s.send_async(v).await.unwrap(),
    |r| (1, r.recv_async().await.unwrap())
);
channel!(
    kanal_ch,
    kanal::AsyncSender<u64>,
    kanal::AsyncReceiver<u64>,
    |s, v| s.send(v).await.unwrap(),
    |r| (1, r.recv().await.unwrap())
);
channel!(
    crossfire_spsc,
    crossfire::AsyncTx<crossfire::spsc::Array<u64>>,
    crossfire::AsyncRx<crossfire::spsc::Array<u64>>,
    |s, v| s.send(v).await.unwrap(),
    |r| (1, r.recv().await.unwrap())
);
channel!(
    crossfire_mpsc,
    crossfire::MAsyncTx<crossfire::mpsc::Array<u64>>,
    crossfire::AsyncRx<crossfire::mpsc::Array<u64>>,
    |s, v| s.send(v).await.unwrap(),
    |r| (1, r.recv().await.unwrap())
);

/// tokio's receiver with `recv_many`'s buffer, so the batch receive allocates nothing per call.
pub struct TokioRx {
    rx: tokio::sync::mpsc::Receiver<u64>,
    buf: Vec<u64>,
}

impl TokioRx {
    fn new(rx: tokio::sync::mpsc::Receiver<u64>) -> Self {
        Self {
            rx,
            buf: Vec::with_capacity(CAPACITY),
        }
    }
    /// Receives what is there (at least one): how many and their sum.
    async fn next(&mut self) -> (u64, u64) {
        self.buf.clear();
        let k = self.rx.recv_many(&mut self.buf, CAPACITY).await;
        assert!(k > 0, "closed");
        (
            k as u64,
            self.buf.iter().fold(0u64, |a, v| a.wrapping_add(*v)),
        )
    }
}

// ---------------------------------------------------------------------------------------
// The groups

fn one_to_one(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("async_1p1c");
    for burst in BURSTS {
        group.throughput(Throughput::Elements(burst));
        let id = |name: &str| BenchmarkId::new(name, burst);

        let mut b = Builder::single_producer(CAPACITY, || 0u64, Blocking::new()).unwrap();
        let poller = b.add_poller(&[]).unwrap();
        let (producer, queue) = b.build().unwrap();
        let (mut tx, mut rx) = (Some(producer), Some(poller));
        group.bench_function(id("ringmq"), |b| {
            b.iter_custom(|iters| pair(rt, &mut tx, &mut rx, iters, burst, ring_send, ring_recv))
        });
        drop((tx, rx));
        queue.shutdown().unwrap();

        let (t, r) = tokio::sync::mpsc::channel(CAPACITY);
        let (mut tx, mut rx) = (Some(t), Some(TokioRx::new(r)));
        group.bench_function(id("tokio-mpsc"), |b| {
            b.iter_custom(|iters| {
                pair(
                    rt,
                    &mut tx,
                    &mut rx,
                    iters,
                    burst,
                    tokio_mpsc::send,
                    tokio_mpsc::recv,
                )
            })
        });

        let (t, r) = flume::bounded(CAPACITY);
        let (mut tx, mut rx) = (Some(t), Some(r));
        group.bench_function(id("flume"), |b| {
            b.iter_custom(|iters| {
                pair(
                    rt,
                    &mut tx,
                    &mut rx,
                    iters,
                    burst,
                    flume_ch::send,
                    flume_ch::recv,
                )
            })
        });

        let (t, r) = kanal::bounded_async(CAPACITY);
        let (mut tx, mut rx) = (Some(t), Some(r));
        group.bench_function(id("kanal"), |b| {
            b.iter_custom(|iters| {
                pair(
                    rt,
                    &mut tx,
                    &mut rx,
                    iters,
                    burst,
                    kanal_ch::send,
                    kanal_ch::recv,
                )
            })
        });

        let (t, r) = crossfire::spsc::bounded_async(CAPACITY);
        let (mut tx, mut rx) = (Some(t), Some(r));
        group.bench_function(id("crossfire"), |b| {
            b.iter_custom(|iters| {
                pair(
                    rt,
                    &mut tx,
                    &mut rx,
                    iters,
                    burst,
                    crossfire_spsc::send,
                    crossfire_spsc::recv,
                )
            })
        });
    }
    group.finish();
}

fn four_to_one(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("async_4p1c");
    for burst in BURSTS {
        group.throughput(Throughput::Elements(burst * PRODUCERS));
        let id = |name: &str| BenchmarkId::new(name, burst);

        let mut b = Builder::multi_producer(CAPACITY, || 0u64, Blocking::new()).unwrap();
        let poller = b.add_poller(&[]).unwrap();
        let (producer, queue) = b.build().unwrap();
        let mut txs: Vec<_> = (0..PRODUCERS).map(|_| producer.clone()).collect();
        drop(producer);
        let mut rx = Some(poller);
        group.bench_function(id("ringmq"), |b| {
            b.iter_custom(|iters| fan_in(rt, &mut txs, &mut rx, iters, burst, ring_send, ring_recv))
        });
        drop((txs, rx));
        queue.shutdown().unwrap();

        let (t, r) = tokio::sync::mpsc::channel(CAPACITY);
        let mut txs: Vec<_> = (0..PRODUCERS).map(|_| t.clone()).collect();
        let mut rx = Some(TokioRx::new(r));
        group.bench_function(id("tokio-mpsc"), |b| {
            b.iter_custom(|iters| {
                fan_in(
                    rt,
                    &mut txs,
                    &mut rx,
                    iters,
                    burst,
                    tokio_mpsc::send,
                    tokio_mpsc::recv,
                )
            })
        });

        let (t, r) = flume::bounded(CAPACITY);
        let mut txs: Vec<_> = (0..PRODUCERS).map(|_| t.clone()).collect();
        let mut rx = Some(r);
        group.bench_function(id("flume"), |b| {
            b.iter_custom(|iters| {
                fan_in(
                    rt,
                    &mut txs,
                    &mut rx,
                    iters,
                    burst,
                    flume_ch::send,
                    flume_ch::recv,
                )
            })
        });

        let (t, r) = kanal::bounded_async(CAPACITY);
        let mut txs: Vec<_> = (0..PRODUCERS).map(|_| t.clone()).collect();
        let mut rx = Some(r);
        group.bench_function(id("kanal"), |b| {
            b.iter_custom(|iters| {
                fan_in(
                    rt,
                    &mut txs,
                    &mut rx,
                    iters,
                    burst,
                    kanal_ch::send,
                    kanal_ch::recv,
                )
            })
        });

        let (t, r) = crossfire::mpsc::bounded_async(CAPACITY);
        let mut txs: Vec<_> = (0..PRODUCERS).map(|_| t.clone()).collect();
        let mut rx = Some(r);
        group.bench_function(id("crossfire"), |b| {
            b.iter_custom(|iters| {
                fan_in(
                    rt,
                    &mut txs,
                    &mut rx,
                    iters,
                    burst,
                    crossfire_mpsc::send,
                    crossfire_mpsc::recv,
                )
            })
        });
    }
    group.finish();
}

/// The echo task of a round trip: receives on one queue, sends back on the other, until the
/// first closes.
fn round_trip(c: &mut Criterion, rt: &Runtime) {
    let mut group = c.benchmark_group("async_round_trip");
    group.throughput(Throughput::Elements(1));
    let id = |name: &str| BenchmarkId::new(name, 1);

    // ringmq: ping ring -> echo task (a poller) -> pong ring -> driver (a poller).
    let mut ping = Builder::single_producer(CAPACITY, || 0u64, Blocking::new()).unwrap();
    let mut ping_rx = ping.add_poller(&[]).unwrap();
    let (ping_tx, ping_q) = ping.build().unwrap();
    let mut pong = Builder::single_producer(CAPACITY, || 0u64, Blocking::new()).unwrap();
    let pong_rx = pong.add_poller(&[]).unwrap();
    let (mut pong_tx, pong_q) = pong.build().unwrap();
    let echo = rt.spawn(async move {
        loop {
            let mut v = None;
            match ping_rx
                .poll_async(|e, _, _| {
                    v = Some(*e);
                    true
                })
                .await
            {
                PollState::Processed(_) => {
                    pong_tx.publish_async(|e| *e = v.unwrap()).await.unwrap();
                }
                _ => return,
            }
        }
    });
    let mut ends = Some((ping_tx, pong_rx));
    group.bench_function(id("ringmq"), |b| {
        b.iter_custom(|iters| {
            trips(rt, &mut ends, iters, |mut tx, mut rx, iters| async move {
                for i in 0..iters {
                    tx.publish_async(|e| *e = i).await.unwrap();
                    let mut back = None;
                    let state = rx
                        .poll_async(|e, _, _| {
                            back = Some(*e);
                            true
                        })
                        .await;
                    assert!(matches!(state, PollState::Processed(1)));
                    assert_eq!(back, Some(i));
                }
                (tx, rx)
            })
        })
    });
    drop(ends);
    rt.block_on(echo).unwrap();
    ping_q.shutdown().unwrap();
    pong_q.shutdown().unwrap();

    macro_rules! channel_trip {
        ($name:expr, $make:expr, |$s:ident, $v:ident| $send:expr, |$r:ident| $recv:expr) => {{
            let (ping_tx, ping_rx) = $make;
            let (pong_tx, pong_rx) = $make;
            let echo = rt.spawn(async move {
                #[allow(unused_mut)]
                let (mut $r, $s) = (ping_rx, pong_tx);
                while let Some(v) = $recv {
                    let $v = v;
                    $send;
                }
            });
            let mut ends = Some((ping_tx, pong_rx));
            group.bench_function(id($name), |b| {
                b.iter_custom(|iters| {
                    #[allow(unused_mut)]
                    trips(rt, &mut ends, iters, |$s, mut $r, iters| async move {
                        for i in 0..iters {
                            let $v = i;
                            $send;
                            assert_eq!($recv, Some(i));
                        }
                        ($s, $r)
                    })
                })
            });
            drop(ends);
            rt.block_on(echo).unwrap();
        }};
    }
    channel_trip!(
        "tokio-mpsc",
        tokio::sync::mpsc::channel::<u64>(CAPACITY),
        |s, v| s.send(v).await.unwrap(),
        |r| r.recv().await
    );
    channel_trip!(
        "flume",
        flume::bounded::<u64>(CAPACITY),
        |s, v| s.send_async(v).await.unwrap(),
        |r| r.recv_async().await.ok()
    );
    channel_trip!(
        "kanal",
        kanal::bounded_async::<u64>(CAPACITY),
        |s, v| s.send(v).await.unwrap(),
        |r| r.recv().await.ok()
    );
    channel_trip!(
        "crossfire",
        crossfire::spsc::bounded_async::<u64>(CAPACITY),
        |s, v| s.send(v).await.unwrap(),
        |r| r.recv().await.ok()
    );
    group.finish();
}

/// The cache-line round trip between two pinned threads: the floor under every round trip.
fn floor(c: &mut Criterion, cores: &[core_affinity::CoreId], when: &str) {
    let mut group = c.benchmark_group("async_floor");
    let ping = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let pong = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let (pi, po) = (ping.clone(), pong.clone());
    let echo_core = cores.get(1).copied();
    let echo = std::thread::spawn(move || {
        if let Some(core) = echo_core {
            core_affinity::set_for_current(core);
        }
        let mut last = 0;
        loop {
            let v = pi.load(Ordering::Acquire);
            if v == u64::MAX {
                return;
            }
            if v != last {
                last = v;
                po.store(v, Ordering::Release);
            }
            std::hint::spin_loop();
        }
    });
    let driver_core = cores.first().copied();
    let mut n = 0u64;
    // The bench thread stays on core 0 afterwards; it only waits (parked in `block_on`)
    // while the runtime's two unpinned workers run the tasks.
    if let Some(core) = driver_core {
        core_affinity::set_for_current(core);
    }
    group.bench_function(BenchmarkId::new("cache_line", when), |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                n += 1;
                ping.store(n, Ordering::Release);
                while pong.load(Ordering::Acquire) != n {
                    std::hint::spin_loop();
                }
            }
            start.elapsed()
        })
    });
    ping.store(u64::MAX, Ordering::Release);
    echo.join().unwrap();
    group.finish();
}

/// `n` round trips between two tasks on a current-thread runtime: the same work as
/// `async_round_trip`, with no second thread, so callgrind counts the same instructions on every
/// run (tokio's scheduling included, the same for every implementation).
fn icount_round_trips(imp: &str, n: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    macro_rules! channel_trips {
        ($make:expr, |$s:ident, $v:ident| $send:expr, |$r:ident| $recv:expr) => {{
            let (ping_tx, ping_rx) = $make;
            let (pong_tx, pong_rx) = $make;
            let echo = tokio::spawn(async move {
                #[allow(unused_mut)]
                let (mut $r, $s) = (ping_rx, pong_tx);
                while let Some(v) = $recv {
                    let $v = v;
                    $send;
                }
            });
            #[allow(unused_mut)]
            let ($s, mut $r) = (ping_tx, pong_rx);
            for i in 0..n {
                let $v = i;
                $send;
                assert_eq!($recv, Some(i));
            }
            drop(($s, $r));
            echo.await.unwrap();
        }};
    }
    rt.block_on(async move {
        match imp {
            "ringmq" => {
                let mut ping =
                    Builder::single_producer(CAPACITY, || 0u64, Blocking::new()).unwrap();
                let mut ping_rx = ping.add_poller(&[]).unwrap();
                let (mut ping_tx, ping_q) = ping.build().unwrap();
                let mut pong =
                    Builder::single_producer(CAPACITY, || 0u64, Blocking::new()).unwrap();
                let mut pong_rx = pong.add_poller(&[]).unwrap();
                let (mut pong_tx, pong_q) = pong.build().unwrap();
                let echo = tokio::spawn(async move {
                    loop {
                        let mut v = None;
                        match ping_rx
                            .poll_async(|e, _, _| {
                                v = Some(*e);
                                true
                            })
                            .await
                        {
                            PollState::Processed(_) => {
                                pong_tx.publish_async(|e| *e = v.unwrap()).await.unwrap();
                            }
                            _ => return,
                        }
                    }
                });
                for i in 0..n {
                    ping_tx.publish_async(|e| *e = i).await.unwrap();
                    let mut back = None;
                    pong_rx
                        .poll_async(|e, _, _| {
                            back = Some(*e);
                            true
                        })
                        .await;
                    assert_eq!(back, Some(i));
                }
                drop(ping_tx);
                echo.await.unwrap();
                drop(pong_rx);
                ping_q.shutdown().unwrap();
                pong_q.shutdown().unwrap();
            }
            "tokio-mpsc" => channel_trips!(
                tokio::sync::mpsc::channel::<u64>(CAPACITY),
                |s, v| s.send(v).await.unwrap(),
                |r| r.recv().await
            ),
            "flume" => channel_trips!(
                flume::bounded::<u64>(CAPACITY),
                |s, v| s.send_async(v).await.unwrap(),
                |r| r.recv_async().await.ok()
            ),
            "kanal" => channel_trips!(
                kanal::bounded_async::<u64>(CAPACITY),
                |s, v| s.send(v).await.unwrap(),
                |r| r.recv().await.ok()
            ),
            "crossfire" => channel_trips!(
                crossfire::spsc::bounded_async::<u64>(CAPACITY),
                |s, v| s.send(v).await.unwrap(),
                |r| r.recv().await.ok()
            ),
            other => panic!("unknown implementation {other}"),
        }
    });
}
