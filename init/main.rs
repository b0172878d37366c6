#![no_std]
#![no_main]

#[cfg(autoinit_unsupported_target)]
compile_error!("autoinit: unsupported or missing --target. Build with one of: x86_64-unknown-linux-musl, i686-unknown-linux-musl, aarch64-unknown-linux-musl, armv7-unknown-linux-gnueabihf, riscv64gc-unknown-linux-gnu (or `cargo xtask build --arch ARCH`).");

#[unsafe(no_mangle)]
fn program_main(_args: syscall::entry::Args) -> ! {
    let _ = syscall::fs::write_all(syscall::BorrowedFd::STDOUT, autoinit::hello());
    syscall::process::exit_group(3)
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! { syscall::process::exit_group(101) }
