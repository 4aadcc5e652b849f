//! A running queue's counters at one moment: [`Disruptor::metrics`](crate::Disruptor::metrics).
//!
//! The counters themselves live with the threads that write them (`consume::counters`); this is
//! the reading side: a plain struct, a compact table (`Display`), and, with the `metrics` cargo
//! feature, an export through the `metrics` facade.

use std::fmt;
use std::time::Duration;

use crate::consume::counters::Counts;

/// A snapshot of a running queue: the ring's fill level, the producer side and every stage.
///
/// ```
/// use ringmq::{Builder, Consumer, Yielding};
/// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
/// let sink = b.add(Consumer::new("sink", |_: &u64, _, _| {}));
/// let (mut producer, queue) = b.build()?;
/// for i in 0..10 {
///     producer.publish(|e| *e = i)?;
/// }
/// queue.graph_tracker().wait_processed(9, std::time::Duration::from_secs(5))?;
/// let m = queue.metrics();
/// assert_eq!((m.published, m.fill, m.stages[0].lag), (10, 0, 0));
/// // With the `counters` feature, each stage's events, batches, batch sizes, waiting time...
/// assert_eq!(m.stages[0].counts.events, if cfg!(feature = "counters") { 10 } else { 0 });
/// println!("{m}"); // a compact table
/// # drop(producer); queue.shutdown()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueMetrics {
    /// The ring's capacity.
    pub capacity: usize,
    /// Events published so far (claimed, for a multi producer: the cursor plus one).
    pub published: u64,
    /// Slots taken now: published and not yet released by every last stage.
    pub fill: usize,
    /// Claims that found the ring full (a `try_publish` that got `Full` included).
    pub found_full: u64,
    /// Time producers spent waiting for room, summed over them.
    pub producers_waiting: Duration,
    /// Every stage, live or removed, in the order they were added.
    pub stages: Vec<StageMetrics>,
}

/// One stage in a [`QueueMetrics`] snapshot.
///
/// ```
/// # use ringmq::{Builder, Consumer, Yielding};
/// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
/// # b.add(Consumer::new("sink", |_: &u64, _, _| {}));
/// # let (producer, queue) = b.build()?;
/// let stage = &queue.metrics().stages[0];
/// assert_eq!((stage.name.as_str(), stage.kind, stage.lag), ("sink", "consumer", 0));
/// # drop(producer); queue.shutdown()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageMetrics {
    /// The stage's name.
    pub name: String,
    /// `"consumer"`, `"pool"` or `"poller"`.
    pub kind: &'static str,
    /// Its threads (a pool's workers; 1 for a consumer; 0 for a poller, which has none).
    pub threads: usize,
    /// Whether it is still in the graph (not removed, its poller not dropped).
    pub live: bool,
    /// The highest sequence it has processed (for a pool, its slowest worker's).
    pub processed: i64,
    /// Events published and not yet processed by it.
    pub lag: u64,
    /// Its counters, summed over its threads.
    pub counts: Counts,
}

