//! Processes: fork, clone_flags and clone_into_cgroup, execve (argv/envp passing proved by re-executing the
//! suite), wait4, waitid, getpid/getppid, sessions and groups, kill, ids, prctl, prlimit64,
//! unshare, setns, umask, getpriority/setpriority.

use crate::harness::{section, spawn, wait, B, En, T};
use crate::util::{self, cap_eff, ns_id, read_file, write_file};
use core::ffi::CStr;
use syscall::entry::Args;
use syscall::fs::{self, AtFlags, OFlags, StatxMask};
use syscall::process::{self, ArgList, ChildEvent, Fork, NsFlags, Pid, Rlimit, WaitFlags, WaitId, WaitStatus};
use syscall::signal::Signal;
use syscall::system;
use syscall::time::{self, Timespec};
use syscall::{AsFd, BorrowedFd, Errno, OwnedFd};

const CWD: BorrowedFd<'static> = BorrowedFd::CWD;

/// argv[1] that makes the suite check the argv/envp it was executed with and exit.
pub const EXEC_PROBE_ARG: &CStr = c"--exec-probe";
const PROBE_ARGS: [&CStr; 2] = [c"two words", c""];
const PROBE_ENV: [&CStr; 2] = [c"SUITE_A=1", c"SUITE_B=x y=z"];
/// The exit code of a probe that saw exactly what was passed.
const PROBE_OK: i32 = 42;
/// Set by the runner to the qemu-user binary, for arches the host kernel cannot exec.
const QEMU_ENV: &[u8] = b"SYSCALL_SUITE_QEMU=";

/// The re-executed suite: exit PROBE_OK if argv and envp are exactly what the test passed.
pub fn exec_probe(args: Args) -> ! {
    let mut env = args.env();
    let env_ok = env.next() == Some(PROBE_ENV[0]) && env.next() == Some(PROBE_ENV[1]) && env.next().is_none();
    let code = if args.argc() != 4 {
        say!("# exec probe: argc {}", args.argc());
        43
    } else if args.arg(2) != Some(PROBE_ARGS[0]) || args.arg(3) != Some(PROBE_ARGS[1]) {
        say!("# exec probe: argv {:?} {:?}", args.arg(2), args.arg(3));
        44
    } else if !env_ok {
        for e in args.env() {
            say!("# exec probe: env {:?}", e);
        }
        45
    } else {
        PROBE_OK
    };
    process::exit_group(code)
}

pub fn run(t: &mut T, args: &Args, me: &CStr) {
    ids_of_self(t);
    exec(t, args, me);
    wait_and_signals(t);
    waitid(t);
    wait_status_decoding(t);
    sessions(t);
    kill(t);
    section(t, "process::credentials", credentials);
    section(t, "process::subreaper_pdeathsig", subreaper_pdeathsig);
    section(t, "process::prctl", prctl);
    section(t, "process::prlimit", prlimit);
    section(t, "process::uts_namespace", uts_namespace);
    section(t, "process::umask", umask);
    section(t, "process::priority", priority);
    section(t, "process::getpgid_set_name", getpgid_set_name);
    clone_flags(t, under_qemu(args));
    clone_into_cgroup(t, under_qemu(args));
}

fn read_u32s<const N: usize>(fd: impl AsFd) -> Option<[u32; N]> {
    let mut buf = [0u8; 64];
    let n = fs::read_full(fd, buf.get_mut(..N * 4)?).ok()?;
    if n != N * 4 {
        return None;
    }
    Some(core::array::from_fn(|i| u32::from_ne_bytes([buf[i * 4], buf[i * 4 + 1], buf[i * 4 + 2], buf[i * 4 + 3]])))
}

fn write_u32s(fd: impl AsFd, v: &[u32]) {
    let mut buf = [0u8; 64];
    for (i, x) in v.iter().enumerate().take(16) {
        buf[i * 4..i * 4 + 4].copy_from_slice(&x.to_ne_bytes());
    }
    let _ = fs::write_all(fd, &buf[..v.len().min(16) * 4]);
}

fn ids_of_self(t: &mut T) {
    let me = process::getpid();
    let parent = process::getppid();
    t.check("process::getpid", me.0 > 0, format_args!("got {me:?}"));
    t.check("process::getppid", parent.0 > 0 && parent != me, format_args!("got {parent:?} (our pid {me:?})"));
    t.eq("process::pid_raw", me.raw(), me.0);
    let Some((r, w)) = t.need("process::pipe", syscall::io::pipe2(true, false)) else { return };
    match spawn(|| {
        write_u32s(&w, &[process::getpid().0 as u32, process::getppid().0 as u32]);
        0
    }) {
        Ok(child) => {
            drop(w);
            let got = read_u32s::<2>(&r);
            t.eq("process::fork_pids", got, Some([child.0 as u32, me.0 as u32]));
            t.eq("process::fork_child_exit", wait(child).map(|s| s.exit_code()), Ok(Some(0)));
        }
        Err(e) => t.fail("process::fork", format_args!("{:?}", En(e))),
    }
}

/// Whether the suite runs under qemu-user (the runner then sets SYSCALL_SUITE_QEMU).
pub fn under_qemu(args: &Args) -> bool {
    env_value(args, QEMU_ENV).is_some()
}

/// The value of NAME= in our environment.
fn env_value(args: &Args, prefix: &[u8]) -> Option<&'static CStr> {
    let e = args.env().find(|e| e.to_bytes().starts_with(prefix))?;
    CStr::from_bytes_with_nul(e.to_bytes_with_nul().get(prefix.len()..)?).ok()
}

