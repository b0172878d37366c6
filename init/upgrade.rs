//! On-the-fly upgrade, the filesystem side: check a new system image, mount it at
//! `/rofs_root/_upgrade` and swap it with the running one; swap back; detach the old one;
//! make the root's links match the image in use. The rolling restart that follows, the
//! commit and the rollback are driven by the service manager (`services.rs`).
//!
//! The swap is done by a short-lived child: it chroots into `/rofs_root` and calls
//! `pivot_root("_upgrade", "_upgrade/_upgrade")`, which puts the new image's mount where the
//! old one was and the old one under it (`/rofs_root/_upgrade`). The root (a tmpfs) and every
//! running program are untouched: they keep their open files. Swapping back is the same call.
//! The child does the slow checks too (reading and hashing the image), so PID 1 keeps serving.

use crate::boot::{self, Path};
use crate::log::{Level, Line, Log, Piece};
use crate::{mounts, sha256, superblock};
use core::ffi::CStr;
use syscall::fs::{self, AtFlags, Dirents, OFlags, StatxMask};
use syscall::mount::{self, MountFlags, UnmountFlags};
use syscall::process::{self, Fork, Pid};
use syscall::signal::{self, MaskHow, SigSet};
use syscall::{io, BorrowedFd, Errno, OwnedFd};

pub const ROFS: &CStr = c"/rofs_root";
pub const UPGRADE_DIR: &CStr = c"/rofs_root/_upgrade";

/// Exit codes of the swap child.
pub mod exit {
    /// Swapped: the new image is `/rofs_root`.
    pub const SWAPPED: u8 = 0;
    /// Refused (not an image, checksum mismatch, ...): nothing was changed.
    pub const REFUSED: u8 = 1;
    /// Mounted but the swap failed: it was unmounted again, nothing changed.
    pub const SWAP_FAILED: u8 = 2;
}

/// Whether something is mounted at `/rofs_root/_upgrade` (an upgrade in progress, or an old
/// image not yet detached).
pub fn upgrade_dir_mounted() -> bool {
    let (Ok(a), Ok(b)) = (
        fs::statx(BorrowedFd::CWD, UPGRADE_DIR, AtFlags::EMPTY, StatxMask::TYPE),
        fs::statx(BorrowedFd::CWD, ROFS, AtFlags::EMPTY, StatxMask::TYPE),
    ) else {
        return false;
    };
    (a.stx_dev_major, a.stx_dev_minor) != (b.stx_dev_major, b.stx_dev_minor)
}

/// The swap child's errors: each is logged, and the first (the reason) is also written to a
/// pipe that PID 1 reads once the child has exited, so that the client is told why.
struct Errors<'a> {
    log: &'a Log,
    pipe: Option<OwnedFd>,
}

impl Errors<'_> {
    fn error(&mut self, l: &Line) {
        self.log.emit(Level::Error, l);
        if let Some(p) = self.pipe.take() {
            let text = l.as_bytes();
            let _ = fs::write_all(&p, text.strip_prefix(b"upgrade: ").unwrap_or(text));
        }
    }
}

/// Forks the child that checks `image`, mounts it and swaps it in. Its exit code is one of
/// [`exit`]; it logs its own errors, and the first one can be read with [`read_reason`] from
/// the returned fd once it has exited (None if the pipe could not be made).
pub fn spawn_swap(log: &Log, image: &str) -> Result<(Pid, Option<OwnedFd>), Errno> {
    let p = Path::of(&[image.as_bytes()]).ok_or(Errno::ENAMETOOLONG)?;
    let (reason_r, reason_w) = match io::pipe2(true, true) {
        Ok((r, w)) => (Some(r), Some(w)),
        Err(_) => (None, None),
    };
    match process::fork()? {
        Fork::Parent(pid) => Ok((pid, reason_r)),
        Fork::Child => {
            drop(reason_r);
            let _ = signal::sigprocmask(MaskHow::Set, &SigSet::EMPTY);
            let mut errors = Errors { log, pipe: reason_w };
            let code = match check_and_mount(&mut errors, image, p.c()) {
                Err(()) => exit::REFUSED,
                Ok(()) => match swap(&mut errors) {
                    Ok(()) => exit::SWAPPED,
                    Err(()) => exit::SWAP_FAILED,
                },
            };
            process::exit_group(i32::from(code))
        }
    }
}

