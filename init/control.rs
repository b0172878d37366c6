//! The control client: the same binary, run as any process other than PID 1, talks to the
//! manager over /run/autoinit/control (`autoinit status`, `autoinit stop NAME`, ...).
//! Exit status 0 on success; 1 with the manager's one-line reason; 2 for bad usage; 3 when
//! the manager cannot be reached.

use crate::control_proto as proto;
use crate::outlog;
use crate::services::CONTROL_SOCKET;
use syscall::entry::Args;
use crate::boot::Path;
use core::ffi::CStr;
use syscall::fs::{self, AtFlags, OFlags, StatxMask};
use syscall::net::{self, SocketType};
use syscall::process::{self, NsFlags};
use syscall::{BorrowedFd, Errno};

const USAGE: &str = "\
usage: autoinit COMMAND [ARGS]
  status [NAME]         services: state, pid, restarts, uptime, last exit
  start|stop|restart NAME
  reload                read the unit files again (start new, stop removed, restart changed)
  log NAME              the service's lines from /dev/kmsg
  exec NAME -- CMD...   run CMD inside the running service's namespaces and cgroup
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
    if words.starts_with(b"exec ") || words == b"exec" {
        process::exit_group(exec_in(&args));
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
    let mut resp = [0u8; RESPONSE_BYTES];
    match query(req, &mut resp) {
        Ok(body) => {
            out(body);
            0
        }
        Err(code) => code,
    }
}

/// Sends `req`; the body of an `ok` response, or the exit status after printing the error.
fn query<'r>(req: &[u8], resp: &'r mut [u8; RESPONSE_BYTES]) -> Result<&'r [u8], i32> {
    let fd = match net::socket_unix(SocketType::Stream, false) {
        Ok(fd) => fd,
        Err(e) => {
            err_line(&[b"socket: ", e.name().unwrap_or("error").as_bytes()]);
            return Err(3);
        }
    };
    if let Err(e) = net::connect_unix(&fd, CONTROL_SOCKET) {
        err_line(&[b"connect ", CONTROL_SOCKET.to_bytes(), b": ", e.name().unwrap_or("error").as_bytes(), b" (is autoinit running as PID 1 with services?)"]);
        return Err(3);
    }
    // The manager answers a non-root client at once and closes: the send may then fail
    // (EPIPE, and no SIGPIPE thanks to MSG_NOSIGNAL) while its answer waits to be read.
    let sent = send_all(&fd, req);
    let n = match read_answer(&fd, resp.as_mut_slice()) {
        Ok(n) => n,
        Err(e) => {
            err_line(&[b"read response: ", e.name().unwrap_or("error").as_bytes()]);
            return Err(3);
        }
    };
    if n == 0 {
        if let Err(e) = sent {
            err_line(&[b"send request: ", e.name().unwrap_or("error").as_bytes()]);
            return Err(3);
        }
    }
    match proto::split_response(resp.get(..n).unwrap_or(&[])) {
        Ok((proto::Status::Ok, body)) => Ok(body),
        Ok((proto::Status::Error(reason), body)) => {
            out(body);
            err_line(&[reason.as_bytes()]);
            Err(1)
        }
        Err(e) => {
            err_line(&[b"bad response: ", e.message().as_bytes()]);
            Err(3)
        }
    }
}

