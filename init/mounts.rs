//! /proc/mounts: the mount table as text, parsed without allocating (pure, host-tested).

use core::ffi::CStr;

/// One line of /proc/mounts. The fields are still octal-escaped (`\040` for a space).
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Entry<'a> {
    pub source: &'a str,
    pub target: &'a str,
    pub fstype: &'a str,
}

/// Parses a line; `None` for a malformed one.
pub fn parse_line(line: &str) -> Option<Entry<'_>> {
    let mut f = line.split(' ');
    let source = f.next().filter(|s| !s.is_empty())?;
    let target = f.next().filter(|s| s.starts_with('/'))?;
    let fstype = f.next().filter(|s| !s.is_empty())?;
    Some(Entry { source, target, fstype })
}

/// The mounts of `table`, most recent first: the order to unmount them in.
pub fn newest_first(table: &str) -> impl Iterator<Item = Entry<'_>> {
    table.lines().rev().filter_map(parse_line)
}

/// Undoes the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134`
/// backslash) into `out` and NUL-terminates it. `None` if it does not fit or is malformed.
pub fn unescape<'o>(field: &str, out: &'o mut [u8]) -> Option<&'o CStr> {
    let mut src = field.as_bytes();
    let mut n = 0;
    while let Some((&b, rest)) = src.split_first() {
        let (byte, rest) = if b == b'\\' {
            let digits = rest.get(..3)?;
            let mut v: u32 = 0;
            for &d in digits {
                if !(b'0'..=b'7').contains(&d) {
                    return None;
                }
                v = v * 8 + (d - b'0') as u32;
            }
            (u8::try_from(v).ok()?, rest.get(3..)?)
        } else {
            (b, rest)
        };
        if byte == 0 {
            return None;
        }
        *out.get_mut(n)? = byte;
        n += 1;
        src = rest;
    }
    *out.get_mut(n)? = 0;
    CStr::from_bytes_with_nul(out.get(..=n)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "rootfs / rootfs rw 0 0\nproc /proc proc rw,nosuid 0 0\n\
                         /dev/vda1 /mnt/my\\040disk vfat ro 0 0\nbroken\n";

    #[test]
    fn newest_first_skips_malformed_lines() {
        let targets: std::vec::Vec<_> = newest_first(TABLE).map(|e| e.target).collect();
        assert_eq!(targets, ["/mnt/my\\040disk", "/proc", "/"]);
    }

    #[test]
    fn unescapes_octal() {
        let mut buf = [0u8; 64];
        assert_eq!(unescape("/mnt/my\\040disk\\134x", &mut buf).unwrap().to_bytes(), b"/mnt/my disk\\x");
        let mut small = [0u8; 4];
        assert_eq!(unescape("/abcd", &mut small), None);
        assert_eq!(unescape("/a\\9", &mut buf), None);
        assert_eq!(unescape("/a\\000", &mut buf), None);
        assert_eq!(unescape("/a\\777", &mut buf), None);
    }
}
