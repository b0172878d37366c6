//! Unix sockets: socketpair with sendmsg/recvmsg (and truncation), a listening socket on a
//! path in the scratch directory and on an abstract name, accept4, SO_PEERCRED; datagrams
//! with SO_PASSCRED credentials sent with sendto to a path and an abstract name, SCM_RIGHTS
//! fds closed on receipt, SO_SNDTIMEO/SO_RCVTIMEO, shutdown; and interface_up on the `lo`
//! of a new network namespace.

use crate::harness::{section, spawn, wait, En, B, T};
use crate::util::{self, fd_flags, read_file, FDINFO_CLOEXEC};
use syscall::fs::{self, mode, AtFlags, StatxMask};
use syscall::mount::{self, MountFlags};
use syscall::net::{self, SocketType, Ucred, MSG_DONTWAIT, MSG_NOSIGNAL, MSG_TRUNC};
use syscall::process::{self, NsFlags};
use syscall::{AsFd, BorrowedFd, Errno, OwnedFd};

pub fn run(t: &mut T) {
    pairs(t);
    path_socket(t);
    abstract_socket(t);
    passcred(t);
    passcred_other_process(t);
    rights_are_closed(t);
    timeouts(t);
    shutdown(t);
    section(t, "net::interface_up", interface_up);
}

fn pairs(t: &mut T) {
    let mut buf = [0u8; 32];
    if let Some((a, b)) = t.ok("net::socketpair_stream", net::socketpair_unix(SocketType::Stream)) {
        t.eq("net::socketpair_cloexec", fd_flags(&a).map(|f| f & FDINFO_CLOEXEC != 0), Some(true));
        t.eq("net::sendmsg", net::sendmsg(&a, b"hello", 0), Ok(5));
        let got = net::recvmsg(&b, &mut buf, 0).map(|(n, tr)| (B(&buf[..n]), tr));
        t.eq("net::recvmsg", got, Ok((B(b"hello"), false)));
        t.err("net::recvmsg_dontwait_eagain", net::recvmsg(&b, &mut buf, MSG_DONTWAIT), Errno::EAGAIN);
        // Stream sockets split a message over reads instead of truncating it.
        let _ = net::sendmsg(&b, b"0123456789", 0);
        let first = net::recvmsg(&a, &mut buf[..4], 0);
        t.eq("net::recvmsg_stream_partial", first, Ok((4, false)));
        drop(b);
        t.err("net::sendmsg_epipe_nosignal", net::sendmsg(&a, b"x", MSG_NOSIGNAL), Errno::EPIPE);
    }
    for (name, ty) in [("net::recvmsg_trunc_seqpacket", SocketType::SeqPacket), ("net::recvmsg_trunc_dgram", SocketType::Datagram)] {
        let Some((a, b)) = t.need(name, net::socketpair_unix(ty)) else { continue };
        let _ = net::sendmsg(&a, b"0123456789", 0);
        let got = net::recvmsg(&b, &mut buf[..4], 0).map(|(n, tr)| (B(&buf[..n]), tr));
        t.eq(name, got, Ok((B(b"0123"), true)));
        // With MSG_TRUNC the real length comes back.
        let _ = net::sendmsg(&a, b"0123456789", 0);
        t.eq("net::recvmsg_msg_trunc_len", net::recvmsg(&b, &mut buf[..4], MSG_TRUNC), Ok((10, true)));
        // A message that fits is not truncated.
        let _ = net::sendmsg(&a, b"abc", 0);
        t.eq("net::recvmsg_fits", net::recvmsg(&b, &mut buf, 0), Ok((3, false)));
    }
    t.err("net::sendmsg_ebadf", net::sendmsg(BorrowedFd::raw_static(9999), b"x", 0), Errno::EBADF);
    if let Some(f) = t.need("net::open_file", fs::open(c"fs/src", fs::OFlags::RDONLY | fs::OFlags::CLOEXEC, 0)) {
        t.err("net::recvmsg_enotsock", net::recvmsg(&f, &mut buf, 0), Errno::ENOTSOCK);
        t.err("net::peer_cred_enotsock", net::peer_cred(&f), Errno::ENOTSOCK);
    }
}

