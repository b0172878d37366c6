//! Persisting an upgrade and counted trial boots (issue 5, steps 6 and 7), on the x86_64 QEMU
//! board. The boot disks hold images v1 and v2 (and a v2 whose service always fails) with a
//! console shell unit and an `app` unit, in the states an interrupted persist or a trial
//! leaves behind. Disks the guest may write are per-test copies attached writable; the trial
//! tests run QEMU without `-no-reboot`, so that autoinit's own reboots boot the same disk
//! again. What is on the disk afterwards is read back with mtools.

use crate::arch::Arch;
use crate::boot_tests::{check, Target, Test, BOOT, EXIT, START};
use crate::disk::{self, Layout};
use crate::images::{self, Image};
use crate::qemu::{Vm, VmOptions};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

/// From autoinit's start line to the console shell of stage 2, under TCG on a loaded machine.
const TO_SHELL: Duration = Duration::from_secs(90);
/// From stage 2 to the end of a trial: the settle time (5 s) or a failed unit, then a reboot.
const TRIAL: Duration = Duration::from_secs(90);

/// `/etc/autosvr/version` of each image.
pub const V1: &str = "persist v1";
pub const V2: &str = "persist v2";
pub const V2_BAD: &str = "persist v2 (app fails)";

/// The image's directory and file name on the boot device, as autoinit's lines name them.
const IMAGE: &str = "/boot_disk/autosvr/system.img";

/// The console lines of the boot stage and of stage 2 about trials.
mod lines {
    pub fn trial_boot(left: u8) -> String {
        format!("autoinit: trial boot of {}: {left} tries left", super::IMAGE)
    }
    pub fn tries_used() -> String {
        format!("autoinit: warning: trial of {i} failed 3 times: booting {i}.old", i = super::IMAGE)
    }
    pub fn trial_failed() -> String {
        format!("autoinit: trial boot of {} failed: a unit failed (app); rebooting", super::IMAGE)
    }
    pub fn trial_succeeded() -> String {
        format!("autoinit: trial boot of {i} succeeded: removed {i}.try", i = super::IMAGE)
    }
    /// `system image /boot_disk/autosvr/NAME on /dev/loopN mounted at /rofs_root`.
    pub fn mounted(name: &str) -> String {
        format!("autoinit: system image /boot_disk/autosvr/{name} on /dev/loop")
    }
    pub const READ_WRITE: &str = "read-write";
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Version {
    V1,
    V2,
    V2Bad,
}

impl Version {
    fn name(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
            Version::V2Bad => "v2bad",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Version::V1 => V1,
            Version::V2 => V2,
            Version::V2Bad => V2_BAD,
        }
    }
}

/// The console shell: the image has units, so stage 2 runs no rescue shell. SIGHUP stops it
/// (an interactive shell ignores SIGTERM).
const CONSOLE_UNIT: &str = "[Service]\nExecStart=/bin/sh -l\nStandardInput=tty\nStandardOutput=tty\nStandardError=tty\nTTYPath=/dev/ttyS0\nRestart=always\nKillSignal=SIGHUP\n";
const APP_UNIT: &str = "[Service]\nExecStart=/opt/autosvr/app\nRestart=no\n";

/// `target/images/x86_64/persist-<version>.img`: the boot tests' good image plus the
/// version file, the units and the app (which fails at once in v2bad).
fn system_image(arch: Arch, busybox: &Path, v: Version) -> Result<PathBuf> {
    let dir = images::arch_dir(arch);
    std::fs::create_dir_all(&dir)?;
    let out = dir.join(format!("persist-{}.img", v.name()));
    let app = if v == Version::V2Bad {
        "#!/bin/sh\necho \"app $(cat /etc/autosvr/version): failing\"\nexit 1\n".to_string()
    } else {
        "#!/bin/sh\necho \"app $(cat /etc/autosvr/version)\"\nexec sleep 1000000\n".to_string()
    };
    let key = format!(
        "persist image {v:?} busybox {:016x}\n{CONSOLE_UNIT}{APP_UNIT}{app}{}",
        images::file_hash(busybox)?,
        v.text()
    );
    images::cached(&out, &key, |tmp| {
        let tree = dir.join(format!("tree-persist-{}", v.name()));
        images::fresh_dir(&tree)?;
        images::image_tree(arch, busybox, Image::Good, &tree)?;
        images::put(&tree, "etc/autosvr/version", format!("{}\n", v.text()).as_bytes(), 0o644)?;
        images::put(&tree, "etc/autoinit/services/console.service", CONSOLE_UNIT.as_bytes(), 0o644)?;
        images::put(&tree, "etc/autoinit/services/app.service", APP_UNIT.as_bytes(), 0o644)?;
        images::put(&tree, "opt/autosvr/app", app.as_bytes(), 0o755)?;
        images::dirs_0755(&tree)?;
        images::mksquashfs(&tree, tmp)?;
        images::check_image(tmp, true)?;
        std::fs::remove_dir_all(&tree)?;
        Ok(())
    })?;
    Ok(out)
}

