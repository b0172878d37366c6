//! Containers, the runtime: namespaces, the container's root and the small init that is PID 1
//! of a `PrivatePIDs=yes` container. Runs in the service's child (spawn.rs), after it has
//! joined the unit's cgroup and before credentials, environment and stdio, which then come
//! from inside the container. The key syntax and tables are in `container_spec.rs`.
//!
//! Order, and why:
//! 1. PID 1 forked the child with CLONE_NEWPID (PrivatePIDs=): it is PID 1 of the new pid
//!    namespace, so the /proc mounted below shows only the container's processes.
//! 2. unshare the mount, cgroup (the unit's cgroup becomes the container's cgroup root), net,
//!    IPC and UTS namespaces; `lo` up; sethostname.
//! 3. The root, built in the new mount namespace while still root of the host's user
//!    namespace (squashfs, loop devices, mknod and sysfs need that): a tmpfs with the image at
//!    `/rofs_root` linked as the host's root is (boot::link_root), or a bind of RootDirectory=;
//!    then /proc, /sys (read-only), /sys/fs/cgroup, a minimal /dev, /run, /tmp, BindPaths=,
//!    BindReadOnlyPaths=, TemporaryFileSystem=; pivot_root and the old root detached.
//! 4. PrivateUsers=: a new user namespace; a helper process left in the host's namespace
//!    writes uid_map/gid_map (`0 FIRST COUNT`), then the child becomes root inside.
//! 5. PrivatePIDs=yes: fork the service process (which goes on to exec) and stay as the
//!    container's init: reap everything, forward signals, exit with the service's status.

use crate::boot::{self, Path};
use crate::container_spec::{self as spec, IdRange};
use crate::log;
use crate::log::{Level, Log};
use crate::spawn::exit;
use crate::unit::{PrivatePids, StdIn, StdOut, Unit};
use core::ffi::CStr;
use syscall::fs::{self, AtFlags, OFlags, StatxMask};
use syscall::mount::{self, MountFlags, UnmountFlags};
use syscall::process::{self, Fork, NsFlags, Pid, WaitFlags};
use syscall::signal::{self, MaskHow, SfdFlags, SigSet, Signal};
use syscall::{io, BorrowedFd, Errno};

/// Signals the container's init passes on to the service process.
pub const FORWARDED: SigSet = SigSet::EMPTY
    .with(Signal::TERM)
    .with(Signal::INT)
    .with(Signal::HUP)
    .with(Signal::USR1)
    .with(Signal::USR2)
    .with(Signal::QUIT)
    .with(Signal::WINCH);

/// Logs `NAME: what obj: errno` and gives the NAMESPACE exit code.
fn fail(log: &Log, name: &str, what: &str, obj: &[u8], e: Errno) -> i32 {
    log!(log, Level::Error, name, ": ", what, obj, ": ", e);
    exit::NAMESPACE
}

fn path(parts: &[&[u8]]) -> Result<Path, Errno> {
    Path::of(parts).ok_or(Errno::ENAMETOOLONG)
}