/// What the swap child wrote to its reason pipe (after it has exited): its first error line,
/// without the `upgrade: ` prefix and the newline; empty if none.
pub fn read_reason<'b>(fd: &OwnedFd, buf: &'b mut [u8]) -> &'b [u8] {
    let n = fs::read(fd, buf).unwrap_or(0);
    let text = buf.get(..n).unwrap_or(&[]);
    text.strip_suffix(b"\n").unwrap_or(text)
}

/// Forks the child that swaps `/rofs_root` and `/rofs_root/_upgrade` back.
pub fn spawn_swap_back(log: &Log) -> Result<Pid, Errno> {
    match process::fork()? {
        Fork::Parent(pid) => Ok(pid),
        Fork::Child => {
            let _ = signal::sigprocmask(MaskHow::Set, &SigSet::EMPTY);
            let code = match pivot(&mut Errors { log, pipe: None }) {
                Ok(()) => exit::SWAPPED,
                Err(()) => exit::SWAP_FAILED,
            };
            process::exit_group(i32::from(code))
        }
    }
}

fn check_and_mount(errors: &mut Errors<'_>, image: &str, path: &CStr) -> Result<(), ()> {
    let log = errors.log;
    if upgrade_dir_mounted() {
        errors.error(&line!("upgrade: ", UPGRADE_DIR, " is already a mount point: an upgrade is in progress or the old image is still attached"));
        return Err(());
    }
    let file = fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, 0).map_err(|e| errors.error(&line!("upgrade: open ", image, ": ", e)))?;
    let st = fs::fstatx(&file, StatxMask::TYPE | StatxMask::SIZE).map_err(|e| errors.error(&line!("upgrade: stat ", image, ": ", e)))?;
    if u32::from(st.stx_mode) & fs::mode::IFMT != fs::mode::IFREG {
        errors.error(&line!("upgrade: ", image, ": not a regular file"));
        return Err(());
    }
    let mut head = [0u8; 4096];
    let n = fs::read_full(&file, &mut head).map_err(|e| errors.error(&line!("upgrade: read ", image, ": ", e)))?;
    if let Err(why) = superblock::squashfs_sane(head.get(..n).unwrap_or(&[]), st.stx_size) {
        errors.error(&line!("upgrade: ", image, ": not a usable squashfs image: ", why));
        return Err(());
    }
    check_sidecar(errors, image, &file)?;
    let (_loop_dev, loop_name) = boot::attach_loop(log, &file).map_err(|e| errors.error(&line!("upgrade: ", image, ": attach to a loop device: ", e)))?;
    let r = mount::mount(Some(loop_name.c()), UPGRADE_DIR, Some(c"squashfs"), MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV, None);
    if let Err(e) = r {
        // The loop device clears itself once this child's fd is closed.
        errors.error(&line!("upgrade: mount ", loop_name, " (", image, ") on ", UPGRADE_DIR, " as squashfs: ", e));
        return Err(());
    }
    log!(log, Level::Info, "upgrade: ", image, " on ", loop_name, " mounted at ", UPGRADE_DIR);
    // The new image must carry the empty /_upgrade that the next upgrade swaps through.
    match dir_entries(c"/rofs_root/_upgrade/_upgrade") {
        Ok(0) => Ok(()),
        Ok(_) => {
            errors.error(&line!("upgrade: ", image, ": its /_upgrade directory is not empty"));
            unmount_upgrade(log);
            Err(())
        }
        Err(e) => {
            errors.error(&line!("upgrade: ", image, ": no /_upgrade directory (", e, "): every system image needs an empty one"));
            unmount_upgrade(log);
            Err(())
        }
    }
}

