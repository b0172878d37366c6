//! Boot tests: each boots a fresh QEMU guest (Debian kernel, initramfs with autoinit as /init
//! and busybox) and checks autoinit's behaviour on the serial console.

use crate::arch::Arch;
use crate::board::{self, Board};
use crate::images::{self, Disk, Images};
use crate::qemu::{Boot, Vm, VmOptions};
use crate::{board_image, debian};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// From QEMU's start to autoinit's first line (TCG boots take 2-5 s; leave room for a loaded
/// machine).
pub(crate) const BOOT: Duration = Duration::from_secs(90);
/// Between two console lines autoinit prints in a row.
pub(crate) const STEP: Duration = Duration::from_secs(20);
/// For QEMU to exit after the kernel's last line.
pub(crate) const EXIT: Duration = Duration::from_secs(30);

pub(crate) const START: &str = "autoinit: autoinit 0.1.0 starting as PID 1";
pub(crate) const SHELL: &str = "autoinit: starting rescue shell /bin/sh on /dev/";

/// One architecture, ready to boot: its board, kernel and initramfs, and the boot disks its
/// selected tests attach.
pub struct Target {
    pub arch: Arch,
    pub board: Board,
    pub kernel: PathBuf,
    /// The autoinit binary in the initramfs.
    pub init: PathBuf,
    /// `initramfs.cpio.gz`, as `cargo xtask image` writes it.
    pub initrd: PathBuf,
    /// Its size unpacked.
    pub initrd_bytes: u64,
    /// Built only when a selected test needs a disk; an error fails only those tests.
    pub images: Option<std::result::Result<Images, String>>,
    /// How many module files the initramfs holds (the board's modules with their
    /// dependencies), all of which the boot stage must load.
    pub module_files: usize,
}

/// The QEMU board of an architecture that has one.
pub fn board_for(arch: Arch) -> Result<Board> {
    let b = board::load(&format!("qemu-{}", arch.name()))?;
    if b.arch()? != arch {
        bail!("board {} is for {}, not {}", b.name, b.arch, arch.name());
    }
    Ok(b)
}

/// Builds autoinit (unless `init` is given), fetches the board's kernel and busybox and writes
/// the initramfs with `cargo xtask image`'s code (board_image.rs: autoinit as /init, the
/// board's modules, and busybox for the rescue shell) into `target/images/<arch>/board/`.
pub fn prepare(arch: Arch, init: Option<PathBuf>) -> Result<Target> {
    let board = board_for(arch)?;
    let q = board.qemu.as_ref().context("board without [qemu]")?;
    let init = match init {
        Some(p) => p,
        None => crate::build::autoinit(arch)?,
    };
    let kernel = debian::kernel(arch, q)?;
    let busybox = debian::busybox(&q.debian_arch)?;
    let out = crate::root().join("target/images").join(arch.name()).join("board");
    let inputs = board_image::InitInputs { init: &init, busybox: Some(&busybox), kernel: &kernel };
    let made = board_image::make_initramfs(&board, &inputs, &out, &mut board_image::Progress::quiet())?;
    let image = kernel.qemu_image(arch)?;
    Ok(Target {
        arch,
        board,
        kernel: image,
        init,
        initrd: made.gz,
        initrd_bytes: made.unpacked_bytes,
        images: None,
        module_files: made.module_files,
    })
}

impl Target {
    /// Boots a fresh guest; the console log is `target/qemu-logs/<arch>-<name>.log`.
    pub fn boot(&self, name: &str, extra_cmdline: &str) -> Result<Vm> {
        self.boot_with(name, extra_cmdline, &[])
    }

    /// Boots a fresh guest with the boot disk `disk` attached (`/dev/vda`).
    pub fn boot_disk(&self, name: &str, extra_cmdline: &str, disk: Disk) -> Result<Vm> {
        self.boot_disks(name, extra_cmdline, &[disk])
    }

