//! Loom models of ringmq's lock-free protocols live in `tests/`; build with
//! `RUSTFLAGS="--cfg loom"` (see README.md, "How ringmq is verified").
