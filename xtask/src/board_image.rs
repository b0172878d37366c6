//! `cargo xtask image --board NAME`: from a board file to the files a vendor puts on a card.
//!
//! Writes into the output directory (default `target/image/<board>/`):
//! - `initramfs.cpio.gz`: autoinit as `/init`, the board's modules with their modules.dep
//!   (and busybox with `--rescue-shell`), and `initramfs.list`, the same archive as a list for
//!   the kernel's gen_init_cpio (`CONFIG_INITRAMFS_SOURCE`), naming files staged in `initramfs/`;
//! - `boot/`: the boot partition's tree: `autosvr/system.img`, the overlays with `.sha256`
//!   sidecars, and (real boards) the initramfs and the boot loader configuration the board's
//!   firmware reads (config.txt + cmdline.txt, uEnv.txt, extlinux/extlinux.conf, a loader entry);
//! - `cmdline.txt`: the kernel command line, with the boot device filled in;
//! - with `--disk`: `disk.img`, a whole disk with the board's partition table and the boot
//!   partition, and `disk.sfdisk`, the sfdisk script that made its table.
//!
//! The QEMU boot tests build their initramfs and main boot disk through [`make_initramfs`] and
//! [`make_boot`], the functions the command uses.

use crate::arch::Arch;
use crate::board::{self, Board, BootConfig, BootSpec};
use crate::debian::{self, Kernel};
use crate::disk::{self, Identity, Layout};
use crate::initramfs;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const USAGE: &str = "\
usage: cargo xtask image --board NAME|FILE.toml [--image DIR | --system-img FILE] [--overlay TAR]...
                         [--out DIR] [--disk] [--disk-id HEX] [--rescue-shell]
  --board NAME     boards/NAME.toml (or a board file's path)
  --image DIR      build autosvr/system.img from this root tree (mksquashfs, gzip)
  --system-img F   use this squashfs as autosvr/system.img (checked with unsquashfs)
                   (neither: the demo/test system image, busybox and a few files)
  --overlay TAR    add autosvr/NAME.tar with a NAME.tar.sha256 sidecar (repeatable)
  --out DIR        output directory (default target/image/<board>/)
  --disk           also write disk.img: partition table and boot partition, ready to flash
  --disk-id HEX    MBR disk identifier (default: derived from the board and system image)
  --rescue-shell   put Debian's static busybox into the initramfs for the rescue shell";

/// The kernel file name the boot loader configurations name; the vendor copies its kernel
/// there.
pub const KERNEL_FILE: &str = "vmlinuz";
pub const INITRAMFS_FILE: &str = "initramfs.cpio.gz";

/// Prints `image: [i/N] what` for each step.
pub struct Progress {
    pub step: usize,
    pub total: usize,
    pub quiet: bool,
}

impl Progress {
    pub fn new(total: usize) -> Progress {
        Progress { step: 0, total, quiet: false }
    }
    pub fn quiet() -> Progress {
        Progress { step: 0, total: 0, quiet: true }
    }
    pub fn step(&mut self, what: impl std::fmt::Display) {
        self.step += 1;
        if !self.quiet {
            println!("image: [{}/{}] {what}", self.step, self.total);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Initramfs

/// What goes into the initramfs besides the board's modules.
pub struct InitInputs<'a> {
    pub init: &'a Path,
    pub busybox: Option<&'a Path>,
    /// The board's kernel (its modules and modules.dep).
    pub kernel: &'a Kernel,
}

pub struct Initramfs {
    pub gz: PathBuf,
    pub list: PathBuf,
    /// Size of the uncompressed archive.
    pub unpacked_bytes: u64,
    /// Module files (the board's modules and their dependencies).
    pub module_files: usize,
}

/// Writes `initramfs.cpio.gz`, `initramfs.list` and `initramfs/` into `out`.
pub fn make_initramfs(board: &Board, inputs: &InitInputs, out: &Path, p: &mut Progress) -> Result<Initramfs> {
    let arch = board.arch()?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let spec = initramfs::Spec { arch, init: inputs.init, busybox: inputs.busybox, kernel: Some(inputs.kernel), modules: &board.modules };
    let tree = initramfs::tree(&spec)?;
    let module_files = if board.modules.is_empty() { 0 } else { initramfs::module_closure(&inputs.kernel.modules, &board.modules)?.0.len() };
    let cpio = tree.write_cpio(Vec::new())?;
    let gz = out.join(INITRAMFS_FILE);
    p.step(format!(
        "writing {} ({} entries, {} module files for {}, {} KiB unpacked)",
        gz.display(),
        tree.entries.len(),
        module_files,
        inputs.kernel.version,
        cpio.len() / 1024
    ));
    gzip(&cpio, &gz)?;
    let list = out.join("initramfs.list");
    p.step(format!("writing {} (gen_init_cpio format, files staged in {})", list.display(), out.join("initramfs").display()));
    let text = tree.gen_init_cpio_list(&out.join("initramfs"))?;
    std::fs::write(&list, text).with_context(|| format!("writing {}", list.display()))?;
    Ok(Initramfs { gz, list, unpacked_bytes: cpio.len() as u64, module_files })
}

/// `gzip -n -9` (no name or time stamp: the same input gives the same file).
fn gzip(data: &[u8], out: &Path) -> Result<()> {
    let tmp = out.with_extension("gz.tmp");
    let f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut child = Command::new("gzip")
        .args(["-n", "-9", "-c"])
        .stdin(Stdio::piped())
        .stdout(f)
        .stderr(Stdio::piped())
        .spawn()
        .context("running gzip")?;
    child.stdin.take().context("gzip stdin")?.write_all(data)?;
    let o = child.wait_with_output()?;
    if !o.status.success() {
        bail!("gzip {} failed: {}", out.display(), String::from_utf8_lossy(&o.stderr).trim());
    }
    std::fs::rename(&tmp, out)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Boot partition, command line, disk

/// What goes onto the boot partition besides the boot loader configuration.
pub struct BootInputs<'a> {
    /// A squashfs, installed as `autosvr/system.img`.
    pub system_img: &'a Path,
    /// Overlay archives, installed as `autosvr/<name>` with a `<name>.sha256` sidecar.
    pub overlays: &'a [PathBuf],
    /// The initramfs, installed at the partition's root for the boot loader (real boards).
    pub initramfs: Option<&'a Path>,
    /// Disk identifiers to write instead of derived ones.
    pub identity: Option<Identity>,
    pub disk: bool,
}

pub struct Boot {
    pub tree: PathBuf,
    pub cmdline: String,
    pub layout: Layout,
    pub identity: Identity,
    pub disk: Option<PathBuf>,
}

/// The disk identifiers: given or derived from the board and the system image, then whatever
/// the board's `autoinit.boot=` spells out literally (it must name the disk written).
fn identity(board: &Board, given: Option<Identity>, system_img: &Path) -> Result<Identity> {
    let mut id = match given {
        Some(id) => id,
        None => Identity::derived(&format!("{} {:016x}", board.name, crate::images::file_hash(system_img)?)),
    };
    match board.boot_spec().map(BootSpec::parse).transpose()? {
        Some(BootSpec::MbrPartuuid { disk, .. }) if !disk.contains('x') => {
            id.mbr_id = u32::from_str_radix(disk, 16).with_context(|| format!("PARTUUID disk id {disk}"))?;
        }
        Some(BootSpec::GptPartuuid(g)) if !g.contains('x') => id.gpt_part = g.to_lowercase(),
        Some(BootSpec::Uuid(u)) if board.boot_partition.fs == "vfat" => {
            id.vfat_serial = u32::from_str_radix(&u.replace('-', ""), 16).with_context(|| format!("UUID={u}"))?;
        }
        Some(BootSpec::Uuid(u)) => id.ext4_uuid = u.to_lowercase(),
        _ => {}
    }
    Ok(id)
}

/// The board's command line with the boot device filled in: `x` placeholders in
/// `autoinit.boot=PARTUUID=` become the identifiers written; a board that names no boot device
/// (the QEMU boards, whose tests name it themselves) gets `autoinit.boot=LABEL=<label>`.
pub fn cmdline(board: &Board, layout: &Layout, id: &Identity) -> Result<String> {
    let mut words: Vec<String> = Vec::new();
    let mut named = false;
    for w in board.cmdline.split_whitespace() {
        let Some(v) = w.strip_prefix("autoinit.boot=") else {
            words.push(w.to_string());
            continue;
        };
        named = true;
        let v = match BootSpec::parse(v)? {
            BootSpec::MbrPartuuid { disk, part } if disk.contains('x') => format!("PARTUUID={:08x}-{part}", id.mbr_id),
            BootSpec::GptPartuuid(g) if g.contains('x') => format!("PARTUUID={}", id.partuuid(layout.table)),
            _ => v.to_string(),
        };
        words.push(format!("autoinit.boot={v}"));
    }
    if !named {
        words.push(format!("autoinit.boot=LABEL={}", layout.label));
    }
    Ok(words.join(" "))
}

/// The boot loader files for the board: (path on the boot partition, contents).
pub fn boot_config_files(board: &Board, cmdline: &str) -> Vec<(String, String)> {
    let head = |c: &str| format!("{c} Written by `cargo xtask image --board {}`; {KERNEL_FILE} is the kernel the vendor copies here.\n", board.name);
    let hw = board.hardware.as_ref();
    let dtb = hw.and_then(|h| h.dtb.as_deref());
    let mut files: Vec<(String, String)> = Vec::new();
    let fw = hw.and_then(|h| h.firmware_config.as_ref());
    match board.boot_config() {
        BootConfig::ConfigTxt => {
            let mut text = head("#");
            if let Some(f) = fw.filter(|f| f.file == "config.txt") {
                for l in &f.lines {
                    text.push_str(l);
                    text.push('\n');
                }
            }
            text.push_str(&format!("kernel={KERNEL_FILE}\ninitramfs {INITRAMFS_FILE} followkernel\n"));
            files.push(("config.txt".into(), text));
            // The firmware reads the command line from cmdline.txt: one line.
            files.push(("cmdline.txt".into(), format!("{cmdline}\n")));
        }
        BootConfig::UEnvTxt => {
            let load = |addr: &str, file: &str| format!("load mmc ${{mmcdev}}:1 ${{{addr}}} {file}");
            let mut cmds = vec![load("kernel_addr_r", KERNEL_FILE)];
            if let Some(d) = dtb {
                cmds.push(load("fdt_addr_r", d));
            }
            // Last, so that ${filesize} is the initramfs's size for bootz.
            cmds.push(load("ramdisk_addr_r", INITRAMFS_FILE));
            let fdt = if dtb.is_some() { " ${fdt_addr_r}" } else { "" };
            cmds.push(format!("bootz ${{kernel_addr_r}} ${{ramdisk_addr_r}}:${{filesize}}{fdt}"));
            files.push(("uEnv.txt".into(), format!("{}bootargs={cmdline}\nuenvcmd={}\n", head("#"), cmds.join(" && "))));
        }
        BootConfig::Extlinux => {
            let fdt = dtb.map(|d| format!("\tfdt /{d}\n")).unwrap_or_default();
            files.push((
                "extlinux/extlinux.conf".into(),
                format!("{}default autosvr\n\nlabel autosvr\n\tkernel /{KERNEL_FILE}\n\tinitrd /{INITRAMFS_FILE}\n{fdt}\tappend {cmdline}\n", head("#")),
            ));
        }
        BootConfig::LoaderEntry => {
            files.push((
                "loader/entries/autosvr.conf".into(),
                format!("{}title autosvr\nlinux /{KERNEL_FILE}\ninitrd /{INITRAMFS_FILE}\noptions {cmdline}\n", head("#")),
            ));
        }
        BootConfig::None => {}
    }
    // A firmware file other than config.txt: the lines as they are.
    if let Some(f) = fw.filter(|f| !files.iter().any(|(p, _)| *p == f.file)) {
        files.push((f.file.clone(), f.lines.iter().map(|l| format!("{l}\n")).collect()));
    }
    files
}

/// Writes `boot/` (the boot partition's tree), `cmdline.txt` and, with `inputs.disk`,
/// `disk.img` and `disk.sfdisk` into `out`.
pub fn make_boot(board: &Board, inputs: &BootInputs, out: &Path, p: &mut Progress) -> Result<Boot> {
    let layout = Layout::from_board(&board.boot_partition, board.firmware())?;
    let id = identity(board, inputs.identity.clone(), inputs.system_img)?;
    let cmdline = cmdline(board, &layout, &id)?;
    let tree = out.join("boot");
    p.step(format!("writing the boot partition's tree {}", tree.display()));
    if tree.exists() {
        std::fs::remove_dir_all(&tree).with_context(|| format!("removing {}", tree.display()))?;
    }
    let autosvr = tree.join("autosvr");
    std::fs::create_dir_all(&autosvr)?;
    std::fs::copy(inputs.system_img, autosvr.join("system.img")).with_context(|| format!("copying {}", inputs.system_img.display()))?;
    for o in inputs.overlays {
        let name = o.file_name().and_then(|n| n.to_str()).with_context(|| format!("overlay {}: no file name", o.display()))?;
        if !name.ends_with(".tar") {
            bail!("overlay {}: the boot stage applies only *.tar files", o.display());
        }
        std::fs::copy(o, autosvr.join(name)).with_context(|| format!("copying {}", o.display()))?;
        let sum = disk::run(Command::new("sha256sum").arg(name).current_dir(&autosvr))?;
        std::fs::write(autosvr.join(format!("{name}.sha256")), sum)?;
    }
    if let Some(i) = inputs.initramfs {
        std::fs::copy(i, tree.join(INITRAMFS_FILE)).with_context(|| format!("copying {}", i.display()))?;
    }
    for (path, text) in boot_config_files(board, &cmdline) {
        let f = tree.join(&path);
        if let Some(d) = f.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(&f, text).with_context(|| format!("writing {}", f.display()))?;
    }
    let used: u64 = disk::tree_files(&tree)?.iter().map(|f| std::fs::metadata(tree.join(f)).map(|m| m.len()).unwrap_or(0)).sum();
    // Filesystem overhead (FATs, journal) is a few percent; refuse before mkfs fails obscurely.
    if used > layout.size / 100 * 90 {
        bail!(
            "the boot partition's files take {} MiB, more than 90% of boot_partition.size_mib = {} of board {}",
            used.div_ceil(disk::MIB),
            layout.size / disk::MIB,
            board.name
        );
    }
    let cmdline_path = out.join("cmdline.txt");
    p.step(format!("writing {}: {cmdline}", cmdline_path.display()));
    std::fs::write(&cmdline_path, format!("{cmdline}\n"))?;
    let disk = if inputs.disk {
        let img = out.join("disk.img");
        p.step(format!(
            "writing {} ({} MiB, {} partition table, {} {} partition {} at {} MiB, {} MiB)",
            img.display(),
            layout.disk_bytes() / disk::MIB,
            board.boot_partition.table,
            board.boot_partition.fs,
            board.boot_partition.fat_bits.map(|b| format!("FAT{b}")).unwrap_or_default(),
            layout.label,
            layout.start / disk::MIB,
            layout.size / disk::MIB
        ));
        std::fs::write(out.join("disk.sfdisk"), layout.sfdisk_script(&id))?;
        disk::write(&layout, &id, &tree, &img, &out.join("work-disk"))?;
        Some(img)
    } else {
        let _ = std::fs::remove_file(out.join("disk.img"));
        None
    };
    Ok(Boot { tree, cmdline, layout, identity: id, disk })
}

// ---------------------------------------------------------------------------------------------
// Checks

/// Reads every artefact back with the tools a vendor would: `gzip -dc | cpio -t` against the
/// list, `unsquashfs -s`, and for the disk `sfdisk --json`, `blkid` and the file listing.
pub fn verify(board: &Board, initramfs: &Initramfs, boot: &Boot) -> Result<()> {
    let raw = Command::new("gzip").arg("-dc").arg(&initramfs.gz).output().context("running gzip -dc")?;
    if !raw.status.success() {
        bail!("gzip -dc {}: {}", initramfs.gz.display(), String::from_utf8_lossy(&raw.stderr).trim());
    }
    let listing = cpio_list(&raw.stdout)?;
    let list = std::fs::read_to_string(&initramfs.list)?;
    let listed: Vec<String> =
        list.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).filter_map(|l| l.split_whitespace().nth(1)).map(|n| n.trim_start_matches('/').to_string()).collect();
    if listing != listed {
        bail!("cpio -t of {} and the names in {} differ:\ncpio: {listing:?}\nlist: {listed:?}", initramfs.gz.display(), initramfs.list.display());
    }
    for want in ["init", "dev/console"] {
        if !listing.iter().any(|n| n == want) {
            bail!("cpio -t {}: no {want}", initramfs.gz.display());
        }
    }
    let dep = listing.iter().filter(|n| n.starts_with("lib/modules/") && n.ends_with("/modules.dep")).count();
    let modules = listing.iter().filter(|n| n.contains(".ko")).count();
    if !board.modules.is_empty() && (dep != 1 || modules != initramfs.module_files) {
        bail!("cpio -t {}: {dep} modules.dep and {modules} module files, expected 1 and {}", initramfs.gz.display(), initramfs.module_files);
    }
    // Every list location exists and has the archive's contents.
    for l in list.lines().filter(|l| l.starts_with("file ")) {
        let loc = l.split_whitespace().nth(2).unwrap_or("");
        if !Path::new(loc).is_file() {
            bail!("{}: '{loc}' does not exist", initramfs.list.display());
        }
    }
    let img = boot.tree.join("autosvr/system.img");
    let s = disk::run(Command::new("unsquashfs").arg("-s").arg(&img))?;
    if !s.contains("Found a valid SQUASHFS 4:0 superblock") {
        bail!("unsquashfs -s {}: not a squashfs 4.0 image:\n{s}", img.display());
    }
    if let Some(d) = &boot.disk {
        disk::check(d, &boot.layout, &boot.identity, &disk::tree_files(&boot.tree)?)?;
    }
    if boot.cmdline.split_whitespace().any(|w| w.starts_with("autoinit.boot=PARTUUID=") && w.contains('x')) {
        bail!("cmdline.txt still has a PARTUUID placeholder: {}", boot.cmdline);
    }
    Ok(())
}

/// `cpio -t` of a newc archive: its names in order.
pub fn cpio_list(archive: &[u8]) -> Result<Vec<String>> {
    let mut child = Command::new("cpio")
        .args(["-t", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running cpio (has `cargo xtask setup` run?)")?;
    let mut stdin = child.stdin.take().context("cpio stdin")?;
    let data = archive.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let o = child.wait_with_output()?;
    let _ = writer.join();
    if !o.status.success() {
        bail!("cpio -t failed: {}", String::from_utf8_lossy(&o.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect())
}

// ---------------------------------------------------------------------------------------------
// The command

struct Options {
    board: String,
    image_dir: Option<PathBuf>,
    system_img: Option<PathBuf>,
    overlays: Vec<PathBuf>,
    out: Option<PathBuf>,
    disk: bool,
    disk_id: Option<u32>,
    rescue_shell: bool,
}

fn options(args: &[String]) -> Result<Options> {
    let mut o = Options { board: String::new(), image_dir: None, system_img: None, overlays: Vec::new(), out: None, disk: false, disk_id: None, rescue_shell: false };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().with_context(|| format!("{a} needs a value\n{USAGE}"));
        match a.as_str() {
            "--board" => o.board = value()?.clone(),
            "--image" => o.image_dir = Some(PathBuf::from(value()?)),
            "--system-img" => o.system_img = Some(PathBuf::from(value()?)),
            "--overlay" => o.overlays.push(PathBuf::from(value()?)),
            "--out" => o.out = Some(PathBuf::from(value()?)),
            "--disk" => o.disk = true,
            "--disk-id" => {
                let v = value()?;
                let hex = v.trim_start_matches("0x");
                o.disk_id = Some(u32::from_str_radix(hex, 16).ok().filter(|n| *n != 0 && hex.len() <= 8).with_context(|| format!("--disk-id {v}: expected 1-8 hex digits, not 0"))?);
            }
            "--rescue-shell" => o.rescue_shell = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unexpected argument '{other}'\n{USAGE}"),
        }
    }
    if o.board.is_empty() {
        bail!("--board is required\n{USAGE}");
    }
    if o.image_dir.is_some() && o.system_img.is_some() {
        bail!("--image and --system-img exclude each other");
    }
    Ok(o)
}

/// A board by name (`boards/NAME.toml`) or by the path of its file.
pub fn load_board(arg: &str) -> Result<Board> {
    if arg.ends_with(".toml") || arg.contains('/') {
        board::load_path(Path::new(arg))
    } else {
        let path = board::dir().join(format!("{arg}.toml"));
        if !path.exists() {
            let names: Vec<String> = board::all().map(|b| b.into_iter().map(|b| b.name).collect()).unwrap_or_default();
            bail!("no board '{arg}' ({} does not exist; boards: {})", path.display(), names.join(", "));
        }
        board::load_path(&path)
    }
}

/// The board's kernel: the QEMU board's, or the Debian package `[hardware]` names.
pub fn kernel(board: &Board, arch: Arch) -> Result<Kernel> {
    match (&board.qemu, &board.hardware) {
        (Some(q), _) => debian::kernel(arch, q),
        (None, Some(h)) => debian::kernel_package(arch, &h.kernel_package, arch.debian()),
        (None, None) => bail!("board {} has neither [qemu] nor [hardware]", board.name),
    }
}

/// `mksquashfs DIR` (gzip, root-owned, time stamps 0), checked with `unsquashfs -s`.
fn squash(dir: &Path, out: &Path) -> Result<()> {
    if !dir.is_dir() {
        bail!("--image {}: not a directory", dir.display());
    }
    let _ = std::fs::remove_file(out);
    disk::run(Command::new("mksquashfs").arg(dir).arg(out).args([
        "-comp", "gzip", "-all-root", "-noappend", "-mkfs-time", "0", "-all-time", "0", "-quiet", "-no-progress",
    ]))?;
    Ok(())
}

pub fn run(args: &[String]) -> Result<()> {
    let o = options(args)?;
    let mut p = Progress::new(9 + usize::from(o.disk) + usize::from(o.rescue_shell));
    p.step(format!("checking the board file ({})", o.board));
    let board = load_board(&o.board)?;
    let arch = board.arch()?;
    let out = o.out.clone().unwrap_or_else(|| crate::root().join("target/image").join(&board.name));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let out = out.canonicalize()?;
    crate::setup()?;
    p.step(format!("building autoinit for {} (release)", board.target));
    let init = crate::build::autoinit(arch)?;
    let busybox = || debian::busybox(arch.debian());
    let rescue = if o.rescue_shell {
        p.step(format!("fetching busybox-static:{} for the rescue shell", arch.debian()));
        Some(busybox()?)
    } else {
        None
    };
    p.step(format!("fetching the kernel's modules ({})", board.hardware.as_ref().map(|h| h.kernel_package.as_str()).or(board.qemu.as_ref().map(|q| q.kernel_package.as_str())).unwrap_or("")));
    let kernel = kernel(&board, arch)?;
    let system_img = match (&o.image_dir, &o.system_img) {
        (Some(dir), _) => {
            let img = out.join("system.img");
            p.step(format!("building {} from {} (mksquashfs)", img.display(), dir.display()));
            squash(dir, &img)?;
            img
        }
        (None, Some(f)) => {
            p.step(format!("checking {} (unsquashfs -s)", f.display()));
            let s = disk::run(Command::new("unsquashfs").arg("-s").arg(f))?;
            if !s.contains("Found a valid SQUASHFS 4:0 superblock") {
                bail!("--system-img {}: not a squashfs 4.0 image", f.display());
            }
            f.clone()
        }
        (None, None) => {
            p.step(format!("building the demo system image for {} (mksquashfs)", arch.name()));
            crate::images::system_image(arch, &busybox()?, crate::images::Image::Good)?
        }
    };
    let initramfs = make_initramfs(&board, &InitInputs { init: &init, busybox: rescue.as_deref(), kernel: &kernel }, &out, &mut p)?;
    let given = o.disk_id.map(|mbr_id| Identity { mbr_id, ..Identity::derived(&format!("{} {:016x}", board.name, crate::images::file_hash(&system_img).unwrap_or(0))) });
    let inputs = BootInputs {
        system_img: &system_img,
        overlays: &o.overlays,
        initramfs: board.hardware.is_some().then_some(initramfs.gz.as_path()),
        identity: given,
        disk: o.disk,
    };
    let boot = make_boot(&board, &inputs, &out, &mut p)?;
    p.step("checking the artefacts (cpio -t, unsquashfs -s, sfdisk --json, blkid)");
    verify(&board, &initramfs, &boot)?;
    println!("image: done: {}", out.display());
    println!("  cmdline       {}", boot.cmdline);
    println!("  initramfs     {} ({} KiB unpacked) and {}", initramfs.gz.display(), initramfs.unpacked_bytes / 1024, initramfs.list.display());
    println!("  boot tree     {} (copy it onto the boot partition; add the kernel as {KERNEL_FILE})", boot.tree.display());
    if let Some(d) = &boot.disk {
        let pu = boot.identity.partuuid(boot.layout.table);
        println!("  disk          {} (PARTUUID of the boot partition: {pu})", d.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pi_placeholder_becomes_the_disk_id() {
        let b = board::load("rpi4").unwrap();
        assert!(b.cmdline.contains("PARTUUID=xxxxxxxx-01"));
        let layout = Layout::from_board(&b.boot_partition, b.firmware()).unwrap();
        let id = Identity { mbr_id: 0x1234abcd, ..Identity::derived("t") };
        let c = cmdline(&b, &layout, &id).unwrap();
        assert!(c.contains("autoinit.boot=PARTUUID=1234abcd-01") && !c.contains('x'), "{c}");
        let files = boot_config_files(&b, &c);
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["config.txt", "cmdline.txt"]);
        assert_eq!(files[1].1, format!("{c}\n"));
        for l in ["arm_64bit=1", "enable_uart=1", "kernel=vmlinuz", "initramfs initramfs.cpio.gz followkernel"] {
            assert!(files[0].1.lines().any(|x| x == l), "config.txt lacks {l}:\n{}", files[0].1);
        }
    }

    #[test]
    fn qemu_boards_get_a_label_and_no_loader_files() {
        let b = board::load("qemu-x86_64").unwrap();
        let layout = Layout::from_board(&b.boot_partition, b.firmware()).unwrap();
        let c = cmdline(&b, &layout, &Identity::derived("t")).unwrap();
        assert!(c.ends_with(" autoinit.boot=LABEL=AUTOSVR"), "{c}");
        assert!(boot_config_files(&b, &c).is_empty());
    }

    #[test]
    fn uboot_configs_name_kernel_dtb_and_initramfs() {
        let b = board::load("beaglebone-black").unwrap();
        let f = boot_config_files(&b, "console=ttyO0,115200n8 autoinit.boot=LABEL=AUTOSVR");
        assert_eq!(f[0].0, "uEnv.txt");
        assert!(f[0].1.contains("bootargs=console=ttyO0,115200n8 autoinit.boot=LABEL=AUTOSVR\n"));
        let cmd = f[0].1.lines().find(|l| l.starts_with("uenvcmd=")).unwrap();
        // The initramfs is loaded last: ${filesize} must be its size.
        let last_load = cmd.rfind("load mmc").unwrap();
        assert!(cmd[last_load..].contains(INITRAMFS_FILE) && cmd.contains("am335x-boneblack.dtb"), "{cmd}");
        let b = board::load("visionfive2").unwrap();
        let f = boot_config_files(&b, "console=ttyS0,115200");
        assert_eq!(f[0].0, "extlinux/extlinux.conf");
        for l in ["\tkernel /vmlinuz", "\tinitrd /initramfs.cpio.gz", "\tfdt /starfive/jh7110-starfive-visionfive-2-v1.3b.dtb", "\tappend console=ttyS0,115200"] {
            assert!(f[0].1.lines().any(|x| x == l), "extlinux.conf lacks {l:?}:\n{}", f[0].1);
        }
        let b = board::load("pc-x86_64").unwrap();
        assert_eq!(boot_config_files(&b, "c")[0].0, "loader/entries/autosvr.conf");
    }

    #[test]
    fn options_are_checked() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let o = options(&a(&["--board", "rpi4", "--disk", "--disk-id", "0xdeadbeef", "--overlay", "a.tar"])).unwrap();
        assert_eq!((o.board.as_str(), o.disk, o.disk_id, o.overlays.len()), ("rpi4", true, Some(0xdeadbeef), 1));
        assert!(options(&a(&["--disk"])).is_err());
        assert!(options(&a(&["--board", "x", "--image", "d", "--system-img", "f"])).is_err());
        assert!(options(&a(&["--board", "x", "--disk-id", "0"])).is_err());
        assert!(options(&a(&["--board", "x", "--disk-id", "123456789"])).is_err());
    }
}
