//! Latency per event, as LMAX's latency tables report it: one-way (producer to consumer) and
//! round trip (through two queues, one each way), for ringmq and its peers, at a fixed publish
//! rate, recorded in HDR histograms.
//!
//! ```sh
//! cargo run --release -p ringmq-tools --bin latency                 # 200 000 events at 100 000/s
//! cargo run --release -p ringmq-tools --bin latency -- 20000 50000  # events, rate per second
//! ```
//!
//! Method: two threads, pinned to cores 0 and 1, busy-waiting on every side (channels spin, then
//! park). The producer publishes event `i` at `start + i / rate`, stamped with that *intended*
//! time, so a stall counts against every event it delayed (no coordinated omission). One-way: the
//! consumer records `now - stamp`. Round trip: an echo thread sends each event back through a
//! second queue; the producer waits for it and records `now - stamp`. The first tenth of the
//! events warms up and is not recorded. Clocks: one `Instant`,
//! shared by both threads.

use std::io::Write as _;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

use disruptor::ProcessorSettings as _;
use hdrhistogram::Histogram;
use ringmq_tools::{histogram, percentiles, pin, spin_then};

/// The clock both threads read: nanoseconds since the run began.
#[derive(Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
    /// Busy-waits until `at` (ns), then returns `at`: the event's intended send time.
    fn until(&self, at: u64) -> u64 {
        while self.now() < at {
            std::hint::spin_loop();
        }
        at
    }
}

struct Run {
    events: u64,
    period_ns: u64,
    clock: Clock,
}

impl Run {
    /// The events before this one warm up (threads scheduled, caches and pages touched) and are
    /// not recorded: a tenth of the run.
    fn warm_up(&self) -> u64 {
        self.events / 10
    }

    /// The stamp of event `i`: its intended send time, after waiting for it; 0 (not recorded)
    /// during the warm-up.
    fn stamp(&self, i: u64) -> u64 {
        let at = self.clock.until(self.due(i));
        if i < self.warm_up() {
            0
        } else {
            at
        }
    }

    fn due(&self, i: u64) -> u64 {
        // A short head start, so the first events are not already late.
        1_000_000 + i * self.period_ns
    }
}

/// Records `now - stamp`, unless the stamp marks a warm-up event (0).
fn record(h: &mut Histogram<u64>, clock: Clock, stamp: u64) {
    if stamp != 0 {
        let _ = h.record(clock.now().saturating_sub(stamp).max(1));
    }
}

/// A ringmq consumer recording one-way latency; sends its histogram on shutdown.
struct Record {
    clock: Clock,
    h: Histogram<u64>,
    out: mpsc::Sender<Histogram<u64>>,
}

impl ringmq::EventHandler<u64> for Record {
    fn on_event(&mut self, stamp: &u64, _: i64, _: bool) {
        record(&mut self.h, self.clock, *stamp);
    }
    fn on_shutdown(&mut self) {
        let _ = self.out.send(std::mem::replace(&mut self.h, histogram()));
    }
}

fn ringmq_one_way(run: &Run) -> Histogram<u64> {
    let (tx, rx) = mpsc::channel();
    let clock = run.clock;
    let mut b = ringmq::Builder::single_producer(1024, || 0u64, ringmq::BusySpin).unwrap();
    b.add(
        ringmq::Consumer::with_handler("record", move || Record {
            clock,
            h: histogram(),
            out: tx,
        })
        .pin_to_core(1),
    );
    let (mut p, queue) = b.build().unwrap();
    pin(0);
    for i in 0..run.events {
        let stamp = run.stamp(i);
        p.publish(|e| *e = stamp).unwrap();
    }
    drop(p);
    queue.shutdown().unwrap();
    rx.recv().unwrap()
}

fn disruptor_one_way(run: &Run) -> Histogram<u64> {
    let clock = run.clock;
    let (tx, rx) = mpsc::channel();
    let mut h = Some(histogram());
    let mut left = run.events;
    let mut p = disruptor::build_single_producer(1024, || 0u64, disruptor::BusySpin)
        .pin_at_core(1)
        .handle_events_with(move |stamp: &u64, _, _| {
            if let Some(h) = h.as_mut() {
                record(h, clock, *stamp);
            }
            left -= 1;
            if left == 0 {
                let _ = tx.send(h.take().unwrap());
            }
        })
        .build();
    pin(0);
    for i in 0..run.events {
        let stamp = run.stamp(i);
        disruptor::Producer::publish(&mut p, |e| *e = stamp);
    }
    let h = rx.recv().unwrap();
    drop(p);
    h
}

