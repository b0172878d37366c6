//! Service-manager tests (issue 4). Each boots the product flow (boot disk, squashfs system
//! image, stage 2) with an image whose `/etc/autoinit/services` holds test units, and checks the
//! manager from the console: its own lines, the services' output that it sends to /dev/kmsg
//! (which the kernel echoes with a timestamp), and commands typed into a shell that is itself
//! a unit (`console.service`: StandardInput=tty on the board's console, Restart=always).
//!
//! - `supervise` (x86_64): most of the issue's list in one boot: a long-running daemon, a
//!   crashing one (backoff, then failed), a oneshot, a notify daemon, a non-root service with
//!   MemoryMax/TasksMax, a dependency chain, a getty on a second serial port, orphans reaped,
//!   `stop` emptying a group, `reload` adding and removing units, a non-root client refused,
//!   garbage on the control socket, a bad unit file, and a poweroff bounded by TimeoutStopSec
//!   although a service ignores SIGTERM.
//! - `supervise_watchdog` (x86_64): an i6300esb watchdog armed at 3 s with QEMU set to power
//!   off when it fires; the machine stays up for several timeouts, poweroff disarms it.
//! - `supervise_basic` (aarch64 too): services start, `status`, poweroff.
//! - `supervise_faults` (x86_64, in supervise_fault_tests.rs): a fork storm of orphans, an
//!   output flood, 505 unit files, a full /run.

use crate::arch::Arch;
use crate::boot_tests::{check, Target, Test, BOOT, EXIT, START, STEP};
use crate::images::{self, ExtraFile};
use crate::qemu::Vm;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The control client, as services and the shell find it.
pub(crate) const CLIENT: &str = "/__autoinit__/autoinit";
/// The non-root user of the image.
const USER: &str = "svc";
const USER_ID: u32 = 1000;
/// What `limited.service` asks for, and what its cgroup files must then say.
const MEMORY_MAX: &str = "32M";
const MEMORY_MAX_BYTES: u64 = 32 << 20;
const TASKS_MAX: u32 = 8;
/// `stubborn.service` ignores SIGTERM: poweroff must SIGKILL it after this long.
const STUBBORN_TIMEOUT_S: u64 = 3;
/// /etc/issue of the image: the getty prints it on the second serial port.
const ISSUE: &str = "autoinit test getty on the second serial port";
/// What the getty unit's shell echoes before it execs getty: its stdout is the tty.
const GETTY_STDOUT: &str = "getty-stdout-is-the-tty";
/// From the start line to the manager's first lines (boot stage, modules, stage 2).
pub(crate) const TO_SERVICES: Duration = Duration::from_secs(90);
/// For the watchdog test: how long the machine must stay up with the watchdog armed.
const WATCHDOG_UP: Duration = Duration::from_secs(15);
const WATCHDOG_SECS: u32 = 3;

/// The console lines of the manager (see init/services.rs).
pub(crate) mod lines {
    pub fn loaded(n: usize) -> String {
        format!("autoinit: services: {n} units loaded from /etc/autoinit/services")
    }
    pub fn started(unit: &str) -> String {
        format!("autoinit: {unit}: started (pid ")
    }
    pub fn unit(unit: &str, what: &str) -> String {
        format!("autoinit: {unit}: {what}")
    }
}

// ---------------------------------------------------------------------------------------------
// The images

