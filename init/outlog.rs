//! Service output to /dev/kmsg (pure, host-tested): splitting a pipe's bytes into clean lines,
//! a per-service rate limit, the record format `<L>name[pid]: text`, and for the `log NAME`
//! client, reading records back from /dev/kmsg and picking a unit's lines.

use crate::text::{U64_DIGITS, parse_u64, u64_digits};

/// Suggested line capacity of a service's [`LineSplitter`]: 100 services cost 25 KiB.
/// A kmsg record holds about 1000 bytes of text, so this is our limit, not the kernel's.
pub const LINE_BYTES: usize = 256;

/// Lines a service may log at once before the rate limit starts dropping.
pub const LINES_BURST: u32 = 200;
/// Lines per second a service may log in the long run.
pub const LINES_PER_SEC: u32 = 50;

/// Collects bytes read from a service's stdout/stderr pipe and hands out whole lines, cleaned
/// for the log: trailing whitespace (a `\r` too) trimmed, tabs turned into spaces and any
/// other control byte into `?`. Empty lines are not handed out. A line longer than `N` bytes
/// is handed out cut at `N` with `cut` set; the rest of it, up to its `\n`, is dropped.
pub struct LineSplitter<const N: usize> {
    buf: [u8; N],
    len: usize,
    /// The current line was handed out cut; its remaining bytes are dropped.
    dropping: bool,
}

impl<const N: usize> Default for LineSplitter<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> LineSplitter<N> {
    pub const fn new() -> Self {
        LineSplitter { buf: [0; N], len: 0, dropping: false }
    }

    /// Takes more bytes; `emit(line, cut)` is called for each line they complete.
    pub fn push(&mut self, bytes: &[u8], mut emit: impl FnMut(&[u8], bool)) {
        for &b in bytes {
            if b == b'\n' {
                if !self.dropping {
                    self.emit(false, &mut emit);
                }
                self.len = 0;
                self.dropping = false;
            } else if self.dropping {
                // The rest of a line already handed out cut.
            } else if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len = self.len.saturating_add(1);
            } else {
                self.emit(true, &mut emit);
                self.len = 0;
                self.dropping = true;
            }
        }
    }

    /// At EOF: hands out an unfinished last line, and starts afresh.
    pub fn flush(&mut self, mut emit: impl FnMut(&[u8], bool)) {
        if !self.dropping {
            self.emit(false, &mut emit);
        }
        self.len = 0;
        self.dropping = false;
    }

    /// Bytes of an unfinished line waiting for their `\n`.
    pub fn pending(&self) -> usize {
        self.len
    }

    fn emit(&mut self, cut: bool, emit: &mut impl FnMut(&[u8], bool)) {
        let line = self.buf.get_mut(..self.len).unwrap_or(&mut []);
        let end =
            line.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |i| i.saturating_add(1));
        let line = line.get_mut(..end).unwrap_or(&mut []);
        for b in line.iter_mut() {
            if *b == b'\t' {
                *b = b' ';
            } else if *b < b' ' || *b == 0x7f {
                *b = b'?';
            }
        }
        if !line.is_empty() {
            emit(line, cut);
        }
    }
}

/// Lines being assembled for many outputs (the units' pipes) in `K` shared [`LineSplitter`]s:
/// an output holds one only while its bytes end mid-line (or it drops the rest of a cut
/// line), which is rare for line-buffered writers, instead of every output owning one. When
/// all `K` are held, an output's bytes are split on their own and its unfinished line is
/// handed out at once as it is, as at EOF.
pub struct LinePool<const N: usize, const K: usize> {
    lines: [LineSplitter<N>; K],
    held: [bool; K],
}

impl<const N: usize, const K: usize> Default for LinePool<N, K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize, const K: usize> LinePool<N, K> {
    /// Slots are numbered with a `u8`.
    const SLOTS_FIT: () = assert!(K <= 255, "LinePool: at most 255 slots");

