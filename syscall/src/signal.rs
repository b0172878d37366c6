//! Signals: rt_sigprocmask, rt_sigaction (default/ignore dispositions), signalfd4.
//!
//! autoinit never installs a handler: every signal it cares about is blocked and read from a
//! signalfd, so no code runs asynchronously.
//!
//! # Safety
//! Calls pass pointers to local sigset/sigaction/siginfo values of the kernel's layout.
#![allow(unsafe_code)]

use crate::arch::*;
use crate::errno::{check, check_unit, Errno, Result};
use crate::fd::{arg, AsFd, OwnedFd};
use crate::nr;
use linux_raw_sys::general as g;

/// A signal number (the same numbers on all five arches).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Signal(pub u32);

impl Signal {
    pub const HUP: Signal = Signal(g::SIGHUP);
    pub const INT: Signal = Signal(g::SIGINT);
    pub const QUIT: Signal = Signal(g::SIGQUIT);
    pub const KILL: Signal = Signal(g::SIGKILL);
    pub const USR1: Signal = Signal(g::SIGUSR1);
    pub const USR2: Signal = Signal(g::SIGUSR2);
    pub const PIPE: Signal = Signal(g::SIGPIPE);
    pub const ALRM: Signal = Signal(g::SIGALRM);
    pub const TERM: Signal = Signal(g::SIGTERM);
    pub const CHLD: Signal = Signal(g::SIGCHLD);
    pub const CONT: Signal = Signal(g::SIGCONT);
    pub const STOP: Signal = Signal(g::SIGSTOP);
    pub const TSTP: Signal = Signal(g::SIGTSTP);
    pub const TTIN: Signal = Signal(g::SIGTTIN);
    pub const TTOU: Signal = Signal(g::SIGTTOU);
    pub const PWR: Signal = Signal(g::SIGPWR);
    pub const WINCH: Signal = Signal(g::SIGWINCH);

    /// The conventional name without "SIG" (`"TERM"`), if it is one of the named signals.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Signal::HUP => "HUP",
            Signal::INT => "INT",
            Signal::QUIT => "QUIT",
            Signal::KILL => "KILL",
            Signal::USR1 => "USR1",
            Signal::USR2 => "USR2",
            Signal::PIPE => "PIPE",
            Signal::ALRM => "ALRM",
            Signal::TERM => "TERM",
            Signal::CHLD => "CHLD",
            Signal::CONT => "CONT",
            Signal::STOP => "STOP",
            Signal::TSTP => "TSTP",
            Signal::TTIN => "TTIN",
            Signal::TTOU => "TTOU",
            Signal::PWR => "PWR",
            Signal::WINCH => "WINCH",
            _ => return None,
        })
    }
}

/// The kernel's 64-bit signal set.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
#[repr(transparent)]
pub struct SigSet(pub u64);

impl SigSet {
    pub const EMPTY: SigSet = SigSet(0);
    pub const FULL: SigSet = SigSet(u64::MAX);

    pub const fn with(self, s: Signal) -> SigSet {
        if s.0 >= 1 && s.0 <= 64 { SigSet(self.0 | 1 << (s.0 - 1)) } else { self }
    }

    pub const fn contains(self, s: Signal) -> bool {
        s.0 >= 1 && s.0 <= 64 && self.0 & (1 << (s.0 - 1)) != 0
    }
}

/// How rt_sigprocmask changes the mask.
#[derive(Copy, Clone, Debug)]
pub enum MaskHow {
    Block = g::SIG_BLOCK as isize,
    Unblock = g::SIG_UNBLOCK as isize,
    Set = g::SIG_SETMASK as isize,
}

/// rt_sigprocmask(how, set, old) — returns the previous mask.
pub fn sigprocmask(how: MaskHow, set: &SigSet) -> Result<SigSet> {
    let mut old = SigSet::EMPTY;
    // SAFETY: see module docs; sigsetsize is 8 on every supported arch.
    check_unit(unsafe {
        syscall4(nr::__NR_rt_sigprocmask, how as usize, set as *const SigSet as usize,
                 &mut old as *mut SigSet as usize, 8)
    })?;
    Ok(old)
}

/// A disposition autoinit may set: it never installs handlers.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Disposition {
    Default,
    Ignore,
}

