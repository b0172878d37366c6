//! The system images of the on-the-fly upgrade tests, the demo and the upgrade benchmark
//! (docs/upgrade.md), built like images.rs builds the boot-stage ones (`mksquashfs` of a tree,
//! read back with `unsquashfs`) and cached the same way, in `target/images/<arch>/upgrade/`.
//!
//! Every image holds busybox, an empty `/_upgrade` and four units in `/etc/autoinit/services`:
//!
//! | unit | what | v1 -> v2 |
//! |---|---|---|
//! | `console` | `/bin/sh` on the board's console (StandardInput=tty, Restart=always): what a test or the demo types into | |
//! | `notifier` | `Type=notify`: tests/notify-daemon, READY=1 after 300 ms | the binary differs (v2 carries a marker after its ELF contents) |
//! | `web` | `/usr/bin/web-daemon`, a script that execs busybox `httpd` on port 8080 serving `/opt/app/www` | the page says `app v2`; in v2-bad the script exits 1 at once |
//! | `worker` | `After=`/`Requires=notifier`: prints the version it runs on, then sleeps | |
//!
//! Besides, `/usr/bin/autoinit` links to the client and `/usr/bin/upgrade-live IMAGE` runs
//! `autoinit upgrade` outside the console's unit (for the demo's user).
//!
//! v2 also adds a top-level directory (`/opt2`) and an `/etc` file (`/etc/app-v2.conf`), and has
//! a correct `v2.img.sha256` sidecar. The refused images: `not-squashfs.img` (text),
//! `truncated.img` (the first half of v2), `no-upgrade-dir.img` (v2 without `/_upgrade`),
//! `bad-sum.img` (v2 with a sidecar that does not match).
//!
//! The boot disk holds v1 as `autosvr/system.img` and every image under `upgrade/`, which the
//! running system sees as `/boot_disk/upgrade/`.

use crate::arch::Arch;
use crate::board::Board;
use crate::disk::{self, Layout};
use crate::images::{self, Image};
use crate::supervise_tests::unit_file as unit;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Part of every key: change it when a recipe below changes.
const RECIPE: &str = "autoinit-upgrade-images-3";

/// Where the running system finds the images (the boot disk's `upgrade/` directory).
pub const GUEST_DIR: &str = "/boot_disk/upgrade";
/// The port busybox httpd of `web.service` listens on.
pub const WEB_PORT: u16 = 8080;
/// The units of every image, in the order the manager restarts them (name order; `worker`
/// comes after `notifier`, which it requires).
pub const UNITS: [&str; 4] = ["console", "notifier", "web", "worker"];
/// Appended to v2's notify-daemon, so that the binary differs from v1's.
const V2_MARKER: &[u8] = b"\nautoinit upgrade-test image v2\n";

/// The images' variants.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Variant {
    V1,
    V2,
    /// v2 whose web service exits 1 at once.
    V2Bad,
    /// v2 without `/_upgrade`.
    NoUpgradeDir,
}

impl Variant {
    pub fn file(self) -> &'static str {
        match self {
            Variant::V1 => "v1.img",
            Variant::V2 => "v2.img",
            Variant::V2Bad => "v2-bad.img",
            Variant::NoUpgradeDir => "no-upgrade-dir.img",
        }
    }

    /// `/opt/app/VERSION`, the web page's text and what the worker prints.
    pub fn version(self) -> &'static str {
        match self {
            Variant::V1 => "app v1",
            Variant::V2 | Variant::NoUpgradeDir => "app v2",
            Variant::V2Bad => "app v2-bad",
        }
    }

    /// The squashfs creation time (`mksquashfs -mkfs-time`), which `status` shows.
    pub fn mkfs_time(self) -> u64 {
        match self {
            Variant::V1 => 1_767_225_600,  // 2026-01-01 00:00:00 UTC
            _ => 1_769_904_000,            // 2026-02-01 00:00:00 UTC
        }
    }

    /// The date `status` prints for it.
    pub fn mkfs_date(self) -> &'static str {
        match self {
            Variant::V1 => "2026-01-01 00:00:00 UTC",
            _ => "2026-02-01 00:00:00 UTC",
        }
    }

    fn is_v2(self) -> bool {
        self != Variant::V1
    }
}

/// The refused images, as the tests name them.
pub const NOT_SQUASHFS: &str = "not-squashfs.img";
pub const TRUNCATED: &str = "truncated.img";
pub const BAD_SUM: &str = "bad-sum.img";

/// The images of one architecture and the boot disk holding them.
pub struct Set {
    pub disk: PathBuf,
    /// SHA-256 (hex) of notify-daemon in v1 and in v2, as `sha256sum /proc/PID/exe` prints it.
    pub notify_v1_sha: String,
    pub notify_v2_sha: String,
    /// Sizes of v1.img and v2.img, as `status` prints them.
    pub v1_bytes: u64,
    pub v2_bytes: u64,
}

/// The path of an image as the running system sees it.
pub fn guest_path(file: &str) -> String {
    format!("{GUEST_DIR}/{file}")
}