    pub const fn new() -> Self {
        let () = Self::SLOTS_FIT;
        LinePool { lines: [const { LineSplitter::new() }; K], held: [false; K] }
    }

    /// Takes `bytes` of the output that holds `slot` (None: none yet); `emit` as for
    /// [`LineSplitter::push`]. Returns the slot the output holds afterwards.
    pub fn push(&mut self, slot: Option<u8>, bytes: &[u8], mut emit: impl FnMut(&[u8], bool)) -> Option<u8> {
        let k = slot.map(usize::from).filter(|&k| self.held.get(k) == Some(&true)).or_else(|| self.held.iter().position(|h| !h));
        match k.and_then(|k| Some((k, self.lines.get_mut(k)?))) {
            Some((k, split)) => {
                split.push(bytes, &mut emit);
                let idle = split.len == 0 && !split.dropping;
                if let Some(h) = self.held.get_mut(k) {
                    *h = !idle;
                }
                if idle { None } else { u8::try_from(k).ok() }
            }
            None => {
                let mut split = LineSplitter::<N>::new();
                split.push(bytes, &mut emit);
                split.flush(&mut emit);
                None
            }
        }
    }

    /// At EOF, or when the output goes away: hands out its unfinished line and frees its slot.
    pub fn flush(&mut self, slot: Option<u8>, emit: impl FnMut(&[u8], bool)) {
        let Some(k) = slot.map(usize::from) else { return };
        if self.held.get(k) != Some(&true) {
            return;
        }
        if let Some(split) = self.lines.get_mut(k) {
            split.flush(emit);
        }
        if let Some(h) = self.held.get_mut(k) {
            *h = false;
        }
    }

    /// Slots held now.
    pub fn held(&self) -> usize {
        self.held.iter().filter(|h| **h).count()
    }
}

/// What [`RateLimit::allow`] decides for one line.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum Allow {
    Yes,
    No,
    /// Log it, after a line saying this many were dropped since the last one logged.
    YesAfterDropping(u32),
}

/// A token bucket: `burst` lines at once, refilled at `per_sec` lines a second.
#[derive(Copy, Clone, Debug)]
pub struct RateLimit {
    /// Thousandths of a line, so that a refill of a fraction of a line per millisecond adds up.
    milli_tokens: u64,
    capacity: u64,
    per_sec: u64,
    last_ms: u64,
    dropped: u32,
}

impl RateLimit {
    /// Starts full.
    pub const fn new(burst: u32, per_sec: u32) -> RateLimit {
        let capacity = (burst as u64).saturating_mul(1000);
        RateLimit {
            milli_tokens: capacity,
            capacity,
            per_sec: per_sec as u64,
            last_ms: 0,
            dropped: 0,
        }
    }

    /// Whether a line at `now_ms` (a monotonic clock; a step back counts as no time) may go.
    pub fn allow(&mut self, now_ms: u64) -> Allow {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        // per_sec lines a second are per_sec thousandths of a line a millisecond.
        let refill = elapsed.saturating_mul(self.per_sec);
        self.milli_tokens = self.milli_tokens.saturating_add(refill).min(self.capacity);
        match self.milli_tokens.checked_sub(1000) {
            Some(left) => {
                self.milli_tokens = left;
                match self.take_dropped() {
                    0 => Allow::Yes,
                    n => Allow::YesAfterDropping(n),
                }
            }
            None => {
                self.dropped = self.dropped.saturating_add(1);
                Allow::No
            }
        }
    }

    /// Lines dropped since the last one allowed (to report them when the service exits), and
    /// forgets them.
    pub fn take_dropped(&mut self) -> u32 {
        core::mem::take(&mut self.dropped)
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::new(LINES_BURST, LINES_PER_SEC)
    }
}

