//! Container tests (issue 6), x86_64 under QEMU. The guest boots a system image whose
//! `/etc/autoinit/services` holds container units and a console shell on ttyS0; the tests drive
//! that shell and `autoinit exec`, and read the host's side (/proc, cgroups, loop devices).
//!
//! - `containers/busybox`: a container from a small busybox squashfs (`/opt/containers/box.img`
//!   in the system image): own root, autoinit's init as PID 1, only its processes, only `lo`,
//!   no way to the host's files, its hostname, its cgroup limits, binds and tmpfs, orphans
//!   reaped, `autoinit exec` exit statuses, and nothing left after `stop`; plus a user-
//!   namespaced container whose root is uid 100000 outside.
//! - `containers/systemd`: a Debian bookworm root with systemd (debootstrap --variant=minbase
//!   --include=systemd, packed as squashfs and cached in `~/.cache/autoinit/containers/`),
//!   attached as /dev/vdb, booted as a `PrivatePIDs=init` container until it reaches its default
//!   target on the console.
//! - `containers/faults`: RootImage= missing or not a squashfs, a BindPaths= source missing
//!   (each: the reason, the unit failed with status 226, `exec` into it refused), a container
//!   whose service keeps exiting 3 (restarted with backoff until the burst limit), 50 orphans
//!   in a container (reaped by its init), exec into unknown and stopped units; a bystander
//!   container keeps its pid, and no loop device or mount of the failed ones is left.

use crate::arch::Arch;
use crate::boot_tests::{check, Target, Test, BOOT, START};
use crate::images::{self, cached, run, Image};
use crate::qemu::Vm;
use anyhow::{bail, Context, Result};
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Part of every artefact key: change it when a recipe below changes.
const RECIPE: &str = "autoinit-containers-2";
/// The Debian root's cache name: change the version when its recipe changes.
pub const DEBIAN_IMAGE: &str = "bookworm-systemd-v1";
/// `/etc/container-marker` of the busybox container image.
pub const BOX_MARKER: &str = "inside the box image";
/// Where the autoinit client is on the guest.
const CLIENT: &str = "/__autoinit__/autoinit";
/// Long enough for a command that starts a container under TCG on a loaded machine.
const CMD: Duration = Duration::from_secs(90);

/// The units of the busybox test.
const BOX_UNITS: &[(&str, &str)] = &[
    (
        "console",
        "[Service]\nExecStart=/bin/sh\nStandardInput=tty\nStandardOutput=tty\nTTYPath=/dev/ttyS0\nRestart=always\nKillSignal=1\n",
    ),
    (
        "box",
        "[Unit]\nDescription=a busybox container\n[Service]\nExecStartPre=/bin/mkdir -p /run/shared\n\
         ExecStart=/bin/sleep 100000\nRootImage=/opt/containers/box.img\nPrivatePIDs=yes\nPrivateNetwork=yes\n\
         Hostname=box\nMemoryMax=64M\nTasksMax=24\nBindPaths=/run/shared:/shared\n\
         BindReadOnlyPaths=/opt/autosvr:/host-ro\nTemporaryFileSystem=/scratch:size=1M\nStandardOutput=null\n",
    ),
    (
        // Type=notify in its own root: READY=1 must reach PID 1's socket, bound in by autoinit.
        "boxnotify",
        "[Service]\nType=notify\nExecStart=/usr/bin/notify-daemon --delay-ms 100\nRootImage=/opt/containers/box.img\n\
         PrivatePIDs=yes\nTimeoutStartSec=60\nStandardOutput=null\n",
    ),
    (
        "users",
        "[Service]\nExecStart=/bin/sleep 100000\nRootImage=/opt/containers/box.img\nPrivatePIDs=yes\nPrivateUsers=yes\n\
         StandardOutput=null\n",
    ),
];

/// The unit of the systemd test: systemd must be PID 1 (`init`), stops on SIGRTMIN+3 (its
/// "halt"), and writes its status lines to the console.
const DEBIAN_UNIT: &str = "[Service]\nExecStart=/lib/systemd/systemd\nRootImage=/dev/vdb\nPrivatePIDs=init\n\
    Hostname=debian\nEnvironment=container=autoinit\nKillSignal=37\nTimeoutStopSec=60\nStandardOutput=console\n";

/// Serialises the artefact builds of tests running in parallel.
static BUILD: Mutex<()> = Mutex::new(());

fn dir() -> PathBuf {
    crate::root().join("target/images/x86_64/containers")
}

/// `cmd` output, failing on a non-zero exit.
fn sh(vm: &mut Vm, cmd: &str) -> Result<String> {
    let (out, code) = vm.run_status(cmd, CMD)?;
    if code != 0 {
        return Err(vm.fail(format!("`{cmd}` exited with {code}:\n{out}")));
    }
    Ok(out.trim().to_string())
}

