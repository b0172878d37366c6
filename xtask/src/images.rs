//! Test artefacts for the boot stage, built without root by Debian's tools and cached under
//! `target/images/`: system images (squashfs, `mksquashfs`), overlays (GNU `tar`, with
//! `sha256sum` sidecars) and boot disks (disk.rs: a partition table written by `sfdisk` on a
//! sparse file, a vfat filesystem from `mkfs.fat` + `mcopy` or an ext4 one from `mkfs.ext4 -d`,
//! copied in at the partition's offset). The main disk is made by `cargo xtask image`'s own
//! code (board_image.rs) for the architecture's QEMU board, so the boot tests boot what the
//! command writes. Each artefact is checked with the tool that reads it back (`unsquashfs`,
//! `blkid`, `sfdisk --json`) before a test may boot it.
//!
//! Next to every artefact `X` lies `X.key`: the recipe and the hashes of its inputs. A build
//! whose key matches is skipped, so a second run does no work.

use crate::arch::Arch;
use crate::disk::{self, Fs, Identity, Layout, Table};
pub(crate) use crate::disk::run;
use anyhow::{bail, Context, Result};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Part of every key: change it when a recipe below changes.
const RECIPE: &str = "autoinit-images-1";

// What the images and overlays hold, as the tests read it back.
pub const IMAGE_HOSTNAME: &str = "autosvr-test";
pub const IMAGE_MOTD: &str = "image v1";
/// `/opt/autosvr/VERSION` of the normal image.
pub const IMAGE_VERSION: &str = "image v1";
/// `/opt/autosvr/VERSION` of the image installed as `system.img.old`.
pub const OLD_VERSION: &str = "image v0 (old)";
/// `etc/autosvr/image.conf` in the image: 10_net.tar adds a file beside it.
pub const IMAGE_CONF: &str = "from the image";
/// `etc/motd` of 0_base.tar.
pub const BASE_MOTD: &str = "overlay 0_base";
/// `etc/motd` of 20_late.tar, which comes last and wins.
pub const LATE_MOTD: &str = "overlay 20_late";
/// `etc/hostname` of 10_net.tar.
pub const NET_HOSTNAME: &str = "autosvr-net";
/// `etc/autosvr/net.conf`, new in 10_net.tar.
pub const NET_CONF: &str = "overlay 10_net";
/// The mtime of every overlay entry.
pub const OVERLAY_MTIME: u64 = 1_700_000_000;
/// A file only 05_safe.tar adds (on the safe-mode disk).
pub const SAFE_FILE: &str = "etc/autosvr/safe1";
/// The hostile overlay and the offset of its `../escape` header.
pub const EVIL_OVERLAY: &str = "15_evil.tar";
pub const EVIL_OFFSET: u64 = 1024;

/// `etc/autosvr/<120 characters>.conf`: longer than ustar's 100-byte name field, so GNU tar
/// writes it with a pax `path` record.
pub fn net_long_name() -> String {
    format!("etc/autosvr/{}.conf", "l".repeat(120))
}

// The boot disks' identities.
pub const LABEL: &str = "AUTOSVR";
/// MBR disk identifier: PARTUUID of partition 1 is `5eed0001-01`.
pub const MBR_ID: u32 = 0x5eed_0001;
/// vfat volume serial: `UUID=5EED-1234`.
pub const VFAT_SERIAL: u32 = 0x5eed_1234;
pub const GPT_DISK_GUID: &str = "8e1a3c5f-0b0e-4c4d-9a55-00000000a001";
pub const GPT_PART_GUID: &str = "6a1b6c3e-5eed-4b00-8a00-000000000001";
pub const GPT_PART_NAME: &str = "autosvr_boot";
pub const EXT4_UUID: &str = "0e5a4c1d-5eed-4e00-9f00-000000000004";

/// The vfat serial as blkid and the kernel's by-uuid names write it.
pub fn vfat_uuid() -> String {
    format!("{:04X}-{:04X}", VFAT_SERIAL >> 16, VFAT_SERIAL & 0xffff)
}

/// The MBR PARTUUID of partition 1.
pub fn mbr_partuuid() -> String {
    format!("{MBR_ID:08x}-01")
}

/// The identifiers every test disk is written with.
pub fn test_identity() -> Identity {
    Identity {
        mbr_id: MBR_ID,
        gpt_disk: GPT_DISK_GUID.to_string(),
        gpt_part: GPT_PART_GUID.to_string(),
        vfat_serial: VFAT_SERIAL,
        ext4_uuid: EXT4_UUID.to_string(),
    }
}

