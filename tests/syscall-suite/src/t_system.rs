//! The system: uname, finit_module, reboot (never of the host: see `reboot`).

use crate::harness::{section, wait, En, T};
use crate::util::{self, cap_eff};
use syscall::fs::{self, AtFlags, StatxMask};
use syscall::process::{self, Fork, NsFlags};
use syscall::signal::Signal;
use syscall::system::{self, RebootCmd};
use syscall::{BorrowedFd, Errno};

pub fn run(t: &mut T) {
    uname(t);
    finit_module(t);
    section(t, "system::reboot_unprivileged", reboot_unprivileged);
    for (name, cmd, sig) in [
        ("system::reboot_restart_pidns", RebootCmd::Restart, Signal::HUP),
        ("system::reboot_poweroff_pidns", RebootCmd::PowerOff, Signal::INT),
        ("system::reboot_halt_pidns", RebootCmd::Halt, Signal::INT),
    ] {
        section(t, name, |t| reboot_in_pid_namespace(t, name, cmd, sig));
    }
}

/// Our architecture, as Rust names it.
const ARCH: &str = if cfg!(target_arch = "x86_64") {
    "x86_64"
} else if cfg!(target_arch = "x86") {
    "x86"
} else if cfg!(target_arch = "aarch64") {
    "aarch64"
} else if cfg!(target_arch = "arm") {
    "arm"
} else {
    "riscv64"
};

/// The uname machine names of our architecture (a 32-bit program on a 64-bit kernel may see
/// the kernel's name).
fn machine_ok(m: &[u8]) -> bool {
    if cfg!(target_arch = "x86_64") {
        m == b"x86_64"
    } else if cfg!(target_arch = "x86") {
        matches!(m, b"i386" | b"i486" | b"i586" | b"i686" | b"x86_64")
    } else if cfg!(target_arch = "aarch64") {
        m == b"aarch64"
    } else if cfg!(target_arch = "arm") {
        m.starts_with(b"armv7") || m.starts_with(b"armv8") || m == b"aarch64"
    } else if cfg!(target_arch = "riscv64") {
        m == b"riscv64"
    } else {
        false
    }
}

fn uname(t: &mut T) {
    let Some(u) = t.ok("system::uname", system::uname()) else { return };
    let f = system::uts_field;
    t.eq("system::uname_sysname", crate::harness::B(f(&u.sysname)), crate::harness::B(b"Linux"));
    t.check("system::uname_nodename_nonempty", !f(&u.nodename).is_empty(), format_args!("empty nodename"));
    t.check("system::uname_release", f(&u.release).first().is_some_and(|c| c.is_ascii_digit()),
            format_args!("release {:?}", crate::harness::B(f(&u.release))));
    t.check("system::uname_version", !f(&u.version).is_empty(), format_args!("empty version"));
    t.check("system::uname_machine", machine_ok(f(&u.machine)),
            format_args!("machine {:?} is not {}", crate::harness::B(f(&u.machine)), ARCH));
    t.check("system::uname_domainname", !f(&u.domainname).is_empty(), format_args!("empty domainname"));
    // uts_field stops at the NUL, or takes the whole field without one.
    let with_nul: [core::ffi::c_char; 4] = [b'a' as _, b'b' as _, 0, b'c' as _];
    let without: [core::ffi::c_char; 2] = [b'x' as _, b'y' as _];
    t.eq("system::uts_field", (f(&with_nul), f(&without)), (&b"ab"[..], &b"xy"[..]));
}