fn mkdir(p: &CStr, mode: u32) -> Result<(), Errno> {
    match fs::mkdirat(BorrowedFd::CWD, p, mode) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

/// What the rest of the child's setup needs to know.
pub struct Setup {
    /// The service runs under its own root: its tty is the container's `/dev/console`.
    pub own_root: bool,
}

/// Sets up the container a unit asks for (nothing if it asks for none). Returns in the
/// process that goes on to set up and exec the command; with PrivatePIDs=yes the container's
/// init stays behind and never returns.
pub fn setup(log: &Log, name: &str, u: &Unit<'_>, cgroups: bool) -> Result<Setup, i32> {
    let own_root = spec::has_root(u);
    if !spec::wanted(u) {
        return Ok(Setup { own_root });
    }
    let flags = spec::unshare_flags(u, cgroups);
    if flags != 0 {
        process::unshare(NsFlags(flags)).map_err(|e| fail(log, name, "unshare namespaces", b"", e))?;
    }
    if flags & NsFlags::NEWNS.bits() != 0 {
        // Nothing mounted here may reach the host's mount table.
        mount::mount(None, c"/", None, MountFlags::REC | MountFlags::SLAVE, None)
            .map_err(|e| fail(log, name, "make / a slave mount", b"", e))?;
    }
    if u.private_network {
        syscall::net::interface_up(c"lo").map_err(|e| fail(log, name, "PrivateNetwork: bring up ", b"lo", e))?;
    }
    if let Some(h) = u.hostname {
        syscall::system::sethostname(h.as_bytes()).map_err(|e| fail(log, name, "Hostname=", h.as_bytes(), e))?;
    }
    if own_root {
        build_root(log, name, u, cgroups)?;
    } else {
        if u.private_pids != PrivatePids::No {
            mount_proc(c"/proc").map_err(|e| fail(log, name, "mount proc on ", b"/proc", e))?;
        }
        extra_mounts(log, name, u, b"")?;
    }
    if let Some(r) = u.private_users {
        enter_user_namespace(log, name, r)?;
    }
    if u.private_pids == PrivatePids::Yes {
        become_init(log, name)?;
    }
    Ok(Setup { own_root })
}

fn mount_proc(target: &CStr) -> Result<(), Errno> {
    mount::mount(Some(c"proc"), target, Some(c"proc"), MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC, None)
}

/// The tmpfs options of the container's writable directories: owned by root inside.
fn tmpfs_opts<'b>(mode: &str, users: Option<IdRange>, buf: &'b mut Path) -> Result<&'b CStr, Errno> {
    *buf = path(&[b"mode=", mode.as_bytes()])?;
    if let Some(r) = users {
        let mut l = crate::log::Line::new();
        l.push(b",uid=");
        crate::log::Piece::put(&r.first, &mut l);
        l.push(b",gid=");
        crate::log::Piece::put(&r.first, &mut l);
        buf.push(l.as_bytes()).ok_or(Errno::ENAMETOOLONG)?;
    }
    Ok(buf.c())
}

fn mount_tmpfs(target: &CStr, flags: MountFlags, data: &CStr) -> Result<(), Errno> {
    mount::mount(Some(c"tmpfs"), target, Some(c"tmpfs"), flags, Some(data))
}