/// The system image variants.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Image {
    Good,
    /// Another version marker, booted as `system.img.old`.
    Old,
    /// No `_upgrade/` directory.
    NoUpgrade,
    /// The good image with everything after its superblock overwritten: the superblock still
    /// looks right, the kernel cannot mount it.
    Corrupt,
}

impl Image {
    fn file_name(self) -> &'static str {
        match self {
            Image::Good => "system.img",
            Image::Old => "system-old.img",
            Image::NoUpgrade => "system-noupgrade.img",
            Image::Corrupt => "system-corrupt.img",
        }
    }
}

/// The boot disks the tests attach.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Disk {
    /// MBR, FAT32 partition: the good image and 0_base, 10_net, 20_late (+ sidecars).
    Main,
    /// GPT, FAT16 partition, the same tree.
    Gpt,
    /// MBR, ext4 partition, the same tree.
    Ext4,
    /// [`Disk::Main`] plus 05_safe.tar, which `autoinit.safe=1` applies and `=2` does not.
    Safe,
    /// A corrupt `system.img` and a good `system.img.old` (the [`Image::Old`] variant).
    OldImage,
    /// An image without `_upgrade/`.
    NoUpgrade,
    /// 10_net.tar.sha256 does not match 10_net.tar.
    BadSum,
    /// Plus 15_evil.tar (with a correct sidecar), whose second entry is `../escape`.
    Evil,
}

impl Disk {
    pub const ALL: [Disk; 8] =
        [Disk::Main, Disk::Gpt, Disk::Ext4, Disk::Safe, Disk::OldImage, Disk::NoUpgrade, Disk::BadSum, Disk::Evil];

    pub fn name(self) -> &'static str {
        match self {
            Disk::Main => "main",
            Disk::Gpt => "gpt",
            Disk::Ext4 => "ext4",
            Disk::Safe => "safe",
            Disk::OldImage => "old-image",
            Disk::NoUpgrade => "no-upgrade",
            Disk::BadSum => "bad-sum",
            Disk::Evil => "evil",
        }
    }

    /// The filesystem type the kernel reports for its partition.
    pub fn fstype(self) -> &'static str {
        if self == Disk::Ext4 { "ext4" } else { "vfat" }
    }

    /// The disk around the files: the QEMU board's boot partition (`main`, an MBR disk of
    /// 64 MiB with one FAT32 partition from 1 MiB to 63 MiB), as GPT + FAT16 or as ext4.
    fn layout(self, board: &Layout) -> Layout {
        match self {
            Disk::Gpt => Layout { table: Table::Gpt, fs: Fs::Vfat { bits: 16 }, name: Some(GPT_PART_NAME.into()), ..board.clone() },
            Disk::Ext4 => Layout { fs: Fs::Ext4, ..board.clone() },
            _ => board.clone(),
        }
    }

    /// The images it holds: (name in `autosvr/`, variant).
    fn images(self) -> Vec<(&'static str, Image)> {
        match self {
            Disk::OldImage => vec![("system.img", Image::Corrupt), ("system.img.old", Image::Old)],
            Disk::NoUpgrade => vec![("system.img", Image::NoUpgrade)],
            _ => vec![("system.img", Image::Good)],
        }
    }
}

/// Hashes bytes (64-bit FNV-1a): enough to notice a changed input.
pub(crate) fn fnv(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

pub(crate) const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

pub(crate) fn file_hash(p: &Path) -> Result<u64> {
    let data = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
    Ok(fnv(FNV_START, &data))
}

/// Builds `out` with `build(tmp)` unless `out.key` holds `key`; `build` writes `tmp`, which
/// then replaces `out`.
fn cached(out: &Path, key: &str, build: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let key_path = PathBuf::from(format!("{}.key", out.display()));
    if out.exists() && std::fs::read_to_string(&key_path).is_ok_and(|k| k == key) {
        return Ok(());
    }
    let tmp = PathBuf::from(format!("{}.tmp", out.display()));
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_file(&key_path);
    build(&tmp).with_context(|| format!("building {}", out.display()))?;
    std::fs::rename(&tmp, out)?;
    std::fs::write(&key_path, key)?;
    Ok(())
}

/// An empty directory (removed first if it exists).
fn fresh_dir(p: &Path) -> Result<()> {
    if p.exists() {
        std::fs::remove_dir_all(p).with_context(|| format!("removing {}", p.display()))?;
    }
    std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))
}

