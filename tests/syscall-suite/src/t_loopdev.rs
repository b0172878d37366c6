//! Loop devices: get_free, attach_read_only, detach, on a scratch file with known contents.
//!
//! The device is attached with LO_FLAGS_AUTOCLEAR, so it also detaches itself when its last
//! fd closes (at the latest when this process exits, even after a panic); every path after a
//! successful attach still calls `detach` explicitly, and the last check confirms that
//! nothing is left attached.
//!
//! qemu-user passes the loop ioctls through: measured with qemu 10.0 (`-d unimp -strace`),
//! LOOP_CONFIGURE, LOOP_CTL_GET_FREE, LOOP_CLR_FD and LOOP_GET_STATUS64 reach the kernel for
//! all five arches, without an `Unsupported ioctl`, so the checks are the same there as in
//! the native runs. (A qemu without LOOP_CONFIGURE answers ENOTTY, and attach_read_only takes
//! its LOOP_SET_FD path, which must give the same read-only device.)

use crate::harness::{En, Res, B, T};
use crate::util::{self, read_file, write_file, CBuf};
use linux_raw_sys::loop_device as l;
use syscall::fs::{self, mode, OFlags, Seek};
use syscall::{io, loopdev, AsFd, BorrowedFd, Errno, OwnedFd};

const CWD: BorrowedFd<'static> = BorrowedFd::CWD;
/// The backing file's size: whole 512-byte sectors, so the device shows all of it.
const LEN: usize = 8192;

fn pattern(i: usize) -> u8 {
    (i * 13 % 251) as u8
}

pub fn run(t: &mut T) {
    // A pipe is not a loop device: every request is ENOTTY (attach tries LOOP_CONFIGURE,
    // then LOOP_SET_FD, and gives the second answer).
    if let Some((r, w)) = t.need("loopdev::pipe", io::pipe2(true, false)) {
        t.err("loopdev::get_free_not_control_enotty", loopdev::get_free(&r), Errno::ENOTTY);
        t.err("loopdev::attach_not_loop_enotty", loopdev::attach_read_only(&r, &w), Errno::ENOTTY);
        t.err("loopdev::detach_not_loop_enotty", loopdev::detach(&r), Errno::ENOTTY);
    }
    if !util::is_root() {
        // /dev/loop-control is root's alone (mode 0600).
        let r = fs::open(c"/dev/loop-control", OFlags::RDWR | OFlags::CLOEXEC, 0).map(|_| ());
        t.err("loopdev::control_unprivileged_eacces", r, Errno::EACCES);
        return;
    }
    let Some(ctl) = control(t) else { return };
    let mut data = [0u8; LEN];
    for (i, b) in data.iter_mut().enumerate() {
        *b = pattern(i);
    }
    if t.need("loopdev::backing_write", write_file(CWD, c"loop-backing", &data)).is_none() {
        return;
    }
    // Opened read-write on purpose: the device must be read-only because attach_read_only
    // asks for it, not because the backing fd could not write.
    let Some(backing) = t.need("loopdev::backing_open", fs::open(c"loop-backing", OFlags::RDWR | OFlags::CLOEXEC, 0)) else {
        return;
    };
    let Some((n, path, dev)) = attach(t, &ctl, &backing) else { return };
    attached(t, n, &dev, &backing, &data);

    // Detach, on every path that attached.
    t.eq("loopdev::detach", loopdev::detach(&dev), Ok(()));
    t.err("loopdev::detach_twice_enxio", loopdev::detach(&dev), Errno::ENXIO);
    drop(dev);
    // After the last close nothing is attached: the device is unbound again.
    let st = fs::open(path.as_cstr(), OFlags::RDONLY | OFlags::CLOEXEC, 0).and_then(|d| status(&d));
    t.err("loopdev::detached_after_close", st.map(|s| s.lo_flags), Errno::ENXIO);
    let mut back = [0u8; LEN];
    let same = read_file(CWD, c"loop-backing", &mut back).map(|b| b == &data[..]);
    t.eq("loopdev::backing_unchanged", same, Ok(true));
}

/// The loop-control device: /dev/loop-control, or a node of it (char 10:237) made here.
fn control(t: &mut T) -> Option<OwnedFd> {
    let flags = OFlags::RDWR | OFlags::CLOEXEC;
    match fs::open(c"/dev/loop-control", flags, 0) {
        Ok(fd) => Some(fd),
        Err(Errno::ENOENT) => {
            say!("# loopdev: no /dev/loop-control; using a node made in the scratch directory (char 10:237)");
            let r = fs::mknodat(CWD, c"loop-control", mode::IFCHR | 0o600, fs::makedev(10, 237))
                .and_then(|_| fs::open(c"loop-control", flags, 0));
            match r {
                Ok(fd) => Some(fd),
                Err(e) => {
                    t.fail("loopdev::control", format_args!(
                        "no /dev/loop-control, and a node char 10:237 made in the scratch directory gave {:?} \
                         (mknod refused, device nodes not allowed on this filesystem, or no loop driver in the kernel): \
                         the loop device checks cannot run", En(e)));
                    None
                }
            }
        }
        Err(e) => {
            t.fail("loopdev::control", format_args!("open /dev/loop-control failed with {:?}", En(e)));
            None
        }
    }
}