/// `cmd` output and status.
fn sh_status(vm: &mut Vm, cmd: &str) -> Result<(String, i32)> {
    let (out, code) = vm.run_status(cmd, CMD)?;
    Ok((out.trim().to_string(), code))
}

/// `autoinit exec NAME -- CMD`, output and status.
fn exec_in(vm: &mut Vm, name: &str, cmd: &str) -> Result<(String, i32)> {
    sh_status(vm, &format!("{CLIENT} exec {name} -- {cmd}"))
}

fn exec_ok(vm: &mut Vm, name: &str, cmd: &str) -> Result<String> {
    let (out, code) = exec_in(vm, name, cmd)?;
    if code != 0 {
        return Err(vm.fail(format!("exec {name} -- {cmd}: status {code}:\n{out}")));
    }
    Ok(out)
}

/// Polls `cmd` until its output satisfies `ok`, up to `timeout`; returns the last output.
fn poll(vm: &mut Vm, cmd: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let (out, _) = sh_status(vm, cmd)?;
        if ok(&out) || Instant::now() >= deadline {
            return Ok(out);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The tree of a busybox root: `usr/bin/busybox` and its applets, merged-/usr links, users.
fn busybox_tree(arch: Arch, busybox: &Path, tree: &Path) -> Result<()> {
    let bin = tree.join("usr/bin");
    std::fs::create_dir_all(&bin)?;
    std::fs::copy(busybox, bin.join("busybox")).with_context(|| format!("copying {}", busybox.display()))?;
    std::fs::set_permissions(bin.join("busybox"), std::fs::Permissions::from_mode(0o755))?;
    let mut names: Vec<String> =
        crate::initramfs::applets(arch, busybox).iter().filter_map(|a| a.rsplit('/').next().map(str::to_string)).collect();
    names.retain(|n| !n.is_empty() && n != "busybox");
    names.sort();
    names.dedup();
    for n in &names {
        symlink("busybox", bin.join(n))?;
    }
    symlink("usr/bin", tree.join("bin"))?;
    symlink("usr/bin", tree.join("sbin"))?;
    let etc = tree.join("etc");
    std::fs::create_dir_all(&etc)?;
    std::fs::write(etc.join("passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")?;
    std::fs::write(etc.join("group"), "root:x:0:\nnogroup:x:65534:\n")?;
    std::fs::write(etc.join("container-marker"), format!("{BOX_MARKER}\n"))?;
    std::fs::create_dir_all(tree.join("root"))?;
    Ok(())
}

fn squash(tree: &Path, out: &Path) -> Result<()> {
    run(Command::new("mksquashfs").arg(tree).arg(out).args([
        "-comp", "gzip", "-all-root", "-noappend", "-mkfs-time", "0", "-all-time", "0", "-quiet", "-no-progress",
    ]))?;
    Ok(())
}

/// A boot disk (the QEMU board's layout) with `system_img` as `autosvr/system.img`.
pub(crate) fn boot_disk(t: &Target, units: &[(&str, &str)], name: &str) -> Result<PathBuf> {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let q = t.board.qemu.as_ref().context("no [qemu]")?;
    let busybox = crate::debian::busybox(&q.debian_arch)?;
    let d = dir();
    std::fs::create_dir_all(&d)?;
    let bb_hash = images::file_hash(&busybox)?;
    // The busybox container image.
    let box_img = d.join("box.img");
    let notify = crate::notify_daemon::build_notify_daemon(t.arch)?;
    let notify_hash = images::file_hash(&notify)?;
    cached(&box_img, &format!("{RECIPE} box {bb_hash:016x} {notify_hash:016x}"), |tmp| {
        let tree = d.join("tree-box");
        let _ = std::fs::remove_dir_all(&tree);
        busybox_tree(t.arch, &busybox, &tree)?;
        std::fs::copy(&notify, tree.join("usr/bin/notify-daemon")).with_context(|| format!("copying {}", notify.display()))?;
        std::fs::set_permissions(tree.join("usr/bin/notify-daemon"), std::fs::Permissions::from_mode(0o755))?;
        squash(&tree, tmp)?;
        std::fs::remove_dir_all(&tree)?;
        Ok(())
    })?;
    // The host's system image: the boot tests' image, the units, the container image.
    let sys = d.join(format!("system-{name}.img"));
    let mut key = format!("{RECIPE} system {bb_hash:016x} {:016x}", images::file_hash(&box_img)?);
    for (n, text) in units {
        key.push_str(&format!("\n{n}: {text}"));
    }
    cached(&sys, &key, |tmp| {
        let tree = d.join(format!("tree-{name}"));
        let _ = std::fs::remove_dir_all(&tree);
        std::fs::create_dir_all(&tree)?;
        images::image_tree(t.arch, &busybox, Image::Good, &tree)?;
        let units_dir = tree.join("etc/autoinit/services");
        std::fs::create_dir_all(&units_dir)?;
        for (n, text) in units {
            std::fs::write(units_dir.join(format!("{n}.service")), text)?;
        }
        std::fs::create_dir_all(tree.join("opt/containers"))?;
        std::fs::copy(&box_img, tree.join("opt/containers/box.img"))?;
        squash(&tree, tmp)?;
        std::fs::remove_dir_all(&tree)?;
        Ok(())
    })?;
    let disk = d.join(format!("disk-{name}.img"));
    let layout = crate::disk::Layout::from_board(&t.board.boot_partition, t.board.firmware())?;
    let key = format!("{RECIPE} disk {layout:?} {:016x}", images::file_hash(&sys)?);
    cached(&disk, &key, |tmp| {
        let work = d.join(format!("work-{name}"));
        let _ = std::fs::remove_dir_all(&work);
        let tree = work.join("tree");
        std::fs::create_dir_all(tree.join("autosvr"))?;
        std::fs::copy(&sys, tree.join("autosvr/system.img"))?;
        crate::disk::write(&layout, &images::test_identity(), &tree, tmp, &work.join("disk"))?;
        std::fs::remove_dir_all(&work)?;
        Ok(())
    })?;
    Ok(disk)
}

/// The Debian bookworm root with systemd as a squashfs, built once (debootstrap needs root
/// and the network; about 60 MiB) and cached as `~/.cache/autoinit/containers/<DEBIAN_IMAGE>.squashfs`.
/// After debootstrap: the default target is multi-user.target, and the gettys are masked
/// (their console is the host's serial line, which the test's shell uses).
pub fn debian_image() -> Result<PathBuf> {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let d = crate::debian::cache_dir().join("containers");
    std::fs::create_dir_all(&d)?;
    let out = d.join(format!("{DEBIAN_IMAGE}.squashfs"));
    if out.exists() {
        return Ok(out);
    }
    if Command::new("debootstrap").arg("--version").output().is_err() {
        bail!("debootstrap is not installed (cargo xtask setup installs it)");
    }
    let staging = d.join(format!("{DEBIAN_IMAGE}.staging"));
    let _ = std::fs::remove_dir_all(&staging);
    eprintln!("containers: debootstrap bookworm with systemd into {} (a few minutes, once)", staging.display());
    run(Command::new("debootstrap")
        .args(["--variant=minbase", "--include=systemd", "bookworm"])
        .arg(&staging)
        .arg("http://deb.debian.org/debian"))?;
    let sd = staging.join("etc/systemd/system");
    let _ = std::fs::remove_file(sd.join("default.target"));
    symlink("/lib/systemd/system/multi-user.target", sd.join("default.target"))?;
    for u in ["getty.target", "console-getty.service", "serial-getty@.service", "getty@.service"] {
        let _ = std::fs::remove_file(sd.join(u));
        symlink("/dev/null", sd.join(u))?;
    }
    for cache in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        for e in std::fs::read_dir(staging.join(cache))? {
            let p = e?.path();
            if p.is_file() {
                std::fs::remove_file(p)?;
            }
        }
    }
    let tmp = d.join(format!("{DEBIAN_IMAGE}.squashfs.tmp"));
    let _ = std::fs::remove_file(&tmp);
    run(Command::new("mksquashfs").arg(&staging).arg(&tmp).args(["-comp", "gzip", "-noappend", "-quiet", "-no-progress"]))?;
    std::fs::rename(&tmp, &out)?;
    std::fs::remove_dir_all(&staging)?;
    Ok(out)
}

/// Boots the guest with `disks`, waits for the console shell.
pub(crate) fn boot(t: &Target, name: &str, disks: &[PathBuf]) -> Result<Vm> {
    let mut vm = t.boot_paths(name, "autoinit.boot=LABEL=AUTOSVR", disks)?;
    vm.expect(START, BOOT)?;
    vm.expect("autoinit: console: started", Duration::from_secs(120))?;
    vm.wait_shell(Duration::from_secs(60))?;
    Ok(vm)
}

/// `autoinit poweroff` from the console shell (the console unit is stopped with SIGHUP), to
/// the kernel's last line and QEMU's exit.
fn power_off(vm: &mut Vm) -> Result<()> {
    vm.send_line(&format!("{CLIENT} poweroff"))?;
    vm.expect("autoinit: all services stopped", Duration::from_secs(120))?;
    vm.expect("reboot: Power down", Duration::from_secs(60))?;
    vm.wait_exit(Duration::from_secs(30))?;
    Ok(())
}

/// The host pids of a unit's cgroup.
fn cgroup_pids(vm: &mut Vm, unit: &str) -> Result<Vec<u32>> {
    let (out, _) = sh_status(vm, &format!("cat /sys/fs/cgroup/autoinit/{unit}/cgroup.procs 2>/dev/null"))?;
    Ok(out.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// Waits until a unit is in state `want` (its `status` row).
fn wait_state(vm: &mut Vm, unit: &str, want: &str) -> Result<()> {
    let out = poll(vm, &format!("{CLIENT} status {unit}"), Duration::from_secs(120), |o| {
        o.lines().any(|l| l.split_whitespace().nth(1) == Some(want))
    })?;
    check(vm, out.lines().any(|l| l.split_whitespace().nth(1) == Some(want)), format!("{unit} should be {want}:\n{out}"))
}

fn busybox(t: &Target) -> Result<()> {
    let disk = boot_disk(t, BOX_UNITS, "box")?;
    let mut vm = boot(t, "containers/busybox", &[disk])?;
    wait_state(&mut vm, "box", "running")?;
    wait_state(&mut vm, "users", "running")?;

    // Its own root: the image's files, the Autoserver layout, none of the host's.
    let marker = exec_ok(&mut vm, "box", "cat /etc/container-marker")?;
    check(&vm, marker == BOX_MARKER, format!("/etc/container-marker inside is '{marker}'"))?;
    let top = exec_ok(&mut vm, "box", "ls /")?;
    let names: Vec<&str> = top.split_whitespace().collect();
    for want in ["rofs_root", "usr", "etc", "proc", "dev", "shared", "scratch", "host-ro"] {
        check(&vm, names.contains(&want), format!("ls / inside lacks {want}: {top}"))?;
    }
    for host_only in ["boot_disk", "__autoinit__", "opt"] {
        check(&vm, !names.contains(&host_only), format!("ls / inside shows the host's {host_only}: {top}"))?;
    }
    let link = exec_ok(&mut vm, "box", "readlink /usr")?;
    check(&vm, link == "rofs_root/usr", format!("/usr inside links to '{link}', expected rofs_root/usr"))?;
    // No way back to the host: its unit files are not reachable by any path.
    for path in ["/etc/autoinit/services/box.service", "/proc/1/root/etc/autoinit/services/box.service", "/../../etc/autoinit/services/box.service"] {
        let (_, code) = exec_in(&mut vm, "box", &format!("test -e {path}"))?;
        check(&vm, code == 1, format!("{path} is reachable inside the container (test -e: {code})"))?;
    }
    let up = exec_ok(&mut vm, "box", "sh -c 'cd /../.. && pwd && ls'")?;
    check(&vm, !up.contains("boot_disk") && !up.contains("__autoinit__"), format!("cd /../.. inside reaches the host: {up}"))?;
    let mounts = exec_ok(&mut vm, "box", "cat /proc/mounts")?;
    check(&vm, !mounts.contains("/boot_disk"), format!("the host's mounts are visible inside:\n{mounts}"))?;
    let sys_ro = mounts.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() >= 4 && f[1] == "/sys" && f[3].split(',').any(|o| o == "ro")
    });
    check(&vm, sys_ro, format!("/sys should be read-only inside:\n{mounts}"))?;
    let dev = exec_ok(&mut vm, "box", "ls /dev")?;
    let devs: Vec<&str> = dev.split_whitespace().collect();
    for want in ["null", "zero", "full", "random", "urandom", "tty", "pts", "ptmx", "shm"] {
        check(&vm, devs.contains(&want), format!("/dev inside lacks {want}: {dev}"))?;
    }
    check(&vm, !devs.iter().any(|d| d.starts_with("vd") || d.starts_with("loop") || d.starts_with("ttyS")), format!("/dev inside has host devices: {dev}"))?;

    // PID 1 inside is autoinit's init; ps shows the container's processes only.
    let comm = exec_ok(&mut vm, "box", "cat /proc/1/comm")?;
    check(&vm, comm == "autoinit", format!("/proc/1/comm inside is '{comm}', expected autoinit"))?;
    let ps = exec_ok(&mut vm, "box", "ps -o pid,comm")?;
    let rows: Vec<(u32, String)> = ps
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            Some((w.next()?.parse().ok()?, w.next()?.to_string()))
        })
        .collect();
    let comms: Vec<&str> = rows.iter().map(|(_, c)| c.as_str()).collect();
    check(&vm, rows.iter().any(|(p, c)| *p == 1 && c == "autoinit"), format!("ps inside has no PID 1 autoinit:\n{ps}"))?;
    check(&vm, comms.iter().all(|c| matches!(*c, "autoinit" | "sleep" | "ps")), format!("ps inside shows processes not of the container:\n{ps}"))?;
    check(&vm, rows.len() == 3, format!("ps inside should show autoinit, sleep and ps:\n{ps}"))?;

    // PrivateNetwork: only lo, and it is up.
    let nets = exec_ok(&mut vm, "box", "ls /sys/class/net")?;
    check(&vm, nets == "lo", format!("interfaces inside: '{nets}', expected only lo"))?;
    let flags = exec_ok(&mut vm, "box", "cat /sys/class/net/lo/flags")?;
    check(&vm, u32::from_str_radix(flags.trim_start_matches("0x"), 16).is_ok_and(|f| f & 1 == 1), format!("lo is not up inside: flags {flags}"))?;

    // Hostname.
    let inside = exec_ok(&mut vm, "box", "hostname")?;
    let outside = sh(&mut vm, "hostname")?;
    check(&vm, inside == "box" && outside != "box", format!("hostname inside '{inside}', outside '{outside}'"))?;

    // Binds and tmpfs.
    exec_ok(&mut vm, "box", "sh -c 'echo from-inside > /shared/x'")?;
    let x = sh(&mut vm, "cat /run/shared/x")?;
    check(&vm, x == "from-inside", format!("BindPaths=: the host reads '{x}'"))?;
    let ver = exec_ok(&mut vm, "box", "cat /host-ro/VERSION")?;
    check(&vm, ver == images::IMAGE_VERSION, format!("BindReadOnlyPaths=: /host-ro/VERSION is '{ver}'"))?;
    let (_, code) = exec_in(&mut vm, "box", "touch /host-ro/new")?;
    check(&vm, code != 0, "BindReadOnlyPaths=: a file could be created in /host-ro")?;
    check(&vm, mounts.lines().any(|l| l.starts_with("tmpfs /scratch tmpfs")), format!("TemporaryFileSystem=: no tmpfs on /scratch:\n{mounts}"))?;

    // Limits: the unit's cgroup is the container's cgroup root, and it holds.
    let mem_inside = exec_ok(&mut vm, "box", "cat /sys/fs/cgroup/memory.max")?;
    let mem_outside = sh(&mut vm, "cat /sys/fs/cgroup/autoinit/box/memory.max")?;
    check(&vm, mem_inside == "67108864" && mem_outside == "67108864", format!("memory.max inside '{mem_inside}', outside '{mem_outside}'"))?;
    let cg = exec_ok(&mut vm, "box", "cat /proc/self/cgroup")?;
    check(&vm, cg == "0::/", format!("/proc/self/cgroup inside is '{cg}', expected 0::/ (a cgroup namespace)"))?;
    // TasksMax=24: forking 40 sleeps fails part way; the cgroup never holds more than 24.
    let _ = exec_in(&mut vm, "box", "sh -c 'for i in $(seq 1 40); do sleep 8 & done 2>/dev/null; cat /sys/fs/cgroup/pids.current'")?;
    let pids = cgroup_pids(&mut vm, "box")?;
    check(&vm, !pids.is_empty() && pids.len() <= 24, format!("TasksMax=24, the cgroup holds {} processes", pids.len()))?;
    let events = sh(&mut vm, "cat /sys/fs/cgroup/autoinit/box/pids.events")?;
    check(&vm, events.split_whitespace().nth(1).and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n > 0), format!("pids.events shows no refused fork: {events}"))?;

    // Let the sleeps end: the checks below need to fork again.
    std::thread::sleep(Duration::from_secs(9));

    // Orphans: a process whose parent exits is reparented to the container's init and reaped.
    exec_ok(&mut vm, "box", "sh -c '(sleep 1 &)'")?;
    std::thread::sleep(Duration::from_secs(3));
    let stats = exec_ok(&mut vm, "box", "sh -c 'cat /proc/[0-9]*/stat'")?;
    let zombies: Vec<&str> = stats.lines().filter(|l| l.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z'))).collect();
    check(&vm, zombies.is_empty(), format!("zombies inside the container:\n{}", zombies.join("\n")))?;

    // exec returns the command's status.
    let (_, code) = exec_in(&mut vm, "box", "sh -c 'exit 7'")?;
    check(&vm, code == 7, format!("exec of `exit 7` returned {code}"))?;
    let (_, code) = exec_in(&mut vm, "box", "no-such-command")?;
    check(&vm, code == 127, format!("exec of a missing command returned {code}, expected 127"))?;
    let (_, code) = exec_in(&mut vm, "nonexistent", "true")?;
    check(&vm, code == 1, format!("exec into a unit that does not exist returned {code}, expected 1"))?;

    // A start through the control socket is answered: the container's init holds none of
    // PID 1's descriptors (the client would otherwise wait for the end of the response forever).
    sh(&mut vm, &format!("{CLIENT} restart users"))?;
    wait_state(&mut vm, "users", "running")?;

    // The user-namespaced container: root inside, uid 100000 outside.
    let map = exec_ok(&mut vm, "users", "cat /proc/self/uid_map")?;
    check(&vm, map.split_whitespace().collect::<Vec<_>>() == ["0", "100000", "65536"], format!("uid_map inside: '{map}'"))?;
    let id = exec_ok(&mut vm, "users", "id -u")?;
    check(&vm, id == "0", format!("id -u inside the user namespace: '{id}'"))?;
    let upids = cgroup_pids(&mut vm, "users")?;
    check(&vm, !upids.is_empty(), "the users container has no processes")?;
    for pid in upids {
        let uids = sh(&mut vm, &format!("grep Uid: /proc/{pid}/status"))?;
        let real: Vec<&str> = uids.split_whitespace().skip(1).collect();
        check(&vm, real.iter().all(|u| *u == "100000"), format!("pid {pid} of the users container outside: {uids}, expected 100000"))?;
    }
    let host_id = sh(&mut vm, "id -u")?;
    check(&vm, host_id == "0", "the host shell is not root")?;

    // A notify service in its own root reported READY=1 through the bound socket.
    wait_state(&mut vm, "boxnotify", "running")?;
    check(&vm, vm.text().contains("autoinit: boxnotify: ready"), "no 'boxnotify: ready' line although it is running")?;

    // Stop leaves nothing behind: no process, no mount, no loop device.
    let loops_before = sh(&mut vm, "cat /sys/block/loop*/loop/backing_file 2>/dev/null | grep -c box.img || true")?;
    check(&vm, loops_before == "3", format!("expected 3 loop devices on box.img while the three containers run, saw {loops_before}"))?;
    sh(&mut vm, &format!("{CLIENT} stop box && {CLIENT} stop users && {CLIENT} stop boxnotify"))?;
    let left = cgroup_pids(&mut vm, "box")?.len() + cgroup_pids(&mut vm, "users")?.len() + cgroup_pids(&mut vm, "boxnotify")?.len();
    check(&vm, left == 0, format!("{left} processes left in the stopped containers' cgroups"))?;
    let loops = poll(&mut vm, "cat /sys/block/loop*/loop/backing_file 2>/dev/null | grep -c box.img || true", Duration::from_secs(20), |o| o == "0")?;
    check(&vm, loops == "0", format!("{loops} loop devices still hold box.img after stop"))?;
    let host_mounts = sh(&mut vm, "cat /proc/mounts")?;
    check(&vm, !host_mounts.contains("/run/autoinit/root"), format!("a container mount leaked to the host:\n{host_mounts}"))?;

    power_off(&mut vm)?;
    vm.check_no_kernel_panic()
}

