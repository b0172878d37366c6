//! Unix sockets: socket, socketpair, bind, listen, accept4, connect, sendmsg, sendto, recvmsg
//! (with SCM_CREDENTIALS), shutdown, and the socket options SO_PEERCRED, SO_PASSCRED,
//! SO_SNDTIMEO and SO_RCVTIMEO.
//!
//! # Safety
//! Calls pass pointers to local sockaddr/msghdr/iovec values of the kernel's layout that
//! borrow live slices for the duration of the call.
#![allow(unsafe_code)]

use crate::arch::*;
use crate::errno::{check, check_unit, Errno, Result};
use crate::fd::{arg, AsFd, BorrowedFd, OwnedFd};
use crate::nr;
use core::ffi::CStr;
use linux_raw_sys::net as n;

/// Socket types.
#[derive(Copy, Clone, Debug)]
pub enum SocketType {
    Stream = n::SOCK_STREAM as isize,
    Datagram = n::SOCK_DGRAM as isize,
    SeqPacket = n::SOCK_SEQPACKET as isize,
}

const AF_UNIX: usize = n::AF_UNIX as usize;
const SOCK_CLOEXEC: usize = linux_raw_sys::general::O_CLOEXEC as usize;
const SOCK_NONBLOCK: usize = linux_raw_sys::general::O_NONBLOCK as usize;

/// `struct sockaddr_un`.
#[repr(C)]
struct SockaddrUn {
    family: u16,
    path: [u8; 108],
}

impl SockaddrUn {
    /// A filesystem path (ENAMETOOLONG past 107 bytes: the NUL must fit), or an abstract
    /// name when it starts with '@' (Linux: a leading NUL byte; no trailing NUL, so it may
    /// fill all 108 bytes).
    fn new(path: &CStr) -> Result<(SockaddrUn, usize)> {
        let bytes = path.to_bytes();
        let mut a = SockaddrUn { family: n::AF_UNIX as u16, path: [0; 108] };
        let abstract_ = bytes.first() == Some(&b'@');
        if bytes.len() + if abstract_ { 0 } else { 1 } > a.path.len() {
            return Err(Errno::ENAMETOOLONG);
        }
        for (d, s) in a.path.iter_mut().zip(bytes) {
            *d = *s;
        }
        if abstract_ {
            a.path[0] = 0;
        }
        // Abstract names have no trailing NUL; paths include it.
        let len = 2 + bytes.len() + if abstract_ { 0 } else { 1 };
        Ok((a, len))
    }
}

fn socket_type(ty: SocketType, nonblock: bool) -> usize {
    ty as usize | SOCK_CLOEXEC | if nonblock { SOCK_NONBLOCK } else { 0 }
}

/// socket(AF_UNIX, type | SOCK_CLOEXEC, 0).
pub fn socket_unix(ty: SocketType, nonblock: bool) -> Result<OwnedFd> {
    // SAFETY: no pointers.
    check(unsafe { syscall3(nr::__NR_socket, AF_UNIX, socket_type(ty, nonblock), 0) })
        .map(|fd| OwnedFd::from_raw(fd as i32))
}

/// socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0).
pub fn socketpair_unix(ty: SocketType) -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0i32; 2];
    // SAFETY: see module docs; `fds` holds two ints.
    check_unit(unsafe {
        syscall4(nr::__NR_socketpair, AF_UNIX, socket_type(ty, false), 0, fds.as_mut_ptr() as usize)
    })?;
    Ok((OwnedFd::from_raw(fds[0]), OwnedFd::from_raw(fds[1])))
}

/// bind(fd, sockaddr_un(path)).
pub fn bind_unix(fd: impl AsFd, path: &CStr) -> Result<()> {
    let (addr, len) = SockaddrUn::new(path)?;
    // SAFETY: see module docs.
    check_unit(unsafe { syscall3(nr::__NR_bind, arg(fd.as_fd()), &addr as *const SockaddrUn as usize, len) })
}

/// connect(fd, sockaddr_un(path)).
pub fn connect_unix(fd: impl AsFd, path: &CStr) -> Result<()> {
    let (addr, len) = SockaddrUn::new(path)?;
    // SAFETY: see module docs.
    check_unit(unsafe { syscall3(nr::__NR_connect, arg(fd.as_fd()), &addr as *const SockaddrUn as usize, len) })
}

/// listen(fd, backlog).
pub fn listen(fd: impl AsFd, backlog: u32) -> Result<()> {
    // SAFETY: no pointers.
    check_unit(unsafe { syscall2(nr::__NR_listen, arg(fd.as_fd()), backlog as usize) })
}

