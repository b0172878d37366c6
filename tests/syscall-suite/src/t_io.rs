//! I/O plumbing: pipe2, dup3, ioctl, set_controlling_tty, ppoll.

use crate::harness::{B, T};
use crate::util::{fd_flags, FDINFO_CLOEXEC};
use syscall::fs::{self, OFlags};
use syscall::io::{self, PollFd, POLLERR, POLLHUP, POLLIN, POLLOUT};
use syscall::signal::SigSet;
use syscall::time::{self, Clock, Timespec};
use syscall::{AsFd, BorrowedFd, Errno};

pub fn run(t: &mut T) {
    pipes(t);
    dups(t);
    ioctls(t);
    poll(t);
}

fn pipes(t: &mut T) {
    let Some((r, w)) = t.ok("io::pipe2", io::pipe2(true, true)) else { return };
    let ce = |fd: BorrowedFd<'_>| fd_flags(fd).map(|f| f & FDINFO_CLOEXEC != 0);
    t.eq("io::pipe2_cloexec", (ce(r.as_fd()), ce(w.as_fd())), (Some(true), Some(true)));
    t.check("io::pipe2_nonblock", fd_flags(&r).is_some_and(|f| f & 0o4000 != 0), format_args!("flags {:?}", fd_flags(&r)));
    let mut buf = [0u8; 16];
    t.err("io::pipe2_empty_eagain", fs::read(&r, &mut buf), Errno::EAGAIN);
    t.eq("io::pipe2_write", fs::write(&w, b"ping"), Ok(4));
    let n = fs::read(&r, &mut buf);
    t.eq("io::pipe2_roundtrip", n.map(|n| B(&buf[..n])), Ok(B(b"ping")));
    t.err("io::pipe2_wrong_end", fs::write(&r, b"x"), Errno::EBADF);
    drop(w);
    t.eq("io::pipe2_eof", fs::read(&r, &mut buf), Ok(0));
    let Some((r2, w2)) = t.need("io::pipe2_plain", io::pipe2(false, false)) else { return };
    t.eq("io::pipe2_no_cloexec", (ce(r2.as_fd()), ce(w2.as_fd())), (Some(false), Some(false)));
}

fn dups(t: &mut T) {
    let Some((r, w)) = t.need("io::pipe_for_dup", io::pipe2(true, false)) else { return };
    let d = io::dup3(&w, 40, true);
    t.eq("io::dup3", d.as_ref().map(|d| d.raw()), Ok(40));
    let Ok(d) = d else { return };
    t.eq("io::dup3_cloexec", fd_flags(&d).map(|f| f & FDINFO_CLOEXEC != 0), Some(true));
    let _ = fs::write(&d, b"via dup");
    drop(d);
    let mut buf = [0u8; 16];
    let n = fs::read(&r, &mut buf);
    t.eq("io::dup3_same_file", n.map(|n| B(&buf[..n])), Ok(B(b"via dup")));
    let d = io::dup3(&w, 41, false);
    t.eq("io::dup3_no_cloexec", d.as_ref().ok().and_then(fd_flags).map(|f| f & FDINFO_CLOEXEC != 0), Some(false));
    // dup3 onto an open fd replaces it.
    if let Ok(d) = d {
        let again = io::dup3(&r, 41, true).map(|fd| fd.into_raw());
        t.eq("io::dup3_replaces", again, Ok(41));
        core::mem::forget(d); // fd 41 is now the read end; closed below by number.
        let _ = fs::close(syscall::OwnedFd::adopt(41));
    }
    t.err("io::dup3_same_einval", io::dup3(&w, w.raw(), false).map(|fd| fd.into_raw()), Errno::EINVAL);
    t.err("io::dup3_ebadf", io::dup3(BorrowedFd::raw_static(9999), 42, false).map(|fd| fd.into_raw()), Errno::EBADF);
}

