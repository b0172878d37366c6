//! Hardware watchdogs (`/dev/watchdogN`): WDIOC_SETTIMEOUT, WDIOC_GETTIMEOUT, WDIOC_KEEPALIVE
//! and the magic close that disarms a device on the way out.
//!
//! The request numbers come from asm-generic's `_IOC` encoding (`dir << 30 | size << 16 |
//! type << 8 | nr`, dir 1 = write, 2 = read), which all five supported arches use (only
//! alpha, mips, powerpc and sparc have their own). They are computed here and checked at
//! compile time against linux-raw-sys's values for the target.
//!
//! # Safety
//! The ioctls pass a pointer to a local `int`, which is what each request reads or writes.
#![allow(unsafe_code)]

use crate::errno::Result;
use crate::fd::{AsFd, OwnedFd};
use crate::fs;
use crate::io::ioctl_ptr;
use linux_raw_sys::ioctl as k;

const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// asm-generic `_IOC(dir, type, nr, size)`.
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    dir << 30 | (size as u32 & 0x3fff) << 16 | (ty as u32) << 8 | nr as u32
}

const INT: usize = core::mem::size_of::<i32>();

/// `_IOR('W', 5, int)`: "I am alive" (the argument is ignored).
pub const WDIOC_KEEPALIVE: u32 = ioc(IOC_READ, b'W', 5, INT);
/// `_IOWR('W', 6, int)`: set the timeout in seconds; the driver writes back what it set.
pub const WDIOC_SETTIMEOUT: u32 = ioc(IOC_READ | IOC_WRITE, b'W', 6, INT);
/// `_IOR('W', 7, int)`: the timeout in seconds.
pub const WDIOC_GETTIMEOUT: u32 = ioc(IOC_READ, b'W', 7, INT);

const _: () = assert!(WDIOC_KEEPALIVE == k::WDIOC_KEEPALIVE);
const _: () = assert!(WDIOC_SETTIMEOUT == k::WDIOC_SETTIMEOUT);
const _: () = assert!(WDIOC_GETTIMEOUT == k::WDIOC_GETTIMEOUT);

fn int_ioctl(fd: impl AsFd, request: u32, value: i32) -> Result<i32> {
    let mut v = value;
    // SAFETY: see module docs; each request here takes a pointer to one int.
    unsafe { ioctl_ptr(fd, request, &mut v as *mut i32) }?;
    Ok(v)
}

/// ioctl(fd, WDIOC_SETTIMEOUT, &secs) — arm the timeout; returns the timeout the driver
/// actually set (hardware may round or clamp). `EINVAL` for a value the device refuses,
/// `ENOTTY` on a file that is no watchdog.
pub fn wdt_set_timeout(fd: impl AsFd, secs: u32) -> Result<u32> {
    int_ioctl(fd, WDIOC_SETTIMEOUT, secs.min(i32::MAX as u32) as i32).map(|v| v as u32)
}

/// ioctl(fd, WDIOC_GETTIMEOUT) — the timeout in seconds.
pub fn wdt_get_timeout(fd: impl AsFd) -> Result<u32> {
    int_ioctl(fd, WDIOC_GETTIMEOUT, 0).map(|v| v as u32)
}

/// ioctl(fd, WDIOC_KEEPALIVE) — pet the watchdog.
pub fn wdt_keepalive(fd: impl AsFd) -> Result<()> {
    int_ioctl(fd, WDIOC_KEEPALIVE, 0).map(|_| ())
}

/// Writes the magic character `V` and closes `fd`: the driver disarms the timer on this
/// close (unless the kernel was built with CONFIG_WATCHDOG_NOWAYOUT). The fd is closed even
/// when the write fails; the first error is returned.
pub fn wdt_magic_close(fd: OwnedFd) -> Result<()> {
    let written = fs::write(&fd, b"V");
    let closed = fs::close(fd);
    written?;
    closed
}
