//! `cargo xtask bench`: sizes of autoinit next to Debian's static busybox, and the boot stage
//! against a busybox-shell script under QEMU (`bench_boot.rs`), written to docs/benchmarks.md.
//! Numbers are reported, never asserted.

use crate::arch::Arch;
use crate::debian;
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::process::Command;

fn kib(n: u64) -> String {
    format!("{:.1}", n as f64 / 1024.0)
}

/// True when the ELF file has no `.symtab` (what `strip` removes).
fn is_stripped(data: &[u8]) -> bool {
    !data.windows(8).any(|w| w == b".symtab\0")
}

/// The options of `cargo xtask bench`.
struct Options {
    runs: usize,
    /// Architectures whose boot stage is measured.
    boot_arches: Vec<Arch>,
    /// `--only upgrade`: measure only the on-the-fly upgrade and replace its section.
    only_upgrade: bool,
    /// `--no-upgrade`: leave the upgrade out of a whole run.
    no_upgrade: bool,
    /// `--only containers`: measure containers only and replace that section of the file.
    only_containers: bool,
    /// `--only supervision`: measure the service manager only (bench_supervise.rs).
    only_supervision: bool,
    /// `--no-supervision`: leave it out of a whole run.
    no_supervision: bool,
    /// Whether the containers section is measured (not with `--no-containers`).
    containers: bool,
    /// `--part memory|respawn|orphans` (with `--only supervision`): measure these parts only
    /// and replace only their subsections (empty: every part, the whole section).
    supervision_parts: Vec<crate::bench_supervise::Part>,
}

fn options(args: &[String]) -> Result<Options> {
    let mut o = Options { runs: crate::bench_boot::RUNS, boot_arches: Vec::new(), only_upgrade: false, no_upgrade: false, only_containers: false, containers: true, only_supervision: false, no_supervision: false, supervision_parts: Vec::new() };
    let mut no_boot = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => {
                let v = it.next().context("--runs needs a value")?;
                o.runs = v.parse().ok().filter(|n| *n > 0).with_context(|| format!("--runs {v}: not a positive number"))?;
            }
            "--arch" => {
                let v = it.next().context("--arch needs a value")?;
                let a = Arch::parse(v)?;
                if crate::boot_tests::board_for(a).is_err() {
                    bail!("--arch {v}: no QEMU board for it (boards/qemu-{}.toml)", a.name());
                }
                o.boot_arches.push(a);
            }
            "--no-boot" => no_boot = true,
            "--no-upgrade" => o.no_upgrade = true,
            "--no-containers" => o.containers = false,
            "--no-supervision" => o.no_supervision = true,
            "--part" => {
                let v = it.next().context("--part needs a value")?;
                let part = crate::bench_supervise::Part::parse(v).with_context(|| format!("--part {v}: expected memory, respawn or orphans"))?;
                if !o.supervision_parts.contains(&part) {
                    o.supervision_parts.push(part);
                }
            }
            "--only" => match it.next().map(String::as_str) {
                Some("upgrade") => o.only_upgrade = true,
                Some("containers") => o.only_containers = true,
                Some("supervision") => o.only_supervision = true,
                v => bail!("--only {}: expected upgrade, containers or supervision", v.unwrap_or("(nothing)")),
            },
            other => bail!("unexpected argument '{other}' (bench [--runs N] [--arch A]... [--no-boot] [--no-upgrade] [--no-containers] [--no-supervision] | --only upgrade|containers|supervision [--part memory|respawn|orphans]...)"),
        }
    }
    if !o.supervision_parts.is_empty() && !o.only_supervision {
        bail!("--part goes with --only supervision");
    }
    if no_boot {
        o.boot_arches.clear();
    } else if o.boot_arches.is_empty() {
        o.boot_arches = Arch::ALL.to_vec();
    }
    Ok(o)
}

pub(crate) fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

