//! Signals: Signal/SigSet helpers, rt_sigprocmask, dispositions, signalfd. The mask and
//! dispositions are per process, so the checks run in a child.

use crate::harness::{section, spawn, wait, T};
use syscall::io::{self, PollFd, POLLIN};
use syscall::process;
use syscall::signal::{self, Disposition, MaskHow, SfdFlags, SigSet, Signal};
use syscall::time::Timespec;
use syscall::Errno;

pub fn run(t: &mut T) {
    helpers(t);
    section(t, "signal::mask_signalfd", mask_signalfd);
    section(t, "signal::dispositions", dispositions);
}

fn helpers(t: &mut T) {
    t.eq("signal::numbers", (Signal::HUP.0, Signal::INT.0, Signal::KILL.0, Signal::USR1.0, Signal::TERM.0, Signal::CHLD.0),
         (1, 2, 9, 10, 15, 17));
    let named = [Signal::HUP, Signal::INT, Signal::QUIT, Signal::KILL, Signal::USR1, Signal::USR2, Signal::PIPE, Signal::ALRM,
                 Signal::TERM, Signal::CHLD, Signal::CONT, Signal::STOP, Signal::TSTP, Signal::TTIN, Signal::TTOU, Signal::PWR,
                 Signal::WINCH];
    let unnamed = named.iter().find(|s| s.name().is_none());
    t.check("signal::name_all_constants", unnamed.is_none(), format_args!("{unnamed:?} has no name"));
    t.eq("signal::name", (Signal::TERM.name(), Signal::PWR.name(), Signal::WINCH.name(), Signal(40).name()),
         (Some("TERM"), Some("PWR"), Some("WINCH"), None));
    let s = SigSet::EMPTY.with(Signal::USR1).with(Signal(64));
    t.eq("signal::sigset_bits", s.0, (1 << 9) | (1 << 63));
    t.eq("signal::sigset_contains", (s.contains(Signal::USR1), s.contains(Signal::USR2), s.contains(Signal(64))),
         (true, false, true));
    t.eq("signal::sigset_out_of_range", (SigSet::EMPTY.with(Signal(0)), SigSet::EMPTY.with(Signal(65)), SigSet::FULL.contains(Signal(0))),
         (SigSet::EMPTY, SigSet::EMPTY, false));
}

fn mask_signalfd(t: &mut T) {
    let usr = SigSet::EMPTY.with(Signal::USR1).with(Signal::USR2);
    let Some(start) = t.ok("signal::sigprocmask_block", signal::sigprocmask(MaskHow::Block, &usr)) else { return };
    t.eq("signal::sigprocmask_initial_empty", start, SigSet::EMPTY);
    t.eq("signal::sigprocmask_query", signal::sigprocmask(MaskHow::Block, &SigSet::EMPTY), Ok(usr));
    t.eq("signal::sigprocmask_unblock", signal::sigprocmask(MaskHow::Unblock, &SigSet::EMPTY.with(Signal::USR2)), Ok(usr));
    t.eq("signal::sigprocmask_set", signal::sigprocmask(MaskHow::Set, &usr), Ok(SigSet::EMPTY.with(Signal::USR1)));
    // SIGKILL and SIGSTOP cannot be blocked: the kernel drops them from the mask.
    let _ = signal::sigprocmask(MaskHow::Block, &SigSet::EMPTY.with(Signal::KILL).with(Signal::STOP));
    t.eq("signal::sigprocmask_kill_unblockable", signal::sigprocmask(MaskHow::Block, &SigSet::EMPTY), Ok(usr));

    let Some(sfd) = t.ok("signal::signalfd", signal::signalfd(&usr, SfdFlags::NONBLOCK | SfdFlags::CLOEXEC)) else { return };
    t.check("signal::signalfd_cloexec", crate::util::fd_flags(&sfd).is_some_and(|f| f & crate::util::FDINFO_CLOEXEC != 0),
            format_args!("fdinfo flags {:?}", crate::util::fd_flags(&sfd)));
    t.eq("signal::read_signalfd_none", signal::read_signalfd(&sfd).map(|o| o.is_some()), Ok(false));
    let me = process::getpid();
    t.eq("signal::kill_self_blocked", process::kill(me.0, Signal::USR1), Ok(()));
    let got = signal::read_signalfd(&sfd).map(|o| o.map(|i| (i.signo, i.code, i.pid, i.uid)));
    t.eq("signal::read_signalfd", got, Ok(Some((Signal::USR1.0, linux_raw_sys::general::SI_USER as i32, me.0 as u32, process::getuid()))));
    t.eq("signal::read_signalfd_drained", signal::read_signalfd(&sfd).map(|o| o.is_some()), Ok(false));
    // Two different signals, both delivered (in number order).
    let _ = process::kill(me.0, Signal::USR2);
    let _ = process::kill(me.0, Signal::USR1);
    let a = signal::read_signalfd(&sfd).map(|o| o.map(|i| i.signo));
    let b = signal::read_signalfd(&sfd).map(|o| o.map(|i| i.signo));
    t.eq("signal::read_signalfd_two", (a, b), (Ok(Some(10)), Ok(Some(12))));
    // A blocking signalfd becomes readable for ppoll when a signal arrives.
    if let Some(bfd) = t.need("signal::signalfd_blocking", signal::signalfd(&usr, SfdFlags::CLOEXEC)) {
        let mut fds = [PollFd::new(&bfd, POLLIN)];
        t.eq("signal::signalfd_poll_idle", io::ppoll(&mut fds, Some(&Timespec::from_millis(0)), None), Ok(0));
        let _ = process::kill(me.0, Signal::USR2);
        let n = io::ppoll(&mut fds, Some(&Timespec::from_millis(1000)), None);
        t.eq("signal::signalfd_poll_ready", (n, fds[0].revents & POLLIN), (Ok(1), POLLIN));
        t.eq("signal::read_signalfd_blocking", signal::read_signalfd(&bfd).map(|o| o.map(|i| i.signo)), Ok(Some(12)));
    }
    t.err("signal::signalfd_bad_flags", signal::signalfd(&usr, SfdFlags(0x1)).map(|f| f.into_raw()), Errno::EINVAL);
    // A signal sent by a child carries the child's pid.
    if let Ok(pid) = spawn(|| {
        let _ = process::kill(process::getppid().0, Signal::USR1);
        0
    }) {
        let _ = wait(pid);
        let got = signal::read_signalfd(&sfd).map(|o| o.map(|i| (i.signo, i.pid)));
        t.eq("signal::read_signalfd_sender_pid", got, Ok(Some((10, pid.0 as u32))));
    }
    let _ = signal::sigprocmask(MaskHow::Set, &SigSet::EMPTY);
}

