//! Mounts and the root, in a private mount namespace of a child: tmpfs, bind, remount
//! read-only, umount2 with its flags, pivot_root, chroot, chdir, fchdir.

use crate::harness::{section, B, T};
use crate::util::{self, read_file, write_file};
use syscall::fs::{self, AtFlags, OFlags, StatxMask};
use syscall::mount::{self, MountFlags, UnmountFlags};
use syscall::process::NsFlags;
use syscall::{AsFd, BorrowedFd, Errno};

const CWD: BorrowedFd<'static> = BorrowedFd::CWD;

pub fn run(t: &mut T) {
    section(t, "mount", |t| {
        if t.need("mount::enter_ns", util::enter_ns(NsFlags::NEWNS)).is_none() {
            return;
        }
        // Nothing mounted here may propagate back to the host's namespace: no mounts unless
        // this worked.
        if t.ok("mount::make_rprivate", mount::mount(None, c"/", None, MountFlags::REC | MountFlags::PRIVATE, None)).is_none() {
            return;
        }
        tmpfs_bind_remount(t);
        detach_expire(t);
        section(t, "mount::pivot_root", pivot);
        section(t, "mount::chroot", chroot);
    });
}

fn exists(p: &core::ffi::CStr) -> Result<(), Errno> {
    fs::statx(CWD, p, AtFlags::SYMLINK_NOFOLLOW, StatxMask::TYPE).map(|_| ())
}

fn create(p: &core::ffi::CStr) -> Result<(), Errno> {
    fs::openat(CWD, p, OFlags::WRONLY | OFlags::CREAT | OFlags::CLOEXEC, 0o644).map(|_| ())
}

fn tmpfs_bind_remount(t: &mut T) {
    let _ = fs::mkdirat(CWD, c"mnt", 0o755);
    let r = mount::mount(Some(c"tmpfs"), c"mnt", Some(c"tmpfs"), MountFlags::NOSUID | MountFlags::NODEV,
                         Some(c"size=1m,mode=0711"));
    if t.ok("mount::tmpfs", r).is_none() {
        return;
    }
    let here = fs::statx(CWD, c".", AtFlags::EMPTY, StatxMask::BASIC_STATS);
    let there = fs::statx(CWD, c"mnt", AtFlags::EMPTY, StatxMask::BASIC_STATS);
    if let (Ok(here), Ok(there)) = (here, there) {
        t.check("mount::tmpfs_new_device", (here.stx_dev_major, here.stx_dev_minor) != (there.stx_dev_major, there.stx_dev_minor),
                format_args!("mnt has the device of its parent"));
        // The data string reached the filesystem.
        t.eq("mount::tmpfs_data_mode", there.stx_mode & 0o7777, 0o711);
        let root_attr = linux_raw_sys::general::STATX_ATTR_MOUNT_ROOT as u64;
        t.check("mount::tmpfs_mount_root", there.stx_attributes_mask & root_attr == 0 || there.stx_attributes & root_attr != 0,
                format_args!("STATX_ATTR_MOUNT_ROOT not set on mnt"));
    } else {
        t.fail("mount::tmpfs_stat", format_args!("statx failed"));
    }
    let _ = write_file(CWD, c"mnt/f", b"tmpfs");
    t.err("mount::enoent_target", mount::mount(Some(c"tmpfs"), c"nope", Some(c"tmpfs"), MountFlags::EMPTY, None), Errno::ENOENT);
    t.err("mount::enodev_fstype", mount::mount(Some(c"x"), c"mnt", Some(c"no-such-fs"), MountFlags::EMPTY, None), Errno::ENODEV);

    // A bind mount shows the same files.
    let _ = fs::mkdirat(CWD, c"bind", 0o755);
    t.ok("mount::bind", mount::mount(Some(c"mnt"), c"bind", None, MountFlags::BIND, None));
    let mut buf = [0u8; 16];
    t.eq("mount::bind_reads", read_file(CWD, c"bind/f", &mut buf).map(B), Ok(B(b"tmpfs")));
    let _ = write_file(CWD, c"bind/g", b"g");
    t.eq("mount::bind_writes_through", exists(c"mnt/g"), Ok(()));

    // MS_REMOUNT|MS_RDONLY makes the filesystem read-only (for the bind mount too).
    t.ok("mount::remount_rdonly", mount::mount(None, c"mnt", None, MountFlags::REMOUNT | MountFlags::RDONLY, None));
    t.err("mount::erofs_create", create(c"mnt/h"), Errno::EROFS);
    t.err("mount::erofs_mkdir", fs::mkdirat(CWD, c"mnt/d", 0o755), Errno::EROFS);
    t.err("mount::erofs_write", fs::openat(CWD, c"mnt/f", OFlags::WRONLY | OFlags::CLOEXEC, 0).map(|_| ()), Errno::EROFS);
    t.err("mount::erofs_via_bind", create(c"bind/h"), Errno::EROFS);
    t.eq("mount::erofs_still_readable", read_file(CWD, c"mnt/f", &mut buf).map(B), Ok(B(b"tmpfs")));
    t.ok("mount::remount_rw", mount::mount(None, c"mnt", None, MountFlags::REMOUNT, None));
    t.eq("mount::remount_rw_create", create(c"mnt/h"), Ok(()));
    // A read-only bind mount of a writable filesystem.
    t.ok("mount::remount_bind_rdonly",
         mount::mount(None, c"bind", None, MountFlags::REMOUNT | MountFlags::BIND | MountFlags::RDONLY, None));
    t.err("mount::bind_rdonly_erofs", create(c"bind/i"), Errno::EROFS);
    t.eq("mount::bind_rdonly_original_rw", create(c"mnt/i"), Ok(()));

    t.eq("mount::umount2", mount::umount2(c"bind", UnmountFlags::EMPTY), Ok(()));
    t.err("mount::umount2_gone", exists(c"bind/f"), Errno::ENOENT);
    t.err("mount::umount2_not_mounted", mount::umount2(c"bind", UnmountFlags::EMPTY), Errno::EINVAL);
    t.err("mount::umount2_enoent", mount::umount2(c"nope", UnmountFlags::EMPTY), Errno::ENOENT);
    // UMOUNT_NOFOLLOW: a symlink to a mount point is not itself a mount point.
    let _ = fs::symlinkat(c"mnt", CWD, c"mlink");
    t.err("mount::umount2_nofollow", mount::umount2(c"mlink", UnmountFlags::NOFOLLOW), Errno::EINVAL);
    t.eq("mount::umount2_nofollow_kept", exists(c"mnt/f"), Ok(()));
}

