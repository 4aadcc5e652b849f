//! README.md's journal example ("Durable: the journal"), as a program: a restart that loads a
//! checkpoint, replays the journal after it, and journals a new event with a durable receipt.
//! `tests/readme.rs` checks README.md shows exactly this file's code below this comment.
//!
//! `cargo run -p ringmq-journal --example restart`

use ringmq::{Builder, Consumer, Yielding};
use ringmq_journal::{Checkpoint, Journal, JournalOptions, SyncPolicy};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("readme-journal-{}", std::process::id()));
    let journal =
        Journal::open(JournalOptions::new(dir.join("journal")).sync(SyncPolicy::EveryBatch))?;
    let handle = journal.handle();
    std::fs::create_dir_all(&dir)?;
    let checkpoint = Checkpoint::new(dir.join("total.ckpt"));

    // Restart: the state from its checkpoint, then the journal after it.
    let (mut total, resume_at) = match checkpoint.load()? {
        Some(s) => (u64::from_le_bytes(s.state[..8].try_into()?), s.resume_at),
        None => (0, 0),
    };
    for record in journal.read_from(resume_at)? {
        total += u64::from_le_bytes(record?.payload[..8].try_into()?);
    }

    let mut b = Builder::single_producer(1024, || 0u64, Yielding)?;
    let journaled = b.add(journal.consumer("journal", |n: &u64, out: &mut Vec<u8>| {
        out.extend_from_slice(&n.to_le_bytes())
    }));
    // The business logic sees only durable events, and checkpoints its state now and then.
    let positions = handle.clone();
    b.add_after(
        &[journaled],
        Consumer::new("total", move |n: &u64, seq, end_of_batch| {
            total += *n;
            if end_of_batch {
                let next = positions.position_of(seq).unwrap() + 1;
                checkpoint
                    .store(next, &total.to_le_bytes())
                    .expect("checkpoint");
            }
        }),
    )?;
    let (mut producer, queue) = b.build()?;
    let durable = queue.tracker(journaled)?;
    let seq = producer.publish(|n| *n = 5)?;
    durable.wait_processed(seq, Duration::from_secs(10))?; // fdatasync returned: tell the client
    drop(producer);
    queue.shutdown()?;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
