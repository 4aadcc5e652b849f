//! The errors of building a queue and of changing or querying its graph while it runs. Each
//! variant says what happened and, in its message, what to change (naming the method to call).

use std::fmt;

use crate::consume::consumer::Hook;
use crate::graph::report::ShutdownReport;

/// Why a queue could not be built, or a stage could not be added to a builder or a running queue.
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
    /// A [`StageId`](crate::StageId) from another queue was passed as upstream.
    ForeignStage {
        /// The handle's index in its own queue.
        index: usize,
    },
    /// An upstream handle names a stage that was removed.
    RemovedUpstream {
        /// The stage's name.
        stage: String,
    },
    /// The builder has no live stage: nothing would gate the producers.
    NoConsumers,
    /// An exclusive (`&mut E`) stage is not ordered before or after another stage, which could
    /// then read a slot while the exclusive stage writes it.
    NotExclusive {
        /// The exclusive stage.
        exclusive: String,
        /// The stage that may run concurrently with it.
        concurrent: String,
    },
    /// The queue is shut down or halted: no stage can join it.
    NotRunning,
    /// The operating system refused to start a consumer thread.
    Spawn {
        /// The consumer whose thread failed to start.
        consumer: String,
        /// The operating system's message.
        message: String,
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
                 pin to one of those or drop Consumer::pin_to_core"
            ),
            BuildError::ForeignStage { index } => write!(
                f,
                "stage handle #{index} belongs to another queue; pass a StageId only to the builder \
                 or queue whose add/add_after/add_pool returned it"
            ),
            BuildError::RemovedUpstream { stage } => write!(
                f,
                "stage `{stage}` was removed, so nothing can be placed after it; name a live stage in add_after"
            ),
            BuildError::NoConsumers => write!(
                f,
                "the queue has no stage, so nothing would stop producers overwriting events; \
                 add one with Builder::add (or add_after, add_pool, add_poller) before build()"
            ),
            BuildError::NotExclusive {
                exclusive,
                concurrent,
            } => write!(
                f,
                "exclusive stage `{exclusive}` may run at the same time as `{concurrent}`; \
                 order `{concurrent}` before or after it (with add_after), or make `{exclusive}` a shared handler (Consumer::new)"
            ),
            BuildError::NotRunning => write!(
                f,
                "the queue is shut down or halted, so nothing can join it; add stages while it runs"
            ),
            BuildError::Spawn { consumer, message } => {
                write!(f, "could not start the thread of consumer `{consumer}`: {message}")
            }
        }
    }
}

impl std::error::Error for BuildError {}

/// Why an operation on a stage of a running queue (tracking, lag, first sequence, removal) could
/// not be done.
///
/// ```
/// use ringmq::{Builder, Consumer, StageError, Yielding};
///
/// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
/// let parse = b.add(Consumer::new("parse", |_: &u64, _, _| {}));
/// let store = b.add_after(&[parse], Consumer::new("store", |_: &u64, _, _| {}))?;
/// let (producer, mut queue) = b.build()?;
/// let err = queue.remove(parse).unwrap_err();
/// assert!(matches!(err, StageError::HasDependents { .. }));
/// assert!(err.to_string().contains("remove `store` first"));
/// queue.remove(store)?;
/// queue.remove(parse)?;
/// assert!(matches!(queue.lag(parse), Err(StageError::Removed { .. })));
/// # drop(producer);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StageError {
    /// The [`StageId`](crate::StageId) belongs to another queue.
    ForeignStage {
        /// The handle's index in its own queue.
        index: usize,
    },
    /// The stage was removed.
    Removed {
        /// The stage's name.
        stage: String,
    },
    /// The stage cannot be removed while other stages come after it.
    HasDependents {
        /// The stage asked to be removed.
        stage: String,
        /// A live stage that comes after it.
        dependent: String,
    },
    /// [`Disruptor::remove`](crate::Disruptor::remove) was called from inside the stage it
    /// removes, whose thread cannot wait for itself to stop.
    SelfRemoval {
        /// The stage.
        stage: String,
    },
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StageError::ForeignStage { index } => write!(
                f,
                "stage handle #{index} belongs to another queue; pass a StageId only to the queue \
                 whose builder or add/add_after/add_pool returned it"
            ),
            StageError::Removed { stage } => write!(
                f,
                "stage `{stage}` was removed; use the handle of a live stage"
            ),
            StageError::HasDependents { stage, dependent } => write!(
                f,
                "stage `{stage}` cannot be removed while `{dependent}` comes after it; remove `{dependent}` first"
            ),
            StageError::SelfRemoval { stage } => write!(
                f,
                "stage `{stage}` cannot remove itself from inside its handler (its thread would \
                 wait for itself); call Disruptor::remove from another thread"
            ),
        }
    }
}

impl std::error::Error for StageError {}

/// What went wrong while shutting a queue down.
///
/// ```
/// use ringmq::{Builder, Consumer, ShutdownError, Yielding};
///
/// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
/// b.add(Consumer::new("picky", |v: &u64, _, _| assert!(*v < 3, "too big")));
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
    /// The stall watchdog failed the queue over a stalled stage
    /// ([`StallPolicy::FailQueue`](crate::StallPolicy::FailQueue)); its threads were left to
    /// finish and are not in `report`, which has every other consumer thread.
    ConsumerStalled {
        /// The stalled stage.
        consumer: String,
        /// The sequence it did not get past.
        sequence: i64,
        /// What every other consumer thread did.
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
            ShutdownError::ConsumerStalled {
                consumer, sequence, ..
            } => write!(
                f,
                "stage `{consumer}` stalled at sequence {sequence} and its watchdog policy failed \
                 the queue; its threads were left to finish"
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