    /// Boots a fresh guest with `disks` attached in order (`/dev/vda`, `/dev/vdb`, ... on PCI).
    pub fn boot_disks(&self, name: &str, extra_cmdline: &str, disks: &[Disk]) -> Result<Vm> {
        let images = match &self.images {
            Some(Ok(i)) => i,
            Some(Err(e)) => bail!("building the boot disks: {e}"),
            None => bail!("no boot disks were prepared for {}", self.arch.name()),
        };
        let paths = disks.iter().map(|d| images.disk(*d).map(|p| p.to_path_buf())).collect::<Result<Vec<_>>>()?;
        self.boot_with(name, extra_cmdline, &paths)
    }

    /// Boots a fresh guest with the disk images `disks` attached in order.
    pub fn boot_paths(&self, name: &str, extra_cmdline: &str, disks: &[PathBuf]) -> Result<Vm> {
        self.boot_with(name, extra_cmdline, disks)
    }

    pub(crate) fn boot_with(&self, name: &str, extra_cmdline: &str, disks: &[PathBuf]) -> Result<Vm> {
        self.boot_custom(name, extra_cmdline, disks, None, &[])
    }

    /// Boots a fresh guest with `disks` (paths) attached, another initramfs than the
    /// target's if `initrd` is given, and `qemu_args` after the console's `-serial stdio`.
    pub fn boot_custom(
        &self,
        name: &str,
        extra_cmdline: &str,
        disks: &[PathBuf],
        initrd: Option<&std::path::Path>,
        qemu_args: &[String],
    ) -> Result<Vm> {
        let initrd = initrd.unwrap_or(&self.initrd);
        let boot = Boot { board: &self.board, kernel: &self.kernel, initrd, extra_cmdline, disks };
        Vm::start_with(&boot, &self.log_name(name), false, qemu_args)
    }

    /// `target/qemu-logs/<this>.log` of the test `name`: '/' in a test name
    /// (failures/no_device) is a '-' in the log's name.
    pub fn log_name(&self, name: &str) -> String {
        format!("{}-{}", self.arch.name(), name.replace('/', "-"))
    }

    /// Boots a fresh guest with the disk image files `disks` attached, run as `opts` says.
    pub(crate) fn boot_files(&self, name: &str, extra_cmdline: &str, disks: &[PathBuf], opts: VmOptions) -> Result<Vm> {
        let boot = Boot { board: &self.board, kernel: &self.kernel, initrd: &self.initrd, extra_cmdline, disks };
        Vm::start_opts(&boot, &self.log_name(name), false, opts)
    }

    /// The rescue shell's console device, as autoinit names it.
    fn console(&self) -> String {
        format!("/dev/{}", self.board.console)
    }
}

/// Waits for autoinit's start line and the rescue shell; returns the shell's pid.
fn to_shell(vm: &mut Vm, t: &Target) -> Result<u32> {
    vm.expect(START, BOOT)?;
    shell_started(vm, t)
}

/// Waits for the "starting rescue shell" line and a shell that answers; returns its pid.
pub(crate) fn shell_started(vm: &mut Vm, t: &Target) -> Result<u32> {
    let line = vm.expect_line(SHELL, STEP)?;
    let want = format!("{SHELL}{} (pid ", &t.console()[5..]);
    let Some(rest) = line.find(&want).map(|i| &line[i + want.len()..]) else {
        return Err(vm.fail(format!("rescue shell line names another console than {}: {line}", t.console())));
    };
    let pid = rest.split(')').next().and_then(|p| p.parse().ok());
    let Some(pid) = pid else { return Err(vm.fail(format!("no pid in the rescue shell line: {line}"))) };
    vm.wait_shell(STEP)?;
    Ok(pid)
}

/// The shutdown sequence after a signal, up to the kernel's last line.
fn shutdown(vm: &mut Vm, signal: &str, action: &str, kernel_line: &str) -> Result<()> {
    vm.expect(&format!("autoinit: {signal}: {action}"), STEP)?;
    for l in [
        "autoinit: sending SIGTERM to all processes",
        "autoinit: sending SIGKILL to all processes",
        "autoinit: syncing filesystems",
        "autoinit: unmounting filesystems",
        kernel_line,
    ] {
        vm.expect(l, STEP)?;
    }
    Ok(())
}

