//! Containers, the pure part: the syntax of `BindPaths=`, `BindReadOnlyPaths=`,
//! `TemporaryFileSystem=`, `Hostname=` and `PrivateUsers=`, the uid/gid map text, the
//! container's `/dev` table and the namespaces a unit asks for. No syscalls: host-tested.
//! The runtime that applies all this is `container.rs`.

use crate::unit::{PrivatePids, Unit};

/// Bind mounts and tmpfs mounts applied to one container, all keys together.
pub const MAX_CONTAINER_MOUNTS: usize = 16;
/// Longest `Hostname=` (the kernel's `__NEW_UTS_LEN`).
pub const HOSTNAME_BYTES: usize = 64;
/// `PrivateUsers=yes`: root inside is this uid (and gid) outside ...
pub const USERNS_FIRST_ID: u32 = 100_000;
/// ... and the container has this many ids, 0..65535 inside.
pub const USERNS_ID_COUNT: u32 = 65_536;
/// Where a container's root is assembled, in the container's own mount namespace (each
/// container mounts its own tmpfs on it; the host never sees them).
pub const ROOT_MOUNT_POINT: &str = "/run/autoinit/root";

/// The host ids a user namespace maps to: `first..first+count` outside is `0..count` inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub first: u32,
    pub count: u32,
}

/// The documented default range of `PrivateUsers=yes`.
pub const DEFAULT_ID_RANGE: IdRange = IdRange { first: USERNS_FIRST_ID, count: USERNS_ID_COUNT };

/// `PrivateUsers=`: a boolean (`yes` maps [`DEFAULT_ID_RANGE`]) or `FIRST:COUNT`.
pub fn private_users(v: &str) -> Result<Option<IdRange>, &'static str> {
    const WHY: &str = "expected yes, no or FIRST:COUNT (host ids FIRST.. as 0.. inside, FIRST >= 1)";
    match v {
        "" | "0" | "no" | "n" | "false" | "f" | "off" => return Ok(None),
        "1" | "yes" | "y" | "true" | "t" | "on" => return Ok(Some(DEFAULT_ID_RANGE)),
        _ => {}
    }
    let (a, b) = v.split_once(':').ok_or(WHY)?;
    let first = crate::text::parse_u64(a.as_bytes()).ok_or(WHY)?;
    let count = crate::text::parse_u64(b.as_bytes()).ok_or(WHY)?;
    // Host root must never be inside the range, and the range must fit in 32-bit ids.
    if first == 0 || count == 0 || first.checked_add(count).is_none_or(|end| end > u64::from(u32::MAX)) {
        return Err(WHY);
    }
    Ok(Some(IdRange { first: first as u32, count: count as u32 }))
}

/// The text written to `/proc/PID/uid_map` and `gid_map`: `0 FIRST COUNT\n`.
pub fn id_map_text(r: IdRange, buf: &mut [u8; 40]) -> &[u8] {
    let mut line = crate::log::Line::new();
    line.push(b"0 ");
    crate::log::Piece::put(&r.first, &mut line);
    line.push(b" ");
    crate::log::Piece::put(&r.count, &mut line);
    line.push(b"\n");
    let b = line.as_bytes();
    let n = b.len().min(buf.len());
    if let (Some(d), Some(s)) = (buf.get_mut(..n), b.get(..n)) {
        d.copy_from_slice(s);
    }
    buf.get(..n).unwrap_or(&[])
}

/// `Hostname=`: 1..64 bytes of letters, digits, `-` and `.`, as RFC 1123 host names.
pub fn hostname(v: &str) -> Result<&str, &'static str> {
    let ok = !v.is_empty()
        && v.len() <= HOSTNAME_BYTES
        && !v.starts_with(['-', '.'])
        && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
    if ok { Ok(v) } else { Err("expected a host name: 1..64 letters, digits, '-' or '.'") }
}

/// One bind mount of `BindPaths=` / `BindReadOnlyPaths=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bind<'a> {
    /// On the host.
    pub source: &'a str,
    /// In the container (under its root); the source's path when not given.
    pub dest: &'a str,
    /// `-` prefix: a missing source is skipped.
    pub ignore_missing: bool,
    /// `rbind` (the default) or `norbind`.
    pub recursive: bool,
    pub read_only: bool,
}

