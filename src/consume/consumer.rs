//! A consumer as the user describes it: a name, a handler, and how to run it (pinning, batch
//! size, timeout, panic policy, wait strategy, coalescing, retries); and the [`Hook`] a panic
//! happened in.

use std::marker::PhantomData;
use std::time::Duration;

use crate::consume::handler::{
    EventHandler, ExclusiveFactory, ExclusiveFn, ExclusiveHandler, FallibleFactory, FallibleFn,
    FallibleHandler, IntoProcess, Retry, RetryPolicy, SharedFactory, SharedFn,
};
use crate::protocol::wait::PollingWait;
#[cfg(doc)]
use crate::protocol::wait::WaitStrategy;

/// What a consumer does when its handler panics.
///
/// A panic in [`on_event`](EventHandler::on_event) (or a [`FallibleHandler`] whose retries ran
/// out) is an *event* failure: the event was published and handed over. A panic in any other hook
/// is not: `on_timeout` runs while the consumer waits for an event that may not be published yet,
/// `on_batch_start` before the batch is handed over, `on_start` before anything. No policy ever
/// moves a consumer past a sequence that was not published, so the stages after it never read a
/// slot a producer is still writing.
///
/// | panic in | `HaltAll` | `SkipEvent` | `HaltConsumer` |
/// |---|---|---|---|
/// | `on_event` | the queue fails | the event is skipped (`skipped += 1`), the handler goes on | the handler stops; the consumer passes every event from this one on (`skipped`) |
/// | `on_batch_start` | the queue fails | the call is passed over (`skipped_hooks += 1`), the batch is still handed over | as above, from the batch's first event |
/// | `on_timeout` | the queue fails | the call is passed over (`skipped_hooks += 1`) | as above, from the event it waited for, once published |
/// | `on_start` | the queue fails | the call is passed over (`skipped_hooks += 1`) | as above, from the first event |
/// | the handler factory | the queue fails | as `HaltConsumer`: with no handler there is nothing to go on with | as above, from the first event |
/// | `on_shutdown` | reported by `shutdown()`, never fails the queue (the others may still be draining) | same | same |
///
/// "The queue fails": other consumers stop at their next batch, producers get
/// [`PublishError::ConsumerFailed`](crate::PublishError::ConsumerFailed), and `shutdown()` returns
/// [`ShutdownError::ConsumerPanicked`](crate::ShutdownError::ConsumerPanicked), naming the same
/// consumer. `HaltConsumer` and `on_shutdown` panics are returned by `shutdown()` too; passed-over
/// `SkipEvent` panics are counted in the [`ConsumerReport`](crate::ConsumerReport) and logged. A
/// panic outside every hook (a user [`WaitStrategy`]) always fails the queue. For a pool worker,
/// "the consumer passes every event" means it passes the rest of its claim and leaves the pool
/// (the last live worker keeps passing instead, see [`WorkPool`](crate::WorkPool)).
///
/// ```
/// use ringmq::{Builder, Consumer, PanicPolicy, Yielding};
///
/// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
/// // A metrics consumer whose failure must not stop the queue: skip the bad event.
/// b.add(Consumer::new("metrics", |v: &u64, _, _| assert!(*v != 13, "unlucky"))
///     .panic_policy(PanicPolicy::SkipEvent));
/// let (mut producer, queue) = b.build()?;
/// for v in 10..20 {
///     producer.publish(|e| *e = v)?;
/// }
/// drop(producer);
/// let report = queue.shutdown()?;
/// assert_eq!(report.consumers[0].skipped, 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PanicPolicy {
    /// Halt the whole queue: other consumers stop at their next batch, producers get
    /// [`PublishError::ConsumerFailed`](crate::PublishError::ConsumerFailed), and
    /// [`Disruptor::shutdown`](crate::Disruptor::shutdown) returns the panic. The default.
    #[default]
    HaltAll,
    /// Log the panic (a warning, through the `log` facade), skip the event (or pass over the
    /// hook call), go on with the same handler. The counts are in the
    /// [`ShutdownReport`](crate::ShutdownReport).
    SkipEvent,
    /// Log the panic (a warning, through the `log` facade) and stop calling this handler. The
    /// consumer keeps following its upstream without handling anything (passing each event only once it is published), so it
    /// holds back neither producers nor the stages after it (which go on without its work);
    /// `shutdown` returns the panic.
    HaltConsumer,
}

