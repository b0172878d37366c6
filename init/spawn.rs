//! The child side of starting a service command: after fork, everything a unit file asks for
//! is applied here, in the child, and then it execs. A failed step logs one line naming the
//! unit, the step and the error, and exits with systemd's code for that step (`EXIT_USER`
//! = 217 ...), which PID 1 reports. PID 1 itself only reads the unit file (once per start)
//! and forks: nothing here can hurt it, and the memory used here (a parse of the unit file
//! for a command that is not the first of a start, /etc/passwd, ...) is the child's, gone at
//! exec.

use crate::boot::Path;
use crate::cgroup;
use crate::env::{self, EnvTable};
use crate::exec_line;
use crate::log::{Level, Log};
use crate::passwd;
use crate::unit::{self, StdIn, StdOut, Unit};
use core::ffi::CStr;
use syscall::fs::{self, OFlags};
use syscall::io;
use syscall::process::{self, resource, ArgList, Pid, Rlimit};
use syscall::signal::{self, MaskHow, SigSet};
use syscall::{BorrowedFd, Errno, OwnedFd};

/// Where unit files are read from.
pub const UNIT_DIR: &str = "/etc/autoinit/services";
/// The datagram socket `Type=notify` services report to (`NOTIFY_SOCKET`).
pub const NOTIFY_SOCKET: &str = "/run/autoinit/notify";
/// /etc/passwd and /etc/group are read into this much memory (in the child only).
pub const PASSWD_BYTES: usize = 16384;
/// Every EnvironmentFile= is read into this much memory.
pub const ENV_FILE_BYTES: usize = 4096;
/// The search path for a command given without a directory, and the default PATH.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// systemd's exit codes for a failed setup step (systemd.exec(5), "Process exit codes").
pub mod exit {
    pub const CHDIR: i32 = 200;
    pub const NICE: i32 = 201;
    pub const EXEC: i32 = 203;
    pub const LIMITS: i32 = 205;
    pub const STDIN: i32 = 208;
    pub const STDOUT: i32 = 209;
    pub const GROUP: i32 = 216;
    pub const USER: i32 = 217;
    pub const CAPABILITIES: i32 = 218;
    pub const CGROUP: i32 = 219;
    /// Namespaces, the container's root or its mounts (container.rs).
    pub const NAMESPACE: i32 = 226;
    pub const NO_NEW_PRIVILEGES: i32 = 235;
    /// Not systemd's: the unit file changed and no longer parses, or is gone.
    pub const UNIT: i32 = 240;

    /// The step a setup exit code stands for.
    pub fn name(code: u8) -> Option<&'static str> {
        Some(match code as i32 {
            CHDIR => "CHDIR",
            NICE => "NICE",
            EXEC => "EXEC",
            LIMITS => "LIMITS",
            STDIN => "STDIN",
            STDOUT => "STDOUT",
            GROUP => "GROUP",
            USER => "USER",
            CAPABILITIES => "CAPABILITIES",
            CGROUP => "CGROUP",
            NAMESPACE => "NAMESPACE",
            NO_NEW_PRIVILEGES => "NO_NEW_PRIVILEGES",
            UNIT => "UNIT",
            _ => return None,
        })
    }
}

/// Which command of the unit to run.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Which {
    StartPre(u8),
    Start(u8),
    Stop(u8),
}

/// What PID 1 hands to the child.
pub struct Request<'a> {
    pub name: &'a str,
    pub which: Which,
    /// Write end of the output pipe when stdout or stderr is `kmsg`.
    pub out_pipe: Option<&'a OwnedFd>,
    /// Use the service's cgroup (cgroup2 is set up).
    pub cgroups: bool,
    /// `$MAINPID` for ExecStop.
    pub main_pid: Option<Pid>,
    /// The unit file as PID 1 read it for this start (None: the child reads it).
    pub unit: Option<&'a Unit<'a>>,
    /// PID 1 forked the child into the unit's cgroup (clone3 with CLONE_INTO_CGROUP): it
    /// need not join it.
    pub in_cgroup: bool,
}

