//! entry (argv, envp), errno decoding, and fd ownership.

use crate::harness::{B, T};
use syscall::entry::Args;
use syscall::errno::{self, Errno};
use syscall::fs::{self, OFlags};
use syscall::{AsFd, BorrowedFd, OwnedFd};

/// umask(mask), which the syscall crate has no wrapper for; returns the old mask.
pub fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask takes an integer and cannot fail.
    unsafe { syscall::arch::syscall1(linux_raw_sys::general::__NR_umask, mask as usize) as u32 }
}

pub fn run(t: &mut T, args: &Args) {
    entry(t, args);
    errnos(t);
    fds(t);
}

fn entry(t: &mut T, args: &Args) {
    t.check("entry::argc", args.argc() == 2, format_args!("expected 2 (program, scratch dir), got {}", args.argc()));
    t.check("entry::arg0", args.arg(0).is_some_and(|a| !a.is_empty()),
            format_args!("argv[0] missing or empty"));
    t.eq("entry::arg_past_end", args.arg(args.argc()).is_none(), true);
    t.eq("entry::args_count", args.args().count(), args.argc());
    let arg1 = args.arg(1).map(|a| a.to_bytes()).unwrap_or(&[]);
    t.check("entry::args_order", args.args().nth(1).map(|a| a.to_bytes()) == Some(arg1),
            format_args!("args().nth(1) differs from arg(1)"));
    // The environment is whatever the runner passed; every entry must look like NAME=value
    // and the raw envp must list the same strings.
    let mut n = 0usize;
    let mut well_formed = true;
    for e in args.env() {
        n += 1;
        well_formed &= e.to_bytes().contains(&b'=');
    }
    t.check("entry::env", well_formed, format_args!("an environment entry without '='"));
    let envp = args.envp();
    let mut raw_n = 0usize;
    // SAFETY: envp is the kernel's NULL-terminated array (entry.rs); we stop at the NULL.
    unsafe {
        while !(*envp.add(raw_n)).is_null() {
            raw_n += 1;
        }
    }
    t.eq("entry::envp_raw", raw_n, n);
}

fn errnos(t: &mut T) {
    t.eq("errno::check_ok", errno::check(0), Ok(0));
    t.eq("errno::check_large_ok", errno::check(usize::MAX - 4095), Ok(usize::MAX - 4095));
    t.eq("errno::check_eperm", errno::check(usize::MAX), Err(Errno::EPERM));
    t.eq("errno::check_4095", errno::check(usize::MAX - 4094), Err(Errno(4095)));
    t.eq("errno::check_unit", errno::check_unit(5), Ok(()));
    t.eq("errno::check_unit_err", errno::check_unit(-2isize as usize), Err(Errno::ENOENT));
    let mut calls = 0;
    let r = errno::retry(|| {
        calls += 1;
        if calls < 3 { Err(Errno::EINTR) } else { Ok(calls) }
    });
    t.eq("errno::retry_eintr", r, Ok(3));
    let mut calls = 0;
    let r: Result<(), Errno> = errno::retry(|| {
        calls += 1;
        Err(Errno::EIO)
    });
    t.eq("errno::retry_other", (r, calls), (Err(Errno::EIO), 1));
    t.eq("errno::name", Errno::ENOENT.name(), Some("ENOENT"));
    t.eq("errno::name_unknown", Errno(4000).name(), None);
    t.eq("errno::raw", (Errno::ENOENT.raw(), Errno::EBADF.raw(), Errno::ENOTEMPTY.raw()), (2, 9, 39));
}

fn fds(t: &mut T) {
    t.eq("fd::std_numbers", (BorrowedFd::STDIN.raw(), BorrowedFd::STDOUT.raw(), BorrowedFd::STDERR.raw()), (0, 1, 2));
    t.eq("fd::cwd", BorrowedFd::CWD.raw(), -100);
    t.eq("fd::raw_static", BorrowedFd::raw_static(7).raw(), 7);
    let Some(f) = t.need("fd::open", fs::open(c"fd-file", OFlags::RDWR | OFlags::CREAT | OFlags::CLOEXEC, 0o600)) else { return };
    let n = f.raw();
    t.eq("fd::as_fd", f.as_fd().raw(), n);
    // Dropping closes: the number is free afterwards.
    drop(f);
    t.err("fd::drop_closes", fs::write(BorrowedFd::raw_static(n), b"x"), Errno::EBADF);
    // into_raw does not close; adopt takes the number back.
    let Some(f) = t.need("fd::open2", fs::open(c"fd-file", OFlags::RDWR | OFlags::CLOEXEC, 0)) else { return };
    let n = f.into_raw();
    t.eq("fd::into_raw_keeps_open", fs::write(BorrowedFd::raw_static(n), b"abc"), Ok(3));
    let f = OwnedFd::adopt(n);
    t.eq("fd::adopt", f.raw(), n);
    t.eq("fs::close", fs::close(f), Ok(()));
    t.err("fs::close_ebadf", fs::close(OwnedFd::adopt(n)), Errno::EBADF);
    let mut buf = [0u8; 8];
    let got = crate::util::read_file(BorrowedFd::CWD, c"fd-file", &mut buf).map(B);
    t.eq("fd::written_through_raw", got, Ok(B(b"abc")));
}
