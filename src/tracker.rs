//! Completion tracking: a producer's receipt for what became of its event.
//!
//! Every publish returns the event's sequence. A stage is done with sequence `s` once its sequence
//! (for a work pool: the minimum over its workers, see [`crate::WorkPool`]) is at least `s`; the
//! whole graph is done with it once every gating sequence is. A [`Tracker`] reads those with
//! `Acquire`, so whoever learns that `s` is processed also sees what the stage did before moving
//! past it (a reply it wrote, a file it flushed).
//!
//! "Processed" means the stage moved past the event: a handler that panicked on it under
//! [`PanicPolicy::SkipEvent`](crate::PanicPolicy) moved past it too.

use std::time::{Duration, Instant};

use crate::error::TrackerError;
use crate::protocol::barrier::Control;
use crate::protocol::lifecycle::{Lifecycle, Stop};
use crate::protocol::sequence::{minimum, Sequence};
use crate::protocol::sequencer::SequencerImpl;
use crate::protocol::wait::{task_waits, WaitStrategy, Waited};
use crate::protocol::wake::TaskWaits;
use crate::protocol::Core;
use crate::sync::Arc;

/// What a tracker needs of its queue, with the event, sequencer and wait strategy types erased:
/// a tracker is not generic, and its waits are not on anyone's hot path.
trait Progress: Send + Sync {
    fn gating_minimum(&self) -> i64;
    fn lifecycle(&self) -> &Lifecycle;
    fn wait(
        &self,
        ready: &mut dyn FnMut() -> Option<()>,
        stop: &mut dyn FnMut() -> Option<TrackerError>,
        deadline: Option<Instant>,
    ) -> Waited<(), TrackerError>;
    fn task_waits(&self) -> Option<TaskWaits<'_>>;
}

/// A queue's core behind a [`Progress`]: a std `Arc` of this is the trait object (loom's `Arc`,
/// which the core is in under the model checker, cannot be coerced to one).
struct Queue<E, S, W>(Arc<Core<E, S, W>>);

impl<E: Send + Sync, S: SequencerImpl, W: WaitStrategy> Progress for Queue<E, S, W> {
    fn gating_minimum(&self) -> i64 {
        self.0.gating.minimum(i64::MAX)
    }
    fn lifecycle(&self) -> &Lifecycle {
        &self.0.lifecycle
    }
    fn wait(
        &self,
        ready: &mut dyn FnMut() -> Option<()>,
        stop: &mut dyn FnMut() -> Option<TrackerError>,
        deadline: Option<Instant>,
    ) -> Waited<(), TrackerError> {
        self.0.wait.wait_until(ready, stop, deadline)
    }
    fn task_waits(&self) -> Option<TaskWaits<'_>> {
        task_waits(&self.0.wait)
    }
}

/// What a [`Tracker`] watches.
enum Watched {
    /// Every gating sequence: the whole graph.
    Graph,
    /// One stage's sequences.
    Stage {
        name: String,
        sequences: Box<[Arc<Sequence>]>,
        control: Arc<Control>,
    },
}

/// Tells when a stage, or the whole graph, has processed a sequence: the receipt for a publish.
///
/// Made by [`Disruptor::tracker`](crate::Disruptor::tracker) or
/// [`Poller::tracker`](crate::Poller::tracker) (one stage),
/// [`Disruptor::graph_tracker`](crate::Disruptor::graph_tracker) or
/// [`Producer::tracker`](crate::Producer::tracker) (the whole graph). Cheap to clone, `Send` and
/// `Sync`, and not generic (whatever the queue's event, sequencer and wait strategy): hand one
/// to every thread that waits for receipts, store it in any struct.
///
/// ```
/// use ringmq::{Builder, Consumer, Yielding};
/// use std::time::Duration;
///
/// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
/// let store = b.add(Consumer::new("store", |_row: &u64, _, _| { /* write it */ }));
/// let (mut producer, queue) = b.build()?;
/// let stored = queue.tracker(store)?;
///
/// let seq = producer.publish(|slot| *slot = 7)?;
/// stored.wait_processed(seq, Duration::from_secs(5))?; // the row is written
/// assert!(stored.is_processed(seq));
/// # drop(producer);
/// # queue.shutdown()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Tracker {
    queue: std::sync::Arc<dyn Progress>,
    watched: Arc<Watched>,
}

