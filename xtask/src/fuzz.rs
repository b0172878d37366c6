//! `cargo xtask fuzz`: the libFuzzer targets of fuzz/ (see fuzz/README.md), briefly as a smoke
//! test or for a campaign whose figures go to docs/reliability.md.
//!
//! The targets are built once with `cargo +nightly fuzz build` (debug assertions, no
//! sanitizer) and their binaries run directly, so the arguments and the output are ours to
//! read. Each run reads `fuzz/corpus/<t>` (the working corpus, not committed, where new inputs
//! go), `fuzz/seeds/<t>` and `fuzz/regressions/<t>`; libFuzzer runs every input of those first,
//! so each run replays every past crash. A crash input is copied into `fuzz/regressions/<t>/`.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: cargo xtask fuzz (--smoke [--seconds N] | --campaign DURATION [--jobs N] [--runs N]) [--target T]...
  --smoke            every target briefly: N seconds in all (default 60), split evenly
  --campaign D       D per target: 90s, 10m, 2h (a bare number is minutes); writes the figures
                     to docs/reliability.md. --campaign-minutes M is the same as --campaign Mm
  --jobs N           libFuzzer processes per target in a campaign (default 1), sharing its corpus
  --runs N           stop each process after N executions (10M, 500k or a number), even before
                     the campaign's time is over (libFuzzer -runs); the figures show the time taken
  --target T         only this target (repeatable; default: every [[bin]] of fuzz/Cargo.toml)
A crash fails the run and prints the reproducer; the input is kept in fuzz/regressions/<target>/.";

/// Memory limit of one libFuzzer process: a parser of autoinit allocates nothing, so anything
/// near this is a leak in the harness or a runaway input.
const RSS_LIMIT_MB: u32 = 1024;
/// Seconds one input may take before libFuzzer calls it a hang (PID 1 must not hang either).
const TIMEOUT_SECS: u32 = 10;
/// The smoke test's whole budget and the least any target gets.
const SMOKE_SECONDS: u64 = 60;
const SMOKE_MIN_SECONDS: u64 = 3;

const BEGIN: &str = "<!-- fuzz-figures:begin (cargo xtask fuzz --campaign writes this part) -->";
const END: &str = "<!-- fuzz-figures:end -->";

#[derive(Debug, PartialEq)]
enum Mode {
    Smoke { seconds: u64 },
    /// `runs`: the most executions of each libFuzzer process (`-runs=N`), if limited.
    Campaign { per_target: Duration, jobs: usize, runs: Option<u64> },
}

#[derive(Debug, PartialEq)]
struct Options {
    mode: Mode,
    targets: Vec<String>,
}

/// `90s`, `10m`, `2h` or a bare number of minutes.
fn duration(v: &str) -> Result<Duration> {
    let (num, unit) = match v.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => v.split_at(i),
        None => (v, "m"),
    };
    let n: u64 = num.parse().with_context(|| format!("{v}: expected a duration such as 90s, 10m or 2h"))?;
    let secs = match unit {
        "s" => n,
        "m" | "min" => n * 60,
        "h" => n * 3600,
        _ => bail!("{v}: unknown unit '{unit}' (s, m or h)"),
    };
    if secs == 0 {
        bail!("{v}: a campaign needs some time");
    }
    Ok(Duration::from_secs(secs))
}

/// `10M`, `500k` or a plain number of executions.
fn count(v: &str) -> Result<u64> {
    let (num, mult) = match v.strip_suffix(['M', 'm']) {
        Some(n) => (n, 1_000_000),
        None => match v.strip_suffix(['k', 'K']) {
            Some(n) => (n, 1_000),
            None => (v, 1),
        },
    };
    let n: u64 = num.replace(['_', ','], "").parse().with_context(|| format!("--runs {v}: expected a count such as 10M, 500k or 2000"))?;
    if n == 0 {
        bail!("--runs {v}: a campaign needs some executions");
    }
    Ok(n * mult)
}

