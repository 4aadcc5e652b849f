//! Consumers: event handlers, their options, and the batch loop that runs each on its own thread.
//!
//! # The batch loop
//! A consumer owns one [`Sequence`]: the last event it finished. It waits on its barrier for the
//! next sequence, which returns the *highest* available one; it then hands every event up to it
//! (or up to its `max_batch`) to the handler, the last one with `end_of_batch = true`, and stores
//! its sequence once for the whole batch (`Release`: the events it covers are done). That single
//! store per batch is what lets a consumer that fell behind catch up at memory speed.
//!
//! # Panics
//! The loop runs under `catch_unwind`, re-entered only after a panic, so it costs nothing per
//! event. What follows a handler's panic is the consumer's [`PanicPolicy`].

use std::any::Any;
use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use crate::barrier::Barrier;
use crate::lifecycle::Stop;
use crate::ring::Slots;
use crate::sequence::Sequence;
use crate::sequencer::sealed::SequencerImpl;
use crate::sync::Arc;
use crate::wait::{PollingWait, WaitStrategy, Waited};

/// Handles events by shared reference; many such handlers may read the same event at once.
///
/// Only [`on_event`](Self::on_event) is required. The handler is built on the consumer's own
/// thread (see [`Consumer::with_handler`]), so it need not be `Send`.
///
/// ```
/// struct Sum { total: u64 }
/// impl ringmq::EventHandler<u64> for Sum {
///     fn on_event(&mut self, event: &u64, _sequence: i64, _end_of_batch: bool) {
///         self.total += event;
///     }
///     fn on_shutdown(&mut self) {
///         println!("total {}", self.total);
///     }
/// }
/// let consumer = ringmq::Consumer::with_handler("sum", || Sum { total: 0 });
/// # let _ = consumer;
/// ```
pub trait EventHandler<E> {
    /// Handles the event at `sequence`; `end_of_batch` is true for the last event of a batch
    /// (flush buffered work there).
    fn on_event(&mut self, event: &E, sequence: i64, end_of_batch: bool);

    /// Called once on the consumer thread before the first event.
    fn on_start(&mut self) {}

    /// Called once on the consumer thread after the last event (drained, halted or failed).
    fn on_shutdown(&mut self) {}

    /// Called before each batch: `batch_len` events follow, and `queue_depth` are available now
    /// (more than `batch_len` when `max_batch` capped the batch).
    fn on_batch_start(&mut self, batch_len: i64, queue_depth: i64) {
        let _ = (batch_len, queue_depth);
    }

    /// Called when the consumer's [`timeout`](Consumer::timeout) passed with no event;
    /// `sequence` is the last event handled.
    fn on_timeout(&mut self, sequence: i64) {
        let _ = sequence;
    }
}

/// Handles events by exclusive reference: may change the event in place for later stages.
///
/// The builder accepts such a handler only where no other consumer can read the event at the same
/// time (every other consumer is before or after it in the graph), which is what makes `&mut E`
/// sound.
///
/// ```
/// use ringmq::{Builder, Consumer, ExclusiveHandler, Yielding};
///
/// #[derive(Default)]
/// struct Order { price: u64, fee: u64 }
///
/// /// Fills in each order's fee, for the stages after it.
/// struct Fees { rate: u64 }
/// impl ExclusiveHandler<Order> for Fees {
///     fn on_event(&mut self, order: &mut Order, _seq: i64, _end_of_batch: bool) {
///         order.fee = order.price * self.rate / 100;
///     }
/// }
///
/// let mut b = Builder::single_producer(64, Order::default, Yielding)?;
/// let fees = b.add(Consumer::exclusive_with_handler("fees", || Fees { rate: 2 }))?;
/// b.add_after(&[fees], Consumer::new("check", |o: &Order, _, _| assert_eq!(o.fee, 2)))?;
/// let (mut producer, queue) = b.build()?;
/// producer.publish(|o| o.price = 100)?;
/// drop(producer);
/// queue.shutdown()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait ExclusiveHandler<E> {
    /// Handles, and may change, the event at `sequence`.
    fn on_event(&mut self, event: &mut E, sequence: i64, end_of_batch: bool);

    /// As [`EventHandler::on_start`].
    fn on_start(&mut self) {}

    /// As [`EventHandler::on_shutdown`].
    fn on_shutdown(&mut self) {}

    /// As [`EventHandler::on_batch_start`].
    fn on_batch_start(&mut self, batch_len: i64, queue_depth: i64) {
        let _ = (batch_len, queue_depth);
    }

    /// As [`EventHandler::on_timeout`].
    fn on_timeout(&mut self, sequence: i64) {
        let _ = sequence;
    }
}

