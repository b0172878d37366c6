//! SHA-256 and the `NAME.tar.sha256` sidecar: what boot.rs's `checksum_ok` does with an
//! overlay and its sidecar (read into 256 bytes, parsed for the overlay's name).
//!
//! Invariants: the digest of the input, in one piece and in random pieces, equals the
//! `sha2` crate's; `to_hex` is lower-case hex of the digest; a sidecar that parses holds the
//! digest's hex (any case) in its first 64 bytes, and printing the digest back in each of
//! `sha256sum`'s forms parses to the same digest.

use crate::Rng;
use autoinit::sha256::{self, Sha256};
use sha2::Digest;

/// The overlay name the sidecars are checked against (the seeds use it).
pub const NAME: &str = "10-site.tar";

pub fn check(data: &[u8]) {
    let expected: [u8; 32] = sha2::Sha256::digest(data).into();
    assert_eq!(sha256::digest(data), expected, "digest of {} bytes", data.len());
    let mut h = Sha256::new();
    let mut rng = Rng::new(data.len() as u64 ^ 0x5a5a);
    let mut rest = data;
    while !rest.is_empty() {
        let (piece, tail) = rest.split_at(rng.size(130).min(rest.len()));
        h.update(piece);
        rest = tail;
    }
    assert_eq!(h.finish(), expected, "digest of {} bytes in pieces", data.len());
    let hex = sha256::to_hex(&expected);
    let reference: String = expected.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(&hex[..], reference.as_bytes());

    let text = &data[..data.len().min(256)];
    if let Ok(d) = sha256::parse_sidecar(text, NAME) {
        let found = String::from_utf8_lossy(&text[..64]);
        let printed = String::from_utf8(sha256::to_hex(&d).to_vec()).unwrap();
        assert!(found.eq_ignore_ascii_case(&printed), "sidecar {found:?} parsed as {printed}");
        for form in [format!("{printed}  {NAME}\n"), format!("{printed} *{NAME}\r\n"), printed.clone()] {
            assert_eq!(sha256::parse_sidecar(form.as_bytes(), NAME), Ok(d), "{form:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_around_the_block() {
        for n in [0, 1, 55, 56, 63, 64, 65, 128, 300] {
            super::check(&vec![0xa5; n]);
        }
        super::check(b"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  10-site.tar\n");
    }
}
