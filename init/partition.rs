//! Partition tables (MBR and GPT) read from the first bytes of a disk, for `PARTUUID=` and
//! `PARTLABEL=` on the command line: which partition number carries the wanted id.
//!
//! Pure code (no syscalls), unit-tested on the host against disk images made by sfdisk and
//! compared with blkid/partx. Partition numbers are the kernel's: the MBR slot (1-4), the
//! GPT entry index plus one; empty slots keep their number.
//!
//! Limits:
//! - MBR: primary partitions only. Logical partitions (5 and up) live in a chain of
//!   extended boot records spread over the disk, beyond the head read here.
//! - GPT: only the primary header at LBA 1 is read; if it or its entry array is damaged the
//!   disk is reported as unreadable (the backup header at the end of the disk is not tried).
//!   The entry array must lie inside the bytes given ([`bytes_needed`] says how many).
//!   As for blkid and the kernel (without `gpt` on its command line), a GPT counts only
//!   behind an MBR with a 0xEE partition (protective or hybrid); a hybrid MBR's own entries
//!   are ignored.
//! - Logical sectors of 512 bytes and 4096 bytes (4Kn) are both handled: the GPT header is
//!   looked for at byte 512, then at byte 4096. An MBR does not depend on the sector size
//!   (only partition offsets would, and they are not reported).

use crate::superblock::{fat_boot_sector, format_uuid, le32, le64, push_hex, uuid_matches};
use heapless::String;

/// Bytes to read from the start of a disk for [`partitions`]: LBA 0-33 with 512-byte sectors
/// (protective MBR, GPT header, 128 entries of 128 bytes), or LBA 0-5 with 4096-byte ones.
pub const DISK_HEAD_BYTES: usize = 6 * 4096;

/// Bytes of [`PartIds::partlabel`]. A GPT name is 36 UTF-16 code units, so this holds any
/// name of characters below U+0800 (ASCII, Latin, Greek, Cyrillic, ...); a longer UTF-8 form
/// is cut at a character boundary. [`PartIds::matches`] and [`find`] compare the whole name.
pub const PARTLABEL_MAX: usize = 72;

/// UTF-16 code units in a GPT partition name.
const GPT_NAME_UNITS: usize = 36;

/// Entry arrays larger than this are refused (the standard one is 16 KiB).
const MAX_GPT_ARRAY_BYTES: u64 = 1 << 20;

/// The partition a `PARTUUID=` or `PARTLABEL=` names.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Want<'a> {
    /// Compared ignoring ASCII case, as the kernel does.
    PartUuid(&'a str),
    /// Compared exactly, as udev's /dev/disk/by-partlabel links are.
    PartLabel(&'a str),
}

/// The ids of one partition. MBR partitions have a PARTUUID only (`partlabel` is empty).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PartIds {
    /// MBR: `1234abcd-01` (disk signature, partition number); GPT: the entry's unique GUID,
    /// lower-case in the usual text form.
    pub partuuid: String<40>,
    /// The GPT name as UTF-8, for messages; see [`PARTLABEL_MAX`].
    pub partlabel: String<PARTLABEL_MAX>,
    /// The GPT name as stored, NUL-padded, so a match never depends on `partlabel` fitting.
    name: [u16; GPT_NAME_UNITS],
}

impl PartIds {
    fn new(partuuid: String<40>, name: [u16; GPT_NAME_UNITS]) -> PartIds {
        let mut partlabel = String::new();
        for c in decode_name(&name) {
            if partlabel.push(c).is_err() {
                break;
            }
        }
        PartIds { partuuid, partlabel, name }
    }

    /// Whether this partition is the one `want` names (PARTUUID ignoring ASCII case, as the
    /// kernel does; PARTLABEL exactly, on the whole name).
    pub fn matches(&self, want: &Want<'_>) -> bool {
        match *want {
            Want::PartUuid(u) => uuid_matches(&self.partuuid, u),
            Want::PartLabel(l) => !l.is_empty() && decode_name(&self.name).eq(l.chars()),
        }
    }
}