/// A clean absolute path: starts with `/`, no `.` or `..` component (a destination must stay
/// under the container's root), no NUL.
fn clean_absolute(p: &str) -> bool {
    p.starts_with('/') && !p.bytes().any(|b| b == 0) && p.split('/').all(|c| c != ".." && c != ".")
}

/// Calls `f` with each entry of a `BindPaths=` value: space-separated
/// `[-]SOURCE[:DEST[:rbind|norbind]]`, as systemd.exec(5).
pub fn binds<'a>(value: &'a str, read_only: bool, mut f: impl FnMut(Bind<'a>) -> Result<(), &'static str>) -> Result<(), &'static str> {
    for word in value.split_ascii_whitespace() {
        let (word, ignore_missing) = match word.strip_prefix('-') {
            Some(w) => (w, true),
            None => (word, false),
        };
        let mut parts = word.splitn(3, ':');
        let source = parts.next().unwrap_or("");
        let dest = parts.next().filter(|d| !d.is_empty()).unwrap_or(source);
        let recursive = match parts.next() {
            None | Some("") | Some("rbind") => true,
            Some("norbind") => false,
            Some(_) => return Err("expected rbind or norbind after the second ':'"),
        };
        if !clean_absolute(source) || !clean_absolute(dest) {
            return Err("expected absolute paths without '.' or '..' components: [-]SOURCE[:DEST[:rbind|norbind]]");
        }
        f(Bind { source, dest, ignore_missing, recursive, read_only })?;
    }
    Ok(())
}

/// One mount of `TemporaryFileSystem=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tmpfs<'a> {
    pub path: &'a str,
    /// `ro` among the options.
    pub read_only: bool,
    /// The options as written (comma-separated), `ro`/`rw` included; see [`tmpfs_data`].
    pub options: &'a str,
}

/// Calls `f` with each entry of a `TemporaryFileSystem=` value: space-separated
/// `PATH[:OPTIONS]`.
pub fn tmpfs_list<'a>(value: &'a str, mut f: impl FnMut(Tmpfs<'a>) -> Result<(), &'static str>) -> Result<(), &'static str> {
    for word in value.split_ascii_whitespace() {
        let (path, options) = word.split_once(':').unwrap_or((word, ""));
        if !clean_absolute(path) {
            return Err("expected an absolute path without '.' or '..' components: PATH[:OPTIONS]");
        }
        let mut read_only = false;
        for o in options.split(',') {
            match o {
                "ro" => read_only = true,
                "rw" => read_only = false,
                "" => {}
                o if o.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'%' | b'.')) => {}
                _ => return Err("unexpected character in the tmpfs options"),
            }
        }
        f(Tmpfs { path, read_only, options })?;
    }
    Ok(())
}

/// The data argument of mount(2) for a `TemporaryFileSystem=` entry: its options without
/// `ro`/`rw` (mount flags, not tmpfs options), `mode=0755` first as systemd's default.
pub fn tmpfs_data<'b>(options: &str, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let mut n = 0usize;
    let mut put = |b: &[u8], n: &mut usize| -> Option<()> {
        let end = n.checked_add(b.len())?;
        buf.get_mut(*n..end)?.copy_from_slice(b);
        *n = end;
        Some(())
    };
    put(b"mode=0755", &mut n)?;
    for o in options.split(',').filter(|o| !matches!(*o, "" | "ro" | "rw")) {
        put(b",", &mut n)?;
        put(o.as_bytes(), &mut n)?;
    }
    buf.get(..n)
}

/// A character device of the container's `/dev`: name, major, minor.
pub struct DevNode {
    pub name: &'static str,
    pub major: u32,
    pub minor: u32,
}

