//! Whole-disk images without root: one boot partition holding a directory tree, written with
//! Debian's tools on a sparse file. The filesystem is made in a file of its own (`mkfs.fat` +
//! `mcopy`, or `mkfs.ext4 -d`), `sfdisk` writes the partition table (MBR or GPT) into the disk
//! file, and the filesystem is copied in at the partition's offset. [`check`] reads everything
//! back with the tools a user would use (`sfdisk --json`, `blkid -p`, `mdir`/`debugfs`).
//!
//! Used by `cargo xtask image --disk` (board_image.rs) and by the boot-stage test disks
//! (images.rs), so the tests boot what a vendor flashes.

use crate::board::{BootPartition, Firmware};
use anyhow::{bail, Context, Result};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const MIB: u64 = 1 << 20;

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Table {
    Mbr,
    Gpt,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Fs {
    Vfat { bits: u32 },
    Ext4,
}

impl Fs {
    /// The name the kernel and blkid give it.
    pub fn name(self) -> &'static str {
        match self {
            Fs::Vfat { .. } => "vfat",
            Fs::Ext4 => "ext4",
        }
    }
}

/// The disk: one partition at `start` of `size` bytes, and 1 MiB after it (GPT's backup table).
#[derive(Clone, Debug)]
pub struct Layout {
    pub table: Table,
    pub fs: Fs,
    pub start: u64,
    pub size: u64,
    pub label: String,
    /// GPT partition name.
    pub name: Option<String>,
    /// MBR active flag; GPT LegacyBIOSBootable attribute.
    pub bootable: bool,
    /// An EFI system partition (type 0xef / C12A7328-...): UEFI firmware looks for it.
    pub esp: bool,
}

/// The identifiers written into the disk, so that `PARTUUID=`, `UUID=` name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// MBR disk identifier: PARTUUID of partition 1 is `{mbr_id:08x}-01`.
    pub mbr_id: u32,
    pub gpt_disk: String,
    /// GPT partition GUID: the PARTUUID of partition 1.
    pub gpt_part: String,
    /// FAT volume serial: `UUID=XXXX-XXXX`.
    pub vfat_serial: u32,
    pub ext4_uuid: String,
}

impl Identity {
    /// The `PARTUUID=` value of the boot partition.
    pub fn partuuid(&self, table: Table) -> String {
        match table {
            Table::Mbr => format!("{:08x}-01", self.mbr_id),
            Table::Gpt => self.gpt_part.clone(),
        }
    }

    /// The `UUID=` value of the boot filesystem, as blkid prints it.
    pub fn fs_uuid(&self, fs: Fs) -> String {
        match fs {
            Fs::Vfat { .. } => format!("{:04X}-{:04X}", self.vfat_serial >> 16, self.vfat_serial & 0xffff),
            Fs::Ext4 => self.ext4_uuid.clone(),
        }
    }

    /// Identifiers derived from `seed` (the same seed gives the same disk, so builds are
    /// reproducible; a different board or system image gives a different one).
    pub fn derived(seed: &str) -> Identity {
        let h = |salt: &str| crate::images::fnv(crate::images::FNV_START, format!("{salt}\n{seed}").as_bytes());
        // A GUID in RFC 4122 variant 1, version 4 form (random-looking, as sfdisk makes them).
        let guid = |salt: &str| {
            let (a, b) = (h(&format!("{salt}.a")), h(&format!("{salt}.b")));
            format!(
                "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                a >> 32,
                (a >> 16) & 0xffff,
                a & 0xfff,
                0x8000 | ((b >> 48) & 0x3fff),
                b & 0xffff_ffff_ffff
            )
        };
        let nonzero = |v: u32| if v == 0 { 1 } else { v };
        Identity {
            mbr_id: nonzero(h("mbr") as u32),
            gpt_disk: guid("gpt-disk"),
            gpt_part: guid("gpt-part"),
            vfat_serial: nonzero(h("vfat") as u32),
            ext4_uuid: guid("ext4"),
        }
    }
}

