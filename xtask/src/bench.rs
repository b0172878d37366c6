//! `cargo xtask bench`: sizes of autoinit next to Debian's static busybox, written to
//! docs/benchmarks.md. Numbers are reported, never asserted.

use crate::arch::Arch;
use crate::debian;
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::process::Command;

fn kib(n: u64) -> String {
    format!("{:.1}", n as f64 / 1024.0)
}

/// True when the ELF file has no `.symtab` (what `strip` removes).
fn is_stripped(data: &[u8]) -> bool {
    !data.windows(8).any(|w| w == b".symtab\0")
}

pub fn run() -> Result<()> {
    crate::setup()?;
    let rustc = Command::new("rustc").arg("--version").output().context("running rustc --version")?;
    let rustc = String::from_utf8_lossy(&rustc.stdout).trim().to_string();
    let date = Command::new("date").args(["-u", "+%Y-%m-%d"]).output().context("running date")?;
    let date = String::from_utf8_lossy(&date.stdout).trim().to_string();

    let mut rows = String::new();
    let mut notes = String::new();
    for arch in Arch::ALL {
        let bin = crate::build::autoinit(arch)?;
        let data = std::fs::read(&bin).with_context(|| format!("reading {}", bin.display()))?;
        let size = data.len() as u64;
        if !is_stripped(&data) {
            let _ = writeln!(notes, "- {}: the binary still has a symbol table (not stripped).", arch.name());
        }
        let (bb_cells, ratio) = match debian::busybox_versioned(arch.debian()) {
            Ok((p, version)) => {
                let bb = std::fs::metadata(&p)?.len();
                let ratio = format!("{:.1}%", size as f64 * 100.0 / bb as f64);
                (format!("{bb} | {} | {version}", kib(bb)), ratio)
            }
            Err(e) => {
                let _ = writeln!(notes, "- {}: busybox-static:{} unavailable: {e:#}", arch.name(), arch.debian());
                ("n/a | n/a | n/a".into(), "n/a".into())
            }
        };
        let _ = writeln!(rows, "| {} | `{}` | {size} | {} | {bb_cells} | {ratio} |", arch.name(), arch.triple(), kib(size));
        println!("{:8} autoinit {size:>7} bytes ({:>5} KiB)   busybox {}   autoinit/busybox {ratio}", arch.name(), kib(size), bb_cells.replace(" | ", " "));
    }

    let mut md = String::new();
    let _ = write!(
        md,
        "# Benchmarks

Produced by `cargo xtask bench` on {date} with `{rustc}`. The numbers are measured and
reported, never asserted by a test; run the command again to refresh this file.

## Binary size

autoinit is the release build of `target/<triple>/release/autoinit` (`opt-level = \"z\"`, LTO,
one codegen unit, `panic = \"abort\"`, `strip = true`: the file has no symbol table, which the
command checks). For scale, the busybox columns give the size of Debian's statically linked
`busybox` from the package `busybox-static` of the same Debian architecture (bookworm; riscv64
from trixie, which bookworm lacks), the usual rescue-shell companion of a minimal PID 1. Sizes are
whole files; KiB = 1024 bytes.

| arch | target | autoinit (bytes) | autoinit (KiB) | busybox (bytes) | busybox (KiB) | busybox-static version | autoinit / busybox |
|------|--------|-----------------:|---------------:|----------------:|--------------:|------------------------|-------------------:|
{rows}"
    );
    if !notes.is_empty() {
        let _ = write!(md, "\nNotes:\n\n{notes}");
    }
    let path = crate::root().join("docs/benchmarks.md");
    std::fs::write(&path, md).with_context(|| format!("writing {}", path.display()))?;
    println!("xtask: wrote {}", path.display());
    Ok(())
}
