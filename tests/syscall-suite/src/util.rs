//! Small helpers the checks share: runtime C strings, whole-file reads, /proc parsing and
//! entering namespaces with or without privileges.

use core::ffi::CStr;
use core::fmt::{self, Write};
use syscall::fs::{self, OFlags};
use syscall::process::{self, NsFlags};
use syscall::{AsFd, BorrowedFd, Errno, Result};

/// A NUL-terminated string built at run time.
pub struct CBuf {
    buf: [u8; 256],
    len: usize,
}

impl CBuf {
    pub fn new() -> CBuf {
        CBuf { buf: [0; 256], len: 0 }
    }

    pub fn from_fmt(args: fmt::Arguments<'_>) -> CBuf {
        let mut c = CBuf::new();
        let _ = c.write_fmt(args);
        c
    }

    pub fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.buf).unwrap_or(c"")
    }

    pub fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

impl Write for CBuf {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            // Keep the terminating NUL; an interior NUL would cut the string short.
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

macro_rules! cfmt {
    ($($a:tt)*) => { $crate::util::CBuf::from_fmt(format_args!($($a)*)) };
}

/// Reads a whole (small) file into `buf`.
pub fn read_file<'b>(dir: BorrowedFd<'_>, path: &CStr, buf: &'b mut [u8]) -> Result<&'b [u8]> {
    let fd = fs::openat(dir, path, OFlags::RDONLY | OFlags::CLOEXEC, 0)?;
    let n = fs::read_full(&fd, buf)?;
    Ok(buf.get(..n).unwrap_or(&[]))
}

/// Creates (or truncates) `path` with `data`.
pub fn write_file(dir: BorrowedFd<'_>, path: &CStr, data: &[u8]) -> Result<()> {
    let fd = fs::openat(dir, path, OFlags::WRONLY | OFlags::CREAT | OFlags::TRUNC | OFlags::CLOEXEC, 0o644)?;
    fs::write_all(&fd, data)?;
    fs::close(fd)
}

/// The value after `key` on its line of a /proc text file (`CapEff:\t...`, `flags:\t...`).
pub fn proc_field<'b>(text: &'b [u8], key: &[u8]) -> Option<&'b [u8]> {
    for line in text.split(|&b| b == b'\n') {
        if let Some(rest) = line.strip_prefix(key) {
            let start = rest.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(rest.len());
            return rest.get(start..);
        }
    }
    None
}

pub fn parse_radix(s: &[u8], radix: u32) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        let d = (c as char).to_digit(radix)? as u64;
        v = v.checked_mul(radix as u64)?.checked_add(d)?;
    }
    Some(v)
}

/// This process's effective capabilities (`CapEff` of /proc/self/status).
pub fn cap_eff() -> Option<u64> {
    let mut buf = [0u8; 4096];
    let text = read_file(BorrowedFd::CWD, c"/proc/self/status", &mut buf).ok()?;
    parse_radix(proc_field(text, b"CapEff:")?, 16)
}

/// The open flags of `fd` as /proc/self/fdinfo reports them (octal, the host's encoding).
pub fn fd_flags(fd: impl AsFd) -> Option<u64> {
    let path = cfmt!("/proc/self/fdinfo/{}", fd.as_fd().raw());
    let mut buf = [0u8; 1024];
    let text = read_file(BorrowedFd::CWD, path.as_cstr(), &mut buf).ok()?;
    parse_radix(proc_field(text, b"flags:")?, 8)
}

/// O_CLOEXEC as fdinfo shows it (the same 02000000 on every supported arch).
pub const FDINFO_CLOEXEC: u64 = 0o2000000;

pub fn is_root() -> bool {
    process::getuid() == 0
}

/// Whether we are in the initial user namespace (uid_map is the identity over all ids), as
/// opposed to one that `enter_ns` created.
pub fn in_initial_userns() -> bool {
    let mut buf = [0u8; 256];
    let Ok(map) = read_file(BorrowedFd::CWD, c"/proc/self/uid_map", &mut buf) else { return false };
    let mut nums = map.split(|b| b.is_ascii_whitespace()).filter(|w| !w.is_empty()).map(|w| parse_radix(w, 10));
    (nums.next(), nums.next(), nums.next(), nums.next()) == (Some(Some(0)), Some(Some(0)), Some(Some(u32::MAX as u64)), None)
}

/// Enters new namespaces of `flags`. As root that is all; unprivileged, a new user
/// namespace comes first (mapping our ids to root inside it) so that the rest is allowed.
pub fn enter_ns(flags: NsFlags) -> Result<()> {
    if is_root() {
        return process::unshare(flags);
    }
    let uid = process::getuid();
    let gid = process::getgid();
    if let Err(e) = process::unshare(flags | NsFlags::NEWUSER) {
        if e == Errno::EINVAL {
            say!("# unshare(CLONE_NEWUSER) gave EINVAL: the kernel refuses it to a multithreaded process, and \
                  qemu-user runs helper threads (also in forked children); run the suite as root");
        }
        return Err(e);
    }
    write_file(BorrowedFd::CWD, c"/proc/self/setgroups", b"deny")?;
    let m = cfmt!("0 {uid} 1\n");
    write_file(BorrowedFd::CWD, c"/proc/self/uid_map", m.bytes())?;
    let m = cfmt!("0 {gid} 1\n");
    write_file(BorrowedFd::CWD, c"/proc/self/gid_map", m.bytes())?;
    Ok(())
}

/// The target of /proc/self/ns/NAME (`uts:[4026531838]`), to tell namespaces apart.
pub fn ns_id(name: &CStr, buf: &mut [u8]) -> Result<usize> {
    let path = cfmt!("/proc/self/ns/{}", name.to_str().map_err(|_| Errno::EINVAL)?);
    fs::readlinkat(BorrowedFd::CWD, path.as_cstr(), buf).map(|s| s.len())
}

/// getcwd through the raw call (the crate has no wrapper): the absolute working directory.
pub fn getcwd(buf: &mut [u8]) -> Option<&[u8]> {
    // SAFETY: buf is writable for its length.
    let n = unsafe {
        syscall::arch::syscall2(linux_raw_sys::general::__NR_getcwd, buf.as_mut_ptr() as usize, buf.len())
    };
    let n = syscall::errno::check(n).ok()?;
    // The length includes the NUL.
    buf.get(..n.checked_sub(1)?)
}

/// `path` made absolute against the working directory (for argv[0] before a chdir).
pub fn absolute(path: &CStr) -> CBuf {
    if path.to_bytes().first() == Some(&b'/') {
        return cfmt!("{}", path.to_str().unwrap_or(""));
    }
    let mut buf = [0u8; 200];
    let cwd = getcwd(&mut buf).and_then(|c| core::str::from_utf8(c).ok()).unwrap_or("");
    cfmt!("{}/{}", cwd, path.to_str().unwrap_or(""))
}