/// Runs in the forked child; never returns.
pub fn child(log: &Log, req: &Request<'_>) -> ! {
    let _ = signal::sigprocmask(MaskHow::Set, &SigSet::EMPTY);
    let _ = process::setsid();
    let code = match setup_and_exec(log, req) {
        Err(code) => code,
    };
    process::exit_group(code)
}

fn fail(log: &Log, name: &str, what: &str, obj: &str, e: Errno, code: i32) -> i32 {
    log!(log, Level::Error, name, ": ", what, obj, ": ", e);
    code
}

fn setup_and_exec(log: &Log, req: &Request<'_>) -> Result<core::convert::Infallible, i32> {
    match req.unit {
        Some(u) => setup_unit(log, req, u),
        None => read_and_setup(log, req),
    }
}

/// The unit file is read here (a command that is not the first of a start): its buffer is in
/// this frame only, so that a child given PID 1's parse never touches (and copies) those pages.
#[inline(never)]
fn read_and_setup(log: &Log, req: &Request<'_>) -> Result<core::convert::Infallible, i32> {
    let name = req.name;
    let mut text = [0u8; unit::UNIT_FILE_BYTES];
    let n = read_unit_file(name, &mut text).map_err(|e| fail(log, name, "read unit file ", name, e, exit::UNIT))?;
    let parsed = unit::parse(text.get_mut(..n).unwrap_or(&mut []));
    match parsed.unit {
        Ok(u) => setup_unit(log, req, &u),
        Err(d) => {
            log!(log, Level::Error, UNIT_DIR, "/", name, ".service:", d.line, ": ", d.key.unwrap_or(""), if d.key.is_some() { ": " } else { "" }, d.message);
            Err(exit::UNIT)
        }
    }
}

fn setup_unit(log: &Log, req: &Request<'_>, u: &Unit<'_>) -> Result<core::convert::Infallible, i32> {
    let name = req.name;
    // The cgroup first: the limits must hold before the command does anything.
    if req.cgroups {
        setup_cgroup(log, name, u, req.in_cgroup)?;
    }

    // The container (only for ExecStart=; ExecStartPre= and ExecStop= run on the host), after
    // the cgroup so that every process of it is in the unit's. From here on, files are read
    // from the container's root.
    let own_root = match req.which {
        Which::Start(_) => crate::container::setup(log, name, u, req.cgroups)?.own_root,
        _ => false,
    };
    if needs_creds(u) {
        with_creds(log, req, u, own_root)
    } else {
        finish(log, req, u, own_root, None)
    }
}

fn needs_creds(u: &Unit<'_>) -> bool {
    u.user.is_some() || u.group.is_some() || !u.supplementary_groups.is_empty()
}

/// Credentials are looked up before stdio changes, so errors still reach the log. The 32 KiB
/// of /etc/passwd and /etc/group buffers are in this frame only: a unit without `User=`,
/// `Group=` or `SupplementaryGroups=` does not touch them.
#[inline(never)]
fn with_creds(log: &Log, req: &Request<'_>, u: &Unit<'_>, own_root: bool) -> Result<core::convert::Infallible, i32> {
    let mut passwd_buf = [0u8; PASSWD_BYTES];
    let mut group_buf = [0u8; PASSWD_BYTES];
    let creds = resolve_creds(log, req.name, u, &mut passwd_buf, &mut group_buf)?;
    finish(log, req, u, own_root, creds.as_ref())
}

fn finish(log: &Log, req: &Request<'_>, u: &Unit<'_>, own_root: bool, creds: Option<&Creds<'_>>) -> Result<core::convert::Infallible, i32> {
    let name = req.name;
    let mut env: EnvTable<{ env::SERVICE_ENV_VARS }, { env::SERVICE_ENV_BYTES }> = EnvTable::new();
    build_env(log, name, u, req, creds, &mut env)?;

    setup_stdio(log, name, u, req, own_root)?;
    apply_limits(log, name, u)?;
    if let Some(mask) = u.umask {
        let _ = process::umask(mask);
    }
    if let Some(nice) = u.nice {
        process::setpriority_process(0, i32::from(nice)).map_err(|e| fail(log, name, "set Nice", "", e, exit::NICE))?;
    }
    apply_caps_and_ids(log, name, u, creds)?;
    if let Some(wd) = &u.working_directory {
        let home = creds.map_or("/", |c| c.home);
        let dir = if wd.path == "~" { home } else { wd.path };
        let p = Path::of(&[dir.as_bytes()]).ok_or(exit::CHDIR)?;
        if let Err(e) = syscall::mount::chdir(p.c()) {
            if !wd.ignore_missing {
                return Err(fail(log, name, "WorkingDirectory=", dir, e, exit::CHDIR));
            }
        }
    }
    if u.no_new_privileges {
        process::set_no_new_privs().map_err(|e| fail(log, name, "NoNewPrivileges", "", e, exit::NO_NEW_PRIVILEGES))?;
    }
    exec(log, name, u, req.which, &env)
}