/// accept4(fd, NULL, NULL, SOCK_CLOEXEC [| SOCK_NONBLOCK]).
pub fn accept4(fd: impl AsFd, nonblock: bool) -> Result<OwnedFd> {
    let flags = SOCK_CLOEXEC | if nonblock { SOCK_NONBLOCK } else { 0 };
    // SAFETY: NULL address pointers are allowed.
    check(unsafe { syscall4(nr::__NR_accept4, arg(fd.as_fd()), 0, 0, flags) }).map(|fd| OwnedFd::from_raw(fd as i32))
}

#[repr(C)]
struct Iovec {
    base: usize,
    len: usize,
}

#[repr(C)]
struct Msghdr {
    name: usize,
    namelen: u32,
    iov: *const Iovec,
    iovlen: usize,
    control: usize,
    controllen: usize,
    flags: i32,
}

/// MSG_* flags of sendmsg/recvmsg.
pub const MSG_DONTWAIT: u32 = n::MSG_DONTWAIT;
pub const MSG_NOSIGNAL: u32 = n::MSG_NOSIGNAL;
pub const MSG_TRUNC: u32 = n::MSG_TRUNC;

/// sendmsg(fd, {iov: [buf]}, flags) — returns the bytes sent.
pub fn sendmsg(fd: impl AsFd, buf: &[u8], flags: u32) -> Result<usize> {
    let iov = Iovec { base: buf.as_ptr() as usize, len: buf.len() };
    let msg = Msghdr { name: 0, namelen: 0, iov: &iov, iovlen: 1, control: 0, controllen: 0, flags: 0 };
    // SAFETY: see module docs.
    check(unsafe { syscall3(nr::__NR_sendmsg, arg(fd.as_fd()), &msg as *const Msghdr as usize, flags as usize) })
}

/// recvmsg(fd, {iov: [buf]}, flags) — (bytes received, whether the message was truncated).
pub fn recvmsg(fd: impl AsFd, buf: &mut [u8], flags: u32) -> Result<(usize, bool)> {
    let iov = Iovec { base: buf.as_mut_ptr() as usize, len: buf.len() };
    let mut msg = Msghdr { name: 0, namelen: 0, iov: &iov, iovlen: 1, control: 0, controllen: 0, flags: 0 };
    // SAFETY: see module docs.
    let got = check(unsafe {
        syscall3(nr::__NR_recvmsg, arg(fd.as_fd()), &mut msg as *mut Msghdr as usize, flags as usize)
    })?;
    Ok((got, msg.flags as u32 & MSG_TRUNC != 0))
}

/// The peer of a unix socket (`struct ucred`).
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
#[repr(C)]
pub struct Ucred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

/// getsockopt(fd, SOL_SOCKET, SO_PEERCRED) — who is at the other end.
pub fn peer_cred(fd: impl AsFd) -> Result<Ucred> {
    let mut cred = Ucred::default();
    let mut len: u32 = core::mem::size_of::<Ucred>() as u32;
    // SAFETY: see module docs; `cred` and `len` are writable.
    check_unit(unsafe {
        syscall5(nr::__NR_getsockopt, arg(fd.as_fd()), n::SOL_SOCKET as usize, n::SO_PEERCRED as usize,
                 &mut cred as *mut Ucred as usize, &mut len as *mut u32 as usize)
    })?;
    Ok(cred)
}

/// sendto(fd, buf, MSG_NOSIGNAL, sockaddr_un(path)) — one datagram to `path` (or an
/// `@abstract` name, as [`bind_unix`]) without connecting first, as a daemon sends to
/// `$NOTIFY_SOCKET`. Returns the bytes sent.
pub fn sendto_unix(fd: impl AsFd, buf: &[u8], path: &CStr) -> Result<usize> {
    let (addr, len) = SockaddrUn::new(path)?;
    // SAFETY: see module docs.
    check(unsafe {
        syscall6(nr::__NR_sendto, arg(fd.as_fd()), buf.as_ptr() as usize, buf.len(), MSG_NOSIGNAL as usize,
                 &addr as *const SockaddrUn as usize, len)
    })
}

/// shutdown(fd, SHUT_WR) — no more sends; the peer reads end-of-file after what was sent.
pub fn shutdown_write(fd: impl AsFd) -> Result<()> {
    // SAFETY: no pointers.
    check_unit(unsafe { syscall2(nr::__NR_shutdown, arg(fd.as_fd()), n::SHUT_WR as usize) })
}