/// finit_module on a memfd of garbage. What the kernel answers depends on where we run,
/// and the check expects exactly that answer:
/// - no /proc/modules (CONFIG_MODULES=n): ENOSYS, the kernel has no such call;
/// - no CAP_SYS_MODULE: EPERM (checked before the file is read);
/// - otherwise the module loader rejects the bytes: ENOEXEC (bad ELF header), or
///   EKEYREJECTED when module.sig_enforce=1 makes the signature check come first.
fn finit_module(t: &mut T) {
    let Some(fd) = t.need("system::memfd", syscall::mm::memfd_create(c"not-a-module")) else { return };
    let _ = fs::write_all(&fd, &[0xab; 512]);
    let _ = fs::lseek(&fd, fs::Seek::Set(0));
    let modules = fs::statx(BorrowedFd::CWD, c"/proc/modules", AtFlags::EMPTY, StatxMask::TYPE).is_ok();
    let cap = cap_eff().is_some_and(|c| c & (1 << linux_raw_sys::general::CAP_SYS_MODULE) != 0);
    let mut buf = [0u8; 8];
    let enforce = util::read_file(BorrowedFd::CWD, c"/sys/module/module/parameters/sig_enforce", &mut buf)
        .is_ok_and(|s| s.first() == Some(&b'Y'));
    let (want, why) = if !modules {
        (Errno::ENOSYS, "this kernel has no module support (no /proc/modules)")
    } else if !cap {
        (Errno::EPERM, "no CAP_SYS_MODULE")
    } else if enforce {
        (Errno::EKEYREJECTED, "module.sig_enforce=1: an unsigned module is rejected first")
    } else {
        (Errno::ENOEXEC, "the loader rejects a file that is not ELF")
    };
    say!("# system::finit_module: expecting {:?}: {}", En(want), why);
    t.err("system::finit_module_garbage", system::finit_module(&fd, c"", 0), want);
    let want_flags = if modules && cap { Errno::EINVAL } else { want };
    t.err("system::finit_module_bad_flags", system::finit_module(&fd, c"", 0x80), want_flags);
    let _ = (system::MODULE_INIT_IGNORE_MODVERSIONS, system::MODULE_INIT_IGNORE_VERMAGIC, system::MODULE_INIT_COMPRESSED_FILE);
}

/// reboot(2) without CAP_SYS_BOOT: EPERM. As root we first drop to uid 65534, which clears
/// every capability, and call reboot only after /proc confirms CapEff is 0.
fn reboot_unprivileged(t: &mut T) {
    if util::is_root() {
        let dropped = process::setgroups(&[]).and_then(|_| process::setresgid(65534, 65534, 65534))
            .and_then(|_| process::setresuid(65534, 65534, 65534));
        if t.need("system::reboot_drop_privileges", dropped).is_none() {
            return;
        }
    }
    let caps = cap_eff();
    if !t.check("system::reboot_no_capabilities", caps == Some(0), format_args!("CapEff {caps:?}: not calling reboot")) {
        return;
    }
    t.eq("system::reboot_eperm", En(system::reboot(RebootCmd::CadOff)), En(Errno::EPERM));
    t.eq("system::reboot_eperm_restart", En(system::reboot(RebootCmd::Restart)), En(Errno::EPERM));
}

/// reboot(2) by the init of a new pid namespace does not touch the machine: the kernel kills
/// that namespace's init, and its parent sees it killed by SIGHUP (restart) or SIGINT
/// (halt, power off). CAD_OFF there is EINVAL. Guard: reboot is called only by a process
/// that is pid 1 of a namespace we just created.
fn reboot_in_pid_namespace(t: &mut T, name: &str, cmd: RebootCmd, sig: Signal) {
    let flags = NsFlags::NEWPID;
    if let Err(e) = util::enter_ns(flags) {
        t.fail(name, format_args!("unshare(CLONE_NEWPID{}) failed with {:?}",
                                  if util::is_root() { "" } else { "|CLONE_NEWUSER" }, En(e)));
        return;
    }
    let child = match process::fork() {
        Ok(Fork::Child) => {
            if process::getpid().0 != 1 {
                process::exit_group(90);
            }
            if system::reboot(RebootCmd::CadOff) != Errno::EINVAL {
                process::exit_group(91);
            }
            let _ = system::reboot(cmd);
            process::exit_group(92);
        }
        Ok(Fork::Parent(pid)) => pid,
        Err(e) => {
            t.fail(name, format_args!("fork into the new pid namespace: {:?}", En(e)));
            return;
        }
    };
    let st = wait(child);
    t.eq(name, st.map(|s| (s.signal(), s.exit_code())), Ok((Some(sig), None)));
}
