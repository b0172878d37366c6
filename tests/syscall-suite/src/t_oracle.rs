//! An independent oracle for the raw asm of syscall/src/arch/: the same calls of 0..6
//! arguments through `syscalls::syscall!` and through `syscall::arch::syscallN`, compared.
//! Each call is chosen so that every argument changes the result (a dropped or swapped
//! register shows), which matters most on i686, where arguments 4-6 go through esi/edi/ebp
//! with a register-swap trick.

use crate::harness::{B, T};
use linux_raw_sys::general as g;
use syscall::arch as a;
use syscall::fs::{self, OFlags, StatxMask};
use syscall::{AsFd, BorrowedFd};
use syscalls::{syscall, Sysno};

/// A `syscalls` result in the kernel's raw encoding, to compare with ours.
fn raw(r: Result<usize, syscalls::Errno>) -> usize {
    match r {
        Ok(v) => v,
        Err(e) => (e.into_raw() as isize).wrapping_neg() as usize,
    }
}

fn ebadf() -> usize {
    (linux_raw_sys::errno::EBADF as isize).wrapping_neg() as usize
}

pub fn run(t: &mut T) {
    numbers(t);
    zero_to_two(t);
    three(t);
    four(t);
    five(t);
    six(t);
}

/// The syscall numbers linux-raw-sys gives us agree with the syscalls crate's tables.
fn numbers(t: &mut T) {
    let pairs: &[(&str, u32, Sysno)] = &[
        ("getpid", g::__NR_getpid, Sysno::getpid),
        ("openat", g::__NR_openat, Sysno::openat),
        ("statx", g::__NR_statx, Sysno::statx),
        ("renameat2", g::__NR_renameat2, Sysno::renameat2),
        ("clone", g::__NR_clone, Sysno::clone),
        ("wait4", g::__NR_wait4, Sysno::wait4),
        ("pivot_root", g::__NR_pivot_root, Sysno::pivot_root),
        ("signalfd4", g::__NR_signalfd4, Sysno::signalfd4),
        ("finit_module", g::__NR_finit_module, Sysno::finit_module),
        ("reboot", g::__NR_reboot, Sysno::reboot),
        ("copy_file_range", g::__NR_copy_file_range, Sysno::copy_file_range),
    ];
    let mut bad = None;
    for (name, ours, theirs) in pairs {
        if *ours as usize != *theirs as usize {
            bad = Some((*name, *ours, *theirs as usize));
        }
    }
    t.check("oracle::numbers", bad.is_none(), format_args!("number mismatch {bad:?}"));
}

fn zero_to_two(t: &mut T) {
    // SAFETY: no arguments.
    let (o, s) = unsafe { (a::syscall0(g::__NR_getpid), raw(syscall!(Sysno::getpid))) };
    t.eq("oracle::syscall0_getpid", o, s);
    t.eq("oracle::getpid_wrapper", syscall::process::getpid().0 as usize, s);
    // SAFETY: no arguments.
    let (o, s) = unsafe { (a::syscall0(g::__NR_getppid), raw(syscall!(Sysno::getppid))) };
    t.eq("oracle::syscall0_getppid", o, s);

    // SAFETY: close of an fd that does not exist.
    let (o, s) = unsafe { (a::syscall1(g::__NR_close, -1isize as usize), raw(syscall!(Sysno::close, -1isize))) };
    t.eq("oracle::syscall1_close_ebadf", (o, s), (ebadf(), ebadf()));
    // umask through both: each returns the mask the other set.
    // SAFETY: umask takes an integer.
    let (o1, s1, o2) = unsafe {
        let o1 = a::syscall1(g::__NR_umask, 0o027);
        let s1 = raw(syscall!(Sysno::umask, 0o005));
        let o2 = a::syscall1(g::__NR_umask, o1);
        (o1, s1, o2)
    };
    t.eq("oracle::syscall1_umask", (o1, s1, o2), (0, 0o027, 0o005));

    let mut b1 = [0u8; 256];
    let mut b2 = [0u8; 256];
    // SAFETY: both buffers are 256 writable bytes.
    let (o, s) = unsafe {
        (a::syscall2(g::__NR_getcwd, b1.as_mut_ptr() as usize, b1.len()),
         raw(syscall!(Sysno::getcwd, b2.as_mut_ptr(), b2.len())))
    };
    t.check("oracle::syscall2_getcwd", o == s && o > 1 && b1 == b2,
            format_args!("ours {o} {:?}, syscalls {s} {:?}", B(&b1[..o.min(256)]), B(&b2[..s.min(256)])));
    // A too-small buffer: ERANGE from both (the length argument is honoured).
    // SAFETY: 1 writable byte each.
    let (o, s) = unsafe {
        (a::syscall2(g::__NR_getcwd, b1.as_mut_ptr() as usize, 1),
         raw(syscall!(Sysno::getcwd, b2.as_mut_ptr(), 1)))
    };
    let erange = (linux_raw_sys::errno::ERANGE as isize).wrapping_neg() as usize;
    t.eq("oracle::syscall2_getcwd_erange", (o, s), (erange, erange));
}

