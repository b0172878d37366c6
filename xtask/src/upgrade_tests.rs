//! On-the-fly upgrade tests (issue 5, docs/upgrade.md). Each boots the product flow with the
//! upgrade-test images (upgrade_images.rs: v1 as `autosvr/system.img`, the others under
//! `/boot_disk/upgrade/`) and drives `/__autoinit__/autoinit upgrade` from the console shell,
//! which is itself a unit (`console.service`).
//!
//! An upgrade restarts every unit, the console's shell too, and a unit's stop signals its whole
//! cgroup: a client typed into that shell would be killed with it. So the tests start the
//! client detached, in the root cgroup (`echo $$ > /sys/fs/cgroup/cgroup.procs`), with its
//! output and exit status in `/run/up-N.{out,rc}`, and read them once the shell is back.
//!
//! - `upgrade/live` (x86_64, aarch64): v1 -> v2 live: `/rofs_root` is v2, every service runs
//!   from v2 (`/proc/PID/exe` on v2's filesystem; notify-daemon's SHA-256 is v2's; httpd serves
//!   v2's page), `/opt2` and `/etc/app-v2.conf` appear, the old image is detached (no mount at
//!   `/rofs_root/_upgrade`, one loop device), PID 1 is the same process (`/proc/1/stat` start
//!   time) and the kernel's uptime carried on; `status` names v2.
//! - `upgrade/cycle` (x86_64): v2, v1, v2, v1, v2, v1: each commits, and afterwards there are
//!   as many mounts as after boot and exactly one loop device, backing the image in use.
//! - `upgrade/rollback` (x86_64): v2-bad's web service fails: automatic rollback to v1, the
//!   client's exit status 1 and reason, services back up on v1; then a v2 upgrade with a long
//!   settle time: a second request is refused, `status` shows the phase, `autoinit rollback`
//!   rolls it back; a file the user wrote in `/etc` and one in `/run` survive both rollbacks.
//! - `upgrade/refused` (x86_64): not a squashfs, truncated, no `/_upgrade`, checksum mismatch,
//!   no such file: each fails with its reason and leaves mounts, loop devices and service pids
//!   exactly as they were.

use crate::arch::Arch;
use crate::boot_tests::{check, Target, Test, BOOT, START};
use crate::qemu::Vm;
use crate::upgrade_images::{self as ui, Set, Variant};
use anyhow::{Context, Result};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const CLIENT: &str = "/__autoinit__/autoinit";
/// The boot disk, by the label `cargo xtask image` gives the QEMU boards' boot partition.
pub const CMDLINE: &str = "autoinit.boot=LABEL=AUTOSVR";
/// From the start line to the services (boot stage, modules, stage 2, READY=1).
const TO_SERVICES: Duration = Duration::from_secs(120);
/// A whole upgrade: check, swap, four restarts with their settle times, commit (TCG, loaded
/// machine).
const UPGRADE: Duration = Duration::from_secs(300);
/// For a console line that follows soon after the previous one.
const STEP: Duration = Duration::from_secs(30);

/// The images, built once per architecture even when tests run in parallel.
static SETS: Mutex<Vec<(Arch, Arc<Set>)>> = Mutex::new(Vec::new());

pub fn image_set(t: &Target) -> Result<Arc<Set>> {
    let mut sets = SETS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, s)) = sets.iter().find(|(a, _)| *a == t.arch) {
        return Ok(s.clone());
    }
    let q = t.board.qemu.as_ref().context("board without [qemu]")?;
    let busybox = crate::debian::busybox(&q.debian_arch)?;
    let s = Arc::new(ui::prepare(t.arch, &busybox)?);
    sets.push((t.arch, s.clone()));
    Ok(s)
}

/// Boots v1 with the upgrade disk and waits until every unit is up and the console's shell
/// answers.
pub fn boot(t: &Target, name: &str) -> Result<(Vm, Arc<Set>)> {
    let set = image_set(t)?;
    let mut vm = t.boot_with(name, CMDLINE, std::slice::from_ref(&set.disk))?;
    vm.expect(START, BOOT)?;
    vm.expect(&format!("autoinit: services: {} units loaded", ui::UNITS.len()), TO_SERVICES)?;
    services_up(&mut vm)?;
    Ok((vm, set))
}

