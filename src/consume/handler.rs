//! Handlers: the traits a user implements (or a closure adapts to), and what the batch loop
//! calls through them.
//!
//! Three kinds: [`EventHandler`] reads events by `&E` (many may read at once), [`ExclusiveHandler`]
//! may change them in place (`&mut E`; the graph accepts it only where nobody reads concurrently),
//! [`FallibleHandler`] may fail a batch and have it replayed. A [`Consumer`](crate::Consumer)'s
//! constructors wrap a closure or a factory in one of the adapter types below; the sealed
//! [`IntoProcess`] turns it into the [`Process`] the loop drives.

use std::time::Duration;

use crate::protocol::ring::Slots;
#[cfg(doc)]
use crate::{Consumer, PanicPolicy};

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
/// let fees = b.add(Consumer::exclusive_with_handler("fees", || Fees { rate: 2 }));
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
pub struct SharedFn<F>(pub(crate) F);
/// A closure handler taking `&mut E` (made by [`Consumer::exclusive`]).
pub struct ExclusiveFn<F>(pub(crate) F);
/// A factory of an [`EventHandler`] (made by [`Consumer::with_handler`]).
pub struct SharedFactory<F>(pub(crate) F);
/// A factory of an [`ExclusiveHandler`] (made by [`Consumer::exclusive_with_handler`]).
pub struct ExclusiveFactory<F>(pub(crate) F);
/// A fallible closure handler (made by [`Consumer::fallible`]).
pub struct FallibleFn<F>(pub(crate) F);
/// A factory of a [`FallibleHandler`] (made by [`Consumer::fallible_with_handler`]).
pub struct FallibleFactory<F>(pub(crate) F);

/// `Debug` for the adapters: a closure or factory has nothing to show but its kind.
macro_rules! debug_by_name {
    ($($t:ident),*) => {$(
        impl<F> std::fmt::Debug for $t<F> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(stringify!($t))
            }
        }
    )*};
}
debug_by_name!(
    FnHandler,
    SharedFn,
    ExclusiveFn,
    SharedFactory,
    ExclusiveFactory,
    FallibleFn,
    FallibleFactory,
    SharedProcess,
    ExclusiveProcess,
    FallibleProcess
);

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
        // SAFETY: forwarded precondition (published, not released, no exclusive writer). Loom:
        // `pipeline_stage_two_sees_stage_one_writes`; miri: the fallible cells of
        // tests/failure_matrix.rs, tests/delivery.rs (retries).
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
        // SAFETY: forwarded precondition (published, not released, no exclusive writer). Loom:
        // `multicast_wrap_waits_for_every_gating_consumer`; miri: tests/delivery.rs.
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
        // Loom: `pipeline_stage_two_sees_stage_one_writes`,
        // `stage_after_a_pool_waits_for_the_worker_that_took_the_event`; miri: tests/delivery.rs
        // (exclusive stages), the exclusive cells of tests/failure_matrix.rs.
        // SAFETY: forwarded precondition; the graph checked this stage is exclusive (ordered with
        // every other stage), so this is the slot's only reference while `on_event` runs.
        unsafe { slots.read_mut(sequence, |e| self.0.on_event(e, sequence, end_of_batch)) };
        Ok(())
    }
}