/// The unit files: (file name, text). v2 stops the worker with SIGINT instead of SIGTERM: a
/// definition PID 1 holds, so the upgrade must take it from the new image.
fn units(console: &str, v: Variant) -> Vec<(String, String)> {
    let kill_signal = if v.is_v2() { "KillSignal=SIGINT" } else { "KillSignal=SIGTERM" };
    let tty = format!("TTYPath=/dev/{console}");
    vec![
        (
            "console.service".into(),
            // An interactive shell ignores SIGTERM: SIGHUP stops it.
            unit(
                "Shell on the serial console",
                &[],
                &["ExecStart=/bin/sh", "StandardInput=tty", "StandardOutput=tty", "StandardError=tty", &tty, "Restart=always", "KillSignal=SIGHUP"],
            ),
        ),
        (
            "notifier.service".into(),
            unit("sd_notify readiness after 300 ms", &[], &["Type=notify", "ExecStart=/usr/bin/notify-daemon --delay-ms 300", "Restart=on-failure"]),
        ),
        (
            "web.service".into(),
            unit("busybox httpd serving /opt/app/www", &[], &["ExecStart=/usr/bin/web-daemon", "Restart=on-failure", "RestartSec=1"]),
        ),
        (
            "worker.service".into(),
            unit(
                "Needs the notifier; says which version it runs on",
                &["After=notifier.service", "Requires=notifier.service"],
                &["ExecStart=/bin/sh -c 'echo \"worker on $(cat /opt/app/VERSION)\"; exec sleep 1000000'", "Restart=on-failure", kill_signal],
            ),
        ),
    ]
}

/// `/usr/bin/upgrade-live IMAGE [OPTIONS]`, for a person at the console (`cargo xtask demo`):
/// the console's shell is a unit, which the upgrade restarts with its whole cgroup, so the
/// client runs outside it (root cgroup, own session) and writes its answer to a file.
const UPGRADE_LIVE: &str = r#"#!/bin/sh
# upgrade-live IMAGE [--settle SECONDS]: `autoinit upgrade` outside this shell's unit, which the
# upgrade restarts; the answer goes to /run/upgrade.out (docs/upgrade.md, "The client").
[ $# -ge 1 ] || { echo "usage: upgrade-live IMAGE [--settle SECONDS]" >&2; exit 2; }
rm -f /run/upgrade.out
setsid sh -c 'echo $$ > /sys/fs/cgroup/cgroup.procs; /__autoinit__/autoinit upgrade "$@" > /run/upgrade.out 2>&1; echo "exit status $?" >> /run/upgrade.out' upgrade-live "$@" < /dev/null > /dev/null 2>&1 &
echo "upgrade-live: upgrading to $1; this shell restarts during the upgrade (press Enter when it is back), then: cat /run/upgrade.out"
"#;

fn web_daemon(v: Variant) -> String {
    if v == Variant::V2Bad {
        return "#!/bin/sh\n# The broken web service of v2-bad: it cannot start.\necho \"web-daemon: /etc/app/web.conf: No such file or directory ($(cat /opt/app/VERSION))\"\nexit 1\n".into();
    }
    format!("#!/bin/sh\n# The web service of the upgrade-test images: busybox httpd in the foreground.\nexec httpd -f -p {WEB_PORT} -h /opt/app/www\n")
}

/// Writes the tree of `v` into `tree`.
fn tree(arch: Arch, board: &Board, busybox: &Path, notify: &[u8], v: Variant, tree: &Path) -> Result<()> {
    images::image_tree(arch, busybox, if v == Variant::NoUpgradeDir { Image::NoUpgrade } else { Image::Good }, tree)?;
    let version = v.version();
    images::put(tree, "opt/autosvr/VERSION", format!("upgrade-test {version}\n").as_bytes(), 0o644)?;
    images::put(tree, "etc/motd", format!("autoinit upgrade demo: {version}\n").as_bytes(), 0o644)?;
    images::put(tree, "opt/app/VERSION", format!("{version}\n").as_bytes(), 0o644)?;
    images::put(tree, "opt/app/www/index.html", format!("{version}\n").as_bytes(), 0o644)?;
    images::put(tree, "usr/bin/web-daemon", web_daemon(v).as_bytes(), 0o755)?;
    images::put(tree, "usr/bin/upgrade-live", UPGRADE_LIVE.as_bytes(), 0o755)?;
    std::os::unix::fs::symlink("/__autoinit__/autoinit", tree.join("usr/bin/autoinit"))?;
    let mut nd = notify.to_vec();
    if v.is_v2() {
        nd.extend_from_slice(V2_MARKER);
    }
    images::put(tree, "usr/bin/notify-daemon", &nd, 0o755)?;
    for (name, text) in units(&board.console, v) {
        images::put(tree, &format!("etc/autoinit/services/{name}"), text.as_bytes(), 0o644)?;
    }
    if v.is_v2() {
        images::put(tree, "opt2/NEW", b"a top-level directory new in v2\n", 0o644)?;
        images::put(tree, "etc/app-v2.conf", b"an /etc file new in v2\n", 0o644)?;
    }
    images::dirs_0755(tree)
}

fn sha256_hex(data: &[u8]) -> Result<String> {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running sha256sum")?;
    child.stdin.take().context("sha256sum stdin")?.write_all(data)?;
    let out = child.wait_with_output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.split_whitespace().next().unwrap_or("").to_string())
}