/// Waits for the notifier's READY=1 and the worker after it, then for the shell. (Kernel lines
/// that reach the console in the middle of a command's output markers can still make a wait
/// for a marker fail; the last one of the boot is waited for here.)
fn services_up(vm: &mut Vm) -> Result<()> {
    vm.expect("autoinit: notifier: ready", TO_SERVICES)?;
    vm.expect("autoinit: worker: started (pid ", STEP)?;
    // Its one line of output, the last line of the boot: typed commands' output is not cut by it.
    vm.expect("]: worker on ", STEP)?;
    vm.wait_shell(Duration::from_secs(60))
}

/// A row of `autoinit status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub name: String,
    pub state: String,
    pub pid: Option<u32>,
}

/// `autoinit status`: the unit rows and the other lines (image, upgrade phase).
pub fn status(vm: &mut Vm) -> Result<(Vec<Row>, Vec<String>)> {
    let out = vm.run(&format!("{CLIENT} status"))?;
    let mut rows = Vec::new();
    let mut other = Vec::new();
    for l in own_lines(&out).iter().skip_while(|l| !l.trim_start().starts_with("NAME")).skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() >= 6 && ui::UNITS.contains(&f[0]) {
            rows.push(Row { name: f[0].to_string(), state: f[1].to_string(), pid: f[2].parse().ok() });
        } else if !l.trim().is_empty() {
            other.push(l.trim().to_string());
        }
    }
    if rows.len() != ui::UNITS.len() {
        return Err(vm.fail(format!("`autoinit status` lists {} of the {} units:\n{out}", rows.len(), ui::UNITS.len())));
    }
    Ok((rows, other))
}