/// Handles events by shared reference and may fail a batch, asking for it to be replayed.
///
/// When [`on_event`](Self::on_event) returns `Err`, the consumer's sequence does not move: after
/// the pause of its [`RetryPolicy`] the *whole batch* is handed again from its first event
/// (`on_batch_start` first), so a handler that writes a batch in one transaction can simply
/// retry it. Once the policy's attempts are spent, the failure goes to the consumer's
/// [`PanicPolicy`] as if the handler had panicked at the failing event.
///
/// ```
/// use ringmq::{Consumer, Retry, RetryPolicy};
/// use std::time::Duration;
///
/// let store = Consumer::fallible("store", |row: &u64, _seq, end_of_batch| {
///     // buffer `row`; write the buffer at the end of the batch
///     if end_of_batch && *row == u64::MAX {
///         return Err(Retry::new("database busy"));
///     }
///     Ok(())
/// })
/// .retry(RetryPolicy::new(3, Duration::from_millis(10)));
/// # let _ = store;
/// ```
pub trait FallibleHandler<E> {
    /// Handles the event at `sequence`; `Err` replays the current batch.
    fn on_event(&mut self, event: &E, sequence: i64, end_of_batch: bool) -> Result<(), Retry>;

    /// As [`EventHandler::on_start`].
    fn on_start(&mut self) {}

    /// As [`EventHandler::on_shutdown`].
    fn on_shutdown(&mut self) {}

    /// As [`EventHandler::on_batch_start`]; called again before each replay of a batch.
    fn on_batch_start(&mut self, batch_len: i64, queue_depth: i64) {
        let _ = (batch_len, queue_depth);
    }

    /// As [`EventHandler::on_timeout`].
    fn on_timeout(&mut self, sequence: i64) {
        let _ = sequence;
    }
}

/// A fallible handler's request to replay its current batch, with the reason (reported if the
/// retries run out).
///
/// ```
/// use ringmq::Retry;
/// let retry = Retry::new("database busy");
/// assert_eq!(retry.reason(), "database busy");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retry {
    reason: String,
}

impl Retry {
    /// Asks for the current batch to be replayed because of `reason`.
    ///
    /// ```
    /// let r = ringmq::Retry::new("timeout talking to the database");
    /// assert_eq!(r.reason(), "timeout talking to the database");
    /// ```
    pub fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }

    /// Why the batch failed.
    ///
    /// ```
    /// assert_eq!(ringmq::Retry::new("busy").reason(), "busy");
    /// ```
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// How often, and with what pause, a fallible consumer replays a failed batch before the failure
/// goes to its [`PanicPolicy`].
///
/// ```
/// use ringmq::RetryPolicy;
/// use std::time::Duration;
/// // Replay up to 5 times, 20 ms apart; then the panic policy decides.
/// let policy = RetryPolicy::new(5, Duration::from_millis(20));
/// assert_eq!(policy.attempts(), 5);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryPolicy {
    attempts: u32,
    pause: Duration,
}

impl RetryPolicy {
    /// Replays a failed batch up to `attempts` times, sleeping `pause` before each replay. Any
    /// values are accepted (`u32::MAX` attempts, `Duration::MAX` pauses): a halt still ends the
    /// retrying at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = ringmq::RetryPolicy::new(3, Duration::from_millis(5));
    /// assert_eq!((p.attempts(), p.pause()), (3, Duration::from_millis(5)));
    /// ```
    pub fn new(attempts: u32, pause: Duration) -> Self {
        Self { attempts, pause }
    }

    /// The number of replays after the first failure.
    ///
    /// ```
    /// assert_eq!(ringmq::RetryPolicy::new(2, std::time::Duration::ZERO).attempts(), 2);
    /// ```
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The pause before each replay.
    ///
    /// ```
    /// use std::time::Duration;
    /// assert_eq!(ringmq::RetryPolicy::new(1, Duration::from_secs(1)).pause(), Duration::from_secs(1));
    /// ```
    pub fn pause(&self) -> Duration {
        self.pause
    }
}

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
///     .on_panic(PanicPolicy::SkipEvent))?;
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
    /// Report the panic on stderr, skip the event (or pass over the hook call), go on with the
    /// same handler. The counts are in the [`ShutdownReport`](crate::ShutdownReport).
    SkipEvent,
    /// Report the panic on stderr and stop calling this handler. The consumer keeps following its
    /// upstream without handling anything (passing each event only once it is published), so it
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
}

