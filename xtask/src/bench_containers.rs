//! `cargo xtask bench --only containers`: what a container costs over a plain service, on
//! x86_64 under QEMU. One guest runs the same program as a plain service and as a busybox
//! container (RootImage=, PrivatePIDs=yes, PrivateNetwork=, Hostname=); each is stopped and
//! started again `runs` times, one at a time. Reported, never asserted:
//!
//! - **start**: from the kmsg line `bench: start NAME` the shell writes just before
//!   `autoinit start NAME` to the line `bench: running NAME` that the service's command writes
//!   first thing (in the container through a bind of /dev/kmsg): kernel timestamps, so one
//!   clock with microseconds.
//! - **memory**: after dropping the page cache and starting both again, the unit's cgroup
//!   `memory.current` (everything charged to it: processes, the container's tmpfs files, page
//!   cache it read, kernel objects), and the resident size (VmRSS) of each process.

use crate::arch::Arch;
use crate::boot_tests::{self, Target};
use crate::qemu::Vm;
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::time::Duration;

const CLIENT: &str = "/__autoinit__/autoinit";

/// The same program in both: a shell that says it runs, then becomes `sleep`.
const PROGRAM: &str = "ExecStart=/bin/sh -c 'echo bench: running %N > /dev/kmsg; exec sleep 100000'\nStandardOutput=null\n";

fn units() -> Vec<(&'static str, String)> {
    vec![
        ("console", "[Service]\nExecStart=/bin/sh\nStandardInput=tty\nStandardOutput=tty\nTTYPath=/dev/ttyS0\nRestart=always\nKillSignal=1\n".into()),
        ("bench-plain", format!("[Service]\n{PROGRAM}")),
        (
            "bench-box",
            format!(
                "[Service]\n{PROGRAM}RootImage=/opt/containers/box.img\nPrivatePIDs=yes\nPrivateNetwork=yes\nHostname=bench\n\
                 BindPaths=/dev/kmsg\n"
            ),
        ),
    ]
}

const NAMES: [&str; 2] = ["bench-plain", "bench-box"];

use crate::bench_supervise::median;

/// `[  12.345678] text` → (12.345678, text).
fn kmsg_line(l: &str) -> Option<(f64, &str)> {
    let rest = l.trim_start().strip_prefix('[')?;
    let (ts, text) = rest.split_once(']')?;
    Some((ts.trim().parse().ok()?, text.trim()))
}

/// Start spans (ms) per unit from a dmesg text: each `bench: start NAME` to the next
/// `bench: running NAME`.
fn start_spans(dmesg: &str, name: &str) -> Vec<f64> {
    spans(dmesg, name, |text| text == format!("bench: running {name}"))
}

/// Spans (ms) from each `bench: start NAME` to the next line for which `end` holds.
fn spans(dmesg: &str, name: &str, end: impl Fn(&str) -> bool) -> Vec<f64> {
    let start = format!("bench: start {name}");
    let mut out = Vec::new();
    let mut pending: Option<f64> = None;
    for (t, text) in dmesg.lines().filter_map(kmsg_line) {
        if text == start {
            pending = Some(t);
        } else if end(text) {
            if let Some(s) = pending.take() {
                out.push((t - s) * 1000.0);
            }
        }
    }
    out
}

fn sh(vm: &mut Vm, cmd: &str) -> Result<String> {
    let (out, code) = vm.run_status(cmd, Duration::from_secs(90))?;
    if code != 0 {
        return Err(vm.fail(format!("`{cmd}` exited with {code}:\n{out}")));
    }
    Ok(out.trim().to_string())
}