fn three(t: &mut T) {
    let Some((r, w)) = t.need("oracle::pipe", syscall::io::pipe2(true, false)) else { return };
    // dup3(old, new, flags): every argument shows in the result.
    // SAFETY: fd numbers only.
    let (o, s) = unsafe {
        (a::syscall3(g::__NR_dup3, w.raw() as usize, 60, g::O_CLOEXEC as usize),
         raw(syscall!(Sysno::dup3, w.raw(), 61, g::O_CLOEXEC)))
    };
    t.eq("oracle::syscall3_dup3", (o, s), (60, 61));
    let cloexec = (crate::util::fd_flags(BorrowedFd::raw_static(60)), crate::util::fd_flags(BorrowedFd::raw_static(61)));
    let ce = crate::util::FDINFO_CLOEXEC;
    t.check("oracle::syscall3_dup3_flags", matches!(cloexec, (Some(x), Some(y)) if x & ce != 0 && y & ce != 0),
            format_args!("fdinfo flags {cloexec:?}"));
    // write through one, read through the other.
    // SAFETY: the buffers are live for the calls.
    let (wo, ws) = unsafe {
        (a::syscall3(g::__NR_write, 60, b"ours ".as_ptr() as usize, 5),
         raw(syscall!(Sysno::write, 61, b"theirs".as_ptr(), 6)))
    };
    let mut buf = [0u8; 16];
    // SAFETY: buf is 16 writable bytes.
    let n = unsafe { raw(syscall!(Sysno::read, r.raw(), buf.as_mut_ptr(), 16)) };
    t.eq("oracle::syscall3_write_read", (wo, ws, B(&buf[..n.min(16)])), (5, 6, B(b"ours theirs")));
    // SAFETY: closing the two dups made above.
    unsafe {
        a::syscall1(g::__NR_close, 60);
        a::syscall1(g::__NR_close, 61);
    }
}

