//! Processes: fork and clone_flags (clone), clone_into_cgroup (clone3), execve, wait4, waitid, exit_group, getpid,
//! getppid, setsid, setpgid, getpgid, kill, setresuid, setresgid, setgroups, getuid, umask,
//! getpriority/setpriority, prctl (and its capability, no_new_privs and name options),
//! prlimit64, unshare, setns.
//!
//! # Safety
//! Calls pass pointers to live Rust memory of the kernel's layout. `fork` is sound here
//! because this program has one thread and no allocator state to corrupt.
#![allow(unsafe_code)]

use crate::arch::*;
use crate::errno::{check, check_unit, Errno, Result};
use crate::fd::{arg, AsFd};
use crate::nr;
use crate::signal::Signal;
use core::ffi::{c_char, CStr};
use linux_raw_sys::general as g;
use linux_raw_sys::prctl as p;

/// A process (or thread group) id.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Pid(pub i32);

impl Pid {
    pub const fn raw(self) -> i32 {
        self.0
    }
}

/// What fork returned to this side.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Fork {
    Child,
    Parent(Pid),
}

/// fork() as clone(SIGCHLD, 0, ...): aarch64 and riscv64 have no fork syscall. The flags and
/// stack come first on every arch; the remaining (zero) arguments differ in order only.
pub fn fork() -> Result<Fork> {
    // SAFETY: see module docs; a NULL stack means the child gets a copy of ours.
    let ret = unsafe { syscall5(nr::__NR_clone, g::SIGCHLD as usize, 0, 0, 0, 0) };
    check(ret).map(|pid| if pid == 0 { Fork::Child } else { Fork::Parent(Pid(pid as i32)) })
}

/// The clone flags [`clone_flags`] accepts: the namespaces clone(2) can create.
/// (CLONE_NEWTIME is left out: clone(2) reads that bit as part of the exit signal; only
/// clone3 and unshare take it.)
pub const CLONE_FLAGS_ALLOWED: u64 = (g::CLONE_NEWNS | g::CLONE_NEWCGROUP | g::CLONE_NEWUTS | g::CLONE_NEWIPC
    | g::CLONE_NEWUSER | g::CLONE_NEWPID | g::CLONE_NEWNET) as u64;

/// clone(flags | SIGCHLD, 0, 0, 0, 0) — fork into new namespaces (`CLONE_NEW*`, e.g.
/// `NsFlags::NEWUTS.bits() as u64`); `clone_flags(0)` is [`fork`].
///
/// Any other bit is `EINVAL`: flags such as CLONE_VM, CLONE_SETTLS or CLONE_*_SETTID need a
/// stack or pointers, which a fork-like call does not pass. Because ptid, ctid and tls are all
/// zero, clone's differing argument order (x86_64: flags, stack, ptid, ctid, tls; i686, arm,
/// aarch64, riscv64: flags, stack, ptid, tls, ctid) does not matter here.
pub fn clone_flags(flags: u64) -> Result<Fork> {
    if flags & !CLONE_FLAGS_ALLOWED != 0 {
        return Err(Errno::EINVAL);
    }
    // SAFETY: as fork: a NULL stack gives the child a copy of ours; no pointers are passed.
    let ret = unsafe { syscall5(nr::__NR_clone, flags as usize | g::SIGCHLD as usize, 0, 0, 0, 0) };
    check(ret).map(|pid| if pid == 0 { Fork::Child } else { Fork::Parent(Pid(pid as i32)) })
}

/// clone3({flags | CLONE_INTO_CGROUP, exit_signal: SIGCHLD, cgroup}) — fork straight into the
/// cgroup v2 directory `cgroup` (Linux 5.7), with the namespace flags [`clone_flags`] takes:
/// the child never runs outside it, and the parent does not move it there afterwards.
///
/// `ENOSYS` (no clone3: before 5.3), `E2BIG` (a kernel that does not know the `cgroup` field)
/// and `EINVAL` (nor the flag) mean: fork, and let the child join the group. Like [`fork`],
/// the child returns here on a copy of the parent's stack (clone3 with no stack).
pub fn clone_into_cgroup(flags: u64, cgroup: impl AsFd) -> Result<Fork> {
    if flags & !CLONE_FLAGS_ALLOWED != 0 {
        return Err(Errno::EINVAL);
    }
    let fd = cgroup.as_fd().raw();
    let args = g::clone_args {
        flags: flags | g::CLONE_INTO_CGROUP,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: g::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: u64::try_from(fd).map_err(|_| Errno::EBADF)?,
    };
    // SAFETY: see module docs; `args` is a clone_args of the kernel's layout (its size is
    // passed), read by the kernel before either side returns; no stack, so the child
    // continues on a copy of ours, as with fork.
    let ret = unsafe { syscall2(nr::__NR_clone3, &args as *const g::clone_args as usize, core::mem::size_of::<g::clone_args>()) };
    check(ret).map(|pid| if pid == 0 { Fork::Child } else { Fork::Parent(Pid(pid as i32)) })
}