/// Reads `/etc/autoinit/services/NAME.service` into `buf`.
pub fn read_unit_file(name: &str, buf: &mut [u8]) -> Result<usize, Errno> {
    let p = unit_path(name)?;
    let fd = fs::open(p.c(), OFlags::RDONLY | OFlags::CLOEXEC, 0)?;
    let n = fs::read_full(&fd, buf)?;
    if n == buf.len() {
        // Full buffer: the file may be longer than the parser accepts.
        let mut probe = [0u8; 1];
        if fs::read(&fd, &mut probe).unwrap_or(0) > 0 {
            return Err(Errno::EFBIG);
        }
    }
    Ok(n)
}

pub fn unit_path(name: &str) -> Result<Path, Errno> {
    Path::of(&[UNIT_DIR.as_bytes(), b"/", name.as_bytes(), b".service"]).ok_or(Errno::ENAMETOOLONG)
}

fn setup_cgroup(log: &Log, name: &str, u: &Unit<'_>, in_cgroup: bool) -> Result<(), i32> {
    let err = |what: &str, e: Errno| fail(log, name, what, "", e, exit::CGROUP);
    if !in_cgroup {
        cgroup::create(name).map_err(|e| err("create cgroup", e))?;
    }
    let mut buf = [0u8; 24];
    if let Some(m) = &u.memory_max {
        let v = memory_bytes(m);
        let p = cgroup::path(name, "memory.max").map_err(|e| err("MemoryMax", e))?;
        cgroup::write_file(p.c(), cgroup::limit_text(v, &mut buf)).map_err(|e| err("MemoryMax (memory controller) ", e))?;
    }
    if let Some(t) = &u.tasks_max {
        let v = match t {
            unit::Limit::Infinity => None,
            unit::Limit::Count(n) | unit::Limit::Bytes(n) => Some(*n),
            unit::Limit::Percent(_) => None,
        };
        let p = cgroup::path(name, "pids.max").map_err(|e| err("TasksMax", e))?;
        cgroup::write_file(p.c(), cgroup::limit_text(v, &mut buf)).map_err(|e| err("TasksMax (pids controller) ", e))?;
    }
    if let Some(w) = u.cpu_weight {
        let p = cgroup::path(name, "cpu.weight").map_err(|e| err("CPUWeight", e))?;
        cgroup::write_file(p.c(), cgroup::limit_text(Some(u64::from(w)), &mut buf)).map_err(|e| err("CPUWeight (cpu controller) ", e))?;
    }
    if in_cgroup {
        return Ok(());
    }
    cgroup::join(name).map_err(|e| err("join cgroup", e))
}

/// MemoryMax= in bytes; a percentage is of the physical memory (from /proc/meminfo).
fn memory_bytes(l: &unit::Limit) -> Option<u64> {
    match l {
        unit::Limit::Infinity => None,
        unit::Limit::Bytes(n) | unit::Limit::Count(n) => Some(*n),
        unit::Limit::Percent(p) => {
            let total = mem_total_bytes()?;
            Some(total / 100 * u64::from(*p))
        }
    }
}

fn mem_total_bytes() -> Option<u64> {
    let fd = fs::open(c"/proc/meminfo", OFlags::RDONLY | OFlags::CLOEXEC, 0).ok()?;
    let mut buf = [0u8; 256];
    let n = fs::read(&fd, &mut buf).ok()?;
    let text = core::str::from_utf8(buf.get(..n)?).ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb = line.split_ascii_whitespace().nth(1)?;
    crate::text::parse_u64(kb.as_bytes()).map(|k| k.saturating_mul(1024))
}

