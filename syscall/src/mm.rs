//! Memory: anonymous mmap/munmap, madvise, memfd_create, and the tables built on them.
//!
//! # Safety
//! `mmap_anonymous` returns fresh private memory that nothing else aliases; `munmap` is
//! unsafe because the caller must not use the range afterwards. [`MapVec`] owns its mapping
//! and its first `len` slots hold initialised values, the rest nothing.
#![allow(unsafe_code)]

use crate::arch::*;
use crate::errno::{check, check_unit, Result};
use crate::fd::OwnedFd;
use crate::nr;
use core::ffi::CStr;
use core::marker::PhantomData;
use core::ptr::NonNull;
use linux_raw_sys::general as g;

#[cfg(target_pointer_width = "64")]
use crate::nr::__NR_mmap as MMAP;
#[cfg(target_pointer_width = "32")]
use crate::nr::__NR_mmap2 as MMAP;

/// mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) — zeroed pages.
pub fn mmap_anonymous(len: usize) -> Result<&'static mut [u8]> {
    // SAFETY: an anonymous private mapping aliases nothing.
    let addr = check(unsafe {
        syscall6(MMAP, 0, len, (g::PROT_READ | g::PROT_WRITE) as usize,
                 (g::MAP_PRIVATE | g::MAP_ANONYMOUS) as usize, -1isize as usize, 0)
    })?;
    // SAFETY: the kernel mapped `len` fresh, writable, zeroed bytes at `addr`.
    Ok(unsafe { core::slice::from_raw_parts_mut(addr as *mut u8, len) })
}

/// munmap(addr, len).
///
/// # Safety
/// Nothing may use the range afterwards.
pub unsafe fn munmap(mem: &mut [u8]) -> Result<()> {
    // SAFETY: per the function contract.
    check_unit(unsafe { syscall2(nr::__NR_munmap, mem.as_mut_ptr() as usize, mem.len()) })
}

/// memfd_create(name, MFD_CLOEXEC) — an anonymous file in memory.
pub fn memfd_create(name: &CStr) -> Result<OwnedFd> {
    // SAFETY: see module docs.
    check(unsafe { syscall2(nr::__NR_memfd_create, name.as_ptr() as usize, g::MFD_CLOEXEC as usize) })
        .map(|fd| OwnedFd::from_raw(fd as i32))
}

/// Anonymous memory owned by this value and unmapped when it is dropped: the arena for one
/// boot-stage job (reading modules.dep, probing disks), so nothing of it stays after boot.
pub struct AnonMap {
    mem: &'static mut [u8],
}

impl AnonMap {
    pub fn new(len: usize) -> Result<AnonMap> {
        mmap_anonymous(len).map(|mem| AnonMap { mem })
    }

    pub fn as_slice(&self) -> &[u8] {
        self.mem
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.mem
    }
}

impl Drop for AnonMap {
    fn drop(&mut self) {
        // SAFETY: the mapping is owned by this value and no borrow of it outlives `self`.
        let _ = unsafe { munmap(self.mem) };
    }
}

/// A vector of at most `capacity` values in an anonymous mapping of its own: for a table that
/// must live neither on the stack (whose frames are probed, so every page of them becomes
/// resident) nor in memory written at start. Making one writes nothing; the kernel supplies
/// a page when a slot in it is first written, so only the pages of slots in use count.
/// A full table is an ordinary error ([`MapVec::push`] returns the value), never growth.
pub struct MapVec<T> {
    /// Start of the mapping (dangling when nothing is mapped).
    ptr: NonNull<T>,
    capacity: usize,
    len: usize,
    /// Owns `T`s, for drop checking.
    owns: PhantomData<T>,
}

impl<T> MapVec<T> {
    /// Maps room for `capacity` values. A zero-sized `T` or `capacity` 0 maps nothing and
    /// holds nothing.
    pub fn with_capacity(capacity: usize) -> Result<MapVec<T>> {
        const { assert!(core::mem::align_of::<T>() <= 4096, "a mapping is only page aligned") };
        let bytes = core::mem::size_of::<T>().checked_mul(capacity).ok_or(crate::Errno::ENOMEM)?;
        if bytes == 0 {
            return Ok(MapVec::empty());
        }
        let mem = mmap_anonymous(bytes)?;
        let ptr = NonNull::new(mem.as_mut_ptr().cast::<T>()).ok_or(crate::Errno::ENOMEM)?;
        Ok(MapVec { ptr, capacity, len: 0, owns: PhantomData })
    }