/// A GPT name up to its first NUL; unpaired surrogates become '?'.
fn decode_name(name: &[u16]) -> impl Iterator<Item = char> + '_ {
    char::decode_utf16(name.iter().copied().take_while(|&u| u != 0)).map(|c| c.unwrap_or('?'))
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Scheme {
    Mbr,
    Gpt,
}

/// The partition number (1-based) whose ids match `want`, or `None` if no partition does or
/// the disk has no readable partition table.
pub fn find(disk_head: &[u8], want: &Want<'_>) -> Option<u32> {
    partitions(disk_head).ok()?.find(|(_, ids)| ids.matches(want)).map(|(n, _)| n)
}

/// The ids of partition `partno`, for listing what a disk holds when the wanted one is absent.
pub fn describe(disk_head: &[u8], partno: u32) -> Option<PartIds> {
    partitions(disk_head).ok()?.find(|&(n, _)| n == partno).map(|(_, ids)| ids)
}

/// The partitions of the disk whose first bytes are `disk_head` ([`DISK_HEAD_BYTES`]), as
/// (number, ids). The error says why there is no usable table, for a log line.
pub fn partitions(disk_head: &[u8]) -> Result<Partitions<'_>, &'static str> {
    let mbr = disk_head.get(..512).ok_or("too short for a partition table")?;
    if mbr.get(510..512) != Some(&[0x55, 0xAA][..]) {
        return Err("no partition table (no 55 AA boot signature)");
    }
    let slot = |i: usize| mbr.get(446 + 16 * i..446 + 16 * (i + 1)).unwrap_or(&[]);
    if (0..4).any(|i| slot(i).get(4) == Some(&0xEE)) {
        return gpt(disk_head);
    }
    if fat_boot_sector(disk_head).is_some() {
        return Err("a FAT filesystem, not a partition table");
    }
    if (0..4).any(|i| !matches!(slot(i).first(), Some(0x00 | 0x80))) {
        return Err("MBR boot indicator is not 0 or 0x80: not a partition table");
    }
    let signature = le32(mbr, 440).ok_or("too short for a partition table")?;
    Ok(Partitions { inner: Inner::Mbr { mbr, signature, next: 0 } })
}

/// How many bytes from the start of the disk [`partitions`] needs for this disk: more than
/// [`DISK_HEAD_BYTES`] only for a GPT whose entry array is unusually placed or large.
/// `None` if `disk_head` has no GPT header (an MBR needs 512 bytes).
pub fn bytes_needed(disk_head: &[u8]) -> Option<usize> {
    let (_, sector) = gpt_header(disk_head)?;
    let h = disk_head.get(sector..)?;
    let array = u64::from(le32(h, 80)?).checked_mul(u64::from(le32(h, 84)?))?;
    if array > MAX_GPT_ARRAY_BYTES {
        return None;
    }
    let end = le64(h, 72)?.checked_mul(sector as u64)?.checked_add(array)?;
    usize::try_from(end).ok()
}

/// Iterator over the partitions of one table; see [`partitions`].
pub struct Partitions<'a> {
    inner: Inner<'a>,
}

enum Inner<'a> {
    Mbr { mbr: &'a [u8], signature: u32, next: u32 },
    Gpt { entries: &'a [u8], entry_size: usize, count: u32, first_usable: u64, last_usable: u64, next: u32 },
}

impl Partitions<'_> {
    pub fn scheme(&self) -> Scheme {
        match self.inner {
            Inner::Mbr { .. } => Scheme::Mbr,
            Inner::Gpt { .. } => Scheme::Gpt,
        }
    }
}

