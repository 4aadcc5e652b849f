//! # ringmq
//!
//! A lock-free message queue on a pre-allocated ring buffer, in the style of the LMAX Disruptor.
//!
//! Producers claim sequence numbers, write events in place into the ring's slots and publish them;
//! consumers, each on its own thread, wait on a *barrier* for the sequences they depend on and
//! process whole batches at a time. Nothing is allocated on the hot path, nothing is locked, and
//! nothing is lost: a full ring makes producers wait (or fail with `Full` / `Timeout`, on request),
//! never overwrites, and shutdown drains every published event.
//!
//! ## Concepts
//! - **Ring**: `capacity` (a power of two) slots, built once by your factory and reused forever.
//! - **Sequence**: every event's number; slot `sequence & (capacity - 1)` holds it. Each consumer
//!   owns a sequence: the last event it finished.
//! - **Producer** ([`Producer`]): claims and publishes. [`SingleProducer`] for one thread (no atomic
//!   read-modify-write to claim), [`MultiProducer`] (cloneable) for many.
//! - **Barrier**: what a consumer waits for: the producers' cursor, or the consumers before it.
//! - **Stage / graph**: consumers added with [`Builder::add`] see every event (multicast);
//!   [`Builder::add_after`] orders them into pipelines, diamonds, any DAG; each stage has a
//!   [`StageId`]. An *exclusive* consumer ([`Consumer::exclusive`]) may change events in place
//!   for later stages.
//! - **Work pool** ([`WorkPool`]): N worker threads that form one stage; each event is handled by
//!   exactly one of them (the first free worker claims the next small batch), and later stages
//!   depend on the pool as a whole. One-of-many, where a plain stage is one-to-many.
//! - **Poller** ([`Poller`]): a stage without a thread, for a loop you own: `poll` hands over what
//!   is available and says whether it was [`PollState::Gated`] or [`PollState::Idle`]; dropping it
//!   removes it from gating.
//! - **Gating**: producers never lap the last consumers of the graph. The set of gating sequences
//!   changes while running ([`Disruptor::add`], [`Disruptor::add_after`], [`Disruptor::add_pool`],
//!   [`Disruptor::add_poller`], [`Disruptor::remove`]); a joining stage starts after what is
//!   already published and can never read a slot a producer is about to overwrite.
//! - **Receipts** ([`Tracker`]): `publish` returns the event's sequence; a tracker tells whether a
//!   stage, or the whole graph, has processed it ([`Tracker::is_processed`],
//!   [`Tracker::wait_processed`] with a timeout).
//! - **Failures**: a handler panic follows the consumer's [`PanicPolicy`]; a
//!   [`FallibleHandler`] may instead ask for its batch to be replayed ([`Retry`]), up to its
//!   [`RetryPolicy`], before the panic policy applies.
//! - **Wait strategy** ([`wait`]): how threads wait: [`BusySpin`], [`Yielding`], [`Sleeping`],
//!   [`Blocking`]; the [`wait`] module says when to pick which.
//! - **Async** ([`future`]): tasks instead of threads, on any executor: [`Producer::publish_async`]
//!   and [`Producer::publish_batch_async`] await room, [`Poller::poll_async`] and
//!   [`Poller::events`] await events, [`Tracker::processed_async`] awaits a receipt. All
//!   cancellation-safe (no claim is held across an await); with [`Blocking`] a waiting task is
//!   woken by whoever moves the sequence it waits on.
//! - **Processes** ([`ipc`], Linux): the same ring in a shared-memory segment, surviving a killed
//!   peer.
//! - **Disk and other machines**, in workspace crates built on this one: `ringmq-journal` (a
//!   journal stage whose receipt means durable, replay, checkpoints) and `ringmq-nats` (a bridge
//!   to NATS JetStream: a stage whose receipt means stored by the stream, and a source from a
//!   durable consumer acknowledged after a stage you choose).
//!
//! ## Where things are
//! - `protocol/`: sequences, the ring, the sequencers (`single`, `multi`), barriers, the gating
//!   set, the lifecycle, wait strategies and task wake-ups (`wake`): the hot path (claim,
//!   publish, wait) and nearly all `unsafe`.
//! - `consume/`: handlers, the batch loop with its panic and retry policies, work pools, pollers;
//!   one delivery function for all of them.
//! - `graph/`: stage ids and kinds, the graph, thread spawning, the builder and the running queue,
//!   reports and errors; no `unsafe`.
//! - `producer.rs`, `tracker.rs`, `future.rs`: the producer handles, receipts and the async
//!   futures, thin front ends over the protocol.
//!
//! ## Example
//! ```
//! use ringmq::{Builder, Consumer, Yielding};
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::sync::Arc;
//!
//! let total = Arc::new(AtomicU64::new(0));
//! let sum = total.clone();
//! let mut builder = Builder::single_producer(1024, || 0u64, Yielding)?;
//! builder.add(Consumer::new("sum", move |n: &u64, _seq, _end_of_batch| {
//!     sum.fetch_add(*n, Ordering::Relaxed);
//! }));
//! let (mut producer, queue) = builder.build()?;
//! for i in 1..=100 {
//!     producer.publish(|slot| *slot = i)?;
//! }
//! drop(producer); // closes the queue: consumers drain what was published
//! queue.shutdown()?;
//! assert_eq!(total.load(Ordering::Relaxed), 5050);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Model checking
//! Built with `RUSTFLAGS="--cfg loom"`, ringmq takes its atomics, cells, threads and locks from
//! [loom](https://docs.rs/loom) (see the `sync` module), so code that uses ringmq can be
//! model-checked together with it.

#![deny(missing_docs)]
#![deny(missing_debug_implementations)]
#![deny(clippy::undocumented_unsafe_blocks)]
#![warn(unsafe_op_in_unsafe_fn)]

mod consume;
mod diag;
mod error;
pub mod future;
mod graph;
#[cfg(all(target_os = "linux", not(loom)))]
pub mod ipc;
mod producer;
mod protocol;
mod sync;
mod tracker;

/// README.md's examples, compiled and run as doctests so the README cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use consume::consumer::{Consumer, Hook, PanicPolicy};
pub use consume::counters::{Counts, BATCH_BUCKETS};
pub use consume::handler::{
    EventHandler, ExclusiveFactory, ExclusiveFn, ExclusiveHandler, FallibleFactory, FallibleFn,
    FallibleHandler, IntoProcess, Retry, RetryPolicy, SharedFactory, SharedFn,
};
pub use consume::poller::{PollState, Poller};
pub use consume::pool::WorkPool;
pub use error::{PublishError, TrackerError};
pub use graph::builder::Builder;
pub use graph::error::{BuildError, ShutdownError, StageError};
pub use graph::metrics::{QueueMetrics, StageMetrics};
pub use graph::queue::Disruptor;
pub use graph::report::{ConsumerReport, HandlerPanic, ShutdownReport};
#[allow(deprecated)]
pub use graph::stage::{ConsumerId, StageId};
pub use graph::watchdog::{Stall, StallPolicy};
pub use producer::{MultiProducer, Producer, SingleProducer};
pub use protocol::sequence::INITIAL;
pub use protocol::sequencer::{Multi, Sequencer, Single};
pub use protocol::wait;
pub use protocol::wait::{
    Blocking, BusySpin, PollingWait, Sleeping, WaitStrategy, Waited, Yielding,
};
pub use tracker::Tracker;
