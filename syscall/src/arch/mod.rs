//! Raw system calls and program entry, one file per architecture.
//!
//! Each architecture file defines the same set of names: `syscall0` .. `syscall6`,
//! `syscall1_noreturn`, and (with the `freestanding` feature) `_start`, which passes the
//! initial stack pointer to [`crate::entry::start`].
//!
//! # Safety
//! A raw system call can do anything: the caller must pass arguments that are valid for the
//! call number (pointers to live memory of the right size, fds it owns, ...). The typed
//! wrappers in the family modules are where that is checked.
#![allow(unsafe_code)]

#[cfg_attr(target_arch = "x86_64", path = "x86_64.rs")]
#[cfg_attr(target_arch = "x86", path = "x86.rs")]
#[cfg_attr(target_arch = "aarch64", path = "aarch64.rs")]
#[cfg_attr(target_arch = "arm", path = "arm.rs")]
#[cfg_attr(target_arch = "riscv64", path = "riscv64.rs")]
mod imp;

#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "arm",
    target_arch = "riscv64"
)))]
compile_error!("autoinit supports x86_64, i686, aarch64, armv7 and riscv64 only (see docs/architecture.md)");

pub use imp::*;