impl Iterator for Partitions<'_> {
    type Item = (u32, PartIds);

    fn next(&mut self) -> Option<(u32, PartIds)> {
        match &mut self.inner {
            Inner::Mbr { mbr, signature, next } => {
                while *next < 4 {
                    let i = *next as usize;
                    *next += 1;
                    let number = *next;
                    // The kernel skips empty slots (no sectors) but keeps the numbering.
                    if le32(mbr, 446 + 16 * i + 12)? == 0 {
                        continue;
                    }
                    let mut partuuid = String::new();
                    for b in signature.to_be_bytes() {
                        push_hex(&mut partuuid, b, false);
                    }
                    let _ = partuuid.push('-');
                    push_hex(&mut partuuid, number as u8, false);
                    return Some((number, PartIds::new(partuuid, [0; GPT_NAME_UNITS])));
                }
                None
            }
            Inner::Gpt { entries, entry_size, count, first_usable, last_usable, next } => {
                while *next < *count {
                    let i = *next as usize;
                    *next += 1;
                    let start = i.checked_mul(*entry_size)?;
                    let e = entries.get(start..start.checked_add(128)?)?;
                    if e.get(..16)?.iter().all(|&b| b == 0) {
                        continue;
                    }
                    let (first, last) = (le64(e, 32)?, le64(e, 40)?);
                    // Like blkid and the kernel: an entry outside the usable area is ignored.
                    if first < *first_usable || last > *last_usable || last < first {
                        continue;
                    }
                    let guid: &[u8; 16] = e.get(16..32)?.try_into().ok()?;
                    let mut name = [0u16; GPT_NAME_UNITS];
                    for (unit, bytes) in name.iter_mut().zip(e.get(56..128)?.chunks_exact(2)) {
                        if let [lo, hi] = *bytes {
                            *unit = u16::from_le_bytes([lo, hi]);
                        }
                    }
                    return Some((*next, PartIds::new(format_guid(guid), name)));
                }
                None
            }
        }
    }
}

/// The GPT header: its bytes and the logical sector size it was found with.
fn gpt_header(disk_head: &[u8]) -> Option<(&[u8], usize)> {
    [512usize, 4096].into_iter().find_map(|sector| {
        let h = disk_head.get(sector..sector.checked_mul(2)?)?;
        (h.get(..8)? == b"EFI PART").then_some((h, sector))
    })
}

fn gpt(disk_head: &[u8]) -> Result<Partitions<'_>, &'static str> {
    let (h, sector) = gpt_header(disk_head).ok_or("protective MBR but no GPT header at LBA 1")?;
    let field32 = |off| le32(h, off).unwrap_or(0);
    let field64 = |off| le64(h, off).unwrap_or(0);
    let size = field32(12) as usize;
    if size < 92 || size > sector {
        return Err("GPT header size out of range");
    }
    let mut crc = Crc32::new();
    crc.update(h.get(..16).unwrap_or(&[]));
    crc.update(&[0; 4]);
    crc.update(h.get(20..size).unwrap_or(&[]));
    if crc.finish() != field32(16) {
        return Err("GPT header CRC mismatch");
    }
    if field64(24) != 1 {
        return Err("GPT header is not at LBA 1");
    }
    let (first_usable, last_usable) = (field64(40), field64(48));
    if last_usable < first_usable {
        return Err("GPT usable area is empty");
    }
    let count = field32(80);
    let entry_size = field32(84);
    if !entry_size.is_power_of_two() || !(128..=4096).contains(&entry_size) {
        return Err("GPT entry size is not 128 * 2^n");
    }
    let array = u64::from(count) * u64::from(entry_size);
    if array == 0 || array > MAX_GPT_ARRAY_BYTES {
        return Err("GPT entry array size out of range");
    }
    let entries_lba = field64(72);
    if entries_lba < 2 {
        return Err("GPT entry array overlaps the header");
    }
    let entries = entries_lba
        .checked_mul(sector as u64)
        .and_then(|s| disk_head.get(usize::try_from(s).ok()?..usize::try_from(s.checked_add(array)?).ok()?))
        .ok_or("GPT entry array lies beyond the bytes read")?;
    if crc32(entries) != field32(88) {
        return Err("GPT entry array CRC mismatch");
    }
    Ok(Partitions {
        inner: Inner::Gpt { entries, entry_size: entry_size as usize, count, first_usable, last_usable, next: 0 },
    })
}

