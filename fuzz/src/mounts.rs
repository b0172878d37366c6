//! /proc/mounts: what shutdown.rs does with the table (its UTF-8 prefix): `newest_first`,
//! then `unescape` of each mount point into a 256-byte buffer.
//!
//! Invariants: entries come from the input's lines (fields borrowed from it, without spaces
//! or newlines, the mount point absolute), never more than the lines; an unescaped field is
//! NUL-free, fits the buffer with its NUL, is no longer than the field, and escaping it
//! again as the kernel does (`\040`, `\011`, `\012`, `\134`) unescapes to the same bytes.

use crate::{borrowed_from, utf8_prefix};
use autoinit::mounts;

/// The kernel's `mangle()` of a mount field.
fn escape(bytes: &[u8]) -> String {
    let mut s = String::new();
    for &b in bytes {
        match b {
            b' ' | b'\t' | b'\n' | b'\\' => s.push_str(&format!("\\{b:03o}")),
            _ => s.push(char::from(b)),
        }
    }
    s
}

pub fn check(data: &[u8]) {
    let table = utf8_prefix(data);
    let mut entries = 0;
    for e in mounts::newest_first(table) {
        entries += 1;
        for f in [e.source, e.target, e.fstype] {
            assert!(borrowed_from(f, table) && !f.is_empty() && !f.contains([' ', '\n']), "field {f:?}");
        }
        assert!(e.target.starts_with('/'));
        let mut buf = [0u8; 256];
        let Some(path) = mounts::unescape(e.target, &mut buf) else { continue };
        let bytes = path.to_bytes();
        assert!(bytes.len() < 256 && bytes.len() <= e.target.len() && !bytes.contains(&0));
        // Only ASCII survives as one byte per char in `escape`; others are checked by length.
        if bytes.is_ascii() {
            let again = escape(bytes);
            let mut buf2 = [0u8; 1024];
            let back = mounts::unescape(&again, &mut buf2).expect("a re-escaped field unescapes");
            assert_eq!(back.to_bytes(), bytes, "unescape(escape({again:?}))");
        }
    }
    assert!(entries <= table.lines().count());
    // The same table, each field as one line, through unescape with a small buffer.
    for field in table.split([' ', '\n']) {
        let mut small = [0u8; 8];
        if let Some(c) = mounts::unescape(field, &mut small) {
            assert!(c.to_bytes().len() < 8);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_real_table() {
        super::check(b"rootfs / rootfs rw 0 0\n/dev/vda1 /mnt/my\\040disk vfat ro 0 0\nbroken\n");
    }
}
