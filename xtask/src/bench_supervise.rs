//! `cargo xtask bench --only supervision`: the service manager on the x86_64 QEMU board
//! (issue 4's benchmark). Each part boots the product flow (boot disk, squashfs image,
//! stage 2) with generated unit files and a console shell unit, as the supervision tests do
//! (supervise_tests.rs), and reads what it needs from that shell:
//!
//! - PID 1's resident memory (`/proc/1/status`, `/proc/1/smaps`) with 1, 20 and 100 services;
//! - the respawn latency of `RestartSec=0` units, from kernel timestamps of `/dev/kmsg` lines
//!   written by the exiting process and by its successor right after its exec;
//! - the time PID 1 takes to reap 10,000 orphans that exit at once, and the zombies left.
//!
//! Numbers are reported, never asserted.

use crate::arch::Arch;
use crate::boot_tests::{self, Target};
use crate::qemu::Vm;
use crate::supervise_tests::{build_disk, console_unit, stamp, to_console_shell, unit_file, CLIENT};
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

pub const ARCH: Arch = Arch::X86_64;
/// Services running (besides the console shell) in the memory boots.
pub const SERVICE_COUNTS: [usize; 3] = [1, 20, 100];
/// Goal of issue 4 for PID 1's VmRSS with 100 services.
const RSS_GOAL_KIB: u64 = 256;
/// Respawn probes: each unit gives one sample, its first respawn.
pub const PROBES: usize = 24;
/// The first probe exits this long after its start, the next ones `PROBE_GAP_MS` apart, so
/// that the manager handles one respawn at a time.
const PROBE_FIRST_EXIT_MS: u64 = 3000;
const PROBE_GAP_MS: u64 = 300;
const RESPAWN_GOAL_MS: f64 = 5.0;
/// Orphans forked at once, and how many times.
pub const ORPHANS: u32 = 10_000;
pub const ORPHAN_ROUNDS: usize = 3;
/// Rounds of the baseline: the same children reaped by their own parent.
const BASELINE_ROUNDS: usize = 2;
/// Guest memory for the orphan boot: the board's 256 MB gives the kernel a threads-max of
/// about 2,000 (RAM / 128 KiB), too few for 10,000 processes at once.
pub const ORPHAN_MEMORY_MB: u32 = 2048;
const ORPHAN_GOAL_MS: f64 = 1000.0;
const CMDLINE: &str = "autoinit.boot=LABEL=AUTOSVR";
/// Waits in the guest: all units running, all probes done, one orphan round.
const SETTLE: Duration = Duration::from_secs(180);

/// A part of the section, for `--part`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Memory,
    Respawn,
    Orphans,
}

impl Part {
    pub fn parse(s: &str) -> Option<Part> {
        match s {
            "memory" => Some(Part::Memory),
            "respawn" => Some(Part::Respawn),
            "orphans" => Some(Part::Orphans),
            _ => None,
        }
    }

    /// The heading of its subsection.
    fn heading(self) -> &'static str {
        match self {
            Part::Memory => "\n### PID 1 resident memory\n",
            Part::Respawn => "\n### Respawn latency\n",
            Part::Orphans => "\n### Reaping orphans\n",
        }
    }
}

/// The subsection under `heading` of `text`: from the heading to the next `###`/`##` heading.
fn subsection<'t>(text: &'t str, heading: &str) -> Option<(usize, usize)> {
    let start = text.find(heading)?;
    let after = start + heading.len();
    let end = [text[after..].find("\n### "), text[after..].find("\n## ")].into_iter().flatten().min().map_or(text.len(), |i| after + i);
    Some((start, end))
}

