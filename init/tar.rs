//! Tar extraction for the boot stage's overlays: a streaming reader of ustar, pax and GNU
//! archives that writes through a [`Target`] and refuses anything that could leave the root.
//!
//! Pure code (no syscalls, no allocation), unit-tested on the host against GNU tar. The caller
//! implements [`Source`] (the archive) and [`Target`] (the new root); [`extract`] reads one
//! archive from start to end-of-archive and stops at the first problem.
//!
//! # What is read
//! - Headers with the POSIX (`ustar\0`) or GNU (`ustar  \0`) magic; anything else is refused
//!   ([`ErrorKind::NotUstar`]), so pre-POSIX v7 archives are not read. The checksum is
//!   verified, as an unsigned or a signed byte sum. Numeric fields are octal or GNU base-256.
//! - The POSIX `prefix` field (only with the POSIX magic: GNU headers keep times there).
//! - pax extended headers (`x`): `path`, `linkpath`, `size`, `uid`, `gid`, `mtime` (fraction
//!   ignored); an empty value restores the header's field; other keys (atime, xattrs, ...)
//!   are ignored, except `GNU.sparse.*`, which is refused. Global pax headers (`g`) may set
//!   `uid`, `gid` and `mtime` for every later entry; `path`, `linkpath` or `size` there are
//!   refused. GNU long names (`L`) and long link targets (`K`). The last such header before
//!   an entry wins.
//! - Entry types: regular files (`0`, NUL, `7`), hard links (`1`), symlinks (`2`),
//!   directories (`5`). Device nodes and FIFOs (`3`, `4`, `6`), GNU sparse files (`S`) and
//!   every other type are refused. Directories and links must have a size of 0.
//! - The end: two zero blocks. One zero block followed by the end of the file is accepted;
//!   a zero block followed by anything else, or an archive without zero blocks, is refused.
//!
//! # Paths
//! Paths given to the [`Target`] are relative to the new root: a leading '/', `.`
//! components, repeated and trailing slashes are dropped (`/./a//b/` is `a/b`). A `..`
//! component, an empty path, a NUL byte or more than [`PATH_BYTES`]` - 1` bytes is refused.
//! A directory entry naming the root itself (`./`, which `tar -C dir .` writes first) is
//! skipped: an overlay does not change the root's mode or owner.
//!
//! A symlink may point anywhere: its target is stored as is, and is resolved inside the new
//! root once it is the root. But no entry (or hard link target) may go *through* a symlink
//! made earlier by the same archive (`a -> /etc`, then `a/passwd`): [`MAX_SYMLINKS`] of them
//! are remembered, and an archive with more is refused. Symlinks that were in the root
//! before (from the image or an earlier overlay) are the [`Target`]'s business: resolve
//! paths with `openat2(RESOLVE_IN_ROOT)` or from inside a chroot so that they stay inside.
//!
//! # Errors and offsets
//! The first problem stops the extraction with a [`TarError`]: what is wrong and the byte
//! offset in the archive (always a multiple of 512 except for [`ErrorKind::Read`]):
//! - a problem in one header block (checksum, magic, a numeric field, a truncated header, a
//!   lone zero block) names that block;
//! - a problem in a pax or GNU long-name header's data names that header;
//! - anything else about an entry (its path, type, link target, truncated data, a failed
//!   [`Target`] call) names the entry's own header, the one after its pax or long-name
//!   headers: the block `tar -tvR` shows as `block N` (offset N × 512);
//! - [`ErrorKind::Read`] names the offset of the read that failed.
//!
//! Entries written before the error stay written; the caller decides what to do with them.
//!
//! # Capacities
//! [`PATH_BYTES`] per path, [`MAX_SYMLINKS`] symlinks in [`SYMLINK_POOL_BYTES`] of paths;
//! [`extract`] uses about 20 KiB of stack.

use core::ffi::CStr;
use syscall::Errno;

/// Tar works in 512-byte blocks.
pub const BLOCK: usize = 512;
/// Longest path or link target plus its NUL: up to 1023 bytes of path.
pub const PATH_BYTES: usize = 1024;
/// How many symlinks made by one archive are remembered (see the module documentation).
pub const MAX_SYMLINKS: usize = 64;
/// Room for the paths of those symlinks.
pub const SYMLINK_POOL_BYTES: usize = 8192;
/// File data moves in pieces of this size: one `read` and one `write` each.
const CHUNK: usize = 4096;

/// The archive. `read` fills the front of `buf` and returns how much it filled: fewer bytes
/// than asked is fine, 0 means the end.
pub trait Source {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno>;
}

/// An archive in memory.
impl Source for &[u8] {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
        let n = buf.len().min(self.len());
        let (head, rest) = self.split_at_checked(n).unwrap_or((&[], &[]));
        for (slot, &b) in buf.iter_mut().zip(head) {
            *slot = b;
        }
        *self = rest;
        Ok(head.len())
    }
}

/// The new root, written to by [`extract`]. Every path is relative to the root, normalised
/// and checked (see the module documentation). The extractor relies on two error numbers:
/// `EEXIST` (something is in the way: it calls [`Target::remove`] and tries again once) and
/// `ENOENT` (a parent directory is missing: it makes each parent with `mkdir(.., 0o755)` and
/// tries again once). Any other error stops the extraction.
pub trait Target {
    /// `mkdirat`. A directory already at `path` is success (following a final symlink, so
    /// that `lib -> usr/lib` in the image survives an overlay with a `lib/` entry);
    /// anything else there is `EEXIST`.
    fn mkdir(&mut self, path: &CStr, mode: u32) -> Result<(), Errno>;
    /// Creates a regular file that must not exist (`O_CREAT | O_EXCL | O_NOFOLLOW`, so
    /// `EEXIST` for anything at `path`, a symlink included) and makes it the current file.
    fn create(&mut self, path: &CStr, mode: u32) -> Result<(), Errno>;
    /// Appends to the current file.
    fn write(&mut self, data: &[u8]) -> Result<(), Errno>;
    /// Closes the current file. Also called, its result ignored, when the extraction stops
    /// while a file is open.
    fn close_file(&mut self) -> Result<(), Errno>;
    /// `symlinkat(target, root, path)`.
    fn symlink(&mut self, target: &CStr, path: &CStr) -> Result<(), Errno>;
    /// `linkat` without `AT_SYMLINK_FOLLOW`: a hard link to a symlink is another symlink.
    fn hardlink(&mut self, existing: &CStr, path: &CStr) -> Result<(), Errno>;
    /// Sets owner, then mode (chown clears setuid), then mtime (seconds since the epoch),
    /// once the entry is complete. `mode` has the permission, setuid, setgid and sticky bits
    /// (`& 0o7777`). For a symlink (`is_symlink`), owner and time go on the link itself and
    /// the mode is skipped: Linux has none for symlinks. Not called for hard links, which
    /// share their target's inode.
    fn set_meta(&mut self, path: &CStr, mode: u32, uid: u32, gid: u32, mtime: i64, is_symlink: bool) -> Result<(), Errno>;
    /// Removes what is at `path` (`unlinkat`, or `AT_REMOVEDIR` for an empty directory).
    /// Called when something is in the way, and before an entry replaces a symlink that this
    /// archive made.
    fn remove(&mut self, path: &CStr) -> Result<(), Errno>;
}

/// What an archive held. Directories made only because an entry needed them are not counted;
/// neither is the root's own `./` entry.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct Stats {
    pub files: u32,
    pub dirs: u32,
    pub symlinks: u32,
    pub hardlinks: u32,
    /// Bytes of regular-file data.
    pub bytes: u64,
}

/// Why an archive was refused, at which byte offset (see the module documentation).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct TarError {
    pub offset: u64,
    pub kind: ErrorKind,
}

/// A header field holding a number.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Field {
    Mode,
    Uid,
    Gid,
    Size,
    Mtime,
    Checksum,
}

/// The [`Target`] call that failed.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Op {
    Mkdir,
    MkdirParent,
    Create,
    Write,
    Close,
    Symlink,
    Hardlink,
    SetMeta,
    Remove,
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum ErrorKind {
    /// The [`Source`] failed.
    Read(Errno),
    /// The archive ends inside a header or an entry's data.
    Truncated,
    /// The archive ends without a zero block.
    MissingEnd,
    /// A zero block followed by more than zeros.
    LoneZeroBlock,
    BadChecksum,
    NotUstar,
    /// A numeric field that is neither octal nor base-256, or out of range.
    BadField(Field),
    /// A size that does not fit in 64 bits once rounded up to blocks.
    SizeTooLarge,
    /// A pax record whose length is wrong or that lacks its '=' or final newline.
    BadPaxRecord,
    /// A pax `size`, `uid`, `gid` or `mtime` that is not a number in range.
    BadPaxValue,
    /// A global pax header that sets `path`, `linkpath` or `size`.
    GlobalPath,
    /// A pax or GNU long-name header with no entry after it.
    ExtendedHeaderAtEnd,
    NameTooLong,
    HasNul,
    EmptyPath,
    PathEscapes,
    LinkEscapes,
    EmptyLinkTarget,
    ThroughSymlink,
    DeviceNode,
    Sparse,
    UnknownType(u8),
    UnexpectedData,
    TooManySymlinks,
    /// A [`Target`] call failed.
    Target(Op, Errno),
}

impl ErrorKind {
    pub fn describe(&self) -> &'static str {
        match self {
            ErrorKind::Read(_) => "cannot read the archive",
            ErrorKind::Truncated => "the archive is truncated",
            ErrorKind::MissingEnd => "the archive ends without its end-of-archive blocks",
            ErrorKind::LoneZeroBlock => "a zero block in the middle of the archive",
            ErrorKind::BadChecksum => "header checksum mismatch",
            ErrorKind::NotUstar => "not a ustar, pax or GNU tar header",
            ErrorKind::BadField(Field::Mode) => "bad mode field",
            ErrorKind::BadField(Field::Uid) => "bad uid field",
            ErrorKind::BadField(Field::Gid) => "bad gid field",
            ErrorKind::BadField(Field::Size) => "bad size field",
            ErrorKind::BadField(Field::Mtime) => "bad mtime field",
            ErrorKind::BadField(Field::Checksum) => "bad checksum field",
            ErrorKind::SizeTooLarge => "size too large",
            ErrorKind::BadPaxRecord => "malformed pax record",
            ErrorKind::BadPaxValue => "bad pax size, uid, gid or mtime",
            ErrorKind::GlobalPath => "a global pax header sets path, linkpath or size",
            ErrorKind::ExtendedHeaderAtEnd => "extended header without an entry after it",
            ErrorKind::NameTooLong => "path or link target longer than 1023 bytes",
            ErrorKind::HasNul => "path or link target contains a NUL byte",
            ErrorKind::EmptyPath => "empty path, or a non-directory naming the root",
            ErrorKind::PathEscapes => "path escapes the root",
            ErrorKind::LinkEscapes => "hard link target escapes the root",
            ErrorKind::EmptyLinkTarget => "empty link target",
            ErrorKind::ThroughSymlink => "path goes through a symlink made by this archive",
            ErrorKind::DeviceNode => "device node or FIFO",
            ErrorKind::Sparse => "sparse file (not supported)",
            ErrorKind::UnknownType(_) => "unknown entry type",
            ErrorKind::UnexpectedData => "directory or link with data",
            ErrorKind::TooManySymlinks => "too many symlinks (more than 64, or 8 KiB of their paths)",
            ErrorKind::Target(op, _) => match op {
                Op::Mkdir => "cannot make directory",
                Op::MkdirParent => "cannot make a missing parent directory",
                Op::Create => "cannot create file",
                Op::Write => "cannot write file",
                Op::Close => "cannot close file",
                Op::Symlink => "cannot make symlink",
                Op::Hardlink => "cannot make hard link",
                Op::SetMeta => "cannot set owner, mode and time",
                Op::Remove => "cannot remove the entry in the way",
            },
        }
    }

    /// The error number of a failed read or [`Target`] call, to log after [`describe`](Self::describe).
    pub fn errno(&self) -> Option<Errno> {
        match self {
            ErrorKind::Read(e) | ErrorKind::Target(_, e) => Some(*e),
            _ => None,
        }
    }
}