fn parse(args: &[String]) -> Result<Options> {
    let (mut smoke, mut campaign, mut seconds, mut jobs, mut runs) = (false, None, SMOKE_SECONDS, 1, None);
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value\n{USAGE}"));
        match a.as_str() {
            "--smoke" => smoke = true,
            "--seconds" => seconds = value()?.parse().context("--seconds: expected a number")?,
            "--campaign" => campaign = Some(duration(value()?)?),
            "--campaign-minutes" => campaign = Some(duration(&format!("{}m", value()?))?),
            "--jobs" | "-j" => jobs = value()?.parse().ok().filter(|&n| n > 0).context("--jobs: expected a positive number")?,
            "--target" => targets.push(value()?.clone()),
            "--runs" => runs = Some(count(value()?)?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unexpected argument '{other}'\n{USAGE}"),
        }
    }
    let mode = match (smoke, campaign) {
        (true, None) => Mode::Smoke { seconds },
        (false, Some(per_target)) => Mode::Campaign { per_target, jobs, runs },
        _ => bail!("give one of --smoke and --campaign\n{USAGE}"),
    };
    if smoke && runs.is_some() {
        bail!("--runs is for a campaign\n{USAGE}");
    }
    Ok(Options { mode, targets })
}

fn fuzz_dir() -> PathBuf {
    let root = crate::root();
    root.canonicalize().unwrap_or(root).join("fuzz")
}