/// Where and how one consumer runs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    pub(crate) pin: Option<usize>,
    pub(crate) max_batch: Option<usize>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) policy: PanicPolicy,
    pub(crate) wait: Option<PollingWait>,
    pub(crate) retry: RetryPolicy,
    pub(crate) coalesce: Option<Coalesce>,
    pub(crate) stall: Option<(Duration, crate::graph::watchdog::StallPolicy)>,
}

/// See [`Consumer::coalesce`]: pause when chasing a streaming producer with a small batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Coalesce {
    /// Batches of fewer events than this may wait.
    pub(crate) min: i64,
    /// How long they wait.
    pub(crate) delay: Duration,
}

/// A consumer to add to a [`Builder`](crate::Builder): a name, a handler, and how to run it.
///
/// ```
/// use std::time::Duration;
/// use ringmq::{Consumer, PanicPolicy, PollingWait};
///
/// let journal = Consumer::new("journal", |event: &u64, seq, end_of_batch| {
///     // append `event`; flush when `end_of_batch`
/// #   let _ = (event, seq, end_of_batch);
/// })
/// .max_batch(256)
/// .timeout(Duration::from_millis(10))
/// .panic_policy(PanicPolicy::SkipEvent)
/// .wait_strategy(PollingWait::Yielding);
/// # let _ = journal;
/// ```
pub struct Consumer<E, H> {
    pub(crate) name: String,
    pub(crate) handler: H,
    pub(crate) options: Options,
    _event: PhantomData<fn(E)>,
}

impl<E> Consumer<E, ()> {
    /// A consumer that calls `f(event, sequence, end_of_batch)` for each event.
    ///
    /// ```
    /// let printer = ringmq::Consumer::new("print", |n: &u64, seq, _end_of_batch| {
    ///     println!("{seq}: {n}");
    /// });
    /// assert_eq!(printer.name(), "print");
    /// ```
    pub fn new<F>(name: impl Into<String>, f: F) -> Consumer<E, SharedFn<F>>
    where
        F: FnMut(&E, i64, bool) + Send + 'static,
        E: 'static,
    {
        Consumer::make(name, SharedFn(f))
    }

    /// A consumer that may change each event in place: `f(&mut event, sequence, end_of_batch)`.
    /// See [`ExclusiveHandler`] for where the builder accepts it.
    ///
    /// ```
    /// #[derive(Default)]
    /// struct Order { qty: u64, total: u64 }
    /// let price = ringmq::Consumer::exclusive("price", |o: &mut Order, _, _| o.total = o.qty * 10);
    /// assert_eq!(price.name(), "price");
    /// ```
    pub fn exclusive<F>(name: impl Into<String>, f: F) -> Consumer<E, ExclusiveFn<F>>
    where
        F: FnMut(&mut E, i64, bool) + Send + 'static,
        E: 'static,
    {
        Consumer::make(name, ExclusiveFn(f))
    }

    /// A consumer whose handler may fail a batch and have it replayed: `f(event, sequence,
    /// end_of_batch)` returns `Err(Retry)` to replay (see [`FallibleHandler`] and
    /// [`Consumer::retry`]).
    ///
    /// ```
    /// use ringmq::{Consumer, Retry};
    /// let store = Consumer::fallible("store", |row: &u64, _, _| {
    ///     if *row == u64::MAX { Err(Retry::new("bad row")) } else { Ok(()) }
    /// });
    /// assert_eq!(store.name(), "store");
    /// ```
    pub fn fallible<F>(name: impl Into<String>, f: F) -> Consumer<E, FallibleFn<F>>
    where
        F: FnMut(&E, i64, bool) -> Result<(), Retry> + Send + 'static,
        E: 'static,
    {
        Consumer::make(name, FallibleFn(f))
    }

