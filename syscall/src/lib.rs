//! autoinit's Linux system-call layer.
//!
//! Design, after rustix's `linux_raw` backend:
//! - `arch/` holds the only inline assembly of the project: `syscall0..6` and `_start`, one
//!   file per architecture with the same names.
//! - One module per syscall family (`fs`, `mount`, `process`, `cap`, `signal`, `time`, `io`,
//!   `net`, `system`, `mm`, `watchdog`). Each wrapper takes typed arguments (`&CStr` paths, borrowed/owned fds,
//!   flag types, `Pid`, `Signal`) and returns `Result<T, Errno>`.
//! - Kernel results are decoded into `Errno` in exactly one place, [`errno::check`].
//! - Constants and struct layouts come from `linux-raw-sys`, which has them per architecture.
//! - Nothing here allocates; nothing here panics.
#![no_std]
#![deny(unsafe_code)]
#![forbid(unsafe_op_in_unsafe_fn)]

pub mod arch;
pub mod cap;
pub mod entry;
pub mod errno;
pub mod fd;
#[macro_use]
mod flags;
pub mod fs;
pub mod io;
pub mod loopdev;
pub mod mm;
pub mod mount;
pub mod net;
pub mod process;
pub mod signal;
pub mod system;
pub mod time;
pub mod watchdog;

#[cfg(feature = "freestanding")]
mod mem;

pub use errno::{Errno, Result};
pub use fd::{AsFd, BorrowedFd, OwnedFd};

/// The syscall numbers of the target architecture.
pub(crate) use linux_raw_sys::general as nr;