/// See [`Consumer::coalesce`]: pause when chasing a streaming producer with a small batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Coalesce {
    /// Batches of fewer events than this may wait.
    min: i64,
    /// How long they wait.
    delay: Duration,
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
/// .on_panic(PanicPolicy::SkipEvent)
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
    /// let c = Consumer::new("metrics", |_: &u64, _, _| {}).on_panic(PanicPolicy::HaltConsumer);
    /// ```
    pub fn on_panic(mut self, policy: PanicPolicy) -> Self {
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

/// Adapts a closure to the handler traits.
#[doc(hidden)]
pub struct FnHandler<F>(F);

impl<E, F: FnMut(&E, i64, bool)> EventHandler<E> for FnHandler<F> {
    #[inline]
    fn on_event(&mut self, event: &E, sequence: i64, end_of_batch: bool) {
        (self.0)(event, sequence, end_of_batch)
    }
}

impl<E, F: FnMut(&mut E, i64, bool)> ExclusiveHandler<E> for FnHandler<F> {
    #[inline]
    fn on_event(&mut self, event: &mut E, sequence: i64, end_of_batch: bool) {
        (self.0)(event, sequence, end_of_batch)
    }
}

impl<E, F: FnMut(&E, i64, bool) -> Result<(), Retry>> FallibleHandler<E> for FnHandler<F> {
    #[inline]
    fn on_event(&mut self, event: &E, sequence: i64, end_of_batch: bool) -> Result<(), Retry> {
        (self.0)(event, sequence, end_of_batch)
    }
}

/// A closure handler taking `&E` (made by [`Consumer::new`]).
pub struct SharedFn<F>(F);
/// A closure handler taking `&mut E` (made by [`Consumer::exclusive`]).
pub struct ExclusiveFn<F>(F);
/// A factory of an [`EventHandler`] (made by [`Consumer::with_handler`]).
pub struct SharedFactory<F>(F);
/// A factory of an [`ExclusiveHandler`] (made by [`Consumer::exclusive_with_handler`]).
pub struct ExclusiveFactory<F>(F);
/// A fallible closure handler (made by [`Consumer::fallible`]).
pub struct FallibleFn<F>(F);
/// A factory of a [`FallibleHandler`] (made by [`Consumer::fallible_with_handler`]).
pub struct FallibleFactory<F>(F);

/// Turns a [`Consumer`]'s handler into what the batch loop runs. Sealed: implemented by the
/// handler kinds that [`Consumer`]'s constructors make.
pub trait IntoProcess<E>: Send + 'static + sealed::Sealed {
    #[doc(hidden)]
    type Process: Process<E>;
    #[doc(hidden)]
    const EXCLUSIVE: bool;
    #[doc(hidden)]
    fn into_process(self) -> Self::Process;
}

mod sealed {
    pub trait Sealed {}
    impl<F> Sealed for super::SharedFn<F> {}
    impl<F> Sealed for super::ExclusiveFn<F> {}
    impl<F> Sealed for super::SharedFactory<F> {}
    impl<F> Sealed for super::ExclusiveFactory<F> {}
    impl<F> Sealed for super::FallibleFn<F> {}
    impl<F> Sealed for super::FallibleFactory<F> {}
}

/// What the batch loop calls: the handler's hooks and the delivery of one event.
// `deliver` takes the crate-private ring: the trait is reachable only as an associated type of the
// sealed `IntoProcess`, so nobody outside the crate can call it.
#[doc(hidden)]
#[allow(private_interfaces)]
pub trait Process<E> {
    fn on_start(&mut self);
    fn on_shutdown(&mut self);
    fn on_batch_start(&mut self, batch_len: i64, queue_depth: i64);
    fn on_timeout(&mut self, sequence: i64);
    /// Delivers `sequence`; `Err` asks for the batch to be replayed (fallible handlers only).
    ///
    /// # Safety
    /// As [`Ring::read`] (and [`Ring::read_mut`] for exclusive handlers).
    unsafe fn deliver(
        &mut self,
        slots: Slots<'_, E>,
        sequence: i64,
        end_of_batch: bool,
    ) -> Result<(), Retry>;
}

/// A built shared handler.
#[doc(hidden)]
pub struct SharedProcess<H>(H);
/// A built exclusive handler.
#[doc(hidden)]
pub struct ExclusiveProcess<H>(H);
/// A built fallible handler.
#[doc(hidden)]
pub struct FallibleProcess<H>(H);

impl<E, F: FnMut(&E, i64, bool) + Send + 'static> IntoProcess<E> for SharedFn<F> {
    type Process = SharedProcess<FnHandler<F>>;
    const EXCLUSIVE: bool = false;
    fn into_process(self) -> Self::Process {
        SharedProcess(FnHandler(self.0))
    }
}

impl<E, F: FnMut(&mut E, i64, bool) + Send + 'static> IntoProcess<E> for ExclusiveFn<F> {
    type Process = ExclusiveProcess<FnHandler<F>>;
    const EXCLUSIVE: bool = true;
    fn into_process(self) -> Self::Process {
        ExclusiveProcess(FnHandler(self.0))
    }
}