/// Writes a file with its parents, mode 0644 (or `mode`), whatever the umask.
fn put(root: &Path, rel: &str, data: &[u8], mode: u32) -> Result<()> {
    let p = root.join(rel);
    if let Some(d) = p.parent() {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(&p, data).with_context(|| format!("writing {}", p.display()))?;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Gives every directory under `root` (and `root`) mode 0755.
fn dirs_0755(root: &Path) -> Result<()> {
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))?;
    for e in std::fs::read_dir(root)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            dirs_0755(&e.path())?;
        }
    }
    Ok(())
}

/// Where an architecture's artefacts live.
fn arch_dir(arch: Arch) -> PathBuf {
    crate::root().join("target/images").join(arch.name())
}

/// The artefacts of one architecture, ready to boot.
pub struct Images {
    disks: Vec<(Disk, PathBuf)>,
}

impl Images {
    /// The path of a disk built by [`prepare`].
    pub fn disk(&self, d: Disk) -> Result<&Path> {
        self.disks
            .iter()
            .find(|(x, _)| *x == d)
            .map(|(_, p)| p.as_path())
            .with_context(|| format!("disk {} was not prepared", d.name()))
    }
}

/// Builds (or finds up to date) the disks `wanted` for `arch`, with the system images and
/// overlays they hold. `busybox` is the architecture's static busybox.
pub fn prepare(arch: Arch, busybox: &Path, wanted: &[Disk]) -> Result<Images> {
    let dir = arch_dir(arch);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let board = crate::boot_tests::board_for(arch)?;
    let board_layout = Layout::from_board(&board.boot_partition, board.firmware())?;
    let mut images: Vec<(Image, PathBuf)> = Vec::new();
    for d in wanted {
        for (_, v) in d.images() {
            if !images.iter().any(|(x, _)| *x == v) {
                images.push((v, system_image(arch, busybox, v)?));
            }
        }
    }
    let ov = overlays()?;
    let mut disks = Vec::new();
    for &d in wanted {
        let mut files: Vec<(String, PathBuf)> = Vec::new();
        for (name, v) in d.images() {
            let p = images.iter().find(|(x, _)| *x == v).map(|(_, p)| p.clone()).context("system image not built")?;
            files.push((format!("autosvr/{name}"), p));
        }
        let mut names = vec!["0_base.tar", "10_net.tar", "20_late.tar"];
        match d {
            Disk::Safe => names.push("05_safe.tar"),
            Disk::Evil => names.push(EVIL_OVERLAY),
            _ => {}
        }
        if d == Disk::Main {
            let overlays: Vec<PathBuf> = names.iter().map(|n| ov.join(n)).collect();
            disks.push((d, main_disk(&board, &dir, &files[0].1, &overlays)?));
            continue;
        }
        for n in names {
            files.push((format!("autosvr/{n}"), ov.join(n)));
            let sum = if d == Disk::BadSum && n == "10_net.tar" { "10_net.tar.sha256.wrong".to_string() } else { format!("{n}.sha256") };
            files.push((format!("autosvr/{n}.sha256"), ov.join(sum)));
        }
        disks.push((d, disk(&dir, d, &d.layout(&board_layout), &files)?));
    }
    Ok(Images { disks })
}

/// The main disk, made by `cargo xtask image`'s code for the QEMU board (board_image.rs) with
/// the test identity, in `target/images/<arch>/board/` (boot tree, cmdline.txt, disk.img).
fn main_disk(board: &crate::board::Board, dir: &Path, system_img: &Path, overlays: &[PathBuf]) -> Result<PathBuf> {
    let out = dir.join("board");
    let img = out.join("disk.img");
    let mut key = format!("{RECIPE} main disk of {}: {:016x}", board.name, file_hash(&crate::board::dir().join(format!("{}.toml", board.name)))?);
    for f in std::iter::once(system_img).chain(overlays.iter().map(PathBuf::as_path)) {
        key.push_str(&format!("\n{} {:016x}", f.display(), file_hash(f)?));
    }
    let key_path = out.join("disk.img.key");
    if img.exists() && std::fs::read_to_string(&key_path).is_ok_and(|k| k == key) {
        return Ok(img);
    }
    let _ = std::fs::remove_file(&key_path);
    std::fs::create_dir_all(&out)?;
    let inputs = crate::board_image::BootInputs { system_img, overlays, initramfs: None, identity: Some(test_identity()), disk: true };
    let boot = crate::board_image::make_boot(board, &inputs, &out, &mut crate::board_image::Progress::quiet())?;
    let img = boot.disk.context("make_boot wrote no disk")?;
    std::fs::write(&key_path, key)?;
    Ok(img)
}

