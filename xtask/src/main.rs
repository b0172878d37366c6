//! `cargo xtask`: everything a developer or board vendor runs on the build machine.
//! Run `cargo xtask help` for the commands.

mod arch;
mod board;
mod build;

use anyhow::{bail, Result};
use std::path::PathBuf;

const HELP: &str = "\
usage: cargo xtask COMMAND

commands:
  setup                 install what building and testing needs (apt, rustup targets)
  build [--arch A]...   build autoinit (release) for the given arches (default: all five)
  test                  run every test: unit, syscall suite (qemu-user), QEMU boot tests
  demo                  build and boot the x86_64 QEMU board to the rescue shell
  bench                 measure sizes (and more) and write docs/benchmarks.md
";

fn main() {
    if let Err(e) = run() {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        print!("{HELP}");
        return Ok(());
    };
    let rest = &args[1..];
    match cmd.as_str() {
        "help" | "--help" | "-h" => print!("{HELP}"),
        "setup" => setup()?,
        "build" => {
            for a in build::arches_from_args(rest)? {
                let p = build::autoinit(a)?;
                println!("{}", p.display());
            }
        }
        other => bail!("unknown command '{other}'\n{HELP}"),
    }
    Ok(())
}

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs xtask/scripts/setup-host.sh (idempotent).
pub fn setup() -> Result<()> {
    let status = std::process::Command::new("bash")
        .arg(root().join("xtask/scripts/setup-host.sh"))
        .status()?;
    if !status.success() {
        bail!("host setup failed ({status})");
    }
    Ok(())
}