/// A unit file: `[Unit]` with a description (and `unit` lines), `[Service]` with `service`.
pub(crate) fn unit_file(description: &str, unit: &[&str], service: &[&str]) -> String {
    let mut s = format!("[Unit]\nDescription={description}\n");
    for l in unit {
        s.push_str(l);
        s.push('\n');
    }
    s.push_str("\n[Service]\n");
    for l in service {
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// The shell the test types into: on the board's console, restarted if it exits; SIGHUP stops
/// it (an interactive shell ignores SIGTERM).
pub(crate) fn console_unit(console: &str) -> String {
    unit_file(
        "Shell on the serial console, for the test to type into",
        &[],
        &[
            "ExecStart=/bin/sh",
            "StandardInput=tty",
            "StandardOutput=tty",
            "StandardError=tty",
            &format!("TTYPath=/dev/{console}"),
            "Restart=always",
            "KillSignal=SIGHUP",
        ],
    )
}

pub(crate) fn daemon_unit() -> String {
    unit_file("A long-running daemon", &[], &["ExecStart=/bin/sh -c 'echo daemon up; exec sleep 100000'", "Restart=always"])
}

fn oneshot_unit() -> String {
    unit_file(
        "Two commands, run once",
        &[],
        &["Type=oneshot", "ExecStart=/bin/sh -c 'echo oneshot ran > /run/oneshot.out'", "ExecStart=/bin/echo oneshot second command"],
    )
}

fn notifier_unit() -> String {
    unit_file("sd_notify readiness after 1.5 s", &[], &["Type=notify", "ExecStart=/usr/bin/notify-daemon --delay-ms 1500"])
}

/// `(file name, contents)` of the units of the `supervise` test.
fn full_units(console: &str, getty_tty: &str) -> Vec<(String, String)> {
    let sleeper = "ExecStart=/bin/sleep 100000";
    let mut u: Vec<(&str, String)> = vec![
        ("console", console_unit(console)),
        ("daemon", daemon_unit()),
        ("crasher", unit_file("Exits with status 3 at once", &[], &["ExecStart=/bin/sh -c 'echo crashing; exit 3'", "Restart=on-failure", "RestartSec=200ms"])),
        ("dependent", unit_file("Needs the crasher", &["Requires=crasher.service", "After=crasher.service"], &[sleeper])),
        ("oneshot", oneshot_unit()),
        ("notifier", notifier_unit()),
        ("after-notify", unit_file("Starts once the notifier is ready", &["After=notifier.service", "Requires=notifier.service"], &[sleeper])),
        (
            "limited",
            unit_file(
                "A non-root service with limits",
                &[],
                &[sleeper, &format!("User={USER}"), &format!("Group={USER}"), &format!("MemoryMax={MEMORY_MAX}"), &format!("TasksMax={TASKS_MAX}")],
            ),
        ),
        ("chain-a", unit_file("Top of the chain", &["After=chain-b.service", "Requires=chain-b.service"], &[sleeper])),
        ("chain-b", unit_file("Middle of the chain", &["After=chain-c.service", "Requires=chain-c.service"], &[sleeper])),
        ("chain-c", unit_file("Bottom of the chain: takes a second", &[], &["Type=oneshot", "ExecStart=/bin/sleep 1"])),
        ("missing-req", unit_file("Requires a unit that does not exist", &["Requires=nosuch.service"], &[sleeper])),
        ("forky", unit_file("Three processes in its group", &[], &["ExecStart=/bin/sh -c 'sleep 100000 & sleep 100000 & exec sleep 100000'"])),
        ("needs-forky", unit_file("Stopped when forky is stopped by hand", &["After=forky.service", "Requires=forky.service"], &[sleeper])),
        ("needs-needs-forky", unit_file("Stopped through needs-forky", &["After=needs-forky.service", "Requires=needs-forky.service"], &[sleeper])),
        (
            "orphans",
            unit_file("Leaves children behind when it exits", &[], &["ExecStart=/bin/sh -c 'for i in 1 2 3 4 5 6 7 8; do sleep 30 & done; echo left 8 children'"]),
        ),
        (
            "stubborn",
            unit_file(
                "Ignores SIGTERM",
                &[],
                &["ExecStart=/bin/sh -c 'trap \"\" TERM; echo ignoring SIGTERM; while :; do sleep 1; done'", &format!("TimeoutStopSec={STUBBORN_TIMEOUT_S}")],
            ),
        ),
        (
            "peercred",
            unit_file(
                "A non-root control client with an ambient capability",
                &[],
                &[
                    "Type=oneshot",
                    &format!("User={USER}"),
                    "AmbientCapabilities=CAP_DAC_OVERRIDE",
                    &format!("ExecStart=/bin/sh -c 'grep CapAmb /proc/self/status; {CLIENT} status; echo \"client exit $$?\"'"),
                ],
            ),
        ),
        ("warned", unit_file("Has an unknown key", &[], &[sleeper, "Frobnicate=yes"])),
        ("broken", unit_file("Has a bad Type=", &[], &["Type=bogus", "ExecStart=/bin/true"])),
        ("removable", unit_file("Removed by reload", &[], &[sleeper])),
    ];
    if !getty_tty.is_empty() {
        u.push((
            "getty",
            unit_file(
                "A getty on the second serial port",
                &[],
                // No StandardOutput=: with a tty on stdin it defaults to that tty (systemd's
                // `inherit`), so the echo must reach the second port, not the kernel log.
                &[&format!("ExecStart=/bin/sh -c 'echo {GETTY_STDOUT}; exec /sbin/getty -L 115200 {getty_tty} vt100'"), "StandardInput=tty", &format!("TTYPath=/dev/{getty_tty}"), "Restart=always"],
            ),
        ));
    }
    u.into_iter().map(|(n, t)| (n.to_string(), t)).collect()
}

/// Units of the `supervise_basic` and `supervise_watchdog` tests.
fn basic_units(console: &str) -> Vec<(String, String)> {
    vec![
        ("console".to_string(), console_unit(console)),
        ("daemon".to_string(), daemon_unit()),
        ("oneshot".to_string(), oneshot_unit()),
        ("notifier".to_string(), notifier_unit()),
    ]
}

/// Serialises image builds: two tests of one arch may start at the same time.
static BUILD: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Builds the boot disk `disk-<name>.img` for `t`'s arch: the good image plus the test
/// programs, a non-root user, /etc/issue and `units`.
pub(crate) fn build_disk(t: &Target, name: &str, units: &[(String, String)]) -> Result<PathBuf> {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let q = t.board.qemu.as_ref().context("board without [qemu]")?;
    let busybox = crate::debian::busybox(&q.debian_arch)?;
    let notify = crate::notify_daemon::build_notify_daemon(t.arch)?;
    let unix_send = notify.with_file_name("unix-send");
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let mut files = vec![
        ExtraFile { path: "usr/bin/notify-daemon".into(), data: read(&notify)?, mode: 0o755 },
        ExtraFile { path: "usr/bin/unix-send".into(), data: read(&unix_send)?, mode: 0o755 },
        ExtraFile {
            path: "etc/passwd".into(),
            data: format!("root:x:0:0:root:/root:/bin/sh\n{USER}:x:{USER_ID}:{USER_ID}:service user:/tmp:/bin/sh\n").into_bytes(),
            mode: 0o644,
        },
        ExtraFile { path: "etc/group".into(), data: format!("root:x:0:\n{USER}:x:{USER_ID}:\n").into_bytes(), mode: 0o644 },
        ExtraFile { path: "etc/issue".into(), data: format!("{ISSUE}\n").into_bytes(), mode: 0o644 },
    ];
    for (n, text) in units {
        files.push(ExtraFile { path: format!("etc/autoinit/services/{n}.service"), data: text.clone().into_bytes(), mode: 0o644 });
    }
    images::custom_disk(t.arch, &busybox, name, &files)
}

// ---------------------------------------------------------------------------------------------
// Reading the console

/// Polls the whole console (not just past the cursor) until a line satisfies `want`.
pub(crate) fn await_line(vm: &Vm, what: &str, want: impl Fn(&str) -> bool, timeout: Duration) -> Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(l) = vm.text().lines().find(|l| want(l)) {
            return Ok(l.to_string());
        }
        vm.check_no_kernel_panic()?;
        if Instant::now() >= deadline {
            return Err(vm.fail(format!("waiting {:.0} s for {what}", timeout.as_secs_f64())));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits for a line containing `text` anywhere on the console.
pub(crate) fn await_text(vm: &Vm, text: &str, timeout: Duration) -> Result<String> {
    await_line(vm, &format!("a line containing '{text}'"), |l| l.contains(text), timeout)
}

/// The index of the first console line containing `text`.
fn line_no(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle))
}

/// Fails unless the console lines containing `order` appear, each once at least, in that
/// order (first occurrences).
pub(crate) fn in_order(vm: &Vm, order: &[&str]) -> Result<()> {
    let text = vm.text();
    let mut prev: Option<(usize, &str)> = None;
    for &n in order {
        let Some(i) = line_no(&text, n) else { return Err(vm.fail(format!("no line containing '{n}'"))) };
        if let Some((p, pn)) = prev {
            check(vm, i > p, format!("'{n}' (line {i}) came before '{pn}' (line {p}); expected the order {order:?}"))?;
        }
        prev = Some((i, n));
    }
    Ok(())
}

/// The kernel's timestamp of a console line (`[   12.345678] ...`), in seconds. Shell output
/// may come first on the same line (`/ # [   12.345678] ...`).
pub(crate) fn stamp(line: &str) -> Option<f64> {
    line.match_indices('[').find_map(|(i, _)| {
        let inner = line[i + 1..].split(']').next()?.trim();
        let (secs, frac) = inner.split_once('.')?;
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if digits(secs) && digits(frac) { inner.parse().ok() } else { None }
    })
}

/// The pid in `autoinit: NAME: started (pid N)`.
pub(crate) fn started_pid(line: &str) -> Option<u32> {
    line.split("(pid ").nth(1)?.split(')').next()?.parse().ok()
}

/// One row of `autoinit status`.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub name: String,
    pub state: String,
    pub pid: Option<u32>,
    pub restarts: u32,
    pub last_exit: String,
}