/// One-way through a channel-like queue: `send` on this thread, `recv` (spinning on `try`
/// first) on the consumer thread.
fn channel_one_way<Tx: FnMut(u64) + Send, Rx: FnMut() -> Option<u64> + Send + 'static>(
    run: &Run,
    mut send: Tx,
    mut recv: Rx,
) -> Histogram<u64> {
    let clock = run.clock;
    let events = run.events;
    let consumer: JoinHandle<Histogram<u64>> = std::thread::spawn(move || {
        pin(1);
        let mut h = histogram();
        for _ in 0..events {
            let stamp = recv().expect("producer ended early");
            record(&mut h, clock, stamp);
        }
        h
    });
    pin(0);
    for i in 0..run.events {
        send(run.stamp(i));
    }
    consumer.join().unwrap()
}

/// Round trip: `send` then wait on `back` for the echo.
fn round_trip(
    run: &Run,
    mut send: impl FnMut(u64),
    mut back: impl FnMut() -> u64,
) -> Histogram<u64> {
    pin(0);
    let mut h = histogram();
    for i in 0..run.events {
        let stamp = run.stamp(i);
        send(stamp);
        let echoed = back();
        assert_eq!(echoed, stamp, "echo out of order");
        record(&mut h, run.clock, stamp);
    }
    h
}

/// Round trip through two channel-like queues: an echo thread (core 1) receives with
/// `echo_recv` (`None`: the sender is gone) and sends back with `echo_send`.
fn echo_round_trip(
    run: &Run,
    send: impl FnMut(u64),
    back: impl FnMut() -> u64,
    mut echo_recv: impl FnMut() -> Option<u64> + Send + 'static,
    mut echo_send: impl FnMut(u64) + Send + 'static,
) -> Histogram<u64> {
    let echo = std::thread::spawn(move || {
        pin(1);
        while let Some(v) = echo_recv() {
            echo_send(v);
        }
    });
    // `round_trip` takes `send` and drops it when done, which ends the echo thread.
    let h = round_trip(run, send, back);
    echo.join().unwrap();
    h
}

fn ringmq_round_trip(run: &Run) -> Histogram<u64> {
    let mut back_b = ringmq::Builder::single_producer(1024, || 0u64, ringmq::BusySpin).unwrap();
    let id = back_b.add_poller(&[]).unwrap();
    let (mut back_tx, back_q) = back_b.build().unwrap();
    let mut poller = id;
    let mut out_b = ringmq::Builder::single_producer(1024, || 0u64, ringmq::BusySpin).unwrap();
    out_b.add(
        ringmq::Consumer::new("echo", move |v: &u64, _, _| {
            back_tx.publish(|e| *e = *v).unwrap();
        })
        .pin_to_core(1),
    );
    let (mut out_tx, out_q) = out_b.build().unwrap();
    let h = round_trip(
        run,
        |v| {
            out_tx.publish(|e| *e = v).unwrap();
        },
        || loop {
            let mut got = None;
            poller.poll_n(1, |v, _, _| {
                got = Some(*v);
                true
            });
            if let Some(v) = got {
                return v;
            }
            std::hint::spin_loop();
        },
    );
    drop(out_tx);
    out_q.shutdown().unwrap();
    drop(poller);
    back_q.shutdown().unwrap();
    h
}

