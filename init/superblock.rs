//! Filesystem identification from the first bytes of a block device: type, label and UUID,
//! as `blkid -p` reports them, for `LABEL=` and `UUID=` on the command line.
//!
//! Pure code (no syscalls), unit-tested on the host against images made by mkfs.fat,
//! mke2fs and mksquashfs and compared with blkid. Garbage or a short buffer gives `None`.
//!
//! Known filesystems: vfat (FAT12/16/32), ext2/3/4, squashfs (type only: it has no label or
//! UUID). [`squashfs_sane`] checks a squashfs superblock in depth before an image is used.

use heapless::String;

/// How many bytes of the device [`probe`] wants: the superblocks it knows all lie in the
/// first 64 KiB. A FAT root directory beyond it is not searched for the label; see
/// [`fat_root_dir_beyond`].
pub const PROBE_BYTES: usize = 64 * 1024;

/// What [`probe`] found. An empty `label` or `uuid` means the filesystem has none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsId {
    /// The name the kernel mounts it as: "vfat", "ext4", "ext3", "ext2" or "squashfs".
    pub fstype: &'static str,
    pub label: String<64>,
    pub uuid: String<40>,
}

/// Identifies the filesystem whose first bytes are `head` (ideally [`PROBE_BYTES`], less if
/// the device is smaller). Squashfs is tried first, then ext (superblock at 1024), then FAT,
/// so a FAT boot sector left behind by an older filesystem does not hide an ext one.
pub fn probe(head: &[u8]) -> Option<FsId> {
    if head.get(..4) == Some(SQUASHFS_MAGIC) && le16(head, 28) == Some(4) {
        return Some(FsId { fstype: "squashfs", label: String::new(), uuid: String::new() });
    }
    probe_ext(head).or_else(|| probe_vfat(head))
}

/// Compares a UUID or PARTUUID as found on disk with one from the command line, ignoring
/// ASCII case (blkid prints FAT serials upper-case, the kernel's PARTUUID match is
/// case-insensitive too).
pub fn uuid_matches(found: &str, wanted: &str) -> bool {
    !found.is_empty() && found.eq_ignore_ascii_case(wanted)
}

// ---------------------------------------------------------------------------------------
// ext2/3/4

const EXT_SB: usize = 1024;
const EXT_MAGIC: u16 = 0xEF53;
const EXT_COMPAT_HAS_JOURNAL: u32 = 0x4;
const EXT_INCOMPAT_JOURNAL_DEV: u32 = 0x8;
/// Incompat features ext3 understands (filetype, recover, meta_bg); any other makes it ext4.
const EXT3_INCOMPAT_SUPP: u32 = 0x2 | 0x4 | 0x10;
/// Ro-compat features ext3 understands (sparse_super, large_file, btree_dir).
const EXT3_RO_COMPAT_SUPP: u32 = 0x1 | 0x2 | 0x4;

fn probe_ext(head: &[u8]) -> Option<FsId> {
    let sb = head.get(EXT_SB..EXT_SB + 1024)?;
    if le16(sb, 0x38)? != EXT_MAGIC {
        return None;
    }
    let compat = le32(sb, 0x5C)?;
    let incompat = le32(sb, 0x60)?;
    let ro_compat = le32(sb, 0x64)?;
    if incompat & EXT_INCOMPAT_JOURNAL_DEV != 0 {
        // An external journal, not a filesystem that can be mounted.
        return None;
    }
    // blkid's rule: ext4 as soon as ext3 would not understand a feature.
    let fstype = if incompat & !EXT3_INCOMPAT_SUPP != 0 || ro_compat & !EXT3_RO_COMPAT_SUPP != 0 {
        "ext4"
    } else if compat & EXT_COMPAT_HAS_JOURNAL != 0 {
        "ext3"
    } else {
        "ext2"
    };
    let mut id = FsId { fstype, label: String::new(), uuid: String::new() };
    let name = sb.get(0x78..0x88)?;
    let name = name.split(|&b| b == 0).next().unwrap_or(&[]);
    push_utf8_lossy(&mut id.label, name);
    let uuid: &[u8; 16] = sb.get(0x68..0x78)?.try_into().ok()?;
    if uuid.iter().any(|&b| b != 0) {
        id.uuid = format_uuid(uuid);
    }
    Some(id)
}

// ---------------------------------------------------------------------------------------
// FAT

