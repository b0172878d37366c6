//! Board files (`boards/NAME.toml`): a board is data, adding one is adding a file.
//!
//! [`load`] parses and validates a file; every error names the file and the key. Besides each
//! key's own form, the validator refuses combinations the hardware cannot boot: a target triple
//! of another architecture, a partition table or filesystem the board's firmware cannot read, a
//! boot device named in a way the partition table cannot provide (an MBR `PARTUUID=` on a GPT
//! disk), a label the filesystem cannot hold, a console baud rate that is not a standard rate.

use crate::arch::Arch;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

// Not every field is read by xtask yet: the files describe boards for the boot stage too.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Board {
    pub name: String,
    pub description: String,
    pub arch: String,
    pub target: String,
    /// Console device without /dev/ (`ttyS0`, `ttyAMA0`).
    pub console: String,
    pub baud: u32,
    /// The kernel command line the board boots with by default. In `autoinit.boot=PARTUUID=`,
    /// `x` digits are a placeholder the image build fills with the identifier it writes.
    pub cmdline: String,
    /// Kernel modules the boot stage loads, in order (dependencies come from modules.dep).
    #[serde(default)]
    pub modules: Vec<String>,
    pub capacities: Capacities,
    /// Where the boot stage finds `autosvr/system.img`: the partition the image build writes.
    pub boot_partition: BootPartition,
    /// Only QEMU boards: how to start the machine.
    pub qemu: Option<Qemu>,
    /// Only real boards: where the values come from and how the board boots.
    pub hardware: Option<Hardware>,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capacities {
    pub cmdline_bytes: u32,
    pub log_line_bytes: u32,
}

/// The boot partition and the disk around it, as `cargo xtask image --disk` writes them.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct BootPartition {
    /// `mbr` or `gpt`.
    pub table: String,
    /// `vfat` or `ext4`.
    pub fs: String,
    /// FAT variant for `vfat`: 16 or 32 (absent for ext4).
    pub fat_bits: Option<u32>,
    /// Where the partition starts, in MiB from the start of the disk (1 MiB keeps it aligned
    /// for SD cards and leaves room for the partition table).
    pub start_mib: u64,
    pub size_mib: u64,
    /// The filesystem's volume label (`LABEL=`).
    pub label: String,
    /// GPT partition name (`PARTLABEL=`); only with `table = "gpt"`.
    pub name: Option<String>,
    /// MBR: the active flag; GPT: the LegacyBIOSBootable attribute (U-Boot's distro boot and
    /// BIOS boot code look for it).
    #[serde(default)]
    pub bootable: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Qemu {
    pub system: String,
    pub machine: String,
    pub cpu: String,
    pub memory_mb: u32,
    /// The QEMU device that attaches a test disk (`virtio-blk-pci` on a PCI machine,
    /// `virtio-blk-device` on virtio-mmio); the boot-stage tests need it.
    pub disk_device: Option<String>,
    /// QEMU's `-bios` (`default`: the machine's own firmware, e.g. OpenSBI on riscv64 virt);
    /// not passed when absent.
    pub bios: Option<String>,
    pub kernel_package: String,
    pub debian_arch: String,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hardware {
    /// What reads the boot partition first; see [`Firmware`].
    pub firmware: String,
    /// The boot loader configuration the image build writes on the boot partition; see
    /// [`BootConfig`].
    pub boot_config: String,
    /// Device tree file the boot loader passes to the kernel (U-Boot's `fdt`), where the boot
    /// loader does not choose it itself.
    pub dtb: Option<String>,
    /// Debian package of the kernel the board file is written for: `modules` are that kernel's
    /// loadable modules and `console` is the name its serial driver gives the port (the same
    /// UART is ttyS0 under one kernel and ttyS1 or ttyO0 under another).
    pub kernel_package: String,
    /// Lines the board's firmware or boot loader must find in its own configuration file on the
    /// boot partition (the Raspberry Pi's config.txt); absent where the board needs none.
    pub firmware_config: Option<FirmwareConfig>,
    /// The vendor documents the values are taken from.
    pub references: Vec<String>,
}

#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirmwareConfig {
    /// Path of the file inside the boot partition, e.g. `config.txt`.
    pub file: String,
    /// Lines the file must contain, each a whole line.
    pub lines: Vec<String>,
}

/// What reads the boot partition first, and what it can read. The rules are in
/// [`Firmware::rules`], each with the document it comes from.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Firmware {
    /// Raspberry Pi 3 (BCM2837): boot ROM, then bootcode.bin and start.elf from the SD card.
    Rpi3,
    /// Raspberry Pi 4 (BCM2711): the SPI EEPROM boot loader, then start4.elf.
    Rpi4,
    /// TI AM335x boot ROM (BeagleBone Black), then MLO and U-Boot from the boot partition.
    Am335xRom,
    /// U-Boot from on-board flash (VisionFive 2's QSPI), reading the SD card or eMMC.
    UBoot,
    /// PC UEFI firmware.
    Uefi,
    /// PC BIOS with a boot loader in the MBR.
    Bios,
    /// QEMU's direct kernel boot (`-kernel`, `-initrd`, `-append`): nothing reads the disk
    /// before the kernel.
    Qemu,
}