/// `kill -USR2 1`: the power-off sequence, and QEMU exits by itself.
pub(crate) fn power_off(vm: &mut Vm) -> Result<()> {
    vm.send_line("kill -USR2 1")?;
    shutdown(vm, "SIGUSR2", "powering off", "reboot: Power down")?;
    vm.wait_exit(EXIT)?;
    Ok(())
}

pub(crate) fn check(vm: &Vm, ok: bool, what: impl std::fmt::Display) -> Result<()> {
    if ok { Ok(()) } else { Err(vm.fail(what)) }
}

fn rescue_shell(t: &Target) -> Result<()> {
    let mut vm = t.boot("rescue_shell", "")?;
    to_shell(&mut vm, t)?;

    let cmdline = vm.run("cat /proc/1/cmdline | tr '\\0' ' '")?;
    check(&vm, cmdline.split_whitespace().next() == Some("/init"), format!("/proc/1/cmdline is '{cmdline}', expected /init"))?;

    let mounts = vm.run("cat /proc/mounts")?;
    for (fs, dir) in [("proc", "/proc"), ("sysfs", "/sys"), ("devtmpfs", "/dev")] {
        let found = mounts.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 2 && f[1] == dir && f[2] == fs
        });
        check(&vm, found, format!("/proc/mounts has no {fs} on {dir}:\n{mounts}"))?;
    }

    let dmesg = vm.run("dmesg | grep 'autoinit:'")?;
    check(&vm, dmesg.contains(START), format!("the kernel log lacks '{START}':\n{dmesg}"))?;

    // An orphan: the inner shell exits at once, its background sleep is re-parented to PID 1,
    // which must reap it when it exits (a reaped process leaves no /proc entry; an unreaped
    // one stays a zombie, State: Z).
    vm.run("sh -c 'sleep 2 & echo $! > /tmp/orphan'")?;
    let ppid = vm.run("grep PPid /proc/$(cat /tmp/orphan)/status")?;
    check(&vm, ppid.split_whitespace().nth(1) == Some("1"), format!("the orphan was not re-parented to PID 1: {ppid}"))?;
    vm.run("sleep 4")?;
    let (st, code) = vm.run_status("cat /proc/$(cat /tmp/orphan)/status", STEP)?;
    check(&vm, code != 0, format!("the orphan was not reaped:\n{st}"))?;
    let (zombies, _) = vm.run_status("grep -l '^State:.*Z' /proc/[0-9]*/status", STEP)?;
    check(&vm, zombies.trim().is_empty(), format!("zombies left: {zombies}"))?;

    let (usage, code) = vm.run_status("/init", STEP)?;
    check(&vm, usage.to_lowercase().contains("usage"), format!("/init as a normal process printed no usage text: {usage}"))?;
    check(&vm, code == 2, format!("/init as a normal process exited with {code}, expected 2"))?;

    power_off(&mut vm)?;
    vm.check_no_kernel_panic()
}

fn respawn(t: &Target) -> Result<()> {
    let mut vm = t.boot("respawn", "")?;
    let pid = to_shell(&mut vm, t)?;
    vm.send_line("exit")?;
    let want = format!("autoinit: rescue shell (pid {pid}) exited with status 0; restarting");
    vm.expect(&want, STEP)?;
    let pid2 = shell_started(&mut vm, t)?;
    check(&vm, pid2 != pid, format!("the new shell has the old pid {pid}"))?;
    let out = vm.run("echo respawned$((40+2))")?;
    check(&vm, out.contains("respawned42"), format!("the new shell does not answer: {out}"))?;
    power_off(&mut vm)?;
    vm.check_no_kernel_panic()
}