fn build_root(log: &Log, name: &str, u: &Unit<'_>, cgroups: bool) -> Result<(), i32> {
    let root = spec::ROOT_MOUNT_POINT.as_bytes();
    let rootp = path(&[root]).map_err(|e| fail(log, name, "root ", root, e))?;
    let at = |rel: &[u8]| path(&[root, rel]).map_err(|e| fail(log, name, "path ", rel, e));
    mkdir(rootp.c(), 0o755).map_err(|e| fail(log, name, "mkdir ", root, e))?;
    let mut opts = Path::new();
    let secure = MountFlags::NOSUID | MountFlags::NODEV;
    if let Some(img) = u.root_image {
        let o = tmpfs_opts("0755", u.private_users, &mut opts).map_err(|e| fail(log, name, "tmpfs options", b"", e))?;
        mount_tmpfs(rootp.c(), MountFlags::EMPTY, o).map_err(|e| fail(log, name, "mount tmpfs on ", root, e))?;
        let rofs = at(b"/rofs_root")?;
        mkdir(rofs.c(), 0o755).map_err(|e| fail(log, name, "mkdir ", rofs.bytes(), e))?;
        let image = path(&[img.as_bytes()]).map_err(|e| fail(log, name, "RootImage=", img.as_bytes(), e))?;
        // Both log their own error lines.
        boot::mount_squashfs(log, "RootImage ", &image, &rofs).map_err(|_| exit::NAMESPACE)?;
        boot::link_root(log, root).map_err(|_| exit::NAMESPACE)?;
    } else if let Some(dir) = u.root_directory {
        let src = path(&[dir.as_bytes()]).map_err(|e| fail(log, name, "RootDirectory=", dir.as_bytes(), e))?;
        mount::mount(Some(src.c()), rootp.c(), None, MountFlags::BIND | MountFlags::REC, None)
            .map_err(|e| fail(log, name, "RootDirectory: bind ", dir.as_bytes(), e))?;
        for d in ["/proc", "/sys", "/dev", "/run", "/tmp"] {
            let p = at(d.as_bytes())?;
            mkdir(p.c(), 0o755).map_err(|e| fail(log, name, "RootDirectory: mkdir ", d.as_bytes(), e))?;
        }
    }
    let proc_ = at(b"/proc")?;
    mount_proc(proc_.c()).map_err(|e| fail(log, name, "mount proc on ", b"/proc", e))?;
    let sys = at(b"/sys")?;
    mount::mount(Some(c"sysfs"), sys.c(), Some(c"sysfs"), secure | MountFlags::NOEXEC | MountFlags::RDONLY, None)
        .map_err(|e| fail(log, name, "mount sysfs on ", b"/sys", e))?;
    if cgroups {
        // The unit's cgroup, seen through the cgroup namespace as the root: an init inside
        // (systemd) manages its own subtree, and the limits above it still hold.
        let cg = at(b"/sys/fs/cgroup")?;
        mount::mount(Some(c"cgroup2"), cg.c(), Some(c"cgroup2"), secure | MountFlags::NOEXEC, None)
            .map_err(|e| fail(log, name, "mount cgroup2 on ", b"/sys/fs/cgroup", e))?;
    }
    make_dev(log, name, u)?;
    for (dir, mode) in [("/run", "0755"), ("/tmp", "1777")] {
        let p = at(dir.as_bytes())?;
        let o = tmpfs_opts(mode, u.private_users, &mut opts).map_err(|e| fail(log, name, "tmpfs options", b"", e))?;
        mount_tmpfs(p.c(), secure, o).map_err(|e| fail(log, name, "mount tmpfs on ", dir.as_bytes(), e))?;
    }
    extra_mounts(log, name, u, root)?;
    // pivot_root(".", ".") stacks the old root on the new one; detaching it leaves only the
    // container's tree reachable.
    mount::chdir(rootp.c()).map_err(|e| fail(log, name, "chdir ", root, e))?;
    mount::pivot_root(c".", c".").map_err(|e| fail(log, name, "pivot_root into ", root, e))?;
    mount::umount2(c".", UnmountFlags::DETACH).map_err(|e| fail(log, name, "detach the old root", b"", e))?;
    mount::chdir(c"/").map_err(|e| fail(log, name, "chdir ", b"/", e))?;
    Ok(())
}

/// The host tty bound on the container's `/dev/console`, if the unit uses a terminal.
fn host_console<'a>(u: &Unit<'a>) -> Option<&'a str> {
    let tty = u.tty_path.unwrap_or("/dev/console");
    if u.stdin == StdIn::Tty || u.stdout == StdOut::Tty || u.stderr == StdOut::Tty {
        Some(tty)
    } else if u.stdout == StdOut::Console || u.stderr == StdOut::Console {
        Some("/dev/console")
    } else {
        None
    }
}