/// A NULL-terminated argv or envp of up to `N - 1` strings borrowed for `'a`.
pub struct ArgList<'a, const N: usize> {
    ptrs: [*const c_char; N],
    len: usize,
    _strings: core::marker::PhantomData<&'a CStr>,
}

impl<'a, const N: usize> ArgList<'a, N> {
    pub const fn new() -> Self {
        ArgList { ptrs: [core::ptr::null(); N], len: 0, _strings: core::marker::PhantomData }
    }

    /// Appends a string; `Err(E2BIG)` when full (one slot stays for the NULL).
    pub fn push(&mut self, s: &'a CStr) -> Result<()> {
        if self.len + 1 >= N {
            return Err(Errno::E2BIG);
        }
        match self.ptrs.get_mut(self.len) {
            Some(slot) => *slot = s.as_ptr(),
            None => return Err(Errno::E2BIG),
        }
        self.len += 1;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn as_ptr(&self) -> *const *const c_char {
        self.ptrs.as_ptr()
    }
}

impl<const N: usize> Default for ArgList<'_, N> {
    fn default() -> Self {
        Self::new()
    }
}

/// execve(path, argv, envp) — replace this program; returns only on failure.
pub fn execve<const A: usize, const E: usize>(
    path: &CStr, argv: &ArgList<'_, A>, envp: &ArgList<'_, E>,
) -> Errno {
    // SAFETY: both lists are NULL-terminated arrays of live C strings (ArgList invariant).
    let ret = unsafe {
        syscall3(nr::__NR_execve, path.as_ptr() as usize, argv.as_ptr() as usize, envp.as_ptr() as usize)
    };
    match check(ret) {
        Err(e) => e,
        Ok(_) => Errno::EINVAL,
    }
}

/// How a child ended, as wait4 reports it.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct WaitStatus(pub i32);

impl WaitStatus {
    /// The exit code if the child exited.
    pub fn exit_code(self) -> Option<u8> {
        if self.0 & 0x7f == 0 { Some(((self.0 >> 8) & 0xff) as u8) } else { None }
    }

    /// The signal if the child was killed by one.
    pub fn signal(self) -> Option<Signal> {
        let s = self.0 & 0x7f;
        if s != 0 && s != 0x7f { Some(Signal(s as u32)) } else { None }
    }

    /// The shell's convention: the exit code, or 128 + signal.
    pub fn shell_code(self) -> u32 {
        match (self.exit_code(), self.signal()) {
            (Some(c), _) => c as u32,
            (None, Some(s)) => 128 + s.0,
            _ => 255,
        }
    }
}

flags! {
    /// wait4/waitid options.
    pub struct WaitFlags: u32 {
        const NOHANG = g::WNOHANG;
        const UNTRACED = g::WUNTRACED;
        const EXITED = g::WEXITED;
        const NOWAIT = g::WNOWAIT;
        const ALL = g::__WALL;
    }
}

/// wait4(pid, &status, options, NULL) — `None` with WNOHANG when no child has changed state.
/// `pid` -1 waits for any child.
pub fn wait4(pid: i32, flags: WaitFlags) -> Result<Option<(Pid, WaitStatus)>> {
    let mut status: i32 = 0;
    // SAFETY: see module docs; `status` is a writable int.
    let ret = unsafe {
        syscall4(nr::__NR_wait4, pid as isize as usize, &mut status as *mut i32 as usize, flags.bits() as usize, 0)
    };
    let pid = check(ret)? as i32;
    Ok(if pid == 0 { None } else { Some((Pid(pid), WaitStatus(status))) })
}

/// Who waitid waits for.
#[derive(Copy, Clone, Debug)]
pub enum WaitId {
    All,
    Pid(Pid),
    PidFd(i32),
}

/// A child's state change as waitid reports it.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct ChildEvent {
    pub pid: Pid,
    /// `CLD_EXITED`, `CLD_KILLED`, `CLD_DUMPED`, ...
    pub code: i32,
    /// Exit code or signal number.
    pub status: i32,
}