fn signals(t: &Target) -> Result<()> {
    let mut vm = t.boot("signals-term", "")?;
    to_shell(&mut vm, t)?;
    vm.send_line("kill -TERM 1")?;
    shutdown(&mut vm, "SIGTERM", "rebooting", "reboot: Restarting system")?;
    vm.wait_exit(EXIT)?; // -no-reboot turns the reboot into an exit
    vm.check_no_kernel_panic()?;
    drop(vm);

    let mut vm = t.boot("signals-usr1", "")?;
    to_shell(&mut vm, t)?;
    vm.send_line("kill -USR1 1")?;
    shutdown(&mut vm, "SIGUSR1", "halting", "reboot: System halted")?;
    vm.check_no_kernel_panic()?;
    vm.kill(); // QEMU stays up on a halted guest
    Ok(())
}

fn cmdline_warnings(t: &Target) -> Result<()> {
    let mut vm = t.boot("cmdline_warnings", "autoinit.bogus=1 autoinit.log=loud")?;
    to_shell(&mut vm, t)?;
    let text = vm.text();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("autoinit: warning: kernel command line: ")).collect();
    for key in ["autoinit.bogus", "autoinit.log"] {
        check(&vm, warnings.iter().any(|w| w.contains(key)), format!("no kernel command line warning names {key}"))?;
    }
    let out = vm.run("echo still$((40+2))")?;
    check(&vm, out.contains("still42"), format!("the shell does not answer: {out}"))?;
    power_off(&mut vm)?;
    vm.check_no_kernel_panic()
}

fn panic_policy(t: &Target) -> Result<()> {
    let mut vm = t.boot("panic_policy", "autoinit.debug=panic")?;
    vm.expect(START, BOOT)?;
    let epitaph = vm.expect_line("autoinit: PANIC: deliberate panic (autoinit.debug=panic) at init/", STEP)?;
    // "... at init/x.rs:LINE:COL"
    let loc = epitaph.rsplit(" at ").next().unwrap_or("");
    let parts: Vec<&str> = loc.trim().rsplitn(3, ':').collect();
    let located = parts.len() == 3
        && parts[0].parse::<u32>().is_ok()
        && parts[1].parse::<u32>().is_ok()
        && parts[2].starts_with("init/")
        && parts[2].ends_with(".rs");
    check(&vm, located, format!("the epitaph has no source location init/FILE.rs:LINE:COL: {epitaph}"))?;
    vm.expect("autoinit: panic policy: re-executing /init in rescue mode", STEP)?;
    vm.expect(&format!("{START} (rescue mode after a panic)"), STEP)?;
    shell_started(&mut vm, t)?;
    let cmdline = vm.run("cat /proc/1/cmdline | tr '\\0' ' '")?;
    check(&vm, cmdline.contains("--after-panic"), format!("/proc/1/cmdline is '{cmdline}', expected --after-panic"))?;
    let dmesg = vm.run("dmesg | grep 'autoinit:'")?;
    check(&vm, dmesg.contains("autoinit: PANIC: deliberate panic"), format!("the kernel log lacks the epitaph:\n{dmesg}"))?;
    power_off(&mut vm)?;
    vm.check_no_kernel_panic()
}

pub struct Test {
    /// `group/case` names are selected by `--test group` too.
    pub name: &'static str,
    pub arches: &'static [Arch],
    /// The boot disks it attaches (built before any guest starts).
    pub disks: &'static [Disk],
    pub run: fn(&Target) -> Result<()>,
}

pub const TESTS: &[Test] = &[
    Test { name: "rescue_shell", arches: &[Arch::X86_64, Arch::Aarch64, Arch::Armv7, Arch::Riscv64, Arch::I686], disks: &[], run: rescue_shell },
    Test { name: "respawn", arches: &[Arch::X86_64], disks: &[], run: respawn },
    Test { name: "signals", arches: &[Arch::X86_64], disks: &[], run: signals },
    Test { name: "cmdline_warnings", arches: &[Arch::X86_64], disks: &[], run: cmdline_warnings },
    Test { name: "panic_policy", arches: &[Arch::X86_64, Arch::Aarch64], disks: &[], run: panic_policy },
];

/// The foundation's tests, then the boot stage's, supervision, persisting, the live upgrade.
pub fn all_tests() -> impl Iterator<Item = &'static Test> {
    TESTS.iter().chain(crate::boot_stage_tests::TESTS).chain(crate::supervise_tests::TESTS).chain(crate::upgrade_persist_tests::TESTS).chain(crate::upgrade_tests::TESTS).chain(crate::container_tests::TESTS)
}

