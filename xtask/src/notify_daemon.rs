//! tests/notify-daemon, the `Type=notify` test daemon: its cross-build (for the QEMU
//! supervision tests' images) and its `--self-test` under qemu-user for every arch, which
//! `cargo xtask test --only syscalls` runs after the syscall suite.

use crate::arch::Arch;
use crate::build;
use crate::syscall_suite::{run_program, Program};
use anyhow::Result;
use std::path::PathBuf;

/// `notify-daemon --self-test SCRATCH_DIR`; its summary line is
/// `notify-daemon self-test: N passed, M failed`.
const SELF_TEST: Program = Program { name: "notify-daemon self-test", args: &["--self-test"] };

/// Builds tests/notify-daemon (release) for `arch`; returns the binary's path.
pub fn build_notify_daemon(arch: Arch) -> Result<PathBuf> {
    build::package(arch, "notify-daemon", "notify-daemon")
}

/// Runs the self-test for `arches` (qemu-user, and natively where the host can); returns
/// (passed, failed) over all runs.
pub fn self_test(arches: &[Arch]) -> Result<(usize, usize)> {
    run_program(&SELF_TEST, arches, build_notify_daemon)
}