fn systemd(t: &Target) -> Result<()> {
    let debian = debian_image()?;
    let units = [BOX_UNITS[0], ("debian", DEBIAN_UNIT)];
    let disk = boot_disk(t, &units, "systemd")?;
    let mut vm = t.boot_paths("containers-systemd", "autoinit.boot=LABEL=AUTOSVR", &[disk, debian])?;
    vm.expect(START, BOOT)?;
    // systemd's own console lines, from inside the container.
    vm.expect("Welcome to Debian GNU/Linux 12 (bookworm)!", Duration::from_secs(240))?;
    vm.expect("Reached target", Duration::from_secs(240))?;
    vm.expect("Multi-User System", Duration::from_secs(300))?;
    vm.wait_shell(Duration::from_secs(60))?;
    // systemd's console lines may still interleave with the shell's output until it is up:
    // outputs are judged by their lines.
    let has_line = |out: &str, want: &[&str]| out.lines().any(|l| want.contains(&l.trim()));
    let state = poll(&mut vm, &format!("{CLIENT} exec debian -- systemctl is-system-running"), Duration::from_secs(120), |o| {
        has_line(o, &["running", "degraded"])
    })?;
    check(&vm, has_line(&state, &["running", "degraded"]), format!("systemctl is-system-running: '{state}'"))?;
    let comm = exec_ok(&mut vm, "debian", "cat /proc/1/comm")?;
    check(&vm, has_line(&comm, &["systemd"]), format!("PID 1 inside is '{comm}', expected systemd"))?;
    let target = exec_ok(&mut vm, "debian", "systemctl is-active multi-user.target")?;
    check(&vm, has_line(&target, &["active"]), format!("multi-user.target is '{target}'"))?;
    let host = exec_ok(&mut vm, "debian", "cat /proc/sys/kernel/hostname")?;
    // Hostname= gave the container a UTS namespace; systemd then set the name from the
    // image's /etc/hostname, inside only.
    let image_name = exec_ok(&mut vm, "debian", "cat /etc/hostname")?;
    let outside = sh(&mut vm, "hostname")?;
    let inside = host.lines().map(str::trim).find(|l| !l.is_empty() && !l.contains(' ')).unwrap_or("").to_string();
    check(&vm, has_line(&image_name, &[inside.as_str()]) && outside != inside, format!("hostname inside '{host}', the image's '{image_name}', outside '{outside}'"))?;
    // SIGRTMIN+3 halts systemd: the container ends cleanly.
    sh(&mut vm, &format!("{CLIENT} stop debian"))?;
    let left = cgroup_pids(&mut vm, "debian")?;
    check(&vm, left.is_empty(), format!("processes left after stopping the systemd container: {left:?}"))?;
    power_off(&mut vm)?;
    vm.check_no_kernel_panic()
}

