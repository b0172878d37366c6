//! notify-daemon: a daemon that speaks systemd's readiness protocol, for the supervision
//! tests (`Type=notify`).
//!
//! `notify-daemon [--delay-ms N] [--fail] [--no-ready] [--mainpid-child]`
//!
//! 1. Reads `NOTIFY_SOCKET` (a path, or `@name` for an abstract socket); without it, prints
//!    a line and exits 2. An unknown argument is a usage line and exit 2.
//! 2. Sends `STATUS=starting`, then sleeps N ms (default 300).
//! 3. `--fail`: exits 3 before READY.
//! 4. `--mainpid-child`: forks; the parent sends `MAINPID=<child>` and exits 0, and the child
//!    carries on as the main process (it waits until the parent has sent MAINPID).
//! 5. Unless `--no-ready`, sends `READY=1\nSTATUS=running`.
//! 6. Prints `notify-daemon: ready (pid N)` and waits for signals (a signalfd): SIGTERM
//!    sends `STOPPING=1`, prints `notify-daemon: stopping` and exits 0; SIGINT and SIGHUP
//!    are printed and ignored.
//!
//! A notification that cannot be sent is a line naming it and exit 1.
//!
//! `--orphans`, `--count-zombies` and `--respawn-probe` are the supervision benchmark's
//! programs (see `bench.rs`).
//!
//! `notify-daemon --self-test DIR` runs the daemon against its own socket (see
//! `self_test.rs`); `cargo xtask test --only syscalls` runs that under qemu-user.
#![no_std]
#![no_main]

#[macro_use]
mod out;
mod bench;
mod self_test;

use core::ffi::CStr;
use syscall::entry::Args;
use syscall::errno::retry;
use syscall::fs;
use syscall::net::{self, SocketType};
use syscall::process::{self, Fork};
use syscall::signal::{self, MaskHow, SfdFlags, SigSet, Signal};
use syscall::time::{self, Timespec};
use syscall::{AsFd, Errno};

pub const USAGE: &str = "usage: notify-daemon [--delay-ms N] [--fail] [--no-ready] [--mainpid-child] | --self-test DIR\n       \
                         notify-daemon --orphans N [--watch] | --children N | --count-zombies T0_NS MIN_PID MAX_PID | --respawn-probe MARKER [--kmsg PATH] [--delay-ms N]";

/// Exit codes.
pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_FAIL: i32 = 3;

/// The signals the daemon waits for; blocked from the start, so that one sent early stays
/// pending until the signalfd reads it.
const WAITED: SigSet = SigSet::EMPTY.with(Signal::TERM).with(Signal::INT).with(Signal::HUP);

#[derive(Debug, PartialEq, Eq)]
struct Options {
    delay_ms: u64,
    fail: bool,
    no_ready: bool,
    mainpid_child: bool,
}

fn parse(args: &Args) -> Result<Options, &'static CStr> {
    let mut o = Options { delay_ms: 300, fail: false, no_ready: false, mainpid_child: false };
    let mut it = args.args().skip(1);
    while let Some(a) = it.next() {
        match a.to_bytes() {
            b"--delay-ms" => {
                let v = it.next().ok_or(a)?;
                o.delay_ms = parse_u64(v.to_bytes()).ok_or(v)?;
            }
            b"--fail" => o.fail = true,
            b"--no-ready" => o.no_ready = true,
            b"--mainpid-child" => o.mainpid_child = true,
            _ => return Err(a),
        }
    }
    Ok(o)
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |v, &c| {
        let d = (c as char).to_digit(10)?;
        v.checked_mul(10)?.checked_add(d as u64)
    })
}

/// The value of `NAME=` in the environment.
pub fn env_value(args: &Args, prefix: &[u8]) -> Option<&'static CStr> {
    let e = args.env().find(|e| e.to_bytes().starts_with(prefix))?;
    CStr::from_bytes_with_nul(e.to_bytes_with_nul().get(prefix.len()..)?).ok()
}

/// An errno for messages.
pub fn en(e: Errno) -> &'static str {
    e.name().unwrap_or("unknown errno")
}

