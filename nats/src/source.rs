//! In: a durable JetStream consumer feeding a ring, acknowledged after a chosen stage.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, consumer::AckPolicy};
use futures_util::StreamExt;
use ringmq::{Producer, Sequencer, Tracker, WaitStrategy};
use tokio::sync::{mpsc, watch};

use crate::{Bridge, BridgeError};

/// Where a [`Source`] reads: a stream and a durable consumer on it, with its ack window.
///
/// ```
/// use ringmq_nats::SourceOptions;
/// let o = SourceOptions::new("ORDERS", "order-applier").max_ack_pending(512).batch(128);
/// assert_eq!(o.durable(), "order-applier");
/// ```
#[derive(Debug, Clone)]
pub struct SourceOptions {
    stream: String,
    durable: String,
    filter_subject: Option<String>,
    batch: usize,
    max_ack_pending: i64,
    ack_wait: Duration,
}

impl SourceOptions {
    /// The durable consumer `durable` on `stream` (created if missing, delivering from the
    /// stream's first message; an existing one resumes where it was acknowledged), fetching 256
    /// messages at a time, at most 1,024 unacknowledged, redelivered after 30 s without an ack.
    ///
    /// ```
    /// let o = ringmq_nats::SourceOptions::new("S", "d");
    /// assert_eq!(o.stream(), "S");
    /// ```
    pub fn new(stream: impl Into<String>, durable: impl Into<String>) -> Self {
        Self {
            stream: stream.into(),
            durable: durable.into(),
            filter_subject: None,
            batch: 256,
            max_ack_pending: 1024,
            ack_wait: Duration::from_secs(30),
        }
    }

    /// The stream.
    ///
    /// ```
    /// assert_eq!(ringmq_nats::SourceOptions::new("S", "d").stream(), "S");
    /// ```
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The durable consumer's name.
    ///
    /// ```
    /// assert_eq!(ringmq_nats::SourceOptions::new("S", "d").durable(), "d");
    /// ```
    pub fn durable(&self) -> &str {
        &self.durable
    }

    /// Only messages on subjects matching `subject` (at creation of the consumer).
    ///
    /// ```
    /// let _ = ringmq_nats::SourceOptions::new("S", "d").filter_subject("orders.eu.>");
    /// ```
    pub fn filter_subject(mut self, subject: impl Into<String>) -> Self {
        self.filter_subject = Some(subject.into());
        self
    }

    /// Messages per fetch (at least 1).
    ///
    /// ```
    /// let _ = ringmq_nats::SourceOptions::new("S", "d").batch(64);
    /// ```
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// The most messages delivered and not yet acknowledged (at creation of the consumer):
    /// the bound on what a crash can make JetStream deliver twice.
    ///
    /// ```
    /// let _ = ringmq_nats::SourceOptions::new("S", "d").max_ack_pending(100);
    /// ```
    pub fn max_ack_pending(mut self, max: i64) -> Self {
        self.max_ack_pending = max.max(1);
        self
    }

    /// How long JetStream waits for an acknowledgement before it delivers a message again (at
    /// creation of the consumer): longer than the chosen stage can take.
    ///
    /// ```
    /// let _ = ringmq_nats::SourceOptions::new("S", "d").ack_wait(std::time::Duration::from_secs(60));
    /// ```
    pub fn ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait;
        self
    }
}

/// A message handed to the source's decoder.
///
/// ```
/// let m = ringmq_nats::InMessage { id: Some("order-1"), subject: "orders.new", payload: b"x", stream_sequence: 1, delivered: 1 };
/// assert!(!m.is_redelivery());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct InMessage<'a> {
    /// Its `Nats-Msg-Id`, as the publisher set it: what tells a redelivered message.
    pub id: Option<&'a str>,
    /// Its subject.
    pub subject: &'a str,
    /// Its payload.
    pub payload: &'a [u8],
    /// Its sequence in the stream.
    pub stream_sequence: u64,
    /// How many times JetStream delivered it (more than 1: a redelivery, after a crash or an
    /// ack that did not arrive). A hint, not a guarantee: on a clustered stream, a message
    /// handed out again after its consumer's leader changed can still say 1 (the count had not
    /// reached the new leader; seen with nats-server 2.9). Drop duplicates by [`Self::id`].
    pub delivered: i64,
}

impl InMessage<'_> {
    /// Whether JetStream says it delivered it before (the application may already have applied
    /// it). `false` does not prove a first delivery on a cluster (see [`Self::delivered`]): the
    /// message id does.
    ///
    /// ```
    /// let m = ringmq_nats::InMessage { id: None, subject: "s", payload: b"", stream_sequence: 9, delivered: 2 };
    /// assert!(m.is_redelivery());
    /// ```
    pub fn is_redelivery(&self) -> bool {
        self.delivered > 1
    }
}

/// Counters of a source.
///
/// ```
/// let s = ringmq_nats::SourceStats::default();
/// assert_eq!((s.received(), s.acked(), s.redelivered()), (0, 0, 0));
/// ```
#[derive(Debug, Clone, Default)]
pub struct SourceStats(Arc<[AtomicU64; 4]>);

