//! Stage 1, the boot stage: from the initramfs to the Autoserver root.
//!
//! In order: load modules, find the boot device, mount it read-only at `/boot_disk` of a new
//! tmpfs root, loop-mount the system image at `/rofs_root`, link the root's top level into
//! the image, seed `/etc`, extract the overlays, switch root (freeing the initramfs), copy
//! autoinit to `/__autoinit__/autoinit` and exec it as stage 2. Every failure is one line
//! naming the action and the object, and a defined fallback: the previous image
//! (`<image>.old`), skipping the overlay, or the rescue shell.

use crate::cmdline::{DeviceSpec, Settings};
use crate::log::{Level, Log};
use crate::persist::{self, Booted, Plan};
use crate::{log, modules_dep, mountopts, partition, sha256, superblock, tar};
use core::ffi::CStr;
use heapless::Vec;
use syscall::fs::{self, AtFlags, Dirents, OFlags, StatxMask};
use syscall::loopdev;
use syscall::mm::AnonMap;
use syscall::mount::{self, MountFlags};
use syscall::process::{self, ArgList};
use syscall::system;
use syscall::time::{self, Clock, Timespec};
use syscall::{AsFd, BorrowedFd, Errno, OwnedFd};

/// The new root, a tmpfs, while it is being built (a directory of the initramfs).
pub(crate) const NEWROOT: &str = "/newroot";
/// Top-level names of the image that are never linked: they are mount points or the root's own.
/// Shared with the upgrade's resync (upgrade.rs), which must skip the same names.
pub(crate) const NOT_LINKED: &[&str] = &["_upgrade", "etc", "proc", "sys", "dev", "run", "tmp", "boot_disk", "data", "rofs_root", "__autoinit__"];
/// The largest modules.dep / modules.builtin read (Debian's full amd64 one is about 450 KiB).
pub const MODULES_FILE_MAX: usize = 2 << 20;
/// How many modules one boot loads, dependencies included.
pub const MAX_LOADED: usize = 64;
/// How many overlays are applied.
pub const MAX_OVERLAYS: usize = 32;
pub use crate::path::{Path, PATH_BYTES};
/// Bytes read from a block device to identify it (filesystem superblocks, partition tables).
const PROBE_BYTES: usize = 64 * 1024;

/// Why stage 1 did not switch root (it execs stage 2 when it does).
pub enum Outcome {
    /// No boot device configured and no image in the initramfs: nothing to boot.
    NoSystem,
    /// Something failed; it has been logged. The caller starts the rescue shell.
    Failed,
}

fn path(parts: &[&[u8]]) -> Result<Path, Errno> {
    Path::of(parts).ok_or(Errno::ENAMETOOLONG)
}

fn as_str(b: &[u8]) -> &str {
    core::str::from_utf8(b).unwrap_or("?")
}

/// Runs stage 1. Returns only if it did not switch root.
pub fn run<const E: usize>(log: &Log, s: &Settings<'_>, env: &ArgList<'_, E>) -> Outcome {
    load_modules(log, s);

    // Where the images are: the boot device, or the initramfs itself. Which of its images
    // boots first depends on a trial of a persisted upgrade (persist.rs).
    let mut plan = Plan::Normal;
    let image_dir = match s.boot {
        None => {
            let Ok(p) = path(&[b"/", s.dir.as_bytes()]) else { return Outcome::Failed };
            let Ok(img) = path(&[p.bytes(), b"/", s.image.as_bytes()]) else { return Outcome::Failed };
            if fs::statx(BorrowedFd::CWD, img.c(), AtFlags::EMPTY, StatxMask::TYPE).is_err() {
                log!(log, Level::Info, "no autoinit.boot= and no ", img, " in the initramfs: nothing to boot");
                return Outcome::NoSystem;
            }
            if make_newroot(log).is_err() {
                return Outcome::Failed;
            }
            p
        }
        Some(spec) => {
            let Some(dev) = wait_for_device(log, spec, s.wait_secs) else { return Outcome::Failed };
            if make_newroot(log).is_err() || mount_boot_disk(log, s, &dev).is_err() {
                return Outcome::Failed;
            }
            plan = persist::stage1_plan(log, s);
            match path(&[NEWROOT.as_bytes(), b"/boot_disk/", s.dir.as_bytes()]) {
                Ok(p) => p,
                Err(_) => return Outcome::Failed,
            }
        }
    };
    match mount_image(log, s, &image_dir, plan) {
        Ok(booted) => persist::stage1_record(log, booted),
        Err(_) => return Outcome::Failed,
    }
    mount_data(log, s);
    if build_root(log).is_err() {
        return Outcome::Failed;
    }
    apply_overlays(log, s, &image_dir);
    switch_root(log, s, env)
}

// ---------------------------------------------------------------------------------------------
// Modules

/// Reads a whole file into a fresh arena of at most `max` bytes.
fn read_file(p: &CStr, max: usize) -> Result<(AnonMap, usize), Errno> {
    let fd = fs::open(p, OFlags::RDONLY | OFlags::CLOEXEC, 0)?;
    let size = fs::fstatx(&fd, StatxMask::SIZE)?.stx_size;
    if size as usize > max || size > max as u64 {
        return Err(Errno::EFBIG);
    }
    let mut map = AnonMap::new((size as usize).max(1))?;
    let n = fs::read_full(&fd, map.as_mut_slice())?;
    Ok((map, n))
}