/// The targets: the `[[bin]]` entries of fuzz/Cargo.toml.
pub fn targets() -> Result<Vec<String>> {
    let path = fuzz_dir().join("Cargo.toml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let manifest: toml::Value = toml::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
    let bins = manifest.get("bin").and_then(|b| b.as_array()).context("fuzz/Cargo.toml has no [[bin]]")?;
    Ok(bins.iter().filter_map(|b| b.get("name")?.as_str().map(String::from)).collect())
}

/// Nightly and cargo-fuzz, installed when missing.
fn ensure_tools() -> Result<()> {
    let list = Command::new("rustup").args(["toolchain", "list"]).output().context("run rustup (install it from rustup.rs)")?;
    if !String::from_utf8_lossy(&list.stdout).lines().any(|l| l.starts_with("nightly")) {
        println!("xtask: rustup toolchain install nightly --profile minimal");
        let st = Command::new("rustup").args(["toolchain", "install", "nightly", "--profile", "minimal"]).status()?;
        if !st.success() {
            bail!("rustup toolchain install nightly failed ({st})");
        }
    }
    let fuzz_ok = cargo_nightly().args(["fuzz", "--version"]).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !fuzz_ok {
        println!("xtask: cargo install cargo-fuzz --locked");
        let st = Command::new("cargo").args(["install", "cargo-fuzz", "--locked"]).status()?;
        if !st.success() {
            bail!("cargo install cargo-fuzz failed ({st})");
        }
    }
    Ok(())
}

/// `cargo +nightly` through rustup's proxy, without what the outer `cargo run` set.
fn cargo_nightly() -> Command {
    let mut c = Command::new("cargo");
    c.arg("+nightly").current_dir(crate::root());
    for v in ["RUSTUP_TOOLCHAIN", "RUSTC", "RUSTC_WRAPPER", "CARGO_TARGET_DIR", "CARGO_BUILD_TARGET"] {
        c.env_remove(v);
    }
    c
}

fn build(targets: &[String]) -> Result<()> {
    println!("xtask: cargo +nightly fuzz build -s none (debug assertions on)");
    let mut c = cargo_nightly();
    c.args(["fuzz", "build", "-s", "none", "--debug-assertions", "--target", &host_triple()]);
    // One target builds only that one; several build all (one cargo call).
    if let [one] = targets {
        c.arg(one);
    }
    let st = c.status().context("run cargo fuzz build")?;
    if !st.success() {
        bail!("cargo fuzz build failed ({st})");
    }
    Ok(())
}

/// The host's triple, which the targets are built for (Debian: glibc).
fn host_triple() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

fn binary(target: &str) -> PathBuf {
    fuzz_dir().join("target").join(host_triple()).join("release").join(target)
}

/// What one target's run showed.
#[derive(Debug, Default, Clone, PartialEq)]
struct Figures {
    target: String,
    seconds: f64,
    execs: u64,
    /// Edges (`cov:`) and features (`ft:`) of libFuzzer's last status line; the most any
    /// process of the run reached.
    cov: u64,
    ft: u64,
    corpus_files: usize,
    corpus_bytes: u64,
    crashes: Vec<PathBuf>,
    /// The panic message of the first crash, for the report.
    crash_message: Option<String>,
}

impl Figures {
    fn execs_per_sec(&self) -> f64 {
        if self.seconds > 0.0 { self.execs as f64 / self.seconds } else { 0.0 }
    }
}

/// The number after `key` in a libFuzzer line: `cov: 547` gives 547.
fn field(line: &str, key: &str) -> Option<u64> {
    let rest = line.split(key).nth(1)?;
    rest.split_whitespace().next()?.trim_end_matches(|c: char| !c.is_ascii_digit()).parse().ok()
}

/// Reads one libFuzzer process's output into `f` (execs add up, coverage takes the maximum).
fn read_log(log: &str, f: &mut Figures) {
    let mut execs = None;
    let mut last_status_execs = 0;
    for line in log.lines() {
        if let Some(n) = line.strip_prefix("stat::number_of_executed_units:") {
            execs = n.trim().parse().ok();
        }
        if line.starts_with('#') && line.contains("cov: ") {
            f.cov = f.cov.max(field(line, "cov: ").unwrap_or(0));
            f.ft = f.ft.max(field(line, "ft: ").unwrap_or(0));
            last_status_execs = line[1..].split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(last_status_execs);
        }
        if let Some(p) = line.split("Test unit written to ").nth(1) {
            f.crashes.push(PathBuf::from(p.trim()));
        }
        if f.crash_message.is_none() && line.contains("panicked at") {
            // `thread '<unnamed>' panicked at src/tar.rs:12:5:` and the message on the next line.
            let next = log.lines().skip_while(|l| *l != line).nth(1).unwrap_or("");
            f.crash_message = Some(format!("{} {}", line.trim(), next.trim()));
        }
    }
    f.execs += execs.unwrap_or(last_status_execs);
}

/// Files and bytes of a directory.
fn dir_size(d: &Path) -> (usize, u64) {
    let Ok(rd) = std::fs::read_dir(d) else { return (0, 0) };
    rd.filter_map(|e| e.ok()?.metadata().ok()).filter(|m| m.is_file()).fold((0, 0), |(n, b), m| (n + 1, b + m.len()))
}

/// Runs `target` for `secs` seconds in `jobs` processes.
fn run_target(target: &str, secs: u64, jobs: usize, runs: Option<u64>) -> Result<Figures> {
    let dir = fuzz_dir();
    let corpus = dir.join("corpus").join(target);
    let artifacts = dir.join("artifacts").join(target);
    let logs = dir.join("artifacts").join("logs");
    for d in [&corpus, &artifacts, &logs] {
        std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
    }
    let mut inputs = vec![corpus.clone()];
    for d in [dir.join("seeds").join(target), dir.join("regressions").join(target)] {
        if d.is_dir() {
            inputs.push(d);
        }
    }
    let start = Instant::now();
    let mut children = Vec::new();
    for job in 0..jobs {
        let log = logs.join(format!("{target}.{job}.log"));
        let out = std::fs::File::create(&log).with_context(|| format!("create {}", log.display()))?;
        let child = Command::new(binary(target))
            .args(&inputs)
            .arg(format!("-max_total_time={secs}"))
            .args(runs.map(|n| format!("-runs={n}")))
            .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
            .arg(format!("-timeout={TIMEOUT_SECS}"))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg("-print_final_stats=1")
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("run {}", binary(target).display()))?;
        children.push((child, log));
    }
    let mut f = Figures { target: target.to_string(), ..Figures::default() };
    for (mut child, log) in children {
        let status = child.wait()?;
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        read_log(&text, &mut f);
        if !status.success() && f.crashes.is_empty() {
            bail!("{target}: libFuzzer exited with {status} without a crash input; see {}", log.display());
        }
    }
    f.seconds = start.elapsed().as_secs_f64();
    (f.corpus_files, f.corpus_bytes) = dir_size(&corpus);
    keep_crashes(&mut f)?;
    Ok(f)
}

