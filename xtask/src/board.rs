//! Board files (`boards/NAME.toml`): a board is data, adding one is adding a file.

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
    /// The kernel command line the board boots with by default.
    pub cmdline: String,
    /// Kernel modules the boot stage loads, in order (dependencies come from modules.dep).
    #[serde(default)]
    pub modules: Vec<String>,
    pub capacities: Capacities,
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
    /// MBR or GPT.
    pub partition_table: String,
    /// Filesystem of the boot partition (vfat, ext4).
    pub boot_fs: String,
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

impl Board {
    pub fn arch(&self) -> Result<Arch> {
        Arch::parse(&self.arch)
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
    validate(&board).with_context(|| format!("{}", path.display()))?;
    Ok(board)
}

fn validate(b: &Board) -> Result<()> {
    let arch = Arch::parse(&b.arch).context("key 'arch'")?;
    if b.target != arch.triple() {
        bail!("key 'target': '{}' does not match arch '{}' (expected '{}')", b.target, b.arch, arch.triple());
    }
    if b.console.is_empty() || b.console.contains('/') {
        bail!("key 'console': '{}' must be a device name such as ttyS0", b.console);
    }
    if !b.cmdline.split_whitespace().any(|w| w.starts_with("console=")) {
        bail!("key 'cmdline': no console= argument, the kernel would not log to '{}'", b.console);
    }
    let names_console = |w: &str| w.strip_prefix("console=").is_some_and(|v| v.split(',').next() == Some(b.console.as_str()));
    if !b.cmdline.split_whitespace().any(names_console) {
        bail!("key 'cmdline': no console={}[,options] argument, though key 'console' is '{}'", b.console, b.console);
    }
    if b.cmdline.len() >= b.capacities.cmdline_bytes as usize {
        bail!("key 'cmdline': {} bytes, capacities.cmdline_bytes is {}", b.cmdline.len(), b.capacities.cmdline_bytes);
    }
    if let Some(m) = b.modules.iter().find(|m| m.is_empty() || m.contains(['/', ' ']) || m.ends_with(".ko") || m.contains(".ko.")) {
        bail!("key 'modules': '{m}' must be a module name such as sdhci_iproc, not a path or file name");
    }
    if b.qemu.is_none() && b.hardware.is_none() {
        bail!("neither [qemu] nor [hardware]: a board is one or the other");
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
        if !matches!(h.partition_table.as_str(), "mbr" | "gpt") {
            bail!("key 'hardware.partition_table': '{}' (expected mbr or gpt)", h.partition_table);
        }
        if !matches!(h.boot_fs.as_str(), "vfat" | "ext4") {
            bail!("key 'hardware.boot_fs': '{}' (expected vfat or ext4)", h.boot_fs);
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
        if !b.cmdline.split_whitespace().any(|w| w.strip_prefix("autoinit.boot=").is_some_and(|v| !v.is_empty())) {
            bail!("key 'cmdline': a real board needs autoinit.boot=... naming its boot partition");
        }
    }
    Ok(())
}

/// Every board file, sorted by name.
#[cfg_attr(not(test), allow(dead_code))]
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
    #[test]
    fn every_board_file_is_valid() {
        let boards = super::all().unwrap();
        assert!(boards.len() >= 3);
    }

    #[test]
    fn unknown_key_is_rejected_with_its_name() {
        let text = std::fs::read_to_string(super::dir().join("qemu-x86_64.toml")).unwrap() + "\nbogus = 1\n";
        let err = toml::from_str::<super::Board>(&text).unwrap_err().to_string();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn every_arch_has_a_qemu_board() {
        for arch in crate::arch::Arch::ALL {
            let b = super::load(&format!("qemu-{}", arch.name())).unwrap();
            assert_eq!(b.arch().unwrap(), arch);
            assert!(b.qemu.is_some(), "qemu-{} has no [qemu]", arch.name());
        }
    }

    #[test]
    fn bad_bios_is_rejected_with_its_key() {
        let text = std::fs::read_to_string(super::dir().join("qemu-riscv64.toml")).unwrap();
        assert!(text.contains("bios = \"default\""));
        let (err, path) = load_err("bios", &text.replace("bios = \"default\"", "bios = \"\""));
        assert!(err.contains(&path) && err.contains("qemu.bios"), "{err}");
    }

    #[test]
    fn every_arch_has_a_real_board() {
        let boards = super::all().unwrap();
        for arch in crate::arch::Arch::ALL {
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

[hardware]
partition_table = "mbr"
boot_fs = "vfat"
kernel_package = "linux-image-arm64"
references = ["a vendor document"]

[hardware.firmware_config]
file = "config.txt"
lines = ["enable_uart=1"]
"#;

    /// Loads `text` from a file, as `cargo xtask` would, and returns the error with its context.
    fn load_err(tag: &str, text: &str) -> (String, String) {
        let path = std::env::temp_dir().join(format!("autoinit-board-{}-{tag}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        let res = super::load_path(&path);
        std::fs::remove_file(&path).unwrap();
        (format!("{:#}", res.expect_err(tag)), path.display().to_string())
    }

    #[test]
    fn real_board_template_is_valid() {
        let b: super::Board = toml::from_str(REAL).unwrap();
        super::validate(&b).unwrap();
        assert_eq!(b.hardware.unwrap().firmware_config.unwrap().lines, ["enable_uart=1"]);
    }

    #[test]
    fn hardware_errors_name_the_file_and_the_key() {
        let cases = [
            ("fwpath", REAL.replace("file = \"config.txt\"", "file = \"/boot/config.txt\""), "hardware.firmware_config.file"),
            ("fwdotdot", REAL.replace("file = \"config.txt\"", "file = \"../config.txt\""), "hardware.firmware_config.file"),
            ("fwlines", REAL.replace("lines = [\"enable_uart=1\"]", "lines = []"), "hardware.firmware_config.lines"),
            ("fwkey", REAL.replace("lines = [", "bogus = 1\nlines = ["), "bogus"),
            ("bootfs", REAL.replace("boot_fs = \"vfat\"", "boot_fs = \"ntfs\""), "hardware.boot_fs"),
            ("kernel", REAL.replace("kernel_package = \"linux-image-arm64\"", "kernel_package = \"raspberrypi-kernel\""), "hardware.kernel_package"),
            ("nokernel", REAL.replace("kernel_package = \"linux-image-arm64\"\n", ""), "kernel_package"),
            ("console", REAL.replace("console = \"ttyS1\"", "console = \"ttyS0\""), "key 'cmdline'"),
            ("noboot", REAL.replace(" autoinit.boot=LABEL=AUTOSVR", ""), "autoinit.boot"),
            ("emptyboot", REAL.replace("autoinit.boot=LABEL=AUTOSVR", "autoinit.boot="), "autoinit.boot"),
            ("module", REAL.replace("\"squashfs\"", "\"squashfs.ko\""), "key 'modules'"),
            ("capacity", REAL.replace("cmdline_bytes = 4096", "cmdline_bytes = 16"), "capacities.cmdline_bytes"),
        ];
        for (tag, text, key) in cases {
            let (err, path) = load_err(tag, &text);
            assert!(err.contains(&path), "{tag}: error does not name the file: {err}");
            assert!(err.contains(key), "{tag}: error does not name '{key}': {err}");
        }
    }
}