/// Parses the rows of `autoinit status` output; kernel lines mixed in (`[ 1.2] ...`) and the
/// header are skipped.
fn parse_status(out: &str) -> Vec<Row> {
    out.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 6 || f[0] == "NAME" || f[0].starts_with('[') {
                return None;
            }
            let pid = if f[2] == "-" { None } else { Some(f[2].parse().ok()?) };
            let restarts = f[3].parse().ok()?;
            Some(Row { name: f[0].into(), state: f[1].into(), pid, restarts, last_exit: f[5..].join(" ") })
        })
        .collect()
}

/// `autoinit status`, parsed; fails unless it exits 0.
pub(crate) fn status(vm: &mut Vm) -> Result<Vec<Row>> {
    let out = vm.run(&format!("{CLIENT} status"))?;
    let rows = parse_status(&out);
    check(vm, !rows.is_empty(), format!("`autoinit status` printed no rows:\n{out}"))?;
    Ok(rows)
}

pub(crate) fn row<'r>(vm: &Vm, rows: &'r [Row], name: &str) -> Result<&'r Row> {
    rows.iter().find(|r| r.name == name).ok_or_else(|| vm.fail(format!("`autoinit status` has no row for {name}: {rows:?}")))
}

/// Fails unless unit `name` is in `state` (and, for `running`, has a pid).
pub(crate) fn expect_state(vm: &Vm, rows: &[Row], name: &str, state: &str) -> Result<()> {
    let r = row(vm, rows, name)?;
    check(vm, r.state == state, format!("{name} is {}, expected {state}: {r:?}", r.state))?;
    if state == "running" {
        check(vm, r.pid.is_some(), format!("{name} is running without a pid: {r:?}"))?;
    }
    Ok(())
}