/// setsockopt(fd, SOL_SOCKET, name, &value, sizeof value).
fn set_sockopt<T>(fd: BorrowedFd<'_>, name: u32, value: &T) -> Result<()> {
    // SAFETY: see module docs; the kernel reads size_of::<T>() bytes of `value`.
    check_unit(unsafe {
        syscall5(nr::__NR_setsockopt, arg(fd), n::SOL_SOCKET as usize, name as usize, value as *const T as usize,
                 core::mem::size_of::<T>())
    })
}

/// setsockopt(fd, SOL_SOCKET, SO_PASSCRED, on) — every message received on `fd` carries its
/// sender's pid, uid and gid (read them with [`recvmsg_cred`]).
pub fn set_passcred(fd: impl AsFd, on: bool) -> Result<()> {
    set_sockopt(fd.as_fd(), n::SO_PASSCRED, &(on as i32))
}

/// The `struct timeval` of the original SO_SNDTIMEO/SO_RCVTIMEO: two C `long`s, so 8 bytes
/// on 32-bit arches and 16 on 64-bit ones. A relative timeout does not suffer from 2038;
/// the `_NEW` options (64-bit fields everywhere) would need Linux 5.1.
#[repr(C)]
struct Timeval {
    sec: isize,
    usec: isize,
}

impl Timeval {
    /// `ms` as a timeval; 0 means "no timeout" to the kernel.
    fn from_millis(ms: u64) -> Timeval {
        let sec = (ms / 1000).min(isize::MAX as u64) as isize;
        Timeval { sec, usec: ((ms % 1000) * 1000) as isize }
    }
}

/// setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, ms) — a blocking send gives up with `EAGAIN`
/// after `ms` milliseconds; 0 blocks without limit.
pub fn set_send_timeout(fd: impl AsFd, ms: u64) -> Result<()> {
    set_sockopt(fd.as_fd(), n::SO_SNDTIMEO_OLD, &Timeval::from_millis(ms))
}

/// setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, ms) — a blocking receive gives up with `EAGAIN`
/// after `ms` milliseconds; 0 blocks without limit.
pub fn set_recv_timeout(fd: impl AsFd, ms: u64) -> Result<()> {
    set_sockopt(fd.as_fd(), n::SO_RCVTIMEO_OLD, &Timeval::from_millis(ms))
}

/// Fds that [`recvmsg_cred`] makes room for (and closes) when a sender attaches some; more
/// than that are discarded by the kernel.
pub const RECV_CRED_MAX_FDS: usize = 8;

/// `CMSG_ALIGN`: control messages are aligned to the size of a `long`.
const fn cmsg_align(len: usize) -> usize {
    (len + core::mem::size_of::<usize>() - 1) & !(core::mem::size_of::<usize>() - 1)
}

const CMSG_HDR: usize = cmsg_align(core::mem::size_of::<n::cmsghdr>());
const UCRED_LEN: usize = core::mem::size_of::<Ucred>();
/// `CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(RECV_CRED_MAX_FDS * sizeof(int))`.
const CRED_CONTROL_LEN: usize =
    CMSG_HDR + cmsg_align(UCRED_LEN) + CMSG_HDR + cmsg_align(RECV_CRED_MAX_FDS * core::mem::size_of::<i32>());

/// A control buffer aligned like the `cmsghdr`s the kernel writes into it.
#[repr(C)]
struct ControlBuf {
    _align: [usize; 0],
    bytes: [u8; CRED_CONTROL_LEN],
}

/// recvmsg(fd, {iov: [buf], control}, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) — one message and,
/// if the socket has [`set_passcred`] on, its sender's credentials (`None` when the
/// message carried none).
///
/// `EAGAIN` when nothing is queued. A message longer than `buf` is consumed and reported as
/// `EMSGSIZE` rather than handed over cut short. Any fds the sender attached (SCM_RIGHTS)
/// are closed here, so that a hostile sender cannot fill our fd table.
pub fn recvmsg_cred(fd: impl AsFd, buf: &mut [u8]) -> Result<(usize, Option<Ucred>)> {
    let mut control = ControlBuf { _align: [], bytes: [0; CRED_CONTROL_LEN] };
    let iov = Iovec { base: buf.as_mut_ptr() as usize, len: buf.len() };
    let mut msg = Msghdr {
        name: 0,
        namelen: 0,
        iov: &iov,
        iovlen: 1,
        control: control.bytes.as_mut_ptr() as usize,
        controllen: control.bytes.len(),
        flags: 0,
    };
    // SAFETY: see module docs; the kernel writes at most `controllen` bytes of control.
    let got = check(unsafe {
        syscall3(nr::__NR_recvmsg, arg(fd.as_fd()), &mut msg as *mut Msghdr as usize,
                 (MSG_DONTWAIT | n::MSG_CMSG_CLOEXEC) as usize)
    })?;
    // The kernel sets controllen to the bytes it wrote; never trust it past our buffer.
    let used = control.bytes.get(..msg.controllen).unwrap_or(&control.bytes);
    let cred = parse_control(used);
    if msg.flags as u32 & MSG_TRUNC != 0 {
        return Err(Errno::EMSGSIZE);
    }
    Ok((got, cred))
}