/// What a file on the test disk holds.
enum Content {
    Image(Version),
    /// The image's first half: a persist interrupted while copying.
    Truncated(Version),
    /// The image with everything after its superblock overwritten.
    Corrupt(Version),
    Text(&'static str),
}

/// The boot disks of these tests: (name, files under `autosvr/` or elsewhere).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum PDisk {
    /// v1, and a truncated copy of v2 left as `system.img.new`.
    LeftoverNew,
    /// A corrupt `system.img` (v2) and a good `system.img.old` (v1).
    CorruptImage,
    /// v2bad under trial with 3 tries, v1 as `system.img.old`.
    TrialBad,
    /// v2 under trial with 3 tries, v1 as `system.img.old`.
    TrialGood,
    /// v1, and v2 at `upgrades/v2.img` to upgrade to.
    Upgrade,
}

impl PDisk {
    fn name(self) -> &'static str {
        match self {
            PDisk::LeftoverNew => "leftover-new",
            PDisk::CorruptImage => "corrupt-image",
            PDisk::TrialBad => "trial-bad",
            PDisk::TrialGood => "trial-good",
            PDisk::Upgrade => "upgrade",
        }
    }

    fn files(self) -> Vec<(&'static str, Content)> {
        use Content::*;
        match self {
            PDisk::LeftoverNew => vec![("autosvr/system.img", Image(Version::V1)), ("autosvr/system.img.new", Truncated(Version::V2))],
            PDisk::CorruptImage => vec![("autosvr/system.img", Corrupt(Version::V2)), ("autosvr/system.img.old", Image(Version::V1))],
            PDisk::TrialBad => vec![
                ("autosvr/system.img", Image(Version::V2Bad)),
                ("autosvr/system.img.old", Image(Version::V1)),
                ("autosvr/system.img.try", Text("3\n")),
            ],
            PDisk::TrialGood => vec![
                ("autosvr/system.img", Image(Version::V2)),
                ("autosvr/system.img.old", Image(Version::V1)),
                ("autosvr/system.img.try", Text("3\n")),
            ],
            PDisk::Upgrade => vec![("autosvr/system.img", Image(Version::V1)), ("upgrades/v2.img", Image(Version::V2))],
        }
    }
}

/// Building is serialised: tests run in parallel and share the cached artefacts.
static BUILD: Mutex<()> = Mutex::new(());