/// What [`Firmware`] accepts.
pub struct FirmwareRules {
    pub tables: &'static [&'static str],
    pub fs: &'static [&'static str],
    /// For vfat.
    pub fat_bits: &'static [u32],
    /// The boot partition must be marked bootable (MBR active flag).
    pub needs_bootable: bool,
    pub configs: &'static [BootConfig],
    /// Why, for the error message.
    pub source: &'static str,
}

impl Firmware {
    pub const NAMES: &'static [&'static str] = &["rpi3", "rpi4", "am335x-rom", "u-boot", "uefi", "bios"];

    pub fn parse(s: &str) -> Option<Firmware> {
        Some(match s {
            "rpi3" => Firmware::Rpi3,
            "rpi4" => Firmware::Rpi4,
            "am335x-rom" => Firmware::Am335xRom,
            "u-boot" => Firmware::UBoot,
            "uefi" => Firmware::Uefi,
            "bios" => Firmware::Bios,
            _ => return None,
        })
    }

    pub fn rules(self) -> FirmwareRules {
        use BootConfig::*;
        match self {
            // GPT came with the Pi 4's EEPROM boot loader (rpi-eeprom release notes,
            // 2020-05-26); the Pi 3's first stage is in its boot ROM, which cannot be updated
            // (raspberrypi/firmware#1711). Sources in boards/rpi3.toml.
            Firmware::Rpi3 => FirmwareRules {
                tables: &["mbr"],
                fs: &["vfat"],
                fat_bits: &[16, 32],
                needs_bootable: false,
                configs: &[ConfigTxt],
                source: "the Raspberry Pi 3 boot ROM reads only FAT16/FAT32 on an MBR disk",
            },
            Firmware::Rpi4 => FirmwareRules {
                tables: &["mbr", "gpt"],
                fs: &["vfat"],
                fat_bits: &[16, 32],
                needs_bootable: false,
                configs: &[ConfigTxt],
                source: "the Raspberry Pi 4 EEPROM boot loader reads FAT16/FAT32 on MBR or GPT",
            },
            // AM335x TRM (SPRUH73) ch. 26, MMC/SD file-system boot: MLO from an active primary
            // FAT12/16/32 partition of an MBR disk.
            Firmware::Am335xRom => FirmwareRules {
                tables: &["mbr"],
                fs: &["vfat"],
                fat_bits: &[16, 32],
                needs_bootable: true,
                configs: &[UEnvTxt, Extlinux],
                source: "the AM335x boot ROM loads MLO from an active FAT partition of an MBR disk",
            },
            // U-Boot reads MBR and GPT (CONFIG_DOS_PARTITION, CONFIG_EFI_PARTITION), FAT and ext4.
            Firmware::UBoot => FirmwareRules {
                tables: &["mbr", "gpt"],
                fs: &["vfat", "ext4"],
                fat_bits: &[16, 32],
                needs_bootable: false,
                configs: &[Extlinux, UEnvTxt],
                source: "U-Boot reads FAT or ext4 on MBR or GPT",
            },
            // UEFI specification, "File System Format": the EFI system partition is FAT, on
            // GPT or MBR.
            Firmware::Uefi => FirmwareRules {
                tables: &["gpt", "mbr"],
                fs: &["vfat"],
                fat_bits: &[16, 32],
                needs_bootable: false,
                configs: &[LoaderEntry],
                source: "UEFI firmware reads the FAT EFI system partition",
            },
            // The MBR boot code of BIOS boot loaders (SYSLINUX's mbr.bin) starts the active
            // partition.
            Firmware::Bios => FirmwareRules {
                tables: &["mbr"],
                fs: &["vfat", "ext4"],
                fat_bits: &[16, 32],
                needs_bootable: true,
                configs: &[Extlinux],
                source: "BIOS MBR boot code starts the active partition of an MBR disk",
            },
            Firmware::Qemu => FirmwareRules {
                tables: &["mbr", "gpt"],
                fs: &["vfat", "ext4"],
                fat_bits: &[16, 32],
                needs_bootable: false,
                configs: &[BootConfig::None],
                source: "QEMU loads the kernel and initramfs itself",
            },
        }
    }
}

