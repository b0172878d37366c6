//! Memory: anonymous mmap/munmap, the AnonMap arena, memfd_create.

use crate::harness::{B, T};
use crate::util::{fd_flags, FDINFO_CLOEXEC};
use linux_raw_sys::general as g;
use syscall::fs::{self, mode, Seek, StatxMask};
use syscall::mm;
use syscall::{BorrowedFd, Errno};

#[cfg(target_pointer_width = "64")]
use linux_raw_sys::general::__NR_mmap as MMAP;
#[cfg(target_pointer_width = "32")]
use linux_raw_sys::general::__NR_mmap2 as MMAP;

pub fn run(t: &mut T) {
    anonymous(t);
    anon_map(t);
    map_vec(t);
    release(t);
    memfd(t);
}

fn anonymous(t: &mut T) {
    let len = 3 * 4096 + 1;
    let Some(m) = t.ok("mm::mmap_anonymous", mm::mmap_anonymous(len)) else { return };
    t.eq("mm::mmap_len", m.len(), len);
    t.eq("mm::mmap_page_aligned", m.as_ptr() as usize % 4096, 0);
    t.check("mm::mmap_zeroed", m.iter().all(|&b| b == 0), format_args!("fresh anonymous memory is not zero"));
    for (i, b) in m.iter_mut().enumerate() {
        *b = (i * 7 % 256) as u8;
    }
    t.check("mm::mmap_writable", m.iter().enumerate().all(|(i, &b)| b == (i * 7 % 256) as u8),
            format_args!("pattern did not read back"));
    // Two mappings do not overlap.
    if let Ok(m2) = mm::mmap_anonymous(4096) {
        let (a, b) = (m.as_ptr() as usize, m2.as_ptr() as usize);
        t.check("mm::mmap_distinct", b + 4096 <= a || a + len <= b, format_args!("{a:#x}+{len} overlaps {b:#x}"));
        // SAFETY: m2 is not used afterwards.
        t.eq("mm::munmap", unsafe { mm::munmap(m2) }, Ok(()));
    }
    // A range that does not start on a page boundary.
    if let Some(tail) = m.get_mut(1..) {
        // SAFETY: the call fails (EINVAL) and unmaps nothing.
        t.err("mm::munmap_unaligned_einval", unsafe { mm::munmap(tail) }, Errno::EINVAL);
    }
    // SAFETY: m is not used afterwards.
    t.eq("mm::munmap_whole", unsafe { mm::munmap(m) }, Ok(()));
    t.err("mm::mmap_zero_len_einval", mm::mmap_anonymous(0).map(|m| m.len()), Errno::EINVAL);
    t.err("mm::mmap_huge_enomem", mm::mmap_anonymous(usize::MAX - 4096 * 4).map(|m| m.len()), Errno::ENOMEM);
}

/// mmap(addr, len, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED_NOREPLACE) through the raw
/// call (no wrapper): it succeeds, at exactly `addr`, only where nothing is mapped, and fails
/// with EEXIST otherwise. A mapping it makes is unmapped again at once.
fn probe_free(addr: usize, len: usize) -> Result<usize, Errno> {
    let flags = g::MAP_PRIVATE | g::MAP_ANONYMOUS | g::MAP_FIXED_NOREPLACE;
    // SAFETY: MAP_FIXED_NOREPLACE never replaces a mapping; the new one is not accessed.
    let r = unsafe { syscall::arch::syscall6(MMAP, addr, len, g::PROT_NONE as usize, flags as usize, -1isize as usize, 0) };
    let r = syscall::errno::check(r)?;
    // SAFETY: the range [r, r + len) is the mapping just made, which nothing uses.
    let _ = unsafe { syscall::arch::syscall2(g::__NR_munmap, r, len) };
    Ok(r)
}

fn anon_map(t: &mut T) {
    let len = 5 * 4096 + 100;
    let pages = 6 * 4096;
    let Some(mut m) = t.ok("mm::anonmap_new", mm::AnonMap::new(len)) else { return };
    let addr = m.as_slice().as_ptr() as usize;
    t.eq("mm::anonmap_len", (m.as_slice().len(), m.as_mut_slice().len()), (len, len));
    t.eq("mm::anonmap_same_memory", m.as_mut_slice().as_mut_ptr() as usize, addr);
    t.eq("mm::anonmap_page_aligned", addr % 4096, 0);
    t.check("mm::anonmap_zeroed", m.as_slice().iter().all(|&b| b == 0), format_args!("a fresh AnonMap is not zero"));
    for (i, b) in m.as_mut_slice().iter_mut().enumerate() {
        *b = (i * 11 % 256) as u8;
    }
    t.check("mm::anonmap_writable", m.as_slice().iter().enumerate().all(|(i, &b)| b == (i * 11 % 256) as u8),
            format_args!("pattern did not read back"));
    // While it lives, its pages (the last one partly used) are mapped...
    t.err("mm::anonmap_mapped", probe_free(addr, pages), Errno::EEXIST);
    t.err("mm::anonmap_mapped_last_page", probe_free(addr + 5 * 4096, 4096), Errno::EEXIST);
    drop(m);
    // ...and dropping it unmaps all of them.
    t.eq("mm::anonmap_drop_unmaps", probe_free(addr, pages), Ok(addr));
    t.err("mm::anonmap_zero_len_einval", mm::AnonMap::new(0).map(|m| m.as_slice().len()), Errno::EINVAL);
    t.err("mm::anonmap_huge_enomem", mm::AnonMap::new(usize::MAX - 4096 * 4).map(|m| m.as_slice().len()), Errno::ENOMEM);
}

