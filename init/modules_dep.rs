//! `lib/modules/$(uname -r)/modules.dep`: which kernel modules to load, in which order, so
//! that `autoinit.modules=` can name just the ones it wants.
//!
//! Each line is `path: dep-path dep-path ...`, paths relative to the module directory, as
//! depmod writes them. Module names compare as the kernel does: '-' and '_' are the same,
//! and the name ends at the first '.' of the file name, as in kmod (`vfat.ko.xz` is `vfat`).
//!
//! Pure code (no syscalls), unit-tested on the host with a small sample and, when the
//! kernel cache of `cargo xtask` holds one, with a real Debian modules.dep.

use heapless::Vec;

/// The longest dependency chain followed; a longer one is reported as [`DepError::Cycle`].
/// Real chains in a distribution kernel are under 10 deep.
pub const MAX_DEPTH: usize = 32;

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum DepError<'a> {
    /// No line for this module (a wanted name, or a dependency path): it may be built in,
    /// see [`is_builtin`].
    UnknownModule(&'a str),
    /// The output list is full.
    TooMany,
    /// This line (1-based) is not `path: deps`.
    Malformed { line: usize },
    /// A module depends on itself, or a chain is deeper than [`MAX_DEPTH`].
    Cycle,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Compression {
    None,
    Xz,
    Zstd,
    Gzip,
}

/// How the module file at `path` is compressed, from its suffix.
pub fn compression(path: &str) -> Compression {
    if path.ends_with(".xz") {
        Compression::Xz
    } else if path.ends_with(".zst") {
        Compression::Zstd
    } else if path.ends_with(".gz") {
        Compression::Gzip
    } else {
        Compression::None
    }
}

/// The module name of a path or name: `kernel/fs/fat/vfat.ko.xz` gives `vfat`. As kmod does,
/// the name ends at the first '.' of the file name (module names have none), so a name is its
/// own module name (`grace.ko.ko` is `grace`, not `grace.ko`).
pub fn module_name(path: &str) -> &str {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.split('.').next().unwrap_or(base)
}

/// Whether two module names or paths name the same module ('-' and '_' alike).
pub fn same_module(a: &str, b: &str) -> bool {
    let (a, b) = (module_name(a).as_bytes(), module_name(b).as_bytes());
    let norm = |c: u8| if c == b'-' { b'_' } else { c };
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| norm(x) == norm(y))
}

/// Whether `modules.builtin` (one path per line) lists module `name`: built into the kernel,
/// so there is nothing to load.
pub fn is_builtin(modules_builtin: &str, name: &str) -> bool {
    modules_builtin.lines().map(str::trim).any(|l| !l.is_empty() && same_module(l, name))
}

/// A modules.dep text whose every line is `path: deps`, checked once by [`check`]: resolving
/// from it needs no pass of its own over the whole file. The boot stage checks once and then
/// resolves each wanted module; re-checking a 2 MiB file for each of 64 modules was most of
/// the work.
#[derive(Copy, Clone, Debug)]
pub struct Checked<'a>(&'a str);

/// Checks every line of `modules_dep`, so that a broken file is reported as such (its first
/// malformed line) and not as a missing module.
pub fn check(modules_dep: &str) -> Result<Checked<'_>, DepError<'_>> {
    for (i, line) in modules_dep.lines().enumerate() {
        if !line.trim().is_empty() && parse_line(line).is_none() {
            return Err(DepError::Malformed { line: i + 1 });
        }
    }
    Ok(Checked(modules_dep))
}

/// [`check`], then [`Checked::resolve`].
pub fn resolve<'a, const N: usize>(
    modules_dep: &'a str,
    wanted: &[&'a str],
    out: &mut Vec<&'a str, N>,
) -> Result<(), DepError<'a>> {
    check(modules_dep)?.resolve(wanted, out)
}

