//! Boot-stage tests (issue 3). Each boots a QEMU guest with a boot disk from `images.rs`
//! attached as `/dev/vda` and `autoinit.boot=...` appended to the board's command line, then
//! checks on the console that autoinit built the Autoserver root (tmpfs `/`, the image's
//! squashfs at `/rofs_root`, top-level symlinks, `/etc` of symlinks, overlays in order) and
//! switched to it; or, for the failure cases, that it named what went wrong and fell back
//! (to the rescue shell, to `system.img.old`, or past the bad overlay), never to a kernel panic.
//!
//! The console lines waited for are listed in [`lines`]. A line a test waits for must come
//! before the rescue shell starts: a boot that starts the shell first (an init without the boot
//! stage, or a boot stage that gave up) fails the wait at once, quoting the console.

use crate::arch::Arch;
use crate::boot_tests::{check, power_off, shell_started, Target, Test, BOOT, SHELL, START};
use crate::images::{self, Disk};
use crate::qemu::Vm;
use anyhow::Result;
use std::time::Duration;

/// From autoinit's start line to each boot-stage line: module loading, waiting for the device
/// (10 s by default), mounts, overlays, under TCG on a loaded machine.
const STAGE: Duration = Duration::from_secs(60);

/// The console lines the tests expect from the init, in the order they come.
pub mod lines {
    /// `... {spec} is /dev/vda1 ({fstype})`: the device was found.
    pub fn boot_device(spec: &str, fstype: &str) -> String {
        format!("autoinit: boot device {spec} is /dev/vda1 ({fstype})")
    }
    /// Followed by anything (` (vfat, ro)`).
    pub const MOUNTED: &str = "autoinit: mounted /dev/vda1 on /boot_disk";
    /// A line containing both `SYSTEM_IMAGE` and `autosvr/<image> on /dev/loop`.
    pub const SYSTEM_IMAGE: &str = "autoinit: system image ";
    /// `autoinit: overlay NAME.tar: N entries`.
    pub fn overlay(name: &str) -> String {
        format!("autoinit: overlay {name}: ")
    }
    /// `autoinit: loaded N kernel modules`.
    pub fn modules_loaded(n: usize) -> String {
        format!("autoinit: loaded {n} kernel modules")
    }
    /// Whether `line` is one of the init's module errors (`load module kernel/...: EINVAL`,
    /// `open module ...`, `module NAME: not in modules.dep ... not loaded`, `read
    /// .../modules.dep: ...; no modules loaded`, a malformed modules.dep).
    pub fn is_module_error(line: &str) -> bool {
        line.contains("autoinit: load module ")
            || line.contains("autoinit: open module ")
            || line.contains("no modules loaded")
            || (line.contains("autoinit: module ") && (line.contains("not loaded") || line.contains("malformed")))
    }
    pub const SWITCHING: &str = "autoinit: switching root";
    pub const STAGE2: &str = "autoinit: stage 2: running from /__autoinit__/autoinit";
    /// The end of every failed boot stage (the initramfs rescue shell follows).
    pub const FALLBACK: &str = "starting the rescue shell";
}

/// Lines after which a boot-stage line can no longer come.
const GAVE_UP: &[&str] = &[lines::FALLBACK, SHELL];

/// Waits for the next line for which `want` holds, before the rescue shell starts.
fn stage(vm: &mut Vm, what: &str, want: impl Fn(&str) -> bool) -> Result<String> {
    vm.expect_line_where(what, want, GAVE_UP, STAGE)
}

/// Waits for the next line containing `text`, before the rescue shell starts.
fn stage_text(vm: &mut Vm, text: &str) -> Result<String> {
    stage(vm, &format!("a line containing '{text}'"), |l| l.contains(text))
}

/// Waits for an autoinit line containing every one of `parts`, before the rescue shell starts.
fn stage_all(vm: &mut Vm, what: &str, parts: &[&str]) -> Result<String> {
    stage(vm, what, |l| l.contains("autoinit: ") && parts.iter().all(|p| l.contains(p)))
}

/// The system image line of `image` (`system.img`, `system.img.old`).
fn image_line(vm: &mut Vm, image: &str) -> Result<String> {
    let on = format!("autosvr/{image} on /dev/loop");
    stage(vm, &format!("a line containing '{}' and '{on}'", lines::SYSTEM_IMAGE), |l| {
        l.contains(lines::SYSTEM_IMAGE) && l.contains(&on)
    })
}

