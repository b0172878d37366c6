//! The supervision benchmark's guest-side programs (`cargo xtask bench --only supervision`,
//! xtask/src/bench_supervise.rs):
//!
//! - `--orphans N`: forks N children that block reading a pipe whose write end only this
//!   process holds, prints `T0_NS MIN_PID MAX_PID` (T0: CLOCK_MONOTONIC in ns, taken last)
//!   and exits. The children are re-parented to PID 1 (or the nearest subreaper) and all
//!   see end-of-file at once; each then exits 0. Their stdio is /dev/null, so that nothing
//!   (a shell's `$(...)`) waits for them. A failed fork ends the forking: the line still
//!   comes, with the children made so far, and the exit status is 1.
//!   With `--watch`, a watcher process forked before the children gets `T0_NS MIN_PID MAX_PID`
//!   from the parent over a pipe and counts as `--count-zombies` does, printing its line to the
//!   same stdout: it is already waiting when the children wake, whereas a command started
//!   after the parent's exit waits behind every runnable child for its fork and exec.
//! - `--children N`: the baseline. The same N blocked children, released by closing the
//!   write end, reaped by this process itself with a blocking wait4(-1); prints
//!   `children: elapsed_us=.. reaped=..` (from the release to the last reap).
//! - `--count-zombies T0_NS MIN_PID MAX_PID`: polls `/proc` (one getdents pass every 5 ms)
//!   until no child of `--orphans` is left: no pid in MIN..=MAX, or, once fewer than 64 are
//!   (another process may have got a pid in the range), none named `bench-orphan`. It then reads the state of every process and
//!   counts the zombies (`Z`). Prints one line of `key=value` fields:
//!   `count-zombies: elapsed_us=.. first_poll_us=.. first_left=.. polls=.. left=.. zombies=..`
//!   (elapsed and first poll counted from T0); exits 0 only if none is left and no zombie
//!   exists. Gives up after 120 s.
//! - `--respawn-probe MARKER [--kmsg PATH] [--delay-ms N]`: writes `respawn-probe: start
//!   MARKER` to PATH (default /dev/kmsg) first thing. If MARKER exists it then sleeps for
//!   ever; otherwise it creates MARKER, sleeps N ms (default 0), writes `respawn-probe: exit
//!   MARKER` and exits 1. Under a unit with `Restart=on-failure` and `RestartSec=0` the two
//!   kernel timestamps give the respawn latency: the old process's last write to the new
//!   one's first, right after its exec.

use crate::{en, parse_u64, EXIT_ERROR, EXIT_OK, EXIT_USAGE};
use core::ffi::CStr;
use syscall::entry::Args;
use syscall::errno::retry;
use syscall::fs::{self, Dirents, OFlags, Seek};
use syscall::process::{self, Fork};
use syscall::time::{self, Clock, Timespec};
use syscall::{Errno, OwnedFd};

/// How long `--count-zombies` waits for the orphans to go.
const COUNT_TIMEOUT_MS: u64 = 120_000;
/// Between two polls of /proc.
const POLL_MS: u64 = 5;
/// The command name of `--orphans`' children, which `--count-zombies` checks once few pids
/// of the range are left (another process may have got a pid inside it).
const ORPHAN_NAME: &CStr = c"bench-orphan";
/// At most this many pids left in the range are checked by name.
const CHECK_NAMES_BELOW: u64 = 64;

fn ns(t: Timespec) -> u64 {
    (t.sec.max(0) as u64).saturating_mul(1_000_000_000).saturating_add(t.nsec.max(0) as u64)
}

fn monotonic_ns() -> u64 {
    ns(time::clock_gettime(Clock::Monotonic))
}

fn arg_u64(args: &Args, i: usize) -> Option<u64> {
    parse_u64(args.arg(i)?.to_bytes())
}

fn usage() -> ! {
    say!("{}", crate::USAGE);
    process::exit_group(EXIT_USAGE);
}

