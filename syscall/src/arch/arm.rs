//! armv7 (EABI, ARM state): `svc 0` with the number in r7 and arguments in r0..r5.

use core::arch::asm;

#[inline]
pub unsafe fn syscall0(nr: u32) -> usize {
    let ret;
    // SAFETY: the caller upholds the contract of call `nr` (module docs).
    unsafe { asm!("svc 0", in("r7") nr as usize, lateout("r0") ret, options(nostack, preserves_flags)) }
    ret
}

#[inline]
pub unsafe fn syscall1(nr: u32, a0: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe { asm!("svc 0", in("r7") nr as usize, inlateout("r0") a0 => ret, options(nostack, preserves_flags)) }
    ret
}

#[inline]
pub unsafe fn syscall2(nr: u32, a0: usize, a1: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("svc 0", in("r7") nr as usize, inlateout("r0") a0 => ret, in("r1") a1,
             options(nostack, preserves_flags));
    }
    ret
}

#[inline]
pub unsafe fn syscall3(nr: u32, a0: usize, a1: usize, a2: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("svc 0", in("r7") nr as usize, inlateout("r0") a0 => ret, in("r1") a1, in("r2") a2,
             options(nostack, preserves_flags));
    }
    ret
}

#[inline]
pub unsafe fn syscall4(nr: u32, a0: usize, a1: usize, a2: usize, a3: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("svc 0", in("r7") nr as usize, inlateout("r0") a0 => ret, in("r1") a1, in("r2") a2,
             in("r3") a3, options(nostack, preserves_flags));
    }
    ret
}

#[inline]
pub unsafe fn syscall5(nr: u32, a0: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("svc 0", in("r7") nr as usize, inlateout("r0") a0 => ret, in("r1") a1, in("r2") a2,
             in("r3") a3, in("r4") a4, options(nostack, preserves_flags));
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
        asm!("svc 0", in("r7") nr as usize, inlateout("r0") a0 => ret, in("r1") a1, in("r2") a2,
             in("r3") a3, in("r4") a4, in("r5") a5, options(nostack, preserves_flags));
    }
    ret
}

#[inline]
pub unsafe fn syscall1_noreturn(nr: u32, a0: usize) -> ! {
    // SAFETY: as syscall0; the call does not return (exit_group).
    unsafe { asm!("svc 0", in("r7") nr as usize, in("r0") a0, options(noreturn, nostack)) }
}

/// Program entry: clear fp and lr so backtraces stop here, pass sp to `entry::start(sp)`
/// and keep the stack 8-byte aligned as the AAPCS wants (16 for good measure).
#[cfg(feature = "freestanding")]
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        "mov fp, #0",
        "mov lr, #0",
        "mov r0, sp",
        "bic sp, sp, #15",
        "bl {entry}",
        "udf #0",
        entry = sym crate::entry::start,
    )
}
