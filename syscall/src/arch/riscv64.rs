//! riscv64: `ecall` with the number in a7 and arguments in a0..a5; the result comes back in a0.

use core::arch::asm;

#[inline]
pub unsafe fn syscall0(nr: u32) -> usize {
    let ret;
    // SAFETY: the caller upholds the contract of call `nr` (module docs).
    unsafe { asm!("ecall", in("a7") nr as usize, lateout("a0") ret, options(nostack, preserves_flags)) }
    ret
}

#[inline]
pub unsafe fn syscall1(nr: u32, a0: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe { asm!("ecall", in("a7") nr as usize, inlateout("a0") a0 => ret, options(nostack, preserves_flags)) }
    ret
}

#[inline]
pub unsafe fn syscall2(nr: u32, a0: usize, a1: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("ecall", in("a7") nr as usize, inlateout("a0") a0 => ret, in("a1") a1,
             options(nostack, preserves_flags));
    }
    ret
}

#[inline]
pub unsafe fn syscall3(nr: u32, a0: usize, a1: usize, a2: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("ecall", in("a7") nr as usize, inlateout("a0") a0 => ret, in("a1") a1, in("a2") a2,
             options(nostack, preserves_flags));
    }
    ret
}

#[inline]
pub unsafe fn syscall4(nr: u32, a0: usize, a1: usize, a2: usize, a3: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("ecall", in("a7") nr as usize, inlateout("a0") a0 => ret, in("a1") a1, in("a2") a2,
             in("a3") a3, options(nostack, preserves_flags));
    }
    ret
}

#[inline]
pub unsafe fn syscall5(nr: u32, a0: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("ecall", in("a7") nr as usize, inlateout("a0") a0 => ret, in("a1") a1, in("a2") a2,
             in("a3") a3, in("a4") a4, options(nostack, preserves_flags));
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
        asm!("ecall", in("a7") nr as usize, inlateout("a0") a0 => ret, in("a1") a1, in("a2") a2,
             in("a3") a3, in("a4") a4, in("a5") a5, options(nostack, preserves_flags));
    }
    ret
}

#[inline]
pub unsafe fn syscall1_noreturn(nr: u32, a0: usize) -> ! {
    // SAFETY: as syscall0; the call does not return (exit_group).
    unsafe { asm!("ecall", in("a7") nr as usize, in("a0") a0, options(noreturn, nostack)) }
}

/// Program entry: load the global pointer (with relaxation off, or the linker would turn the
/// load into a gp-relative one of itself), clear fp and ra, and call `entry::start(sp)`.
#[cfg(feature = "freestanding")]
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        ".option push",
        ".option norelax",
        "lla gp, __global_pointer$",
        ".option pop",
        "li fp, 0",
        "li ra, 0",
        "mv a0, sp",
        "andi sp, sp, -16",
        "call {entry}",
        "unimp",
        entry = sym crate::entry::start,
    )
}
