//! Out: a stage that publishes to JetStream and finishes a batch only once it is stored.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, context::Publish};
use ringmq::{Consumer, FallibleFactory, FallibleHandler, Retry, RetryPolicy};

use crate::Bridge;

/// Counters of a publishing stage, readable from any thread.
///
/// ```
/// let stats = ringmq_nats::PublisherStats::default();
/// assert_eq!((stats.stored(), stats.duplicates(), stats.resent_batches()), (0, 0, 0));
/// ```
#[derive(Debug, Clone, Default)]
pub struct PublisherStats(Arc<[AtomicU64; 3]>);

impl PublisherStats {
    /// Messages JetStream acknowledged as newly stored.
    ///
    /// ```
    /// assert_eq!(ringmq_nats::PublisherStats::default().stored(), 0);
    /// ```
    pub fn stored(&self) -> u64 {
        self.0[0].load(Ordering::Relaxed)
    }

    /// Messages JetStream acknowledged as duplicates (a resend its duplicate window dropped).
    ///
    /// ```
    /// assert_eq!(ringmq_nats::PublisherStats::default().duplicates(), 0);
    /// ```
    pub fn duplicates(&self) -> u64 {
        self.0[1].load(Ordering::Relaxed)
    }

    /// Batches that failed (a timeout, a lost connection) and were sent again.
    ///
    /// ```
    /// assert_eq!(ringmq_nats::PublisherStats::default().resent_batches(), 0);
    /// ```
    pub fn resent_batches(&self) -> u64 {
        self.0[2].load(Ordering::Relaxed)
    }
}

/// The publishing stage's handler: each event of a batch is encoded by your closure into a
/// message id and a payload and published to the subject; at the batch's end the handler waits
/// for JetStream's acknowledgement of every message. Only then does the batch end, so the stage's
/// sequence, and its [`ringmq::Tracker`], mean "stored by the stream".
///
/// A publish or an acknowledgement that fails or times out fails the batch with a
/// [`Retry`] (the timeout is [`Bridge::set_ack_timeout`]); the whole batch is sent again with the same message ids, and the stream's duplicate
/// window drops the ones it already had (counted in [`PublisherStats::duplicates`]).
///
/// ```no_run
/// use ringmq::Consumer;
/// # let bridge = ringmq_nats::Bridge::connect("nats://127.0.0.1:4222")?;
/// let handler = bridge.publisher_handler("orders.new", |order: &u64, _seq| {
///     (format!("order-{order}"), order.to_le_bytes().to_vec())
/// });
/// let stats = handler.stats();
/// let stage = Consumer::fallible_with_handler("jetstream", move || handler);
/// # let _ = (stage, stats);
/// # Ok::<(), ringmq_nats::BridgeError>(())
/// ```
#[derive(Debug)]
pub struct JetStreamPublisher<F> {
    runtime: Arc<tokio::runtime::Runtime>,
    jetstream: jetstream::Context,
    subject: String,
    encode: F,
    batch: Vec<(String, bytes::Bytes)>,
    stats: PublisherStats,
    failed: bool,
}

impl Bridge {
    /// The publishing stage's handler for `subject`; `encode(event, sequence)` returns the
    /// message id (stable for the event across resends and restarts: derive it from the event,
    /// not from the ring's sequence, which starts again at 0 after a restart) and the payload.
    ///
    /// ```no_run
    /// # let bridge = ringmq_nats::Bridge::connect("nats://127.0.0.1:4222")?;
    /// let h = bridge.publisher_handler("ticks", |t: &(u64, f64), _| (t.0.to_string(), t.1.to_le_bytes().to_vec()));
    /// # let _ = h;
    /// # Ok::<(), ringmq_nats::BridgeError>(())
    /// ```
    pub fn publisher_handler<E, F>(
        &self,
        subject: impl Into<String>,
        encode: F,
    ) -> JetStreamPublisher<F>
    where
        F: FnMut(&E, i64) -> (String, Vec<u8>),
    {
        JetStreamPublisher {
            runtime: self.runtime(),
            jetstream: self.jetstream.clone(),
            subject: subject.into(),
            encode,
            batch: Vec::new(),
            stats: PublisherStats::default(),
            failed: false,
        }
    }

