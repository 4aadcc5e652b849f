//! Errors. Each variant says what happened and, in its message, what to change.

use std::fmt;

use crate::consumer::Hook;
use crate::report::ShutdownReport;

/// Why a queue, or a stage added to or removed from a running one, could not be built.
///
/// ```
/// use ringmq::{BuildError, Builder, Yielding};
///
/// let err = Builder::single_producer(1000, || 0u64, Yielding).err().unwrap();
/// assert!(matches!(err, BuildError::Capacity { requested: 1000, .. }));
/// // The message says what to change:
/// assert!(err.to_string().contains("1024"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// The capacity is not a power of two between 1 and 2^30.
    Capacity {
        /// The capacity asked for.
        requested: usize,
        /// The nearest valid capacity below it, if any.
        below: Option<usize>,
        /// The nearest valid capacity above it, if any.
        above: Option<usize>,
    },
    /// `pin_to_core` named a core this machine does not have.
    NoSuchCore {
        /// The consumer that asked for it.
        consumer: String,
        /// The core asked for.
        requested: usize,
        /// The cores that exist (as core_affinity reports them).
        available: Vec<usize>,
    },
    /// A consumer handle from another builder was passed to this one.
    ForeignConsumer {
        /// The handle's consumer index in its own builder.
        index: usize,
    },
    /// The builder has no consumer: nothing would gate the producers.
    NoConsumers,
    /// An exclusive (`&mut E`) stage is not ordered before or after another consumer, which could
    /// then read a slot while the exclusive stage writes it.
    NotExclusive {
        /// The exclusive consumer.
        exclusive: String,
        /// The consumer that may run concurrently with it.
        concurrent: String,
    },
    /// The consumer handle names a stage that was removed (or a poller that was dropped).
    Removed {
        /// The stage's name.
        consumer: String,
    },
    /// The stage cannot be removed while other stages depend on it.
    HasDependents {
        /// The stage asked to be removed.
        consumer: String,
        /// A live stage that comes after it.
        dependent: String,
    },
    /// A poller cannot be upstream of another stage: nothing would move it along if its owner
    /// stopped polling.
    PollerUpstream {
        /// The poller.
        poller: String,
    },
    /// The queue is shut down or halted: no stage can join it.
    NotRunning,
    /// The handle does not name a poller made by `Builder::add_poller`, or it was already taken.
    NoPoller {
        /// The handle's index.
        index: usize,
    },
    /// The operating system refused to start a consumer thread.
    Spawn {
        /// The consumer whose thread failed to start.
        consumer: String,
        /// The operating system's message.
        message: String,
    },
    /// [`Disruptor::remove`](crate::Disruptor::remove) was called from inside the stage it
    /// removes, whose thread cannot wait for itself to stop.
    SelfRemoval {
        /// The stage.
        consumer: String,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Capacity {
                requested,
                below,
                above,
            } => {
                write!(
                    f,
                    "capacity {requested} is not a power of two between 1 and 2^30"
                )?;
                match (below, above) {
                    (Some(b), Some(a)) => write!(f, "; use {b} or {a}"),
                    (Some(b), None) => write!(f, "; use {b}"),
                    (None, Some(a)) => write!(f, "; use {a}"),
                    (None, None) => Ok(()),
                }
            }
            BuildError::NoSuchCore {
                consumer,
                requested,
                available,
            } => write!(
                f,
                "consumer `{consumer}` asks for core {requested}, but this machine has cores {available:?}; \
                 pin to one of those or drop pin_to_core"
            ),
            BuildError::ForeignConsumer { index } => write!(
                f,
                "consumer handle #{index} belongs to another builder; pass handles only to the builder that made them"
            ),
            BuildError::NoConsumers => write!(
                f,
                "the queue has no consumer, so nothing would stop producers overwriting events; add a handler before build()"
            ),
            BuildError::NotExclusive {
                exclusive,
                concurrent,
            } => write!(
                f,
                "exclusive stage `{exclusive}` may run at the same time as `{concurrent}`; \
                 order `{concurrent}` before or after it (with `after`), or make `{exclusive}` a shared handler"
            ),
            BuildError::Removed { consumer } => write!(
                f,
                "stage `{consumer}` was removed; use a handle of a live stage"
            ),
            BuildError::HasDependents {
                consumer,
                dependent,
            } => write!(
                f,
                "stage `{consumer}` cannot be removed while `{dependent}` comes after it; remove `{dependent}` first"
            ),
            BuildError::PollerUpstream { poller } => write!(
                f,
                "poller `{poller}` cannot be upstream of a stage; place the stage after what the poller follows"
            ),
            BuildError::NotRunning => write!(
                f,
                "the queue is shut down or halted, so nothing can join it; add stages while it runs"
            ),
            BuildError::NoPoller { index } => write!(
                f,
                "handle #{index} is not an untaken poller; take each poller from Builder::add_poller once"
            ),
            BuildError::SelfRemoval { consumer } => write!(
                f,
                "stage `{consumer}` cannot remove itself from inside its handler (its thread would \
                 wait for itself); call remove from another thread"
            ),
            BuildError::Spawn { consumer, message } => {
                write!(f, "could not start the thread of consumer `{consumer}`: {message}")
            }
        }
    }
}

impl std::error::Error for BuildError {}

