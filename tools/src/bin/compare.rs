//! The comparison driver: implementations measured as fresh processes, interleaved in shuffled
//! rounds, each trial bracketed by probes of the cache-line floor, results split by host state.
//!
//! Why not criterion: this machine's two vCPUs move between a "near" placement (a cache-line round
//! trip well under 100 ns) and a "far" one (over 400 ns) every few seconds to minutes. Criterion
//! measures one implementation after another in one process, so two of its figures may come from
//! two host states. Here every trial is its own process (no warm state carried over), the order of
//! (implementation, scenario) trials is shuffled in every round, and each trial probes the floor
//! before and after: a trial is "near" or "far" only if both probes agree, else it is dropped. The
//! trials time themselves (one number per process, no statistics inside), and this parent reports,
//! per host state, the median, the inter-quartile range and the ratio of medians with a bootstrap
//! interval. Criterion stays the tool for the developer's loop (`cargo bench`).
//!
//! ```text
//! cargo run --release -p ringmq-tools --bin compare -- [--rounds 15] [--scenarios u64-1,rtt]
//!     [--impls ringmq,disruptor] [--bin LABEL=PATH] [--out FILE] [--svg PREFIX] [--seed N]
//!     [--ring 65536] [--from A.trials,B.trials]
//! ```
//! `--out FILE` writes the tables and `FILE.trials` (one line per trial: scenario, label, value,
//! floor before, floor after); `--svg PREFIX` writes `PREFIX-near.svg` and `PREFIX-far.svg`, a
//! strip chart of every trial per host state.
//! `--bin before=/path/to/compare` adds another build of this driver (say, of an older commit):
//! its `ringmq` trials are reported as `before`, interleaved with the rest.

use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_utils::CachePadded;
use disruptor::ProcessorSettings;
use ringmq_tools::{cache_line_floor, pin, DisruptorYield};

/// The ring size of every queue in a trial: `--ring` (default 65,536, the criterion suite's;
/// with 1,024 the `disruptor` crate's producer, which busy-spins on a full ring whatever the
/// wait strategy, holds the core its consumers need in the 1P-3C trials, one time slice per lap:
/// 0.25 M events/s).
static RING_SIZE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(65536);

fn ring() -> usize {
    RING_SIZE.load(Ordering::Relaxed)
}

/// Every scenario; whether a higher figure is better, and its unit.
const SCENARIOS: [(&str, bool, &str); 11] = [
    ("u64-1", true, "M events/s"),
    ("u64-10", true, "M events/s"),
    ("u64-100", true, "M events/s"),
    ("b64-1", true, "M events/s"),
    ("rtt", false, "ns"),
    ("oneway", false, "ns"),
    ("3p1c-1", true, "M events/s"),
    ("pipeline3-1", true, "M events/s"),
    ("multicast3-1", true, "M events/s"),
    ("diamond-1", true, "M events/s"),
    ("pool2-1", true, "M events/s"),
];
const IMPLS: [&str; 4] = ["ringmq", "disruptor", "rtrb", "crossbeam"];

fn supported(imp: &str, scenario: &str) -> bool {
    let graph = ["pipeline3-1", "multicast3-1", "diamond-1"].contains(&scenario);
    match imp {
        "rtrb" => !graph && scenario != "3p1c-1" && scenario != "pool2-1",
        "crossbeam" => !graph,
        // The `disruptor` crate has no work pool (each handler sees every event).
        "disruptor" => scenario != "pool2-1",
        _ => true,
    }
}

// ---------------------------------------------------------------------------------------------
// The child: probe, run one scenario, probe.

/// A 64-byte event.
#[derive(Clone, Copy, Default)]
struct Big([u64; 8]);