    /// The publishing stage as a consumer named `name`, ready for [`ringmq::Builder::add`]:
    /// [`publisher_handler`](Self::publisher_handler) with a retry policy that rides through
    /// about two minutes of outage (1,200 resends, 100 ms apart, each after its own 5 s timeout
    /// at most). Change it with [`Consumer::retry`]; once it is spent the consumer's panic policy
    /// applies.
    ///
    /// ```no_run
    /// use ringmq::{Blocking, Builder};
    /// # let bridge = ringmq_nats::Bridge::connect("nats://127.0.0.1:4222")?;
    /// let mut b = Builder::single_producer(1024, || 0u64, Blocking::new())?;
    /// let stored = b.add(bridge.publisher("jetstream", "orders.new", |o: &u64, _| {
    ///     (format!("order-{o}"), o.to_le_bytes().to_vec())
    /// }));
    /// # let _ = stored;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publisher<E, F>(
        &self,
        name: impl Into<String>,
        subject: impl Into<String>,
        encode: F,
    ) -> Consumer<E, FallibleFactory<impl FnOnce() -> JetStreamPublisher<F> + Send + 'static>>
    where
        E: 'static,
        F: FnMut(&E, i64) -> (String, Vec<u8>) + Send + 'static,
    {
        let handler = self.publisher_handler(subject, encode);
        Consumer::fallible_with_handler(name, move || handler)
            .retry(RetryPolicy::new(1200, Duration::from_millis(100)))
    }
}

impl<F> JetStreamPublisher<F> {
    /// Its counters.
    ///
    /// ```no_run
    /// # let bridge = ringmq_nats::Bridge::connect("nats://127.0.0.1:4222")?;
    /// let h = bridge.publisher_handler("s", |n: &u8, _| (n.to_string(), vec![*n]));
    /// assert_eq!(h.stats().stored(), 0);
    /// # Ok::<(), ringmq_nats::BridgeError>(())
    /// ```
    pub fn stats(&self) -> PublisherStats {
        self.stats.clone()
    }

    /// Publishes the batch (all sends first, then every acknowledgement awaited).
    fn flush(&mut self) -> Result<(), String> {
        let jetstream = &self.jetstream;
        let subject = &self.subject;
        let batch = &self.batch;
        let (stored, duplicates) = self.runtime.block_on(async {
            let mut acks = Vec::with_capacity(batch.len());
            for (id, payload) in batch {
                let publish = Publish::build().payload(payload.clone()).message_id(id);
                let ack = jetstream
                    .send_publish(subject.clone(), publish)
                    .await
                    .map_err(|e| format!("publishing {id} to {subject}: {e}"))?;
                acks.push((id, ack));
            }
            let (mut stored, mut duplicates) = (0, 0);
            for (id, ack) in acks {
                let ack = ack
                    .await
                    .map_err(|e| format!("awaiting JetStream's ack of {id}: {e}"))?;
                if ack.duplicate {
                    duplicates += 1;
                } else {
                    stored += 1;
                }
            }
            Ok::<_, String>((stored, duplicates))
        })?;
        self.stats.0[0].fetch_add(stored, Ordering::Relaxed);
        self.stats.0[1].fetch_add(duplicates, Ordering::Relaxed);
        Ok(())
    }
}

impl<E, F> FallibleHandler<E> for JetStreamPublisher<F>
where
    F: FnMut(&E, i64) -> (String, Vec<u8>),
{
    fn on_batch_start(&mut self, _batch_len: i64, _queue_depth: i64) {
        // Also before a replay: the batch is encoded again from its first event.
        if self.failed {
            self.stats.0[2].fetch_add(1, Ordering::Relaxed);
            self.failed = false;
        }
        self.batch.clear();
    }

    fn on_event(&mut self, event: &E, sequence: i64, end_of_batch: bool) -> Result<(), Retry> {
        let (id, payload) = (self.encode)(event, sequence);
        self.batch.push((id, payload.into()));
        if end_of_batch {
            if let Err(why) = self.flush() {
                log::warn!("ringmq-nats: batch not stored, sending it again: {why}");
                self.failed = true;
                return Err(Retry::new(why));
            }
        }
        Ok(())
    }
}