/// getsockname through the raw call (no wrapper): the address bytes the kernel stored,
/// an independent view of how bind_unix encoded the name.
fn sockname(fd: impl AsFd, buf: &mut [u8; 110]) -> Result<&[u8], Errno> {
    let mut len: u32 = buf.len() as u32;
    // SAFETY: buf and len are writable; the kernel writes at most len bytes.
    let r = unsafe {
        syscall::arch::syscall3(linux_raw_sys::general::__NR_getsockname, fd.as_fd().raw() as usize,
                                buf.as_mut_ptr() as usize, &mut len as *mut u32 as usize)
    };
    syscall::errno::check(r)?;
    buf.get(..len as usize).ok_or(Errno::EINVAL)
}

fn me() -> Ucred {
    Ucred { pid: process::getpid().0, uid: process::getuid(), gid: process::getgid() }
}

fn path_socket(t: &mut T) {
    let Some(l) = t.ok("net::socket_unix_stream", net::socket_unix(SocketType::Stream, true)) else { return };
    t.eq("net::bind_unix_path", net::bind_unix(&l, c"sock"), Ok(()));
    t.eq("net::bind_creates_socket_node",
         fs::statx(BorrowedFd::CWD, c"sock", AtFlags::EMPTY, StatxMask::TYPE).map(|s| s.stx_mode as u32 & mode::IFMT),
         Ok(mode::IFSOCK));
    let mut sa = [0u8; 110];
    t.eq("net::bind_unix_path_sockname", sockname(&l, &mut sa).map(|a| B(&a[2..])), Ok(B(b"sock\0")));
    t.eq("net::listen", net::listen(&l, 4), Ok(()));
    // A non-blocking listener with nobody connecting.
    t.err("net::accept4_eagain", net::accept4(&l, false).map(|f| f.into_raw()), Errno::EAGAIN);
    if let Some(other) = t.need("net::socket2", net::socket_unix(SocketType::Stream, false)) {
        t.err("net::bind_eaddrinuse", net::bind_unix(&other, c"sock"), Errno::EADDRINUSE);
        t.err("net::connect_enoent", net::connect_unix(&other, c"no-such-sock"), Errno::ENOENT);
        t.err("net::connect_not_socket_econnrefused", net::connect_unix(&other, c"fs/src"), Errno::ECONNREFUSED);
        t.err("net::bind_enametoolong", net::bind_unix(&other, c"sock-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789-0123456789"),
              Errno::ENAMETOOLONG);
    }
    // The longest names that fit: a 107-byte path (plus its NUL) and a 108-byte abstract
    // name (no NUL); one byte more is ENAMETOOLONG.
    let p107 = cfmt!("{:p<107}", "sock-");
    let p108 = cfmt!("{:p<108}", "sock-");
    let a108 = cfmt!("{:a<108}", "@syscall-suite-long-");
    let a109 = cfmt!("{:a<109}", "@syscall-suite-long-");
    if let (Ok(s1), Ok(s2), Ok(s3), Ok(s4)) = (net::socket_unix(SocketType::Datagram, false), net::socket_unix(SocketType::Datagram, false),
                                               net::socket_unix(SocketType::Datagram, false), net::socket_unix(SocketType::Datagram, false)) {
        t.eq("net::bind_path_107", net::bind_unix(&s1, p107.as_cstr()), Ok(()));
        t.err("net::bind_path_108_enametoolong", net::bind_unix(&s2, p108.as_cstr()), Errno::ENAMETOOLONG);
        t.eq("net::bind_abstract_108", net::bind_unix(&s3, a108.as_cstr()), Ok(()));
        t.eq("net::bind_abstract_108_sockname", sockname(&s3, &mut sa).map(|a| a.len()), Ok(110));
        t.err("net::bind_abstract_109_enametoolong", net::bind_unix(&s4, a109.as_cstr()), Errno::ENAMETOOLONG);
    }
    let Some(c) = t.need("net::socket_client", net::socket_unix(SocketType::Stream, false)) else { return };
    t.eq("net::connect_unix_path", net::connect_unix(&c, c"sock"), Ok(()));
    let Some(s) = t.ok("net::accept4", net::accept4(&l, true)) else { return };
    t.check("net::accept4_flags", fd_flags(&s).is_some_and(|f| f & FDINFO_CLOEXEC != 0 && f & 0o4000 != 0),
            format_args!("accepted fd flags {:?} lack O_CLOEXEC|O_NONBLOCK", fd_flags(&s)));
    let _ = net::sendmsg(&c, b"over a path", 0);
    let mut buf = [0u8; 32];
    let got = net::recvmsg(&s, &mut buf, 0).map(|(n, _)| B(&buf[..n]));
    t.eq("net::path_roundtrip", got, Ok(B(b"over a path")));
    t.eq("net::peer_cred", net::peer_cred(&s), Ok(me()));
    t.eq("net::peer_cred_client_side", net::peer_cred(&c), Ok(me()));
    // A peer in another process: its pid, not ours.
    if let Ok(pid) = spawn(|| {
        let Ok(c) = net::socket_unix(SocketType::Stream, false) else { return 1 };
        if net::connect_unix(&c, c"sock").is_err() {
            return 2;
        }
        let mut b = [0u8; 1];
        let _ = net::recvmsg(&c, &mut b, 0); // wait until the parent has looked
        0
    }) {
        let mut fds = [syscall::io::PollFd::new(&l, syscall::io::POLLIN)];
        let _ = syscall::io::ppoll(&mut fds, Some(&syscall::time::Timespec::from_millis(5000)), None);
        let s2 = net::accept4(&l, false);
        let cred = s2.as_ref().map_err(|e| *e).and_then(net::peer_cred);
        t.eq("net::peer_cred_other_process", cred.map(|c| c.pid), Ok(pid.0));
        if let Ok(s2) = s2 {
            let _ = net::sendmsg(&s2, b"k", 0);
        }
        t.eq("net::peer_exit", wait(pid).map(|s| s.exit_code()), Ok(Some(0)));
    }
}

