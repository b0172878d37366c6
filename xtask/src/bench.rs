//! `cargo xtask bench`: sizes of autoinit next to Debian's static busybox, the boot stage
//! against a busybox-shell script under QEMU (`bench_boot.rs`) and the service manager
//! (`bench_supervise.rs`), written to docs/benchmarks.md. Each part has its own section between
//! markers: `--only PART` rewrites that section and leaves the others as they are.
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

/// The parts of `cargo xtask bench`, in the order of their sections.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Part {
    Size,
    Boot,
    Supervision,
}

impl Part {
    const ALL: [Part; 3] = [Part::Size, Part::Boot, Part::Supervision];

    fn name(self) -> &'static str {
        match self {
            Part::Size => "size",
            Part::Boot => "boot",
            Part::Supervision => "supervision",
        }
    }

    fn begin(self) -> String {
        format!("<!-- bench: {} begin -->", self.name())
    }

    fn end(self) -> String {
        format!("<!-- bench: {} end -->", self.name())
    }
}

/// The options of `cargo xtask bench`.
struct Options {
    runs: usize,
    /// Architectures whose boot stage is measured.
    boot_arches: Vec<Arch>,
    parts: Vec<Part>,
}

const USAGE: &str = "bench [--only size|boot|supervision]... [--runs N] [--arch A]... [--no-boot]";

fn options(args: &[String]) -> Result<Options> {
    let mut o = Options { runs: crate::bench_boot::RUNS, boot_arches: Vec::new(), parts: Vec::new() };
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
            "--only" => {
                let v = it.next().context("--only needs a part: size, boot or supervision")?;
                for name in v.split(',') {
                    let p = Part::ALL.into_iter().find(|p| p.name() == name).with_context(|| format!("--only {name}: not a part (size, boot, supervision)"))?;
                    if !o.parts.contains(&p) {
                        o.parts.push(p);
                    }
                }
            }
            other => bail!("unexpected argument '{other}' ({USAGE})"),
        }
    }
    if o.parts.is_empty() {
        o.parts = Part::ALL.to_vec();
    }
    if no_boot {
        if o.parts == [Part::Boot] {
            bail!("--no-boot with --only boot leaves nothing to do");
        }
        o.parts.retain(|p| *p != Part::Boot);
    }
    if !o.parts.contains(&Part::Boot) {
        o.boot_arches.clear();
    } else if o.boot_arches.is_empty() {
        o.boot_arches = Arch::ALL.to_vec();
    }
    Ok(o)
}

/// The top of a fresh docs/benchmarks.md, before the sections.
const PREAMBLE: &str = "# Benchmarks

Produced by `cargo xtask bench`. Each section says when it was measured: `cargo xtask bench --only size|boot|supervision`
measures one part and rewrites its section (between its `<!-- bench: ... -->` markers), leaving the others as they are.
The numbers are measured and reported, never asserted by a test.
";

/// `doc` with the section of `part` replaced by `body` (markers added). A section not yet in
/// the file goes before the first section that comes after it; a file without any section
/// (missing, or older than the markers) starts again from [`PREAMBLE`].
fn splice(doc: &str, part: Part, body: &str) -> String {
    let block = format!("{}\n{}\n{}\n", part.begin(), body.trim_end(), part.end());
    let doc = if doc.contains("<!-- bench: ") { doc.to_string() } else { format!("{PREAMBLE}\n") };
    if let (Some(b), Some(e)) = (doc.find(&part.begin()), doc.find(&part.end())) {
        if b < e {
            let after = e + part.end().len();
            let after = if doc[after..].starts_with('\n') { after + 1 } else { after };
            return format!("{}{block}{}", &doc[..b], &doc[after..]);
        }
    }
    let later = Part::ALL.iter().skip_while(|p| **p != part).skip(1).filter_map(|p| doc.find(&p.begin())).min();
    match later {
        Some(at) => format!("{}{block}\n{}", &doc[..at], &doc[at..]),
        None => format!("{}{}{block}", doc, if doc.ends_with("\n\n") { "" } else { "\n" }),
    }
}

fn loadavg() -> String {
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
    let mut doc = std::fs::read_to_string(&path).unwrap_or_default();

    if opts.parts.contains(&Part::Size) || opts.parts.contains(&Part::Boot) {
        let (size_md, sizes) = size_section(&date, &rustc)?;
        if opts.parts.contains(&Part::Size) {
            doc = splice(&doc, Part::Size, &size_md);
        }
        if opts.parts.contains(&Part::Boot) {
            doc = splice(&doc, Part::Boot, &boot_section(&opts, &date, &sizes)?);
        }
    }
    if opts.parts.contains(&Part::Supervision) {
        doc = splice(&doc, Part::Supervision, &crate::bench_supervise::section(&date)?);
    }
    std::fs::write(&path, doc).with_context(|| format!("writing {}", path.display()))?;
    println!("xtask: wrote {} ({:.0} s)", path.display(), started.elapsed().as_secs_f64());
    Ok(())
}

/// Builds autoinit for every arch and returns the section "Binary size" and the sizes.
fn size_section(date: &str, rustc: &str) -> Result<(String, Vec<(Arch, u64)>)> {
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
        "## Binary size

Measured on {date} with `{rustc}`. autoinit is the release build of `target/<triple>/release/autoinit` (`opt-level = \"z\"`, LTO,
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
    Ok((md, sizes))
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
        "## Boot stage\n\nMeasured on {date}: {} boots in {secs:.0} s on a host with {cpus} CPUs, load average {load_before} before and \
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
mod tests {
    use super::*;

    #[test]
    fn sections_are_replaced_between_markers_and_the_others_kept() {
        // A file older than the markers starts again from the preamble.
        let d = splice("# Benchmarks\nold text\n", Part::Supervision, "## Supervision\nv1\n");
        assert!(d.starts_with(PREAMBLE) && !d.contains("old text"), "{d}");
        assert!(d.ends_with("<!-- bench: supervision begin -->\n## Supervision\nv1\n<!-- bench: supervision end -->\n"), "{d}");
        // A missing section goes before the later ones, in the order of the parts.
        let d = splice(&d, Part::Size, "## Binary size\ns1");
        let d = splice(&d, Part::Boot, "## Boot stage\nb1");
        let at = |t: &str| d.find(t).unwrap();
        assert!(at("## Binary size") < at("## Boot stage") && at("## Boot stage") < at("## Supervision"), "{d}");
        // Replacing one leaves the others byte for byte.
        let d2 = splice(&d, Part::Boot, "## Boot stage\nb2");
        assert_eq!(d2.replace("b2", "b1"), d);
        let d3 = splice(&d2, Part::Supervision, "## Supervision\nv2");
        assert_eq!(d3.replace("v2", "v1"), d2);
        assert_eq!(d3.matches("<!-- bench: supervision begin -->").count(), 1);
    }

    #[test]
    fn only_selects_parts() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(options(&[]).unwrap().parts, Part::ALL);
        let o = options(&args(&["--only", "supervision"])).unwrap();
        assert_eq!((o.parts.as_slice(), o.boot_arches.is_empty()), ([Part::Supervision].as_slice(), true));
        assert_eq!(options(&args(&["--no-boot"])).unwrap().parts, [Part::Size, Part::Supervision]);
        assert_eq!(options(&args(&["--only", "boot,size"])).unwrap().parts, [Part::Boot, Part::Size]);
        assert!(options(&args(&["--only", "speed"])).is_err());
        assert!(options(&args(&["--only", "boot", "--no-boot"])).is_err());
    }
}