impl Tracker {
    pub(crate) fn graph<E: Send + Sync + 'static, S: SequencerImpl, W: WaitStrategy>(
        core: Arc<Core<E, S, W>>,
    ) -> Self {
        Self {
            queue: std::sync::Arc::new(Queue(core)),
            watched: Arc::new(Watched::Graph),
        }
    }

    pub(crate) fn stage<E: Send + Sync + 'static, S: SequencerImpl, W: WaitStrategy>(
        core: Arc<Core<E, S, W>>,
        name: String,
        sequences: Vec<Arc<Sequence>>,
        control: Arc<Control>,
    ) -> Self {
        Self {
            queue: std::sync::Arc::new(Queue(core)),
            watched: Arc::new(Watched::Stage {
                name,
                sequences: sequences.into_boxed_slice(),
                control,
            }),
        }
    }

    /// The highest sequence such that it and everything before it are processed.
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}));
    /// # let (mut producer, mut queue) = b.build()?;
    /// let t = queue.tracker(sink)?;
    /// let seq = producer.publish(|e| *e = 1)?;
    /// t.wait_processed(seq, Duration::from_secs(5))?;
    /// assert!(t.processed() >= seq);
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn processed(&self) -> i64 {
        match &*self.watched {
            Watched::Graph => self.queue.gating_minimum(),
            Watched::Stage { sequences, .. } => minimum(sequences, i64::MAX),
        }
    }

    /// Whether `sequence` is processed (by the stage, or by the whole graph).
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}));
    /// # let (mut producer, mut queue) = b.build()?;
    /// let t = queue.tracker(sink)?;
    /// let seq = producer.publish(|e| *e = 1)?;
    /// t.wait_processed(seq, Duration::from_secs(5))?;
    /// assert!(t.is_processed(seq));
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_processed(&self, sequence: i64) -> bool {
        self.processed() >= sequence
    }

    /// Waits, with the queue's wait strategy, until `sequence` is processed.
    ///
    /// # Errors
    /// [`TrackerError::Timeout`] if `timeout` passes first; [`TrackerError::Shutdown`] if the
    /// queue stopped and `sequence` will never be processed (halted, or past what shutdown
    /// drains); [`TrackerError::ConsumerFailed`] if a handler's panic stopped the queue;
    /// [`TrackerError::StageRemoved`] if the stage was removed; [`TrackerError::NoConsumers`]
    /// (the whole graph) if no stage is left.
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # use std::time::Duration;
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}));
    /// # let (mut producer, mut queue) = b.build()?;
    /// let seq = producer.publish(|e| *e = 1)?;
    /// queue.tracker(sink)?.wait_processed(seq, Duration::from_secs(5))?;
    /// // A sequence that was never published times out.
    /// let never = queue.tracker(sink)?.wait_processed(seq + 10, Duration::from_millis(1));
    /// assert_eq!(never, Err(ringmq::TrackerError::Timeout));
    /// # drop(producer);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_processed(&self, sequence: i64, timeout: Duration) -> Result<(), TrackerError> {
        if self.is_processed(sequence) {
            return Ok(());
        }
        let deadline = crate::sync::deadline_in(timeout);
        let mut ready = || self.is_processed(sequence).then_some(());
        let mut stop = || self.stop_for(sequence);
        match self.queue.wait(&mut ready, &mut stop, deadline) {
            Waited::Ready(()) => Ok(()),
            Waited::Stopped(e) => Err(e),
            Waited::TimedOut => Err(TrackerError::Timeout),
        }
    }
    /// Awaits the moment the watched stage (or the whole graph) has processed `sequence`: the
    /// async [`wait_processed`](Self::wait_processed), without a timeout of its own (wrap it in
    /// your runtime's). Resolves at once if it already has. Tasks sleep until the stage's next
    /// batch wakes them with a [`Blocking`](crate::Blocking) queue; with a polling strategy they
    /// re-poll through the executor.
    ///
    /// # Errors
    /// Those of [`wait_processed`](Self::wait_processed) but `Timeout`: the stage was removed, no
    /// stage is left, the queue shut down before `sequence` was published, or it halted or
    /// failed (`ConsumerFailed` names the handler).
    ///
    /// ```
    /// use ringmq::{Blocking, Builder, Consumer};
    ///
    /// let mut b = Builder::multi_producer(64, || 0u64, Blocking::new())?;
    /// let store = b.add(Consumer::new("store", |_: &u64, _, _| {}));
    /// let (mut producer, queue) = b.build()?;
    /// let receipts = queue.tracker(store)?;
    /// futures_executor::block_on(async {
    ///     let seq = producer.publish_async(|e| *e = 7).await?;
    ///     receipts.processed_async(seq).await?; // the store has handled it
    ///     Ok::<(), Box<dyn std::error::Error>>(())
    /// })?;
    /// # drop(producer); queue.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn processed_async(&self, sequence: i64) -> crate::future::Processed<'_> {
        crate::future::Processed::new(self, sequence)
    }

    /// Why nobody will ever process `sequence`, if so.
    pub(crate) fn stop_for(&self, sequence: i64) -> Option<TrackerError> {
        let lifecycle = self.queue.lifecycle();
        match &*self.watched {
            Watched::Stage { name, control, .. } if control.left() => {
                return Some(TrackerError::StageRemoved {
                    stage: name.clone(),
                });
            }
            // No live stage: nobody will process `sequence` (a stage that joins later
            // starts after what is published now).
            Watched::Graph if lifecycle.has_no_stage() => {
                return Some(TrackerError::NoConsumers);
            }
            _ => {}
        }
        match lifecycle.consumer_stop(sequence) {
            // Running, or draining with `sequence` within the drain: it will be processed.
            None => None,
            // Past what shutdown drains: never published, never processed.
            Some(Stop::Drained) => Some(TrackerError::Shutdown),
            Some(Stop::Halted) => Some(lifecycle.publish_error().into()),
        }
    }

    /// The queue's task table, if its strategy wakes tasks.
    pub(crate) fn task_waits(&self) -> Option<TaskWaits<'_>> {
        self.queue.task_waits()
    }
}

impl std::fmt::Debug for Tracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let watched = match &*self.watched {
            Watched::Graph => "the whole graph",
            Watched::Stage { name, .. } => name.as_str(),
        };
        f.debug_struct("Tracker")
            .field("watched", &watched)
            .field("processed", &self.processed())
            .finish()
    }
}
