//! The stall watchdog: a stage with events waiting for it whose sequence has not moved for its
//! `stall_timeout` is stalled; the queue reports it and applies the stage's [`StallPolicy`].
//!
//! # Contract
//! - It runs on a monitor thread of its own (`ringmq-watchdog`), started with the queue when a
//!   stage asks for it ([`Consumer::stall_timeout`](crate::Consumer::stall_timeout)) or when
//!   such a stage joins the running queue, stopped and joined by `shutdown`, `halt` or drop.
//!   Off the hot path: the threads it watches do nothing for it (it reads their sequences,
//!   which they store anyway). A thread rather than the producers' slow path: a stage can stall
//!   with the ring far from full (a pipeline's second stage, a pool with a slow worker), where
//!   no producer would ever look.
//! - It looks every quarter of the smallest timeout (at least every millisecond, at most every
//!   quarter second). A stage counts as stalled once its sequence has stood still while events
//!   were waiting for it (published, for a first stage; passed by every upstream stage, for the
//!   others) for the timeout: a stage with nothing to do is never stalled, however long it
//!   waits; a slow stage that moves is never stalled. Detection comes between the timeout and
//!   the timeout plus one look.
//! - Each stall is reported once, when it is detected (a [`Stall`] to the builder's
//!   [`on_stall`](crate::Builder::on_stall) callback and a warning through the `log` facade),
//!   right after its policy has been applied; a stage that moves again and stalls again is reported again.
//! - Only while the queue runs: once it drains, halts or fails (a `FailQueue` stall included),
//!   its stages stop on purpose and nothing more is reported.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Condvar;
use std::time::{Duration, Instant};

use crate::graph::graph::{change, Graph};
use crate::protocol::sequencer::SequencerImpl;
use crate::protocol::wait::WaitStrategy;
use crate::protocol::Core;
use crate::sync::{Arc, Mutex};

/// The watchdog's stop signal: std's lock, not the graph's (which is loom's under loom, where no
/// stage asks for a watchdog and none starts).
type StopSignal = (std::sync::Mutex<bool>, Condvar);

/// What the queue does with a stage its watchdog finds stalled.
///
/// ```
/// use ringmq::{Consumer, StallPolicy};
/// use std::time::Duration;
/// let c = Consumer::new("db", |_: &u64, _, _| {})
///     .stall_timeout(Duration::from_secs(2), StallPolicy::RemoveStage);
/// assert_eq!(StallPolicy::default(), StallPolicy::Alert);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StallPolicy {
    /// Report it (the callback and a warning), nothing more. The default.
    #[default]
    Alert,
    /// Fail the queue: producers get
    /// [`PublishError::ConsumerStalled`](crate::PublishError::ConsumerStalled) naming the
    /// stage, the other consumers stop at their next batch, and `shutdown` returns
    /// [`ShutdownError::ConsumerStalled`](crate::ShutdownError::ConsumerStalled) without waiting
    /// for the stalled thread (left to finish on its own).
    FailQueue,
    /// Take the stage out of the graph: it stops holding producers and later stages back (they
    /// go on without its work, as after [`Disruptor::remove`](crate::Disruptor::remove)), its
    /// thread is left to finish its call and then stops, and `shutdown` does not wait for it.
    /// If it was the last stage, publishes fail with `NoConsumers`.
    RemoveStage,
}

/// A stall the watchdog detected: what [`Builder::on_stall`](crate::Builder::on_stall)'s
/// callback receives.
///
/// ```
/// # use ringmq::{Stall, StallPolicy};
/// # use std::time::Duration;
/// let s = Stall { stage: "db".into(), sequence: 7, stalled_for: Duration::from_secs(2), policy: StallPolicy::Alert };
/// assert_eq!(s.to_string(), "stage `db` has not moved past sequence 7 for 2s (policy: Alert)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stall {
    /// The stalled stage.
    pub stage: String,
    /// The sequence it has not got past: the first after the sequence it stored (a consumer
    /// stores its sequence after each batch, so this is the first of the batch it is stuck in).
    pub sequence: i64,
    /// How long its sequence had stood still when the stall was detected.
    pub stalled_for: Duration,
    /// The policy applied.
    pub policy: StallPolicy,
}

impl std::fmt::Display for Stall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stage `{}` has not moved past sequence {} for {:?} (policy: {:?})",
            self.stage, self.sequence, self.stalled_for, self.policy
        )
    }
}

/// The callback a builder's `on_stall` installs.
pub(crate) type OnStall = std::sync::Arc<dyn Fn(&Stall) + Send + Sync>;