fn abstract_socket(t: &mut T) {
    let name = cfmt!("@syscall-suite-{}", process::getpid().0);
    let missing = cfmt!("@syscall-suite-missing-{}", process::getpid().0);
    let Some(l) = t.need("net::socket_abstract", net::socket_unix(SocketType::SeqPacket, false)) else { return };
    t.eq("net::bind_unix_abstract", net::bind_unix(&l, name.as_cstr()), Ok(()));
    // Linux's abstract namespace: a leading NUL, no trailing one.
    let mut sa = [0u8; 110];
    let want = cfmt!("_{}", core::str::from_utf8(&name.bytes()[1..]).unwrap_or(""));
    let got = sockname(&l, &mut sa).map(|a| (a.get(2).copied(), B(a.get(3..).unwrap_or(&[]))));
    t.eq("net::bind_unix_abstract_sockname", got, Ok((Some(0), B(&want.bytes()[1..]))));
    // No file appears for an abstract name.
    t.err("net::abstract_no_file", fs::statx(BorrowedFd::CWD, name.as_cstr(), AtFlags::EMPTY, StatxMask::TYPE).map(|_| ()),
          Errno::ENOENT);
    let _ = net::listen(&l, 1);
    if let Some(dup) = t.need("net::socket_abstract2", net::socket_unix(SocketType::SeqPacket, false)) {
        t.err("net::bind_abstract_eaddrinuse", net::bind_unix(&dup, name.as_cstr()), Errno::EADDRINUSE);
        t.err("net::connect_abstract_missing", net::connect_unix(&dup, missing.as_cstr()), Errno::ECONNREFUSED);
    }
    let Some(c) = t.need("net::socket_abstract_client", net::socket_unix(SocketType::SeqPacket, false)) else { return };
    t.eq("net::connect_unix_abstract", net::connect_unix(&c, name.as_cstr()), Ok(()));
    let Some(s) = t.ok("net::accept4_abstract", net::accept4(&l, false)) else { return };
    let _ = net::sendmsg(&s, b"abstract", 0);
    let mut buf = [0u8; 16];
    let got = net::recvmsg(&c, &mut buf, 0).map(|(n, tr)| (B(&buf[..n]), tr));
    t.eq("net::abstract_roundtrip", got, Ok((B(b"abstract"), false)));
    t.eq("net::peer_cred_abstract", net::peer_cred(&c), Ok(me()));
    // Datagram sockets on abstract names.
    let dname = cfmt!("@syscall-suite-dgram-{}", process::getpid().0);
    let rx = net::socket_unix(SocketType::Datagram, false);
    let tx = net::socket_unix(SocketType::Datagram, false);
    if let (Ok(rx), Ok(tx)) = (rx, tx) {
        let bound = net::bind_unix(&rx, dname.as_cstr());
        let conn = net::connect_unix(&tx, dname.as_cstr());
        let sent = net::sendmsg(&tx, b"datagram", 0);
        let got = net::recvmsg(&rx, &mut buf, 0).map(|(n, tr)| (B(&buf[..n]), tr));
        t.eq("net::datagram_abstract", (bound, conn, sent, got), (Ok(()), Ok(()), Ok(8), Ok((B(b"datagram"), false))));
    } else {
        t.fail("net::datagram_abstract", format_args!("socket failed"));
    }
}

