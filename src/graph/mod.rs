//! The stage graph: stage ids and kinds, the graph with its validation and gating set, thread
//! spawning, the builder and the running queue (both over the same graph code), reports and
//! errors. Safe code only: the protocol's `unsafe` stays in `protocol` and `consume`.
//!
//! | file | what |
//! |---|---|
//! | `stage.rs` | [`StageId`](stage::StageId), the one `StageKind` enum, a stage node |
//! | `graph.rs` | the graph: upstream and exclusivity checks, the gating set, changes under its lock; `Wired`, a graph over a queue's core |
//! | `spawn.rs` | starting a stage's threads, pinning, counting them out |
//! | `builder.rs`, `queue.rs` | [`Builder`](builder::Builder) and the running [`Disruptor`](queue::Disruptor) |
//! | `report.rs`, `error.rs` | what a shutdown reports; the errors of building and of stage operations |
//! | `watchdog.rs` | the stall watchdog: its thread, `StallPolicy`, `Stall` |
//! | `metrics.rs` | a running queue's counters at one moment, as a table and through the `metrics` facade |

#![forbid(unsafe_code)]

pub(crate) mod builder;
pub(crate) mod error;
#[allow(clippy::module_inception)]
pub(crate) mod graph;
pub(crate) mod metrics;
pub(crate) mod queue;
pub(crate) mod report;
pub(crate) mod spawn;
pub(crate) mod stage;
pub(crate) mod watchdog;