// ---------------------------------------------------------------------------------------------
// System images

/// Builds `target/images/<arch>/<variant>.img` and returns its path.
pub(crate) fn system_image(arch: Arch, busybox: &Path, v: Image) -> Result<PathBuf> {
    let dir = arch_dir(arch);
    let out = dir.join(v.file_name());
    if v == Image::Corrupt {
        let good = system_image(arch, busybox, Image::Good)?;
        let key = format!("{RECIPE} {v:?} {:016x}", file_hash(&good)?);
        cached(&out, &key, |tmp| corrupt(&good, tmp))?;
        return Ok(out);
    }
    let key = format!("{RECIPE} {v:?} busybox {:016x}", file_hash(busybox)?);
    cached(&out, &key, |tmp| {
        let tree = dir.join(format!("tree-{}", v.file_name().trim_end_matches(".img")));
        fresh_dir(&tree)?;
        image_tree(arch, busybox, v, &tree)?;
        run(Command::new("mksquashfs")
            .arg(&tree)
            .arg(tmp)
            .args(["-comp", "gzip", "-all-root", "-noappend", "-mkfs-time", "0", "-all-time", "0", "-quiet", "-no-progress"]))?;
        check_image(tmp, v != Image::NoUpgrade)?;
        std::fs::remove_dir_all(&tree)?;
        Ok(())
    })?;
    Ok(out)
}

