//! `cargo xtask`: everything a developer or board vendor runs on the build machine.
//! Run `cargo xtask help` for the commands.

mod arch;
mod bench;
mod bench_boot;
mod bench_containers;
mod bench_supervise;
mod bench_upgrade;
mod board;
mod board_image;
mod boot_stage_tests;
mod upgrade_persist_tests;
mod boot_tests;
mod build;
mod container_tests;
mod debian;
mod demo;
mod disk;
mod image_tests;
mod fuzz;
mod images;
mod initramfs;
mod notify_daemon;
mod qemu;
mod supervise_fault_tests;
mod supervise_tests;
mod syscall_suite;
mod test_cmd;
mod upgrade_images;
mod upgrade_tests;

use anyhow::{bail, Context, Result};
use std::path::PathBuf;

const HELP: &str = "\
usage: cargo xtask COMMAND

commands:
  setup                 install what building and testing needs (apt, rustup targets)
  build [--arch A]...   build autoinit (release) for the given arches (default: all five)
  test [--only P] [--arch A] [--test T] [--jobs N]
                        run every test: unit, syscall suite (qemu-user), QEMU boot tests, fuzz
                        smoke test
                        (`cargo xtask test --help` for the filters)
  fuzz --smoke | --campaign DURATION [--jobs N] [--target T]...
                        run the libFuzzer targets of fuzz/ briefly (about a minute), or for
                        DURATION each (10m, 2h) and write the figures to docs/reliability.md
                        (`cargo xtask fuzz --help`)
  bench [--runs N] [--arch A]... [--no-boot] [--no-upgrade] [--no-containers] [--no-supervision]
                        measure sizes and the boot stage against a busybox script (QEMU; default:
                        all five arches, 3 boots each), the on-the-fly upgrade, containers and the
                        service manager (x86_64), and write docs/benchmarks.md
  bench --only upgrade|containers|supervision [--part memory|respawn|orphans]...
                        one section only; with --only supervision, --part measures only those
                        subsections (PID 1's memory, respawn latency, reaping orphans)
  demo [--interactive|--scripted]
                        build v1 and v2 system images, boot v1 on the x86_64 QEMU board with its
                        services and upgrade it live to v2 (scripted unless stdin is a terminal
                        or --interactive: then the console is yours)
  syscall-suite [--arch A]...
                        run tests/syscall-suite under qemu-user (and natively where the host can)
  initramfs [--arch A]  fetch the QEMU board's kernel and build its test initramfs; print both paths
  image --board NAME [--image DIR|--system-img FILE] [--overlay TAR]... [--out DIR] [--disk]
                        the artefacts a board vendor flashes: initramfs.cpio.gz and its
                        gen_init_cpio list, the boot partition tree, cmdline.txt/boot loader
                        snippet and a whole disk image (`cargo xtask image --help`; docs/boards.md)
  images [--arch A]     build the boot-stage test disks (target/images/<arch>/; default: the arches
                        with a QEMU board); print their paths
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
        "test" => test_cmd::run(rest)?,
        "image" => board_image::run(rest)?,
        "demo" => demo::run(rest)?,
        "fuzz" => fuzz::run(rest)?,
        "bench" => bench::run(rest)?,
        "syscall-suite" => {
            let (passed, failed) = syscall_suite::run(&build::arches_from_args(rest)?)?;
            println!("syscall-suite: {passed} passed, {failed} failed");
            if failed > 0 {
                bail!("the syscall suite had {failed} failures");
            }
        }
        "initramfs" => {
            for a in build::arches_from_args(rest)? {
                let t = boot_tests::prepare(a, None)?;
                println!("{} {}", t.kernel.display(), t.initrd.display());
            }
        }
        "images" => {
            use arch::Arch;
            let arches = if rest.is_empty() { Arch::ALL.to_vec() } else { build::arches_from_args(rest)? };
            for a in arches {
                let b = boot_tests::board_for(a)?;
                let q = b.qemu.as_ref().context("board without [qemu]")?;
                let busybox = debian::busybox(&q.debian_arch)?;
                let set = images::prepare(a, &busybox, &images::Disk::ALL)?;
                for d in images::Disk::ALL {
                    println!("{} {} {}", a.name(), d.name(), set.disk(d)?.display());
                }
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
