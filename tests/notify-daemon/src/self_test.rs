//! `notify-daemon --self-test DIR`: plays the supervisor. It binds its own datagram socket
//! with SO_PASSCRED (an abstract name, and a path in DIR), starts this program with
//! `NOTIFY_SOCKET` pointing at it, and checks every notification's text and the sender's pid
//! in its credentials, the daemon's stdout lines and its exit status, for each option.
//!
//! Output as the syscall suite's: `ok NAME` or `FAIL NAME: ...` per check, then exactly
//! `notify-daemon self-test: N passed, M failed`; exit status 0 only if M == 0.
//!
//! Under qemu-user the host kernel cannot exec a foreign arch's binary: when execve answers
//! ENOEXEC, the child execs the qemu binary named by `SYSCALL_SUITE_QEMU` (set by xtask's
//! runner) instead.

use crate::out::B;
use crate::{env_value, en, EXIT_FAIL, EXIT_OK, EXIT_USAGE};
use core::ffi::CStr;
use core::fmt::{self, Debug, Write};
use syscall::entry::Args;
use syscall::fs;
use syscall::io::{self, PollFd, POLLIN};
use syscall::net::{self, SocketType, Ucred};
use syscall::process::{self, ArgList, Fork, Pid, WaitFlags};
use syscall::signal::Signal;
use syscall::time::{self, Clock, Timespec};
use syscall::{Errno, OwnedFd};

/// Set by xtask's qemu-user runner to the qemu binary.
const QEMU_ENV: &[u8] = b"SYSCALL_SUITE_QEMU=";
/// How long any one expected event may take (qemu-user is slow, hosts are busy).
const TIMEOUT_MS: u64 = 20_000;

/// Check bookkeeping.
struct T {
    passed: u32,
    failed: u32,
}

impl T {
    fn check(&mut self, name: &str, cond: bool, why: fmt::Arguments<'_>) -> bool {
        if cond {
            self.passed += 1;
            say!("ok {name}");
        } else {
            self.failed += 1;
            say!("FAIL {name}: {why}");
        }
        cond
    }

    fn eq<V: PartialEq + Debug>(&mut self, name: &str, got: V, want: V) -> bool {
        let same = got == want;
        self.check(name, same, format_args!("expected {want:?}, got {got:?}"))
    }
}

/// A NUL-terminated string built at run time.
struct CBuf {
    buf: [u8; 1024],
    len: usize,
}

impl CBuf {
    fn new(args: fmt::Arguments<'_>) -> CBuf {
        let mut c = CBuf { buf: [0; 1024], len: 0 };
        let _ = c.write_fmt(args);
        c
    }

    fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.buf).unwrap_or(c"")
    }

    fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

impl Write for CBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == 0 || self.len + 1 >= self.buf.len() {
                return Err(fmt::Error);
            }
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// A started daemon: its pid and the read end of its stdout.
struct Daemon {
    pid: Pid,
    out: Lines,
}

/// Lines read from a pipe, each waited for with a timeout.
struct Lines {
    fd: OwnedFd,
    buf: [u8; 1024],
    len: usize,
}

impl Lines {
    /// The next line (without its newline) into `line`; `None` at end of file or timeout.
    fn next(&mut self, line: &mut [u8; 256]) -> Option<usize> {
        let deadline = time::clock_gettime(Clock::Monotonic).as_millis().saturating_add(TIMEOUT_MS);
        loop {
            if let Some(nl) = self.buf.get(..self.len).and_then(|b| b.iter().position(|&c| c == b'\n')) {
                let n = nl.min(line.len());
                line.get_mut(..n)?.copy_from_slice(self.buf.get(..n)?);
                self.buf.copy_within(nl + 1..self.len, 0);
                self.len -= nl + 1;
                return Some(n);
            }
            let now = time::clock_gettime(Clock::Monotonic).as_millis();
            if now >= deadline || self.len == self.buf.len() {
                return None;
            }
            let mut fds = [PollFd::new(&self.fd, POLLIN)];
            let _ = io::ppoll(&mut fds, Some(&Timespec::from_millis(deadline - now)), None);
            match fs::read(&self.fd, self.buf.get_mut(self.len..)?) {
                Ok(0) => return None,
                Ok(n) => self.len += n,
                Err(Errno::EINTR) => {}
                Err(_) => return None,
            }
        }
    }
}

