//! Trial boots (persist.rs): `parse_tries` on the trial marker `<image>.try` and
//! `parse_record` on the boot record `/__autoinit__/booted`, both read from disks that a
//! power cut may have left half written, and the decisions stage 1 and `persist` take from
//! them (`Plan::for_marker`, `rotation`).
//!
//! Invariants: a marker parses only when it is a decimal count of at most `MAX_TRIES`
//! followed by white space, and then `format_tries` writes it back to text that parses to
//! the same count; a record parses only to what `format_record` writes for it (up to trailing
//! white space); a corrupt marker never leads to booting the image under trial first, nor to
//! persisting over the proven image.

use autoinit::persist::{self, Booted, MAX_TRIES, Marker, Plan, Rotation};

fn trimmed(text: &[u8]) -> &[u8] {
    let end = text.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(0, |i| i + 1);
    &text[..end]
}

pub fn check(data: &[u8]) {
    let tries = persist::parse_tries(data);
    let digits = trimmed(data);
    let want = (!digits.is_empty() && digits.iter().all(u8::is_ascii_digit))
        .then(|| digits.iter().try_fold(0u32, |n, &d| n.checked_mul(10)?.checked_add(u32::from(d - b'0'))))
        .flatten()
        .filter(|&n| n <= u32::from(MAX_TRIES));
    assert_eq!(tries.ok().map(u32::from), want, "parse_tries {:?}", String::from_utf8_lossy(data));
    let marker = match tries {
        Ok(n) => {
            let mut buf = [0u8; 4];
            let text = persist::format_tries(n, &mut buf);
            assert_eq!(persist::parse_tries(text), Ok(n), "format-parse of {n}");
            Marker::Tries(n)
        }
        Err(why) => {
            assert!(!why.is_empty());
            Marker::Corrupt(why)
        }
    };
    let plan = Plan::for_marker(marker);
    if let Marker::Corrupt(_) = marker {
        assert!(plan.old_first(), "a corrupt marker boots the image under trial first");
    }
    if let Plan::Trial { left } = plan {
        assert!(matches!(marker, Marker::Tries(n) if n == left + 1), "{marker:?} -> {plan:?}");
    }

    let record = persist::parse_record(data);
    if let Some(b) = record {
        let mut buf = [0u8; 16];
        let text = persist::format_record(b, &mut buf);
        assert_eq!(persist::parse_record(text), Some(b), "format-parse of {b:?}");
        let data_text = core::str::from_utf8(data).expect("a parsed record is UTF-8");
        let want = core::str::from_utf8(text).unwrap().trim_end();
        let got = data_text.trim_end();
        // `trial 007` is `trial 7`: compare the count, not its digits.
        match b {
            Booted::Trial { left } => {
                let n = got.strip_prefix("trial ").expect("a trial record starts with 'trial '");
                assert_eq!(persist::parse_tries(n.as_bytes()), Ok(left));
            }
            _ => assert_eq!(got, want),
        }
    }
    for m in [marker, Marker::Absent, Marker::Tries(0), Marker::Tries(2)] {
        let r = persist::rotation(record, m);
        if matches!(record, Some(Booted::Trial { .. })) || (record.is_none() && matches!(m, Marker::Tries(n) if n > 0)) {
            assert_eq!(r, Rotation::Refuse, "persisting during a trial: {record:?} {m:?}");
        }
        if record.is_none() && matches!(m, Marker::Corrupt(_)) {
            assert_eq!(r, Rotation::KeepOld, "a corrupt marker must keep the proven image");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples() {
        for s in ["3\n", "0", "99\r\n", "100\n", "", " 3", "trial 2\n", "trial 007", "image\n", "old \n\n", "trial \n", "\u{0}"] {
            super::check(s.as_bytes());
        }
    }
}
