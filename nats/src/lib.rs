//! # ringmq-nats
//!
//! A bridge between [ringmq] rings and [NATS JetStream](https://docs.nats.io/nats-concepts/jetstream),
//! for services that outgrow one machine. ringmq stays in memory and on one host; JetStream is the
//! distributed, replicated log between hosts. No broker inside ringmq.
//!
//! - **Out** ([`Bridge::publisher`]): a stage that publishes each event to a JetStream subject
//!   and finishes its batch only when JetStream has acknowledged every message of it, so its
//!   [`ringmq::Tracker`] means "stored by the stream" (by its replicas, on a clustered stream).
//!   Every message carries a `Nats-Msg-Id` you derive from the event, so a batch resent after a
//!   timeout or a reconnect is dropped by the stream's duplicate window instead of stored twice.
//! - **In** ([`Bridge::source`]): pulls from a durable JetStream consumer, publishes each message
//!   into a ring, and acknowledges it to JetStream only once a stage you choose has processed it.
//!   At-least-once across machines: a crash of either side loses nothing; what was processed but
//!   not yet acknowledged is delivered again (at most the consumer's `max_ack_pending` messages
//!   per crash or failover), with its message id, so the application can drop it (by the id:
//!   on a cluster the redelivery mark can be missing after a failover).
//!
//! The bridge runs its own small tokio runtime (one worker thread) for the connection, so the
//! ring's threads need none: the publishing stage blocks on its batch's acknowledgements, the
//! source is a task on the bridge's runtime.
//!
//! ## Example (needs a `nats-server -js` on localhost)
//! ```no_run
//! use ringmq::{Blocking, Builder, Consumer};
//! use ringmq_nats::{Bridge, SourceOptions, StreamOptions};
//!
//! let bridge = Bridge::connect("nats://127.0.0.1:4222")?;
//! bridge.ensure_stream(StreamOptions::new("ORDERS", ["orders.>"]))?;
//!
//! // Out: orders leave through JetStream; the receipt means stored.
//! let mut b = Builder::single_producer(1024, || 0u64, Blocking::new())?;
//! let out = b.add(bridge.publisher("jetstream", "orders.new", |id: &u64, _seq| {
//!     (format!("order-{id}"), id.to_le_bytes().to_vec())
//! }));
//! let (mut producer, queue) = b.build()?;
//! let stored = queue.tracker(out)?;
//! let seq = producer.publish(|o| *o = 42)?;
//! stored.wait_processed(seq, std::time::Duration::from_secs(10))?;
//!
//! // In, on another machine: a ring fed from a durable consumer, acknowledged after "apply".
//! let mut b = Builder::single_producer(1024, || (String::new(), 0u64), Blocking::new())?;
//! let apply = b.add(Consumer::new("apply", |(id, v): &(String, u64), _, _| {
//!     let _ = (id, v); // drop ids already applied, then apply
//! }));
//! let (input, inbound) = b.build()?;
//! let source = bridge.source(
//!     SourceOptions::new("ORDERS", "order-applier"),
//!     input,
//!     inbound.tracker(apply)?,
//!     |slot: &mut (String, u64), m| {
//!         slot.0 = m.id.unwrap_or_default().to_string();
//!         slot.1 = u64::from_le_bytes(m.payload.try_into().unwrap_or([0; 8]));
//!     },
//! )?;
//! // ... later
//! source.stop(std::time::Duration::from_secs(5))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
#![forbid(unsafe_code)]

mod error;
mod publisher;
mod source;

use std::time::Duration;

use async_nats::jetstream;

pub use error::BridgeError;
pub use publisher::{JetStreamPublisher, PublisherStats};
pub use source::{InMessage, Source, SourceOptions, SourceStats};

/// A stream to create (or check) with [`Bridge::ensure_stream`].
///
/// ```
/// use ringmq_nats::StreamOptions;
/// use std::time::Duration;
/// let s = StreamOptions::new("ORDERS", ["orders.>"])
///     .replicas(3)
///     .duplicate_window(Duration::from_secs(300));
/// assert_eq!(s.name(), "ORDERS");
/// ```
#[derive(Debug, Clone)]
pub struct StreamOptions {
    name: String,
    subjects: Vec<String>,
    replicas: usize,
    duplicate_window: Duration,
}

impl StreamOptions {
    /// A file-backed stream `name` over `subjects`, one replica, a two-minute duplicate window
    /// (JetStream's default).
    ///
    /// ```
    /// let s = ringmq_nats::StreamOptions::new("EVENTS", ["events.*"]);
    /// assert_eq!(s.name(), "EVENTS");
    /// ```
    pub fn new<S: Into<String>>(
        name: impl Into<String>,
        subjects: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            name: name.into(),
            subjects: subjects.into_iter().map(Into::into).collect(),
            replicas: 1,
            duplicate_window: Duration::from_secs(120),
        }
    }

    /// The stream's name.
    ///
    /// ```
    /// assert_eq!(ringmq_nats::StreamOptions::new("A", ["a"]).name(), "A");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Replicas on a clustered JetStream (1 on a single server). A publish is acknowledged once
    /// a majority of them stored it.
    ///
    /// ```
    /// let _ = ringmq_nats::StreamOptions::new("A", ["a"]).replicas(3);
    /// ```
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// How long the stream remembers message ids to drop a resend: longer than the longest
    /// outage a publisher should ride through.
    ///
    /// ```
    /// let _ = ringmq_nats::StreamOptions::new("A", ["a"]).duplicate_window(std::time::Duration::from_secs(600));
    /// ```
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }
}

