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
//!
//! The runner serves any program that reports the same way ([`Program`]): the notify
//! daemon's self-test (notify_daemon.rs) runs through it too.

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

/// A freestanding test program that reports like the suite: `ok`/`FAIL` lines, then
/// `NAME: N passed, M failed`, and exit status 0 exactly when M == 0.
pub struct Program {
    /// The summary line's prefix, also the label of the totals this runner prints.
    pub name: &'static str,
    /// Arguments before the scratch directory, which always comes last.
    pub args: &'static [&'static str],
}

pub const SUITE: Program = Program { name: "syscall-suite", args: &[] };

/// Builds and runs the suite for `arches`; returns (passed, failed) over all runs.
pub fn run(arches: &[Arch]) -> Result<(usize, usize)> {
    run_program(&SUITE, arches, |arch| build::package(arch, "syscall-suite", "syscall-suite"))
}

/// Runs `program` (built by `build` for each arch) under qemu-user for `arches`, and
/// natively where the host can; returns (passed, failed) over all runs.
pub fn run_program(program: &Program, arches: &[Arch], build: impl Fn(Arch) -> Result<PathBuf>) -> Result<(usize, usize)> {
    let (mut passed, mut failed) = (0, 0);
    for &arch in arches {
        let bin = build(arch)?;
        let qemu = find_in_path(arch.qemu_user())
            .with_context(|| format!("{} not found in PATH: run `cargo xtask setup`", arch.qemu_user()))?;
        let (p, f) = run_one(program, arch.name(), Some(&qemu), &bin)?;
        passed += p;
        failed += f;
        if native(arch) {
            let label = format!("{}/native", arch.name());
            let (p, f) = run_one(program, &label, None, &bin)?;
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
fn scratch_dir(program: &str, label: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "autoinit-{program}-{}-{}",
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
    fn line(&mut self, program: &str, line: &str) {
        if line.starts_with("ok ") {
            self.ok += 1;
        } else if line.starts_with("FAIL ") {
            self.fail += 1;
        } else if let Some(s) = parse_summary(program, line) {
            self.summary = Some(s);
        }
    }
}

/// `PROGRAM: N passed, M failed` → (N, M).
fn parse_summary(program: &str, line: &str) -> Option<(usize, usize)> {
    let rest = line.strip_prefix(program)?.strip_prefix(": ")?;
    let (p, rest) = rest.split_once(" passed, ")?;
    let f = rest.strip_suffix(" failed")?;
    Some((p.parse().ok()?, f.parse().ok()?))
}

/// Runs the program once, `qemu` (or natively), and returns (passed, failed) for it.
fn run_one(program: &Program, label: &str, qemu: Option<&Path>, bin: &Path) -> Result<(usize, usize)> {
    let scratch = scratch_dir(program.name, label)?;
    let mut cmd = match qemu {
        Some(q) => {
            let mut c = Command::new(q);
            c.arg(bin);
            // For the programs that exec themselves: the host kernel cannot exec a foreign
            // arch's binary without binfmt_misc, so they re-execute through qemu.
            c.env("SYSCALL_SUITE_QEMU", q);
            c
        }
        None => Command::new(bin),
    };
    cmd.args(program.args).arg(&scratch).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // Its own process group, so that a timeout can end the suite and its children together.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().with_context(|| format!("starting {} for {label}", program.name))?;
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
        let line = line.with_context(|| format!("reading the output of {}", program.name))?;
        println!("[{label}] {line}");
        tally.line(program.name, &line);
    }
    let status = child.wait().with_context(|| format!("waiting for {}", program.name))?;
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
    println!("{} [{label}]: {passed} passed, {failed} failed", program.name);
    Ok((passed, failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_parsing() {
        assert_eq!(parse_summary("syscall-suite", "syscall-suite: 510 passed, 0 failed"), Some((510, 0)));
        assert_eq!(parse_summary("syscall-suite", "syscall-suite: 3 passed, 12 failed"), Some((3, 12)));
        assert_eq!(parse_summary("syscall-suite", "syscall-suite: x passed, 0 failed"), None);
        assert_eq!(parse_summary("syscall-suite", "ok syscall-suite: 1 passed, 0 failed"), None);
        // Another program's summary is not ours.
        assert_eq!(parse_summary("syscall-suite", "notify-daemon self-test: 1 passed, 0 failed"), None);
        assert_eq!(parse_summary("notify-daemon self-test", "notify-daemon self-test: 43 passed, 0 failed"), Some((43, 0)));
    }

    #[test]
    fn tally_counts_lines() {
        let mut t = Tally::default();
        for l in ["ok a", "FAIL b: expected 1, got 2", "# note", "ok c", "syscall-suite: 2 passed, 1 failed"] {
            t.line("syscall-suite", l);
        }
        assert_eq!(t, Tally { ok: 2, fail: 1, summary: Some((2, 1)) });
    }
}