const FAT12_MAX: u32 = 0xFF4;
const FAT16_MAX: u32 = 0xFFF4;
const FAT32_MAX: u32 = 0x0FFF_FFF6;
const NO_NAME: &[u8; 11] = b"NO NAME    ";
const DIR_ENTRY: usize = 32;
const ATTR_VOLUME_ID: u8 = 0x08;
const ATTR_DIR: u8 = 0x10;
const ATTR_LONG_NAME: u8 = 0x0F;
/// How many clusters of a FAT32 root directory are followed looking for the label.
const MAX_ROOT_CLUSTERS: u32 = 100;

/// The geometry of a FAT boot sector that passed the checks blkid makes.
struct Fat {
    sector_size: u32,
    cluster_sectors: u32,
    reserved: u32,
    /// Sectors of all FATs together.
    fats_sectors: u32,
    root_entries: u32,
    /// FAT32: the first cluster of the root directory.
    root_cluster: Option<u32>,
}

/// A valid FAT boot sector at the start of `head`, or `None`. The partition parser uses it
/// too: a FAT filesystem on a whole disk also ends its first sector with 55 AA.
pub(crate) fn fat_boot_sector(head: &[u8]) -> Option<FatKind> {
    fat_geometry(head).map(|f| if f.root_cluster.is_some() { FatKind::Fat32 } else { FatKind::Fat12Or16 })
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(crate) enum FatKind {
    Fat12Or16,
    Fat32,
}

fn fat_geometry(head: &[u8]) -> Option<Fat> {
    let bs = head.get(..512)?;
    let magic_at = |off: usize, m: &[u8]| bs.get(off..off + m.len()) == Some(m);
    let has_magic = magic_at(0x52, b"MSWIN")
        || magic_at(0x52, b"FAT32   ")
        || magic_at(0x36, b"MSDOS")
        || magic_at(0x36, b"FAT16   ")
        || magic_at(0x36, b"FAT12   ")
        || magic_at(0x36, b"FAT     ");
    if !has_magic {
        // Without a type string, insist on the boot signature, and rule out the FAT-like
        // pseudo boot sectors OS/2 puts in front of JFS and HPFS.
        if bs.get(510..512) != Some(&[0x55, 0xAA][..]) || magic_at(0x36, b"JFS     ") || magic_at(0x36, b"HPFS    ") {
            return None;
        }
    }
    let sector_size = u32::from(le16(bs, 0x0B)?);
    let cluster_sectors = u32::from(*bs.get(0x0D)?);
    let reserved = u32::from(le16(bs, 0x0E)?);
    let fats = u32::from(*bs.get(0x10)?);
    let root_entries = u32::from(le16(bs, 0x11)?);
    let media = *bs.get(0x15)?;
    if fats == 0 || reserved == 0 || !(media >= 0xF8 || media == 0xF0) {
        return None;
    }
    if !cluster_sectors.is_power_of_two() || !sector_size.is_power_of_two() || !(512..=4096).contains(&sector_size) {
        return None;
    }
    let sectors = match le16(bs, 0x13)? {
        0 => le32(bs, 0x20)?,
        n => u32::from(n),
    };
    let fat16_length = u32::from(le16(bs, 0x16)?);
    let fat32_length = le32(bs, 0x24)?;
    let fat32 = fat16_length == 0 && fat32_length != 0;
    if fat16_length == 0 && !fat32 {
        return None;
    }
    let fat_length = if fat32 { fat32_length } else { fat16_length };
    let fats_sectors = fat_length.checked_mul(fats)?;
    let root_sectors = root_entries.checked_mul(DIR_ENTRY as u32)?.div_ceil(sector_size);
    let data_sectors = sectors.checked_sub(reserved.checked_add(fats_sectors)?.checked_add(root_sectors)?)?;
    let clusters = data_sectors / cluster_sectors;
    let max = if fat32 {
        FAT32_MAX
    } else if clusters > FAT12_MAX {
        FAT16_MAX
    } else {
        FAT12_MAX
    };
    if clusters > max {
        return None;
    }
    let root_cluster = if fat32 { Some(le32(bs, 0x2C)?) } else { None };
    Some(Fat { sector_size, cluster_sectors, reserved, fats_sectors, root_entries, root_cluster })
}

fn probe_vfat(head: &[u8]) -> Option<FsId> {
    let fat = fat_geometry(head)?;
    // The BPB fields that follow the common part sit 28 bytes later on FAT32.
    let (bpb_label, serial) = match fat.root_cluster {
        None => (head.get(0x2B..0x36)?, head.get(0x27..0x2B)?),
        Some(_) => (head.get(0x47..0x52)?, head.get(0x43..0x47)?),
    };
    // Like blkid: the volume-label entry of the root directory wins (Windows relabels only
    // that one), the boot sector's copy is the fallback.
    let label = match root_dir_label(head, &fat) {
        Some(l) if l != NO_NAME => l,
        _ => bpb_label,
    };
    let mut id = FsId { fstype: "vfat", label: fat_label(label), uuid: String::new() };
    // blkid's form: the serial as a little-endian u32, in two upper-case halves.
    for (i, &b) in serial.iter().rev().enumerate() {
        if i == 2 {
            let _ = id.uuid.push('-');
        }
        push_hex(&mut id.uuid, b, true);
    }
    Some(id)
}

/// An 11-byte FAT label as text: "NO NAME" is none, trailing spaces go. Labels are in an
/// OEM code page, so only printable ASCII is passed through, anything else becomes '?'.
fn fat_label(raw: &[u8]) -> String<64> {
    let mut s = String::new();
    if raw != NO_NAME {
        let raw = raw.split(|&b| b == 0).next().unwrap_or(&[]);
        let end = raw.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
        for &b in raw.get(..end).unwrap_or(&[]) {
            let _ = s.push(if b.is_ascii() && !b.is_ascii_control() { char::from(b) } else { '?' });
        }
    }
    s
}

/// Where the root directory of the FAT filesystem starting with `head` lies when `head` does
/// not reach it: (byte offset, length) of its first part (FAT32: its first cluster), at most
/// [`PROBE_BYTES`]. It follows the FATs, so on volumes of more than a few tens of MiB it is
/// beyond [`PROBE_BYTES`] and [`probe`] reports the boot sector's copy of the label. A
/// caller that wants the root-directory label (what blkid reports, and the only one Windows
/// changes when relabelling) reads these bytes and passes them to
/// [`apply_fat_root_dir_label`]. `None` if not FAT or already inside `head`.
pub fn fat_root_dir_beyond(head: &[u8]) -> Option<(u64, usize)> {
    let fat = fat_geometry(head)?;
    let ss = u64::from(fat.sector_size);
    let first_data = u64::from(fat.reserved) + u64::from(fat.fats_sectors);
    let (sector, len) = match fat.root_cluster {
        None => (first_data, u64::from(fat.root_entries) * DIR_ENTRY as u64),
        Some(c) => {
            let c = u64::from(c.checked_sub(2)?);
            let spc = u64::from(fat.cluster_sectors);
            (first_data.checked_add(c.checked_mul(spc)?)?, spc.checked_mul(ss)?)
        }
    };
    let offset = sector.checked_mul(ss)?;
    if offset < head.len() as u64 || len == 0 {
        return None;
    }
    Some((offset, usize::try_from(len.min(PROBE_BYTES as u64)).ok()?))
}

/// Takes the volume label from `root_dir` (the bytes [`fat_root_dir_beyond`] named) when it
/// has one, as blkid does; otherwise `id` keeps the boot sector's label.
pub fn apply_fat_root_dir_label(id: &mut FsId, root_dir: &[u8]) {
    if id.fstype != "vfat" {
        return;
    }
    let entries = u32::try_from(root_dir.len() / DIR_ENTRY).unwrap_or(u32::MAX);
    if let Some(raw) = search_label(root_dir, 0, entries).filter(|l| *l != NO_NAME) {
        id.label = fat_label(raw);
    }
}

/// The 11-byte volume label from the root directory, as far as it lies inside `head`.
fn root_dir_label<'h>(head: &'h [u8], fat: &Fat) -> Option<&'h [u8; 11]> {
    let ss = u64::from(fat.sector_size);
    let first_data = u64::from(fat.reserved) + u64::from(fat.fats_sectors);
    match fat.root_cluster {
        None => search_label(head, first_data.checked_mul(ss)?, fat.root_entries),
        Some(mut cluster) => {
            let cluster_bytes = u64::from(fat.cluster_sectors).checked_mul(ss)?;
            let entries = u32::try_from(cluster_bytes / DIR_ENTRY as u64).ok()?;
            for _ in 0..MAX_ROOT_CLUSTERS {
                if !(2..0x0FFF_FFF8).contains(&cluster) {
                    break;
                }
                let sector = first_data.checked_add(u64::from(cluster - 2).checked_mul(u64::from(fat.cluster_sectors))?)?;
                if let Some(l) = search_label(head, sector.checked_mul(ss)?, entries) {
                    return Some(l);
                }
                let fat_entry = u64::from(fat.reserved).checked_mul(ss)?.checked_add(u64::from(cluster) * 4)?;
                cluster = le32(head, usize::try_from(fat_entry).ok()?)? & 0x0FFF_FFFF;
            }
            None
        }
    }
}

