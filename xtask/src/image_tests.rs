//! `cargo xtask test --only images`: `cargo xtask image` run as a vendor runs it, for every real
//! board file, with its outputs read back by the standard tools (`gzip -dc | cpio -t`,
//! `unsquashfs -s`, `sfdisk --json`); and broken board files, which must be refused with the
//! file and the key named; and the artefacts of `cargo xtask image --board qemu-x86_64`, booted
//! unchanged (its initramfs, disk.img and cmdline.txt) to stage 2.

use crate::board::{self, Board};
use crate::debian;
use crate::disk::run;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `cargo xtask image ARGS` as a child process (this same xtask binary): (success, output).
fn xtask_image(args: &[&str]) -> Result<(bool, String)> {
    let exe = std::env::current_exe().context("finding the xtask binary")?;
    let out = Command::new(exe).arg("image").args(args).current_dir(crate::root()).output().context("running xtask image")?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    Ok((out.status.success(), text))
}

/// One real board: the command succeeds and every output reads back.
fn board_artefacts(b: &Board) -> Result<()> {
    let out = crate::root().join("target/image-tests").join(&b.name);
    let out_s = out.to_str().context("non-UTF-8 path")?;
    let (ok, text) = xtask_image(&["--board", &b.name, "--disk", "--out", out_s])?;
    if !ok {
        bail!("cargo xtask image --board {} --disk failed:\n{text}", b.name);
    }
    let steps = text.lines().filter(|l| l.starts_with("image: [")).count();
    if steps < 8 {
        bail!("expected a progress line per step, got {steps}:\n{text}");
    }
    // The initramfs: gzip, newc, /init and the board's modules with modules.dep.
    let raw = Command::new("gzip").arg("-dc").arg(out.join("initramfs.cpio.gz")).output()?;
    if !raw.status.success() {
        bail!("gzip -dc initramfs.cpio.gz: {}", String::from_utf8_lossy(&raw.stderr));
    }
    let names = crate::board_image::cpio_list(&raw.stdout)?;
    for want in ["init", "dev/console", "etc/autoinit/modules"] {
        if !names.iter().any(|n| n == want) {
            bail!("cpio -t initramfs.cpio.gz: no {want}");
        }
    }
    if !names.iter().any(|n| n.starts_with("lib/modules/") && n.ends_with("/modules.dep")) {
        bail!("cpio -t initramfs.cpio.gz: no lib/modules/*/modules.dep");
    }
    for m in &b.modules {
        let file = |n: &String| n.rsplit('/').next().is_some_and(|f| f.split(".ko").next().map(|s| s.replace('-', "_")) == Some(m.clone()));
        if !names.iter().any(|n| n.contains(".ko") && file(n)) {
            bail!("cpio -t initramfs.cpio.gz: no module file for {m}");
        }
    }
    // The gen_init_cpio list names the same entries, with locations that exist.
    let list = std::fs::read_to_string(out.join("initramfs.list"))?;
    let mut listed = Vec::new();
    for l in list.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let f: Vec<&str> = l.split_whitespace().collect();
        let fields_ok = match f.first().copied() {
            Some("dir") => f.len() == 5,
            Some("file") => f.len() == 6 && Path::new(f[2]).is_file(),
            Some("nod") => f.len() == 8 && matches!(f[5], "c" | "b"),
            Some("slink") => f.len() == 6,
            _ => false,
        };
        let mode_ok = f.iter().rev().nth(if f[0] == "nod" { 5 } else { 2 }).is_some_and(|m| u32::from_str_radix(m, 8).is_ok());
        if !fields_ok || !mode_ok || !f.get(1).is_some_and(|n| n.starts_with('/')) {
            bail!("initramfs.list: not a gen_init_cpio line: {l}");
        }
        listed.push(f[1].trim_start_matches('/').to_string());
    }
    if listed != names {
        bail!("initramfs.list and cpio -t disagree:\nlist: {listed:?}\ncpio: {names:?}");
    }
    // The system image.
    let s = run(Command::new("unsquashfs").arg("-s").arg(out.join("boot/autosvr/system.img")))?;
    if !s.contains("Found a valid SQUASHFS 4:0 superblock") {
        bail!("unsquashfs -s boot/autosvr/system.img:\n{s}");
    }
    // The partition table: the board's, and the disk the command line names.
    let json = run(Command::new("sfdisk").arg("--json").arg(out.join("disk.img")))?;
    let flat: String = json.split_whitespace().collect();
    let p = &b.boot_partition;
    let label = if p.table == "mbr" { "dos" } else { "gpt" };
    for want in [format!("\"label\":\"{label}\""), format!("\"start\":{}", p.start_mib * 2048), format!("\"size\":{}", p.size_mib * 2048)] {
        if !flat.contains(&want) {
            bail!("sfdisk --json disk.img: no {want}:\n{json}");
        }
    }
    let cmdline = std::fs::read_to_string(out.join("cmdline.txt"))?;
    let spec = board::boot_spec(cmdline.trim()).context("cmdline.txt has no autoinit.boot=")?;
    if let Some(pu) = spec.strip_prefix("PARTUUID=") {
        let found = match p.table.as_str() {
            "mbr" => pu.strip_suffix("-01").is_some_and(|id| flat.contains(&format!("\"id\":\"0x{id}\""))),
            _ => flat.to_lowercase().contains(&format!("\"uuid\":\"{}\"", pu.to_lowercase())),
        };
        if !found {
            bail!("cmdline.txt names PARTUUID={pu}, which is not in disk.img:\n{json}");
        }
    }
    if let Some(l) = spec.strip_prefix("LABEL=") {
        let probe = run(Command::new("blkid").args(["-p", "-o", "value", "-s", "LABEL", "-O"]).arg((p.start_mib << 20).to_string()).arg(out.join("disk.img")))?;
        if probe.trim() != l {
            bail!("cmdline.txt names LABEL={l}, the partition's label is '{}'", probe.trim());
        }
    }
    // The boot loader configuration names the command line written.
    let configs: Vec<String> = crate::board_image::boot_config_files(b, cmdline.trim()).into_iter().map(|(p, _)| p).collect();
    for c in &configs {
        let text = std::fs::read_to_string(out.join("boot").join(c)).with_context(|| format!("boot/{c}"))?;
        if c != "config.txt" && !text.contains(cmdline.trim()) {
            bail!("boot/{c} does not carry the command line {}:\n{text}", cmdline.trim());
        }
    }
    if configs.is_empty() {
        bail!("no boot loader configuration was written for {}", b.name);
    }
    Ok(())
}

