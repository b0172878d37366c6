//! i686: `int 0x80` with the number in eax and arguments in ebx, ecx, edx, esi, edi, ebp.
//! LLVM reserves esi and ebp, so they cannot be asm operands: calls with four or more
//! arguments pass the extra ones through memory and load them inside the asm block, saving
//! and restoring the reserved registers around the call.

use core::arch::asm;

#[inline]
pub unsafe fn syscall0(nr: u32) -> usize {
    let ret;
    // SAFETY: the caller upholds the contract of call `nr` (module docs).
    unsafe { asm!("int 0x80", inlateout("eax") nr as usize => ret, options(nostack, preserves_flags)) }
    ret
}

#[inline]
pub unsafe fn syscall1(nr: u32, a0: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("int 0x80", inlateout("eax") nr as usize => ret, in("ebx") a0,
             options(nostack, preserves_flags));
    }
    ret
}

#[inline]
pub unsafe fn syscall2(nr: u32, a0: usize, a1: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("int 0x80", inlateout("eax") nr as usize => ret, in("ebx") a0, in("ecx") a1,
             options(nostack, preserves_flags));
    }
    ret
}

#[inline]
pub unsafe fn syscall3(nr: u32, a0: usize, a1: usize, a2: usize) -> usize {
    let ret;
    // SAFETY: as syscall0.
    unsafe {
        asm!("int 0x80", inlateout("eax") nr as usize => ret, in("ebx") a0, in("ecx") a1,
             in("edx") a2, options(nostack, preserves_flags));
    }
    ret
}

#[inline]
pub unsafe fn syscall4(nr: u32, a0: usize, a1: usize, a2: usize, a3: usize) -> usize {
    let ret;
    let mem = [a3, nr as usize];
    // SAFETY: as syscall0; esi is saved on the stack and restored, `mem` outlives the block.
    unsafe {
        asm!(
            "push esi",
            "mov esi, [eax]",
            "mov eax, [eax + 4]",
            "int 0x80",
            "pop esi",
            inlateout("eax") mem.as_ptr() => ret,
            in("ebx") a0, in("ecx") a1, in("edx") a2,
            options(preserves_flags),
        );
    }
    ret
}

#[inline]
pub unsafe fn syscall5(nr: u32, a0: usize, a1: usize, a2: usize, a3: usize, a4: usize) -> usize {
    let ret;
    let mem = [a3, nr as usize];
    // SAFETY: as syscall4.
    unsafe {
        asm!(
            "push esi",
            "mov esi, [eax]",
            "mov eax, [eax + 4]",
            "int 0x80",
            "pop esi",
            inlateout("eax") mem.as_ptr() => ret,
            in("ebx") a0, in("ecx") a1, in("edx") a2, in("edi") a4,
            options(preserves_flags),
        );
    }
    ret
}

#[inline]
pub unsafe fn syscall6(
    nr: u32, a0: usize, a1: usize, a2: usize, a3: usize, a4: usize, a5: usize,
) -> usize {
    let ret;
    let mem = [a3, a5, nr as usize];
    // SAFETY: as syscall4; ebp is saved and restored as well.
    unsafe {
        asm!(
            "push ebp",
            "push esi",
            "mov esi, [eax]",
            "mov ebp, [eax + 4]",
            "mov eax, [eax + 8]",
            "int 0x80",
            "pop esi",
            "pop ebp",
            inlateout("eax") mem.as_ptr() => ret,
            in("ebx") a0, in("ecx") a1, in("edx") a2, in("edi") a4,
            options(preserves_flags),
        );
    }
    ret
}

#[inline]
pub unsafe fn syscall1_noreturn(nr: u32, a0: usize) -> ! {
    // SAFETY: as syscall0; the call does not return (exit_group).
    unsafe { asm!("int 0x80", in("eax") nr as usize, in("ebx") a0, options(noreturn, nostack)) }
}

/// Program entry: clear ebp so backtraces stop here, align the stack so that it is 16-byte
/// aligned at the call, and pass the original stack pointer as the cdecl argument.
#[cfg(feature = "freestanding")]
#[unsafe(naked)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        "xor ebp, ebp",
        "mov eax, esp",
        "and esp, -16",
        "sub esp, 12",
        "push eax",
        "call {entry}",
        "ud2",
        entry = sym crate::entry::start,
    )
}