/// The boot loader configuration the image build writes on the boot partition, naming the
/// kernel (`vmlinuz`), the initramfs (`initramfs.cpio.gz`) and the command line.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum BootConfig {
    /// Raspberry Pi firmware: `config.txt` (kernel=, initramfs) and `cmdline.txt`.
    ConfigTxt,
    /// U-Boot: `uEnv.txt` with a `uenvcmd` that loads and boots them.
    UEnvTxt,
    /// U-Boot distro boot or SYSLINUX/EXTLINUX: `extlinux/extlinux.conf`.
    Extlinux,
    /// A Boot Loader Specification entry, `loader/entries/autosvr.conf` (systemd-boot).
    LoaderEntry,
    /// Nothing: QEMU boards boot with `-kernel -initrd -append`.
    None,
}

impl BootConfig {
    pub fn parse(s: &str) -> Option<BootConfig> {
        Some(match s {
            "config.txt" => BootConfig::ConfigTxt,
            "uEnv.txt" => BootConfig::UEnvTxt,
            "extlinux.conf" => BootConfig::Extlinux,
            "loader-entry" => BootConfig::LoaderEntry,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            BootConfig::ConfigTxt => "config.txt",
            BootConfig::UEnvTxt => "uEnv.txt",
            BootConfig::Extlinux => "extlinux.conf",
            BootConfig::LoaderEntry => "loader-entry",
            BootConfig::None => "none",
        }
    }
}

/// The standard termios rates (`B9600` ... `B4000000` in asm-generic/termbits.h) from 1200 up.
pub const STANDARD_BAUDS: &[u32] = &[
    1200, 1800, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 500000, 576000, 921600, 1000000,
    1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000,
];

impl Board {
    pub fn arch(&self) -> Result<Arch> {
        Arch::parse(&self.arch)
    }

    /// The firmware that reads the boot partition (QEMU's direct boot on QEMU boards).
    pub fn firmware(&self) -> Firmware {
        self.hardware.as_ref().and_then(|h| Firmware::parse(&h.firmware)).unwrap_or(Firmware::Qemu)
    }

    pub fn boot_config(&self) -> BootConfig {
        self.hardware.as_ref().and_then(|h| BootConfig::parse(&h.boot_config)).unwrap_or(BootConfig::None)
    }