/// Shrinks `fuzz/corpus/<target>` to the inputs that keep its coverage (libFuzzer's
/// `-merge=1`), so that the smoke test's start, which runs every input, stays short.
fn minimise(target: &str) -> Result<()> {
    let corpus = fuzz_dir().join("corpus").join(target);
    let min = fuzz_dir().join("corpus").join(format!("{target}.min"));
    let _ = std::fs::remove_dir_all(&min);
    std::fs::create_dir_all(&min)?;
    let log = fuzz_dir().join("artifacts/logs").join(format!("{target}.merge.log"));
    let st = Command::new(binary(target))
        .arg("-merge=1")
        .arg(format!("-rss_limit_mb={RSS_LIMIT_MB}"))
        .arg(format!("-timeout={TIMEOUT_SECS}"))
        .args([&min, &corpus])
        .stdout(std::fs::File::create(&log)?)
        .stderr(std::fs::File::create(&log)?)
        .status()?;
    if !st.success() {
        bail!("{target}: corpus merge failed ({st}); see {}", log.display());
    }
    std::fs::remove_dir_all(&corpus)?;
    std::fs::rename(&min, &corpus)?;
    Ok(())
}

/// Copies each crash input into fuzz/regressions/<target>/ and points `crashes` there.
fn keep_crashes(f: &mut Figures) -> Result<()> {
    let reg = fuzz_dir().join("regressions").join(&f.target);
    for p in &mut f.crashes {
        std::fs::create_dir_all(&reg)?;
        let name = p.file_name().context("crash path without a file name")?;
        let kept = reg.join(name);
        std::fs::copy(&*p, &kept).with_context(|| format!("copy {} to {}", p.display(), kept.display()))?;
        *p = kept;
    }
    Ok(())
}

fn report(f: &Figures) {
    let status = if f.crashes.is_empty() { "ok" } else { "CRASH" };
    println!(
        "{status} fuzz {}: {} execs in {:.0} s ({:.0}/s), cov {} ft {}, corpus {} files",
        f.target,
        f.execs,
        f.seconds,
        f.execs_per_sec(),
        f.cov,
        f.ft,
        f.corpus_files
    );
    for c in &f.crashes {
        println!("  reproducer: {}", c.display());
        println!("  replay:     {} {}", binary(&f.target).display(), c.display());
    }
    if let Some(m) = &f.crash_message {
        println!("  {m}");
    }
}

fn selected(o: &Options) -> Result<Vec<String>> {
    let all = targets()?;
    for t in &o.targets {
        if !all.contains(t) {
            bail!("--target {t}: not a fuzz target (known: {})", all.join(", "));
        }
    }
    Ok(if o.targets.is_empty() { all } else { o.targets.clone() })
}

