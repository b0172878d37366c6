//! Writing text into fixed buffers without `core::fmt` (which costs about 2 KiB of code):
//! a tiny [`Write`] trait, a writer over a caller's slice, and hand-written integer formatting.

/// The buffer cannot take the bytes; nothing of them was written.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub struct Full;

/// A sink of bytes with a fixed capacity. A write is all or nothing, so text already in the
/// buffer is never left with half a piece at its end.
pub trait Write {
    fn write(&mut self, bytes: &[u8]) -> Result<(), Full>;
}

impl<const N: usize> Write for heapless::Vec<u8, N> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), Full> {
        self.extend_from_slice(bytes).map_err(|_| Full)
    }
}

/// Writes into a caller's slice from its start.
pub struct SliceWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> SliceWriter<'b> {
    pub fn new(buf: &'b mut [u8]) -> SliceWriter<'b> {
        SliceWriter { buf, len: 0 }
    }

    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Write for SliceWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), Full> {
        let end = self.len.checked_add(bytes.len()).ok_or(Full)?;
        let dest = self.buf.get_mut(self.len..end).ok_or(Full)?;
        dest.copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }
}

/// Longest decimal u64 (`18446744073709551615`).
pub const U64_DIGITS: usize = 20;

/// The decimal digits of `n`, written at the end of `digits`.
pub fn u64_digits(mut n: u64, digits: &mut [u8; U64_DIGITS]) -> &[u8] {
    let mut start = U64_DIGITS;
    for slot in digits.iter_mut().rev() {
        // `n % 10` is below 10: the cast and the addition never wrap.
        *slot = b'0'.wrapping_add((n % 10) as u8);
        n /= 10;
        start = start.saturating_sub(1);
        if n == 0 {
            break;
        }
    }
    digits.get(start..).unwrap_or(&[])
}

pub fn write_u64(out: &mut impl Write, n: u64) -> Result<(), Full> {
    let mut digits = [0; U64_DIGITS];
    out.write(u64_digits(n, &mut digits))
}

pub fn write_i64(out: &mut impl Write, n: i64) -> Result<(), Full> {
    if n < 0 {
        out.write(b"-")?;
    }
    write_u64(out, n.unsigned_abs())
}

/// `n` with at least two digits (`05`), for clock-like fields.
pub fn write_u64_2(out: &mut impl Write, n: u64) -> Result<(), Full> {
    if n < 10 {
        out.write(b"0")?;
    }
    write_u64(out, n)
}

/// Parses a plain decimal number: ASCII digits only, no sign, no spaces, no overflow.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b.wrapping_sub(b'0')))?;
    }
    Some(n)
}

/// Like [`parse_u64`], for a u32.
pub fn parse_u32(s: &[u8]) -> Option<u32> {
    u32::try_from(parse_u64(s)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_writer_is_all_or_nothing() {
        let mut buf = [0u8; 5];
        let mut w = SliceWriter::new(&mut buf);
        assert!(w.is_empty());
        w.write(b"abc").unwrap();
        assert_eq!(w.write(b"def"), Err(Full));
        assert_eq!(w.written(), b"abc");
        w.write(b"de").unwrap();
        assert_eq!(w.written(), b"abcde");
        assert_eq!(w.len(), 5);
        assert_eq!(w.write(b"x"), Err(Full));
        w.write(b"").unwrap();
    }

    #[test]
    fn heapless_vec_is_all_or_nothing() {
        let mut v: heapless::Vec<u8, 4> = heapless::Vec::new();
        v.write(b"ab").unwrap();
        assert_eq!(v.write(b"cde"), Err(Full));
        assert_eq!(&v[..], b"ab");
    }

    fn fmt(f: impl Fn(&mut heapless::Vec<u8, 32>) -> Result<(), Full>) -> String {
        let mut v = heapless::Vec::new();
        f(&mut v).unwrap();
        String::from_utf8(v.to_vec()).unwrap()
    }

    #[test]
    fn integers() {
        assert_eq!(fmt(|o| write_u64(o, 0)), "0");
        assert_eq!(fmt(|o| write_u64(o, 7)), "7");
        assert_eq!(fmt(|o| write_u64(o, 1234567890)), "1234567890");
        assert_eq!(fmt(|o| write_u64(o, u64::MAX)), u64::MAX.to_string());
        assert_eq!(fmt(|o| write_i64(o, -42)), "-42");
        assert_eq!(fmt(|o| write_i64(o, i64::MIN)), i64::MIN.to_string());
        assert_eq!(fmt(|o| write_u64_2(o, 5)), "05");
        assert_eq!(fmt(|o| write_u64_2(o, 59)), "59");
        assert_eq!(fmt(|o| write_u64_2(o, 100)), "100");
    }

    #[test]
    fn parse_numbers() {
        assert_eq!(parse_u64(b"0"), Some(0));
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_u64(b"18446744073709551616"), None);
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"+1"), None);
        assert_eq!(parse_u64(b"1 "), None);
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
    }
}
