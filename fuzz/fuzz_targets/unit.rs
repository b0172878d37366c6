#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| autoinit_fuzz::unit::check(data));
