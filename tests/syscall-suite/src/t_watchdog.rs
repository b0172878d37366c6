//! Watchdog ioctls without a watchdog: the request numbers against the documented `_IOC`
//! formula and the kernel headers, the calls on a file that is no watchdog (ENOTTY), and the
//! magic close's write and close on an ordinary file.

use crate::harness::{B, T};
use crate::util::read_file;
use syscall::fs::{self, OFlags};
use syscall::watchdog::{self, WDIOC_GETTIMEOUT, WDIOC_KEEPALIVE, WDIOC_SETTIMEOUT};
use syscall::{BorrowedFd, Errno};

/// `under_qemu`: qemu-user answers ENOTTY for ioctls it does not know before it looks at
/// the fd, so a bad fd cannot be told apart there.
pub fn run(t: &mut T, under_qemu: bool) {
    numbers(t);
    not_a_watchdog(t, under_qemu);
    magic_close(t);
}

fn numbers(t: &mut T) {
    // _IOC(dir, 'W', nr, sizeof(int)) = dir << 30 | 4 << 16 | 0x57 << 8 | nr, with
    // dir 2 (_IOC_READ) or 3 (_IOC_READ|_IOC_WRITE), written out by hand.
    t.eq("watchdog::wdioc_keepalive", WDIOC_KEEPALIVE, 0x8004_5705);
    t.eq("watchdog::wdioc_settimeout", WDIOC_SETTIMEOUT, 0xc004_5706);
    t.eq("watchdog::wdioc_gettimeout", WDIOC_GETTIMEOUT, 0x8004_5707);
    use linux_raw_sys::ioctl as k;
    t.eq("watchdog::wdioc_kernel_headers", (WDIOC_KEEPALIVE, WDIOC_SETTIMEOUT, WDIOC_GETTIMEOUT),
         (k::WDIOC_KEEPALIVE, k::WDIOC_SETTIMEOUT, k::WDIOC_GETTIMEOUT));
    // The formula itself, on requests with other directions and sizes.
    t.eq("watchdog::ioc_formula", (watchdog::ioc(2, b'W', 0, 40), watchdog::ioc(0, b'T', 0x0e, 0)),
         (k::WDIOC_GETSUPPORT, k::TIOCSCTTY));
}

fn not_a_watchdog(t: &mut T, under_qemu: bool) {
    let Some(null) = t.need("watchdog::open_dev_null", fs::open(c"/dev/null", OFlags::RDWR | OFlags::CLOEXEC, 0)) else { return };
    t.err("watchdog::set_timeout_enotty", watchdog::wdt_set_timeout(&null, 10), Errno::ENOTTY);
    t.err("watchdog::get_timeout_enotty", watchdog::wdt_get_timeout(&null), Errno::ENOTTY);
    t.err("watchdog::keepalive_enotty", watchdog::wdt_keepalive(&null), Errno::ENOTTY);
    let bad = watchdog::wdt_keepalive(BorrowedFd::raw_static(9999));
    if under_qemu && bad == Err(Errno::ENOTTY) {
        say!("# watchdog::keepalive_ebadf: qemu-user answers ENOTTY for an ioctl it does not know; checked natively");
    } else {
        t.err("watchdog::keepalive_ebadf", bad, Errno::EBADF);
    }
}

fn magic_close(t: &mut T) {
    let Some(f) = t.need("watchdog::open_file", fs::open(c"wdt-file", OFlags::WRONLY | OFlags::CREAT | OFlags::CLOEXEC, 0o600)) else { return };
    let n = f.raw();
    t.eq("watchdog::magic_close", watchdog::wdt_magic_close(f), Ok(()));
    let mut buf = [0u8; 8];
    t.eq("watchdog::magic_close_wrote_v", read_file(BorrowedFd::CWD, c"wdt-file", &mut buf).map(B), Ok(B(b"V")));
    t.err("watchdog::magic_close_closed", fs::write(BorrowedFd::raw_static(n), b"x"), Errno::EBADF);
    // A failed write still closes the fd.
    let Some(r) = t.need("watchdog::open_ro", fs::open(c"wdt-file", OFlags::RDONLY | OFlags::CLOEXEC, 0)) else { return };
    let n = r.raw();
    t.err("watchdog::magic_close_write_fails", watchdog::wdt_magic_close(r), Errno::EBADF);
    t.err("watchdog::magic_close_failed_still_closed", fs::read(BorrowedFd::raw_static(n), &mut buf), Errno::EBADF);
}
