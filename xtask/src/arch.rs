//! The five supported architectures and their names in each tool's vocabulary.

use anyhow::{bail, Result};

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Arch {
    X86_64,
    Aarch64,
    Armv7,
    Riscv64,
    I686,
}

impl Arch {
    pub const ALL: [Arch; 5] = [Arch::X86_64, Arch::Aarch64, Arch::Armv7, Arch::Riscv64, Arch::I686];

    pub fn parse(s: &str) -> Result<Arch> {
        Ok(match s {
            "x86_64" | "amd64" => Arch::X86_64,
            "aarch64" | "arm64" => Arch::Aarch64,
            "armv7" | "armhf" | "arm" => Arch::Armv7,
            "riscv64" => Arch::Riscv64,
            "i686" | "i386" | "x86" => Arch::I686,
            _ => bail!("unknown architecture '{s}' (expected x86_64, aarch64, armv7, riscv64 or i686)"),
        })
    }

    /// Our name, as in boards/*.toml.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::Armv7 => "armv7",
            Arch::Riscv64 => "riscv64",
            Arch::I686 => "i686",
        }
    }

    /// The Rust target triple autoinit is built for (see .cargo/config.toml).
    pub fn triple(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Aarch64 => "aarch64-unknown-linux-musl",
            Arch::Armv7 => "armv7-unknown-linux-gnueabihf",
            Arch::Riscv64 => "riscv64gc-unknown-linux-gnu",
            Arch::I686 => "i686-unknown-linux-musl",
        }
    }

    /// Debian's architecture name.
    pub fn debian(self) -> &'static str {
        match self {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
            Arch::Armv7 => "armhf",
            Arch::Riscv64 => "riscv64",
            Arch::I686 => "i386",
        }
    }

    /// Debian's qemu-user-static binary for this arch.
    pub fn qemu_user(self) -> &'static str {
        match self {
            Arch::X86_64 => "qemu-x86_64-static",
            Arch::Aarch64 => "qemu-aarch64-static",
            Arch::Armv7 => "qemu-arm-static",
            Arch::Riscv64 => "qemu-riscv64-static",
            Arch::I686 => "qemu-i386-static",
        }
    }
}
