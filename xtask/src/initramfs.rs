//! Builds an initramfs: a newc cpio written in Rust (device nodes need no root), holding `/init`
//! (autoinit), the usual empty directories, `/dev/console`, optionally `/bin/busybox` with a
//! symlink per applet (the rescue shell), and the board's kernel modules with their dependency
//! closure, a modules.dep of their own and the board's module list (`/etc/autoinit/modules`).
//! The same entries can be written as a list for the kernel's gen_init_cpio.

use crate::arch::Arch;
use crate::debian::Kernel;
use anyhow::{bail, Context, Result};
use cpio::newc::{Builder, ModeFileType};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What goes into an initramfs.
pub struct Spec<'a> {
    pub arch: Arch,
    /// The autoinit binary, installed as `/init`.
    pub init: &'a Path,
    /// A static busybox for `arch`, installed as `/bin/busybox` with a link per applet (the
    /// rescue shell); none in a vendor's initramfs unless asked for.
    pub busybox: Option<&'a Path>,
    /// The kernel whose modules `modules` names (needed only when `modules` is not empty).
    pub kernel: Option<&'a Kernel>,
    /// Module names (`virtio_blk`, `squashfs`); each comes with its dependencies from
    /// modules.dep, under `/lib/modules/<version>/` with a modules.dep of its own and the
    /// kernel's modules.builtin. The names, in order, are the board's list the boot stage loads:
    /// `/etc/autoinit/modules`, one per line.
    pub modules: &'a [String],
}

/// Applets the tests and the demo use; installed when busybox cannot be asked for its list.
const FALLBACK_APPLETS: &[&str] = &[
    "sh", "ash", "ls", "cat", "echo", "ps", "sleep", "grep", "kill", "dmesg", "tr", "mount", "umount", "true",
    "false", "test", "[", "[[", "mkdir", "poweroff", "reboot", "halt", "head", "tail", "wc", "sed", "awk", "uname",
    "env", "printf", "rm", "cp", "mv", "ln", "stat", "readlink", "find", "xargs", "hexdump", "od", "insmod",
    "modprobe", "lsmod", "rmmod", "free", "uptime", "date", "sync", "chmod", "touch", "pidof", "top", "id",
    "hostname", "mknod", "losetup", "switch_root", "vi", "less", "more", "dd", "df", "du", "cut", "sort", "uniq",
    "basename", "dirname", "seq", "watch", "timeout", "ip", "ifconfig", "setsid", "nohup", "which",
];

/// Asks busybox which applets it has (`busybox --list-full`), running it with qemu-user when it
/// is a foreign binary. Falls back to [`FALLBACK_APPLETS`].
pub fn applets(arch: Arch, busybox: &Path) -> Vec<String> {
    let try_run = |cmd: &mut std::process::Command| -> Option<Vec<String>> {
        let out = cmd.output().ok()?;
        if !out.status.success() {
            return None;
        }
        let list: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        (list.len() > 20).then_some(list)
    };
    let direct = (arch == Arch::X86_64 || arch == Arch::I686)
        .then(|| try_run(std::process::Command::new(busybox).arg("--list-full")))
        .flatten();
    direct
        .or_else(|| try_run(std::process::Command::new(arch.qemu_user()).arg(busybox).arg("--list-full")))
        .unwrap_or_else(|| FALLBACK_APPLETS.iter().map(|a| format!("bin/{a}")).collect())
}

/// What an entry of the initramfs is.
#[derive(Clone, Debug)]
pub enum Node {
    Dir,
    /// A regular file and its contents.
    File { data: Vec<u8> },
    Char { major: u32, minor: u32 },
    Symlink(String),
}

/// One entry: path without a leading `/`, permission bits, what it is.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: String,
    pub mode: u32,
    pub node: Node,
}

/// The initramfs's entries in archive order (every parent before its children), written as a
/// newc archive by [`Tree::write_cpio`] or as a gen_init_cpio list by [`Tree::gen_init_cpio_list`].
#[derive(Default)]
pub struct Tree {
    pub entries: Vec<Entry>,
    /// Every path added, to refuse duplicates.
    names: BTreeSet<String>,
}