fn four(t: &mut T) {
    // openat(dirfd, path, flags, mode): the mode (4th argument, esi on i686) shows in statx.
    // SAFETY: NUL-terminated literals.
    let (o, s) = unsafe {
        let fl = (g::O_WRONLY | g::O_CREAT | g::O_EXCL | g::O_CLOEXEC) as usize;
        (a::syscall4(g::__NR_openat, g::AT_FDCWD as isize as usize, c"oracle-o".as_ptr() as usize, fl, 0o640),
         raw(syscall!(Sysno::openat, g::AT_FDCWD, c"oracle-s".as_ptr(), fl, 0o604)))
    };
    let mo = fs::statx(BorrowedFd::CWD, c"oracle-o", fs::AtFlags::EMPTY, StatxMask::MODE).map(|s| s.stx_mode & 0o7777);
    let ms = fs::statx(BorrowedFd::CWD, c"oracle-s", fs::AtFlags::EMPTY, StatxMask::MODE).map(|s| s.stx_mode & 0o7777);
    t.check("oracle::syscall4_openat_mode", (o as isize) >= 0 && (s as isize) >= 0 && mo == Ok(0o640) && ms == Ok(0o604),
            format_args!("fds {} {}, modes {mo:?} {ms:?}", o as isize, s as isize));
    // SAFETY: closing the two fds just opened.
    unsafe {
        a::syscall1(g::__NR_close, o);
        a::syscall1(g::__NR_close, s);
    }

    // rt_sigprocmask(SIG_BLOCK, &empty, &old, 8): both read the same mask.
    let empty = 0u64;
    let (mut old_o, mut old_s) = (u64::MAX, u64::MAX);
    // SAFETY: sigsets of 8 bytes.
    let (o, s) = unsafe {
        (a::syscall4(g::__NR_rt_sigprocmask, g::SIG_BLOCK as usize, &empty as *const u64 as usize,
                     &mut old_o as *mut u64 as usize, 8),
         raw(syscall!(Sysno::rt_sigprocmask, g::SIG_BLOCK, &empty as *const u64, &mut old_s as *mut u64, 8)))
    };
    t.eq("oracle::syscall4_sigprocmask", (o, s, old_o), (0, 0, old_s));

    // pread64 at an offset: 4 arguments on 64-bit, 5 on i686 (split offset), 6 on arm
    // (split offset in an aligned register pair).
    let Some(fd) = t.need("oracle::memfd", syscall::mm::memfd_create(c"oracle")) else { return };
    let mut data = [0u8; 8192];
    for (i, b) in data.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    if t.need("oracle::memfd_write", fs::write_all(&fd, &data)).is_none() {
        return;
    }
    let off: u64 = 4096 + 5;
    let (mut b1, mut b2) = ([0u8; 7], [0u8; 7]);
    #[cfg(target_pointer_width = "64")]
    // SAFETY: 7 writable bytes each.
    let (o, s) = unsafe {
        (a::syscall4(g::__NR_pread64, fd.raw() as usize, b1.as_mut_ptr() as usize, 7, off as usize),
         raw(syscall!(Sysno::pread64, fd.raw(), b2.as_mut_ptr(), 7, off)))
    };
    #[cfg(target_arch = "x86")]
    // SAFETY: 7 writable bytes each.
    let (o, s) = unsafe {
        (a::syscall5(g::__NR_pread64, fd.raw() as usize, b1.as_mut_ptr() as usize, 7, off as u32 as usize,
                     (off >> 32) as usize),
         raw(syscall!(Sysno::pread64, fd.raw(), b2.as_mut_ptr(), 7, off as u32, (off >> 32) as u32)))
    };
    #[cfg(target_arch = "arm")]
    // SAFETY: 7 writable bytes each.
    let (o, s) = unsafe {
        (a::syscall6(g::__NR_pread64, fd.raw() as usize, b1.as_mut_ptr() as usize, 7, 0, off as u32 as usize,
                     (off >> 32) as usize),
         raw(syscall!(Sysno::pread64, fd.raw(), b2.as_mut_ptr(), 7, 0, off as u32, (off >> 32) as u32)))
    };
    let want: [u8; 7] = core::array::from_fn(|i| ((off as usize + i) % 251) as u8);
    t.eq("oracle::pread64_offset", (o, s, b1, b2), (7, 7, want, want));
}

fn five(t: &mut T) {
    // statx(dirfd, path, flags, mask, buf): the buffer pointer is the 5th argument.
    let mut s1 = [0u8; 256];
    let mut s2 = [0u8; 256];
    // SAFETY: 256 writable bytes each (struct statx is 256 bytes).
    let (o, s) = unsafe {
        (a::syscall5(g::__NR_statx, g::AT_FDCWD as isize as usize, c"oracle-o".as_ptr() as usize, 0,
                     g::STATX_BASIC_STATS as usize, s1.as_mut_ptr() as usize),
         raw(syscall!(Sysno::statx, g::AT_FDCWD, c"oracle-o".as_ptr(), 0, g::STATX_BASIC_STATS, s2.as_mut_ptr())))
    };
    // Compare up to stx_blocks (the times may differ by nothing, but atime could move).
    t.check("oracle::syscall5_statx", o == 0 && s == 0 && s1[..64] == s2[..64] && s1[..4] != [0; 4],
            format_args!("results {o} {s}, first 64 bytes differ: {}", s1[..64] != s2[..64]));
    // renameat2(..., RENAME_NOREPLACE) onto an existing file: EEXIST only if the 5th
    // argument arrived (without it the rename succeeds).
    // SAFETY: NUL-terminated literals.
    let (o, s) = unsafe {
        (a::syscall5(g::__NR_renameat2, g::AT_FDCWD as isize as usize, c"oracle-o".as_ptr() as usize,
                     g::AT_FDCWD as isize as usize, c"oracle-s".as_ptr() as usize, g::RENAME_NOREPLACE as usize),
         raw(syscall!(Sysno::renameat2, g::AT_FDCWD, c"oracle-s".as_ptr(), g::AT_FDCWD, c"oracle-o".as_ptr(),
                      g::RENAME_NOREPLACE)))
    };
    let eexist = (linux_raw_sys::errno::EEXIST as isize).wrapping_neg() as usize;
    t.eq("oracle::syscall5_renameat2_noreplace", (o, s), (eexist, eexist));
}