/// The device nodes made in every container's `/dev` (mode 0666), as docker and
/// systemd-nspawn do; nothing else of the host's devices is reachable.
pub const DEV_NODES: [DevNode; 6] = [
    DevNode { name: "null", major: 1, minor: 3 },
    DevNode { name: "zero", major: 1, minor: 5 },
    DevNode { name: "full", major: 1, minor: 7 },
    DevNode { name: "random", major: 1, minor: 8 },
    DevNode { name: "urandom", major: 1, minor: 9 },
    DevNode { name: "tty", major: 5, minor: 0 },
];

/// Symlinks of the container's `/dev`: name, target.
pub const DEV_LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    // The devpts instance of the container (mounted with newinstance) has its own ptmx.
    ("ptmx", "pts/ptmx"),
];

/// Whether a unit asks for any container feature (it then needs the container setup).
pub fn wanted(u: &Unit<'_>) -> bool {
    has_root(u)
        || u.private_mounts
        || u.private_pids != PrivatePids::No
        || u.private_network
        || u.private_users.is_some()
        || u.private_ipc
        || u.hostname.is_some()
        || !u.bind_paths.is_empty()
        || !u.bind_read_only_paths.is_empty()
        || !u.temporary_file_system.is_empty()
}

pub fn has_root(u: &Unit<'_>) -> bool {
    u.root_image.is_some() || u.root_directory.is_some()
}

/// The namespaces the main process is cloned into by PID 1 (a fork with these flags): only
/// the pid namespace, so that the child is PID 1 of it. Everything else is unshared by the
/// child after it has joined the unit's cgroup.
pub fn clone_flags(u: &Unit<'_>) -> u64 {
    if u.private_pids != PrivatePids::No { linux_raw_sys::general::CLONE_NEWPID as u64 } else { 0 }
}

