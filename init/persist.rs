//! Making an upgrade permanent on the boot device, and counted trial boots
//! (docs/upgrade.md, "Persisting and trial boots").
//!
//! `persist` copies the new image next to the booted one as `<image>.new`, writes the trial
//! marker `<image>.try`, keeps the proven image as `<image>.old` and renames `<image>.new`
//! over `<image>`. The boot stage ([`stage1_plan`]) counts each boot of an image under trial
//! down in the marker and, once the tries are used up, boots `<image>.old` again. Stage 2
//! removes the marker ([`end_trial`]) once every unit has been healthy for the settle time.
//!
//! Every step leaves a bootable boot device: the marker is written *before* the new image
//! takes the name `<image>`, so a crash never leaves an unproven image that boots without
//! a trial; and a corrupt or empty marker counts as "no tries left", which boots the proven
//! image. The boot device is remounted read-write only for these writes and read-only right
//! after, whatever happens in between.
//!
//! Stage 1 tells stage 2 what it booted in a small record in the tmpfs root
//! ([`BOOT_RECORD`]): which file, and whether it is a trial boot. `persist` reads it to know
//! which file on the boot device is the image that is known to work.

use crate::boot::Path;
use crate::cmdline::Settings;
use crate::log::{Level, Log};
use crate::{mountopts, superblock};
use core::ffi::CStr;
use syscall::fs::{self, AtFlags, OFlags, StatxMask};
use syscall::mount::{self, MountFlags};
use syscall::process::{self, Fork, Pid};
use syscall::{BorrowedFd, Errno};

/// Tries a freshly persisted image gets: boots that may fail before `<image>.old` is booted.
pub const TRIAL_TRIES: u8 = 3;
/// The largest count a marker may hold; more is a corrupt marker.
pub const MAX_TRIES: u8 = 99;
/// Longest image file name (`autoinit.image=` allows no more).
pub const IMAGE_NAME_BYTES: usize = 255;
/// A trial boot ends well once every unit has been healthy for this long.
pub const TRIAL_SETTLE_MS: u64 = 5_000;
/// A trial boot that is not healthy this long after stage 2 started has failed.
pub const TRIAL_TIMEOUT_MS: u64 = 120_000;
/// What stage 1 booted, in the tmpfs root (stage 2's view).
pub const BOOT_RECORD: &CStr = c"/__autoinit__/booted";
/// The same file while stage 1 builds the new root.
const BOOT_RECORD_STAGE1: &CStr = c"/newroot/__autoinit__/booted";

// ---------------------------------------------------------------------------------------------
// Pure parts

/// Parses a trial marker: a decimal count of tries left (0 to [`MAX_TRIES`]), optionally
/// followed by a newline or other trailing white space. `Err` says what is wrong.
pub fn parse_tries(text: &[u8]) -> Result<u8, &'static str> {
    let end = text.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
    let digits = text.get(..end).unwrap_or(&[]);
    if digits.is_empty() {
        return Err("empty");
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err("not a decimal count of tries");
    }
    let mut n: u32 = 0;
    for &d in digits {
        n = n.saturating_mul(10).saturating_add(u32::from(d - b'0'));
    }
    if n > u32::from(MAX_TRIES) {
        return Err("more tries than 99");
    }
    u8::try_from(n).map_err(|_| "more tries than 99")
}

/// The marker's text for `n` tries: `"N\n"`.
pub fn format_tries(n: u8, buf: &mut [u8; 4]) -> &[u8] {
    let n = n.min(MAX_TRIES);
    let tens = (n >= 10).then_some(b'0' + n / 10);
    let mut len = 0;
    for b in tens.into_iter().chain([b'0' + n % 10, b'\n']) {
        if let Some(slot) = buf.get_mut(len) {
            *slot = b;
            len += 1;
        }
    }
    buf.get(..len).unwrap_or(&[])
}

/// What stage 1 found in the trial marker.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Marker {
    Absent,
    Tries(u8),
    Corrupt(&'static str),
}

/// Why stage 1 boots `<image>.old` first.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Fallback {
    /// The marker holds 0: every trial boot failed.
    TriesUsed,
    /// The marker could not be read or parsed; it counts as 0 tries left.
    Corrupt(&'static str),
    /// The decremented count could not be written: an uncounted trial could loop forever.
    CannotCount(Errno),
}

/// Stage 1's choice of image.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Plan {
    /// No trial: `<image>`, else `<image>.old`.
    Normal,
    /// A trial boot with `left` tries left after this one: `<image>`, else `<image>.old`.
    Trial { left: u8 },
    /// `<image>.old`, else `<image>`.
    Fallback(Fallback),
}

impl Plan {
    /// What to do for `marker`, before the decrement is written.
    pub fn for_marker(marker: Marker) -> Plan {
        match marker {
            Marker::Absent => Plan::Normal,
            Marker::Tries(0) => Plan::Fallback(Fallback::TriesUsed),
            Marker::Tries(n) => Plan::Trial { left: n.saturating_sub(1) },
            Marker::Corrupt(why) => Plan::Fallback(Fallback::Corrupt(why)),
        }
    }