/// IFF_UP and IFF_LOOPBACK (`net_device_flags`, the same on every arch).
const IFF_UP: i16 = 0x1;
const IFF_LOOPBACK: i16 = 0x8;

/// The flags of interface `name` by SIOCGIFFLAGS on an AF_INET socket, with a struct ifreq
/// laid out here (the name, then `short ifr_flags` at offset 16; 40 bytes covers the 32 of
/// 32-bit arches and the 40 of 64-bit ones).
fn if_flags(sock: impl AsFd, name: &[u8]) -> Result<i16, Errno> {
    let mut req = [0u8; 40];
    req.get_mut(..name.len()).ok_or(Errno::ENAMETOOLONG)?.copy_from_slice(name);
    // SAFETY: SIOCGIFFLAGS reads and writes one struct ifreq, which fits in `req`.
    unsafe { syscall::io::ioctl_ptr(sock, linux_raw_sys::ioctl::SIOCGIFFLAGS, req.as_mut_ptr()) }?;
    Ok(i16::from_ne_bytes([req[16], req[17]]))
}

/// In a new network namespace (a new mount namespace too, for a sysfs of that network
/// namespace), `lo` starts down; interface_up brings it up.
fn interface_up(t: &mut T) {
    let Some(()) = t.need("net::unshare_newnet", util::enter_ns(NsFlags::NEWNET | NsFlags::NEWNS)) else { return };
    // SAFETY: socket() takes no pointers.
    let sock = unsafe {
        syscall::arch::syscall3(linux_raw_sys::general::__NR_socket, linux_raw_sys::net::AF_INET as usize,
                                (linux_raw_sys::net::SOCK_DGRAM | linux_raw_sys::general::O_CLOEXEC) as usize, 0)
    };
    let Some(sock) = t.need("net::socket_inet", syscall::errno::check(sock).map(|fd| OwnedFd::adopt(fd as i32))) else { return };
    t.eq("net::lo_starts_down", if_flags(&sock, b"lo").map(|f| f & (IFF_UP | IFF_LOOPBACK)), Ok(IFF_LOOPBACK));
    t.eq("net::interface_up", net::interface_up(c"lo"), Ok(()));
    t.eq("net::interface_up_flags", if_flags(&sock, b"lo").map(|f| f & (IFF_UP | IFF_LOOPBACK)), Ok(IFF_UP | IFF_LOOPBACK));
    // An interface that is up already stays up.
    t.eq("net::interface_up_again", net::interface_up(c"lo"), Ok(()));
    // The same seen through a sysfs of this network namespace (dev->flags, in hex).
    let sysfs = mount::mount(None, c"/", None, MountFlags::REC | MountFlags::PRIVATE, None)
        .and_then(|_| fs::mkdirat(BorrowedFd::CWD, c"netsys", 0o755))
        .and_then(|_| mount::mount(Some(c"sysfs"), c"netsys", Some(c"sysfs"), MountFlags::EMPTY, None));
    match sysfs {
        Ok(()) => {
            let mut buf = [0u8; 16];
            t.eq("net::interface_up_sysfs_flags", read_file(BorrowedFd::CWD, c"netsys/class/net/lo/flags", &mut buf).map(B),
                 Ok(B(b"0x9\n")));
        }
        Err(e) => t.fail("net::interface_up_sysfs_flags", format_args!("mounting a sysfs failed with {:?}", En(e))),
    }
    t.err("net::interface_up_enodev", net::interface_up(c"nosuchif0"), Errno::ENODEV);
    // IFNAMSIZ is 16 with the NUL: 15 bytes is the longest name (here of no interface).
    t.err("net::interface_up_15_bytes_enodev", net::interface_up(c"nosuchif0123456"), Errno::ENODEV);
    t.err("net::interface_up_16_bytes_enametoolong", net::interface_up(c"nosuchif01234567"), Errno::ENAMETOOLONG);
}