/// Waits until every unit is running (after a rollback the old image's units come back
/// asynchronously); returns the rows.
fn all_running(vm: &mut Vm, timeout: Duration) -> Result<Vec<Row>> {
    let deadline = Instant::now() + timeout;
    loop {
        let (rows, _) = status(vm)?;
        if rows.iter().all(|r| r.state == "running" && r.pid.is_some()) {
            return Ok(rows);
        }
        if Instant::now() >= deadline {
            return Err(vm.fail(format!("not every unit is running after {:.0} s: {rows:?}", timeout.as_secs_f64())));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// What must not change when an image is refused, and what must come back after a commit.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub mounts: Vec<String>,
    /// Backing files of the attached loop devices.
    pub loops: Vec<String>,
}

/// A command's output lines without the kernel's: kmsg records (service output, autoinit's
/// lines) reach the console between the command's own lines.
pub fn own_lines(out: &str) -> Vec<String> {
    out.lines().filter(|l| !is_kernel_line(l)).map(str::to_string).collect()
}

/// `vm.run(cmd)` without the kernel's lines.
pub fn run(vm: &mut Vm, cmd: &str) -> Result<String> {
    Ok(own_lines(&vm.run(cmd)?).join("\n"))
}

/// `vm.run_status(cmd)` without the kernel's lines.
pub fn run_status(vm: &mut Vm, cmd: &str) -> Result<(String, i32)> {
    let (out, code) = vm.run_status(cmd, STEP)?;
    Ok((own_lines(&out).join("\n"), code))
}

/// `[   12.345678] ...`: a line the kernel printed.
fn is_kernel_line(l: &str) -> bool {
    let Some(rest) = l.strip_prefix('[') else { return false };
    let Some((stamp, _)) = rest.split_once(']') else { return false };
    let stamp = stamp.trim();
    !stamp.is_empty() && stamp.chars().all(|c| c.is_ascii_digit() || c == '.')
}

pub fn snapshot(vm: &mut Vm) -> Result<Snapshot> {
    let mounts = own_lines(&vm.run("cat /proc/mounts")?);
    let mut loops = own_lines(&vm.run("for f in /sys/block/loop*/loop/backing_file; do [ -e $f ] && cat $f; done; true")?);
    loops.sort();
    Ok(Snapshot { mounts, loops })
}

/// Waits until exactly one loop device is attached, backing `image` (the old one goes once its
/// last user has gone), and nothing is mounted at /rofs_root/_upgrade.
fn detached(vm: &mut Vm, image: &str, boot_mounts: usize) -> Result<Snapshot> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = snapshot(vm)?;
        let upgrade_mounted = s.mounts.iter().any(|m| m.split_whitespace().nth(1) == Some("/rofs_root/_upgrade"));
        if s.loops == [image] && !upgrade_mounted && s.mounts.len() == boot_mounts {
            return Ok(s);
        }
        if Instant::now() >= deadline {
            return Err(vm.fail(format!(
                "30 s after the upgrade ended, expected one loop device backing {image}, nothing at /rofs_root/_upgrade and {boot_mounts} mounts; loop devices: {:?}, mounts:\n{}",
                s.loops,
                s.mounts.join("\n")
            )));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Runs `autoinit ARGS` detached from the console's unit (root cgroup, own session); its output
/// goes to /run/up-ID.out and its exit status to /run/up-ID.rc.
pub fn client_bg(vm: &mut Vm, id: &str, args: &str) -> Result<()> {
    vm.run(&format!(
        "rm -f /run/up-{id}.rc; (setsid sh -c 'echo $$ > /sys/fs/cgroup/cgroup.procs; {CLIENT} {args} > /run/up-{id}.out 2>&1; echo $? > /run/up-{id}.rc' < /dev/null > /dev/null 2>&1 &)"
    ))?;
    Ok(())
}

/// The exit status and output of a client started with [`client_bg`], once it has ended.
pub fn client_result(vm: &mut Vm, id: &str) -> Result<(i32, String)> {
    let deadline = Instant::now() + STEP;
    loop {
        let (rc, code) = run_status(vm, &format!("cat /run/up-{id}.rc"))?;
        if code == 0 {
            let out = run(vm, &format!("cat /run/up-{id}.out"))?;
            let rc = rc.trim().parse().map_err(|_| vm.fail(format!("/run/up-{id}.rc holds '{rc}'")))?;
            return Ok((rc, out));
        }
        if Instant::now() >= deadline {
            return Err(vm.fail(format!("the client `autoinit` of /run/up-{id} did not end")));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Waits for the end of an upgrade on the console: the commit or the rollback line. Returns it.
pub fn upgrade_end(vm: &mut Vm) -> Result<String> {
    vm.expect_line_where(
        "the end of the upgrade (committed or rolled back)",
        |l| l.contains("autoinit: upgrade: committed: ") || l.contains("autoinit: upgrade: rolled back") || l.contains("autoinit: upgrade: rollback: "),
        &[],
        UPGRADE,
    )
}

/// Waits until the console's shell answers after the end of an upgrade. A rollback restarts
/// the units it had restarted (the console first) only after its end line: the shell must be
/// the new one, or a command typed into the old one is lost when it is stopped.
pub fn console_back(vm: &mut Vm, end: &str) -> Result<()> {
    if end.contains("rolled back to the previous image") {
        vm.expect("autoinit: console: started", UPGRADE)?;
    }
    vm.wait_shell(Duration::from_secs(90))
}

/// An upgrade started detached and waited for; the console's shell answers again afterwards.
/// Returns (the end line, the client's exit status, its output).
pub fn upgrade(vm: &mut Vm, id: &str, args: &str) -> Result<(String, i32, String)> {
    client_bg(vm, id, &format!("upgrade {args}"))?;
    let end = upgrade_end(vm)?;
    console_back(vm, &end)?;
    let (rc, out) = client_result(vm, id)?;
    Ok((end, rc, out))
}

/// (PID 1's start time in clock ticks since boot, the uptime in seconds).
fn pid1_and_uptime(vm: &mut Vm) -> Result<(u64, f64)> {
    let out = run(vm, "cut -d' ' -f22 /proc/1/stat; cut -d' ' -f1 /proc/uptime")?;
    let v: Vec<&str> = out.lines().map(str::trim).collect();
    let start = v.first().and_then(|s| s.parse().ok());
    let up = v.get(1).and_then(|s| s.parse().ok());
    match (start, up) {
        (Some(s), Some(u)) => Ok((s, u)),
        _ => Err(vm.fail(format!("cannot read PID 1's start time and the uptime from:\n{out}"))),
    }
}

/// Checks that every unit's main process runs a program of the image now at /rofs_root, and
/// that the notifier's binary is the expected one; returns the rows.
fn services_on_image(vm: &mut Vm, rows: &[Row], notify_sha: &str, version: &str) -> Result<()> {
    let dev = run(vm, "stat -c %d /rofs_root/usr/bin/busybox")?.trim().to_string();
    for r in rows {
        let Some(pid) = r.pid else { return Err(vm.fail(format!("{} has no pid: {r:?}", r.name))) };
        let (exe_dev, code) = run_status(vm, &format!("stat -L -c %d /proc/{pid}/exe"))?;
        check(vm, code == 0 && exe_dev.trim() == dev, format!("{} (pid {pid}) runs a program from device {} but /rofs_root is device {dev}", r.name, exe_dev.trim()))?;
        if r.name == "notifier" {
            let sum = run(vm, &format!("sha256sum /proc/{pid}/exe"))?;
            check(vm, sum.split_whitespace().next() == Some(notify_sha), format!("notify-daemon (pid {pid}) is not the expected binary {notify_sha}: {sum}"))?;
        }
    }
    let page = run(vm, &format!("wget -qO- http://127.0.0.1:{}/", ui::WEB_PORT))?;
    check(vm, page.trim() == version, format!("httpd serves '{}', expected '{version}'", page.trim()))?;
    let v = run(vm, "cat /opt/app/VERSION")?;
    check(vm, v.trim() == version, format!("/opt/app/VERSION is '{}', expected '{version}'", v.trim()))
}

/// Checks that v2's new entries `/opt2` and `/etc/app-v2.conf` are there (readable through
/// their links), or that not even a dangling link is left of them.
fn new_in_v2(vm: &mut Vm, present: bool, when: &str) -> Result<()> {
    for p in ["/opt2/NEW", "/etc/app-v2.conf"] {
        let link = p.trim_end_matches("/NEW");
        let (_, code) = vm.run_status(&format!("[ -r {p} ] || [ -L {link} ]"), STEP)?;
        check(vm, (code == 0) == present, format!("{when}, {link} is {}", if present { "missing" } else { "still there" }))?;
    }
    Ok(())
}

/// The number in `... NUMBER ms ...` right after `after`.
pub fn ms_after(line: &str, after: &str) -> Option<u64> {
    let rest = &line[line.find(after)? + after.len()..];
    rest.trim_start().split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// The tests

fn live(t: &Target) -> Result<()> {
    let (mut vm, set) = boot(t, "upgrade-live")?;
    let boot_snap = snapshot(&mut vm)?;
    check(&vm, boot_snap.loops == ["/boot_disk/autosvr/system.img"], format!("after boot, loop devices back {:?}", boot_snap.loops))?;
    let (rows_v1, other) = status(&mut vm)?;
    let want_image = format!("image /boot_disk/autosvr/system.img ({} bytes, squashfs of {})", set.v1_bytes, Variant::V1.mkfs_date());
    check(&vm, other.iter().any(|l| *l == want_image), format!("status does not say '{want_image}': {other:?}"))?;
    services_on_image(&mut vm, &rows_v1, &set.notify_v1_sha, Variant::V1.version())?;
    let (pid1_start, uptime_before) = pid1_and_uptime(&mut vm)?;
    new_in_v2(&mut vm, false, "on v1")?;

    let v2 = ui::guest_path(Variant::V2.file());
    let from = vm.text().len();
    let (end, rc, out) = upgrade(&mut vm, "live", &format!("{v2} --settle 2"))?;
    check(&vm, end.contains(&format!("committed: running {v2}, 4 services restarted")), format!("the upgrade did not commit: {end}"))?;
    check(&vm, rc == 0 && out.contains(&format!("committed: running {v2}, 4 services restarted, ")), format!("the client exited {rc}: {out}"))?;
    // The console lines, in order.
    let console = vm.text()[from..].to_string();
    let mut at = 0;
    let mut want = vec![
        format!("autoinit: upgrade: checking {v2}"),
        format!("autoinit: upgrade: {v2}: SHA-256 matches {v2}.sha256"),
        format!("autoinit: upgrade: {v2} on /dev/loop"),
        format!("autoinit: upgrade: swapped to {v2} "),
        // v2's worker.service differs (KillSignal=SIGINT).
        "autoinit: upgrade: unit files: 0 added, 1 changed, 0 removed".to_string(),
    ];
    for (k, u) in ui::UNITS.iter().enumerate() {
        want.push(format!("autoinit: upgrade: restarting {u} ({}/4)", k + 1));
        want.push(format!("autoinit: upgrade: {u} is back after "));
    }
    for w in &want {
        match console[at..].find(w.as_str()) {
            Some(i) => at += i + w.len(),
            None => return Err(vm.fail(format!("after the upgrade request the console lacks (in order) '{w}'"))),
        }
    }
    let swapped = console.lines().find(|l| l.contains("autoinit: upgrade: swapped to ")).unwrap_or("");
    check(&vm, swapped.contains("(root: +1 -0 links, /etc: +1 -0)"), format!("the resync did not add exactly /opt2 and /etc/app-v2.conf: {swapped}"))?;
    check(&vm, console.contains(&format!("worker on {}", Variant::V2.version())), "the worker did not print that it runs on app v2")?;

    // Content and links of v2.
    new_in_v2(&mut vm, true, "after the upgrade to v2")?;
    let v = run(&mut vm, "cat /rofs_root/opt/app/VERSION /opt2/NEW /etc/app-v2.conf; readlink /opt2")?;
    for w in [Variant::V2.version(), "a top-level directory new in v2", "an /etc file new in v2", "rofs_root/opt2"] {
        check(&vm, v.contains(w), format!("after the upgrade, lacks '{w}':\n{v}"))?;
    }
    let rows_v2 = all_running(&mut vm, STEP)?;
    for (a, b) in rows_v1.iter().zip(&rows_v2) {
        check(&vm, a.pid != b.pid, format!("{} kept its pid {:?}: it was not restarted", a.name, a.pid))?;
    }
    services_on_image(&mut vm, &rows_v2, &set.notify_v2_sha, Variant::V2.version())?;
    detached(&mut vm, &v2, boot_snap.mounts.len())?;
    let (_, other) = status(&mut vm)?;
    let want_image = format!("image {v2} ({} bytes, squashfs of {})", set.v2_bytes, Variant::V2.mkfs_date());
    check(&vm, other.iter().any(|l| *l == want_image), format!("status does not say '{want_image}': {other:?}"))?;
    check(&vm, !other.iter().any(|l| l.starts_with("upgrade to ")), format!("status still shows an upgrade: {other:?}"))?;

    // The same PID 1, no reboot.
    let (pid1_after, uptime_after) = pid1_and_uptime(&mut vm)?;
    check(&vm, pid1_after == pid1_start, format!("PID 1's start time changed from {pid1_start} to {pid1_after} ticks"))?;
    check(&vm, uptime_after > uptime_before, format!("the uptime went from {uptime_before} s to {uptime_after} s"))?;
    check(&vm, vm.text().matches(START).count() == 1, "autoinit started more than once")?;

    // PID 1 took v2's definition of the worker: it stops it with v2's KillSignal=SIGINT.
    let worker = rows_v2.iter().find(|r| r.name == "worker").and_then(|r| r.pid).context("no worker pid on v2")?;
    let out = run(&mut vm, &format!("{CLIENT} restart worker"))?;
    let killed = format!("autoinit: worker: main process (pid {worker}) was killed by SIGINT");
    // The line may come before the command's own output: look in the whole console text.
    crate::supervise_tests::await_text(&vm, &killed, STEP).map_err(|e| vm.fail(format!("after `restart worker` on v2 ({out}): {e}")))?;
    poweroff(&mut vm)
}

fn cycle(t: &Target) -> Result<()> {
    let (mut vm, _set) = boot(t, "upgrade-cycle")?;
    let boot_snap = snapshot(&mut vm)?;
    for (k, v) in [Variant::V2, Variant::V1, Variant::V2, Variant::V1, Variant::V2, Variant::V1].into_iter().enumerate() {
        let img = ui::guest_path(v.file());
        let (end, rc, out) = upgrade(&mut vm, &format!("cycle{k}"), &format!("{img} --settle 1"))?;
        check(&vm, end.contains(&format!("committed: running {img}")) && rc == 0, format!("upgrade {} to {img} did not commit (exit {rc}): {end}\n{out}", k + 1))?;
        all_running(&mut vm, STEP)?;
        let version = run(&mut vm, "cat /opt/app/VERSION")?;
        check(&vm, version.trim() == v.version(), format!("after upgrade {} to {img}, /opt/app/VERSION is '{}'", k + 1, version.trim()))?;
        detached(&mut vm, &img, boot_snap.mounts.len())?;
        new_in_v2(&mut vm, v == Variant::V2, &format!("after upgrade {} to {img}", k + 1))?;
    }
    poweroff(&mut vm)
}

/// Files a user writes at run time: in `/etc` (the root's writable copy, which a resync must
/// leave alone) and in `/run`.
const USER_FILES: [(&str, &str); 2] = [("/etc/user-notes.conf", "written in /etc by the user"), ("/run/user-notes", "written in /run by the user")];

fn write_user_files(vm: &mut Vm) -> Result<()> {
    for (path, text) in USER_FILES {
        vm.run(&format!("echo '{text}' > {path}"))?;
    }
    Ok(())
}

fn user_files_intact(vm: &mut Vm, when: &str) -> Result<()> {
    for (path, text) in USER_FILES {
        let (got, code) = run_status(vm, &format!("cat {path}"))?;
        check(vm, code == 0 && got.trim() == text, format!("{when}, {path} holds '{}' (cat: {code}), expected '{text}'", got.trim()))?;
    }
    Ok(())
}

fn rollback(t: &Target) -> Result<()> {
    let (mut vm, set) = boot(t, "upgrade-rollback")?;
    let boot_snap = snapshot(&mut vm)?;
    write_user_files(&mut vm)?;
    let bad = ui::guest_path(Variant::V2Bad.file());
    let (end, rc, out) = upgrade(&mut vm, "bad", &format!("{bad} --settle 1"))?;
    // A simple unit is running as soon as it is started: v2-bad's web exits during its settle
    // time (were it slower to fail than to be seen, the reason would be "did not come back").
    let why = |l: &str| {
        (l.contains("web failed within its settle time on the new image") || l.contains("web did not come back on the new image"))
            && l.contains("exited with status 1")
    };
    check(&vm, end.contains("rolled back to the previous image: ") && why(&end), format!("v2-bad was not rolled back because of web: {end}"))?;
    check(&vm, rc == 1 && out.contains("rolled back to the previous image: ") && why(&out), format!("the client exited {rc}, expected 1 and the reason: {out}"))?;
    let text = vm.text();
    let failed_line = text.lines().find(|l| l.contains("autoinit: upgrade: ") && why(l) && l.ends_with("; rolling back"));
    check(&vm, failed_line.is_some(), "the console lacks the line 'autoinit: upgrade: web ...; rolling back'")?;
    for w in ["autoinit: upgrade: swapped back to the previous image".to_string()] {
        check(&vm, text.contains(&w), format!("the console lacks '{w}'"))?;
    }
    let rows = all_running(&mut vm, Duration::from_secs(90))?;
    services_on_image(&mut vm, &rows, &set.notify_v1_sha, Variant::V1.version())?;
    detached(&mut vm, "/boot_disk/autosvr/system.img", boot_snap.mounts.len())?;
    new_in_v2(&mut vm, false, "after the rollback from v2-bad")?;
    user_files_intact(&mut vm, "after the rollback from v2-bad")?;

    // Rollback on request, during the settle time of the first unit.
    let v2 = ui::guest_path(Variant::V2.file());
    client_bg(&mut vm, "req", &format!("upgrade {v2} --settle 120"))?;
    vm.expect("autoinit: upgrade: console is back after ", UPGRADE)?;
    vm.wait_shell(Duration::from_secs(90))?;
    let (second, code) = run_status(&mut vm, &format!("{CLIENT} upgrade {v2} 2>&1"))?;
    check(&vm, code == 1 && second.contains("an upgrade is already in progress"), format!("a second upgrade request was not refused (exit {code}): {second}"))?;
    let (_, other) = status(&mut vm)?;
    let phase = format!("upgrade to {v2}: settling console (0/4)");
    check(&vm, other.iter().any(|l| *l == phase), format!("status does not show '{phase}': {other:?}"))?;
    client_bg(&mut vm, "rb", "rollback")?;
    let end = upgrade_end(&mut vm)?;
    check(&vm, end.contains("rolled back to the previous image: rollback requested"), format!("`autoinit rollback` did not roll back: {end}"))?;
    console_back(&mut vm, &end)?;
    let (rc, out) = client_result(&mut vm, "rb")?;
    check(&vm, rc == 0 && out.contains("rolling back"), format!("`autoinit rollback` exited {rc}: {out}"))?;
    let (rc, out) = client_result(&mut vm, "req")?;
    check(&vm, rc == 1 && out.contains("rollback requested"), format!("the upgrade client exited {rc}: {out}"))?;
    let rows = all_running(&mut vm, Duration::from_secs(90))?;
    services_on_image(&mut vm, &rows, &set.notify_v1_sha, Variant::V1.version())?;
    detached(&mut vm, "/boot_disk/autosvr/system.img", boot_snap.mounts.len())?;
    user_files_intact(&mut vm, "after the requested rollback")?;
    let (_, code) = vm.run_status(&format!("{CLIENT} rollback"), STEP)?;
    check(&vm, code == 1, "`autoinit rollback` without an upgrade did not fail")?;
    poweroff(&mut vm)
}

fn refused(t: &Target) -> Result<()> {
    let (mut vm, _set) = boot(t, "upgrade-refused")?;
    let before = snapshot(&mut vm)?;
    let (rows, _) = status(&mut vm)?;
    let cases = [
        (ui::guest_path(ui::NOT_SQUASHFS), "not a usable squashfs image: not a squashfs image (no hsqs magic)"),
        (ui::guest_path(ui::TRUNCATED), "not a usable squashfs image: filesystem is longer than the file (truncated image?)"),
        (ui::guest_path(Variant::NoUpgradeDir.file()), "no /_upgrade directory"),
        (ui::guest_path(ui::BAD_SUM), "SHA-256 does not match"),
        (ui::guest_path("no-such.img"), "ENOENT"),
    ];
    for (path, why) in cases {
        let from = vm.text().len();
        let (out, code) = vm.run_status(&format!("{CLIENT} upgrade {path} 2>&1"), UPGRADE)?;
        check(&vm, code == 1, format!("upgrade {path} exited {code}, expected 1: {out}"))?;
        // The reason, on the console and in the client's answer.
        let console = vm.text()[from..].to_string();
        check(&vm, console.contains(&format!("autoinit: upgrade: image refused: {path}")) || console.contains(&format!("autoinit: upgrade: image refused: open {path}")), format!("upgrade {path}: no 'image refused' line on the console"))?;
        check(&vm, out.contains("image refused: ") && out.contains(why) && out.contains("nothing changed"), format!("upgrade {path}: the client's answer does not say 'image refused: ...{why}...; nothing changed':\n{out}"))?;
        let after = snapshot(&mut vm)?;
        check(&vm, after == before, format!("upgrade {path} changed the system:\nbefore {before:?}\nafter {after:?}"))?;
        let (now, other) = status(&mut vm)?;
        check(&vm, now == rows, format!("upgrade {path} touched the services: before {rows:?}, after {now:?}"))?;
        check(&vm, !other.iter().any(|l| l.starts_with("upgrade to ")), format!("status still shows an upgrade: {other:?}"))?;
    }
    let (out, code) = vm.run_status(&format!("{CLIENT} upgrade relative.img 2>&1"), STEP)?;
    check(&vm, code == 2, format!("a relative path was not a usage error (exit {code}): {out}"))?;
    poweroff(&mut vm)
}

/// `autoinit poweroff` from the console: the machine stops and QEMU exits.
pub fn poweroff(vm: &mut Vm) -> Result<()> {
    vm.send_line(&format!("{CLIENT} poweroff"))?;
    vm.expect("reboot: Power down", Duration::from_secs(180))?;
    vm.wait_exit(Duration::from_secs(30))?;
    vm.check_no_kernel_panic()
}

pub const TESTS: &[Test] = &[
    Test { name: "upgrade/live", arches: &[Arch::X86_64, Arch::Aarch64], disks: &[], run: live },
    Test { name: "upgrade/cycle", arches: &[Arch::X86_64], disks: &[], run: cycle },
    Test { name: "upgrade/rollback", arches: &[Arch::X86_64], disks: &[], run: rollback },
    Test { name: "upgrade/refused", arches: &[Arch::X86_64], disks: &[], run: refused },
];

#[cfg(test)]
mod tests {
    #[test]
    fn kernel_lines_are_told_apart() {
        let out = "tmpfs /run tmpfs rw 0 0\n[   14.207074] worker[84]: worker on app v1\n[x] not the kernel\n";
        assert_eq!(super::own_lines(out), ["tmpfs /run tmpfs rw 0 0", "[x] not the kernel"]);
    }

    #[test]
    fn numbers_are_read_after_their_words() {
        let l = "[ 9.1] autoinit: upgrade: swapped to /x 37 ms after the request (root: +1 -0 links)";
        assert_eq!(super::ms_after(l, "swapped to /x"), Some(37));
        assert_eq!(super::ms_after("web is back after 412 ms (pid 3)", "is back after"), Some(412));
        assert_eq!(super::ms_after("nothing", "after"), None);
    }
}
