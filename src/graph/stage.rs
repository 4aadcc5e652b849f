//! Stages as the graph records them: their ids, their one [`StageKind`] enum, and a node.

use crate::protocol::barrier::Control;
use crate::protocol::sequence::Sequence;
use crate::sync::Arc;

/// A stage (consumer or work pool) of a [`Builder`](crate::Builder) or a running
/// [`Disruptor`](crate::Disruptor): pass it to `add_after` to place a stage after it, to
/// [`Disruptor::tracker`](crate::Disruptor::tracker) to follow it, to
/// [`Disruptor::remove`](crate::Disruptor::remove) to stop it. (A [`Poller`](crate::Poller) is
/// its own handle.)
///
/// ```
/// use ringmq::{BuildError, Builder, Consumer, Yielding};
///
/// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
/// let parse = b.add(Consumer::new("parse", |_: &u64, _, _| {}));
/// b.add_after(&[parse], Consumer::new("store", |_: &u64, _, _| {}))?;
/// // A handle belongs to its queue: another one refuses it.
/// let mut other = Builder::single_producer(64, || 0u64, Yielding)?;
/// let refused = other.add_after(&[parse], Consumer::new("x", |_: &u64, _, _| {}));
/// assert!(matches!(refused, Err(BuildError::ForeignStage { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StageId {
    /// The graph it belongs to (unique per builder).
    pub(crate) graph: u64,
    /// Its place in that graph.
    pub(crate) index: usize,
}

/// The old name of [`StageId`]: it names pools too, not only consumers.
#[deprecated(since = "0.2.0", note = "renamed StageId: it names pools too")]
pub type ConsumerId = StageId;

/// What a stage is. Adding a kind is one variant here: every `match` that must learn it fails to
/// compile until it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StageKind {
    /// One thread running a batch loop.
    Consumer,
    /// Threads that share one stage, each event to exactly one of them; `batch` is the most a
    /// worker claims at once.
    Pool { batch: usize },
    /// No thread: its owner polls it. It cannot be upstream of a stage (nothing would move it
    /// if its owner stopped polling).
    Poller,
}

impl StageKind {
    /// Whether a stage of this kind may be placed before another.
    pub(crate) fn can_be_upstream(self) -> bool {
        match self {
            StageKind::Consumer | StageKind::Pool { .. } => true,
            StageKind::Poller => false,
        }
    }
}

/// One stage of the graph.
#[derive(Debug)]
pub(crate) struct Stage {
    pub(crate) name: String,
    pub(crate) kind: StageKind,
    /// Indices of the stages it comes after (sorted, no duplicates; all below its own).
    pub(crate) upstream: Vec<usize>,
    /// Takes `&mut E`: ordered with every other stage (see `Graph::check_exclusive`).
    pub(crate) exclusive: bool,
    /// One per thread of the stage: a consumer and a poller have one, a pool one per worker.
    pub(crate) sequences: Vec<Arc<Sequence>>,
    /// One counter block per thread (per poller), beside `sequences`.
    pub(crate) counters: Vec<Arc<crate::consume::counters::StageCounters>>,
    /// The stall watchdog's timeout and policy for it, if it asked for one.
    pub(crate) stall: Option<(std::time::Duration, crate::graph::watchdog::StallPolicy)>,
    /// Set by the watchdog when its policy leaves the stage's threads to finish on their own.
    pub(crate) detached: crate::graph::watchdog::Detached,
    /// Added while running: it may start ahead of its upstream, which must then keep gating.
    pub(crate) dynamic: bool,
    /// Removed (its threads joined) or, for a poller, dropped: no longer part of the graph.
    pub(crate) gone: bool,
    /// Asks its threads to leave.
    pub(crate) control: Arc<Control>,
    /// The first sequence the stage sees.
    pub(crate) first: i64,
}

impl Stage {
    pub(crate) fn live(&self) -> bool {
        !self.gone
    }
}
