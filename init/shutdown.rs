//! Orderly shutdown, as busybox init does it: SIGTERM to everyone, a grace period, SIGKILL,
//! sync, unmount, reboot(2). Bounded in time: a process that ignores SIGTERM costs at most
//! the grace period.

use crate::log::{Level, Log};
use crate::mounts;
use syscall::fs::{self, OFlags};
use syscall::io::{self, PollFd, POLLIN};
use syscall::mount::{self, MountFlags, UnmountFlags};
use syscall::process::{self, WaitFlags};
use syscall::signal::{self, Signal};
use syscall::system::{self, RebootCmd};
use syscall::time::{self, Clock, Timespec};
use syscall::{Errno, OwnedFd};

/// How long processes get between SIGTERM and SIGKILL.
pub const GRACE_MS: u64 = 5000;
/// How long to wait for processes to disappear after SIGKILL.
pub const KILL_WAIT_MS: u64 = 2000;
/// /proc/mounts is read into this much memory; mounts past it are left to the kernel.
pub const MOUNTS_BYTES: usize = 8192;

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Action {
    PowerOff,
    Reboot,
    Halt,
}

impl Action {
    /// busybox's mapping: TERM/INT reboot, USR1 halts, USR2/PWR power off.
    pub fn for_signal(s: Signal) -> Option<Action> {
        match s {
            Signal::TERM | Signal::INT => Some(Action::Reboot),
            Signal::USR1 => Some(Action::Halt),
            Signal::USR2 | Signal::PWR => Some(Action::PowerOff),
            _ => None,
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            Action::PowerOff => "powering off",
            Action::Reboot => "rebooting",
            Action::Halt => "halting",
        }
    }
}

/// Runs the whole sequence and calls reboot(2); never returns.
/// `pet` keeps an armed watchdog alive while it waits (a reboot keeps it armed).
pub fn run(log: &Log, action: Action, why: &str, sigfd: Option<&OwnedFd>, pet: &mut dyn FnMut()) -> ! {
    log!(log, Level::Info, why, ": ", action.verb());
    for (sig, wait_ms) in [(Signal::TERM, GRACE_MS), (Signal::KILL, KILL_WAIT_MS)] {
        log!(log, Level::Info, "sending ", sig, " to all processes");
        match process::kill(-1, sig) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => log!(log, Level::Error, "kill -1 ", sig, ": ", e),
        }
        if sig == Signal::TERM {
            // Stopped processes must run to act on SIGTERM.
            let _ = process::kill(-1, Signal::CONT);
        }
        if wait_for_no_children(sigfd, wait_ms, pet) {
            break;
        }
    }
    pet();
    log!(log, Level::Info, "syncing filesystems");
    fs::sync();
    log!(log, Level::Info, "unmounting filesystems");
    unmount_all(log);
    fs::sync();
    pet();
    let cmd = match action {
        Action::PowerOff => RebootCmd::PowerOff,
        Action::Reboot => RebootCmd::Restart,
        Action::Halt => RebootCmd::Halt,
    };
    let err = system::reboot(cmd);
    log!(log, Level::Error, "reboot(2): ", err, "; stopping here");
    loop {
        let _ = time::sleep(Timespec { sec: 3600, nsec: 0 });
    }
}

/// Reaps until no child is left (true) or `ms` have passed (false).
fn wait_for_no_children(sigfd: Option<&OwnedFd>, ms: u64, pet: &mut dyn FnMut()) -> bool {
    let start = time::clock_gettime(Clock::Monotonic);
    loop {
        loop {
            match process::wait4(-1, WaitFlags::NOHANG) {
                Ok(Some(_)) => continue,
                Err(Errno::ECHILD) => return true,
                Ok(None) | Err(_) => break,
            }
        }
        pet();
        let spent = time::clock_gettime(Clock::Monotonic).millis_since(start);
        if spent >= ms {
            return false;
        }
        let step = Timespec::from_millis((ms - spent).min(100));
        match sigfd {
            Some(fd) => {
                let mut fds = [PollFd::new(fd, POLLIN)];
                let _ = io::ppoll(&mut fds, Some(&step), None);
                while let Ok(Some(_)) = signal::read_signalfd(fd) {}
            }
            None => {
                let _ = time::sleep(step);
            }
        }
    }
}

/// Unmounts everything but the root, newest first; busy ones lazily. A root that is a real
/// filesystem is remounted read-only.
fn unmount_all(log: &Log) {
    let mut table = [0u8; MOUNTS_BYTES];
    let n = match fs::open(c"/proc/mounts", OFlags::RDONLY | OFlags::CLOEXEC, 0) {
        Ok(fd) => fs::read_full(&fd, &mut table).unwrap_or(0),
        Err(e) => {
            log!(log, Level::Warn, "open /proc/mounts: ", e, "; nothing unmounted");
            return;
        }
    };
    // A table cut in the middle of a line loses that line only.
    let text = match core::str::from_utf8(table.get(..n).unwrap_or(&[])) {
        Ok(t) => t,
        Err(e) => core::str::from_utf8(table.get(..e.valid_up_to()).unwrap_or(&[])).unwrap_or(""),
    };
    let mut path = [0u8; 256];
    for entry in mounts::newest_first(text) {
        let Some(target) = mounts::unescape(entry.target, &mut path) else { continue };
        if target.to_bytes() == b"/" {
            if !matches!(entry.fstype, "rootfs" | "tmpfs" | "ramfs") {
                if let Err(e) = mount::mount(None, c"/", None, MountFlags::REMOUNT | MountFlags::RDONLY, None) {
                    log!(log, Level::Warn, "remount / read-only: ", e);
                }
            }
            continue;
        }
        if mount::umount2(target, UnmountFlags::EMPTY).is_err() {
            if let Err(e) = mount::umount2(target, UnmountFlags::DETACH) {
                log!(log, Level::Warn, "umount ", target, ": ", e);
            }
        }
    }
}