/// Writes the kmsg record `<level>name[pid]: text\n` into `out` and returns its length.
/// `level` may carry a syslog facility too (`3 << 3 | 6` is daemon.info). The text is cut to
/// fit and any control byte in it becomes `?`; the record always ends with `\n` (unless `out`
/// is empty: then nothing is written).
pub fn format_record(level: u8, name: &str, pid: i32, text: &[u8], out: &mut [u8]) -> usize {
    let Some(room) = out.len().checked_sub(1) else { return 0 };
    let mut level_digits = [0; U64_DIGITS];
    let mut pid_digits = [0; U64_DIGITS];
    let pieces: [&[u8]; 8] = [
        b"<",
        u64_digits(u64::from(level), &mut level_digits),
        b">",
        name.as_bytes(),
        if pid < 0 { b"[-" } else { b"[" },
        u64_digits(u64::from(pid.unsigned_abs()), &mut pid_digits),
        b"]: ",
        text,
    ];
    let clean = |&b: &u8| if b < b' ' || b == 0x7f { b'?' } else { b };
    let mut len = 0usize;
    for (slot, b) in out.iter_mut().take(room).zip(pieces.iter().flat_map(|p| p.iter()).map(clean))
    {
        *slot = b;
        len = len.saturating_add(1);
    }
    if let Some(slot) = out.get_mut(len) {
        *slot = b'\n';
        len = len.saturating_add(1);
    }
    len
}

/// One record read from /dev/kmsg (Documentation/ABI/testing/dev-kmsg).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct KmsgRecord<'a> {
    /// Syslog facility and level: `facility << 3 | level`.
    pub prio: u32,
    pub seq: u64,
    /// Microseconds since boot (CLOCK_MONOTONIC).
    pub usec: u64,
    /// `-`, `c` (a continued line's start) or `+` (its continuation).
    pub flags: &'a [u8],
    /// The message, escaped by the kernel: unprintable bytes and `\` as `\xNN`.
    pub text: &'a [u8],
    /// Continuation lines (` KEY=VALUE\n`), if any.
    pub dict: &'a [u8],
}

impl KmsgRecord<'_> {
    pub fn level(&self) -> u8 {
        (self.prio & 7) as u8
    }

    pub fn facility(&self) -> u32 {
        self.prio >> 3
    }
}

/// Parses one record as read(2) returns it: `prio,seq,usec,flags[,...];text\n[ KEY=VALUE\n]...`.
pub fn parse_kmsg_record(rec: &[u8]) -> Option<KmsgRecord<'_>> {
    let semi = rec.iter().position(|&b| b == b';')?;
    let (header, rest) = rec.split_at(semi);
    let rest = rest.get(1..)?;
    let mut fields = header.split(|&b| b == b',');
    let prio = u32::try_from(parse_u64(fields.next()?)?).ok()?;
    let seq = parse_u64(fields.next()?)?;
    let usec = parse_u64(fields.next()?)?;
    let flags = fields.next()?;
    if header.contains(&b'\n') {
        return None;
    }
    let (text, dict) = match rest.iter().position(|&b| b == b'\n') {
        Some(nl) => (rest.get(..nl)?, rest.get(nl.saturating_add(1)..)?),
        None => (rest, &[][..]),
    };
    Some(KmsgRecord { prio, seq, usec, flags, text, dict })
}

/// Whether a record's text is about unit `name`: a line of its output (`name[123]: ...`) or
/// one of autoinit's lines about it (`autoinit: name: ...`, `autoinit: service name ...`).
pub fn is_line_of(text: &[u8], name: &str) -> bool {
    let name = name.as_bytes();
    if name.is_empty() {
        return false;
    }
    if let Some(rest) = text.strip_prefix(name).and_then(|r| r.strip_prefix(b"[")) {
        let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        return digits > 0 && rest.get(digits..).is_some_and(|r| r.starts_with(b"]: "));
    }
    let Some(rest) = text.strip_prefix(b"autoinit: ") else { return false };
    if let Some(after) = rest.strip_prefix(name) {
        return after.starts_with(b": ");
    }
    match rest.strip_prefix(b"service ").and_then(|r| r.strip_prefix(name)) {
        Some(after) => matches!(after.first(), None | Some(b' ' | b':')),
        None => false,
    }
}

