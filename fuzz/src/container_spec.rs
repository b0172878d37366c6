//! Container keys (container_spec.rs), checked when a unit is loaded and applied by
//! container.rs: `binds` (BindPaths=, BindReadOnlyPaths=), `tmpfs_list` and `tmpfs_data`
//! (TemporaryFileSystem=, into container.rs's 256-byte buffer), `private_users` with
//! `id_map_text`, `hostname`. Input (UTF-8 prefix): the four values separated by `\x01`.
//!
//! Invariants: every path is absolute, NUL-free and has no `.` or `..` component, so that a
//! destination joined to the container's root never leaves it; fields are taken from the
//! value; a value is refused only when one of its words is wrong, and what is accepted
//! prints back to a value that gives the same mounts; tmpfs data starts with `mode=0755`,
//! has no `ro`/`rw` and fits the buffer or is refused; a user range never maps host root
//! and fits 32-bit ids, and its map text says exactly it; a host name is 1..64 bytes of
//! letters, digits, `-` and `.`, not starting with `-` or `.`.

use crate::{borrowed_from, utf8_prefix};
use autoinit::container_spec::{self as spec, Bind, HOSTNAME_BYTES, Tmpfs};

fn clean_absolute(p: &str) -> bool {
    p.starts_with('/') && !p.contains('\0') && p.split('/').all(|c| c != "." && c != "..")
}

/// `root` joined with `dest`, normalised as the kernel resolves it (no symlinks), stays in it.
/// Whether `root` + `dest`, with `.` and `..` resolved, is `root` or under it. Component by
/// component, without building the joined paths (that was a sixth of the time).
fn stays_under(root: &str, dest: &str) -> bool {
    let path = [root, dest].concat();
    let mut parts: Vec<&str> = Vec::with_capacity(16);
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    // `root` is clean (no `.` or `..`, a test checks): the resolved path is under it if it
    // starts with all of its components.
    let mut it = parts.iter();
    root.split('/').filter(|c| !c.is_empty()).all(|r| it.next() == Some(&r))
}

fn check_binds(value: &str, ro: bool) {
    let mut got: Vec<Bind<'_>> = Vec::new();
    let r = spec::binds(value, ro, |b| {
        got.push(b);
        Ok(())
    });
    for b in &got {
        assert!(clean_absolute(b.source) && clean_absolute(b.dest), "{b:?}");
        assert!(borrowed_from(b.source, value) && borrowed_from(b.dest, value));
        assert!(stays_under(spec::ROOT_MOUNT_POINT, b.dest), "{} escapes the root", b.dest);
        assert_eq!(b.read_only, ro);
    }
    // A reference: which word is wrong, if any.
    let bad = value.split_ascii_whitespace().position(|w| {
        let w = w.strip_prefix('-').unwrap_or(w);
        let mut p = w.splitn(3, ':');
        let src = p.next().unwrap_or("");
        let dst = p.next().filter(|d| !d.is_empty()).unwrap_or(src);
        let opt_ok = matches!(p.next(), None | Some("" | "rbind" | "norbind"));
        !(opt_ok && clean_absolute(src) && clean_absolute(dst))
    });
    match bad {
        Some(i) => {
            assert!(r.is_err(), "word {i} of {value:?} is wrong but accepted");
            assert_eq!(got.len(), i, "mounts before the wrong word");
        }
        None => {
            assert_eq!(r, Ok(()), "{value:?} refused");
            let printed: Vec<String> = got
                .iter()
                .map(|b| format!("{}{}:{}:{}", if b.ignore_missing { "-" } else { "" }, b.source, b.dest, if b.recursive { "rbind" } else { "norbind" }))
                .collect();
            let printed = printed.join(" ");
            let mut again = Vec::new();
            spec::binds(&printed, ro, |b| {
                again.push(b);
                Ok(())
            })
            .expect("printed binds parse");
            assert_eq!(again, got, "parse-print-parse {printed:?}");
        }
    }
}

