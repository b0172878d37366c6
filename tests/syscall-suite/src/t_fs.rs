//! Files and directories: every wrapper of syscall::fs, in the scratch directory.

use crate::harness::{B, T};
use crate::util::{self, read_file, write_file};
use syscall::fs::{self, mode, AtFlags, Dirents, OFlags, RenameFlags, Seek, StatxMask};
use syscall::process;
use syscall::{AsFd, BorrowedFd, Errno};

const CWD: BorrowedFd<'static> = BorrowedFd::CWD;

pub fn run(t: &mut T) {
    if t.need("fs::setup_dir", fs::mkdirat(CWD, c"fs", 0o755)).is_none() {
        return;
    }
    let Some(dir) = t.need("fs::open_dir", fs::open(c"fs", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, 0)) else { return };
    let d = dir.as_fd();
    open_read_write(t, d);
    seek_truncate(t, d);
    sendfile(t, d);
    dirs(t, d);
    links(t, d);
    unlink_rename(t, d);
    stat_chmod_chown(t, d);
    fchmod_fcntl(t, d);
    nodes_sync(t, d);
}

fn open_read_write(t: &mut T, d: BorrowedFd<'_>) {
    let f = t.ok("fs::openat_creat", fs::openat(d, c"a.txt", OFlags::WRONLY | OFlags::CREAT | OFlags::EXCL | OFlags::CLOEXEC, 0o644));
    t.err("fs::openat_excl_eexist", fs::openat(d, c"a.txt", OFlags::WRONLY | OFlags::CREAT | OFlags::EXCL, 0o644), Errno::EEXIST);
    t.err("fs::openat_enoent", fs::openat(d, c"missing", OFlags::RDONLY, 0), Errno::ENOENT);
    t.err("fs::openat_enotdir", fs::openat(d, c"a.txt/x", OFlags::RDONLY, 0), Errno::ENOTDIR);
    t.err("fs::openat_directory_on_file", fs::openat(d, c"a.txt", OFlags::RDONLY | OFlags::DIRECTORY, 0), Errno::ENOTDIR);
    t.err("fs::openat_ebadf", fs::openat(BorrowedFd::raw_static(9999), c"a.txt", OFlags::RDONLY, 0), Errno::EBADF);
    let Some(f) = f else { return };
    t.check("fs::openat_cloexec", util::fd_flags(&f).is_some_and(|fl| fl & util::FDINFO_CLOEXEC != 0),
            format_args!("O_CLOEXEC not in fdinfo flags {:?}", util::fd_flags(&f)));
    t.eq("fs::write", fs::write(&f, b"hello "), Ok(6));
    t.eq("fs::write_all", fs::write_all(&f, b"world\n"), Ok(()));
    t.eq("fs::write_all_empty", fs::write_all(&f, b""), Ok(()));
    t.err("fs::write_ebadf", fs::write(BorrowedFd::raw_static(9999), b"x"), Errno::EBADF);
    t.eq("fs::close_written", fs::close(f), Ok(()));

    let Some(f) = t.need("fs::open_ro", fs::openat(d, c"a.txt", OFlags::RDONLY | OFlags::CLOEXEC, 0)) else { return };
    t.err("fs::write_on_rdonly", fs::write(&f, b"x"), Errno::EBADF);
    let mut buf = [0u8; 64];
    let n = fs::read(&f, &mut buf[..5]);
    t.eq("fs::read", (n, B(&buf[..5])), (Ok(5), B(b"hello")));
    let n = fs::read_full(&f, &mut buf);
    t.eq("fs::read_full_to_eof", n.map(|n| B(&buf[..n])), Ok(B(b" world\n")));
    t.eq("fs::read_eof", fs::read(&f, &mut buf), Ok(0));
    t.eq("fs::read_full_eof", fs::read_full(&f, &mut buf), Ok(0));
    t.err("fs::read_ebadf", fs::read(BorrowedFd::raw_static(9999), &mut buf), Errno::EBADF);
    t.err("fs::read_eisdir", fs::read(d, &mut buf), Errno::EISDIR);
    // read_full stops when the buffer is full, not at end of file.
    let _ = fs::lseek(&f, Seek::Set(0));
    let mut small = [0u8; 4];
    t.eq("fs::read_full_fills", (fs::read_full(&f, &mut small), small), (Ok(4), *b"hell"));
    // open() is openat relative to the working directory.
    let g = fs::open(c"fs/a.txt", OFlags::RDONLY | OFlags::CLOEXEC, 0);
    let same = match (&g, fs::fstatx(&f, StatxMask::INO)) {
        (Ok(g), Ok(sf)) => fs::fstatx(g, StatxMask::INO).map(|sg| sg.stx_ino == sf.stx_ino).unwrap_or(false),
        _ => false,
    };
    t.check("fs::open", same, format_args!("open(\"fs/a.txt\") gave {:?} (or another inode)", g.as_ref().map(|g| g.raw())));
}

