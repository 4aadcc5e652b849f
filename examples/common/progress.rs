//! One updating progress line for the examples: events done, rate, and a note.

use std::io::Write;
use std::time::{Duration, Instant};

/// Prints `label: done/total events, rate` on one line, at most every 200 ms, overwriting itself.
pub struct Progress {
    label: &'static str,
    total: u64,
    started: Instant,
    last: Instant,
}

impl Progress {
    pub fn new(label: &'static str, total: u64) -> Self {
        let now = Instant::now();
        Self {
            label,
            total,
            started: now,
            last: now,
        }
    }

    /// Updates the line if 200 ms passed since the last update.
    pub fn update(&mut self, done: u64, note: &str) {
        if self.last.elapsed() >= Duration::from_millis(200) {
            self.last = Instant::now();
            self.print(done, note);
        }
    }

    /// Prints the final state and ends the line.
    pub fn finish(&mut self, done: u64, note: &str) {
        self.print(done, note);
        println!();
    }

    fn print(&self, done: u64, note: &str) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        print!(
            "\r{}: {done}/{} events, {:.2} M/s {note}\x1b[K",
            self.label,
            self.total,
            done as f64 / secs / 1e6
        );
        let _ = std::io::stdout().flush();
    }
}
