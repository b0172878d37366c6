//! Stage 2: autoinit running from `/__autoinit__/autoinit` in the new root. It mounts what a
//! running system expects, sets the hostname and brings up `lo`, then supervises.

use crate::cmdline::Settings;
use crate::log::{Level, Log};
use core::ffi::CStr;
use syscall::fs::{self, OFlags};
use syscall::mount::{self, MountFlags};
use syscall::{net, system, BorrowedFd, Errno};

struct Mount {
    fstype: &'static CStr,
    target: &'static CStr,
    flags: MountFlags,
    data: Option<&'static CStr>,
    /// A filesystem the kernel may lack: its absence is a debug line, not an error.
    optional: bool,
}

const NOSUID_NODEV: MountFlags = MountFlags(MountFlags::NOSUID.0 | MountFlags::NODEV.0);
const NOSUID_NODEV_NOEXEC: MountFlags = MountFlags(NOSUID_NODEV.0 | MountFlags::NOEXEC.0);

const MOUNTS: &[Mount] = &[
    Mount { fstype: c"devpts", target: c"/dev/pts", flags: MountFlags(MountFlags::NOSUID.0 | MountFlags::NOEXEC.0), data: Some(c"newinstance,ptmxmode=0666,mode=0620,gid=5"), optional: false },
    Mount { fstype: c"tmpfs", target: c"/dev/shm", flags: NOSUID_NODEV, data: Some(c"mode=1777"), optional: false },
    Mount { fstype: c"mqueue", target: c"/dev/mqueue", flags: NOSUID_NODEV_NOEXEC, data: None, optional: true },
    Mount { fstype: c"tmpfs", target: c"/run", flags: NOSUID_NODEV, data: Some(c"mode=0755"), optional: false },
    Mount { fstype: c"tmpfs", target: c"/tmp", flags: NOSUID_NODEV, data: Some(c"mode=1777"), optional: false },
    Mount { fstype: c"cgroup2", target: c"/sys/fs/cgroup", flags: NOSUID_NODEV_NOEXEC, data: None, optional: true },
    Mount { fstype: c"debugfs", target: c"/sys/kernel/debug", flags: NOSUID_NODEV_NOEXEC, data: None, optional: true },
    Mount { fstype: c"securityfs", target: c"/sys/kernel/security", flags: NOSUID_NODEV_NOEXEC, data: None, optional: true },
    Mount { fstype: c"pstore", target: c"/sys/fs/pstore", flags: NOSUID_NODEV_NOEXEC, data: None, optional: true },
    Mount { fstype: c"bpf", target: c"/sys/fs/bpf", flags: NOSUID_NODEV_NOEXEC, data: Some(c"mode=0700"), optional: true },
    Mount { fstype: c"binfmt_misc", target: c"/proc/sys/fs/binfmt_misc", flags: NOSUID_NODEV_NOEXEC, data: None, optional: true },
    Mount { fstype: c"fusectl", target: c"/sys/fs/fuse/connections", flags: NOSUID_NODEV_NOEXEC, data: None, optional: true },
];

pub fn setup(log: &Log, s: &Settings<'_>) {
    for m in MOUNTS {
        // Mount points under /sys and /proc exist when the kernel has the feature.
        if !m.optional {
            let _ = fs::mkdirat(BorrowedFd::CWD, m.target, 0o755);
        }
        match mount::mount(Some(m.fstype), m.target, Some(m.fstype), m.flags, m.data) {
            Ok(()) => crate::log!(log, Level::Debug, "mounted ", m.fstype, " on ", m.target),
            Err(Errno::EBUSY) => {}
            Err(e @ (Errno::ENODEV | Errno::ENOENT)) if m.optional => {
                crate::log!(log, Level::Debug, "no ", m.fstype, " on ", m.target, ": ", e)
            }
            Err(e) => crate::log!(log, Level::Error, "mount ", m.fstype, " on ", m.target, ": ", e),
        }
    }
    set_hostname(log, s);
    if let Err(e) = net::interface_up(c"lo") {
        crate::log!(log, Level::Warn, "bring up lo: ", e);
    }
}

fn set_hostname(log: &Log, s: &Settings<'_>) {
    let mut buf = [0u8; 256];
    let from_file = fs::open(c"/etc/hostname", OFlags::RDONLY | OFlags::CLOEXEC, 0)
        .and_then(|fd| fs::read(&fd, &mut buf))
        .ok()
        .and_then(|n| core::str::from_utf8(buf.get(..n)?).ok())
        .and_then(|t| t.lines().next())
        .map(str::trim)
        .filter(|h| !h.is_empty() && h.len() <= 64);
    let name = s.hostname.or(from_file).unwrap_or("autoinit");
    match system::sethostname(name.as_bytes()) {
        Ok(()) => crate::log!(log, Level::Info, "hostname: ", name),
        Err(e) => crate::log!(log, Level::Error, "sethostname ", name, ": ", e),
    }
}