/// If `IMAGE.sha256` exists, the image must match it.
fn check_sidecar(errors: &mut Errors<'_>, image: &str, file: &syscall::OwnedFd) -> Result<(), ()> {
    let log = errors.log;
    let side = Path::of(&[image.as_bytes(), b".sha256"]).ok_or(())?;
    let sfd = match fs::open(side.c(), OFlags::RDONLY | OFlags::CLOEXEC, 0) {
        Ok(f) => f,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => {
            errors.error(&line!("upgrade: open ", side.c(), ": ", e));
            return Err(());
        }
    };
    let mut text = [0u8; 256];
    let n = fs::read_full(&sfd, &mut text).unwrap_or(0);
    let base = image.rsplit('/').next().unwrap_or(image);
    let want = match sha256::parse_sidecar(text.get(..n).unwrap_or(&[]), base) {
        Ok(d) => d,
        Err(why) => {
            errors.error(&line!("upgrade: ", side.c(), ": ", why));
            return Err(());
        }
    };
    let _ = fs::lseek(file, fs::Seek::Set(0));
    let mut h = sha256::Sha256::new();
    let mut buf = [0u8; 16384];
    loop {
        match fs::read(file, &mut buf) {
            Ok(0) => break,
            Ok(k) => h.update(buf.get(..k).unwrap_or(&[])),
            Err(Errno::EINTR) => {}
            Err(e) => {
                errors.error(&line!("upgrade: read ", image, ": ", e));
                return Err(());
            }
        }
    }
    if h.finish() != want {
        errors.error(&line!("upgrade: ", image, ": SHA-256 does not match ", side.c()));
        return Err(());
    }
    log!(log, Level::Info, "upgrade: ", image, ": SHA-256 matches ", side.c());
    Ok(())
}

/// Entries of a directory besides `.` and `..`.
fn dir_entries(dir: &CStr) -> Result<usize, Errno> {
    let fd = fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, 0)?;
    let mut buf = [0u8; 512];
    let mut count = 0usize;
    loop {
        let n = fs::getdents64(&fd, &mut buf)?;
        if n == 0 {
            return Ok(count);
        }
        count += Dirents::new(buf.get(..n).unwrap_or(&[])).filter(|e| !matches!(e.name.to_bytes(), b"." | b"..")).count();
    }
}

fn unmount_upgrade(log: &Log) {
    if let Err(e) = mount::umount2(UPGRADE_DIR, UnmountFlags::DETACH) {
        log!(log, Level::Error, "upgrade: umount ", UPGRADE_DIR, ": ", e);
    }
}

/// In the child, after the new image is mounted: the swap. On failure the new image is
/// unmounted again.
fn swap(errors: &mut Errors<'_>) -> Result<(), ()> {
    match pivot(errors) {
        Ok(()) => Ok(()),
        Err(()) => {
            // chroot may have happened: the mount is still reachable by its full path from
            // the real root only if the chroot failed; unmount by both paths.
            let _ = mount::umount2(c"/_upgrade", UnmountFlags::DETACH);
            let _ = mount::umount2(UPGRADE_DIR, UnmountFlags::DETACH);
            Err(())
        }
    }
}

/// chroot into /rofs_root and pivot_root("_upgrade", "_upgrade/_upgrade").
fn pivot(errors: &mut Errors<'_>) -> Result<(), ()> {
    if let Err(e) = mount::chdir(ROFS).and_then(|()| mount::chroot(c".")) {
        errors.error(&line!("upgrade: chroot ", ROFS, ": ", e));
        return Err(());
    }
    if let Err(e) = mount::pivot_root(c"_upgrade", c"_upgrade/_upgrade") {
        errors.error(&line!("upgrade: pivot_root(_upgrade, _upgrade/_upgrade) in ", ROFS, ": ", e));
        return Err(());
    }
    Ok(())
}

/// Commit: the old image, now at `/rofs_root/_upgrade`, is detached lazily; its loop device
/// goes away with its last user.
pub fn detach_old(log: &Log) -> Result<(), Errno> {
    mount::umount2(UPGRADE_DIR, UnmountFlags::DETACH).inspect_err(|&e| {
        log!(log, Level::Error, "upgrade: detach the old image at ", UPGRADE_DIR, ": ", e);
    })
}

