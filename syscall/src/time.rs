//! Time: clock_gettime, clock_nanosleep. 32-bit arches use the *_time64 calls so that time
//! does not overflow in 2038.
//!
//! # Safety
//! Calls pass pointers to local `Timespec` values.
#![allow(unsafe_code)]

use crate::arch::*;
use crate::errno::{check_unit, retry, Result};
use crate::nr;
use linux_raw_sys::general as g;

/// `struct __kernel_timespec`: 64-bit seconds on every arch.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Debug, Default)]
#[repr(C)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: i64,
}

impl Timespec {
    pub const fn from_millis(ms: u64) -> Timespec {
        Timespec { sec: (ms / 1000) as i64, nsec: ((ms % 1000) * 1_000_000) as i64 }
    }

    /// Whole milliseconds (saturating at 0 for negative values).
    pub const fn as_millis(self) -> u64 {
        if self.sec < 0 { 0 } else { self.sec as u64 * 1000 + self.nsec as u64 / 1_000_000 }
    }

    /// `self - earlier` in milliseconds, 0 if earlier is later.
    pub const fn millis_since(self, earlier: Timespec) -> u64 {
        let a = self.as_millis();
        let b = earlier.as_millis();
        if a > b { a - b } else { 0 }
    }
}

/// Clock ids.
#[derive(Copy, Clone, Debug)]
pub enum Clock {
    Realtime = g::CLOCK_REALTIME as isize,
    Monotonic = g::CLOCK_MONOTONIC as isize,
    /// Monotonic, counting time suspended too.
    Boottime = g::CLOCK_BOOTTIME as isize,
    ProcessCputime = g::CLOCK_PROCESS_CPUTIME_ID as isize,
}

#[cfg(target_pointer_width = "64")]
use crate::nr::{__NR_clock_gettime as GETTIME, __NR_clock_nanosleep as NANOSLEEP};
#[cfg(target_pointer_width = "32")]
use crate::nr::{__NR_clock_gettime64 as GETTIME, __NR_clock_nanosleep_time64 as NANOSLEEP};

/// clock_gettime(clock) — a direct syscall: there is no vDSO lookup without an auxv parser,
/// and autoinit reads the clock rarely.
pub fn clock_gettime(clock: Clock) -> Timespec {
    let mut ts = Timespec::default();
    // SAFETY: see module docs. Cannot fail for the clocks of `Clock`.
    let _ = unsafe { syscall2(GETTIME, clock as usize, &mut ts as *mut Timespec as usize) };
    ts
}

/// clock_nanosleep(clock, 0, duration, NULL), restarted after signals until it has slept.
pub fn sleep(duration: Timespec) -> Result<()> {
    let now = clock_gettime(Clock::Monotonic);
    let mut until = Timespec { sec: now.sec + duration.sec, nsec: now.nsec + duration.nsec };
    if until.nsec >= 1_000_000_000 {
        until.sec += 1;
        until.nsec -= 1_000_000_000;
    }
    // SAFETY: see module docs; TIMER_ABSTIME makes a restart after EINTR sleep the rest.
    retry(|| check_unit(unsafe {
        syscall4(NANOSLEEP, g::CLOCK_MONOTONIC as usize, g::TIMER_ABSTIME as usize,
                 &until as *const Timespec as usize, 0)
    }))
}

/// Keeps `nr` used on 64-bit arches where only the aliases above name it.
#[allow(dead_code)]
const _NR: u32 = nr::__NR_getpid;