impl<E, H: EventHandler<E>, F: FnOnce() -> H + Send + 'static> IntoProcess<E> for SharedFactory<F> {
    type Process = SharedProcess<H>;
    const EXCLUSIVE: bool = false;
    fn into_process(self) -> SharedProcess<H> {
        SharedProcess((self.0)())
    }
}

impl<E, H: ExclusiveHandler<E>, F: FnOnce() -> H + Send + 'static> IntoProcess<E>
    for ExclusiveFactory<F>
{
    type Process = ExclusiveProcess<H>;
    const EXCLUSIVE: bool = true;
    fn into_process(self) -> ExclusiveProcess<H> {
        ExclusiveProcess((self.0)())
    }
}

impl<E, F> IntoProcess<E> for FallibleFn<F>
where
    F: FnMut(&E, i64, bool) -> Result<(), Retry> + Send + 'static,
{
    type Process = FallibleProcess<FnHandler<F>>;
    const EXCLUSIVE: bool = false;
    fn into_process(self) -> Self::Process {
        FallibleProcess(FnHandler(self.0))
    }
}

impl<E, H: FallibleHandler<E>, F: FnOnce() -> H + Send + 'static> IntoProcess<E>
    for FallibleFactory<F>
{
    type Process = FallibleProcess<H>;
    const EXCLUSIVE: bool = false;
    fn into_process(self) -> FallibleProcess<H> {
        FallibleProcess((self.0)())
    }
}

#[allow(private_interfaces)]
impl<E, H: FallibleHandler<E>> Process<E> for FallibleProcess<H> {
    fn on_start(&mut self) {
        self.0.on_start()
    }
    fn on_shutdown(&mut self) {
        self.0.on_shutdown()
    }
    #[inline]
    fn on_batch_start(&mut self, batch_len: i64, queue_depth: i64) {
        self.0.on_batch_start(batch_len, queue_depth)
    }
    fn on_timeout(&mut self, sequence: i64) {
        self.0.on_timeout(sequence)
    }
    #[inline]
    unsafe fn deliver(
        &mut self,
        slots: Slots<'_, E>,
        sequence: i64,
        end_of_batch: bool,
    ) -> Result<(), Retry> {
        // SAFETY: forwarded precondition (published, not released, no exclusive writer).
        unsafe { slots.read(sequence, |e| self.0.on_event(e, sequence, end_of_batch)) }
    }
}

#[allow(private_interfaces)]
impl<E, H: EventHandler<E>> Process<E> for SharedProcess<H> {
    fn on_start(&mut self) {
        self.0.on_start()
    }
    fn on_shutdown(&mut self) {
        self.0.on_shutdown()
    }
    #[inline]
    fn on_batch_start(&mut self, batch_len: i64, queue_depth: i64) {
        self.0.on_batch_start(batch_len, queue_depth)
    }
    fn on_timeout(&mut self, sequence: i64) {
        self.0.on_timeout(sequence)
    }
    #[inline]
    unsafe fn deliver(
        &mut self,
        slots: Slots<'_, E>,
        sequence: i64,
        end_of_batch: bool,
    ) -> Result<(), Retry> {
        // SAFETY: forwarded precondition (published, not released, no exclusive writer).
        unsafe { slots.read(sequence, |e| self.0.on_event(e, sequence, end_of_batch)) };
        Ok(())
    }
}

#[allow(private_interfaces)]
impl<E, H: ExclusiveHandler<E>> Process<E> for ExclusiveProcess<H> {
    fn on_start(&mut self) {
        self.0.on_start()
    }
    fn on_shutdown(&mut self) {
        self.0.on_shutdown()
    }
    #[inline]
    fn on_batch_start(&mut self, batch_len: i64, queue_depth: i64) {
        self.0.on_batch_start(batch_len, queue_depth)
    }
    fn on_timeout(&mut self, sequence: i64) {
        self.0.on_timeout(sequence)
    }
    #[inline]
    unsafe fn deliver(
        &mut self,
        slots: Slots<'_, E>,
        sequence: i64,
        end_of_batch: bool,
    ) -> Result<(), Retry> {
        // SAFETY: forwarded precondition; the builder checked this stage is exclusive.
        unsafe { slots.read_mut(sequence, |e| self.0.on_event(e, sequence, end_of_batch)) };
        Ok(())
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
/// b.add(Consumer::with_handler("flaky", || Flaky))?;
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

/// A panic that stopped a consumer's handler (or, for [`Hook::OnShutdown`], its last call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Panicked {
    pub(crate) hook: Hook,
    pub(crate) sequence: i64,
    pub(crate) message: String,
    /// When it happened, among all panics of the queue: shutdown reports the first.
    pub(crate) ticket: usize,
}

/// How a consumer thread ended.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerExit {
    pub(crate) name: String,
    /// The consumer thread's id within the queue (unique, unlike names).
    pub(crate) worker: usize,
    pub(crate) last_sequence: i64,
    pub(crate) skipped: u64,
    pub(crate) skipped_hooks: u64,
    pub(crate) panic: Option<Panicked>,
}

