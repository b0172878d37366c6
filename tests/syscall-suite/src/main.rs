//! The syscall suite: exercises every public wrapper of the `syscall` crate against a scratch
//! directory and checks the results exactly (values read back, errno of purpose-made
//! failures). Run as `syscall-suite SCRATCH_DIR` (under qemu-user for foreign arches, see
//! `cargo xtask syscall-suite`).
//!
//! Output: one line per check, `ok NAME` or `FAIL NAME: expected ..., got ...`, then exactly
//! `syscall-suite: N passed, M failed`; the exit status is 0 only if M == 0. Lines starting
//! with `#` are notes about how the environment shaped a check.
//!
//! Checks that change process-wide state (namespaces, ids, signal masks, limits) run in
//! forked children (`harness::section`), so the main process stays as it started.
#![no_std]
#![no_main]

#[macro_use]
mod harness;
#[macro_use]
mod util;
mod t_base;
mod t_cap;
mod t_fs;
mod t_io;
mod t_loopdev;
mod t_mem;
mod t_mm;
mod t_mount;
mod t_net;
mod t_oracle;
mod t_process;
mod t_signal;
mod t_system;
mod t_time;
mod t_watchdog;

use harness::T;
use syscall::entry::Args;
use syscall::process;

/// Called by the syscall crate's `_start`.
// `no_mangle` is an unsafe attribute: this symbol name is the contract with `_start`.
#[unsafe(no_mangle)]
fn program_main(args: Args) -> ! {
    if args.arg(1) == Some(t_process::EXEC_PROBE_ARG) {
        t_process::exec_probe(args);
    }
    let Some(scratch) = args.arg(1) else {
        say!("usage: syscall-suite SCRATCH_DIR");
        process::exit_group(2);
    };
    // The suite re-executes itself (process::execve_self) after the chdir below.
    let me = util::absolute(args.arg(0).unwrap_or(c""));
    // Every check works with paths relative to the scratch directory.
    if let Err(e) = syscall::mount::chdir(scratch) {
        say!("FAIL setup: chdir to the scratch directory: {:?}", harness::En(e));
        say!("syscall-suite: 0 passed, 1 failed");
        process::exit_group(1);
    }
    // Modes in the checks are exact: no umask interference.
    syscall::process::umask(0);

    let mut t = T::new();
    t_base::run(&mut t, &args);
    t_mem::run(&mut t);
    t_oracle::run(&mut t);
    t_fs::run(&mut t);
    t_mount::run(&mut t);
    t_loopdev::run(&mut t);
    t_process::run(&mut t, &args, me.as_cstr());
    t_cap::run(&mut t);
    t_signal::run(&mut t);
    t_time::run(&mut t);
    t_io::run(&mut t);
    t_net::run(&mut t);
    t_system::run(&mut t);
    t_mm::run(&mut t);
    t_watchdog::run(&mut t, t_process::under_qemu(&args));

    say!("syscall-suite: {} passed, {} failed", t.passed(), t.failed());
    process::exit_group(if t.failed() == 0 { 0 } else { 1 });
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(l) => say!("FAIL panic: {} at {}:{}", info.message(), l.file(), l.line()),
        None => say!("FAIL panic: {}", info.message()),
    }
    harness::panic_report();
    process::exit_group(101);
}
