//! Overlay archives: `tar::extract`, the boot stage's only entry point into tar.rs, into an
//! in-memory root that checks every call the extractor makes.
//!
//! Invariants:
//! - no path handed to the root can leave it: every path (and hard-link target) is relative,
//!   non-empty, without `.`, `..` or empty components, shorter than `PATH_BYTES`;
//! - nothing goes through a symlink the archive made (the in-memory root starts empty, so
//!   every symlink in it is the archive's): no later entry, parent or hard-link target has
//!   one as a directory component, and `set_meta` never treats a symlink as a file;
//! - `write` only while a file is open, no `create` while one is, and no file is left open
//!   when `extract` returns (a leaked fd in PID 1);
//! - modes passed to `set_meta` are permission bits only (`& 0o7777`);
//! - on success the stats count what the root saw (files, symlinks, bytes; hard links at
//!   least as many: one to itself needs no call; each directory, file and symlink entry
//!   exactly one `set_meta` on a node of its kind, and each directory entry a `mkdir` that
//!   succeeded);
//! - an error offset lies inside the archive, on a block boundary;
//! - the result does not depend on how the source splits its reads: the same archive read
//!   in random short pieces gives the same result and the same tree.

use crate::Rng;
use autoinit::tar::{self, ErrorKind, Source, Stats, TarError, Target, BLOCK, PATH_BYTES};
use std::collections::BTreeMap;
use std::ffi::CStr;
use syscall::Errno;

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Dir,
    File(Vec<u8>),
    Symlink(Vec<u8>),
}

#[derive(Default, Debug, PartialEq)]
struct Seen {
    /// `mkdir` calls that succeeded, whether they made the directory or found it there.
    mkdirs_ok: u32,
    /// `set_meta` calls that succeeded, by the kind of node: directory, file, symlink.
    metas: [u32; 3],
    files: u32,
    symlinks: u32,
    hardlinks: u32,
    bytes: u64,
}

/// A root directory in memory, with the semantics of `*at()` calls that never follow a
/// symlink; it panics when the extractor breaks an invariant of the module documentation.
/// Mode, uid, gid and mtime, once `set_meta` gave them.
type Meta = Option<(u32, u32, u32, i64)>;

#[derive(Default, Debug, PartialEq)]
struct Root {
    map: BTreeMap<Vec<u8>, (Node, Meta)>,
    current: Option<Vec<u8>>,
    seen: Seen,
}

impl Root {
    /// The path as bytes, after checking it and every directory on the way to it.
    fn walk(&self, p: &CStr) -> Result<Vec<u8>, Errno> {
        let p = p.to_bytes();
        assert!(p.len() < PATH_BYTES, "path of {} bytes", p.len());
        assert!(
            !p.is_empty() && p.split(|&b| b == b'/').all(|c| !c.is_empty() && c != b"." && c != b".."),
            "path not normalised or escaping the root: {:?}",
            String::from_utf8_lossy(p)
        );
        for (i, _) in p.iter().enumerate().filter(|(_, b)| **b == b'/') {
            match self.map.get(&p[..i]).map(|e| &e.0) {
                Some(Node::Dir) => {}
                Some(Node::Symlink(t)) => panic!(
                    "{:?} goes through the archive's symlink {:?} -> {:?}",
                    String::from_utf8_lossy(p),
                    String::from_utf8_lossy(&p[..i]),
                    String::from_utf8_lossy(t)
                ),
                Some(Node::File(_)) => return Err(Errno::ENOTDIR),
                None => return Err(Errno::ENOENT),
            }
        }
        Ok(p.to_vec())
    }

    fn add(&mut self, p: Vec<u8>, node: Node) -> Result<(), Errno> {
        if self.map.contains_key(&p) {
            return Err(Errno::EEXIST);
        }
        self.map.insert(p, (node, None));
        Ok(())
    }
}