impl Layout {
    /// The layout a board file's `[boot_partition]` describes (already validated).
    pub fn from_board(p: &BootPartition, firmware: Firmware) -> Result<Layout> {
        let table = match p.table.as_str() {
            "mbr" => Table::Mbr,
            "gpt" => Table::Gpt,
            t => bail!("boot_partition.table '{t}'"),
        };
        let fs = match (p.fs.as_str(), p.fat_bits) {
            ("vfat", Some(bits)) => Fs::Vfat { bits },
            ("ext4", None) => Fs::Ext4,
            (f, b) => bail!("boot_partition.fs '{f}' with fat_bits {b:?}"),
        };
        Ok(Layout {
            table,
            fs,
            start: p.start_mib * MIB,
            size: p.size_mib * MIB,
            label: p.label.clone(),
            name: p.name.clone(),
            bootable: p.bootable,
            esp: firmware == Firmware::Uefi,
        })
    }

    pub fn disk_bytes(&self) -> u64 {
        self.start + self.size + MIB
    }

    /// The partition type as sfdisk writes it and `sfdisk --json` prints it.
    pub fn part_type(&self) -> &'static str {
        match (self.table, self.fs, self.esp) {
            (Table::Mbr, Fs::Vfat { .. }, true) => "ef",
            (Table::Mbr, Fs::Vfat { bits: 32 }, false) => "c", // W95 FAT32 (LBA)
            (Table::Mbr, Fs::Vfat { .. }, false) => "e",       // W95 FAT16 (LBA)
            (Table::Mbr, Fs::Ext4, _) => "83",
            (Table::Gpt, Fs::Vfat { .. }, true) => "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
            (Table::Gpt, Fs::Vfat { .. }, false) => "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
            (Table::Gpt, Fs::Ext4, _) => "0FC63DAF-8483-4772-8E79-3D69D8477DE4",
        }
    }

    /// The `sfdisk` script of the disk: a vendor can replay it on a real card.
    pub fn sfdisk_script(&self, id: &Identity) -> String {
        let (start, size) = (self.start / 512, self.size / 512);
        match self.table {
            Table::Gpt => {
                let mut part = format!("start={start}, size={size}, type={}, uuid={}", self.part_type(), id.gpt_part);
                if let Some(n) = &self.name {
                    part.push_str(&format!(", name=\"{n}\""));
                }
                if self.bootable {
                    part.push_str(", attrs=\"LegacyBIOSBootable\"");
                }
                format!("label: gpt\nlabel-id: {}\nunit: sectors\nfirst-lba: 2048\n\n{part}\n", id.gpt_disk)
            }
            Table::Mbr => format!(
                "label: dos\nlabel-id: 0x{:08x}\nunit: sectors\n\nstart={start}, size={size}, type={}{}\n",
                id.mbr_id,
                self.part_type(),
                if self.bootable { ", bootable" } else { "" }
            ),
        }
    }
}

