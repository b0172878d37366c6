//! x86_64: `syscall` with the number in rax and arguments in rdi, rsi, rdx, r10, r8, r9;
//! the kernel clobbers rcx and r11.

use core::arch::asm;

#[inline]
pub unsafe fn syscall0(nr: u32) -> usize {
    let ret;
    // SAFETY: the caller upholds the contract of call `nr` (module docs).
    unsafe {
        asm!("syscall", inlateout("rax") nr as usize => ret, lateout("rcx") _, lateout("r11") _,
             options(nostack, preserves_flags));
    }
    ret
}

#[inline]
pub unsafe fn syscall1(nr: u32, a0: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") nr as usize => ret, in("rdi") a0,
             lateout("rcx") _, lateout("r11") _, options(nostack, preserves_flags));
    }
    ret
}

#[inline]
pub unsafe fn syscall2(nr: u32, a0: usize, a1: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") nr as usize => ret, in("rdi") a0, in("rsi") a1,
             lateout("rcx") _, lateout("r11") _, options(nostack, preserves_flags));
    }
    ret
}

#[inline]
pub unsafe fn syscall3(nr: u32, a0: usize, a1: usize, a2: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") nr as usize => ret, in("rdi") a0, in("rsi") a1,
             in("rdx") a2, lateout("rcx") _, lateout("r11") _, options(nostack, preserves_flags));
    }
    ret
}

#[inline]
pub unsafe fn syscall4(nr: u32, a0: usize, a1: usize, a2: usize, a3: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") nr as usize => ret, in("rdi") a0, in("rsi") a1,
             in("rdx") a2, in("r10") a3, lateout("rcx") _, lateout("r11") _,
             options(nostack, preserves_flags));
    }
    ret
}

#[inline]
pub unsafe fn syscall5(nr: u32, a0: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("syscall", inlateout("rax") nr as usize => ret, in("rdi") a0, in("rsi") a1,
             in("rdx") a2, in("r10") a3, in("r8") a4, lateout("rcx") _, lateout("r11") _,
             options(nostack, preserves_flags));
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
        asm!("syscall", inlateout("rax") nr as usize => ret, in("rdi") a0, in("rsi") a1,
             in("rdx") a2, in("r10") a3, in("r8") a4, in("r9") a5, lateout("rcx") _,
             lateout("r11") _, options(nostack, preserves_flags));
    }
    ret
}

#[inline]
pub unsafe fn syscall1_noreturn(nr: u32, a0: usize) -> ! {
    // SAFETY: as syscall0; the call does not return (exit_group).
    unsafe { asm!("syscall", in("rax") nr as usize, in("rdi") a0, options(noreturn, nostack)) }
}

/// Program entry: the kernel leaves argc at [rsp]; clear the frame pointer so backtraces
/// stop here, align the stack and call `entry::start(sp)`.
#[cfg(feature = "freestanding")]
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        "xor ebp, ebp",
        "mov rdi, rsp",
        "and rsp, -16",
        "call {entry}",
        "ud2",
        entry = sym crate::entry::start,
    )
}