/// Waits until the kernel log holds `count` lines `bench: running NAME`.
fn wait_running(vm: &mut Vm, name: &str, count: usize) -> Result<()> {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n: usize = sh(vm, &format!("dmesg | grep -c 'bench: running {name}$' || true"))?.parse().unwrap_or(0);
        if n >= count {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            bail!("{name}: {n} 'bench: running' lines after 60 s, expected {count}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// One unit's numbers.
struct UnitResult {
    name: &'static str,
    starts_ms: Vec<f64>,
    memory_current: u64,
    /// (comm, VmRSS kB) of each process in its cgroup.
    processes: Vec<(String, u64)>,
}

/// Boots the guest, measures, returns the markdown section.
pub fn section(runs: usize, date: &str) -> Result<String> {
    let arch = Arch::X86_64;
    let t: Target = boot_tests::prepare(arch, None)?;
    let units = units();
    let unit_refs: Vec<(&str, &str)> = units.iter().map(|(n, u)| (*n, u.as_str())).collect();
    let disk = crate::container_tests::boot_disk(&t, &unit_refs, "bench")?;
    let mut vm = crate::container_tests::boot(&t, "bench-containers", &[disk])?;
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    // Each unit ran once at boot; every start below must be seen running before the next step.
    let mut seen = 1;
    for round in 1..=runs {
        seen += 1;
        for name in NAMES {
            sh(&mut vm, &format!("{CLIENT} stop {name}"))?;
            sh(&mut vm, &format!("echo bench: start {name} > /dev/kmsg; {CLIENT} start {name}"))?;
            wait_running(&mut vm, name, seen)?;
        }
        println!("containers bench: round {round}/{runs} done");
    }
    // Memory: from a cold page cache, both started again.
    for name in NAMES {
        sh(&mut vm, &format!("{CLIENT} stop {name}"))?;
    }
    sh(&mut vm, "sync; echo 3 > /proc/sys/vm/drop_caches")?;
    for name in NAMES {
        sh(&mut vm, &format!("{CLIENT} start {name}"))?;
        wait_running(&mut vm, name, seen + 1)?;
    }
    std::thread::sleep(Duration::from_secs(2));
    let dmesg = sh(&mut vm, "dmesg | grep -E 'bench: |autoinit: RootImage '")?;
    let mut mounted = spans(&dmesg, "bench-box", |t| t.starts_with("autoinit: RootImage ") && t.contains(" mounted at "));
    mounted.truncate(runs);
    let mut results = Vec::new();
    for name in NAMES {
        let mem = sh(&mut vm, &format!("cat /sys/fs/cgroup/autoinit/{name}/memory.current"))?;
        let pids = sh(&mut vm, &format!("cat /sys/fs/cgroup/autoinit/{name}/cgroup.procs"))?;
        let mut processes = Vec::new();
        for pid in pids.lines().filter(|l| !l.trim().is_empty()) {
            let status = sh(&mut vm, &format!("grep -E '^(Name|VmRSS):' /proc/{}/status", pid.trim()))?;
            let field = |k: &str| status.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_string()).unwrap_or_default();
            let rss = field("VmRSS:").split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0);
            processes.push((field("Name:"), rss));
        }
        let mut starts = start_spans(&dmesg, name);
        // The last start (cold cache) is measured for memory, not timing.
        starts.truncate(runs);
        results.push(UnitResult {
            name,
            starts_ms: starts,
            memory_current: mem.parse().with_context(|| format!("memory.current of {name}: '{mem}'"))?,
            processes,
        });
    }
    vm.send_line(&format!("{CLIENT} poweroff"))?;
    let _ = vm.expect("reboot: Power down", Duration::from_secs(120));
    let load_after = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    if results.iter().any(|r| r.starts_ms.len() < runs) {
        bail!("not every start was measured: {:?}", results.iter().map(|r| r.starts_ms.len()).collect::<Vec<_>>());
    }
    let mut md = String::new();
    let _ = write!(
        md,
        "\n## Containers\n\nMeasured on {date} by `cargo xtask bench --only containers`, x86_64 under QEMU TCG ({} MiB guest), \
         host load average {} before and {} after. Reported, never asserted.\n\n\
         The same program, `/bin/sh -c 'echo bench: running NAME > /dev/kmsg; exec sleep 100000'`, runs as a plain service \
         (`bench-plain`) and as a container (`bench-box`: `RootImage=` a 2 MiB busybox squashfs, `PrivatePIDs=yes`, \
         `PrivateNetwork=yes`, `Hostname=`, `BindPaths=/dev/kmsg`). **Start** is from the kmsg line the shell writes just \
         before `autoinit start NAME` to the line the command writes first (kernel timestamps), over {runs} stop/start \
         rounds, one unit at a time; it covers the fork, the cgroup, and for the container the namespaces, the loop device, \
         the squashfs mount, the tmpfs root, /proc, /sys, /dev, pivot_root and the fork of the service under the container's \
         init. **Memory** is taken after `drop_caches` and one more start of each: the unit cgroup's `memory.current` \
         (what the kernel charges to it: process pages, the container's tmpfs files, page cache read through it, kernel \
         objects) and each process's VmRSS.\n\n",
        t.board.qemu.as_ref().map_or(0, |q| q.memory_mb),
        load_before.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        load_after.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    );
    let _ = writeln!(md, "| unit | start, median (ms) | start, min–max (ms) | memory.current (KiB) | processes (VmRSS KiB) |");
    let _ = writeln!(md, "|---|---:|---:|---:|---|");
    for r in &results {
        let min = r.starts_ms.iter().copied().fold(f64::INFINITY, f64::min);
        let max = r.starts_ms.iter().copied().fold(0.0, f64::max);
        let procs: Vec<String> = r.processes.iter().map(|(n, k)| format!("{n} {k}")).collect();
        let _ = writeln!(
            md,
            "| `{}` | {:.1} | {:.1}–{:.1} | {} | {} |",
            r.name,
            median(r.starts_ms.clone()),
            min,
            max,
            r.memory_current / 1024,
            procs.join(", ")
        );
        println!("containers bench: {} start median {:.1} ms, memory.current {} KiB, {:?}", r.name, median(r.starts_ms.clone()), r.memory_current / 1024, r.processes);
    }
    if let [plain, cont] = results.as_slice() {
        let _ = writeln!(
            md,
            "\nA container costs {:.1} ms more to start (median) and {} KiB more memory.current than the plain service. \
             Of the container's start, {:.1} ms (median) pass until the image is mounted (autoinit's `RootImage ... mounted` \
             line); the rest is the root, the mounts inside, pivot_root, the fork and the exec of `sh` from the image. Every \
             start attaches a new loop device, so the image's page cache starts cold and busybox is read and decompressed \
             again: a likely part of that rest, not measured separately.",
            median(cont.starts_ms.clone()) - median(plain.starts_ms.clone()),
            cont.memory_current as i64 / 1024 - plain.memory_current as i64 / 1024,
            median(mounted.clone()),
        );
    }
    Ok(md)
}

/// Replaces the `## Containers` section of `md` (up to the next `## ` or the end) with
/// `section`, or appends it.
pub fn splice(md: &str, section: &str) -> String {
    let head = "\n## Containers\n";
    match md.find(head) {
        Some(i) => {
            let after = &md[i + head.len()..];
            let end = after.find("\n## ").map_or(md.len(), |j| i + head.len() + j);
            format!("{}{}{}", &md[..i], section, &md[end..])
        }
        None => format!("{}{}", md.trim_end_matches('\n').to_string() + "\n", section),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_pair_each_start_with_the_next_running_line() {
        let dmesg = "[   10.000000] bench: start a\n[   10.025000] bench: running a\n[   11.000000] bench: start b\n\
                     [   11.100000] bench: running b\n[   12.000000] bench: start a\n[   12.010000] bench: running a\n\
                     [   13.000000] bench: running a\n";
        let a = start_spans(dmesg, "a");
        assert_eq!(a.len(), 2);
        assert!((a[0] - 25.0).abs() < 1e-6 && (a[1] - 10.0).abs() < 1e-6);
        assert_eq!(start_spans(dmesg, "b").len(), 1);
    }

    #[test]
    fn the_section_is_replaced_or_appended() {
        let md = "# B\n\n## Boot stage\nx\n";
        let once = splice(md, "\n## Containers\none\n");
        assert_eq!(once, "# B\n\n## Boot stage\nx\n\n## Containers\none\n");
        let twice = splice(&once, "\n## Containers\ntwo\n");
        assert_eq!(twice, "# B\n\n## Boot stage\nx\n\n## Containers\ntwo\n");
        let mid = splice("# B\n\n## Containers\nold\n\n## Later\nz\n", "\n## Containers\nnew\n");
        assert_eq!(mid, "# B\n\n## Containers\nnew\n\n## Later\nz\n");
    }
}