/// Builds (or finds up to date) the disk `d` and returns a fresh copy of it for test `test`,
/// which the guest may write.
fn disk_copy(t: &Target, d: PDisk, test: &str) -> Result<PathBuf> {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let q = t.board.qemu.as_ref().context("board without [qemu]")?;
    let busybox = crate::debian::busybox(&q.debian_arch)?;
    let dir = images::arch_dir(t.arch);
    let mut staged: Vec<(&str, PathBuf)> = Vec::new();
    let mut key = format!("persist disk {d:?}");
    for (dest, content) in d.files() {
        let src = match content {
            Content::Image(v) => system_image(t.arch, &busybox, v)?,
            Content::Truncated(v) => {
                let full = system_image(t.arch, &busybox, v)?;
                let out = dir.join(format!("persist-{}-truncated.img", v.name()));
                images::cached(&out, &format!("truncated {:016x}", images::file_hash(&full)?), |tmp| {
                    let data = std::fs::read(&full)?;
                    std::fs::write(tmp, &data[..data.len() / 2])?;
                    Ok(())
                })?;
                out
            }
            Content::Corrupt(v) => {
                let full = system_image(t.arch, &busybox, v)?;
                let out = dir.join(format!("persist-{}-corrupt.img", v.name()));
                images::cached(&out, &format!("corrupt {:016x}", images::file_hash(&full)?), |tmp| images::corrupt(&full, tmp))?;
                out
            }
            Content::Text(text) => {
                let out = dir.join(format!("persist-text-{:016x}", images::fnv(images::FNV_START, text.as_bytes())));
                std::fs::write(&out, text)?;
                out
            }
        };
        key.push_str(&format!("\n{dest} {:016x}", images::file_hash(&src)?));
        staged.push((dest, src));
    }
    let layout = Layout::from_board(&t.board.boot_partition, t.board.firmware())?;
    key.push_str(&format!("\n{layout:?}"));
    let out = dir.join(format!("disk-persist-{}.img", d.name()));
    images::cached(&out, &key, |tmp| {
        let work = dir.join(format!("work-persist-{}", d.name()));
        images::fresh_dir(&work)?;
        let tree = work.join("tree");
        for (dest, src) in &staged {
            let p = tree.join(dest);
            std::fs::create_dir_all(p.parent().context("no parent")?)?;
            std::fs::copy(src, &p).with_context(|| format!("copying {}", src.display()))?;
        }
        images::dirs_0755(&tree)?;
        disk::write(&layout, &images::test_identity(), &tree, tmp, &work.join("disk"))?;
        std::fs::remove_dir_all(&work)?;
        Ok(())
    })?;
    let runs = dir.join("persist-runs");
    std::fs::create_dir_all(&runs)?;
    let copy = runs.join(format!("{}.img", test.replace('/', "-")));
    images::run(Command::new("cp").arg("--sparse=always").arg(&out).arg(&copy))?;
    Ok(copy)
}

/// The boot partition of a test disk, for mtools (`IMG@@OFFSET`).
fn mtools_image(t: &Target, img: &Path) -> Result<String> {
    let layout = Layout::from_board(&t.board.boot_partition, t.board.firmware())?;
    Ok(format!("{}@@{}", img.display(), layout.start))
}

/// The names in `autosvr/` on the test disk, sorted.
fn listing(t: &Target, img: &Path) -> Result<Vec<String>> {
    let out = images::run(Command::new("mdir").env("MTOOLS_SKIP_CHECK", "1").args(["-b", "-i"]).arg(mtools_image(t, img)?).arg("::autosvr"))?;
    let mut names: Vec<String> =
        out.lines().filter_map(|l| l.trim().rsplit('/').next().map(str::to_string)).filter(|n| !n.is_empty()).collect();
    names.sort();
    Ok(names)
}

/// The text of `autosvr/NAME` on the test disk.
fn read_file(t: &Target, img: &Path, name: &str) -> Result<String> {
    images::run(Command::new("mtype").env("MTOOLS_SKIP_CHECK", "1").arg("-i").arg(mtools_image(t, img)?).arg(format!("::autosvr/{name}")))
}

fn boot(t: &Target, name: &str, disk: &Path, reboot: bool) -> Result<Vm> {
    t.boot_files(name, "autoinit.boot=LABEL=AUTOSVR", &[disk.to_path_buf()], VmOptions { writable_disks: true, reboot })
}

/// Waits for a line containing `text`; a kernel panic or QEMU's exit fails the wait.
fn line(vm: &mut Vm, text: &str, timeout: Duration) -> Result<String> {
    vm.expect_line(text, timeout)
}

/// Fails if the console shows `text` after `from` (a byte offset of the console text).
fn absent_since(vm: &Vm, from: usize, text: &str) -> Result<()> {
    let all = vm.text();
    let hit = all.get(from..).and_then(|rest| rest.lines().find(|l| l.contains(text)).map(str::to_string));
    check(vm, hit.is_none(), format!("unexpected line: {}", hit.unwrap_or_default()))
}

/// The console shell of stage 2 answers; returns `/etc/autosvr/version`.
fn version(vm: &mut Vm) -> Result<String> {
    vm.wait_shell(TO_SHELL)?;
    read_version(vm)
}

/// `/etc/autosvr/version`, without the kernel's lines that the console mixes in (the app's
/// output goes to /dev/kmsg).
fn read_version(vm: &mut Vm) -> Result<String> {
    let out = vm.run("cat /etc/autosvr/version")?;
    Ok(out.lines().map(str::trim).rfind(|l| !l.is_empty() && !l.starts_with('[')).unwrap_or("").to_string())
}