/// The next fd number open() hands out (the lowest free one), to see that no fd leaked.
fn next_fd() -> i32 {
    fs::open(c"/dev/null", fs::OFlags::RDONLY | fs::OFlags::CLOEXEC, 0).map(|f| f.raw()).unwrap_or(-1)
}

fn passcred(t: &mut T) {
    let mut buf = [0u8; 64];
    let Some(rx) = t.need("net::passcred_socket", net::socket_unix(SocketType::Datagram, false)) else { return };
    let Some(tx) = t.need("net::passcred_sender", net::socket_unix(SocketType::Datagram, false)) else { return };
    let Some(()) = t.need("net::passcred_bind", net::bind_unix(&rx, c"notify")) else { return };
    // Without SO_PASSCRED a datagram comes without credentials.
    t.eq("net::sendto_unix_path", net::sendto_unix(&tx, b"READY=1", c"notify"), Ok(7));
    let got = net::recvmsg_cred(&rx, &mut buf).map(|(n, c)| (B(&buf[..n]), c));
    t.eq("net::recvmsg_cred_no_passcred", got, Ok((B(b"READY=1"), None)));
    t.eq("net::set_passcred", net::set_passcred(&rx, true), Ok(()));
    t.eq("net::passcred_getsockopt", getsockopt_int(&rx, linux_raw_sys::net::SO_PASSCRED), Ok(1));
    let _ = net::sendto_unix(&tx, b"STATUS=up", c"notify");
    let got = net::recvmsg_cred(&rx, &mut buf).map(|(n, c)| (B(&buf[..n]), c));
    t.eq("net::recvmsg_cred", got, Ok((B(b"STATUS=up"), Some(me()))));
    t.err("net::recvmsg_cred_empty_eagain", net::recvmsg_cred(&rx, &mut buf), Errno::EAGAIN);
    // A datagram longer than the buffer is consumed and reported, not cut short.
    let _ = net::sendto_unix(&tx, b"0123456789", c"notify");
    t.err("net::recvmsg_cred_truncated_emsgsize", net::recvmsg_cred(&rx, &mut buf[..4]), Errno::EMSGSIZE);
    t.err("net::recvmsg_cred_truncated_consumed", net::recvmsg_cred(&rx, &mut buf), Errno::EAGAIN);
    // An empty datagram is a message too.
    let _ = net::sendto_unix(&tx, b"", c"notify");
    t.eq("net::recvmsg_cred_empty_datagram", net::recvmsg_cred(&rx, &mut buf), Ok((0, Some(me()))));
    t.eq("net::set_passcred_off", net::set_passcred(&rx, false).and_then(|_| getsockopt_int(&rx, linux_raw_sys::net::SO_PASSCRED)), Ok(0));

    t.err("net::sendto_unix_enoent", net::sendto_unix(&tx, b"x", c"no-such-socket"), Errno::ENOENT);
    t.err("net::sendto_unix_not_socket", net::sendto_unix(&tx, b"x", c"fs/src"), Errno::ECONNREFUSED);
    t.err("net::sendto_unix_enametoolong", net::sendto_unix(&tx, b"x", cfmt!("{:p<108}", "n-").as_cstr()), Errno::ENAMETOOLONG);
    if let Ok(f) = fs::open(c"/dev/null", fs::OFlags::RDONLY | fs::OFlags::CLOEXEC, 0) {
        t.err("net::set_passcred_enotsock", net::set_passcred(&f, true), Errno::ENOTSOCK);
    }
    t.err("net::recvmsg_cred_ebadf", net::recvmsg_cred(BorrowedFd::raw_static(9999), &mut buf), Errno::EBADF);

    // An abstract name, as NOTIFY_SOCKET=@name.
    let name = cfmt!("@syscall-suite-notify-{}", process::getpid().0);
    let Some(arx) = t.need("net::passcred_abstract_socket", net::socket_unix(SocketType::Datagram, false)) else { return };
    let bound = net::bind_unix(&arx, name.as_cstr()).and_then(|_| net::set_passcred(&arx, true));
    t.eq("net::passcred_abstract_setup", bound, Ok(()));
    t.eq("net::sendto_unix_abstract", net::sendto_unix(&tx, b"READY=1\nSTATUS=x", name.as_cstr()), Ok(16));
    let got = net::recvmsg_cred(&arx, &mut buf).map(|(n, c)| (B(&buf[..n]), c));
    t.eq("net::recvmsg_cred_abstract", got, Ok((B(b"READY=1\nSTATUS=x"), Some(me()))));
    let missing = cfmt!("@syscall-suite-notify-missing-{}", process::getpid().0);
    t.err("net::sendto_unix_abstract_missing", net::sendto_unix(&tx, b"x", missing.as_cstr()), Errno::ECONNREFUSED);

    // A datagram socketpair: the receiving end asks for credentials.
    if let Some((a, b)) = t.need("net::passcred_pair", net::socketpair_unix(SocketType::Datagram)) {
        let _ = net::set_passcred(&b, true);
        let _ = net::sendmsg(&a, b"pair", 0);
        let got = net::recvmsg_cred(&b, &mut buf).map(|(n, c)| (B(&buf[..n]), c));
        t.eq("net::recvmsg_cred_socketpair", got, Ok((B(b"pair"), Some(me()))));
    }
}