/// 1P-1C: the producer (core 0) publishes `events` in bursts of `burst`; the consumer (core 1)
/// sums them and checks the count. Returns M events/s.
fn unicast<T: Copy + Default + Send + Sync + 'static>(
    imp: &str,
    events: u64,
    burst: u64,
    make: fn(u64) -> T,
    value: fn(&T) -> u64,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let want: u64 = (0..events).sum();
    let d = done.clone();
    let start;
    match imp {
        "ringmq" => {
            let mut b =
                ringmq::Builder::single_producer(ring(), T::default, ringmq::BusySpin).unwrap();
            let mut sum = 0u64;
            b.add(
                ringmq::Consumer::new("sink", move |e: &T, seq, _| {
                    sum = sum.wrapping_add(value(e));
                    if seq as u64 + 1 == events {
                        d.store(sum, Ordering::Release);
                    }
                })
                .pin_to_core(1),
            );
            let (mut p, q) = b.build().unwrap();
            pin(0);
            start = Instant::now();
            let mut i = 0;
            while i < events {
                if burst == 1 {
                    p.publish(|e| *e = make(i)).unwrap();
                } else {
                    p.publish_batch(burst as usize, |e, k| *e = make(i + k as u64))
                        .unwrap();
                }
                i += burst;
            }
            wait_done(&done);
            let t = start.elapsed();
            drop(p);
            q.shutdown().unwrap();
            check(&done, want);
            events as f64 / t.as_secs_f64() / 1e6
        }
        "disruptor" => {
            let mut sum = 0u64;
            let mut p = disruptor::build_single_producer(ring(), T::default, disruptor::BusySpin)
                .pin_at_core(1)
                .handle_events_with(move |e: &T, seq, _eob| {
                    sum = sum.wrapping_add(value(e));
                    if seq as u64 + 1 == events {
                        d.store(sum, Ordering::Release);
                    }
                })
                .build();
            pin(0);
            start = Instant::now();
            let mut i = 0;
            while i < events {
                if burst == 1 {
                    disruptor::Producer::publish(&mut p, |e| *e = make(i));
                } else {
                    disruptor::Producer::batch_publish(&mut p, burst as usize, |it| {
                        for (k, e) in it.enumerate() {
                            *e = make(i + k as u64);
                        }
                    });
                }
                i += burst;
            }
            wait_done(&done);
            let t = start.elapsed();
            drop(p);
            check(&done, want);
            events as f64 / t.as_secs_f64() / 1e6
        }
        "rtrb" => {
            let (mut tx, mut rx) = rtrb::RingBuffer::<T>::new(ring());
            let consumer = std::thread::spawn(move || {
                pin(1);
                let (mut sum, mut n) = (0u64, 0u64);
                while n < events {
                    let k = rx.slots();
                    if k == 0 {
                        std::hint::spin_loop();
                        continue;
                    }
                    let chunk = rx.read_chunk(k).unwrap();
                    for e in chunk.into_iter() {
                        sum = sum.wrapping_add(value(&e));
                    }
                    n += k as u64;
                }
                d.store(sum, Ordering::Release);
            });
            pin(0);
            start = Instant::now();
            let mut i = 0;
            while i < events {
                for k in 0..burst {
                    let mut v = make(i + k);
                    while let Err(rtrb::PushError::Full(back)) = tx.push(v) {
                        v = back;
                        std::hint::spin_loop();
                    }
                }
                i += burst;
            }
            consumer.join().unwrap();
            let t = start.elapsed();
            check(&done, want);
            events as f64 / t.as_secs_f64() / 1e6
        }
        "crossbeam" => {
            let (tx, rx) = crossbeam_channel::bounded::<T>(ring());
            let consumer = std::thread::spawn(move || {
                pin(1);
                let mut sum = 0u64;
                for _ in 0..events {
                    sum = sum.wrapping_add(value(&rx.recv().unwrap()));
                }
                d.store(sum, Ordering::Release);
            });
            pin(0);
            start = Instant::now();
            for i in 0..events {
                tx.send(make(i)).unwrap();
            }
            consumer.join().unwrap();
            let t = start.elapsed();
            check(&done, want);
            events as f64 / t.as_secs_f64() / 1e6
        }
        other => panic!("unknown implementation {other}"),
    }
}

fn wait_done(done: &AtomicU64) {
    let t = Instant::now();
    while done.load(Ordering::Acquire) == 0 {
        assert!(t.elapsed().as_secs() < 120, "the consumer never finished");
        std::hint::spin_loop();
    }
}

fn check(done: &AtomicU64, want: u64) {
    assert_eq!(
        done.load(Ordering::Acquire),
        want,
        "the consumer's sum is wrong"
    );
}

