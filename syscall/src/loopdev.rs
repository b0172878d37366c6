//! Loop devices: LOOP_CTL_GET_FREE, LOOP_CONFIGURE (LOOP_SET_FD + LOOP_SET_STATUS64 on kernels
//! older than 5.8), LOOP_CLR_FD.
//!
//! # Safety
//! The ioctls get pointers to local `loop_config`/`loop_info64` values of the kernel's layout.
#![allow(unsafe_code)]

use crate::errno::{Errno, Result};
use crate::fd::AsFd;
use crate::io;
use linux_raw_sys::loop_device as l;

/// ioctl(loop-control, LOOP_CTL_GET_FREE) — the number of a free loop device (allocated if
/// needed).
pub fn get_free(control: impl AsFd) -> Result<u32> {
    io::ioctl_int(control, l::LOOP_CTL_GET_FREE, 0).map(|n| n as u32)
}

/// Attaches `backing` to the loop device `dev`, read-only and auto-clearing (the device
/// detaches itself when its last user, e.g. the mount, goes away).
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
        // Before Linux 5.8: attach, then set the flags.
        Err(Errno::EINVAL) | Err(Errno::ENOTTY) => {
            io::ioctl_int(dev, l::LOOP_SET_FD, backing.as_fd().raw() as usize)?;
            // SAFETY: as above, for loop_info64.
            let mut info: l::loop_info64 = unsafe { core::mem::zeroed() };
            info.lo_flags = flags;
            // SAFETY: `info` is a loop_info64, which LOOP_SET_STATUS64 reads.
            match unsafe { io::ioctl_ptr(dev, l::LOOP_SET_STATUS64, &mut info) } {
                Ok(_) => Ok(()),
                Err(e) => {
                    let _ = detach(dev);
                    Err(e)
                }
            }
        }
        Err(e) => Err(e),
    }
}

/// ioctl(dev, LOOP_CLR_FD) — detach the backing file.
pub fn detach(dev: impl AsFd) -> Result<()> {
    io::ioctl_int(dev, l::LOOP_CLR_FD, 0).map(|_| ())
}
