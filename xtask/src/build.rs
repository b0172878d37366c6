//! Cross-builds autoinit and the syscall suite.

use crate::arch::Arch;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Command;

/// `--arch A` options (repeatable, or `--arch all`); all five when none is given.
pub fn arches_from_args(args: &[String]) -> Result<Vec<Arch>> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--arch" => {
                let v = it.next().context("--arch needs a value")?;
                if v == "all" {
                    out.extend(Arch::ALL);
                } else {
                    out.push(Arch::parse(v)?);
                }
            }
            other => bail!("unexpected argument '{other}'"),
        }
    }
    if out.is_empty() {
        out.extend(Arch::ALL);
    }
    Ok(out)
}

/// `cargo build --release --target T -p PACKAGE`; returns the binary's path.
pub fn package(arch: Arch, package: &str, bin: &str) -> Result<PathBuf> {
    let status = Command::new(env!("CARGO"))
        .current_dir(crate::root())
        .args(["build", "--release", "--quiet", "--target", arch.triple(), "-p", package])
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("building {package} for {} failed", arch.triple());
    }
    Ok(crate::root().join("target").join(arch.triple()).join("release").join(bin))
}

pub fn autoinit(arch: Arch) -> Result<PathBuf> {
    package(arch, "autoinit", "autoinit")
}