/// The line of an applied overlay.
fn overlay_line(vm: &mut Vm, name: &str) -> Result<String> {
    let head = lines::overlay(name);
    stage(vm, &format!("a line containing '{head}N entries'"), |l| l.contains(&head) && l.contains(" entries"))
}

/// Fails if an overlay was applied (an `overlay NAME: N entries` line is on the console).
fn not_applied(vm: &Vm, name: &str) -> Result<()> {
    let head = lines::overlay(name);
    let text = vm.text();
    let line = text.lines().find(|l| l.contains(&head) && l.contains(" entries"));
    check(vm, line.is_none(), format!("{name} should not have been applied: {}", line.unwrap_or("")))
}

/// From switching root to stage 2's rescue shell (the image's `/bin/sh`).
fn to_stage2(vm: &mut Vm, t: &Target) -> Result<()> {
    stage_text(vm, lines::SWITCHING)?;
    stage_text(vm, lines::STAGE2)?;
    shell_started(vm, t)?;
    Ok(())
}

/// A failed boot stage: the fallback line, the initramfs rescue shell, power off.
fn falls_back(vm: &mut Vm, t: &Target) -> Result<()> {
    vm.expect_line_where(&format!("a line containing '{}'", lines::FALLBACK), |l| l.contains(lines::FALLBACK), &[SHELL], STAGE)?;
    shell_started(vm, t)?;
    let (_, code) = vm.run_status("test -e /init", Duration::from_secs(30))?;
    check(vm, code == 0, "after a failed boot stage the rescue shell should run in the initramfs, which has /init")?;
    power_off(vm)?;
    vm.check_no_kernel_panic()
}

/// What the new root must look like.
struct Want {
    boot_fs: &'static str,
    motd: &'static str,
    hostname: &'static str,
    version: &'static str,
    /// 10_net.tar was applied.
    net: bool,
    /// 05_safe.tar was applied.
    safe1: bool,
    /// The image has `_upgrade/`.
    upgrade: bool,
}

impl Want {
    /// The main disk with every overlay applied.
    fn main(boot_fs: &'static str) -> Want {
        Want {
            boot_fs,
            motd: images::LATE_MOTD,
            hostname: images::NET_HOSTNAME,
            version: images::IMAGE_VERSION,
            net: true,
            safe1: false,
            upgrade: true,
        }
    }
}

/// Runs `cmd` in the guest's shell, expecting status 0; returns its trimmed output.
fn sh(vm: &mut Vm, cmd: &str) -> Result<String> {
    Ok(vm.run(cmd)?.trim().to_string())
}

/// Runs `cmd`, returns whether it exited with 0.
fn succeeds(vm: &mut Vm, cmd: &str) -> Result<bool> {
    Ok(vm.run_status(cmd, Duration::from_secs(30))?.1 == 0)
}