/// Builds (or finds up to date) every image and the boot disk for `arch`.
pub fn prepare(arch: Arch, busybox: &Path) -> Result<Set> {
    let board = crate::boot_tests::board_for(arch)?;
    let dir = crate::root().join("target/images").join(arch.name()).join("upgrade");
    let files = dir.join("files");
    std::fs::create_dir_all(&files).with_context(|| format!("creating {}", files.display()))?;
    let notify_path = crate::notify_daemon::build_notify_daemon(arch)?;
    let notify = std::fs::read(&notify_path).with_context(|| format!("reading {}", notify_path.display()))?;
    let inputs = format!(
        "{RECIPE} {} busybox {:016x} notify {:016x}",
        board.name,
        images::file_hash(busybox)?,
        images::fnv(images::FNV_START, &notify)
    );
    for v in [Variant::V1, Variant::V2, Variant::V2Bad, Variant::NoUpgradeDir] {
        let out = files.join(v.file());
        images::cached(&out, &format!("{inputs} {v:?}"), |tmp| {
            let t = dir.join(format!("tree-{v:?}"));
            images::fresh_dir(&t)?;
            tree(arch, &board, busybox, &notify, v, &t)?;
            let time = v.mkfs_time().to_string();
            images::run(Command::new("mksquashfs").arg(&t).arg(tmp).args([
                "-comp", "gzip", "-all-root", "-noappend", "-mkfs-time", &time, "-all-time", &time, "-quiet", "-no-progress",
            ]))?;
            images::check_image(tmp, v != Variant::NoUpgradeDir)?;
            let listing = images::run(Command::new("unsquashfs").arg("-l").arg(tmp))?;
            for p in ["etc/autoinit/services/web.service", "usr/bin/notify-daemon", "opt/app/www/index.html"] {
                if !listing.lines().any(|l| l == format!("squashfs-root/{p}")) {
                    bail!("unsquashfs -l {}: no {p}", tmp.display());
                }
            }
            std::fs::remove_dir_all(&t)?;
            Ok(())
        })?;
    }
    let v2 = std::fs::read(files.join(Variant::V2.file()))?;
    let v2_sha = sha256_hex(&v2)?;
    std::fs::write(files.join("v2.img.sha256"), format!("{v2_sha}  v2.img\n"))?;
    // The refused ones.
    std::fs::write(files.join(NOT_SQUASHFS), "this is not a squashfs image\n".repeat(200))?;
    std::fs::write(files.join(TRUNCATED), &v2[..v2.len() / 2])?;
    std::fs::write(files.join(BAD_SUM), &v2)?;
    // Well formed, but the SHA-256 of nothing.
    std::fs::write(
        files.join(format!("{BAD_SUM}.sha256")),
        format!("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  {BAD_SUM}\n"),
    )?;
    let mut nd2 = notify.clone();
    nd2.extend_from_slice(V2_MARKER);
    let set_files: Vec<String> = {
        let mut v: Vec<String> = std::fs::read_dir(&files)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".key") && !n.ends_with(".tmp"))
            .collect();
        v.sort();
        v
    };
    let disk = boot_disk(&board, &dir, &files, &set_files)?;
    Ok(Set {
        disk,
        notify_v1_sha: sha256_hex(&notify)?,
        notify_v2_sha: sha256_hex(&nd2)?,
        v1_bytes: std::fs::metadata(files.join(Variant::V1.file()))?.len(),
        v2_bytes: v2.len() as u64,
    })
}

/// The board's boot disk with v1 as `autosvr/system.img` and `upgrade/<every file>`.
fn boot_disk(board: &Board, dir: &Path, files: &Path, names: &[String]) -> Result<PathBuf> {
    let out = dir.join("disk.img");
    let layout = Layout::from_board(&board.boot_partition, board.firmware())?;
    let mut key = format!("{RECIPE} disk {layout:?}");
    for n in names {
        key.push_str(&format!("\n{n} {:016x}", images::file_hash(&files.join(n))?));
    }
    images::cached(&out, &key, |tmp| {
        let work = dir.join("work-disk");
        let tree = dir.join("disk-tree");
        images::fresh_dir(&tree)?;
        std::fs::create_dir_all(tree.join("autosvr"))?;
        std::fs::create_dir_all(tree.join("upgrade"))?;
        std::fs::copy(files.join(Variant::V1.file()), tree.join("autosvr/system.img"))?;
        for n in names {
            std::fs::copy(files.join(n), tree.join("upgrade").join(n)).with_context(|| format!("copying {n}"))?;
        }
        images::dirs_0755(&tree)?;
        disk::write(&layout, &images::test_identity(), &tree, tmp, &work)?;
        std::fs::remove_dir_all(&tree)?;
        Ok(())
    })?;
    Ok(out)
}