/// Every selected target for a share of the smoke budget: (passed, failed), one per target.
fn smoke(targets: &[String], seconds: u64) -> Result<(usize, usize)> {
    let each = (seconds / targets.len().max(1) as u64).max(SMOKE_MIN_SECONDS);
    let (mut passed, mut failed) = (0, 0);
    for t in targets {
        let f = run_target(t, each, 1, None)?;
        report(&f);
        if f.crashes.is_empty() {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    Ok((passed, failed))
}

/// The smoke test as part of `cargo xtask test`: (passed, failed).
pub fn smoke_for_test() -> (usize, usize) {
    let r = ensure_tools().and_then(|()| {
        let all = targets()?;
        build(&all)?;
        smoke(&all, SMOKE_SECONDS)
    });
    r.unwrap_or_else(|e| {
        println!("FAILED fuzz smoke test: {e:#}");
        (0, 1)
    })
}

/// 6651810 as `6,651,810`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// A time taken: `45s`, `6m 12s`, `1h 2m`.
fn taken(s: u64) -> String {
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, sec) => format!("{m}m {sec}s"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

/// The table row of one target's campaign.
fn row(f: &Figures, per_target: Duration, jobs: usize, when: &str, commit: &str) -> String {
    // Stopped by `--runs` before its time was over: the time it took, to the second.
    let time = if f.seconds + 1.0 < per_target.as_secs_f64() {
        taken(f.seconds.round() as u64)
    } else {
        human(per_target)
    };
    format!(
        "| `{}` | {time} × {jobs} | {} | {:.0} | {} | {} | {} ({:.0} KiB) | {} | {when} | `{commit}` |",
        f.target,
        grouped(f.execs),
        f.execs_per_sec(),
        f.cov,
        f.ft,
        f.corpus_files,
        f.corpus_bytes as f64 / 1024.0,
        f.crashes.len()
    )
}

/// The target a table row is about: `tar` in "| `tar` | ...".
fn row_target(line: &str) -> Option<&str> {
    line.strip_prefix("| `")?.split('`').next()
}

/// The part between the markers: the rows of this run's targets replace their old rows;
/// the other targets keep theirs (a target can be fuzzed again alone, after a fix). Rows
/// follow `order` (fuzz/Cargo.toml's).
fn section(old_doc: &str, new_rows: &[(String, String)], order: &[String]) -> String {
    let old_part = match (old_doc.find(BEGIN), old_doc.find(END)) {
        (Some(b), Some(e)) if b < e => &old_doc[b..e],
        _ => "",
    };
    let old_rows: Vec<(&str, &str)> = old_part.lines().filter_map(|l| Some((row_target(l)?, l))).collect();
    let pick = |t: &str| -> Option<String> {
        new_rows.iter().find(|(n, _)| n == t).map(|(_, r)| r.clone()).or_else(|| old_rows.iter().find(|(n, _)| *n == t).map(|(_, r)| r.to_string()))
    };
    let mut names: Vec<&str> = order.iter().map(String::as_str).collect();
    for (n, _) in new_rows {
        if !names.contains(&n.as_str()) {
            names.push(n);
        }
    }
    let mut s = format!(
        "{BEGIN}\n\nThe last campaign of each target: `cargo xtask fuzz --campaign DURATION [--jobs N] [--runs N]` \
         (time: per target × libFuzzer processes; the time taken when `--runs` stopped it first). cov: edges reached, ft: libFuzzer features \
         (both from libFuzzer's last status line); corpus: inputs in `fuzz/corpus/` after the run, \
         minimised (`-merge=1`); crashes: \
         inputs that crashed it, kept in `fuzz/regressions/`.\n\n\
         | target | time | execs | execs/s | cov | ft | corpus | crashes | date | commit |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---|---|\n"
    );
    for n in names {
        if let Some(r) = pick(n) {
            s += &r;
            s.push('\n');
        }
    }
    s + "\n" + END
}

/// `doc` with the part between the markers replaced by `section` (appended under a heading
/// if the markers are absent), so that everything else in the file survives.
fn splice(doc: &str, section: &str) -> String {
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{section}{}", &doc[..b], &doc[e + END.len()..]),
        _ => format!("{}\n\n## Fuzzing\n\n{section}\n", doc.trim_end()),
    }
}

const NEW_DOC: &str = "\
# Reliability

A panic in PID 1 is a kernel panic, and every byte autoinit parses can come from a corrupted SD
card or a careless vendor. This file gathers the evidence that autoinit survives hostile input.

## Fuzzing

Every parser that reads outside data has a libFuzzer target in `fuzz/` that checks an
invariant, not only the absence of a crash (fuzz/README.md lists them and their invariants).
`cargo xtask fuzz --smoke` (part of `cargo xtask test`) runs each briefly; the table below is
written by `cargo xtask fuzz --campaign DURATION` (`10m`, `2h`), one row per target, replaced
each time that target is fuzzed. Every crash found is fixed and its input kept in
`fuzz/regressions/`, which every run replays.
";

fn write_figures(figures: &[Figures], per_target: Duration, jobs: usize) -> Result<PathBuf> {
    let path = fuzz_dir().with_file_name("docs").join("reliability.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|_| format!("{NEW_DOC}\n{BEGIN}\n{END}\n"));
    let when = Command::new("date").args(["-u", "+%Y-%m-%d"]).output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default();
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(crate::root())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let rows: Vec<(String, String)> = figures.iter().map(|f| (f.target.clone(), row(f, per_target, jobs, &when, &commit))).collect();
    let new = splice(&doc, &section(&doc, &rows, &targets()?));
    std::fs::write(&path, new).with_context(|| format!("write {}", path.display()))?;
    Ok(path)
}

pub fn run(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    let targets = selected(&o)?;
    ensure_tools()?;
    build(&targets)?;
    match o.mode {
        Mode::Smoke { seconds } => {
            let (passed, failed) = smoke(&targets, seconds)?;
            println!("xtask: fuzz smoke: {passed} targets passed, {failed} crashed");
            if failed > 0 {
                bail!("{failed} fuzz targets crashed; the inputs are in fuzz/regressions/");
            }
        }
        Mode::Campaign { per_target, jobs, runs } => {
            let mut figures = Vec::new();
            for t in &targets {
                let limit = runs.map(|n| format!(", at most {} executions each", grouped(n))).unwrap_or_default();
                println!("xtask: fuzzing {t} for {} ({jobs} job(s){limit})", human(per_target));
                let mut f = run_target(t, per_target.as_secs(), jobs, runs)?;
                if f.crashes.is_empty() {
                    minimise(t)?;
                    (f.corpus_files, f.corpus_bytes) = dir_size(&fuzz_dir().join("corpus").join(t));
                }
                report(&f);
                figures.push(f);
            }
            let path = write_figures(&figures, per_target, jobs)?;
            println!("xtask: figures written to {}", path.display());
            let crashed: Vec<&str> = figures.iter().filter(|f| !f.crashes.is_empty()).map(|f| f.target.as_str()).collect();
            if !crashed.is_empty() {
                bail!("crashes in {}; the inputs are in fuzz/regressions/", crashed.join(", "));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options() {
        assert_eq!(parse(&a(&["--smoke"])).unwrap().mode, Mode::Smoke { seconds: 60 });
        let o = parse(&a(&["--campaign", "2h", "--jobs", "2", "--target", "tar"])).unwrap();
        assert_eq!(o.mode, Mode::Campaign { per_target: Duration::from_secs(7200), jobs: 2, runs: None });
        assert_eq!(o.targets, ["tar"]);
        assert_eq!(parse(&a(&["--campaign", "10"])).unwrap().mode, Mode::Campaign { per_target: Duration::from_secs(600), jobs: 1, runs: None });
        assert_eq!(parse(&a(&["--campaign-minutes", "3"])).unwrap().mode, Mode::Campaign { per_target: Duration::from_secs(180), jobs: 1, runs: None });
        assert_eq!(duration("90s").unwrap(), Duration::from_secs(90));
        assert!(duration("2d").is_err() && duration("0m").is_err() && duration("m").is_err());
        assert!(parse(&a(&[])).is_err());
        assert!(parse(&a(&["--smoke", "--campaign", "1m"])).is_err());
        assert!(parse(&a(&["--campaign", "1m", "--jobs", "0"])).is_err());
        let o = parse(&a(&["--campaign", "30m", "--runs", "10M", "--target", "tar"])).unwrap();
        assert_eq!(o.mode, Mode::Campaign { per_target: Duration::from_secs(1800), jobs: 1, runs: Some(10_000_000) });
        assert_eq!(count("500k").unwrap(), 500_000);
        assert_eq!(count("12345").unwrap(), 12_345);
        assert!(count("0").is_err() && count("x").is_err());
        assert!(parse(&a(&["--smoke", "--runs", "10"])).is_err());
        assert_eq!((taken(45), taken(372), taken(600), taken(3720)), ("45s".into(), "6m 12s".into(), "10m".into(), "1h 2m".into()));
    }

    #[test]
    fn targets_come_from_the_manifest() {
        let t = targets().unwrap();
        assert!(t.contains(&"tar".to_string()) && t.contains(&"cmdline".to_string()), "{t:?}");
    }

    const LOG: &str = "\
INFO: Seed: 1
#2\tINITED cov: 40 ft: 41 corp: 5/1Kb exec/s: 0 rss: 30Mb
#156820\tREDUCE cov: 547 ft: 1985 corp: 660/96Kb lim: 496 exec/s: 31364 rss: 28Mb L: 163/492 MS: 1 EraseBytes-
#156850\tDONE   cov: 547 ft: 1985 corp: 660/96Kb lim: 496 exec/s: 26141 rss: 28Mb
stat::number_of_executed_units: 156850
stat::average_exec_per_sec:     26141
";

    const CRASH: &str = "\
#1000\tNEW    cov: 600 ft: 2100 corp: 70/9Kb lim: 4096 exec/s: 500 rss: 40Mb L: 20/20 MS: 1 ChangeBit-

thread '<unnamed>' panicked at src/tar.rs:70:22:
path not normalised or escaping the root: \"a/../b\"
==123== ERROR: libFuzzer: deadly signal
MS: 1 ChangeBit-; base unit: 0000
artifact_prefix='/w/fuzz/artifacts/tar/'; Test unit written to /w/fuzz/artifacts/tar/crash-abc123
";

    #[test]
    fn reads_libfuzzer_output() {
        let mut f = Figures::default();
        read_log(LOG, &mut f);
        assert_eq!((f.execs, f.cov, f.ft), (156850, 547, 1985));
        assert!(f.crashes.is_empty());
        // A second job adds its executions; the coverage is the larger.
        read_log(CRASH, &mut f);
        assert_eq!((f.execs, f.cov, f.ft), (157850, 600, 2100));
        assert_eq!(f.crashes, [PathBuf::from("/w/fuzz/artifacts/tar/crash-abc123")]);
        assert_eq!(f.crash_message.as_deref(), Some("thread '<unnamed>' panicked at src/tar.rs:70:22: path not normalised or escaping the root: \"a/../b\""));
    }

    #[test]
    fn figures_replace_only_their_rows() {
        let f = |t: &str, execs| Figures { target: t.into(), seconds: 120.0, execs, cov: 900, ft: 4000, corpus_files: 300, corpus_bytes: 2048, ..Figures::default() };
        let order: Vec<String> = a(&["cmdline", "tar", "sha256"]);
        let r = row(&f("tar", 12_345_678), Duration::from_secs(600), 1, "2025-01-01", "abc1234");
        // 120 s of a 10-minute campaign: stopped by --runs; the time taken is shown.
        assert_eq!(r, "| `tar` | 2m × 1 | 12,345,678 | 102881 | 900 | 4000 | 300 (2 KiB) | 0 | 2025-01-01 | `abc1234` |");
        assert!(row(&f("tar", 1), Duration::from_secs(120), 1, "d", "c").starts_with("| `tar` | 2m × 1 |"));
        let doc = format!("# R\n\nintro\n\n{BEGIN}\nold text\n| `sha256` | old |\n| `tar` | old |\n{END}\n\n## Fault matrix\n\nkept\n");
        let new = splice(&doc, &section(&doc, &[("tar".into(), r.clone()), ("cmdline".into(), "| `cmdline` | new |".into())], &order));
        assert!(new.starts_with("# R\n\nintro\n\n<!--") && new.ends_with("-->\n\n## Fault matrix\n\nkept\n"), "{new}");
        // New rows replace old ones, the others stay, in the manifest's order.
        let rows: Vec<&str> = new.lines().filter(|l| row_target(l).is_some()).collect();
        assert_eq!(rows, ["| `cmdline` | new |", r.as_str(), "| `sha256` | old |"]);
        assert!(!new.contains("old text"));
        assert_eq!(splice(&new, &section(&new, &[], &order)), new, "regenerating is stable");
        // Without markers the section is appended.
        let appended = splice("# R\n\ntext\n", &section("", &[("tar".into(), r)], &order));
        assert!(appended.starts_with("# R\n\ntext\n\n## Fuzzing\n\n<!--") && appended.contains("12,345,678"), "{appended}");
        assert_eq!((grouped(0), grouped(999), grouped(1000), grouped(6651810)), ("0".into(), "999".into(), "1,000".into(), "6,651,810".into()));
    }
}
