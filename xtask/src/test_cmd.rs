//! `cargo xtask test`: setup, host unit tests, the syscall suite and the notify daemon's
//! self-test under qemu-user, the QEMU boot tests, the board images, the fuzz smoke test; ends
//! with `xtask: N passed, M failed`.

use crate::arch::Arch;
use crate::boot_tests;
use anyhow::{bail, Context, Result};
use std::process::Command;

const USAGE: &str = "\
usage: cargo xtask test [--only unit|syscalls|boot|images|fuzz]... [--arch A]... [--test NAME]... [--jobs N]
  --only PART   run only this part (repeatable; default: all five; images: `cargo xtask image`
                for every real board, outputs read back, broken board files refused)
                fuzz: the fuzz harness's own tests and `cargo xtask fuzz --smoke`
  --arch A      architectures for the syscall suite and the boot tests (default: all)
  --test NAME   only this boot test or group (repeatable): rescue_shell, respawn, signals,
                cmdline_warnings, panic_policy; boot stage: main_path, legacy_env, device_names,
                safe_mode, failures, or one case such as failures/no_device; service
                manager: supervise, supervise_basic, supervise_watchdog, supervise_faults;
                persisting upgrades and trial boots: persist; live upgrade: upgrade; containers
  --jobs N      QEMU guests booted at a time (default 2)
environment: AUTOINIT_TEST_INIT=PATH boots PATH as /init instead of a fresh build (debugging;
  `{arch}` in PATH becomes the architecture's name)";

#[derive(Debug)]
struct Options {
    parts: Vec<String>,
    arches: Vec<Arch>,
    tests: Vec<String>,
    jobs: usize,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options { parts: Vec::new(), arches: Vec::new(), tests: Vec::new(), jobs: 2 };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value\n{USAGE}"));
        match a.as_str() {
            "--only" => {
                let v = value()?;
                for p in v.split(',') {
                    if !matches!(p, "unit" | "syscalls" | "boot" | "images" | "fuzz") {
                        bail!("--only {p}: expected unit, syscalls, boot, images or fuzz");
                    }
                    o.parts.push(p.to_string());
                }
            }
            "--arch" => {
                let v = value()?;
                if v == "all" {
                    o.arches.extend(Arch::ALL);
                } else {
                    o.arches.push(Arch::parse(v)?);
                }
            }
            "--test" => o.tests.push(value()?.clone()),
            "--jobs" | "-j" => o.jobs = value()?.parse().context("--jobs: expected a number")?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unexpected argument '{other}'\n{USAGE}"),
        }
    }
    if o.parts.is_empty() {
        o.parts = vec!["unit".into(), "syscalls".into(), "boot".into(), "images".into(), "fuzz".into()];
    }
    if o.arches.is_empty() {
        o.arches.extend(Arch::ALL);
    }
    boot_tests::check_names(&o.tests)?;
    Ok(o)
}

/// Runs `cargo test ARGS`, echoing its output; counts the tests from its `test result:` lines.
/// A run that fails before reporting any result (a build error) counts as one failure.
fn cargo_test(label: &str, args: &[&str]) -> (usize, usize) {
    println!("xtask: cargo test {}", args.join(" "));
    let out = Command::new(env!("CARGO")).current_dir(crate::root()).arg("test").args(args).output();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            println!("FAILED {label}: running cargo: {e}");
            return (0, 1);
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (passed, mut failed, results) = count_results(&stdout);
    if !out.status.success() || failed > 0 {
        print!("{stdout}");
        eprint!("{stderr}");
        if results == 0 || failed == 0 {
            failed += 1;
        }
        println!("FAILED {label}: {passed} passed, {failed} failed");
    } else {
        println!("ok {label}: {passed} passed");
    }
    (passed, failed)
}

/// Sums libtest's `test result: ok. 3 passed; 0 failed; ...` lines: (passed, failed, lines).
fn count_results(stdout: &str) -> (usize, usize, usize) {
    let (mut passed, mut failed, mut results) = (0, 0, 0);
    for line in stdout.lines() {
        if let Some(r) = line.strip_prefix("test result: ") {
            results += 1;
            for part in r.split(';') {
                let mut w = part.split_whitespace().rev();
                let (Some(kind), Some(n)) = (w.next(), w.next()) else { continue };
                let n: usize = n.parse().unwrap_or(0);
                match kind {
                    "passed" => passed += n,
                    "failed" => failed += n,
                    _ => {}
                }
            }
        }
    }
    (passed, failed, results)
}

/// The syscall suite under qemu-user (written separately, in syscall_suite.rs).
fn syscall_suite(arches: &[Arch]) -> (usize, usize) {
    match crate::syscall_suite::run(arches) {
        Ok(r) => r,
        Err(e) => {
            println!("FAILED syscall suite: {e:#}");
            (0, 1)
        }
    }
}

/// The notify daemon's self-test under qemu-user (notify_daemon.rs).
fn notify_daemon_self_test(arches: &[Arch]) -> (usize, usize) {
    match crate::notify_daemon::self_test(arches) {
        Ok(r) => r,
        Err(e) => {
            println!("FAILED notify-daemon self-test: {e:#}");
            (0, 1)
        }
    }
}

pub fn run(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    let start = std::time::Instant::now();
    crate::setup()?;
    let (mut passed, mut failed) = (0, 0);
    let mut add = |(p, f): (usize, usize)| {
        passed += p;
        failed += f;
    };
    if o.parts.iter().any(|p| p == "unit") {
        add(cargo_test("unit tests autoinit (host)", &["-p", "autoinit", "--lib", "--no-default-features"]));
        add(cargo_test("unit tests xtask", &["-p", "xtask"]));
    }
    if o.parts.iter().any(|p| p == "syscalls") {
        add(syscall_suite(&o.arches));
        add(notify_daemon_self_test(&o.arches));
    }
    if o.parts.iter().any(|p| p == "boot") {
        let arches: Vec<Arch> = o.arches.iter().copied().filter(|a| boot_tests::all_tests().any(|t| t.arches.contains(a))).collect();
        add(boot_tests::run(&arches, &o.tests, o.jobs));
    }
    if o.parts.iter().any(|p| p == "images") {
        add(crate::image_tests::run_all());
    }
    if o.parts.iter().any(|p| p == "fuzz") {
        add(cargo_test("fuzz harness (seeds and regressions replayed)", &["--manifest-path", "fuzz/Cargo.toml", "--lib"]));
        add(crate::fuzz::smoke_for_test());
    }
    println!("xtask: test wall time {:.0} s", start.elapsed().as_secs_f64());
    println!("xtask: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_libtest_results() {
        let out = "running 2 tests\ntest a ... ok\n\ntest result: ok. 2 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\ntest result: FAILED. 3 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n";
        assert_eq!(count_results(out), (5, 1, 2));
        assert_eq!(count_results("error[E0425]: cannot find value"), (0, 0, 0));
    }

    #[test]
    fn options_are_checked() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let o = parse(&a(&["--only", "boot", "--arch", "armv7", "--test", "respawn", "--jobs", "1"])).unwrap();
        assert_eq!((o.parts, o.arches, o.tests, o.jobs), (a(&["boot"]), vec![Arch::Armv7], a(&["respawn"]), 1));
        assert!(parse(&a(&["--only", "everything"])).is_err());
        assert!(parse(&a(&["--test", "nope"])).unwrap_err().to_string().contains("nope"));
        assert_eq!(parse(&[]).unwrap().parts.len(), 5);
        assert_eq!(parse(&a(&["--only", "fuzz"])).unwrap().parts, a(&["fuzz"]));
    }
}