fn ioctls(t: &mut T) {
    let Some((r, w)) = t.need("io::pipe_for_ioctl", io::pipe2(true, false)) else { return };
    let _ = fs::write(&w, b"12345");
    let fionread = linux_raw_sys::ioctl::FIONREAD;
    let mut n: i32 = -1;
    // SAFETY: FIONREAD writes one int.
    let ret = unsafe { io::ioctl_ptr(&r, fionread, &mut n as *mut i32) };
    t.eq("io::ioctl_ptr_fionread", (ret, n), (Ok(0), 5));
    let mut m: i32 = -1;
    let ret = io::ioctl_int(&r, fionread, &mut m as *mut i32 as usize);
    t.eq("io::ioctl_int_fionread", (ret, m), (Ok(0), 5));
    t.err("io::ioctl_int_ebadf", io::ioctl_int(BorrowedFd::raw_static(9999), fionread, 0), Errno::EBADF);
    // A terminal request on a pipe.
    let mut termios = [0u8; 64];
    // SAFETY: TCGETS writes a struct termios (under 64 bytes on every arch).
    let ret = unsafe { io::ioctl_ptr(&r, linux_raw_sys::ioctl::TCGETS, termios.as_mut_ptr()) };
    t.err("io::ioctl_tcgets_enotty", ret, Errno::ENOTTY);
    t.err("io::set_controlling_tty_pipe_enotty", io::set_controlling_tty(&r, false), Errno::ENOTTY);
    if let Some(f) = t.need("io::open_dev_null", fs::open(c"/dev/null", OFlags::RDWR | OFlags::CLOEXEC, 0)) {
        t.err("io::set_controlling_tty_devnull_enotty", io::set_controlling_tty(&f, true), Errno::ENOTTY);
    }
    t.err("io::set_controlling_tty_ebadf", io::set_controlling_tty(BorrowedFd::raw_static(9999), false), Errno::EBADF);
}

fn poll(t: &mut T) {
    let Some((r, w)) = t.need("io::pipe_for_poll", io::pipe2(true, false)) else { return };
    let zero = Timespec::from_millis(0);
    let mut fds = [PollFd::new(&r, POLLIN)];
    t.eq("io::pollfd_new", (fds[0].fd, fds[0].events, fds[0].revents), (r.raw(), POLLIN, 0));
    t.eq("io::ppoll_timeout_zero", (io::ppoll(&mut fds, Some(&zero), None), fds[0].revents), (Ok(0), 0));
    let before = time::clock_gettime(Clock::Monotonic);
    let n = io::ppoll(&mut fds, Some(&Timespec::from_millis(30)), None);
    let waited = time::clock_gettime(Clock::Monotonic).millis_since(before);
    t.check("io::ppoll_timeout_30ms", n == Ok(0) && (30..5000).contains(&waited),
            format_args!("returned {:?} after {waited} ms", crate::harness::Res(&n)));
    let _ = fs::write(&w, b"x");
    t.eq("io::ppoll_ready", (io::ppoll(&mut fds, Some(&zero), None), fds[0].revents), (Ok(1), POLLIN));
    // No timeout: returns at once because data is ready.
    t.eq("io::ppoll_no_timeout_ready", (io::ppoll(&mut fds, None, None), fds[0].revents), (Ok(1), POLLIN));
    // With a signal mask argument.
    let mask = SigSet::EMPTY;
    t.eq("io::ppoll_with_mask", io::ppoll(&mut fds, Some(&zero), Some(&mask)), Ok(1));
    // Several fds: the write end is writable, the read end readable.
    let mut two = [PollFd::new(&r, POLLIN), PollFd::new(&w, POLLOUT)];
    t.eq("io::ppoll_two", (io::ppoll(&mut two, Some(&zero), None), two[0].revents, two[1].revents), (Ok(2), POLLIN, POLLOUT));
    let mut b = [0u8; 4];
    let _ = fs::read(&r, &mut b);
    drop(w);
    t.eq("io::ppoll_hup", (io::ppoll(&mut fds, Some(&zero), None), fds[0].revents), (Ok(1), POLLHUP));
    // A closed fd in the array: POLLNVAL, counted.
    let mut bad = [PollFd { fd: 9999, events: POLLIN, revents: 0 }];
    let pollnval = linux_raw_sys::general::POLLNVAL as i16;
    t.eq("io::ppoll_pollnval", (io::ppoll(&mut bad, Some(&zero), None), bad[0].revents), (Ok(1), pollnval));
    // A negative fd is skipped.
    let mut skip = [PollFd { fd: -1, events: POLLIN, revents: 7 }];
    t.eq("io::ppoll_negative_fd", (io::ppoll(&mut skip, Some(&zero), None), skip[0].revents), (Ok(0), 0));
    // The write end of a pipe without readers: POLLERR.
    if let Ok((r3, w3)) = io::pipe2(true, false) {
        drop(r3);
        let mut fds = [PollFd::new(&w3, POLLOUT)];
        let n = io::ppoll(&mut fds, Some(&zero), None);
        t.eq("io::ppoll_pollerr", (n, fds[0].revents & POLLERR), (Ok(1), POLLERR));
    }
}