/// Dispatches the bench modes; returns if `args` names none of them.
pub fn main(args: &Args) {
    match args.arg(1).map(CStr::to_bytes) {
        Some(b"--orphans") => {
            let watch = args.arg(3) == Some(c"--watch");
            let Some(n) = arg_u64(args, 2).filter(|_| args.argc() == 3 || (watch && args.argc() == 4)) else { usage() };
            process::exit_group(orphans(n, watch))
        }
        Some(b"--children") => {
            let Some(n) = arg_u64(args, 2).filter(|_| args.argc() == 3) else { usage() };
            process::exit_group(children(n))
        }
        Some(b"--count-zombies") => {
            let (Some(t0), Some(min), Some(max)) = (arg_u64(args, 2), arg_u64(args, 3), arg_u64(args, 4)) else { usage() };
            if args.argc() != 5 || min > max {
                usage();
            }
            process::exit_group(count_zombies(t0, min, max))
        }
        Some(b"--respawn-probe") => {
            let Some(marker) = args.arg(2) else { usage() };
            let (mut kmsg, mut delay_ms) = (c"/dev/kmsg", 0u64);
            let mut i = 3;
            while let Some(a) = args.arg(i) {
                match (a.to_bytes(), args.arg(i + 1)) {
                    (b"--kmsg", Some(v)) => kmsg = v,
                    (b"--delay-ms", Some(v)) => delay_ms = parse_u64(v.to_bytes()).unwrap_or_else(|| usage()),
                    _ => usage(),
                }
                i += 2;
            }
            process::exit_group(respawn_probe(marker, kmsg, delay_ms))
        }
        _ => {}
    }
}

/// The pipe the children block on and /dev/null for their stdio.
fn orphan_pipe() -> Result<(OwnedFd, OwnedFd, OwnedFd), i32> {
    let (r, w) = syscall::io::pipe2(true, false).map_err(|e| {
        say!("notify-daemon: pipe2: {}", en(e));
        EXIT_ERROR
    })?;
    let null = fs::open(c"/dev/null", OFlags::RDWR | OFlags::CLOEXEC, 0).map_err(|e| {
        say!("notify-daemon: open /dev/null: {}", en(e));
        EXIT_ERROR
    })?;
    Ok((r, w, null))
}

/// Forks up to `n` children blocked on `r`; returns (made, min pid, max pid, status).
fn fork_children(n: u64, r: &OwnedFd, w: &OwnedFd, null: &OwnedFd, also_close: Option<&OwnedFd>) -> (u64, u64, u64, i32) {
    let (mut min, mut max, mut made) = (u64::MAX, 0u64, 0u64);
    while made < n {
        match process::fork() {
            Ok(Fork::Child) => orphan(r, w, null, also_close),
            Ok(Fork::Parent(pid)) => {
                let p = u64::try_from(pid.0).unwrap_or(0);
                min = min.min(p);
                max = max.max(p);
                made += 1;
            }
            Err(e) => {
                say!("notify-daemon: fork {} of {}: {}", made + 1, n, en(e));
                return (made, if made == 0 { 0 } else { min }, max, EXIT_ERROR);
            }
        }
    }
    (made, if made == 0 { 0 } else { min }, max, EXIT_OK)
}

fn orphans(n: u64, watch: bool) -> i32 {
    let (r, w, null) = match orphan_pipe() {
        Ok(p) => p,
        Err(code) => return code,
    };
    // The watcher is forked first, so that it is not in the children's pid range and is
    // already waiting (in a sleep, which the scheduler favours) when they all wake up.
    let report = if watch {
        let (rr, rw) = match syscall::io::pipe2(true, false) {
            Ok(p) => p,
            Err(e) => {
                say!("notify-daemon: pipe2: {}", en(e));
                return EXIT_ERROR;
            }
        };
        match process::fork() {
            Ok(Fork::Child) => {
                drop(w);
                drop(rw);
                watcher(rr)
            }
            Ok(Fork::Parent(_)) => Some(rw),
            Err(e) => {
                say!("notify-daemon: fork the watcher: {}", en(e));
                return EXIT_ERROR;
            }
        }
    } else {
        None
    };
    let (_, min, max, status) = fork_children(n, &r, &w, &null, report.as_ref());
    let t0 = monotonic_ns();
    say!("{} {} {}", t0, min, max);
    if let Some(rw) = report {
        let mut l = crate::out::Line::new();
        let _ = core::fmt::Write::write_fmt(&mut l, format_args!("{t0} {min} {max}\n"));
        let _ = fs::write_all(&rw, l.as_bytes());
    }
    // Exiting closes the write end: every child sees end-of-file.
    status
}

/// The `--watch` process of `--orphans`: reads `T0 MIN MAX` from the parent, then counts as
/// `--count-zombies` does.
fn watcher(from: OwnedFd) -> ! {
    let mut buf = [0u8; 128];
    let mut len = 0;
    while !buf.get(..len).unwrap_or(&[]).contains(&b'\n') {
        match retry(|| fs::read(&from, buf.get_mut(len..).unwrap_or(&mut []))) {
            Ok(0) | Err(_) => process::exit_group(EXIT_ERROR),
            Ok(k) => len += k,
        }
    }
    let line = buf.get(..len).unwrap_or(&[]);
    let mut f = line.split(|&b| b == b' ' || b == b'\n').filter_map(parse_u64);
    match (f.next(), f.next(), f.next()) {
        (Some(t0), Some(min), Some(max)) => process::exit_group(count_zombies(t0, min, max)),
        _ => process::exit_group(EXIT_ERROR),
    }
}

