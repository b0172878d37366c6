// Shared by the build scripts of autoinit and of the syscall suite (`include!`d, so that both
// binaries link the same way). It chooses the linker script of the target architecture and
// passes the link flags of a freestanding static executable. The flags that must reach
// rustc itself (linker, relocation model, crt-static) are in .cargo/config.toml.

/// The target triples autoinit is built for, one per architecture, and their linker scripts.
const SUPPORTED: &[(&str, &str)] = &[
    ("x86_64-unknown-linux-musl", "x86_64.ld"),
    ("i686-unknown-linux-musl", "i686.ld"),
    ("aarch64-unknown-linux-musl", "aarch64.ld"),
    ("armv7-unknown-linux-gnueabihf", "armv7.ld"),
    ("riscv64gc-unknown-linux-gnu", "riscv64.ld"),
];

/// Emits the link arguments for `target`, or returns false if it is not supported (the
/// caller then sets `autoinit_unsupported_target` and the binary refuses to compile with a
/// message that names the supported triples).
fn emit_link_args(linker_dir: &std::path::Path, target: &str) -> bool {
    let Some((_, script)) = SUPPORTED.iter().find(|(t, _)| *t == target) else {
        return false;
    };
    println!("cargo:rerun-if-changed={}", linker_dir.display());
    // Our own layout: two PT_LOAD segments (R+X, R+W), see the script's comments.
    println!("cargo:rustc-link-arg-bins=-T{}", linker_dir.join(script).display());
    // A static executable: no PT_INTERP, no dynamic section, nothing to relocate at run time.
    println!("cargo:rustc-link-arg-bins=-static");
    // A non-executable stack (PT_GNU_STACK without X).
    println!("cargo:rustc-link-arg-bins=-znoexecstack");
    // No .note.gnu.build-id: the binary is smaller and the same source gives the same bytes.
    println!("cargo:rustc-link-arg-bins=--build-id=none");
    true
}