/// The image's tree: busybox and its applets in usr/bin, merged-/usr symlinks, etc, opt.
pub(crate) fn image_tree(arch: Arch, busybox: &Path, v: Image, tree: &Path) -> Result<()> {
    let bin = tree.join("usr/bin");
    std::fs::create_dir_all(&bin)?;
    std::fs::copy(busybox, bin.join("busybox")).with_context(|| format!("copying {}", busybox.display()))?;
    std::fs::set_permissions(bin.join("busybox"), std::fs::Permissions::from_mode(0o755))?;
    let mut names: Vec<String> = crate::initramfs::applets(arch, busybox)
        .iter()
        .filter_map(|a| a.rsplit('/').next().map(str::to_string))
        .filter(|n| !n.is_empty() && n != "busybox")
        .collect();
    names.sort();
    names.dedup();
    if !names.iter().any(|n| n == "sh") {
        bail!("busybox {} has no sh applet", busybox.display());
    }
    for n in &names {
        symlink("busybox", bin.join(n))?;
    }
    symlink("usr/bin", tree.join("bin"))?;
    symlink("usr/bin", tree.join("sbin"))?;
    if v != Image::NoUpgrade {
        std::fs::create_dir_all(tree.join("_upgrade"))?;
    }
    std::fs::create_dir_all(tree.join("root"))?;
    put(tree, "etc/hostname", format!("{IMAGE_HOSTNAME}\n").as_bytes(), 0o644)?;
    put(tree, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n", 0o644)?;
    put(tree, "etc/group", b"root:x:0:\n", 0o644)?;
    put(tree, "etc/profile", b"export PATH=/usr/bin:/bin\n", 0o644)?;
    put(tree, "etc/motd", format!("{IMAGE_MOTD}\n").as_bytes(), 0o644)?;
    put(tree, "etc/autosvr/image.conf", format!("{IMAGE_CONF}\n").as_bytes(), 0o644)?;
    let version = if v == Image::Old { OLD_VERSION } else { IMAGE_VERSION };
    put(tree, "opt/autosvr/VERSION", format!("{version}\n").as_bytes(), 0o644)?;
    dirs_0755(tree)
}

/// `unsquashfs -s` and `-l`: a gzip squashfs with the entries the tests rely on.
fn check_image(img: &Path, with_upgrade: bool) -> Result<()> {
    let s = run(Command::new("unsquashfs").arg("-s").arg(img))?;
    if !s.contains("Found a valid SQUASHFS 4:0 superblock") || !s.contains("Compression gzip") {
        bail!("unsquashfs -s {}: not a gzip squashfs 4.0:\n{s}", img.display());
    }
    let l = run(Command::new("unsquashfs").arg("-l").arg(img))?;
    let has = |p: &str| l.lines().any(|x| x == format!("squashfs-root/{p}"));
    for p in ["usr/bin/busybox", "usr/bin/sh", "bin", "sbin", "etc/hostname", "etc/passwd", "etc/motd", "opt/autosvr/VERSION"] {
        if !has(p) {
            bail!("unsquashfs -l {}: no {p}", img.display());
        }
    }
    if has("_upgrade") != with_upgrade {
        bail!("unsquashfs -l {}: _upgrade {}expected", img.display(), if with_upgrade { "" } else { "not " });
    }
    Ok(())
}

/// Copies `good` to `out` with everything after the 96-byte superblock overwritten.
fn corrupt(good: &Path, out: &Path) -> Result<()> {
    let mut data = std::fs::read(good)?;
    for b in data.iter_mut().skip(96) {
        *b = 0xa5;
    }
    std::fs::write(out, &data)?;
    let s = run(Command::new("unsquashfs").arg("-s").arg(out))?;
    if !s.contains("Found a valid SQUASHFS") {
        bail!("the corrupt image lost its superblock:\n{s}");
    }
    let listed = Command::new("unsquashfs").arg("-l").arg(out).stdout(Stdio::null()).stderr(Stdio::null()).status()?;
    if listed.success() {
        bail!("unsquashfs -l still reads the corrupt image {}", out.display());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Overlays

/// The GNU tar options of every overlay: root-owned, one mtime, sorted, reproducible.
fn tar(format: &str) -> Command {
    let mut c = Command::new("tar");
    c.arg(format!("--format={format}"))
        .args(["--owner=0", "--group=0", "--numeric-owner", "--sort=name"])
        .arg(format!("--mtime=@{OVERLAY_MTIME}"));
    if format == "pax" {
        // GNU tar otherwise records each file's atime and ctime.
        c.arg("--pax-option=delete=atime,delete=ctime");
    }
    c
}

/// Builds the overlays (architecture-independent) in `target/images/overlays/` and returns
/// that directory: 0_base, 05_safe, 10_net, 20_late and 15_evil `.tar`, each with a `.sha256`
/// sidecar in `sha256sum` format, and `10_net.tar.sha256.wrong`.
pub(crate) fn overlays() -> Result<PathBuf> {
    let dir = crate::root().join("target/images/overlays");
    std::fs::create_dir_all(&dir)?;
    let work = dir.join("work");
    let key = |name: &str| format!("{RECIPE} overlay {name} mtime {OVERLAY_MTIME}");
    // (overlay, the one file it holds, its text)
    let simple = [("0_base.tar", "etc/motd", BASE_MOTD), ("05_safe.tar", SAFE_FILE, "safe mode 1"), ("20_late.tar", "etc/motd", LATE_MOTD)];
    for (name, file, text) in simple {
        cached(&dir.join(name), &key(name), |tmp| {
            let src = work.join(name);
            fresh_dir(&src)?;
            put(&src, file, format!("{text}\n").as_bytes(), 0o644)?;
            dirs_0755(&src)?;
            run(tar("ustar").arg("-C").arg(&src).arg("-cf").arg(tmp).arg("etc"))?;
            Ok(())
        })?;
    }
    // 10_net: a changed file, new ones in a directory the image has, a long (pax) name, an
    // executable, a symlink and a hard link.
    cached(&dir.join("10_net.tar"), &key("10_net.tar"), |tmp| {
        let src = work.join("10_net");
        fresh_dir(&src)?;
        put(&src, "etc/hostname", format!("{NET_HOSTNAME}\n").as_bytes(), 0o644)?;
        put(&src, "etc/autosvr/net.conf", format!("{NET_CONF}\n").as_bytes(), 0o644)?;
        put(&src, &net_long_name(), b"long name\n", 0o644)?;
        put(&src, "etc/autosvr/net-up", b"#!/bin/sh\necho net up\n", 0o755)?;
        symlink("net.conf", src.join("etc/autosvr/current"))?;
        std::fs::hard_link(src.join("etc/autosvr/net.conf"), src.join("etc/autosvr/net.conf.link"))?;
        dirs_0755(&src)?;
        run(tar("pax").arg("-C").arg(&src).arg("-cf").arg(tmp).arg("etc"))?;
        let listing = run(Command::new("tar").arg("-tvf").arg(tmp))?;
        let has_link = listing.lines().any(|l| l.contains("net.conf.link link to etc/autosvr/net.conf"));
        if !has_link || !listing.contains(&net_long_name()) {
            bail!("10_net.tar lacks its hard link or long name:\n{listing}");
        }
        Ok(())
    })?;
    // 15_evil: a harmless file, then `../escape` at byte 1024 (GNU tar keeps the `../` only
    // with --absolute-names).
    cached(&dir.join(EVIL_OVERLAY), &key(EVIL_OVERLAY), |tmp| {
        let src = work.join("15_evil");
        fresh_dir(&src)?;
        put(&src, "root/etc/evil-before", b"before the bad entry\n", 0o644)?;
        put(&src, "escape", b"escaped\n", 0o644)?;
        put(&src, "root/etc/evil-after", b"after the bad entry\n", 0o644)?;
        run(tar("ustar")
            .arg("--absolute-names")
            .arg("-C")
            .arg(src.join("root"))
            .arg("-cf")
            .arg(tmp)
            .args(["etc/evil-before", "../escape", "etc/evil-after"]))?;
        let headers = ustar_names(&std::fs::read(tmp)?);
        if !headers.iter().any(|(off, n)| *off == EVIL_OFFSET && n == "../escape") {
            bail!("15_evil.tar: expected ../escape at offset {EVIL_OFFSET}, found {headers:?}");
        }
        Ok(())
    })?;
    for name in ["0_base.tar", "05_safe.tar", "10_net.tar", "20_late.tar", EVIL_OVERLAY] {
        let sum = run(Command::new("sha256sum").arg(name).current_dir(&dir))?;
        std::fs::write(dir.join(format!("{name}.sha256")), sum)?;
    }
    // Well formed, but the SHA-256 of nothing.
    std::fs::write(
        dir.join("10_net.tar.sha256.wrong"),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  10_net.tar\n",
    )?;
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    Ok(dir)
}

/// (offset, name) of every header in a ustar archive without pax records.
fn ustar_names(tar: &[u8]) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off + 512 <= tar.len() {
        let h = &tar[off..off + 512];
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let name = String::from_utf8_lossy(h[..100].split(|&b| b == 0).next().unwrap_or(&[])).into_owned();
        let size_field = String::from_utf8_lossy(&h[124..136]).trim_matches(|c: char| c == '\0' || c == ' ').to_string();
        let size = u64::from_str_radix(&size_field, 8).unwrap_or(0) as usize;
        out.push((off as u64, name));
        off += 512 + size.div_ceil(512) * 512;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Boot disks

/// Builds `target/images/<arch>/disk-<name>.img` holding `files` (path on the partition, host
/// file) and returns its path.
fn disk(dir: &Path, d: Disk, layout: &Layout, files: &[(String, PathBuf)]) -> Result<PathBuf> {
    let out = dir.join(format!("disk-{}.img", d.name()));
    let mut key = format!("{RECIPE} disk {d:?} {layout:?}");
    for (dest, src) in files {
        key.push_str(&format!("\n{dest} {:016x}", file_hash(src)?));
    }
    cached(&out, &key, |tmp| {
        let work = dir.join(format!("work-disk-{}", d.name()));
        fresh_dir(&work)?;
        let tree = work.join("tree");
        for (dest, src) in files {
            let p = tree.join(dest);
            std::fs::create_dir_all(p.parent().context("no parent")?)?;
            std::fs::copy(src, &p).with_context(|| format!("copying {}", src.display()))?;
        }
        dirs_0755(&tree)?;
        disk::write(layout, &test_identity(), &tree, tmp, &work.join("disk"))?;
        std::fs::remove_dir_all(&work)?;
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_spelt_as_the_kernel_and_blkid_spell_them() {
        assert_eq!(vfat_uuid(), "5EED-1234");
        assert_eq!(mbr_partuuid(), "5eed0001-01");
        assert!(net_long_name().len() > 100);
    }

    #[test]
    fn ustar_headers_are_found_at_their_offsets() {
        let mut tar = vec![0u8; 512 * 5];
        tar[..5].copy_from_slice(b"a.txt");
        tar[124..135].copy_from_slice(b"00000001000"); // 512 bytes
        tar[1024..1033].copy_from_slice(b"../escape");
        tar[1024 + 124..1024 + 135].copy_from_slice(b"00000000000");
        assert_eq!(ustar_names(&tar), [(0, "a.txt".to_string()), (1024, "../escape".to_string())]);
    }

    #[test]
    fn keys_notice_changes() {
        assert_ne!(fnv(FNV_START, b"a"), fnv(FNV_START, b"b"));
        assert_eq!(fnv(FNV_START, b""), FNV_START);
    }
}
