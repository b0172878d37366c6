//! Board files (`boards/NAME.toml`): a board is data, adding one is adding a file.

use crate::arch::Arch;
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

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
    pub kernel_package: String,
    pub debian_arch: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hardware {
    /// MBR or GPT.
    pub partition_table: String,
    /// Filesystem of the boot partition (vfat, ext4).
    pub boot_fs: String,
    /// The vendor documents the values are taken from.
    pub references: Vec<String>,
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
    if b.qemu.is_none() && b.hardware.is_none() {
        bail!("neither [qemu] nor [hardware]: a board is one or the other");
    }
    if let Some(q) = &b.qemu {
        if q.debian_arch != arch.debian() {
            bail!("key 'qemu.debian_arch': '{}' does not match arch '{}' (expected '{}')", q.debian_arch, b.arch, arch.debian());
        }
    }
    if let Some(h) = &b.hardware {
        if !matches!(h.partition_table.as_str(), "mbr" | "gpt") {
            bail!("key 'hardware.partition_table': '{}' (expected mbr or gpt)", h.partition_table);
        }
        if h.references.is_empty() {
            bail!("key 'hardware.references': cite the vendor documentation the values come from");
        }
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
}
