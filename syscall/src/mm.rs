//! Memory: anonymous mmap/munmap, memfd_create.
//!
//! # Safety
//! `mmap_anonymous` returns fresh private memory that nothing else aliases; `munmap` is
//! unsafe because the caller must not use the range afterwards.
#![allow(unsafe_code)]

use crate::arch::*;
use crate::errno::{check, check_unit, Result};
use crate::fd::OwnedFd;
use crate::nr;
use core::ffi::CStr;
use linux_raw_sys::general as g;

#[cfg(target_pointer_width = "64")]
use crate::nr::__NR_mmap as MMAP;
#[cfg(target_pointer_width = "32")]
use crate::nr::__NR_mmap2 as MMAP;

/// mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) — zeroed pages.
pub fn mmap_anonymous(len: usize) -> Result<&'static mut [u8]> {
    // SAFETY: an anonymous private mapping aliases nothing.
    let addr = check(unsafe {
        syscall6(MMAP, 0, len, (g::PROT_READ | g::PROT_WRITE) as usize,
                 (g::MAP_PRIVATE | g::MAP_ANONYMOUS) as usize, -1isize as usize, 0)
    })?;
    // SAFETY: the kernel mapped `len` fresh, writable, zeroed bytes at `addr`.
    Ok(unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, len) })
}

/// munmap(addr, len).
///
/// # Safety
/// Nothing may use the range afterwards.
pub unsafe fn munmap(mem: &mut [u8]) -> Result<()> {
    // SAFETY: per the function contract.
    check_unit(unsafe { syscall2(nr::__NR_munmap, mem.as_mut_ptr() as usize, mem.len()) })
}

/// memfd_create(name, MFD_CLOEXEC) — an anonymous file in memory.
pub fn memfd_create(name: &CStr) -> Result<OwnedFd> {
    // SAFETY: see module docs.
    check(unsafe { syscall2(nr::__NR_memfd_create, name.as_ptr() as usize, g::MFD_CLOEXEC as usize) })
        .map(|fd| OwnedFd::from_raw(fd as i32))
}

/// Anonymous memory owned by this value and unmapped when it is dropped: the arena for one
/// boot-stage job (reading modules.dep, probing disks), so nothing of it stays after boot.
pub struct AnonMap {
    mem: &'static mut [u8],
}

impl AnonMap {
    pub fn new(len: usize) -> Result<AnonMap> {
        mmap_anonymous(len).map(|mem| AnonMap { mem })
    }

    pub fn as_slice(&self) -> &[u8] {
        self.mem
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.mem
    }
}

impl Drop for AnonMap {
    fn drop(&mut self) {
        // SAFETY: the mapping is owned by this value and no borrow of it outlives `self`.
        let _ = unsafe { munmap(self.mem) };
    }
}
