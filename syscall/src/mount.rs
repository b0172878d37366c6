//! Mounts and the root: mount, umount2, pivot_root, chroot, chdir, fchdir.
//!
//! # Safety
//! Every call passes `&CStr` pointers (or NULL for an absent optional string) and borrowed fds.
#![allow(unsafe_code)]

use crate::arch::*;
use crate::errno::{check_unit, Result};
use crate::fd::{arg, AsFd};
use crate::nr;
use core::ffi::CStr;
use linux_raw_sys::general as g;

flags! {
    /// mount(2) flags (`MS_*`).
    pub struct MountFlags: u32 {
        const RDONLY = g::MS_RDONLY;
        const NOSUID = g::MS_NOSUID;
        const NODEV = g::MS_NODEV;
        const NOEXEC = g::MS_NOEXEC;
        const SYNCHRONOUS = g::MS_SYNCHRONOUS;
        const REMOUNT = g::MS_REMOUNT;
        const NOATIME = g::MS_NOATIME;
        const BIND = g::MS_BIND;
        const MOVE = g::MS_MOVE;
        const REC = g::MS_REC;
        const SILENT = g::MS_SILENT;
        const PRIVATE = g::MS_PRIVATE;
        const SLAVE = g::MS_SLAVE;
        const SHARED = g::MS_SHARED;
        const STRICTATIME = g::MS_STRICTATIME;
        const LAZYTIME = g::MS_LAZYTIME;
    }
}

flags! {
    /// umount2(2) flags.
    pub struct UnmountFlags: u32 {
        const FORCE = g::MNT_FORCE;
        const DETACH = g::MNT_DETACH;
        const EXPIRE = g::MNT_EXPIRE;
        const NOFOLLOW = g::UMOUNT_NOFOLLOW;
    }
}

fn opt(s: Option<&CStr>) -> usize {
    s.map_or(0, |s| s.as_ptr() as usize)
}

/// mount(source, target, fstype, flags, data).
pub fn mount(
    source: Option<&CStr>, target: &CStr, fstype: Option<&CStr>, flags: MountFlags, data: Option<&CStr>,
) -> Result<()> {
    // SAFETY: see module docs.
    check_unit(unsafe {
        syscall5(nr::__NR_mount, opt(source), target.as_ptr() as usize, opt(fstype),
                 flags.bits() as usize, opt(data))
    })
}

/// umount2(target, flags).
pub fn umount2(target: &CStr, flags: UnmountFlags) -> Result<()> {
    // SAFETY: see module docs.
    check_unit(unsafe { syscall2(nr::__NR_umount2, target.as_ptr() as usize, flags.bits() as usize) })
}

/// pivot_root(new_root, put_old) — make `new_root` the root mount, moving the old root to
/// `put_old` (which must be at or under `new_root`).
pub fn pivot_root(new_root: &CStr, put_old: &CStr) -> Result<()> {
    // SAFETY: see module docs.
    check_unit(unsafe { syscall2(nr::__NR_pivot_root, new_root.as_ptr() as usize, put_old.as_ptr() as usize) })
}

/// chroot(path).
pub fn chroot(path: &CStr) -> Result<()> {
    // SAFETY: see module docs.
    check_unit(unsafe { syscall1(nr::__NR_chroot, path.as_ptr() as usize) })
}

/// chdir(path).
pub fn chdir(path: &CStr) -> Result<()> {
    // SAFETY: see module docs.
    check_unit(unsafe { syscall1(nr::__NR_chdir, path.as_ptr() as usize) })
}

/// fchdir(fd).
pub fn fchdir(fd: impl AsFd) -> Result<()> {
    // SAFETY: see module docs.
    check_unit(unsafe { syscall1(nr::__NR_fchdir, arg(fd.as_fd())) })
}