struct Ctx<'a> {
    me: &'a CStr,
    qemu: Option<&'a CStr>,
    rx: OwnedFd,
    t: T,
}

impl Ctx<'_> {
    /// Starts this program with `args` and the environment `env` (one entry or none),
    /// its stdout on a pipe.
    fn launch(&mut self, name: &str, args: &[&CStr], env: Option<&CStr>) -> Option<Daemon> {
        let (r, w) = match io::pipe2(true, false) {
            Ok(p) => p,
            Err(e) => {
                self.t.check(name, false, format_args!("pipe2: {}", en(e)));
                return None;
            }
        };
        match process::fork() {
            Err(e) => {
                self.t.check(name, false, format_args!("fork: {}", en(e)));
                None
            }
            Ok(Fork::Child) => {
                drop(r);
                // dup3 clears close-on-exec on fd 1; keep it open (into_raw).
                if io::dup3(&w, 1, false).map(|fd| fd.into_raw()).is_err() {
                    process::exit_group(126);
                }
                let mut envp: ArgList<'_, 2> = ArgList::new();
                if let Some(e) = env {
                    let _ = envp.push(e);
                }
                let mut argv: ArgList<'_, 16> = ArgList::new();
                for a in [self.me].iter().chain(args) {
                    let _ = argv.push(a);
                }
                let e = process::execve(self.me, &argv, &envp);
                if let (Errno::ENOEXEC, Some(q)) = (e, self.qemu) {
                    let mut qargv: ArgList<'_, 16> = ArgList::new();
                    for a in [q, self.me].iter().chain(args) {
                        let _ = qargv.push(a);
                    }
                    let _ = process::execve(q, &qargv, &envp);
                }
                process::exit_group(127);
            }
            Ok(Fork::Parent(pid)) => {
                drop(w);
                Some(Daemon { pid, out: Lines { fd: r, buf: [0; 1024], len: 0 } })
            }
        }
    }

    /// The next notification on our socket, waited for: (text, sender).
    fn recv<'b>(&self, buf: &'b mut [u8; 256]) -> Result<(&'b [u8], Option<Ucred>), Errno> {
        let mut fds = [PollFd::new(&self.rx, POLLIN)];
        let _ = io::ppoll(&mut fds, Some(&Timespec::from_millis(TIMEOUT_MS)), None);
        let (n, cred) = net::recvmsg_cred(&self.rx, buf)?;
        Ok((buf.get(..n).unwrap_or(&[]), cred))
    }

    /// Checks that the next notification is `want`, sent by `from` with our uid and gid.
    fn expect(&mut self, name: &str, want: &[u8], from: Pid) {
        let mut buf = [0u8; 256];
        let got = self.recv(&mut buf).map(|(m, c)| (B(m), c));
        let me = Ucred { pid: from.0, uid: process::getuid(), gid: process::getgid() };
        self.t.eq(name, got, Ok((B(want), Some(me))));
    }

    /// Checks that nothing more was sent.
    fn expect_nothing(&mut self, name: &str) {
        let mut buf = [0u8; 256];
        let got = net::recvmsg_cred(&self.rx, &mut buf).map(|(n, _)| B(buf.get(..n).unwrap_or(&[])));
        self.t.eq(name, got, Err(Errno::EAGAIN));
    }

    /// Checks the next stdout line of `d`.
    fn expect_line(&mut self, name: &str, d: &mut Daemon, want: &[u8]) {
        let mut line = [0u8; 256];
        let got = d.out.next(&mut line).map(|n| B(line.get(..n).unwrap_or(&[])));
        self.t.eq(name, got, Some(B(want)));
    }

    /// Waits (with the timeout) for `pid` to exit and checks its exit code.
    fn expect_exit(&mut self, name: &str, pid: Pid, code: i32) {
        let got = wait_exit(pid);
        self.t.eq(name, got, Ok(Some(code as u8)));
    }
}

