//! Files and directories: openat, read, write, close, getdents64, mkdirat, symlinkat,
//! readlinkat, linkat, unlinkat, renameat2, statx, fchmodat, fchmod, fchownat, mknodat, fsync, sync,
//! lseek, ftruncate, sendfile, fcntl (F_GETFL/F_SETFL).
//!
//! # Safety
//! Every call passes pointers to live, correctly sized Rust memory (slices, `&CStr`,
//! structs) and fds the caller borrows; the kernel writes at most the lengths passed.
#![allow(unsafe_code)]

use crate::arch::*;
use crate::errno::{check, check_unit, Result};
use crate::fd::{arg, AsFd, BorrowedFd, OwnedFd};
use crate::nr;
use core::ffi::CStr;
use linux_raw_sys::general as g;

pub use linux_raw_sys::general::statx as Statx;

flags! {
    /// open(2) flags.
    pub struct OFlags: u32 {
        const RDONLY = g::O_RDONLY;
        const WRONLY = g::O_WRONLY;
        const RDWR = g::O_RDWR;
        const CREAT = g::O_CREAT;
        const EXCL = g::O_EXCL;
        const NOCTTY = g::O_NOCTTY;
        const TRUNC = g::O_TRUNC;
        const APPEND = g::O_APPEND;
        const NONBLOCK = g::O_NONBLOCK;
        const DIRECTORY = g::O_DIRECTORY;
        const NOFOLLOW = g::O_NOFOLLOW;
        const CLOEXEC = g::O_CLOEXEC;
        const PATH = g::O_PATH;
        const LARGEFILE = g::O_LARGEFILE;
    }
}

flags! {
    /// `AT_*` flags of the *at calls.
    pub struct AtFlags: u32 {
        const SYMLINK_NOFOLLOW = g::AT_SYMLINK_NOFOLLOW;
        const REMOVEDIR = g::AT_REMOVEDIR;
        const EMPTY_PATH = g::AT_EMPTY_PATH;
        const NO_AUTOMOUNT = g::AT_NO_AUTOMOUNT;
    }
}

flags! {
    /// renameat2(2) flags.
    pub struct RenameFlags: u32 {
        const NOREPLACE = g::RENAME_NOREPLACE;
        const EXCHANGE = g::RENAME_EXCHANGE;
    }
}

flags! {
    /// statx(2) field mask.
    pub struct StatxMask: u32 {
        const TYPE = g::STATX_TYPE;
        const MODE = g::STATX_MODE;
        const NLINK = g::STATX_NLINK;
        const UID = g::STATX_UID;
        const GID = g::STATX_GID;
        const MTIME = g::STATX_MTIME;
        const INO = g::STATX_INO;
        const SIZE = g::STATX_SIZE;
        const BASIC_STATS = g::STATX_BASIC_STATS;
    }
}

/// File type bits of a mode (`S_IFMT` and friends).
pub mod mode {
    use linux_raw_sys::general as g;
    pub const IFMT: u32 = g::S_IFMT;
    pub const IFREG: u32 = g::S_IFREG;
    pub const IFDIR: u32 = g::S_IFDIR;
    pub const IFLNK: u32 = g::S_IFLNK;
    pub const IFCHR: u32 = g::S_IFCHR;
    pub const IFBLK: u32 = g::S_IFBLK;
    pub const IFIFO: u32 = g::S_IFIFO;
    pub const IFSOCK: u32 = g::S_IFSOCK;
}

/// Whence of lseek(2).
#[derive(Copy, Clone, Debug)]
pub enum Seek {
    Set(u64),
    Cur(i64),
    End(i64),
}

/// openat(dirfd, path, flags, mode) — open or create a file. O_LARGEFILE is always added so
/// that 32-bit arches handle files over 2 GiB (64-bit kernels force it on anyway).
pub fn openat(dir: BorrowedFd<'_>, path: &CStr, flags: OFlags, mode: u32) -> Result<OwnedFd> {
    let flags = flags | OFlags::LARGEFILE;
    // SAFETY: see module docs.
    let ret = unsafe {
        syscall4(nr::__NR_openat, arg(dir), path.as_ptr() as usize, flags.bits() as usize, mode as usize)
    };
    check(ret).map(|fd| OwnedFd::from_raw(fd as i32))
}

/// open(path, flags, mode) relative to the working directory.
pub fn open(path: &CStr, flags: OFlags, mode: u32) -> Result<OwnedFd> {
    openat(BorrowedFd::CWD, path, flags, mode)
}

/// read(fd, buf) — returns the number of bytes read, 0 at end of file.
pub fn read(fd: impl AsFd, buf: &mut [u8]) -> Result<usize> {
    // SAFETY: see module docs.
    check(unsafe { syscall3(nr::__NR_read, arg(fd.as_fd()), buf.as_mut_ptr() as usize, buf.len()) })
}