/// Undoes the kernel's `\xNN` escapes of printable bytes and of UTF-8 (bytes from 0x80) for
/// display; escapes of control bytes stay as they are. Returns the length written to `out`,
/// cut to fit.
pub fn unescape(text: &[u8], out: &mut [u8]) -> usize {
    let hex = |b: &u8| match b {
        b'0'..=b'9' => Some(b.wrapping_sub(b'0')),
        b'a'..=b'f' => Some(b.wrapping_sub(b'a').wrapping_add(10)),
        b'A'..=b'F' => Some(b.wrapping_sub(b'A').wrapping_add(10)),
        _ => None,
    };
    let mut w = 0usize;
    let mut i = 0usize;
    while let Some(&b) = text.get(i) {
        let mut byte = b;
        let mut used = 1usize;
        if b == b'\\' && text.get(i.saturating_add(1)) == Some(&b'x') {
            let hi = text.get(i.saturating_add(2)).and_then(hex);
            let lo = text.get(i.saturating_add(3)).and_then(hex);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                let decoded = hi.wrapping_mul(16).wrapping_add(lo);
                if decoded >= b' ' && decoded != 0x7f {
                    byte = decoded;
                    used = 4;
                }
            }
        }
        let Some(slot) = out.get_mut(w) else { break };
        *slot = byte;
        w = w.saturating_add(1);
        i = i.saturating_add(used);
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines<const N: usize>(s: &mut LineSplitter<N>, bytes: &[u8]) -> Vec<(String, bool)> {
        let mut got = Vec::new();
        s.push(bytes, |l, cut| got.push((String::from_utf8_lossy(l).into_owned(), cut)));
        got
    }

    fn owned(v: &[(&str, bool)]) -> Vec<(String, bool)> {
        v.iter().map(|&(s, c)| (s.to_string(), c)).collect()
    }

    fn pool_lines<const N: usize, const K: usize>(p: &mut LinePool<N, K>, slot: &mut Option<u8>, bytes: &[u8]) -> Vec<String> {
        let mut got = Vec::new();
        *slot = p.push(*slot, bytes, |l, _| got.push(String::from_utf8_lossy(l).into_owned()));
        got
    }

    #[test]
    fn pool_holds_a_slot_only_for_an_unfinished_line() {
        let mut p = LinePool::<16, 2>::new();
        let (mut a, mut b) = (None, None);
        assert_eq!(pool_lines(&mut p, &mut a, b"whole\n"), ["whole"]);
        assert_eq!((a, p.held()), (None, 0));
        assert!(pool_lines(&mut p, &mut a, b"hal").is_empty());
        assert!(pool_lines(&mut p, &mut b, b"other").is_empty());
        assert_eq!(p.held(), 2);
        assert_ne!(a, b);
        assert_eq!(pool_lines(&mut p, &mut a, b"f\nne"), ["half"]);
        assert_eq!(pool_lines(&mut p, &mut b, b" one\n"), ["other one"]);
        assert_eq!((b, p.held()), (None, 1));
        let mut got = Vec::new();
        p.flush(a, |l, _| got.push(String::from_utf8_lossy(l).into_owned()));
        assert_eq!((got, p.held()), (vec!["ne".to_string()], 0));
    }

    #[test]
    fn pool_full_hands_out_an_unfinished_line_at_once() {
        let mut p = LinePool::<16, 1>::new();
        let (mut a, mut b) = (None, None);
        assert!(pool_lines(&mut p, &mut a, b"waits").is_empty());
        assert_eq!(pool_lines(&mut p, &mut b, b"one\ntwo"), ["one", "two"]);
        assert_eq!((b, p.held()), (None, 1));
        assert_eq!(pool_lines(&mut p, &mut a, b"!\n"), ["waits!"]);
        assert_eq!(p.held(), 0);
    }

    #[test]
    fn pool_keeps_the_slot_while_dropping_a_cut_line() {
        let mut p = LinePool::<4, 1>::new();
        let mut a = None;
        assert_eq!(pool_lines(&mut p, &mut a, b"abcdefg"), ["abcd"]);
        assert_eq!(p.held(), 1);
        assert_eq!(pool_lines(&mut p, &mut a, b"hij\nok\n"), ["ok"]);
        assert_eq!((a, p.held()), (None, 0));
    }

    #[test]
    fn splits_lines_across_reads() {
        let mut s = LineSplitter::<16>::new();
        assert_eq!(lines(&mut s, b"hel"), owned(&[]));
        assert_eq!(s.pending(), 3);
        assert_eq!(lines(&mut s, b"lo\nwor"), owned(&[("hello", false)]));
        assert_eq!(lines(&mut s, b"ld\n\nthird\n"), owned(&[("world", false), ("third", false)]));
        assert_eq!(s.pending(), 0);
        let mut got = Vec::new();
        s.push(b"tail", |_, _| panic!("no newline yet"));
        s.flush(|l, cut| got.push((l.to_vec(), cut)));
        assert_eq!(got, [(b"tail".to_vec(), false)]);
        assert_eq!(s.pending(), 0);
        s.flush(|_, _| panic!("nothing left"));
    }

    #[test]
    fn cleans_lines() {
        let mut s = LineSplitter::<64>::default();
        assert_eq!(
            lines(&mut s, b"crlf\r\n  lead kept, trail gone \t \na\tb\x00c\x1b[0m\x7f\n"),
            owned(&[("crlf", false), ("  lead kept, trail gone", false), ("a b?c?[0m?", false)])
        );
        // Blank lines and lines of whitespace are dropped; UTF-8 passes.
        assert_eq!(lines(&mut s, b"\n \r\n\t\n\xc3\xa9t\xc3\xa9\n"), owned(&[("été", false)]));
        // An embedded \r (a progress bar) is a control byte.
        assert_eq!(lines(&mut s, b"10%\r100%\r\n"), owned(&[("10%?100%", false)]));
    }

    #[test]
    fn cuts_long_lines_and_drops_their_rest() {
        let mut s = LineSplitter::<4>::new();
        // Exactly N bytes is not cut.
        assert_eq!(lines(&mut s, b"abcd\n"), owned(&[("abcd", false)]));
        assert_eq!(lines(&mut s, b"abcde"), owned(&[("abcd", true)]));
        assert_eq!(lines(&mut s, b"fghij"), owned(&[]));
        assert_eq!(lines(&mut s, b"k\nxy\n"), owned(&[("xy", false)]));
        assert_eq!(lines(&mut s, b"123456789\n"), owned(&[("1234", true)]));
        // A cut line's rest is not handed out at EOF either.
        assert_eq!(lines(&mut s, b"toolong"), owned(&[("tool", true)]));
        s.flush(|_, _| panic!("the rest of a cut line"));
        assert_eq!(lines(&mut s, b"ok\n"), owned(&[("ok", false)]));
        // A cut line that is all blanks is not handed out.
        assert_eq!(lines(&mut s, b"      x\nz\n"), owned(&[("z", false)]));
    }

    #[test]
    fn zero_capacity_never_panics() {
        let mut s = LineSplitter::<0>::new();
        assert_eq!(lines(&mut s, b"abc\n\ndef"), owned(&[]));
        s.flush(|_, _| panic!("nothing fits"));
    }

    #[test]
    fn rate_limit_burst_then_steady_rate() {
        let mut r = RateLimit::new(3, 2);
        assert_eq!(r.allow(1000), Allow::Yes);
        assert_eq!(r.allow(1000), Allow::Yes);
        assert_eq!(r.allow(1000), Allow::Yes);
        assert_eq!(r.allow(1000), Allow::No);
        assert_eq!(r.allow(1100), Allow::No);
        // 2 lines a second: one token every 500 ms.
        assert_eq!(r.allow(1499), Allow::No);
        assert_eq!(r.allow(1500), Allow::YesAfterDropping(3));
        assert_eq!(r.allow(1500), Allow::No);
        assert_eq!(r.take_dropped(), 1);
        assert_eq!(r.take_dropped(), 0);
        assert_eq!(r.allow(2000), Allow::Yes);
        // A long pause refills to the burst, no more.
        for _ in 0..3 {
            assert_eq!(r.allow(100_000), Allow::Yes);
        }
        assert_eq!(r.allow(100_000), Allow::No);
    }

    #[test]
    fn rate_limit_edge_cases() {
        // The clock stepping back gives nothing and breaks nothing.
        let mut r = RateLimit::new(1, 1);
        assert_eq!(r.allow(5000), Allow::Yes);
        assert_eq!(r.allow(10), Allow::No);
        assert_eq!(r.allow(5999), Allow::No);
        assert_eq!(r.allow(6000), Allow::YesAfterDropping(2));
        let mut never = RateLimit::new(0, 1000);
        assert_eq!(never.allow(u64::MAX), Allow::No);
        let mut no_refill = RateLimit::new(1, 0);
        assert_eq!(no_refill.allow(0), Allow::Yes);
        assert_eq!(no_refill.allow(u64::MAX), Allow::No);
        let mut huge = RateLimit::new(u32::MAX, u32::MAX);
        assert_eq!(huge.allow(u64::MAX), Allow::Yes);
        let mut d = RateLimit::default();
        for _ in 0..LINES_BURST {
            assert_eq!(d.allow(0), Allow::Yes);
        }
        assert_eq!(d.allow(0), Allow::No);
        assert_eq!(d.allow(1000 / u64::from(LINES_PER_SEC)), Allow::YesAfterDropping(1));
    }

    fn record(level: u8, name: &str, pid: i32, text: &[u8], cap: usize) -> Vec<u8> {
        let mut out = vec![0xAA; cap];
        let n = format_record(level, name, pid, text, &mut out);
        assert!(out[n..].iter().all(|&b| b == 0xAA), "wrote past its length");
        out.truncate(n);
        out
    }

    #[test]
    fn kmsg_records() {
        assert_eq!(record(6, "sshd", 412, b"listening", 64), b"<6>sshd[412]: listening\n");
        assert_eq!(record(30, "a", -1, b"x\ny\0", 64), b"<30>a[-1]: x?y?\n");
        assert_eq!(record(255, "a", i32::MIN, b"", 64), b"<255>a[-2147483648]: \n");
        // Cut to fit, always ending in a newline.
        assert_eq!(record(6, "sshd", 412, b"listening", 20), b"<6>sshd[412]: liste\n");
        assert_eq!(record(6, "sshd", 412, b"x", 5), b"<6>s\n");
        assert_eq!(record(6, "sshd", 412, b"x", 1), b"\n");
        assert_eq!(record(6, "sshd", 412, b"x", 0), b"");
    }

    #[test]
    fn parses_kmsg_records() {
        let r = parse_kmsg_record(b"30,1234,5678901,-;sshd[412]: listening\n").unwrap();
        assert_eq!((r.prio, r.level(), r.facility()), (30, 6, 3));
        assert_eq!((r.seq, r.usec, r.flags), (1234, 5678901, &b"-"[..]));
        assert_eq!(r.text, b"sshd[412]: listening");
        assert_eq!(r.dict, b"");
        let r = parse_kmsg_record(
            b"6,339,5140900,-,caller=T1;NET: Registered protocol family 10\n SUBSYSTEM=net\n DEVICE=+net:lo\n",
        )
        .unwrap();
        assert_eq!(r.text, b"NET: Registered protocol family 10");
        assert_eq!(r.dict, b" SUBSYSTEM=net\n DEVICE=+net:lo\n");
        // No trailing newline (a cut read) still parses; the text may contain ';' and ','.
        let r = parse_kmsg_record(b"4,1,2,c;a;b,c").unwrap();
        assert_eq!((r.text, r.flags), (&b"a;b,c"[..], &b"c"[..]));
        for bad in [
            &b""[..],
            b"no semicolon\n",
            b"6,1,2;too few fields\n",
            b"x,1,2,-;bad prio\n",
            b"6,,2,-;empty seq\n",
            b"6,1,-2,-;negative usec\n",
            b"4294967296,1,2,-;prio overflow\n",
            b"6,1\n,2,-;newline in header\n",
        ] {
            assert_eq!(parse_kmsg_record(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn picks_a_units_lines() {
        assert!(is_line_of(b"sshd[412]: listening", "sshd"));
        assert!(is_line_of(b"sshd[1]: ", "sshd"));
        assert!(is_line_of(b"autoinit: sshd: started, pid 412", "sshd"));
        assert!(is_line_of(b"autoinit: service sshd exited with status 1", "sshd"));
        assert!(is_line_of(b"autoinit: service sshd: failed", "sshd"));
        assert!(is_line_of(b"autoinit: service sshd", "sshd"));
        assert!(!is_line_of(b"sshd[]: no pid", "sshd"));
        assert!(!is_line_of(b"sshd[12a]: x", "sshd"));
        assert!(!is_line_of(b"sshd[12]:x", "sshd"));
        assert!(!is_line_of(b"sshd[12]", "sshd"));
        assert!(!is_line_of(b"sshd2[12]: other unit", "sshd"));
        assert!(!is_line_of(b"xsshd[12]: other unit", "sshd"));
        assert!(!is_line_of(b"autoinit: sshd2: other unit", "sshd"));
        assert!(!is_line_of(b"autoinit: service sshd2 started", "sshd"));
        assert!(!is_line_of(b"autoinit: sshd", "sshd"));
        assert!(!is_line_of(b"autoinit: mounted /data", "sshd"));
        assert!(!is_line_of(b"[12]: ", ""));
        assert!(!is_line_of(b"autoinit: : x", ""));
    }

    #[test]
    fn unescapes_kmsg_text() {
        let un = |t: &[u8], cap: usize| {
            let mut out = vec![0; cap];
            let n = unescape(t, &mut out);
            out.truncate(n);
            out
        };
        assert_eq!(un(b"\\xc3\\xa9t\\xC3\\xA9 \\x5c", 64), "été \\".as_bytes());
        // Control bytes stay escaped; broken escapes stay as they are.
        assert_eq!(un(b"a\\x1bb\\x7f\\x0", 64), b"a\\x1bb\\x7f\\x0");
        assert_eq!(un(b"\\xzz\\", 64), b"\\xzz\\");
        assert_eq!(un(b"abc\\x41", 4), b"abcA");
        assert_eq!(un(b"abcdef", 3), b"abc");
        assert_eq!(un(b"abc", 0), b"");
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0xdead_beef_cafe_f00du64;
        let alphabet = b"0123456789,;-\n \\x[]:sd\xff\x00autoinit: service ";
        let mut s = LineSplitter::<8>::new();
        let mut out = [0u8; 16];
        for _ in 0..5000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 48) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| alphabet[((seed >> (i % 40)) as usize ^ i) % alphabet.len()])
                .collect();
            let _ = parse_kmsg_record(&bytes);
            let _ = is_line_of(&bytes, "sd");
            let _ = unescape(&bytes, &mut out);
            let _ = format_record(6, "sd", 1, &bytes, &mut out);
            s.push(&bytes, |l, _| assert!(!l.is_empty() && l.len() <= 8));
        }
    }
}
