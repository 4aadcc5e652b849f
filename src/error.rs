//! The errors of the producer handles and the trackers. Each variant says what happened and, in
//! its message, what to change. (Building and changing the graph have theirs in `graph::error`.)

use std::fmt;

/// Why a publish did not happen.
///
/// ```
/// use ringmq::{Builder, Consumer, PublishError, Yielding};
///
/// let mut b = Builder::single_producer(2, || 0u64, Yielding)?;
/// let (tx, rx) = std::sync::mpsc::channel::<()>();
/// // A consumer that waits for a go-ahead, so the ring fills up.
/// b.add(Consumer::new("slow", move |_: &u64, _, _| { let _ = rx.recv(); }));
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
    /// The queue has no live stage (the last one was removed, or the last poller dropped), so
    /// nothing would ever read the event: the publish is refused instead of waiting for room
    /// that nobody will make. A stage added with
    /// [`Disruptor::add`](crate::Disruptor::add) (or `add_after`, `add_pool`, `add_poller`)
    /// lets publishes through again.
    NoConsumers,
    /// The stall watchdog found a stage stalled (events waiting for it, its sequence still for
    /// its `stall_timeout`) and, by its [`StallPolicy::FailQueue`](crate::StallPolicy), stopped
    /// the queue.
    ConsumerStalled {
        /// The stalled stage.
        consumer: String,
        /// The sequence it did not get past.
        sequence: i64,
    },
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
            PublishError::ConsumerStalled { consumer, sequence } => write!(
                f,
                "stage `{consumer}` stalled at sequence {sequence} and its watchdog policy failed \
                 the queue; shut it down (the stalled thread is left to finish)"
            ),
            PublishError::NoConsumers => write!(
                f,
                "the queue has no live stage left, so nothing would read this event; \
                 add one with Disruptor::add, add_after, add_pool or add_poller, then publish again"
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

/// Why a [`Tracker`](crate::Tracker) stopped waiting for a sequence to be processed.
///
/// ```
/// use ringmq::{Builder, Consumer, TrackerError, Yielding};
/// use std::time::Duration;
///
/// let mut b = Builder::single_producer(8, || 0u64, Yielding)?;
/// let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}));
/// let (producer, queue) = b.build()?;
/// // Nothing was published: sequence 0 is not processed in time.
/// let late = queue.tracker(sink)?.wait_processed(0, Duration::from_millis(1));
/// assert_eq!(late, Err(TrackerError::Timeout));
/// # drop(producer);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrackerError {
    /// The timeout passed first.
    Timeout,
    /// The queue stopped and the sequence will never be processed: halted, or past what a
    /// shutdown drains.
    Shutdown,
    /// A consumer's handler panicked and, by its panic policy, stopped the queue.
    ConsumerFailed {
        /// The consumer whose handler panicked.
        consumer: String,
        /// The sequence it was handling.
        sequence: i64,
    },
    /// The stall watchdog failed the queue over a stalled stage (see
    /// [`PublishError::ConsumerStalled`]).
    ConsumerStalled {
        /// The stalled stage.
        consumer: String,
        /// The sequence it did not get past.
        sequence: i64,
    },
    /// The tracked stage was removed from the queue (or the tracked poller dropped).
    StageRemoved {
        /// The stage.
        stage: String,
    },
    /// The queue has no live stage: nobody will process the sequence (a stage added later starts
    /// after what is published now).
    NoConsumers,
}

impl fmt::Display for TrackerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrackerError::Timeout => write!(
                f,
                "the sequence was not processed before the timeout; wait longer, or check the stage's lag"
            ),
            TrackerError::Shutdown => write!(
                f,
                "the queue stopped and will not process this sequence (halted, or published after the close)"
            ),
            TrackerError::ConsumerFailed { consumer, sequence } => write!(
                f,
                "consumer `{consumer}` panicked at sequence {sequence} and halted the queue; \
                 shut it down to collect the panic"
            ),
            TrackerError::ConsumerStalled { consumer, sequence } => write!(
                f,
                "stage `{consumer}` stalled at sequence {sequence} and its watchdog policy failed \
                 the queue"
            ),
            TrackerError::StageRemoved { stage } => write!(
                f,
                "stage `{stage}` was removed, so it will not process this sequence; track another \
                 stage (Disruptor::tracker) or the whole graph (Disruptor::graph_tracker)"
            ),
            TrackerError::NoConsumers => write!(
                f,
                "the queue has no live stage left, so nothing will process this sequence; add a \
                 stage with Disruptor::add before publishing what must be tracked"
            ),
        }
    }
}

impl std::error::Error for TrackerError {}

impl From<PublishError> for TrackerError {
    /// The lifecycle's reasons for refusing a publish, as reasons a wait ended.
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::ConsumerFailed { consumer, sequence } => {
                TrackerError::ConsumerFailed { consumer, sequence }
            }
            PublishError::ConsumerStalled { consumer, sequence } => {
                TrackerError::ConsumerStalled { consumer, sequence }
            }
            PublishError::NoConsumers => TrackerError::NoConsumers,
            PublishError::Timeout => TrackerError::Timeout,
            _ => TrackerError::Shutdown,
        }
    }
}