/// A board file broken in `how` must be refused, naming the file and `key`.
fn broken(base: &str, tag: &str, how: impl Fn(&str) -> String, key: &str) -> Result<()> {
    let text = std::fs::read_to_string(board::dir().join(format!("{base}.toml")))?;
    let broken = how(&text);
    if broken == text {
        bail!("the change '{tag}' does not apply to boards/{base}.toml");
    }
    let dir = std::env::temp_dir().join(format!("autoinit-broken-board-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path: PathBuf = dir.join(format!("{base}.toml"));
    std::fs::write(&path, broken)?;
    let r = xtask_image(&["--board", path.to_str().context("non-UTF-8 path")?]);
    let _ = std::fs::remove_dir_all(&dir);
    let (ok, text) = r?;
    if ok {
        bail!("cargo xtask image accepted a board file with {tag}:\n{text}");
    }
    if !text.contains(&path.display().to_string()) || !text.contains(key) {
        bail!("the error does not name {} and '{key}':\n{text}", path.display());
    }
    Ok(())
}

/// `cargo xtask image --board qemu-x86_64 --disk --rescue-shell`, then QEMU with exactly its
/// initramfs.cpio.gz, disk.img and cmdline.txt: the boot stage must find the disk by the label
/// the command line names and reach stage 2 (the boot tests use the test identity; this uses
/// the identity the command derives).
fn qemu_board_boots() -> Result<()> {
    use std::time::Duration;
    let b = board::load("qemu-x86_64")?;
    let out = crate::root().join("target/image-tests").join(&b.name);
    let (ok, text) = xtask_image(&["--board", &b.name, "--disk", "--rescue-shell", "--out", out.to_str().context("non-UTF-8 path")?])?;
    if !ok {
        bail!("cargo xtask image --board {} failed:\n{text}", b.name);
    }
    let cmdline = std::fs::read_to_string(out.join("cmdline.txt"))?;
    let extra = cmdline.trim().strip_prefix(b.cmdline.as_str()).with_context(|| format!("cmdline.txt does not start with the board's: {cmdline}"))?;
    let q = b.qemu.as_ref().context("no [qemu]")?;
    let kernel = debian::kernel(crate::arch::Arch::X86_64, q)?.qemu_image(crate::arch::Arch::X86_64)?;
    let initrd = out.join("initramfs.cpio.gz");
    let disks = [out.join("disk.img")];
    let boot = crate::qemu::Boot { board: &b, kernel: &kernel, initrd: &initrd, extra_cmdline: extra, disks: &disks };
    let mut vm = crate::qemu::Vm::start(&boot, "image-qemu-x86_64", false)?;
    vm.expect(crate::boot_tests::START, crate::boot_tests::BOOT)?;
    vm.expect(&format!("autoinit: boot device {} is /dev/vda1 (vfat)", board::boot_spec(extra).unwrap_or("?")), Duration::from_secs(60))?;
    vm.expect("autoinit: stage 2: running from /__autoinit__/autoinit", Duration::from_secs(60))?;
    vm.wait_shell(Duration::from_secs(60))?;
    let img = vm.run("grep -c ' /rofs_root squashfs ' /proc/mounts")?;
    if img.trim() != "1" {
        return Err(vm.fail(format!("no squashfs on /rofs_root: {img}")));
    }
    crate::boot_tests::power_off(&mut vm)?;
    vm.check_no_kernel_panic()
}

type Case = (String, Box<dyn Fn() -> Result<()>>);

/// Runs the image tests; prints one line per test; returns (passed, failed).
pub fn run_all() -> (usize, usize) {
    let mut cases: Vec<Case> = Vec::new();
    match board::all() {
        Ok(boards) => {
            for b in boards.into_iter().filter(|b| b.hardware.is_some()) {
                cases.push((format!("image/{}", b.name), Box::new(move || board_artefacts(&b))));
            }
        }
        Err(e) => cases.push(("image/board-files".into(), Box::new(move || Err(anyhow::anyhow!("{e:#}"))))),
    }
    cases.push(("image/qemu-x86_64/boots".into(), Box::new(qemu_board_boots)));
    cases.push((
        "image/broken/gpt_on_pi3".into(),
        Box::new(|| broken("rpi3", "gpt", |t| t.replacen("table = \"mbr\"", "table = \"gpt\"", 1), "boot_partition.table")),
    ));
    cases.push((
        "image/broken/unknown_key".into(),
        Box::new(|| broken("visionfive2", "key", |t| t.replacen("[boot_partition]\n", "[boot_partition]\nsize_gib = 1\n", 1), "size_gib")),
    ));
    cases.push((
        "image/broken/arch_mismatch".into(),
        Box::new(|| broken("pc-i686", "triple", |t| t.replacen("target = \"i686-unknown-linux-musl\"", "target = \"x86_64-unknown-linux-musl\"", 1), "key 'target'")),
    ));
    let (mut passed, mut failed) = (0, 0);
    for (name, f) in cases {
        let start = std::time::Instant::now();
        match f() {
            Ok(()) => {
                passed += 1;
                println!("ok {name} ({:.1} s)", start.elapsed().as_secs_f64());
            }
            Err(e) => {
                failed += 1;
                println!("FAILED {name} ({:.1} s): {e:#}", start.elapsed().as_secs_f64());
            }
        }
    }
    (passed, failed)
}
