//! The smallest useful ringmq program: one producer, two consumers that each see every event.
//!
//! `cargo run --release --example quickstart`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ringmq::{Builder, Consumer, Yielding};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1024 pre-allocated slots; consumers yield the core while they wait.
    let mut builder = Builder::single_producer(1024, || 0u64, Yielding)?;

    // Two consumers after the producer: both see every event, in the same order (multicast).
    let sum = Arc::new(AtomicU64::new(0));
    let s = sum.clone();
    builder.add(Consumer::new("sum", move |n: &u64, _seq, _end_of_batch| {
        s.fetch_add(*n, Ordering::Relaxed);
    }));
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    builder.add(Consumer::new("count", move |_: &u64, _, _| {
        c.fetch_add(1, Ordering::Relaxed);
    }));

    let (mut producer, queue) = builder.build()?;
    for i in 1..=1_000 {
        // Writes into the pre-allocated slot, then publishes; waits if the ring is full.
        producer.publish(|slot| *slot = i)?;
    }
    drop(producer); // no more events: consumers drain what was published
    let report = queue.shutdown()?;

    println!(
        "quickstart: published 1000 events; sum = {}, count = {}; consumers: {}",
        sum.load(Ordering::Relaxed),
        count.load(Ordering::Relaxed),
        report
            .consumers
            .iter()
            .map(|c| format!("{} at sequence {}", c.name, c.last_sequence))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert_eq!(sum.load(Ordering::Relaxed), 500_500);
    assert_eq!(count.load(Ordering::Relaxed), 1_000);
    Ok(())
}