/// Checks the new root from stage 2's rescue shell.
fn check_root(vm: &mut Vm, t: &Target, w: &Want) -> Result<()> {
    // Mounts: the last mount on a directory is the one in effect.
    let mounts = sh(vm, "cat /proc/mounts")?;
    let table: Vec<Vec<&str>> = mounts.lines().map(|l| l.split_whitespace().collect::<Vec<_>>()).filter(|f| f.len() >= 4).collect();
    let on = |dir: &str| table.iter().rev().find(|f| f[1] == dir).cloned();
    let ro = |f: &Vec<&str>| f[3].split(',').any(|o| o == "ro");
    let top = on("/");
    check(vm, top.as_ref().is_some_and(|f| f[2] == "tmpfs"), format!("/ is not a tmpfs: {top:?}\n{mounts}"))?;
    let rofs = on("/rofs_root");
    check(
        vm,
        rofs.as_ref().is_some_and(|f| f[2] == "squashfs" && f[0].starts_with("/dev/loop") && ro(f)),
        format!("/rofs_root is not a read-only squashfs on a loop device: {rofs:?}\n{mounts}"),
    )?;
    let boot = on("/boot_disk");
    check(
        vm,
        boot.as_ref().is_some_and(|f| f[2] == w.boot_fs && f[0] == "/dev/vda1" && ro(f)),
        format!("/boot_disk is not /dev/vda1 ({}, ro): {boot:?}\n{mounts}", w.boot_fs),
    )?;
    let expected = [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev", "devtmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/run", "tmpfs"),
        ("/tmp", "tmpfs"),
        ("/sys/fs/cgroup", "cgroup2"),
    ];
    for (dir, fs) in expected {
        let m = on(dir);
        check(vm, m.as_ref().is_some_and(|f| f[2] == fs), format!("no {fs} on {dir}: {m:?}\n{mounts}"))?;
    }

    // Top-level symlinks: rofs_root/E for the image's entries, the image's own symlinks copied.
    let links = sh(vm, "for p in /usr /opt /root /bin /sbin; do echo \"$p=$(readlink $p)\"; done")?;
    for want in ["/usr=rofs_root/usr", "/opt=rofs_root/opt", "/root=rofs_root/root", "/bin=usr/bin", "/sbin=usr/bin"] {
        check(vm, links.lines().any(|l| l.trim() == want), format!("expected the symlink {want}, found:\n{links}"))?;
    }
    let upgrade_linked = succeeds(vm, "test -e /_upgrade || test -L /_upgrade")?;
    check(vm, !upgrade_linked, "/_upgrade is linked into the root (it must not be)")?;
    let upgrade = succeeds(vm, "test -d /rofs_root/_upgrade")?;
    check(vm, upgrade == w.upgrade, format!("/rofs_root/_upgrade exists: {upgrade}, expected {}", w.upgrade))?;

    // /etc: a real directory of symlinks into /rofs_root/etc.
    let etc_is_dir = succeeds(vm, "test -d /etc && test ! -L /etc")?;
    check(vm, etc_is_dir, "/etc is not a real directory")?;
    let mut style = String::new();
    for f in ["passwd", "group", "profile"] {
        let l = sh(vm, &format!("readlink /etc/{f} || echo NOT-A-LINK"))?;
        let ok = l == format!("/rofs_root/etc/{f}") || l == format!("../rofs_root/etc/{f}");
        check(vm, ok, format!("/etc/{f} -> '{l}', expected /rofs_root/etc/{f} or ../rofs_root/etc/{f}"))?;
        style = if l.starts_with('/') { "absolute" } else { "relative" }.to_string();
    }
    // Either style is right; say once per run which one the init uses.
    static NOTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !NOTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        let log = vm.log_path().file_stem().unwrap_or_default().to_string_lossy().into_owned();
        println!("xtask: note: {log}: /etc entries are {style} symlinks into /rofs_root/etc");
    }
    let passwd = sh(vm, "cat /etc/passwd")?;
    check(vm, passwd.starts_with("root:x:0:0:"), "/etc/passwd does not read through its symlink")?;
    let conf = sh(vm, "cat /etc/autosvr/image.conf")?;
    check(vm, conf == images::IMAGE_CONF, format!("/etc/autosvr/image.conf is '{conf}', expected '{}'", images::IMAGE_CONF))?;

    // What the image and the overlays say.
    for (cmd, want) in [("cat /etc/motd", w.motd), ("hostname", w.hostname), ("cat /opt/autosvr/VERSION", w.version)] {
        let got = sh(vm, cmd)?;
        check(vm, got == want, format!("`{cmd}` printed '{got}', expected '{want}'"))?;
    }
    if w.net {
        let got = sh(vm, "cat /etc/autosvr/net.conf")?;
        check(vm, got == images::NET_CONF, format!("/etc/autosvr/net.conf is '{got}', expected '{}'", images::NET_CONF))?;
        let long = images::net_long_name();
        let long_found = succeeds(vm, &format!("test -f /{long}"))?;
        check(vm, long_found, format!("the pax long name /{long} was not extracted"))?;
        let l = sh(vm, "readlink /etc/autosvr/current || echo NOT-A-LINK")?;
        check(vm, l == "net.conf", format!("symlink /etc/autosvr/current -> '{l}', expected net.conf"))?;
        let st = sh(vm, "stat -c '%h %Y %u:%g %a' /etc/autosvr/net.conf /etc/autosvr/net-up")?;
        let want = format!("2 {m} 0:0 644\n1 {m} 0:0 755", m = images::OVERLAY_MTIME);
        check(vm, st == want, format!("links, mtime, owner, mode of net.conf and net-up:\n{st}\nexpected:\n{want}"))?;
        let same = sh(vm, "stat -c %i /etc/autosvr/net.conf /etc/autosvr/net.conf.link | uniq | wc -l")?;
        check(vm, same == "1", "net.conf.link is not a hard link to net.conf")?;
    } else {
        let net_found = succeeds(vm, "test -e /etc/autosvr/net.conf")?;
        check(vm, !net_found, "/etc/autosvr/net.conf exists though 10_net.tar must not be applied")?;
    }
    let safe1 = succeeds(vm, &format!("test -e /{}", images::SAFE_FILE))?;
    check(vm, safe1 == w.safe1, format!("/{} exists: {safe1}, expected {}", images::SAFE_FILE, w.safe1))?;

    // Stage 2 runs from the tmpfs copy, the initramfs is gone and its memory freed.
    let copied = succeeds(vm, "test -x /__autoinit__/autoinit")?;
    check(vm, copied, "no executable /__autoinit__/autoinit")?;
    let exe = sh(vm, "readlink /proc/1/exe")?;
    check(vm, exe == "/__autoinit__/autoinit", format!("PID 1 runs {exe}, expected /__autoinit__/autoinit"))?;
    let init_left = succeeds(vm, "test -e /init")?;
    check(vm, !init_left, "/init exists in the new root")?;
    let shmem = sh(vm, "grep '^Shmem:' /proc/meminfo")?;
    let kib: u64 = shmem.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(u64::MAX);
    let initrd = t.initrd_bytes;
    check(
        vm,
        kib.saturating_mul(1024) < initrd / 2,
        format!("{shmem}: tmpfs memory is not below half the initramfs ({} KiB): were its files freed?", initrd / 1024),
    )?;

    // Read-only image, writable root.
    let rofs_writable = succeeds(vm, "touch /rofs_root/x 2>/dev/null")?;
    check(vm, !rofs_writable, "/rofs_root is writable")?;
    let w = sh(vm, "echo written > /etc/new-file && cat /etc/new-file")?;
    check(vm, w == "written", "cannot write a new file in /etc")
}