/// A tmpfs /dev with the nodes of [`spec::DEV_NODES`], its links, a new devpts instance,
/// /dev/shm, and the host's tty as /dev/console when the unit uses one.
fn make_dev(log: &Log, name: &str, u: &Unit<'_>) -> Result<(), i32> {
    let root = spec::ROOT_MOUNT_POINT.as_bytes();
    let at = |rel: &[u8]| path(&[root, b"/dev", rel]).map_err(|e| fail(log, name, "path ", rel, e));
    let dev = at(b"")?;
    mount_tmpfs(dev.c(), MountFlags::NOSUID | MountFlags::NOEXEC, c"mode=0755,size=256k")
        .map_err(|e| fail(log, name, "mount tmpfs on ", b"/dev", e))?;
    for n in &spec::DEV_NODES {
        let p = path(&[root, b"/dev/", n.name.as_bytes()]).map_err(|e| fail(log, name, "path ", n.name.as_bytes(), e))?;
        fs::mknodat(BorrowedFd::CWD, p.c(), fs::mode::IFCHR | 0o666, fs::makedev(n.major, n.minor))
            .and_then(|()| fs::fchmodat(BorrowedFd::CWD, p.c(), 0o666))
            .map_err(|e| fail(log, name, "mknod /dev/", n.name.as_bytes(), e))?;
    }
    for (link, target) in spec::DEV_LINKS {
        let p = path(&[root, b"/dev/", link.as_bytes()]).map_err(|e| fail(log, name, "path ", link.as_bytes(), e))?;
        let t = path(&[target.as_bytes()]).map_err(|e| fail(log, name, "path ", target.as_bytes(), e))?;
        fs::symlinkat(t.c(), BorrowedFd::CWD, p.c()).map_err(|e| fail(log, name, "symlink /dev/", link.as_bytes(), e))?;
    }
    let pts = at(b"/pts")?;
    mkdir(pts.c(), 0o755).map_err(|e| fail(log, name, "mkdir ", b"/dev/pts", e))?;
    mount::mount(Some(c"devpts"), pts.c(), Some(c"devpts"), MountFlags::NOSUID | MountFlags::NOEXEC, Some(c"newinstance,ptmxmode=0666,mode=0620"))
        .map_err(|e| fail(log, name, "mount devpts on ", b"/dev/pts", e))?;
    let shm = at(b"/shm")?;
    mkdir(shm.c(), 0o1777).map_err(|e| fail(log, name, "mkdir ", b"/dev/shm", e))?;
    let mut opts = Path::new();
    let o = tmpfs_opts("1777", u.private_users, &mut opts).map_err(|e| fail(log, name, "tmpfs options", b"", e))?;
    mount_tmpfs(shm.c(), MountFlags::NOSUID | MountFlags::NODEV, o).map_err(|e| fail(log, name, "mount tmpfs on ", b"/dev/shm", e))?;
    if let Some(tty) = host_console(u) {
        let console = at(b"/console")?;
        let src = path(&[tty.as_bytes()]).map_err(|e| fail(log, name, "path ", tty.as_bytes(), e))?;
        fs::open(console.c(), OFlags::WRONLY | OFlags::CREAT | OFlags::CLOEXEC | OFlags::NOCTTY, 0o600)
            .and_then(|_| mount::mount(Some(src.c()), console.c(), None, MountFlags::BIND, None))
            .map_err(|e| fail(log, name, "bind as /dev/console: ", tty.as_bytes(), e))?;
    }
    Ok(())
}

/// Whether `p` is a directory (following symlinks).
fn is_dir(p: &CStr) -> Result<bool, Errno> {
    let st = fs::statx(BorrowedFd::CWD, p, AtFlags::EMPTY, StatxMask::TYPE)?;
    Ok(u32::from(st.stx_mode) & fs::mode::IFMT == fs::mode::IFDIR)
}

/// Makes `dst` a mount point like `src`: a directory for a directory, an empty file otherwise.
fn make_mount_point(dst: &CStr, dir: bool) -> Result<(), Errno> {
    if dir {
        mkdir(dst, 0o755)
    } else {
        match fs::statx(BorrowedFd::CWD, dst, AtFlags::EMPTY, StatxMask::TYPE) {
            Ok(_) => Ok(()),
            Err(Errno::ENOENT) => fs::open(dst, OFlags::WRONLY | OFlags::CREAT | OFlags::CLOEXEC | OFlags::NOCTTY, 0o644).map(|_| ()),
            Err(e) => Err(e),
        }
    }
}