    /// The value of `autoinit.boot=` in the command line, if any.
    pub fn boot_spec(&self) -> Option<&str> {
        boot_spec(&self.cmdline)
    }
}

/// The value of the last `autoinit.boot=` of a command line (the init takes the last one).
pub fn boot_spec(cmdline: &str) -> Option<&str> {
    cmdline.split_whitespace().rev().find_map(|w| w.strip_prefix("autoinit.boot="))
}

/// How `autoinit.boot=` names the boot partition.
#[derive(Debug, PartialEq, Eq)]
pub enum BootSpec<'a> {
    Label(&'a str),
    /// `PARTUUID=dddddddd-NN`: MBR disk identifier (hex, or `x` placeholders) and partition.
    MbrPartuuid { disk: &'a str, part: &'a str },
    /// `PARTUUID=` a GPT partition GUID (or `x` placeholders in the same shape).
    GptPartuuid(&'a str),
    PartLabel(&'a str),
    Uuid(&'a str),
    Path(&'a str),
}

impl<'a> BootSpec<'a> {
    pub fn parse(s: &'a str) -> Result<BootSpec<'a>> {
        let hexish = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_hexdigit() || c == 'x');
        let nonempty = |v: &'a str| if v.is_empty() { bail!("'{s}': empty value") } else { Ok(v) };
        Ok(if let Some(v) = s.strip_prefix("LABEL=") {
            BootSpec::Label(nonempty(v)?)
        } else if let Some(v) = s.strip_prefix("PARTUUID=") {
            let parts: Vec<&str> = v.split('-').collect();
            let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
            if lens == [8, 2] && hexish(parts[0]) && parts[1].chars().all(|c| c.is_ascii_hexdigit()) {
                BootSpec::MbrPartuuid { disk: parts[0], part: parts[1] }
            } else if lens == [8, 4, 4, 4, 12] && parts.iter().all(|p| hexish(p)) {
                BootSpec::GptPartuuid(v)
            } else {
                bail!("'{s}': expected PARTUUID=dddddddd-NN (MBR) or PARTUUID=<GUID> (GPT)")
            }
        } else if let Some(v) = s.strip_prefix("PARTLABEL=") {
            BootSpec::PartLabel(nonempty(v)?)
        } else if let Some(v) = s.strip_prefix("UUID=") {
            BootSpec::Uuid(nonempty(v)?)
        } else if s.starts_with("/dev/") && s.len() > 5 {
            BootSpec::Path(s)
        } else {
            bail!("'{s}': expected LABEL=, UUID=, PARTUUID=, PARTLABEL= or /dev/NAME")
        })
    }
}

pub fn dir() -> PathBuf {
    crate::root().join("boards")
}

/// Loads and validates `boards/NAME.toml`; errors name the file and the key.
pub fn load(name: &str) -> Result<Board> {
    load_path(&dir().join(format!("{name}.toml")))
}

pub fn load_path(path: &Path) -> Result<Board> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let board: Board = toml::from_str(&text).with_context(|| format!("{}", path.display()))?;
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    validate(&board, &stem).with_context(|| format!("{}", path.display()))?;
    Ok(board)
}

fn validate(b: &Board, file_stem: &str) -> Result<()> {
    if b.name != file_stem {
        bail!("key 'name': '{}' differs from the file name '{file_stem}.toml' (`--board NAME` finds boards by file name)", b.name);
    }
    let arch = Arch::parse(&b.arch).context("key 'arch'")?;
    if b.target != arch.triple() {
        bail!("key 'target': '{}' does not match arch '{}' (expected '{}')", b.target, b.arch, arch.triple());
    }
    if b.console.is_empty() || b.console.contains('/') {
        bail!("key 'console': '{}' must be a device name such as ttyS0", b.console);
    }
    if !STANDARD_BAUDS.contains(&b.baud) {
        bail!("key 'baud': {} is not a standard serial rate (e.g. 9600, 115200, 1500000)", b.baud);
    }
    if !b.cmdline.split_whitespace().any(|w| w.starts_with("console=")) {
        bail!("key 'cmdline': no console= argument, the kernel would not log to '{}'", b.console);
    }
    // console=NAME[,BAUD[parity bits flow]]: the one naming our console must carry our rate.
    let ours: Vec<&str> = b
        .cmdline
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("console="))
        .filter(|v| v.split(',').next() == Some(b.console.as_str()))
        .collect();
    if ours.is_empty() {
        bail!("key 'cmdline': no console={}[,options] argument, though key 'console' is '{}'", b.console, b.console);
    }
    for v in &ours {
        if let Some(opts) = v.split(',').nth(1) {
            let rate: String = opts.chars().take_while(|c| c.is_ascii_digit()).collect();
            if rate != b.baud.to_string() {
                bail!("key 'cmdline': console={v} sets {rate} baud, key 'baud' is {}", b.baud);
            }
        }
    }
    if b.cmdline.len() >= b.capacities.cmdline_bytes as usize {
        bail!("key 'cmdline': {} bytes, capacities.cmdline_bytes is {}", b.cmdline.len(), b.capacities.cmdline_bytes);
    }
    if b.capacities.log_line_bytes < 80 {
        bail!("key 'capacities.log_line_bytes': {} is shorter than one console line (80)", b.capacities.log_line_bytes);
    }
    if let Some(m) = b.modules.iter().find(|m| m.is_empty() || m.contains(['/', ' ']) || m.ends_with(".ko") || m.contains(".ko.")) {
        bail!("key 'modules': '{m}' must be a module name such as sdhci_iproc, not a path or file name");
    }
    match (&b.qemu, &b.hardware) {
        (None, None) => bail!("neither [qemu] nor [hardware]: a board is one or the other"),
        (Some(_), Some(_)) => bail!("both [qemu] and [hardware]: a board is one or the other"),
        _ => {}
    }
    if let Some(q) = &b.qemu {
        if q.debian_arch != arch.debian() {
            bail!("key 'qemu.debian_arch': '{}' does not match arch '{}' (expected '{}')", q.debian_arch, b.arch, arch.debian());
        }
        if let Some(d) = q.disk_device.as_deref().filter(|d| d.is_empty() || d.contains([',', ' ', '='])) {
            bail!("key 'qemu.disk_device': '{d}' must be a QEMU device name such as virtio-blk-pci");
        }
        if q.bios.as_deref().is_some_and(|b| b.is_empty() || b.contains([',', ' '])) {
            bail!("key 'qemu.bios': '{}' must be `default` or a firmware file name", q.bios.as_deref().unwrap_or(""));
        }
    }
    if let Some(h) = &b.hardware {
        if Firmware::parse(&h.firmware).is_none() {
            bail!("key 'hardware.firmware': '{}' (expected one of {})", h.firmware, Firmware::NAMES.join(", "));
        }
        let Some(config) = BootConfig::parse(&h.boot_config) else {
            bail!("key 'hardware.boot_config': '{}' (expected config.txt, uEnv.txt, extlinux.conf or loader-entry)", h.boot_config);
        };
        let rules = b.firmware().rules();
        if !rules.configs.contains(&config) {
            let ok: Vec<&str> = rules.configs.iter().map(|c| c.name()).collect();
            bail!("key 'hardware.boot_config': '{}' is not read by firmware '{}' (it reads {})", h.boot_config, h.firmware, ok.join(", "));
        }
        if let Some(d) = h.dtb.as_deref().filter(|d| d.is_empty() || d.starts_with('/') || d.contains(['\\', ' ']) || !d.ends_with(".dtb")) {
            bail!("key 'hardware.dtb': '{d}' must be a relative .dtb path on the boot partition");
        }
        if h.dtb.is_some() && !matches!(config, BootConfig::UEnvTxt | BootConfig::Extlinux) {
            bail!("key 'hardware.dtb': only U-Boot's uEnv.txt and extlinux.conf name a device tree ('{}' does not)", h.boot_config);
        }
        if !h.kernel_package.starts_with("linux-image-") {
            bail!("key 'hardware.kernel_package': '{}' is not a Debian kernel package (linux-image-...)", h.kernel_package);
        }
        if let Some(f) = &h.firmware_config {
            let bad = f.file.is_empty() || f.file.starts_with('/') || f.file.contains('\\') || f.file.split('/').any(|c| c == "..");
            if bad {
                bail!("key 'hardware.firmware_config.file': '{}' must be a relative path inside the boot partition", f.file);
            }
            if f.lines.is_empty() {
                bail!("key 'hardware.firmware_config.lines': empty (leave out [hardware.firmware_config] instead)");
            }
            if let Some(l) = f.lines.iter().find(|l| l.trim().is_empty() || l.contains(['\n', '\r'])) {
                bail!("key 'hardware.firmware_config.lines': {l:?} is not one non-empty line");
            }
        }
        if h.references.is_empty() {
            bail!("key 'hardware.references': cite the vendor documentation the values come from");
        }
        if b.boot_spec().is_none_or(|v| v.is_empty()) {
            bail!("key 'cmdline': a real board needs autoinit.boot=... naming its boot partition");
        }
    }
    validate_boot_partition(b)
}

/// `[boot_partition]` on its own, against the firmware, and against `autoinit.boot=`.
fn validate_boot_partition(b: &Board) -> Result<()> {
    let p = &b.boot_partition;
    let fw = b.firmware();
    let rules = fw.rules();
    let fw_name = b.hardware.as_ref().map(|h| h.firmware.as_str()).unwrap_or("qemu");
    if !matches!(p.table.as_str(), "mbr" | "gpt") {
        bail!("key 'boot_partition.table': '{}' (expected mbr or gpt)", p.table);
    }
    if !rules.tables.contains(&p.table.as_str()) {
        bail!("key 'boot_partition.table': '{}' cannot be read by firmware '{fw_name}': {}", p.table, rules.source);
    }
    if !matches!(p.fs.as_str(), "vfat" | "ext4") {
        bail!("key 'boot_partition.fs': '{}' (expected vfat or ext4)", p.fs);
    }
    if !rules.fs.contains(&p.fs.as_str()) {
        bail!("key 'boot_partition.fs': '{}' cannot be read by firmware '{fw_name}': {}", p.fs, rules.source);
    }
    match (p.fs.as_str(), p.fat_bits) {
        ("vfat", None) => bail!("key 'boot_partition.fat_bits': missing (16 or 32) for a vfat partition"),
        ("vfat", Some(bits)) if !rules.fat_bits.contains(&bits) => {
            bail!("key 'boot_partition.fat_bits': FAT{bits} cannot be read by firmware '{fw_name}' (FAT16 or FAT32)")
        }
        ("ext4", Some(_)) => bail!("key 'boot_partition.fat_bits': only for vfat, the partition is ext4"),
        _ => {}
    }
    if p.start_mib == 0 {
        bail!("key 'boot_partition.start_mib': 0 would overwrite the partition table (use 1 or more)");
    }
    // Cluster counts: FAT32 needs at least 65525 clusters (32 MiB of 512-byte clusters);
    // FAT16 at most 65524 clusters of up to 64 KiB (4 GiB); ext4 wants a few MiB for its journal.
    let min = match (p.fs.as_str(), p.fat_bits) {
        ("vfat", Some(32)) => 33,
        ("ext4", _) => 8,
        _ => 4,
    };
    if p.size_mib < min {
        bail!("key 'boot_partition.size_mib': {} MiB is too small for {}{} (at least {min})", p.size_mib, p.fs, p.fat_bits.map(|b| format!(" FAT{b}")).unwrap_or_default());
    }
    if p.fat_bits == Some(16) && p.size_mib > 4095 {
        bail!("key 'boot_partition.size_mib': {} MiB is too large for FAT16 (at most 4095; use fat_bits = 32)", p.size_mib);
    }
    if p.size_mib > 1 << 20 {
        bail!("key 'boot_partition.size_mib': {} MiB is larger than a boot partition needs to be (1 TiB)", p.size_mib);
    }
    if rules.needs_bootable && !p.bootable {
        bail!("key 'boot_partition.bootable': must be true for firmware '{fw_name}': {}", rules.source);
    }
    // Labels: FAT holds 11 bytes (upper case, as mkfs.fat and blkid show it), ext4 16.
    let label_ok = match p.fs.as_str() {
        "vfat" => {
            p.label.len() <= 11 && p.label.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '-')
        }
        _ => p.label.len() <= 16 && p.label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
    };
    if p.label.is_empty() || !label_ok {
        bail!(
            "key 'boot_partition.label': '{}' is not a {} label ({})",
            p.label,
            p.fs,
            if p.fs == "vfat" { "1-11 of A-Z 0-9 _ -" } else { "1-16 of A-Z a-z 0-9 _ -" }
        );
    }
    match (&p.name, p.table.as_str()) {
        (Some(_), "mbr") => bail!("key 'boot_partition.name': an MBR partition has no name (only GPT has PARTLABEL)"),
        (Some(n), _) if n.is_empty() || n.chars().count() > 36 || n.contains(['"', ',']) => {
            bail!("key 'boot_partition.name': '{n}' is not a GPT partition name (1-36 characters, no quotes or commas)")
        }
        _ => {}
    }
    // autoinit.boot= must name this partition in a way its table and filesystem can provide.
    let Some(spec) = b.boot_spec() else { return Ok(()) };
    let spec = BootSpec::parse(spec).context("key 'cmdline': autoinit.boot")?;
    match spec {
        BootSpec::Label(l) if l != p.label => {
            bail!("key 'cmdline': autoinit.boot=LABEL={l} but boot_partition.label is '{}'", p.label)
        }
        BootSpec::MbrPartuuid { part, .. } if p.table != "mbr" => {
            bail!("key 'cmdline': autoinit.boot=PARTUUID=...-{part} is the MBR form, but boot_partition.table is '{}' (a GPT PARTUUID is a GUID)", p.table)
        }
        BootSpec::MbrPartuuid { part, .. } if part != "01" => {
            bail!("key 'cmdline': autoinit.boot=PARTUUID=...-{part}, but the image build writes the boot partition as partition 01")
        }
        BootSpec::GptPartuuid(_) if p.table != "gpt" => {
            bail!("key 'cmdline': autoinit.boot=PARTUUID=<GUID> is the GPT form, but boot_partition.table is '{}' (use dddddddd-01)", p.table)
        }
        BootSpec::PartLabel(_) if p.table != "gpt" => {
            bail!("key 'cmdline': autoinit.boot=PARTLABEL= needs a GPT partition name, but boot_partition.table is '{}'", p.table)
        }
        BootSpec::PartLabel(l) if p.name.as_deref() != Some(l) => {
            bail!("key 'cmdline': autoinit.boot=PARTLABEL={l} but boot_partition.name is {:?}", p.name)
        }
        BootSpec::Uuid(u) => {
            let vfat = u.len() == 9 && u.as_bytes().get(4) == Some(&b'-') && u.chars().filter(|c| *c != '-').all(|c| c.is_ascii_hexdigit());
            let ext4 = u.len() == 36 && u.split('-').map(str::len).eq([8, 4, 4, 4, 12]);
            if (p.fs == "vfat" && !vfat) || (p.fs == "ext4" && !ext4) {
                bail!("key 'cmdline': autoinit.boot=UUID={u} is not the form of a {} UUID", p.fs);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Every board file, sorted by name.
pub fn all() -> Result<Vec<Board>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    paths.iter().map(|p| load_path(p)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_board_file_is_valid() {
        let boards = all().unwrap();
        assert!(boards.len() >= 11);
    }

    #[test]
    fn unknown_key_is_rejected_with_its_name() {
        let text = std::fs::read_to_string(dir().join("qemu-x86_64.toml")).unwrap() + "\nbogus = 1\n";
        let err = toml::from_str::<Board>(&text).unwrap_err().to_string();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn every_arch_has_a_qemu_board() {
        for arch in Arch::ALL {
            let b = load(&format!("qemu-{}", arch.name())).unwrap();
            assert_eq!(b.arch().unwrap(), arch);
            assert!(b.qemu.is_some(), "qemu-{} has no [qemu]", arch.name());
            assert_eq!(b.firmware(), Firmware::Qemu);
        }
    }

    #[test]
    fn bad_bios_is_rejected_with_its_key() {
        let text = std::fs::read_to_string(dir().join("qemu-riscv64.toml")).unwrap();
        assert!(text.contains("bios = \"default\""));
        let (err, path) = load_err("qemu-riscv64", &text.replace("bios = \"default\"", "bios = \"\""));
        assert!(err.contains(&path) && err.contains("qemu.bios"), "{err}");
    }

    #[test]
    fn every_arch_has_a_real_board() {
        let boards = all().unwrap();
        for arch in Arch::ALL {
            let real = boards.iter().any(|b| b.hardware.is_some() && b.arch().unwrap() == arch);
            assert!(real, "no boards/*.toml with [hardware] for {}", arch.name());
        }
    }

    const REAL: &str = r#"
name = "test"
description = "test board"
arch = "aarch64"
target = "aarch64-unknown-linux-musl"
console = "ttyS1"
baud = 115200
cmdline = "console=ttyS1,115200 autoinit.boot=LABEL=AUTOSVR"
modules = ["sdhci_iproc", "squashfs"]

[capacities]
cmdline_bytes = 4096
log_line_bytes = 256

[boot_partition]
table = "mbr"
fs = "vfat"
fat_bits = 32
start_mib = 4
size_mib = 256
label = "AUTOSVR"

[hardware]
firmware = "rpi4"
boot_config = "config.txt"
kernel_package = "linux-image-arm64"
references = ["a vendor document"]

[hardware.firmware_config]
file = "config.txt"
lines = ["enable_uart=1"]
"#;

    /// Loads `text` from a file `<dir>/<stem>.toml`, as `cargo xtask` would, and returns the
    /// error with its context and the file's path.
    fn load_err(stem: &str, text: &str) -> (String, String) {
        let dir = std::env::temp_dir().join(format!("autoinit-board-{}-{}", std::process::id(), unique()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{stem}.toml"));
        std::fs::write(&path, text).unwrap();
        let res = load_path(&path);
        std::fs::remove_dir_all(&dir).unwrap();
        (format!("{:#}", res.expect_err(stem)), path.display().to_string())
    }

    fn unique() -> usize {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    #[test]
    fn real_board_template_is_valid() {
        let b: Board = toml::from_str(REAL).unwrap();
        validate(&b, "test").unwrap();
        assert_eq!(b.hardware.as_ref().unwrap().firmware_config.as_ref().unwrap().lines, ["enable_uart=1"]);
        assert_eq!((b.firmware(), b.boot_config()), (Firmware::Rpi4, BootConfig::ConfigTxt));
    }

    /// Each case: a change to [`REAL`] and the key its error must name. Every case must fail.
    #[test]
    fn errors_name_the_file_and_the_key() {
        let r = |from: &str, to: &str| {
            assert!(REAL.contains(from), "the template has no {from:?}");
            REAL.replacen(from, to, 1)
        };
        let cases = [
            // Unknown keys and missing values.
            (r("lines = [", "bogus = 1\nlines = ["), "bogus"),
            (r("label = \"AUTOSVR\"\n", "label = \"AUTOSVR\"\ncolour = \"red\"\n"), "colour"),
            (r("kernel_package = \"linux-image-arm64\"\n", ""), "kernel_package"),
            (r("baud = 115200\n", ""), "baud"),
            (r("table = \"mbr\"\n", ""), "table"),
            (r("fat_bits = 32\n", ""), "boot_partition.fat_bits"),
            (r("[boot_partition]", "[boot_partitions]"), "boot_partitions"),
            (r("name = \"test\"", "name = \"other\""), "key 'name'"),
            // Values of the wrong form.
            (r("arch = \"aarch64\"", "arch = \"sparc\""), "key 'arch'"),
            (r("baud = 115200", "baud = 115201"), "key 'baud'"),
            (r("console = \"ttyS1\"", "console = \"/dev/ttyS1\""), "key 'console'"),
            (r("\"squashfs\"", "\"squashfs.ko\""), "key 'modules'"),
            (r("file = \"config.txt\"", "file = \"/boot/config.txt\""), "hardware.firmware_config.file"),
            (r("file = \"config.txt\"", "file = \"../config.txt\""), "hardware.firmware_config.file"),
            (r("lines = [\"enable_uart=1\"]", "lines = []"), "hardware.firmware_config.lines"),
            (r("fs = \"vfat\"", "fs = \"ntfs\""), "boot_partition.fs"),
            (r("table = \"mbr\"", "table = \"apm\""), "boot_partition.table"),
            (r("kernel_package = \"linux-image-arm64\"", "kernel_package = \"raspberrypi-kernel\""), "hardware.kernel_package"),
            (r("firmware = \"rpi4\"", "firmware = \"coreboot\""), "hardware.firmware"),
            (r("boot_config = \"config.txt\"", "boot_config = \"grub.cfg\""), "hardware.boot_config"),
            (r("label = \"AUTOSVR\"", "label = \"autosvr\""), "boot_partition.label"),
            (r("label = \"AUTOSVR\"", "label = \"AUTOSVR_BOOT_1\""), "boot_partition.label"),
            (r("start_mib = 4", "start_mib = 0"), "boot_partition.start_mib"),
            (r("references = [\"a vendor document\"]", "references = []"), "hardware.references"),
            (r("cmdline_bytes = 4096", "cmdline_bytes = 16"), "capacities.cmdline_bytes"),
            // Impossible combinations.
            (r("target = \"aarch64-unknown-linux-musl\"", "target = \"x86_64-unknown-linux-musl\""), "key 'target'"),
            (r("console = \"ttyS1\"", "console = \"ttyS0\""), "key 'cmdline'"),
            (r("console=ttyS1,115200", "console=ttyS1,9600"), "key 'cmdline'"),
            (r(" autoinit.boot=LABEL=AUTOSVR", ""), "autoinit.boot"),
            (r("autoinit.boot=LABEL=AUTOSVR", "autoinit.boot="), "autoinit.boot"),
            (r("autoinit.boot=LABEL=AUTOSVR", "autoinit.boot=LABEL=OTHER"), "boot_partition.label"),
            (r("firmware = \"rpi4\"", "firmware = \"rpi3\"").replace("table = \"mbr\"", "table = \"gpt\""), "boot_partition.table"),
            (r("fs = \"vfat\"\nfat_bits = 32", "fs = \"ext4\""), "boot_partition.fs"),
            (r("fat_bits = 32", "fat_bits = 12"), "boot_partition.fat_bits"),
            (r("size_mib = 256", "size_mib = 16"), "boot_partition.size_mib"),
            (r("fat_bits = 32", "fat_bits = 16").replace("size_mib = 256", "size_mib = 8192"), "boot_partition.size_mib"),
            (r("boot_config = \"config.txt\"", "boot_config = \"extlinux.conf\""), "hardware.boot_config"),
            (r("firmware = \"rpi4\"", "firmware = \"am335x-rom\"").replace("boot_config = \"config.txt\"", "boot_config = \"uEnv.txt\""), "boot_partition.bootable"),
            (r("label = \"AUTOSVR\"", "label = \"AUTOSVR\"\nname = \"boot\""), "boot_partition.name"),
            (r("autoinit.boot=LABEL=AUTOSVR", "autoinit.boot=PARTUUID=xxxxxxxx-02"), "autoinit.boot"),
            (r("autoinit.boot=LABEL=AUTOSVR", "autoinit.boot=PARTUUID=6a1b6c3e-5eed-4b00-8a00-000000000001"), "boot_partition.table"),
            (r("autoinit.boot=LABEL=AUTOSVR", "autoinit.boot=PARTLABEL=boot"), "boot_partition.table"),
            (r("autoinit.boot=LABEL=AUTOSVR", "autoinit.boot=UUID=0e5a4c1d-5eed-4e00-9f00-000000000004"), "UUID"),
            (r("autoinit.boot=LABEL=AUTOSVR", "autoinit.boot=PARTUUID=1234"), "autoinit.boot"),
            (r("boot_config = \"config.txt\"", "boot_config = \"config.txt\"\ndtb = \"x.dtb\""), "hardware.dtb"),
            (REAL.to_string() + "\n[qemu]\nsystem = \"q\"\nmachine = \"m\"\ncpu = \"c\"\nmemory_mb = 1\nkernel_package = \"k\"\ndebian_arch = \"arm64\"\n", "[qemu] and [hardware]"),
        ];
        for (text, key) in cases {
            let (err, path) = load_err("test", &text);
            assert!(err.contains(&path), "{key}: error does not name the file: {err}");
            assert!(err.contains(key), "error does not name '{key}': {err}");
        }
    }

    #[test]
    fn boot_specs_are_told_apart() {
        assert_eq!(BootSpec::parse("LABEL=AUTOSVR").unwrap(), BootSpec::Label("AUTOSVR"));
        assert_eq!(BootSpec::parse("PARTUUID=xxxxxxxx-01").unwrap(), BootSpec::MbrPartuuid { disk: "xxxxxxxx", part: "01" });
        assert_eq!(BootSpec::parse("PARTUUID=5eed0001-01").unwrap(), BootSpec::MbrPartuuid { disk: "5eed0001", part: "01" });
        let guid = "6a1b6c3e-5eed-4b00-8a00-000000000001";
        assert_eq!(BootSpec::parse(&format!("PARTUUID={guid}")).unwrap(), BootSpec::GptPartuuid(guid));
        assert_eq!(BootSpec::parse("/dev/mmcblk0p1").unwrap(), BootSpec::Path("/dev/mmcblk0p1"));
        for bad in ["PARTUUID=5eed0001", "PARTUUID=5eed0001-1", "LABEL=", "sda1", "/dev/", "PARTUUID=zzzzzzzz-01"] {
            assert!(BootSpec::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(boot_spec("a autoinit.boot=LABEL=A b autoinit.boot=LABEL=B"), Some("LABEL=B"));
    }

    #[test]
    fn firmware_names_round_trip() {
        for n in Firmware::NAMES {
            let fw = Firmware::parse(n).unwrap();
            assert!(!fw.rules().configs.is_empty());
        }
        assert!(Firmware::parse("qemu").is_none(), "qemu is implied by [qemu], not written");
        for c in ["config.txt", "uEnv.txt", "extlinux.conf", "loader-entry"] {
            assert_eq!(BootConfig::parse(c).unwrap().name(), c);
        }
    }
}