fn load_modules(log: &Log, s: &Settings<'_>) {
    // The board's list, written by `cargo xtask` into the initramfs, unless the command line
    // names its own.
    let mut board_buf = [0u8; 1024];
    let board_list: &str = match fs::open(c"/etc/autoinit/modules", OFlags::RDONLY | OFlags::CLOEXEC, 0) {
        Ok(fd) => {
            let n = fs::read_full(&fd, &mut board_buf).unwrap_or(0);
            core::str::from_utf8(board_buf.get(..n).unwrap_or(&[])).unwrap_or("")
        }
        Err(_) => "",
    };
    let mut wanted: Vec<&str, MAX_LOADED> = Vec::new();
    match &s.modules {
        Some(list) => {
            for m in list {
                let _ = wanted.push(m);
            }
        }
        None => {
            for m in board_list.split(|c: char| c.is_ascii_whitespace() || c == ',').filter(|m| !m.is_empty()) {
                if wanted.push(m).is_err() {
                    log!(log, Level::Error, "/etc/autoinit/modules: more than ", MAX_LOADED, " modules; the rest are not loaded");
                    break;
                }
            }
        }
    }
    if wanted.is_empty() {
        return;
    }
    let Ok(uts) = system::uname() else { return };
    let release = system::uts_field(&uts.release);
    let Ok(base) = path(&[b"/lib/modules/", release, b"/"]) else { return };
    let Ok(dep_path) = path(&[base.bytes(), b"modules.dep"]) else { return };
    let (dep_map, dep_len) = match read_file(dep_path.c(), MODULES_FILE_MAX) {
        Ok(m) => m,
        Err(e) => {
            log!(log, Level::Error, "read ", dep_path, ": ", e, "; no modules loaded");
            return;
        }
    };
    let dep_text = core::str::from_utf8(dep_map.as_slice().get(..dep_len).unwrap_or(&[])).unwrap_or("");
    let builtin = path(&[base.bytes(), b"modules.builtin"]).ok().and_then(|p| read_file(p.c(), MODULES_FILE_MAX).ok());
    let builtin_text = builtin
        .as_ref()
        .and_then(|(m, n)| core::str::from_utf8(m.as_slice().get(..*n).unwrap_or(&[])).ok())
        .unwrap_or("");

    // Every line checked once, not once per wanted module.
    let deps = match modules_dep::check(dep_text) {
        Ok(d) => d,
        Err(modules_dep::DepError::Malformed { line }) => {
            log!(log, Level::Error, dep_path, ": line ", line, " is not `path: deps`; no modules loaded");
            return;
        }
        Err(_) => return,
    };
    let mut loaded = 0usize;
    for name in &wanted {
        let mut order: Vec<&str, MAX_LOADED> = Vec::new();
        match deps.resolve(&[name], &mut order) {
            Ok(()) => {
                for rel in &order {
                    if load_module(log, &base, rel) {
                        loaded += 1;
                    }
                }
            }
            Err(modules_dep::DepError::UnknownModule(_)) if modules_dep::is_builtin(builtin_text, name) => {
                log!(log, Level::Debug, "module ", *name, " is built into the kernel");
            }
            Err(modules_dep::DepError::UnknownModule(_)) => {
                log!(log, Level::Error, "module ", *name, ": not in modules.dep or modules.builtin of ", as_str(release), "; not loaded");
            }
            Err(_) => log!(log, Level::Error, "module ", *name, ": modules.dep of ", as_str(release), ": a dependency cycle, a chain deeper than ", modules_dep::MAX_DEPTH, " or more than ", MAX_LOADED, " modules; not loaded"),
        }
    }
    log!(log, Level::Info, "loaded ", loaded, " kernel modules");
}

