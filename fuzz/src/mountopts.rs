//! Mount options: `mountopts::parse`, which boot.rs calls on `autoinit.bootopts=` and
//! `autoinit.dataopts=` (the input's UTF-8 prefix).
//!
//! Invariants: the flags are those of the flag keywords, the last of `ro`/`rw` (and each
//! pair) winning; the data string is the other options in order, joined by ',', NUL-free
//! and shorter than `DATA_BYTES`; it is refused only when that cannot be; and
//! parse-print-parse is the identity (the flags printed back as keywords, then the data).

use crate::utf8_prefix;
use autoinit::mountopts::{self, DATA_BYTES};
use syscall::mount::MountFlags;

const KEYWORDS: &[(&str, MountFlags, bool)] = &[
    ("ro", MountFlags::RDONLY, true),
    ("rw", MountFlags::RDONLY, false),
    ("nosuid", MountFlags::NOSUID, true),
    ("suid", MountFlags::NOSUID, false),
    ("nodev", MountFlags::NODEV, true),
    ("dev", MountFlags::NODEV, false),
    ("noexec", MountFlags::NOEXEC, true),
    ("exec", MountFlags::NOEXEC, false),
    ("sync", MountFlags::SYNCHRONOUS, true),
    ("async", MountFlags::SYNCHRONOUS, false),
    ("noatime", MountFlags::NOATIME, true),
    ("atime", MountFlags::NOATIME, false),
    ("lazytime", MountFlags::LAZYTIME, true),
];

/// (flags, data) as the options say.
fn reference(opts: &str) -> (MountFlags, Vec<&str>) {
    let mut flags = 0u32;
    let mut data = Vec::new();
    for opt in opts.split(',') {
        if opt.is_empty() || opt == "defaults" {
            continue;
        }
        match KEYWORDS.iter().find(|(k, _, _)| *k == opt) {
            Some((_, f, true)) => flags |= f.bits(),
            Some((_, f, false)) => flags &= !f.bits(),
            None => data.push(opt),
        }
    }
    (MountFlags(flags), data)
}

pub fn check(data: &[u8]) {
    let opts = utf8_prefix(data);
    let (flags, rest) = reference(opts);
    let joined = rest.join(",");
    match mountopts::parse(opts) {
        Ok(o) => {
            assert_eq!(o.flags, flags, "flags of {opts:?}");
            let got = o.data().map(|c| c.to_bytes().to_vec()).unwrap_or_default();
            assert_eq!(got, joined.as_bytes(), "data of {opts:?}");
            assert!(got.len() < DATA_BYTES);
            // Print it back: the set flags as keywords, then the data.
            let mut printed: Vec<&str> = KEYWORDS.iter().filter(|(_, f, set)| *set && o.flags.contains(*f)).map(|(k, _, _)| *k).collect();
            let data_text = String::from_utf8(got.clone()).expect("data is UTF-8");
            printed.push(&data_text);
            let line = printed.join(",");
            let again = mountopts::parse(&line).expect("printed options parse");
            assert_eq!(again.flags, o.flags, "parse-print-parse flags of {line:?}");
            assert_eq!(again.data().map(|c| c.to_bytes().to_vec()).unwrap_or_default(), got, "parse-print-parse data of {line:?}");
        }
        Err(why) => {
            assert!(
                joined.len() >= DATA_BYTES || rest.iter().any(|o| o.contains('\0')),
                "{opts:?} refused ({why}) but its data {joined:?} fits"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn samples() {
        for o in ["ro,noatime,uid=1000,utf8", "defaults", "", ",,", "rw,ro,ro,rw", "a\0b", &"x".repeat(300)] {
            super::check(o.as_bytes());
        }
    }
}