impl Tree {
    fn push(&mut self, name: &str, mode: u32, node: Node) -> Result<()> {
        let name = name.trim_matches('/');
        if let Some((parent, _)) = name.rsplit_once('/') {
            self.dir(parent)?;
        }
        if !self.names.insert(name.to_string()) {
            bail!("initramfs: {name} added twice");
        }
        self.entries.push(Entry { name: name.to_string(), mode, node });
        Ok(())
    }

    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(name.trim_matches('/'))
    }

    /// A directory and its missing parents.
    pub fn dir(&mut self, path: &str) -> Result<()> {
        let path = path.trim_matches('/');
        if path.is_empty() || self.names.contains(path) {
            return Ok(());
        }
        let mode = if path == "tmp" { 0o1777 } else { 0o755 };
        self.push(path, mode, Node::Dir)
    }

    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> Result<()> {
        self.push(name, mode, Node::File { data: data.to_vec() })
    }

    /// A file read from the host file `src`.
    pub fn file_from(&mut self, name: &str, mode: u32, src: &Path) -> Result<()> {
        let data = std::fs::read(src).with_context(|| format!("reading {}", src.display()))?;
        self.push(name, mode, Node::File { data })
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> Result<()> {
        self.push(name, 0o777, Node::Symlink(target.to_string()))
    }

    pub fn char_dev(&mut self, name: &str, mode: u32, major: u32, minor: u32) -> Result<()> {
        self.push(name, mode, Node::Char { major, minor })
    }

    /// The newc archive (uid and gid 0, mtime 0, one inode per entry).
    pub fn write_cpio<W: Write>(&self, out: W) -> Result<W> {
        let mut out = out;
        for (i, e) in self.entries.iter().enumerate() {
            let (kind, data, nlink, rdev): (ModeFileType, &[u8], u32, (u32, u32)) = match &e.node {
                Node::Dir => (ModeFileType::Directory, &[], 2, (0, 0)),
                Node::File { data, .. } => (ModeFileType::Regular, data, 1, (0, 0)),
                Node::Char { major, minor } => (ModeFileType::Char, &[], 1, (*major, *minor)),
                Node::Symlink(t) => (ModeFileType::Symlink, t.as_bytes(), 1, (0, 0)),
            };
            let size = u32::try_from(data.len()).context("initramfs: file larger than 4 GiB")?;
            let ino = u32::try_from(i + 2).context("initramfs: too many entries")?;
            let b = Builder::new(&e.name)
                .ino(ino)
                .mode(e.mode)
                .set_mode_file_type(kind)
                .uid(0)
                .gid(0)
                .nlink(nlink)
                .rdev_major(rdev.0)
                .rdev_minor(rdev.1);
            let mut w = b.write(out, size);
            w.write_all(data)?;
            out = w.finish()?;
        }
        Ok(cpio::newc::trailer(out)?)
    }

    /// The same entries as a list for the kernel's usr/gen_init_cpio (`CONFIG_INITRAMFS_SOURCE`):
    /// `dir NAME MODE 0 0`, `file NAME LOCATION MODE 0 0`, `nod NAME MODE 0 0 c MAJ MIN`,
    /// `slink NAME TARGET MODE 0 0`. Every file's contents are written under `stage` (at its
    /// own path) and named by absolute path there, so the list does not depend on caches.
    pub fn gen_init_cpio_list(&self, stage: &Path) -> Result<String> {
        if stage.exists() {
            std::fs::remove_dir_all(stage).with_context(|| format!("removing {}", stage.display()))?;
        }
        std::fs::create_dir_all(stage)?;
        let stage = stage.canonicalize()?;
        let mut list = String::from(
            "# initramfs for CONFIG_INITRAMFS_SOURCE (format: the kernel's usr/gen_init_cpio.c).\n\
             # Written by `cargo xtask image`; file locations are absolute paths in initramfs/ next to it.\n",
        );
        for e in &self.entries {
            let bad = |c: char| c.is_whitespace() || c.is_control();
            if e.name.contains(bad) {
                bail!("initramfs: {:?} has white space, which a gen_init_cpio list cannot hold", e.name);
            }
            let line = match &e.node {
                Node::Dir => format!("dir /{} {:04o} 0 0", e.name, e.mode),
                Node::File { data, .. } => {
                    let loc = stage.join(&e.name);
                    if let Some(d) = loc.parent() {
                        std::fs::create_dir_all(d)?;
                    }
                    std::fs::write(&loc, data).with_context(|| format!("writing {}", loc.display()))?;
                    let loc = loc.to_str().filter(|l| !l.contains(bad)).with_context(|| format!("{} cannot be named in a gen_init_cpio list", loc.display()))?.to_string();
                    format!("file /{} {loc} {:04o} 0 0", e.name, e.mode)
                }
                Node::Char { major, minor } => format!("nod /{} {:04o} 0 0 c {major} {minor}", e.name, e.mode),
                Node::Symlink(target) => {
                    if target.contains(bad) {
                        bail!("initramfs: symlink target {target:?} has white space");
                    }
                    format!("slink /{} {target} {:04o} 0 0", e.name, e.mode)
                }
            };
            list.push_str(&line);
            list.push('\n');
        }
        Ok(list)
    }
}