impl Target for Root {
    fn mkdir(&mut self, p: &CStr, _mode: u32) -> Result<(), Errno> {
        let p = self.walk(p)?;
        match self.map.get(&p).map(|e| &e.0) {
            Some(Node::Dir) => {}
            Some(_) => return Err(Errno::EEXIST),
            None => self.add(p, Node::Dir)?,
        }
        self.seen.mkdirs_ok += 1;
        Ok(())
    }

    fn create(&mut self, p: &CStr, _mode: u32) -> Result<(), Errno> {
        assert!(self.current.is_none(), "create while a file is open");
        let p = self.walk(p)?;
        self.add(p.clone(), Node::File(Vec::new()))?;
        self.current = Some(p);
        self.seen.files += 1;
        Ok(())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), Errno> {
        let cur = self.current.clone().expect("write without an open file");
        match self.map.get_mut(&cur).map(|e| &mut e.0) {
            Some(Node::File(d)) => d.extend_from_slice(data),
            other => panic!("the open file became {other:?}"),
        }
        self.seen.bytes += data.len() as u64;
        Ok(())
    }

    fn close_file(&mut self) -> Result<(), Errno> {
        self.current.take().map(|_| ()).ok_or(Errno::EBADF)
    }

    fn symlink(&mut self, target: &CStr, p: &CStr) -> Result<(), Errno> {
        assert!(!target.to_bytes().is_empty(), "empty symlink target");
        let p = self.walk(p)?;
        self.add(p, Node::Symlink(target.to_bytes().to_vec()))?;
        self.seen.symlinks += 1;
        Ok(())
    }

    fn hardlink(&mut self, existing: &CStr, p: &CStr) -> Result<(), Errno> {
        let p = self.walk(p)?;
        let e = self.walk(existing)?;
        let node = self.map.get(&e).map(|e| e.0.clone()).ok_or(Errno::ENOENT)?;
        if node == Node::Dir {
            return Err(Errno::EPERM);
        }
        // A hard link to a symlink is another symlink: later entries must not go through it.
        self.add(p, node)?;
        self.seen.hardlinks += 1;
        Ok(())
    }

    fn set_meta(&mut self, p: &CStr, mode: u32, uid: u32, gid: u32, mtime: i64, is_symlink: bool) -> Result<(), Errno> {
        assert_eq!(mode & !0o7777, 0, "mode {mode:o} has more than permission bits");
        let p = self.walk(p)?;
        let entry = self.map.get_mut(&p).ok_or(Errno::ENOENT)?;
        assert_eq!(
            matches!(entry.0, Node::Symlink(_)),
            is_symlink,
            "set_meta on {:?} (is_symlink {is_symlink}) is {:?}",
            String::from_utf8_lossy(&p),
            entry.0
        );
        entry.1 = Some((mode, uid, gid, mtime));
        let kind = match entry.0 {
            Node::Dir => 0,
            Node::File(_) => 1,
            Node::Symlink(_) => 2,
        };
        self.seen.metas[kind] += 1;
        Ok(())
    }

    fn remove(&mut self, p: &CStr) -> Result<(), Errno> {
        let p = self.walk(p)?;
        let mut child = p.clone();
        child.push(b'/');
        if self.map.range(child.clone()..).next().is_some_and(|(k, _)| k.starts_with(&child)) {
            return Err(Errno::ENOTEMPTY);
        }
        self.map.remove(&p).map(|_| ()).ok_or(Errno::ENOENT)
    }
}

/// The archive in pieces of random length (a pipe, a slow device).
struct Chunked<'a> {
    data: &'a [u8],
    rng: Rng,
}

impl Source for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        let n = self.rng.size(buf.len()).min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