fn seek_truncate(t: &mut T, d: BorrowedFd<'_>) {
    let Some(f) = t.need("fs::open_rw", fs::openat(d, c"a.txt", OFlags::RDWR | OFlags::CLOEXEC, 0)) else { return };
    let mut buf = [0u8; 16];
    t.eq("fs::lseek_set", fs::lseek(&f, Seek::Set(6)), Ok(6));
    let n = fs::read(&f, &mut buf[..5]);
    t.eq("fs::lseek_set_read", (n, B(&buf[..5])), (Ok(5), B(b"world")));
    t.eq("fs::lseek_cur", fs::lseek(&f, Seek::Cur(-5)), Ok(6));
    t.eq("fs::lseek_end", fs::lseek(&f, Seek::End(-1)), Ok(11));
    let n = fs::read(&f, &mut buf);
    t.eq("fs::lseek_end_read", (n, B(&buf[..1])), (Ok(1), B(b"\n")));
    t.err("fs::lseek_negative", fs::lseek(&f, Seek::Cur(-100)), Errno::EINVAL);
    // Past 4 GiB: the 64-bit offset must survive the hi/lo split of _llseek on 32-bit.
    let big: u64 = (5 << 30) + 7;
    t.eq("fs::lseek_above_4g", fs::lseek(&f, Seek::Set(big)), Ok(big));
    t.eq("fs::lseek_cur_above_4g", fs::lseek(&f, Seek::Cur(1 << 32)), Ok(big + (1 << 32)));
    if let Some((r, _w)) = t.need("fs::pipe", syscall::io::pipe2(true, false)) {
        t.err("fs::lseek_pipe_espipe", fs::lseek(&r, Seek::Cur(0)), Errno::ESPIPE);
        t.err("fs::ftruncate_pipe_einval", fs::ftruncate(&r, 0), Errno::EINVAL);
    }

    t.eq("fs::ftruncate_shrink", fs::ftruncate(&f, 3), Ok(()));
    t.eq("fs::ftruncate_size", fs::fstatx(&f, StatxMask::SIZE).map(|s| s.stx_size), Ok(3));
    // A sparse length above 4 GiB: the 64-bit length must survive the register pair of
    // ftruncate64 on 32-bit arches (arm aligns it to an even pair).
    let big: u64 = (5 << 30) + 3;
    t.eq("fs::ftruncate_above_4g", fs::ftruncate(&f, big), Ok(()));
    t.eq("fs::ftruncate_above_4g_size", fs::fstatx(&f, StatxMask::SIZE).map(|s| s.stx_size), Ok(big));
    t.eq("fs::lseek_end_above_4g", fs::lseek(&f, Seek::End(0)), Ok(big));
    let _ = fs::ftruncate(&f, 3);
    let _ = fs::lseek(&f, Seek::Set(0));
    let n = fs::read(&f, &mut buf);
    t.eq("fs::ftruncate_content", n.map(|n| B(&buf[..n])), Ok(B(b"hel")));
    if let Some(ro) = t.need("fs::open_ro2", fs::openat(d, c"a.txt", OFlags::RDONLY | OFlags::CLOEXEC, 0)) {
        t.err("fs::ftruncate_rdonly_einval", fs::ftruncate(&ro, 0), Errno::EINVAL);
    }
}

fn sendfile(t: &mut T, d: BorrowedFd<'_>) {
    let _ = write_file(d, c"src", b"0123456789");
    let src = fs::openat(d, c"src", OFlags::RDONLY | OFlags::CLOEXEC, 0);
    let dst = fs::openat(d, c"dst", OFlags::WRONLY | OFlags::CREAT | OFlags::CLOEXEC, 0o644);
    let (Some(src), Some(dst)) = (t.need("fs::sendfile_src", src), t.need("fs::sendfile_dst", dst)) else { return };
    t.eq("fs::sendfile", fs::sendfile(&dst, &src, 4), Ok(4));
    t.eq("fs::sendfile_advances_input", fs::lseek(&src, Seek::Cur(0)), Ok(4));
    t.eq("fs::sendfile_rest", fs::sendfile(&dst, &src, 100), Ok(6));
    t.eq("fs::sendfile_eof", fs::sendfile(&dst, &src, 100), Ok(0));
    t.err("fs::sendfile_ebadf", fs::sendfile(&dst, BorrowedFd::raw_static(9999), 1), Errno::EBADF);
    let mut buf = [0u8; 32];
    t.eq("fs::sendfile_content", read_file(d, c"dst", &mut buf).map(B), Ok(B(b"0123456789")));
}