/// Waits until `autoinit status NAME` reports `state`.
fn await_state(vm: &mut Vm, name: &str, state: &str, timeout: Duration) -> Result<Row> {
    let deadline = Instant::now() + timeout;
    loop {
        let out = vm.run(&format!("{CLIENT} status {name}"))?;
        if let Some(r) = parse_status(&out).into_iter().find(|r| r.name == name && r.state == state) {
            return Ok(r);
        }
        if Instant::now() >= deadline {
            return Err(vm.fail(format!("{name} did not reach state {state} within {:.0} s; last: {out}", timeout.as_secs_f64())));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Runs `cmd`, returns (output, status).
pub(crate) fn sh(vm: &mut Vm, cmd: &str) -> Result<(String, i32)> {
    vm.run_status(cmd, STEP)
}

/// Boots to the console shell unit: the manager's load line, the shell's start line, and a
/// shell that answers.
pub(crate) fn to_console_shell(vm: &mut Vm, loaded: usize) -> Result<()> {
    await_text(vm, START, BOOT)?;
    await_text(vm, &lines::loaded(loaded), TO_SERVICES)?;
    await_text(vm, &lines::started("console"), STEP)?;
    vm.wait_shell(STEP)?;
    // The rescue shell must not run when there are units.
    let text = vm.text();
    check(vm, !text.contains("autoinit: starting rescue shell"), "a rescue shell started although there are units")
}

/// `autoinit poweroff` from the console shell: the control request line, every service
/// stopped, the shutdown lines and QEMU's exit. Returns the kernel timestamps of the request
/// line and of `reboot: Power down`.
pub(crate) fn poweroff(vm: &mut Vm) -> Result<(f64, f64)> {
    vm.send_line(&format!("{CLIENT} poweroff"))?;
    let req = vm.expect_line("autoinit: control request: powering off; stopping services", STEP)?;
    vm.expect("autoinit: all services stopped", Duration::from_secs(60))?;
    for l in ["autoinit: sending SIGTERM to all processes", "autoinit: syncing filesystems", "autoinit: unmounting filesystems"] {
        vm.expect(l, STEP)?;
    }
    let down = vm.expect_line("reboot: Power down", STEP)?;
    vm.wait_exit(EXIT)?;
    vm.check_no_kernel_panic()?;
    let t0 = stamp(&req).ok_or_else(|| vm.fail(format!("no timestamp on '{req}'")))?;
    let t1 = stamp(&down).ok_or_else(|| vm.fail(format!("no timestamp on '{down}'")))?;
    Ok((t0, t1))
}

// ---------------------------------------------------------------------------------------------
// supervise (x86_64)

fn supervise(t: &Target) -> Result<()> {
    let console = t.board.console.clone();
    // The second serial port of the PC: COM2.
    let getty_tty = "ttyS1";
    let units = full_units(&console, getty_tty);
    let disk = build_disk(t, "supervise", &units)?;
    let getty_out = crate::qemu::log_dir().join(format!("{}.serial1", t.log_name("supervise")));
    let _ = std::fs::remove_file(&getty_out);
    let serial1 = format!("file:{}", getty_out.display());
    let mut vm = t.boot_custom("supervise", "autoinit.boot=LABEL=AUTOSVR", &[disk], None, &["-serial".into(), serial1])?;
    let loadable = units.len() - 1; // broken.service is rejected
    to_console_shell(&mut vm, loadable)?;

    bad_unit_file(&mut vm, &units)?;
    start_order(&mut vm)?;
    crash_backoff(&mut vm)?;
    all_states(&mut vm)?;
    limits(&mut vm)?;
    notify(&mut vm)?;
    output_and_log(&mut vm)?;
    orphans(&mut vm)?;
    stop_empties_group(&mut vm)?;
    reload(&mut vm)?;
    refuse_non_root(&mut vm)?;
    garbage(&mut vm)?;
    getty(&vm, &getty_out)?;

    let (t0, t1) = poweroff(&mut vm)?;
    shutdown_order(&vm, t0, t1)
}

/// `broken.service` is rejected with file, line and key; `warned.service` gets a warning and
/// runs; the other units run (checked by [`all_states`]).
fn bad_unit_file(vm: &mut Vm, units: &[(String, String)]) -> Result<()> {
    let broken = &units.iter().find(|(n, _)| n == "broken").context("no broken unit")?.1;
    let n = broken.lines().position(|l| l.starts_with("Type=")).context("broken unit without Type=")? + 1;
    let want = format!("autoinit: /etc/autoinit/services/broken.service:{n}: Type: ");
    let l = await_text(vm, &want, STEP)?;
    check(vm, l.ends_with("; unit not loaded"), format!("the error for broken.service does not end with '; unit not loaded': {l}"))?;
    let warned = &units.iter().find(|(n, _)| n == "warned").context("no warned unit")?.1;
    let n = warned.lines().position(|l| l.starts_with("Frobnicate=")).context("no Frobnicate=")? + 1;
    await_text(vm, &format!("autoinit: warning: /etc/autoinit/services/warned.service:{n}: Frobnicate: unknown key"), STEP)?;
    Ok(())
}

/// After/Requires: chain-c (a oneshot) finishes before chain-b starts, chain-b starts before
/// chain-a; the notify daemon's dependant waits for READY=1; a Requires= of a missing unit and
/// of a failed one fail the dependant with the reason.
fn start_order(vm: &mut Vm) -> Result<()> {
    await_text(vm, &lines::started("chain-a"), STEP)?;
    in_order(vm, &[&lines::started("chain-c"), &lines::unit("chain-c", "finished"), &lines::started("chain-b"), &lines::started("chain-a")])?;
    // chain-c sleeps 1 s: chain-b must have waited that long.
    let text = vm.text();
    let at = |n: &str| text.lines().find(|l| l.contains(n)).and_then(stamp);
    if let (Some(c), Some(b)) = (at(&lines::started("chain-c")), at(&lines::started("chain-b"))) {
        check(vm, b - c >= 0.9, format!("chain-b started {:.2} s after chain-c, which sleeps 1 s first", b - c))?;
    }
    await_text(vm, &lines::started("after-notify"), STEP)?;
    in_order(vm, &[&lines::started("notifier"), &lines::unit("notifier", "ready"), &lines::started("after-notify")])?;
    await_text(vm, &lines::unit("missing-req", "failed: requires nosuch, which does not exist"), STEP)?;
    let text = vm.text();
    check(vm, !text.contains(&lines::started("missing-req")), "missing-req started although it requires a missing unit")?;
    Ok(())
}

/// crasher: restarts after 200, 400, 800, 1600 ms, then fails (5 starts in the window); its
/// dependant fails with it.
fn crash_backoff(vm: &mut Vm) -> Result<()> {
    let fail = lines::unit("crasher", "failed: restarted too often (5 times in 60 s)");
    await_text(vm, &fail, Duration::from_secs(30))?;
    let delays = [200, 400, 800, 1600];
    let mut order: Vec<String> = Vec::new();
    for d in delays {
        order.push(lines::unit("crasher", &format!("restarting in {d} ms")));
    }
    order.push(fail.clone());
    in_order(vm, &order.iter().map(String::as_str).collect::<Vec<_>>())?;
    let text = vm.text();
    let starts: Vec<f64> = text.lines().filter(|l| l.contains(&lines::started("crasher"))).filter_map(stamp).collect();
    check(vm, starts.len() == 5, format!("crasher started {} times, expected 5", starts.len()))?;
    // Each restart waited its delay at least (the kernel's clock; a little slack for rounding).
    for (k, d) in delays.iter().enumerate() {
        let gap = starts[k + 1] - starts[k];
        check(vm, gap >= *d as f64 / 1000.0 - 0.01, format!("crasher restart {} came {gap:.3} s after the previous start, expected at least {d} ms", k + 1))?;
    }
    let exits = text.lines().filter(|l| l.contains(": crasher: main process (pid ") && l.contains(") exited with status 3")).count();
    check(vm, exits == 5, format!("{exits} 'crasher: main process (pid N) exited with status 3' lines, expected 5"))?;
    // dependent (a simple service) was running: it is stopped, with the reason.
    await_text(vm, "autoinit: warning: dependent: stopping: required unit crasher failed", STEP)?;
    await_text(vm, &lines::unit("dependent", "stopped"), STEP)?;
    Ok(())
}

/// `autoinit status`: every unit in the state it should be in.
fn all_states(vm: &mut Vm) -> Result<()> {
    // orphans' main exits at once; peercred and oneshot finish quickly.
    await_state(vm, "peercred", "exited", STEP)?;
    let rows = status(vm)?;
    for name in ["console", "daemon", "notifier", "after-notify", "limited", "chain-a", "chain-b", "forky", "needs-forky", "needs-needs-forky", "stubborn", "warned", "removable", "getty"] {
        expect_state(vm, &rows, name, "running")?;
    }
    for name in ["oneshot", "chain-c", "peercred"] {
        expect_state(vm, &rows, name, "exited")?;
    }
    for name in ["crasher", "missing-req"] {
        expect_state(vm, &rows, name, "failed")?;
    }
    for name in ["orphans", "dependent"] {
        expect_state(vm, &rows, name, "inactive")?;
    }
    let crasher = row(vm, &rows, "crasher")?;
    check(vm, crasher.restarts == 4 && crasher.last_exit == "status 3", format!("crasher: {crasher:?}, expected 4 restarts and last exit 'status 3'"))?;
    let daemon = row(vm, &rows, "daemon")?;
    check(vm, daemon.restarts == 0 && daemon.last_exit == "-", format!("daemon: {daemon:?}, expected no restarts and no exit"))?;
    let oneshot = row(vm, &rows, "oneshot")?;
    check(vm, oneshot.last_exit == "status 0", format!("oneshot: {oneshot:?}, expected last exit 'status 0'"))?;
    check(vm, !rows.iter().any(|r| r.name == "broken"), "broken.service was loaded")?;
    let (out, code) = sh(vm, &format!("{CLIENT} status nosuch"))?;
    check(vm, code == 1 && out.contains("autoinit: no such unit"), format!("`status nosuch` exited {code} with '{out}', expected 1 and 'autoinit: no such unit'"))?;
    Ok(())
}

/// limited.service runs as the non-root user, in its cgroup with MemoryMax and TasksMax.
fn limits(vm: &mut Vm) -> Result<()> {
    let rows = status(vm)?;
    let pid = row(vm, &rows, "limited")?.pid.context("limited has no pid")?;
    let ids = vm.run(&format!("grep -E '^(Uid|Gid):' /proc/{pid}/status"))?;
    for key in ["Uid:", "Gid:"] {
        let l = ids.lines().find(|l| l.starts_with(key)).unwrap_or("");
        let f: Vec<&str> = l.split_whitespace().skip(1).collect();
        check(vm, f.len() == 4 && f.iter().all(|v| *v == USER_ID.to_string()), format!("limited (pid {pid}) {key} '{l}', expected {USER_ID} four times"))?;
    }
    let cg = vm.run(&format!("cat /proc/{pid}/cgroup"))?;
    check(vm, cg.lines().any(|l| l.trim() == "0::/autoinit/limited"), format!("limited (pid {pid}) is in cgroup '{cg}', expected 0::/autoinit/limited"))?;
    let mem = vm.run("cat /sys/fs/cgroup/autoinit/limited/memory.max")?;
    check(vm, mem.trim() == MEMORY_MAX_BYTES.to_string(), format!("memory.max of limited is '{mem}', expected {MEMORY_MAX_BYTES}"))?;
    let pids = vm.run("cat /sys/fs/cgroup/autoinit/limited/pids.max")?;
    check(vm, pids.trim() == TASKS_MAX.to_string(), format!("pids.max of limited is '{pids}', expected {TASKS_MAX}"))?;
    // Root's services are not limited.
    let mem = vm.run("cat /sys/fs/cgroup/autoinit/daemon/memory.max")?;
    check(vm, mem.trim() == "max", format!("memory.max of daemon is '{mem}', expected max"))
}

/// The notify daemon: READY=1 made it running (and its STATUS= shows in `status NAME`); its
/// output reached kmsg.
fn notify(vm: &mut Vm) -> Result<()> {
    let out = vm.run(&format!("{CLIENT} status notifier"))?;
    let r = parse_status(&out).into_iter().find(|r| r.name == "notifier");
    check(vm, r.as_ref().is_some_and(|r| r.state == "running"), format!("`status notifier`: {out}"))?;
    check(vm, out.lines().any(|l| l.trim() == "running"), format!("`status notifier` does not show its STATUS=running:\n{out}"))?;
    let pid = r.and_then(|r| r.pid).context("notifier without pid")?;
    await_text(vm, &format!("notifier[{pid}]: notify-daemon: ready (pid {pid})"), STEP)?;
    // Readiness came after its 1.5 s delay.
    let text = vm.text();
    let at = |n: &str| text.lines().find(|l| l.contains(n)).and_then(stamp);
    if let (Some(s), Some(r)) = (at(&lines::started("notifier")), at(&lines::unit("notifier", "ready"))) {
        check(vm, r - s >= 1.4, format!("notifier was ready {:.2} s after its start; it sends READY=1 after 1.5 s", r - s))?;
    }
    Ok(())
}

/// Service output goes to kmsg as `NAME[PID]: text`; `autoinit log NAME` reads it back; the
/// oneshot ran both commands.
fn output_and_log(vm: &mut Vm) -> Result<()> {
    let text = vm.text();
    let pid = text.lines().find(|l| l.contains(&lines::started("daemon"))).and_then(started_pid).context("no daemon start line")?;
    await_text(vm, &format!("daemon[{pid}]: daemon up"), STEP)?;
    let log = vm.run(&format!("{CLIENT} log daemon"))?;
    check(vm, log.lines().any(|l| l.contains(&format!("daemon[{pid}]: daemon up"))), format!("`autoinit log daemon` lacks 'daemon[{pid}]: daemon up':\n{log}"))?;
    check(vm, !log.lines().any(|l| l.contains("crasher[")), format!("`autoinit log daemon` shows another unit's lines:\n{log}"))?;
    let ran = vm.run("cat /run/oneshot.out")?;
    check(vm, ran.trim() == "oneshot ran", format!("/run/oneshot.out is '{ran}'"))?;
    await_text(vm, "]: oneshot second command", STEP)?;
    await_text(vm, &lines::unit("oneshot", "finished"), STEP)?;
    Ok(())
}

/// Orphans are reaped: those of orphans.service (killed with its group when its main process
/// exited) and those the shell leaves (re-parented to PID 1, reaped when they exit). No zombie
/// is left.
fn orphans(vm: &mut Vm) -> Result<()> {
    await_text(vm, "]: left 8 children", STEP)?;
    vm.run("sh -c 'for i in 1 2 3 4 5 6 7 8 9 10; do sleep 2 & done; echo $! > /tmp/orphan'")?;
    let ppid = vm.run("grep PPid /proc/$(cat /tmp/orphan)/status")?;
    check(vm, ppid.split_whitespace().nth(1) == Some("1"), format!("the shell's orphan was not re-parented to PID 1: {ppid}"))?;
    vm.run("sleep 3")?;
    let (st, code) = sh(vm, "cat /proc/$(cat /tmp/orphan)/stat")?;
    check(vm, code != 0, format!("the orphan was not reaped: {st}"))?;
    // /proc/PID/stat: `pid (comm) S ...`, the state after the command name.
    let (z, _) = sh(vm, "cat /proc/[0-9]*/stat 2>/dev/null | grep ') Z '; true")?;
    check(vm, !z.lines().any(|l| l.contains(") Z ")), format!("zombies left:\n{z}"))?;
    let (procs, _) = sh(vm, "cat /sys/fs/cgroup/autoinit/orphans/cgroup.procs 2>/dev/null")?;
    check(vm, procs.trim().is_empty(), format!("orphans.service's group still has processes: {procs}"))
}

/// `stop` kills every process of the group and removes it; `start` brings the unit back
/// with a new pid.
fn stop_empties_group(vm: &mut Vm) -> Result<()> {
    let procs = vm.run("cat /sys/fs/cgroup/autoinit/forky/cgroup.procs")?;
    let pids: Vec<u32> = procs.split_whitespace().filter_map(|p| p.parse().ok()).collect();
    check(vm, pids.len() == 3, format!("forky's group holds {} processes, expected 3: {procs}", pids.len()))?;
    let (out, code) = sh(vm, &format!("{CLIENT} stop forky"))?;
    check(vm, code == 0, format!("`autoinit stop forky` exited {code}: {out}"))?;
    await_text(vm, &lines::unit("forky", "stopped"), STEP)?;
    for p in &pids {
        let (_, gone) = sh(vm, &format!("test -e /proc/{p}"))?;
        check(vm, gone != 0, format!("process {p} of forky is still there after stop"))?;
    }
    let (_, exists) = sh(vm, "test -d /sys/fs/cgroup/autoinit/forky")?;
    if exists == 0 {
        let left = vm.run("cat /sys/fs/cgroup/autoinit/forky/cgroup.procs")?;
        check(vm, left.trim().is_empty(), format!("forky's group is not empty after stop: {left}"))?;
    }
    // What Requires= forky, directly or not, is stopped with it and says why.
    await_text(vm, "autoinit: warning: needs-forky: stopping: required unit forky is stopped", STEP)?;
    await_text(vm, "autoinit: warning: needs-needs-forky: stopping: required unit needs-forky is stopping", STEP)?;
    await_text(vm, &lines::unit("needs-needs-forky", "stopped"), STEP)?;
    await_text(vm, &lines::unit("needs-forky", "stopped"), STEP)?;
    let rows = status(vm)?;
    for name in ["forky", "needs-forky", "needs-needs-forky"] {
        expect_state(vm, &rows, name, "inactive")?;
    }

    let (out, code) = sh(vm, &format!("{CLIENT} start forky"))?;
    check(vm, code == 0, format!("`autoinit start forky` exited {code}: {out}"))?;
    for name in ["needs-forky", "needs-needs-forky"] {
        let (out, code) = sh(vm, &format!("{CLIENT} start {name}"))?;
        check(vm, code == 0, format!("`autoinit start {name}` exited {code}: {out}"))?;
    }
    let rows = status(vm)?;
    for name in ["forky", "needs-forky", "needs-needs-forky"] {
        expect_state(vm, &rows, name, "running")?;
    }
    let pid = row(vm, &rows, "forky")?.pid;
    check(vm, pid.is_some_and(|p| !pids.contains(&p)), format!("forky runs as pid {pid:?} again after start: not a new process"))?;
    let (out, code) = sh(vm, &format!("{CLIENT} stop nosuch"))?;
    check(vm, code == 1 && out.contains("no such unit"), format!("`stop nosuch` exited {code}: {out}"))
}

/// `reload` after adding one unit file and removing another: the new one starts, the removed
/// one stops and is forgotten. /etc/autoinit is a link into the read-only image; the shell
/// makes it a writable directory of links first, as an administrator would.
fn reload(vm: &mut Vm) -> Result<()> {
    vm.run(
        "rm /etc/autoinit && mkdir -p /etc/autoinit/services && \
         for f in /rofs_root/etc/autoinit/services/*; do ln -s $f /etc/autoinit/services/; done",
    )?;
    vm.run("rm /etc/autoinit/services/removable.service")?;
    vm.run("printf '[Service]\\nExecStart=/bin/sh -c \"echo late unit up; exec sleep 100000\"\\n' > /etc/autoinit/services/late.service")?;
    let out = vm.run(&format!("{CLIENT} reload"))?;
    check(vm, out.contains("1 added, 0 changed, 1 removed"), format!("`autoinit reload` printed '{out}', expected '1 added, 0 changed, 1 removed'"))?;
    await_text(vm, &lines::started("late"), STEP)?;
    await_text(vm, "]: late unit up", STEP)?;
    await_text(vm, &lines::unit("removable", "removed"), STEP)?;
    in_order(vm, &[&lines::unit("removable", "stopping"), &lines::unit("removable", "stopped"), &lines::unit("removable", "removed")])?;
    let rows = status(vm)?;
    expect_state(vm, &rows, "late", "running")?;
    check(vm, !rows.iter().any(|r| r.name == "removable"), "removable is still in `status` after reload")?;
    // Units whose files did not change kept running: same pid as before.
    expect_state(vm, &rows, "daemon", "running")
}

/// A non-root client is refused with the reason and status 1: run with busybox su from the
/// shell, and from peercred.service (User=, which also shows its ambient capability:
/// CAP_DAC_OVERRIDE is bit 1).
fn refuse_non_root(vm: &mut Vm) -> Result<()> {
    let refusal = "autoinit: permission denied: root only";
    let (out, code) = sh(vm, &format!("su -s /bin/sh {USER} -c 'id -u; {CLIENT} status'"))?;
    check(vm, out.lines().any(|l| l.trim() == USER_ID.to_string()), format!("su did not run the client as {USER}: {out}"))?;
    check(vm, code == 1 && out.contains(refusal), format!("a non-root client got status {code} and '{out}', expected 1 and '{refusal}'"))?;
    check(vm, !out.contains("NAME "), format!("a non-root client was shown the status table: {out}"))?;
    let l = await_text(vm, &format!("]: {refusal}"), STEP)?;
    check(vm, l.contains("peercred["), format!("the refusal line is not peercred's: {l}"))?;
    await_text(vm, "]: client exit 1", STEP)?;
    let cap = await_text(vm, "]: CapAmb:", STEP)?;
    check(vm, cap.trim_end().ends_with("0000000000000002"), format!("peercred's ambient set is not CAP_DAC_OVERRIDE alone: {cap}"))?;
    await_line(vm, "the manager's refusal warning", |l| l.contains("autoinit: warning: control: ") && l.contains("non-root user refused"), STEP)?;
    Ok(())
}

/// Garbage, control bytes, bad UTF-8 and an oversized request on the control socket are each
/// answered with an error; the manager carries on.
fn garbage(vm: &mut Vm) -> Result<()> {
    let cases = [
        ("'frobnicate everything\\n'", "error: unknown command"),
        ("'status\\x01\\n'", "error: control character in request"),
        ("'\\xff\\xfe\\n'", "error: request is not UTF-8"),
        ("'status two names\\n'", "error: too many arguments"),
        // No newline: the manager answers when the client's time is up.
        ("'status'", "error: no request received in time"),
        ("--fill 5000", "error: request too long"),
    ];
    for (arg, want) in cases {
        let (out, code) = sh(vm, &format!("unix-send /run/autoinit/control {arg}"))?;
        check(vm, code == 0 && out.contains(want), format!("unix-send {arg}: status {code}, '{out}'; expected an answer '{want}'"))?;
    }
    let rows = status(vm)?;
    expect_state(vm, &rows, "daemon", "running")
}

/// The getty on the second serial port printed /etc/issue and a login prompt there.
fn getty(vm: &Vm, out: &Path) -> Result<()> {
    let deadline = Instant::now() + STEP;
    loop {
        let text = String::from_utf8_lossy(&std::fs::read(out).unwrap_or_default()).into_owned();
        if text.contains(ISSUE) && text.contains("login:") {
            if !text.contains(GETTY_STDOUT) {
                return Err(vm.fail(format!("the getty unit's stdout (no StandardOutput=, StandardInput=tty) did not reach its tty: no '{GETTY_STDOUT}' on the second serial port:\n{text}")));
            }
            if vm.text().contains(&format!("]: {GETTY_STDOUT}")) {
                return Err(vm.fail("the getty unit's stdout went to the kernel log, not to its tty".to_string()));
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(vm.fail(format!("the second serial port ({}) shows no '{ISSUE}' and 'login:':\n{text}", out.display())));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// After poweroff: units stopped in reverse dependency order, the SIGTERM-ignoring one killed
/// after its TimeoutStopSec, and the whole shutdown well within its bound.
fn shutdown_order(vm: &Vm, t0: f64, t1: f64) -> Result<()> {
    in_order(vm, &[&lines::unit("chain-a", "stopped"), &lines::unit("chain-b", "stopping")])?;
    in_order(vm, &[&lines::unit("after-notify", "stopped"), &lines::unit("notifier", "stopping")])?;
    let kill = format!("autoinit: warning: stubborn: did not stop within {} ms; sending SIGKILL", STUBBORN_TIMEOUT_S * 1000);
    in_order(vm, &[&lines::unit("stubborn", "stopping"), &kill, &lines::unit("stubborn", "stopped"), "autoinit: all services stopped"])?;
    let text = vm.text();
    let at = |n: &str| text.lines().find(|l| l.contains(n)).and_then(stamp);
    // The manager times the stop from the loop pass that began it, which may come a little
    // before its `stopping` line is printed: measure from the poweroff request, which is
    // earlier still.
    if let Some(b) = at(&kill) {
        check(vm, b - t0 >= STUBBORN_TIMEOUT_S as f64 - 0.05, format!("stubborn was killed {:.2} s after the poweroff request, before TimeoutStopSec={STUBBORN_TIMEOUT_S}", b - t0))?;
    }
    let took = t1 - t0;
    // TimeoutStopSec plus the final SIGTERM round (nothing is left by then) and the unmounts.
    let bound = STUBBORN_TIMEOUT_S as f64 + 7.0;
    check(vm, took < bound, format!("poweroff took {took:.1} s, expected under {bound:.0} s"))?;
    // The notify daemon said it was stopping.
    check(vm, text.contains("notify-daemon: stopping"), "the notify daemon did not get its SIGTERM")
}

// ---------------------------------------------------------------------------------------------
// supervise_basic (x86_64, aarch64)

fn supervise_basic(t: &Target) -> Result<()> {
    let units = basic_units(&t.board.console);
    let disk = build_disk(t, "supervise-basic", &units)?;
    let mut vm = t.boot_custom("supervise_basic", "autoinit.boot=LABEL=AUTOSVR", &[disk], None, &[])?;
    to_console_shell(&mut vm, units.len())?;
    await_text(&vm, &lines::unit("notifier", "ready"), STEP)?;
    await_text(&vm, &lines::unit("oneshot", "finished"), STEP)?;
    let rows = status(&mut vm)?;
    for name in ["console", "daemon", "notifier"] {
        expect_state(&vm, &rows, name, "running")?;
    }
    expect_state(&vm, &rows, "oneshot", "exited")?;
    check(&vm, rows.len() == units.len(), format!("`status` lists {} units, expected {}: {rows:?}", rows.len(), units.len()))?;
    let pid = row(&vm, &rows, "daemon")?.pid.context("daemon without pid")?;
    await_text(&vm, &format!("daemon[{pid}]: daemon up"), STEP)?;
    let cg = vm.run(&format!("cat /proc/{pid}/cgroup"))?;
    check(&vm, cg.lines().any(|l| l.trim() == "0::/autoinit/daemon"), format!("daemon is in cgroup '{cg}', expected 0::/autoinit/daemon"))?;
    poweroff(&mut vm)?;
    for u in ["daemon", "notifier", "console"] {
        await_text(&vm, &lines::unit(u, "stopped"), STEP)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// supervise_watchdog (x86_64)

/// The target's initramfs (board_image.rs, as `cargo xtask image` makes it) with i6300esb
/// added to the board's module list, so that the boot stage loads it and /dev/watchdog0
/// exists by stage 2. Written to `target/images/<arch>/board-watchdog/`.
fn watchdog_initrd(t: &Target) -> Result<PathBuf> {
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    let mut board = crate::boot_tests::board_for(t.arch)?;
    board.modules.push("i6300esb".into());
    let q = board.qemu.as_ref().context("board without [qemu]")?;
    let kernel = crate::debian::kernel(t.arch, q)?;
    let busybox = crate::debian::busybox(&q.debian_arch)?;
    let out = crate::root().join("target/images").join(t.arch.name()).join("board-watchdog");
    let inputs = crate::board_image::InitInputs { init: &t.init, busybox: Some(&busybox), kernel: &kernel };
    let made = crate::board_image::make_initramfs(&board, &inputs, &out, &mut crate::board_image::Progress::quiet())?;
    Ok(made.gz)
}

fn supervise_watchdog(t: &Target) -> Result<()> {
    let units = basic_units(&t.board.console);
    let disk = build_disk(t, "supervise-basic", &units)?;
    let initrd = watchdog_initrd(t)?;
    let cmdline = format!("autoinit.boot=LABEL=AUTOSVR autoinit.watchdog=/dev/watchdog0,{WATCHDOG_SECS}");
    // If PID 1 stops petting, QEMU powers the guest off and every later wait fails.
    let qemu = ["-device", "i6300esb", "-action", "watchdog=poweroff"].map(String::from);
    let mut vm = t.boot_custom("supervise_watchdog", &cmdline, &[disk], Some(&initrd), &qemu)?;
    await_text(&vm, START, BOOT)?;
    let armed = await_text(&vm, "autoinit: watchdog: /dev/watchdog0 armed, timeout ", TO_SERVICES)?;
    let want = format!("armed, timeout {WATCHDOG_SECS} s, petted every {} ms", WATCHDOG_SECS * 1000 / 3);
    check(&vm, armed.contains(&want), format!("'{armed}', expected '{want}'"))?;
    to_console_shell(&mut vm, units.len())?;
    let since = Instant::now();
    // The device is open (by PID 1): a second open is refused.
    let (out, code) = sh(&mut vm, "cat /dev/watchdog0")?;
    check(&vm, code != 0 && out.to_lowercase().contains("busy"), format!("opening /dev/watchdog0 again gave status {code}: '{out}', expected busy"))?;
    let (state, _) = sh(&mut vm, "cat /sys/class/watchdog/watchdog0/state /sys/class/watchdog/watchdog0/timeout 2>/dev/null")?;
    if !state.trim().is_empty() {
        check(&vm, state.split_whitespace().collect::<Vec<_>>() == ["active", &WATCHDOG_SECS.to_string()], format!("watchdog0 state and timeout: '{state}', expected active and {WATCHDOG_SECS}"))?;
    }
    let mut last_pets = 0u64;
    let mut samples = 0;
    while since.elapsed() < WATCHDOG_UP {
        let out = vm.run(&format!("{CLIENT} status"))?;
        let line = out.lines().find(|l| l.starts_with("watchdog /dev/watchdog0: armed")).unwrap_or("");
        let pets: u64 = line.split(", ").last().and_then(|p| p.strip_suffix(" pets")).and_then(|n| n.parse().ok()).unwrap_or(0);
        check(&vm, pets > last_pets, format!("`status` shows '{line}': the pet count did not grow from {last_pets}"))?;
        last_pets = pets;
        samples += 1;
        std::thread::sleep(Duration::from_secs(3));
    }
    let secs = since.elapsed().as_secs_f64();
    check(&vm, samples >= 3, format!("only {samples} status samples in {secs:.0} s"))?;
    poweroff(&mut vm)?;
    in_order(&vm, &["autoinit: control request: powering off", "autoinit: watchdog: /dev/watchdog0 disarmed", "reboot: Power down"])
}

pub const TESTS: &[Test] = &[
    Test { name: "supervise", arches: &[Arch::X86_64], disks: &[], run: supervise },
    Test { name: "supervise_basic", arches: &[Arch::X86_64, Arch::Aarch64], disks: &[], run: supervise_basic },
    Test { name: "supervise_watchdog", arches: &[Arch::X86_64], disks: &[], run: supervise_watchdog },
    // Issue 8's supervision faults: fork storm, output flood, 500 unit files, full /run.
    Test { name: "supervise_faults", arches: &[Arch::X86_64], disks: &[], run: crate::supervise_fault_tests::supervise_faults },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_rows_parse_around_kernel_lines() {
        let out = "NAME                  STATE      PID      RESTARTS  UPTIME  LAST-EXIT\n\
                   crasher               failed     -        4         -       status 3\n\
                   [   12.345678] daemon[90]: daemon up\n\
                   daemon                running    90       0         1m05s   -\n\
                   killed                failed     -        0         -       SIGKILL\n\
                   watchdog /dev/watchdog0: armed, timeout 3 s, 12 pets\n";
        let rows = parse_status(out);
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!((rows[0].name.as_str(), rows[0].state.as_str(), rows[0].pid, rows[0].restarts), ("crasher", "failed", None, 4));
        assert_eq!(rows[0].last_exit, "status 3");
        assert_eq!((rows[1].name.as_str(), rows[1].pid, rows[1].last_exit.as_str()), ("daemon", Some(90), "-"));
        assert_eq!(rows[2].last_exit, "SIGKILL");
    }

    #[test]
    fn console_lines_give_timestamps_and_pids() {
        assert_eq!(stamp("[    5.363277] autoinit: x"), Some(5.363277));
        assert_eq!(stamp("autoinit: x"), None);
        assert_eq!(stamp("/ # [6n[   10.028446] autoinit: crasher: started (pid 108)"), Some(10.028446));
        assert_eq!(stamp("echo [a] [1.x] [ 2.5] y"), Some(2.5));
        assert_eq!(started_pid("[ 1.0] autoinit: daemon: started (pid 93)"), Some(93));
    }

    #[test]
    fn units_are_named_once_and_broken_has_a_bad_type() {
        let u = full_units("ttyS0", "ttyS1");
        let mut names: Vec<&str> = u.iter().map(|(n, _)| n.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), u.len());
        assert!(u.iter().any(|(n, t)| n == "broken" && t.contains("Type=bogus")));
        assert!(u.iter().any(|(n, t)| n == "console" && t.contains("TTYPath=/dev/ttyS0")));
    }
}
