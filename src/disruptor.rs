//! The running queue: its consumer threads, shutdown, halt, monitoring.
//!
//! [`Disruptor::shutdown`] closes the queue and lets every consumer process every event published
//! before the close, then joins the threads. Dropping the last producer closes the queue the same
//! way; dropping the `Disruptor` shuts it down and joins. [`Disruptor::halt`] stops consumers at
//! their next batch without draining.

use std::time::{Duration, Instant};

use crate::consumer::ConsumerExit;
use crate::error::ShutdownError;
use crate::sequencer::Sequencer;
use crate::shared::Shared;
use crate::sync::{thread::JoinHandle, Arc, Condvar, Mutex};
use crate::wait::WaitStrategy;

/// Counts consumer threads that have finished, so shutdown can wait for them with a deadline.
pub(crate) struct Finished {
    count: Mutex<usize>,
    condvar: Condvar,
}

impl Finished {
    pub(crate) fn new() -> Self {
        Self {
            count: Mutex::new(0),
            condvar: Condvar::new(),
        }
    }

    pub(crate) fn arrive(&self) {
        *self.count.lock().unwrap() += 1;
        self.condvar.notify_all();
    }

    /// Waits until `n` threads finished; `false` if `deadline` passed first.
    fn wait(&self, n: usize, deadline: Option<Instant>) -> bool {
        let mut count = self.count.lock().unwrap();
        while *count < n {
            match crate::sync::deadline_and_now(deadline) {
                None => count = self.condvar.wait(count).unwrap(),
                Some((d, now)) => {
                    if now >= d {
                        return false;
                    }
                    #[cfg(not(loom))]
                    {
                        count = self.condvar.wait_timeout(count, d - now).unwrap().0;
                    }
                }
            }
        }
        true
    }
}

pub(crate) struct Running {
    pub(crate) name: String,
    pub(crate) handle: JoinHandle<ConsumerExit>,
}

/// What each consumer did, returned by a clean shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// One entry per consumer, in the order they were added.
    pub consumers: Vec<ConsumerReport>,
}

/// One consumer's end state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerReport {
    /// The consumer's name.
    pub name: String,
    /// The last sequence it finished.
    pub last_sequence: i64,
    /// Events skipped after its handler panicked ([`PanicPolicy::SkipEvent`](crate::PanicPolicy)).
    pub skipped: u64,
}

/// A running queue: owns the consumer threads.
///
/// Dropping it shuts the queue down (draining) and joins the threads; call
/// [`shutdown`](Self::shutdown) to get their report and any handler panic.
pub struct Disruptor<E, S: Sequencer, W: WaitStrategy> {
    shared: Arc<Shared<E, S, W>>,
    running: Vec<Running>,
    finished: Arc<Finished>,
}

impl<E, S: Sequencer, W: WaitStrategy> Disruptor<E, S, W> {
    pub(crate) fn new(
        shared: Arc<Shared<E, S, W>>,
        running: Vec<Running>,
        finished: Arc<Finished>,
    ) -> Self {
        Self {
            shared,
            running,
            finished,
        }
    }

    /// Closes the queue, lets every consumer process every event published before the close, and
    /// joins the consumer threads.
    ///
    /// Publishes after this return [`PublishError::Shutdown`](crate::PublishError::Shutdown), and
    /// so does a producer waiting for room when nothing it claimed needs draining. A publish
    /// racing this call from another thread is either drained (and returns `Ok`) or refused; it
    /// is never lost. A producer's publish closure that never returns holds the close up.
    ///
    /// # Errors
    /// [`ShutdownError::ConsumerPanicked`] if a handler panicked (under
    /// [`PanicPolicy::HaltAll`](crate::PanicPolicy) or `HaltConsumer`).
    pub fn shutdown(mut self) -> Result<ShutdownReport, ShutdownError> {
        self.shared.close();
        self.join(None)
    }

    /// As [`shutdown`](Self::shutdown), but if the consumers have not drained within `timeout`
    /// they are halted and the call returns [`ShutdownError::Timeout`] (threads stuck in a handler
    /// are left to finish on their own).
    ///
    /// # Errors
    /// [`ShutdownError::Timeout`], and the errors of [`shutdown`](Self::shutdown).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Result<ShutdownReport, ShutdownError> {
        self.shared.close();
        self.join(crate::sync::now().map(|n| n + timeout))
    }

    /// Stops every consumer at its next batch boundary without draining, and joins them.
    /// Producers get [`PublishError::Shutdown`](crate::PublishError::Shutdown).
    ///
    /// # Errors
    /// As [`shutdown`](Self::shutdown).
    pub fn halt(mut self) -> Result<ShutdownReport, ShutdownError> {
        self.shared.halt();
        self.join(None)
    }

    /// The highest sequence published (single producer) or claimed (multi producer).
    pub fn cursor(&self) -> i64 {
        self.shared.sequencer.cursor()
    }

    /// Free slots right now, for monitoring.
    pub fn remaining_capacity(&self) -> usize {
        self.shared.remaining_capacity()
    }

    /// The ring's capacity.
    pub fn capacity(&self) -> usize {
        self.shared.ring.capacity() as usize
    }

    /// Whether the queue still accepts publishes.
    pub fn is_running(&self) -> bool {
        self.shared.lifecycle.is_running()
    }

    fn join(&mut self, deadline: Option<Instant>) -> Result<ShutdownReport, ShutdownError> {
        let running = std::mem::take(&mut self.running);
        // Without a deadline, joining is the wait; with one, wait on the count first.
        if deadline.is_some() && !self.finished.wait(running.len(), deadline) {
            self.shared.halt();
            // Give threads that only waited a moment to see the halt; stuck ones are detached.
            let grace = crate::sync::now().map(|n| n + Duration::from_millis(100));
            if self.finished.wait(running.len(), grace) {
                for r in running {
                    let _ = r.handle.join();
                }
            }
            return Err(ShutdownError::Timeout);
        }
        let mut consumers = Vec::with_capacity(running.len());
        let mut first_panic = None;
        for r in running {
            let exit = match r.handle.join() {
                Ok(exit) => exit,
                // The loop catches handler panics; this is a panic in ringmq itself.
                Err(_) => ConsumerExit {
                    name: r.name.clone(),
                    last_sequence: -1,
                    skipped: 0,
                    panic: Some((-1, "the consumer thread panicked".into())),
                },
            };
            if let (None, Some((sequence, message))) = (&first_panic, &exit.panic) {
                first_panic = Some(ShutdownError::ConsumerPanicked {
                    consumer: exit.name.clone(),
                    sequence: *sequence,
                    message: message.clone(),
                });
            }
            consumers.push(ConsumerReport {
                name: exit.name,
                last_sequence: exit.last_sequence,
                skipped: exit.skipped,
            });
        }
        match first_panic {
            Some(e) => Err(e),
            None => Ok(ShutdownReport { consumers }),
        }
    }
}

impl<E, S: Sequencer, W: WaitStrategy> Drop for Disruptor<E, S, W> {
    fn drop(&mut self) {
        if !self.running.is_empty() {
            self.shared.close();
            let _ = self.join(None);
        }
    }
}

impl<E, S: Sequencer, W: WaitStrategy> std::fmt::Debug for Disruptor<E, S, W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disruptor")
            .field("cursor", &self.cursor())
            .field("capacity", &self.capacity())
            .field(
                "consumers",
                &self
                    .running
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("running", &self.is_running())
            .finish()
    }
}