    /// As [`fallible`](Self::fallible), with a [`FallibleHandler`] built by `factory` on the
    /// consumer's own thread.
    ///
    /// ```
    /// use ringmq::{Consumer, FallibleHandler, Retry};
    /// struct Batcher { rows: Vec<u64> }
    /// impl FallibleHandler<u64> for Batcher {
    ///     fn on_event(&mut self, row: &u64, _: i64, end_of_batch: bool) -> Result<(), Retry> {
    ///         self.rows.push(*row);
    ///         if end_of_batch {
    ///             self.rows.clear(); // write the batch; Err(Retry) would replay it
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// let c = Consumer::fallible_with_handler("batch-writer", || Batcher { rows: Vec::new() });
    /// assert_eq!(c.name(), "batch-writer");
    /// ```
    pub fn fallible_with_handler<H, F>(
        name: impl Into<String>,
        factory: F,
    ) -> Consumer<E, FallibleFactory<F>>
    where
        F: FnOnce() -> H + Send + 'static,
        H: FallibleHandler<E> + 'static,
        E: 'static,
    {
        Consumer::make(name, FallibleFactory(factory))
    }

    /// A consumer whose [`EventHandler`] is built by `factory` on the consumer's own thread
    /// (per-consumer state that need not be `Send`).
    ///
    /// ```
    /// use ringmq::{Consumer, EventHandler};
    /// struct Count(u64);
    /// impl EventHandler<u64> for Count {
    ///     fn on_event(&mut self, _: &u64, _: i64, _: bool) { self.0 += 1; }
    ///     fn on_shutdown(&mut self) { println!("counted {}", self.0); }
    /// }
    /// // The factory runs on the consumer's own thread, so the handler need not be `Send`.
    /// let c = Consumer::with_handler("count", || Count(0));
    /// assert_eq!(c.name(), "count");
    /// ```
    pub fn with_handler<H, F>(name: impl Into<String>, factory: F) -> Consumer<E, SharedFactory<F>>
    where
        F: FnOnce() -> H + Send + 'static,
        H: EventHandler<E> + 'static,
        E: 'static,
    {
        Consumer::make(name, SharedFactory(factory))
    }

    /// As [`with_handler`](Self::with_handler), for an [`ExclusiveHandler`].
    ///
    /// ```
    /// use ringmq::{Consumer, ExclusiveHandler};
    /// struct Stamp(u64);
    /// impl ExclusiveHandler<u64> for Stamp {
    ///     fn on_event(&mut self, e: &mut u64, _: i64, _: bool) { *e += self.0; }
    /// }
    /// let c = Consumer::exclusive_with_handler("stamp", || Stamp(1));
    /// assert_eq!(c.name(), "stamp");
    /// ```
    pub fn exclusive_with_handler<H, F>(
        name: impl Into<String>,
        factory: F,
    ) -> Consumer<E, ExclusiveFactory<F>>
    where
        F: FnOnce() -> H + Send + 'static,
        H: ExclusiveHandler<E> + 'static,
        E: 'static,
    {
        Consumer::make(name, ExclusiveFactory(factory))
    }
}

impl<E, H: std::fmt::Debug> std::fmt::Debug for Consumer<E, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("name", &self.name)
            .field("handler", &self.handler)
            .field("options", &self.options)
            .finish()
    }
}

impl<E, H: IntoProcess<E>> Consumer<E, H> {
    fn make(name: impl Into<String>, handler: H) -> Self {
        Self {
            name: name.into(),
            handler,
            options: Options::default(),
            _event: PhantomData,
        }
    }

    /// Pins the consumer's thread to this core (an id from `core_affinity::get_core_ids`).
    /// A core the machine does not have makes [`Builder::build`](crate::Builder::build) fail.
    ///
    /// ```
    /// // Checked when the queue is built: a core that does not exist is a `BuildError::NoSuchCore`.
    /// let c = ringmq::Consumer::new("hot", |_: &u64, _, _| {}).pin_to_core(0);
    /// ```
    pub fn pin_to_core(mut self, core: usize) -> Self {
        self.options.pin = Some(core);
        self
    }

