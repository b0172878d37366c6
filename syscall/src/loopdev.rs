//! Loop devices: LOOP_CTL_GET_FREE, LOOP_CONFIGURE (LOOP_SET_FD + LOOP_SET_STATUS64 on kernels
//! older than 5.8), LOOP_CLR_FD.
//!
//! # Safety
//! The ioctls get pointers to local `loop_config`/`loop_info64` values of the kernel's layout;
//! fcntl(F_GETFL) takes no pointer.
#![allow(unsafe_code)]

use crate::arch::syscall3;
use crate::errno::{check, Errno, Result};
use crate::fd::{arg, AsFd, BorrowedFd, OwnedFd};
use crate::{fs, io, nr};
use linux_raw_sys::general as g;
use linux_raw_sys::loop_device as l;

/// ioctl(loop-control, LOOP_CTL_GET_FREE) — the number of a free loop device (allocated if
/// needed).
pub fn get_free(control: impl AsFd) -> Result<u32> {
    io::ioctl_int(control, l::LOOP_CTL_GET_FREE, 0).map(|n| n as u32)
}

/// Attaches `backing` to the loop device `dev`, read-only and auto-clearing (the device
/// detaches itself when its last user, e.g. the mount, goes away). Read-only holds whatever
/// modes `dev` and `backing` were opened with; on kernels without LOOP_CONFIGURE that takes
/// /proc when `backing` is open for writing (see `attach_set_fd`).
pub fn attach_read_only(dev: impl AsFd, backing: impl AsFd) -> Result<()> {
    let dev = dev.as_fd();
    let flags = l::LO_FLAGS_READ_ONLY as u32 | l::LO_FLAGS_AUTOCLEAR as u32;
    // SAFETY: an all-zero loop_config is valid (integers and byte arrays).
    let mut cfg: l::loop_config = unsafe { core::mem::zeroed() };
    cfg.fd = backing.as_fd().raw() as u32;
    cfg.info.lo_flags = flags;
    // SAFETY: `cfg` is a loop_config, which LOOP_CONFIGURE reads.
    match unsafe { io::ioctl_ptr(dev, l::LOOP_CONFIGURE, &mut cfg) } {
        Ok(_) => Ok(()),
        // Before Linux 5.8 (or where LOOP_CONFIGURE is not passed through): attach, then
        // set the flags.
        Err(Errno::EINVAL) | Err(Errno::ENOTTY) => attach_set_fd(dev, backing.as_fd(), flags),
        Err(e) => Err(e),
    }
}

/// LOOP_SET_FD, then LOOP_SET_STATUS64 for the flags. LOOP_SET_STATUS64 cannot set
/// LO_FLAGS_READ_ONLY (the kernel ignores the bit there); LOOP_SET_FD makes the device
/// read-only when the backing file is not open for writing. So a writable `backing` is
/// replaced by a read-only open of the same file (/proc/self/fd/N), and LOOP_GET_STATUS64
/// confirms the result: a device that is not read-only is detached again (EROFS).
fn attach_set_fd(dev: BorrowedFd<'_>, backing: BorrowedFd<'_>, flags: u32) -> Result<()> {
    // SAFETY: fcntl(F_GETFL) takes no pointer.
    let fl = check(unsafe { syscall3(nr::__NR_fcntl, arg(backing), g::F_GETFL as usize, 0) })?;
    let reopened = if fl as u32 & g::O_ACCMODE == g::O_RDONLY { None } else { Some(reopen_read_only(backing)?) };
    let fd = reopened.as_ref().map_or(backing, |f| f.as_fd());
    io::ioctl_int(dev, l::LOOP_SET_FD, fd.raw() as usize)?;
    // The device holds its own reference to the file.
    drop(reopened);
    let r = set_flags(dev, flags);
    if r.is_err() {
        let _ = detach(dev);
    }
    r
}

/// LOOP_SET_STATUS64 with `flags`, then LOOP_GET_STATUS64 to confirm that they all hold.
fn set_flags(dev: BorrowedFd<'_>, flags: u32) -> Result<()> {
    // SAFETY: an all-zero loop_info64 is valid (integers and byte arrays).
    let mut info: l::loop_info64 = unsafe { core::mem::zeroed() };
    info.lo_flags = flags;
    // SAFETY: `info` is a loop_info64, which LOOP_SET_STATUS64 reads.
    unsafe { io::ioctl_ptr(dev, l::LOOP_SET_STATUS64, &mut info) }?;
    // SAFETY: `info` is a loop_info64, which LOOP_GET_STATUS64 writes.
    unsafe { io::ioctl_ptr(dev, l::LOOP_GET_STATUS64, &mut info) }?;
    if info.lo_flags & flags == flags { Ok(()) } else { Err(Errno::EROFS) }
}

/// open("/proc/self/fd/N", O_RDONLY): the file of `fd`, opened again for reading only.
fn reopen_read_only(fd: BorrowedFd<'_>) -> Result<OwnedFd> {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    // The prefix, up to 10 digits and the NUL.
    let mut path = [0u8; PREFIX.len() + 11];
    let mut digits = [0u8; 10];
    let mut n = u32::try_from(fd.raw()).map_err(|_| Errno::EBADF)?;
    let mut len = 0;
    loop {
        *digits.get_mut(len).ok_or(Errno::EBADF)? = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for (d, s) in path.iter_mut().zip(PREFIX.iter().chain(digits.iter().take(len).rev())) {
        *d = *s;
    }
    let path = core::ffi::CStr::from_bytes_until_nul(&path).map_err(|_| Errno::EINVAL)?;
    fs::open(path, fs::OFlags::RDONLY | fs::OFlags::CLOEXEC, 0)
}

/// ioctl(dev, LOOP_CLR_FD) — detach the backing file.
pub fn detach(dev: impl AsFd) -> Result<()> {
    io::ioctl_int(dev, l::LOOP_CLR_FD, 0).map(|_| ())
}