impl SourceStats {
    /// Messages received and published into the ring.
    ///
    /// ```
    /// assert_eq!(ringmq_nats::SourceStats::default().received(), 0);
    /// ```
    pub fn received(&self) -> u64 {
        self.0[0].load(Ordering::Relaxed)
    }

    /// Messages acknowledged (after the chosen stage processed them).
    ///
    /// ```
    /// assert_eq!(ringmq_nats::SourceStats::default().acked(), 0);
    /// ```
    pub fn acked(&self) -> u64 {
        self.0[1].load(Ordering::Relaxed)
    }

    /// Messages received marked as delivered before (`delivered` > 1; on a cluster a failover
    /// can hand a message out again unmarked, which this does not count).
    ///
    /// ```
    /// assert_eq!(ringmq_nats::SourceStats::default().redelivered(), 0);
    /// ```
    pub fn redelivered(&self) -> u64 {
        self.0[2].load(Ordering::Relaxed)
    }

    /// Fetches that failed (a lost connection, a server restarting) and were tried again.
    ///
    /// ```
    /// assert_eq!(ringmq_nats::SourceStats::default().fetch_errors(), 0);
    /// ```
    pub fn fetch_errors(&self) -> u64 {
        self.0[3].load(Ordering::Relaxed)
    }

    fn add(&self, i: usize) {
        self.0[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// A running source: a task on the bridge's runtime that fetches from the durable consumer and
/// publishes into the ring, and one that acknowledges each message once the chosen stage's
/// tracker says it was processed, in order. Stop it with [`stop`](Self::stop); dropping it
/// stops it without waiting.
///
/// See [`Bridge::source`] for an example.
#[derive(Debug)]
pub struct Source {
    runtime: Arc<tokio::runtime::Runtime>,
    stop: watch::Sender<bool>,
    fetcher: Option<tokio::task::JoinHandle<()>>,
    acker: Option<tokio::task::JoinHandle<usize>>,
    stats: SourceStats,
}

impl Bridge {
    /// Starts a source: fetches from the durable consumer of `options`, publishes each message
    /// into the ring through `producer` (decoded into the slot by `decode`, awaiting room when
    /// the ring is full: backpressure reaches JetStream as fewer fetches), and acknowledges it
    /// once `processed` (a tracker on the stage whose work must not be lost) has passed it.
    ///
    /// The source owns the producer: when it stops, the producer is dropped (closing the ring if
    /// it was the last).
    ///
    /// # Errors
    /// [`BridgeError::JetStream`] if the stream does not exist or the consumer cannot be created
    /// (an existing one with other settings).
    ///
    /// ```no_run
    /// use ringmq::{Blocking, Builder, Consumer};
    /// use ringmq_nats::{Bridge, SourceOptions};
    /// let bridge = Bridge::connect("nats://127.0.0.1:4222")?;
    /// let mut b = Builder::single_producer(1024, Vec::<u8>::new, Blocking::new())?;
    /// let apply = b.add(Consumer::new("apply", |bytes: &Vec<u8>, _, _| { let _ = bytes; }));
    /// let (producer, queue) = b.build()?;
    /// let source = bridge.source(SourceOptions::new("ORDERS", "applier"), producer, queue.tracker(apply)?,
    ///     |slot: &mut Vec<u8>, m| { slot.clear(); slot.extend_from_slice(m.payload); })?;
    /// source.stop(std::time::Duration::from_secs(5))?;
    /// queue.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn source<E, S, W, D>(
        &self,
        options: SourceOptions,
        producer: Producer<E, S, W>,
        processed: Tracker,
        decode: D,
    ) -> Result<Source, BridgeError>
    where
        E: Send + Sync + 'static,
        S: Sequencer + Send + 'static,
        W: WaitStrategy + Send + 'static,
        Producer<E, S, W>: Send,
        D: FnMut(&mut E, InMessage<'_>) + Send + 'static,
    {
        let runtime = self.runtime();
        let consumer = runtime
            .block_on(async {
                let stream = self.jetstream.get_stream(&options.stream).await?;
                let config = pull::Config {
                    durable_name: Some(options.durable.clone()),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: options.ack_wait,
                    max_ack_pending: options.max_ack_pending,
                    filter_subject: options.filter_subject.clone().unwrap_or_default(),
                    ..Default::default()
                };
                let consumer: jetstream::consumer::PullConsumer = stream
                    .get_or_create_consumer(&options.durable, config)
                    .await?;
                Ok::<_, async_nats::Error>(consumer)
            })
            .map_err(|e| BridgeError::JetStream {
                doing: "creating the durable consumer",
                source: e,
            })?;
        let (stop, stop_rx) = watch::channel(false);
        let stats = SourceStats::default();
        let window = usize::try_from(options.max_ack_pending).unwrap_or(1024);
        let (to_ack, acks) = mpsc::channel(window);
        let fetcher = runtime.spawn(fetch(
            consumer,
            options.batch,
            producer,
            decode,
            to_ack,
            stop_rx,
            stats.clone(),
        ));
        let acker = runtime.spawn(ack(acks, processed, stats.clone()));
        Ok(Source {
            runtime,
            stop,
            fetcher: Some(fetcher),
            acker: Some(acker),
            stats,
        })
    }
}

/// The fetch loop: until stopped, fetch a batch, publish each message into the ring, pass it
/// to the ack loop.
async fn fetch<E, S, W, D>(
    consumer: jetstream::consumer::PullConsumer,
    batch: usize,
    mut producer: Producer<E, S, W>,
    mut decode: D,
    to_ack: mpsc::Sender<(i64, jetstream::Message)>,
    mut stop: watch::Receiver<bool>,
    stats: SourceStats,
) where
    S: Sequencer,
    W: WaitStrategy,
    D: FnMut(&mut E, InMessage<'_>),
{
    'fetching: while !*stop.borrow() {
        let fetched = tokio::select! {
            r = consumer.fetch().max_messages(batch).expires(Duration::from_millis(500)).messages() => r,
            _ = stop.changed() => break,
        };
        let mut messages = match fetched {
            Ok(m) => m,
            Err(e) => {
                stats.add(3);
                log::warn!("ringmq-nats: fetch failed, trying again: {e}");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    _ = stop.changed() => break,
                }
            }
        };
        loop {
            let next = tokio::select! {
                m = messages.next() => m,
                _ = stop.changed() => break 'fetching,
            };
            let message = match next {
                None => break,
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    stats.add(3);
                    log::warn!("ringmq-nats: fetch interrupted, fetching again: {e}");
                    break;
                }
            };
            let (stream_sequence, delivered) = message
                .info()
                .map(|i| (i.stream_sequence, i.delivered))
                .unwrap_or((0, 1));
            let id = message
                .headers
                .as_ref()
                .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                .map(|v| v.as_str());
            let incoming = InMessage {
                id,
                subject: message.subject.as_str(),
                payload: &message.payload,
                stream_sequence,
                delivered,
            };
            if incoming.is_redelivery() {
                stats.add(2);
            }
            let published = tokio::select! {
                r = producer.publish_async(|slot| decode(slot, incoming)) => r,
                _ = stop.changed() => break 'fetching,
            };
            let Ok(sequence) = published else {
                log::warn!(
                    "ringmq-nats: the ring refused a message ({published:?}); the source stops"
                );
                break 'fetching;
            };
            stats.add(0);
            if to_ack.send((sequence, message)).await.is_err() {
                break 'fetching;
            }
        }
    }
    // Dropping `producer` here closes the ring if it was the last producer.
}

/// The ack loop: in order, wait until the chosen stage has processed each message, then
/// acknowledge it. Returns how many it could not acknowledge.
async fn ack(
    mut acks: mpsc::Receiver<(i64, jetstream::Message)>,
    processed: Tracker,
    stats: SourceStats,
) -> usize {
    while let Some((sequence, message)) = acks.recv().await {
        if let Err(e) = processed.processed_async(sequence).await {
            log::warn!(
                "ringmq-nats: messages will not be processed ({e}); JetStream redelivers them"
            );
            return 1 + acks.len();
        }
        match message.ack().await {
            Ok(()) => stats.add(1),
            Err(e) => log::warn!("ringmq-nats: an ack was not sent ({e}); JetStream redelivers it"),
        }
    }
    0
}

impl Source {
    /// Its counters.
    ///
    /// ```no_run
    /// # fn f(source: &ringmq_nats::Source) {
    /// println!("{} received, {} acked", source.stats().received(), source.stats().acked());
    /// # }
    /// ```
    pub fn stats(&self) -> SourceStats {
        self.stats.clone()
    }