/// `--children N`: the baseline. The same N blocked children, released by closing the write
/// end; this process reaps them itself with blocking wait4(-1) and prints
/// `children: elapsed_us=.. reaped=..` (from the close to the last reap).
fn children(n: u64) -> i32 {
    let (r, w, null) = match orphan_pipe() {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (made, _, _, status) = fork_children(n, &r, &w, &null, None);
    let t0 = monotonic_ns();
    drop(w);
    let mut reaped = 0u64;
    loop {
        match process::wait4(-1, syscall::process::WaitFlags::EMPTY) {
            Ok(Some(_)) => reaped += 1,
            Ok(None) | Err(Errno::EINTR) => {}
            Err(_) => break,
        }
    }
    say!("children: elapsed_us={} reaped={}", monotonic_ns().saturating_sub(t0) / 1000, reaped);
    if reaped == made { status } else { EXIT_ERROR }
}

/// A child of `--orphans` and `--children`: stdio on /dev/null, its copies of the write ends
/// closed, then it waits for end-of-file. (It exits without returning: the parent's
/// `OwnedFd`s are never dropped here, so closing by number cannot close a reused fd.)
fn orphan(r: &OwnedFd, w: &OwnedFd, null: &OwnedFd, also_close: Option<&OwnedFd>) -> ! {
    let _ = fs::close(OwnedFd::adopt(w.raw()));
    if let Some(fd) = also_close {
        let _ = fs::close(OwnedFd::adopt(fd.raw()));
    }
    let _ = process::set_name(ORPHAN_NAME);
    for fd in 0..3 {
        if let Ok(d) = syscall::io::dup3(null, fd, false) {
            let _ = d.into_raw();
        }
    }
    let mut b = [0u8; 1];
    let _ = retry(|| fs::read(r, &mut b));
    process::exit_group(0)
}

/// Whether `name` is a decimal number within `min..=max`.
fn pid_in(name: &[u8], min: u64, max: u64) -> Option<u64> {
    parse_u64(name).filter(|p| (min..=max).contains(p))
}

/// Counts the entries of /proc whose name is a pid in `min..=max`; once fewer than
/// [`CHECK_NAMES_BELOW`] are left, only those whose command name is [`ORPHAN_NAME`].
fn count_pids(proc_: &OwnedFd, buf: &mut [u8], min: u64, max: u64) -> Result<u64, Errno> {
    let mut few = [0u64; CHECK_NAMES_BELOW as usize];
    fs::lseek(proc_, Seek::Set(0))?;
    let mut n = 0u64;
    loop {
        let got = retry(|| fs::getdents64(proc_, buf))?;
        if got == 0 {
            break;
        }
        for p in Dirents::new(buf.get(..got).unwrap_or(&[])).filter_map(|d| pid_in(d.name.to_bytes(), min, max)) {
            if let Some(slot) = usize::try_from(n).ok().and_then(|i| few.get_mut(i)) {
                *slot = p;
            }
            n += 1;
        }
    }
    if n >= CHECK_NAMES_BELOW {
        return Ok(n);
    }
    let mut stat = [0u8; 512];
    Ok(few.iter().take(n as usize).filter(|&&p| read_stat(p, &mut stat).is_some_and(|s| comm_of(s) == Some(ORPHAN_NAME.to_bytes()))).count() as u64)
}

/// Reads `/proc/PID/stat` into `buf`; None if the process is gone.
fn read_stat(pid: u64, buf: &mut [u8]) -> Option<&[u8]> {
    let mut path = crate::out::Line::new();
    let _ = core::fmt::Write::write_fmt(&mut path, format_args!("/proc/{pid}/stat\0"));
    let p = CStr::from_bytes_until_nul(path.as_bytes()).ok()?;
    let fd = fs::open(p, OFlags::RDONLY | OFlags::CLOEXEC, 0).ok()?;
    let n = fs::read_full(&fd, buf).ok()?;
    buf.get(..n)
}

/// The command name of `/proc/PID/stat`: between the first `(` and the last `)`.
fn comm_of(stat: &[u8]) -> Option<&[u8]> {
    let open = stat.iter().position(|&c| c == b'(')?;
    let close = stat.iter().rposition(|&c| c == b')')?;
    stat.get(open + 1..close)
}

/// The state letter of `/proc/PID/stat` (after the `)` that ends the command name).
fn state_of(stat: &[u8]) -> Option<u8> {
    let close = stat.iter().rposition(|&c| c == b')')?;
    stat.get(close + 2).copied()
}

/// Counts the zombies among all processes.
fn count_all_zombies(proc_: &OwnedFd, buf: &mut [u8]) -> Result<u64, Errno> {
    fs::lseek(proc_, Seek::Set(0))?;
    let mut zombies = 0u64;
    let mut stat = [0u8; 512];
    loop {
        let got = retry(|| fs::getdents64(proc_, buf))?;
        if got == 0 {
            return Ok(zombies);
        }
        for p in Dirents::new(buf.get(..got).unwrap_or(&[])).filter_map(|d| pid_in(d.name.to_bytes(), 1, u64::MAX)) {
            // A process that went meanwhile is not a zombie.
            if read_stat(p, &mut stat).and_then(state_of) == Some(b'Z') {
                zombies += 1;
            }
        }
    }
}

fn count_zombies(t0: u64, min: u64, max: u64) -> i32 {
    let proc_ = match fs::open(c"/proc", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, 0) {
        Ok(fd) => fd,
        Err(e) => {
            say!("notify-daemon: open /proc: {}", en(e));
            return EXIT_ERROR;
        }
    };
    let mut buf = [0u8; 8192];
    let started = monotonic_ns();
    let (mut polls, mut first) = (0u64, None);
    let (left, end) = loop {
        let left = match count_pids(&proc_, &mut buf, min, max) {
            Ok(n) => n,
            Err(e) => {
                say!("notify-daemon: reading /proc: {}", en(e));
                return EXIT_ERROR;
            }
        };
        let now = monotonic_ns();
        polls += 1;
        if first.is_none() {
            first = Some((now, left));
        }
        if left == 0 || now.saturating_sub(started) > COUNT_TIMEOUT_MS * 1_000_000 {
            break (left, now);
        }
        let _ = time::sleep(Timespec::from_millis(POLL_MS));
    };
    let zombies = match count_all_zombies(&proc_, &mut buf) {
        Ok(z) => z,
        Err(e) => {
            say!("notify-daemon: reading /proc: {}", en(e));
            return EXIT_ERROR;
        }
    };
    let (first_at, first_left) = first.unwrap_or((end, left));
    let us = |t: u64| t.saturating_sub(t0) / 1000;
    say!(
        "count-zombies: elapsed_us={} first_poll_us={} first_left={} polls={} left={} zombies={}",
        us(end),
        us(first_at),
        first_left,
        polls,
        left,
        zombies
    );
    if left == 0 && zombies == 0 { EXIT_OK } else { EXIT_ERROR }
}

fn write_line(to: &CStr, what: &str, marker: &CStr) -> Result<(), Errno> {
    let fd = fs::open(to, OFlags::WRONLY | OFlags::APPEND | OFlags::CREAT | OFlags::CLOEXEC, 0o644)?;
    let mut l = crate::out::Line::new();
    let _ = core::fmt::Write::write_fmt(&mut l, format_args!("respawn-probe: {} {}\n", what, marker.to_str().unwrap_or("?")));
    fs::write_all(&fd, l.as_bytes())
}

fn respawn_probe(marker: &CStr, kmsg: &CStr, delay_ms: u64) -> i32 {
    if let Err(e) = write_line(kmsg, "start", marker) {
        say!("notify-daemon: writing to {:?}: {}", kmsg, en(e));
        return EXIT_ERROR;
    }
    match fs::open(marker, OFlags::WRONLY | OFlags::CREAT | OFlags::EXCL | OFlags::CLOEXEC, 0o644) {
        Err(Errno::EEXIST) => loop {
            let _ = time::sleep(Timespec::from_millis(3_600_000));
        },
        Err(e) => {
            say!("notify-daemon: creating {:?}: {}", marker, en(e));
            EXIT_ERROR
        }
        Ok(_) => {
            let _ = time::sleep(Timespec::from_millis(delay_ms));
            match write_line(kmsg, "exit", marker) {
                Ok(()) => EXIT_ERROR,
                Err(e) => {
                    say!("notify-daemon: writing to {:?}: {}", kmsg, en(e));
                    EXIT_USAGE
                }
            }
        }
    }
}
