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
    /// v2 with an empty trial marker (created, never written: a power cut in between), v1 as
    /// `system.img.old`.
    EmptyMarker,
}

impl PDisk {
    fn name(self) -> &'static str {
        match self {
            PDisk::LeftoverNew => "leftover-new",
            PDisk::CorruptImage => "corrupt-image",
            PDisk::TrialBad => "trial-bad",
            PDisk::TrialGood => "trial-good",
            PDisk::Upgrade => "upgrade",
            PDisk::EmptyMarker => "empty-marker",
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
            PDisk::EmptyMarker => vec![
                ("autosvr/system.img", Image(Version::V2)),
                ("autosvr/system.img.old", Image(Version::V1)),
                ("autosvr/system.img.try", Text("")),
            ],
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
    t.boot_files(name, "autoinit.boot=LABEL=AUTOSVR", &[disk.to_path_buf()], VmOptions { writable_disks: true, reboot, ..VmOptions::default() })
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
    let opts = VmOptions { writable_disks: false, reboot: false, ..VmOptions::default() };
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

/// An empty marker is corrupt and counts as no tries left: the boot stage says so and boots
/// the proven image, writing nothing.
fn corrupt_marker(t: &Target) -> Result<()> {
    let img = disk_copy(t, PDisk::EmptyMarker, "persist/corrupt_marker")?;
    let before = hash(&img)?;
    let mut vm = boot(t, "persist/corrupt_marker", &img, false)?;
    vm.expect(START, BOOT)?;
    line(&mut vm, &format!("autoinit: warning: trial marker {IMAGE}.try: empty (counts as 0 tries left): booting {IMAGE}.old"), TO_SHELL)?;
    line(&mut vm, &lines::mounted("system.img.old"), TO_SHELL)?;
    let v = version(&mut vm)?;
    check(&vm, v == V1, format!("booted '{v}', expected '{V1}' from system.img.old"))?;
    app_running(&mut vm)?;
    vm.run("sleep 8")?;
    power_off(&mut vm)?;
    for bad in ["rebooting", "trial boot of", lines::READ_WRITE] {
        absent_since(&vm, 0, bad)?;
    }
    check(&vm, hash(&img)? == before, "a boot with a corrupt marker changed the boot disk")
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

// ---------------------------------------------------------------------------------------------
// (e) A power cut during `upgrade PATH --persist`: QEMU is killed (SIGKILL, no shutdown, no
// sync) at each step of the persist in turn, and the same disks are booted again.

/// The line each step of a persist ends with (persist.rs), in order. After step 0 the copy is
/// under way; the step a kill interrupts is the one after the last of these lines seen, or
/// the one after that (a step can be done on the disk before its line is printed).
const PERSIST_STEPS: [&str; 6] = [
    "autoinit: persist: remounted /boot_disk read-write",
    "autoinit: persist: copied ",
    "autoinit: persist: wrote the trial marker ",
    "autoinit: persist: kept ",
    "autoinit: persist: renamed ",
    "autoinit: persist: remounted /boot_disk read-only",
];

/// What the boot after a power cut did, as its console and shell show it.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Recovery {
    /// `system.img` is v1 and there is no marker: a normal boot of v1.
    V1,
    /// The marker is written, `system.img` is still v1: a trial boot of v1, which succeeds.
    V1Trial,
    /// `system.img` was renamed to `system.img.old` and the copy not yet to `system.img`: the
    /// trial boot finds no `system.img` and falls back to `system.img.old` (v1).
    V1Old,
    /// The copy is `system.img`: the trial boot of v2, which succeeds.
    V2Trial,
}

/// The recovery a power cut right after step `k`'s line (`PERSIST_STEPS`) must lead to.
fn recovery_after(k: usize) -> Recovery {
    match k {
        0 | 1 => Recovery::V1,
        2 => Recovery::V1Trial,
        3 => Recovery::V1Old,
        _ => Recovery::V2Trial,
    }
}

/// The index of the last persist step whose line the console shows (None: the persist had
/// not started).
fn last_step(console: &str) -> Option<usize> {
    console.lines().filter_map(|l| PERSIST_STEPS.iter().position(|s| l.contains(s))).max()
}

/// Where each run kills QEMU: after this step's line (index in `PERSIST_STEPS`), this long
/// after it. Writes to the boot disk are throttled to `CUT_WRITE_BPS`, so that the 1-MiB copy
/// takes about 16 s and each later step (a few sectors and a flush) tens of milliseconds.
const CUTS: [(&str, usize, Duration); 4] = [
    ("copy", 0, Duration::from_secs(3)),
    ("marker", 2, Duration::ZERO),
    ("kept", 3, Duration::ZERO),
    ("renamed", 4, Duration::ZERO),
];
const CUT_WRITE_BPS: u64 = 64 * 1024;

/// What the user wrote on the data partition before the upgrade.
const USER_FILE: &str = "/data/notes.txt";
const USER_TEXT: &str = "written by the user before the upgrade";

/// A fresh copy of the data disk: MBR, one ext4 partition labelled USERDATA.
fn data_disk_copy(t: &Target, test: &str) -> Result<PathBuf> {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let dir = images::arch_dir(t.arch);
    let layout = Layout { fs: disk::Fs::Ext4, label: "USERDATA".into(), ..Layout::from_board(&t.board.boot_partition, t.board.firmware())? };
    let id = disk::Identity::derived("persist user data");
    let out = dir.join("disk-persist-userdata.img");
    images::cached(&out, &format!("persist user data\n{layout:?}\n{id:?}"), |tmp| {
        let work = dir.join("work-persist-userdata");
        images::fresh_dir(&work)?;
        let tree = work.join("tree");
        images::put(&tree, "README", b"the user's data partition\n", 0o644)?;
        disk::write(&layout, &id, &tree, tmp, &work.join("disk"))?;
        std::fs::remove_dir_all(&work)?;
        Ok(())
    })?;
    let runs = dir.join("persist-runs");
    std::fs::create_dir_all(&runs)?;
    let copy = runs.join(format!("{}-data.img", test.replace('/', "-")));
    images::run(Command::new("cp").arg("--sparse=always").arg(&out).arg(&copy))?;
    Ok(copy)
}

/// The bytes of `autosvr/NAME` on the test disk (None if it is not there).
fn file_bytes(t: &Target, img: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    if !listing(t, img)?.iter().any(|n| n == name) {
        return Ok(None);
    }
    let out = img.with_extension(format!("{name}.out"));
    let _ = std::fs::remove_file(&out);
    images::run(Command::new("mcopy").env("MTOOLS_SKIP_CHECK", "1").arg("-n").arg("-i").arg(mtools_image(t, img)?).arg(format!("::autosvr/{name}")).arg(&out))?;
    let data = std::fs::read(&out)?;
    std::fs::remove_file(&out)?;
    Ok(Some(data))
}

const POWER_CUT_CMDLINE: &str = "autoinit.boot=LABEL=AUTOSVR autoinit.data=LABEL=USERDATA";

fn power_cut(t: &Target) -> Result<()> {
    let q = t.board.qemu.as_ref().context("board without [qemu]")?;
    let busybox = crate::debian::busybox(&q.debian_arch)?;
    let v1 = std::fs::read(system_image(t.arch, &busybox, Version::V1)?)?;
    let v2 = std::fs::read(system_image(t.arch, &busybox, Version::V2)?)?;
    let mut seen = Vec::new();
    for (cut, step, delay) in CUTS {
        let name = format!("persist/power_cut-{cut}");
        let img = disk_copy(t, PDisk::Upgrade, &name)?;
        let data = data_disk_copy(t, &name)?;
        let disks = [img.clone(), data];

        // v1 runs; the user saves a file on the data partition; the upgrade starts.
        let opts = VmOptions { writable_disks: true, reboot: false, first_disk_write_bps: Some(CUT_WRITE_BPS) };
        let mut vm = t.boot_files(&name, POWER_CUT_CMDLINE, &disks, opts)?;
        vm.expect(START, BOOT)?;
        let v = version(&mut vm)?;
        check(&vm, v == V1, format!("booted '{v}', expected '{V1}'"))?;
        let m = vm.run("grep ' /data ' /proc/mounts")?;
        check(&vm, m.contains(" /data ext4 rw"), format!("the data partition is not mounted read-write at /data: {m}"))?;
        vm.run(&format!("echo '{USER_TEXT}' > {USER_FILE} && sync"))?;
        let from = vm.text().len();
        vm.run(
            "( sh -c 'echo $$ > /sys/fs/cgroup/cgroup.procs; /__autoinit__/autoinit upgrade /boot_disk/upgrades/v2.img --persist --settle 1 > /tmp/upgrade.out 2>&1' < /dev/null > /dev/null 2>&1 & )",
        )?;
        line(&mut vm, PERSIST_STEPS[step], Duration::from_secs(240))?;
        std::thread::sleep(delay);
        // The power cut: SIGKILL, then the console up to QEMU's death.
        vm.kill();
        let _ = vm.wait_exit(Duration::from_secs(10));
        vm.check_no_kernel_panic()?;
        let console = vm.text();
        let last = last_step(&console[from..]).unwrap_or(0);
        if cut == "copy" {
            check(&vm, last == 0, format!("the copy had ended before the power cut ({}): the throttled write did not hold it", PERSIST_STEPS[last]))?;
        }
        let allowed = [recovery_after(last), recovery_after(last + 1)];
        drop(vm);

        // The same disks again.
        let mut vm = t.boot_files(&format!("{name}-after"), POWER_CUT_CMDLINE, &disks, VmOptions { writable_disks: true, ..VmOptions::default() })?;
        vm.expect(START, BOOT)?;
        let v = version(&mut vm)?;
        let text = vm.text();
        let trial = text.contains(&lines::trial_boot(2));
        let old = text.contains(&lines::mounted("system.img.old"));
        let previous = text.contains(&format!("booted the PREVIOUS image {IMAGE}.old because {IMAGE} is unusable"));
        let got = match (trial, old, v.as_str()) {
            (false, false, V1) => Recovery::V1,
            (true, false, V1) => Recovery::V1Trial,
            (true, true, V1) if previous => Recovery::V1Old,
            (true, false, V2) => Recovery::V2Trial,
            _ => {
                return Err(vm.fail(format!(
                    "after a power cut at '{}', an unexpected boot: trial {trial}, booted system.img.old {old}, fallback line {previous}, version '{v}'",
                    PERSIST_STEPS[last]
                )))
            }
        };
        check(
            &vm,
            allowed.contains(&got),
            format!("the power cut came after '{}' but the next boot was {got:?}, expected one of {allowed:?}", PERSIST_STEPS[last]),
        )?;
        if matches!(got, Recovery::V1Trial | Recovery::V2Trial) {
            line(&mut vm, &lines::trial_succeeded(), TRIAL)?;
        }
        app_running(&mut vm)?;
        let kept = vm.run(&format!("cat {USER_FILE}"))?;
        check(&vm, kept.lines().any(|l| l.trim() == USER_TEXT), format!("{USER_FILE} holds '{kept}' after the power cut"))?;
        power_off(&mut vm)?;

        // The image known to work is intact, byte for byte; a trial that succeeded left no marker.
        let (name_v1, want_image) = match got {
            Recovery::V1 | Recovery::V1Trial => ("system.img", None),
            Recovery::V1Old => ("system.img.old", None),
            Recovery::V2Trial => ("system.img.old", Some(&v2)),
        };
        check(&vm, file_bytes(t, &img, name_v1)?.as_ref() == Some(&v1), format!("autosvr/{name_v1} on the disk is not v1's image after the power cut"))?;
        if let Some(v2) = want_image {
            check(&vm, file_bytes(t, &img, "system.img")?.as_ref() == Some(v2), "autosvr/system.img on the disk is not v2's image after the power cut")?;
        }
        let names = listing(t, &img)?;
        if matches!(got, Recovery::V1Trial | Recovery::V2Trial) {
            check(&vm, !names.iter().any(|n| n == "system.img.try"), format!("the trial succeeded but its marker is left: {names:?}"))?;
        }
        seen.push(format!("{cut}: after '{}' -> {got:?}", PERSIST_STEPS[last].trim()));
    }
    eprintln!("persist/power_cut: {}", seen.join("; "));
    Ok(())
}

const X86: &[Arch] = &[Arch::X86_64];

pub const TESTS: &[Test] = &[
    Test { name: "persist/leftover_new", arches: X86, disks: &[], run: leftover_new },
    Test { name: "persist/corrupt_image", arches: X86, disks: &[], run: corrupt_image },
    Test { name: "persist/trial_fails", arches: X86, disks: &[], run: trial_fails },
    Test { name: "persist/trial_succeeds", arches: X86, disks: &[], run: trial_succeeds },
    Test { name: "persist/trial_uncountable", arches: X86, disks: &[], run: trial_uncountable },
    Test { name: "persist/corrupt_marker", arches: X86, disks: &[], run: corrupt_marker },
    Test { name: "persist/upgrade_then_reboot", arches: X86, disks: &[], run: upgrade_then_reboot },
    Test { name: "persist/power_cut", arches: X86, disks: &[], run: power_cut },
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
        for d in [LeftoverNew, CorruptImage, TrialBad, TrialGood, Upgrade, EmptyMarker] {
            assert!(d.files().iter().any(|(p, _)| *p == "autosvr/system.img"), "{d:?}");
        }
    }
}
