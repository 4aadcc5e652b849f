//! The consumer graph: stages and their order, validated once for the builder and the running
//! queue alike, and the gating set computed from it.
//!
//! Stages form a directed acyclic graph: a stage placed after others sees each event only once
//! all of them are done with it. The graph decides which sequences gate the producers: every
//! live stage nothing live depends on, and every live stage that a stage added at runtime depends
//! on (that stage may start ahead of its upstream, see `protocol::gating`). Every other stage is,
//! by construction, ahead of something that gates.
//!
//! [`Wired`] is a graph over a queue's core: the builder and the running queue are both one, so
//! adding a stage, making a poller or a tracker, and changing the gating set are written once.

use std::sync::atomic::{AtomicU64, Ordering as StdOrdering};

use crate::consume::poller::Poller;
use crate::graph::error::{BuildError, StageError};
use crate::graph::spawn::NewStage;
use crate::graph::stage::{Stage, StageId};
use crate::protocol::barrier::{Barrier, Control};
use crate::protocol::sequence::{Sequence, INITIAL};
use crate::protocol::sequencer::SequencerImpl;
use crate::protocol::wait::WaitStrategy;
use crate::protocol::Core;
use crate::sync::{Arc, Mutex};
use crate::tracker::Tracker;

/// Distinguishes graphs, so a handle from one cannot be used in another.
static NEXT_GRAPH_ID: AtomicU64 = AtomicU64::new(0);

/// The stages of one queue, in the order they were added (a stage only comes after earlier ones).
#[derive(Debug)]
pub(crate) struct Graph {
    id: u64,
    pub(crate) stages: Vec<Stage>,
}

impl Graph {
    pub(crate) fn new() -> Self {
        Self {
            id: NEXT_GRAPH_ID.fetch_add(1, StdOrdering::Relaxed),
            stages: Vec::new(),
        }
    }

    /// The handle of stage `index`.
    pub(crate) fn id_of(&self, index: usize) -> StageId {
        StageId {
            graph: self.id,
            index,
        }
    }

    /// The index of the live stage `id` names.
    pub(crate) fn resolve(&self, id: StageId) -> Result<usize, StageError> {
        if id.graph != self.id || id.index >= self.stages.len() {
            return Err(StageError::ForeignStage { index: id.index });
        }
        let stage = &self.stages[id.index];
        if stage.live() {
            Ok(id.index)
        } else {
            Err(StageError::Removed {
                stage: stage.name.clone(),
            })
        }
    }

    /// Checks `upstream` for a new stage: every handle from this graph and live. Returns the
    /// indices, sorted, without duplicates.
    pub(crate) fn upstream_of(&self, upstream: &[StageId]) -> Result<Vec<usize>, BuildError> {
        let mut indices = Vec::with_capacity(upstream.len());
        for &id in upstream {
            let index = self.resolve(id).map_err(|e| match e {
                StageError::Removed { stage } => BuildError::RemovedUpstream { stage },
                _ => BuildError::ForeignStage { index: id.index },
            })?;
            // A poller has no `StageId` of the user's: nothing can be placed after one (nothing
            // would move it along if its owner stopped polling).
            debug_assert!(self.stages[index].kind.can_be_upstream());
            indices.push(index);
        }
        indices.sort_unstable();
        indices.dedup();
        Ok(indices)
    }

    /// Every exclusive live stage must be ordered (upstream or downstream) with every other live
    /// stage; `candidate` (name, upstream, exclusive) is checked as if it were added.
    pub(crate) fn check_exclusive(
        &self,
        candidate: Option<(&str, &[usize], bool)>,
    ) -> Result<(), BuildError> {
        let shape: Vec<(&str, &[usize], bool)> = self
            .stages
            .iter()
            .map(|s| {
                // A removed stage is passed with no name, and skipped.
                let name = if s.live() { s.name.as_str() } else { "" };
                (name, s.upstream.as_slice(), s.exclusive)
            })
            .chain(candidate)
            .collect();
        check_exclusive(&shape)
    }

