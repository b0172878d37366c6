//! PID 1: bring up the pseudo-filesystems and the console, read the command line, then
//! supervise. Every signal is blocked and read from one signalfd; the main loop waits in
//! exactly one place (ppoll) and reacts to what it read.

use crate::cmdline::{self, DebugAction};
use crate::log::{Level, Log};
use crate::watchdog::Watchdog;
use crate::{boot, fail, persist, rescue, services, stage2};
use syscall::entry::Args;
use syscall::fs::{self, OFlags};
use syscall::mount::{self, MountFlags};
use syscall::process::{self, Pid};
use syscall::signal::{self, MaskHow, SfdFlags, SigSet, Signal};
use syscall::system::{self, RebootCmd};
use syscall::time::{self, Clock};
use syscall::{BorrowedFd, Errno};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// /proc/cmdline is read into this buffer (the kernel's own limit is 2048 to 4096 bytes).
pub const CMDLINE_BYTES: usize = 4096;
/// Room for the legacy `autoserver_*` variables rewritten as `autoinit.*` keys.
pub const LEGACY_BYTES: usize = 1024;
/// A shell that lived shorter than this is restarted only after the same delay, so that a
/// broken /bin/sh cannot make PID 1 spin.
pub const RESPAWN_MIN_MS: u64 = 2000;

const USAGE: &str = "\
usage: autoinit COMMAND [ARGS]   (autoinit help: the commands)
autoinit is an init system: the kernel starts it as PID 1 (as /init in an initramfs).
Started as any other process without arguments it changes nothing and exits with status 2.
Its settings are autoinit.* keys on the kernel command line (docs/cmdline.md).
";

/// The signals PID 1 acts on; all others stay blocked and are discarded.
const HANDLED: SigSet = SigSet::EMPTY
    .with(Signal::CHLD)
    .with(Signal::TERM)
    .with(Signal::INT)
    .with(Signal::USR1)
    .with(Signal::USR2)
    .with(Signal::PWR)
    .with(Signal::HUP);

/// argv[1] of stage 2, exec'd by stage 1 from the new root.
pub const STAGE2_ARG: &core::ffi::CStr = c"--stage2";

/// Which PID 1 this is.
#[derive(Copy, Clone, PartialEq, Eq)]
enum Stage {
    /// Started by the kernel from the initramfs: the boot stage runs.
    Initramfs,
    /// Exec'd by the boot stage in the new root.
    Stage2,
    /// Re-exec'd by the panic policy: rescue shell only.
    AfterPanic,
}

pub fn main(args: Args) -> ! {
    if process::getpid() != Pid(1) {
        if args.argc() > 1 {
            crate::control::main(args);
        }
        let _ = fs::write_all(BorrowedFd::STDERR, USAGE.as_bytes());
        process::exit_group(2);
    }
    let stage = match args.arg(1) {
        Some(a) if a == fail::AFTER_PANIC_ARG => {
            fail::set_after_panic();
            Stage::AfterPanic
        }
        Some(a) if a == STAGE2_ARG => Stage::Stage2,
        _ => Stage::Initramfs,
    };
    run(args, stage)
}

fn run(args: Args, stage: Stage) -> ! {
    // Nothing may interrupt PID 1: signals are read from a signalfd.
    let _ = signal::sigprocmask(MaskHow::Set, &SigSet::FULL);
    // Ctrl-Alt-Del sends SIGINT (a reboot, through the orderly path) instead of resetting.
    let _ = system::reboot(RebootCmd::CadOff);

    let mut log = Log::console_only();
    // The signalfd comes back through `sigfd` so that the manager is returned straight into
    // this frame, not through a temporary (the copy would double this frame).
    let mut sigfd = None;
    let mut manager = start(args, stage, &mut log, &mut sigfd);
    manager.run(sigfd)
}

