//! Capabilities: capget/capset (both 32-bit words), the bounding set (PR_CAPBSET_*), the
//! ambient set, keepcaps, no_new_privs and last_cap, each read back through the call and
//! through /proc/self/status. Everything runs in forked children.

use crate::harness::{section, En, T};
use crate::util::{self, proc_field, read_file};
use syscall::cap::{self, CapSets};
use syscall::process;
use syscall::{BorrowedFd, Errno};

const CAP_NET_BIND_SERVICE: u32 = 10;
const CAP_NET_RAW: u32 = 13;
const CAP_SYS_NICE: u32 = 23;
const CAP_MKNOD: u32 = 27;
/// In the high word: proves the second __user_cap_data_struct is the upper 32 bits.
const CAP_SYSLOG: u32 = 34;

const fn bit(cap: u32) -> u64 {
    1 << cap
}

/// A hex capability line of /proc/self/status (`CapEff:`, `CapBnd:`, ...).
fn status_caps(key: &[u8]) -> Option<u64> {
    let mut buf = [0u8; 4096];
    let text = read_file(BorrowedFd::CWD, c"/proc/self/status", &mut buf).ok()?;
    util::parse_radix(proc_field(text, key)?.split(|&b| b == b'\n').next()?, 16)
}

fn status_sets() -> Option<CapSets> {
    Some(CapSets { effective: status_caps(b"CapEff:")?, permitted: status_caps(b"CapPrm:")?, inheritable: status_caps(b"CapInh:")? })
}

pub fn run(t: &mut T) {
    last_cap(t);
    section(t, "cap::capget_capset", capget_capset);
    section(t, "cap::bounding_set", bounding_set);
    section(t, "cap::ambient", ambient);
    section(t, "cap::keepcaps", keepcaps);
    section(t, "cap::no_new_privs", no_new_privs);
}

fn last_cap(t: &mut T) {
    let mut buf = [0u8; 16];
    let want = read_file(BorrowedFd::CWD, c"/proc/sys/kernel/cap_last_cap", &mut buf)
        .ok()
        .and_then(|s| util::parse_radix(s.trim_ascii_end(), 10));
    t.eq("process::last_cap", Some(process::last_cap() as u64), want);
    t.err("process::capbset_read_past_last_einval", process::capbset_read(process::last_cap() + 1), Errno::EINVAL);
    t.err("process::capbset_read_huge_einval", process::capbset_read(u32::MAX), Errno::EINVAL);
}

fn capget_capset(t: &mut T) {
    let Some(now) = t.ok("cap::capget", cap::capget()) else { return };
    t.eq("cap::capget_matches_status", Some(now), status_sets());
    if !util::is_root() {
        t.err("cap::capset_gain_eperm", cap::capset(now.effective, now.permitted | bit(CAP_MKNOD), now.inheritable), Errno::EPERM);
        return;
    }
    if now.permitted & (bit(CAP_SYSLOG) | bit(CAP_NET_RAW)) != bit(CAP_SYSLOG) | bit(CAP_NET_RAW) {
        say!("# cap::capset: CAP_SYSLOG or CAP_NET_RAW not permitted here ({:#x}); skipped", now.permitted);
        return;
    }
    // Drop one capability of each word from effective, one from permitted, and make one
    // inheritable: three distinct sets, each landing in its own place.
    let want = CapSets {
        effective: now.effective & !bit(CAP_NET_RAW) & !bit(CAP_SYSLOG),
        permitted: now.permitted & !bit(CAP_SYSLOG),
        inheritable: bit(CAP_NET_RAW),
    };
    t.eq("cap::capset", cap::capset(want.effective, want.permitted, want.inheritable), Ok(()));
    t.eq("cap::capset_capget", cap::capget(), Ok(want));
    t.eq("cap::capset_status", status_sets(), Some(want));
    // Effective may come back only while permitted; a dropped permitted bit is gone.
    t.eq("cap::capset_raise_effective", cap::capset(want.effective | bit(CAP_NET_RAW), want.permitted, want.inheritable), Ok(()));
    t.err("cap::capset_regain_permitted_eperm",
          cap::capset(want.effective, want.permitted | bit(CAP_SYSLOG), want.inheritable), Errno::EPERM);
    t.err("cap::capset_effective_not_permitted_eperm",
          cap::capset(want.effective | bit(CAP_SYSLOG), want.permitted, want.inheritable), Errno::EPERM);
    // Everything off.
    t.eq("cap::capset_clear", cap::capset(0, 0, 0).and_then(|_| cap::capget()), Ok(CapSets::default()));
    t.eq("cap::capset_clear_status", status_sets(), Some(CapSets::default()));
}

