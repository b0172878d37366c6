//! Output: each line formatted into a fixed buffer and written with one write(2), so that
//! the lines of a parent and its child never interleave mid-line.

use core::fmt::{self, Debug, Write};
use syscall::fs;
use syscall::BorrowedFd;

/// A line being formatted; text past the buffer is dropped, the newline always fits.
pub struct Line {
    buf: [u8; 512],
    len: usize,
}

impl Line {
    pub const fn new() -> Line {
        Line { buf: [0; 512], len: 0 }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            // Keep one byte for the newline.
            if self.len + 1 < self.buf.len()
                && let Some(slot) = self.buf.get_mut(self.len)
            {
                *slot = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// Writes one line to stdout.
pub fn print(args: fmt::Arguments<'_>) {
    let mut l = Line::new();
    let _ = l.write_fmt(args);
    if let Some(slot) = l.buf.get_mut(l.len) {
        *slot = b'\n';
        l.len += 1;
    }
    let _ = fs::write_all(BorrowedFd::STDOUT, l.as_bytes());
}

macro_rules! say {
    ($($a:tt)*) => { $crate::out::print(format_args!($($a)*)) };
}

/// Bytes shown as an escaped string.
#[derive(PartialEq, Eq)]
pub struct B<'a>(pub &'a [u8]);

impl Debug for B<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for &c in self.0 {
            match c {
                b'"' => f.write_str("\\\"")?,
                b'\\' => f.write_str("\\\\")?,
                b'\n' => f.write_str("\\n")?,
                0x20..=0x7e => f.write_char(c as char)?,
                _ => write!(f, "\\x{c:02x}")?,
            }
        }
        f.write_str("\"")
    }
}