fn detach_expire(t: &mut T) {
    let _ = fs::mkdirat(CWD, c"mnt2", 0o755);
    if t.need("mount::tmpfs2", mount::mount(Some(c"tmpfs"), c"mnt2", Some(c"tmpfs"), MountFlags::EMPTY, None)).is_none() {
        return;
    }
    let _ = write_file(CWD, c"mnt2/f", b"detach");
    let Some(f) = t.need("mount::open_busy", fs::open(c"mnt2/f", OFlags::RDONLY | OFlags::CLOEXEC, 0)) else { return };
    t.err("mount::umount2_ebusy", mount::umount2(c"mnt2", UnmountFlags::EMPTY), Errno::EBUSY);
    t.err("mount::umount2_expire_detach_einval", mount::umount2(c"mnt2", UnmountFlags::EXPIRE | UnmountFlags::DETACH),
          Errno::EINVAL);
    t.eq("mount::umount2_detach", mount::umount2(c"mnt2", UnmountFlags::DETACH), Ok(()));
    t.err("mount::umount2_detach_gone", exists(c"mnt2/f"), Errno::ENOENT);
    let mut buf = [0u8; 16];
    let n = fs::read(&f, &mut buf).map(|n| B(&buf[..n]));
    t.eq("mount::umount2_detach_open_fd", n, Ok(B(b"detach")));
    drop(f);

    // MNT_EXPIRE: the first call marks the mount and fails with EAGAIN, the second unmounts.
    t.err("mount::umount2_expire_mark", mount::umount2(c"mnt", UnmountFlags::EXPIRE), Errno::EAGAIN);
    t.eq("mount::umount2_expire", mount::umount2(c"mnt", UnmountFlags::EXPIRE), Ok(()));
    t.err("mount::umount2_expire_gone", exists(c"mnt/f"), Errno::ENOENT);
}

