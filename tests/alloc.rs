//! The hot path allocates nothing: a counting global allocator watches a million events flow
//! through a single- and a multi-producer queue, with a two-stage graph and batch publishing.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use common::*;
use ringmq::{Builder, Consumer, Yielding};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Waits (bounded) until `done` reaches `target`.
fn wait_until(done: &AtomicU64, target: u64) {
    for _ in 0..100_000_000u64 {
        if done.load(Ordering::Acquire) >= target {
            return;
        }
        std::thread::yield_now();
    }
    panic!(
        "consumers stalled at {} of {target}",
        done.load(Ordering::Acquire)
    );
}

// One test, so no other test's allocations run while we count.
#[test]
fn a_million_events_flow_without_a_single_allocation() {
    with_timeout(300, || {
        let events = scaled(1_000_000);
        for multi in [false, true] {
            let done = Arc::new(AtomicU64::new(0));
            let d = done.clone();
            let enrich = Consumer::exclusive("enrich", |e: &mut Ev, _, _| e.enriched = e.check);
            let count = Consumer::new("count", move |e: &Ev, _, _| {
                assert_eq!(e.enriched, e.check);
                d.fetch_add(1, Ordering::Release);
            });
            // Small under miri, so the two-lap warm-up below stays a few dozen events there.
            let ring = if cfg!(miri) { 16 } else { 1024 };
            macro_rules! run {
                ($b:expr) => {{
                    let mut b = $b;
                    let first = b.add(enrich);
                    b.add_after(&[first], count).unwrap();
                    let (mut p, q) = b.build().unwrap();
                    // Warm up: threads started, handlers built, first wait done, and two laps
                    // of the ring, so the producer has read the gating set once: its first read
                    // registers the thread with crossbeam-epoch (one allocation per thread, ever).
                    let warm = 2 * ring as u64 + 1;
                    for i in 0..warm {
                        p.publish(|e| fill(e, 0, i)).unwrap();
                    }
                    wait_until(&done, warm);
                    COUNTING.store(true, Ordering::SeqCst);
                    let mut n = warm;
                    while n < events {
                        if n % 2 == 0 {
                            p.publish(|e| fill(e, 0, n)).unwrap();
                            n += 1;
                        } else {
                            let k = 7.min(events - n);
                            let base = n;
                            p.publish_batch(k as usize, |e, i| fill(e, 0, base + i as u64))
                                .unwrap();
                            n += k;
                        }
                    }
                    wait_until(&done, events);
                    COUNTING.store(false, Ordering::SeqCst);
                    drop(p);
                    q.shutdown().unwrap();
                }};
            }
            if multi {
                run!(Builder::multi_producer(ring, Ev::default, Yielding).unwrap());
            } else {
                run!(Builder::single_producer(ring, Ev::default, Yielding).unwrap());
            }
            assert_eq!(
                ALLOCATIONS.swap(0, Ordering::SeqCst),
                0,
                "allocations while {events} events flowed (multi={multi})"
            );
        }
    });
}
