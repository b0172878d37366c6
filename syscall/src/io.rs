//! I/O plumbing: dup3, pipe2, ioctl, ppoll.
//!
//! # Safety
//! Calls pass borrowed fds and pointers to local values of the kernel's layout; `ioctl` with
//! a pointer argument is `unsafe` because its layout depends on the request.
#![allow(unsafe_code)]

use crate::arch::*;
use crate::errno::{check, check_unit, Result};
use crate::fd::{arg, AsFd, OwnedFd};
use crate::nr;
use crate::signal::SigSet;
use crate::time::Timespec;
use linux_raw_sys::general as g;

/// dup3(old, new, flags) — make fd number `new` a copy of `old` (O_CLOEXEC is the only flag).
/// Returns the new fd, owned.
pub fn dup3(old: impl AsFd, new: i32, cloexec: bool) -> Result<OwnedFd> {
    let flags = if cloexec { g::O_CLOEXEC } else { 0 };
    // SAFETY: see module docs.
    let ret = unsafe { syscall3(nr::__NR_dup3, arg(old.as_fd()), new as usize, flags as usize) };
    check(ret).map(|fd| OwnedFd::from_raw(fd as i32))
}

/// pipe2(flags) — (read end, write end).
pub fn pipe2(cloexec: bool, nonblock: bool) -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0i32; 2];
    let flags = if cloexec { g::O_CLOEXEC } else { 0 } | if nonblock { g::O_NONBLOCK } else { 0 };
    // SAFETY: see module docs; `fds` holds two ints.
    check_unit(unsafe { syscall2(nr::__NR_pipe2, fds.as_mut_ptr() as usize, flags as usize) })?;
    Ok((OwnedFd::from_raw(fds[0]), OwnedFd::from_raw(fds[1])))
}

/// ioctl(fd, request, arg) with an integer argument; returns the call's result.
pub fn ioctl_int(fd: impl AsFd, request: u32, value: usize) -> Result<usize> {
    // SAFETY: an integer argument carries no pointer for the kernel to follow.
    check(unsafe { syscall3(nr::__NR_ioctl, arg(fd.as_fd()), request as usize, value) })
}

/// ioctl(fd, request, ptr).
///
/// # Safety
/// `ptr` must point to memory of the size and layout `request` reads and writes.
pub unsafe fn ioctl_ptr<T>(fd: impl AsFd, request: u32, ptr: *mut T) -> Result<usize> {
    // SAFETY: per the function contract.
    check(unsafe { syscall3(nr::__NR_ioctl, arg(fd.as_fd()), request as usize, ptr as usize) })
}

/// ioctl(fd, TIOCSCTTY, steal) — make this terminal the controlling tty of our session.
pub fn set_controlling_tty(fd: impl AsFd, steal: bool) -> Result<()> {
    ioctl_int(fd, linux_raw_sys::ioctl::TIOCSCTTY, steal as usize).map(|_| ())
}

/// One entry of ppoll's array (`struct pollfd`).
#[derive(Copy, Clone, Debug, Default)]
#[repr(C)]
pub struct PollFd {
    pub fd: i32,
    pub events: i16,
    pub revents: i16,
}

pub const POLLIN: i16 = g::POLLIN as i16;
pub const POLLOUT: i16 = g::POLLOUT as i16;
pub const POLLERR: i16 = g::POLLERR as i16;
pub const POLLHUP: i16 = g::POLLHUP as i16;

impl PollFd {
    pub fn new(fd: impl AsFd, events: i16) -> PollFd {
        PollFd { fd: fd.as_fd().raw(), events, revents: 0 }
    }
}

#[cfg(target_pointer_width = "64")]
use crate::nr::__NR_ppoll as PPOLL;
#[cfg(target_pointer_width = "32")]
use crate::nr::__NR_ppoll_time64 as PPOLL;

/// ppoll(fds, timeout, sigmask) — the number of fds with events; `None` timeout waits forever.
pub fn ppoll(fds: &mut [PollFd], timeout: Option<&Timespec>, mask: Option<&SigSet>) -> Result<usize> {
    let t = timeout.map_or(0, |t| t as *const Timespec as usize);
    let m = mask.map_or(0, |m| m as *const SigSet as usize);
    // SAFETY: see module docs.
    check(unsafe { syscall5(PPOLL, fds.as_mut_ptr() as usize, fds.len(), t, m, 8) })
}
