//! The one error type: `Errno`, decoded from the kernel's `-4095..-1` return range.

use linux_raw_sys::errno as e;

/// A Linux error number (`ENOENT`, ...). The same numbers on all five supported arches.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Errno(pub u16);

pub type Result<T> = core::result::Result<T, Errno>;

macro_rules! errnos {
    ($($name:ident),* $(,)?) => {
        impl Errno {
            $(pub const $name: Errno = Errno(e::$name as u16);)*

            /// The symbolic name (`"ENOENT"`), or `None` for a number not in the table.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $(Errno::$name => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

errnos!(
    EPERM, ENOENT, ESRCH, EINTR, EIO, ENXIO, E2BIG, ENOEXEC, EBADF, ECHILD, EAGAIN, ENOMEM,
    EACCES, EFAULT, ENOTBLK, EBUSY, EEXIST, EXDEV, ENODEV, ENOTDIR, EISDIR, EINVAL, ENFILE,
    EMFILE, ENOTTY, ETXTBSY, EFBIG, ENOSPC, ESPIPE, EROFS, EMLINK, EPIPE, EDOM, ERANGE, EDEADLK,
    ENAMETOOLONG, ENOLCK, ENOSYS, ENOTEMPTY, ELOOP, ENOMSG, ENODATA, ETIME, EOVERFLOW, EBADMSG,
    EILSEQ, ENOTSOCK, EDESTADDRREQ, EMSGSIZE, EPROTOTYPE, EPROTONOSUPPORT, EOPNOTSUPP,
    EAFNOSUPPORT, EADDRINUSE, EADDRNOTAVAIL, ENETDOWN, ECONNRESET, ENOBUFS, EISCONN, ENOTCONN,
    ETIMEDOUT, ECONNREFUSED, EALREADY, EINPROGRESS, ESTALE, EUCLEAN, EDQUOT, ENOMEDIUM,
    ECANCELED, ENOKEY, EKEYREJECTED,
);

impl Errno {
    /// The raw number.
    pub const fn raw(self) -> u16 {
        self.0
    }
}

/// Decodes a raw syscall return: values in `-4095..=-1` are errors, the rest results.
#[inline]
pub fn check(ret: usize) -> Result<usize> {
    if ret > (-4096isize) as usize {
        Err(Errno(ret.wrapping_neg() as u16))
    } else {
        Ok(ret)
    }
}

/// As [`check`], for calls whose only result is success.
#[inline]
pub fn check_unit(ret: usize) -> Result<()> {
    check(ret).map(|_| ())
}

/// Retries `f` while it fails with `EINTR`.
#[inline]
pub fn retry<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
    loop {
        match f() {
            Err(Errno::EINTR) => continue,
            other => return other,
        }
    }
}
