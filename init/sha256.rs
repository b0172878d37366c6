//! SHA-256 (FIPS 180-4) and the `NAME.tar.sha256` sidecar files that vouch for overlays.
//!
//! Pure code (no syscalls, no allocation), unit-tested on the host against the FIPS vectors
//! and against `sha256sum`. Small rather than fast: one block at a time, no tables beyond K.

/// The hasher: feed it with [`Sha256::update`] in pieces of any size, then [`Sha256::finish`].
#[derive(Clone, Debug)]
pub struct Sha256 {
    state: [u32; 8],
    /// Bytes waiting for a full 64-byte block.
    block: [u8; 64],
    block_len: usize,
    /// Message length in bytes, modulo 2^64 (the padding needs it in bits, modulo 2^64 too).
    total: u64,
}

const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha256 {
    pub const fn new() -> Sha256 {
        Sha256 { state: H0, block: [0; 64], block_len: 0, total: 0 }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.total = self.total.wrapping_add(data.len() as u64);
        if self.block_len > 0 {
            let room = self.block.get_mut(self.block_len..).unwrap_or(&mut []);
            let n = room.len().min(data.len());
            let (head, rest) = data.split_at_checked(n).unwrap_or((data, &[]));
            for (slot, &b) in room.iter_mut().zip(head) {
                *slot = b;
            }
            self.block_len += n;
            data = rest;
            if self.block_len < 64 {
                return;
            }
            compress(&mut self.state, &self.block);
            self.block_len = 0;
        }
        let mut blocks = data.chunks_exact(64);
        for b in &mut blocks {
            if let Ok(b) = <&[u8; 64]>::try_from(b) {
                compress(&mut self.state, b);
            }
        }
        let rest = blocks.remainder();
        for (slot, &b) in self.block.iter_mut().zip(rest) {
            *slot = b;
        }
        self.block_len = rest.len();
    }

    pub fn finish(mut self) -> [u8; 32] {
        let bits = self.total.wrapping_mul(8);
        // 0x80, then zeros up to 56 bytes into a block, then the length: at least 9 bytes.
        let zeros = (64 + 56 - (self.block_len + 1) % 64) % 64;
        self.update(&[0x80]);
        self.update([0u8; 64].get(..zeros).unwrap_or(&[]));
        self.update(&bits.to_be_bytes());
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(self.state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }
}

/// One 64-byte block. The message schedule is a 16-word window: at round t, `w[0]` is W(t)
/// and W(t+16) is computed from the window and appended.
fn compress(state: &mut [u32; 8], block: &[u8; 64]) {
    let mut w = [0u32; 16];
    for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
        *word = u32::from_be_bytes(bytes.try_into().unwrap_or([0; 4]));
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    for k in K {
        let [w0, w1, _, _, _, _, _, _, _, w9, _, _, _, _, w14, _] = w;
        let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let ch = (e & f) ^ (!e & g);
        let t1 = h.wrapping_add(s1).wrapping_add(ch).wrapping_add(k).wrapping_add(w0);
        let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let t2 = s0.wrapping_add(maj);
        h = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);

        let sigma0 = w1.rotate_right(7) ^ w1.rotate_right(18) ^ (w1 >> 3);
        let sigma1 = w14.rotate_right(17) ^ w14.rotate_right(19) ^ (w14 >> 10);
        w.rotate_left(1);
        let [.., last] = &mut w;
        *last = sigma1.wrapping_add(w9).wrapping_add(sigma0).wrapping_add(w0);
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = s.wrapping_add(v);
    }
}

/// SHA-256 of `data` in one call.
pub fn digest(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(data);
    h.finish()
}