fn bounding_set(t: &mut T) {
    let bnd = status_caps(b"CapBnd:");
    let read = process::capbset_read(CAP_MKNOD);
    t.eq("process::capbset_read", read, Ok(bnd.is_some_and(|b| b & bit(CAP_MKNOD) != 0)));
    if !util::is_root() {
        t.err("process::capbset_drop_eperm", process::capbset_drop(CAP_MKNOD), Errno::EPERM);
        return;
    }
    t.eq("process::capbset_drop", process::capbset_drop(CAP_MKNOD), Ok(()));
    t.eq("process::capbset_read_dropped", process::capbset_read(CAP_MKNOD), Ok(false));
    t.eq("process::capbset_drop_status", status_caps(b"CapBnd:"), bnd.map(|b| b & !bit(CAP_MKNOD)));
    // Dropping again is fine; a capability the kernel does not know is EINVAL.
    t.eq("process::capbset_drop_twice", process::capbset_drop(CAP_MKNOD), Ok(()));
    t.err("process::capbset_drop_unknown_einval", process::capbset_drop(process::last_cap() + 1), Errno::EINVAL);
    // The bounding set limits what capset can make inheritable.
    let now = cap::capget().unwrap_or_default();
    t.err("process::capbset_limits_inheritable",
          cap::capset(now.effective, now.permitted, now.inheritable | bit(CAP_MKNOD)), Errno::EPERM);
}

fn ambient(t: &mut T) {
    t.eq("process::cap_ambient_is_set_initial", process::cap_ambient_is_set(CAP_NET_BIND_SERVICE), Ok(false));
    // Not inheritable yet: raising it is refused.
    t.err("process::cap_ambient_raise_eperm", process::cap_ambient_raise(CAP_NET_BIND_SERVICE), Errno::EPERM);
    t.err("process::cap_ambient_raise_unknown_einval", process::cap_ambient_raise(process::last_cap() + 1), Errno::EINVAL);
    if !util::is_root() {
        return;
    }
    let Some(now) = t.need("cap::capget_ambient", cap::capget()) else { return };
    let inh = bit(CAP_NET_BIND_SERVICE) | bit(CAP_SYS_NICE);
    let Some(()) = t.need("cap::capset_inheritable", cap::capset(now.effective, now.permitted, inh)) else { return };
    t.eq("process::cap_ambient_raise", process::cap_ambient_raise(CAP_NET_BIND_SERVICE), Ok(()));
    t.eq("process::cap_ambient_raise_2", process::cap_ambient_raise(CAP_SYS_NICE), Ok(()));
    t.eq("process::cap_ambient_is_set", process::cap_ambient_is_set(CAP_NET_BIND_SERVICE), Ok(true));
    t.eq("process::cap_ambient_status", status_caps(b"CapAmb:"), Some(inh));
    // Taking a capability out of inheritable takes it out of ambient too.
    let _ = cap::capset(now.effective, now.permitted, bit(CAP_NET_BIND_SERVICE));
    t.eq("process::cap_ambient_follows_inheritable", status_caps(b"CapAmb:"), Some(bit(CAP_NET_BIND_SERVICE)));
    t.eq("process::cap_ambient_clear_all", process::cap_ambient_clear_all(), Ok(()));
    t.eq("process::cap_ambient_cleared", (process::cap_ambient_is_set(CAP_NET_BIND_SERVICE), status_caps(b"CapAmb:")),
         (Ok(false), Some(0)));
}

fn keepcaps(t: &mut T) {
    t.eq("process::keepcaps_initial", process::keepcaps(), Ok(false));
    t.eq("process::set_keepcaps", process::set_keepcaps(true), Ok(()));
    t.eq("process::keepcaps_set", process::keepcaps(), Ok(true));
    if !util::is_root() {
        return;
    }
    // With keepcaps, leaving uid 0 keeps the permitted set (effective is still cleared).
    let before = cap::capget();
    let r = process::setresuid(65534, 65534, 65534);
    let after = cap::capget();
    t.eq("process::keepcaps_setresuid", r, Ok(()));
    t.eq("process::keepcaps_keeps_permitted", after.map(|c| (c.effective, c.permitted)),
         before.map(|c| (0, c.permitted)));
    if let (Ok(a), Ok(b)) = (after, before) {
        t.check("process::keepcaps_permitted_nonzero", a.permitted != 0 && a.permitted == b.permitted,
                format_args!("permitted {:#x}", a.permitted));
    }
    t.eq("process::set_keepcaps_off", process::set_keepcaps(false).and_then(|_| process::keepcaps()), Ok(false));
}

fn no_new_privs(t: &mut T) {
    let status = || status_caps(b"NoNewPrivs:");
    let before = process::no_new_privs();
    t.eq("process::no_new_privs_initial", before.map(|b| b as u64).ok(), status());
    t.eq("process::set_no_new_privs", process::set_no_new_privs(), Ok(()));
    t.eq("process::no_new_privs", process::no_new_privs(), Ok(true));
    t.eq("process::no_new_privs_status", status(), Some(1));
    // It cannot be turned off (PR_SET_NO_NEW_PRIVS takes only 1).
    let r = process::prctl(linux_raw_sys::prctl::PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0);
    t.err("process::no_new_privs_irrevocable", r, Errno::EINVAL);
    // Inherited by children.
    match crate::harness::spawn(|| if process::no_new_privs() == Ok(true) { 0 } else { 1 }) {
        Ok(pid) => {
            t.eq("process::no_new_privs_inherited", crate::harness::wait(pid).map(|s| s.exit_code()), Ok(Some(0)));
        }
        Err(e) => t.fail("process::no_new_privs_inherited", format_args!("{:?}", En(e))),
    }
}