fn search_label(head: &[u8], offset: u64, entries: u32) -> Option<&[u8; 11]> {
    let start = usize::try_from(offset).ok()?;
    for i in 0..entries as usize {
        let off = start.checked_add(i.checked_mul(DIR_ENTRY)?)?;
        let e = head.get(off..off.checked_add(DIR_ENTRY)?)?;
        let (&first, &attr) = (e.first()?, e.get(11)?);
        if first == 0 {
            break;
        }
        let cluster = le16(e, 20)? | le16(e, 26)?;
        if first == 0xE5 || cluster != 0 || attr & 0x3F == ATTR_LONG_NAME {
            continue;
        }
        if attr & (ATTR_VOLUME_ID | ATTR_DIR) == ATTR_VOLUME_ID {
            return e.get(..11)?.try_into().ok();
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// squashfs

const SQUASHFS_MAGIC: &[u8] = b"hsqs";
const SQUASHFS_SB_SIZE: u64 = 96;
/// Metadata blocks hold at most 8 KiB, so an inode reference's offset is below that.
const SQUASHFS_METADATA_SIZE: u64 = 8192;

/// A squashfs 4.0 superblock that passed [`squashfs_sane`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SquashfsInfo {
    /// Length of the filesystem; the image file may be longer (mksquashfs pads to 4 KiB).
    pub bytes_used: u64,
    /// Seconds since the epoch, as mksquashfs recorded (or was told with `-mkfs-time`).
    pub mkfs_time: u32,
    pub compression: &'static str,
    pub block_size: u32,
}

/// Checks the squashfs superblock at the start of `head` (at least 96 bytes) of an image
/// `file_size` bytes long, so a truncated or foreign file is refused before it is mounted.
/// The error says what is wrong, for a log line naming the image.
pub fn squashfs_sane(head: &[u8], file_size: u64) -> Result<SquashfsInfo, &'static str> {
    let sb = head.get(..SQUASHFS_SB_SIZE as usize).ok_or("too short for a squashfs superblock")?;
    let f32 = |off| le32(sb, off).unwrap_or(0);
    let f16 = |off| le16(sb, off).unwrap_or(0);
    let f64 = |off| le64(sb, off).unwrap_or(0);
    if sb.get(..4) != Some(SQUASHFS_MAGIC) {
        return Err("not a squashfs image (no hsqs magic)");
    }
    if (f16(28), f16(30)) != (4, 0) {
        return Err("not squashfs version 4.0");
    }
    let block_size = f32(12);
    if !block_size.is_power_of_two() || !(4096..=1 << 20).contains(&block_size) {
        return Err("block size is not a power of two from 4 KiB to 1 MiB");
    }
    if 1u32.checked_shl(u32::from(f16(22))) != Some(block_size) {
        return Err("block_log does not match the block size");
    }
    let compression = match f16(20) {
        1 => "gzip",
        2 => "lzma",
        3 => "lzo",
        4 => "xz",
        5 => "lz4",
        6 => "zstd",
        _ => return Err("unknown compression"),
    };
    let bytes_used = f64(40);
    if bytes_used < SQUASHFS_SB_SIZE {
        return Err("bytes_used is smaller than the superblock");
    }
    if bytes_used > file_size {
        return Err("filesystem is longer than the file (truncated image?)");
    }
    let (inodes, fragments, ids) = (f32(4), f32(16), f16(26));
    // Every inode takes bytes in the image, and every fragment block holds the tail of at
    // least one file.
    if inodes == 0 || u64::from(inodes) > bytes_used || fragments > inodes {
        return Err("implausible inode or fragment count");
    }
    if ids == 0 {
        return Err("no uid/gid table");
    }
    let inode_table = f64(64);
    let dir_table = f64(72);
    let inside = |off: u64| (SQUASHFS_SB_SIZE..bytes_used).contains(&off);
    let absent_or_inside = |off: u64| off == u64::MAX || inside(off);
    if !(inside(inode_table) && inside(dir_table) && inode_table < dir_table && inside(f64(48)))
        || !(absent_or_inside(f64(56)) && absent_or_inside(f64(80)) && absent_or_inside(f64(88)))
    {
        return Err("table offsets outside the filesystem");
    }
    let root = f64(32);
    if root & 0xFFFF >= SQUASHFS_METADATA_SIZE || root >> 16 >= dir_table - inode_table {
        return Err("root inode reference outside the inode table");
    }
    Ok(SquashfsInfo { bytes_used, mkfs_time: f32(8), compression, block_size })
}

// ---------------------------------------------------------------------------------------
// Byte helpers, shared with the partition parser.

pub(crate) fn le16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off.checked_add(2)?)?.try_into().ok()?))
}