/// Sends one notification; on failure says which and returns EXIT_ERROR.
fn notify(sock: impl AsFd, to: &CStr, msg: &[u8]) -> Result<(), i32> {
    match retry(|| net::sendto_unix(&sock, msg, to)) {
        Ok(_) => Ok(()),
        Err(e) => {
            say!("notify-daemon: sending {:?} to NOTIFY_SOCKET={:?}: {}", out::B(msg), to, en(e));
            Err(EXIT_ERROR)
        }
    }
}

fn daemon(to: &CStr, o: &Options) -> Result<i32, i32> {
    if let Err(e) = signal::sigprocmask(MaskHow::Block, &WAITED) {
        say!("notify-daemon: blocking SIGTERM: {}", en(e));
        return Err(EXIT_ERROR);
    }
    let sock = net::socket_unix(SocketType::Datagram, false).map_err(|e| {
        say!("notify-daemon: socket: {}", en(e));
        EXIT_ERROR
    })?;
    notify(&sock, to, b"STATUS=starting")?;
    let _ = time::sleep(Timespec::from_millis(o.delay_ms));
    if o.fail {
        say!("notify-daemon: failing before READY, as asked");
        return Ok(EXIT_FAIL);
    }
    if o.mainpid_child {
        // The child goes on once the parent has sent MAINPID (the pipe's write end closes).
        let (r, w) = syscall::io::pipe2(true, false).map_err(|e| {
            say!("notify-daemon: pipe2: {}", en(e));
            EXIT_ERROR
        })?;
        match process::fork() {
            Err(e) => {
                say!("notify-daemon: fork: {}", en(e));
                return Err(EXIT_ERROR);
            }
            Ok(Fork::Parent(child)) => {
                let mut msg = out::Line::new();
                let _ = core::fmt::Write::write_fmt(&mut msg, format_args!("MAINPID={}", child.0));
                notify(&sock, to, msg.as_bytes())?;
                say!("notify-daemon: main process is now {}", child.0);
                drop(w);
                return Ok(EXIT_OK);
            }
            Ok(Fork::Child) => {
                drop(w);
                let mut b = [0u8; 1];
                let _ = retry(|| fs::read(&r, &mut b));
            }
        }
    }
    if !o.no_ready {
        notify(&sock, to, b"READY=1\nSTATUS=running")?;
    }
    say!("notify-daemon: ready (pid {})", process::getpid().0);
    let sfd = signal::signalfd(&WAITED, SfdFlags::CLOEXEC).map_err(|e| {
        say!("notify-daemon: signalfd: {}", en(e));
        EXIT_ERROR
    })?;
    loop {
        match retry(|| signal::read_signalfd(&sfd)) {
            Ok(Some(info)) if Signal(info.signo) == Signal::TERM => {
                notify(&sock, to, b"STOPPING=1")?;
                say!("notify-daemon: stopping");
                return Ok(EXIT_OK);
            }
            Ok(Some(info)) => say!("notify-daemon: signal {} ignored", info.signo),
            Ok(None) => {}
            Err(e) => {
                say!("notify-daemon: reading the signalfd: {}", en(e));
                return Err(EXIT_ERROR);
            }
        }
    }
}

/// Called by the syscall crate's `_start`.
// `no_mangle` is an unsafe attribute: this symbol name is the contract with `_start`.
#[unsafe(no_mangle)]
fn program_main(args: Args) -> ! {
    if args.arg(1) == Some(c"--self-test") {
        self_test::run(&args);
    }
    bench::main(&args);
    let o = match parse(&args) {
        Ok(o) => o,
        Err(bad) => {
            say!("notify-daemon: bad argument {:?}", bad);
            say!("{}", USAGE);
            process::exit_group(EXIT_USAGE);
        }
    };
    let Some(to) = env_value(&args, b"NOTIFY_SOCKET=").filter(|s| !s.is_empty()) else {
        say!("notify-daemon: NOTIFY_SOCKET is not set");
        process::exit_group(EXIT_USAGE);
    };
    match daemon(to, &o) {
        Ok(code) | Err(code) => process::exit_group(code),
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    say!("notify-daemon: panic: {}", info.message());
    process::exit_group(101);
}