/// What [`resync_root`] changed.
#[derive(Default, Copy, Clone)]
pub struct Resync {
    pub added: u32,
    pub removed: u32,
    pub etc_added: u32,
    pub etc_removed: u32,
}

/// Makes the root's top level and `/etc` match the image now at `/rofs_root`: links for new
/// top-level entries, none for vanished ones; `/etc` entries that are still links into the
/// image are added or removed the same way. Files written by overlays or at run time (not
/// links into the image) are left alone.
pub fn resync_root(log: &Log) -> Resync {
    let mut r = Resync::default();
    // New top-level entries.
    let _ = boot::for_each_entry(ROFS, |name, kind| {
        let n = name.to_bytes();
        if boot::NOT_LINKED.iter().any(|x| x.as_bytes() == n) {
            return Ok(());
        }
        let Some(link) = Path::of(&[b"/", n]) else { return Ok(()) };
        if fs::statx(BorrowedFd::CWD, link.c(), AtFlags::SYMLINK_NOFOLLOW, StatxMask::TYPE).is_ok() {
            return Ok(());
        }
        let mut tbuf = [0u8; 256];
        let target = if kind == fs::DT_LNK {
            let Some(entry) = Path::of(&[ROFS.to_bytes(), b"/", n]) else { return Ok(()) };
            match fs::readlinkat(BorrowedFd::CWD, entry.c(), &mut tbuf) {
                Ok(t) => Path::of(&[t]),
                Err(_) => None,
            }
        } else {
            Path::of(&[b"rofs_root/", n])
        };
        let Some(target) = target else { return Ok(()) };
        match fs::symlinkat(target.c(), BorrowedFd::CWD, link.c()) {
            Ok(()) => r.added += 1,
            Err(e) => log!(log, Level::Warn, "upgrade: link /", n, " -> ", target.c(), ": ", e),
        }
        Ok(())
    });
    // Vanished ones: links of the root whose target is gone.
    r.removed = remove_dangling(log, c"/", b"rofs_root/");
    // /etc: add links for new entries, drop dangling links into the image.
    let _ = boot::for_each_entry(c"/rofs_root/etc", |name, _| {
        let n = name.to_bytes();
        let Some(link) = Path::of(&[b"/etc/", n]) else { return Ok(()) };
        if fs::statx(BorrowedFd::CWD, link.c(), AtFlags::SYMLINK_NOFOLLOW, StatxMask::TYPE).is_ok() {
            return Ok(());
        }
        let Some(target) = Path::of(&[b"../rofs_root/etc/", n]) else { return Ok(()) };
        match fs::symlinkat(target.c(), BorrowedFd::CWD, link.c()) {
            Ok(()) => r.etc_added += 1,
            Err(e) => log!(log, Level::Warn, "upgrade: link /etc/", n, ": ", e),
        }
        Ok(())
    });
    r.etc_removed = remove_dangling(log, c"/etc", b"../rofs_root/");
    r
}

/// Removes the links in `dir` whose target starts with `prefix` and no longer exists.
fn remove_dangling(log: &Log, dir: &CStr, prefix: &[u8]) -> u32 {
    let mut removed = 0u32;
    // Collected first: unlinking while reading the directory could skip entries.
    let mut names: heapless::Vec<heapless::String<64>, 64> = heapless::Vec::new();
    let _ = boot::for_each_entry(dir, |name, kind| {
        if kind != fs::DT_LNK {
            return Ok(());
        }
        let Ok(n) = name.to_str() else { return Ok(()) };
        let Some(link) = Path::of(&[dir.to_bytes(), if dir.to_bytes().ends_with(b"/") { b"" } else { b"/" }, n.as_bytes()]) else { return Ok(()) };
        let mut tbuf = [0u8; 256];
        let Ok(t) = fs::readlinkat(BorrowedFd::CWD, link.c(), &mut tbuf) else { return Ok(()) };
        if !t.starts_with(prefix) {
            return Ok(());
        }
        // Follows the link: gone when the target is.
        if matches!(fs::statx(BorrowedFd::CWD, link.c(), AtFlags::EMPTY, StatxMask::TYPE), Err(Errno::ENOENT)) {
            let mut s = heapless::String::new();
            if s.push_str(n).is_ok() {
                let _ = names.push(s);
            }
        }
        Ok(())
    });
    for n in &names {
        let Some(link) = Path::of(&[dir.to_bytes(), if dir.to_bytes().ends_with(b"/") { b"" } else { b"/" }, n.as_bytes()]) else { continue };
        match fs::unlinkat(BorrowedFd::CWD, link.c(), AtFlags::EMPTY) {
            Ok(()) => removed += 1,
            Err(e) => log!(log, Level::Warn, "upgrade: remove stale link ", link.c(), ": ", e),
        }
    }
    removed
}

