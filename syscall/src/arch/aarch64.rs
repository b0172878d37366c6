//! aarch64: `svc 0` with the number in x8 and arguments in x0..x5; the result comes back in x0.

use core::arch::asm;

#[inline]
pub unsafe fn syscall0(nr: u32) -> usize {
    let ret;
    // SAFETY: the caller upholds the contract of call `nr` (module docs).
    unsafe { asm!("svc 0", in("x8") nr as usize, lateout("x0") ret, options(nostack, preserves_flags)) }
    ret
}

#[inline]
pub unsafe fn syscall1(nr: u32, a0: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe { asm!("svc 0", in("x8") nr as usize, inlateout("x0") a0 => ret, options(nostack, preserves_flags)) }
    ret
}

#[inline]
pub unsafe fn syscall2(nr: u32, a0: usize, a1: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("svc 0", in("x8") nr as usize, inlateout("x0") a0 => ret, in("x1") a1,
             options(nostack, preserves_flags));
    }
    ret
}

#[inline]
pub unsafe fn syscall3(nr: u32, a0: usize, a1: usize, a2: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("svc 0", in("x8") nr as usize, inlateout("x0") a0 => ret, in("x1") a1, in("x2") a2,
             options(nostack, preserves_flags));
    }
    ret
}

#[inline]
pub unsafe fn syscall4(nr: u32, a0: usize, a1: usize, a2: usize, a3: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("svc 0", in("x8") nr as usize, inlateout("x0") a0 => ret, in("x1") a1, in("x2") a2,
             in("x3") a3, options(nostack, preserves_flags));
    }
    ret
}

#[inline]
pub unsafe fn syscall5(nr: u32, a0: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("svc 0", in("x8") nr as usize, inlateout("x0") a0 => ret, in("x1") a1, in("x2") a2,
             in("x3") a3, in("x4") a4, options(nostack, preserves_flags));
    }
    ret
}

#[inline]
pub unsafe fn syscall6(
    nr: u32, a0: usize, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize,
) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("svc 0", in("x8") nr as usize, inlateout("x0") a0 => ret, in("x1") a1, in("x2") a2,
             in("x3") a3, in("x4") a4, in("x5") a5, options(nostack, preserves_flags));
    }
    ret
}

#[inline]
pub unsafe fn syscall1_noreturn(nr: u32, a0: usize) -> ! {
    // SAFETY: as syscall0; the call does not return (exit_group).
    unsafe { asm!("svc 0", in("x8") nr as usize, in("x0") a0, options(noreturn, nostack)) }
}

/// Program entry: clear the frame and link registers so backtraces stop here and pass the
/// (already 16-byte aligned) stack pointer to `entry::start(sp)`.
#[cfg(feature = "freestanding")]
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        "mov x29, xzr",
        "mov x30, xzr",
        "mov x0, sp",
        "bl {entry}",
        "udf #0",
        entry = sym crate::entry::start,
    )
}