/// Extracts one archive from `src` into `dst`. See the module documentation.
pub fn extract<S: Source, T: Target>(src: &mut S, dst: &mut T) -> Result<Stats, TarError> {
    let mut x = Extractor::new();
    x.run(src, dst)
}

// Header layout: (offset, length).
const NAME: (usize, usize) = (0, 100);
const MODE: (usize, usize) = (100, 8);
const UID: (usize, usize) = (108, 8);
const GID: (usize, usize) = (116, 8);
const SIZE: (usize, usize) = (124, 12);
const MTIME: (usize, usize) = (136, 12);
const CHKSUM: (usize, usize) = (148, 8);
const TYPEFLAG: usize = 156;
const LINKNAME: (usize, usize) = (157, 100);
const MAGIC: (usize, usize) = (257, 6);
const PREFIX: (usize, usize) = (345, 155);

fn field(h: &[u8; BLOCK], (at, len): (usize, usize)) -> &[u8] {
    h.get(at..at.saturating_add(len)).unwrap_or(&[])
}

/// A string field: up to its first NUL, or all of it.
fn text(f: &[u8]) -> &[u8] {
    f.split(|&b| b == 0).next().unwrap_or(&[])
}

/// Octal digits after optional spaces, then only spaces or NULs. An empty field is 0.
fn octal(f: &[u8]) -> Option<u64> {
    let start = f.iter().position(|&b| b != b' ').unwrap_or(f.len());
    let digits = f.get(start..).unwrap_or(&[]);
    let end = digits.iter().position(|b| !(b'0'..=b'7').contains(b)).unwrap_or(digits.len());
    let (num, rest) = digits.split_at_checked(end)?;
    if !rest.iter().all(|&b| b == b' ' || b == 0) {
        return None;
    }
    num.iter().try_fold(0u64, |n, &d| n.checked_mul(8)?.checked_add(u64::from(d - b'0')))
}

/// GNU base-256: the first byte has its top bit set; the rest is a big-endian two's
/// complement number whose sign is bit 6 of the first byte.
fn base256(f: &[u8]) -> Option<i64> {
    let (&first, rest) = f.split_first()?;
    let negative = first & 0x40 != 0;
    let fill = if negative { 0xff } else { 0 };
    let first = if negative { first } else { first & 0x7f };
    let mut bytes = [fill; 8];
    let all = core::iter::once(first).chain(rest.iter().copied());
    let len = f.len();
    for (i, b) in all.enumerate() {
        match (i + 8).checked_sub(len) {
            Some(slot) => {
                if let Some(s) = bytes.get_mut(slot) {
                    *s = b;
                }
            }
            // Bytes beyond the last 8 may only repeat the sign.
            None if b == fill => {}
            None => return None,
        }
    }
    let n = i64::from_be_bytes(bytes);
    if (n < 0) != negative {
        return None;
    }
    Some(n)
}

fn number(f: &[u8]) -> Option<i64> {
    match f.first() {
        Some(b) if b & 0x80 != 0 => base256(f),
        _ => octal(f).and_then(|n| i64::try_from(n).ok()),
    }
}

fn header_u32(h: &[u8; BLOCK], f: (usize, usize), which: Field) -> Result<u32, ErrorKind> {
    number(field(h, f)).and_then(|n| u32::try_from(n).ok()).ok_or(ErrorKind::BadField(which))
}

fn header_size(h: &[u8; BLOCK]) -> Result<u64, ErrorKind> {
    let f = field(h, SIZE);
    match number(f) {
        Some(n) => u64::try_from(n).map_err(|_| ErrorKind::BadField(Field::Size)),
        // A base-256 size that does not fit is too large rather than malformed.
        None if f.first().is_some_and(|b| b & 0xc0 == 0x80) => Err(ErrorKind::SizeTooLarge),
        None => Err(ErrorKind::BadField(Field::Size)),
    }
}

fn checksum_ok(h: &[u8; BLOCK]) -> Result<bool, ErrorKind> {
    let stored = octal(field(h, CHKSUM)).ok_or(ErrorKind::BadField(Field::Checksum))?;
    let (mut unsigned, mut signed) = (0u32, 0i32);
    for (i, &b) in h.iter().enumerate() {
        let b = if (CHKSUM.0..CHKSUM.0 + CHKSUM.1).contains(&i) { b' ' } else { b };
        unsigned = unsigned.wrapping_add(u32::from(b));
        signed = signed.wrapping_add(i32::from(b as i8));
    }
    Ok(stored == u64::from(unsigned) || i64::try_from(stored).ok() == Some(i64::from(signed)))
}

/// `size` rounded up to whole blocks.
fn padded(size: u64) -> Option<u64> {
    Some(size.checked_add(BLOCK as u64 - 1)? / BLOCK as u64 * BLOCK as u64)
}

/// A path of up to `PATH_BYTES - 1` bytes, always followed by a NUL.
struct PathBuf {
    bytes: [u8; PATH_BYTES],
    len: usize,
}

impl PathBuf {
    const fn new() -> PathBuf {
        PathBuf { bytes: [0; PATH_BYTES], len: 0 }
    }

    fn clear(&mut self) {
        self.len = 0;
        if let Some(b) = self.bytes.first_mut() {
            *b = 0;
        }
    }

    fn push(&mut self, data: &[u8]) -> Result<(), ErrorKind> {
        let end = self.len.checked_add(data.len()).filter(|&e| e < PATH_BYTES).ok_or(ErrorKind::NameTooLong)?;
        let dst = self.bytes.get_mut(self.len..end).ok_or(ErrorKind::NameTooLong)?;
        dst.copy_from_slice(data);
        self.len = end;
        if let Some(b) = self.bytes.get_mut(end) {
            *b = 0;
        }
        Ok(())
    }

    fn set(&mut self, data: &[u8]) -> Result<(), ErrorKind> {
        self.clear();
        self.push(data)
    }

    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }

    /// Up to the first NUL: the whole path, since paths with a NUL are refused before use.
    fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.bytes).unwrap_or(c"")
    }
}

enum Bad {
    Empty,
    DotDot,
    Nul,
    TooLong,
}

/// Joins `parts` with '/' into `out`, dropping empty and `.` components. `Ok(false)`: the
/// path names the root.
fn normalize(parts: &[&[u8]], out: &mut PathBuf) -> Result<bool, Bad> {
    out.clear();
    if parts.iter().all(|p| p.is_empty()) {
        return Err(Bad::Empty);
    }
    for part in parts {
        if part.contains(&0) {
            return Err(Bad::Nul);
        }
        for c in part.split(|&b| b == b'/') {
            match c {
                b"" | b"." => continue,
                b".." => return Err(Bad::DotDot),
                _ => {}
            }
            if out.len > 0 {
                out.push(b"/").map_err(|_| Bad::TooLong)?;
            }
            out.push(c).map_err(|_| Bad::TooLong)?;
        }
    }
    Ok(out.len > 0)
}

/// The symlinks this archive made, so that no later entry goes through one.
struct Symlinks {
    pool: [u8; SYMLINK_POOL_BYTES],
    used: usize,
    /// (start, length) in `pool`.
    spans: heapless::Vec<(usize, usize), MAX_SYMLINKS>,
}

impl Symlinks {
    const fn new() -> Symlinks {
        Symlinks { pool: [0; SYMLINK_POOL_BYTES], used: 0, spans: heapless::Vec::new() }
    }

    fn find(&self, path: &[u8]) -> Option<(usize, usize)> {
        self.spans.iter().copied().find(|&(s, l)| self.pool.get(s..s.saturating_add(l)) == Some(path))
    }

    /// Whether a proper prefix of `path` (a normalised path) is one of the symlinks.
    fn through(&self, path: &[u8]) -> bool {
        path.iter()
            .enumerate()
            .any(|(i, &b)| b == b'/' && path.get(..i).is_some_and(|p| self.find(p).is_some()))
    }

    fn has_room(&self, len: usize) -> bool {
        !self.spans.is_full() && self.used.checked_add(len).is_some_and(|e| e <= SYMLINK_POOL_BYTES)
    }

    fn add(&mut self, path: &[u8]) -> Result<(), ErrorKind> {
        if self.find(path).is_some() {
            return Ok(());
        }
        let end = self.used.checked_add(path.len()).ok_or(ErrorKind::TooManySymlinks)?;
        let dst = self.pool.get_mut(self.used..end).ok_or(ErrorKind::TooManySymlinks)?;
        dst.copy_from_slice(path);
        self.spans.push((self.used, path.len())).map_err(|_| ErrorKind::TooManySymlinks)?;
        self.used = end;
        Ok(())
    }

    fn remove(&mut self, (start, len): (usize, usize)) {
        self.spans.retain(|&(s, _)| s != start);
        for span in self.spans.iter_mut() {
            if span.0 > start {
                span.0 = span.0.saturating_sub(len);
            }
        }
        if let Some(tail) = self.pool.get_mut(start..self.used) {
            let n = len.min(tail.len());
            tail.rotate_left(n);
        }
        self.used = self.used.saturating_sub(len);
    }
}

/// What the pax and GNU long-name headers before an entry said about it.
struct Pending {
    /// Offset of the first of those headers, for an archive that ends after them.
    first: Option<u64>,
    name: PathBuf,
    has_name: bool,
    link: PathBuf,
    has_link: bool,
    size: Option<u64>,
    /// `Some(None)`: an empty pax value, which restores the header's field even over a
    /// global value.
    uid: Option<Option<u32>>,
    gid: Option<Option<u32>>,
    mtime: Option<Option<i64>>,
}

impl Pending {
    const fn new() -> Pending {
        Pending {
            first: None,
            name: PathBuf::new(),
            has_name: false,
            link: PathBuf::new(),
            has_link: false,
            size: None,
            uid: None,
            gid: None,
            mtime: None,
        }
    }

    fn clear(&mut self) {
        self.first = None;
        self.has_name = false;
        self.has_link = false;
        self.size = None;
        self.uid = None;
        self.gid = None;
        self.mtime = None;
    }
}

/// What global pax headers said for every later entry.
#[derive(Default)]
struct Globals {
    uid: Option<u32>,
    gid: Option<u32>,
    mtime: Option<i64>,
}

#[derive(Copy, Clone, PartialEq, Eq)]
enum PaxKey {
    Path,
    Linkpath,
    Size,
    Uid,
    Gid,
    Mtime,
    Sparse,
    Other,
}

#[derive(Copy, Clone, PartialEq, Eq)]
enum PaxState {
    Length,
    Key,
    Value,
    /// NULs after the last record.
    Padding,
}

/// A byte-at-a-time parser of pax records: `"<length> <key>=<value>\n"`, where the length
/// counts the whole record. Values may contain newlines; only the length says where they end.
struct Pax {
    state: PaxState,
    length: usize,
    digits: usize,
    /// Bytes of the current record still to come.
    left: usize,
    key: [u8; 16],
    key_len: usize,
    key_long: bool,
    which: PaxKey,
    value: PathBuf,
    value_long: bool,
}

impl Pax {
    const fn new() -> Pax {
        Pax {
            state: PaxState::Length,
            length: 0,
            digits: 0,
            left: 0,
            key: [0; 16],
            key_len: 0,
            key_long: false,
            which: PaxKey::Other,
            value: PathBuf::new(),
            value_long: false,
        }
    }

    fn start(&mut self) {
        self.state = PaxState::Length;
        self.length = 0;
        self.digits = 0;
    }

    fn classify(&self) -> PaxKey {
        let key = self.key.get(..self.key_len).unwrap_or(&[]);
        if key.starts_with(b"GNU.sparse.") {
            return PaxKey::Sparse;
        }
        if self.key_long {
            return PaxKey::Other;
        }
        match key {
            b"path" => PaxKey::Path,
            b"linkpath" => PaxKey::Linkpath,
            b"size" => PaxKey::Size,
            b"uid" => PaxKey::Uid,
            b"gid" => PaxKey::Gid,
            b"mtime" => PaxKey::Mtime,
            _ => PaxKey::Other,
        }
    }