/// Everything up to the main loop: the boot stage (stage 1) or the units (stage 2). A
/// function of its own so that its large frame (the command line, the boot stage) is not
/// part of the stack under the loop, which releases it once the units have settled.
#[inline(never)]
fn start<'l>(args: Args, stage: Stage, log: &'l mut Log, sigfd_out: &mut Option<syscall::OwnedFd>) -> services::Manager<'l> {
    let after_panic = stage == Stage::AfterPanic;
    if stage == Stage::Stage2 {
        // /dev, /proc and /sys were moved here by stage 1; mounting them again would stack.
        let kmsg = log.open_kmsg();
        log!(log, Level::Info, "stage 2: running from /__autoinit__/autoinit");
        if let Err(e) = kmsg {
            log!(log, Level::Warn, "open /dev/kmsg: ", e, "; logging to the console only");
        }
    } else {
        // /dev first (for the console and /dev/kmsg), /proc next (console_loglevel); their
        // errors are reported once the log can reach kmsg.
        let dev = mount_pseudo(c"devtmpfs", c"/dev", MountFlags::NOSUID, Some(c"mode=0755"));
        let proc_ = mount_pseudo(c"proc", c"/proc", MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC, None);
        reopen_console();
        let kmsg = log.open_kmsg();
        log!(log, Level::Info, "autoinit ", VERSION, " starting as PID 1",
             if after_panic { " (rescue mode after a panic)" } else { "" });
        if let Err(e) = kmsg {
            log!(log, Level::Warn, "open /dev/kmsg: ", e, "; logging to the console only");
        }
        report_mount(&log, c"devtmpfs", c"/dev", dev);
        report_mount(&log, c"proc", c"/proc", proc_);
        let sys = mount_pseudo(c"sysfs", c"/sys", MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC, None);
        report_mount(&log, c"sysfs", c"/sys", sys);
        // Our boot lines must not fall to the kmsg rate limit (a cmdline printk.devkmsg= wins).
        write_file(c"/proc/sys/kernel/printk_devkmsg", b"on\n");
    }

    // The legacy autoserver_* variables first, so that the real autoinit.* keys win.
    let mut cmdline_buf = [0u8; LEGACY_BYTES + CMDLINE_BYTES];
    let legacy_len = cmdline::legacy_params(args.env().map(|e| e.to_bytes()), cmdline_buf.get_mut(..LEGACY_BYTES).unwrap_or(&mut []));
    let cmdline = read_cmdline(&log, &mut cmdline_buf, legacy_len);
    let parsed = cmdline::parse(cmdline);
    log.set_verbosity(parsed.settings.log);
    // Stage 1 already reported the command line's problems.
    let warnings: &[cmdline::Warning<'_>] = if stage == Stage::Stage2 { &[] } else { &parsed.warnings };
    for w in warnings {
        match (w.problem, w.value) {
            ("unknown key", _) => log!(log, Level::Warn, "kernel command line: unknown key ", w.key),
            (problem, Some(v)) => log!(log, Level::Warn, "kernel command line: ", w.key, "=", v, ": ", problem),
            (problem, None) => log!(log, Level::Warn, "kernel command line: ", w.key, ": ", problem),
        }
    }
    if parsed.dropped_warnings > 0 && stage != Stage::Stage2 {
        log!(log, Level::Warn, "kernel command line: ", parsed.dropped_warnings, " more bad autoinit.* keys not shown");
    }
    if parsed.settings.debug == Some(DebugAction::Panic) && !after_panic {
        // Requested by autoinit.debug=panic, to test the panic policy.
        panic!("deliberate panic (autoinit.debug=panic)"); // allow-panic: deliberate test hook
    }

    let sigfd = match signal::signalfd(&HANDLED, SfdFlags::NONBLOCK | SfdFlags::CLOEXEC) {
        Ok(fd) => Some(fd),
        Err(e) => {
            log!(log, Level::Error, "signalfd: ", e, "; reaping once a second, signals stay pending");
            None
        }
    };
    let env = rescue::environment(args.env());
    let log: &'l Log = log;
    let mut manager = services::Manager::new(log, env);
    match stage {
        Stage::Initramfs => {
            match boot::run(&log, &parsed.settings, manager.shell_env()) {
                boot::Outcome::NoSystem => log!(log, Level::Info, "nothing to boot: starting the rescue shell"),
                boot::Outcome::Failed => log!(log, Level::Error, "the boot stage failed: starting the rescue shell"),
            }
            manager.with_rescue_shell();
        }
        Stage::Stage2 => {
            stage2::setup(&log, &parsed.settings);
            if let Some((dev, secs)) = parsed.settings.watchdog {
                let now = time::clock_gettime(Clock::Monotonic).as_millis();
                manager.set_watchdog(Watchdog::open(&log, dev, secs, now));
            }
            if parsed.settings.rescue {
                log!(log, Level::Info, "autoinit.rescue: starting the rescue shell instead of services");
                manager.with_rescue_shell();
            } else if manager.load() == 0 {
                log!(log, Level::Info, "no services: starting the rescue shell");
                manager.with_rescue_shell();
            }
            manager.set_boot_image(persist::boot_image(&parsed.settings));
            // A trial boot of a persisted upgrade is judged by the units' health (no units:
            // healthy). With autoinit.rescue someone is looking into it: the trial stays open.
            if let Some(bi) = persist::boot_image(&parsed.settings).filter(|_| !parsed.settings.rescue) {
                if let Some(left) = persist::trial(&bi) {
                    log!(log, Level::Info, "trial boot (", u32::from(left), " tries left): waiting for every unit to be healthy for ", persist::TRIAL_SETTLE_MS / 1000, " s");
                    manager.watch_trial(bi);
                }
            }
        }
        Stage::AfterPanic => manager.with_rescue_shell(),
    }
    *sigfd_out = sigfd;
    manager
}

