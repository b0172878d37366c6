//! What PID 1 does when it panics. It must not return to the kernel, which would panic too.
//!
//! Policy (docs/architecture.md, "Panic policy"):
//! 1. Write an epitaph (`autoinit: PANIC: <message> at <file>:<line>:<col>`) to the console
//!    and /dev/kmsg, opened afresh: nothing of the panicking state is trusted.
//! 2. Sync, then re-execute this binary as `/init --after-panic`: a fresh PID 1 that skips
//!    all boot work and runs the rescue shell. Processes keep running and are adopted.
//! 3. If that fails, or the re-executed instance panics too, reboot after 10 s, and if even
//!    that fails, sleep forever.
//!
//! Run as an ordinary process, a panic just exits with status 101.

use crate::log::{Level, Line, Log};
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use syscall::fs;
use syscall::process::{self, ArgList, Pid};
use syscall::signal::Signal;
use syscall::system::{self, RebootCmd};
use syscall::time::{self, Timespec};

/// Set in the instance started by the panic policy: a second panic must not re-exec again.
static AFTER_PANIC: AtomicBool = AtomicBool::new(false);
/// The rescue shell, killed before re-exec (the new instance starts its own).
static RESCUE_SHELL: AtomicI32 = AtomicI32::new(0);

pub const AFTER_PANIC_ARG: &core::ffi::CStr = c"--after-panic";
pub const REBOOT_DELAY_SECS: i64 = 10;

pub fn set_after_panic() {
    AFTER_PANIC.store(true, Ordering::Relaxed);
}

pub fn set_rescue_shell(pid: Option<Pid>) {
    RESCUE_SHELL.store(pid.map_or(0, |p| p.raw()), Ordering::Relaxed);
}

/// One error line through a fresh [`Log`] (the panicking one is not trusted), so that the
/// console shows it exactly once whatever the kernel's console_loglevel.
fn say(line: &Line) {
    let mut log = Log::console_only();
    let _ = log.open_kmsg();
    log.emit(Level::Error, line);
}

/// The panic handler's body.
pub fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut epitaph = Line::new();
    let _ = write!(epitaph, "PANIC: {}", info.message());
    if let Some(loc) = info.location() {
        let _ = write!(epitaph, " at {}:{}:{}", loc.file(), loc.line(), loc.column());
    }
    say(&epitaph);
    if process::getpid() != Pid(1) {
        process::exit_group(101);
    }
    fs::sync();
    if !AFTER_PANIC.swap(true, Ordering::Relaxed) {
        let shell = RESCUE_SHELL.load(Ordering::Relaxed);
        if shell > 1 {
            let _ = process::kill(shell, Signal::KILL);
        }
        say(&crate::line!("panic policy: re-executing /init in rescue mode"));
        let mut argv: ArgList<'_, 3> = ArgList::new();
        let _ = argv.push(c"/init");
        let _ = argv.push(AFTER_PANIC_ARG);
        let mut env: ArgList<'_, 3> = ArgList::new();
        let _ = env.push(c"HOME=/");
        let _ = env.push(c"TERM=linux");
        // /proc/self/exe is this binary wherever it lives; /init is where the kernel found it.
        let e1 = process::execve(c"/proc/self/exe", &argv, &env);
        let e2 = process::execve(c"/init", &argv, &env);
        say(&crate::line!("panic policy: re-exec failed: ", e1, ", ", e2));
    }
    say(&crate::line!("panic policy: rebooting in ", REBOOT_DELAY_SECS as u64, " s"));
    let _ = time::sleep(Timespec { sec: REBOOT_DELAY_SECS, nsec: 0 });
    let err = system::reboot(RebootCmd::Restart);
    say(&crate::line!("panic policy: reboot(2): ", err, "; stopping here"));
    loop {
        let _ = time::sleep(Timespec { sec: 3600, nsec: 0 });
    }
}