/// Lowercase hex, as `sha256sum` prints it (for "expected X, got Y" messages).
pub fn to_hex(digest: &[u8; 32]) -> [u8; 64] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (pair, &b) in out.chunks_exact_mut(2).zip(digest) {
        let hi = HEX.get(usize::from(b >> 4)).copied().unwrap_or(b'0');
        let lo = HEX.get(usize::from(b & 15)).copied().unwrap_or(b'0');
        pair.copy_from_slice(&[hi, lo]);
    }
    out
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Reads a `NAME.tar.sha256` sidecar: one line as `sha256sum` writes it, `<64 hex>  NAME`
/// (text mode) or `<64 hex> *NAME` (binary mode), or the 64 hex digits alone. Upper- or
/// lowercase hex; the final newline (LF or CRLF) is optional. A name, when present, must be
/// exactly `expected_name` (no directory part). Escaped names (a line starting with '\',
/// which `sha256sum` writes for names with a backslash or newline) are not supported.
pub fn parse_sidecar(text: &[u8], expected_name: &str) -> Result<[u8; 32], &'static str> {
    let mut line = text;
    while let Some(rest) = line.strip_suffix(b"\n").or_else(|| line.strip_suffix(b"\r")) {
        line = rest;
    }
    if line.is_empty() {
        return Err("empty file, expected a SHA-256 hash");
    }
    if line.contains(&b'\n') {
        return Err("more than one line, expected one hash");
    }
    if line.starts_with(b"\\") {
        return Err("escaped file names are not supported");
    }
    let (hex, rest) = line.split_at_checked(64).ok_or("expected 64 hex digits")?;
    let mut digest = [0u8; 32];
    for (byte, pair) in digest.iter_mut().zip(hex.chunks_exact(2)) {
        let (hi, lo) = match pair {
            [hi, lo] => (hex_value(*hi), hex_value(*lo)),
            _ => (None, None),
        };
        *byte = (hi.ok_or("expected 64 hex digits")? << 4) | lo.ok_or("expected 64 hex digits")?;
    }
    if rest.iter().all(|&c| c == b' ' || c == b'\t') {
        return Ok(digest);
    }
    let name = rest
        .strip_prefix(b"  ")
        .or_else(|| rest.strip_prefix(b" *"))
        .ok_or("expected two spaces or \" *\" between the hash and the file name")?;
    if name != expected_name.as_bytes() {
        return Err("the file name in it is not the archive's");
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    fn hex(d: &[u8; 32]) -> String {
        String::from_utf8(to_hex(d).to_vec()).unwrap()
    }

    #[test]
    fn fips_180_4_vectors() {
        assert_eq!(hex(&digest(b"abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(
            hex(&digest(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        let mut h = Sha256::new();
        for _ in 0..1000 {
            h.update(&[b'a'; 1000]);
        }
        assert_eq!(hex(&h.finish()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
        assert_eq!(hex(&digest(b"")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    fn xorshift(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn matches_sha256sum_in_any_pieces() {
        let dir = std::env::temp_dir().join(std::format!("autoinit-sha256-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut seed = 0x9e3779b97f4a7c15u64;
        for len in [0usize, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 100_003] {
            let data: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
            let path = dir.join(std::format!("f{len}"));
            std::fs::write(&path, &data).unwrap();
            let out = std::process::Command::new("sha256sum").arg(&path).output().unwrap();
            assert!(out.status.success());
            let expected = String::from_utf8(out.stdout).unwrap();
            let expected = expected.split_whitespace().next().unwrap();
            assert_eq!(hex(&digest(&data)), expected, "{len} bytes in one piece");
            for piece in [1usize, 3, 63, 64, 65, 4096] {
                let mut h = Sha256::new();
                for c in data.chunks(piece) {
                    h.update(c);
                }
                assert_eq!(hex(&h.finish()), expected, "{len} bytes in pieces of {piece}");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn sidecar_formats() {
        let abc = digest(b"abc");
        let upper = ABC.to_uppercase();
        for text in [
            std::format!("{ABC}  10_x.tar\n"),
            std::format!("{ABC} *10_x.tar\n"),
            std::format!("{ABC}  10_x.tar"),
            std::format!("{ABC}  10_x.tar\r\n"),
            std::format!("{ABC}\n"),
            String::from(ABC),
            std::format!("{upper}  10_x.tar\n"),
        ] {
            assert_eq!(parse_sidecar(text.as_bytes(), "10_x.tar"), Ok(abc), "{text:?}");
        }
    }

    #[test]
    fn sidecar_errors() {
        let cases = [
            (String::new(), "empty file, expected a SHA-256 hash"),
            (String::from("\n"), "empty file, expected a SHA-256 hash"),
            (std::format!("{ABC}  20_y.tar\n"), "the file name in it is not the archive's"),
            (std::format!("{ABC}  dir/10_x.tar\n"), "the file name in it is not the archive's"),
            (std::format!("{ABC} 10_x.tar\n"), "expected two spaces or \" *\" between the hash and the file name"),
            (std::format!("{}  10_x.tar\n", &ABC[..63]), "expected 64 hex digits"),
            (std::format!("{}  10_x.tar\n", &ABC[..40]), "expected 64 hex digits"),
            (std::format!("{}g  10_x.tar\n", &ABC[..63]), "expected 64 hex digits"),
            (std::format!("{ABC}  10_x.tar\n{ABC}  20_y.tar\n"), "more than one line, expected one hash"),
            (std::format!("\\{ABC}  10_x\\\\.tar\n"), "escaped file names are not supported"),
        ];
        for (text, problem) in cases {
            assert_eq!(parse_sidecar(text.as_bytes(), "10_x.tar"), Err(problem), "{text:?}");
        }
        // Non-ASCII never panics.
        assert!(parse_sidecar("é".repeat(40).as_bytes(), "x").is_err());
    }
}