/// The credentials are the sender's: a child's pid, and its ids after it changed them.
fn passcred_other_process(t: &mut T) {
    let Some(rx) = t.need("net::passcred_child_socket", net::socket_unix(SocketType::Datagram, false)) else { return };
    let bound = net::bind_unix(&rx, c"notify-child").and_then(|_| net::set_passcred(&rx, true));
    let Some(()) = t.need("net::passcred_child_setup", bound) else { return };
    let root = util::is_root();
    let child = spawn(|| {
        if root && (process::setresgid(1234, 1234, 1234).is_err() || process::setresuid(4321, 4321, 4321).is_err()) {
            return 1;
        }
        let Ok(tx) = net::socket_unix(SocketType::Datagram, false) else { return 2 };
        if net::sendto_unix(&tx, b"MAINPID=1", c"notify-child") != Ok(9) { 3 } else { 0 }
    });
    let Ok(pid) = child else { return };
    let status = wait(pid).map(|s| s.exit_code());
    t.eq("net::passcred_child_exit", status, Ok(Some(0)));
    let mut buf = [0u8; 16];
    let want = if root { Ucred { pid: pid.0, uid: 4321, gid: 1234 } } else { Ucred { pid: pid.0, ..me() } };
    let got = net::recvmsg_cred(&rx, &mut buf).map(|(n, c)| (B(&buf[..n]), c));
    t.eq("net::recvmsg_cred_child", got, Ok((B(b"MAINPID=1"), Some(want))));
}

