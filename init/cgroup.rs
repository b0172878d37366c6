//! cgroup v2: one group per service, `/sys/fs/cgroup/autoinit/<name>`, so that stopping a
//! service reaches every process it made, and MemoryMax/TasksMax/CPUWeight apply.
//!
//! PID 1 stays in the root group (exempt from the "no internal processes" rule); the
//! `autoinit` group has no processes of its own, only children with controllers enabled.

use crate::boot::Path;
use crate::log;
use crate::log::{Level, Log};
use core::ffi::CStr;
use syscall::fs::{self, AtFlags, OFlags};
use syscall::process::{self, Pid};
use syscall::signal::Signal;
use syscall::{BorrowedFd, Errno};

pub const ROOT: &str = "/sys/fs/cgroup";
pub const BASE: &str = "/sys/fs/cgroup/autoinit";
/// Controllers enabled for services when the kernel has them.
const CONTROLLERS: &[&[u8]] = &[b"+memory", b"+pids", b"+cpu"];

/// The directory of `name`'s group, or of one of its files (`file` = `""` for the directory).
pub fn path(name: &str, file: &str) -> Result<Path, Errno> {
    let mut p = Path::of(&[BASE.as_bytes(), b"/", name.as_bytes()]).ok_or(Errno::ENAMETOOLONG)?;
    if !file.is_empty() {
        p.push(b"/").ok_or(Errno::ENAMETOOLONG)?;
        p.push(file.as_bytes()).ok_or(Errno::ENAMETOOLONG)?;
    }
    Ok(p)
}

/// Whether cgroup2 is mounted at /sys/fs/cgroup (stage 2 mounts it when the kernel has it).
pub fn available() -> bool {
    fs::statx(BorrowedFd::CWD, c"/sys/fs/cgroup/cgroup.controllers", AtFlags::EMPTY, fs::StatxMask::TYPE).is_ok()
}

/// Creates `/sys/fs/cgroup/autoinit` and enables the controllers for its children.
/// Returns false (after saying why) when services must run without cgroups.
pub fn setup(log: &Log) -> bool {
    if !available() {
        log!(log, Level::Warn, "no cgroup2 at ", ROOT, ": services run without cgroups (no MemoryMax/TasksMax/CPUWeight; stop signals the main process only)");
        return false;
    }
    match fs::mkdirat(BorrowedFd::CWD, c"/sys/fs/cgroup/autoinit", 0o755) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => {
            log!(log, Level::Error, "mkdir ", BASE, ": ", e, "; services run without cgroups");
            return false;
        }
    }
    // One controller at a time: a kernel without one of them still gets the others.
    for c in CONTROLLERS {
        for dir in [c"/sys/fs/cgroup/cgroup.subtree_control", c"/sys/fs/cgroup/autoinit/cgroup.subtree_control"] {
            if let Err(e) = write_file(dir, c) {
                log!(log, Level::Debug, "enable ", *c, " in ", dir, ": ", e);
            }
        }
    }
    true
}

/// Writes `data` to an existing cgroup file.
pub fn write_file(path: &CStr, data: &[u8]) -> Result<(), Errno> {
    let fd = fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, 0)?;
    let n = fs::write(&fd, data)?;
    if n == data.len() { Ok(()) } else { Err(Errno::EIO) }
}