fn extract<S: Source>(mut src: S, len: usize) -> (Result<Stats, TarError>, Root) {
    let mut root = Root::default();
    let r = tar::extract(&mut src, &mut root);
    assert!(root.current.is_none(), "a file is still open after extract returned ({r:?})");
    match &r {
        Ok(st) => {
            let seen = &root.seen;
            assert_eq!((st.files, st.symlinks, st.bytes), (seen.files, seen.symlinks, seen.bytes), "stats");
            // A hard link to itself is counted without a call ("nothing to do").
            assert!(st.hardlinks >= seen.hardlinks, "stats: {} hard links, {} made", st.hardlinks, seen.hardlinks);
            // `dirs` counts the archive's directory entries, not the directories made: an
            // entry for a directory that is already there (the same `etc/` twice in an
            // archive, or on a real root every overlay's `etc/`, which the image has) makes
            // nothing, as `mkdir` -p would not, yet it is a directory the archive held and
            // whose metadata it sets. (Comparing with the directories made failed on the
            // first archive that listed one twice, fuzz/regressions/tar/crash-7e8386af...)
            // Each entry ends in one successful `set_meta` on a node of its kind, and a
            // directory entry's in a `mkdir` that succeeded first.
            assert_eq!(seen.metas, [st.dirs, st.files, st.symlinks], "stats: set_meta calls by kind (dir, file, symlink)");
            assert!(st.dirs <= seen.mkdirs_ok, "stats: {} dirs, {} successful mkdir calls", st.dirs, seen.mkdirs_ok);
        }
        Err(e) => {
            if !matches!(e.kind, ErrorKind::Read(_)) {
                assert_eq!(e.offset % BLOCK as u64, 0, "{e:?} not on a block boundary");
            }
            assert!(e.offset <= len as u64, "{e:?} beyond the archive's {len} bytes");
            assert!(!e.kind.describe().is_empty());
        }
    }
    (r, root)
}

pub fn check(data: &[u8]) {
    let (whole, root) = extract(data, data.len());
    let (pieces, root2) = extract(Chunked { data, rng: Rng::new(data.len() as u64) }, data.len());
    assert_eq!(whole, pieces, "the result depends on how the archive is read");
    assert_eq!(root.map, root2.map, "the tree depends on how the archive is read");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, kind: u8, link: &str, size: usize) -> Vec<u8> {
        let mut h = vec![0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        h
    }

    #[test]
    fn a_small_archive_passes() {
        let mut a = header("etc/", b'5', "", 0);
        a.extend(header("etc/motd", b'0', "", 3));
        a.extend(b"hi\n".iter().copied().chain(std::iter::repeat_n(0, BLOCK - 3)));
        a.extend(header("lib", b'2', "usr/lib", 0));
        a.extend(vec![0u8; 2 * BLOCK]);
        check(&a);
        let (r, root) = extract(&a[..], a.len());
        assert_eq!(r.unwrap().files, 1);
        assert_eq!(root.map.get(&b"etc/motd"[..]).unwrap().0, Node::File(b"hi\n".to_vec()));
    }

    #[test]
    fn a_directory_listed_twice_counts_twice() {
        let mut a = header("etc/", b'5', "", 0);
        a.extend(header("etc/motd", b'0', "", 0));
        a.extend(header("etc/", b'5', "", 0));
        a.extend(vec![0u8; 2 * BLOCK]);
        check(&a);
        let (r, root) = extract(&a[..], a.len());
        assert_eq!(r.unwrap().dirs, 2);
        assert_eq!(root.seen.metas, [2, 1, 0]);
    }

    #[test]
    #[should_panic(expected = "goes through the archive's symlink")]
    fn the_root_catches_a_path_through_a_symlink() {
        let mut root = Root::default();
        root.symlink(c"/etc", c"a").unwrap();
        let _ = root.create(c"a/passwd", 0o644);
    }

    #[test]
    #[should_panic(expected = "escaping the root")]
    fn the_root_catches_dot_dot() {
        let _ = Root::default().mkdir(c"a/../../b", 0o755);
    }
}

#[cfg(test)]
mod seeds {
    /// GNU tar's archives extract without error, so the fuzzer starts from accepted input.
    #[test]
    fn seeds_extract() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/tar");
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let data = std::fs::read(&p).unwrap();
            let (r, root) = super::extract(&data[..], data.len());
            let st = r.unwrap_or_else(|e| panic!("{}: {e:?}", p.display()));
            assert!(st.files > 0 && !root.map.is_empty(), "{}", p.display());
        }
    }
}