/// Which namespaces the child unshares (`CLONE_NEW*` bits), given whether cgroups are in use.
/// A root, binds, tmpfs or a private /proc need a mount namespace; a root also gets a cgroup
/// namespace (the unit's cgroup is its `/sys/fs/cgroup`) when cgroups are in use.
pub fn unshare_flags(u: &Unit<'_>, cgroups: bool) -> u32 {
    use linux_raw_sys::general as g;
    let mut f = 0u32;
    if wanted(u) && (has_root(u) || u.private_mounts || u.private_pids != PrivatePids::No
        || !u.bind_paths.is_empty() || !u.bind_read_only_paths.is_empty() || !u.temporary_file_system.is_empty())
    {
        f |= g::CLONE_NEWNS;
    }
    if has_root(u) && cgroups {
        f |= g::CLONE_NEWCGROUP;
    }
    if u.private_network {
        f |= g::CLONE_NEWNET;
    }
    if u.private_ipc {
        f |= g::CLONE_NEWIPC;
    }
    if u.hostname.is_some() {
        f |= g::CLONE_NEWUTS;
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use linux_raw_sys::general as g;

    fn all_binds(v: &str, ro: bool) -> Result<std::vec::Vec<Bind<'_>>, &'static str> {
        let mut out = std::vec::Vec::new();
        binds(v, ro, |b| {
            out.push(b);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn bind_paths_follow_systemd_syntax() {
        let b = all_binds("/data -/opt/x:/srv/x /a:/b:norbind /c::rbind", false).unwrap();
        assert_eq!(b.len(), 4);
        assert_eq!(b[0], Bind { source: "/data", dest: "/data", ignore_missing: false, recursive: true, read_only: false });
        assert_eq!(b[1], Bind { source: "/opt/x", dest: "/srv/x", ignore_missing: true, recursive: true, read_only: false });
        assert_eq!((b[2].dest, b[2].recursive), ("/b", false));
        assert_eq!((b[3].dest, b[3].recursive), ("/c", true));
        assert!(all_binds("/x", true).unwrap()[0].read_only);
        assert!(all_binds("", false).unwrap().is_empty());
    }

    #[test]
    fn bind_paths_reject_relative_and_escaping_paths() {
        for bad in ["data", "/a:b", "/a:/b:bogus", "/a:/../etc", "/a/../b", "/a:/b/.", "-rel"] {
            assert!(all_binds(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn tmpfs_entries_and_their_mount_data() {
        let mut got = std::vec::Vec::new();
        tmpfs_list("/var:ro,size=1M /srv", |t| {
            got.push(t);
            Ok(())
        })
        .unwrap();
        assert_eq!(got.len(), 2);
        assert!(got[0].read_only && got[0].path == "/var");
        assert!(!got[1].read_only && got[1].options.is_empty());
        let mut buf = [0u8; 64];
        assert_eq!(tmpfs_data("ro,size=1M", &mut buf).unwrap(), b"mode=0755,size=1M");
        assert_eq!(tmpfs_data("", &mut buf).unwrap(), b"mode=0755");
        // A later mode= wins in the kernel's parser: the user's choice overrides the default.
        assert_eq!(tmpfs_data("mode=1777", &mut buf).unwrap(), b"mode=0755,mode=1777");
        let mut small = [0u8; 12];
        assert_eq!(tmpfs_data("size=100M", &mut small), None);
        assert!(tmpfs_list("tmp", |_| Ok(())).is_err());
        assert!(tmpfs_list("/tmp:size=1M;rm", |_| Ok(())).is_err());
    }

    #[test]
    fn private_users_values() {
        assert_eq!(private_users("yes"), Ok(Some(IdRange { first: 100_000, count: 65_536 })));
        assert_eq!(private_users("no"), Ok(None));
        assert_eq!(private_users(""), Ok(None));
        assert_eq!(private_users("200000:1000"), Ok(Some(IdRange { first: 200_000, count: 1000 })));
        for bad in ["0:65536", "1:0", "x:1", "4294967295:2", "self", "100000"] {
            assert!(private_users(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn id_map_line() {
        let mut buf = [0u8; 40];
        assert_eq!(id_map_text(DEFAULT_ID_RANGE, &mut buf), b"0 100000 65536\n");
    }

    #[test]
    fn hostnames() {
        assert_eq!(hostname("box-1.lan"), Ok("box-1.lan"));
        for bad in ["", "-x", "a b", "a_b", &"h".repeat(65)] {
            assert!(hostname(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dev_table() {
        let null = DEV_NODES.iter().find(|d| d.name == "null").unwrap();
        assert_eq!((null.major, null.minor), (1, 3));
        assert!(DEV_LINKS.contains(&("ptmx", "pts/ptmx")));
        let names: std::vec::Vec<&str> = DEV_NODES.iter().map(|d| d.name).collect();
        assert_eq!(names, ["null", "zero", "full", "random", "urandom", "tty"]);
    }

    fn unit(text: &str) -> Unit<'static> {
        let buf: &'static mut [u8] = std::boxed::Box::leak(text.as_bytes().to_vec().into_boxed_slice());
        crate::unit::parse(buf).unit.unwrap()
    }

    #[test]
    fn namespaces_of_a_unit() {
        let plain = unit("[Service]\nExecStart=/bin/true\n");
        assert!(!wanted(&plain));
        assert_eq!((clone_flags(&plain), unshare_flags(&plain, true)), (0, 0));
        let c = unit("[Service]\nExecStart=/bin/sh\nRootImage=/c.img\nPrivatePIDs=yes\nPrivateNetwork=yes\nHostname=box\n");
        assert!(wanted(&c));
        assert_eq!(clone_flags(&c), g::CLONE_NEWPID as u64);
        assert_eq!(unshare_flags(&c, true), g::CLONE_NEWNS | g::CLONE_NEWCGROUP | g::CLONE_NEWNET | g::CLONE_NEWUTS);
        assert_eq!(unshare_flags(&c, false), g::CLONE_NEWNS | g::CLONE_NEWNET | g::CLONE_NEWUTS);
        let net = unit("[Service]\nExecStart=/bin/sh\nPrivateNetwork=yes\nPrivateIPC=yes\n");
        assert_eq!(unshare_flags(&net, true), g::CLONE_NEWNET | g::CLONE_NEWIPC);
        let pids = unit("[Service]\nExecStart=/bin/sh\nPrivatePIDs=init\n");
        assert_eq!(unshare_flags(&pids, true), g::CLONE_NEWNS);
        assert_eq!(clone_flags(&pids), g::CLONE_NEWPID as u64);
    }
}
