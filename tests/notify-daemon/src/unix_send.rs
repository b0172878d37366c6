//! unix-send: writes raw bytes to a unix stream socket and prints what comes back, so that the
//! supervision tests can send autoinit's control socket what its own client never would
//! (garbage, control bytes, an oversized request). busybox's `nc` has no unix sockets.
//!
//! `unix-send SOCKET TEXT`      sends TEXT, with `\n`, `\t`, `\\` and `\xHH` unescaped
//! `unix-send SOCKET --fill N`  sends N bytes of `x` (no newline)
//!
//! Then reads until end-of-file (or 10 s pass) and copies the answer to stdout. Exit status:
//! 0 when an answer came, 1 when the peer closed without one, 2 for bad usage, 3 when the
//! socket cannot be reached. A send that fails part-way (the peer closed on an oversized
//! request) is not an error: the answer is still read.
#![no_std]
#![no_main]

#[macro_use]
mod out;

use syscall::entry::Args;
use syscall::errno::retry;
use syscall::fs;
use syscall::net::{self, SocketType};
use syscall::process;
use syscall::{BorrowedFd, Errno};

const USAGE: &str = "usage: unix-send SOCKET TEXT | unix-send SOCKET --fill N";
/// Largest request this tool builds.
const MAX_SEND: usize = 16384;
/// How long to wait for the answer.
const RECV_TIMEOUT_MS: u64 = 10_000;

/// `text` with its escapes resolved into `out`; returns the length, None for a bad escape or
/// too long a result.
fn unescape(text: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut n = 0usize;
    let mut i = 0usize;
    while let Some(&c) = text.get(i) {
        let (byte, used) = if c == b'\\' {
            match text.get(i + 1)? {
                b'n' => (b'\n', 2),
                b't' => (b'\t', 2),
                b'\\' => (b'\\', 2),
                b'x' => {
                    let hex = core::str::from_utf8(text.get(i + 2..i + 4)?).ok()?;
                    (u8::from_str_radix(hex, 16).ok()?, 4)
                }
                _ => return None,
            }
        } else {
            (c, 1)
        };
        *out.get_mut(n)? = byte;
        n += 1;
        i += used;
    }
    Some(n)
}

fn parse_usize(s: &[u8]) -> Option<usize> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0usize, |v, &c| v.checked_mul(10)?.checked_add((c as char).to_digit(10)? as usize))
}

fn en(e: Errno) -> &'static str {
    e.name().unwrap_or("unknown errno")
}

fn run(args: &Args, buf: &mut [u8; MAX_SEND]) -> i32 {
    let (Some(path), Some(what)) = (args.arg(1), args.arg(2)) else {
        say!("{}", USAGE);
        return 2;
    };
    let len = if what.to_bytes() == b"--fill" {
        match args.arg(3).and_then(|n| parse_usize(n.to_bytes())).filter(|&n| n <= MAX_SEND) {
            Some(n) => {
                buf.iter_mut().take(n).for_each(|b| *b = b'x');
                n
            }
            None => {
                say!("unix-send: --fill needs a count up to {}", MAX_SEND);
                return 2;
            }
        }
    } else {
        match unescape(what.to_bytes(), buf) {
            Some(n) => n,
            None => {
                say!("unix-send: bad escape in {:?}, or longer than {} bytes", out::B(what.to_bytes()), MAX_SEND);
                return 2;
            }
        }
    };
    let sock = match net::socket_unix(SocketType::Stream, false) {
        Ok(s) => s,
        Err(e) => {
            say!("unix-send: socket: {}", en(e));
            return 3;
        }
    };
    if let Err(e) = retry(|| net::connect_unix(&sock, path)) {
        say!("unix-send: connect {:?}: {}", path, en(e));
        return 3;
    }
    let _ = net::set_recv_timeout(&sock, RECV_TIMEOUT_MS);
    let mut sent = 0usize;
    while let Some(rest) = buf.get(sent..len).filter(|r| !r.is_empty()) {
        match retry(|| net::sendmsg(&sock, rest, net::MSG_NOSIGNAL)) {
            Ok(n) => sent += n,
            Err(e) => {
                say!("unix-send: sent {} of {} bytes: {}", sent, len, en(e));
                break;
            }
        }
    }
    let mut got = 0usize;
    let mut answer = [0u8; 4096];
    loop {
        match retry(|| fs::read(&sock, &mut answer)) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                let _ = fs::write_all(BorrowedFd::STDOUT, answer.get(..n).unwrap_or(&[]));
            }
            // The peer closed with our request unread: what it answered was read already.
            Err(Errno::ECONNRESET) => break,
            Err(e) => {
                say!("unix-send: reading the answer: {}", en(e));
                break;
            }
        }
    }
    if got == 0 {
        say!("unix-send: no answer");
        return 1;
    }
    0
}

/// Called by the syscall crate's `_start`.
// `no_mangle` is an unsafe attribute: this symbol name is the contract with `_start`.
#[unsafe(no_mangle)]
fn program_main(args: Args) -> ! {
    let mut buf = [0u8; MAX_SEND];
    process::exit_group(run(&args, &mut buf))
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    say!("unix-send: panic: {}", info.message());
    process::exit_group(101);
}