/// Every module file of the initramfs was loaded (on riscv64 they are `.ko.xz`, loaded with
/// MODULE_INIT_COMPRESSED_FILE), and the init reported no module error.
fn modules_loaded(vm: &mut Vm, t: &Target) -> Result<()> {
    let want = lines::modules_loaded(t.module_files);
    let line = stage(vm, "the 'autoinit: loaded N kernel modules' line", |l| {
        l.contains("autoinit: loaded ") && l.contains(" kernel modules")
    })?;
    let text = vm.text();
    let errors: Vec<&str> =
        text.lines().filter(|l| lines::is_module_error(l)).collect();
    check(vm, errors.is_empty(), format!("module errors on the console:\n{}", errors.join("\n")))?;
    check(vm, line.contains(&want), format!("'{line}', expected '{want}' (every module file of the initramfs)"))
}

/// The main path: the main disk by `autoinit.boot=LABEL=AUTOSVR` (or the legacy variables).
fn main_path_with(t: &Target, name: &str, cmdline: &str) -> Result<()> {
    let mut vm = t.boot_disk(name, cmdline, Disk::Main)?;
    vm.expect(START, BOOT)?;
    modules_loaded(&mut vm, t)?;
    stage_text(&mut vm, &lines::boot_device("LABEL=AUTOSVR", "vfat"))?;
    stage_text(&mut vm, lines::MOUNTED)?;
    image_line(&mut vm, "system.img")?;
    for o in ["0_base.tar", "10_net.tar", "20_late.tar"] {
        overlay_line(&mut vm, o)?;
    }
    to_stage2(&mut vm, t)?;
    check_root(&mut vm, t, &Want::main("vfat"))?;
    power_off(&mut vm)?;
    vm.check_no_kernel_panic()
}

fn main_path(t: &Target) -> Result<()> {
    main_path_with(t, "main_path", "autoinit.boot=LABEL=AUTOSVR")
}