    /// Hands at most `n` events (at least 1; any larger `n`, up to `usize::MAX`, is accepted) to
    /// the handler per batch, storing the consumer's sequence after each: frees slots sooner for
    /// producers, at a store per `n` events.
    ///
    /// ```
    /// let c = ringmq::Consumer::new("small-batches", |_: &u64, _, _| {}).max_batch(64);
    /// ```
    pub fn max_batch(mut self, n: usize) -> Self {
        self.options.max_batch = Some(n.max(1));
        self
    }

    /// Calls the handler's `on_timeout` whenever `timeout` passes with no event. Any duration is
    /// accepted: zero calls it whenever a look finds nothing, and one too long for `Instant`
    /// (`Duration::MAX`) never fires. A panic in `on_timeout` follows the [`PanicPolicy`] table;
    /// it never passes the event being waited for.
    ///
    /// ```
    /// use ringmq::{Consumer, EventHandler};
    /// use std::time::Duration;
    /// struct Heartbeat;
    /// impl EventHandler<u64> for Heartbeat {
    ///     fn on_event(&mut self, _: &u64, _: i64, _: bool) {}
    ///     fn on_timeout(&mut self, last: i64) { println!("idle since {last}"); }
    /// }
    /// let c = Consumer::with_handler("hb", || Heartbeat).timeout(Duration::from_millis(100));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = Some(timeout);
        self
    }

    /// What to do when the handler panics; [`PanicPolicy::HaltAll`] by default.
    ///
    /// ```
    /// use ringmq::{Consumer, PanicPolicy};
    /// let c = Consumer::new("metrics", |_: &u64, _, _| {}).panic_policy(PanicPolicy::HaltConsumer);
    /// ```
    pub fn panic_policy(mut self, policy: PanicPolicy) -> Self {
        self.options.policy = policy;
        self
    }

    /// Waits with this polling strategy instead of the queue's (see [`PollingWait`]).
    ///
    /// ```
    /// use ringmq::{Consumer, PollingWait};
    /// // This consumer spins even if the queue's strategy blocks.
    /// let c = Consumer::new("hot", |_: &u64, _, _| {}).wait_strategy(PollingWait::BusySpin);
    /// ```
    pub fn wait_strategy(mut self, wait: PollingWait) -> Self {
        self.options.wait = Some(wait);
        self
    }

    /// Trades a little latency for throughput while a producer streams: when the next event is
    /// already published but fewer than `min_batch` are, the consumer pauses for `delay` before
    /// taking them, so the producer gets ahead and the consumer then reads a larger batch.
    ///
    /// Without it, a consumer that keeps up with a producer publishing one event (or a few) at a
    /// time reads every slot and the cursor the moment they are written, while the producer is
    /// writing the next slot on the same cache line: both threads then wait for each other's
    /// cache lines on every event, and throughput drops far below what either could do alone
    /// (see the README's Performance section, where this is measured). The pause is spent spinning
    /// on the consumer's own core without touching the ring.
    ///
    /// It applies only when the consumer did not have to wait (the event was there before it
    /// looked), so a consumer waiting for a quiet producer delivers as soon as an event arrives:
    /// the latency of isolated events is unchanged; events that arrive while the producer streams
    /// are delayed by up to `delay`. Off by default. Single consumers only: pool workers and
    /// pollers ignore it. Any values are accepted: `min_batch` is cut to the ring's capacity
    /// (a batch can be no larger), and the pause ends early once `min_batch` events are there or
    /// the queue stops running, so even `Duration::MAX` holds up neither producers nor shutdown.
    ///
    /// ```
    /// use ringmq::Consumer;
    /// use std::time::Duration;
    /// // A log shipper: throughput first, half a microsecond of added latency is fine.
    /// let c = Consumer::new("ship", |_: &u64, _, _| {})
    ///     .coalesce(64, Duration::from_nanos(500));
    /// ```
    pub fn coalesce(mut self, min_batch: usize, delay: Duration) -> Self {
        self.options.coalesce = Some(Coalesce {
            min: clamp_count(min_batch),
            delay,
        });
        self
    }

    /// Watches this stage for stalls: if events are waiting for it and its sequence has not
    /// moved for `timeout`, the queue's watchdog thread reports it (the builder's
    /// [`on_stall`](crate::Builder::on_stall) callback and a warning through `log`) and applies
    /// `policy` (see [`StallPolicy`](crate::StallPolicy)). A stage with nothing to do is never
    /// stalled, nor is a slow one that moves. For a pool, set on its workers (the first one's
    /// setting is the stage's). The watchdog runs only if some stage asks for it; the watched
    /// threads do nothing for it.
    ///
    /// ```
    /// use ringmq::{Consumer, StallPolicy};
    /// use std::time::Duration;
    /// let c = Consumer::new("db", |_: &u64, _, _| {})
    ///     .stall_timeout(Duration::from_millis(500), StallPolicy::FailQueue);
    /// ```
    pub fn stall_timeout(mut self, timeout: Duration, policy: crate::StallPolicy) -> Self {
        self.options.stall = Some((timeout, policy));
        self
    }

    /// How a [fallible](Consumer::fallible) handler's failed batches are replayed; without it a
    /// failed batch goes straight to the panic policy. No effect on other handlers. The pause
    /// between replays is taken in slices of a millisecond and ends as soon as the queue halts
    /// (or the stage is removed); a replay interrupted so leaves the batch not done: the stages
    /// after this one never see it.
    ///
    /// ```
    /// use ringmq::{Consumer, RetryPolicy};
    /// use std::time::Duration;
    /// let c = Consumer::fallible("db", |_: &u64, _, _| Ok(()))
    ///     .retry(RetryPolicy::new(5, Duration::from_millis(20)));
    /// ```
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.options.retry = policy;
        self
    }

    /// The consumer's name.
    ///
    /// ```
    /// assert_eq!(ringmq::Consumer::new("journal", |_: &u64, _, _| {}).name(), "journal");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Which of a handler's calls panicked (or, for [`Hook::Engine`], that no handler call did).