fn dirs(t: &mut T, d: BorrowedFd<'_>) {
    t.eq("fs::mkdirat", fs::mkdirat(d, c"list", 0o750), Ok(()));
    t.err("fs::mkdirat_eexist", fs::mkdirat(d, c"list", 0o750), Errno::EEXIST);
    t.err("fs::mkdirat_enoent", fs::mkdirat(d, c"nope/sub", 0o750), Errno::ENOENT);
    t.eq("fs::mkdirat_mode", fs::statx(d, c"list", AtFlags::EMPTY, StatxMask::TYPE | StatxMask::MODE).map(|s| s.stx_mode as u32),
         Ok(mode::IFDIR | 0o750));
    let _ = write_file(d, c"list/f1", b"1");
    let _ = fs::mkdirat(d, c"list/d1", 0o755);
    let _ = fs::symlinkat(c"f1", d, c"list/l1");
    let Some(ld) = t.need("fs::open_list", fs::openat(d, c"list", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, 0)) else { return };
    let f1_ino = fs::statx(d, c"list/f1", AtFlags::EMPTY, StatxMask::INO).map(|s| s.stx_ino).unwrap_or(0);

    // Walk with a small buffer so that several getdents64 calls are needed.
    let mut buf = [0u8; 64];
    let (mut dot, mut dotdot, mut f1, mut d1, mut l1, mut other, mut calls) = (0, 0, 0, 0, 0, 0, 0);
    let mut ino_ok = false;
    loop {
        let n = match fs::getdents64(&ld, &mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                t.fail("fs::getdents64", format_args!("failed with {:?}", crate::harness::En(e)));
                return;
            }
        };
        calls += 1;
        for e in Dirents::new(&buf[..n]) {
            match (e.name.to_bytes(), e.kind) {
                (b".", fs::DT_DIR) => dot += 1,
                (b"..", fs::DT_DIR) => dotdot += 1,
                (b"f1", fs::DT_REG) => {
                    f1 += 1;
                    ino_ok = e.ino == f1_ino;
                }
                (b"d1", fs::DT_DIR) => d1 += 1,
                (b"l1", fs::DT_LNK) => l1 += 1,
                _ => other += 1,
            }
        }
        if calls > 20 {
            break;
        }
    }
    t.eq("fs::getdents64_entries", (dot, dotdot, f1, d1, l1, other), (1, 1, 1, 1, 1, 0));
    t.check("fs::getdents64_multiple_calls", calls >= 2, format_args!("a 64-byte buffer took {calls} calls for 5 entries"));
    t.check("fs::dirent_ino", ino_ok, format_args!("d_ino of f1 differs from statx ino {f1_ino}"));
    t.eq("fs::getdents64_end", fs::getdents64(&ld, &mut buf), Ok(0));
    // Rewound, a buffer too small for one record is EINVAL.
    let _ = fs::lseek(&ld, Seek::Set(0));
    t.err("fs::getdents64_buffer_too_small", fs::getdents64(&ld, &mut buf[..8]), Errno::EINVAL);
    if let Some(f) = t.need("fs::open_f1", fs::openat(d, c"list/f1", OFlags::RDONLY | OFlags::CLOEXEC, 0)) {
        t.err("fs::getdents64_enotdir", fs::getdents64(&f, &mut buf), Errno::ENOTDIR);
    }
    // The iterator stops at a short or corrupt record instead of reading past it.
    let mut rec = [0u8; 32];
    rec[16] = 24; // reclen
    rec[18] = fs::DT_REG;
    rec[19] = b'x';
    t.eq("fs::dirents_one", Dirents::new(&rec[..24]).map(|e| e.name.to_bytes().len()).sum::<usize>(), 1);
    t.eq("fs::dirents_truncated", Dirents::new(&rec[..10]).count(), 0);
    t.eq("fs::dirents_reclen_past_end", Dirents::new(&rec[..20]).count(), 0);
    rec[16] = 0;
    t.eq("fs::dirents_reclen_zero", Dirents::new(&rec).count(), 0);
    rec[16] = 24;
    rec[19..24].fill(b'y'); // no NUL inside the record
    t.eq("fs::dirents_no_nul", Dirents::new(&rec[..24]).count(), 0);
}