/// sendmsg with one SCM_RIGHTS control message carrying `fds` (no wrapper sends fds).
fn send_fds(fd: impl AsFd, data: &[u8], fds: &[i32]) -> Result<usize, Errno> {
    const W: usize = core::mem::size_of::<usize>();
    // cmsghdr (len: size_t, level: int, type: int), then the ints, padded to a long.
    let hdr = (W + 8 + W - 1) & !(W - 1);
    let len = hdr + fds.len() * 4;
    let mut control = [0usize; 32];
    let bytes = control.len() * W;
    if len > bytes {
        return Err(Errno::EINVAL);
    }
    // SAFETY: `control` is bytes long and we write inside it.
    let c = unsafe { core::slice::from_raw_parts_mut(control.as_mut_ptr() as *mut u8, bytes) };
    c[..W].copy_from_slice(&len.to_ne_bytes());
    c[W..W + 4].copy_from_slice(&(linux_raw_sys::net::SOL_SOCKET as i32).to_ne_bytes());
    c[W + 4..W + 8].copy_from_slice(&(linux_raw_sys::net::SCM_RIGHTS as i32).to_ne_bytes());
    for (i, fd) in fds.iter().enumerate() {
        c[hdr + i * 4..hdr + i * 4 + 4].copy_from_slice(&fd.to_ne_bytes());
    }
    let iov = [data.as_ptr() as usize, data.len()];
    // struct msghdr: name, namelen (padded to a pointer), iov, iovlen, control, controllen, flags.
    let msg: [usize; 7] = [0, 0, iov.as_ptr() as usize, 1, control.as_ptr() as usize, (len + W - 1) & !(W - 1), 0];
    // SAFETY: msg points to live iov and control buffers of the lengths given.
    syscall::errno::check(unsafe {
        syscall::arch::syscall3(linux_raw_sys::general::__NR_sendmsg, fd.as_fd().raw() as usize, msg.as_ptr() as usize, 0)
    })
}

/// Fds that a sender attaches are closed by recvmsg_cred: the lowest free fd number is the
/// same before and after, also when more arrive than it has room for.
fn rights_are_closed(t: &mut T) {
    let Some((a, b)) = t.need("net::rights_pair", net::socketpair_unix(SocketType::Datagram)) else { return };
    let _ = net::set_passcred(&b, true);
    let mut buf = [0u8; 16];
    for (name, count) in [("net::recvmsg_cred_closes_rights", 2usize), ("net::recvmsg_cred_closes_many_rights", 20)] {
        let fds = [0i32, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1];
        let before = next_fd();
        let sent = send_fds(&a, b"fds", &fds[..count]);
        let got = net::recvmsg_cred(&b, &mut buf).map(|(n, c)| (B(&buf[..n]), c));
        let after = next_fd();
        t.eq(name, (sent, got, after), (Ok(3), Ok((B(b"fds"), Some(me()))), before));
    }
    // The same without SO_PASSCRED (no credentials message before the fds).
    let _ = net::set_passcred(&b, false);
    let before = next_fd();
    let sent = send_fds(&a, b"fds", &[0, 1]);
    let got = net::recvmsg_cred(&b, &mut buf);
    t.eq("net::recvmsg_cred_closes_rights_no_passcred", (sent, got, next_fd()), (Ok(3), Ok((3, None)), before));
}

fn getsockopt_int(fd: impl AsFd, name: u32) -> Result<i32, Errno> {
    let mut v: i32 = -1;
    let mut len: u32 = 4;
    // SAFETY: v and len are writable for the lengths given.
    syscall::errno::check(unsafe {
        syscall::arch::syscall5(linux_raw_sys::general::__NR_getsockopt, fd.as_fd().raw() as usize,
                                linux_raw_sys::net::SOL_SOCKET as usize, name as usize, &mut v as *mut i32 as usize,
                                &mut len as *mut u32 as usize)
    })?;
    Ok(v)
}

/// getsockopt(SO_{SND,RCV}TIMEO_OLD) as (seconds, microseconds): a struct of two C longs.
fn getsockopt_timeval(fd: impl AsFd, name: u32) -> Result<(isize, isize), Errno> {
    let mut v: [isize; 2] = [-1, -1];
    let mut len: u32 = core::mem::size_of_val(&v) as u32;
    // SAFETY: v and len are writable for the lengths given.
    syscall::errno::check(unsafe {
        syscall::arch::syscall5(linux_raw_sys::general::__NR_getsockopt, fd.as_fd().raw() as usize,
                                linux_raw_sys::net::SOL_SOCKET as usize, name as usize, v.as_mut_ptr() as usize,
                                &mut len as *mut u32 as usize)
    })?;
    Ok((v[0], v[1]))
}

