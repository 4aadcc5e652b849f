//! Helpers shared by ringmq's benchmark drivers (`compare`, `latency`, `bench_report` in
//! `src/bin/`) and its criterion suite (`benches/scenarios.rs`): one copy of each.

use hdrhistogram::Histogram;

/// Pins the calling thread to `core` (an index into the machine's cores as core_affinity lists
/// them); does nothing where that core does not exist.
pub fn pin(core: usize) {
    if let Some(id) = core_affinity::get_core_ids().and_then(|c| c.get(core).copied()) {
        core_affinity::set_for_current(id);
    }
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
