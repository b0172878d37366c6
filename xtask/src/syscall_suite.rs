//! `cargo xtask syscall-suite`: build tests/syscall-suite for each architecture and run it
//! under qemu-user against a fresh scratch directory, streaming its lines with the arch as
//! prefix and counting them.
//!
//! The suite prints one `ok NAME` or `FAIL NAME: ...` line per check and ends with exactly
//! `syscall-suite: N passed, M failed`, exiting 0 only if M == 0. A run whose summary is
//! missing or disagrees with the lines, whose exit status does not match, or which times out
//! counts as one more failure.
//!
//! On an x86_64 host the x86_64 and i686 binaries also run natively (labelled
//! `x86_64/native`, `i686/native`): there the calls reach the real kernel instead of
//! qemu-user's syscall translation, which, for instance, hides a legacy 16-bit uid call
//! by passing the full value through.

use crate::arch::Arch;
use crate::build;
use anyhow::{Context, Result};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Generous: a run takes a few seconds, even under qemu-user.
const TIMEOUT: Duration = Duration::from_secs(300);

/// Builds and runs the suite for `arches`; returns (passed, failed) over all runs.
pub fn run(arches: &[Arch]) -> Result<(usize, usize)> {
    let (mut passed, mut failed) = (0, 0);
    for &arch in arches {
        let bin = build::package(arch, "syscall-suite", "syscall-suite")?;
        let qemu = find_in_path(arch.qemu_user())
            .with_context(|| format!("{} not found in PATH: run `cargo xtask setup`", arch.qemu_user()))?;
        let (p, f) = run_one(arch.name(), Some(&qemu), &bin)?;
        passed += p;
        failed += f;
        if native(arch) {
            let label = format!("{}/native", arch.name());
            let (p, f) = run_one(&label, None, &bin)?;
            passed += p;
            failed += f;
        }
    }
    Ok((passed, failed))
}

/// Whether this host's kernel runs `arch` binaries itself.
fn native(arch: Arch) -> bool {
    std::env::consts::ARCH == "x86_64" && matches!(arch, Arch::X86_64 | Arch::I686)
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// A fresh, empty scratch directory for one run.
fn scratch_dir(label: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "autoinit-syscall-suite-{}-{}",
        label.replace('/', "-"),
        std::process::id()
    ));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing old {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// What the suite's output said.
#[derive(Debug, Default, PartialEq)]
struct Tally {
    ok: usize,
    fail: usize,
    /// The (N, M) of the final summary line, if there was one.
    summary: Option<(usize, usize)>,
}

impl Tally {
    fn line(&mut self, line: &str) {
        if line.starts_with("ok ") {
            self.ok += 1;
        } else if line.starts_with("FAIL ") {
            self.fail += 1;
        } else if let Some(s) = parse_summary(line) {
            self.summary = Some(s);
        }
    }
}

/// `syscall-suite: N passed, M failed` → (N, M).
fn parse_summary(line: &str) -> Option<(usize, usize)> {
    let rest = line.strip_prefix("syscall-suite: ")?;
    let (p, rest) = rest.split_once(" passed, ")?;
    let f = rest.strip_suffix(" failed")?;
    Some((p.parse().ok()?, f.parse().ok()?))
}

/// Runs the suite once, `qemu` (or natively), and returns (passed, failed) for it.
fn run_one(label: &str, qemu: Option<&Path>, bin: &Path) -> Result<(usize, usize)> {
    let scratch = scratch_dir(label)?;
    let mut cmd = match qemu {
        Some(q) => {
            let mut c = Command::new(q);
            c.arg(bin);
            // For the suite's execve check: the host kernel cannot exec a foreign arch's
            // binary without binfmt_misc, so the suite re-executes itself through qemu.
            c.env("SYSCALL_SUITE_QEMU", q);
            c
        }
        None => Command::new(bin),
    };
    cmd.arg(&scratch).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // Its own process group, so that a timeout can end the suite and its children together.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().with_context(|| format!("starting the syscall suite for {label}"))?;
    let pid = child.id();

    // Stream stderr (qemu's messages) from a thread; stdout here.
    let stderr = child.stderr.take().context("suite stderr")?;
    let err_label = label.to_string();
    let err_thread = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            eprintln!("[{err_label}] {line}");
        }
    });
    // The watchdog: kill the process group when the run takes too long.
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(TIMEOUT) == Err(mpsc::RecvTimeoutError::Timeout) {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).status();
            return true;
        }
        false
    });

    let mut tally = Tally::default();
    let stdout = child.stdout.take().context("suite stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading the suite's output")?;
        println!("[{label}] {line}");
        tally.line(&line);
    }
    let status = child.wait().context("waiting for the suite")?;
    let _ = done_tx.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    let _ = err_thread.join();
    let _ = std::fs::remove_dir_all(&scratch);

    let (passed, mut failed) = (tally.ok, tally.fail);
    let mut problems = Vec::new();
    if timed_out {
        problems.push(format!("killed after {} s", TIMEOUT.as_secs()));
    }
    match tally.summary {
        None => problems.push("no final summary line".to_string()),
        Some(s) if s != (tally.ok, tally.fail) => {
            problems.push(format!("summary says {} passed, {} failed, but the lines say {}, {}", s.0, s.1, tally.ok, tally.fail))
        }
        Some(_) => {}
    }
    // Exit status 0 exactly when nothing failed.
    if status.success() != (tally.fail == 0) || (!status.success() && status.code() != Some(1)) {
        problems.push(format!("exit status {status} with {} FAIL lines", tally.fail));
    }
    for p in &problems {
        println!("[{label}] FAIL run: {p}");
    }
    failed += problems.len();
    println!("syscall-suite [{label}]: {passed} passed, {failed} failed");
    Ok((passed, failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_parsing() {
        assert_eq!(parse_summary("syscall-suite: 510 passed, 0 failed"), Some((510, 0)));
        assert_eq!(parse_summary("syscall-suite: 3 passed, 12 failed"), Some((3, 12)));
        assert_eq!(parse_summary("syscall-suite: x passed, 0 failed"), None);
        assert_eq!(parse_summary("ok syscall-suite: 1 passed, 0 failed"), None);
    }

    #[test]
    fn tally_counts_lines() {
        let mut t = Tally::default();
        for l in ["ok a", "FAIL b: expected 1, got 2", "# note", "ok c", "syscall-suite: 2 passed, 1 failed"] {
            t.line(l);
        }
        assert_eq!(t, Tally { ok: 2, fail: 1, summary: Some((2, 1)) });
    }
}