/// BindPaths=, BindReadOnlyPaths=, TemporaryFileSystem=, destinations under `root` (empty
/// without a root of its own).
fn extra_mounts(log: &Log, name: &str, u: &Unit<'_>, root: &[u8]) -> Result<(), i32> {
    let mut count = 0usize;
    let mut result = Ok(());
    let lines = u.bind_paths.iter().map(|l| (l, false)).chain(u.bind_read_only_paths.iter().map(|l| (l, true)));
    for (line, ro) in lines {
        let r = spec::binds(line, ro, |b| {
            count += 1;
            if count > spec::MAX_CONTAINER_MOUNTS {
                return Err("more than MAX_CONTAINER_MOUNTS (16) mounts");
            }
            result = bind(log, name, &b, root);
            if result.is_err() { Err("") } else { Ok(()) }
        });
        if let Err(why) = r {
            result?;
            log!(log, Level::Error, name, ": ", if ro { "BindReadOnlyPaths=" } else { "BindPaths=" }, *line, ": ", why);
            return Err(exit::NAMESPACE);
        }
    }
    // A notify service reports to PID 1's socket: bound at the same path in its own root
    // (the container's /run is a fresh tmpfs), as systemd-nspawn does with NOTIFY_SOCKET.
    if u.service_type == crate::unit::ServiceType::Notify && !root.is_empty() {
        let sock = spec::Bind {
            source: crate::spawn::NOTIFY_SOCKET,
            dest: crate::spawn::NOTIFY_SOCKET,
            ignore_missing: true,
            recursive: false,
            read_only: false,
        };
        if let Some(dir) = crate::spawn::NOTIFY_SOCKET.rsplit_once('/').map(|(d, _)| d) {
            let p = path(&[root, dir.as_bytes()]).map_err(|e| fail(log, name, "notify socket ", dir.as_bytes(), e))?;
            mkdir(p.c(), 0o755).map_err(|e| fail(log, name, "mkdir ", dir.as_bytes(), e))?;
        }
        bind(log, name, &sock, root)?;
    }
    for line in &u.temporary_file_system {
        let r = spec::tmpfs_list(line, |t| {
            count += 1;
            if count > spec::MAX_CONTAINER_MOUNTS {
                return Err("more than MAX_CONTAINER_MOUNTS (16) mounts");
            }
            result = tmpfs(log, name, &t, root);
            if result.is_err() { Err("") } else { Ok(()) }
        });
        if let Err(why) = r {
            result?;
            log!(log, Level::Error, name, ": TemporaryFileSystem=", *line, ": ", why);
            return Err(exit::NAMESPACE);
        }
    }
    Ok(())
}

fn bind(log: &Log, name: &str, b: &spec::Bind<'_>, root: &[u8]) -> Result<(), i32> {
    let key = if b.read_only { "BindReadOnlyPaths=" } else { "BindPaths=" };
    let src = path(&[b.source.as_bytes()]).map_err(|e| fail(log, name, key, b.source.as_bytes(), e))?;
    let dst = path(&[root, b.dest.as_bytes()]).map_err(|e| fail(log, name, key, b.dest.as_bytes(), e))?;
    let dir = match is_dir(src.c()) {
        Ok(d) => d,
        Err(Errno::ENOENT) if b.ignore_missing => return Ok(()),
        Err(e) => return Err(fail(log, name, key, b.source.as_bytes(), e)),
    };
    make_mount_point(dst.c(), dir).map_err(|e| fail(log, name, key, b.dest.as_bytes(), e))?;
    let rec = if b.recursive { MountFlags::REC } else { MountFlags::EMPTY };
    mount::mount(Some(src.c()), dst.c(), None, MountFlags::BIND | rec, None).map_err(|e| fail(log, name, key, b.source.as_bytes(), e))?;
    if b.read_only {
        mount::mount(None, dst.c(), None, MountFlags::BIND | MountFlags::REMOUNT | MountFlags::RDONLY, None)
            .map_err(|e| fail(log, name, "BindReadOnlyPaths=: remount read-only ", b.dest.as_bytes(), e))?;
    }
    Ok(())
}