    /// A table with no room, mapping nothing: the stand-in when the mapping failed.
    pub const fn empty() -> MapVec<T> {
        MapVec { ptr: NonNull::dangling(), capacity: 0, len: 0, owns: PhantomData }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Appends `value`, or gives it back when the table is full.
    pub fn push(&mut self, value: T) -> core::result::Result<(), T> {
        if self.len >= self.capacity {
            return Err(value);
        }
        // SAFETY: slot `len` is inside the mapping (len < capacity) and holds no value.
        unsafe { self.ptr.as_ptr().add(self.len).write(value) };
        self.len += 1;
        Ok(())
    }

    /// Takes out the value at `index`, moving the later ones down by one; None out of range.
    pub fn remove(&mut self, index: usize) -> Option<T> {
        if index >= self.len {
            return None;
        }
        // SAFETY: `index < len`: the slot holds a value, which is read out once; the values
        // after it are moved down over it (copy handles the overlap), and `len` shrinks so
        // that the last slot, now a stale copy, is not used again.
        unsafe {
            let p = self.ptr.as_ptr().add(index);
            let value = p.read();
            core::ptr::copy(p.add(1), p, self.len - index - 1);
            self.len -= 1;
            Some(value)
        }
    }

    fn bytes(&self) -> usize {
        core::mem::size_of::<T>() * self.capacity
    }
}

impl<T> core::ops::Deref for MapVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the first `len` slots hold values (dangling but aligned when len is 0).
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> core::ops::DerefMut for MapVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as for deref; `&mut self` makes the borrow unique.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for MapVec<T> {
    fn drop(&mut self) {
        let bytes = self.bytes();
        // SAFETY: the values in use are dropped once; then the mapping, owned by this value
        // and borrowed by nothing any more, is unmapped (nothing was mapped when bytes is 0).
        unsafe {
            core::ptr::drop_in_place(core::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len));
            if bytes > 0 {
                let _ = munmap(core::slice::from_raw_parts_mut(self.ptr.as_ptr().cast::<u8>(), bytes));
            }
        }
    }
}

/// madvise(text, len, MADV_DONTNEED) on this executable's read-only segment (headers, code
/// and constants, from `__executable_start` to `__text_end`, both set by linker/ARCH.ld).
///
/// Its pages leave this process's page tables, and so its resident set, and come back from
/// the file on the next touch, like any page of a program not yet run: the segment is never
/// written (it is mapped R+X) and the file of a running program cannot be written (ETXTBSY),
/// so nothing is lost. A long-running process calls it once start-up is over, so that only
/// the code it still runs is resident (the kernel maps pages around each fault in windows
/// of `fault_around_bytes`, 64 KiB by default: see the `.text` layout in the linker scripts).
/// A no-op where this crate is not linked by those scripts (host tests).
pub fn release_text() -> Result<()> {
    #[cfg(feature = "freestanding")]
    {
        unsafe extern "C" {
            static __executable_start: u8;
            static __text_end: u8;
        }
        let start = &raw const __executable_start as usize;
        let end = &raw const __text_end as usize;
        // SAFETY: the range is this executable's R+X load segment (linker/ARCH.ld puts
        // __executable_start at its page-aligned start and __text_end at the end of .rodata);
        // dropping the pages of a never-written private file mapping only makes the next
        // access read them from the file again.
        check_unit(unsafe { syscall3(nr::__NR_madvise, start, end.saturating_sub(start), g::MADV_DONTNEED as usize) })
    }
    #[cfg(not(feature = "freestanding"))]
    Ok(())
}

/// How much of the stack below the caller [`release_stack`] releases at most.
pub const STACK_RELEASE_BYTES: usize = 256 * 1024;

/// madvise(MADV_DONTNEED) on the dead part of the stack: up to [`STACK_RELEASE_BYTES`]
/// below this call's frame, leaving one page of margin under it.
///
/// Nothing lives below the stack pointer (no signal handler runs on this stack in a process
/// that reads signals from a signalfd, and no frame below the caller's is live), so those
/// pages can be handed back: touched again, they are fresh zero pages. A process calls it
/// once a deep but finished piece of work (parsing files at start-up) left touched pages
/// far below the frame it now runs in. The range can reach nothing but the stack: the
/// kernel keeps mmap's area at least 128 MiB below the stack (mm/util.c, MIN_GAP), and
/// madvise skips a range's unmapped part (it then returns ENOMEM, which this ignores).
#[inline(never)]
pub fn release_stack() -> Result<()> {
    let marker = 0u8;
    let here = core::hint::black_box(&marker) as *const u8 as usize;
    // The page size is 4 KiB on most of our targets; aarch64 kernels may use 16 or 64 KiB
    // pages, for which a 4 KiB-aligned start is EINVAL.
    let mut last = Ok(());
    for page in [4096usize, 16384, 65536] {
        let top = (here & !(page - 1)).saturating_sub(page);
        let start = top.saturating_sub(STACK_RELEASE_BYTES);
        if start == 0 || top <= start {
            return Ok(());
        }
        // SAFETY: [start, top) lies below this frame, with a page of margin: dead stack,
        // or unmapped (see above); dropping dead stack pages loses nothing.
        last = check_unit(unsafe { syscall3(nr::__NR_madvise, start, top - start, g::MADV_DONTNEED as usize) });
        match last {
            Err(crate::Errno::EINVAL) => continue,
            Err(crate::Errno::ENOMEM) => return Ok(()),
            _ => return last,
        }
    }
    last
}
