//! Unix sockets: socketpair with sendmsg/recvmsg (and truncation), a listening socket on a
//! path in the scratch directory and on an abstract name, accept4, SO_PEERCRED; and
//! interface_up on the `lo` of a new network namespace.

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
