//! Capabilities: capget, capset (version 3: two 32-bit words per set, so 64 capabilities).
//! The bounding and ambient sets are prctl options, in `process`.
//!
//! # Safety
//! Calls pass pointers to a local header and a local two-element data array, the layout of
//! `_LINUX_CAPABILITY_VERSION_3`.
#![allow(unsafe_code)]

use crate::arch::*;
use crate::errno::{check_unit, Result};
use crate::nr;
use linux_raw_sys::general::{
    __user_cap_data_struct as CapData, __user_cap_header_struct as CapHeader, _LINUX_CAPABILITY_U32S_3,
    _LINUX_CAPABILITY_VERSION_3,
};

/// The three capability sets of a thread, one bit per capability (bit N = capability N).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct CapSets {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
}

/// Version 3 data is exactly two `__user_cap_data_struct`s (low word, high word).
const WORDS: usize = _LINUX_CAPABILITY_U32S_3 as usize;
const _: () = assert!(WORDS == 2);

const fn header() -> CapHeader {
    // pid 0: this thread.
    CapHeader { version: _LINUX_CAPABILITY_VERSION_3, pid: 0 }
}

const EMPTY: CapData = CapData { effective: 0, permitted: 0, inheritable: 0 };

/// capget(v3, this thread) — its effective, permitted and inheritable sets.
pub fn capget() -> Result<CapSets> {
    let mut h = header();
    let mut d = [EMPTY; WORDS];
    // SAFETY: see module docs; the kernel writes WORDS data structs for version 3.
    check_unit(unsafe {
        syscall2(nr::__NR_capget, &mut h as *mut CapHeader as usize, d.as_mut_ptr() as usize)
    })?;
    let [lo, hi] = d;
    let join = |l: u32, h: u32| (h as u64) << 32 | l as u64;
    Ok(CapSets {
        effective: join(lo.effective, hi.effective),
        permitted: join(lo.permitted, hi.permitted),
        inheritable: join(lo.inheritable, hi.inheritable),
    })
}

/// capset(v3, this thread, sets) — `EPERM` when a set would gain what permitted (or, for
/// inheritable, the bounding set) does not allow.
pub fn capset(effective: u64, permitted: u64, inheritable: u64) -> Result<()> {
    let mut h = header();
    let word = |shift: u32| CapData {
        effective: (effective >> shift) as u32,
        permitted: (permitted >> shift) as u32,
        inheritable: (inheritable >> shift) as u32,
    };
    let d = [word(0), word(32)];
    // SAFETY: see module docs; the kernel reads the header (and may write its version) and
    // reads WORDS data structs.
    check_unit(unsafe {
        syscall2(nr::__NR_capset, &mut h as *mut CapHeader as usize, d.as_ptr() as usize)
    })
}