/// Parses modules.dep (`kernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko ...`) into
/// (module name, path, dependency paths). Names use `_` for `-`, as modprobe does.
fn modules_dep(modules_dir: &Path) -> Result<Vec<(String, String, Vec<String>)>> {
    let p = modules_dir.join("modules.dep");
    let text = std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let (m, deps) = l.split_once(':')?;
            Some((module_name(m), m.to_string(), deps.split_whitespace().map(str::to_string).collect()))
        })
        .collect())
}

/// `kernel/fs/fat/vfat.ko.xz` → `vfat`.
fn module_name(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    let base = base.split(".ko").next().unwrap_or(base);
    base.replace('-', "_")
}

/// The module paths (relative to lib/modules/VERSION) needed for `wanted`, dependencies first,
/// and the modules.dep lines describing them.
pub fn module_closure(modules_dir: &Path, wanted: &[String]) -> Result<(Vec<String>, String)> {
    let dep = modules_dep(modules_dir)?;
    let by_path: std::collections::HashMap<&str, &Vec<String>> = dep.iter().map(|(_, p, d)| (p.as_str(), d)).collect();
    let mut order: Vec<String> = Vec::new();
    for w in wanted {
        let norm = w.replace('-', "_");
        let (_, path, deps) = dep
            .iter()
            .find(|(n, _, _)| *n == norm)
            .with_context(|| format!("kernel module {w} is not in {}/modules.dep (built in, or misspelt?)", modules_dir.display()))?;
        // modules.dep lists the full closure, deepest dependency last: load in reverse.
        for d in deps.iter().rev().chain(std::iter::once(path)) {
            if !order.contains(d) {
                order.push(d.clone());
            }
        }
    }
    let mut text = String::new();
    for m in &order {
        let deps = by_path.get(m.as_str()).map(|d| d.join(" ")).unwrap_or_default();
        text.push_str(&format!("{m}:{}{deps}\n", if deps.is_empty() { "" } else { " " }));
    }
    Ok((order, text))
}

/// The entries of the initramfs `spec` describes.
pub fn tree(spec: &Spec) -> Result<Tree> {
    let mut a = Tree::default();
    for d in ["dev", "proc", "sys", "tmp", "root", "etc", "run", "mnt"] {
        a.dir(d)?;
    }
    a.char_dev("dev/console", 0o600, 5, 1)?;
    a.char_dev("dev/null", 0o666, 1, 3)?;
    a.file_from("init", 0o755, spec.init)?;
    if let Some(busybox) = spec.busybox {
        for d in ["bin", "sbin", "usr/bin", "usr/sbin"] {
            a.dir(d)?;
        }
        a.file_from("bin/busybox", 0o755, busybox)?;
        for applet in applets(spec.arch, busybox) {
            let applet = applet.trim_start_matches('/');
            let name = applet.rsplit('/').next().unwrap_or(applet);
            if name == "busybox" || name.is_empty() {
                continue;
            }
            let dir = applet.rsplit_once('/').map(|(d, _)| d).unwrap_or("bin");
            let path = format!("{dir}/{name}");
            if a.contains(&path) {
                continue;
            }
            let depth = path.matches('/').count();
            let target = format!("{}bin/busybox", "../".repeat(depth));
            a.symlink(&path, &target)?;
        }
        a.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n")?;
        a.file("etc/group", 0o644, b"root:x:0:\n")?;
    }
    if !spec.modules.is_empty() {
        let k = spec.kernel.context("initramfs: modules requested but no kernel given")?;
        let (paths, dep) = module_closure(&k.modules, spec.modules)?;
        let base = format!("lib/modules/{}", k.version);
        for p in &paths {
            a.file_from(&format!("{base}/{p}"), 0o644, &k.modules.join(p)).with_context(|| format!("module {p}"))?;
        }
        a.file(&format!("{base}/modules.dep"), 0o644, dep.as_bytes())?;
        // So that the init can tell a built-in module from a missing one.
        if let Ok(builtin) = std::fs::read(k.modules.join("modules.builtin")) {
            a.file(&format!("{base}/modules.builtin"), 0o644, &builtin)?;
        }
        let list: String = spec.modules.iter().map(|m| format!("{m}\n")).collect();
        a.file("etc/autoinit/modules", 0o644, list.as_bytes())?;
    }
    Ok(a)
}