/// Mounts a pseudo-filesystem, creating the mount point; "already mounted" is success.
fn mount_pseudo(fstype: &core::ffi::CStr, target: &core::ffi::CStr, flags: MountFlags, data: Option<&core::ffi::CStr>) -> Result<(), Errno> {
    match fs::mkdirat(BorrowedFd::CWD, target, 0o755) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e),
    }
    match mount::mount(Some(fstype), target, Some(fstype), flags, data) {
        Ok(()) | Err(Errno::EBUSY) => Ok(()),
        Err(e) => Err(e),
    }
}

fn report_mount(log: &Log, fstype: &core::ffi::CStr, target: &core::ffi::CStr, r: Result<(), Errno>) {
    match r {
        Ok(()) => log!(log, Level::Debug, "mounted ", fstype, " on ", target),
        Err(e) => log!(log, Level::Error, "mount ", fstype, " on ", target, ": ", e),
    }
}

/// Makes fds 0, 1 and 2 the console, whatever the kernel left us (nothing, if the
/// initramfs had no /dev/console).
fn reopen_console() {
    if let Ok(fd) = fs::open(c"/dev/console", OFlags::RDWR | OFlags::NOCTTY, 0) {
        rescue::install_as_stdio(fd);
    }
}

/// Reads /proc/cmdline into `buf` after its first `start` bytes; returns all of it as text.
fn read_cmdline<'b>(log: &Log, buf: &'b mut [u8], start: usize) -> &'b str {
    let n = match fs::open(c"/proc/cmdline", OFlags::RDONLY | OFlags::CLOEXEC, 0) {
        Ok(fd) => match fs::read_full(&fd, buf.get_mut(start..).unwrap_or(&mut [])) {
            Ok(n) => start + n,
            Err(e) => {
                log!(log, Level::Error, "read /proc/cmdline: ", e, "; using defaults");
                0
            }
        },
        Err(e) => {
            log!(log, Level::Error, "open /proc/cmdline: ", e, "; using defaults");
            start
        }
    };
    let bytes = buf.get(..n).unwrap_or(&[]);
    match core::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            log!(log, Level::Warn, "kernel command line: not UTF-8 at byte ", e.valid_up_to(), "; ignoring the rest");
            core::str::from_utf8(bytes.get(..e.valid_up_to()).unwrap_or(&[])).unwrap_or("")
        }
    }
}

fn write_file(path: &core::ffi::CStr, data: &[u8]) {
    if let Ok(fd) = fs::open(path, OFlags::WRONLY | OFlags::CLOEXEC, 0) {
        let _ = fs::write(&fd, data);
    }
}