/// The batch loop of one consumer (or one worker of a pool), with everything it needs.
pub(crate) struct Processor<E, S, W> {
    pub(crate) name: String,
    /// Unique within the queue: names the worker in a failure (see [`ConsumerExit::worker`]).
    pub(crate) worker: usize,
    pub(crate) barrier: Barrier<E, S, W>,
    pub(crate) sequence: Arc<Sequence>,
    pub(crate) options: Options,
    /// The pool's shared claim, for a worker of a work pool.
    pub(crate) pool: Option<Arc<crate::pool::PoolClaim>>,
}

pub(crate) enum Ended {
    Drained,
    Halted,
}

/// Where the loop is, kept outside `catch_unwind` so a panic's position survives it.
pub(crate) struct Position {
    /// The next sequence to hand over; after a panic in `on_event`, the one that panicked.
    pub(crate) next: i64,
    /// For a pool worker, the last sequence of its current claim (`< next`: no claim).
    pub(crate) claim_end: i64,
    /// The highest sequence this consumer handled or passed (what its report calls
    /// `last_sequence`; for a pool worker its own sequence can be past it, see `pool.rs`).
    pub(crate) finished: i64,
    /// The hook that was running when a panic unwound; written by [`InHook`] on unwind only.
    pub(crate) hook: Hook,
    /// After `on_batch_start` panicked under `SkipEvent`: hand the batch over without calling it
    /// again (it would only panic again).
    pub(crate) pass_batch_start: bool,
}

impl Position {
    fn new(next: i64) -> Self {
        Self {
            next,
            claim_end: next - 1,
            finished: next - 1,
            hook: Hook::Engine,
            pass_batch_start: false,
        }
    }
}

/// What the loop does after a panic.
enum Then {
    /// Re-enter the loop where `Position` says.
    Resume,
    /// The loop is over (the queue failed, or the handler is stopped and the consumer passed
    /// everything it will see).
    Stop,
}