/// The `app` unit runs the image's app (v1 or v2).
fn app_running(vm: &mut Vm) -> Result<()> {
    let st = vm.run("/__autoinit__/autoinit status app")?;
    check(vm, st.contains("running"), format!("the app unit is not running:\n{st}"))
}

/// Powers off through the manager and waits for QEMU to exit.
fn power_off(vm: &mut Vm) -> Result<()> {
    vm.send_line("/__autoinit__/autoinit poweroff")?;
    vm.expect("reboot: Power down", Duration::from_secs(60))?;
    vm.wait_exit(EXIT)?;
    vm.check_no_kernel_panic()
}

fn hash(p: &Path) -> Result<u64> {
    images::file_hash(p)
}

// ---------------------------------------------------------------------------------------------
// (a) An interrupted persist still boots, and a normal boot writes nothing.

fn leftover_new(t: &Target) -> Result<()> {
    let img = disk_copy(t, PDisk::LeftoverNew, "persist/leftover_new")?;
    let before = hash(&img)?;
    let mut vm = boot(t, "persist/leftover_new", &img, false)?;
    vm.expect(START, BOOT)?;
    line(&mut vm, &lines::mounted("system.img"), TO_SHELL)?;
    let v = version(&mut vm)?;
    check(&vm, v == V1, format!("booted '{v}', expected '{V1}'"))?;
    app_running(&mut vm)?;
    let ls = vm.run("ls /boot_disk/autosvr")?;
    check(&vm, ls.contains("system.img.new"), format!("the leftover system.img.new is gone on a normal boot:\n{ls}"))?;
    power_off(&mut vm)?;
    for bad in ["trial", "warning: system image", lines::READ_WRITE, "PREVIOUS"] {
        absent_since(&vm, 0, bad)?;
    }
    check(&vm, hash(&img)? == before, "a normal boot changed the boot disk")
}

fn corrupt_image(t: &Target) -> Result<()> {
    let img = disk_copy(t, PDisk::CorruptImage, "persist/corrupt_image")?;
    let before = hash(&img)?;
    let mut vm = boot(t, "persist/corrupt_image", &img, false)?;
    vm.expect(START, BOOT)?;
    line(&mut vm, &format!("booted the PREVIOUS image {IMAGE}.old because {IMAGE} is unusable"), TO_SHELL)?;
    let v = version(&mut vm)?;
    check(&vm, v == V1, format!("booted '{v}', expected '{V1}' from system.img.old"))?;
    app_running(&mut vm)?;
    power_off(&mut vm)?;
    absent_since(&vm, 0, lines::READ_WRITE)?;
    check(&vm, hash(&img)? == before, "a boot that fell back to system.img.old changed the boot disk")
}

// ---------------------------------------------------------------------------------------------
// (b), (c) Trial boots.

/// v2's app always fails: three trial boots, each rebooted by autoinit, then v1 by itself.
fn trial_fails(t: &Target) -> Result<()> {
    let img = disk_copy(t, PDisk::TrialBad, "persist/trial_fails")?;
    let mut vm = boot(t, "persist/trial_fails", &img, true)?;
    for left in [2u8, 1, 0] {
        vm.expect(START, BOOT)?;
        line(&mut vm, &lines::trial_boot(left), TO_SHELL)?;
        line(&mut vm, &lines::mounted("system.img"), TO_SHELL)?;
        line(&mut vm, &lines::trial_failed(), TRIAL)?;
        line(&mut vm, "reboot: Restarting system", Duration::from_secs(60))?;
    }
    vm.expect(START, BOOT)?;
    let fourth = vm.text().len();
    line(&mut vm, &lines::tries_used(), TO_SHELL)?;
    line(&mut vm, &lines::mounted("system.img.old"), TO_SHELL)?;
    let v = version(&mut vm)?;
    check(&vm, v == V1, format!("the 4th boot runs '{v}', expected '{V1}'"))?;
    app_running(&mut vm)?;
    // Not a trial: nothing judges it, nothing reboots it, nothing writes the disk.
    vm.run("sleep 8")?;
    power_off(&mut vm)?;
    for bad in ["tries left", "rebooting", lines::READ_WRITE] {
        absent_since(&vm, fourth, bad)?;
    }
    let marker = read_file(t, &img, "system.img.try")?;
    check(&vm, marker.trim() == "0", format!("system.img.try holds '{}', expected 0", marker.trim()))?;
    let names = listing(t, &img)?;
    check(&vm, names.contains(&"system.img".to_string()) && names.contains(&"system.img.old".to_string()), format!("autosvr/ holds {names:?}"))
}