/// Whether `--test filter` selects the test `name`: the same name, or its group.
fn selects(filter: &str, name: &str) -> bool {
    name == filter || name.strip_prefix(filter).is_some_and(|rest| rest.starts_with('/'))
}

/// Runs the boot tests for `arches` (only those named in `only_tests`, when not empty), `jobs`
/// guests at a time; prints one line per test; returns (passed, failed).
pub fn run(arches: &[Arch], only_tests: &[String], jobs: usize) -> (usize, usize) {
    let init_override = std::env::var_os("AUTOINIT_TEST_INIT").map(PathBuf::from);
    if let Some(p) = &init_override {
        eprintln!("xtask: note: AUTOINIT_TEST_INIT set, booting {} as /init", p.display());
    }
    let mut work: Vec<(Arch, &Test)> = Vec::new();
    for &arch in arches {
        for t in all_tests() {
            if t.arches.contains(&arch) && (only_tests.is_empty() || only_tests.iter().any(|n| selects(n, t.name))) {
                work.push((arch, t));
            }
        }
    }
    // Prepare each architecture once (builds, downloads, initramfs, boot disks), serially.
    let mut targets: Vec<(Arch, std::result::Result<Target, String>)> = Vec::new();
    for &arch in arches {
        if work.iter().any(|(a, _)| *a == arch) {
            let init = init_override.as_ref().map(|p| PathBuf::from(p.to_string_lossy().replace("{arch}", arch.name())));
            let mut disks: Vec<Disk> = Vec::new();
            for (_, t) in work.iter().filter(|(a, _)| *a == arch) {
                for d in t.disks {
                    if !disks.contains(d) {
                        disks.push(*d);
                    }
                }
            }
            let t = prepare(arch, init).map(|mut t| {
                if !disks.is_empty() {
                    let built = t.board.qemu.as_ref().context("board without [qemu]").and_then(|q| {
                        let busybox = debian::busybox(&q.debian_arch)?;
                        images::prepare(arch, &busybox, &disks)
                    });
                    t.images = Some(built.map_err(|e| format!("{e:#}")));
                }
                t
            });
            targets.push((arch, t.map_err(|e| format!("{e:#}"))));
        }
    }
    let queue = std::sync::Mutex::new(work.into_iter());
    let results = std::sync::Mutex::new((0usize, 0usize));
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let Some((arch, test)) = queue.lock().unwrap().next() else { break };
                let start = Instant::now();
                let target = &targets.iter().find(|(a, _)| *a == arch).unwrap().1;
                let r = match target {
                    Ok(t) => (test.run)(t),
                    Err(e) => Err(anyhow::anyhow!("preparing {}: {e}", arch.name())),
                };
                let secs = start.elapsed().as_secs_f64();
                let mut res = results.lock().unwrap();
                match r {
                    Ok(()) => {
                        res.0 += 1;
                        println!("ok {} {} ({secs:.1} s)", arch.name(), test.name);
                    }
                    Err(e) => {
                        res.1 += 1;
                        println!("FAILED {} {} ({secs:.1} s): {e:#}", arch.name(), test.name);
                    }
                }
            });
        }
    });
    results.into_inner().unwrap()
}

/// `--test NAME` values must name a test or a group of tests.
pub fn check_names(names: &[String]) -> Result<()> {
    for n in names {
        if !all_tests().any(|t| selects(n, t.name)) {
            let all: Vec<&str> = all_tests().map(|t| t.name).collect();
            bail!("unknown boot test '{n}' (tests: {})", all.join(", "));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn groups_select_their_cases() {
        assert!(super::selects("failures", "failures/no_device"));
        assert!(super::selects("failures/no_device", "failures/no_device"));
        assert!(!super::selects("fail", "failures/no_device"));
        assert!(!super::selects("main_path", "main_path_x"));
        super::check_names(&["device_names".into(), "respawn".into()]).unwrap();
        assert!(super::check_names(&["nope".into()]).is_err());
    }
}