fn disruptor_round_trip(run: &Run) -> Histogram<u64> {
    let (mut poller, builder) =
        disruptor::build_single_producer(1024, || 0u64, disruptor::BusySpin).new_event_poller();
    let mut back_tx = builder.build();
    let mut out_tx = disruptor::build_single_producer(1024, || 0u64, disruptor::BusySpin)
        .pin_at_core(1)
        .handle_events_with(move |v: &u64, _, _| {
            disruptor::Producer::publish(&mut back_tx, |e| *e = *v);
        })
        .build();
    round_trip(
        run,
        |v| disruptor::Producer::publish(&mut out_tx, |e| *e = v),
        || loop {
            if let Ok(mut events) = poller.take(1) {
                if let Some(v) = (&mut events).next() {
                    return *v;
                }
            }
            std::hint::spin_loop();
        },
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let rate: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let cores = core_affinity::get_core_ids().map_or(1, |c| c.len());
    println!(
        "latency: {events} events at {rate}/s per implementation and mode, {cores} cores, \
         producer on core 0, consumer/echo on core 1, busy-waiting (channels spin, then park)"
    );
    type Measure = fn(&Run) -> Histogram<u64>;
    let runs: Vec<(&str, &str, Measure)> = vec![
        ("one-way", "ringmq", ringmq_one_way),
        ("one-way", "disruptor", disruptor_one_way),
        ("one-way", "crossbeam_channel", |run| {
            let (tx, rx) = crossbeam_channel::bounded(1024);
            channel_one_way(
                run,
                move |v| tx.send(v).unwrap(),
                move || spin_then(|| rx.try_recv().ok(), || rx.recv().ok()),
            )
        }),
        ("one-way", "rtrb", |run| {
            let (mut tx, mut rx) = rtrb::RingBuffer::new(1024);
            channel_one_way(
                run,
                move |v| while tx.push(v).is_err() {},
                move || loop {
                    if let Ok(v) = rx.pop() {
                        return Some(v);
                    }
                    std::hint::spin_loop();
                },
            )
        }),
        ("one-way", "std_sync_channel", |run| {
            let (tx, rx) = mpsc::sync_channel(1024);
            channel_one_way(
                run,
                move |v| tx.send(v).unwrap(),
                move || spin_then(|| rx.try_recv().ok(), || rx.recv().ok()),
            )
        }),
        ("round trip", "ringmq", ringmq_round_trip),
        ("round trip", "disruptor", disruptor_round_trip),
        ("round trip", "crossbeam_channel", |run| {
            let (a_tx, a_rx) = crossbeam_channel::bounded::<u64>(1024);
            let (b_tx, b_rx) = crossbeam_channel::bounded::<u64>(1024);
            echo_round_trip(
                run,
                move |v| a_tx.send(v).unwrap(),
                move || spin_then(|| b_rx.try_recv().ok(), || b_rx.recv().ok()).unwrap(),
                move || spin_then(|| a_rx.try_recv().ok(), || a_rx.recv().ok()),
                move |v| b_tx.send(v).unwrap(),
            )
        }),
        ("round trip", "rtrb", |run| {
            let (mut a_tx, mut a_rx) = rtrb::RingBuffer::<u64>::new(1024);
            let (mut b_tx, mut b_rx) = rtrb::RingBuffer::<u64>::new(1024);
            echo_round_trip(
                run,
                move |v| a_tx.push(v).unwrap(),
                move || loop {
                    if let Ok(v) = b_rx.pop() {
                        return v;
                    }
                    std::hint::spin_loop();
                },
                move || loop {
                    match a_rx.pop() {
                        Ok(v) => return Some(v),
                        Err(_) if a_rx.is_abandoned() => return None,
                        Err(_) => std::hint::spin_loop(),
                    }
                },
                move |v| while b_tx.push(v).is_err() {},
            )
        }),
        ("round trip", "std_sync_channel", |run| {
            let (a_tx, a_rx) = mpsc::sync_channel::<u64>(1024);
            let (b_tx, b_rx) = mpsc::sync_channel::<u64>(1024);
            echo_round_trip(
                run,
                move |v| a_tx.send(v).unwrap(),
                move || spin_then(|| b_rx.try_recv().ok(), || b_rx.recv().ok()).unwrap(),
                move || spin_then(|| a_rx.try_recv().ok(), || a_rx.recv().ok()),
                move |v| b_tx.send(v).unwrap(),
            )
        }),
    ];
    let period_ns = (1_000_000_000 / rate.max(1)).max(1);
    let mut rows = Vec::new();
    let total = runs.len();
    for (k, (mode, name, measure)) in runs.into_iter().enumerate() {
        print!("\r  measuring {k}/{total}: {mode} {name}{:20}", "");
        let _ = std::io::stdout().flush();
        let run = Run {
            events,
            period_ns,
            clock: Clock(Instant::now()),
        };
        // Each on a fresh thread, which pins itself to core 0 once its queue is built (the
        // disruptor crate checks the core it is asked to pin to against the builder's mask).
        let h = std::thread::spawn(move || measure(&run)).join().unwrap();
        assert_eq!(
            h.len(),
            events - events / 10,
            "{mode} {name}: every event after the warm-up measured"
        );
        rows.push((mode, name, percentiles(&h)));
    }
    println!("\r  measured {total}/{total}{:40}", "");
    println!(
        "\n| {:<10} | {:<17} | {:>10} | {:>10} | {:>10} | {:>10} | {:>10} | {:>11} |",
        "mode", "queue", "p50", "p90", "p99", "p99.9", "p99.99", "max"
    );
    println!(
        "|{:-<12}|{:-<19}|{:->12}|{:->12}|{:->12}|{:->12}|{:->12}|{:->13}|",
        "", "", "", "", "", "", "", ""
    );
    for (mode, name, p) in rows {
        let ns = |v: u64| format!("{v} ns");
        println!(
            "| {:<10} | {:<17} | {:>10} | {:>10} | {:>10} | {:>10} | {:>10} | {:>11} |",
            mode,
            name,
            ns(p[0]),
            ns(p[1]),
            ns(p[2]),
            ns(p[3]),
            ns(p[4]),
            ns(p[5])
        );
    }
}