/// The kernel's `struct sigaction` for rt_sigaction: riscv has no sa_restorer field. The
/// mask is `unsigned long[]`, not a u64: on 32-bit arm a u64 is 8-byte aligned and would
/// move the field from offset 12 to 16 (the kernel then read padding as the low word).
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: usize,
    #[cfg(not(target_arch = "riscv64"))]
    restorer: usize,
    mask: [usize; SIGSET_WORDS],
}

const SIGSET_WORDS: usize = 8 / core::mem::size_of::<usize>();

/// The layout the kernel expects: the mask right after two (riscv) or three pointer-sized
/// fields, and nothing after it.
const SIGACTION_HEAD: usize = if cfg!(target_arch = "riscv64") { 2 } else { 3 } * core::mem::size_of::<usize>();
const _: () = assert!(core::mem::offset_of!(KernelSigaction, mask) == SIGACTION_HEAD);
const _: () = assert!(core::mem::size_of::<KernelSigaction>() == SIGACTION_HEAD + 8);

impl SigSet {
    /// The set as the kernel's `unsigned long` words, lowest signals first.
    #[cfg(target_pointer_width = "64")]
    const fn words(self) -> [usize; SIGSET_WORDS] {
        [self.0 as usize]
    }

    #[cfg(target_pointer_width = "32")]
    const fn words(self) -> [usize; SIGSET_WORDS] {
        [self.0 as u32 as usize, (self.0 >> 32) as usize]
    }
}

/// rt_sigaction(sig, {SIG_DFL or SIG_IGN}, NULL).
pub fn set_disposition(sig: Signal, d: Disposition) -> Result<()> {
    let act = KernelSigaction {
        handler: match d {
            Disposition::Default => 0,
            Disposition::Ignore => 1,
        },
        flags: 0,
        #[cfg(not(target_arch = "riscv64"))]
        restorer: 0,
        mask: SigSet::EMPTY.words(),
    };
    // SAFETY: see module docs; no handler code is installed.
    check_unit(unsafe {
        syscall4(nr::__NR_rt_sigaction, sig.0 as usize, &act as *const KernelSigaction as usize, 0, 8)
    })
}

/// What signalfd reads deliver (`struct signalfd_siginfo`, 128 bytes).
#[derive(Copy, Clone, Debug, Default)]
#[repr(C)]
pub struct SignalfdSiginfo {
    pub signo: u32,
    pub errno: i32,
    pub code: i32,
    pub pid: u32,
    pub uid: u32,
    pub fd: i32,
    pub tid: u32,
    pub band: u32,
    pub overrun: u32,
    pub trapno: u32,
    pub status: i32,
    pub int: i32,
    pub ptr: u64,
    pub utime: u64,
    pub stime: u64,
    pub addr: u64,
    pub addr_lsb: u16,
    _pad2: u16,
    pub syscall: i32,
    pub call_addr: u64,
    pub arch: u32,
    _pad: [u8; 28],
}

const _: () = assert!(core::mem::size_of::<SignalfdSiginfo>() == 128);

flags! {
    /// signalfd4 flags (same values as O_NONBLOCK / O_CLOEXEC).
    pub struct SfdFlags: u32 {
        const NONBLOCK = g::O_NONBLOCK;
        const CLOEXEC = g::O_CLOEXEC;
    }
}

/// signalfd4(-1, mask, 8, flags) — a new fd that reads the signals in `mask` (which must
/// also be blocked).
pub fn signalfd(mask: &SigSet, flags: SfdFlags) -> Result<OwnedFd> {
    // SAFETY: see module docs.
    let ret = unsafe {
        syscall4(nr::__NR_signalfd4, -1isize as usize, mask as *const SigSet as usize, 8, flags.bits() as usize)
    };
    check(ret).map(|fd| OwnedFd::from_raw(fd as i32))
}

/// Reads one pending signal from a signalfd; `None` if none is pending (non-blocking fd).
pub fn read_signalfd(fd: impl AsFd) -> Result<Option<SignalfdSiginfo>> {
    let mut info = SignalfdSiginfo::default();
    // SAFETY: see module docs; `info` is 128 writable bytes.
    let ret = unsafe {
        syscall3(nr::__NR_read, arg(fd.as_fd()), &mut info as *mut SignalfdSiginfo as usize, 128)
    };
    match check(ret) {
        Ok(128) => Ok(Some(info)),
        Ok(_) => Err(Errno::EIO),
        Err(Errno::EAGAIN) => Ok(None),
        Err(e) => Err(e),
    }
}
