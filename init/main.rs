//! The autoinit binary: program entry and panic handler; everything else is in the library.
#![no_std]
#![no_main]
#![deny(unsafe_code)]

#[cfg(autoinit_unsupported_target)]
compile_error!(
    "autoinit: unsupported or missing --target. Build with one of: x86_64-unknown-linux-musl, \
     i686-unknown-linux-musl, aarch64-unknown-linux-musl, armv7-unknown-linux-gnueabihf, \
     riscv64gc-unknown-linux-gnu (or run `cargo xtask build --arch ARCH`)."
);

/// Called by the syscall crate's `_start` (see syscall/src/entry.rs).
// `no_mangle` is an unsafe attribute: this symbol name is the contract with `_start`.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
fn program_main(args: syscall::entry::Args) -> ! {
    autoinit::pid1::main(args)
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    autoinit::fail::panic(info)
}