/// Walks the control messages in `control` (as `CMSG_FIRSTHDR`/`CMSG_NXTHDR` do, with every
/// length checked against the buffer): returns the SCM_CREDENTIALS payload and closes the
/// fds of every SCM_RIGHTS message.
fn parse_control(control: &[u8]) -> Option<Ucred> {
    const W: usize = core::mem::size_of::<usize>();
    let word = |b: &[u8], at: usize| -> Option<usize> {
        Some(usize::from_ne_bytes(b.get(at..at.checked_add(W)?)?.try_into().ok()?))
    };
    let int = |b: &[u8], at: usize| -> Option<i32> {
        Some(i32::from_ne_bytes(b.get(at..at.checked_add(4)?)?.try_into().ok()?))
    };
    let mut cred = None;
    let mut at = 0usize;
    // cmsghdr: cmsg_len (size_t), cmsg_level (int), cmsg_type (int), then the data.
    while let Some(len) = word(control, at) {
        let level = int(control, at + W);
        let ty = int(control, at + W + 4);
        let end = match at.checked_add(len) {
            Some(end) if len >= CMSG_HDR && end <= control.len() => end,
            _ => break,
        };
        let data = control.get(at + CMSG_HDR..end).unwrap_or(&[]);
        if level == Some(n::SOL_SOCKET as i32) {
            if ty == Some(n::SCM_CREDENTIALS as i32) && data.len() >= UCRED_LEN {
                let field = |i: usize| int(data, i * 4).unwrap_or(0);
                cred = Some(Ucred { pid: field(0), uid: field(1) as u32, gid: field(2) as u32 });
            } else if ty == Some(n::SCM_RIGHTS as i32) {
                for chunk in data.chunks_exact(4) {
                    if let Ok(fd) = <[u8; 4]>::try_from(chunk) {
                        let _ = crate::fs::close_raw(i32::from_ne_bytes(fd));
                    }
                }
            }
        }
        at = match at.checked_add(cmsg_align(len)) {
            Some(next) => next,
            None => break,
        };
    }
    cred
}

/// Sets IFF_UP on a network interface (`lo`) through SIOCGIFFLAGS/SIOCSIFFLAGS on an
/// AF_INET datagram socket.
pub fn interface_up(name: &CStr) -> Result<()> {
    // SAFETY: no pointers.
    let sock = check(unsafe {
        syscall3(nr::__NR_socket, n::AF_INET as usize, n::SOCK_DGRAM as usize | SOCK_CLOEXEC, 0)
    })
    .map(|fd| OwnedFd::from_raw(fd as i32))?;
    // struct ifreq: the name, then a union whose first member here is `short ifr_flags`;
    // 40 bytes on 64-bit arches, 32 on 32-bit ones.
    #[repr(C)]
    struct IfReq {
        name: [u8; 16],
        flags: i16,
        _pad: [u8; 22],
    }
    let bytes = name.to_bytes();
    if bytes.len() >= 16 {
        return Err(Errno::ENAMETOOLONG);
    }
    let mut req = IfReq { name: [0; 16], flags: 0, _pad: [0; 22] };
    for (d, s) in req.name.iter_mut().zip(bytes) {
        *d = *s;
    }
    // SAFETY: `req` is an ifreq, which both ioctls read and SIOCGIFFLAGS writes.
    unsafe { crate::io::ioctl_ptr(&sock, linux_raw_sys::ioctl::SIOCGIFFLAGS, &mut req) }?;
    req.flags |= 1; // IFF_UP (an enum in linux-raw-sys; 1 on every arch)
    // SAFETY: as above.
    unsafe { crate::io::ioctl_ptr(&sock, linux_raw_sys::ioctl::SIOCSIFFLAGS, &mut req) }.map(|_| ())
}
