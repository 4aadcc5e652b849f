//! The library's own messages (a handler panic passed over, a pinning that failed, an
//! `on_shutdown` panic): one place, so that where they go is decided once. They go through the
//! [`log`](https://docs.rs/log) facade with the target `ringmq`, so the service that links ringmq
//! routes them with whatever logger it installed (env_logger, a tracing subscriber through
//! tracing-log, its own); with no logger installed they go nowhere. ringmq prints nothing itself.
//!
//! `log` rather than `tracing`: these are a handful of rare, flat events (no spans, no fields a
//! subscriber would filter on beyond the level and the target); `log` is the facade every logger
//! reads, tracing's subscribers included, and it costs a dependency with no dependencies.

use std::fmt::Arguments;

/// The target of every record ringmq logs: filter on it (`RUST_LOG=ringmq=warn`).
pub(crate) const TARGET: &str = "ringmq";

/// Something the queue recovered from, by its policy (a skipped event, an unpinned thread).
#[cold]
pub(crate) fn warn(message: Arguments<'_>) {
    log::warn!(target: TARGET, "{message}");
}

/// Something that failed and is also reported through a return value.
#[cold]
pub(crate) fn error(message: Arguments<'_>) {
    log::error!(target: TARGET, "{message}");
}