/// Why a publish did not happen.
///
/// ```
/// use ringmq::{Builder, Consumer, PublishError, Yielding};
///
/// let mut b = Builder::single_producer(2, || 0u64, Yielding)?;
/// let (tx, rx) = std::sync::mpsc::channel::<()>();
/// // A consumer that waits for a go-ahead, so the ring fills up.
/// b.add(Consumer::new("slow", move |_: &u64, _, _| { let _ = rx.recv(); }))?;
/// let (mut producer, queue) = b.build()?;
/// producer.publish(|e| *e = 1)?;
/// producer.publish(|e| *e = 2)?;
/// // Full: `try_publish` says so at once instead of waiting.
/// assert_eq!(producer.try_publish(|e| *e = 3), Err(PublishError::Full));
/// drop(tx); // release the consumer
/// drop(producer);
/// queue.shutdown()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishError {
    /// The ring has no room for the claim right now (`try_publish*` only).
    Full,
    /// No room came before the deadline (`publish_timeout*` only).
    Timeout,
    /// The queue is shut down (or halted): nothing more will be consumed.
    Shutdown,
    /// A consumer's handler panicked and, by its panic policy, stopped the queue.
    ConsumerFailed {
        /// The consumer whose handler panicked.
        consumer: String,
        /// The sequence it was handling.
        sequence: i64,
    },
    /// The stage a [`Tracker`](crate::Tracker) waited on was removed from the queue.
    StageRemoved {
        /// The stage.
        consumer: String,
    },
    /// The queue has no live stage (the last one was removed, or the last poller dropped), so
    /// nothing would ever read the event: the publish is refused instead of waiting for room
    /// that nobody will make. A stage added with
    /// [`Disruptor::add_consumer`](crate::Disruptor::add_consumer) (or `add_pool`, `add_poller`)
    /// lets publishes through again.
    NoConsumers,
    /// A batch larger than the ring can never fit.
    BatchTooLarge {
        /// The batch size asked for.
        requested: usize,
        /// The ring's capacity.
        capacity: usize,
    },
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PublishError::Full => write!(
                f,
                "the ring is full: retry later, use publish() to wait, or give consumers more room"
            ),
            PublishError::Timeout => write!(
                f,
                "no room in the ring before the timeout: consumers are behind; wait longer or add capacity"
            ),
            PublishError::Shutdown => write!(
                f,
                "the queue is shut down; build a new one to publish again"
            ),
            PublishError::ConsumerFailed { consumer, sequence } => write!(
                f,
                "consumer `{consumer}` panicked at sequence {sequence} and halted the queue; \
                 shut it down to collect the panic"
            ),
            PublishError::StageRemoved { consumer } => write!(
                f,
                "stage `{consumer}` was removed, so it will not process this event; track another stage or the whole graph"
            ),
            PublishError::NoConsumers => write!(
                f,
                "the queue has no live stage left, so nothing would read this event; \
                 add one with Disruptor::add_consumer, add_pool or add_poller, then publish again"
            ),
            PublishError::BatchTooLarge {
                requested,
                capacity,
            } => write!(
                f,
                "a batch of {requested} can never fit a ring of {capacity}; split it or build a larger ring"
            ),
        }
    }
}

impl std::error::Error for PublishError {}

/// What went wrong while shutting a queue down.
///
/// ```
/// use ringmq::{Builder, Consumer, ShutdownError, Yielding};
///
/// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
/// b.add(Consumer::new("picky", |v: &u64, _, _| assert!(*v < 3, "too big")))?;
/// let (mut producer, queue) = b.build()?;
/// for v in 0..5 {
///     // The handler's panic halts the queue (the default policy): publishes may fail after it.
///     if producer.publish(|e| *e = v).is_err() {
///         break;
///     }
/// }
/// drop(producer);
/// match queue.shutdown() {
///     Err(ShutdownError::ConsumerPanicked { consumer, sequence, .. }) => {
///         assert_eq!((consumer.as_str(), sequence), ("picky", 3));
///     }
///     other => panic!("expected the panic, got {other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShutdownError {
    /// A consumer's handler panicked: under `HaltAll` or `HaltConsumer`, or in `on_shutdown`
    /// under any policy. When several did, this is the one that failed the queue (the one
    /// producers were told of), else the first in time; `report` has every consumer's end state.
    ConsumerPanicked {
        /// The consumer.
        consumer: String,
        /// Which of its calls panicked.
        hook: Hook,
        /// For `on_event`, the event; see [`HandlerPanic::sequence`](crate::HandlerPanic::sequence)
        /// for the other hooks.
        sequence: i64,
        /// The panic's message.
        message: String,
        /// What every consumer thread did, this one included.
        report: ShutdownReport,
    },
    /// The consumers did not finish draining before the timeout; they were halted.
    Timeout,
    /// `shutdown`, `shutdown_timeout` or `halt` was called on the thread of one of the queue's
    /// own consumers (from inside a handler), which cannot wait for itself to finish. The queue
    /// was closed (or halted) all the same and drains as usual, but its threads were not joined
    /// and no report is available.
    OnConsumerThread {
        /// The consumer whose thread made the call.
        consumer: String,
    },
}

impl fmt::Display for ShutdownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShutdownError::ConsumerPanicked {
                consumer,
                hook,
                sequence,
                message,
                ..
            } => write!(
                f,
                "consumer `{consumer}` panicked in {hook} at sequence {sequence}: {message}"
            ),
            ShutdownError::Timeout => write!(
                f,
                "consumers did not drain before the timeout and were halted; \
                 give shutdown_timeout more time or find the handler that blocks"
            ),
            ShutdownError::OnConsumerThread { consumer } => write!(
                f,
                "shutdown was called from inside consumer `{consumer}`, whose thread cannot wait \
                 for itself: the queue is closed and drains, but no report is collected; call \
                 shutdown from a thread the queue does not own (or signal one to do it)"
            ),
        }
    }
}

impl std::error::Error for ShutdownError {}