pub(crate) fn le32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off.checked_add(4)?)?.try_into().ok()?))
}

pub(crate) fn le64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(off..off.checked_add(8)?)?.try_into().ok()?))
}

pub(crate) fn push_hex<const N: usize>(s: &mut String<N>, b: u8, upper: bool) {
    let digits = if upper { b"0123456789ABCDEF" } else { b"0123456789abcdef" };
    for nibble in [b >> 4, b & 0xF] {
        let _ = s.push(char::from(digits.get(usize::from(nibble)).copied().unwrap_or(b'?')));
    }
}

/// 16 bytes in the usual text form, in byte order: 8-4-4-4-12 lower-case hex digits.
pub(crate) fn format_uuid(bytes: &[u8; 16]) -> String<40> {
    let mut s = String::new();
    for (i, &b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            let _ = s.push('-');
        }
        push_hex(&mut s, b, false);
    }
    s
}

/// Appends `bytes` as UTF-8, each invalid sequence replaced by U+FFFD, as far as it fits.
fn push_utf8_lossy<const N: usize>(s: &mut String<N>, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        let _ = s.push_str(chunk.valid());
        if !chunk.invalid().is_empty() {
            let _ = s.push(char::REPLACEMENT_CHARACTER);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::string::{String as StdString, ToString};
    use std::vec::Vec as StdVec;
    use std::{format, vec};

    /// A scratch directory removed when the test ends.
    pub(crate) struct Scratch(pub PathBuf);

    impl Scratch {
        pub(crate) fn new(name: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("autoinit-test-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create scratch directory");
            Scratch(dir)
        }
        pub(crate) fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Runs a tool the test needs; a missing one is a failure that says how to get it.
    pub(crate) fn run(cmd: &str, args: &[&str]) -> StdString {
        let out = Command::new(cmd)
            .args(args)
            .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LC_ALL", "C")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {cmd} ({e}): run xtask/scripts/setup-host.sh"));
        assert!(out.status.success(), "{cmd} {args:?} failed: {}", StdString::from_utf8_lossy(&out.stderr));
        StdString::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `blkid -o export` output as (KEY, value) pairs, backslash escapes undone.
    pub(crate) fn blkid_export(args: &[&str]) -> StdVec<(StdString, StdString)> {
        let mut full = vec!["-p", "-o", "export"];
        full.extend_from_slice(args);
        run("blkid", &full)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), unescape_blkid(v)))
            .collect()
    }

    /// Undoes blkid's escapes: `\\c` for shell characters, `M-c` (high bit set) and `^c`
    /// (control) for bytes that are not printable ASCII.
    fn unescape_blkid(v: &str) -> StdString {
        let mut bytes = StdVec::new();
        let mut s = v.as_bytes();
        while let Some((&c, rest)) = s.split_first() {
            let (byte, rest) = match (c, rest) {
                (b'\\', [n, rest @ ..]) => (*n, rest),
                (b'M', [b'-', b'^', n, rest @ ..]) => ((n ^ 0x40) | 0x80, rest),
                (b'M', [b'-', b'\\', n, rest @ ..]) => (n | 0x80, rest),
                (b'M', [b'-', n, rest @ ..]) => (n | 0x80, rest),
                (b'^', [n, rest @ ..]) => (n ^ 0x40, rest),
                _ => (c, rest),
            };
            bytes.push(byte);
            s = rest;
        }
        StdString::from_utf8_lossy(&bytes).into_owned()
    }

    fn get<'a>(kv: &'a [(StdString, StdString)], key: &str) -> &'a str {
        kv.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str())
    }

    pub(crate) fn head_of(path: &Path, n: usize) -> StdVec<u8> {
        let mut data = std::fs::read(path).expect("read image");
        data.truncate(n);
        data
    }

    /// Probes the image at `path` and checks the result against blkid's.
    fn probe_like_blkid(path: &Path) -> FsId {
        let id = probe(&head_of(path, PROBE_BYTES)).expect("probe finds a filesystem");
        let kv = blkid_export(&[path.to_str().expect("utf-8 path")]);
        assert_eq!(id.fstype, get(&kv, "TYPE"), "TYPE of {path:?}");
        assert_eq!(id.label.as_str(), get(&kv, "LABEL"), "LABEL of {path:?}");
        assert_eq!(id.uuid.as_str(), get(&kv, "UUID"), "UUID of {path:?}");
        id
    }

    fn mkfs_fat(dir: &Scratch, name: &str, args: &[&str], kib: &str) -> PathBuf {
        let img = dir.path(name);
        let img_s = img.to_str().expect("utf-8 path");
        let mut full = args.to_vec();
        full.extend_from_slice(&["-C", img_s, kib]);
        run("mkfs.fat", &full);
        img
    }

    #[test]
    fn fat12_fat16_fat32_like_blkid() {
        let dir = Scratch::new("fat");
        let f12 = mkfs_fat(&dir, "f12", &["-n", "BOOT", "-i", "1234ABCD"], "1440");
        let id = probe_like_blkid(&f12);
        assert_eq!((id.label.as_str(), id.uuid.as_str()), ("BOOT", "1234-ABCD"));
        assert_eq!(fat_boot_sector(&head_of(&f12, 512)), Some(FatKind::Fat12Or16));

        let f16 = mkfs_fat(&dir, "f16", &["-F", "16", "-n", "MY DISK", "-i", "00c0ffee"], "16384");
        let id = probe_like_blkid(&f16);
        assert_eq!((id.label.as_str(), id.uuid.as_str()), ("MY DISK", "00C0-FFEE"));

        let f32 = mkfs_fat(&dir, "f32", &["-F", "32", "-n", "AUTOSVR", "-i", "DEADBEEF"], "65536");
        let id = probe_like_blkid(&f32);
        assert_eq!((id.fstype, id.label.as_str(), id.uuid.as_str()), ("vfat", "AUTOSVR", "DEAD-BEEF"));
        assert_eq!(fat_boot_sector(&head_of(&f32, 512)), Some(FatKind::Fat32));

        // No label: mkfs.fat writes "NO NAME" in the boot sector and no root-dir entry.
        let none = mkfs_fat(&dir, "none", &["-i", "0BADF00D"], "8192");
        let id = probe_like_blkid(&none);
        assert_eq!((id.label.as_str(), id.uuid.as_str()), ("", "0BAD-F00D"));

        // 4 KiB logical sectors.
        let big = mkfs_fat(&dir, "big", &["-S", "4096", "-n", "BIGSEC"], "32768");
        assert_eq!(probe_like_blkid(&big).label.as_str(), "BIGSEC");
    }

    #[test]
    fn fat_root_dir_label_wins_over_the_boot_sector() {
        // What Windows does on relabel: only the root-directory entry changes.
        for (name, fat, kib) in [("f16", "16", "16384"), ("f32", "32", "65536")] {
            let dir = Scratch::new(&format!("fatrelabel-{name}"));
            let img = mkfs_fat(&dir, name, &["-F", fat, "-n", "OLDNAME"], kib);
            let mut data = std::fs::read(&img).expect("read");
            // The last copy: FAT32 has a backup boot sector before the root directory.
            let pos = data.windows(11).rposition(|w| w == b"OLDNAME    ").expect("root-dir label entry");
            assert!(pos > 4096);
            data[pos..pos + 11].copy_from_slice(b"NEWNAME    ");
            std::fs::write(&img, &data).expect("write");
            let kv = blkid_export(&[img.to_str().expect("utf-8")]);
            assert_eq!(get(&kv, "LABEL"), "NEWNAME");
            // A head too short to reach the root directory gives the boot sector's label...
            let head = &data[..pos.min(PROBE_BYTES)];
            let mut id = probe(head).expect("fat");
            assert_eq!(id.label.as_str(), "OLDNAME");
            // ... and says where to read the root directory to get blkid's answer.
            let (off, len) = fat_root_dir_beyond(head).expect("root dir beyond the head");
            assert!(off as usize <= pos && pos < off as usize + len, "{name}: {off} {len} {pos}");
            apply_fat_root_dir_label(&mut id, &data[off as usize..off as usize + len]);
            assert_eq!(id.label.as_str(), "NEWNAME");
            // The whole image as head: probe finds it directly.
            assert_eq!(probe(&data).expect("fat").label.as_str(), "NEWNAME");
            assert_eq!(fat_root_dir_beyond(&data), None);
            // A root directory without a label entry leaves the boot sector's label.
            apply_fat_root_dir_label(&mut id, &[0u8; 512]);
            assert_eq!(id.label.as_str(), "NEWNAME");
        }
    }

    #[test]
    fn ext2_ext3_ext4_like_blkid() {
        let dir = Scratch::new("ext");
        let uuid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0";
        for (t, label) in [("ext2", "two"), ("ext3", "three"), ("ext4", "rootfs-ünï")] {
            let img = dir.path(t);
            let img_s = img.to_str().expect("utf-8 path");
            run("mke2fs", &["-q", "-F", "-t", t, "-L", label, "-U", uuid, img_s, "8M"]);
            let id = probe_like_blkid(&img);
            assert_eq!((id.fstype, id.label.as_str(), id.uuid.as_str()), (t, label, uuid));
        }
        // ext4 without extents but with a feature ext3 lacks is still ext4 (like blkid).
        let img = dir.path("ext4-noextents");
        run("mke2fs", &["-q", "-F", "-t", "ext4", "-O", "^extents,^64bit,^flex_bg", img.to_str().expect("utf-8"), "8M"]);
        assert_eq!(probe_like_blkid(&img).fstype, "ext4");
        // No label.
        let img = dir.path("nolabel");
        run("mke2fs", &["-q", "-F", "-t", "ext4", img.to_str().expect("utf-8"), "8M"]);
        assert_eq!(probe_like_blkid(&img).label.as_str(), "");
    }

    fn mksquashfs(dir: &Scratch, name: &str, extra: &[&str]) -> PathBuf {
        let src = dir.path(&format!("{name}-src"));
        std::fs::create_dir_all(src.join("etc")).expect("mkdir");
        std::fs::write(src.join("etc/hostname"), "board\n").expect("write");
        std::fs::write(src.join("big"), vec![7u8; 300_000]).expect("write");
        let img = dir.path(name);
        let mut args = vec![src.to_str().expect("utf-8"), img.to_str().expect("utf-8"), "-noappend", "-quiet", "-no-progress"];
        args.extend_from_slice(extra);
        run("mksquashfs", &args);
        img
    }

    #[test]
    fn squashfs_probe_and_sanity() {
        let dir = Scratch::new("squashfs");
        let img = mksquashfs(&dir, "sys.img", &["-mkfs-time", "1700000000", "-b", "131072"]);
        let id = probe_like_blkid(&img);
        assert_eq!(id, FsId { fstype: "squashfs", label: String::new(), uuid: String::new() });
        let data = std::fs::read(&img).expect("read");
        let len = data.len() as u64;
        let info = squashfs_sane(&data, len).expect("sane");
        assert_eq!(info.mkfs_time, 1_700_000_000);
        assert_eq!(info.block_size, 131_072);
        assert_eq!(info.compression, "gzip");
        assert!(info.bytes_used <= len && info.bytes_used > len - 4096, "{info:?} len {len}");
        // mksquashfs pads to 4 KiB, so only a cut into the filesystem itself is refused.
        assert_eq!(squashfs_sane(&data, info.bytes_used), Ok(info));
        assert_eq!(squashfs_sane(&data, info.bytes_used - 1), Err("filesystem is longer than the file (truncated image?)"));

        for (comp, name) in [("xz", "xz"), ("zstd", "zstd"), ("lz4", "lz4"), ("lzo", "lzo")] {
            let img = mksquashfs(&dir, name, &["-comp", comp, "-b", "4096"]);
            let data = std::fs::read(&img).expect("read");
            let info = squashfs_sane(&data, data.len() as u64).expect("sane");
            assert_eq!((info.compression, info.block_size), (comp, 4096));
        }
    }

    #[test]
    fn squashfs_sanity_refuses_damage() {
        let dir = Scratch::new("squashfs-bad");
        let img = mksquashfs(&dir, "sys.img", &[]);
        let good = std::fs::read(&img).expect("read");
        let size = good.len() as u64;
        let damaged = |off: usize, bytes: &[u8]| {
            let mut d = good.clone();
            d[off..off + bytes.len()].copy_from_slice(bytes);
            squashfs_sane(&d, size)
        };
        assert_eq!(damaged(0, b"sqsh"), Err("not a squashfs image (no hsqs magic)"));
        assert_eq!(damaged(28, &[3, 0]), Err("not squashfs version 4.0"));
        assert_eq!(damaged(30, &[1, 0]), Err("not squashfs version 4.0"));
        assert_eq!(damaged(12, &0x3000u32.to_le_bytes()), Err("block size is not a power of two from 4 KiB to 1 MiB"));
        assert_eq!(damaged(12, &(2u32 << 20).to_le_bytes()), Err("block size is not a power of two from 4 KiB to 1 MiB"));
        assert_eq!(damaged(22, &[12, 0]), Err("block_log does not match the block size"));
        assert_eq!(damaged(22, &[200, 0]), Err("block_log does not match the block size"));
        assert_eq!(damaged(20, &[0, 0]), Err("unknown compression"));
        assert_eq!(damaged(20, &[7, 0]), Err("unknown compression"));
        assert_eq!(damaged(4, &[0, 0, 0, 0]), Err("implausible inode or fragment count"));
        assert_eq!(damaged(16, &u32::MAX.to_le_bytes()), Err("implausible inode or fragment count"));
        assert_eq!(damaged(26, &[0, 0]), Err("no uid/gid table"));
        assert_eq!(damaged(64, &u64::MAX.to_le_bytes()), Err("table offsets outside the filesystem"));
        assert_eq!(damaged(48, &(size * 2).to_le_bytes()), Err("table offsets outside the filesystem"));
        assert_eq!(damaged(32, &(u64::MAX).to_le_bytes()), Err("root inode reference outside the inode table"));
        assert_eq!(squashfs_sane(&good[..95], size), Err("too short for a squashfs superblock"));
        assert_eq!(squashfs_sane(&good, 200), Err("filesystem is longer than the file (truncated image?)"));
    }

    #[test]
    fn truncated_and_garbage_heads_give_none() {
        let dir = Scratch::new("trunc");
        let fat = mkfs_fat(&dir, "fat", &["-n", "X"], "8192");
        let ext = dir.path("ext");
        run("mke2fs", &["-q", "-F", "-t", "ext4", "-L", "Y", ext.to_str().expect("utf-8"), "8M"]);
        for img in [&fat, &ext] {
            let data = head_of(img, PROBE_BYTES);
            // Every prefix: a panic would fail the test; a result must be a known type.
            for n in (0..2100).chain([4096, 8192, PROBE_BYTES]) {
                if let Some(id) = probe(&data[..n.min(data.len())]) {
                    assert!(["vfat", "ext4"].contains(&id.fstype));
                }
            }
        }
        assert_eq!(probe(&head_of(&ext, 2047)), None);
        assert_eq!(probe(&head_of(&ext, 2048)).map(|i| i.fstype), Some("ext4"));
        assert_eq!(probe(&head_of(&fat, 511)), None);
        assert_eq!(probe(&[]), None);
        assert_eq!(probe(&[0u8; PROBE_BYTES]), None);
        assert_eq!(probe(&[0xFFu8; PROBE_BYTES]), None);
        // Pseudo-random bytes, with and without boot signature and FAT magic.
        let mut x: u32 = 0x1234_5678;
        for round in 0..200 {
            let mut buf = vec![0u8; 4096];
            for b in buf.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
            if round % 2 == 0 {
                buf[510] = 0x55;
                buf[511] = 0xAA;
            }
            if round % 4 == 0 {
                buf[0x36..0x3E].copy_from_slice(b"FAT16   ");
            }
            if round % 8 == 0 {
                buf[1024 + 0x38..1024 + 0x3A].copy_from_slice(&EXT_MAGIC.to_le_bytes());
            }
            let _ = probe(&buf);
            let _ = squashfs_sane(&buf, u64::MAX);
            buf[..4].copy_from_slice(b"hsqs");
            let _ = squashfs_sane(&buf, u64::MAX);
        }
        // An ext external journal is no filesystem to mount.
        let jdev = dir.path("journal");
        run("mke2fs", &["-q", "-F", "-O", "journal_dev", jdev.to_str().expect("utf-8"), "4M"]);
        assert_eq!(probe(&head_of(&jdev, PROBE_BYTES)), None);
    }

    #[test]
    fn uuid_comparison_ignores_case_only() {
        assert!(uuid_matches("1234-ABCD", "1234-abcd"));
        assert!(uuid_matches("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", "0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0"));
        assert!(!uuid_matches("1234-ABCD", "1234ABCD"));
        assert!(!uuid_matches("", ""));
        assert!(!uuid_matches("1234-ABCD", "1234-ABC"));
    }
}