fn links(t: &mut T, d: BorrowedFd<'_>) {
    t.eq("fs::symlinkat", fs::symlinkat(c"a.txt", d, c"link"), Ok(()));
    t.err("fs::symlinkat_eexist", fs::symlinkat(c"b", d, c"link"), Errno::EEXIST);
    let mut buf = [0u8; 64];
    t.eq("fs::readlinkat", fs::readlinkat(d, c"link", &mut buf).map(B), Ok(B(b"a.txt")));
    // A buffer exactly as long as the target may hold a truncated target: ENAMETOOLONG.
    let mut five = [0u8; 5];
    t.err("fs::readlinkat_enametoolong", fs::readlinkat(d, c"link", &mut five).map(B), Errno::ENAMETOOLONG);
    let mut six = [0u8; 6];
    t.eq("fs::readlinkat_exact_plus_one", fs::readlinkat(d, c"link", &mut six).map(B), Ok(B(b"a.txt")));
    t.err("fs::readlinkat_not_link", fs::readlinkat(d, c"a.txt", &mut buf).map(B), Errno::EINVAL);
    t.err("fs::readlinkat_enoent", fs::readlinkat(d, c"nolink", &mut buf).map(B), Errno::ENOENT);
    t.eq("fs::statx_nofollow", fs::statx(d, c"link", AtFlags::SYMLINK_NOFOLLOW, StatxMask::TYPE).map(|s| s.stx_mode as u32 & mode::IFMT),
         Ok(mode::IFLNK));
    t.eq("fs::statx_follow", fs::statx(d, c"link", AtFlags::EMPTY, StatxMask::TYPE).map(|s| s.stx_mode as u32 & mode::IFMT),
         Ok(mode::IFREG));
    // A dangling link.
    let _ = fs::symlinkat(c"nowhere", d, c"dangling");
    t.err("fs::statx_dangling", fs::statx(d, c"dangling", AtFlags::EMPTY, StatxMask::TYPE).map(|_| ()), Errno::ENOENT);
    t.err("fs::openat_nofollow_eloop", fs::openat(d, c"link", OFlags::RDONLY | OFlags::NOFOLLOW, 0), Errno::ELOOP);
    hard_links(t, d);
}

fn hard_links(t: &mut T, d: BorrowedFd<'_>) {
    // (inode, link count) of a name, not following a symlink.
    let st = |p: &core::ffi::CStr| {
        fs::statx(d, p, AtFlags::SYMLINK_NOFOLLOW, StatxMask::INO | StatxMask::NLINK).map(|s| (s.stx_ino, s.stx_nlink))
    };
    let _ = write_file(d, c"hard", b"one inode");
    t.eq("fs::linkat", fs::linkat(d, c"hard", d, c"hard2"), Ok(()));
    let (a, b) = (st(c"hard"), st(c"hard2"));
    t.eq("fs::linkat_nlink", (a.map(|s| s.1), b.map(|s| s.1)), (Ok(2), Ok(2)));
    t.check("fs::linkat_same_inode", a.is_ok() && a.map(|s| s.0) == b.map(|s| s.0),
            format_args!("inodes {:?} and {:?}", a.map(|s| s.0), b.map(|s| s.0)));
    let mut buf = [0u8; 16];
    t.eq("fs::linkat_content", read_file(d, c"hard2", &mut buf).map(B), Ok(B(b"one inode")));
    t.err("fs::linkat_eexist", fs::linkat(d, c"hard", d, c"hard2"), Errno::EEXIST);
    t.err("fs::linkat_enoent", fs::linkat(d, c"no-such-file", d, c"hard3"), Errno::ENOENT);
    t.err("fs::linkat_enoent_not_created", st(c"hard3").map(|_| ()), Errno::ENOENT);
    t.err("fs::linkat_dir_eperm", fs::linkat(d, c"list", d, c"list-hard"), Errno::EPERM);
    // Across directory fds: a third name in the working directory (the scratch dir).
    t.eq("fs::linkat_across_dirs", fs::linkat(d, c"hard", CWD, c"hard-top"), Ok(()));
    t.eq("fs::linkat_across_nlink", st(c"hard").map(|s| s.1), Ok(3));
    // Flags 0: a symlink at `old` is linked itself, not its target.
    t.eq("fs::linkat_symlink", fs::linkat(d, c"link", d, c"link-hard"), Ok(()));
    let ty = fs::statx(d, c"link-hard", AtFlags::SYMLINK_NOFOLLOW, StatxMask::TYPE).map(|s| s.stx_mode as u32 & mode::IFMT);
    t.eq("fs::linkat_symlink_not_followed", (ty, st(c"link").map(|s| s.1), st(c"a.txt").map(|s| s.1)),
         (Ok(mode::IFLNK), Ok(2), Ok(1)));
    // Removing names brings the count down; the data stays while one is left.
    let _ = fs::unlinkat(CWD, c"hard-top", AtFlags::EMPTY);
    let _ = fs::unlinkat(d, c"hard", AtFlags::EMPTY);
    t.eq("fs::linkat_unlink_nlink", st(c"hard2").map(|s| s.1), Ok(1));
    t.eq("fs::linkat_unlink_content", read_file(d, c"hard2", &mut buf).map(B), Ok(B(b"one inode")));
}