/// Runs a command; its error names the command and quotes stderr.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("running {:?} (has `cargo xtask setup` run?)", cmd.get_program()))?;
    if !out.status.success() {
        bail!("{cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Every file under `tree`, as `/`-separated paths relative to it, sorted.
pub fn tree_files(tree: &Path) -> Result<Vec<String>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
        for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let e = e?;
            let p = e.path();
            if e.file_type()?.is_dir() {
                walk(root, &p, out)?;
            } else {
                out.push(p.strip_prefix(root)?.to_string_lossy().into_owned());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(tree, tree, &mut out)?;
    out.sort();
    Ok(out)
}

/// Writes the disk `out` (replacing it) with `tree` as the boot partition's contents, then
/// checks it with [`check`]. `work` is a scratch directory (removed afterwards).
pub fn write(layout: &Layout, id: &Identity, tree: &Path, out: &Path, work: &Path) -> Result<()> {
    if work.exists() {
        std::fs::remove_dir_all(work)?;
    }
    std::fs::create_dir_all(work)?;
    let fs = work.join("fs.img");
    std::fs::File::create(&fs)?.set_len(layout.size)?;
    match layout.fs {
        Fs::Ext4 => {
            run(Command::new("mkfs.ext4")
                .args(["-q", "-F", "-L", &layout.label, "-U", &id.ext4_uuid, "-E"])
                .arg(format!("root_owner=0:0,hash_seed={}", id.ext4_uuid))
                .arg("-d")
                .arg(tree)
                .arg(&fs))?;
        }
        Fs::Vfat { bits } => {
            run(Command::new("mkfs.fat")
                .args(["-F", &bits.to_string(), "-n", &layout.label, "-i", &format!("{:08X}", id.vfat_serial)])
                .arg(&fs))?;
            let mut top: Vec<PathBuf> = std::fs::read_dir(tree)?.map(|e| e.map(|e| e.path())).collect::<std::io::Result<_>>()?;
            top.sort();
            for p in top {
                run(Command::new("mcopy").env("MTOOLS_SKIP_CHECK", "1").arg("-i").arg(&fs).args(["-s", "-Q"]).arg(&p).arg("::/"))
                    .with_context(|| format!("copying {} onto the {}-MiB FAT partition", p.display(), layout.size / MIB))?;
            }
        }
    }
    let _ = std::fs::remove_file(out);
    std::fs::File::create(out)?.set_len(layout.disk_bytes())?;
    let mut child = Command::new("sfdisk")
        .args(["-q", "--no-reread", "--no-tell-kernel"])
        .arg(out)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running sfdisk (has `cargo xtask setup` run?)")?;
    child.stdin.take().context("sfdisk stdin")?.write_all(layout.sfdisk_script(id).as_bytes())?;
    let o = child.wait_with_output()?;
    if !o.status.success() {
        bail!("sfdisk {} failed: {}", out.display(), String::from_utf8_lossy(&o.stderr).trim());
    }
    copy_sparse(&fs, out, layout.start)?;
    check(out, layout, id, &tree_files(tree)?)?;
    std::fs::remove_dir_all(work)?;
    Ok(())
}

/// Writes `src` into `dst` at `offset`, skipping all-zero blocks so that `dst` stays sparse.
fn copy_sparse(src: &Path, dst: &Path, offset: u64) -> Result<()> {
    let mut r = std::fs::File::open(src)?;
    let mut w = std::fs::OpenOptions::new().write(true).open(dst)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos = offset;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            w.seek(SeekFrom::Start(pos))?;
            w.write_all(&buf[..n])?;
        }
        pos += n as u64;
    }
    Ok(())
}