fn pivot(t: &mut T) {
    // Our own namespace again: pivot_root moves the root of every process of the namespace.
    if t.need("mount::pivot_enter_ns", util::enter_ns(NsFlags::NEWNS)).is_none() {
        return;
    }
    let mut cwd_buf = [0u8; 200];
    let Some(cwd) = util::getcwd(&mut cwd_buf) else {
        t.fail("mount::pivot_getcwd", format_args!("getcwd failed"));
        return;
    };
    let old_file = cfmt!("/old{}/fs/list/f1", core::str::from_utf8(cwd).unwrap_or("?"));
    // The error cases, made independent of where the scratch directory is mounted: a
    // tmpfs "pv" holds a directory that is not a mount point, and is itself a mount that is
    // not under the new root.
    let _ = fs::mkdirat(CWD, c"pv", 0o755);
    let _ = fs::mkdirat(CWD, c"newroot", 0o755);
    if t.need("mount::pivot_tmpfs_pv", mount::mount(Some(c"tmpfs"), c"pv", Some(c"tmpfs"), MountFlags::EMPTY, None)).is_none() {
        return;
    }
    let _ = fs::mkdirat(CWD, c"pv/dir", 0o755);
    // The current root as new_root: EBUSY (same mount). In a user namespace of our own the
    // copied root mount is locked, and Linux (6.18, measured) rejects that first: EINVAL.
    let want = if util::in_initial_userns() { Errno::EBUSY } else { Errno::EINVAL };
    t.err("mount::pivot_root_current_root", mount::pivot_root(c"/", c"/"), want);
    t.err("mount::pivot_root_not_a_mount", mount::pivot_root(c"pv/dir", c"pv/dir"), Errno::EINVAL);
    if t.need("mount::pivot_tmpfs", mount::mount(Some(c"tmpfs"), c"newroot", Some(c"tmpfs"), MountFlags::EMPTY, None)).is_none() {
        return;
    }
    let _ = fs::mkdirat(CWD, c"newroot/old", 0o755);
    let _ = write_file(CWD, c"newroot/marker", b"new root");
    t.err("mount::pivot_root_put_old_outside", mount::pivot_root(c"newroot", c"pv/dir"), Errno::EINVAL);
    t.err("mount::pivot_root_enoent", mount::pivot_root(c"newroot", c"newroot/missing"), Errno::ENOENT);
    if t.ok("mount::pivot_root", mount::pivot_root(c"newroot", c"newroot/old")).is_none() {
        return;
    }
    t.ok("mount::pivot_chdir_root", mount::chdir(c"/"));
    let mut buf = [0u8; 16];
    t.eq("mount::pivot_root_new_root", read_file(CWD, c"/marker", &mut buf).map(B), Ok(B(b"new root")));
    t.eq("mount::pivot_root_old_root_moved", read_file(CWD, old_file.as_cstr(), &mut buf).map(B), Ok(B(b"1")));
    t.eq("mount::pivot_umount_old", mount::umount2(c"/old", UnmountFlags::DETACH), Ok(()));
    t.eq("mount::pivot_root_only_new", list(c"/"), Ok((2, 2)));
    t.eq("mount::pivot_old_empty", list(c"/old"), Ok((2, 0)));
}

/// (entries that are "." or "..", others) of a directory.
fn list(dir: &core::ffi::CStr) -> Result<(u32, u32), Errno> {
    let d = fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, 0)?;
    let mut buf = [0u8; 512];
    let (mut dots, mut others) = (0, 0);
    loop {
        let n = fs::getdents64(&d, &mut buf)?;
        if n == 0 {
            return Ok((dots, others));
        }
        for e in fs::Dirents::new(buf.get(..n).unwrap_or(&[])) {
            match e.name.to_bytes() {
                b"." | b".." => dots += 1,
                _ => others += 1,
            }
        }
    }
}

fn chroot(t: &mut T) {
    let _ = fs::mkdirat(CWD, c"jail", 0o755);
    let _ = fs::mkdirat(CWD, c"jail/sub", 0o755);
    let _ = write_file(CWD, c"jail/inside", b"in");
    let Some(outside) = t.need("mount::open_outside", fs::open(c".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, 0)) else { return };
    let ino = |p: &core::ffi::CStr| fs::statx(CWD, p, AtFlags::EMPTY, StatxMask::INO).map(|s| s.stx_ino);
    let outside_ino = fs::fstatx(&outside, StatxMask::INO).map(|s| s.stx_ino);
    t.err("mount::chroot_enoent", mount::chroot(c"nope"), Errno::ENOENT);
    t.err("mount::chroot_enotdir", mount::chroot(c"jail/inside"), Errno::ENOTDIR);
    if t.ok("mount::chroot", mount::chroot(c"jail")).is_none() {
        return;
    }
    t.ok("mount::chdir_root", mount::chdir(c"/"));
    let mut buf = [0u8; 8];
    t.eq("mount::chroot_sees_inside", read_file(CWD, c"/inside", &mut buf).map(B), Ok(B(b"in")));
    t.err("mount::chroot_hides_outside", exists(c"/jail"), Errno::ENOENT);
    t.eq("mount::chroot_dotdot_stays", ino(c"/.."), ino(c"/"));
    t.ok("mount::chdir", mount::chdir(c"sub"));
    t.eq("mount::chdir_cwd", ino(c"."), ino(c"/sub"));
    t.err("mount::chdir_enoent", mount::chdir(c"nope"), Errno::ENOENT);
    t.err("mount::chdir_enotdir", mount::chdir(c"/inside"), Errno::ENOTDIR);
    t.ok("mount::fchdir", mount::fchdir(&outside));
    t.eq("mount::fchdir_cwd", ino(c"."), outside_ino);
    if let Some(f) = t.need("mount::open_file", fs::open(c"fs/a.txt", OFlags::RDONLY | OFlags::CLOEXEC, 0)) {
        t.err("mount::fchdir_enotdir", mount::fchdir(f.as_fd()), Errno::ENOTDIR);
    }
    t.err("mount::fchdir_ebadf", mount::fchdir(BorrowedFd::raw_static(9999)), Errno::EBADF);
}