/// v2 gets healthy on its first trial boot: the marker goes, and the next boot is a normal
/// one that writes nothing.
fn trial_succeeds(t: &Target) -> Result<()> {
    let img = disk_copy(t, PDisk::TrialGood, "persist/trial_succeeds")?;
    let mut vm = boot(t, "persist/trial_succeeds", &img, false)?;
    vm.expect(START, BOOT)?;
    line(&mut vm, &lines::trial_boot(2), TO_SHELL)?;
    line(&mut vm, &lines::mounted("system.img"), TO_SHELL)?;
    line(&mut vm, "autoinit: ending the trial: remounted /boot_disk read-write", TRIAL)?;
    line(&mut vm, "autoinit: ending the trial: remounted /boot_disk read-only", Duration::from_secs(20))?;
    line(&mut vm, &lines::trial_succeeded(), Duration::from_secs(20))?;
    let v = version(&mut vm)?;
    check(&vm, v == V2, format!("the trial boot runs '{v}', expected '{V2}'"))?;
    app_running(&mut vm)?;
    let m = vm.run("grep ' /boot_disk ' /proc/mounts")?;
    check(&vm, m.split_whitespace().nth(3).is_some_and(|o| o.split(',').any(|x| x == "ro")), format!("/boot_disk is not read-only again: {m}"))?;
    power_off(&mut vm)?;
    let names = listing(t, &img)?;
    check(&vm, !names.iter().any(|n| n == "system.img.try"), format!("the marker is still there: {names:?}"))?;
    drop(vm);

    let before = hash(&img)?;
    let mut vm = boot(t, "persist/trial_succeeds-next", &img, false)?;
    vm.expect(START, BOOT)?;
    line(&mut vm, &lines::mounted("system.img"), TO_SHELL)?;
    let v = version(&mut vm)?;
    check(&vm, v == V2, format!("the boot after the trial runs '{v}', expected '{V2}'"))?;
    power_off(&mut vm)?;
    for bad in ["trial", lines::READ_WRITE] {
        absent_since(&vm, 0, bad)?;
    }
    check(&vm, hash(&img)? == before, "the normal boot after the trial changed the boot disk")
}

/// A trial that cannot be counted (the disk is read-only to the guest) could fail forever:
/// the boot stage says so and boots the proven image instead.
fn trial_uncountable(t: &Target) -> Result<()> {
    let img = disk_copy(t, PDisk::TrialBad, "persist/trial_uncountable")?;
    let before = hash(&img)?;
    let opts = VmOptions { writable_disks: false, reboot: false };
    let mut vm = t.boot_files("persist/trial_uncountable", "autoinit.boot=LABEL=AUTOSVR", std::slice::from_ref(&img), opts)?;
    vm.expect(START, BOOT)?;
    line(&mut vm, "autoinit: counting the trial boot: remount /boot_disk read-write: ", TO_SHELL)?;
    line(&mut vm, &format!("autoinit: cannot count the trial boot of {IMAGE} in {IMAGE}.try ("), TO_SHELL)?;
    line(&mut vm, &lines::mounted("system.img.old"), TO_SHELL)?;
    let v = version(&mut vm)?;
    check(&vm, v == V1, format!("booted '{v}', expected '{V1}' from system.img.old"))?;
    vm.run("sleep 8")?;
    power_off(&mut vm)?;
    absent_since(&vm, 0, "rebooting")?;
    check(&vm, hash(&img)? == before, "the read-only disk changed")
}

// ---------------------------------------------------------------------------------------------
// (d) `upgrade PATH --persist`, then a reboot comes up on v2 (needs the upgrade command).