/// write(fd, buf) — returns the number of bytes written.
pub fn write(fd: impl AsFd, buf: &[u8]) -> Result<usize> {
    // SAFETY: see module docs.
    check(unsafe { syscall3(nr::__NR_write, arg(fd.as_fd()), buf.as_ptr() as usize, buf.len()) })
}

/// Writes all of `buf`, retrying on EINTR and short writes.
pub fn write_all(fd: impl AsFd, mut buf: &[u8]) -> Result<()> {
    let fd = fd.as_fd();
    while !buf.is_empty() {
        match write(fd, buf) {
            Ok(0) => return Err(crate::Errno::EIO),
            Ok(n) => buf = buf.get(n..).unwrap_or(&[]),
            Err(crate::Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads until `buf` is full or end of file; returns the bytes read.
pub fn read_full(fd: impl AsFd, buf: &mut [u8]) -> Result<usize> {
    let fd = fd.as_fd();
    let mut done = 0;
    while let Some(rest) = buf.get_mut(done..) {
        if rest.is_empty() {
            break;
        }
        match read(fd, rest) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(crate::Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

pub(crate) fn close_raw(fd: i32) -> Result<()> {
    // SAFETY: closing a number has no memory effects.
    check_unit(unsafe { syscall1(nr::__NR_close, fd as usize) })
}

/// close(fd) — close and see the error (dropping an `OwnedFd` ignores it).
pub fn close(fd: OwnedFd) -> Result<()> {
    close_raw(fd.into_raw())
}

/// lseek(fd, offset, whence) — returns the new offset. 32-bit arches use _llseek.
pub fn lseek(fd: impl AsFd, to: Seek) -> Result<u64> {
    let (off, whence) = match to {
        Seek::Set(o) => (o as i64, g::SEEK_SET),
        Seek::Cur(o) => (o, g::SEEK_CUR),
        Seek::End(o) => (o, g::SEEK_END),
    };
    #[cfg(target_pointer_width = "64")]
    {
        // SAFETY: see module docs.
        check(unsafe { syscall3(nr::__NR_lseek, arg(fd.as_fd()), off as usize, whence as usize) })
            .map(|r| r as u64)
    }
    #[cfg(target_pointer_width = "32")]
    {
        let mut result: u64 = 0;
        // SAFETY: see module docs; `result` is 8 writable bytes.
        let ret = unsafe {
            syscall5(nr::__NR__llseek, arg(fd.as_fd()), (off as u64 >> 32) as usize,
                     off as u64 as u32 as usize, &mut result as *mut u64 as usize, whence as usize)
        };
        check(ret).map(|_| result)
    }
}

/// ftruncate(fd, length).
pub fn ftruncate(fd: impl AsFd, len: u64) -> Result<()> {
    #[cfg(target_pointer_width = "64")]
    // SAFETY: see module docs.
    let ret = unsafe { syscall2(nr::__NR_ftruncate, arg(fd.as_fd()), len as usize) };
    #[cfg(all(target_pointer_width = "32", target_arch = "arm"))]
    // SAFETY: see module docs; EABI passes the 64-bit length in an aligned register pair.
    let ret = unsafe {
        syscall4(nr::__NR_ftruncate64, arg(fd.as_fd()), 0, len as u32 as usize, (len >> 32) as usize)
    };
    #[cfg(all(target_pointer_width = "32", not(target_arch = "arm")))]
    // SAFETY: see module docs.
    let ret = unsafe {
        syscall3(nr::__NR_ftruncate64, arg(fd.as_fd()), len as u32 as usize, (len >> 32) as usize)
    };
    check_unit(ret)
}

/// sendfile(out, in, NULL, count) — copy between files inside the kernel.
pub fn sendfile(out: impl AsFd, input: impl AsFd, count: usize) -> Result<usize> {
    #[cfg(target_pointer_width = "64")]
    let n = nr::__NR_sendfile;
    #[cfg(target_pointer_width = "32")]
    let n = nr::__NR_sendfile64;
    // SAFETY: see module docs; a NULL offset uses the file position.
    check(unsafe { syscall4(n, arg(out.as_fd()), arg(input.as_fd()), 0, count) })
}

/// getdents64(fd, buf) — fill `buf` with directory records; 0 at the end. Walk them with
/// [`Dirents`].
pub fn getdents64(fd: impl AsFd, buf: &mut [u8]) -> Result<usize> {
    // SAFETY: see module docs.
    check(unsafe { syscall3(nr::__NR_getdents64, arg(fd.as_fd()), buf.as_mut_ptr() as usize, buf.len()) })
}

/// One directory record.
#[derive(Copy, Clone, Debug)]
pub struct Dirent<'a> {
    pub ino: u64,
    /// `DT_*` type (DT_UNKNOWN if the filesystem does not say).
    pub kind: u8,
    pub name: &'a CStr,
}

pub const DT_UNKNOWN: u8 = g::DT_UNKNOWN as u8;
pub const DT_DIR: u8 = g::DT_DIR as u8;
pub const DT_REG: u8 = g::DT_REG as u8;
pub const DT_LNK: u8 = g::DT_LNK as u8;
pub const DT_BLK: u8 = g::DT_BLK as u8;
pub const DT_CHR: u8 = g::DT_CHR as u8;

/// Iterates the records of a getdents64 buffer, bounds-checking each (a short or corrupt
/// record ends the walk).
pub struct Dirents<'a> {
    buf: &'a [u8],
}

impl<'a> Dirents<'a> {
    pub fn new(buf: &'a [u8]) -> Dirents<'a> {
        Dirents { buf }
    }
}

impl<'a> Iterator for Dirents<'a> {
    type Item = Dirent<'a>;
    fn next(&mut self) -> Option<Dirent<'a>> {
        // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
        let head = self.buf.get(..19)?;
        let ino = u64::from_ne_bytes(head.get(0..8)?.try_into().ok()?);
        let reclen = u16::from_ne_bytes(head.get(16..18)?.try_into().ok()?) as usize;
        let kind = *head.get(18)?;
        if reclen < 19 {
            return None;
        }
        let rec = self.buf.get(..reclen)?;
        let name = CStr::from_bytes_until_nul(rec.get(19..)?).ok()?;
        self.buf = self.buf.get(reclen..)?;
        Some(Dirent { ino, kind, name })
    }
}

/// mkdirat(dirfd, path, mode).
pub fn mkdirat(dir: BorrowedFd<'_>, path: &CStr, mode: u32) -> Result<()> {
    // SAFETY: see module docs.
    check_unit(unsafe { syscall3(nr::__NR_mkdirat, arg(dir), path.as_ptr() as usize, mode as usize) })
}

/// symlinkat(target, dirfd, linkpath) — create `linkpath` pointing at `target`.
pub fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, link: &CStr) -> Result<()> {
    // SAFETY: see module docs.
    check_unit(unsafe {
        syscall3(nr::__NR_symlinkat, target.as_ptr() as usize, arg(dir), link.as_ptr() as usize)
    })
}

/// readlinkat(dirfd, path, buf) — the link target's bytes (not NUL-terminated) in `buf`.
/// A target that fills `buf` exactly may be truncated: that case is ENAMETOOLONG.
pub fn readlinkat<'b>(dir: BorrowedFd<'_>, path: &CStr, buf: &'b mut [u8]) -> Result<&'b [u8]> {
    // SAFETY: see module docs.
    let n = check(unsafe {
        syscall4(nr::__NR_readlinkat, arg(dir), path.as_ptr() as usize, buf.as_mut_ptr() as usize, buf.len())
    })?;
    if n >= buf.len() {
        return Err(crate::Errno::ENAMETOOLONG);
    }
    buf.get(..n).ok_or(crate::Errno::EINVAL)
}

/// linkat(olddirfd, old, newdirfd, new, 0) — a hard link `new` to `old` (not following a
/// symlink at `old`).
pub fn linkat(old_dir: BorrowedFd<'_>, old: &CStr, new_dir: BorrowedFd<'_>, new: &CStr) -> Result<()> {
    // SAFETY: see module docs.
    check_unit(unsafe {
        syscall5(nr::__NR_linkat, arg(old_dir), old.as_ptr() as usize, arg(new_dir), new.as_ptr() as usize, 0)
    })
}

/// unlinkat(dirfd, path, flags) — remove a file, or a directory with `AtFlags::REMOVEDIR`.
pub fn unlinkat(dir: BorrowedFd<'_>, path: &CStr, flags: AtFlags) -> Result<()> {
    // SAFETY: see module docs.
    check_unit(unsafe { syscall3(nr::__NR_unlinkat, arg(dir), path.as_ptr() as usize, flags.bits() as usize) })
}

/// renameat2(olddirfd, old, newdirfd, new, flags).
pub fn renameat2(
    old_dir: BorrowedFd<'_>, old: &CStr, new_dir: BorrowedFd<'_>, new: &CStr, flags: RenameFlags,
) -> Result<()> {
    // SAFETY: see module docs.
    check_unit(unsafe {
        syscall5(nr::__NR_renameat2, arg(old_dir), old.as_ptr() as usize, arg(new_dir),
                 new.as_ptr() as usize, flags.bits() as usize)
    })
}

/// statx(dirfd, path, flags, mask) — file status.
pub fn statx(dir: BorrowedFd<'_>, path: &CStr, flags: AtFlags, mask: StatxMask) -> Result<Statx> {
    // SAFETY: an all-zero statx is a valid value of a plain-integer struct.
    let mut st: Statx = unsafe { core::mem::zeroed() };
    // SAFETY: see module docs; `st` is a writable statx.
    check_unit(unsafe {
        syscall5(nr::__NR_statx, arg(dir), path.as_ptr() as usize, flags.bits() as usize,
                 mask.bits() as usize, &mut st as *mut Statx as usize)
    })?;
    Ok(st)
}

/// fstat through statx(fd, "", AT_EMPTY_PATH).
pub fn fstatx(fd: impl AsFd, mask: StatxMask) -> Result<Statx> {
    statx(fd.as_fd(), c"", AtFlags::EMPTY_PATH, mask)
}

/// fchmodat(dirfd, path, mode).
pub fn fchmodat(dir: BorrowedFd<'_>, path: &CStr, mode: u32) -> Result<()> {
    // SAFETY: see module docs.
    check_unit(unsafe { syscall3(nr::__NR_fchmodat, arg(dir), path.as_ptr() as usize, mode as usize) })
}

/// fchmod(fd, mode).
pub fn fchmod(fd: impl AsFd, mode: u32) -> Result<()> {
    // SAFETY: no pointers.
    check_unit(unsafe { syscall2(nr::__NR_fchmod, arg(fd.as_fd()), mode as usize) })
}

/// fcntl(fd, F_GETFL) — the file status flags (`O_APPEND`, `O_NONBLOCK`, the access mode, ...).
pub fn fcntl_getfl(fd: impl AsFd) -> Result<OFlags> {
    // SAFETY: no pointers.
    check(unsafe { syscall2(nr::__NR_fcntl, arg(fd.as_fd()), g::F_GETFL as usize) }).map(|f| OFlags(f as u32))
}

/// fcntl(fd, F_SETFL, F_GETFL ± O_NONBLOCK) — switch non-blocking mode on or off. The flag
/// belongs to the open file description, so every dup of it (and a child's copy) changes too.
pub fn fcntl_set_nonblock(fd: impl AsFd, on: bool) -> Result<()> {
    let fd = fd.as_fd();
    let old = fcntl_getfl(fd)?.bits();
    let new = if on { old | g::O_NONBLOCK } else { old & !g::O_NONBLOCK };
    if new == old {
        return Ok(());
    }
    // SAFETY: no pointers.
    check_unit(unsafe { syscall3(nr::__NR_fcntl, arg(fd), g::F_SETFL as usize, new as usize) })
}

/// fchownat(dirfd, path, uid, gid, flags) — `u32::MAX` leaves an id unchanged.
pub fn fchownat(dir: BorrowedFd<'_>, path: &CStr, uid: u32, gid: u32, flags: AtFlags) -> Result<()> {
    // SAFETY: see module docs.
    check_unit(unsafe {
        syscall5(nr::__NR_fchownat, arg(dir), path.as_ptr() as usize, uid as usize, gid as usize,
                 flags.bits() as usize)
    })
}

/// The kernel's encoding of a device number for mknodat (new_encode_dev).
pub const fn makedev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & !0xff) << 12)
}

/// mknodat(dirfd, path, mode, dev) — `mode` includes the type (`mode::IFCHR` ...).
pub fn mknodat(dir: BorrowedFd<'_>, path: &CStr, mode: u32, dev: u32) -> Result<()> {
    // SAFETY: see module docs.
    check_unit(unsafe {
        syscall4(nr::__NR_mknodat, arg(dir), path.as_ptr() as usize, mode as usize, dev as usize)
    })
}

/// utimensat(dirfd, path, {atime, mtime}, flags) — set both times to `mtime` seconds.
pub fn set_mtime(dir: BorrowedFd<'_>, path: &CStr, mtime: i64, flags: AtFlags) -> Result<()> {
    let times = [crate::time::Timespec { sec: mtime, nsec: 0 }; 2];
    #[cfg(target_pointer_width = "64")]
    let n = nr::__NR_utimensat;
    #[cfg(target_pointer_width = "32")]
    let n = nr::__NR_utimensat_time64;
    // SAFETY: see module docs; `times` holds two __kernel_timespec values.
    check_unit(unsafe {
        syscall4(n, arg(dir), path.as_ptr() as usize, times.as_ptr() as usize, flags.bits() as usize)
    })
}

/// fsync(fd).
pub fn fsync(fd: impl AsFd) -> Result<()> {
    // SAFETY: see module docs.
    check_unit(unsafe { syscall1(nr::__NR_fsync, arg(fd.as_fd())) })
}

/// sync() — flush every filesystem.
pub fn sync() {
    // SAFETY: no arguments; sync cannot fail.
    unsafe { syscall0(nr::__NR_sync) };
}