fn legacy_env(t: &Target) -> Result<()> {
    main_path_with(t, "legacy_env", "autoserver_boot_dev=LABEL=AUTOSVR autoserver_dir=autosvr")
}

/// One boot naming the device as `spec`: found, image mounted, stage 2 reached.
fn device_name(t: &Target, name: &str, disk: Disk, spec: &str) -> Result<()> {
    let mut vm = t.boot_disk(name, &format!("autoinit.boot={spec}"), disk)?;
    vm.expect(START, BOOT)?;
    stage_text(&mut vm, &lines::boot_device(spec, disk.fstype()))?;
    to_stage2(&mut vm, t)?;
    let m = sh(&mut vm, "grep -E ' /(rofs_root|boot_disk) ' /proc/mounts")?;
    check(&vm, m.contains(" /rofs_root squashfs "), format!("no squashfs on /rofs_root:\n{m}"))?;
    let boot = format!("/dev/vda1 /boot_disk {} ", disk.fstype());
    check(&vm, m.contains(&boot), format!("no '{boot}' in /proc/mounts:\n{m}"))?;
    power_off(&mut vm)?;
    vm.check_no_kernel_panic()
}

fn dev_path(t: &Target) -> Result<()> {
    device_name(t, "device_names/path", Disk::Main, "/dev/vda1")
}

fn dev_uuid(t: &Target) -> Result<()> {
    device_name(t, "device_names/uuid", Disk::Main, &format!("UUID={}", images::vfat_uuid()))
}

fn dev_partuuid_mbr(t: &Target) -> Result<()> {
    device_name(t, "device_names/partuuid_mbr", Disk::Main, &format!("PARTUUID={}", images::mbr_partuuid()))
}

fn dev_partuuid_gpt(t: &Target) -> Result<()> {
    device_name(t, "device_names/partuuid_gpt", Disk::Gpt, &format!("PARTUUID={}", images::GPT_PART_GUID))
}

fn dev_partlabel(t: &Target) -> Result<()> {
    device_name(t, "device_names/partlabel", Disk::Gpt, &format!("PARTLABEL={}", images::GPT_PART_NAME))
}

fn dev_ext4_label(t: &Target) -> Result<()> {
    device_name(t, "device_names/ext4_label", Disk::Ext4, "LABEL=AUTOSVR")
}

/// `autoinit.safe=N` on the safe disk (0_base, 05_safe, 10_net, 20_late).
fn safe(t: &Target, level: u32) -> Result<()> {
    let mut vm = t.boot_disk(&format!("safe_mode/{level}"), &format!("autoinit.boot=LABEL=AUTOSVR autoinit.safe={level}"), Disk::Safe)?;
    vm.expect(START, BOOT)?;
    stage_text(&mut vm, &lines::boot_device("LABEL=AUTOSVR", "vfat"))?;
    if level == 1 {
        overlay_line(&mut vm, "05_safe.tar")?; // name order: '5' sorts before '_'
    }
    overlay_line(&mut vm, "0_base.tar")?;
    to_stage2(&mut vm, t)?;
    for o in ["10_net.tar", "20_late.tar"].iter().chain(if level == 2 { &["05_safe.tar"][..] } else { &[] }) {
        not_applied(&vm, o)?;
    }
    let w = Want { motd: images::BASE_MOTD, hostname: images::IMAGE_HOSTNAME, net: false, safe1: level == 1, ..Want::main("vfat") };
    check_root(&mut vm, t, &w)?;
    power_off(&mut vm)?;
    vm.check_no_kernel_panic()
}

fn safe1(t: &Target) -> Result<()> {
    safe(t, 1)
}

fn safe2(t: &Target) -> Result<()> {
    safe(t, 2)
}

// ---------------------------------------------------------------------------------------------
// Failures

fn no_device(t: &Target) -> Result<()> {
    let mut vm = t.boot_disk("failures/no_device", "autoinit.boot=LABEL=NOPE autoinit.wait=2", Disk::Main)?;
    vm.expect(START, BOOT)?;
    stage_text(&mut vm, "autoinit: waiting for LABEL=NOPE: timed out after 2 s")?;
    // The block devices that do exist, with their labels and UUIDs.
    let uuid = images::vfat_uuid();
    stage_all(&mut vm, "the list of block devices naming /dev/vda1, AUTOSVR and its UUID", &["/dev/vda1", "AUTOSVR", &uuid])?;
    falls_back(&mut vm, t)
}