    /// Whether any stage is live.
    pub(crate) fn has_live_stage(&self) -> bool {
        self.stages.iter().any(Stage::live)
    }

    /// The sequences that gate producers (see the module docs).
    pub(crate) fn gating_sequences(&self) -> Vec<Arc<Sequence>> {
        let mut set = Vec::new();
        for (i, stage) in self.stages.iter().enumerate() {
            if !stage.live() {
                continue;
            }
            let mut dependents = self
                .stages
                .iter()
                .filter(|d| d.live() && d.upstream.contains(&i))
                .peekable();
            let leaf = dependents.peek().is_none();
            if leaf || dependents.any(|d| d.dynamic) {
                set.extend(stage.sequences.iter().cloned());
            }
        }
        set
    }

    /// What stage `index` waits on: its upstream stages' sequences (empty: the producers).
    pub(crate) fn upstream_sequences(&self, index: usize) -> Vec<Arc<Sequence>> {
        self.stages[index]
            .upstream
            .iter()
            .flat_map(|&u| self.stages[u].sequences.iter().cloned())
            .collect()
    }

    /// The first live stage that comes right after stage `index`, if any.
    pub(crate) fn dependent_of(&self, index: usize) -> Option<&Stage> {
        self.stages
            .iter()
            .find(|d| d.live() && d.upstream.contains(&index))
    }
}

/// Every exclusive stage must be ordered (upstream or downstream) with every other stage.
/// `stages[i] = (name, upstream, exclusive)`; stages only depend on earlier ones. A removed
/// stage is passed with no name (`""`) and is skipped.
fn check_exclusive(stages: &[(&str, &[usize], bool)]) -> Result<(), BuildError> {
    let n = stages.len();
    // reach[i][j]: j is upstream of i (transitively).
    let mut reach = vec![vec![false; n]; n];
    for (i, &(_, upstream, _)) in stages.iter().enumerate() {
        for &u in upstream {
            // `u < i`, so `reach[u]` is complete: everything upstream of `u` is upstream of `i`.
            let (done, rest) = reach.split_at_mut(i);
            for (mine, &theirs) in rest[0].iter_mut().zip(&done[u]) {
                *mine |= theirs;
            }
            rest[0][u] = true;
        }
    }
    for (i, &(name, _, exclusive)) in stages.iter().enumerate() {
        if !exclusive || name.is_empty() {
            continue;
        }
        for (j, &(other, _, _)) in stages.iter().enumerate() {
            if i != j && !other.is_empty() && !reach[i][j] && !reach[j][i] {
                return Err(BuildError::NotExclusive {
                    exclusive: name.to_owned(),
                    concurrent: other.to_owned(),
                });
            }
        }
    }
    Ok(())
}

/// A graph over a queue's core: what the builder and the running queue both are.
pub(crate) struct Wired<E, S, W> {
    pub(crate) core: Arc<Core<E, S, W>>,
    pub(crate) graph: Arc<Mutex<Graph>>,
}

impl<E, S, W> Wired<E, S, W> {
    /// Reads the graph under its lock.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Graph) -> R) -> R {
        f(&self.graph.lock().unwrap())
    }

    /// Changes what the graph records under its lock, leaving the gating set as it is (which
    /// [`change`](Self::change) replaces).
    pub(crate) fn write<R>(&self, f: impl FnOnce(&mut Graph) -> R) -> R {
        f(&mut self.graph.lock().unwrap())
    }
}