impl<'a> Checked<'a> {
    /// Appends to `out` the modules.dep paths of `wanted` and everything they depend on, each
    /// dependency before the modules that need it and every module once. Paths already in
    /// `out` count as loaded. On an error `out` holds the modules resolved so far, each still
    /// after its dependencies.
    pub fn resolve<const N: usize>(self, wanted: &[&'a str], out: &mut Vec<&'a str, N>) -> Result<(), DepError<'a>> {
        let modules_dep = self.0;
        let entries = || modules_dep.lines().filter_map(parse_line);
        for &name in wanted {
            let (path, deps) = entries().find(|(p, _)| same_module(p, name)).ok_or(DepError::UnknownModule(name))?;
            if out.contains(&path) {
                continue;
            }
            // Depth-first, without recursion: each frame is a module and its deps not yet visited.
            let mut stack: Vec<(&'a str, core::str::SplitAsciiWhitespace<'a>), MAX_DEPTH> = Vec::new();
            stack.push((path, deps.split_ascii_whitespace())).map_err(|_| DepError::Cycle)?;
            while let Some((module, rest)) = stack.last_mut() {
                let (module, next) = (*module, rest.next());
                match next {
                    Some(dep) => {
                        if out.contains(&dep) {
                            continue;
                        }
                        if stack.iter().any(|(m, _)| *m == dep) {
                            return Err(DepError::Cycle);
                        }
                        let its_deps = deps_of(modules_dep, dep).ok_or(DepError::UnknownModule(dep))?;
                        stack.push((dep, its_deps.split_ascii_whitespace())).map_err(|_| DepError::Cycle)?;
                    }
                    None => {
                        stack.pop();
                        out.push(module).map_err(|_| DepError::TooMany)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The dependency list of the line for `path`. Cheaper than [`parse_line`] on every line:
/// this runs once per module visited. A path with a ':' is no line's path (the path ends at
/// the first ':'), whatever a line starting with it holds (`x:: y` is the line of `x`).
fn deps_of<'a>(modules_dep: &'a str, path: &str) -> Option<&'a str> {
    if path.contains(':') {
        return None;
    }
    modules_dep.lines().find_map(|line| line.trim_start().strip_prefix(path)?.trim_start().strip_prefix(':'))
}

/// `path: deps` split in two; `None` if the line has no ':' or no single-word path.
fn parse_line(line: &str) -> Option<(&str, &str)> {
    let (path, deps) = line.split_once(':')?;
    let path = path.trim();
    if path.is_empty() || path.contains(char::is_whitespace) {
        return None;
    }
    Some((path, deps))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::format;
    use std::string::String as StdString;
    use std::vec::Vec as StdVec;

    const SAMPLE: &str = "\
kernel/fs/mbcache.ko.xz:
kernel/fs/ext4/ext4.ko.xz: kernel/lib/crc16.ko.xz kernel/fs/mbcache.ko.xz kernel/fs/jbd2/jbd2.ko.xz
kernel/fs/jbd2/jbd2.ko.xz:
kernel/fs/squashfs/squashfs.ko.xz:
kernel/fs/fat/fat.ko.xz:
kernel/fs/fat/vfat.ko.xz: kernel/fs/fat/fat.ko.xz
kernel/lib/crc16.ko.xz:
kernel/drivers/block/loop.ko.xz:
kernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio_ring.ko.xz kernel/drivers/virtio/virtio.ko.xz
kernel/drivers/virtio/virtio.ko.xz: kernel/drivers/virtio/virtio_ring.ko.xz
kernel/drivers/virtio/virtio_ring.ko.xz:
kernel/drivers/hid/hid-generic.ko.zst: kernel/drivers/hid/hid.ko.zst
kernel/drivers/hid/hid.ko.zst:
";

    const WANTED: [&str; 5] = ["virtio_blk", "vfat", "squashfs", "loop", "ext4"];

    #[test]
    fn checked_once_resolves_each_module_as_resolve_does() {
        let checked = check(SAMPLE).expect("well-formed");
        for w in WANTED.iter().chain(&["nosuch", "hid-generic"]) {
            let (mut a, mut b): (Vec<&str, 32>, Vec<&str, 32>) = (Vec::new(), Vec::new());
            assert_eq!(checked.resolve(&[w], &mut a), resolve(SAMPLE, &[w], &mut b), "{w}");
            assert_eq!(a, b, "{w}");
        }
        assert_eq!(check("a.ko:\nbroken\n").map(|_| ()), Err(DepError::Malformed { line: 2 }));
    }

    /// Every module appears once and after each module it depends on (per modules.dep).
    fn check_order(dep: &str, order: &[&str]) {
        let deps: HashMap<&str, &str> = dep.lines().filter_map(|l| l.split_once(':')).collect();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, m) in order.iter().enumerate() {
            assert!(seen.insert(m, i).is_none(), "{m} twice in {order:?}");
            for d in deps.get(m).expect("listed").split_whitespace() {
                let at = seen.get(d).unwrap_or_else(|| panic!("{d} (needed by {m}) missing or after it"));
                assert!(*at < i);
            }
        }
    }

    #[test]
    fn sample_resolves_dependencies_first() {
        let mut out: Vec<&str, 32> = Vec::new();
        resolve(SAMPLE, &WANTED, &mut out).expect("resolves");
        check_order(SAMPLE, &out);
        assert_eq!(
            out.as_slice(),
            [
                "kernel/drivers/virtio/virtio_ring.ko.xz",
                "kernel/drivers/virtio/virtio.ko.xz",
                "kernel/drivers/block/virtio_blk.ko.xz",
                "kernel/fs/fat/fat.ko.xz",
                "kernel/fs/fat/vfat.ko.xz",
                "kernel/fs/squashfs/squashfs.ko.xz",
                "kernel/drivers/block/loop.ko.xz",
                "kernel/lib/crc16.ko.xz",
                "kernel/fs/mbcache.ko.xz",
                "kernel/fs/jbd2/jbd2.ko.xz",
                "kernel/fs/ext4/ext4.ko.xz",
            ]
        );
    }

    #[test]
    fn names_match_with_dash_or_underscore_and_any_suffix() {
        let mut out: Vec<&str, 16> = Vec::new();
        resolve(SAMPLE, &["hid_generic", "virtio-blk", "vfat.ko", "fat", "vfat"], &mut out).expect("resolves");
        assert_eq!(
            out.as_slice(),
            [
                "kernel/drivers/hid/hid.ko.zst",
                "kernel/drivers/hid/hid-generic.ko.zst",
                "kernel/drivers/virtio/virtio_ring.ko.xz",
                "kernel/drivers/virtio/virtio.ko.xz",
                "kernel/drivers/block/virtio_blk.ko.xz",
                "kernel/fs/fat/fat.ko.xz",
                "kernel/fs/fat/vfat.ko.xz",
            ]
        );
        // Already loaded (in `out`) is not loaded again.
        resolve(SAMPLE, &["ext4", "hid-generic"], &mut out).expect("resolves");
        assert_eq!(out.len(), 11);
        assert!(same_module("kernel/a/snd-hda.ko.gz", "snd_hda"));
        assert!(!same_module("vfat", "fat"));
        assert!(!same_module("vfat", "vfat2"));
        assert_eq!(module_name("kernel/fs/fat/vfat.ko.xz"), "vfat");
        assert_eq!(module_name("loop"), "loop");
        // kmod's rule: the name ends at the first '.', so a module name is its own name
        // (found by the fuzz target modules_dep).
        assert_eq!(module_name("kernel/fs/nfs_common/grace.ko.ko"), "grace");
        assert!(same_module("grace.ko.ko", module_name("grace.ko.ko")));
        assert_eq!(module_name("kernel/a.b/c.ko"), "c");
    }

    #[test]
    fn errors() {
        let mut out: Vec<&str, 32> = Vec::new();
        assert_eq!(resolve(SAMPLE, &["vfat", "nosuch"], &mut out), Err(DepError::UnknownModule("nosuch")));
        assert_eq!(out.as_slice(), ["kernel/fs/fat/fat.ko.xz", "kernel/fs/fat/vfat.ko.xz"]);

        let mut small: Vec<&str, 2> = Vec::new();
        assert_eq!(resolve(SAMPLE, &["ext4"], &mut small), Err(DepError::TooMany));
        check_order(SAMPLE, &small);

        let missing_dep = "a.ko: b.ko\n";
        assert_eq!(resolve(missing_dep, &["a"], &mut out), Err(DepError::UnknownModule("b.ko")));

        let cycle = "a.ko: b.ko\nb.ko: c.ko\nc.ko: a.ko\n";
        let mut out: Vec<&str, 32> = Vec::new();
        assert_eq!(resolve(cycle, &["a"], &mut out), Err(DepError::Cycle));
        assert_eq!(resolve("a.ko: a.ko\n", &["a"], &mut out), Err(DepError::Cycle));

        // A chain of MAX_DEPTH modules resolves, one more is refused.
        let mut chain = StdString::new();
        for i in 0..=MAX_DEPTH {
            chain.push_str(&format!("m{i}.ko: m{}.ko\n", i + 1));
        }
        chain.push_str(&format!("m{}.ko:\n", MAX_DEPTH + 1));
        let mut out: Vec<&str, 64> = Vec::new();
        // m2 .. m33 is MAX_DEPTH modules deep; m1 one more.
        assert_eq!(resolve(&chain, &["m2"], &mut out), Ok(()));
        assert_eq!(out.len(), MAX_DEPTH);
        let mut out: Vec<&str, 64> = Vec::new();
        assert_eq!(resolve(&chain, &["m1"], &mut out), Err(DepError::Cycle));

        assert_eq!(resolve("a.ko:\n\nno colon here\n", &["a"], &mut out), Err(DepError::Malformed { line: 3 }));
        assert_eq!(resolve("a b.ko: c.ko\n", &["a"], &mut out), Err(DepError::Malformed { line: 1 }));
        assert_eq!(resolve(": c.ko\n", &["a"], &mut out), Err(DepError::Malformed { line: 1 }));
        // A dependency "x:" is not defined by the line "x:: ", which is the line of "x".
        let mut out: Vec<&str, 4> = Vec::new();
        assert_eq!(resolve("a.ko: x:\nx:: \n", &["a"], &mut out), Err(DepError::UnknownModule("x:")));
        // Blank lines and CRLF are fine.
        let mut out: Vec<&str, 4> = Vec::new();
        assert_eq!(resolve("\r\nb.ko:\r\na.ko: b.ko\r\n", &["a"], &mut out), Ok(()));
        assert_eq!(out.as_slice(), ["b.ko", "a.ko"]);
        let mut out: Vec<&str, 4> = Vec::new();
        assert_eq!(resolve("", &[], &mut out), Ok(()));
        assert_eq!(resolve("", &["a"], &mut out), Err(DepError::UnknownModule("a")));
    }

    #[test]
    fn builtin_and_compression() {
        let builtin = "kernel/fs/ext4/ext4.ko\nkernel/drivers/block/virtio_blk.ko\n";
        assert!(is_builtin(builtin, "ext4"));
        assert!(is_builtin(builtin, "virtio-blk"));
        assert!(!is_builtin(builtin, "ext"));
        assert!(!is_builtin("", "ext4"));
        assert_eq!(compression("kernel/a.ko.xz"), Compression::Xz);
        assert_eq!(compression("kernel/a.ko.zst"), Compression::Zstd);
        assert_eq!(compression("kernel/a.ko.gz"), Compression::Gzip);
        assert_eq!(compression("kernel/a.ko"), Compression::None);
    }

    #[test]
    fn hostile_input_does_not_panic() {
        let mut out: Vec<&str, 4> = Vec::new();
        for dep in [":", "::", "a:b:c", "a.ko: a.ko a.ko", "\0: \0", "ä.ko: ö.ko\nö.ko:", " \t\n"] {
            let _ = resolve(dep, &["a", "ä", "", "-"], &mut out);
            out.clear();
        }
    }

    /// The modules.dep of a Debian kernel in the xtask cache, if one was downloaded.
    fn debian_modules_dir() -> Option<std::path::PathBuf> {
        let root = std::path::PathBuf::from(std::env::var_os("HOME")?).join(".cache/autoinit/kernels/x86_64");
        let mut found: StdVec<_> = std::fs::read_dir(root)
            .ok()?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("6.1.0-"))
            .filter_map(|e| std::fs::read_dir(e.path().join("lib/modules")).ok()?.filter_map(|m| m.ok()).map(|m| m.path()).next())
            .filter(|p| p.join("modules.dep").is_file())
            .collect();
        found.sort();
        found.pop()
    }

    #[test]
    fn real_debian_modules_dep() {
        let Some(dir) = debian_modules_dir() else {
            std::eprintln!("no Debian kernel in ~/.cache/autoinit: real modules.dep test skipped");
            return;
        };
        let dep = std::fs::read_to_string(dir.join("modules.dep")).expect("read modules.dep");
        let builtin = std::fs::read_to_string(dir.join("modules.builtin")).unwrap_or_default();
        let mut out: Vec<&str, 64> = Vec::new();
        resolve(&dep, &WANTED, &mut out).expect("resolves");
        check_order(&dep, &out);
        for w in WANTED {
            assert!(out.iter().any(|p| same_module(p, w)) || is_builtin(&builtin, w), "{w} missing");
        }
        assert!(out.iter().any(|p| same_module(p, "jbd2")), "{out:?}");
        // Something every Debian kernel builds in rather than as a module.
        let mut none: Vec<&str, 4> = Vec::new();
        if let Err(DepError::UnknownModule(m)) = resolve(&dep, &["unix"], &mut none) {
            assert!(is_builtin(&builtin, m));
        }
        // Every 10th module of the kernel (all of them take half a minute in a debug build)
        // resolves, and the order holds for each.
        let some: StdVec<&str> = dep.lines().filter_map(|l| l.split_once(':')).map(|(p, _)| p).step_by(10).collect();
        for chunk in some.chunks(50) {
            let mut out: Vec<&str, 512> = Vec::new();
            resolve(&dep, chunk, &mut out).expect("resolves");
            check_order(&dep, &out);
        }
    }
}
