//! What a shutdown (or a removal) reports: each consumer thread's end state.

use crate::consume::consumer::Hook;

/// What a shutdown (or a removal) reports: one entry per consumer thread.
///
/// [`Disruptor::shutdown`](crate::Disruptor::shutdown) returns it on success, and inside
/// [`ShutdownError::ConsumerPanicked`](crate::ShutdownError::ConsumerPanicked) when a handler
/// panicked, so what every other consumer did is known either way.
///
/// ```
/// use ringmq::{Builder, Consumer, Yielding};
///
/// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
/// b.add(Consumer::new("log", |_: &u64, _, _| {}));
/// let (mut producer, queue) = b.build()?;
/// for i in 0..10 {
///     producer.publish(|e| *e = i)?;
/// }
/// drop(producer);
/// let report = queue.shutdown()?;
/// let log = &report.consumers[0];
/// assert_eq!((log.name.as_str(), log.last_sequence, log.skipped), ("log", 9, 0));
/// assert!(log.panic.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShutdownReport {
    /// One entry per consumer thread (each worker of a pool has its own), in the order they were
    /// added.
    pub consumers: Vec<ConsumerReport>,
}

/// One consumer thread's end state.
///
/// For every consumer, the events it saw are those it handled plus `skipped`: a consumer that
/// ran from sequence 0 to `last_sequence` handled `last_sequence + 1 - skipped` of them (for a
/// pool worker, of those it claimed).
///
/// ```
/// use ringmq::{Builder, Consumer, PanicPolicy, Yielding};
///
/// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
/// b.add(Consumer::new("picky", |v: &u64, _, _| assert!(*v % 4 != 0)).panic_policy(PanicPolicy::SkipEvent));
/// let (mut producer, queue) = b.build()?;
/// for v in 1..=10 {
///     producer.publish(|e| *e = v)?;
/// }
/// drop(producer);
/// let report = queue.shutdown()?;
/// let picky = &report.consumers[0];
/// assert_eq!((picky.last_sequence, picky.skipped), (9, 2)); // 4 and 8 were skipped
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerReport {
    /// The consumer's name.
    pub name: String,
    /// The last sequence it finished, handled or passed (for a pool worker: the highest
    /// sequence it took; never one that was not published). `first - 1` if it finished none.
    pub last_sequence: i64,
    /// Events it passed without handling them: each event whose `on_event` panicked under
    /// [`PanicPolicy::SkipEvent`](crate::PanicPolicy::SkipEvent), and, once
    /// [`PanicPolicy::HaltConsumer`](crate::PanicPolicy::HaltConsumer) stopped its handler, the
    /// event that panicked (if the panic was in `on_event`) and every event passed after it.
    pub skipped: u64,
    /// Calls of `on_start`, `on_batch_start` or `on_timeout` whose panic was passed over under
    /// [`PanicPolicy::SkipEvent`](crate::PanicPolicy::SkipEvent) (the events were still handed
    /// over).
    pub skipped_hooks: u64,
    /// The panic that stopped its handler (under `HaltAll` or `HaltConsumer`, or a panic in
    /// `on_shutdown` under any policy), if any.
    pub panic: Option<HandlerPanic>,
}

/// A panic that stopped a consumer's handler: in which hook, at which sequence, and its message.
///
/// ```
/// use ringmq::{Builder, Consumer, Hook, PanicPolicy, ShutdownError, Yielding};
///
/// let mut b = Builder::single_producer(8, || 0u64, Yielding)?;
/// b.add(Consumer::new("fragile", |v: &u64, _, _| assert!(*v != 3, "three"))
///     .panic_policy(PanicPolicy::HaltConsumer));
/// let (mut producer, queue) = b.build()?;
/// for v in 0..5 {
///     producer.publish(|e| *e = v)?;
/// }
/// drop(producer);
/// let Err(ShutdownError::ConsumerPanicked { report, .. }) = queue.shutdown() else { panic!() };
/// let panic = report.consumers[0].panic.as_ref().unwrap();
/// assert_eq!((panic.hook, panic.sequence), (Hook::OnEvent, 3));
/// assert!(panic.message.contains("three"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerPanic {
    /// Which call panicked.
    pub hook: Hook,
    /// For `on_event`, the event; for `on_batch_start`, the batch's first sequence; for the
    /// other hooks, the last sequence the consumer had finished.
    pub sequence: i64,
    /// The panic's message (or a note that it had none).
    pub message: String,
}