/// The units of the faults test: a bystander container, three that cannot be set up, one whose
/// service keeps crashing and one that leaves orphans.
const FAULT_UNITS: &[(&str, &str)] = &[
    BOX_UNITS[0],
    (
        "box",
        "[Service]\nExecStart=/bin/sleep 100000\nRootImage=/opt/containers/box.img\nPrivatePIDs=yes\nStandardOutput=null\n",
    ),
    ("noimage", "[Service]\nExecStart=/bin/sleep 100000\nRootImage=/opt/containers/nope.img\nPrivatePIDs=yes\n"),
    // A file that is not a squashfs: the busybox binary.
    ("notsquash", "[Service]\nExecStart=/bin/sleep 100000\nRootImage=/usr/bin/busybox\nPrivatePIDs=yes\n"),
    (
        "nobind",
        "[Service]\nExecStart=/bin/sleep 100000\nRootImage=/opt/containers/box.img\nPrivatePIDs=yes\nBindPaths=/no-such-dir:/x\n",
    ),
    (
        "crasher",
        "[Service]\nExecStart=/bin/sh -c 'sleep 1; exit 3'\nRootImage=/opt/containers/box.img\nPrivatePIDs=yes\nRestart=on-failure\n",
    ),
    (
        "orphans",
        "[Service]\nExecStart=/bin/sh -c 'for i in $(seq 1 50); do (sleep 2 &); done; exec sleep 100000'\n\
         RootImage=/opt/containers/box.img\nPrivatePIDs=yes\nStandardOutput=null\n",
    ),
];