/// wait4(pid, WNOHANG) polled until it exits or the timeout passes (then SIGKILL).
fn wait_exit(pid: Pid) -> Result<Option<u8>, Errno> {
    for _ in 0..TIMEOUT_MS / 10 {
        match process::wait4(pid.0, WaitFlags::NOHANG) {
            Ok(Some((_, s))) => return Ok(s.exit_code()),
            Ok(None) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
        let _ = time::sleep(Timespec::from_millis(10));
    }
    let _ = process::kill(pid.0, Signal::KILL);
    let _ = process::wait4(pid.0, WaitFlags::EMPTY);
    Err(Errno::ETIMEDOUT)
}

fn ready_line(pid: Pid) -> CBuf {
    CBuf::new(format_args!("notify-daemon: ready (pid {})", pid.0))
}

pub fn run(args: &Args) -> ! {
    let (Some(me), Some(dir)) = (args.arg(0), args.arg(2)) else {
        say!("{}", crate::USAGE);
        process::exit_group(EXIT_USAGE);
    };
    // The --mainpid-child daemon's main process is our grandchild: as a subreaper we can
    // wait for it once its parent is gone.
    let _ = process::set_child_subreaper(true);
    let rx = net::socket_unix(SocketType::Datagram, true).and_then(|s| net::set_passcred(&s, true).map(|_| s));
    let rx = match rx {
        Ok(s) => s,
        Err(e) => {
            say!("FAIL setup: socket with SO_PASSCRED: {}", en(e));
            say!("notify-daemon self-test: 0 passed, 1 failed");
            process::exit_group(1);
        }
    };
    let abstract_name = CBuf::new(format_args!("@notify-daemon-self-test-{}", process::getpid().0));
    let mut c = Ctx { me, qemu: env_value(args, QEMU_ENV), rx, t: T { passed: 0, failed: 0 } };
    let bound = net::bind_unix(&c.rx, abstract_name.as_cstr());
    c.t.eq("setup: bind abstract", bound, Ok(()));
    let env = CBuf::new(format_args!("NOTIFY_SOCKET={}", abstract_name.as_cstr().to_str().unwrap_or("")));

    ready_and_stop(&mut c, env.as_cstr());
    path_socket(&mut c, dir);
    fail(&mut c, env.as_cstr());
    no_ready(&mut c, env.as_cstr());
    mainpid_child(&mut c, env.as_cstr());
    misuse(&mut c);
    orphans(&mut c);
    respawn_probe(&mut c, dir);

    say!("notify-daemon self-test: {} passed, {} failed", c.t.passed, c.t.failed);
    process::exit_group(if c.t.failed == 0 { 0 } else { 1 });
}

/// The plain run: starting, the delay, READY, the ready line, SIGTERM, STOPPING, exit 0.
fn ready_and_stop(c: &mut Ctx<'_>, env: &CStr) {
    let Some(mut d) = c.launch("plain: launch", &[c"--delay-ms", c"400"], Some(env)) else { return };
    c.expect("plain: STATUS=starting", b"STATUS=starting", d.pid);
    let start = time::clock_gettime(Clock::Monotonic);
    c.expect("plain: READY=1", b"READY=1\nSTATUS=running", d.pid);
    let waited = time::clock_gettime(Clock::Monotonic).millis_since(start);
    // --delay-ms 400 lies between the two (less the time the first took to reach us).
    c.t.check("plain: delay before READY", waited >= 250, format_args!("READY came {waited} ms after STATUS=starting"));
    let want = ready_line(d.pid);
    c.expect_line("plain: ready line", &mut d, want.bytes());
    // SIGINT and SIGHUP do not stop it.
    let _ = process::kill(d.pid.0, Signal::HUP);
    c.expect_line("plain: SIGHUP ignored", &mut d, b"notify-daemon: signal 1 ignored");
    c.t.eq("plain: SIGTERM", process::kill(d.pid.0, Signal::TERM), Ok(()));
    c.expect("plain: STOPPING=1", b"STOPPING=1", d.pid);
    c.expect_line("plain: stopping line", &mut d, b"notify-daemon: stopping");
    c.expect_exit("plain: exit 0", d.pid, EXIT_OK);
    c.expect_nothing("plain: nothing more");
}

/// NOTIFY_SOCKET as a filesystem path, and a SIGTERM sent before the daemon is ready
/// (blocked from the start, it is handled once the daemon waits).
fn path_socket(c: &mut Ctx<'_>, dir: &CStr) {
    let path = CBuf::new(format_args!("{}/notify.sock", dir.to_str().unwrap_or(".")));
    let _ = fs::unlinkat(syscall::BorrowedFd::CWD, path.as_cstr(), fs::AtFlags::EMPTY);
    let Ok(rx) = net::socket_unix(SocketType::Datagram, true) else { return };
    let setup = net::bind_unix(&rx, path.as_cstr()).and_then(|_| net::set_passcred(&rx, true));
    if !c.t.eq("path: bind", setup, Ok(())) {
        return;
    }
    let env = CBuf::new(format_args!("NOTIFY_SOCKET={}", path.as_cstr().to_str().unwrap_or("")));
    let main_rx = core::mem::replace(&mut c.rx, rx);
    if let Some(mut d) = c.launch("path: launch", &[c"--delay-ms", c"300"], Some(env.as_cstr())) {
        c.expect("path: STATUS=starting", b"STATUS=starting", d.pid);
        let _ = process::kill(d.pid.0, Signal::TERM);
        c.expect("path: READY=1", b"READY=1\nSTATUS=running", d.pid);
        c.expect("path: early SIGTERM, STOPPING=1", b"STOPPING=1", d.pid);
        let want = ready_line(d.pid);
    c.expect_line("path: ready line", &mut d, want.bytes());
        c.expect_line("path: stopping line", &mut d, b"notify-daemon: stopping");
        c.expect_exit("path: exit 0", d.pid, EXIT_OK);
    }
    c.rx = main_rx;
    let _ = fs::unlinkat(syscall::BorrowedFd::CWD, path.as_cstr(), fs::AtFlags::EMPTY);
}

fn fail(c: &mut Ctx<'_>, env: &CStr) {
    let Some(mut d) = c.launch("fail: launch", &[c"--fail", c"--delay-ms", c"0"], Some(env)) else { return };
    c.expect("fail: STATUS=starting", b"STATUS=starting", d.pid);
    c.expect_line("fail: line", &mut d, b"notify-daemon: failing before READY, as asked");
    c.expect_exit("fail: exit 3", d.pid, EXIT_FAIL);
    c.expect_nothing("fail: no READY");
}

fn no_ready(c: &mut Ctx<'_>, env: &CStr) {
    let Some(mut d) = c.launch("no-ready: launch", &[c"--no-ready", c"--delay-ms", c"0"], Some(env)) else { return };
    c.expect("no-ready: STATUS=starting", b"STATUS=starting", d.pid);
    let want = ready_line(d.pid);
    c.expect_line("no-ready: ready line", &mut d, want.bytes());
    c.expect_nothing("no-ready: no READY");
    let _ = process::kill(d.pid.0, Signal::TERM);
    c.expect("no-ready: STOPPING=1", b"STOPPING=1", d.pid);
    c.expect_exit("no-ready: exit 0", d.pid, EXIT_OK);
}

/// The parent sends MAINPID=<child> and exits; the child sends READY and answers SIGTERM.
fn mainpid_child(c: &mut Ctx<'_>, env: &CStr) {
    let Some(mut d) = c.launch("mainpid: launch", &[c"--mainpid-child", c"--delay-ms", c"0"], Some(env)) else { return };
    c.expect("mainpid: STATUS=starting", b"STATUS=starting", d.pid);
    let mut buf = [0u8; 256];
    let got = c.recv(&mut buf).map(|(m, cr)| (m.strip_prefix(b"MAINPID=").and_then(crate::parse_u64), cr.map(|cr| cr.pid)));
    let child = match got {
        Ok((Some(p), Some(sender))) if sender == d.pid.0 && p > 0 && p <= i32::MAX as u64 => {
            c.t.check("mainpid: MAINPID=", true, format_args!(""));
            Pid(p as i32)
        }
        other => {
            let _ = c.t.check("mainpid: MAINPID=", false, format_args!("from {:?}: {:?}", d.pid, other));
            return;
        }
    };
    c.t.check("mainpid: a new process", child != d.pid, format_args!("MAINPID is the parent's own pid"));
    let line = CBuf::new(format_args!("notify-daemon: main process is now {}", child.0));
    c.expect_line("mainpid: parent line", &mut d, line.bytes());
    c.expect_exit("mainpid: parent exits 0", d.pid, EXIT_OK);
    c.expect("mainpid: READY=1 from the child", b"READY=1\nSTATUS=running", child);
    c.expect_line("mainpid: child's ready line", &mut d, ready_line(child).bytes());
    let _ = process::kill(child.0, Signal::TERM);
    c.expect("mainpid: STOPPING=1 from the child", b"STOPPING=1", child);
    c.expect_exit("mainpid: child exits 0 (reaped as subreaper)", child, EXIT_OK);
}

/// No NOTIFY_SOCKET, an unreachable one, a bad argument.
fn misuse(c: &mut Ctx<'_>) {
    if let Some(mut d) = c.launch("no-socket: launch", &[], None) {
        c.expect_line("no-socket: line", &mut d, b"notify-daemon: NOTIFY_SOCKET is not set");
        c.expect_exit("no-socket: exit 2", d.pid, EXIT_USAGE);
    }
    let env = CBuf::new(format_args!("NOTIFY_SOCKET=@notify-daemon-nobody-{}", process::getpid().0));
    if let Some(mut d) = c.launch("unreachable: launch", &[c"--delay-ms", c"0"], Some(env.as_cstr())) {
        let want = CBuf::new(format_args!("notify-daemon: sending \"STATUS=starting\" to NOTIFY_SOCKET=\"@notify-daemon-nobody-{}\": ECONNREFUSED",
                                          process::getpid().0));
        c.expect_line("unreachable: line", &mut d, want.bytes());
        c.expect_exit("unreachable: exit 1", d.pid, crate::EXIT_ERROR);
    }
    if let Some(mut d) = c.launch("bad-arg: launch", &[c"--delay-ms", c"soon"], None) {
        c.expect_line("bad-arg: line", &mut d, b"notify-daemon: bad argument \"soon\"");
        c.expect_exit("bad-arg: exit 2", d.pid, EXIT_USAGE);
    }
    c.expect_nothing("misuse: nothing sent");
}

/// `--orphans 40`: its line names 40 pids; they are re-parented to us (a subreaper), each
/// exits 0 once the parent is gone; then `--count-zombies` finds none of them left.
fn orphans(c: &mut Ctx<'_>) {
    const N: u64 = 40;
    let Some(mut d) = c.launch("orphans: launch", &[c"--orphans", c"40"], None) else { return };
    let mut line = [0u8; 256];
    let got = d.out.next(&mut line).and_then(|n| line.get(..n));
    let mut f = got.unwrap_or(&[]).split(|&b| b == b' ').map(crate::parse_u64);
    let (Some(Some(t0)), Some(Some(min)), Some(Some(max)), None) = (f.next(), f.next(), f.next(), f.next()) else {
        c.t.check("orphans: line", false, format_args!("expected 'T0_NS MIN MAX', got {:?}", got.map(B)));
        return;
    };
    c.t.check("orphans: pid range", max >= min + N - 1, format_args!("{N} children in pids {min}..={max}"));
    c.expect_exit("orphans: parent exits 0", d.pid, EXIT_OK);
    let (mut reaped, mut clean) = (0u64, 0u64);
    let deadline = time::clock_gettime(Clock::Monotonic).as_millis().saturating_add(TIMEOUT_MS);
    while reaped < N && time::clock_gettime(Clock::Monotonic).as_millis() < deadline {
        match process::wait4(-1, WaitFlags::NOHANG) {
            Ok(Some((pid, st))) => {
                if (min..=max).contains(&(pid.0 as u64)) {
                    reaped += 1;
                    clean += u64::from(st.exit_code() == Some(0));
                }
            }
            Ok(None) | Err(Errno::EINTR) => {
                let _ = time::sleep(Timespec::from_millis(10));
            }
            Err(_) => break,
        }
    }
    c.t.eq("orphans: every child re-parented to us and exited 0", (reaped, clean), (N, N));
    let args = [CBuf::new(format_args!("{t0}")), CBuf::new(format_args!("{min}")), CBuf::new(format_args!("{max}"))];
    let Some(mut z) = c.launch("count-zombies: launch", &[c"--count-zombies", args[0].as_cstr(), args[1].as_cstr(), args[2].as_cstr()], None) else {
        return;
    };
    let got = z.out.next(&mut line).and_then(|n| line.get(..n));
    // Other processes of the host may be zombies: only our pids count here.
    let ok = got.is_some_and(|l| l.starts_with(b"count-zombies: elapsed_us=") && l.windows(8).any(|w| w == b" left=0 "));
    c.t.check("count-zombies: none left", ok, format_args!("{:?}", got.map(B)));
    let _ = wait_exit(z.pid);
}

/// `--respawn-probe`: the first run writes start and exit lines and exits 1; the second
/// finds the marker, writes its start line and stays.
fn respawn_probe(c: &mut Ctx<'_>, dir: &CStr) {
    let d = dir.to_str().unwrap_or(".");
    let (marker, log) = (CBuf::new(format_args!("{d}/probe.marker")), CBuf::new(format_args!("{d}/probe.log")));
    for p in [&marker, &log] {
        let _ = fs::unlinkat(syscall::BorrowedFd::CWD, p.as_cstr(), fs::AtFlags::EMPTY);
    }
    let args = [c"--respawn-probe", marker.as_cstr(), c"--kmsg", log.as_cstr()];
    let Some(first) = c.launch("probe: first run", &args, None) else { return };
    c.expect_exit("probe: first run exits 1", first.pid, crate::EXIT_ERROR);
    let Some(second) = c.launch("probe: second run", &args, None) else { return };
    let want = CBuf::new(format_args!("respawn-probe: start {m}\nrespawn-probe: exit {m}\nrespawn-probe: start {m}\n", m = marker.as_cstr().to_str().unwrap_or("")));
    let mut buf = [0u8; 1024];
    let mut text: &[u8] = &[];
    for _ in 0..TIMEOUT_MS / 10 {
        text = fs::open(log.as_cstr(), fs::OFlags::RDONLY, 0).ok().and_then(|fd| fs::read_full(&fd, &mut buf).ok()).and_then(|n| buf.get(..n)).unwrap_or(&[]);
        if text.len() >= want.bytes().len() {
            break;
        }
        let _ = time::sleep(Timespec::from_millis(10));
    }
    c.t.eq("probe: lines", B(text), B(want.bytes()));
    let running = process::wait4(second.pid.0, WaitFlags::NOHANG);
    c.t.check("probe: second run stays", matches!(running, Ok(None)), format_args!("wait4: {:?}", running.map(|r| r.map(|(_, s)| s.exit_code()))));
    let _ = process::kill(second.pid.0, Signal::KILL);
    let _ = wait_exit(second.pid);
}
