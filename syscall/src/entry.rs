//! Program start: decode the initial stack that the kernel hands to `_start`.
//!
//! # Safety
//! `start` trusts the kernel's stack layout: argc, argv[0..argc], NULL, envp..., NULL, auxv.
//! The strings live for the whole program, hence `&'static CStr`.
#![allow(unsafe_code)]

use core::ffi::{CStr, c_char};

/// argv, envp and the auxiliary vector as the kernel passed them.
#[derive(Copy, Clone)]
pub struct Args {
    argc: usize,
    argv: *const *const c_char,
    envp: *const *const c_char,
}

impl Args {
    pub fn argc(&self) -> usize {
        self.argc
    }

    /// argv[i], if present.
    pub fn arg(&self, i: usize) -> Option<&'static CStr> {
        if i >= self.argc {
            return None;
        }
        // SAFETY: i < argc and argv has argc valid entries (module safety rule).
        unsafe { ptr_to_cstr(*self.argv.add(i)) }
    }

    pub fn args(&self) -> impl Iterator<Item = &'static CStr> + '_ {
        (0..self.argc).filter_map(|i| self.arg(i))
    }

    /// The environment, in order.
    pub fn env(&self) -> EnvIter {
        EnvIter { next: self.envp }
    }

    /// The raw envp, NULL-terminated, for passing on to execve.
    pub fn envp(&self) -> *const *const c_char {
        self.envp
    }
}

pub struct EnvIter {
    next: *const *const c_char,
}

impl Iterator for EnvIter {
    type Item = &'static CStr;
    fn next(&mut self) -> Option<&'static CStr> {
        // SAFETY: envp is a NULL-terminated array; we stop at the NULL and never pass it.
        unsafe {
            let p = *self.next;
            if p.is_null() {
                return None;
            }
            self.next = self.next.add(1);
            ptr_to_cstr(p)
        }
    }
}

/// # Safety
/// `p` is null or points to a NUL-terminated string that lives for the whole program.
unsafe fn ptr_to_cstr(p: *const c_char) -> Option<&'static CStr> {
    if p.is_null() {
        None
    } else {
        // SAFETY: per the function contract.
        Some(unsafe { CStr::from_ptr(p) })
    }
}

#[cfg(feature = "freestanding")]
unsafe extern "Rust" {
    /// Defined by the program (autoinit's `init/main.rs`, the syscall suite):
    /// `#[unsafe(no_mangle)] fn program_main(args: Args) -> !`.
    safe fn program_main(args: Args) -> !;
}

/// Called by `_start` with the initial stack pointer.
///
/// # Safety
/// `sp` is the stack pointer the kernel gave the process at exec.
#[cfg(feature = "freestanding")]
pub unsafe extern "C" fn start(sp: *const usize) -> ! {
    // SAFETY: the kernel's initial stack layout (module docs).
    let args = unsafe {
        let argc = *sp;
        let argv = sp.add(1) as *const *const c_char;
        let envp = argv.add(argc + 1);
        Args { argc, argv, envp }
    };
    program_main(args)
}
