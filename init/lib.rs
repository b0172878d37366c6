#![cfg_attr(not(test), no_std)]
pub fn hello() -> &'static [u8] { b"autoinit: hello\n" }
