//! Models of the engine's protocols. Run:
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p ringmq-loom-tests --release`
#![cfg(loom)]

use std::sync::Mutex as StdMutex;

use loom::sync::Arc;
use ringmq::{Builder, Consumer, EventHandler, Yielding};

/// Records what a consumer saw; hands it over on shutdown (after the thread's last event, so the
/// join orders it before the model's assertions).
struct Record(Vec<u64>, std::sync::Arc<StdMutex<Vec<u64>>>);
impl EventHandler<u64> for Record {
    fn on_event(&mut self, e: &u64, _: i64, _: bool) {
        self.0.push(*e);
    }
    fn on_shutdown(&mut self) {
        *self.1.lock().unwrap() = std::mem::take(&mut self.0);
    }
}

/// Single producer, capacity 2, three events (one wrap): the consumer sees 1, 2, 3 in order, and
/// loom's cell tracking proves the producer never wrote a slot the consumer was still reading.
#[test]
fn single_producer_wraps_without_overwriting() {
    loom::model(|| {
        let out = std::sync::Arc::new(StdMutex::new(Vec::new()));
        let o = out.clone();
        let mut b = Builder::single_producer(2, || 0u64, Yielding).unwrap();
        b.add(Consumer::with_handler("c", move || Record(Vec::new(), o)))
            .unwrap();
        let (mut p, q) = b.build().unwrap();
        for n in 1..=3 {
            p.publish(|e| *e = n).unwrap();
        }
        drop(p);
        q.shutdown().unwrap();
        assert_eq!(*out.lock().unwrap(), vec![1, 2, 3]);
        let _ = Arc::new(0); // loom's Arc is what the crate uses under cfg(loom)
    });
}