/// The main pid of a unit in `status`, if it has one.
fn main_pid(vm: &mut Vm, unit: &str) -> Result<Option<u32>> {
    let (out, _) = sh_status(vm, &format!("{CLIENT} status {unit}"))?;
    Ok(out.lines().find(|l| l.split_whitespace().next() == Some(unit)).and_then(|l| l.split_whitespace().nth(2)?.parse().ok()))
}

/// Waits for a console line containing `text` anywhere since the boot (units start in
/// parallel: their lines come in any order, and shell commands move `Vm::expect`'s cursor).
fn console_line(vm: &Vm, text: &str, timeout: Duration) -> Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(l) = vm.text().lines().find(|l| l.contains(text)) {
            return Ok(l.to_string());
        }
        vm.check_no_kernel_panic()?;
        if Instant::now() >= deadline {
            return Err(vm.fail(format!("no console line containing '{text}' within {:.0} s", timeout.as_secs_f64())));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn faults(t: &Target) -> Result<()> {
    let disk = boot_disk(t, FAULT_UNITS, "faults")?;
    let mut vm = boot(t, "containers/faults", &[disk])?;
    wait_state(&mut vm, "box", "running")?;
    let box_pid = main_pid(&mut vm, "box")?;
    check(&vm, box_pid.is_some(), "the bystander container has no main pid")?;

    // Containers that cannot be set up: the reason on the console, the unit failed with the
    // setup step named, nothing retried (Restart=no).
    let cases = [
        ("noimage", "autoinit: open RootImage /opt/containers/nope.img: ENOENT".to_string()),
        ("notsquash", "autoinit: RootImage /usr/bin/busybox: not a usable squashfs: not a squashfs image (no hsqs magic)".to_string()),
        ("nobind", "autoinit: nobind: BindPaths=/no-such-dir: ENOENT".to_string()),
    ];
    for (unit, why) in &cases {
        console_line(&vm, why, Duration::from_secs(60))?;
        let l = console_line(&vm, &format!("autoinit: {unit}: failed: main process (pid "), Duration::from_secs(60))?;
        check(&vm, l.contains("exited with status 226 (NAMESPACE setup failed)"), format!("{unit}: no 'failed: ... status 226 (NAMESPACE setup failed)' line: '{l}'"))?;
        wait_state(&mut vm, unit, "failed")?;
        // `autoinit exec` into it: an error, not a hang.
        let (out, code) = exec_in(&mut vm, unit, "true")?;
        check(&vm, code == 1 && out.contains(&format!("{unit}: not running")), format!("exec into the failed {unit}: status {code}:\n{out}"))?;
    }

    // A container whose service exits with status 3 after a second: restarted with backoff,
    // a new container each time, until the burst limit.
    console_line(&vm, "autoinit: crasher: failed: restarted too often (5 times in 60 s)", Duration::from_secs(120))?;
    let text = vm.text();
    let exits = text.lines().filter(|l| l.contains("crasher: main process (pid ") && l.contains("exited with status 3")).count();
    let restarts = text.lines().filter(|l| l.contains("autoinit: crasher: restarting in ")).count();
    check(&vm, exits == 5 && restarts == 4, format!("crasher: {exits} exits with status 3 and {restarts} restarts, expected 5 and 4"))?;
    wait_state(&mut vm, "crasher", "failed")?;
    let left = cgroup_pids(&mut vm, "crasher")?;
    check(&vm, left.is_empty(), format!("processes left in the failed crasher's cgroup: {left:?}"))?;

    // 50 orphans inside a container: reaped by its init; only init and the service are left.
    wait_state(&mut vm, "orphans", "running")?;
    let pids = poll(&mut vm, "cat /sys/fs/cgroup/autoinit/orphans/cgroup.procs | wc -l", Duration::from_secs(60), |o| o.trim() == "2")?;
    check(&vm, pids.trim() == "2", format!("the orphans container's cgroup holds {} processes 60 s on, expected 2 (its init and sleep)", pids.trim()))?;
    let stats = exec_ok(&mut vm, "orphans", "sh -c 'cat /proc/[0-9]*/stat'")?;
    let zombies: Vec<&str> = stats.lines().filter(|l| l.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z'))).collect();
    check(&vm, zombies.is_empty(), format!("zombies inside the orphans container:\n{}", zombies.join("\n")))?;

    // Nothing of the failed containers is left on the host: loop devices only for the two
    // running containers, no container mount.
    let loops = poll(&mut vm, "cat /sys/block/loop*/loop/backing_file 2>/dev/null | grep -c box.img || true", Duration::from_secs(20), |o| o == "2")?;
    check(&vm, loops == "2", format!("{loops} loop devices hold box.img, expected 2 (box and orphans)"))?;
    let host_mounts = sh(&mut vm, "cat /proc/mounts")?;
    check(&vm, !host_mounts.contains("/run/autoinit/root"), format!("a container mount leaked to the host:\n{host_mounts}"))?;

    // The bystander never noticed; exec into a unit that does not exist, and into a stopped one.
    let now = main_pid(&mut vm, "box")?;
    check(&vm, now == box_pid, format!("the bystander container's main pid went from {box_pid:?} to {now:?}"))?;
    let inside = exec_ok(&mut vm, "box", "cat /etc/container-marker")?;
    check(&vm, inside == BOX_MARKER, format!("exec into the bystander: '{inside}'"))?;
    let (out, code) = exec_in(&mut vm, "nosuch", "true")?;
    check(&vm, code == 1, format!("exec into a unit that does not exist: status {code}:\n{out}"))?;
    sh(&mut vm, &format!("{CLIENT} stop box"))?;
    let (out, code) = exec_in(&mut vm, "box", "true")?;
    check(&vm, code == 1 && out.contains("box: not running"), format!("exec into the stopped box: status {code}:\n{out}"))?;
    let loops = poll(&mut vm, "cat /sys/block/loop*/loop/backing_file 2>/dev/null | grep -c box.img || true", Duration::from_secs(20), |o| o == "1")?;
    check(&vm, loops == "1", format!("{loops} loop devices hold box.img after box stopped, expected 1 (orphans)"))?;

    power_off(&mut vm)?;
    vm.check_no_kernel_panic()
}

pub const TESTS: &[Test] = &[
    Test { name: "containers/busybox", arches: &[Arch::X86_64], disks: &[], run: busybox },
    Test { name: "containers/systemd", arches: &[Arch::X86_64], disks: &[], run: systemd },
    Test { name: "containers/faults", arches: &[Arch::X86_64], disks: &[], run: faults },
];
