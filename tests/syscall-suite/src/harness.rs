//! Bookkeeping and output: one line per check (`ok NAME` / `FAIL NAME: why`), pass/fail
//! counts, and sections that run in a forked child and report their counts through a pipe.
//!
//! Every line is formatted into a fixed buffer and written with one write(2), so that lines
//! of a parent and its children never interleave mid-line.

use core::fmt::{self, Debug, Write};
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering::Relaxed};
use syscall::fs;
use syscall::io;
use syscall::process::{self, Fork, Pid, WaitFlags, WaitStatus};
use syscall::{AsFd, BorrowedFd, Errno, Result};

/// A line being formatted; text past the buffer is dropped, the newline always fits.
pub struct Line {
    buf: [u8; 1024],
    len: usize,
}

impl Line {
    pub const fn new() -> Line {
        Line { buf: [0; 1024], len: 0 }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            // Keep one byte for the newline.
            if self.len + 1 < self.buf.len()
                && let Some(slot) = self.buf.get_mut(self.len)
            {
                *slot = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// Writes one line to stdout.
pub fn print(args: fmt::Arguments<'_>) {
    let mut l = Line::new();
    let _ = l.write_fmt(args);
    if let Some(slot) = l.buf.get_mut(l.len) {
        *slot = b'\n';
        l.len += 1;
    }
    let _ = fs::write_all(BorrowedFd::STDOUT, l.as_bytes());
}

macro_rules! say {
    ($($a:tt)*) => { $crate::harness::print(format_args!($($a)*)) };
}

/// An errno shown by name (`ENOENT`), or by number when the table does not know it.
#[derive(Copy, Clone, PartialEq, Eq)]
pub struct En(pub Errno);

impl Debug for En {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "errno {}", self.0.raw()),
        }
    }
}

/// A `Result` shown with its errno by name.
pub struct Res<'a, V>(pub &'a Result<V>);

impl<V: Debug> Debug for Res<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Ok(v) => write!(f, "Ok({v:?})"),
            Err(e) => write!(f, "Err({:?})", En(*e)),
        }
    }
}

/// Bytes shown as an escaped string.
#[derive(PartialEq, Eq)]
pub struct B<'a>(pub &'a [u8]);

impl Debug for B<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for &c in self.0 {
            match c {
                b'"' => f.write_str("\\\"")?,
                b'\\' => f.write_str("\\\\")?,
                0x20..=0x7e => f.write_char(c as char)?,
                _ => write!(f, "\\x{c:02x}")?,
            }
        }
        f.write_str("\"")
    }
}

/// The counts of this process. They live in statics so that the panic handler can still
/// report them (see `panic_report`); the suite is single-threaded, the atomics only make
/// the statics safe to touch.
static PASSED: AtomicU32 = AtomicU32::new(0);
static FAILED: AtomicU32 = AtomicU32::new(0);
/// In a section child: the pipe on which the counts go back to the parent.
static REPORT_FD: AtomicI32 = AtomicI32::new(-1);

/// The handle through which checks are counted (one per process).
pub struct T {
    _private: (),
}

impl T {
    pub const fn new() -> T {
        T { _private: () }
    }

    pub fn passed(&self) -> u32 {
        PASSED.load(Relaxed)
    }

    pub fn failed(&self) -> u32 {
        FAILED.load(Relaxed)
    }

    pub fn pass(&mut self, name: &str) {
        PASSED.fetch_add(1, Relaxed);
        say!("ok {name}");
    }

    pub fn fail(&mut self, name: &str, why: fmt::Arguments<'_>) {
        FAILED.fetch_add(1, Relaxed);
        say!("FAIL {name}: {why}");
    }

    /// Passes if `cond`; otherwise fails with `why`.
    pub fn check(&mut self, name: &str, cond: bool, why: fmt::Arguments<'_>) -> bool {
        if cond {
            self.pass(name);
        } else {
            self.fail(name, why);
        }
        cond
    }

