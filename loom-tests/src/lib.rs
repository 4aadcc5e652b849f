//! Loom models of ringmq's lock-free protocols live in `tests/`; build with
//! `RUSTFLAGS="--cfg loom"` (see README.md, "How ringmq is verified").

use std::sync::{Arc, Mutex};

use ringmq::{Consumer, EventHandler};

/// What one consumer saw, `(sequence, value)`, handed over on shutdown. A std mutex is enough:
/// it is touched by the consumer thread at its end and by the model after joining it (loom
/// orders those).
pub type Out = Arc<Mutex<Vec<(i64, u64)>>>;

/// A handler that records what it sees and appends it to its `Out` on shutdown (several workers
/// of a pool may share one).
pub struct Record(Vec<(i64, u64)>, Out);

impl EventHandler<u64> for Record {
    fn on_event(&mut self, e: &u64, seq: i64, _: bool) {
        self.0.push((seq, *e));
    }
    fn on_shutdown(&mut self) {
        self.1.lock().unwrap().extend(std::mem::take(&mut self.0));
    }
}

/// A consumer named `name` that records into `out`.
pub fn recorder(name: &str, out: &Out) -> Consumer<u64, impl ringmq::IntoProcess<u64>> {
    let o = out.clone();
    Consumer::with_handler(name.to_string(), move || Record(Vec::new(), o))
}