/// `KEY=value` lines of `blkid -o export`.
fn export_fields(text: &str) -> Vec<(String, String)> {
    text.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Reads the disk back: the partition table with `sfdisk --json`, the filesystem with `blkid -p`
/// at the partition's offset, and `files` (paths relative to the partition's root) with mtools
/// or debugfs.
pub fn check(img: &Path, layout: &Layout, id: &Identity, files: &[String]) -> Result<()> {
    let json = run(Command::new("sfdisk").arg("--json").arg(img))?;
    let flat: String = json.to_lowercase().split_whitespace().collect();
    let mut want = vec![
        format!("\"start\":{}", layout.start / 512),
        format!("\"size\":{}", layout.size / 512),
        format!("\"type\":\"{}\"", layout.part_type().to_lowercase()),
    ];
    match layout.table {
        Table::Gpt => {
            want.extend(["\"label\":\"gpt\"".to_string(), format!("\"id\":\"{}\"", id.gpt_disk), format!("\"uuid\":\"{}\"", id.gpt_part)]);
            if let Some(n) = &layout.name {
                want.push(format!("\"name\":\"{}\"", n.to_lowercase()));
            }
            if layout.bootable {
                want.push("\"attrs\":\"legacybiosbootable\"".to_string());
            }
        }
        Table::Mbr => {
            want.extend(["\"label\":\"dos\"".to_string(), format!("\"id\":\"0x{:08x}\"", id.mbr_id)]);
            if layout.bootable {
                want.push("\"bootable\":true".to_string());
            }
        }
    }
    if let Some(w) = want.iter().find(|w| !flat.contains(w.as_str())) {
        bail!("sfdisk --json {}: no {w}:\n{json}", img.display());
    }
    let probe = run(Command::new("blkid").args(["-p", "-o", "export", "-O"]).arg(layout.start.to_string()).arg(img))?;
    let fields = export_fields(&probe);
    let get = |k: &str| fields.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str());
    let mut expect = vec![("TYPE", layout.fs.name().to_string()), ("LABEL", layout.label.clone()), ("UUID", id.fs_uuid(layout.fs))];
    if let Fs::Vfat { bits } = layout.fs {
        expect.push(("VERSION", format!("FAT{bits}")));
    }
    for (k, v) in expect {
        if get(k) != Some(v.as_str()) {
            bail!("blkid -p -O {} {}: {k} is {:?}, expected {v}:\n{probe}", layout.start, img.display(), get(k));
        }
    }
    // The files, listed one directory at a time from the filesystem inside the disk.
    let mut dirs: Vec<&str> = files.iter().map(|f| f.rsplit_once('/').map(|(d, _)| d).unwrap_or("")).collect();
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        let listing = match layout.fs {
            // e2fsprogs' unix I/O manager takes an offset after the file name.
            Fs::Ext4 => run(Command::new("debugfs").args(["-R", &format!("ls -p /{dir}")]).arg(format!("{}?offset={}", img.display(), layout.start)))?,
            Fs::Vfat { .. } => run(Command::new("mdir")
                .env("MTOOLS_SKIP_CHECK", "1")
                .arg("-i")
                .arg(format!("{}@@{}", img.display(), layout.start))
                .args(["-b", &format!("::/{dir}")]))?,
        };
        for f in files.iter().filter(|f| f.rsplit_once('/').map(|(d, _)| d).unwrap_or("") == dir) {
            let name = f.rsplit('/').next().unwrap_or(f);
            // mdir -b prints `::/dir/name`, debugfs -p `/ino/mode/uid/gid/name/size/`.
            if !listing.lines().any(|l| l.ends_with(&format!("/{name}")) || l.contains(&format!("/{name}/"))) {
                bail!("{}: {f} is missing from the filesystem:\n{listing}", img.display());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(table: Table, fs: Fs) -> Layout {
        Layout { table, fs, start: MIB, size: 62 * MIB, label: "AUTOSVR".into(), name: None, bootable: false, esp: false }
    }

    #[test]
    fn derived_identities_are_stable_and_well_formed() {
        let a = Identity::derived("rpi4 0123");
        assert_eq!(a, Identity::derived("rpi4 0123"));
        assert_ne!(a.mbr_id, Identity::derived("rpi4 0124").mbr_id);
        for g in [&a.gpt_disk, &a.gpt_part, &a.ext4_uuid] {
            let lens: Vec<usize> = g.split('-').map(str::len).collect();
            assert_eq!(lens, [8, 4, 4, 4, 12], "{g}");
            assert_eq!(g.as_bytes()[14], b'4', "version 4: {g}");
            assert!(matches!(g.as_bytes()[19], b'8' | b'9' | b'a' | b'b'), "variant 1: {g}");
        }
        assert_eq!(a.partuuid(Table::Mbr), format!("{:08x}-01", a.mbr_id));
        let id = Identity { vfat_serial: 0x5eed_1234, ..a };
        assert_eq!(id.fs_uuid(Fs::Vfat { bits: 32 }), "5EED-1234");
    }

    #[test]
    fn sfdisk_scripts_carry_type_flags_and_ids() {
        let id = Identity::derived("x");
        let mut l = layout(Table::Mbr, Fs::Vfat { bits: 32 });
        l.bootable = true;
        let s = l.sfdisk_script(&id);
        assert!(s.contains("label: dos") && s.contains(&format!("label-id: 0x{:08x}", id.mbr_id)));
        assert!(s.contains("start=2048, size=126976, type=c, bootable"), "{s}");
        let mut g = layout(Table::Gpt, Fs::Vfat { bits: 16 });
        g.name = Some("autosvr_boot".into());
        g.bootable = true;
        let s = g.sfdisk_script(&id);
        assert!(s.contains("type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7") && s.contains("name=\"autosvr_boot\""), "{s}");
        assert!(s.contains("attrs=\"LegacyBIOSBootable\"") && s.contains(&id.gpt_part), "{s}");
        g.esp = true;
        assert_eq!(g.part_type(), "C12A7328-F81F-11D2-BA4B-00A0C93EC93B");
        assert_eq!(layout(Table::Mbr, Fs::Ext4).part_type(), "83");
        assert_eq!(layout(Table::Mbr, Fs::Vfat { bits: 16 }).part_type(), "e");
        assert_eq!(l.disk_bytes(), 64 * MIB);
    }
}