    /// Stops fetching, drops the producer, and waits up to `timeout` for the chosen stage to
    /// process what was already published and for those acknowledgements to go out.
    ///
    /// # Errors
    /// [`BridgeError::Stopped`] with the number of messages left unacknowledged (the stage
    /// failed, was removed, or was slower than `timeout`): JetStream delivers them again.
    ///
    /// ```no_run
    /// # fn f(source: ringmq_nats::Source) -> Result<(), ringmq_nats::BridgeError> {
    /// source.stop(std::time::Duration::from_secs(5))?;
    /// # Ok(()) }
    /// ```
    pub fn stop(mut self, timeout: Duration) -> Result<(), BridgeError> {
        let _ = self.stop.send(true);
        let fetcher = self.fetcher.take().expect("running");
        let acker = self.acker.take().expect("running");
        let runtime = self.runtime.clone();
        let abort = acker.abort_handle();
        let unacked = runtime.block_on(async move {
            let _ = fetcher.await;
            match tokio::time::timeout(timeout, acker).await {
                Ok(Ok(unacked)) => unacked,
                Ok(Err(_)) => 1,
                Err(_) => {
                    abort.abort();
                    usize::MAX
                }
            }
        });
        match unacked {
            0 => Ok(()),
            usize::MAX => Err(BridgeError::Stopped {
                unacked: (self.stats.received() - self.stats.acked()) as usize,
            }),
            n => Err(BridgeError::Stopped { unacked: n }),
        }
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(a) = self.acker.take() {
            a.abort();
        }
    }
}