/// Writes the initramfs to `out` (an uncompressed newc archive) and returns its path.
pub fn build(spec: &Spec, out: &Path) -> Result<PathBuf> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = out.with_extension("tmp");
    let f = std::io::BufWriter::new(std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?);
    let mut f = tree(spec)?.write_cpio(f)?;
    f.flush()?;
    drop(f);
    std::fs::rename(&tmp, out)?;
    Ok(out.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_are_normalised() {
        assert_eq!(module_name("kernel/fs/fat/vfat.ko"), "vfat");
        assert_eq!(module_name("kernel/drivers/virtio/virtio_pci-legacy.ko.xz"), "virtio_pci_legacy");
    }

    #[test]
    fn closure_puts_dependencies_first() {
        let dir = std::env::temp_dir().join(format!("xtask-moddep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("modules.dep"),
            "kernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko\nkernel/fs/fat/fat.ko:\nkernel/a.ko: kernel/b.ko kernel/c.ko\nkernel/b.ko: kernel/c.ko\nkernel/c.ko:\n",
        )
        .unwrap();
        let (order, dep) = module_closure(&dir, &["vfat".into(), "a".into()]).unwrap();
        assert_eq!(order, ["kernel/fs/fat/fat.ko", "kernel/fs/fat/vfat.ko", "kernel/c.ko", "kernel/b.ko", "kernel/a.ko"]);
        assert!(dep.contains("kernel/fs/fat/vfat.ko: kernel/fs/fat/fat.ko\n"));
        assert!(dep.contains("kernel/fs/fat/fat.ko:\n"));
        assert!(module_closure(&dir, &["nope".into()]).unwrap_err().to_string().contains("nope"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn archive_has_device_nodes_and_parents() {
        let mut a = Tree::default();
        a.char_dev("dev/console", 0o600, 5, 1).unwrap();
        a.symlink("usr/bin/env", "../../bin/busybox").unwrap();
        let bytes = a.write_cpio(Vec::new()).unwrap();
        let mut names = Vec::new();
        let mut r = std::io::Cursor::new(bytes);
        loop {
            let e = cpio::newc::Reader::new(r).unwrap();
            if e.entry().is_trailer() {
                break;
            }
            names.push((e.entry().name().to_string(), e.entry().mode(), e.entry().rdev_major(), e.entry().rdev_minor()));
            r = e.finish().unwrap();
        }
        assert_eq!(names[0].0, "dev");
        assert_eq!(names[1], ("dev/console".to_string(), 0o020600, 5, 1));
        assert_eq!(names[2].0, "usr");
        assert_eq!(names[3].0, "usr/bin");
        assert_eq!(names[4].1 & 0o170000, 0o120000);
    }

    #[test]
    fn gen_init_cpio_list_matches_the_archive() {
        let stage = std::env::temp_dir().join(format!("xtask-gic-{}", std::process::id()));
        let mut a = Tree::default();
        a.file("init", 0o755, b"\x7fELF").unwrap();
        a.char_dev("dev/console", 0o600, 5, 1).unwrap();
        a.dir("tmp").unwrap();
        a.symlink("bin/sh", "busybox").unwrap();
        a.file("lib/modules/6.1.0/modules.dep", 0o644, b"kernel/a.ko:\n").unwrap();
        let list = a.gen_init_cpio_list(&stage).unwrap();
        let s = stage.canonicalize().unwrap();
        let lines: Vec<&str> = list.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                format!("file /init {}/init 0755 0 0", s.display()),
                "dir /dev 0755 0 0".to_string(),
                "nod /dev/console 0600 0 0 c 5 1".to_string(),
                "dir /tmp 1777 0 0".to_string(),
                "dir /bin 0755 0 0".to_string(),
                "slink /bin/sh busybox 0777 0 0".to_string(),
                "dir /lib 0755 0 0".to_string(),
                "dir /lib/modules 0755 0 0".to_string(),
                "dir /lib/modules/6.1.0 0755 0 0".to_string(),
                format!("file /lib/modules/6.1.0/modules.dep {}/lib/modules/6.1.0/modules.dep 0644 0 0", s.display()),
            ]
        );
        assert_eq!(std::fs::read(s.join("lib/modules/6.1.0/modules.dep")).unwrap(), b"kernel/a.ko:\n");
        // Names gen_init_cpio's sscanf("%s") would split are refused.
        let mut b = Tree::default();
        b.file("a b", 0o644, b"").unwrap();
        assert!(b.gen_init_cpio_list(&stage).is_err());
        std::fs::remove_dir_all(&stage).unwrap();
    }
}
