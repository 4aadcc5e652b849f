//! Who a process is, and whether it is still alive: a pid plus the process's start time (from
//! `/proc/<pid>/stat`), so that a pid the kernel reused for another process reads as dead.

use std::time::Duration;

use crate::protocol::table::Owner;

/// This process.
pub(crate) fn me() -> Owner {
    let pid = std::process::id();
    Owner {
        pid,
        start: start_time(pid).unwrap_or(0),
    }
}

/// This process, looked up once.
pub(crate) fn me_cached() -> Owner {
    static ME: std::sync::OnceLock<Owner> = std::sync::OnceLock::new();
    *ME.get_or_init(me)
}

/// Under miri (no `/proc` in its isolation): every process started at tick 1, so this one
/// and every participant of its in-process tests is alive.
#[cfg(miri)]
fn start_time(_pid: u32) -> Option<u64> {
    Some(1)
}

/// The start time of `pid` in clock ticks since boot (field 22 of `/proc/<pid>/stat`), or
/// `None` if there is no such process or it is a zombie (killed, not yet reaped: dead).
#[cfg(not(miri))]
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces or parentheses: the
    // fields after it start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // Field 3 was `state`; field 22 is 19 further.
    fields.nth(18)?.parse().ok()
}

/// Whether `owner` is alive: its pid runs and started when it did.
pub(crate) fn alive(owner: Owner) -> bool {
    if owner.pid == 0 {
        return false;
    }
    start_time(owner.pid) == Some(owner.start)
}

/// Nanoseconds of `CLOCK_MONOTONIC`: one clock for every process of the machine.
pub(crate) fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC is always supported on Linux.
    // Not memory-sensitive beyond that (tests/ipc.rs reads heartbeats under miri's isolation
    // only through `Segment::status`, which is not run under miri).
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// `d` in nanoseconds, saturating.
pub(crate) fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "reads /proc")]
    fn this_process_is_alive_and_a_changed_start_time_is_not() {
        let me = me();
        assert!(alive(me));
        assert!(!alive(Owner {
            pid: me.pid,
            start: me.start + 1
        }));
        assert!(!alive(Owner { pid: 0, start: 0 }));
    }
}