/// Loads one module file; true if it was loaded now (false if already loaded or failed).
fn load_module(log: &Log, base: &Path, rel: &str) -> bool {
    let Ok(p) = path(&[base.bytes(), rel.as_bytes()]) else { return false };
    let fd = match fs::open(p.c(), OFlags::RDONLY | OFlags::CLOEXEC, 0) {
        Ok(fd) => fd,
        Err(e) => {
            log!(log, Level::Error, "open module ", p, ": ", e);
            return false;
        }
    };
    let compressed = modules_dep::compression(rel) != modules_dep::Compression::None;
    let flags = if compressed { system::MODULE_INIT_COMPRESSED_FILE } else { 0 };
    match system::finit_module(&fd, c"", flags) {
        Ok(()) => {
            log!(log, Level::Debug, "loaded module ", rel);
            true
        }
        Err(Errno::EEXIST) => false,
        Err(e) if compressed && (e == Errno::EINVAL || e == Errno::EOPNOTSUPP) => {
            log!(log, Level::Error, "load module ", rel, ": ", e, " (a compressed module needs a kernel with CONFIG_MODULE_DECOMPRESS)");
            false
        }
        Err(e) => {
            log!(log, Level::Error, "load module ", rel, ": ", e);
            false
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The boot device

/// A block device name (`vda1`), without /dev/.
pub struct DevName {
    name: heapless::String<32>,
    fstype: Option<&'static str>,
}

impl DevName {
    fn dev_path(&self) -> Result<Path, Errno> {
        path(&[b"/dev/", self.name.as_bytes()])
    }
}

/// The names in /sys/class/block that may hold a filesystem (no loop or ram devices).
fn for_each_block_device(mut f: impl FnMut(&str) -> bool) {
    let Ok(dir) = fs::open(c"/sys/class/block", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, 0) else { return };
    let mut buf = [0u8; 2048];
    while let Ok(n) = fs::getdents64(&dir, &mut buf) {
        if n == 0 {
            return;
        }
        for e in Dirents::new(buf.get(..n).unwrap_or(&[])) {
            let Ok(name) = e.name.to_str() else { continue };
            if name.starts_with('.') || name.starts_with("loop") || name.starts_with("ram") || name.len() >= 32 {
                continue;
            }
            if f(name) {
                return;
            }
        }
    }
}

/// Reads the first bytes of /dev/NAME into `buf`.
fn read_head<'b>(name: &str, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let p = path(&[b"/dev/", name.as_bytes()]).ok()?;
    let fd = fs::open(p.c(), OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK, 0).ok()?;
    let n = fs::read_full(&fd, buf).ok()?;
    buf.get(..n)
}

/// Identifies the filesystem on /dev/NAME. `arena` holds two PROBE_BYTES halves: the
/// device's head, and a FAT root directory that lies beyond it (FAT32 keeps it in a cluster;
/// its volume-label entry is the one Windows changes, and blkid reads it first).
fn probe_device(name: &str, arena: &mut [u8]) -> Option<superblock::FsId> {
    let (head_buf, extra) = arena.split_at_mut_checked(PROBE_BYTES)?;
    let head = read_head(name, head_buf)?;
    let mut id = superblock::probe(head)?;
    if let Some((offset, len)) = superblock::fat_root_dir_beyond(head) {
        let p = path(&[b"/dev/", name.as_bytes()]).ok()?;
        if let Ok(fd) = fs::open(p.c(), OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK, 0) {
            let buf = extra.get_mut(..len)?;
            if fs::lseek(&fd, fs::Seek::Set(offset)).is_ok() {
                if let Ok(n) = fs::read_full(&fd, buf) {
                    superblock::apply_fat_root_dir_label(&mut id, buf.get(..n).unwrap_or(&[]));
                }
            }
        }
    }
    Some(id)
}

/// A partition's number and its disk's name, from sysfs.
fn partition_of(name: &str) -> Option<(u32, heapless::String<32>)> {
    let p = path(&[b"/sys/class/block/", name.as_bytes(), b"/partition"]).ok()?;
    let fd = fs::open(p.c(), OFlags::RDONLY | OFlags::CLOEXEC, 0).ok()?;
    let mut nb = [0u8; 16];
    let n = fs::read(&fd, &mut nb).ok()?;
    let partno = crate::cmdline::number(core::str::from_utf8(nb.get(..n)?).ok()?.trim(), u32::MAX)?;
    // /sys/class/block/vda1 -> ../../devices/.../block/vda/vda1: the disk is the parent.
    let link = path(&[b"/sys/class/block/", name.as_bytes()]).ok()?;
    let mut target = [0u8; 256];
    let t = fs::readlinkat(BorrowedFd::CWD, link.c(), &mut target).ok()?;
    let t = core::str::from_utf8(t).ok()?;
    let mut parts = t.rsplit('/');
    let _self = parts.next()?;
    let disk = parts.next()?;
    let mut s = heapless::String::new();
    s.push_str(disk).ok()?;
    Some((partno, s))
}

fn matches(spec: &DeviceSpec<'_>, name: &str, arena: &mut [u8]) -> Option<Option<&'static str>> {
    // The filesystem type, for the log line and for mounting with autoinit.bootfs=auto.
    let fstype_of = |arena: &mut [u8]| probe_device(name, arena).map(|id| id.fstype);
    match *spec {
        DeviceSpec::Path(p) => {
            let want = p.strip_prefix("/dev/")?;
            (want == name).then(|| fstype_of(arena))
        }
        DeviceSpec::Label(want) => {
            let id = probe_device(name, arena)?;
            (id.label.as_str() == want).then_some(Some(id.fstype))
        }
        DeviceSpec::Uuid(want) => {
            let id = probe_device(name, arena)?;
            superblock::uuid_matches(&id.uuid, want).then_some(Some(id.fstype))
        }
        DeviceSpec::PartUuid(_) | DeviceSpec::PartLabel(_) => {
            let (partno, disk) = partition_of(name)?;
            let ids = partition::describe(read_head(&disk, arena)?, partno)?;
            let hit = match *spec {
                DeviceSpec::PartUuid(w) => superblock::uuid_matches(&ids.partuuid, w),
                DeviceSpec::PartLabel(w) => ids.matches(&partition::Want::PartLabel(w)),
                _ => false,
            };
            hit.then(|| fstype_of(arena))
        }
    }
}

fn spec_text<'a>(spec: &DeviceSpec<'a>) -> (&'static str, &'a str) {
    match *spec {
        DeviceSpec::Path(p) => ("", p),
        DeviceSpec::Label(v) => ("LABEL=", v),
        DeviceSpec::Uuid(v) => ("UUID=", v),
        DeviceSpec::PartUuid(v) => ("PARTUUID=", v),
        DeviceSpec::PartLabel(v) => ("PARTLABEL=", v),
    }
}

fn wait_for_device(log: &Log, spec: DeviceSpec<'_>, wait_secs: u32) -> Option<DevName> {
    let (kind, value) = spec_text(&spec);
    let mut arena = match AnonMap::new(2 * PROBE_BYTES) {
        Ok(m) => m,
        Err(e) => {
            log!(log, Level::Error, "memory for probing block devices: ", e);
            return None;
        }
    };
    log!(log, Level::Debug, "waiting up to ", wait_secs, " s for ", kind, value);
    let start = time::clock_gettime(Clock::Monotonic);
    loop {
        let mut found: Option<DevName> = None;
        let mut also: Option<heapless::String<32>> = None;
        for_each_block_device(|name| {
            if let Some(fstype) = matches(&spec, name, arena.as_mut_slice()) {
                let mut n = heapless::String::new();
                if n.push_str(name).is_ok() {
                    if found.is_none() {
                        found = Some(DevName { name: n, fstype });
                    } else {
                        // A second match: the choice is arbitrary, say so and stop looking.
                        also = Some(n);
                        return true;
                    }
                }
            }
            false
        });
        if let Some(dev) = found {
            log!(log, Level::Info, "boot device ", kind, value, " is /dev/", dev.name.as_str(), " (", dev.fstype.unwrap_or("type unknown"), ")");
            if let Some(other) = also {
                log!(log, Level::Warn, kind, value, " also matches /dev/", other.as_str(), ": using /dev/", dev.name.as_str(), "; name the device by path or PARTUUID to choose");
            }
            return Some(dev);
        }
        if time::clock_gettime(Clock::Monotonic).millis_since(start) >= wait_secs as u64 * 1000 {
            break;
        }
        let _ = time::sleep(Timespec::from_millis(100));
    }
    log!(log, Level::Error, "waiting for ", kind, value, ": timed out after ", wait_secs, " s; block devices present:");
    let mut any = false;
    for_each_block_device(|name| {
        any = true;
        let id = probe_device(name, arena.as_mut_slice());
        let part = partition_of(name);
        let (label, uuid, fstype) = match &id {
            Some(id) => (id.label.as_str(), id.uuid.as_str(), id.fstype),
            None => ("", "", "-"),
        };
        let mut partuuid: heapless::String<40> = heapless::String::new();
        let mut partlabel: heapless::String<72> = heapless::String::new();
        if let Some((partno, disk)) = part {
            if let Some(ids) = read_head(&disk, arena.as_mut_slice()).and_then(|h| partition::describe(h, partno)) {
                partuuid = ids.partuuid;
                partlabel = ids.partlabel;
            }
        }
        log!(log, Level::Error, "  /dev/", name, " TYPE=", fstype, " LABEL=", label, " UUID=", uuid, " PARTUUID=", partuuid.as_str(), " PARTLABEL=", partlabel.as_str());
        false
    });
    if !any {
        log!(log, Level::Error, "  (none: is the disk driver among the modules?)");
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Mounts

fn mkdir(p: &CStr, mode: u32) -> Result<(), Errno> {
    match fs::mkdirat(BorrowedFd::CWD, p, mode) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(e) => Err(e),
    }
}

fn make_newroot(log: &Log) -> Result<(), Errno> {
    let root = path(&[NEWROOT.as_bytes()])?;
    let r = mkdir(root.c(), 0o755).and_then(|()| {
        mount::mount(Some(c"tmpfs"), root.c(), Some(c"tmpfs"), MountFlags::EMPTY, Some(c"mode=0755"))
    });
    if let Err(e) = r {
        log!(log, Level::Error, "mount tmpfs on ", root, ": ", e);
    }
    r
}

/// The filesystems the kernel can mount from a block device (/proc/filesystems without
/// `nodev`), for `autoinit.bootfs=auto` when the superblock did not say.
fn block_filesystems(buf: &mut [u8; 1024]) -> &str {
    let n = fs::open(c"/proc/filesystems", OFlags::RDONLY | OFlags::CLOEXEC, 0)
        .and_then(|fd| fs::read_full(&fd, buf))
        .unwrap_or(0);
    core::str::from_utf8(buf.get(..n).unwrap_or(&[])).unwrap_or("")
}

/// How to mount one device: the boot disk or the data partition.
struct DeviceMount<'s> {
    /// Under the new root: "boot_disk" or "data".
    dir: &'static str,
    fstype: &'s str,
    options: &'s str,
    /// The command-line key of the options, for error lines.
    options_key: &'static str,
}

fn mount_boot_disk(log: &Log, s: &Settings<'_>, dev: &DevName) -> Result<(), Errno> {
    let m = DeviceMount { dir: "boot_disk", fstype: s.bootfs, options: s.bootopts, options_key: "autoinit.bootopts=" };
    mount_device(log, &m, dev)
}

/// The optional persistent partition (`autoinit.data=`) at /data. Its absence or failure is
/// an error line; the system boots without it.
fn mount_data(log: &Log, s: &Settings<'_>) {
    let Some(spec) = s.data else { return };
    let Some(dev) = wait_for_device(log, spec, s.wait_secs) else {
        log!(log, Level::Error, "booting without /data");
        return;
    };
    let m = DeviceMount { dir: "data", fstype: s.datafs, options: s.dataopts, options_key: "autoinit.dataopts=" };
    if mount_device(log, &m, &dev).is_err() {
        log!(log, Level::Error, "booting without /data");
    }
}

fn mount_device(log: &Log, m: &DeviceMount<'_>, dev: &DevName) -> Result<(), Errno> {
    let target = path(&[NEWROOT.as_bytes(), b"/", m.dir.as_bytes()])?;
    mkdir(target.c(), 0o755)?;
    let devpath = dev.dev_path()?;
    let opts = match mountopts::parse(m.options) {
        Ok(o) => o,
        Err(why) => {
            log!(log, Level::Error, m.options_key, m.options, ": ", why);
            return Err(Errno::EINVAL);
        }
    };
    let try_type = |fstype: &str| -> Result<(), Errno> {
        let t = path(&[fstype.as_bytes()])?;
        mount::mount(Some(devpath.c()), target.c(), Some(t.c()), opts.flags, opts.data())
    };
    let result = if m.fstype != "auto" {
        (m.fstype, try_type(m.fstype))
    } else if let Some(t) = dev.fstype {
        (t, try_type(t))
    } else {
        let mut fsbuf = [0u8; 1024];
        let list = block_filesystems(&mut fsbuf);
        let mut last = ("auto", Err(Errno::ENODEV));
        for line in list.lines().filter(|l| !l.starts_with("nodev")) {
            let t = line.trim();
            if t.is_empty() {
                continue;
            }
            last = (t, try_type(t));
            if last.1.is_ok() {
                break;
            }
        }
        // The loop above borrows `fsbuf`; report with a static name.
        match last {
            (_, Ok(())) => ("auto", Ok(())),
            (_, Err(e)) => ("auto", Err(e)),
        }
    };
    match result {
        (t, Ok(())) => {
            log!(log, Level::Info, "mounted ", devpath, " on /", m.dir, " (", t, ", ", m.options, ")");
            Ok(())
        }
        (t, Err(e)) => {
            log!(log, Level::Error, "mount ", devpath, " on /", m.dir, " (", t, "): ", e);
            Err(e)
        }
    }
}

/// Checks, loop-attaches and mounts `<dir>/<image>`, else `<dir>/<image>.old`; the other way
/// round when `plan` falls back from a failed trial (its reason is already logged).
fn mount_image(log: &Log, s: &Settings<'_>, dir: &Path, plan: Plan) -> Result<Booted, Errno> {
    let target = path(&[NEWROOT.as_bytes(), b"/rofs_root"])?;
    mkdir(target.c(), 0o755)?;
    let image = path(&[dir.bytes(), b"/", s.image.as_bytes()])?;
    let old = path(&[image.bytes(), b".old"])?;
    let as_planned = match plan {
        Plan::Trial { left } => Booted::Trial { left },
        Plan::Normal | Plan::Fallback(_) => Booted::Image,
    };
    let (first, first_booted, second, second_booted) =
        if plan.old_first() { (&old, Booted::Old, &image, Booted::Image) } else { (&image, as_planned, &old, Booted::Old) };
    let e = match try_image(log, first, &target) {
        Ok(()) => return check_upgrade_dir(log).map(|()| first_booted),
        Err(e) => e,
    };
    if plan.old_first() {
        log!(log, Level::Warn, "the previous image ", old, " is unusable too (", e, "): trying ", image);
    } else {
        log!(log, Level::Warn, "system image ", image, " unusable (", e, "): trying the previous image ", old);
    }
    match try_image(log, second, &target) {
        Ok(()) => {
            if !plan.old_first() {
                log!(log, Level::Warn, "booted the PREVIOUS image ", old, " because ", image, " is unusable");
            }
            check_upgrade_dir(log).map(|()| second_booted)
        }
        Err(e) => {
            log!(log, Level::Error, "no usable system image in ", dir);
            Err(e)
        }
    }
}

fn try_image(log: &Log, image: &Path, target: &Path) -> Result<(), Errno> {
    mount_squashfs(log, "system image ", image, target)
}

/// Checks that `image` (a file or a block device) looks like a squashfs, loop-attaches it
/// read-only and mounts it on `target` (read-only, nosuid, nodev). `what` starts the log lines
/// ("system image "). Used for the host's root and for containers' `RootImage=`.
pub fn mount_squashfs(log: &Log, what: &str, image: &Path, target: &Path) -> Result<(), Errno> {
    let file = match fs::open(image.c(), OFlags::RDONLY | OFlags::CLOEXEC, 0) {
        Ok(f) => f,
        Err(e) => {
            log!(log, Level::Error, "open ", what, image, ": ", e);
            return Err(e);
        }
    };
    let size = block_or_file_size(&file);
    let mut head = [0u8; 4096];
    let n = fs::read_full(&file, &mut head).unwrap_or(0);
    if let Err(why) = superblock::squashfs_sane(head.get(..n).unwrap_or(&[]), size) {
        log!(log, Level::Error, what, image, ": not a usable squashfs: ", why);
        return Err(Errno::EINVAL);
    }
    let (loopdev, loopname) = attach_loop(log, &file)?;
    let r = mount::mount(Some(loopname.c()), target.c(), Some(c"squashfs"), MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV, None);
    match r {
        Ok(()) => {
            log!(log, Level::Info, what, image, " on ", loopname, " mounted at ", target);
            Ok(())
        }
        Err(e) => {
            log!(log, Level::Error, "mount ", loopname, " (", image, ") on ", target, " as squashfs: ", e);
            let _ = loopdev::detach(&loopdev);
            Err(e)
        }
    }
}

/// The size of a regular file, or of a block device (its statx size is 0): seek to its end.
fn block_or_file_size(file: &OwnedFd) -> u64 {
    let size = fs::fstatx(file, StatxMask::SIZE).map(|st| st.stx_size).unwrap_or(0);
    if size != 0 {
        return size;
    }
    let end = fs::lseek(file, fs::Seek::End(0)).unwrap_or(0);
    let _ = fs::lseek(file, fs::Seek::Set(0));
    end
}

/// A free loop device with `file` attached read-only.
pub fn attach_loop(log: &Log, file: &OwnedFd) -> Result<(OwnedFd, Path), Errno> {
    let ctl = fs::open(c"/dev/loop-control", OFlags::RDWR | OFlags::CLOEXEC, 0).inspect_err(|&e| {
        log!(log, Level::Error, "open /dev/loop-control: ", e, " (is the loop module loaded?)");
    })?;
    // Another process may take the free device between the two calls: try a few times.
    let mut last = Errno::EBUSY;
    for _ in 0..4 {
        let n = loopdev::get_free(&ctl).inspect_err(|&e| log!(log, Level::Error, "LOOP_CTL_GET_FREE: ", e))?;
        let mut name = Path::new();
        name.push(b"/dev/loop").ok_or(Errno::ENAMETOOLONG)?;
        let mut digits = crate::log::Line::new();
        crate::log::Piece::put(&n, &mut digits);
        name.push(digits.as_bytes()).ok_or(Errno::ENAMETOOLONG)?;
        let dev = fs::open(name.c(), OFlags::RDONLY | OFlags::CLOEXEC, 0)?;
        match loopdev::attach_read_only(&dev, file) {
            Ok(()) => return Ok((dev, name)),
            Err(Errno::EBUSY) => last = Errno::EBUSY,
            Err(e) => {
                log!(log, Level::Error, "attach ", name, ": ", e);
                return Err(e);
            }
        }
    }
    log!(log, Level::Error, "no free loop device: ", last);
    Err(last)
}

fn check_upgrade_dir(log: &Log) -> Result<(), Errno> {
    let p = path(&[NEWROOT.as_bytes(), b"/rofs_root/_upgrade"])?;
    match fs::statx(BorrowedFd::CWD, p.c(), AtFlags::EMPTY, StatxMask::TYPE) {
        Ok(st) if u32::from(st.stx_mode) & fs::mode::IFMT == fs::mode::IFDIR => {}
        _ => log!(log, Level::Warn, "the system image has no /_upgrade directory: on-the-fly upgrades will not work"),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The root's structure

/// Calls `f` with each name in directory `dir` (except `.` and `..`) and its `DT_*` type.
pub(crate) fn for_each_entry(dir: &CStr, mut f: impl FnMut(&CStr, u8) -> Result<(), Errno>) -> Result<(), Errno> {
    let fd = fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, 0)?;
    let mut buf = [0u8; 2048];
    loop {
        let n = fs::getdents64(&fd, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        for e in Dirents::new(buf.get(..n).unwrap_or(&[])) {
            let b = e.name.to_bytes();
            if b == b"." || b == b".." {
                continue;
            }
            f(e.name, e.kind)?;
        }
    }
}

fn build_root(log: &Log) -> Result<(), Errno> {
    link_root(log, NEWROOT.as_bytes())
}

/// Gives the tmpfs at `root`, whose system image is mounted at `root/rofs_root`, the
/// Autoserver layout: the image's top level linked (`usr -> rofs_root/usr`; the image's own
/// top-level symlinks copied as they are), empty `proc sys dev run tmp etc`, and `/etc` a real
/// directory of links into the image's, so any file can be replaced. The host's root (stage
/// 1) and container roots (`RootImage=`) are built by this same function.
pub fn link_root(log: &Log, root: &[u8]) -> Result<(), Errno> {
    let image = path(&[root, b"/rofs_root"])?;
    let mut linked = 0usize;
    let r = for_each_entry(image.c(), |name, kind| {
        let n = name.to_bytes();
        if NOT_LINKED.iter().any(|x| x.as_bytes() == n) {
            return Ok(());
        }
        let link = path(&[root, b"/", n])?;
        let mut tbuf = [0u8; 256];
        let entry = path(&[image.bytes(), b"/", n])?;
        // The image's own top-level symlinks (bin -> usr/bin) are copied as they are.
        let target = if kind == fs::DT_LNK {
            path(&[fs::readlinkat(BorrowedFd::CWD, entry.c(), &mut tbuf)?])?
        } else {
            path(&[b"rofs_root/", n])?
        };
        fs::symlinkat(target.c(), BorrowedFd::CWD, link.c())?;
        linked += 1;
        Ok(())
    });
    if let Err(e) = r {
        log!(log, Level::Error, "linking the root's top level into ", image, ": ", e);
        return Err(e);
    }
    for d in ["proc", "sys", "dev", "run", "tmp", "etc"] {
        mkdir(path(&[root, b"/", d.as_bytes()])?.c(), 0o755)?;
    }
    // /etc: a real directory whose entries point into the image, so any file can be replaced.
    let etc = path(&[image.bytes(), b"/etc"])?;
    let mut seeded = 0usize;
    let r = for_each_entry(etc.c(), |name, _| {
        let link = path(&[root, b"/etc/", name.to_bytes()])?;
        let target = path(&[b"../rofs_root/etc/", name.to_bytes()])?;
        fs::symlinkat(target.c(), BorrowedFd::CWD, link.c())?;
        seeded += 1;
        Ok(())
    });
    match r {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(e) => {
            log!(log, Level::Error, "seeding /etc from ", etc, ": ", e);
            return Err(e);
        }
    }
    log!(log, Level::Debug, "root: ", linked, " top-level links, ", seeded, " /etc entries");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Overlays

/// Whether overlay `name` is applied in safe mode `safe` (`autoinit.safe=`).
pub fn overlay_selected(name: &str, safe: u8) -> bool {
    match safe {
        0 => true,
        1 => name.starts_with('0'),
        _ => name == "0_base.tar",
    }
}

fn apply_overlays(log: &Log, s: &Settings<'_>, dir: &Path) {
    let mut names: Vec<heapless::String<64>, MAX_OVERLAYS> = Vec::new();
    let r = for_each_entry(dir.c(), |name, _| {
        let Ok(n) = name.to_str() else { return Ok(()) };
        if !n.ends_with(".tar") || !overlay_selected(n, s.safe) {
            return Ok(());
        }
        let mut owned = heapless::String::new();
        if owned.push_str(n).is_err() {
            log!(log, Level::Error, "overlay name too long (64 bytes at most), skipped: ", n);
            return Ok(());
        }
        if names.push(owned).is_err() {
            log!(log, Level::Error, "more than ", MAX_OVERLAYS, " overlays; skipped ", n);
        }
        Ok(())
    });
    if let Err(e) = r {
        log!(log, Level::Error, "listing overlays in ", dir, ": ", e);
        return;
    }
    names.sort_unstable();
    let Ok(root) = fs::open(c"/newroot", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, 0) else { return };
    for name in &names {
        let Ok(p) = path(&[dir.bytes(), b"/", name.as_bytes()]) else { continue };
        if !checksum_ok(log, &p, name) {
            continue;
        }
        let file = match fs::open(p.c(), OFlags::RDONLY | OFlags::CLOEXEC, 0) {
            Ok(f) => f,
            Err(e) => {
                log!(log, Level::Error, "overlay ", name.as_str(), ": open: ", e);
                continue;
            }
        };
        let mut src = FdSource(file);
        let mut dst = RootTarget { root: root.as_fd(), file: None };
        match tar::extract(&mut src, &mut dst) {
            Ok(st) => {
                let entries = [st.files, st.dirs, st.symlinks, st.hardlinks].iter().map(|&n| n as u64).sum::<u64>();
                log!(log, Level::Info, "overlay ", name.as_str(), ": ", entries, " entries")
            }
            Err(e) => log!(log, Level::Error, "overlay ", name.as_str(), ": offset ", e.offset, ": ", e.kind.describe(), "; the rest of it is not applied"),
        }
    }
}

/// If `<overlay>.sha256` exists, the overlay must match it.
fn checksum_ok(log: &Log, overlay: &Path, name: &str) -> bool {
    let Ok(side) = path(&[overlay.bytes(), b".sha256"]) else { return false };
    let mut text = [0u8; 256];
    let n = match fs::open(side.c(), OFlags::RDONLY | OFlags::CLOEXEC, 0) {
        Ok(fd) => fs::read_full(&fd, &mut text).unwrap_or(0),
        Err(Errno::ENOENT) => return true,
        Err(e) => {
            log!(log, Level::Error, "overlay ", name, ": open ", side, ": ", e, "; skipped");
            return false;
        }
    };
    let expected = match sha256::parse_sidecar(text.get(..n).unwrap_or(&[]), name) {
        Ok(h) => h,
        Err(why) => {
            log!(log, Level::Error, "overlay ", name, ": ", side, ": ", why, "; skipped");
            return false;
        }
    };
    let Ok(fd) = fs::open(overlay.c(), OFlags::RDONLY | OFlags::CLOEXEC, 0) else { return false };
    let mut h = sha256::Sha256::new();
    let mut buf = [0u8; 4096];
    loop {
        match fs::read(&fd, &mut buf) {
            Ok(0) => break,
            Ok(k) => h.update(buf.get(..k).unwrap_or(&[])),
            Err(Errno::EINTR) => {}
            Err(e) => {
                log!(log, Level::Error, "overlay ", name, ": read: ", e, "; skipped");
                return false;
            }
        }
    }
    if h.finish() != expected {
        log!(log, Level::Error, "overlay ", name, ": SHA-256 does not match ", side, "; skipped");
        return false;
    }
    true
}

struct FdSource(OwnedFd);

impl tar::Source for FdSource {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        syscall::errno::retry(|| fs::read(&self.0, buf))
    }
}

/// Writes overlay entries under the new root. Paths are relative to it.
struct RootTarget<'r> {
    root: BorrowedFd<'r>,
    file: Option<OwnedFd>,
}

impl RootTarget<'_> {
    /// Replaces whatever is at `p` (a symlink into the image, typically) so that a new
    /// entry can be created; a directory is left alone.
    fn clear(&self, p: &CStr) {
        let _ = fs::unlinkat(self.root, p, AtFlags::EMPTY);
    }

    /// Makes every parent of `p` a real directory of the tmpfs: a parent that is a link into
    /// the read-only image (`etc/ssh -> ../rofs_root/etc/ssh`) becomes a directory of links to
    /// that directory's entries, so the overlay can add files beside them.
    fn promote_parents(&self, p: &CStr) -> Result<(), Errno> {
        let bytes = p.to_bytes();
        for (i, _) in bytes.iter().enumerate().filter(|(_, b)| **b == b'/') {
            let prefix = path(&[bytes.get(..i).unwrap_or(&[])])?;
            let st = match fs::statx(self.root, prefix.c(), AtFlags::SYMLINK_NOFOLLOW, StatxMask::TYPE) {
                Ok(st) => st,
                Err(_) => continue,
            };
            if u32::from(st.stx_mode) & fs::mode::IFMT != fs::mode::IFLNK {
                continue;
            }
            let mut tbuf = [0u8; 256];
            let target = path(&[fs::readlinkat(self.root, prefix.c(), &mut tbuf)?])?;
            let t = target.bytes();
            if !(t.starts_with(b"rofs_root/") || t.starts_with(b"../rofs_root/") || t.starts_with(b"/rofs_root/")) {
                // Paths are resolved from the initramfs, not inside the new root: a link that
                // is absolute or climbs with '..' could lead out of it, so refuse to write
                // through one.
                if t.starts_with(b"/") || t.split(|b| *b == b'/').any(|c| c == b"..") {
                    return Err(Errno::ELOOP);
                }
                continue;
            }
            // The directory in the image, as seen from the new root.
            let rest = t.splitn(2, |b| *b == b'/').nth(1).unwrap_or(&[]);
            let rest = if t.starts_with(b"../") { rest.splitn(2, |b| *b == b'/').nth(1).unwrap_or(&[]) } else { rest };
            let src = path(&[NEWROOT.as_bytes(), b"/rofs_root/", rest])?;
            fs::unlinkat(self.root, prefix.c(), AtFlags::EMPTY)?;
            fs::mkdirat(self.root, prefix.c(), 0o755)?;
            let depth = prefix.bytes().iter().filter(|b| **b == b'/').count() + 1;
            let root = self.root;
            for_each_entry(src.c(), |name, _| {
                let link = path(&[prefix.bytes(), b"/", name.to_bytes()])?;
                let mut up = Path::new();
                for _ in 0..depth {
                    up.push(b"../").ok_or(Errno::ENAMETOOLONG)?;
                }
                let target = path(&[up.bytes(), b"rofs_root/", rest, b"/", name.to_bytes()])?;
                fs::symlinkat(target.c(), root, link.c())
            })?;
        }
        Ok(())
    }
}

impl tar::Target for RootTarget<'_> {
    fn mkdir(&mut self, p: &CStr, mode: u32) -> Result<(), Errno> {
        self.promote_parents(p)?;
        match fs::mkdirat(self.root, p, mode & 0o7777) {
            Ok(()) => Ok(()),
            Err(Errno::EEXIST) => {
                let st = fs::statx(self.root, p, AtFlags::SYMLINK_NOFOLLOW, StatxMask::TYPE)?;
                match u32::from(st.stx_mode) & fs::mode::IFMT {
                    fs::mode::IFDIR => Ok(()),
                    // A link into the image where the overlay wants a directory: promote it,
                    // as the parent of a (hypothetical) child.
                    fs::mode::IFLNK => {
                        let child = Path::of(&[p.to_bytes(), b"/x"]).ok_or(Errno::ENAMETOOLONG)?;
                        self.promote_parents(child.c())
                    }
                    // A file in the way: the extractor removes it and retries.
                    _ => Err(Errno::EEXIST),
                }
            }
            Err(e) => Err(e),
        }
    }

    fn create(&mut self, p: &CStr, mode: u32) -> Result<(), Errno> {
        self.promote_parents(p)?;
        self.clear(p);
        let fd = fs::openat(self.root, p, OFlags::WRONLY | OFlags::CREAT | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC, mode & 0o7777)?;
        self.file = Some(fd);
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), Errno> {
        match &self.file {
            Some(fd) => fs::write_all(fd, data),
            None => Err(Errno::EBADF),
        }
    }

    fn close_file(&mut self) -> Result<(), Errno> {
        match self.file.take() {
            Some(fd) => fs::close(fd),
            None => Ok(()),
        }
    }

    fn symlink(&mut self, target: &CStr, p: &CStr) -> Result<(), Errno> {
        self.promote_parents(p)?;
        self.clear(p);
        fs::symlinkat(target, self.root, p)
    }

    fn hardlink(&mut self, existing: &CStr, p: &CStr) -> Result<(), Errno> {
        self.promote_parents(p)?;
        self.clear(p);
        fs::linkat(self.root, existing, self.root, p)
    }

    fn set_meta(&mut self, p: &CStr, mode: u32, uid: u32, gid: u32, mtime: i64, is_symlink: bool) -> Result<(), Errno> {
        fs::fchownat(self.root, p, uid, gid, AtFlags::SYMLINK_NOFOLLOW)?;
        if !is_symlink {
            // After the chown, which clears set-id bits.
            fs::fchmodat(self.root, p, mode & 0o7777)?;
        }
        fs::set_mtime(self.root, p, mtime, AtFlags::SYMLINK_NOFOLLOW)
    }

    fn remove(&mut self, p: &CStr) -> Result<(), Errno> {
        match fs::unlinkat(self.root, p, AtFlags::EMPTY) {
            Err(Errno::EISDIR) => fs::unlinkat(self.root, p, AtFlags::REMOVEDIR),
            r => r,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Switching root

/// Deletes the initramfs (everything on the root's device, without crossing mount points),
/// as switch_root does: its memory is freed once nothing refers to it.
fn remove_tree(dir: BorrowedFd<'_>, root_dev: (u32, u32), depth: u32) {
    if depth > 32 {
        return;
    }
    let mut buf = [0u8; 1024];
    loop {
        let Ok(n) = fs::getdents64(dir, &mut buf) else { return };
        if n == 0 {
            return;
        }
        let mut removed_any = false;
        for e in Dirents::new(buf.get(..n).unwrap_or(&[])) {
            let b = e.name.to_bytes();
            if b == b"." || b == b".." {
                continue;
            }
            if e.kind == fs::DT_DIR {
                let Ok(st) = fs::statx(dir, e.name, AtFlags::SYMLINK_NOFOLLOW, StatxMask::TYPE) else { continue };
                if (st.stx_dev_major, st.stx_dev_minor) != root_dev {
                    continue; // a mount point: /newroot
                }
                if let Ok(sub) = fs::openat(dir, e.name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, 0) {
                    remove_tree(sub.as_fd(), root_dev, depth + 1);
                }
                removed_any |= fs::unlinkat(dir, e.name, AtFlags::REMOVEDIR).is_ok();
            } else {
                removed_any |= fs::unlinkat(dir, e.name, AtFlags::EMPTY).is_ok();
            }
        }
        if !removed_any {
            // Nothing more can go (mount points only): stop instead of re-reading forever.
            let _ = fs::lseek(dir, fs::Seek::Set(0));
            let Ok(n2) = fs::getdents64(dir, &mut buf) else { return };
            if n2 == n {
                return;
            }
        }
    }
}

fn switch_root<const E: usize>(log: &Log, s: &Settings<'_>, env: &ArgList<'_, E>) -> Outcome {
    log!(log, Level::Info, "switching root");
    for (src, dst) in [(c"/dev", c"/newroot/dev"), (c"/proc", c"/newroot/proc"), (c"/sys", c"/newroot/sys")] {
        if let Err(e) = mount::mount(Some(src), dst, None, MountFlags::MOVE, None) {
            log!(log, Level::Error, "move ", src, " to ", dst, ": ", e);
            return Outcome::Failed;
        }
    }
    if let Err(e) = mount::chdir(c"/newroot") {
        log!(log, Level::Error, "chdir /newroot: ", e);
        return Outcome::Failed;
    }
    match (fs::open(c"/", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, 0), fs::statx(BorrowedFd::CWD, c"/", AtFlags::EMPTY, StatxMask::TYPE)) {
        (Ok(old_root), Ok(st)) => remove_tree(old_root.as_fd(), (st.stx_dev_major, st.stx_dev_minor), 0),
        _ => log!(log, Level::Warn, "could not open the initramfs to free it"),
    }
    if let Err(e) = mount::mount(Some(c"."), c"/", None, MountFlags::MOVE, None) {
        log!(log, Level::Error, "move /newroot to /: ", e);
        return Outcome::Failed;
    }
    if let Err(e) = mount::chroot(c".").and_then(|()| mount::chdir(c"/")) {
        log!(log, Level::Error, "chroot into the new root: ", e);
        return Outcome::Failed;
    }
    if let Err(e) = copy_self() {
        log!(log, Level::Error, "copy autoinit to /__autoinit__/autoinit: ", e);
        return Outcome::Failed;
    }
    let mut argv: ArgList<'_, 3> = ArgList::new();
    let program: &CStr = match s.init {
        Some(_) => c"", // replaced below
        None => c"/__autoinit__/autoinit",
    };
    let init_path = s.init.and_then(|p| path(&[p.as_bytes()]).ok());
    let program = init_path.as_ref().map(|p| p.c()).unwrap_or(program);
    let _ = argv.push(program);
    if s.init.is_none() {
        let _ = argv.push(crate::pid1::STAGE2_ARG);
    }
    let err = process::execve(program, &argv, env);
    log!(log, Level::Error, "exec ", program, " as stage 2: ", err);
    Outcome::Failed
}

/// Copies the running binary (the initramfs's /init, already deleted but still open through
/// /proc/self/exe) to the tmpfs, so that PID 1 never depends on the image.
fn copy_self() -> Result<(), Errno> {
    let src = fs::open(c"/proc/self/exe", OFlags::RDONLY | OFlags::CLOEXEC, 0)?;
    mkdir(c"/__autoinit__", 0o755)?;
    let dst = fs::open(c"/__autoinit__/autoinit", OFlags::WRONLY | OFlags::CREAT | OFlags::TRUNC | OFlags::CLOEXEC, 0o755)?;
    loop {
        match fs::sendfile(&dst, &src, 1 << 20) {
            Ok(0) => break,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e),
        }
    }
    fs::fsync(&dst).or(Ok(()))
}
