//! Service output to /dev/kmsg (outlog.rs): `LineSplitter` on a service's pipe bytes,
//! `RateLimit` per service, `format_record`, and on the client side `parse_kmsg_record`,
//! `is_line_of` and `unescape` on records read back from /dev/kmsg.
//!
//! Invariants: the splitter gives the same lines (cleaned: trailing white space trimmed, tabs
//! as spaces, control bytes as `?`, empty ones left out; longer than N cut at N, the rest
//! dropped) whatever the read sizes, and as a reference computes them; the rate limit never
//! lets through more than `burst + per_sec * seconds` lines and accounts for every line it
//! drops exactly once; a record written by `format_record` and numbered by the kernel parses
//! back to its level and text and is a line of its unit; any record parses without panic
//! to fields taken from it; `unescape` undoes the kernel's escaping except for control bytes.

use crate::Rng;
use autoinit::outlog::{self, Allow, LineSplitter, RateLimit};

const N: usize = 16;

fn clean(line: &[u8]) -> Vec<u8> {
    let end = line.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
    line[..end].iter().map(|&b| if b == b'\t' { b' ' } else if b < b' ' || b == 0x7f { b'?' } else { b }).collect()
}

fn reference(data: &[u8]) -> Vec<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        let (line, cut) = if line.len() > N { (&line[..N], true) } else { (line, false) };
        let c = clean(line);
        if !c.is_empty() {
            out.push((c, cut));
        }
    }
    out
}

fn splitter(data: &[u8], rng: &mut Rng) {
    let mut whole = Vec::new();
    let mut s: LineSplitter<N> = LineSplitter::new();
    s.push(data, |l, cut| whole.push((l.to_vec(), cut)));
    s.flush(|l, cut| whole.push((l.to_vec(), cut)));
    assert_eq!(s.pending(), 0);
    assert_eq!(whole, reference(data), "lines of {:?}", String::from_utf8_lossy(data));
    let mut pieces = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let n = rng.size(data.len() - at).min(rng.size(40));
        s.push(&data[at..at + n], |l, cut| pieces.push((l.to_vec(), cut)));
        assert!(s.pending() <= N);
        at += n;
    }
    s.flush(|l, cut| pieces.push((l.to_vec(), cut)));
    assert_eq!(pieces, whole, "lines in pieces");
}

fn rate_limit(data: &[u8]) {
    let Some((&[burst, per_sec], steps)) = data.split_first_chunk::<2>() else { return };
    let (burst, per_sec) = (u32::from(burst % 50), u32::from(per_sec % 100));
    let mut r = RateLimit::new(burst, per_sec);
    let (mut now, mut latest, mut allowed, mut refused, mut reported) = (0u64, 0u64, 0u64, 0u64, 0u64);
    for &b in steps {
        // Mostly small steps forward, sometimes a long pause, sometimes a step back.
        now = match b >> 6 {
            0 | 1 => now + u64::from(b & 63),
            2 => now + u64::from(b & 63) * 1000,
            _ => now.saturating_sub(u64::from(b & 63)),
        };
        latest = latest.max(now);
        match r.allow(now) {
            Allow::Yes => allowed += 1,
            Allow::YesAfterDropping(n) => {
                allowed += 1;
                reported += u64::from(n);
            }
            Allow::No => refused += 1,
        }
        // Allowed lines: the burst plus per_sec thousandths of a line a millisecond.
        assert!(allowed * 1000 <= u64::from(burst) * 1000 + u64::from(per_sec) * latest, "{allowed} lines by {latest} ms with burst {burst}, {per_sec}/s");
    }
    reported += u64::from(r.take_dropped());
    assert_eq!(reported, refused, "dropped lines reported");
    assert_eq!(r.take_dropped(), 0);
}

fn records(data: &[u8]) {
    // Any record read from /dev/kmsg.
    if let Some(rec) = outlog::parse_kmsg_record(data) {
        let inside = |s: &[u8]| {
            let (p, w) = (s.as_ptr() as usize, data.as_ptr() as usize);
            s.is_empty() || (p >= w && p + s.len() <= w + data.len())
        };
        assert!(inside(rec.flags) && inside(rec.text) && inside(rec.dict));
        assert!(!rec.text.contains(&b'\n') && !rec.flags.contains(&b';'));
        assert!(rec.level() <= 7 && rec.facility() == rec.prio >> 3);
        let mut out = vec![0u8; data.len() / 2];
        let n = outlog::unescape(rec.text, &mut out);
        assert!(n <= out.len());
        let _ = outlog::is_line_of(rec.text, "sshd");
    }
    // A record autoinit writes for a service, as the kernel hands it back.
    let text = crate::utf8_prefix(data);
    let (name, line) = text.split_once(' ').unwrap_or(("web", text));
    let pid = data.len() as i32 * 37;
    let level = data.first().copied().unwrap_or(6) & 7;
    let mut out = [0u8; 300];
    let n = outlog::format_record(level, name, pid, line.as_bytes(), &mut out);
    assert!(n >= 1 && n <= out.len() && out[n - 1] == b'\n');
    let written = &out[..n];
    assert_eq!(written.iter().filter(|&&b| b == b'\n').count(), 1, "one record, one line");
    let syslog = &written[..n - 1];
    // The kernel reads `<L>` off and escapes '\\' and bytes outside 0x20..0x7e.
    let close = syslog.iter().position(|&b| b == b'>').expect("level prefix");
    let body = &syslog[close + 1..];
    let mut rec = format!("{level},17,123456,-;").into_bytes();
    for &b in body {
        if !(0x20..0x7f).contains(&b) || b == b'\\' {
            rec.extend(format!("\\x{b:02x}").bytes());
        } else {
            rec.push(b);
        }
    }
    rec.push(b'\n');
    let r = outlog::parse_kmsg_record(&rec).expect("a kernel record parses");
    assert_eq!((r.prio, r.seq, r.usec, r.flags), (u32::from(level), 17, 123456, &b"-"[..]));
    let mut shown = vec![0u8; r.text.len()];
    let k = outlog::unescape(r.text, &mut shown);
    assert_eq!(&shown[..k], body, "unescape of {:?}", String::from_utf8_lossy(r.text));
    let fits = 3 + name.len() + 1 + pid.to_string().len() + 3 + line.len() < out.len();
    if fits && !name.is_empty() && !name.bytes().any(|b| !(0x20..0x7f).contains(&b) || b == b'\\') {
        assert!(outlog::is_line_of(r.text, name), "record {:?} is not a line of {name:?}", String::from_utf8_lossy(r.text));
    }
}

pub fn check(data: &[u8]) {
    let mut rng = Rng::new(data.iter().fold(0x9E3779B97F4A7C15u64, |h, &b| h.rotate_left(5) ^ u64::from(b)));
    splitter(data, &mut rng);
    rate_limit(data);
    records(data);
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples() {
        for s in [
            &b"hello\r\n\tworld \x1b[1m\nexactly-16-bytes\nseventeen-bytes!!\n\n  \nend"[..],
            b"6,1234,5678901,-;sshd[42]: Server listening on :: port 22.\n SUBSYSTEM=x\n",
            b"14,99,1,c,more;autoinit: service web started\n",
            b"web caf\xc3\xa9 \\x41 \x01",
        ] {
            super::check(s);
        }
    }
}
