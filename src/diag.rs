//! The library's own messages (a handler panic passed over, a pinning that failed): one place,
//! so that where they go is decided once. They go to stderr, prefixed `ringmq:`.

use std::fmt::Arguments;

/// Something the queue recovered from, by its policy (a skipped event, an unpinned thread).
#[cold]
pub(crate) fn warn(message: Arguments<'_>) {
    eprintln!("ringmq: {message}");
}

/// Something that failed and is also reported through a return value.
#[cold]
pub(crate) fn error(message: Arguments<'_>) {
    eprintln!("ringmq: {message}");
}
