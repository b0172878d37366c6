//! The system as a whole: reboot, finit_module, uname, sethostname.
//!
//! # Safety
//! Calls pass `&CStr`/slice pointers and a local utsname buffer.
#![allow(unsafe_code)]

use crate::arch::*;
use crate::errno::{check_unit, Errno, Result};
use crate::fd::{arg, AsFd};
use crate::nr;
use core::ffi::CStr;
use linux_raw_sys::general as g;

/// What reboot(2) does.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum RebootCmd {
    Restart,
    Halt,
    PowerOff,
    /// Ctrl-Alt-Del sends SIGINT to init instead of rebooting at once.
    CadOff,
}

/// reboot(magic1, magic2, cmd, NULL) — returns the error on failure. Restart, Halt and
/// PowerOff do not return when they succeed; CadOff does, with `Errno(0)`.
pub fn reboot(cmd: RebootCmd) -> Errno {
    let cmd = match cmd {
        RebootCmd::Restart => g::LINUX_REBOOT_CMD_RESTART,
        RebootCmd::Halt => g::LINUX_REBOOT_CMD_HALT,
        RebootCmd::PowerOff => g::LINUX_REBOOT_CMD_POWER_OFF,
        RebootCmd::CadOff => g::LINUX_REBOOT_CMD_CAD_OFF,
    };
    // SAFETY: no pointers for these commands.
    let ret = unsafe {
        syscall4(nr::__NR_reboot, g::LINUX_REBOOT_MAGIC1 as usize, g::LINUX_REBOOT_MAGIC2 as usize, cmd as usize, 0)
    };
    match crate::errno::check(ret) {
        Err(e) => e,
        Ok(_) => Errno(0),
    }
}

/// finit_module flags (the kernel's MODULE_INIT_*; linux-raw-sys does not have them).
pub const MODULE_INIT_IGNORE_MODVERSIONS: u32 = 1;
pub const MODULE_INIT_IGNORE_VERMAGIC: u32 = 2;
/// The file is compressed; the kernel decompresses it (CONFIG_MODULE_DECOMPRESS, 6.0+).
pub const MODULE_INIT_COMPRESSED_FILE: u32 = 4;

/// finit_module(fd, params, flags) — load a kernel module from an open file.
pub fn finit_module(fd: impl AsFd, params: &CStr, flags: u32) -> Result<()> {
    // SAFETY: see module docs.
    check_unit(unsafe { syscall3(nr::__NR_finit_module, arg(fd.as_fd()), params.as_ptr() as usize, flags as usize) })
}

/// The `struct new_utsname` fields, each a NUL-padded 65-byte field.
pub use linux_raw_sys::system::new_utsname as UtsName;

/// uname().
pub fn uname() -> Result<UtsName> {
    // SAFETY: an all-zero utsname is valid (arrays of bytes).
    let mut u: UtsName = unsafe { core::mem::zeroed() };
    // SAFETY: see module docs.
    check_unit(unsafe { syscall1(nr::__NR_uname, &mut u as *mut UtsName as usize) })?;
    Ok(u)
}

/// The bytes of a utsname field up to its NUL.
pub fn uts_field(field: &[core::ffi::c_char]) -> &[u8] {
    // SAFETY: c_char and u8 have the same size and alignment.
    let bytes: &[u8] = unsafe { core::slice::from_raw_parts(field.as_ptr() as *const u8, field.len()) };
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    bytes.get(..end).unwrap_or(&[])
}

/// sethostname(name).
pub fn sethostname(name: &[u8]) -> Result<()> {
    // SAFETY: see module docs.
    check_unit(unsafe { syscall2(nr::__NR_sethostname, name.as_ptr() as usize, name.len()) })
}