/// Round trip: `n` pings from core 0 through one ring and back through another (an echo on core
/// 1). Returns the median, over bursts of 1000, of the mean round trip, ns.
fn rtt(imp: &str, n: u64) -> f64 {
    let mut bursts = Vec::new();
    let bursts_of = 1000;
    match imp {
        "ringmq" => {
            let mut back =
                ringmq::Builder::single_producer(ring(), || 0u64, ringmq::BusySpin).unwrap();
            let id = back.add_poller(&[]).unwrap();
            let (back_tx, _back_q) = back.build().unwrap();
            let mut back_rx = id;
            let mut fwd =
                ringmq::Builder::single_producer(ring(), || 0u64, ringmq::BusySpin).unwrap();
            let fid = fwd.add_poller(&[]).unwrap();
            let (mut tx, _fwd_q) = fwd.build().unwrap();
            let mut fwd_rx = fid;
            let echo = std::thread::spawn(move || {
                pin(1);
                let mut back_tx = back_tx;
                let mut got = 0;
                while got < n {
                    let state = fwd_rx.poll(|v, _, _| {
                        back_tx.publish(|e| *e = *v).unwrap();
                        got += 1;
                        true
                    });
                    // Every implementation's idle look pauses the same way (rtrb's below).
                    if !matches!(state, ringmq::PollState::Processed(_)) {
                        std::hint::spin_loop();
                    }
                }
            });
            pin(0);
            for b in 0..n / bursts_of {
                let t = Instant::now();
                for i in b * bursts_of..(b + 1) * bursts_of {
                    tx.publish(|e| *e = i).unwrap();
                    let mut seen = false;
                    while !seen {
                        back_rx.poll(|v, _, _| {
                            assert_eq!(*v, i);
                            seen = true;
                            true
                        });
                        if !seen {
                            std::hint::spin_loop();
                        }
                    }
                }
                bursts.push(t.elapsed().as_nanos() as f64 / bursts_of as f64);
            }
            echo.join().unwrap();
        }
        "disruptor" => {
            let (mut back_rx, back) =
                disruptor::build_single_producer(ring(), || 0u64, disruptor::BusySpin)
                    .new_event_poller();
            let back_tx = back.build();
            let (mut fwd_rx, fwd) =
                disruptor::build_single_producer(ring(), || 0u64, disruptor::BusySpin)
                    .new_event_poller();
            let mut tx = fwd.build();
            let echo = std::thread::spawn(move || {
                pin(1);
                let mut back_tx = back_tx;
                let mut got = 0;
                while got < n {
                    if let Ok(mut events) = fwd_rx.poll() {
                        for v in &mut events {
                            let v = *v;
                            disruptor::Producer::publish(&mut back_tx, |e| *e = v);
                            got += 1;
                        }
                    } else {
                        std::hint::spin_loop();
                    }
                }
            });
            pin(0);
            for b in 0..n / bursts_of {
                let t = Instant::now();
                for i in b * bursts_of..(b + 1) * bursts_of {
                    disruptor::Producer::publish(&mut tx, |e| *e = i);
                    let mut seen = false;
                    while !seen {
                        if let Ok(mut events) = back_rx.poll() {
                            for v in &mut events {
                                assert_eq!(*v, i);
                                seen = true;
                            }
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                }
                bursts.push(t.elapsed().as_nanos() as f64 / bursts_of as f64);
            }
            echo.join().unwrap();
        }
        "rtrb" => {
            let (mut tx, mut fwd_rx) = rtrb::RingBuffer::<u64>::new(ring());
            let (mut back_tx, mut back_rx) = rtrb::RingBuffer::<u64>::new(ring());
            let echo = std::thread::spawn(move || {
                pin(1);
                for _ in 0..n {
                    let v = loop {
                        if let Ok(v) = fwd_rx.pop() {
                            break v;
                        }
                        std::hint::spin_loop();
                    };
                    back_tx.push(v).unwrap();
                }
            });
            pin(0);
            for b in 0..n / bursts_of {
                let t = Instant::now();
                for i in b * bursts_of..(b + 1) * bursts_of {
                    tx.push(i).unwrap();
                    loop {
                        if let Ok(v) = back_rx.pop() {
                            assert_eq!(v, i);
                            break;
                        }
                        std::hint::spin_loop();
                    }
                }
                bursts.push(t.elapsed().as_nanos() as f64 / bursts_of as f64);
            }
            echo.join().unwrap();
        }
        "crossbeam" => {
            let (tx, fwd_rx) = crossbeam_channel::bounded::<u64>(ring());
            let (back_tx, back_rx) = crossbeam_channel::bounded::<u64>(ring());
            let echo = std::thread::spawn(move || {
                pin(1);
                for _ in 0..n {
                    back_tx.send(fwd_rx.recv().unwrap()).unwrap();
                }
            });
            pin(0);
            for b in 0..n / bursts_of {
                let t = Instant::now();
                for i in b * bursts_of..(b + 1) * bursts_of {
                    tx.send(i).unwrap();
                    assert_eq!(back_rx.recv().unwrap(), i);
                }
                bursts.push(t.elapsed().as_nanos() as f64 / bursts_of as f64);
            }
            echo.join().unwrap();
        }
        other => panic!("unknown implementation {other}"),
    }
    median(&mut bursts)
}

/// 3P-1C, one event per publish, everyone yielding (four threads on two cores). M events/s.
fn three_producers(imp: &str, per: u64) -> f64 {
    const P: u64 = 3;
    let done = Arc::new(AtomicU64::new(0));
    let go = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let total = P * per;
    let spawn = |mut f: Box<dyn FnMut(u64) + Send>, go: Arc<AtomicBool>| {
        std::thread::spawn(move || {
            while !go.load(Ordering::Acquire) {
                std::thread::yield_now();
            }
            for i in 0..per {
                f(i);
            }
        })
    };
    let (threads, finish): (Vec<_>, Box<dyn FnOnce()>) = match imp {
        "ringmq" => {
            let mut b = ringmq::Builder::multi_producer(ring(), || 0u64, ringmq::Yielding).unwrap();
            let mut n = 0u64;
            b.add(ringmq::Consumer::new("sink", move |_: &u64, _, _| {
                n += 1;
                if n == total {
                    d.store(n, Ordering::Release);
                }
            }));
            let (p, q) = b.build().unwrap();
            let threads = (0..P)
                .map(|_| {
                    let mut p = p.clone();
                    spawn(
                        Box::new(move |i| {
                            p.publish(|e| *e = i).unwrap();
                        }),
                        go.clone(),
                    )
                })
                .collect();
            drop(p);
            (threads, Box::new(move || drop(q.shutdown().unwrap())))
        }
        "disruptor" => {
            let mut n = 0u64;
            let p = disruptor::build_multi_producer(ring(), || 0u64, DisruptorYield)
                .handle_events_with(move |_: &u64, _, _| {
                    n += 1;
                    if n == total {
                        d.store(n, Ordering::Release);
                    }
                })
                .build();
            let threads = (0..P)
                .map(|_| {
                    let mut p = p.clone();
                    spawn(
                        Box::new(move |i| {
                            disruptor::Producer::publish(&mut p, |e| *e = i);
                        }),
                        go.clone(),
                    )
                })
                .collect();
            (threads, Box::new(move || drop(p)))
        }
        "crossbeam" => {
            let (tx, rx) = crossbeam_channel::bounded::<u64>(ring());
            let consumer = std::thread::spawn(move || {
                for n in 1..=total {
                    rx.recv().unwrap();
                    if n == total {
                        d.store(n, Ordering::Release);
                    }
                }
            });
            let threads = (0..P)
                .map(|_| {
                    let tx = tx.clone();
                    spawn(Box::new(move |i| tx.send(i).unwrap()), go.clone())
                })
                .collect();
            (threads, Box::new(move || consumer.join().unwrap()))
        }
        other => panic!("unknown implementation {other}"),
    };
    let start = Instant::now();
    go.store(true, Ordering::Release);
    let t0 = Instant::now();
    while done.load(Ordering::Acquire) != total {
        assert!(t0.elapsed().as_secs() < 120, "3p1c never finished");
        std::thread::yield_now();
    }
    let t = start.elapsed();
    for t in threads {
        t.join().unwrap();
    }
    finish();
    total as f64 / t.as_secs_f64() / 1e6
}

/// A pipeline of three stages after one producer, one event per publish, everyone yielding
/// (four threads on two cores). M events/s.
fn pipeline3(imp: &str, events: u64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let d = done.clone();
    let start;
    match imp {
        "ringmq" => {
            let mut b =
                ringmq::Builder::single_producer(ring(), || 0u64, ringmq::Yielding).unwrap();
            let a = b.add(ringmq::Consumer::new("a", |_: &u64, _, _| {}));
            let m = b
                .add_after(&[a], ringmq::Consumer::new("b", |_: &u64, _, _| {}))
                .unwrap();
            b.add_after(
                &[m],
                ringmq::Consumer::new("c", move |_: &u64, seq, _| {
                    if seq as u64 + 1 == events {
                        d.store(1, Ordering::Release);
                    }
                }),
            )
            .unwrap();
            let (mut p, q) = b.build().unwrap();
            start = Instant::now();
            for i in 0..events {
                p.publish(|e| *e = i).unwrap();
            }
            wait_yielding(&done);
            let t = start.elapsed();
            drop(p);
            q.shutdown().unwrap();
            events as f64 / t.as_secs_f64() / 1e6
        }
        "disruptor" => {
            let mut p = disruptor::build_single_producer(ring(), || 0u64, DisruptorYield)
                .handle_events_with(|_: &u64, _, _| {})
                .and_then()
                .handle_events_with(|_: &u64, _, _| {})
                .and_then()
                .handle_events_with(move |_: &u64, seq, _| {
                    if seq as u64 + 1 == events {
                        d.store(1, Ordering::Release);
                    }
                })
                .build();
            start = Instant::now();
            for i in 0..events {
                disruptor::Producer::publish(&mut p, |e| *e = i);
            }
            wait_yielding(&done);
            let t = start.elapsed();
            drop(p);
            events as f64 / t.as_secs_f64() / 1e6
        }
        other => panic!("unknown implementation {other}"),
    }
}

/// The graph scenarios' shapes: three consumers after one producer, as a pipeline (a -> b -> c),
/// a multicast (a, b, c each after the producer) or a diamond (a and b, then c after both).
#[derive(Clone, Copy, PartialEq)]
enum Shape {
    Multicast,
    Diamond,
}

/// 1P-3C as `shape`, one event per publish, everyone yielding (four threads on two cores). Each
/// consumer counts its events; the trial ends when all three saw every one. M events/s.
fn graph3(imp: &str, shape: Shape, events: u64) -> f64 {
    let counts: Arc<Vec<CachePadded<AtomicU64>>> = Arc::new(
        (0..3)
            .map(|_| CachePadded::new(AtomicU64::new(0)))
            .collect(),
    );
    let counter = |k: usize| {
        let counts = counts.clone();
        let mut n = 0u64;
        let mut sum = 0u64;
        move |e: &u64, seq: i64| {
            assert_eq!(*e, seq as u64, "consumer {k} got the wrong event");
            n += 1;
            sum = sum.wrapping_add(*e);
            if n == events {
                counts[k].store(sum, Ordering::Release);
            }
        }
    };
    let want: u64 = (0..events).sum();
    let all_done = || counts.iter().all(|c| c.load(Ordering::Acquire) == want);
    let start;
    match imp {
        "ringmq" => {
            let mut b =
                ringmq::Builder::single_producer(ring(), || 0u64, ringmq::Yielding).unwrap();
            let (mut fa, mut fb, mut fc) = (counter(0), counter(1), counter(2));
            let a = b.add(ringmq::Consumer::new("a", move |e: &u64, s, _| fa(e, s)));
            let bb = b.add(ringmq::Consumer::new("b", move |e: &u64, s, _| fb(e, s)));
            let c = ringmq::Consumer::new("c", move |e: &u64, s, _| fc(e, s));
            match shape {
                Shape::Multicast => b.add(c),
                Shape::Diamond => b.add_after(&[a, bb], c).unwrap(),
            };
            let (mut p, q) = b.build().unwrap();
            start = Instant::now();
            for i in 0..events {
                p.publish(|e| *e = i).unwrap();
            }
            wait_until(&all_done);
            let t = start.elapsed();
            drop(p);
            q.shutdown().unwrap();
            events as f64 / t.as_secs_f64() / 1e6
        }
        "disruptor" => {
            let (mut fa, mut fb, mut fc) = (counter(0), counter(1), counter(2));
            let builder = disruptor::build_single_producer(ring(), || 0u64, DisruptorYield)
                .handle_events_with(move |e: &u64, s, _| fa(e, s))
                .handle_events_with(move |e: &u64, s, _| fb(e, s));
            fn run<P: disruptor::Producer<u64>>(
                mut p: P,
                events: u64,
                done: &dyn Fn() -> bool,
            ) -> f64 {
                let start = Instant::now();
                for i in 0..events {
                    p.publish(|e| *e = i);
                }
                wait_until(done);
                let t = start.elapsed();
                drop(p);
                events as f64 / t.as_secs_f64() / 1e6
            }
            match shape {
                Shape::Multicast => run(
                    builder
                        .handle_events_with(move |e: &u64, s, _| fc(e, s))
                        .build(),
                    events,
                    &all_done,
                ),
                Shape::Diamond => run(
                    builder
                        .and_then()
                        .handle_events_with(move |e: &u64, s, _| fc(e, s))
                        .build(),
                    events,
                    &all_done,
                ),
            }
        }
        other => panic!("unknown implementation {other}"),
    }
}

/// 1P-2W: a work pool (each event to exactly one of two workers), one event per publish,
/// yielding (three threads on two cores); crossbeam-channel as a work queue (two receivers of one
/// bounded channel). The workers' counts and sums must add up to every event once. M events/s.
fn pool2(imp: &str, events: u64) -> f64 {
    let seen: Arc<Vec<CachePadded<AtomicU64>>> = Arc::new(
        (0..4)
            .map(|_| CachePadded::new(AtomicU64::new(0)))
            .collect(),
    );
    let want: u64 = (0..events).sum();
    let counted = || seen[0].load(Ordering::Acquire) + seen[1].load(Ordering::Acquire);
    let start;
    let t = match imp {
        "ringmq" => {
            let mut b =
                ringmq::Builder::single_producer(ring(), || 0u64, ringmq::Yielding).unwrap();
            let s = seen.clone();
            b.add_pool(
                &[],
                ringmq::WorkPool::new("pool", 2, move |w| {
                    let s = s.clone();
                    ringmq::Consumer::new(format!("w{w}"), move |e: &u64, _, _| {
                        // Relaxed: read after the counts, which are Release.
                        s[2 + w].fetch_add(*e, Ordering::Relaxed);
                        s[w].fetch_add(1, Ordering::Release);
                    })
                }),
            )
            .unwrap();
            let (mut p, q) = b.build().unwrap();
            start = Instant::now();
            for i in 0..events {
                p.publish(|e| *e = i).unwrap();
            }
            wait_until(&|| counted() == events);
            let t = start.elapsed();
            drop(p);
            q.shutdown().unwrap();
            t
        }
        "crossbeam" => {
            let (tx, rx) = crossbeam_channel::bounded::<u64>(ring());
            let workers: Vec<_> = (0..2)
                .map(|w| {
                    let (rx, s) = (rx.clone(), seen.clone());
                    std::thread::spawn(move || {
                        for e in rx {
                            s[2 + w].fetch_add(e, Ordering::Relaxed);
                            s[w].fetch_add(1, Ordering::Release);
                        }
                    })
                })
                .collect();
            start = Instant::now();
            for i in 0..events {
                tx.send(i).unwrap();
            }
            wait_until(&|| counted() == events);
            let t = start.elapsed();
            drop(tx);
            for w in workers {
                w.join().unwrap();
            }
            t
        }
        other => panic!("unknown implementation {other}"),
    };
    assert_eq!(counted(), events, "an event was lost or handled twice");
    let sum = seen[2].load(Ordering::Relaxed) + seen[3].load(Ordering::Relaxed);
    assert_eq!(sum, want, "the workers' sums do not add up");
    events as f64 / t.as_secs_f64() / 1e6
}

/// One-way latency below saturation: the producer (core 0) publishes a timestamp every 20 us
/// (50k events/s, spinning between), the consumer (core 1) busy-spins and records now minus the
/// timestamp. Returns the median, ns. Both sides read one `Instant` base (the TSC, synchronized
/// across cores on this machine's CPUs).
fn oneway(imp: &str, events: u64) -> f64 {
    let base = Instant::now();
    let now = move || base.elapsed().as_nanos() as u64;
    let lat = Arc::new(std::sync::Mutex::new(Vec::with_capacity(events as usize)));
    let record = {
        let lat = lat.clone();
        let mut mine = Vec::with_capacity(events as usize);
        move |stamp: u64, last: bool| {
            mine.push((now() - stamp) as f64);
            if last {
                *lat.lock().unwrap() = std::mem::take(&mut mine);
            }
        }
    };
    let pace = move |i: u64| {
        let at = (i + 1) * 20_000;
        while now() < at {
            std::hint::spin_loop();
        }
    };
    let finished = || !lat.lock().unwrap().is_empty();
    match imp {
        "ringmq" => {
            let mut b =
                ringmq::Builder::single_producer(ring(), || 0u64, ringmq::BusySpin).unwrap();
            let mut record = record;
            b.add(
                ringmq::Consumer::new("sink", move |e: &u64, seq, _| {
                    record(*e, seq as u64 + 1 == events)
                })
                .pin_to_core(1),
            );
            let (mut p, q) = b.build().unwrap();
            pin(0);
            for i in 0..events {
                pace(i);
                p.publish(|e| *e = now()).unwrap();
            }
            wait_until(&finished);
            drop(p);
            q.shutdown().unwrap();
        }
        "disruptor" => {
            let mut record = record;
            let mut p = disruptor::build_single_producer(ring(), || 0u64, disruptor::BusySpin)
                .pin_at_core(1)
                .handle_events_with(move |e: &u64, seq, _| record(*e, seq as u64 + 1 == events))
                .build();
            pin(0);
            for i in 0..events {
                pace(i);
                disruptor::Producer::publish(&mut p, |e| *e = now());
            }
            wait_until(&finished);
            drop(p);
        }
        "rtrb" => {
            let (mut tx, mut rx) = rtrb::RingBuffer::<u64>::new(ring());
            spin_pair(
                events,
                move || tx.push(now()).unwrap(),
                move || rx.pop().ok(),
                record,
                pace,
            );
        }
        "crossbeam" => {
            let (tx, rx) = crossbeam_channel::bounded::<u64>(ring());
            // Spinning on try_recv, as the others spin: recv() would park the thread.
            spin_pair(
                events,
                move || tx.send(now()).unwrap(),
                move || rx.try_recv().ok(),
                record,
                pace,
            );
        }
        other => panic!("unknown implementation {other}"),
    }
    let mut v = std::mem::take(&mut *lat.lock().unwrap());
    assert_eq!(v.len() as u64, events, "the consumer missed events");
    median(&mut v)
}

/// One-way latency for a queue without consumer threads of its own: a consumer thread on core 1
/// spins on `pop` (with `spin_loop` between empty looks) and records each value; this thread,
/// on core 0, paces and pushes.
fn spin_pair(
    events: u64,
    mut push: impl FnMut(),
    mut pop: impl FnMut() -> Option<u64> + Send + 'static,
    mut record: impl FnMut(u64, bool) + Send + 'static,
    pace: impl Fn(u64),
) {
    let consumer = std::thread::spawn(move || {
        pin(1);
        for n in 0..events {
            let v = loop {
                if let Some(v) = pop() {
                    break v;
                }
                std::hint::spin_loop();
            };
            record(v, n + 1 == events);
        }
    });
    pin(0);
    for i in 0..events {
        pace(i);
        push();
    }
    consumer.join().unwrap();
}

fn wait_until(done: &dyn Fn() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed().as_secs() < 120, "the consumers never finished");
        std::thread::yield_now();
    }
}