pub fn run(args: &[String]) -> Result<()> {
    let opts = options(args)?;
    crate::setup()?;
    let started = std::time::Instant::now();
    let rustc = Command::new("rustc").arg("--version").output().context("running rustc --version")?;
    let rustc = String::from_utf8_lossy(&rustc.stdout).trim().to_string();
    let date = Command::new("date").args(["-u", "+%Y-%m-%d"]).output().context("running date")?;
    let date = String::from_utf8_lossy(&date.stdout).trim().to_string();
    let path = crate::root().join("docs/benchmarks.md");
    if opts.only_upgrade {
        let section = crate::bench_upgrade::section(&date)?;
        let old = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".into());
        std::fs::write(&path, replace_section(&old, "\n## On-the-fly upgrade\n", &section)).with_context(|| format!("writing {}", path.display()))?;
        println!("{section}");
        println!("xtask: wrote the upgrade section of {} ({:.0} s)", path.display(), started.elapsed().as_secs_f64());
        return Ok(());
    }

    if opts.only_supervision && opts.supervision_parts == [crate::bench_supervise::Part::Memory] {
        let part = crate::bench_supervise::memory_part(&date)?;
        let old = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".into());
        std::fs::write(&path, replace_subsection(&old, "\n### PID 1 resident memory\n", &part)).with_context(|| format!("writing {}", path.display()))?;
        println!("{part}");
        println!("xtask: wrote the PID 1 memory part of {} ({:.0} s)", path.display(), started.elapsed().as_secs_f64());
        return Ok(());
    }
    if opts.only_supervision {
        let section = crate::bench_supervise::section(&date, &opts.supervision_parts)?;
        let old = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".into());
        let new = if opts.supervision_parts.is_empty() {
            replace_section(&old, "\n## Supervision", &section)
        } else {
            crate::bench_supervise::splice_parts(&old, &section, &opts.supervision_parts)
        };
        std::fs::write(&path, new).with_context(|| format!("writing {}", path.display()))?;
        println!("xtask: wrote the supervision section of {} ({:.0} s)", path.display(), started.elapsed().as_secs_f64());
        return Ok(());
    }
    if opts.only_containers {
        let section = crate::bench_containers::section(opts.runs.max(5), &date)?;
        let old = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".into());
        std::fs::write(&path, crate::bench_containers::splice(&old, &section)).with_context(|| format!("writing {}", path.display()))?;
        println!("xtask: wrote the Containers section of {} ({:.0} s)", path.display(), started.elapsed().as_secs_f64());
        return Ok(());
    }
    let mut rows = String::new();
    let mut notes = String::new();
    let mut sizes: Vec<(Arch, u64)> = Vec::new();
    for arch in Arch::ALL {
        let bin = crate::build::autoinit(arch)?;
        let data = std::fs::read(&bin).with_context(|| format!("reading {}", bin.display()))?;
        let size = data.len() as u64;
        sizes.push((arch, size));
        if !is_stripped(&data) {
            let _ = writeln!(notes, "- {}: the binary still has a symbol table (not stripped).", arch.name());
        }
        let (bb_cells, ratio) = match debian::busybox_versioned(arch.debian()) {
            Ok((p, version)) => {
                let bb = std::fs::metadata(&p)?.len();
                let ratio = format!("{:.1}%", size as f64 * 100.0 / bb as f64);
                (format!("{bb} | {} | {version}", kib(bb)), ratio)
            }
            Err(e) => {
                let _ = writeln!(notes, "- {}: busybox-static:{} unavailable: {e:#}", arch.name(), arch.debian());
                ("n/a | n/a | n/a".into(), "n/a".into())
            }
        };
        let _ = writeln!(rows, "| {} | `{}` | {size} | {} | {bb_cells} | {ratio} |", arch.name(), arch.triple(), kib(size));
        println!("{:8} autoinit {size:>7} bytes ({:>5} KiB)   busybox {}   autoinit/busybox {ratio}", arch.name(), kib(size), bb_cells.replace(" | ", " "));
    }

    let mut md = String::new();
    let _ = write!(
        md,
        "# Benchmarks

Produced by `cargo xtask bench` on {date} with `{rustc}`. The numbers are measured and
reported, never asserted by a test; run the command again to refresh this file.

## Binary size

autoinit is the release build of `target/<triple>/release/autoinit` (`opt-level = \"z\"`, LTO,
one codegen unit, `panic = \"abort\"`, `strip = true`: the file has no symbol table, which the
command checks). For scale, the busybox columns give the size of Debian's statically linked
`busybox` from the package `busybox-static` of the same Debian architecture (bookworm; riscv64
from trixie, which bookworm lacks), the usual rescue-shell companion of a minimal PID 1. Sizes are
whole files; KiB = 1024 bytes.

| arch | target | autoinit (bytes) | autoinit (KiB) | busybox (bytes) | busybox (KiB) | busybox-static version | autoinit / busybox |
|------|--------|-----------------:|---------------:|----------------:|--------------:|------------------------|-------------------:|
{rows}"
    );
    if !notes.is_empty() {
        let _ = write!(md, "\nNotes:\n\n{notes}");
    }
    if !opts.boot_arches.is_empty() {
        md.push_str(&boot_section(&opts, &date, &sizes)?);
    }
    if !opts.no_upgrade {
        match crate::bench_upgrade::section(&date) {
            Ok(section) => md.push_str(&section),
            Err(e) => {
                eprintln!("xtask: bench: upgrade: {e:#}");
                let first = format!("{e:#}").lines().next().unwrap_or("").to_string();
                let _ = write!(md, "\n## On-the-fly upgrade\n\nNot measured: {first} (see target/qemu-logs/x86_64-bench-upgrade.log)\n");
            }
        }
    }
    if !opts.no_supervision {
        match crate::bench_supervise::section(&date, &[]) {
            Ok(section) => md.push_str(&section),
            Err(e) => {
                eprintln!("xtask: bench: supervision: {e:#}");
                let first = format!("{e:#}").lines().next().unwrap_or("").to_string();
                let _ = write!(md, "\n## Supervision\n\nNot measured: {first}\n");
            }
        }
    }
    if opts.containers {
        match crate::bench_containers::section(opts.runs.max(5), &date) {
            Ok(s) => md.push_str(&s),
            Err(e) => {
                eprintln!("xtask: bench: containers: {e:#}");
                let first = format!("{e:#}").lines().next().unwrap_or("").to_string();
                let _ = write!(md, "\n## Containers\n\nNot measured: {first} (see target/qemu-logs/x86_64-bench-containers.log)\n");
            }
        }
    }
    std::fs::write(&path, md).with_context(|| format!("writing {}", path.display()))?;
    println!("xtask: wrote {} ({:.0} s)", path.display(), started.elapsed().as_secs_f64());
    Ok(())
}