    /// Takes one byte; returns the key when it completes a record (the value is in `value`,
    /// unless `value_long`).
    fn feed(&mut self, b: u8) -> Result<Option<PaxKey>, ErrorKind> {
        const BAD: ErrorKind = ErrorKind::BadPaxRecord;
        match self.state {
            PaxState::Length => match b {
                b'0'..=b'9' => {
                    let digit = usize::from(b - b'0');
                    self.length = self.length.checked_mul(10).and_then(|n| n.checked_add(digit)).ok_or(BAD)?;
                    self.digits = self.digits.checked_add(1).ok_or(BAD)?;
                }
                b' ' if self.digits > 0 => {
                    // At least "k=\n" must follow.
                    let header = self.digits.checked_add(1).ok_or(BAD)?;
                    self.left = self.length.checked_sub(header).filter(|&l| l >= 3).ok_or(BAD)?;
                    self.key_len = 0;
                    self.key_long = false;
                    self.state = PaxState::Key;
                }
                0 if self.digits == 0 => self.state = PaxState::Padding,
                _ => return Err(BAD),
            },
            PaxState::Key => {
                self.left = self.left.checked_sub(1).ok_or(BAD)?;
                match b {
                    b'=' if self.key_len > 0 || self.key_long => {
                        self.which = self.classify();
                        self.value.clear();
                        self.value_long = false;
                        self.state = PaxState::Value;
                    }
                    b'=' | b'\n' | 0 => return Err(BAD),
                    _ => {
                        match self.key.get_mut(self.key_len) {
                            Some(slot) => {
                                *slot = b;
                                self.key_len += 1;
                            }
                            None => self.key_long = true,
                        }
                        // Room is needed for '=' and '\n'.
                        if self.left < 2 {
                            return Err(BAD);
                        }
                    }
                }
            }
            PaxState::Value => {
                self.left = self.left.checked_sub(1).ok_or(BAD)?;
                if self.left == 0 {
                    if b != b'\n' {
                        return Err(BAD);
                    }
                    self.start();
                    return Ok(Some(self.which));
                }
                if self.which != PaxKey::Other && !self.value_long && self.value.push(&[b]).is_err() {
                    self.value_long = true;
                }
            }
            PaxState::Padding => {
                if b != 0 {
                    return Err(BAD);
                }
            }
        }
        Ok(None)
    }

    /// At the end of the header's data: no record may be cut short.
    fn finish(&self) -> Result<(), ErrorKind> {
        match self.state {
            PaxState::Length if self.digits == 0 => Ok(()),
            PaxState::Padding => Ok(()),
            _ => Err(ErrorKind::BadPaxRecord),
        }
    }
}

fn decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0u64, |n, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// `[-]SECONDS[.FRACTION]`; the fraction is checked and dropped.
fn pax_time(v: &[u8]) -> Option<i64> {
    let (negative, v) = match v.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, v),
    };
    let mut parts = v.splitn(2, |&b| b == b'.');
    let seconds = i64::try_from(decimal(parts.next().unwrap_or(&[]))?).ok()?;
    if let Some(fraction) = parts.next() {
        decimal(fraction)?;
    }
    if negative { seconds.checked_neg() } else { Some(seconds) }
}

/// Applies one complete pax record to the next entry (`x`) or to all later ones (`g`).
fn apply_pax(pax: &Pax, key: PaxKey, global: bool, p: &mut Pending, g: &mut Globals) -> Result<(), ErrorKind> {
    let value = pax.value.as_bytes();
    let empty = value.is_empty() && !pax.value_long;
    let number = |max: u64| -> Result<Option<u64>, ErrorKind> {
        if empty {
            return Ok(None);
        }
        if pax.value_long {
            return Err(ErrorKind::BadPaxValue);
        }
        match decimal(value) {
            Some(n) if n <= max => Ok(Some(n)),
            _ => Err(ErrorKind::BadPaxValue),
        }
    };
    match key {
        PaxKey::Other => {}
        PaxKey::Sparse => return Err(ErrorKind::Sparse),
        PaxKey::Path | PaxKey::Linkpath | PaxKey::Size if global && !empty => return Err(ErrorKind::GlobalPath),
        PaxKey::Path | PaxKey::Linkpath | PaxKey::Size if global => {}
        PaxKey::Path | PaxKey::Linkpath => {
            if pax.value_long {
                return Err(ErrorKind::NameTooLong);
            }
            let (buf, has) = match key {
                PaxKey::Path => (&mut p.name, &mut p.has_name),
                _ => (&mut p.link, &mut p.has_link),
            };
            buf.set(value)?;
            *has = !empty;
        }
        PaxKey::Size => {
            let digits = !empty && !pax.value_long && value.iter().all(u8::is_ascii_digit);
            if digits && decimal(value).and_then(padded).is_none() {
                return Err(ErrorKind::SizeTooLarge);
            }
            p.size = number(u64::MAX)?;
        }
        PaxKey::Uid | PaxKey::Gid => {
            let n = number(u64::from(u32::MAX))?.and_then(|n| u32::try_from(n).ok());
            match (key == PaxKey::Uid, global) {
                (true, false) => p.uid = Some(n),
                (true, true) => g.uid = n,
                (false, false) => p.gid = Some(n),
                (false, true) => g.gid = n,
            }
        }
        PaxKey::Mtime => {
            let t = if empty {
                None
            } else if pax.value_long {
                return Err(ErrorKind::BadPaxValue);
            } else {
                Some(pax_time(value).ok_or(ErrorKind::BadPaxValue)?)
            };
            if global {
                g.mtime = t;
            } else {
                p.mtime = Some(t);
            }
        }
    }
    Ok(())
}

/// Reads until `buf` is full or the source ends; returns how much it read, or the error
/// with the offset of the failed read (`pos` is the offset of `buf`).
fn read_full<S: Source>(src: &mut S, buf: &mut [u8], pos: u64) -> Result<usize, TarError> {
    let mut got = 0;
    while let Some(rest) = buf.get_mut(got..) {
        if rest.is_empty() {
            break;
        }
        let want = rest.len();
        let offset = pos.saturating_add(got as u64);
        let n = src.read(rest).map_err(|e| TarError { offset, kind: ErrorKind::Read(e) })?;
        if n == 0 {
            break;
        }
        got += n.min(want);
    }
    Ok(got)
}

/// Reads an entry's data and its padding, handing the `size` data bytes to `sink` in pieces.
/// Errors name `entry`, except read errors, which name the offset of the failed read.
fn stream<S: Source>(
    src: &mut S,
    pos: &mut u64,
    buf: &mut [u8; CHUNK],
    size: u64,
    entry: u64,
    mut sink: impl FnMut(&[u8]) -> Result<(), ErrorKind>,
) -> Result<(), TarError> {
    let fail = |kind| TarError { offset: entry, kind };
    let mut left = padded(size).ok_or(fail(ErrorKind::SizeTooLarge))?;
    let mut data_left = size;
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
        let piece = buf.get_mut(..want).unwrap_or(&mut []);
        let n = read_full(src, piece, *pos)?;
        *pos = pos.saturating_add(n as u64);
        let data_n = usize::try_from(data_left).unwrap_or(usize::MAX).min(n);
        if data_n > 0 {
            sink(piece.get(..data_n).unwrap_or(&[])).map_err(fail)?;
        }
        data_left = data_left.saturating_sub(data_n as u64);
        left = left.saturating_sub(n as u64);
        if n < want {
            return Err(fail(ErrorKind::Truncated));
        }
    }
    Ok(())
}

