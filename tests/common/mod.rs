//! Shared test helpers: a hang guard, and a handler that records what it saw.
#![allow(dead_code)]

use std::sync::mpsc;
use std::time::Duration;

/// Runs `f` on its own thread and fails the test if it does not finish within `secs` seconds
/// (twenty times that under miri, which interprets every instruction).
pub fn with_timeout<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let secs = if cfg!(miri) { secs * 20 } else { secs };
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => {
            handle.join().unwrap();
            v
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // `f` panicked: surface its panic.
            std::panic::resume_unwind(handle.join().unwrap_err())
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("test did not finish within {secs} s (hang)")
        }
    }
}

/// Scales an event count down under miri, where every operation is interpreted.
pub const fn scaled(n: u64) -> u64 {
    if cfg!(miri) {
        if n > 200 {
            200
        } else {
            n
        }
    } else {
        n
    }
}

/// The event every test publishes: who made it, its number, a checksum, and a field an exclusive
/// stage fills in for the stages after it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ev {
    pub producer: u32,
    pub n: u64,
    pub check: u64,
    pub enriched: u64,
}

pub fn checksum(producer: u32, n: u64) -> u64 {
    n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ producer as u64
}

pub fn fill(e: &mut Ev, producer: u32, n: u64) {
    e.producer = producer;
    e.n = n;
    e.check = checksum(producer, n);
    e.enriched = 0;
}

/// What one consumer saw: (sequence, event, end_of_batch), sent when it shuts down.
pub type Seen = Vec<(i64, Ev, bool)>;

/// A handler that records every event and sends the record on shutdown.
pub struct Recorder {
    pub seen: Seen,
    pub tx: mpsc::Sender<(String, Seen)>,
    pub name: String,
}

impl ringmq::EventHandler<Ev> for Recorder {
    fn on_event(&mut self, e: &Ev, seq: i64, eob: bool) {
        self.seen.push((seq, *e, eob));
    }
    fn on_shutdown(&mut self) {
        let _ = self
            .tx
            .send((self.name.clone(), std::mem::take(&mut self.seen)));
    }
}

pub fn recorder(
    name: &str,
    tx: &mpsc::Sender<(String, Seen)>,
) -> ringmq::Consumer<Ev, impl ringmq::IntoProcess<Ev>> {
    let tx = tx.clone();
    let owned = name.to_string();
    ringmq::Consumer::with_handler(name, move || Recorder {
        seen: Vec::new(),
        tx,
        name: owned,
    })
}

/// Collects the records of `n` consumers, keyed by name.
pub fn collect(
    rx: &mpsc::Receiver<(String, Seen)>,
    n: usize,
) -> std::collections::HashMap<String, Seen> {
    (0..n)
        .map(|_| {
            rx.recv_timeout(Duration::from_secs(60))
                .expect("a consumer never reported")
        })
        .collect()
}

/// Asserts `seen` is exactly sequences 0..count, in order, each with an intact payload, and
/// returns the events.
pub fn assert_exact(name: &str, seen: &Seen, count: u64) -> Vec<Ev> {
    assert_eq!(
        seen.len() as u64,
        count,
        "{name}: saw {} events, want {count}",
        seen.len()
    );
    for (i, (seq, e, _)) in seen.iter().enumerate() {
        assert_eq!(
            *seq, i as i64,
            "{name}: out of order or duplicated at index {i}"
        );
        assert_eq!(
            e.check,
            checksum(e.producer, e.n),
            "{name}: torn payload at {seq}"
        );
    }
    // The last event of the stream closes a batch.
    if let Some(last) = seen.last() {
        assert!(last.2, "{name}: the last event was not end_of_batch");
    }
    seen.iter().map(|s| s.1).collect()
}

/// Publishes `per` events from each of `producers` threads (producer `p`'s event `n` filled by
/// [`fill`]), drops the original handle, and joins the threads.
pub fn publish_from_threads<W: ringmq::WaitStrategy>(
    producer: ringmq::MultiProducer<Ev, W>,
    producers: u32,
    per: u64,
) {
    let threads: Vec<_> = (0..producers)
        .map(|p| {
            let mut producer = producer.clone();
            std::thread::spawn(move || {
                for n in 0..per {
                    producer.publish(|e| fill(e, p, n)).unwrap();
                }
            })
        })
        .collect();
    drop(producer);
    for t in threads {
        t.join().unwrap();
    }
}
