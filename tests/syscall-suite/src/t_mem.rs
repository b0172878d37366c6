//! The C memory functions of syscall/src/mem.rs, called through their symbols. Lengths and
//! pointers pass through `black_box` so the compiler cannot fold the calls into its own code.

use crate::harness::{B, T};
use core::hint::black_box;

unsafe extern "C" {
    fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8;
    fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8;
    fn memset(dest: *mut u8, c: i32, n: usize) -> *mut u8;
    fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32;
    fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32;
    fn strlen(s: *const u8) -> usize;
}

fn cmp(a: &[u8], b: &[u8], n: usize) -> i32 {
    let n = black_box(n.min(a.len()).min(b.len()));
    // SAFETY: n is within both slices.
    unsafe { memcmp(black_box(a.as_ptr()), black_box(b.as_ptr()), n) }
}

pub fn run(t: &mut T) {
    // memcpy: exactly n bytes, returns dest.
    let src = *b"The quick brown fox jumps over the lazy dog";
    let mut dst = [b'.'; 48];
    // SAFETY: 37 bytes fit both buffers, which do not overlap.
    let ret = unsafe { memcpy(black_box(dst.as_mut_ptr().add(2)), black_box(src.as_ptr()), black_box(37)) };
    t.eq("mem::memcpy_ret", ret as usize, dst.as_ptr() as usize + 2);
    let mut want = [b'.'; 48];
    want[2..39].copy_from_slice(&src[..37]);
    t.eq("mem::memcpy", B(&dst), B(&want));
    // SAFETY: n = 0 touches nothing.
    unsafe { memcpy(black_box(dst.as_mut_ptr()), black_box(src.as_ptr()), black_box(0)) };
    t.eq("mem::memcpy_zero", dst[0], b'.');

    // memmove, destination above the source (must copy backwards).
    let mut buf = *b"0123456789";
    // SAFETY: both ranges lie within buf.
    let ret = unsafe { memmove(black_box(buf.as_mut_ptr().add(2)), black_box(buf.as_ptr()), black_box(6)) };
    t.eq("mem::memmove_up", B(&buf), B(b"0101234589"));
    t.eq("mem::memmove_ret", ret as usize, buf.as_ptr() as usize + 2);
    // Destination below the source (must copy forwards).
    let mut buf = *b"0123456789";
    // SAFETY: both ranges lie within buf.
    unsafe { memmove(black_box(buf.as_mut_ptr()), black_box(buf.as_ptr().add(2)), black_box(6)) };
    t.eq("mem::memmove_down", B(&buf), B(b"2345676789"));
    // Same pointer.
    // SAFETY: as above.
    unsafe { memmove(black_box(buf.as_mut_ptr()), black_box(buf.as_ptr()), black_box(10)) };
    t.eq("mem::memmove_same", B(&buf), B(b"2345676789"));

    // memset uses only the low byte of c.
    let mut buf = [0u8; 12];
    // SAFETY: 10 bytes within buf.
    let ret = unsafe { memset(black_box(buf.as_mut_ptr().add(1)), black_box(0x1ab), black_box(10)) };
    t.eq("mem::memset", buf, [0, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0]);
    t.eq("mem::memset_ret", ret as usize, buf.as_ptr() as usize + 1);

    // Every alignment of source and destination and every length around the word size,
    // against a plain byte loop.
    let mut pattern = [0u8; 64];
    for (i, b) in pattern.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    let (mut copy_ok, mut set_ok) = (true, true);
    for d_off in 0..9 {
        for s_off in 0..9 {
            for n in 0..40 {
                let mut got = [0u8; 64];
                // SAFETY: offsets + n stay within both 64-byte buffers.
                unsafe { memcpy(black_box(got.as_mut_ptr().add(d_off)), black_box(pattern.as_ptr().add(s_off)), black_box(n)) };
                let mut want = [0u8; 64];
                for k in 0..n {
                    want[d_off + k] = pattern[s_off + k];
                }
                copy_ok &= got == want;
            }
        }
        for n in 0..40 {
            let mut got = [7u8; 64];
            // SAFETY: d_off + n stays within the buffer.
            unsafe { memset(black_box(got.as_mut_ptr().add(d_off)), black_box(0x5a), black_box(n)) };
            let mut want = [7u8; 64];
            for k in 0..n {
                want[d_off + k] = 0x5a;
            }
            set_ok &= got == want;
        }
    }
    t.check("mem::memcpy_every_alignment", copy_ok, format_args!("memcpy differs from a byte loop"));
    t.check("mem::memset_every_alignment", set_ok, format_args!("memset differs from a byte loop"));

    // memcmp: sign of the first difference, bytes compared as unsigned.
    t.check("mem::memcmp_less", cmp(b"abc", b"abd", 3) < 0, format_args!("got {}", cmp(b"abc", b"abd", 3)));
    t.check("mem::memcmp_greater", cmp(b"abd", b"abc", 3) > 0, format_args!("got {}", cmp(b"abd", b"abc", 3)));
    t.eq("mem::memcmp_equal", cmp(b"abcx", b"abcy", 3), 0);
    t.eq("mem::memcmp_zero_len", cmp(b"a", b"b", 0), 0);
    t.check("mem::memcmp_unsigned", cmp(b"a\x80", b"a\x01", 2) > 0,
            format_args!("0x80 vs 0x01 compared as signed: got {}", cmp(b"a\x80", b"a\x01", 2)));
    t.check("mem::memcmp_unsigned_rev", cmp(b"\x01", b"\xff", 1) < 0,
            format_args!("0x01 vs 0xff: got {}", cmp(b"\x01", b"\xff", 1)));

    // bcmp: zero iff equal.
    // SAFETY: 4 bytes within each literal.
    let (eq, ne) = unsafe {
        (bcmp(black_box(b"wxyz".as_ptr()), black_box(b"wxyz".as_ptr()), black_box(4)),
         bcmp(black_box(b"wxyz".as_ptr()), black_box(b"wxyZ".as_ptr()), black_box(4)))
    };
    t.check("mem::bcmp", eq == 0 && ne != 0, format_args!("equal gave {eq}, different gave {ne}"));

    // strlen counts up to the NUL.
    // SAFETY: NUL-terminated literals.
    let (a, b) = unsafe { (strlen(black_box(c"".as_ptr().cast())), strlen(black_box(c"seventeen letters".as_ptr().cast()))) };
    t.eq("mem::strlen", (a, b), (0, 17));
}
