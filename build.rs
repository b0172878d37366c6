//! Link setup of the autoinit binary: see linker/link.rs.

include!("linker/link.rs");

fn main() {
    println!("cargo::rustc-check-cfg=cfg(autoinit_unsupported_target)");
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let root = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    if !emit_link_args(&root.join("linker"), &target) {
        // The library still builds (host unit tests); the binary stops with a clear message.
        println!("cargo:rustc-cfg=autoinit_unsupported_target");
    }
}