pub const CLD_EXITED: i32 = 1;
pub const CLD_KILLED: i32 = 2;
pub const CLD_DUMPED: i32 = 3;

/// waitid(idtype, id, &info, options, NULL) — `None` with WNOHANG when nothing is waitable.
pub fn waitid(who: WaitId, flags: WaitFlags) -> Result<Option<ChildEvent>> {
    let (idtype, id) = match who {
        WaitId::All => (g::P_ALL, 0usize),
        WaitId::Pid(p) => (g::P_PID, p.0 as usize),
        WaitId::PidFd(fd) => (g::P_PIDFD, fd as usize),
    };
    // siginfo_t is 128 bytes: signo, errno, code, then (after padding to pointer alignment
    // on 64-bit) pid, uid, status.
    let mut info = [0i32; 32];
    // SAFETY: see module docs; `info` is a writable 128-byte siginfo_t.
    check_unit(unsafe {
        syscall5(nr::__NR_waitid, idtype as usize, id, info.as_mut_ptr() as usize, flags.bits() as usize, 0)
    })?;
    let base = if cfg!(target_pointer_width = "64") { 4 } else { 3 };
    let field = |i: usize| info.get(i).copied().unwrap_or(0);
    let pid = field(base);
    Ok(if pid == 0 { None } else { Some(ChildEvent { pid: Pid(pid), code: field(2), status: field(base + 2) }) })
}

/// exit_group(code) — end every thread of this process.
pub fn exit_group(code: i32) -> ! {
    // SAFETY: exit_group takes no pointers and does not return.
    unsafe { syscall1_noreturn(nr::__NR_exit_group, code as usize) }
}

/// getpid().
pub fn getpid() -> Pid {
    // SAFETY: no arguments; cannot fail.
    Pid(unsafe { syscall0(nr::__NR_getpid) } as i32)
}

/// getppid().
pub fn getppid() -> Pid {
    // SAFETY: no arguments; cannot fail.
    Pid(unsafe { syscall0(nr::__NR_getppid) } as i32)
}

#[cfg(any(target_arch = "x86", target_arch = "arm"))]
mod id32 {
    // 32-bit x86 and arm kept 16-bit uid calls under the old names; the 32-bit ids are the
    // *32 calls.
    pub use crate::nr::{__NR_getgid32 as GETGID, __NR_getuid32 as GETUID, __NR_setgroups32 as SETGROUPS,
                        __NR_setresgid32 as SETRESGID, __NR_setresuid32 as SETRESUID};
}
#[cfg(not(any(target_arch = "x86", target_arch = "arm")))]
mod id32 {
    pub use crate::nr::{__NR_getgid as GETGID, __NR_getuid as GETUID, __NR_setgroups as SETGROUPS,
                        __NR_setresgid as SETRESGID, __NR_setresuid as SETRESUID};
}

/// getuid().
pub fn getuid() -> u32 {
    // SAFETY: no arguments; cannot fail.
    unsafe { syscall0(id32::GETUID) as u32 }
}

/// getgid().
pub fn getgid() -> u32 {
    // SAFETY: no arguments; cannot fail.
    unsafe { syscall0(id32::GETGID) as u32 }
}

/// setsid() — start a new session; returns its id.
pub fn setsid() -> Result<Pid> {
    // SAFETY: no arguments.
    check(unsafe { syscall0(nr::__NR_setsid) }).map(|p| Pid(p as i32))
}

/// setpgid(pid, pgid) — 0 means "this process" for either.
pub fn setpgid(pid: i32, pgid: i32) -> Result<()> {
    // SAFETY: no pointers.
    check_unit(unsafe { syscall2(nr::__NR_setpgid, pid as usize, pgid as usize) })
}

/// getpgid(pid) — the process group of `pid` (0: this process).
pub fn getpgid(pid: i32) -> Result<Pid> {
    // SAFETY: no pointers.
    check(unsafe { syscall1(nr::__NR_getpgid, pid as usize) }).map(|p| Pid(p as i32))
}

/// kill(pid, sig) — `pid` -1 is every process but init and the caller.
pub fn kill(pid: i32, sig: Signal) -> Result<()> {
    // SAFETY: no pointers.
    check_unit(unsafe { syscall2(nr::__NR_kill, pid as isize as usize, sig.0 as usize) })
}

/// setresuid(ruid, euid, suid) — `u32::MAX` leaves one unchanged.
pub fn setresuid(r: u32, e: u32, s: u32) -> Result<()> {
    // SAFETY: no pointers.
    check_unit(unsafe { syscall3(id32::SETRESUID, r as usize, e as usize, s as usize) })
}

