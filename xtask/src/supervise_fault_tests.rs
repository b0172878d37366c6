//! Supervision faults the issue on hostile input asks for (issue 8), in one boot of the product
//! flow (x86_64), with the helpers of supervise_tests.rs:
//!
//! - a fork storm of orphans: a service makes 300 orphans that live 2 s and 300 that exit at
//!   once; PID 1 reaps them all, stays responsive, and the unit keeps its main process;
//! - a service that floods its output (20,000 lines at once): the rate limit lets through at
//!   most the burst plus 50 lines a second, says how many it suppressed, and every line is
//!   either shown or counted;
//! - a unit directory with 500 files (and five more): the first MAX_SERVICES (128, in name
//!   order, as squashfs lists them) load, one line says how many did not, the manager runs;
//! - a full /run (remounted at 4 MiB and filled): the control socket, restarts and stops still
//!   work, and the file a user wrote there before is intact.
//!
//! A bystander daemon keeps its pid through all of it, and the test ends with a poweroff that
//! must stop everything without a kernel panic.

use crate::boot_tests::{check, Target, STEP};
use crate::supervise_tests::{
    await_line, await_text, build_disk, console_unit, daemon_unit, expect_state, lines, poweroff, row, sh, stamp, started_pid, status,
    to_console_shell, unit_file, CLIENT,
};
use crate::qemu::Vm;
use anyhow::{Context, Result};
use std::time::{Duration, Instant};

/// Lines the flooding service writes at once.
const FLOOD_LINES: u32 = 20_000;
/// outlog.rs's rate limit: LINES_BURST, LINES_PER_SEC.
const BURST: f64 = 200.0;
const PER_SEC: f64 = 50.0;
/// Orphans of each kind the storm makes.
const ORPHANS: u32 = 300;
/// Unit files besides the five named ones, and the manager's capacity (services.rs).
const MANY: usize = 500;
const MAX_SERVICES: usize = 128;
const NAMED: usize = 5;

fn units(console: &str) -> Vec<(String, String)> {
    let mut u = vec![
        ("console".to_string(), console_unit(console)),
        ("daemon".to_string(), daemon_unit()),
        ("sleeper".to_string(), unit_file("Restarted while /run is full", &[], &["ExecStart=/bin/sleep 100000"])),
        (
            "flood".to_string(),
            unit_file(
                "Floods its output, then says it is done once the rate limit has refilled",
                &[],
                &[&format!("ExecStart=/bin/sh -c 'seq 1 {FLOOD_LINES}; sleep 6; echo flood done; exec sleep 100000'")],
            ),
        ),
        (
            "storm".to_string(),
            unit_file(
                "A fork storm of orphans",
                &[],
                &[&format!(
                    "ExecStart=/bin/sh -c 'for i in $(seq {ORPHANS}); do (sleep 2 &); (true &); done; echo storm of {} orphans; exec sleep 100000'",
                    2 * ORPHANS
                )],
            ),
        ),
    ];
    // u-000 .. u-499 sort after the five above: squashfs lists a directory in name order.
    for i in 0..MANY {
        u.push((format!("u-{i:03}"), unit_file("One of many", &[], &["Type=oneshot", "ExecStart=/bin/true"])));
    }
    u
}

/// Listed in supervise_tests.rs's `TESTS` as `supervise_faults` (x86_64).
pub(crate) fn supervise_faults(t: &Target) -> Result<()> {
    let units = units(&t.board.console);
    let disk = build_disk(t, "supervise-faults", &units)?;
    let mut vm = t.boot_custom("supervise_faults", "autoinit.boot=LABEL=AUTOSVR", &[disk], None, &[])?;
    to_console_shell(&mut vm, MAX_SERVICES)?;
    let not_loaded = format!("autoinit: services: more than {MAX_SERVICES} units: {} not loaded", units.len() - MAX_SERVICES);
    await_text(&vm, &not_loaded, STEP)?;
    // The flood first: its lines on the console would cut into the output of the commands
    // that follow.
    flood(&mut vm)?;
    let rows = status(&mut vm)?;
    let daemon_pid = row(&vm, &rows, "daemon")?.pid.context("daemon without pid")?;

    many_units(&mut vm)?;
    fork_storm(&mut vm)?;
    full_run(&mut vm)?;

    let rows = status(&mut vm)?;
    let pid = row(&vm, &rows, "daemon")?.pid;
    check(&vm, pid == Some(daemon_pid), format!("the bystander daemon is pid {pid:?}, was {daemon_pid}: the manager lost it"))?;
    poweroff(&mut vm)?;
    Ok(())
}

/// 128 units in the table, the first in name order; the rest were named in one line. The
/// table is counted from a file (the console may mix kernel lines into a command's output).
fn many_units(vm: &mut Vm) -> Result<()> {
    vm.run(&format!("{CLIENT} status > /tmp/status.out"))?;
    // Rows are `NAME STATE PID ...`; the header and the image line that follow are not.
    let n = vm.run("grep -c -E '^[^ ]+ +[a-z]+ +(-|[0-9]+) ' /tmp/status.out")?;
    check(vm, n.lines().any(|l| l.trim() == MAX_SERVICES.to_string()), format!("`status` lists {n} units, expected {MAX_SERVICES}"))?;
    let last = format!("u-{:03}", MAX_SERVICES - NAMED - 1);
    let beyond = format!("u-{:03}", MAX_SERVICES - NAMED);
    let found = vm.run(&format!("grep -c -E '^(console|daemon|flood|sleeper|storm|{last}) ' /tmp/status.out"))?;
    check(vm, found.lines().any(|l| l.trim() == "6"), format!("the five named units and {last} are not all in `status`: {found}"))?;
    let (out, code) = sh(vm, &format!("grep '^{beyond} ' /tmp/status.out"))?;
    check(vm, code != 0, format!("{beyond} was loaded beyond MAX_SERVICES: {out}"))?;
    // The oneshots ran.
    await_text(vm, &lines::unit(&last, "finished"), STEP)?;
    Ok(())
}