fn unlink_rename(t: &mut T, d: BorrowedFd<'_>) {
    let _ = write_file(d, c"gone", b"x");
    t.eq("fs::unlinkat", fs::unlinkat(d, c"gone", AtFlags::EMPTY), Ok(()));
    t.err("fs::unlinkat_enoent", fs::unlinkat(d, c"gone", AtFlags::EMPTY), Errno::ENOENT);
    t.err("fs::unlinkat_gone_stat", fs::statx(d, c"gone", AtFlags::EMPTY, StatxMask::TYPE).map(|_| ()), Errno::ENOENT);
    let _ = fs::mkdirat(d, c"full", 0o755);
    let _ = write_file(d, c"full/x", b"x");
    t.err("fs::unlinkat_dir_eisdir", fs::unlinkat(d, c"full", AtFlags::EMPTY), Errno::EISDIR);
    t.err("fs::unlinkat_removedir_enotempty", fs::unlinkat(d, c"full", AtFlags::REMOVEDIR), Errno::ENOTEMPTY);
    t.err("fs::unlinkat_removedir_enotdir", fs::unlinkat(d, c"full/x", AtFlags::REMOVEDIR), Errno::ENOTDIR);
    let _ = fs::unlinkat(d, c"full/x", AtFlags::EMPTY);
    t.eq("fs::unlinkat_removedir", fs::unlinkat(d, c"full", AtFlags::REMOVEDIR), Ok(()));
    t.err("fs::unlinkat_removedir_gone", fs::statx(d, c"full", AtFlags::EMPTY, StatxMask::TYPE).map(|_| ()), Errno::ENOENT);
    // Removing a symlink removes the link, not its target.
    let _ = fs::symlinkat(c"a.txt", d, c"link2");
    t.eq("fs::unlinkat_symlink", fs::unlinkat(d, c"link2", AtFlags::EMPTY), Ok(()));
    t.eq("fs::unlinkat_symlink_target_kept", fs::statx(d, c"a.txt", AtFlags::EMPTY, StatxMask::TYPE).map(|_| ()), Ok(()));

    let mut buf = [0u8; 16];
    let _ = write_file(d, c"r1", b"one");
    t.eq("fs::renameat2", fs::renameat2(d, c"r1", d, c"r2", RenameFlags::EMPTY), Ok(()));
    t.err("fs::renameat2_old_gone", fs::statx(d, c"r1", AtFlags::EMPTY, StatxMask::TYPE).map(|_| ()), Errno::ENOENT);
    t.eq("fs::renameat2_content", read_file(d, c"r2", &mut buf).map(B), Ok(B(b"one")));
    let _ = write_file(d, c"r3", b"three");
    t.err("fs::renameat2_noreplace", fs::renameat2(d, c"r3", d, c"r2", RenameFlags::NOREPLACE), Errno::EEXIST);
    t.eq("fs::renameat2_noreplace_kept", read_file(d, c"r2", &mut buf).map(B), Ok(B(b"one")));
    t.eq("fs::renameat2_noreplace_free", fs::renameat2(d, c"r3", d, c"r4", RenameFlags::NOREPLACE), Ok(()));
    t.eq("fs::renameat2_exchange", fs::renameat2(d, c"r2", d, c"r4", RenameFlags::EXCHANGE), Ok(()));
    let mut buf2 = [0u8; 16];
    let pair = (read_file(d, c"r2", &mut buf).map(B), read_file(d, c"r4", &mut buf2).map(B));
    t.eq("fs::renameat2_exchange_swapped", pair, (Ok(B(b"three")), Ok(B(b"one"))));
    t.err("fs::renameat2_exchange_enoent", fs::renameat2(d, c"r2", d, c"r5", RenameFlags::EXCHANGE), Errno::ENOENT);
    t.err("fs::renameat2_both_flags", fs::renameat2(d, c"r2", d, c"r4", RenameFlags::EXCHANGE | RenameFlags::NOREPLACE),
          Errno::EINVAL);
    t.err("fs::renameat2_enoent", fs::renameat2(d, c"nothing", d, c"r6", RenameFlags::EMPTY), Errno::ENOENT);
    // Across directory fds: into the working directory (the scratch dir) and back.
    t.eq("fs::renameat2_across_dirs", fs::renameat2(d, c"r4", CWD, c"moved", RenameFlags::EMPTY), Ok(()));
    t.eq("fs::renameat2_across_content", read_file(CWD, c"moved", &mut buf).map(B), Ok(B(b"one")));
}