impl fmt::Display for QueueMetrics {
    /// A compact table: one line for the ring, one per stage.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "ring {}/{} ({:.0}% full), published {}, found full {} (waited {:.3?})",
            self.fill,
            self.capacity,
            100.0 * self.fill as f64 / self.capacity.max(1) as f64,
            self.published,
            self.found_full,
            self.producers_waiting
        )?;
        writeln!(
            f,
            "{:<16} {:<8} {:>10} {:>8} {:>12} {:>9} {:>9} {:>8} {:>6} {:>6}",
            "stage",
            "kind",
            "events",
            "lag",
            "batches",
            "avg batch",
            "max lag",
            "waiting",
            "skips",
            "panics"
        )?;
        for s in &self.stages {
            let c = &s.counts;
            let avg = if c.batches == 0 {
                0.0
            } else {
                c.events as f64 / c.batches as f64
            };
            let total = (c.waiting + c.busy).as_secs_f64();
            let waiting = if total > 0.0 {
                100.0 * c.waiting.as_secs_f64() / total
            } else {
                0.0
            };
            let mut name = s.name.clone();
            if !s.live {
                name.push_str(" (gone)");
            }
            write!(
                f,
                "{:<16} {:<8} {:>10} {:>8} {:>12} {:>9.1} {:>9} {:>7.0}% {:>6} {:>6}",
                name,
                s.kind,
                c.events,
                s.lag,
                c.batches,
                avg,
                c.max_lag,
                waiting,
                c.skips,
                c.panics
            )?;
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(feature = "metrics")]
impl QueueMetrics {
    /// Publishes this snapshot through the [`metrics`](https://docs.rs/metrics) facade, for
    /// whatever exporter the service installed (Prometheus, OpenTelemetry, ...). Call it
    /// periodically (each call sets absolute values). Names follow Prometheus conventions, each
    /// labelled `queue`, and per stage also `stage` and `kind`:
    /// `ringmq_published_total`, `ringmq_producer_full_total`,
    /// `ringmq_producer_wait_seconds_total`, `ringmq_ring_fill`, `ringmq_ring_capacity`;
    /// `ringmq_stage_events_total`, `ringmq_stage_batches_total`,
    /// `ringmq_stage_batches_by_size_total` (label `size`: the bucket's lower bound),
    /// `ringmq_stage_skips_total`, `ringmq_stage_retries_total`, `ringmq_stage_panics_total`,
    /// `ringmq_stage_wait_seconds_total`, `ringmq_stage_busy_seconds_total`,
    /// `ringmq_stage_lag`, `ringmq_stage_max_lag`. Needs the `metrics` cargo feature.
    ///
    /// ```
    /// # use ringmq::{Builder, Consumer, Yielding};
    /// # let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// # b.add(Consumer::new("sink", |_: &u64, _, _| {}));
    /// # let (producer, queue) = b.build()?;
    /// queue.metrics().export("orders"); // a no-op until a recorder is installed
    /// # drop(producer); queue.shutdown()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn export(&self, queue: &str) {
        use metrics::{counter, gauge};
        let q = queue.to_owned();
        counter!("ringmq_published_total", "queue" => q.clone()).absolute(self.published);
        counter!("ringmq_producer_full_total", "queue" => q.clone()).absolute(self.found_full);
        gauge!("ringmq_producer_wait_seconds_total", "queue" => q.clone())
            .set(self.producers_waiting.as_secs_f64());
        gauge!("ringmq_ring_fill", "queue" => q.clone()).set(self.fill as f64);
        gauge!("ringmq_ring_capacity", "queue" => q.clone()).set(self.capacity as f64);
        for s in &self.stages {
            let labels = [
                ("queue", q.clone()),
                ("stage", s.name.clone()),
                ("kind", s.kind.to_owned()),
            ];
            let c = &s.counts;
            counter!("ringmq_stage_events_total", &labels).absolute(c.events);
            counter!("ringmq_stage_batches_total", &labels).absolute(c.batches);
            counter!("ringmq_stage_skips_total", &labels).absolute(c.skips);
            counter!("ringmq_stage_retries_total", &labels).absolute(c.retries);
            counter!("ringmq_stage_panics_total", &labels).absolute(c.panics);
            gauge!("ringmq_stage_wait_seconds_total", &labels).set(c.waiting.as_secs_f64());
            gauge!("ringmq_stage_busy_seconds_total", &labels).set(c.busy.as_secs_f64());
            gauge!("ringmq_stage_lag", &labels).set(s.lag as f64);
            gauge!("ringmq_stage_max_lag", &labels).set(c.max_lag as f64);
            for (i, n) in c.batch_sizes.iter().enumerate() {
                let mut l = labels.to_vec();
                l.push(("size", (1u64 << i).to_string()));
                counter!("ringmq_stage_batches_by_size_total", &l).absolute(*n);
            }
        }
    }
}