/// 600 orphans re-parented to PID 1 and reaped; no zombie; the storm's group is down to its
/// main process; the manager answered throughout.
fn fork_storm(vm: &mut Vm) -> Result<()> {
    await_text(vm, &format!("]: storm of {} orphans", 2 * ORPHANS), Duration::from_secs(120))?;
    let t0 = Instant::now();
    let rows = status(vm)?;
    let answered = t0.elapsed();
    check(vm, answered < Duration::from_secs(10), format!("`status` took {answered:?} during the storm"))?;
    expect_state(vm, &rows, "storm", "running")?;
    let main = row(vm, &rows, "storm")?.pid.context("storm without pid")?;
    // The 2 s sleepers end; PID 1 must reap every one of them.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let procs = vm.run("cat /sys/fs/cgroup/autoinit/storm/cgroup.procs")?;
        let pids: Vec<u32> = procs.split_whitespace().filter_map(|p| p.parse().ok()).collect();
        if pids == [main] {
            break;
        }
        if Instant::now() >= deadline {
            return Err(vm.fail(format!("storm's group still holds {} processes a minute after the storm (main {main})", pids.len())));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let (z, _) = sh(vm, "cat /proc/[0-9]*/stat 2>/dev/null | grep ') Z '; true")?;
    check(vm, !z.lines().any(|l| l.contains(") Z ")), format!("zombies left after the storm:\n{z}"))?;
    let rows = status(vm)?;
    check(vm, row(vm, &rows, "storm")?.pid == Some(main), "storm's main process changed")?;
    Ok(())
}

/// The flood: at most the burst plus 50 lines a second reach the log, the rest are counted
/// in "N output lines suppressed" lines, and shown + suppressed is every line written.
fn flood(vm: &mut Vm) -> Result<()> {
    let done = await_text(vm, "]: flood done", Duration::from_secs(120))?;
    let text = vm.text();
    let start_line = text.lines().find(|l| l.contains(&lines::started("flood"))).context("no flood start line")?.to_string();
    let pid = started_pid(&start_line).context("no pid in the flood start line")?;
    let tag = format!("flood[{pid}]: ");
    let shown: Vec<u32> = text.lines().filter_map(|l| l.split(&tag).nth(1)?.trim().parse().ok()).collect();
    let suppressed: u64 = text
        .lines()
        .filter(|l| l.contains("autoinit: warning: flood: ") && l.contains(" output lines suppressed"))
        .filter_map(|l| l.split("flood: ").nth(1)?.split(' ').next()?.parse::<u64>().ok())
        .sum();
    let (t0, t1) = (stamp(&start_line).context("no timestamp")?, stamp(&done).context("no timestamp")?);
    let allowed = BURST + PER_SEC * (t1 - t0) + 2.0;
    check(vm, (shown.len() as f64) <= allowed, format!("{} flood lines reached the log in {:.1} s; the rate limit allows {allowed:.0}", shown.len(), t1 - t0))?;
    check(vm, shown.len() as f64 >= BURST, format!("only {} flood lines reached the log: the burst is {BURST}", shown.len()))?;
    check(vm, shown.first() == Some(&1), format!("the first flood line shown is {:?}, expected 1", shown.first()))?;
    check(
        vm,
        shown.len() as u64 + suppressed == u64::from(FLOOD_LINES),
        format!("{} lines shown + {suppressed} suppressed != {FLOOD_LINES} written", shown.len()),
    )?;
    // The manager stays usable.
    let (out, code) = sh(vm, &format!("{CLIENT} status flood"))?;
    check(vm, code == 0 && out.contains("running"), format!("`status flood` after the flood: {code} {out}"))?;
    Ok(())
}

/// /run full: the manager keeps serving and restarting; the user's file there survives.
fn full_run(vm: &mut Vm) -> Result<()> {
    vm.run("echo precious-$((6*7)) > /run/user-note")?;
    vm.run("mount -o remount,size=4m /run")?;
    let (out, _) = sh(vm, "dd if=/dev/zero of=/run/fill bs=64k 2>&1; df /run | tail -1")?;
    check(vm, out.contains("No space left"), format!("/run did not fill up: {out}"))?;
    let rows = status(vm)?;
    let before = row(vm, &rows, "sleeper")?.pid;
    let (out, code) = sh(vm, &format!("{CLIENT} restart sleeper"))?;
    check(vm, code == 0, format!("`restart sleeper` with /run full: {code} {out}"))?;
    let deadline = Instant::now() + STEP;
    loop {
        let rows = status(vm)?;
        let r = row(vm, &rows, "sleeper")?;
        if r.state == "running" && r.pid.is_some() && r.pid != before {
            break;
        }
        if Instant::now() >= deadline {
            return Err(vm.fail(format!("sleeper did not come back with a new pid with /run full: {r:?}")));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let (out, code) = sh(vm, &format!("{CLIENT} stop storm"))?;
    check(vm, code == 0, format!("`stop storm` with /run full: {code} {out}"))?;
    await_line(vm, "storm stopped", |l| l.contains(&lines::unit("storm", "stopped")), STEP)?;
    let note = vm.run("cat /run/user-note")?;
    check(vm, note.lines().any(|l| l.trim() == "precious-42"), format!("/run/user-note changed: {note}"))?;
    vm.run("rm /run/fill")?;
    Ok(())
}