pub struct Creds<'p> {
    pub uid: u32,
    pub gid: u32,
    pub user: &'p str,
    pub home: &'p str,
    pub shell: &'p str,
    pub groups: heapless::Vec<u32, { unit::MAX_GROUPS * 2 }>,
}

fn read_small(path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    let fd = fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, 0)?;
    let n = fs::read_full(&fd, buf)?;
    if n == buf.len() {
        return Err(Errno::EFBIG);
    }
    Ok(n)
}

fn resolve_creds<'p>(log: &Log, name: &str, u: &Unit<'p>, pw: &'p mut [u8], gr: &'p mut [u8]) -> Result<Option<Creds<'p>>, i32> {
    if u.user.is_none() && u.group.is_none() && u.supplementary_groups.is_empty() {
        return Ok(None);
    }
    let pn = read_small(c"/etc/passwd", pw).map_err(|e| fail(log, name, "read ", "/etc/passwd", e, exit::USER))?;
    let gn = match read_small(c"/etc/group", gr) {
        Ok(n) => n,
        Err(Errno::ENOENT) => 0,
        Err(e) => return Err(fail(log, name, "read ", "/etc/group", e, exit::GROUP)),
    };
    let passwd_text = core::str::from_utf8(pw.get(..pn).unwrap_or(&[])).map_err(|_| fail(log, name, "read ", "/etc/passwd", Errno::EILSEQ, exit::USER))?;
    let group_text = core::str::from_utf8(gr.get(..gn).unwrap_or(&[])).map_err(|_| fail(log, name, "read ", "/etc/group", Errno::EILSEQ, exit::GROUP))?;
    let user = u.user.unwrap_or("root");
    let found = match passwd::find_user(passwd_text, user) {
        Ok(f) => f,
        Err(e) => {
            log!(log, Level::Error, name, ": User=", user, ": ", e.message(), " in /etc/passwd");
            return Err(exit::USER);
        }
    };
    let mut gid = found.gid;
    if let Some(g) = u.group {
        gid = match passwd::find_group(group_text, g) {
            Ok(g) => g,
            Err(e) => {
                log!(log, Level::Error, name, ": Group=", g, ": ", e.message(), " in /etc/group");
                return Err(exit::GROUP);
            }
        };
    }
    let mut groups = heapless::Vec::new();
    if u.user.is_some() {
        if let Err(e) = passwd::groups_of(group_text, found.name, gid, &mut groups) {
            log!(log, Level::Error, name, ": groups of ", found.name, ": ", e.message(), " in /etc/group");
            return Err(exit::GROUP);
        }
    } else {
        let _ = groups.push(gid);
    }
    for g in &u.supplementary_groups {
        match passwd::find_group(group_text, g) {
            Ok(id) => {
                if !groups.contains(&id) && groups.push(id).is_err() {
                    log!(log, Level::Error, name, ": SupplementaryGroups=: more than ", groups.capacity(), " groups");
                    return Err(exit::GROUP);
                }
            }
            Err(e) => {
                log!(log, Level::Error, name, ": SupplementaryGroups=", *g, ": ", e.message(), " in /etc/group");
                return Err(exit::GROUP);
            }
        }
    }
    Ok(Some(Creds { uid: found.uid, gid, user: found.name, home: found.home, shell: found.shell, groups }))
}