/// setresgid(rgid, egid, sgid).
pub fn setresgid(r: u32, e: u32, s: u32) -> Result<()> {
    // SAFETY: no pointers.
    check_unit(unsafe { syscall3(id32::SETRESGID, r as usize, e as usize, s as usize) })
}

/// setgroups(groups).
pub fn setgroups(groups: &[u32]) -> Result<()> {
    // SAFETY: see module docs.
    check_unit(unsafe { syscall2(id32::SETGROUPS, groups.len(), groups.as_ptr() as usize) })
}

/// prctl(option, arg2, arg3, arg4, arg5) — returns the call's non-negative result.
pub fn prctl(option: u32, a2: usize, a3: usize, a4: usize, a5: usize) -> Result<usize> {
    // SAFETY: the options used by autoinit take integers; callers passing pointers own them.
    check(unsafe { syscall5(nr::__NR_prctl, option as usize, a2, a3, a4, a5) })
}

/// prctl(PR_SET_CHILD_SUBREAPER, on): orphans of this process's descendants come here.
pub fn set_child_subreaper(on: bool) -> Result<()> {
    prctl(p::PR_SET_CHILD_SUBREAPER, on as usize, 0, 0, 0).map(|_| ())
}

/// prctl(PR_SET_PDEATHSIG, sig).
pub fn set_parent_death_signal(sig: Option<Signal>) -> Result<()> {
    prctl(p::PR_SET_PDEATHSIG, sig.map_or(0, |s| s.0 as usize), 0, 0, 0).map(|_| ())
}

/// prctl(PR_SET_NAME, name) — this thread's name (`/proc/self/comm`); the kernel keeps the
/// first 15 bytes.
pub fn set_name(name: &CStr) -> Result<()> {
    prctl(p::PR_SET_NAME, name.as_ptr() as usize, 0, 0, 0).map(|_| ())
}

/// prctl(PR_SET_NO_NEW_PRIVS, 1) — execve can no longer grant privileges (setuid bits, file
/// capabilities). Cannot be undone; inherited by children.
pub fn set_no_new_privs() -> Result<()> {
    prctl(p::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0).map(|_| ())
}

/// prctl(PR_GET_NO_NEW_PRIVS).
pub fn no_new_privs() -> Result<bool> {
    prctl(p::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0).map(|v| v != 0)
}

/// prctl(PR_SET_KEEPCAPS, on) — keep the permitted capabilities across a switch from uid 0
/// to non-zero uids (cleared again by execve).
pub fn set_keepcaps(on: bool) -> Result<()> {
    prctl(p::PR_SET_KEEPCAPS, on as usize, 0, 0, 0).map(|_| ())
}

/// prctl(PR_GET_KEEPCAPS).
pub fn keepcaps() -> Result<bool> {
    prctl(p::PR_GET_KEEPCAPS, 0, 0, 0, 0).map(|v| v != 0)
}

/// prctl(PR_CAPBSET_DROP, cap) — remove `cap` from the bounding set (needs CAP_SETPCAP;
/// `EINVAL` for a capability this kernel does not know).
pub fn capbset_drop(cap: u32) -> Result<()> {
    prctl(p::PR_CAPBSET_DROP, cap as usize, 0, 0, 0).map(|_| ())
}

/// prctl(PR_CAPBSET_READ, cap) — whether `cap` is in the bounding set.
pub fn capbset_read(cap: u32) -> Result<bool> {
    prctl(p::PR_CAPBSET_READ, cap as usize, 0, 0, 0).map(|v| v != 0)
}

/// prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap) — `cap` must already be permitted and
/// inheritable (`EPERM` otherwise).
pub fn cap_ambient_raise(cap: u32) -> Result<()> {
    prctl(p::PR_CAP_AMBIENT, p::PR_CAP_AMBIENT_RAISE as usize, cap as usize, 0, 0).map(|_| ())
}

/// prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, cap).
pub fn cap_ambient_is_set(cap: u32) -> Result<bool> {
    prctl(p::PR_CAP_AMBIENT, p::PR_CAP_AMBIENT_IS_SET as usize, cap as usize, 0, 0).map(|v| v != 0)
}

/// prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL).
pub fn cap_ambient_clear_all() -> Result<()> {
    prctl(p::PR_CAP_AMBIENT, p::PR_CAP_AMBIENT_CLEAR_ALL as usize, 0, 0, 0).map(|_| ())
}

