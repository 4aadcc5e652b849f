//! The library's messages go through the `log` facade, target `ringmq`, at the level their
//! meaning says: a panic passed over by policy is a warning, an `on_shutdown` panic an error.
//! One test in this binary: a logger is installed once per process.

mod common;

use std::sync::{Mutex, OnceLock};

use common::*;
use ringmq::{Blocking, Builder, Consumer, EventHandler, PanicPolicy, ShutdownError};

/// Every record logged in this process: level, target, message.
static RECORDS: OnceLock<Mutex<Vec<(log::Level, String, String)>>> = OnceLock::new();

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        RECORDS.get_or_init(Default::default).lock().unwrap().push((
            record.level(),
            record.target().to_string(),
            record.args().to_string(),
        ));
    }
    fn flush(&self) {}
}

fn take_records() -> Vec<(log::Level, String, String)> {
    std::mem::take(&mut RECORDS.get_or_init(Default::default).lock().unwrap())
}

struct FailsToFlush;

impl EventHandler<u64> for FailsToFlush {
    fn on_event(&mut self, _: &u64, _: i64, _: bool) {}
    fn on_shutdown(&mut self) {
        panic!("could not flush");
    }
}

#[test]
fn messages_go_through_the_log_facade_with_their_level() {
    log::set_boxed_logger(Box::new(Capture)).unwrap();
    log::set_max_level(log::LevelFilter::Trace);
    with_timeout(60, || {
        // A panic passed over under SkipEvent: one warning naming the consumer and the event.
        let mut b = Builder::single_producer(8, || 0u64, Blocking::new()).unwrap();
        b.add(
            Consumer::new("picky", |v: &u64, _, _| assert!(*v != 3, "three"))
                .panic_policy(PanicPolicy::SkipEvent),
        );
        let (mut p, q) = b.build().unwrap();
        for v in 0..5 {
            p.publish(|e| *e = v).unwrap();
        }
        drop(p);
        assert_eq!(q.shutdown().unwrap().consumers[0].skipped, 1);
        let records = take_records();
        assert_eq!(records.len(), 1, "{records:?}");
        let (level, target, message) = &records[0];
        assert_eq!((*level, target.as_str()), (log::Level::Warn, "ringmq"));
        assert!(
            message.contains("`picky`")
                && message.contains("sequence 3")
                && message.contains("three"),
            "{message}"
        );

        // A panic in on_shutdown: an error (and the shutdown's own error, as before).
        let mut b = Builder::multi_producer(8, || 0u64, Blocking::new()).unwrap();
        b.add(Consumer::with_handler("flusher", || FailsToFlush));
        let (p, q) = b.build().unwrap();
        drop(p);
        assert!(matches!(
            q.shutdown(),
            Err(ShutdownError::ConsumerPanicked { .. })
        ));
        let records = take_records();
        assert_eq!(records.len(), 1, "{records:?}");
        let (level, target, message) = &records[0];
        assert_eq!((*level, target.as_str()), (log::Level::Error, "ringmq"));
        assert!(message.contains("`flusher`") && message.contains("could not flush"));

        // A queue with nothing to report logs nothing.
        let mut b = Builder::single_producer(8, || 0u64, Blocking::new()).unwrap();
        b.add(Consumer::new("quiet", |_: &u64, _, _| {}));
        let (mut p, q) = b.build().unwrap();
        p.publish(|e| *e = 1).unwrap();
        drop(p);
        q.shutdown().unwrap();
        assert_eq!(take_records(), []);
    });
}
