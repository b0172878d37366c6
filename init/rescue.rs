//! The rescue shell: `/bin/sh` on the console's real tty, in its own session with that tty
//! as its controlling terminal (so job control and Ctrl-C work), respawned when it exits.

use crate::log::{Level, Log};
use core::ffi::CStr;
use syscall::fs::{self, OFlags};
use syscall::io;
use syscall::process::{self, ArgList, Fork, Pid};
use syscall::signal::{self, MaskHow, SigSet};
use syscall::Errno;

pub const SHELL: &CStr = c"/bin/sh";
/// Environment entries passed on to the shell, besides PATH.
pub const MAX_ENV: usize = 32;
const PATH: &CStr = c"PATH=/usr/sbin:/usr/bin:/sbin:/bin";

/// The device behind /dev/console, e.g. `/dev/ttyS0`, NUL-terminated in `buf`.
///
/// /dev/console itself cannot be a controlling terminal, so the shell opens the real tty:
/// the last name in /sys/class/tty/console/active is the one /dev/console writes to.
pub fn console_tty(buf: &mut [u8; 64]) -> &CStr {
    let mut active = [0u8; 128];
    let n = match fs::open(c"/sys/class/tty/console/active", OFlags::RDONLY | OFlags::CLOEXEC, 0) {
        Ok(fd) => fs::read(&fd, &mut active).unwrap_or(0),
        Err(_) => 0,
    };
    let text = core::str::from_utf8(active.get(..n).unwrap_or(&[])).unwrap_or("");
    match text.split_ascii_whitespace().last() {
        Some(name) if name.len() + 6 < buf.len() && !name.contains('/') => {
            let mut len = 0;
            for &b in b"/dev/".iter().chain(name.as_bytes()) {
                if let Some(slot) = buf.get_mut(len) {
                    *slot = b;
                    len += 1;
                }
            }
            if let Some(slot) = buf.get_mut(len) {
                *slot = 0;
            }
            CStr::from_bytes_with_nul(buf.get(..=len).unwrap_or(b"\0")).unwrap_or(c"/dev/console")
        }
        _ => c"/dev/console",
    }
}

/// The shell's environment: the kernel's (HOME, TERM and unknown `x=y` parameters), with
/// our PATH instead of any other.
pub fn environment<'a>(kernel_env: impl Iterator<Item = &'a CStr>) -> ArgList<'a, { MAX_ENV + 2 }> {
    let mut env = ArgList::new();
    let _ = env.push(PATH);
    for e in kernel_env {
        if !e.to_bytes().starts_with(b"PATH=") && env.push(e).is_err() {
            break;
        }
    }
    env
}

/// Forks the shell on `tty`; returns its pid.
pub fn spawn<const E: usize>(log: &Log, tty: &CStr, env: &ArgList<'_, E>) -> Result<Pid, Errno> {
    match process::fork()? {
        Fork::Parent(pid) => {
            log!(log, Level::Info, "starting rescue shell ", SHELL, " on ", tty, " (pid ", pid, ")");
            Ok(pid)
        }
        Fork::Child => exec_shell(log, tty, env),
    }
}

/// Makes `fd` this process's stdin, stdout and stderr (and closes it if it is another fd).
pub fn install_as_stdio(fd: syscall::OwnedFd) {
    for target in 0..3 {
        if fd.raw() != target {
            // The duplicate is stdin/out/err from now on: keep it open.
            if let Ok(dup) = io::dup3(&fd, target, false) {
                let _ = dup.into_raw();
            }
        }
    }
    if fd.raw() <= 2 {
        let _ = fd.into_raw();
    }
}

/// In the child: take the tty, reset the signal mask PID 1 blocks, exec the shell.
fn exec_shell<const E: usize>(log: &Log, tty: &CStr, env: &ArgList<'_, E>) -> ! {
    let _ = process::setsid();
    let fd = fs::open(tty, OFlags::RDWR, 0).or_else(|_| fs::open(c"/dev/console", OFlags::RDWR, 0));
    if let Ok(fd) = fd {
        let _ = io::set_controlling_tty(&fd, true);
        install_as_stdio(fd);
    }
    let _ = signal::sigprocmask(MaskHow::Set, &SigSet::EMPTY);
    let mut argv: ArgList<'_, 2> = ArgList::new();
    // A leading '-' makes it a login shell, which reads /etc/profile.
    let _ = argv.push(c"-sh");
    let err = process::execve(SHELL, &argv, env);
    log!(log, Level::Error, "exec ", SHELL, ": ", err);
    process::exit_group(127)
}