#[derive(Copy, Clone)]
enum Make<'a> {
    Dir(u32),
    File(u32),
    Symlink(&'a CStr),
    Hardlink(&'a CStr),
}

/// Makes `what` at `path`: once more after removing what is in the way (`EEXIST`) or after
/// making missing parents (`ENOENT`).
fn make<T: Target>(dst: &mut T, path: &mut PathBuf, what: Make<'_>) -> Result<(), ErrorKind> {
    let op = match what {
        Make::Dir(_) => Op::Mkdir,
        Make::File(_) => Op::Create,
        Make::Symlink(_) => Op::Symlink,
        Make::Hardlink(_) => Op::Hardlink,
    };
    let attempt = |dst: &mut T, p: &CStr| match what {
        Make::Dir(mode) => dst.mkdir(p, mode),
        Make::File(mode) => dst.create(p, mode),
        Make::Symlink(target) => dst.symlink(target, p),
        Make::Hardlink(existing) => dst.hardlink(existing, p),
    };
    match attempt(dst, path.as_cstr()) {
        Ok(()) => return Ok(()),
        Err(Errno::EEXIST) => dst.remove(path.as_cstr()).map_err(|e| ErrorKind::Target(Op::Remove, e))?,
        Err(Errno::ENOENT) => make_parents(dst, path)?,
        Err(e) => return Err(ErrorKind::Target(op, e)),
    }
    attempt(dst, path.as_cstr()).map_err(|e| ErrorKind::Target(op, e))
}

/// `mkdir -p` of the parent of `path`, cutting the path at each '/' in turn.
fn make_parents<T: Target>(dst: &mut T, path: &mut PathBuf) -> Result<(), ErrorKind> {
    for i in 0..path.len {
        if path.bytes.get(i) != Some(&b'/') {
            continue;
        }
        if let Some(b) = path.bytes.get_mut(i) {
            *b = 0;
        }
        let r = dst.mkdir(path.as_cstr(), 0o755);
        if let Some(b) = path.bytes.get_mut(i) {
            *b = b'/';
        }
        r.map_err(|e| ErrorKind::Target(Op::MkdirParent, e))?;
    }
    Ok(())
}

#[derive(Copy, Clone, PartialEq, Eq)]
enum Type {
    File,
    Hardlink,
    Symlink,
    Dir,
}

struct Extractor {
    /// Bytes read so far.
    pos: u64,
    header: [u8; BLOCK],
    chunk: [u8; CHUNK],
    pending: Pending,
    globals: Globals,
    pax: Pax,
    /// The entry's normalised path.
    path: PathBuf,
    /// A hard link's normalised target, or a symlink's target as stored.
    target: PathBuf,
    symlinks: Symlinks,
    stats: Stats,
}

impl Extractor {
    fn new() -> Extractor {
        Extractor {
            pos: 0,
            header: [0; BLOCK],
            chunk: [0; CHUNK],
            pending: Pending::new(),
            globals: Globals::default(),
            pax: Pax::new(),
            path: PathBuf::new(),
            target: PathBuf::new(),
            symlinks: Symlinks::new(),
            stats: Stats::default(),
        }
    }

    fn read_block<S: Source>(&mut self, src: &mut S) -> Result<usize, TarError> {
        let n = read_full(src, &mut self.header, self.pos)?;
        self.pos = self.pos.saturating_add(n as u64);
        Ok(n)
    }

    fn run<S: Source, T: Target>(&mut self, src: &mut S, dst: &mut T) -> Result<Stats, TarError> {
        loop {
            let at = self.pos;
            let n = self.read_block(src)?;
            let fail = |kind| TarError { offset: at, kind };
            if n == 0 {
                return Err(match self.pending.first {
                    Some(first) => TarError { offset: first, kind: ErrorKind::ExtendedHeaderAtEnd },
                    None => fail(ErrorKind::MissingEnd),
                });
            }
            if n < BLOCK {
                return Err(fail(ErrorKind::Truncated));
            }
            if self.header.iter().all(|&b| b == 0) {
                if let Some(first) = self.pending.first {
                    return Err(TarError { offset: first, kind: ErrorKind::ExtendedHeaderAtEnd });
                }
                // The second zero block, or the end of the file (or of a cut-off zero block).
                let n = self.read_block(src)?;
                if self.header.get(..n).unwrap_or(&[]).iter().all(|&b| b == 0) {
                    return Ok(self.stats);
                }
                return Err(fail(ErrorKind::LoneZeroBlock));
            }
            if !checksum_ok(&self.header).map_err(fail)? {
                return Err(fail(ErrorKind::BadChecksum));
            }
            let posix = match field(&self.header, MAGIC) {
                b"ustar\0" => true,
                b"ustar " => false,
                _ => return Err(fail(ErrorKind::NotUstar)),
            };
            let typeflag = self.header.get(TYPEFLAG).copied().unwrap_or(0);
            match typeflag {
                b'x' | b'g' => {
                    let size = header_size(&self.header).map_err(fail)?;
                    let global = typeflag == b'g';
                    if !global {
                        self.pending.first.get_or_insert(at);
                    }
                    let Extractor { pos, chunk, pax, pending, globals, .. } = self;
                    pax.start();
                    stream(src, pos, chunk, size, at, |data| {
                        for &b in data {
                            if let Some(key) = pax.feed(b)? {
                                apply_pax(pax, key, global, pending, globals)?;
                            }
                        }
                        Ok(())
                    })?;
                    pax.finish().map_err(fail)?;
                }
                b'L' | b'K' => {
                    let size = header_size(&self.header).map_err(fail)?;
                    if size > PATH_BYTES as u64 {
                        return Err(fail(ErrorKind::NameTooLong));
                    }
                    self.pending.first.get_or_insert(at);
                    let Extractor { pos, chunk, pending, .. } = self;
                    let (buf, has) = if typeflag == b'L' {
                        (&mut pending.name, &mut pending.has_name)
                    } else {
                        (&mut pending.link, &mut pending.has_link)
                    };
                    buf.clear();
                    // NUL-terminated, perhaps with more NULs; a NUL before the end is refused.
                    let mut nul = false;
                    stream(src, pos, chunk, size, at, |data| {
                        for &b in data {
                            match (b, nul) {
                                (0, _) => nul = true,
                                (_, true) => return Err(ErrorKind::HasNul),
                                _ => buf.push(&[b])?,
                            }
                        }
                        Ok(())
                    })?;
                    *has = true;
                }
                _ => {
                    self.entry(src, dst, at, posix, typeflag)?;
                    self.pending.clear();
                }
            }
        }
    }

    /// One file, directory or link, whose own header (at `at`) is in `self.header`.
    fn entry<S: Source, T: Target>(
        &mut self,
        src: &mut S,
        dst: &mut T,
        at: u64,
        posix: bool,
        typeflag: u8,
    ) -> Result<(), TarError> {
        let fail = |kind| TarError { offset: at, kind };
        let h = &self.header;
        let p = &self.pending;

        let size = match p.size {
            Some(size) => size,
            None => header_size(h).map_err(fail)?,
        };
        padded(size).ok_or(fail(ErrorKind::SizeTooLarge))?;
        let mode = header_u32(h, MODE, Field::Mode).map_err(fail)? & 0o7777;
        let uid = match p.uid.unwrap_or(self.globals.uid) {
            Some(uid) => uid,
            None => header_u32(h, UID, Field::Uid).map_err(fail)?,
        };
        let gid = match p.gid.unwrap_or(self.globals.gid) {
            Some(gid) => gid,
            None => header_u32(h, GID, Field::Gid).map_err(fail)?,
        };
        let mtime = match p.mtime.unwrap_or(self.globals.mtime) {
            Some(t) => t,
            None => number(field(h, MTIME)).ok_or(fail(ErrorKind::BadField(Field::Mtime)))?,
        };

        let ty = match typeflag {
            b'0' | 0 | b'7' => Type::File,
            b'1' => Type::Hardlink,
            b'2' => Type::Symlink,
            b'5' => Type::Dir,
            b'3' | b'4' | b'6' => return Err(fail(ErrorKind::DeviceNode)),
            b'S' => return Err(fail(ErrorKind::Sparse)),
            t => return Err(fail(ErrorKind::UnknownType(t))),
        };
        if ty != Type::File && size != 0 {
            return Err(fail(ErrorKind::UnexpectedData));
        }

        let name: [&[u8]; 2] = if p.has_name {
            [p.name.as_bytes(), b""]
        } else if posix {
            [text(field(h, PREFIX)), text(field(h, NAME))]
        } else {
            [b"", text(field(h, NAME))]
        };
        let not_root = normalize(&name, &mut self.path).map_err(|bad| {
            fail(match bad {
                Bad::Empty => ErrorKind::EmptyPath,
                Bad::DotDot => ErrorKind::PathEscapes,
                Bad::Nul => ErrorKind::HasNul,
                Bad::TooLong => ErrorKind::NameTooLong,
            })
        })?;
        if !not_root {
            return if ty == Type::Dir { Ok(()) } else { Err(fail(ErrorKind::EmptyPath)) };
        }
        if self.symlinks.through(self.path.as_bytes()) {
            return Err(fail(ErrorKind::ThroughSymlink));
        }

        let link: &[u8] = if p.has_link { p.link.as_bytes() } else { text(field(h, LINKNAME)) };
        // Whether the new entry is a symlink (a hard link to one is one too).
        let mut is_symlink = false;
        match ty {
            Type::Symlink => {
                if link.is_empty() {
                    return Err(fail(ErrorKind::EmptyLinkTarget));
                }
                if link.contains(&0) {
                    return Err(fail(ErrorKind::HasNul));
                }
                self.target.set(link).map_err(fail)?;
                is_symlink = true;
            }
            Type::Hardlink => {
                match normalize(&[link], &mut self.target) {
                    Ok(true) => {}
                    Ok(false) | Err(Bad::Empty) => return Err(fail(ErrorKind::EmptyLinkTarget)),
                    Err(Bad::DotDot) => return Err(fail(ErrorKind::LinkEscapes)),
                    Err(Bad::Nul) => return Err(fail(ErrorKind::HasNul)),
                    Err(Bad::TooLong) => return Err(fail(ErrorKind::NameTooLong)),
                }
                if self.symlinks.through(self.target.as_bytes()) {
                    return Err(fail(ErrorKind::ThroughSymlink));
                }
                if self.target.as_bytes() == self.path.as_bytes() {
                    // A link to itself: nothing to do.
                    self.stats.hardlinks = self.stats.hardlinks.saturating_add(1);
                    return Ok(());
                }
                is_symlink = self.symlinks.find(self.target.as_bytes()).is_some();
            }
            Type::File | Type::Dir => {}
        }

        // A symlink this archive made is replaced, never followed.
        if let Some(span) = self.symlinks.find(self.path.as_bytes()) {
            dst.remove(self.path.as_cstr()).map_err(|e| fail(ErrorKind::Target(Op::Remove, e)))?;
            self.symlinks.remove(span);
        }
        if is_symlink && !self.symlinks.has_room(self.path.len) {
            return Err(fail(ErrorKind::TooManySymlinks));
        }

        match ty {
            Type::Dir => {
                make(dst, &mut self.path, Make::Dir(mode & 0o777)).map_err(fail)?;
                self.stats.dirs = self.stats.dirs.saturating_add(1);
            }
            Type::File => {
                make(dst, &mut self.path, Make::File(mode & 0o777)).map_err(fail)?;
                let written = stream(src, &mut self.pos, &mut self.chunk, size, at, |data| {
                    dst.write(data).map_err(|e| ErrorKind::Target(Op::Write, e))
                });
                if let Err(e) = written {
                    let _ = dst.close_file();
                    return Err(e);
                }
                dst.close_file().map_err(|e| fail(ErrorKind::Target(Op::Close, e)))?;
                self.stats.files = self.stats.files.saturating_add(1);
                self.stats.bytes = self.stats.bytes.saturating_add(size);
            }
            Type::Symlink => {
                make(dst, &mut self.path, Make::Symlink(self.target.as_cstr())).map_err(fail)?;
                self.symlinks.add(self.path.as_bytes()).map_err(fail)?;
                self.stats.symlinks = self.stats.symlinks.saturating_add(1);
            }
            Type::Hardlink => {
                make(dst, &mut self.path, Make::Hardlink(self.target.as_cstr())).map_err(fail)?;
                if is_symlink {
                    self.symlinks.add(self.path.as_bytes()).map_err(fail)?;
                }
                self.stats.hardlinks = self.stats.hardlinks.saturating_add(1);
                return Ok(());
            }
        }
        dst.set_meta(self.path.as_cstr(), mode, uid, gid, mtime, is_symlink)
            .map_err(|e| fail(ErrorKind::Target(Op::SetMeta, e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::format;
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf as StdPath};
    use std::process::Command;
    use std::string::String;
    use std::vec;
    use std::vec::Vec;

    // ---- An in-memory root ------------------------------------------------------------------

    #[derive(Clone, Debug, PartialEq)]
    enum Node {
        Dir,
        File(Vec<u8>),
        Symlink(Vec<u8>),
    }

    #[derive(Clone, Debug, PartialEq)]
    struct Meta {
        mode: u32,
        uid: u32,
        gid: u32,
        mtime: i64,
    }

    #[derive(Clone, Debug)]
    struct Entry {
        node: Node,
        meta: Option<Meta>,
        /// For a hard link: the path it was linked to.
        link_of: Option<Vec<u8>>,
        /// The mode given to mkdir or create.
        made_mode: u32,
    }

    /// Behaves like a directory tree under `openat` without following symlinks, and counts
    /// what a real filesystem would have done wrongly: follow a symlink in the middle of a
    /// path (`followed`), or receive a path that is not normalised (`bad_paths`).
    #[derive(Default)]
    struct Mem {
        map: HashMap<Vec<u8>, Entry>,
        current: Option<Vec<u8>>,
        followed: usize,
        bad_paths: usize,
        closes: usize,
        removed: Vec<Vec<u8>>,
        /// Fail this operation's next call with this errno.
        fail: Option<(&'static str, Errno)>,
    }

    impl Mem {
        fn walk(&mut self, op: &'static str, p: &CStr) -> Result<Vec<u8>, Errno> {
            if let Some((o, e)) = self.fail
                && o == op
            {
                self.fail = None;
                return Err(e);
            }
            let p = p.to_bytes().to_vec();
            let normal = !p.is_empty() && p.split(|&b| b == b'/').all(|c| !c.is_empty() && c != b"." && c != b"..");
            if !normal {
                self.bad_paths += 1;
                return Err(Errno::EINVAL);
            }
            for (i, &b) in p.iter().enumerate() {
                if b != b'/' {
                    continue;
                }
                match self.map.get(&p[..i]).map(|e| &e.node) {
                    Some(Node::Dir) => {}
                    Some(Node::Symlink(_)) => {
                        self.followed += 1;
                        return Err(Errno::ELOOP);
                    }
                    Some(Node::File(_)) => return Err(Errno::ENOTDIR),
                    None => return Err(Errno::ENOENT),
                }
            }
            Ok(p)
        }

        fn add(&mut self, p: Vec<u8>, node: Node, made_mode: u32) -> Result<(), Errno> {
            if self.map.contains_key(&p) {
                return Err(Errno::EEXIST);
            }
            self.map.insert(p, Entry { node, meta: None, link_of: None, made_mode });
            Ok(())
        }

        fn get(&self, p: &str) -> Option<&Entry> {
            self.map.get(p.as_bytes())
        }

        fn file(&self, p: &str) -> Option<&[u8]> {
            match self.get(p).map(|e| &e.node) {
                Some(Node::File(d)) => Some(d),
                _ => None,
            }
        }
    }

    impl Target for Mem {
        fn mkdir(&mut self, p: &CStr, mode: u32) -> Result<(), Errno> {
            let p = self.walk("mkdir", p)?;
            match self.map.get(&p).map(|e| &e.node) {
                Some(Node::Dir) => Ok(()),
                Some(_) => Err(Errno::EEXIST),
                None => self.add(p, Node::Dir, mode),
            }
        }

        fn create(&mut self, p: &CStr, mode: u32) -> Result<(), Errno> {
            let p = self.walk("create", p)?;
            self.add(p.clone(), Node::File(Vec::new()), mode)?;
            self.current = Some(p);
            Ok(())
        }

        fn write(&mut self, data: &[u8]) -> Result<(), Errno> {
            if let Some(("write", e)) = self.fail {
                self.fail = None;
                return Err(e);
            }
            let cur = self.current.clone().ok_or(Errno::EBADF)?;
            match self.map.get_mut(&cur).map(|e| &mut e.node) {
                Some(Node::File(d)) => {
                    d.extend_from_slice(data);
                    Ok(())
                }
                _ => Err(Errno::EBADF),
            }
        }

        fn close_file(&mut self) -> Result<(), Errno> {
            self.closes += 1;
            self.current.take().map(|_| ()).ok_or(Errno::EBADF)
        }

        fn symlink(&mut self, target: &CStr, p: &CStr) -> Result<(), Errno> {
            let p = self.walk("symlink", p)?;
            self.add(p, Node::Symlink(target.to_bytes().to_vec()), 0o777)
        }

        fn hardlink(&mut self, existing: &CStr, p: &CStr) -> Result<(), Errno> {
            let p = self.walk("hardlink", p)?;
            let e = self.walk("hardlink", existing)?;
            let mut entry = self.map.get(&e).cloned().ok_or(Errno::ENOENT)?;
            if entry.node == Node::Dir {
                return Err(Errno::EPERM);
            }
            if self.map.contains_key(&p) {
                return Err(Errno::EEXIST);
            }
            entry.link_of = Some(e);
            self.map.insert(p, entry);
            Ok(())
        }

        fn set_meta(&mut self, p: &CStr, mode: u32, uid: u32, gid: u32, mtime: i64, is_symlink: bool) -> Result<(), Errno> {
            let p = self.walk("set_meta", p)?;
            let entry = self.map.get_mut(&p).ok_or(Errno::ENOENT)?;
            if matches!(entry.node, Node::Symlink(_)) != is_symlink {
                // A chmod through a symlink, or a symlink that is not one.
                self.followed += 1;
                return Err(Errno::ELOOP);
            }
            entry.meta = Some(Meta { mode, uid, gid, mtime });
            Ok(())
        }

        fn remove(&mut self, p: &CStr) -> Result<(), Errno> {
            let p = self.walk("remove", p)?;
            let mut child = p.clone();
            child.push(b'/');
            if self.map.keys().any(|k| k.starts_with(&child)) {
                return Err(Errno::ENOTEMPTY);
            }
            self.map.remove(&p).ok_or(Errno::ENOENT)?;
            self.removed.push(p);
            Ok(())
        }
    }

    fn run(archive: &[u8]) -> (Result<Stats, TarError>, Mem) {
        let mut mem = Mem::default();
        let mut src = archive;
        let r = extract(&mut src, &mut mem);
        assert_eq!(mem.followed, 0, "a symlink was followed");
        assert_eq!(mem.bad_paths, 0, "a path was not normalised");
        (r, mem)
    }

    fn refused(archive: &[u8]) -> (u64, ErrorKind) {
        match run(archive).0 {
            Ok(stats) => panic!("accepted: {stats:?}"),
            Err(e) => (e.offset, e.kind),
        }
    }

    // ---- Hand-made archives -----------------------------------------------------------------

    fn put(h: &mut [u8; BLOCK], (at, len): (usize, usize), v: &[u8]) {
        assert!(v.len() <= len);
        h[at..at + len].fill(0);
        h[at..at + v.len()].copy_from_slice(v);
    }

    fn seal(h: &mut [u8; BLOCK]) {
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        put(h, CHKSUM, format!("{sum:06o}\0 ").as_bytes());
    }

    fn header(name: &[u8], typeflag: u8, size: u64) -> [u8; BLOCK] {
        let mut h = [0u8; BLOCK];
        put(&mut h, NAME, name);
        put(&mut h, MODE, b"0000644\0");
        put(&mut h, UID, b"0000000\0");
        put(&mut h, GID, b"0000000\0");
        put(&mut h, SIZE, format!("{size:011o}\0").as_bytes());
        put(&mut h, MTIME, b"14524770400\0");
        h[TYPEFLAG] = typeflag;
        put(&mut h, MAGIC, b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        seal(&mut h);
        h
    }

    fn link_header(name: &[u8], typeflag: u8, link: &[u8]) -> [u8; BLOCK] {
        let mut h = header(name, typeflag, 0);
        put(&mut h, LINKNAME, link);
        seal(&mut h);
        h
    }

    /// A header followed by its data, padded.
    fn member(h: [u8; BLOCK], data: &[u8]) -> Vec<u8> {
        let mut v = h.to_vec();
        v.extend_from_slice(data);
        v.resize(v.len().div_ceil(BLOCK) * BLOCK, 0);
        v
    }

    fn file(name: &str, data: &[u8]) -> Vec<u8> {
        member(header(name.as_bytes(), b'0', data.len() as u64), data)
    }

    fn record(key: &str, value: &[u8]) -> Vec<u8> {
        let body = 1 + key.len() + 1 + value.len() + 1;
        let mut len = body + 1;
        while format!("{len}").len() + body != len {
            len += 1;
        }
        let mut r = format!("{len} {key}=").into_bytes();
        r.extend_from_slice(value);
        r.push(b'\n');
        r
    }

    fn pax(typeflag: u8, records: &[u8]) -> Vec<u8> {
        member(header(b"./PaxHeaders/x", typeflag, records.len() as u64), records)
    }

    fn archive(members: &[Vec<u8>]) -> Vec<u8> {
        let mut v: Vec<u8> = members.concat();
        v.extend_from_slice(&[0u8; 2 * BLOCK]);
        v
    }

    #[test]
    fn hand_made_archive_with_every_type() {
        let big: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        let a = archive(&[
            member(header(b"./", b'5', 0), b""),
            member(header(b"etc/", b'5', 0), b""),
            file("etc/hosts", b"127.0.0.1 localhost\n"),
            file("/etc/big", &big),
            member(link_header(b"etc/hard", b'1', b"./etc/hosts"), b""),
            member(link_header(b"etc/link", b'2', b"../usr/lib/x"), b""),
            file("etc/empty", b""),
        ]);
        let (r, mem) = run(&a);
        assert_eq!(r, Ok(Stats { files: 3, dirs: 1, symlinks: 1, hardlinks: 1, bytes: 10_020 }));
        assert_eq!(mem.file("etc/hosts"), Some(&b"127.0.0.1 localhost\n"[..]));
        assert_eq!(mem.file("etc/big"), Some(&big[..]));
        assert_eq!(mem.file("etc/hard"), Some(&b"127.0.0.1 localhost\n"[..]));
        assert_eq!(mem.get("etc/hard").unwrap().link_of.as_deref(), Some(&b"etc/hosts"[..]));
        assert_eq!(mem.get("etc/link").unwrap().node, Node::Symlink(b"../usr/lib/x".to_vec()));
        assert_eq!(mem.get("etc/hosts").unwrap().meta, Some(Meta { mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000 }));
        assert_eq!(mem.map.len(), 6, "{:?}", mem.map.keys());
        assert_eq!(mem.closes, 3);
    }

    #[test]
    fn short_reads_change_nothing() {
        struct Dribble<'a>(&'a [u8], usize);
        impl Source for Dribble<'_> {
            fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
                self.1 = self.1 % 7 + 1;
                let n = self.1.min(buf.len()).min(self.0.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let a = archive(&[pax(b'x', &record("path", b"long/name")), file("x", &[5u8; 3000]), file("y", b"y")]);
        let mut mem = Mem::default();
        let r = extract(&mut Dribble(&a, 0), &mut mem);
        assert_eq!(r, run(&a).0);
        assert_eq!(mem.file("long/name"), Some(&[5u8; 3000][..]));
    }

    #[test]
    fn missing_parents_are_made_and_things_in_the_way_removed() {
        let a = archive(&[file("a/b/c", b"c"), member(header(b"a/b/c/", b'5', 0), b"")]);
        let (r, mem) = run(&a);
        assert_eq!(r, Ok(Stats { files: 1, dirs: 1, symlinks: 0, hardlinks: 0, bytes: 1 }));
        assert_eq!(mem.get("a").unwrap().made_mode, 0o755);
        assert_eq!(mem.get("a").unwrap().meta, None);
        assert_eq!(mem.get("a/b/c").unwrap().node, Node::Dir);
        assert_eq!(mem.removed, [b"a/b/c".to_vec()]);

        // A symlink made by the archive is replaced, never written through.
        let a = archive(&[member(link_header(b"s", b'2', b"/etc/passwd"), b""), file("s", b"mine")]);
        let (r, mem) = run(&a);
        assert_eq!(r.map(|s| (s.files, s.symlinks)), Ok((1, 1)));
        assert_eq!(mem.file("s"), Some(&b"mine"[..]));

        // A directory in the way of a symlink, and a file in the way of a file.
        let a = archive(&[member(header(b"d", b'5', 0), b""), member(link_header(b"d", b'2', b"x"), b""), file("f", b"1"), file("f", b"2")]);
        let (r, mem) = run(&a);
        assert!(r.is_ok());
        assert_eq!(mem.get("d").unwrap().node, Node::Symlink(b"x".to_vec()));
        assert_eq!(mem.file("f"), Some(&b"2"[..]));
    }

    #[test]
    fn modes_owners_times_and_number_formats() {
        let mut h = header(b"suid", b'0', 0);
        put(&mut h, MODE, b"0104755 ");
        put(&mut h, UID, b"   1750 ");
        put(&mut h, GID, b"");
        seal(&mut h);
        let mut b = header(b"b256", b'0', 0);
        // Base-256: size 5, uid 3000000000, mtime -86400.
        put(&mut b, SIZE, &[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]);
        put(&mut b, UID, &[0x80, 0, 0, 0, 0xb2, 0xd0, 0x5e, 0x00]);
        let mut t = [0xffu8; 12];
        t[4..].copy_from_slice(&(-86400i64).to_be_bytes());
        put(&mut b, MTIME, &t);
        seal(&mut b);
        let a = archive(&[member(h, b""), member(b, b"12345")]);
        let (r, mem) = run(&a);
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(mem.get("suid").unwrap().meta, Some(Meta { mode: 0o4755, uid: 0o1750, gid: 0, mtime: 1_700_000_000 }));
        assert_eq!(mem.get("suid").unwrap().made_mode, 0o755);
        assert_eq!(mem.get("b256").unwrap().meta, Some(Meta { mode: 0o644, uid: 3_000_000_000, gid: 0, mtime: -86400 }));
        assert_eq!(mem.file("b256"), Some(&b"12345"[..]));
    }

    #[test]
    fn signed_checksums_are_accepted() {
        let mut h = header("é".as_bytes(), b'0', 0);
        h[148..156].fill(b' ');
        let sum: i32 = h.iter().map(|&b| i32::from(b as i8)).sum();
        put(&mut h, CHKSUM, format!("{sum:06o}\0 ").as_bytes());
        let (r, mem) = run(&archive(&[member(h, b"")]));
        assert!(r.is_ok(), "{r:?}");
        assert!(mem.get("é").is_some());
    }

    #[test]
    fn pax_records_override_the_header() {
        let mut recs = record("path", "dir/ünïcödé/".repeat(20).as_bytes());
        recs.extend(record("uid", b"3000000000"));
        recs.extend(record("gid", b"42"));
        recs.extend(record("mtime", b"1700000123.987654321"));
        recs.extend(record("size", b"3"));
        recs.extend(record("atime", b"1.5"));
        recs.extend(record("LIBARCHIVE.xattr.user.comment", b"line one\nline two"));
        recs.extend(record("comment", "x".repeat(3000).as_bytes()));
        let mut h = header(b"short", b'0', 0);
        put(&mut h, SIZE, b"garbage!!!!");
        put(&mut h, UID, b"garbage");
        seal(&mut h);
        let mut g = record("uid", b"7");
        g.extend(record("gid", b"8"));
        g.extend(record("mtime", b"-5"));
        let a = archive(&[
            pax(b'g', &g),
            pax(b'x', &recs),
            member(h, b"abc"),
            file("plain", b""),
            pax(b'x', &[record("uid", b""), record("mtime", b"")].concat()),
            file("reset", b""),
        ]);
        let (r, mem) = run(&a);
        assert!(r.is_ok(), "{r:?}");
        let long = "dir/ünïcödé/".repeat(20);
        let long = long.trim_end_matches('/');
        assert_eq!(mem.file(long), Some(&b"abc"[..]));
        assert_eq!(mem.get(long).unwrap().meta, Some(Meta { mode: 0o644, uid: 3_000_000_000, gid: 42, mtime: 1_700_000_123 }));
        assert_eq!(mem.get("plain").unwrap().meta, Some(Meta { mode: 0o644, uid: 7, gid: 8, mtime: -5 }));
        // An empty value restores the header's field, even over a global value.
        assert_eq!(mem.get("reset").unwrap().meta, Some(Meta { mode: 0o644, uid: 0, gid: 8, mtime: 1_700_000_000 }));
    }

    #[test]
    fn gnu_long_names_and_links() {
        let long = "l".repeat(300);
        let target = format!("{long}/../t{}", "x".repeat(200));
        let mut l = header(b"././@LongLink", b'L', long.len() as u64 + 1);
        put(&mut l, MAGIC, b"ustar ");
        h_version(&mut l);
        let mut k = header(b"././@LongLink", b'K', target.len() as u64 + 1);
        put(&mut k, MAGIC, b"ustar ");
        h_version(&mut k);
        let mut s = link_header(b"trunc", b'2', b"trunc");
        put(&mut s, MAGIC, b"ustar ");
        h_version(&mut s);
        let a = archive(&[member(l, format!("{long}\0").as_bytes()), member(k, format!("{target}\0").as_bytes()), member(s, b"")]);
        let (r, mem) = run(&a);
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(mem.get(&long).unwrap().node, Node::Symlink(target.into_bytes()));
    }

    fn h_version(h: &mut [u8; BLOCK]) {
        h[263..265].copy_from_slice(b" \0");
        // GNU headers keep times where POSIX has the prefix: it must not become part of the name.
        put(h, PREFIX, b"12345670123");
        seal(h);
    }

    #[test]
    fn prefix_field_is_joined_to_the_name() {
        let mut h = header(b"name", b'0', 1);
        put(&mut h, PREFIX, b"some/prefix");
        seal(&mut h);
        let (r, mem) = run(&archive(&[member(h, b"!")]));
        assert!(r.is_ok());
        assert_eq!(mem.file("some/prefix/name"), Some(&b"!"[..]));
    }

    #[test]
    fn end_of_archive() {
        let f = file("f", b"data");
        // Two zero blocks, with anything after them ignored.
        let mut a = archive(std::slice::from_ref(&f));
        a.extend_from_slice(b"trailing junk is never read");
        assert!(run(&a).0.is_ok());
        // One zero block, then the end of the file (also with the second one cut short).
        for tail in [BLOCK, BLOCK + 100] {
            let mut a = f.clone();
            a.resize(f.len() + tail, 0);
            assert!(run(&a).0.is_ok(), "{tail}");
        }
        // A zero block followed by an entry.
        let mut a = f.clone();
        a.extend_from_slice(&[0; BLOCK]);
        a.extend_from_slice(&file("g", b""));
        assert_eq!(refused(&a), (1024, ErrorKind::LoneZeroBlock));
        // No zero block at all, and an empty file.
        assert_eq!(refused(&f), (1024, ErrorKind::MissingEnd));
        assert_eq!(refused(b""), (0, ErrorKind::MissingEnd));
        // An extended header, then the end.
        assert_eq!(refused(&archive(&[f.clone(), pax(b'x', &record("path", b"p"))])), (1024, ErrorKind::ExtendedHeaderAtEnd));
        let mut a = f.clone();
        a.extend(pax(b'x', &record("path", b"p")));
        assert_eq!(refused(&a), (1024, ErrorKind::ExtendedHeaderAtEnd));
    }

    #[test]
    fn hostile_paths() {
        let dir = |n: &str| member(header(n.as_bytes(), b'5', 0), b"");
        let sym = |n: &str, t: &str| member(link_header(n.as_bytes(), b'2', t.as_bytes()), b"");
        let hard = |n: &str, t: &str| member(link_header(n.as_bytes(), b'1', t.as_bytes()), b"");
        let longest = pax(b'x', &record("path", &[b'a'; PATH_BYTES - 1]));
        let cases: Vec<(Vec<Vec<u8>>, u64, ErrorKind)> = vec![
            (vec![file("../x", b"")], 0, ErrorKind::PathEscapes),
            (vec![dir("a/"), file("a/../../x", b"")], 512, ErrorKind::PathEscapes),
            (vec![file("a/../b", b"")], 0, ErrorKind::PathEscapes),
            (vec![file("/..", b"")], 0, ErrorKind::PathEscapes),
            (vec![dir("..")], 0, ErrorKind::PathEscapes),
            (vec![sym("a", "/etc"), file("a/passwd", b"root::0:0::/:/bin/sh\n")], 512, ErrorKind::ThroughSymlink),
            (vec![dir("d"), sym("d/a", "../.."), dir("d/a/b")], 1024, ErrorKind::ThroughSymlink),
            (vec![sym("a", "/etc"), hard("h", "a/shadow")], 512, ErrorKind::ThroughSymlink),
            (vec![sym("a", "/"), hard("h", "a"), file("h/etc/passwd", b"")], 1024, ErrorKind::ThroughSymlink),
            (vec![sym("a", "/etc"), pax(b'x', &record("path", b"./a//passwd")), file("x", b"")], 1536, ErrorKind::ThroughSymlink),
            (vec![sym("a", "/etc"), sym("a/b", "c")], 512, ErrorKind::ThroughSymlink),
            (vec![hard("h", "../etc/shadow")], 0, ErrorKind::LinkEscapes),
            (vec![hard("h", "")], 0, ErrorKind::EmptyLinkTarget),
            (vec![hard("h", "./")], 0, ErrorKind::EmptyLinkTarget),
            (vec![sym("s", "")], 0, ErrorKind::EmptyLinkTarget),
            (vec![file("", b"")], 0, ErrorKind::EmptyPath),
            (vec![file("./", b"")], 0, ErrorKind::EmptyPath),
            (vec![sym("/", "x")], 0, ErrorKind::EmptyPath),
            (vec![pax(b'x', &record("path", b"a\0b")), file("x", b"")], 1024, ErrorKind::HasNul),
            (vec![pax(b'x', &record("linkpath", b"a\0b")), sym("x", "y")], 1024, ErrorKind::HasNul),
            (vec![pax(b'x', &record("path", &[b'a'; PATH_BYTES])), file("x", b"")], 0, ErrorKind::NameTooLong),
            (vec![longest.clone(), file("x", b""), pax(b'x', &record("path", &[b'a'; PATH_BYTES + 100])), file("y", b"")], longest.len() as u64 + 512, ErrorKind::NameTooLong),
            (vec![pax(b'x', &record("path", "a/".repeat(600).as_bytes())), file("x", b"")], 0, ErrorKind::NameTooLong),
        ];
        for (i, (members, offset, kind)) in cases.into_iter().enumerate() {
            assert_eq!(refused(&archive(&members)), (offset, kind), "case {i}");
        }
        // A symlink may point anywhere; an absolute path is taken from the root.
        let (r, mem) = run(&archive(&[sym("up", "../../../.."), file("/etc/x", b"x"), dir("/")]));
        assert!(r.is_ok());
        assert_eq!(mem.get("up").unwrap().node, Node::Symlink(b"../../../..".to_vec()));
        assert_eq!(mem.file("etc/x"), Some(&b"x"[..]));
        // The longest path fits.
        let long = [b'a'; PATH_BYTES - 1];
        let (r, mem) = run(&archive(&[pax(b'x', &record("path", &long)), file("x", b"")]));
        assert!(r.is_ok());
        assert!(mem.map.contains_key(&long[..]));
    }

    #[test]
    fn symlink_table_is_bounded() {
        let sym = |n: String| member(link_header(n.as_bytes(), b'2', b"t"), b"");
        let mut members: Vec<Vec<u8>> = (0..MAX_SYMLINKS).map(|i| sym(format!("s{i}"))).collect();
        // Replacing one frees its slot.
        members.push(file("s0", b""));
        members.push(sym("another".into()));
        members.push(sym("one too many".into()));
        let a = archive(&members);
        assert_eq!(refused(&a), ((MAX_SYMLINKS as u64 + 2) * 512, ErrorKind::TooManySymlinks));
        // The pool of their paths is bounded too.
        let members: Vec<Vec<u8>> = (0..MAX_SYMLINKS)
            .map(|i| {
                let name = format!("{i:03}{}", "p".repeat(200));
                [pax(b'x', &record("path", name.as_bytes())), member(link_header(b"x", b'2', b"t"), b"")].concat()
            })
            .collect();
        let fits = SYMLINK_POOL_BYTES / 203;
        assert_eq!(refused(&archive(&members)), (fits as u64 * 1536 + 1024, ErrorKind::TooManySymlinks));
        assert!(ErrorKind::TooManySymlinks.describe().contains("64") && MAX_SYMLINKS == 64 && SYMLINK_POOL_BYTES == 8192);
        assert!(ErrorKind::NameTooLong.describe().contains("1023") && PATH_BYTES == 1024);
    }

    #[test]
    fn hostile_types_and_headers() {
        let typed = |t: u8| member(header(b"node", t, 0), b"");
        let with = |f: (usize, usize), v: &[u8]| {
            let mut h = header(b"f", b'0', 0);
            put(&mut h, f, v);
            seal(&mut h);
            member(h, b"")
        };
        let mut bad_sum = header(b"f", b'0', 0);
        bad_sum[0] ^= 1;
        let mut bad_sum_field = header(b"f", b'0', 0);
        put(&mut bad_sum_field, CHKSUM, b"zz");
        let mut v7 = header(b"f", b'0', 0);
        put(&mut v7, MAGIC, b"");
        seal(&mut v7);
        let ok = file("ok", b"");
        let cases: Vec<(Vec<Vec<u8>>, u64, ErrorKind)> = vec![
            (vec![ok.clone(), typed(b'3')], 512, ErrorKind::DeviceNode),
            (vec![typed(b'4')], 0, ErrorKind::DeviceNode),
            (vec![pax(b'x', &record("path", b"fifo")), typed(b'6')], 1024, ErrorKind::DeviceNode),
            (vec![typed(b'V')], 0, ErrorKind::UnknownType(b'V')),
            (vec![typed(b'D')], 0, ErrorKind::UnknownType(b'D')),
            (vec![typed(b'S')], 0, ErrorKind::Sparse),
            (vec![pax(b'x', &record("GNU.sparse.major", b"1")), file("x", b"")], 0, ErrorKind::Sparse),
            (vec![member(header(b"d", b'5', 3), b"abc")], 0, ErrorKind::UnexpectedData),
            (vec![ok.clone(), member(bad_sum, b"")], 512, ErrorKind::BadChecksum),
            (vec![member(bad_sum_field, b"")], 0, ErrorKind::BadField(Field::Checksum)),
            (vec![member(v7, b"")], 0, ErrorKind::NotUstar),
            (vec![ok.clone(), with(SIZE, b"0000001x000\0")], 512, ErrorKind::BadField(Field::Size)),
            (vec![with(SIZE, b"-1")], 0, ErrorKind::BadField(Field::Size)),
            (vec![with(SIZE, &[0xff; 12])], 0, ErrorKind::BadField(Field::Size)),
            (vec![with(SIZE, &[0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])], 0, ErrorKind::SizeTooLarge),
            (vec![with(SIZE, &[0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])], 0, ErrorKind::SizeTooLarge),
            (vec![with(MODE, b"0644x")], 0, ErrorKind::BadField(Field::Mode)),
            (vec![with(UID, b"12345678")], 0, ErrorKind::BadField(Field::Uid)),
            (vec![with(UID, &[0x80, 0, 0, 1, 0, 0, 0, 0])], 0, ErrorKind::BadField(Field::Uid)),
            (vec![with(GID, b"8")], 0, ErrorKind::BadField(Field::Gid)),
            (vec![with(MTIME, b"1 2")], 0, ErrorKind::BadField(Field::Mtime)),
            (vec![pax(b'x', &record("size", b"18446744073709551616")), file("x", b"")], 0, ErrorKind::SizeTooLarge),
            (vec![pax(b'x', &record("size", b"18446744073709551615")), file("x", b"")], 0, ErrorKind::SizeTooLarge),
            (vec![pax(b'x', &record("size", b"12k")), file("x", b"")], 0, ErrorKind::BadPaxValue),
            (vec![pax(b'x', &record("uid", b"4294967296")), file("x", b"")], 0, ErrorKind::BadPaxValue),
            (vec![pax(b'x', &record("gid", b"-1")), file("x", b"")], 0, ErrorKind::BadPaxValue),
            (vec![pax(b'x', &record("mtime", b"1.")), file("x", b"")], 0, ErrorKind::BadPaxValue),
            (vec![pax(b'x', &record("mtime", b"--1")), file("x", b"")], 0, ErrorKind::BadPaxValue),
            (vec![pax(b'g', &record("path", b"x")), file("x", b"")], 0, ErrorKind::GlobalPath),
            (vec![ok.clone(), pax(b'g', &record("size", b"1")), file("x", b"")], 512, ErrorKind::GlobalPath),
        ];
        for (i, (members, offset, kind)) in cases.into_iter().enumerate() {
            assert_eq!(refused(&archive(&members)), (offset, kind), "case {i}");
        }
    }

    #[test]
    fn malformed_pax_records() {
        let records: [&[u8]; 14] = [
            b"30 path=abc\n",        // length too large: the data ends inside it
            b"10 path=abc\n",        // length too small: '\n' expected where 'c' is
            b"11 path=abc\n",        // off by one
            b"13 path=abc\n",        // off by one the other way
            b"12 pathabc\n\n",       // no '='
            b"12 =pathabc\n",        // empty key
            b"x2 path=abc\n",        // not a number
            b" 12 path=abc\n",       // leading space
            b"12path=abc\n",         // no space
            b"0 \n",                 // length 0
            b"3 \n\n",               // too short for "k=\n"
            b"99999999999999999999999 path=a\n", // overflows
            b"12 path=abc\n\0x",     // padding with something in it
            b"12 path=abc\n7 a=b\n", // second record cut short
        ];
        for (i, r) in records.iter().enumerate() {
            let a = archive(&[file("ok", b""), pax(b'x', r), file("x", b"")]);
            assert_eq!(refused(&a), (512, ErrorKind::BadPaxRecord), "record {i}: {:?}", String::from_utf8_lossy(r));
        }
        // Well-formed: values with '=' and newlines, NUL padding after the records.
        let a = archive(&[pax(b'x', b"17 path=a=b\nc\nd/\n\0\0\0"), file("x", b"")]);
        let (r, mem) = run(&a);
        assert!(r.is_ok(), "{r:?}");
        assert!(mem.map.contains_key(&b"a=b\nc\nd"[..]));
    }

    #[test]
    fn truncation() {
        let a = archive(&[file("a", b""), file("big", &[7u8; 1000]), file("c", b"")]);
        // Cut inside the second header, inside the data, inside the padding, at the data's end.
        for (cut, offset) in [(512 + 100, 512), (1024 + 600, 512), (1024 + 1000, 512), (1024 + 1020, 512), (512, 512)] {
            let kind = if cut == 512 { ErrorKind::MissingEnd } else { ErrorKind::Truncated };
            assert_eq!(refused(&a[..cut]), (offset, kind), "cut at {cut}");
        }
        // Inside a pax header's data, inside the header after it, inside that entry's data.
        let a = archive(&[pax(b'x', &record("path", b"p")), file("big", &[7u8; 1000])]);
        assert_eq!(refused(&a[..700]), (0, ErrorKind::Truncated));
        assert_eq!(refused(&a[..1024 + 300]), (1024, ErrorKind::Truncated));
        assert_eq!(refused(&a[..1536 + 300]), (1024, ErrorKind::Truncated));
        // A truncated file is closed.
        let (_, mem) = run(&a[..1536 + 300]);
        assert_eq!(mem.closes, 1);
        assert_eq!(mem.file("p").map(|d| d.len()), Some(300));
        // A GNU long name cut short.
        let mut l = header(b"././@LongLink", b'L', 200);
        put(&mut l, MAGIC, b"ustar ");
        h_version(&mut l);
        let a = member(l, &[b'n'; 200]);
        assert_eq!(refused(&a[..600]), (0, ErrorKind::Truncated));
        assert_eq!(refused(&a), (0, ErrorKind::ExtendedHeaderAtEnd));
        let mut l = header(b"././@LongLink", b'L', 2000);
        put(&mut l, MAGIC, b"ustar ");
        h_version(&mut l);
        assert_eq!(refused(&archive(&[member(l, &[b'n'; 2000])])), (0, ErrorKind::NameTooLong));
        let mut l = header(b"././@LongLink", b'L', 4);
        put(&mut l, MAGIC, b"ustar ");
        h_version(&mut l);
        assert_eq!(refused(&archive(&[member(l, b"a\0b\0"), file("x", b"")])), (0, ErrorKind::HasNul));
    }

    #[test]
    fn read_and_target_errors() {
        struct Failing<'a>(&'a [u8]);
        impl Source for Failing<'_> {
            fn read(&mut self, buf: &mut [u8]) -> Result<usize, Errno> {
                if self.0.is_empty() {
                    return Err(Errno::EIO);
                }
                (&mut self.0).read(buf)
            }
        }
        let a = archive(&[file("a", b"aaa"), file("b", &[1; 700])]);
        let mut mem = Mem::default();
        assert_eq!(extract(&mut Failing(&a[..1536 + 100]), &mut mem), Err(TarError { offset: 1636, kind: ErrorKind::Read(Errno::EIO) }));
        assert_eq!(mem.closes, 2);
        assert!(mem.current.is_none());
        let mut mem = Mem::default();
        assert_eq!(extract(&mut Failing(&a[..1024]), &mut mem), Err(TarError { offset: 1024, kind: ErrorKind::Read(Errno::EIO) }));

        for (op, e, kind) in [
            ("write", Errno::ENOSPC, ErrorKind::Target(Op::Write, Errno::ENOSPC)),
            ("create", Errno::EROFS, ErrorKind::Target(Op::Create, Errno::EROFS)),
            ("set_meta", Errno::EPERM, ErrorKind::Target(Op::SetMeta, Errno::EPERM)),
        ] {
            let mut mem = Mem { fail: Some((op, e)), ..Mem::default() };
            let r = extract(&mut &a[..], &mut mem);
            assert_eq!(r, Err(TarError { offset: 0, kind }));
            assert_eq!(r.unwrap_err().kind.errno(), Some(e));
            assert!(mem.current.is_none(), "the file is closed");
        }
        // A file in the way of a parent directory.
        let a = archive(&[file("a", b""), file("a/b", b"")]);
        assert_eq!(refused(&a), (512, ErrorKind::Target(Op::Create, Errno::ENOTDIR)));
        let mut mem = Mem { fail: Some(("mkdir", Errno::EACCES)), ..Mem::default() };
        let r = extract(&mut &archive(&[file("p/q", b"")])[..], &mut mem);
        assert_eq!(r, Err(TarError { offset: 0, kind: ErrorKind::Target(Op::MkdirParent, Errno::EACCES) }));
        // A non-empty directory in the way.
        let a = archive(&[file("d/f", b""), file("d", b"")]);
        assert_eq!(refused(&a), (512, ErrorKind::Target(Op::Remove, Errno::ENOTEMPTY)));
    }

    #[test]
    fn every_kind_is_described() {
        let kinds = [
            ErrorKind::Read(Errno::EIO),
            ErrorKind::Truncated,
            ErrorKind::MissingEnd,
            ErrorKind::LoneZeroBlock,
            ErrorKind::BadChecksum,
            ErrorKind::NotUstar,
            ErrorKind::BadField(Field::Mode),
            ErrorKind::SizeTooLarge,
            ErrorKind::BadPaxRecord,
            ErrorKind::BadPaxValue,
            ErrorKind::GlobalPath,
            ErrorKind::ExtendedHeaderAtEnd,
            ErrorKind::NameTooLong,
            ErrorKind::HasNul,
            ErrorKind::EmptyPath,
            ErrorKind::PathEscapes,
            ErrorKind::LinkEscapes,
            ErrorKind::EmptyLinkTarget,
            ErrorKind::ThroughSymlink,
            ErrorKind::DeviceNode,
            ErrorKind::Sparse,
            ErrorKind::UnknownType(b'V'),
            ErrorKind::UnexpectedData,
            ErrorKind::TooManySymlinks,
            ErrorKind::Target(Op::Remove, Errno::EBUSY),
        ];
        let mut seen = std::collections::HashSet::new();
        for k in kinds {
            assert!(seen.insert(k.describe()), "{k:?} shares its description");
        }
        assert_eq!(ErrorKind::PathEscapes.describe(), "path escapes the root");
    }

    // ---- Against GNU tar --------------------------------------------------------------------

    fn tmp(name: &str) -> StdPath {
        let d = std::env::temp_dir().join(format!("autoinit-tar-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn os(b: &[u8]) -> &std::ffi::OsStr {
        std::ffi::OsStr::from_bytes(b)
    }

    fn sh(cmd: &mut Command) -> Vec<u8> {
        let out = cmd.env("TZ", "UTC").env("LC_ALL", "C").output().unwrap();
        assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    }

    fn touch(p: &Path, t: i64) {
        sh(Command::new("touch").arg("-h").arg("-d").arg(format!("@{t}")).arg(p));
    }

    /// A tree with every kind of entry tar can hold here; `long` adds what only pax and GNU
    /// can: long and non-ASCII names, long link targets, times outside ustar's range.
    fn tree(root: &Path, long: bool) {
        use std::os::unix::fs::{PermissionsExt, symlink};
        let mut seed = 88172645463325252u64;
        let mut rand = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect()
        };
        let mk = |p: &[u8], data: &[u8], mode: u32, t: i64| {
            let p = root.join(os(p));
            std::fs::write(&p, data).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            touch(&p, t);
        };
        let mut dirs: Vec<(Vec<u8>, u32, i64)> = vec![
            (b"etc".to_vec(), 0o755, 1_600_000_000),
            (b"etc/ssh".to_vec(), 0o750, 1_600_000_001),
            (b"bin".to_vec(), 0o755, 1_600_000_002),
            (b"tmp".to_vec(), 0o1777, 1_600_000_003),
            (b"private".to_vec(), 0o700, 0),
            (b"empty dir".to_vec(), 0o2775, 1),
        ];
        if long {
            dirs.push(("d".repeat(120).into_bytes(), 0o755, 1_700_000_000));
            dirs.push((format!("{}/{}", "d".repeat(120), "e".repeat(90)).into_bytes(), 0o711, 1_700_000_001));
            dirs.push(("ünïcödé ☃".as_bytes().to_vec(), 0o755, 1_700_000_005));
        }
        for (d, _, _) in &dirs {
            std::fs::create_dir_all(root.join(os(d))).unwrap();
        }
        mk(b"etc/hosts", b"127.0.0.1 localhost\n", 0o644, 1_650_000_000);
        mk(b"etc/empty", b"", 0o600, 1_650_000_001);
        mk(b"etc/block", &rand(512), 0o640, 1_650_000_002);
        mk(b"etc/ssh/big", &rand(100_000), 0o400, 1_650_000_003);
        mk(b"bin/tool", &rand(1000), 0o4755, 1_650_000_004);
        mk(b"bin/group", &rand(1), 0o2711, 1_650_000_005);
        symlink("hosts", root.join("etc/link")).unwrap();
        touch(&root.join("etc/link"), 1_650_000_006);
        symlink("/etc/passwd", root.join("etc/abs")).unwrap();
        touch(&root.join("etc/abs"), 1_650_000_007);
        std::fs::hard_link(root.join("etc/hosts"), root.join("bin/hosts-too")).unwrap();
        if long {
            let deep = format!("{}/{}/{}", "d".repeat(120), "e".repeat(90), "f".repeat(100));
            mk(deep.as_bytes(), &rand(3000), 0o644, 1_700_000_002);
            mk("ünïcödé ☃/fïlé ✓.txt".as_bytes(), "ça va\n".as_bytes(), 0o644, 1_700_000_003);
            mk(b"future", b"2255", 0o644, 9_000_000_000);
            mk(b"past", b"1969", 0o644, -86_400);
            symlink(format!("../{deep}"), root.join("bin/long-link")).unwrap();
            touch(&root.join("bin/long-link"), 1_700_000_004);
            std::fs::hard_link(root.join(&deep), root.join("bin/long-hard")).unwrap();
            std::fs::hard_link(root.join("bin/tool"), root.join(format!("{}/tool", "d".repeat(120)))).unwrap();
        }
        // Directories last, deepest first: making entries in them changes their times.
        dirs.sort_by_key(|(d, _, _)| std::cmp::Reverse(d.len()));
        for (d, mode, t) in dirs {
            let p = root.join(os(&d));
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            touch(&p, t);
        }
    }

    /// One line of `tar -tv`: type, permissions, uid, gid, size, mtime, name, link target.
    #[derive(Debug)]
    struct Listed {
        kind: u8,
        perms: String,
        uid: u32,
        gid: u32,
        size: u64,
        mtime: i64,
        name: Vec<u8>,
        link: Option<Vec<u8>>,
    }

    fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146097 + doe - 719468
    }

    fn listing(tar: &Path) -> Vec<Listed> {
        let out = sh(Command::new("tar").args(["--numeric-owner", "--utc", "--full-time", "--quoting-style=literal", "-tvf"]).arg(tar));
        let mut v = Vec::new();
        for line in out.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let mut rest = line;
            let mut tok = || {
                while rest.first() == Some(&b' ') {
                    rest = &rest[1..];
                }
                let end = rest.iter().position(|&b| b == b' ').unwrap();
                let t = String::from_utf8(rest[..end].to_vec()).unwrap();
                rest = &rest[end..];
                t
            };
            let (perms, owner, size, date, time) = (tok(), tok(), tok(), tok(), tok());
            let name = rest.trim_ascii_start();
            let (uid, gid) = owner.split_once('/').unwrap();
            let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
            let t: Vec<i64> = time.split('.').next().unwrap().split(':').map(|x| x.parse().unwrap()).collect();
            let mtime = days_from_civil(d[0], d[1], d[2]) * 86400 + t[0] * 3600 + t[1] * 60 + t[2];
            let sep: &[u8] = match perms.as_bytes()[0] {
                b'l' => b" -> ",
                b'h' => b" link to ",
                _ => b"\0",
            };
            let (name, link) = match name.windows(sep.len()).position(|w| w == sep) {
                Some(i) => (&name[..i], Some(name[i + sep.len()..].to_vec())),
                None => (name, None),
            };
            v.push(Listed {
                kind: perms.as_bytes()[0],
                perms: perms[1..].to_string(),
                uid: uid.parse().unwrap(),
                gid: gid.parse().unwrap(),
                size: size.parse().unwrap(),
                mtime,
                name: name.to_vec(),
                link,
            });
        }
        v
    }

    fn perms(mode: u32) -> String {
        let bit = |m: u32, c: char| if mode & m != 0 { c } else { '-' };
        let special = |x: u32, s: u32, lower: char, upper: char| match (mode & x != 0, mode & s != 0) {
            (true, true) => lower,
            (false, true) => upper,
            (true, false) => 'x',
            (false, false) => '-',
        };
        [
            bit(0o400, 'r'),
            bit(0o200, 'w'),
            special(0o100, 0o4000, 's', 'S'),
            bit(0o040, 'r'),
            bit(0o020, 'w'),
            special(0o010, 0o2000, 's', 'S'),
            bit(0o004, 'r'),
            bit(0o002, 'w'),
            special(0o001, 0o1000, 't', 'T'),
        ]
        .iter()
        .collect()
    }

    fn normal(name: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in name.split(|&b| b == b'/').filter(|c| !c.is_empty() && *c != b".") {
            if !out.is_empty() {
                out.push(b'/');
            }
            out.extend_from_slice(c);
        }
        out
    }

    fn against_gnu_tar(format: &str, owner: &str, long: bool) {
        let dir = tmp(&format!("{format}-{owner}"));
        let src = dir.join("src");
        std::fs::create_dir(&src).unwrap();
        tree(&src, long);
        let tar = dir.join("out.tar");
        sh(Command::new("tar")
            .arg(format!("--format={format}"))
            .arg(format!("--owner={owner}"))
            .arg("--group=1000")
            .args(["--numeric-owner", "--sort=name", "-cf"])
            .arg(&tar)
            .arg("-C")
            .arg(&src)
            .arg("."));
        let bytes = std::fs::read(&tar).unwrap();
        let (r, mem) = run(&bytes);
        let stats = r.unwrap_or_else(|e| panic!("{format}: offset {}: {}", e.offset, e.kind.describe()));
        let list = listing(&tar);
        let mut expected = Stats::default();
        for l in &list {
            let name = normal(&l.name);
            if name.is_empty() {
                continue;
            }
            let what = format!("{format}: {}", String::from_utf8_lossy(&name));
            let e = mem.map.get(&name).unwrap_or_else(|| panic!("{what}: missing"));
            match l.kind {
                b'h' => {
                    expected.hardlinks += 1;
                    assert_eq!(e.link_of.as_deref(), Some(&normal(l.link.as_ref().unwrap())[..]), "{what}");
                    continue;
                }
                b'd' => {
                    expected.dirs += 1;
                    assert_eq!(e.node, Node::Dir, "{what}");
                }
                b'l' => {
                    expected.symlinks += 1;
                    assert_eq!(e.node, Node::Symlink(l.link.clone().unwrap()), "{what}");
                }
                b'-' => {
                    expected.files += 1;
                    expected.bytes += l.size;
                    let on_disk = std::fs::read(src.join(os(&name))).unwrap();
                    assert_eq!(e.node, Node::File(on_disk), "{what}");
                }
                k => panic!("{what}: type {}", k as char),
            }
            let m = e.meta.clone().unwrap_or_else(|| panic!("{what}: no metadata"));
            if l.kind != b'l' {
                assert_eq!(perms(m.mode), l.perms, "{what}: mode {:o}", m.mode);
            }
            assert_eq!((m.uid, m.gid, m.mtime), (l.uid, l.gid, l.mtime), "{what}");
        }
        assert_eq!(stats, expected, "{format}");
        assert_eq!(mem.map.len(), list.len() - 1, "{format}: {:?}", mem.map.keys());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ustar_from_gnu_tar() {
        against_gnu_tar("ustar", "1000", false);
    }

    #[test]
    fn pax_from_gnu_tar() {
        against_gnu_tar("pax", "1000", true);
        against_gnu_tar("pax", "3000000000", true);
    }

    #[test]
    fn gnu_from_gnu_tar() {
        against_gnu_tar("gnu", "1000", true);
        against_gnu_tar("gnu", "3000000000", true);
    }

    #[test]
    fn offsets_are_the_blocks_tar_tvr_shows() {
        let dir = tmp("fifo");
        let src = dir.join("src");
        std::fs::create_dir(&src).unwrap();
        let long = "n".repeat(150);
        std::fs::write(src.join(&long), b"x").unwrap();
        sh(Command::new("mkfifo").arg(src.join(format!("{long}-fifo"))));
        let tar = dir.join("fifo.tar");
        sh(Command::new("tar").args(["--format=pax", "--sort=name", "-cf"]).arg(&tar).arg("-C").arg(&src).arg("."));
        let out = sh(Command::new("tar").arg("-tvRf").arg(&tar));
        let line = out.split(|&b| b == b'\n').find(|l| l.ends_with(b"-fifo")).unwrap();
        let block: u64 = std::str::from_utf8(&line[6..line.iter().position(|&b| b == b':').unwrap()]).unwrap().parse().unwrap();
        assert_eq!(refused(&std::fs::read(&tar).unwrap()), (block * 512, ErrorKind::DeviceNode));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // ---- Never a panic ----------------------------------------------------------------------

    #[test]
    fn random_and_mutated_archives_never_panic() {
        let mut seed = 0x2545f4914f6cdd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let dir = tmp("fuzz");
        let src = dir.join("src");
        std::fs::create_dir(&src).unwrap();
        tree(&src, true);
        // Small seeds keep each run short.
        std::fs::remove_file(src.join("etc/ssh/big")).unwrap();
        let mut seeds: Vec<Vec<u8>> = Vec::new();
        for format in ["pax", "gnu", "ustar"] {
            let t = dir.join(format!("{format}.tar"));
            let mut cmd = Command::new("tar");
            cmd.arg(format!("--format={format}")).arg("-cf").arg(&t).arg("-C").arg(&src);
            // ustar cannot hold the long names: only the short part.
            if format == "ustar" {
                cmd.args(["etc", "bin/tool"]);
            } else {
                cmd.arg(".");
            }
            sh(&mut cmd);
            seeds.push(std::fs::read(&t).unwrap());
        }
        std::fs::remove_dir_all(&dir).unwrap();
        let sym = |n: &str, t: &str| member(link_header(n.as_bytes(), b'2', t.as_bytes()), b"");
        seeds.push(archive(&[
            sym("a", "/etc"),
            member(link_header(b"h", b'1', b"a"), b""),
            pax(b'x', &[record("path", b"a/b"), record("size", b"3"), record("mtime", b"-1.5")].concat()),
            file("x", b"abc"),
            pax(b'g', &record("uid", b"5")),
            file("h/x", b"abc"),
        ]));

        let mut outcomes = HashMap::new();
        for i in 0..6000 {
            let mut a = seeds[(next() % seeds.len() as u64) as usize].clone();
            match i % 4 {
                // Random bytes with a valid header checksum now and then.
                0 => {
                    let n = (next() % 4096) as usize;
                    a = (0..n).map(|_| next() as u8).collect();
                    if a.len() >= BLOCK && next() % 2 == 0 {
                        put((&mut a[..BLOCK]).try_into().unwrap(), MAGIC, b"ustar\0");
                        seal((&mut a[..BLOCK]).try_into().unwrap());
                    }
                }
                // Flipped bytes in one header, checksum fixed so that the fields get parsed.
                1 => {
                    let blocks = a.len() / BLOCK;
                    let b = (next() % blocks as u64) as usize;
                    let h: &mut [u8; BLOCK] = (&mut a[b * BLOCK..(b + 1) * BLOCK]).try_into().unwrap();
                    for _ in 0..1 + next() % 6 {
                        let at = (next() % BLOCK as u64) as usize;
                        h[at] = if next() % 2 == 0 { next() as u8 } else { *b"0/.\0 x7\xff".get((next() % 8) as usize).unwrap() };
                    }
                    if next() % 4 != 0 {
                        seal(h);
                    }
                }
                // Flipped bytes anywhere, then cut anywhere.
                2 => {
                    for _ in 0..1 + next() % 4 {
                        let at = (next() % a.len() as u64) as usize;
                        a[at] ^= 1 << (next() % 8);
                    }
                    let cut = (next() % (a.len() as u64 + 1)) as usize;
                    a.truncate(cut);
                }
                // Blocks duplicated or dropped.
                _ => {
                    let blocks = a.len() / BLOCK;
                    let b = (next() % blocks as u64) as usize;
                    let block = a[b * BLOCK..(b + 1) * BLOCK].to_vec();
                    if next() % 2 == 0 {
                        a.splice(b * BLOCK..b * BLOCK, block);
                    } else {
                        a.drain(b * BLOCK..(b + 1) * BLOCK);
                    }
                }
            }
            let (r, _) = run(&a);
            *outcomes.entry(r.map(|_| "ok").unwrap_or_else(|e| e.kind.describe())).or_insert(0) += 1;
        }
        // The mutations reach deep into the parser, not just the checksum.
        for k in ["ok", "header checksum mismatch", "the archive is truncated", "malformed pax record"] {
            assert!(outcomes.contains_key(k), "{k} never seen: {outcomes:?}");
        }
        assert!(outcomes.len() >= 12, "{outcomes:?}");
    }
}