fn dispositions(t: &mut T) {
    // Ignored, a signal sent to ourselves does nothing: we are still here to say so.
    t.eq("signal::set_disposition_ignore", signal::set_disposition(Signal::USR2, Disposition::Ignore), Ok(()));
    t.eq("signal::kill_self_ignored", process::kill(process::getpid().0, Signal::USR2), Ok(()));
    t.pass("signal::survived_ignored_signal");
    t.err("signal::set_disposition_kill_einval", signal::set_disposition(Signal::KILL, Disposition::Ignore), Errno::EINVAL);
    t.err("signal::set_disposition_range_einval", signal::set_disposition(Signal(65), Disposition::Default), Errno::EINVAL);
    // Back to the default: now the same signal kills (observed in a child, which inherits
    // the disposition through fork).
    t.eq("signal::set_disposition_default", signal::set_disposition(Signal::USR2, Disposition::Default), Ok(()));
    if let Ok(pid) = spawn(|| {
        let _ = process::kill(process::getpid().0, Signal::USR2);
        0
    }) {
        t.eq("signal::default_kills", wait(pid).map(|s| s.signal()), Ok(Some(Signal::USR2)));
    }
    // An ignored disposition is inherited by a child and survives there too.
    let _ = signal::set_disposition(Signal::TERM, Disposition::Ignore);
    if let Ok(pid) = spawn(|| {
        let _ = process::kill(process::getpid().0, Signal::TERM);
        3
    }) {
        t.eq("signal::ignore_inherited", wait(pid).map(|s| s.exit_code()), Ok(Some(3)));
    }
    // Ignoring a pending signal discards it.
    let _ = signal::sigprocmask(MaskHow::Block, &SigSet::EMPTY.with(Signal::USR1));
    let _ = process::kill(process::getpid().0, Signal::USR1);
    let _ = signal::set_disposition(Signal::USR1, Disposition::Ignore);
    let _ = signal::set_disposition(Signal::USR1, Disposition::Default);
    if let Ok(sfd) = signal::signalfd(&SigSet::EMPTY.with(Signal::USR1), SfdFlags::NONBLOCK | SfdFlags::CLOEXEC) {
        t.eq("signal::ignore_discards_pending", signal::read_signalfd(&sfd).map(|o| o.is_some()), Ok(false));
    }
}
