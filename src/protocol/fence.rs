//! Asymmetric fences: a free *light* side for a hot path and an expensive *heavy* side for a rare
//! one, which together order memory like a SeqCst fence on each side.
//!
//! The single producer must see a concurrent `shutdown()` without paying for a fence on every
//! publish (its claim path has no atomic read-modify-write, by design). The pattern is a Dekker
//! handshake: the producer announces its claim and then loads the lifecycle state; the closer
//! stores the state and then loads the announcement. Each side needs its store ordered before its
//! load. On Linux the heavy side is the `membarrier` system call, which makes every thread of the
//! process execute a full barrier; then the light side only has to keep the *compiler* from
//! reordering. Where
//! `membarrier` is not available (another OS, a kernel without it, miri), both sides use a real
//! SeqCst fence. Under loom both sides are SeqCst fences, which is what `membarrier` stands for in
//! the memory model, so the models check the protocol itself.

use crate::sync::{fence, Ordering};

/// The light side: orders this thread's earlier stores before its later loads, given that the
/// other side uses [`heavy`] and [`needs_real_fence`] is false (a caller for which it is true
/// runs a real SeqCst fence instead). Free: it only keeps the compiler from reordering. Under
/// loom it is a SeqCst fence, which is what `membarrier` gives it in the memory model.
#[inline]
pub(crate) fn light() {
    #[cfg(loom)]
    fence(Ordering::SeqCst);
    #[cfg(not(loom))]
    std::sync::atomic::compiler_fence(Ordering::SeqCst);
}

/// Whether [`light`] is not enough and the light side must be a real fence: `membarrier` is
/// unavailable. Never under loom, whose [`light`] is a real fence (so the models check the
/// protocol of the `membarrier` case, the one most machines run).
pub(crate) fn needs_real_fence() -> bool {
    !cfg!(loom) && mode() == Mode::Fence
}

/// The heavy side: every thread that used [`light`] is ordered with this call's earlier stores
/// and later loads. Microseconds (expedited membarrier) to milliseconds (global); call it rarely.
pub(crate) fn heavy() {
    match mode() {
        Mode::Fence => fence(Ordering::SeqCst),
        #[cfg(all(target_os = "linux", not(loom), not(miri)))]
        m => {
            // Our own earlier stores first, then everyone else's barrier.
            fence(Ordering::SeqCst);
            if !sys::barrier(m) {
                // Cannot happen once `mode()` found the command working; stay conservative.
                fence(Ordering::SeqCst);
            }
        }
        #[cfg(not(all(target_os = "linux", not(loom), not(miri))))]
        _ => fence(Ordering::SeqCst),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Plain SeqCst fences on both sides.
    Fence,
    /// `MEMBARRIER_CMD_PRIVATE_EXPEDITED` (registered).
    #[allow(dead_code)]
    Expedited,
    /// `MEMBARRIER_CMD_GLOBAL`.
    #[allow(dead_code)]
    Global,
}

fn mode() -> Mode {
    #[cfg(all(target_os = "linux", not(loom), not(miri)))]
    {
        static MODE: std::sync::OnceLock<Mode> = std::sync::OnceLock::new();
        *MODE.get_or_init(sys::detect)
    }
    #[cfg(not(all(target_os = "linux", not(loom), not(miri))))]
    Mode::Fence
}

#[cfg(all(target_os = "linux", not(loom), not(miri)))]
mod sys {
    use super::Mode;

    const QUERY: libc::c_int = 0;
    const GLOBAL: libc::c_int = 1;
    const PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
    const REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

    fn membarrier(cmd: libc::c_int) -> libc::c_long {
        // Not under loom or miri (real fences there); `heavy_side_works_on_this_machine` and
        // every single-producer shutdown test call it.
        // SAFETY: membarrier(2) takes a command and two integer arguments, reads and writes no
        // memory of ours, and reports an unknown or unsupported command as an error return.
        unsafe {
            libc::syscall(
                libc::SYS_membarrier,
                cmd,
                0 as libc::c_uint,
                0 as libc::c_int,
            )
        }
    }

    pub(super) fn detect() -> Mode {
        let supported = membarrier(QUERY);
        if supported < 0 {
            return Mode::Fence;
        }
        let supported = supported as libc::c_int;
        if supported & PRIVATE_EXPEDITED != 0 && membarrier(REGISTER_PRIVATE_EXPEDITED) == 0 {
            return Mode::Expedited;
        }
        if supported & GLOBAL != 0 {
            return Mode::Global;
        }
        Mode::Fence
    }

    pub(super) fn barrier(mode: Mode) -> bool {
        let cmd = match mode {
            Mode::Expedited => PRIVATE_EXPEDITED,
            Mode::Global => GLOBAL,
            Mode::Fence => return true,
        };
        membarrier(cmd) == 0
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn heavy_side_works_on_this_machine() {
        // Whatever the mode, the heavy side must not fail or hang; print which one is in use.
        super::heavy();
        println!("asymmetric fence mode: {:?}", super::mode());
    }
}