fn tmpfs(log: &Log, name: &str, t: &spec::Tmpfs<'_>, root: &[u8]) -> Result<(), i32> {
    const KEY: &str = "TemporaryFileSystem=";
    let dst = path(&[root, t.path.as_bytes()]).map_err(|e| fail(log, name, KEY, t.path.as_bytes(), e))?;
    let mut buf = [0u8; 256];
    let data = spec::tmpfs_data(t.options, &mut buf).ok_or_else(|| fail(log, name, KEY, t.options.as_bytes(), Errno::E2BIG))?;
    let data = path(&[data]).map_err(|e| fail(log, name, KEY, t.options.as_bytes(), e))?;
    mkdir(dst.c(), 0o755).map_err(|e| fail(log, name, KEY, t.path.as_bytes(), e))?;
    let ro = if t.read_only { MountFlags::RDONLY } else { MountFlags::EMPTY };
    mount_tmpfs(dst.c(), MountFlags::NOSUID | MountFlags::NODEV | ro, data.c()).map_err(|e| fail(log, name, KEY, t.path.as_bytes(), e))
}

/// A new user namespace mapping `r` outside to 0.. inside. Writing the maps needs CAP_SETUID
/// in the parent namespace, which this process gives up by unsharing: a helper forked before
/// (still root outside) writes them to /proc/PPID/ when told through a pipe.
fn enter_user_namespace(log: &Log, name: &str, r: IdRange) -> Result<(), i32> {
    let (rd, wr) = io::pipe2(true, false).map_err(|e| fail(log, name, "PrivateUsers: pipe", b"", e))?;
    let helper = match process::fork() {
        Ok(Fork::Child) => {
            drop(wr);
            let mut b = [0u8; 1];
            let code = match fs::read(&rd, &mut b) {
                Ok(1) => match write_id_maps(process::getppid(), r) {
                    Ok(()) => 0,
                    Err((what, e)) => {
                        log!(log, Level::Error, name, ": PrivateUsers: write ", what, ": ", e);
                        1
                    }
                },
                _ => 1,
            };
            process::exit_group(code)
        }
        Ok(Fork::Parent(pid)) => pid,
        Err(e) => return Err(fail(log, name, "PrivateUsers: fork", b"", e)),
    };
    drop(rd);
    let unshared = process::unshare(NsFlags::NEWUSER);
    // Tell the helper either way: it exits, and is reaped below.
    let _ = fs::write(&wr, if unshared.is_ok() { b"g" } else { b"" });
    drop(wr);
    let status = syscall::errno::retry(|| process::wait4(helper.raw(), WaitFlags::EMPTY));
    unshared.map_err(|e| fail(log, name, "unshare user namespace", b"", e))?;
    match status {
        Ok(Some((_, st))) if st.exit_code() == Some(0) => {}
        _ => {
            log!(log, Level::Error, name, ": PrivateUsers: the uid/gid maps were not written");
            return Err(exit::NAMESPACE);
        }
    }
    // Root inside: full capabilities in the new namespace, no host groups left.
    process::setgroups(&[]).map_err(|e| fail(log, name, "PrivateUsers: setgroups", b"", e))?;
    process::setresgid(0, 0, 0).map_err(|e| fail(log, name, "PrivateUsers: setgid 0", b"", e))?;
    process::setresuid(0, 0, 0).map_err(|e| fail(log, name, "PrivateUsers: setuid 0", b"", e))?;
    Ok(())
}

fn write_id_maps(pid: Pid, r: IdRange) -> Result<(), (&'static str, Errno)> {
    let mut digits = crate::log::Line::new();
    crate::log::Piece::put(&pid, &mut digits);
    let mut text = [0u8; 40];
    let line = spec::id_map_text(r, &mut text);
    for file in ["uid_map", "gid_map"] {
        let p = path(&[b"/proc/", digits.as_bytes(), b"/", file.as_bytes()]).map_err(|e| (file, e))?;
        let fd = fs::open(p.c(), OFlags::WRONLY | OFlags::CLOEXEC, 0).map_err(|e| (file, e))?;
        // The kernel takes the whole map in one write.
        fs::write(&fd, line).map_err(|e| (file, e))?;
    }
    Ok(())
}