fn timeouts(t: &mut T) {
    use linux_raw_sys::net::{SO_RCVTIMEO_OLD, SO_SNDTIMEO_OLD};
    use syscall::time::{clock_gettime, Clock};
    let Some((a, b)) = t.need("net::timeout_pair", net::socketpair_unix(SocketType::Stream)) else { return };
    t.eq("net::set_recv_timeout", net::set_recv_timeout(&b, 1500), Ok(()));
    t.eq("net::recv_timeout_read_back", getsockopt_timeval(&b, SO_RCVTIMEO_OLD), Ok((1, 500_000)));
    // 200 ms: a whole number of jiffies at HZ 100, 250, 300 and 1000, so it reads back exactly.
    let _ = net::set_recv_timeout(&b, 200);
    let start = clock_gettime(Clock::Monotonic);
    let mut buf = [0u8; 8];
    let r = net::recvmsg(&b, &mut buf, 0);
    let took = clock_gettime(Clock::Monotonic).millis_since(start);
    t.err("net::recv_timeout_eagain", r, Errno::EAGAIN);
    t.check("net::recv_timeout_waited", (180..5000).contains(&took), format_args!("gave up after {took} ms, expected about 200"));
    t.eq("net::recv_timeout_zero_is_none", net::set_recv_timeout(&b, 0).and_then(|_| getsockopt_timeval(&b, SO_RCVTIMEO_OLD)),
         Ok((0, 0)));

    t.eq("net::set_send_timeout", net::set_send_timeout(&a, 300), Ok(()));
    t.eq("net::send_timeout_read_back", getsockopt_timeval(&a, SO_SNDTIMEO_OLD), Ok((0, 300_000)));
    // Fill the pair until a send blocks; that send gives up after the timeout.
    let chunk = [0u8; 4096];
    let mut last = Ok(0);
    let mut took = 0;
    for _ in 0..4096 {
        let start = clock_gettime(Clock::Monotonic);
        last = net::sendmsg(&a, &chunk, MSG_NOSIGNAL);
        took = clock_gettime(Clock::Monotonic).millis_since(start);
        if last.is_err() {
            break;
        }
    }
    t.err("net::send_timeout_eagain", last, Errno::EAGAIN);
    t.check("net::send_timeout_waited", (280..5000).contains(&took), format_args!("gave up after {took} ms, expected about 300"));
    t.err("net::set_send_timeout_ebadf", net::set_send_timeout(BorrowedFd::raw_static(9999), 1), Errno::EBADF);
}

fn shutdown(t: &mut T) {
    let Some((a, b)) = t.need("net::shutdown_pair", net::socketpair_unix(SocketType::Stream)) else { return };
    let _ = net::sendmsg(&a, b"last", 0);
    t.eq("net::shutdown_write", net::shutdown_write(&a), Ok(()));
    let mut buf = [0u8; 8];
    let got = net::recvmsg(&b, &mut buf, 0).map(|(n, _)| B(&buf[..n]));
    t.eq("net::shutdown_data_before_eof", got, Ok(B(b"last")));
    t.eq("net::shutdown_eof", net::recvmsg(&b, &mut buf, 0), Ok((0, false)));
    t.err("net::shutdown_send_epipe", net::sendmsg(&a, b"x", MSG_NOSIGNAL), Errno::EPIPE);
    // The other direction still works.
    let _ = net::sendmsg(&b, b"back", 0);
    t.eq("net::shutdown_other_direction", net::recvmsg(&a, &mut buf, 0).map(|(n, _)| n), Ok(4));
    if let Ok(f) = fs::open(c"/dev/null", fs::OFlags::RDONLY | fs::OFlags::CLOEXEC, 0) {
        t.err("net::shutdown_enotsock", net::shutdown_write(&f), Errno::ENOTSOCK);
    }
}