    /// Whether `<image>.old` is tried first.
    pub fn old_first(self) -> bool {
        matches!(self, Plan::Fallback(_))
    }
}

/// Which file stage 1 mounted.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Booted {
    /// `<image>`, no trial.
    Image,
    /// `<image>.old`.
    Old,
    /// `<image>` on a trial boot, `left` tries left after it.
    Trial { left: u8 },
}

/// The record's text: `image\n`, `old\n` or `trial N\n`.
pub fn format_record(b: Booted, buf: &mut [u8; 16]) -> &[u8] {
    let mut line = crate::log::Line::new();
    match b {
        Booted::Image => line.push(b"image\n"),
        Booted::Old => line.push(b"old\n"),
        Booted::Trial { left } => {
            line.push(b"trial ");
            let mut t = [0u8; 4];
            line.push(format_tries(left, &mut t));
        }
    }
    let bytes = line.as_bytes();
    let n = bytes.len().min(buf.len());
    if let (Some(dst), Some(src)) = (buf.get_mut(..n), bytes.get(..n)) {
        dst.copy_from_slice(src);
    }
    buf.get(..n).unwrap_or(&[])
}

/// Parses the record written by [`format_record`].
pub fn parse_record(text: &[u8]) -> Option<Booted> {
    let t = core::str::from_utf8(text).ok()?.trim_end();
    match t {
        "image" => Some(Booted::Image),
        "old" => Some(Booted::Old),
        _ => {
            let n = t.strip_prefix("trial ")?;
            Some(Booted::Trial { left: parse_tries(n.as_bytes()).ok()? })
        }
    }
}

/// What `persist` does with the two images on the boot device.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Rotation {
    /// `<image>` is the image known to work: it becomes `<image>.old` (the previous
    /// `<image>.old` goes).
    KeepImageAsOld,
    /// `<image>.old` is the image known to work (this boot fell back to it): it stays, and
    /// `<image>` goes.
    KeepOld,
    /// A trial boot that has not ended: the image under trial is not known to work, and
    /// persisting now would make it the fallback. Refused.
    Refuse,
}

/// The rotation for what stage 1 booted (`record`), or, without a record, for the marker.
pub fn rotation(record: Option<Booted>, marker: Marker) -> Rotation {
    match record {
        Some(Booted::Image) => Rotation::KeepImageAsOld,
        Some(Booted::Old) => Rotation::KeepOld,
        Some(Booted::Trial { .. }) => Rotation::Refuse,
        None => match marker {
            Marker::Absent => Rotation::KeepImageAsOld,
            Marker::Tries(0) | Marker::Corrupt(_) => Rotation::KeepOld,
            Marker::Tries(_) => Rotation::Refuse,
        },
    }
}

/// The end of a trial boot, from the units' health (pure: the manager calls [`Self::step`]).
#[derive(Clone, Debug)]
pub struct TrialWatch {
    started_ms: u64,
    healthy_since: Option<u64>,
    settle_ms: u64,
    timeout_ms: u64,
    done: bool,
}

/// What the manager does next on a trial boot.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum TrialStep {
    /// Not decided yet; check again by [`TrialWatch::next_check`].
    Wait,
    /// Every unit has been healthy for the settle time: end the trial.
    Healthy,
    /// A unit failed, or the units were not healthy in time: reboot.
    Failed(&'static str),
    /// Already decided.
    Done,
}

impl TrialWatch {
    pub fn new(now_ms: u64, settle_ms: u64, timeout_ms: u64) -> TrialWatch {
        TrialWatch { started_ms: now_ms, healthy_since: None, settle_ms, timeout_ms, done: false }
    }

    /// `all_healthy`: every unit is running (notify units: READY=1) or exited successfully;
    /// `failed`: a unit gave up (state `failed`).
    pub fn step(&mut self, now_ms: u64, all_healthy: bool, failed: bool) -> TrialStep {
        if self.done {
            return TrialStep::Done;
        }
        let decided = if failed {
            TrialStep::Failed("a unit failed")
        } else if all_healthy {
            let since = *self.healthy_since.get_or_insert(now_ms);
            if now_ms.saturating_sub(since) >= self.settle_ms {
                TrialStep::Healthy
            } else {
                TrialStep::Wait
            }
        } else {
            self.healthy_since = None;
            if now_ms.saturating_sub(self.started_ms) >= self.timeout_ms {
                TrialStep::Failed("the units were not healthy in time")
            } else {
                TrialStep::Wait
            }
        };
        if decided != TrialStep::Wait {
            self.done = true;
        }
        decided
    }