fn check_tmpfs(value: &str) {
    let mut got: Vec<Tmpfs<'_>> = Vec::new();
    let r = spec::tmpfs_list(value, |t| {
        got.push(t);
        Ok(())
    });
    if r.is_ok() {
        assert_eq!(got.len(), value.split_ascii_whitespace().count());
    }
    for t in &got {
        assert!(clean_absolute(t.path) && borrowed_from(t.path, value), "{t:?}");
        assert!(stays_under(spec::ROOT_MOUNT_POINT, t.path));
        let last = t.options.split(',').rfind(|o| *o == "ro" || *o == "rw");
        assert_eq!(t.read_only, last == Some("ro"), "{t:?}");
        let mut buf = [0u8; 256];
        let want: Vec<&str> = std::iter::once("mode=0755").chain(t.options.split(',').filter(|o| !matches!(*o, "" | "ro" | "rw"))).collect();
        let want = want.join(",");
        match spec::tmpfs_data(t.options, &mut buf) {
            Some(d) => assert_eq!(d, want.as_bytes()),
            None => assert!(want.len() > buf.len(), "{want:?} fits but is refused"),
        }
    }
}

pub fn check(data: &[u8]) {
    let text = utf8_prefix(data);
    let mut parts = text.split('\x01');
    let (binds, tmpfs, users, host) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    check_binds(binds, false);
    check_binds(binds, true);
    check_tmpfs(tmpfs);
    check_tmpfs(binds);

    for v in [users, host, binds] {
        if let Ok(Some(r)) = spec::private_users(v) {
            assert!(r.first >= 1 && r.count >= 1, "{v:?}: {r:?}");
            assert!(u64::from(r.first) + u64::from(r.count) <= u64::from(u32::MAX), "{v:?}: {r:?}");
            let mut buf = [0u8; 40];
            let t = spec::id_map_text(r, &mut buf);
            assert_eq!(t, format!("0 {} {}\n", r.first, r.count).as_bytes());
        }
        if let Ok(h) = spec::hostname(v) {
            assert!(!h.is_empty() && h.len() <= HOSTNAME_BYTES && !h.starts_with(['-', '.']));
            assert!(h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
        }
    }
}

#[cfg(test)]
mod tests {
    /// `stays_under` as it was: joins the resolved path and compares text.
    fn stays_under_by_text(root: &str, dest: &str) -> bool {
        let mut parts: Vec<&str> = Vec::new();
        let path = format!("{root}{dest}");
        for c in path.split('/') {
            match c {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                c => parts.push(c),
            }
        }
        let joined = format!("/{}", parts.join("/"));
        joined == root || joined.starts_with(&format!("{root}/"))
    }

    #[test]
    fn stays_under_agrees_with_the_text_comparison() {
        let root = autoinit::container_spec::ROOT_MOUNT_POINT;
        assert!(super::clean_absolute(root) && !root.ends_with('/'));
        for d in ["/", "", "/a", "/..", "/../root/x", "/../rootx", "/../../run/autoinit/root/a", "/a/../..", "/./a/.", "//a//b/", "/a/../../root", "/../../../../..", "x", "x/../../root/y"] {
            assert_eq!(super::stays_under(root, d), stays_under_by_text(root, d), "{d:?}");
        }
    }

    #[test]
    fn samples() {
        for s in [
            "/srv/data:/data -/opt/missing:/opt:norbind /etc/resolv.conf\x01/tmp:mode=1777,size=10% /run:ro\x01yes\x01web-1",
            "/a/../b\x01/tmp/./x\x010:5\x01-x",
            "/a:/b:bogus\x01/t:ro,rw\x01100000:65536\x01a.b",
            "/x::rbind\x01/y:size=1%,nr_inodes=10\x014294901760:65535\x01",
        ] {
            super::check(s.as_bytes());
        }
    }
}