fn wrong_fs(t: &Target) -> Result<()> {
    let mut vm = t.boot_disk("failures/wrong_fs", "autoinit.boot=LABEL=AUTOSVR autoinit.bootfs=ext4", Disk::Main)?;
    vm.expect(START, BOOT)?;
    stage_all(&mut vm, "a mount error naming /dev/vda1 and ext4", &["mount", "/dev/vda1", "ext4"])?;
    falls_back(&mut vm, t)
}

fn missing_image(t: &Target) -> Result<()> {
    let mut vm = t.boot_disk("failures/missing_image", "autoinit.boot=LABEL=AUTOSVR autoinit.image=nope.img", Disk::Main)?;
    vm.expect(START, BOOT)?;
    stage_text(&mut vm, lines::MOUNTED)?;
    stage_all(&mut vm, "an error naming nope.img", &["nope.img"])?;
    falls_back(&mut vm, t)
}

fn old_image(t: &Target) -> Result<()> {
    let mut vm = t.boot_disk("failures/old_image", "autoinit.boot=LABEL=AUTOSVR", Disk::OldImage)?;
    vm.expect(START, BOOT)?;
    stage_text(&mut vm, lines::MOUNTED)?;
    stage(&mut vm, "a warning naming system.img and system.img.old", |l| {
        l.contains("autoinit: warning: ") && l.contains("system.img.old") && l.matches("system.img").count() >= 2
    })?;
    image_line(&mut vm, "system.img.old")?;
    to_stage2(&mut vm, t)?;
    check_root(&mut vm, t, &Want { version: images::OLD_VERSION, ..Want::main("vfat") })?;
    power_off(&mut vm)?;
    vm.check_no_kernel_panic()
}

fn no_upgrade(t: &Target) -> Result<()> {
    let mut vm = t.boot_disk("failures/no_upgrade", "autoinit.boot=LABEL=AUTOSVR", Disk::NoUpgrade)?;
    vm.expect(START, BOOT)?;
    image_line(&mut vm, "system.img")?;
    stage_all(&mut vm, "a warning naming _upgrade", &["autoinit: warning: ", "_upgrade"])?;
    to_stage2(&mut vm, t)?;
    check_root(&mut vm, t, &Want { upgrade: false, ..Want::main("vfat") })?;
    power_off(&mut vm)?;
    vm.check_no_kernel_panic()
}

fn bad_checksum(t: &Target) -> Result<()> {
    let mut vm = t.boot_disk("failures/bad_checksum", "autoinit.boot=LABEL=AUTOSVR", Disk::BadSum)?;
    vm.expect(START, BOOT)?;
    overlay_line(&mut vm, "0_base.tar")?;
    stage(&mut vm, "an error naming 10_net.tar and its checksum", |l| {
        let low = l.to_lowercase();
        l.contains("autoinit: ") && l.contains("10_net.tar") && (low.contains("sha256") || low.contains("sha-256") || low.contains("checksum"))
    })?;
    overlay_line(&mut vm, "20_late.tar")?;
    to_stage2(&mut vm, t)?;
    not_applied(&vm, "10_net.tar")?;
    check_root(&mut vm, t, &Want { hostname: images::IMAGE_HOSTNAME, net: false, ..Want::main("vfat") })?;
    power_off(&mut vm)?;
    vm.check_no_kernel_panic()
}

fn evil_path(t: &Target) -> Result<()> {
    let mut vm = t.boot_disk("failures/evil_path", "autoinit.boot=LABEL=AUTOSVR", Disk::Evil)?;
    vm.expect(START, BOOT)?;
    overlay_line(&mut vm, "0_base.tar")?;
    overlay_line(&mut vm, "10_net.tar")?;
    let offset = format!("offset {}", images::EVIL_OFFSET);
    stage_all(&mut vm, &format!("an error naming {} and {offset}", images::EVIL_OVERLAY), &[images::EVIL_OVERLAY, &offset])?;
    overlay_line(&mut vm, "20_late.tar")?;
    to_stage2(&mut vm, t)?;
    let escaped = succeeds(&mut vm, "test -e /escape || test -e /boot_disk/escape")?;
    check(&vm, !escaped, "../escape was extracted")?;
    check_root(&mut vm, t, &Want::main("vfat"))?;
    power_off(&mut vm)?;
    vm.check_no_kernel_panic()
}