fn build_env<const N: usize, const B: usize>(
    log: &Log,
    name: &str,
    u: &Unit<'_>,
    req: &Request<'_>,
    creds: Option<&Creds<'_>>,
    env: &mut EnvTable<N, B>,
) -> Result<(), i32> {
    let full = |e| fail(log, name, "environment", "", e, exit::EXEC);
    let mut set = |k: &str, v: &str| env.set(k, v).map_err(|_| full(Errno::E2BIG));
    set("PATH", DEFAULT_PATH)?;
    if let Some(c) = creds {
        set("HOME", c.home)?;
        set("USER", c.user)?;
        set("LOGNAME", c.user)?;
        if !c.shell.is_empty() {
            set("SHELL", c.shell)?;
        }
    }
    if u.service_type == unit::ServiceType::Notify {
        set("NOTIFY_SOCKET", NOTIFY_SOCKET)?;
    }
    if let Some(pid) = req.main_pid {
        let mut d = [0u8; 12];
        set("MAINPID", core::str::from_utf8(cgroup::decimal(pid.raw().max(0) as u64, &mut d)).unwrap_or("0"))?;
    }
    for line in &u.environment {
        if let Err(e) = env::assignments(line, name, env) {
            log!(log, Level::Error, name, ": Environment=", *line, ": ", e.message());
            return Err(exit::EXEC);
        }
    }
    for f in &u.environment_files {
        let mut buf = [0u8; ENV_FILE_BYTES];
        let p = Path::of(&[f.path.as_bytes()]).ok_or(exit::EXEC)?;
        let n = match read_small(p.c(), &mut buf) {
            Ok(n) => n,
            Err(Errno::ENOENT) if f.ignore_missing => continue,
            Err(e) => return Err(fail(log, name, "EnvironmentFile=", f.path, e, exit::EXEC)),
        };
        let text = core::str::from_utf8(buf.get(..n).unwrap_or(&[])).map_err(|_| fail(log, name, "EnvironmentFile=", f.path, Errno::EILSEQ, exit::EXEC))?;
        if let Err(e) = env::parse_env_file(text, env) {
            log!(log, Level::Error, name, ": EnvironmentFile=", f.path, ":", e.line, ": ", e.error.message());
            return Err(exit::EXEC);
        }
    }
    Ok(())
}

/// Opens what StandardInput/Output/Error name and makes them fds 0, 1 and 2.
fn setup_stdio(log: &Log, name: &str, u: &Unit<'_>, req: &Request<'_>, own_root: bool) -> Result<(), i32> {
    // In a container the host's TTYPath= is bound as its /dev/console.
    let tty = if own_root { "/dev/console" } else { u.tty_path.unwrap_or("/dev/console") };
    let tty_c = Path::of(&[tty.as_bytes()]).ok_or(exit::STDIN)?;
    let stdin = match u.stdin {
        StdIn::Null => fs::open(c"/dev/null", OFlags::RDWR | OFlags::NOCTTY, 0),
        StdIn::Tty => fs::open(tty_c.c(), OFlags::RDWR, 0).inspect(|fd| {
            // The session leader's first tty becomes its controlling terminal; say so.
            let _ = io::set_controlling_tty(fd, true);
        }),
    }
    .map_err(|e| fail(log, name, "StandardInput ", tty, e, exit::STDIN))?;
    put_fd(Out::Fd(stdin), 0);
    let out = open_output(&u.stdout, u.stdin, tty_c.c(), req).map_err(|(e, what)| fail(log, name, "StandardOutput ", what, e, exit::STDOUT))?;
    let err_spec = match u.stderr {
        StdOut::Inherit => &u.stdout,
        ref other => other,
    };
    let err = open_output(err_spec, u.stdin, tty_c.c(), req).map_err(|(e, what)| fail(log, name, "StandardError ", what, e, exit::STDOUT))?;
    put_fd(out, 1);
    put_fd(err, 2);
    Ok(())
}

enum Out<'p> {
    Fd(OwnedFd),
    /// Reuse fd 0 (stdin is the tty).
    Stdin,
    /// The output pipe PID 1 reads.
    Pipe(&'p OwnedFd),
}