fn upgrade_then_reboot(t: &Target) -> Result<()> {
    let img = disk_copy(t, PDisk::Upgrade, "persist/upgrade_then_reboot")?;
    let mut vm = boot(t, "persist/upgrade_then_reboot", &img, true)?;
    vm.expect(START, BOOT)?;
    let v = version(&mut vm)?;
    check(&vm, v == V1, format!("booted '{v}', expected '{V1}'"))?;
    // The rolling restart restarts the console unit too, and with it everything in its
    // cgroup: the client runs from the root cgroup and leaves its answer in /tmp.
    vm.run(
        "( sh -c 'echo $$ > /sys/fs/cgroup/cgroup.procs; /__autoinit__/autoinit upgrade /boot_disk/upgrades/v2.img --persist > /tmp/upgrade.out 2>&1; echo $? > /tmp/upgrade.rc' < /dev/null > /dev/null 2>&1 & )",
    )?;
    line(&mut vm, "autoinit: upgrade: restarting console", Duration::from_secs(120))?;
    line(&mut vm, "autoinit: console: started", Duration::from_secs(60))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    let code = loop {
        // A shell that answers, then the client's status once it has one.
        if vm.wait_shell(TO_SHELL).is_ok() {
            if let Ok((rc, _)) = vm.run_status("cat /tmp/upgrade.rc 2>/dev/null", Duration::from_secs(30)) {
                if let Some(code) = rc.lines().find_map(|l| l.trim().parse::<i32>().ok()) {
                    break code;
                }
            }
        }
        if std::time::Instant::now() >= deadline {
            return Err(vm.fail("`autoinit upgrade ... --persist` did not finish within 240 s"));
        }
        std::thread::sleep(Duration::from_secs(3));
    };
    let out = vm.run("cat /tmp/upgrade.out")?;
    check(&vm, code == 0, format!("`autoinit upgrade ... --persist` exited with {code}:\n{out}"))?;
    let v = read_version(&mut vm)?;
    check(&vm, v == V2, format!("after the live upgrade /etc/autosvr/version is '{v}', expected '{V2}'"))?;
    let m = vm.run("grep ' /boot_disk ' /proc/mounts")?;
    check(&vm, m.split_whitespace().nth(3).is_some_and(|o| o.split(',').any(|x| x == "ro")), format!("/boot_disk is not read-only after the persist: {m}"))?;
    let ls = vm.run("ls /boot_disk/autosvr")?;
    for want in ["system.img", "system.img.old", "system.img.try"] {
        check(&vm, ls.split_whitespace().any(|n| n == want), format!("no {want} after the persist:\n{ls}"))?;
    }
    vm.send_line("/__autoinit__/autoinit reboot")?;
    vm.expect(START, Duration::from_secs(120))?;
    line(&mut vm, &lines::trial_boot(2), TO_SHELL)?;
    line(&mut vm, &lines::trial_succeeded(), TRIAL)?;
    let v = version(&mut vm)?;
    check(&vm, v == V2, format!("the boot after the persist runs '{v}', expected '{V2}'"))?;
    app_running(&mut vm)?;
    power_off(&mut vm)?;
    let names = listing(t, &img)?;
    check(&vm, names == ["system.img", "system.img.old"], format!("autosvr/ holds {names:?}, expected system.img and system.img.old"))
}

const X86: &[Arch] = &[Arch::X86_64];

pub const TESTS: &[Test] = &[
    Test { name: "persist/leftover_new", arches: X86, disks: &[], run: leftover_new },
    Test { name: "persist/corrupt_image", arches: X86, disks: &[], run: corrupt_image },
    Test { name: "persist/trial_fails", arches: X86, disks: &[], run: trial_fails },
    Test { name: "persist/trial_succeeds", arches: X86, disks: &[], run: trial_succeeds },
    Test { name: "persist/trial_uncountable", arches: X86, disks: &[], run: trial_uncountable },
    Test { name: "persist/upgrade_then_reboot", arches: X86, disks: &[], run: upgrade_then_reboot },
];

#[cfg(test)]
mod tests {
    #[test]
    fn lines_name_the_image_as_autoinit_does() {
        assert_eq!(super::lines::trial_boot(2), "autoinit: trial boot of /boot_disk/autosvr/system.img: 2 tries left");
        assert!(super::lines::tries_used().ends_with("booting /boot_disk/autosvr/system.img.old"));
    }

    #[test]
    fn every_disk_holds_an_image() {
        use super::PDisk::*;
        for d in [LeftoverNew, CorruptImage, TrialBad, TrialGood, Upgrade] {
            assert!(d.files().iter().any(|(p, _)| *p == "autosvr/system.img"), "{d:?}");
        }
    }
}
