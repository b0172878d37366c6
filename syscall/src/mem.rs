//! memcpy, memmove, memset, memcmp, bcmp and strlen, which the compiler emits calls to and which the
//! stable, prebuilt compiler_builtins for `*-linux-*` targets leaves to libc.
//!
//! Simple loops: word by word where alignment allows (memcpy, memset), else byte by byte;
//! small code matters more here than peak speed. The volatile accesses stop LLVM from
//! recognising a loop as a memcpy/memset idiom and compiling it into a call to itself. The
//! syscall suite checks each of them, at every alignment.
//!
//! # Safety
//! The usual C contracts: valid, (for memcpy) non-overlapping ranges of `n` bytes.
#![allow(unsafe_code)]

const WORD: usize = core::mem::size_of::<usize>();

#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    let mut i = 0;
    // Word by word when both are aligned alike (the common case of buffers and structs).
    if (dest as usize | src as usize) % WORD == 0 {
        while i + WORD <= n {
            // SAFETY: i + WORD <= n and both pointers are word-aligned at i.
            unsafe { (dest.add(i) as *mut usize).write_volatile((src.add(i) as *const usize).read()) };
            i += WORD;
        }
    }
    while i < n {
        // SAFETY: i < n, both ranges valid by the C contract.
        unsafe { dest.add(i).write_volatile(src.add(i).read()) };
        i += 1;
    }
    dest
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize) <= (src as usize) {
        let mut i = 0;
        while i < n {
            // SAFETY: forward copy is safe when dest is below src; ranges valid by contract.
            unsafe { dest.add(i).write_volatile(src.add(i).read()) };
            i += 1;
        }
    } else {
        let mut i = n;
        while i > 0 {
            i -= 1;
            // SAFETY: backward copy is safe when dest is above src; ranges valid by contract.
            unsafe { dest.add(i).write_volatile(src.add(i).read()) };
        }
    }
    dest
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8 {
    let byte = c as u8;
    let mut i = 0;
    // Bytes up to a word boundary, then words, then the tail.
    while i < n && (dest as usize + i) % WORD != 0 {
        // SAFETY: i < n, range valid by contract.
        unsafe { dest.add(i).write_volatile(byte) };
        i += 1;
    }
    let pattern = usize::from_ne_bytes([byte; WORD]);
    while i + WORD <= n {
        // SAFETY: i + WORD <= n and dest + i is word-aligned.
        unsafe { (dest.add(i) as *mut usize).write_volatile(pattern) };
        i += WORD;
    }
    while i < n {
        // SAFETY: i < n, range valid by contract.
        unsafe { dest.add(i).write_volatile(byte) };
        i += 1;
    }
    dest
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: i < n, ranges valid by contract.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

#[unsafe(no_mangle)]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}

/// `CStr::from_ptr` calls it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn strlen(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: `s` is NUL-terminated by the C contract; we stop at the NUL.
    while unsafe { s.add(n).read_volatile() } != 0 {
        n += 1;
    }
    n
}

/// Referenced by the prebuilt `core` (built with unwinding) in non-LTO builds; with
/// panic=abort it is never called.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}