/// The highest capability number this kernel knows (what /proc/sys/kernel/cap_last_cap
/// says), found without /proc: PR_CAPBSET_READ answers `EINVAL` past it. 0 if even
/// capability 0 is unknown, which no Linux kernel does.
pub fn last_cap() -> u32 {
    // Binary search for the first unknown number in 1..=64 (capability sets are 64 bits).
    let (mut known, mut unknown) = (0u32, 64u32);
    while unknown - known > 1 {
        let mid = known + (unknown - known) / 2;
        if capbset_read(mid) == Err(Errno::EINVAL) {
            unknown = mid;
        } else {
            known = mid;
        }
    }
    known
}

/// umask(mask) — set the file mode creation mask; returns the previous one.
pub fn umask(mask: u32) -> u32 {
    // SAFETY: no pointers; umask cannot fail.
    unsafe { syscall1(nr::__NR_umask, (mask & 0o777) as usize) as u32 }
}

/// setpriority(PRIO_PROCESS, pid, nice) — `pid` 0 is this process. Raising priority
/// (a lower nice value) needs CAP_SYS_NICE; the kernel clamps `nice` to -20..=19.
pub fn setpriority_process(pid: i32, nice: i32) -> Result<()> {
    // SAFETY: no pointers.
    check_unit(unsafe {
        syscall3(nr::__NR_setpriority, g::PRIO_PROCESS as usize, pid as usize, nice as isize as usize)
    })
}

/// getpriority(PRIO_PROCESS, pid) — the nice value (-20..=19). The raw call returns
/// `20 - nice` so that no success looks like an error; this undoes that.
pub fn getpriority_process(pid: i32) -> Result<i32> {
    // SAFETY: no pointers.
    let raw = check(unsafe { syscall2(nr::__NR_getpriority, g::PRIO_PROCESS as usize, pid as usize) })?;
    Ok(20i32.saturating_sub(raw as i32))
}

/// A resource limit (`RLIMIT_*`).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
#[repr(C)]
pub struct Rlimit {
    pub cur: u64,
    pub max: u64,
}

pub const RLIM_INFINITY: u64 = u64::MAX;

/// `RLIMIT_*` resource numbers (the same on all five arches).
pub mod resource {
    pub const CORE: u32 = linux_raw_sys::general::RLIMIT_CORE;
    pub const NOFILE: u32 = linux_raw_sys::general::RLIMIT_NOFILE;
    pub const NPROC: u32 = linux_raw_sys::general::RLIMIT_NPROC;
    pub const STACK: u32 = linux_raw_sys::general::RLIMIT_STACK;
}

/// prlimit64(pid, resource, new, old) — set (if `new`) and return the old limit.
pub fn prlimit64(pid: i32, resource: u32, new: Option<&Rlimit>) -> Result<Rlimit> {
    let mut old = Rlimit::default();
    let new_ptr = new.map_or(0, |r| r as *const Rlimit as usize);
    // SAFETY: see module docs; Rlimit has the kernel's rlimit64 layout.
    check_unit(unsafe {
        syscall4(nr::__NR_prlimit64, pid as usize, resource as usize, new_ptr, &mut old as *mut Rlimit as usize)
    })?;
    Ok(old)
}

flags! {
    /// Namespace flags of clone/unshare/setns (`CLONE_NEW*`).
    pub struct NsFlags: u32 {
        const FILES = g::CLONE_FILES;
        const FS = g::CLONE_FS;
        const NEWNS = g::CLONE_NEWNS;
        const NEWCGROUP = g::CLONE_NEWCGROUP;
        const NEWUTS = g::CLONE_NEWUTS;
        const NEWIPC = g::CLONE_NEWIPC;
        const NEWUSER = g::CLONE_NEWUSER;
        const NEWPID = g::CLONE_NEWPID;
        const NEWNET = g::CLONE_NEWNET;
    }
}

/// unshare(flags).
pub fn unshare(flags: NsFlags) -> Result<()> {
    // SAFETY: no pointers.
    check_unit(unsafe { syscall1(nr::__NR_unshare, flags.bits() as usize) })
}

/// setns(fd, nstype) — join the namespace `fd` refers to (`nstype` 0: any kind).
pub fn setns(fd: impl AsFd, nstype: NsFlags) -> Result<()> {
    // SAFETY: no pointers.
    check_unit(unsafe { syscall2(nr::__NR_setns, arg(fd.as_fd()), nstype.bits() as usize) })
}