/// The image in use: `FILE (N bytes, squashfs of YYYY-MM-DD HH:MM:SS UTC)`, from the loop
/// device mounted at /rofs_root.
pub fn describe_image(l: &mut Line) {
    let mut table = [0u8; 8192];
    let n = fs::open(c"/proc/mounts", OFlags::RDONLY | OFlags::CLOEXEC, 0)
        .and_then(|fd| fs::read_full(&fd, &mut table))
        .unwrap_or(0);
    let text = core::str::from_utf8(table.get(..n).unwrap_or(&[])).unwrap_or("");
    let Some(entry) = mounts::newest_first(text).find(|e| e.target == "/rofs_root") else {
        "no image at /rofs_root".put(l);
        return;
    };
    let Some(dev) = entry.source.strip_prefix("/dev/") else {
        entry.source.put(l);
        return;
    };
    let mut file = [0u8; 256];
    let mut flen = 0;
    if let Some(p) = Path::of(&[b"/sys/block/", dev.as_bytes(), b"/loop/backing_file"]) {
        if let Ok(fd) = fs::open(p.c(), OFlags::RDONLY | OFlags::CLOEXEC, 0) {
            flen = fs::read(&fd, &mut file).unwrap_or(0);
        }
    }
    let name = file.get(..flen).unwrap_or(&[]).strip_suffix(b"\n").unwrap_or(file.get(..flen).unwrap_or(&[]));
    if name.is_empty() {
        entry.source.put(l);
        return;
    }
    name.put(l);
    let Some(p) = Path::of(&[name]) else { return };
    let Ok(fd) = fs::open(p.c(), OFlags::RDONLY | OFlags::CLOEXEC, 0) else { return };
    let size = fs::fstatx(&fd, StatxMask::SIZE).map(|s| s.stx_size).unwrap_or(0);
    let mut head = [0u8; 96];
    let k = fs::read_full(&fd, &mut head).unwrap_or(0);
    " (".put(l);
    size.put(l);
    " bytes".put(l);
    if let Ok(info) = superblock::squashfs_sane(head.get(..k).unwrap_or(&[]), size.max(4096)) {
        ", squashfs of ".put(l);
        put_utc(l, u64::from(info.mkfs_time));
    }
    ")".put(l);
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a Unix time.
pub fn put_utc(l: &mut Line, secs: u64) {
    let (y, m, d) = civil_from_days((secs / 86400) as i64);
    let rem = secs % 86400;
    let two = |l: &mut Line, v: u64| {
        if v < 10 {
            "0".put(l);
        }
        v.put(l);
    };
    (y.max(0) as u64).put(l);
    "-".put(l);
    two(l, u64::from(m));
    "-".put(l);
    two(l, u64::from(d));
    " ".put(l);
    two(l, rem / 3600);
    ":".put(l);
    two(l, rem % 3600 / 60);
    ":".put(l);
    two(l, rem % 60);
    " UTC".put(l);
}

/// Howard Hinnant's days-to-civil: (year, month, day) of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_419), (2025, 11, 27));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        let mut l = Line::new();
        put_utc(&mut l, 1_700_000_000);
        assert_eq!(l.as_bytes(), b"2023-11-14 22:13:20 UTC");
    }
}
