//! Helpers shared by ringmq's benchmark drivers (`compare`, `latency`, `bench_report`,
//! `nats_rate` in `src/bin/`) and its criterion suite (`benches/scenarios.rs`): one copy of each.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_utils::CachePadded;
use hdrhistogram::Histogram;

/// Pins the calling thread to the core with id `core`; does nothing where that core does not
/// exist. By id, not through `core_affinity::get_core_ids()`: that lists the *calling thread's*
/// affinity, so a thread made by one already pinned to core 0 would find no core 1 (the
/// comparison driver's cache-line probe after a trial then ran both its threads on one core,
/// 8 ms a round trip).
pub fn pin(core: usize) {
    let _ = core_affinity::set_for_current(core_affinity::CoreId { id: core });
}

/// The disruptor crate's side of ringmq's `Yielding`: the same crossbeam `Backoff::snooze` (spin
/// with exponential backoff, then yield), restarted whenever the thread waits for a new sequence.
/// The crate calls `wait_for` once per look and keeps no state, so the backoff lives in a thread
/// local. (A plain `yield_now` per look, as the drivers first had, put the crate into a mode of
/// 0.25 M events/s in most 1P-3C trials: every look a context switch.)
#[derive(Clone, Copy, Debug)]
pub struct DisruptorYield;

impl disruptor::wait_strategies::WaitStrategy for DisruptorYield {
    fn wait_for(&self, sequence: disruptor::Sequence) {
        thread_local! {
            static WAIT: std::cell::RefCell<(i64, crossbeam_utils::Backoff)> =
                std::cell::RefCell::new((-2, crossbeam_utils::Backoff::new()));
        }
        WAIT.with(|w| {
            let mut w = w.borrow_mut();
            if w.0 != sequence {
                *w = (sequence, crossbeam_utils::Backoff::new());
            }
            w.1.snooze();
        });
    }
}

/// Spins on `attempt` for a while, then blocks with `block`: how a busy consumer of a channel
/// waits.
pub fn spin_then<T>(
    mut attempt: impl FnMut() -> Option<T>,
    block: impl FnOnce() -> Option<T>,
) -> Option<T> {
    for _ in 0..10_000 {
        if let Some(v) = attempt() {
            return Some(v);
        }
        std::hint::spin_loop();
    }
    block()
}

/// A latency histogram: 1 ns to 10 s, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("valid bounds")
}

/// p50, p90, p99, p99.9, p99.99 and the maximum of `h`.
pub fn percentiles(h: &Histogram<u64>) -> [u64; 6] {
    [
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.9),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.value_at_quantile(0.9999),
        h.max(),
    ]
}

/// The cache-line round trip between cores 0 and 1, ns: the median of 7 bursts of 2000 (the
/// host's placement: under 100 ns "near", over 400 ns "far"; see the README's Performance). Both
/// sides run on threads of their own, so the main thread's affinity stays whole (the disruptor
/// crate checks a pinned core against the caller's).
pub fn cache_line_floor() -> f64 {
    let line = Arc::new(CachePadded::new(AtomicU64::new(0)));
    let l = line.clone();
    let rounds = 7 * 2000u64;
    let echo = std::thread::spawn(move || {
        pin(1);
        for i in 0..rounds {
            while l.load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            l.store(2 * i + 2, Ordering::Release);
        }
    });
    let ping = std::thread::spawn(move || {
        pin(0);
        let mut bursts = Vec::new();
        for b in 0..7 {
            let t = Instant::now();
            for i in b * 2000..(b + 1) * 2000 {
                line.store(2 * i + 1, Ordering::Release);
                while line.load(Ordering::Acquire) != 2 * i + 2 {
                    std::hint::spin_loop();
                }
            }
            bursts.push(t.elapsed().as_nanos() as f64 / 2000.0);
        }
        bursts
    });
    let mut bursts = ping.join().unwrap();
    echo.join().unwrap();
    bursts.sort_by(|a, b| a.partial_cmp(b).unwrap());
    bursts[bursts.len() / 2]
}