fn unknown_module(t: &Target) -> Result<()> {
    let list = std::iter::once("nosuchmod".to_string()).chain(t.board.modules.iter().cloned()).collect::<Vec<_>>().join(",");
    let mut vm = t.boot_disk("failures/unknown_module", &format!("autoinit.boot=LABEL=AUTOSVR autoinit.modules={list}"), Disk::Main)?;
    vm.expect(START, BOOT)?;
    stage_all(&mut vm, "an error naming nosuchmod", &["nosuchmod"])?;
    stage_text(&mut vm, &lines::boot_device("LABEL=AUTOSVR", "vfat"))?;
    to_stage2(&mut vm, t)?;
    let m = sh(&mut vm, "grep ' /rofs_root ' /proc/mounts")?;
    check(&vm, m.contains(" squashfs "), format!("no squashfs on /rofs_root: {m}"))?;
    power_off(&mut vm)?;
    vm.check_no_kernel_panic()
}

fn malformed_cmdline(t: &Target) -> Result<()> {
    let mut vm = t.boot_disk("failures/malformed_cmdline", "autoinit.boot=LABEL=AUTOSVR autoinit.wait=forever", Disk::Main)?;
    vm.expect(START, BOOT)?;
    stage_text(&mut vm, "autoinit: warning: kernel command line: autoinit.wait=forever")?;
    stage_text(&mut vm, &lines::boot_device("LABEL=AUTOSVR", "vfat"))?;
    to_stage2(&mut vm, t)?;
    let m = sh(&mut vm, "grep ' /rofs_root ' /proc/mounts")?;
    check(&vm, m.contains(" squashfs "), format!("no squashfs on /rofs_root: {m}"))?;
    power_off(&mut vm)?;
    vm.check_no_kernel_panic()
}

/// `autoinit.data=`: a second disk (the ext4 one) mounted at /data with its options.
fn data_partition(t: &Target) -> Result<()> {
    // Both disks are labelled AUTOSVR: name the boot partition by path.
    let mut vm = t.boot_disks("data/mounted", "autoinit.boot=/dev/vda1 autoinit.data=/dev/vdb1 autoinit.dataopts=ro,noatime", &[Disk::Main, Disk::Ext4])?;
    vm.expect(START, BOOT)?;
    stage_text(&mut vm, &lines::boot_device("/dev/vda1", "vfat"))?;
    stage_text(&mut vm, "autoinit: mounted /dev/vdb1 on /data (ext4, ro,noatime)")?;
    to_stage2(&mut vm, t)?;
    let m = sh(&mut vm, "grep ' /data ' /proc/mounts")?;
    check(&vm, m.starts_with("/dev/vdb1 /data ext4 ro,noatime"), format!("/data is not the read-only ext4 partition:\n{m}"))?;
    let visible = succeeds(&mut vm, "test -f /data/autosvr/system.img")?;
    check(&vm, visible, "the data partition's files are not visible under /data")?;
    let real_dir = succeeds(&mut vm, "test -d /data && test ! -L /data")?;
    check(&vm, real_dir, "/data must be a mount point, not a link into the image")?;
    power_off(&mut vm)?;
    vm.check_no_kernel_panic()
}

/// Two disks with the same label: the boot goes on with one of them, and a warning says so.
fn duplicate_label(t: &Target) -> Result<()> {
    let mut vm = t.boot_disks("data/duplicate_label", "autoinit.boot=LABEL=AUTOSVR", &[Disk::Main, Disk::Ext4])?;
    vm.expect(START, BOOT)?;
    stage(&mut vm, "the duplicate-label warning", |l| l.contains("autoinit: warning: LABEL=AUTOSVR also matches /dev/vd"))?;
    to_stage2(&mut vm, t)?;
    power_off(&mut vm)?;
    vm.check_no_kernel_panic()
}