/// A GUID in its text form: the first three fields are stored little-endian.
fn format_guid(g: &[u8; 16]) -> String<40> {
    let [a0, a1, a2, a3, b0, b1, c0, c1, d0, d1, e0, e1, e2, e3, e4, e5] = *g;
    format_uuid(&[a3, a2, a1, a0, b1, b0, c1, c0, d0, d1, e0, e1, e2, e3, e4, e5])
}

/// CRC-32 (IEEE 802.3, reflected, as zlib and the UEFI specification use).
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = Crc32::new();
    c.update(data);
    c.finish()
}

/// Four bits at a time with a 16-entry table (64 bytes; a byte table would cost 1 KiB for a few
/// KiB of checksummed data per disk). Bit at a time, each bit's `c & 1` became a compare, and
/// the fuzzer's build instruments every compare: the partition target spent four fifths of
/// its time there (16 KiB of GPT entries per table read).
struct Crc32(u32);

const POLY: u32 = 0xEDB8_8320;

/// The CRC of each nibble value, shifted through four steps.
const NIBBLE: [u32; 16] = {
    let mut t = [0u32; 16];
    let mut i = 0;
    while i < 16 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 4 {
            c = (c >> 1) ^ (POLY & (c & 1).wrapping_neg());
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

impl Crc32 {
    fn new() -> Crc32 {
        Crc32(!0)
    }

    fn update(&mut self, data: &[u8]) {
        for &byte in data {
            let mut c = self.0 ^ u32::from(byte);
            // The index is masked to 0..16: it cannot be out of bounds.
            c = (c >> 4) ^ NIBBLE[(c & 0xF) as usize];
            c = (c >> 4) ^ NIBBLE[(c & 0xF) as usize];
            self.0 = c;
        }
    }

    fn finish(&self) -> u32 {
        !self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::superblock::tests::{Scratch, blkid_export, head_of, run};
    use std::path::Path;
    use std::string::{String as StdString, ToString};
    use std::vec::Vec as StdVec;
    use std::{format, vec};

    /// A sparse disk image partitioned by `sfdisk` from `script`.
    fn sfdisk_image(dir: &Scratch, name: &str, size: u64, script: &str) -> std::path::PathBuf {
        let img = dir.path(name);
        let f = std::fs::File::create(&img).expect("create image");
        f.set_len(size).expect("size image");
        drop(f);
        let mut child = std::process::Command::new("sfdisk")
            .args(["--quiet", "--no-reread", "--no-tell-kernel", img.to_str().expect("utf-8")])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("run sfdisk (package fdisk; run xtask/scripts/setup-host.sh)");
        use std::io::Write;
        child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("feed sfdisk");
        assert!(child.wait().expect("wait sfdisk").success(), "sfdisk failed");
        img
    }

    /// partx's view of a disk image: (number, uuid, name), with 4096-byte sectors if asked.
    fn partx(img: &Path, sector: Option<&str>) -> StdVec<(u32, StdString, StdString)> {
        let mut args = vec!["-g", "-P", "-o", "NR,UUID,NAME"];
        if let Some(s) = sector {
            args.extend_from_slice(&["-S", s]);
        }
        args.push(img.to_str().expect("utf-8"));
        run("partx", &args)
            .lines()
            .map(|l| {
                // NR="1" UUID="..." NAME="..."
                let field = |key: &str| {
                    let start = l.find(&format!("{key}=\"")).expect("field") + key.len() + 2;
                    let rest = &l[start..];
                    unescape_hex(&rest[..rest.find('"').expect("closing quote")])
                };
                (field("NR").parse().expect("number"), field("UUID"), field("NAME"))
            })
            .collect()
    }

    /// Undoes partx's `\\xHH` escapes of bytes that are not printable ASCII.
    fn unescape_hex(v: &str) -> StdString {
        let mut bytes = StdVec::new();
        let mut s = v.as_bytes();
        while let Some((&c, rest)) = s.split_first() {
            match rest {
                [b'x', h, l, tail @ ..] if c == b'\\' => {
                    let hex = std::str::from_utf8(&[*h, *l]).ok().and_then(|x| u8::from_str_radix(x, 16).ok());
                    bytes.push(hex.expect("hex escape"));
                    s = tail;
                }
                _ => {
                    bytes.push(c);
                    s = rest;
                }
            }
        }
        StdString::from_utf8(bytes).expect("utf-8 name")
    }

    fn ours(head: &[u8]) -> StdVec<(u32, StdString, StdString)> {
        partitions(head)
            .expect("partition table")
            .map(|(n, ids)| (n, ids.partuuid.as_str().to_string(), ids.partlabel.as_str().to_string()))
            .collect()
    }

    fn kv<'a>(kv: &'a [(StdString, StdString)], key: &str) -> &'a str {
        kv.iter().find(|(k, _)| k == key).map_or("", |(_, v)| v.as_str())
    }

    #[test]
    fn mbr_like_partx_and_blkid() {
        let dir = Scratch::new("mbr");
        // Slot 2 stays empty: partition 3 keeps its number.
        let img = sfdisk_image(&dir, "disk", 64 << 20, "label: dos\nlabel-id: 0x1234abcd\n1: start=2048, size=16384, type=c, bootable\n3: start=20480, type=83\n");
        let head = head_of(&img, DISK_HEAD_BYTES);
        let found = ours(&head);
        assert_eq!(found, partx(&img, None));
        assert_eq!(
            found,
            [(1, "1234abcd-01".to_string(), StdString::new()), (3, "1234abcd-03".to_string(), StdString::new())]
        );
        let disk = blkid_export(&[img.to_str().expect("utf-8")]);
        assert_eq!((kv(&disk, "PTTYPE"), kv(&disk, "PTUUID")), ("dos", "1234abcd"));
        assert_eq!(partitions(&head).map(|p| p.scheme()).ok(), Some(Scheme::Mbr));
        assert_eq!(find(&head, &Want::PartUuid("1234ABCD-03")), Some(3));
        assert_eq!(find(&head, &Want::PartUuid("1234abcd-02")), None);
        assert_eq!(find(&head, &Want::PartLabel("")), None);
        assert_eq!(describe(&head, 1).map(|d| d.partuuid.as_str().to_string()), Some("1234abcd-01".to_string()));
        assert_eq!(describe(&head, 2), None);
        // Only the first sector matters for an MBR.
        assert_eq!(find(&head[..512], &Want::PartUuid("1234abcd-01")), Some(1));
    }

    const GPT_SCRIPT: &str = "label: gpt\n\
        label-id: 01234567-89AB-CDEF-0123-456789ABCDEF\n\
        1: size=8MiB, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"EFI system\"\n\
        2: size=16MiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=6E5A8B0C-1D2E-4F30-A142-536475869708, name=\"autosvr-boot\"\n\
        4: type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, uuid=A1B2C3D4-E5F6-4789-9ABC-DEF012345678, name=\"dätä Ω\"\n";

    #[test]
    fn gpt_like_partx_and_blkid() {
        let dir = Scratch::new("gpt");
        let img = sfdisk_image(&dir, "disk", 64 << 20, GPT_SCRIPT);
        let head = head_of(&img, DISK_HEAD_BYTES);
        let found = ours(&head);
        assert_eq!(found, partx(&img, None));
        assert_eq!(
            found,
            [
                (1, "0fc63daf-8483-4772-8e79-3d69d8477de4".to_string(), "EFI system".to_string()),
                (2, "6e5a8b0c-1d2e-4f30-a142-536475869708".to_string(), "autosvr-boot".to_string()),
                (4, "a1b2c3d4-e5f6-4789-9abc-def012345678".to_string(), "dätä Ω".to_string()),
            ]
        );
        let disk = blkid_export(&[img.to_str().expect("utf-8")]);
        assert_eq!((kv(&disk, "PTTYPE"), kv(&disk, "PTUUID")), ("gpt", "01234567-89ab-cdef-0123-456789abcdef"));
        assert_eq!(partitions(&head).map(|p| p.scheme()).ok(), Some(Scheme::Gpt));
        assert_eq!(find(&head, &Want::PartLabel("autosvr-boot")), Some(2));
        assert_eq!(find(&head, &Want::PartLabel("AUTOSVR-BOOT")), None);
        assert_eq!(find(&head, &Want::PartLabel("dätä Ω")), Some(4));
        assert_eq!(find(&head, &Want::PartUuid("A1B2C3D4-E5F6-4789-9ABC-DEF012345678")), Some(4));
        assert_eq!(describe(&head, 2).map(|d| d.partlabel.as_str().to_string()), Some("autosvr-boot".to_string()));
        let ids = describe(&head, 2).expect("partition 2");
        assert!(ids.matches(&Want::PartLabel("autosvr-boot")));
        assert!(ids.matches(&Want::PartUuid("6E5A8B0C-1D2E-4F30-A142-536475869708")));
        assert!(!ids.matches(&Want::PartLabel("autosvr-boo")));
        assert!(!ids.matches(&Want::PartLabel("autosvr-boot2")));
        assert_eq!(describe(&head, 3), None);
        assert_eq!(bytes_needed(&head), Some(34 * 512));
        // sfdisk --json agrees on names and uuids too.
        let json = run("sfdisk", &["--json", img.to_str().expect("utf-8")]);
        assert!(json.contains("\"uuid\": \"6E5A8B0C-1D2E-4F30-A142-536475869708\""), "{json}");
        assert!(json.contains("\"name\": \"autosvr-boot\""), "{json}");
    }

    /// A GPT rewritten for 4096-byte sectors: header at 4096, entries at 8192, CRCs redone.
    fn to_4kn(head512: &[u8]) -> StdVec<u8> {
        let mut d = vec![0u8; DISK_HEAD_BYTES];
        d[..512].copy_from_slice(&head512[..512]);
        d[4096..4096 + 512].copy_from_slice(&head512[512..1024]);
        d[8192..8192 + 16384].copy_from_slice(&head512[1024..1024 + 16384]);
        let h = &mut d[4096..4096 + 92];
        // first/last usable LBA in 4 KiB units: 6 .. (512 MiB / 4 KiB - 6).
        h[40..48].copy_from_slice(&6u64.to_le_bytes());
        h[48..56].copy_from_slice(&((512u64 << 20) / 4096 - 6).to_le_bytes());
        h[32..40].copy_from_slice(&((512u64 << 20) / 4096 - 1).to_le_bytes());
        fix_header_crc(&mut d, 4096);
        d
    }

    fn fix_header_crc(d: &mut [u8], at: usize) {
        d[at + 16..at + 20].fill(0);
        let crc = crc32(&d[at..at + 92]);
        d[at + 16..at + 20].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn gpt_with_4096_byte_sectors() {
        let dir = Scratch::new("gpt4k");
        let img = sfdisk_image(&dir, "disk", 64 << 20, GPT_SCRIPT);
        let head512 = head_of(&img, DISK_HEAD_BYTES);
        let d = to_4kn(&head512);
        // partx, told the sector size, reads the rewritten disk the same way.
        let img4k = dir.path("disk4k");
        std::fs::write(&img4k, &d).expect("write");
        std::fs::OpenOptions::new().write(true).open(&img4k).expect("open").set_len(512 << 20).expect("size");
        assert_eq!(ours(&d), partx(&img4k, Some("4096")));
        assert_eq!(find(&d, &Want::PartLabel("autosvr-boot")), Some(2));
        assert_eq!(bytes_needed(&d), Some(DISK_HEAD_BYTES));
    }

    #[test]
    fn damaged_tables_are_errors() {
        let dir = Scratch::new("gptbad");
        let img = sfdisk_image(&dir, "disk", 64 << 20, GPT_SCRIPT);
        let good = head_of(&img, DISK_HEAD_BYTES);
        let check = |f: &dyn Fn(&mut StdVec<u8>), want: &str| {
            let mut d = good.clone();
            f(&mut d);
            assert_eq!(partitions(&d).err(), Some(want));
            assert_eq!(find(&d, &Want::PartLabel("autosvr-boot")), None);
        };
        check(&|d| d[512 + 60] ^= 1, "GPT header CRC mismatch");
        check(&|d| d[1024 + 200] ^= 1, "GPT entry array CRC mismatch");
        check(&|d| d[512..520].copy_from_slice(b"EFI PARX"), "protective MBR but no GPT header at LBA 1");
        check(&|d| d[510] = 0, "no partition table (no 55 AA boot signature)");
        check(&|d| d.truncate(34 * 512 - 1), "GPT entry array lies beyond the bytes read");
        check(&|d| d.truncate(511), "too short for a partition table");
        check(&|d| d.truncate(600), "protective MBR but no GPT header at LBA 1");
        check(&|d| { d[512 + 12] = 91; fix_header_crc(d, 512) }, "GPT header size out of range");
        check(&|d| { d[512 + 24] = 2; fix_header_crc(d, 512) }, "GPT header is not at LBA 1");
        check(&|d| { d[512 + 84] = 100; fix_header_crc(d, 512) }, "GPT entry size is not 128 * 2^n");
        check(&|d| { d[512 + 80..512 + 84].fill(0); fix_header_crc(d, 512) }, "GPT entry array size out of range");
        check(&|d| { d[512 + 72] = 1; fix_header_crc(d, 512) }, "GPT entry array overlaps the header");
        check(&|d| { d[512 + 72..512 + 80].fill(0xFF); fix_header_crc(d, 512) }, "GPT entry array lies beyond the bytes read");
        check(&|d| { d[512 + 48..512 + 56].fill(0); fix_header_crc(d, 512) }, "GPT usable area is empty");
        // An entry array placed further out: bytes_needed says how much to read.
        let mut far = good.clone();
        far[512 + 72] = 40;
        fix_header_crc(&mut far, 512);
        assert_eq!(bytes_needed(&far), Some(40 * 512 + 16384));
        far.resize(40 * 512 + 16384, 0);
        far.copy_within(1024..1024 + 16384, 40 * 512);
        assert_eq!(find(&far, &Want::PartLabel("autosvr-boot")), Some(2));

        // An MBR with a bad boot indicator, and a FAT filesystem on the whole disk.
        let mbr = head_of(&sfdisk_image(&dir, "mbr", 16 << 20, "label: dos\n,,83\n"), 512);
        let mut bad = mbr.clone();
        bad[446 + 16] = 0x7F;
        assert_eq!(partitions(&bad).err(), Some("MBR boot indicator is not 0 or 0x80: not a partition table"));
        let fat = dir.path("fat");
        run("mkfs.fat", &["-C", fat.to_str().expect("utf-8"), "8192"]);
        assert_eq!(partitions(&head_of(&fat, DISK_HEAD_BYTES)).err(), Some("a FAT filesystem, not a partition table"));
        // blkid agrees that the FAT image has no partition table.
        assert_eq!(kv(&blkid_export(&[fat.to_str().expect("utf-8")]), "PTTYPE"), "");
    }

    #[test]
    fn garbage_does_not_panic() {
        let dir = Scratch::new("gptgarbage");
        let gpt = head_of(&sfdisk_image(&dir, "disk", 64 << 20, GPT_SCRIPT), DISK_HEAD_BYTES);
        for n in (0..1100).chain((1100..DISK_HEAD_BYTES).step_by(97)) {
            let _ = partitions(&gpt[..n]).map(|p| p.count());
            let _ = bytes_needed(&gpt[..n]);
        }
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for round in 0..300 {
            let mut d = gpt.clone();
            for _ in 0..(1 + round % 16) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let pos = (x % d.len() as u64) as usize;
                d[pos] = (x >> 32) as u8;
            }
            if round % 3 == 1 {
                let crc = crc32(&d[1024..1024 + 16384]);
                d[512 + 88..512 + 92].copy_from_slice(&crc.to_le_bytes());
            }
            if round % 3 != 2 {
                fix_header_crc(&mut d, 512);
            }
            if let Ok(p) = partitions(&d) {
                for (n, ids) in p {
                    assert!(n >= 1);
                    assert!(ids.partuuid.len() <= 36);
                }
            }
            let _ = find(&d, &Want::PartUuid("x"));
            let _ = describe(&d, 1);
        }
        assert!(partitions(&[0u8; DISK_HEAD_BYTES]).is_err());
        assert!(partitions(&[0xFFu8; DISK_HEAD_BYTES]).is_err());
    }

    #[test]
    fn crc32_check_values() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b"The quick brown fox jumps over the lazy dog"), 0x414F_A339);
        // The nibble table gives what bit-at-a-time gives, on any data.
        let bitwise = |d: &[u8]| {
            let mut c = !0u32;
            for &b in d {
                c ^= u32::from(b);
                for _ in 0..8 {
                    c = (c >> 1) ^ (POLY & (c & 1).wrapping_neg());
                }
            }
            !c
        };
        let mut data = [0u8; 5000];
        for (i, b) in data.iter_mut().enumerate() {
            *b = ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8;
        }
        for n in [0, 1, 7, 92, 4096, 5000] {
            assert_eq!(crc32(&data[..n]), bitwise(&data[..n]), "{n} bytes");
        }
    }

    #[test]
    fn long_gpt_names() {
        let dir = Scratch::new("gptnames");
        let omega = "Ω".repeat(36); // 72 bytes of UTF-8: fits.
        let euro = "€".repeat(36); // 108 bytes: cut to 24 characters in PartIds.
        let script = format!("label: gpt\n1: size=1MiB, name=\"{omega}\"\n2: size=1MiB, name=\"{euro}\"\n");
        let img = sfdisk_image(&dir, "disk", 16 << 20, &script);
        let head = head_of(&img, DISK_HEAD_BYTES);
        let theirs = partx(&img, None);
        assert_eq!((theirs[0].2.as_str(), theirs[1].2.as_str()), (omega.as_str(), euro.as_str()));
        let p1 = describe(&head, 1).expect("partition 1");
        assert_eq!(p1.partlabel.as_str(), omega);
        let p2 = describe(&head, 2).expect("partition 2");
        assert_eq!(p2.partlabel.as_str(), "€".repeat(24));
        // Matching uses the whole name, not the shortened text.
        assert!(p2.matches(&Want::PartLabel(&euro)));
        assert!(!p2.matches(&Want::PartLabel(&"€".repeat(24))));
        assert_eq!(find(&head, &Want::PartLabel(&euro)), Some(2));
        assert_eq!(find(&head, &Want::PartLabel(&omega)), Some(1));
    }

    #[test]
    fn unpaired_surrogates_and_astral_names() {
        let dir = Scratch::new("gptsurrogates");
        let img = sfdisk_image(&dir, "disk", 16 << 20, "label: gpt\n1: size=1MiB, name=\"x\"\n");
        let mut head = head_of(&img, DISK_HEAD_BYTES);
        // Entry 0's name: 'a', an unpaired high surrogate, 'b', then U+1F600 as a pair.
        let name: [u16; 5] = [0x61, 0xD800, 0x62, 0xD83D, 0xDE00];
        for (i, u) in name.iter().enumerate() {
            head[1024 + 56 + 2 * i..1024 + 58 + 2 * i].copy_from_slice(&u.to_le_bytes());
        }
        let crc = crc32(&head[1024..1024 + 16384]);
        head[512 + 88..512 + 92].copy_from_slice(&crc.to_le_bytes());
        fix_header_crc(&mut head, 512);
        assert_eq!(describe(&head, 1).map(|d| d.partlabel.as_str().to_string()), Some("a?b\u{1F600}".to_string()));
        assert_eq!(find(&head, &Want::PartLabel("a?b\u{1F600}")), Some(1));
    }
}