/// Creates the group of `name` (kept if it exists).
pub fn create(name: &str) -> Result<(), Errno> {
    let dir = path(name, "")?;
    match fs::mkdirat(BorrowedFd::CWD, dir.c(), 0o755) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The directory of `name`'s group, for clone3's CLONE_INTO_CGROUP.
pub fn open_dir(name: &str) -> Result<syscall::OwnedFd, Errno> {
    fs::open(path(name, "")?.c(), OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, 0)
}

/// Moves the calling process into `name`'s group.
pub fn join(name: &str) -> Result<(), Errno> {
    write_file(path(name, "cgroup.procs")?.c(), b"0")
}

/// Removes the (empty) group of `name`; EBUSY while processes remain.
pub fn remove(name: &str) -> Result<(), Errno> {
    let dir = path(name, "")?;
    match fs::unlinkat(BorrowedFd::CWD, dir.c(), AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Whether any process is left in `name`'s group (from `cgroup.events`). A group that does
/// not exist is empty.
pub fn populated(name: &str) -> bool {
    let Ok(p) = path(name, "cgroup.events") else { return false };
    let Ok(fd) = fs::open(p.c(), OFlags::RDONLY | OFlags::CLOEXEC, 0) else { return false };
    let mut buf = [0u8; 128];
    let n = fs::read(&fd, &mut buf).unwrap_or(0);
    let text = buf.get(..n).unwrap_or(&[]);
    // "populated 1\nfrozen 0\n"
    text.split(|&b| b == b'\n').any(|l| l == b"populated 1")
}

/// Sends `sig` to every process of `name`'s group; returns how many were signalled.
/// SIGKILL uses `cgroup.kill` (Linux 5.14) when the kernel has it, which also catches
/// processes forked while we read the list.
pub fn signal_all(name: &str, sig: Signal) -> u32 {
    if sig == Signal::KILL {
        if let Ok(p) = path(name, "cgroup.kill") {
            if write_file(p.c(), b"1").is_ok() {
                return 1;
            }
        }
    }
    let Ok(p) = path(name, "cgroup.procs") else { return 0 };
    let Ok(fd) = fs::open(p.c(), OFlags::RDONLY | OFlags::CLOEXEC, 0) else { return 0 };
    let mut sent = 0u32;
    let mut buf = [0u8; 512];
    // A pid cut across two reads is carried over in `partial`.
    let mut partial: u64 = 0;
    let mut in_number = false;
    loop {
        let n = match fs::read(&fd, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in buf.get(..n).unwrap_or(&[]) {
            if b.is_ascii_digit() {
                partial = partial.saturating_mul(10).saturating_add(u64::from(b - b'0'));
                in_number = true;
            } else if in_number {
                if signal_pid(partial, sig) {
                    sent = sent.saturating_add(1);
                }
                partial = 0;
                in_number = false;
            }
        }
    }
    if in_number && signal_pid(partial, sig) {
        sent = sent.saturating_add(1);
    }
    sent
}

fn signal_pid(pid: u64, sig: Signal) -> bool {
    // Never PID 1 (ourselves), never a pid that does not fit.
    match i32::try_from(pid) {
        Ok(p) if p > 1 => {
            let ok = process::kill(p, sig).is_ok();
            if ok && sig != Signal::KILL && sig != Signal::CONT {
                // A stopped process must run to act on the signal.
                let _ = process::kill(p, Signal::CONT);
            }
            ok
        }
        _ => false,
    }
}

/// The service whose group holds `pid`, from `/proc/PID/cgroup` (`0::/autoinit/NAME`),
/// written into `out`.
pub fn service_of<'o>(pid: Pid, out: &'o mut [u8; 64]) -> Option<&'o str> {
    let p = Path::of(&[b"/proc/"]).and_then(|mut p| {
        let mut digits = [0u8; 12];
        let d = crate::cgroup::decimal(pid.raw().max(0) as u64, &mut digits);
        p.push(d)?;
        p.push(b"/cgroup")?;
        Some(p)
    })?;
    let fd = fs::open(p.c(), OFlags::RDONLY | OFlags::CLOEXEC, 0).ok()?;
    let mut buf = [0u8; 256];
    let n = fs::read(&fd, &mut buf).ok()?;
    let text = buf.get(..n)?;
    let line = text.split(|&b| b == b'\n').find(|l| l.starts_with(b"0::"))?;
    let rest = line.strip_prefix(b"0::/autoinit/")?;
    let name = rest.split(|&b| b == b'/').next()?;
    let len = name.len();
    if len == 0 || len > out.len() {
        return None;
    }
    out.get_mut(..len)?.copy_from_slice(name);
    core::str::from_utf8(out.get(..len)?).ok()
}

/// `n` in decimal, in `buf`.
pub fn decimal(mut n: u64, buf: &mut [u8; 12]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(d) = buf.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    buf.get(i..).unwrap_or(&[])
}

/// A number or "max" for memory.max / pids.max, written into `buf`.
pub fn limit_text(value: Option<u64>, buf: &mut [u8; 24]) -> &[u8] {
    match value {
        None | Some(u64::MAX) => b"max",
        Some(n) => {
            let mut d = [0u8; 12];
            // u64 needs up to 20 digits: two halves.
            let hi = n / 1_000_000_000_000;
            let lo = n % 1_000_000_000_000;
            let mut len = 0;
            if hi > 0 {
                for &b in decimal(hi, &mut d) {
                    if let Some(s) = buf.get_mut(len) {
                        *s = b;
                        len += 1;
                    }
                }
                let mut d2 = [0u8; 12];
                let digits = decimal(lo, &mut d2);
                for _ in digits.len()..12 {
                    if let Some(s) = buf.get_mut(len) {
                        *s = b'0';
                        len += 1;
                    }
                }
                for &b in digits {
                    if let Some(s) = buf.get_mut(len) {
                        *s = b;
                        len += 1;
                    }
                }
            } else {
                for &b in decimal(lo, &mut d) {
                    if let Some(s) = buf.get_mut(len) {
                        *s = b;
                        len += 1;
                    }
                }
            }
            buf.get(..len).unwrap_or(b"max")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_print_as_the_kernel_reads_them() {
        let mut b = [0u8; 24];
        assert_eq!(limit_text(None, &mut b), b"max");
        assert_eq!(limit_text(Some(u64::MAX), &mut b), b"max");
        assert_eq!(limit_text(Some(0), &mut b), b"0");
        assert_eq!(limit_text(Some(33_554_432), &mut b), b"33554432");
        assert_eq!(limit_text(Some(1_000_000_000_000), &mut b), b"1000000000000");
        assert_eq!(limit_text(Some(12_000_000_000_007), &mut b), b"12000000000007");
        assert_eq!(limit_text(Some(u64::MAX - 1), &mut b), b"18446744073709551614");
    }

    #[test]
    fn paths_name_the_service_group() {
        assert_eq!(path("web", "").unwrap().bytes(), b"/sys/fs/cgroup/autoinit/web");
        assert_eq!(path("web", "memory.max").unwrap().bytes(), b"/sys/fs/cgroup/autoinit/web/memory.max");
    }
}
