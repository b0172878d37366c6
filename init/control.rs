//! The control client: the same binary, run as any process other than PID 1, talks to the
//! manager over /run/autoinit/control (`autoinit status`, `autoinit stop NAME`, ...).
//! Exit status 0 on success; 1 with the manager's one-line reason; 2 for bad usage; 3 when
//! the manager cannot be reached.

use crate::control_proto as proto;
use crate::outlog;
use crate::services::CONTROL_SOCKET;
use syscall::entry::Args;
use syscall::fs::{self, OFlags};
use syscall::net::{self, SocketType};
use syscall::process;
use syscall::{BorrowedFd, Errno};

const USAGE: &str = "\
usage: autoinit COMMAND [ARGS]
  status [NAME]         services: state, pid, restarts, uptime, last exit
  start|stop|restart NAME
  reload                read the unit files again (start new, stop removed, restart changed)
  log NAME              the service's lines from /dev/kmsg
  upgrade PATH [--persist] [--settle SECONDS]
                        swap the system image live, restart every unit (docs/upgrade.md)
  rollback              roll the upgrade in progress back
  poweroff|reboot|halt
autoinit itself is an init system: the kernel starts it as PID 1.
";

/// Largest response read (the status table of every unit fits).
pub const RESPONSE_BYTES: usize = 20480;

fn out(b: &[u8]) {
    let _ = fs::write_all(BorrowedFd::STDOUT, b);
}

fn err_line(parts: &[&[u8]]) {
    let mut l = crate::log::Line::new();
    l.push(b"autoinit: ");
    for p in parts {
        l.push(p);
    }
    l.end();
    let _ = fs::write_all(BorrowedFd::STDERR, l.as_bytes());
}

pub fn main(args: Args) -> ! {
    // The request is the arguments joined by single spaces.
    let mut req = [0u8; proto::REQUEST_BYTES];
    let mut len = 0usize;
    for (k, a) in args.args().skip(1).enumerate() {
        let bytes = a.to_bytes();
        if k > 0 {
            push(&mut req, &mut len, b" ");
        }
        if !push(&mut req, &mut len, bytes) {
            err_line(&[b"request too long"]);
            process::exit_group(2);
        }
    }
    let words = req.get(..len).unwrap_or(&[]);
    match words {
        b"" | b"help" | b"--help" | b"-h" => {
            let _ = fs::write_all(if words.is_empty() { BorrowedFd::STDERR } else { BorrowedFd::STDOUT }, USAGE.as_bytes());
            process::exit_group(if words.is_empty() { 2 } else { 0 });
        }
        _ => {}
    }
    if let Some(name) = words.strip_prefix(b"log ") {
        process::exit_group(show_log(name));
    }
    if !push(&mut req, &mut len, b"\n") {
        err_line(&[b"request too long"]);
        process::exit_group(2);
    }
    // Checked here first, so that a typo is answered without bothering PID 1.
    if let Err(e) = proto::parse_request(req.get(..len).unwrap_or(&[])) {
        err_line(&[e.message().as_bytes()]);
        let _ = fs::write_all(BorrowedFd::STDERR, USAGE.as_bytes());
        process::exit_group(2);
    }
    process::exit_group(call(req.get(..len).unwrap_or(&[])))
}

fn push(buf: &mut [u8], len: &mut usize, b: &[u8]) -> bool {
    let end = *len + b.len();
    match buf.get_mut(*len..end) {
        Some(d) => {
            d.copy_from_slice(b);
            *len = end;
            true
        }
        None => false,
    }
}

fn call(req: &[u8]) -> i32 {
    let fd = match net::socket_unix(SocketType::Stream, false) {
        Ok(fd) => fd,
        Err(e) => {
            err_line(&[b"socket: ", e.name().unwrap_or("error").as_bytes()]);
            return 3;
        }
    };
    if let Err(e) = net::connect_unix(&fd, CONTROL_SOCKET) {
        err_line(&[b"connect ", CONTROL_SOCKET.to_bytes(), b": ", e.name().unwrap_or("error").as_bytes(), b" (is autoinit running as PID 1 with services?)"]);
        return 3;
    }
    if let Err(e) = fs::write_all(&fd, req) {
        err_line(&[b"send request: ", e.name().unwrap_or("error").as_bytes()]);
        return 3;
    }
    let mut resp = [0u8; RESPONSE_BYTES];
    let n = match fs::read_full(&fd, &mut resp) {
        Ok(n) => n,
        Err(e) => {
            err_line(&[b"read response: ", e.name().unwrap_or("error").as_bytes()]);
            return 3;
        }
    };
    match proto::split_response(resp.get(..n).unwrap_or(&[])) {
        Ok((proto::Status::Ok, body)) => {
            out(body);
            0
        }
        Ok((proto::Status::Error(reason), body)) => {
            out(body);
            err_line(&[reason.as_bytes()]);
            1
        }
        Err(e) => {
            err_line(&[b"bad response: ", e.message().as_bytes()]);
            3
        }
    }
}

/// Prints the lines of service `name` (and autoinit's lines about it) from /dev/kmsg.
fn show_log(name: &[u8]) -> i32 {
    let Ok(name) = core::str::from_utf8(name) else { return 2 };
    let name = crate::unit::service_name(name).unwrap_or(name);
    let fd = match fs::open(c"/dev/kmsg", OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC, 0) {
        Ok(fd) => fd,
        Err(e) => {
            err_line(&[b"open /dev/kmsg: ", e.name().unwrap_or("error").as_bytes()]);
            return 1;
        }
    };
    let mut rec = [0u8; 8192];
    loop {
        match fs::read(&fd, &mut rec) {
            Ok(0) | Err(Errno::EAGAIN) => return 0,
            // Records overwritten while we read: carry on with the next one.
            Err(Errno::EPIPE) | Err(Errno::EINTR) => continue,
            Err(e) => {
                err_line(&[b"read /dev/kmsg: ", e.name().unwrap_or("error").as_bytes()]);
                return 1;
            }
            Ok(n) => {
                let Some(r) = outlog::parse_kmsg_record(rec.get(..n).unwrap_or(&[])) else { continue };
                if outlog::is_line_of(r.text, name) {
                    out(r.text);
                    out(b"\n");
                }
            }
        }
    }
}