fn six(t: &mut T) {
    // mmap(addr, len, prot, flags, fd, offset) of the third page of a file: the offset is
    // the 6th argument (ebp on i686; in pages for mmap2 on 32-bit). Every argument has a
    // distinct value, so a swap shows.
    let Some(fd) = t.need("oracle::memfd6", syscall::mm::memfd_create(c"oracle6")) else { return };
    let mut page = [b'A'; 4096];
    let _ = fs::write_all(&fd, &page);
    page.fill(b'B');
    let _ = fs::write_all(&fd, &page);
    page.fill(b'C');
    let _ = fs::write_all(&fd, &page);
    #[cfg(target_pointer_width = "64")]
    let (nr_ours, sysno, off) = (g::__NR_mmap, Sysno::mmap, 2 * 4096usize);
    #[cfg(target_pointer_width = "32")]
    let (nr_ours, sysno, off) = (g::__NR_mmap2, Sysno::mmap2, 2usize);
    let prot = g::PROT_READ as usize;
    let flags = g::MAP_SHARED as usize;
    // SAFETY: a fresh shared read-only mapping of our memfd.
    let (o, s) = unsafe {
        (a::syscall6(nr_ours, 0, 4096, prot, flags, fd.raw() as usize, off),
         raw(syscall!(sysno, 0, 4096, prot, flags, fd.raw(), off)))
    };
    let ok = o < usize::MAX - 4095 && s < usize::MAX - 4095;
    // SAFETY: both are 4096-byte readable mappings when ok.
    let (fo, fs_) = if ok { unsafe { (*(o as *const u8), *(s as *const u8)) } } else { (0, 0) };
    t.check("oracle::syscall6_mmap_offset", ok && fo == b'C' && fs_ == b'C' && o != s,
            format_args!("addresses {o:#x} {s:#x}, first bytes {fo} {fs_} (want 'C')"));
    if ok {
        // SAFETY: unmapping the two mappings made above, not used afterwards.
        unsafe {
            a::syscall2(g::__NR_munmap, o, 4096);
            a::syscall2(g::__NR_munmap, s, 4096);
        }
    }

    // copy_file_range(in, &off_in, out, &off_out, len, flags): flags is the 6th argument;
    // a non-zero one is EINVAL.
    let f_in = fs::open(c"oracle-cfr-in", OFlags::RDWR | OFlags::CREAT | OFlags::CLOEXEC, 0o644);
    let f_out = fs::open(c"oracle-cfr-out", OFlags::RDWR | OFlags::CREAT | OFlags::CLOEXEC, 0o644);
    let (Some(f_in), Some(f_out)) = (t.need("oracle::cfr_in", f_in), t.need("oracle::cfr_out", f_out)) else { return };
    let _ = fs::write_all(&f_in, b"0123456789abcdef");
    let (mut oi1, mut oo1, mut oi2, mut oo2) = (3i64, 0i64, 10i64, 4i64);
    // SAFETY: the offsets are live i64s.
    let (e1, e2) = unsafe {
        (a::syscall6(g::__NR_copy_file_range, f_in.raw() as usize, &mut oi1 as *mut i64 as usize,
                     f_out.raw() as usize, &mut oo1 as *mut i64 as usize, 4, 1),
         raw(syscall!(Sysno::copy_file_range, f_in.raw(), &mut oi2 as *mut i64, f_out.raw(), &mut oo2 as *mut i64, 4, 1)))
    };
    let einval = (linux_raw_sys::errno::EINVAL as isize).wrapping_neg() as usize;
    t.eq("oracle::syscall6_cfr_flags", (e1, e2), (einval, einval));
    // SAFETY: as above.
    let (c1, c2) = unsafe {
        (a::syscall6(g::__NR_copy_file_range, f_in.raw() as usize, &mut oi1 as *mut i64 as usize,
                     f_out.raw() as usize, &mut oo1 as *mut i64 as usize, 4, 0),
         raw(syscall!(Sysno::copy_file_range, f_in.raw(), &mut oi2 as *mut i64, f_out.raw(), &mut oo2 as *mut i64, 4, 0)))
    };
    let mut buf = [0u8; 16];
    let _ = fs::lseek(&f_out, fs::Seek::Set(0));
    let n = fs::read(f_out.as_fd(), &mut buf).unwrap_or(0);
    t.eq("oracle::syscall6_cfr", (c1, c2, oi1, oo1, oi2, oo2, B(&buf[..n])), (4, 4, 7, 4, 14, 8, B(b"3456abcd")));
}
