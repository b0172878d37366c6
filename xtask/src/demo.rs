//! `cargo xtask demo`: boots the qemu-x86_64 board the way a product boots: autoinit as the
//! initramfs's /init finds the boot disk by label, loop-mounts the squashfs system image at
//! /rofs_root of a tmpfs root, applies the overlays, switches root and runs stage 2.

use crate::arch::Arch;
use crate::boot_tests;
use crate::debian;
use crate::images::{self, Disk};
use crate::qemu::{self, Boot, Vm};
use anyhow::{Context, Result};
use std::io::IsTerminal;
use std::time::Duration;

const CMDLINE: &str = "autoinit.boot=LABEL=AUTOSVR";

pub fn run() -> Result<()> {
    crate::setup()?;
    let t = boot_tests::prepare(Arch::X86_64, None)?;
    let q = t.board.qemu.as_ref().context("board without [qemu]")?;
    let busybox = debian::busybox(&q.debian_arch)?;
    let imgs = images::prepare(Arch::X86_64, &busybox, &[Disk::Main])?;
    let disk = imgs.disk(Disk::Main)?.to_path_buf();
    let disks = [disk];
    let boot = Boot { board: &t.board, kernel: &t.kernel, initrd: &t.initrd, extra_cmdline: CMDLINE, disks: &disks };
    if std::io::stdin().is_terminal() {
        println!("xtask: booting {} with autoinit as PID 1 and a boot disk ({CMDLINE}).", t.board.name);
        println!("xtask: you get a shell of the system image; `kill -USR2 1` powers off, `kill -TERM 1` reboots (and so quits).");
        println!("xtask: Ctrl-A X quits QEMU at any time.\n");
        qemu::interactive(&boot)?;
        return Ok(());
    }
    println!("xtask: stdin is not a terminal: a scripted session follows (whole console in target/qemu-logs/demo.log)\n");
    let mut vm = Vm::start(&boot, "demo", false)?;
    vm.expect("stage 2: running from /__autoinit__/autoinit", Duration::from_secs(120))?;
    vm.wait_shell(Duration::from_secs(60))?;
    let boot_log = vm.text();
    let tail: Vec<&str> = boot_log.lines().filter(|l| l.contains("Linux version") || l.contains("Run /init") || l.contains("autoinit:")).collect();
    println!("{}\n", tail.join("\n"));
    for cmd in ["grep -E ' / | /rofs_root | /boot_disk ' /proc/mounts", "ls -l / | grep -- '->'", "cat /etc/motd", "hostname", "ps | grep -v ' \\[' "] {
        let out = vm.run(cmd)?;
        println!("/ # {cmd}\n{out}\n");
    }
    println!("/ # kill -USR2 1");
    let before = vm.text().len();
    vm.send_line("kill -USR2 1")?;
    vm.expect("reboot: Power down", Duration::from_secs(30))?;
    vm.wait_exit(Duration::from_secs(30))?;
    let after = vm.text();
    for l in after[before..].lines().filter(|l| l.contains("autoinit:") || l.contains("reboot:")) {
        println!("{}", l.replace("\u{1b}[6n", "").trim_start_matches("/ # "));
    }
    println!("\nxtask: the guest powered off; console log in {}", vm.log_path().display());
    Ok(())
}
