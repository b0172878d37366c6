//! Typed file descriptors: `OwnedFd` closes on drop, `BorrowedFd` borrows one.

use core::marker::PhantomData;

/// A file descriptor this program owns; dropping it closes it (errors ignored: the fd is
/// gone either way, see close(2)). Use [`crate::fs::close`] to see the error.
#[derive(Debug)]
pub struct OwnedFd {
    fd: i32,
}

/// A file descriptor borrowed for `'a`.
#[derive(Copy, Clone, Debug)]
pub struct BorrowedFd<'a> {
    fd: i32,
    _owner: PhantomData<&'a OwnedFd>,
}

pub trait AsFd {
    fn as_fd(&self) -> BorrowedFd<'_>;
}

impl OwnedFd {
    /// Takes ownership of a raw fd the kernel just returned.
    ///
    /// The fd must be open and owned by nobody else, or a later close closes someone
    /// else's file. (Not memory-unsafe, so not `unsafe`; kept crate-private.)
    pub(crate) const fn from_raw(fd: i32) -> OwnedFd {
        OwnedFd { fd }
    }

    /// Takes ownership of an fd inherited at exec (0, 1, 2) or passed by number.
    pub fn adopt(fd: i32) -> OwnedFd {
        OwnedFd { fd }
    }

    /// The raw number, still owned.
    pub const fn raw(&self) -> i32 {
        self.fd
    }

    /// Gives up ownership without closing.
    pub fn into_raw(self) -> i32 {
        let fd = self.fd;
        core::mem::forget(self);
        fd
    }
}

impl Drop for OwnedFd {
    fn drop(&mut self) {
        let _ = crate::fs::close_raw(self.fd);
    }
}

impl AsFd for OwnedFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        BorrowedFd { fd: self.fd, _owner: PhantomData }
    }
}

impl<T: AsFd + ?Sized> AsFd for &T {
    fn as_fd(&self) -> BorrowedFd<'_> {
        (**self).as_fd()
    }
}

impl AsFd for BorrowedFd<'_> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        *self
    }
}

impl BorrowedFd<'static> {
    pub const STDIN: BorrowedFd<'static> = BorrowedFd::raw_static(0);
    pub const STDOUT: BorrowedFd<'static> = BorrowedFd::raw_static(1);
    pub const STDERR: BorrowedFd<'static> = BorrowedFd::raw_static(2);
    /// `AT_FDCWD`: relative paths resolve against the working directory.
    pub const CWD: BorrowedFd<'static> = BorrowedFd::raw_static(linux_raw_sys::general::AT_FDCWD);

    /// A process-wide fd by number, such as one inherited from the parent.
    pub const fn raw_static(fd: i32) -> BorrowedFd<'static> {
        BorrowedFd { fd, _owner: PhantomData }
    }
}

impl BorrowedFd<'_> {
    pub const fn raw(self) -> i32 {
        self.fd
    }
}

/// The register value for an fd argument (sign-extended, so AT_FDCWD stays -100).
#[inline]
pub(crate) fn arg(fd: BorrowedFd<'_>) -> usize {
    fd.fd as isize as usize
}