///
/// The [`PanicPolicy`] applies per hook (see its docs for the full table): a panic in
/// [`on_event`](EventHandler::on_event) is an *event* failure, a panic in any other hook is not,
/// and never moves the consumer past an event it has not been handed.
///
/// ```
/// use ringmq::{Builder, Consumer, EventHandler, Hook, ShutdownError, Yielding};
///
/// struct Flaky;
/// impl EventHandler<u64> for Flaky {
///     fn on_event(&mut self, _: &u64, _: i64, _: bool) {}
///     fn on_shutdown(&mut self) { panic!("could not flush"); }
/// }
/// let mut b = Builder::single_producer(8, || 0u64, Yielding)?;
/// b.add(Consumer::with_handler("flaky", || Flaky));
/// let (producer, queue) = b.build()?;
/// drop(producer);
/// match queue.shutdown() {
///     Err(ShutdownError::ConsumerPanicked { hook, .. }) => assert_eq!(hook, Hook::OnShutdown),
///     other => panic!("{other:?}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Hook {
    /// The factory passed to [`Consumer::with_handler`] (and its exclusive and fallible twins).
    Factory,
    /// [`EventHandler::on_start`].
    OnStart,
    /// [`EventHandler::on_event`], or a [`FallibleHandler`] whose retries ran out.
    OnEvent,
    /// [`EventHandler::on_batch_start`].
    OnBatchStart,
    /// [`EventHandler::on_timeout`].
    OnTimeout,
    /// [`EventHandler::on_shutdown`].
    OnShutdown,
    /// Not a handler call: a panic in a user [`WaitStrategy`] (or in ringmq itself). It always
    /// fails the queue, whatever the policy.
    Engine,
}

impl std::fmt::Display for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Hook::Factory => "the handler factory",
            Hook::OnStart => "on_start",
            Hook::OnEvent => "on_event",
            Hook::OnBatchStart => "on_batch_start",
            Hook::OnTimeout => "on_timeout",
            Hook::OnShutdown => "on_shutdown",
            Hook::Engine => "the wait strategy or ringmq",
        })
    }
}

/// Clamps a count from the public API (`usize`) to the `i64` arithmetic of sequences.
#[inline]
pub(crate) fn clamp_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX).max(1)
}