/// Sends all of `req` without risking SIGPIPE.
fn send_all(fd: &syscall::OwnedFd, mut req: &[u8]) -> Result<(), Errno> {
    while !req.is_empty() {
        match net::sendmsg(fd, req, net::MSG_NOSIGNAL) {
            Ok(0) => return Err(Errno::EIO),
            Ok(n) => req = req.get(n..).unwrap_or(&[]),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads the answer until end-of-file. A reset after some bytes (the manager closed with our
/// request unread) ends the answer; it is not an error.
fn read_answer(fd: &syscall::OwnedFd, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut done = 0usize;
    while let Some(rest) = buf.get_mut(done..).filter(|r| !r.is_empty()) {
        match fs::read(fd, rest) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(Errno::EINTR) => {}
            Err(Errno::ECONNRESET) if done > 0 => break,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
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

/// Namespaces `exec` joins, in this order: every one but the user namespace first (they
/// belong to the host's user namespace, where this client is root), the user namespace last.
const NAMESPACES: [(&CStr, &CStr, NsFlags); 7] = [
    (c"cgroup", c"/proc/self/ns/cgroup", NsFlags::NEWCGROUP),
    (c"ipc", c"/proc/self/ns/ipc", NsFlags::NEWIPC),
    (c"uts", c"/proc/self/ns/uts", NsFlags::NEWUTS),
    (c"net", c"/proc/self/ns/net", NsFlags::NEWNET),
    (c"pid", c"/proc/self/ns/pid", NsFlags::NEWPID),
    (c"mnt", c"/proc/self/ns/mnt", NsFlags::NEWNS),
    (c"user", c"/proc/self/ns/user", NsFlags::NEWUSER),
];

fn errno_text(e: Errno) -> &'static [u8] {
    e.name().unwrap_or("error").as_bytes()
}

/// `autoinit exec NAME -- CMD...`: joins the cgroup and the namespaces of the service's main
/// process, forks (a pid namespace applies to children), execs CMD there and exits with its
/// status (128 + N if signal N killed it). 1: the service is not running or a namespace could
/// not be joined; 2: usage; 3: the manager cannot be reached; 127: CMD not found.
fn exec_in(args: &Args) -> i32 {
    let (Some(name), Some(dashes), Some(program)) = (args.arg(2), args.arg(3), args.arg(4)) else {
        err_line(&[b"usage: exec NAME -- CMD..."]);
        return 2;
    };
    let Ok(name) = name.to_str() else { return 2 };
    if dashes.to_bytes() != b"--" {
        err_line(&[b"usage: exec NAME -- CMD..."]);
        return 2;
    }
    let mut req = [0u8; proto::REQUEST_BYTES];
    let mut len = 0usize;
    if !(push(&mut req, &mut len, b"status ") && push(&mut req, &mut len, name.as_bytes()) && push(&mut req, &mut len, b"\n")) {
        err_line(&[b"request too long"]);
        return 2;
    }
    let mut resp = [0u8; RESPONSE_BYTES];
    let body = match query(req.get(..len).unwrap_or(&[]), &mut resp) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let Some(pid) = proto::main_pid_in_status(body, name) else {
        err_line(&[name.as_bytes(), b": not running"]);
        return 1;
    };
    let mut digits = crate::log::Line::new();
    crate::log::Piece::put(&pid, &mut digits);
    // Into the unit's cgroup first (through the host's /sys), so that stop ends it too.
    let service = crate::unit::service_name(name).unwrap_or(name);
    if let Ok(p) = crate::cgroup::path(service, "cgroup.procs") {
        let _ = crate::cgroup::write_file(p.c(), b"0");
    }
    // Open every namespace before joining any: after the mount namespace, /proc is the
    // container's.
    let mut fds: [Option<syscall::OwnedFd>; 7] = Default::default();
    for (slot, (kind, own, _)) in fds.iter_mut().zip(NAMESPACES.iter()) {
        let Some(p) = Path::of(&[b"/proc/", digits.as_bytes(), b"/ns/", kind.to_bytes()]) else { return 1 };
        let theirs = match fs::open(p.c(), OFlags::RDONLY | OFlags::CLOEXEC, 0) {
            Ok(fd) => fd,
            Err(e) => {
                err_line(&[b"open ", p.bytes(), b": ", errno_text(e)]);
                return 1;
            }
        };
        let same = match (fs::fstatx(&theirs, StatxMask::INO), fs::statx(BorrowedFd::CWD, own, AtFlags::EMPTY, StatxMask::INO)) {
            (Ok(a), Ok(b)) => a.stx_ino == b.stx_ino && a.stx_dev_major == b.stx_dev_major && a.stx_dev_minor == b.stx_dev_minor,
            _ => false,
        };
        if !same {
            *slot = Some(theirs);
        }
    }
    let mut joined_user = false;
    for (fd, (kind, _, flag)) in fds.iter().zip(NAMESPACES.iter()) {
        let Some(fd) = fd else { continue };
        if let Err(e) = process::setns(fd, *flag) {
            err_line(&[b"setns ", kind.to_bytes(), b": ", errno_text(e)]);
            return 1;
        }
        joined_user |= *flag == NsFlags::NEWUSER;
    }
    if joined_user {
        // Root of the container's user namespace (its uid 0 maps to the documented range).
        let _ = process::setgroups(&[]);
        if process::setresgid(0, 0, 0).and_then(|()| process::setresuid(0, 0, 0)).is_err() {
            err_line(&[b"cannot become root in the user namespace"]);
            return 1;
        }
    }
    let _ = syscall::mount::chdir(c"/");
    match process::fork() {
        Ok(process::Fork::Child) => {
            let mut argv: process::ArgList<'_, 65> = process::ArgList::new();
            for a in args.args().skip(4) {
                if argv.push(a).is_err() {
                    err_line(&[b"too many arguments"]);
                    process::exit_group(2);
                }
            }
            let mut envp: process::ArgList<'_, 65> = process::ArgList::new();
            let _ = envp.push(c"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
            for e in args.env() {
                let b = e.to_bytes();
                if (b.starts_with(b"TERM=") || b.starts_with(b"LANG=")) && envp.push(e).is_err() {
                    break;
                }
            }
            let err = exec_search(program, &argv, &envp);
            err_line(&[b"exec ", program.to_bytes(), b": ", errno_text(err)]);
            process::exit_group(if err == Errno::ENOENT { 127 } else { 126 })
        }
        Ok(process::Fork::Parent(child)) => loop {
            match process::wait4(child.raw(), process::WaitFlags::EMPTY) {
                Ok(Some((_, st))) => return crate::container::exit_code_of(st),
                Err(Errno::EINTR) | Ok(None) => continue,
                Err(e) => {
                    err_line(&[b"wait: ", errno_text(e)]);
                    return 1;
                }
            }
        },
        Err(e) => {
            err_line(&[b"fork: ", errno_text(e)]);
            1
        }
    }
}

/// execve of `program`, looked up in the fixed search path when it has no `/`.
fn exec_search<const A: usize, const E: usize>(program: &CStr, argv: &process::ArgList<'_, A>, envp: &process::ArgList<'_, E>) -> Errno {
    if program.to_bytes().contains(&b'/') {
        return process::execve(program, argv, envp);
    }
    let mut last = Errno::ENOENT;
    let mut buf = [0u8; 256];
    for dir in crate::exec_line::SEARCH_PATH {
        if let Some(p) = crate::exec_line::search_candidate(dir, program, &mut buf) {
            last = process::execve(p, argv, envp);
            if last != Errno::ENOENT {
                break;
            }
        }
    }
    last
}
