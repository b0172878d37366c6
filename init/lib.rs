//! autoinit: a freestanding PID 1 for single-board-computer server images.
//!
//! Design principles:
//! - PID 1 never dies: no panicking calls on any runtime path; the panic handler logs an
//!   epitaph and follows the policy in [`fail`].
//! - Bounded memory: no allocator at all. Every table has a fixed capacity, documented where
//!   it is declared; a full table is a logged error, not a crash.
//! - Signals are data: every signal is blocked and read from a signalfd; the main loop waits
//!   in exactly one place.
//! - Pure logic ([`cmdline`], [`mounts`]) lives apart from the code that makes syscalls and
//!   is unit-tested on the host (`cargo test --lib --no-default-features`).
//! - Every failure is one line naming the action and the object, on the console and in
//!   /dev/kmsg ([`log`]).
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]

pub mod boot;
pub mod cgroup;
pub mod cmdline;
pub mod container;
pub mod container_spec;
pub mod control;
pub mod control_proto;
pub mod depgraph;
pub mod env;
pub mod exec_line;
pub mod fail;
#[macro_use]
pub mod log;
pub mod modules_dep;
pub mod mountopts;
pub mod mounts;
pub mod notify_msg;
pub mod outlog;
pub mod partition;
pub mod passwd;
pub mod path;
pub mod persist;
pub mod pid1;
pub mod rescue;
pub mod restart;
pub mod services;
pub mod sha256;
pub mod shutdown;
pub mod spawn;
pub mod stage2;
pub mod superblock;
pub mod tar;
pub mod upgrade;
pub mod text;
pub mod unit;
pub mod warm;
pub mod watchdog;