fn wait_yielding(done: &AtomicU64) {
    let t = Instant::now();
    while done.load(Ordering::Acquire) == 0 {
        assert!(t.elapsed().as_secs() < 120, "the last stage never finished");
        std::thread::yield_now();
    }
}

fn trial(scenario: &str, imp: &str) -> f64 {
    match scenario {
        "u64-1" => unicast(imp, 2_000_000, 1, |i| i, |e| *e),
        "u64-10" => unicast(imp, 10_000_000, 10, |i| i, |e| *e),
        "u64-100" => unicast(imp, 20_000_000, 100, |i| i, |e| *e),
        "b64-1" => unicast(imp, 2_000_000, 1, |i| Big([i; 8]), |e| e.0[7]),
        "rtt" => rtt(imp, 100_000),
        "3p1c-1" => three_producers(imp, 300_000),
        "pipeline3-1" => pipeline3(imp, 500_000),
        "multicast3-1" => graph3(imp, Shape::Multicast, 500_000),
        "diamond-1" => graph3(imp, Shape::Diamond, 500_000),
        "pool2-1" => pool2(imp, 500_000),
        "oneway" => oneway(imp, 50_000),
        other => panic!("unknown scenario {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The parent: rounds, classification, statistics.

fn median(v: &mut [f64]) -> f64 {
    quantile(v, 0.5)
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return f64::NAN;
    }
    let x = q * (v.len() - 1) as f64;
    let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (x - lo as f64)
}

/// xorshift64*: shuffles and bootstrap, reproducible from the seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The 95% bootstrap interval of median(a) / median(b).
fn bootstrap_ratio(a: &[f64], b: &[f64], rng: &mut Rng) -> (f64, f64) {
    let mut ratios: Vec<f64> = (0..2000)
        .map(|_| {
            let mut ra: Vec<f64> = (0..a.len()).map(|_| a[rng.below(a.len())]).collect();
            let mut rb: Vec<f64> = (0..b.len()).map(|_| b[rng.below(b.len())]).collect();
            median(&mut ra) / median(&mut rb)
        })
        .collect();
    (quantile(&mut ratios, 0.025), quantile(&mut ratios, 0.975))
}

#[derive(Clone)]
struct Trial {
    scenario: String,
    label: String,
    value: f64,
    floors: (f64, f64),
}

fn state(floors: (f64, f64)) -> Option<&'static str> {
    let (a, b) = floors;
    if a < 200.0 && b < 200.0 {
        Some("near")
    } else if a > 300.0 && b > 300.0 {
        Some("far")
    } else {
        None
    }
}

/// One SVG strip chart per host state: a row per scenario, a lane per implementation, a dot per
/// trial at its speed relative to ringmq's median in that scenario and state (log scale; right is
/// better for every scenario: for latencies the ratio is inverted). The spread of the dots is the
/// spread of the trials; the vertical line is ringmq's median.
fn svg(trials: &[Trial], st: &str, scenarios: &[(&str, bool, &str)], labels: &[String]) -> String {
    const COLORS: [&str; 6] = [
        "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
    ];
    let (left, width, lane, gap) = (120.0, 560.0, 9.0, 14.0);
    let x = |r: f64| left + (r.log2().clamp(-5.0, 5.0) + 5.0) / 10.0 * width;
    let rows: Vec<&(&str, bool, &str)> = scenarios
        .iter()
        .filter(|(sc, _, _)| {
            trials
                .iter()
                .any(|t| t.scenario == *sc && state(t.floors) == Some(st))
        })
        .collect();
    let row_h = lane * labels.len() as f64 + gap;
    let height = 40.0 + row_h * rows.len() as f64 + 30.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" \
         fill=\"white\"/>\n<text x=\"{left}\" y=\"14\">{st}: each trial's speed relative to \
         ringmq's median (right is faster; log scale)</text>\n",
        w = left + width + 20.0
    );
    for tick in [-5i32, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5] {
        let r = 2f64.powi(tick);
        let label = if tick < 0 {
            format!("1/{}", 1 << -tick)
        } else {
            format!("{}", 1 << tick)
        };
        let stroke = if tick == 0 { "#000" } else { "#ddd" };
        out += &format!(
            "<line x1=\"{0}\" x2=\"{0}\" y1=\"24\" y2=\"{1}\" stroke=\"{stroke}\"/>\n\
             <text x=\"{0}\" y=\"{2}\" text-anchor=\"middle\">{label}x</text>\n",
            x(r),
            height - 28.0,
            height - 16.0
        );
    }
    let mut rng = Rng(7);
    for (row, (scenario, higher, _)) in rows.iter().enumerate() {
        let top = 30.0 + row as f64 * row_h;
        out += &format!(
            "<text x=\"4\" y=\"{}\">{scenario}</text>\n",
            top + row_h / 2.0
        );
        let mut ours: Vec<f64> = trials
            .iter()
            .filter(|t| {
                t.scenario == *scenario && t.label == "ringmq" && state(t.floors) == Some(st)
            })
            .map(|t| t.value)
            .collect();
        let m = median(&mut ours);
        for (k, label) in labels.iter().enumerate() {
            for t in trials.iter().filter(|t| {
                t.scenario == *scenario && &t.label == label && state(t.floors) == Some(st)
            }) {
                let r = if *higher { t.value / m } else { m / t.value };
                let jitter = (rng.next() % 100) as f64 / 100.0 * (lane - 3.0);
                out += &format!(
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.2\" fill=\"{}\" \
                     fill-opacity=\"0.7\"/>\n",
                    x(r),
                    top + k as f64 * lane + 1.5 + jitter,
                    COLORS[k % COLORS.len()]
                );
            }
        }
    }
    for (k, label) in labels.iter().enumerate() {
        out += &format!(
            "<circle cx=\"{0}\" cy=\"{1}\" r=\"3\" fill=\"{2}\"/><text x=\"{3}\" \
             y=\"{4}\">{label}</text>\n",
            left + 90.0 * k as f64,
            height - 5.0,
            COLORS[k % COLORS.len()],
            left + 90.0 * k as f64 + 6.0,
            height - 1.5
        );
    }
    out + "</svg>\n"
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--trial") {
        let (scenario, imp) = (&args[2], &args[3]);
        if let Some(n) = args.get(4) {
            RING_SIZE.store(n.parse().expect("a ring size"), Ordering::Relaxed);
        }
        let before = cache_line_floor();
        let value = trial(scenario, imp);
        let after = cache_line_floor();
        println!("RESULT {value} {before} {after}");
        return;
    }
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let rounds: usize = opt("--rounds").map_or(15, |r| r.parse().unwrap());
    let ring_size = opt("--ring").unwrap_or_else(|| ring().to_string());
    let seed: u64 = opt("--seed").map_or(0x5EED_1234, |s| s.parse().unwrap());
    let scenarios: Vec<String> = opt("--scenarios").map_or_else(
        || SCENARIOS.iter().map(|s| s.0.to_string()).collect(),
        |s| s.split(',').map(str::to_string).collect(),
    );
    let impls: Vec<String> = opt("--impls").map_or_else(
        || IMPLS.iter().map(|s| s.to_string()).collect(),
        |s| s.split(',').map(str::to_string).collect(),
    );
    // (label, binary, implementation inside it)
    let me = std::env::current_exe().unwrap();
    let mut runners: Vec<(String, std::path::PathBuf, String)> = impls
        .iter()
        .map(|i| (i.clone(), me.clone(), i.clone()))
        .collect();
    for (i, a) in args.iter().enumerate() {
        if a == "--bin" {
            let (label, path) = args[i + 1].split_once('=').expect("--bin LABEL=PATH");
            runners.push((label.to_string(), path.into(), "ringmq".to_string()));
        }
    }
    let mut rng = Rng(seed | 1);
    let mut trials: Vec<Trial> = Vec::new();
    // `--from A.trials,B.trials`: no trials run; the report is made from trials saved by earlier
    // runs (of the same builds), for instance to gather more trials of a rare placement.
    let from = opt("--from");
    for file in from.iter().flat_map(|f| f.split(',')) {
        let text = std::fs::read_to_string(file).expect("read a trials file");
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let num = |i: usize| f[i].parse::<f64>().expect("a number in a trials file");
            trials.push(Trial {
                scenario: f[0].to_string(),
                label: f[1].to_string(),
                value: num(2),
                floors: (num(3), num(4)),
            });
        }
    }
    let rounds = if from.is_some() { 0 } else { rounds };
    let started = Instant::now();
    for round in 0..rounds {
        let mut order: Vec<(String, usize)> = scenarios
            .iter()
            .flat_map(|s| (0..runners.len()).map(move |r| (s.clone(), r)))
            .filter(|(s, r)| supported(&runners[*r].2, s))
            .collect();
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        for (scenario, r) in order {
            let (label, bin, imp) = &runners[r];
            let out = Command::new(bin)
                .args(["--trial", &scenario, imp, &ring_size])
                .output()
                .expect("run a trial");
            let text = String::from_utf8_lossy(&out.stdout);
            let Some(line) = text.lines().find(|l| l.starts_with("RESULT ")) else {
                eprintln!(
                    "compare: {label} {scenario} failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                std::process::exit(1);
            };
            let f: Vec<f64> = line[7..].split(' ').map(|x| x.parse().unwrap()).collect();
            trials.push(Trial {
                scenario: scenario.clone(),
                label: label.clone(),
                value: f[0],
                floors: (f[1], f[2]),
            });
        }
        eprintln!(
            "compare: round {}/{rounds} done ({:.0?})",
            round + 1,
            started.elapsed()
        );
    }
    let mut report = String::new();
    let dropped = trials.iter().filter(|t| state(t.floors).is_none()).count();
    let source = match &from {
        Some(files) => format!("read from {files}"),
        None => format!("in {rounds} shuffled rounds, ring {ring_size}, seed {seed}"),
    };
    report += &format!(
        "{} trials {source} ({dropped} dropped: the floor moved during the trial)\n",
        trials.len()
    );
    for st in ["near", "far"] {
        let here: Vec<&Trial> = trials
            .iter()
            .filter(|t| state(t.floors) == Some(st))
            .collect();
        if here.is_empty() {
            continue;
        }
        let mut floors: Vec<f64> = here.iter().flat_map(|t| [t.floors.0, t.floors.1]).collect();
        report += &format!(
            "\n### {st} (cache-line round trip median {:.0} ns over {} probes)\n\n",
            median(&mut floors),
            floors.len()
        );
        report += "| scenario | implementation | trials | median | IQR | ringmq / it (95% CI) |\n|---|---|---|---|---|---|\n";
        for (scenario, higher, unit) in SCENARIOS {
            if !scenarios.iter().any(|s| s == scenario) {
                continue;
            }
            let values = |label: &str| -> Vec<f64> {
                here.iter()
                    .filter(|t| t.scenario == scenario && t.label == label)
                    .map(|t| t.value)
                    .collect()
            };
            let ours = values("ringmq");
            for (label, _, _) in &runners {
                let mut v = values(label);
                if v.is_empty() {
                    continue;
                }
                let m = median(&mut v);
                let (q1, q3) = (quantile(&mut v, 0.25), quantile(&mut v, 0.75));
                let ratio = if label == "ringmq" || ours.len() < 3 || v.len() < 3 {
                    "-".to_string()
                } else {
                    let mut o = ours.clone();
                    let r = median(&mut o) / m;
                    let (lo, hi) = bootstrap_ratio(&ours, &v, &mut rng);
                    let note = if higher { "" } else { " (lower is better)" };
                    format!("{r:.2}x [{lo:.2}, {hi:.2}]{note}")
                };
                report += &format!(
                    "| {scenario} | {label} | {} | {m:.1} {unit} | {q1:.1} - {q3:.1} | {ratio} |\n",
                    v.len()
                );
            }
        }
    }
    print!("{report}");
    if let Some(path) = opt("--out") {
        std::fs::write(&path, &report).expect("write the report");
        // The raw trials beside it, for charts and re-analysis.
        let raw: String = trials
            .iter()
            .map(|t| {
                format!(
                    "{} {} {} {} {}\n",
                    t.scenario, t.label, t.value, t.floors.0, t.floors.1
                )
            })
            .collect();
        std::fs::write(format!("{path}.trials"), raw).expect("write the trials");
    }
    if let Some(prefix) = opt("--svg") {
        let labels: Vec<String> = runners.iter().map(|r| r.0.clone()).collect();
        let chosen: Vec<(&str, bool, &str)> = SCENARIOS
            .iter()
            .copied()
            .filter(|s| scenarios.iter().any(|c| c == s.0))
            .collect();
        for st in ["near", "far"] {
            if trials.iter().any(|t| state(t.floors) == Some(st)) {
                let file = format!("{prefix}-{st}.svg");
                std::fs::write(&file, svg(&trials, st, &chosen, &labels)).expect("write a chart");
            }
        }
    }
}
