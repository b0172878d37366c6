//! sd_notify datagrams: `notify_msg::parse` on at most `NOTIFY_BYTES` of the input, as
//! services.rs reads one from the notify socket.
//!
//! Invariants: the result is what a line-by-line reference computes (the last good value of
//! a key wins, every other non-empty line is counted as unknown or unsupported); `STATUS=`
//! borrows from the datagram and has no control character; `MAINPID=` is never 0 or 1; the
//! result does not depend on the bytes after the datagram; a datagram made of the result's
//! own assignments parses to the same values.

use autoinit::notify_msg::{self, NOTIFY_BYTES, Notify};

const UNSUPPORTED: [&str; 12] = [
    "FDSTORE",
    "FDSTOREREMOVE",
    "FDNAME",
    "FDPOLL",
    "WATCHDOG_USEC",
    "EXTEND_TIMEOUT_USEC",
    "MONOTONIC_USEC",
    "BUSERROR",
    "EXIT_STATUS",
    "NOTIFYACCESS",
    "BARRIER",
    "X_SYSTEMD_UNIT_ACTIVE",
];

fn number(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    core::str::from_utf8(v).ok()?.parse().ok()
}

fn reference(bytes: &[u8]) -> Notify<'_> {
    let mut n = Notify::default();
    for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let Some(eq) = line.iter().position(|&b| b == b'=') else {
            n.unknown = n.unknown.saturating_add(1);
            continue;
        };
        let (key, value) = (&line[..eq], &line[eq + 1..]);
        let ok = match key {
            b"READY" if value == b"1" => {
                n.ready = true;
                true
            }
            b"STOPPING" if value == b"1" => {
                n.stopping = true;
                true
            }
            b"RELOADING" if value == b"1" => {
                n.reloading = true;
                true
            }
            b"WATCHDOG" if value == b"1" => {
                n.watchdog_ping = true;
                true
            }
            b"STATUS" => match core::str::from_utf8(value) {
                Ok(s) if !s.chars().any(char::is_control) => {
                    n.status = Some(s);
                    true
                }
                _ => false,
            },
            b"MAINPID" => match number(value).and_then(|p| i32::try_from(p).ok()).filter(|&p| p > 1) {
                Some(p) => {
                    n.mainpid = Some(p);
                    true
                }
                None => false,
            },
            b"ERRNO" => match number(value).and_then(|e| i32::try_from(e).ok()) {
                Some(e) => {
                    n.errno = Some(e);
                    true
                }
                None => false,
            },
            k if UNSUPPORTED.iter().any(|u| u.as_bytes() == k) => {
                n.unsupported = n.unsupported.saturating_add(1);
                true
            }
            _ => false,
        };
        if !ok {
            n.unknown = n.unknown.saturating_add(1);
        }
    }
    n
}

pub fn check(data: &[u8]) {
    let msg = &data[..data.len().min(NOTIFY_BYTES)];
    let n = notify_msg::parse(msg);
    assert_eq!(n, reference(msg), "parse {:?}", String::from_utf8_lossy(msg));
    let lines = msg.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count();
    assert!(usize::from(n.unknown) + usize::from(n.unsupported) <= lines);
    if let Some(s) = n.status {
        let (at, start) = (s.as_ptr() as usize, msg.as_ptr() as usize);
        assert!(at >= start && at + s.len() <= start + msg.len(), "STATUS= not from the datagram");
        assert!(!s.chars().any(char::is_control));
    }
    assert!(n.mainpid.is_none_or(|p| p > 1));
    // In a larger receive buffer, after other datagrams' bytes.
    let mut buf = vec![b'\n'; NOTIFY_BYTES + 16];
    buf[..msg.len()].copy_from_slice(msg);
    assert_eq!(notify_msg::parse(&buf[..msg.len()]), n);
    // Its own assignments say the same.
    let mut again = String::new();
    for (set, key) in [(n.ready, "READY"), (n.stopping, "STOPPING"), (n.reloading, "RELOADING"), (n.watchdog_ping, "WATCHDOG")] {
        if set {
            again += &format!("{key}=1\n");
        }
    }
    if let Some(s) = n.status {
        again += &format!("STATUS={s}\n");
    }
    if let Some(p) = n.mainpid {
        again += &format!("MAINPID={p}\n");
    }
    if let Some(e) = n.errno {
        again += &format!("ERRNO={e}");
    }
    let m = notify_msg::parse(again.as_bytes());
    assert_eq!((m.ready, m.stopping, m.reloading, m.watchdog_ping, m.status, m.mainpid, m.errno, m.unknown, m.unsupported),
        (n.ready, n.stopping, n.reloading, n.watchdog_ping, n.status, n.mainpid, n.errno, 0, 0), "{again:?}");
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples() {
        for s in [
            &b"READY=1\nSTATUS=Processing requests...\nMAINPID=4242\n"[..],
            b"READY=2\nMAINPID=1\nMAINPID=0\nERRNO=99999999999\nFDSTORE=1\nnonsense\n\n=\nSTATUS=a\tb\nSTATUS=\xff",
            b"MAINPID=+5\nERRNO=-1\nWATCHDOG=1\nSTOPPING=1\nRELOADING=1",
        ] {
            super::check(s);
        }
    }
}