fn open_output<'s, 'p>(spec: &StdOut<'s>, stdin: StdIn, tty: &CStr, req: &Request<'p>) -> Result<Out<'p>, (Errno, &'s str)> {
    let open = |p: &str, flags: OFlags| -> Result<Out, (Errno, &'s str)> {
        let c = Path::of(&[p.as_bytes()]).ok_or((Errno::ENAMETOOLONG, ""))?;
        fs::open(c.c(), flags | OFlags::WRONLY | OFlags::NOCTTY | OFlags::CREAT, 0o644).map(Out::Fd).map_err(|e| (e, ""))
    };
    match spec {
        StdOut::Null => fs::open(c"/dev/null", OFlags::WRONLY | OFlags::NOCTTY, 0).map(Out::Fd).map_err(|e| (e, "null")),
        StdOut::Console => fs::open(c"/dev/console", OFlags::WRONLY | OFlags::NOCTTY, 0).map(Out::Fd).map_err(|e| (e, "console")),
        // `inherit` (the default with a tty on stdin, as in systemd): the tty of fd 0.
        StdOut::Tty | StdOut::Inherit if stdin == StdIn::Tty => Ok(Out::Stdin),
        StdOut::Tty => fs::open(tty, OFlags::WRONLY | OFlags::NOCTTY, 0).map(Out::Fd).map_err(|e| (e, "tty")),
        StdOut::File(p) => open(p, OFlags::EMPTY).map_err(|(e, _)| (e, *p)),
        StdOut::Append(p) => open(p, OFlags::APPEND).map_err(|(e, _)| (e, *p)),
        StdOut::Truncate(p) => open(p, OFlags::TRUNC).map_err(|(e, _)| (e, *p)),
        StdOut::Kmsg | StdOut::Inherit => match req.out_pipe {
            Some(w) => Ok(Out::Pipe(w)),
            // No pipe (PID 1 could not make one): straight to /dev/kmsg, unprefixed.
            None => fs::open(c"/dev/kmsg", OFlags::WRONLY | OFlags::NOCTTY, 0).map(Out::Fd).map_err(|e| (e, "kmsg")),
        },
    }
}

fn put_fd(out: Out<'_>, target: i32) {
    match out {
        Out::Fd(fd) => {
            if fd.raw() != target {
                if let Ok(dup) = io::dup3(&fd, target, false) {
                    let _ = dup.into_raw();
                }
            } else {
                let _ = fd.into_raw();
            }
        }
        Out::Stdin => {
            if let Ok(dup) = io::dup3(BorrowedFd::STDIN, target, false) {
                let _ = dup.into_raw();
            }
        }
        Out::Pipe(w) => {
            if let Ok(dup) = io::dup3(w, target, false) {
                let _ = dup.into_raw();
            }
        }
    }
}

fn apply_limits(log: &Log, name: &str, u: &Unit<'_>) -> Result<(), i32> {
    for (key, res, lim) in [
        ("LimitNOFILE", resource::NOFILE, &u.limit_nofile),
        ("LimitNPROC", resource::NPROC, &u.limit_nproc),
        ("LimitCORE", resource::CORE, &u.limit_core),
    ] {
        if let Some(l) = lim {
            let r = Rlimit { cur: l.soft, max: l.hard };
            process::prlimit64(0, res, Some(&r)).map_err(|e| fail(log, name, key, "", e, exit::LIMITS))?;
        }
    }
    Ok(())
}

/// Bounding set, ambient capabilities, groups, gid, uid: in the order the kernel needs
/// (dropping from the bounding set needs CAP_SETPCAP, which setuid takes away).
fn apply_caps_and_ids(log: &Log, name: &str, u: &Unit<'_>, creds: Option<&Creds<'_>>) -> Result<(), i32> {
    let caps_err = |what: &str, e| fail(log, name, what, "", e, exit::CAPABILITIES);
    // /proc/sys/kernel/cap_last_cap is read only for a unit that changes capabilities.
    let last = if u.capability_bounding_set.is_some() || u.ambient_capabilities != 0 { last_cap() } else { 0 };
    if let Some(keep) = u.capability_bounding_set {
        for cap in 0..=last {
            if keep & (1u64 << cap) == 0 {
                match process::capbset_drop(cap) {
                    Ok(()) | Err(Errno::EINVAL) => {}
                    Err(e) => return Err(caps_err("CapabilityBoundingSet", e)),
                }
            }
        }
    }
    let ambient = u.ambient_capabilities & mask_upto(last);
    if let Some(c) = creds {
        if ambient != 0 {
            process::set_keepcaps(true).map_err(|e| caps_err("keep capabilities", e))?;
        }
        process::setgroups(&c.groups).map_err(|e| fail(log, name, "setgroups", "", e, exit::GROUP))?;
        process::setresgid(c.gid, c.gid, c.gid).map_err(|e| fail(log, name, "setgid", "", e, exit::GROUP))?;
        process::setresuid(c.uid, c.uid, c.uid).map_err(|e| fail(log, name, "setuid", "", e, exit::USER))?;
    }
    if ambient != 0 {
        // Ambient capabilities must be permitted and inheritable first.
        let sets = syscall::cap::capget().map_err(|e| caps_err("capget", e))?;
        let (eff, perm, inh) = (sets.effective, sets.permitted, sets.inheritable);
        let keep = if creds.is_some() { ambient } else { perm };
        syscall::cap::capset(eff | ambient & keep, perm | ambient & keep, inh | ambient).map_err(|e| caps_err("AmbientCapabilities (capset)", e))?;
        for cap in 0..=last {
            if ambient & (1u64 << cap) != 0 {
                process::cap_ambient_raise(cap).map_err(|e| caps_err("AmbientCapabilities", e))?;
            }
        }
    }
    Ok(())
}

