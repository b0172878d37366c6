//! The legacy environment: `cmdline::legacy_params` on the NUL-separated entries of the
//! input (the kernel passes unknown `NAME=value` parameters to /init as its environment),
//! into a buffer of `LEGACY_BYTES` as pid1.rs gives it, and into a smaller one.
//!
//! Invariants: the length returned fits the buffer; what is written is UTF-8 and splits, as
//! the kernel splits a command line, into exactly the legacy variables that qualify (known
//! name, no '"' in the value), in order, up to the first that does not fit, each as its
//! `autoinit.*` key with the same value; the result followed by a command line passes the
//! command-line checks.

use autoinit::cmdline::{self, LEGACY};
use autoinit::pid1::LEGACY_BYTES;

pub fn check(data: &[u8]) {
    let env = || data.split(|&b| b == 0);
    let mut full = [0u8; LEGACY_BYTES];
    let text = check_into(env, &mut full);
    crate::cmdline::check_line(&format!("{text}console=ttyS0 autoinit.log=debug"));
    // A smaller buffer exercises the "does not fit" path with the same variables.
    let mut small = vec![0u8; data.len() / 2 % (LEGACY_BYTES + 1)];
    check_into(env, &mut small);
}

fn check_into<'o, 'e, I: Iterator<Item = &'e [u8]>>(env: impl Fn() -> I, out: &'o mut [u8]) -> &'o str {
    let cap = out.len();
    let n = cmdline::legacy_params(env(), out);
    assert!(n <= cap, "{n} bytes written into {cap}");
    let text = core::str::from_utf8(&out[..n]).expect("legacy parameters are UTF-8");
    let mut expected = Vec::new();
    let mut used = 0;
    for entry in env() {
        let Ok(entry) = core::str::from_utf8(entry) else { continue };
        let Some((name, value)) = entry.split_once('=') else { continue };
        let Some(&(_, key)) = LEGACY.iter().find(|(legacy, _)| *legacy == name) else { continue };
        if value.contains('"') {
            continue;
        }
        // `key="value" `
        used += key.len() + value.len() + 4;
        if used > cap {
            break;
        }
        expected.push((key, Some(value)));
    }
    let got: Vec<_> = cmdline::words(text).collect();
    assert_eq!(got, expected, "legacy parameters {text:?}");
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn real_environment() {
        super::check(b"HOME=/\0TERM=linux\0autoserver_boot_dev=LABEL=OLD DISK\0autoserver_safe_mode=1\0autoserver_dir=a\"b");
    }
}