impl<E: Send + Sync + 'static, S: SequencerImpl, W: WaitStrategy> Wired<E, S, W> {
    pub(crate) fn new(core: Core<E, S, W>) -> Self {
        Self {
            core: Arc::new(core),
            graph: Arc::new(Mutex::new(Graph::new())),
        }
    }

    /// Changes the graph and installs its gating set (see [`change`]).
    pub(crate) fn change<R>(&self, f: impl FnOnce(&mut Graph) -> R) -> R {
        change(&self.core, &self.graph, f)
    }

    /// Records `new` after `upstream`, its sequences at `start`; checks the upstream handles and,
    /// for a `dynamic` stage, exclusivity against the live graph (the running queue checks
    /// at once; the builder checks the whole graph at `build`). `dynamic` stages join a running
    /// queue: the gating set is replaced (with its grace period) as they are added.
    pub(crate) fn add_stage(
        &self,
        upstream: &[StageId],
        new: &NewStage<E, S, W>,
        start: i64,
        dynamic: bool,
    ) -> Result<usize, BuildError> {
        let (name, exclusive) = (new.name.clone(), new.exclusive);
        let upstream = self.read(|g| {
            let upstream = g.upstream_of(upstream)?;
            if dynamic {
                g.check_exclusive(Some((&name, &upstream, exclusive)))?;
            }
            Ok::<_, BuildError>(upstream)
        })?;
        let stage = Stage {
            name,
            kind: new.kind,
            upstream,
            exclusive,
            sequences: (0..new.workers.len().max(1))
                .map(|_| Arc::new(Sequence::new(start)))
                .collect(),
            counters: (0..new.workers.len().max(1))
                .map(|_| Arc::new(crate::consume::counters::StageCounters::new()))
                .collect(),
            stall: new.workers.first().and_then(|w| w.options.stall),
            detached: Default::default(),
            dynamic,
            gone: false,
            control: Arc::new(Control::default()),
            first: start + 1,
        };
        let push = |g: &mut Graph| {
            g.stages.push(stage);
            g.stages.len() - 1
        };
        Ok(if dynamic {
            self.change(push)
        } else {
            self.write(push)
        })
    }

    /// A barrier for stage `index`: what its threads (or its poller) wait on.
    pub(crate) fn barrier(&self, index: usize) -> Barrier<E, S, W> {
        let (upstream, control) =
            self.read(|g| (g.upstream_sequences(index), g.stages[index].control.clone()));
        Barrier::new(self.core.clone(), upstream, control)
    }

    /// The poller of stage `index`, a poller stage: dropping it takes the stage out of the graph.
    pub(crate) fn poller(&self, index: usize) -> Poller<E, S, W> {
        let (sequence, first, counters) = self.read(|g| {
            let s = &g.stages[index];
            (s.sequences[0].clone(), s.first, s.counters[0].clone())
        });
        let (core, graph) = (self.core.clone(), self.graph.clone());
        let leave = Box::new(move || change(&core, &graph, |g| g.stages[index].gone = true));
        Poller::new(
            self.barrier(index),
            sequence,
            first,
            self.tracker(index),
            leave,
            counters,
        )
    }

    /// A tracker of stage `index`.
    pub(crate) fn tracker(&self, index: usize) -> Tracker {
        self.read(|g| {
            let stage = &g.stages[index];
            Tracker::stage(
                self.core.clone(),
                stage.name.clone(),
                stage.sequences.clone(),
                stage.control.clone(),
            )
        })
    }
}

/// Changes `graph` with `f` under its lock, installs the gating set of the changed graph, and
/// returns once no minimum can still be computed from the old set (the grace period of
/// `protocol::gating`). If the changed graph has no live stage, the set installed is a frozen
/// copy of the old minimum (producers never run unguarded) and the queue refuses publishes with
/// `NoConsumers`: flagged under the lock, so a stage joining at the same time cannot clear the
/// flag before this sets it. Then wakes whoever waits, for room or on a sequence.
pub(crate) fn change<E, S: SequencerImpl, W: WaitStrategy, R>(
    core: &Core<E, S, W>,
    graph: &Mutex<Graph>,
    f: impl FnOnce(&mut Graph) -> R,
) -> R {
    let result = {
        let mut graph = graph.lock().unwrap();
        let old_min = core.gating.minimum(i64::MAX);
        let result = f(&mut graph);
        let mut next = graph.gating_sequences();
        if next.is_empty() {
            // Never leave producers unguarded: freeze the last position instead.
            let frozen = if old_min == i64::MAX {
                INITIAL
            } else {
                old_min
            };
            next.push(Arc::new(Sequence::new(frozen)));
            core.set_no_stage(true);
        }
        core.gating.replace(next);
        result
    };
    core.wait.notify();
    result
}