fn mask_upto(last: u32) -> u64 {
    if last >= 63 { u64::MAX } else { (1u64 << (last + 1)) - 1 }
}

/// The highest capability the kernel knows (/proc/sys/kernel/cap_last_cap), 40 if unreadable.
fn last_cap() -> u32 {
    let mut buf = [0u8; 8];
    let n = fs::open(c"/proc/sys/kernel/cap_last_cap", OFlags::RDONLY | OFlags::CLOEXEC, 0)
        .and_then(|fd| fs::read(&fd, &mut buf))
        .unwrap_or(0);
    core::str::from_utf8(buf.get(..n).unwrap_or(&[]))
        .ok()
        .and_then(|t| crate::cmdline::number(t.trim(), 63))
        .map_or(40, |v| v as u32)
}

fn lookup_in<'e, const N: usize, const B: usize>(env: &'e EnvTable<N, B>) -> impl Fn(&str) -> Option<&'e str> + 'e {
    move |k| env.lookup(k)
}

fn exec<'e, const N: usize, const B: usize>(log: &Log, name: &str, u: &Unit<'_>, which: Which, env: &'e EnvTable<N, B>) -> Result<core::convert::Infallible, i32> {
    let (list, i) = match which {
        Which::StartPre(i) => (&u.exec_start_pre, i),
        Which::Start(i) => (&u.exec_start, i),
        Which::Stop(i) => (&u.exec_stop, i),
    };
    let Some(cmd) = list.get(usize::from(i)) else {
        log!(log, Level::Error, name, ": the unit file changed: command ", u32::from(i) + 1, " is gone");
        return Err(exit::UNIT);
    };
    let mut buf = [0u8; exec_line::ARG_BYTES];
    let mut argv: heapless::Vec<&CStr, { exec_line::MAX_ARGS }> = heapless::Vec::new();
    let lookup = lookup_in(env);
    let vars: Option<&dyn Fn(&str) -> Option<&'e str>> = if cmd.no_env_expansion { None } else { Some(&lookup) };
    let how = match exec_line::split(cmd.raw, name, vars, &mut buf, &mut argv) {
        Ok(how) => how,
        Err(e) => {
            log!(log, Level::Error, name, ": command line ", cmd.raw, ": ", e.message());
            return Err(exit::EXEC);
        }
    };
    let Some(&program) = argv.first() else {
        log!(log, Level::Error, name, ": empty command line");
        return Err(exit::EXEC);
    };
    let mut args: ArgList<'_, { exec_line::MAX_ARGS + 1 }> = ArgList::new();
    // '@': the second word is argv[0].
    let skip = if cmd.argv0_override { 1 } else { 0 };
    for a in argv.iter().skip(skip) {
        let _ = args.push(a);
    }
    let mut envp: ArgList<'_, { env::SERVICE_ENV_VARS + 1 }> = ArgList::new();
    for e in env.iter() {
        let _ = envp.push(e);
    }
    let err = match how {
        exec_line::Program::Absolute => process::execve(program, &args, &envp),
        exec_line::Program::Search => {
            // A bare name: the fixed search path, as systemd does.
            let mut last = Errno::ENOENT;
            let mut pbuf = [0u8; 256];
            for dir in exec_line::SEARCH_PATH {
                if let Some(p) = exec_line::search_candidate(dir, program, &mut pbuf) {
                    last = process::execve(p, &args, &envp);
                    if last != Errno::ENOENT {
                        break;
                    }
                }
            }
            last
        }
    };
    log!(log, Level::Error, name, ": exec ", program, ": ", err);
    Err(exit::EXEC)
}
