//! [`Path`]: a path built in a fixed buffer, used all over (boot stage, cgroups, services).
//! Its own module, apart from the boot stage, because the linker scripts place the boot
//! stage's code with the code the main loop never runs (see linker/x86_64.ld).

use core::ffi::CStr;

/// Longest path autoinit builds.
pub const PATH_BYTES: usize = 512;

/// A path built in a fixed buffer.
pub struct Path {
    buf: [u8; PATH_BYTES],
    len: usize,
}

impl Path {
    pub fn new() -> Path {
        Path { buf: [0; PATH_BYTES], len: 0 }
    }

    /// Joins `parts`; `None` if it does not fit or contains a NUL.
    pub fn of(parts: &[&[u8]]) -> Option<Path> {
        let mut p = Path::new();
        for part in parts {
            p.push(part)?;
        }
        Some(p)
    }

    pub fn push(&mut self, part: &[u8]) -> Option<()> {
        for &b in part {
            if b == 0 || self.len + 1 >= PATH_BYTES {
                return None;
            }
            *self.buf.get_mut(self.len)? = b;
            self.len += 1;
        }
        Some(())
    }

    pub fn c(&self) -> &CStr {
        // The byte after `len` is always 0: `push` stops one short of the end.
        CStr::from_bytes_until_nul(self.buf.get(..=self.len).unwrap_or(b"\0")).unwrap_or(c"")
    }

    pub fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }
}

impl Default for Path {
    fn default() -> Self {
        Self::new()
    }
}

impl crate::log::Piece for Path {
    /// As the booted system will see it: without the `/newroot` prefix of the build.
    fn put(&self, l: &mut crate::log::Line) {
        let b = self.bytes();
        l.push(match b.strip_prefix(crate::boot::NEWROOT.as_bytes()) {
            Some(rest) if rest.starts_with(b"/") => rest,
            _ => b,
        })
    }
}
