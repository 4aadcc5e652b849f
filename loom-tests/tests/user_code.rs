//! How a user model-checks their own code together with ringmq.
//!
//! Build with `RUSTFLAGS="--cfg loom"`: ringmq then takes its atomics, cells, threads and locks from
//! loom, so loom explores the interleavings of ringmq's threads and yours in one model. Your own
//! shared state must come from loom too; a facade like this one keeps it to one `use`.
#![cfg(loom)]

mod my_app {
    #[cfg(loom)]
    pub use loom::sync::{atomic::AtomicU64, Arc};
    use std::sync::atomic::Ordering;
    #[cfg(not(loom))]
    pub use std::sync::{atomic::AtomicU64, Arc};

    use ringmq::{Blocking, Builder, Consumer};

    /// The application: a consumer keeps a running total that other threads read.
    pub fn start() -> (
        ringmq::SingleProducer<u64, Blocking>,
        ringmq::Disruptor<u64, ringmq::Single, Blocking>,
        Arc<AtomicU64>,
    ) {
        let total = Arc::new(AtomicU64::new(0));
        let t = total.clone();
        let mut b = Builder::single_producer(1, || 0u64, Blocking::new()).unwrap();
        b.add(Consumer::new("total", move |n: &u64, _, _| {
            t.fetch_add(*n, Ordering::Release);
        }));
        let (p, q) = b.build().unwrap();
        (p, q, total)
    }
}

#[test]
fn the_total_a_reader_sees_only_grows_and_ends_complete() {
    use std::sync::atomic::Ordering;
    loom::model(|| {
        let (mut producer, queue, total) = my_app::start();
        let reader_total = total.clone();
        let reader = loom::thread::spawn(move || reader_total.load(Ordering::Acquire));
        producer.publish(|n| *n = 2).unwrap();
        producer.publish(|n| *n = 3).unwrap();
        let seen_midway = reader.join().unwrap();
        drop(producer);
        queue.shutdown().unwrap();
        assert!(
            [0, 2, 5].contains(&seen_midway),
            "a reader sees a prefix sum"
        );
        assert_eq!(total.load(Ordering::Acquire), 5);
    });
}
