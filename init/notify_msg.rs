//! sd_notify(3) datagrams, as `Type=notify` services send them to `$NOTIFY_SOCKET`: lines of
//! `KEY=VALUE` separated by `\n` (pure, host-tested). Any bytes parse: what is not understood
//! is counted, never a panic.

use crate::text::parse_u64;

/// Largest datagram read; systemd reads up to its page-size buffer too. A longer one arrives
/// cut (MSG_TRUNC) and its last line may be incomplete.
pub const NOTIFY_BYTES: usize = 4096;

/// What one datagram says. A key given twice counts as its last value.
#[derive(Copy, Clone, PartialEq, Eq, Debug, Default)]
pub struct Notify<'a> {
    /// `READY=1`: startup finished.
    pub ready: bool,
    /// `STOPPING=1`: the service is shutting down on its own.
    pub stopping: bool,
    /// `RELOADING=1`: the service is reloading its configuration.
    pub reloading: bool,
    /// `STATUS=...`: a free-form one-line status, shown by `status`.
    pub status: Option<&'a str>,
    /// `MAINPID=N`: the service's main process is N (never 0 or 1).
    pub mainpid: Option<i32>,
    /// `WATCHDOG=1`: a keep-alive ping.
    pub watchdog_ping: bool,
    /// `ERRNO=N`: the service failed with errno N.
    pub errno: Option<i32>,
    /// Lines that are not `KEY=VALUE`, keys we do not know, or known keys with a bad value.
    pub unknown: u16,
    /// systemd keys that autoinit knows but does not implement (`FDSTORE=1`, `WATCHDOG_USEC=`,
    /// `EXTEND_TIMEOUT_USEC=`...): worth a debug line, not a warning.
    pub unsupported: u16,
}

/// Keys systemd defines that autoinit ignores on purpose.
const UNSUPPORTED: [&[u8]; 12] = [
    b"FDSTORE",
    b"FDSTOREREMOVE",
    b"FDNAME",
    b"FDPOLL",
    b"WATCHDOG_USEC",
    b"EXTEND_TIMEOUT_USEC",
    b"MONOTONIC_USEC",
    b"BUSERROR",
    b"EXIT_STATUS",
    b"NOTIFYACCESS",
    b"BARRIER",
    b"X_SYSTEMD_UNIT_ACTIVE",
];

fn flag(value: &[u8]) -> Option<bool> {
    (value == b"1").then_some(true)
}

pub fn parse(bytes: &[u8]) -> Notify<'_> {
    let mut n = Notify::default();
    for line in bytes.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let Some(eq) = line.iter().position(|&b| b == b'=') else {
            n.unknown = n.unknown.saturating_add(1);
            continue;
        };
        let (key, value) = line.split_at(eq);
        let value = value.get(1..).unwrap_or(&[]);
        let understood = match key {
            b"READY" => flag(value).map(|_| n.ready = true),
            b"STOPPING" => flag(value).map(|_| n.stopping = true),
            b"RELOADING" => flag(value).map(|_| n.reloading = true),
            b"WATCHDOG" => flag(value).map(|_| n.watchdog_ping = true),
            b"STATUS" => core::str::from_utf8(value)
                .ok()
                .filter(|s| !s.chars().any(char::is_control))
                .map(|s| n.status = Some(s)),
            b"MAINPID" => parse_u64(value)
                .and_then(|pid| i32::try_from(pid).ok())
                .filter(|&pid| pid > 1)
                .map(|pid| n.mainpid = Some(pid)),
            b"ERRNO" => {
                parse_u64(value).and_then(|e| i32::try_from(e).ok()).map(|e| n.errno = Some(e))
            }
            _ if UNSUPPORTED.contains(&key) => {
                n.unsupported = n.unsupported.saturating_add(1);
                Some(())
            }
            _ => None,
        };
        if understood.is_none() {
            n.unknown = n.unknown.saturating_add(1);
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typical_ready_message() {
        let n = parse(b"READY=1\nSTATUS=Processing requests...\nMAINPID=4242\n");
        assert_eq!(
            n,
            Notify {
                ready: true,
                status: Some("Processing requests..."),
                mainpid: Some(4242),
                ..Notify::default()
            }
        );
    }

    #[test]
    fn every_key() {
        let n = parse(b"STOPPING=1\nRELOADING=1\nWATCHDOG=1\nERRNO=2\nSTATUS=\nFDSTORE=1\nWATCHDOG_USEC=5000000");
        assert!(n.stopping && n.reloading && n.watchdog_ping && !n.ready);
        assert_eq!(n.errno, Some(2));
        assert_eq!(n.status, Some(""));
        assert_eq!((n.unknown, n.unsupported), (0, 2));
    }

    #[test]
    fn bad_values_are_counted_and_ignored() {
        let n = parse(b"READY=0\nREADY=yes\nMAINPID=1\nMAINPID=0\nMAINPID=-5\nMAINPID=2147483648\nERRNO=-1\nERRNO=x\nSTATUS=\xff\nSTATUS=a\x1bb\n");
        assert_eq!(n, Notify { unknown: 10, ..Notify::default() });
        let n = parse(b"garbage\n=1\nready=1\nFOO=bar\n\n\n");
        assert_eq!(n, Notify { unknown: 4, ..Notify::default() });
    }

    #[test]
    fn last_value_wins_and_earlier_flags_stay() {
        let n = parse(b"STATUS=one\nMAINPID=10\nREADY=1\nSTATUS=two\nMAINPID=11\nREADY=0");
        assert_eq!(n.status, Some("two"));
        assert_eq!(n.mainpid, Some(11));
        assert!(n.ready);
        assert_eq!(n.unknown, 1);
        // A value may contain '='.
        assert_eq!(parse(b"STATUS=a=b").status, Some("a=b"));
        assert_eq!(parse(b"MAINPID=2147483647").mainpid, Some(i32::MAX));
    }

    #[test]
    fn empty_and_huge_datagrams() {
        assert_eq!(parse(b""), Notify::default());
        let many = b"X\n".repeat(70_000);
        assert_eq!(parse(&many).unknown, u16::MAX);
        let mut big = b"READY=1\n".to_vec();
        big.extend(std::iter::repeat_n(b'A', NOTIFY_BYTES * 2));
        let n = parse(&big);
        assert!(n.ready);
        assert_eq!(n.unknown, 1);
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        let alphabet = b"READY=1\nSTATUS=\xff\x00MAINPID9-";
        for _ in 0..5000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| alphabet[((seed >> (i % 40)) as usize ^ i) % alphabet.len()])
                .collect();
            let _ = parse(&bytes);
        }
    }
}