fn stat_chmod_chown(t: &mut T, d: BorrowedFd<'_>) {
    let _ = write_file(d, c"st", b"12345");
    let Some(s) = t.ok("fs::statx", fs::statx(d, c"st", AtFlags::EMPTY, StatxMask::BASIC_STATS)) else { return };
    t.eq("fs::statx_type_mode", s.stx_mode as u32, mode::IFREG | 0o644);
    t.eq("fs::statx_size", s.stx_size, 5);
    t.eq("fs::statx_nlink", s.stx_nlink, 1);
    t.eq("fs::statx_ids", (s.stx_uid, s.stx_gid), (process::getuid(), process::getgid()));
    t.check("fs::statx_mask", s.stx_mask & StatxMask::BASIC_STATS.bits() == StatxMask::BASIC_STATS.bits(),
            format_args!("stx_mask {:#x} lacks basic stats", s.stx_mask));
    t.err("fs::statx_enoent", fs::statx(d, c"none", AtFlags::EMPTY, StatxMask::TYPE).map(|_| ()), Errno::ENOENT);
    t.err("fs::statx_empty_path_needs_flag", fs::statx(d, c"", AtFlags::EMPTY, StatxMask::TYPE).map(|_| ()), Errno::ENOENT);
    if let Some(f) = t.need("fs::open_st", fs::openat(d, c"st", OFlags::RDONLY | OFlags::CLOEXEC, 0)) {
        let fs_ = fs::fstatx(&f, StatxMask::BASIC_STATS);
        t.eq("fs::fstatx", fs_.map(|x| (x.stx_ino, x.stx_size, x.stx_mode)), Ok((s.stx_ino, 5, s.stx_mode)));
    }
    t.eq("fs::fstatx_dir", fs::fstatx(d, StatxMask::TYPE).map(|x| x.stx_mode as u32 & mode::IFMT), Ok(mode::IFDIR));
    t.err("fs::fstatx_ebadf", fs::fstatx(BorrowedFd::raw_static(9999), StatxMask::TYPE).map(|_| ()), Errno::EBADF);

    // Past 2038, so 32-bit arches prove the *_time64 call; before 1970 too.
    for (name, secs) in [("fs::set_mtime", 9_000_000_000i64), ("fs::set_mtime_negative", -86_400)] {
        t.eq(name, fs::set_mtime(d, c"st", secs, AtFlags::EMPTY), Ok(()));
        t.eq(name, fs::statx(d, c"st", AtFlags::EMPTY, StatxMask::MTIME).map(|s| s.stx_mtime.tv_sec), Ok(secs));
    }
    let _ = fs::symlinkat(c"st", d, c"st_link");
    t.eq("fs::set_mtime_nofollow", fs::set_mtime(d, c"st_link", 1_000_000, AtFlags::SYMLINK_NOFOLLOW), Ok(()));
    t.eq("fs::set_mtime_nofollow", fs::statx(d, c"st", AtFlags::EMPTY, StatxMask::MTIME).map(|s| s.stx_mtime.tv_sec), Ok(-86_400));
    t.err("fs::set_mtime_enoent", fs::set_mtime(d, c"none", 0, AtFlags::EMPTY), Errno::ENOENT);

    t.eq("fs::fchmodat", fs::fchmodat(d, c"st", 0o4710), Ok(()));
    t.eq("fs::fchmodat_mode", fs::statx(d, c"st", AtFlags::EMPTY, StatxMask::MODE).map(|s| s.stx_mode & 0o7777), Ok(0o4710));
    t.err("fs::fchmodat_enoent", fs::fchmodat(d, c"none", 0o600), Errno::ENOENT);

    // u32::MAX leaves an id unchanged.
    t.eq("fs::fchownat_unchanged", fs::fchownat(d, c"st", u32::MAX, u32::MAX, AtFlags::EMPTY), Ok(()));
    t.err("fs::fchownat_enoent", fs::fchownat(d, c"none", u32::MAX, u32::MAX, AtFlags::EMPTY), Errno::ENOENT);
    let _ = fs::symlinkat(c"st", d, c"st-link");
    let ids = |p| fs::statx(d, p, AtFlags::SYMLINK_NOFOLLOW, StatxMask::UID | StatxMask::GID).map(|s| (s.stx_uid, s.stx_gid));
    if util::is_root() {
        t.eq("fs::fchownat", fs::fchownat(d, c"st", 65534, 65533, AtFlags::EMPTY), Ok(()));
        t.eq("fs::fchownat_ids", ids(c"st"), Ok((65534, 65533)));
        t.eq("fs::fchownat_gid_only", fs::fchownat(d, c"st", u32::MAX, 100, AtFlags::EMPTY), Ok(()));
        t.eq("fs::fchownat_gid_only_ids", ids(c"st"), Ok((65534, 100)));
        // NOFOLLOW changes the link itself.
        t.eq("fs::fchownat_nofollow", fs::fchownat(d, c"st-link", 1, 2, AtFlags::SYMLINK_NOFOLLOW), Ok(()));
        t.eq("fs::fchownat_nofollow_ids", (ids(c"st-link"), ids(c"st")), (Ok((1, 2)), Ok((65534, 100))));
    } else {
        let me = (process::getuid(), process::getgid());
        t.eq("fs::fchownat_own_ids", fs::fchownat(d, c"st", me.0, me.1, AtFlags::EMPTY), Ok(()));
        t.err("fs::fchownat_eperm", fs::fchownat(d, c"st", 0, 0, AtFlags::EMPTY), Errno::EPERM);
        t.eq("fs::fchownat_ids", ids(c"st"), Ok(me));
    }
}