/// A data partition that never appears: an error line, and the system boots without /data.
fn data_missing(t: &Target) -> Result<()> {
    let mut vm = t.boot_disk("data/missing", "autoinit.boot=LABEL=AUTOSVR autoinit.data=LABEL=NODATA autoinit.wait=2", Disk::Main)?;
    vm.expect(START, BOOT)?;
    stage_text(&mut vm, "autoinit: waiting for LABEL=NODATA: timed out after 2 s")?;
    stage_text(&mut vm, "autoinit: booting without /data")?;
    to_stage2(&mut vm, t)?;
    let m = sh(&mut vm, "grep -c ' /data ' /proc/mounts || true")?;
    check(&vm, m == "0", format!("/data should not be mounted: {m}"))?;
    power_off(&mut vm)?;
    vm.check_no_kernel_panic()
}

const X86: &[Arch] = &[Arch::X86_64];

pub const TESTS: &[Test] = &[
    Test { name: "main_path", arches: &[Arch::X86_64, Arch::Aarch64, Arch::Armv7, Arch::Riscv64, Arch::I686], disks: &[Disk::Main], run: main_path },
    Test { name: "legacy_env", arches: X86, disks: &[Disk::Main], run: legacy_env },
    Test { name: "device_names/path", arches: X86, disks: &[Disk::Main], run: dev_path },
    Test { name: "device_names/uuid", arches: X86, disks: &[Disk::Main], run: dev_uuid },
    Test { name: "device_names/partuuid_mbr", arches: X86, disks: &[Disk::Main], run: dev_partuuid_mbr },
    Test { name: "device_names/partuuid_gpt", arches: X86, disks: &[Disk::Gpt], run: dev_partuuid_gpt },
    Test { name: "device_names/partlabel", arches: X86, disks: &[Disk::Gpt], run: dev_partlabel },
    Test { name: "device_names/ext4_label", arches: X86, disks: &[Disk::Ext4], run: dev_ext4_label },
    Test { name: "data/mounted", arches: X86, disks: &[Disk::Main, Disk::Ext4], run: data_partition },
    Test { name: "data/missing", arches: X86, disks: &[Disk::Main], run: data_missing },
    Test { name: "data/duplicate_label", arches: X86, disks: &[Disk::Main, Disk::Ext4], run: duplicate_label },
    Test { name: "safe_mode/1", arches: X86, disks: &[Disk::Safe], run: safe1 },
    Test { name: "safe_mode/2", arches: X86, disks: &[Disk::Safe], run: safe2 },
    Test { name: "failures/no_device", arches: X86, disks: &[Disk::Main], run: no_device },
    Test { name: "failures/wrong_fs", arches: X86, disks: &[Disk::Main], run: wrong_fs },
    Test { name: "failures/missing_image", arches: X86, disks: &[Disk::Main], run: missing_image },
    Test { name: "failures/old_image", arches: X86, disks: &[Disk::OldImage], run: old_image },
    Test { name: "failures/no_upgrade", arches: X86, disks: &[Disk::NoUpgrade], run: no_upgrade },
    Test { name: "failures/bad_checksum", arches: X86, disks: &[Disk::BadSum], run: bad_checksum },
    Test { name: "failures/evil_path", arches: X86, disks: &[Disk::Evil], run: evil_path },
    Test { name: "failures/unknown_module", arches: X86, disks: &[Disk::Main], run: unknown_module },
    Test { name: "failures/malformed_cmdline", arches: X86, disks: &[Disk::Main], run: malformed_cmdline },
];

#[cfg(test)]
mod tests {
    #[test]
    fn module_error_lines_are_recognised() {
        use super::lines::is_module_error;
        assert!(is_module_error("[ 1.0] autoinit: load module kernel/fs/fat/vfat.ko.xz: EINVAL (a compressed module needs a kernel with CONFIG_MODULE_DECOMPRESS)"));
        assert!(is_module_error("autoinit: open module /lib/modules/6.1.0-50-686/kernel/x.ko: ENOENT"));
        assert!(is_module_error("autoinit: module nosuchmod: not in modules.dep or modules.builtin of 6.1.0; not loaded"));
        assert!(is_module_error("autoinit: read /lib/modules/6.1.0/modules.dep: ENOENT; no modules loaded"));
        assert!(!is_module_error("autoinit: loaded 12 kernel modules"));
        assert!(!is_module_error("autoinit: module virtio is built into the kernel"));
    }
}