/// `me`: the absolute path of this program.
fn exec(t: &mut T, args: &Args, me: &CStr) {
    let mut argv: ArgList<'_, 8> = ArgList::new();
    let mut envp: ArgList<'_, 4> = ArgList::new();
    let pushed = [argv.push(me), argv.push(EXEC_PROBE_ARG), argv.push(PROBE_ARGS[0]), argv.push(PROBE_ARGS[1]),
                  envp.push(PROBE_ENV[0]), envp.push(PROBE_ENV[1])];
    t.check("process::arglist_push", pushed.iter().all(|r| r.is_ok()), format_args!("{pushed:?}"));
    t.eq("process::arglist_len", (argv.len(), argv.is_empty(), ArgList::<'_, 4>::new().is_empty()), (4, false, true));
    let mut small: ArgList<'_, 2> = ArgList::default();
    t.eq("process::arglist_full", (small.push(c"a"), small.push(c"b"), small.len()), (Ok(()), Err(Errno::E2BIG), 1));

    t.eq("process::execve_enoent", En(process::execve(c"/nonexistent/program", &argv, &envp)), En(Errno::ENOENT));
    t.eq("process::execve_eacces_dir", En(process::execve(c".", &argv, &envp)), En(Errno::EACCES));
    let _ = write_file(CWD, c"not-exec", b"#!/bin/sh\n");
    let _ = fs::fchmodat(CWD, c"not-exec", 0o644);
    t.eq("process::execve_eacces_mode", En(process::execve(c"not-exec", &argv, &envp)), En(Errno::EACCES));
    let _ = write_file(CWD, c"garbage-exec", b"\x01\x02\x03\x04 not a program");
    let _ = fs::fchmodat(CWD, c"garbage-exec", 0o755);
    t.eq("process::execve_enoexec", En(process::execve(c"garbage-exec", &argv, &envp)), En(Errno::ENOEXEC));

    let qemu = env_value(args, QEMU_ENV);
    let child = spawn(|| {
        let e = process::execve(me, &argv, &envp);
        if e != Errno::ENOEXEC {
            return 100 + e.raw() as i32;
        }
        // The host kernel cannot run this arch's binaries (no binfmt_misc entry): run the
        // same execve through the qemu-user binary, which hands argv[1..] and the
        // environment to the guest unchanged.
        let Some(q) = qemu else { return 99 };
        say!("# process::execve_self: the host kernel answered ENOEXEC; exec'ing through {:?}", q);
        let mut qargv: ArgList<'_, 8> = ArgList::new();
        for a in [q, me, EXEC_PROBE_ARG, PROBE_ARGS[0], PROBE_ARGS[1]] {
            let _ = qargv.push(a);
        }
        100 + process::execve(q, &qargv, &envp).raw() as i32
    });
    match child {
        Ok(pid) => {
            t.eq("process::execve_self_argv_envp", wait(pid).map(|s| s.exit_code()), Ok(Some(PROBE_OK as u8)));
        }
        Err(e) => t.fail("process::execve_self", format_args!("fork: {:?}", En(e))),
    }
}

fn sleeper() -> i32 {
    for _ in 0..100 {
        let _ = time::sleep(Timespec::from_millis(100));
    }
    77
}

fn wait_and_signals(t: &mut T) {
    if let Ok(pid) = spawn(|| 7) {
        let r = process::wait4(pid.0, WaitFlags::EMPTY);
        let got = r.map(|o| o.map(|(p, s)| (p, s.exit_code(), s.signal(), s.shell_code())));
        t.eq("process::wait4_exit_code", got, Ok(Some((pid, Some(7), None, 7))));
    }
    // Killed by a signal.
    if let Ok(pid) = spawn(sleeper) {
        t.eq("process::kill_child", process::kill(pid.0, Signal::TERM), Ok(()));
        let s = wait(pid);
        t.eq("process::wait4_killed", s.map(|s| (s.exit_code(), s.signal(), s.shell_code())),
             Ok((None, Some(Signal::TERM), 128 + 15)));
    }
    if let Ok(pid) = spawn(sleeper) {
        let _ = process::kill(pid.0, Signal::KILL);
        t.eq("process::wait4_sigkill", wait(pid).map(|s| s.signal()), Ok(Some(Signal::KILL)));
    }
    // WNOHANG with a live child that has nothing to report yet.
    let Some((r, w)) = t.need("process::pipe2", syscall::io::pipe2(true, false)) else { return };
    if let Ok(pid) = spawn(|| {
        let mut b = [0u8; 1];
        let _ = fs::read(&r, &mut b);
        b[0] as i32
    }) {
        t.eq("process::wait4_wnohang_none", process::wait4(-1, WaitFlags::NOHANG), Ok(None));
        t.eq("process::waitid_wnohang_none", process::waitid(WaitId::All, WaitFlags::EXITED | WaitFlags::NOHANG), Ok(None));
        let _ = fs::write(&w, &[3]);
        let got = process::wait4(pid.0, WaitFlags::EMPTY).map(|o| o.map(|(p, s)| (p, s.exit_code())));
        t.eq("process::wait4_pid", got, Ok(Some((pid, Some(3)))));
    }
    // Nothing left to wait for.
    t.err("process::wait4_echild", process::wait4(-1, WaitFlags::EMPTY), Errno::ECHILD);
    t.err("process::wait4_wnohang_echild", process::wait4(-1, WaitFlags::NOHANG), Errno::ECHILD);
    t.err("process::wait4_not_our_child", process::wait4(1, WaitFlags::EMPTY), Errno::ECHILD);
    t.err("process::waitid_echild", process::waitid(WaitId::All, WaitFlags::EXITED), Errno::ECHILD);
}

fn waitid(t: &mut T) {
    if let Ok(pid) = spawn(|| 9) {
        let want = ChildEvent { pid, code: process::CLD_EXITED, status: 9 };
        t.eq("process::waitid_exited", process::waitid(WaitId::Pid(pid), WaitFlags::EXITED), Ok(Some(want)));
    }
    if let Ok(pid) = spawn(sleeper) {
        let _ = process::kill(pid.0, Signal::KILL);
        let want = ChildEvent { pid, code: process::CLD_KILLED, status: 9 };
        t.eq("process::waitid_killed", process::waitid(WaitId::All, WaitFlags::EXITED), Ok(Some(want)));
    }
    // WNOWAIT leaves the child waitable.
    if let Ok(pid) = spawn(|| 5) {
        let want = ChildEvent { pid, code: process::CLD_EXITED, status: 5 };
        t.eq("process::waitid_nowait", process::waitid(WaitId::Pid(pid), WaitFlags::EXITED | WaitFlags::NOWAIT), Ok(Some(want)));
        t.eq("process::waitid_nowait_then_wait4", wait(pid).map(|s| s.exit_code()), Ok(Some(5)));
    }
    // A pidfd (pidfd_open has no wrapper: raw call).
    if let Ok(pid) = spawn(|| {
        let _ = time::sleep(Timespec::from_millis(50));
        11
    }) {
        // SAFETY: pidfd_open takes integers and returns a new fd that we own.
        let fd = syscall::errno::check(unsafe {
            syscall::arch::syscall2(linux_raw_sys::general::__NR_pidfd_open, pid.0 as usize, 0)
        });
        match fd {
            Ok(fd) => {
                let fd = OwnedFd::adopt(fd as i32);
                let want = ChildEvent { pid, code: process::CLD_EXITED, status: 11 };
                t.eq("process::waitid_pidfd", process::waitid(WaitId::PidFd(fd.raw()), WaitFlags::EXITED), Ok(Some(want)));
            }
            Err(e) => {
                t.fail("process::waitid_pidfd", format_args!("pidfd_open failed: {:?}", En(e)));
                let _ = wait(pid);
            }
        }
    }
    t.err("process::waitid_no_options_einval", process::waitid(WaitId::All, WaitFlags::EMPTY), Errno::EINVAL);
    t.err("process::waitid_bad_pidfd", process::waitid(WaitId::PidFd(9999), WaitFlags::EXITED), Errno::EBADF);
}

fn wait_status_decoding(t: &mut T) {
    use linux_raw_sys::general as g;
    t.eq("process::cld_constants", (process::CLD_EXITED, process::CLD_KILLED, process::CLD_DUMPED),
         (g::CLD_EXITED as i32, g::CLD_KILLED as i32, g::CLD_DUMPED as i32));
    let s = WaitStatus(7 << 8);
    t.eq("process::waitstatus_exit", (s.exit_code(), s.signal(), s.shell_code()), (Some(7), None, 7));
    let s = WaitStatus(15 | 0x80); // killed by TERM, core dumped
    t.eq("process::waitstatus_signal_core", (s.exit_code(), s.signal(), s.shell_code()), (None, Some(Signal::TERM), 143));
    let s = WaitStatus(0x137f); // stopped by SIGSTOP
    t.eq("process::waitstatus_stopped", (s.exit_code(), s.signal(), s.shell_code()), (None, None, 255));
}

fn sessions(t: &mut T) {
    section(t, "process::setsid", |t| {
        let me = process::getpid();
        t.eq("process::setsid", process::setsid(), Ok(me));
        t.err("process::setsid_leader_eperm", process::setsid(), Errno::EPERM);
        t.err("process::setpgid_session_leader_eperm", process::setpgid(0, 0), Errno::EPERM);
    });
    section(t, "process::setpgid", |t| {
        let me = process::getpid();
        // Our own group does not exist until we create it.
        t.err("process::setpgid_group_absent", process::kill(-me.0, Signal(0)), Errno::ESRCH);
        t.eq("process::setpgid", process::setpgid(0, 0), Ok(()));
        t.eq("process::setpgid_group_exists", process::kill(-me.0, Signal(0)), Ok(()));
        // A group leader cannot start a session.
        t.err("process::setsid_group_leader_eperm", process::setsid(), Errno::EPERM);
        t.err("process::setpgid_negative_einval", process::setpgid(0, -1), Errno::EINVAL);
        t.err("process::setpgid_esrch", process::setpgid(0x3fff_fff0, 0), Errno::ESRCH);
        // A child moved into our group by pid.
        if let Ok(pid) = spawn(sleeper) {
            t.eq("process::setpgid_child", process::setpgid(pid.0, me.0), Ok(()));
            let _ = process::kill(pid.0, Signal::KILL);
            let _ = wait(pid);
        }
    });
}

fn kill(t: &mut T) {
    t.eq("process::kill_self_sig0", process::kill(process::getpid().0, Signal(0)), Ok(()));
    t.err("process::kill_einval", process::kill(process::getpid().0, Signal(1000)), Errno::EINVAL);
    if let Ok(pid) = spawn(|| 0) {
        let _ = wait(pid);
        t.err("process::kill_reaped_esrch", process::kill(pid.0, Signal(0)), Errno::ESRCH);
    }
}

/// A line of /proc/self/status after its key (empty if missing).
fn status(key: &[u8]) -> util::CBuf {
    let mut buf = [0u8; 4096];
    let v = read_file(CWD, c"/proc/self/status", &mut buf).ok().and_then(|s| util::proc_field(s, key));
    cfmt!("{}", v.and_then(|v| core::str::from_utf8(v.trim_ascii_end()).ok()).unwrap_or(""))
}

fn credentials(t: &mut T) {
    let _ = fs::mkdirat(CWD, c"ids", 0o777);
    if util::is_root() {
        // Ids above 65535 tell the 32-bit id calls from the legacy 16-bit ones on i686 and
        // arm, and distinct real/effective/saved values show each argument landed in its
        // place (/proc/self/status lists real, effective, saved, filesystem).
        t.ok("process::setgroups", process::setgroups(&[65534, 100, 100002]));
        t.eq("process::setgroups_status", B(status(b"Groups:").bytes()), B(b"100 65534 100002"));
        t.ok("process::setresgid", process::setresgid(100001, 65534, 100003));
        t.eq("process::setresgid_status", B(status(b"Gid:").bytes()), B(b"100001\t65534\t100003\t65534"));
        t.eq("process::getgid", process::getgid(), 100001);
        t.ok("process::setresuid", process::setresuid(100000, 65534, 100004));
        t.eq("process::setresuid_status", B(status(b"Uid:").bytes()), B(b"100000\t65534\t100004\t65534"));
        t.eq("process::getuid", process::getuid(), 100000);
        t.eq("process::setresuid_dropped_caps", cap_eff(), Some(0));
        let ids = util::write_file(CWD, c"ids/mine", b"x")
            .and_then(|_| fs::statx(CWD, c"ids/mine", AtFlags::EMPTY, StatxMask::UID | StatxMask::GID))
            .map(|s| (s.stx_uid, s.stx_gid));
        t.eq("process::setresuid_file_owner", ids, Ok((65534, 65534)));
        // Without privileges, each id may still be set to one of the current three.
        t.eq("process::setresuid_unchanged", process::setresuid(u32::MAX, u32::MAX, u32::MAX), Ok(()));
        t.eq("process::setresuid_to_nobody", process::setresuid(65534, 65534, 65534), Ok(()));
        t.eq("process::setresgid_to_nobody", process::setresgid(65534, 65534, 65534), Ok(()));
        t.eq("process::getuid_getgid_nobody", (process::getuid(), process::getgid()), (65534, 65534));
        t.err("process::setresuid_back_eperm", process::setresuid(0, 0, 0), Errno::EPERM);
        t.err("process::setresuid_old_saved_eperm", process::setresuid(100004, u32::MAX, u32::MAX), Errno::EPERM);
        t.err("process::setresgid_back_eperm", process::setresgid(0, 0, 0), Errno::EPERM);
        t.err("process::setgroups_eperm", process::setgroups(&[]), Errno::EPERM);
        // Without CAP_SYS_ADMIN (CapEff checked above), sethostname is refused.
        if cap_eff() == Some(0) {
            t.err("system::sethostname_eperm", system::sethostname(b"must-not-happen"), Errno::EPERM);
        }
    } else {
        let (uid, gid) = (process::getuid(), process::getgid());
        t.eq("process::setresuid_own", process::setresuid(uid, uid, uid), Ok(()));
        t.eq("process::setresgid_own", process::setresgid(gid, gid, gid), Ok(()));
        t.err("process::setresuid_eperm", process::setresuid(0, 0, 0), Errno::EPERM);
        t.err("process::setresgid_eperm", process::setresgid(0, 0, 0), Errno::EPERM);
        t.err("process::setgroups_eperm", process::setgroups(&[]), Errno::EPERM);
        t.err("system::sethostname_eperm", system::sethostname(b"must-not-happen"), Errno::EPERM);
    }
}

fn subreaper_pdeathsig(t: &mut T) {
    let me = process::getpid();
    t.ok("process::set_child_subreaper", process::set_child_subreaper(true));
    let mut v: i32 = -1;
    let r = process::prctl(linux_raw_sys::prctl::PR_GET_CHILD_SUBREAPER, &mut v as *mut i32 as usize, 0, 0, 0);
    t.eq("process::get_child_subreaper", (r, v), (Ok(0), 1));

    // G forks H and exits at once: H is orphaned and must come to us, not to init.
    let Some((r, w)) = t.need("process::pipe3", syscall::io::pipe2(true, false)) else { return };
    let g = spawn(|| match process::fork() {
        Ok(Fork::Child) => {
            let g = process::getppid();
            for _ in 0..500 {
                if process::getppid() != g {
                    break;
                }
                let _ = time::sleep(Timespec::from_millis(10));
            }
            write_u32s(&w, &[process::getppid().0 as u32]);
            0
        }
        Ok(Fork::Parent(h)) => {
            write_u32s(&w, &[h.0 as u32]);
            0
        }
        Err(_) => 1,
    });
    if let Ok(g) = g {
        t.eq("process::subreaper_middle_exit", wait(g).map(|s| s.exit_code()), Ok(Some(0)));
        let h = read_u32s::<1>(&r).map(|[h]| Pid(h as i32));
        let ppid = read_u32s::<1>(&r).map(|[p]| p as i32);
        t.eq("process::subreaper_reparented", ppid, Some(me.0));
        match h {
            Some(h) => {
                t.eq("process::subreaper_reaps_orphan", wait(h).map(|s| s.exit_code()), Ok(Some(0)));
            }
            None => t.fail("process::subreaper_reaps_orphan", format_args!("no pid from the middle child")),
        }
    }

    // C forks K; K asks for SIGUSR1 when C dies, tells C it is ready, and sleeps; C exits.
    // K must be killed by SIGUSR1, and comes to us as the subreaper.
    for (name, sig) in [("process::pdeathsig", Some(Signal::USR1)), ("process::pdeathsig_cleared", None)] {
        let Some((r, w)) = t.need("process::pipe4", syscall::io::pipe2(true, false)) else { return };
        let c = spawn(|| {
            let Ok((ready_r, ready_w)) = syscall::io::pipe2(true, false) else { return 1 };
            match process::fork() {
                Ok(Fork::Child) => {
                    let _ = process::set_parent_death_signal(Some(Signal::USR1));
                    if sig.is_none() {
                        let _ = process::set_parent_death_signal(None);
                    }
                    let mut v: i32 = -1;
                    let _ = process::prctl(linux_raw_sys::prctl::PR_GET_PDEATHSIG, &mut v as *mut i32 as usize, 0, 0, 0);
                    write_u32s(&w, &[process::getpid().0 as u32, v as u32]);
                    let _ = fs::write(&ready_w, b"r");
                    // Outlive the parent; exit 0 if no signal came (the signal, when asked
                    // for, comes as soon as the parent exits: the long wait is for slow hosts).
                    let _ = time::sleep(Timespec::from_millis(if sig.is_some() { 5000 } else { 300 }));
                    0
                }
                Ok(Fork::Parent(_)) => {
                    let mut b = [0u8; 1];
                    let _ = fs::read(&ready_r, &mut b);
                    0
                }
                Err(_) => 1,
            }
        });
        let Ok(c) = c else { continue };
        let _ = wait(c);
        let got = read_u32s::<2>(&r);
        let want_v = sig.map_or(0, |s| s.0);
        t.eq(name, got.map(|[_, v]| v), Some(want_v));
        if let Some([k, _]) = got {
            let st = wait(Pid(k as i32)).map(|s| (s.signal(), s.exit_code()));
            let want = match sig {
                Some(s) => (Some(s), None),
                None => (None, Some(0)),
            };
            t.eq(if sig.is_some() { "process::pdeathsig_delivered" } else { "process::pdeathsig_cleared_survives" }, st, Ok(want));
        }
    }
    t.ok("process::set_child_subreaper_off", process::set_child_subreaper(false));
    let mut v: i32 = -1;
    let r = process::prctl(linux_raw_sys::prctl::PR_GET_CHILD_SUBREAPER, &mut v as *mut i32 as usize, 0, 0, 0);
    t.eq("process::get_child_subreaper_off", (r, v), (Ok(0), 0));
}

fn prctl(t: &mut T) {
    use linux_raw_sys::prctl as p;
    let r = process::prctl(p::PR_SET_NAME, c"suite-name".as_ptr() as usize, 0, 0, 0);
    t.eq("process::prctl_set_name", r, Ok(0));
    let mut name = [0u8; 16];
    let r = process::prctl(p::PR_GET_NAME, name.as_mut_ptr() as usize, 0, 0, 0);
    let len = name.iter().position(|&b| b == 0).unwrap_or(16);
    t.eq("process::prctl_get_name", (r, B(&name[..len])), (Ok(0), B(b"suite-name")));
    let mut buf = [0u8; 32];
    t.eq("process::prctl_name_in_proc", read_file(CWD, c"/proc/self/comm", &mut buf).map(B), Ok(B(b"suite-name\n")));
    t.eq("process::prctl_get_dumpable_value", process::prctl(p::PR_SET_DUMPABLE, 0, 0, 0, 0)
        .and_then(|_| process::prctl(p::PR_GET_DUMPABLE, 0, 0, 0, 0)), Ok(0));
    t.err("process::prctl_einval", process::prctl(0x7fff_0000, 0, 0, 0, 0), Errno::EINVAL);
    t.err("process::set_parent_death_signal_einval", process::set_parent_death_signal(Some(Signal(1000))), Errno::EINVAL);
}

fn prlimit(t: &mut T) {
    use syscall::process::resource;
    let Some(old) = t.ok("process::prlimit64_get", process::prlimit64(0, resource::NOFILE, None)) else { return };
    t.check("process::prlimit64_sane", old.cur > 64 && old.cur <= old.max, format_args!("got {old:?}"));
    let new = Rlimit { cur: 64, max: old.max };
    t.eq("process::prlimit64_set_returns_old", process::prlimit64(0, resource::NOFILE, Some(&new)), Ok(old));
    t.eq("process::prlimit64_read_back", process::prlimit64(0, resource::NOFILE, None), Ok(new));
    // The limit is real: fd 64 is past it.
    t.err("process::prlimit64_enforced", syscall::io::dup3(BorrowedFd::STDIN, 64, true).map(|fd| fd.into_raw()), Errno::EBADF);
    t.eq("process::prlimit64_below", syscall::io::dup3(BorrowedFd::STDIN, 63, true).map(|fd| fd.raw()), Ok(63));
    t.err("process::prlimit64_cur_above_max", process::prlimit64(0, resource::NOFILE, Some(&Rlimit { cur: 10, max: 5 })),
          Errno::EINVAL);
    t.err("process::prlimit64_esrch", process::prlimit64(0x3fff_fff0, resource::NOFILE, None), Errno::ESRCH);
    // Another process (our child) by pid: lowering its CORE limit.
    if let Ok(pid) = spawn(sleeper) {
        let set = process::prlimit64(pid.0, resource::CORE, Some(&Rlimit { cur: 0, max: 0 }));
        let back = process::prlimit64(pid.0, resource::CORE, None);
        t.check("process::prlimit64_other_pid", set.is_ok() && back == Ok(Rlimit { cur: 0, max: 0 }),
                format_args!("set {:?}, read back {:?}", crate::harness::Res(&set), crate::harness::Res(&back)));
        let _ = process::kill(pid.0, Signal::KILL);
        let _ = wait(pid);
    }
    t.eq("process::rlim_infinity", process::RLIM_INFINITY, u64::MAX);
    let _ = (resource::NPROC, resource::STACK);
}

fn uts_namespace(t: &mut T) {
    let mut id0 = [0u8; 64];
    let mut id1 = [0u8; 64];
    let Some(n0) = t.need("process::ns_id", ns_id(c"uts", &mut id0)) else { return };
    let Some(orig) = t.need("system::uname0", system::uname()) else { return };
    let Some(orig_ns) = t.need("process::open_ns", fs::open(c"/proc/self/ns/uts", OFlags::RDONLY | OFlags::CLOEXEC, 0)) else { return };
    let privileged = util::is_root();
    t.eq("process::unshare_empty", process::unshare(NsFlags::EMPTY), Ok(()));
    t.err("process::unshare_einval", process::unshare(NsFlags(0xff)), Errno::EINVAL);
    if t.ok("process::unshare_newuts", util::enter_ns(NsFlags::NEWUTS)).is_none() {
        return;
    }
    let n1 = ns_id(c"uts", &mut id1).unwrap_or(0);
    // Only with a namespace of our own do we touch the hostname.
    if !t.check("process::unshare_new_namespace", id0[..n0] != id1[..n1], format_args!("still in {:?}", B(&id0[..n0]))) {
        return;
    }
    t.eq("system::sethostname", system::sethostname(b"syscall-suite-uts"), Ok(()));
    let now = system::uname().map(|u| system::uts_field(&u.nodename) == b"syscall-suite-uts");
    t.eq("system::uname_nodename", now, Ok(true));
    t.err("system::sethostname_too_long", system::sethostname(&[b'x'; 65]), Errno::EINVAL);
    t.err("process::setns_wrong_type", process::setns(&orig_ns, NsFlags::NEWNS), Errno::EINVAL);
    t.err("process::setns_ebadf", process::setns(BorrowedFd::raw_static(9999), NsFlags::NEWUTS), Errno::EBADF);
    if privileged {
        t.eq("process::setns", process::setns(&orig_ns, NsFlags::NEWUTS), Ok(()));
        let n2 = ns_id(c"uts", &mut id1).unwrap_or(0);
        t.eq("process::setns_back", B(&id1[..n2]), B(&id0[..n0]));
        let back = system::uname().map(|u| system::uts_field(&u.nodename) == system::uts_field(&orig.nodename));
        t.eq("process::setns_hostname_restored", back, Ok(true));
    } else {
        // The original namespace belongs to the initial user namespace, where we have no
        // CAP_SYS_ADMIN.
        t.err("process::setns_eperm", process::setns(&orig_ns, NsFlags::NEWUTS), Errno::EPERM);
    }
}

fn umask(t: &mut T) {
    // main() set 0; the raw call in t_base is the independent view.
    t.eq("process::umask_returns_previous", process::umask(0o027), 0);
    t.eq("process::umask_raw_view", crate::t_base::set_umask(0o027), 0o027);
    let created = write_file(CWD, c"umask-file", b"x")
        .and_then(|_| fs::statx(CWD, c"umask-file", AtFlags::EMPTY, StatxMask::MODE))
        .map(|s| s.stx_mode & 0o777);
    // write_file asks for 0644; the mask takes away the group write (none) and all of other.
    t.eq("process::umask_applies", created, Ok(0o640));
    // Only the permission bits are kept.
    let _ = process::umask(0o7777);
    t.eq("process::umask_permission_bits_only", process::umask(0), 0o777);
}

fn priority(t: &mut T) {
    let start = process::getpriority_process(0);
    t.check("process::getpriority", start.is_ok_and(|n| (-20..=19).contains(&n)), format_args!("got {:?}", crate::harness::Res(&start)));
    t.eq("process::setpriority", process::setpriority_process(0, 7), Ok(()));
    t.eq("process::getpriority_after_set", process::getpriority_process(0), Ok(7));
    t.eq("process::getpriority_by_pid", process::getpriority_process(process::getpid().0), Ok(7));
    // The kernel clamps to 19.
    t.eq("process::setpriority_clamped", process::setpriority_process(0, 100).and_then(|_| process::getpriority_process(0)), Ok(19));
    // Raising priority needs CAP_SYS_NICE (23).
    if cap_eff().is_some_and(|c| c & 1 << 23 != 0) {
        t.eq("process::setpriority_negative", process::setpriority_process(0, -5).and_then(|_| process::getpriority_process(0)), Ok(-5));
    } else {
        t.err("process::setpriority_negative_eacces", process::setpriority_process(0, -5), Errno::EACCES);
    }
    // Another process (our child) by pid.
    if let Ok(pid) = spawn(sleeper) {
        t.eq("process::setpriority_child", process::setpriority_process(pid.0, 12).and_then(|_| process::getpriority_process(pid.0)), Ok(12));
        // Field 19 of /proc/PID/stat is the nice value (a child's: qemu-user fakes our own
        // /proc/self/stat).
        let mut buf = [0u8; 512];
        let path = cfmt!("/proc/{}/stat", pid.0);
        let nice = read_file(CWD, path.as_cstr(), &mut buf).ok().and_then(|s| {
            let after_comm = s.get(s.iter().rposition(|&b| b == b')')? + 2..)?;
            let f = after_comm.split(|&b| b == b' ').nth(16)?;
            core::str::from_utf8(f).ok()?.parse::<i32>().ok()
        });
        t.eq("process::setpriority_proc_stat", nice, Some(12));
        let _ = process::kill(pid.0, Signal::KILL);
        let _ = wait(pid);
    }
    t.err("process::setpriority_esrch", process::setpriority_process(0x3fff_fff0, 1), Errno::ESRCH);
    t.err("process::getpriority_esrch", process::getpriority_process(0x3fff_fff0), Errno::ESRCH);
}

fn getpgid_set_name(t: &mut T) {
    let me = process::getpid();
    let before = process::getpgid(0);
    t.check("process::getpgid_inherited", before.is_ok_and(|g| g != me), format_args!("got {:?}", crate::harness::Res(&before)));
    let _ = process::setpgid(0, 0);
    t.eq("process::getpgid_self", process::getpgid(0), Ok(me));
    t.eq("process::getpgid_by_pid", process::getpgid(me.0), Ok(me));
    t.err("process::getpgid_esrch", process::getpgid(0x3fff_fff0), Errno::ESRCH);

    let mut buf = [0u8; 32];
    t.eq("process::set_name", process::set_name(c"svc-name"), Ok(()));
    t.eq("process::set_name_comm", read_file(CWD, c"/proc/self/comm", &mut buf).map(B), Ok(B(b"svc-name\n")));
    // TASK_COMM_LEN is 16 with the NUL: longer names are cut to 15 bytes.
    t.eq("process::set_name_long", process::set_name(c"a-very-long-service-name"), Ok(()));
    t.eq("process::set_name_truncated", read_file(CWD, c"/proc/self/comm", &mut buf).map(B), Ok(B(b"a-very-long-ser\n")));
}

/// clone_flags: a plain fork, a child in a new UTS namespace (its hostname is its own) and
/// in a new pid namespace (where it is pid 1); bits other than namespaces are refused.
fn clone_flags(t: &mut T, under_qemu: bool) {
    use linux_raw_sys::general as g;
    let me = process::getpid();
    match process::clone_flags(0) {
        Ok(Fork::Child) => process::exit_group(if process::getppid() == me { 21 } else { 22 }),
        Ok(Fork::Parent(pid)) => {
            t.eq("process::clone_flags_plain", wait(pid).map(|s| s.exit_code()), Ok(Some(21)));
        }
        Err(e) => t.fail("process::clone_flags_plain", format_args!("{:?}", En(e))),
    };
    t.err("process::clone_flags_vm_einval", process::clone_flags(g::CLONE_VM as u64), Errno::EINVAL);
    t.err("process::clone_flags_settls_einval", process::clone_flags(g::CLONE_SETTLS as u64), Errno::EINVAL);
    t.err("process::clone_flags_newtime_einval", process::clone_flags(g::CLONE_NEWTIME as u64), Errno::EINVAL);
    t.err("process::clone_flags_high_bit_einval", process::clone_flags(1 << 40), Errno::EINVAL);
    t.eq("process::clone_flags_allowed", process::CLONE_FLAGS_ALLOWED,
         (g::CLONE_NEWNS | g::CLONE_NEWCGROUP | g::CLONE_NEWUTS | g::CLONE_NEWIPC | g::CLONE_NEWUSER | g::CLONE_NEWPID
             | g::CLONE_NEWNET) as u64);
    if !util::is_root() {
        say!("# process::clone_flags_newuts: not root, skipped (CLONE_NEWUTS needs CAP_SYS_ADMIN)");
        return;
    }
    let Some(before) = t.need("system::uname_before_clone", system::uname()) else { return };
    let Some((r, w)) = t.need("process::clone_pipe", syscall::io::pipe2(true, false)) else { return };
    match process::clone_flags(NsFlags::NEWUTS.bits() as u64) {
        Ok(Fork::Child) => {
            drop(r);
            let set = system::sethostname(b"clone-uts-child").is_ok();
            let seen = system::uname().is_ok_and(|u| system::uts_field(&u.nodename) == b"clone-uts-child");
            let _ = fs::write(&w, &[set as u8, seen as u8]);
            process::exit_group(0);
        }
        Ok(Fork::Parent(pid)) => {
            drop(w);
            let mut b = [0u8; 2];
            let got = fs::read_full(&r, &mut b);
            t.eq("process::clone_flags_newuts_child", (got, b), (Ok(2), [1, 1]));
            t.eq("process::clone_flags_newuts_exit", wait(pid).map(|s| s.exit_code()), Ok(Some(0)));
            let after = system::uname().map(|u| B(system::uts_field(&u.nodename)) == B(system::uts_field(&before.nodename)));
            t.eq("process::clone_flags_newuts_parent_unchanged", after, Ok(true));
        }
        Err(Errno::EINVAL) if under_qemu => {
            say!("# process::clone_flags_newuts: qemu-user refuses namespace flags in clone (EINVAL); checked natively");
        }
        Err(e) => t.fail("process::clone_flags_newuts", format_args!("{:?}", En(e))),
    }
    match process::clone_flags(NsFlags::NEWPID.bits() as u64) {
        Ok(Fork::Child) => process::exit_group(if process::getpid().0 == 1 { 31 } else { 32 }),
        Ok(Fork::Parent(pid)) => {
            t.check("process::clone_flags_newpid_outer_pid", pid.0 > 1, format_args!("got {pid:?}"));
            t.eq("process::clone_flags_newpid_is_pid1", wait(pid).map(|s| s.exit_code()), Ok(Some(31)));
        }
        Err(Errno::EINVAL) if under_qemu => {
            say!("# process::clone_flags_newpid: qemu-user refuses namespace flags in clone (EINVAL); checked natively");
        }
        Err(e) => t.fail("process::clone_flags_newpid", format_args!("{:?}", En(e))),
    }
}

/// clone_into_cgroup: bits other than namespaces are refused; an fd that is not a cgroup v2
/// directory is EBADF; a child forked into this process's own cgroup v2 group (which proves
/// the call without making a group) reports the same `/proc/self/cgroup`. A kernel or
/// qemu-user without clone3 or CLONE_INTO_CGROUP answers ENOSYS, E2BIG or EINVAL: the errors
/// autoinit's fallback (fork, then join) is for.
fn clone_into_cgroup(t: &mut T, under_qemu: bool) {
    use linux_raw_sys::general as g;
    let no_clone3 = |e: Errno| matches!(e, Errno::ENOSYS | Errno::E2BIG | Errno::EINVAL);
    t.err("process::clone_into_cgroup_vm_einval", process::clone_into_cgroup(g::CLONE_VM as u64, BorrowedFd::STDIN), Errno::EINVAL);
    let Some(root) = t.need("process::clone_into_cgroup_open_root", fs::open(c"/", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, 0)) else { return };
    match process::clone_into_cgroup(0, &root) {
        Ok(Fork::Child) => process::exit_group(99),
        Ok(Fork::Parent(pid)) => {
            let _ = wait(pid);
            t.fail("process::clone_into_cgroup_not_a_cgroup", format_args!("forked into / (not a cgroup)"));
        }
        Err(Errno::EBADF) => t.pass("process::clone_into_cgroup_not_a_cgroup"),
        Err(e) if no_clone3(e) => {
            say!("# process::clone_into_cgroup: {:?} (no clone3 or no CLONE_INTO_CGROUP{}): the fork-and-join fallback", En(e), if under_qemu { " in qemu-user" } else { "" });
            return;
        }
        Err(e) => t.fail("process::clone_into_cgroup_not_a_cgroup", format_args!("{:?}", En(e))),
    }
    // "0::/path" is this process's cgroup v2 group; the hierarchy is at /sys/fs/cgroup, or at
    // /sys/fs/cgroup/unified on a hybrid host.
    let mut own = [0u8; 512];
    let Ok(text) = read_file(CWD, c"/proc/self/cgroup", &mut own) else {
        say!("# process::clone_into_cgroup_own_group: no /proc/self/cgroup, skipped");
        return;
    };
    let Some(rel) = text.split(|&b| b == b'\n').find_map(|l| l.strip_prefix(b"0::")) else {
        say!("# process::clone_into_cgroup_own_group: no cgroup v2 line in /proc/self/cgroup, skipped");
        return;
    };
    let rel = core::str::from_utf8(rel).unwrap_or("/");
    let mut dir = None;
    for base in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        let ctl = cfmt!("{base}{rel}/cgroup.controllers");
        if fs::statx(CWD, ctl.as_cstr(), AtFlags::EMPTY, StatxMask::TYPE).is_ok() {
            dir = fs::open(cfmt!("{base}{rel}").as_cstr(), OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, 0).ok();
            break;
        }
    }
    let Some(dir) = dir else {
        say!("# process::clone_into_cgroup_own_group: no cgroup v2 directory for {rel}, skipped");
        return;
    };
    match process::clone_into_cgroup(0, &dir) {
        Ok(Fork::Child) => {
            let mut mine = [0u8; 512];
            let same = read_file(CWD, c"/proc/self/cgroup", &mut mine).is_ok_and(|m| m == text);
            process::exit_group(if same { 41 } else { 42 })
        }
        Ok(Fork::Parent(pid)) => {
            t.eq("process::clone_into_cgroup_own_group", wait(pid).map(|s| s.exit_code()), Ok(Some(41)));
        }
        // Moving into a group needs write access to its cgroup.procs (a read-only hierarchy
        // in a container says EROFS or EACCES).
        Err(e @ (Errno::EROFS | Errno::EACCES | Errno::EPERM)) => {
            say!("# process::clone_into_cgroup_own_group: {:?}: no write access to {rel}, skipped", En(e));
        }
        Err(e) => t.fail("process::clone_into_cgroup_own_group", format_args!("{:?}", En(e))),
    }
}