/// `old` with the subsections of `parts` replaced by those of `new` (a section made with
/// `--part`); a subsection `old` does not have yet is appended.
pub fn splice_parts(old: &str, new: &str, parts: &[Part]) -> String {
    let mut out = old.to_string();
    for p in parts {
        let Some((ns, ne)) = subsection(new, p.heading()) else { continue };
        let piece = new[ns..ne].trim_end_matches('\n');
        match subsection(&out, p.heading()) {
            Some((os, oe)) => out = format!("{}{}\n{}", &out[..os], piece, &out[oe..]),
            None => out = format!("{}\n{}\n", out.trim_end_matches('\n'), piece),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Memory

/// `/proc/1/status` keys reported, in this order.
const STATUS_KEYS: [&str; 8] = ["VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "VmStk", "VmExe", "VmPTE"];

/// One mapping of `/proc/1/smaps`.
#[derive(Debug, Clone, PartialEq)]
struct Mapping {
    /// `perms path` (`[anon]` for an unnamed mapping).
    what: String,
    size_kib: u64,
    rss_kib: u64,
}

#[derive(Debug)]
struct Memory {
    services: usize,
    /// `(key, kB)` for [`STATUS_KEYS`] found in /proc/1/status.
    status: Vec<(String, u64)>,
    maps: Vec<Mapping>,
}

impl Memory {
    /// What the page tables map: the sum of `Rss:` over /proc/1/smaps.
    fn resident_kib(&self) -> u64 {
        self.maps.iter().map(|m| m.rss_kib).sum()
    }

    fn get(&self, key: &str) -> Option<u64> {
        self.status.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

/// `Key:   N kB` lines of /proc/PID/status for [`STATUS_KEYS`].
fn parse_proc_status(text: &str) -> Vec<(String, u64)> {
    STATUS_KEYS
        .iter()
        .filter_map(|k| {
            let line = text.lines().find(|l| l.starts_with(&format!("{k}:")))?;
            let v = line.split_whitespace().nth(1)?.parse().ok()?;
            Some((k.to_string(), v))
        })
        .collect()
}

/// The mappings of /proc/PID/smaps with their Size and Rss.
fn parse_smaps(text: &str) -> Vec<Mapping> {
    let mut maps: Vec<Mapping> = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let is_header = f.len() >= 5 && f[0].contains('-') && f[0].split('-').all(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if is_header {
            let path = if f.len() > 5 { f[5..].join(" ") } else { "[anon]".into() };
            maps.push(Mapping { what: format!("{} {path}", f[1]), size_kib: 0, rss_kib: 0 });
        } else if let (Some(m), [key, v, "kB"]) = (maps.last_mut(), f.as_slice()) {
            let v = v.parse().unwrap_or(0);
            match *key {
                "Size:" => m.size_kib = v,
                "Rss:" => m.rss_kib = v,
                _ => {}
            }
        }
    }
    maps
}

/// The console shell and `n` services that sleep.
fn sleeper_units(console: &str, n: usize) -> Vec<(String, String)> {
    let mut u = vec![("console".to_string(), console_unit(console))];
    for i in 1..=n {
        u.push((format!("sleeper{i:03}"), unit_file("Sleeps", &[], &["ExecStart=/bin/sleep 100000"])));
    }
    u
}

/// Rows of `autoinit status` in state `running`.
fn running(status_out: &str) -> usize {
    status_out
        .lines()
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 6 && !f[0].starts_with('[') && f[1] == "running"
        })
        .count()
}

fn wait_running(vm: &mut Vm, want: usize) -> Result<()> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let out = vm.run(&format!("{CLIENT} status"))?;
        let n = running(&out);
        if n == want {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(vm.fail(format!("{n} of {want} units running after {} s:\n{out}", SETTLE.as_secs())));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn measure_memory(t: &Target, n: usize) -> Result<Memory> {
    let units = sleeper_units(&t.board.console, n);
    let disk = build_disk(t, &format!("bench-memory-{n}"), &units)?;
    let mut vm = t.boot_custom(&format!("bench-memory-{n}"), CMDLINE, &[disk], None, &[])?;
    to_console_shell(&mut vm, units.len())?;
    wait_running(&mut vm, units.len())?;
    // Let the start-up burst settle; then one `status` request, as an operator would make.
    std::thread::sleep(Duration::from_secs(2));
    vm.run(&format!("{CLIENT} status > /dev/null"))?;
    let status = parse_proc_status(&vm.run("cat /proc/1/status")?);
    let maps = parse_smaps(&vm.run("cat /proc/1/smaps")?);
    if !STATUS_KEYS[..2].iter().all(|k| status.iter().any(|(s, _)| s == k)) {
        return Err(vm.fail(format!("/proc/1/status lacks VmRSS or VmHWM: {status:?}")));
    }
    Ok(Memory { services: n, status, maps })
}

// ---------------------------------------------------------------------------------------------
// Respawn latency

fn probe_name(i: usize) -> String {
    format!("probe{i:02}")
}

/// The console shell and [`PROBES`] units that exit once, each at its own time, and are
/// restarted at once.
fn probe_units(console: &str) -> Vec<(String, String)> {
    let mut u = vec![("console".to_string(), console_unit(console))];
    for i in 0..PROBES {
        let delay = PROBE_FIRST_EXIT_MS + i as u64 * PROBE_GAP_MS;
        let exec = format!("ExecStart=/usr/bin/notify-daemon --respawn-probe /run/{} --delay-ms {delay}", probe_name(i));
        u.push((probe_name(i), unit_file("Exits once, restarted at once", &[], &[&exec, "Restart=on-failure", "RestartSec=0"])));
    }
    u
}

/// One respawn, in kernel timestamps (s).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Respawn {
    /// The old process's last kmsg line.
    exit: f64,
    /// autoinit's `main process (pid N) exited` line: reaped.
    reaped: f64,
    /// autoinit's `restarting in 0 ms` line: the restart is decided (the next steps are
    /// reading the unit file and the fork; autoinit's `started (pid N)` line may come after
    /// the new process's exec, which runs first once it is forked into its own cgroup).
    decided: f64,
    /// The new process's first kmsg line, right after its exec.
    start: f64,
}

impl Respawn {
    fn total_ms(&self) -> f64 {
        (self.start - self.exit) * 1000.0
    }
}

/// The respawns of every probe found in kernel log lines (`dmesg` output).
fn parse_respawns(log: &str) -> Result<Vec<Respawn>> {
    let mut out = Vec::new();
    for i in 0..PROBES {
        let name = probe_name(i);
        let at = |needle: &str, nth: usize| -> Result<f64> {
            log.lines()
                .filter(|l| l.contains(needle))
                .nth(nth)
                .and_then(stamp)
                .with_context(|| format!("no line {} containing '{needle}' in the kernel log", nth + 1))
        };
        let marker = format!("/run/{name}");
        let r = Respawn {
            exit: at(&format!("respawn-probe: exit {marker}"), 0)?,
            // A non-zero exit is logged as a warning (`autoinit: warning: NAME: ...`).
            reaped: at(&format!(" {name}: main process (pid "), 0)?,
            decided: at(&format!("autoinit: {name}: restarting in "), 0)?,
            start: at(&format!("respawn-probe: start {marker}"), 1)?,
        };
        if !(r.exit <= r.reaped && r.reaped <= r.decided && r.decided <= r.start) {
            bail!("{name}: kernel timestamps out of order: {r:?}");
        }
        out.push(r);
    }
    Ok(out)
}

/// A kernel command-line variant the respawn latency is measured under.
struct Console {
    label: &'static str,
    extra: &'static str,
}

const RESPAWN_CONSOLES: [Console; 2] = [
    Console { label: "board command line (the kernel prints every kmsg line on the serial console)", extra: "" },
    Console { label: "`quiet` (only warnings and worse reach the console)", extra: "quiet" },
];

struct RespawnResult {
    console: &'static Console,
    samples: Vec<Respawn>,
    /// ms from busybox sh's kmsg line to the probe's start line, when sh execs the probe.
    exec: Vec<f64>,
}

/// Exec samples of the baseline.
const EXEC_SAMPLES: usize = 8;

/// The exec alone, without autoinit: `sh -c` writes a kmsg line and execs the probe (which
/// exits at once, its marker being new); the probe's start line comes after the exec.
fn exec_baseline(vm: &mut Vm) -> Result<Vec<f64>> {
    let cmd = format!(
        "for i in $(seq 1 {EXEC_SAMPLES}); do sh -c \"echo bench: exec /run/base$i > /dev/kmsg; exec notify-daemon --respawn-probe /run/base$i\"; sleep 0.3; done"
    );
    vm.run_status(&cmd, SETTLE)?;
    let log = vm.run("dmesg | grep -E 'bench: exec|respawn-probe: start /run/base'")?;
    let mut v = Vec::new();
    for i in 1..=EXEC_SAMPLES {
        let at = |needle: String| log.lines().find(|l| l.ends_with(&needle)).and_then(stamp);
        match (at(format!("bench: exec /run/base{i}")), at(format!("respawn-probe: start /run/base{i}"))) {
            (Some(a), Some(b)) if b >= a => v.push((b - a) * 1000.0),
            _ => return Err(vm.fail(format!("exec baseline {i}: no pair of lines in:\n{log}"))),
        }
    }
    Ok(v)
}

fn measure_respawn(t: &Target, c: &'static Console, k: usize) -> Result<RespawnResult> {
    let units = probe_units(&t.board.console);
    let disk = build_disk(t, "bench-respawn", &units)?;
    let cmdline = format!("{CMDLINE} {}", c.extra);
    let mut vm = t.boot_custom(&format!("bench-respawn-{k}"), cmdline.trim(), &[disk], None, &[])?;
    to_console_shell(&mut vm, units.len())?;
    let deadline = Instant::now() + SETTLE;
    // Read the kernel log, not the console: with `quiet` the probes' lines are not on it.
    let grep = "dmesg | grep -E 'respawn-probe|probe[0-9]|bench: exec'";
    // Nothing is typed while the probes respawn: the shell would compete with them.
    std::thread::sleep(Duration::from_millis(PROBE_FIRST_EXIT_MS + PROBES as u64 * PROBE_GAP_MS + 3000));
    loop {
        let log = vm.run(grep)?;
        let restarted = log.lines().filter(|l| l.contains("respawn-probe: start")).count();
        if restarted >= 2 * PROBES {
            // Every probe has started twice; the log is complete.
            let samples = parse_respawns(&log).map_err(|e| vm.fail(format!("{e:#}")))?;
            let exec = exec_baseline(&mut vm)?;
            return Ok(RespawnResult { console: c, samples, exec });
        }
        if Instant::now() >= deadline {
            return Err(vm.fail(format!("{restarted} probe starts after {} s, expected {}", SETTLE.as_secs(), 2 * PROBES)));
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

// ---------------------------------------------------------------------------------------------
// Orphans

#[derive(Debug, Default, Clone, PartialEq)]
struct Reap {
    /// `count-zombies:` fields.
    elapsed_us: u64,
    first_poll_us: u64,
    first_left: u64,
    polls: u64,
    left: u64,
    zombies: u64,
    /// Children forked (pids min..=max, as `--orphans` printed them).
    children: u64,
    /// PID 1's CPU time over the round (clock ticks of 10 ms).
    pid1_ticks: u64,
    /// PID 1's voluntary context switches over the round: how often it slept and woke up.
    pid1_wakeups: u64,
}

/// The `key=value` fields of the `count-zombies:` line.
fn parse_count_zombies(out: &str) -> Option<Reap> {
    let line = out.lines().find(|l| l.starts_with("count-zombies: "))?;
    let mut r = Reap::default();
    for kv in line.split_whitespace().skip(1) {
        let (k, v) = kv.split_once('=')?;
        let v: u64 = v.parse().ok()?;
        match k {
            "elapsed_us" => r.elapsed_us = v,
            "first_poll_us" => r.first_poll_us = v,
            "first_left" => r.first_left = v,
            "polls" => r.polls = v,
            "left" => r.left = v,
            "zombies" => r.zombies = v,
            _ => return None,
        }
    }
    Some(r)
}

/// `voluntary_ctxt_switches` of a `/proc/PID/status` text.
fn voluntary_switches(status: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix("voluntary_ctxt_switches:")).and_then(|v| v.trim().parse().ok())
}

/// utime + stime of a `/proc/PID/stat` line (fields 14 and 15), in clock ticks.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.contains(") "))?;
    let rest = &line[line.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

struct Orphans {
    rounds: Vec<Reap>,
    /// ms for `--children`: the same children reaped by their own parent.
    baseline: Vec<f64>,
    /// PID 1's resident memory after the rounds, KiB (sum of smaps Rss).
    rss_after: u64,
    threads_max: String,
    pid_max: String,
}

fn measure_orphans(t: &Target) -> Result<Orphans> {
    let units = vec![("console".to_string(), console_unit(&t.board.console))];
    let disk = build_disk(t, "bench-orphans", &units)?;
    let mut vm = t.boot_custom("bench-orphans", CMDLINE, &[disk], None, &[])?;
    to_console_shell(&mut vm, units.len())?;
    let threads_max = vm.run("cat /proc/sys/kernel/threads-max")?.trim().to_string();
    let pid_max = vm.run("cat /proc/sys/kernel/pid_max")?.trim().to_string();
    let mut rounds = Vec::new();
    for round in 1..=ORPHAN_ROUNDS {
        let before = cpu_ticks(&vm.run("cat /proc/1/stat")?);
        let switches_before = voluntary_switches(&vm.run("cat /proc/1/status")?);
        // The watcher writes its line once the last child is gone. The shell waits for it with
        // builtins and a sleep: anything typed meanwhile would queue behind 10,000 runnable
        // children (a first version's 20 s wait for the shell's echo timed out).
        let cmd = format!(
            "notify-daemon --orphans {ORPHANS} --watch > /tmp/orphans; until {{ read -r a && read -r b; }} < /tmp/orphans; do sleep 1; done; cat /tmp/orphans"
        );
        let (out, _) = vm.run_status(&cmd, SETTLE)?;
        let after = cpu_ticks(&vm.run("cat /proc/1/stat")?);
        let switches_after = voluntary_switches(&vm.run("cat /proc/1/status")?);
        // The line of three numbers (T0, min, max); a kernel line on the console may come first.
        let f: Vec<u64> = out
            .lines()
            .map(|l| l.split_whitespace().map(|w| w.parse::<u64>()).collect::<Result<Vec<u64>, _>>().unwrap_or_default())
            .find(|v| v.len() == 3)
            .unwrap_or_default();
        let Some(mut r) = parse_count_zombies(&out) else {
            return Err(vm.fail(format!("round {round}: no count-zombies line in /tmp/orphans:\n{out}")));
        };
        r.children = match f.as_slice() {
            [_, min, max] if max >= min => max - min + 1,
            _ => return Err(vm.fail(format!("round {round}: --orphans wrote '{out}'"))),
        };
        r.pid1_ticks = after.zip(before).map_or(0, |(a, b)| a.saturating_sub(b));
        r.pid1_wakeups = switches_after.zip(switches_before).map_or(0, |(a, b)| a.saturating_sub(b));
        println!(
            "xtask: bench: orphans round {round}: {} children gone {:.0} ms after their parent's exit, {} zombies",
            r.children,
            r.elapsed_us as f64 / 1000.0,
            r.zombies
        );
        rounds.push(r);
    }
    let mut baseline = Vec::new();
    for _ in 0..BASELINE_ROUNDS {
        let out = vm.run_status(&format!("notify-daemon --children {ORPHANS}"), SETTLE)?.0;
        let us = out.lines().find_map(|l| l.strip_prefix("children: elapsed_us=")).and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok());
        let Some(us) = us else { return Err(vm.fail(format!("no 'children:' line:\n{out}"))) };
        println!("xtask: bench: baseline: {ORPHANS} children reaped by their parent in {:.0} ms", us as f64 / 1000.0);
        baseline.push(us as f64 / 1000.0);
    }
    // smaps, not status: its Rss comes from the page tables (status showed 4 kB here once).
    let rss_after = parse_smaps(&vm.run("cat /proc/1/smaps")?).iter().map(|m| m.rss_kib).sum();
    Ok(Orphans { rounds, baseline, rss_after, threads_max, pid_max })
}

// ---------------------------------------------------------------------------------------------
// The section

/// The median; NaN for no samples.
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

/// ` (out of reach under TCG: ...)` when the baseline measured in the same boot (what the goal
/// cannot be faster than) already takes longer than the goal.
fn out_of_reach(baseline_ms: f64, goal_ms: f64, what: &str) -> String {
    if baseline_ms >= goal_ms {
        format!(" (out of reach under TCG on this host: {what} took {baseline_ms:.2} ms in the same boot)")
    } else {
        String::new()
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "**not met**" }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

/// The subsection "PID 1 resident memory" (from its `###` heading) for the boots measured.
fn memory_md(memory: &[Memory]) -> String {
    let mut md = String::new();
    let _ = write!(
        md,
        "
### PID 1 resident memory

PID 1's `/proc/1/status` once every unit runs (checked with `autoinit status`), 2 s later and after one more
`status` request. The services are `ExecStart=/bin/sleep 100000` units; the console shell is one more unit. kB = KiB.
Stage 2 runs from its copy on the tmpfs root, so its text is shared memory (RssShmem), not RssFile.
*Resident* is the sum of `Rss:` over `/proc/1/smaps`, read right after: the pages the page tables map. The counters of
`/proc/1/status` can lag it: the kernel (6.1) counts a task's own page faults in a per-task cache that it adds to them
only every 64 faults, while `madvise(MADV_DONTNEED)` (which PID 1 uses once its units have settled, docs/services.md)
subtracts at once. VmHWM is the peak of start-up (the whole text and the stack of loading the units), before
the first release, and is updated lazily too. Goal (issue 4): VmRSS under {RSS_GOAL_KIB} KiB with 100 services,
judged on *resident*. How PID 1 keeps it low (the unit table in a mapping of its own, text and dead stack released
once the units have settled, the loop's code placed together): docs/services.md, \"Memory\".

| services running | units | resident | VmRSS | VmHWM | RssAnon | RssFile | RssShmem | VmStk | VmExe | VmPTE |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
"
    );
    for m in memory {
        let cell = |k: &str| m.get(k).map_or("n/a".to_string(), |v| format!("{v} kB"));
        let _ = writeln!(
            md,
            "| {} | {} | **{} kB** | {} | {} | {} | {} | {} | {} | {} | {} |",
            m.services,
            m.services + 1,
            m.resident_kib(),
            cell("VmRSS"),
            cell("VmHWM"),
            cell("RssAnon"),
            cell("RssFile"),
            cell("RssShmem"),
            cell("VmStk"),
            cell("VmExe"),
            cell("VmPTE")
        );
    }
    if let Some(m) = memory.iter().find(|m| m.services == 100) {
        let rss = m.get("VmRSS").unwrap_or(u64::MAX);
        let resident = m.resident_kib();
        let _ = writeln!(
            md,
            "\n**Goal**: {resident} KiB resident with 100 services (VmRSS {rss} KiB) against {RSS_GOAL_KIB} KiB: {}.\n",
            met(resident < RSS_GOAL_KIB)
        );
        let _ = writeln!(md, "Where it is, with 100 services (`/proc/1/smaps`; sizes of each mapping, what of it is resident):\n");
        let _ = writeln!(md, "| mapping | size | resident |\n|---|---:|---:|");
        for map in &m.maps {
            let _ = writeln!(md, "| `{}` | {} kB | {} kB |", map.what, map.size_kib, map.rss_kib);
        }
        md.push('\n');
    }
    md
}

/// `--part memory`: only the memory boots (1, 20 and 100 services); returns the subsection
/// "PID 1 resident memory" with a line saying when and how it was measured.
pub fn memory_part(date: &str) -> Result<String> {
    let t = boot_tests::prepare(ARCH, None)?;
    let load_before = loadavg();
    let mut memory = Vec::new();
    for n in SERVICE_COUNTS {
        let m = measure_memory(&t, n).with_context(|| format!("memory with {n} services"))?;
        println!("xtask: bench: {n} services: PID 1 resident {} kB (smaps), VmRSS {} kB", m.resident_kib(), m.get("VmRSS").unwrap_or(0));
        memory.push(m);
    }
    let mut md = memory_md(&memory);
    let _ = writeln!(
        md,
        "This subsection was measured on {date} by `cargo xtask bench --only supervision --part memory` (load average {load_before} before, {} after).\n",
        loadavg()
    );
    Ok(md)
}

/// Measures every part and returns the section "Supervision" (without its markers). A part
/// that fails is reported as such; the others are still measured.
pub fn section(date: &str, parts: &[Part]) -> Result<String> {
    let wanted = |p: Part| parts.is_empty() || parts.contains(&p);
    // AUTOINIT_TEST_INIT, as for the tests: measure another build (an A/B comparison).
    let init = std::env::var_os("AUTOINIT_TEST_INIT").map(std::path::PathBuf::from);
    if let Some(p) = &init {
        eprintln!("xtask: note: AUTOINIT_TEST_INIT set, measuring {}", p.display());
    }
    let mut t = boot_tests::prepare(ARCH, init)?;
    let q = t.board.qemu.as_ref().context("board without [qemu]")?;
    let board_mb = q.memory_mb;
    let qemu_cmd = format!("{} -machine {} -cpu {} -m {board_mb}", q.system, q.machine, q.cpu);
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let load_before = loadavg();
    let started = Instant::now();
    let mut boots = 0;
    let mut failures = String::new();
    let mut fail = |what: &str, e: anyhow::Error| {
        eprintln!("xtask: bench: supervision: {what}: {e:#}");
        let first = format!("{e:#}").lines().next().unwrap_or("").to_string();
        let _ = writeln!(failures, "- {what}: not measured: {first}");
    };

    let mut memory = Vec::new();
    for n in SERVICE_COUNTS.into_iter().filter(|_| wanted(Part::Memory)) {
        boots += 1;
        match measure_memory(&t, n) {
            Ok(m) => {
                println!("xtask: bench: {n} services: PID 1 resident {} kB (smaps), VmRSS {} kB", m.resident_kib(), m.get("VmRSS").unwrap_or(0));
                memory.push(m)
            }
            Err(e) => fail(&format!("memory with {n} services"), e),
        }
    }
    let mut respawns = Vec::new();
    for (k, c) in RESPAWN_CONSOLES.iter().enumerate().filter(|_| wanted(Part::Respawn)) {
        boots += 1;
        match measure_respawn(&t, c, k) {
            Ok(r) => {
                let v: Vec<f64> = r.samples.iter().map(Respawn::total_ms).collect();
                println!("xtask: bench: respawn ({}): median {:.2} ms, max {:.2} ms over {}; exec alone {:.2} ms", c.extra, median(v.clone()), max(&v), v.len(), median(r.exec.clone()));
                respawns.push(r)
            }
            Err(e) => fail(&format!("respawn latency ({})", if c.extra.is_empty() { "board command line" } else { c.extra }), e),
        }
    }
    if let Some(q) = t.board.qemu.as_mut() {
        q.memory_mb = ORPHAN_MEMORY_MB;
    }
    let orphans = if wanted(Part::Orphans) {
        boots += 1;
        match measure_orphans(&t) {
            Ok(o) => Some(o),
            Err(e) => {
                fail("orphans", e);
                None
            }
        }
    } else {
        None
    };
    let secs = started.elapsed().as_secs_f64();
    let load_after = loadavg();

    let mut md = String::new();
    let _ = write!(
        md,
        "## Supervision

Measured on {date} by `cargo xtask bench --only supervision`: {boots} boots of the x86_64 QEMU board in {secs:.0} s, on a
host with {cpus} CPUs and a load average of {load_before} before and {load_after} after (1, 5, 15 min). The host is shared:
other jobs, QEMU guests among them, ran at the same time, so every figure is a TCG figure on a busy machine. They are
reported, never asserted.

Every boot is the product flow with `{qemu_cmd}` (one vCPU, TCG) and the kernel command line of the
board plus `{CMDLINE}`: the boot stage mounts the boot disk's squashfs image, stage 2 runs from the tmpfs and
autoinit is the service manager of the image's units in `/etc/autoinit/services`, generated by `xtask/src/bench_supervise.rs`.
One unit is the console shell the bench types into (`ExecStart=/bin/sh` on the serial console, `Restart=always`), as in the
supervision tests. Test programs are `tests/notify-daemon` modes (`--respawn-probe`, `--orphans`, `--count-zombies`, `--children`).
"
    );

    md.push_str(&memory_md(&memory));

    // Respawn.
    let _ = write!(
        md,
        "
### Respawn latency

From a service's exit to its successor's exec, for a `Type=simple` unit with `Restart=on-failure` and `RestartSec=0`. Each of
{PROBES} units runs `notify-daemon --respawn-probe /run/NAME --delay-ms D`: a freestanding program that first writes
`respawn-probe: start /run/NAME` to `/dev/kmsg` (its first system calls after the exec), then, on its first run only
(no marker file yet), creates the marker, sleeps D ms and writes `respawn-probe: exit /run/NAME` right before it exits
with status 1; on the second run it stays. A sample is the kernel timestamp (µs) of the second start line minus that of
the exit line, read back with `dmesg`: it holds the old process's exit in the kernel, SIGCHLD, PID 1's wake-up, reaping
and restart decision, reading the unit file (once: PID 1 checks its conditions and the child uses that parse), the fork
(clone3 straight into the unit's cgroup), the child's set-up (opens stdio, ...) and the exec, so it is an upper bound of
exit-to-exec. autoinit's own kmsg lines split it: the old process's exit line to `NAME: main process (pid N) exited with
status 1` (exit, wake-up, reap), to `NAME: restarting in 0 ms` (the restart decision; on the board command line also the
console output of the line before) and to the new start line (reading the unit file, fork, the child's set-up and exec).
A child forked into its own cgroup runs before PID 1 returns from the fork, so `NAME: started (pid N)` comes after it.
The last column is the exec alone, without autoinit, in the same boot: the console shell runs
`sh -c \"echo bench: exec /run/baseN > /dev/kmsg; exec notify-daemon --respawn-probe /run/baseN\"` {EXEC_SAMPLES} times and
the sample is the kernel timestamp of the probe's start line minus that of the shell's line (median).

Why one sample per unit: with `RestartSec=0` the back-off (`init/restart.rs`) doubles 0 to 0, so consecutive quick
failures are not slowed down, but the start limit marks a unit that starts more than {} times in {} s failed. Each probe
therefore fails once and gives its first respawn; the probes exit {PROBE_GAP_MS} ms apart (D = {PROBE_FIRST_EXIT_MS} +
{PROBE_GAP_MS}·i ms), so PID 1 handles one respawn at a time. The bench boots twice: with the board's command line, where
the kernel prints every kmsg line (autoinit's three per respawn, the probe's two) on the 115200-baud serial console in the
writer's context, and with `quiet`. Goal (issue 4): respawn under {RESPAWN_GOAL_MS} ms under TCG.

| kernel command line | samples | median | max | min | median: exit → reaped | reaped → decided | decided → exec'd | baseline: sh → exec'd |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
",
        BURST_STARTS,
        BURST_WINDOW_S
    );
    for r in &respawns {
        let v: Vec<f64> = r.samples.iter().map(Respawn::total_ms).collect();
        let part = |f: fn(&Respawn) -> f64| median(r.samples.iter().map(f).collect());
        let _ = writeln!(
            md,
            "| {} | {} | **{:.2} ms** | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms |",
            r.console.label,
            v.len(),
            median(v.clone()),
            max(&v),
            v.iter().copied().fold(f64::NAN, f64::min),
            part(|s| (s.reaped - s.exit) * 1000.0),
            part(|s| (s.decided - s.reaped) * 1000.0),
            part(|s| (s.start - s.decided) * 1000.0),
            median(r.exec.clone())
        );
    }
    if !respawns.is_empty() {
        md.push('\n');
        for r in &respawns {
            let v: Vec<f64> = r.samples.iter().map(Respawn::total_ms).collect();
            let _ = writeln!(
                md,
                "**Goal** ({}): median {:.2} ms, max {:.2} ms against {RESPAWN_GOAL_MS} ms: median {}, max {}{}.\n",
                if r.console.extra.is_empty() { "board command line" } else { r.console.extra },
                median(v.clone()),
                max(&v),
                met(median(v.clone()) < RESPAWN_GOAL_MS),
                met(max(&v) < RESPAWN_GOAL_MS),
                out_of_reach(median(r.exec.clone()), RESPAWN_GOAL_MS, "the exec alone, without autoinit (last column)")
            );
        }
        let _ = writeln!(md, "Every sample, ms (in probe order):\n");
        for r in &respawns {
            let v: Vec<String> = r.samples.iter().map(|s| format!("{:.2}", s.total_ms())).collect();
            let _ = writeln!(md, "- {}: {}", if r.console.extra.is_empty() { "board command line" } else { r.console.extra }, v.join(", "));
        }
        md.push('\n');
    }

    // Orphans.
    let _ = write!(
        md,
        "
### Reaping orphans

`notify-daemon --orphans {ORPHANS} --watch`, run from the console shell, forks a watcher, then {ORPHANS} children that
block reading a pipe whose write end only the parent holds, takes a CLOCK_MONOTONIC timestamp T0, hands T0 and the
children's pid range to the watcher and exits: the children are re-parented to PID 1 and all see end-of-file at once,
and exit. The watcher counts as `notify-daemon --count-zombies T0 MIN MAX` does: it reads `/proc` every 5 ms until no
child is left (none of the pids MIN..MAX, or, once fewer than 64 are, none still named `bench-orphan`), then counts the
zombies of the whole system. (A first version ran `--count-zombies` from the shell after the parent's exit: its fork and
exec queued behind 10,000 runnable children and its first poll came 13 to 35 s after T0, when almost every child was
gone. The watcher is forked before the children and waits on a pipe instead, but it too queues behind them: see
its first poll in the table.) The time
is from T0 to the poll that found none left (the 5 ms poll is its resolution): it holds the children's wake-up and exit
as well as PID 1's reaping, all on one vCPU. The baseline, `notify-daemon --children {ORPHANS}`, releases the same
children the same way but reaps them itself with a blocking `wait4(-1)`: the same kernel work without PID 1; its time is
from the release to the last reap. Not in batches: the guest has {ORPHAN_MEMORY_MB} MB for this boot (QEMU `-m`, instead of the board's {board_mb} MB,
whose threads-max of about 2,000 would refuse the forks) and takes all {ORPHANS} at once. {ORPHAN_ROUNDS} rounds in one
boot. Goal (issue 4): {ORPHANS} orphans reaped in under a second under TCG, zero zombies left.
"
    );
    if let Some(o) = &orphans {
        let _ = writeln!(
            md,
            "\nGuest: threads-max {}, pid_max {}. PID 1's CPU time is utime + stime of `/proc/1/stat` over the round (10 ms ticks); its wake-ups are the `voluntary_ctxt_switches` of `/proc/1/status` over the round.\n",
            o.threads_max, o.pid_max
        );
        let _ = writeln!(md, "| round | children | all gone after | first poll after | left at first poll | polls | zombies left | PID 1 CPU | PID 1 wake-ups |");
        let _ = writeln!(md, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (k, r) in o.rounds.iter().enumerate() {
            let _ = writeln!(
                md,
                "| {} | {} | **{:.0} ms** | {:.0} ms | {} | {} | {} | {} ms | {} |",
                k + 1,
                r.children,
                r.elapsed_us as f64 / 1000.0,
                r.first_poll_us as f64 / 1000.0,
                r.first_left,
                r.polls,
                r.zombies,
                r.pid1_ticks * 10,
                r.pid1_wakeups
            );
        }
        let times: Vec<f64> = o.rounds.iter().map(|r| r.elapsed_us as f64 / 1000.0).collect();
        let zombies: u64 = o.rounds.iter().map(|r| r.zombies + r.left).sum();
        let base: Vec<String> = o.baseline.iter().map(|b| format!("{b:.0} ms")).collect();
        let _ = writeln!(
            md,
            "\nBaseline, the same {ORPHANS} children reaped by their own parent: {}.\n\n\
             **Goal**: median {:.0} ms, max {:.0} ms against {ORPHAN_GOAL_MS:.0} ms: {}{}; zombies and children left over all rounds: {zombies}: {}. \
             PID 1's resident memory after the rounds (sum of `/proc/1/smaps` Rss): {} KiB.\n",
            if base.is_empty() { "not measured".to_string() } else { base.join(", ") },
            median(times.clone()),
            max(&times),
            met(max(&times) < ORPHAN_GOAL_MS),
            out_of_reach(o.baseline.iter().copied().fold(f64::NAN, f64::min), ORPHAN_GOAL_MS, "the same children reaped by their own parent, without PID 1 (baseline, fastest round)"),
            met(zombies == 0),
            o.rss_after
        );
    }
    if !failures.is_empty() {
        let _ = write!(md, "\nNot measured (see target/qemu-logs/x86_64-bench-*.log):\n\n{failures}");
    }
    if !parts.is_empty() {
        // Only these subsections replace theirs: each says when and how it was measured.
        let flags: Vec<String> = parts.iter().map(|p| format!("--part {}", format!("{p:?}").to_lowercase())).collect();
        let note = format!(
            "\nMeasured on {date} by `cargo xtask bench --only supervision {}`: {boots} boots in {secs:.0} s, load average {load_before} before and {load_after} after.\n",
            flags.join(" ")
        );
        for p in parts {
            if let Some(at) = md.find(p.heading()) {
                md.insert_str(at + p.heading().len(), &note);
            }
        }
    }
    Ok(md)
}

/// The start limit of init/restart.rs (`BURST_FAILURES`, `BURST_WINDOW_MS`), quoted in the
/// method.
const BURST_STARTS: u32 = 5;
const BURST_WINDOW_S: u32 = 60;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_status_and_smaps_parse() {
        let st = "Name:\tautoinit\nVmHWM:\t     180 kB\nVmRSS:\t     172 kB\nRssAnon:\t      80 kB\nVmStk:\t     132 kB\n";
        assert_eq!(
            parse_proc_status(st),
            vec![("VmRSS".into(), 172), ("VmHWM".into(), 180), ("RssAnon".into(), 80), ("VmStk".into(), 132)]
        );
        let smaps = "00400000-00417000 r-xp 00000000 00:19 12 /__autoinit__/autoinit\nSize:                 92 kB\nRss:                  60 kB\n\
                     7ffd1000-7ffd3000 rw-p 00000000 00:00 0 \nSize:                  8 kB\nRss:                   8 kB\nPss:   8 kB\n\
                     7ffe0000-7fff1000 rw-p 00000000 00:00 0                          [stack]\nSize:   68 kB\nRss:   40 kB\n";
        assert_eq!(
            parse_smaps(smaps),
            vec![
                Mapping { what: "r-xp /__autoinit__/autoinit".into(), size_kib: 92, rss_kib: 60 },
                Mapping { what: "rw-p [anon]".into(), size_kib: 8, rss_kib: 8 },
                Mapping { what: "rw-p [stack]".into(), size_kib: 68, rss_kib: 40 },
            ]
        );
    }

    #[test]
    fn parts_replace_only_their_subsections() {
        let old = "# B\n\n## Supervision\n\nintro\n\n### PID 1 resident memory\n\nmem old\n\n### Respawn latency\n\nresp old\n\n### Reaping orphans\n\norph old\n\n## Next\n\nkept\n";
        let new = "## Supervision\n\nnew intro\n\n### Respawn latency\n\nresp new\n";
        let out = splice_parts(old, new, &[Part::Respawn]);
        assert_eq!(out, old.replace("resp old", "resp new"));
        // A part the file does not have yet is appended.
        let out = splice_parts("# B\n", new, &[Part::Respawn]);
        assert_eq!(out, "# B\n\n### Respawn latency\n\nresp new\n");
        assert_eq!(Part::parse("orphans"), Some(Part::Orphans));
        assert_eq!(Part::parse("all"), None);
    }

    #[test]
    fn running_rows_are_counted() {
        let out = "NAME STATE PID RESTARTS UPTIME LAST-EXIT\nconsole running 90 0 5s -\n[ 1.0] x running 1 2 3 4\n\
                   a running 91 0 5s -\nb waiting - 0 - -\n";
        assert_eq!(running(out), 2);
    }

    #[test]
    fn respawns_come_from_the_kernel_log() {
        let mut log = String::new();
        for i in 0..PROBES {
            let (n, base) = (probe_name(i), 10.0 + i as f64);
            log += &format!("[{:12.6}] autoinit: {n}: started (pid {})\n", base, 100 + i);
            log += &format!("[{:12.6}] respawn-probe: start /run/{n}\n", base + 0.001);
            log += &format!("[{:12.6}] respawn-probe: exit /run/{n}\n", base + 0.5);
            log += &format!("[{:12.6}] autoinit: warning: {n}: main process (pid {}) exited with status 1\n", base + 0.5005, 100 + i);
            log += &format!("[{:12.6}] autoinit: {n}: restarting in 0 ms\n", base + 0.502);
            log += &format!("[{:12.6}] respawn-probe: start /run/{n}\n", base + 0.504);
            log += &format!("[{:12.6}] autoinit: {n}: started (pid {})\n", base + 0.505, 200 + i);
        }
        let r = parse_respawns(&log).unwrap();
        assert_eq!(r.len(), PROBES);
        assert!((r[3].total_ms() - 4.0).abs() < 1e-6, "{:?}", r[3]);
        assert!((r[3].decided - r[3].reaped - 0.0015).abs() < 1e-9);
        // A probe whose second start is missing is an error.
        let cut: String = log.lines().filter(|l| !(l.contains("start /run/probe05") && l.contains("15.504"))).map(|l| format!("{l}\n")).collect();
        assert!(parse_respawns(&cut).is_err());
    }

    #[test]
    fn count_zombies_line_and_cpu_ticks_parse() {
        let r = parse_count_zombies("junk\ncount-zombies: elapsed_us=812345 first_poll_us=20000 first_left=9000 polls=40 left=0 zombies=0\n").unwrap();
        assert_eq!((r.elapsed_us, r.first_left, r.polls, r.left, r.zombies), (812345, 9000, 40, 0, 0));
        assert_eq!(parse_count_zombies("count-zombies: elapsed_us=x"), None);
        assert_eq!(voluntary_switches("Name:\tautoinit\nvoluntary_ctxt_switches:\t812\nnonvoluntary_ctxt_switches:\t3\n"), Some(812));
        assert_eq!(cpu_ticks("1 (auto init) S 0 1 1 0 -1 4194560 100 200 0 0 37 12 5 6 20 0 1 0 3 1000 50"), Some(49));
    }
}