/// PrivatePIDs=yes: this process, PID 1 of the container, forks the service process (which
/// returns, to set up and exec the command) and then runs [`init_loop`].
fn become_init(log: &Log, name: &str) -> Result<(), i32> {
    let handled = FORWARDED.with(Signal::CHLD);
    // Blocked before the fork: a signal sent in between waits in the signalfd instead of
    // being dropped (PID 1 of a namespace ignores signals it has no handler for).
    let _ = signal::sigprocmask(MaskHow::Set, &handled);
    match process::fork() {
        Ok(Fork::Child) => {
            let _ = signal::sigprocmask(MaskHow::Set, &SigSet::EMPTY);
            // Its own session, so a tty can become its controlling terminal.
            let _ = process::setsid();
            Ok(())
        }
        Ok(Fork::Parent(service)) => init_loop(log, name, service, handled),
        Err(e) => Err(fail(log, name, "fork the service process", b"", e)),
    }
}

/// Closes every fd above 2 except `keep`: this process never execs, so without this it would
/// hold PID 1's descriptors (an accepted control connection, whose client then never sees the
/// end of the response; other units' pipes; the listening sockets) for as long as the
/// container runs. The fds are listed from /proc/self/fd (the container's /proc, mounted above).
fn close_inherited(keep: Option<i32>) {
    // Fds are collected first and closed after: closing while reading the directory is
    // undefined. More than the capacity: another pass.
    for _ in 0..8 {
        let mut found: heapless::Vec<i32, 128> = heapless::Vec::new();
        let Ok(dir) = fs::open(c"/proc/self/fd", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, 0) else { return };
        let mut buf = [0u8; 2048];
        let mut more = false;
        while let Ok(n) = fs::getdents64(&dir, &mut buf) {
            if n == 0 {
                break;
            }
            for e in fs::Dirents::new(buf.get(..n).unwrap_or(&[])) {
                let Some(fd) = crate::text::parse_u64(e.name.to_bytes()).and_then(|v| i32::try_from(v).ok()) else { continue };
                if fd > 2 && fd != dir.raw() && Some(fd) != keep && found.push(fd).is_err() {
                    more = true;
                }
            }
        }
        drop(dir);
        for fd in found {
            drop(syscall::OwnedFd::adopt(fd));
        }
        if !more {
            return;
        }
    }
}

/// The status the container's init exits with for the service's: its exit code, or 128 + N
/// when signal N killed it (as a shell and tini report it).
pub fn exit_code_of(status: process::WaitStatus) -> i32 {
    match (status.exit_code(), status.signal()) {
        (Some(c), _) => i32::from(c),
        (None, Some(s)) => 128i32.saturating_add(s.0 as i32),
        _ => 255,
    }
}

/// The container's init: reaps every child, forwards [`FORWARDED`] signals to the service
/// process, and exits with the service's status when it ends (the kernel then kills what is
/// left in the pid namespace).
fn init_loop(log: &Log, name: &str, service: Pid, handled: SigSet) -> ! {
    let _ = process::set_name(c"autoinit");
    close_inherited(log.kmsg_raw_fd());
    let sigfd = signal::signalfd(&handled, SfdFlags::CLOEXEC);
    if let Err(e) = &sigfd {
        log!(log, Level::Warn, name, ": container init: signalfd: ", *e, "; signals are not forwarded");
    }
    loop {
        match &sigfd {
            Ok(fd) => match signal::read_signalfd(fd) {
                Ok(Some(info)) if info.signo != Signal::CHLD.0 => {
                    let _ = process::kill(service.raw(), Signal(info.signo));
                    continue;
                }
                _ => {}
            },
            // No signalfd: wait for a child instead.
            Err(_) => {
                let _ = process::waitid(process::WaitId::All, WaitFlags::EXITED | WaitFlags::NOWAIT);
            }
        }
        loop {
            match process::wait4(-1, WaitFlags::NOHANG) {
                Ok(Some((pid, st))) if pid == service => process::exit_group(exit_code_of(st)),
                Ok(Some(_)) => {}
                Ok(None) | Err(Errno::EINTR) => break,
                // No child at all: the service is gone without our noticing; nothing to do.
                Err(_) => process::exit_group(255),
            }
        }
    }
}