/// /dev/loopN, or a node made here from its numbers (block 7, the minor that sysfs gives,
/// else N) when /dev has no such node; with the path that was opened.
fn open_loop(n: u32) -> Result<(CBuf, OwnedFd), Errno> {
    let flags = OFlags::RDWR | OFlags::CLOEXEC;
    let name = cfmt!("/dev/loop{n}");
    match fs::open(name.as_cstr(), flags, 0) {
        Err(Errno::ENOENT) => {}
        other => return other.map(|fd| (name, fd)),
    }
    let sys = cfmt!("/sys/class/block/loop{n}/dev");
    let mut buf = [0u8; 32];
    let minor = read_file(CWD, sys.as_cstr(), &mut buf).ok()
        .and_then(|s| s.split(|&b| b == b':').nth(1).map(|m| m.trim_ascii_end()))
        .and_then(|m| util::parse_radix(m, 10))
        .map_or(n, |m| m as u32);
    say!("# loopdev: no {:?}; using a node made in the scratch directory (block 7:{minor})", B(name.bytes()));
    let here = cfmt!("loop{n}");
    let _ = fs::unlinkat(CWD, here.as_cstr(), fs::AtFlags::EMPTY);
    fs::mknodat(CWD, here.as_cstr(), mode::IFBLK | 0o600, fs::makedev(7, minor))?;
    fs::open(here.as_cstr(), flags, 0).map(|fd| (here, fd))
}

/// A free device with `backing` attached. Another process may take the free device between
/// get_free and the attach (EBUSY): a few tries, each with a fresh get_free.
fn attach(t: &mut T, ctl: &OwnedFd, backing: &OwnedFd) -> Option<(u32, CBuf, OwnedFd)> {
    let mut last = Errno::EBUSY;
    for try_ in 0..4 {
        let n = if try_ == 0 {
            t.ok("loopdev::get_free", loopdev::get_free(ctl))?
        } else {
            t.need("loopdev::get_free_retry", loopdev::get_free(ctl))?
        };
        let (path, dev) = match open_loop(n) {
            Ok(d) => d,
            Err(e) => {
                t.fail("loopdev::open_device", format_args!("opening loop device {n} failed with {:?}", En(e)));
                return None;
            }
        };
        if try_ == 0 {
            // A free device has nothing attached.
            t.err("loopdev::get_free_unbound", status(&dev).map(|s| s.lo_flags), Errno::ENXIO);
            // Not a regular file or block device: EINVAL (from LOOP_CONFIGURE, and again
            // from LOOP_SET_FD, which attach then tries), and the device stays free.
            if let Some(dir) = t.need("loopdev::open_dir", fs::open(c".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, 0)) {
                t.err("loopdev::attach_directory_einval", loopdev::attach_read_only(&dev, &dir), Errno::EINVAL);
                t.err("loopdev::attach_directory_still_free", status(&dev).map(|s| s.lo_flags), Errno::ENXIO);
            }
        }
        match loopdev::attach_read_only(&dev, backing) {
            Ok(()) => {
                t.pass("loopdev::attach_read_only");
                return Some((n, path, dev));
            }
            Err(Errno::EBUSY) => last = Errno::EBUSY,
            Err(e) => {
                t.fail("loopdev::attach_read_only", format_args!("expected success, got {:?}", En(e)));
                return None;
            }
        }
    }
    t.fail("loopdev::attach_read_only", format_args!("no free loop device after 4 tries: {:?}", En(last)));
    None
}

/// LOOP_GET_STATUS64.
fn status(dev: impl AsFd) -> Result<l::loop_info64, Errno> {
    // SAFETY: an all-zero loop_info64 is valid (integers and byte arrays).
    let mut info: l::loop_info64 = unsafe { core::mem::zeroed() };
    // SAFETY: LOOP_GET_STATUS64 writes one loop_info64.
    unsafe { io::ioctl_ptr(dev, l::LOOP_GET_STATUS64, &mut info) }?;
    Ok(info)
}

/// The checks while `dev` (loop device `n`) has `backing` attached.
fn attached(t: &mut T, n: u32, dev: &OwnedFd, backing: &OwnedFd, data: &[u8; LEN]) {
    let want = l::LO_FLAGS_READ_ONLY as u32 | l::LO_FLAGS_AUTOCLEAR as u32;
    let st = status(dev).map(|s| (s.lo_number, s.lo_offset, s.lo_sizelimit, s.lo_flags & want));
    t.eq("loopdev::status_read_only_autoclear", st, Ok((n, 0, 0, want)));
    let sys = cfmt!("/sys/class/block/loop{n}/ro");
    let mut buf = [0u8; 8];
    let ro = read_file(CWD, sys.as_cstr(), &mut buf).map(B);
    t.eq("loopdev::sysfs_ro", ro, Ok(B(b"1\n")));
    // The device shows the file's bytes, all of them and no more.
    let mut back = [0u8; LEN + 512];
    let got = fs::read_full(dev, &mut back);
    t.check("loopdev::read_back", got == Ok(LEN) && back[..LEN] == data[..],
            format_args!("read {:?}, first bytes {:?}", Res(&got), B(&back[..16])));
    // Read-only: a write is refused (blkdev_write_iter: EPERM on a read-only device), and
    // the fsync would carry anything that did get in to the backing file (checked at the end).
    let _ = fs::lseek(dev, Seek::Set(0));
    t.err("loopdev::write_eperm", fs::write(dev, b"overwrite"), Errno::EPERM);
    t.eq("loopdev::fsync", fs::fsync(dev), Ok(()));
    // A bound device cannot be attached again.
    t.err("loopdev::attach_busy_ebusy", loopdev::attach_read_only(dev, backing), Errno::EBUSY);
}
