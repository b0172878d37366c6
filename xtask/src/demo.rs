//! `cargo xtask demo`: the product on the x86_64 QEMU board. It builds autoinit, the board's
//! initramfs and two system images (v1 and v2, upgrade_images.rs), boots v1 from a boot disk
//! the way a product boots (autoinit as the initramfs's /init finds the disk by label,
//! loop-mounts the squashfs at /rofs_root, switches root and runs the units of the image),
//! then upgrades the running system to v2 without a reboot.
//!
//! With `--interactive`, or when stdin is a terminal (unless `--scripted`), the console is the
//! user's. Otherwise a scripted session runs: `autoinit status`, the live upgrade to v2,
//! `status` again (same PID 1, new image, every service restarted), poweroff.

use crate::arch::Arch;
use crate::boot_tests;
use crate::qemu::{self, Boot, Vm};
use crate::upgrade_images::{self as ui, Variant};
use crate::upgrade_tests::{self as ut, CLIENT, CMDLINE};
use anyhow::{bail, Result};
use std::io::IsTerminal;
use std::time::Duration;

const USAGE: &str = "usage: cargo xtask demo [--interactive | --scripted]
  --interactive  the booted system's console is yours (the default when stdin is a terminal)
  --scripted     a scripted session: status, live upgrade to v2, status, poweroff (the default otherwise)";

pub fn run(args: &[String]) -> Result<()> {
    let mut interactive = std::io::stdin().is_terminal();
    for a in args {
        match a.as_str() {
            "--interactive" => interactive = true,
            "--scripted" => interactive = false,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unexpected argument '{other}'\n{USAGE}"),
        }
    }
    crate::setup()?;
    let t = boot_tests::prepare(Arch::X86_64, None)?;
    let set = ut::image_set(&t)?;
    let v2 = ui::guest_path(Variant::V2.file());
    if interactive {
        let disks = [set.disk.clone()];
        let boot = Boot { board: &t.board, kernel: &t.kernel, initrd: &t.initrd, extra_cmdline: CMDLINE, disks: &disks };
        println!("xtask: booting {} with autoinit as PID 1: system image v1 on a boot disk ({CMDLINE}),", t.board.name);
        println!("xtask: four units: console (your shell), notifier (sd_notify), web (httpd on :{}), worker.", ui::WEB_PORT);
        println!("xtask: try:  autoinit status;  wget -qO- 127.0.0.1:{}", ui::WEB_PORT);
        println!("xtask:       upgrade-live {v2}   (the live upgrade; your shell restarts during it, then: cat /run/upgrade.out)");
        println!("xtask:       autoinit poweroff   (or Ctrl-A X, which quits QEMU at any time)\n");
        qemu::interactive(&boot)?;
        return Ok(());
    }
    println!("xtask: a scripted session follows (whole console in target/qemu-logs/x86_64-demo.log; `--interactive` gives you the console)\n");
    let (mut vm, _) = ut::boot(&t, "demo")?;
    let boot_log = vm.text();
    let lines: Vec<&str> = boot_log.lines().filter(|l| l.contains("Linux version") || l.contains("Run /init") || l.contains("autoinit:")).collect();
    println!("{}\n", lines.join("\n"));
    let before = show(&mut vm, &["autoinit status", &format!("wget -qO- 127.0.0.1:{}", ui::WEB_PORT), "cut -d' ' -f22 /proc/1/stat"])?;
    let pid1_before = before.last().cloned().unwrap_or_default();

    // upgrade-live (in the image) runs the client outside the console's unit, which the
    // upgrade restarts with its whole cgroup; the answer goes to /run/upgrade.out.
    let cmd = format!("upgrade-live {v2} --settle 2");
    let from = vm.text().len();
    let started = vm.run(&cmd)?;
    println!("/ # {cmd}\n{}", ut::own_lines(&started).join("\n"));
    ut::upgrade_end(&mut vm)?;
    vm.wait_shell(Duration::from_secs(90))?;
    let during = vm.text()[from..].to_string();
    for l in during.lines().filter(|l| l.contains("autoinit: upgrade:") || l.contains("worker[")) {
        println!("{}", l.replace("\u{1b}[6n", "").trim_start_matches("/ # "));
    }
    let out = answer(&mut vm)?;
    println!("/ # cat /run/upgrade.out\n{out}\n");
    let rc = if out.ends_with("exit status 0") { 0 } else { 1 };

    let after = show(&mut vm, &["autoinit status", &format!("wget -qO- 127.0.0.1:{}", ui::WEB_PORT), "cut -d' ' -f22 /proc/1/stat", "ls -l /opt2 /etc/app-v2.conf"])?;
    let pid1_after = after.get(2).cloned().unwrap_or_default();
    if pid1_before.trim() == pid1_after.trim() && rc == 0 {
        println!("xtask: the same PID 1 (started {} clock ticks after boot, before and after): no reboot.\n", pid1_after.trim());
    } else {
        println!("xtask: warning: PID 1 started at {} before and {} after, client exit status {rc}\n", pid1_before.trim(), pid1_after.trim());
    }

    println!("/ # autoinit poweroff");
    let before = vm.text().len();
    vm.send_line(&format!("{CLIENT} poweroff"))?;
    vm.expect("reboot: Power down", Duration::from_secs(180))?;
    vm.wait_exit(Duration::from_secs(30))?;
    let text = vm.text();
    for l in text[before..].lines().filter(|l| l.contains("autoinit:") || l.contains("reboot:")) {
        println!("{}", l.replace("\u{1b}[6n", "").trim_start_matches("/ # "));
    }
    println!("\nxtask: the guest powered off; console log in {}", vm.log_path().display());
    Ok(())
}

/// /run/upgrade.out once upgrade-live's client has ended (its last line is `exit status N`).
fn answer(vm: &mut Vm) -> Result<String> {
    for _ in 0..30 {
        let (out, _) = vm.run_status("cat /run/upgrade.out", Duration::from_secs(30))?;
        let out = ut::own_lines(&out).join("\n");
        if out.lines().any(|l| l.starts_with("exit status ")) {
            return Ok(out);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    Err(vm.fail("upgrade-live's client did not end (no 'exit status' in /run/upgrade.out)"))
}

/// Runs each command in the guest and prints it with its output (kernel lines left out);
/// returns the outputs.
fn show(vm: &mut Vm, cmds: &[&str]) -> Result<Vec<String>> {
    let mut outs = Vec::new();
    for cmd in cmds {
        let out = ut::own_lines(&vm.run(cmd)?).join("\n");
        println!("/ # {cmd}\n{out}\n");
        outs.push(out);
    }
    Ok(outs)
}
