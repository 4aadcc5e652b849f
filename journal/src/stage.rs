//! The journal as a ring stage.

use std::sync::atomic::Ordering;
use std::time::Duration;

use ringmq::{Consumer, FallibleFactory, FallibleHandler, Retry, RetryPolicy};

use crate::format;
use crate::journal::{Journal, Writer, NO_OFFSET};

/// The journal stage's handler: encodes each event of a batch into one buffer with `encode`,
/// writes the buffer with one `write` at the batch's end and syncs as the policy says before
/// the batch is done, so the stage's sequence (and so its [`ringmq::Tracker`]) moves only over
/// durable events.
///
/// A failed write or sync asks for the batch to be replayed ([`Retry`], whose reason names the
/// file and the error); the segment is first cut back to where the batch began. Once the
/// consumer's [`RetryPolicy`] is spent the failure goes to its [`ringmq::PanicPolicy`]: keep the
/// default, `HaltAll`, for a journal, since a policy that skips events would let receipts pass
/// events that are not on disk.
///
/// ```
/// use ringmq::{Builder, Consumer, Yielding};
/// use ringmq_journal::{Journal, JournalOptions};
/// # let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-stage-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// let journal = Journal::open(JournalOptions::new(&dir))?;
/// let stage = journal.stage(|n: &u32, out: &mut Vec<u8>| out.extend_from_slice(&n.to_le_bytes()));
/// let mut b = Builder::single_producer(64, || 0u32, Yielding)?;
/// b.add(Consumer::fallible_with_handler("journal", move || stage));
/// let (mut producer, queue) = b.build()?;
/// producer.publish(|n| *n = 7)?;
/// drop(producer);
/// queue.shutdown()?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct JournalStage<F> {
    writer: Writer,
    encode: F,
    /// The batch's records, encoded; reused (no allocation once it has grown to a batch).
    buf: Vec<u8>,
    /// Records in `buf`.
    count: u64,
}

impl Journal {
    /// The journal as a stage's handler, encoding each event with `encode` (which appends the
    /// event's bytes to the buffer it is given). Add it with
    /// [`Consumer::fallible_with_handler`], or use [`consumer`](Self::consumer).
    ///
    /// ```
    /// # use ringmq_journal::{Journal, JournalOptions};
    /// # let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-st2-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let journal = Journal::open(JournalOptions::new(&dir))?;
    /// let _stage = journal.stage(|s: &String, out: &mut Vec<u8>| out.extend_from_slice(s.as_bytes()));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stage<E, F>(self, encode: F) -> JournalStage<F>
    where
        F: FnMut(&E, &mut Vec<u8>),
    {
        JournalStage {
            writer: self.writer,
            encode,
            buf: Vec::new(),
            count: 0,
        }
    }

    /// The journal as a consumer named `name`, ready for [`ringmq::Builder::add`] or
    /// [`ringmq::Disruptor::add`]: [`stage`](Self::stage) with a retry policy of 3 replays
    /// 100 ms apart for a failed write (change it with [`Consumer::retry`]).
    ///
    /// ```
    /// use ringmq::{Builder, Yielding};
    /// use ringmq_journal::{Journal, JournalOptions};
    /// # let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-c-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let journal = Journal::open(JournalOptions::new(&dir))?;
    /// let mut b = Builder::single_producer(64, || 0u64, Yielding)?;
    /// let _journaled = b.add(journal.consumer("journal", |n: &u64, out: &mut Vec<u8>| {
    ///     out.extend_from_slice(&n.to_le_bytes())
    /// }));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn consumer<E, F>(
        self,
        name: impl Into<String>,
        encode: F,
    ) -> Consumer<E, FallibleFactory<impl FnOnce() -> JournalStage<F> + Send + 'static>>
    where
        E: 'static,
        F: FnMut(&E, &mut Vec<u8>) + Send + 'static,
    {
        let stage = self.stage(encode);
        Consumer::fallible_with_handler(name, move || stage)
            .retry(RetryPolicy::new(3, Duration::from_millis(100)))
    }
}

impl<F> JournalStage<F> {
    /// A handle on the journal (see [`Journal::handle`]).
    ///
    /// ```
    /// # use ringmq_journal::{Journal, JournalOptions};
    /// # let dir = std::env::temp_dir().join(format!("ringmq-journal-doc-sh-{}", std::process::id()));
    /// # let _ = std::fs::remove_dir_all(&dir);
    /// let journal = Journal::open(JournalOptions::new(&dir))?;
    /// let stage = journal.stage(|n: &u8, out: &mut Vec<u8>| out.push(*n));
    /// assert_eq!(stage.handle().durable_next(), 0);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn handle(&self) -> crate::JournalHandle {
        crate::JournalHandle {
            shared: self.writer.shared.clone(),
        }
    }
}

impl<E, F> FallibleHandler<E> for JournalStage<F>
where
    F: FnMut(&E, &mut Vec<u8>),
{
    fn on_batch_start(&mut self, _batch_len: i64, _queue_depth: i64) {
        // Also before each replay: the batch is encoded again from its first event.
        self.buf.clear();
        self.count = 0;
    }

    fn on_event(&mut self, event: &E, sequence: i64, end_of_batch: bool) -> Result<(), Retry> {
        let position = self.writer.next + self.count;
        let shared = &self.writer.shared;
        if shared.offset.load(Ordering::Relaxed) == NO_OFFSET {
            // The first event fixes how ring sequences map to journal positions; Release pairs
            // with `position_of`'s Acquire (a plain value, read after the receipt).
            shared
                .offset
                .store(position as i64 - sequence, Ordering::Release);
        }
        let max = shared.options.max_record;
        let len = format::append_record(&mut self.buf, position, |out| (self.encode)(event, out));
        if len > max as usize {
            return Err(Retry::new(format!(
                "the event at sequence {sequence} encodes to {len} bytes, over the journal's \
                 max_record of {max}"
            )));
        }
        self.count += 1;
        if end_of_batch {
            let count = std::mem::take(&mut self.count);
            self.writer
                .commit(&self.buf, count, true)
                .map_err(|e| Retry::new(e.to_string()))?;
            self.buf.clear();
        }
        Ok(())
    }

    fn on_shutdown(&mut self) {
        if let Err(e) = self.writer.flush() {
            log::error!("ringmq-journal: final sync failed: {e}");
        }
    }
}