fn map_vec(t: &mut T) {
    let Some(mut v) = t.ok("mm::mapvec_new", mm::MapVec::<[u64; 100]>::with_capacity(50)) else { return };
    t.eq("mm::mapvec_empty", (v.len(), v.capacity()), (0, 50));
    let addr = v.as_ptr() as usize;
    t.eq("mm::mapvec_page_aligned", addr % 4096, 0);
    for i in 0..50u64 {
        if v.push([i; 100]).is_err() {
            t.check("mm::mapvec_push", false, format_args!("push {i} of 50 refused"));
            return;
        }
    }
    t.check("mm::mapvec_full", v.push([99; 100]).is_err(), format_args!("a full table took one more"));
    t.eq("mm::mapvec_remove", v.remove(10).map(|a| a[0]), Some(10));
    t.eq("mm::mapvec_shifted", (v.len(), v.get(10).map(|a| a[99]), v.last().map(|a| a[0])), (49, Some(11), Some(49)));
    t.eq("mm::mapvec_remove_out_of_range", v.remove(49).map(|a| a[0]), None);
    t.check("mm::mapvec_push_after_remove", v.push([7; 100]).is_ok(), format_args!("no room after a remove"));
    let pages = (50 * 800usize).div_ceil(4096) * 4096;
    t.err("mm::mapvec_mapped", probe_free(addr, pages), Errno::EEXIST);
    drop(v);
    t.eq("mm::mapvec_drop_unmaps", probe_free(addr, pages), Ok(addr));
    let e = mm::MapVec::<u32>::empty();
    t.eq("mm::mapvec_empty_table", (e.len(), e.capacity()), (0, 0));
    t.err("mm::mapvec_huge_enomem", mm::MapVec::<[u8; 4096]>::with_capacity(usize::MAX / 4096).map(|v| v.capacity()), Errno::ENOMEM);
}

/// release_text and release_stack: the suite keeps running (its code comes back from the file,
/// its live stack is untouched) and a value on the stack survives.
fn release(t: &mut T) {
    let keep = core::hint::black_box([0x5au8; 3000]);
    t.eq("mm::release_text", mm::release_text(), Ok(()));
    t.eq("mm::release_stack", mm::release_stack(), Ok(()));
    t.check("mm::release_stack_keeps_live", keep.iter().all(|&b| b == 0x5a), format_args!("a live stack value changed"));
}

fn memfd(t: &mut T) {
    let Some(fd) = t.ok("mm::memfd_create", mm::memfd_create(c"suite-memfd")) else { return };
    t.eq("mm::memfd_cloexec", fd_flags(&fd).map(|f| f & FDINFO_CLOEXEC != 0), Some(true));
    let mut data = [0u8; 10000];
    for (i, b) in data.iter_mut().enumerate() {
        *b = (i % 253) as u8;
    }
    t.eq("mm::memfd_write", fs::write_all(&fd, &data), Ok(()));
    t.eq("mm::memfd_size", fs::fstatx(&fd, StatxMask::SIZE | StatxMask::TYPE).map(|s| (s.stx_size, s.stx_mode as u32 & mode::IFMT)),
         Ok((10000, mode::IFREG)));
    let _ = fs::lseek(&fd, Seek::Set(0));
    let mut back = [0u8; 10001];
    let n = fs::read_full(&fd, &mut back);
    t.check("mm::memfd_read_back", n == Ok(10000) && back[..10000] == data[..],
            format_args!("read {:?}", crate::harness::Res(&n)));
    let link = cfmt!("/proc/self/fd/{}", fd.raw());
    let mut buf = [0u8; 64];
    t.eq("mm::memfd_name", fs::readlinkat(BorrowedFd::CWD, link.as_cstr(), &mut buf).map(B),
         Ok(B(b"/memfd:suite-memfd (deleted)")));
    t.err("mm::memfd_name_too_long_einval", mm::memfd_create(c"0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789").map(|f| f.into_raw()),
          Errno::EINVAL);
}