    /// Passes if `got == want`.
    pub fn eq<V: PartialEq + Debug>(&mut self, name: &str, got: V, want: V) -> bool {
        let same = got == want;
        if same {
            self.pass(name);
        } else {
            self.fail(name, format_args!("expected {want:?}, got {got:?}"));
        }
        same
    }

    /// Passes if the call succeeded; returns its value.
    pub fn ok<V>(&mut self, name: &str, r: Result<V>) -> Option<V> {
        match r {
            Ok(v) => {
                self.pass(name);
                Some(v)
            }
            Err(e) => {
                self.fail(name, format_args!("expected success, got {:?}", En(e)));
                None
            }
        }
    }

    /// A setup step: silent on success (the checks that follow count), a failure otherwise.
    pub fn need<V>(&mut self, name: &str, r: Result<V>) -> Option<V> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(name, format_args!("setup step failed with {:?}", En(e)));
                None
            }
        }
    }

    /// Passes if the call failed with exactly `want`.
    pub fn err<V: Debug>(&mut self, name: &str, r: Result<V>, want: Errno) -> bool {
        match r {
            Err(e) if e == want => {
                self.pass(name);
                true
            }
            other => {
                self.fail(name, format_args!("expected Err({:?}), got {:?}", En(want), Res(&other)));
                false
            }
        }
    }
}

fn send_counts(fd: BorrowedFd<'_>) {
    let mut counts = [0u8; 8];
    counts[..4].copy_from_slice(&PASSED.load(Relaxed).to_ne_bytes());
    counts[4..].copy_from_slice(&FAILED.load(Relaxed).to_ne_bytes());
    let _ = fs::write_all(fd, &counts);
}

/// Called by the panic handler after its FAIL line: a section child still reports its
/// counts (the panic included) so that the totals match the lines.
pub fn panic_report() {
    FAILED.fetch_add(1, Relaxed);
    let fd = REPORT_FD.load(Relaxed);
    if fd >= 0 {
        send_counts(BorrowedFd::raw_static(fd));
    }
}

/// Runs `f` in a forked child with its own counts, which it sends back through a pipe; the
/// child's lines go straight to stdout. A child that dies or exits non-zero is one more
/// failure.
pub fn section(t: &mut T, name: &str, f: impl FnOnce(&mut T)) {
    let Some((r, w)) = t.need(name, io::pipe2(true, false)) else { return };
    match process::fork() {
        Err(e) => t.fail(name, format_args!("fork failed with {:?}", En(e))),
        Ok(Fork::Child) => {
            drop(r);
            PASSED.store(0, Relaxed);
            FAILED.store(0, Relaxed);
            REPORT_FD.store(w.raw(), Relaxed);
            f(&mut T::new());
            REPORT_FD.store(-1, Relaxed);
            send_counts(w.as_fd());
            process::exit_group(0);
        }
        Ok(Fork::Parent(pid)) => {
            drop(w);
            let mut counts = [0u8; 8];
            let got = fs::read_full(&r, &mut counts);
            let status = wait(pid);
            if got == Ok(8) {
                PASSED.fetch_add(u32::from_ne_bytes([counts[0], counts[1], counts[2], counts[3]]), Relaxed);
                FAILED.fetch_add(u32::from_ne_bytes([counts[4], counts[5], counts[6], counts[7]]), Relaxed);
            }
            if got != Ok(8) || status.map(|s| s.exit_code()) != Ok(Some(0)) {
                t.fail(name, format_args!("section child did not finish: report {:?}, wait status {:?}",
                                          Res(&got), Res(&status)));
            }
        }
    }
}

/// Forks a child that runs `f` and exits with its result.
pub fn spawn(f: impl FnOnce() -> i32) -> Result<Pid> {
    match process::fork()? {
        Fork::Child => process::exit_group(f()),
        Fork::Parent(pid) => Ok(pid),
    }
}

/// wait4(pid, 0), retried on EINTR; the child must exist.
pub fn wait(pid: Pid) -> Result<WaitStatus> {
    match syscall::errno::retry(|| process::wait4(pid.0, WaitFlags::EMPTY))? {
        Some((p, s)) if p == pid => Ok(s),
        _ => Err(Errno::ECHILD),
    }
}