/// The running watchdog: its stop signal and thread.
pub(crate) struct Watchdog {
    stop: std::sync::Arc<StopSignal>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    /// Starts the watchdog over `core` and `graph`.
    pub(crate) fn start<E: Send + Sync + 'static, S: SequencerImpl, W: WaitStrategy>(
        core: Arc<Core<E, S, W>>,
        graph: Arc<Mutex<Graph>>,
        on_stall: Option<OnStall>,
    ) -> std::io::Result<Self> {
        let stop = std::sync::Arc::new((std::sync::Mutex::new(false), Condvar::new()));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ringmq-watchdog".into())
            .spawn(move || watch(&core, &graph, on_stall.as_deref(), &s))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }

    /// Stops and joins the thread. Idempotent.
    pub(crate) fn stop(&mut self) {
        *self.stop.0.lock().unwrap() = true;
        self.stop.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Per watched stage: where its sequence was and since when.
struct Seen {
    sequence: i64,
    since: Instant,
    reported: bool,
}

fn watch<E, S: SequencerImpl, W: WaitStrategy>(
    core: &Core<E, S, W>,
    graph: &Mutex<Graph>,
    on_stall: Option<&(dyn Fn(&Stall) + Send + Sync)>,
    stop: &StopSignal,
) {
    let mut seen: Vec<Option<Seen>> = Vec::new();
    loop {
        let tick = {
            let g = graph.lock().unwrap();
            let smallest = g
                .stages
                .iter()
                .filter(|s| s.live())
                .filter_map(|s| s.stall.map(|(t, _)| t))
                .min();
            smallest.map_or(Duration::from_millis(250), |t| {
                (t / 4).clamp(Duration::from_millis(1), Duration::from_millis(250))
            })
        };
        {
            let stopped = stop.0.lock().unwrap();
            if *stopped {
                return;
            }
            let (stopped, _) = stop.1.wait_timeout(stopped, tick).unwrap();
            if *stopped {
                return;
            }
        }
        // A queue that is draining, halted or failed stands its stages still on purpose.
        if !core.lifecycle.is_running() {
            seen.clear();
            continue;
        }
        let now = Instant::now();
        let mut stalls = Vec::new();
        {
            let g = graph.lock().unwrap();
            seen.resize_with(g.stages.len(), || None);
            for (index, stage) in g.stages.iter().enumerate() {
                let Some((timeout, policy)) = stage.stall.filter(|_| stage.live()) else {
                    seen[index] = None;
                    continue;
                };
                let processed = stage
                    .sequences
                    .iter()
                    .map(|s| s.get())
                    .min()
                    .unwrap_or(i64::MIN);
                let next = processed + 1;
                let upstream = g.upstream_sequences(index);
                let waiting = if upstream.is_empty() {
                    core.sequencer.highest_published(next) >= next
                } else {
                    upstream.iter().map(|s| s.get()).min().unwrap_or(i64::MIN) >= next
                };
                let entry = seen[index].get_or_insert(Seen {
                    sequence: processed,
                    since: now,
                    reported: false,
                });
                if entry.sequence != processed || !waiting {
                    *entry = Seen {
                        sequence: processed,
                        since: now,
                        reported: false,
                    };
                    continue;
                }
                let stalled_for = now.duration_since(entry.since);
                if stalled_for >= timeout && !entry.reported {
                    entry.reported = true;
                    stalls.push((
                        index,
                        stage.detached.clone(),
                        Stall {
                            stage: stage.name.clone(),
                            sequence: next,
                            stalled_for,
                            policy,
                        },
                    ));
                }
            }
        }
        for (index, detached, stall) in stalls {
            // The policy first, then the report: whoever learns of the stall (the callback, the
            // log) finds it already applied (a producer told "stalled" gets the error at once).
            match stall.policy {
                StallPolicy::Alert => {}
                StallPolicy::FailQueue => {
                    detached.store(true, Ordering::Release);
                    core.fail_stalled(&stall.stage, stall.sequence);
                }
                StallPolicy::RemoveStage => {
                    detached.store(true, Ordering::Release);
                    let control = graph.lock().unwrap().stages[index].control.clone();
                    control.leave();
                    change(core, graph, |g| g.stages[index].gone = true);
                }
            }
            crate::diag::warn(format_args!("{stall}"));
            if let Some(f) = on_stall {
                f(&stall);
            }
        }
    }
}

/// A stage's threads, flagged by the watchdog when its policy leaves them to finish on their
/// own: `shutdown`, `remove` and drop then do not join them.
pub(crate) type Detached = Arc<AtomicBool>;