/// `text` with the section starting at `heading` (up to the next `\n## ` or the end) replaced
/// by `section`, or with `section` appended if there is none.
fn replace_section(text: &str, heading: &str, section: &str) -> String {
    match text.find(heading) {
        Some(start) => {
            let after = start + heading.len();
            let end = text[after..].find("\n## ").map_or(text.len(), |i| after + i);
            format!("{}{}\n{}", &text[..start], section.trim_end_matches('\n'), &text[end..])
        }
        None => format!("{}\n{}", text.trim_end_matches('\n'), section),
    }
}

/// `text` with the subsection starting at `heading` (up to the next `\n### ` or `\n## `)
/// replaced by `part` (which starts with its own heading), or with `part` appended if there is none.
fn replace_subsection(text: &str, heading: &str, part: &str) -> String {
    match text.find(heading) {
        Some(start) => {
            let after = start + heading.len();
            let end = [text[after..].find("\n### "), text[after..].find("\n## ")].into_iter().flatten().min().map_or(text.len(), |i| after + i);
            format!("{}\n{}\n{}", &text[..start], part.trim_matches('\n'), &text[end..])
        }
        None => format!("{}\n{}", text.trim_end_matches('\n'), part),
    }
}

/// Measures the boot stage on each architecture and returns the section "Boot stage". An
/// architecture that cannot be measured gets a line saying why; the others are still reported.
fn boot_section(opts: &Options, date: &str, sizes: &[(Arch, u64)]) -> Result<String> {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let load_before = loadavg();
    let t = std::time::Instant::now();
    let mut results = Vec::new();
    let mut failures = String::new();
    for &arch in &opts.boot_arches {
        match crate::bench_boot::measure(arch, opts.runs) {
            Ok(r) => results.push(r),
            Err(e) => {
                eprintln!("xtask: bench: {}: {e:#}", arch.name());
                let first = format!("{e:#}").lines().next().unwrap_or("").to_string();
                let _ = writeln!(failures, "- {}: not measured: {first} (see target/qemu-logs/bench-{}-*.log)", arch.name(), arch.name());
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let load_after = loadavg();
    let mut md = String::new();
    let _ = write!(
        md,
        "\n## Boot stage\n\nMeasured on {date}: {} boots in {secs:.0} s on a host with {cpus} CPUs, load average {load_before} before and \
         {load_after} after (1, 5, 15 min).\n\n",
        results.iter().map(|r| r.samples_len()).sum::<usize>()
    );
    if !results.is_empty() {
        let _ = writeln!(
            md,
            "Per architecture, under TCG (medians; details and method below): the stripped size of autoinit, the time from the exec of \
             `/init` to stage 2 for autoinit's boot stage and for the busybox-shell script doing the same steps on the same \
             arch, kernel, modules and disk, and PID 1's CPU time with its reaped children's.\n"
        );
        let _ = writeln!(md, "| arch | autoinit size | autoinit boot stage | busybox script | autoinit − script | autoinit CPU | script CPU (with children) | boots each |");
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for r in &results {
            let size = sizes.iter().find(|(a, _)| *a == r.arch).map(|(_, s)| *s);
            let _ = writeln!(md, "{}", r.summary_row(size));
        }
        md.push('\n');
    }
    md.push_str(&crate::bench_boot::method(opts.runs));
    md.push('\n');
    for r in &results {
        md.push_str(&r.markdown());
    }
    if !failures.is_empty() {
        let _ = write!(md, "Not measured:\n\n{failures}");
    }
    Ok(md)
}

#[cfg(test)]
mod section_tests {
    #[test]
    fn a_section_is_replaced_or_appended() {
        let h = "\n## Up\n";
        assert_eq!(super::replace_section("# B\n\n## A\na\n\n## Up\nold\n\n## C\nc\n", h, "\n## Up\nnew\n"), "# B\n\n## A\na\n\n## Up\nnew\n\n## C\nc\n");
        assert_eq!(super::replace_section("# B\n\n## Up\nold\n", h, "\n## Up\nnew\n"), "# B\n\n## Up\nnew\n");
        assert_eq!(super::replace_section("# B\n", h, "\n## Up\nnew\n"), "# B\n\n## Up\nnew\n");
    }
}