/// A connection to NATS with its JetStream context, on the bridge's own runtime.
///
/// ```no_run
/// let bridge = ringmq_nats::Bridge::connect("nats://127.0.0.1:4222")?;
/// # Ok::<(), ringmq_nats::BridgeError>(())
/// ```
#[derive(Debug)]
pub struct Bridge {
    runtime: std::sync::Arc<tokio::runtime::Runtime>,
    jetstream: jetstream::Context,
    client: async_nats::Client,
}

impl Bridge {
    /// Connects to the NATS server at `url` (a `nats://host:port`, or several separated by
    /// commas for a cluster). The client reconnects by itself after a lost connection, forever;
    /// what was in flight is resent by the publisher and redelivered to the source.
    ///
    /// # Errors
    /// [`BridgeError::Connect`] if no server answers at first.
    ///
    /// ```no_run
    /// let bridge = ringmq_nats::Bridge::connect("nats://10.0.0.1:4222,nats://10.0.0.2:4222")?;
    /// # Ok::<(), ringmq_nats::BridgeError>(())
    /// ```
    pub fn connect(url: &str) -> Result<Bridge, BridgeError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("ringmq-nats")
            .enable_all()
            .build()
            .map_err(BridgeError::Runtime)?;
        // async-nats parses a `&str` as one address: a cluster's list is split here.
        let servers: Vec<&str> = url
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let client = runtime
            .block_on(
                async_nats::ConnectOptions::new()
                    .max_reconnects(None)
                    .connection_timeout(Duration::from_secs(5))
                    .connect(servers),
            )
            .map_err(|e| BridgeError::Connect {
                url: url.to_string(),
                source: Box::new(e),
            })?;
        let jetstream = jetstream::new(client.clone());
        Ok(Bridge {
            runtime: std::sync::Arc::new(runtime),
            jetstream,
            client,
        })
    }

    /// Creates the stream if it does not exist (file storage, the options' replicas and
    /// duplicate window); an existing stream is left as it is.
    ///
    /// # Errors
    /// [`BridgeError::JetStream`] if JetStream refuses (not enabled, subjects overlapping
    /// another stream's, more replicas than servers).
    ///
    /// ```no_run
    /// # let bridge = ringmq_nats::Bridge::connect("nats://127.0.0.1:4222")?;
    /// bridge.ensure_stream(ringmq_nats::StreamOptions::new("ORDERS", ["orders.>"]))?;
    /// # Ok::<(), ringmq_nats::BridgeError>(())
    /// ```
    pub fn ensure_stream(&self, options: StreamOptions) -> Result<(), BridgeError> {
        let config = jetstream::stream::Config {
            name: options.name.clone(),
            subjects: options.subjects,
            num_replicas: options.replicas,
            duplicate_window: options.duplicate_window,
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        };
        self.runtime
            .block_on(self.jetstream.get_or_create_stream(config))
            .map(drop)
            .map_err(|e| BridgeError::JetStream {
                doing: "creating the stream",
                source: Box::new(e),
            })
    }

    /// How long a JetStream request, and a publish's acknowledgement, may take before it counts
    /// as failed (5 s by default). Applies to publishers and sources made after the call.
    ///
    /// ```no_run
    /// let mut bridge = ringmq_nats::Bridge::connect("nats://127.0.0.1:4222")?;
    /// bridge.set_ack_timeout(std::time::Duration::from_secs(2));
    /// # Ok::<(), ringmq_nats::BridgeError>(())
    /// ```
    pub fn set_ack_timeout(&mut self, timeout: Duration) {
        self.jetstream.set_timeout(timeout);
    }

    /// The number of messages the stream holds (after duplicates were dropped).
    ///
    /// # Errors
    /// [`BridgeError::JetStream`] if the stream does not exist or JetStream does not answer.
    ///
    /// ```no_run
    /// # let bridge = ringmq_nats::Bridge::connect("nats://127.0.0.1:4222")?;
    /// let stored = bridge.stream_messages("ORDERS")?;
    /// # Ok::<(), ringmq_nats::BridgeError>(())
    /// ```
    pub fn stream_messages(&self, stream: &str) -> Result<u64, BridgeError> {
        self.runtime
            .block_on(async {
                let mut s = self.jetstream.get_stream(stream).await?;
                let info = s.info().await?;
                Ok::<u64, async_nats::Error>(info.state.messages)
            })
            .map_err(|e| BridgeError::JetStream {
                doing: "reading the stream's state",
                source: e,
            })
    }

    /// The NATS client (for subjects and requests of the service's own).
    ///
    /// ```no_run
    /// # let bridge = ringmq_nats::Bridge::connect("nats://127.0.0.1:4222")?;
    /// let _client = bridge.client().clone();
    /// # Ok::<(), ringmq_nats::BridgeError>(())
    /// ```
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The runtime, shared with publishers and sources so it outlives the `Bridge` value.
    pub(crate) fn runtime(&self) -> std::sync::Arc<tokio::runtime::Runtime> {
        self.runtime.clone()
    }
}
