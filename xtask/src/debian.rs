//! Debian packages the tests boot with: a board's kernel and `busybox-static`.
//!
//! Downloads go to `~/.cache/autoinit/debs/` with `apt-get download`, extractions to
//! `~/.cache/autoinit/kernels/<arch>/<version>/` and `~/.cache/autoinit/busybox/<arch>/<version>/`.
//! The package versions come from the local apt lists (`apt-cache`, no network); a `.deb` that
//! is already in the cache is not downloaded again, and a finished extraction is marked with a
//! `.complete` stamp so a second run does no work at all.

use crate::arch::Arch;
use crate::board::Qemu;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `~/.cache/autoinit` (or `$XDG_CACHE_HOME/autoinit`).
pub fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    base.join("autoinit")
}

/// A kernel extracted from a Debian package.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// `uname -r` of the kernel, e.g. `6.1.0-50-amd64`.
    pub version: String,
    /// The extraction root (`boot/`, `lib/modules/<version>/`).
    pub root: PathBuf,
    /// The image Debian boots (`boot/vmlinuz-*`, or `boot/vmlinux-*` on riscv64).
    pub image: PathBuf,
    /// `lib/modules/<version>/`, with a modules.dep written by `depmod -b`.
    pub modules: PathBuf,
}

impl Kernel {
    /// The image to give QEMU's `-kernel`. On x86_64 the ELF `vmlinux` extracted from the
    /// bzImage (it boots through the PVH entry point and skips ~3 s of self-decompression
    /// under TCG); everywhere else the packaged image.
    pub fn qemu_image(&self, arch: Arch) -> Result<PathBuf> {
        if arch != Arch::X86_64 {
            return Ok(self.image.clone());
        }
        let out = self.root.join("vmlinux-elf");
        if out.exists() {
            return Ok(out);
        }
        match extract_vmlinux(&self.image, &out) {
            Ok(()) => Ok(out),
            Err(e) => {
                eprintln!("xtask: note: could not extract vmlinux from {} ({e:#}); booting the bzImage", self.image.display());
                Ok(self.image.clone())
            }
        }
    }
}

/// Runs a command, returning its stdout; the error carries stderr.
fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// apt's options for our own package cache. This kind of machine disables apt's binary cache
/// (docker-clean), which makes every apt-cache call re-parse all package lists (~10 s); a
/// private cache brings that to ~2 s.
fn apt(tool: &str) -> Command {
    let dir = cache_dir().join("apt");
    let _ = std::fs::create_dir_all(&dir);
    let mut c = Command::new(tool);
    c.arg("-o").arg(format!("Dir::Cache::pkgcache={}", dir.join("pkgcache.bin").display()));
    c.arg("-o").arg("Dir::Cache::srcpkgcache=");
    c
}

fn mtime(p: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// `apt-cache show --no-all-versions PKG`, remembered in `~/.cache/autoinit/apt/show/` until
/// the apt lists change (`apt-get update` replaces files in /var/lib/apt/lists, which changes
/// that directory's mtime).
fn apt_show_text(pkg: &str) -> Result<String> {
    let memo = cache_dir().join("apt/show").join(pkg.replace(['/', ':'], "_"));
    if let (Some(m), Some(l)) = (mtime(&memo), mtime(Path::new("/var/lib/apt/lists")))
        && m > l
        && let Ok(t) = std::fs::read_to_string(&memo)
    {
        return Ok(t);
    }
    let text = output(apt("apt-cache").args(["show", "--no-all-versions", pkg]))
        .with_context(|| format!("package {pkg} is not known to apt (has `cargo xtask setup` run?)"))?;
    if let Some(d) = memo.parent() {
        let _ = std::fs::create_dir_all(d);
        let _ = std::fs::write(&memo, &text);
    }
    Ok(text)
}

/// The fields of `apt-cache show --no-all-versions PKG` (the candidate version).
fn apt_show(pkg: &str) -> Result<Vec<(String, String)>> {
    let text = apt_show_text(pkg)?;
    let mut fields = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            break; // only the first stanza
        }
        if line.starts_with(' ') {
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            fields.push((k.to_string(), v.trim().to_string()));
        }
    }
    if fields.is_empty() {
        bail!("apt-cache knows no candidate version of {pkg}");
    }
    Ok(fields)
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// `pkg:arch` for apt.
fn qualified(pkg: &str, debian_arch: &str) -> String {
    if pkg.contains(':') { pkg.to_string() } else { format!("{pkg}:{debian_arch}") }
}