fn nodes_sync(t: &mut T, d: BorrowedFd<'_>) {
    t.eq("fs::dt_constants", (fs::DT_UNKNOWN, fs::DT_REG, fs::DT_DIR, fs::DT_LNK, fs::DT_CHR, fs::DT_BLK), (0, 8, 4, 10, 2, 6));
    t.eq("fs::makedev_small", fs::makedev(8, 1), 0x801);
    t.eq("fs::makedev_large", fs::makedev(259, 0x12345), (0x45) | (259 << 8) | (0x12300 << 12));
    t.eq("fs::mknodat_fifo", fs::mknodat(d, c"fifo", mode::IFIFO | 0o600, 0), Ok(()));
    t.err("fs::mknodat_eexist", fs::mknodat(d, c"fifo", mode::IFIFO | 0o600, 0), Errno::EEXIST);
    t.eq("fs::mknodat_fifo_type", fs::statx(d, c"fifo", AtFlags::EMPTY, StatxMask::TYPE | StatxMask::MODE).map(|s| s.stx_mode as u32),
         Ok(mode::IFIFO | 0o600));
    // A FIFO opened read-write does not block; data goes round.
    if let Some(f) = t.need("fs::open_fifo", fs::openat(d, c"fifo", OFlags::RDWR | OFlags::CLOEXEC, 0)) {
        let mut buf = [0u8; 8];
        let w = fs::write(&f, b"fifo!");
        let r = fs::read(&f, &mut buf).map(|n| B(&buf[..n]));
        t.eq("fs::mknodat_fifo_roundtrip", (w, r), (Ok(5), Ok(B(b"fifo!"))));
        t.err("fs::fsync_fifo_einval", fs::fsync(&f), Errno::EINVAL);
    }
    if util::is_root() {
        // A character device: the kernel decodes our makedev() encoding (major 1 minor 3 is
        // /dev/null; a large minor checks the split encoding).
        let r = fs::mknodat(d, c"chr", mode::IFCHR | 0o600, fs::makedev(1, 3));
        let st = fs::statx(d, c"chr", AtFlags::EMPTY, StatxMask::TYPE).map(|s| (s.stx_mode as u32 & mode::IFMT, s.stx_rdev_major, s.stx_rdev_minor));
        t.eq("fs::mknodat_chr", (r, st), (Ok(()), Ok((mode::IFCHR, 1, 3))));
        let r = fs::mknodat(d, c"blk", mode::IFBLK | 0o600, fs::makedev(259, 0x12345));
        let st = fs::statx(d, c"blk", AtFlags::EMPTY, StatxMask::TYPE).map(|s| (s.stx_mode as u32 & mode::IFMT, s.stx_rdev_major, s.stx_rdev_minor));
        t.eq("fs::mknodat_blk_makedev", (r, st), (Ok(()), Ok((mode::IFBLK, 259, 0x12345))));
        // getdents64 reports the device types.
        let mut kinds = (None, None);
        let mut buf = [0u8; 1024];
        if let Ok(dd) = fs::openat(d, c".", OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, 0) {
            while let Ok(n) = fs::getdents64(&dd, &mut buf) {
                if n == 0 {
                    break;
                }
                for e in Dirents::new(&buf[..n]) {
                    match e.name.to_bytes() {
                        b"chr" => kinds.0 = Some(e.kind),
                        b"blk" => kinds.1 = Some(e.kind),
                        _ => {}
                    }
                }
            }
        }
        t.eq("fs::dirent_device_kinds", kinds, (Some(fs::DT_CHR), Some(fs::DT_BLK)));
    } else {
        t.err("fs::mknodat_chr_eperm", fs::mknodat(d, c"chr", mode::IFCHR | 0o600, fs::makedev(1, 3)), Errno::EPERM);
    }
    // A socket node (allowed without privileges).
    t.eq("fs::mknodat_sock", fs::mknodat(d, c"sock", mode::IFSOCK | 0o600, 0).and_then(|_|
         fs::statx(d, c"sock", AtFlags::EMPTY, StatxMask::TYPE).map(|s| s.stx_mode as u32 & mode::IFMT)), Ok(mode::IFSOCK));

    if let Some(f) = t.need("fs::open_sync", fs::openat(d, c"a.txt", OFlags::WRONLY | OFlags::APPEND | OFlags::CLOEXEC, 0)) {
        let _ = fs::write(&f, b"+");
        t.eq("fs::fsync", fs::fsync(&f), Ok(()));
    }
    t.err("fs::fsync_ebadf", fs::fsync(BorrowedFd::raw_static(9999)), Errno::EBADF);
    fs::sync();
    t.pass("fs::sync");
    // O_APPEND wrote at the end, and TRUNC empties.
    let mut buf = [0u8; 16];
    t.eq("fs::openat_append", read_file(d, c"a.txt", &mut buf).map(B), Ok(B(b"hel+")));
    let tr = fs::openat(d, c"a.txt", OFlags::WRONLY | OFlags::TRUNC | OFlags::CLOEXEC, 0);
    t.eq("fs::openat_trunc", tr.and_then(|f| fs::fstatx(&f, StatxMask::SIZE)).map(|s| s.stx_size), Ok(0));
    // O_PATH gives an fd usable for *at calls and fstatx but not for reading.
    if let Some(p) = t.need("fs::open_path", fs::openat(d, c"list", OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, 0)) {
        let st = fs::statx(p.as_fd(), c"f1", AtFlags::EMPTY, StatxMask::SIZE).map(|s| s.stx_size);
        t.eq("fs::openat_path_dirfd", st, Ok(1));
        t.err("fs::openat_path_no_read", fs::getdents64(&p, &mut buf), Errno::EBADF);
    }
}