impl<E, S: SequencerImpl, W: WaitStrategy> Processor<E, S, W> {
    /// Runs the consumer to its end on the current thread.
    pub(crate) fn run<P: Process<E>>(self, make: impl FnOnce() -> P) -> ConsumerExit {
        let start = self.sequence.get_relaxed() + 1;
        let mut exit = ConsumerExit {
            name: self.name.clone(),
            worker: self.worker,
            last_sequence: start - 1,
            skipped: 0,
            skipped_hooks: 0,
            panic: None,
        };
        // A pool worker starts with no claim (`claim_end < next`).
        let mut at = Position::new(start);
        let mut process = match catch_unwind(AssertUnwindSafe(make)) {
            Ok(p) => p,
            Err(payload) => {
                at.hook = Hook::Factory;
                self.after_panic(payload.as_ref(), &mut at, &mut exit);
                exit.last_sequence = self.last_sequence(&at);
                return exit;
            }
        };
        let mut then = Then::Resume;
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| process.on_start())) {
            at.hook = Hook::OnStart;
            then = self.after_panic(payload.as_ref(), &mut at, &mut exit);
        }
        while let Then::Resume = then {
            // A panic that no hook guard claims is the engine's (see `Hook::Engine`).
            at.hook = Hook::Engine;
            let result = catch_unwind(AssertUnwindSafe(|| match &self.pool {
                None => self.batches(&mut process, &mut at),
                Some(pool) => self.work(pool, &mut process, &mut at),
            }));
            then = match result {
                Ok(_ended) => Then::Stop,
                Err(payload) => self.after_panic(payload.as_ref(), &mut at, &mut exit),
            };
        }
        // Reported, never fatal to the others: by now this consumer is done, and the rest of the
        // queue may still be draining.
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| process.on_shutdown())) {
            let message = panic_message(payload.as_ref());
            crate::diag::error(format_args!(
                "consumer `{}` panicked in on_shutdown: {message}",
                self.name
            ));
            if exit.panic.is_none() {
                exit.panic = Some(self.panicked(Hook::OnShutdown, at.finished, message));
            }
        }
        exit.last_sequence = self.last_sequence(&at);
        exit
    }

    /// What the report calls the last sequence: the consumer's own sequence, which for a pool
    /// worker may stand for a claim past what was published, so for it what it really finished.
    fn last_sequence(&self, at: &Position) -> i64 {
        match self.pool {
            None => self.sequence.get_relaxed(),
            Some(_) => at.finished,
        }
    }

    /// Applies the panic policy to a panic in `at.hook` (see [`PanicPolicy`] for the table).
    /// Only a panic in `on_event` fails an event, and that event (`at.next`) was published; any
    /// other hook leaves the consumer where it was, so no sequence it has not been handed is
    /// ever passed (the loom model `hook_panic_while_waiting_never_passes_an_unpublished_slot`).
    #[cold]
    fn after_panic(
        &self,
        payload: &(dyn Any + Send),
        at: &mut Position,
        exit: &mut ConsumerExit,
    ) -> Then {
        let message = panic_message(payload);
        let hook = at.hook;
        // Without a handler there is nothing to skip to: the stage goes on without it.
        let policy = match (hook, self.options.policy) {
            (Hook::Engine, _) => PanicPolicy::HaltAll,
            (Hook::Factory, PanicPolicy::SkipEvent) => PanicPolicy::HaltConsumer,
            (_, policy) => policy,
        };
        let sequence = match hook {
            Hook::OnEvent | Hook::OnBatchStart => at.next,
            _ => at.next - 1,
        };
        let name = &self.name;
        match policy {
            PanicPolicy::HaltAll => {
                let panicked = self.panicked(hook, sequence, message);
                self.barrier.shared.fail(&self.name, self.worker, sequence);
                exit.panic = Some(panicked);
                Then::Stop
            }
            PanicPolicy::SkipEvent if hook == Hook::OnEvent => {
                crate::diag::warn(format_args!(
                    "consumer `{name}` panicked at sequence {sequence}: {message}; skipping the event"
                ));
                exit.skipped += 1;
                // For a pool worker too: it holds nothing at or below `sequence` now.
                self.sequence.set(sequence);
                self.barrier.shared.wait.notify();
                at.next = sequence + 1;
                at.finished = at.finished.max(sequence);
                Then::Resume
            }
            PanicPolicy::SkipEvent => {
                crate::diag::warn(format_args!(
                    "consumer `{name}` panicked in {hook}: {message}; passing over the call"
                ));
                exit.skipped_hooks += 1;
                at.pass_batch_start = hook == Hook::OnBatchStart;
                Then::Resume
            }
            PanicPolicy::HaltConsumer => {
                crate::diag::warn(format_args!(
                    "consumer `{name}` panicked in {hook} at sequence {sequence}: {message}; \
                     its handler is stopped, the rest of the queue goes on"
                ));
                exit.panic = Some(self.panicked(hook, sequence, message));
                // From the first sequence not handled: after `on_event`, the one that panicked.
                // Under `catch_unwind` too: a panic here (a user wait strategy's) would otherwise
                // end the thread with its sequence frozen, holding producers back for good.
                let passing = catch_unwind(AssertUnwindSafe(|| match &self.pool {
                    None => self.follow(at, exit),
                    Some(pool) => self.retire(pool, at, exit),
                }));
                if passing.is_err() {
                    self.barrier
                        .shared
                        .fail(&self.name, self.worker, at.finished);
                }
                Then::Stop
            }
        }
    }

    fn panicked(&self, hook: Hook, sequence: i64, message: String) -> Panicked {
        Panicked {
            hook,
            sequence,
            message,
            ticket: self.barrier.shared.lifecycle.ticket(),
        }
    }

    #[inline]
    pub(crate) fn wait_for(&self, next: i64) -> Waited<i64, Stop> {
        let timeout = self.options.timeout;
        match &self.options.wait {
            Some(polling) => self.barrier.wait_for(next, polling, timeout),
            None => self
                .barrier
                .wait_for(next, &self.barrier.shared.wait, timeout),
        }
    }

    /// Calls `on_timeout` (no event came for the consumer's `timeout`), recording the hook if it
    /// unwinds.
    #[cold]
    pub(crate) fn timed_out<P: Process<E>>(&self, process: &mut P, at: &mut Position) {
        let guard = InHook(&mut at.hook, Hook::OnTimeout);
        process.on_timeout(at.next - 1);
        std::mem::forget(guard);
    }

    /// The batch loop proper, from `at.next`.
    fn batches<P: Process<E>>(&self, process: &mut P, at: &mut Position) -> Ended {
        let shared = &self.barrier.shared;
        let max_batch = self.options.max_batch.map_or(i64::MAX, clamp_count);
        let coalesce = self.options.coalesce;
        loop {
            let first = at.next;
            if let Some(c) = coalesce {
                self.coalesce(first, c);
            }
            match self.wait_for(first) {
                Waited::Ready(available) => {
                    let last = available.min(first.saturating_add(max_batch - 1));
                    if !self.deliver_batch(process, first, last, available, at) {
                        // A replay was interrupted: the batch is not done, the sequence stays.
                        return Ended::Halted;
                    }
                    at.next = last + 1;
                    self.sequence.set(last);
                    shared.wait.notify();
                    if self.barrier.must_stop() {
                        return Ended::Halted;
                    }
                }
                Waited::TimedOut => self.timed_out(process, at),
                Waited::Stopped(Stop::Drained) => return Ended::Drained,
                Waited::Stopped(Stop::Halted) => return Ended::Halted,
            }
        }
    }

    /// Pauses for `c.delay` if `first` is already available but fewer than `c.min` events are:
    /// the producer is streaming and this consumer is right behind it (see
    /// [`Consumer::coalesce`]). The pause touches no shared memory except, every 64 spins, to
    /// end early: once `c.min` events are there, or the queue stops running (so even a delay of
    /// `Duration::MAX` holds up neither a drain nor a halt).
    #[inline]
    fn coalesce(&self, first: i64, c: Coalesce) {
        // A batch never exceeds the ring: a larger minimum would pause a consumer behind a full
        // ring, where the producer waits for it, until the delay ran out (or for ever).
        let min = c.min.min(self.barrier.shared.ring.capacity());
        let available = self.barrier.available(first);
        if available < first || available - first + 1 >= min {
            return;
        }
        // No clock under loom: no pause there (the models check delivery, not timing).
        if let Some(start) = crate::sync::now() {
            let mut spins = 0u32;
            while crate::sync::now().is_some_and(|n| n.duration_since(start) < c.delay) {
                crate::sync::spin_loop();
                spins = spins.wrapping_add(1);
                if spins % 64 == 0
                    && (!self.barrier.shared.lifecycle.is_running()
                        || self.barrier.must_stop()
                        || self.barrier.available(first) - first + 1 >= min)
                {
                    return;
                }
            }
        }
    }

    /// Hands `first..=last` (published, held by this consumer) to the handler as one batch,
    /// replaying it as the retry policy says if a fallible handler fails it. `false` if a replay
    /// was interrupted (halted, failed elsewhere, removed): the batch is then not done.
    #[inline]
    pub(crate) fn deliver_batch<P: Process<E>>(
        &self,
        process: &mut P,
        first: i64,
        last: i64,
        available: i64,
        at: &mut Position,
    ) -> bool {
        self.batch_start(process, first, last, available, at);
        match self.deliver_range(process, first, last, at) {
            Ok(()) => true,
            Err((failed, retry)) => self.replay(process, first, last, available, at, failed, retry),
        }
    }

    /// Calls `on_batch_start`, unless it panicked on this batch under `SkipEvent` (then once
    /// not), recording the hook if it unwinds.
    #[inline]
    fn batch_start<P: Process<E>>(
        &self,
        process: &mut P,
        first: i64,
        last: i64,
        available: i64,
        at: &mut Position,
    ) {
        if at.pass_batch_start {
            at.pass_batch_start = false;
            return;
        }
        let guard = InHook(&mut at.hook, Hook::OnBatchStart);
        process.on_batch_start(last - first + 1, available - first + 1);
        std::mem::forget(guard);
    }

    /// Delivers `first..=last` once; the first failure of a fallible handler stops it.
    #[inline]
    fn deliver_range<P: Process<E>>(
        &self,
        process: &mut P,
        first: i64,
        last: i64,
        at: &mut Position,
    ) -> Result<(), (i64, Retry)> {
        let ring = &self.barrier.shared.ring;
        if ring.may_skip_from(first) {
            // Rare: a producer abandoned a slot at or after `first`.
            return self.deliver_with_skips(process, first, last, at);
        }
        let slots = ring.slots();
        // An exclusive range: `..=` iterates with an extra flag per step.
        for seq in first..last + 1 {
            // Records `seq` only if the handler unwinds: no store per event.
            let guard = PanicAt(at, seq);
            // Exercised by loom (`pipeline_stage_two_sees_stage_one_writes`, `hook_panic_while_*`)
            // and, under miri, by the delivery and failure-matrix tests.
            // SAFETY: `first..=last` is published (the barrier's Acquire) and not released (our
            // sequence is below `first`; a pool worker claimed it alone); exclusivity is checked.
            let result = unsafe { process.deliver(slots, seq, seq == last) };
            std::mem::forget(guard);
            result.map_err(|retry| (seq, retry))?;
        }
        Ok(())
    }

    /// Delivers `first..=last`, passing slots their producer abandoned; `end_of_batch` goes to the
    /// last event actually delivered.
    #[cold]
    fn deliver_with_skips<P: Process<E>>(
        &self,
        process: &mut P,
        first: i64,
        last: i64,
        at: &mut Position,
    ) -> Result<(), (i64, Retry)> {
        let ring = &self.barrier.shared.ring;
        let slots = ring.slots();
        let mut end = last;
        while end >= first && ring.is_skipped(end) {
            end -= 1;
        }
        for seq in first..last + 1 {
            let guard = PanicAt(at, seq);
            let result = if ring.is_skipped(seq) {
                Ok(())
            } else {
                // SAFETY: as in `deliver_range`.
                unsafe { process.deliver(slots, seq, seq == end) }
            };
            std::mem::forget(guard);
            result.map_err(|retry| (seq, retry))?;
        }
        Ok(())
    }

    /// A fallible handler failed the batch at `failed`: replay it from `first` as the retry policy
    /// says; once the attempts are spent, unwind as a panic at the failing event, so the panic
    /// policy decides. The consumer's sequence has not moved meanwhile. `false` if the queue
    /// stopped (or the stage was removed) while retrying: the batch is then not done, and the
    /// caller must not store its end as processed.
    #[cold]
    #[allow(clippy::too_many_arguments)]
    fn replay<P: Process<E>>(
        &self,
        process: &mut P,
        first: i64,
        last: i64,
        available: i64,
        at: &mut Position,
        mut failed: i64,
        mut retry: Retry,
    ) -> bool {
        let policy = self.options.retry;
        for _ in 0..policy.attempts() {
            if !self.pause(policy.pause()) {
                // Halted or removed while retrying: nothing will be drained any more.
                return false;
            }
            self.batch_start(process, first, last, available, at);
            match self.deliver_range(process, first, last, at) {
                Ok(()) => return true,
                Err((seq, r)) => (failed, retry) = (seq, r),
            }
        }
        at.next = failed;
        at.hook = Hook::OnEvent;
        std::panic::resume_unwind(Box::new(format!(
            "the batch {first}..={last} failed after {} replays: {}",
            policy.attempts(),
            retry.reason()
        )));
    }

    /// Sleeps `pause` in slices of at most a millisecond; `false` as soon as the consumer must
    /// stop. Any pause is accepted: one past what `Instant` can hold never ends by itself.
    fn pause(&self, pause: Duration) -> bool {
        const SLICE: Duration = Duration::from_millis(1);
        let deadline = crate::sync::deadline_in(pause);
        loop {
            if self.barrier.must_stop() {
                return false;
            }
            let left = match (crate::sync::now(), deadline) {
                // Under loom (no clock) a pause is one yield.
                (None, _) => {
                    crate::sync::thread::sleep(pause);
                    return !self.barrier.must_stop();
                }
                (Some(now), Some(d)) => d.saturating_duration_since(now),
                (Some(_), None) => SLICE,
            };
            if left.is_zero() {
                return true;
            }
            crate::sync::thread::sleep(left.min(SLICE));
        }
    }

    /// After [`PanicPolicy::HaltConsumer`]: keep the sequence moving with the barrier without
    /// handling anything, from `at.next` (the first sequence not handled), so neither producers
    /// nor downstream stages wait on this consumer. Every sequence is passed only once the
    /// barrier shows it published; each counts as skipped.
    fn follow(&self, at: &mut Position, exit: &mut ConsumerExit) {
        let mut next = at.next;
        loop {
            match self.barrier.wait_for(next, &self.barrier.shared.wait, None) {
                Waited::Ready(available) => {
                    exit.skipped += (available - next + 1) as u64;
                    self.sequence.set(available);
                    self.barrier.shared.wait.notify();
                    next = available + 1;
                    at.finished = available;
                    if self.barrier.must_stop() {
                        return;
                    }
                }
                Waited::TimedOut => {}
                Waited::Stopped(_) => return,
            }
        }
    }
}

/// Clamps a count from the public API (`usize`) to the `i64` arithmetic of sequences.
#[inline]
pub(crate) fn clamp_count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX).max(1)
}

/// Stores the sequence being handled into the loop's position if the handler unwinds; it is
/// `mem::forget`-ed after every event that returns, so the normal path stores nothing.
struct PanicAt<'a>(&'a mut Position, i64);

impl Drop for PanicAt<'_> {
    fn drop(&mut self) {
        self.0.next = self.1;
        self.0.hook = Hook::OnEvent;
    }
}

/// Records which hook was running if it unwinds; `mem::forget`-ed when it returns.
struct InHook<'a>(&'a mut Hook, Hook);

impl Drop for InHook<'_> {
    fn drop(&mut self) {
        *self.0 = self.1;
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_owned()
    }
}