/// Candidate version of `pkg:arch`.
fn candidate_version(pkg: &str, debian_arch: &str) -> Result<String> {
    let q = qualified(pkg, debian_arch);
    let fields = apt_show(&q)?;
    field(&fields, "Version").map(str::to_string).with_context(|| format!("apt-cache show {q}: no Version"))
}

/// Makes sure `pkg`'s candidate `.deb` for `debian_arch` is in `~/.cache/autoinit/debs/`
/// (downloading it only when missing) and returns its path and version.
pub fn download(pkg: &str, debian_arch: &str) -> Result<(PathBuf, String)> {
    let version = candidate_version(pkg, debian_arch)?;
    let dir = cache_dir().join("debs");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = pkg.split(':').next().unwrap();
    // apt-get download names files NAME_VERSION_ARCH.deb with the epoch's ':' as "%3a".
    let stem = format!("{name}_{}", version.replace(':', "%3a"));
    let find = || -> Option<PathBuf> {
        [debian_arch, "all"].iter().map(|a| dir.join(format!("{stem}_{a}.deb"))).find(|p| p.exists())
    };
    if let Some(p) = find() {
        return Ok((p, version));
    }
    let q = qualified(pkg, debian_arch);
    eprintln!("xtask: downloading {q} {version}");
    let out = apt("apt-get")
        .current_dir(&dir)
        .args(["download", "-q"])
        .arg(format!("{q}={version}"))
        .output()
        .context("running apt-get download")?;
    if !out.status.success() {
        bail!(
            "downloading Debian package {q} (version {version}) failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let p = find().with_context(|| format!("apt-get download {q} left no {stem}_{debian_arch}.deb in {}", dir.display()))?;
    Ok((p, version))
}

/// `dpkg -x DEB DIR` into a fresh directory, stamped `.complete` when done.
fn extract(deb: &Path, dir: &Path) -> Result<()> {
    if dir.join(".complete").exists() {
        return Ok(());
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing partial {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    output(Command::new("dpkg").arg("-x").arg(deb).arg(dir)).with_context(|| format!("extracting {}", deb.display()))?;
    Ok(())
}

fn stamp(dir: &Path) -> Result<()> {
    std::fs::write(dir.join(".complete"), b"")?;
    Ok(())
}

/// Resolves the versioned kernel package behind a board's meta package (`linux-image-amd64`
/// depends on `linux-image-6.1.0-NN-amd64`), fetches and extracts it and runs depmod.
pub fn kernel(arch: Arch, q: &Qemu) -> Result<Kernel> {
    kernel_package(arch, &q.kernel_package, &q.debian_arch)
}

/// [`kernel`] for a meta package and Debian architecture (a real board's `[hardware]`).
pub fn kernel_package(arch: Arch, kernel_package: &str, debian_arch: &str) -> Result<Kernel> {
    let meta = qualified(kernel_package, debian_arch);
    let fields = apt_show(&meta)?;
    let depends = field(&fields, "Depends").with_context(|| format!("{meta} has no Depends"))?;
    let (pkg, version) = versioned_kernel(depends)
        .with_context(|| format!("{meta}: no versioned linux-image-N.N package in Depends: {depends}"))?;
    let (deb, _) = download(&pkg, debian_arch)?;
    let root = cache_dir().join("kernels").join(arch.name()).join(&version);
    extract(&deb, &root)?;
    // Merged-/usr packages (trixie) put modules under usr/lib; depmod -b wants lib/modules.
    let lib = root.join("lib");
    if !lib.exists() && root.join("usr/lib/modules").exists() {
        std::os::unix::fs::symlink("usr/lib", &lib)?;
    }
    let modules = root.join("lib/modules").join(&version);
    if !root.join(".complete").exists() {
        if modules.exists() {
            output(Command::new("depmod").arg("-b").arg(&root).arg(&version))
                .with_context(|| format!("depmod -b {} {version}", root.display()))?;
        }
        stamp(&root)?;
    }
    let boot = root.join("boot");
    let image = ["vmlinuz-", "vmlinux-"]
        .iter()
        .map(|p| boot.join(format!("{p}{version}")))
        .find(|p| p.exists())
        .with_context(|| format!("{pkg}: no boot/vmlinuz-{version} or boot/vmlinux-{version} in {}", root.display()))?;
    Ok(Kernel { version, root, image, modules })
}

/// From a kernel meta package's Depends, the versioned image package and its `uname -r`:
/// `linux-image-6.1.0-50-amd64 (= 6.1.176-1)` → (`linux-image-6.1.0-50-amd64`, `6.1.0-50-amd64`).
fn versioned_kernel(depends: &str) -> Option<(String, String)> {
    let pkg = depends
        .split([',', '|'])
        .map(|d| d.trim().split([' ', ':']).next().unwrap_or(""))
        .find(|d| d.strip_prefix("linux-image-").is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit())))?;
    let version = pkg.trim_start_matches("linux-image-").trim_end_matches("-unsigned");
    Some((pkg.to_string(), version.to_string()))
}

/// Fetches `busybox-static` for a Debian architecture; returns the path of the static binary.
pub fn busybox(debian_arch: &str) -> Result<PathBuf> {
    busybox_versioned(debian_arch).map(|(p, _)| p)
}

/// [`busybox`], with the package's version.
pub fn busybox_versioned(debian_arch: &str) -> Result<(PathBuf, String)> {
    let (deb, version) = download("busybox-static", debian_arch)?;
    let arch_dir = cache_dir().join("busybox").join(debian_arch);
    let dir = arch_dir.join(version.replace(':', "_"));
    extract(&deb, &dir)?;
    stamp(&dir)?;
    let bin = ["bin/busybox", "usr/bin/busybox"]
        .iter()
        .map(|p| dir.join(p))
        .find(|p| p.exists())
        .with_context(|| format!("busybox-static:{debian_arch}: no bin/busybox in {}", dir.display()))?;
    Ok((bin, version))
}

/// The kernel tree's scripts/extract-vmlinux, in Rust: find a compressed payload inside the
/// bzImage, decompress it with the host's tool and keep the result if it is an ELF file.
fn extract_vmlinux(bzimage: &Path, out: &Path) -> Result<()> {
    let data = std::fs::read(bzimage)?;
    // (magic, decompressor argv)
    let formats: [(&[u8], &[&str]); 4] = [
        (b"\x28\xb5\x2f\xfd", &["zstd", "-dcq"]),
        (b"\xfd7zXZ\x00", &["xz", "-dcq"]),
        (b"\x1f\x8b\x08", &["gzip", "-dcq"]),
        (b"\x02\x21\x4c\x18", &["lz4", "-dcq"]),
    ];
    for (magic, argv) in formats {
        let mut start = 0;
        while let Some(pos) = find(&data[start..], magic).map(|p| p + start) {
            start = pos + 1;
            let tmp = out.with_extension("tmp");
            let f = std::fs::File::create(&tmp)?;
            let child = Command::new(argv[0])
                .args(&argv[1..])
                .stdin(std::process::Stdio::piped())
                .stdout(f)
                .stderr(std::process::Stdio::null())
                .spawn();
            let Ok(mut child) = child else { continue };
            {
                use std::io::Write;
                let mut stdin = child.stdin.take().unwrap();
                // Trailing garbage makes the tool complain, but the output is complete.
                let _ = stdin.write_all(&data[pos..]);
            }
            let _ = child.wait();
            let head = std::fs::read(&tmp).map(|d| d.get(..4).map(|h| h.to_vec())).unwrap_or(None);
            if head.as_deref() == Some(b"\x7fELF") {
                std::fs::rename(&tmp, out)?;
                return Ok(());
            }
            let _ = std::fs::remove_file(&tmp);
        }
    }
    bail!("no compressed ELF payload found")
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_package_resolves_to_the_versioned_image() {
        let v = versioned_kernel("linux-image-6.1.0-50-amd64 (= 6.1.176-1)").unwrap();
        assert_eq!(v, ("linux-image-6.1.0-50-amd64".into(), "6.1.0-50-amd64".into()));
        let v = versioned_kernel("initramfs-tools | linux-initramfs-tool, linux-image-6.12.117+deb13-riscv64 (= 6.12.117-1)").unwrap();
        assert_eq!(v.1, "6.12.117+deb13-riscv64");
        assert_eq!(versioned_kernel("linux-image-6.1.0-50-amd64-unsigned").unwrap().1, "6.1.0-50-amd64");
        assert!(versioned_kernel("linux-image-amd64-signed-template").is_none());
    }

    #[test]
    fn finds_a_compressed_payload() {
        assert_eq!(find(b"abc\xfd7zXZ\x00def", b"\xfd7zXZ\x00"), Some(3));
        assert_eq!(find(b"abc", b"abcd"), None);
    }
}