/// fchmod on an open fd, and O_NONBLOCK switched with fcntl (seen in fdinfo and in a read).
fn fchmod_fcntl(t: &mut T, d: BorrowedFd<'_>) {
    let mode_of = |p: &core::ffi::CStr| fs::statx(d, p, AtFlags::EMPTY, StatxMask::MODE).map(|s| s.stx_mode as u32 & 0o7777);
    if let Some(f) = t.need("fs::fchmod_open", fs::openat(d, c"fchmod", OFlags::WRONLY | OFlags::CREAT | OFlags::CLOEXEC, 0o600)) {
        t.eq("fs::fchmod", fs::fchmod(&f, 0o4751), Ok(()));
        t.eq("fs::fchmod_mode", mode_of(c"fchmod"), Ok(0o4751));
        t.eq("fs::fchmod_back", fs::fchmod(&f, 0o640).and_then(|_| mode_of(c"fchmod")), Ok(0o640));
    }
    if let Some(p) = t.need("fs::fchmod_open_path", fs::openat(d, c"fchmod", OFlags::PATH | OFlags::CLOEXEC, 0)) {
        t.err("fs::fchmod_o_path_ebadf", fs::fchmod(&p, 0o600), Errno::EBADF);
    }
    t.err("fs::fchmod_ebadf", fs::fchmod(BorrowedFd::raw_static(9999), 0o600), Errno::EBADF);

    let Some((r, w)) = t.need("fs::fcntl_pipe", syscall::io::pipe2(true, false)) else { return };
    const NONBLOCK: u64 = 0o4000; // fdinfo's octal O_NONBLOCK, the same on all five arches
    t.eq("fs::fcntl_getfl_rdonly", fs::fcntl_getfl(&r).map(|f| f.bits() & 0o3), Ok(OFlags::RDONLY.bits()));
    t.eq("fs::fcntl_getfl_wronly", fs::fcntl_getfl(&w).map(|f| f.bits() & 0o3), Ok(OFlags::WRONLY.bits()));
    t.eq("fs::fcntl_set_nonblock", fs::fcntl_set_nonblock(&r, true), Ok(()));
    t.eq("fs::fcntl_nonblock_getfl", fs::fcntl_getfl(&r).map(|f| f.contains(OFlags::NONBLOCK)), Ok(true));
    t.eq("fs::fcntl_nonblock_fdinfo", util::fd_flags(&r).map(|f| f & NONBLOCK), Some(NONBLOCK));
    let mut b = [0u8; 4];
    t.err("fs::fcntl_nonblock_read_eagain", fs::read(&r, &mut b), Errno::EAGAIN);
    // Setting it again changes nothing; the close-on-exec fd flag is untouched.
    t.eq("fs::fcntl_set_nonblock_twice", fs::fcntl_set_nonblock(&r, true), Ok(()));
    t.eq("fs::fcntl_keeps_cloexec", util::fd_flags(&r).map(|f| f & util::FDINFO_CLOEXEC), Some(util::FDINFO_CLOEXEC));
    t.eq("fs::fcntl_clear_nonblock", fs::fcntl_set_nonblock(&r, false), Ok(()));
    t.eq("fs::fcntl_cleared_fdinfo", util::fd_flags(&r).map(|f| f & NONBLOCK), Some(0));
    // Blocking again: a read waits for the writer (a child writes after 100 ms).
    if let Ok(pid) = crate::harness::spawn(|| {
        let _ = syscall::time::sleep(syscall::time::Timespec::from_millis(100));
        let _ = fs::write(&w, b"late");
        0
    }) {
        t.eq("fs::fcntl_blocking_read", fs::read(&r, &mut b).map(|n| B(&b[..n])), Ok(B(b"late")));
        let _ = crate::harness::wait(pid);
    }
    t.err("fs::fcntl_ebadf", fs::fcntl_set_nonblock(BorrowedFd::raw_static(9999), true), Errno::EBADF);
}
