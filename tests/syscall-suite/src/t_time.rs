//! Time: clock_gettime on every clock, sleep, Timespec arithmetic.

use crate::harness::T;
use syscall::time::{self, Clock, Timespec};

fn valid(ts: Timespec) -> bool {
    ts.sec >= 0 && (0..1_000_000_000).contains(&ts.nsec)
}

pub fn run(t: &mut T) {
    let a = time::clock_gettime(Clock::Monotonic);
    let mut spin = 0u64;
    for i in 0..100_000u64 {
        spin = core::hint::black_box(spin.wrapping_add(i));
    }
    let b = time::clock_gettime(Clock::Monotonic);
    t.check("time::clock_gettime_monotonic", valid(a) && valid(b) && b > a && a != Timespec::default(),
            format_args!("{a:?} then {b:?}"));
    let real = time::clock_gettime(Clock::Realtime);
    // 2020-01-01: a clock before that is not set (or the 32-bit time call is broken).
    t.check("time::clock_gettime_realtime", valid(real) && real.sec > 1_577_836_800,
            format_args!("got {real:?}"));
    // Boottime counts suspended time too: never behind monotonic read before it.
    let mono = time::clock_gettime(Clock::Monotonic);
    let boot = time::clock_gettime(Clock::Boottime);
    t.check("time::clock_gettime_boottime", valid(boot) && boot >= mono,
            format_args!("boottime {boot:?}, monotonic read before {mono:?}"));
    let cpu = time::clock_gettime(Clock::ProcessCputime);
    t.check("time::clock_gettime_cputime", valid(cpu) && cpu != Timespec::default() && cpu.sec < mono.sec + 1,
            format_args!("got {cpu:?}"));

    let before = time::clock_gettime(Clock::Monotonic);
    let r = time::sleep(Timespec::from_millis(50));
    let after = time::clock_gettime(Clock::Monotonic);
    let slept = after.millis_since(before);
    t.check("time::sleep_50ms", r.is_ok() && (50..5000).contains(&slept),
            format_args!("sleep returned {:?}, measured {slept} ms", crate::harness::Res(&r)));
    let before = time::clock_gettime(Clock::Monotonic);
    let r = time::sleep(Timespec::default());
    let slept = time::clock_gettime(Clock::Monotonic).millis_since(before);
    t.check("time::sleep_zero", r.is_ok() && slept < 1000, format_args!("measured {slept} ms"));
    // A duration given in nanoseconds only.
    let before = time::clock_gettime(Clock::Monotonic);
    let r = time::sleep(Timespec { sec: 0, nsec: 120_000_000 });
    let slept = time::clock_gettime(Clock::Monotonic).millis_since(before);
    t.check("time::sleep_120ms", r.is_ok() && (120..5000).contains(&slept), format_args!("measured {slept} ms"));

    t.eq("time::from_millis", Timespec::from_millis(1500), Timespec { sec: 1, nsec: 500_000_000 });
    t.eq("time::as_millis", Timespec { sec: 2, nsec: 7_999_999 }.as_millis(), 2007);
    t.eq("time::as_millis_negative", Timespec { sec: -1, nsec: 0 }.as_millis(), 0);
    t.eq("time::millis_since", Timespec::from_millis(5000).millis_since(Timespec::from_millis(1200)), 3800);
    t.eq("time::millis_since_later", Timespec::from_millis(1).millis_since(Timespec::from_millis(2)), 0);
    t.check("time::timespec_order", Timespec { sec: 1, nsec: 0 } > Timespec { sec: 0, nsec: 999_999_999 },
            format_args!("ordering by (sec, nsec) broken"));
}