    /// When to call [`Self::step`] again at the latest.
    pub fn next_check(&self) -> Option<u64> {
        if self.done {
            return None;
        }
        Some(match self.healthy_since {
            Some(t) => t.saturating_add(self.settle_ms),
            None => self.started_ms.saturating_add(self.timeout_ms),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The boot device

/// Where the booted image lives on the boot device, from the command line settings.
pub struct BootImage {
    /// The boot device's mount point: `/boot_disk` (`/newroot/boot_disk` in stage 1).
    mount: Path,
    /// `<mount>/<autoinit.dir>`.
    dir: Path,
    name: heapless::String<IMAGE_NAME_BYTES>,
    /// The flags the boot device is mounted with (`autoinit.bootopts=`).
    flags: MountFlags,
}

/// Where the booted image lives in the running system: `None` without `autoinit.boot=`
/// (an image in the initramfs, which cannot be written).
pub fn boot_image(s: &Settings<'_>) -> Option<BootImage> {
    s.boot?;
    BootImage::at(b"/boot_disk", s)
}

impl BootImage {
    /// The image on the boot device mounted at `mount`.
    pub(crate) fn at(mount: &[u8], s: &Settings<'_>) -> Option<BootImage> {
        let mut name = heapless::String::new();
        name.push_str(s.image).ok()?;
        Some(BootImage {
            mount: Path::of(&[mount])?,
            dir: Path::of(&[mount, b"/", s.dir.as_bytes()])?,
            name,
            flags: mountopts::parse(s.bootopts).map(|o| o.flags).unwrap_or(MountFlags::RDONLY),
        })
    }

    /// `<dir>/<image><suffix>`.
    pub fn file(&self, suffix: &str) -> Result<Path, Errno> {
        Path::of(&[self.dir.bytes(), b"/", self.name.as_bytes(), suffix.as_bytes()]).ok_or(Errno::ENAMETOOLONG)
    }

    /// The trial marker's state; a read error counts as corrupt.
    pub fn marker(&self) -> Marker {
        let Ok(p) = self.file(".try") else { return Marker::Corrupt("path too long") };
        let fd = match fs::open(p.c(), OFlags::RDONLY | OFlags::CLOEXEC, 0) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Marker::Absent,
            Err(_) => return Marker::Corrupt("cannot be opened"),
        };
        let mut buf = [0u8; 16];
        match fs::read_full(&fd, &mut buf) {
            Ok(n) => match parse_tries(buf.get(..n).unwrap_or(&[])) {
                Ok(t) => Marker::Tries(t),
                Err(why) => Marker::Corrupt(why),
            },
            Err(_) => Marker::Corrupt("cannot be read"),
        }
    }
}

/// The boot device remounted read-write until this is dropped, when it is remounted
/// read-only again (and a failure to do so is logged). A device mounted `rw` by
/// `autoinit.bootopts=` is left alone.
struct Writable<'a> {
    log: &'a Log,
    bi: &'a BootImage,
    /// What the writes are for, at the start of each line.
    why: &'a str,
    remounted: bool,
}

impl<'a> Writable<'a> {
    fn new(log: &'a Log, bi: &'a BootImage, why: &'a str) -> Result<Writable<'a>, Errno> {
        if !bi.flags.contains(MountFlags::RDONLY) {
            return Ok(Writable { log, bi, why, remounted: false });
        }
        let flags = MountFlags((bi.flags.bits() & !MountFlags::RDONLY.bits()) | MountFlags::REMOUNT.bits());
        match mount::mount(None, bi.mount.c(), None, flags, None) {
            Ok(()) => {
                log!(log, Level::Info, why, ": remounted ", bi.mount, " read-write");
                Ok(Writable { log, bi, why, remounted: true })
            }
            Err(e) => {
                log!(log, Level::Error, why, ": remount ", bi.mount, " read-write: ", e);
                Err(e)
            }
        }
    }
}

impl Drop for Writable<'_> {
    fn drop(&mut self) {
        if !self.remounted {
            return;
        }
        let flags = self.bi.flags | MountFlags::REMOUNT | MountFlags::RDONLY;
        match mount::mount(None, self.bi.mount.c(), None, flags, None) {
            Ok(()) => log!(self.log, Level::Info, self.why, ": remounted ", self.bi.mount, " read-only"),
            Err(e) => log!(self.log, Level::Error, self.why, ": remount ", self.bi.mount, " read-only: ", e, "; it stays WRITABLE until the next boot"),
        }
    }
}

fn fsync_dir(dir: &Path) -> Result<(), Errno> {
    let fd = fs::open(dir.c(), OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, 0)?;
    fs::fsync(&fd)
}

fn exists(p: &Path) -> bool {
    fs::statx(BorrowedFd::CWD, p.c(), AtFlags::SYMLINK_NOFOLLOW, StatxMask::TYPE).is_ok()
}

/// Writes the marker (`tries`), fsync'd: in place, so that a count below 10 is a one-byte
/// change of one sector.
fn write_marker(bi: &BootImage, tries: u8) -> Result<(), Errno> {
    let p = bi.file(".try")?;
    let fd = fs::open(p.c(), OFlags::WRONLY | OFlags::CREAT | OFlags::CLOEXEC, 0o644)?;
    let mut buf = [0u8; 4];
    let text = format_tries(tries, &mut buf);
    fs::write_all(&fd, text)?;
    fs::ftruncate(&fd, text.len() as u64)?;
    fs::fsync(&fd)?;
    fs::close(fd)?;
    fsync_dir(&bi.dir)
}

fn unlink_if_there(p: &Path) -> Result<bool, Errno> {
    match fs::unlinkat(BorrowedFd::CWD, p.c(), AtFlags::EMPTY) {
        Ok(()) => Ok(true),
        Err(Errno::ENOENT) => Ok(false),
        Err(e) => Err(e),
    }
}

/// rename(2) in `dir`, then fsync of the renamed file and of `dir`. The file's own fsync is
/// needed on vfat: its rename writes the new directory entry without the file's first cluster
/// and size, which reach the entry only when the file's inode is written back; an fsync of
/// the directory alone made an *empty* `<image>.old` durable, and a power cut right after it
/// left no bootable image (the `persist/power_cut` QEMU test found it).
fn rename_durably(from: &Path, to: &Path, dir: &Path) -> Result<(), Errno> {
    fs::renameat2(BorrowedFd::CWD, from.c(), BorrowedFd::CWD, to.c(), fs::RenameFlags::EMPTY)?;
    let fd = fs::open(to.c(), OFlags::RDONLY | OFlags::CLOEXEC, 0)?;
    fs::fsync(&fd)?;
    fs::close(fd)?;
    fsync_dir(dir)
}

// ---------------------------------------------------------------------------------------------
// Stage 1

/// Stage 1, before the image is mounted: reads the trial marker and, on a trial boot, writes
/// the decremented count (the boot device is read-write only for that). Logs the decision.
pub fn stage1_plan(log: &Log, s: &Settings<'_>) -> Plan {
    let Some(bi) = BootImage::at(b"/newroot/boot_disk", s) else { return Plan::Normal };
    let (Ok(image), Ok(old), Ok(marker_path)) = (bi.file(""), bi.file(".old"), bi.file(".try")) else { return Plan::Normal };
    let marker = bi.marker();
    let plan = match Plan::for_marker(marker) {
        Plan::Trial { left } => {
            let counted = Writable::new(log, &bi, "counting the trial boot").and_then(|_w| write_marker(&bi, left));
            match counted {
                Ok(()) => Plan::Trial { left },
                Err(e) => Plan::Fallback(Fallback::CannotCount(e)),
            }
        }
        p => p,
    };
    match plan {
        Plan::Normal => {}
        Plan::Trial { left } => log!(log, Level::Info, "trial boot of ", image, ": ", u32::from(left), " tries left"),
        Plan::Fallback(Fallback::TriesUsed) => {
            log!(log, Level::Warn, "trial of ", image, " failed ", u32::from(TRIAL_TRIES), " times: booting ", old)
        }
        Plan::Fallback(Fallback::Corrupt(why)) => {
            log!(log, Level::Warn, "trial marker ", marker_path, ": ", why, " (counts as 0 tries left): booting ", old)
        }
        Plan::Fallback(Fallback::CannotCount(e)) => {
            log!(log, Level::Error, "cannot count the trial boot of ", image, " in ", marker_path, " (", e, "): booting ", old)
        }
    }
    plan
}

/// Stage 1, after the image is mounted: records what was booted for stage 2 (a file in the
/// new root; `/newroot/__autoinit__` is created here).
pub fn stage1_record(log: &Log, booted: Booted) {
    let _ = fs::mkdirat(BorrowedFd::CWD, c"/newroot/__autoinit__", 0o755);
    if let Err(e) = write_record(BOOT_RECORD_STAGE1, booted) {
        log!(log, Level::Error, "write ", BOOT_RECORD, ": ", e, "; an upgrade cannot be persisted in this boot");
    }
}

fn write_record(p: &CStr, booted: Booted) -> Result<(), Errno> {
    let fd = fs::open(p, OFlags::WRONLY | OFlags::CREAT | OFlags::TRUNC | OFlags::CLOEXEC, 0o644)?;
    let mut buf = [0u8; 16];
    fs::write_all(&fd, format_record(booted, &mut buf))
}

fn read_record() -> Option<Booted> {
    let fd = fs::open(BOOT_RECORD, OFlags::RDONLY | OFlags::CLOEXEC, 0).ok()?;
    let mut buf = [0u8; 16];
    let n = fs::read_full(&fd, &mut buf).ok()?;
    parse_record(buf.get(..n)?)
}

// ---------------------------------------------------------------------------------------------
// Stage 2

/// Stage 2: `Some(tries_left)` when this boot is a trial boot of `<image>` (stage 1 booted it
/// under trial and the marker is still there).
pub fn trial(bi: &BootImage) -> Option<u8> {
    match read_record()? {
        Booted::Trial { left } => matches!(bi.marker(), Marker::Tries(_)).then_some(left),
        Booted::Image | Booted::Old => None,
    }
}

/// Stage 2, every unit healthy for the settle time: removes the marker (read-write remount,
/// unlink, fsync the directory, read-only remount). From now on `<image>` is the image known
/// to work.
pub fn end_trial(log: &Log, bi: &BootImage) -> Result<(), Errno> {
    let marker = bi.file(".try")?;
    let image = bi.file("")?;
    let r = Writable::new(log, bi, "ending the trial").and_then(|_w| {
        unlink_if_there(&marker)?;
        fsync_dir(&bi.dir)
    });
    match r {
        Ok(()) => {
            log!(log, Level::Info, "trial boot of ", image, " succeeded: removed ", marker);
            let _ = write_record(BOOT_RECORD, Booted::Image);
            Ok(())
        }
        Err(e) => {
            log!(log, Level::Error, "ending the trial of ", image, ": remove ", marker, ": ", e);
            Err(e)
        }
    }
}

/// Copies `src` to the new file `dst` (which must not exist), fsync'd; returns its size.
fn copy_file(src: &CStr, dst: &Path) -> Result<u64, Errno> {
    let from = fs::open(src, OFlags::RDONLY | OFlags::CLOEXEC, 0)?;
    let size = fs::fstatx(&from, StatxMask::SIZE)?.stx_size;
    let to = fs::open(dst.c(), OFlags::WRONLY | OFlags::CREAT | OFlags::EXCL | OFlags::CLOEXEC, 0o644)?;
    let mut copied: u64 = 0;
    loop {
        match fs::sendfile(&to, &from, 1 << 20) {
            Ok(0) => break,
            Ok(n) => copied = copied.saturating_add(n as u64),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    if copied != size {
        return Err(Errno::EIO);
    }
    fs::fsync(&to)?;
    fs::close(to)?;
    Ok(copied)
}

/// Checks that `p` starts with a sane squashfs superblock.
fn check_squashfs(p: &CStr) -> Result<(), &'static str> {
    let fd = fs::open(p, OFlags::RDONLY | OFlags::CLOEXEC, 0).map_err(|_| "cannot be opened")?;
    let size = fs::fstatx(&fd, StatxMask::SIZE).map_err(|_| "cannot be read")?.stx_size;
    let mut head = [0u8; 128];
    let n = fs::read_full(&fd, &mut head).map_err(|_| "cannot be read")?;
    superblock::squashfs_sane(head.get(..n).unwrap_or(&[]), size).map(|_| ())
}

/// (device, inode) of a file, to notice that two paths are the same file.
fn identity(p: &CStr) -> Option<(u32, u32, u64)> {
    let st = fs::statx(BorrowedFd::CWD, p, AtFlags::EMPTY, StatxMask::INO).ok()?;
    Some((st.stx_dev_major, st.stx_dev_minor, st.stx_ino))
}

/// Step 6 of an upgrade: makes the next boot use `src` (a checked squashfs, typically the
/// image just swapped in). Copies it to `<image>.new` and fsyncs it, writes the trial marker
/// `<image>.try` ([`TRIAL_TRIES`]), keeps the image known to work as `<image>.old` and renames
/// `<image>.new` over `<image>`, fsyncing the directory after each step; the boot device is
/// read-write only meanwhile. Each step is one log line; a failure undoes what it can, leaves
/// a bootable device and returns the error. Copying takes a while: run it in a child
/// ([`spawn_persist`]) so that PID 1 keeps serving.
pub fn persist(log: &Log, bi: &BootImage, src: &CStr) -> Result<(), Errno> {
    let image = bi.file("")?;
    let new = bi.file(".new")?;
    let old = bi.file(".old")?;
    let marker = bi.file(".try")?;
    let rot = rotation(read_record(), bi.marker());
    if rot == Rotation::Refuse {
        log!(log, Level::Error, "persist: the trial boot of ", image, " has not ended: refusing to make the unproven image the fallback");
        return Err(Errno::EBUSY);
    }
    if let Err(why) = check_squashfs(src) {
        log!(log, Level::Error, "persist: ", src, ": ", why);
        return Err(Errno::EINVAL);
    }
    let src_id = identity(src);
    for p in [&image, &new, &old] {
        if src_id.is_some() && identity(p.c()) == src_id {
            log!(log, Level::Error, "persist: ", src, " is ", p, " itself");
            return Err(Errno::EINVAL);
        }
    }
    let w = Writable::new(log, bi, "persist")?;
    let r = persist_steps(log, bi, src, rot, (&image, &new, &old, &marker));
    drop(w);
    match r {
        Ok(()) => {
            // `<image>` now holds the image running live, which has been healthy.
            if let Err(e) = write_record(BOOT_RECORD, Booted::Image) {
                log!(log, Level::Warn, "persist: write ", BOOT_RECORD, ": ", e);
            }
            log!(log, Level::Info, "persist: the next boot is a trial boot of ", image, " (", u32::from(TRIAL_TRIES), " tries)");
            Ok(())
        }
        Err(e) => {
            log!(log, Level::Error, "persist: failed (", e, "); the next boot uses what is on ", bi.dir);
            Err(e)
        }
    }
}

fn persist_steps(log: &Log, bi: &BootImage, src: &CStr, rot: Rotation, files: (&Path, &Path, &Path, &Path)) -> Result<(), Errno> {
    let (image, new, old, marker) = files;
    fn step<T>(log: &Log, what: &str, obj: &Path, r: Result<T, Errno>) -> Result<T, Errno> {
        if let Err(e) = r {
            log!(log, Level::Error, "persist: ", what, " ", obj, ": ", e);
        }
        r
    }
    // A leftover of an interrupted persist.
    if step(log, "remove the leftover", new, unlink_if_there(new))? {
        log!(log, Level::Info, "persist: removed the leftover ", new);
    }
    // Room for the copy: the image that is not kept goes first. Until the renames below the
    // kept image still boots (as `<image>`, or as `<image>.old` by the boot stage's fallback).
    let discard = if rot == Rotation::KeepOld { image } else { old };
    if step(log, "remove", discard, unlink_if_there(discard))? {
        log!(log, Level::Info, "persist: removed ", discard, " to make room");
    }
    step(log, "fsync", &bi.dir, fsync_dir(&bi.dir))?;
    match copy_file(src, new) {
        Ok(n) => log!(log, Level::Info, "persist: copied ", src, " to ", new, " (", n, " bytes, fsync'd)"),
        Err(e) => {
            log!(log, Level::Error, "persist: copy ", src, " to ", new, ": ", e);
            let _ = unlink_if_there(new);
            let _ = fsync_dir(&bi.dir);
            return Err(e);
        }
    }
    if let Err(why) = check_squashfs(new.c()) {
        log!(log, Level::Error, "persist: the copy ", new, " reads back wrong: ", why);
        let _ = unlink_if_there(new);
        let _ = fsync_dir(&bi.dir);
        return Err(Errno::EIO);
    }
    // The marker before the new image takes its name: an unproven `<image>` never boots
    // without a trial, whenever the power goes.
    if let Err(e) = write_marker(bi, TRIAL_TRIES) {
        log!(log, Level::Error, "persist: write the trial marker ", marker, ": ", e);
        let _ = unlink_if_there(new);
        let _ = unlink_if_there(marker);
        let _ = fsync_dir(&bi.dir);
        return Err(e);
    }
    log!(log, Level::Info, "persist: wrote the trial marker ", marker, " (", u32::from(TRIAL_TRIES), " tries, fsync'd)");
    let mut moved_to_old = false;
    if rot == Rotation::KeepImageAsOld && exists(image) {
        if let Err(e) = rename_durably(image, old, &bi.dir) {
            log!(log, Level::Error, "persist: rename ", image, " to ", old, ": ", e);
            let _ = unlink_if_there(new);
            let _ = unlink_if_there(marker);
            let _ = fsync_dir(&bi.dir);
            return Err(e);
        }
        moved_to_old = true;
        log!(log, Level::Info, "persist: kept ", image, " as ", old, " (fsync'd)");
    }
    if let Err(e) = rename_durably(new, image, &bi.dir) {
        log!(log, Level::Error, "persist: rename ", new, " to ", image, ": ", e);
        if moved_to_old && rename_durably(old, image, &bi.dir).is_ok() {
            log!(log, Level::Info, "persist: renamed ", old, " back to ", image);
        }
        let _ = unlink_if_there(new);
        let _ = unlink_if_there(marker);
        let _ = fsync_dir(&bi.dir);
        return Err(e);
    }
    log!(log, Level::Info, "persist: renamed ", new, " to ", image, " (fsync'd)");
    Ok(())
}

/// [`persist`] in a child process, so that PID 1 keeps serving while the image is copied.
/// The child exits with 0 on success, 1 on failure (it logs why).
pub fn spawn_persist(log: &Log, bi: &BootImage, src: &CStr) -> Result<Pid, Errno> {
    match process::fork()? {
        Fork::Parent(pid) => Ok(pid),
        Fork::Child => {
            let _ = syscall::signal::sigprocmask(syscall::signal::MaskHow::Set, &syscall::signal::SigSet::EMPTY);
            let code = if persist(log, bi, src).is_ok() { 0 } else { 1 };
            process::exit_group(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_parse_strictly() {
        assert_eq!(parse_tries(b"3\n"), Ok(3));
        assert_eq!(parse_tries(b"0"), Ok(0));
        assert_eq!(parse_tries(b"12\r\n"), Ok(12));
        assert_eq!(parse_tries(b"99\n"), Ok(99));
        assert_eq!(parse_tries(b""), Err("empty"));
        assert_eq!(parse_tries(b"\n"), Err("empty"));
        assert_eq!(parse_tries(b"three\n"), Err("not a decimal count of tries"));
        assert_eq!(parse_tries(b" 3\n"), Err("not a decimal count of tries"));
        assert_eq!(parse_tries(b"-1\n"), Err("not a decimal count of tries"));
        assert_eq!(parse_tries(b"3\n4\n"), Err("not a decimal count of tries"));
        assert_eq!(parse_tries(b"100"), Err("more tries than 99"));
        assert_eq!(parse_tries(b"99999999999999999999999"), Err("more tries than 99"));
        assert_eq!(parse_tries(b"\0\0\0"), Err("not a decimal count of tries"));
    }

    #[test]
    fn markers_round_trip() {
        for n in 0..=MAX_TRIES {
            let mut b = [0u8; 4];
            let t = format_tries(n, &mut b).to_vec();
            assert_eq!(t.last(), Some(&b'\n'));
            assert_eq!(parse_tries(&t), Ok(n), "{n}");
        }
        let mut b = [0u8; 4];
        assert_eq!(format_tries(TRIAL_TRIES, &mut b), b"3\n");
    }

    #[test]
    fn the_plan_counts_down_then_falls_back() {
        assert_eq!(Plan::for_marker(Marker::Absent), Plan::Normal);
        assert_eq!(Plan::for_marker(Marker::Tries(3)), Plan::Trial { left: 2 });
        assert_eq!(Plan::for_marker(Marker::Tries(1)), Plan::Trial { left: 0 });
        assert_eq!(Plan::for_marker(Marker::Tries(0)), Plan::Fallback(Fallback::TriesUsed));
        assert_eq!(Plan::for_marker(Marker::Corrupt("empty")), Plan::Fallback(Fallback::Corrupt("empty")));
        assert!(!Plan::Normal.old_first());
        assert!(!Plan::Trial { left: 0 }.old_first());
        assert!(Plan::Fallback(Fallback::TriesUsed).old_first());
        // Three trial boots, then the old image: the marker goes 3, 2, 1, 0.
        let mut m = Marker::Tries(TRIAL_TRIES);
        let mut trials = 0;
        loop {
            match Plan::for_marker(m) {
                Plan::Trial { left } => {
                    trials += 1;
                    m = Marker::Tries(left);
                }
                p => {
                    assert_eq!(p, Plan::Fallback(Fallback::TriesUsed));
                    break;
                }
            }
        }
        assert_eq!(trials, TRIAL_TRIES);
    }

    #[test]
    fn records_round_trip() {
        for b in [Booted::Image, Booted::Old, Booted::Trial { left: 0 }, Booted::Trial { left: 2 }, Booted::Trial { left: 42 }] {
            let mut buf = [0u8; 16];
            let t = format_record(b, &mut buf).to_vec();
            assert_eq!(parse_record(&t), Some(b));
        }
        assert_eq!(parse_record(b"trial \n"), None);
        assert_eq!(parse_record(b"new\n"), None);
        assert_eq!(parse_record(b""), None);
    }

    #[test]
    fn persist_keeps_the_image_known_to_work() {
        assert_eq!(rotation(Some(Booted::Image), Marker::Absent), Rotation::KeepImageAsOld);
        // A persisted image that has not been booted yet was already healthy live.
        assert_eq!(rotation(Some(Booted::Image), Marker::Tries(3)), Rotation::KeepImageAsOld);
        assert_eq!(rotation(Some(Booted::Old), Marker::Absent), Rotation::KeepOld);
        assert_eq!(rotation(Some(Booted::Old), Marker::Tries(0)), Rotation::KeepOld);
        assert_eq!(rotation(Some(Booted::Trial { left: 1 }), Marker::Tries(1)), Rotation::Refuse);
        assert_eq!(rotation(None, Marker::Absent), Rotation::KeepImageAsOld);
        assert_eq!(rotation(None, Marker::Tries(0)), Rotation::KeepOld);
        assert_eq!(rotation(None, Marker::Corrupt("empty")), Rotation::KeepOld);
        assert_eq!(rotation(None, Marker::Tries(2)), Rotation::Refuse);
    }

    #[test]
    fn a_trial_ends_after_the_settle_time_of_health() {
        let mut w = TrialWatch::new(1000, 5000, 60_000);
        assert_eq!(w.step(1000, false, false), TrialStep::Wait);
        assert_eq!(w.next_check(), Some(61_000));
        assert_eq!(w.step(2000, true, false), TrialStep::Wait);
        assert_eq!(w.next_check(), Some(7000));
        // A unit restarting resets the settle time.
        assert_eq!(w.step(3000, false, false), TrialStep::Wait);
        assert_eq!(w.step(4000, true, false), TrialStep::Wait);
        assert_eq!(w.step(8999, true, false), TrialStep::Wait);
        assert_eq!(w.step(9000, true, false), TrialStep::Healthy);
        assert_eq!(w.step(9500, true, false), TrialStep::Done);
        assert_eq!(w.next_check(), None);
    }

    #[test]
    fn a_trial_fails_on_a_failed_unit_or_a_timeout() {
        let mut w = TrialWatch::new(0, 5000, 60_000);
        assert_eq!(w.step(100, true, false), TrialStep::Wait);
        assert_eq!(w.step(200, false, true), TrialStep::Failed("a unit failed"));
        assert_eq!(w.step(300, true, false), TrialStep::Done);
        let mut w = TrialWatch::new(0, 5000, 60_000);
        assert_eq!(w.step(59_999, false, false), TrialStep::Wait);
        assert_eq!(w.step(60_000, false, false), TrialStep::Failed("the units were not healthy in time"));
        // Healthy but not yet settled at the timeout: settling decides, not the timeout.
        let mut w = TrialWatch::new(0, 5000, 60_000);
        assert_eq!(w.step(58_000, true, false), TrialStep::Wait);
        assert_eq!(w.step(62_000, true, false), TrialStep::Wait);
        assert_eq!(w.step(63_000, true, false), TrialStep::Healthy);
    }

    /// The syscall side on the host: a scratch directory stands in for the boot device,
    /// mounted `rw` (so nothing is remounted); images come from mksquashfs.
    mod on_the_host {
        use super::super::*;
        use std::path::PathBuf;

        struct Scratch(PathBuf);

        impl Scratch {
            fn new(name: &str) -> Scratch {
                let p = std::env::temp_dir().join(format!("autoinit-persist-{}-{name}", std::process::id()));
                let _ = std::fs::remove_dir_all(&p);
                std::fs::create_dir_all(p.join("autosvr")).unwrap();
                Scratch(p)
            }
            fn file(&self, name: &str) -> PathBuf {
                self.0.join("autosvr").join(name)
            }
            fn read(&self, name: &str) -> Option<Vec<u8>> {
                std::fs::read(self.file(name)).ok()
            }
            fn names(&self) -> Vec<String> {
                let mut v: Vec<String> =
                    std::fs::read_dir(self.0.join("autosvr")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
                v.sort();
                v
            }
            fn image(&self) -> BootImage {
                let s = Settings { bootopts: "rw", ..Settings::default() };
                BootImage::at(self.0.to_str().unwrap().as_bytes(), &s).unwrap()
            }
        }

        impl Drop for Scratch {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }

        /// A squashfs whose content differs by `tag`.
        fn squashfs(dir: &Scratch, tag: &str) -> Vec<u8> {
            let src = dir.0.join(format!("src-{tag}"));
            std::fs::create_dir_all(&src).unwrap();
            std::fs::write(src.join("version"), tag).unwrap();
            let out = dir.0.join(format!("{tag}.sqfs"));
            let ok = std::process::Command::new("mksquashfs")
                .arg(&src)
                .arg(&out)
                .args(["-noappend", "-quiet", "-no-progress"])
                .status()
                .unwrap()
                .success();
            assert!(ok, "mksquashfs");
            std::fs::read(&out).unwrap()
        }

        fn cstr(p: &std::path::Path) -> std::ffi::CString {
            std::ffi::CString::new(p.to_str().unwrap()).unwrap()
        }

        #[test]
        fn persist_rotates_the_images_and_writes_the_marker() {
            let d = Scratch::new("rotate");
            let (a, b) = (squashfs(&d, "a"), squashfs(&d, "b"));
            std::fs::write(d.file("system.img"), &a).unwrap();
            std::fs::write(d.file("system.img.old"), b"the image before a").unwrap();
            std::fs::write(d.file("system.img.new"), &b[..100]).unwrap();
            let log = Log::console_only();
            persist(&log, &d.image(), &cstr(&d.0.join("b.sqfs"))).unwrap();
            assert_eq!(d.names(), ["system.img", "system.img.old", "system.img.try"]);
            assert_eq!(d.read("system.img"), Some(b));
            assert_eq!(d.read("system.img.old"), Some(a));
            assert_eq!(d.read("system.img.try").as_deref(), Some(&b"3\n"[..]));
            assert_eq!(d.image().marker(), Marker::Tries(TRIAL_TRIES));
            // The trial ends: the marker goes, nothing else.
            end_trial(&log, &d.image()).unwrap();
            assert_eq!(d.names(), ["system.img", "system.img.old"]);
            assert_eq!(d.image().marker(), Marker::Absent);
        }

        #[test]
        fn after_a_failed_trial_the_old_image_is_kept() {
            let d = Scratch::new("failed-trial");
            let (a, bad, c) = (squashfs(&d, "a"), squashfs(&d, "bad"), squashfs(&d, "c"));
            std::fs::write(d.file("system.img"), &bad).unwrap();
            std::fs::write(d.file("system.img.old"), &a).unwrap();
            std::fs::write(d.file("system.img.try"), b"0\n").unwrap();
            persist(&Log::console_only(), &d.image(), &cstr(&d.0.join("c.sqfs"))).unwrap();
            assert_eq!(d.read("system.img"), Some(c));
            assert_eq!(d.read("system.img.old"), Some(a), "the image known to work must stay");
            assert_eq!(d.image().marker(), Marker::Tries(TRIAL_TRIES));
        }

        #[test]
        fn refusals_change_nothing() {
            let d = Scratch::new("refused");
            let (a, b) = (squashfs(&d, "a"), squashfs(&d, "b"));
            std::fs::write(d.file("system.img"), &a).unwrap();
            std::fs::write(d.file("system.img.old"), &b).unwrap();
            std::fs::write(d.file("notes.txt"), b"not an image").unwrap();
            let log = Log::console_only();
            let before = d.names();
            // Not a squashfs; the boot image itself; a trial that has not ended.
            assert_eq!(persist(&log, &d.image(), &cstr(&d.file("notes.txt"))), Err(Errno::EINVAL));
            assert_eq!(persist(&log, &d.image(), &cstr(&d.file("system.img"))), Err(Errno::EINVAL));
            assert_eq!(persist(&log, &d.image(), &cstr(&d.0.join("no-such.img"))), Err(Errno::EINVAL));
            std::fs::write(d.file("system.img.try"), b"2\n").unwrap();
            assert_eq!(persist(&log, &d.image(), &cstr(&d.0.join("b.sqfs"))), Err(Errno::EBUSY));
            std::fs::remove_file(d.file("system.img.try")).unwrap();
            assert_eq!(d.names(), before);
            assert_eq!(d.read("system.img"), Some(a));
            assert_eq!(d.read("system.img.old"), Some(b));
        }
    }
}
